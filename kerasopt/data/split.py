"""Deterministic train/validation split and per-worker sharding (NumPy only)."""

from __future__ import annotations

import math

import numpy as np


def split_indices(
    y: np.ndarray, validation_split: float, seed: int, *, stratify: bool
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Sorted ``(train_idx, val_idx, stratified)`` for ``len(y)`` examples.

    The validation set has ``ceil(n * validation_split)`` examples (scikit-learn's
    rule): digits' 1797 examples at 0.2 give 1437 train / 360 validation. With
    ``stratify`` every class keeps its share in both parts; this falls back to a
    plain seeded shuffle when a class is too small to appear in both.

    Example:
        >>> tr, va, _ = split_indices(np.arange(10) % 2, 0.2, seed=0, stratify=True)
        >>> len(tr), len(va), sorted(np.bincount((np.arange(10) % 2)[va]).tolist())
        (8, 2, [1, 1])
    """
    n = len(y)
    n_val = math.ceil(n * validation_split) if validation_split > 0 else 0
    every = np.arange(n)
    if n_val == 0:
        return every, every[:0], False
    if n_val >= n:
        return every[:0], every, False
    if stratify:
        from sklearn.model_selection import train_test_split

        try:
            train, val = train_test_split(every, test_size=n_val, random_state=seed, stratify=y)
            return np.sort(train), np.sort(val), True
        except ValueError:
            pass  # a class with one member, or fewer val slots than classes
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val]), False


def shard_indices(indices: np.ndarray, shard: tuple[int, int]) -> np.ndarray:
    """This worker's share of ``indices``: every ``count``-th starting at ``index``.

    Example:
        >>> shard_indices(np.arange(7), (1, 3)).tolist()
        [1, 4]
    """
    index, count = shard
    return indices[index::count]
