"""The ``data:`` section: where examples come from and how they are fed.

``data.source`` picks one option class; each has the shared keys of :class:`DataConfig` (batching,
splitting, caching, preprocessing, augmentation) and only its own source's keys.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from kerasopt.config.augment_schema import (  # noqa: F401 (AugmentConfig & co. are imported from here too)
    RANDAUGMENT_OPS,
    AugmentConfig,
    RandAugmentConfig,
    RandomResizedCropConfig,
)
from kerasopt.config.base import Choice, FieldError, Strict, choice_union

SOURCES = ("sklearn", "npz", "csv", "parquet", "image_dir", "tfrecord", "tfds", "keras_datasets", "synthetic")
SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: Union[float, str]) -> tuple[str, float]:
    """``data.cache_budget`` -> ``("auto", 0)``, ``("fraction", f)`` or ``("bytes", n)``.

    Example:
        >>> parse_size("1.5GB"), parse_size(0.25), parse_size("512MiB")
        (('bytes', 1500000000.0), ('fraction', 0.25), ('bytes', 536870912.0))
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto", 0.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 < value <= 1:
            return "fraction", float(value)
        if value > 1:
            return "bytes", float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS and float(m.group(1)) > 0:
            return "bytes", float(m.group(1)) * _UNITS[m.group(2).lower()]
    raise ValueError(f"must be auto, a size such as '2GB' or '512MiB', or a fraction of available RAM in "
                     f"(0, 1]. Received: {value!r}")


class FeatureSpec(Strict):
    """One feature of a TFRecord ``tf.train.Example``."""

    dtype: Literal["float32", "int64", "string", "image"] = "float32"
    shape: list[int] = Field(default_factory=list, description="[] for a scalar")


