"""Building blocks shared by the builders: regularizer, BatchNorm, conv/dense blocks.

Every block reads the shared knobs from ``ModelConfig`` (``l1``/``l2``,
``batch_norm``, ``bn_momentum``, ``activation``) so the builders cannot drift
apart in how they honour them.
"""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig

layers = keras.layers


def regularizer(mcfg: ModelConfig) -> Optional[keras.regularizers.Regularizer]:
    """``L1L2`` from ``model.l1``/``model.l2``, or None when both are 0 (no extra loss terms).

    Example:
        >>> regularizer(ModelConfig(l2=0.5)).get_config()
        {'l1': 0.0, 'l2': 0.5}
    """
    if mcfg.l1 or mcfg.l2:
        return keras.regularizers.L1L2(l1=mcfg.l1, l2=mcfg.l2)
    return None


def batch_norm(mcfg: ModelConfig, name: Optional[str] = None, zero_gamma: bool = False) -> layers.Layer:
    """BatchNormalization with ``model.bn_momentum``.

    ``zero_gamma`` starts a residual branch at zero so each block begins as the
    identity (Goyal et al. 2017); it changes no parameter count.
    """
    return layers.BatchNormalization(
        momentum=mcfg.bn_momentum,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )


def conv_bn(
    x,
    mcfg: ModelConfig,
    filters: int,
    kernel_size: int,
    strides: int = 1,
    *,
    activate: bool = True,
    zero_gamma: bool = False,
    kernel_initializer: str = "glorot_uniform",
    name: str,
):
    """Conv2D ('same' padding) -> BatchNorm (if ``model.batch_norm``) -> activation (if ``activate``).

    The conv has no bias when BatchNorm follows: BN's beta does the same job, and
    this is what the published parameter counts assume.

    Example:
        >>> y = conv_bn(keras.Input((8, 8, 1)), ModelConfig(), 4, 3, name="c")
        >>> tuple(y.shape)
        (None, 8, 8, 4)
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not mcfg.batch_norm,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=regularizer(mcfg),
        name=f"{name}_conv",
    )(x)
    if mcfg.batch_norm:
        x = batch_norm(mcfg, name=f"{name}_bn", zero_gamma=zero_gamma)(x)
    if activate:
        x = layers.Activation(mcfg.activation, name=f"{name}_act")(x)
    return x


def dense_bn(x, mcfg: ModelConfig, units: int, *, name: str):
    """Dense -> BatchNorm (if ``model.batch_norm``) -> activation -> Dropout (if ``model.dropout``).

    Example:
        >>> y = dense_bn(keras.Input((8,)), ModelConfig(), 4, name="d")
        >>> tuple(y.shape)
        (None, 4)
    """
    x = layers.Dense(units, use_bias=not mcfg.batch_norm, kernel_regularizer=regularizer(mcfg), name=f"{name}_dense")(x)
    if mcfg.batch_norm:
        x = batch_norm(mcfg, name=f"{name}_bn")(x)
    x = layers.Activation(mcfg.activation, name=f"{name}_act")(x)
    return dropout(x, mcfg, name=f"{name}_dropout")


def dropout(x, mcfg: ModelConfig, *, name: str):
    """Dropout at ``model.dropout``; no layer at all when it is 0 (keeps summaries short)."""
    if mcfg.dropout > 0:
        x = layers.Dropout(mcfg.dropout, name=name)(x)
    return x


__all__ = ["regularizer", "batch_norm", "conv_bn", "dense_bn", "dropout"]
