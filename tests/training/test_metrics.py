"""``train.metrics``: the names users write build real metrics, logged everywhere, checked against by-hand values."""

import csv
import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm
from training_runs import tabular_config as _cfg

import kerasopt
from kerasopt.config import load_config, metric_names
from kerasopt.errors import ConfigError


def _run(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(np.asarray(y_true), np.asarray(y_pred, np.float32), sample_weight)
    return float(metric.result())


# ---------------------------------------------------------------- the metric objects
def test_macro_scores_match_the_hand_computed_example_and_sklearn():
    from kerasopt.training.metrics import ClassScore

    probs = np.eye(3, dtype=np.float32)[[0, 1, 1, 1]]  # predicted 0, 1, 1, 1; labels 0, 0, 1, 2
    assert _run(ClassScore("precision", 3), [0, 0, 1, 2], probs) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert _run(ClassScore("recall", 3), [0, 0, 1, 2], probs) == pytest.approx((0.5 + 1 + 0) / 3)
    assert _run(ClassScore("f1", 3), [0, 0, 1, 2], probs) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.dirichlet(np.ones(5), 300)
    for score, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        want = fn(y, p.argmax(1), average="macro", zero_division=0)
        m = ClassScore(score, 5)
        m.update_state(y[:100], p[:100].astype(np.float32))  # accumulates over batches
        assert _run(m, y[100:], p[100:]) == pytest.approx(want, abs=1e-6), score
        onehot = ClassScore(score, 5, sparse=False)
        assert _run(onehot, np.eye(5)[y], p) == pytest.approx(want, abs=1e-6), score


def test_binary_scores_are_of_the_positive_class_at_one_half():
    from kerasopt.training.metrics import ClassScore

    y, p = [1, 1, 0, 0, 1], [[0.9], [0.4], [0.6], [0.1], [0.5]]  # predicted 1, 0, 1, 0, 1: tp 2, fp 1, fn 1
    assert _run(ClassScore("precision", binary=True), y, p) == pytest.approx(2 / 3)
    assert _run(ClassScore("recall", binary=True), y, p) == pytest.approx(2 / 3)
    assert _run(ClassScore("f1", binary=True), y, p) == pytest.approx(2 / 3)
    weighted = ClassScore("precision", binary=True)  # the false positive weighs 2: 2 / (2 + 2)
    assert _run(weighted, y, p, sample_weight=np.array([1, 1, 2, 1, 1.0])) == pytest.approx(0.5)


def test_sparse_auc_equals_auc_on_one_hot_labels_and_r2_equals_sklearn():
    from kerasopt._keras import keras
    from kerasopt.training.metrics import R2, SparseAUC

    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 200), rng.dirichlet(np.ones(4), 200)
    want = _run(keras.metrics.AUC(), np.eye(4)[y], p)
    assert _run(SparseAUC(num_classes=4), y, p) == pytest.approx(want, abs=1e-6)
    # micro-averaged one-vs-rest ROC AUC; Keras' 200 thresholds approximate it
    assert want == pytest.approx(skm.roc_auc_score(np.eye(4)[y].ravel(), p.ravel()), abs=0.01)
    t, q = rng.normal(size=50), rng.normal(size=(50, 1))
    assert _run(R2(), t, q) == pytest.approx(skm.r2_score(t, q[:, 0]), abs=1e-5)


# ---------------------------------------------------------------- names and checks
@pytest.mark.parametrize("written, canon", [
    ("AUC", "auc"), ("acc", "accuracy"), ("Precision", "precision"), ("recall", "recall"), ("F1-score", "f1"),
    ("top-5", "top_5_accuracy"), ("top3_accuracy", "top_3_accuracy"), ("sparse_top_k_categorical_accuracy",
                                                                          "top_5_accuracy"),
    ("MAE", "mae"), ("root_mean_squared_error", "rmse"), ("r2_score", "r2"), ("log_loss", "crossentropy"),
])
def test_names_users_write_map_to_one_logged_name(written, canon):
    assert metric_names.canonical(written) == canon


def test_higher_is_better_is_one_rule_for_every_consumer():
    from kerasopt.callbacks.checkpoint import AtomicCheckpoint
    from kerasopt.callbacks.early_stopping import ResumableEarlyStopping
    from kerasopt.callbacks.plateau import ReduceLROnPlateau

    from kerasopt.config.tune_schema import ObjectiveConfig
    from kerasopt.monitor import Monitor
    from kerasopt.training.finish import summarize

    for key, mode in (("val_auc", "max"), ("val_f1", "max"), ("val_rmse", "min"), ("val_r2", "max"),
                      ("val_top_5_accuracy", "max"), ("val_crossentropy", "min"), ("val_loss", "min")):
        assert Monitor(key).mode == mode, key
        assert ResumableEarlyStopping(key).mode == mode, key
        assert ReduceLROnPlateau(monitor=key).mode == mode, key
        assert AtomicCheckpoint("/nonexistent", monitor=key).mode == mode, key
        assert ObjectiveConfig(metric=key).direction == mode, key
        assert summarize({key: [0.5, 0.9, 0.7]}, 0)["best"][key]["epoch"] == (2 if mode == "max" else 1), key


