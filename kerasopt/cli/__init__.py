"""The ``kerasopt`` command: parse, call one pipeline function, map errors to exit codes.

Exit codes: 0 success, 2 bad config or input (one line, no traceback), 1 anything
else (:mod:`kerasopt.cli.common`). Each verb family has its own module; this one
only builds the group. TensorFlow is imported only by the verbs that train or
evaluate, so ``--help``, ``validate`` and ``schema`` answer in well under a second.

Example:
    >>> sorted(main.commands)[:4]
    ['bench', 'compare', 'evaluate', 'export']
"""

from __future__ import annotations

import click

from kerasopt.cli.bench import bench
from kerasopt.cli.compress import export, prune, quantize
from kerasopt.cli.predict import predict
from kerasopt.cli.reports import compare, report
from kerasopt.cli.train import evaluate, fit, schema, validate
from kerasopt.cli.tune import tune
from kerasopt.version import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kerasopt")
def main() -> None:
    """kerasopt: one YAML file to a trained, checkpointed, exported Keras model."""


for _command in (fit, validate, evaluate, schema, report, compare, predict, tune, prune, quantize, export, bench):
    main.add_command(_command)
