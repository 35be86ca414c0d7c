"""Load a trained model from a run directory, a ``.keras`` file or a SavedModel folder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kerasopt._keras import keras
from kerasopt.errors import ConfigError


def find_model_file(target: Path) -> Path:
    """The model a compress verb starts from: a run's ``model/*.keras``, a ``.keras`` file or a
    SavedModel folder. Raises ``ConfigError`` naming what is missing."""
    if not target.exists():
        raise ConfigError(f"not found: {target}")
    if target.is_file():
        if target.suffix != ".keras":
            raise ConfigError(f"{target} is not a .keras model file")
        return target
    if (target / "saved_model.pb").is_file():
        return target
    if (target / "config.yaml").is_file():
        from kerasopt.export import find_exported_model

        found = find_exported_model(target)
        if found is None:
            raise ConfigError(f"{target} is a run directory without an exported model (model/*.keras): "
                              "let the run finish, or `kerasopt export` it from its checkpoint")
        return found
    raise ConfigError(f"{target} is neither a kerasopt run directory, a .keras file nor a SavedModel folder")


def load_model(target: Path | str, *, float32: bool = True) -> keras.Model:
    """Load the model at ``target`` (see :func:`find_model_file`) without its optimizer.

    With ``float32`` a model saved under a mixed-precision policy is rebuilt with float32 layers
    (same weights): TF-MOT and the converters expect float32 variables and compute.
    """
    import kerasopt.models  # noqa: F401  (registers custom layers such as PositionEmbedding)

    path = find_model_file(Path(target))
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # a corrupt or foreign file: name it
        raise ConfigError(f"cannot load model {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(model, keras.Model) or not hasattr(model, "get_config"):
        raise ConfigError(f"{path} holds no Keras model (a plain SavedModel cannot be fine-tuned)")
    if float32 and _is_mixed(model):
        model = to_float32(model)
    return model


def _is_mixed(model: keras.Model) -> bool:
    return any(getattr(layer, "compute_dtype", "float32") not in ("float32", None) for layer in _all_layers(model))


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _float32_config(node: Any) -> Any:
    """Replace every layer's ``dtype`` entry (a policy name or a serialized Policy) with float32."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "dtype" and (isinstance(v, dict) and v.get("class_name") == "Policy"
                                 or v in ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")):
                out[k] = "float32"
            else:
                out[k] = _float32_config(v)
        return out
    if isinstance(node, list):
        return [_float32_config(v) for v in node]
    return node


def to_float32(model: keras.Model) -> keras.Model:
    """A float32 copy of a mixed-precision model with the same weights."""
    config = _float32_config(copy.deepcopy(model.get_config()))
    clone = model.__class__.from_config(config)
    clone.set_weights([w.astype("float32") if w.dtype.kind == "f" else w for w in model.get_weights()])
    return clone


def clone_with_weights(model: keras.Model) -> keras.Model:
    """An independent copy (new variables) of a functional or sequential model."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone
