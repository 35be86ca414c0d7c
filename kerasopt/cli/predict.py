"""``kerasopt predict``: a click command added to the main group in ``kerasopt.cli``.

Nothing heavy is imported at module import time (``kerasopt --help`` stays fast): TensorFlow is
imported once the run directory and INPUT have been checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from kerasopt.cli.common import guard


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", metavar="INPUT")
@click.option("--out", "--output", "-o", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("predictions.csv"), show_default=True, help="The CSV to write, one row per example.")
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also write the K most likely classes and their probabilities (classification).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Examples per model call (default: the run's data.batch_size).")
@click.option("--on-bad-file", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="An image that does not decode stops the command (error) or is left out and logged (skip).")
@guard
def predict(run_dir: Path, inputs: str, out: Path, top_k: int, batch_size: Optional[int], on_bad_file: str) -> None:
    """Predict with the model of RUN_DIR on INPUT: a folder or glob of images, a .csv, .parquet or .npz,
    or TFRecord files (a glob of shards; the run's data.features, the label not needed).

    The run's own preprocessing (image size, column order, categories, normalization) is applied,
    as saved in RUN_DIR/preprocess.json at the end of `kerasopt fit`.
    """
    from kerasopt.prediction import predict as run_predict

    summary = run_predict(run_dir, inputs, out, top_k=top_k, batch_size=batch_size, on_bad_file=on_bad_file)
    for line in summary.lines():
        click.echo(line)
