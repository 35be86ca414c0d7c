"""Training examples read straight from a memory-mapped table (``kerasopt.data.table_cache``).

A table bigger than the memory budget is not encoded into one in-memory array. Its rows are
gathered from the memory-mapped matrices a chunk at a time, encoded (one-hot columns from the
training split's vocabulary), and handed to ``tf.data``. Each epoch visits the training rows in a
permutation seeded by ``(seed, epoch)``, so shuffling moves 8-byte row indices, not rows, and an
epoch's batches are the same whether a run got there directly or was resumed mid-epoch.

Memory: the permutation of the training indices (8 bytes a row) and a few chunks in flight. The
matrices' pages are unmapped after each read (``MappedMatrix.take``): they are the kernel's page
cache, shared and evictable, and not this process's resident memory.
"""

from __future__ import annotations

import hashlib
import math
import threading
from pathlib import Path
from typing import Optional

import numpy as np

import kerasopt.data.transforms as transforms  # by its own name: importing kerasopt.data would be a cycle
from kerasopt._keras import tf
from kerasopt.data.source_base import Stream, as_written
from kerasopt.data.table_cache import Table
from kerasopt.data.transforms import RunningStats
from kerasopt.io.atomic import open_atomic

CHUNK_ROWS = 8192  # rows gathered and encoded per call: ~1 MB for 30 columns
STATS_ROWS = 262144  # rows of the file per step of the statistics pass


class TableEncoder:
    """Rows of a table -> the float32 feature matrix ``encode`` would build, for any subset of rows.

    ``numeric_order`` are the numeric matrix's columns in feature order; ``positions[name]`` maps a
    categorical column's codes to its one-hot column (-1: a value the training split never had).
    """

    def __init__(self, table: Table, vocab: dict[str, list[str]], positions: dict[str, np.ndarray]) -> None:
        self.table = table
        num_at = {n: j for j, n in enumerate(table.numeric_names)}
        cat_at = {n: j for j, n in enumerate(table.categorical_names)}
        # (kind, matrix column, output column, width) per feature, in feature order
        self.layout: list[tuple[str, int, int, int, Optional[np.ndarray]]] = []
        col = 0
        for name in table.features:
            if name in num_at:
                self.layout.append(("num", num_at[name], col, 1, None))
                col += 1
            else:
                k = len(vocab[name])
                self.layout.append(("cat", cat_at[name], col, k, positions[name]))
                col += k
        self.width = col
        self._num_src = np.array([j for kind, j, *_ in self.layout if kind == "num"], np.int64)
        self._num_dst = np.array([c for kind, _, c, *_ in self.layout if kind == "num"], np.int64)
        self._plain = (len(self._num_src) == self.width == table.numeric.shape[1]
                       and (self._num_src == np.arange(self.width)).all())

    def digest(self, rows: np.ndarray) -> str:
        """A key for statistics over ``rows`` of this encoding (the rows and the one-hot layout)."""
        h = hashlib.blake2b(np.ascontiguousarray(np.sort(np.asarray(rows, np.int64))).tobytes(), digest_size=16)
        for kind, j, col, k, pos in self.layout:
            h.update(f"{kind},{j},{col},{k};".encode())
            if pos is not None:
                h.update(np.asarray(pos, np.int64).tobytes())
        return h.hexdigest()

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if self._plain:  # numeric columns only, in the matrix's order: the gathered rows are the features
            return self.table.numeric.take(rows)
        out = np.zeros((len(rows), self.width), np.float32)
        if not len(rows):
            return out
        if len(self._num_src):
            out[:, self._num_dst] = self.table.numeric.take(rows)[:, self._num_src]
        codes = self.table.codes.take(rows) if any(k == "cat" for k, *_ in self.layout) else None
        for kind, j, col, k, pos in self.layout:
            if kind == "cat" and k:
                p = pos[codes[:, j]]
                hit = p >= 0
                out[np.nonzero(hit)[0], col + p[hit]] = 1.0
        return out


