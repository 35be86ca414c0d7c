"""Reports of runs: ``report.html``/``report.md`` for one run, ``compare.html`` for several.

No TensorFlow is imported here; only the per-class evaluation of a report
(:mod:`kerasopt.reporting.classeval`) loads it, and only when it runs.

Example:
    >>> from kerasopt.reporting import write_report, compare_runs  # doctest: +SKIP
    >>> write_report("runs/digits_cnn")["html"]  # doctest: +SKIP
    PosixPath('runs/digits_cnn/report.html')
"""

from kerasopt.reporting.compare import compare_runs
from kerasopt.reporting.report import build_report, write_report
from kerasopt.reporting.rundata import RunData, load_run

__all__ = ["RunData", "build_report", "compare_runs", "load_run", "write_report"]
