"""Horovod: detection, the tf_keras import shim, initialisation and rank helpers.

``horovod.tensorflow.keras`` does ``from keras import backend``; with Keras 3
installed beside tf_keras that is the wrong Keras. It is imported while
``sys.modules["keras"]`` points at tf_keras, then the entry is restored.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any, Optional

from kerasopt.distribute.backend import Backend
from kerasopt.errors import ConfigError

_hvd: ModuleType | None = None


def launched_by_horovodrun() -> bool:
    """True in a process started by ``horovodrun`` (Gloo sets HOROVOD_RANK) or by ``mpirun``."""
    return "HOROVOD_RANK" in os.environ or "OMPI_COMM_WORLD_RANK" in os.environ or "PMI_RANK" in os.environ


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 outside horovodrun); no import needed."""
    for var in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def import_hvd() -> ModuleType:
    """``horovod.tensorflow.keras``, imported against tf_keras. Raises ConfigError when missing."""
    global _hvd
    if _hvd is not None:
        return _hvd
    from kerasopt._keras import keras

    saved = sys.modules.get("keras")
    sys.modules["keras"] = keras
    try:
        import horovod.tensorflow.keras as hvd
    except ImportError as e:
        raise ConfigError(
            f"distribute.backend: horovod needs Horovod built for TensorFlow ({e}); run `make horovod`"
        ) from None
    finally:
        if saved is not None:
            sys.modules["keras"] = saved
        else:
            sys.modules.pop("keras", None)
    _hvd = hvd
    return hvd


def init_horovod() -> ModuleType:
    """``hvd.init()`` and one GPU per local rank (memory growth on). Returns the module."""
    if not launched_by_horovodrun():
        raise ConfigError(
            "distribute.backend: horovod runs under horovodrun, e.g. "
            "`horovodrun -np 2 -H localhost:2 --gloo kerasopt fit CONFIG`; for one process set backend: none"
        )
    hvd = import_hvd()
    hvd.init()
    from kerasopt._keras import gpus as list_gpus
    from kerasopt._keras import tf

    gpus = list_gpus()
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        tf.config.set_visible_devices(gpus[hvd.local_rank() % len(gpus)], "GPU")
    return hvd


def max_across_workers(hvd: ModuleType):
    """A function ``float -> float`` giving the maximum over all ranks (keeps stop decisions in step)."""
    import horovod.tensorflow as htf

    from kerasopt._keras import tf

    def reduce(value: float) -> float:
        return float(htf.allreduce(tf.constant(value, tf.float64), op=htf.Max, name="kerasopt_sync").numpy())

    return reduce


def broadcast(hvd: ModuleType, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (resume position, for instance)."""
    import horovod.tensorflow as htf

    return htf.broadcast_object(obj, root_rank=0)


def distributed_optimizer(hvd: ModuleType, optimizer, cfg) -> Any:
    """Wrap for allreduce; ``backward_passes_per_step`` carries ``train.grad_accum_steps``."""
    compression = hvd.Compression.fp16 if cfg.distribute.fp16_compression else hvd.Compression.none
    return hvd.DistributedOptimizer(optimizer, compression=compression,
                                    backward_passes_per_step=cfg.train.grad_accum_steps,
                                    average_aggregated_gradients=True)


def average_non_trainable_callback(hvd: ModuleType):
    """Average float non-trainable weights (BatchNorm moving statistics) over ranks before each
    validation and at the end, so every rank validates and exports the same model.

    Horovod averages gradients, so trainable weights agree; BatchNorm statistics are updated
    from each rank's own shard and drift apart without this.
    """
    import horovod.tensorflow as htf

    from kerasopt._keras import keras, tf

    class AverageNonTrainable(keras.callbacks.Callback):
        def _average(self):
            for i, v in enumerate(self.model.non_trainable_weights):
                if v.dtype.is_floating:
                    v.assign(htf.allreduce(tf.convert_to_tensor(v), op=htf.Average, name=f"kerasopt_nt_{i}"))

        def on_test_begin(self, logs=None):
            self._average()

        def on_train_end(self, logs=None):
            self._average()

    return AverageNonTrainable()


class HorovodBackend(Backend):
    """``distribute.backend: horovod``: one process per rank under ``horovodrun``, gradients all-reduced by
    Horovod's ``DistributedOptimizer`` (which also accumulates: ``backward_passes_per_step``).

    Each rank reads its own shard of the training data; metrics are averaged over ranks before any
    callback reads them; stop decisions (a signal, a NaN) are the maximum over ranks; only rank 0
    checkpoints, logs and prints.
    """

    name = "horovod"

    def __init__(self, reason: str) -> None:
        hvd = init_horovod()
        super().__init__(reason, replicas=hvd.size(), rank=hvd.rank(), workers=hvd.size())
        self.hvd = hvd

    def shard(self) -> Optional[tuple[int, int]]:
        return (self.rank, self.replicas) if self.replicas > 1 else None

    def accumulation_steps(self, cfg) -> int:
        return 1  # DistributedOptimizer accumulates (backward_passes_per_step) and allreduces once

    def wrap_optimizer(self, optimizer, cfg):
        return distributed_optimizer(self.hvd, optimizer, cfg)

    def xla_unsupported(self, has_gpu: bool) -> Optional[str]:
        return "XLA cannot compile Horovod's allreduce in this build"  # xla_mpi_ops.cc is patched out (TF 2.21)

    def stop_sync(self):
        return max_across_workers(self.hvd)

    def nan_sync(self):
        return max_across_workers(self.hvd)  # each rank's batch loss is its own shard's

    def from_chief(self, values):
        return tuple(broadcast(self.hvd, tuple(values)))

    def barrier(self) -> None:
        max_across_workers(self.hvd)(0.0)  # an allreduce returns when every rank has joined it

    # finish(): nothing. horovodrun waits for every rank, and a rank need not wait for rank 0's exports.

    def first_callbacks(self) -> dict[str, Any]:
        return {"hvd_broadcast": self.hvd.callbacks.BroadcastGlobalVariablesCallback(0),
                "hvd_average_stats": average_non_trainable_callback(self.hvd)}

    def after_metric_callbacks(self) -> dict[str, Any]:
        return {"hvd_metric_average": self.hvd.callbacks.MetricAverageCallback()}

    @property
    def runs_after_fit(self) -> bool:
        return False  # even at -np 1: `kerasopt prune CONFIG --from RUN_DIR` runs on one process

    @property
    def reports_with_data(self) -> bool:
        return False
