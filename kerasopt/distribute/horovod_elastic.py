"""Elastic Horovod: the job goes on when a worker dies and takes in workers that (re)appear.

Run it as::

    horovodrun -np 2 --min-np 1 --max-np 2 --host-discovery-script ./discover.sh --gloo \\
        --blacklist-cooldown-range 3 6 kerasopt fit config.yaml

with ``distribute.backend: horovod`` (or ``auto``); horovodrun's elastic mode sets ``HOROVOD_ELASTIC=1``
and :func:`kerasopt.distribute.strategy.choose_backend` then picks :class:`ElasticHorovodBackend`.

How it works (``docs/design/elastic_horovod_probe.md`` has the measurements):

- :meth:`ElasticHorovodBackend.run` wraps the training loop in ``horovod.tensorflow.elastic.run``. A worker
  that dies makes the survivors roll back to the last commit and re-enter; a worker that appears makes
  everyone stop at the next commit, and the new one receives rank 0's state (``sync``) before it trains.
- The state (:class:`ElasticState`) holds every model and optimizer variable (the optimizer's slots are
  built first, so every process has the same list), the random generators, each
  :class:`~kerasopt.callbacks.base.StatefulCallback`'s ``trackables()`` (EMA shadows, early stopping's
  best weights) and, as Python values, the position (``epoch``, ``batch`` = batches of that epoch done), each
  stateful callback's ``get_state()`` (the NaN guard's recoveries among them), the LR scale (without its
  world-size factor) and the loop's per-epoch logs (so a new chief writes the whole ``metrics.json``).
- What depends on the rank or the number of processes is rebuilt at each entry of the elastic body,
  not in ``on_reset`` (a new worker never runs it): the data shard and per-rank stream, the LR's
  world-size factor (``train.schedule.scale_by_world_size``) and, when this process's rank changed, the
  callbacks (the chief's checkpoint, CSV history, TensorBoard, progress follow rank 0).
- **Commits** (a copy of every state variable plus one small broadcast, about 25 ms for the digits
  MLP) happen at each epoch end, at the start of each ``fit`` segment (so a NaN recovery is committed)
  and every :func:`commit_every` batches: ``callbacks.checkpoint.every_n_steps`` when it is set (the
  same granularity as the durable checkpoint), else a quarter of an epoch, at most 500 batches. A lost
  worker costs at most that many batches; an added one costs nothing (nothing is rolled back).

Commits live in memory: they survive losing workers, not losing all of them or horovodrun itself. The
disk checkpoint (chief only) stays the durable path for ``--resume``.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable
from typing import Any, Optional

from kerasopt._keras import tf
from kerasopt.callbacks.base import StatefulCallback, is_scalar
from kerasopt.callbacks.checkpoint import random_generators
from kerasopt.distribute.horovod import HorovodBackend, average_non_trainable_callback
from kerasopt.errors import ConfigError
from kerasopt.io.history import trim_history

_ATTRS = ("epoch", "batch", "cb_state", "lr_base", "epoch_logs")
_MAX_EVERY = 500


def commit_every(cfg, steps: int) -> int:
    """Batches between two commits inside an epoch (the epoch end always commits).

    Example:
        >>> from kerasopt.config.schema import ExperimentConfig
        >>> commit_every(ExperimentConfig(data={"source": "sklearn", "name": "digits"}), 23)
        6
    """
    every = cfg.callbacks.checkpoint.every_n_steps
    if every:
        return max(1, min(int(every), steps))
    return max(1, min(math.ceil(steps / 4), _MAX_EVERY))


def lr_scale(model) -> Optional[Any]:
    """The LR schedule's ``scale`` variable (``training.schedules.ScaledSchedule``), None without one."""
    opt = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    scale = getattr(getattr(opt, "_learning_rate", None), "scale", None)
    return scale if isinstance(scale, tf.Variable) else None


def _optimizer_variables(optimizer) -> list:
    found = optimizer.variables
    return list(found() if callable(found) else found)


def _variables_of(obj) -> list:
    if isinstance(obj, tf.Variable):
        return [obj]
    return list(getattr(obj, "variables", ()) or ())


def _horovod_failure(e: BaseException) -> bool:
    """A TensorFlow error raised because a peer went away (Gloo), not by the model."""
    text = str(e)
    return any(s in text for s in ("Horovod", "horovod", "Gloo", "gloo", "Connection reset", "Connection closed"))


