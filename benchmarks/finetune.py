"""Two-phase fine-tuning on a 224-pixel JPEG folder: kerasopt against the Keras transfer-learning guide.

Usage::

    python benchmarks/finetune.py                       # 2,000 JPEGs, MobileNetV2, 1 + 1 epochs (est. 10 min)
    python benchmarks/finetune.py --images 400          # checks the harness

Data: ``--images`` generated 224x224 JPEGs in 4 class folders (``scale.py``'s generator, 256-pixel
sources, reused from ``.cache/bench_scale/n<images>``). Backbone: MobileNetV2 (alpha 1.0, 2.26M
weights) with weights from a ``.h5`` file written once from a fresh model (no network here, so not
ImageNet's: the speed and memory of a step do not depend on the values).

The recipe, the same on both sides: float32, no XLA, batch 64, Adam; epoch 1 trains the head with
the backbone frozen (BatchNorm in inference mode) at LR 1e-3; epoch 2 trains everything but
BatchNorm at 1e-4.

- plain Keras, as its transfer-learning guide teaches: ``image_dataset_from_directory``
  (``validation_split=0.2``), ``base.trainable = False``, ``base(x, training=False)``, a new head;
  then ``base.trainable = True`` and ``compile`` again at a tenth of the LR.
- kerasopt: ``model: {type: mobilenet_v2, weights: FILE, freeze: backbone}``,
  ``train: {unfreeze_at_epoch: 1, unfreeze_lr_factor: 0.1}``, ``precision: float32,
  jit_compile: false`` (the only keys changed from their defaults besides data, model and epochs).

Each run is its own process (``scale_runs.py``); measured per epoch: whole-epoch examples/s
(validation included), and the run's peak RSS. Writes ``--out`` (default
``benchmarks/finetune.json``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import BATCH, CLASSES, IMAGE_SIZE, ROOT, SEED, ensure_images, finish, launch  # noqa: E402


def write_weights(path: Path) -> None:
    """A MobileNetV2 backbone's weights as kerasopt names them (keras.applications' layer names)."""
    if path.is_file():
        return
    code = ("import sys; from kerasopt.config.schema import ExperimentConfig; from kerasopt.data.spec import DataSpec;"
            "from kerasopt.models import build_model;"
            "cfg = ExperimentConfig(data={'source': 'synthetic'}, model={'type': 'mobilenet_v2'});"
            f"m = build_model(cfg, DataSpec(({IMAGE_SIZE[0]}, {IMAGE_SIZE[1]}, 3), 'classification', "
            f"{len(CLASSES)}, 1, 1)); m.save_weights(sys.argv[1])")
    import subprocess

    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env, cwd=str(ROOT))


def kerasopt_config(tmp: Path, images: Path, weights: Path, epochs: int) -> Path:
    import yaml

    cfg = {"name": "finetune", "seed": SEED,
           "data": {"source": "image_dir", "path": str(images), "image_size": list(IMAGE_SIZE), "batch_size": BATCH},
           "model": {"type": "mobilenet_v2", "weights": str(weights), "freeze": "backbone"},
           "train": {"epochs": epochs, "precision": "float32", "jit_compile": False, "unfreeze_at_epoch": 1,
                     "optimizer": {"type": "adam", "learning_rate": 1e-3}},
           "callbacks": {"tensorboard": {"enabled": False}}, "report": False, "export": {"formats": ["keras"]}}
    path = tmp / "finetune.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def row(name: str, run: dict) -> str:
    if not run.get("ok"):
        return f"| {name} | failed: {run.get('error')} | | | |"
    eps = [e.get("examples_per_sec") or 0.0 for e in run["epochs"]]
    acc = run.get("val_accuracy")
    return (f"| {name} | {eps[0]:,.1f} | {eps[1] if len(eps) > 1 else float('nan'):,.1f} | "
            f"{run['peak_rss_mb']:,.0f} | {acc if acc is not None else float('nan'):.3f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "bench_scale")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "finetune.json")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()

    images = args.data_dir / f"n{args.images}" / "images"  # scale.py's layout
    data = ensure_images(images, args.images, workers=os.cpu_count() or 1)
    weights = args.data_dir / "mobilenet_v2_224_backbone.h5"
    write_weights(weights)
    tmp = Path(tempfile.mkdtemp(prefix="finetune-"))
    config = kerasopt_config(tmp, images, weights, args.epochs)
    common = {"seed": SEED, "epochs": args.epochs, "image_size": list(IMAGE_SIZE), "batch_size": BATCH,
              "num_classes": len(CLASSES), "path": str(images), "weights": str(weights)}
    env = {"KERASOPT_CACHE_DIR": str(args.data_dir / "kerasopt_cache")}
    runs = {}
    for name, spec in [("plain Keras (transfer-learning guide)", {**common, "kind": "keras_finetune"}),
                       ("kerasopt", {**common, "kind": "kerasopt", "config": str(config),
                                     "run_dir": str(tmp / "run")})]:
        print(f"run: {name} ...", flush=True)
        runs[name] = finish(launch(spec, tmp / f"{spec['kind']}.log", env=env), args.timeout)
    lines = ["| run | epoch 1 (frozen) ex/s | epoch 2 (unfrozen) ex/s | peak RSS MiB | val accuracy |",
             "|---|---:|---:|---:|---:|"] + [row(n, r) for n, r in runs.items()]
    plain, ko = (runs[n] for n in runs)
    if plain.get("ok") and ko.get("ok"):
        ratios = [k["examples_per_sec"] / p["examples_per_sec"] for k, p in zip(ko["epochs"], plain["epochs"])]
        lines.append("| kerasopt / plain | " + " | ".join(f"{r:.2f}x" for r in ratios) + " | | |")
    table = "\n".join(lines)
    print(table)
    args.out.write_text(json.dumps({
        "command": "python " + " ".join(sys.argv), "machine": {"cpus": os.cpu_count(), "cpu": platform.processor()},
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": data, "table": table,
        "runs": {n: {k: v for k, v in r.items() if k not in ("printed", "metrics")} for n, r in runs.items()},
        "kerasopt_printed": runs["kerasopt"].get("printed")}, indent=1, default=str))
    return 0 if all(r.get("ok") for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
