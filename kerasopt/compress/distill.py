"""Knowledge distillation: the student's loss gains a softened KL term against a frozen teacher.

loss = alpha * task_loss + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + regularization

``z`` are log-probabilities of the softmax outputs: ``softmax(log p / T)`` equals
``softmax(z / T)`` for the logits ``z`` (the log-sum-exp constant cancels), so any kerasopt
classifier (softmax head) works as teacher or student without surgery. Validation loss stays
the plain task loss, so runs with and without a teacher compare.
"""

from __future__ import annotations

from kerasopt._keras import keras, tf
from kerasopt.config.compress_schema import DistillConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError

_TINY = 1e-30


def kd_term(teacher_probs: tf.Tensor, student_probs: tf.Tensor, temperature: float) -> tf.Tensor:
    """``T^2 * KL(softmax(log pt / T) || softmax(log ps / T))``, averaged over the batch.

    Example: identical distributions give 0; T=1 gives the plain KL divergence.
        >>> float(kd_term(tf.constant([[0.5, 0.5]]), tf.constant([[0.5, 0.5]]), 4.0))
        0.0
    """
    t = tf.cast(temperature, tf.float32)
    zt = tf.math.log(tf.maximum(tf.cast(teacher_probs, tf.float32), _TINY)) / t
    zs = tf.math.log(tf.maximum(tf.cast(student_probs, tf.float32), _TINY)) / t
    log_pt = tf.nn.log_softmax(zt, axis=-1)
    log_ps = tf.nn.log_softmax(zs, axis=-1)
    kl = tf.reduce_sum(tf.exp(log_pt) * (log_pt - log_ps), axis=-1)
    return t * t * tf.reduce_mean(kl)


def load_teacher(dcfg: DistillConfig, spec: DataSpec, student: keras.Model) -> keras.Model:
    """Load and freeze the teacher; check it fits the student's inputs and classes."""
    from kerasopt.compress.loading import load_model

    try:
        teacher = load_model(dcfg.teacher, float32=False)
    except ConfigError as e:
        raise ConfigError(f"distill.teacher: {e.message}", key="distill.teacher") from None
    teacher.trainable = False
    t_in, s_in = tuple(teacher.inputs[0].shape[1:]), tuple(student.inputs[0].shape[1:])
    if t_in != s_in:
        raise ConfigError(f"the teacher takes inputs of shape {t_in} but the student's data has {s_in}",
                          key="distill.teacher")
    t_out, s_out = teacher.outputs[0].shape[-1], student.outputs[0].shape[-1]
    if t_out != s_out or spec.task != "classification" or s_out < 2:
        raise ConfigError(f"distillation needs two softmax classifiers with the same classes; the teacher has "
                          f"{t_out} outputs, the student {s_out} ({spec.task})", key="distill.teacher")
    return teacher


def attach(train_model: keras.Model, teacher: keras.Model, dcfg: DistillConfig) -> None:
    """Make ``train_model`` (an accumulating/wrapped kerasopt model) distill from ``teacher``.

    The teacher is kept out of Keras' attribute tracking: it is not saved in checkpoints
    (it is reloaded from ``distill.teacher`` on resume) and not exported.
    """
    alpha, temperature = float(dcfg.alpha), float(dcfg.temperature)

    def loss_hook(x, y_pred, task_loss, reg_loss):
        t_probs = tf.stop_gradient(teacher(x, training=False))
        kd = kd_term(t_probs, y_pred, temperature)
        total = alpha * (task_loss - reg_loss) + (1.0 - alpha) * tf.cast(kd, task_loss.dtype) + reg_loss
        return total

    if "_post_step" not in train_model.__dict__:
        raise RuntimeError("distillation needs the wrapped training model (with_grad_accumulation(wrap=True))")
    train_model.__dict__["_loss_hook"] = loss_hook
    train_model.__dict__["_teacher"] = teacher
