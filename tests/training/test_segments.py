"""metrics.json across --resume: the top level is the latest segment, ``segments``/``total`` the whole run."""

import json

import pytest

import kerasopt
from kerasopt.training.segments import merge_segments, read_previous, segment_entry

FIRST = {"resumed_from_epoch": None, "last_epoch": 3, "epochs_run": 3, "wall_time_s": 10.0, "fit_time_s": 8.0,
         "throughput": {"examples_per_sec": [100.0, 200.0, 300.0]}}
IRIS = {  # a two-epoch run to resume
    "name": "seg", "seed": 1,
    "data": {"source": "sklearn", "name": "iris", "batch_size": 16, "normalize": "standard"},
    "model": {"type": "mlp", "hidden_units": [8]},
    "train": {"epochs": 2, "optimizer": {"type": "adam", "learning_rate": 0.01}, "verbose": 0},
    "callbacks": {"tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]}, "report": False,
}
SECOND = {"resumed_from_epoch": 3, "last_epoch": 5, "epochs_run": 2, "wall_time_s": 6.5, "fit_time_s": 4.25,
          "throughput": {"examples_per_sec": [400.0, 500.0]}}


def test_a_new_run_is_one_segment_equal_to_the_top_level():
    out = merge_segments(None, FIRST)
    assert out["segments"] == [segment_entry(FIRST)]
    assert out["total"] == {"segments": 1, "epochs_run": 3, "wall_time_s": 10.0, "fit_time_s": 8.0,
                            "examples_per_sec_median": 200.0, "untracked_epochs": 0}


@pytest.mark.parametrize("previous", [FIRST, merge_segments(None, FIRST) | FIRST], ids=["old-format", "segments"])
def test_a_resumed_run_adds_up_its_segments(previous):
    out = merge_segments(previous, SECOND)
    assert [(s["initial_epoch"], s["last_epoch"]) for s in out["segments"]] == [(0, 3), (3, 5)]
    # 10 + 6.5 wall, 8 + 4.25 training, median of the 5 epochs' rates [100..500]
    assert out["total"] == {"segments": 2, "epochs_run": 5, "wall_time_s": 16.5, "fit_time_s": 12.25,
                            "examples_per_sec_median": 300.0, "untracked_epochs": 0}


def test_a_segment_killed_before_writing_metrics_shows_as_untracked_epochs():
    # epochs 3..7 ran in a segment killed with SIGKILL; the next one resumed at 7 and ran to 9
    third = {**SECOND, "resumed_from_epoch": 7, "last_epoch": 9}
    total = merge_segments(merge_segments(None, FIRST) | FIRST, third)["total"]
    assert (total["segments"], total["epochs_run"], total["untracked_epochs"]) == (2, 5, 4)


def test_read_previous_tolerates_a_missing_or_broken_file(tmp_path):
    assert read_previous(tmp_path / "metrics.json") is None
    (tmp_path / "metrics.json").write_text("{not json")
    assert read_previous(tmp_path / "metrics.json") is None


def test_fit_then_resume_writes_cumulative_totals(tmp_path):
    cfg = IRIS
    rd = tmp_path / "run"
    first = kerasopt.fit(cfg, run_dir=str(rd), print_fn=lambda s: None).metrics
    assert first["total"]["segments"] == 1 and first["total"]["wall_time_s"] == first["wall_time_s"]
    lines: list[str] = []
    kerasopt.fit(cfg, {"train.epochs": 5}, run_dir=str(rd), resume=True, print_fn=lines.append)
    m = json.loads((rd / "metrics.json").read_text())
    # the top level is the second segment, as before
    assert (m["resumed_from_epoch"], m["epochs_run"], m["last_epoch"]) == (2, 3, 5)
    assert [(s["initial_epoch"], s["last_epoch"], s["epochs_run"]) for s in m["segments"]] == [(0, 2, 2), (2, 5, 3)]
    assert m["segments"][0]["wall_time_s"] == first["wall_time_s"]
    t = m["total"]
    assert (t["segments"], t["epochs_run"], t["untracked_epochs"]) == (2, 5, 0)
    assert t["wall_time_s"] == pytest.approx(first["wall_time_s"] + m["wall_time_s"], abs=1e-3)
    assert t["fit_time_s"] == pytest.approx(first["fit_time_s"] + m["fit_time_s"], abs=1e-3)
    rates = first["throughput"]["examples_per_sec"] + m["throughput"]["examples_per_sec"]
    assert len(rates) == 5 and t["examples_per_sec_median"] == pytest.approx(sorted(rates)[2])
    assert any(line.startswith("whole run: 2 segments, 5 epochs") for line in lines)


def test_best_after_resume_covers_the_whole_run(tmp_path):
    import csv

    cfg = {**IRIS, "name": "segbest"}
    rd = tmp_path / "run"
    kerasopt.fit(cfg, run_dir=str(rd), print_fn=lambda s: None)
    # Make epoch 1 (row 0) the best of the whole run by far, so only a "best" that reads the first
    # segment can report it: val_loss 0.001 and val_accuracy 1.0 there.
    with open(rd / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0].update(val_loss="0.001", val_accuracy="1.0")
    with open(rd / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    m = kerasopt.fit(cfg, {"train.epochs": 4}, run_dir=str(rd), resume=True, print_fn=lambda s: None).metrics
    assert m["best"]["val_loss"] == {"value": 0.001, "epoch": 1}
    assert m["best"]["val_accuracy"] == {"value": 1.0, "epoch": 1}
    # the other keys: best over all 4 rows of history.csv, epochs 1-based from the run's start
    with open(rd / "history.csv", newline="") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 4
    assert m["best"]["loss"] == {"value": pytest.approx(min(losses)), "epoch": losses.index(min(losses)) + 1}
    assert json.loads((rd / "metrics.json").read_text())["best"] == m["best"]
