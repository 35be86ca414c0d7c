"""``RUN_DIR/preprocess.json``: what a trained model expects of its input, for ``kerasopt predict``.

Written by ``fit`` on the chief at the end of a run, from the resolved config and the ``DataSpec``
of the training split: the source kind, the task and class names, the model's input shape and
dtype, and every step the training pipeline applies to a raw example (no augmentation):

- images (``image_dir``, or a TFRecord image feature): decode to uint8 at ``image.size`` with
  ``image.channels`` (a file of another size is resized bilinearly and rounded back to uint8), cast
  to float32 with pixel values 0..255 (not divided by 255), then ``resize`` and ``normalize``;
- tables (``csv``/``parquet``): ``table.columns`` in that order, numeric ones as float32 and each
  ``table.categorical`` column one-hot over its sorted training vocabulary (an unseen value is all
  zeros), then ``normalize``;
- arrays (``npz``, ``sklearn``, ...): cast to float32 (int32 for token ids), ``reshape``, ``resize``,
  ``normalize``.

``normalize`` holds the training split's statistics; the pipeline applies ``(x - offset) / scale``
per feature of the last axis (:func:`normalizer_arrays`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from kerasopt.errors import ConfigError

PREPROCESS_FILE = "preprocess.json"
FORMAT = 1


def describe_preprocessing(cfg, spec, model) -> dict[str, Any]:
    """The ``preprocess.json`` record of a run trained with ``cfg`` on data described by ``spec``.

    Example: for an ``image_dir`` run on 16x16 RGB files, ``describe_preprocessing(cfg, bundle.spec,
    model)["image"]`` is ``{"size": [16, 16], "channels": 3}`` and ``["kind"]`` is ``"image"``.
    """
    from kerasopt.version import __version__

    d = cfg.data
    units = int(model.outputs[0].shape[-1])
    head = "regression" if spec.task == "regression" else ("binary" if units == 1 else "multiclass")
    image = _image_input(cfg, spec)
    table = _table_columns(spec) if image is None else None
    kind = "image" if image else ("table" if d.source in ("csv", "parquet") else "array")
    record: dict[str, Any] = {
        "format": FORMAT, "written_by": f"kerasopt {__version__}", "source": d.source, "kind": kind,
        "task": spec.task, "head": head, "class_names": list(spec.class_names) if spec.class_names else None,
        "num_classes": spec.num_classes, "label_dim": spec.label_dim,
        "input_shape": [int(s) for s in spec.input_shape], "input_dtype": spec.input_dtype,
        "batch_size": d.batch_size, "reshape": d.reshape, "resize": d.resize,
        "normalize": spec.extras.get("normalize") if d.normalize != "none" else None,
        "image": image, "table": table,
        "tfrecord": ({"features": {n: {"dtype": f.dtype, "shape": list(f.shape)} for n, f in d.features.items()},
                      "label_key": d.label_key} if d.source == "tfrecord" else None),
    }
    record["steps"] = _steps(record)
    return record


def _image_input(cfg, spec) -> Optional[dict[str, Any]]:
    """``{"size", "channels"}`` of decoded images when the run reads encoded images, else None."""
    d = cfg.data
    if d.source == "image_dir":
        return {"size": [int(s) for s in spec.extras["image_size"]], "channels": int(spec.extras["channels"])}
    if d.source == "tfrecord":
        for f in d.features.values():
            if f.dtype == "image":
                return {"size": [int(f.shape[0]), int(f.shape[1])], "channels": int(f.shape[2])}
    return None


def _table_columns(spec) -> Optional[dict[str, Any]]:
    """Raw feature columns in model order and the one-hot vocabularies, when the features have names."""
    names = [str(n) for n in spec.extras.get("feature_names") or []]
    categories = {str(k): [str(v) for v in vals] for k, vals in (spec.extras.get("categories") or {}).items()}
    if not names or len(spec.input_shape) != 1 or len(names) != spec.input_shape[0]:
        return None
    expanded = {f"{c}={v}": c for c, vals in categories.items() for v in vals}
    columns: list[str] = []
    for name in names:  # "color=red", "color=blue" -> "color", once, where its block starts
        column = expanded.get(name, name)
        if column not in columns:
            columns.append(column)
    return {"columns": columns, "categorical": categories, "feature_names": names,
            "label_column": spec.extras.get("label_column")}


def _steps(record: dict[str, Any]) -> list[str]:
    """The preprocessing in words, for a person reading the file (TF Serving users, other languages)."""
    steps = []
    if record["image"]:
        h, w = record["image"]["size"]
        steps += [f"decode the image to uint8 ({h}, {w}, {record['image']['channels']}); a file of another size is "
                  "resized (bilinear) and rounded back to uint8",
                  "cast to float32: pixel values stay 0..255 (not divided by 255)"]
    elif record["table"]:
        t = record["table"]
        steps.append(f"columns {', '.join(t['columns'])} in this order; numeric ones as float32"
                     + (f"; {', '.join(t['categorical'])} one-hot over the vocabulary in 'categorical' "
                        "(an unseen value is all zeros)" if t["categorical"] else ""))
    else:
        steps.append(f"cast to {record['input_dtype']}")
    if record["reshape"]:
        steps.append(f"reshape each example to {record['reshape']}")
    if record["resize"]:
        steps.append(f"resize to {record['resize']} (bilinear, in float32)")
    if record["normalize"]:
        n = record["normalize"]
        what = "(x - mean) / std, std 1 where std <= 1e-7" if n["method"] == "standard" else \
            "(x - min) / (max - min), 1 where max - min <= 1e-12"
        steps.append(f"normalize per feature of the last axis: {what}")
    return steps


def write_preprocessing(run_dir: Path, cfg, spec, model, say: Callable[[str], None]) -> Optional[Path]:
    """Write ``run_dir/preprocess.json`` (temporary file, then renamed); never fails a finished run.

    Example: ``fit`` calls ``write_preprocessing(rd.path, cfg, bundle.spec, model, say)`` after the
    exports and gets ``Path("runs/x/preprocess.json")``, or None after saying why it could not.
    """
    from kerasopt.io.atomic import write_json

    path = Path(run_dir) / PREPROCESS_FILE
    try:
        write_json(path, describe_preprocessing(cfg, spec, model))
    except Exception as e:  # noqa: BLE001 - a missing record only disables `kerasopt predict`, which says so
        say(f"{PREPROCESS_FILE} not written: {type(e).__name__}: {e}")
        return None
    return path


def read_preprocessing(run_dir: Path) -> dict[str, Any]:
    """The record of ``run_dir``; ``ConfigError`` when the run has none (it predates it) or it is unreadable.

    Example: ``read_preprocessing(Path("runs/digits_cnn"))["input_shape"]`` is ``[32, 32, 1]``.
    """
    import json

    path = Path(run_dir) / PREPROCESS_FILE
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} has no {PREPROCESS_FILE}: the run predates `kerasopt predict` or did not finish. "
            f"Train it again with `kerasopt fit {Path(run_dir) / 'config.yaml'} --run-dir NEW_DIR` to predict with it")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        got = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ConfigError(f"{path} is not a format-{FORMAT} preprocessing record. Received: format={got!r}")
    return record


def normalizer_arrays(record: dict[str, Any]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(offset, scale)`` as float32 from the record's ``normalize`` statistics, or None.

    The same rule as training (``kerasopt.data.transforms.offset_scale``; a test compares them): a
    constant feature keeps scale 1 instead of dividing by 0.

    Example:
        >>> off, scale = normalizer_arrays({"normalize": {"method": "standard", "mean": [1.0, 2.0], "std": [2.0, 0.0]}})
        >>> off.tolist(), scale.tolist()
        ([1.0, 2.0], [2.0, 1.0])
    """
    from kerasopt.data.transforms import offset_scale

    n = record.get("normalize")
    if not n:
        return None
    if n["method"] == "standard":
        return offset_scale("standard", np.asarray(n["mean"], np.float64), np.asarray(n["std"], np.float64))
    low = np.asarray(n["min"], np.float64)
    return offset_scale("minmax", low, np.asarray(n["max"], np.float64) - low)