@pytest.mark.parametrize("overrides, key, words", [
    ({"train.metrics": ["accuracy", "roc"]}, "train.metrics", "unknown metric 'roc'; choose from accuracy, auc"),
    ({"train.metrics": ["acc", "Accuracy"]}, "train.metrics", "'acc' and 'Accuracy' are the same metric"),
    ({"callbacks.checkpoint.monitor": "val_auc"}, "callbacks.checkpoint.monitor", "add 'auc' to train.metrics"),
    ({"train.metrics": ["accuracy", "auc"], "callbacks.early_stopping.monitor": "val_AUC"},
     "callbacks.early_stopping.monitor", "is logged as 'val_auc'"),
])
def test_bad_metric_names_fail_at_load_naming_the_key(overrides, key, words):
    with pytest.raises(ConfigError) as e:
        load_config("configs/digits_cnn.yaml", overrides=overrides)
    assert e.value.key == key and words in str(e.value)


@pytest.mark.parametrize("data, metrics, words", [
    ({"name": "diabetes"}, ["auc"], "metric 'auc' needs a binary or multiclass head; this task is regression"),
    ({"name": "wine"}, ["top_3_accuracy"], "metric 'top_3_accuracy' on 3 classes is always 1"),
    ({"name": "wine"}, ["r2"], "metric 'r2' needs a regression head"),
])
def test_metrics_that_do_not_fit_the_head_exit_2_before_training(tmp_path, data, metrics, words):
    with pytest.raises(ConfigError) as e:
        kerasopt.fit(_cfg(tmp_path, data=data, train={"metrics": metrics}))
    assert e.value.key == "train.metrics" and words in str(e.value)


# ---------------------------------------------------------------- end to end
def _history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_binary_run_logs_every_metric_and_checkpoints_by_val_auc(tmp_path):
    from kerasopt.data.pipeline import build_datasets

    metrics = ["accuracy", "auc", "Precision", "recall", "f1", "crossentropy"]
    result = kerasopt.fit(_cfg(tmp_path, data={"name": "breast_cancer"}, train={"epochs": 3, "metrics": metrics},
                               callbacks={"checkpoint": {"monitor": "val_auc"},
                                          "tensorboard": {"enabled": True}}))
    run = result.run_dir.path
    rows = _history(run)
    names = ("accuracy", "auc", "precision", "recall", "f1", "crossentropy")
    for name in names:
        assert name in rows[0] and f"val_{name}" in rows[0], name
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert final["val_auc"] == pytest.approx(float(rows[-1]["val_auc"]), abs=1e-6)
    # the logged values are those of the trained model on the validation split, computed by sklearn
    batches = list(build_datasets(result.config).val)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches]).reshape(-1)
    p = result.model.predict(x, verbose=0).reshape(-1)
    hard = (p >= 0.5).astype(int)
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(skm.accuracy_score(y, hard), abs=1e-6)
    assert float(rows[-1]["val_precision"]) == pytest.approx(skm.precision_score(y, hard, zero_division=0), abs=1e-6)
    assert float(rows[-1]["val_recall"]) == pytest.approx(skm.recall_score(y, hard), abs=1e-6)
    assert float(rows[-1]["val_f1"]) == pytest.approx(skm.f1_score(y, hard), abs=1e-6)
    assert float(rows[-1]["val_auc"]) == pytest.approx(skm.roc_auc_score(y, p), abs=0.01)
    assert float(rows[-1]["val_crossentropy"]) == pytest.approx(skm.log_loss(y, p), abs=1e-3)
    # best = the epoch with the highest val_auc (auto mode reads auc as higher-is-better)
    meta = json.loads((run / "checkpoints" / "best" / "meta.json").read_text())
    assert meta["monitor"] == "val_auc"
    assert meta["value"] == pytest.approx(max(float(r["val_auc"]) for r in rows), abs=1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard" / "validation")).Reload()
    logged = set(acc.Tags()["scalars"]) | set(acc.Tags()["tensors"])
    assert {"epoch_auc", "epoch_f1", "epoch_precision"} <= logged, logged


def test_regression_rmse_is_the_root_of_mse_and_r2_matches_sklearn(tmp_path):
    result = kerasopt.fit(_cfg(tmp_path, data={"name": "diabetes"},
                               train={"epochs": 3, "metrics": ["mae", "mse", "rmse", "r2"],
                                      "optimizer": {"type": "adam", "learning_rate": 0.05}}))
    row = _history(result.run_dir.path)[-1]
    for prefix in ("", "val_"):
        assert float(row[f"{prefix}rmse"]) == pytest.approx(math.sqrt(float(row[f"{prefix}mse"])), rel=1e-4)
    assert -5 < float(row["val_r2"]) < 1


def test_metric_names_examples_run_and_import_no_tensorflow():
    import doctest
    import subprocess
    import sys

    result = doctest.testmod(metric_names)
    assert result.attempted >= 5 and result.failed == 0
    code = "import sys, kerasopt.config.metric_names; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
