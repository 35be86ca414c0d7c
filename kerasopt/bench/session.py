"""Run the variants of a config, each in a fresh process, and collect one table (no TensorFlow here).

A fresh process per variant because the precision policy and XLA state are
process-global, and so that each variant's peak host memory is its own.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from kerasopt.bench.variants import expand, label
from kerasopt.errors import ConfigError

ConfigSource = Union[str, os.PathLike, Mapping[str, Any]]


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the device itself comes from each variant's process)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def _set_dict(overrides: Sequence[str]) -> dict[str, Any]:
    from kerasopt.config.loader import parse_override

    return {".".join(parts): value for parts, value in (parse_override(s) for s in overrides)}


def plan(config: ConfigSource, overrides: Sequence[str], variant_options: Sequence[str]) -> list[dict[str, Any]]:
    """Rows to measure: the config as given, then every variant; each is validated here, before any run.

    A variant that resolves to the config as given is not run twice (``same_as`` points at row 0).

    Example:
        >>> rows = plan("configs/digits_cnn.yaml", [], ["precision=float32,mixed_bfloat16"])  # doctest: +SKIP
        >>> [r["label"] for r in rows]  # doctest: +SKIP
        ['as given', 'precision=float32', 'precision=mixed_bfloat16']
    """
    from kerasopt.config import load_config

    base_set = _set_dict(overrides)
    base = load_config(config, base_set).model_dump(mode="json")
    rows = [{"label": "as given", "variant": {}, "overrides": base_set, "same_as": None}]
    for variant in expand(list(variant_options)):
        merged = {**base_set, **variant}
        try:
            resolved = load_config(config, merged).model_dump(mode="json")
        except ConfigError as e:
            raise ConfigError(f"{e}", key=f"--variant {label(variant)}") from None
        rows.append({"label": label(variant), "variant": variant, "overrides": merged,
                     "same_as": 0 if resolved == base else None})
    return rows


def run_child(config: ConfigSource, overrides: Mapping[str, Any], *, mode: str, steps: int,
              warmup: Optional[int], timeout: Optional[float] = None) -> dict[str, Any]:
    """Measure one variant in ``python -m kerasopt.bench.child``; always returns a result dict."""
    spec = {"config": dict(config) if isinstance(config, Mapping) else str(config), "overrides": dict(overrides),
            "mode": mode, "steps": steps, "warmup": warmup}
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONUNBUFFERED": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kerasopt-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "kerasopt.bench.child", str(spec_path), str(result_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout:g} s", "bad_input": False,
                    "wall_s": time.perf_counter() - t0}
        if result_path.is_file():
            result = json.loads(result_path.read_text())
        else:
            tail = [ln for ln in (proc.stderr or "").splitlines() if ln.strip()]
            why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            result = {"ok": False, "bad_input": False,
                      "error": f"measuring process ended without a result ({why})" + (f": {tail[-1][:200]}" if tail
                                                                                      else "")}
    result["wall_s"] = time.perf_counter() - t0
    return result


def run_rows(config: ConfigSource, rows: list[dict[str, Any]], *, mode: str, steps: int, warmup: Optional[int],
             timeout: Optional[float] = None,
             on_start: Callable[[int, dict], None] = lambda i, row: None,
             on_done: Callable[[int, dict], None] = lambda i, row: None) -> list[dict[str, Any]]:
    """Measure every row in order (each in a fresh process); a failed row is recorded, the rest still run."""
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        on_start(i, row)
        if row.get("same_as") is not None and out[row["same_as"]].get("ok"):
            result = {**out[row["same_as"]], "label": row["label"], "variant": row["variant"],
                      "note": f"same config as '{rows[row['same_as']]['label']}': not run again"}
        else:
            result = {"label": row["label"], "variant": row["variant"],
                      **run_child(config, row["overrides"], mode=mode, steps=steps, warmup=warmup, timeout=timeout)}
        out.append(result)
        on_done(i, result)
    base = out[0] if out and out[0].get("ok") else None
    for r in out:
        if r.get("ok") and base is not None:
            r["vs_as_given"] = r["stats"]["examples_per_sec"] / base["stats"]["examples_per_sec"]
    return out


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest variant and how it compares with the config as given.

    Example:
        >>> summary([{"label": "as given", "ok": True, "stats": {"examples_per_sec": 100.0}},
        ...          {"label": "x", "ok": True, "stats": {"examples_per_sec": 150.0}}])["line"]
        'fastest: x at 150 examples/s, 1.50x the config as given'
    """
    ok = [r for r in results if r.get("ok")]
    failed = [r for r in results if not r.get("ok")]
    out: dict[str, Any] = {"measured": len(ok), "failed": len(failed)}
    if ok:
        best = max(ok, key=lambda r: r["stats"]["examples_per_sec"])
        rate = best["stats"]["examples_per_sec"]
        out.update(fastest=best["label"], fastest_examples_per_sec=rate)
        line = f"fastest: {best['label']} at {rate:,.0f} examples/s"
        if results[0].get("ok") and best is not results[0]:
            line += f", {rate / results[0]['stats']['examples_per_sec']:.2f}x the config as given"
        out["line"] = line
    else:
        out["line"] = "no variant could be measured"
    if failed:
        out["line"] += f"; {len(failed)} of {len(results)} failed"
    return out


def exit_code(results: list[dict[str, Any]]) -> int:
    """0 all measured; 1 a variant failed for another reason; 2 a variant was bad input for this machine."""
    failed = [r for r in results if not r.get("ok")]
    if any(not r.get("bad_input") for r in failed):
        return 1
    return 2 if failed else 0


def document(config: ConfigSource, overrides: Sequence[str], variant_options: Sequence[str], mode: str, steps: int,
             warmup: Optional[int], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON written by ``kerasopt bench``."""
    from kerasopt.version import __version__

    return {
        "kerasopt": __version__, "config": str(config) if not isinstance(config, Mapping) else dict(config),
        "set": list(overrides), "variants": list(variant_options), "mode": mode, "steps": steps,
        "warmup": warmup if warmup is not None else "auto", "machine": machine(),
        "results": results, "summary": summary(results),
    }
