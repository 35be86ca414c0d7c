"""Exponential moving average of the weights (timm's ``ModelEmaV3``) as a Keras callback.

After every optimizer step the shadow copy moves towards the weights,
``ema = decay_t * ema + (1 - decay_t) * w``, with timm's warm-up
``decay_t = min(decay, 1 - (1 + t / warmup_gamma) ** -warmup_power)``, where ``t`` counts
optimizer steps after ``update_after_step`` (until then the shadows copy the weights).

What is averaged: ``model.trainable_weights`` and, with ``include_bn_stats``, the moving
mean/variance of BatchNormalization layers (any layer with ``moving_mean``/``moving_variance``).
Every other non-trainable weight (frozen layers, BN stats when excluded, counters) is shared
between the raw and the EMA model: a swap leaves it alone, which is what timm's copy of the
buffers amounts to, without a second copy in memory.

During ``fit`` the validation pass runs on the EMA weights (so ``val_*`` are the EMA model's) and,
with ``evaluate_raw``, the raw weights are evaluated too and logged as ``val_raw_*``.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any, Optional

from .._keras import keras, tf
from .base import StatefulCallback

EXPORTS = ("ema", "raw")


def _averaged_weights(model: keras.Model, include_bn_stats: bool) -> list:
    """The model variables the EMA follows, in a stable order (checkpoints rely on it)."""
    out = list({id(w): w for w in model.trainable_weights}.values())
    if include_bn_stats:
        stats = {id(v) for layer in model.submodules
                 for v in (getattr(layer, "moving_mean", None), getattr(layer, "moving_variance", None))
                 if isinstance(v, tf.Variable)}
        seen = {id(w) for w in out}
        out += [w for w in model.non_trainable_weights if id(w) in stats and id(w) not in seen]
    return out


class _EMAState(tf.Module):
    """What goes into the TF checkpoint: ``shadows`` (list) and ``last_step`` (int64)."""


class WeightEMA(StatefulCallback):
    """Keep an exponential moving average of the weights; validate and export it.

    Call :meth:`build` after ``compile`` (and before restoring a checkpoint holding
    :meth:`trackables`); otherwise ``on_train_begin`` builds it, or the first batch does for a
    model whose weights are created by its first call. The shadows are updated once per
    optimizer step (gradient accumulation: once per ``k`` batches; ``steps_per_execution=k``:
    once per ``k`` steps) by one compiled ``tf.function`` that reads ``optimizer.iterations``
    on the device, so no host sync is added to the step.

    Args:
        decay: the decay after warm-up, in (0, 1).
        warmup: ramp the decay up as ``1 - (1 + t / warmup_gamma) ** -warmup_power``.
        warmup_gamma, warmup_power: the warm-up's shape (timm: power 3/4 short runs, 2/3 long).
        update_after_step: copy the weights (decay 0) until this optimizer step.
        include_bn_stats: average BatchNorm moving statistics too (else the EMA model uses the
            live ones).
        evaluate_raw: after each validation pass, evaluate the raw weights on
            ``validation_data`` and log ``val_raw_<metric>``; skipped without validation data.
        export: ``"ema"`` copies the EMA into the model at ``on_train_end``; ``"raw"`` does not.
        validation_data: a ``tf.data.Dataset`` or ``(x, y[, sample_weight])`` for ``evaluate_raw``.
        validation_steps: batches of ``validation_data`` to evaluate (needed for a repeating one).
        jit_compile: compile the averaging with XLA (one replica only; measure it: on CPU it is
            slower, on GPU it fuses hundreds of small kernels). Independent of the model's XLA.

    Example:
        >>> ema = WeightEMA(decay=0.999, validation_data=val_ds)  # doctest: +SKIP
        >>> model.compile(...); ema.build(model)                  # doctest: +SKIP
        >>> model.fit(train_ds, validation_data=val_ds, callbacks=[ema])  # doctest: +SKIP
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True, warmup_gamma: float = 1.0,
                 warmup_power: float = 0.75, update_after_step: int = 0, include_bn_stats: bool = True,
                 evaluate_raw: bool = True, export: str = "ema", validation_data: Any = None,
                 validation_steps: Optional[int] = None, jit_compile: bool = False) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"`decay` must be in (0, 1). Received: decay={decay}")
        if warmup_gamma <= 0:
            raise ValueError(f"`warmup_gamma` must be > 0. Received: warmup_gamma={warmup_gamma}")
        if warmup_power <= 0:
            raise ValueError(f"`warmup_power` must be > 0. Received: warmup_power={warmup_power}")
        if isinstance(update_after_step, bool) or not isinstance(update_after_step, numbers.Integral) \
                or update_after_step < 0:
            raise ValueError("`update_after_step` must be an int >= 0. "
                             f"Received: update_after_step={update_after_step}")
        if export not in EXPORTS:
            raise ValueError(f"`export` must be one of {', '.join(EXPORTS)}. Received: export={export}")
        if validation_steps is not None and validation_steps <= 0:
            raise ValueError(f"`validation_steps` must be > 0 or None. Received: validation_steps={validation_steps}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.warmup_gamma, self.warmup_power = float(warmup_gamma), float(warmup_power)
        self.update_after_step, self.include_bn_stats = int(update_after_step), bool(include_bn_stats)
        self.evaluate_raw, self.export, self.jit_compile = bool(evaluate_raw), export, bool(jit_compile)
        self.set_validation_data(validation_data, validation_steps)
        self._supports_tf_logs = True  # the batch hook ignores its logs: spare Keras a per-batch host sync
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        self._state = _EMAState(name="weight_ema")
        self._weights: Optional[list] = None  # the model variables, aligned with the shadows
        self._fns: dict[str, Any] = {}
        self._update_traces = 0
        self._pending_step = -1  # set_state() before build()
        self._in_fit = self._inner_eval = False
        self._swapped_by: Optional[str] = None  # "test"/"predict" while fit swapped; "user" by swap()

    @classmethod
    def from_config(cls, ema_cfg, **kwargs) -> WeightEMA:
        """From ``EMAConfig`` (``enabled`` is the caller's to check); ``kwargs`` go to ``__init__``.

        Example: ``WeightEMA.from_config(cfg.callbacks.ema, validation_data=val_ds)``
        """
        fields = ("decay", "warmup", "warmup_gamma", "warmup_power", "update_after_step",
                  "include_bn_stats", "evaluate_raw", "export")
        return cls(**{**{f: getattr(ema_cfg, f) for f in fields}, **kwargs})

    def __deepcopy__(self, memo) -> WeightEMA:
        """A fresh, unbuilt callback with the same settings (Keras Tuner copies one per trial).

        The validation data is shared, not copied; EMA values move with ``get_state``/``trackables``.
        """
        return type(self)(self.decay, self.warmup, self.warmup_gamma, self.warmup_power, self.update_after_step,
                          self.include_bn_stats, self.evaluate_raw, self.export, self._val_data, self._val_steps,
                          self.jit_compile)

    def set_validation_data(self, validation_data: Any, validation_steps: Optional[int] = None) -> None:
        """The data ``evaluate_raw`` evaluates the raw weights on (``None`` turns it off)."""
        self._val_data, self._val_steps = validation_data, validation_steps

    # ------------------------------------------------------------------ the shadows
    def decay_at(self, iterations: int) -> float:
        """The decay applied when ``optimizer.iterations`` reaches ``iterations`` (0.0: a copy).

        Example:
            >>> round(WeightEMA(decay=0.999).decay_at(1), 6)  # 1 - 2 ** -0.75
            0.405396
        """
        t = iterations - self.update_after_step
        if t <= 0:
            return 0.0
        if not self.warmup:
            return self.decay
        return max(0.0, min(self.decay, 1.0 - (1.0 + t / self.warmup_gamma) ** -self.warmup_power))

    @property
    def built(self) -> bool:
        return self._weights is not None

    @property
    def ema_variables(self) -> list:
        """The shadow variables, aligned with :attr:`model_variables` (they hold the raw weights while swapped)."""
        return list(self._state.shadows) if self.built else []

    @property
    def model_variables(self) -> list:
        """The model variables being averaged."""
        return list(self._weights or [])

    def build(self, model: keras.Model) -> None:
        """Create the shadows (a copy of the current weights) under the model's strategy scope.

        Call after ``compile`` and before restoring a checkpoint into :meth:`trackables`.
        Rebuilding for the same variables keeps the averages; another model starts afresh.
        """
        weights = _averaged_weights(model, self.include_bn_stats) if model.built else []
        if not weights:
            raise ValueError(f"`model` has no weights yet: build or call it first. Received: model={model.name}")
        self.set_model(model)
        if self.built and [id(w) for w in weights] == [id(w) for w in self._weights]:
            return
        with model.distribute_strategy.scope():
            self._state.shadows = [tf.Variable(tf.identity(w), trainable=False, dtype=w.dtype,
                                               name="ema_" + w.name.split(":")[0].replace("/", "_"))
                                   for w in weights]
            self._state.last_step = tf.Variable(self._pending_step, dtype=tf.int64, trainable=False,
                                                name="ema_last_step")
        self._weights, self._swapped_by, self._pending_step = weights, None, -1
        self._fns = self._compile_fns(model)

    def _compile_fns(self, model) -> dict[str, Any]:
        pairs = list(zip(self._state.shadows, self._weights))
        last, after = self._state.last_step, self.update_after_step
        decay, warmup, gamma, power = self.decay, self.warmup, self.warmup_gamma, self.warmup_power

        def _copy():
            for s, w in pairs:
                s.assign(w)
            return tf.constant(0.0, tf.float64)

        def _average(t):
            d = tf.constant(decay, tf.float64)
            if warmup:
                d = tf.clip_by_value(1.0 - (1.0 + t / gamma) ** -power, 0.0, decay)
            rate = {dt: tf.cast(1.0 - d, dt) for dt in {s.dtype for s, _ in pairs}}  # hoisted: 2 ops less a variable
            for s, w in pairs:
                s.assign_add(rate[s.dtype] * (w - s))
            return d

        # XLA fuses the per-variable ops; only the averaging is compiled, so the batches on which the
        # optimizer did not step (gradient accumulation) never launch it. One replica only.
        if self.jit_compile and model.distribute_strategy.num_replicas_in_sync == 1:
            _average = tf.function(_average, jit_compile=True)

        def make_update(iterations, compiled=True):
            def update():
                # Called every batch; it works only when the optimizer stepped since the last update.
                self._update_traces += 1
                step = tf.cast(iterations, tf.int64)

                def _step():
                    t = tf.cast(step - after, tf.float64)
                    d = tf.cond((t <= 0.0) | (last < 0), _copy, lambda: _average(t))
                    with tf.control_dependencies([d]):
                        last.assign(step)
                    return d

                return tf.cond(tf.not_equal(step, last), _step, lambda: tf.constant(-1.0, tf.float64))

            if not compiled:
                return update
            # A concrete function: calling it skips tf.function's argument/capture matching (half the cost).
            return tf.function(update).get_concrete_function()

        def exchange():
            for s, w in pairs:
                raw = tf.identity(w)  # read before either write (auto control deps keep program order)
                w.assign(tf.cast(s, w.dtype))
                s.assign(tf.cast(raw, s.dtype))

        def apply():
            for s, w in pairs:
                w.assign(tf.cast(s, w.dtype))

        return {"make_update": make_update, "exchange": tf.function(exchange), "apply": tf.function(apply),
                "copy": tf.function(_copy)}

    def _start(self) -> None:
        """Before the first update ever (not a restored one), re-copy: weights may have been loaded since build()."""
        if int(self._state.last_step.numpy()) < 0:
            self._fns["copy"]()
            self._state.last_step.assign(int(self.model.optimizer.iterations.numpy()))

    def swap(self) -> None:
        """Exchange the model's weights and the EMA weights in place; call again to undo."""
        if not self.built:
            raise ValueError("WeightEMA.swap() needs build(model) first")
        self._fns["exchange"]()
        self._swapped_by = None if self._swapped_by else "user"

    @contextlib.contextmanager
    def ema_weights(self):
        """Run a block with the EMA weights in the model. Example: ``with ema.ema_weights(): model.evaluate(ds)``"""
        self.swap()
        try:
            yield self.model
        finally:
            self.swap()

    def apply_ema_to_model(self) -> None:
        """Copy the EMA weights into the model for good (shadows keep them too)."""
        if not self.built:
            raise ValueError("WeightEMA.apply_ema_to_model() needs build(model) first")
        if self._swapped_by:
            self.swap()
        self._fns["apply"]()

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        step = int(self._state.last_step.numpy()) if self.built else self._pending_step
        return {"last_step": step, "num_variables": len(self._weights) if self.built else None}

    def set_state(self, state: dict[str, Any]) -> None:
        n = state.get("num_variables")
        if self.built and n is not None and n != len(self._weights):
            raise ValueError(f"the saved EMA averages {n} variables, this model {len(self._weights)}. "
                             f"Received: state={state}")
        if self.built:
            self._state.last_step.assign(int(state.get("last_step", -1)))
        else:
            self._pending_step = int(state.get("last_step", -1))

    def trackables(self) -> dict[str, Any]:
        """``{"ema": tf.Module}`` with ``shadows`` and ``last_step``; a read before build() is deferred."""
        return {"ema": self._state}

    # ------------------------------------------------------------------ hooks
    def _build_if_ready(self) -> bool:
        if self.built or (self.model.built and _averaged_weights(self.model, self.include_bn_stats)):
            self.build(self.model)  # a no-op when built for these variables: restored averages stay
            self._start()
            return True
        return False  # a subclassed model creates its weights in its first step

    def on_train_begin(self, logs=None):
        self._in_fit = True
        if self._swapped_by:  # left swapped (by the user, or a fit that died mid-validation): train the raw
            self.swap()
        self._build_if_ready()

    def fused_update(self, model: keras.Model):
        """The update as a plain function of TF ops, to run INSIDE the compiled train step.

        The training model calls it right after the optimizer step, so the average
        costs a few fused element-wise ops instead of a separate call per batch
        (measured: +4-6% step time as a callback on the digits CNN on CPU). After
        this, ``on_train_batch_end`` leaves the updating to the train step. Single
        replica only (under a strategy the callback path runs).

        Example:
            >>> train_model.__dict__["_post_step"] = [ema.fused_update(train_model)]  # doctest: +SKIP
        """
        if not self.built:
            self.build(model)
        self.fused = True
        return self._fns["make_update"](model.optimizer.iterations, compiled=False)

    def on_train_batch_end(self, batch, logs=None):
        if getattr(self, "fused", False):
            return
        if not self.built:
            self._build_if_ready()  # the shadows start from the weights after this first step
            return
        iterations = self.model.optimizer.iterations
        if self._fns.get("update_for") is not iterations:  # first batch, or a recompiled model
            self._fns.update(update=self._fns["make_update"](iterations), update_for=iterations)
        self._fns["update"]()

    def _swap_in(self, who: str) -> None:
        if self._in_fit and not self._inner_eval and self.built and self._swapped_by is None:
            self.swap()
            self._swapped_by = who

    def _swap_out(self, who: str) -> None:
        if self._swapped_by == who:
            self.swap()

    def on_test_begin(self, logs=None):
        self._swap_in("test")

    def on_test_end(self, logs=None):
        self._swap_out("test")

    def on_predict_begin(self, logs=None):
        self._swap_in("predict")

    def on_predict_end(self, logs=None):
        self._swap_out("predict")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self.evaluate_raw or self._val_data is None:
            return
        if not any(k.startswith("val_") for k in logs):  # no validation this epoch (validation_freq)
            return
        data = self._val_data
        x, y, sw = (tuple(data) + (None, None))[:3] if isinstance(data, (tuple, list)) else (data, None, None)
        self._inner_eval = True
        try:
            raw = self.model.evaluate(x, y, sample_weight=sw, steps=self._val_steps, verbose=0, return_dict=True)
        finally:
            self._inner_eval = False
        logs.update({f"val_raw_{k}": v for k, v in raw.items()})

    def on_train_end(self, logs=None):
        if self._swapped_by in ("test", "predict"):
            self.swap()
        self._in_fit = False
        if self.export == "ema" and self.built:
            self.apply_ema_to_model()
