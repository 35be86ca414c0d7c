"""``kerasopt bench``: a real run of two tiny variants (subprocesses), bad input, and the runner's modes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kerasopt.cli import main

KERASOPT = str(Path(sys.executable).with_name("kerasopt"))
TINY = {
    "name": "tiny",
    "data": {"source": "sklearn", "name": "iris", "batch_size": 16, "normalize": "standard"},
    "model": {"type": "mlp", "hidden_units": [8]},
    "train": {"epochs": 1, "jit_compile": False, "verbose": 0},
}


@pytest.fixture()
def cfg_path(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def test_bench_runs_two_variants_and_writes_json(cfg_path, tmp_path):
    out = tmp_path / "res" / "bench.json"
    proc = subprocess.run([KERASOPT, "bench", str(cfg_path), "--variant", "batch_size=16,8", "--steps", "6",
                           "--warmup", "2", "--json", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fastest:" in proc.stdout and f"wrote {out}" in proc.stdout
    assert "[3/3] batch_size=8:" in proc.stdout  # progress, one line per row
    doc = json.loads(out.read_text())
    assert doc["mode"] == "train" and doc["steps"] == 6 and doc["warmup"] == 2
    rows = doc["results"]
    assert [r["label"] for r in rows] == ["as given", "batch_size=16", "batch_size=8"]
    assert "not run again" in rows[1]["note"]  # batch 16 is the config as given
    for r, batch in zip(rows, (16, 16, 8)):
        s = r["stats"]
        assert r["ok"] and r["batch_size"] == batch
        assert (s["steps"], s["examples"], s["warmup_steps"]) == (6, 6 * batch, 2)
        assert s["examples_per_sec"] == pytest.approx(s["examples"] / s["seconds"])
        assert s["p25_ms"] <= s["median_ms"] <= s["p75_ms"]
        # KERASOPT_AUTOTUNE=0 (conftest): the static CPU rule, float32 with or without bfloat16
        assert r["precision"] == "float32" and r["jit_compile"] is False
        assert r["peak_rss_mb"] > 100  # TensorFlow alone takes more
        assert r["device_peak_mb"] is None  # no GPU
    assert rows[2]["vs_as_given"] == pytest.approx(rows[2]["stats"]["examples_per_sec"]
                                                   / rows[0]["stats"]["examples_per_sec"])
    assert doc["summary"]["measured"] == 3 and doc["summary"]["failed"] == 0


@pytest.mark.parametrize("variant, needle", [
    ("precison=float32", "--variant precison: unknown config key 'precison'"),
    ("precision=float32,float64", "--variant precision=float64: train.precision"),
    ("batch_size", "--variant needs key=value1,value2"),
])
def test_bad_variant_exits_2_with_one_line_and_writes_nothing(cfg_path, tmp_path, variant, needle):
    out = tmp_path / "b.json"
    res = CliRunner().invoke(main, ["bench", str(cfg_path), "--variant", variant, "--json", str(out)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], res.output
    assert not out.exists()


def test_bench_missing_config_exits_2(tmp_path):
    res = CliRunner().invoke(main, ["bench", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "config file not found" in res.output


def test_pipeline_mode_counts_partial_batches(cfg_path):
    from kerasopt.bench.runner import measure_pipeline
    from kerasopt.config import load_config

    # iris: 120 training examples, batch 16 -> 7 full batches and one of 8 per epoch.
    ticks = iter(range(1000))
    r = measure_pipeline(load_config(cfg_path), steps=8, warmup=2, clock=lambda: float(next(ticks)))
    s = r["stats"]
    # batches 3..10 of the stream: 5 x 16 and the 8 of epoch 1, then 2 x 16 of epoch 2
    assert (s["steps"], s["examples"], s["warmup_steps"]) == (8, 120, 2)
    assert s["seconds"] == 8.0 and s["examples_per_sec"] == 15.0  # one fake second per batch


def test_synthetic_mode_repeats_one_full_batch(cfg_path):
    from kerasopt.bench.runner import run

    r = run({"config": str(cfg_path), "overrides": {"data.batch_size": 200}, "mode": "synthetic", "steps": 4,
             "warmup": 1})
    s = r["stats"]
    # 120 training examples < one batch of 200: the batch is filled by repeating them
    assert (s["steps"], s["examples"]) == (4, 800)
    # Dense 4x8 without bias (BatchNorm follows), BatchNorm 4 x 8, head 8x3 + 3
    assert r["mode"] == "synthetic" and r["parameters"] == 4 * 8 + 4 * 8 + 8 * 3 + 3
