"""``model.type: efficientnet`` and ``mobilenet_v2`` -- keras.applications backbones, our head.

Choices made here (weights are always random: ``weights=None``):

* **Inputs are used as the data pipeline delivers them**, like every other
  builder. EfficientNet has a built-in ``Rescaling(1/255)`` for ImageNet
  pixels in 0..255; its scale is set to 1 here, because on data already in
  0..1 the extra division shrinks the stem's activations to the order of
  BatchNorm's epsilon. Scale inputs with ``data.normalize``.
* **Any channel count works, 1 included**: with random weights the stem conv
  simply has ``channels`` input channels; no adapter layer, nothing to learn.
* **Minimum size 32x32** (what keras.applications accepts); smaller images
  raise ``ConfigError`` (key ``model.type``) suggesting ``data.resize``.
* ``bn_momentum`` replaces the backbones' own BatchNorm momentum (0.99 for
  EfficientNet, 0.999 for MobileNetV2: both too slow for small data sets);
  ``l1``/``l2`` go on every conv/dense kernel (the model is rebuilt from its
  config, so the penalty survives saving); ``dropout`` is applied before the
  head. The backbones keep their own activations (swish, relu6).
* The backbone's layers are inlined into the returned model (no nested
  model), which pruning and per-layer policies need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models.checks import require_image
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import dropout, regularizer
from kerasopt.models.registry import MODELS

MIN_SIZE = 32
_EFFICIENTNETS: dict[str, str] = {f"b{i}": f"EfficientNetB{i}" for i in range(8)}
_REGULARIZED = {"Conv2D": ("kernel_regularizer",), "Dense": ("kernel_regularizer",),
                "DepthwiseConv2D": ("depthwise_regularizer",)}


def _finish(mcfg: ModelConfig, inputs, backbone: keras.Model, head: Head) -> keras.Model:
    """Shared tail: BN momentum, no 0..255 rescaling, dropout + head, regularizers."""
    for layer in backbone.layers:
        # Both attributes are read when the layer is called (the train step is
        # traced later) and by get_config(), so saved models agree.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = mcfg.bn_momentum
        elif isinstance(layer, keras.layers.Rescaling):
            layer.scale, layer.offset = 1.0, 0.0
    x = dropout(backbone.output, mcfg, name="dropout")
    outputs = add_head(x, head, regularizer(mcfg))
    model = keras.Model(inputs, outputs, name=mcfg.type)
    reg = regularizer(mcfg)
    if reg is not None:
        model = _with_regularizer(model, reg)
    return model


def _with_regularizer(model: keras.Model, reg: keras.regularizers.Regularizer) -> keras.Model:
    """Rebuild ``model`` from its config with ``reg`` on every kernel.

    Regularization losses are registered when a weight is created, so setting
    the attribute on built layers would do nothing; a config round trip also
    keeps the penalty in saved models (``add_loss`` callables are not saved).
    """
    config = model.get_config()
    for layer in config["layers"]:
        for key in _REGULARIZED.get(layer["class_name"], ()):
            layer["config"][key] = keras.regularizers.serialize(reg)
    return keras.Model.from_config(config)


def _build(mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, app: Callable, **kwargs) -> keras.Model:
    require_image(mcfg, input_shape, min_size=MIN_SIZE)
    inputs = keras.Input(shape=input_shape, name="inputs")
    backbone = app(include_top=False, weights=None, input_tensor=inputs, pooling="avg", **kwargs)
    return _finish(mcfg, inputs, backbone, head)


@MODELS.register("efficientnet")
def build_efficientnet(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """``keras.applications.EfficientNetB0..B7`` (``variant``), average pooled, our head.

    Example:
        >>> m = build_efficientnet(ModelConfig(type="efficientnet"), (32, 32, 1), Head("multiclass", 10))
        >>> m.output_shape
        (None, 10)
    """
    app = getattr(keras.applications, _EFFICIENTNETS[mcfg.variant])
    return _build(mcfg, input_shape, head, app)


@MODELS.register("mobilenet_v2")
def build_mobilenet_v2(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """``keras.applications.MobileNetV2(alpha=...)``, average pooled, our head.

    Example:
        >>> m = build_mobilenet_v2(ModelConfig(type="mobilenet_v2", alpha=0.35), (32, 32, 3),
        ...                        Head("binary", 1))
        >>> m.output_shape
        (None, 1)
    """
    return _build(mcfg, input_shape, head, keras.applications.MobileNetV2, alpha=mcfg.alpha)


__all__ = ["build_efficientnet", "build_mobilenet_v2", "MIN_SIZE"]
