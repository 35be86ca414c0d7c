"""``kerasopt export``: every format is written, loaded back and checked on a validation batch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kerasopt.errors import ConfigError


def test_export_every_cpu_format_and_check_it(mlp_run, tmp_path):
    from kerasopt.export.verify import export_run

    _, run_dir, _ = mlp_run
    lines = []
    out = export_run(run_dir, ["keras", "saved_model", "tflite", "onnx"], out=tmp_path / "x",
                     quantize=["int8"], say=lines.append)
    res = {r["format"]: r for r in out["results"]}
    for fmt in ("keras", "saved_model", "tflite", "onnx"):
        assert res[fmt]["max_abs_diff"] < 1e-4, fmt
        assert res[fmt]["argmax_agreement"] == 1.0, fmt
    assert res["tflite-int8"]["argmax_agreement"] >= 0.9
    names = sorted(p.name for p in (tmp_path / "x").iterdir())
    assert names == ["digits_mlp.int8.tflite", "digits_mlp.keras", "digits_mlp.onnx", "digits_mlp.tflite",
                     "saved_model"]
    assert lines[-1].startswith("exported and checked 5 format(s)")


def test_a_wrong_export_is_an_error(mlp_run, tmp_path, monkeypatch):
    from kerasopt.export import verify

    real = verify.runner
    monkeypatch.setattr(verify, "runner", lambda fmt, path: (lambda x: real(fmt, path)(x) + 0.01))
    with pytest.raises(verify.ExportMismatch, match="tflite predictions differ"):
        verify.export_run(mlp_run[1], ["tflite"], out=tmp_path, say=lambda s: None)


def test_model_file_needs_a_config(mlp_run):
    from kerasopt.export.verify import export_run

    model_file = mlp_run[1] / "model" / "digits_mlp.keras"
    with pytest.raises(ConfigError, match="needs the CONFIG"):
        export_run(model_file, ["onnx"])
    out = export_run(model_file, ["onnx"], config=mlp_run[0], out=model_file.parent / "o", say=lambda s: None)
    assert out["results"][0]["max_abs_diff"] < 1e-4


def test_tftrt_without_tensorrt_exits_2(mlp_run):
    r = subprocess.run([sys.executable, "-m", "kerasopt.cli", "export", str(mlp_run[1]), "--format", "tftrt"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "needs TensorRT: no GPU is visible" in r.stderr and "Traceback" not in r.stderr


def test_fit_exports_tflite_and_onnx(tmp_path):
    from compress_runs import mlp_config

    import kerasopt
    from kerasopt.compress.convert import onnx_runner, tflite_runner

    cfg = mlp_config(tmp_path, **{"train.epochs": 1, "export.formats": ["tflite", "onnx"]})
    result = kerasopt.fit(cfg, run_dir=str(tmp_path / "r"), print_fn=lambda s: None)
    x = np.random.default_rng(0).random((4, *result.model.inputs[0].shape[1:])).astype(np.float32)
    ref = result.model.predict_on_batch(x)
    model_dir = tmp_path / "r" / "model"
    assert np.abs(tflite_runner((model_dir / "digits_mlp.tflite").read_bytes())(x) - ref).max() < 1e-4
    assert np.abs(onnx_runner(model_dir / "digits_mlp.onnx")(x) - ref).max() < 1e-4
