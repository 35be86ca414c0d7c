"""Horovod: detection, the tf_keras import shim, initialisation and rank helpers.

``horovod.tensorflow.keras`` does ``from keras import backend``; with Keras 3
installed beside tf_keras that is the wrong Keras. It is imported while
``sys.modules["keras"]`` points at tf_keras, then the entry is restored.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

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
