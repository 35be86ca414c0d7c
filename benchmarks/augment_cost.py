"""What random resized crops from the files and RandAugment cost at real size (issue 16).

Usage::

    python benchmarks/augment_cost.py                  # 3,000 photo-size JPEGs, 3 epochs per variant (est. 15 min)
    python benchmarks/augment_cost.py --images 400 --epochs 2

Data (generated once into ``--data-dir``, default ``.cache/bench_augment``): ``--images`` 500x375 RGB
JPEGs (quality 90, the size of a typical ImageNet photo; ``benchmarks/scale.py``'s scenes, upscaled, with
fresh noise) in 4 class folders.

Each variant runs in its own process (so peak RSS is its own) and measures the **input pipeline alone**:
whole passes over the 80% training split at 224x224, batch 64, float32 batches out, nothing trained; the
ceiling on what a training step can be fed on this CPU. Variants:

* ``kerasopt cached``: ``kerasopt``'s image folder with its defaults (decoded once into the cache at
  224; epoch 1 fills it);
* ``kerasopt crop+flip``: ``random_resized_crop: true`` (timm's scale 0.08..1, ratio 3/4..4/3: cut from
  the file each epoch, ``decode_and_crop_jpeg``) and ``flip: horizontal``;
* ``plain tf.data crop+flip``: TF Model Garden's recipe written by hand: file names shuffled,
  ``sample_distorted_bounding_box`` (same area and ratio ranges, 10 tries), ``decode_and_crop_jpeg``,
  resize to 224, random flip, parallel ``map`` (AUTOTUNE), batch, prefetch;
* ``kerasopt cached + randaugment``: the cache plus ``randaugment: true`` (2 of 15 ops, magnitude 9);
* ``kerasopt crop+flip+randaugment``: timm's whole training recipe.

Writes ``--out`` (default ``benchmarks/augment_cost.json``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
BATCH, SIZE, PHOTO = 64, 224, (500, 375)
VARIANTS = {
    "kerasopt cached": {},
    "kerasopt crop+flip": {"random_resized_crop": True, "flip": "horizontal"},
    "plain tf.data crop+flip": None,
    "kerasopt cached + randaugment": {"randaugment": True},
    "kerasopt crop+flip+randaugment": {"random_resized_crop": True, "flip": "horizontal", "randaugment": True},
}


def _photo(args: tuple[str, int]) -> int:
    from PIL import Image
    from scale import CLASSES, make_jpeg

    folder, index = Path(args[0]), args[1]
    data, label = make_jpeg(index, seed=7)
    img = Image.open(io.BytesIO(data)).resize(PHOTO, Image.BICUBIC)
    rng = np.random.default_rng(index)
    arr = np.clip(np.asarray(img, np.float32) + rng.normal(0, 10, (PHOTO[1], PHOTO[0], 3)), 0, 255).astype(np.uint8)
    out = folder / list(CLASSES)[label] / f"img_{index:06d}.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    Image.fromarray(arr).save(tmp, "JPEG", quality=90)
    os.replace(tmp, out)
    return out.stat().st_size


def ensure_photos(folder: Path, n: int) -> dict:
    have = len(list(folder.glob("*/*.jpg"))) if folder.is_dir() else 0
    if have != n:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_photo, [(str(folder), i) for i in range(n)], chunksize=32))
    sizes = [p.stat().st_size for p in folder.glob("*/*.jpg")]
    return {"images": len(sizes), "mean_kb": round(float(np.mean(sizes)) / 1024, 1), "size": list(PHOTO)}


def _plain_stream(folder: Path, seed: int):
    """TF Model Garden's image-classification training input, by hand (one pass: an epoch)."""
    import tensorflow as tf

    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = sorted(str(p) for p in folder.glob("*/*.jpg"))
    labels = [names.index(Path(f).parent.name) for f in files]
    order = np.random.default_rng(seed).permutation(len(files))
    n_train = int(len(files) * 0.8)
    train = order[:n_train]

    def load(path, label):
        data = tf.io.read_file(path)
        shape = tf.image.extract_jpeg_shape(data)
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            shape, tf.zeros([0, 0, 4]), min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
        y0, x0, _ = tf.unstack(begin)
        h, w, _ = tf.unstack(size)
        image = tf.image.decode_and_crop_jpeg(data, tf.stack([y0, x0, h, w]), channels=3)
        image = tf.image.resize(image, [SIZE, SIZE])
        return tf.image.random_flip_left_right(image), label

    ds = tf.data.Dataset.from_tensor_slices((np.array(files)[train], np.array(labels)[train]))
    ds = ds.shuffle(n_train, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH).prefetch(tf.data.AUTOTUNE)
    return (lambda epoch: ds), -(-n_train // BATCH), n_train


def run_variant(name: str, folder: Path, epochs: int) -> dict:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    t0 = time.perf_counter()
    aug = VARIANTS[name]
    if aug is None:
        stream, steps, n_train = _plain_stream(folder, 42)
    else:
        from kerasopt.config.schema import ExperimentConfig
        from kerasopt.data.pipeline import build_datasets

        cfg = ExperimentConfig(seed=42, data={"source": "image_dir", "path": str(folder), "image_size": [SIZE, SIZE],
                                              "batch_size": BATCH, "augment": aug})
        bundle = build_datasets(cfg)
        steps, n_train = bundle.steps_per_epoch, bundle.spec.num_train
        endless = iter(bundle.train_from_epoch(0))
        stream = None
    setup = time.perf_counter() - t0
    rates = []
    for epoch in range(epochs):
        start, seen = time.perf_counter(), 0
        batches = iter(stream(epoch)) if stream is not None else (next(endless) for _ in range(steps))
        for x, _ in batches:
            seen += int(x.shape[0])
            assert x.dtype.name == "float32" and x.shape[1:3] == (SIZE, SIZE)
        rates.append(round(seen / (time.perf_counter() - start), 1))
    return {"variant": name, "examples_per_s": rates, "train_examples": n_train, "setup_s": round(setup, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "bench_augment")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "augment_cost.json")
    ap.add_argument("--run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.data_dir / f"photos{args.images}"
    if args.run:
        print(json.dumps(run_variant(args.run, folder, args.epochs)))
        return 0
    data = ensure_photos(folder, args.images)
    print(f"data: {data}", flush=True)
    env = {**os.environ, "KERASOPT_CACHE_DIR": str(args.data_dir / "kerasopt_cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = []
    for name in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--run", name, "--images", str(args.images),
                              "--epochs", str(args.epochs), "--data-dir", str(args.data_dir)],
                             capture_output=True, text=True, env=env, timeout=3600)
        if out.returncode:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    lines = ["| input pipeline (224x224, batch 64) | ex/s per epoch | steady ex/s (after epoch 1) | peak RSS MiB |",
             "|---|---|---:|---:|"]
    for r in results:
        steady = r["examples_per_s"][1:] or r["examples_per_s"]
        lines.append(f"| {r['variant']} | {', '.join(f'{v:,.0f}' for v in r['examples_per_s'])} | "
                     f"{np.mean(steady):,.0f} | {r['peak_rss_mb']:,.0f} |")
    table = "\n".join(lines)
    print(table)
    args.out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "data": data,
                                    "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "cpus": os.cpu_count(), "results": results, "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
