"""The tune: section and its space: strict schema, checks before any trial, Keras Tuner hyperparameters."""

import subprocess
import sys

import pytest
from tune_common import RECIPE, ROOT

from kerasopt.config import load_config
from kerasopt.config.tune_schema import ParamSpec
from kerasopt.errors import ConfigError
from kerasopt.tune.space import build_hyperparameters, check_space, decode, encode, hyperband_budgets, trial_config

BASE = {"data": {"source": "sklearn", "name": "digits"}}
LR_KEY = "train.optimizer.learning_rate"


def _tune(**tune):
    return {**BASE, "tune": {"space": {LR_KEY: {"type": "float", "min": 1e-4, "max": 1e-2}}, **tune}}


@pytest.mark.parametrize(
    "cfg, key, fragment",
    [
        (_tune(space={"train.optimizer.lerning_rate": {"type": "float", "min": 1, "max": 2}}),
         "tune.space.train.optimizer.lerning_rate", "Did you mean 'train.optimizer.learning_rate'?"),
        (_tune(space={"modle.filters": {"type": "bool"}}), "tune.space.modle.filters", "Did you mean 'model.filters'?"),
        (_tune(space={"data.batch_size.x": {"type": "bool"}}), "tune.space.data.batch_size.x", "is a value"),
        (_tune(space={LR_KEY: {"type": "float", "min": 1e-2, "max": 1e-4}}), f"tune.space.{LR_KEY}",
         "min must be <= max. Received: min=0.01, max=0.0001"),
        (_tune(space={LR_KEY: {"type": "float", "min": 0.0, "max": 1e-2, "sampling": "log"}}), f"tune.space.{LR_KEY}",
         "log sampling needs min > 0. Received: min=0"),
        (_tune(space={"model.filters": {"type": "choice"}}), "tune.space.model.filters", "needs a non-empty list"),
        (_tune(space={"model.filters": {"type": "choice", "values": [[8], [8]]}}), "tune.space.model.filters",
         "must not repeat"),
        (_tune(space={"model.dense_units": {"type": "int", "min": 8.5, "max": 64}}), "tune.space.model.dense_units",
         "whole min"),
        (_tune(space={"model.dropout": {"type": "float", "min": 0, "max": 0.5, "values": [1]}}),
         "tune.space.model.dropout.values", "used by: choice"),
        (_tune(space={"model.depth": {"type": "choice", "values": [18], "when": {"model.type": "resnet"}}}),
         "tune.space.model.depth.when.model.type", "must be a choice or bool key of tune.space"),
        (_tune(space={"model.type": {"type": "choice", "values": ["cnn", "mlp"]},
                      "model.depth": {"type": "choice", "values": [18], "when": {"model.type": "resnet"}}}),
         "tune.space.model.depth.when.model.type", "not among the values"),
        (_tune(algorithm="grid"), f"tune.space.{LR_KEY}", "grid search needs a step"),
        (_tune(algorithm="random", factor=2), "tune.factor", "used by: hyperband"),
        (_tune(algorithm="hyperband", space={"train.epochs": {"type": "int", "min": 1, "max": 9}}),
         "tune.space.train.epochs", "hyperband sets the epochs"),
        (_tune(space={"tune.max_trials": {"type": "int", "min": 1, "max": 9}}), "tune.space.tune.max_trials",
         "cannot be searched"),
        (_tune(space={}), "tune.space", "at least one key"),
        (_tune(algoritm="random"), "tune.algoritm", "Did you mean 'algorithm'?"),
    ],
)
def test_invalid_spaces_name_the_key(cfg, key, fragment):
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert exc.value.key == key, str(exc.value)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "space, fragment",
    [
        ({"model.dropout": {"type": "float", "min": 0.0, "max": 1.5}}, "model.dropout=1.5 fails the config check"),
        ({"model.filters": {"type": "choice", "values": [[8, 16], "wide"]}}, "model.filters='wide'"),
        ({"data.batch_size": {"type": "int", "min": 0, "max": 64}}, "data.batch_size=0"),
        # a key the chosen model type ignores must be conditioned on it
        ({"model.type": {"type": "choice", "values": ["cnn", "mlp"]}, "model.filters": {"type": "choice",
          "values": [[8, 16]]}}, "give it a `when:` condition"),
    ],
)
def test_values_are_checked_against_the_config_before_any_trial(space, fragment):
    cfg = load_config(RECIPE, {"tune.space": space})
    with pytest.raises(ConfigError, match="tune.space") as exc:
        check_space(cfg)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_hyperband_budgets_must_fit_the_warmup():
    assert hyperband_budgets(9, 3) == [1, 3, 9] and hyperband_budgets(10, 3) == [2, 4, 10]
    assert hyperband_budgets(3, 3) == [1, 3]
    cfg = load_config(RECIPE, {"tune.algorithm": "hyperband", "tune.max_epochs": 3})  # warm-up is 1 epoch
    with pytest.raises(ConfigError, match="tune.max_epochs: hyperband trains some trials for 1 epoch"):
        check_space(cfg)
    check_space(load_config(RECIPE, {"tune.algorithm": "hyperband", "tune.max_epochs": 3,
                                     "train.schedule.warmup_epochs": 0}))


