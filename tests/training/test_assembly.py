"""One assembly path: ``kerasopt bench`` trains the graph ``kerasopt fit`` trains.

``fit`` runs for real (a run directory, callbacks, the loop); a callback records the model's
weights before the first step and after it. ``bench``'s :func:`build_trainable` then builds its
model for the same config in the same process. They must agree on everything that makes the step:
the layers, which of them train, the loss, the metrics, the optimizer and its schedule, the
compiled step's options and hooks (the fused EMA update), the first batch (mixup included) and, the
end-to-end check, the weights after one step taken from the same start.
"""

from __future__ import annotations

import numpy as np
import pytest

from kerasopt._keras import keras
from kerasopt.bench.runner import build_trainable, training_stream
from kerasopt.config import load_config
from kerasopt.training.fit import fit

CFG = {
    "name": "same_graph", "seed": 5, "deterministic": True, "report": False,
    "data": {"source": "sklearn", "name": "digits", "batch_size": 64, "normalize": "minmax",
             "augment": {"mixup": 0.2, "translation": 0.05}},
    "model": {"type": "cnn", "filters": [8, 16], "dense_units": 32, "dropout": 0.2, "batch_norm": True,
              "freeze": ["block1*"]},
    "train": {"epochs": 1, "steps_per_epoch": 3, "precision": "float32", "jit_compile": False, "verbose": 0,
              "label_smoothing": 0.1, "optimizer": {"type": "adamw", "learning_rate": 0.003, "weight_decay": 1e-4},
              "schedule": {"type": "cosine", "warmup_epochs": 0.5}},
    "callbacks": {"ema": {"enabled": True, "decay": 0.9}, "tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]},
}


class FirstStep(keras.callbacks.Callback):
    """The training model's weights before the first step and after it."""

    def on_train_begin(self, logs=None):
        if not hasattr(self, "before"):
            self.before = [w.copy() for w in self.model.get_weights()]

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "after"):
            self.after = [w.copy() for w in self.model.get_weights()]


def _graph(a) -> dict:
    """What decides the compiled step, in comparable form."""
    m = a.train_model
    opt = m.optimizer
    return {
        "model_class": type(m).__name__,
        "layers": [(type(layer).__name__, layer.name, layer.trainable) for layer in a.model.layers],
        "trainable": [(v.name, tuple(v.shape)) for v in m.trainable_variables],
        "non_trainable": [(v.name, tuple(v.shape)) for v in m.non_trainable_variables],
        "loss": keras.losses.serialize(m.loss),
        "metrics": [getattr(x, "name", x) for x in m.compiled_metrics._user_metrics],
        "optimizer": {k: v for k, v in opt.get_config().items() if k != "name"},
        "jit_compile": m._jit_compile,
        "post_step_hooks": len(m.__dict__.get("_post_step") or []),
        "kind_one_hot": (a.kind, a.one_hot),
        "decision": (a.decision.policy, a.decision.jit_compile),
        "steps": a.steps,
    }


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("fit") / "run"
    cfg = load_config(CFG)
    rec = FirstStep()
    result = fit(cfg, run_dir=str(run_dir), callbacks=[rec], print_fn=lambda s: None)
    fit_graph = _graph(result.assembly)
    fit_batch = next(iter(result.assembly.train_stream(0)))
    bench = build_trainable(cfg)
    try:
        yield result, rec, fit_graph, fit_batch, bench
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bench_builds_the_graph_fit_trains(both):
    _, _, fit_graph, _, bench = both
    bench_graph = _graph(bench)
    assert bench_graph == fit_graph
    # the config's choices are really in it (not two empty graphs agreeing)
    assert fit_graph["post_step_hooks"] == 1  # the EMA update fused into the step
    assert fit_graph["optimizer"]["weight_decay"] == pytest.approx(1e-4)
    assert fit_graph["loss"]["config"]["label_smoothing"] == pytest.approx(0.1)
    frozen = [name for _, name, trainable in fit_graph["layers"] if not trainable]
    assert frozen and all(name.startswith("block1") for name in frozen), fit_graph["layers"]


def test_bench_feeds_the_batches_fit_feeds(both):
    _, _, _, (fx, fy), bench = both
    bx, by = next(iter(training_stream(bench, synthetic=False)))
    np.testing.assert_array_equal(bx.numpy(), fx.numpy())
    np.testing.assert_array_equal(by.numpy(), fy.numpy())
    np.testing.assert_allclose(fy.numpy().sum(axis=-1), 1.0, atol=1e-6)
    assert float(np.min(np.max(fy.numpy(), axis=-1))) < 1 - 1e-4  # mixup mixed the labels of this batch


def test_one_bench_step_equals_fits_first_step(both):
    _, rec, _, _, bench = both
    start = bench.train_model.get_weights()
    assert len(start) == len(rec.before)
    for got, want in zip(start, rec.before):  # the same seed gives the same initial weights
        np.testing.assert_array_equal(got, want)
    bench.train_model.fit(bench.train_stream(0), epochs=1, steps_per_epoch=1, verbose=0,
                          callbacks=[bench.ema], class_weight=bench.class_weight)
    moved = 0
    for got, before, want in zip(bench.train_model.get_weights(), rec.before, rec.after):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        moved += int(not np.array_equal(before, want))
    assert moved >= 4  # the step changed the trainable weights (and BatchNorm's statistics)


def test_a_model_that_exists_gets_the_runs_data_labels_loss_and_metrics():
    """``evaluate`` and the compress verbs start from a loaded model: ``assemble_model`` gives it what
    ``assemble`` gives a built one (label form, loss, metrics, validation batches), and refuses a model
    whose input is not the data's with one line naming ``data``."""
    from kerasopt.errors import ConfigError
    from kerasopt.models import build_model
    from kerasopt.training.assembly import assemble, assemble_model, plan_run

    cfg = load_config({**CFG, "callbacks": {"ema": {"enabled": False}, "tensorboard": {"enabled": False}},
                       "model": {**CFG["model"], "freeze": None}})
    built = assemble(cfg, plan_run(cfg))
    keras.mixed_precision.set_global_policy("float32")
    loaded = assemble_model(cfg, lambda spec: build_model(cfg, spec))
    assert (loaded.kind, loaded.one_hot, loaded.steps) == (built.kind, built.one_hot, built.steps)
    assert type(loaded.model.loss) is type(built.train_model.loss)
    assert [m.name for m in loaded.model.compiled_metrics._user_metrics] == \
        [m.name for m in built.train_model.compiled_metrics._user_metrics]
    xb, yb = next(iter(loaded.val))
    xa, ya = next(iter(built.val))
    np.testing.assert_array_equal(xb.numpy(), xa.numpy())
    np.testing.assert_array_equal(yb.numpy(), ya.numpy())  # one-hot with label smoothing's form, same batch
    assert set(loaded.model.evaluate(loaded.val, verbose=0, return_dict=True)) == {"loss", "accuracy"}

    wrong = keras.Sequential([keras.Input((5,)), keras.layers.Dense(10, activation="softmax")])
    with pytest.raises(ConfigError, match=r"inputs of shape \(5,\) but the config's data has \(8, 8, 1\)") as e:
        assemble_model(cfg, lambda spec: wrong)
    assert e.value.key == "data"
