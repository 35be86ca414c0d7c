"""Synthetic data: seeded, right shapes and dtypes, and labels a simple model can learn."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from kerasopt.data import build_datasets
from kerasopt.errors import ConfigError


def arrays(make_cfg, collect, **data):
    bundle = build_datasets(make_cfg(source="synthetic", shuffle_buffer=0, cache=False, **data))
    return bundle, collect(bundle.train), collect(bundle.val)


def test_classification_is_seeded_and_learnable(make_cfg, collect):
    bundle, (x, y), (xv, yv) = arrays(make_cfg, collect, num_examples=300, shape=[6, 6, 2], num_classes=4)
    assert bundle.spec.input_shape == (6, 6, 2) and bundle.spec.num_classes == 4
    assert x.dtype == np.float32 and y.dtype == np.int32
    _, (x2, _), _ = arrays(make_cfg, collect, num_examples=300, shape=[6, 6, 2], num_classes=4)
    assert np.array_equal(x, x2)  # same seed, same data
    model = LogisticRegression(max_iter=500).fit(x.reshape(len(x), -1), y)
    assert model.score(xv.reshape(len(xv), -1), yv) > 0.9


def test_regression_target_is_linear_in_x(make_cfg, collect):
    bundle, (x, y), (xv, yv) = arrays(make_cfg, collect, num_examples=400, shape=[8], task="regression")
    assert bundle.spec.task == "regression" and y.dtype == np.float32 and y.shape == (len(x),)
    assert LinearRegression().fit(x, y).score(xv, yv) > 0.8


def test_tokens_ids_in_range_and_learnable(make_cfg, collect):
    bundle, (x, y), (xv, yv) = arrays(
        make_cfg, collect, num_examples=400, shape=[24], task="tokens", vocab_size=40, num_classes=3
    )
    spec = bundle.spec
    assert spec.input_dtype == "int32" and spec.vocab_size == 40 and spec.input_shape == (24,)
    assert x.dtype == np.int32 and x.min() >= 1 and x.max() < 40

    def bag(t):  # counts of ids per class residue: the rule a bag-of-embeddings model can find
        return np.stack([(t % 3 == c).sum(1) for c in range(3)], 1)

    assert LogisticRegression(max_iter=500).fit(bag(x), y).score(bag(xv), yv) > 0.85


def test_tokens_need_more_ids_than_classes(make_cfg):
    with pytest.raises(ConfigError, match="Received: vocab_size=3") as e:
        build_datasets(make_cfg(source="synthetic", task="tokens", vocab_size=3, num_classes=5))
    assert e.value.key == "data.vocab_size"
