"""The ``kerasopt`` command: parse, call one pipeline function, map errors to exit codes.

Exit codes: 0 success, 2 bad config or input (one line, no traceback), 1 anything
else. TensorFlow is imported only by the verbs that train or evaluate, so
``--help``, ``validate`` and ``schema`` answer in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kerasopt import __version__
from kerasopt.cli_common import _guard

_set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                           help="Override a config key, e.g. --set train.epochs=3 (repeatable).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kerasopt")
def main() -> None:
    """kerasopt: one YAML file to a trained, checkpointed, exported Keras model."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_set_option
@click.option("--out", "--run-dir", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The run directory (default: runs/<name>/). --run-dir is the same option.")
@click.option("--resume", is_flag=True, help="Continue the run in the run directory from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
@_guard
def fit(config, overrides, run_dir, resume, overwrite, print_config):
    """Train the experiment in CONFIG."""
    from kerasopt.config import dump_config, load_config

    cfg = load_config(config, overrides)
    if print_config:
        click.echo(dump_config(cfg), nl=False)
        return
    from kerasopt.training.fit import fit as run_fit

    run_fit(cfg, run_dir=run_dir, resume=resume, overwrite=overwrite)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_set_option
@_guard
def validate(config, overrides):
    """Check CONFIG against the schema without training."""
    from kerasopt.config import load_config

    cfg = load_config(config, overrides)
    if cfg.tune is not None:
        from kerasopt.tune.space import check_space

        check_space(cfg)
    d, m, t = cfg.data, cfg.model, cfg.train
    click.echo(f"{config}: valid. name={cfg.name} data={d.source}:{d.name or d.path} model={m.type} "
               f"epochs={t.epochs} batch={d.batch_size} optimizer={t.optimizer.type}@{t.optimizer.learning_rate:g} "
               f"precision={t.precision}")


@main.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@_set_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@_guard
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


@main.command()
@click.option("--out", "--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to a file.")
@_guard
def schema(output):
    """Print the JSON Schema of the config (for editor autocompletion of YAML)."""
    from kerasopt.config.schema import ExperimentConfig

    text = json.dumps(ExperimentConfig.model_json_schema(), indent=2)
    if output:
        output.write_text(text + "\n")
        click.echo(f"wrote {output}")
    else:
        click.echo(text)


from kerasopt.cli_report import compare as _compare  # noqa: E402
from kerasopt.cli_report import report as _report  # noqa: E402

main.add_command(_report)
main.add_command(_compare)

from kerasopt.cli_predict import predict as _predict  # noqa: E402

main.add_command(_predict)

from kerasopt.cli_tune import tune as _tune  # noqa: E402

main.add_command(_tune)

from kerasopt.cli_compress import export as _export  # noqa: E402
from kerasopt.cli_compress import prune as _prune  # noqa: E402
from kerasopt.cli_compress import quantize as _quantize  # noqa: E402

for _cmd in (_prune, _quantize, _export):
    main.add_command(_cmd)

from kerasopt.cli_bench import bench as _bench  # noqa: E402

main.add_command(_bench)

if __name__ == "__main__":  # pragma: no cover
    main()
