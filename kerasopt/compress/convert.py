"""Converters: TFLite (float, dynamic range, float16, int8), ONNX (tf2onnx) and TF-TRT, and runners
that execute each converted file so it can be checked against the Keras model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional

import numpy as np

from kerasopt._keras import gpus, keras, quiet_native_stderr, tf
from kerasopt.errors import ConfigError

Predict = Callable[[np.ndarray], np.ndarray]


def _concrete(model: keras.Model):
    """The serving function with a dynamic batch dimension (what every converter should see)."""
    spec = [tf.TensorSpec((None, *inp.shape[1:]), inp.dtype, name=inp.name.split(":")[0]) for inp in model.inputs]
    fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
    return fn.get_concrete_function(*spec)


def to_tflite(model: keras.Model, mode: str = "float32",
              representative: Optional[Callable[[], Iterator[list[np.ndarray]]]] = None) -> bytes:
    """Convert ``model`` to a TFLite flatbuffer.

    ``float32``: no quantization; ``dynamic``: int8 weights, float activations; ``float16``:
    float16 weights; ``int8``: int8 weights and activations calibrated on ``representative``
    (float input and output kept, so callers feed the same arrays); ``qat``: a model from
    quantization-aware training, quantized with the ranges it learned (no calibration data).
    """
    if mode == "qat":  # the Keras path keeps the fake-quant nodes' ranges (a concrete function lost them)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([_concrete(model)], model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None:
            raise ConfigError("int8 quantization calibrates activation ranges on example inputs: set "
                              "quantize.representative_samples (e.g. 256) so kerasopt draws them from the training "
                              "split", key="quantize.representative_samples")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with quiet_native_stderr():
            return converter.convert()
    except Exception as e:  # converter errors are long MLIR dumps: keep the first useful line
        first = next((ln for ln in str(e).splitlines() if "error" in ln.lower()), str(e).splitlines()[0])
        raise ConfigError(f"TFLite conversion ({mode}) failed: {first.strip()}") from None


def tflite_runner(content: bytes, threads: int = 1) -> Predict:
    """A predict function over a TFLite model (batch of any size, resized on the fly)."""
    import warnings

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated" (LiteRT is not installed)
        warnings.simplefilter("ignore", UserWarning)
        interp = tf.lite.Interpreter(model_content=content, num_threads=threads)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    state = {"batch": None}

    def predict(x: np.ndarray) -> np.ndarray:
        if state["batch"] != x.shape[0]:
            interp.resize_tensor_input(inp["index"], x.shape)
            with quiet_native_stderr():  # the XNNPACK delegate announces itself on the first allocation
                interp.allocate_tensors()
            state["batch"] = x.shape[0]
        feed = x
        if inp["dtype"] in (np.int8, np.uint8):  # fully integer input (not what to_tflite produces)
            scale, zero = inp["quantization"]
            feed = np.round(x / scale + zero).astype(inp["dtype"])
        interp.set_tensor(inp["index"], feed.astype(inp["dtype"], copy=False))
        interp.invoke()
        y = interp.get_tensor(out["index"])
        if out["dtype"] in (np.int8, np.uint8):
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y

    return predict


def to_onnx(model: keras.Model, path: Path, opset: int = 17) -> None:
    """Write ``model`` as ONNX with tf2onnx (dynamic batch dimension)."""
    try:
        import tf2onnx
    except ImportError:
        raise ConfigError("ONNX export needs tf2onnx and onnxruntime: pip install 'kerasopt[compress]'") from None
    spec = tuple(tf.TensorSpec((None, *i.shape[1:]), i.dtype, name=f"input_{n}") for n, i in enumerate(model.inputs))
    try:
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset, output_path=str(path))
    except Exception as e:
        raise ConfigError(f"ONNX conversion failed: {str(e).splitlines()[0]}") from None


def onnx_runner(path: Path, threads: int = 1) -> Predict:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("checking an ONNX export needs onnxruntime: pip install 'kerasopt[compress]'") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x.astype(np.float32, copy=False)})[0]


def tensorrt_available() -> tuple[bool, str]:
    """Whether TF-TRT can run here, and why not."""
    if not gpus():
        return False, "no GPU is visible to TensorFlow (TF-TRT runs on NVIDIA GPUs)"
    try:
        from tensorflow.python.compiler.tensorrt import trt_convert as trt

        if not trt.is_tensorrt_enabled():
            return False, "this TensorFlow build has no TensorRT support"
    except Exception as e:  # noqa: BLE001 - any import/linking failure means "not here"
        return False, f"TensorRT cannot be loaded ({str(e).splitlines()[0]})"
    return True, ""


def to_tftrt(saved_model_dir: Path, out_dir: Path, precision: str = "FP16") -> None:
    """Convert a SavedModel with TF-TRT (GPU + TensorRT only; checked first)."""
    ok, why = tensorrt_available()
    if not ok:
        raise ConfigError(f"--format tftrt needs TensorRT: {why}. Export saved_model here and convert on a GPU host")
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    conv = trt.TrtGraphConverterV2(input_saved_model_dir=str(saved_model_dir), precision_mode=precision)
    conv.convert()
    conv.save(str(out_dir))


def saved_model_runner(path: Path) -> Predict:
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    name = list(fn.structured_input_signature[1].keys())[0]

    def predict(x: np.ndarray) -> np.ndarray:
        out = fn(**{name: tf.constant(x)})
        return next(iter(out.values())).numpy()

    return predict
