"""``build_datasets``: a config's ``data:`` section -> batched ``tf.data`` pipelines and a ``DataSpec``.

Order of operations, per example then per batch::

    source -> max_examples -> seeded split -> [shard] -> cast, reshape, resize -> cache
      -> shuffle (train) -> batch -> augment (train) -> normalize -> prefetch

Decoded images (uint8) are cached before the float conversion, a quarter of
the bytes; ``kerasopt.data.cache`` decides memory, disk or no cache by size.

Augmentation (training batches only), each seeded by the batch's number in the run (so a resumed
run replays it): a random resized crop, flip/rotation/translation/zoom/contrast, RandAugment. A folder of images with
``random_resized_crop`` cuts its training crops from the files each epoch instead (the
source's own epochs, ``crops.decode_crop``), so its training split is not cached.

Normalization runs after augmentation because ``contrast`` clips to the
raw pixel range [0, 255]; its statistics come from the training split only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.config.data_schema import FileData
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.cache_store import CacheStore, shuffle_size
from kerasopt.data.crops import crop_batch, crop_settings
from kerasopt.data.prepare import Prep, build_prep
from kerasopt.data.randaugment import rand_augment
from kerasopt.data.source_base import SourceData, Stream
from kerasopt.data.sources import load_source
from kerasopt.data.sources_files import parallel
from kerasopt.data.spec import DataSpec
from kerasopt.data.split import shard_indices, split_indices
from kerasopt.data.transforms import (
    RunningStats,
    batch_transform,
    build_augmenter,
    check_finite,
    check_image,
    compute_normalizer,
)
from kerasopt.errors import ConfigError


@dataclass
class DataBundle:
    """What training needs from the data.

    ``steps_per_epoch`` is ``ceil(num_train / data.batch_size)``, the same on
    every worker. ``batch_size`` is this worker's batch: ``data.batch_size``, or
    ``data.batch_size // count`` when sharded (then ``train`` repeats forever
    and training must pass ``steps_per_epoch``).
    """

    train: tf.data.Dataset
    val: Optional[tf.data.Dataset]
    spec: DataSpec
    steps_per_epoch: int
    val_steps: int
    batch_size: int = 0
    epoch_stream: Optional[Callable[..., tf.data.Dataset]] = None

    def train_from_epoch(self, start_epoch: int = 0, *,
                         keys: Optional[Callable[[tf.Tensor], tf.Tensor]] = None) -> tf.data.Dataset:
        """An endless stream of training batches, epoch after epoch, starting at ``start_epoch``.

        Epoch ``e`` is shuffled with a seed derived from ``(seed, e)``, so the
        batches of epoch ``e`` are the same whether the run got there directly or
        was resumed at ``e`` — without replaying the earlier epochs. Training
        passes ``steps_per_epoch`` to ``fit``. Random augmentation is seeded by each
        batch's number in the run, so it is replayed too.

        ``keys``: ``epoch -> the number that seeds its order`` (a per-worker order under asynchronous
        training); the epoch itself by default.
        """
        if self.epoch_stream is None:
            return self.train.repeat()
        return self.epoch_stream(start_epoch, keys)


def _array_stats(x: np.ndarray, rows: np.ndarray) -> RunningStats:
    """Statistics of ``x[rows]`` as the training pipeline sees them (float32), a block of rows at a time."""
    s = RunningStats()
    rows = np.sort(np.asarray(rows, np.int64))
    for start in range(0, len(rows), 65536):
        s.update(np.asarray(x[rows[start:start + 65536]], np.float32))
    return s


def _normalizer(d, src: SourceData, x: Optional[np.ndarray], train_idx: np.ndarray,
                stats_ds: Callable[[], tf.data.Dataset]) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
    """``data.normalize``'s ``(offset, scale)`` and record, from the training split only, by the cheapest route."""
    if src.stream is not None and src.stream.stats is not None:
        # read directly (a memory-mapped table: float64 sums over the training rows, no tf.data pass)
        return src.stream.stats(train_idx).normalizer(d.normalize)
    if x is not None and x.ndim > 1 and x.dtype.kind in "fiu" and not d.reshape and not d.resize:
        # in memory and used as it is (cast to float32): summed from the array, no tf.data pass (1M rows: -1.1 s)
        return _array_stats(x, train_idx).normalizer(d.normalize)
    return compute_normalizer(stats_ds(), d.normalize)


