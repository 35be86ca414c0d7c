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
