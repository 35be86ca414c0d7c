"""Turn pydantic's validation errors into one ``ConfigError`` line.

The line names the dotted key and, for an unknown key, suggests the closest
valid key in the same section.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from kerasopt.errors import ConfigError
from kerasopt.registry import suggest


def _section_class(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (walks fields, dicts, lists)."""
    ann: Any = root
    for part in loc[:-1]:
        ann = _unwrap(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(str(part))
            if field is None:
                return None
            ann = field.annotation
        elif typing.get_origin(ann) in (dict, list):
            ann = typing.get_args(ann)[-1]
        else:
            return None
    ann = _unwrap(ann)
    if typing.get_origin(ann) in (dict, list):
        ann = _unwrap(typing.get_args(ann)[-1])
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def _unwrap(ann: Any) -> Any:
    """Optional[X] / Union[X, None] -> X when exactly one model class is inside."""
    if typing.get_origin(ann) is typing.Union or type(ann).__name__ == "UnionType":
        inner = [a for a in typing.get_args(ann) if a is not type(None)]
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if len(inner) == 1:
            return inner[0]
    return ann


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
    cause = err.get("ctx", {}).get("error")
    if getattr(cause, "field", None):
        loc = (*loc, *str(cause.field).split("."))
    key = _dotted(loc) or None
    etype = err["type"]
    where = f" (in {source})" if source else ""
    if etype == "extra_forbidden":
        owner = _section_class(root, loc)
        valid = sorted(owner.model_fields) if owner else []
        hint = suggest(str(loc[-1]), valid) if valid else ""
        listing = f" Valid keys: {', '.join(valid)}." if valid and not hint else ""
        return ConfigError(f"unknown key.{hint}{listing}{where}", key=key)
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
