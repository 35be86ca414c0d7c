"""Render the reliability suite's fault log (JSON lines) as the markdown table in docs/RELIABILITY.md.

Each line the suite's ``fault_record`` fixture writes is
``{"fault", "outcome", "test", "session", ...}``; a test that failed adds
``{"test", "session", "failed": true}``. Rows are grouped by fault, in the order
the faults were first tried; ``tried`` counts the records, ``outcome`` lists each
distinct outcome (with its count when there is more than one).

Usage::

    .venv/bin/pytest -q tests/reliability            # writes tests/reliability/.fault_log.jsonl
    .venv/bin/python scripts/reliability_table.py    # prints the latest session's table
    .venv/bin/python scripts/reliability_table.py --write docs/RELIABILITY.md   # replaces the marked table

Example:
    >>> print(render([{"fault": "SIGKILL", "outcome": "resumed", "test": "t"}] * 2))
    | fault | tried | outcome | run by |
    |---|---:|---|---|
    | SIGKILL | 2 | resumed | make test |
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

DEFAULT_LOG = Path(__file__).resolve().parent.parent / "tests" / "reliability" / ".fault_log.jsonl"
START, END = "<!-- fault-table:start -->", "<!-- fault-table:end -->"


def read_log(path: Path) -> list[dict]:
    """All records in ``path`` (lines that are not JSON objects are skipped)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def select_session(records: list[dict], session: str = "latest") -> list[dict]:
    """The records of one pytest session (``latest`` = the last one that recorded a fault), or ``all``."""
    if session == "all":
        return records
    if session == "latest":
        named = [r.get("session") for r in records if "fault" in r]
        if not named:
            return []
        session = named[-1]
    return [r for r in records if r.get("session") == session]


def aggregate(records: list[dict]) -> list[tuple[str, int, str, str]]:
    """``(fault, tried, outcome, run by)`` rows; a failed test's faults say so, as does a test that failed
    unrecorded. ``run by`` is ``make test`` when a test outside the ``slow`` marker tried the fault,
    else ``make reliability-long``."""
    failed = {r["test"] for r in records if r.get("failed")}
    rows: dict[str, Counter] = {}
    quick: dict[str, bool] = {}
    recorded_tests = set()
    for r in records:
        if "fault" not in r:
            continue
        recorded_tests.add(r.get("test"))
        outcome = str(r.get("outcome", ""))
        if r.get("test") in failed:
            outcome = f"TEST FAILED ({outcome})"
        fault = str(r["fault"])
        rows.setdefault(fault, Counter())[outcome] += 1
        quick[fault] = quick.get(fault, False) or not r.get("slow", False)
    for test in sorted(failed - recorded_tests):
        rows.setdefault(f"`{test}`", Counter())["TEST FAILED before recording its outcome"] += 1
    table = []
    for fault, outcomes in rows.items():
        tried = sum(outcomes.values())
        if len(outcomes) == 1:
            text = next(iter(outcomes))
        else:
            text = "; ".join(f"{o} ({n}x)" for o, n in outcomes.most_common())
        table.append((fault, tried, text, "make test" if quick.get(fault, True) else "make reliability-long"))
    return table


_TMP = re.compile(r"/tmp/pytest-of-[^/\s]+/pytest-\d+/[^/\s]+/")


def _cell(text: str) -> str:
    text = _TMP.sub("<tmp>/", text)  # pytest's per-test folders say nothing to a reader
    return text.replace("|", "\\|").replace("\n", " ")  # GitHub tables read \| as a literal bar


def render(records: list[dict]) -> str:
    """The markdown table (header only when there are no records)."""
    lines = ["| fault | tried | outcome | run by |", "|---|---:|---|---|"]
    for fault, tried, outcome, run_by in aggregate(records):
        lines.append(f"| {_cell(fault)} | {tried} | {_cell(outcome)} | {run_by} |")
    return "\n".join(lines)


def replace_block(doc: str, table: str) -> str:
    """``doc`` with the text between the fault-table markers replaced by ``table``."""
    if START not in doc or END not in doc:
        raise SystemExit(f"error: the document has no {START} ... {END} block to replace")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", nargs="?", default=os.environ.get("KERASOPT_FAULT_LOG", str(DEFAULT_LOG)))
    ap.add_argument("--session", default="latest", help="latest (default), all, or a session id from the log")
    ap.add_argument("--write", metavar="MARKDOWN", help="replace the marked table in this file instead of printing")
    args = ap.parse_args(argv)
    path = Path(args.log)
    if not path.is_file():
        print(f"error: no fault log at {path}; run `.venv/bin/pytest tests/reliability` first", file=sys.stderr)
        return 2
    records = select_session(read_log(path), args.session)
    table = render(records)
    if args.write:
        target = Path(args.write)
        target.write_text(replace_block(target.read_text(), table))
        print(f"wrote {len(aggregate(records))} rows to {target}")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
