"""Atomic writes: a file or folder is either the old one or the new one, never half of one.

Every writer here writes beside the target (same folder, so the same file system), flushes and
``fsync``s, then renames into place with ``os.replace``. A kill at any moment leaves the previous
content and, at worst, a hidden temporary (``.<name>.tmp-<pid>...``) that the next write ignores.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_json(folder / "metrics.json", {"loss": 0.25})
    >>> (folder / "metrics.json").read_text()
    '{\\n  "loss": 0.25\\n}\\n'
    >>> with open_atomic(folder / "rows.csv", "w", newline="") as f:
    ...     _ = f.write("epoch,loss\\n0,0.25\\n")
    >>> sorted(p.name for p in folder.iterdir())
    ['metrics.json', 'rows.csv']

The checkpoint's folder swap (``callbacks/checkpoint.py``) is not :func:`replace_folder`: it keeps
the previous checkpoint under a fixed ``.old-<which>`` name that ``--resume`` falls back on after a
kill mid-swap, so it has its own crash contract and tests.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Optional


def _temp_path(path: Path) -> Path:
    """A fresh hidden name beside ``path``, keeping its suffix (``model.save`` picks the format by it)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def _create(path: Path) -> tuple[int, Path]:
    """Create a new temporary file beside ``path``; mode 0o666 less the umask, as ``open`` would (not
    ``mkstemp``'s 0o600: colleagues read run directories)."""
    while True:
        tmp = _temp_path(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue


@contextmanager
def staged_file(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) that becomes ``path`` when the block ends without error.

    For writers that want a file name rather than a file object (``model.save``, converters). An error
    removes the temporary and leaves ``path`` as it was.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "model.bin"
        >>> with staged_file(target) as tmp:
        ...     _ = tmp.write_bytes(b"weights")
        >>> target.read_bytes()
        b'weights'
    """
    path = Path(path)
    fd, tmp = _create(path)
    os.close(fd)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open`` for writing, renamed into place (after ``fsync``) only when the block ends without error.

    Example: ``with open_atomic(out, "w", newline="") as f: csv.writer(f).writerows(rows)``.
    """
    if "w" not in mode:
        raise ValueError(f"open_atomic writes a new file: mode must contain 'w'. Received: mode={mode!r}")
    with staged_file(path) as tmp:  # it fsyncs and renames once the file is closed
        with open(tmp, mode, **kwargs) as f:
            yield f


class AtomicFile:
    """A file written over many calls, renamed into place by :meth:`commit` or dropped by :meth:`discard`.

    For writers whose lifetime is not one ``with`` block (a streamed prediction CSV).

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "predictions.csv"
        >>> w = AtomicFile(out, "w", newline="")
        >>> _ = w.file.write("id,predicted\\n")
        >>> out.exists()
        False
        >>> w.commit(); out.read_text()
        'id,predicted\\n'
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> None:
        if "w" not in mode:
            raise ValueError(f"AtomicFile writes a new file: mode must contain 'w'. Received: mode={mode!r}")
        self.path = Path(path)
        fd, self.tmp = _create(self.path)
        self.file: IO = os.fdopen(fd, mode, **kwargs)

    def commit(self) -> None:
        """Flush, ``fsync`` and rename into place."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Close and remove the temporary (the target is untouched); safe to call after ``commit``."""
        if not self.file.closed:
            self.file.close()
        _remove(self.tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary beside it, ``fsync``, ``os.replace``)."""
    with open_atomic(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode())


def jsonable(o: Any) -> Any:
    """``json.dumps(default=)`` for NumPy numbers and arrays and paths; anything else is a ``TypeError``.

    Example:
        >>> import numpy as np
        >>> json.dumps({"n": np.int64(3), "p": Path("runs/x")}, default=jsonable)
        '{"n": 3, "p": "runs/x"}'
    """
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_json(path: str | os.PathLike, data: Any, *, indent: Optional[int] = 2, sort_keys: bool = False,
               default: Callable[[Any], Any] = jsonable, newline: bool = True) -> None:
    """Write ``data`` as JSON atomically; by default indented by 2, keys in their order, a final newline."""
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, default=default) + ("\n" if newline else ""))


def replace_folder(staged: str | os.PathLike, final: str | os.PathLike) -> None:
    """Swap the fully written folder ``staged`` in as ``final``.

    ``final`` is first renamed aside (``.<name>.old-<pid>``) and deleted only after ``staged`` took its
    place, so a kill leaves ``final`` (old or new) or the aside copy, never a half-written ``final``.
    A failure to delete the aside copy is ignored (an NFS reader may still hold a file in it).
    """
    staged, final = Path(staged), Path(final)
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(final: str | os.PathLike) -> Iterator[Path]:
    """A new empty folder beside ``final`` that replaces it (:func:`replace_folder`) when the block succeeds.

    An error deletes the staged folder and leaves ``final`` as it was.

    Example:
        >>> import tempfile
        >>> final = Path(tempfile.mkdtemp()) / "figures"
        >>> with staged_folder(final) as tmp:
        ...     _ = (tmp / "loss.png").write_bytes(b"png")
        >>> [p.name for p in final.iterdir()]
        ['loss.png']
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(final)
    tmp.mkdir()  # 0o777 less the umask, like the folder it replaces
    try:
        yield tmp
        replace_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_path(path: Path) -> None:
    if path.is_file():  # a writer may have made a folder (SavedModel) or nothing at all; let os.replace say so
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


__all__ = ["AtomicFile", "jsonable", "open_atomic", "replace_folder", "staged_file", "staged_folder",
           "write_bytes", "write_json", "write_text"]
