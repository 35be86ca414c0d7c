"""The fit pipeline: plan -> assemble -> callbacks -> restore -> loop -> finalize, into a run directory.

``kerasopt fit`` and ``kerasopt.fit()`` reach :func:`fit` through :mod:`kerasopt.workflow`, which chains
the steps after training (the report, pruning) as ``after`` callables: they run on the chief, before the
processes of a distributed run leave together. Nothing here branches on the distribution mode; the
backend object (:mod:`kerasopt.distribute.backend`) answers for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    interrupted: Optional[str] = None  # "SIGTERM" when a signal stopped the run (it saved and can --resume)
    assembly: Any = field(default=None, repr=False)  # what trained: backend, data bundle, training model

    def __repr__(self) -> str:
        final = self.metrics.get("final", {})
        shown = ", ".join(f"{k}={v:.4f}" for k, v in final.items() if k.startswith("val_"))
        return f"FitResult(run_dir='{self.run_dir.path}', epochs={self.metrics.get('epochs_run')}, {shown})"


After = Callable[[FitResult, Callable[[str], None]], None]


class ChiefSay:
    """Prints on the chief only: the launcher's rank 0 until the backend exists, then whoever the backend
    names (under elastic Horovod a surviving process can become the chief and print the summary)."""

    def __init__(self, print_fn: Callable[[str], None], chief: bool) -> None:
        self.print_fn = print_fn
        self.chief = chief
        self.backend: Any = None

    def __call__(self, msg: str) -> None:
        if (self.backend.is_chief if self.backend is not None else self.chief):
            self.print_fn(msg)


def fit(
    config: ConfigLike,
    overrides: Union[Iterable[str], Mapping[str, Any], None] = None,
    *,
    run_dir: Optional[str] = None,
    resume: bool = False,
    overwrite: bool = False,
    print_fn: Optional[Callable[[str], None]] = None,
    callbacks: Iterable[Any] = (),
    after: Sequence[After] = (),
) -> FitResult:
    """Train the experiment described by ``config`` and write its run directory.

    ``callbacks``: extra Keras callbacks, run after kerasopt's own (e.g. ``kerasopt.bench.measure.EpochTimer``).
    ``after``: steps ``step(result, say)`` run on the chief once a run has finished (not when a signal
    stopped it), before the processes of a distributed run leave together.

    Example:
        >>> result = kerasopt.fit("configs/digits_cnn.yaml", overrides={"train.epochs": 2})  # doctest: +SKIP
        >>> result.metrics["final"]["val_accuracy"]  # doctest: +SKIP
    """
    from kerasopt.distribute.strategy import cluster_server
    from kerasopt.distribute.tf_config import launch_rank
    from kerasopt.io.console import console_print

    t_start = time.perf_counter()
    cfg = load_config(config, overrides)
    serve = cluster_server(cfg)  # a worker or parameter server of an asynchronous cluster: it only serves
    if serve is not None:
        summary = serve(print_fn or console_print)
        return FitResult(model=None, history={}, run_dir=resolve_run_dir(cfg, run_dir), metrics=summary, config=cfg)
    # only rank 0 checks, writes and prints (known from horovodrun's or TF_CONFIG's environment before TF starts)
    chief = launch_rank(cfg.distribute.backend) == 0
    say = ChiefSay(print_fn or console_print, chief)
    rd = resolve_run_dir(cfg, run_dir)
    # One process per run directory: a re-submitted job or a second terminal gets exit 2, not a mixed run.
    lock = RunLock(rd.path) if chief else None
    with lock or contextlib.nullcontext():
        if chief:
            check_run_dir(rd, resume=resume, overwrite=overwrite)  # before any compute, writes nothing
        result = _train(cfg, rd, say=say, resume=resume, overwrite=overwrite, callbacks=callbacks, t_start=t_start)
        backend = result.assembly.backend
        if backend.is_chief and not result.interrupted:
            for step in after:
                step(result, say)
        backend.finish()  # multi_worker: leave together, after the chief's exports
    return result


def _train(cfg: ExperimentConfig, rd: RunDir, *, say: Callable[[str], None], resume: bool, overwrite: bool,
           callbacks: Iterable[Any], t_start: float) -> FitResult:
    """:func:`fit` after the run directory is locked and checked."""
    from kerasopt._keras import keras
    from kerasopt.training.assembly import assemble, plan_run
    from kerasopt.training.fingerprint import model_fingerprint

    plan = plan_run(cfg)  # first: MultiWorkerMirroredStrategy must precede every TF op
    chief = plan.backend.is_chief
    if isinstance(say, ChiefSay):
        say.backend = plan.backend  # from now on the backend says who the chief is (elastic Horovod: it moves)
    try:
        a = assemble(cfg, plan, say=say, resume=resume)
        fingerprint = model_fingerprint(cfg)

        def make_callbacks(again: bool = False) -> tuple[list, dict[str, Any]]:
            with a.backend.strategy.scope():
                return _callbacks(cfg, rd, a, fingerprint, resume=resume or again, extra=callbacks)

        cbs, named = make_callbacks()
        start_epoch, start_batch = _restore(cfg, rd, a, cbs, fingerprint, say) if resume else (0, 0)
        if chief:
            create_run_dir(rd, cfg, resume=resume, overwrite=overwrite)
        loop = _loop(cfg, rd, a, cbs, named, say)
        t_fit = time.perf_counter()
        history = a.backend.run(loop, start_epoch, start_batch, assembly=a,
                                rebuild_callbacks=lambda: make_callbacks(again=True))
        named = loop.named  # the backend may have rebuilt the callbacks (elastic Horovod after a resize)
        _final_weights(cfg, named)
        loop.check_finite(a.model)  # a diverged run exports nothing and exits 1
        model = a.exportable()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return _finalize(cfg, rd, a, model, history, named, loop, start_epoch=start_epoch,
                     fit_seconds=time.perf_counter() - t_fit, wall_seconds=time.perf_counter() - t_start, say=say)


def _callbacks(cfg: ExperimentConfig, rd: RunDir, a, fingerprint: str, *, resume: bool,
               extra: Iterable[Any]) -> tuple[list, dict[str, Any]]:
    from kerasopt.training.callbacks_factory import build_callbacks

    _, named = build_callbacks(cfg, rd, a.train_model, fingerprint, steps=a.steps, resume=resume,
                               backend=a.backend, val_data=a.val, ema=a.ema)
    named = a.backend.adapt_callbacks(named, a)
    return [*named.values(), *extra], named


def _loop(cfg: ExperimentConfig, rd: RunDir, a, cbs: list, named: dict[str, Any], say: Callable[[str], None]):
    from kerasopt.training.loop import TrainingLoop

    return TrainingLoop(
        a.train_model, cbs, named, epochs=cfg.train.epochs, steps_per_epoch=a.steps, stream=a.train_stream,
        val_data=a.backend.fit_validation(a.val), class_weight=a.class_weight,
        history_csv=rd.history if a.backend.is_chief else None, checkpoints=rd.checkpoints, say=say, freeze=a.freeze,
    )


def _finalize(cfg: ExperimentConfig, rd: RunDir, a, model, history, named: dict[str, Any], loop, *,
              start_epoch: int, fit_seconds: float, wall_seconds: float, say: Callable[[str], None]) -> FitResult:
    """Exports, ``metrics.json`` and the end-of-run summary; ``preprocess.json`` for ``kerasopt predict``."""
    from kerasopt.training.finish import finish_run

    chief = a.backend.is_chief
    metrics = finish_run(cfg, rd, model, history, named, a.decision, a.backend, a.spec, a.bundle,
                         initial_epoch=start_epoch, fit_seconds=fit_seconds, wall_seconds=wall_seconds, say=say,
                         interrupted=loop.interrupted, write=chief)
    if chief and not loop.interrupted:  # what `kerasopt predict` needs to prepare raw inputs as training did
        from kerasopt.training.preprocess_record import write_preprocessing

        write_preprocessing(rd.path, cfg, a.spec, model, say)
    return FitResult(model=model, history=history, run_dir=rd, metrics=metrics, config=cfg,
                     interrupted=loop.interrupted, assembly=a)


def _final_weights(cfg: ExperimentConfig, named: dict) -> None:
    """Put the weights the config asks for into the model: EMA (unless early stopping already
    restored the best EMA weights) or raw."""
    ema = named.get("ema")
    es = named.get("early_stopping")
    restored_best = bool(es is not None and es.stopped_epoch and es.restore_best_weights and es.best_epoch)
    if ema is not None and cfg.callbacks.ema.export == "ema" and not restored_best:
        ema.apply_ema_to_model()


def _restore(cfg: ExperimentConfig, rd: RunDir, a, cbs: list, fingerprint: str,
             say: Callable[[str], None]) -> tuple[int, int]:
    """The newest intact checkpoint read into the model and the callbacks; the position every process
    continues from (the chief's)."""
    from kerasopt.io.history import trim_history

    with a.backend.strategy.scope():  # optimizer slots created for the restore must be distributed
        epoch, batch = _read_checkpoint(cfg, rd, a.train_model, cbs, fingerprint, say)
    if batch >= a.steps:  # stopped after an epoch's last batch: that epoch is complete
        epoch, batch = epoch + 1, 0
    epoch, batch = a.backend.from_chief((epoch, batch))  # collectives must line up
    at = f"epoch {epoch + 1}" + (f", batch {batch + 1}" if batch else "")
    say(f"resuming {rd.path} at {at}")
    if a.backend.is_chief:
        trim_history(rd.history, epoch)
    return epoch, batch


def _read_checkpoint(cfg: ExperimentConfig, rd: RunDir, train_model, callbacks: list, fingerprint: str,
                     say: Callable[[str], None]) -> tuple[int, int]:
    from kerasopt.callbacks.base import StatefulCallback
    from kerasopt.callbacks.checkpoint import newest_intact, read_meta, restore_checkpoint
    from kerasopt.training.fingerprint import same_model

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
    if meta.get("fingerprint") and meta["fingerprint"] != fingerprint and not same_model(meta.get("config"), cfg):
        raise ConfigError(
            f"--resume: the model section differs from the one that wrote {ckpt}; "
            "resume with the run's config.yaml or start a new run", key="model",
        )
    stateful = [cb for cb in callbacks if isinstance(cb, StatefulCallback)]
    meta = restore_checkpoint(ckpt, train_model, stateful)
    return int(meta["epoch"]), int(meta.get("batch", 0))
