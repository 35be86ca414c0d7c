"""Random resized crops (``data.augment.random_resized_crop``), the Inception / timm training crop.

A box of ``scale`` of the image's area (uniform) with aspect ratio ``ratio`` (log-uniform) at a
uniform position, resized to the training size; ten tries, then the largest centred box within
``ratio`` (timm's ``RandomResizedCrop.get_params``). Two places use it:

* **JPEG/PNG folders** (``image_dir``): each epoch the training files are read again and the box is
  cut from the file at its own resolution: ``tf.image.decode_and_crop_jpeg`` decodes only the box
  of a JPEG. The training split then has no decoded-image cache (validation keeps it).
* **everything else** (arrays, TFRecords): the box is cut from each decoded example of a batch
  (``crop_and_resize``), after the cache.

The draws are stateless: a file's box is seeded by ``(seed, epoch, its place in the epoch)`` and a
batch's boxes by ``(seed, the batch's number in the run)``, so runs repeat and resume exactly.
"""

from __future__ import annotations

import math
from typing import Optional

from kerasopt._keras import tf

TRIES = 10


def crop_boxes(hw: tf.Tensor, seed, scale: tuple[float, float], ratio: tuple[float, float]) -> tf.Tensor:
    """``(N, 4)`` int32 boxes ``(top, left, height, width)`` for images of sizes ``hw`` (``(N, 2)``).

    Example:
        >>> boxes = crop_boxes(tf.constant([[100, 200]] * 3), tf.constant([1, 2], tf.int64), (0.08, 1.0), (0.75, 4 / 3))
        >>> bool(tf.reduce_all(boxes[:, 0] + boxes[:, 2] <= 100)), bool(tf.reduce_all(boxes[:, 1] + boxes[:, 3] <= 200))
        (True, True)
    """
    hw = tf.cast(hw, tf.float32)
    n = tf.shape(hw)[0]
    h, w = hw[:, 0:1], hw[:, 1:2]
    s = tf.random.experimental.stateless_split(seed, 4)
    area = h * w * tf.random.stateless_uniform([n, TRIES], s[0], scale[0], scale[1])
    log_ratio = tf.random.stateless_uniform([n, TRIES], s[1], math.log(ratio[0]), math.log(ratio[1]))
    aspect = tf.exp(log_ratio)
    cw = tf.round(tf.sqrt(area * aspect))
    ch = tf.round(tf.sqrt(area / aspect))
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)  # the first try that fits
    found = tf.reduce_any(fits, axis=1)
    cw, ch = tf.gather(cw, first, batch_dims=1), tf.gather(ch, first, batch_dims=1)
    h, w = h[:, 0], w[:, 0]
    where = tf.random.stateless_uniform([n, 2], s[2])
    top = tf.floor(where[:, 0] * (h - ch + 1))
    left = tf.floor(where[:, 1] * (w - cw + 1))
    # fallback: the whole image, trimmed to the nearest ratio in range, centred
    own = w / h
    fw = tf.where(own < ratio[0], w, tf.where(own > ratio[1], tf.round(h * ratio[1]), w))
    fh = tf.where(own < ratio[0], tf.round(w / ratio[0]), h)
    ch, cw = tf.where(found, ch, fh), tf.where(found, cw, fw)
    top = tf.where(found, top, tf.floor((h - fh) / 2))
    left = tf.where(found, left, tf.floor((w - fw) / 2))
    return tf.cast(tf.stack([top, left, ch, cw], axis=1), tf.int32)


def crop_batch(x: tf.Tensor, seed, scale, ratio) -> tf.Tensor:
    """A random resized crop of each image of a ``(B, H, W, C)`` float batch, back to ``(H, W)`` (bilinear)."""
    shape = tf.shape(x)
    n, size = shape[0], shape[1:3]
    boxes = tf.cast(crop_boxes(tf.tile(size[None, :], [n, 1]), seed, scale, ratio), tf.float32)
    last = tf.cast(size - 1, tf.float32)
    last = tf.maximum(last, 1.0)
    top, left, ch, cw = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    # crop_and_resize's box corners are the centres of the first and last pixel of the crop
    norm = tf.stack([top / last[0], left / last[1], (top + ch - 1) / last[0], (left + cw - 1) / last[1]], axis=1)
    out = tf.image.crop_and_resize(tf.cast(x, tf.float32), norm, tf.range(n), size, method="bilinear")
    return tf.ensure_shape(tf.cast(out, x.dtype), x.shape)


def decode_crop(data: tf.Tensor, size: list[int], channels: int, seed, scale, ratio, flip: str = "none") -> tf.Tensor:
    """Encoded JPEG/PNG bytes -> a random resized crop at ``size``, uint8 ``(height, width, channels)``,
    mirrored half the time as ``flip`` (``data.augment.flip``) says: on 8-bit pixels, as TF Model Garden.

    A JPEG is decoded only inside the box (``decode_and_crop_jpeg``); other formats are decoded
    whole and cropped. The resize is bilinear without antialiasing, as TF Model Garden's: antialiasing
    cost ~1.7 ms more per 224-pixel crop of a 500x375 photo, half again the decode (2 cores).
    """
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 2), b"\xff\xd8")

    def jpeg() -> tf.Tensor:
        box = crop_boxes(tf.image.extract_jpeg_shape(data)[None, :2], seed, scale, ratio)[0]
        return tf.image.decode_and_crop_jpeg(data, box, channels=channels)

    def other() -> tf.Tensor:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        box = crop_boxes(tf.shape(image)[None, :2], seed, scale, ratio)[0]
        return image[box[0]:box[0] + box[2], box[1]:box[1] + box[3]]

    image = tf.cond(is_jpeg, jpeg, other)
    image.set_shape([None, None, channels])
    image = tf.image.resize(image, size, method="bilinear")
    image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    coins = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(seed, 7)) < 0.5
    if flip in ("horizontal", "horizontal_and_vertical"):
        image = tf.cond(coins[0], lambda: tf.reverse(image, [1]), lambda: image)
    if flip in ("vertical", "horizontal_and_vertical"):
        image = tf.cond(coins[1], lambda: tf.reverse(image, [0]), lambda: image)
    return tf.ensure_shape(image, [size[0], size[1], channels])


def crop_settings(aug) -> Optional[tuple[tuple[float, float], tuple[float, float]]]:
    """``(scale, ratio)`` of ``data.augment.random_resized_crop``, or ``None`` when it is off."""
    rrc = aug.random_resized_crop
    return None if rrc is None else (tuple(rrc.scale), tuple(rrc.ratio))


__all__ = ["crop_boxes", "crop_batch", "decode_crop", "crop_settings"]
