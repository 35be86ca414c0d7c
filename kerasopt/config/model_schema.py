"""The ``model:`` section: which registered builder and its knobs.

``model.type`` picks one option class; each has the shared keys of :class:`ModelConfig` and
only its own builder's keys (``model: {type: mlp, filters: ...}`` is an error naming
``model.filters``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import Field, model_validator

from kerasopt.config.base import Choice, FieldError, choice_union

MODEL_TYPES = (
    "mlp", "cnn", "resnet", "efficientnet", "mobilenet_v2", "lstm", "gru", "transformer", "custom",
)
HEADS = ("auto", "multiclass", "binary", "regression")
PRETRAINED_RESNET_DEPTHS = (50, 101)  # keras.applications.ResNet50 / ResNet101


class ModelConfig(Choice):
    """The keys every model type has. ``ModelConfig(type=...)`` builds that type's option.

    Example:
        ``model: {type: cnn, filters: [32, 64], dropout: 0.2, batch_norm: true}``
    """

    DEFAULT: ClassVar[str] = "cnn"
    OPTIONS: ClassVar[dict[str, Any]] = {}
    # Shared keys this type's builder ignores -> why. Setting one is an error when the model is built
    # (kerasopt/models/__init__.py), and an extends: that switches to this type drops the parent's.
    UNUSED: ClassVar[dict[str, str]] = {}

    type: Literal[MODEL_TYPES] = "cnn"  # type: ignore[valid-type]
    head: Literal[HEADS] = Field(  # type: ignore[valid-type]
        "auto", description="auto: regression for float labels, binary for 2 classes, else multiclass"
    )
    num_classes: Optional[int] = Field(None, ge=1, description="inferred from the labels when left out")
    input_shape: Optional[list[int]] = Field(None, description="inferred from the data when left out")

    # regularization, every builder
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    l1: float = Field(0.0, ge=0.0)
    l2: float = Field(0.0, ge=0.0)
    batch_norm: bool = True
    # 0.9, not Keras' 0.99: on small data sets (digits: 12 steps an epoch) the
    # moving statistics never catch up at 0.99 and validation stays at 10-24%.
    bn_momentum: float = Field(0.9, gt=0.0, lt=1.0)
    activation: str = "relu"

    # transfer learning (kerasopt/models/pretrained.py, kerasopt/training/freezing.py)
    init_from: Optional[str] = Field(
        None, description="warm start: a run directory or .keras/.h5 file; layers matched by name and shape")
    freeze: Union[Literal["backbone"], list[str], None] = Field(
        None, description="'backbone' (every layer but the head) or layer-name patterns ('stage1_*'); "
        "frozen BatchNorm layers run in inference mode")

    @property
    def pretrained(self) -> Optional[str]:
        """``weights`` of the types that take pretrained backbones; None for every other type."""
        return None

    @model_validator(mode="after")
    def _shared(self) -> ModelConfig:
        if isinstance(self.freeze, list) and not self.freeze:
            raise FieldError("freeze", "an empty list freezes nothing; leave freeze out instead")
        if self.input_shape is not None and (not self.input_shape or min(self.input_shape) <= 0):
            raise FieldError("input_shape", f"input_shape must list positive sizes. Received: {self.input_shape}")
        return self


class MLPModel(ModelConfig):
    type: Literal["mlp"] = "mlp"
    hidden_units: list[int] = Field(default_factory=lambda: [128, 64])


class CNNModel(ModelConfig):
    type: Literal["cnn"] = "cnn"
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128])
    kernel_size: int = Field(3, ge=1)
    dense_units: int = Field(128, ge=0, description="0: global pooling straight into the head")


class PretrainedModel(ModelConfig):
    """The types that can start from ``keras.applications`` backbones (not a ``type`` of its own)."""

    weights: Optional[str] = Field(
        None, description="resnet (50/101), efficientnet, mobilenet_v2: 'imagenet' (downloaded once by "
        "keras.applications) or a local .h5/.keras file of such a backbone; the model then takes raw 0..255 "
        "pixels and does the ImageNet preprocessing itself")

    @property
    def pretrained(self) -> Optional[str]:
        return self.weights


class ResNetModel(PretrainedModel):
    """ResNet v1.5; with ``weights``, keras.applications' ResNet50/101."""

    type: Literal["resnet"] = "resnet"
    depth: Literal[18, 34, 50, 101] = 50
    small_image_stem: bool = Field(False, description="3x3 stride-1 stem, no max-pool (CIFAR-size input)")
    width: int = Field(64, ge=8, description="channels of the first stage")

    @model_validator(mode="after")
    def _pretrained(self) -> ResNetModel:
        if self.weights is None:
            return self
        if self.depth not in PRETRAINED_RESNET_DEPTHS:
            raise FieldError("depth", f"pretrained resnet weights (keras.applications) exist for depth 50 and 101. "
                             f"Received: depth={self.depth}, weights={self.weights!r}")
        for key in ("small_image_stem", "width"):
            if key in self.model_fields_set and getattr(self, key) != type(self).model_fields[key].default:
                raise FieldError(key, f"does not apply to a pretrained resnet (keras.applications' "
                                 f"architecture is fixed); remove it or weights. Received: {key}="
                                 f"{getattr(self, key)!r}")
        return self


