"""distribute.backend: multi_worker — MultiWorkerMirroredStrategy with real worker processes on localhost.

Each worker gets its own TF_CONFIG (free ports chosen at test time) and its own TMPDIR, so the
test can see that non-chief checkpoint saves leave nothing behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from cluster_processes import wait_for_saved_epoch

from kerasopt.distribute.tf_config import ClusterTask, multi_worker_task, rank_label, read_tf_config
from kerasopt.errors import ConfigError

KERASOPT = str(Path(sys.executable).with_name("kerasopt"))
LAUNCH_VARS = ("TF_CONFIG", "HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")

CFG = {
    "name": "mw",
    "seed": 3,
    # digits as 64 features: an MLP trains in seconds; 360 validation images make 1 point = 3.6 images
    "data": {"source": "sklearn", "name": "digits", "batch_size": 64, "normalize": "minmax", "reshape": [64]},
    "model": {"type": "mlp", "hidden_units": [64], "dropout": 0.1},
    "train": {"epochs": 4, "verbose": 2, "jit_compile": False,
              "optimizer": {"type": "adam", "learning_rate": 0.003}},
    # BatchNorm (the MLP's default) keeps sync-on-read statistics: reading them for a checkpoint or a
    # histogram is an all-reduce, so these two hang or fail unless every worker takes part
    "callbacks": {"tensorboard": {"enabled": True, "histogram_freq": 1},
                  "checkpoint": {"monitor": "val_accuracy", "save_top_k": 2}},
    "export": {"formats": ["keras"]},
    "report": False,
}

SCRIPT = textwrap.dedent("""
    import json, sys, numpy as np, kerasopt
    from kerasopt.distribute.tf_config import read_tf_config
    cfg, run_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    r = kerasopt.fit(cfg, run_dir=run_dir, print_fn=lambda s: None)
    rank = read_tf_config().rank
    np.savez(f"{out}/rank{rank}.npz", *r.model.get_weights())
    json.dump({"val_accuracy": r.metrics["final"]["val_accuracy"], "strategy": r.metrics["strategy"],
               "loss": r.history["loss"]},
              open(f"{out}/rank{rank}.json", "w"))
