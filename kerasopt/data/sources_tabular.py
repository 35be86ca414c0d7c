"""In-memory array sources: scikit-learn's bundled data sets and ``.npz`` files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from kerasopt.config.data_schema import DataConfig
from kerasopt.data.source_base import SOURCES, SourceData, features_from_array, labels_from_array, short_reason
from kerasopt.errors import ConfigError
from kerasopt.registry import suggest


@SOURCES.register("sklearn")
def load_sklearn(data: DataConfig, seed: int) -> SourceData:
    """scikit-learn's bundled data sets (no download).

    ``digits`` gives images ``(1797, 8, 8, 1)`` with values 0..16; ``iris``,
    ``wine`` and ``breast_cancer`` give tabular ``(n, d)`` features; ``diabetes``
    gives float regression targets.

    Example:
        >>> src = load_sklearn(DataConfig(source="sklearn", name="digits"), seed=0)
        >>> src.x.shape, src.task
        ((1797, 8, 8, 1), 'classification')
    """
    from sklearn import datasets

    loaders = {
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }
    if data.name not in loaders:  # the schema checks this too; a registry caller might not
        raise ConfigError(
            f"unknown sklearn data set '{data.name}'. Choose one of: {', '.join(loaders)}."
            f"{suggest(str(data.name), list(loaders))}",
            key="data.name",
        )
    bunch = loaders[data.name]()
    origin = f"sklearn data set '{data.name}'"
    extras = {"feature_names": [str(n) for n in getattr(bunch, "feature_names", [])]} if data.name != "digits" else {}
    if data.name == "digits":
        x = bunch.images[..., None].astype(np.float32)  # (n, 8, 8, 1): keep it an image for CNNs
    else:
        x = bunch.data.astype(np.float32)
    if data.name == "diabetes":
        return SourceData(y=bunch.target.astype(np.float32), x=x, origin=origin, task="regression", extras=extras)
    names = [str(n) for n in bunch.target_names]
    return SourceData(
        y=bunch.target.astype(np.int64), x=x, origin=origin, task="classification", class_names=names, extras=extras
    )


@SOURCES.register("npz")
def load_npz(data: DataConfig, seed: int) -> SourceData:
    """Arrays ``data.x_key`` and ``data.y_key`` of a NumPy ``.npz`` file.

    Float labels mean regression, integer (or one-hot, or string) labels mean
    classification. Signed integer ``x`` of shape ``(n, length)`` is token ids.

    Example:
        >>> # np.savez("d.npz", x=np.random.rand(100, 4), y=np.arange(100) % 3)
        >>> # load_npz(DataConfig(source="npz", path="d.npz"), seed=0).x.shape -> (100, 4)
    """
    path = Path(str(data.path))
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ConfigError(f"NPZ file {what}: {path}", key="data.path")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            keys = list(arrays.files)
            for key, name in (("data.x_key", data.x_key), ("data.y_key", data.y_key)):
                if name not in keys:
                    raise ConfigError(
                        f"{path} has no array '{name}'. Arrays in the file: {', '.join(keys) or '(none)'}."
                        f"{suggest(name, keys)}",
                        key=key,
                    )
            x_raw, y_raw = arrays[data.x_key], arrays[data.y_key]
    except ConfigError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigError(f"could not read {path} as a NumPy .npz file: {short_reason(e)}", key="data.path") from None
    if len(x_raw) != len(y_raw):
        raise ConfigError(
            f"{path}: '{data.x_key}' has {len(x_raw)} examples but '{data.y_key}' has {len(y_raw)}", key="data.y_key"
        )
    x, input_dtype = features_from_array(x_raw, str(path), "data.x_key")
    y, task, names = labels_from_array(y_raw, str(path), "data.y_key")
    vocab = int(x.max()) + 1 if input_dtype == "int32" and x.size else None
    return SourceData(
        y=y, x=x, origin=str(path), label_key="data.y_key", task=task, class_names=names,
        input_dtype=input_dtype, vocab_size=vocab,
    )
