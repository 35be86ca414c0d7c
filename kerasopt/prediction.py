"""``kerasopt predict``: a trained run on new data, one CSV row per example (module ``prediction`` so
that ``kerasopt.predict`` stays the function).

Raw inputs get the run's own preprocessing, read from ``RUN_DIR/preprocess.json``
(:mod:`kerasopt.training.preprocess_record`): the image size and channels, the table's column order
and one-hot vocabularies, and the training split's normalization statistics. The same TensorFlow ops
as training are applied, so a prediction equals ``model(x)`` for ``x`` as training prepared it.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from kerasopt.errors import ConfigError
from kerasopt.io.atomic import AtomicFile

SUMMARY_CLASSES = 10  # classes listed in the printed summary (PredictionSummary.class_counts has all)


@dataclass
class PredictionSummary:
    """What :func:`predict` returns: where the predictions went, how many, how fast, and per-class counts."""

    out: Path
    examples: int
    seconds: float
    task: str
    class_counts: Optional[dict[str, int]] = None  # classification: predicted class -> examples
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason) of files left out

    @property
    def examples_per_sec(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary a person reads.

        Example:
            >>> PredictionSummary(Path("p.csv"), 3, 0.5, "classification", {"cat": 1, "dog": 2, "owl": 0}).lines()
            ['predicted 3 examples in 0.5 s (6 examples/s); wrote p.csv', 'dog: 2 (66.7%)', 'cat: 1 (33.3%)']
            >>> many = PredictionSummary(Path("p.csv"), 78, 1.0, "classification", {str(i): i for i in range(13)})
            >>> many.lines()[1], many.lines()[-1]
            ('12: 12 (15.4%)', '2 more classes: 3 (3.8%)')
        """
        out = [f"predicted {self.examples:,} examples in {self.seconds:.1f} s ({self.examples_per_sec:,.0f} "
               f"examples/s); wrote {self.out}"]
        if self.skipped:
            out.append(f"skipped {len(self.skipped)} file(s) that do not decode (--on-bad-file skip), "
                       f"the first {self.skipped[0][0]}: {self.skipped[0][1]}")
        counts = sorted(((c, n) for n, c in (self.class_counts or {}).items() if c), key=lambda t: -t[0])
        for count, name in counts[:SUMMARY_CLASSES]:  # the most predicted first; a 1,000-class run prints 10
            out.append(f"{name}: {count:,} ({100 * count / max(1, self.examples):.1f}%)")
        if len(counts) > SUMMARY_CLASSES:
            rest = sum(c for c, _ in counts[SUMMARY_CLASSES:])
            share = 100 * rest / max(1, self.examples)
            out.append(f"{len(counts) - SUMMARY_CLASSES} more classes: {rest:,} ({share:.1f}%)")
        return out


