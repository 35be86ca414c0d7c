"""distribute.backend: parameter_server — asynchronous training with real chief, worker and ps processes.

Every process runs the same ``kerasopt fit`` with its own ``TF_CONFIG`` (free localhost ports chosen at
test time): the chief trains and writes the run directory, two workers run the steps, one parameter
server holds the variables, and the three servers leave on their own once the chief has finished.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cluster_processes import wait_for_saved_epoch

from kerasopt.config import load_config
from kerasopt.distribute.tf_config import launch_rank, parameter_server_task, rank_label, read_tf_config
from kerasopt.errors import ConfigError

KERASOPT = str(Path(sys.executable).with_name("kerasopt"))
LAUNCH_VARS = ("TF_CONFIG", "HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
ROLES = [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0)]
STEPS = 23  # ceil(1437 training images / 64)

CFG = {
    "name": "ps",
    "seed": 3,
    # digits as 64 features: an MLP trains in seconds; 360 validation images make 1 point = 3.6 images
    "data": {"source": "sklearn", "name": "digits", "batch_size": 64, "normalize": "minmax", "reshape": [64]},
    "model": {"type": "mlp", "hidden_units": [64], "dropout": 0.1},
    # jit_compile auto: an MLP gets XLA on a CPU, which this backend cannot compile (auto turns it off)
    "train": {"epochs": 10, "verbose": 2, "optimizer": {"type": "adam", "learning_rate": 0.003}},
    "distribute": {"backend": "parameter_server"},
    "callbacks": {"checkpoint": {"monitor": "val_accuracy", "save_top_k": 2},
                  "early_stopping": {"enabled": False}},
    "export": {"formats": ["keras"]},
    "report": False,
}


def _cluster():
    socks = [socket.socket() for _ in ROLES]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    addr = [f"localhost:{p}" for p in ports]
    return {"chief": addr[:1], "worker": addr[1:3], "ps": addr[3:]}


def _env(cluster, role, index):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    return dict(env, PYTHONUNBUFFERED="1",
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": role, "index": index}}))


def _start(argv, tmp_path, tag):
    """One process per role (chief first in the list); each writes its own log."""
    cluster, procs, logs = _cluster(), [], []
    for role, index in ROLES:
        logs.append(tmp_path / f"{tag}-{role}{index}.log")
        with open(logs[-1], "w") as f:
            procs.append(subprocess.Popen(argv, env=_env(cluster, role, index), stdout=f, stderr=subprocess.STDOUT,
                                          start_new_session=True))
    return procs, logs


def _wait(procs, logs, timeout=240):
    """Exit codes and outputs; kills what is still running after ``timeout`` (a hang fails, not blocks)."""
    try:
        deadline = time.time() + timeout
        codes = [p.wait(timeout=max(1.0, deadline - time.time())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    return codes, [log.read_text() for log in logs]


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("ps") / "cfg.yaml"
    p.write_text(yaml.safe_dump(CFG))
    return p


# -- TF_CONFIG and refusals, no cluster --------------------------------------------------------------------

def _tf(cluster, role, index=0):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": role, "index": index}})}


def test_tf_config_ranks_chief_then_workers_then_parameter_servers():
    cluster = {"chief": ["c:1"], "worker": ["w:1", "w:2"], "ps": ["p:1", "p:2"]}
    tasks = [read_tf_config(_tf(cluster, r, i), parameter_server=True)
             for r, i in [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1)]]
    assert [t.rank for t in tasks] == [0, 1, 2, 3, 4]
    assert {t.workers for t in tasks} == {2}  # worker tasks, the ones that run steps
    assert [t.address for t in tasks] == ["c:1", "w:1", "w:2", "p:1", "p:2"]
    assert parameter_server_task("multi_worker", _tf(cluster, "chief")) is None


@pytest.mark.parametrize("cluster, fragment", [
    ({"chief": ["c:1"], "worker": ["w:1"]}, "it has no ps"),
    ({"worker": ["w:1"], "ps": ["p:1"]}, "it has no chief"),
    ({"chief": ["c:1"], "worker": ["w:1"], "ps": ["p:1"], "evaluator": ["e:1"]}, "cluster.evaluator"),
    ({"chief": ["c:1", "c:2"], "worker": ["w:1"], "ps": ["p:1"]}, "one address at most"),
])
def test_a_bad_parameter_server_cluster_is_one_line_naming_tf_config(cluster, fragment):
    with pytest.raises(ConfigError, match=fragment) as e:
        read_tf_config(_tf(cluster, "worker"), parameter_server=True)
    assert e.value.key == "TF_CONFIG" and "\n" not in str(e.value)
    assert '"ps": ["host3:2222"]' in str(e.value)  # the example shows a parameter-server cluster


def test_a_ps_task_under_multi_worker_points_at_the_parameter_server_backend():
    cluster = {"chief": ["c:1"], "worker": ["w:1"], "ps": ["p:1"]}
    with pytest.raises(ConfigError, match="parameter servers belong to distribute.backend: parameter_server"):
        read_tf_config(_tf(cluster, "chief"))


def test_rank_and_label_of_each_role_before_tensorflow_starts(monkeypatch):
    cluster = {"chief": ["c:1"], "worker": ["w:1", "w:2"], "ps": ["p:1"]}
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TF_CONFIG", _tf(cluster, "worker", 1)["TF_CONFIG"])
    assert launch_rank("parameter_server") == 2 and rank_label() == "worker1"
    monkeypatch.setenv("TF_CONFIG", _tf(cluster, "chief")["TF_CONFIG"])
    assert launch_rank("parameter_server") == 0


@pytest.mark.parametrize("override, key", [
    ({"callbacks": {"ema": {"enabled": True}}}, "callbacks.ema.enabled"),
    ({"callbacks": {"checkpoint": {"every_n_steps": 5}}}, "callbacks.checkpoint.every_n_steps"),
    ({"train": {"grad_accum_steps": 2}}, "train.grad_accum_steps"),
    ({"callbacks": {"tensorboard": {"update_freq": "batch"}}}, "callbacks.tensorboard.update_freq"),
    ({"deterministic": True}, "deterministic"),
    ({"env": "1"}, "TF_DETERMINISTIC_OPS"),
])
def test_what_asynchronous_training_cannot_do_is_refused_with_the_key(override, key, monkeypatch):
    from kerasopt.distribute.parameter_server import refuse_unsupported

    override = dict(override)
    monkeypatch.delenv("TF_DETERMINISTIC_OPS", raising=False)
    refuse_unsupported(load_config(CFG))  # the test's own config passes
    if "env" in override:
        monkeypatch.setenv("TF_DETERMINISTIC_OPS", override.pop("env"))
    cfg = load_config({**CFG, **{k: {**CFG.get(k, {}), **v} if isinstance(v, dict) else v
                                 for k, v in override.items()}})
    with pytest.raises(ConfigError) as e:
        refuse_unsupported(cfg)
    assert e.value.key == key and "parameter_server" in str(e.value)


@pytest.mark.parametrize("setting, decided, expected", [
    ({"jit_compile": "auto"}, ("float32", True), ("float32", False)),
    ({"jit_compile": True}, ("float32", True), "train.jit_compile"),
    ({"precision": "auto"}, ("mixed_float16", False), ("float32", False)),
    ({"precision": "mixed_float16"}, ("mixed_float16", False), "train.precision"),
    ({"precision": "mixed_bfloat16"}, ("mixed_bfloat16", False), ("mixed_bfloat16", False)),
])
def test_what_the_workers_cannot_run_is_turned_off_under_auto_and_refused_when_set(setting, decided, expected):
    """Both seen on real workers: XLA cannot reach variables on a ps task, and Keras has no float16 loss
    scaling under this strategy. A GPU chief's ``auto`` would choose both."""
    from kerasopt.distribute.backend import Backend
    from kerasopt.distribute.parameter_server import ParameterServerBackend
    from kerasopt.training.assembly import within_backend
    from kerasopt.training.precision import PrecisionDecision

    cfg = load_config({**CFG, "train": {**CFG["train"], **setting}})
    decision = PrecisionDecision(decided[0], decided[1], "GPU compute capability 7.5", "GPU")
    ps = ParameterServerBackend.__new__(ParameterServerBackend)  # the limits need no cluster
    if isinstance(expected, str):
        with pytest.raises(ConfigError, match="parameter servers|ParameterServerStrategy") as e:
            within_backend(cfg, decision, ps, has_gpu=True)
        assert e.value.key == expected
    else:
        got = within_backend(cfg, decision, ps, has_gpu=True)
        assert (got.policy, got.jit_compile) == expected
        assert ("loss scaling" in got.reason) == (decided[0] != got.policy)
    assert within_backend(cfg, decision, Backend("one process"), has_gpu=True) == decision  # one process: as decided


