"""A streamed table (read from its memory-mapped cache, rows shuffled by index) resumes exactly after SIGKILL."""

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from training_runs import checkpoint_step, fit_cli


def _config(tmp_path: Path) -> dict:
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=(n, 6)).round(4)
    colors = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    y = (x[:, 0] + x[:, 1] - x[:, 2] + (colors == "red") > 0.5).astype(int)
    lines = ["a,b,c,d,e,f,color,label"] + [",".join(map(str, r)) + f",{c},{t}" for r, c, t in zip(x, colors, y)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    return {
        "name": "streamed", "seed": 5, "deterministic": True, "runs_root": str(tmp_path / "runs"),
        "data": {"source": "csv", "path": str(tmp_path / "t.csv"), "label_column": "label",
                 "categorical_columns": ["color"], "normalize": "standard", "batch_size": 32, "cache": False},
        "model": {"type": "mlp", "hidden_units": [16]},
        "train": {"epochs": 5, "verbose": 0, "precision": "float32", "jit_compile": False,
                  "optimizer": {"type": "adam", "learning_rate": 0.01}},
        "callbacks": {"tensorboard": {"enabled": False}, "checkpoint": {"every_n_steps": 7}},
        "export": {"formats": ["keras"]},
    }


def _fit(cfg_path: Path, run_dir: Path, *extra: str, wait: bool = True):
    env = {**os.environ, "KERASOPT_CACHE_DIR": str(cfg_path.parent / "cache")}
    return fit_cli(cfg_path, run_dir, *extra, env=env, wait=wait)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_on_the_uninterrupted_weights(tmp_path):
    from kerasopt._keras import keras

    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(tmp_path)))
    out = _fit(cfg_path, tmp_path / "reference")
    assert "shuffled by index" in out.stdout  # the streamed path, not the in-memory one
    run = tmp_path / "killed"
    proc = _fit(cfg_path, run, wait=False)
    t0 = time.time()
    while checkpoint_step(run) < 60:  # 38 batches an epoch: killed in epoch 2, after a mid-epoch save
        assert proc.poll() is None, "the run ended before it could be killed:\n" + proc.stdout.read()[-2000:]
        assert time.time() - t0 < 300, "no checkpoint appeared in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    meta = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["batch"] > 0 and meta["step"] < 5 * 38, "the kill must land mid-run, after a mid-epoch save"
    assert "resuming" in _fit(cfg_path, run, "--resume").stdout
    ref = keras.models.load_model(tmp_path / "reference" / "model" / "streamed.keras").get_weights()
    got = keras.models.load_model(run / "model" / "streamed.keras").get_weights()
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, got))
    assert worst == 0.0, f"max abs weight difference {worst:g} after a SIGKILL at step {meta['step']}"
