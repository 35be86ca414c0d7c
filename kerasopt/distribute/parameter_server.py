"""ParameterServerStrategy: asynchronous training with a chief, workers and parameter servers.

``TF_CONFIG`` names the cluster; every process runs the same ``kerasopt fit CONFIG``:

- the **chief** (the coordinator) runs ``model.fit``: it schedules each step on whichever worker is
  free, and it alone writes the run directory;
- a **worker** runs the steps it is sent (forward, backward, the update of the variables on the
  parameter servers), with no lock-step between workers: training is asynchronous;
- a **ps** task holds the variables.

Workers and parameter servers only serve (:func:`serve`); they leave when the chief has finished.

What differs from the synchronous backends, and why:

- each step takes one ``data.batch_size`` batch on one worker (there is no global batch to split), and
  ``steps_per_epoch`` counts steps over all workers, so an epoch still sees about one pass of the data;
- every worker reads the whole training stream in its own order: each worker draws the salt of its
  epochs' shuffle seeds when its copy of the pipeline starts (two workers reading the same batches in the
  same order would train on each batch twice), so the order is not reproducible;
- validation runs on the chief, on a plain copy of the weights at each epoch end: exact and in order
  (Keras's exact evaluation, ``pss_evaluation_shards``, shards the set inside a function where the
  dataset's sharding options are lost, and its automatic file sharding fails on in-memory sources);
- callbacks see step results only at the epoch end (Keras hands batch hooks unresolved values), so the NaN
  guard checks the epoch's loss and the step count is what was scheduled; a SIGTERM waits for the steps
  in flight, then saves where the run stands (the count of steps is exact on resume, the examples differ
  as they would anyway);
- what cannot work is refused with one line naming the key: a fused or per-batch EMA, step checkpoints,
  gradient accumulation, per-batch TensorBoard and profiling, distillation, op determinism.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Optional

from kerasopt._keras import keras, tf
from kerasopt.distribute.backend import Backend
from kerasopt.distribute.tf_config import ClusterTask
from kerasopt.errors import ConfigError

CHIEF_WAIT_SECONDS = 600.0  # a worker or ps gives up when the chief has not appeared by then


def refuse_unsupported(cfg) -> None:
    """One line naming the first key asynchronous training cannot honour, before any TensorFlow work."""
    c, t = cfg.callbacks, cfg.train
    why = "under distribute.backend: parameter_server"
    if c.ema.enabled:
        raise ConfigError(f"the weight EMA updates after every step on the chief, which never sees a step {why}; "
                          "set callbacks.ema.enabled: false", key="callbacks.ema.enabled")
    if c.checkpoint.enabled and c.checkpoint.every_n_steps:
        raise ConfigError(f"checkpoints are saved at epoch ends (and on SIGTERM) {why}; set "
                          "callbacks.checkpoint.every_n_steps: 0", key="callbacks.checkpoint.every_n_steps")
    if t.grad_accum_steps > 1:
        raise ConfigError(f"gradient accumulation is not available {why}", key="train.grad_accum_steps")
    if c.tensorboard.enabled and c.tensorboard.update_freq != "epoch":
        raise ConfigError(f"TensorBoard writes per epoch {why} (step results reach the chief at the epoch end); "
                          "set callbacks.tensorboard.update_freq: epoch", key="callbacks.tensorboard.update_freq")
    if c.tensorboard.enabled and c.tensorboard.profile_batches:
        raise ConfigError(f"the profiler traces the chief, which runs no step {why}; remove "
                          "callbacks.tensorboard.profile_batches", key="callbacks.tensorboard.profile_batches")
    if cfg.distill is not None:
        raise ConfigError(f"distillation is not available {why}", key="distill")
    if cfg.deterministic:
        raise ConfigError(f"asynchronous training is not deterministic {why}; set deterministic: false",
                          key="deterministic")
    if os.environ.get("TF_DETERMINISTIC_OPS", "").strip().lower() in ("1", "true", "yes"):
        raise ConfigError(f"op determinism forbids the clock each worker's data order is salted with {why}; "
                          "unset TF_DETERMINISTIC_OPS", key="TF_DETERMINISTIC_OPS")


def _chief_address(task: ClusterTask) -> tuple[str, int]:
    host, port = task.cluster["chief"][0].rsplit(":", 1)
    return host, int(port)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def serve(task: ClusterTask, say: Callable[[str], None], *, wait_seconds: float = CHIEF_WAIT_SECONDS,
          poll: float = 1.0) -> dict[str, Any]:
    """Run this worker's or parameter server's TensorFlow server until the chief has come and gone.

    The chief's port is polled: seen open once, then closed three polls in a row, means the chief has
    finished (or died; a chief restarted with ``--resume`` needs its workers and ps started again).
    """
    cluster = tf.train.ClusterSpec(task.cluster)
    server = tf.distribute.Server(cluster, job_name=task.task_type, task_index=task.task_index, protocol="grpc",
                                  start=True)
    host, port = _chief_address(task)
    say(f"parameter_server: {task.task_type} {task.task_index} serving at {task.address} "
        f"({server.target}); the chief is {host}:{port}")
    t0, seen, misses = time.monotonic(), None, 0
    while True:
        if _listening(host, port):
            seen, misses = seen or time.monotonic(), 0
        elif seen is not None:
            misses += 1
            if misses >= 3:
                break
        elif time.monotonic() - t0 > wait_seconds:
            raise RuntimeError(f"parameter_server: the chief at {host}:{port} did not start within "
                               f"{wait_seconds:.0f} s; {task.task_type} {task.task_index} stops")
        time.sleep(poll)
    served = time.monotonic() - seen
    say(f"parameter_server: the chief at {host}:{port} has finished; {task.task_type} {task.task_index} "
        f"served for {served:.1f} s")
    return {"role": task.task_type, "index": task.task_index, "served_seconds": round(served, 3)}


def _worker_salt() -> tf.Tensor:
    """A number drawn where the pipeline runs, from the clock: the pipeline's graph is the same on every
    worker (and seeded ops are seeded alike), so nothing else tells two workers' copies apart."""
    micros = tf.cast(tf.timestamp() * 1e6, tf.int64)
    return 1 + tf.math.floormod(micros, (1 << 23) - 1)


