"""Data sources and the tf.data pipeline. See ``kerasopt.data.pipeline.build_datasets``."""

from kerasopt.data.spec import DataSpec

__all__ = ["DataSpec", "build_datasets", "DataBundle"]


def __getattr__(name: str):
    # Lazy: importing kerasopt.data must not import TensorFlow (the CLI's --help path).
    if name in ("build_datasets", "DataBundle"):
        from kerasopt.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
