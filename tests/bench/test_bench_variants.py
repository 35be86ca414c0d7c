"""``--variant`` parsing, planning (validation before any run), summary line and exit codes (no TensorFlow)."""

from pathlib import Path

import pytest

from kerasopt.bench.session import exit_code, plan, summary
from kerasopt.bench.variants import expand, label, parse_variant, split_values
from kerasopt.errors import ConfigError

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "digits_cnn.yaml"


def test_cartesian_product_first_option_slowest():
    got = expand(["precision=float32,mixed_bfloat16", "jit_compile=false,true"])
    assert got == [
        {"train.precision": "float32", "train.jit_compile": False},
        {"train.precision": "float32", "train.jit_compile": True},
        {"train.precision": "mixed_bfloat16", "train.jit_compile": False},
        {"train.precision": "mixed_bfloat16", "train.jit_compile": True},
    ]
    assert expand([]) == []
    assert len(expand(["batch_size=8,16,32", "xla=false,true", "cache=false,true"])) == 12


@pytest.mark.parametrize("option, key, values", [
    ("precision=float32", "train.precision", ["float32"]),
    ("batch_size=64, 128", "data.batch_size", [64, 128]),
    ("train.optimizer.learning_rate=1e-3,3e-3", "train.optimizer.learning_rate", [0.001, 0.003]),
    ("data.resize=[16,16],[32, 32]", "data.resize", [[16, 16], [32, 32]]),
    ("jit_compile=auto,false", "train.jit_compile", ["auto", False]),
    ("model.kwargs.depth=2,3", "model.kwargs.depth", [2, 3]),  # below a free-form mapping
])
def test_parse_variant_keys_and_yaml_values(option, key, values):
    assert parse_variant(option) == (key, values)


def test_split_values_respects_brackets():
    assert split_values("a,[1,2],{x: 1, y: 2}") == ["a", "[1,2]", "{x: 1, y: 2}"]


@pytest.mark.parametrize("option, match", [
    ("precison=float32", r"--variant precison: unknown config key 'precison'.*Did you mean 'precision'\?"),
    ("train.precisio=float32", r"unknown config key 'train.precisio'.*Did you mean 'train.precision'\?"),
    ("train.precision.x=1", r"unknown config key 'train.precision.x'"),
    ("precision", r"--variant needs key=value1,value2"),
    ("precision=float32,,float16", r"--variant precision: empty value"),
    ("precision=", r"empty value"),
])
def test_bad_variant_options_name_the_option(option, match):
    with pytest.raises(ConfigError, match=match):
        expand([option])


def test_same_key_twice_is_an_error():
    with pytest.raises(ConfigError, match="'train.precision' is given twice"):
        expand(["precision=float32", "train.precision=mixed_bfloat16"])


def test_labels_use_aliases():
    assert label({}) == "as given"
    assert label({"train.jit_compile": False, "data.batch_size": 64, "model.filters": [8, 16]}) == \
        "jit_compile=false batch_size=64 model.filters=[8,16]"


def test_plan_validates_values_before_anything_runs():
    with pytest.raises(ConfigError, match=r"^--variant precision=float64: train.precision"):
        plan(RECIPE, [], ["precision=float32,float64"])
    with pytest.raises(ConfigError, match=r"--variant batch_size=0: data.batch_size"):
        plan(RECIPE, [], ["batch_size=0"])


def test_plan_rows_and_same_as_given():
    rows = plan(RECIPE, ["data.batch_size=64"], ["batch_size=64,32", "jit_compile=auto"])
    assert [r["label"] for r in rows] == ["as given", "batch_size=64 jit_compile=auto",
                                          "batch_size=32 jit_compile=auto"]
    assert rows[0]["overrides"] == {"data.batch_size": 64}
    assert rows[1]["same_as"] == 0  # the recipe says jit_compile: auto and --set made the batch 64
    assert rows[2]["same_as"] is None
    assert rows[2]["overrides"] == {"data.batch_size": 32, "train.jit_compile": "auto"}


def ok(label_, rate):
    return {"label": label_, "ok": True, "stats": {"examples_per_sec": rate}}


def test_summary_and_exit_codes():
    results = [ok("as given", 100.0), ok("xla=true", 140.0), ok("xla=false", 90.0)]
    assert summary(results)["line"] == "fastest: xla=true at 140 examples/s, 1.40x the config as given"
    assert summary(results)["fastest"] == "xla=true"
    assert exit_code(results) == 0
    bad_input = {"label": "precision=mixed_float16", "ok": False, "bad_input": True, "error": "needs a GPU"}
    crashed = {"label": "x", "ok": False, "bad_input": False, "error": "MemoryError"}
    assert exit_code(results + [bad_input]) == 2
    assert exit_code(results + [bad_input, crashed]) == 1
    assert summary(results + [bad_input])["line"].endswith("; 1 of 4 failed")
    assert summary([bad_input])["line"] == "no variant could be measured; 1 of 1 failed"
