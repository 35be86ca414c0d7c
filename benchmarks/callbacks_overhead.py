"""EMA and checkpoint overhead on the digits CNN, measured side by side in one process session.

Usage: ``python benchmarks/callbacks_overhead.py [--repeats 6] [--epochs 12] [--out results.json]``
(``make bench`` runs it). Variants run interleaved, the order rotated each repeat (base, ema, ckpt;
ema, ckpt, base; ...), so machine drift hits them alike. Each time is the median over repeats of the
per-run median (the first, compiling epoch is excluded); each overhead is the median over repeats of
the paired ratio variant / base of that repeat, which drift between repeats does not move.

- step time: ``step_time_ms`` from the Throughput callback (training batches only);
- epoch time: wall time of a whole epoch, validation and every epoch-end callback (the checkpoint
  write) included;
- ``ema_no_raw``: EMA with ``evaluate_raw: false`` (no second validation pass for ``val_raw_*``);
- tail: an epoch's time outside its training batches (epoch time - steps x step time): validation and
  the epoch-end work. Machine drift moves step times by 10-20% between runs here, which hides a
  save of ~10 ms in whole epochs of ~0.4 s; the tail is where a checkpoint's cost shows.
  ``checkpoint_tail_share_pct`` = (tail with checkpoints - tail without) / whole epoch without.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import kerasopt

ROOT = Path(__file__).resolve().parents[1]


def _ema_recipe() -> dict:
    """The EMA settings of ``configs/digits_ema_cosine.yaml``, the short-run recipe: decay 0.98 after 48
    copied steps. The defaults (0.999 from step 0) averaged the chaotic first epochs, where the raw
    model is at 10-40% validation accuracy, and ended this benchmark at 0.367 (issue 17, item 9)."""
    import yaml

    ema = yaml.safe_load((ROOT / "configs" / "digits_ema_cosine.yaml").read_text())["callbacks"]["ema"]
    return {f"callbacks.ema.{k}": v for k, v in ema.items()}


VARIANTS = {
    "base": {"callbacks.ema.enabled": False, "callbacks.checkpoint.enabled": False},
    "ema": {**_ema_recipe(), "callbacks.ema.enabled": True, "callbacks.checkpoint.enabled": False},
    # without the second validation pass on the raw weights (the val_raw_* metrics)
    "ema_no_raw": {**_ema_recipe(), "callbacks.ema.enabled": True, "callbacks.ema.evaluate_raw": False,
                   "callbacks.checkpoint.enabled": False},
    "checkpoint": {"callbacks.ema.enabled": False, "callbacks.checkpoint.enabled": True},
}


def run_once(name: str, epochs: int, workdir: Path) -> dict:
    overrides = {
        **VARIANTS[name], "train.epochs": epochs, "train.verbose": 0, "callbacks.tensorboard.enabled": False,
        "export.formats": ["keras"], "callbacks.nan_guard.enabled": False,
    }
    res = kerasopt.fit(ROOT / "configs" / "digits_cnn.yaml", overrides=overrides,
                       run_dir=str(workdir / f"{name}"), overwrite=True, print_fn=lambda s: None)
    steps = res.history.get("step_time_ms", [])[1:]
    epochs_s = res.metrics["throughput"]["epoch_seconds"][1:]
    n = res.metrics["data"]["steps_per_epoch"]
    tails = [1000 * e - n * s for e, s in zip(epochs_s, steps)]
    final = res.metrics["final"]
    return {"step_ms": statistics.median(steps), "epoch_s": statistics.median(epochs_s),
            "tail_ms": statistics.median(tails),
            "val_accuracy": final["val_accuracy"], "val_raw_accuracy": final.get("val_raw_accuracy")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=12, help="default 12, the EMA recipe's run length")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "callbacks_overhead.json")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = list(VARIANTS)[r % len(VARIANTS):] + list(VARIANTS)[:r % len(VARIANTS)]
            for name in order:
                runs[name].append(run_once(name, args.epochs, Path(tmp)))
                print(f"repeat {r + 1}/{args.repeats} {name:>10}: {runs[name][-1]}", flush=True)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("step_ms", "epoch_s", "tail_ms")}
           for k, v in runs.items()}

    def paired(name: str, m: str) -> list[float]:
        return [100 * (v[m] / b[m] - 1) for v, b in zip(runs[name], runs["base"])]

    result = {
        "command": "python benchmarks/callbacks_overhead.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}, {os.cpu_count()} cores",
        "repeats": args.repeats, "epochs": args.epochs, "median": med, "runs": runs,
        "ema_step_overhead_pct_per_repeat": paired("ema", "step_ms"),
        "ema_epoch_overhead_pct_per_repeat": paired("ema", "epoch_s"),
        "ema_no_raw_step_overhead_pct_per_repeat": paired("ema_no_raw", "step_ms"),
        "ema_no_raw_epoch_overhead_pct_per_repeat": paired("ema_no_raw", "epoch_s"),
        "checkpoint_step_overhead_pct_per_repeat": paired("checkpoint", "step_ms"),
        "checkpoint_epoch_overhead_pct_per_repeat": paired("checkpoint", "epoch_s"),
    }
    for key in ("ema_step", "ema_epoch", "ema_no_raw_step", "ema_no_raw_epoch", "checkpoint_step",
                "checkpoint_epoch"):
        result[f"{key}_overhead_pct"] = statistics.median(result[f"{key}_overhead_pct_per_repeat"])
    for name in ("checkpoint", "ema", "ema_no_raw"):
        share = [100 * (v["tail_ms"] - b["tail_ms"]) / (1000 * b["epoch_s"]) for v, b in zip(runs[name], runs["base"])]
        result[f"{name}_tail_share_pct_per_repeat"] = share
        result[f"{name}_tail_share_pct"] = statistics.median(share)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"EMA: {result['ema_step_overhead_pct']:+.1f}% step time, {result['ema_epoch_overhead_pct']:+.1f}% "
          f"whole epoch ({result['ema_tail_share_pct']:+.1f}% in the tail: the raw weights' validation); "
          f"EMA without evaluate_raw: {result['ema_no_raw_step_overhead_pct']:+.1f}% step, "
          f"{result['ema_no_raw_tail_share_pct']:+.1f}% tail; "
          f"checkpointing: {result['checkpoint_epoch_overhead_pct']:+.1f}% whole epoch, "
          f"{result['checkpoint_tail_share_pct']:+.1f}% of an epoch in its tail -> {args.out}")


if __name__ == "__main__":
    main()
