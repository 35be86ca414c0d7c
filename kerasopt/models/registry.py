"""The model registry: ``model.type`` -> builder.

Kept in its own module so the builder modules can register themselves without
importing ``kerasopt.models`` (which imports them).
"""

from __future__ import annotations

from kerasopt.registry import Registry

MODELS = Registry("model", key="model.type")

__all__ = ["MODELS"]
