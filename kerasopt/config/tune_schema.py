"""The ``tune:`` section: the search space and algorithm for ``kerasopt tune``.

Every key of ``space`` is a dotted config key (``train.optimizer.learning_rate``,
``model.filters``, ``callbacks.ema.decay``), checked against the schema and the config's
chosen types by ``ExperimentConfig`` (:mod:`kerasopt.config.schema`, which imports this module);
the values themselves are checked against the rest of the config before any trial
(:func:`kerasopt.tune.space.check_space`). No TensorFlow import.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from kerasopt.config.base import FieldError, Strict, check_applicable
from kerasopt.config.metric_names import higher_is_better

ALGORITHMS = ("random", "bayesian", "hyperband", "grid")
PARAM_TYPES = ("float", "int", "choice", "bool")

_PARAM_OWNERS: dict[str, tuple[str, ...]] = {
    "min": ("float", "int"), "max": ("float", "int"), "step": ("float", "int"), "sampling": ("float", "int"),
    "values": ("choice",),
}
_ALGO_OWNERS: dict[str, tuple[str, ...]] = {
    "max_epochs": ("hyperband",), "factor": ("hyperband",), "hyperband_iterations": ("hyperband",),
    "num_initial_points": ("bayesian",),
}
_Scalar = Union[bool, int, float, str, None]


class ParamSpec(Strict):
    """One searched key. Examples::

        train.optimizer.learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}
        data.batch_size: {type: choice, values: [32, 64, 128]}
        model.filters: {type: choice, values: [[16, 32], [32, 64]], when: {model.type: cnn}}
        model.batch_norm: {type: bool}
    """

    type: Literal[PARAM_TYPES]  # type: ignore[valid-type]
    min: Optional[float] = Field(None, description="float/int: lowest value")
    max: Optional[float] = Field(None, description="float/int: highest value")
    step: Optional[float] = Field(None, gt=0, description="float/int: grid spacing (a factor with log sampling)")
    sampling: Literal["linear", "log"] = "linear"
    values: Optional[list[Any]] = Field(None, description="choice: the candidates (any YAML value)")
    when: dict[str, list[_Scalar]] = Field(
        default_factory=dict, description="active only when these searched keys take one of the listed values"
    )

    @field_validator("when", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: x if isinstance(x, list) else [x] for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _checks(self) -> ParamSpec:
        check_applicable(self, "type", self.type, _PARAM_OWNERS)
        if self.type in ("float", "int"):
            if self.min is None or self.max is None:
                raise ValueError(f"type '{self.type}' needs min and max. Received: min={self.min}, max={self.max}")
            if self.min > self.max:
                raise ValueError(f"min must be <= max. Received: min={self.min:g}, max={self.max:g}")
            if self.sampling == "log" and self.min <= 0:
                raise ValueError(f"log sampling needs min > 0. Received: min={self.min:g}")
            if self.type == "int":
                for name in ("min", "max", "step"):
                    v = getattr(self, name)
                    if v is not None and v != int(v):
                        raise ValueError(f"type 'int' needs a whole {name}. Received: {name}={v:g}")
        if self.type == "choice":
            if not self.values:
                raise ValueError(f"type 'choice' needs a non-empty list of values. Received: values={self.values}")
            seen = [json.dumps(v, sort_keys=True) for v in self.values]
            if len(set(seen)) != len(seen):
                raise ValueError(f"choice values must not repeat. Received: values={self.values}")
        return self

    def candidates(self) -> list[Any]:
        """The values a parent offers to ``when`` (choice values, or both booleans)."""
        return list(self.values or []) if self.type == "choice" else [False, True] if self.type == "bool" else []


class ObjectiveConfig(Strict):
    """What a trial is scored by. ``objective: val_accuracy`` is short for ``{metric: val_accuracy}``."""

    metric: str = Field("val_loss", min_length=1, description="a metric of the run's history (val_* usually)")
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for scores (accuracy, auc, f1, ...)")
    reduce: Literal["final", "best"] = Field(
        "final", description="the last epoch's value (the model training delivers) or the best epoch's"
    )

    @property
    def direction(self) -> str:
        if self.mode != "auto":
            return self.mode
        return "max" if higher_is_better(self.metric) else "min"


class TuneConfig(Strict):
    """Hyperparameter search settings for ``kerasopt tune``. Example::

        tune:
          algorithm: bayesian
          objective: {metric: val_accuracy, mode: max}
          max_trials: 12
          space:
            train.optimizer.learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}
            data.batch_size: {type: choice, values: [32, 64, 128]}
    """

    algorithm: Literal[ALGORITHMS] = "random"  # type: ignore[valid-type]
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    max_trials: Optional[int] = Field(
        None, ge=1, description="default 10 (random, bayesian), the whole grid (grid), all brackets (hyperband)"
    )
    executions_per_trial: int = Field(1, ge=1, description="train each trial this many times (seed, seed+1, ...) "
                                                           "and average the objective")
    # Hyperband: trials get max_epochs / factor**k epochs; the best are resumed from their checkpoint.
    max_epochs: Optional[int] = Field(None, ge=1, description="hyperband: the largest budget; default train.epochs")
    factor: int = Field(3, ge=2, description="hyperband: budget multiplier between rounds")
    hyperband_iterations: int = Field(1, ge=1, description="hyperband: full sweeps over the brackets")
    num_initial_points: Optional[int] = Field(
        None, ge=1, description="bayesian: random trials before the Gaussian process; default 3 x parameters"
    )
    # A subprocess per trial returns all its memory to the OS; in-process saves the TF import (~5 s).
    isolate: bool = Field(True, description="run each trial in its own Python process")
    max_consecutive_failures: int = Field(3, ge=1, description="stop the search after this many failed trials "
                                                               "in a row")
    export_models: bool = Field(False, description="export every trial's model (slow); best.yaml keeps export:")
    space: dict[str, ParamSpec] = Field(default_factory=dict, description="dotted config key -> parameter")

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_short(cls, v: Any) -> Any:
        return {"metric": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _checks(self) -> TuneConfig:
        check_applicable(self, "algorithm", self.algorithm, _ALGO_OWNERS)
        if not self.space:
            raise FieldError("space", "needs at least one key to search, e.g. "
                                      "{train.optimizer.learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2}}")
        for key, spec in self.space.items():
            for parent, vals in spec.when.items():
                where = f"space.{key}.when.{parent}"
                other = self.space.get(parent)
                if other is None or other.type not in ("choice", "bool"):
                    raise FieldError(where, f"'{parent}' must be a choice or bool key of tune.space")
                if other.when:
                    raise FieldError(where, f"'{parent}' is itself conditional; conditions do not nest")
                missing = [v for v in vals if v not in other.candidates()]
                if missing:
                    raise FieldError(where, f"{missing} not among the values of '{parent}': {other.candidates()}")
            if self.algorithm == "grid" and spec.type == "float" and spec.step is None:
                raise FieldError(f"space.{key}", "grid search needs a step for float keys (or use type: choice)")
        if self.algorithm == "hyperband" and "train.epochs" in self.space:
            raise FieldError("space.train.epochs", "hyperband sets the epochs itself (tune.max_epochs, tune.factor)")
        return self
