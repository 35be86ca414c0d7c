"""A really trained digits MLP run shared by the compress tests (about 10 s on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
from compress_runs import mlp_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """(config path, run directory, FitResult) of a 6-epoch digits MLP (~96% validation accuracy)."""
    import kerasopt

    root = tmp_path_factory.mktemp("compress")
    cfg = mlp_config(root)
    result = kerasopt.fit(cfg, run_dir=str(root / "run"), print_fn=lambda s: None)
    return cfg, root / "run", result
