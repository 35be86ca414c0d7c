"""The per-example preparation: cast to float32 (int32 for token ids), ``data.reshape``, ``data.resize``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from kerasopt._keras import tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.data.source_base import SourceData, as_written
from kerasopt.data.sources_files import DECODE_CHUNK
from kerasopt.data.transforms import check_image
from kerasopt.errors import ConfigError

# Examples prepared per map call: as for decoding (DECODE_CHUNK's comment), one call per example cost
# more than the cast/resize itself; chunks of 64, then unbatch, fed about twice the examples/s.
PREP_CHUNK = DECODE_CHUNK


@dataclass
class Prep:
    """The per-example work (cast, reshape, resize) as ``dataset -> dataset`` functions.

    ``elements``: on unbatched examples; those of one fixed shape are prepared ``PREP_CHUNK`` at a
    time (order kept), those of varying shape (before a resize) one at a time, and nothing is
    mapped when there is nothing to do. ``fn``: the same on one batch (``lead=(-1,)``).
    """

    fn: Callable
    noop: Callable[[tf.data.TensorSpec, tf.data.TensorSpec], bool]
    calls: Optional[int]

    def elements(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        x_spec, y_spec = ds.element_spec
        if self.noop(x_spec, y_spec):
            return ds
        if not x_spec.shape.is_fully_defined():
            return ds.map(as_written(self.fn), num_parallel_calls=self.calls)
        chunks = ds.batch(PREP_CHUNK).map(as_written(lambda x, y: self.fn(x, y, (-1,))), num_parallel_calls=self.calls)
        return chunks.unbatch()

    def on_batch(self, x: tf.Tensor, y: tf.Tensor):
        return self.fn(x, y, (-1,))


def build_prep(cfg: ExperimentConfig, src: SourceData, raw_shape: tuple, label_dtype: tf.DType,
          calls: Optional[int]) -> Prep:
    """The cast to float32 (int32 for token ids), ``data.reshape`` and ``data.resize`` of each example."""
    d = cfg.data
    tokens = src.input_dtype == "int32"
    if tokens:
        for key, value in (("normalize", d.normalize != "none"), ("resize", d.resize),
                           ("augment", d.augment.per_image)):
            if value:
                raise ConfigError(f"does not apply to token ids from {src.origin}", key=f"data.{key}")
    shape = raw_shape or (1,)  # a scalar feature becomes a vector of one
    if d.reshape:
        if all(shape) and math.prod(shape) != math.prod(d.reshape):
            raise ConfigError(
                f"examples of shape {tuple(shape)} ({math.prod(shape)} values) cannot become {tuple(d.reshape)} "
                f"({math.prod(d.reshape)} values). Received: reshape={d.reshape}",
                key="data.reshape",
            )
        shape = tuple(d.reshape)
    if d.resize:
        check_image(shape, "data.resize", "resize", d.resize)
    dtype = tf.int32 if tokens else tf.float32
    reshape = not raw_shape or bool(d.reshape)

    def prep(x: tf.Tensor, y: tf.Tensor, lead: tuple = ()):
        x = tf.cast(x, dtype)
        if reshape:
            x = tf.reshape(x, [*lead, *shape])
        if d.resize:
            x = tf.image.resize(x, d.resize, method="bilinear")
        return x, tf.cast(y, label_dtype)

    def noop(x_spec, y_spec) -> bool:
        return x_spec.dtype == dtype and y_spec.dtype == label_dtype and not reshape and not d.resize

    return Prep(prep, noop, calls)
