"""RandAugment (Cubuk et al. 2020) on training batches: ``data.augment.randaugment``.

Each image gets ``num_ops`` operations drawn uniformly (with replacement) from :data:`OPS`, each
applied with probability ``prob`` at a magnitude ``m ~ N(magnitude, magnitude_std)`` clipped to
``[0, 10]``: timm's ``rand-m9-mstd0.5-inc1`` recipe, whose operations grow stronger with ``m``
(posterize keeps fewer bits, solarize starts lower; colour, contrast, brightness and sharpness
move further from 1, either way). Geometric ops (rotate, shear, translate) pick a random sign
and fill what they uncover with the middle of the value range, as timm and TF Model Garden do.

The operations follow PIL's definitions (which timm calls), written as TensorFlow ops on float
pixels so they run inside ``tf.data``. Images in ``value_range`` ``[lo, hi]`` are mapped to
``0..255`` and back, so 0..16 digits and 0..255 photos both work. One step groups the batch by
operation (``dynamic_partition``), runs each operation once on its group and stitches the batch
back: every image pays only for the operations it drew.

The draws are stateless, seeded by ``(seed, the batch's number in the run)``: a run repeats
itself, and a run resumed mid-epoch augments every later batch as the uninterrupted one did.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from kerasopt._keras import tf

MAX_LEVEL = 10.0


def _blend(degenerate: tf.Tensor, image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """PIL's ``ImageEnhance``: ``degenerate + factor * (image - degenerate)``, clipped to 0..255."""
    return tf.clip_by_value(degenerate + factor[:, None, None, None] * (image - degenerate), 0.0, 255.0)


def _grayscale(x: tf.Tensor) -> tf.Tensor:
    """PIL's ``L`` conversion (ITU-R 601-2 luma) of ``(B, H, W, 3)``; one channel passes through."""
    if x.shape[-1] == 1:
        return x
    return tf.reduce_sum(x * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)


def _enhance_factor(level: tf.Tensor, sign: tf.Tensor) -> tf.Tensor:
    """timm's increasing enhance level: ``1 +- 0.9 * m / 10``."""
    return 1.0 + sign * level / MAX_LEVEL * 0.9


