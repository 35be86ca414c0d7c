"""Applying the cache decision (``kerasopt.data.cache``) to the ``tf.data`` pipeline of each split."""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable
from typing import Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.cache import CachePlan, DiskCache, plan_cache, source_fingerprint
from kerasopt.data.source_base import SourceData
from kerasopt.errors import ConfigError


class CacheStore:
    """Applies the ``data.cache`` decision (``kerasopt.data.cache.plan_cache``) to each split.

    uint8 examples streamed from files are cached before ``prep`` (the float
    conversion and any resize run after the cache, every epoch); other examples
    after it.
    """

    def __init__(self, cfg: ExperimentConfig, src: SourceData, raw: tf.data.Dataset, prep: Callable,
                 count: int, shard: Optional[tuple[int, int]], cache_train: bool = True) -> None:
        # cache_train=False: the training split is read again each epoch (random crops of the files)
        self.cfg, self.src, self.prep, self.shard, self.cache_train = cfg, src, prep, shard, cache_train
        streamed = src.stream is not None
        self.early = streamed and raw.element_spec[0].dtype == tf.uint8
        cached = raw if self.early else prep.elements(raw)
        self.identity = not streamed and cached is raw  # in-memory arrays with nothing to prepare
        per_example = sum(math.prod(s.shape) * s.dtype.size for s in cached.element_spec)
        self.bytes_per_example = int(per_example)
        can_disk = streamed and bool(src.stream.files)
        if self.identity and cfg.data.cache == "auto":
            self.plan = CachePlan("none", "the examples are already in memory and need no preparation",
                                  0, 0, "")
        elif streamed and src.stream.own_cache:
            self.plan = CachePlan("none", "the source's own memory-mapped cache is read directly", 0, 0, "")
        else:
            self.plan = plan_cache(cfg.data, int(per_example * count), streamed=streamed, can_disk=can_disk)
        if not cache_train:
            self.plan.reason += "; validation only: random_resized_crop cuts training crops from the files each epoch"
        self.notes: dict[str, str] = {}
        if self.plan.mode == "disk":
            self._check_disk()

    def _check_disk(self) -> None:
        """Room and write access for a disk cache: ``auto`` falls back to streaming (printed), ``disk`` stops."""
        from kerasopt.data.cache import human_bytes
        from kerasopt.usercache import cache_dir

        try:
            folder = cache_dir("data")
            free = shutil.disk_usage(folder).free
            need = int(self.plan.estimate_bytes * 1.1) + 2**30  # the cache plus a margin for the rest
            if free < need:
                raise ConfigError(f"the disk cache needs ~{human_bytes(need)} in {folder}, which has "
                                  f"{human_bytes(free)} free; free space or set KERASOPT_CACHE_DIR",
                                  key="data.cache")
        except ConfigError as e:
            if self.cfg.data.cache == "disk":
                raise
            self.plan.mode = "none"
            self.plan.reason += f"; no disk cache ({e.message}): decoded every epoch"

    def ready(self, ds: tf.data.Dataset, role: str, indices: np.ndarray,
              file_shard: Optional[tuple[int, int]]) -> tf.data.Dataset:
        """``ds`` (raw elements of ``indices``) cached as planned; prepared first unless ``early``."""
        ds = ds if self.early else self.prep.elements(ds)
        return ds if role == "train" and not self.cache_train else self._cache(ds, role, indices)

    def _cache(self, ds: tf.data.Dataset, role: str, indices: np.ndarray) -> tf.data.Dataset:
        if self.plan.mode == "memory":
            return ds.cache()
        if self.plan.mode != "disk":
            return ds
        payload = {
            "source": source_fingerprint(self.cfg.data, self.src.stream.files, self.cfg.seed),
            "indices": digest_indices(indices), "shard": self.shard, "early": self.early,
            "element": str(ds.element_spec),
        }
        disk = DiskCache(self.src.origin, role, payload)
        self.plan.folder = str(disk.origin_dir)
        if disk.usable and not disk.reused:
            # Written in a pass of its own before training: writing it as a side effect of epoch 1
            # grew the process by ~1 GB over that epoch (12,000 224-pixel images, TFRecords).
            seconds = fill_cache(ds.cache(disk.prefix), len(indices), role)
            self._note(role, f"{disk.note or 'written'} before training ({len(indices):,} examples, {seconds:.1f} s)")
        else:
            self._note(role, "reused" if disk.reused else disk.note)
        if not disk.usable:
            return ds
        disk.touch()
        return ds.cache(disk.prefix)  # complete now: read from the file

    def _note(self, role: str, record: str) -> None:
        self.notes[role] = record
        self.plan.reason = self.plan.reason.split(" | ")[0] + " | " + "; ".join(
            f"{k}: {v}" for k, v in self.notes.items())


def fill_cache(cached: tf.data.Dataset, total: int, role: str) -> float:
    """Run one pass over ``cached`` (a ``Dataset.cache(file)``) so the file is complete; seconds taken.

    Shows a progress bar (chief only) when it is slow. Batched so Python sees a few hundred tensors.
    """
    import time

    from kerasopt.data.checkprogress import CheckProgress

    t0 = time.perf_counter()
    progress = CheckProgress(total, f"{role} example", verb="caching", unit="examples")
    for batch in cached.batch(64).prefetch(2):
        progress.advance(int(batch[0].shape[0]))
    progress.close(reused=0, summary=False)
    return time.perf_counter() - t0


# Bytes the training shuffle buffer may hold: the buffer is in RAM whatever the cache does. At 224x224x3
# uint8 that is ~1,700 photos (the file order is permuted once, so the window need not span the set).
SHUFFLE_BYTES = 256 * 2**20


def shuffle_size(configured: int, count: int, bytes_per_example: int) -> int:
    """``data.shuffle_buffer`` capped at the split size and at ``SHUFFLE_BYTES``.

    Example:
        >>> shuffle_size(10_000, 1437, 4096), shuffle_size(10_000, 9600, 224 * 224 * 3)
        (1437, 1783)
    """
    if configured <= 0:
        return 0
    return max(1, min(configured, count, SHUFFLE_BYTES // max(1, bytes_per_example)))


def digest_indices(indices: np.ndarray) -> str:
    """A short digest of which examples a split holds.

    Example:
        >>> digest_indices(np.array([0, 2, 5])) == digest_indices(np.array([0, 2, 5], np.int32))
        True
    """
    return hashlib.sha256(np.asarray(indices, np.int64).tobytes()).hexdigest()[:16]
