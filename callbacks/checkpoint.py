"""Atomic checkpoints with the whole training state.

A checkpoint is a folder: a ``tf.train.Checkpoint`` (``ckpt.*``) of the model,
the optimizer (slots, step), the RNG generators of random layers, gradient
accumulators, the LR scale and every stateful callback's variables (EMA
weights, ...), plus ``meta.json`` (epoch, batch within the epoch, optimizer
step, monitored value, callback states, model fingerprint, resolved config).
It is written in full under a temporary name and renamed into place; the old
one is removed only after the new one exists, so a kill never leaves a
half-written ``last`` and ``last`` is never ambiguous.

Folders: ``last`` (every epoch, and every ``every_n_steps``), ``best`` (by
``monitor``), and ``epoch-NNNN`` for the top-k.

A write that fails (disk full, file-size limit, read-only file system) removes
its temporary folder, leaves the previous checkpoint as it was and raises
:class:`CheckpointWriteError`, one line that names both folders.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from .._keras import keras, tf
from .base import StatefulCallback, is_scalar
from .monitor import MonitorCallback

PREFIX = "ckpt"


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the previous one is intact (the message says where)."""


def _reason(e: BaseException) -> str:
    """The OS's words for a failed write: 'No space left on device', 'File too large', ..."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) and e.args[0]:
        return str(e.args[0][0][-1])  # copytree collects (src, dst, why) per file
    # a traced save's error is a graph error: the cause is the last line before "[[{{node SaveV2}}]]"
    lines = [ln.strip() for ln in str(getattr(e, "message", e)).strip().splitlines()
             if ln.strip() and not ln.strip().startswith(("[[", "[Op:", "Detected at node", "File ", "Hint:"))]
    text = lines[-1].split(" [Op:")[0] if lines else ""
    return text.rsplit("; ", 1)[-1].strip() or type(e).__name__


def _write_failed(e: BaseException, folder: Path, which: str) -> CheckpointWriteError:
    prev = find_checkpoint(folder, which)
    if prev is None:
        kept = f"there was no earlier '{which}' checkpoint"
    else:
        try:
            meta = read_meta(prev)
            kept = f"the previous checkpoint {prev} (epoch {meta.get('epoch')}, step {meta.get('step')}) is intact"
        except (OSError, ValueError):
            kept = f"the previous checkpoint {prev} is intact"
    return CheckpointWriteError(f"could not write checkpoint {folder / which}: {_reason(e)}; {kept}. "
                                "Free space (or lift the limit), then continue with --resume")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete ``.tmp-*`` folders left by a killed writer on this host (its pid is gone). Returns them."""
    removed = []
    for tmp in sorted(folder.glob(".tmp-*")) if folder.is_dir() else ():
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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


def file_digests(ckpt_dir: Path) -> dict[str, dict[str, Any]]:
    """``{file name: {"size": bytes, "crc32": hex}}`` of a checkpoint's files (meta.json aside)."""
    out = {}
    for path in sorted(p for p in ckpt_dir.iterdir() if p.is_file() and p.name != "meta.json"):
        crc = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                crc = zlib.crc32(chunk, crc)
        out[path.name] = {"size": path.stat().st_size, "crc32": f"{crc:08x}"}
    return out


def verify_checkpoint(ckpt_dir: Path) -> Optional[str]:
    """What is wrong with a checkpoint folder, or None when it is intact.

    Checks ``meta.json`` and, for checkpoints that recorded them, every file's size and CRC32
    (a truncated copy or a fault on shared storage). Example answer:
    ``ckpt.data-00000-of-00001 is truncated (1,024 of 2,048 bytes)``.
    """
    try:
        meta = read_meta(ckpt_dir)
    except FileNotFoundError:
        return "meta.json is missing"
    except (OSError, ValueError) as e:
        return f"meta.json is unreadable ({type(e).__name__}: {e})"
    if not (ckpt_dir / f"{PREFIX}.index").is_file():
        return f"{PREFIX}.index is missing"
    recorded = meta.get("files")
    if not isinstance(recorded, dict):
        return None  # written before sizes and checksums were recorded: nothing to compare
    for name, want in recorded.items():
        path = ckpt_dir / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != want.get("size"):
            how = "truncated" if size < want.get("size", 0) else "longer than written"
            return f"{name} is {how} ({size:,} of {want.get('size'):,} bytes)"
    actual = file_digests(ckpt_dir)
    for name, want in recorded.items():
        if actual[name]["crc32"] != want.get("crc32"):
            return f"{name} is corrupt (CRC32 {actual[name]['crc32']}, written as {want.get('crc32')})"
    return None


