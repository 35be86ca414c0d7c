"""Loss, metrics and class weights for the head, then ``model.compile``."""

from __future__ import annotations

from typing import Optional

from kerasopt._keras import keras
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError


def head_kind(model: keras.Model, spec: DataSpec) -> str:
    """``regression``, ``binary`` (one sigmoid unit) or ``multiclass``, read off the built model."""
    if spec.task == "regression":
        return "regression"
    units = model.outputs[0].shape[-1]
    return "binary" if units == 1 else "multiclass"


def wants_one_hot(cfg: ExperimentConfig, kind: str) -> bool:
    """Categorical losses (label smoothing, which sparse CE lacks in Keras 2; mixup/cutmix) need one-hot labels."""
    return kind == "multiclass" and (
        cfg.train.loss == "categorical_crossentropy"
        or (cfg.train.loss == "auto" and (cfg.train.label_smoothing > 0 or cfg.data.augment.mixing))
    )


def build_loss(cfg: ExperimentConfig, kind: str) -> keras.losses.Loss:
    t = cfg.train
    loss = t.loss
    if loss == "auto":
        loss = {"regression": "mse", "binary": "binary_crossentropy"}.get(kind, "sparse_categorical_crossentropy")
        if kind == "multiclass" and (t.label_smoothing > 0 or cfg.data.augment.mixing):  # soft targets
            loss = "categorical_crossentropy"
    fits = {
        "sparse_categorical_crossentropy": ("multiclass",),
        "categorical_crossentropy": ("multiclass",),
        "binary_crossentropy": ("binary",),
        "mse": ("regression",), "mae": ("regression",), "huber": ("regression",),
    }[loss]
    if kind not in fits:
        raise ConfigError(f"loss '{loss}' does not fit a {kind} head. Received: loss={loss}", key="train.loss")
    if t.label_smoothing and loss == "sparse_categorical_crossentropy":
        raise ConfigError("label smoothing needs categorical_crossentropy (or loss: auto)", key="train.label_smoothing")
    return {
        "sparse_categorical_crossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(),
        "categorical_crossentropy": lambda: keras.losses.CategoricalCrossentropy(label_smoothing=t.label_smoothing),
        "binary_crossentropy": lambda: keras.losses.BinaryCrossentropy(label_smoothing=t.label_smoothing),
        "mse": lambda: keras.losses.MeanSquaredError(),
        "mae": lambda: keras.losses.MeanAbsoluteError(),
        "huber": lambda: keras.losses.Huber(),
    }[loss]()


def build_metrics(cfg: ExperimentConfig, kind: str, one_hot: bool, num_classes: Optional[int] = None) -> list:
    """``train.metrics`` as metric objects, each logged under its canonical name (``auc``, ``val_auc``).

    Default: accuracy for classification, mae for regression. ``num_classes`` is needed by the
    multi-class precision/recall/f1/auc and checks top-k.
    """
    from kerasopt.training.metrics import make_metric

    names = cfg.train.metrics
    if names is None:
        names = ["mae"] if kind == "regression" else ["accuracy"]
    return [make_metric(name, kind, one_hot, num_classes) for name in names]


def class_weights(cfg: ExperimentConfig, spec: DataSpec) -> Optional[dict[int, float]]:
    """``balanced``: ``n / (k * count_c)`` from the training split, as scikit-learn defines it.

    Example: counts [30, 10] -> {0: 40/60, 1: 40/20} = {0: 0.667, 1: 2.0}.
    """
    cw = cfg.train.class_weight
    if cw is None:
        return None
    if spec.task == "regression":
        raise ConfigError("class weights need classification labels; these are regression targets",
                          key="train.class_weight")
    k = spec.num_classes or 0
    if cw == "balanced":
        counts = spec.class_counts or []
        n = sum(counts)
        return {c: (n / (k * cnt) if cnt else 0.0) for c, cnt in enumerate(counts)}
    bad = [c for c in cw if not 0 <= c < k]
    if bad:
        raise ConfigError(f"classes {bad} are out of range for {k} classes", key="train.class_weight")
    return {c: float(cw.get(c, 1.0)) for c in range(k)}


def prepare_labels(ds, kind: str, one_hot: bool, num_classes: Optional[int]):
    """``ds``'s labels as the compiled loss wants them: ``(batch, 1)`` float32 for a binary head, one-hot
    when ``one_hot``, else unchanged (``None`` stays ``None``)."""
    from kerasopt._keras import tf
    from kerasopt.data.source_base import as_written

    if ds is None:
        return None
    if kind == "binary":
        return ds.map(as_written(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), (-1, 1)))))
    if one_hot:
        return ds.map(as_written(lambda x, y: (x, tf.one_hot(tf.cast(y, tf.int32), num_classes))))
    return ds


def compile_for(model: keras.Model, cfg: ExperimentConfig, spec: DataSpec, optimizer=None, *,
                jit_compile: bool = False, steps_per_execution: Optional[int] = 1) -> tuple[str, bool]:
    """Compile ``model`` with the loss and metrics the config gives its head; returns ``(kind, one_hot)``.

    The one place the head decides the loss, the metrics and the label form: training, fine-tuning
    (prune, QAT), evaluation and the assembly all compile through it.

    Example:
        >>> kind, one_hot = compile_for(model, cfg, bundle.spec, optimizer)  # doctest: +SKIP
    """
    kind = head_kind(model, spec)
    one_hot = wants_one_hot(cfg, kind)
    model.compile(**({"optimizer": optimizer} if optimizer is not None else {}), loss=build_loss(cfg, kind),
                  metrics=build_metrics(cfg, kind, one_hot, spec.num_classes), jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    return kind, one_hot
