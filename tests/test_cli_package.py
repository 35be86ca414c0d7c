"""The ``kerasopt.cli`` package: one group, one module per verb family, nothing left at the old paths."""

import doctest
import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys

import pytest

from kerasopt.cli import main

VERBS = ["bench", "compare", "evaluate", "export", "fit", "predict", "prune", "quantize", "report", "schema",
         "tune", "validate"]


def test_the_group_has_every_verb():
    assert sorted(main.commands) == VERBS


@pytest.mark.parametrize("old", ["cli_bench", "cli_common", "cli_compress", "cli_predict", "cli_report", "cli_tune"])
def test_no_module_is_left_at_the_old_paths(old):
    assert importlib.util.find_spec(f"kerasopt.{old}") is None


def test_the_console_script_is_the_group():
    (ep,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "kerasopt"]
    assert ep.value == "kerasopt.cli:main" and ep.load() is main


def test_python_dash_m_runs_the_group_without_tensorflow():
    code = "import runpy, sys; sys.argv = ['kerasopt', '--help']\ntry:\n    runpy.run_module('kerasopt.cli', " \
           "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "validate" in out and out.split()[-1] == "False"


@pytest.mark.parametrize("name", ["kerasopt.cli", "kerasopt.cli.common"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
