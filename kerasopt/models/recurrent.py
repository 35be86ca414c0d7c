"""``model.type: lstm`` and ``gru`` -- stacked recurrent classifiers/regressors.

Inputs are float sequences ``(timesteps, features)`` or token ids
``(timesteps,)`` (int32 data, or ``model.vocab_size`` set). Token ids go
through ``Embedding(vocab_size, embedding_dim, mask_zero=True)``: id 0 is
padding and is masked out of every recurrent step. The cells keep their
standard tanh/sigmoid activations (``model.activation`` does not apply): that
is what the fused cuDNN kernel requires and what keeps the state bounded.
"""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.models.checks import is_token_input, require_sequence, resolve_vocab
from kerasopt.models.heads import Head, add_head
from kerasopt.models.layers import dropout, regularizer
from kerasopt.models.registry import MODELS

layers = keras.layers


def sequence_inputs(mcfg: ModelConfig, input_shape: tuple[int, ...], spec: Optional[DataSpec]):
    """``(inputs, x)``: the Input layer and, for token ids, its masked embedding.

    Shared with the transformer builder. Raises ``ConfigError`` (``model.type``)
    when the shape is not a sequence, (``model.vocab_size``) when the vocabulary
    is unknown or too small.
    """
    tokens = is_token_input(mcfg, spec)
    require_sequence(mcfg, input_shape, tokens)
    if not tokens:
        inputs = keras.Input(shape=input_shape, name="inputs")
        return inputs, inputs
    vocab = resolve_vocab(mcfg, spec)
    inputs = keras.Input(shape=input_shape, dtype="int32", name="inputs")
    x = layers.Embedding(vocab, mcfg.embedding_dim, mask_zero=True, name="embedding")(inputs)
    return inputs, x


def _build(mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec], cell) -> keras.Model:
    inputs, x = sequence_inputs(mcfg, input_shape, spec)
    for i in range(mcfg.num_layers):
        last = i == mcfg.num_layers - 1
        rnn = cell(
            mcfg.units,
            return_sequences=not last,  # every layer but the last feeds a sequence to the next
            kernel_regularizer=regularizer(mcfg),
            name=f"{mcfg.type}{i + 1}",
        )
        if mcfg.bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"bi{mcfg.type}{i + 1}")
        x = rnn(x)
        # Dropout between layers rather than the cells' dropout=/recurrent_dropout=:
        # recurrent_dropout disables the cuDNN kernel.
        x = dropout(x, mcfg, name=f"dropout{i + 1}")
    outputs = add_head(x, head, regularizer(mcfg))
    return keras.Model(inputs, outputs, name=mcfg.type)


@MODELS.register("lstm")
def build_lstm(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """``num_layers`` stacked LSTMs of ``units`` (optionally ``bidirectional``), then the head.

    Example:
        >>> m = build_lstm(ModelConfig(type="lstm", units=16, vocab_size=50), (20,), Head("binary", 1))
        >>> m.output_shape
        (None, 1)
    """
    return _build(mcfg, input_shape, head, spec, layers.LSTM)


@MODELS.register("gru")
def build_gru(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """``num_layers`` stacked GRUs of ``units`` (optionally ``bidirectional``), then the head.

    Example:
        >>> m = build_gru(ModelConfig(type="gru", units=16, num_layers=2), (8, 8), Head("multiclass", 10))
        >>> m.output_shape
        (None, 10)
    """
    return _build(mcfg, input_shape, head, spec, layers.GRU)


__all__ = ["build_lstm", "build_gru", "sequence_inputs"]
