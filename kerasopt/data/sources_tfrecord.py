"""TFRecord files of ``tf.train.Example`` records, streamed and sharded by file.

Before training, one pass over every file reads the labels and numeric inputs
(counts, the split, NaN/Inf and token-id checks) and decodes every image
feature once, so a wrong ``data.features`` spec, a truncated file or an image
that does not decode is reported up front, naming the file (and record). What
it found per file is kept (``shard_manifest``): the next run reads only the
files that are new or changed.
"""

from __future__ import annotations

import glob
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.config.data_schema import DataConfig
from kerasopt.data.checkprogress import CheckProgress
from kerasopt.data.filecheck import check_images, decode_reason, handle_bad, tf_reason
from kerasopt.data.shard_manifest import ShardManifest, ShardScan, shard_key
from kerasopt.data.source_base import SOURCES, SourceData, Stream, as_written, labels_from_array
from kerasopt.data.sources_files import DECODE_CHUNK, decode_image, parallel
from kerasopt.errors import ConfigError

_KINDS = {"float_list": "float32", "int64_list": "int64", "bytes_list": "string/image"}


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


def _first_record_feature(file: str, name: str) -> str:
    """What the first record of ``file`` holds under ``name``, in words."""
    try:
        raw = next(iter(tf.data.TFRecordDataset(file).take(1))).numpy()
        feats = tf.train.Example.FromString(raw).features.feature
    except Exception:  # noqa: BLE001 - only used to word an error
        return "its first record could not be read as a tf.train.Example"
    if name not in feats:
        return f"the first record has no feature '{name}' (it has: {', '.join(sorted(feats)) or 'none'})"
    kind = feats[name].WhichOneof("kind")
    count = len(getattr(feats[name], kind).value) if kind else 0
    return f"the first record holds {kind} ({_KINDS.get(kind, 'empty')}) with {count} value(s)"


def _spec_error(file: str, data: DataConfig, err: tf.errors.OpError) -> ConfigError:
    """A parse failure as one line naming the file, the feature, what was declared and what is there."""
    reason = tf_reason(err.message, limit=120)
    match = re.search(r"(?:Key|Feature): ([^\s,]+)", reason)
    name = match.group(1) if match and match.group(1) in data.features else None
    if name is None:
        return ConfigError(
            f"could not parse {file} as tf.train.Example records with data.features: {reason}", key="data.features"
        )
    f = data.features[name]
    return ConfigError(
        f"{file} does not match data.features.{name} (dtype {f.dtype}, shape {f.shape}): "
        f"{_first_record_feature(file, name)}. TensorFlow says: {reason}",
        key="data.features",
    )


def _scan(file: str, pre: dict, label: str, numeric: list[str], data: DataConfig, tokens: bool):
    """Labels of every record of ``file``, with the NaN/Inf and token-id checks; ``(labels, max token id)``."""
    feats, parts, max_id = data.features, [], -1
    for batch in tf.data.TFRecordDataset(file).batch(4096).map(lambda s: tf.io.parse_example(s, pre)):
        arrays = {k: v.numpy() for k, v in batch.items()}
        parts.append(arrays[label])
        for n in numeric:
            if feats[n].dtype == "float32" and not np.isfinite(arrays[n]).all():
                raise ConfigError(f"NaN or Inf in feature '{n}' of {file}", key="data")
        if tokens:
            ids = arrays[numeric[0]]
            max_id = max(max_id, int(ids.max(initial=-1)))
            if ids.size and ids.min() < 0:
                raise ConfigError(f"token ids in {file} must be >= 0", key=f"data.features.{numeric[0]}")
    return (np.concatenate(parts) if parts else np.zeros((0,), pre[label].dtype.as_numpy_dtype)), max_id


def _scan_file(file: str, data: DataConfig, spec: dict, pre: dict, numeric: list[str], tokens: bool,
               image: Optional[str]) -> ShardScan:
    """``_scan`` of one file and, for an image input, every image decoded once (``filecheck``)."""
    try:
        labels, file_max = _scan(file, pre, data.label_key, numeric, data, tokens)
    except tf.errors.DataLossError as e:  # truncated, or not a TFRecord file at all
        empty = np.zeros((0,), pre[data.label_key].dtype.as_numpy_dtype)
        return ShardScan(empty, unreadable=tf_reason(e.message))
    except tf.errors.OpError as e:  # the records are fine; data.features does not describe them
        raise _spec_error(file, data, e) from None
    bad = np.zeros(0, np.int64)
    if image is not None:
        read = lambda s: tf.io.parse_single_example(s, {image: spec[image]})[image]  # noqa: E731
        pairs = tf.data.TFRecordDataset(file).enumerate()
        channels = data.features[image].shape[2]
        bad = check_images(pairs, len(labels), channels, parallel(data.num_parallel_calls), read=read).bad
    return ShardScan(labels, file_max, bad)


