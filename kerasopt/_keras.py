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

import contextlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

_NOISE = ("I0000", "WARNING: All log messages before absl", "E0000",
          # TFLite's converter and interpreter print these from C++ on every conversion / first invoke
          "INFO: Created TensorFlow Lite", "fully_quantize:")


@contextlib.contextmanager
def quiet_native_stderr():
    """Drop TensorFlow's native start-up lines (oneDNN notice, "no cuda drivers", cuInit on a
    GPU-less box) written to fd 2 before logging is set up; pass everything else through.

    No environment variable silences those lines, and they bury the progress display.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # notebooks and captured streams
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode(errors="replace").splitlines(keepends=True):
                if not line.startswith(_NOISE):
                    sys.stderr.write(line)


def _import_quietly():
    with quiet_native_stderr():
        import tensorflow
        import tf_keras

        # The first device query probes CUDA and prints "failed call to cuInit" on a GPU-less machine;
        # doing it here, silenced, means no later op of any verb prints it. (Listing physical devices
        # does not create the runtime context: MultiWorkerMirroredStrategy can still be set up after.)
        tensorflow.config.list_physical_devices("GPU")
    tensorflow.get_logger().setLevel("ERROR")  # "callback is slow" and retracing chatter
    return tensorflow, tf_keras


tf, keras = _import_quietly()

__all__ = ["keras", "tf", "gpus", "is_tf_keras_model", "quiet_native_stderr"]


def gpus() -> list:
    """``tf.config.list_physical_devices("GPU")`` without the cuInit error line TensorFlow prints
    on its first device query on a machine without a GPU (later queries are cached and silent)."""
    with quiet_native_stderr():
        return tf.config.list_physical_devices("GPU")


def is_tf_keras_model(obj: object) -> bool:
    """True when ``obj`` is a tf_keras (Keras 2) model.

    Example:
        >>> is_tf_keras_model(keras.Sequential())
        True
    """
    return isinstance(obj, keras.Model)
