"""The reliability suite's ledger: every fault a test injects is recorded with its outcome.

``fault_record(fault, outcome, **details)`` appends one JSON line
``{"fault", "outcome", "test", "session", "slow", ...details}`` to ``$KERASOPT_FAULT_LOG``
(default ``tests/reliability/.fault_log.jsonl``); a test that fails adds a
``{"test", "session", "failed": true}`` line. At the end of the session the
terminal shows "fault | tried | outcome" for this session's records, and
``scripts/reliability_table.py`` renders the same table for docs/RELIABILITY.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SESSION = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
_records: list[dict] = []


def log_path() -> Path:
    return Path(os.environ.get("KERASOPT_FAULT_LOG") or Path(__file__).with_name(".fault_log.jsonl"))


def _append(rec: dict) -> None:
    _records.append(rec)
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(rec, default=str) + "\n")


@pytest.fixture
def fault_record(request):
    """Call ``fault_record("SIGKILL during a checkpoint write", "resumed; weights match", step=41)``."""

    def record(fault: str, outcome: str, **details) -> None:
        _append({"fault": fault, "outcome": outcome, "test": request.node.nodeid, "session": SESSION,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 # `slow` tests run in `make reliability-long` only, not in `make test`
                 "slow": request.node.get_closest_marker("slow") is not None, **details})

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "fault_record" in getattr(item, "fixturenames", ()):
        _append({"test": item.nodeid, "session": SESSION, "failed": True, "when": report.when})


def _table_module():
    spec = importlib.util.spec_from_file_location("reliability_table", ROOT / "scripts" / "reliability_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pytest_terminal_summary(terminalreporter):
    if not _records:
        return
    terminalreporter.section("reliability: faults tried this session")
    for line in _table_module().render(_records).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(log: {log_path()}, session {SESSION}; "
                                "render with `.venv/bin/python scripts/reliability_table.py`)")
