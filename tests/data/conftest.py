"""Helpers for the data tests: configs from keyword arguments, datasets to NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from kerasopt.config import ExperimentConfig


def _cfg(seed: int = 42, deterministic: bool = False, **data) -> ExperimentConfig:
    return ExperimentConfig(seed=seed, deterministic=deterministic, data=data)


def _collect(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def make_cfg():
    """``make_cfg(source="sklearn", name="iris", seed=1)`` -> ``ExperimentConfig``."""
    return _cfg


@pytest.fixture
def collect():
    """Every batch of a dataset concatenated: ``(x, y)`` NumPy arrays."""
    return _collect