class EfficientNetModel(PretrainedModel):
    """keras.applications' EfficientNet B0-B7 (``weights: null`` trains from scratch)."""

    UNUSED: ClassVar[dict[str, str]] = {"activation": "uses its own activations"}

    type: Literal["efficientnet"] = "efficientnet"
    variant: Literal["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"] = "b0"


class MobileNetV2Model(PretrainedModel):
    UNUSED: ClassVar[dict[str, str]] = {"activation": "uses its own activations"}

    type: Literal["mobilenet_v2"] = "mobilenet_v2"
    alpha: float = Field(1.0, gt=0.0)


class SequenceModel(ModelConfig):
    """Keys shared by the sequence models (not a ``type`` of its own)."""

    num_layers: int = Field(1, ge=1)
    vocab_size: Optional[int] = Field(None, ge=2, description="token input: adds an Embedding")
    embedding_dim: int = Field(64, ge=1)


class RecurrentModel(SequenceModel):
    """lstm and gru (not a ``type`` of its own)."""

    UNUSED: ClassVar[dict[str, str]] = {
        "activation": "cells keep tanh/sigmoid (cuDNN needs them)",
        "batch_norm": "has no BatchNorm", "bn_momentum": "has no BatchNorm",
    }

    units: int = Field(64, ge=1)
    bidirectional: bool = False


class LSTMModel(RecurrentModel):
    type: Literal["lstm"] = "lstm"


class GRUModel(RecurrentModel):
    type: Literal["gru"] = "gru"


class TransformerModel(SequenceModel):
    UNUSED: ClassVar[dict[str, str]] = {k: "uses LayerNormalization" for k in ("batch_norm", "bn_momentum")}

    type: Literal["transformer"] = "transformer"
    num_heads: int = Field(4, ge=1)
    ff_dim: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _heads(self) -> TransformerModel:
        if self.embedding_dim % self.num_heads:
            raise FieldError(
                "embedding_dim",
                "embedding_dim must be divisible by num_heads. "
                f"Received: embedding_dim={self.embedding_dim}, num_heads={self.num_heads}"
            )
        return self


class CustomModel(ModelConfig):
    UNUSED: ClassVar[dict[str, str]] = {
        k: "is built by model.builder; pass it in model.kwargs"
        for k in ("dropout", "l1", "l2", "batch_norm", "bn_momentum", "activation")
    }

    type: Literal["custom"] = "custom"
    builder: Optional[str] = Field(None, description="'package.module:function' returning a tf_keras model")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="passed to the custom builder")

    @model_validator(mode="after")
    def _builder(self) -> CustomModel:
        if not self.builder or ":" not in self.builder:
            raise FieldError(
                "builder", f"type 'custom' needs builder: 'module:function'. Received: builder={self.builder!r}"
            )
        return self


# The annotation of the section in ExperimentConfig: the option named by ``type`` (default cnn).
AnyModel = choice_union(ModelConfig)
