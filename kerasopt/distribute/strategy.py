"""Pick the distribution backend. Horovod and multi-worker arrive with the Distributed issue."""

from __future__ import annotations

from dataclasses import dataclass

from kerasopt._keras import tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError


@dataclass
class StrategyChoice:
    name: str  # none | mirrored
    strategy: tf.distribute.Strategy
    replicas: int
    reason: str


def choose_strategy(cfg: ExperimentConfig) -> StrategyChoice:
    """``auto``: MirroredStrategy when more than one GPU is visible, otherwise none.

    Example:
        >>> choose_strategy(cfg).name  # doctest: +SKIP
        'none'
    """
    backend = cfg.distribute.backend
    gpus = tf.config.list_physical_devices("GPU")
    if backend == "auto":
        backend = "mirrored" if len(gpus) > 1 else "none"
        reason = f"auto: {len(gpus)} GPU(s) visible"
    else:
        reason = "set in the config"
    if backend == "none":
        return StrategyChoice("none", tf.distribute.get_strategy(), 1, reason)
    if cfg.train.grad_accum_steps > 1:
        raise ConfigError("gradient accumulation runs without a distribution strategy for now; "
                          "set distribute.backend: none", key="train.grad_accum_steps")
    strategy = tf.distribute.MirroredStrategy()
    return StrategyChoice("mirrored", strategy, strategy.num_replicas_in_sync, reason)