class DataConfig(Choice):
    """The keys every source has. ``DataConfig(source=...)`` builds that source's option.

    Example:
        ``data: {source: sklearn, name: digits, resize: [32, 32], batch_size: 128}``
    """

    SELECTOR: ClassVar[str] = "source"
    DEFAULT: ClassVar[str] = "sklearn"
    OPTIONS: ClassVar[dict[str, Any]] = {}

    source: Literal[SOURCES] = Field("sklearn", description="registered data source")  # type: ignore[valid-type]
    validation_split: float = Field(0.2, description="fraction held out, seeded and deterministic")
    batch_size: int = Field(64, gt=0, description="global batch size (all replicas together)")
    shuffle_buffer: int = Field(10_000, ge=0, description="0 disables shuffling")
    # auto: decoding every epoch is slower, a memory cache grows with the data: sized first (BENCHMARKS.md).
    cache: Union[bool, Literal["auto", "disk"]] = Field(
        "auto", description="auto: cache the decoded examples (images as uint8) in memory when the estimate "
        "fits data.cache_budget, else in a disk cache reused by later runs on the same files and settings; "
        "true (or memory): memory; disk: the disk cache; false: decode every epoch")
    # One process per GPU shares a host's RAM, and the disk cache reads back from the page cache.
    cache_budget: Union[float, str] = Field(
        "auto", description="memory the cache may use: auto (5% of the RAM available at start), a size "
        "('2GB', '512MiB') or a fraction of available RAM (0.25)")
    num_parallel_calls: int = Field(-1, ge=-1, description="-1 = tf.data.AUTOTUNE")
    prefetch: int = Field(-1, ge=-1, description="batches; -1 = AUTOTUNE (overlaps input and step), 0 = off")
    normalize: Literal["none", "minmax", "standard"] = Field(
        "none", description="statistics computed on the training split only"
    )
    resize: Optional[list[int]] = Field(None, description="[height, width] for image inputs")
    reshape: Optional[list[int]] = Field(None, description="reshape each example, e.g. [8, 8] for sequences")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    max_examples: Optional[int] = Field(None, gt=0, description="use only the first N examples")

    @property
    def origin(self) -> str:
        """What the examples come from, for a person: the data set's name, its path, or the source."""
        return self.source

    @field_validator("validation_split")
    @classmethod
    def _split_range(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError(f"must be in [0, 1). Received: {v}")
        return v

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_choice(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() in ("memory", "true", "false", "auto", "disk"):
            return {"memory": True, "true": True, "false": False}.get(v.strip().lower(), v.strip().lower())
        if not isinstance(v, bool) and v not in ("auto", "disk"):
            raise ValueError(f"must be auto, true (memory), disk or false. Received: {v!r}")
        return v

    @field_validator("cache_budget")
    @classmethod
    def _budget(cls, v: Union[float, str]) -> Union[float, str]:
        parse_size(v)  # raises with the accepted forms
        return v

    @field_validator("resize")
    @classmethod
    def _hw(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        return _height_width(v)

    @field_validator("reshape")
    @classmethod
    def _positive_shape(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        return _positive(v)


def _height_width(v: Optional[list[int]]) -> Optional[list[int]]:
    if v is not None and (len(v) != 2 or min(v) <= 0):
        raise ValueError(f"must be [height, width] with positive sizes. Received: {v}")
    return v


def _positive(v: Optional[list[int]]) -> Optional[list[int]]:
    if v is not None and (not v or min(v) <= 0):
        raise ValueError(f"must be a non-empty list of positive sizes. Received: {v}")
    return v


def _needs(section: DataConfig, key: str, what: str = "") -> None:
    if not getattr(section, key):
        raise FieldError(key, f"source '{section.source}' needs '{key}'{what}")


def _on_bad_file_field() -> Any:
    return Field("error", description="an image that does not decode (truncated, corrupt) stops the run before "
                 "training (error) or is left out and logged (skip)")


class NamedData(DataConfig):
    """sklearn, tfds and keras_datasets: a data set picked by name (not a source of its own)."""

    name: Optional[str] = Field(None, description="data set name")

    @property
    def origin(self) -> str:
        return str(self.name)

    @model_validator(mode="after")
    def _name(self) -> NamedData:
        _needs(self, "name")
        return self


class FileData(DataConfig):
    """npz, csv, parquet, image_dir and tfrecord: examples read from ``path`` (not a source of its own)."""

    path: Optional[str] = Field(None, description="file or folder")

    @property
    def origin(self) -> str:
        return str(self.path)

    @model_validator(mode="after")
    def _path(self) -> FileData:
        _needs(self, "path")
        return self


class SklearnData(NamedData):
    source: Literal["sklearn"] = "sklearn"

    @model_validator(mode="after")
    def _known(self) -> SklearnData:
        if self.name not in SKLEARN_DATASETS:
            from kerasopt.registry import suggest

            raise FieldError(
                "name",
                f"unknown sklearn data set '{self.name}'. Choose one of: "
                f"{', '.join(SKLEARN_DATASETS)}.{suggest(self.name or '', SKLEARN_DATASETS)}"
            )
        return self


class NpzData(FileData):
    source: Literal["npz"] = "npz"
    x_key: str = "x"
    y_key: str = "y"


class TabularData(FileData):
    """csv and parquet (not a source of its own)."""

    label_column: Optional[str] = None
    feature_columns: Optional[list[str]] = Field(None, description="default: every other column")
    categorical_columns: list[str] = Field(default_factory=list, description="one-hot encoded")

    @model_validator(mode="after")
    def _needed(self) -> TabularData:
        _needs(self, "label_column")
        return self


class CSVData(TabularData):
    source: Literal["csv"] = "csv"


class ParquetData(TabularData):
    source: Literal["parquet"] = "parquet"


class ImageDirData(FileData):
    source: Literal["image_dir"] = "image_dir"
    image_size: Optional[list[int]] = Field(None, description="[height, width] images are decoded to")
    channels: Literal[1, 3] = 3
    on_bad_file: Literal["error", "skip"] = _on_bad_file_field()

    @field_validator("image_size")
    @classmethod
    def _hw_size(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        return _height_width(v)


class TFRecordData(FileData):
    source: Literal["tfrecord"] = "tfrecord"
    features: dict[str, FeatureSpec] = Field(default_factory=dict)
    label_key: str = Field("label", description="the label feature")
    on_bad_file: Literal["error", "skip"] = _on_bad_file_field()

    @model_validator(mode="after")
    def _features(self) -> TFRecordData:
        _needs(self, "features", " (name -> {dtype, shape})")
        if self.label_key not in self.features:
            raise FieldError(
                "label_key", f"label_key '{self.label_key}' is not among features: {', '.join(self.features)}"
            )
        return self


class TFDSData(NamedData):
    source: Literal["tfds"] = "tfds"
    label_key: str = Field("label", description="the label key")


class KerasDatasetsData(NamedData):
    source: Literal["keras_datasets"] = "keras_datasets"


class SyntheticData(DataConfig):
    """Random examples of a given shape (benchmarks, tests)."""

    source: Literal["synthetic"] = "synthetic"
    num_examples: int = Field(1024, gt=0)
    shape: list[int] = Field(default_factory=lambda: [32, 32, 3])
    num_classes: int = Field(10, ge=1)
    task: Literal["classification", "regression", "tokens"] = "classification"
    vocab_size: int = Field(1000, ge=2)

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        return _positive(v)


# The annotation of the section in ExperimentConfig: the option named by ``source`` (default sklearn).
AnyData = choice_union(DataConfig)