def predict(
    run_dir: Union[str, Path],
    inputs: Union[str, Path],
    out: Union[str, Path, None] = None,
    *,
    top_k: int = 1,
    batch_size: Optional[int] = None,
    on_bad_file: str = "error",
    progress: Optional[bool] = None,
) -> PredictionSummary:
    """Predict with the model of ``run_dir`` on ``inputs`` and write one CSV row per example to ``out``.

    ``inputs``: a folder (searched recursively) or glob of images, a ``.csv`` or ``.parquet`` with the
    run's feature columns (other columns are copied to the output), a ``.npz`` (array ``x``, or its
    only array), or ``.tfrecord`` files (a glob of shards; ids ``file:record``).
    ``out`` defaults to ``predictions.csv`` in the current directory; it is written to a temporary
    file and renamed into place at the end. Columns: ``id`` (the image path relative to ``inputs``,
    or the row number from 0), the carried columns, then ``predicted`` (class name) and
    ``probability``, and with ``top_k`` > 1 ``top1_class``, ``top1_prob`` ... ``top{k}_prob``; a
    regression run writes ``prediction`` (``prediction_0``... for several targets) instead.
    ``on_bad_file``: ``error`` stops at an image that does not decode, ``skip`` leaves it out (logged,
    and listed in the summary). ``progress``: a bar on a terminal (None: when stderr is one).

    Example:
        >>> summary = kerasopt.predict("runs/photos", "new_photos/", top_k=3)  # doctest: +SKIP
        >>> summary.examples, summary.class_counts  # doctest: +SKIP
        (120, {'cat': 64, 'dog': 56})
    """
    from kerasopt.prediction_inputs import open_input
    from kerasopt.training.preprocess_record import read_preprocessing

    run_dir = Path(run_dir)
    model_file = _model_file(run_dir)
    record = read_preprocessing(run_dir)
    classes = _class_names(record)
    if on_bad_file not in ("error", "skip"):
        raise ConfigError(f"on_bad_file must be error or skip. Received: on_bad_file={on_bad_file!r}")
    if classes is None and top_k != 1:
        raise ConfigError(f"top_k applies to classification; {run_dir} is a regression run. Received: top_k={top_k}")
    if classes is not None and not 1 <= top_k <= len(classes):
        raise ConfigError(f"top_k must be between 1 and the run's {len(classes)} classes. Received: top_k={top_k}")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    batch = batch_size or int(record.get("batch_size") or 64)
    reader = open_input(inputs, record, batch, on_bad_file)
    out = Path(out) if out is not None else Path("predictions.csv")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as {out / 'predictions.csv'}")
    t0 = time.perf_counter()
    model = _load(model_file)
    step = _prediction_step(model, record, str(inputs))
    from kerasopt.data.checkprogress import CheckProgress

    bar = CheckProgress(reader.total, reader.what, quiet=None if progress is None else not progress,
                        verb="predicting", unit=f"{reader.what}s")
    writer = _Writer(out, classes, top_k, record.get("label_dim") or 1, reader.columns)
    try:
        for chunk in reader:
            for s in range(0, len(chunk.ids), batch):
                extra = {k: v[s:s + batch] for k, v in chunk.extra.items()}
                writer.write(chunk.ids[s:s + batch], extra, step(chunk.x[s:s + batch]))
                bar.advance(len(chunk.ids[s:s + batch]))
        writer.commit()
    finally:
        bar.close(reused=0, summary=False)
        writer.discard()
    return PredictionSummary(out=out, examples=writer.rows, seconds=time.perf_counter() - t0,
                             task="regression" if classes is None else "classification",
                             class_counts=writer.class_counts(), skipped=list(reader.skipped))


def _model_file(run_dir: Path) -> Path:
    from kerasopt.export import find_exported_model

    if not run_dir.is_dir():
        what = "is a file, not a run directory" if run_dir.exists() else "not found"
        raise ConfigError(f"run directory {what}: {run_dir}")
    found = find_exported_model(run_dir)
    if found is None:
        raise ConfigError(f"{run_dir} has no exported model (model/*.keras): let the run finish, or "
                          "`kerasopt export` it from its checkpoint")
    return found


def _class_names(record: dict[str, Any]) -> Optional[list[str]]:
    """Column values for ``predicted``: the run's class names, else the class indices; None for regression."""
    if record["head"] == "regression":
        return None
    names = record.get("class_names") or []
    count = int(record.get("num_classes") or len(names))
    return [str(n) for n in names] if len(names) == count else [str(i) for i in range(count)]


def _load(model_file: Path):
    import kerasopt.models  # noqa: F401  (registers custom layers such as PositionEmbedding)
    from kerasopt._keras import keras

    try:
        return keras.models.load_model(model_file, compile=False)
    except Exception as e:  # a corrupt or foreign file: name it
        raise ConfigError(f"cannot load model {model_file}: {_first_line(e)}") from None


