"""The file-check manifest: a second start on unchanged files decodes nothing, and still names every bad file."""

from __future__ import annotations

import io
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from tfrecord_examples import example, write_records

import kerasopt.data.checkprogress as checkprogress
import kerasopt.data.manifest as manifest
import kerasopt.data.sources_tfrecord as sources_tfrecord
from kerasopt._keras import tf
from kerasopt.data.sources import load_source
from kerasopt.errors import ConfigError


def age(*paths: Path) -> None:
    """Files written an hour ago: an entry for a file modified just before its check is not trusted."""
    past = time.time() - 3600
    for p in paths:
        os.utime(p, (past, past))


def encoded(seed: int, fmt: str = "png", size: int = 8) -> bytes:
    """A ``size`` x ``size`` RGB noise image (noise: a truncated file really lacks pixel data)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return (tf.io.encode_png(pixels) if fmt == "png" else tf.io.encode_jpeg(pixels)).numpy()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("KERASOPT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def photos(tmp_path) -> Path:
    """cats/ and dogs/, 4 images each (PNG and JPEG, 8x8)."""
    root = tmp_path / "photos"
    for c, cls in enumerate(("cats", "dogs")):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            fmt = "png" if i % 2 == 0 else "jpeg"
            (root / cls / f"{i}.{fmt}").write_bytes(encoded(10 * c + i, fmt))
            age(root / cls / f"{i}.{fmt}")
    return root


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The files the image check decodes (``cats/0.png``...), in the order it is given them."""
    seen: list[str] = []
    real = manifest.check_images

    def spy(pairs, count, *args, **kwargs):
        seen.extend("/".join(Path(p.numpy().decode()).parts[-2:]) for _, p in pairs)
        return real(pairs, count, *args, **kwargs)

    monkeypatch.setattr(manifest, "check_images", spy)
    return seen


def manifest_files(cache: Path, kind: str = "images") -> list[Path]:
    return sorted((cache / "manifests").glob(f"{kind}-*"))


def load(make_cfg, root: Path, **data):
    return load_source(make_cfg(source="image_dir", path=str(root), **data))


def test_second_run_reuses_the_manifest_and_decodes_nothing(cache, photos, decoded, make_cfg):
    first = load(make_cfg, photos)
    assert len(decoded) == 8 and first.extras["file_check"]["checked"] == 8
    assert first.extras["file_check"]["from_manifest"] == 0
    (path,) = manifest_files(cache)
    saved = json.loads(path.read_text())
    assert sorted(saved["names"]) == sorted(decoded) and saved["ok"] == [1] * 8 and saved["shape"][:3] == [8, 8, 3]
    written = path.stat().st_mtime_ns

    decoded.clear()
    second = load(make_cfg, photos)
    assert decoded == [] and second.extras["file_check"]["checked"] == 0
    assert second.extras["file_check"]["from_manifest"] == 8
    assert second.y.tolist() == first.y.tolist() and second.extras["image_size"] == [8, 8]
    assert path.stat().st_mtime_ns == written  # nothing changed: not rewritten
    x1 = [x.numpy() for x, _ in first.stream.make(np.arange(8), None)[0]]
    x2 = [x.numpy() for x, _ in second.stream.make(np.arange(8), None)[0]]
    assert np.array_equal(np.stack(x1), np.stack(x2))


def test_channels_key_a_separate_manifest(cache, photos, decoded, make_cfg):
    load(make_cfg, photos)
    decoded.clear()
    gray = load(make_cfg, photos, channels=1)
    assert len(decoded) == 8 and gray.extras["file_check"]["from_manifest"] == 0
    assert len(manifest_files(cache)) == 2


