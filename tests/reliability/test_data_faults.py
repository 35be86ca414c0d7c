"""Data faults: each bad input is found before training, named (file, row, column, record), and is exit 2.

Images that do not decode honour ``data.on_bad_file`` (error | skip); NaN/Inf,
non-numeric cells, empty splits, labels the head cannot hold and a TFRecord spec
that does not match the records are always errors. Every case is written to
the fault ledger (``fault_record``).
"""

from __future__ import annotations

import doctest
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image
from tfrecord_examples import example, write_records

from kerasopt._keras import tf
from kerasopt.cli import main
from kerasopt.config import ExperimentConfig
from kerasopt.data import build_datasets
from kerasopt.data.sources import load_source
from kerasopt.errors import ConfigError

# Fast to build and train: no XLA, no TensorBoard, no report, one export format.
FAST = {
    "train": {"epochs": 1, "verbose": 0, "jit_compile": False},
    "callbacks": {"tensorboard": {"enabled": False}},
    "export": {"formats": ["keras"]},
    "report": False,
}


def image_bytes(value: int, fmt: str = "PNG", size: int = 8) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(value)  # noise: a truncated file then really lacks pixel data
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def image_folder(root: Path, per_class: int = 5) -> Path:
    """cats/ and dogs/, ``per_class`` PNG and JPEG images each (8x8 RGB noise)."""
    for c, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            fmt = "PNG" if i % 2 == 0 else "JPEG"
            (root / cls / f"{i}.{fmt.lower()}").write_bytes(image_bytes(10 * c + i, fmt))
    return root


