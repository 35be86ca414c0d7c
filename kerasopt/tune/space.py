"""The YAML search space: Keras Tuner hyperparameters, trial configs, and the checks before any trial.

Imports no TensorFlow at module import; :func:`build_hyperparameters` imports
Keras Tuner (which imports TensorFlow) when called.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from typing import Any

from kerasopt.config.loader import apply_overrides, drop_switched, validate_dict
from kerasopt.config.schema import ExperimentConfig
from kerasopt.config.tune_schema import ParamSpec, TuneConfig
from kerasopt.errors import ConfigError

TUNER_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/trial_id", "tuner/bracket", "tuner/round")
_NATIVE = (bool, int, float, str)
_NOT_APPLICABLE = "does not apply to "


def native_choice(spec: ParamSpec) -> bool:
    """Keras Tuner's ``Choice`` takes values of one type among bool, int, float, str; anything else
    (lists, mappings, ``null``, mixed types) travels as JSON text and is decoded for the trial."""
    kinds = {type(v) for v in spec.values or []}
    return len(kinds) == 1 and next(iter(kinds)) in _NATIVE


def encode(spec: ParamSpec, value: Any) -> Any:
    """A config value -> the value Keras Tuner holds for it.

    Example:
        >>> encode(ParamSpec(type="choice", values=[[16, 32], [32, 64]]), [32, 64])
        '[32, 64]'
    """
    if spec.type == "choice" and not native_choice(spec):
        return json.dumps(value, sort_keys=True)
    return value


def decode(spec: ParamSpec, value: Any) -> Any:
    if spec.type == "choice" and not native_choice(spec):
        return json.loads(value)
    if spec.type == "int":
        return int(value)
    if spec.type == "float":
        return float(value)
    return value


def _base_value(cfg: ExperimentConfig, key: str) -> Any:
    node: Any = cfg.model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _default(spec: ParamSpec, base: Any) -> Any:
    """The base config's value when the space contains it (Keras Tuner's default, the grid's first point)."""
    if base is None:
        return None
    if spec.type in ("float", "int"):
        ok = isinstance(base, (int, float)) and not isinstance(base, bool) and spec.min <= base <= spec.max
        return (int(base) if spec.type == "int" else float(base)) if ok and (spec.step is None) else None
    if spec.type == "bool":
        return base if isinstance(base, bool) else None
    return encode(spec, base) if base in spec.values else None


def build_hyperparameters(tune: TuneConfig, cfg: ExperimentConfig):
    """The whole space declared up front as ``kt.HyperParameters`` (parents before their children).

    Hyperband and the other oracles get it as ``hyperparameters=``: with no
    hypermodel to populate the space, Hyperband would otherwise run zero trials.
    """
    kt = require_keras_tuner()
    hp = kt.HyperParameters()
    ordered = sorted(tune.space.items(), key=lambda kv: bool(kv[1].when))
    for key, spec in ordered:
        with contextlib.ExitStack() as stack:
            for parent, vals in spec.when.items():
                stack.enter_context(hp.conditional_scope(parent, [encode(tune.space[parent], v) for v in vals]))
            _declare(hp, key, spec, _default(spec, _base_value(cfg, key)))
    return hp


def require_keras_tuner():
    """``keras_tuner``, imported after TensorFlow is set up for tf_keras, or an error saying how to get it."""
    import kerasopt._keras  # noqa: F401 - TF_USE_LEGACY_KERAS before Keras Tuner imports TensorFlow

    try:
        import keras_tuner
    except ImportError as e:
        raise ImportError(f"kerasopt tune needs Keras Tuner ({e}): pip install 'kerasopt[tune]' "
                          "(keras-tuner>=1.4,<1.5)") from None
    return keras_tuner


def _declare(hp, key: str, spec: ParamSpec, default: Any) -> None:
    if spec.type == "float":
        hp.Float(key, spec.min, spec.max, step=spec.step, sampling=spec.sampling, default=default)
    elif spec.type == "int":
        hp.Int(key, int(spec.min), int(spec.max), step=int(spec.step) if spec.step else None,
               sampling=spec.sampling, default=default)
    elif spec.type == "bool":
        hp.Boolean(key, default=bool(default) if default is not None else False)
    else:
        hp.Choice(key, [encode(spec, v) for v in spec.values], default=default)


