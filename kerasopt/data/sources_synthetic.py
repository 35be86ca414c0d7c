"""Seeded random data with a learnable label, for benchmarks and tests."""

from __future__ import annotations

from typing import Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.config.data_schema import DataConfig
from kerasopt.data.source_base import SOURCES, SourceData, Stream
from kerasopt.data.sources_files import parallel
from kerasopt.errors import ConfigError

# Fraction of token positions drawn from the label's own ids: enough that a
# bag-of-embeddings model reaches high accuracy, small enough that it must learn.
TOKEN_SIGNAL = 0.3


@SOURCES.register("synthetic")
def load_synthetic(data: DataConfig, seed: int) -> SourceData:
    """``num_examples`` random examples of ``shape``; the same seed gives the same data.

    - ``classification``: ``x = prototype[label] + noise`` (one fixed random prototype per class).
    - ``regression``: ``x = noise + target * direction``, so ``target`` is a linear function of ``x`` plus noise.
    - ``tokens``: int32 sequences of length ``shape[0]`` with ids in ``[1, vocab_size)``; about 30% of the
      ids belong to the label (``id % num_classes == label``), the rest are uniform.

    Float examples are generated on the fly from their index (stateless random
    ops), so a large benchmark set never sits in memory unless ``cache`` is on.

    Example:
        >>> src = load_synthetic(DataConfig(source="synthetic", num_examples=8, shape=[4]), seed=0)
        >>> src.y.shape, src.num_classes
        ((8,), 10)
    """
    rng = np.random.default_rng(seed)
    n, shape, k = data.num_examples, list(data.shape), data.num_classes
    if data.task == "tokens":
        return _tokens(data, rng)
    regression = data.task == "regression"
    if regression:
        y = rng.normal(size=n).astype(np.float32)
        # Direction of norm 3: the target explains ~90% of the variance of x's projection on it.
        direction = rng.normal(size=shape)
        base = tf.constant((3.0 * direction / np.linalg.norm(direction)).astype(np.float32))
    else:
        y = rng.integers(0, k, size=n).astype(np.int64)
        base = tf.constant(rng.normal(size=(k, *shape)).astype(np.float32))  # one prototype per class
    calls = parallel(data.num_parallel_calls)

    def generate(i: tf.Tensor, label: tf.Tensor):
        noise = tf.random.stateless_normal(shape, seed=tf.stack([tf.cast(seed, tf.int64), i]))
        signal = label * base if regression else tf.gather(base, label)
        return noise + signal, label

    def make(indices: np.ndarray, shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        ds = tf.data.Dataset.from_tensor_slices((indices.astype(np.int64), y[indices]))
        return ds.map(generate, num_parallel_calls=calls), len(indices)

    return SourceData(
        y=y, stream=Stream(make), origin="synthetic data", task="regression" if regression else "classification",
        num_classes=None if regression else k, extras={"synthetic": data.task},
    )


def _tokens(data: DataConfig, rng: np.random.Generator) -> SourceData:
    n, k, vocab = data.num_examples, data.num_classes, data.vocab_size
    if "shape" in data.model_fields_set and len(data.shape) != 1:
        raise ConfigError(f"task 'tokens' needs shape [length]. Received: shape={data.shape}", key="data.shape")
    if vocab - 1 < k:
        raise ConfigError(
            f"task 'tokens' needs vocab_size > num_classes ({k}) so every class owns an id. "
            f"Received: vocab_size={vocab}",
            key="data.vocab_size",
        )
    length = data.shape[0]
    y = rng.integers(0, k, size=n).astype(np.int64)
    x = rng.integers(1, vocab, size=(n, length))
    # Replace a fraction of positions by ids of the label's class: id = label + k * j, j >= 0, id >= 1.
    ids = np.arange(1, vocab)
    owned = [ids[ids % k == c] for c in range(k)]
    marked = rng.random((n, length)) < TOKEN_SIGNAL
    for c in range(k):
        rows = marked & (y == c)[:, None]
        x[rows] = rng.choice(owned[c], size=int(rows.sum()))
    return SourceData(
        y=y, x=x.astype(np.int32), origin="synthetic data", task="classification", num_classes=k,
        input_dtype="int32", vocab_size=vocab, extras={"synthetic": "tokens"},
    )