BAD_FILES = {
    "truncated PNG": ("cats/0.png", lambda b: b[: len(b) // 2], "Invalid PNG data"),
    "truncated JPEG": ("dogs/1.jpeg", lambda b: b[: len(b) // 2], "Invalid JPEG data"),
    "empty (0-byte) image file": ("cats/2.png", lambda b: b"", "Input is empty"),
    "text file named .png": ("dogs/4.png", lambda b: b"just some notes\n", "Unknown image file format"),
}


def cfg(**data) -> ExperimentConfig:
    return ExperimentConfig(data=data)


def one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def fit_cli(tmp_path: Path, config: dict, *extra: str):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({**FAST, "runs_root": str(tmp_path / "runs"), **config}))
    return CliRunner().invoke(main, ["fit", str(path), *extra], catch_exceptions=False)


@pytest.mark.parametrize("fault", list(BAD_FILES))
def test_bad_image_file_is_named_before_training(tmp_path, fault, fault_record):
    rel, damage, reason = BAD_FILES[fault]
    root = image_folder(tmp_path / "photos")
    (root / rel).write_bytes(damage((root / rel).read_bytes()))
    with pytest.raises(ConfigError) as e:
        load_source(cfg(source="image_dir", path=str(root)))
    msg = str(e.value)
    assert e.value.key == "data.path" and str(root / rel) in msg and reason in msg, msg
    assert "data.on_bad_file: skip" in msg and "\n" not in msg
    fault_record(f"image_dir: {fault}", f"exit 2: {msg}")


def test_bad_image_stops_fit_before_anything_is_written(tmp_path, fault_record):
    root = image_folder(tmp_path / "photos")
    (root / "dogs" / "3.jpeg").write_bytes((root / "dogs" / "3.jpeg").read_bytes()[:100])
    r = fit_cli(tmp_path, {"name": "bad", "data": {"source": "image_dir", "path": str(root)}, "model": {"type": "cnn"}})
    line = one_error_line(r.output)
    assert r.exit_code == 2 and str(root / "dogs" / "3.jpeg") in line
    assert not (tmp_path / "runs").exists()
    fault_record("image_dir: truncated JPEG, `kerasopt fit` (on_bad_file: error)",
                 f"exit 2 before training, no run directory: {line}")


def test_skip_logs_each_file_and_the_count_then_trains(tmp_path, caplog, fault_record):
    root = image_folder(tmp_path / "photos")
    (root / "cats" / "0.png").write_bytes((root / "cats" / "0.png").read_bytes()[:50])
    (root / "dogs" / "1.jpeg").write_bytes(b"")
    config = {"name": "skip", "data": {"source": "image_dir", "path": str(root), "on_bad_file": "skip",
                                      "batch_size": 4, "validation_split": 0.25},
              "model": {"type": "cnn", "filters": [4], "dense_units": 0}}
    with caplog.at_level(logging.WARNING, logger="kerasopt.data"):
        r = fit_cli(tmp_path, config)
    assert r.exit_code == 0, r.output
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "kerasopt.data"]
    assert logged[0].startswith(f"skipped image file {root / 'cats' / '0.png'}: Invalid PNG data")
    assert logged[1].startswith(f"skipped image file {root / 'dogs' / '1.jpeg'}: Input is empty")
    assert logged[2] == f"skipped 2 of 10 image files in {root} (data.on_bad_file: skip)"
    metrics = json.loads((tmp_path / "runs" / "skip" / "metrics.json").read_text())
    # 8 good images: validation is ceil(8 * 0.25) = 2 of them
    assert (metrics["data"]["num_train"], metrics["data"]["num_val"]) == (6, 2)
    assert sorted(metrics["data"]["skipped"]) == sorted([str(root / "cats" / "0.png"), str(root / "dogs" / "1.jpeg")])
    assert metrics["epochs_run"] == 1
    fault_record("image_dir: truncated PNG + empty JPEG with on_bad_file: skip",
                 "skipped 2 of 10 files (each logged with its reason), trained on the 8 others")


def test_skip_that_empties_a_class_is_an_error(tmp_path, fault_record):
    root = image_folder(tmp_path / "photos", per_class=2)
    for f in (root / "dogs").iterdir():
        f.write_bytes(b"broken")
    with pytest.raises(ConfigError, match=r"class folder .*dogs has no image that decodes \(2 skipped\)") as e:
        load_source(cfg(source="image_dir", path=str(root), on_bad_file="skip"))
    fault_record("image_dir: every image of one class broken, on_bad_file: skip", f"exit 2: {e.value}")


def test_file_changed_after_the_check_names_the_file_mid_training(tmp_path, monkeypatch, fault_record):
    root = image_folder(tmp_path / "photos")
    bundle = build_datasets(cfg(source="image_dir", path=str(root), validation_split=0.0, cache=False,
                                shuffle_buffer=0, batch_size=10))
    victim = root / "cats" / "4.png"
    victim.write_bytes(victim.read_bytes()[:40])  # replaced while training runs
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        next(iter(bundle.train))
    first = str(e.value).strip().splitlines()[0]
    assert str(victim) in first and "changed after kerasopt checked it" in first

    # The same through `kerasopt fit`: the file is damaged right after the up-front check passed.
    from kerasopt.data import sources_files

    run_root = tmp_path / "cli"
    run_root.mkdir()
    victim_cli = image_folder(tmp_path / "photos_cli") / "cats" / "4.png"
    checked = sources_files._check_files

    victim_size = victim_cli.stat().st_size

    def check_then_damage(*args, **kwargs):
        out = checked(*args, **kwargs)
        victim_cli.write_bytes(victim_cli.read_bytes()[:40])
        return out

    monkeypatch.setattr(sources_files, "_check_files", check_then_damage)
    r = fit_cli(run_root, {"name": "changed", "data": {"source": "image_dir", "path": str(victim_cli.parents[1]),
                                                       "cache": False, "shuffle_buffer": 0, "batch_size": 10},
                           "model": {"type": "cnn"}})
    line = one_error_line(r.output)
    assert r.exit_code == 1, r.output
    assert line == (f"error: image file changed after kerasopt checked it: {victim_cli} is 40 bytes, was "
                    f"{victim_size} bytes when checked; run again to check it anew"), line
    fault_record("image_dir: file truncated after the check, while training reads it", f"exit 1: {line}")


def test_image_check_is_cheap(tmp_path):
    """The decode pass over 600 small images stays well under a second (measured ~0.1 s)."""
    import time

    root = tmp_path / "many"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        data = image_bytes(1, "PNG", 32)
        for i in range(300):
            (root / cls / f"{i}.png").write_bytes(data)
    t0 = time.perf_counter()
    src = load_source(cfg(source="image_dir", path=str(root)))
    elapsed = time.perf_counter() - t0
    assert src.num_examples == 600 and elapsed < 5.0, elapsed


# ----------------------------------------------------------------------------- CSV


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "table.csv"
    path.write_text(text)
    return str(path)


def test_csv_non_numeric_cell_names_row_and_column(tmp_path, fault_record):
    path = write_csv(tmp_path, "a,b,label\n1,2,0\n3,4,1\n5,n/a,0\n")
    with pytest.raises(ConfigError) as e:
        load_source(cfg(source="csv", path=path, label_column="label"))
    msg = str(e.value)
    assert "table.csv, row 3 (line 4), column 'b': not a number" in msg and msg.endswith("Received: 'n/a'")
    fault_record("CSV: non-numeric cell in a numeric feature column", f"exit 2: {msg}")


def test_csv_typo_in_a_numeric_label_column_is_not_a_class(tmp_path, fault_record):
    # Before: '1.5', '2.5', 'x' became three class names and regression silently turned into classification.
    path = write_csv(tmp_path, "a,price\n1,1.5\n2,2.5\n3,3.5\n4,x\n")
    with pytest.raises(ConfigError) as e:
        load_source(cfg(source="csv", path=path, label_column="price"))
    msg = str(e.value)
    assert e.value.key == "data.label_column"
    assert "row 4 (line 5), column 'price': not a number, although 3 of 4 labels are numbers" in msg
    fault_record("CSV: non-numeric cell in a numeric label column", f"exit 2: {msg}")


# ----------------------------------------------------------------------------- NaN / Inf


def npz(tmp_path: Path, x, y) -> str:
    path = tmp_path / "arrays.npz"
    np.savez(path, x=x, y=y)
    return str(path)


@pytest.mark.parametrize("where", ["features", "labels"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_inf_stops_fit_before_training(tmp_path, where, value, fault_record):
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.linspace(0, 1, 40)
    (x if where == "features" else y)[7] = value
    r = fit_cli(tmp_path, {"name": "nan", "data": {"source": "npz", "path": npz(tmp_path, x, y)},
                           "model": {"type": "mlp", "hidden_units": [4]}, "train": {**FAST["train"], "loss": "mse"}})
    line = one_error_line(r.output)
    assert r.exit_code == 2 and "arrays.npz" in line and "NaN or Inf" in line and "example 7" in line, line
    assert not (tmp_path / "runs").exists()
    fault_record(f"{'NaN' if np.isnan(value) else 'Inf'} in {where} (npz, regression)",
                 f"exit 2 before training: {line}")


def test_nan_in_a_csv_cell(tmp_path, fault_record):
    path = write_csv(tmp_path, "a,label\n1,0\n2,1\ninf,0\n4,1\n5,0\n")
    with pytest.raises(ConfigError) as e:
        build_datasets(cfg(source="csv", path=path, label_column="label"))
    assert e.value.key == "data" and "table.csv" in str(e.value) and "example 2" in str(e.value)
    fault_record("CSV: 'inf' in a numeric cell", f"exit 2: {e.value}")


# ----------------------------------------------------------------------------- empty splits


def test_empty_splits(tmp_path, fault_record):
    with pytest.raises(ConfigError, match="leaves 0 of 1 examples for training") as e:
        build_datasets(cfg(source="sklearn", name="iris", max_examples=1, validation_split=0.5))
    fault_record("empty training split (max_examples 1, validation_split 0.5)", f"exit 2: {e.value}")

    with pytest.raises(ConfigError, match="has no examples") as e:
        build_datasets(cfg(source="npz", path=npz(tmp_path, np.ones((0, 2)), np.zeros(0, int))))
    fault_record("data file with 0 examples (npz)", f"exit 2: {e.value}")

    with pytest.raises(ConfigError, match="has no examples") as e:
        build_datasets(cfg(source="csv", path=write_csv(tmp_path, "a,label\n"), label_column="label"))
    fault_record("CSV with a header and no rows", f"exit 2: {e.value}")

    # No validation split, but the checkpoint monitors val_loss: refused before the first step.
    r = fit_cli(tmp_path, {"name": "noval", "data": {"source": "sklearn", "name": "iris", "validation_split": 0.0},
                           "model": {"type": "mlp", "hidden_units": [4]}})
    line = one_error_line(r.output)
    assert r.exit_code == 2 and "callbacks.checkpoint.monitor" in line and "no validation split" in line
    assert not (tmp_path / "runs" / "noval" / "history.csv").exists()
    fault_record("empty validation split (validation_split 0) with a val_* monitor", f"exit 2: {line}")


# ----------------------------------------------------------------------------- labels vs head


@pytest.mark.parametrize(
    "model, key, fragment",
    [
        ({"num_classes": 2}, "model.num_classes", "config says 2 but the labels have 3 classes"),
        ({"head": "binary"}, "model.head", "head 'binary' needs 2 classes but the labels have 3"),
    ],
)
def test_labels_out_of_range_for_the_head(tmp_path, model, key, fragment, fault_record):
    r = fit_cli(tmp_path, {"name": "head", "data": {"source": "sklearn", "name": "iris"},
                           "model": {"type": "mlp", "hidden_units": [4], **model}})
    line = one_error_line(r.output)
    assert r.exit_code == 2 and f"{key}: {fragment}" in line, line
    assert not (tmp_path / "runs" / "head").exists()
    fault_record(f"iris labels 0..2 with model {model}", f"exit 2 before training: {line}")


def test_negative_and_undeclared_labels(tmp_path, fault_record):
    path = npz(tmp_path, np.ones((6, 2)), np.array([0, 1, -1, 1, 0, 1]))
    with pytest.raises(ConfigError, match="must be >= 0.*example 2. Received: -1") as e:
        build_datasets(cfg(source="npz", path=path))
    fault_record("negative class label (npz)", f"exit 2: {e.value}")
    # synthetic declares 3 classes; a label of 3 would index past the head
    from kerasopt.data import pipeline
    from kerasopt.data.source_base import SourceData

    src = SourceData(y=np.array([0, 1, 2, 3]), x=np.ones((4, 2), np.float32), origin="a source", num_classes=3,
                     task="classification")
    with pytest.raises(ConfigError, match="class labels must be < 3 .*example 3 has 3"):
        pipeline._labels(src, 4)


# ----------------------------------------------------------------------------- TFRecord


@pytest.mark.parametrize(
    "declared, fragment",
    [
        ({"dtype": "float32", "shape": [3]}, "holds float_list (float32) with 1 value(s)"),
        ({"dtype": "int64"}, "holds float_list (float32) with 1 value(s)"),
        (None, "the first record has no feature 'w' (it has: label, v)"),
    ],
    ids=["wrong shape", "wrong dtype", "missing feature"],
)
def test_tfrecord_wrong_feature_spec(tmp_path, declared, fragment, fault_record, request):
    path = write_records(tmp_path / "t.tfrecord", [example(v=np.float32(i), label=i % 2) for i in range(4)])
    features = {"v": declared, "label": {"dtype": "int64"}} if declared else {
        "w": {"dtype": "float32"}, "label": {"dtype": "int64"}}
    with pytest.raises(ConfigError) as e:
        load_source(cfg(source="tfrecord", path=path, features=features))
    msg = str(e.value)
    assert e.value.key == "data.features" and "t.tfrecord does not match data.features." in msg and fragment in msg
    assert "\n" not in msg and "function_node" not in msg
    fault_record(f"TFRecord: {request.node.callspec.id} in data.features", f"exit 2: {msg}")


def test_tfrecord_truncated_file_error_or_skip(tmp_path, caplog, fault_record):
    good = write_records(tmp_path / "a.tfrecord", [example(v=np.float32(i), label=i % 2) for i in range(6)])
    bad = write_records(tmp_path / "b.tfrecord", [example(v=np.float32(i), label=i % 2) for i in range(6)])
    Path(bad).write_bytes(Path(bad).read_bytes()[:-9])
    features = {"v": {"dtype": "float32"}, "label": {"dtype": "int64"}}
    with pytest.raises(ConfigError) as e:
        load_source(cfg(source="tfrecord", path=str(tmp_path / "*.tfrecord"), features=features))
    assert e.value.key == "data.path" and f"cannot decode TFRecord file {bad}: truncated record" in str(e.value)
    fault_record("TFRecord: truncated file", f"exit 2: {e.value}")
    with caplog.at_level(logging.WARNING, logger="kerasopt.data"):
        src = load_source(cfg(source="tfrecord", path=str(tmp_path / "*.tfrecord"), features=features,
                              on_bad_file="skip"))
    assert src.num_examples == 6 and src.extras["skipped_files"] == [bad] and src.stream.num_files == 1
    assert f"skipped TFRecord file {bad}: truncated record" in caplog.text
    assert src.extras["files"] == 1 and good  # a.tfrecord is left
    fault_record("TFRecord: truncated file with on_bad_file: skip",
                 "skipped the file (logged), kept the 6 good records")


def test_tfrecord_image_that_does_not_decode(tmp_path, fault_record):
    records = [example(image=image_bytes(i, "PNG", 4), label=i % 2) for i in range(6)]
    records[3] = example(image=image_bytes(3, "PNG", 4)[:30], label=1)
    path = write_records(tmp_path / "img.tfrecord", records)
    features = {"image": {"dtype": "image", "shape": [4, 4, 3]}, "label": {"dtype": "int64"}}
    with pytest.raises(ConfigError) as e:
        load_source(cfg(source="tfrecord", path=path, features=features))
    assert f"cannot decode image record {path}, record 3: Invalid PNG" in str(e.value)
    fault_record("TFRecord: record whose image is truncated", f"exit 2: {e.value}")
    c = cfg(source="tfrecord", path=path, features=features, on_bad_file="skip", validation_split=0.0,
            shuffle_buffer=0)
    batches = [(x.numpy(), y.numpy()) for x, y in build_datasets(c).train]
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert len(x) == 5 and y.tolist() == [0, 1, 0, 0, 1]  # record 3 (label 1) left out
    fault_record("TFRecord: truncated image record with on_bad_file: skip", "skipped 1 record (logged), 5 trained on")


def test_filecheck_docstring_examples():
    import kerasopt.data.filecheck as filecheck

    assert doctest.testmod(filecheck).failed == 0
