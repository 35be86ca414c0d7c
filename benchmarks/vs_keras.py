"""kerasopt against plain Keras: throughput, time to accuracy, input pipeline, ``--help`` start-up.

Usage::

    python benchmarks/vs_keras.py                      # the CPU suite, 3 interleaved repeats (make bench)
    python benchmarks/vs_keras.py --quick              # a few minutes: checks the harness, numbers mean little
    python benchmarks/vs_keras.py --suite gpu          # ResNet-50 224x224, batch 256: precision x XLA (needs a GPU)

CPU suite. Throughput: one process per model runs (a), (b), (c) interleaved (a, b, c, then b, c, a,
...) so machine drift hits every variant of a round alike; ratios are medians of the per-round
(paired) ratios. The other parts run each measurement in a fresh process, interleaved likewise:

1. Throughput for the digits CNN, a small-image ResNet-18 and an LSTM on token sequences:
   (a) plain tf_keras ``model.fit`` on NumPy arrays (same model, data, batch, Adam 1e-3, float32,
   no XLA); (b) ``kerasopt.fit`` with the same settings (``precision: float32``,
   ``jit_compile: false``), all default callbacks on, EMA off; (c) ``kerasopt.fit`` with its
   defaults (``precision: auto``, ``jit_compile: auto``, default pipeline). Throughput is training
   examples/s over the epochs after the first, timed to the start of validation.
2. Time to 99% validation accuracy on digits, one run per seed (42, 43, 44): ``configs/digits_cnn.yaml``
   as shipped in kerasopt, and at float32 with XLA off; the same recipe in plain Keras (float32: against
   the float32 kerasopt row, the engine's cost); a hand-written plain-Keras
   CNN of the same shape without BatchNorm (Adam 1e-3, batch 64, no schedule or augmentation: the
   recipe's value). Same split per seed.
3. The ``image_dir`` input pipeline (PNG decode + augmentation, digits written as PNGs to a temp
   folder) alone, against the model's training throughput alone (``kerasopt bench`` modes).
4. The ``kerasopt bench`` variants behind the defaults: precision x XLA on the digits CNN, XLA on
   ResNet-18, steps_per_execution, and the pipeline's cache / num_parallel_calls / prefetch.
5. ``kerasopt --help`` wall time.

Writes ``benchmarks/vs_keras.json`` (``--quick``: a temp file) and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from vs_keras_report import markdown  # noqa: E402

COMMON = {"train.verbose": 0, "report": False, "export.formats": ["keras"], "callbacks.ema.enabled": False,
          "train.optimizer": {"type": "adam", "learning_rate": 1e-3}, "train.schedule": {"type": "constant"}}
VARIANTS = {
    "a": {},  # the plain child reads only data, model, batch and epochs from the config
    "b": {"train.precision": "float32", "train.jit_compile": False},
    "c": {"train.precision": "auto", "train.jit_compile": "auto"},
}


def models(quick: bool) -> dict[str, dict]:
    """name -> (config, overrides, epochs); quick shrinks data and width, not the architecture."""
    digits = {"config": str(ROOT / "configs" / "digits_cnn.yaml"),
              "set": {"name": "vs_keras_digits", "data.augment": {}}, "epochs": 3 if quick else 8, "min_rounds": 6,
              "about": "configs/digits_cnn.yaml model (77k params), 1,437 train images 32x32x1, batch 128, "
                       "augmentation off"}
    resnet = {"config": {"name": "vs_keras_resnet18",
                         "data": {"source": "synthetic", "num_examples": 640 if quick else 2560,
                                  "shape": [32, 32, 3], "num_classes": 10, "batch_size": 128},
                         "model": {"type": "resnet", "depth": 18, "small_image_stem": True,
                                   "width": 8 if quick else 16}},
              "set": {}, "epochs": 3 if quick else 5,
              "about": "ResNet-18 v1.5, 3x3 stem, width 16, synthetic 32x32x3, 2,048 train, batch 128"}
    lstm = {"config": {"name": "vs_keras_lstm",
                       "data": {"source": "synthetic", "task": "tokens", "shape": [32 if quick else 64],
                                "vocab_size": 1000, "num_classes": 10, "num_examples": 1024 if quick else 4096,
                                "batch_size": 128},
                       "model": {"type": "lstm", "units": 64, "embedding_dim": 64}},
            "set": {}, "epochs": 3 if quick else 5, "min_rounds": 6,
            "about": "Embedding 64 + LSTM 64, synthetic token sequences of 64 ids, 3,277 train, batch 128"}
    return {"digits_cnn": digits, "resnet18": resnet, "lstm": lstm}


def child(spec: dict, timeout: float) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vs-keras-") as tmp:
        sp, rp = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        sp.write_text(json.dumps(spec))
        try:
            proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_keras_runs.py"), str(sp), str(rp)],
                                  capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout:g} s"}
        if rp.is_file():
            out = json.loads(rp.read_text())
        else:
            tail = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:]
            out = {"ok": False, "error": f"exit code {proc.returncode}: {' '.join(tail)[:300]}"}
    out["wall_s"] = time.perf_counter() - t0
    return out


def rotated(items: list, r: int) -> list:
    k = r % len(items)
    return items[k:] + items[:k]


def throughput_suite(args, result: dict, save) -> None:
    """One process per model runs (a), (b), (c) interleaved, ``rounds`` times (``vs_keras_runs.run_interleaved``)."""
    specs = {k: v for k, v in models(args.quick).items() if not args.models or k in args.models}
    runs = result.setdefault("throughput", {})
    for name, m in specs.items():
        rounds = args.repeats if args.quick else max(args.repeats, m.get("min_rounds", 0))
        variants = {v: {**COMMON, **m["set"], "train.epochs": m["epochs"], **VARIANTS[v]} for v in VARIANTS}
        spec = {"kind": "interleaved", "config": m["config"], "variants": variants, "rounds": rounds}
        print(f"throughput {name}: {rounds} rounds of a, b, c in one process ...", flush=True)
        out = child(spec, args.timeout * rounds)
        if not out.get("ok"):
            runs[name] = {v: [{"ok": False, "error": out.get("error"), "repeat": r} for r in range(rounds)]
                          for v in VARIANTS}
            print(f"throughput {name}: FAILED {out.get('error')}", flush=True)
        else:
            runs[name] = out["runs"]
            for v, rs in runs[name].items():
                rates = ", ".join(f"{r['examples_per_sec']:,.0f}" if r.get("ok") else "failed" for r in rs)
                print(f"throughput {name} ({v}): {rates} ex/s  ({out['wall_s']:.0f} s in all)", flush=True)
        save()
    result["models"] = {k: v["about"] for k, v in specs.items()}


TTA_SEEDS = (42, 43, 44)  # one per repeat: a time to 99% can hinge on one epoch of one seed


def tta_suite(args, result: dict, save) -> None:
    """The shipped recipe in kerasopt (as shipped, and at float32 with XLA off), the same recipe in plain Keras
    and the weaker hand-written baseline, each once per seed, in rotated order."""
    kinds = ["recipe", "recipe_f32", "same_recipe", "baseline"]
    runs = result.setdefault("time_to_accuracy", {k: [] for k in kinds})
    quick = {"train.epochs": 2} if args.quick else {}
    for r in range(args.repeats):
        seed = TTA_SEEDS[r % len(TTA_SEEDS)]
        for kind in rotated(kinds, r):
            base = {"threshold": args.threshold, "seed": seed}
            if kind in ("recipe", "recipe_f32"):
                # recipe_f32: the arithmetic of the plain-Keras row, so the two differ by the engine alone
                same = {"train.precision": "float32", "train.jit_compile": False} if kind == "recipe_f32" else {}
                spec = {**base, "kind": "tta_recipe",
                        "overrides": {"train.verbose": 0, "report": False, "export.formats": ["keras"],
                                      "name": "vs_keras_recipe", **same, **quick}}
            elif kind == "same_recipe":
                spec = {**base, "kind": "tta_same_recipe"}
            else:
                spec = {**base, "kind": "tta_baseline", "max_epochs": 2 if args.quick else 60}
            out = child(spec, args.timeout)
            runs[kind].append(out)
            what = (f"{out['seconds']:.1f} s (epoch {out['epoch']})" if out.get("reached") else
                    f"not reached in {out.get('epochs_run')} epochs" if out.get("ok") else f"FAILED {out.get('error')}")
            print(f"[repeat {r + 1}/{args.repeats}, seed {seed}] time to {args.threshold:.0%} ({kind}): {what}",
                  flush=True)
            save()


def write_digit_pngs(folder: Path) -> int:
    """sklearn's digits as 8x8 grayscale PNGs in ``folder/<digit>/``; returns the number written."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    for i, (img, label) in enumerate(zip(d.images, d.target)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img * 255 / 16).astype("uint8"), mode="L").save(folder / str(label) / f"{i}.png")
    return len(d.images)


