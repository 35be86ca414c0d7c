"""Tables bigger than memory: kerasopt's table cache against plain Keras's ``make_csv_dataset``, side by side.

Usage::

    python benchmarks/tabular_scale.py                        # 1M and 10M rows (est. 25-30 min, 2 cores)
    python benchmarks/tabular_scale.py --rows 200000 --plain-epochs 1 --epochs 1   # the harness, in minutes

Data (generated once into ``--data-dir``, default ``.cache/bench_tabular``, and reused): ``--rows``
rows of 30 float32 columns ``f0..f29`` (standard normal) and a string label ``a``/``b``/``c``, the
argmax of a fixed random linear map plus unit noise (the noise ceiling is ~0.91 accuracy). Each size
is written as CSV (pyarrow's writer: 10M rows are 3.3 GB) and as Parquet with the same rows.

Runs, each a new process (``scale_runs.py``, so peak RSS is that run's ``ru_maxrss``), per size:

- plain Keras on the CSV, as the TensorFlow CSV guide teaches for files too big for memory:
  ``make_csv_dataset`` (batch 1024, its default shuffle buffer), the columns stacked, a
  ``Normalization`` layer adapted on 100 batches, the same MLP; no validation (the guide has none,
  every row trains; kerasopt also validates 20% in each epoch, which this leaves against kerasopt);
- kerasopt on the CSV, then on the Parquet file, each twice: a first run that parses the file into
  an emptied table cache (``KERASOPT_CACHE_DIR/tables`` under ``--data-dir``), and a second run in a
  new process that reuses it. The config gives data, model and epochs; every other key is at its
  default. The precision/XLA calibration (``precision: auto``, once per machine, model and batch
  size) is done by an unmeasured warm-up run first, so a first run's extra start-up is the parse.

Model: ``mlp`` with ``hidden_units: [64, 32]`` (Dense, BatchNorm, ReLU), ``normalize: standard``,
batch 1024, Adam 1e-3. Measured: whole-epoch examples/s (training examples / epoch begin to epoch
end, validation and epoch-end work included); kerasopt's steady rate is the median of the epochs
after the first, plain Keras's is its epoch(s) (``--plain-epochs``, default 1: a 10M-row epoch of
plain Keras takes ~9 minutes here). Start-up: process launch to the first training step.

Targets (issue 18): kerasopt >= 5x plain Keras's examples/s; peak RSS <= 1.5 GB on 10M rows;
second-run start-up <= 10% of the first's. Writes ``--out`` (default ``benchmarks/tabular_scale.json``)
and prints the tables as Markdown.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import finish, launch, machine, run_logged  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
COLUMNS, CLASSES, BATCH, SEED = 30, ["a", "b", "c"], 1024, 0
MODEL = {"type": "mlp", "hidden_units": [64, 32]}
RSS_LIMIT_MB, SPEED_RATIO, STARTUP_RATIO = 1536.0, 5.0, 0.10


def ensure_table(folder: Path, rows: int) -> dict:
    """``t<rows>.csv`` and ``.parquet`` with the same rows; regenerated unless its manifest matches."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    stem = folder / f"t{rows}"
    manifest = stem.with_suffix(".json")
    want = {"rows": rows, "columns": COLUMNS, "seed": SEED, "version": 1}
    csv_path, pq_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    if manifest.is_file() and json.loads(manifest.read_text()).get("want") == want \
            and csv_path.is_file() and pq_path.is_file():
        return json.loads(manifest.read_text())
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    w = rng.normal(size=(COLUMNS, len(CLASSES)))
    schema = pa.schema([(f"f{i}", pa.float32()) for i in range(COLUMNS)] + [("label", pa.string())])
    with pcsv.CSVWriter(csv_path, schema) as wcsv, pq.ParquetWriter(pq_path, schema) as wpq:
        for start in range(0, rows, 250_000):
            m = min(250_000, rows - start)
            x = rng.normal(size=(m, COLUMNS)).astype(np.float32)
            y = np.array(CLASSES)[(x @ w + rng.normal(size=(m, len(CLASSES)))).argmax(1)]
            block = pa.table({**{f"f{i}": x[:, i] for i in range(COLUMNS)}, "label": y}, schema=schema)
            wcsv.write_table(block)
            wpq.write_table(block)
    info = {"want": want, "csv": str(csv_path), "parquet": str(pq_path),
            "csv_mb": csv_path.stat().st_size / 2**20, "parquet_mb": pq_path.stat().st_size / 2**20,
            "seconds": time.perf_counter() - t0}
    manifest.write_text(json.dumps(info, indent=1))
    return info


