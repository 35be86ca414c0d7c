"""The ``train:`` section: precision, XLA, optimizer, schedule, loss."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from kerasopt.config.base import Choice, FieldError, Strict, choice_union
from kerasopt.config.metric_names import canonical

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam")
SCHEDULES = (
    "constant", "step", "multistep", "exponential", "cosine", "polynomial", "one_cycle", "inverse_sqrt",
    "reduce_on_plateau",
)
LOSSES = (
    "auto", "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "mse", "mae", "huber",
)
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")

class OptimizerConfig(Choice):
    """The keys every optimizer has. ``OptimizerConfig(type=...)`` builds that type's option.

    Example: ``optimizer: {type: adamw, learning_rate: 3e-3, weight_decay: 1e-4}``
    """

    DEFAULT: ClassVar[str] = "adam"
    OPTIONS: ClassVar[dict[str, Any]] = {}

    type: Literal[OPTIMIZERS] = "adam"  # type: ignore[valid-type]
    learning_rate: float = Field(1e-3, gt=0.0, description="peak LR; the schedule scales it")
    weight_decay: Optional[float] = Field(None, ge=0.0, description="decoupled decay; adamw default 0.004")
    epsilon: float = Field(1e-7, gt=0.0)
    clipnorm: Optional[float] = Field(None, gt=0.0, description="clip each gradient's norm")
    clipvalue: Optional[float] = Field(None, gt=0.0, description="clip each gradient element")
    global_clipnorm: Optional[float] = Field(None, gt=0.0, description="clip the norm of all gradients")

    @model_validator(mode="after")
    def _clipping(self) -> OptimizerConfig:
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise FieldError("global_clipnorm", "set clipnorm or global_clipnorm, not both")
        return self


def _momentum() -> Any:
    return Field(0.0, ge=0.0, lt=1.0)


class SGDOptimizer(OptimizerConfig):
    type: Literal["sgd"] = "sgd"
    momentum: float = _momentum()
    nesterov: bool = False


class AdamFamily(OptimizerConfig):
    """adam, adamw and nadam (not a type of its own)."""

    beta_1: float = Field(0.9, gt=0.0, lt=1.0)
    beta_2: float = Field(0.999, gt=0.0, lt=1.0)


class AdamOptimizer(AdamFamily):
    type: Literal["adam"] = "adam"
    amsgrad: bool = False


class AdamWOptimizer(AdamFamily):
    type: Literal["adamw"] = "adamw"
    amsgrad: bool = False


class RMSpropOptimizer(OptimizerConfig):
    type: Literal["rmsprop"] = "rmsprop"
    rho: float = Field(0.9, gt=0.0, lt=1.0)
    momentum: float = _momentum()


class AdagradOptimizer(OptimizerConfig):
    type: Literal["adagrad"] = "adagrad"
    initial_accumulator_value: float = Field(0.1, ge=0.0)


class NadamOptimizer(AdamFamily):
    type: Literal["nadam"] = "nadam"


class ScheduleConfig(Choice):
    """Learning-rate schedule as a function of the optimizer step; the peak is ``train.optimizer.learning_rate``.

    These are the keys every type has; ``ScheduleConfig(type=...)`` builds that type's option.
    Every type composes with the linear warm-up (``warmup_epochs`` or ``warmup_steps``): the LR
    ramps to the schedule's step-0 value, then the schedule runs. Epoch-valued keys become
    optimizer steps once, when the schedule is built. Points in time (``step_epochs``,
    ``milestones``) count epochs from the start of training; lengths (``decay_epochs``,
    ``restart_epochs``, ``timescale_epochs`` and the span of cosine, polynomial and one_cycle)
    start when the warm-up ends.

    Example: ``schedule: {type: cosine, warmup_epochs: 1, alpha: 0.01}`` or
    ``schedule: {type: multistep, milestones: [30, 60], gamma: 0.1}``
    """

    DEFAULT: ClassVar[str] = "constant"
    OPTIONS: ClassVar[dict[str, Any]] = {}

    type: Literal[SCHEDULES] = "constant"  # type: ignore[valid-type]
    warmup_epochs: float = Field(0.0, ge=0.0, description="linear warm-up from 0, in epochs")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up in optimizer steps (wins over epochs)")
    # Goyal et al. (2017): with N workers the global batch is N times larger, so the peak LR is
    # N times larger too; pair it with a warm-up of a few epochs.
    scale_by_world_size: bool = Field(False, description="multiply the peak LR by the number of Horovod workers")

    @model_validator(mode="after")
    def _warmup(self) -> ScheduleConfig:
        if self.warmup_epochs and self.warmup_steps:
            raise FieldError("warmup_steps", "set warmup_epochs or warmup_steps, not both")
        return self


def _alpha() -> Any:
    return Field(0.0, ge=0.0, le=1.0, description="final LR as a fraction of the peak")


def _gamma() -> Any:
    return Field(0.1, gt=0.0, le=1.0, description="LR multiplier at each drop")


class ConstantSchedule(ScheduleConfig):
    type: Literal["constant"] = "constant"


class StepSchedule(ScheduleConfig):
    type: Literal["step"] = "step"
    gamma: float = _gamma()
    step_epochs: Optional[float] = Field(None, gt=0.0, description="drop every this many epochs")

    @model_validator(mode="after")
    def _needs_step(self) -> StepSchedule:
        if self.step_epochs is None:
            raise FieldError("step_epochs", "type 'step' needs 'step_epochs' (epochs between drops)")
        return self


class MultiStepSchedule(ScheduleConfig):
    type: Literal["multistep"] = "multistep"
    gamma: float = _gamma()
    milestones: Optional[list[float]] = Field(None, description="epochs at which the LR drops")

    @model_validator(mode="after")
    def _increasing(self) -> MultiStepSchedule:
        m = self.milestones
        if not m:
            raise FieldError("milestones", f"type 'multistep' needs a non-empty list of epochs. Received: {m}")
        if m[0] <= 0 or any(b <= a for a, b in zip(m, m[1:])):
            raise FieldError("milestones", f"must be > 0 and strictly increasing. Received: {m}")
        return self


class ExponentialSchedule(ScheduleConfig):
    """``lr * decay_rate ** (t / decay_epochs)``."""

    type: Literal["exponential"] = "exponential"
    decay_rate: Optional[float] = Field(None, gt=0.0, le=1.0, description="LR multiplier per decay_epochs")
    decay_epochs: float = Field(1.0, gt=0.0)
    staircase: bool = Field(False, description="decay in whole decay_epochs steps, not continuously")

    @model_validator(mode="after")
    def _needs_rate(self) -> ExponentialSchedule:
        if self.decay_rate is None:
            raise FieldError("decay_rate", "type 'exponential' needs 'decay_rate' (LR multiplier per decay_epochs)")
        return self


class CosineSchedule(ScheduleConfig):
    """Cosine decay; with ``restart_epochs``, warm restarts (SGDR, Loshchilov & Hutter)."""

    type: Literal["cosine"] = "cosine"
    alpha: float = _alpha()
    restart_epochs: Optional[float] = Field(None, gt=0.0, description="length of the first cosine cycle")
    t_mul: float = Field(1.0, ge=1.0, description="each cycle is t_mul times longer than the one before")
    m_mul: float = Field(1.0, gt=0.0, le=1.0, description="each restart's peak is m_mul times the one before")

    @model_validator(mode="after")
    def _restarts(self) -> CosineSchedule:
        if self.restart_epochs is None:
            for key in ("t_mul", "m_mul"):
                if getattr(self, key) != 1.0:
                    raise FieldError(key, f"needs 'restart_epochs' (cosine without restarts has one cycle). "
                                          f"Received: {key}={getattr(self, key)}")
        return self


class PolynomialSchedule(ScheduleConfig):
    """``(peak - end) * (1 - t / T) ** power + end``, ``end = alpha * peak``."""

    type: Literal["polynomial"] = "polynomial"
    alpha: float = _alpha()
    power: float = Field(1.0, gt=0.0)


class OneCycleSchedule(ScheduleConfig):
    """Smith's one-cycle (fastai and PyTorch defaults): starts at peak/div_factor, reaches the peak at
    pct_start of the run, ends at peak/(div_factor*final_div_factor); cosine in both phases."""

    type: Literal["one_cycle"] = "one_cycle"
    pct_start: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of the run spent rising")
    div_factor: float = Field(25.0, ge=1.0)
    final_div_factor: float = Field(1e4, ge=1.0)


class InverseSqrtSchedule(ScheduleConfig):
    """``lr * sqrt(T) / sqrt(max(t, T))``: flat for T steps, then ~ 1/sqrt(t)."""

    type: Literal["inverse_sqrt"] = "inverse_sqrt"
    timescale_epochs: float = Field(1.0, gt=0.0, description="T, the length of the flat start")


class PlateauSchedule(ScheduleConfig):
    """A constant LR, multiplied by ``factor`` by a callback when ``monitor`` stalls."""

    type: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    factor: float = Field(0.1, gt=0.0, lt=1.0, description="LR multiplier at each reduction")
    patience: int = Field(10, ge=0, description="epochs without improvement before a reduction")
    min_lr: float = Field(0.0, ge=0.0, description="the LR never goes below this (absolute value)")
    cooldown: int = Field(0, ge=0, description="epochs to wait after a reduction before counting again")
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = Field("auto", description="auto: max for acc/auc metrics, else min")
    min_delta: float = Field(1e-4, ge=0.0, description="smaller changes do not count as improvement")


# The annotations of train.optimizer and train.schedule: the option named by ``type`` (default adam, constant).
AnyOptimizer = choice_union(OptimizerConfig)
AnySchedule = choice_union(ScheduleConfig)


class TrainConfig(Strict):
    """Example: ``train: {epochs: 10, precision: auto, jit_compile: auto}``"""

    epochs: int = Field(10, gt=0)
    steps_per_epoch: Optional[int] = Field(None, gt=0, description="default: one pass over the training split")
    # auto: GPUs follow rules (bf16 >= 8.0, fp16 on 7.x, XLA on); on a CPU the faster setting depends
    # on the model, so auto times the candidates on the real model (training/calibrate.py).
    precision: Literal[PRECISIONS] = Field(  # type: ignore[valid-type]
        "auto", description="auto: mixed_bfloat16 on GPUs >= 8.0, mixed_float16 on GPUs 7.x; on a CPU the "
        "faster of float32 and mixed_bfloat16 (tried only with avx512_bf16/amx_bf16), timed on the real model "
        "and cached (see train.autotune)")
    jit_compile: Union[Literal["auto"], bool] = Field(
        "auto", description="auto: XLA on GPUs except LSTM/GRU; on a CPU XLA on or off, whichever trains the "
        "real model faster (timed and cached; LSTM/GRU never)")
    autotune: bool = Field(True, description="on a CPU, resolve precision/jit_compile: auto by timing a few "
                           "training steps of each candidate (<= 30 s, cached per CPU, model and input in the "
                           "user cache folder); false, or KERASOPT_AUTOTUNE=0, keeps the static rules")
    optimizer: AnyOptimizer = Field(default_factory=AdamOptimizer)  # type: ignore[valid-type]
    schedule: AnySchedule = Field(default_factory=ConstantSchedule)  # type: ignore[valid-type]
    loss: Literal[LOSSES] = "auto"  # type: ignore[valid-type]
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_weight: Union[Literal["balanced"], dict[int, float], None] = Field(
        None, description="'balanced' (from training-split counts) or {class: weight}"
    )
    metrics: Optional[list[str]] = Field(
        None, description="default: accuracy, or mae for regression; also auc, pr_auc, precision, recall, f1, "
        "top_5_accuracy, crossentropy, mse, rmse, mape, r2 (any case; logged under these names)")
    grad_accum_steps: int = Field(1, ge=1, description="micro-batches per optimizer step")
    # 1: the NaN guard, SIGTERM and progress act every batch; k > 1 helps small CPU models (BENCHMARKS.md).
    steps_per_execution: int = Field(1, ge=1, description="batches run per tf.function call; callbacks "
                                     "see one batch per call")
    verbose: Literal[0, 1, 2] = Field(1, description="0 silent, 1 progress bar, 2 one line per epoch")
    # two-phase fine-tuning with model.freeze
    unfreeze_at_epoch: Optional[int] = Field(
        None, ge=1, description="train the model.freeze layers from this epoch on (1-based count of "
        "epochs done: 3 = epochs 1-3 frozen); BatchNorm layers stay frozen, in inference mode")
    unfreeze_lr_factor: float = Field(
        0.1, gt=0.0, description="multiplies the schedule's learning rate from the unfreeze step on")

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, names: Optional[list[str]]) -> Optional[list[str]]:
        if names is None:
            return None
        seen: dict[str, str] = {}
        for name in names:
            canon = canonical(name)  # ValueError names the choices
            if canon in seen:
                raise ValueError(f"'{seen[canon]}' and '{name}' are the same metric ('{canon}'): list it once")
            seen[canon] = name
        return list(seen)

    @model_validator(mode="after")
    def _checks(self) -> TrainConfig:
        if self.schedule.warmup_epochs >= self.epochs:
            raise FieldError(
                "schedule.warmup_epochs",
                f"schedule.warmup_epochs ({self.schedule.warmup_epochs}) must be shorter than "
                f"epochs ({self.epochs})"
            )
        if self.unfreeze_at_epoch is not None and self.unfreeze_at_epoch >= self.epochs:
            raise FieldError("unfreeze_at_epoch", f"unfreeze_at_epoch ({self.unfreeze_at_epoch}) must be "
                             f"before the last epoch (epochs: {self.epochs}), or nothing is fine-tuned")
        if self.unfreeze_lr_factor != 0.1 and self.unfreeze_at_epoch is None:  # a dumped config has the default
            raise FieldError("unfreeze_lr_factor", "applies with train.unfreeze_at_epoch; set that too")
        if self.label_smoothing and self.loss not in ("auto", "categorical_crossentropy", "binary_crossentropy"):
            raise FieldError("label_smoothing", f"label_smoothing does not apply to loss '{self.loss}'")
        return self