def image_dir_config(folder: str) -> dict:
    """The digits recipe reading the PNG folder: decode + resize to 32x32 + translation augmentation."""
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "digits_cnn.yaml").read_text())
    cfg.update(name="vs_keras_image_dir", data={
        "source": "image_dir", "path": folder, "image_size": [32, 32], "channels": 1, "validation_split": 0.2,
        "normalize": "minmax", "batch_size": 128, "augment": {"translation": 0.05}})
    return cfg


def pipeline_suite(args, result: dict, save) -> None:
    from kerasopt.bench.session import run_child

    runs = result.setdefault("pipeline", {"feed_decode": [], "feed_cached": [], "model": [], "end_to_end": []})
    steps = 20 if args.quick else 100
    with tempfile.TemporaryDirectory(prefix="vs-keras-png-") as tmp:
        result["pipeline_images"] = write_digit_pngs(Path(tmp))
        cfg = image_dir_config(tmp)
        cases = {"feed_decode": ("pipeline", {"data.cache": False}), "feed_cached": ("pipeline", {}),
                 "model": ("synthetic", {}), "end_to_end": ("train", {"data.cache": False})}
        for r in range(max(1, min(args.repeats, 3))):
            for key in rotated(list(cases), r):
                mode, over = cases[key]
                out = run_child(cfg, over, mode=mode, steps=steps, warmup=None, timeout=args.timeout)
                runs[key].append(out)
                rate = (f"{out['stats']['examples_per_sec']:,.0f} ex/s" if out.get("ok")
                        else f"FAILED {out.get('error')}")
                print(f"[repeat {r + 1}] image_dir {key} ({mode}): {rate}", flush=True)
                save()


