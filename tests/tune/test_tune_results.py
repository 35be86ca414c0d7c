"""Scoring a trial from its history, parameter importance, and trials.csv (no training)."""

import csv
import math

import pytest

from kerasopt.config.tune_schema import ObjectiveConfig, TuneConfig
from kerasopt.errors import ConfigError
from kerasopt.tune.display import short_names
from kerasopt.tune.results import best_record, importance, write_trials_csv
from kerasopt.tune.runner import objective_value


def _history(tmp_path, rows):
    with open(tmp_path / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "loss", "val_accuracy", "val_loss"])
        w.writerows([i, *r] for i, r in enumerate(rows))
    return tmp_path


@pytest.mark.parametrize(
    "objective, expected",
    [
        ({"metric": "val_accuracy"}, 0.8),  # final epoch
        ({"metric": "val_accuracy", "reduce": "best"}, 0.9),  # auto mode: max for accuracy
        ({"metric": "val_loss", "reduce": "best"}, 0.3),  # auto mode: min for a loss
        ({"metric": "val_loss", "reduce": "best", "mode": "max"}, 0.7),
        ({"metric": "val_loss"}, 0.4),
    ],
)
def test_objective_from_history(tmp_path, objective, expected):
    run = _history(tmp_path, [(1.0, 0.5, 0.7), (0.5, 0.9, 0.3), (0.4, 0.8, 0.4)])
    assert objective_value(run, ObjectiveConfig(**objective)) == pytest.approx(expected)


def test_missing_objective_metric_names_the_logged_ones(tmp_path):
    run = _history(tmp_path, [(1.0, 0.5, 0.7)])
    with pytest.raises(ConfigError, match=r"tune.objective.metric: 'val_acc' is not logged.*Did you mean "
                                          r"'val_accuracy'\? Logged metrics: loss, val_accuracy, val_loss"):
        objective_value(run, ObjectiveConfig(metric="val_acc"))


def _tune():
    return TuneConfig(objective={"metric": "val_accuracy"}, space={
        "train.optimizer.learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        "model.dropout": {"type": "float", "min": 0.0, "max": 0.5},
        "model.type": {"type": "choice", "values": ["cnn", "mlp"]},
        "model.filters": {"type": "choice", "values": [[8], [16]], "when": {"model.type": "cnn"}},
    })


def _records():
    # the objective rises with the learning rate, with dropout mostly; the model type explains little
    rows = [(1e-4, 0.1, "mlp", 0.2), (1e-3, 0.3, "cnn", 0.5), (1e-2, 0.2, "cnn", 0.7), (1e-1, 0.4, "mlp", 0.8)]
    recs = []
    for i, (lr, dr, kind, obj) in enumerate(rows):
        values = {"train.optimizer.learning_rate": lr, "model.dropout": dr, "model.type": kind}
        if kind == "cnn":
            values["model.filters"] = [8]
        recs.append({"trial": str(i), "number": i + 1, "status": "COMPLETED", "objective": obj, "values": values,
                     "epochs": 3, "time_s": 2.0, "fit_s": 1.5, "run_dirs": [f"t/{i}"]})
    recs.append({"trial": "4", "number": 5, "status": "FAILED", "objective": None, "values": {}, "time_s": 0.5,
                 "reason": "TrainingDiverged: loss diverged", "run_dirs": ["t/4"]})
    return recs


def test_importance_ranks_the_key_that_moves_the_objective_first():
    ranking = dict(importance(_records(), _tune()))
    assert list(ranking)[0] == "train.optimizer.learning_rate" and ranking["train.optimizer.learning_rate"] == 1.0
    # dropout ranks 1,3,2,4 against objective ranks 1,2,3,4: Spearman 1 - 6*2/(4*15) = 0.8
    assert ranking["model.dropout"] == pytest.approx(0.8)
    # cnn {0.5, 0.7} vs mlp {0.2, 0.8}: sqrt(between 0.01 / total 0.21) = 0.218
    assert ranking["model.type"] == pytest.approx(math.sqrt(0.01 / 0.21), abs=1e-4)
    assert ranking["model.filters"] == 0.0  # two points only: not enough to say


def test_best_record_skips_failed_and_nan():
    recs = _records() + [{"trial": "5", "number": 6, "status": "COMPLETED", "objective": math.nan, "values": {}}]
    assert best_record(recs, "max")["trial"] == "3" and best_record(recs, "min")["trial"] == "0"
    assert best_record(recs[4:5], "max") is None


def test_trials_csv_has_a_row_per_trial_and_blank_inactive_keys(tmp_path):
    keys = list(_tune().space)
    write_trials_csv(tmp_path / "trials.csv", _records(), keys)
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["COMPLETED"] * 4 + ["FAILED"]
    assert rows[0]["model.filters"] == "" and rows[1]["model.filters"] == "[8]"
    assert rows[0]["overhead_s"] == "0.5" and rows[4]["reason"].startswith("TrainingDiverged")
    assert short_names(keys)["train.optimizer.learning_rate"] == "learning_rate"