def _reopen(csv_logger) -> None:
    """A ``CSVLogger`` whose ``fit`` was left by an exception (no ``on_train_end``) still holds its file and
    writer: its next ``fit`` would write to that old file. Close them; append from now on."""
    old = getattr(csv_logger, "csv_file", None)
    if old is not None:
        try:
            old.close()
        except (OSError, ValueError):
            pass
    csv_logger.writer = None
    csv_logger.append = True


def _state_base():
    from horovod.common.elastic import State

    return State


class ElasticState:
    """What a commit keeps and a new worker receives; see the module docstring. Made by :func:`make_state`
    (the class derives from Horovod's ``State``, imported only when Horovod is there)."""

    def __init__(self, backend: ElasticHorovodBackend, loop, epoch: int, batch: int) -> None:
        import horovod.tensorflow as htf

        super().__init__(bcast_object=htf.broadcast_object, get_rank=htf.rank)
        self._backend, self._loop = backend, loop
        self.epoch, self.batch = int(epoch), int(batch)
        self.cb_state: dict[str, Any] = {}
        self.lr_base = 1.0
        self.epoch_logs = {int(e): dict(v) for e, v in self._loop.epoch_logs.items()}
        self._saved: dict[str, Any] = {}
        self._committed: dict[str, Any] = {}
        self.save()

    # -- what is tracked ----------------------------------------------------------------------------
    def variables(self) -> dict[str, Any]:
        """Name -> variable, the same names and order in every process (and across callback rebuilds)."""
        out: dict[str, Any] = {}
        seen: set[int] = set()

        def add(prefix: str, found) -> None:
            for i, v in enumerate(found):
                if id(v) not in seen:
                    seen.add(id(v))
                    out[f"{prefix}/{i}"] = v

        model = self._loop.model
        add("model", model.variables)
        add("optimizer", _optimizer_variables(model.optimizer))
        for name, gen in random_generators(model).items():
            add(f"rng/{name}", [gen.state])
        for cb in self._loop.stateful:
            for name, obj in cb.trackables().items():
                add(f"cb/{cb.state_key}/{name}", _variables_of(obj))
        return out

    def live_cb_state(self) -> dict[str, Any]:
        return {cb.state_key: copy.deepcopy(cb.get_state()) for cb in self._loop.stateful}

    # -- Horovod's State interface ------------------------------------------------------------------
    def save(self) -> None:
        self._saved = {n: tf.identity(v) for n, v in self.variables().items()}
        # keys of callbacks this process lacks (the chief's checkpoint) keep the last shared value
        self.cb_state = {**self.cb_state, **self.live_cb_state()}
        scale = lr_scale(self._loop.model)
        if scale is not None:
            self.lr_base = float(scale.numpy()) / self._backend.lr_world_factor()
        self._committed = copy.deepcopy({k: getattr(self, k) for k in _ATTRS})

    def restore(self) -> None:
        for n, v in self.variables().items():
            if n in self._saved:
                v.assign(self._saved[n])
        self._set(self._committed)

    def sync(self) -> None:
        found = self.variables()
        _htf().broadcast_variables(list(found.values()), root_rank=0)
        self._saved = {n: tf.identity(v) for n, v in found.items()}
        self._committed = self._bcast_object(self._committed)
        self._set(self._committed)

    def _set(self, values: dict[str, Any]) -> None:
        for k, v in copy.deepcopy(values).items():
            setattr(self, k, v)

    # -- kerasopt's additions -----------------------------------------------------------------------
    def share_chief_state(self) -> None:
        """Rank 0's callback states for the callbacks only it runs (a collective: every rank calls it)."""
        theirs = self._bcast_object(self.live_cb_state())
        self.cb_state = {**self.cb_state, **theirs, **self.live_cb_state()}

    def carry_over(self, before: dict[str, Any]) -> None:
        """Copy the values of the replaced callbacks' variables into their rebuilt twins (by name)."""
        for n, v in self.variables().items():
            old = before.get(n)
            if old is not None and old is not v:
                v.assign(old)

    def apply(self) -> None:
        """Put the Python part into the process: callback states, LR scale, the loop's epoch logs."""
        for cb in self._loop.stateful:
            if cb.state_key in self.cb_state:
                cb.set_state(copy.deepcopy(self.cb_state[cb.state_key]))
        scale = lr_scale(self._loop.model)
        if scale is not None:
            scale.assign(self.lr_base * self._backend.lr_world_factor())
        self._loop.epoch_logs = {int(e): dict(v) for e, v in self.epoch_logs.items()}


