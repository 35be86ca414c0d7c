"""``model.type: custom`` -- a user function ``'package.module:function'`` builds the model.

The call is, exactly::

    fn(input_shape=(32, 32, 1), num_classes=10, **model.kwargs)        # + head=Head(...) if fn has `head`

* ``input_shape``: per-example shape, a tuple (no batch axis).
* ``num_classes``: number of classes in the labels; None for regression.
* ``head``: passed only when the function declares a parameter named ``head``:
  the resolved ``Head(kind, units)`` (kind multiclass/binary/regression). A
  ``binary`` head has ONE sigmoid output unit, so a function that outputs
  ``num_classes`` (=2) softmax units needs ``model.head: multiclass``.
* ``model.kwargs``: everything else, by keyword.

The function must return a tf_keras (Keras 2) model: ``import tf_keras as
keras`` or ``from kerasopt._keras import keras``. The model's output width must
match the head (``units``). Under mixed precision a model whose output is not
float32 gets a float32 linear layer appended (the loss needs float32). The
module is imported only when a config names it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Optional

from kerasopt._keras import is_tf_keras_model, keras
from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models.checks import shape_str
from kerasopt.models.heads import Head
from kerasopt.models.registry import MODELS

_RESERVED = ("input_shape", "num_classes", "head")


def load_builder(path: str) -> Callable:
    """Import ``'package.module:function'`` and return the function, or raise ``ConfigError``.

    Example:
        >>> load_builder("os.path:join").__name__
        'join'
    """
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        # Distinguish "no such module" from "the module imports something missing".
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ConfigError(
                f"cannot import module '{module_name}' (no module named '{e.name}'). Is its folder on "
                f"PYTHONPATH or the package installed? Received: builder={path!r}",
                key="model.builder",
            ) from None
        raise ConfigError(
            f"importing module '{module_name}' failed: {e}. Received: builder={path!r}", key="model.builder"
        ) from e
    except ImportError as e:
        raise ConfigError(
            f"importing module '{module_name}' failed: {e}. Received: builder={path!r}", key="model.builder"
        ) from e
    fn = getattr(module, attr, None)
    if fn is None:
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ConfigError(
            f"module '{module_name}' has no function '{attr}'. It defines: {', '.join(found) or 'nothing callable'}. "
            f"Received: builder={path!r}",
            key="model.builder",
        )
    if not callable(fn):
        raise ConfigError(
            f"'{path}' is a {type(fn).__name__}, not a function. Received: builder={path!r}", key="model.builder"
        )
    return fn


def _is_keras3_model(obj: object) -> bool:
    # Looked up by module name so that checking does not import Keras 3.
    return any(c.__module__.split(".")[0] == "keras" for c in type(obj).__mro__)


@MODELS.register("custom")
def build_custom(
    mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head, spec: Optional[DataSpec] = None
) -> keras.Model:
    """Call the ``model.builder`` function (see the module docstring for the call) and check its model.

    Example:
        ``model: {type: custom, builder: "my_models:tiny_cnn", kwargs: {width: 16}}``
    """
    fn = load_builder(mcfg.builder or "")
    taken = sorted(set(mcfg.kwargs) & set(_RESERVED))
    if taken:
        raise ConfigError(
            f"{', '.join(taken)} is passed by kerasopt; remove it from model.kwargs. Received: kwargs={mcfg.kwargs}",
            key="model.kwargs",
        )
    num_classes = {"multiclass": head.units, "binary": 2}.get(head.kind)  # None for regression
    call = dict(input_shape=tuple(input_shape), num_classes=num_classes, **mcfg.kwargs)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature; just call them
        signature = None
    if signature is not None:
        if "head" in signature.parameters:
            call["head"] = head
        try:
            signature.bind(**call)
        except TypeError as e:
            raise ConfigError(
                f"{mcfg.builder}{signature} cannot be called with {sorted(call)}: {e}. Received: kwargs={mcfg.kwargs}",
                key="model.kwargs",
            ) from None
    model = fn(**call)
    _check_model(model, mcfg, input_shape, head)
    if len(model.outputs) == 1 and model.outputs[0].dtype != "float32":
        # Mixed precision: a loss computed on bfloat16/float16 outputs loses most of its
        # precision. The Keras guide's fix: end in a float32 layer (a linear cast here).
        outputs = keras.layers.Activation("linear", dtype="float32", name="float32_output")(model.outputs[0])
        model = keras.Model(model.inputs, outputs, name=model.name)
    return model


def _check_model(model: object, mcfg: ModelConfig, input_shape: tuple[int, ...], head: Head) -> None:
    if not is_tf_keras_model(model):
        if _is_keras3_model(model):
            raise ConfigError(
                f"'{mcfg.builder}' returned a Keras 3 model; kerasopt trains tf_keras (Keras 2) models. "
                "In the builder's module use `import tf_keras as keras` (or `from kerasopt._keras import keras`) "
                f"instead of `import keras`. Received: {type(model).__module__}.{type(model).__name__}",
                key="model.builder",
            )
        raise ConfigError(
            f"'{mcfg.builder}' must return a tf_keras Model. Received: {type(model).__name__}",
            key="model.builder",
        )
    if len(model.inputs or []) != 1 or len(model.outputs or []) != 1:
        return  # multi-input/output models: the user knows what the data pipeline feeds
    got_in = tuple(model.inputs[0].shape[1:])
    if len(got_in) != len(input_shape) or any(g not in (None, w) for g, w in zip(got_in, input_shape, strict=True)):
        raise ConfigError(
            f"'{mcfg.builder}' built a model for inputs of shape {shape_str(got_in)} but the data have shape "
            f"{shape_str(input_shape)}. Use the input_shape argument. Received: {shape_str(got_in)}",
            key="model.builder",
        )
    width = model.outputs[0].shape[-1]
    if width is not None and width != head.units:
        fix = " Set model.head: multiclass for 2 softmax units." if head.kind == "binary" and width == 2 else ""
        raise ConfigError(
            f"'{mcfg.builder}' outputs {width} values per example but head '{head.kind}' needs {head.units}.{fix} "
            f"Received: output shape {shape_str(model.outputs[0].shape)}",
            key="model.head",
        )


__all__ = ["build_custom", "load_builder"]
