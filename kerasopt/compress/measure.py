"""What the compression report measures: per-layer sparsity, file sizes, CPU latency."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def layer_sparsity(model) -> list[dict]:
    """One row per layer with weights: parameters, non-zero parameters and sparsity.

    Only kernels count toward a layer's sparsity when they exist (biases and BatchNorm
    statistics are never pruned); ``params`` counts every weight of the layer.

    Example:
        >>> rows = layer_sparsity(model)  # doctest: +SKIP
        >>> rows[0]
        {'layer': 'conv1', 'params': 160, 'nonzero': 36, 'sparsity': 0.8, ...}
    """
    rows = []
    for layer in _leaf_layers(model):
        weights = layer.get_weights()
        if not weights:
            continue
        params = int(sum(w.size for w in weights))
        nonzero = int(sum(np.count_nonzero(w) for w in weights))
        kernels = [v.numpy() for v in layer.weights if "kernel" in v.name and "quantize" not in v.name]
        k_size = int(sum(k.size for k in kernels))
        k_zero = int(sum(k.size - np.count_nonzero(k) for k in kernels))
        rows.append({
            "layer": layer.name, "type": type(layer).__name__, "params": params, "nonzero": nonzero,
            "kernel_params": k_size, "sparsity": round(k_zero / k_size, 4) if k_size else 0.0,
        })
    return rows


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers and not hasattr(layer, "pruning_vars"):
            yield from _leaf_layers(layer)
        else:
            yield layer


def totals(rows: list[dict]) -> dict:
    """Whole-model parameters, non-zeros and sparsity over the kernels.

    Example:
        >>> totals([{"params": 10, "nonzero": 4, "kernel_params": 8, "sparsity": 0.75}])
        {'params': 10, 'nonzero': 4, 'sparsity': 0.6, 'kernel_sparsity': 0.75}
    """
    params = sum(r["params"] for r in rows)
    nonzero = sum(r["nonzero"] for r in rows)
    kparams = sum(r["kernel_params"] for r in rows)
    kzero = sum(round(r["sparsity"] * r["kernel_params"]) for r in rows)
    return {"params": params, "nonzero": nonzero, "sparsity": round(1 - nonzero / params, 4) if params else 0.0,
            "kernel_sparsity": round(kzero / kparams, 4) if kparams else 0.0}


def file_sizes(path: Path | str) -> dict:
    """Raw and gzipped size in bytes of a file or a folder (a folder is tarred first).

    gzip is what a download or an app bundle applies: zeros left by pruning compress away, so
    this is where pruning shows up; the raw file of a pruned model is as large as the dense one.
    """
    path = Path(path)
    if path.is_dir():
        raw = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(path, arcname=path.name)
        data = buf.getvalue()
    else:
        data = path.read_bytes()
        raw = len(data)
    return {"raw_bytes": raw, "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


def latency(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 20,
            clock: Callable[[], float] = time.perf_counter) -> dict:
    """Median and 10th/90th percentile wall time of ``fn()`` in milliseconds, after ``warmup`` calls.

    Example (a fake clock that advances 2 ms a call):
        >>> ticks = iter(range(0, 1000, 1))
        >>> latency(lambda: None, warmup=1, repeats=3, clock=lambda: next(ticks) * 0.002)["median_ms"]
        2.0
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1000.0)
    arr = np.asarray(times)
    return {"median_ms": round(float(np.median(arr)), 3), "p10_ms": round(float(np.percentile(arr, 10)), 3),
            "p90_ms": round(float(np.percentile(arr, 90)), 3), "repeats": repeats}


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