def defaults_suite(args, result: dict, save) -> None:
    """The `kerasopt bench` variants behind each default (train_schema.py, data_schema.py)."""
    from kerasopt.bench import session

    steps = 15 if args.quick else 60
    digits = str(ROOT / "configs" / "digits_cnn.yaml")
    resnet = models(args.quick)["resnet18"]["config"]
    checks = {"xla_precision_digits": (digits, "synthetic", [], ["precision=float32,mixed_bfloat16",
                                                                 "jit_compile=false,true"]),
              "xla_resnet18": (resnet, "synthetic", [], ["jit_compile=false,true"]),
              "steps_per_execution_digits": (digits, "synthetic", [], ["steps_per_execution=1,4"]),
              "pipeline_cache_calls": ("IMAGE_DIR", "train", [], ["cache=false,true", "num_parallel_calls=1,-1"]),
              "pipeline_prefetch": ("IMAGE_DIR", "train", ["data.cache=false"], ["prefetch=0,-1"])}
    if args.quick:
        checks = {k: checks[k] for k in ("xla_precision_digits",)}
        checks["xla_precision_digits"] = (digits, "synthetic", [], ["jit_compile=false,true"])
    out = result.setdefault("defaults", {})
    with tempfile.TemporaryDirectory(prefix="vs-keras-png-") as tmp:
        write_digit_pngs(Path(tmp))
        for name, (config, mode, sets, variants) in checks.items():
            config = image_dir_config(tmp) if config == "IMAGE_DIR" else config
            rows = session.plan(config, sets, variants)
            done = session.run_rows(config, rows, mode=mode, steps=steps, warmup=None, timeout=args.timeout)
            out[name] = {"mode": mode, "set": sets, "variants": variants, "rows": done}
            for r in done:
                rate = f"{r['stats']['examples_per_sec']:,.0f} ex/s" if r.get("ok") else f"failed: {r.get('error')}"
                print(f"defaults {name}: {r['label']}: {rate}", flush=True)
            save()


