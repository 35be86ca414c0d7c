"""The whole experiment: ``ExperimentConfig`` and its smaller sections.

The config package imports no TensorFlow: ``kerasopt validate`` and
``kerasopt --help`` must answer in well under a second.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from kerasopt.config.base import Choice, FieldError, Strict
from kerasopt.config.compress_schema import DistillConfig, PruneConfig, QuantizeConfig
from kerasopt.config.data_schema import AnyData, SklearnData
from kerasopt.config.keys import check_config_key
from kerasopt.config.metric_names import unlogged
from kerasopt.config.model_schema import AnyModel, CNNModel
from kerasopt.config.train_schema import PlateauSchedule, TrainConfig
from kerasopt.config.tune_schema import TuneConfig

EXPORT_FORMATS = ("keras", "saved_model", "tflite", "onnx")


class CheckpointConfig(Strict):
    """Atomic checkpoints in ``checkpoints/``: ``last``, ``best`` (by ``monitor``) and the top-k.

    A checkpoint holds weights, optimizer slots, EMA weights, epoch, step, the
    schedule position, RNG state and every stateful callback's state.
    """

    enabled: bool = True
    monitor: str = Field("val_loss", description="metric that picks best (EMA metrics when EMA is on)")
    mode: Literal["auto", "min", "max"] = "auto"
    save_top_k: int = Field(1, ge=1, description="keep this many best checkpoints as epoch-NNNN folders")
    every_n_steps: Optional[int] = Field(
        None, gt=0, description="also save 'last' every N optimizer steps (long epochs); resume restarts that epoch"
    )


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
    profile_batches: Optional[list[int]] = Field(
        None, description="[start, stop] batches to trace with the profiler; off when unset"
    )

    @field_validator("profile_batches")
    @classmethod
    def _range(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and (len(v) != 2 or v[0] < 1 or v[1] < v[0]):
            raise ValueError(f"must be [start, stop] with 1 <= start <= stop. Received: {v}")
        return v


class EMAConfig(Strict):
    """Exponential moving average of the weights (timm's ModelEmaV3).

    ``decay_t = min(decay, 1 - (1 + t / warmup_gamma) ** -warmup_power)`` with warm-up,
    where ``t`` counts optimizer steps after ``update_after_step``.
    """

    enabled: bool = False
    decay: float = Field(0.999, gt=0.0, lt=1.0)
    warmup: bool = Field(True, description="ramp the decay up from 0 (essential for short runs)")
    warmup_gamma: float = Field(1.0, gt=0.0)
    warmup_power: float = Field(0.75, gt=0.0, description="3/4 suits short runs, 2/3 long ones (timm)")
    update_after_step: int = Field(0, ge=0, description="copy the weights until this optimizer step")
    include_bn_stats: bool = Field(True, description="average BatchNorm moving statistics too")
    evaluate_raw: bool = Field(True, description="also log the raw weights' validation metrics as val_raw_*")
    export: Literal["ema", "raw"] = Field("ema", description="which weights model/ and the returned model carry")


class NaNGuardConfig(Strict):
    """Recover from a loss that turns NaN/Inf (or exceeds ``loss_bound``): reload the last good
    checkpoint, scale the LR by ``lr_factor``, retry up to ``max_retries`` times."""

    enabled: bool = True
    max_retries: int = Field(3, ge=0)
    lr_factor: float = Field(0.5, gt=0.0, le=1.0)
    loss_bound: Optional[float] = Field(None, gt=0.0, description="treat a loss above this as divergence")


class CallbacksConfig(Strict):
    """Example: ``callbacks: {ema: {enabled: true}, early_stopping: {enabled: true, patience: 3}}``"""

    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    tensorboard: TensorBoardConfig = Field(default_factory=TensorBoardConfig)
    ema: EMAConfig = Field(default_factory=EMAConfig)
    nan_guard: NaNGuardConfig = Field(default_factory=NaNGuardConfig)


class DistributeConfig(Strict):
    """``auto``: Horovod when launched by horovodrun, MultiWorkerMirroredStrategy when the ``TF_CONFIG``
    environment variable names more than one worker, MirroredStrategy when more than one GPU is
    visible, otherwise none. ``data.batch_size`` is the global batch, split evenly over replicas.
    ``parameter_server`` (never chosen by ``auto``) is asynchronous training: ``TF_CONFIG`` names a chief,
    workers and parameter servers; each step runs one ``batch_size`` batch on one worker."""

    backend: Literal["auto", "none", "mirrored", "multi_worker", "horovod", "parameter_server"] = Field(
        "auto", description="multi_worker and parameter_server read the cluster and this process's task "
                            "from TF_CONFIG")
    fp16_compression: bool = Field(False, description="Horovod: send gradients as float16 (halves traffic)")


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
    data: AnyData = Field(default_factory=SklearnData)  # type: ignore[valid-type]
    model: AnyModel = Field(default_factory=CNNModel)  # type: ignore[valid-type]
    train: TrainConfig = Field(default_factory=TrainConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    distribute: DistributeConfig = Field(default_factory=DistributeConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    tune: Optional[TuneConfig] = Field(None, description="search space and algorithm for `kerasopt tune`")
    report: bool = Field(True, description="write report.html and report.md into the run directory at the end")
    prune: Optional[PruneConfig] = Field(None, description="`kerasopt prune`; with `fit`, pruning runs after training")
    quantize: Optional[QuantizeConfig] = Field(None, description="`kerasopt quantize`: QAT and TFLite quantization")
    distill: Optional[DistillConfig] = Field(None, description="train `model` as the student of a teacher model")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        # A plain folder name: no '/', no '..', no leading '.' or '-', so runs_root/name never escapes runs_root.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) or ".." in v:
            raise ValueError(
                f"must be letters, digits, '.', '_' or '-' (it names a folder). Received: {v[:60]!r}"
            )
        if len(v) > 128:  # file names stop at 255 bytes; tune adds "-best", temporary files ".tmp-<pid>"
            raise ValueError(f"must be at most 128 characters (it names a folder). Received: {len(v)} characters")
        return v

    @model_validator(mode="after")
    def _cross(self) -> ExperimentConfig:
        m, d, t = self.model, self.data, self.train
        classification_losses = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")
        if m.head == "regression" and t.loss in classification_losses:
            raise FieldError("train.loss", f"'{t.loss}' does not fit model.head 'regression'")
        if m.head in ("multiclass", "binary") and t.loss in ("mse", "mae", "huber"):
            raise FieldError("train.loss", f"'{t.loss}' does not fit model.head '{m.head}'")
        if d.augment.per_image and d.source in ("csv", "parquet"):
            raise FieldError("data.augment", f"applies to images; source '{d.source}' is tabular")
        if t.unfreeze_at_epoch is not None and m.freeze is None:
            raise FieldError("train.unfreeze_at_epoch", "needs model.freeze (the layers to unfreeze)")
        if m.pretrained is not None and d.normalize != "none":
            raise FieldError("data.normalize", f"model.weights: the pretrained model takes raw 0..255 pixels and "
                             f"does the ImageNet preprocessing itself; set data.normalize: none. "
                             f"Received: normalize={d.normalize!r}")
        monitors = [("callbacks.checkpoint.monitor", self.callbacks.checkpoint.monitor),
                    ("callbacks.early_stopping.monitor", self.callbacks.early_stopping.monitor)]
        if isinstance(t.schedule, PlateauSchedule):
            monitors.append(("train.schedule.monitor", t.schedule.monitor))
        if self.tune is not None:
            monitors.append(("tune.objective.metric", self.tune.objective.metric))
        for key, name in monitors:
            why = unlogged(name, t.metrics)
            if why:
                raise FieldError(key, why)
        if self.tune is not None:
            self._check_space_keys(self.tune)
        return self

    def _check_space_keys(self, tune: TuneConfig) -> None:
        """Each ``tune.space`` key must be a key of the config; in a union section (``model``, ``data``,
        ``train.optimizer``, ``train.schedule``), a key of the type the trials will have: the config's
        type, the types its ``when:`` names, or (the type itself searched) one of the searched types."""
        for key, spec in tune.space.items():
            if key.split(".")[0] == "tune":
                raise FieldError(f"tune.space.{key}", "the tune section itself cannot be searched")

            def choose(section: str, fam: type[Choice], spec=spec) -> list[type[Choice]]:
                selector = f"{section}.{fam.SELECTOR}"
                tags = spec.when.get(selector)
                if tags is None and selector in tune.space:
                    tags = tune.space[selector].candidates()
                if tags is None:
                    node = self
                    for part in section.split("."):
                        node = getattr(node, part)
                    return [type(node)]
                return [fam.OPTIONS[t] for t in tags if t in fam.OPTIONS]

            check_config_key(ExperimentConfig, key, f"tune.space.{key}", choose)

    def summary_dict(self) -> dict:
        """Plain-Python view (YAML/JSON friendly)."""
        return self.model_dump(mode="json")
