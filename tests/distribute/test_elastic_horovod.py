"""Elastic Horovod with real processes: `horovodrun -np 2 --min-np 1 --max-np 2 --host-discovery-script`.

A worker is SIGKILLed mid-epoch; the job goes on with one rank, and (with a blacklist cooldown) a new
worker joins and receives the state. `make elastic` runs these; `make test` leaves them out (slow).
Skipped when Horovod is not built (`make horovod`).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from kerasopt.errors import ConfigError

try:
    from kerasopt.distribute.horovod import import_hvd

    import_hvd()
    HOROVODRUN = shutil.which("horovodrun", path=str(Path(sys.executable).parent)) or shutil.which("horovodrun")
except ConfigError:
    HOROVODRUN = None

pytestmark = [pytest.mark.horovod, pytest.mark.elastic,
              pytest.mark.skipif(HOROVODRUN is None, reason="Horovod is not built: run `make horovod`")]

STEPS = 23  # ceil(1437 training images / global batch 64)
EVERY = 6  # commit_every: a quarter of an epoch, rounded up
CFG = {
    "name": "elastic",
    "seed": 5,
    "data": {"source": "sklearn", "name": "digits", "batch_size": 64, "normalize": "minmax", "reshape": [64]},
    "model": {"type": "mlp", "hidden_units": [32], "dropout": 0.1},
    "train": {"epochs": 6, "verbose": 0, "jit_compile": False,
              "optimizer": {"type": "adam", "learning_rate": 0.003}},
    "callbacks": {"checkpoint": {"monitor": "val_accuracy"}},
    "export": {"formats": ["keras"]},
}

# Each worker: kerasopt.fit with a probe callback (after kerasopt's own, so after the commit) that publishes
# this process's position and sleeps a little per batch, so a kill lands mid-epoch; then a digest of the
# final weights, written per process id (ranks change when workers come and go).
WORKER = textwrap.dedent("""
    import hashlib, json, os, sys, time
    import numpy as np
    import kerasopt
    from kerasopt._keras import keras
    from kerasopt.distribute.horovod import import_hvd

    cfg, run_dir, out = sys.argv[1:4]
    SLEEP = float(os.environ.get("PROBE_SLEEP", "0.05"))
    SLEEP_ALONE = float(os.environ.get("PROBE_SLEEP_ALONE", SLEEP))

    def publish(name, record):
        tmp = os.path.join(out, f".{name}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(out, name))

    class Probe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            hvd = import_hvd()
            publish(f"status-{os.getpid()}.json", {"pid": os.getpid(), "rank": hvd.rank(), "size": hvd.size(),
                    "iterations": int(self.model.optimizer.iterations.numpy())})
            time.sleep(SLEEP if hvd.size() > 1 else SLEEP_ALONE)

    r = kerasopt.fit(cfg, run_dir=run_dir, print_fn=lambda s: print(s, flush=True), callbacks=[Probe()])
    hvd = import_hvd()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in r.model.get_weights())).hexdigest()
    publish(f"final-{os.getpid()}.json", {"pid": os.getpid(), "rank": hvd.rank(), "size": hvd.size(),
            "iterations": int(r.assembly.train_model.optimizer.iterations.numpy()), "digest": digest})
