"""Build the callback list from the ``callbacks:`` section, in the order that matters.

Order: learning-rate and throughput first (they add keys to the logs), then
early stopping and checkpointing (they read the logs), then the loggers
(CSV, TensorBoard) and the progress display, which show everything.
"""

from __future__ import annotations

import csv
from typing import Any

from kerasopt._keras import keras
from kerasopt.callbacks.checkpoint import AtomicCheckpoint, find_checkpoint, read_meta
from kerasopt.callbacks.lr_logger import LearningRateLogger
from kerasopt.callbacks.progress import ProgressDisplay
from kerasopt.callbacks.throughput import Throughput
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError
from kerasopt.training.rundir import RunDir


def _check_monitor(name: str, key: str, has_val: bool) -> None:
    if name.startswith("val_") and not has_val:
        raise ConfigError(f"monitors '{name}' but there is no validation split (data.validation_split is 0)",
                          key=key)


def _trim_history(path, keep_epochs: int) -> None:
    """On resume, drop CSV rows of epochs after the checkpoint (a kill may land between the two)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < keep_epochs]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def build_callbacks(cfg: ExperimentConfig, rd: RunDir, bundle, model: keras.Model, fingerprint: str, *,
                    resume: bool, has_val: bool) -> tuple[list[keras.callbacks.Callback], dict[str, Any]]:
    """Return the callback list and a name -> callback map for the run summary."""
    c = cfg.callbacks
    named: dict[str, Any] = {}
    cbs: list[keras.callbacks.Callback] = [LearningRateLogger()]
    named["throughput"] = Throughput(cfg.data.batch_size)
    cbs.append(named["throughput"])
    if c.early_stopping.enabled:
        _check_monitor(c.early_stopping.monitor, "callbacks.early_stopping.monitor", has_val)
        es = c.early_stopping
        named["early_stopping"] = keras.callbacks.EarlyStopping(
            monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights)
        cbs.append(named["early_stopping"])
    if c.checkpoint.enabled:
        _check_monitor(c.checkpoint.monitor, "callbacks.checkpoint.monitor", has_val)
        ck = AtomicCheckpoint(rd.checkpoints, monitor=c.checkpoint.monitor, mode=c.checkpoint.mode,
                              fingerprint=fingerprint)
        if resume:
            last = find_checkpoint(rd.checkpoints)
            if last is not None:
                ck.best_value = read_meta(last).get("best_value")
        named["checkpoint"] = ck
        cbs.append(ck)
    if resume:
        last = find_checkpoint(rd.checkpoints)
        _trim_history(rd.history, int(read_meta(last)["epoch"]) if last else 0)
    cbs.append(keras.callbacks.CSVLogger(str(rd.history), append=resume))
    if c.tensorboard.enabled:
        tb = c.tensorboard
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(rd.tensorboard), histogram_freq=tb.histogram_freq,
                                               write_graph=tb.write_graph, update_freq=tb.update_freq))
    steps = cfg.train.steps_per_epoch or bundle.steps_per_epoch
    cbs.append(ProgressDisplay(cfg.train.epochs, steps, verbose=cfg.train.verbose))
    return cbs, named
