"""Does the data fit the model? Input shape, token ids, vocabulary and activation checks.

Each check raises ``ConfigError`` with the key to change and, where it helps,
the model type or ``data.*`` setting that would fit.
"""

from __future__ import annotations

from typing import Optional

from kerasopt.config.model_schema import ModelConfig, SequenceModel
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.registry import suggest

# Types that read token ids; the others would treat ids as magnitudes.
TOKEN_TYPES = ("lstm", "gru", "transformer", "custom")
_ACTIVATIONS = (
    "relu", "relu6", "gelu", "swish", "silu", "elu", "selu", "leaky_relu", "mish", "tanh",
    "sigmoid", "hard_sigmoid", "softplus", "softsign", "exponential", "linear",
)


def shape_str(shape) -> str:
    """``(4,)`` rather than ``[4]`` or ``(4)``, so messages show shapes the way Python does."""
    return str(tuple(shape))


def resolve_input_shape(mcfg: ModelConfig, spec: DataSpec) -> tuple[int, ...]:
    """The per-example input shape: the data's, which ``model.input_shape`` (if set) must equal.

    Example:
        >>> resolve_input_shape(ModelConfig(), DataSpec((32, 32, 1), "classification", 10, 1, 1))
        (32, 32, 1)
    """
    shape = tuple(spec.input_shape)
    if mcfg.input_shape is not None and tuple(mcfg.input_shape) != shape:
        raise ConfigError(
            f"config says {shape_str(mcfg.input_shape)} but the data have shape {shape_str(shape)}. "
            f"Remove model.input_shape, or use data.resize/data.reshape to change the data. "
            f"Received: input_shape={list(mcfg.input_shape)}",
            key="model.input_shape",
        )
    return shape


def is_token_input(mcfg: ModelConfig, spec: Optional[DataSpec]) -> bool:
    """True when the inputs are token ids: int32 data or ``model.vocab_size`` set (sequence models)."""
    configured = isinstance(mcfg, SequenceModel) and mcfg.vocab_size is not None
    return (spec is not None and spec.input_dtype == "int32") or configured


def check_token_support(mcfg: ModelConfig, spec: DataSpec) -> None:
    """Reject token-id data for models that would read ids as numbers (mlp, cnn, ...)."""
    if spec.input_dtype == "int32" and mcfg.type not in TOKEN_TYPES:
        raise ConfigError(
            f"{mcfg.type} takes float features but the data are token ids (int32, shape "
            f"{shape_str(spec.input_shape)}). Use type: lstm, gru or transformer. Received: type={mcfg.type!r}",
            key="model.type",
        )


def require_image(mcfg: ModelConfig, input_shape: tuple[int, ...], min_size: int = 1) -> None:
    """Image models need (height, width, channels) and, for keras.applications, a minimum size."""
    if len(input_shape) != 3:
        hint = "Use type: mlp for tabular data, or data.reshape to make images"
        if len(input_shape) == 2:
            hint = f"Add a channel axis with data.reshape: [{input_shape[0]}, {input_shape[1]}, 1], or use type: mlp"
        elif len(input_shape) == 1:
            hint += " (e.g. data.reshape: [8, 8, 1] for 64 pixel values)"
        raise ConfigError(
            f"{mcfg.type} needs (height, width, channels) images and got shape {shape_str(input_shape)}. "
            f"{hint}. Received: input_shape={shape_str(input_shape)}",
            key="model.type",
        )
    if min(input_shape[:2]) < min_size:
        raise ConfigError(
            f"{mcfg.type} needs images of at least {min_size}x{min_size} and got "
            f"{input_shape[0]}x{input_shape[1]}. Use data.resize: [{min_size}, {min_size}] or larger. "
            f"Received: input_shape={shape_str(input_shape)}",
            key="model.type",
        )


def require_sequence(mcfg: ModelConfig, input_shape: tuple[int, ...], tokens: bool) -> None:
    """Sequence models need (timesteps,) token ids or (timesteps, features) floats."""
    want = 1 if tokens else 2
    if len(input_shape) == want:
        return
    if tokens:
        need = "token ids of shape (timesteps,)"
    else:
        need = "(timesteps, features) sequences"
    hint = "Use data.reshape, e.g. [8, 8] for 64 features as 8 steps of 8"
    if not tokens and len(input_shape) == 3:
        hint = "Use type: cnn or resnet for images, or data.reshape to [height, width * channels]"
    raise ConfigError(
        f"{mcfg.type} needs {need} and got shape {shape_str(input_shape)}. {hint}. "
        f"Received: input_shape={shape_str(input_shape)}",
        key="model.type",
    )


def resolve_vocab(mcfg: SequenceModel, spec: Optional[DataSpec]) -> int:
    """Embedding size: ``model.vocab_size`` wins, but must cover the data's largest id.

    Example:
        >>> resolve_vocab(ModelConfig(type="lstm"), DataSpec((20,), "classification", 2, 1, 1,
        ...                                                  input_dtype="int32", vocab_size=50))
        50
    """
    found = spec.vocab_size if spec is not None else None
    configured = mcfg.vocab_size
    if configured is not None and found is not None and configured < found:
        raise ConfigError(
            f"config says {configured} but the data's token ids need a vocabulary of {found} "
            f"(largest id {found - 1}). Raise model.vocab_size or remove it. Received: vocab_size={configured}",
            key="model.vocab_size",
        )
    vocab = configured if configured is not None else found
    if vocab is None:
        raise ConfigError(
            "token inputs need a vocabulary size and the data did not report one. Set model.vocab_size.",
            key="model.vocab_size",
        )
    return vocab


def check_activation(mcfg: ModelConfig) -> None:
    """Fail at build time, with the choices, rather than deep inside a layer constructor."""
    from kerasopt._keras import keras

    try:
        keras.activations.get(mcfg.activation)
    except (ValueError, TypeError):
        raise ConfigError(
            f"unknown activation '{mcfg.activation}'. Common choices: {', '.join(_ACTIVATIONS)}."
            f"{suggest(mcfg.activation, _ACTIVATIONS)} Received: activation={mcfg.activation!r}",
            key="model.activation",
        ) from None


__all__ = [
    "TOKEN_TYPES", "resolve_input_shape", "is_token_input", "check_token_support", "require_image",
    "require_sequence", "resolve_vocab", "check_activation", "shape_str",
]
