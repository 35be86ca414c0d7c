"""One measured run of ``scale.py``, in its own process: ``python scale_runs.py SPEC.json RESULT.json``.

Its own process, so the peak resident memory (``ru_maxrss``) is that run's alone and the
start-up time includes the interpreter and the TensorFlow import, as a user's run does.

Kinds of run (``spec["kind"]``):

- ``keras_folder``: plain tf_keras as its docs teach it: ``image_dataset_from_directory``
  (``validation_split=0.2, subset="both"``), ``.map(lambda x, y: (x / 255, y))``, ``.prefetch(AUTOTUNE)``,
  Adam 1e-3, sparse categorical cross-entropy, float32, ``model.fit(train, validation_data=val)``.
- ``keras_tfrecord``: plain tf_keras on the TFRecord shards: ``TFRecordDataset(files,
  num_parallel_reads=AUTOTUNE)``, shuffle of the serialized records, parse, ``decode_jpeg``, resize,
  /255, batch, prefetch; a fixed 80/20 split by shard.
- ``keras_csv``: plain tf_keras on a CSV as the TensorFlow CSV guide teaches it (``make_csv_dataset``,
  a ``Normalization`` layer adapted on a sample); used by ``tabular_scale.py``.
- ``keras_finetune``: the Keras transfer-learning guide's two phases (frozen base, then unfrozen and
  compiled again at a tenth of the LR) on a JPEG folder; used by ``finetune.py``.
- ``kerasopt``: ``kerasopt.fit(config)`` with every default, in a new run directory.
- ``write_tfrecords``: data generation, writes TFRecord shards from the JPEG files.

``summarize`` and ``report`` (plain Python, used by ``scale.py``) turn the runs into medians, the
targets and the tables.

The plain runs train the same architecture: ``kerasopt.models.build_model`` for the same config and
data shape, fresh float32 weights, no training (nothing else of kerasopt takes part). Every run is
timed by ``kerasopt.bench.measure.EpochTimer`` (epoch hooks only, last in the callback list, so an
epoch's time includes validation and the other callbacks' epoch-end work) and ``StartProbe``
(the first training step's start, wall clock, comparable with the parent's launch time).
"""

from __future__ import annotations

import time

T_SCRIPT = time.time()  # before any import: launch -> here is the interpreter's own start-up

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _keras(via_kerasopt: bool = False):
    """``(tf, keras, import seconds)``; the kerasopt side imports through kerasopt, whatever it sets up first."""
    t0 = time.time()
    if via_kerasopt:
        from kerasopt._keras import keras, tf
    else:
        import tensorflow as tf
        import tf_keras as keras

    return tf, keras, time.time() - t0


def _probe(keras):
    class StartProbe(keras.callbacks.Callback):
        """Wall-clock time of ``on_train_begin`` and of the first training step's start and end."""

        _supports_tf_logs = True  # logs stay tensors: no per-step conversion (and no sync) for this hook

        def __init__(self):
            super().__init__()
            self.stamps: dict = {}

        def on_train_begin(self, logs=None):
            self.stamps.setdefault("train_begin", time.time())

        def on_train_batch_begin(self, batch, logs=None):
            self.stamps.setdefault("first_step_begin", time.time())

        def on_train_batch_end(self, batch, logs=None):
            self.stamps.setdefault("first_step_end", time.time())

    return StartProbe()


def _timing(spec: dict, probe, timer, n_train: int, import_s: float) -> dict:
    """Start-up stamps relative to the parent's launch, and every epoch's whole-epoch examples/s."""
    launched = spec["launched_at"]
    st = probe.stamps
    epochs = timer.recorder.as_dicts()
    for e in epochs:
        e["examples_per_sec"] = n_train / e["epoch_s"] if e["epoch_s"] > 0 else None
        e["train_examples_per_sec"] = n_train / e["train_s"] if e["train_s"] > 0 else None
    return {
        "n_train": n_train, "epochs": epochs, "import_s": import_s,
        "interpreter_s": T_SCRIPT - launched,
        "startup_s": st["first_step_begin"] - launched if "first_step_begin" in st else None,
        "to_train_begin_s": st["train_begin"] - launched if "train_begin" in st else None,
        "first_step_s": st["first_step_end"] - st["first_step_begin"] if "first_step_end" in st else None,
    }


