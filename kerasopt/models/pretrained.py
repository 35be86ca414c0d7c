"""Weights from elsewhere: ``model.weights`` (pretrained backbones) and ``model.init_from`` (warm start).

Both read a source into ``{layer name: [arrays]}`` and copy a layer's arrays
only when the layer has the same name and every array the same shape
(:func:`transfer`). They differ in what a miss means:

* ``model.weights`` (a keras.applications backbone's file) is strict: every
  backbone layer with weights must be found, or the run stops naming the
  first layers that were not. A half-loaded backbone trains without an error
  and quietly loses the pretraining; that is the bug this refuses.
* ``model.init_from`` (another run) loads what matches, prints what did not
  (a new head for other classes is the usual case) and stops only when nothing
  matched.

Sources: a Keras ``.h5`` weights file (``model.save_weights``, or the
``*_notop.h5`` files keras.applications downloads), a ``.h5`` full model, a
``.keras`` model file, or a kerasopt run directory (its ``model/*.keras``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from kerasopt._keras import keras
from kerasopt.errors import ConfigError

HEAD_LAYERS = ("head", "predictions")  # every builder's last two layers (kerasopt.models.heads)

# model.type -> the input preprocessing its ImageNet weights were trained with, from raw 0..255 RGB.
# EfficientNet's own Rescaling + Normalization layers do it (kept, see applications._finish).
IMAGENET_PREPROCESSING = {
    "resnet": "caffe: RGB -> BGR, minus the ImageNet channel means",
    "mobilenet_v2": "x / 127.5 - 1",
    "efficientnet": "built in (Rescaling 1/255, then the ImageNet mean and variance)",
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass
class Transfer:
    """What :func:`transfer` copied: layer names loaded, and (layer, why) for the ones not loaded."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    params: int = 0

    def describe(self, limit: int = 4) -> str:
        """Example:
            >>> Transfer(["conv", "dense"], [("head", "shape (64, 10) vs (64, 3)")], 1_320).describe()
            '2 layers (1,320 weights) loaded, 1 not matched: head (shape (64, 10) vs (64, 3))'
        """
        out = f"{len(self.loaded)} layers ({self.params:,} weights) loaded"
        if self.skipped:
            shown = "; ".join(f"{n} ({why})" for n, why in self.skipped[:limit])
            more = f"; {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
            out += f", {len(self.skipped)} not matched: {shown}{more}"
        return out


def read_weights(path: Path | str, key: str) -> dict[str, list[np.ndarray]]:
    """``{layer name: its weight arrays}`` from a ``.h5``, a ``.keras`` file or a run directory.

    Raises ``ConfigError`` (``key``) for a missing or unreadable source.

    Example:
        >>> arrays = read_weights("runs/digits_cnn", "model.init_from")  # doctest: +SKIP
        >>> [a.shape for a in arrays["head"]]  # doctest: +SKIP
        [(128, 10), (10,)]
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "config.yaml").is_file():
            raise ConfigError(f"{p} is a folder but not a kerasopt run directory (no config.yaml). "
                              "Received: " + str(path), key=key)
        files = sorted((p / "model").glob("*.keras"))
        if not files:
            raise ConfigError(f"run directory {p} has no exported model (model/*.keras): let the run finish, "
                              "or `kerasopt export` it", key=key)
        p = files[0]
    if not p.is_file():
        raise ConfigError(f"not found: {p}", key=key)
    try:
        if p.suffix == ".h5" and _is_weights_h5(p):
            return _read_h5_weights(p)
        if p.suffix in (".h5", ".keras"):
            import kerasopt.models.transformer  # noqa: F401  (registers PositionEmbedding; not the package: a cycle)

            model = keras.models.load_model(p, compile=False)
            return {layer.name: layer.get_weights() for layer in _flat_layers(model) if layer.weights}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read weights from {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                          key=key) from None
    raise ConfigError(f"{p}: expected a .h5 or .keras file or a run directory", key=key)


def _is_weights_h5(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs)


def _read_h5_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """The HDF5 layout of ``save_weights``: one group per layer, arrays listed in ``weight_names``."""
    import h5py

    def text(v) -> str:
        return v.decode("utf8") if isinstance(v, bytes) else str(v)

    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "layer_names" not in f.attrs else f
        for name in (text(n) for n in root.attrs["layer_names"]):
            group = root[name]
            arrays = [np.asarray(group[text(w)]) for w in group.attrs.get("weight_names", [])]
            if arrays:
                out[name] = arrays
    return out


def _flat_layers(model: keras.Model) -> Iterable[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def transfer(model: keras.Model, source: dict[str, list[np.ndarray]],
             select: Callable[[keras.layers.Layer], bool] = lambda layer: True) -> Transfer:
    """Copy ``source`` into the layers of ``model`` that ``select`` picks, by name and shape.

    A layer is loaded whole or not at all. Example:
        >>> t = transfer(model, read_weights("runs/a", "model.init_from"))  # doctest: +SKIP
        >>> t.describe()  # doctest: +SKIP
        '6 layers (112,394 weights) loaded, 2 not matched: head (shape (128, 10) vs (128, 3)); ...'
    """
    done = Transfer()
    for layer in _flat_layers(model):
        if not layer.weights or not select(layer):
            continue
        arrays = source.get(layer.name)
        if arrays is None:
            done.skipped.append((layer.name, "not in the source"))
            continue
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(a.shape) for a in arrays]
        if want != have:
            pairs = [(h, w) for h, w in zip(have, want) if h != w]
            why = (f"{len(have)} arrays vs {len(want)}" if len(want) != len(have)
                   else f"shape {pairs[0][0]} vs {pairs[0][1]}" + (f" and {len(pairs) - 1} more" if len(pairs) > 1
                                                                   else ""))
            done.skipped.append((layer.name, why))
            continue
        layer.set_weights(arrays)
        done.loaded.append(layer.name)
        done.params += int(sum(a.size for a in arrays))
    return done


def is_backbone(layer: keras.layers.Layer) -> bool:
    """Every layer but the head's (``head``, ``predictions``)."""
    return layer.name not in HEAD_LAYERS