ORDER_CHECK = """
import json, sys
from kerasopt.config import load_config
from kerasopt.data.pipeline import build_datasets
from kerasopt.distribute.parameter_server import per_worker_epochs

bundle = build_datasets(load_config(json.loads(sys.argv[1])))

def first_batch(keys):
    return next(iter(bundle.train_from_epoch(0, keys=keys)))[1].numpy().tolist()

salted = per_worker_epochs
print(json.dumps([first_batch(None) == first_batch(None), first_batch(salted) == first_batch(salted)]))
"""


def test_each_worker_draws_its_own_order_of_the_same_epoch():
    """The salt of the epochs' seeds is drawn where the pipeline runs: two iterators of one dataset graph
    (as two workers get) see different orders; without it they see the same. In a process of its own: the
    salt reads the clock, which TensorFlow forbids once op determinism is on (a test before may have set it,
    and a run with deterministic: true is refused under this backend)."""
    cfg = json.dumps({**CFG, "distribute": {"backend": "none"}})
    out = subprocess.run([sys.executable, "-c", ORDER_CHECK, cfg], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k not in LAUNCH_VARS})
    assert out.returncode == 0, out.stderr[-2000:]
    same_without_salt, same_with_salt = json.loads(out.stdout.strip().splitlines()[-1])
    assert same_without_salt and not same_with_salt


