"""The one error type for user mistakes.

``ConfigError`` carries the dotted key path (``train.optimizer.learning_rate``)
or the file it is about; the CLI turns it into exit code 2 and one line.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A mistake in the config or the input data that the user can fix.

    Example:
        >>> str(ConfigError("must be > 0. Received: 0", key="data.batch_size"))
        'data.batch_size: must be > 0. Received: 0'
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class TrainingDiverged(RuntimeError):
    """The loss kept diverging after every allowed recovery; the last good checkpoint is kept."""
