"""A folder of class sub-folders of images, streamed (TFRecord files: ``sources_tfrecord``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from kerasopt._keras import tf
from kerasopt.config.data_schema import DataConfig
from kerasopt.data.crops import crop_settings, decode_crop
from kerasopt.data.filecheck import handle_bad, size_guard
from kerasopt.data.manifest import check_image_files
from kerasopt.data.source_base import SOURCES, SourceData, Stream, as_written
from kerasopt.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def parallel(n: int) -> int:
    """``num_parallel_calls`` from the config: -1 means ``tf.data.AUTOTUNE``."""
    return tf.data.AUTOTUNE if n == -1 else max(1, n)


def decode_image(data: tf.Tensor, size: list[int], channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG bytes -> uint8 ``(height, width, channels)`` at ``size``.

    A file already at ``size`` is returned as decoded, bit for bit. Otherwise it
    is resized (bilinear, in float) and rounded back to uint8, so a cache of
    decoded images is a quarter of the float32 size; the values are within 0.5
    of the float resize. A JPEG at least twice ``size`` is decoded at 1/2, 1/4 or
    1/8 scale by libjpeg (the largest that stays >= ``size``), which skips most
    of the decoding work for large photos (and filters before the resize, where
    bilinear alone would alias).
    """
    height, width = int(size[0]), int(size[1])

    def jpeg() -> tf.Tensor:
        hw = tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64)  # the header only
        # ceil(dim / r) >= target for r in 2, 4, 8: libjpeg rounds scaled sizes up.
        fits = [tf.reduce_all((hw + r - 1) // r >= [height, width]) for r in (2, 4, 8)]
        index = tf.add_n([tf.cast(f, tf.int32) for f in fits])  # fits are nested: 0..3 -> ratio 1..8
        branches = [lambda r=r: tf.io.decode_jpeg(data, channels=channels, ratio=r) for r in (1, 2, 4, 8)]
        return tf.switch_case(index, branches)

    is_jpeg = tf.equal(tf.strings.substr(data, 0, 2), b"\xff\xd8")
    image = tf.cond(is_jpeg, jpeg, lambda: tf.io.decode_image(data, channels=channels, expand_animations=False))
    image.set_shape([None, None, channels])

    def resized() -> tf.Tensor:
        scaled = tf.image.resize(image, [height, width], method="bilinear")
        return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)

    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width]))
    image = tf.cond(same, lambda: image, resized)
    image.set_shape([height, width, channels])
    return image


# Files decoded per map call. tf.data's cost per element and per function call dominated decoding of
# small images: one call decoding a chunk in a loop fed ~1.7x the examples/s of one call per file
# (8x8 PNGs resized to 32x32, 2 cores: ~37,000 vs ~22,000 ex/s at 64; 16: 34,000; 256: 42,000).
# 64 keeps a chunk of large photos small in memory.
DECODE_CHUNK = 64


def decode_in_chunks(files: tf.data.Dataset, size: list[int], channels: int, calls: int) -> tf.data.Dataset:
    """``(path, bytes seen by the check, label)`` elements -> ``(uint8 image, int32 label)``, in order.

    Decodes ``DECODE_CHUNK`` files per call of a parallel ``map`` and unbatches, so the order (and
    with it a seeded run and an exact resume) is the same as one file per call.
    """
    spec = tf.TensorSpec([size[0], size[1], channels], tf.uint8)

    def one(args):
        file, nbytes = args
        return decode_image(size_guard(tf.io.read_file(file), nbytes, file), size, channels)

    def chunk(file: tf.Tensor, nbytes: tf.Tensor, label: tf.Tensor):
        return tf.map_fn(one, (file, nbytes), fn_output_signature=spec), tf.cast(label, tf.int32)

    return files.batch(DECODE_CHUNK).map(as_written(chunk), num_parallel_calls=calls).unbatch()


_EPOCH_STRIDE = 1_000_003  # as the pipeline's: (seed, epoch) pairs map to distinct shuffle seeds


def crop_in_chunks(files: tf.data.Dataset, size: list[int], channels: int, calls: int, seed: tf.Tensor,
                   crop: tuple, flip: str = "none") -> tf.data.Dataset:
    """``(place, (path, bytes, label))`` -> ``(uint8 random resized crop, flipped per ``flip``, int32 label)``.

    The box of the file at ``place`` is seeded by ``fold_in(seed, place)`` (``seed``: ``(run seed, epoch)``).
    """
    spec = tf.TensorSpec([size[0], size[1], channels], tf.uint8)

    def one(args):
        place, file, nbytes = args
        data = size_guard(tf.io.read_file(file), nbytes, file)
        return decode_crop(data, size, channels, tf.random.experimental.stateless_fold_in(seed, place), *crop, flip)

    def chunk(place: tf.Tensor, element):
        file, nbytes, label = element
        return tf.map_fn(one, (place, file, nbytes), fn_output_signature=spec), tf.cast(label, tf.int32)

    return files.batch(DECODE_CHUNK).map(as_written(chunk), num_parallel_calls=calls).unbatch()


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
    calls = parallel(data.num_parallel_calls)
    channels = data.channels
    paths, y, sizes, shape, skipped, checked = _check_files(
        root, classes, files, labels, channels, data.on_bad_file, calls
    )
    size = list(data.image_size) if data.image_size else [int(shape[0]), int(shape[1])]

    def make(indices: np.ndarray, shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        ds = tf.data.Dataset.from_tensor_slices((paths[indices], sizes[indices], y[indices]))
        return decode_in_chunks(ds, size, channels, calls), len(indices)

    crop = crop_settings(data.augment)

    def epochs(indices: np.ndarray):
        """Each epoch: the files in an order seeded by ``(seed, epoch)``, each cut to a random box."""
        files = tf.data.Dataset.from_tensor_slices((paths[indices], sizes[indices], y[indices]))

        def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
            order = files
            if data.shuffle_buffer > 0:
                order = files.shuffle(len(indices), seed=epoch * _EPOCH_STRIDE + seed, reshuffle_each_iteration=False)
            key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
            return crop_in_chunks(order.enumerate(), size, channels, calls, key, crop, data.augment.flip)

        return one_epoch

    extras = {"image_size": size, "channels": channels, "file_check": checked}
    if skipped:
        extras["skipped_files"] = skipped
    stream = Stream(make, files=[str(p) for p in paths], ordered=True, epochs=epochs if crop else None)
    return SourceData(
        y=y, stream=stream, origin=str(root),
        label_key="data.path", task="classification",
        class_names=classes, extras=extras,
    )


def _check_files(root: Path, classes: list[str], files: list[str], labels: list[int], channels: int,
                 policy: str, calls: int):
    """Decode every new or changed file once (``manifest``, ``filecheck``); apply ``data.on_bad_file``; keep
    every class non-empty.

    Returns ``(paths, labels, byte sizes, first good image's shape, skipped file names, check summary)``.
    """
    paths = np.array(files)
    y = np.array(labels, np.int64)
    check = check_image_files(str(root), paths, channels, calls, reasons="all" if policy == "skip" else "first")
    bad = check.bad
    names = [str(paths[i]) for i in bad]
    handle_bad("image file", str(root), names, lambda k: check.reasons[int(bad[k])], len(paths), policy)
    keep = check.ok
    for index, name in enumerate(classes):
        if not keep[y == index].any():
            raise ConfigError(
                f"class folder {root / name} has no image that decodes ({int((y == index).sum())} skipped)",
                key="data.path",
            )
    first = int(np.flatnonzero(keep)[0])
    return paths[keep], y[keep], check.sizes[keep], check.shapes[first], names, check.summary
