"""Shared by the training tests: a small tabular experiment on scikit-learn's bundled data."""


def tabular_config(tmp_path, **sections) -> dict:
    """Wine, an MLP of 16 units, 2 epochs, keras export only; ``sections`` merge into (or replace) a section."""
    base = {
        "name": "e2e",
        "runs_root": str(tmp_path / "runs"),
        "data": {"source": "sklearn", "name": "wine", "batch_size": 32, "normalize": "standard"},
        "model": {"type": "mlp", "hidden_units": [16]},
        "train": {"epochs": 2, "optimizer": {"type": "adam", "learning_rate": 0.01}, "verbose": 0},
        "callbacks": {"tensorboard": {"enabled": False}},
        "export": {"formats": ["keras"]},
    }
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return base


def fit_cli(cfg_path, run_dir, *extra: str, env: dict, wait: bool = True):
    """``kerasopt fit CFG --run-dir RUN [extra]`` in a real process: the finished run (asserted exit 0), or
    with ``wait=False`` the running ``Popen`` (stdout and stderr merged) for a test to signal."""
    import subprocess
    import sys
    from pathlib import Path

    cmd = [str(Path(sys.executable).with_name("kerasopt")), "fit", str(cfg_path), "--run-dir", str(run_dir), *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def checkpoint_step(run_dir) -> int:
    """The optimizer step of ``run_dir``'s ``checkpoints/last``, or -1 while there is none (or it is mid-swap)."""
    import json
    from pathlib import Path

    try:
        return json.loads((Path(run_dir) / "checkpoints" / "last" / "meta.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1
