"""One process per run directory: an exclusive lock taken before the run directory is checked or written.

The lock is ``fcntl.flock`` on a file beside the run directory, ``<parent>/.<name>.lock`` (beside it,
not in it: ``--overwrite`` deletes the folder). The kernel drops the lock when the holder exits, even
on SIGKILL, so a crashed run never leaves a stale lock (only its file, which the next run reuses).
The file holds the holder's pid, host and start time, which the refused run prints. A run removes
its lock file, and any folder it created for it, when it ends: a config that fails its checks leaves
the tree as it was.

Example::

    with RunLock(Path("runs/digits_cnn")):
        check_run_dir(...)   # no other process can pass this check for the same folder now
        ...train...
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from kerasopt.errors import ConfigError


def lock_path(run_dir: Path) -> Path:
    """``runs/x`` -> ``runs/.x.lock``."""
    run_dir = Path(run_dir).absolute()
    return run_dir.parent / f".{run_dir.name}.lock"


class RunLock:
    """An exclusive, non-blocking lock on a run directory; a second holder gets ``ConfigError`` (exit 2).

    Re-entrant for the same object (``acquire`` twice is one lock); ``release`` is idempotent.
    """

    _created: list[Path]

    def __init__(self, run_dir: Path, what: str = "run directory") -> None:
        self.run_dir = Path(run_dir)
        self.what = what
        self.path = lock_path(self.run_dir)
        self._fd: Optional[int] = None
        self._created = []

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        for _ in range(20):  # a holder unlinking the file between our open and flock: open the new one
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                self._remove_created_dirs()
                raise ConfigError(f"{self.what} {self.run_dir} is in use by {holder}; wait for it to finish or "
                                  f"stop it (the lock is {self.path})") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - twenty holders in a row released while we looked
            raise ConfigError(f"{self.what} {self.run_dir}: could not take its lock {self.path}; try again")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def _open(self) -> int:
        self._created = []
        parent = self.path.parent
        while not parent.exists():  # remembered, to leave no empty folder behind when the run stops early
            self._created.append(parent)
            parent = parent.parent
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            self._remove_created_dirs()
            where = next((p for p in (self.path.parent, *self.path.parent.parents) if p.exists()), self.path.parent)
            raise ConfigError(f"cannot write the {self.what}: {where} is not writable ({e.strerror or e}; "
                              f"the lock file {self.path} could not be created); nothing was changed") from None

    def _remove_created_dirs(self) -> None:
        for folder in self._created:  # deepest first
            try:
                folder.rmdir()
            except OSError:  # not empty: the run wrote into it
                break

    def release(self) -> None:
        """Unlink the file while still holding the lock, then close (a waiting opener re-checks the inode)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)
        self._remove_created_dirs()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """``pid 123 on host h since 2026-11-29 07:00:00 UTC`` from the lock file, or what is known."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process (it is starting)"
    return f"pid {info['pid']} on host {info.get('host', '?')} since {info.get('since', '?')}"
