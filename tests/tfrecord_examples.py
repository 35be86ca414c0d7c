"""TFRecord helpers for the tests of any folder (``tests/`` is on ``sys.path`` through its conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasopt._keras import tf


def example(**features) -> bytes:
    """A serialized ``tf.train.Example``: bytes -> bytes_list, floats -> float_list, ints -> int64_list."""
    def feature(v):
        if isinstance(v, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
        v = np.atleast_1d(v)
        if v.dtype.kind == "f":
            return tf.train.Feature(float_list=tf.train.FloatList(value=v.tolist()))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v.tolist()))

    feats = tf.train.Features(feature={k: feature(v) for k, v in features.items()})
    return tf.train.Example(features=feats).SerializeToString()


def write_records(path: Path, records: list[bytes]) -> str:
    """Write ``records`` to the TFRecord file ``path``; return it as a string."""
    with tf.io.TFRecordWriter(str(path)) as w:
        for r in records:
            w.write(r)
    return str(path)