def _htf():
    import horovod.tensorflow as htf

    return htf


def make_state(backend: ElasticHorovodBackend, loop, epoch: int, batch: int):
    """The elastic state of ``loop`` (its model, optimizer and stateful callbacks), committed once."""
    state_class = type("KerasoptElasticState", (ElasticState, _state_base()), {})
    return state_class(backend, loop, epoch, batch)


def resumed_scale(scale: float, saved_factor: Optional[float], factor: float) -> float:
    """The LR scale a run resumed from a disk checkpoint starts with: the saved scale holds the world-size
    factor of the size it was saved at, which is replaced by the factor of the size now.

    Example:
        >>> resumed_scale(0.5 * 2.0, saved_factor=2.0, factor=1.0)  # saved at 2x the size, resumed at 1x
        0.5
    """
    return scale if not saved_factor else scale / saved_factor * factor


class ElasticCommit(StatefulCallback):
    """Tracks the loop's position in the state and commits it (placed after every other callback).

    ``state.batch`` counts the batches of ``state.epoch`` done, as the checkpoint does; an epoch
    stopped early (a signal, the NaN guard) is not committed as done. Its own state, saved in the disk
    checkpoint, is the LR's world-size factor at the save (:func:`resumed_scale` on ``--resume``).
    """

    def __init__(self, world_factor: Callable[[], float] = lambda: 1.0) -> None:
        super().__init__()
        self._supports_tf_logs = True  # the batch hook reads no logs: no host sync for it
        self.state = None
        self.loop = None
        self.every = 1
        self.world_factor = world_factor
        self.saved_factor: Optional[float] = None
        self._first_epoch = self._offset = self._epoch = self._last = 0

    def get_state(self) -> dict[str, Any]:
        return {"lr_world_factor": float(self.world_factor())}

    def set_state(self, state: dict[str, Any]) -> None:
        self.saved_factor = state.get("lr_world_factor")

    def _halted(self, logs=None) -> bool:
        guard = self.loop.named.get("nan_guard")
        if guard is not None and guard.tripped():
            return True
        loss = (logs or {}).get("loss")
        return loss is not None and is_scalar(loss) and not math.isfinite(float(loss))

    def on_train_begin(self, logs=None):
        if self.state is None:
            return
        self._first_epoch, self._offset = self.loop.position
        self.state.epoch, self.state.batch = self.loop.position
        self.state.commit()  # after a NaN recovery this commits the reloaded weights and the lower LR

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._last = self._offset if epoch == self._first_epoch else 0

    def on_train_batch_end(self, batch, logs=None):
        st = self.state
        if st is None:
            return
        st.epoch, st.batch = self._epoch, (self._offset if self._epoch == self._first_epoch else 0) + batch + 1
        if st.batch < self.loop.steps and st.batch - self._last >= self.every and not self._halted():
            self._last = st.batch
            st.commit()

    def on_epoch_end(self, epoch, logs=None):
        st = self.state
        if st is None or st.batch < self.loop.steps or self._halted(logs):
            return  # stopped mid-epoch: the position stays where it is
        st.epoch, st.batch = epoch + 1, 0
        st.epoch_logs = {**st.epoch_logs, epoch: {k: float(v) for k, v in (logs or {}).items() if is_scalar(v)}}
        st.share_chief_state()
        st.commit()