def newest_intact(folder: Path) -> tuple[Optional[Path], dict[str, str]]:
    """The newest intact checkpoint among ``last``, the top-k ``epoch-NNNN`` and ``best`` (None if
    none is), and what is wrong with each damaged one (``{folder name: problem}``).

    Newest = the highest optimizer step; ``last`` wins a tie (it holds the mid-epoch position).
    """
    cands = [c for c in (find_checkpoint(folder, "last"),) if c is not None]
    cands += sorted(p for p in folder.glob("epoch-*") if p.is_dir())
    cands += [c for c in (find_checkpoint(folder, "best"),) if c is not None]
    damaged: dict[str, str] = {}
    ranked = []
    for i, cand in enumerate(cands):
        problem = verify_checkpoint(cand)
        if problem:
            damaged[cand.name] = problem
            continue
        meta = read_meta(cand)
        ranked.append(((int(meta.get("step", 0)), int(meta.get("epoch", 0)), -i), cand))
    return (max(ranked)[1] if ranked else None), damaged


def random_generators(model: keras.Model) -> dict[str, Any]:
    """The ``tf.random.Generator`` of every random layer (dropout, noise), by position.

    With ``enable_tf_random_generator()`` their state is a variable: saving it
    makes dropout masks after a resume the same as in an uninterrupted run.
    """
    out = {}
    layers = [m for m in model.submodules if isinstance(m, keras.layers.Layer)]
    for i, layer in enumerate(layers):
        gen = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if isinstance(gen, tf.random.Generator):
            out[f"rng_{i}"] = gen
    return out


