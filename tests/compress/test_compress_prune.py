"""Pruning: schedule arithmetic, layer choice and errors, and a real prune of a trained model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from compress_runs import mlp_config

from kerasopt._keras import keras
from kerasopt.compress.prune import PruneSteps, plan_layers
from kerasopt.config import load_config
from kerasopt.config.compress_schema import PruneConfig
from kerasopt.errors import ConfigError


def test_prune_steps_from_epochs():
    # polynomial default: ends at 70% of 6 epochs = 4.2 epochs = 50.4 -> 50 steps; 4 mask updates an epoch
    assert PruneSteps.from_config(PruneConfig(), 12) == PruneSteps(0, 50, 3)
    p = PruneConfig(begin_epoch=1, end_epoch=3, epochs=4, frequency=5)
    assert PruneSteps.from_config(p, 10) == PruneSteps(10, 30, 5)


def test_prune_schema_rejects_inconsistent_values():
    with pytest.raises(ValueError, match="initial_sparsity"):
        PruneConfig(initial_sparsity=0.9, target_sparsity=0.8)
    with pytest.raises(ValueError, match="end_epoch"):
        PruneConfig(end_epoch=8, epochs=6)
    with pytest.raises(ValueError, match="2:4"):
        PruneConfig(structured="2:4", target_sparsity=0.8)
    with pytest.raises(ValueError, match="does not apply"):
        PruneConfig(schedule="constant_sparsity", initial_sparsity=0.2)


class _Scale(keras.layers.Layer):
    """A custom layer with a weight TF-MOT knows nothing about."""

    def build(self, shape):
        self.w = self.add_weight(name="w", shape=(shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.w


def _model_with_custom_layer():
    inp = keras.Input((8,))
    x = keras.layers.Dense(8, name="first")(inp)
    x = _Scale(name="scale")(x)
    return keras.Model(inp, keras.layers.Dense(3, name="head")(x))


def test_unprunable_layer_is_named_with_the_fix():
    model = _model_with_custom_layer()
    with pytest.raises(ConfigError) as e:
        plan_layers(model, PruneConfig())
    assert "'scale'" in str(e.value) and "exclude: [scale]" in str(e.value)
    assert e.value.key == "prune.exclude"
    assert plan_layers(model, PruneConfig(exclude=["scale"])) == (["first", "head"], ["scale"])


def test_exclude_pattern_that_matches_nothing_suggests_a_name():
    with pytest.raises(ConfigError, match="'haed' matches no layer.*Did you mean 'head'"):
        plan_layers(_model_with_custom_layer(), PruneConfig(exclude=["haed", "scale"]))
    # shell patterns work
    assert plan_layers(_model_with_custom_layer(), PruneConfig(exclude=["sc*", "h?ad"]))[0] == ["first"]


def test_prune_a_trained_run_to_80_percent(mlp_run, tmp_path):
    from kerasopt.compress.pipeline import run_prune

    cfg_path, run_dir, fit_result = mlp_run
    dense_acc = fit_result.metrics["final"]["val_accuracy"]
    cfg = load_config(cfg_path, {"prune.target_sparsity": 0.8, "prune.epochs": 4, "prune.exclude": ["head"],
                                 "prune.learning_rate": 0.001})
    out = tmp_path / "pruned"
    report = run_prune(cfg, run_dir, out=out, say=lambda s: None)
    rows = {r["layer"]: r for r in report["layers"]}
    # the pruned kernels hold exactly the target share of zeros; the excluded head is untouched
    for name in ("block1_dense", "block2_dense"):
        assert rows[name]["sparsity"] == pytest.approx(0.8, abs=0.005), name
    assert rows["head"]["sparsity"] == 0.0
    assert report["pruned_layers"] == ["block1_dense", "block2_dense"]
    v = {x["name"]: x for x in report["variants"]}
    assert v["dense keras"]["accuracy"] == pytest.approx(dense_acc, abs=1e-4)  # measured (rounded to 4 places)
    assert v["pruned keras"]["accuracy"] >= dense_acc - 0.04
    # the pruned file is as large raw, much smaller gzipped (the zeros compress)
    assert v["pruned keras"]["gzip_bytes"] < 0.6 * v["dense keras"]["gzip_bytes"]
    assert v["pruned tflite"]["accuracy"] == pytest.approx(v["pruned keras"]["accuracy"], abs=0.003)
    # written: the stripped model (no pruning wrappers), the report, and a config that makes it a run dir
    saved = json.loads((out / "compression.json").read_text())
    assert saved["totals"] == report["totals"]
    model = keras.models.load_model(out / "model" / "digits_mlp_pruned.keras", compile=False)
    assert not any("prune" in type(layer).__name__.lower() for layer in model.layers)
    k = model.get_layer("block1_dense").get_weights()[0]
    assert np.mean(k == 0) == pytest.approx(0.8, abs=0.005)
    assert (out / "config.yaml").is_file() and (out / "history.csv").is_file()
    assert not list(tmp_path.glob(".tmp-*"))


def test_structured_2_by_4(mlp_run, tmp_path):
    from kerasopt.compress.pipeline import run_prune

    cfg_path, run_dir, _ = mlp_run
    cfg = load_config(cfg_path, {"prune.structured": "2:4", "prune.epochs": 1, "prune.exclude": ["head"]})
    report = run_prune(cfg, run_dir, out=tmp_path / "p24", say=lambda s: None)
    model = keras.models.load_model(tmp_path / "p24" / "model" / "digits_mlp_pruned.keras", compile=False)
    kernel = model.get_layer("block2_dense").get_weights()[0]  # (64 in, 32 out)
    groups = (kernel.T.reshape(kernel.shape[1], -1, 4) == 0).sum(-1)  # 4 consecutive inputs per output unit
    assert groups.min() >= 2
    assert {r["layer"]: r["sparsity"] for r in report["layers"]}["block2_dense"] == pytest.approx(0.5, abs=0.01)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kerasopt.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_cli_prune_bad_input_exits_2_and_keeps_files(mlp_run, tmp_path):
    cfg_path, run_dir, _ = mlp_run
    # a run directory without an exported model
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.yaml").write_text(cfg_path.read_text())
    r = _cli("prune", str(cfg_path), "--from", str(empty))
    assert r.returncode == 2 and "without an exported model" in r.stderr and "Traceback" not in r.stderr
    # an existing output folder is not replaced without --overwrite
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = _cli("prune", str(cfg_path), "--from", str(run_dir), "--out", str(out))
    assert r.returncode == 2 and "--overwrite" in r.stderr
    assert (out / "keep.txt").read_text() == "mine"
    # an exclusion that names no layer fails before any fine-tuning, naming the key
    bad = mlp_config(tmp_path, **{"prune.exclude": ["hed"]})
    r = _cli("prune", str(bad), "--from", str(run_dir), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "prune.exclude" in r.stderr and "Did you mean 'head'" in r.stderr
    assert not (tmp_path / "x").exists()
