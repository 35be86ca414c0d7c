"""The ``fit`` verb: training, then the steps a config chains after it (the report, pruning).

``kerasopt fit``, ``kerasopt.fit()`` and tune trials call :func:`fit` here. Training itself
(:func:`kerasopt.training.fit.fit`) imports neither the report nor the compressors; this module hands
them over as ``after`` steps, which run on the chief once a run has finished, before the processes
of a distributed run leave together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Say = Callable[[str], None]


def write_report_step(result, say: Say) -> None:
    """``report.html``/``report.md`` of the run (``report: true``); a failure is said, never raised."""
    if not result.config.report:
        return
    from kerasopt.reporting import write_report

    a = result.assembly
    try:
        paths = write_report(result.run_dir.path, model=result.model,
                             bundle=a.bundle if a.backend.reports_with_data else None)
        say(f"report: {paths['html']}")
    except Exception as e:  # noqa: BLE001 - a report must never cost a finished run
        say(f"report not written: {type(e).__name__}: {e}")


def prune_step(result, say: Say) -> None:
    """``prune:`` in the config: prune the trained model into ``RUN_DIR/pruned/`` (one process only)."""
    cfg = result.config
    if cfg.prune is None:
        return
    if not result.assembly.backend.runs_after_fit:
        say("prune: skipped under distributed training; run `kerasopt prune CONFIG --from RUN_DIR` on one process")
        return
    from kerasopt.compress.pipeline import run_prune

    result.extras["prune"] = run_prune(cfg, result.run_dir.path, overwrite=True, say=say)


AFTER_FIT = (write_report_step, prune_step)


def fit(*args: Any, **kwargs: Any):
    """Train (see :func:`kerasopt.training.fit.fit` for the arguments), then write the report and prune
    as the config asks.

    Example:
        >>> result = kerasopt.fit("configs/digits_cnn.yaml", overrides={"train.epochs": 2})  # doctest: +SKIP
    """
    from kerasopt.training.fit import fit as train

    return train(*args, after=AFTER_FIT, **kwargs)
