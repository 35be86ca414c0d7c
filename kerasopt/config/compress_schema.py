"""The ``prune:``, ``quantize:`` and ``distill:`` sections (the Compress verbs). No TensorFlow import.

``prune:`` drives ``kerasopt prune CONFIG --from RUN_DIR`` (and runs after ``kerasopt fit``
when present); ``quantize:`` drives ``kerasopt quantize``; ``distill:`` makes ``kerasopt fit``
train the config's model as a student of a teacher model.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from kerasopt.config.base import FieldError, Strict, check_applicable

PTQ_MODES = ("dynamic", "float16", "int8")

_SCHEDULE_OWNERS = {"initial_sparsity": ("polynomial_decay",), "end_epoch": ("polynomial_decay",)}


class PruneConfig(Strict):
    """Magnitude pruning with TF-MOT, then fine-tuning with the run's data pipeline. Example::

        prune:
          target_sparsity: 0.8        # 80% of the weights of each pruned layer are zero
          schedule: polynomial_decay  # ramp 0 -> 0.8 between begin_epoch and end_epoch
          epochs: 6
          exclude: [block1a_conv, head]   # keep the first conv and the classifier dense
    """

    schedule: Literal["polynomial_decay", "constant_sparsity"] = Field(
        "polynomial_decay", description="polynomial_decay ramps sparsity up (gentler); constant_sparsity jumps to it"
    )
    target_sparsity: float = Field(0.8, gt=0.0, lt=1.0, description="fraction of zero weights per pruned layer")
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0, description="polynomial_decay: sparsity at begin_epoch")
    begin_epoch: float = Field(0.0, ge=0.0, description="fine-tuning epoch (fractions allowed) pruning starts at")
    end_epoch: Optional[float] = Field(
        None, gt=0.0, description="polynomial_decay: epoch the target is reached; default: 70% of `epochs`"
    )
    frequency: Union[int, Literal["auto"]] = Field(
        "auto", description="steps between mask updates; auto: 4 times an epoch (TF-MOT's 100 is an epoch "
                            "or more on small data sets)"
    )
    structured: Optional[Literal["2:4"]] = Field(
        None, description="2:4: two of every four consecutive weights are zero (NVIDIA sparse tensor cores); "
                          "sets the sparsity to 50%"
    )
    exclude: list[str] = Field(
        default_factory=list, description="layer names (shell-style patterns allowed) left dense, e.g. the "
                                          "first conv and the head"
    )
    epochs: int = Field(6, ge=1, le=10_000, description="fine-tuning epochs with pruning on")
    learning_rate: Optional[float] = Field(
        None, gt=0.0, description="fine-tuning learning rate (constant); default: train.optimizer.learning_rate / 10"
    )

    @field_validator("frequency")
    @classmethod
    def _freq(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError(f"must be >= 1 or 'auto'. Received: {v}")
        return v

    @model_validator(mode="after")
    def _check(self) -> PruneConfig:
        check_applicable(self, "schedule", self.schedule, _SCHEDULE_OWNERS)
        if self.schedule == "polynomial_decay" and self.initial_sparsity >= self.target_sparsity:
            raise FieldError("initial_sparsity", f"must be below target_sparsity ({self.target_sparsity}). "
                                                 f"Received: {self.initial_sparsity}")
        if self.begin_epoch >= self.epochs:
            raise FieldError("begin_epoch", f"must be before the last fine-tuning epoch (epochs={self.epochs}). "
                                            f"Received: {self.begin_epoch}")
        if self.end_epoch is not None and not self.begin_epoch < self.end_epoch <= self.epochs:
            raise FieldError("end_epoch", f"must lie in (begin_epoch, epochs] = ({self.begin_epoch}, {self.epochs}]. "
                                          f"Received: {self.end_epoch}")
        if self.structured and "target_sparsity" in self.model_fields_set and self.target_sparsity != 0.5:
            raise FieldError("target_sparsity", f"2:4 structured sparsity is 50% by definition; remove "
                                                f"target_sparsity. Received: {self.target_sparsity}")
        return self


class QATConfig(Strict):
    """Quantization-aware training: fake-quantized fine-tuning before the int8 conversion."""

    epochs: int = Field(2, ge=1, le=10_000)
    learning_rate: Optional[float] = Field(
        None, gt=0.0, description="constant; default: train.optimizer.learning_rate / 10"
    )


class QuantizeConfig(Strict):
    """``kerasopt quantize``: optional QAT, then TFLite post-training quantization. Example::

        quantize:
          qat: {epochs: 2}
          formats: [float16, int8]        # each becomes model/<name>.<mode>.tflite
          representative_samples: 256     # int8 calibration batches drawn from the training split
    """

    qat: Optional[QATConfig] = Field(None, description="quantization-aware fine-tuning (TF-MOT quantize_model)")
    formats: list[Literal[PTQ_MODES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["dynamic", "float16", "int8"],
        description="dynamic: int8 weights, float activations; float16: half-size weights; "
                    "int8: weights and activations (needs representative data)",
    )
    representative_samples: int = Field(
        256, ge=0, le=100_000, description="training examples used to calibrate int8 activation ranges"
    )

    @field_validator("formats")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError(f"must list each mode once (dynamic, float16, int8). Received: {v}")
        return v

    @model_validator(mode="after")
    def _int8_data(self) -> QuantizeConfig:
        if "int8" in self.formats and self.representative_samples == 0:
            raise FieldError("representative_samples", "int8 calibrates activation ranges on training examples: "
                                                       "set representative_samples to e.g. 256 (or drop int8)")
        return self


class DistillConfig(Strict):
    """Knowledge distillation: ``kerasopt fit`` trains ``model`` (the student) against a teacher.

    loss = alpha * task_loss + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T)).
    Example::

        distill:
          teacher: runs/digits_cnn        # a run directory, a .keras file or a SavedModel folder
          alpha: 0.1
          temperature: 4.0
    """

    teacher: str = Field(..., min_length=1, description="run directory, .keras file or SavedModel folder")
    alpha: float = Field(0.1, ge=0.0, le=1.0, description="weight of the task loss on the true labels")
    temperature: float = Field(4.0, gt=0.0, le=100.0, description="softens both distributions")