def _plain_model(spec: dict, keras, n_train: int, n_val: int):
    """The config's architecture, fresh float32 weights, compiled as the Keras docs do."""
    from kerasopt.config import load_config
    from kerasopt.data.spec import DataSpec
    from kerasopt.models import build_model

    cfg = load_config(spec["config"])
    keras.utils.set_random_seed(spec["seed"])
    h, w = spec["image_size"]
    model = build_model(cfg, DataSpec((h, w, 3), "classification", spec["num_classes"], n_train, n_val))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _describe(model) -> dict:
    return {"parameters": int(model.count_params()), "layers": [type(layer).__name__ for layer in model.layers],
            "compute_dtype": model.layers[-1].compute_dtype if model.layers else None}


def _fit_plain(spec: dict, keras, model, train, val, n_train: int, import_s: float) -> dict:
    from kerasopt.bench.measure import EpochTimer

    probe, timer = _probe(keras), EpochTimer()
    t0 = time.perf_counter()
    model.fit(train, validation_data=val, epochs=spec["epochs"], callbacks=[probe, timer])
    out = {**_timing(spec, probe, timer, n_train, import_s), "fit_wall_s": time.perf_counter() - t0,
           "model": _describe(model), "precision": keras.mixed_precision.global_policy().name,
           "jit_compile": bool(getattr(model, "_jit_compile", False)), "data_cache": "none", "calibration": "none"}
    out["val_accuracy"] = timer.recorder.epochs[-1].logs.get("val_accuracy") if timer.recorder.epochs else None
    return out


def _folder_splits(spec: dict, keras):
    """``image_dataset_from_directory``'s 80/20 split of ``spec["path"]``: train, val and their sizes."""
    h, w = spec["image_size"]
    train, val = keras.utils.image_dataset_from_directory(
        spec["path"], image_size=(h, w), batch_size=spec["batch_size"], validation_split=0.2, subset="both",
        seed=spec["seed"])
    return train, val, len(train.file_paths), len(val.file_paths)


def run_keras_folder(spec: dict) -> dict:
    tf, keras, import_s = _keras()
    train, val, n_train, n_val = _folder_splits(spec, keras)
    train = train.map(lambda x, y: (x / 255, y)).prefetch(tf.data.AUTOTUNE)
    val = val.map(lambda x, y: (x / 255, y)).prefetch(tf.data.AUTOTUNE)
    model = _plain_model(spec, keras, n_train, n_val)
    return {**_fit_plain(spec, keras, model, train, val, n_train, import_s), "n_val": n_val}


def run_keras_tfrecord(spec: dict) -> dict:
    tf, keras, import_s = _keras()
    h, w = spec["image_size"]
    features = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(serialized):
        ex = tf.io.parse_single_example(serialized, features)
        image = tf.image.resize(tf.io.decode_jpeg(ex["image"], channels=3), (h, w))
        return image / 255, ex["label"]

    def dataset(files, shuffle: bool):
        ds = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE)
        if shuffle:  # the encoded records, not the decoded images: a buffer of 35 KB strings, not 600 KB arrays
            ds = ds.shuffle(2048, seed=spec["seed"])
        return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(spec["batch_size"]).prefetch(
            tf.data.AUTOTUNE)

    model = _plain_model(spec, keras, spec["n_train"], spec["n_val"])
    train, val = dataset(spec["train_files"], True), dataset(spec["val_files"], False)
    return {**_fit_plain(spec, keras, model, train, val, spec["n_train"], import_s), "n_val": spec["n_val"]}


