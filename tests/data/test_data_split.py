"""The seeded train/validation split and sharding (NumPy only, no TensorFlow)."""

import numpy as np
import pytest

from kerasopt.data.split import shard_indices, split_indices


@pytest.mark.parametrize(
    "n, fraction, expected",
    [
        (1797, 0.2, (1437, 360)),  # digits: ceil(359.4) = 360 validation examples
        (150, 0.2, (120, 30)),  # iris
        (178, 0.25, (133, 45)),  # wine: ceil(44.5) = 45
        (10, 0.0, (10, 0)),
        (3, 0.5, (1, 2)),  # ceil(1.5) = 2
    ],
)
def test_split_sizes_round_validation_up(n, fraction, expected):
    y = np.arange(n) % 3
    train, val, _ = split_indices(y, fraction, seed=0, stratify=False)
    assert (len(train), len(val)) == expected
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


def test_same_seed_same_split_different_seed_different_split():
    y = np.arange(500) % 5
    a = split_indices(y, 0.2, seed=7, stratify=True)
    b = split_indices(y, 0.2, seed=7, stratify=True)
    c = split_indices(y, 0.2, seed=8, stratify=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert all(np.all(np.diff(part) > 0) for part in a[:2])  # sorted: validation keeps file order


def test_stratified_split_keeps_class_shares():
    # 90 of class 0, 10 of class 1: 20% validation = 18 + 2 exactly.
    y = np.array([0] * 90 + [1] * 10)
    train, val, stratified = split_indices(y, 0.2, seed=3, stratify=True)
    assert stratified
    assert np.bincount(y[val]).tolist() == [18, 2]
    assert np.bincount(y[train]).tolist() == [72, 8]


def test_stratification_falls_back_when_a_class_has_one_member():
    y = np.array([0] * 9 + [1])
    train, val, stratified = split_indices(y, 0.2, seed=0, stratify=True)
    assert not stratified
    assert (len(train), len(val)) == (8, 2)


def test_shard_indices_partition_the_training_set():
    idx = np.arange(10, 20)
    parts = [shard_indices(idx, (i, 3)) for i in range(3)]
    assert [p.tolist() for p in parts] == [[10, 13, 16, 19], [11, 14, 17], [12, 15, 18]]


@pytest.mark.parametrize("case", range(40))
def test_stratified_split_equals_scikit_learns(case):
    # kerasopt draws its own stratified split (no scikit-learn import at start-up); it must be the
    # split every earlier run got from train_test_split, ties between class remainders included.
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(case)
    classes = int(rng.integers(2, 12))
    y = rng.integers(0, classes, size=int(rng.integers(30, 400)))
    if case % 4 == 0:
        y = np.array([f"class_{v}" for v in y])  # string labels (CSV) sort like sklearn's
    elif case % 4 == 1:
        y = y * 3 + 2  # integer labels with gaps: counted by bincount, then remapped
    fraction = float(rng.choice([0.1, 0.2, 0.25, 1 / 3, 0.5]))
    train, val, stratified = split_indices(y, fraction, seed=case, stratify=True)
    try:
        ref_train, ref_val = train_test_split(np.arange(len(y)), test_size=len(val), random_state=case, stratify=y)
    except ValueError:
        assert not stratified  # scikit-learn refuses, kerasopt falls back to a plain shuffle
        return
    assert stratified
    assert np.array_equal(train, np.sort(ref_train)) and np.array_equal(val, np.sort(ref_val))


def test_stratified_split_of_digits_is_unchanged():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    _, val, _ = split_indices(y, 0.2, seed=42, stratify=True)
    _, ref = train_test_split(np.arange(len(y)), test_size=360, random_state=42, stratify=y)
    assert np.array_equal(val, np.sort(ref))
