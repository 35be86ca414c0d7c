"""Bad input files found before training starts (``data.on_bad_file: error | skip``).

Every image is decoded once, in a parallel ``tf.data`` pass, by the same
decoder training uses, so a file that passes cannot fail later for what it
holds. Measured on 2 CPU cores: 2,000 64x64 PNG/JPEG files in 0.7 s, 1,000
256x256 ones (noise, so large files) in 2.6 s, about as long as the first
epoch's own decoding. The results are kept between runs (``manifest``,
``shard_manifest``): a later run decodes only the files that are new or
changed. Files that fail are found by elimination (``ignore_errors`` drops
exactly the failing elements), then decoded one by one for the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kerasopt._keras import tf
from kerasopt.data.source_base import short_reason
from kerasopt.errors import ConfigError

log = logging.getLogger("kerasopt.data")


def tf_reason(message: str, limit: int = 200) -> str:
    """A TensorFlow error message without the graph-node noise, on one line.

    Example:
        >>> tf_reason("{{function_node __wrapped__DecodeImage}} Invalid PNG data, size 6 [Op:DecodeImage] name: ")
        'Invalid PNG data, size 6'
    """
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    text = re.sub(r"Error in user-defined function passed to \S+ transformation with iterator: \S+:\s*", "", text)
    text = re.sub(r"\s*(\[Op:\w+\]|\[\[\{\{node ).*$", "", text.strip(), flags=re.S)
    text = re.sub(r"\s+", " ", text).strip().rstrip(".")
    return short_reason(text or message, limit)


@dataclass
class ImageCheck:
    """Result of ``check_images``: per element ``ok``, encoded ``sizes`` (bytes) and decoded ``shapes``."""

    ok: np.ndarray
    sizes: np.ndarray
    shapes: np.ndarray

    @property
    def bad(self) -> np.ndarray:
        return np.flatnonzero(~self.ok)


def check_images(
    pairs: tf.data.Dataset, count: int, channels: int, calls: int, read: Callable | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImageCheck:
    """Decode each of ``count`` images once; ``pairs`` yields ``(index, payload)``.

    ``read(payload)`` gives the encoded bytes (``tf.io.read_file`` for paths;
    none when the payload is the bytes). ``channels`` is what training decodes
    to. Returns which decoded, their byte sizes and ``(height, width,
    channels)``; it never fails (bad ones are marked). ``progress(n)`` is
    called as each batch of ``n`` good images is done.
    """

    def probe(i: tf.Tensor, payload: tf.Tensor):
        data = read(payload) if read is not None else payload
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        return i, tf.cast(tf.strings.length(data), tf.int64), tf.shape(image, out_type=tf.int64)

    # Smaller batches when someone watches: a bar that moves every few hundred files, not every 4,096.
    batch = 4096 if progress is None else 256
    ds = pairs.map(probe, num_parallel_calls=calls, deterministic=False).ignore_errors().batch(batch)
    ok = np.zeros(count, bool)
    sizes = np.full(count, -1, np.int64)
    shapes = np.zeros((count, 3), np.int64)
    for idx, size, shape in ds:
        idx = idx.numpy()
        ok[idx], sizes[idx], shapes[idx] = True, size.numpy(), shape.numpy()
        if progress is not None:
            progress(len(idx))
    return ImageCheck(ok, sizes, shapes)


def decode_reason(data: bytes | tf.Tensor, channels: int) -> str:
    """Why these bytes do not decode (TensorFlow's message, cleaned)."""
    try:
        tf.io.decode_image(data, channels=channels, expand_animations=False)
    except tf.errors.OpError as e:
        return tf_reason(e.message)
    return "could not be decoded"


def file_reason(path: str, channels: int) -> str:
    """Why the image file at ``path`` does not decode."""
    try:
        data = tf.io.read_file(path)
    except tf.errors.OpError as e:
        return tf_reason(e.message)
    return decode_reason(data, channels)


def handle_bad(
    what: str, where: str, labels: list[str], reasons: Callable[[int], str], total: int, policy: str,
    key: str = "data.path",
) -> list[str]:
    """Apply ``data.on_bad_file`` to the bad items ``labels`` (file names or ``file, record N``).

    ``error``: one ``ConfigError`` naming the first bad item and the count.
    ``skip``: log each skipped item with its reason, then the count; return ``labels``.

    Example:
        >>> handle_bad("image file", "photos", [], str, 10, "error")
        []
    """
    if not labels:
        return []
    if policy == "error":
        more = f" ({len(labels)} of {total} {what}s are bad)" if len(labels) > 1 else ""
        raise ConfigError(
            f"cannot decode {what} {labels[0]}: {reasons(0)}{more}. Fix or remove it, or set "
            f"data.on_bad_file: skip to train without it",
            key=key,
        )
    for i, label in enumerate(labels):
        log.warning(f"skipped {what} {label}: {reasons(i)}")
    log.warning(f"skipped {len(labels)} of {total} {what}s in {where} (data.on_bad_file: skip)")
    return list(labels)


def size_guard(data: tf.Tensor, expected: tf.Tensor, file: tf.Tensor) -> tf.Tensor:
    """``data`` unchanged, after asserting it still has the size the check saw.

    A file replaced or truncated after the check would otherwise fail inside
    training with a decoder message that names no file; this names it.
    """
    same = tf.equal(tf.cast(tf.strings.length(data), tf.int64), expected)
    check = tf.debugging.Assert(  # the CLI prints the parts joined: "...: a.png is 40 bytes, was 268 bytes ..."
        same, ["image file changed after kerasopt checked it:", file, "is", tf.strings.length(data), "bytes, was",
               expected, "bytes when checked; run again to check it anew"],
    )
    with tf.control_dependencies([check]):
        return tf.identity(data)
