"""scripts/reliability_table.py: the docs/RELIABILITY.md table says which command tried each fault."""

import doctest
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reliability_table.py"


def _module():
    spec = importlib.util.spec_from_file_location("reliability_table", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rows_tried_only_by_slow_tests_are_marked_reliability_long():
    table = _module().render([
        {"fault": "SIGKILL", "outcome": "resumed", "test": "a", "slow": False},
        {"fault": "SIGKILL", "outcome": "resumed", "test": "b", "slow": True},
        {"fault": "25 kills", "outcome": "resumed", "test": "c", "slow": True},
        {"fault": "disk full", "outcome": "exit 1", "test": "d", "slow": True},
        {"fault": "disk full", "outcome": "exit 1 | kept", "test": "e"},  # old records: no "slow" key
        {"test": "f", "failed": True},
    ])
    assert table.splitlines() == [
        "| fault | tried | outcome | run by |",
        "|---|---:|---|---|",
        "| SIGKILL | 2 | resumed | make test |",
        "| 25 kills | 1 | resumed | make reliability-long |",
        "| disk full | 2 | exit 1 (1x); exit 1 \\| kept (1x) | make test |",
        "| `f` | 1 | TEST FAILED before recording its outcome | make test |",
    ]


def test_docstring_example():
    assert doctest.testmod(_module()).failed == 0
