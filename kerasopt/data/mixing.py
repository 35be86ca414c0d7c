"""Mixup and CutMix on training batches (``data.augment.mixup`` / ``cutmix``), timm's batch mode.

Per batch, with probability ``mix_prob``: draw ``lam ~ Beta(alpha, alpha)`` and mix each example
with the batch in reverse order (timm's ``flip`` partner):

* **mixup** (Zhang et al. 2018): ``x = lam * x + (1 - lam) * x[::-1]``;
* **cutmix** (Yun et al. 2019): a box of area ``(1 - lam) * H * W`` (clipped at the borders) is
  pasted from the partner, and ``lam`` becomes the share of pixels actually kept;
* with both on, each mixed batch is cutmix with probability ``switch_prob``, else mixup.

The targets get the same weights: ``y = lam * y + (1 - lam) * y[::-1]``, so one-hot rows still sum
to 1 (binary heads mix their 0/1 target). The draws are stateless, seeded by ``(seed, epoch,
batch number in the run)``: the same run mixes the same way, and a run resumed mid-epoch mixes
every later batch exactly as the uninterrupted run did. Validation is never mixed.
"""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import tf
from kerasopt.config.data_schema import AugmentConfig
from kerasopt.errors import ConfigError


def _beta(seed, alpha: tf.Tensor) -> tf.Tensor:
    """One ``Beta(alpha, alpha)`` draw from two stateless Gamma draws."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma([], seeds[0], alpha)
    b = tf.random.stateless_gamma([], seeds[1], alpha)
    return a / (a + b)


def _box_mask(shape, lam: tf.Tensor, seed) -> tuple[tf.Tensor, tf.Tensor]:
    """A ``(H, W, 1)`` float mask, 1 inside a box of about ``(1 - lam)`` of the area; and the share outside."""
    h, w = shape[0], shape[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cut = tf.sqrt(1.0 - lam)
    center = tf.random.stateless_uniform([2], seed)
    cy, cx = center[0] * hf, center[1] * wf
    y0 = tf.cast(tf.clip_by_value(tf.round(cy - cut * hf / 2), 0.0, hf), tf.int32)
    y1 = tf.cast(tf.clip_by_value(tf.round(cy + cut * hf / 2), 0.0, hf), tf.int32)
    x0 = tf.cast(tf.clip_by_value(tf.round(cx - cut * wf / 2), 0.0, wf), tf.int32)
    x1 = tf.cast(tf.clip_by_value(tf.round(cx + cut * wf / 2), 0.0, wf), tf.int32)
    rows = tf.logical_and(tf.range(h) >= y0, tf.range(h) < y1)
    cols = tf.logical_and(tf.range(w) >= x0, tf.range(w) < x1)
    inside = tf.cast(tf.logical_and(rows[:, None], cols[None, :]), tf.float32)
    kept = 1.0 - tf.reduce_sum(inside) / (hf * wf)
    return inside[..., None], kept


def mix_batch(x: tf.Tensor, y: tf.Tensor, seed, aug: AugmentConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """Mix one batch as ``aug`` says; ``seed`` is a stateless seed (shape ``[2]``, int64).

    Example:
        >>> x, y = tf.ones([4, 8, 8, 1]), tf.one_hot([0, 1, 2, 3], 4)
        >>> _, mixed = mix_batch(x, y, tf.constant([1, 2], tf.int64), AugmentConfig(mixup=0.2))
        >>> [round(float(s), 5) for s in tf.reduce_sum(mixed, axis=1)]
        [1.0, 1.0, 1.0, 1.0]
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    apply = tf.random.stateless_uniform([], seeds[0]) < aug.mix_prob
    if aug.mixup > 0 and aug.cutmix > 0:
        use_cutmix = tf.random.stateless_uniform([], seeds[1]) < aug.switch_prob
    else:
        use_cutmix = tf.constant(aug.cutmix > 0)
    alpha = tf.where(use_cutmix, float(aug.cutmix or 1.0), float(aug.mixup or 1.0))
    lam = _beta(seeds[2], alpha)
    xf = tf.cast(x, tf.float32)
    partner_x, partner_y = xf[::-1], tf.cast(y, tf.float32)[::-1]
    if aug.cutmix > 0:
        inside, kept = _box_mask(tf.shape(xf)[1:3], lam, seeds[3])
        cut_x = xf * (1.0 - inside) + partner_x * inside
    else:
        cut_x, kept = xf, lam
    lam = tf.where(use_cutmix, kept, lam)
    new_x = tf.where(use_cutmix, cut_x, lam * xf + (1.0 - lam) * partner_x)
    lam = tf.where(apply, lam, 1.0)
    new_x = tf.where(apply, new_x, xf)
    new_y = lam * tf.cast(y, tf.float32) + (1.0 - lam) * partner_y
    return tf.cast(new_x, x.dtype), tf.cast(new_y, y.dtype) if y.dtype.is_floating else new_y


def mixed(ds: Optional[tf.data.Dataset], aug: AugmentConfig, seed: int, first_batch: int) -> Optional[tf.data.Dataset]:
    """``ds`` (batches with the loss's labels) mixed per batch; as is when off.

    Batch ``i`` of ``ds`` is the run's batch ``first_batch + i`` (``epoch * steps_per_epoch`` for a
    stream that starts at ``epoch``, its later epochs following on) and is seeded by ``(seed, that
    number)``, so a resumed stream mixes its batches as the uninterrupted one did.
    """
    if ds is None or not aug.mixing:
        return ds
    base = tf.constant(int(seed) % (1 << 62), tf.int64)
    start = tf.constant(int(first_batch), tf.int64)

    def one(i, batch):
        x, y = batch[0], batch[1]
        out = mix_batch(x, y, tf.stack([base, start + i]), aug)
        return (*out, *batch[2:])

    return ds.enumerate().map(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def check_mixing(cfg, kind: str, input_shape: tuple, input_dtype: str) -> None:
    """Refuse, with the key, what mixed targets cannot combine with."""
    aug = cfg.data.augment
    if not aug.mixing:
        return
    key = "data.augment.cutmix" if aug.cutmix > 0 and not aug.mixup else "data.augment.mixup"
    if kind == "regression":
        raise ConfigError("mixes class targets; this run is a regression (targets would be averaged, not "
                          "labels). Remove it", key=key)
    if cfg.train.loss == "sparse_categorical_crossentropy":
        raise ConfigError("mixed targets are soft labels: use loss categorical_crossentropy (or auto). "
                          "Received: loss=sparse_categorical_crossentropy", key=key)
    if cfg.train.class_weight is not None:
        raise ConfigError("class weights pick a weight by each example's label, and a mixed example has two; "
                          "remove train.class_weight or the mixing", key="train.class_weight")
    if input_dtype == "int32":
        raise ConfigError("token ids cannot be mixed", key=key)
    if aug.cutmix > 0 and len(input_shape) != 3:
        raise ConfigError(f"cutmix pastes image boxes and needs (height, width, channels) inputs; these are "
                          f"{tuple(input_shape)}", key="data.augment.cutmix")


__all__ = ["mix_batch", "mixed", "check_mixing"]