# -- a real cluster --------------------------------------------------------------------------------------

def test_chief_two_workers_one_ps_train_digits_within_one_point_of_one_process(cfg_path, tmp_path):  # ~45 s
    run = tmp_path / "run"
    procs, logs = _start([KERASOPT, "fit", str(cfg_path), "--run-dir", str(run)], tmp_path, "fit")
    codes, out = _wait(procs, logs)
    assert codes == [0, 0, 0, 0], "\n".join(o[-2500:] for o in out)
    chief = out[0]
    assert "strategy: parameter_server (set in the config)" in chief and "XLA: off" in chief
    for (role, index), text in zip(ROLES[1:], out[1:]):
        assert f"parameter_server: {role} {index} serving at" in text
        assert "has finished" in text and "epoch 1/" not in text  # servers train nothing themselves
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["strategy"]["name"] == "parameter_server" and metrics["strategy"]["workers"] == 2
    assert metrics["epochs_run"] == 10
    assert len((run / "history.csv").read_text().strip().splitlines()) == 10 + 1
    saved = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())
    assert (saved["epoch"], saved["step"]) == (10, 10 * STEPS)  # every scheduled step ran once
    assert (run / "model" / "ps.keras").is_file()

    single = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "single"),
                             "--set", "distribute.backend=none"], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    acc1 = json.loads((tmp_path / "single" / "metrics.json").read_text())["final"]["val_accuracy"]
    acc = metrics["final"]["val_accuracy"]
    print(f"val_accuracy: parameter_server {acc:.4f}, 1 process {acc1:.4f}")
    assert abs(acc - acc1) <= 0.01 + 1e-9


def test_sigterm_to_the_chief_saves_after_the_steps_in_flight_and_a_new_cluster_resumes(cfg_path, tmp_path):
    """The count of steps is exact across the stop: the resumed run ends at epochs x steps."""
    run = tmp_path / "run"
    argv = [KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--set", "train.epochs=60"]
    procs, logs = _start(argv, tmp_path, "first")
    meta = run / "checkpoints" / "last" / "meta.json"
    wait_for_saved_epoch(meta, procs, at_least=2)
    procs[0].send_signal(signal.SIGTERM)
    codes, out = _wait(procs, logs, timeout=120)
    assert codes == [0, 0, 0, 0], "\n".join(o[-2500:] for o in out)
    assert "stopped by SIGTERM" in out[0]
    saved = json.loads(meta.read_text())
    assert 2 <= saved["epoch"] < 60 and saved["step"] == saved["epoch"] * STEPS + saved["batch"]
    stopped = saved["epoch"] + (saved["batch"] > 0)  # epochs begun

    argv = [KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume", "--set",
            f"train.epochs={stopped + 1}"]
    procs, logs = _start(argv, tmp_path, "resume")
    codes, out = _wait(procs, logs)
    assert codes == [0, 0, 0, 0], "\n".join(o[-2500:] for o in out)
    assert "resuming" in out[0]
    final = json.loads(meta.read_text())
    assert (final["epoch"], final["batch"], final["step"]) == (stopped + 1, 0, (stopped + 1) * STEPS)
    assert len((run / "history.csv").read_text().strip().splitlines()) == stopped + 1 + 1
