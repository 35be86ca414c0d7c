"""``model.type: mlp`` -- a stack of Dense blocks for tabular (or flattened) input."""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import dense_bn, regularizer
from kerasopt.models.registry import MODELS


@MODELS.register("mlp")
def build_mlp(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """Flatten (for inputs of rank > 1), then one Dense block per ``hidden_units`` entry, then the head.

    A block is Dense -> BatchNorm (``batch_norm``) -> ``activation`` -> Dropout
    (``dropout``); with BatchNorm the Dense has no bias.

    Example:
        >>> m = build_mlp(ModelConfig(type="mlp", hidden_units=[128, 64], batch_norm=False), (64,),
        ...               Head("multiclass", 10))
        >>> m.count_params() == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
        True
    """
    inputs = keras.Input(shape=input_shape, name="inputs")
    x = inputs
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(mcfg.hidden_units):
        x = dense_bn(x, mcfg, units, name=f"block{i + 1}")
    outputs = add_head(x, head, regularizer(mcfg))
    return keras.Model(inputs, outputs, name=mcfg.type)
