"""The fit pipeline end to end from Python, one small run per head, and the digits demo."""

import json
from pathlib import Path

import numpy as np
import pytest
from training_runs import tabular_config

import kerasopt
from kerasopt.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp_path, **sections):
    return tabular_config(tmp_path, **sections)


def test_python_api_returns_model_history_and_run_dir(tmp_path):
    result = kerasopt.fit(_cfg(tmp_path), overrides={"train.epochs": 3})
    assert result.run_dir.path == tmp_path / "runs" / "e2e"
    assert len(result.history["loss"]) == 3 and result.history["loss"][-1] < result.history["loss"][0]
    assert "val_accuracy" in repr(result)
    from kerasopt._keras import keras

    reloaded = keras.models.load_model(result.run_dir.path / "model" / "e2e.keras")
    x = np.random.default_rng(0).normal(size=(5, 13)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    "data, train, key, check",
    [
        ({"name": "breast_cancer"}, {}, "val_accuracy", lambda v: v > 0.85),  # binary head
        # regression head: beat the mean predictor (val MAE 65.8 on these targets)
        ({"name": "diabetes"}, {"epochs": 40, "optimizer": {"type": "adam", "learning_rate": 0.05}}, "val_mae",
         lambda v: v < 60),
        ({"name": "wine"}, {"label_smoothing": 0.1}, "val_accuracy", lambda v: v > 0.8),  # one-hot path
        ({"name": "wine"}, {"grad_accum_steps": 2, "class_weight": "balanced"}, "val_accuracy",
         lambda v: v > 0.8),
        ({"name": "wine"}, {"optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                                          "global_clipnorm": 1.0},
                            "schedule": {"type": "cosine", "warmup_epochs": 1}}, "val_accuracy",
         lambda v: v > 0.8),
    ],
)
def test_heads_and_training_options(tmp_path, data, train, key, check):
    cfg = _cfg(tmp_path, data=data, train={"epochs": 5, **train})
    result = kerasopt.fit(cfg)
    assert check(result.metrics["final"][key]), result.metrics["final"]


def test_early_stopping_records_the_stop(tmp_path):
    cfg = _cfg(tmp_path, train={"epochs": 30, "optimizer": {"type": "sgd", "learning_rate": 1e-6}},
               callbacks={"early_stopping": {"enabled": True, "patience": 1, "min_delta": 0.5}})
    result = kerasopt.fit(cfg)
    assert result.metrics["epochs_run"] == 2 and result.metrics["early_stopped_at_epoch"] == 2


def test_digits_demo_reaches_97_percent(tmp_path):
    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml")
    result = kerasopt.fit(cfg, run_dir=str(tmp_path / "digits"))
    best = result.metrics["best"]["val_accuracy"]["value"]
    final = result.metrics["final"]["val_accuracy"]
    assert final >= 0.97, result.metrics["final"]
    assert best >= final
    saved = json.loads((tmp_path / "digits" / "metrics.json").read_text())
    assert saved["final"]["val_accuracy"] == pytest.approx(final)


def test_ema_recipe_logs_raw_and_ema_metrics_and_exports_ema(tmp_path):
    cfg = _cfg(tmp_path, train={"epochs": 4},
               callbacks={"ema": {"enabled": True, "decay": 0.9}, "checkpoint": {"monitor": "val_accuracy"}})
    result = kerasopt.fit(cfg, print_fn=lambda s: None)
    h = result.history
    assert {"val_accuracy", "val_raw_accuracy", "val_raw_loss", "lr", "examples_per_sec"} <= set(h)
    # the exported (and returned) model carries the EMA weights: its evaluation is the EMA's val metrics
    ev = kerasopt.evaluate(result.run_dir.path)
    assert ev["accuracy"] == pytest.approx(h["val_accuracy"][-1], abs=1e-6)
    assert ev["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)


def test_every_shipped_recipe_builds(tmp_path):
    """Each configs/*.yaml trains for one short epoch (shape, names and keys all fit together)."""
    for path in sorted((ROOT / "configs").glob("*.yaml")):  # digits_cnn trains before digits_distill needs it
        overrides = {"train.epochs": 1, "train.steps_per_epoch": 2, "data.max_examples": 300,
                     "callbacks.tensorboard.enabled": False, "export.formats": ["keras"],
                     "callbacks.early_stopping.enabled": False, "train.schedule.warmup_epochs": 0,
                     # precision/XLA auto would measure candidates per recipe (test_calibrate tests that),
                     # and the report's plots take ~4 s a run (tests/reporting tests them)
                     "train.verbose": 0, "train.precision": "float32", "train.jit_compile": False,
                     "report": False}
        raw = path.read_text()
        if "\nprune:" in raw:
            overrides["prune.epochs"] = 1
        if "\ndistill:" in raw:
            overrides["distill.teacher"] = str(tmp_path / "digits_cnn")
        if "init_from:" in raw:  # fine-tuning: from the demo's run, one epoch in each phase
            overrides.update({"model.init_from": str(tmp_path / "digits_cnn"), "train.epochs": 2})
        cfg = load_config(path, overrides)
        result = kerasopt.fit(cfg, run_dir=str(tmp_path / path.stem), print_fn=lambda s: None)
        assert result.metrics["epochs_run"] == overrides["train.epochs"], path.name
        if "prune.epochs" in overrides:  # the prune: section ran after training
            pruned = result.extras["prune"]
            assert (tmp_path / path.stem / "pruned" / "compression.json").is_file()
            assert pruned["pruned_layers"] and "block1a_conv" not in pruned["pruned_layers"]


def test_seed_zero_trains(tmp_path):
    """TF reads the seed pair (0, 0) as "unseeded"; seed 0 used to crash the per-epoch shuffle."""
    cfg = {"name": "s0", "seed": 0, "data": {"source": "sklearn", "name": "iris"},
           "model": {"type": "mlp", "hidden_units": [8]}, "train": {"epochs": 2, "verbose": 0},
           "callbacks": {"tensorboard": {"enabled": False}}, "export": {"formats": ["keras"]}, "report": False}
    a = kerasopt.fit(cfg, run_dir=str(tmp_path / "a"), print_fn=lambda s: None)
    b = kerasopt.fit(cfg, run_dir=str(tmp_path / "b"), print_fn=lambda s: None)
    assert a.history["loss"] == b.history["loss"]  # seeded: the same run twice
