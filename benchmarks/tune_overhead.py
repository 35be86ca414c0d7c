"""Per-trial overhead of ``kerasopt tune`` against the trial's training time, with and without isolation.

Usage: ``python benchmarks/tune_overhead.py [--trials 3] [--epochs 3] [--jit auto|false] [--out results.json]``.
The same grid of ``--trials`` learning rates on the digits CNN runs twice: in this
process (``tune.isolate: false``) and one subprocess per trial (``true``). For
each trial, from the search's own records and the trial's ``metrics.json``:

- ``time_s``: the trial's wall time as the search saw it;
- ``train_s``: the training loop (``fit_time_s``) less the first epoch's extra time
  (tracing and XLA compilation), i.e. what the trial would cost with no overhead;
- ``startup_s``: process start and the TensorFlow/kerasopt import (isolated only);
- ``setup_s``: data, model build, compile and callbacks, before the loop;
- ``trace_s``: the first epoch's extra time over the median of the others;
- ``overhead_s = time_s - train_s``, and ``overhead_pct = 100 * overhead_s / train_s``.

Figures are medians over the trials (the first in-process trial also pays one-off
costs such as loading the data set for the first time; it is included).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_mode(isolate: bool, args: argparse.Namespace, workdir: Path) -> list[dict]:
    from kerasopt.tune import tune

    lrs = [round(3e-3 * 1.5 ** i, 6) for i in range(args.trials)]
    overrides = {
        "name": f"bench_{'isolated' if isolate else 'inprocess'}", "runs_root": str(workdir),
        "train.epochs": args.epochs, "callbacks.tensorboard.enabled": False,
        "tune.algorithm": "grid", "tune.isolate": isolate, "tune.max_trials": args.trials,
        "tune.space": {"train.optimizer.learning_rate": {"type": "choice", "values": lrs}},
    }
    if args.jit is not None:
        overrides["train.jit_compile"] = args.jit
    result = tune(ROOT / "configs" / "digits_tune.yaml", overrides, print_fn=lambda s: None)
    rows = []
    for rec in result.records:
        metrics = json.loads((Path(rec["run_dirs"][0]) / "metrics.json").read_text())
        epochs = metrics["throughput"]["epoch_seconds"]
        trace = max(0.0, epochs[0] - statistics.median(epochs[1:])) if len(epochs) > 1 else 0.0
        train = rec["fit_s"] - trace
        overhead = rec["time_s"] - train
        rows.append({
            "trial": rec["trial"], "status": rec["status"], "objective": rec["objective"],
            "time_s": rec["time_s"], "train_s": round(train, 3), "startup_s": rec.get("startup_s") or 0.0,
            "setup_s": rec["setup_s"], "trace_s": round(trace, 3), "overhead_s": round(overhead, 3),
            "overhead_pct": round(100 * overhead / train, 1),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--jit", default=None, help="train.jit_compile: auto (XLA on), true or false; default: the "
                                                "recipe's (false: XLA compiles each trial anew)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tune_overhead.json")
    args = ap.parse_args()
    if args.jit is not None:
        args.jit = {"true": True, "false": False}.get(args.jit.lower(), args.jit)
    modes: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for isolate in (False, True):
            name = "isolated" if isolate else "in_process"
            modes[name] = run_mode(isolate, args, Path(tmp))
            for row in modes[name]:
                print(f"{name:>10} trial {row['trial']}: {row}", flush=True)
    keys = ("time_s", "train_s", "startup_s", "setup_s", "trace_s", "overhead_s", "overhead_pct")
    median = {m: {k: round(statistics.median(r[k] for r in rows), 3) for k in keys} for m, rows in modes.items()}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "config": "configs/digits_tune.yaml (digits CNN, 1,437 train images, batch 128)",
        "trials": args.trials, "epochs": args.epochs, "jit_compile": "recipe (false)" if args.jit is None else args.jit,
        "median": median, "trials_detail": modes, "total_s": round(time.perf_counter() - t0, 1),
        "isolation_extra_s_per_trial": round(median["isolated"]["time_s"] - median["in_process"]["time_s"], 3),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'mode':>10} {'time':>7} {'train':>7} {'startup':>8} {'setup':>7} {'trace':>7} {'overhead':>9}")
    for m, v in median.items():
        print(f"{m:>10} {v['time_s']:6.1f}s {v['train_s']:6.1f}s {v['startup_s']:7.1f}s {v['setup_s']:6.1f}s "
              f"{v['trace_s']:6.1f}s {v['overhead_s']:6.1f}s ({v['overhead_pct']:.0f}% of training)")
    print(f"isolation adds {result['isolation_extra_s_per_trial']:+.1f}s per trial -> {args.out}")


if __name__ == "__main__":
    main()
