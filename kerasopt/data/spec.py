"""What the model builders and checks need to know about the data (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass(frozen=True)
class DataSpec:
    """Facts inferred from the data and shared by models, training and checks.

    Example:
        >>> DataSpec(input_shape=(32, 32, 1), task="classification", num_classes=10,
        ...          num_train=1437, num_val=360).is_image
        True
    """

    input_shape: tuple[int, ...]
    task: Literal["classification", "regression"]
    num_classes: Optional[int]  # None for regression
    num_train: int
    num_val: int
    input_dtype: Literal["float32", "int32"] = "float32"  # int32: token ids
    vocab_size: Optional[int] = None  # token inputs: 1 + the largest id seen
    class_names: Optional[list[str]] = None
    class_counts: Optional[list[int]] = None  # training split, for class_weight: balanced
    label_dim: int = 1  # regression targets per example
    extras: dict = field(default_factory=dict)  # normalization stats etc., for the run record

    @property
    def is_image(self) -> bool:
        return len(self.input_shape) == 3