def test_shipped_recipe_space_is_valid():
    cfg = load_config(RECIPE)
    check_space(cfg)
    assert cfg.tune.objective.direction == "max" and cfg.train.optimizer.learning_rate == pytest.approx(3e-5)


def test_choices_that_are_not_scalars_travel_as_json():
    spec = ParamSpec(type="choice", values=[[8, 16], [16, 32], None])
    assert encode(spec, [16, 32]) == "[16, 32]" and decode(spec, "null") is None
    native = ParamSpec(type="choice", values=[32, 64])
    assert encode(native, 64) == 64 and decode(native, 64) == 64
    assert decode(ParamSpec(type="int", min=1, max=4), 3.0) == 3


def test_trial_config_drops_base_keys_a_new_model_type_ignores():
    base = load_config(RECIPE)  # a cnn with filters [16, 32, 64] and bn_momentum 0.9
    cfg = trial_config(base, {"model.type": "mlp", "model.hidden_units": [32]}, {"train.epochs": 2})
    assert cfg.model.type == "mlp" and cfg.model.hidden_units == [32] and cfg.train.epochs == 2
    assert cfg.tune is None and "filters" not in cfg.model.model_dump()  # an mlp has no cnn keys
    assert cfg.model.bn_momentum == 0.9 and cfg.data.resize == [32, 32]  # everything else from the base


def test_conditional_keys_are_declared_up_front_and_active_only_under_their_parent():
    import keras_tuner as kt

    from kerasopt.tune.space import decode_values

    cfg = load_config(RECIPE, {"tune.space": {
        "model.type": {"type": "choice", "values": ["cnn", "mlp"]},
        "model.filters": {"type": "choice", "values": [[8, 16], [16, 32]], "when": {"model.type": "cnn"}},
        "model.hidden_units": {"type": "choice", "values": [[32], [64, 32]], "when": {"model.type": "mlp"}},
        LR_KEY: {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
    }})
    check_space(cfg)
    hp = build_hyperparameters(cfg.tune, cfg)
    assert {p.name for p in hp.space} == set(cfg.tune.space)
    assert hp.get(LR_KEY) == pytest.approx(1e-4)  # the base's 3e-5 is outside the range: the minimum
    assert hp.space[0].name == "model.type" and hp.space[0].default == "cnn"  # the base's value
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=12,
                                           hyperparameters=hp, seed=3)
    seen = set()
    for i in range(12):
        values = decode_values(cfg.tune, oracle.populate_space(str(i))["values"])
        kind = values["model.type"]
        seen.add(kind)
        assert ("model.filters" in values) == (kind == "cnn") and ("model.hidden_units" in values) == (kind == "mlp")
        trial = trial_config(cfg, values)
        assert trial.model.type == kind and 1e-4 <= trial.train.optimizer.learning_rate <= 1e-2
    assert seen == {"cnn", "mlp"}


def test_cli_rejects_a_bad_space_fast_without_tensorflow(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {RECIPE}\nruns_root: {tmp_path / 'runs'}\n"
                   "tune:\n  space:\n    train.optimizer.learning_rate: {type: float, min: 0, max: 0.1, "
                   "sampling: log}\n")
    code = ("import sys\nfrom kerasopt.cli import main\ntry:\n    main(['tune', sys.argv[1]])\n"
            "except SystemExit as e:\n    print('exit', e.code, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.stdout.strip() == "exit 2 False", out
    err = out.stderr.strip()
    assert err.count("\n") == 0 and "tune.space.train.optimizer.learning_rate: log sampling needs min > 0" in err
    assert not (tmp_path / "runs").exists()  # nothing written
