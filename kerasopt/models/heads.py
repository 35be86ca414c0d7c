"""The output head: which kind, how many units, and the float32 output layers.

``resolve_head`` checks that ``model.head`` and ``model.num_classes`` fit the
labels; ``add_head`` appends the output layers every builder ends with.
"""

from __future__ import annotations

from typing import NamedTuple

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError

_ACTIVATIONS = {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}


class Head(NamedTuple):
    """The resolved head: ``kind`` is multiclass, binary or regression; ``units`` the output width.

    Example:
        >>> Head("binary", 1).activation
        'sigmoid'
    """

    kind: str
    units: int

    @property
    def activation(self) -> str:
        return _ACTIVATIONS[self.kind]


def resolve_head(mcfg: ModelConfig, spec: DataSpec) -> Head:
    """Pick the head from ``model.head`` and the labels, or raise ``ConfigError``.

    ``auto`` means regression for regression labels (``spec.label_dim`` units),
    binary (one sigmoid unit) for 2 classes and multiclass (softmax) otherwise.
    An explicit ``model.head`` wins but must fit the labels.

    Example:
        >>> spec = DataSpec((13,), "classification", 3, 100, 20)
        >>> resolve_head(ModelConfig(type="mlp"), spec)
        Head(kind='multiclass', units=3)
    """
    regression_labels = spec.task == "regression"
    num_classes = _num_classes(mcfg, spec)
    kind = mcfg.head
    if kind == "auto":
        if regression_labels:
            kind = "regression"
        else:
            kind = "binary" if num_classes == 2 else "multiclass"
    if kind == "regression":
        # Integer class labels may be regressed on (e.g. a quality score), so no check here.
        return Head("regression", spec.label_dim)
    if regression_labels:
        raise ConfigError(
            f"head '{kind}' needs class labels but the labels are regression targets "
            f"(task 'regression', label_dim {spec.label_dim}). Use head: regression or auto. "
            f"Received: head={kind!r}",
            key="model.head",
        )
    if kind == "binary":
        if num_classes != 2:
            raise ConfigError(
                f"head 'binary' needs 2 classes but the labels have {num_classes}. "
                f"Use head: multiclass or auto. Received: head='binary', num_classes={num_classes}",
                key="model.head",
            )
        return Head("binary", 1)
    return Head("multiclass", num_classes)


def _num_classes(mcfg: ModelConfig, spec: DataSpec) -> int | None:
    """Class count from the labels, checked against ``model.num_classes`` (None for regression)."""
    configured = mcfg.num_classes
    if spec.task == "regression":
        if configured is not None:
            raise ConfigError(
                f"config says {configured} classes but the labels are regression targets "
                f"(task 'regression'). Remove model.num_classes. Received: num_classes={configured}",
                key="model.num_classes",
            )
        return None
    found = spec.num_classes
    if configured is not None and found is not None and configured != found:
        raise ConfigError(
            f"config says {configured} but the labels have {found} classes. "
            f"Remove model.num_classes to use the labels' count. Received: num_classes={configured}",
            key="model.num_classes",
        )
    n = found if found is not None else configured
    if n is None:
        raise ConfigError(
            "the number of classes is unknown: the data did not report it. Set model.num_classes.",
            key="model.num_classes",
        )
    if n < 2:
        raise ConfigError(
            f"classification needs at least 2 classes but the labels have {n}. Received: num_classes={n}",
            key="model.num_classes",
        )
    return n


def add_head(x, head: Head, regularizer=None):
    """Append the output layers to ``x``: Dense(units) then the head's activation, both float32.

    The output layers are float32 whatever the global precision policy, so a
    ``mixed_float16``/``mixed_bfloat16`` model still computes its softmax and its
    loss in float32 (bf16 has 8 bits of mantissa; a softmax over 1000 classes in
    it is visibly wrong). The outputs are probabilities (softmax/sigmoid), not
    logits: losses use ``from_logits=False``.

    Example:
        >>> from kerasopt._keras import keras
        >>> y = add_head(keras.Input((8,)), Head("multiclass", 3))
        >>> y.dtype.name, tuple(y.shape)
        ('float32', (None, 3))
    """
    from kerasopt._keras import keras

    x = keras.layers.Dense(head.units, kernel_regularizer=regularizer, dtype="float32", name="head")(x)
    return keras.layers.Activation(head.activation, dtype="float32", name="predictions")(x)


__all__ = ["Head", "resolve_head", "add_head"]