def build_datasets(cfg: ExperimentConfig, *, shard: Optional[tuple[int, int]] = None) -> DataBundle:
    """Load, split, transform and batch ``cfg.data``; yields ``(x, y)`` batches.

    ``x`` is float32 (int32 for token ids); ``y`` is int32 class indices of shape
    ``(batch,)`` or float32 targets ``(batch,)``/``(batch, k)``. ``shard=(index,
    count)`` gives worker ``index`` its part of the training data (by file when
    there are at least ``count`` files, else by example).

    Example:
        >>> cfg = ExperimentConfig(data={"source": "sklearn", "name": "digits", "batch_size": 128})
        >>> bundle = build_datasets(cfg)
        >>> bundle.spec.num_train, bundle.spec.num_val, bundle.steps_per_epoch
        (1437, 360, 12)
    """
    d = cfg.data
    batch = _worker_batch(d.batch_size, shard)
    ex = _load_split(cfg)
    p = _prepare(cfg, ex, shard)
    tr = _worker_train(ex, p, shard)
    normalizer = _train_normalizer(d, ex, p, tr, shard)
    tr = _shuffle(cfg, ex, p, tr)
    train, epoch_stream = _train_batches(cfg, ex, p, tr, shard, batch, normalizer)
    val = _val_batches(ex, p, batch, normalizer, d.prefetch)

    ex.extras["cache"] = p.store.plan.as_dict()
    ex.extras.update(origin=ex.src.origin, split={"seed": cfg.seed, "stratified": ex.stratified, "shard": shard})
    spec = _spec(ex.src, ex.y, ex.task, ex.train_idx, len(ex.val_idx), p.input_shape, ex.x, ex.extras)
    return DataBundle(
        train=train, val=val, spec=spec, steps_per_epoch=math.ceil(p.n_train / d.batch_size),
        val_steps=math.ceil(len(ex.val_idx) / batch), batch_size=batch, epoch_stream=epoch_stream,
    )


