"""The SavedModel's signatures: ``serving_default`` (prepared tensors) and ``serving_raw`` (raw inputs).

``serving_raw`` applies the run's own preprocessing (``preprocess.json``) inside the graph, so a TF
Serving user sends what they have and needs no kerasopt code:

* **image runs** take ``image_bytes``, a batch of encoded PNG/JPEG/BMP/GIF files (``tf.string``):
  decoded and resized to the run's size as training decoded them (``data.sources_files.decode_image``),
  then cast, resized (``data.resize``) and normalized as in :mod:`kerasopt.prediction`;
* **table runs** (CSV/Parquet) take one input per raw column, named after the column (characters
  other than letters, digits and ``_`` become ``_``): numbers as ``float32``, categorical columns as
  ``tf.string``, one-hot encoded with the training vocabulary (an unseen value is all zeros, as in
  training), in the model's column order, then normalized.

Other runs (NPZ, ``sklearn``, token ids) get only ``serving_default``. Both signatures return
``{output name: probabilities or values}``.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from kerasopt._keras import keras, tf
from kerasopt.training.preprocess_record import normalizer_arrays


def signature_name(column: str, taken: set[str]) -> str:
    """A column name as a signature input name: ``[A-Za-z0-9_]``, not starting with a digit, unique.

    Example:
        >>> signature_name("petal length (cm)", set())
        'petal_length__cm_'
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", column) or "column"
    if not name[0].isalpha():
        name = f"c_{name}"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _prepare(record: dict[str, Any]):
    """Float32 batch -> the model's input: training's reshape, resize and normalization."""
    reshape, resize = record.get("reshape"), record.get("resize")
    norm = normalizer_arrays(record)
    offset, scale = (tf.constant(a) for a in norm) if norm is not None else (None, None)

    def prepare(x):
        if reshape:
            x = tf.reshape(x, [-1, *reshape])
        if resize:
            x = tf.image.resize(x, resize, method="bilinear")
        if offset is not None:
            x = (x - offset) / scale
        return x

    return prepare


def _outputs(model: keras.Model, y) -> dict:
    return {model.output_names[0]: y}


def serving_signatures(model: keras.Model, record: Optional[dict[str, Any]]) -> dict:
    """``{"serving_default": ..., "serving_raw": ...}`` concrete functions for ``model.save(signatures=)``.

    ``serving_raw`` is left out when ``record`` is None or the run's inputs have no raw form.
    """
    spec = model.inputs[0]
    default_fn = tf.function(lambda inputs: _outputs(model, model(inputs, training=False)))
    out = {"serving_default": default_fn.get_concrete_function(
        tf.TensorSpec([None, *spec.shape[1:]], spec.dtype, name="inputs"))}
    if record is None or record.get("input_dtype") == "int32":
        return out
    prepare = _prepare(record)
    if record.get("image"):
        size, channels = record["image"]["size"], int(record["image"]["channels"])
        from kerasopt.data.sources_files import decode_image

        def raw_images(image_bytes):
            pixels = tf.map_fn(lambda b: decode_image(b, size, channels), image_bytes,
                               fn_output_signature=tf.TensorSpec([*size, channels], tf.uint8))
            return _outputs(model, model(prepare(tf.cast(pixels, tf.float32)), training=False))

        out["serving_raw"] = tf.function(raw_images).get_concrete_function(
            tf.TensorSpec([None], tf.string, name="image_bytes"))
    elif record.get("table"):
        out["serving_raw"] = _table_signature(model, record, prepare)
    return out


def _table_signature(model: keras.Model, record: dict[str, Any], prepare):
    table = record["table"]
    columns, vocab = table["columns"], table["categorical"]
    taken: set[str] = set()
    names = {c: signature_name(c, taken) for c in columns}
    specs = {names[c]: tf.TensorSpec([None], tf.string if c in vocab else tf.float32, name=names[c])
             for c in columns}

    def raw_columns(**cols):
        parts = []
        for c in columns:
            x = cols[names[c]]
            if c in vocab:  # one-hot in the training vocabulary's order, spaces trimmed, as the table encoder does
                x = tf.strings.strip(x)
                parts.append(tf.cast(tf.equal(x[:, None], tf.constant(vocab[c])[None, :]), tf.float32))
            else:
                parts.append(tf.reshape(x, [-1, 1]))
        return _outputs(model, model(prepare(tf.concat(parts, axis=1)), training=False))

    return tf.function(raw_columns).get_concrete_function(**specs)


__all__ = ["serving_signatures", "signature_name"]
