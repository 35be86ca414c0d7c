"""precision/jit_compile auto on a CPU: measured on the real model, cached, and off where it must be."""

import json

import numpy as np
import pytest

import kerasopt
from kerasopt.config import load_config
from kerasopt.data.spec import DataSpec
from kerasopt.training import calibrate as cal
from kerasopt.training.precision import DeviceInfo, decide_precision
from kerasopt.usercache import digest

CPU = DeviceInfo(0, None, None, frozenset({"avx2", "fma"}))
CPU_BF16 = DeviceInfo(0, None, None, frozenset({"avx512f", "avx512_bf16"}))
A100 = DeviceInfo(1, (8, 0), "A100", frozenset())
SPEC = DataSpec(input_shape=(64,), task="classification", num_classes=10, num_train=256, num_val=64)


@pytest.fixture(autouse=True)
def _autotune_on(monkeypatch, tmp_path):
    """Calibration on (the suite turns it off) and a cache folder of this test's own."""
    monkeypatch.setenv("KERASOPT_AUTOTUNE", "1")
    monkeypatch.setenv("KERASOPT_CACHE_DIR", str(tmp_path / "cache"))


def _cfg(precision="auto", jit="auto", model=None, batch=32, **train):
    return load_config({
        "name": "cal", "data": {"source": "sklearn", "name": "digits", "batch_size": batch},
        "model": model or {"type": "mlp", "hidden_units": [16]},
        "train": {"epochs": 1, "precision": precision, "jit_compile": jit, "verbose": 0, **train},
    })


def _static(cfg, device):
    return decide_precision(cfg.train.precision, cfg.train.jit_compile, device, cfg.model.type)


class FakeCPU:
    """A fake clock, and candidates whose steps take ``batch / figure`` seconds of it.

    Preparing a candidate takes ``compile_s`` (``xla_compile_s`` with XLA); a figure that is an
    exception is raised by ``prepare``. ``calls`` lists the candidates prepared.
    """

    def __init__(self, figures, compile_s=1.0, xla_compile_s=1.0):
        self.figures, self.compile_s, self.xla_compile_s = figures, compile_s, xla_compile_s
        self.now, self.calls = 0.0, []

    def clock(self):
        return self.now

    def prepare(self, cfg, spec, cand):
        self.calls.append(cand.label)
        self.now += self.xla_compile_s if cand.jit else self.compile_s
        figure = self.figures[cand.label]
        if isinstance(figure, Exception):
            raise figure
        seconds = cal.calibration_batch(cfg, spec) / figure

        def step():
            self.now += seconds

        return step

    def resolve(self, cfg, device=CPU_BF16, say=lambda msg: None, **kw):
        return cal.resolve_decision(cfg, SPEC, device, _static(cfg, device), say, prepare=self.prepare,
                                    clock=self.clock, **kw)


@pytest.mark.parametrize("precision, jit, model, device, expected", [
    ("auto", "auto", "mlp", CPU_BF16, ["float32", "mixed_bfloat16", "float32+XLA", "mixed_bfloat16+XLA"]),
    ("auto", "auto", "cnn", CPU, ["float32", "float32+XLA"]),  # no bf16 instructions: emulated bf16 not tried
    ("float32", "auto", "cnn", CPU_BF16, ["float32", "float32+XLA"]),
    ("auto", False, "cnn", CPU_BF16, ["float32", "mixed_bfloat16"]),
    ("auto", True, "cnn", CPU_BF16, ["float32+XLA", "mixed_bfloat16+XLA"]),
    ("auto", "auto", "lstm", CPU_BF16, ["float32", "mixed_bfloat16"]),  # recurrent: never XLA on auto
    ("mixed_bfloat16", "auto", "lstm", CPU_BF16, ["mixed_bfloat16"]),
])
def test_candidates_follow_the_config(precision, jit, model, device, expected):
    cfg = _cfg(precision, jit, model={"type": model})
    assert [c.label for c in cal.candidates(cfg, device)] == expected


def test_the_fastest_candidate_wins_and_a_failing_one_is_reported():
    cfg = _cfg()
    fake = FakeCPU({"float32": 173.0, "float32+XLA": 180.4, "mixed_bfloat16": 37.0,
                    "mixed_bfloat16+XLA": RuntimeError("XLA: no bf16 kernel\nmore detail")})
    said = []
    d = fake.resolve(cfg, say=said.append)
    assert (d.policy, d.jit_compile) == ("float32", True)
    assert d.measured == pytest.approx({"float32": 173.0, "float32+XLA": 180.4, "mixed_bfloat16": 37.0})
    assert d.reason.startswith("measured: float32 173 ex/s, mixed_bfloat16 37 ex/s, float32+XLA 180 ex/s "
                               "-> float32+XLA")
    assert "mixed_bfloat16+XLA failed (RuntimeError: XLA: no bf16 kernel)" in d.reason
    assert said == ["calibrating precision/XLA on this CPU (<= 30 s, cached for next runs) ..."]
    assert d.as_dict()["measured"] == d.measured


def test_nothing_measured_in_the_budget_falls_back_to_the_static_rule():
    cfg = _cfg(jit=False)
    d = FakeCPU({}).resolve(cfg, budget_s=0)
    assert d.policy == "float32" and d.measured is None  # the static rule: float32 on a CPU
    assert "calibration failed (nothing measured)" in d.reason


