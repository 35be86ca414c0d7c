"""WeightEMA: averages against a numpy recurrence, warm-up decays, gradient accumulation, BN
statistics, every begin/end hook pair, XLA, checkpoint round trip and deepcopy."""

import copy

import numpy as np
import pytest
from kerasopt.callbacks.ema import WeightEMA
from sklearn.datasets import load_wine

from kerasopt._keras import keras, tf
from kerasopt.config.schema import EMAConfig
from kerasopt.training.accumulate import prepare_accumulation, with_grad_accumulation

LR = 0.1
W0 = np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], "float32")
B0 = np.array([0.05, -0.1], "float32")
# 1 - (1 + t) ** -0.75 for t = 1..4 (warmup_gamma=1, warmup_power=0.75): timm's short-run ramp
WARMUP_DECAYS = [0.4053964, 0.5613087, 0.6464466, 0.7009302]


def _data(n=8):
    x, _ = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")[:n]
    return x[:, :3], x[:, 3:5]  # 3 features in, 2 other features as the regression target


def _linear(jit=False, opt=None, metrics=None):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant(W0), bias_initializer=keras.initializers.Constant(B0))])
    model.compile(opt or keras.optimizers.SGD(LR), "mse", metrics=metrics, jit_compile=jit)
    return model


def _sgd_trajectory(x, y, batch, steps):
    """Weights after each SGD step on MSE (mean over batch and outputs), by hand."""
    w, b, out = W0.astype("float64"), B0.astype("float64"), [(W0, B0)]
    for k in range(steps):
        i = (k * batch) % len(x)
        xb, yb = x[i:i + batch], y[i:i + batch]
        err = xb @ w + b - yb
        w, b = w - LR * 2 * xb.T @ err / err.size, b - LR * 2 * err.sum(0) / err.size
        out.append((w, b))
    return out


def _recurrence(traj, decays):
    """ema_t = d_t * ema_{t-1} + (1 - d_t) * w_t, starting from the initial weights."""
    s, out = [np.asarray(v, "float64") for v in traj[0]], []
    for w, d in zip(traj[1:], decays):
        s = [d * sv + (1 - d) * np.asarray(wv, "float64") for sv, wv in zip(s, w)]
        out.append(s)
    return out


