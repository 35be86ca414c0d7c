"""The distribution backend: one object per mode that answers every question training asks about it.

``fit``, the assembly and the callback factory never branch on the mode; they ask the backend. This
module holds the base class, which is also the single-process backend (``distribute.backend: none``).
Each other mode has one implementation module: ``mirrored``, ``multi_worker``, ``horovod``,
``parameter_server``; :func:`kerasopt.distribute.strategy.choose_backend` picks one.

What a backend answers:

- **place**: ``name``, ``strategy`` (its ``scope()`` builds the model), ``replicas`` (devices or
  processes sharing one global batch), ``workers`` (processes), ``rank``, ``is_chief``;
- **data**: ``shard()`` (a per-process slice read by the pipeline), ``epoch_keys()`` (a per-process
  order) and ``dataset(ds)`` (what ``model.fit`` is given);
- **the step**: ``accumulation_steps(cfg)`` (gradient accumulation in the step, or inside the
  optimizer), ``wrap_optimizer``, ``fuses_ema`` (the EMA update inside the compiled step),
  ``xla_unsupported``;
- **agreement**: ``stop_sync()``/``nan_sync()`` (a flag that is set anywhere is set everywhere),
  ``from_chief`` (the chief's numbers everywhere), ``barrier``, ``finish`` (the end of a run);
- **the loop**: ``run(loop, epoch, batch, ...)`` (elastic Horovod re-enters it after every resize);
- **callbacks**: ``first_callbacks()``, ``after_metric_callbacks()``, ``last_callbacks()``,
  ``adapt_callbacks(named)``, ``settled(fn)``, ``saves_checkpoints``,
  ``checkpoint_agree()``, ``worker_tensorboard()``, ``stop_decided(stopper)``;
- **after training**: ``exportable(model, rebuild)`` and ``runs_after_fit`` (pruning in process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional


class Backend:
    """One process, no ``tf.distribute`` strategy: the default and the base of every other backend.

    Example:
        >>> b = Backend("set in the config")
        >>> b.is_chief, b.replicas, b.shard(), b.from_chief((3, 4))
        (True, 1, None, (3, 4))
    """

    name = "none"

    def __init__(self, reason: str, *, strategy: Any = None, replicas: int = 1, rank: int = 0,
                 workers: int = 1) -> None:
        if strategy is None:
            from kerasopt._keras import tf

            strategy = tf.distribute.get_strategy()
        self.strategy = strategy
        self.reason = reason
        self.replicas = replicas
        self.rank = rank
        self.workers = workers

    # -- place ---------------------------------------------------------------------------------------------
    @property
    def is_chief(self) -> bool:
        """Only the chief (rank 0) writes files and prints the summary."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one device or process takes part in each step (every rank must make the same choices)."""
        return self.replicas > 1 or self.workers > 1

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "replicas": self.replicas, "workers": self.workers, "reason": self.reason}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(replicas={self.replicas}, workers={self.workers}, rank={self.rank})"

    # -- data ----------------------------------------------------------------------------------------------
    def shard(self) -> Optional[tuple[int, int]]:
        """``(index, count)`` when each process reads its own slice of the training data, else None."""
        return None

    def dataset(self, ds):
        """``ds`` as ``model.fit`` must receive it under this backend."""
        return ds

    def fit_validation(self, val):
        """What ``model.fit`` gets as ``validation_data`` (None when the backend validates another way)."""
        return val

    def epoch_keys(self) -> Optional[Callable[[Any], Any]]:
        """``epoch -> key`` for the seeds of each epoch's order, when it must differ per process (else None)."""
        return None

    # -- the training step ---------------------------------------------------------------------------------
    def accumulation_steps(self, cfg) -> int:
        """Gradient accumulation done by the step itself (``with_grad_accumulation``)."""
        return cfg.train.grad_accum_steps

    def wrap_optimizer(self, optimizer, cfg):
        return optimizer

    @property
    def fuses_ema(self) -> bool:
        """The EMA update can run inside the compiled step (one replica: no cross-replica variables)."""
        return self.replicas == 1

    def xla_unsupported(self, has_gpu: bool) -> Optional[str]:
        """Why XLA cannot compile this backend's training step here, or None when it can."""
        return None

    def policy_unsupported(self, policy: str) -> Optional[str]:
        """Why this backend cannot train with the mixed-precision ``policy``, or None when it can."""
        return None

    # -- agreement between processes -------------------------------------------------------------------------
    def stop_sync(self) -> Optional[Callable[[float], float]]:
        """For the signal handler: ``f(flag) > 0`` on every process when the flag is set on any."""
        return None

    def nan_sync(self) -> Optional[Callable[[float], float]]:
        """For the NaN guard, when each process sees its own loss (None: the loss is already global)."""
        return None

    def from_chief(self, values: Sequence[int]) -> tuple[int, ...]:
        """The chief's ``values`` on every process (the resume position, for instance)."""
        return tuple(values)

    def barrier(self) -> None:
        """Return when every process got here."""

    def finish(self) -> None:
        """What the processes do last, after the chief's exports and reports (nothing on one process)."""

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self, loop, start_epoch: int, start_batch: int, *, assembly: Any,
            rebuild_callbacks: Callable[[], tuple[list, dict[str, Any]]]) -> dict[str, list[float]]:
        """Run the training loop from ``(start_epoch, start_batch)``; returns its history.

        ``assembly`` and ``rebuild_callbacks`` (a fresh ``(callbacks, named)`` for this process's
        current rank) let a backend whose membership changes mid-run rebuild what depends on it.
        """
        return loop.run(start_epoch, start_batch)

    # -- callbacks -----------------------------------------------------------------------------------------
    def first_callbacks(self) -> dict[str, Any]:
        """Callbacks that run before kerasopt's own (initial weight broadcast, ...)."""
        return {}

    def after_metric_callbacks(self) -> dict[str, Any]:
        """Callbacks placed after those that add keys to the logs and before those that read them."""
        return {}

    def adapt_callbacks(self, named: dict[str, Any], assembly: Any) -> dict[str, Any]:
        """The built callbacks (name -> callback, in order) adjusted to how this backend reports steps."""
        return named

    def settled(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` run once the work in flight is done (the signal handler's save)."""
        return fn

    def last_callbacks(self) -> dict[str, Any]:
        """Callbacks placed after every other one (elastic Horovod's state commit)."""
        return {}

    @property
    def saves_checkpoints(self) -> bool:
        """This process runs the checkpoint callback (the chief; under multi_worker every worker)."""
        return self.is_chief

    def checkpoint_agree(self) -> Optional[Callable[[bool], bool]]:
        """For the checkpoint's "first save" decision, read from the chief's disk; None on one process."""
        return None

    def stop_decided(self, stopper) -> Callable[[], bool]:
        """When a stop is final for this process (the checkpoint skips its save then)."""
        return lambda: stopper.received

    def worker_tensorboard(self, **kwargs) -> Optional[Any]:
        """TensorBoard for a non-chief process that must still take part in its summaries, else None."""
        return None

    # -- after training ------------------------------------------------------------------------------------
    def exportable(self, model, rebuild: Callable[[], Any]):
        """The model the chief exports and reports from."""
        return model

    @property
    def runs_after_fit(self) -> bool:
        """Work chained after training in this process (pruning) can run: one process, one replica."""
        return not self.distributed

    @property
    def reports_with_data(self) -> bool:
        """The report may re-read the validation data (not when each process holds its own shard)."""
        return self.shard() is None
