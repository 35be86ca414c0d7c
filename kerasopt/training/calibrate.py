"""``precision: auto`` and ``jit_compile: auto`` on a CPU: time the real model instead of guessing.

On one CPU bfloat16 trained a digits CNN 1.3x faster and a 224x224 CNN 4.7x slower
(ARCHITECTURE.md §1): no fixed rule fits. Each candidate trains a few steps of the real
model on a synthetic batch of the real shape; the fastest wins and is cached in the user
cache folder, so the next run decides at once. GPUs keep ``decide_precision``'s rules.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.training.precision import RECURRENT_MODELS, DeviceInfo, PrecisionDecision, apply_policy, read_cpu_model
from kerasopt.usercache import cache_dir, digest, read_json, write_json

ENV_VAR = "KERASOPT_AUTOTUNE"  # "0" turns calibration off for this process (the test suite does)
BUDGET_S = 30.0  # the whole calibration; a candidate that would end past it is not started
PER_CANDIDATE_S = 3.0
WARMUP_STEPS = 2  # the first step traces (and XLA-compiles) the train function
MIN_STEPS, MAX_STEPS = 2, 8  # timed rounds: at least MIN_STEPS; MAX_STEPS once MIN_TIMED_S has passed
MIN_TIMED_S = 0.5
_CPU_FLAG_MARKS = ("avx", "amx", "bf16", "fma", "vnni")  # the flags that change which kernels run
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    """One precision policy and XLA setting to time."""

    policy: str
    jit: bool

    @property
    def label(self) -> str:
        return self.policy + ("+XLA" if self.jit else "")


@dataclass
class Calibration:
    """What a calibration measured: examples/s per candidate label, failures, and the pick."""

    measured: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def best(self) -> Optional[str]:
        return max(self.measured, key=self.measured.__getitem__) if self.measured else None


Step = Callable[[], None]  # one training step that returns when it is done
Prepare = Callable[[ExperimentConfig, DataSpec, Candidate], Step]
Clock = Callable[[], float]


def candidates(cfg: ExperimentConfig, device: DeviceInfo) -> list[Candidate]:
    """The settings to time: what is ``auto`` varies, what the config fixes does not.

    Example: ``precision: auto, jit_compile: auto`` on a CPU with avx512_bf16 gives float32,
    mixed_bfloat16, float32+XLA, mixed_bfloat16+XLA; an LSTM drops the XLA ones.
    """
    t = cfg.train
    # emulated bfloat16 (no bf16 instructions) is ~5x slower: not worth a try
    policies = ([t.precision] if t.precision != "auto" else
                ["float32", "mixed_bfloat16"] if device.cpu_bf16 else ["float32"])
    jits = ([bool(t.jit_compile)] if t.jit_compile != "auto" else
            [False] if cfg.model.type in RECURRENT_MODELS else [False, True])
    # XLA ones last: their compilation is slow on a CPU, so a spent budget skips them first
    return [Candidate(p, j) for j in jits for p in policies]


def calibration_key(cfg: ExperimentConfig, spec: DataSpec, device: DeviceInfo, cands: list[Candidate],
                    tf_version: Optional[str] = None) -> dict[str, Any]:
    """Everything a measurement depends on; a change in any of them is a cache miss.

    Example: the same config with ``data.batch_size`` 64 instead of 128 gets a new key.
    """
    from kerasopt._keras import tf
    from kerasopt.training.fingerprint import model_fingerprint

    return {
        "version": _CACHE_VERSION, "cpu": read_cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_flags": sorted(f for f in device.cpu_flags if any(m in f for m in _CPU_FLAG_MARKS)),
        "tensorflow": tf_version or tf.__version__, "model": model_fingerprint(cfg), "batch_size": cfg.data.batch_size,
        "input_shape": list(spec.input_shape), "input_dtype": spec.input_dtype, "num_classes": spec.num_classes,
        "candidates": [c.label for c in cands], "optimizer": cfg.train.optimizer.type,
    }


def synthetic_batch(spec: DataSpec, batch: int, kind: str, one_hot: bool, seed: int = 0) -> tuple:
    """Random inputs of the spec's shape and dtype and labels the head accepts (numpy arrays)."""
    import numpy as np

    rng = np.random.default_rng(seed)  # its own generator: the run's seeded streams stay untouched
    shape = (batch, *spec.input_shape)
    x = (rng.integers(0, max(2, spec.vocab_size or 2), size=shape, dtype=np.int32) if spec.input_dtype == "int32"
         else rng.standard_normal(shape, dtype=np.float32))
    if kind == "regression":
        y = rng.standard_normal((batch, spec.label_dim), dtype=np.float32)
    elif kind == "binary":
        y = rng.integers(0, 2, size=(batch, 1)).astype(np.float32)
    else:
        ids = rng.integers(0, spec.num_classes or 2, size=batch)
        y = np.eye(spec.num_classes or 2, dtype=np.float32)[ids] if one_hot else ids.astype(np.int32)
    return x, y


