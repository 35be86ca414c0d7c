"""Fixtures for the reporting tests: synthetic run directories and one really trained run."""

from __future__ import annotations

from pathlib import Path

import pytest
from reporting_runs import write_run


@pytest.fixture
def make_run(tmp_path):
    """``make_run("name", history=..., metrics=..., config=...)`` -> a synthetic run directory."""
    return lambda name="run", **kw: write_run(tmp_path / name, **kw)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A real two-epoch digits run (EMA on, raw weights validated too): (FitResult, run directory).

    ``report: false`` so the tests decide when the report is written.
    """
    import kerasopt

    root = tmp_path_factory.mktemp("trained")
    overrides = {
        "data.max_examples": 500, "data.batch_size": 64, "train.epochs": 2, "train.jit_compile": False,
        "model.filters": [8, 16], "model.dense_units": 32,
        "callbacks.ema.enabled": True, "callbacks.ema.decay": 0.5, "callbacks.ema.evaluate_raw": True,
        "callbacks.tensorboard.enabled": False, "export.formats": ["keras"], "report": False,
    }
    result = kerasopt.fit(Path(__file__).resolve().parents[2] / "configs" / "digits_cnn.yaml", overrides,
                          run_dir=root / "digits", print_fn=lambda s: None)
    return result, root / "digits"
