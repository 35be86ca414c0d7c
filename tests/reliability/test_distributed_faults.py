"""Distributed faults: one Horovod rank fails mid-training while the other waits in an allreduce.

The job must end within a bounded time, non-zero, with the failing rank named -- not hang. Real
`horovodrun -np 2 --gloo` on CPU; skipped when Horovod is not built (`make horovod`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
# rank 1's 40th forward pass: in epoch 2 (an epoch is 23 training + 6 validation batches), after the
# epoch-1 checkpoint, so rank 0 is blocked in the gradient allreduce of a real step when rank 1 dies
FAIL_AT_CALL = 40
BOUND_S = 60  # from the failure to the end of the whole job

# A model.type: custom builder; on rank 1 its forward pass raises at a given call, like a bad batch or a
# device error would. The moment is written to a file first, so the test can time the shutdown.
BUILDER = textwrap.dedent('''
    import os
    import time

    from kerasopt._keras import keras, tf

    _calls = [0]


    def _fail_on_rank1(x, at, stamp):
        _calls[0] += 1
        if _calls[0] >= at:
            with open(stamp, "w") as f:
                f.write(repr(time.time()))
            raise RuntimeError(f"injected failure at forward pass {_calls[0]}")
        return x


    def build(input_shape, num_classes, fail_at, stamp):
        inputs = keras.Input(shape=input_shape)
        x = inputs
        if os.environ.get("HOROVOD_RANK") == "1":
            def guard(t):
                out = tf.py_function(lambda v: _fail_on_rank1(v, fail_at, stamp), [t], t.dtype)
                out.set_shape(t.shape)
                return out

            x = keras.layers.Lambda(guard, name="fault")(x)
        x = keras.layers.Dense(64, activation="relu")(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
''')


def test_a_rank_failing_mid_training_stops_the_job_and_names_itself(tmp_path, fault_record):
    (tmp_path / "faulty_model.py").write_text(BUILDER)
    stamp = tmp_path / "failed_at"
    cfg = {
        "name": "hvd_fault", "seed": 3, "report": False,
        "data": {"source": "sklearn", "name": "digits", "batch_size": 64, "normalize": "minmax", "reshape": [64]},
        "model": {"type": "custom", "builder": "faulty_model:build",
                  "kwargs": {"fail_at": FAIL_AT_CALL, "stamp": str(stamp)}},
        "train": {"epochs": 20, "verbose": 0, "jit_compile": False,
                  "optimizer": {"type": "adam", "learning_rate": 0.003}},
        "callbacks": {"tensorboard": {"enabled": False}},
        "distribute": {"backend": "horovod"},
        "export": {"formats": []},
    }
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.Popen([HOROVODRUN, "-np", "2", "-H", "localhost:2", "--gloo", KERASOPT, "fit", str(cfg_path),
                             "--run-dir", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail("the job hung after a rank failed:\n" + output[-3000:])
    ended = time.time()
    assert stamp.is_file(), "rank 1 never reached its failure point:\n" + output[-3000:]
    after = ended - float(stamp.read_text())
    assert proc.returncode != 0, output[-3000:]
    named = re.search(r"\[rank 1\] error: .*injected failure at forward pass \d+", output)
    assert named, output[-3000:]
    # one line per rank, not a stack dump (horovodrun's own launcher prints its traceback; that is Horovod's)
    assert not re.search(r"^\[\d+\]<std(out|err)>:Traceback", output, re.M), output[-3000:]
    assert re.search(r"\[rank 0\] error: .*Horovod has been shut down", output), output[-3000:]
    assert after < BOUND_S, f"the job took {after:.1f}s to stop after rank 1 failed"
    meta = tmp_path / "run" / "checkpoints" / "last" / "meta.json"
    saved_epoch = json.loads(meta.read_text())["epoch"] if meta.is_file() else None
    assert saved_epoch == 1  # rank 0's epoch-1 checkpoint survives the job's end
    print(f"rank 1 failed; horovodrun exited {proc.returncode} {after:.1f}s later; rank 0's last checkpoint: "
          f"epoch {saved_epoch}; {named.group(0)}")
    fault_record("one Horovod rank (of 2) raises mid-training; the other waits in allreduce",
                 f"job exits non-zero within {BOUND_S}s of the failure, the error line names [rank 1]",
                 seconds_to_stop=round(after, 1), returncode=proc.returncode, message=named.group(0))
