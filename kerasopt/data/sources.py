"""Every registered data source, one per ``data.source`` value.

Importing this module registers the loaders in ``SOURCES``; ``load_source``
is what the pipeline calls.

Example:
    >>> from kerasopt.data.sources import SOURCES
    >>> SOURCES.names()[:3]
    ['csv', 'image_dir', 'keras_datasets']
"""

from __future__ import annotations

from kerasopt.config.schema import ExperimentConfig
from kerasopt.data import (  # noqa: F401
    sources_csv,
    sources_files,
    sources_remote,
    sources_synthetic,
    sources_tabular,
    sources_tfrecord,
)
from kerasopt.data.source_base import SOURCES, SourceData, Stream

__all__ = ["SOURCES", "SourceData", "Stream", "load_source"]


def load_source(cfg: ExperimentConfig) -> SourceData:
    """All examples of ``cfg.data.source``, before any split.

    Example:
        >>> load_source(ExperimentConfig(data={"source": "sklearn", "name": "iris"})).x.shape
        (150, 4)
    """
    return SOURCES.get(cfg.data.source)(cfg.data, cfg.seed)
