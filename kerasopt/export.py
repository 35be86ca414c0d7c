"""Write the trained model into the run directory's ``model/`` folder.

``keras``: ``model/<name>.keras`` (architecture and weights, no optimizer);
``saved_model``: ``model/saved_model/`` for TF Serving and converters;
``tflite``: ``model/<name>.tflite`` (float32; quantized ones come from ``kerasopt quantize``);
``onnx``: ``model/<name>.onnx`` (tf2onnx, opset 17).
``kerasopt export`` (:mod:`kerasopt.exporting`) adds verification and TF-TRT.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kerasopt._keras import keras


def export_model(model: keras.Model, folder: Path, formats: list[str], name: str = "model",
                 preprocess: dict | None = None) -> dict[str, str]:
    """Export ``model`` in each format; each is written beside a temporary name and renamed in.

    ``preprocess`` (the run's ``preprocess.json`` record) adds the SavedModel's ``serving_raw``
    signature, which takes raw images or columns (:mod:`kerasopt.serving`).

    Example:
        >>> export_model(model, Path("runs/x/model"), ["keras"])  # doctest: +SKIP
        {'keras': 'runs/x/model/model.keras'}
    """
    folder.mkdir(parents=True, exist_ok=True)
    # Export the network only (no optimizer or compile config): the file then loads in plain
    # tf_keras without kerasopt's schedule classes, and is smaller. Training state lives in checkpoints/.
    model = keras.Model(model.inputs, model.outputs, name=model.name)
    out: dict[str, str] = {}
    for fmt in formats:
        if fmt == "keras":
            final = folder / f"{name}.keras"
            tmp = folder / f".tmp-{name}.keras"
            model.save(tmp)
            os.replace(tmp, final)
        elif fmt == "saved_model":
            final = folder / "saved_model"
            tmp = folder / ".tmp-saved_model"
            if tmp.exists():
                shutil.rmtree(tmp)
            from kerasopt.serving import serving_signatures

            model.save(tmp, save_format="tf", signatures=serving_signatures(model, preprocess))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        elif fmt == "tflite":
            from kerasopt.compress.convert import to_tflite

            final = folder / f"{name}.tflite"
            tmp = folder / f".tmp-{name}.tflite"
            tmp.write_bytes(to_tflite(model))
            os.replace(tmp, final)
        elif fmt == "onnx":
            from kerasopt.compress.convert import to_onnx

            final = folder / f"{name}.onnx"
            tmp = folder / f".tmp-{name}.onnx"
            to_onnx(model, tmp)
            os.replace(tmp, final)
        else:  # the schema only lets known formats through
            raise ValueError(f"unknown export format. Received: {fmt}")
        out[fmt] = str(final)
    return out


def find_exported_model(run_dir: Path) -> Path | None:
    """The ``.keras`` file of a run directory, if it was exported."""
    files = sorted((run_dir / "model").glob("*.keras"))
    return files[0] if files else None
