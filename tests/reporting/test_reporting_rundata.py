"""Reading run directories: what counts as a run, history parsing, and bad input that writes nothing."""

import doctest
import importlib
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner
from reporting_runs import HISTORY

from kerasopt.cli import main
from kerasopt.errors import ConfigError
from kerasopt.reporting import load_run, write_report
from kerasopt.reporting.rundata import read_history


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_load_run_reads_the_files(make_run):
    run = load_run(make_run("r"))
    assert run.name == "synthetic"
    assert run.epochs == [1, 2, 3, 4, 5]  # history.csv counts from 0; reports from 1, as metrics.json does
    assert run.metric_names == ["accuracy"]
    assert run.raw_names == ["loss", "accuracy"]
    assert run.history["val_accuracy"] == HISTORY["val_accuracy"]
    assert run.task == "classification"
    assert set(run.checkpoints) == {"best", "last"} and "config" not in run.checkpoints["best"]


def test_repeated_epochs_keep_the_last_row_and_blanks_are_nan(tmp_path):
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_loss\n0,2.0,2.5\n1,1.5,\n1,1.2,1.9\n2,1.0,1.4\n")  # epoch 1 retried after a NaN
    h = read_history(tmp_path / "history.csv")
    assert h["epoch"] == [0, 1, 2]
    assert h["loss"] == [2.0, 1.2, 1.0]
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,2.0,\n")
    assert math.isnan(read_history(tmp_path / "history.csv")["val_loss"][0])


def test_a_column_that_is_never_finite_is_absent(make_run):
    h = dict(HISTORY, val_auc=[float("nan")] * 5)
    run = load_run(make_run("r", history=h))
    assert run.series("val_auc") is None and run.series("val_loss") == HISTORY["val_loss"]


@pytest.mark.parametrize("setup, message", [
    ("missing", "not found"),
    ("file", "not a kerasopt run directory"),
    ("empty_dir", "not a kerasopt run directory"),
    ("no_history", "no training history yet"),
    ("header_only", "no training history yet"),
    ("bad_epoch", "line 2: epoch is not a number"),
    ("bad_metrics", "not valid JSON"),
])
def test_bad_input_is_a_config_error_and_writes_nothing(tmp_path, make_run, setup, message):
    target = tmp_path / "target"
    if setup == "file":
        target.write_text("x")
    elif setup == "empty_dir":
        target.mkdir()
    elif setup != "missing":
        make_run("target")
        if setup == "no_history":
            (target / "history.csv").unlink()
        elif setup == "header_only":
            (target / "history.csv").write_text("epoch,loss\n")
        elif setup == "bad_epoch":
            (target / "history.csv").write_text("epoch,loss\nfirst,1.0\n")
        elif setup == "bad_metrics":
            (target / "metrics.json").write_text("{oops")
    before = _tree(target) if target.is_dir() else None
    with pytest.raises(ConfigError, match=message):
        write_report(target)
    after = _tree(target) if target.is_dir() else None
    assert before == after


def test_cli_report_on_a_non_run_exits_2_with_one_line(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"error: {tmp_path} is not a kerasopt run directory (no config.yaml)"]
    assert list(tmp_path.iterdir()) == []


def test_cli_report_on_a_run_with_no_epoch_yet(make_run):
    run = make_run("fresh")
    (run / "history.csv").unlink()
    (run / "metrics.json").unlink()
    res = CliRunner().invoke(main, ["report", str(run)])
    assert res.exit_code == 2 and "no training history yet" in res.output
    assert not (run / "report.html").exists() and not (run / "report").exists()


def test_compare_with_one_bad_run_writes_nothing(make_run, tmp_path):
    good = make_run("good")
    out = tmp_path / "cmp.html"
    res = CliRunner().invoke(main, ["compare", str(good), str(tmp_path / "nope"), "--output", str(out)])
    assert res.exit_code == 2 and "not found" in res.output and not out.exists()


MODULES = ["kerasopt.reporting.document", "kerasopt.reporting.classeval", "kerasopt.reporting.plots",
           "kerasopt.reporting.html", "kerasopt.reporting.markdown"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_reporting_and_the_cli_do_not_import_tensorflow():
    code = ("import sys, kerasopt.reporting, kerasopt.cli.reports, kerasopt.cli; "
            "print('tensorflow' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
    code = "import sys, kerasopt.cli; print('matplotlib' in sys.modules)"  # `kerasopt --help` stays light
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
