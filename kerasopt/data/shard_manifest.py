"""What the pass before training found in each TFRecord file, kept between runs (image folders: ``manifest``).

Per file: its labels, the largest token id, the records whose image does not
decode, or the reason it cannot be read at all. One NPZ per file pattern and
parse settings (``data.features``, ``data.label_key``) in the user cache
folder; an entry is used while the file's size and mtime_ns are unchanged
(and were not fresh at the check: ``manifest.settled``). A
file that fails the checks (a spec that does not match, NaN, negative token
ids) raises before it gets an entry, so an error is found again on the next run.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from kerasopt.data.manifest import manifest_file, save_manifest, settled, stat_files


@dataclass
class ShardScan:
    """One file's scan: ``labels`` (one per record), ``max_id`` (token inputs, else -1), ``bad`` image records,
    or ``unreadable`` (the reason) for a file that is not a readable TFRecord file."""

    labels: np.ndarray
    max_id: int = -1
    bad: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unreadable: Optional[str] = None


def _pack(scans: list[ShardScan]) -> dict[str, np.ndarray]:
    """Every file's labels and bad records as flat arrays (string labels as bytes + end offsets)."""
    parts = [s.labels for s in scans]
    tail = next((p.shape[1:] for p in parts if len(p)), ())
    labels = np.concatenate([p.reshape((0, *tail)) if not len(p) else p for p in parts]) if parts else np.zeros(0)
    out = {"count": np.array([len(p) for p in parts], np.int64),
           "bad": np.concatenate([s.bad.astype(np.int64) for s in scans] or [np.zeros(0, np.int64)]),
           "bad_count": np.array([len(s.bad) for s in scans], np.int64)}
    if labels.dtype == object:  # bytes: NumPy's fixed-width "S" would drop trailing NULs
        out["label_bytes"] = np.frombuffer(b"".join(labels.tolist()), np.uint8)
        out["label_ends"] = np.cumsum([len(b) for b in labels.tolist()], dtype=np.int64)
    else:
        out["labels"] = labels
    return out


def _unpack(z: dict[str, np.ndarray]) -> list[ShardScan]:
    if "label_bytes" in z:
        raw, ends = z["label_bytes"].tobytes(), z["label_ends"]
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
        labels = np.empty(len(ends), object)
        labels[:] = [raw[a:b] for a, b in zip(starts, ends, strict=True)]
    else:
        labels = z["labels"]
    count, bad_count = z["count"], z["bad_count"]
    if count.sum() != len(labels) or bad_count.sum() != len(z["bad"]):
        raise ValueError("inconsistent manifest")
    lo, bo = np.concatenate([[0], np.cumsum(count)]), np.concatenate([[0], np.cumsum(bad_count)])
    return [ShardScan(labels[lo[k]:lo[k + 1]], int(z["max_id"][k]), z["bad"][bo[k]:bo[k + 1]],
                      str(z["unreadable"][k]) if not z["readable"][k] else None) for k in range(len(count))]


class ShardManifest:
    """Scans of the TFRecord files of one pattern, under one parse ``key``.

    ``lookup(files)`` gives each file's ``ShardScan`` while it is unchanged, else
    None; ``put(file, scan)`` records a new scan; ``save()`` writes the manifest
    when something changed (entries of files no longer matched drop out).

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.tfrecord"
        >>> _ = f.write_bytes(b"x")
        >>> os.utime(f, (1.6e9, 1.6e9))  # written long before the check (see ``manifest.settled``)
        >>> m = ShardManifest({"pattern": str(f)})
        >>> m.lookup([str(f)])
        [None]
        >>> m.put(str(f), ShardScan(np.array([b"cat", b"dog\\x00"], object)))
        >>> m.save()
        >>> ShardManifest({"pattern": str(f)}).lookup([str(f)])[0].labels.tolist()
        [b'cat', b'dog\\x00']
    """

    def __init__(self, key: dict) -> None:
        self.key = key
        self.path = manifest_file("tfrecord", key, ".npz")
        self.old = self._load()
        self.new: dict[str, tuple[int, int, ShardScan]] = {}
        self.stats: dict[str, tuple[int, int]] = {}
        self.reused = 0
        self.changed = False
        self.started_ns = time.time_ns()

    def _load(self) -> dict[str, tuple[int, int, ShardScan]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                z = {k: npz[k] for k in npz.files}
            if json.loads(str(z["key"])) != json.loads(json.dumps(self.key)):
                return {}
            scans = _unpack(z)
            return {str(n): (int(s), int(m), scan)
                    for n, s, m, scan in zip(z["names"], z["size"], z["mtime_ns"], scans, strict=True)}
        except Exception:  # noqa: BLE001 - a corrupt or old manifest is a cache miss, whatever is wrong with it
            return {}

    def lookup(self, files: list[str]) -> list[Optional[ShardScan]]:
        sizes, mtimes = stat_files(files)
        out: list[Optional[ShardScan]] = []
        for f, size, mtime in zip(files, sizes.tolist(), mtimes.tolist(), strict=True):
            entry = self.old.get(f)
            self.stats[f] = (size, mtime)
            if entry is not None and size >= 0 and entry[:2] == (size, mtime):
                self.new[f] = entry
                self.reused += 1
                out.append(entry[2])
            else:
                out.append(None)
        return out

    def put(self, file: str, scan: ShardScan) -> None:
        size, mtime = self.stats.get(file, (-1, -1))
        self.new[file] = (size, int(settled(np.array([mtime]), self.started_ns)[0]), scan)
        self.changed = True

    def save(self) -> None:
        if not (self.changed or set(self.new) != set(self.old)) or self.path is None:
            return
        names = list(self.new)
        entries = [self.new[n] for n in names]
        scans = [e[2] for e in entries]
        arrays = {"key": np.array(json.dumps(self.key)), "names": np.array(names, dtype=str),
                  "size": np.array([e[0] for e in entries], np.int64),
                  "mtime_ns": np.array([e[1] for e in entries], np.int64),
                  "max_id": np.array([s.max_id for s in scans], np.int64),
                  "readable": np.array([s.unreadable is None for s in scans], bool),
                  "unreadable": np.array([s.unreadable or "" for s in scans], dtype=str), **_pack(scans)}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        save_manifest(self.path, buf.getvalue())


def shard_key(pattern: str, features: dict, label_key: str) -> dict:
    """The manifest key: the pattern (absolute) and everything that decides a scan.

    Example:
        >>> shard_key("/d/*.tfrecord", {"y": {"dtype": "int64", "shape": []}}, "y")["label_key"]
        'y'
    """
    return {"kind": "tfrecord", "pattern": os.path.abspath(pattern), "features": features, "label_key": label_key}
