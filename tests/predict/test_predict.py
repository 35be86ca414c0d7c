"""``kerasopt predict``: raw images, CSV rows and NPZ arrays get the run's own preprocessing, so the
predictions equal the model on what training fed it; bad input is one line and exit 2."""

import csv
import doctest
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import kerasopt
from kerasopt.cli import main
from kerasopt.errors import ConfigError

COMMON = {
    "train": {"epochs": 1, "optimizer": {"type": "adam", "learning_rate": 0.01}, "verbose": 0},
    "callbacks": {"tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]},
    "report": False,
}
CLASSES = ["cat", "dog", "owl"]


def cli(*args):
    return CliRunner().invoke(main, ["predict", *[str(a) for a in args]], catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def load_run_model(run: Path):
    from kerasopt._keras import keras
    from kerasopt.export import find_exported_model

    return keras.models.load_model(find_exported_model(run), compile=False)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """Three class folders of noisy 12x12 PNGs (one 16x16 and one JPEG each, resized on decode), one epoch."""
    root = tmp_path_factory.mktemp("images")
    photos = root / "photos"
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (photos / name).mkdir(parents=True)
        for j in range(6):
            size = 16 if j == 4 else 12
            pixels = np.clip(rng.normal(50 + 70 * c, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(photos / name / (f"{j}.jpg" if j == 5 else f"{j}.png"))
    cfg = {"name": "img", "runs_root": str(root / "runs"), **COMMON, "export": {"formats": ["keras", "saved_model"]},
           "data": {"source": "image_dir", "path": str(photos), "image_size": [12, 12], "batch_size": 8,
                    "normalize": "standard", "validation_split": 0.25},
           "model": {"type": "cnn", "filters": [4], "dense_units": 0}}
    return photos, kerasopt.fit(cfg).run_dir.path


def write_table(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A CSV with a categorical column (and one constant column), two classes, normalize: standard."""
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(1)
    rows = [{"length": f"{rng.normal(5 + 2 * (i % 2), 1):.3f}", "color": ["red", "green", "blue"][i % 3],
             "weight": f"{rng.normal(50, 10):.2f}", "flag": "1", "species": ["a", "b"][i % 2]} for i in range(60)]
    path = write_table(root / "train.csv", rows)
    cfg = {"name": "tab", "runs_root": str(root / "runs"), **COMMON, "export": {"formats": ["keras", "saved_model"]},
           "data": {"source": "csv", "path": str(path), "label_column": "species", "categorical_columns": ["color"],
                    "normalize": "standard", "batch_size": 16},
           "model": {"type": "mlp", "hidden_units": [8]}}
    return path, kerasopt.fit(cfg).run_dir.path


def test_image_folder_predictions_equal_the_training_pipeline(image_run, tmp_path):
    from kerasopt.config import load_config
    from kerasopt.data import build_datasets
    from kerasopt.data.sources import load_source
    from kerasopt.data.split import split_indices

    photos, run = image_run
    record = json.loads((run / "preprocess.json").read_text())
    assert record["kind"] == "image" and record["image"] == {"size": [12, 12], "channels": 3}
    assert record["class_names"] == CLASSES and record["normalize"]["method"] == "standard"
    out = tmp_path / "out" / "p.csv"
    summary = kerasopt.predict(run, photos, out, top_k=3, batch_size=5)
    rows = {r["id"]: r for r in read_rows(out)}
    assert summary.examples == len(rows) == 18 and sum(summary.class_counts.values()) == 18
    assert list(read_rows(out)[0]) == ["id", "predicted", "probability", "top1_class", "top1_prob", "top2_class",
                                       "top2_prob", "top3_class", "top3_prob"]

    # what training fed the model, file by file: the training and validation splits in index order
    cfg = load_config(run / "config.yaml", {"data.shuffle_buffer": 0})
    bundle = build_datasets(cfg)
    src = load_source(cfg)
    train_idx, val_idx, _ = split_indices(src.y, cfg.data.validation_split, cfg.seed, stratify=True)
    x = np.concatenate([b[0].numpy() for b in bundle.train] + [b[0].numpy() for b in bundle.val])
    ids = [Path(src.stream.files[i]).relative_to(photos).as_posix() for i in [*train_idx, *val_idx]]
    expected = load_run_model(run).predict(x, verbose=0)
    assert sorted(ids) == sorted(rows) and "dog/5.jpg" in rows and "owl/4.png" in rows
    for probs, name in zip(expected, ids):
        row, order = rows[name], np.argsort(-probs, kind="stable")
        assert row["predicted"] == row["top1_class"] == CLASSES[order[0]]
        for i in range(3):
            assert row[f"top{i + 1}_class"] == CLASSES[order[i]]
            assert float(row[f"top{i + 1}_prob"]) == pytest.approx(float(probs[order[i]]), abs=1e-5)
    assert summary.class_counts == {c: sum(r["predicted"] == c for r in rows.values()) for c in CLASSES}


def encode_by_hand(rows: list[dict], record: dict) -> np.ndarray:
    """The table rows as the model takes them, from preprocess.json's vocabulary and statistics."""
    vocab = record["table"]["categorical"]["color"]
    x = np.array([[float(r["length"]), *[float(r["color"].strip() == v) for v in vocab], float(r["weight"]),
                   float(r["flag"])] for r in rows], np.float32)
    mean = np.asarray(record["normalize"]["mean"], np.float64)
    std = np.asarray(record["normalize"]["std"], np.float64)
    return (x - mean.astype(np.float32)) / np.where(std > 1e-7, std, 1.0).astype(np.float32)


def test_csv_with_a_categorical_column_matches_model_on_hand_encoded_rows(table_run, tmp_path):
    from kerasopt.config import load_config
    from kerasopt.data import build_datasets
    from kerasopt.data.split import split_indices

    train_csv, run = table_run
    record = json.loads((run / "preprocess.json").read_text())
    table = record["table"]
    assert table["columns"] == ["length", "color", "weight", "flag"] and table["label_column"] == "species"
    assert table["categorical"] == {"color": ["blue", "green", "red"]}
    train_rows = read_rows(train_csv)
    # the record is what training did: the training pipeline's rows equal the hand encoding
    cfg = load_config(run / "config.yaml", {"data.shuffle_buffer": 0})
    train_idx, _, _ = split_indices((np.array([r["species"] for r in train_rows]) == "b").astype(np.int64),
                                    cfg.data.validation_split,
                                    cfg.seed, stratify=True)
    fed = np.concatenate([b[0].numpy() for b in build_datasets(cfg).train])
    np.testing.assert_allclose(fed, encode_by_hand([train_rows[i] for i in train_idx], record), atol=1e-6)

    # new rows: other column order, an unseen color, spaces around a value, and columns to carry through
    new = [{"note": f"n{i}", "weight": r["weight"], "color": c, "species": r["species"], "flag": "1",
            "length": r["length"]} for i, (r, c) in enumerate(zip(train_rows[:7], ["red", " green ", "purple", "blue",
                                                                               "red", "", "blue"]))]
    path = write_table(tmp_path / "new.csv", new)
    summary = kerasopt.predict(run, path, tmp_path / "p.csv", top_k=2)
    rows = read_rows(tmp_path / "p.csv")
    assert list(rows[0])[:4] == ["id", "note", "species", "predicted"] and summary.examples == 7
    p_b = load_run_model(run)(encode_by_hand(new, record)).numpy()[:, 0]  # binary head: P(class "b")
    for i, (row, p) in enumerate(zip(rows, p_b)):
        assert row["id"] == str(i) and row["note"] == f"n{i}" and row["species"] == new[i]["species"]
        assert row["predicted"] == ("b" if p > 0.5 else "a")
        assert float(row["probability"]) == pytest.approx(max(p, 1 - p), abs=1e-5)
        assert float(row["top2_prob"]) == pytest.approx(min(p, 1 - p), abs=1e-5)

    # the same rows as Parquet (numbers typed, the colour dictionary-encoded): the same predictions
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {k: [r[k] for r in new] for k in new[0]}
    for k in ("weight", "length", "flag"):
        cols[k] = pa.array([float(v) for v in cols[k]], pa.float64())
    cols["color"] = pa.array(cols["color"]).dictionary_encode()
    pq.write_table(pa.table(cols), tmp_path / "new.parquet")
    kerasopt.predict(run, tmp_path / "new.parquet", tmp_path / "pq.csv", top_k=2)
    assert read_rows(tmp_path / "pq.csv") == rows


def test_csv_missing_a_feature_column_is_one_line_naming_it(table_run, tmp_path):
    train_csv, run = table_run
    rows = [{k: v for k, v in r.items() if k != "weight"} for r in read_rows(train_csv)[:3]]
    path = write_table(tmp_path / "short.csv", rows)
    with pytest.raises(ConfigError, match=r"short\.csv has no column 'weight'"):
        kerasopt.predict(run, path, tmp_path / "p.csv")
    r = cli(run, path, "--out", tmp_path / "p.csv")
    assert r.exit_code == 2 and len(error_lines(r)) == 1 and "'weight'" in error_lines(r)[0], r.output
    assert "Traceback" not in r.output and not (tmp_path / "p.csv").exists()


def test_a_corrupt_image_stops_or_is_skipped(image_run, tmp_path):
    photos, run = image_run
    folder = tmp_path / "new"
    shutil.copytree(photos / "dog", folder / "dog")
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ConfigError, match=r"broken\.png.*--on-bad-file skip"):
        kerasopt.predict(run, folder, tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()  # nothing half written
    summary = kerasopt.predict(run, str(folder / "*" / "*.png"), tmp_path / "p.csv", on_bad_file="skip")
    assert [s[0] for s in summary.skipped] == ["dog/broken.png"]
    assert sorted(r["id"] for r in read_rows(tmp_path / "p.csv")) == [f"dog/{j}.png" for j in range(5)]
    r = cli(run, folder, "--out", tmp_path / "q.csv", "--on-bad-file", "skip")
    assert r.exit_code == 0 and "skipped 1 file" in r.output and "predicted 6 examples" in r.output, r.output
    r = cli(run, folder, "--out", tmp_path / "q.csv")
    assert r.exit_code == 2 and len(error_lines(r)) == 1 and "broken.png" in error_lines(r)[0], r.output


def test_run_without_model_or_record_and_missing_input_exit_2(image_run, tmp_path):
    photos, run = image_run
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text((run / "config.yaml").read_text())
    old = tmp_path / "old"
    shutil.copytree(run / "model", old / "model")
    (old / "config.yaml").write_text((run / "config.yaml").read_text())
    for args, fragment in [((bare, photos), "no exported model"), ((old, photos), "predates"),
                           ((run, tmp_path / "nothing"), "INPUT not found"),
                           ((tmp_path / "norun", photos), "run directory not found")]:
        r = cli(*args, "--out", tmp_path / "p.csv")
        assert r.exit_code == 2 and len(error_lines(r)) == 1 and fragment in error_lines(r)[0], r.output


def test_npz_regression_with_minmax(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(3, 2, (120, 4))
    np.savez(tmp_path / "train.npz", x=x, y=(x @ [1.0, -2.0, 0.5, 0.0]).astype(np.float32))
    cfg = {"name": "reg", "runs_root": str(tmp_path / "runs"), **COMMON,
           "data": {"source": "npz", "path": str(tmp_path / "train.npz"), "normalize": "minmax", "batch_size": 32},
           "model": {"type": "mlp", "hidden_units": [8]}}
    run = kerasopt.fit(cfg).run_dir.path
    new = x[:9] + 1.5
    np.savez(tmp_path / "new.npz", features=new)  # the only array, under another name
    summary = kerasopt.predict(run, tmp_path / "new.npz", tmp_path / "p.csv", batch_size=4)
    rows = read_rows(tmp_path / "p.csv")
    assert summary.task == "regression" and summary.class_counts is None and list(rows[0]) == ["id", "prediction"]
    n = json.loads((run / "preprocess.json").read_text())["normalize"]
    low, span = np.asarray(n["min"]), np.asarray(n["max"]) - np.asarray(n["min"])
    want = load_run_model(run)((new.astype(np.float32) - low.astype(np.float32)) / span.astype(np.float32)).numpy()
    np.testing.assert_allclose([float(r["prediction"]) for r in rows], want[:, 0], rtol=1e-5, atol=1e-5)
    assert [r["id"] for r in rows] == [str(i) for i in range(9)]
    with pytest.raises(ConfigError, match="top_k applies to classification"):
        kerasopt.predict(run, tmp_path / "new.npz", tmp_path / "p.csv", top_k=2)
    with pytest.raises(ConfigError, match="no column names"):
        kerasopt.predict(run, write_table(tmp_path / "t.csv", [{"a": 1}]), tmp_path / "p.csv")
    with pytest.raises(ConfigError, match="not on image files"):
        kerasopt.predict(run, tmp_path, tmp_path / "p.csv")


def test_normalizer_arrays_match_the_training_statistics():
    from kerasopt.data.transforms import RunningStats
    from kerasopt.training.preprocess_record import normalizer_arrays

    x = np.random.default_rng(0).normal(3, 2, (50, 4)).astype(np.float32)
    x[:, 2] = 7.0  # constant: scale 1
    stats = RunningStats()
    stats.update(x)
    for method in ("standard", "minmax"):
        (offset, scale), record = stats.normalizer(method)
        got = normalizer_arrays({"normalize": json.loads(json.dumps(record))})
        np.testing.assert_array_equal(got[0], offset)
        np.testing.assert_array_equal(got[1], scale)


@pytest.mark.parametrize("name", ["kerasopt.prediction", "kerasopt.prediction_inputs",
                                  "kerasopt.training.preprocess_record", "kerasopt.export.serving",
                                  "kerasopt.export.formats"])
def test_docstring_examples(name):
    assert doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS).failed == 0


def test_grayscale_arrays_without_their_channel_axis(tmp_path):
    """A run on (6, 6, 1) images predicts on (n, 6, 6) arrays as on (n, 6, 6, 1); other shapes are one line."""
    rng = np.random.default_rng(3)
    y = np.arange(40) % 2
    x = (rng.normal(0, 1, (40, 6, 6, 1)) + y[:, None, None, None]).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    cfg = {"name": "gray", "runs_root": str(tmp_path / "runs"), **COMMON,
           "data": {"source": "npz", "path": str(tmp_path / "train.npz"), "normalize": "standard", "batch_size": 8},
           "model": {"type": "cnn", "filters": [4], "dense_units": 0}}
    run = kerasopt.fit(cfg).run_dir.path
    np.savez(tmp_path / "with.npz", x=x[:5])
    np.savez(tmp_path / "without.npz", x=x[:5, :, :, 0])
    kerasopt.predict(run, tmp_path / "with.npz", tmp_path / "a.csv")
    kerasopt.predict(run, tmp_path / "without.npz", tmp_path / "b.csv")
    assert read_rows(tmp_path / "a.csv") == read_rows(tmp_path / "b.csv")
    np.savez(tmp_path / "flat.npz", x=x[:5].reshape(5, 36))
    r = cli(run, tmp_path / "flat.npz", "--out", tmp_path / "c.csv")
    assert r.exit_code == 2 and len(error_lines(r)) == 1, r.output
    assert "examples of shape (36,)" in r.output and "takes (6, 6, 1)" in r.output


def test_tfrecords_get_the_same_predictions_as_the_same_images_as_files(image_run, tmp_path):
    """A TFRecord run predicts on shards (no label needed); each record's probabilities equal the ones
    of the same JPEG/PNG bytes given as a file, and a record that does not decode is skipped or stops."""
    from kerasopt._keras import tf

    photos, _ = image_run
    files = sorted(p for p in photos.rglob("*") if p.is_file())

    def example(data: bytes, label: str = None):
        feats = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))}
        if label is not None:
            feats["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()]))
        return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()

    for shard in range(2):
        with tf.io.TFRecordWriter(str(tmp_path / f"train-{shard}.tfrecord")) as w:
            for p in files[shard::2]:
                w.write(example(p.read_bytes(), p.parent.name))
    cfg = {"name": "tfr", "runs_root": str(tmp_path / "runs"), **COMMON,
           "data": {"source": "tfrecord", "path": str(tmp_path / "train-*.tfrecord"), "batch_size": 8,
                    "normalize": "standard", "validation_split": 0.25,
                    "features": {"image": {"dtype": "image", "shape": [12, 12, 3]}, "label": {"dtype": "string"}}},
           "model": {"type": "cnn", "filters": [4], "dense_units": 0}}
    run = kerasopt.fit(cfg).run_dir.path
    new = tmp_path / "new"
    new.mkdir()
    for shard in range(2):  # new data: no labels, and one record in the second shard is not an image
        with tf.io.TFRecordWriter(str(new / f"part-{shard}.tfrecord")) as w:
            for j, p in enumerate(files[shard::2]):
                w.write(example(p.read_bytes()))
                if shard == 1 and j == 2:
                    w.write(example(b"not an image"))
    with pytest.raises(ConfigError, match=r"part-1\.tfrecord:3: .*--on-bad-file skip"):
        kerasopt.predict(run, str(new / "part-*.tfrecord"), tmp_path / "p.csv")
    summary = kerasopt.predict(run, str(new / "part-*.tfrecord"), tmp_path / "p.csv", on_bad_file="skip",
                               batch_size=4)
    assert summary.examples == len(files) and [s[0] for s in summary.skipped] == [f"{new}/part-1.tfrecord:3"]
    by_record = {r["id"]: r for r in read_rows(tmp_path / "p.csv")}
    kerasopt.predict(run, photos, tmp_path / "f.csv")
    by_file = {r["id"]: r for r in read_rows(tmp_path / "f.csv")}
    for shard in range(2):
        for j, p in enumerate(files[shard::2]):
            index = j + (1 if shard == 1 and j > 2 else 0)
            got, want = by_record[f"{new}/part-{shard}.tfrecord:{index}"], by_file[p.relative_to(photos).as_posix()]
            assert got["predicted"] == want["predicted"]
            assert float(got["probability"]) == pytest.approx(float(want["probability"]), abs=1e-6)
    record = json.loads((run / "preprocess.json").read_text())
    assert record["tfrecord"]["label_key"] == "label" and record["image"] == {"size": [12, 12], "channels": 3}
    r = cli(image_run[1], new / "part-0.tfrecord", "--out", tmp_path / "q.csv")  # an image_dir run: no features
    assert r.exit_code == 2 and "TFRecords need the run's data.features" in error_lines(r)[0], r.output


def test_the_saved_models_raw_signature_equals_kerasopt_predict(image_run, table_run, tmp_path):
    """TF Serving needs no kerasopt: ``serving_raw`` takes encoded files or raw columns."""
    from kerasopt._keras import tf

    photos, run = image_run
    served = tf.saved_model.load(str(run / "model" / "saved_model"))
    assert set(served.signatures) == {"serving_default", "serving_raw"}
    files = sorted(p for p in photos.rglob("*") if p.is_file())
    (probs,) = served.signatures["serving_raw"](image_bytes=tf.constant([p.read_bytes() for p in files])).values()
    kerasopt.predict(run, photos, tmp_path / "img.csv", top_k=3)
    rows = {r["id"]: r for r in read_rows(tmp_path / "img.csv")}
    for p, row in zip(files, probs.numpy()):
        want = rows[p.relative_to(photos).as_posix()]
        assert CLASSES[int(np.argmax(row))] == want["predicted"]
        assert float(row.max()) == pytest.approx(float(want["probability"]), abs=1e-5)

    path, run = table_run
    served = tf.saved_model.load(str(run / "model" / "saved_model")).signatures["serving_raw"]
    assert sorted(served.structured_input_signature[1]) == ["color", "flag", "length", "weight"]
    table = read_rows(path)
    raw = {name: tf.constant([float(r[name]) for r in table]) for name in ("length", "weight", "flag")}
    raw["color"] = tf.constant([" " + r["color"] if i == 0 else r["color"] for i, r in enumerate(table)])  # trimmed
    (p_b,) = served(**raw).values()  # two classes: one sigmoid unit, the probability of "b"
    kerasopt.predict(run, path, tmp_path / "tab.csv")
    for p, want in zip(p_b.numpy()[:, 0], read_rows(tmp_path / "tab.csv")):
        assert want["predicted"] == ("b" if p >= 0.5 else "a")
        assert max(p, 1 - p) == pytest.approx(float(want["probability"]), abs=1e-5)
