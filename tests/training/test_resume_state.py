"""Stateful callbacks across a resume: early-stopping counters, top-k, plateau scale, LR schedule position."""

import json

import kerasopt


def _cfg(tmp_path, epochs):
    return {
        "name": "state", "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "wine", "batch_size": 32, "normalize": "standard"},
        "model": {"type": "mlp", "hidden_units": [16]},
        # A tiny LR: val_loss barely moves, so early stopping's counter climbs every epoch.
        "train": {"epochs": epochs, "verbose": 0, "optimizer": {"type": "sgd", "learning_rate": 1e-5},
                  "schedule": {"type": "reduce_on_plateau", "patience": 1, "factor": 0.5, "min_delta": 0.01}},
        "callbacks": {"tensorboard": {"enabled": False},
                      "early_stopping": {"enabled": True, "patience": 4, "min_delta": 0.01},
                      "checkpoint": {"save_top_k": 2}},
        "export": {"formats": ["keras"]},
    }


def test_early_stopping_and_plateau_state_survive_resume(tmp_path):
    straight = kerasopt.fit(_cfg(tmp_path / "a", 10), print_fn=lambda s: None)
    assert straight.metrics["early_stopped_at_epoch"] == 5  # best at 1, then 4 epochs without improvement

    first = kerasopt.fit(_cfg(tmp_path / "b", 3), print_fn=lambda s: None)
    meta = json.loads((first.run_dir.path / "checkpoints" / "last" / "meta.json").read_text())
    es_state = meta["callbacks"]["ResumableEarlyStopping"]
    assert (es_state["wait"], es_state["best_epoch"]) == (2, 1)
    assert meta["callbacks"]["ReduceLROnPlateau"]["scale"] < 1.0
    resumed = kerasopt.fit(_cfg(tmp_path / "b", 10), resume=True, print_fn=lambda s: None)
    # the counter carried over: the resumed run stops at the same epoch as the straight one
    assert resumed.metrics["early_stopped_at_epoch"] == 5
    assert resumed.history["lr"] == straight.history["lr"][3:5]
    assert len(list((resumed.run_dir.path / "checkpoints").glob("epoch-*"))) == 2