class ElasticHorovodBackend(HorovodBackend):
    """``distribute.backend: horovod`` under ``horovodrun --min-np/--max-np --host-discovery-script``.

    ``rank``, ``replicas``, ``workers`` and ``is_chief`` are read from Horovod each time: they change when
    workers leave or join. The initial weight broadcast is the state's ``sync``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.built_size = int(self.hvd.size())  # the world size the LR schedule was built with
        self.commit = ElasticCommit(world_factor=self.lr_world_factor)
        self._placed: tuple[int, int] = (self.rank, self.replicas)
        self.scales_lr = False  # train.schedule.scale_by_world_size, known in run()

    # -- place: live -----------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return int(self.hvd.rank())

    @rank.setter
    def rank(self, value: int) -> None:
        del value  # Backend.__init__ stores the launch values; the live ones come from Horovod

    @property
    def replicas(self) -> int:
        return int(self.hvd.size())

    @replicas.setter
    def replicas(self, value: int) -> None:
        del value

    @property
    def workers(self) -> int:
        return int(self.hvd.size())

    @workers.setter
    def workers(self, value: int) -> None:
        del value

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "elastic": True}

    @property
    def fuses_ema(self) -> bool:
        return False  # the same EMA step at every size: a fused update is chosen once, at one replica

    def lr_world_factor(self) -> float:
        """The LR's factor for the current world size, relative to the size its schedule was built with."""
        return self.replicas / self.built_size if self.scales_lr else 1.0

    # -- callbacks -------------------------------------------------------------------------------------
    def first_callbacks(self) -> dict[str, Any]:
        return {"hvd_average_stats": average_non_trainable_callback(self.hvd)}  # state.sync() broadcasts

    def last_callbacks(self) -> dict[str, Any]:
        return {"hvd_elastic_commit": self.commit}

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, loop, start_epoch: int, start_batch: int, *, assembly: Any,
            rebuild_callbacks: Callable[[], tuple[list, dict[str, Any]]]) -> dict[str, list[float]]:
        """The loop inside ``horovod.tensorflow.elastic.run``: re-entered after every membership change."""
        import horovod.tensorflow.elastic as hte
        from horovod.common.exceptions import HorovodInternalError

        self.scales_lr = bool(assembly.cfg.train.schedule.scale_by_world_size)
        model = loop.model
        getattr(model.optimizer, "inner_optimizer", model.optimizer).build(model.trainable_variables)
        scale = lr_scale(model)
        if scale is not None and self.commit.saved_factor:  # --resume: the checkpoint's scale has its size's factor
            scale.assign(resumed_scale(float(scale.numpy()), self.commit.saved_factor, self.lr_world_factor()))
        self.commit.saved_factor = None
        self.commit.every = commit_every(assembly.cfg, loop.steps)
        state = make_state(self, loop, start_epoch, start_batch)
        self.commit.state, self.commit.loop = state, loop
        start = (int(start_epoch), int(start_batch))
        entries = [0]

        def body(st):
            try:
                return self._enter(st, loop, assembly, rebuild_callbacks, entries[0], start)
            except tf.errors.OpError as e:
                if _horovod_failure(e):
                    raise HorovodInternalError(e) from e
                raise
            finally:
                entries[0] += 1

        try:
            return hte.run(body)(state)
        finally:
            self.commit.state = None

    def _enter(self, state, loop, assembly, rebuild_callbacks, entry: int, start: tuple[int, int]):
        rank, size = self.rank, self.replicas
        batch_size = assembly.cfg.data.batch_size
        if batch_size % size:
            raise ConfigError(f"elastic Horovod now runs {size} workers and the global batch must split evenly "
                              f"over them. Received: batch_size={batch_size}", key="data.batch_size")
        if (rank, size) != self._placed:
            loop.reshard(assembly, self.shard())
            if rank != self._placed[0]:
                before = state.variables()
                loop.use_callbacks(*rebuild_callbacks())
                state.carry_over(before)
            self._placed = (rank, size)
        state.apply()
        position = (state.epoch, state.batch)
        if entry or position != start:
            why = "joined" if not entry else "re-entered"
            print(f"[elastic] {why}: rank {rank} of {size}, continuing at epoch {state.epoch + 1} "
                  f"batch {state.batch}", file=sys.stderr, flush=True)
        if entry and loop.history_csv is not None:  # the rows of epochs rolled back are written again
            csv_logger = loop.named.get("csv_logger")
            if csv_logger is not None:
                _reopen(csv_logger)
            trim_history(loop.history_csv, state.epoch)
        es = loop.named.get("early_stopping")
        if es is not None and es.stopped_epoch:  # committed after early stopping ended the run
            es.set_model(loop.model)
            es.on_train_end()
            return loop.history()
        return loop.run(state.epoch, state.batch)


__all__ = ["ElasticCommit", "ElasticHorovodBackend", "ElasticState", "commit_every", "make_state", "resumed_scale"]