def write_config(tmp: Path, rows: int, fmt: str, path: str, epochs: int) -> Path:
    import yaml

    out = tmp / f"tab{rows}_{fmt}.yaml"
    out.write_text(yaml.safe_dump({
        "name": f"tab{rows}_{fmt}", "seed": SEED,
        "data": {"source": fmt, "path": path, "label_column": "label", "normalize": "standard", "batch_size": BATCH},
        "model": MODEL, "train": {"epochs": epochs}}, sort_keys=False))
    return out


def _steady(run: dict, plain: bool) -> float | None:
    rates = [e["examples_per_sec"] for e in run.get("epochs", [])]
    if not rates:
        return None
    return statistics.median(rates if plain or len(rates) == 1 else rates[1:])


def _own(run: dict) -> float | None:
    """Start-up less the interpreter's and the TensorFlow import's: what the run itself did before step 1."""
    return run["startup_s"] - run["interpreter_s"] - run["import_s"] if run.get("startup_s") else None


def _table_line(run: dict) -> str:
    """kerasopt's printed table decision (parsed or reused, in memory or streamed)."""
    return next((ln for ln in run.get("printed", []) if ln.startswith("data: table")), "")


def run_size(rows: int, args, tmp: Path, cache: Path, runs_dir: Path) -> list[dict]:
    info = ensure_table(args.data_dir, rows)
    n_train = rows  # the plain side trains on every row
    out = []

    def go(label: str, spec: dict) -> dict:
        r = run_logged(f"[{rows:,} rows] {label}", spec, runs_dir / "logs" / f"{rows}-{label}.log",
                       {"KERASOPT_CACHE_DIR": str(cache)}, args.timeout, rate=",.0f")
        r.update(rows=rows, label=label)
        out.append(r)
        return r

    plain_cfg = write_config(tmp, rows, "csv", info["csv"], args.plain_epochs)
    go("keras-csv", {"kind": "keras_csv", "config": str(plain_cfg), "path": info["csv"], "label": "label",
                     "class_names": CLASSES, "batch_size": BATCH, "epochs": args.plain_epochs, "seed": SEED,
                     "n_train": n_train, "adapt_batches": 100})
    for fmt in args.formats:
        cfg = write_config(tmp, rows, fmt, info[fmt], args.epochs)
        shutil.rmtree(cache / "tables", ignore_errors=True)  # the first run parses the file
        for nth in (1, 2):
            go(f"kerasopt-{fmt}-{nth}", {"kind": "kerasopt", "config": str(cfg), "epochs": args.epochs,
                                         "run_dir": str(runs_dir / f"{rows}-{fmt}-{nth}")})
    return out


def summarize(runs: list[dict], sizes: list[int], formats: list[str]) -> dict:
    table, targets = [], []
    for rows in sizes:
        mine = {r["label"]: r for r in runs if r["rows"] == rows and r.get("ok")}
        plain = mine.get("keras-csv")
        base = _steady(plain, True) if plain else None
        if plain:
            table.append({"rows": rows, "run": "plain Keras, CSV", "examples_per_sec": base, "ratio": 1.0,
                          "peak_rss_mb": plain["peak_rss_mb"], "startup_s": plain["startup_s"],
                          "startup_own_s": _own(plain),
                          "val_accuracy": None, "decision": "make_csv_dataset, Normalization adapted on 100 batches"})
        for fmt in formats:
            first, second = mine.get(f"kerasopt-{fmt}-1"), mine.get(f"kerasopt-{fmt}-2")
            for nth, r in ((1, first), (2, second)):
                if r is None:
                    continue
                rate = _steady(r, False)
                table.append({"rows": rows, "run": f"kerasopt, {fmt.upper() if fmt == 'csv' else 'Parquet'}, "
                                                   f"{'first' if nth == 1 else 'second'} run",
                              "examples_per_sec": rate, "ratio": rate / base if rate and base else None,
                              "peak_rss_mb": r["peak_rss_mb"], "startup_s": r["startup_s"], "startup_own_s": _own(r),
                              "val_accuracy": r.get("val_accuracy"), "decision": _table_line(r)})
            rates = [x for x in (_steady(first, False) if first else None, _steady(second, False) if second else None)
                     if x]
            ratio = statistics.median(rates) / base if rates and base else None
            targets.append({"target": f"{rows:,} rows, {fmt}: kerasopt >= {SPEED_RATIO:g}x plain Keras's examples/s",
                            "value": ratio, "met": ratio is not None and ratio >= SPEED_RATIO})
            if first and second:
                s = second["startup_s"] / first["startup_s"]
                targets.append({"target": f"{rows:,} rows, {fmt}: second-run start-up <= 10% of the first's",
                                "value": s, "met": s <= STARTUP_RATIO,
                                "detail": f"{second['startup_s']:.1f} s / {first['startup_s']:.1f} s; without the "
                                          f"interpreter and the TensorFlow import {_own(second):.1f} s / "
                                          f"{_own(first):.1f} s = {_own(second) / _own(first):.2f}"})
            if rows >= 10_000_000:
                peak = max((r["peak_rss_mb"] for r in (first, second) if r), default=None)
                targets.append({"target": f"{rows:,} rows, {fmt}: kerasopt's peak RSS <= 1.5 GB", "value": peak,
                                "met": peak is not None and peak <= RSS_LIMIT_MB, "unit": "MiB"})
    return {"table": table, "targets": targets}


