"""Pick the distribution backend and describe this process's place in it."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Optional

from kerasopt._keras import gpus as list_gpus
from kerasopt._keras import tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.distribute.horovod import init_horovod, launched_by_horovodrun
from kerasopt.distribute.tf_config import multi_worker_task
from kerasopt.errors import ConfigError


@dataclass
class StrategyChoice:
    """``name``: none | mirrored | multi_worker | horovod. ``replicas``: devices/processes sharing one
    global batch; ``workers``: processes (``replicas`` counts every GPU of every worker)."""

    name: str
    strategy: tf.distribute.Strategy
    replicas: int
    reason: str
    rank: int = 0
    hvd: Optional[ModuleType] = None
    workers: int = 1
    sync: Optional[Any] = None  # multi_worker: a WorkerSync for decisions all workers must share

    @property
    def is_chief(self) -> bool:
        """Only the chief (rank 0) writes files and prints the summary."""
        return self.rank == 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "replicas": self.replicas, "workers": self.workers, "reason": self.reason}

    def dataset(self, ds):
        """``ds`` ready for ``model.fit`` under this strategy (multi_worker: auto-shard by DATA)."""
        if ds is None or self.name != "multi_worker":
            return ds
        from kerasopt.distribute.multi_worker import shard_by_data

        return shard_by_data(ds)


def choose_strategy(cfg: ExperimentConfig) -> StrategyChoice:
    """``auto``: Horovod under horovodrun, MultiWorkerMirroredStrategy when ``TF_CONFIG`` names more
    than one worker, MirroredStrategy with more than one GPU, otherwise none.

    Call it before TensorFlow runs any op: MultiWorkerMirroredStrategy configures the eager context.

    Example:
        >>> choose_strategy(cfg).name  # doctest: +SKIP
        'none'
    """
    backend = cfg.distribute.backend
    gpus = list_gpus()
    task = None if backend == "auto" and launched_by_horovodrun() else multi_worker_task(backend)
    if backend == "auto":
        if launched_by_horovodrun():
            backend, reason = "horovod", "auto: launched by horovodrun"
        elif task is not None:
            backend, reason = "multi_worker", f"auto: TF_CONFIG names {task.workers} workers"
        else:
            backend = "mirrored" if len(gpus) > 1 else "none"
            reason = f"auto: {len(gpus)} GPU(s) visible"
    else:
        reason = "set in the config"
    if backend == "none":
        choice = StrategyChoice("none", tf.distribute.get_strategy(), 1, reason)
    elif backend == "horovod":
        hvd = init_horovod()
        choice = StrategyChoice("horovod", tf.distribute.get_strategy(), hvd.size(), reason, hvd.rank(), hvd,
                                workers=hvd.size())
    else:
        if cfg.train.grad_accum_steps > 1:
            raise ConfigError("gradient accumulation runs without a tf.distribute strategy for now; "
                              "set distribute.backend: none or horovod", key="train.grad_accum_steps")
        if backend == "multi_worker":
            from kerasopt.distribute.multi_worker import WorkerSync, create_strategy

            strategy = create_strategy(task)
            choice = StrategyChoice("multi_worker", strategy, strategy.num_replicas_in_sync, reason, task.rank,
                                    workers=task.workers, sync=WorkerSync(strategy, task.workers))
        else:
            strategy = tf.distribute.MirroredStrategy()
            choice = StrategyChoice("mirrored", strategy, strategy.num_replicas_in_sync, reason)
    if cfg.data.batch_size % choice.replicas:
        raise ConfigError(
            f"the global batch must split evenly over {choice.replicas} replicas. "
            f"Received: batch_size={cfg.data.batch_size}", key="data.batch_size")
    return choice


def xla_unsupported(choice: StrategyChoice, has_gpu: bool) -> Optional[str]:
    """Why XLA cannot compile this strategy's training step here, or None when it can."""
    if choice.hvd is not None:  # xla_mpi_ops.cc is patched out of our TF 2.21 build
        return "XLA cannot compile Horovod's allreduce in this build"
    if choice.name == "multi_worker" and not has_gpu:  # "not yet implemented for CPU devices" (TF 2.21)
        return "XLA has no CPU kernel for MultiWorkerMirroredStrategy's collectives"
    return None