def run_keras_csv(spec: dict) -> dict:
    """Plain tf_keras on a CSV too big for memory, as the TensorFlow CSV guide teaches it.

    ``tf.data.experimental.make_csv_dataset`` (streaming, its default 10,000-row shuffle buffer),
    the columns packed into one vector, a ``Normalization`` layer adapted on a sample of
    ``spec["adapt_batches"]`` batches, the label strings looked up, and the config's architecture
    (``build_model``) after the normalization. No validation split: the guide has none, so every
    row trains (kerasopt's epochs also validate on its 20%: this favours the plain side).
    """
    tf, keras, import_s = _keras()  # first: the kerasopt imports below would import TensorFlow uncounted
    from kerasopt.config import load_config
    from kerasopt.data.spec import DataSpec
    from kerasopt.models import build_model

    label, classes = spec["label"], spec["class_names"]
    lookup = keras.layers.StringLookup(vocabulary=classes, num_oov_indices=0)
    ds = tf.data.experimental.make_csv_dataset(spec["path"], batch_size=spec["batch_size"], label_name=label,
                                               num_epochs=1, shuffle_seed=spec["seed"])
    ds = ds.map(lambda f, y: (tf.stack([tf.cast(f[k], tf.float32) for k in sorted(f, key=_column_order)], axis=1),
                              lookup(y))).prefetch(tf.data.AUTOTUNE)
    norm = keras.layers.Normalization()
    norm.adapt(ds.take(spec["adapt_batches"]).map(lambda x, y: x))
    cfg = load_config(spec["config"])
    keras.utils.set_random_seed(spec["seed"])
    width = int(norm.mean.shape[-1])
    body = build_model(cfg, DataSpec((width,), "classification", len(classes), spec["n_train"], 0))
    inputs = keras.Input((width,))
    model = keras.Model(inputs, body(norm(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return {**_fit_plain(spec, keras, model, ds, None, spec["n_train"], import_s), "n_val": 0}


def _column_order(name: str):
    """``f0, f1, ..., f10``: numeric order of the generated columns (dict order is not guaranteed)."""
    return (len(name), name)


def _find(obj, words: tuple[str, ...], prefix: str = "") -> dict:
    """Every entry of a nested dict whose key mentions one of ``words`` (what kerasopt decided about caches)."""
    found: dict = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if any(w in str(k).lower() for w in words):
                found[path] = v
            else:
                found.update(_find(v, words, path))
    return found


def run_kerasopt(spec: dict) -> dict:
    tf, keras, import_s = _keras(via_kerasopt=True)
    import kerasopt
    from kerasopt.bench.measure import EpochTimer

    lines: list[str] = []

    def say(msg: str) -> None:
        lines.append(str(msg))
        print(msg, flush=True)

    probe, timer = _probe(keras), EpochTimer()
    t0 = time.perf_counter()
    result = kerasopt.fit(spec["config"], spec.get("overrides") or {}, run_dir=spec["run_dir"], overwrite=True,
                          print_fn=say, callbacks=[probe, timer])
    fit_wall = time.perf_counter() - t0
    m = result.metrics
    n_train = int(m["data"]["num_train"])
    reason = str(m["precision"].get("reason", ""))
    cache_line = next((ln for ln in lines if "cache:" in ln.lower()), None)
    out = {**_timing(spec, probe, timer, n_train, import_s), "fit_wall_s": fit_wall, "n_val": m["data"]["num_val"],
           "model": _describe(result.model), "precision": m["precision"].get("policy"),
           "jit_compile": m["precision"].get("jit_compile"), "precision_reason": m["precision"].get("reason"),
           "val_accuracy": m.get("final", {}).get("val_accuracy"),
           "data_cache": cache_line.lower().split("cache:", 1)[1].split(";")[0].strip() if cache_line else "not said",
           "calibration": "cached" if "(cached)" in reason else "measured" if "measured" in reason else "none",
           "decided": {"precision": m.get("precision"), **_find(m, ("cache", "calib"))},
           "printed": [ln for ln in lines if ln.strip()][:200], "metrics": m}
    return out


def run_write_tfrecords(spec: dict) -> dict:
    """Shards of ``tf.train.Example(image=JPEG bytes, label=int64)``, each written to a temp name and renamed."""
    tf, _, _ = _keras()
    counts = {}
    for shard in spec["shards"]:
        out = Path(shard["path"])
        tmp = out.with_name(out.name + ".tmp")
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for file, label in shard["items"]:
                ex = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[Path(file).read_bytes()])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                }))
                writer.write(ex.SerializeToString())
        os.replace(tmp, out)
        counts[out.name] = len(shard["items"])
    return {"counts": counts}


