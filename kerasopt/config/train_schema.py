"""The ``train:`` section: precision, XLA, optimizer, schedule, loss."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, model_validator

from kerasopt.config.base import FieldError, Strict, check_applicable

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam")
SCHEDULES = ("constant", "cosine")
LOSSES = (
    "auto", "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mse", "mae", "huber",
)
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")

_OPT_OWNERS: dict[str, tuple[str, ...]] = {
    "momentum": ("sgd", "rmsprop"),
    "nesterov": ("sgd",),
    "beta_1": ("adam", "adamw", "nadam"),
    "beta_2": ("adam", "adamw", "nadam"),
    "amsgrad": ("adam", "adamw"),
    "rho": ("rmsprop",),
    "initial_accumulator_value": ("adagrad",),
}


class OptimizerConfig(Strict):
    """Example: ``optimizer: {type: adamw, learning_rate: 3e-3, weight_decay: 1e-4}``"""

    type: Literal[OPTIMIZERS] = "adam"  # type: ignore[valid-type]
    learning_rate: float = Field(1e-3, gt=0.0, description="peak LR; the schedule scales it")
    weight_decay: Optional[float] = Field(None, ge=0.0, description="decoupled decay; adamw default 0.004")
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    beta_1: float = Field(0.9, gt=0.0, lt=1.0)
    beta_2: float = Field(0.999, gt=0.0, lt=1.0)
    amsgrad: bool = False
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    initial_accumulator_value: float = Field(0.1, ge=0.0)
    epsilon: float = Field(1e-7, gt=0.0)
    clipnorm: Optional[float] = Field(None, gt=0.0, description="clip each gradient's norm")
    clipvalue: Optional[float] = Field(None, gt=0.0, description="clip each gradient element")
    global_clipnorm: Optional[float] = Field(None, gt=0.0, description="clip the norm of all gradients")

    @model_validator(mode="after")
    def _checks(self) -> OptimizerConfig:
        check_applicable(self, "type", self.type, _OPT_OWNERS)
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise FieldError("global_clipnorm", "set clipnorm or global_clipnorm, not both")
        return self


class ScheduleConfig(Strict):
    """Learning-rate schedule as a function of the optimizer step.

    Example: ``schedule: {type: cosine, warmup_epochs: 1, alpha: 0.01}``
    """

    type: Literal[SCHEDULES] = "constant"  # type: ignore[valid-type]
    warmup_epochs: float = Field(0.0, ge=0.0, description="linear warm-up from 0, in epochs")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up in optimizer steps (wins over epochs)")
    alpha: float = Field(0.0, ge=0.0, le=1.0, description="cosine floor as a fraction of the peak LR")

    @model_validator(mode="after")
    def _checks(self) -> ScheduleConfig:
        if self.alpha != 0.0 and self.type != "cosine":
            raise FieldError("alpha", f"does not apply to type '{self.type}' (it is used by: cosine)")
        if self.warmup_epochs and self.warmup_steps:
            raise FieldError("warmup_steps", "set warmup_epochs or warmup_steps, not both")
        return self


class TrainConfig(Strict):
    """Example: ``train: {epochs: 10, precision: auto, jit_compile: auto}``"""

    epochs: int = Field(10, gt=0)
    steps_per_epoch: Optional[int] = Field(None, gt=0, description="default: one pass over the training split")
    # auto: mixed_bfloat16 on GPUs >= 8.0 and CPUs with avx512_bf16/amx_bf16,
    # mixed_float16 on GPUs 7.x, float32 otherwise (emulated bf16 on AVX2 is 5x slower).
    precision: Literal[PRECISIONS] = "auto"  # type: ignore[valid-type]
    # auto: on. XLA ran a small CNN 1.4x faster on this 2-core AVX2 CPU and is the
    # usual win on GPUs; models with ops XLA cannot compile fall back to off.
    jit_compile: Union[Literal["auto"], bool] = "auto"
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: Literal[LOSSES] = "auto"  # type: ignore[valid-type]
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_weight: Union[Literal["balanced"], dict[int, float], None] = Field(
        None, description="'balanced' (from training-split counts) or {class: weight}"
    )
    metrics: Optional[list[str]] = Field(None, description="default: accuracy, or mae for regression")
    grad_accum_steps: int = Field(1, ge=1, description="micro-batches per optimizer step")
    steps_per_execution: int = Field(1, ge=1, description="batches run per tf.function call")
    verbose: Literal[0, 1, 2] = Field(1, description="0 silent, 1 progress bar, 2 one line per epoch")

    @model_validator(mode="after")
    def _checks(self) -> TrainConfig:
        if self.schedule.warmup_epochs >= self.epochs:
            raise FieldError(
                "schedule.warmup_epochs",
                f"schedule.warmup_epochs ({self.schedule.warmup_epochs}) must be shorter than "
                f"epochs ({self.epochs})"
            )
        if self.label_smoothing and self.loss not in ("auto", "categorical_crossentropy", "binary_crossentropy"):
            raise FieldError("label_smoothing", f"label_smoothing does not apply to loss '{self.loss}'")
        return self
