"""The state protocol every stateful kerasopt callback follows (Lightning's ``state_key`` idea).

A checkpoint stores, per callback, ``get_state()`` (plain JSON values) under its
``state_key`` in ``meta.json`` and its ``trackables()`` (TensorFlow variables,
e.g. EMA weights) inside the ``tf.train.Checkpoint``. On resume the run calls
``set_state()`` and restores the trackables before training continues, so
counters, best values and averages carry on exactly where they stopped.
"""

from __future__ import annotations

from typing import Any

from .._keras import keras


class StatefulCallback(keras.callbacks.Callback):
    """Base for callbacks whose state must survive a restart.

    Subclasses override ``get_state``/``set_state`` and, if they own variables,
    ``trackables``. They open no files in ``__init__`` and survive ``copy.deepcopy``.

    Example:
        >>> class Counter(StatefulCallback):
        ...     def __init__(self): super().__init__(); self.n = 0
        ...     def get_state(self): return {"n": self.n}
        ...     def set_state(self, state): self.n = state["n"]
        >>> Counter().state_key
        'Counter'
    """

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        del state

    def trackables(self) -> dict[str, Any]:
        """Name -> trackable (``tf.Variable``, ``tf.Module``) saved in the TF checkpoint."""
        return {}


def is_scalar(v: Any) -> bool:
    """Python, NumPy or 0-d tensor numbers (Horovod's metric averaging leaves NumPy values in logs)."""
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return getattr(v, "ndim", 0) == 0
