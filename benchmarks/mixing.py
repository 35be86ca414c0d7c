"""Does the shipped digits recipe keep >= 99% validation accuracy with mixup / cutmix / RandAugment? (issue 16)

Usage::

    python benchmarks/mixing.py --seeds 5       # 7 variants x 5 seeds of configs/digits_cnn.yaml (est. 8 min)
    python benchmarks/mixing.py --seeds 1 --only randaugment

Each run is ``kerasopt.fit("configs/digits_cnn.yaml")`` with only the seed and the mixing keys changed
(10 epochs, cosine with 1 warm-up epoch, AdamW 3e-3, translation 0.05, precision/XLA ``auto``).
Measured: the last epoch's and the best epoch's validation accuracy (360 images: one image is
0.28 points). Accuracy only: runs share the process, so no timing is reported. Writes ``--out``
(default ``benchmarks/mixing.json``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "recipe (no mixing)": {},
    "mixup 0.2": {"data.augment.mixup": 0.2},
    "cutmix 1.0": {"data.augment.cutmix": 1.0},
    "mixup 0.2 + cutmix 1.0 (switch 0.5)": {"data.augment.mixup": 0.2, "data.augment.cutmix": 1.0},
    "randaugment (timm: 2 ops, m9, mstd 0.5)": {"data.augment.randaugment": {}},
    "randaugment 2 ops, m5": {"data.augment.randaugment": {"magnitude": 5}},
    "randaugment m5 without invert/solarize": {"data.augment.randaugment": {
        "magnitude": 5, "ops": ["auto_contrast", "equalize", "rotate", "posterize", "color", "contrast",
                                "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y"]}},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "mixing.json")
    ap.add_argument("--only", default="", help="run the variants whose name contains this text")
    args = ap.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tempfile

    import kerasopt

    tmp = Path(tempfile.mkdtemp(prefix="mixing-"))
    results: dict[str, list[dict]] = {}
    for name, overrides in VARIANTS.items():
        if args.only not in name:
            continue
        for seed in range(args.seeds):
            r = kerasopt.fit(ROOT / "configs" / "digits_cnn.yaml",
                             {**overrides, "seed": seed, "callbacks.tensorboard.enabled": False, "report": False,
                              "train.verbose": 0, "export.formats": ["keras"]},
                             run_dir=str(tmp / f"{len(results)}_{seed}"), print_fn=lambda s: None)
            h = r.history["val_accuracy"]
            results.setdefault(name, []).append({"seed": seed, "final": h[-1], "best": max(h)})
            print(f"{name}, seed {seed}: final {h[-1]:.4f}, best {max(h):.4f}", flush=True)
    lines = ["| variant | final val acc (per seed) | mean final | best val acc (per seed) | runs >= 99% final |",
             "|---|---|---:|---|---:|"]
    for name, runs in results.items():
        finals, bests = [r["final"] for r in runs], [r["best"] for r in runs]
        lines.append(f"| {name} | {', '.join(f'{v:.4f}' for v in finals)} | {statistics.mean(finals):.4f} | "
                     f"{', '.join(f'{v:.4f}' for v in bests)} | {sum(v >= 0.99 for v in finals)} of {len(finals)} |")
    table = "\n".join(lines)
    print(table)
    args.out.write_text(json.dumps({"command": "python " + " ".join(sys.argv),
                                    "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "cpus": os.cpu_count(), "results": results, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