@dataclass
class _Examples:
    """The source's examples after the split: inputs (``x``, or ``src.stream`` when streamed), labels, indices."""

    src: SourceData
    x: Optional[np.ndarray]
    y: np.ndarray
    task: str
    train_idx: np.ndarray
    val_idx: np.ndarray
    stratified: bool
    extras: dict  # becomes ``spec.extras``; each step records what it decided

    def elements(self, indices: np.ndarray, file_shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        """``(x, y)`` elements of ``indices`` (raw, before ``Prep``) and how many there are."""
        if self.x is not None:
            return tf.data.Dataset.from_tensor_slices((self.x[indices], self.y[indices])), len(indices)
        return self.src.stream.make(indices, file_shard)


@dataclass
class _Prepared:
    """How the examples are prepared, augmented and cached (shared by training and validation)."""

    raw_train: tf.data.Dataset  # every training example, raw (a class-sorted folder's files permuted once)
    n_train: int
    prep: Prep
    input_shape: tuple
    crop_files: bool  # random resized crops cut from a folder's files each epoch (its training split uncached)
    seeded: Optional[Callable]  # the seeded batch augmentation, ``None`` when none is on
    store: CacheStore
    on_batch: Optional[Callable]  # per-batch preparation when the cache holds raw (uint8) examples
    calls: int  # num_parallel_calls


@dataclass
class _WorkerTrain:
    """This worker's training examples: cached, the statistics' source, then shuffled (``_shuffle``)."""

    cached: tf.data.Dataset  # after the cache, in split order
    stats: tf.data.Dataset  # what the statistics read: every worker's examples, even when sharded
    count: int
    indices: np.ndarray  # this worker's training indices (all of them when sharded by file)
    train: tf.data.Dataset  # ``cached``, shuffled when ``buffer > 0``
    buffer: int = 0
    by_index: bool = False  # the source orders each epoch itself (index shuffles), no shuffle buffer


def _load_split(cfg: ExperimentConfig) -> _Examples:
    """Load the source, cut ``data.max_examples``, split (seeded), then encode and check the inputs."""
    d = cfg.data
    src = load_source(cfg)
    n = min(src.num_examples, d.max_examples or src.num_examples)
    if n == 0:
        raise ConfigError(f"{src.origin} has no examples", key="data.path" if isinstance(d, FileData) else "data")
    y, task = _labels(src, n)
    train_idx, val_idx, stratified = split_indices(y, d.validation_split, cfg.seed, stratify=task == "classification")
    if not len(train_idx):
        raise ConfigError(
            f"leaves 0 of {n} examples for training. Received: validation_split={d.validation_split}",
            key="data.validation_split",
        )
    extras: dict = dict(src.extras)
    x = src.x
    if src.encode is not None:
        x, more = src.encode(train_idx)
        extras.update(more)
        if isinstance(x, Stream):  # a table too big for memory, read from its memory-mapped cache
            src, x = dataclasses.replace(src, stream=x, encode=None), None
    if x is not None:
        x = x[:n]
        if x.dtype.kind == "f":
            step = max(1, (16 << 20) // max(1, x[:1].nbytes))  # 16 MB of rows at a time
            check_finite(((s, x[s:s + step]) for s in range(0, len(x), step)), src.origin)
    return _Examples(src, x, y, task, train_idx, val_idx, stratified, extras)


def _prepare(cfg: ExperimentConfig, ex: _Examples, shard: Optional[tuple[int, int]]) -> _Prepared:
    """The per-example preparation, the seeded augmentation and the cache plan."""
    d, src = cfg.data, ex.src
    calls = parallel(d.num_parallel_calls)
    label_dtype = tf.int32 if ex.task == "classification" else tf.float32
    raw_train, n_train = ex.elements(ex.train_idx, None)
    prep = build_prep(cfg, src, tuple(raw_train.element_spec[0].shape), label_dtype, calls)
    input_shape = tuple(prep.elements(raw_train).element_spec[0].shape)
    if not all(input_shape):
        raise ConfigError(
            f"examples from {src.origin} have varying shape {input_shape}; set data.resize: [height, width]",
            key="data.resize",
        )
    # random resized crops of a folder's training files are cut from the files each epoch, uncached
    crop_files = src.stream is not None and src.stream.epochs is not None and not src.stream.own_cache
    seeded = _seeded_augment(d.augment, input_shape, raw_train.element_spec[0].dtype, ex.x, ex.train_idx, cfg.seed,
                              shard, crop_files, ex.extras)

    store = CacheStore(cfg, src, raw_train, prep, (0 if crop_files else n_train) + len(ex.val_idx), shard,
                       cache_train=not crop_files)
    # uint8 images stay uint8 through the cache and the shuffle buffer; each batch is converted.
    on_batch = prep.on_batch if store.early else None
    if store.early and src.stream.ordered and d.shuffle_buffer > 0:
        # A bounded shuffle buffer over a class-sorted folder would give one-class batches: the file
        # order is permuted once (seeded) before decoding, as image_dataset_from_directory does.
        raw_train, _ = ex.elements(np.random.default_rng(cfg.seed).permutation(ex.train_idx), None)
    return _Prepared(raw_train, n_train, prep, input_shape, crop_files, seeded, store, on_batch, calls)


def _worker_train(ex: _Examples, p: _Prepared, shard: Optional[tuple[int, int]]) -> _WorkerTrain:
    """This worker's training examples through the cache: all of them, or its shard (by file or by example)."""
    if shard is None:
        train = p.store.ready(p.raw_train, "train", ex.train_idx, None)
        return _WorkerTrain(cached=train, stats=train, count=p.n_train, indices=ex.train_idx, train=train)
    full_train = p.prep.elements(p.raw_train)  # only for the statistics, over every worker's examples
    by_file = ex.src.stream is not None and ex.src.stream.num_files >= shard[1] > 1
    indices = ex.train_idx if by_file else shard_indices(ex.train_idx, shard)
    train, n_local = ex.elements(indices, shard if by_file else None)
    train = p.store.ready(train, "train", indices, shard)
    if n_local == 0:
        raise ConfigError(
            f"worker {shard[0]} of {shard[1]} gets no training examples ({p.n_train} in all)", key="data"
        )
    return _WorkerTrain(cached=train, stats=full_train, count=n_local, indices=indices, train=train)


def _train_normalizer(d, ex: _Examples, p: _Prepared, tr: _WorkerTrain,
                      shard: Optional[tuple[int, int]]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``data.normalize``'s ``(offset, scale)`` (``None`` for ``none``), recorded in ``extras["normalize"]``."""
    if d.normalize == "none":
        return None
    # Without sharding the tf.data pass (when there is one) also fills the cache, so epoch 1 reads no file twice.
    raw = p.store.early and shard is None  # the cached examples are raw (uint8): prepared for the statistics
    normalizer, ex.extras["normalize"] = _normalizer(
        d, ex.src, ex.x, ex.train_idx, lambda: p.prep.elements(tr.stats) if raw else tr.stats)
    return normalizer


def _shuffle(cfg: ExperimentConfig, ex: _Examples, p: _Prepared, tr: _WorkerTrain) -> _WorkerTrain:
    """``tr`` with its training examples shuffled (seeded, reshuffled each epoch); recorded in ``extras["shuffle"]``."""
    d, src = cfg.data, ex.src
    # A source that orders each epoch itself (index shuffles) needs no shuffle buffer.
    by_index = src.stream is not None and src.stream.epochs is not None and (d.shuffle_buffer > 0 or p.crop_files)
    buffer = 0 if by_index else shuffle_size(d.shuffle_buffer, tr.count, p.store.bytes_per_example)
    ex.extras["shuffle"] = {"buffer": buffer, "of": tr.count, "configured": d.shuffle_buffer,
                            **({"by_index": True} if by_index else {})}
    train = tr.cached
    if buffer > 0:
        train = train.shuffle(buffer, seed=cfg.seed, reshuffle_each_iteration=True)
    return dataclasses.replace(tr, train=train, buffer=buffer, by_index=by_index)


def _train_batches(cfg: ExperimentConfig, ex: _Examples, p: _Prepared, tr: _WorkerTrain,
                   shard: Optional[tuple[int, int]], batch: int,
                   normalizer: Optional[tuple]) -> tuple[tf.data.Dataset, Optional[Callable[[int], tf.data.Dataset]]]:
    """``bundle.train`` (augmented, normalized, prefetched batches) and ``bundle.epoch_stream`` (unsharded only)."""
    d, src = cfg.data, ex.src
    train = tr.train
    # a source's own epochs are prepared like its other examples (uint8 images: on each batch)
    prepared = (lambda ds: ds) if p.store.early else p.prep.elements
    if shard is not None and tr.by_index:
        # every pass over this worker's rows in a new order seeded by (seed, pass), endless like repeat()
        one_pass = src.stream.epochs(tr.indices)
        train = prepared(tf.data.Dataset.range(2**62).flat_map(one_pass))
    elif shard is not None:
        train = train.repeat()  # every worker runs steps_per_epoch steps even when its shard is smaller
    transform = batch_transform(normalizer, p.on_batch, p.seeded)
    epoch_stream = None
    # crops and RandAugment seed each batch by its number in the run: training batches come numbered
    numbered = p.seeded is not None
    finish = lambda ds: _finish(ds, transform, d.prefetch, p.calls, numbered)  # noqa: E731
    steps = math.ceil(tr.count / batch)
    if tr.by_index and shard is None:
        one_epoch = src.stream.epochs(ex.train_idx)
        epoch_stream = _epoch_stream_of(lambda e: prepared(one_epoch(e)), batch, finish, steps, numbered)
        train = prepared(one_epoch(tf.constant(0, tf.int64)))  # bundle.train: epoch 0's order
    elif shard is None:
        epoch_stream = _epoch_stream(tr.cached, batch, tr.buffer, cfg.seed, finish, steps, numbered)
    train = train.batch(batch)
    return finish(train.enumerate() if numbered else train), epoch_stream


def _val_batches(ex: _Examples, p: _Prepared, batch: int, normalizer: Optional[tuple],
                 prefetch: int) -> Optional[tf.data.Dataset]:
    """The validation batches (never shuffled or augmented), ``None`` without a validation split."""
    if not len(ex.val_idx):
        return None
    val, _ = ex.elements(ex.val_idx, None)
    val = p.store.ready(val, "val", ex.val_idx, None).batch(batch)
    return _finish(val, batch_transform(normalizer, p.on_batch), prefetch, p.calls)


_EPOCH_SEED_STRIDE = 1_000_003  # a prime: (seed, epoch) pairs map to distinct shuffle seeds


def _batches(ds: tf.data.Dataset, batch: int, epoch: tf.Tensor, steps: int, numbered: bool) -> tf.data.Dataset:
    """One epoch's batches; ``numbered``: as ``(number in the run, batch)``, from ``epoch * steps``."""
    ds = ds.batch(batch)
    return ds.enumerate(epoch * steps) if numbered else ds


def _epochs(start_epoch: int, keys: Optional[Callable[[tf.Tensor], tf.Tensor]]) -> tf.data.Dataset:
    """The epoch numbers from ``start_epoch`` on, each mapped through ``keys`` when given."""
    epochs = tf.data.Dataset.range(int(start_epoch), 2**62)
    return epochs if keys is None else epochs.map(keys)


def _epoch_stream(base: tf.data.Dataset, batch: int, buffer: int, seed: int,
                  finish: Callable[[tf.data.Dataset], tf.data.Dataset], steps: int,
                  numbered: bool) -> Callable[[int], tf.data.Dataset]:
    """``start_epoch -> endless batches`` with a per-epoch shuffle seed (the cache is shared by all epochs)."""

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        ds = base
        if buffer > 0:
            ds = ds.shuffle(buffer, seed=epoch * _EPOCH_SEED_STRIDE + seed, reshuffle_each_iteration=False)
        return _batches(ds, batch, epoch, steps, numbered)

    def stream(start_epoch: int = 0, keys=None) -> tf.data.Dataset:
        return finish(_epochs(start_epoch, keys).flat_map(one_epoch))

    return stream


def _epoch_stream_of(one_epoch: Callable[[tf.Tensor], tf.data.Dataset], batch: int,
                     finish: Callable[[tf.data.Dataset], tf.data.Dataset], steps: int,
                     numbered: bool) -> Callable[[int], tf.data.Dataset]:
    """``start_epoch -> endless batches`` for a source that orders each epoch itself (``Stream.epochs``)."""

    def stream(start_epoch: int = 0, keys=None) -> tf.data.Dataset:
        return finish(_epochs(start_epoch, keys).flat_map(lambda e: _batches(one_epoch(e), batch, e, steps, numbered)))

    return stream


def _worker_batch(batch_size: int, shard: Optional[tuple[int, int]]) -> int:
    if shard is None:
        return batch_size
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (index, count) with 0 <= index < count. Received: shard={shard}")
    if batch_size % count:
        raise ConfigError(
            f"the global batch must split evenly over {count} workers. Received: batch_size={batch_size}",
            key="data.batch_size",
        )
    return batch_size // count


def _seeded_augment(aug, input_shape: tuple, raw_dtype: tf.DType, x: Optional[np.ndarray], train_idx: np.ndarray,
                    seed: int, shard: Optional[tuple[int, int]], crop_files: bool, extras: dict) -> Optional[Callable]:
    """``(x, batch number) -> x``: the batch-level random resized crop (unless cut from the files), the
    flip/rotation/translation/zoom/contrast keys, then RandAugment, seeded by the batch number; ``None``
    when none is on. Records what it uses in ``extras``."""
    layers = build_augmenter(aug, flip=not crop_files)  # a folder's file crops are flipped as decoded
    if aug.enabled:
        check_image(input_shape, "data.augment", "augmentation", aug.model_dump(exclude_defaults=True))
    crop = crop_settings(aug)
    if crop is not None:
        check_image(input_shape, "data.augment.random_resized_crop", "random_resized_crop",
                    aug.random_resized_crop.model_dump(exclude_defaults=True))
        extras["random_resized_crop"] = {"scale": list(crop[0]), "ratio": list(crop[1]),
                                         "from": "each file, each epoch" if crop_files else "each batch",
                                         **({"flip": "with each file's crop"} if crop_files and aug.flip != "none"
                                            else {})}
        crop = None if crop_files else crop
    ra = None
    if aug.randaugment is not None:
        ra, extras["randaugment"] = _randaugment(aug.randaugment, input_shape, raw_dtype, x, train_idx)
    if crop is None and layers is None and ra is None:
        return None
    # workers of a sharded run each draw their own (their batches differ too)
    base = tf.constant((int(seed) * 1_000_003 + (shard[0] if shard else 0)) % (1 << 62), tf.int64)

    def apply(images: tf.Tensor, number: tf.Tensor) -> tf.Tensor:
        key = tf.stack([base, tf.cast(number, tf.int64)])
        if crop is not None:
            images = crop_batch(images, tf.random.experimental.stateless_fold_in(key, 1), *crop)
        if layers is not None:
            images = layers(images, tf.random.experimental.stateless_fold_in(key, 2))
        return images if ra is None else ra(images, key)

    return apply


def _randaugment(ra, input_shape: tuple, raw_dtype: tf.DType, x: Optional[np.ndarray],
                 train_idx: np.ndarray) -> tuple[Callable, dict]:
    """``(x, seed) -> x`` for ``data.augment.randaugment``, and its record (the value range used)."""
    check_image(input_shape, "data.augment.randaugment", "RandAugment", ra.model_dump(exclude_defaults=True))
    if ra.value_range is not None:
        value_range, origin = tuple(ra.value_range), "configured"
    elif raw_dtype == tf.uint8:
        value_range, origin = (0.0, 255.0), "8-bit images"
    elif x is not None:
        stats = _array_stats(x, train_idx)
        value_range, origin = (float(np.min(stats.low)), float(np.max(stats.high))), "training split"
    else:
        raise ConfigError(f"the pixel range of {raw_dtype.name} images is not known before training; set "
                          f"data.augment.randaugment.value_range: [low, high] (e.g. [0, 1])",
                          key="data.augment.randaugment.value_range")
    return (lambda images, key: rand_augment(images, key, ra, value_range)), {
        "value_range": list(value_range), "from": origin}


def _labels(src: SourceData, n: int) -> tuple[np.ndarray, str]:
    y = np.asarray(src.y)[:n]
    task = src.task or ("regression" if y.dtype.kind == "f" else "classification")
    if task == "regression":
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            first = int(np.argwhere(~np.isfinite(y.reshape(n, -1)))[0][0])
            raise ConfigError(f"{src.origin} has NaN or Inf targets, the first in example {first}", key="data")
        return y, task
    y = y.astype(np.int64)
    if y.min() < 0:
        first = int(np.argmax(y < 0))
        raise ConfigError(
            f"class labels must be >= 0; {src.origin} has one in example {first}. Received: {int(y[first])}",
            key=src.label_key,
        )
    # A source that declares its classes (names, or a count) must not hand out a label past them:
    # the head is built with that many units and the loss would index out of range.
    declared = src.num_classes or (len(src.class_names) if src.class_names else None)
    if declared is not None and len(y) and int(y.max()) >= declared:
        first = int(np.argmax(y >= declared))
        raise ConfigError(
            f"class labels must be < {declared} (the number of classes {src.origin} declares); example {first} "
            f"has {int(y[first])}. Received: {int(y[first])}",
            key=src.label_key,
        )
    return y.astype(np.int32), task


def _finish(ds: tf.data.Dataset, fn, prefetch: int, calls: Optional[int], numbered: bool = False) -> tf.data.Dataset:
    """``fn`` over the batches (``numbered``: ``(number, (x, y))`` elements, the number passed on), then prefetch."""
    if numbered:
        ds = ds.map(lambda i, b: fn(b[0], b[1], i), num_parallel_calls=calls)
    elif fn is not None:
        ds = ds.map(fn, num_parallel_calls=calls)
    if prefetch != 0:
        ds = ds.prefetch(tf.data.AUTOTUNE if prefetch == -1 else prefetch)
    return ds


def _spec(src, y, task, train_idx, num_val, input_shape, x, extras) -> DataSpec:
    num_classes = class_counts = None
    if task == "classification":
        num_classes = src.num_classes or max(len(src.class_names or []), int(y.max()) + 1)
        class_counts = np.bincount(y[train_idx], minlength=num_classes).tolist()
    vocab = src.vocab_size
    if src.input_dtype == "int32" and vocab is None and x is not None:
        vocab = int(x.max()) + 1
    return DataSpec(
        input_shape=tuple(int(s) for s in input_shape), task=task, num_classes=num_classes,
        num_train=len(train_idx), num_val=num_val, input_dtype=src.input_dtype, vocab_size=vocab,
        class_names=src.class_names, class_counts=class_counts,
        label_dim=1 if y.ndim == 1 else int(y.shape[1]), extras=extras,
    )
