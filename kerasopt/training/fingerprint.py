"""The model fingerprint: a short hash of what decides the model's variables."""

from __future__ import annotations

import hashlib
import json


def model_fingerprint(cfg) -> str:
    """A short hash of ``cfg.model`` (``--resume`` refuses a changed model; calibration caches by it).

    Example:
        >>> len(model_fingerprint(load_config("configs/digits_cnn.yaml")))  # doctest: +SKIP
        16
    """
    payload = json.dumps(cfg.model.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def same_model(saved_config, cfg) -> bool:
    """Whether a checkpoint's saved config (``meta.json``'s ``config``) describes ``cfg``'s model.

    The fingerprints of runs written before the config sections became unions hashed every model type's
    keys, so they differ from today's for the same model. Their model section, read through today's schema
    (the keys of other types are dropped), is compared instead.

    Example:
        >>> same_model({"model": {"type": "mlp", "hidden_units": [8], "depth": 50}},
        ...            load_config({"model": {"type": "mlp", "hidden_units": [8]}}))  # doctest: +SKIP
        True
    """
    from pydantic import ValidationError

    from kerasopt.config.base import family_adapter
    from kerasopt.config.model_schema import ModelConfig

    model = saved_config.get("model") if isinstance(saved_config, dict) else None
    if not isinstance(model, dict):
        return False
    try:
        then = family_adapter(ModelConfig).validate_python(model)
    except (ValidationError, ValueError, TypeError):
        return False
    return then.model_dump(mode="json") == cfg.model.model_dump(mode="json")
