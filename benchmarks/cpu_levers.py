"""Which default could make the digits CNN train faster on this CPU? Paired, in one process.

Usage::

    python benchmarks/cpu_levers.py             # 8 rounds (about 3 minutes on 2 cores)
    python benchmarks/cpu_levers.py --rounds 2  # a quick look

The digits CNN of ``configs/digits_cnn.yaml`` (augmentation off, batch 128) is compiled once per
candidate default: float32 (the baseline, what ``precision: auto`` and ``jit_compile: auto`` pick
here), XLA, mixed_bfloat16, and ``steps_per_execution`` 4. Each round trains every candidate for
two epochs on the same NumPy arrays, in rotated order, and keeps the second epoch's time: the
candidates of a round ran back to back, so machine drift cancels in the per-round ratio.

It also counts the CNN's training work (multiply-adds of every Conv2D and Dense layer, x2 FLOPs,
x3 for the forward and the two backward products) and sets the float32 step's FLOP/s beside a
2048x2048 float32 matmul, the most this CPU delivers to TensorFlow: how much room any default has.

Writes ``benchmarks/cpu_levers.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

CANDIDATES = {  # name -> (precision policy, jit_compile, steps_per_execution)
    "float32": ("float32", False, 1),
    "XLA": ("float32", True, 1),
    "mixed_bfloat16": ("mixed_bfloat16", False, 1),
    "steps_per_execution 4": ("float32", False, 4),
}


def training_flops(model, batch: int, keras) -> float:
    """FLOPs of one training step: 2 per multiply-add, x3 (forward, input and weight gradients)."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            h, w, c_out = layer.output_shape[1:]
            kh, kw, c_in, _ = layer.kernel.shape
            macs += h * w * c_out * kh * kw * c_in
        elif isinstance(layer, keras.layers.Dense):
            macs += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return 2.0 * 3.0 * macs * batch


def matmul_flops_per_s(tf, n: int = 2048, reps: int = 15) -> float:
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    f = tf.function(lambda: tf.matmul(a, b))
    f().numpy()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f().numpy()
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "cpu_levers.json")
    args = ap.parse_args()

    from vs_keras_runs import arrays

    from kerasopt._keras import keras, tf
    from kerasopt.bench.session import machine
    from kerasopt.config import load_config
    from kerasopt.models import build_model

    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml", {"data.augment": {}, "name": "cpu_levers"})
    x, y, _, _, spec = arrays(cfg)
    batch = cfg.data.batch_size
    models = {}
    for name, (policy, jit, spe) in CANDIDATES.items():
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(cfg.seed)
        m = build_model(cfg, spec)
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit, steps_per_execution=spe)
        models[name] = m
    keras.mixed_precision.set_global_policy("float32")

    times: dict[str, list[float]] = {k: [] for k in models}

    class SecondEpoch(keras.callbacks.Callback):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                times[self.name].append(time.perf_counter() - self.t0)

    names = list(models)
    for r in range(args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            models[name].fit(x, y, batch_size=batch, epochs=2, verbose=0, callbacks=[SecondEpoch(name)])
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {times[n][-1]:.3f} s" for n in names), flush=True)

    base = times["float32"]
    rows = {}
    for name in names:
        ratios = [b / t for b, t in zip(base, times[name])]  # > 1: faster than float32
        rows[name] = {"epoch_s": times[name], "median_epoch_s": statistics.median(times[name]),
                      "examples_per_sec": len(x) / statistics.median(times[name]),
                      "speedup_per_round": ratios, "speedup": statistics.median(ratios)}
    steps = -(-len(x) // batch)
    flops = training_flops(models["float32"], batch, keras)
    step_s = statistics.median(base) / steps
    peak = matmul_flops_per_s(tf)
    result = {"command": "python benchmarks/cpu_levers.py " + " ".join(sys.argv[1:]), "machine": machine(),
              "rounds": args.rounds, "train_examples": len(x), "batch_size": batch, "candidates": rows,
              "gflop_per_step": flops / 1e9, "float32_gflops": flops / step_s / 1e9,
              "matmul_2048_gflops": peak / 1e9}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| candidate | examples/s (median) | speed-up vs float32, median of per-round ratios | per round |",
             "|---|---|---|---|"]
    for name, row in rows.items():
        per = " ".join(f"{v:.2f}" for v in row["speedup_per_round"])
        lines.append(f"| {name} | {row['examples_per_sec']:,.0f} | {row['speedup']:.2f}x | {per} |")
    lines += ["", f"float32 step: {flops / 1e9:.2f} GFLOP in {1000 * step_s:.1f} ms = "
                  f"{result['float32_gflops']:.0f} GFLOP/s; a 2048x2048 float32 matmul runs at "
                  f"{result['matmul_2048_gflops']:.0f} GFLOP/s on this machine."]
    print("\n".join(lines))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
