"""One process per run directory: a second `kerasopt fit` on the same folder gets exit 2 and one line."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from kerasopt.errors import ConfigError
from kerasopt.training.runlock import RunLock, lock_path

KERASOPT = str(Path(sys.executable).with_name("kerasopt"))

# ~30 s of training on 2 cores: long enough for the second process to start, load and be refused.
CFG = {
    "name": "locked",
    "data": {"source": "sklearn", "name": "wine", "batch_size": 8, "normalize": "standard"},
    "model": {"type": "mlp", "hidden_units": [32]},
    "train": {"epochs": 300, "verbose": 0, "jit_compile": False},
    "callbacks": {"tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]},
}


def _holder(path: Path) -> dict:
    try:
        return json.loads(lock_path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def test_lock_is_exclusive_names_its_holder_and_is_released():
    import tempfile

    run = Path(tempfile.mkdtemp()) / "runs" / "x"
    with RunLock(run):
        assert _holder(run)["pid"] == os.getpid() and _holder(run)["host"] == socket.gethostname()
        with pytest.raises(ConfigError) as e:
            RunLock(run).acquire()  # another open file description: refused, even in the same process
        assert f"run directory {run} is in use by pid {os.getpid()} on host {socket.gethostname()} since " \
            in str(e.value)
        assert not run.exists()  # the lock lives beside the folder: nothing is created in it
    with RunLock(run):  # released on exit
        pass
    assert not lock_path(run).exists() and not run.parent.exists()  # the file and the folder made for it


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "runs" / "x"
    code = ("import sys, time; from pathlib import Path; from kerasopt.training.runlock import RunLock; "
            f"RunLock(Path({str(run)!r})).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match=f"in use by pid {proc.pid} "):
            RunLock(run).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with RunLock(run):  # the kernel dropped the lock with the process
        assert _holder(run)["pid"] == os.getpid()


def test_second_fit_on_the_same_run_dir_is_refused_while_the_first_trains(tmp_path):
    cfg_path, run = tmp_path / "cfg.yaml", tmp_path / "run"
    cfg_path.write_text(yaml.safe_dump(CFG))
    first = subprocess.Popen([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        t0 = time.time()
        while not (run / "history.csv").is_file():  # the first run is training
            assert first.poll() is None, first.stdout.read()[-2000:]
            assert time.time() - t0 < 240, "the first run did not start training in time"
            time.sleep(0.1)
        for extra in ([], ["--resume"], ["--overwrite"]):
            second = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), *extra],
                                    capture_output=True, text=True, timeout=300)
            assert second.returncode == 2, (extra, second.stdout[-1000:], second.stderr[-1000:])
            lines = [line for line in second.stderr.splitlines() if line.strip()]
            assert lines == [f"error: run directory {run} is in use by pid {first.pid} on host "
                             f"{socket.gethostname()} since {_holder(run)['since']}; wait for it to finish or "
                             f"stop it (the lock is {lock_path(run)})"], (extra, second.stderr)
            assert first.poll() is None, "the first run ended before the second was refused: make CFG longer"
        first.send_signal(signal.SIGTERM)  # the refusals are checked: stop the first run the graceful way
        assert first.wait(600) == 0, first.stdout.read()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["interrupted_by"] == "SIGTERM"
    with open(run / "history.csv", newline="") as f:  # one writer: every row complete, each epoch once
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(len(rows))) and len(rows) >= 1
    assert metrics["last_epoch"] in (len(rows), len(rows) + 1)  # + 1: stopped inside an epoch not yet logged
    assert _holder(run) == {}  # released at the end
