"""kerasopt defaults against plain Keras as its docs teach it, at scale: 224-pixel JPEG folders and TFRecords.

Usage::

    python benchmarks/scale.py                          # 12,000 JPEGs, 2 epochs, both sources (est. 30-45 min)
    python benchmarks/scale.py --images 400 --epochs 1  # checks the harness in a few minutes
    python benchmarks/scale.py --only tfrecord --rounds 2

Data (generated once, cached in ``--data-dir``, default ``.cache/bench_scale``): ``--images`` 256x256 RGB
JPEGs (quality 90, ~32 KB each: smooth colour fields, texture, noise and shapes; the class decides the
colour and shape of one large figure) in 4 class folders, and the same JPEG bytes as TFRecord shards of
``tf.train.Example(image, label)``. Both are written by 2 processes and reused when the counts match.

Model, both sides: kerasopt's ``model: {type: cnn, filters: [8, 16], dense_units: 16}`` at 224x224,
batch 64, ``--epochs`` epochs; every other key of kerasopt at its default (whatever they are when this
runs: precision, XLA, cache, callbacks, exports). The plain side builds the same architecture with
``kerasopt.models.build_model`` (fresh float32 weights) and trains it with ``image_dataset_from_directory``
or a ``TFRecordDataset`` pipeline, Adam 1e-3, float32, no cache (``scale_runs.py`` says exactly how).

Every run is its own process (``scale_runs.py``), so peak RSS is that run's. Per round and source:
plain, kerasopt, plain, kerasopt (kerasopt first in odd rounds). The second run of a side is a new
process and (kerasopt) a new run directory on the same data with the same user cache
(``KERASOPT_CACHE_DIR`` under ``--data-dir``, emptied before each first kerasopt run unless
``--no-fresh-cache``). Measured: whole-epoch examples/s (training examples / time from epoch begin to
epoch end, validation and epoch-end callbacks included) for every epoch, steady = epochs after the
first; peak RSS; start-up = process launch to the start of the first training step.

Writes ``--out`` (default ``benchmarks/scale.json``) and prints the tables.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH, IMAGE_SIZE, SOURCE_SIZE, SEED = 64, (224, 224), 256, 42
# Sorted names = class indices (image_dataset_from_directory and kerasopt both sort the folders).
CLASSES = {"blue_triangle": (40, 70, 200), "green_square": (40, 170, 60), "red_circle": (200, 40, 40),
           "yellow_ellipse": (220, 190, 30)}
MODEL = {"type": "cnn", "filters": [8, 16], "dense_units": 16}


# ---------------------------------------------------------------- data
def make_jpeg(index: int, seed: int = SEED) -> tuple[bytes, int]:
    """``(JPEG bytes, label)`` of image ``index``: deterministic, so an interrupted generation resumes.

    Noise amplitude and texture were tuned so that quality 90 gives ~32 KB per 256x256 image (29-33 KB).
    """
    from PIL import Image, ImageDraw

    rng, label, n = np.random.default_rng([seed, index]), index % len(CLASSES), SOURCE_SIZE
    low = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    bg = np.asarray(low.resize((n, n), Image.BICUBIC), np.float32)
    yy, xx = np.mgrid[0:n, 0:n] / n
    angle = rng.uniform(0, 2 * np.pi)
    bg = 0.6 * bg + 0.4 * (np.cos(angle) * xx + np.sin(angle) * yy)[..., None] * rng.uniform(0, 255, 3)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 7)):  # distractors of any colour
        x0, y0 = rng.integers(0, n, 2)
        w, h = rng.integers(15, 80, 2)
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=fill)
    x0, y0 = rng.integers(0, n // 2, 2)
    s = int(rng.integers(n // 3, n // 2))
    name = list(CLASSES)[label]
    fill = tuple(int(np.clip(v + rng.normal(0, 20), 0, 255)) for v in CLASSES[name])
    if name == "blue_triangle":
        draw.polygon([(x0, y0 + s), (x0 + s // 2, y0), (x0 + s, y0 + s)], fill=fill)
    elif name == "green_square":
        draw.rectangle([x0, y0, x0 + s, y0 + s], fill=fill)
    elif name == "red_circle":
        draw.ellipse([x0, y0, x0 + s, y0 + s], fill=fill)
    else:
        draw.ellipse([x0, y0 + s // 4, x0 + s, y0 + s - s // 4], fill=fill)
    texture = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).resize((n, n), Image.BILINEAR)
    arr = np.asarray(img, np.float32) + 0.35 * (np.asarray(texture, np.float32) - 128) + rng.normal(0, 14, (n, n, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue(), label


def jpeg_path(folder: Path, index: int) -> Path:
    return folder / list(CLASSES)[index % len(CLASSES)] / f"img_{index:06d}.jpg"


def _write_one(args: tuple[str, int]) -> int:
    folder, index = Path(args[0]), args[1]
    data, _ = make_jpeg(index)
    out = jpeg_path(folder, index)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)  # a killed generation leaves no truncated JPEG behind
    return len(data)


def ensure_images(folder: Path, n: int, workers: int) -> dict:
    """``n`` JPEGs in class folders; only the missing ones are generated."""
    import multiprocessing as mp

    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob("*/*.tmp"):
        tmp.unlink()
    missing = [i for i in range(n) if not jpeg_path(folder, i).is_file()]
    t0 = time.perf_counter()
    if missing:
        print(f"data: generating {len(missing):,} JPEGs in {folder} ({workers} processes) ...", flush=True)
        with mp.get_context("fork").Pool(workers) as pool:  # the parent has no TensorFlow: fork is safe
            list(pool.imap_unordered(_write_one, [(str(folder), i) for i in missing], chunksize=64))
    sizes = [jpeg_path(folder, i).stat().st_size for i in range(n)]
    return {"path": str(folder), "images": n, "generated": len(missing), "seconds": time.perf_counter() - t0,
            "mean_kb": float(np.mean(sizes)) / 1024, "total_mb": float(np.sum(sizes)) / 2**20}


def ensure_tfrecords(folder: Path, images: Path, n: int, shards: int, workers: int, timeout: float) -> dict:
    """The same JPEG bytes as ``shards`` TFRecord files, examples spread over shards in a seeded order."""
    manifest = folder / "manifest.json"
    try:
        old = json.loads(manifest.read_text())
        if old["images"] == n and old["shards"] == shards and all((folder / f).is_file() for f in old["counts"]):
            return {**old, "generated": 0, "seconds": 0.0}
    except (OSError, ValueError, KeyError):
        pass
    print(f"data: writing {shards} TFRecord shards to {folder} ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    for old_file in folder.glob("*.tfrecord*"):
        old_file.unlink()
    order = np.random.default_rng(SEED).permutation(n)
    plan = [{"path": str(folder / f"shard-{s:05d}-of-{shards:05d}.tfrecord"),
             "items": [(str(jpeg_path(images, int(i))), int(i) % len(CLASSES)) for i in order[s::shards]]}
            for s in range(shards)]
    t0 = time.perf_counter()
    jobs = [launch({"kind": "write_tfrecords", "shards": plan[w::workers]}, folder / f".write{w}.log")
            for w in range(workers)]
    counts: dict = {}
    for job in jobs:
        out = finish(job, timeout)
        if not out.get("ok"):
            raise SystemExit(f"writing TFRecords failed: {out.get('error')} (log: {job['log']})")
        counts.update(out["counts"])
    info = {"path": str(folder), "images": n, "shards": shards, "counts": dict(sorted(counts.items())),
            "total_mb": sum(f.stat().st_size for f in folder.glob("*.tfrecord")) / 2**20}
    manifest.write_text(json.dumps(info, indent=1))
    return {**info, "generated": shards, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------- runs
def launch(spec: dict, log: Path, env: dict | None = None) -> dict:
    """Start ``scale_runs.py`` on ``spec``; ``launched_at`` is taken just before the process starts."""
    tmp = Path(tempfile.mkdtemp(prefix="scale-"))
    sp, rp = tmp / "spec.json", tmp / "result.json"
    full_env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1",
                **(env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "w")
    sp.write_text(json.dumps({**spec, "launched_at": time.time()}))
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "scale_runs.py"), str(sp), str(rp)],
                            stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=str(ROOT))
    return {"proc": proc, "fh": fh, "tmp": tmp, "result": rp, "log": str(log), "t0": time.perf_counter()}


def finish(job: dict, timeout: float) -> dict:
    try:
        job["proc"].wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        job["proc"].kill()
        job["proc"].wait()
    job["fh"].close()
    if job["result"].is_file():
        out = json.loads(job["result"].read_text())
    else:
        out = {"ok": False, "error": f"exit code {job['proc'].returncode} (timeout {timeout:g} s?); see {job['log']}"}
    shutil.rmtree(job["tmp"], ignore_errors=True)
    return {**out, "wall_s": time.perf_counter() - job["t0"], "log": job["log"]}


def write_configs(tmp: Path, images: Path, tfrecords: Path, epochs: int) -> dict[str, Path]:
    """The kerasopt configs: data, model, epochs and batch size given; every other key at its default."""
    import yaml

    data = {"folder": {"source": "image_dir", "path": str(images), "image_size": list(IMAGE_SIZE),
                       "batch_size": BATCH},
            "tfrecord": {"source": "tfrecord", "path": str(tfrecords / "shard-*.tfrecord"), "batch_size": BATCH,
                         "features": {"image": {"dtype": "image", "shape": [*IMAGE_SIZE, 3]},
                                      "label": {"dtype": "int64"}}}}
    paths = {}
    for source, d in data.items():
        paths[source] = tmp / f"scale_{source}.yaml"
        paths[source].write_text(yaml.safe_dump({"name": f"scale_{source}", "data": d, "model": MODEL,
                                                 "train": {"epochs": epochs}}, sort_keys=False))
    return paths


def run_source(source: str, r: int, args, ctx: dict) -> list[dict]:
    """Plain, kerasopt, plain, kerasopt (reversed pairs in odd rounds); each run a fresh process."""
    order = [("keras", 1), ("kerasopt", 1), ("keras", 2), ("kerasopt", 2)]
    if r % 2:
        order = [order[1], order[0], order[3], order[2]]
    base = {"config": str(ctx["configs"][source]), "epochs": args.epochs, "seed": SEED, "batch_size": BATCH,
            "image_size": list(IMAGE_SIZE), "num_classes": len(CLASSES)}
    runs = []
    for side, nth in order:
        label = f"{source}-r{r + 1}-{side}-{nth}"
        if side == "kerasopt":
            if nth == 1 and args.fresh_cache:
                shutil.rmtree(ctx["cache"], ignore_errors=True)
            spec = {**base, "kind": "kerasopt", "run_dir": str(ctx["runs"] / label)}
        elif source == "folder":
            spec = {**base, "kind": "keras_folder", "path": ctx["data"]["folder"]["path"]}
        else:
            spec = {**base, "kind": "keras_tfrecord", **ctx["tfrecord_split"]}
        out = run_logged(f"[round {r + 1}/{args.rounds}] {label}", spec, ctx["runs"] / "logs" / f"{label}.log",
                         {"KERASOPT_CACHE_DIR": str(ctx["cache"])}, args.timeout)
        out.update(source=source, side=side, nth=nth, round=r + 1, label=label)
        runs.append(out)
    return runs


def run_logged(title: str, spec: dict, log: Path, env: dict, timeout: float, rate: str = ",.1f") -> dict:
    """One run in its own process, with a line saying what it measured (or why it failed)."""
    print(f"{title} ...", end=" ", flush=True)
    out = finish(launch(spec, log, env), timeout)
    if out.get("ok"):
        rates = ", ".join(format(e["examples_per_sec"], rate) for e in out["epochs"])
        print(f"start-up {out['startup_s']:.1f} s, epochs {rates} ex/s, peak RSS {out['peak_rss_mb']:,.0f} MiB, "
              f"{out['wall_s']:.0f} s", flush=True)
    else:
        print(f"FAILED: {out.get('error')}", flush=True)
    return out


def tfrecord_split(info: dict) -> dict:
    """The plain side's fixed split by shard: the first 80% of the shards train, the rest validate."""
    files = sorted(info["counts"])
    k = round(0.8 * len(files))
    folder = Path(info["path"])
    return {"train_files": [str(folder / f) for f in files[:k]], "val_files": [str(folder / f) for f in files[k:]],
            "n_train": sum(info["counts"][f] for f in files[:k]), "n_val": sum(info["counts"][f] for f in files[k:])}


