"""The one place tf_keras (Keras 2) is imported.

TF-MOT 0.8 and Horovod's Keras binding only accept tf_keras models, so the
whole engine uses Keras 2 through this module: ``from kerasopt._keras import
keras``. ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is imported so that
``tf.keras`` means the same thing. Moving to Keras 3 is a change to this file.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ INFO/WARNING chatter buries the progress display.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["keras", "tf", "is_tf_keras_model"]


def is_tf_keras_model(obj: object) -> bool:
    """True when ``obj`` is a tf_keras (Keras 2) model.

    Example:
        >>> is_tf_keras_model(keras.Sequential())
        True
    """
    return isinstance(obj, keras.Model)