""")


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    return dict(env, PYTHONUNBUFFERED="1", **extra)


def _start(argv, tmp_path, tag, workers=2):
    """Start ``workers`` processes of ``argv``, one TF_CONFIG and one TMPDIR each (free ports chosen now)."""
    ports = _free_ports(workers)
    procs, logs, scratch = [], [], []
    for i in range(workers):
        scratch.append(tmp_path / f"{tag}-tmp{i}")
        scratch[-1].mkdir()
        logs.append(tmp_path / f"{tag}-worker{i}.log")
        env = _clean_env(TF_CONFIG=_tf_config(ports, i), TMPDIR=str(scratch[-1]))
        with open(logs[-1], "w") as f:
            procs.append(subprocess.Popen(argv, env=env, stdout=f, stderr=subprocess.STDOUT,
                                          start_new_session=True))
    return procs, logs, scratch


def _wait(procs, logs, timeout=240):
    """Exit codes and outputs; kills what is still running after ``timeout`` (a hang fails, not blocks)."""
    try:
        codes = [p.wait(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    return codes, [log.read_text() for log in logs]


def _launch(argv, tmp_path, tag, workers=2, timeout=240):
    procs, logs, scratch = _start(argv, tmp_path, tag, workers)
    return (*_wait(procs, logs, timeout), scratch)


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("mw") / "cfg.yaml"
    p.write_text(yaml.safe_dump(CFG))
    return p


# -- TF_CONFIG, no TensorFlow ---------------------------------------------------------------------------

def _env(cluster, task):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}


@pytest.mark.parametrize("cluster, task, expected", [
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, ClusterTask(2, 0, "worker", 0)),
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, ClusterTask(2, 1, "worker", 1)),
    ({"chief": ["c:1"], "worker": ["a:1", "b:2"]}, {"type": "chief", "index": 0}, ClusterTask(3, 0, "chief", 0)),
    ({"chief": ["c:1"], "worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, ClusterTask(3, 1, "worker", 0)),
    ({"chief": ["c:1"], "worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, ClusterTask(3, 2, "worker", 1)),
])
def test_tf_config_rank_and_chief(cluster, task, expected):
    got = read_tf_config(_env(cluster, task))
    assert got == expected
    assert got.is_chief == (expected.rank == 0)


@pytest.mark.parametrize("raw, needle", [
    (None, "not set"),
    ("{'cluster': 1}", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', "'task' object"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}', "cluster.ps"),
    ('{"cluster": {"worker": ["a:1"], "evaluator": ["e:1"]}, "task": {"type": "worker"}}', "cluster.evaluator"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "task.index must be 0..1"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "task.type must be one of"),
])
def test_bad_tf_config_names_it_and_shows_an_example(raw, needle):
    with pytest.raises(ConfigError) as e:
        read_tf_config({} if raw is None else {"TF_CONFIG": raw})
    assert e.value.key == "TF_CONFIG" and needle in str(e.value)
    assert '"task": {"type": "worker", "index": 0}' in str(e.value)  # the example


def test_auto_takes_tf_config_only_with_several_workers():
    two = _env({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1})
    one = _env({"worker": ["a:1"]}, {"type": "worker", "index": 0})
    assert multi_worker_task("auto", two).rank == 1
    assert multi_worker_task("auto", one) is None and multi_worker_task("auto", {}) is None
    assert multi_worker_task("multi_worker", one).workers == 1
    assert multi_worker_task("none", two) is None and multi_worker_task("mirrored", two) is None
    with pytest.raises(ConfigError, match="not valid JSON"):  # a broken TF_CONFIG is never ignored
        multi_worker_task("auto", {"TF_CONFIG": "{"})


def test_rank_label_for_error_lines(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    assert rank_label() is None
    monkeypatch.setenv("TF_CONFIG", _env({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1})["TF_CONFIG"])
    assert rank_label() == "1"
    monkeypatch.setenv("TF_CONFIG", "{broken")
    assert rank_label() is None


@pytest.mark.parametrize("tf_config, backend", [(None, "multi_worker"), ("{not json", "auto")])
def test_cli_bad_tf_config_exits_2_before_writing(cfg_path, tmp_path, tf_config, backend):
    env = _clean_env(**({"TF_CONFIG": tf_config} if tf_config else {}))
    out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "x"),
                          "--set", f"distribute.backend={backend}"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.count("\n") == 1 and "TF_CONFIG" in out.stderr and '"cluster": {"worker"' in out.stderr
    assert not (tmp_path / "x").exists()


# -- real workers --------------------------------------------------------------------------------------

def test_two_workers_identical_weights_chief_writes_accuracy_matches_single(cfg_path, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out, run = tmp_path / "out", tmp_path / "run"
    out.mkdir()
    codes, logs, scratch = _launch([sys.executable, str(script), str(cfg_path), str(run), str(out)], tmp_path, "a")
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    r0, r1 = (json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["strategy"]["name"] == "multi_worker" and r0["strategy"]["workers"] == 2
    assert r0["strategy"]["replicas"] == 2
    w0, w1 = (np.load(out / f"rank{i}.npz") for i in (0, 1))
    assert len(w0.files) >= 4  # two Dense layers, and whatever else the MLP holds
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    # metrics are reduced over the workers inside the step: every worker logs the same numbers
    assert r0["val_accuracy"] == r1["val_accuracy"] and r0["loss"] == r1["loss"]
    assert len(r0["loss"]) == CFG["train"]["epochs"]

    # only the chief wrote: one history, one TensorBoard writer, checkpoints with no leftovers
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == CFG["train"]["epochs"] + 1
    assert len(list((run / "tensorboard").rglob("events.out.tfevents.*"))) == 2  # train + validation
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last" in names and "best" in names and not [n for n in names if n.startswith(".")]
    assert (run / "model" / "mw.keras").is_file() and (run / "metrics.json").is_file()
    assert [list(d.iterdir()) for d in scratch] == [[], []]  # the non-chief's scratch saves were removed
    assert not [p for p in run.rglob("*") if p.name.startswith((".tmp", ".old", "kerasopt-"))]

    # a single process with the same global batch sees the same batches (DATA auto-sharding)
    single = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "single"),
                             "--set", "distribute.backend=none"], capture_output=True, text=True,
                            env=_clean_env(), timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    acc1 = json.loads((tmp_path / "single" / "metrics.json").read_text())["final"]["val_accuracy"]
    print(f"val_accuracy: 2 workers {r0['val_accuracy']:.4f}, 1 process {acc1:.4f}")
    assert abs(r0["val_accuracy"] - acc1) <= 0.02 + 1e-9


def test_sigterm_to_one_worker_stops_both_at_one_batch_then_both_resume(cfg_path, tmp_path):  # ~26 s
    """The non-chief is signalled; the stop is agreed (no worker left waiting in an all-reduce),
    the chief saves the partial epoch, and a resumed pair of workers finishes the run."""
    run = tmp_path / "run"
    argv = [KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--set", "train.epochs=60"]
    procs, logs, _ = _start(argv, tmp_path, "first")
    meta = run / "checkpoints" / "last" / "meta.json"
    wait_for_saved_epoch(meta, procs, at_least=2)
    procs[1].send_signal(signal.SIGTERM)
    codes, out = _wait(procs, logs, timeout=120)
    assert codes == [0, 0], out[0][-3000:] + out[1][-3000:]
    both = out[0] + out[1]
    assert both.count("strategy: multi_worker (auto: TF_CONFIG names 2 workers)") == 1
    assert "32 per replica x 2 replicas" in out[0] and "stopped by SIGTERM" in out[0]
    metrics = json.loads((run / "metrics.json").read_text())
    saved = json.loads(meta.read_text())
    assert metrics["interrupted_by"] == "SIGTERM" and 2 <= saved["epoch"] < 60
    stopped = saved["epoch"] + (saved["batch"] > 0)  # epochs begun

    argv = [KERASOPT, "fit", str(cfg_path), "--run-dir", str(run), "--resume", "--set",
            f"train.epochs={stopped + 1}"]
    codes, out, scratch = _launch(argv, tmp_path, "resume")
    assert codes == [0, 0], out[0][-3000:] + out[1][-3000:]
    assert "resuming" in out[0] and "resuming" not in out[1]
    metrics = json.loads((run / "metrics.json").read_text())
    steps = 23  # ceil(1437 training images / 64): a stop after the last batch resumes at the next epoch
    assert metrics["resumed_from_epoch"] == saved["epoch"] + (saved["batch"] >= steps)
    assert metrics["last_epoch"] == stopped + 1
    assert len((run / "history.csv").read_text().strip().splitlines()) == stopped + 1 + 1
    assert [list(d.iterdir()) for d in scratch] == [[], []]
