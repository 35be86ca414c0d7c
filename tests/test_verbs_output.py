"""Every verb, run as a real process: no TensorFlow start-up noise on its first lines, and `--out` everywhere."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KERASOPT = str(Path(sys.executable).with_name("kerasopt"))
# What TensorFlow, absl and TFLite print from C++ on a CPU-only machine when nothing silences them.
NOISE = re.compile(r"^(E0000|W0000|I0000|WARNING: All log messages|INFO: Created TensorFlow Lite|fully_quantize:"
                   r"|.*cuInit|.*cuda_|.*oneDNN custom operations|.*TF-TRT Warning)")

CFG = {
    "name": "verbs",
    "data": {"source": "sklearn", "name": "wine", "batch_size": 16, "normalize": "standard"},
    "model": {"type": "mlp", "hidden_units": [16]},
    "train": {"epochs": 2, "verbose": 0, "jit_compile": False},
    "callbacks": {"tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]},
    "report": False,
    "prune": {"target_sparsity": 0.5, "epochs": 1},
    "quantize": {"formats": ["dynamic"]},
    "tune": {"algorithm": "grid", "max_trials": 1, "isolate": False, "objective": "val_accuracy",
             "space": {"train.optimizer.learning_rate": {"type": "choice", "values": [0.01]}}},
}


def _run(*args, cwd):
    out = subprocess.run([KERASOPT, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)
    return out


def _check(out, verb):
    assert out.returncode == 0, (verb, out.stdout[-1500:], out.stderr[-1500:])
    lines = [ln for ln in (out.stderr + "\n" + out.stdout).splitlines() if ln.strip()]
    noisy = [ln for ln in lines if NOISE.match(ln)]
    assert not noisy, (verb, noisy)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("verbs")
    cfg = dict(CFG)
    (d / "cfg.yaml").write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "prune"}))
    (d / "prune.yaml").write_text(yaml.safe_dump(cfg))
    out = _run("fit", "cfg.yaml", "--out", d / "run", cwd=d)  # --out: the run directory
    _check(out, "fit")
    assert (d / "run" / "model" / "verbs.keras").is_file()
    return d


@pytest.mark.parametrize("verb, args, wrote", [
    ("validate", ["cfg.yaml"], None),
    ("schema", ["--out", "schema.json"], "schema.json"),
    ("evaluate", ["run"], None),
    ("report", ["run"], "run/report.html"),
    ("compare", ["run", "run", "--out", "compare.html"], "compare.html"),
    ("export", ["run", "--format", "tflite", "--format", "onnx", "--quantize", "int8", "--out", "exported"],
     "exported/verbs.tflite"),
    ("prune", ["prune.yaml", "--from", "run", "--out", "pruned"], "pruned/compression.json"),
    ("quantize", ["prune.yaml", "--from", "run", "--out", "quantized"], "quantized/compression.json"),
    ("tune", ["cfg.yaml", "--out", "searched"], "searched/best.yaml"),
    ("bench", ["cfg.yaml", "--steps", "5", "--warmup", "2", "--out", "bench.json"], "bench.json"),
])
def test_verb_prints_no_tensorflow_noise_and_writes_to_out(workdir, verb, args, wrote):
    out = _run(verb, *args, cwd=workdir)
    _check(out, verb)
    if wrote:
        assert (workdir / wrote).exists(), (verb, sorted(p.name for p in workdir.iterdir()))
    if verb == "schema":
        assert json.loads((workdir / wrote).read_text())["title"] == "ExperimentConfig"


def test_old_output_flag_names_still_work(workdir):
    out = _run("schema", "--output", "old.json", cwd=workdir)
    assert out.returncode == 0 and (workdir / "old.json").is_file()
    out = _run("fit", "cfg.yaml", "--run-dir", workdir / "run", "--print-config", cwd=workdir)
    assert out.returncode == 0 and "name: verbs" in out.stdout