def auto_contrast(x, level, sign):
    """Each channel stretched to 0..255 (PIL ``autocontrast``, no cutoff); flat channels unchanged."""
    lo = tf.reduce_min(x, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(x, axis=[1, 2], keepdims=True)
    span = hi - lo
    return tf.where(span > 0, (x - lo) * 255.0 / tf.where(span > 0, span, 1.0), x)


def equalize(x, level, sign):
    """Histogram equalization per image and channel (PIL ``ImageOps.equalize``)."""
    shape = tf.shape(x)
    b, c = shape[0], shape[3]
    q = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.int32)
    per_channel = tf.reshape(tf.transpose(q, [0, 3, 1, 2]), [b * c, -1])  # (B*C, H*W)
    offsets = tf.range(b * c)[:, None] * 256
    hist = tf.reshape(tf.math.bincount(per_channel + offsets, minlength=b * c * 256, maxlength=b * c * 256,
                                       dtype=tf.int32), [b * c, 256])
    # the count of the highest value present is left out of the step, as PIL does
    last = 255 - tf.argmax(tf.reverse(tf.cast(hist > 0, tf.int32), [1]), axis=1, output_type=tf.int32)
    top = tf.gather(hist, last, batch_dims=1)
    step = (tf.reduce_sum(hist, axis=1) - top) // 255
    before = tf.cumsum(hist, axis=1, exclusive=True)
    lut = tf.minimum((before + (step // 2)[:, None]) // tf.maximum(step, 1)[:, None], 255)
    lut = tf.where((step > 0)[:, None], lut, tf.range(256)[None, :])
    out = tf.gather(lut, per_channel, batch_dims=1)
    return tf.cast(tf.transpose(tf.reshape(out, [b, c, shape[1], shape[2]]), [0, 2, 3, 1]), x.dtype)


def invert(x, level, sign):
    return 255.0 - x


def posterize(x, level, sign):
    """Keep the top ``4 - int(4 m / 10)`` bits of each 0..255 value (timm's increasing posterize)."""
    bits = 4 - tf.cast(level / MAX_LEVEL * 4, tf.int32)
    drop = tf.cast(tf.bitwise.left_shift(1, 8 - bits), tf.float32)[:, None, None, None]
    return tf.floor(tf.floor(x) / drop) * drop


def solarize(x, level, sign):
    """Invert every value at or above ``256 - 256 m / 10``."""
    threshold = (256.0 - level / MAX_LEVEL * 256.0)[:, None, None, None]
    return tf.where(x >= threshold, 255.0 - x, x)


def solarize_add(x, level, sign):
    """Add ``110 m / 10`` to every value below 128, clipped at 255."""
    add = (level / MAX_LEVEL * 110.0)[:, None, None, None]
    return tf.where(x < 128.0, tf.minimum(x + add, 255.0), x)


def color(x, level, sign):
    return _blend(_grayscale(x), x, _enhance_factor(level, sign))


def contrast(x, level, sign):
    """Blend with the image's mean grey level (PIL ``ImageEnhance.Contrast``)."""
    mean = tf.reduce_mean(_grayscale(x), axis=[1, 2, 3], keepdims=True)
    return _blend(tf.broadcast_to(tf.round(mean), tf.shape(x)), x, _enhance_factor(level, sign))


def brightness(x, level, sign):
    return _blend(tf.zeros_like(x), x, _enhance_factor(level, sign))


def sharpness(x, level, sign):
    """Blend with PIL's SMOOTH filter (``[[1,1,1],[1,5,1],[1,1,1]] / 13``); the border stays as is."""
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    # the 3x3 sums from nine shifted views (a convolution mis-shapes an empty group)
    total = tf.add_n([x[:, i:h - 2 + i, j:w - 2 + j] for i in range(3) for j in range(3)])
    smooth = tf.round((total + 4.0 * x[:, 1:h - 1, 1:w - 1]) / 13.0)
    inner = tf.pad(tf.ones_like(smooth), [[0, 0], [1, 1], [1, 1], [0, 0]])
    smooth = tf.pad(smooth, [[0, 0], [1, 1], [1, 1], [0, 0]])
    degenerate = inner * smooth + (1.0 - inner) * x
    return _blend(degenerate, x, _enhance_factor(level, sign))


def _transform(x: tf.Tensor, rows: tf.Tensor, fill: float) -> tf.Tensor:
    """Per-image projective transforms (``(B, 8)``: output pixel -> input pixel), bilinear, constant fill."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=rows, output_shape=tf.shape(x)[1:3], fill_value=fill,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def _affine(a, b, c, d, e, f):
    zeros = tf.zeros_like(a)
    return tf.stack([a, b, c, d, e, f, zeros, zeros], axis=1)


def rotate(x, level, sign, fill=128.0):
    """Rotate about the centre by ``+-30 m / 10`` degrees."""
    angle = sign * level / MAX_LEVEL * 30.0 * math.pi / 180.0
    h, w = tf.cast(tf.shape(x)[1], tf.float32) - 1.0, tf.cast(tf.shape(x)[2], tf.float32) - 1.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_off = (w - (cos * w - sin * h)) / 2.0
    y_off = (h - (sin * w + cos * h)) / 2.0
    return _transform(x, _affine(cos, -sin, x_off, sin, cos, y_off), fill)


def shear_x(x, level, sign, fill=128.0):
    s = sign * level / MAX_LEVEL * 0.3
    one, zero = tf.ones_like(s), tf.zeros_like(s)
    return _transform(x, _affine(one, s, zero, zero, one, zero), fill)


def shear_y(x, level, sign, fill=128.0):
    s = sign * level / MAX_LEVEL * 0.3
    one, zero = tf.ones_like(s), tf.zeros_like(s)
    return _transform(x, _affine(one, zero, zero, s, one, zero), fill)


def translate_x(x, level, sign, fill=128.0):
    """Shift by ``+-0.45 m / 10`` of the width (timm's ``TranslateXRel``)."""
    t = sign * level / MAX_LEVEL * 0.45 * tf.cast(tf.shape(x)[2], tf.float32)
    one, zero = tf.ones_like(t), tf.zeros_like(t)
    return _transform(x, _affine(one, zero, t, zero, one, zero), fill)


def translate_y(x, level, sign, fill=128.0):
    t = sign * level / MAX_LEVEL * 0.45 * tf.cast(tf.shape(x)[1], tf.float32)
    one, zero = tf.ones_like(t), tf.zeros_like(t)
    return _transform(x, _affine(one, zero, zero, zero, one, t), fill)


# timm's _RAND_INCREASING_TRANSFORMS, in its order; each is (x, level, sign) on 0..255 floats.
OPS: dict[str, Callable] = {
    "auto_contrast": auto_contrast, "equalize": equalize, "invert": invert, "rotate": rotate,
    "posterize": posterize, "solarize": solarize, "solarize_add": solarize_add, "color": color,
    "contrast": contrast, "brightness": brightness, "sharpness": sharpness, "shear_x": shear_x,
    "shear_y": shear_y, "translate_x": translate_x, "translate_y": translate_y,
}
GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def rand_augment(x: tf.Tensor, seed, ra, value_range: tuple[float, float]) -> tf.Tensor:
    """RandAugment of one ``(B, H, W, C)`` float batch in ``value_range``; ``seed`` is a stateless ``[2]`` seed.

    ``ra`` is the :class:`~kerasopt.config.data_schema.RandAugmentConfig`.

    Example:
        >>> from kerasopt.config.data_schema import RandAugmentConfig
        >>> x = tf.random.stateless_uniform([4, 8, 8, 3], [0, 1], maxval=255.0)
        >>> a = rand_augment(x, tf.constant([3, 7], tf.int64), RandAugmentConfig(), (0.0, 255.0))
        >>> b = rand_augment(x, tf.constant([3, 7], tf.int64), RandAugmentConfig(), (0.0, 255.0))
        >>> a.shape, bool(tf.reduce_all(a == b))
        (TensorShape([4, 8, 8, 3]), True)
    """
    names = list(ra.ops or OPS)
    ops = [OPS[n] for n in names]
    lo, hi = float(value_range[0]), float(value_range[1])
    span = hi - lo if hi > lo else 1.0
    scaled = (lo, span) != (0.0, 255.0)  # 8-bit images need no mapping there and back
    u = tf.cast(x, tf.float32)
    u = (u - lo) * (255.0 / span) if scaled else u
    n = tf.shape(u)[0]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    shape = tf.stack([n, ra.num_ops])
    choice = tf.random.stateless_uniform(shape, seeds[0], maxval=len(ops), dtype=tf.int32)
    applied = tf.random.stateless_uniform(shape, seeds[1]) < ra.prob
    level = ra.magnitude + ra.magnitude_std * tf.random.stateless_normal(shape, seeds[2])
    level = tf.clip_by_value(level, 0.0, MAX_LEVEL)
    sign = tf.where(tf.random.stateless_uniform(shape, seeds[3]) < 0.5, -1.0, 1.0)
    skip = len(ops)  # the group of images that this step leaves alone
    where = tf.range(n)
    for k in range(ra.num_ops):
        group = tf.where(applied[:, k], choice[:, k], skip)
        parts = tf.dynamic_partition(u, group, skip + 1)
        levels = tf.dynamic_partition(level[:, k], group, skip + 1)
        signs = tf.dynamic_partition(sign[:, k], group, skip + 1)
        index = tf.dynamic_partition(where, group, skip + 1)
        done = [op(parts[j], levels[j], signs[j], 128.0) if names[j] in GEOMETRIC else op(parts[j], levels[j], signs[j])
                for j, op in enumerate(ops)]
        u = tf.dynamic_stitch(index, done + [parts[skip]])
    u = tf.ensure_shape(u, x.shape)
    if not scaled:
        return tf.cast(u, x.dtype)
    touched = tf.reduce_any(applied, axis=1)[:, None, None, None]  # the others pass through bit for bit
    return tf.where(touched, tf.cast(u * (span / 255.0) + lo, x.dtype), x)


__all__ = ["OPS", "rand_augment"]
