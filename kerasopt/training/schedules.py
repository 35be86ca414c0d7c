"""Learning-rate schedules: functions of the optimizer step, serializable.

Epoch-based settings are converted to steps once, in :func:`build_schedule`, from the dataset
size (``steps_per_epoch`` counts optimizer steps, i.e. after gradient accumulation). The
schedule classes only ever see steps. The built schedule is always
``ScaledSchedule(LinearWarmup(inner) or inner)``: the outer ``scale`` variable is what callbacks
(reduce-on-plateau, the NaN guard) change at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from kerasopt.config.schema import ExperimentConfig
from kerasopt.config.train_schema import (
    CosineSchedule,
    ExponentialSchedule,
    InverseSqrtSchedule,
    MultiStepSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    PolynomialSchedule,
    ScheduleConfig,
    StepSchedule,
)
from kerasopt.errors import ConfigError
from kerasopt.registry import Registry
from kerasopt.training.lr_schedules import (  # noqa: F401  (re-exported: the public names)
    ConstantSchedule,
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    FactorFrom,
    InverseSqrtDecay,
    LinearWarmup,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    ScaledSchedule,
    StepDecay,
    _fraction,
    _positive,
)

SCHEDULES: Registry = Registry("schedule", key="train.schedule.type")


@dataclass(frozen=True)
class StepPlan:
    """The run in optimizer steps; ``steps(epochs)`` is the one epoch -> step conversion."""

    steps_per_epoch: int
    epochs: int
    warmup_steps: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def decay_steps(self) -> int:
        """Steps after the warm-up: the span of cosine, polynomial and one_cycle."""
        return max(1, self.total_steps - self.warmup_steps)

    def steps(self, epochs: float) -> int:
        return max(1, round(epochs * self.steps_per_epoch))


@SCHEDULES.register("constant")
def _constant(lr: float, plan: StepPlan, s: ScheduleConfig):
    return ConstantSchedule(lr)


@SCHEDULES.register("reduce_on_plateau")
def _plateau(lr: float, plan: StepPlan, s: PlateauSchedule):
    if s.min_lr >= lr:
        raise ConfigError(f"must be below the peak learning rate {lr:g}. Received: {s.min_lr}",
                          key="train.schedule.min_lr")
    return ConstantSchedule(lr)  # callbacks/plateau.py reduces it through ScaledSchedule.scale


@SCHEDULES.register("step")
def _step(lr: float, plan: StepPlan, s: StepSchedule):
    size = plan.steps(s.step_epochs)
    if size <= plan.warmup_steps:
        raise ConfigError(f"the first drop must come after the warm-up ({plan.warmup_steps} steps). "
                          f"Received: {s.step_epochs} ({size} steps)", key="train.schedule.step_epochs")
    return StepDecay(lr, size, s.gamma, start_step=plan.warmup_steps)


@SCHEDULES.register("multistep")
def _multistep(lr: float, plan: StepPlan, s: MultiStepSchedule):
    m = s.milestones
    if m[-1] >= plan.epochs:
        raise ConfigError(f"must be < train.epochs ({plan.epochs}). Received: {m}", key="train.schedule.milestones")
    bounds = [plan.steps(e) - plan.warmup_steps for e in m]
    if bounds[0] <= 0:
        raise ConfigError(f"must come after the warm-up ({plan.warmup_steps} steps). Received: {m}",
                          key="train.schedule.milestones")
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ConfigError(f"two milestones fall on the same optimizer step. Received: {m}",
                          key="train.schedule.milestones")
    return MultiStepDecay(lr, bounds, s.gamma)


@SCHEDULES.register("exponential")
def _exponential(lr: float, plan: StepPlan, s: ExponentialSchedule):
    return ExponentialDecay(lr, plan.steps(s.decay_epochs), s.decay_rate, staircase=s.staircase)


@SCHEDULES.register("cosine")
def _cosine(lr: float, plan: StepPlan, s: CosineSchedule):
    if s.restart_epochs is None:
        return CosineDecay(lr, plan.decay_steps, alpha=s.alpha)
    return CosineDecayRestarts(lr, plan.steps(s.restart_epochs), t_mul=s.t_mul, m_mul=s.m_mul, alpha=s.alpha)


@SCHEDULES.register("polynomial")
def _polynomial(lr: float, plan: StepPlan, s: PolynomialSchedule):
    return PolynomialDecay(lr, plan.decay_steps, power=s.power, alpha=s.alpha)


@SCHEDULES.register("one_cycle")
def _one_cycle(lr: float, plan: StepPlan, s: OneCycleSchedule):
    return OneCycle(lr, plan.decay_steps, pct_start=s.pct_start, div_factor=s.div_factor,
                    final_div_factor=s.final_div_factor)


@SCHEDULES.register("inverse_sqrt")
def _inverse_sqrt(lr: float, plan: StepPlan, s: InverseSqrtSchedule):
    return InverseSqrtDecay(lr, plan.steps(s.timescale_epochs))


def warmup_steps_for(cfg: ExperimentConfig, steps_per_epoch: int) -> int:
    """Warm-up length in optimizer steps (``warmup_steps`` wins over ``warmup_epochs``)."""
    s = cfg.train.schedule
    return int(s.warmup_steps or round(s.warmup_epochs * steps_per_epoch))


def build_schedule(cfg: ExperimentConfig, steps_per_epoch: int, world_size: int = 1) -> ScaledSchedule:
    """The configured schedule over ``epochs * steps_per_epoch`` optimizer steps, warm-up included.

    Returns ``ScaledSchedule(LinearWarmup(inner))`` (no ``LinearWarmup`` without warm-up) with
    scale 1; with ``train.unfreeze_at_epoch``, ``FactorFrom`` drops the LR by
    ``unfreeze_lr_factor`` from that epoch's first step on. The peak is
    ``train.optimizer.learning_rate``, times ``world_size`` when
    ``train.schedule.scale_by_world_size`` is on (Horovod's linear scaling rule).

    Example:
        >>> sched = build_schedule(cfg, steps_per_epoch=12)  # doctest: +SKIP
        >>> sched.set_scale(0.1)  # doctest: +SKIP
    """
    if world_size < 1:
        raise ValueError(f"`world_size` must be >= 1. Received: world_size={world_size}")
    _positive("steps_per_epoch", steps_per_epoch)
    s = cfg.train.schedule
    plan = StepPlan(int(steps_per_epoch), cfg.train.epochs, warmup_steps_for(cfg, steps_per_epoch))
    if plan.warmup_steps >= plan.total_steps:
        raise ConfigError(
            f"warm-up of {plan.warmup_steps} steps is not shorter than training ({plan.total_steps} steps)",
            key="train.schedule.warmup_steps",
        )
    lr = cfg.train.optimizer.learning_rate * (world_size if s.scale_by_world_size else 1)
    inner = SCHEDULES.get(s.type)(lr, plan, s)
    sched = LinearWarmup(inner, plan.warmup_steps) if plan.warmup_steps else inner
    if cfg.train.unfreeze_at_epoch is not None and cfg.train.unfreeze_lr_factor != 1.0:
        sched = FactorFrom(sched, plan.steps(cfg.train.unfreeze_at_epoch), cfg.train.unfreeze_lr_factor)
    return ScaledSchedule(sched)
