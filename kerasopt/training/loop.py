"""The training loop around ``model.fit``: partial epochs after a resume, NaN recovery, signals.

``model.fit`` runs whole epochs. A run resumed from a mid-epoch checkpoint
first runs the rest of that epoch (the epoch's data stream with the done
batches skipped), then the remaining epochs. When the NaN guard stops a fit,
the last good checkpoint is reloaded, the LR scale is multiplied by
``lr_factor`` and training continues from there, up to ``max_retries`` times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from kerasopt._keras import keras
from kerasopt.callbacks.base import StatefulCallback
from kerasopt.callbacks.checkpoint import find_checkpoint, read_meta, restore_checkpoint
from kerasopt.errors import TrainingDiverged
from kerasopt.io.history import trim_history


def lr_scale_variable(model: keras.Model):
    opt = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    return getattr(getattr(opt, "_learning_rate", None), "scale", None)


class TrainingLoop:
    """Runs fit segments until the configured epochs are done, early stopping ends, or a signal arrives."""

    def __init__(self, model: keras.Model, callbacks: list, named: dict[str, Any], *, epochs: int,
                 steps_per_epoch: int, stream: Callable[[int], Any], val_data, class_weight,
                 history_csv: Optional[Path],
                 checkpoints: Path, say: Callable[[str], None], freeze=None) -> None:
        self.model = model
        self.callbacks = callbacks
        self.named = named
        self.epochs = epochs
        self.steps = steps_per_epoch
        self.stream = stream
        self.val_data = val_data
        self.class_weight = class_weight
        self.history_csv = history_csv
        self.checkpoints = checkpoints
        self.say = say
        self.epoch_logs: dict[int, dict[str, float]] = {}
        self.interrupted: Optional[str] = None
        self.stateful = [cb for cb in callbacks if isinstance(cb, StatefulCallback)]
        self.freeze = freeze  # a training.freezing.FreezePlan: segments end where the frozen layers unfreeze
        self.position = (0, 0)  # (epoch, batches done) where the current fit segment started

    def use_callbacks(self, callbacks: list, named: dict[str, Any]) -> None:
        """Train with a rebuilt callback list from now on (elastic Horovod, when this process's rank changed)."""
        self.callbacks = callbacks
        self.named = named
        self.stateful = [cb for cb in callbacks if isinstance(cb, StatefulCallback)]
        csv_logger = named.get("csv_logger")
        self.history_csv = Path(csv_logger.filename) if csv_logger is not None else None

    def reshard(self, assembly, shard: Optional[tuple[int, int]]) -> None:
        """Read the data as ``shard`` says from now on: a new bundle for the assembly, its training stream
        and validation data (elastic Horovod, after the number of processes changed)."""
        from kerasopt.data.pipeline import build_datasets

        assembly.bundle = build_datasets(assembly.cfg, shard=shard)
        assembly.val = assembly.backend.dataset(assembly.labelled(assembly.bundle.val))
        self.val_data = assembly.backend.fit_validation(assembly.val)
        self.stream = assembly.train_stream

    def _fit(self, epoch: int, batch: int) -> keras.callbacks.History:
        self.position = (epoch, batch)
        ckpt = self.named.get("checkpoint")
        if ckpt is not None:
            ckpt.set_position(epoch, batch)
        if batch:  # finish the interrupted epoch first
            data, end, steps = self.stream(epoch).skip(batch), epoch + 1, self.steps - batch
        else:
            data, end, steps = self.stream(epoch), self.epochs, self.steps
        if self.freeze is not None:
            end = self.freeze.segment_end(epoch, end)
            if self.freeze.apply(self.model, epoch) and epoch == self.freeze.unfreeze_epoch:
                self.say(f"epoch {epoch + 1}: unfrozen {len(self.freeze.layers)} layers")
        hist = self.model.fit(data, validation_data=self.val_data, initial_epoch=epoch, epochs=end,
                              steps_per_epoch=steps, callbacks=self.callbacks, class_weight=self.class_weight,
                              verbose=0)
        csv_logger = self.named.get("csv_logger")
        if csv_logger is not None:
            csv_logger.append = True  # later segments add to the same file
        for e, logs in zip(hist.epoch, _rows(hist.history)):
            self.epoch_logs[e] = logs
        return hist

    def run(self, start_epoch: int = 0, start_batch: int = 0) -> dict[str, list[float]]:
        epoch, batch = start_epoch, start_batch
        if batch >= self.steps:  # stopped after the epoch's last batch: the epoch is done
            epoch, batch = epoch + 1, 0
        guard = self.named.get("nan_guard")
        stopper = self.named.get("graceful")
        es = self.named.get("early_stopping")
        while epoch < self.epochs:
            hist = self._fit(epoch, batch)
            if stopper is not None and stopper.received:
                self.interrupted = stopper.received
                break
            if guard is not None and guard.tripped():
                epoch, batch = self._recover(guard)
                continue
            if es is not None and es.stopped_epoch:
                break
            done = (hist.epoch[-1] + 1) if hist.epoch else epoch
            epoch, batch = (done, 0)
            if done >= self.epochs:
                break
        return self.history()

    def _recover(self, guard) -> tuple[int, int]:
        event = dict(guard.event or {})
        recoveries = list(guard.recoveries)
        if len(recoveries) >= guard.max_retries:
            raise TrainingDiverged(
                f"loss diverged ({event.get('reason')}, loss={event.get('loss')}) at epoch {event.get('epoch')} "
                f"batch {event.get('batch')} after {len(recoveries)} recoveries; the last good checkpoint is kept "
                f"in {self.checkpoints}"
            )
        last = find_checkpoint(self.checkpoints)
        if last is None:
            raise TrainingDiverged(f"loss diverged at epoch {event.get('epoch')} and there is no checkpoint to "
                                   "recover from (enable callbacks.checkpoint)")
        scale = lr_scale_variable(self.model)
        # The checkpoint holds the scale it was saved with: compound from the scale in use now, or
        # every retry from the same checkpoint would land on the same LR (and diverge the same way).
        before = float(scale.numpy()) if scale is not None else 1.0
        meta = restore_checkpoint(last, self.model, self.stateful)
        if scale is not None:
            scale.assign(before * guard.lr_factor)
            event["lr_scale"] = float(scale.numpy())
        event["restored_epoch"] = int(meta["epoch"])
        event["restored_step"] = int(meta.get("step", 0))
        event["action"] = (f"reloaded checkpoint '{last.name}' (epoch {meta['epoch']}, step {meta.get('step')}), "
                           f"LR scale x{guard.lr_factor:g}")
        guard.recoveries = recoveries + [event]
        self.say(f"loss diverged ({event.get('reason')}) at epoch {event.get('epoch')} batch {event.get('batch')}: "
                 f"reloaded {last.name} (epoch {meta['epoch']}), LR scale now {event.get('lr_scale', 1.0):g}, "
                 f"retry {len(guard.recoveries)}/{guard.max_retries}")
        for e in [e for e in self.epoch_logs if e >= int(meta["epoch"])]:
            del self.epoch_logs[e]
        if self.history_csv is not None:  # the chief's file
            trim_history(self.history_csv, int(meta["epoch"]))
        return int(meta["epoch"]), int(meta.get("batch", 0))

    def history(self) -> dict[str, list[float]]:
        keys: list[str] = []
        for logs in self.epoch_logs.values():
            keys += [k for k in logs if k not in keys]
        ordered = [self.epoch_logs[e] for e in sorted(self.epoch_logs)]
        return {k: [float(logs.get(k, float("nan"))) for logs in ordered] for k in keys}

    @property
    def epochs_done(self) -> list[int]:
        return sorted(self.epoch_logs)

    def check_finite(self, model: keras.Model) -> None:
        """Raise ``TrainingDiverged`` when the run ends with a non-finite loss or non-finite weights.

        Reached when the NaN guard is off (or let a NaN through): such a run is never a success, and
        nothing is exported from it. The checkpoints hold only finite epochs (they skip non-finite logs).
        """
        bad_epoch = next((e for e in sorted(self.epoch_logs)
                          if not math.isfinite(self.epoch_logs[e].get("loss", 0.0))), None)
        finite_weights = all(bool(np.isfinite(w).all()) for w in model.get_weights())
        if bad_epoch is None and finite_weights:
            return
        where = f"at epoch {bad_epoch + 1}" if bad_epoch is not None else "(non-finite weights)"
        last = find_checkpoint(self.checkpoints)
        kept = (f"the last finite checkpoint is {last} (epoch {read_meta(last).get('epoch')})" if last is not None
                else "no checkpoint was kept")
        guard = self.named.get("nan_guard")
        why = ("the NaN guard is off: callbacks.nan_guard.enabled" if guard is None
               else "the NaN guard did not catch it")
        raise TrainingDiverged(f"training diverged {where}; {why}; no model was exported and {kept}")


def _rows(history: dict[str, list]) -> list[dict[str, float]]:
    n = len(next(iter(history.values()), []))
    return [{k: float(v[i]) for k, v in history.items() if i < len(v)} for i in range(n)]