def _prediction_step(model, record: dict[str, Any], origin: str) -> Callable[[Any], np.ndarray]:
    """``raw batch -> model outputs``: training's cast, reshape, resize and normalization, then the model.

    The ops are the training pipeline's (``kerasopt.data.prepare``, ``kerasopt.data.transforms``), in
    float32, so the outputs equal ``model(x)`` for ``x`` prepared by training.
    """
    from kerasopt._keras import tf
    from kerasopt.training.preprocess_record import normalizer_arrays

    dtype = tf.int32 if record["input_dtype"] == "int32" else tf.float32
    reshape, resize = record.get("reshape"), record.get("resize")
    norm = normalizer_arrays(record)
    offset, scale = (tf.constant(a) for a in norm) if norm is not None else (None, None)
    expected = tuple(record["input_shape"])

    @tf.function(reduce_retracing=True)
    def prepare(x):
        x = tf.cast(x, dtype)
        if not reshape and expected[-1] == 1 and x.shape.rank == len(expected):
            x = x[..., None]  # grayscale images without their channel axis: (n, 8, 8) for (8, 8, 1)
        if reshape:
            x = tf.reshape(x, [-1, *reshape])
        elif x.shape.rank == 1:  # one number per example becomes a vector of one, as in training
            x = tf.reshape(x, [-1, 1])
        if resize:
            x = tf.image.resize(x, resize, method="bilinear")
        if offset is not None:
            x = (x - offset) / scale
        return x

    @tf.function(reduce_retracing=True)
    def call(x):
        return model(x, training=False)

    def step(raw) -> np.ndarray:
        try:
            x = prepare(raw)
        except (ValueError, tf.errors.InvalidArgumentError):
            raise ConfigError(f"{origin}: examples of shape {tuple(raw.shape[1:])} cannot be prepared as the run's "
                              f"were (data.reshape {reshape}, data.resize {resize}; the model takes {expected})") \
                from None
        if tuple(x.shape[1:]) != expected:
            raise ConfigError(f"{origin}: examples of shape {tuple(raw.shape[1:])} become {tuple(x.shape[1:])}, but "
                              f"the run's model takes {expected}")
        return np.asarray(call(x), np.float32)

    return step


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


class _Writer:
    """The output CSV, written to a temporary file beside ``out`` and renamed into place by ``commit``."""

    def __init__(self, out: Path, classes: Optional[list[str]], top_k: int, label_dim: int,
                 carried: list[str]) -> None:
        self.out, self.classes, self.top_k, self.rows = out, classes, top_k, 0
        out.parent.mkdir(parents=True, exist_ok=True)
        self.staged = AtomicFile(out, "w", newline="")
        self.file = self.staged.file
        self.csv = csv.writer(self.file)
        if classes is None:
            produced = ["prediction"] if label_dim == 1 else [f"prediction_{j}" for j in range(label_dim)]
        else:
            produced = ["predicted", "probability"]
            if top_k > 1:
                produced += [f"top{i}_{what}" for i in range(1, top_k + 1) for what in ("class", "prob")]
        # a carried column named like one of ours (a re-run on an earlier output) keeps its text as "<name>_input"
        self.carried = carried
        names = [f"{c}_input" if c in ("id", *produced) else c for c in carried]
        self.csv.writerow(["id", *names, *produced])
        self.counts = np.zeros(len(classes), np.int64) if classes is not None else None

    def write(self, ids: list, extra: dict[str, list], outputs: np.ndarray) -> None:
        cols: list[list] = [list(ids), *[extra[c] for c in self.carried]]
        if self.classes is None:
            cols += [outputs[:, j].astype(str).tolist() for j in range(outputs.shape[1])]
        else:
            probs = np.concatenate([1.0 - outputs, outputs], 1) if outputs.shape[1] == 1 else outputs
            order = np.argsort(-probs, axis=1, kind="stable")[:, :self.top_k]  # ties: the lower class index
            best = np.take_along_axis(probs, order, 1).astype(np.float32)
            names = np.array(self.classes, dtype=object)
            cols += [names[order[:, 0]].tolist(), best[:, 0].astype(str).tolist()]
            if self.top_k > 1:
                for i in range(self.top_k):
                    cols += [names[order[:, i]].tolist(), best[:, i].astype(str).tolist()]
            self.counts += np.bincount(order[:, 0], minlength=len(self.classes))
        self.csv.writerows(zip(*cols))
        self.rows += len(ids)

    def class_counts(self) -> Optional[dict[str, int]]:
        if self.counts is None:
            return None
        return {name: int(n) for name, n in zip(self.classes, self.counts)}

    def commit(self) -> None:
        self.staged.commit()

    def discard(self) -> None:
        """Close and remove the temporary file if ``commit`` did not run (an error midway leaves no half file)."""
        self.staged.discard()
