"""EMA and checkpoint costs measured directly, in one process, interleaved (less noise than whole runs).

Usage: ``python benchmarks/ema_ckpt_micro.py`` -> ``benchmarks/ema_ckpt_micro.json``.
- EMA: the digits CNN's compiled train step with and without the fused EMA update,
  alternating blocks of 24 steps, 12 rounds; median step time of each.
- Checkpoint: the time of one full-state atomic save (10 saves, median) against
  the median epoch time of the digits recipe (12 steps + validation).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from kerasopt.callbacks.checkpoint import AtomicCheckpoint
from kerasopt.callbacks.ema import WeightEMA

from kerasopt._keras import keras, tf
from kerasopt.config import load_config
from kerasopt.data.pipeline import build_datasets
from kerasopt.models import build_model
from kerasopt.training.accumulate import add_post_step, prepare_accumulation, with_grad_accumulation

ROOT = Path(__file__).resolve().parents[1]
STEPS, ROUNDS = 24, 12


def make(cfg, spec, ema: bool):
    keras.utils.set_random_seed(0)
    model = build_model(cfg, spec)
    train_model = with_grad_accumulation(model, 1, wrap=ema)
    train_model.compile(keras.optimizers.AdamW(3e-3), "sparse_categorical_crossentropy", jit_compile=True)
    prepare_accumulation(train_model)
    cb = None
    if ema:
        cb = WeightEMA(decay=0.99, export="raw", evaluate_raw=False)
        cb.build(train_model)
        add_post_step(train_model, cb.fused_update(train_model))
    return train_model, cb


def main() -> None:
    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml")
    bundle = build_datasets(cfg)
    x, y = next(iter(bundle.train))
    data = tf.data.Dataset.from_tensors((x, y)).repeat(STEPS)
    models = {name: make(cfg, bundle.spec, name == "ema") for name in ("base", "ema")}
    times: dict[str, list[float]] = {"base": [], "ema": []}
    for _ in range(2):  # compile and warm up
        for m, cb in models.values():
            m.fit(data, verbose=0, callbacks=[cb] if cb else [])
    for r in range(ROUNDS):
        order = list(models.items()) if r % 2 == 0 else list(reversed(models.items()))  # no first-mover bias
        for name, (m, cb) in order:
            t0 = time.perf_counter()
            m.fit(data, verbose=0, callbacks=[cb] if cb else [])
            times[name].append(1000 * (time.perf_counter() - t0) / STEPS)
    step = {k: statistics.median(v) for k, v in times.items()}

    m, _ = models["base"]
    with tempfile.TemporaryDirectory() as tmp:
        ck = AtomicCheckpoint(tmp, monitor="val_accuracy")
        ck.set_model(m)
        saves = []
        for i in range(10):
            t0 = time.perf_counter()
            ck.save("last", epoch=i, batch=0)
            saves.append(1000 * (time.perf_counter() - t0))
    epoch_ms = []
    for _ in range(3):
        t0 = time.perf_counter()
        m.fit(bundle.train, validation_data=bundle.val, verbose=0)
        epoch_ms.append(1000 * (time.perf_counter() - t0))
    result = {
        "step_ms": step, "step_ms_rounds": times,
        "ema_step_overhead_pct": 100 * (step["ema"] / step["base"] - 1),
        "checkpoint_save_ms": statistics.median(saves), "epoch_ms": statistics.median(epoch_ms),
        "checkpoint_epoch_overhead_pct": 100 * statistics.median(saves) / statistics.median(epoch_ms),
        "parameters": int(m.count_params()),
    }
    (ROOT / "benchmarks" / "ema_ckpt_micro.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "step_ms_rounds"}, indent=2))


if __name__ == "__main__":
    main()
