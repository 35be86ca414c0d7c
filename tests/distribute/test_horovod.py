"""Horovod with real processes: `horovodrun -np 2 -H localhost:2 --gloo` on CPU.

Skipped when Horovod is not built (`make horovod`; `make test` builds it).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from kerasopt.errors import ConfigError

try:
    from kerasopt.distribute.horovod import import_hvd

    import_hvd()
    HOROVODRUN = shutil.which("horovodrun", path=str(Path(sys.executable).parent)) or shutil.which("horovodrun")
except ConfigError:
    HOROVODRUN = None

pytestmark = [pytest.mark.horovod,
              pytest.mark.skipif(HOROVODRUN is None, reason="Horovod is not built: run `make horovod`")]
KERASOPT = str(Path(sys.executable).with_name("kerasopt"))

CFG = {
    "name": "hvd",
    "seed": 3,
    # digits as 64 features: an MLP trains in seconds, and 360 validation images make 1 point = 3.6 images
    "data": {"source": "sklearn", "name": "digits", "batch_size": 64, "normalize": "minmax", "reshape": [64]},
    "model": {"type": "mlp", "hidden_units": [128], "dropout": 0.1},
    "train": {"epochs": 25, "verbose": 2, "jit_compile": False,
              "optimizer": {"type": "adam", "learning_rate": 0.003}},
    "callbacks": {"tensorboard": {"enabled": True}, "checkpoint": {"monitor": "val_accuracy"}},
    "export": {"formats": ["keras"]},
}

SCRIPT = textwrap.dedent("""
    import json, sys, numpy as np, kerasopt
    cfg, run_dir, out, resume = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    r = kerasopt.fit(cfg, run_dir=run_dir, resume=resume, print_fn=lambda s: None)
    from kerasopt.distribute.horovod import import_hvd
    hvd = import_hvd()
    np.savez(f"{out}/rank{hvd.rank()}.npz", *r.model.get_weights())
    json.dump({"rank": hvd.rank(), "size": hvd.size(), "val_accuracy": r.metrics["final"]["val_accuracy"],
               "resumed_from_epoch": r.metrics["resumed_from_epoch"], "strategy": r.metrics["strategy"]},
              open(f"{out}/rank{hvd.rank()}.json", "w"))
""")


def _hvdrun(*args, timeout=600, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("hvd") / "cfg.yaml"
    p.write_text(yaml.safe_dump(CFG))
    return p


def test_two_ranks_identical_weights_rank0_writes_accuracy_matches_single(cfg_path, tmp_path):
    (tmp_path / "out").mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    out = _hvdrun(sys.executable, str(script), str(cfg_path), str(run), str(tmp_path / "out"), "0")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / "out" / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["size"] == r1["size"] == 2 and r0["strategy"]["name"] == "horovod"
    w0, w1 = (np.load(tmp_path / "out" / f"rank{i}.npz") for i in (0, 1))
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    assert r0["val_accuracy"] == r1["val_accuracy"]  # averaged metrics agree on both ranks
    # only rank 0 wrote: one metrics.json, one history, one TensorBoard writer
    assert (run / "metrics.json").is_file() and (run / "model" / "hvd.keras").is_file()
    assert len(list((run / "tensorboard").rglob("events.out.tfevents.*"))) <= 2  # train + validation
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == CFG["train"]["epochs"] + 1

    single = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "single"),
                             "--set", "distribute.backend=none"], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    acc1 = json.loads((tmp_path / "single" / "metrics.json").read_text())["final"]["val_accuracy"]
    print(f"val_accuracy: 2 ranks {r0['val_accuracy']:.4f}, 1 process {acc1:.4f}")
    assert abs(r0["val_accuracy"] - acc1) <= 0.01 + 1e-9


def test_cli_under_horovodrun_prints_once(cfg_path, tmp_path):
    out = _hvdrun(KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "cli"), "--set", "train.epochs=2")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert text.count("strategy: horovod") == 1 and "32 per replica x 2 replicas" in text
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["strategy"]["replicas"] == 2


def test_killed_two_process_run_resumes_on_both_ranks(cfg_path, tmp_path):
    (tmp_path / "out").mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    cfg = dict(CFG, train={**CFG["train"], "epochs": 15})  # killed at epoch 5 or later, 10 more resumed
    p = tmp_path / "long.yaml"
    p.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, str(script),
                             str(p), str(run), str(tmp_path / "out"), "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    meta = run / "checkpoints" / "last" / "meta.json"
    t0 = time.time()
    while True:
        try:
            if json.loads(meta.read_text())["epoch"] >= 5:
                break
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() - t0 < 300
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    saved = json.loads(meta.read_text())["epoch"]
    out = _hvdrun(sys.executable, str(script), str(p), str(run), str(tmp_path / "out"), "1")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / "out" / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["resumed_from_epoch"] == r1["resumed_from_epoch"] == saved >= 5
    w0, w1 = (np.load(tmp_path / "out" / f"rank{i}.npz") for i in (0, 1))
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    assert json.loads((run / "metrics.json").read_text())["last_epoch"] == 15


def test_backend_horovod_outside_horovodrun_says_what_to_run(cfg_path, tmp_path):
    out = subprocess.run([KERASOPT, "fit", str(cfg_path), "--run-dir", str(tmp_path / "x"),
                          "--set", "distribute.backend=horovod"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert "horovodrun -np 2" in out.stderr and not (tmp_path / "x").exists()


def test_a_failing_rank_names_itself_and_the_job_stops(cfg_path, tmp_path):
    """Rank 1 gets a bad config (exit 2 with its rank); rank 0, waiting in Horovod, is stopped, not left hanging."""
    script = tmp_path / "fail.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        from kerasopt.cli import main
        args = ["fit", r"{cfg_path}", "--run-dir", r"{tmp_path / 'run'}"]
        if os.environ.get("HOROVOD_RANK") == "1":
            args += ["--set", "train.epochs=-1"]
        sys.argv = ["kerasopt", *args]
        main()
    """))
    t0 = time.time()
    out = _hvdrun(sys.executable, str(script), timeout=300)
    assert out.returncode != 0
    assert time.time() - t0 < 240
    text = out.stdout + out.stderr
    assert "[rank 1] error: train.epochs" in text
    assert "Terminating remaining workers" in text


