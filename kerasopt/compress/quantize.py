"""Quantization-aware training with TF-MOT (the model side; conversion lives in ``convert``)."""

from __future__ import annotations

from kerasopt._keras import keras
from kerasopt.errors import ConfigError


def apply_qat(model: keras.Model) -> keras.Model:
    """``tfmot.quantization.keras.quantize_model``: fake-quantize weights and activations so
    fine-tuning learns the int8 ranges. Unsupported layers are named in the error."""
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise ConfigError("QAT needs TensorFlow Model Optimization: pip install 'kerasopt[compress]'") from None
    try:
        return tfmot.quantization.keras.quantize_model(model)
    except (ValueError, RuntimeError, TypeError) as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"quantization-aware training cannot wrap this model: {first} "
                          "(drop quantize.qat to use post-training quantization only)", key="quantize.qat") from None
