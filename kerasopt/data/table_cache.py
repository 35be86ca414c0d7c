"""CSV and Parquet tables parsed once into a cache that later runs memory-map, and read with bounded memory.

The first run parses the file (``kerasopt.data.table_parse``) into the user cache folder
(``kerasopt.usercache``, kind ``tables``):

- ``numeric.f32``: the numeric feature columns as a row-major float32 matrix ``(rows, numeric)``;
- ``codes.i32``: the categorical columns as int32 codes ``(rows, categorical)``, in order of first
  appearance (the values are in the manifest; the training split's sorted vocabulary is chosen later);
- ``labels.npy``: class indices (int64) or regression targets (float32);
- ``manifest.json``: the file's path, size and mtime, the parse settings, the column names, the
  categorical values, the label's task and class names, and the build time.

A later run on the same file with the same settings maps the matrices and starts in milliseconds; a
changed file (size or mtime) or changed settings rebuild the cache, and :attr:`Table.status` says why.

Memory: the matrices are read through :class:`MappedMatrix`, which unmaps the pages it read after
each read. Without that, every page a process reads from a mapped file stays in its resident set:
one epoch over a 10-million-row table would add the whole 1.2 GB matrix to the process's RSS. The
pages stay in the kernel's page cache (shared, evicted under memory pressure), so a page read again
costs a minor fault, not disk I/O.

Example:
    >>> req = TableRequest(Path("pets.csv"), "csv", label="species", features=None,
    ...                    categorical=("color",))  # doctest: +SKIP
    >>> table = open_table(req)  # doctest: +SKIP
    >>> table.numeric.shape, table.status  # doctest: +SKIP
    ((10, 2), 'parsed 10 rows in 0.0 s (no cache yet)')
"""

from __future__ import annotations

import fcntl
import mmap
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from kerasopt.data.table_parse import FORMAT, TableRequest, build, source_stat
from kerasopt.errors import ConfigError
from kerasopt.usercache import cache_dir, digest, read_json

__all__ = ["MappedMatrix", "Table", "TableRequest", "open_table"]

# Rows read between two unmaps: at least GROUP_ROWS, or all those within SCAN_BYTES of the first.
# A read of scattered rows maps up to the kernel's fault-around window (64 KB by default) per row,
# so either way a group leaves at most ~32 MB mapped.
GROUP_ROWS = 512
SCAN_BYTES = 32 << 20  # contiguous bytes per step of a sequential read


