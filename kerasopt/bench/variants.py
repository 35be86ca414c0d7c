"""``--variant key=v1,v2`` options -> the cartesian product of config overrides (no TensorFlow).

Keys are dotted config paths (``train.precision``) or a short alias
(``precision``, ``jit_compile``, ``batch_size``...). Values are YAML scalars,
read as ``--set`` reads them; commas inside brackets belong to the value, so
``resize=[16,16],[32,32]`` has two values.
"""

from __future__ import annotations

import itertools
from typing import Any

from kerasopt.errors import ConfigError

ALIASES: dict[str, str] = {
    "precision": "train.precision",
    "jit_compile": "train.jit_compile",
    "xla": "train.jit_compile",
    "batch_size": "data.batch_size",
    "steps_per_execution": "train.steps_per_execution",
    "cache": "data.cache",
    "prefetch": "data.prefetch",
    "num_parallel_calls": "data.num_parallel_calls",
}


def split_values(text: str) -> list[str]:
    """Split on commas that are not inside ``[]``/``{}``.

    Example:
        >>> split_values("[16,16],[32,32]")
        ['[16,16]', '[32,32]']
    """
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def schema_keys() -> tuple[set[str], set[str]]:
    """``(leaf keys, free-form mapping keys)`` of the config schema as dotted paths.

    Example:
        >>> "train.precision" in schema_keys()[0], "model.kwargs" in schema_keys()[1]
        (True, True)
    """
    from kerasopt.config.schema import ExperimentConfig

    leaves: set[str] = set()
    mappings: set[str] = set()

    def walk(model: Any, prefix: str) -> None:
        for name, info in model.model_fields.items():
            ann = info.annotation
            args = getattr(ann, "__args__", ())
            # every option of a union section (model.type, data.source, ...) adds its keys
            subs = [a for a in (ann, *args) if hasattr(a, "model_fields")]
            if subs and getattr(ann, "__origin__", None) is not dict:
                for sub in subs:
                    walk(sub, f"{prefix}{name}.")
            elif getattr(ann, "__origin__", None) is dict:
                mappings.add(f"{prefix}{name}")
            else:
                leaves.add(f"{prefix}{name}")

    walk(ExperimentConfig, "")
    return leaves, mappings


def _key_exists(dotted: str) -> bool:
    leaves, mappings = schema_keys()
    return dotted in leaves or dotted in mappings or any(dotted.startswith(m + ".") for m in mappings)


def parse_variant(option: str) -> tuple[str, list[Any]]:
    """``"precision=float32,mixed_bfloat16"`` -> ``("train.precision", ["float32", "mixed_bfloat16"])``.

    Raises ``ConfigError`` naming the option when the key is unknown or a value is missing.
    """
    from kerasopt.config.loader import parse_override

    if "=" not in option:
        raise ConfigError(f"--variant needs key=value1,value2,... Received: {option!r}", key="--variant")
    key, raw = option.split("=", 1)
    key = key.strip()
    dotted = ALIASES.get(key, key)
    if not dotted or not all(dotted.split(".")) or not _key_exists(dotted):
        from kerasopt.registry import suggest

        hint = suggest(key, [*ALIASES, *sorted(schema_keys()[0])]) if key else ""
        raise ConfigError(
            f"unknown config key '{key}' (a dotted key such as train.precision, or one of: "
            f"{', '.join(ALIASES)}).{hint}", key=f"--variant {key}",
        )
    texts = split_values(raw)
    if any(not t for t in texts):
        raise ConfigError(f"empty value in {option!r}; give values separated by commas", key=f"--variant {key}")
    values = [parse_override(f"{dotted}={t}")[1] for t in texts]
    return dotted, values


def expand(options: list[str]) -> list[dict[str, Any]]:
    """The cartesian product of all ``--variant`` options, the first option varying slowest.

    Example:
        >>> expand(["precision=float32,mixed_bfloat16", "jit_compile=false,true"])[1]
        {'train.precision': 'float32', 'train.jit_compile': True}
        >>> len(expand(["precision=float32,mixed_bfloat16", "jit_compile=false,true"]))
        4
    """
    axes: list[tuple[str, list[Any]]] = []
    for option in options:
        key, values = parse_variant(option)
        if any(key == k for k, _ in axes):
            raise ConfigError(f"'{key}' is given twice; list all its values in one --variant", key="--variant")
        axes.append((key, values))
    if not axes:
        return []
    return [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def label(variant: dict[str, Any]) -> str:
    """A short row label: aliases instead of dotted keys, YAML spellings of values.

    Example:
        >>> label({"train.precision": "float32", "train.jit_compile": True})
        'precision=float32 jit_compile=true'
    """
    if not variant:
        return "as given"
    short = {v: k for k, v in reversed(list(ALIASES.items()))}
    return " ".join(f"{short.get(k, k)}={_yaml(v)}" for k, v in variant.items())


def _yaml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v).replace(" ", "")
