"""``model.type: resnet`` -- ResNet v1.5 (18/34 basic blocks, 50/101 bottleneck blocks).

v1.5 is the torchvision / NVIDIA variant: a bottleneck block downsamples on
its 3x3 conv rather than on the first 1x1 (about +0.5% top-1 on ImageNet for
the same parameter count). Convs followed by BatchNorm have no bias, so the
trainable parameter counts equal the published ones (ResNet-50: 25,557,032;
ResNet-18: 11,689,512, at 224x224x3 with 1000 classes). Keras additionally
counts BatchNorm's moving mean and variance as (non-trainable) parameters.
"""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models.checks import require_image
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import conv_bn, dropout, regularizer
from kerasopt.models.registry import MODELS

layers = keras.layers

# depth -> (bottleneck?, blocks per stage)
STAGES: dict[int, tuple[bool, tuple[int, int, int, int]]] = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
}
_INIT = "he_normal"  # He et al. 2015: keeps activations' variance steady through ReLU stacks


def _shortcut(x, mcfg: ModelConfig, filters: int, strides: int, name: str):
    """Identity, or a strided 1x1 projection (+BN) when the shape changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, mcfg, filters, 1, strides, activate=False, kernel_initializer=_INIT, name=f"{name}_proj")


def basic_block(x, mcfg: ModelConfig, filters: int, strides: int, name: str):
    """Two 3x3 convs; the last BN starts at zero so the block starts as the identity."""
    shortcut = _shortcut(x, mcfg, filters, strides, name)
    y = conv_bn(x, mcfg, filters, 3, strides, kernel_initializer=_INIT, name=f"{name}_1")
    y = conv_bn(y, mcfg, filters, 3, activate=False, zero_gamma=True, kernel_initializer=_INIT, name=f"{name}_2")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation(mcfg.activation, name=f"{name}_out")(y)


def bottleneck_block(x, mcfg: ModelConfig, filters: int, strides: int, name: str):
    """1x1 reduce, 3x3 (strided here: v1.5), 1x1 expand to ``4 * filters``."""
    shortcut = _shortcut(x, mcfg, 4 * filters, strides, name)
    y = conv_bn(x, mcfg, filters, 1, kernel_initializer=_INIT, name=f"{name}_1")
    y = conv_bn(y, mcfg, filters, 3, strides, kernel_initializer=_INIT, name=f"{name}_2")
    y = conv_bn(y, mcfg, 4 * filters, 1, activate=False, zero_gamma=True, kernel_initializer=_INIT, name=f"{name}_3")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation(mcfg.activation, name=f"{name}_out")(y)


@MODELS.register("resnet")
def build_resnet(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """ResNet-``depth`` v1.5 with stage widths ``width * [1, 2, 4, 8]``.

    Stem: 7x7/2 conv + 3x3/2 max-pool (ImageNet-size input), or with
    ``small_image_stem`` a 3x3/1 conv and no pool, so 32x32 images keep their
    resolution into the first stage (the CIFAR recipe). Global average pooling,
    Dropout (``dropout``), head. ``batch_norm: false`` gives the convs biases.

    Example:
        >>> m = build_resnet(ModelConfig(type="resnet", depth=18, width=8, small_image_stem=True),
        ...                  (32, 32, 3), Head("multiclass", 10))
        >>> m.output_shape
        (None, 10)
    """
    if mcfg.weights is not None:  # pretrained: keras.applications' ResNet50/101 (v1), see applications.py
        from kerasopt.models.applications import build_pretrained_resnet

        return build_pretrained_resnet(mcfg, input_shape, head)
    require_image(mcfg, input_shape)
    bottleneck, blocks = STAGES[mcfg.depth]
    block_fn = bottleneck_block if bottleneck else basic_block

    inputs = keras.Input(shape=input_shape, name="inputs")
    if mcfg.small_image_stem:
        x = conv_bn(inputs, mcfg, mcfg.width, 3, kernel_initializer=_INIT, name="stem")
    else:
        x = conv_bn(inputs, mcfg, mcfg.width, 7, 2, kernel_initializer=_INIT, name="stem")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, n_blocks in enumerate(blocks):
        filters = mcfg.width * 2**stage
        for b in range(n_blocks):
            strides = 2 if stage > 0 and b == 0 else 1
            x = block_fn(x, mcfg, filters, strides, name=f"stage{stage + 1}_block{b + 1}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = dropout(x, mcfg, name="dropout")
    outputs = add_head(x, head, regularizer(mcfg))
    return keras.Model(inputs, outputs, name=mcfg.type)


__all__ = ["build_resnet", "basic_block", "bottleneck_block", "STAGES"]
