"""``model.type: efficientnet`` and ``mobilenet_v2`` -- keras.applications backbones, our head.

Also ``resnet`` with ``model.weights`` (keras.applications ResNet50/101; without
weights, ``resnet`` is kerasopt's own v1.5 builder in ``resnet.py``).

**With ``model.weights``** (``imagenet`` or a file) the architecture is the one
the ImageNet weights were trained with: the model takes raw 0..255 RGB pixels
and starts with that family's ImageNet preprocessing
(``pretrained.imagenet_preprocessing``; EfficientNet keeps its own Rescaling and
Normalization, plus the stddev rescaling keras.applications adds for
``imagenet``), so a file or a served model needs no outside preprocessing.
``imagenet`` needs 3 channels. A file is loaded by layer name and shape after
the build (``pretrained.load_backbone_file``, strict).

Choices made here without ``model.weights`` (random weights):

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
from kerasopt.errors import ConfigError
from kerasopt.models.checks import require_image
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import dropout, regularizer
from kerasopt.models.pretrained import fetch_imagenet, imagenet_preprocessing
from kerasopt.models.registry import MODELS

MIN_SIZE = 32
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)  # keras.applications.efficientnet
_EFFICIENTNETS: dict[str, str] = {f"b{i}": f"EfficientNetB{i}" for i in range(8)}
_REGULARIZED = {"Conv2D": ("kernel_regularizer",), "Dense": ("kernel_regularizer",),
                "DepthwiseConv2D": ("depthwise_regularizer",)}


def _finish(mcfg: ModelConfig, inputs, backbone: keras.Model, head: Head) -> keras.Model:
    """Shared tail: BN momentum, no 0..255 rescaling (random weights), dropout + head, regularizers."""
    for layer in backbone.layers:
        # Both attributes are read when the layer is called (the train step is
        # traced later) and by get_config(), so saved models agree.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = mcfg.bn_momentum
        elif isinstance(layer, keras.layers.Rescaling) and mcfg.weights is None:
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
    rebuilt = keras.Model.from_config(config)
    rebuilt.set_weights(model.get_weights())  # pretrained weights survive the rebuild
    return rebuilt


def _build(mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, app: Callable, **kwargs) -> keras.Model:
    require_image(mcfg, input_shape, min_size=MIN_SIZE)
    inputs = keras.Input(shape=input_shape, name="inputs")
    if mcfg.weights == "imagenet" and input_shape[-1] != 3:
        raise ConfigError(f"imagenet weights take RGB images (3 channels) and the data has {input_shape[-1]}; "
                          "use data.channels: 3, or leave model.weights out. "
                          f"Received: input_shape={list(input_shape)}", key="model.weights")
    x = inputs if mcfg.weights is None else imagenet_preprocessing(mcfg.type, inputs)
    if mcfg.weights == "imagenet":
        what = getattr(app, "__name__", mcfg.type)
        backbone = fetch_imagenet(lambda: app(include_top=False, weights="imagenet", input_tensor=x,
                                              pooling="avg", **kwargs), what)
    else:
        backbone = app(include_top=False, weights=None, input_tensor=x, pooling="avg", **kwargs)
        if mcfg.weights is not None and mcfg.type == "efficientnet":
            backbone = _efficientnet_stddev(backbone)
    return _finish(mcfg, backbone.inputs[0], backbone, head)


def _efficientnet_stddev(backbone: keras.Model) -> keras.Model:
    """Add the Rescaling keras.applications puts after EfficientNet's Normalization for ``imagenet`` only.

    Its ImageNet files store the stddev where the variance belongs; with ``weights='imagenet'`` Keras
    divides once more by sqrt(stddev). A file given as a path must get the same architecture.
    """
    import math

    config = backbone.get_config()
    norm = next(layer for layer in config["layers"] if layer["class_name"] == "Normalization")
    name = f"{norm['config']['name']}_stddev"
    fix = {"class_name": "Rescaling", "name": name, "inbound_nodes": [[[norm["name"], 0, 0, {}]]],
           "config": {"name": name, "trainable": True, "dtype": norm["config"].get("dtype", "float32"),
                      "scale": [1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB], "offset": 0.0}}
    for layer in config["layers"]:
        for node in layer.get("inbound_nodes", []):
            for inbound in node:
                if inbound[0] == norm["name"]:
                    inbound[0] = name
    config["layers"].insert(config["layers"].index(norm) + 1, fix)
    return keras.Model.from_config(config)


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


def build_pretrained_resnet(mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head) -> keras.Model:
    """``keras.applications.ResNet50/101`` (v1) for ``model.type: resnet`` with ``model.weights``.

    Example:
        >>> m = build_pretrained_resnet(ModelConfig(type="resnet", weights="w.h5"), (32, 32, 3),
        ...                             Head("multiclass", 10))  # doctest: +SKIP
    """
    app = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101}[mcfg.depth]
    return _build(mcfg, input_shape, head, app)


__all__ = ["build_efficientnet", "build_mobilenet_v2", "build_pretrained_resnet", "MIN_SIZE"]
