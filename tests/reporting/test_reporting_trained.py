"""Reports of a really trained run: the per-class numbers agree with Keras, and the page renders in Chromium."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from reporting_runs import write_run

from kerasopt.cli import main
from kerasopt.evaluation import evaluate
from kerasopt.reporting import build_report, load_run
from kerasopt.reporting.classeval import evaluate_classes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
SECTIONS = ["Summary", "Device and precision", "Training curves", "Learning rate", "EMA vs raw weights",
            "Throughput", "Per-class results", "Checkpoints", "Configuration"]


@pytest.fixture(scope="module")
def reported(trained_run):
    """`kerasopt report RUN_DIR` on the trained run (the model is loaded from model/*.keras)."""
    result, run_dir = trained_run
    res = CliRunner().invoke(main, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    return result, run_dir


def test_confusion_matrix_agrees_with_keras_evaluate(reported):
    result, run_dir = reported
    rep = evaluate_classes(run_dir)  # the exported model on the rebuilt validation split
    assert rep.matrix.sum() == result.metrics["data"]["num_val"] == 100  # 500 examples, 20% validation
    assert rep.accuracy == pytest.approx(evaluate(run_dir)["accuracy"], abs=1e-6)
    assert rep.support.tolist() == rep.matrix.sum(axis=1).tolist()


def test_the_model_in_memory_gives_the_same_matrix(reported):
    """What ``fit`` passes (model + data bundle) is what the CLI reloads: the EMA weights were exported."""
    from kerasopt.config import load_config
    from kerasopt.data.pipeline import build_datasets

    result, run_dir = reported
    bundle = build_datasets(load_config(run_dir / "config.yaml"))
    from_memory = evaluate_classes(run_dir, model=result.model, bundle=bundle)
    np.testing.assert_array_equal(from_memory.matrix, evaluate_classes(run_dir).matrix)
    doc = build_report(load_run(run_dir), model=result.model, bundle=bundle)
    assert "confusion" in [f.name for f in doc.figures]


FIGURES = ["loss", "accuracy", "lr", "ema_loss", "ema_accuracy", "throughput", "confusion", "per_class"]


def test_report_has_every_section_and_figure(reported):
    _, run_dir = reported
    html = (run_dir / "report.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", html) == SECTIONS
    assert html.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert sorted(p.name for p in (run_dir / "report").iterdir()) == sorted(f"{f}.png" for f in FIGURES)
    md = (run_dir / "report.md").read_text()
    assert "model/digits_cnn.keras (EMA weights) on the 100 validation examples" in md
    assert re.search(r"\| device \| CPU( with bfloat16 instructions)? \|", md)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")
def test_report_renders_in_headless_chromium(reported, tmp_path):
    from PIL import Image

    _, run_dir = reported
    shot = tmp_path / "report.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1280,4000", (run_dir / "report.html").resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    assert img.shape == (4000, 1280, 3)
    ink = img.min(axis=2) < 235  # anything not (near) white: text, table rules, charts
    assert ink.mean() > 0.04, "the page rendered (nearly) blank"
    assert ink[:120].mean() > 0.01, "no title at the top of the page"
    coloured = (img.max(axis=2) - img.min(axis=2)) > 80  # chart lines, bars, the confusion matrix
    bands = coloured.reshape(10, 400, 1280).mean(axis=(1, 2)) > 0.001
    assert bands.sum() >= 5, f"charts missing in parts of the page: {bands.tolist()}"
    # two charts side by side at 1280 px: colour in both halves of some band
    halves = coloured.reshape(10, 400, 2, 640).mean(axis=(1, 3)) > 0.001
    assert halves.all(axis=1).any()


def test_compare_a_trained_and_a_synthetic_run(reported, tmp_path):
    _, run_dir = reported
    other = write_run(tmp_path / "synthetic")
    out = tmp_path / "cmp" / "compare.html"
    out.parent.mkdir()
    res = CliRunner().invoke(main, ["compare", str(run_dir), str(other), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert "digits_cnn" in res.output and "synthetic" in res.output and f"wrote {out}" in res.output
    html = out.read_text()
    assert re.findall(r"<h2>(.*?)</h2>", html) == ["Runs", "Validation curves", "Training curves",
                                                   "Learning rate and throughput"]
    # val_loss, val_accuracy (by epoch and by time), loss, accuracy, lr, throughput
    assert html.count('<img src="data:image/png;base64,') == 7
    assert "0.9100 @4" in html  # the synthetic run's best val_accuracy
