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


def _finite_checkpoint(folder: Path) -> None:
    from kerasopt._keras import tf

    reader = tf.train.load_checkpoint(str(folder / "ckpt"))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), (folder, name)


def test_guard_off_divergence_exits_1_and_exports_nothing(tmp_path):
    """With the guard off a NaN run used to end with exit 0 and export NaN weights as the model and best."""
    cfg = _cfg(tmp_path, enabled=False)
    cfg["train"]["epochs"] = 3
    cfg["export"]["formats"] = ["keras", "saved_model"]
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(main, ["fit", str(p)])
    assert r.exit_code == 1, r.output
    run = Path(cfg["runs_root"]) / "diverge"
    err = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: training diverged at epoch ")
    assert "the NaN guard is off: callbacks.nan_guard.enabled; no model was exported" in err[0]
    assert "Traceback" not in r.output and "KERASOPT_DEBUG" not in err[0]
    rows = (run / "history.csv").read_text().lower()
    assert "nan" in rows or "inf" in rows  # it did diverge, and the history shows it
    assert not any((run / "model").iterdir()) and not (run / "metrics.json").exists()
    for folder in (run / "checkpoints").iterdir():  # whatever was kept holds finite weights only
        _finite_checkpoint(folder)
    assert f"last finite checkpoint is {run / 'checkpoints' / 'last'}" in err[0]


def test_check_finite_passes_a_healthy_run_and_names_the_first_bad_epoch():
    from kerasopt._keras import keras
    from kerasopt.errors import TrainingDiverged
    from kerasopt.training.loop import TrainingLoop

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    loop = TrainingLoop(model, [], {}, epochs=3, steps_per_epoch=1, stream=None, val_data=None, class_weight=None,
                        history_csv=None, checkpoints=Path("/nonexistent"), say=print)
    loop.epoch_logs = {0: {"loss": 1.0}, 1: {"loss": 0.5}, 2: {"loss": 0.4}}
    loop.check_finite(model)  # finite loss and weights: no error
    loop.epoch_logs[1]["loss"], loop.epoch_logs[2]["loss"] = float("inf"), float("nan")
    with pytest.raises(TrainingDiverged, match="at epoch 2; the NaN guard is off.*no checkpoint was kept"):
        loop.check_finite(model)
    loop.epoch_logs[1]["loss"] = loop.epoch_logs[2]["loss"] = 0.3
    model.layers[0].kernel.assign([[float("nan")], [1.0]])
    with pytest.raises(TrainingDiverged, match=r"\(non-finite weights\)"):
        loop.check_finite(model)
