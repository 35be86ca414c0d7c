"""The fit pipeline: config -> data -> model -> compile -> callbacks -> model.fit -> run directory.

``kerasopt fit`` and ``kerasopt.fit()`` both call :func:`fit`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from kerasopt.config.loader import ConfigLike, load_config
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError
from kerasopt.training.rundir import RunDir, check_run_dir, create_run_dir, resolve_run_dir
from kerasopt.training.runlock import RunLock


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model, its history and where it was written."""

    model: Any
    history: dict[str, list[float]]
    run_dir: RunDir
    metrics: dict[str, Any]
    config: ExperimentConfig
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        final = self.metrics.get("final", {})
        shown = ", ".join(f"{k}={v:.4f}" for k, v in final.items() if k.startswith("val_"))
        return f"FitResult(run_dir='{self.run_dir.path}', epochs={self.metrics.get('epochs_run')}, {shown})"


def model_fingerprint(cfg: ExperimentConfig) -> str:
    """A short hash of what decides the model's variables (resume refuses a changed model)."""
    import hashlib
    import json

    payload = json.dumps(cfg.model.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def fit(
    config: ConfigLike,
    overrides: Union[Iterable[str], Mapping[str, Any], None] = None,
    *,
    run_dir: Optional[str] = None,
    resume: bool = False,
    overwrite: bool = False,
    print_fn: Optional[Callable[[str], None]] = None,
    callbacks: Iterable[Any] = (),
) -> FitResult:
    """Train the experiment described by ``config`` and write its run directory.

    ``callbacks``: extra Keras callbacks, run after kerasopt's own (e.g. ``kerasopt.bench.measure.EpochTimer``).

    Example:
        >>> result = kerasopt.fit("configs/digits_cnn.yaml", overrides={"train.epochs": 2})  # doctest: +SKIP
        >>> result.metrics["final"]["val_accuracy"]  # doctest: +SKIP
    """
    from kerasopt.distribute.tf_config import launch_rank
    from kerasopt.training.report import console_print

    t_start = time.perf_counter()
    cfg = load_config(config, overrides)
    # only rank 0 checks, writes and prints (known from horovodrun's or TF_CONFIG's environment before TF starts)
    chief = launch_rank(cfg.distribute.backend) == 0
    say = (print_fn or console_print) if chief else (lambda msg: None)
    rd = resolve_run_dir(cfg, run_dir)
    # One process per run directory: a re-submitted job or a second terminal gets exit 2, not a mixed run.
    lock = RunLock(rd.path) if chief else None
    with lock or contextlib.nullcontext():
        if chief:
            check_run_dir(rd, resume=resume, overwrite=overwrite)  # before any compute, writes nothing
        return _train(cfg, rd, chief=chief, say=say, resume=resume, overwrite=overwrite, callbacks=callbacks,
                      t_start=t_start)


def _train(cfg: ExperimentConfig, rd: RunDir, *, chief: bool, say: Callable[[str], None], resume: bool,
           overwrite: bool, callbacks: Iterable[Any], t_start: float) -> FitResult:
    """:func:`fit` after the run directory is locked and checked."""
    from kerasopt._keras import keras, tf
    from kerasopt.data.mixing import check_mixing, mixed
    from kerasopt.data.pipeline import build_datasets
    from kerasopt.distribute.strategy import choose_strategy, xla_unsupported
    from kerasopt.models import build_model
    from kerasopt.training import compile as comp
    from kerasopt.training.accumulate import add_post_step, prepare_accumulation, with_grad_accumulation
    from kerasopt.training.calibrate import resolve_decision
    from kerasopt.training.callbacks_factory import build_callbacks
    from kerasopt.training.freezing import prepare_transfer
    from kerasopt.training.loop import TrainingLoop, trim_history_csv
    from kerasopt.training.optimizers import build_optimizer
    from kerasopt.training.precision import apply_policy, decide_precision, detect_device
    from kerasopt.training.report import finish_run
    from kerasopt.training.schedules import build_schedule
    from kerasopt.training.seeding import set_seed

    choice = choose_strategy(cfg)  # first: MultiWorkerMirroredStrategy must precede every TF op
    set_seed(cfg.seed)
    # Random layers draw from tf.random.Generator objects whose state is a variable:
    # checkpoints save it, so dropout after a resume matches an uninterrupted run.
    keras.backend.experimental.enable_tf_random_generator()
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    device = detect_device()
    decision = decide_precision(cfg.train.precision, cfg.train.jit_compile, device, cfg.model.type)
    no_xla = xla_unsupported(choice, has_gpu=bool(device.gpus))
    if no_xla and decision.jit_compile:
        if cfg.train.jit_compile is True:
            raise ConfigError(f"{no_xla}; set train.jit_compile: auto or false. Received: jit_compile=True",
                              key="train.jit_compile")
        import dataclasses

        decision = dataclasses.replace(decision, jit_compile=False)

    hvd = choice.hvd
    bundle = build_datasets(cfg, shard=(choice.rank, choice.replicas) if hvd and choice.replicas > 1 else None)
    spec = bundle.spec
    from kerasopt.data.cache import data_summary

    say(data_summary(spec.extras))
    # On a CPU, auto is measured on the real model (or read from the cache): it needs the input shape.
    decision = resolve_decision(cfg, spec, device, decision, say, choice=choice)
    say(f"device: {decision.device}; precision: {decision.policy} ({decision.reason}); "
        f"XLA: {'on' if decision.jit_compile else 'off'}; strategy: {choice.name} ({choice.reason})")
    if choice.replicas > 1:
        say(f"batch: {cfg.data.batch_size} global = {cfg.data.batch_size // choice.replicas} per replica "
            f"x {choice.replicas} replicas")
    # Under Horovod, DistributedOptimizer accumulates (backward_passes_per_step) and allreduces once.
    k = 1 if hvd else cfg.train.grad_accum_steps
    steps = cfg.train.steps_per_epoch or bundle.steps_per_epoch
    apply_policy(decision.policy)
    try:
        with choice.strategy.scope():
            model = build_model(cfg, spec)
            freeze = prepare_transfer(cfg, model, say, resume=resume)
            kind = comp.head_kind(model, spec)
            check_mixing(cfg, kind, spec.input_shape, spec.input_dtype)
            one_hot = comp.wants_one_hot(cfg, kind)
            schedule = build_schedule(cfg, max(1, steps // cfg.train.grad_accum_steps), world_size=choice.replicas)
            optimizer = build_optimizer(cfg.train.optimizer, schedule)
            if hvd:
                from kerasopt.distribute.horovod import distributed_optimizer

                optimizer = distributed_optimizer(hvd, optimizer, cfg)
            # The EMA update runs inside the compiled step when there is one replica (fused below).
            fuse_ema = cfg.callbacks.ema.enabled and choice.replicas == 1
            train_model = with_grad_accumulation(model, k, wrap=fuse_ema or cfg.distill is not None)
            if cfg.distill is not None:
                from kerasopt.compress import distill

                distill.attach(train_model, distill.load_teacher(cfg.distill, spec, model), cfg.distill)
                say(f"distilling from {cfg.distill.teacher} (alpha {cfg.distill.alpha}, "
                    f"temperature {cfg.distill.temperature})")
            comp.compile_model(train_model, cfg, optimizer, comp.build_loss(cfg, kind),
                               comp.build_metrics(cfg, kind, one_hot, spec.num_classes), decision.jit_compile)
            prepare_accumulation(train_model)
        cw = comp.class_weights(cfg, spec)
        val_ds = choice.dataset(comp.prepare_labels(bundle.val, kind, one_hot, spec.num_classes))

        fingerprint = model_fingerprint(cfg)
        with choice.strategy.scope():
            cbs, named = build_callbacks(cfg, rd, train_model, fingerprint, steps=steps, resume=resume,
                                         val_data=val_ds, dist=choice)
        cbs = [*cbs, *callbacks]
        if fuse_ema and "ema" in named:
            add_post_step(train_model, named["ema"].fused_update(train_model))
        start_epoch = start_batch = 0
        if resume:
            with choice.strategy.scope():  # optimizer slots created for the restore must be distributed
                start_epoch, start_batch = _restore(rd, train_model, cbs, fingerprint, say)
            if start_batch >= steps:  # stopped after an epoch's last batch: that epoch is complete
                start_epoch, start_batch = start_epoch + 1, 0
            if hvd:  # every rank continues from rank 0's position
                from kerasopt.distribute.horovod import broadcast

                start_epoch, start_batch = broadcast(hvd, (start_epoch, start_batch))
            elif choice.sync is not None:  # multi_worker: the chief's position (collectives must line up)
                start_epoch, start_batch = map(round, choice.sync.from_chief([start_epoch, start_batch], chief))
            at = f"epoch {start_epoch + 1}" + (f", batch {start_batch + 1}" if start_batch else "")
            say(f"resuming {rd.path} at {at}")
            if chief:
                trim_history_csv(rd.history, start_epoch)
        if chief:
            create_run_dir(rd, cfg, resume=resume, overwrite=overwrite)
        loop = TrainingLoop(
            train_model, cbs, named, epochs=cfg.train.epochs, steps_per_epoch=steps,
            stream=lambda e: choice.dataset(mixed(  # mixup/cutmix (when on) after the one-hot labels
                comp.prepare_labels(bundle.train_from_epoch(e), kind, one_hot, spec.num_classes),
                cfg.data.augment, cfg.seed, first_batch=e * steps)),
            val_data=val_ds, class_weight=cw, history_csv=rd.history if chief else None,
            checkpoints=rd.checkpoints, say=say, freeze=freeze,
        )
        t_fit = time.perf_counter()
        history = loop.run(start_epoch, start_batch)
        _final_weights(cfg, named)
        loop.check_finite(model)  # a diverged run exports nothing and exits 1
        if choice.name == "multi_worker":  # export and report from a plain copy: no collective on the chief alone
            from kerasopt.distribute.multi_worker import local_copy

            model = local_copy(model, lambda: build_model(cfg, spec))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    metrics = finish_run(cfg, rd, model, history, named, decision, choice, spec, bundle,
                         initial_epoch=start_epoch, fit_seconds=time.perf_counter() - t_fit,
                         wall_seconds=time.perf_counter() - t_start, say=say, interrupted=loop.interrupted,
                         write=chief)
    if chief and not loop.interrupted:  # what `kerasopt predict` needs to prepare raw inputs as training did
        from kerasopt.training.preprocess_record import write_preprocessing

        write_preprocessing(rd.path, cfg, spec, model, say)
    if chief and cfg.report and not loop.interrupted:
        from kerasopt.reporting import write_report

        try:
            paths = write_report(rd.path, model=model, bundle=None if hvd else bundle)
            say(f"report: {paths['html']}")
        except Exception as e:  # noqa: BLE001 - a report must never cost a finished run
            say(f"report not written: {type(e).__name__}: {e}")
    extras: dict[str, Any] = {}
    if cfg.prune is not None and chief and not loop.interrupted:
        if hvd is not None or choice.replicas > 1:
            say("prune: skipped under distributed training; run `kerasopt prune CONFIG --from RUN_DIR` on one process")
        else:
            from kerasopt.compress.pipeline import run_prune

            extras["prune"] = run_prune(cfg, rd.path, overwrite=True, say=say)
    if choice.sync is not None:  # multi_worker: leave together, after the chief's exports
        choice.sync.barrier()
    return FitResult(model=model, history=history, run_dir=rd, metrics=metrics, config=cfg, extras=extras)


def _final_weights(cfg: ExperimentConfig, named: dict) -> None:
    """Put the weights the config asks for into the model: EMA (unless early stopping already
    restored the best EMA weights) or raw."""
    ema = named.get("ema")
    es = named.get("early_stopping")
    restored_best = bool(es is not None and es.stopped_epoch and es.restore_best_weights and es.best_epoch)
    if ema is not None and cfg.callbacks.ema.export == "ema" and not restored_best:
        ema.apply_ema_to_model()


def _restore(rd: RunDir, train_model, callbacks: list, fingerprint: str,
             say: Callable[[str], None]) -> tuple[int, int]:
    from kerasopt.callbacks.base import StatefulCallback
    from kerasopt.callbacks.checkpoint import newest_intact, read_meta, restore_checkpoint

    ckpt, damaged = newest_intact(rd.checkpoints)
    problems = "; ".join(f"{rd.checkpoints / name}: {why}" for name, why in damaged.items())
    if ckpt is None:
        if damaged:
            raise ConfigError(f"--resume: no intact checkpoint to resume from ({problems})")
        raise ConfigError(f"--resume: no checkpoint in {rd.checkpoints}")
    meta = read_meta(ckpt)
    if damaged:
        say(f"checkpoint damaged ({problems}); resuming from '{ckpt.name}' instead (epoch {meta.get('epoch')}, "
            f"step {meta.get('step')}), the newest intact one")
    if meta.get("fingerprint") and meta["fingerprint"] != fingerprint:
        raise ConfigError(
            f"--resume: the model section differs from the one that wrote {ckpt}; "
            "resume with the run's config.yaml or start a new run", key="model",
        )
    stateful = [cb for cb in callbacks if isinstance(cb, StatefulCallback)]
    meta = restore_checkpoint(ckpt, train_model, stateful)
    return int(meta["epoch"]), int(meta.get("batch", 0))