class Probe(keras.callbacks.Callback):
    """Records the averaged model variables and the shadows after every batch."""

    def __init__(self, ema):
        super().__init__()
        self.ema, self.raw, self.shadows, self.steps = ema, [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.raw.append([v.numpy() for v in self.ema.model_variables])
        self.shadows.append([v.numpy() for v in self.ema.ema_variables])
        self.steps.append(int(self.model.optimizer.iterations.numpy()))


def _values(variables):
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("kwargs, expected", [
    ({"decay": 1.5}, "`decay` must be in (0, 1). Received: decay=1.5"),
    ({"decay": 0.0}, "Received: decay=0.0"),
    ({"warmup_gamma": 0}, "Received: warmup_gamma=0"),
    ({"warmup_power": -1}, "Received: warmup_power=-1"),
    ({"update_after_step": -2}, "Received: update_after_step=-2"),
    ({"update_after_step": 1.5}, "Received: update_after_step=1.5"),
    ({"export": "best"}, "must be one of ema, raw. Received: export=best"),
    ({"validation_steps": 0}, "Received: validation_steps=0"),
])
def test_arguments_are_checked(kwargs, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        WeightEMA(**kwargs)


@pytest.mark.parametrize("kwargs, iterations, expected", [
    ({"decay": 0.5, "warmup": False}, [0, 1, 2, 3], [0.0, 0.5, 0.5, 0.5]),
    ({"decay": 0.999}, [1, 2, 3, 4], WARMUP_DECAYS),
    ({"decay": 0.5}, [1, 2, 3, 10], [0.4053964, 0.5, 0.5, 0.5]),  # capped at `decay`
    ({"decay": 0.999, "warmup_gamma": 2.0}, [2], [1 - 2 ** -0.75]),  # t / gamma = 1
    ({"decay": 0.5, "warmup": False, "update_after_step": 2}, [1, 2, 3], [0.0, 0.0, 0.5]),
    ({"decay": 0.999, "update_after_step": 2}, [2, 3, 4], [0.0] + WARMUP_DECAYS[:2]),
])
def test_decay_at(kwargs, iterations, expected):
    ema = WeightEMA(**kwargs)
    assert [ema.decay_at(i) for i in iterations] == pytest.approx(expected, abs=1e-7)


def test_from_config_takes_every_field():
    cfg = EMAConfig(enabled=True, decay=0.9, warmup=False, warmup_gamma=2.0, warmup_power=0.5,
                    update_after_step=3, include_bn_stats=False, evaluate_raw=False, export="raw")
    ema = WeightEMA.from_config(cfg, validation_steps=2)
    assert (ema.decay, ema.warmup, ema.warmup_gamma, ema.warmup_power, ema.update_after_step) == (0.9, False, 2.0,
                                                                                                  0.5, 3)
    assert (ema.include_bn_stats, ema.evaluate_raw, ema.export, ema._val_steps) == (False, False, "raw", 2)


@pytest.mark.parametrize("kwargs, decays, jit", [
    ({"decay": 0.5, "warmup": False}, [0.5] * 4, False),
    ({"decay": 0.5, "warmup": False}, [0.5] * 4, True),  # XLA: the model and the averaging compiled
    ({"decay": 0.999}, WARMUP_DECAYS, False),
    ({"decay": 0.5, "warmup": False, "update_after_step": 2}, [0.0, 0.0, 0.5, 0.5], False),
    ({"decay": 0.999, "update_after_step": 2}, [0.0, 0.0] + WARMUP_DECAYS[:2], True),
])
def test_average_follows_the_hand_computed_recurrence(kwargs, decays, jit):
    x, y = _data()
    model = _linear(jit=jit)
    ema = WeightEMA(export="raw", jit_compile=jit, **kwargs)
    probe = Probe(ema)
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[ema, probe])
    traj = _sgd_trajectory(x, y, batch=4, steps=4)
    assert probe.steps == [1, 2, 3, 4]
    for raw, (w, b) in zip(probe.raw, traj[1:]):  # the SGD itself matches the hand computation
        np.testing.assert_allclose(raw[0], w, atol=1e-5)
        np.testing.assert_allclose(raw[1], b, atol=1e-5)
    # the EMA recurrence, fed the weights the model really had (hand-computed above)
    for step, (got, want) in enumerate(zip(probe.shadows, _recurrence([(W0, B0)] + probe.raw, decays))):
        for g, e in zip(got, want):
            np.testing.assert_allclose(g, e, atol=1e-6, err_msg=f"step {step + 1}")
    if kwargs.get("update_after_step"):
        for got, raw in zip(probe.shadows[:2], probe.raw[:2]):  # the first two steps copy
            for g, r in zip(got, raw):
                np.testing.assert_array_equal(g, r)
    assert ema.get_state() == {"last_step": 4, "num_variables": 2}
    assert ema._update_traces == 1  # one compiled function, one call per batch
    np.testing.assert_array_equal(model.get_weights()[0], probe.raw[-1][0])  # export="raw"


def test_gradient_accumulation_updates_once_per_optimizer_step():
    x, y = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant(W0), bias_initializer=keras.initializers.Constant(B0))])
    train_model = with_grad_accumulation(model, 2)
    train_model.compile(keras.optimizers.SGD(LR), "mse")
    prepare_accumulation(train_model)
    ema = WeightEMA(decay=0.5, warmup=False, export="raw")
    probe = Probe(ema)
    train_model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[ema, probe])
    assert probe.steps == [0, 1, 1, 2]  # 4 batches, 2 optimizer steps
    np.testing.assert_array_equal(probe.shadows[0][0], W0)
    np.testing.assert_array_equal(probe.shadows[2][0], probe.shadows[1][0])  # batch 3 stepped nothing
    traj = _sgd_trajectory(x, y, batch=8, steps=2)  # 2 x 4 accumulated = one batch of 8
    want = _recurrence(traj, [0.5, 0.5])
    for got, exp in zip((probe.shadows[1], probe.shadows[3]), want):
        for g, e in zip(got, exp):
            np.testing.assert_allclose(g, e, atol=1e-5)
    assert ema.get_state()["last_step"] == 2
    assert ema.model_variables[0] is model.trainable_weights[0]  # the wrapper shares the plain model's weights


def _bn_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(momentum=0.5),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(LR), "mse")
    return model


