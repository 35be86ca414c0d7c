"""Pick the distribution backend for a run (see :mod:`kerasopt.distribute.backend` for what one answers)."""

from __future__ import annotations

import os

from kerasopt._keras import gpus as list_gpus
from kerasopt.config.schema import ExperimentConfig
from kerasopt.distribute.backend import Backend
from kerasopt.distribute.horovod import launched_by_horovodrun
from kerasopt.distribute.tf_config import multi_worker_task, parameter_server_task
from kerasopt.errors import ConfigError


def choose_backend(cfg: ExperimentConfig) -> Backend:
    """``auto``: Horovod under horovodrun, MultiWorkerMirroredStrategy when ``TF_CONFIG`` names more
    than one worker, MirroredStrategy with more than one GPU, otherwise none.

    Call it before TensorFlow runs any op: MultiWorkerMirroredStrategy configures the eager context.

    Example:
        >>> choose_backend(cfg).name  # doctest: +SKIP
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
    if backend in ("mirrored", "multi_worker") and cfg.train.grad_accum_steps > 1:
        raise ConfigError("gradient accumulation runs without a tf.distribute strategy for now; "
                          "set distribute.backend: none or horovod", key="train.grad_accum_steps")
    if backend == "none":
        chosen = Backend(reason)
    elif backend == "parameter_server":
        from kerasopt.distribute.parameter_server import ParameterServerBackend

        chosen = ParameterServerBackend(reason, parameter_server_task(backend), cfg)
    elif backend == "horovod" and os.environ.get("HOROVOD_ELASTIC") == "1":  # horovodrun --min-np/--max-np
        from kerasopt.distribute.horovod_elastic import ElasticHorovodBackend

        chosen = ElasticHorovodBackend(reason)
    elif backend == "horovod":
        from kerasopt.distribute.horovod import HorovodBackend

        chosen = HorovodBackend(reason)
    elif backend == "multi_worker":
        from kerasopt.distribute.multi_worker import MultiWorkerBackend

        chosen = MultiWorkerBackend(reason, task)
    else:
        from kerasopt.distribute.mirrored import MirroredBackend

        chosen = MirroredBackend(reason)
    if cfg.data.batch_size % chosen.replicas:
        raise ConfigError(
            f"the global batch must split evenly over {chosen.replicas} replicas. "
            f"Received: batch_size={cfg.data.batch_size}", key="data.batch_size")
    return chosen


def cluster_server(cfg: ExperimentConfig):
    """``serve(say) -> summary`` when this process only serves a cluster (a worker or parameter server of
    ``distribute.backend: parameter_server``), else None. Reads ``TF_CONFIG`` without TensorFlow."""
    task = parameter_server_task(cfg.distribute.backend)
    if task is None or task.task_type == "chief":
        return None
    from kerasopt.distribute.parameter_server import refuse_unsupported, serve

    refuse_unsupported(cfg)  # every process says the same thing about the same config

    return lambda say: serve(task, say)
