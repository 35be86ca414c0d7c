"""Model builders: ``build_model(cfg, spec)`` turns the ``model:`` section and the data into a tf_keras model.

Importing this package registers every builder in ``MODELS`` (one per
``model.type``). A builder is a pure function::

    build_<x>(mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head,
              spec: DataSpec | None = None) -> keras.Model

Every model ends in the same two float32 layers, ``head`` (Dense) and
``predictions`` (softmax / sigmoid / linear), so outputs are probabilities
and stay float32 under mixed precision.
"""

from __future__ import annotations

from typing import Union

from kerasopt._keras import keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models import applications, cnn, custom, mlp, recurrent, resnet, transformer  # noqa: F401 (register)
from kerasopt.models.checks import check_activation, check_token_support, resolve_input_shape
from kerasopt.models.heads import Head, add_head, resolve_head
from kerasopt.models.registry import MODELS


def check_shared_knobs(mcfg: ModelConfig) -> None:
    """Reject shared keys set in the config that the chosen type would ignore.

    Example:
        >>> check_shared_knobs(ModelConfig(type="lstm", activation="gelu"))
        Traceback (most recent call last):
        ...
        kerasopt.errors.ConfigError: model.activation: does not apply to type 'lstm' ...
    """
    for key in sorted(mcfg.model_fields_set):
        why = mcfg.UNUSED.get(key)  # declared per type in kerasopt/config/model_schema.py
        if why is not None:
            raise ConfigError(
                f"does not apply to type '{mcfg.type}' ({mcfg.type} {why}); remove it. "
                f"Received: {key}={getattr(mcfg, key)!r}",
                key=f"model.{key}",
            )
    if mcfg.type in ("efficientnet", "mobilenet_v2") and not mcfg.batch_norm:
        raise ConfigError(
            f"{mcfg.type} always uses BatchNorm (keras.applications); remove batch_norm: false. "
            "Received: batch_norm=False",
            key="model.batch_norm",
        )


def build_model(cfg: Union[ExperimentConfig, ModelConfig], spec: DataSpec) -> keras.Model:
    """Build the tf_keras model for ``cfg.model`` and data described by ``spec``.

    Resolves the head (``resolve_head``), checks ``model.input_shape`` /
    ``model.num_classes`` against the data, calls the registered builder and
    names the model ``cfg.model.type``. Raises ``ConfigError`` (with the key)
    when the config and the data do not fit together. Accepts the whole
    ``ExperimentConfig`` or just its ``ModelConfig``.

    Example:
        >>> spec = DataSpec((32, 32, 1), "classification", 10, 1437, 360)
        >>> cfg = ExperimentConfig(data={"source": "sklearn", "name": "digits", "resize": [32, 32]},
        ...                        model={"type": "cnn", "filters": [8, 16]})
        >>> m = build_model(cfg, spec)
        >>> m.name, m.output_shape
        ('cnn', (None, 10))
    """
    mcfg = cfg.model if isinstance(cfg, ExperimentConfig) else cfg
    builder = MODELS.get(mcfg.type)
    check_shared_knobs(mcfg)
    if mcfg.type != "custom":
        check_activation(mcfg)
    check_token_support(mcfg, spec)
    input_shape = resolve_input_shape(mcfg, spec)
    head = resolve_head(mcfg, spec)
    model = builder(mcfg, input_shape, head, spec=spec)
    if model.name != mcfg.type:
        model._name = mcfg.type  # the run record and summaries name the model by its type
    return model


__all__ = [
    "MODELS", "build_model", "resolve_head", "add_head", "Head", "check_shared_knobs",
]