def _check_shards(all_files: list[str], data: DataConfig, spec: dict, pre: dict, numeric: list[str], tokens: bool,
                  image: Optional[str]) -> tuple[list[ShardScan], dict]:
    """``_scan_file`` of every file not scanned before with the same size, mtime_ns and parse settings.

    Returns the scans in file order and the summary for ``extras["file_check"]`` (counted in files).
    """
    started = time.perf_counter()
    features = {n: f.model_dump() for n, f in data.features.items()}
    shards = ShardManifest(shard_key(str(data.path), features, data.label_key))
    scans = shards.lookup(all_files)
    progress = CheckProgress(sum(s is None for s in scans), "TFRecord file", started=started)
    try:
        for k, file in enumerate(all_files):
            if scans[k] is None:
                scans[k] = _scan_file(file, data, spec, pre, numeric, tokens, image)
                shards.put(file, scans[k])
                progress.advance(1)
    finally:
        shards.save()  # what was scanned before an error is kept; the failing file has no entry
    return scans, progress.close(reused=shards.reused)


@SOURCES.register("tfrecord")
def load_tfrecord(data: DataConfig, seed: int) -> SourceData:
    """``tf.train.Example`` records from a file or a glob, parsed with ``data.features``.

    ``label_key`` is the label (int64 -> classes, float32 -> regression, string
    -> sorted class names). The other features are the input: one ``image``
    (encoded PNG/JPEG, decoded and resized to its ``shape``), one int64 vector
    (token ids), or numeric features concatenated into one float32 vector.
    Several files are sharded per worker by file. With ``data.on_bad_file:
    skip`` an unreadable (truncated, corrupt) file or a record whose image does
    not decode is left out and logged.

    Example:
        >>> # data: {source: tfrecord, path: "train-*.tfrecord", label_key: label,
        >>> #        features: {image: {dtype: image, shape: [32, 32, 3]}, label: {dtype: int64}}}
    """
    all_files = _tfrecord_files(str(data.path))
    spec = _parse_spec(data)
    inputs, numeric, image, tokens = _input_features(data)
    pattern = str(data.path)

    # The pass before training: every file's labels and numeric inputs, and (image inputs) every image decoded.
    pre = {n: spec[n] for n in [data.label_key, *numeric, *([image] if image else [])]}
    scans, checked = _check_shards(all_files, data, spec, pre, numeric, tokens, image)
    kept = _kept_records(all_files, scans, data, spec, image)
    y, task, class_names = _targets(kept.labels, pattern, data.label_key)
    parse = _parser(data, spec, inputs, image, tokens, class_names, y.shape[1:])
    make = _reader(kept, parse, parallel(data.num_parallel_calls))

    extras: dict = {"files": len(kept.files), "file_check": checked}
    if kept.skipped:
        extras["skipped_files"] = kept.skipped
    return SourceData(
        y=y, stream=Stream(make, num_files=len(kept.files), files=list(kept.files)), origin=pattern,
        label_key="data.label_key",
        task=task, class_names=class_names, input_dtype="int32" if tokens else "float32",
        vocab_size=kept.max_id + 1 if tokens else None, extras=extras,
    )


def _input_features(data: DataConfig) -> tuple[list[str], list[str], Optional[str], bool]:
    """The input features besides the label, checked: ``(inputs, numeric ones, the image one, token ids?)``."""
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
    image = inputs[0] if feats[inputs[0]].dtype == "image" else None
    return inputs, numeric, image, tokens


@dataclass
class _Kept:
    """The readable files and which of their records are kept (``data.on_bad_file``)."""

    files: list[str]
    counts: list[int]  # records per file
    keep: np.ndarray  # one bool per record of ``files``: False for a record whose image does not decode
    labels: np.ndarray  # the kept records' labels, as read
    max_id: int  # the largest token id (-1 without token ids)
    skipped: list[str]  # the files and records left out