@pytest.mark.parametrize("include", [True, False])
def test_batchnorm_statistics(include):
    x, y = _data()
    model = _bn_model()
    n_weights = len(model.weights)
    ema = WeightEMA(decay=0.5, warmup=False, include_bn_stats=include, export="raw")
    ema.build(model)
    assert len(model.weights) == n_weights  # the shadows are not model weights
    names = [v.name for v in ema.model_variables]
    assert sum("moving" in n for n in names) == (2 if include else 0)
    assert len(names) == len(model.trainable_weights) + (2 if include else 0)
    initial = _values(ema.model_variables)
    probe = Probe(ema)
    model.fit(x, y[:, :1], batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[ema, probe])
    for got, exp in zip(probe.shadows, _recurrence([initial] + probe.raw, [0.5] * 4)):
        for g, e in zip(got, exp):
            np.testing.assert_allclose(g, e, atol=1e-6)
    bn, averaged = model.layers[1], _values(ema.ema_variables)
    raw_mean = bn.moving_mean.numpy()
    with ema.ema_weights():
        np.testing.assert_array_equal(model.layers[0].kernel.numpy(), averaged[0])
        if include:
            np.testing.assert_array_equal(bn.moving_mean.numpy(), averaged[names.index(bn.moving_mean.name)])
            assert not np.allclose(bn.moving_mean.numpy(), raw_mean)
        else:
            np.testing.assert_array_equal(bn.moving_mean.numpy(), raw_mean)  # the live statistics
    np.testing.assert_array_equal(bn.moving_mean.numpy(), raw_mean)


class HookCheck(keras.callbacks.Callback):
    """``before`` runs ahead of the EMA callback, ``after`` behind it."""

    def __init__(self, ema, role, shared):
        super().__init__()
        self.ema, self.role, self.s = ema, role, shared

    def _w(self):
        return self.model.get_weights()

    def _begin(self, kind):
        if self.role == "before":
            self.s[kind] = (self._w(), _values(self.ema.ema_variables))
        else:  # the EMA callback has swapped the averages in (training never swaps)
            raw, shadows = self.s[kind]
            for got, exp in zip(self._w(), raw if kind == "train" else shadows):
                np.testing.assert_array_equal(got, exp)
            self.s["checked"].append(kind + "_begin")

    def _end(self, kind):
        if self.role == "before" and kind == "train":  # training moved the weights: compare with the last ones
            self.s[kind] = (self._w(), None)
        if self.role == "after":
            for got, exp in zip(self._w(), self.s[kind][0]):
                np.testing.assert_array_equal(got, exp)  # the raw weights are back
            self.s["checked"].append(kind + "_end")

    def on_train_begin(self, logs=None):
        self._begin("train")

    def on_test_begin(self, logs=None):
        self._begin("test")

    def on_test_end(self, logs=None):
        self._end("test")

    def on_predict_begin(self, logs=None):
        self._begin("predict")

    def on_predict_end(self, logs=None):
        self._end("predict")

    def on_epoch_end(self, epoch, logs=None):
        if self.role == "after" and epoch == 1:  # predict inside fit runs on the EMA weights
            w, b = _values(self.ema.ema_variables)
            x = self.s["x"]
            pred = self.model.predict(x, verbose=0, callbacks=[self.s["before"], self.ema, self])
            np.testing.assert_allclose(pred, x @ w + b, atol=1e-5)

    def on_train_end(self, logs=None):
        self._end("train")


def test_every_hook_pair_inside_fit_and_no_swap_outside():
    x, y = _data(64)
    xt, yt, xv, yv = x[:48], y[:48], x[48:], y[48:]
    model = _linear(metrics=["mae"])
    ema = WeightEMA(decay=0.5, warmup=False, export="raw", validation_data=(xv, yv))
    shared = {"checked": [], "x": xv}
    before, after = HookCheck(ema, "before", shared), HookCheck(ema, "after", shared)
    shared["before"] = before
    hist = model.fit(xt, yt, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=(xv, yv),
                     callbacks=[before, ema, after]).history
    assert shared["checked"] == ["train_begin", "test_begin", "test_end", "test_begin", "test_end",
                                 "predict_begin", "predict_end", "train_end"]
    assert set(hist) == {"loss", "mae", "val_loss", "val_mae", "val_raw_loss", "val_raw_mae"}
    raw = model.get_weights()
    # outside fit: evaluate/predict with the callback attached do not swap
    got = model.evaluate(xv, yv, verbose=0, return_dict=True, callbacks=[ema])
    np.testing.assert_allclose(model.predict(xv, verbose=0, callbacks=[ema]), xv @ raw[0] + raw[1], atol=1e-5)
    for a, b in zip(model.get_weights(), raw):
        np.testing.assert_array_equal(a, b)
    assert got["loss"] == pytest.approx(hist["val_raw_loss"][-1], abs=1e-6)
    assert got["mae"] == pytest.approx(hist["val_raw_mae"][-1], abs=1e-6)
    ema.apply_ema_to_model()
    got = model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(hist["val_loss"][-1], abs=1e-6)
    assert got["mae"] == pytest.approx(hist["val_mae"][-1], abs=1e-6)
    assert abs(hist["val_loss"][-1] - hist["val_raw_loss"][-1]) > 1e-4  # the two really differ


