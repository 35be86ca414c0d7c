"""``kerasopt tune CONFIG``: the hyperparameter search verb.

Importing this module imports no TensorFlow; the search (and Keras Tuner) is
imported when the command runs. ``kerasopt.cli`` registers the command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kerasopt.cli.common import EXIT_ERROR, err, guard


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key, e.g. --set tune.max_trials=20 (repeatable).")
@click.option("--out", "--tune-dir", "tune_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The tune directory (default: runs/<name>/tune/). --tune-dir is the same option.")
@click.option("--max-trials", type=click.IntRange(min=1), help="Same as --set tune.max_trials=N.")
@click.option("--isolate/--no-isolate", default=None,
              help="Run each trial in its own process (default: tune.isolate, true).")
@click.option("--overwrite", is_flag=True, help="Delete the tune directory and start the search over.")
@guard
def tune(config, overrides, tune_dir, max_trials, isolate, overwrite):
    """Search the hyperparameters in CONFIG's tune: section.

    Each trial is a full training run in runs/<name>/tune/trials/; the results are
    trials.csv, best.yaml (train it with `kerasopt fit best.yaml`), tune.png and
    summary.json. Running the command again continues the same search.
    """
    from kerasopt.tune.search import tune as run_tune

    extra = list(overrides)
    if max_trials is not None:
        extra.append(f"tune.max_trials={max_trials}")
    if isolate is not None:
        extra.append(f"tune.isolate={'true' if isolate else 'false'}")
    result = run_tune(config, extra, tune_dir=str(tune_dir) if tune_dir else None, overwrite=overwrite)
    if result.stopped:
        err(f"search stopped: {result.stopped}")
        sys.exit(EXIT_ERROR)
    if result.best is None:
        err(f"no trial succeeded ({len(result.records)} trial(s), all failed): no best.yaml; the reasons are in "
             f"{result.tune_dir / 'trials.csv'}")
        sys.exit(EXIT_ERROR)
