"""One measured run of ``vs_keras.py``, in its own process: ``python vs_keras_runs.py SPEC.json RESULT.json``.

Kinds of run (``spec["kind"]``):

- ``plain``: (a) a plain tf_keras ``model.compile`` + ``model.fit(x, y, batch_size=...)`` on NumPy
  arrays. The arrays are the examples kerasopt's pipeline produces for the config (same split,
  resize, normalization; augmentation off), read once before timing; the model is the same
  architecture (``kerasopt.models.build_model``). Nothing else of kerasopt takes part.
- ``kerasopt``: (b)/(c) the real ``kerasopt.fit`` (run directory, default callbacks, checkpoints,
  TensorBoard, NaN guard...), with ``EpochTimer`` appended after kerasopt's own callbacks.
- ``interleaved``: (a), (b) and (c) of one model in this one process, ``rounds`` times in rotated order
  (a b c, b c a, c a b, ...), ``keras.backend.clear_session()`` before each: machine drift and process
  luck (memory layout, a noisy neighbour) hit every variant of a round alike, so per-round ratios are
  paired.
- ``tta_recipe``: ``configs/digits_cnn.yaml`` as shipped (``seed`` set); time to ``threshold`` val accuracy.
- ``tta_same_recipe``: plain Keras with the same recipe (model, AdamW, cosine with warm-up, batch,
  translation, epochs), written with Keras's own tools: the engine's cost, recipe held equal.
- ``tta_baseline``: a hand-written plain-Keras CNN like the recipe's without BatchNorm, Adam 1e-3,
  batch 64, same split: the recipe's value.

Every kind is timed by ``EpochTimer`` (epoch and validation events only: no per-step hook, so
timing adds nothing to the steps of the plain baseline). The first epoch (tracing, XLA) is
excluded from throughput.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def arrays(cfg):
    """``(x_train, y_train, x_val, y_val, spec)``: one pass over kerasopt's train and val pipelines."""
    from kerasopt.data.pipeline import build_datasets

    bundle = build_datasets(cfg)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in bundle.train])
    xv, yv = zip(*[(x.numpy(), y.numpy()) for x, y in bundle.val])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(xv), np.concatenate(yv), bundle.spec


def _summary(timer, n_train: int) -> dict:
    from kerasopt.bench.stats import epoch_summary

    records = timer.recorder.as_dicts()
    return {"epoch_records": records, **epoch_summary(records, n_train, warmup_epochs=1)}


def run_plain(spec: dict) -> dict:
    from kerasopt._keras import keras
    from kerasopt.bench.measure import EpochTimer
    from kerasopt.config import load_config
    from kerasopt.models import build_model

    cfg = load_config(spec["config"], spec["overrides"])
    x, y, xv, yv, data_spec = arrays(cfg)
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy("float32")
    model = build_model(cfg, data_spec)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(x, y, batch_size=cfg.data.batch_size, epochs=cfg.train.epochs, validation_data=(xv, yv),
              verbose=0, callbacks=[timer])
    return {**_summary(timer, len(x)), "precision": "float32", "jit_compile": False,
            "val_accuracy": timer.recorder.epochs[-1].logs.get("val_accuracy")}


def run_kerasopt(spec: dict, config=None, overrides=None) -> tuple[dict, object]:
    import kerasopt
    from kerasopt.bench.measure import EpochTimer

    timer = EpochTimer()
    with tempfile.TemporaryDirectory(prefix="vs-keras-") as tmp:
        over = {**(spec["overrides"] if overrides is None else overrides), "runs_root": tmp}
        t0 = time.perf_counter()
        result = kerasopt.fit(config or spec["config"], over, overwrite=True, print_fn=lambda s: None,
                              callbacks=[timer])
        wall = time.perf_counter() - t0
    m = result.metrics
    out = {"precision": m["precision"]["policy"], "jit_compile": m["precision"]["jit_compile"],
           "val_accuracy": m["final"].get("val_accuracy"), "fit_wall_s": wall,
           "setup_s": timer.recorder.start - t0 if timer.recorder.start else None,
           "n_train": m["data"]["num_train"]}
    return out, timer


def run_kerasopt_throughput(spec: dict) -> dict:
    out, timer = run_kerasopt(spec)
    return {**_summary(timer, out["n_train"]), **out}


def _time_to(timer, threshold: float) -> dict:
    hit = timer.recorder.time_to("val_accuracy", threshold)
    accs = [e.logs.get("val_accuracy") for e in timer.recorder.epochs]
    return {"threshold": threshold, "reached": hit is not None, "seconds": hit[0] if hit else None,
            "epoch": hit[1] if hit else None, "epochs_run": len(accs), "val_accuracy": accs,
            "elapsed_s": timer.recorder.epochs[-1].since_start_s if accs else None,
            "best_val_accuracy": max(a for a in accs if a is not None) if accs else None}


def run_tta_recipe(spec: dict) -> dict:
    overrides = {**spec["overrides"], "seed": spec["seed"]}
    out, timer = run_kerasopt(spec, config=str(ROOT / "configs" / "digits_cnn.yaml"), overrides=overrides)
    out["final_val_accuracy"] = out.pop("val_accuracy")  # _time_to's val_accuracy is the per-epoch list
    return {**out, **_time_to(timer, spec["threshold"]), "seed": spec["seed"]}


