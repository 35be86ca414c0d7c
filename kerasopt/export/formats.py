"""Write a model in each export format, each file or folder swapped in atomically.

``keras``: ``<name>.keras`` (architecture and weights, no optimizer);
``saved_model``: ``saved_model/`` for TF Serving and converters, with the signatures of
:mod:`kerasopt.export.serving`;
``tflite``: ``<name>.tflite`` (float32; quantized ones come from ``kerasopt quantize``);
``onnx``: ``<name>.onnx`` (tf2onnx, opset 17);
``tftrt`` (:func:`export_tftrt`): ``tftrt/``, a TF-TRT SavedModel, on a GPU host with TensorRT.
``kerasopt export`` (:mod:`kerasopt.export.verify`) loads each one back and checks its predictions.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from kerasopt.io.atomic import staged_file, staged_folder

FORMATS = ("keras", "saved_model", "tflite", "onnx")


def export_model(model: Any, folder: Path, formats: list[str], name: str = "model",
                 preprocess: dict | None = None) -> dict[str, str]:
    """Export the Keras ``model`` into ``folder`` in each format; return ``{format: path}``.

    Each file or folder is written beside a temporary name and renamed in, so a kill leaves the
    previous export or the new one. ``preprocess`` (the run's ``preprocess.json`` record) adds the
    SavedModel's ``serving_raw`` signature, which takes raw images or columns.

    For example, ``export_model(model, Path("runs/x/model"), ["keras"])`` returns
    ``{"keras": "runs/x/model/model.keras"}``.
    """
    from kerasopt._keras import keras

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Export the network only (no optimizer or compile config): the file then loads in plain
    # tf_keras without kerasopt's schedule classes, and is smaller. Training state lives in checkpoints/.
    model = keras.Model(model.inputs, model.outputs, name=model.name)
    out: dict[str, str] = {}
    for fmt in formats:
        if fmt not in FORMATS:  # the schema only lets known formats through
            raise ValueError(f"unknown export format. Received: {fmt}")
        out[fmt] = str(_WRITERS[fmt](model, folder, name, preprocess))
    return out


def _keras(model, folder: Path, name: str, preprocess) -> Path:
    final = folder / f"{name}.keras"
    with staged_file(final) as tmp:  # keeps the .keras suffix, which picks the format
        model.save(tmp)
    return final


def _saved_model(model, folder: Path, name: str, preprocess) -> Path:
    from kerasopt.export.serving import serving_signatures

    final = folder / "saved_model"
    with staged_folder(final) as tmp:
        model.save(tmp, save_format="tf", signatures=serving_signatures(model, preprocess))
    return final


def _tflite(model, folder: Path, name: str, preprocess) -> Path:
    from kerasopt.compress.convert import to_tflite

    final = folder / f"{name}.tflite"
    with staged_file(final) as tmp:
        tmp.write_bytes(to_tflite(model))
    return final


def _onnx(model, folder: Path, name: str, preprocess) -> Path:
    from kerasopt.compress.convert import to_onnx

    final = folder / f"{name}.onnx"
    with staged_file(final) as tmp:
        to_onnx(model, tmp)
    return final


_WRITERS = {"keras": _keras, "saved_model": _saved_model, "tflite": _tflite, "onnx": _onnx}


def export_tftrt(model: Any, folder: Path) -> Path:
    """``folder/tftrt``: the model as a SavedModel converted by TF-TRT (needs TensorRT)."""
    from kerasopt.compress.convert import to_tftrt

    folder = Path(folder)
    parent = folder.parent if folder.parent.exists() else None
    src_dir = Path(tempfile.mkdtemp(prefix=".tmp-tftrt-src-", dir=parent))
    try:
        src = Path(export_model(model, src_dir, ["saved_model"])["saved_model"])
        final = folder / "tftrt"
        with staged_folder(final) as staging:
            to_tftrt(src, staging)
        return final
    finally:
        shutil.rmtree(src_dir, ignore_errors=True)


def find_exported_model(run_dir: Path) -> Path | None:
    """The ``.keras`` file of a run directory, if it was exported.

    Example:
        >>> find_exported_model(Path("/no/such/run")) is None
        True
    """
    files = sorted((Path(run_dir) / "model").glob("*.keras"))
    return files[0] if files else None


__all__ = ["FORMATS", "export_model", "export_tftrt", "find_exported_model"]
