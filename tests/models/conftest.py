"""Tiny real data sets and a few-step training helper for the model tests."""

from __future__ import annotations

import numpy as np
import pytest

from kerasopt.data.spec import DataSpec


@pytest.fixture(scope="session")
def digits32():
    """64 scikit-learn digits as 32x32x1 images in 0..1 (each 8x8 pixel repeated 4x4)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.kron(d.images[:64] / 16.0, np.ones((4, 4)))[..., None].astype("float32")
    return x, d.target[:64].astype("int32")


@pytest.fixture(scope="session")
def digits_seq():
    """64 digits as sequences of 8 rows of 8 pixels: (64, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:64] / 16.0).astype("float32"), d.target[:64].astype("int32")


@pytest.fixture(scope="session")
def wine():
    """64 standardized wine examples: 13 features, 3 classes."""
    from sklearn.datasets import load_wine

    d = load_wine()
    x = (d.data - d.data.mean(0)) / d.data.std(0)
    idx = np.random.default_rng(0).permutation(len(x))[:64]
    return x[idx].astype("float32"), d.target[idx].astype("int32")


@pytest.fixture(scope="session")
def tokens():
    """64 sequences of 20 token ids (vocab 50, 0 = padding); label 1 when token 7 occurs."""
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, size=(64, 20)).astype("int32")
    lengths = rng.integers(10, 21, size=64)
    x[np.arange(20)[None, :] >= lengths[:, None]] = 0  # right padding
    y = (x == 7).any(axis=1).astype("int32")
    return x, y


def _spec_for(x: np.ndarray, y: np.ndarray, **kw) -> DataSpec:
    task = kw.pop("task", "classification")
    num_classes = kw.pop("num_classes", None if task == "regression" else int(y.max()) + 1)
    return DataSpec(tuple(x.shape[1:]), task, num_classes, len(x), 0, **kw)


def _train_losses(model, x, y, head, steps: int = 6, lr: float = 0.05, eager: bool = False) -> list[float]:
    """Compile with plain SGD and take ``steps`` steps on one batch; return the losses."""
    from kerasopt._keras import keras

    loss = {"multiclass": "sparse_categorical_crossentropy", "binary": "binary_crossentropy",
            "regression": "mse"}[head.kind]
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss, run_eagerly=eager)
    return [float(model.train_on_batch(x, y)) for _ in range(steps)]


@pytest.fixture
def spec_for():
    """``spec_for(x, y, task=..., **DataSpec fields)`` -> the ``DataSpec`` of arrays ``x``, ``y``."""
    return _spec_for


@pytest.fixture
def train_losses():
    """``train_losses(model, x, y, head, steps, lr, eager)`` -> the loss of each SGD step on one batch."""
    return _train_losses
