"""Normalization statistics and training-time augmentation.

Statistics are per feature of the last axis (per channel for images, per
column for tables) and come from the training split only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np

from kerasopt._keras import keras, tf
from kerasopt.config.data_schema import AugmentConfig
from kerasopt.data.source_base import as_written
from kerasopt.errors import ConfigError


class RunningStats:
    """Per-channel count, sum, sum of squares, min and max over batches.

    Example:
        >>> s = RunningStats()
        >>> s.update(np.array([[0.0], [2.0]])); s.update(np.array([[4.0]]))
        >>> s.normalizer("standard")[1]["mean"], s.normalizer("minmax")[1]["max"]
        ([2.0], [4.0])
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: Optional[np.ndarray] = None
        self.squares: Optional[np.ndarray] = None
        self.low: Optional[np.ndarray] = None
        self.high: Optional[np.ndarray] = None

    def update(self, batch: np.ndarray) -> None:
        """Adds ``batch`` (any shape; the last axis is the channel), accumulating in float64.

        The sums are reduced with a float64 accumulator straight from the batch's own dtype: no
        float64 copy of the batch (a 30-column table's statistics pass runs ~2x faster).
        """
        flat = np.asarray(batch)
        flat = flat.reshape(-1, flat.shape[-1])
        if not len(flat):
            return
        total = np.add.reduce(flat, axis=0, dtype=np.float64)
        squares = np.einsum("ij,ij->j", flat, flat, dtype=np.float64)
        low, high = flat.min(0).astype(np.float64), flat.max(0).astype(np.float64)
        if self.total is None:
            self.total, self.squares, self.low, self.high = total, squares, low, high
        else:
            self.total += total
            self.squares += squares
            self.low, self.high = np.minimum(self.low, low), np.maximum(self.high, high)
        self.count += len(flat)

    def normalizer(self, method: str) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
        """``((offset, scale), record)``: ``x -> (x - offset) / scale`` and the numbers for ``spec.extras``."""
        if method == "standard":
            mean = self.total / self.count
            std = np.sqrt(np.maximum(self.squares / self.count - mean**2, 0.0))
            record = {"method": method, "mean": mean.tolist(), "std": std.tolist()}
            return offset_scale(method, mean, std), record
        record = {"method": method, "min": self.low.tolist(), "max": self.high.tolist()}
        return offset_scale(method, self.low, self.high - self.low), record


SCALE_FLOOR = {"standard": 1e-7, "minmax": 1e-12}


def offset_scale(method: str, offset: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 ``(offset, scale)`` of ``x -> (x - offset) / scale``, from a std (``standard``) or a span
    (``minmax``); a constant feature (e.g. an always-zero column) keeps scale 1 instead of dividing by 0.

    Example:
        >>> [a.tolist() for a in offset_scale("standard", np.array([1.0, 2.0]), np.array([2.0, 0.0]))]
        [[1.0, 2.0], [2.0, 1.0]]
    """
    spread = np.asarray(spread, np.float64)
    scale = np.where(spread > SCALE_FLOOR[method], spread, 1.0)
    return np.asarray(offset, np.float64).astype(np.float32), scale.astype(np.float32)


def check_finite(blocks, origin: str) -> None:
    """One line naming the count and the first example when float features hold NaN or Inf.

    ``blocks``: ``(first example, array of examples)`` pairs, so a big matrix is checked a block at a
    time (a whole-matrix ``np.isfinite`` would add a boolean copy of the features to the peak memory).
    """
    count, first = 0, None
    for start, block in blocks:
        bad = ~np.isfinite(block.reshape(len(block), -1))
        if bad.any():
            count += int(bad.sum())
            first = start + int(np.argwhere(bad)[0][0]) if first is None else first
    if count:
        raise ConfigError(f"{origin} has {count} NaN or Inf feature value(s), the first in example {first}; "
                          f"clean or drop those examples", key="data")


def compute_normalizer(ds: tf.data.Dataset, method: str) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
    """Statistics of the features of an unbatched ``(x, y)`` dataset (one pass).

    Example:
        >>> ds = tf.data.Dataset.from_tensor_slices((np.array([[1.0], [3.0]], "float32"), [0, 1]))
        >>> compute_normalizer(ds, "standard")[1]["std"]
        [1.0]
    """
    stats = RunningStats()
    for x, _ in ds.batch(2048).as_numpy_iterator():
        stats.update(x)
    return stats.normalizer(method)


def build_augmenter(aug: AugmentConfig, seed: int) -> Optional[keras.Sequential]:
    """tf_keras preprocessing layers for ``data.augment``, or ``None`` when nothing is on.

    Each layer gets its own seed so flips and rotations are not correlated.

    Example:
        >>> build_augmenter(AugmentConfig(flip="horizontal", zoom=0.1), seed=0).layers[1].name.startswith("random_zoom")
        True
    """
    if not aug.enabled:
        return None
    layers = []
    if aug.flip != "none":
        layers.append(keras.layers.RandomFlip(aug.flip, seed=seed))
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.rotation, seed=seed + 1))
    if aug.translation:
        layers.append(keras.layers.RandomTranslation(aug.translation, aug.translation, seed=seed + 2))
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.zoom, seed=seed + 3))
    if aug.contrast:
        # RandomContrast clips to [0, 255]: it runs before normalization, on raw pixel values.
        layers.append(keras.layers.RandomContrast(aug.contrast, seed=seed + 4))
    return keras.Sequential(layers, name="augment")


def batch_transform(
    augmenter: Optional[keras.Sequential], normalizer: Optional[tuple[np.ndarray, np.ndarray]],
    prepare: Optional[Callable] = None, seeded: Optional[Callable] = None,
) -> Optional[Callable]:
    """The function mapped over batches: ``prepare`` (uint8 -> float32, resize), augmentation
    (training only: the Keras layers, then ``seeded(x, batch number)``: crops, RandAugment), then normalization."""
    if augmenter is None and normalizer is None and prepare is None and seeded is None:
        return None
    offset, scale = (tf.constant(a) for a in normalizer) if normalizer is not None else (None, None)

    def apply(x: tf.Tensor, y: tf.Tensor, number: Optional[tf.Tensor] = None):
        if prepare is not None:
            x, y = prepare(x, y)
        if augmenter is not None:
            x = augmenter(x, training=True)
        if seeded is not None:
            x = seeded(x, number)
        if offset is not None:
            x = (x - offset) / scale
        return x, y

    # Keras augmentation layers are left to AutoGraph, as Keras expects; the rest is plain ops.
    return apply if augmenter is not None else as_written(apply)


def check_image(shape: tuple, key: str, what: str, received: object) -> None:
    """Raise unless ``shape`` (one example) is ``(height, width, channels)``."""
    if len(shape) != 3:
        raise ConfigError(
            f"{what} applies to images (height, width, channels); examples have shape {tuple(shape)}. "
            f"Received: {received}",
            key=key,
        )
