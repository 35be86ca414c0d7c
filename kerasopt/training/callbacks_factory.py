"""Build the callback list from the ``callbacks:`` section, in the order that matters.

1. LR logger and throughput add keys to the logs;
2. EMA (updates after each optimizer step, swaps weights for validation, adds
   ``val_raw_*``), the plateau scheduler and the NaN guard;
3. early stopping and the checkpoint read the logs (and save every stateful
   callback's state, so they come after the callbacks that change it);
4. the signal handler saves through the checkpoint after the batch is counted;
5. TensorBoard and the progress display show everything. The CSV history row is written just
   before the checkpoint (a kill between them re-runs that epoch; the other order lost its row).
"""

from __future__ import annotations

from typing import Any

from kerasopt._keras import keras
from kerasopt.callbacks.base import StatefulCallback
from kerasopt.callbacks.checkpoint import AtomicCheckpoint
from kerasopt.callbacks.early_stopping import ResumableEarlyStopping
from kerasopt.callbacks.lr_logger import LearningRateLogger
from kerasopt.callbacks.nan_guard import NaNGuard
from kerasopt.callbacks.progress import ProgressDisplay
from kerasopt.callbacks.signals import GracefulStop
from kerasopt.callbacks.tensorboard import TensorBoard
from kerasopt.callbacks.throughput import Throughput
from kerasopt.config.schema import ExperimentConfig
from kerasopt.distribute.backend import Backend
from kerasopt.errors import ConfigError
from kerasopt.training.rundir import RunDir


def _check_monitor(name: str, key: str, has_val: bool) -> None:
    # (a monitor the run does not log is refused when the config loads: ExperimentConfig._cross)
    if name.startswith("val_") and not has_val:
        raise ConfigError(f"monitors '{name}' but there is no validation split (data.validation_split is 0)",
                          key=key)


def _ema_weights_reader(ema):
    def read(model: keras.Model) -> list:
        with ema.ema_weights():
            return model.get_weights()

    return read


def build_callbacks(cfg: ExperimentConfig, rd: RunDir, model: keras.Model, fingerprint: str, *, steps: int,
                    resume: bool, backend: Backend, val_data=None,
                    ema=None) -> tuple[list[keras.callbacks.Callback], dict[str, Any]]:
    """Return the ordered callback list and a name -> callback map for the loop and the summary.

    ``ema``: the assembly's :class:`~kerasopt.callbacks.ema.WeightEMA` (its update may already be
    fused into the step). The ``backend`` adds its own callbacks (Horovod: the initial broadcast
    and the metric average) and says which process checkpoints, logs and prints, and how a stop
    decision taken on one process reaches the others.
    """
    c = cfg.callbacks
    has_val = val_data is not None
    named: dict[str, Any] = dict(backend.first_callbacks())
    named.update(lr=LearningRateLogger(), throughput=Throughput(cfg.data.batch_size))
    if ema is not None:
        named["ema"] = ema
    named.update(backend.after_metric_callbacks())  # after the callbacks that add keys, before their readers
    if cfg.train.schedule.type == "reduce_on_plateau":
        from kerasopt.callbacks.plateau import ReduceLROnPlateau

        s = cfg.train.schedule
        _check_monitor(s.monitor, "train.schedule.monitor", has_val)
        named["plateau"] = ReduceLROnPlateau(monitor=s.monitor, mode=s.mode, factor=s.factor, patience=s.patience,
                                             cooldown=s.cooldown, min_delta=s.min_delta, min_lr=s.min_lr)
    if c.nan_guard.enabled:
        g = c.nan_guard
        named["nan_guard"] = NaNGuard(g.max_retries, g.lr_factor, g.loss_bound)
        named["nan_guard"].sync = backend.nan_sync()
    if c.early_stopping.enabled:
        named["early_stopping"] = _early_stopping(c, has_val, named.get("ema"))
    _checkpoint_and_signals(cfg, rd, fingerprint, named, backend, has_val, resume)
    if c.tensorboard.enabled:
        tb = c.tensorboard
        kw = dict(histogram_freq=tb.histogram_freq, write_graph=tb.write_graph, update_freq=tb.update_freq)
        board = TensorBoard(log_dir=str(rd.tensorboard),
                            profile_batch=tuple(tb.profile_batches) if tb.profile_batches else 0, **kw) \
            if backend.is_chief else backend.worker_tensorboard(**kw)
        if board is not None:
            named["tensorboard"] = board
    named["progress"] = ProgressDisplay(cfg.train.epochs, steps, verbose=cfg.train.verbose if backend.is_chief else 0)
    named.update(backend.last_callbacks())  # after every callback whose state they capture
    cbs = list(named.values())
    stateful = [cb for cb in cbs if isinstance(cb, StatefulCallback)]
    if "checkpoint" in named:
        named["checkpoint"].callbacks = [cb for cb in stateful if cb is not named["checkpoint"]]
    for cb in stateful:  # variables must exist before a checkpoint is read into them
        build = getattr(cb, "build", None)
        if callable(build):
            build(model)
    return cbs, named


def _early_stopping(c, has_val: bool, ema) -> ResumableEarlyStopping:
    es = c.early_stopping
    _check_monitor(es.monitor, "callbacks.early_stopping.monitor", has_val)
    stopper = ResumableEarlyStopping(es.monitor, es.mode, es.patience, es.min_delta, es.restore_best_weights)
    if ema is not None and c.ema.export == "ema":
        # val_* are the EMA model's metrics, so "best weights" are the EMA weights of that epoch.
        stopper.weights_fn = _ema_weights_reader(ema)
    return stopper


def _checkpoint_and_signals(cfg: ExperimentConfig, rd: RunDir, fingerprint: str, named: dict[str, Any],
                            backend: Backend, has_val: bool, resume: bool) -> None:
    """The CSV history, the checkpoint and the signal handler that saves through it, in that order."""
    c = cfg.callbacks
    guard = named.get("nan_guard")
    stopper = GracefulStop()
    stopper.sync = backend.stop_sync()
    stopped = backend.stop_decided(stopper)
    if backend.is_chief:  # before the checkpoint: a kill between the two never leaves a "done" epoch without its row
        named["csv_logger"] = keras.callbacks.CSVLogger(str(rd.history), append=resume)
    if c.checkpoint.enabled and backend.saves_checkpoints:
        ck = c.checkpoint
        _check_monitor(ck.monitor, "callbacks.checkpoint.monitor", has_val)
        named["checkpoint"] = AtomicCheckpoint(
            rd.checkpoints, monitor=ck.monitor, mode=ck.mode, save_top_k=ck.save_top_k,
            every_n_steps=ck.every_n_steps, fingerprint=fingerprint, config=cfg.model_dump(mode="json"),
            skip_save=lambda: bool((guard is not None and guard.tripped()) or stopped()),
            scratch=not backend.is_chief,
        )
        agree = backend.checkpoint_agree()
        if agree is not None:
            named["checkpoint"].agree = agree
        stopper.on_stop = backend.settled(named["checkpoint"].save_partial)
    named["graceful"] = stopper
