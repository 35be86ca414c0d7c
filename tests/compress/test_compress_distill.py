"""Distillation: the KD term by hand, the training loss a step reports, and a real student run."""

from __future__ import annotations

import numpy as np
import pytest
from compress_runs import mlp_config

from kerasopt._keras import keras, tf
from kerasopt.compress.distill import attach, kd_term
from kerasopt.config.compress_schema import DistillConfig
from kerasopt.errors import ConfigError
from kerasopt.training.accumulate import with_grad_accumulation


def _tempered(p, t):
    q = np.asarray(p, np.float64) ** (1.0 / t)  # softmax(log p / T) = p^(1/T) / sum
    return q / q.sum(-1, keepdims=True)


def _kd_numpy(pt, ps, t):
    qt, qs = _tempered(pt, t), _tempered(ps, t)
    return t * t * np.mean(np.sum(qt * (np.log(qt) - np.log(qs)), -1))


def test_kd_term_matches_the_formula():
    pt = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    ps = np.array([[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]], np.float32)
    for t in (1.0, 2.0, 4.0):
        assert float(kd_term(tf.constant(pt), tf.constant(ps), t)) == pytest.approx(_kd_numpy(pt, ps, t), rel=1e-5)
    assert float(kd_term(tf.constant(pt), tf.constant(pt), 3.0)) == pytest.approx(0.0, abs=1e-7)


def _softmax_model(seed, units=3):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((5,))
    return keras.Model(inp, keras.layers.Dense(units, activation="softmax")(inp))


def test_train_step_loss_is_alpha_task_plus_tempered_kl_and_val_loss_is_task_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=8)
    student, teacher = _softmax_model(1), _softmax_model(2)
    train_model = with_grad_accumulation(student, 1, wrap=True)
    attach(train_model, teacher, DistillConfig(teacher="unused", alpha=0.3, temperature=2.0))
    train_model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    ps, pt = student.predict_on_batch(x), teacher.predict_on_batch(x)
    ce = float(np.mean(-np.log(ps[np.arange(8), y])))
    expected = 0.3 * ce + 0.7 * _kd_numpy(pt, ps, 2.0)
    logged = train_model.train_on_batch(x, y)
    assert logged == pytest.approx(expected, rel=1e-4)
    assert train_model.evaluate(x, y, verbose=0) == pytest.approx(ce, rel=1e-4)
    # the teacher is not part of the student: no extra weights to checkpoint or export
    assert len(train_model.weights) == len(student.weights) == 2


def test_with_mixup_the_teacher_sees_the_mixed_input_and_the_task_loss_takes_the_mixed_targets():
    from kerasopt.config.data_schema import AugmentConfig
    from kerasopt.data.mixing import mix_batch

    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = tf.one_hot(rng.integers(0, 3, size=8), 3)
    mx, my = (t.numpy() for t in mix_batch(tf.constant(x), y, tf.constant([4, 0], tf.int64), AugmentConfig(mixup=1.0)))
    assert not np.allclose(mx, x) and np.all((my > 0).sum(axis=1) <= 2)  # really mixed: two classes a row
    student, teacher = _softmax_model(1), _softmax_model(2)
    train_model = with_grad_accumulation(student, 1, wrap=True)
    attach(train_model, teacher, DistillConfig(teacher="unused", alpha=0.6, temperature=3.0))
    train_model.compile(optimizer=keras.optimizers.SGD(0.0), loss="categorical_crossentropy")
    ps, pt = student.predict_on_batch(mx), teacher.predict_on_batch(mx)
    soft_ce = float(np.mean(-np.sum(my * np.log(ps), axis=1)))
    expected = 0.6 * soft_ce + 0.4 * _kd_numpy(pt, ps, 3.0)
    assert train_model.train_on_batch(mx, my) == pytest.approx(expected, rel=1e-4)


def test_student_learns_from_a_trained_teacher(mlp_run, tmp_path):
    import kerasopt

    _, teacher_dir, teacher_fit = mlp_run
    lines = []
    cfg = mlp_config(tmp_path, **{"model.hidden_units": [16], "distill.teacher": str(teacher_dir),
                                  "distill.alpha": 0.2, "distill.temperature": 3.0})
    result = kerasopt.fit(cfg, run_dir=str(tmp_path / "student"), print_fn=lines.append)
    assert any(line.startswith(f"distilling from {teacher_dir}") for line in lines)
    student_params = result.model.count_params()
    assert student_params * 4 <= teacher_fit.model.count_params()
    h = result.history
    assert h["loss"][-1] < h["loss"][0]
    assert h["val_accuracy"][-1] >= 0.88  # a 16-unit MLP on digits; the benchmark holds the real target


def test_missing_teacher_is_a_config_error_before_anything_is_written(tmp_path):
    import kerasopt

    cfg = mlp_config(tmp_path, **{"distill.teacher": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="distill.teacher: not found") as e:
        kerasopt.fit(cfg, run_dir=str(tmp_path / "student"), print_fn=lambda s: None)
    assert e.value.key == "distill.teacher"
    assert not (tmp_path / "student").exists()