# ---------------------------------------------------------------- summary (the parent's side; no TensorFlow)
RSS_MARGIN_MB = 1024.0  # target: kerasopt's peak RSS <= plain Keras's + 1 GB
STARTUP_RATIO = 0.10  # target: the second run's start-up <= 10% of the first's


def _median(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _steady(run: dict) -> float | None:
    """Whole-epoch examples/s after the first epoch (median); with one epoch, that epoch."""
    rates = [e["examples_per_sec"] for e in run.get("epochs", [])]
    return _median(rates[1:] if len(rates) > 1 else rates)


def _side(runs: list[dict], epochs: int) -> dict:
    ok = [r for r in runs if r.get("ok")]
    first = [r for r in ok if r["nth"] == 1]
    second = [r for r in ok if r["nth"] == 2]
    own = lambda r: r["startup_s"] - r["interpreter_s"] - r["import_s"] if r.get("startup_s") else None  # noqa: E731
    return {
        "runs": len(ok), "failed": [r.get("error") for r in runs if not r.get("ok")],
        "epoch_examples_per_sec": [_median([r["epochs"][i]["examples_per_sec"] for r in ok if len(r["epochs"]) > i])
                                   for i in range(epochs)],
        "epoch_s": [_median([r["epochs"][i]["epoch_s"] for r in ok if len(r["epochs"]) > i]) for i in range(epochs)],
        "steady_examples_per_sec": _median([_steady(r) for r in ok]),
        "peak_rss_mb": [r.get("peak_rss_mb") for r in ok], "peak_rss_mb_max": max((r["peak_rss_mb"] for r in ok),
                                                                                 default=None),
        "startup_first_s": _median([r["startup_s"] for r in first]),
        "startup_second_s": _median([r["startup_s"] for r in second]),
        "startup_own_first_s": _median([own(r) for r in first]),
        "startup_own_second_s": _median([own(r) for r in second]),
        "import_s": _median([r["import_s"] for r in ok]), "process_s": _median([r.get("process_s") for r in ok]),
        "precision": sorted({str(r.get("precision")) for r in ok}), "jit_compile": sorted({str(r.get("jit_compile"))
                                                                                         for r in ok}),
        "val_accuracy": _median([r.get("val_accuracy") for r in ok]),
        "data_cache": sorted({str(r.get("data_cache")) for r in ok}),
        "calibration": [f"run {r['nth']}: {r.get('calibration')}" for r in ok],
        "parameters": sorted({r["model"]["parameters"] for r in ok}),
    }


def _targets(source: str, runs: list[dict], k: dict, o: dict) -> tuple[list[dict], list[float]]:
    by = {(r["round"], r["nth"], r["side"]): r for r in runs if r.get("ok")}
    pairs = [(_steady(by[(rd, n, "kerasopt")]) / _steady(by[(rd, n, "keras")]))
             for (rd, n, side) in by if side == "keras" and (rd, n, "kerasopt") in by]
    startup = [by[(rd, 2, "kerasopt")]["startup_s"] / by[(rd, 1, "kerasopt")]["startup_s"]
               for (rd, n, side) in by if side == "kerasopt" and n == 1 and (rd, 2, "kerasopt") in by]
    ratio, sratio = _median(pairs), _median(startup)
    rss = (o["peak_rss_mb_max"] - k["peak_rss_mb_max"]) if o["peak_rss_mb_max"] and k["peak_rss_mb_max"] else None
    targets = [
        {"target": f"{source}: whole-epoch examples/s kerasopt/keras >= 1.0", "value": ratio,
         "met": ratio is not None and ratio >= 1.0},
        {"target": f"{source}: peak RSS kerasopt <= keras + 1 GB", "value": rss, "unit": "MiB over keras",
         "met": rss is not None and rss <= RSS_MARGIN_MB},
        {"target": f"{source}: kerasopt second-run start-up <= 10% of first", "value": sratio,
         "met": sratio is not None and sratio <= STARTUP_RATIO},
    ]
    return targets, pairs


def _decision_line(line: str) -> bool:
    """A printed line about what kerasopt decided (precision, XLA, caches, calibration, the data check)."""
    words = " ".join(t for t in line.lower().split() if "/" not in t)  # paths such as .cache/... do not count
    return any(w in words for w in ("precision", "xla", "cache", "calibrat", "decod", "check", "manifest"))


def summarize(runs: list[dict], sources: list[str], epochs: int) -> dict:
    """Per source: each side's medians, the paired kerasopt/keras ratios, the targets and kerasopt's decisions."""
    out = {}
    for source in sources:
        mine = [r for r in runs if r["source"] == source]
        k = _side([r for r in mine if r["side"] == "keras"], epochs)
        o = _side([r for r in mine if r["side"] == "kerasopt"], epochs)
        targets, pairs = _targets(source, mine, k, o)
        ok_o = [r for r in mine if r["side"] == "kerasopt" and r.get("ok")]
        ok_k = [r for r in mine if r["side"] == "keras" and r.get("ok")]
        printed = [ln for r in ok_o for ln in r.get("printed", []) if _decision_line(ln)]
        out[source] = {
            "keras": k, "kerasopt": o, "ratio_pairs": pairs, "targets": targets,
            "same_architecture": bool(ok_o and ok_k) and all(
                r["model"]["layers"] == ok_k[0]["model"]["layers"]
                and r["model"]["parameters"] == ok_k[0]["model"]["parameters"] for r in ok_o),
            "kerasopt_decided": {"by_run": {r["label"]: r.get("decided") for r in ok_o},
                                 "printed": list(dict.fromkeys(printed))[:40]},
            "steady_note": None if epochs > 1 else "one epoch only: 'steady' is epoch 1 (tracing included)",
        }
    return out


def _onoff(flag: str) -> str:
    return {"True": "on", "False": "off"}.get(flag, flag)


def _fmt(x, spec: str = ",.1f") -> str:
    return "-" if x is None else format(x, spec)


def report(result: dict) -> str:
    """Print the tables (rich when available) and return them as Markdown."""
    epochs = int(result["settings"]["epochs"])
    head = ["source", "side", *[f"ex/s ep{i + 1}" for i in range(epochs)], "steady ex/s", "epoch s (last)",
            "peak RSS MiB", "start-up 1st s", "start-up 2nd s", "(after import) 1st / 2nd", "precision, XLA",
            "data cache", "val acc"]
    rows, trows, notes = [], [], []
    for source, s in result["summary"].items():
        for side in ("keras", "kerasopt"):
            d = s[side]
            rows.append([source, "plain Keras" if side == "keras" else "kerasopt defaults",
                         *[_fmt(x) for x in d["epoch_examples_per_sec"]], _fmt(d["steady_examples_per_sec"]),
                         _fmt(d["epoch_s"][-1] if d["epoch_s"] else None, ".2f"), _fmt(d["peak_rss_mb_max"], ",.0f"),
                         _fmt(d["startup_first_s"]), _fmt(d["startup_second_s"]),
                         f"{_fmt(d['startup_own_first_s'])} / {_fmt(d['startup_own_second_s'])}",
                         f"{'/'.join(d['precision'])}, XLA {'/'.join(_onoff(j) for j in d['jit_compile'])}",
                         " / ".join(d["data_cache"]),
                         _fmt(d["val_accuracy"], ".3f")])
            notes += [f"{source} {side} FAILED: {e}" for e in d["failed"]]
        for t in s["targets"]:
            trows.append([t["target"], _fmt(t["value"], ",.3f"), "met" if t["met"] else "NOT met"])
        notes.append(f"{source}: same architecture on both sides: {s['same_architecture']} "
                     f"(parameters {s['keras']['parameters']} / {s['kerasopt']['parameters']}); "
                     f"kerasopt/keras per pair: {', '.join(_fmt(p, '.3f') for p in s['ratio_pairs'])}")
        notes.append(f"{source}: kerasopt precision/XLA calibration: {', '.join(s['kerasopt']['calibration'])}")
        notes += [f"{source} kerasopt said: {ln}" for ln in s["kerasopt_decided"]["printed"]]
        if s["steady_note"]:
            notes.append(f"{source}: {s['steady_note']}")
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in rows], "",
          "| target | value | |", "|---|---|---|", *["| " + " | ".join(r) + " |" for r in trows], "",
          *[f"- {n}" for n in notes]]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print("\n".join(md))
        return "\n".join(md)
    console = Console(width=200)
    table = Table(title=f"kerasopt defaults vs plain Keras, {result['data']['folder']['images']:,} JPEGs, "
                        f"whole-epoch examples/s (medians over runs)")
    for h in head:
        table.add_column(h, justify="left" if h in ("source", "side", "precision, XLA", "data cache") else "right")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    ttable = Table(title="targets")
    for h in ("target", "value", ""):
        ttable.add_column(h)
    for r in trows:
        ttable.add_row(*r)
    console.print(ttable)
    for n in notes:
        console.print(n, markup=False, highlight=False)
    return "\n".join(md)


