"""Turn pydantic's validation errors into one ``ConfigError`` line.

The line names the dotted key and, for an unknown key, suggests the closest
valid key in the same section.
"""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from kerasopt.config.base import Choice, union_family
from kerasopt.config.keys import not_applicable, walk_loc
from kerasopt.errors import ConfigError
from kerasopt.registry import suggest


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_validation_error(exc: ValidationError, root: type[BaseModel], source: str | None = None) -> ConfigError:
    """The first error of ``exc`` as a ``ConfigError`` with a dotted key path.

    Example: an unknown key ``data.batchsize`` gives
    ``data.batchsize: unknown key. Did you mean 'batch_size'?``
    """
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # pydantic adds the matched branch of a union/literal to the path; drop those tags.
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("bool", "int", "float", "str"))))
    loc, owner, ann = walk_loc(root, loc)
    cause = err.get("ctx", {}).get("error")
    if getattr(cause, "field", None):
        loc = (*loc, *str(cause.field).split("."))
    key = _dotted(loc) or None
    etype = err["type"]
    where = f" (in {source})" if source else ""
    if etype == "extra_forbidden":
        if isinstance(owner, type) and issubclass(owner, Choice):
            why = not_applicable(owner, str(loc[-1]))
            if why:  # a key of another type: name the chosen type and the types that have it
                return ConfigError(f"{why}{where}", key=key)
        valid = sorted(owner.model_fields) if owner else []
        hint = suggest(str(loc[-1]), valid) if valid else ""
        listing = f" Valid keys: {', '.join(valid)}." if valid and not hint else ""
        return ConfigError(f"unknown key.{hint}{listing}{where}", key=key)
    fam = union_family(ann)
    if etype == "union_tag_invalid" and fam is not None:
        tag = err.get("ctx", {}).get("tag")
        choices = list(fam.OPTIONS)
        hint = suggest(str(tag), choices)
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        received = err["input"].get(fam.SELECTOR) if isinstance(err.get("input"), dict) else tag
        return ConfigError(f"Input should be {listed}. Received: {received!r}.{hint}{where}",
                           key=_dotted((*loc, fam.SELECTOR)))
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if etype in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",") if c.strip()]
        hint = suggest(str(err.get("input")), choices)
    else:
        hint = ""
    received = err.get("input")
    if etype not in ("missing", "value_error", "assertion_error") and not isinstance(received, (dict, list)):
        msg = f"{msg}. Received: {received!r}.{hint}"
    return ConfigError(f"{msg}{where}", key=key)
