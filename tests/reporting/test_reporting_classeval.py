"""Confusion matrix and per-class precision/recall against hand-computed values."""

import math

import numpy as np
import pytest

from kerasopt.reporting.classeval import class_report, confusion_matrix, predict_classes


def test_confusion_matrix_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0]
    assert confusion_matrix(np.array(y_true), np.array(y_pred), 3).tolist() == [
        [2, 1, 0],
        [0, 1, 1],
        [1, 0, 3],
    ]


def test_per_class_scores_by_hand():
    rep = class_report(np.array([[2, 1, 0], [0, 1, 1], [1, 0, 3]]), ["a", "b", "c"])
    # precision = diagonal / column sum, recall = diagonal / row sum
    assert rep.precision.tolist() == pytest.approx([2 / 3, 1 / 2, 3 / 4])
    assert rep.recall.tolist() == pytest.approx([2 / 3, 1 / 2, 3 / 4])
    assert rep.f1.tolist() == pytest.approx([2 / 3, 1 / 2, 3 / 4])
    assert rep.support.tolist() == [3, 2, 4]
    assert rep.accuracy == pytest.approx(6 / 9)
    assert rep.names == ["a", "b", "c"]


def test_a_class_never_predicted_or_absent_has_no_score():
    rep = class_report(np.array([[3, 0, 0], [2, 0, 0], [0, 0, 0]]))
    assert rep.precision[0] == pytest.approx(3 / 5)
    assert math.isnan(rep.precision[1]) and rep.recall[1] == 0.0  # never predicted
    assert math.isnan(rep.recall[2]) and math.isnan(rep.f1[2])  # absent from the split
    assert rep.names == ["0", "1", "2"]


def test_labels_out_of_range_name_the_value():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\). Received: 5"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)


class _FixedModel:
    """Stands in for a Keras model: returns the rows it is given as 'probabilities'."""

    def __call__(self, x, training=False):
        assert training is False
        return x


@pytest.mark.parametrize("batches, expected", [
    # multiclass scores and integer labels: argmax
    ([(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))], ([1, 1], [1, 0])),
    # one sigmoid unit: threshold 0.5; labels shaped (batch, 1)
    ([(np.array([[0.7], [0.2]]), np.array([[1], [0]])), (np.array([[0.4]]), np.array([[1]]))],
     ([1, 0, 1], [1, 0, 0])),
    # one-hot labels
    ([(np.array([[0.2, 0.3, 0.5]]), np.array([[0, 0, 1]]))], ([2], [2])),
])
def test_predict_classes(batches, expected):
    y_true, y_pred = predict_classes(_FixedModel(), batches)
    assert y_true.tolist() == expected[0] and y_pred.tolist() == expected[1]
