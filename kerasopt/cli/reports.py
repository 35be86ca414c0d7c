"""``kerasopt report`` and ``kerasopt compare``: click commands added to the main group in ``kerasopt.cli``.

Nothing heavy is imported at module import time (``kerasopt --help`` stays
fast): matplotlib when a verb runs, TensorFlow only for a report's per-class
evaluation.
"""

from __future__ import annotations

from pathlib import Path

import click

from kerasopt.cli.common import guard


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--no-eval", is_flag=True,
              help="Skip the confusion matrix and per-class scores (no model run, no TensorFlow import).")
@guard
def report(run_dir: Path, no_eval: bool) -> None:
    """Write RUN_DIR/report.html and RUN_DIR/report.md (figures in RUN_DIR/report/)."""
    from kerasopt.reporting.report import write_report

    paths = write_report(run_dir, evaluate=not no_eval)
    click.echo(f"wrote {paths['html']} and {paths['markdown']} (figures in {paths['figures']}/)")


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("compare.html"),
              show_default=True, help="Where to write the HTML page.")
@guard
def compare(run_dirs: tuple[Path, ...], output: Path) -> None:
    """Compare RUN_DIRS: one table in the terminal and overlaid curves in an HTML page."""
    from rich.console import Console

    from kerasopt.reporting.compare import compare_runs, rich_table

    result = compare_runs(run_dirs, output)
    console = Console(highlight=False)
    console.print(rich_table(result["table"], title=f"{len(result['runs'])} runs", width=console.width))
    click.echo(f"wrote {result['html']}")
