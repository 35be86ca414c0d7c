"""Name -> builder registries, one per family.

Registering a name twice raises; looking up an unknown name lists the
registered names and suggests the closest one. No TensorFlow import here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

from kerasopt.errors import ConfigError

T = TypeVar("T", bound=Callable)


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``.

    Example:
        >>> suggest("adamm", ["adam", "sgd"])
        " Did you mean 'adam'?"
    """
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A named family of builders.

    Example:
        >>> models = Registry("model")
        >>> @models.register("mlp")
        ... def build_mlp(cfg): ...
        >>> models.get("mlp") is build_mlp
        True
    """

    def __init__(self, family: str, key: str | None = None) -> None:
        self.family = family
        self.key = key  # dotted config key the names come from, for errors
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(fn: T) -> T:
            if name in self._items:
                raise ValueError(
                    f"{self.family} '{name}' is already registered "
                    f"(by {self._items[name].__module__}.{self._items[name].__name__})."
                )
            self._items[name] = fn
            return fn

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            choices = sorted(self._items)
            raise ConfigError(
                f"unknown {self.family} '{name}'. Choose one of: "
                f"{', '.join(choices)}.{suggest(name, choices)}",
                key=self.key,
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
