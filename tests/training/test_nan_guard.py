"""The NaN/divergence guard: a run that diverges on purpose recovers, or stops cleanly keeping its checkpoint."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import kerasopt
from kerasopt.cli import main


def _cfg(tmp_path, **nan_guard):
    return {
        "name": "diverge",
        "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "wine", "batch_size": 16, "normalize": "standard"},
        "model": {"type": "mlp", "hidden_units": [64, 64], "batch_norm": False},
        # SGD at LR 20 on this net overflows to Inf/NaN within the first epochs.
        "train": {"epochs": 6, "verbose": 0, "optimizer": {"type": "sgd", "learning_rate": 20.0, "momentum": 0.9}},
        "callbacks": {"tensorboard": {"enabled": False}, "nan_guard": nan_guard},
        "export": {"formats": ["keras"]},
    }


def test_divergence_recovers_with_a_lower_lr(tmp_path):
    result = kerasopt.fit(_cfg(tmp_path, max_retries=4, lr_factor=0.001), print_fn=lambda s: None)
    rec = result.metrics["nan_recoveries"]
    assert 1 <= len(rec) <= 4
    assert rec[0]["reason"] == "non-finite" and rec[0]["lr_scale"] == pytest.approx(0.001)
    assert all(math.isfinite(v) for v in result.history["loss"])
    assert result.metrics["last_epoch"] == 6 and result.metrics["final"]["val_accuracy"] > 0.8
    saved = json.loads((result.run_dir.path / "metrics.json").read_text())
    assert saved["nan_recoveries"] == rec
    rows = (result.run_dir.path / "history.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(6))  # diverged epochs were rewritten
    assert "nan" not in "".join(rows).lower()


def test_persistent_divergence_stops_with_exit_1_and_keeps_the_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, max_retries=2, lr_factor=1.0)  # the LR is not lowered: it diverges every time
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(main, ["fit", str(p)])
    assert r.exit_code == 1
    assert "loss diverged" in r.output and "after 2 recoveries" in r.output
    last = Path(cfg["runs_root"]) / "diverge" / "checkpoints" / "last"
    meta = json.loads((last / "meta.json").read_text())
    assert math.isfinite(meta["logs"].get("loss", 0.0))
    from kerasopt._keras import tf

    reader = tf.train.load_checkpoint(str(last / "ckpt"))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


def test_loss_bound_counts_as_divergence():
    from kerasopt.callbacks.nan_guard import NaNGuard

    g = NaNGuard(loss_bound=10.0)
    assert not g.check(9.0, 0, 0) and g.check(11.0, 0, 3)
    assert g.event == {"epoch": 1, "batch": 4, "loss": "11.0", "reason": "above loss_bound 10"}
    with pytest.raises(ValueError, match="Received: lr_factor=0"):
        NaNGuard(lr_factor=0)
