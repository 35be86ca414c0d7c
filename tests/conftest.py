"""Test-wide settings: CPU only, Keras 2 (tf_keras), quiet TensorFlow, fixed seeds."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("MPLBACKEND", "Agg")
# Manifests, disk caches and calibration results go to a folder of this session, never ~/.cache.
import tempfile  # noqa: E402

os.environ.setdefault("KERASOPT_CACHE_DIR", tempfile.mkdtemp(prefix="kerasopt-test-cache-"))
# Calibration (precision/jit_compile auto measured on the CPU) would add seconds to every fit in the
# suite; its own tests turn it on. Users get it by default.
os.environ.setdefault("KERASOPT_AUTOTUNE", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Each test starts with a fresh Keras graph and the float32 policy."""
    yield
    import sys

    if "tf_keras" in sys.modules:
        keras = sys.modules["tf_keras"]
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy("float32")
