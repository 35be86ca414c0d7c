"""Synthetic run directories (no TensorFlow) for the reporting tests; the fixtures are in conftest.py."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import yaml

# Five epochs of a classifier with EMA: values chosen so best/last differ and can be read off by hand.
HISTORY = {
    "epoch": [0, 1, 2, 3, 4],
    "loss": [1.8, 0.9, 0.5, 0.3, 0.25],
    "accuracy": [0.40, 0.75, 0.88, 0.93, 0.95],
    "val_loss": [2.0, 1.1, 0.6, 0.45, 0.5],
    "val_accuracy": [0.30, 0.70, 0.85, 0.91, 0.90],
    "val_raw_loss": [2.0, 1.2, 0.7, 0.5, 0.48],
    "val_raw_accuracy": [0.30, 0.66, 0.83, 0.90, 0.92],
    "lr": [3e-4, 3e-3, 2.5e-3, 1.2e-3, 2e-4],
    "examples_per_sec": [120.0, 450.0, 460.0, 455.0, 470.0],
    "step_time_ms": [1000.0, 280.0, 275.0, 281.0, 270.0],
}

CONFIG = {
    "name": "synthetic", "seed": 7,
    "data": {"source": "sklearn", "name": "digits", "validation_split": 0.2, "batch_size": 64},
    "model": {"type": "cnn"},
    "train": {"epochs": 5, "precision": "auto", "jit_compile": "auto", "loss": "auto",
              "optimizer": {"type": "adamw", "learning_rate": 0.003, "weight_decay": 1e-4},
              "schedule": {"type": "cosine", "warmup_epochs": 1.0}},
    "callbacks": {"ema": {"enabled": True}, "checkpoint": {"enabled": True, "monitor": "val_accuracy"}},
}


def metrics_for(history: dict, name: str = "synthetic", task: str = "classification") -> dict:
    n = len(history["epoch"])
    return {
        "name": name, "epochs_run": n, "wall_time_s": 12.5, "fit_time_s": 10.0,
        "throughput": {"examples_per_sec_median": 455.0, "examples_per_sec": history.get("examples_per_sec", []),
                       "epoch_seconds": [4.0] + [2.0] * (n - 1)},
        "precision": {"policy": "float32", "jit_compile": True, "reason": "no native bfloat16 here", "device": "CPU"},
        "strategy": {"name": "none", "replicas": 1, "reason": "auto: 0 GPU(s) visible"},
        "parameters": 77466,
        "data": {"input_shape": [32, 32, 1], "task": task, "num_classes": 10 if task == "classification" else None,
                 "num_train": 1437, "num_val": 360},
        "checkpoint": {"monitor": "val_accuracy", "mode": "max", "best_value": 0.91,
                       "top_k": [{"value": 0.91, "epoch": 4}, {"value": 0.90, "epoch": 5}]},
        "nan_recoveries": [], "exports": {"keras": "model/synthetic.keras"},
    }


def write_run(path: Path, history: dict | None = None, *, metrics: dict | None | bool = True,
              config: dict | None = None, checkpoints: bool = True) -> Path:
    """A run directory as ``kerasopt fit`` leaves it, minus the TensorFlow files."""
    history = HISTORY if history is None else history
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(config or CONFIG, sort_keys=False))
    with (path / "history.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(history)
        for row in zip(*history.values()):
            w.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in row])
    if metrics is True:
        metrics = metrics_for(history, name=(config or CONFIG)["name"])
    if metrics:
        (path / "metrics.json").write_text(json.dumps(metrics))
    if checkpoints:
        for which, epoch in (("best", 4), ("last", 5)):
            (path / "checkpoints" / which).mkdir(parents=True, exist_ok=True)
            logs = {k: v[epoch - 1] for k, v in history.items() if k != "epoch"}
            meta = {"epoch": epoch, "batch": 0, "step": epoch * 12, "monitor": "val_accuracy",
                    "value": logs.get("val_accuracy"), "logs": logs, "config": {"secret": "left out"}}
            (path / "checkpoints" / which / "meta.json").write_text(json.dumps(meta))
    return path