def per_worker_epochs(epoch: tf.Tensor) -> tf.Tensor:
    """Epoch ``e`` -> a number that keys this worker's own order of that epoch (and its augmentation)."""
    return epoch + _worker_salt() * (1 << 16)


def _python_ops(ds: tf.data.Dataset) -> list[str]:
    """Ops in ``ds``'s graph that run Python (they cannot run on a remote worker)."""
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(ds._as_serialized_graph().numpy())  # noqa: SLF001 - tf.data's own serializer
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return sorted({n.op for n in nodes if "PyFunc" in n.op or n.op == "GeneratorDataset"})


class ChiefValidation(keras.callbacks.Callback):
    """``val_*`` of each epoch, computed on the chief with a plain model holding the current weights.

    The evaluation runs in a thread of its own: ``model.fit`` holds the strategy's scope in this one
    (scopes are per thread), and a model built or evaluated there would be sent to the workers.
    """

    def __init__(self, assembly) -> None:
        super().__init__()
        self.assembly = assembly
        self._plain = None

    def _evaluate(self, weights: list, out: dict) -> None:
        try:
            a = self.assembly
            if self._plain is None:
                self._plain = a.evaluation_model()
            self._plain.set_weights(weights)
            out["results"] = self._plain.evaluate(a.val, verbose=0, return_dict=True)
        except BaseException as e:  # noqa: BLE001 - raised again in the training thread
            out["error"] = e

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        out: dict[str, Any] = {}
        worker = threading.Thread(target=self._evaluate, args=(self.model.get_weights(), out),
                                  name="kerasopt-chief-validation")
        worker.start()
        worker.join()
        if "error" in out:
            raise out["error"]
        logs.update({f"val_{k}": float(v) for k, v in out["results"].items()})


class ParameterServerBackend(Backend):
    """``distribute.backend: parameter_server`` on the chief: the coordinator of an asynchronous cluster."""

    name = "parameter_server"

    def __init__(self, reason: str, task: ClusterTask, cfg) -> None:
        refuse_unsupported(cfg)
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        strategy = tf.distribute.ParameterServerStrategy(resolver)
        super().__init__(reason, strategy=strategy, replicas=1, rank=task.rank, workers=task.workers)
        self.task = task
        self.parameter_servers = len(task.cluster["ps"])
        self.coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
        self._checked = False

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "parameter_servers": self.parameter_servers, "asynchronous": True}

    @property
    def distributed(self) -> bool:
        return True

    # -- data ----------------------------------------------------------------------------------------------
    def epoch_keys(self) -> Optional[Callable[[tf.Tensor], tf.Tensor]]:
        return per_worker_epochs

    def dataset(self, ds):
        python = [] if ds is None else _python_ops(ds)
        if python:
            raise ConfigError(
                f"this data pipeline runs Python ({', '.join(python)}), which cannot run on a remote worker "
                "under distribute.backend: parameter_server; use an in-memory, CSV, image-folder or TFRecord "
                "source", key="data.source")
        return ds

    def fit_validation(self, val):
        return None  # validated on the chief by ChiefValidation, exactly

    @property
    def fuses_ema(self) -> bool:
        return False

    def xla_unsupported(self, has_gpu: bool) -> Optional[str]:
        # seen: "Trying to access resource ... located in device /job:ps ... from device /job:worker"
        return "XLA cannot compile a step whose variables live on the parameter servers"

    def policy_unsupported(self, policy: str) -> Optional[str]:
        if policy == "mixed_float16":  # Keras: "Mixed precision is not supported with ... ParameterServerStrategyV2"
            return "Keras has no float16 loss scaling under ParameterServerStrategy"
        return None

    # -- callbacks -----------------------------------------------------------------------------------------
    def adapt_callbacks(self, named: dict[str, Any], assembly) -> dict[str, Any]:
        """Batch hooks get unresolved step results under this strategy: every kerasopt callback with one
        says it can take them (Keras refuses the fit otherwise) and reads its logs at the epoch end. The
        chief's validation goes first, so every other callback reads ``val_*``."""
        if assembly.val is not None:
            named = {"validation": ChiefValidation(assembly), **named}
        for cb in named.values():
            if not isinstance(cb, keras.callbacks.Callback) or getattr(cb, "_supports_tf_logs", False):
                continue
            if cb._implements_train_batch_hooks() or cb._implements_test_batch_hooks():  # noqa: SLF001
                cb._supports_tf_logs = True  # noqa: SLF001 - Keras's own switch for RemoteValue logs
                cb.remote_batch_logs = True
        return named

    def settled(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def after_steps_in_flight():
            self.coordinator.join()  # the steps already scheduled finish before the variables are read
            return fn()

        return after_steps_in_flight

    # -- after training ------------------------------------------------------------------------------------
    def exportable(self, model, rebuild):
        from kerasopt.distribute.multi_worker import local_copy

        self.coordinator.join()
        return local_copy(model, rebuild)  # plain variables: exports and reports need no cluster
