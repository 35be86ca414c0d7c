"""Hyperband: brackets of short trials, the best resumed from their checkpoint to a larger budget."""

import csv
import json

from tune_common import LR, RECIPE, fast

from kerasopt.tune import tune


def test_hyperband_completes_and_promotes_from_checkpoints(tmp_path, default_objective):
    space = {"train.optimizer.learning_rate": LR, "model.filters": {"type": "choice",
                                                                    "values": [[8, 16, 32], [16, 32, 64]]}}
    # max_epochs 3, factor 3: bracket 1 trains 3 trials for 1 epoch and resumes the best to 3;
    # bracket 0 trains 2 trials for 3 epochs. No warm-up: 1-epoch trials cannot warm up for 1 epoch.
    result = tune(RECIPE, fast(tmp_path, **{"tune.algorithm": "hyperband", "tune.max_epochs": 3, "tune.factor": 3,
                                            "train.schedule.warmup_epochs": 0, "tune.space": space}),
                  print_fn=lambda s: None)
    recs = result.records
    assert len(recs) == 6 and all(r["status"] == "COMPLETED" for r in recs), recs
    assert sorted(r["epochs"] for r in recs) == [1, 1, 1, 3, 3, 3]
    promoted = [r for r in recs if r["resumed_from"] is not None]
    assert len(promoted) == 1
    p = promoted[0]
    first_round = [r for r in recs if r["epochs"] == 1]
    src = next(r for r in first_round if r["trial"] == p["resumed_from"])
    assert src["objective"] == max(r["objective"] for r in first_round)  # the best of its round goes on
    assert p["values"] == src["values"] and p["initial_epoch"] == 1
    run = tmp_path / "runs" / "digits_tune" / "tune" / "trials" / f"trial_{p['trial']}"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 1 and metrics["epochs_run"] == 2 and metrics["last_epoch"] == 3
    with open(run / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]  # epoch 0 came with the checkpoint
    # resumed, not retrained: it trained two epochs, the 3-epoch trials three
    assert result.best["objective"] > default_objective
    best_cfg = result.best_config
    assert best_cfg.train.epochs == result.best["epochs"] and best_cfg.tune is None
