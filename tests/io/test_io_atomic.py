"""Atomic writers: the target is the old content or the new, never half, and no temporary is left."""

import doctest
import importlib
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from kerasopt.io import atomic


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("name", ["kerasopt.io.atomic", "kerasopt.io.history", "kerasopt.io.console"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_writers_replace_and_leave_nothing_beside(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    atomic.write_json(target, {"n": np.int64(3), "a": np.arange(2), "p": tmp_path})
    assert json.loads(target.read_text()) == {"n": 3, "a": [0, 1], "p": str(tmp_path)}
    assert target.read_text().endswith("}\n")
    atomic.write_text(tmp_path / "a.txt", "é")
    atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text() == "é" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _names(tmp_path) == ["a.txt", "b.bin", "metrics.json"]


def test_json_options_and_unknown_types(tmp_path):
    atomic.write_json(tmp_path / "c.json", {"b": 1, "a": 2}, indent=1, sort_keys=True, default=str, newline=False)
    assert (tmp_path / "c.json").read_text() == '{\n "a": 2,\n "b": 1\n}'
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        atomic.write_json(tmp_path / "d.json", {"x": object()})
    assert _names(tmp_path) == ["c.json"]  # the failed write left neither a file nor a temporary


def test_an_error_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic.open_atomic(target, "w") as f:
            f.write("half")
            raise RuntimeError("killed midway")
    assert target.read_text() == "old\n" and _names(tmp_path) == ["out.csv"]
    with pytest.raises(ValueError, match="mode must contain 'w'. Received: mode='r'"):
        with atomic.open_atomic(target, "r"):
            pass


def test_staged_file_keeps_the_suffix_and_cleans_up(tmp_path):
    target = tmp_path / "model.keras"
    with atomic.staged_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".keras" and tmp.name.startswith(".model.keras.tmp-")
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(OSError):
        with atomic.staged_file(target) as tmp:
            tmp.unlink()  # a writer that failed to produce anything
    assert _names(tmp_path) == ["model.keras"]


def test_atomic_file_commit_and_discard(tmp_path):
    w = atomic.AtomicFile(tmp_path / "p.csv", "w", newline="")
    w.file.write("id\n")
    w.discard()
    w.discard()  # twice is fine
    assert _names(tmp_path) == []
    w = atomic.AtomicFile(tmp_path / "p.csv", "w", newline="")
    w.file.write("id\n")
    w.commit()
    assert (tmp_path / "p.csv").read_text() == "id\n" and _names(tmp_path) == ["p.csv"]


def test_new_files_and_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "config.yaml", "x")
        with atomic.staged_folder(tmp_path / "figures"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "config.yaml").stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert stat.S_IMODE((tmp_path / "figures").stat().st_mode) == 0o755


def test_staged_folder_swaps_and_a_failure_keeps_the_old(tmp_path):
    final = tmp_path / "cache"
    with atomic.staged_folder(final) as tmp:
        (tmp / "a").write_text("1")
    with atomic.staged_folder(final) as tmp:
        (tmp / "b").write_text("2")
    assert _names(final) == ["b"]
    with pytest.raises(RuntimeError):
        with atomic.staged_folder(final) as tmp:
            (tmp / "c").write_text("3")
            raise RuntimeError("disk full")
    assert _names(final) == ["b"] and _names(tmp_path) == ["cache"]


def test_replace_folder_clears_a_stale_aside_copy(tmp_path):
    final, staged = tmp_path / "out", tmp_path / "staged"
    for folder, name in ((final, "old"), (staged, "new")):
        folder.mkdir()
        (folder / name).write_text("x")
    stale = tmp_path / f".out.old-{os.getpid()}"
    stale.mkdir()
    atomic.replace_folder(staged, final)
    assert _names(final) == ["new"] and _names(tmp_path) == ["out"]


def test_the_io_package_imports_neither_tensorflow_nor_rich_for_atomic_writes():
    code = ("import sys, kerasopt.io.atomic, kerasopt.io.history; "
            "print('tensorflow' in sys.modules, 'rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
