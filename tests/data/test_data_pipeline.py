"""build_datasets: split sizes, train-only statistics, batching, shuffling, augmentation, sharding."""

import numpy as np
from sklearn.datasets import load_digits, load_iris

from kerasopt.data import DataBundle, build_datasets
from kerasopt.data.split import split_indices


def digits(make_cfg, **kw):
    kw.setdefault("shuffle_buffer", 0)
    return build_datasets(make_cfg(source="sklearn", name="digits", **kw))


def test_digits_split_steps_and_partial_last_batch(make_cfg):
    bundle = digits(make_cfg, batch_size=128)
    assert isinstance(bundle, DataBundle)
    spec = bundle.spec
    # ceil(1797 * 0.2) = 360 validation examples, 1437 for training.
    assert (spec.num_train, spec.num_val) == (1437, 360)
    assert (bundle.steps_per_epoch, bundle.val_steps) == (12, 3)  # ceil(1437/128), ceil(360/128)
    sizes = [int(x.shape[0]) for x, _ in bundle.train]
    assert sizes == [128] * 11 + [29]  # the partial last batch is kept
    x, y = next(iter(bundle.train))
    assert x.shape == (128, 8, 8, 1) and x.dtype.name == "float32" and y.shape == (128,) and y.dtype.name == "int32"
    assert spec.input_shape == (8, 8, 1) and spec.task == "classification" and spec.num_classes == 10
    assert sum(spec.class_counts) == 1437 and min(spec.class_counts) >= 139  # stratified: ~143.7 per class


def test_same_seed_same_split_different_seed_different_split(make_cfg, collect):
    def val_x(seed):
        return collect(digits(make_cfg, seed=seed).val)[0]

    assert np.array_equal(val_x(1), val_x(1))
    assert not np.array_equal(val_x(1), val_x(2))


def test_iris_stratified_counts(make_cfg):
    bundle = build_datasets(make_cfg(source="sklearn", name="iris"))
    assert bundle.spec.class_counts == [40, 40, 40] and bundle.spec.num_val == 30


def test_standard_normalization_uses_training_statistics(make_cfg, collect):
    bundle = build_datasets(make_cfg(source="sklearn", name="iris", normalize="standard", seed=5))
    x, _ = collect(bundle.train)
    xv, _ = collect(bundle.val)
    assert np.allclose(x.mean(0), 0.0, atol=1e-5) and np.allclose(x.std(0), 1.0, atol=1e-5)
    # Hand check: the same split by hand, validation scaled with the *training* mean and std.
    raw = load_iris().data.astype(np.float32)
    train, val, _ = split_indices(load_iris().target, 0.2, seed=5, stratify=True)
    mean, std = raw[train].mean(0), raw[train].std(0)
    assert np.allclose(bundle.spec.extras["normalize"]["mean"], mean, atol=1e-5)
    assert np.allclose(xv, (raw[val] - mean) / std, atol=1e-5)
    assert not np.allclose(xv.mean(0), 0.0, atol=1e-3)  # validation is not re-centred on its own mean


def test_minmax_normalization_bounds(make_cfg, collect):
    bundle = digits(make_cfg, normalize="minmax")
    x, _ = collect(bundle.train)
    assert x.min() == 0.0 and x.max() == 1.0
    record = bundle.spec.extras["normalize"]
    assert record == {"method": "minmax", "min": [0.0], "max": [16.0]}
    xv, _ = collect(bundle.val)
    raw = load_digits().images[..., None]
    _, val, _ = split_indices(load_digits().target, 0.2, seed=42, stratify=True)
    assert np.allclose(xv, raw[val] / 16.0)


def test_standard_normalization_per_channel_on_images(make_cfg, collect):
    bundle = digits(make_cfg, normalize="standard")
    x, _ = collect(bundle.train)
    assert abs(x.mean()) < 1e-5 and abs(x.std() - 1.0) < 1e-5
    assert len(bundle.spec.extras["normalize"]["mean"]) == 1  # one channel


def test_max_examples_takes_the_first_n(make_cfg, collect):
    bundle = digits(make_cfg, max_examples=100, validation_split=0.0)
    x, y = collect(bundle.train)
    assert len(x) == 100 and np.array_equal(y, load_digits().target[:100])
    assert bundle.val is None and bundle.val_steps == 0


