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
                    resume: bool, val_data=None, dist=None) -> tuple[list[keras.callbacks.Callback], dict[str, Any]]:
    """Return the ordered callback list and a name -> callback map for the loop and the summary.

    Under Horovod (``dist.hvd``): initial variables are broadcast from rank 0, metrics are averaged
    before any callback reads them, stop decisions are agreed by all ranks, and only rank 0
    checkpoints, logs and prints. Under MultiWorkerMirroredStrategy (``dist.sync``): every worker
    takes part in each checkpoint save (non-chief ones into a scratch folder) and the stop and
    "first save" decisions are agreed over the workers, so collectives line up; metrics are
    already global there, as gradients are all-reduced inside the step.
    """
    c = cfg.callbacks
    has_val = val_data is not None
    hvd = getattr(dist, "hvd", None)
    chief = dist is None or dist.is_chief
    mw = getattr(dist, "sync", None)  # multi_worker's WorkerSync
    named: dict[str, Any] = {}
    if hvd is not None:
        from kerasopt.distribute.horovod import average_non_trainable_callback

        named["hvd_broadcast"] = hvd.callbacks.BroadcastGlobalVariablesCallback(0)
        named["hvd_average_stats"] = average_non_trainable_callback(hvd)
    named.update(lr=LearningRateLogger(), throughput=Throughput(cfg.data.batch_size))
    if c.ema.enabled:
        from kerasopt.callbacks.ema import WeightEMA

        # export="raw" here: the loop calls fit several times (resumed partial epoch, NaN retries)
        # and EMA weights must go into the model once, at the very end (fit.py does that).
        named["ema"] = WeightEMA.from_config(c.ema, validation_data=val_data, export="raw")
    if hvd is not None:  # after the callbacks that add keys, before those that read them
        named["hvd_metric_average"] = hvd.callbacks.MetricAverageCallback()
    if cfg.train.schedule.type == "reduce_on_plateau":
        from kerasopt.callbacks.plateau import ReduceLROnPlateau

        s = cfg.train.schedule
        _check_monitor(s.monitor, "train.schedule.monitor", has_val)
        named["plateau"] = ReduceLROnPlateau(monitor=s.monitor, mode=s.mode, factor=s.factor, patience=s.patience,
                                             cooldown=s.cooldown, min_delta=s.min_delta, min_lr=s.min_lr)
    if c.nan_guard.enabled:
        g = c.nan_guard
        named["nan_guard"] = NaNGuard(g.max_retries, g.lr_factor, g.loss_bound)
        if hvd is not None:
            from kerasopt.distribute.horovod import max_across_workers

            named["nan_guard"].sync = max_across_workers(hvd)
    if c.early_stopping.enabled:
        es = c.early_stopping
        _check_monitor(es.monitor, "callbacks.early_stopping.monitor", has_val)
        named["early_stopping"] = ResumableEarlyStopping(es.monitor, es.mode, es.patience, es.min_delta,
                                                         es.restore_best_weights)
        if "ema" in named and c.ema.export == "ema":
            # val_* are the EMA model's metrics, so "best weights" are the EMA weights of that epoch.
            named["early_stopping"].weights_fn = _ema_weights_reader(named["ema"])
    guard = named.get("nan_guard")
    stopper = GracefulStop()
    if hvd is not None:
        from kerasopt.distribute.horovod import max_across_workers

        stopper.sync = max_across_workers(hvd)
    elif mw is not None:
        stopper.sync = mw.any
    # Under multi_worker a signal reaches one worker first; only the agreed stop (set on every worker
    # after the same batch) may change whether a save, a collective, happens.
    stopped = (lambda: stopper._saved) if mw is not None else (lambda: stopper.received)
    if chief:  # before the checkpoint: a kill between the two never leaves a "done" epoch without its row
        named["csv_logger"] = keras.callbacks.CSVLogger(str(rd.history), append=resume)
    if c.checkpoint.enabled and (chief or mw is not None):
        ck = c.checkpoint
        _check_monitor(ck.monitor, "callbacks.checkpoint.monitor", has_val)
        named["checkpoint"] = AtomicCheckpoint(
            rd.checkpoints, monitor=ck.monitor, mode=ck.mode, save_top_k=ck.save_top_k,
            every_n_steps=ck.every_n_steps, fingerprint=fingerprint, config=cfg.model_dump(mode="json"),
            skip_save=lambda: bool((guard is not None and guard.tripped()) or stopped()), scratch=not chief,
        )
        if mw is not None:
            named["checkpoint"].agree = lambda missing: mw.from_chief([float(missing)], chief)[0] > 0.5
        stopper.on_stop = named["checkpoint"].save_partial
    named["graceful"] = stopper
    if c.tensorboard.enabled and (chief or mw is not None):
        tb = c.tensorboard
        kw = dict(histogram_freq=tb.histogram_freq, write_graph=tb.write_graph, update_freq=tb.update_freq)
        if chief:
            named["tensorboard"] = TensorBoard(
                log_dir=str(rd.tensorboard), profile_batch=tuple(tb.profile_batches) if tb.profile_batches else 0,
                **kw)
        else:  # weight histograms are collectives under multi_worker: the others log into scratch too
            from kerasopt.distribute.multi_worker import scratch_tensorboard

            named["tensorboard"] = scratch_tensorboard(profile_batch=0, **kw)
    named["progress"] = ProgressDisplay(cfg.train.epochs, steps, verbose=cfg.train.verbose if chief else 0)
    cbs = list(named.values())
    stateful = [cb for cb in cbs if isinstance(cb, StatefulCallback)]
    if "checkpoint" in named:
        named["checkpoint"].callbacks = [cb for cb in stateful if cb is not named["checkpoint"]]
    for cb in stateful:  # variables must exist before a checkpoint is read into them
        build = getattr(cb, "build", None)
        if callable(build):
            build(model)
    return cbs, named