def test_export_ema_leaves_the_averages_in_the_model():
    x, y = _data()
    model = _linear()
    ema = WeightEMA(decay=0.5, warmup=False)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[ema])
    for w, s in zip(model.get_weights(), _values(ema.ema_variables)):
        np.testing.assert_array_equal(w, s)


def test_lazy_build_for_a_model_without_weights_at_train_begin():
    x, y = _data()
    model = keras.Sequential([keras.layers.Dense(2)])  # no Input: weights appear in the first step
    model.compile(keras.optimizers.SGD(LR), "mse")
    ema = WeightEMA(decay=0.5, warmup=False, export="raw")
    probe = Probe(ema)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[ema, probe])
    assert len(ema.ema_variables) == 2
    np.testing.assert_array_equal(probe.shadows[0][0], probe.raw[0][0])  # started from the step-1 weights
    np.testing.assert_allclose(probe.shadows[1][0], 0.5 * (probe.raw[0][0] + probe.raw[1][0]), atol=1e-6)


def test_mirrored_strategy_scope():
    x, y = _data()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _bn_model()
    ema = WeightEMA(decay=0.5, warmup=False, export="raw")
    ema.build(model)
    assert all(isinstance(v, tf.distribute.DistributedValues) for v in ema.ema_variables)
    probe = Probe(ema)
    model.fit(x, y[:, :1], batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[ema, probe])
    for g, a, b in zip(probe.shadows[1], probe.shadows[0], probe.raw[1]):
        np.testing.assert_allclose(g, 0.5 * a + 0.5 * b, atol=1e-6)


def test_checkpoint_round_trip(tmp_path):
    x, y = _data()
    model = _linear()
    ema = WeightEMA(decay=0.5, warmup=False, export="raw")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[ema])
    path = tf.train.Checkpoint(model=model, **ema.trackables()).write(str(tmp_path / "ckpt"))
    state, shadows = ema.get_state(), _values(ema.ema_variables)
    assert state == {"last_step": 2, "num_variables": 2}

    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])  # other initial weights
    restored = WeightEMA(decay=0.5, warmup=False, export="raw")
    restored.build(fresh)
    tf.train.Checkpoint(model=fresh, **restored.trackables()).read(path).assert_existing_objects_matched()
    restored.set_state(state)
    assert restored.get_state() == state
    for a, b in zip(_values(restored.ema_variables), shadows):
        np.testing.assert_array_equal(a, b)
    restored.on_train_begin()  # a resumed fit keeps the restored averages
    for a, b in zip(_values(restored.ema_variables), shadows):
        np.testing.assert_array_equal(a, b)

    late = WeightEMA(decay=0.5, warmup=False)  # read first, build() later: restoration is deferred
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    tf.train.Checkpoint(model=other, **late.trackables()).read(path)
    late.build(other)
    assert late.get_state() == state
    for a, b in zip(_values(late.ema_variables), shadows):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="averages 3 variables"):
        late.set_state({"last_step": 1, "num_variables": 3})

    early = WeightEMA()  # set_state() before build() is kept for it
    early.set_state({"last_step": 7, "num_variables": 2})
    early.build(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    assert early.get_state() == {"last_step": 7, "num_variables": 2}


def test_deepcopy_gives_a_fresh_callback_with_the_same_settings():
    x, y = _data()
    data = (x, y)
    ema = WeightEMA(decay=0.9, warmup_power=2 / 3, update_after_step=1, validation_data=data)
    before = copy.deepcopy([ema])[0]
    _linear().fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=data, callbacks=[ema])
    after = copy.deepcopy(ema)
    for c in (before, after):
        assert not c.built and c.model is None and c._val_data is data
        assert (c.decay, c.warmup_power, c.update_after_step) == (0.9, 2 / 3, 1)
    hist = _linear().fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=data, callbacks=[after])
    assert after.built and "val_raw_loss" in hist.history