def help_time(args, result: dict, save) -> None:
    times = []
    for _ in range(3 if args.quick else 7):
        t0 = time.perf_counter()
        subprocess.run([str(BIN / "kerasopt"), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    result["help_s"] = {"median": statistics.median(times), "max": max(times), "all": times}
    print(f"kerasopt --help: median {result['help_s']['median']:.3f} s", flush=True)
    save()


def gpu_suite(args, result: dict, save) -> None:
    """ResNet-50 at 224x224, synthetic data, batch 256: float32/mixed_float16/mixed_bfloat16 x XLA off/on."""
    from kerasopt.bench import session

    probe = subprocess.run([sys.executable, "-c", "import tensorflow as tf; "
                            "print(len(tf.config.list_physical_devices('GPU')))"], capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    gpus = int((probe.stdout.strip().splitlines() or ["0"])[-1])
    result["gpus_visible"] = gpus
    if not gpus and not args.allow_cpu:
        raise SystemExit("--suite gpu: no GPU is visible here (use --allow-cpu --quick to check the harness)")
    small = args.quick or not gpus
    cfg = {"name": "vs_keras_resnet50",
           "data": {"source": "synthetic", "shape": [32, 32, 3] if small else [224, 224, 3],
                    "num_classes": 1000, "num_examples": 16 if small else 512, "validation_split": 0.0,
                    "batch_size": 8 if small else 256},
           "model": {"type": "resnet", "depth": 50}}
    rows = session.plan(cfg, [], ["precision=float32,mixed_float16,mixed_bfloat16", "jit_compile=false,true"])[1:]
    out = session.run_rows(cfg, rows, mode="synthetic", steps=5 if small else 50, warmup=None if not small else 2,
                           timeout=args.timeout,
                           on_done=lambda i, r: print(f"gpu [{i + 1}/{len(rows)}] {r['label']}: "
                                                      f"{r['stats']['examples_per_sec']:,.0f} ex/s" if r.get("ok")
                                                      else f"gpu [{i + 1}/{len(rows)}] {r['label']}: failed: "
                                                      f"{r.get('error')}", flush=True))
    result["gpu"] = {"config": cfg, "rows": out, "small": small}
    save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every run (default 3)")
    ap.add_argument("--quick", action="store_true", help="1 repeat, tiny sizes: validates the harness")
    ap.add_argument("--suite", choices=["cpu", "gpu", "all"], default="cpu")
    ap.add_argument("--only", nargs="+", choices=["throughput", "tta", "pipeline", "defaults", "help"],
                    help="run only these parts of the CPU suite")
    ap.add_argument("--models", nargs="+", choices=["digits_cnn", "resnet18", "lstm"],
                    help="throughput: only these models (default: all three)")
    ap.add_argument("--threshold", type=float, default=0.99, help="validation accuracy for time to accuracy")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per run")
    ap.add_argument("--allow-cpu", action="store_true", help="--suite gpu on a CPU (tiny shapes, plumbing only)")
    ap.add_argument("--out", type=Path, help="JSON results (default benchmarks/vs_keras.json; --quick: a temp file)")
    args = ap.parse_args()
    if args.quick:
        args.repeats = 1
    out = args.out or (Path(tempfile.gettempdir()) / "vs_keras_quick.json" if args.quick
                       else ROOT / "benchmarks" / "vs_keras.json")
    from importlib.metadata import version

    from kerasopt.bench.session import machine

    result: dict = {"command": "python benchmarks/vs_keras.py " + " ".join(sys.argv[1:]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                    "versions": {p: version(p) for p in ("tensorflow", "tf-keras", "kerasopt")},
                    "quick": args.quick, "repeats": args.repeats, "threshold": args.threshold}

    def save() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, default=float) + "\n")

    t0 = time.perf_counter()
    parts = {"help": help_time, "throughput": throughput_suite, "tta": tta_suite, "pipeline": pipeline_suite,
             "defaults": defaults_suite}
    if args.suite in ("cpu", "all"):
        for name, fn in parts.items():
            if not args.only or name in args.only:
                fn(args, result, save)
    if args.suite in ("gpu", "all"):
        gpu_suite(args, result, save)
    result["total_s"] = time.perf_counter() - t0
    result["markdown"] = markdown(result)
    save()
    print("\n" + result["markdown"])
    print(f"\nwrote {out} ({result['total_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
