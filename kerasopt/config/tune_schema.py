"""The ``tune:`` section: the search space and algorithm for ``kerasopt tune``."""

from __future__ import annotations

from kerasopt.config.base import Strict


class TuneConfig(Strict):
    """Hyperparameter search settings (see ``kerasopt tune``)."""
