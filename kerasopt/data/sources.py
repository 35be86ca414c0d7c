"""Every registered data source, one per ``data.source`` value.

Importing this module registers the loaders in ``SOURCES``; ``load_source``
is what the pipeline calls.

Example:
    >>> from kerasopt.data.sources import SOURCES
    >>> SOURCES.names()[:3]
    ['csv', 'image_dir', 'keras_datasets']
"""

from __future__ import annotations

# Each family's module registers its loaders in SOURCES when imported. Imported by their own names,
# not from the package, so no module of kerasopt.data imports kerasopt.data's __init__ (no cycle).
import kerasopt.data.sources_csv  # noqa: F401
import kerasopt.data.sources_files  # noqa: F401
import kerasopt.data.sources_remote  # noqa: F401
import kerasopt.data.sources_synthetic  # noqa: F401
import kerasopt.data.sources_tabular  # noqa: F401
import kerasopt.data.sources_tfrecord  # noqa: F401
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.source_base import SOURCES, SourceData, Stream

__all__ = ["SOURCES", "SourceData", "Stream", "load_source"]


def load_source(cfg: ExperimentConfig) -> SourceData:
    """All examples of ``cfg.data.source``, before any split.

    Example:
        >>> load_source(ExperimentConfig(data={"source": "sklearn", "name": "iris"})).x.shape
        (150, 4)
    """
    return SOURCES.get(cfg.data.source)(cfg.data, cfg.seed)