def table_stream(table: Table, encoder: TableEncoder, labels: np.ndarray, seed: int) -> Stream:
    """A :class:`Stream` over ``table`` with per-epoch index shuffles and direct statistics."""
    label_dtype = tf.as_dtype(labels.dtype)
    label_shape = labels.shape[1:]
    width = encoder.width

    def chunks(indices: np.ndarray, order):
        """``(load, n_chunks)``: ``load(epoch, c)`` reads chunk ``c`` of ``order(epoch)`` (an index array)."""
        n_chunks = math.ceil(len(indices) / CHUNK_ROWS)

        def read(epoch, c):
            rows = order(int(epoch))[int(c) * CHUNK_ROWS:(int(c) + 1) * CHUNK_ROWS]
            return encoder(rows), labels[rows]

        def load(epoch, c):
            x, y = tf.numpy_function(read, [epoch, c], [tf.float32, label_dtype], stateful=False)
            x.set_shape((None, width))
            y.set_shape((None, *label_shape))
            return x, y

        return load, n_chunks

    def make(indices: np.ndarray, shard) -> tuple[tf.data.Dataset, int]:
        indices = np.asarray(indices, np.int64)
        load, n_chunks = chunks(indices, lambda _e: indices)
        ds = tf.data.Dataset.range(n_chunks).map(as_written(lambda c: load(tf.constant(0, tf.int64), c)),
                                                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.unbatch(), len(indices)

    def epochs(indices: np.ndarray):
        """``epoch (tensor) -> dataset`` of the rows of ``indices`` in the order seeded by ``(seed, epoch)``."""
        indices = np.asarray(indices, np.int64)
        memo: dict[int, np.ndarray] = {}
        lock = threading.Lock()  # tf.data calls read() from several threads

        def order(epoch: int) -> np.ndarray:
            with lock:
                if epoch not in memo:
                    if len(memo) > 1:  # the prefetch may run one epoch ahead: keep two
                        memo.pop(min(memo))
                    memo[epoch] = indices[np.random.default_rng([seed, epoch]).permutation(len(indices))]
                return memo[epoch]

        load, n_chunks = chunks(indices, order)

        def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
            ds = tf.data.Dataset.range(n_chunks).map(as_written(lambda c: load(epoch, c)),
                                                      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            return ds.unbatch()

        return one_epoch

    def stats(indices: np.ndarray) -> RunningStats:
        """Over the rows of ``indices``, read in file order a block at a time; kept beside the cache."""
        key = encoder.digest(indices)
        saved = load_stats(table.folder / "stats" / f"{key}.npz")
        if saved is not None:
            return saved
        s = RunningStats()
        keep = np.zeros(table.rows, bool)
        keep[np.asarray(indices, np.int64)] = True
        for first in range(0, table.rows, STATS_ROWS):
            rows = first + np.flatnonzero(keep[first:first + STATS_ROWS])
            if len(rows):
                s.update(encoder(rows))
        save_stats(table.folder / "stats" / f"{key}.npz", s)
        return s

    return Stream(make=make, num_files=1, files=[], ordered=True, epochs=epochs, stats=stats, own_cache=True)


def check_finite(table: Table, n: int, origin: str) -> None:
    """The NaN/Inf check ``build_datasets`` runs on in-memory features, over the first ``n`` rows of the matrix."""
    if not table.numeric.shape[1] or table.manifest.get("nonfinite") == 0:  # counted when the cache was built
        return
    transforms.check_finite(table.numeric.scan(0, n), origin)


def save_stats(path: Path, stats: RunningStats) -> None:
    """Statistics written beside the table cache (temp file, then renamed); silently skipped when read-only."""
    if stats.total is None:
        return
    try:
        path.parent.mkdir(exist_ok=True)
        with open_atomic(path, "wb") as f:
            np.savez(f, count=stats.count, total=stats.total, squares=stats.squares, low=stats.low, high=stats.high)
    except OSError:
        pass


def load_stats(path: Path) -> Optional[RunningStats]:
    """What :func:`save_stats` wrote, or None (absent or unreadable: computed again)."""
    try:
        with np.load(path) as f:
            s = RunningStats()
            s.count = int(f["count"])
            s.total, s.squares, s.low, s.high = (np.array(f[k], np.float64)
                                                 for k in ("total", "squares", "low", "high"))
            return s
    except (OSError, KeyError, ValueError):
        return None
