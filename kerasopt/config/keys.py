"""Dotted config keys (``train.optimizer.learning_rate``) walked through the schema's annotations.

A section that is a discriminated union (``model``, ``data``, ``train.optimizer``,
``train.schedule``) has different keys per option: the walk asks ``choose`` which options
count there (the config's chosen one, or those a search may pick) and checks the key against
them. Used by the error formatting and by ``tune.space``'s key checks. No TensorFlow import.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Sequence
from typing import Any, Optional

from pydantic import BaseModel

from kerasopt.config.base import Choice, FieldError, family, option_tag, union_family

# (the dotted key of a union section, its family) -> the option classes the key must belong to,
# or None for "any option of the family".
Chooser = Callable[[str, type[Choice]], Optional[Sequence[type[Choice]]]]


def unwrap(ann: Any) -> Any:
    """``Optional[X]`` -> ``X`` when exactly one model class (or one type) is inside; a union of one
    family's options is kept whole (see :func:`kerasopt.config.base.union_family`)."""
    if union_family(ann) is not None:
        return ann
    if typing.get_origin(ann) is typing.Union or type(ann).__name__ == "UnionType":
        inner = [a for a in typing.get_args(ann) if a is not type(None)]
        models = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if len(inner) == 1:
            return inner[0]
        fam = union_family(typing.Union[tuple(inner)])
        if fam is not None:
            return typing.Union[tuple(inner)]
    return ann


def is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def used_by(fam: type[Choice], key: str) -> list[str]:
    """The options of a family that have ``key``."""
    return [tag for tag, option in fam.OPTIONS.items() if key in option.model_fields]


def not_applicable(option: type[Choice], key: str) -> Optional[str]:
    """The message for a key another option of the family has, None when no option has it.

    Example: ``not_applicable(CNNModel, "depth")`` is
    ``"does not apply to type 'cnn' (it is used by: resnet)"``.
    """
    fam = family(option)
    users = used_by(fam, key)
    if not users:
        return None
    return f"does not apply to {fam.SELECTOR} '{option_tag(option)}' (it is used by: {', '.join(users)})"


def check_config_key(root: type[BaseModel], key: str, field: str, choose: Optional[Chooser] = None) -> None:
    """Raise ``FieldError(field, ...)`` unless ``key`` is a dotted key of ``root``.

    At a union section, ``choose(section_key, family)`` names the options the key must belong
    to (None: any option). Example: ``check_config_key(ExperimentConfig, "train.optimizer.lr",
    "space.train.optimizer.lr")`` raises ``... Did you mean 'train.optimizer.learning_rate'?``
    """
    parts = key.split(".")
    if not all(parts):
        raise FieldError(field, f"must be a dotted config key. Received: {key!r}")
    ann: Any = root
    for i, part in enumerate(parts):
        ann = unwrap(ann)
        if ann is Any:
            return
        if typing.get_origin(ann) is dict:
            ann = typing.get_args(ann)[-1]  # any name: a dict's keys are the user's
            continue
        fam = union_family(ann)
        if fam is not None:
            options = (choose(".".join(parts[:i]), fam) if choose else None) or list(fam.OPTIONS.values())
            ann = _option_with(root, options, parts, i, field, key)
            continue
        if not is_model(ann):
            raise FieldError(field, f"unknown config key: '{'.'.join(parts[:i])}' is a value, not a section")
        fields = ann.model_fields
        if part not in fields:
            raise FieldError(field, f"unknown config key '{key}'.{_hint(root, parts, i, list(fields))}")
        ann = fields[part].annotation


def _option_with(root: type[BaseModel], options: Sequence[type[Choice]], parts: list[str], i: int, field: str,
                 key: str) -> Any:
    """The option class to walk on from (the first that has ``parts[i]``), or the error naming the choice."""
    part = parts[i]
    having = [o for o in options if part in o.model_fields]
    if len(having) == len(options) or (having and len(options) > 1):
        return having[0].model_fields[part].annotation
    if len(options) == 1:
        why = not_applicable(options[0], part)
        if why:
            section = ".".join(parts[:i])
            raise FieldError(field, f"'{key}' {why.replace(' to ', f' to {section}.', 1)}")
    valid = sorted({k for o in options for k in o.model_fields})
    raise FieldError(field, f"unknown config key '{key}'.{_hint(root, parts, i, valid)}")


def _hint(root: type[BaseModel], parts: list[str], i: int, valid: list[str]) -> str:
    close = difflib.get_close_matches(parts[i], valid, n=1, cutoff=0.6)
    if close:
        fixed = ".".join([*parts[:i], close[0]])
        whole = ".".join([*parts[:i], close[0], *parts[i + 1:]])
        return f" Did you mean '{whole if _is_key(root, whole) else fixed}'?"
    return f" Valid keys of {'.'.join(parts[:i]) or 'the config'}: {', '.join(valid)}."


def _is_key(root: type[BaseModel], key: str) -> bool:
    try:
        check_config_key(root, key, key)
    except FieldError:
        return False
    return True


def walk_loc(root: type[BaseModel], loc: Sequence[Any]) -> tuple[tuple, Optional[type[BaseModel]], Any]:
    """A pydantic error location -> (the user's key path, the model class owning its last part, the
    annotation at the path).

    pydantic puts the chosen option's tag after a union section (``("model", "cnn", "depth")``);
    the tag is dropped: the user wrote ``model.depth``.
    """
    ann: Any = root
    out: list = []
    owner: Optional[type[BaseModel]] = None
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        ann = unwrap(ann)
        fam = union_family(ann)
        if fam is not None:
            if isinstance(part, str) and part in fam.OPTIONS:
                ann = fam.OPTIONS[part]
                i += 1
                continue
            ann = fam
        out.append(part)
        if is_model(ann):
            owner = ann
            f = ann.model_fields.get(str(part))
            ann = f.annotation if f is not None else None
        elif typing.get_origin(ann) in (dict, list):
            owner = None
            ann = typing.get_args(ann)[-1]
        else:
            owner, ann = None, None
        i += 1
    return tuple(out), owner, unwrap(ann)


def union_sections(root: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], type[Choice]]:
    """The key paths of the discriminated-union sections under ``root`` and their families.

    Example: for ``ExperimentConfig``, ``("model",)``, ``("data",)``, ``("train", "optimizer")``
    and ``("train", "schedule")``.
    """
    found: dict[tuple[str, ...], type[Choice]] = {}
    for name, f in root.model_fields.items():
        ann = unwrap(f.annotation)
        fam = union_family(ann)
        if fam is not None:
            found[(*prefix, name)] = fam
        elif is_model(ann):
            found.update(union_sections(ann, (*prefix, name)))
    return found