def _kept_records(all_files: list[str], scans: list[ShardScan], data: DataConfig, spec: dict,
                  image: Optional[str]) -> _Kept:
    """``data.on_bad_file`` applied to the unreadable files, then to the records whose image does not decode."""
    pattern = str(data.path)
    files, counts, label_parts, max_id = [], [], [], -1
    bad_files: list[tuple[str, str]] = []
    bad_records: list[tuple[str, int, int]] = []  # (file, record in file, record overall)
    for file, scan in zip(all_files, scans, strict=True):
        if scan.unreadable is not None:
            bad_files.append((file, scan.unreadable))
            continue
        start = sum(counts)
        bad_records += [(file, int(i), start + int(i)) for i in scan.bad]
        files.append(file)
        counts.append(len(scan.labels))
        label_parts.append(scan.labels)
        max_id = max(max_id, scan.max_id)
    skipped = handle_bad("TFRecord file", pattern, [f for f, _ in bad_files], lambda k: bad_files[k][1],
                         len(all_files), data.on_bad_file)
    if not files:
        raise ConfigError(f"no readable TFRecord file in {pattern} ({len(all_files)} skipped)", key="data.path")

    def record_reason(k: int) -> str:
        file, i, _ = bad_records[k]
        serialized = next(iter(tf.data.TFRecordDataset(file).skip(i).take(1)))
        channels = data.features[image].shape[2]
        return decode_reason(tf.io.parse_single_example(serialized, {image: spec[image]})[image], channels)

    total = int(sum(counts))
    skipped += handle_bad("image record", pattern, [f"{f}, record {i}" for f, i, _ in bad_records], record_reason,
                          total, data.on_bad_file)
    keep = np.ones(total, bool)
    keep[[g for _, _, g in bad_records]] = False
    return _Kept(files, counts, keep, np.concatenate(label_parts)[keep], max_id, skipped)


def _targets(raw: np.ndarray, pattern: str, label: str) -> tuple[np.ndarray, str, Optional[list[str]]]:
    """The kept labels as ``(y, task, class_names)``; string labels are decoded and become class names."""
    if raw.dtype == object:
        raw = np.array([b.decode("utf-8", "replace") for b in raw])
    y, task, class_names = labels_from_array(raw, pattern, "data.label_key")
    if task == "regression" and not np.isfinite(y).all():
        raise ConfigError(f"NaN or Inf in label '{label}' of {pattern}", key="data")
    return y, task, class_names


def _parser(data: DataConfig, spec: dict, inputs: list[str], image: Optional[str], tokens: bool,
            class_names: Optional[list[str]], target_shape: tuple) -> Callable:
    """``parse``: a chunk of serialized records -> ``(inputs, targets)`` of the chunk (parsed in one call)."""
    label, feats = data.label_key, data.features
    # String labels: index of the name in a constant (no lookup-table resource, so the
    # dataset graph stays serializable for tf.distribute).
    names_t = tf.constant(class_names) if class_names is not None else None

    def parse(serialized: tf.Tensor):
        ex = tf.io.parse_example(serialized, spec)
        if names_t is not None:
            hits = tf.cast(tf.equal(names_t[None, :], ex[label][:, None]), tf.int32)
            target = tf.argmax(hits, axis=1, output_type=tf.int64)
        else:
            target = tf.reshape(ex[label], [-1, *target_shape])
        if image is not None:
            h, w, c = feats[image].shape
            out = tf.TensorSpec([h, w, c], tf.uint8)
            return tf.map_fn(lambda b: decode_image(b, [h, w], c), ex[image], fn_output_signature=out), target
        if tokens:
            return tf.cast(ex[inputs[0]], tf.int32), target
        parts = [tf.reshape(tf.cast(ex[n], tf.float32), [-1, math.prod(feats[n].shape)]) for n in inputs]
        return (parts[0] if len(parts) == 1 else tf.concat(parts, 1)), target

    return parse


def _reader(kept: _Kept, parse: Callable, calls: int) -> Callable[..., tuple[tf.data.Dataset, int]]:
    """``Stream.make``: the kept records of ``indices`` (example numbers), of this worker's files when sharded."""
    files, counts = kept.files, kept.counts
    total = int(sum(counts))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    kept_ids = np.flatnonzero(kept.keep)  # example index -> record index over all files

    def make(indices: np.ndarray, shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        mask = np.zeros(total, bool)
        mask[kept_ids[indices]] = True
        ids = range(len(files)) if shard is None else range(shard[0], len(files), shard[1])
        # Skip files holding none of the selected examples (validation-only, or past max_examples).
        ids = [k for k in ids if mask[offsets[k]:offsets[k + 1]].any()]
        selected = tf.constant(mask)
        names = [files[k] for k in ids] or files[:1]
        starts = np.array([offsets[k] for k in ids] or [0], np.int64)
        ends = np.array([offsets[k + 1] for k in ids] or [0], np.int64)  # empty range: this worker reads nothing
        ds = tf.data.Dataset.from_tensor_slices((names, starts, ends)).interleave(
            as_written(lambda f, a, b: tf.data.Dataset.zip((tf.data.Dataset.range(a, b), tf.data.TFRecordDataset(f)))),
            cycle_length=min(len(names), 16), num_parallel_calls=calls, deterministic=True,
        )
        ds = ds.filter(as_written(lambda i, _: tf.gather(selected, i)))
        # Parsed and decoded DECODE_CHUNK records per call (as for image folders), order kept.
        ds = ds.batch(DECODE_CHUNK).map(as_written(lambda _, s: parse(s)), num_parallel_calls=calls).unbatch()
        return ds, int(sum(mask[offsets[k]:offsets[k + 1]].sum() for k in ids))

    return make
