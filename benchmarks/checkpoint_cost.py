"""What a checkpoint every epoch costs a digits epoch: none vs an eager save vs a traced save.

Usage::

    python benchmarks/checkpoint_cost.py                # 15 interleaved rounds (est. 3-5 min)
    python benchmarks/checkpoint_cost.py --rounds 5

One process. The digits CNN of ``configs/digits_cnn.yaml`` at kerasopt's defaults on this machine
(precision float32, XLA off: ``--precision``/``--jit`` change them), its real data pipeline, one
compiled model. Each round runs ``model.fit(train, validation_data=val, epochs=4)`` per variant, the
variants in a rotating order so machine drift hits them alike, and times whole epochs 2-4 (epoch begin
to epoch end: training, validation and the epoch-end save):

- ``none``: no checkpoint;
- ``eager``: ``AtomicCheckpoint(traced=False)``, a full-state save at every epoch end (weights, Adam
  slots, RNG state, meta.json with sizes/CRC32 and fsync, temporary folder + rename, and a copy to
  ``best`` when validation accuracy improved) through TensorFlow's eager ``Checkpoint.write``;
- ``traced``: the same through a save function traced once (``traced_write``), the default.

Reported: the median whole-epoch time per variant; overhead = median of the per-epoch ratios
variant / none - 1 (epoch i of a round against epoch i of ``none`` in that round); the time the
training thread spends inside the save call. Separately: the median of 10 in-line saves, and the
part of them spent on the sizes + CRC32 pass.
Writes ``--out`` (default ``benchmarks/checkpoint_cost.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4  # per fit call; the first is not counted


class SaveTimer:
    """Wraps a checkpoint callback's ``save``: the training thread's time inside it, per call."""

    def __init__(self, cb):
        self.cb, self.seconds = cb, []
        inner = cb.save

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                self.seconds.append(time.perf_counter() - t0)

        cb.save = timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--jit", action="store_true", help="XLA on (default off, kerasopt's CPU choice for this CNN)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "checkpoint_cost.json")
    args = ap.parse_args()

    from kerasopt.callbacks import checkpoint as ck

    from kerasopt._keras import keras, tf
    from kerasopt.bench.measure import EpochTimer
    from kerasopt.config import load_config
    from kerasopt.data.pipeline import build_datasets
    from kerasopt.models import build_model
    from kerasopt.training.precision import apply_policy

    cfg = load_config(ROOT / "configs" / "digits_cnn.yaml")
    bundle = build_datasets(cfg)
    apply_policy(args.precision)
    keras.utils.set_random_seed(0)
    model = build_model(cfg, bundle.spec)
    model.compile(keras.optimizers.AdamW(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=args.jit)
    train, val = bundle.train, bundle.val
    work = Path(tempfile.mkdtemp(prefix="ckpt-cost-"))
    cbs = {"none": None,
           "eager": ck.AtomicCheckpoint(work / "eager", monitor="val_accuracy", traced=False),
           "traced": ck.AtomicCheckpoint(work / "traced", monitor="val_accuracy", traced=True)}
    timers = {k: SaveTimer(cb) for k, cb in cbs.items() if cb is not None}
    for cb in cbs.values():  # the first save traces the save function
        if cb is not None:
            cb.set_model(model)
            cb.on_train_begin()
    for t in timers.values():
        t.seconds.clear()
    model.fit(train, validation_data=val, epochs=1, verbose=0)  # compile and warm up

    names = list(cbs)
    epoch_s: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            cb, timer = cbs[name], EpochTimer()
            model.fit(train, validation_data=val, epochs=EPOCHS, verbose=0,
                      callbacks=([cb] if cb else []) + [timer])  # the timer last: it sees the save's cost
            epoch_s[name] += [e.epoch_s for e in timer.recorder.epochs[1:]]
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{k} {statistics.median(epoch_s[k][-(EPOCHS - 1):]) * 1000:.0f} ms" for k in names), flush=True)

    # Saves alone (eager and traced), and the part of them spent on sizes + CRC32.
    digests, inner = [], ck.file_digests

    def timed_digests(path):
        t0 = time.perf_counter()
        try:
            return inner(path)
        finally:
            digests.append(time.perf_counter() - t0)

    ck.file_digests = timed_digests
    alone: dict[str, list[float]] = {"eager": [], "traced": []}
    for i in range(10):
        for name in alone:
            t0 = time.perf_counter()
            cbs[name].save("last", epoch=100 + i, batch=0)
            alone[name].append(time.perf_counter() - t0)
    ck.file_digests = inner

    med = {k: statistics.median(v) for k, v in epoch_s.items()}
    ratio = {k: statistics.median(a / b for a, b in zip(epoch_s[k], epoch_s["none"])) - 1 for k in names}
    result = {
        "command": "python benchmarks/checkpoint_cost.py " + " ".join(
            f"--{k}={v}" for k, v in vars(args).items() if k != "out"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "tensorflow": tf.__version__},
        "model": {"config": "configs/digits_cnn.yaml", "parameters": int(model.count_params()),
                  "precision": args.precision, "jit_compile": args.jit,
                  "steps_per_epoch": bundle.steps_per_epoch},
        "epoch_s": epoch_s, "epoch_s_median": med, "overhead_pct": {k: 100 * v for k, v in ratio.items()},
        "save_call_ms_median": {k: 1000 * statistics.median(t.seconds) for k, t in timers.items()},
        "save_alone_ms": {k: 1000 * statistics.median(v) for k, v in alone.items()},
        "digests_ms": 1000 * statistics.median(digests),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("| variant | whole epoch, median ms | overhead vs none (median of per-epoch ratios) | "
          "training thread in save(), median ms |\n|---|---:|---:|---:|")
    for k in names:
        call = f"{result['save_call_ms_median'][k]:.1f}" if k in timers else "-"
        print(f"| {k} | {med[k] * 1000:.0f} | {100 * ratio[k]:+.1f}% | {call} |")
    print(f"a save alone: eager {result['save_alone_ms']['eager']:.1f} ms, traced "
          f"{result['save_alone_ms']['traced']:.1f} ms; sizes + CRC32 {result['digests_ms']:.1f} ms of each")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