def calibration_batch(cfg: ExperimentConfig, spec: DataSpec) -> int:
    """Examples per timed step: ``data.batch_size``, or the training split when it is smaller."""
    return max(1, min(cfg.data.batch_size, spec.num_train or cfg.data.batch_size))


def prepare_candidate(cfg: ExperimentConfig, spec: DataSpec, cand: Candidate) -> Step:
    """Build and compile the real model under ``cand`` as ``fit`` does, warm it up, return one training step.

    Gradient accumulation, EMA and distillation are left out; the step trains on one fixed
    synthetic batch. Leaves the float32 policy behind.
    """
    from kerasopt._keras import tf
    from kerasopt.models import build_model
    from kerasopt.training import compile as comp
    from kerasopt.training.optimizers import build_optimizer
    from kerasopt.training.schedules import build_schedule

    batch = calibration_batch(cfg, spec)
    apply_policy(cand.policy)
    try:
        model = build_model(cfg, spec)
        steps = max(1, spec.num_train // batch // cfg.train.grad_accum_steps)
        optimizer = build_optimizer(cfg.train.optimizer, build_schedule(cfg, steps))
        # one batch per call, so every call is one timed step
        kind, one_hot = comp.compile_for(model, cfg, spec, optimizer, jit_compile=cand.jit, steps_per_execution=1)
    finally:
        apply_policy("float32")
    data = iter(tf.data.Dataset.from_tensors(synthetic_batch(spec, batch, kind, one_hot)).repeat())
    train_fn = model.make_train_function()

    def step() -> None:
        float(train_fn(data)["loss"])  # reading the loss waits for the step

    for _ in range(WARMUP_STEPS):
        step()
    return step


def _first_line(e: Exception) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:120]}"


def calibrate(cfg: ExperimentConfig, spec: DataSpec, cands: list[Candidate], *, prepare: Prepare = prepare_candidate,
              clock: Clock = time.perf_counter, budget_s: float = BUDGET_S) -> Calibration:
    """Prepare the candidates within ``budget_s``, then time them in rounds of one step each.

    Rounds put every candidate under the same load from other processes, which changes by the
    second on a shared CPU. Timing stops after ``MAX_STEPS`` rounds and ``MIN_TIMED_S``, after
    ``PER_CANDIDATE_S`` per candidate, or at the budget (at least ``MIN_STEPS`` rounds). A
    candidate that raises is recorded and dropped. Example: steps of 128/173 s -> 173 ex/s.
    """
    from kerasopt._keras import keras

    out, ready, took = Calibration(), {}, {}  # took: seconds the last XLA off/on candidate needed to prepare
    deadline = clock() + budget_s
    try:
        for cand in cands:
            left = deadline - clock()
            if left <= 0 or left < took.get(cand.jit, 0.0):  # would overrun the budget: not started
                out.skipped.append(cand.label)
                continue
            t0 = clock()
            try:
                ready[cand.label] = prepare(cfg, spec, cand)
            except ConfigError as e:
                if e.key == "model.weights":  # weights that cannot be had fail every candidate, and the run
                    raise
                out.failed[cand.label] = _first_line(e)
            except Exception as e:  # noqa: BLE001 - a candidate that cannot run here is simply not chosen
                out.failed[cand.label] = _first_line(e)
            took[cand.jit] = clock() - t0
        times: dict[str, list[float]] = {label: [] for label in ready}
        start, rounds = clock(), 0
        while ready:
            for label in list(ready):
                t0 = clock()
                try:
                    ready[label]()
                    times[label].append(clock() - t0)
                except Exception as e:  # noqa: BLE001
                    out.failed[label] = _first_line(e)
                    del ready[label], times[label]
            rounds, spent = rounds + 1, clock() - start
            if rounds >= MIN_STEPS and (spent >= PER_CANDIDATE_S * len(cands) or clock() >= deadline
                                        or (rounds >= MAX_STEPS and spent >= MIN_TIMED_S)):
                break
    finally:
        ready.clear()  # the models go before the session they were built in
        gc.collect()
        keras.backend.clear_session()
        apply_policy("float32")
    batch = calibration_batch(cfg, spec)
    out.measured = {c.label: batch / statistics.median(times[c.label]) for c in cands if times.get(c.label)}
    return out


def _decision(static: PrecisionDecision, cal: Calibration, cands: list[Candidate], cached: bool) -> PrecisionDecision:
    best = next(c for c in cands if c.label == cal.best)
    figures = ", ".join(f"{k} {v:,.0f} ex/s" if v >= 100 else f"{k} {v:.3g} ex/s" for k, v in cal.measured.items())
    notes = [f"{k} failed ({v})" for k, v in cal.failed.items()]
    notes += [f"{k} not measured (time budget)" for k in cal.skipped]
    reason = f"measured{' (cached)' if cached else ''}: {figures} -> {best.label}"
    reason += "".join(f"; {n}" for n in notes)
    return dataclasses.replace(static, policy=best.policy, jit_compile=best.jit, reason=reason,
                               measured=dict(cal.measured))