def training_trackables(model: keras.Model, callbacks: list,
                        generators: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Everything whose value a resumed run needs, keyed for ``tf.train.Checkpoint``.

    ``generators``: :func:`random_generators` of ``model`` when the caller keeps them (finding them
    walks every submodule: 5.6 ms of a 12 ms save of the digits CNN).
    """
    items: dict[str, Any] = {"model": model, "optimizer": model.optimizer}
    items.update(random_generators(model) if generators is None else generators)
    accum = model.__dict__.get("_accum") or None
    if accum:  # gradient accumulation mid-way through a step
        items["accum"] = tf.Module()
        items["accum"].grads = list(accum["grads"])
        items["accum"].counter = accum["counter"]
    opt = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    scale = getattr(getattr(opt, "_learning_rate", None), "scale", None)
    if isinstance(scale, tf.Variable):
        items["lr_scale"] = scale
    for cb in callbacks:
        if isinstance(cb, StatefulCallback):
            for name, obj in cb.trackables().items():
                items[f"{cb.state_key}.{name}".replace(".", "_")] = obj
    return items


def traced_write(ckpt: tf.train.Checkpoint) -> Callable[[str], None]:
    """``ckpt.write`` traced once into a graph: later calls run the save ops without rebuilding them.

    An eager ``write`` walks the object graph and dispatches a read per variable from Python on
    every call. A whole save of the digits CNN (86 variables, 0.9 MB; meta.json, fsync and rename
    included) took 32 ms eager and 4.7 ms traced, with the same variables written
    (``benchmarks/checkpoint_cost.py``). The graph holds the
    variables that existed when it was traced: :class:`AtomicCheckpoint` traces again when the
    number of objects the checkpoint reaches changes (a loss-scale optimizer creates its loss-scale
    variables at its first step). The folder must exist.
    """

    def save(prefix: tf.Tensor) -> tf.Tensor:
        # one data shard, as the eager write makes (ckpt.data-00000-of-00001): a short "/CPU:0" made two
        with tf.device("/job:localhost/replica:0/task:0/device:CPU:0"):
            return ckpt.write(prefix)

    fn = tf.function(save, autograph=False)

    def write(prefix: str) -> None:
        fn(tf.constant(prefix))

    return write


def checked_traced_write(ckpt: tf.train.Checkpoint, scratch: Path) -> Optional[Callable[[str], None]]:
    """:func:`traced_write` of ``ckpt`` if it writes exactly the tensors the eager write does, else None.

    Checked once per trace, in ``scratch`` (removed after): a traced write of a loss-scale optimizer
    left out its loss-scale variables, and a checkpoint that silently lacks state is the one thing a
    faster save must never cost. Where they differ, saves stay eager.
    """
    write = traced_write(ckpt)
    try:
        for name, fn in (("traced", write), ("eager", ckpt.write)):
            (scratch / name).mkdir(parents=True, exist_ok=True)
            fn(str(scratch / name / PREFIX))
        names = [sorted(n for n, _ in tf.train.list_variables(str(scratch / name / PREFIX)))
                 for name in ("traced", "eager")]
        return write if names[0] == names[1] else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def reachable(ckpt: tf.train.Checkpoint) -> int:
    """How many objects ``ckpt`` saves (1 ms for the digits CNN's 129); -1 if TensorFlow moved the API."""
    try:
        from tensorflow.python.checkpoint.trackable_view import TrackableView
    except ImportError:
        return -1
    return len(TrackableView(ckpt).descendants())


def save_checkpoint(folder: Path, which: str, items: dict[str, Any], meta: dict,
                    ckpt: Optional[tf.train.Checkpoint] = None,
                    write: Optional[Callable[[str], None]] = None) -> Path:
    """Write ``folder/which`` atomically and return its path.

    Pass the same ``ckpt`` (a ``tf.train.Checkpoint`` of ``items``) on every call
    to reuse its traced save function: a new object per save re-traces it. ``write``
    (:func:`traced_write` of ``ckpt``) replaces the eager ``ckpt.write``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{which}-{os.getpid()}"
    ckpt = ckpt if ckpt is not None else tf.train.Checkpoint(**items)
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        (write or ckpt.write)(str(tmp / PREFIX))
        meta = {**meta, "files": file_digests(tmp)}  # --resume verifies these before trusting the folder
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
    except (OSError, tf.errors.OpError) as e:  # disk full, EFBIG, EROFS: keep the old one and say so
        shutil.rmtree(tmp, ignore_errors=True)  # give the space back
        raise _write_failed(e, folder, which) from e
    final = folder / which
    _swap_in(tmp, final)
    return final


def restore_checkpoint(ckpt_dir: Path, model: keras.Model, callbacks: list = ()) -> dict:
    """Load everything :class:`AtomicCheckpoint` saved into ``model`` and ``callbacks``; return the meta.

    Callback states are applied with ``set_state``. Call after ``compile``
    (and after stateful callbacks created their variables).
    """
    opt = model.optimizer
    inner = getattr(opt, "inner_optimizer", opt)
    inner.build(model.trainable_variables)  # slots must exist to be restored into
    items = training_trackables(model, list(callbacks))
    status = tf.train.Checkpoint(**items).read(str(ckpt_dir / PREFIX))
    status.expect_partial()  # e.g. resuming with EMA newly switched on
    meta = read_meta(ckpt_dir)
    states = meta.get("callbacks", {})
    for cb in callbacks:
        if isinstance(cb, StatefulCallback) and cb.state_key in states:
            cb.set_state(states[cb.state_key])
    return meta


def _finite(logs: dict) -> bool:
    loss = logs.get("loss")
    return loss is None or math.isfinite(float(loss))


class AtomicCheckpoint(MonitorCallback):
    """Save ``last`` after every epoch (and every ``every_n_steps``), ``best`` and the top-k.

    An epoch whose loss is not finite is never saved: nothing good is overwritten.

    ``scratch=True`` is for a non-chief worker under MultiWorkerMirroredStrategy: saving reads
    sync-on-read variables with an all-reduce, so every worker must save, but only the chief
    may write the run directory; a scratch save goes to a temporary folder removed at once.
    ``agree`` (all workers) turns this worker's "no checkpoint yet" into the chief's answer.

    ``traced=True``: saves run a save function traced once (:func:`traced_write`), 4.7 ms instead
    of 32 ms for the digits CNN; under a distribution strategy the eager write is used.

    Example:
        >>> AtomicCheckpoint("runs/x/checkpoints", monitor="val_accuracy", mode="max")  # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_top_k: int = 1, every_n_steps: Optional[int] = None, fingerprint: str = "",
                 config: Optional[dict] = None, callbacks: Optional[list] = None,
                 skip_save: Optional[Callable[[], bool]] = None, scratch: bool = False,
                 traced: bool = True) -> None:
        if save_top_k < 1:
            raise ValueError(f"`save_top_k` must be >= 1. Received: save_top_k={save_top_k}")
        # no min_delta: any gain is a new best
        super().__init__(monitor, mode, config_key="callbacks.checkpoint.monitor")
        self.folder = Path(folder)
        self.save_top_k = save_top_k
        self.every_n_steps = every_n_steps
        self.fingerprint = fingerprint
        self.config = config or {}
        self.callbacks = callbacks if callbacks is not None else []  # whose state goes into each checkpoint
        self.skip_save = skip_save or (lambda: False)
        self.scratch = scratch
        self.traced = traced
        self.agree: Optional[Callable[[bool], bool]] = None
        self.best_value: Optional[float] = None
        self.top_k: list[tuple[float, int]] = []  # (value, epoch)
        self._epoch = 0
        self._batches_done = 0
        self._offset = 0  # batches of the epoch done before this fit (a resumed partial epoch)
        self._step_seen: Optional[int] = None  # optimizer step at the last batch hook

    # -- state --------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "top_k": [list(t) for t in self.top_k]}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best_value = state.get("best_value")
        self.top_k = [(float(v), int(e)) for v, e in state.get("top_k", [])]

    # -- saving -------------------------------------------------------------------
    def _meta(self, epoch: int, batch: int, logs: dict, value: Optional[float]) -> dict:
        states = {cb.state_key: cb.get_state() for cb in self.callbacks if isinstance(cb, StatefulCallback)}
        states[self.state_key] = self.get_state()
        return {
            "epoch": epoch, "batch": batch, "step": int(self.model.optimizer.iterations.numpy()),
            "monitor": self.monitor, "value": value, "best_value": self.best_value,
            "fingerprint": self.fingerprint, "callbacks": states,
            "logs": {k: float(v) for k, v in logs.items() if is_scalar(v)},
            "config": self.config,
        }

    def save(self, which: str, epoch: int, batch: int, logs: Optional[dict] = None,
             value: Optional[float] = None, eager: bool = False) -> Path:
        """Write ``which`` atomically. ``eager``: this once through ``Checkpoint.write``, no trace."""
        if getattr(self, "_generators_of", None) is not self.model:  # the layers are fixed while it trains
            self._generators_of, self._generators = self.model, random_generators(self.model)
        items = training_trackables(self.model, self.callbacks, self._generators)
        names = tuple((name, id(obj)) for name, obj in items.items())
        if getattr(self, "_ckpt_names", None) != names:  # the same objects: reuse the Checkpoint
            self._ckpt_names, self._ckpt, self._traced_for = names, tf.train.Checkpoint(**items), None
        write = None if eager else self._traced_write(which)
        meta = self._meta(epoch, batch, logs or {}, value)
        if not self.scratch:
            return save_checkpoint(self.folder, which, items, meta, self._ckpt, write)
        tmp = Path(tempfile.mkdtemp(prefix="kerasopt-worker-ckpt-"))
        try:
            save_checkpoint(tmp, which, items, meta, self._ckpt)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.folder / which

    def _traced_write(self, which: str) -> Optional[Callable[[str], None]]:
        """The traced write of ``self._ckpt``, traced again when it reaches new objects; None: eager."""
        # under a distribution strategy the eager write handles the distributed variables
        count = reachable(self._ckpt) if self.traced and not tf.distribute.has_strategy() else -1
        if count < 0:
            return None
        if self._traced_for != count:  # new objects since the last trace (or none yet): trace again
            scratch = (Path(tempfile.mkdtemp(prefix="kerasopt-trace-")) if self.scratch
                       else self.folder / f".tmp-trace-{os.getpid()}")  # a kill leaves it to the next run's sweep
            try:
                write = checked_traced_write(self._ckpt, scratch)
            except (OSError, tf.errors.OpError) as e:  # the check writes too: a full disk fails here first
                raise _write_failed(e, self.folder, which) from e
            self._traced_for, self._write = count, write
        return self._write

    def on_train_begin(self, logs=None):
        if not self.scratch:  # a SIGKILL during a write leaves its .tmp-* folder behind
            remove_stale_temporaries(self.folder)
        missing = find_checkpoint(self.folder) is None
        if self.agree is not None:
            missing = self.agree(missing)
        if missing:  # the starting point NaN recovery can fall back to
            # eager: the optimizer makes its slots at the first step, so a save traced now would be
            # traced again at the first epoch's end (0.46 s each with its check on the digits CNN)
            self.save("last", epoch=self._epoch, batch=0, eager=True)
        if self.every_n_steps:
            self._step_seen = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        # A resumed partial epoch starts counting at the batches already done (set_position);
        # counting from 0 there made the next mid-epoch save skip too few batches on resume.
        start = getattr(self, "_start_at", None)
        self._start_at = None
        self._epoch = epoch
        self._offset = start[1] if start is not None and start[0] == epoch else 0
        self._batches_done = self._offset

    def set_position(self, epoch: int, batches_done: int) -> None:
        """Where a resumed, partial epoch starts (the loop calls this before fitting)."""
        self._epoch, self._batches_done = epoch, batches_done
        self._start_at = (epoch, batches_done)

    def on_train_batch_end(self, batch, logs=None):
        # ``batch`` is the index of the last batch run in this fit's epoch: with steps_per_execution
        # k > 1 Keras calls this once per k batches, so counting calls would under-count.
        self._batches_done = self._offset + batch + 1
        n = self.every_n_steps
        if not n:
            return
        step = int(self.model.optimizer.iterations.numpy())
        # A save is due when the step count has passed a multiple of n since the last call (with
        # steps_per_execution k the count moves by k per call and may jump over the multiple itself).
        seen = step - 1 if self._step_seen is None else self._step_seen
        self._step_seen = step
        if step // n <= seen // n:
            return
        # The epoch's last batch is saved by on_epoch_end, after validation and the history row: a
        # step save here, then a kill before the epoch ends, would resume past an epoch never logged.
        steps = (getattr(self, "params", None) or {}).get("steps")
        if steps and batch + 1 >= steps:
            return
        if not self.skip_save() and _finite(logs or {}) and step != getattr(self, "_last_step_saved", None):
            self._last_step_saved = step
            self.save("last", epoch=self._epoch, batch=self._batches_done, logs=logs)

    def save_partial(self, logs: Optional[dict] = None) -> Path:
        """Save ``last`` mid-epoch (SIGTERM): the resumed run skips the batches already done."""
        return self.save("last", epoch=self._epoch, batch=self._batches_done, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.skip_save() or not _finite(logs):
            return
        value = self.monitored(logs)
        improved = math.isfinite(value) and self.improved(value, self.best_value)
        if improved:
            self.best_value = value
        entered = math.isfinite(value) and (
            len(self.top_k) < self.save_top_k or self.improved(value, self.top_k[-1][0]))
        if entered:
            self.top_k.append((value, epoch + 1))
            self.top_k = self.rule.ranked(self.top_k, lambda t: t[0])
            dropped = self.top_k[self.save_top_k:]
            self.top_k = self.top_k[: self.save_top_k]
        last = self.save("last", epoch=epoch + 1, batch=0, logs=logs, value=value)
        if improved:
            self._copy(last, "best")
        if entered and self.save_top_k > 1 and not self.scratch:
            self._copy(last, f"epoch-{epoch + 1:04d}")
            for _, e in dropped:
                shutil.rmtree(self.folder / f"epoch-{e:04d}", ignore_errors=True)

    def _copy(self, src: Path, which: str) -> None:
        if self.scratch:
            return
        tmp = self.folder / f".tmp-{which}-{os.getpid()}"
        try:
            if tmp.exists():
                shutil.rmtree(tmp)
            shutil.copytree(src, tmp)
        except OSError as e:  # shutil.Error (copytree) is an OSError too
            shutil.rmtree(tmp, ignore_errors=True)
            raise _write_failed(e, self.folder, which) from e
        _swap_in(tmp, self.folder / which)
