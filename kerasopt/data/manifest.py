"""File-check results kept between runs, so an unchanged folder is not decoded again at every start.

Every image is decoded once before training (``filecheck``) so a corrupt
file is named before the first step. The results (per file: size, mtime_ns,
decodes or not, decoded ``(height, width, channels)``, and for a bad file its
reason) are kept in the user cache folder (``kerasopt.usercache``), one
manifest per folder and decode settings. The next run ``os.stat``s every file
and decodes only the files that are new or whose size or mtime_ns changed (or
were modified just before their check: ``settled``); a bad file is reported
again from its entry, without decoding it.

A missing or corrupt manifest is a cache miss; an unwritable cache folder is
one warning line, and the run goes on without a manifest.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.data.checkprogress import CheckProgress
from kerasopt.data.filecheck import check_images, file_reason
from kerasopt.errors import ConfigError
from kerasopt.io.atomic import write_bytes, write_text
from kerasopt.usercache import cache_dir, digest, read_json

log = logging.getLogger("kerasopt.data")

# Bumped when what a manifest holds, or how a file is checked, changes: old manifests are then misses.
FORMAT = 1
# A file modified this shortly before its check may change again without a new mtime (timestamps move in
# ticks: a few ms on ext4, 2 s on FAT), so its entry is not trusted next run (git's "racily clean" rule).
RACY_SECONDS = 2.0


def manifest_file(kind: str, key: dict, suffix: str) -> Optional[Path]:
    """Where the manifest for ``key`` lives; None (and one warning line) when the cache folder is unwritable."""
    try:
        folder = cache_dir("manifests")
    except ConfigError as e:
        log.warning(f"file checks are not kept between runs: {e.message}")
        return None
    return folder / f"{kind}-{digest({**key, 'format': FORMAT, 'tf': tf.version.VERSION})}{suffix}"


def save_manifest(path: Optional[Path], data: bytes | str) -> None:
    """An atomic write where a failure is one warning line: the cache never fails a run."""
    if path is None:
        return
    try:
        (write_text if isinstance(data, str) else write_bytes)(path, data)
    except OSError as e:
        log.warning(f"file checks are not kept between runs: could not write {path} ({e.strerror or e})")


def stat_files(paths: list[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(size, mtime_ns)`` of each file; ``-1`` for a file that cannot be stat'ed (never matches an entry).

    Example:
        >>> stat_files(["/no/such/file"])[0].tolist()
        [-1]
    """
    sizes = np.full(len(paths), -1, np.int64)
    mtimes = np.full(len(paths), -1, np.int64)
    for i, p in enumerate(paths):
        try:
            st = os.stat(p)
        except OSError:
            continue
        sizes[i], mtimes[i] = st.st_size, st.st_mtime_ns
    return sizes, mtimes


def settled(mtime_ns: np.ndarray, started_ns: int) -> np.ndarray:
    """``mtime_ns`` to store: -1 (never matches) for files modified within ``RACY_SECONDS`` of the check.

    Example:
        >>> settled(np.array([0, 9_000_000_000]), started_ns=10_000_000_000).tolist()
        [0, -1]
    """
    mtime_ns = np.asarray(mtime_ns, np.int64)
    return np.where(mtime_ns > started_ns - int(RACY_SECONDS * 1e9), -1, mtime_ns)