PID_SCRIPT = textwrap.dedent("""
    import os, runpy, sys
    with open(os.path.join(sys.argv[3], "pid" + os.environ["HOROVOD_RANK"]), "w") as f:
        f.write(str(os.getpid()))
    runpy.run_path(sys.argv[5], run_name="__main__")
""")  # run.py (argv[5]) after writing this rank's pid, so the test can signal one rank


# Guards the fix in callbacks/signals.py (act on the agreed stop value only): before it, a SIGTERM that reached
# rank 1 while it waited inside the stop all-reduce made rank 1 stop alone and the job hang (2 hangs in 4 runs
# on a loaded 2-core machine). After it: 9 of 9 passed (3 under load, then 6 in a row, 29-36 s each).
def test_sigterm_to_one_rank_stops_both_after_one_batch_then_both_resume(cfg_path, tmp_path):
    """Rank 1 alone is signalled (a preempted node). Both ranks agree to stop after the same batch,
    rank 0 saves that position, both exit 0; a resumed pair of ranks starts there, together."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    script, wrapper = tmp_path / "run.py", tmp_path / "wrap.py"
    script.write_text(SCRIPT)
    wrapper.write_text(PID_SCRIPT)
    run = tmp_path / "run"
    long_cfg = tmp_path / "long.yaml"
    long_cfg.write_text(yaml.safe_dump(dict(CFG, train={**CFG["train"], "epochs": 60},
                                            callbacks={**CFG["callbacks"], "tensorboard": {"enabled": False}})))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, str(wrapper),
                             str(long_cfg), str(run), str(out_dir), "0", str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    meta = run / "checkpoints" / "last" / "meta.json"
    t0 = time.time()
    try:
        while True:
            try:
                if json.loads(meta.read_text())["epoch"] >= 2:
                    break
            except (OSError, ValueError, KeyError):
                pass
            assert proc.poll() is None, "the job ended before the signal:\n" + proc.stdout.read()[-3000:]
            assert time.time() - t0 < 300
            time.sleep(0.05)
        os.kill(int((out_dir / "pid1").read_text()), signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output[-3000:]  # run.py prints nothing of its own: metrics.json tells
    metrics = json.loads((run / "metrics.json").read_text())
    saved = json.loads(meta.read_text())
    assert metrics["interrupted_by"] == "SIGTERM" and 2 <= saved["epoch"] < 60
    # Both ranks stopped after the same batch: rank 0's checkpoint and both ranks' weights agree.
    w0, w1 = (np.load(out_dir / f"rank{i}.npz") for i in (0, 1))
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    steps = 23  # ceil(1437 training images / global batch 64)
    stopped = saved["epoch"] + (saved["batch"] > 0)  # epochs begun

    short = tmp_path / "resume.yaml"
    short.write_text(yaml.safe_dump(dict(CFG, train={**CFG["train"], "epochs": stopped + 1},
                                         callbacks={**CFG["callbacks"], "tensorboard": {"enabled": False}})))
    res = _hvdrun(sys.executable, str(script), str(short), str(run), str(out_dir), "1")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    r0, r1 = (json.loads((out_dir / f"rank{i}.json").read_text()) for i in (0, 1))
    expected = saved["epoch"] + (saved["batch"] >= steps)  # a stop after an epoch's last batch resumes at the next
    assert r0["resumed_from_epoch"] == r1["resumed_from_epoch"] == expected
    w0, w1 = (np.load(out_dir / f"rank{i}.npz") for i in (0, 1))
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])
    done = json.loads((run / "metrics.json").read_text())
    assert done["last_epoch"] == stopped + 1
    assert len((run / "history.csv").read_text().strip().splitlines()) == stopped + 1 + 1
