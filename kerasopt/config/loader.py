"""Load a config: YAML file(s) -> ``extends:`` composition -> ``--set`` overrides -> schema.

Only ``yaml.safe_load`` is used. Every mistake is a ``ConfigError`` naming the
file or the dotted key.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import ValidationError

from kerasopt.config.base import option_tag
from kerasopt.config.errors import format_validation_error
from kerasopt.config.keys import union_sections
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError

log = logging.getLogger("kerasopt.config")

ConfigLike = Union[str, os.PathLike, Mapping[str, Any], ExperimentConfig]
_MAX_EXTENDS_DEPTH = 16
_MAX_DEPTH = 50  # the deepest real config (tune.space choices of lists) nests about 6 levels
_INT64 = 2**63
_MAX_MESSAGE = 400  # a huge value in "Received: ..." must not flood the one error line


def read_yaml(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """Read one YAML mapping, naming the file (and line) on any problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}" if not p.exists() else f"config path is not a file: {p}")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)  # never yaml.load: a tag must not construct Python objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if isinstance(e, yaml.constructor.ConstructorError) and "tag" in problem:
            problem += " (configs are read with yaml.safe_load: Python object tags are refused)"
        raise ConfigError(f"{p}:{where}: YAML syntax error: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{p}: YAML nested too deeply (more than {_MAX_DEPTH} levels)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys, got {type(data).__name__}")
    check_values(data, source=str(p))
    return data


def check_values(data: Any, source: str | None = None, raw: bool = True) -> None:
    """Reject what no schema field can use and what would break later steps, naming the key.

    NaN/Inf floats (a learning rate of ``.inf`` passes ``gt=0``), integers
    outside 64 bits (TensorFlow cannot hold them), nesting deeper than
    ``_MAX_DEPTH`` and self-referencing YAML anchors; in ``raw`` (YAML) data
    also dates, binary data and sets (which JSON, the run record and the tuner
    cannot hold) and keys that are not names. Shared anchors are checked once,
    so a "billion laughs" file costs nothing here.

    Example:
        >>> check_values({"train": {"optimizer": {"learning_rate": float("inf")}}})
        Traceback (most recent call last):
        ...
        kerasopt.errors.ConfigError: train.optimizer.learning_rate: must be a finite number. Received: inf
    """
    where = f" (in {source})" if source else ""
    done: set[int] = set()

    def walk(node: Any, path: tuple, active: frozenset) -> None:
        key = "".join(k if k.startswith("[") or not i else f".{k}" for i, k in enumerate(path)) or None
        if isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"must be a finite number. Received: {node}{where}", key=key)
        if isinstance(node, int) and not isinstance(node, bool) and not -_INT64 <= node < _INT64:
            raise ConfigError(f"is too large: it must fit in 64 bits. Received: {_short_repr(node)}{where}", key=key)
        if raw and not isinstance(node, _PLAIN):
            raise ConfigError(f"{_what(node)}; a config holds text, numbers, true/false, lists and mappings. "
                              f"Received: {_short_repr(node)}{where}", key=key)
        if not isinstance(node, (dict, list)):
            return
        if id(node) in active:
            raise ConfigError(f"refers to itself (a YAML anchor used inside its own value){where}", key=key)
        if len(path) > _MAX_DEPTH:
            raise ConfigError(f"nested too deeply (more than {_MAX_DEPTH} levels){where}", key=key)
        if id(node) in done:
            return
        done.add(id(node))
        if raw and isinstance(node, dict):
            for k in node:
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise ConfigError(f"has a key that is not a name: {_short_repr(k)} ({_what(k)}){where}", key=key)
        items = [(_one_line(str(k)), v) for k, v in node.items()] if isinstance(node, dict) else [
            (f"[{i}]", v) for i, v in enumerate(node)
        ]
        inner = active | {id(node)}
        for k, v in items:
            walk(v, (*path, k), inner)

    walk(data, (), frozenset())


_PLAIN = (str, int, float, bool, type(None), dict, list)


def _what(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean (YAML reads yes/no/on/off/true/false as one; quote it for text)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date (YAML reads 2020-01-01 as one; quote it for text)"
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    return f"a {type(value).__name__}"


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins and lists are replaced, not concatenated.

    Example:
        >>> deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}})
        {'a': {'b': 3, 'c': 2}}
    """
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_extends(path: Path, seen: tuple[Path, ...] = (), dropped: list[str] | None = None) -> dict[str, Any]:
    """The file merged over its ``extends:`` parents. A child that switches a section's type drops the
    parents' keys of the old type only; their dotted names are appended to ``dropped``."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(s.name) for s in (*seen, path))
        raise ConfigError(f"extends: cycle {chain}", key="extends")
    if len(seen) > _MAX_EXTENDS_DEPTH:
        raise ConfigError(f"extends: more than {_MAX_EXTENDS_DEPTH} levels", key="extends")
    data = read_yaml(path)
    parents = data.pop("extends", None)
    if parents is None:
        return data
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(x, str) for x in parents):
        raise ConfigError(f"must be a file name or a list of them (in {path}). Received: {parents!r}", key="extends")
    dropped = [] if dropped is None else dropped
    merged: dict[str, Any] = {}
    for parent in parents:
        ppath = (path.parent / parent)
        if not ppath.exists():
            raise ConfigError(f"file not found: {ppath} (named in {path})", key="extends")
        later = _resolve_extends(ppath, (*seen, path), dropped)
        dropped += drop_switched(merged, later)
        merged = deep_merge(merged, later)
    dropped += drop_switched(merged, data)
    return deep_merge(merged, data)


