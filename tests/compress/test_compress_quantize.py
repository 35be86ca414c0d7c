"""Quantization: QAT plus TFLite dynamic / float16 / int8, each run by the TFLite interpreter."""

from __future__ import annotations

import json

import pytest

from kerasopt.config import load_config
from kerasopt.config.compress_schema import QuantizeConfig


def test_int8_without_representative_data_says_what_to_add():
    with pytest.raises(ValueError, match="representative_samples"):
        QuantizeConfig(formats=["int8"], representative_samples=0)
    QuantizeConfig(formats=["dynamic"], representative_samples=0)  # fine without int8


@pytest.fixture(scope="module")
def mlp_nobn_run(tmp_path_factory):
    """QAT folds BatchNorm into convolutions but leaves Dense+BatchNorm float: this MLP has none."""
    from compress_runs import mlp_config

    import kerasopt

    root = tmp_path_factory.mktemp("nobn")
    cfg = mlp_config(root, **{"model.batch_norm": False})
    kerasopt.fit(cfg, run_dir=str(root / "run"), print_fn=lambda s: None)
    return cfg, root / "run"


def test_quantize_a_trained_run(mlp_nobn_run, tmp_path):
    from kerasopt.compress.pipeline import run_quantize

    cfg_path, run_dir = mlp_nobn_run
    cfg = load_config(cfg_path, {"quantize.qat.epochs": 1, "quantize.representative_samples": 200})
    out = tmp_path / "q"
    report = run_quantize(cfg, run_dir, out=out, say=lambda s: None)
    v = {x["name"]: x for x in report["variants"]}
    assert set(v) == {"float32 keras", "float32 tflite", "dynamic tflite", "float16 tflite", "qat int8 tflite"}
    f32 = v["float32 tflite"]
    assert f32["max_abs_diff"] < 1e-5 and f32["accuracy"] == v["float32 keras"]["accuracy"]
    # float16 halves the weights; int8 quarters them, plus the flatbuffer's fixed overhead and the
    # float BatchNorm/quantization parameters, which weigh a lot in a 6.6k-parameter model (44% measured)
    assert v["float16 tflite"]["raw_bytes"] < 0.6 * f32["raw_bytes"]
    assert v["qat int8 tflite"]["raw_bytes"] < 0.5 * f32["raw_bytes"]
    assert v["float16 tflite"]["accuracy"] == pytest.approx(f32["accuracy"], abs=0.003)
    for name in ("qat int8 tflite", "dynamic tflite"):
        assert v[name]["accuracy"] >= f32["accuracy"] - 0.03, name
        assert v[name]["argmax_agreement"] >= 0.95, name
    files = sorted(p.name for p in (out / "model").iterdir())
    assert files == ["digits_mlp.dynamic.tflite", "digits_mlp.float16.tflite", "digits_mlp.float32.tflite",
                     "digits_mlp.qat-int8.tflite"]
    assert json.loads((out / "compression.json").read_text())["kind"] == "quantize"


def test_post_training_int8_without_qat(mlp_run, tmp_path):
    from kerasopt.compress.pipeline import run_quantize

    cfg_path, run_dir, _ = mlp_run
    cfg = load_config(cfg_path, {"quantize.formats": ["int8"], "quantize.representative_samples": 128})
    report = run_quantize(cfg, run_dir, out=tmp_path / "ptq", say=lambda s: None)
    v = {x["name"]: x for x in report["variants"]}
    assert v["int8 tflite"]["accuracy"] >= v["float32 tflite"]["accuracy"] - 0.02
