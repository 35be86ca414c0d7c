"""Where decoded examples are kept between epochs: memory, a disk cache, or nowhere (``data.cache``).

``auto`` sizes the cache before training: the examples as the pipeline caches
them (images as uint8, before the float conversion) times their count, for the
training and validation splits together. It caches in memory when that fits
``data.cache_budget``, else on disk when the cache folder has room, else it
streams. The decision and the numbers go to ``spec.extras["cache"]`` (printed
by ``fit`` and written to ``metrics.json``).

A disk cache is a ``tf.data`` cache file in the user cache folder
(``kerasopt.usercache``), in a folder whose name is a digest of everything that
decides the cached elements: every file's path, size and mtime, the examples
selected (split, shard), the data settings before the cache and the element
shape. A changed file or setting gives a new folder, so a stale cache is never
read; the run prints why it rebuilds. The cache is written in a pass of its own
before training (``cache_store.fill_cache``); tf.data makes it readable only
once that pass is complete.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from kerasopt.config.data_schema import DataConfig, parse_size
from kerasopt.errors import ConfigError
from kerasopt.usercache import cache_dir, digest, read_json, write_json

AUTO_FRACTION = 0.05  # of available RAM: data.cache_budget: auto
KEEP_PER_ORIGIN = 3  # disk caches kept per data origin (other settings, older versions of the files)
_FORMAT = 1  # bump when what a disk cache holds changes
# Keys that act after the cache (or only on the batches), so they do not change what is cached.
_AFTER_CACHE = ("batch_size", "shuffle_buffer", "cache", "cache_budget", "num_parallel_calls", "prefetch",
                "augment", "normalize")


@dataclass
class CachePlan:
    """The cache decision: ``mode`` is ``memory``, ``disk`` or ``none``."""

    mode: str
    reason: str
    estimate_bytes: int
    budget_bytes: int
    budget_source: str
    folder: Optional[str] = None
    reused: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        where = {"memory": "in memory", "disk": "on disk", "none": "none (decoded every epoch)"}[self.mode]
        text = f"cache: {where}; {self.reason}"
        if self.mode == "disk" and self.folder:
            text += f" [{self.folder}]"
        return text


def human_bytes(n: float) -> str:
    """Example:
        >>> human_bytes(1_810_000_000), human_bytes(7_372_800)
        ('1.81 GB', '7.4 MB')
    """
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            digits = 2 if unit in ("TB", "GB") else 1
            return f"{n / size:.{digits}f} {unit}"
    return f"{int(n)} B"


def available_memory() -> int:
    """Bytes of RAM available now (``MemAvailable``), or the physical total where that is unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def budget_bytes(value: float | str, available: Optional[int] = None) -> tuple[int, str]:
    """``data.cache_budget`` in bytes, and how it was set (for the printed decision).

    Example:
        >>> budget_bytes("auto", available=20 * 10**9)
        (1000000000, 'auto: 5% of 20.00 GB available RAM')
        >>> budget_bytes("2GB", available=1)[0]
        2000000000
    """
    kind, amount = parse_size(value)
    if kind == "bytes":
        return int(amount), "data.cache_budget"
    available = available_memory() if available is None else available
    fraction = AUTO_FRACTION if kind == "auto" else amount
    what = "auto: " if kind == "auto" else "data.cache_budget: "
    return int(available * fraction), f"{what}{fraction:.0%} of {human_bytes(available)} available RAM"


def plan_cache(d: DataConfig, estimate: int, *, streamed: bool, can_disk: bool,
               available: Optional[int] = None) -> CachePlan:
    """Decide memory / disk / none for ``estimate`` bytes of cached examples.

    ``streamed``: the examples are read from files or generated (not already in
    memory); only then can a disk cache pay. ``can_disk``: the source has a
    fingerprint for a disk cache. Explicit ``true``/``disk`` that cannot be met
    raise a ``ConfigError`` (exit 2) instead of running out of memory or disk.

    Example:
        >>> d = DataConfig(name="digits", cache_budget="1GB")
        >>> plan_cache(d, 2 * 10**9, streamed=True, can_disk=False).mode
        'none'
    """
    budget, source = budget_bytes(d.cache_budget, available)
    est = human_bytes(estimate)
    fits = f"{est} estimated, budget {human_bytes(budget)} ({source})"
    plan = lambda mode, why: CachePlan(mode, why, int(estimate), budget, source)  # noqa: E731
    if d.cache is False:
        return plan("none", "data.cache: false")
    if d.cache is True:
        avail = available_memory() if available is None else available
        explicit = "cache_budget" in d.model_fields_set
        if estimate > (budget if explicit else 0.9 * avail):
            limit = f"data.cache_budget ({human_bytes(budget)})" if explicit else \
                f"90% of the RAM available ({human_bytes(avail)})"
            raise ConfigError(f"true keeps every decoded example in memory: {est} estimated, more than {limit}; "
                              f"set data.cache: auto or disk. Received: cache=True", key="data.cache")
        return plan("memory", f"data.cache: true; {est} estimated")
    if d.cache == "disk":
        if not streamed or not can_disk:
            why = "the examples are already in memory" if not streamed else "this source has no files to key it by"
            raise ConfigError(f"disk does not apply here: {why}. Received: cache='disk'", key="data.cache")
        return plan("disk", f"data.cache: disk; {est} estimated")
    if estimate <= budget:
        return plan("memory", fits)
    if streamed and can_disk:
        return plan("disk", f"{fits}: too big for memory")
    return plan("none", f"{fits}: too big for memory" + ("" if streamed else "; examples prepared every epoch"))


