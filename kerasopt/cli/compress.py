"""``kerasopt prune``, ``kerasopt quantize`` and ``kerasopt export`` (no TensorFlow import here)."""

from __future__ import annotations

from pathlib import Path

import click

from kerasopt.cli.common import guard

_from = click.option("--from", "source", required=True, type=click.Path(path_type=Path),
                     help="The trained run directory (or a .keras file / SavedModel folder).")
_out = click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                    help="Output folder (default: RUN_DIR/pruned or RUN_DIR/quantized).")
_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
_set = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                    help="Override a config key, e.g. --set prune.target_sparsity=0.9 (repeatable).")


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_from
@_out
@_overwrite
@_set
@guard
def prune(config, source, out, overwrite, overrides):
    """Prune a trained model with TF-MOT and fine-tune it on CONFIG's data.

    Uses CONFIG's prune: section (defaults: 80% sparsity, polynomial decay, 6 epochs),
    strips the pruning wrappers, exports, and writes compression.json with per-layer
    sparsity, file sizes (raw and gzipped), accuracy and CPU latency before and after.
    """
    from kerasopt.compress.pipeline import run_prune
    from kerasopt.config import load_config

    run_prune(load_config(config, overrides), source, out=out, overwrite=overwrite)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@_from
@_out
@_overwrite
@_set
@guard
def quantize(config, source, out, overwrite, overrides):
    """Quantize a trained model: optional QAT, then TFLite dynamic / float16 / int8.

    Each TFLite file is run with the TFLite interpreter on the whole validation split
    and compared with the float model (accuracy, agreement, size, latency).
    """
    from kerasopt.compress.pipeline import run_quantize
    from kerasopt.config import load_config

    run_quantize(load_config(config, overrides), source, out=out, overwrite=overwrite)


@click.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--format", "formats", multiple=True,
              type=click.Choice(["keras", "saved_model", "tflite", "onnx", "tftrt"]),
              help="Repeatable. tftrt needs an NVIDIA GPU with TensorRT.")
@click.option("--quantize", "quantize", multiple=True, type=click.Choice(["dynamic", "float16", "int8"]),
              help="Also write a quantized TFLite file (repeatable).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Only for a model file: the config describing its data.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Default: RUN_DIR/model/.")
@guard
def export(target, formats, quantize, config, out):
    """Export TARGET's model and check each file against it on a validation batch."""
    from kerasopt.export.verify import export_run

    if not formats and not quantize:
        formats = ("keras", "saved_model")
    export_run(target, list(formats), config=config, out=out, quantize=list(quantize))
