"""A really trained digits MLP run shared by the compress tests (about 10 s on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """(config path, run directory, FitResult) of a 6-epoch digits MLP (~96% validation accuracy)."""
    import kerasopt

    root = tmp_path_factory.mktemp("compress")
    cfg = mlp_config(root)
    result = kerasopt.fit(cfg, run_dir=str(root / "run"), print_fn=lambda s: None)
    return cfg, root / "run", result