@dataclass
class ImageManifest:
    """Check results per image file, as parallel arrays (JSON lists on disk: fast to load at 100k files).

    ``names`` are relative to the folder; ``reasons`` holds the bad files' reasons once computed.

    Example:
        >>> m = ImageManifest(["a.png", "b.png"], np.array([10, 20]), np.array([5, 6]), np.array([True, False]),
        ...                   np.array([[4, 6, 3], [0, 0, 0]]), {"b.png": "Input is empty"})
        >>> m.lookup(["b.png", "a.png", "c.png"], np.array([20, 11, 1]), np.array([6, 5, 1])).tolist()
        [1, -1, -1]
        >>> ImageManifest.from_json(m.to_json({"k": 1}), {"k": 1}).reasons
        {'b.png': 'Input is empty'}
        >>> len(ImageManifest.from_json({"names": "oops"}, {"k": 1}).names)
        0
    """

    names: list[str]
    size: np.ndarray
    mtime_ns: np.ndarray
    ok: np.ndarray
    shape: np.ndarray  # (n, 3)
    reasons: dict[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> ImageManifest:
        z = np.zeros(0, np.int64)
        return cls([], z, z, np.zeros(0, bool), np.zeros((0, 3), np.int64))

    @classmethod
    def from_json(cls, data: Any, key: dict) -> ImageManifest:
        """The manifest in ``data``; empty when it is missing, for another key, or malformed."""
        try:
            if data.get("key") != key:
                return cls.empty()
            names = [str(n) for n in data["names"]]
            m = cls(names, np.asarray(data["size"], np.int64), np.asarray(data["mtime_ns"], np.int64),
                    np.asarray(data["ok"], bool), np.asarray(data["shape"], np.int64).reshape(-1, 3),
                    {str(k): str(v) for k, v in data["reasons"].items()})
            if not len(names) == len(m.size) == len(m.mtime_ns) == len(m.ok) == len(m.shape):
                return cls.empty()
            return m
        except (AttributeError, KeyError, TypeError, ValueError):
            return cls.empty()

    def to_json(self, key: dict) -> dict:
        return {"key": key, "names": self.names, "size": self.size.tolist(), "mtime_ns": self.mtime_ns.tolist(),
                "ok": self.ok.astype(int).tolist(), "shape": self.shape.ravel().tolist(), "reasons": self.reasons}

    def lookup(self, names: list[str], size: np.ndarray, mtime_ns: np.ndarray) -> np.ndarray:
        """Per file, the index of its entry when its size and mtime_ns are unchanged, else -1."""
        index = {n: i for i, n in enumerate(self.names)}
        hit = np.fromiter((index.get(n, -1) for n in names), np.int64, len(names))
        found = hit >= 0
        same = np.zeros(len(names), bool)
        same[found] = ((self.size[hit[found]] == size[found]) & (self.mtime_ns[hit[found]] == mtime_ns[found])
                       & (size[found] >= 0))
        return np.where(same, hit, -1)


@dataclass
class FileCheck:
    """Result of ``check_image_files``: per file ``ok``, byte ``sizes`` and ``shapes``; reasons of bad files."""

    ok: np.ndarray
    sizes: np.ndarray
    shapes: np.ndarray
    reasons: dict[int, str]
    summary: dict

    @property
    def bad(self) -> np.ndarray:
        return np.flatnonzero(~self.ok)


def check_image_files(root: str, paths: np.ndarray, channels: int, calls: int,
                      reasons: Literal["first", "all"] = "all") -> FileCheck:
    """``filecheck.check_images`` on the files of ``paths`` (all under ``root``) that the manifest cannot vouch for.

    ``sizes`` are the bytes that were decoded (for ``filecheck.size_guard``).
    ``reasons`` says which bad files need their reason (``first``: the first
    one, enough for ``data.on_bad_file: error``); a reason once found is kept.
    ``summary`` is ``{"checked": decoded, "from_manifest": reused, "seconds": s}``.
    """
    started, started_ns = time.perf_counter(), time.time_ns()
    key = {"kind": "image_dir", "root": os.path.abspath(root), "channels": int(channels)}
    path = manifest_file("images", key, ".json")
    old = ImageManifest.from_json(read_json(path), key) if path is not None else ImageManifest.empty()
    prefix = str(root).rstrip(os.sep) + os.sep
    names = [p[len(prefix):] if p.startswith(prefix) else p for p in paths]
    size, mtime_ns = stat_files(paths)
    hit = old.lookup(names, size, mtime_ns)
    reused = hit >= 0
    todo = np.flatnonzero(~reused)

    ok = np.zeros(len(paths), bool)
    nbytes = np.full(len(paths), -1, np.int64)
    shapes = np.zeros((len(paths), 3), np.int64)
    ok[reused], nbytes[reused], shapes[reused] = old.ok[hit[reused]], old.size[hit[reused]], old.shape[hit[reused]]
    progress = CheckProgress(len(todo), "image file", started=started)
    if len(todo):
        pairs = tf.data.Dataset.from_tensor_slices((np.arange(len(todo), dtype=np.int64), paths[todo]))
        check = check_images(pairs, len(todo), channels, calls, read=tf.io.read_file, progress=progress.advance)
        ok[todo], nbytes[todo], shapes[todo] = check.ok, check.sizes, check.shapes
    summary = progress.close(reused=int(reused.sum()))

    bad = np.flatnonzero(~ok)
    known = {int(i): old.reasons[names[i]] for i in bad if reused[i] and names[i] in old.reasons}
    found = {int(i): file_reason(str(paths[i]), channels)
             for i in (bad if reasons == "all" else bad[:1]) if int(i) not in known}
    why = {**known, **found}
    if len(todo) or found or len(old.names) != int(reused.sum()):
        new = ImageManifest(names, size, settled(mtime_ns, started_ns), ok, shapes,
                            {names[i]: r for i, r in why.items()})
        save_manifest(path, json.dumps(new.to_json(key), separators=(",", ":")))
    return FileCheck(ok, nbytes, shapes, why, summary)
