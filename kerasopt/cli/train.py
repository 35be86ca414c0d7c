"""``kerasopt fit``, ``validate``, ``evaluate`` and ``schema``: the experiment verbs.

TensorFlow is imported only when ``fit`` trains or ``evaluate`` runs, so ``validate`` and ``schema``
answer in well under a second. ``kerasopt.cli`` adds these commands to the group.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kerasopt.cli.common import guard

_set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                           help="Override a config key, e.g. --set train.epochs=3 (repeatable).")


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_set_option
@click.option("--out", "--run-dir", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The run directory (default: runs/<name>/). --run-dir is the same option.")
@click.option("--resume", is_flag=True, help="Continue the run in the run directory from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@guard
def fit(config, overrides, run_dir, resume, overwrite, print_config):
    """Train the experiment in CONFIG."""
    from kerasopt.config import dump_config, load_config

    cfg = load_config(config, overrides)
    if print_config:
        click.echo(dump_config(cfg), nl=False)
        return
    from kerasopt.workflow import fit as run_fit

    run_fit(cfg, run_dir=run_dir, resume=resume, overwrite=overwrite)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_set_option
@guard
def validate(config, overrides):
    """Check CONFIG against the schema without training."""
    from kerasopt.config import load_config

    cfg = load_config(config, overrides)
    if cfg.tune is not None:
        from kerasopt.tune.space import check_space

        check_space(cfg)
    d, m, t = cfg.data, cfg.model, cfg.train
    click.echo(f"{config}: valid. name={cfg.name} data={d.source}:{d.origin} model={m.type} "
               f"epochs={t.epochs} batch={d.batch_size} optimizer={t.optimizer.type}@{t.optimizer.learning_rate:g} "
               f"precision={t.precision}")


@click.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_set_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@guard
def evaluate(target, config, overrides, as_json):
    """Report metrics of TARGET (a run directory or a .keras file) on the validation split."""
    from kerasopt.evaluation import evaluate as run_eval

    metrics = run_eval(target, config, overrides)
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{target} on the validation split", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}")
    Console().print(table)


@click.command()
@click.option("--out", "--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to a file.")
@guard
def schema(output):
    """Print the JSON Schema of the config (for editor autocompletion of YAML)."""
    from kerasopt.config.schema import ExperimentConfig

    text = json.dumps(ExperimentConfig.model_json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        click.echo(f"wrote {output}")
    else:
        click.echo(text)
