"""Confusion matrix and per-class precision/recall of a run's model on its validation split.

The arithmetic is plain numpy (tested against hand-computed values); only
:func:`evaluate_classes` imports TensorFlow, to load the exported model and
the data when ``kerasopt fit`` did not hand them over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from kerasopt.errors import ConfigError


@dataclass
class ClassReport:
    """Per-class results; ``precision``/``recall``/``f1`` are NaN for a class never predicted/present."""

    names: list[str]
    matrix: np.ndarray  # [true, predicted] counts
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    source: str = ""  # which model produced it, for the caption

    @property
    def accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with the true class as row and the predicted class as column.

    Example:
        >>> confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3).tolist()
        [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length. Received: {y_true.size} and {y_pred.size}")
    labels = np.concatenate([y_true, y_pred])
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise ValueError(f"labels must be in [0, {num_classes}). Received: {int(bad[0])}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_report(matrix: np.ndarray, names: Optional[list[str]] = None, source: str = "") -> ClassReport:
    """Precision, recall, F1 and support per class from a confusion matrix.

    Example:
        >>> r = class_report(np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]]))
        >>> r.precision.tolist(), r.recall.tolist()
        ([1.0, 0.5, 1.0], [0.5, 1.0, 1.0])
    """
    m = np.asarray(matrix, dtype=np.int64)
    tp = np.diag(m).astype(float)
    predicted, support = m.sum(axis=0), m.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(np.isnan(precision) | np.isnan(recall), np.nan, f1)
    names = list(names) if names else [str(i) for i in range(len(m))]
    return ClassReport(names, m, precision, recall, f1, support, source)


def predict_classes(model: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class indices over a batched ``(x, y)`` dataset; y may be indices or one-hot."""
    from kerasopt._keras import tf

    @tf.function(reduce_retracing=True)
    def classes(x):  # one traced call a batch: predict_on_batch costs ~10 ms a call (2,000 batches: 20 s)
        p = tf.cast(model(x, training=False), tf.float32)
        if p.shape.rank == 1 or p.shape[-1] == 1:
            return tf.cast(tf.reshape(p, [-1]) >= 0.5, tf.int64)
        return tf.argmax(p, axis=-1)

    trues, preds = [], []
    for x, y in dataset:
        p = classes(x).numpy()
        y = np.asarray(y)
        y = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1)
        trues.append(y.astype(np.int64))
        preds.append(p.reshape(-1))
    if not trues:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(trues), np.concatenate(preds)


def evaluate_classes(run_dir: Path, *, model: Any = None, bundle: Any = None,
                     num_classes: Optional[int] = None) -> ClassReport:
    """Run the run's model (the one given, else ``model/*.keras``) on the validation split.

    Raises ConfigError with the reason when it cannot (no export, no validation split).
    """
    source = "the model in memory at the end of training"
    if model is None:
        from kerasopt.evaluation import locate

        keras_file, _, _ = locate(run_dir, None)
        if keras_file is None:
            raise ConfigError(f"{run_dir} has no exported model (model/*.keras) to run on the validation split")
        import kerasopt.models  # noqa: F401  (registers custom layers for loading)
        from kerasopt._keras import keras

        try:
            model = keras.models.load_model(keras_file, compile=False)
        except Exception as e:  # noqa: BLE001 - a corrupt or foreign file: name it
            raise ConfigError(f"cannot load model {keras_file}: {str(e).splitlines()[0]}") from None
        source = str(keras_file.relative_to(run_dir)) if keras_file.is_relative_to(run_dir) else str(keras_file)
    if bundle is None:
        from kerasopt.config.loader import load_config
        from kerasopt.data.pipeline import build_datasets

        bundle = build_datasets(load_config(run_dir / "config.yaml"))
    if bundle.val is None:
        raise ConfigError("there is no validation split to evaluate on (it is 0)", key="data.validation_split")
    spec = bundle.spec
    n = int(num_classes or spec.num_classes or 2)
    y_true, y_pred = predict_classes(model, bundle.val)
    names = list(spec.class_names) if spec.class_names and len(spec.class_names) == n else None
    return class_report(confusion_matrix(y_true, y_pred, n), names, source)
