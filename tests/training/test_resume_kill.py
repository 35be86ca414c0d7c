"""Real processes: SIGKILL mid-run then --resume, and SIGTERM, end with the uninterrupted run's weights."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

KERASOPT = str(Path(sys.executable).with_name("kerasopt"))

CFG = {
    "name": "resume",
    "seed": 7,
    "deterministic": True,
    "data": {"source": "sklearn", "name": "wine", "batch_size": 16, "normalize": "standard"},
    "model": {"type": "mlp", "hidden_units": [32, 16], "dropout": 0.3},
    "train": {"epochs": 70, "verbose": 0, "optimizer": {"type": "adam", "learning_rate": 0.003},
              "schedule": {"type": "cosine", "warmup_epochs": 2}},
    "callbacks": {"checkpoint": {"monitor": "val_accuracy", "every_n_steps": 5}, "tensorboard": {"enabled": False},
                  "ema": {"enabled": True, "decay": 0.99}},
    "export": {"formats": ["keras"]},
}


def _weights(run_dir: Path) -> list[np.ndarray]:
    from kerasopt._keras import keras

    return keras.models.load_model(run_dir / "model" / "resume.keras").get_weights()


def _step(run_dir: Path) -> int:
    meta = run_dir / "checkpoints" / "last" / "meta.json"
    try:
        return json.loads(meta.read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def _start(cfg_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int, timeout: float = 240) -> None:
    t0 = time.time()
    while _step(run_dir) < step:
        assert proc.poll() is None, "the run ended before it could be interrupted:\n" + proc.stdout.read()[-2000:]
        assert time.time() - t0 < timeout, "no checkpoint appeared in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    cfg_path = root / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(CFG))
    out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(root / "run")], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return cfg_path, _weights(root / "run")


def _assert_same(a, b):
    assert len(a) == len(b)
    worst = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    assert worst <= 1e-5, f"max abs weight difference {worst:g}"
    return worst


# the fault chain in tests/reliability/test_process_faults.py (SIGKILL twice, SIGTERM) covers this in
# make test; `make test-all` runs it too
@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(reference, tmp_path):
    cfg_path, ref = reference
    run = tmp_path / "killed"
    proc = _start(cfg_path, run)
    _wait_for_step(proc, run, 300)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["step"] >= 300
    out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "resuming" in out.stdout
    worst = _assert_same(ref, _weights(run))
    print(f"SIGKILL at step {meta['step']} (epoch {meta['epoch'] + 1}, batch {meta['batch']}): max |dw| = {worst:g}")
    rows = (run / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(CFG["train"]["epochs"]))


# the fault chain in tests/reliability/test_process_faults.py (SIGKILL twice, SIGTERM) covers this in
# make test; `make test-all` runs it too
@pytest.mark.slow
def test_sigterm_saves_mid_epoch_and_resume_matches(reference, tmp_path):
    cfg_path, ref = reference
    run = tmp_path / "term"
    proc = _start(cfg_path, run)
    _wait_for_step(proc, run, 200)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-2000:]
    assert "stopped by SIGTERM" in output and "--resume" in output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["interrupted_by"] == "SIGTERM"
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    worst = _assert_same(ref, _weights(run))
    print(f"SIGTERM at step {meta['step']} (epoch {meta['epoch'] + 1}, batch {meta['batch']}): max |dw| = {worst:g}")


@pytest.mark.slow  # 35 s; `make test-all` runs it (make test stays near its 25-minute budget)
def test_sigterm_with_steps_per_execution_resumes_exactly(tmp_path):
    # steps_per_execution 3: Keras calls the batch hooks once per 3 batches (9 batches an epoch: after
    # batches 3, 6 and 9). The checkpoint must record batches, not calls, or the resumed run skips
    # the wrong number of batches; every_n_steps 5 must still save although the step count jumps
    # over multiples of 5.
    cfg = {**CFG, "train": {**CFG["train"], "epochs": 30, "steps_per_execution": 3}}
    cfg_path = tmp_path / "spe.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    ref = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "ref")], capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stdout[-2000:] + ref.stderr[-2000:]
    run = tmp_path / "term"
    proc = _start(cfg_path, run)
    _wait_for_step(proc, run, 100)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped by SIGTERM" in output, output[-2000:]
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["batch"] % 3 == 0 and meta["step"] == 9 * meta["epoch"] + meta["batch"]
    out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    worst = _assert_same(_weights(tmp_path / "ref"), _weights(run))
    print(f"steps_per_execution 3, SIGTERM at step {meta['step']} (epoch {meta['epoch'] + 1}, batch "
          f"{meta['batch']}): max |dw| = {worst:g}")
