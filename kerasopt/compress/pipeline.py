"""``kerasopt prune`` and ``kerasopt quantize``: start from a trained run, fine-tune with the same
data pipeline, export, and write the compression report (``compression.json`` + a table).

Output goes to ``RUN_DIR/pruned/`` or ``RUN_DIR/quantized/`` (``--out`` to choose). It is built
in a temporary folder beside the target and renamed in at the end, so a failure leaves an
existing result untouched.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from kerasopt._keras import keras
from kerasopt.config.compress_schema import PruneConfig, QuantizeConfig
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError

Say = Callable[[str], None]


@dataclass
class Workbench:
    """The data side shared by the compress verbs: the assembly around the source model (the run's data,
    labels, loss and metrics: :func:`kerasopt.training.assembly.assemble_model`) and the validation arrays."""

    assembly: Any
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def cfg(self) -> ExperimentConfig:
        return self.assembly.cfg

    @property
    def bundle(self):
        return self.assembly.bundle

    @property
    def kind(self) -> str:
        return self.assembly.kind

    @property
    def steps(self) -> int:
        return self.assembly.steps

    def prepared(self, ds):
        return self.assembly.labelled(ds)

    def representative(self, n: int):
        """A generator of ``n`` single training examples for int8 calibration."""
        def gen():
            seen = 0
            for x, _ in self.bundle.train:
                for row in x.numpy():
                    if seen >= n:
                        return
                    seen += 1
                    yield [row[None].astype(np.float32)]
        return gen

    def batch(self) -> np.ndarray:
        """One validation batch (``data.batch_size`` examples) for latency and agreement checks."""
        return self.x_val[: self.cfg.data.batch_size]


def prepare(cfg: ExperimentConfig, model: keras.Model) -> Workbench:
    from kerasopt.training.assembly import assemble_model

    a = assemble_model(cfg, lambda spec: model, compile=False)  # the source model stays as it was loaded
    if a.val is None:
        raise ConfigError("compression compares before and after on the validation split; it is 0",
                          key="data.validation_split")
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in a.bundle.val])
    return Workbench(a, np.concatenate(xs), np.concatenate(ys))


def score(pred: np.ndarray, y: np.ndarray, kind: str) -> tuple[str, float]:
    """(metric name, value) from predictions: accuracy for classifiers, mae for regression.

    Example:
        >>> score(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]), "multiclass")
        ('accuracy', 0.5)
    """
    pred = np.asarray(pred, dtype=np.float64)
    if kind == "multiclass":
        return "accuracy", float(np.mean(pred.argmax(-1) == y.reshape(-1)))
    if kind == "binary":
        return "accuracy", float(np.mean((pred.reshape(-1) > 0.5) == (y.reshape(-1) > 0.5)))
    return "mae", float(np.mean(np.abs(pred - y.reshape(pred.shape))))


def agreement(ref: np.ndarray, got: np.ndarray, kind: str) -> dict:
    """Max absolute difference and, for classifiers, the share of equal argmax decisions.

    Example:
        >>> agreement(np.array([[0.2, 0.8]]), np.array([[0.25, 0.75]]), "multiclass")
        {'max_abs_diff': 0.05, 'argmax_agreement': 1.0}
    """
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64).reshape(np.shape(ref))
    out = {"max_abs_diff": round(float(np.max(np.abs(ref - got))), 6)}
    if kind == "multiclass":
        out["argmax_agreement"] = round(float(np.mean(ref.argmax(-1) == got.argmax(-1))), 4)
    elif kind == "binary":
        out["argmax_agreement"] = round(float(np.mean((ref > 0.5) == (got > 0.5))), 4)
    return out


def _keras_predict(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: model.predict_on_batch(x)


def _predict_all(fn, x: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])


def fine_tune(model: keras.Model, wb: Workbench, *, epochs: int, learning_rate: float, folder: Path,
              callbacks: list, say: Say) -> dict[str, list[float]]:
    """Compile and fit ``model`` for ``epochs`` with a constant learning rate; history to ``folder``."""
    from kerasopt.callbacks.progress import ProgressDisplay
    from kerasopt.training.compile import compile_for
    from kerasopt.training.optimizers import build_optimizer

    compile_for(model, wb.cfg, wb.bundle.spec, build_optimizer(wb.cfg.train.optimizer, learning_rate))
    say(f"fine-tuning {epochs} epochs at learning rate {learning_rate:g} ({wb.steps} steps an epoch)")
    hist = model.fit(
        wb.prepared(wb.bundle.train_from_epoch(0)), epochs=epochs, steps_per_epoch=wb.steps,
        validation_data=wb.prepared(wb.bundle.val), verbose=0,
        callbacks=[*callbacks, keras.callbacks.CSVLogger(str(folder / "history.csv")),
                   ProgressDisplay(epochs=epochs, steps=wb.steps)],
    )
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


def _out_dir(source: Path, out: Optional[Path], leaf: str, overwrite: bool) -> Path:
    base = source if source.is_dir() else source.parent
    target = Path(out) if out else base / leaf
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists; pass --overwrite to replace it (or --out to write elsewhere)")
    return target


def _staging(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))


def _commit(staging: Path, target: Path) -> None:
    """The finished output in as ``target``: a kill leaves the old result or the new one, never neither."""
    from kerasopt.io.atomic import replace_folder

    replace_folder(staging, target)


def _float32_notice(cfg: ExperimentConfig, say: Say) -> None:
    from kerasopt.training.precision import apply_policy

    if cfg.train.precision != "float32":
        say(f"precision: float32 for this phase (TF-MOT and the converters expect float32 variables; "
            f"train.precision: {cfg.train.precision} applies to `fit`)")
    apply_policy("float32")


def _source_model(cfg: ExperimentConfig, source: Path, say: Say) -> tuple[keras.Model, Path]:
    from kerasopt.compress.loading import find_model_file, load_model

    path = find_model_file(source)
    model = load_model(path, float32=True)
    say(f"loaded {path} ({model.count_params():,} parameters)")
    return model, path


def _start(cfg: ExperimentConfig, source: Path, out: Optional[Path], leaf: str, overwrite: bool,
           say: Say) -> tuple[Path, keras.Model, Path, Workbench]:
    """What both verbs do first: check the output folder, switch to float32, load the model, build the data."""
    target = _out_dir(source, out, leaf, overwrite)
    _float32_notice(cfg, say)
    model, path = _source_model(cfg, source, say)
    return target, model, path, prepare(cfg, model)


def _variant(name: str, predict, wb: Workbench, ref_pred: np.ndarray, size: dict, threads: int) -> dict:
    from kerasopt.compress.measure import latency

    preds = _predict_all(predict, wb.x_val, wb.cfg.data.batch_size)
    metric, value = score(preds, wb.y_val, wb.kind)
    xb = wb.batch()
    return {"name": name, metric: round(value, 4), **agreement(ref_pred, preds, wb.kind), **size,
            "latency": latency(lambda: predict(xb)), "batch": int(len(xb)), "threads": threads}


def run_prune(cfg: ExperimentConfig, source: Path | str, *, out: Optional[Path] = None, overwrite: bool = False,
              say: Optional[Say] = None) -> dict:
    """Prune the model of ``source`` (a run directory or model file) as ``cfg.prune`` says.

    Example:
        >>> run_prune(load_config("configs/digits_prune.yaml"), "runs/digits_cnn")  # doctest: +SKIP
    """
    from kerasopt.compress import measure
    from kerasopt.compress import prune as pr
    from kerasopt.compress.convert import tflite_runner, to_tflite
    from kerasopt.export import export_model
    from kerasopt.io.console import console_print

    say = say or console_print
    source = Path(source)
    p = cfg.prune or PruneConfig()
    if cfg.prune is None:
        say("no prune: section in the config; using the defaults (80% sparsity, polynomial decay, 6 epochs)")
    t0 = time.perf_counter()
    target, dense, dense_path, wb = _start(cfg, source, out, "pruned", overwrite, say)
    pr.plan_layers(dense, p)  # bad exclusions and unprunable layers fail before any work
    threads = measure.cpu_threads()
    ref_pred = _predict_all(_keras_predict(dense), wb.x_val, cfg.data.batch_size)
    dense_tfl = to_tflite(dense)
    staging = _staging(target)
    try:
        variants = [
            _variant("dense keras", _keras_predict(dense), wb, ref_pred, measure.file_sizes(dense_path), threads),
            _variant("dense tflite", tflite_runner(dense_tfl, threads), wb, ref_pred,
                     _bytes_sizes(dense_tfl, None), threads),
        ]
        pruned, chosen, steps = pr.apply_pruning(dense, p, wb.steps)
        kept = [layer.name for layer in dense.layers if layer.weights and layer.name not in chosen]
        say(f"pruning {len(chosen)} layers to {0.5 if p.structured else p.target_sparsity:.0%} "
            f"({'2:4 structured, ' if p.structured else ''}{p.schedule}, steps {steps.begin}->{steps.end}, "
            f"mask update every {steps.frequency} steps); dense: {', '.join(kept) or 'none'}")
        lr = p.learning_rate or cfg.train.optimizer.learning_rate / 10
        history = fine_tune(pruned, wb, epochs=pr.epochs_for(p), learning_rate=lr, folder=staging,
                            callbacks=pr.pruning_callbacks(str(staging / "tensorboard")), say=say)
        stripped = pr.strip(pruned)
        exports = export_model(stripped, staging / "model", list(cfg.export.formats), name=f"{cfg.name}_pruned")
        pruned_tfl = to_tflite(stripped)
        keras_file = Path(exports["keras"]) if "keras" in exports else None
        k_size = measure.file_sizes(keras_file) if keras_file else _saved_size(stripped, staging)
        variants += [
            _variant("pruned keras", _keras_predict(stripped), wb, ref_pred, k_size, threads),
            _variant("pruned tflite", tflite_runner(pruned_tfl, threads), wb, ref_pred,
                     _bytes_sizes(pruned_tfl, None), threads),
        ]
        rows = measure.layer_sparsity(stripped)
        report = {
            "kind": "prune", "source": str(dense_path), "config": p.model_dump(mode="json"),
            "steps": vars(steps), "pruned_layers": chosen, "layers": rows, "totals": measure.totals(rows),
            "variants": variants, "history": history, "exports": {k: _rel(v, staging, target) for k, v in
                                                                   exports.items()},
            "seconds": round(time.perf_counter() - t0, 1),
            "note": "TensorFlow's CPU kernels are dense: pruning makes the gzipped file smaller, not inference faster",
        }
        _write_report(staging, report, target, say, cfg)
        _commit(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def run_quantize(cfg: ExperimentConfig, source: Path | str, *, out: Optional[Path] = None, overwrite: bool = False,
                 say: Optional[Say] = None) -> dict:
    """Quantize the model of ``source``: optional QAT, then TFLite dynamic/float16/int8."""
    from kerasopt.compress import measure
    from kerasopt.compress.convert import tflite_runner, to_tflite
    from kerasopt.compress.loading import clone_with_weights
    from kerasopt.io.console import console_print

    say = say or console_print
    source = Path(source)
    q = cfg.quantize or QuantizeConfig()
    if cfg.quantize is None:
        say("no quantize: section in the config; using the defaults (dynamic, float16, int8; no QAT)")
    t0 = time.perf_counter()
    target, model, path, wb = _start(cfg, source, out, "quantized", overwrite, say)
    threads = measure.cpu_threads()
    ref_pred = _predict_all(_keras_predict(model), wb.x_val, cfg.data.batch_size)
    staging = _staging(target)
    try:
        (staging / "model").mkdir()
        float_tfl = to_tflite(model)
        variants = [
            _variant("float32 keras", _keras_predict(model), wb, ref_pred, measure.file_sizes(path), threads),
            _variant("float32 tflite", tflite_runner(float_tfl, threads), wb, ref_pred,
                     _bytes_sizes(float_tfl, staging / "model" / f"{cfg.name}.float32.tflite"), threads),
        ]
        history = None
        qat_model = None
        if q.qat is not None:
            from kerasopt.compress.quantize import apply_qat

            qat_model = apply_qat(clone_with_weights(model))
            lr = q.qat.learning_rate or cfg.train.optimizer.learning_rate / 10
            history = fine_tune(qat_model, wb, epochs=q.qat.epochs, learning_rate=lr, folder=staging,
                                callbacks=[], say=say)
        rep = wb.representative(q.representative_samples) if q.representative_samples else None
        for mode in q.formats:
            # int8 from a QAT model uses the ranges it learned: converting it with representative data
            # as well re-calibrates over the folded BatchNorm and broke accuracy (98% -> 17% measured).
            src = qat_model if (qat_model is not None and mode == "int8") else model
            label = f"{'qat ' if src is qat_model else ''}{mode} tflite"
            content = to_tflite(src, "qat" if src is qat_model else mode, rep if mode == "int8" else None)
            file = staging / "model" / f"{cfg.name}.{'qat-' if src is qat_model else ''}{mode}.tflite"
            variants.append(_variant(label, tflite_runner(content, threads), wb, ref_pred,
                                     _bytes_sizes(content, file), threads))
            say(f"{label}: {variants[-1]['raw_bytes']:,} bytes")
        report = {"kind": "quantize", "source": str(path), "config": q.model_dump(mode="json"),
                  "variants": variants, "history": history, "seconds": round(time.perf_counter() - t0, 1),
                  "exports": {v.name: str(target / "model" / v.name) for v in sorted((staging / "model").iterdir())}}
        _write_report(staging, report, target, say, cfg)
        _commit(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _bytes_sizes(content: bytes, path: Optional[Path]) -> dict:
    import gzip

    if path is not None:
        path.write_bytes(content)
    return {"raw_bytes": len(content), "gzip_bytes": len(gzip.compress(content, compresslevel=9, mtime=0))}


def _saved_size(model: keras.Model, staging: Path) -> dict:
    from kerasopt.compress import measure

    tmp = staging / "size-probe.keras"
    keras.Model(model.inputs, model.outputs).save(tmp)
    size = measure.file_sizes(tmp)
    tmp.unlink()
    return size


def _rel(path: str, staging: Path, target: Path) -> str:
    p = Path(path)
    try:
        return str(target / p.relative_to(staging))
    except ValueError:
        return path


def _write_report(staging: Path, report: dict, target: Path, say: Say, cfg: ExperimentConfig) -> None:
    from kerasopt.compress.summary import format_report
    from kerasopt.config.loader import dump_config
    from kerasopt.io.atomic import write_json, write_text

    # config.yaml makes the output a run directory: evaluate, export and quantize accept it.
    write_text(staging / "config.yaml", dump_config(cfg))
    write_json(staging / "compression.json", report)
    for line in format_report(report):
        say(line)
    say(f"written: {target}/ (compression.json, model/)")
