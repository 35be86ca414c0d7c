"""``model.type: cnn`` -- a VGG-style image classifier (the digits demo model)."""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models.checks import require_image
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import conv_bn, dense_bn, dropout, regularizer
from kerasopt.models.registry import MODELS


@MODELS.register("cnn")
def build_cnn(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """One block per ``filters`` entry, global average pooling, optional Dense, head.

    A block is two ``kernel_size`` convs (each Conv -> BatchNorm -> activation)
    and a 2x2 max-pool. The pool uses 'same' padding so any image size works
    (a 1x1 map stays 1x1 instead of vanishing). The Dense block is Dense ->
    BatchNorm -> activation -> Dropout (``dropout``); ``dense_units: 0`` goes
    from the pooled features (then Dropout) straight to the head.

    Example:
        >>> m = build_cnn(ModelConfig(filters=[8, 16]), (32, 32, 1), Head("multiclass", 10))
        >>> m.output_shape
        (None, 10)
    """
    require_image(mcfg, input_shape)
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    for i, filters in enumerate(mcfg.filters):
        x = conv_bn(x, mcfg, filters, mcfg.kernel_size, name=f"block{i + 1}a")
        x = conv_bn(x, mcfg, filters, mcfg.kernel_size, name=f"block{i + 1}b")
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{i + 1}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if mcfg.dense_units:
        x = dense_bn(x, mcfg, mcfg.dense_units, name="dense")
    else:
        x = dropout(x, mcfg, name="dropout")
    outputs = add_head(x, head, regularizer(mcfg))
    return keras.Model(inputs, outputs, name=mcfg.type)