def report(result: dict) -> str:
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    md = ["| rows | run | whole-epoch ex/s | x plain | peak RSS MiB | start-up s | of which after the import, s "
          "| val_accuracy |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for t in result["summary"]["table"]:
        md.append(f"| {t['rows']:,} | {t['run']} | {fmt(t['examples_per_sec'], ',.0f')} | {fmt(t['ratio'], '.1f')} | "
                  f"{fmt(t['peak_rss_mb'], ',.0f')} | {fmt(t['startup_s'], '.1f')} | "
                  f"{fmt(t['startup_own_s'], '.1f')} | {fmt(t['val_accuracy'], '.4f')} |")
    md += ["", "| target | value | met |", "|---|---|---|"]
    for t in result["summary"]["targets"]:
        v = t["value"]
        shown = "-" if v is None else f"{v:,.0f} {t['unit']}" if t.get("unit") else f"{v:.2f}"
        md.append(f"| {t['target']} | {shown}{' (' + t['detail'] + ')' if t.get('detail') else ''} | "
                  f"{'yes' if t['met'] else 'NO'} |")
    md += ["", "kerasopt's decisions, as printed:"]
    md += [f"- {t['rows']:,} {t['run']}: `{t['decision']}`" for t in result["summary"]["table"]
           if t["decision"] and "kerasopt" in t["run"]]
    text = "\n".join(md)
    print(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--formats", nargs="+", choices=["csv", "parquet"], default=["csv", "parquet"])
    ap.add_argument("--epochs", type=int, default=2, help="kerasopt epochs per run (steady = after the first)")
    ap.add_argument("--plain-epochs", type=int, default=1, help="plain Keras epochs per run (default 1)")
    ap.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "bench_tabular")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tabular_scale.json")
    args = ap.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="tabular-"))
    cache, runs_dir = args.data_dir / "kerasopt-cache", tmp / "runs"
    result = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "command": "python benchmarks/tabular_scale.py " + " ".join(sys.argv[1:]), "args": {
                  "rows": args.rows, "formats": args.formats, "epochs": args.epochs,
                  "plain_epochs": args.plain_epochs}, "runs": []}
    try:
        # Precision/XLA calibration (kerasopt's first run on a machine, cached per model and batch):
        # done here, unmeasured, so that first-run start-ups below are the table's parse, not this.
        shutil.rmtree(cache, ignore_errors=True)
        info = ensure_table(args.data_dir, min(args.rows))
        cfg = write_config(tmp, min(args.rows), "csv", info["csv"], 1)
        print("warm-up (calibration) ...", flush=True)
        finish(launch({"kind": "kerasopt", "config": str(cfg), "epochs": 1, "run_dir": str(runs_dir / "warm-up"),
                       "overrides": {"data.max_examples": 20000}}, runs_dir / "logs" / "warm-up.log",
                      {"KERASOPT_CACHE_DIR": str(cache)}), args.timeout)
        for rows in args.rows:
            result["runs"] += run_size(rows, args, tmp, cache, runs_dir)
            result["summary"] = summarize(result["runs"], args.rows, args.formats)
            args.out.write_text(json.dumps(result, indent=1, default=str))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in result["runs"]:
        r.pop("metrics", None)
    result["markdown"] = report(result)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