def test_reshape_and_resize(make_cfg, collect):
    flat = digits(make_cfg, reshape=[64])
    assert flat.spec.input_shape == (64,) and not flat.spec.is_image
    big = digits(make_cfg, resize=[16, 16], validation_split=0.0)
    x, _ = collect(big.train)
    assert big.spec.input_shape == (16, 16, 1) and x.shape == (1797, 16, 16, 1)
    assert x.min() >= 0.0 and x.max() <= 16.0  # bilinear: a convex mix of the original pixels
    assert np.isclose(x.mean(), load_digits().images.mean(), rtol=0.02)


def test_shuffle_is_seeded_and_reshuffles_each_epoch(make_cfg):
    def first_labels(bundle):
        return [next(iter(bundle.train))[1].numpy().tolist() for _ in range(2)]

    a = first_labels(digits(make_cfg, shuffle_buffer=2000, seed=3))
    b = first_labels(digits(make_cfg, shuffle_buffer=2000, seed=3))
    assert a == b  # same seed: same order, epoch after epoch
    assert a[0] != a[1]  # but each epoch is a new order
    plain = digits(make_cfg, shuffle_buffer=0, validation_split=0.0, batch_size=8)
    assert next(iter(plain.train))[1].numpy().tolist() == load_digits().target[:8].tolist()


def test_augmentation_only_on_training_batches(make_cfg):
    aug = {"flip": "horizontal", "rotation": 0.1, "zoom": 0.1, "translation": 0.1, "contrast": 0.2}
    bundle = digits(make_cfg, augment=aug, batch_size=256)
    steps = bundle.steps_per_epoch
    # seeded by the batch's number in the run: epoch 0 twice is the same, epoch 1 is new
    train = [[x.numpy() for x, _ in bundle.train_from_epoch(0).take(2 * steps)] for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*train, strict=True))
    resumed = [x.numpy() for x, _ in bundle.train_from_epoch(1).take(steps)]
    assert all(np.array_equal(a, b) for a, b in zip(train[0][steps:], resumed, strict=True))
    val = [[x.numpy() for x, _ in bundle.val] for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*val, strict=True))
    assert not np.allclose(train[0][0], train[0][steps])  # unshuffled: the same images, augmented anew
    plain = digits(make_cfg, batch_size=256)
    assert np.array_equal(next(iter(plain.train))[0], next(iter(plain.train))[0])
    # Augmented batches keep their shape and dtype.
    assert train[0][0].shape == (256, 8, 8, 1) and train[0][0].dtype == np.float32


def test_options_prefetch_off_parallel_calls_and_no_cache(make_cfg, collect):
    bundle = digits(make_cfg, prefetch=0, num_parallel_calls=2, cache=False, batch_size=500)
    x, y = collect(bundle.train)
    assert x.shape == (1437, 8, 8, 1) and len(y) == 1437


def test_element_shards_partition_the_training_split(make_cfg):
    seen = []
    for index in range(2):
        bundle = build_datasets(make_cfg(source="sklearn", name="digits", batch_size=128, shuffle_buffer=0),
                                shard=(index, 2))
        # Global batch 128 over 2 workers; steps stay ceil(1437 / 128) on every worker.
        assert (bundle.batch_size, bundle.steps_per_epoch) == (64, 12)
        assert bundle.spec.num_train == 1437  # the spec describes the whole training split
        batches = list(bundle.train.take(12))  # 768 > 719 examples: the shard repeats
        assert [int(x.shape[0]) for x, _ in batches] == [64] * 12
        size = 719 - index  # 1437 = 719 + 718
        seen.append(np.concatenate([x.numpy() for x, _ in batches])[:size])
    whole = np.concatenate([x.numpy() for x, _ in digits(make_cfg).train]).reshape(1437, -1)
    assert np.array_equal(np.sort(np.concatenate(seen).reshape(1437, -1), 0), np.sort(whole, 0))


def test_regression_targets_keep_their_width(tmp_path, make_cfg):
    path = tmp_path / "r.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(30, 3)), y=rng.normal(size=(30, 2)))
    bundle = build_datasets(make_cfg(source="npz", path=str(path), batch_size=8))
    x, y = next(iter(bundle.train))
    assert bundle.spec.task == "regression" and bundle.spec.label_dim == 2
    assert y.shape == (8, 2) and y.dtype.name == "float32" and bundle.spec.num_classes is None