def decode_values(tune: TuneConfig, hp_values: Mapping[str, Any]) -> dict[str, Any]:
    """Keras Tuner's active values -> ``{dotted key: config value}`` (``tuner/*`` keys dropped)."""
    return {k: decode(tune.space[k], v) for k, v in hp_values.items() if k in tune.space}


def trial_config(base: ExperimentConfig, values: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """The base config with a trial's values (and ``extra`` settings) filled in, without ``tune:``.

    A base key that no longer applies once a selector changes (``model.filters``
    once ``model.type`` is ``mlp``) is dropped; a searched key that does not apply
    is the space's mistake and raises.

    Example:
        >>> cfg = trial_config(base, {"train.optimizer.learning_rate": 3e-3})  # doctest: +SKIP
    """
    data = base.model_dump(mode="json", exclude_unset=True)
    data.pop("tune", None)
    settings = {**dict(values), **dict(extra or {})}
    drop_switched(data, apply_overrides({}, settings))
    data = apply_overrides(data, settings)
    try:
        return validate_dict(data)
    except ConfigError as e:
        if e.key in values and e.message.startswith(_NOT_APPLICABLE):
            raise ConfigError(f"{e.message}; give it a `when:` condition", key=f"tune.space.{e.key}") from None
        raise


def samples(spec: ParamSpec) -> list[Any]:
    """The values :func:`check_space` tries: the ends of a range, every choice, both booleans."""
    if spec.type == "float":
        return [float(spec.min), float(spec.max)]
    if spec.type == "int":
        return [int(spec.min), int(spec.max)]
    return spec.candidates()


def hyperband_budgets(max_epochs: int, factor: int) -> list[int]:
    """The epoch budgets Hyperband trains trials for (Keras Tuner's brackets), smallest first.

    Example:
        >>> hyperband_budgets(9, 3)
        [1, 3, 9]
    """
    budgets, epochs, n = set(), float(max_epochs), 0
    while epochs >= 1:
        budgets.add(math.ceil(max_epochs / factor ** n))
        epochs, n = epochs / factor, n + 1
    return sorted(budgets)


def max_epochs(cfg: ExperimentConfig) -> int:
    return cfg.tune.max_epochs or cfg.train.epochs


def check_space(cfg: ExperimentConfig) -> None:
    """Fail before any trial when a value of the space does not fit the rest of the config.

    Each end of a range, each choice and both booleans are put into the base config
    (with the key's ``when`` parents set) and validated; the first failure is a
    ``ConfigError`` naming ``tune.space.<key>``.
    """
    tune = cfg.tune
    if tune is None:
        raise ConfigError("the config has no tune: section (algorithm, objective, space)", key="tune")
    selectors = {k: s for k, s in tune.space.items() if s.type in ("choice", "bool") and not s.when}
    for key, spec in tune.space.items():
        parents = {p: vals[0] for p, vals in spec.when.items()}
        for v in samples(spec):
            try:
                trial_config(cfg, {**parents, key: v})
            except ConfigError as e:
                if e.key and e.key.startswith("tune.space"):
                    raise
                raise ConfigError(f"{key}={v!r} fails the config check: {e}", key=f"tune.space.{key}") from None
            # A key must apply under every value of the selectors it is not conditioned on
            # (model.filters under model.type: mlp); other clashes between two values are left
            # to the trial, which fails and is recorded.
            for sel, sel_spec in selectors.items():
                if sel == key or sel in spec.when:
                    continue
                for sv in sel_spec.candidates():
                    combo = {**parents, sel: sv, key: v}
                    try:
                        trial_config(cfg, combo)
                    except ConfigError as e:
                        if e.key and e.key.startswith("tune.space"):
                            tried = ", ".join(f"{k}={x!r}" for k, x in combo.items())
                            raise ConfigError(f"{e.message} (tried {tried})", key=e.key) from None
    if tune.algorithm == "hyperband":
        for epochs in hyperband_budgets(max_epochs(cfg), tune.factor):
            try:
                trial_config(cfg, {}, {"train.epochs": epochs})
            except ConfigError as e:
                raise ConfigError(f"hyperband trains some trials for {epochs} epoch(s) (max_epochs / factor**k), "
                                  f"which the config rejects: {e}", key="tune.max_epochs") from None