""")


def _records(out: Path, prefix: str) -> list[dict]:
    found = []
    for p in out.glob(f"{prefix}-*.json"):
        try:
            found.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            pass
    return found


def _launch(tmp_path: Path, cfg: dict, *extra: str, env: dict):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "hosts.txt").write_text("localhost:1\n127.0.0.1:1\n")  # two host names: elastic Gloo needs 2
    discover = tmp_path / "discover.sh"
    discover.write_text(f'#!/bin/sh\ncat "{tmp_path / "hosts.txt"}"\n')
    discover.chmod(0o755)
    (tmp_path / "worker.py").write_text(WORKER)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    log = open(tmp_path / "horovodrun.log", "w")
    cmd = [HOROVODRUN, "-np", "2", "--min-np", "1", "--max-np", "2", "--host-discovery-script", str(discover),
           "--gloo", *extra, sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "cfg.yaml"),
           str(tmp_path / "run"), str(out)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1",
                            **env), start_new_session=True)
    return proc, out, log


def _kill_after_a_commit(proc, out: Path, tmp_path: Path, rank: int = 1) -> tuple[int, set[int]]:
    """SIGKILL ``rank`` in epoch 2 or later, between two commits (after batch EVERY, before batch 2 * EVERY)."""
    t0 = time.time()
    while True:
        statuses = _records(out, "status")
        for s in statuses:
            done = s["iterations"] % STEPS
            if s["rank"] == rank and s["size"] == 2 and s["iterations"] >= STEPS and EVERY < done < 2 * EVERY:
                os.kill(s["pid"], signal.SIGKILL)
                return s["pid"], {r["pid"] for r in statuses}
        assert proc.poll() is None, "the job ended before the kill:\n" + _log(tmp_path)
        assert time.time() - t0 < 90, "no worker reached the kill point:\n" + _log(tmp_path)
        time.sleep(0.01)


def _log(tmp_path: Path) -> str:
    return (tmp_path / "horovodrun.log").read_text()[-4000:]


def _epochs_in_history(run: Path) -> list[int]:
    rows = (run / "history.csv").read_text().strip().splitlines()
    return [int(r.split(",")[0]) for r in rows[1:]]


def _stop(proc, log) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    log.close()


def _run_with_a_kill(tmp_path: Path, cfg: dict, *extra: str, env: dict, rank: int = 1, timeout: float = 120):
    """Launch, SIGKILL ``rank`` right after a commit, wait for the job to end (stopped in any case).
    Returns ``(horovodrun's exit code, the probes' output file, the killed pid, the pids before, the log)``."""
    proc, out, log = _launch(tmp_path, cfg, *extra, env=env)
    try:
        killed, before = _kill_after_a_commit(proc, out, tmp_path, rank=rank)
        proc.wait(timeout=timeout)
    finally:
        _stop(proc, log)
    return proc.returncode, out, killed, before, _log(tmp_path)


def test_a_killed_worker_leaves_the_job_running_on_one_rank_with_no_batch_lost_or_repeated(tmp_path):
    epochs = CFG["train"]["epochs"]
    code, out, killed, _, text = _run_with_a_kill(tmp_path, CFG, env={})
    assert code == 0, text
    run = tmp_path / "run"
    assert (run / "model" / "elastic.keras").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["last_epoch"] == epochs and metrics["strategy"]["elastic"] is True
    assert _epochs_in_history(run) == list(range(epochs))  # every epoch once: rolled-back rows rewritten, not doubled
    finals = _records(out, "final")
    assert [f["pid"] for f in finals] != [killed] and len(finals) == 1, finals
    # the survivor rolled back to the commit and went on alone: every batch trained exactly once
    assert finals[0]["size"] == 1 and finals[0]["rank"] == 0
    assert finals[0]["iterations"] == epochs * STEPS
    assert "[elastic] re-entered: rank 0 of 1" in text


def test_a_worker_that_rejoins_gets_the_state_and_ends_with_the_same_weights(tmp_path):
    """The killed host comes back after the blacklist cooldown; a new process joins and receives weights,
    optimizer slots and step, EMA shadows and position, so both ranks end identical.

    ``include_bn_stats: False``: the EMA of BatchNorm's moving statistics follows each rank's own statistics
    (only the model's are averaged over ranks), so it differs between ranks under plain Horovod too."""
    epochs = 8
    cfg = dict(CFG, train={**CFG["train"], "epochs": epochs},
               callbacks={**CFG["callbacks"], "ema": {"enabled": True, "evaluate_raw": False, "decay": 0.9,
                                                     "include_bn_stats": False}})
    code, out, killed, before, text = _run_with_a_kill(tmp_path, cfg, "--blacklist-cooldown-range", "3", "6",
                                                       env={"PROBE_SLEEP_ALONE": "0.25"}, timeout=150)
    assert code == 0, text
    assert "[elastic] joined: rank 1 of 2" in text, text
    finals = _records(out, "final")
    assert len(finals) == 2, text
    assert killed not in {f["pid"] for f in finals}
    joined = [f for f in finals if f["pid"] not in before]
    assert len(joined) == 1 and all(f["size"] == 2 for f in finals), finals
    assert finals[0]["digest"] == finals[1]["digest"]  # weights (EMA, exported) identical on both ranks
    assert finals[0]["iterations"] == finals[1]["iterations"] == epochs * STEPS
    run = tmp_path / "run"
    assert _epochs_in_history(run) == list(range(epochs))
    assert json.loads((run / "metrics.json").read_text())["last_epoch"] == epochs


def test_when_the_chief_dies_the_survivor_becomes_rank_0_and_writes_the_run(tmp_path):
    """Rank 0 is killed: the other process becomes rank 0, rebuilds the chief's callbacks (checkpoint,
    history) and writes the whole run: every epoch's row and metrics, exact step count."""
    epochs = CFG["train"]["epochs"]
    code, out, killed, _, text = _run_with_a_kill(tmp_path, CFG, env={}, rank=0)
    assert code == 0, text
    finals = _records(out, "final")
    assert len(finals) == 1 and finals[0]["pid"] != killed and finals[0]["rank"] == 0, finals
    assert finals[0]["iterations"] == epochs * STEPS
    run = tmp_path / "run"
    assert _epochs_in_history(run) == list(range(epochs))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["last_epoch"] == metrics["epochs_run"] == epochs  # the epochs before the kill included
    assert (run / "model" / "elastic.keras").is_file()
    last = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert (last["epoch"], last["batch"], last["step"]) == (epochs, 0, epochs * STEPS)  # the new chief saved it
    assert text.count("run directory:") == 1  # and printed the summary (the printing follows rank 0)

