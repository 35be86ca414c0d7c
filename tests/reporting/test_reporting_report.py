"""``write_report`` on synthetic run directories: sections, numbers, files, and partial runs."""

import re

from click.testing import CliRunner
from reporting_runs import CONFIG, HISTORY

from kerasopt.cli import main
from kerasopt.reporting import build_report, load_run, write_report

ALL_SECTIONS = ["Summary", "Device and precision", "Training curves", "Learning rate", "EMA vs raw weights",
                "Throughput", "Per-class results", "Checkpoints", "Configuration"]


def _h2(html):
    return re.findall(r"<h2>(.*?)</h2>", html)


def _table_rows(md, first_cell):
    return [line for line in md.splitlines() if line.startswith(f"| {first_cell} |")]


def test_writes_html_markdown_and_pngs(make_run):
    run = make_run("r")
    paths = write_report(run, evaluate=False)
    assert paths == {"html": run / "report.html", "markdown": run / "report.md", "figures": run / "report"}
    html, md = paths["html"].read_text(), paths["markdown"].read_text()
    assert _h2(html) == ALL_SECTIONS
    assert re.findall(r"^## (.*)$", md, re.M) == ALL_SECTIONS
    pngs = sorted(p.name for p in (run / "report").iterdir())
    assert pngs == sorted(["loss.png", "accuracy.png", "lr.png", "ema_loss.png", "ema_accuracy.png",
                           "throughput.png"])
    assert html.count('<img src="data:image/png;base64,') == len(pngs)
    for name in pngs:
        assert f"](report/{name})" in md
    assert "Not computed (evaluation was switched off" in html
    assert not [p for p in run.iterdir() if ".tmp" in p.name or ".old" in p.name]


def test_numbers_read_off_the_history(make_run):
    md = write_report(make_run("r"), evaluate=False)["markdown"].read_text()
    # val_accuracy 0.30 .70 .85 .91 .90: best 0.91 at epoch 4, last 0.90; val_loss best is the minimum
    assert _table_rows(md, "val_accuracy") == ["| val_accuracy | 0.9000 | 0.9100 | 4 |"]
    assert _table_rows(md, "val_loss") == ["| val_loss | 0.5000 | 0.4500 | 4 |"]
    assert _table_rows(md, "val_raw_accuracy") == ["| val_raw_accuracy | 0.9200 | 0.9200 | 5 |"]
    assert "best val_accuracy 0.9100 at epoch 4" in md
    # EMA minus raw at the last epoch: 0.90 - 0.92
    assert "| accuracy | 0.9000 | 0.9200 | -0.0200 |" in md
    assert "| best | 4 | 48 |" in md and "| last | 5 | 60 |" in md  # checkpoint table: epoch, step
    assert "| precision policy | float32 (asked for: auto) |" in md
    assert "| median throughput | 455 examples/s |" in md
    assert "secret" not in md  # the checkpoint's copy of the config is not dumped


def test_a_second_report_replaces_the_first(make_run):
    run = make_run("r")
    write_report(run, evaluate=False)
    (run / "report" / "stale.png").write_bytes(b"old")
    write_report(run, evaluate=False)
    assert not (run / "report" / "stale.png").exists()


def test_without_ema_lr_or_throughput_those_sections_are_left_out(make_run):
    h = {k: v for k, v in HISTORY.items() if not k.startswith("val_raw_") and k not in ("lr", "examples_per_sec")}
    doc = build_report(load_run(make_run("r", history=h)), evaluate=False)
    assert [s.title for s in doc.sections] == ["Summary", "Device and precision", "Training curves",
                                               "Per-class results", "Checkpoints", "Configuration"]


def test_regression_has_no_per_class_section(make_run):
    h = {"epoch": [0, 1], "loss": [2.0, 1.0], "mae": [1.2, 0.8], "val_loss": [2.2, 1.5], "val_mae": [1.3, 1.0]}
    cfg = dict(CONFIG, name="reg")
    run = make_run("reg", history=h, config=cfg, metrics=False, checkpoints=False)
    doc = build_report(load_run(run), evaluate=True)
    titles = [s.title for s in doc.sections]
    assert "Per-class results" not in titles and "EMA vs raw weights" not in titles
    assert [f.name for f in doc.figures] == ["loss", "mae"]
    text = " ".join(b.text for s in doc.sections for b in s.blocks if hasattr(b, "text") and isinstance(b.text, str))
    assert "metrics.json is missing" in text and "No checkpoint was found" in text


def test_a_run_without_a_model_says_why_in_the_per_class_section(make_run):
    doc = build_report(load_run(make_run("r")), evaluate=True)
    (sec,) = [s for s in doc.sections if s.title == "Per-class results"]
    assert sec.blocks[0].text.startswith("Not available:") and "neither an exported model" in sec.blocks[0].text


def test_cli_report_without_evaluation(make_run):
    run = make_run("r")
    res = CliRunner().invoke(main, ["report", str(run), "--no-eval"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"wrote {run / 'report.html'} and {run / 'report.md'} (figures in {run / 'report'}/)"