def run_keras_finetune(spec: dict) -> dict:
    """The Keras transfer-learning guide's two phases on a JPEG folder: a frozen base called with
    ``training=False`` and a new head, then the base unfrozen and the model compiled again at a tenth of
    the LR (BatchNorm stays in inference mode through ``training=False``)."""
    from kerasopt.bench.measure import EpochTimer

    tf, keras, import_s = _keras()
    h, w = spec["image_size"]
    train, val, n_train, n_val = _folder_splits(spec, keras)
    train, val = train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)
    keras.utils.set_random_seed(spec["seed"])
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(h, w, 3))
    base.load_weights(spec["weights"], by_name=True)
    base.trainable = False
    inputs = keras.Input((h, w, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(base(x, training=False))
    model = keras.Model(inputs, keras.layers.Dense(spec["num_classes"], activation="softmax")(x))
    probe, timer = _probe(keras), EpochTimer()
    t0 = time.perf_counter()
    for phase, (lr, first, last) in enumerate([(1e-3, 0, 1), (1e-4, 1, spec["epochs"])]):
        base.trainable = phase == 1
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(train, validation_data=val, initial_epoch=first, epochs=last, callbacks=[probe, timer])
    out = {**_timing(spec, probe, timer, n_train, import_s), "fit_wall_s": time.perf_counter() - t0,
           "n_val": n_val, "model": _describe(model), "precision": "float32", "jit_compile": False}
    out["val_accuracy"] = timer.recorder.epochs[-1].logs.get("val_accuracy") if timer.recorder.epochs else None
    return out


KINDS = {"keras_folder": run_keras_folder, "keras_finetune": run_keras_finetune,
         "keras_tfrecord": run_keras_tfrecord, "keras_csv": run_keras_csv,
         "kerasopt": run_kerasopt, "write_tfrecords": run_write_tfrecords}


def main() -> int:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    try:
        result = {"ok": True, **KINDS[spec["kind"]](spec)}
    except Exception as e:  # noqa: BLE001 - the parent records it and goes on with the other runs
        import traceback

        traceback.print_exc()
        result = {"ok": False, "error": f"{type(e).__name__}: {str(e).strip()[:500]}"}
    result["peak_rss_mb"] = peak_rss_mb()
    result["process_s"] = time.time() - spec.get("launched_at", T_SCRIPT)
    result_path.write_text(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
