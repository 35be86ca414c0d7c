"""Streamed file sources: a folder of class sub-folders of images, and TFRecord files."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.config.data_schema import DataConfig
from kerasopt.data.source_base import SOURCES, SourceData, Stream, labels_from_array, short_reason
from kerasopt.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def parallel(n: int) -> int:
    """``num_parallel_calls`` from the config: -1 means ``tf.data.AUTOTUNE``."""
    return tf.data.AUTOTUNE if n == -1 else max(1, n)


def decode_image(data: tf.Tensor, size: list[int], channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG bytes -> float32 ``(height, width, channels)`` with values 0..255."""
    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    image = tf.image.resize(image, size, method="bilinear")
    image.set_shape([size[0], size[1], channels])
    return image


@SOURCES.register("image_dir")
def load_image_dir(data: DataConfig, seed: int) -> SourceData:
    """``path/<class name>/*.png|jpg``: one sub-folder per class (sorted names -> class indices).

    Images are decoded in a parallel ``map`` to ``data.image_size`` (default:
    the size of the first image) with ``data.channels``.

    Example:
        >>> # photos/cat/1.png, photos/dog/7.jpg, ...
        >>> # load_image_dir(DataConfig(source="image_dir", path="photos", channels=3), seed=0).class_names
        >>> # -> ['cat', 'dog']
    """
    root = Path(str(data.path))
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "not found"
        raise ConfigError(f"image folder {what}: {root}", key="data.path")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f" ({', '.join(classes)})" if classes else ""
        raise ConfigError(
            f"{root} has {len(classes)} class folder(s){found}; image_dir needs one sub-folder per class "
            f"and at least two classes",
            key="data.path",
        )
    files: list[str] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = sorted(
            str(p) for p in (root / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not found:
            raise ConfigError(f"class folder {root / name} has no PNG/JPEG images", key="data.path")
        files += found
        labels += [index] * len(found)
    size = list(data.image_size) if data.image_size else _first_image_size(files[0])
    channels = data.channels
    paths = np.array(files)
    y = np.array(labels, np.int64)
    calls = parallel(data.num_parallel_calls)

    def make(indices: np.ndarray, shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        ds = tf.data.Dataset.from_tensor_slices((paths[indices], y[indices]))

        def decode(file: tf.Tensor, label: tf.Tensor):
            return decode_image(tf.io.read_file(file), size, channels), label

        return ds.map(decode, num_parallel_calls=calls), len(indices)

    return SourceData(
        y=y, stream=Stream(make), origin=str(root), label_key="data.path", task="classification",
        class_names=classes, extras={"image_size": size, "channels": channels},
    )


def _first_image_size(path: str) -> list[int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
    except Exception as e:  # PIL raises many types for a bad file
        raise ConfigError(f"could not read image {path}: {short_reason(e)}", key="data.path") from None
    return [height, width]


def _tfrecord_files(pattern: str) -> list[str]:
    if any(c in pattern for c in "*?["):
        files = sorted(glob.glob(pattern))
        if not files:
            raise ConfigError(f"no TFRecord files match {pattern}", key="data.path")
        return files
    if not Path(pattern).is_file():
        what = "is a folder, not a file" if Path(pattern).is_dir() else "not found"
        raise ConfigError(f"TFRecord file {what}: {pattern}", key="data.path")
    return [pattern]


def _parse_spec(data: DataConfig) -> dict:
    spec = {}
    for name, f in data.features.items():
        key = f"data.features.{name}"
        if f.dtype in ("string", "image"):
            if f.dtype == "image" and len(f.shape) != 3:
                raise ConfigError(f"image features need shape [height, width, channels]. Received: {f.shape}", key=key)
            if f.dtype == "string" and f.shape:
                raise ConfigError(f"string features are scalars; use shape []. Received: {f.shape}", key=key)
            spec[name] = tf.io.FixedLenFeature([], tf.string)
        else:
            spec[name] = tf.io.FixedLenFeature(f.shape, tf.float32 if f.dtype == "float32" else tf.int64)
    return spec


@SOURCES.register("tfrecord")
def load_tfrecord(data: DataConfig, seed: int) -> SourceData:
    """``tf.train.Example`` records from a file or a glob, parsed with ``data.features``.

    ``label_key`` is the label (int64 -> classes, float32 -> regression, string
    -> sorted class names). The other features are the input: one ``image``
    (encoded PNG/JPEG, decoded and resized to its ``shape``), one int64 vector
    (token ids), or numeric features concatenated into one float32 vector.
    Several files are sharded per worker by file.

    Example:
        >>> # data: {source: tfrecord, path: "train-*.tfrecord", label_key: label,
        >>> #        features: {image: {dtype: image, shape: [32, 32, 3]}, label: {dtype: int64}}}
    """
    files = _tfrecord_files(str(data.path))
    spec = _parse_spec(data)
    label, feats = data.label_key, data.features
    inputs = [n for n in feats if n != label]
    if not inputs:
        raise ConfigError(f"needs at least one input feature besides the label '{label}'", key="data.features")
    for n in inputs:
        if feats[n].dtype == "string":
            raise ConfigError("string features can only be the label", key=f"data.features.{n}")
        if feats[n].dtype == "image" and len(inputs) > 1:
            raise ConfigError(f"an image feature must be the only input; got {', '.join(inputs)}", key="data.features")
    if feats[label].dtype == "image":
        raise ConfigError("the label cannot be an image", key="data.label_key")
    tokens = len(inputs) == 1 and feats[inputs[0]].dtype == "int64" and len(feats[inputs[0]].shape) == 1
    numeric = [n for n in inputs if feats[n].dtype != "image"]
    pattern = str(data.path)

    # One pass over labels and numeric inputs (no image decoding): counts per
    # file, labels for the split, NaN/Inf and token-id checks up front.
    pre = {n: spec[n] for n in [label, *numeric]}
    counts, label_parts, max_id = [], [], -1
    for file in files:
        n_file = 0
        try:
            for batch in tf.data.TFRecordDataset(file).batch(4096).map(lambda s: tf.io.parse_example(s, pre)):
                arrays = {k: v.numpy() for k, v in batch.items()}
                n_file += len(arrays[label])
                label_parts.append(arrays[label])
                for n in numeric:
                    if feats[n].dtype == "float32" and not np.isfinite(arrays[n]).all():
                        raise ConfigError(f"NaN or Inf in feature '{n}' of {file}", key="data")
                if tokens:
                    max_id = max(max_id, int(arrays[inputs[0]].max(initial=-1)))
                    if arrays[inputs[0]].size and arrays[inputs[0]].min() < 0:
                        raise ConfigError(f"token ids in {file} must be >= 0", key=f"data.features.{inputs[0]}")
        except tf.errors.OpError as e:
            raise ConfigError(
                f"could not parse {file} as tf.train.Example records with data.features: {short_reason(e.message)}",
                key="data.features",
            ) from None
        counts.append(n_file)
    raw = np.concatenate(label_parts) if label_parts else np.zeros((0,), np.int64)
    if raw.dtype == object:
        raw = np.array([b.decode("utf-8", "replace") for b in raw])
    y, task, class_names = labels_from_array(raw, pattern, "data.label_key")
    if task == "regression" and not np.isfinite(y).all():
        raise ConfigError(f"NaN or Inf in label '{label}' of {pattern}", key="data")

    # String labels: index of the name in a constant (no lookup-table resource, so the
    # dataset graph stays serializable for tf.distribute).
    names_t = tf.constant(class_names) if class_names is not None else None
    calls = parallel(data.num_parallel_calls)

    def parse(serialized: tf.Tensor):
        ex = tf.io.parse_single_example(serialized, spec)
        if names_t is not None:
            target = tf.argmax(tf.cast(tf.equal(names_t, ex[label]), tf.int32), output_type=tf.int64)
        else:
            target = tf.reshape(ex[label], y.shape[1:])
        if feats[inputs[0]].dtype == "image":
            h, w, c = feats[inputs[0]].shape
            return decode_image(ex[inputs[0]], [h, w], c), target
        if tokens:
            return tf.cast(ex[inputs[0]], tf.int32), target
        parts = [tf.reshape(tf.cast(ex[n], tf.float32), [-1]) for n in inputs]
        return (parts[0] if len(parts) == 1 else tf.concat(parts, 0)), target

    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def make(indices: np.ndarray, shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        mask = np.zeros(len(y), bool)
        mask[indices] = True
        ids = range(len(files)) if shard is None else range(shard[0], len(files), shard[1])
        # Skip files holding none of the selected examples (validation-only, or past max_examples).
        ids = [k for k in ids if mask[offsets[k]:offsets[k + 1]].any()]
        keep = tf.constant(mask)
        names = [files[k] for k in ids] or files[:1]
        starts = np.array([offsets[k] for k in ids] or [0], np.int64)
        ends = np.array([offsets[k + 1] for k in ids] or [0], np.int64)  # empty range: this worker reads nothing
        ds = tf.data.Dataset.from_tensor_slices((names, starts, ends)).interleave(
            lambda f, a, b: tf.data.Dataset.zip((tf.data.Dataset.range(a, b), tf.data.TFRecordDataset(f))),
            cycle_length=min(len(names), 16), num_parallel_calls=calls, deterministic=True,
        )
        ds = ds.filter(lambda i, _: tf.gather(keep, i)).map(lambda _, s: parse(s), num_parallel_calls=calls)
        return ds, int(sum(mask[offsets[k]:offsets[k + 1]].sum() for k in ids))

    return SourceData(
        y=y, stream=Stream(make, num_files=len(files)), origin=pattern, label_key="data.label_key",
        task=task, class_names=class_names, input_dtype="int32" if tokens else "float32",
        vocab_size=max_id + 1 if tokens else None, extras={"files": len(files)},
    )