def test_a_candidate_that_would_overrun_the_budget_is_not_started():
    # XLA compilation takes 20 s: after float32+XLA only ~8 s of the 30 are left, too few for a second one
    fake = FakeCPU({"float32": 50.0, "mixed_bfloat16": 60.0, "float32+XLA": 100.0, "mixed_bfloat16+XLA": 200.0},
                   xla_compile_s=20.0)
    d = fake.resolve(_cfg())
    assert list(d.measured) == ["float32", "mixed_bfloat16", "float32+XLA"]
    assert d.reason.endswith("-> float32+XLA; mixed_bfloat16+XLA not measured (time budget)")


def test_cache_is_written_and_read_without_measuring(tmp_path):
    cfg = _cfg(jit=False)
    fake = FakeCPU({"float32": 173.0, "mixed_bfloat16": 37.0})
    first = fake.resolve(cfg)
    assert fake.calls == ["float32", "mixed_bfloat16"]
    files = list((tmp_path / "cache" / "calibration").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["choice"] == "float32"
    said = []
    second = fake.resolve(cfg, say=said.append)
    assert len(fake.calls) == 2 and said == []  # no measurement, no progress line
    assert second.reason == "measured (cached): float32 173 ex/s, mixed_bfloat16 37 ex/s -> float32"
    assert (second.policy, second.measured) == (first.policy, first.measured)


def test_a_changed_batch_model_or_tensorflow_is_a_cache_miss():
    cands = cal.candidates(_cfg(), CPU_BF16)

    def key(cfg, tf_version="2.21.0"):
        return digest(cal.calibration_key(cfg, SPEC, CPU_BF16, cands, tf_version=tf_version))

    base = key(_cfg())
    assert key(_cfg()) == base
    assert key(_cfg(batch=64)) != base
    assert key(_cfg(model={"type": "mlp", "hidden_units": [32]})) != base
    assert key(_cfg(), tf_version="2.22.0") != base
    # ...and a miss measures again
    fake = FakeCPU({c.label: 10.0 for c in cands})
    for cfg in (_cfg(), _cfg(), _cfg(batch=64)):
        fake.resolve(cfg)
    assert len(fake.calls) == 2 * len(cands)


@pytest.mark.parametrize("cfg, env, why", [
    (_cfg(autotune=False), "1", "train.autotune is false"),
    (_cfg(), "0", "KERASOPT_AUTOTUNE=0"),
])
def test_autotune_off_keeps_the_static_rule(monkeypatch, cfg, env, why):
    monkeypatch.setenv("KERASOPT_AUTOTUNE", env)
    fake = FakeCPU({})
    d = fake.resolve(cfg)
    assert fake.calls == [] and d.measured is None
    assert (d.policy, d.jit_compile) == ("float32", True)  # the static rule: float32 on a CPU, mlp gets XLA
    assert d.reason.endswith(f"static rule, not measured: {why}")


def test_distributed_training_and_gpus_keep_the_rules():
    cfg = _cfg()
    fake = FakeCPU({})

    class Horovod:  # what fit's StrategyChoice says under horovodrun -np 2
        name, replicas, hvd = "horovod", 2, object()

    d = fake.resolve(cfg, choice=Horovod())
    assert "every rank must run the same precision" in d.reason and d.measured is None
    static = _static(cfg, A100)
    assert cal.resolve_decision(cfg, SPEC, A100, static, prepare=fake.prepare, clock=fake.clock) is static
    assert static.policy == "mixed_bfloat16" and static.jit_compile and fake.calls == []


def test_real_calibration_of_a_tiny_mlp_then_the_same_initial_weights():
    from kerasopt.models import build_model
    from kerasopt.training.seeding import set_seed

    cfg = _cfg(jit=False, batch=64)
    set_seed(cfg.seed)
    before = [w.copy() for w in build_model(cfg, SPEC).get_weights()]
    set_seed(cfg.seed)
    d = cal.resolve_decision(cfg, SPEC, CPU_BF16, _static(cfg, CPU_BF16), budget_s=20)
    assert set(d.measured) == {"float32", "mixed_bfloat16"} and all(v > 0 for v in d.measured.values())
    assert d.policy == max(d.measured, key=d.measured.get) and d.jit_compile is False
    # calibration leaves the float32 policy and re-seeds: the real model starts as an uncalibrated run's
    from kerasopt._keras import keras

    assert keras.mixed_precision.global_policy().name == "float32"
    after = build_model(cfg, SPEC)
    for a, b in zip(before, after.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_records_the_figures_and_the_second_fit_reads_the_cache(tmp_path):
    cfg = {
        "name": "cal_fit", "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "wine", "batch_size": 32, "normalize": "standard"},
        "model": {"type": "mlp", "hidden_units": [8]},
        "train": {"epochs": 1, "precision": "float32", "verbose": 0},  # candidates: XLA off and on
        "callbacks": {"tensorboard": {"enabled": False}}, "export": {"formats": ["keras"]}, "report": False,
    }
    lines = []
    result = kerasopt.fit(cfg, print_fn=lines.append)
    precision = json.loads(result.run_dir.metrics.read_text())["precision"]
    assert set(precision["measured"]) == {"float32", "float32+XLA"}
    assert all(v > 0 for v in precision["measured"].values())
    assert precision["reason"].startswith("measured: float32 ")
    assert any(ln.startswith("calibrating precision/XLA") for ln in lines)
    device_line = next(ln for ln in lines if ln.startswith("device:"))
    assert "measured: float32 " in device_line and "ex/s" in device_line
    lines.clear()
    again = kerasopt.fit(cfg, overwrite=True, print_fn=lines.append)
    assert not any(ln.startswith("calibrating") for ln in lines)
    assert again.metrics["precision"]["reason"].startswith("measured (cached): ")
    assert again.metrics["precision"]["measured"] == precision["measured"]
