"""Horovod on this machine: 2-process vs 1-process throughput, and the allreduce time per step.

Usage: ``python benchmarks/horovod_scaling.py [--epochs 4]`` (needs ``make horovod``).
Runs, in one session: the digits CNN with ``distribute.backend: none``, the same
config under ``horovodrun -np 2 --gloo`` (same global batch), and an allreduce
micro-benchmark of a gradient-sized float32 buffer under ``horovodrun -np 2``.
Writes ``benchmarks/horovod_scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

ALLREDUCE = textwrap.dedent("""
    import json, statistics, sys, time
    from kerasopt.distribute.horovod import import_hvd
    import horovod.tensorflow as htf
    import tensorflow as tf
    hvd = import_hvd(); hvd.init()
    n = int(sys.argv[1]); x = tf.random.normal([n])
    for _ in range(10):
        htf.allreduce(x, op=htf.Average)
    times = []
    for i in range(200):
        t0 = time.perf_counter(); htf.allreduce(x, op=htf.Average).numpy(); times.append(time.perf_counter() - t0)
    if hvd.rank() == 0:
        print("RESULT", json.dumps({"params": n, "median_ms": 1000 * statistics.median(times)}))
""")


def fit(cmd: list[str], run_dir: Path, epochs: int) -> dict:
    args = [*cmd, "fit", str(ROOT / "configs" / "digits_cnn.yaml"), "--run-dir", str(run_dir), "--overwrite",
            "--set", f"train.epochs={epochs}", "--set", "train.verbose=0", "--set", "export.formats=[keras]",
            "--set", "callbacks.tensorboard.enabled=false", "--set", "report=false",
            "--set", "train.jit_compile=false"]  # Horovod runs without XLA here: compare like with like
    out = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if out.returncode:
        raise SystemExit(out.stdout[-2000:] + out.stderr[-2000:])
    m = json.loads((run_dir / "metrics.json").read_text())
    tput = m["throughput"]["examples_per_sec"][1:]  # the first epoch compiles
    return {"examples_per_sec": sorted(tput)[len(tput) // 2], "val_accuracy": m["final"]["val_accuracy"],
            "parameters": m["parameters"], "fit_time_s": m["fit_time_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()
    hvdrun = [str(BIN / "horovodrun"), "-np", "2", "-H", "localhost:2", "--gloo"]
    with tempfile.TemporaryDirectory() as tmp:
        one = fit([str(BIN / "kerasopt")], Path(tmp) / "one", args.epochs)
        two = fit([*hvdrun, str(BIN / "kerasopt")], Path(tmp) / "two", args.epochs)
        script = Path(tmp) / "allreduce.py"
        script.write_text(ALLREDUCE)
        out = subprocess.run([*hvdrun, sys.executable, str(script), str(one["parameters"])], capture_output=True,
                             text=True)
        line = next(ln for ln in out.stdout.splitlines() if "RESULT" in ln)
        allreduce = json.loads(line.split("RESULT", 1)[1])
    result = {"one_process": one, "two_processes": two, "allreduce": allreduce,
              "speedup_2_vs_1": two["examples_per_sec"] / one["examples_per_sec"]}
    (ROOT / "benchmarks" / "horovod_scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
