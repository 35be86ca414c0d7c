"""Experiment configuration: schema, loading and checks. Imports no TensorFlow."""

from kerasopt.config.loader import apply_overrides, deep_merge, dump_config, load_config, read_yaml, validate_dict
from kerasopt.config.schema import ExperimentConfig

__all__ = [
    "ExperimentConfig", "apply_overrides", "deep_merge", "dump_config", "load_config", "read_yaml", "validate_dict",
]
