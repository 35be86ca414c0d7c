"""What a data source hands the pipeline, the ``SOURCES`` registry, and shared label helpers.

A source loader is a function ``load(data: DataConfig, seed: int) -> SourceData``
registered under its ``data.source`` name. It returns every example of the
source, before any split; the pipeline splits, normalizes and batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.errors import ConfigError
from kerasopt.registry import Registry

SOURCES: Registry = Registry("data source", key="data.source")

Task = Literal["classification", "regression"]


@dataclass
class Stream:
    """Examples read lazily (files, generated data) instead of held in memory.

    ``make(indices, shard)`` returns ``(dataset, count)``: a dataset of ``(x, y)``
    holding exactly the examples whose index is in the sorted array ``indices``
    (restricted to this worker's files when ``shard=(index, count)`` is given),
    and how many examples that is. ``shard`` is only passed when
    ``num_files >= count``; otherwise the pipeline shards ``indices`` itself.
    ``files`` lists what is read (their paths, sizes and mtimes key a disk cache).
    """

    make: Callable[[np.ndarray, Optional[tuple[int, int]]], tuple[tf.data.Dataset, int]]
    num_files: int = 1
    # The files read, for the disk cache's key (``kerasopt.data.cache``); none: no disk cache.
    files: list[str] = field(default_factory=list)
    # make() yields the examples in the order of ``indices`` (any order), not in file order.
    ordered: bool = False
    # ``epochs(indices) -> (epoch tensor -> dataset)``: the examples of ``indices`` in an order of
    # their own per epoch, seeded by the epoch (a memory-mapped table shuffles its row indices);
    # the pipeline then keeps no shuffle buffer.
    epochs: Optional[Callable[[np.ndarray], Callable[[tf.Tensor], tf.data.Dataset]]] = None
    # ``stats(indices) -> RunningStats`` of those examples, read directly instead of a tf.data pass.
    stats: Optional[Callable[[np.ndarray], object]] = None
    # The source is its own cache (memory-mapped files): no tf.data cache goes on top of it.
    own_cache: bool = False


@dataclass
class SourceData:
    """Every example of one source, in a fixed order.

    Labels are always in memory: the split, stratification and the spec need
    them. Features are either in memory (``x``) or streamed (``stream``).

    Example:
        >>> SourceData(y=np.array([0, 1]), x=np.zeros((2, 3), "float32")).num_examples
        2
    """

    y: np.ndarray
    x: Optional[np.ndarray] = None
    stream: Optional[Stream] = None
    origin: str = "the data"  # file, folder or data set name, for messages
    label_key: str = "data"  # config key blamed for bad labels
    task: Optional[Task] = None  # None: float labels -> regression, integer labels -> classification
    class_names: Optional[list[str]] = None
    num_classes: Optional[int] = None  # declared by the source (synthetic); else inferred from labels
    input_dtype: Literal["float32", "int32"] = "float32"
    vocab_size: Optional[int] = None
    # CSV: one-hot vocabularies must come from the training split only, so the
    # features are built once the split is known: encode(train_idx) -> (x, extras),
    # where x is an array, or a Stream for a table read from its memory-mapped cache.
    encode: Optional[Callable[[np.ndarray], tuple[np.ndarray, dict]]] = None
    extras: dict = field(default_factory=dict)

    @property
    def num_examples(self) -> int:
        return int(len(self.y))


def labels_from_array(y: np.ndarray, origin: str, key: str) -> tuple[np.ndarray, Task, Optional[list[str]]]:
    """Normalize a label array: ``(labels, task, class_names)``.

    Integers and booleans are class indices; one-hot float rows become class
    indices; other floats are regression targets (``(n,)`` or ``(n, k)``);
    strings are mapped to the indices of their sorted unique values.

    Example:
        >>> labels_from_array(np.array(["b", "a", "b"]), "f.npz", "data.y_key")[0].tolist()
        [1, 0, 1]
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind in "USO":
        names = sorted({str(v) for v in y.ravel()})
        lookup = {n: i for i, n in enumerate(names)}
        if y.ndim != 1:
            raise ConfigError(f"string labels in {origin} must be one per example. Received shape: {y.shape}", key=key)
        return np.array([lookup[str(v)] for v in y], np.int64), "classification", names
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind in "iu":
        if y.ndim != 1:
            raise ConfigError(
                f"integer labels in {origin} must be one class index per example. Received shape: {y.shape}", key=key
            )
        return y.astype(np.int64), "classification", None
    if y.dtype.kind == "f":
        y = y.astype(np.float32)
        # One-hot rows (exactly one 1, the rest 0) are class labels stored as floats.
        if y.ndim == 2 and y.shape[1] > 1 and len(y) and np.isin(y, (0.0, 1.0)).all() and (y.sum(1) == 1).all():
            return y.argmax(1).astype(np.int64), "classification", None
        if y.ndim > 2:
            raise ConfigError(
                f"regression targets in {origin} must be (n,) or (n, k). Received shape: {y.shape}", key=key
            )
        return y, "regression", None
    raise ConfigError(f"labels in {origin} have unsupported dtype {y.dtype}. Received: {y.dtype}", key=key)


def features_from_array(x: np.ndarray, origin: str, key: str) -> tuple[np.ndarray, Literal["float32", "int32"]]:
    """Cast an in-memory feature array: ``(x, input_dtype)``.

    Signed integer arrays of shape ``(n, length)`` are taken as token ids
    (``int32``); everything else is fed as ``float32`` (a ``(n,)`` array becomes
    ``(n, 1)``). Tabular integer data meant as numbers should be saved as floats.
    ``uint8`` pixels stay ``uint8`` in memory (4x smaller); the pipeline casts each example.

    Example:
        >>> features_from_array(np.ones((2, 5), "int64"), "f.npz", "data.x_key")[1]
        'int32'
    """
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"features in {origin} must be numeric. Received dtype: {x.dtype}", key=key)
    if x.ndim == 1:
        x = x[:, None]
    if x.dtype.kind == "i" and x.ndim == 2:
        if x.size and x.min() < 0:
            raise ConfigError(f"token ids in {origin} must be >= 0. Received: {int(x.min())}", key=key)
        return x.astype(np.int32), "int32"
    return (x if x.dtype == np.uint8 else x.astype(np.float32)), "float32"


