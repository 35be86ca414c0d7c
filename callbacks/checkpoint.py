"""Atomic checkpoints: ``checkpoints/last`` every epoch and ``checkpoints/best`` by a metric.

Each checkpoint is a folder holding a ``tf.train.Checkpoint`` of the model and
optimizer (weights and slots) and ``meta.json`` (epoch, optimizer step, the
monitored value, a fingerprint of the model config). It is written in full
under a temporary name and then renamed into place; the old one is removed
only after the new one exists, so a kill never leaves a half-written ``last``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Optional

from .._keras import keras, tf
from ..errors import ConfigError

PREFIX = "ckpt"


def _swap_in(tmp: Path, final: Path) -> None:
    old = final.with_name(f".old-{final.name}")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def find_checkpoint(folder: Path, which: str = "last") -> Optional[Path]:
    """The checkpoint folder ``which`` (or its pre-swap copy if a kill hit the swap)."""
    for cand in (folder / which, folder / f".old-{which}"):
        if (cand / "meta.json").is_file() and (cand / f"{PREFIX}.index").is_file():
            return cand
    return None


def read_meta(ckpt_dir: Path) -> dict:
    return json.loads((ckpt_dir / "meta.json").read_text())


def save_checkpoint(folder: Path, which: str, model: keras.Model, meta: dict) -> Path:
    """Write ``folder/which`` atomically and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{which}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp / PREFIX))
    with open(tmp / "meta.json", "w") as f:
        json.dump(meta, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    final = folder / which
    _swap_in(tmp, final)
    return final


def restore_checkpoint(ckpt_dir: Path, model: keras.Model) -> dict:
    """Load weights and optimizer slots saved by :func:`save_checkpoint`; return its meta."""
    opt = model.optimizer
    inner = getattr(opt, "inner_optimizer", opt)
    inner.build(model.trainable_variables)  # slots must exist to be restored into
    status = tf.train.Checkpoint(model=model, optimizer=opt).read(str(ckpt_dir / PREFIX))
    status.assert_existing_objects_matched()
    return read_meta(ckpt_dir)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save ``last`` after every epoch and ``best`` when ``monitor`` improves.

    ``best_value`` survives resume through ``meta.json``. A missing monitored
    metric is an error naming the metrics that exist.

    Example:
        >>> AtomicCheckpoint("runs/x/checkpoints", monitor="val_accuracy", mode="max")  # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 fingerprint: str = "", save_model: Optional[keras.Model] = None) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"`mode` must be auto, min or max. Received: mode={mode}")
        self.folder = Path(folder)
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else "min"
        self.mode = mode
        self.fingerprint = fingerprint
        self.best_value: Optional[float] = None
        self._save_model = save_model  # the plain model when training runs through a wrapper

    def _better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ConfigError(
                f"'{self.monitor}' is not among the logged metrics: {', '.join(sorted(logs))}",
                key="callbacks.checkpoint.monitor",
            )
        value = float(logs[self.monitor])
        model = self.model
        meta = {"epoch": epoch + 1, "step": int(model.optimizer.iterations.numpy()),
                "monitor": self.monitor, "value": value, "fingerprint": self.fingerprint,
                "logs": {k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}}
        improved = not math.isnan(value) and self._better(value)
        if improved:
            self.best_value = value
        meta["best_value"] = self.best_value
        save_checkpoint(self.folder, "last", model, meta)
        if improved:
            save_checkpoint(self.folder, "best", model, meta)
