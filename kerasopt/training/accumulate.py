"""Gradient accumulation: ``k`` micro-batches per optimizer step.

Each micro-batch's gradients of ``loss / k`` are summed into accumulators and
applied once every ``k`` batches, so ``k`` batches of ``b`` give the same update
as one batch of ``k * b`` (shown by a test). The optimizer's ``iterations`` —
and so the LR schedule — counts applied steps.
"""

from __future__ import annotations

from kerasopt._keras import keras, tf


class _AccumulatingModel(keras.Model):
    """A functional model sharing the original's layers, with an accumulating ``train_step``
    and optional post-step hooks (the fused EMA update) run inside the compiled step."""

    def _accum_setup(self, steps: int) -> None:
        self.__dict__.setdefault("_post_step", [])
        if steps <= 1:
            self.__dict__["_accum"] = None
            return
        # Stored outside Keras' attribute tracking so the accumulators never show
        # up in model.weights (saved weights stay those of the plain model). One per variable
        # trainable now, looked up by variable: model.freeze later trains a subset of them.
        vars_ = [
            tf.Variable(tf.zeros_like(v), trainable=False, name=f"accum_{i}")
            for i, v in enumerate(self.trainable_variables)
        ]
        by_var = {v.ref(): a for v, a in zip(self.trainable_variables, vars_)}
        counter = tf.Variable(0, dtype=tf.int64, trainable=False, name="accum_counter")
        self.__dict__["_accum"] = {"steps": int(steps), "grads": vars_, "by_var": by_var, "counter": counter}

    def train_step(self, data):
        state = self.__dict__["_accum"]
        self.__dict__["_in_train_step"] = True  # read while tracing: the loss hook is for training only
        try:
            if state is None:
                logs = super().train_step(data)
            else:
                logs = self._accumulating_step(data, state)
        finally:
            self.__dict__["_in_train_step"] = False
        for hook in self.__dict__.get("_post_step", []):
            hook()
        return logs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        loss = super().compute_loss(x, y, y_pred, sample_weight)
        hook = self.__dict__.get("_loss_hook")
        if hook is None or not self.__dict__.get("_in_train_step"):
            return loss
        # A training loss hook (distillation). Keras' loss tracker has just averaged in the task
        # loss; shift it by the difference so the logged "loss" is the loss being minimized.
        reg = tf.add_n(self.losses) if self.losses else tf.constant(0.0, loss.dtype)
        total = hook(x, y_pred, loss, tf.cast(reg, loss.dtype))
        mean = getattr(self.compiled_loss, "_total_loss_mean", None)
        if mean is not None:
            batch = tf.cast(tf.shape(y_pred)[0], mean.total.dtype)
            mean.total.assign_add(tf.cast(total - loss, mean.total.dtype) * batch)
        return total

    def _accumulating_step(self, data, state):
        steps, counter = state["steps"], state["counter"]
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        opt = self.optimizer
        scaled = isinstance(opt, keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
            step_loss = loss / tf.cast(steps, loss.dtype)
            if scaled:
                step_loss = opt.get_scaled_loss(step_loss)
        tvars = self.trainable_variables
        accums = [state["by_var"][v.ref()] for v in tvars]
        grads = tape.gradient(step_loss, tvars)
        if scaled:
            grads = opt.get_unscaled_gradients(grads)
        for acc, g in zip(accums, grads):
            if g is not None:
                acc.assign_add(tf.cast(g, acc.dtype))
        counter.assign_add(1)

        def _apply():
            opt.apply_gradients(zip([tf.identity(a) for a in accums], tvars))
            for a in accums:
                a.assign(tf.zeros_like(a))
            return tf.constant(True)

        tf.cond(counter % steps == 0, _apply, lambda: tf.constant(False))
        return self.compute_metrics(x, y, y_pred, sample_weight)


def with_grad_accumulation(model: keras.Model, steps: int, wrap: bool = False) -> keras.Model:
    """Return ``model`` itself for ``steps == 1``, else a model that accumulates gradients.

    The returned model shares every layer and weight with ``model``; save and
    export ``model``. Call :func:`prepare_accumulation` after ``compile``.

    Example:
        >>> train_model = with_grad_accumulation(model, 4)  # doctest: +SKIP
    """
    if steps <= 1 and not wrap:
        return model
    wrapped = _AccumulatingModel(inputs=model.inputs, outputs=model.outputs, name=model.name)
    wrapped._accum_setup(steps)
    return wrapped


def add_post_step(model: keras.Model, hook) -> bool:
    """Run ``hook()`` inside the compiled train step after each update; False if ``model`` cannot."""
    hooks = model.__dict__.get("_post_step")
    if hooks is None:
        return False
    hooks.append(hook)
    return True


def prepare_accumulation(model: keras.Model) -> None:
    """Create the optimizer's slots up front.

    They cannot be created inside ``tf.cond`` (accumulation), and a checkpoint
    written before the first step must hold them, or a restore after a
    divergence would leave the diverged slot values in place.
    """
    opt = model.optimizer
    inner = opt.inner_optimizer if isinstance(opt, keras.mixed_precision.LossScaleOptimizer) else opt
    inner.build(model.trainable_variables)