def source_fingerprint(d: DataConfig, files: list[str], seed: int) -> dict[str, Any]:
    """What decides the cached elements, apart from the selected indices and the element spec.

    Statting every file is cheap next to decoding it (12,000 files: a few ms).
    """
    settings = d.model_dump(mode="json", exclude=set(_AFTER_CACHE))
    stats = []
    for f in files:
        try:
            st = os.stat(f)
            stats.append((f, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((f, -1, -1))
    return {"format": _FORMAT, "settings": settings, "seed": seed, "files": digest(stats), "count": len(files)}


class DiskCache:
    """One split's disk cache folder: reuse a complete one, or claim it for writing.

    ``prefix`` is what ``tf.data.Dataset.cache`` is given. A folder another live
    process is writing is not touched: this run streams instead (``usable`` is
    False).
    """

    def __init__(self, origin: str, role: str, key_payload: dict[str, Any]) -> None:
        self.origin_dir = cache_dir("data") / f"{Path(origin).name[:40]}-{digest(origin, 12)}-{role}"
        self.key = digest(key_payload)
        self.folder = self.origin_dir / self.key
        self.prefix = str(self.folder / "cache")
        self.payload = key_payload
        self.reused = Path(self.prefix + ".index").exists()
        self.note = ""
        self.usable = True
        if not self.reused:
            self._claim()

    def _claim(self) -> None:
        self.origin_dir.mkdir(parents=True, exist_ok=True)
        self.note = _why_rebuild(self.origin_dir, self.payload)
        writer = read_json(self.folder / "writer.json")
        if writer and writer.get("host") == socket.gethostname() and writer.get("pid") != os.getpid() \
                and _alive(int(writer.get("pid", 0))):
            self.usable = False
            self.note = f"another process (pid {writer['pid']}) is writing this cache; streaming instead"
            return
        if self.folder.exists():  # a partial cache left by a killed run
            shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        write_json(self.folder / "writer.json", {"pid": os.getpid(), "host": socket.gethostname(),
                                                 "started": time.time()})
        write_json(self.folder / "key.json", self.payload)
        write_json(self.origin_dir / "latest.json", {"key": self.key, **self.payload})
        _prune(self.origin_dir, keep=self.key)

    def touch(self) -> None:
        """Mark this cache used now (the folders kept are the most recently used)."""
        try:
            os.utime(self.folder)
        except OSError:
            pass


def _why_rebuild(origin_dir: Path, payload: dict[str, Any]) -> str:
    last = read_json(origin_dir / "latest.json")
    if not last:
        return "first run on these files: written"
    if last.get("key") == digest(payload):
        return "rewriting: the last run stopped before its first pass over the data was complete"
    src, old = payload.get("source", {}), last.get("source", {})
    if src.get("files") != old.get("files") or src.get("count") != old.get("count"):
        return (f"rebuilding: the files changed since the last cache ({old.get('count')} then, "
                f"{src.get('count')} now, or a size/mtime differs)")
    changed = sorted(k for k in set(src.get("settings", {})) | set(old.get("settings", {}))
                     if src.get("settings", {}).get(k) != old.get("settings", {}).get(k))
    if changed:
        return f"rebuilding: data settings changed since the last cache ({', '.join('data.' + k for k in changed)})"
    return "rebuilding: the split, shard or element shape changed since the last cache"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prune(origin_dir: Path, keep: str) -> None:
    """Keep the ``KEEP_PER_ORIGIN`` most recently used caches of one origin (``keep`` among them)."""
    others = [p for p in origin_dir.iterdir() if p.is_dir() and p.name != keep]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEEP_PER_ORIGIN - 1:]:
        writer = read_json(old / "writer.json") or {}
        if writer.get("host") == socket.gethostname() and _alive(int(writer.get("pid", 0))) \
                and not Path(old / "cache.index").exists():
            continue  # being written right now
        shutil.rmtree(old, ignore_errors=True)


def data_summary(extras: dict[str, Any]) -> str:
    """The line ``fit`` prints about the cache and the shuffle buffer, from ``spec.extras``.

    Example:
        >>> plan = CachePlan("memory", "7.4 MB estimated, budget 1.00 GB (auto)", 7372800, 10**9, "auto")
        >>> data_summary({"cache": plan.as_dict(), "shuffle": {"buffer": 1437, "of": 1437}})
        'data: cache: in memory; 7.4 MB estimated, budget 1.00 GB (auto); shuffle buffer 1437 of 1437 examples'
    """
    parts = []
    if extras.get("table"):  # csv/parquet: parsed into the table cache, or that cache reused
        parts.append(f"table {extras['table']}")
    plan = CachePlan(**extras["cache"]) if extras.get("cache") else None
    if plan and not (extras.get("table") and plan.mode == "none"):  # a streamed table said where it reads from
        parts.append(plan.describe())
    shuffle = extras.get("shuffle")
    if shuffle and shuffle.get("by_index"):
        parts.append(f"the {shuffle['of']:,} training rows shuffled by index each epoch")
    elif shuffle:
        parts.append(f"shuffle buffer {shuffle['buffer']} of {shuffle['of']} examples" if shuffle["buffer"]
                     else "no shuffling")
    return "data: " + "; ".join(parts)
