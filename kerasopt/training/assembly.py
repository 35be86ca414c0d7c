"""The one assembly path: a config and a backend -> a compiled, trainable model with its data.

TF Model Garden calls this a ``Task``. ``kerasopt fit``, ``kerasopt bench``, distillation and tune
trials all train what :func:`assemble` returns, so what ``bench`` measures is what ``fit`` runs; ``fit``
adds only the run directory, the callbacks and the resume around it. ``kerasopt evaluate`` and the
prune/quantize verbs start from a model that exists already: :func:`assemble_model` gives them the
same data, labels, loss and metrics.

Two steps, because the backend must exist before TensorFlow runs any op
(MultiWorkerMirroredStrategy configures the eager context):

1. :func:`plan_run`: backend, seeds, determinism, the device and the static precision/XLA choice;
2. :func:`assemble`: data (sharded as the backend says), the measured precision choice on a CPU,
   the model (pretrained weights, warm start, freezing), loss, metrics, optimizer with its schedule,
   distillation, gradient accumulation, the fused EMA update, compile.

Example:
    >>> plan = plan_run(cfg)  # doctest: +SKIP
    >>> a = assemble(cfg, plan)  # doctest: +SKIP
    >>> a.train_model.fit(a.train_stream(0), steps_per_epoch=a.steps, validation_data=a.val)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from kerasopt._keras import keras, tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.distribute.backend import Backend
from kerasopt.errors import ConfigError


def _silent(msg: str) -> None:
    return None


@dataclass
class RunPlan:
    """What is decided before any data is read: the backend, the device and the static precision choice."""

    backend: Backend
    device: Any
    decision: Any


def plan_run(cfg: ExperimentConfig) -> RunPlan:
    """Choose the backend (first), seed everything and make the static precision/XLA decision."""
    from kerasopt.distribute.strategy import choose_backend
    from kerasopt.training.precision import decide_precision, detect_device
    from kerasopt.training.seeding import set_seed

    backend = choose_backend(cfg)
    set_seed(cfg.seed)
    # Random layers draw from tf.random.Generator objects whose state is a variable:
    # checkpoints save it, so dropout after a resume matches an uninterrupted run.
    keras.backend.experimental.enable_tf_random_generator()
    if cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    device = detect_device()
    decision = decide_precision(cfg.train.precision, cfg.train.jit_compile, device, cfg.model.type)
    return RunPlan(backend, device, within_backend(cfg, decision, backend, has_gpu=bool(device.gpus)))


def within_backend(cfg: ExperimentConfig, decision, backend: Backend, *, has_gpu: bool):
    """The precision/XLA ``decision`` without what ``backend`` cannot run: ``auto`` falls back (float32, XLA
    off, the reason said); an explicit setting is refused with one line naming its key."""
    no_xla = backend.xla_unsupported(has_gpu=has_gpu)
    if no_xla and decision.jit_compile:
        if cfg.train.jit_compile is True:
            raise ConfigError(f"{no_xla}; set train.jit_compile: auto or false. Received: jit_compile=True",
                              key="train.jit_compile")
        decision = dataclasses.replace(decision, jit_compile=False)
    no_policy = backend.policy_unsupported(decision.policy)
    if no_policy:
        if cfg.train.precision != "auto":
            raise ConfigError(f"{no_policy}; set train.precision: auto, float32 or mixed_bfloat16. "
                              f"Received: precision={cfg.train.precision}", key="train.precision")
        decision = dataclasses.replace(decision, policy="float32", reason=f"{decision.reason}; but {no_policy}")
    return decision


@dataclass
class Assembly:
    """A compiled model and the data that feeds it. ``model`` is what is saved and exported;
    ``train_model`` (the same layers, possibly wrapped for accumulation, distillation or the fused EMA
    step) is what trains."""

    cfg: ExperimentConfig
    backend: Backend
    decision: Any
    bundle: Any
    model: Any
    train_model: Any
    kind: str
    one_hot: bool
    steps: int
    freeze: Any = None
    ema: Any = None
    class_weight: Optional[dict] = None
    val: Any = None

    @property
    def spec(self):
        return self.bundle.spec

    def labelled(self, ds):
        """``ds`` with the labels the loss takes (one-hot when it wants them)."""
        from kerasopt.training.compile import prepare_labels

        return prepare_labels(ds, self.kind, self.one_hot, self.spec.num_classes)

    def train_stream(self, epoch: int, *, full_batches: bool = False):
        """Epoch ``epoch`` onwards of the training data, labelled, mixed (mixup/CutMix when on, seeded by
        the batch's number in the run) and prepared for the backend. ``full_batches`` drops a partial
        last batch (``bench`` times full batches only)."""
        from kerasopt.data.mixing import mixed

        ds = mixed(self.labelled(self.bundle.train_from_epoch(epoch, keys=self.backend.epoch_keys())),
                   self.cfg.data.augment, self.cfg.seed,
                   first_batch=epoch * self.steps)
        if full_batches:
            batch = self.bundle.batch_size
            ds = ds.filter(lambda x, y: tf.equal(tf.shape(x)[0], batch))
        return self.backend.dataset(ds)

    def rebuild(self):
        """A fresh model of the same architecture, outside any strategy scope."""
        from kerasopt.models import build_model

        return build_model(self.cfg, self.spec)

    def evaluation_model(self):
        """A fresh model compiled with the run's loss and metrics (no optimizer), to evaluate copied weights."""
        from kerasopt.training.compile import compile_for

        model = self.rebuild()
        compile_for(model, self.cfg, self.spec)
        return model

    def exportable(self):
        """The model the chief exports and reports from (a plain copy under multi_worker)."""
        return self.backend.exportable(self.model, self.rebuild)

    @property
    def parameters(self) -> int:
        return int(self.model.count_params())


def assemble(cfg: ExperimentConfig, plan: RunPlan, *, say: Callable[[str], None] = _silent,
             resume: bool = False) -> Assembly:
    """Data, the measured precision choice, model, optimizer, compile and the fused EMA step.

    ``resume`` skips loading pretrained or warm-start weights: the checkpoint holds every weight.
    Leaves the precision policy set; the caller sets it back to float32 when it is done.
    """
    from kerasopt.data.cache import data_summary
    from kerasopt.data.pipeline import build_datasets
    from kerasopt.training.calibrate import resolve_decision
    from kerasopt.training.compile import class_weights
    from kerasopt.training.precision import apply_policy

    backend = plan.backend
    bundle = build_datasets(cfg, shard=backend.shard())
    spec = bundle.spec
    say(data_summary(spec.extras))
    # On a CPU, auto is measured on the real model (or read from the cache): it needs the input shape.
    decision = resolve_decision(cfg, spec, plan.device, plan.decision, say, choice=backend)
    say(f"device: {decision.device}; precision: {decision.policy} ({decision.reason}); "
        f"XLA: {'on' if decision.jit_compile else 'off'}; strategy: {backend.name} ({backend.reason})")
    if backend.replicas > 1:
        say(f"batch: {cfg.data.batch_size} global = {cfg.data.batch_size // backend.replicas} per replica "
            f"x {backend.replicas} replicas")
    steps = cfg.train.steps_per_epoch or bundle.steps_per_epoch
    apply_policy(decision.policy)
    with backend.strategy.scope():
        a = _compiled(cfg, backend, bundle, decision, steps, say, resume)
        a.val = backend.dataset(a.labelled(bundle.val))
        a.ema = _fused_ema(cfg, a)
    a.class_weight = class_weights(cfg, spec)
    return a


def assemble_model(cfg: ExperimentConfig, make_model: Callable[[Any], Any], *, optimizer=None,
                   backend: Optional[Backend] = None, compile: bool = True) -> Assembly:
    """The assembly around a model that exists already (a trained run's, a loaded file's, a pruned one):
    the run's data, labels, loss and metrics, compiled with ``optimizer`` (None: to evaluate). With
    ``compile=False`` the model is left as it is (the head still decides the label form).

    ``kerasopt evaluate`` and the prune/quantize verbs use it; ``make_model(spec)`` gets the data's spec.
    A model whose input shape is not the data's is refused with one line (use the run's own config.yaml).
    """
    from kerasopt.data.pipeline import build_datasets
    from kerasopt.training import compile as comp

    backend = backend or Backend("one process")
    bundle = build_datasets(cfg, shard=backend.shard())
    model = make_model(bundle.spec)
    data_shape, model_shape = tuple(bundle.spec.input_shape), tuple(model.inputs[0].shape[1:])
    if data_shape != model_shape:
        raise ConfigError(f"the model takes inputs of shape {model_shape} but the config's data has {data_shape}: "
                          "use the run's own config.yaml", key="data")
    if compile:
        with backend.strategy.scope():
            kind, one_hot = comp.compile_for(model, cfg, bundle.spec, optimizer)
    else:
        kind = comp.head_kind(model, bundle.spec)
        one_hot = comp.wants_one_hot(cfg, kind)
    steps = cfg.train.steps_per_epoch or bundle.steps_per_epoch
    a = Assembly(cfg, backend, None, bundle, model, model, kind, one_hot, steps)
    a.val = backend.dataset(a.labelled(bundle.val))
    return a


def _compiled(cfg: ExperimentConfig, backend: Backend, bundle, decision, steps: int, say, resume: bool) -> Assembly:
    """The model built, prepared for transfer, wrapped and compiled (inside the backend's scope)."""
    from kerasopt.data.mixing import check_mixing
    from kerasopt.models import build_model
    from kerasopt.training import compile as comp
    from kerasopt.training.accumulate import prepare_accumulation, with_grad_accumulation
    from kerasopt.training.freezing import prepare_transfer
    from kerasopt.training.optimizers import build_optimizer
    from kerasopt.training.schedules import build_schedule

    spec = bundle.spec
    model = build_model(cfg, spec)
    freeze = prepare_transfer(cfg, model, say, resume=resume)
    check_mixing(cfg, comp.head_kind(model, spec), spec.input_shape, spec.input_dtype)
    schedule = build_schedule(cfg, max(1, steps // cfg.train.grad_accum_steps), world_size=backend.replicas)
    optimizer = backend.wrap_optimizer(build_optimizer(cfg.train.optimizer, schedule), cfg)
    fuse_ema = cfg.callbacks.ema.enabled and backend.fuses_ema
    train_model = with_grad_accumulation(model, backend.accumulation_steps(cfg),
                                         wrap=fuse_ema or cfg.distill is not None)
    if cfg.distill is not None:  # the teacher's forward pass is part of every step
        from kerasopt.compress import distill

        distill.attach(train_model, distill.load_teacher(cfg.distill, spec, model), cfg.distill)
        say(f"distilling from {cfg.distill.teacher} (alpha {cfg.distill.alpha}, "
            f"temperature {cfg.distill.temperature})")
    kind, one_hot = comp.compile_for(train_model, cfg, spec, optimizer, jit_compile=decision.jit_compile,
                                     steps_per_execution=cfg.train.steps_per_execution)
    prepare_accumulation(train_model)
    return Assembly(cfg, backend, decision, bundle, model, train_model, kind, one_hot, steps, freeze)


def _fused_ema(cfg: ExperimentConfig, a: Assembly):
    """The weight EMA, its update inside the compiled step when the backend allows it (one replica).

    ``export="raw"``: the training loop calls ``fit`` several times (a resumed partial epoch, NaN
    retries), so the EMA weights go into the model once, at the very end.
    """
    if not cfg.callbacks.ema.enabled:
        return None
    from kerasopt.callbacks.ema import WeightEMA
    from kerasopt.training.accumulate import add_post_step

    ema = WeightEMA.from_config(cfg.callbacks.ema, validation_data=a.val, export="raw")
    ema.build(a.train_model)
    if a.backend.fuses_ema:
        add_post_step(a.train_model, ema.fused_update(a.train_model))
    return ema