def drop_switched(parent: dict[str, Any], child: Mapping[str, Any]) -> list[str]:
    """Where ``child`` names another type (``model.type: custom`` over a ``cnn`` parent), remove from
    ``parent`` (in place) the keys of the old type that the new type lacks or ignores (``UNUSED``:
    ``model.dropout`` for a custom builder), and return their dotted names.

    Keys both types use stay (``model.units`` from lstm to gru), and so do keys no type has: the
    schema reports those.
    """
    dropped = []
    for path, fam in union_sections(ExperimentConfig).items():
        old, new = _section(parent, path), _section(child, path)
        if old is None or new is None or fam.SELECTOR not in new:
            continue
        before, after = fam.OPTIONS.get(old.get(fam.SELECTOR, fam.DEFAULT)), fam.OPTIONS.get(new[fam.SELECTOR])
        if before is None or after is None or before is after:
            continue
        gone = [k for k in old if k in before.model_fields and (k not in after.model_fields or k in after.UNUSED)]
        for key in gone:
            del old[key]
            dropped.append(f"{'.'.join(path)}.{key} ({fam.SELECTOR} {option_tag(before)} -> {option_tag(after)})")
    return dropped


def _section(data: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = data
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, dict) else None


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.optimizer.learning_rate=3e-3"`` -> (["train", "optimizer", "learning_rate"], 0.003).

    Values are parsed as YAML scalars (``true``, ``[32, 32]``, ``null``); ``3e-3``
    is read as a float although YAML 1.1 would keep it a string.
    """
    if "=" not in item:
        raise ConfigError(f"--set needs key=value. Received: {item!r}")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set key must be dotted names. Received: {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"--set value is not valid YAML. Received: {raw!r}", key=key) from None
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") else int(value)
        except ValueError:
            pass
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Union[Iterable[str], Mapping[str, Any], None]) -> dict[str, Any]:
    """Apply ``--set`` strings or a ``{"a.b": value}`` mapping to a raw config dict."""
    if not overrides:
        return data
    items = (
        [(k.split("."), v) for k, v in overrides.items()] if isinstance(overrides, Mapping)
        else [parse_override(s) for s in overrides]
    )
    out = copy.deepcopy(data)
    for parts, value in items:
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(
                    f"cannot set '{'.'.join(parts)}': '{'.'.join(parts[: i + 1])}' is a value, not a section",
                    key=".".join(parts),
                )
            node = nxt
        node[parts[-1]] = value
    return out


def validate_dict(data: Mapping[str, Any], source: str | None = None) -> ExperimentConfig:
    """Validate a raw mapping against the schema, raising one ``ConfigError``."""
    check_values(dict(data), source)
    try:
        cfg = ExperimentConfig.model_validate(dict(data))
    except ValidationError as e:
        err = _section_error(e, data) or format_validation_error(e, ExperimentConfig)
    else:
        # A quoted "inf" is coerced to a float by the schema: the same check on what came out.
        check_values(cfg.model_dump(mode="python"), source, raw=False)
        return cfg
    where = f" (in {source})" if source else ""
    message = _one_line(err.message)
    message = message if len(message) <= _MAX_MESSAGE else f"{message[: _MAX_MESSAGE - 3]}..."
    raise ConfigError(f"{message}{where}", key=_one_line(err.key) if err.key else None)


def _one_line(text: str) -> str:
    """Escape line breaks and other unprintable characters (an unknown key may hold any)."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _section_error(exc: ValidationError, data: Mapping[str, Any]) -> ConfigError | None:
    """An error raised while filling in a missing section's defaults, with the section in its key.

    pydantic reports it relative to the section (``name``), which reads like the
    top-level ``name``; it is ``data.name`` and the section is absent.
    """
    if exc.title == ExperimentConfig.__name__:
        return None
    for section, field in ExperimentConfig.model_fields.items():
        default = field.default_factory
        cls = default if isinstance(default, type) else field.annotation
        if getattr(cls, "__name__", None) == exc.title and section not in data:
            inner = format_validation_error(exc, cls)
            key = f"{section}.{inner.key}" if inner.key else section
            return ConfigError(f"{inner.message} (the config has no '{section}:' section)", key=key)
    return None


def load_config(
    config: ConfigLike, overrides: Union[Iterable[str], Mapping[str, Any], None] = None
) -> ExperimentConfig:
    """Load and validate a config from a YAML path, a dict or an ``ExperimentConfig``.

    Example:
        >>> cfg = load_config("configs/digits_cnn.yaml", ["train.epochs=2"])  # doctest: +SKIP
        >>> cfg.train.epochs  # doctest: +SKIP
        2
    """
    source = None
    if isinstance(config, ExperimentConfig):
        data = config.model_dump(mode="json", exclude_unset=True)
    elif isinstance(config, Mapping):
        data = dict(config)
        if "extends" in data:
            raise ConfigError("extends is only read from YAML files", key="extends")
    else:
        source = str(config)
        dropped: list[str] = []
        data = _resolve_extends(Path(config), dropped=dropped)
        if dropped:  # one line per load, naming every key that went
            log.warning(f"{source}: extends: dropped the parent's keys of the type switched away from: "
                        f"{', '.join(dropped)}")
    return validate_dict(apply_overrides(data, overrides), source)


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (every default filled in)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, default_flow_style=None)
