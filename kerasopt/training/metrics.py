"""Keras metric objects for the names in ``train.metrics`` (see ``kerasopt.config.metric_names``).

Keras 2's own classes cover most names. Three need a small class here: precision/recall/F1 that
average over classes (scikit-learn's ``average="macro"``) and read class indices or one-hot labels,
AUC on integer labels of a multi-class head, and R2 on labels shaped ``(batch,)``.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from kerasopt._keras import keras
from kerasopt.config import metric_names
from kerasopt.errors import ConfigError

_SCORES = ("precision", "recall", "f1")


@keras.utils.register_keras_serializable(package="kerasopt")
class ClassScore(keras.metrics.Metric):
    """Precision, recall or F1 from a running confusion matrix.

    Binary head (one sigmoid unit): the positive class, predicted when the probability is >= 0.5.
    Multi-class head: the macro average over the classes that occur in the labels or the predictions
    seen so far, a class never predicted scoring 0 precision (scikit-learn's ``average="macro"`` with
    ``zero_division=0``).

    Example: labels [0, 0, 1, 2], predicted [0, 1, 1, 1] -> precision per class 1, 1/3, 0 -> macro 0.444;
    recall 0.5, 1, 0 -> 0.5.
    """

    def __init__(self, score: str = "f1", num_classes: int = 2, binary: bool = False, sparse: bool = True,
                 name: Optional[str] = None, dtype=None) -> None:
        if score not in _SCORES:
            raise ValueError(f"`score` must be one of {_SCORES}. Received: score={score}")
        super().__init__(name=name or score, dtype=dtype)
        self.score, self.num_classes, self.binary, self.sparse = score, int(num_classes), bool(binary), bool(sparse)
        n = 2 if self.binary else self.num_classes
        self.confusion = self.add_weight(name="confusion", shape=(n, n), initializer="zeros", dtype=tf.float32)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        y_pred = tf.cast(y_pred, tf.float32)
        n = self.confusion.shape[0]
        if self.binary:
            pred = tf.cast(tf.reshape(y_pred, [-1]) >= 0.5, tf.int32)
            true = tf.cast(tf.reshape(tf.cast(y_true, tf.float32), [-1]) >= 0.5, tf.int32)
        else:
            pred = tf.argmax(tf.reshape(y_pred, [-1, n]), axis=-1, output_type=tf.int32)
            true = (tf.cast(tf.reshape(y_true, [-1]), tf.int32) if self.sparse
                    else tf.argmax(tf.reshape(y_true, [-1, n]), axis=-1, output_type=tf.int32))
        weights = None if sample_weight is None else tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        self.confusion.assign_add(tf.math.confusion_matrix(true, pred, num_classes=n, weights=weights,
                                                           dtype=tf.float32))

    def result(self) -> tf.Tensor:
        cm = self.confusion
        tp = tf.linalg.diag_part(cm)
        predicted, actual = tf.reduce_sum(cm, axis=0), tf.reduce_sum(cm, axis=1)
        per_class = {
            "precision": tf.math.divide_no_nan(tp, predicted),
            "recall": tf.math.divide_no_nan(tp, actual),
            "f1": tf.math.divide_no_nan(2.0 * tp, predicted + actual),
        }[self.score]
        if self.binary:
            return per_class[1]
        present = tf.cast(predicted + actual > 0, tf.float32)
        return tf.math.divide_no_nan(tf.reduce_sum(per_class * present), tf.reduce_sum(present))

    def reset_state(self) -> None:
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self) -> dict:
        return {**super().get_config(), "score": self.score, "num_classes": self.num_classes,
                "binary": self.binary, "sparse": self.sparse}


@keras.utils.register_keras_serializable(package="kerasopt")
class SparseAUC(keras.metrics.AUC):
    """``keras.metrics.AUC`` for a softmax head fed class indices: one-hot first, then micro-averaged."""

    def __init__(self, num_classes: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), self.num_classes)
        return super().update_state(y_true, tf.reshape(y_pred, [-1, self.num_classes]), sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.utils.register_keras_serializable(package="kerasopt")
class R2(keras.metrics.R2Score):
    """``keras.metrics.R2Score`` that accepts labels shaped ``(batch,)`` for a one-unit head."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = tf.convert_to_tensor(y_pred)
        width = y_pred.shape[-1] if y_pred.shape.rank and y_pred.shape[-1] else 1  # R2Score needs it static
        y_pred = tf.reshape(y_pred, [-1, width])
        return super().update_state(tf.reshape(tf.cast(y_true, y_pred.dtype), [-1, width]), y_pred, sample_weight)


def make_metric(name: str, kind: str, one_hot: bool, num_classes: Optional[int]) -> keras.metrics.Metric:
    """The metric object logged as ``name`` (canonical) for a ``kind`` head.

    ``kind``: regression, binary or multiclass. Raises ``ConfigError`` (key ``train.metrics``) when
    the metric does not fit the head, e.g. ``auc`` on a regression target or ``top_5_accuracy`` on 3 classes.
    """
    if kind not in metric_names.tasks(name):
        fits = " or ".join(metric_names.tasks(name))
        raise ConfigError(f"metric '{name}' needs a {fits} head; this task is {kind}", key="train.metrics")
    k = metric_names.top_k(name)
    n = int(num_classes or 0)
    if k is not None:
        if n and k >= n:
            raise ConfigError(f"metric '{name}' on {n} classes is always 1: choose k below {n}",
                              key="train.metrics")
        cls = keras.metrics.TopKCategoricalAccuracy if one_hot else keras.metrics.SparseTopKCategoricalAccuracy
        return cls(k=k, name=name)
    binary = kind == "binary"
    if name in _SCORES:
        return ClassScore(name, num_classes=2 if binary else n, binary=binary, sparse=not one_hot, name=name)
    if name in ("auc", "pr_auc"):
        curve = "PR" if name == "pr_auc" else "ROC"
        if kind == "multiclass" and not one_hot:
            return SparseAUC(num_classes=n, curve=curve, name=name)
        return keras.metrics.AUC(curve=curve, name=name)
    if name == "accuracy":
        if binary:
            return keras.metrics.BinaryAccuracy(name=name)
        return (keras.metrics.CategoricalAccuracy if one_hot else keras.metrics.SparseCategoricalAccuracy)(name=name)
    if name == "crossentropy":
        if binary:
            return keras.metrics.BinaryCrossentropy(name=name)
        cls = keras.metrics.CategoricalCrossentropy if one_hot else keras.metrics.SparseCategoricalCrossentropy
        return cls(name=name)
    return {
        "mae": lambda: keras.metrics.MeanAbsoluteError(name=name),
        "mse": lambda: keras.metrics.MeanSquaredError(name=name),
        "rmse": lambda: keras.metrics.RootMeanSquaredError(name=name),
        "mape": lambda: keras.metrics.MeanAbsolutePercentageError(name=name),
        "r2": lambda: R2(name=name),
    }[name]()
