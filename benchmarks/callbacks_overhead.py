"""EMA and checkpoint overhead on the digits CNN, measured side by side in one process session.

Usage: ``python benchmarks/callbacks_overhead.py [--repeats 2] [--epochs 12] [--out results.json]``
(``make bench`` runs it). Variants run interleaved (base, ema, ckpt, base, ...) so
machine drift hits them alike; each figure is the median over repeats of the
per-run median (the first, compiling epoch is excluded).

- step time: ``step_time_ms`` from the Throughput callback (training batches only);
- epoch time: wall time of an epoch including validation and the checkpoint write.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
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
    final = res.metrics["final"]
    return {"step_ms": statistics.median(steps), "epoch_s": statistics.median(epochs_s),
            "val_accuracy": final["val_accuracy"], "val_raw_accuracy": final.get("val_raw_accuracy")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12, help="default 12, the EMA recipe's run length")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "callbacks_overhead.json")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {k: [] for k in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in VARIANTS:
                runs[name].append(run_once(name, args.epochs, Path(tmp)))
                print(f"repeat {r + 1}/{args.repeats} {name:>10}: {runs[name][-1]}", flush=True)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("step_ms", "epoch_s")} for k, v in runs.items()}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "repeats": args.repeats, "epochs": args.epochs, "median": med, "runs": runs,
        "ema_step_overhead_pct": 100 * (med["ema"]["step_ms"] / med["base"]["step_ms"] - 1),
        "checkpoint_epoch_overhead_pct": 100 * (med["checkpoint"]["epoch_s"] / med["base"]["epoch_s"] - 1),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"EMA: {result['ema_step_overhead_pct']:+.1f}% step time; "
          f"checkpointing: {result['checkpoint_epoch_overhead_pct']:+.1f}% epoch time -> {args.out}")


if __name__ == "__main__":
    main()
