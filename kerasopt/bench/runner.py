"""Measure one config in this process: training steps (real or synthetic data) or the input pipeline alone.

The model, data, precision policy, XLA choice, optimizer, schedule and compile
come from the same functions ``kerasopt fit`` uses (``training/fit.py``), so a
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
from dataclasses import dataclass
from typing import Any, Optional

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


@dataclass
class Trainable:
    """A compiled model and the data that feeds it, built the way ``fit`` builds them."""

    model: Any
    bundle: Any
    decision: Any
    choice: Any
    kind: str
    one_hot: bool
    class_weight: Optional[dict]
    callbacks: list
    parameters: int


def build_trainable(cfg: ExperimentConfig) -> Trainable:
    """Data, precision policy, model, optimizer with schedule, compile and the fused EMA step, as in ``fit``.

    Example:
        >>> t = build_trainable(load_config("configs/digits_cnn.yaml"))  # doctest: +SKIP
        >>> t.decision.policy, t.decision.jit_compile  # doctest: +SKIP
        ('float32', True)
    """
    from kerasopt.data.pipeline import build_datasets
    from kerasopt.distribute.strategy import choose_strategy
    from kerasopt.models import build_model
    from kerasopt.training import compile as comp
    from kerasopt.training.accumulate import add_post_step, prepare_accumulation, with_grad_accumulation
    from kerasopt.training.calibrate import resolve_decision
    from kerasopt.training.optimizers import build_optimizer
    from kerasopt.training.precision import apply_policy, decide_precision, detect_device
    from kerasopt.training.schedules import build_schedule
    from kerasopt.training.seeding import set_seed

    choice = choose_strategy(cfg)  # first, as in fit: a multi-worker strategy must precede every TF op
    set_seed(cfg.seed)
    keras.backend.experimental.enable_tf_random_generator()
    device = detect_device()
    decision = decide_precision(cfg.train.precision, cfg.train.jit_compile, device, cfg.model.type)
    bundle = build_datasets(cfg)
    # as fit: on a CPU, what is auto is timed on the real model or read from the calibration cache
    decision = resolve_decision(cfg, bundle.spec, device, decision, choice=choice)
    steps = cfg.train.steps_per_epoch or bundle.steps_per_epoch
    apply_policy(decision.policy)
    with choice.strategy.scope():
        model = build_model(cfg, bundle.spec)
        kind = comp.head_kind(model, bundle.spec)
        one_hot = comp.wants_one_hot(cfg, kind)
        schedule = build_schedule(cfg, max(1, steps // cfg.train.grad_accum_steps), world_size=choice.replicas)
        optimizer = build_optimizer(cfg.train.optimizer, schedule)
        fuse_ema = cfg.callbacks.ema.enabled and choice.replicas == 1
        distill_cfg = getattr(cfg, "distill", None)
        train_model = with_grad_accumulation(model, cfg.train.grad_accum_steps,
                                             wrap=fuse_ema or distill_cfg is not None)
        if distill_cfg is not None:  # the teacher's forward pass is part of every step
            from kerasopt.compress import distill

            distill.attach(train_model, distill.load_teacher(distill_cfg, bundle.spec, model), distill_cfg)
        comp.compile_model(train_model, cfg, optimizer, comp.build_loss(cfg, kind),
                           comp.build_metrics(cfg, kind, one_hot, bundle.spec.num_classes), decision.jit_compile)
        prepare_accumulation(train_model)
    callbacks: list = []
    if fuse_ema:  # the EMA update is part of the compiled step, so it is part of the step time
        from kerasopt.callbacks.ema import WeightEMA

        ema = WeightEMA.from_config(cfg.callbacks.ema, export="raw", evaluate_raw=False)
        ema.build(train_model)
        add_post_step(train_model, ema.fused_update(train_model))
        callbacks.append(ema)
    return Trainable(train_model, bundle, decision, choice, kind, one_hot, comp.class_weights(cfg, bundle.spec),
                     callbacks, int(model.count_params()))


def training_stream(t: Trainable, synthetic: bool) -> tf.data.Dataset:
    """Endless full batches: the config's pipeline (partial last batches dropped), or one batch repeated.

    Dropping the partial batch keeps every timed step at ``batch_size`` examples and
    spares XLA a second compilation for its shape. The synthetic stream repeats one
    real batch from memory, so the model is measured without its input pipeline.
    """
    from kerasopt.training.compile import prepare_labels

    spec, batch = t.bundle.spec, t.bundle.batch_size
    real = prepare_labels(t.bundle.train_from_epoch(0), t.kind, t.one_hot, spec.num_classes)
    real = real.filter(lambda x, y: tf.equal(tf.shape(x)[0], batch))
    if not synthetic:
        return _for_strategy(t.choice, real)
    x, y = next(iter(prepare_labels(t.bundle.train, t.kind, t.one_hot, spec.num_classes)))
    reps = math.ceil(batch / int(x.shape[0]))  # a data set smaller than one batch
    x, y = tf.concat([x] * reps, 0)[:batch], tf.concat([y] * reps, 0)[:batch]
    return _for_strategy(t.choice, tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(tf.data.AUTOTUNE))


def _for_strategy(choice, ds: tf.data.Dataset) -> tf.data.Dataset:
    prepare = getattr(choice, "dataset", None)  # multi_worker shards by data; the others take ds as it is
    return prepare(ds) if prepare is not None else ds


def auto_warmup(cfg: ExperimentConfig, mode: str, steps_per_epoch: int) -> int:
    """Default warm-up steps: 10, plus one epoch when the pipeline caches (its first pass fills the cache)."""
    return DEFAULT_WARMUP + (steps_per_epoch if cfg.data.cache and mode != "synthetic" else 0)


def measure_training(cfg: ExperimentConfig, *, synthetic: bool, steps: int, warmup: Optional[int]) -> dict:
    """Train ``warmup + steps`` steps and time them; the warm-up steps are excluded from the statistics."""
    t0 = time.perf_counter()
    t = build_trainable(cfg)
    ds = training_stream(t, synthetic)
    warm = auto_warmup(cfg, "synthetic" if synthetic else "train", t.bundle.steps_per_epoch) if warmup is None \
        else warmup
    timer = StepTimer(t.bundle.batch_size, warmup=warm)
    setup_s = time.perf_counter() - t0
    try:
        t.model.fit(ds, epochs=1, steps_per_epoch=warm + steps, callbacks=[*t.callbacks, timer],
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