class MappedMatrix:
    """A read-only ``(rows, cols)`` matrix in a file, read through a memory map that is kept small.

    ``take(rows)`` gathers any rows in any order (a copy); ``scan(start, stop)`` yields contiguous
    blocks. Both unmap what they read before returning, so the process's resident memory grows by
    what it copies, not by the file. ``matrix[...]`` (NumPy indexing) also works but leaves the pages
    it touched mapped: for small reads and tests.

    Example:
        >>> m = MappedMatrix(Path("numeric.f32"), np.float32, 10_000_000, 30)  # doctest: +SKIP
        >>> m.take(np.array([7, 3, 9_999_999])).shape  # doctest: +SKIP
        (3, 30)
    """

    def __init__(self, path: Path, dtype, rows: int, cols: int) -> None:
        self.shape, self.dtype = (int(rows), int(cols)), np.dtype(dtype)
        self._row_bytes = self.dtype.itemsize * self.shape[1]
        self._map: Optional[mmap.mmap] = None
        if rows == 0 or cols == 0:
            self._array = np.zeros(self.shape, self.dtype)
            return
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._array = np.frombuffer(self._map, self.dtype, count=rows * cols).reshape(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        return self._array[key]

    def _release(self, first: int, last: int) -> None:
        """Unmap the pages of rows ``first..last`` (inclusive); they stay in the page cache."""
        if self._map is None or not hasattr(self._map, "madvise"):
            return
        lo = first * self._row_bytes // mmap.PAGESIZE * mmap.PAGESIZE
        hi = min(len(self._map), (last + 1) * self._row_bytes)
        if hi > lo:
            self._map.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """``matrix[rows]`` (a copy), read in groups of nearby rows, each group unmapped after it is read."""
        rows = np.asarray(rows, np.int64)
        if len(rows) <= 1 or self._map is None:
            out = self._array[rows]
            if len(rows) == 1:
                self._release(int(rows[0]), int(rows[0]))
            return out
        ascending = bool((rows[1:] >= rows[:-1]).all())  # e.g. the statistics pass: no sort needed
        order = np.arange(len(rows)) if ascending else np.argsort(rows, kind="stable")
        ordered = rows if ascending else rows[order]
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        span = max(1, SCAN_BYTES // max(1, self._row_bytes))  # rows within 32 MB: one group, however many
        g = 0
        while g < len(rows):
            end = max(g + GROUP_ROWS, int(np.searchsorted(ordered, ordered[g] + span, "left")))
            group = ordered[g:end]
            if ascending and int(group[-1]) - int(group[0]) + 1 == len(group):  # a run of rows: a slice
                out[g:end] = self._array[int(group[0]):int(group[-1]) + 1]
            elif ascending:
                out[g:end] = self._array[group]
            else:
                out[order[g:end]] = self._array[group]
            self._release(int(group[0]), int(group[-1]))
            g = end
        return out

    def scan(self, start: int = 0, stop: Optional[int] = None, columns=None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, copy of a block of rows)`` from ``start`` to ``stop``, optionally only ``columns``."""
        stop = self.shape[0] if stop is None else min(int(stop), self.shape[0])
        step = max(1, SCAN_BYTES // max(1, self._row_bytes))
        for first in range(int(start), stop, step):
            last = min(stop, first + step)
            block = self._array[first:last]
            yield first, np.array(block if columns is None else block[:, columns])
            self._release(first, last - 1)


@dataclass
class Table:
    """A parsed table: memory-mapped matrices and what the manifest says about them.

    The matrices are mapped when the table is opened, so a later rebuild by another process (which
    swaps the folder) does not change what this one reads.
    """

    folder: Path
    manifest: dict
    status: str  # what happened: "cache reused ...", "parsed N rows in S s (the file changed ...)"
    _keep: Any = field(default=None, repr=False)  # a temporary folder that must outlive the memmaps

    def __post_init__(self) -> None:
        rows = self.rows
        self.numeric = MappedMatrix(self.folder / "numeric.f32", np.float32, rows, len(self.numeric_names))
        self.codes = MappedMatrix(self.folder / "codes.i32", np.int32, rows, len(self.categorical_names))
        self.labels = np.load(self.folder / "labels.npy")

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])

    @property
    def features(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def numeric_names(self) -> list[str]:
        return list(self.manifest["numeric"])

    @property
    def categorical_names(self) -> list[str]:
        return list(self.manifest["categorical"])

    def values(self, column: str) -> list[str]:
        """The values of categorical ``column``, indexed by code."""
        return list(self.manifest["values"][column])

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def class_names(self) -> Optional[list[str]]:
        return self.manifest.get("class_names")


def open_table(req: TableRequest) -> Table:
    """The cached table for ``req``: reused when the file and settings are unchanged, else (re)built."""
    path = Path(req.path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ConfigError(f"{req.kind.upper() if req.kind == 'csv' else 'Parquet'} file {what}: {path}",
                          key="data.path")
    stat = source_stat(path)
    try:
        root = cache_dir("tables")
    except ConfigError:  # unwritable cache folder: parse into a temporary one, kept for this run
        tmp = tempfile.TemporaryDirectory(prefix="kerasopt-table-")
        folder = Path(tmp.name) / "table"
        manifest = build(req, path, folder)
        return Table(folder, manifest, _parsed(manifest, "the cache folder is not writable"), _keep=tmp)
    key = digest({"path": str(path.resolve()), "format": FORMAT})
    folder = root / f"{_safe(path.stem)}-{key}"
    # One builder at a time: the other processes of a Horovod or multi-worker job (or a second run)
    # wait, then find the cache built. The kernel drops the lock if its holder dies.
    with open(root / f".{folder.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = read_json(folder / "manifest.json")
        why = _stale(old, req, stat)
        if why is None and all((folder / n).exists() for n in ("numeric.f32", "codes.i32", "labels.npy")):
            return Table(folder, old, f"cache reused: {old['rows']:,} rows, {folder}")
        manifest = build(req, path, folder)
        return Table(folder, manifest, _parsed(manifest, why or "the cache was incomplete"))


def _parsed(manifest: dict, why: str) -> str:
    return f"parsed {manifest['rows']:,} rows in {manifest['build_seconds']:.1f} s into the cache ({why})"


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:40] or "table"


def _stale(old: Optional[dict], req: TableRequest, stat: dict) -> Optional[str]:
    """Why a cache cannot be reused, or None when it can."""
    if not old:
        return "no cache yet"
    if old.get("format") != FORMAT:
        return "the cache was written by another kerasopt version"
    if old.get("source", {}).get("size") != stat["size"] or old.get("source", {}).get("mtime_ns") != stat["mtime_ns"]:
        return "the file changed since the cache was built"
    changed = [k for k, v in req.settings().items() if old.get("settings", {}).get(k) != v]
    if changed:
        return "the settings changed: " + ", ".join(changed)
    return None


