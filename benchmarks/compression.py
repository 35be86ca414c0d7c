"""Compression targets on the digits CNN and a ResNet-18 small-image model (CPU).

Usage: ``python benchmarks/compression.py [--models digits_cnn,resnet18] [--quick] [--out compression.json]``.

For each model: train the dense model with kerasopt (``configs/digits_cnn.yaml``; the
ResNet-18 is depth 18, small-image stem, width 16 on the same 32x32 digits), then

- ``kerasopt prune`` at 80% (polynomial decay, first conv and head kept dense, 6 epochs):
  target: validation accuracy within 1.5 points of dense, gzipped .keras <= 40% of dense;
- ``kerasopt quantize`` (post-training int8 with 256 calibration examples):
  target: within 1 point of float, file <= 30% of the float TFLite file;
- digits only: distillation into a student with <= 1/4 of the teacher's parameters
  (``configs/digits_distill.yaml``): target within 1 point of the teacher.

Every number comes from the verbs' own ``compression.json`` / ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODELS = {
    "digits_cnn": {"prune_exclude": ["block1a_conv", "head"], "overrides": {}},
    "resnet18": {
        "prune_exclude": ["stem_conv", "head"],
        "overrides": {"name": "digits_resnet18", "model": {"type": "resnet", "depth": 18, "small_image_stem": True,
                                                           "width": 16, "dropout": 0.0},
                      "train.epochs": 12},
    },
}


def _variant(report: dict, name: str) -> dict:
    return next(v for v in report["variants"] if v["name"] == name)


def run_model(key: str, work: Path, quick: bool) -> dict:
    import kerasopt
    from kerasopt.compress.pipeline import run_prune, run_quantize
    from kerasopt.config import load_config

    spec = MODELS[key]
    base = {"callbacks.tensorboard.enabled": False, "report": False, "runs_root": str(work),
            "export.formats": ["keras"], **spec["overrides"]}
    if quick:
        base.update({"train.epochs": 2, "data.max_examples": 600})
    t0 = time.perf_counter()
    dense = kerasopt.fit(ROOT / "configs" / "digits_cnn.yaml", base, overwrite=True, print_fn=lambda s: None)
    out = {"model": key, "parameters": dense.model.count_params(),
           "dense_val_accuracy": round(dense.metrics["final"]["val_accuracy"], 4),
           "dense_train_s": round(time.perf_counter() - t0, 1)}
    run = dense.run_dir.path
    pcfg = load_config(ROOT / "configs" / "digits_cnn.yaml", {
        **base, "prune.target_sparsity": 0.8, "prune.epochs": 2 if quick else 6,
        "prune.exclude": spec["prune_exclude"]})
    pr = run_prune(pcfg, run, overwrite=True, say=lambda s: None)
    d, p = _variant(pr, "dense keras"), _variant(pr, "pruned keras")
    out["prune"] = {
        "sparsity": pr["totals"]["kernel_sparsity"], "val_accuracy": p["accuracy"],
        "accuracy_drop_points": round(100 * (d["accuracy"] - p["accuracy"]), 2),
        "gzip_ratio": round(p["gzip_bytes"] / d["gzip_bytes"], 3),
        "raw_ratio": round(p["raw_bytes"] / d["raw_bytes"], 3),
        "latency_ms_dense": d["latency"]["median_ms"], "latency_ms_pruned": p["latency"]["median_ms"],
        "tflite_latency_ms_dense": _variant(pr, "dense tflite")["latency"]["median_ms"],
        "tflite_latency_ms_pruned": _variant(pr, "pruned tflite")["latency"]["median_ms"],
    }
    qcfg = load_config(ROOT / "configs" / "digits_cnn.yaml", {
        **base, "quantize.formats": ["float16", "int8"], "quantize.representative_samples": 256})
    qr = run_quantize(qcfg, run, overwrite=True, say=lambda s: None)
    f, i8, f16 = _variant(qr, "float32 tflite"), _variant(qr, "int8 tflite"), _variant(qr, "float16 tflite")
    out["int8"] = {
        "val_accuracy": i8["accuracy"], "float_val_accuracy": f["accuracy"],
        "accuracy_drop_points": round(100 * (f["accuracy"] - i8["accuracy"]), 2),
        "size_ratio": round(i8["raw_bytes"] / f["raw_bytes"], 3),
        "float16_size_ratio": round(f16["raw_bytes"] / f["raw_bytes"], 3),
        "argmax_agreement": i8["argmax_agreement"],
        "latency_ms_float": f["latency"]["median_ms"], "latency_ms_int8": i8["latency"]["median_ms"],
    }
    if key == "digits_cnn":
        student = kerasopt.fit(ROOT / "configs" / "digits_distill.yaml",
                               {**base, "name": "digits_distill", "distill.teacher": str(run)},
                               overwrite=True, print_fn=lambda s: None)
        plain = kerasopt.fit(ROOT / "configs" / "digits_distill.yaml",
                             {**base, "name": "digits_student_plain", "distill": None},
                             overwrite=True, print_fn=lambda s: None)
        out["distill"] = {
            "student_parameters": student.model.count_params(),
            "param_ratio": round(student.model.count_params() / out["parameters"], 3),
            "student_val_accuracy": round(student.metrics["final"]["val_accuracy"], 4),
            "student_without_teacher_val_accuracy": round(plain.metrics["final"]["val_accuracy"], 4),
            "gap_points": round(100 * (out["dense_val_accuracy"] - student.metrics["final"]["val_accuracy"]), 2),
        }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def verdicts(r: dict) -> dict:
    v = {"prune": r["prune"]["accuracy_drop_points"] <= 1.5 and r["prune"]["gzip_ratio"] <= 0.40,
         "int8": r["int8"]["accuracy_drop_points"] <= 1.0 and r["int8"]["size_ratio"] <= 0.30}
    if "distill" in r:
        v["distill"] = r["distill"]["gap_points"] <= 1.0 and r["distill"]["param_ratio"] <= 0.25
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="digits_cnn,resnet18")
    ap.add_argument("--quick", action="store_true", help="2 epochs, 600 examples: checks the script runs")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "compression.json")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="kerasopt-compress-bench-") as tmp:
        for key in args.models.split(","):
            r = run_model(key, Path(tmp), args.quick)
            r["meets_targets"] = verdicts(r)
            results.append(r)
            print(json.dumps(r, indent=2), flush=True)
    doc = {"command": f"python benchmarks/compression.py --models {args.models}" + (" --quick" if args.quick else ""),
           "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
           "results": results}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print("| model | pruned 80%: acc drop (pts) | gz size vs dense | int8: acc drop | int8 size vs float | "
          "student: gap | student params |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        d = r.get("distill", {})
        print(f"| {r['model']} | {r['prune']['accuracy_drop_points']} | {r['prune']['gzip_ratio']:.0%} | "
              f"{r['int8']['accuracy_drop_points']} | {r['int8']['size_ratio']:.0%} | "
              f"{d.get('gap_points', '-')} | {d.get('param_ratio', '-')} |")


if __name__ == "__main__":
    main()
