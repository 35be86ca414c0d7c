"""Random and Bayesian search on the digits CNN from a bad default learning rate; resume; best.yaml."""

import csv
import json

import pytest
import yaml
from click.testing import CliRunner
from tune_common import LR, RECIPE, fast

from kerasopt.cli import main
from kerasopt.errors import ConfigError
from kerasopt.tune import load_results, tune

SPACE = {
    "train.optimizer.learning_rate": LR,
    "model.filters": {"type": "choice", "values": [[8, 16, 32], [16, 32, 64]]},
    "model.dropout": {"type": "float", "min": 0.0, "max": 0.3},
}


@pytest.fixture(scope="module")
def random_search(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("random")
    lines: list[str] = []
    result = tune(RECIPE, fast(tmp, **{"tune.algorithm": "random", "tune.max_trials": 4, "tune.space": SPACE}),
                  print_fn=lines.append)
    return tmp, result, lines


def test_random_search_beats_the_bad_default(random_search, default_objective):
    tmp, result, lines = random_search
    assert default_objective < 0.3  # 3e-5 for 5 epochs: near chance (10 classes)
    done = [r for r in result.records if r["status"] == "COMPLETED"]
    assert len(done) == 4 and result.stopped is None
    assert result.best["objective"] == max(r["objective"] for r in done)
    assert result.best["objective"] > default_objective + 0.2, (result.best, default_objective)
    for r in done:  # every trial a full run in its own directory, scored from its history
        metrics = json.loads((tmp / "runs" / "digits_tune" / "tune" / "trials" / f"trial_{r['trial']}"
                              / "metrics.json").read_text())
        assert metrics["final"]["val_accuracy"] == pytest.approx(r["objective"])
        assert 1e-3 <= r["values"]["train.optimizer.learning_rate"] <= 2e-2 and r["fit_s"] > 0
    # the live table: a header, one row per trial with the best so far, then the summary
    rows = [ln for ln in lines if ln.lstrip().split(" ")[0] in {r["trial"] for r in result.records}
            and "completed" in ln]
    assert len(rows) == 4 and any("best trial" in ln for ln in lines)


def test_results_files(random_search):
    tmp, result, _ = random_search
    tdir = tmp / "runs" / "digits_tune" / "tune"
    with open(tdir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == [r["trial"] for r in result.records]
    assert {"objective", "status", "time_s", "train.optimizer.learning_rate", "model.filters", "reason"} <= set(rows[0])
    assert json.loads(rows[0]["model.filters"]) in SPACE["model.filters"]["values"]
    best = yaml.safe_load((tdir / "best.yaml").read_text())
    assert best["name"] == "digits_tune-best" and "tune" not in best or best.get("tune") is None
    assert best["train"]["optimizer"]["learning_rate"] == pytest.approx(
        result.best["values"]["train.optimizer.learning_rate"])
    assert best["export"]["formats"] == ["keras"] and best["train"]["verbose"] == 0  # the base's, not the trials'
    png = (tdir / "tune.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    summary = json.loads((tdir / "summary.json").read_text())
    assert summary["completed"] == 4 and summary["best"]["trial"] == result.best["trial"]
    assert set(summary["importance"]) == set(SPACE)


def test_best_yaml_reproduces_the_best_trial(random_search):
    tmp, result, _ = random_search
    best_yaml = tmp / "runs" / "digits_tune" / "tune" / "best.yaml"
    out = CliRunner().invoke(main, ["fit", str(best_yaml)])
    assert out.exit_code == 0, out.output
    metrics = json.loads((tmp / "runs" / "digits_tune-best" / "metrics.json").read_text())
    # same seed, same config: the same run up to CPU kernel nondeterminism (spread ~0.02, see conftest)
    assert metrics["final"]["val_accuracy"] == pytest.approx(result.best["objective"], abs=0.04)


def test_rerun_continues_the_search_without_rerunning_finished_trials(random_search):
    tmp, result, _ = random_search
    tdir = tmp / "runs" / "digits_tune" / "tune"
    stamps = {r["trial"]: (tdir / "trials" / f"trial_{r['trial']}" / "metrics.json").stat().st_mtime_ns
              for r in result.records}
    lines: list[str] = []
    again = tune(RECIPE, fast(tmp, **{"tune.algorithm": "random", "tune.max_trials": 5, "tune.space": SPACE}),
                 print_fn=lines.append)
    assert "resuming" in lines[0] and "4 trial(s) already done" in lines[0]
    assert len(again.records) == 5 and len(load_results(tdir)) == 5
    new = [r for r in again.records if r["trial"] not in stamps]
    assert len(new) == 1 and new[0]["status"] == "COMPLETED"
    for tid, stamp in stamps.items():  # untouched
        assert (tdir / "trials" / f"trial_{tid}" / "metrics.json").stat().st_mtime_ns == stamp
    # a search of a different config is not mixed in
    with pytest.raises(ConfigError, match=r"different config \(train.epochs: 5 -> 4\).*--overwrite"):
        tune(RECIPE, fast(tmp, **{"tune.algorithm": "random", "tune.space": SPACE, "train.epochs": 4}))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a GP on 2-3 points
def test_bayesian_search_beats_the_bad_default(tmp_path, default_objective):
    space = {"train.optimizer.learning_rate": {**LR, "min": 3e-4}, "data.batch_size": {"type": "choice",
                                                                                         "values": [32, 64]}}
    result = tune(RECIPE, fast(tmp_path, **{"tune.algorithm": "bayesian", "tune.max_trials": 4,
                                            "tune.num_initial_points": 2, "tune.space": space}),
                  print_fn=lambda s: None)
    assert [r["status"] for r in result.records] == ["COMPLETED"] * 4
    assert result.best["objective"] > default_objective + 0.2, (result.best, default_objective)
    # the Gaussian process proposed values of its own after the two random points
    assert len({round(r["values"]["train.optimizer.learning_rate"], 8) for r in result.records}) >= 3