def load_backbone_file(model: keras.Model, path: str) -> Transfer:
    """``model.weights: PATH``: every backbone layer with weights must be in the file, with its shapes."""
    done = transfer(model, read_weights(path, "model.weights"), select=is_backbone)
    if done.skipped:
        raise ConfigError(f"{path} does not fit this backbone: {len(done.skipped)} of "
                          f"{len(done.skipped) + len(done.loaded)} layers not matched, e.g. "
                          + "; ".join(f"{n} ({why})" for n, why in done.skipped[:3])
                          + ". It must hold the weights of the same model.type/variant/alpha/depth",
                          key="model.weights")
    return done


def warm_start(model: keras.Model, path: str) -> Transfer:
    """``model.init_from``: load whatever matches by name and shape; nothing matched is an error."""
    done = transfer(model, read_weights(path, "model.init_from"))
    if not done.loaded:
        raise ConfigError(f"no layer of {path} matches this model by name and shape (first misses: "
                          + "; ".join(f"{n} ({why})" for n, why in done.skipped[:3]) + ")", key="model.init_from")
    return done


def imagenet_preprocessing(model_type: str, x):
    """The model-side preprocessing of raw 0..255 RGB that ``model_type``'s ImageNet weights expect."""
    layers = keras.layers
    if model_type == "mobilenet_v2":
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="imagenet_preprocessing")(x)
    if model_type == "resnet":
        return CaffePreprocessing(name="imagenet_preprocessing")(x)
    return x  # efficientnet: its own layers


@keras.utils.register_keras_serializable(package="kerasopt")
class CaffePreprocessing(keras.layers.Layer):
    """keras.applications.resnet's ``preprocess_input`` ('caffe') as a layer: RGB -> BGR, minus the means.

    A layer rather than a ``Lambda`` so saved models load without ``safe_mode=False``.
    """

    def call(self, inputs):
        mean = keras.backend.constant(_CAFFE_MEAN_BGR, dtype=inputs.dtype)
        return inputs[..., ::-1] - mean


def fetch_imagenet(build: Callable[[], keras.Model], what: str) -> keras.Model:
    """Call a keras.applications constructor with ``weights='imagenet'``; offline -> one line, exit 2."""
    try:
        return build()
    except Exception as e:  # urllib's URLError, HTTP errors, a truncated download: all mean "no weights"
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "fetch failure" not in msg and "URL" not in msg and not isinstance(e, OSError):
            raise
        raise ConfigError(
            f"imagenet weights for {what} must be downloaded once (to ~/.keras/models) and the download "
            f"failed ({msg}); on a machine without network, put the keras.applications *_notop.h5 file "
            "there or set model.weights to its local path", key="model.weights") from None


def describe_weights(value: Optional[str], model_type: str) -> str:
    return f"{value} weights; input preprocessing in the model: {IMAGENET_PREPROCESSING.get(model_type, 'none')}"


__all__ = ["read_weights", "transfer", "warm_start", "load_backbone_file", "Transfer", "is_backbone",
           "imagenet_preprocessing", "fetch_imagenet", "HEAD_LAYERS"]
