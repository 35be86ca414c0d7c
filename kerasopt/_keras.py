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

import sys  # noqa: E402
import tempfile  # noqa: E402


def _import_quietly():
    """Import TensorFlow with its pre-absl INFO lines (oneDNN, "no cuda drivers") filtered out.

    Those lines are written by C++ before logging is initialised, so no
    environment variable silences them; they would bury the progress display.
    Anything else written to stderr during the import is passed through.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # notebooks and captured streams
        import tensorflow
        import tf_keras

        return tensorflow, tf_keras
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            import tensorflow
            import tf_keras
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines(keepends=True):
                if line.startswith("I0000") or line.startswith("WARNING: All log messages before absl"):
                    continue
                sys.stderr.write(line)
    return tensorflow, tf_keras


tf, keras = _import_quietly()

__all__ = ["keras", "tf", "is_tf_keras_model"]


def is_tf_keras_model(obj: object) -> bool:
    """True when ``obj`` is a tf_keras (Keras 2) model.

    Example:
        >>> is_tf_keras_model(keras.Sequential())
        True
    """
    return isinstance(obj, keras.Model)
