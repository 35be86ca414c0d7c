"""Optimizers by name, with clipping and decoupled weight decay."""

from __future__ import annotations

from typing import Any

from kerasopt._keras import keras
from kerasopt.config.train_schema import (
    AdagradOptimizer,
    AdamOptimizer,
    AdamWOptimizer,
    NadamOptimizer,
    OptimizerConfig,
    RMSpropOptimizer,
    SGDOptimizer,
)
from kerasopt.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", key="train.optimizer.type")


def _common(o: OptimizerConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for name in ("clipnorm", "clipvalue", "global_clipnorm"):
        if getattr(o, name) is not None:
            kw[name] = getattr(o, name)
    if o.weight_decay is not None:
        kw["weight_decay"] = o.weight_decay
    return kw


@OPTIMIZERS.register("sgd")
def _sgd(o: SGDOptimizer, lr):
    return keras.optimizers.SGD(lr, momentum=o.momentum, nesterov=o.nesterov, **_common(o))


@OPTIMIZERS.register("adam")
def _adam(o: AdamOptimizer, lr):
    return keras.optimizers.Adam(lr, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, amsgrad=o.amsgrad,
                                 **_common(o))


@OPTIMIZERS.register("adamw")
def _adamw(o: AdamWOptimizer, lr):
    kw = _common(o)
    kw.setdefault("weight_decay", 0.004)  # Keras' AdamW default, stated once here
    return keras.optimizers.AdamW(lr, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, amsgrad=o.amsgrad, **kw)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(o: RMSpropOptimizer, lr):
    return keras.optimizers.RMSprop(lr, rho=o.rho, momentum=o.momentum, epsilon=o.epsilon, **_common(o))


@OPTIMIZERS.register("adagrad")
def _adagrad(o: AdagradOptimizer, lr):
    return keras.optimizers.Adagrad(lr, initial_accumulator_value=o.initial_accumulator_value, epsilon=o.epsilon,
                                    **_common(o))


@OPTIMIZERS.register("nadam")
def _nadam(o: NadamOptimizer, lr):
    return keras.optimizers.Nadam(lr, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon, **_common(o))


def build_optimizer(o: OptimizerConfig, learning_rate) -> keras.optimizers.Optimizer:
    """A tf_keras optimizer for ``train.optimizer``; ``learning_rate`` may be a schedule.

    Example:
        >>> build_optimizer(OptimizerConfig(type="sgd", momentum=0.9), 0.1).momentum
        0.9
    """
    return OPTIMIZERS.get(o.type)(o, learning_rate)