def machine() -> dict:
    from importlib.metadata import version

    cpu, flags, mem = "unknown", set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    # read-only: which engine files differ from HEAD, i.e. what was measured is not exactly the commit
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "kerasopt", "callbacks"], capture_output=True,
                           text=True, cwd=ROOT)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem,
            "bf16_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
            "avx512f": "avx512f" in flags,
            "versions": {p: version(p) for p in ("tensorflow", "tf-keras", "kerasopt")},
            "git_head": git.stdout.strip() or None, "git_uncommitted": dirty.stdout.split("\n")[:-1],
            "python": sys.version.split()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=12000, help="JPEGs to generate and train on (default 12000)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run (default 2; steady = epochs after the first)")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default 1)")
    ap.add_argument("--only", choices=["folder", "tfrecord"], help="one source only")
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "bench_scale")
    ap.add_argument("--shards", type=int, default=20, help="TFRecord shards (20: the by-shard split is exactly 80/20)")
    ap.add_argument("--fresh-cache", action=argparse.BooleanOptionalAction, default=True,
                    help="empty kerasopt's user cache before each first kerasopt run (default on)")
    ap.add_argument("--workers", type=int, default=2, help="processes generating data (default 2)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "scale.json")
    args = ap.parse_args()
    if args.images < 40 or args.epochs < 1 or args.rounds < 1:
        ap.error(f"need --images >= 40, --epochs >= 1, --rounds >= 1. Received: {args.images}, {args.epochs}, "
                 f"{args.rounds}")
    from scale_runs import report, summarize  # beside this file (sys.path below)

    t0 = time.perf_counter()
    sources = [args.only] if args.only else ["folder", "tfrecord"]
    root = args.data_dir.resolve() / f"n{args.images}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    ctx: dict = {"cache": args.data_dir.resolve() / "kerasopt_cache", "runs": args.data_dir.resolve() / "runs" / stamp,
                 "data": {}}
    result: dict = {"command": " ".join(["python", "benchmarks/scale.py", *sys.argv[1:]]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                    "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "model": MODEL, "batch_size": BATCH, "image_size": list(IMAGE_SIZE), "runs": []}
    ctx["data"]["folder"] = ensure_images(root / "images", args.images, args.workers)
    if "tfrecord" in sources:
        ctx["data"]["tfrecord"] = ensure_tfrecords(root / "tfrecord", root / "images", args.images, args.shards,
                                                   args.workers, args.timeout)
        ctx["tfrecord_split"] = tfrecord_split(ctx["data"]["tfrecord"])
    result["data"] = ctx["data"]
    tmp = Path(tempfile.mkdtemp(prefix="scale-configs-"))
    ctx["configs"] = write_configs(tmp, root / "images", root / "tfrecord", args.epochs)
    result["configs"] = {s: p.read_text() for s, p in ctx["configs"].items()}
    result["run_root"] = str(ctx["runs"])

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    for r in range(args.rounds):
        for source in sources:
            result["runs"] += run_source(source, r, args, ctx)
            save()
    shutil.rmtree(tmp, ignore_errors=True)
    result["summary"] = summarize(result["runs"], sources, args.epochs)
    result["total_s"] = time.perf_counter() - t0
    result["markdown"] = report(result)
    save()
    print(f"\nwrote {args.out} ({result['total_s'] / 60:.1f} min in all)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
