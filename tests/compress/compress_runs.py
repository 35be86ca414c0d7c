"""The digits MLP config the compress tests train (a module with a unique name: every test folder
has a ``conftest``, so ``from conftest import`` would pick whichever was imported first)."""

from __future__ import annotations

from pathlib import Path

import yaml


def mlp_config(tmp: Path, **extra) -> Path:
    """A digits MLP config file (8x8 inputs flattened, 64-32 hidden units)."""
    cfg = {
        "name": "digits_mlp", "seed": 3,
        "data": {"source": "sklearn", "name": "digits", "validation_split": 0.2, "normalize": "minmax",
                 "batch_size": 64},
        "model": {"type": "mlp", "hidden_units": [64, 32], "dropout": 0.0},
        "train": {"epochs": 6, "jit_compile": False, "verbose": 0,
                  "optimizer": {"type": "adam", "learning_rate": 0.003}},
        "callbacks": {"tensorboard": {"enabled": False}},
        "export": {"formats": ["keras"]},
        "report": False,
    }
    for key, value in extra.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = tmp / f"mlp-{abs(hash(tuple(sorted(map(str, extra.items()))))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