def test_touched_or_resized_files_are_rechecked_and_others_not(cache, photos, decoded, make_cfg):
    load(make_cfg, photos)
    decoded.clear()
    st = (photos / "cats" / "1.jpeg").stat()
    os.utime(photos / "cats" / "1.jpeg", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    (photos / "dogs" / "2.png").write_bytes(encoded(99, "png", size=12))
    age(photos / "dogs" / "2.png")
    src = load(make_cfg, photos)
    assert sorted(decoded) == ["cats/1.jpeg", "dogs/2.png"]
    assert (src.extras["file_check"]["checked"], src.extras["file_check"]["from_manifest"]) == (2, 6)
    decoded.clear()
    assert load(make_cfg, photos).extras["file_check"]["from_manifest"] == 8 and decoded == []


def test_file_modified_just_before_its_check_is_checked_again(cache, photos, decoded, make_cfg):
    fresh = photos / "cats" / "0.png"
    fresh.write_bytes(encoded(7))  # now: it could change again within the same mtime tick
    load(make_cfg, photos)
    decoded.clear()
    src = load(make_cfg, photos)
    assert decoded == ["cats/0.png"] and src.extras["file_check"]["from_manifest"] == 7
    age(fresh)
    decoded.clear()
    load(make_cfg, photos)
    assert decoded == ["cats/0.png"]  # aged after its last check: a new mtime, checked once more
    decoded.clear()
    assert load(make_cfg, photos).extras["file_check"]["from_manifest"] == 8 and decoded == []


def test_file_replaced_by_a_corrupt_one_after_a_good_run_is_named(cache, photos, make_cfg):
    load(make_cfg, photos)
    victim = photos / "dogs" / "3.jpeg"
    victim.write_bytes(victim.read_bytes()[:60])
    with pytest.raises(ConfigError) as e:
        load(make_cfg, photos)
    msg = str(e.value)
    assert e.value.key == "data.path" and f"cannot decode image file {victim}: " in msg and "JPEG" in msg, msg
    assert "data.on_bad_file: skip" in msg


def test_bad_file_in_the_manifest_is_reported_again_without_decoding(cache, photos, decoded, make_cfg,
                                                                      monkeypatch, caplog):
    bad = photos / "cats" / "2.png"
    bad.write_bytes(b"just some notes\n")
    age(bad)
    with pytest.raises(ConfigError) as first:
        load(make_cfg, photos)
    assert "Unknown image file format" in str(first.value)
    (path,) = manifest_files(cache)
    assert json.loads(path.read_text())["reasons"] == {"cats/2.png": first.value.message.split(": ", 1)[1]
                                                       .split(". Fix", 1)[0]}

    decoded.clear()
    monkeypatch.setattr(manifest, "file_reason", lambda *a: pytest.fail("decoded a file the manifest knows"))
    with pytest.raises(ConfigError) as second:
        load(make_cfg, photos)
    assert str(second.value) == str(first.value) and decoded == []

    with caplog.at_level(logging.WARNING, logger="kerasopt.data"):
        src = load(make_cfg, photos, on_bad_file="skip")
    assert decoded == [] and src.extras["skipped_files"] == [str(bad)] and src.num_examples == 7
    assert f"skipped image file {bad}: Unknown image file format" in caplog.text


def test_skip_finds_every_reason_once_and_keeps_them(cache, photos, decoded, make_cfg, monkeypatch):
    for rel in ("cats/0.png", "dogs/1.jpeg"):
        (photos / rel).write_bytes(b"")
        age(photos / rel)
    with pytest.raises(ConfigError, match=r"cats/0.png: Input is empty \(2 of 8 image files are bad\)"):
        load(make_cfg, photos)  # error: only the first bad file's reason is needed
    (path,) = manifest_files(cache)
    assert list(json.loads(path.read_text())["reasons"]) == ["cats/0.png"]
    first = load(make_cfg, photos, on_bad_file="skip")  # skip: the second reason is found and kept
    assert first.extras["skipped_files"] == [str(photos / "cats/0.png"), str(photos / "dogs/1.jpeg")]
    assert sorted(json.loads(path.read_text())["reasons"]) == ["cats/0.png", "dogs/1.jpeg"]
    monkeypatch.setattr(manifest, "file_reason", lambda *a: pytest.fail("decoded a file the manifest knows"))
    assert load(make_cfg, photos, on_bad_file="skip").num_examples == 6


def test_deleted_files_drop_out(cache, photos, decoded, make_cfg):
    load(make_cfg, photos)
    (photos / "dogs" / "0.png").unlink()
    decoded.clear()
    src = load(make_cfg, photos)
    assert decoded == [] and src.num_examples == 7 and src.extras["file_check"]["from_manifest"] == 7
    (path,) = manifest_files(cache)
    assert "dogs/0.png" not in json.loads(path.read_text())["names"]


@pytest.mark.parametrize("garbage", [b"", b"{not json", b'{"names": [1, 2], "size": "x"}', b"[]"],
                         ids=["empty", "not json", "wrong fields", "a list"])
def test_corrupt_manifest_is_a_miss_and_is_rebuilt(cache, photos, decoded, make_cfg, garbage):
    load(make_cfg, photos)
    (path,) = manifest_files(cache)
    path.write_bytes(garbage)
    decoded.clear()
    assert load(make_cfg, photos).extras["file_check"]["checked"] == 8 and len(decoded) == 8
    assert len(json.loads(path.read_text())["names"]) == 8


def test_unwritable_cache_folder_warns_once_and_runs(tmp_path, photos, make_cfg, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("KERASOPT_CACHE_DIR", str(blocker))
    with caplog.at_level(logging.WARNING, logger="kerasopt.data"):
        src = load(make_cfg, photos)
    lines = [r.getMessage() for r in caplog.records if r.name == "kerasopt.data"]
    assert len(lines) == 1 and "file checks are not kept between runs" in lines[0] and str(blocker) in lines[0]
    assert src.num_examples == 8 and src.extras["file_check"]["checked"] == 8


def test_file_changed_after_a_manifest_check_is_named_when_read(cache, photos, make_cfg):
    load(make_cfg, photos)
    src = load(make_cfg, photos)
    assert src.extras["file_check"]["from_manifest"] == 8
    victim = photos / "cats" / "3.jpeg"
    victim.write_bytes(victim.read_bytes()[:40])
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        list(src.stream.make(np.arange(8), None)[0])
    assert str(victim) in str(e.value) and "changed after kerasopt checked it" in str(e.value)


def test_progress_bar_and_summary_line_on_the_chief_only(cache, photos, make_cfg, monkeypatch, capsys):
    monkeypatch.setattr(checkprogress, "DELAY_SECONDS", 0.0)
    load(make_cfg, photos)
    err = capsys.readouterr().err
    assert err.startswith("checked 8 image files in ") and err.endswith(" s (0 from the manifest)\n"), err
    (photos / "cats" / "0.png").write_bytes(encoded(5, "png", size=9))
    monkeypatch.setenv("HOROVOD_RANK", "1")
    load(make_cfg, photos)
    assert capsys.readouterr().err == ""


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    from rich.console import Console

    screen = io.StringIO()
    monkeypatch.setattr(checkprogress, "DELAY_SECONDS", 0.0)
    monkeypatch.setattr(checkprogress, "console", lambda: Console(file=screen, force_terminal=True, width=120))
    p = checkprogress.CheckProgress(300, "image file", quiet=False)
    p.advance(256)
    p.advance(44)
    summary = p.close(reused=700)
    drawn = screen.getvalue()
    assert "checking image files" in drawn and "300/300" in drawn and "files/s" in drawn and "ETA" in drawn
    assert capsys.readouterr().err.startswith("checked 1,000 image files in ")
    assert (summary["checked"], summary["from_manifest"]) == (300, 700)


# ----------------------------------------------------------------------------- TFRecord


IMAGES = {"image": {"dtype": "image", "shape": [8, 8, 3]}, "label": {"dtype": "int64"}}


@pytest.fixture
def scanned(monkeypatch) -> list[str]:
    """The TFRecord files read by the pass before training."""
    seen: list[str] = []
    real = sources_tfrecord._scan

    def spy(file, *args, **kwargs):
        seen.append(Path(file).name)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(sources_tfrecord, "_scan", spy)
    return seen


def shards(tmp_path: Path, bad_record: bool = False) -> str:
    for f in range(3):
        records = [example(image=encoded(10 * f + i), label=(f + i) % 3) for i in range(4)]
        if bad_record and f == 1:
            records[2] = example(image=encoded(12)[:30], label=0)
        age(Path(write_records(tmp_path / f"part-{f}.tfrecord", records)))
    return str(tmp_path / "part-*.tfrecord")


def test_tfrecord_second_load_reuses_the_scans(cache, tmp_path, scanned, make_cfg):
    cfg = make_cfg(source="tfrecord", path=shards(tmp_path, bad_record=True), features=IMAGES, on_bad_file="skip")
    first = load_source(cfg)
    assert scanned == ["part-0.tfrecord", "part-1.tfrecord", "part-2.tfrecord"]
    assert first.extras["file_check"]["checked"] == 3 and first.num_examples == 11
    assert first.extras["skipped_files"] == [f"{tmp_path / 'part-1.tfrecord'}, record 2"]
    scanned.clear()
    second = load_source(cfg)
    assert scanned == [] and second.extras["file_check"]["from_manifest"] == 3
    assert second.y.tolist() == first.y.tolist() and second.y.dtype == first.y.dtype
    assert second.extras["skipped_files"] == first.extras["skipped_files"] and second.stream.num_files == 3
    assert len(manifest_files(cache, "tfrecord")) == 1

    age(Path(write_records(tmp_path / "part-2.tfrecord", [example(image=encoded(50 + i), label=2) for i in range(5)])))
    third = load_source(cfg)
    assert scanned == ["part-2.tfrecord"] and third.extras["file_check"]["from_manifest"] == 2
    assert third.num_examples == 12 and third.y[-5:].tolist() == [2] * 5


def test_tfrecord_string_labels_and_token_ids_round_trip(cache, tmp_path, scanned, make_cfg):
    for f in range(2):
        age(Path(write_records(tmp_path / f"t-{f}.tfrecord", [
            example(ids=np.arange(4) + 3 * f + i, kind=[b"odd", b"even"][i % 2]) for i in range(5)])))
    features = {"ids": {"dtype": "int64", "shape": [4]}, "kind": {"dtype": "string"}}
    cfg = make_cfg(source="tfrecord", path=str(tmp_path / "t-*.tfrecord"), features=features, label_key="kind")
    first = load_source(cfg)
    scanned.clear()
    second = load_source(cfg)
    assert scanned == [] and second.class_names == first.class_names == ["even", "odd"]
    assert second.y.tolist() == first.y.tolist() and second.vocab_size == first.vocab_size == 11


def test_tfrecord_unreadable_file_is_remembered_and_spec_errors_never_are(cache, tmp_path, scanned, make_cfg):
    write_records(tmp_path / "a.tfrecord", [example(v=np.float32(i), label=i % 2) for i in range(6)])
    bad = Path(write_records(tmp_path / "b.tfrecord", [example(v=np.float32(i), label=i % 2) for i in range(6)]))
    bad.write_bytes(bad.read_bytes()[:-9])
    age(bad, tmp_path / "a.tfrecord")
    features = {"v": {"dtype": "float32"}, "label": {"dtype": "int64"}}
    cfg = make_cfg(source="tfrecord", path=str(tmp_path / "*.tfrecord"), features=features)
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as e:
            load_source(cfg)
        messages.append(str(e.value))
    assert messages[0] == messages[1] and f"cannot decode TFRecord file {bad}: truncated record" in messages[0]
    assert scanned == ["a.tfrecord", "b.tfrecord"]  # the second run read neither

    scanned.clear()
    wrong = make_cfg(source="tfrecord", path=str(tmp_path / "a.tfrecord"),
                     features={"v": {"dtype": "float32", "shape": [3]}, "label": {"dtype": "int64"}})
    for _ in range(2):
        with pytest.raises(ConfigError, match="does not match data.features.v"):
            load_source(wrong)
    assert scanned == ["a.tfrecord", "a.tfrecord"]
