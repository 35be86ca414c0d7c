"""Downloaded data sets: TensorFlow Datasets (``tfds``) and ``keras.datasets``.

Both use the data set's training split; ``data.validation_split`` carves the
validation examples out of it like for every other source. A failed download
is one ``ConfigError`` line, never a traceback.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from kerasopt._keras import keras, tf
from kerasopt.config.data_schema import DataConfig
from kerasopt.data.source_base import (
    SOURCES,
    SourceData,
    Stream,
    features_from_array,
    labels_from_array,
    select_by_mask,
    short_reason,
)
from kerasopt.errors import ConfigError
from kerasopt.registry import suggest

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION_NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
# name -> class names (None: indices only; "regression": float targets)
KERAS_DATASETS: dict[str, Optional[list[str] | str]] = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": FASHION_NAMES,
    "cifar10": CIFAR10_NAMES,
    "cifar100": None,
    "boston_housing": "regression",
}
_SEQUENCE_SETS = ("imdb", "reuters")


def download_error(name: str, err: BaseException) -> ConfigError:
    """The one-line error for a failed download.

    Example:
        >>> str(download_error("mnist", OSError("Name or service not known")))
        "data.name: could not download 'mnist' (no network?): Name or service not known"
    """
    return ConfigError(f"could not download '{name}' (no network?): {short_reason(err)}", key="data.name")


@SOURCES.register("keras_datasets")
def load_keras_dataset(data: DataConfig, seed: int) -> SourceData:
    """``keras.datasets.<name>.load_data()`` (downloaded once into ``~/.keras/datasets``).

    Images get a channel axis (MNIST: ``(60000, 28, 28, 1)``), values stay 0..255.

    Example:
        >>> # load_keras_dataset(DataConfig(source="keras_datasets", name="mnist"), seed=0).x.shape
        >>> # -> (60000, 28, 28, 1)
    """
    name = str(data.name)
    if name in _SEQUENCE_SETS:
        raise ConfigError(
            f"'{name}' holds variable-length sequences, which source keras_datasets does not pad; save padded "
            f"int arrays to an .npz file and use source: npz. Received: name={name}",
            key="data.name",
        )
    if name not in KERAS_DATASETS:
        choices = list(KERAS_DATASETS)
        raise ConfigError(
            f"unknown keras data set '{name}'. Choose one of: {', '.join(choices)}.{suggest(name, choices)}",
            key="data.name",
        )
    try:
        (x_raw, y_raw), _ = getattr(keras.datasets, name).load_data()
    except Exception as e:  # keras.utils.get_file raises plain Exception on URL errors
        raise download_error(name, e) from None
    if x_raw.ndim == 3:  # grayscale images without a channel axis
        x_raw = x_raw[..., None]
    x, _ = features_from_array(x_raw, f"keras data set '{name}'", "data.name")
    meta = KERAS_DATASETS[name]
    y, task, _ = labels_from_array(
        y_raw.astype(np.float32 if meta == "regression" else np.int64), f"keras data set '{name}'", "data.name"
    )
    return SourceData(
        y=y, x=x, origin=f"keras data set '{name}'", task=task,
        class_names=list(meta) if isinstance(meta, list) else None,
    )


@SOURCES.register("tfds")
def load_tfds(data: DataConfig, seed: int) -> SourceData:
    """The ``train`` split of a TensorFlow Datasets data set, streamed.

    The input is the ``image`` feature when there is one, else the single
    feature besides ``data.label_key``. Needs ``pip install tensorflow-datasets``.

    Example:
        >>> # data: {source: tfds, name: cifar10, label_key: label}
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ConfigError(
            "source 'tfds' needs TensorFlow Datasets: pip install tensorflow-datasets", key="data.source"
        ) from None
    name, label = str(data.name), data.label_key
    try:
        builder = tfds.builder(name)
    except Exception as e:  # DatasetNotFoundError lists the known names at length: keep the first line
        raise ConfigError(f"unknown tfds data set '{name}': {short_reason(e)}", key="data.name") from None
    try:
        builder.download_and_prepare()
    except Exception as e:
        raise download_error(name, e) from None
    features = builder.info.features
    keys = list(features.keys())
    if label not in keys:
        raise ConfigError(
            f"tfds data set '{name}' has no feature '{label}'. Features: {', '.join(keys)}.{suggest(label, keys)}",
            key="data.label_key",
        )
    others = [k for k in keys if k != label]
    if "image" in others:
        x_key = "image"
    elif len(others) == 1:
        x_key = others[0]
    else:
        raise ConfigError(
            f"tfds data set '{name}' has several input features ({', '.join(others)}) and none is 'image'",
            key="data.name",
        )

    def dataset(**kwargs) -> tf.data.Dataset:
        return builder.as_dataset(split="train", shuffle_files=False, **kwargs)

    # Labels only, without decoding images: the split and the spec need them in memory.
    skip = {x_key: tfds.decode.SkipDecoding()} if isinstance(features[x_key], tfds.features.Image) else None
    parts = [b.numpy() for b in dataset(decoders=skip).map(lambda ex: ex[label]).batch(8192)]
    raw = np.concatenate(parts) if parts else np.zeros((0,), np.int64)
    y, task, _ = labels_from_array(raw, f"tfds data set '{name}'", "data.label_key")
    names = getattr(features[label], "names", None)
    total = len(y)

    def make(indices: np.ndarray, shard: Optional[tuple[int, int]]) -> tuple[tf.data.Dataset, int]:
        ds = select_by_mask(dataset().enumerate(), indices, total)
        return ds.map(lambda _, ex: (ex[x_key], ex[label])), len(indices)

    return SourceData(
        y=y, stream=Stream(make), origin=f"tfds data set '{name}'", label_key="data.label_key", task=task,
        class_names=list(names) if names else None,
    )
