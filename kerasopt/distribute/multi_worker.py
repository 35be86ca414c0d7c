"""MultiWorkerMirroredStrategy: creation, cross-worker agreement, dataset sharding, a local model copy.

Rules this module encodes (each one cost a hang when broken):

- the strategy must exist before TensorFlow runs any op (it configures the
  collective ops of the eager context), so ``fit`` creates it first;
- every collective must run on every worker in the same order: checkpoint
  saves (they read sync-on-read variables with an all-reduce) run on all
  workers, non-chief ones into a scratch folder that is removed at once;
  decisions taken from local state (a signal, a file on the chief's disk) are
  agreed with a tiny all-reduce first; TensorBoard weight histograms read
  BatchNorm statistics collectively, so non-chief workers log into scratch too;
- after training, the weights go into a plain (non-distributed) copy of the
  model, so the chief exports and reports with no collective the others
  would have to join.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from kerasopt._keras import keras, tf
from kerasopt.distribute.backend import Backend
from kerasopt.distribute.tf_config import ClusterTask
from kerasopt.errors import ConfigError


def create_strategy(task: ClusterTask) -> tf.distribute.MultiWorkerMirroredStrategy:
    """``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``; blocks until every worker has started."""
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        if "startup" in str(e) or "initialized" in str(e):
            raise ConfigError(
                "MultiWorkerMirroredStrategy must be created before TensorFlow runs any op: call kerasopt.fit "
                f"(or `kerasopt fit`) first in a fresh process ({e})", key="distribute.backend") from None
        raise


class WorkerSync:
    """Small all-reduces over the workers of ``strategy`` (one traced function per vector length).

    Example:
        >>> sync = WorkerSync(strategy, workers=2)  # doctest: +SKIP
        >>> sync.from_chief([3.0, 7.0], is_chief=task.is_chief)  # the chief's numbers everywhere  # doctest: +SKIP
    """

    def __init__(self, strategy: tf.distribute.Strategy, workers: int) -> None:
        self.strategy = strategy
        self.local_replicas = max(1, strategy.num_replicas_in_sync // max(1, workers))
        self._fns: dict[int, Callable] = {}

    def sum(self, values: Sequence[float]) -> np.ndarray:
        """The element-wise sum over workers of each worker's ``values``."""
        n = len(values)
        if n not in self._fns:
            strategy, local = self.strategy, float(self.local_replicas)

            @tf.function(input_signature=[tf.TensorSpec([n], tf.float64)])
            def reduce(t):
                # each local replica holds 1/local of the worker's value, so the sum counts it once
                per_replica = strategy.run(lambda x: x / local, args=(t,))
                return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

            self._fns[n] = reduce
        return self._fns[n](tf.constant(values, tf.float64)).numpy()

    def any(self, value: float) -> float:
        """> 0 on every worker when ``value`` > 0 on any (stop flags: the same batch everywhere)."""
        return float(self.sum([max(0.0, value)])[0])

    def barrier(self) -> None:
        """Return when every worker got here (non-chief workers wait for the chief's exports)."""
        self.sum([0.0])

    def from_chief(self, values: Sequence[float], is_chief: bool) -> list[float]:
        """The chief's ``values`` on every worker (decisions that read the chief's files)."""
        mine = list(values) if is_chief else [0.0] * len(values)
        return [float(v) for v in self.sum(mine)]


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Auto-shard by DATA: each worker reads the whole pipeline and keeps its slice of every global batch.

    The pipeline batches ``data.batch_size`` (the global batch); the strategy splits each batch
    into ``batch_size / replicas`` pieces, so a step sees the same examples as one process would.
    FILE sharding (the AUTO default for file sources) would change which examples form a batch
    and break the per-epoch seeded order that resume relies on.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def local_copy(model: keras.Model, build: Callable[[], keras.Model]) -> keras.Model:
    """A non-distributed model with ``model``'s weights, built outside any strategy scope.

    All workers must call this together: reading sync-on-read variables (BatchNorm
    statistics) is a collective.
    """
    weights = model.get_weights()
    plain = build()
    plain.set_weights(weights)
    return plain


def scratch_tensorboard(**kwargs) -> keras.callbacks.TensorBoard:
    from kerasopt.callbacks.tensorboard import TensorBoard

    """TensorBoard for a non-chief worker: the same summaries (and collectives) into a temporary
    folder that is removed at the end of each ``fit``."""

    class ScratchTensorBoard(TensorBoard):
        def on_train_end(self, logs=None):
            super().on_train_end(logs)
            shutil.rmtree(self.log_dir, ignore_errors=True)

    return ScratchTensorBoard(log_dir=tempfile.mkdtemp(prefix="kerasopt-worker-tb-"), **kwargs)


class MultiWorkerBackend(Backend):
    """``distribute.backend: multi_worker``: MultiWorkerMirroredStrategy across the processes ``TF_CONFIG`` names.

    Every worker reads the whole pipeline and keeps its slice of each global batch (:func:`shard_by_data`);
    checkpoint saves and TensorBoard histograms are collectives, so every worker runs them (non-chief
    ones into scratch folders); decisions read from one process's state are agreed first.
    """

    name = "multi_worker"

    def __init__(self, reason: str, task: ClusterTask) -> None:
        strategy = create_strategy(task)
        super().__init__(reason, strategy=strategy, replicas=strategy.num_replicas_in_sync, rank=task.rank,
                         workers=task.workers)
        self.sync = WorkerSync(strategy, task.workers)

    def dataset(self, ds):
        return ds if ds is None else shard_by_data(ds)

    def xla_unsupported(self, has_gpu: bool) -> Optional[str]:
        if not has_gpu:  # "not yet implemented for CPU devices" (TF 2.21)
            return "XLA has no CPU kernel for MultiWorkerMirroredStrategy's collectives"
        return None

    def stop_sync(self):
        return self.sync.any

    def from_chief(self, values):
        return tuple(round(v) for v in self.sync.from_chief(list(values), self.is_chief))

    def barrier(self) -> None:
        self.sync.barrier()

    def finish(self) -> None:
        # leave together: a worker that exits while the chief still exports makes the coordination service
        # report it as failed
        self.sync.barrier()

    @property
    def saves_checkpoints(self) -> bool:
        return True  # a save reads sync-on-read variables with an all-reduce: every worker takes part

    def checkpoint_agree(self):
        return lambda missing: self.sync.from_chief([float(missing)], self.is_chief)[0] > 0.5

    def stop_decided(self, stopper):
        # a signal reaches one worker first; only the agreed stop (set on every worker after the same batch)
        # may change whether a save, a collective, happens
        return lambda: stopper.stop_agreed

    def worker_tensorboard(self, **kwargs):
        # weight histograms read BatchNorm statistics collectively: the other workers log into scratch too
        return None if self.is_chief else scratch_tensorboard(profile_batch=0, **kwargs)

    def exportable(self, model, rebuild):
        return local_copy(model, rebuild)  # no collective on the chief alone while it exports
