"""``kerasopt export RUN_DIR --format ...``: write each format (:mod:`kerasopt.export.formats`), load it
back and compare its predictions with the Keras model on a validation batch.

A float format that disagrees (max |difference| above ``FLOAT_TOLERANCE``) is an error (exit 1):
a silently wrong export is worse than none. Quantized TFLite is reported, not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from kerasopt.errors import ConfigError
from kerasopt.export.formats import FORMATS as WRITABLE
from kerasopt.export.formats import export_model, export_tftrt
from kerasopt.io.atomic import write_bytes

FORMATS = (*WRITABLE, "tftrt")
FLOAT_TOLERANCE = 1e-3


class ExportMismatch(RuntimeError):
    """A float export whose predictions differ from the Keras model's."""


def export_run(target: Path | str, formats: Sequence[str], *, config=None, overrides=None, out: Optional[Path] = None,
               quantize: Sequence[str] = (), say: Optional[Callable[[str], None]] = None) -> dict:
    """Export the model of ``target`` (run directory, .keras file or SavedModel folder).

    ``config`` is needed only for a model file (a run directory has its ``config.yaml``): it
    supplies the validation batch used for the check and int8 calibration data. For example,
    ``export_run("runs/digits_cnn", ["tflite", "onnx"])`` writes ``runs/digits_cnn/model/digits_cnn.tflite``
    and ``.onnx`` and returns ``{"model": ..., "results": [{"format": "tflite", "max_abs_diff": ...}, ...]}``.
    """
    from kerasopt.compress.loading import find_model_file, load_model
    from kerasopt.compress.pipeline import agreement, prepare
    from kerasopt.config.loader import load_config
    from kerasopt.io.console import console_print
    from kerasopt.training.precision import apply_policy

    say = say or console_print
    target = Path(target)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not (formats or quantize):
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}. Received: {', '.join(bad) or 'none'}")
    path = find_model_file(target)
    if config is None:
        run_cfg = target / "config.yaml" if target.is_dir() else None
        if run_cfg is None or not run_cfg.is_file():
            raise ConfigError(f"exporting {target} needs the CONFIG that describes its data (--config), "
                              "for the validation batch the export is checked on")
        config = run_cfg
    cfg = load_config(config, overrides)
    if "tftrt" in formats:  # say it before any work
        from kerasopt.compress.convert import tensorrt_available

        ok, why = tensorrt_available()
        if not ok:
            raise ConfigError(f"--format tftrt needs TensorRT: {why}. Export saved_model here and convert it "
                              "with TF-TRT on a GPU host")
    apply_policy("float32")
    model = load_model(path, float32=True)
    wb = prepare(cfg, model)
    xb = wb.batch()
    ref = model.predict_on_batch(xb)
    folder = Path(out) if out else (target / "model" if target.is_dir() else path.parent)
    name = cfg.name
    results = []
    for fmt in formats:
        if fmt == "tftrt":
            written = export_tftrt(model, folder)
        else:
            written = export_model(model, folder, [fmt], name=name)[fmt]
        got = runner(fmt, Path(written))(xb)
        results.append({"format": fmt, "path": str(written), **agreement(ref, got, wb.kind)})
    for mode in quantize:
        from kerasopt.compress.convert import tflite_runner, to_tflite

        rep = wb.representative(256) if mode == "int8" else None
        content = to_tflite(model, mode, rep)
        file = folder / f"{name}.{mode}.tflite"
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes(file, content)
        results.append({"format": f"tflite-{mode}", "path": str(file),
                        **agreement(ref, tflite_runner(content)(xb), wb.kind)})
    say(f"{'format':<16} {'max|diff|':>10} {'argmax agree':>12}  path  (checked on {len(xb)} validation examples)")
    for r in results:
        agree = r.get("argmax_agreement")
        say(f"{r['format']:<16} {r['max_abs_diff']:>10.2g} {'' if agree is None else f'{agree:.1%}':>12}  {r['path']}")
    wrong = [r for r in results if not r["format"].startswith("tflite-") and r["max_abs_diff"] > FLOAT_TOLERANCE]
    if wrong:
        raise ExportMismatch(f"{', '.join(r['format'] for r in wrong)} predictions differ from the Keras model by up "
                             f"to {max(r['max_abs_diff'] for r in wrong):.3g} (> {FLOAT_TOLERANCE})")
    say(f"exported and checked {len(results)} format(s) into {folder}/")
    return {"model": str(path), "results": results}


def runner(fmt: str, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A predict function for the exported file or folder ``path`` in format ``fmt``."""
    from kerasopt.compress import convert

    if fmt == "keras":
        from kerasopt._keras import keras

        loaded = keras.models.load_model(path, compile=False)
        return lambda x: loaded.predict_on_batch(x)
    if fmt in ("saved_model", "tftrt"):
        return convert.saved_model_runner(path)
    if fmt == "tflite":
        return convert.tflite_runner(path.read_bytes())
    if fmt == "onnx":
        return convert.onnx_runner(path)
    raise ValueError(f"no runner for {fmt}")


__all__ = ["FLOAT_TOLERANCE", "FORMATS", "ExportMismatch", "export_run", "runner"]
