"""``model.type: transformer`` -- a Transformer encoder classifier/regressor.

Token ids -> Embedding (id 0 = padding, masked) or float sequences -> Dense
projection to ``embedding_dim``; plus a learned position embedding; then
``num_layers`` post-norm encoder blocks (Vaswani et al. 2017): self-attention
and a two-layer FFN, each with dropout, a residual connection and
LayerNormalization; a masked global average pool; the head.
"""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras, tf
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import dropout, regularizer
from kerasopt.models.recurrent import sequence_inputs
from kerasopt.models.registry import MODELS

layers = keras.layers


@keras.saving.register_keras_serializable(package="kerasopt")
class PositionEmbedding(layers.Layer):
    """Adds a learned ``(sequence_length, dim)`` embedding to its input; passes the mask through.

    Example:
        >>> PositionEmbedding(20)(tf.zeros((2, 20, 8))).shape
        TensorShape([2, 20, 8])
    """

    def __init__(self, sequence_length: int, initializer: str = "glorot_uniform", **kwargs) -> None:
        super().__init__(**kwargs)
        if sequence_length < 1:
            raise ValueError(f"`sequence_length` must be >= 1. Received: sequence_length={sequence_length}")
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.sequence_length, int(input_shape[-1])), initializer=self.initializer
        )
        super().build(input_shape)

    def call(self, inputs):
        length = tf.shape(inputs)[1]
        return inputs + tf.cast(self.embeddings[:length], inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            sequence_length=self.sequence_length, initializer=keras.initializers.serialize(self.initializer)
        )
        return config


def encoder_block(x, mcfg: ModelConfig, name: str):
    """Self-attention + FFN, each: dropout, residual add, LayerNorm (post-norm)."""
    reg = regularizer(mcfg)
    attn = layers.MultiHeadAttention(
        mcfg.num_heads,
        key_dim=mcfg.embedding_dim // mcfg.num_heads,
        dropout=mcfg.dropout,
        kernel_regularizer=reg,
        name=f"{name}_attention",
    )(x, x)  # the padding mask travels on x and masks both queries and keys
    attn = dropout(attn, mcfg, name=f"{name}_attention_dropout")
    x = layers.Add(name=f"{name}_add1")([x, attn])
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_attention_norm")(x)
    ff = layers.Dense(mcfg.ff_dim, activation=mcfg.activation, kernel_regularizer=reg, name=f"{name}_ffn1")(x)
    ff = layers.Dense(mcfg.embedding_dim, kernel_regularizer=reg, name=f"{name}_ffn2")(ff)
    ff = dropout(ff, mcfg, name=f"{name}_ffn_dropout")
    x = layers.Add(name=f"{name}_add2")([x, ff])
    return layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ffn_norm")(x)


@MODELS.register("transformer")
def build_transformer(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """Encoder classifier: embedding (+positions), ``num_layers`` blocks of ``num_heads``/``ff_dim``, pool, head.

    Example:
        >>> m = build_transformer(ModelConfig(type="transformer", embedding_dim=16, num_heads=2, ff_dim=32,
        ...                                   vocab_size=50), (20,), Head("multiclass", 3))
        >>> m.output_shape
        (None, 3)
    """
    inputs, x = sequence_inputs(mcfg, input_shape, spec)
    if x is inputs:  # float sequences: project the features to the model width
        x = layers.Dense(mcfg.embedding_dim, kernel_regularizer=regularizer(mcfg), name="projection")(x)
    x = PositionEmbedding(input_shape[0], name="position_embedding")(x)
    x = dropout(x, mcfg, name="embedding_dropout")
    for i in range(mcfg.num_layers):
        x = encoder_block(x, mcfg, name=f"encoder{i + 1}")
    x = layers.GlobalAveragePooling1D(name="avg_pool")(x)  # mean over the unmasked steps only
    x = dropout(x, mcfg, name="dropout")
    outputs = add_head(x, head, regularizer(mcfg))
    return keras.Model(inputs, outputs, name=mcfg.type)


__all__ = ["build_transformer", "PositionEmbedding", "encoder_block"]
