"""distribute.backend: mirrored trains on two logical CPU devices (a fresh process: devices are fixed at TF start)."""

import json
import subprocess
import sys
import textwrap


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(f"""
        import json
        from kerasopt._keras import tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import kerasopt
        cfg = {{
            "name": "mirrored", "runs_root": r"{tmp_path}",
            "data": {{"source": "sklearn", "name": "wine", "batch_size": 32, "normalize": "standard"}},
            "model": {{"type": "mlp", "hidden_units": [16]}},
            "train": {{"epochs": 4, "verbose": 0, "optimizer": {{"type": "adam", "learning_rate": 0.01}},
                       "jit_compile": False}},
            "distribute": {{"backend": "mirrored"}},
            "callbacks": {{"tensorboard": {{"enabled": False}}}},
            "export": {{"formats": ["keras"]}},
        }}
        r = kerasopt.fit(cfg, print_fn=lambda s: None)
        print("RESULT", json.dumps({{"replicas": r.metrics["strategy"]["replicas"],
                                    "acc": r.metrics["final"]["val_accuracy"]}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT"))
    res = json.loads(line.split(" ", 1)[1])
    assert res["replicas"] == 2
    assert res["acc"] > 0.8
