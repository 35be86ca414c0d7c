"""The ``model:`` section: which registered builder and its knobs."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field, model_validator

from kerasopt.config.base import FieldError, Strict, check_applicable

MODEL_TYPES = (
    "mlp", "cnn", "resnet", "efficientnet", "mobilenet_v2", "lstm", "gru", "transformer", "custom",
)
HEADS = ("auto", "multiclass", "binary", "regression")

_OWNERS: dict[str, tuple[str, ...]] = {
    "hidden_units": ("mlp",),
    "filters": ("cnn",),
    "kernel_size": ("cnn",),
    "dense_units": ("cnn",),
    "depth": ("resnet",),
    "small_image_stem": ("resnet",),
    "width": ("resnet",),
    "variant": ("efficientnet",),
    "alpha": ("mobilenet_v2",),
    "units": ("lstm", "gru"),
    "bidirectional": ("lstm", "gru"),
    "num_layers": ("lstm", "gru", "transformer"),
    "vocab_size": ("lstm", "gru", "transformer"),
    "embedding_dim": ("lstm", "gru", "transformer"),
    "num_heads": ("transformer",),
    "ff_dim": ("transformer",),
    "builder": ("custom",),
    "kwargs": ("custom",),
    "weights": ("resnet", "efficientnet", "mobilenet_v2"),
}
PRETRAINED_RESNET_DEPTHS = (50, 101)  # keras.applications.ResNet50 / ResNet101


class ModelConfig(Strict):
    """Example:
        ``model: {type: cnn, filters: [32, 64], dropout: 0.2, batch_norm: true}``
    """

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

    # mlp
    hidden_units: list[int] = Field(default_factory=lambda: [128, 64])
    # cnn
    filters: list[int] = Field(default_factory=lambda: [32, 64, 128])
    kernel_size: int = Field(3, ge=1)
    dense_units: int = Field(128, ge=0, description="0: global pooling straight into the head")
    # resnet (v1.5)
    depth: Literal[18, 34, 50, 101] = 50
    small_image_stem: bool = Field(False, description="3x3 stride-1 stem, no max-pool (CIFAR-size input)")
    width: int = Field(64, ge=8, description="channels of the first stage")
    # efficientnet / mobilenet_v2 (keras.applications, weights: null)
    variant: Literal["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"] = "b0"
    alpha: float = Field(1.0, gt=0.0)
    # lstm / gru / transformer
    units: int = Field(64, ge=1)
    bidirectional: bool = False
    num_layers: int = Field(1, ge=1)
    vocab_size: Optional[int] = Field(None, ge=2, description="token input: adds an Embedding")
    embedding_dim: int = Field(64, ge=1)
    num_heads: int = Field(4, ge=1)
    ff_dim: int = Field(128, ge=1)
    # custom
    builder: Optional[str] = Field(None, description="'package.module:function' returning a tf_keras model")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="passed to the custom builder")

    # transfer learning (kerasopt/models/pretrained.py, kerasopt/training/freezing.py)
    weights: Optional[str] = Field(
        None, description="resnet (50/101), efficientnet, mobilenet_v2: 'imagenet' (downloaded once by "
        "keras.applications) or a local .h5/.keras file of such a backbone; the model then takes raw 0..255 "
        "pixels and does the ImageNet preprocessing itself")
    init_from: Optional[str] = Field(
        None, description="warm start: a run directory or .keras/.h5 file; layers matched by name and shape")
    freeze: Union[Literal["backbone"], list[str], None] = Field(
        None, description="'backbone' (every layer but the head) or layer-name patterns ('stage1_*'); "
        "frozen BatchNorm layers run in inference mode")

    @model_validator(mode="after")
    def _type_keys(self) -> ModelConfig:
        check_applicable(self, "type", self.type, _OWNERS)
        if self.type == "custom":
            if not self.builder or ":" not in self.builder:
                raise FieldError(
                    "builder",
                    f"type 'custom' needs builder: 'module:function'. Received: builder={self.builder!r}"
                )
        if self.type == "transformer" and self.embedding_dim % self.num_heads:
            raise FieldError(
                "embedding_dim",
                "embedding_dim must be divisible by num_heads. "
                f"Received: embedding_dim={self.embedding_dim}, num_heads={self.num_heads}"
            )
        if self.weights is not None and self.type == "resnet" and self.depth not in PRETRAINED_RESNET_DEPTHS:
            raise FieldError("depth", f"pretrained resnet weights (keras.applications) exist for depth 50 and 101. "
                             f"Received: depth={self.depth}, weights={self.weights!r}")
        if self.weights is not None and self.type == "resnet":
            for key in ("small_image_stem", "width"):
                if key in self.model_fields_set and getattr(self, key) != type(self).model_fields[key].default:
                    raise FieldError(key, f"does not apply to a pretrained resnet (keras.applications' "
                                     f"architecture is fixed); remove it or weights. Received: {key}="
                                     f"{getattr(self, key)!r}")
        if isinstance(self.freeze, list) and not self.freeze:
            raise FieldError("freeze", "an empty list freezes nothing; leave freeze out instead")
        if self.input_shape is not None and (not self.input_shape or min(self.input_shape) <= 0):
            raise FieldError("input_shape", f"input_shape must list positive sizes. Received: {self.input_shape}")
        return self