def calibrate_in_child(cfg: ExperimentConfig, spec: DataSpec, cands: list[Candidate], budget_s: float) -> Calibration:
    """:func:`calibrate` in a fresh Python process, so its models, XLA compilations and their memory
    leave with it: in the training process they added ~1.7 GB to the peak RSS of a 224x224 CNN run.

    Falls back to calibrating in this process when the child cannot run.
    """
    import pickle
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kerasopt-calibrate-") as tmp:
        request, result = Path(tmp) / "request.pkl", Path(tmp) / "result.pkl"
        request.write_bytes(pickle.dumps((cfg, spec, cands, budget_s)))
        try:
            proc = subprocess.run([sys.executable, "-m", "kerasopt.training.calibrate", str(request), str(result)],
                                  capture_output=True, text=True, timeout=4 * budget_s + 120)
            if proc.returncode == 0 and result.exists():
                return pickle.loads(result.read_bytes())
        except (OSError, subprocess.SubprocessError, pickle.UnpicklingError):
            pass
    return calibrate(cfg, spec, cands, budget_s=budget_s)


def why_not_measured(cfg: ExperimentConfig, choice: Any = None) -> Optional[str]:
    """Why calibration is off for this run (autotune off, ``KERASOPT_AUTOTUNE=0``, distributed), or None."""
    if not cfg.train.autotune:
        return "train.autotune is false"
    if os.environ.get(ENV_VAR, "").strip().lower() in ("0", "false", "no", "off"):
        return f"{ENV_VAR}={os.environ[ENV_VAR]}"
    if choice is not None and (choice.replicas > 1 or choice.name in ("horovod", "multi_worker",
                                                                        "parameter_server")):
        return f"{choice.name} training (every rank must run the same precision)"
    return None


def _cache_lookup(key: dict[str, Any], cands: list[Candidate]) -> tuple[Optional[Path], Optional[Calibration]]:
    """The cache file for ``key`` (None when the folder is not writable) and what it holds, if usable."""
    try:
        path = cache_dir("calibration") / f"{digest(key)}.json"
    except ConfigError:  # an unwritable cache costs a re-measurement next time, never the run
        return None, None
    data = read_json(path)
    if not isinstance(data, dict) or not data.get("measured") or not set(data["measured"]) <= {c.label for c in cands}:
        return path, None
    measured = {c.label: float(data["measured"][c.label]) for c in cands if c.label in data["measured"]}
    return path, Calibration(measured, dict(data.get("failed") or {}), list(data.get("skipped") or []))


def resolve_decision(cfg: ExperimentConfig, spec: DataSpec, device: DeviceInfo, static: PrecisionDecision,
                     say: Callable[[str], None] = lambda msg: None, *, choice: Any = None,
                     prepare: Prepare = prepare_candidate, clock: Clock = time.perf_counter,
                     budget_s: float = BUDGET_S) -> PrecisionDecision:
    """The precision/XLA decision ``fit`` uses: ``static`` (from ``decide_precision``), measured on a CPU.

    Measures only when no GPU is visible, more than one candidate is left, calibration is on
    (:func:`why_not_measured`) and the cache has no answer. Example: a 224x224 CNN with
    ``precision: auto`` gets ``reason="measured: float32 173 ex/s, mixed_bfloat16 37 ex/s -> float32"``
    and ``measured={"float32": 173.0, "mixed_bfloat16": 37.0}``; the next run's reason says "(cached)".
    """
    from kerasopt.training.seeding import set_seed

    cands = candidates(cfg, device)
    if device.gpus or len(cands) < 2:
        return static
    off = why_not_measured(cfg, choice)
    if off:
        return dataclasses.replace(static, reason=f"{static.reason}; static rule, not measured: {off}")
    key = calibration_key(cfg, spec, device, cands)
    path, cached = _cache_lookup(key, cands)
    if cached is not None:
        return _decision(static, cached, cands, cached=True)
    say(f"calibrating precision/XLA on this CPU (<= {budget_s:g} s, cached for next runs) ...")
    if prepare is prepare_candidate and clock is time.perf_counter:
        cal = calibrate_in_child(cfg, spec, cands, budget_s)
    else:  # injected timing (tests): in this process
        cal = calibrate(cfg, spec, cands, prepare=prepare, clock=clock, budget_s=budget_s)
    set_seed(cfg.seed)  # the candidates drew random weights: the real model starts as an uncalibrated run's
    if cal.best is None:
        why = "; ".join(f"{k}: {v}" for k, v in cal.failed.items()) or "nothing measured"
        return dataclasses.replace(static, reason=f"{static.reason}; static rule, calibration failed ({why})")
    if path is not None:
        write_json(path, {"key": key, "measured": cal.measured, "failed": cal.failed, "skipped": cal.skipped,
                          "choice": cal.best, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return _decision(static, cal, cands, cached=False)


if __name__ == "__main__":  # the child of calibrate_in_child: request.pkl -> result.pkl
    import pickle
    import sys

    from kerasopt.training import calibrate as module  # pickle the real module's classes, not __main__'s

    cfg_, spec_, cands_, budget_ = pickle.loads(Path(sys.argv[1]).read_bytes())
    Path(sys.argv[2]).write_bytes(pickle.dumps(module.calibrate(cfg_, spec_, cands_, budget_s=budget_)))
