"""The whole experiment: ``ExperimentConfig`` and its smaller sections.

The config package imports no TensorFlow: ``kerasopt validate`` and
``kerasopt --help`` must answer in well under a second.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from kerasopt.config.base import FieldError, Strict
from kerasopt.config.data_schema import DataConfig
from kerasopt.config.model_schema import ModelConfig
from kerasopt.config.train_schema import TrainConfig

EXPORT_FORMATS = ("keras", "saved_model")


class CheckpointConfig(Strict):
    """Full-model checkpoints in ``checkpoints/``: ``last.keras`` every epoch and ``best.keras``."""

    enabled: bool = True
    monitor: str = Field("val_loss", description="metric that picks best.keras")
    mode: Literal["auto", "min", "max"] = "auto"


class EarlyStoppingConfig(Strict):
    enabled: bool = False
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best_weights: bool = True


class TensorBoardConfig(Strict):
    enabled: bool = True
    histogram_freq: int = Field(0, ge=0, description="epochs between weight histograms; 0 = off")
    write_graph: bool = True
    update_freq: Literal["epoch", "batch"] = "epoch"


class CallbacksConfig(Strict):
    """Example: ``callbacks: {early_stopping: {enabled: true, patience: 3}}``"""

    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    tensorboard: TensorBoardConfig = Field(default_factory=TensorBoardConfig)


class DistributeConfig(Strict):
    """``auto`` uses MirroredStrategy when more than one GPU is visible, else none."""

    backend: Literal["auto", "none", "mirrored"] = "auto"


class ExportConfig(Strict):
    """What lands in the run directory's ``model/`` after training."""

    formats: list[Literal[EXPORT_FORMATS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["keras", "saved_model"]
    )

    @field_validator("formats")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"formats must not repeat. Received: {v}")
        return v


class ExperimentConfig(Strict):
    """One experiment. Example (``configs/digits_cnn.yaml``)::

        name: digits_cnn
        data: {source: sklearn, name: digits, resize: [32, 32]}
        model: {type: cnn}
        train: {epochs: 10}
    """

    name: str = Field("experiment", description="run directory name under runs_root")
    description: str = ""
    seed: int = Field(42, ge=0, description="seeds splits, shuffling, weights and dropout")
    deterministic: bool = Field(False, description="tf.config.experimental.enable_op_determinism()")
    runs_root: str = Field("runs", description="parent folder of run directories")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    distribute: DistributeConfig = Field(default_factory=DistributeConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) or ".." in v:
            raise ValueError(
                f"must be letters, digits, '.', '_' or '-' (it names a folder). Received: {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _cross(self) -> ExperimentConfig:
        m, d, t = self.model, self.data, self.train
        classification_losses = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")
        if m.head == "regression" and t.loss in classification_losses:
            raise FieldError("train.loss", f"'{t.loss}' does not fit model.head 'regression'")
        if m.head in ("multiclass", "binary") and t.loss in ("mse", "mae", "huber"):
            raise FieldError("train.loss", f"'{t.loss}' does not fit model.head '{m.head}'")
        if d.augment.enabled and d.source in ("csv",):
            raise FieldError("data.augment", "applies to images; source 'csv' is tabular")
        return self

    def summary_dict(self) -> dict:
        """Plain-Python view (YAML/JSON friendly)."""
        return self.model_dump(mode="json")
