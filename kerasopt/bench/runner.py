"""Measure one config in this process: training steps (real or synthetic data) or the input pipeline alone.

The model, data, precision policy, XLA choice, optimizer, schedule and compile
come from the assembly ``kerasopt fit`` trains (``training/assembly.py``), so a
measured variant is what ``fit`` would train. What ``fit`` adds around
training (run directory, checkpoints, TensorBoard, reports) is left out:
``kerasopt bench`` measures the model and its input pipeline.

Run one variant per process (:mod:`kerasopt.bench.session` does): the precision
policy is process-global and the peak host memory is the process's own.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from typing import Optional

from kerasopt._keras import gpus, keras, tf
from kerasopt.bench.measure import StepTimer
from kerasopt.bench.stats import StepRecorder
from kerasopt.config.schema import ExperimentConfig

MODES = ("train", "synthetic", "pipeline")
DEFAULT_WARMUP = 10  # steps: tracing, XLA compilation (one per input shape), tf.data autotuning


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def device_peak_mb() -> Optional[float]:
    """Peak memory TensorFlow allocated on the first GPU in MiB; None without a GPU."""
    if not gpus():
        return None
    try:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    except (ValueError, RuntimeError):
        return None


def build_trainable(cfg: ExperimentConfig):
    """The :class:`~kerasopt.training.assembly.Assembly` ``fit`` would train for ``cfg``: the same
    plan, data, precision choice, model, freezing, optimizer with schedule, compile and fused EMA step.

    Example:
        >>> a = build_trainable(load_config("configs/digits_cnn.yaml"))  # doctest: +SKIP
        >>> a.decision.policy, a.decision.jit_compile  # doctest: +SKIP
        ('float32', True)
    """
    from kerasopt.training.assembly import assemble, plan_run

    a = assemble(cfg, plan_run(cfg))
    if a.freeze is not None:  # the first phase of a two-phase fine-tune, as fit's loop starts it
        a.freeze.apply(a.train_model, 0)
    return a


def training_stream(a, synthetic: bool) -> tf.data.Dataset:
    """Endless full batches: ``fit``'s training stream (partial last batches dropped), or one batch repeated.

    Dropping the partial batch keeps every timed step at ``batch_size`` examples and
    spares XLA a second compilation for its shape. The synthetic stream repeats one
    real batch from memory, so the model is measured without its input pipeline.
    """
    real = a.train_stream(0, full_batches=True)
    if not synthetic:
        return real
    batch = a.bundle.batch_size
    x, y = next(iter(a.train_stream(0)))
    reps = math.ceil(batch / int(x.shape[0]))  # a data set smaller than one batch
    x, y = tf.concat([x] * reps, 0)[:batch], tf.concat([y] * reps, 0)[:batch]
    return a.backend.dataset(tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(tf.data.AUTOTUNE))


def auto_warmup(cfg: ExperimentConfig, mode: str, steps_per_epoch: int) -> int:
    """Default warm-up steps: 10, plus one epoch when the pipeline caches (its first pass fills the cache)."""
    return DEFAULT_WARMUP + (steps_per_epoch if cfg.data.cache and mode != "synthetic" else 0)


def measure_training(cfg: ExperimentConfig, *, synthetic: bool, steps: int, warmup: Optional[int]) -> dict:
    """Train ``warmup + steps`` steps and time them; the warm-up steps are excluded from the statistics."""
    t0 = time.perf_counter()
    t = build_trainable(cfg)
    ds = training_stream(t, synthetic)
    callbacks = [t.ema] if t.ema is not None else []  # its update is in the step (fused) or runs per batch
    warm = auto_warmup(cfg, "synthetic" if synthetic else "train", t.bundle.steps_per_epoch) if warmup is None \
        else warmup
    timer = StepTimer(t.bundle.batch_size, warmup=warm)
    setup_s = time.perf_counter() - t0
    try:
        t.model.fit(ds, epochs=1, steps_per_epoch=warm + steps, callbacks=[*callbacks, timer],
                    class_weight=t.class_weight, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {
        "stats": timer.stats().as_dict(), "setup_s": setup_s, "batch_size": t.bundle.batch_size,
        "precision": t.decision.policy, "jit_compile": t.decision.jit_compile, "device": t.decision.device,
        "precision_reason": t.decision.reason,
        "parameters": t.parameters, "input_shape": list(t.bundle.spec.input_shape),
    }


def measure_pipeline(cfg: ExperimentConfig, *, steps: int, warmup: Optional[int], clock=time.perf_counter) -> dict:
    """Pull ``warmup + steps`` batches from the training stream ``fit`` uses, with no model."""
    from kerasopt.data.pipeline import build_datasets

    t0 = clock()
    bundle = build_datasets(cfg)
    warm = auto_warmup(cfg, "pipeline", bundle.steps_per_epoch) if warmup is None else warmup
    it = iter(bundle.train_from_epoch(0))
    rec = StepRecorder(warm, clock)
    setup_s = clock() - t0
    rec.epoch_begin()
    for _ in range(warm + steps):
        rec.batch_begin()
        x, _y = next(it)
        rec.batch_end(int(x.shape[0]))
    return {"stats": rec.stats().as_dict(), "setup_s": setup_s, "batch_size": bundle.batch_size,
            "input_shape": list(bundle.spec.input_shape)}


def run(spec: dict) -> dict:
    """One variant: ``{"config", "overrides", "mode", "steps", "warmup"}`` -> measurements and memory.

    Example:
        >>> run({"config": "configs/digits_cnn.yaml", "overrides": ["train.precision=float32"],
        ...      "mode": "synthetic", "steps": 20, "warmup": 3})["stats"]["examples_per_sec"]  # doctest: +SKIP
    """
    from kerasopt.config import load_config

    mode = spec.get("mode", "train")
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    cfg = load_config(spec["config"], spec.get("overrides") or [])
    steps, warmup = int(spec.get("steps", 50)), spec.get("warmup")
    if mode == "pipeline":
        out = measure_pipeline(cfg, steps=steps, warmup=warmup)
    else:
        out = measure_training(cfg, synthetic=mode == "synthetic", steps=steps, warmup=warmup)
    out.update(mode=mode, peak_rss_mb=peak_rss_mb(), device_peak_mb=device_peak_mb())
    return out
