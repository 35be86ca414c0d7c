"""Pick the distribution backend and describe this process's place in it."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Optional

from kerasopt._keras import tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.distribute.horovod import init_horovod, launched_by_horovodrun
from kerasopt.errors import ConfigError


@dataclass
class StrategyChoice:
    """``name``: none | mirrored | horovod. ``replicas``: devices/processes sharing one global batch."""

    name: str
    strategy: tf.distribute.Strategy
    replicas: int
    reason: str
    rank: int = 0
    hvd: Optional[ModuleType] = None

    @property
    def is_chief(self) -> bool:
        """Only the chief (rank 0) writes files and prints the summary."""
        return self.rank == 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "replicas": self.replicas, "reason": self.reason}


def choose_strategy(cfg: ExperimentConfig) -> StrategyChoice:
    """``auto``: Horovod under horovodrun, MirroredStrategy with more than one GPU, otherwise none.

    Example:
        >>> choose_strategy(cfg).name  # doctest: +SKIP
        'none'
    """
    backend = cfg.distribute.backend
    gpus = tf.config.list_physical_devices("GPU")
    if backend == "auto":
        if launched_by_horovodrun():
            backend, reason = "horovod", "auto: launched by horovodrun"
        else:
            backend = "mirrored" if len(gpus) > 1 else "none"
            reason = f"auto: {len(gpus)} GPU(s) visible"
    else:
        reason = "set in the config"
    if backend == "none":
        choice = StrategyChoice("none", tf.distribute.get_strategy(), 1, reason)
    elif backend == "horovod":
        hvd = init_horovod()
        choice = StrategyChoice("horovod", tf.distribute.get_strategy(), hvd.size(), reason, hvd.rank(), hvd)
    else:
        if cfg.train.grad_accum_steps > 1:
            raise ConfigError("gradient accumulation runs without a tf.distribute strategy for now; "
                              "set distribute.backend: none or horovod", key="train.grad_accum_steps")
        strategy = tf.distribute.MirroredStrategy()
        choice = StrategyChoice("mirrored", strategy, strategy.num_replicas_in_sync, reason)
    if cfg.data.batch_size % choice.replicas:
        raise ConfigError(
            f"the global batch must split evenly over {choice.replicas} replicas. "
            f"Received: batch_size={cfg.data.batch_size}", key="data.batch_size")
    return choice