def short_reason(err: BaseException, limit: int = 160) -> str:
    """The first line of an exception message, shortened for a one-line error.

    Example:
        >>> short_reason(OSError("no route to host\\ndetails"))
        'no route to host'
    """
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_written(fn: Callable) -> Callable:
    """``fn`` for ``Dataset.map``/``filter``/``interleave``, traced without AutoGraph's rewrite.

    The data functions use TensorFlow ops for their control flow (``tf.cond``, ``tf.map_fn``),
    so AutoGraph's source rewrite only costs time: the first costs ~0.3 s a process, then
    ~0.1 s a function, which was about a quarter of a second run's start-up after the
    TensorFlow import (12,000-JPEG folder, cache reused: build_datasets 1.8 s -> 1.3 s).
    """
    return tf.autograph.experimental.do_not_convert(fn)


def select_by_mask(ds: tf.data.Dataset, indices: np.ndarray, total: int) -> tf.data.Dataset:
    """Keep the elements of an ``(index, element)`` dataset whose index is in ``indices``.

    Example:
        >>> ds = tf.data.Dataset.range(5).enumerate()
        >>> [int(i) for i, _ in select_by_mask(ds, np.array([1, 3]), 5)]
        [1, 3]
    """
    mask = np.zeros(total, bool)
    mask[indices] = True
    keep = tf.constant(mask)
    if len(indices):
        # Stop reading after the last selected example (max_examples on a big file).
        ds = ds.take(int(indices.max()) + 1)
    return ds.filter(as_written(lambda i, _: tf.gather(keep, i)))