def run_tta_same_recipe(spec: dict) -> dict:
    """Plain Keras with the recipe of ``configs/digits_cnn.yaml``, written with Keras's own tools: the
    same model (``build_model``: BatchNorm momentum 0.9, dropout 0.2), AdamW 3e-3 with weight decay
    1e-4, ``CosineDecay`` with a one-epoch linear warm-up, batch 128, ``RandomTranslation(0.05)`` in
    a ``tf.data`` map, the same split and epochs; float32, no XLA, no callbacks but the timer. Against
    ``tta_recipe`` it measures the engine, not the recipe."""
    import math

    from kerasopt._keras import keras, tf
    from kerasopt.bench.measure import EpochTimer
    from kerasopt.config import load_config
    from kerasopt.models import build_model

    seed = spec["seed"]
    recipe = load_config(ROOT / "configs" / "digits_cnn.yaml", {"seed": seed})
    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml", {"seed": seed, "data.augment": {}})
    x, y, xv, yv, data_spec = arrays(cfg)  # the recipe's split, resize and min-max scaling; no augmentation
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy("float32")
    model = build_model(recipe, data_spec)
    t, opt = recipe.train, recipe.train.optimizer
    batch = recipe.data.batch_size
    steps = math.ceil(len(x) / batch)
    warm, total = int(round(steps * t.schedule.warmup_epochs)), steps * t.epochs
    lr = keras.optimizers.schedules.CosineDecay(0.0, total - warm, warmup_target=opt.learning_rate, warmup_steps=warm)
    decay = opt.weight_decay if opt.weight_decay is not None else 0.004  # kerasopt's adamw default
    model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    shift = recipe.data.augment.translation
    augment = keras.layers.RandomTranslation(shift, shift, seed=seed)
    train = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch)
             .map(lambda a, b: (augment(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    timer = EpochTimer()
    model.fit(train, epochs=t.epochs, validation_data=(xv, yv), verbose=0, callbacks=[timer])
    return {**_time_to(timer, spec["threshold"]), "parameters": int(model.count_params()), "precision": "float32",
            "jit_compile": False, "seed": seed}


def run_tta_baseline(spec: dict) -> dict:
    """A hand-written plain-Keras CNN like the recipe's (same blocks and widths) without BatchNorm, Adam 1e-3,
    batch 64, no augmentation, no schedule: what one writes without kerasopt's recipe."""
    from kerasopt._keras import keras
    from kerasopt.bench.measure import EpochTimer
    from kerasopt.config import load_config

    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml", {"data.augment": {}, "seed": spec["seed"]})
    x, y, xv, yv, data_spec = arrays(cfg)
    keras.utils.set_random_seed(cfg.seed)
    layers = keras.layers
    model = keras.Sequential([keras.Input(shape=data_spec.input_shape)])
    for filters in (16, 32, 64):
        model.add(layers.Conv2D(filters, 3, padding="same", activation="relu"))
        model.add(layers.Conv2D(filters, 3, padding="same", activation="relu"))
        model.add(layers.MaxPooling2D(2, padding="same"))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dropout(0.2))
    model.add(layers.Dense(data_spec.num_classes, activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    threshold = spec["threshold"]

    class StopAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (logs or {}).get("val_accuracy", 0.0) >= threshold:
                self.model.stop_training = True

    timer = EpochTimer()
    model.fit(x, y, batch_size=64, epochs=spec["max_epochs"], validation_data=(xv, yv), verbose=0,
              callbacks=[StopAt(), timer])
    return {**_time_to(timer, threshold), "parameters": int(model.count_params()), "precision": "float32",
            "jit_compile": False, "seed": spec["seed"]}


def run_interleaved(spec: dict) -> dict:
    from kerasopt._keras import keras

    variants: dict = spec["variants"]  # name -> overrides; "a" is the plain baseline
    names = list(variants)
    runs: dict = {v: [] for v in names}
    from vs_keras import rotated

    for r in range(int(spec["rounds"])):
        for pos, v in enumerate(rotated(names, r)):
            keras.backend.clear_session()
            sub = {"config": spec["config"], "overrides": variants[v]}
            t0 = time.perf_counter()
            try:
                res = {"ok": True, **(run_plain(sub) if v == "a" else run_kerasopt_throughput(sub))}
            except Exception as e:  # noqa: BLE001 - recorded; the other runs go on
                res = {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[:300]}"}
            res.update(repeat=r, position=pos, wall_s=time.perf_counter() - t0)
            runs[v].append(res)
            rate = f"{res['examples_per_sec']:,.0f} ex/s" if res["ok"] else f"FAILED {res['error']}"
            print(f"[round {r + 1}/{spec['rounds']}] ({v}): {rate}", file=sys.stderr, flush=True)
    return {"runs": runs}


KINDS = {"plain": run_plain, "kerasopt": run_kerasopt_throughput, "interleaved": run_interleaved,
         "tta_recipe": run_tta_recipe, "tta_same_recipe": run_tta_same_recipe, "tta_baseline": run_tta_baseline}


def main() -> int:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    try:
        result = {"ok": True, **KINDS[spec["kind"]](spec)}
    except Exception as e:  # noqa: BLE001 - the parent records it and goes on
        if os.environ.get("KERASOPT_DEBUG"):
            raise
        result = {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[:300]}"}
    from kerasopt.bench.runner import peak_rss_mb

    result["peak_rss_mb"] = peak_rss_mb()
    result_path.write_text(json.dumps(result, default=float))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
