"""``TF_CONFIG``: the cluster of a MultiWorkerMirroredStrategy job, read without importing TensorFlow.

Every worker process gets the same ``cluster`` and its own ``task``::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}'

The chief is the ``chief`` task when the cluster has one, else worker 0; it
is rank 0 and the only process that writes the run directory. Reading the
variable here (no TensorFlow) lets ``fit`` know the rank before any work and
lets a bad value fail in well under a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

from kerasopt.errors import ConfigError

EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
PS_EXAMPLE = ('{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"], "ps": ["host3:2222"]}, '
              '"task": {"type": "chief", "index": 0}}')
_ROLES = ("chief", "worker")
_PS_ROLES = ("chief", "worker", "ps")


@dataclass(frozen=True)
class ClusterTask:
    """This process's place in the cluster. ``workers`` counts every process (chief included)."""

    workers: int
    rank: int
    task_type: str
    task_index: int
    cluster: Optional[dict] = field(default=None, compare=False, repr=False)  # {role: [host:port]}, as given

    @property
    def address(self) -> str:
        """This task's ``host:port``."""
        return (self.cluster or {}).get(self.task_type, ["?"])[self.task_index]

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def _bad(what: str, ps: bool = False) -> ConfigError:
    if ps:
        return ConfigError(f"{what}. Expected, e.g. TF_CONFIG='{PS_EXAMPLE}' (each process with its own task)",
                           key="TF_CONFIG")
    return ConfigError(f"{what}. Expected, e.g. TF_CONFIG='{EXAMPLE}' (index 1 in the second worker)",
                       key="TF_CONFIG")


def read_tf_config(environ: Optional[Mapping[str, str]] = None, *, required: bool = True,
                   parameter_server: bool = False) -> Optional[ClusterTask]:
    """Parse and check ``TF_CONFIG``; None when it is unset and not ``required``.

    ``parameter_server``: the cluster of ``distribute.backend: parameter_server`` (one chief, workers,
    parameter servers ``ps``); ``workers`` then counts the worker tasks, and the chief is rank 0.

    Example:
        >>> env = {"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'}
        >>> read_tf_config(env)
        ClusterTask(workers=2, rank=1, task_type='worker', task_index=1)
    """
    ps = parameter_server
    mode = "parameter_server" if ps else "multi_worker"
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        if not required:
            return None
        raise _bad(f"distribute.backend: {mode} reads the cluster from the TF_CONFIG environment variable, "
                   "which is not set", ps)
    try:
        conf = json.loads(raw)
    except json.JSONDecodeError as e:
        raise _bad(f"is not valid JSON ({e.msg} at character {e.pos}). Received: {raw[:120]!r}", ps) from None
    if not isinstance(conf, dict) or not isinstance(conf.get("cluster"), dict) or not isinstance(
            conf.get("task"), dict):
        raise _bad(f"needs a 'cluster' object and a 'task' object. Received: {raw[:120]!r}", ps)
    cluster, task = conf["cluster"], conf["task"]
    _check_roles(cluster, ps)
    ttype, index = task.get("type"), task.get("index", 0)
    if ttype not in cluster:
        raise _bad(f"task.type must be one of the cluster's tasks ({', '.join(cluster)}). Received: {ttype!r}", ps)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[ttype]):
        raise _bad(f"task.index must be 0..{len(cluster[ttype]) - 1} for {len(cluster[ttype])} {ttype} "
                   f"address(es). Received: {index!r}", ps)
    if ps:  # rank: chief 0, then the workers, then the parameter servers (only the chief trains and writes)
        offset = {"chief": 0, "worker": 1, "ps": 1 + len(cluster["worker"])}[ttype]
        return ClusterTask(workers=len(cluster["worker"]), rank=offset + index, task_type=ttype, task_index=index,
                           cluster=cluster)
    has_chief = "chief" in cluster
    rank = 0 if ttype == "chief" else index + int(has_chief)
    return ClusterTask(workers=sum(len(v) for v in cluster.values()), rank=rank, task_type=ttype, task_index=index,
                       cluster=cluster)


def _check_roles(cluster: dict, ps: bool) -> None:
    """The cluster's roles and addresses, for MultiWorkerMirroredStrategy or ParameterServerStrategy."""
    for role, hosts in cluster.items():
        if role not in (_PS_ROLES if ps else _ROLES):
            why = ("parameter servers belong to distribute.backend: parameter_server" if role == "ps"
                   else "ParameterServerStrategy takes 'chief', 'worker' and 'ps' tasks only" if ps
                   else "MultiWorkerMirroredStrategy takes 'chief' and 'worker' tasks only")
            raise _bad(f"cluster.{role}: {why}", ps)
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise _bad(f"cluster.{role} must be a non-empty list of 'host:port' strings. Received: {hosts!r}", ps)
    if len(cluster.get("chief", [])) > 1:
        raise _bad(f"cluster.chief has one address at most. Received: {cluster['chief']!r}", ps)
    if ps:
        missing = [r for r in _PS_ROLES if r not in cluster]
        if missing:
            raise _bad(f"a parameter-server cluster needs a chief, workers and ps tasks; it has no "
                       f"{' and no '.join(missing)}", ps)
    elif not cluster:
        raise _bad("cluster names no 'worker' (or 'chief') task")


def multi_worker_task(backend: str, environ: Optional[Mapping[str, str]] = None) -> Optional[ClusterTask]:
    """The cluster task when ``backend`` means MultiWorkerMirroredStrategy, else None.

    ``multi_worker`` requires a valid ``TF_CONFIG``; ``auto`` takes it when ``TF_CONFIG``
    names more than one process (a malformed one is an error either way: N processes
    silently training alone would all write the same run directory).
    """
    if backend not in ("auto", "multi_worker"):
        return None
    task = read_tf_config(environ, required=backend == "multi_worker")
    if task is None or (backend == "auto" and task.workers < 2):
        return None
    return task


def parameter_server_task(backend: str, environ: Optional[Mapping[str, str]] = None) -> Optional[ClusterTask]:
    """This process's task when ``backend`` is ``parameter_server`` (a valid ``TF_CONFIG`` is required)."""
    if backend != "parameter_server":
        return None
    return read_tf_config(environ, parameter_server=True)


def launch_rank(backend: str) -> int:
    """This process's rank, known before TensorFlow starts: TF_CONFIG's for MultiWorkerMirroredStrategy
    and ParameterServerStrategy, the launcher's under horovodrun, else 0. Raises ConfigError for a bad
    TF_CONFIG."""
    from kerasopt.distribute.horovod import env_rank, launched_by_horovodrun

    ps = parameter_server_task(backend)
    if ps is not None:
        return ps.rank
    if backend != "multi_worker" and launched_by_horovodrun():
        return env_rank()
    task = multi_worker_task(backend)
    return task.rank if task is not None else 0


def rank_label() -> Optional[str]:
    """``"1"`` for the process of rank 1 under horovodrun, mpirun or a multi-worker TF_CONFIG; None alone.

    Used on error lines, so it never raises.
    """
    for var in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if var in os.environ:
            return os.environ[var]
    try:
        task = read_tf_config(required=False)
    except ConfigError:
        try:  # a parameter-server cluster: "worker1", "ps0"
            task = read_tf_config(required=False, parameter_server=True)
        except ConfigError:
            return None
        return None if task is None else f"{task.task_type}{task.task_index}"
    return str(task.rank) if task is not None and task.workers > 1 else None
