"""``data.cache``: the memory/disk/none decision, uint8 caching, the disk cache and its invalidation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from kerasopt._keras import tf
from kerasopt.config.data_schema import DataConfig
from kerasopt.data.cache import budget_bytes, plan_cache
from kerasopt.data.cache_store import SHUFFLE_BYTES, shuffle_size
from kerasopt.data.pipeline import build_datasets
from kerasopt.data.sources_files import decode_image
from kerasopt.errors import ConfigError

GB = 10**9


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASOPT_CACHE_DIR", str(tmp_path / "usercache"))


def _folder(root, per_class=12, size=16, classes=3, fmt="png", seed=0):
    """``root/c<k>/<i>.png``: class k is brighter in channel k (learnable), with noise."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 120, (size, size, 3)).astype(np.uint8)
            img[..., k % 3] += 120
            enc = tf.io.encode_png(img) if fmt == "png" else tf.io.encode_jpeg(img, quality=95)
            (root / f"c{k}" / f"{i}.{fmt}").write_bytes(enc.numpy())
    return root


def _first_epoch(bundle, steps=None):
    it = iter(bundle.train_from_epoch(0))
    batches = [next(it) for _ in range(steps or bundle.steps_per_epoch)]
    return np.concatenate([b[0].numpy() for b in batches]), np.concatenate([b[1].numpy() for b in batches])


def _val(bundle):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in bundle.val], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


# (cache, estimate, budget, streamed, can_disk) -> mode
@pytest.mark.parametrize("cache, estimate, streamed, can_disk, mode", [
    ("auto", 0.5 * GB, True, True, "memory"),     # fits the budget
    ("auto", 3 * GB, True, True, "disk"),         # too big, files to key a disk cache by
    ("auto", 3 * GB, True, False, "none"),        # too big, generated data: stream
    ("auto", 3 * GB, False, False, "none"),       # too big, arrays already in memory
    ("disk", 0.1 * GB, True, True, "disk"),       # asked for
    (False, 0.1 * GB, True, True, "none"),
    (True, 1.5 * GB, True, True, "memory"),       # true keeps its meaning when RAM allows
])
def test_plan_table(cache, estimate, streamed, can_disk, mode):
    d = DataConfig(name="digits", cache=cache)
    plan = plan_cache(d, int(estimate), streamed=streamed, can_disk=can_disk, available=20 * GB)
    assert plan.mode == mode
    assert plan.budget_bytes == 1 * GB  # auto: 5% of 20 GB
    assert plan.estimate_bytes == int(estimate)


def test_budget_forms():
    assert budget_bytes("auto", available=8 * GB) == (int(0.4 * GB), "auto: 5% of 8.00 GB available RAM")
    assert budget_bytes(0.25, available=8 * GB)[0] == 2 * GB
    assert budget_bytes("512MiB", available=1)[0] == 512 * 2**20
    d = DataConfig(name="digits", cache_budget="2GB")
    assert plan_cache(d, int(1.9 * GB), streamed=True, can_disk=True).mode == "memory"
    assert plan_cache(d, int(2.1 * GB), streamed=True, can_disk=True).mode == "disk"


def test_explicit_choices_that_cannot_be_met_name_the_key():
    with pytest.raises(ConfigError, match=r"data\.cache: .*more than data\.cache_budget \(1\.00 GB\)"):
        plan_cache(DataConfig(name="digits", cache=True, cache_budget="1GB"), 2 * GB, streamed=True, can_disk=True)
    with pytest.raises(ConfigError, match=r"more than 90% of the RAM available"):
        plan_cache(DataConfig(name="digits", cache=True), 30 * GB, streamed=True, can_disk=True, available=20 * GB)
    with pytest.raises(ConfigError, match="already in memory"):
        plan_cache(DataConfig(name="digits", cache="disk"), 1000, streamed=False, can_disk=False)


def test_shuffle_buffer_is_capped_in_bytes():
    assert shuffle_size(10_000, 500, 100) == 500
    assert shuffle_size(10_000, 50_000, 224 * 224 * 3) == SHUFFLE_BYTES // (224 * 224 * 3)
    assert shuffle_size(0, 500, 100) == 0


def test_decode_keeps_uint8_exact_at_size_and_rounds_a_resize():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    png = tf.io.encode_png(img)
    same = decode_image(png, [20, 24], 3)
    assert same.dtype == tf.uint8 and np.array_equal(same.numpy(), img)
    resized = decode_image(png, [10, 12], 3).numpy().astype(np.float32)
    reference = tf.image.resize(tf.io.decode_image(png, channels=3), [10, 12], method="bilinear").numpy()
    assert np.abs(resized - reference).max() <= 0.5 + 1e-4


def test_large_jpeg_is_decoded_at_a_reduced_scale():
    rng = np.random.default_rng(2)
    img = np.clip(rng.normal(128, 40, (512, 384, 3)), 0, 255).astype(np.uint8)
    jpeg = tf.io.encode_jpeg(img, quality=90)
    out = decode_image(jpeg, [128, 96], 3)
    # 512x384 / 4 = 128x96 exactly: libjpeg's quarter-scale decode, no resize after it.
    assert np.array_equal(out.numpy(), tf.io.decode_jpeg(jpeg, channels=3, ratio=4).numpy())
    # Not a power-of-two fit: ratio 2 (256x192 >= 200x150), then a bilinear resize.
    assert decode_image(jpeg, [200, 150], 3).shape == (200, 150, 3)


@pytest.mark.parametrize("cache", [True, "disk", False])
def test_uint8_cache_gives_the_same_batches_as_no_cache(tmp_path, make_cfg, cache):
    root = _folder(tmp_path / "imgs")
    common = dict(source="image_dir", path=str(root), image_size=[16, 16], batch_size=8, shuffle_buffer=50)
    reference = build_datasets(make_cfg(cache=False, **common))
    bundle = build_datasets(make_cfg(cache=cache, **common))
    x, y = _first_epoch(bundle)
    rx, ry = _first_epoch(reference)
    assert x.dtype == np.float32 and x.max() > 100  # raw 0..255 floats, as before
    assert np.array_equal(x, rx) and np.array_equal(y, ry)
    assert np.array_equal(_val(bundle)[0], _val(reference)[0])
    # Again from the cache (disk: a second pipeline reads the finished cache file).
    again = build_datasets(make_cfg(cache=cache, **common))
    assert np.array_equal(_first_epoch(again)[0], rx)
    if cache == "disk":
        assert again.spec.extras["cache"]["reason"].endswith("train: reused; val: reused")


def test_a_permuted_file_order_mixes_classes_under_a_small_shuffle_buffer(tmp_path, make_cfg):
    root = _folder(tmp_path / "imgs", per_class=20)
    bundle = build_datasets(make_cfg(source="image_dir", path=str(root), batch_size=8, shuffle_buffer=4,
                                     validation_split=0.0))
    _, y = _first_epoch(bundle, steps=1)
    assert len(set(y.tolist())) > 1  # class-sorted files and a 4-element buffer would give one class


def test_disk_cache_rebuilds_when_a_file_changes(tmp_path, make_cfg):
    root = _folder(tmp_path / "imgs")
    cfg = make_cfg(source="image_dir", path=str(root), batch_size=8, cache="disk", shuffle_buffer=0)
    first = build_datasets(cfg)
    assert "first run on these files" in first.spec.extras["cache"]["reason"]
    x1, _ = _first_epoch(first)
    _val(first)
    assert "reused" in build_datasets(cfg).spec.extras["cache"]["reason"]
    # Replace one training file with a black image (new content, size and mtime).
    target = sorted((root / "c0").iterdir())[0]
    target.write_bytes(tf.io.encode_png(np.zeros((16, 16, 3), np.uint8)).numpy())
    os.utime(target, ns=(1, 1))
    changed = build_datasets(cfg)
    reason = changed.spec.extras["cache"]["reason"]
    assert "rebuilding: the files changed" in reason and "reused" not in reason
    x2, _ = _first_epoch(changed)
    assert not np.array_equal(x1, x2)
    assert (x2.reshape(len(x2), -1).max(1) == 0).sum() + (_val(changed)[0].reshape(-1, 768).max(1) == 0).sum() == 1


def test_a_partial_cache_from_a_killed_run_is_rewritten(tmp_path, make_cfg):
    root = _folder(tmp_path / "imgs")
    cfg = make_cfg(source="image_dir", path=str(root), batch_size=8, cache="disk", shuffle_buffer=0)
    bundle = build_datasets(cfg)
    folder = next(p for p in (tmp_path / "usercache" / "data").iterdir() if p.name.endswith("-train"))
    cache = next(p for p in folder.iterdir() if p.is_dir())
    # What a SIGKILL while the cache is written leaves: no index, a lockfile and part of the data, a
    # writer that is gone (the first build wrote it whole, before training: take the index away).
    (cache / "cache.index").unlink()
    (cache / "cache_0.lockfile").write_text("x")
    (cache / "writer.json").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename}))
    del bundle
    again = build_datasets(cfg)
    assert "stopped before its first pass" in again.spec.extras["cache"]["reason"]
    assert _first_epoch(again)[0].shape[0] == again.steps_per_epoch * 8 - (-again.spec.num_train % 8)


def test_unwritable_cache_folder_streams_under_auto_and_stops_under_disk(tmp_path, make_cfg, monkeypatch):
    if os.geteuid() == 0:
        blocker = tmp_path / "file-not-folder"  # root ignores permissions: a file where a folder must be
        blocker.write_text("")
        monkeypatch.setenv("KERASOPT_CACHE_DIR", str(blocker))
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        monkeypatch.setenv("KERASOPT_CACHE_DIR", str(ro))
    root = _folder(tmp_path / "imgs")
    common = dict(source="image_dir", path=str(root), batch_size=8, cache_budget=1000)
    bundle = build_datasets(make_cfg(**common))
    plan = bundle.spec.extras["cache"]
    assert plan["mode"] == "none" and "not writable" in plan["reason"] and "KERASOPT_CACHE_DIR" in plan["reason"]
    with pytest.raises(ConfigError, match="KERASOPT_CACHE_DIR"):
        build_datasets(make_cfg(cache="disk", **common))


def test_in_memory_arrays_need_no_cache(make_cfg):
    bundle = build_datasets(make_cfg(source="sklearn", name="iris"))
    assert bundle.spec.extras["cache"]["mode"] == "none"
    assert "already in memory" in bundle.spec.extras["cache"]["reason"]
    resized = build_datasets(make_cfg(source="sklearn", name="digits", reshape=[8, 8, 1], resize=[16, 16]))
    plan = resized.spec.extras["cache"]
    assert plan["mode"] == "memory"
    assert plan["estimate_bytes"] == 1797 * (16 * 16 * 4 + 4)  # float32 pixels and an int32 label each


def _fit(cfg: dict, run_dir):
    import kerasopt

    kerasopt.fit(cfg, run_dir=str(run_dir), overwrite=True, print_fn=lambda m: None)
    return json.loads((run_dir / "metrics.json").read_text())["data"]


def _tiny(data: dict) -> dict:
    return {"name": "cache_fit", "data": data, "model": {"type": "mlp", "hidden_units": [8]},
            "train": {"epochs": 2}, "callbacks": {"ema": {"enabled": False}}, "report": False}


def test_fit_with_a_budget_that_forces_streaming_records_the_decision(tmp_path):
    data = {"source": "synthetic", "num_examples": 256, "shape": [8], "num_classes": 3, "batch_size": 32,
            "cache_budget": "1KB"}
    record = _fit(_tiny(data), tmp_path / "run")
    assert record["cache"]["mode"] == "none"
    assert record["cache"]["estimate_bytes"] == 256 * (8 * 4 + 4)
    assert record["cache"]["budget_bytes"] == 1000 and "too big for memory" in record["cache"]["reason"]
    assert record["shuffle"] == {"buffer": 204, "of": 204, "configured": 10000}


def test_fit_over_budget_on_an_image_folder_uses_then_reuses_the_disk_cache(tmp_path):
    root = _folder(tmp_path / "imgs", per_class=10)
    data = {"source": "image_dir", "path": str(root), "batch_size": 8, "cache_budget": "1KB"}
    first = _fit(_tiny(data), tmp_path / "run1")
    assert first["cache"]["mode"] == "disk" and "first run on these files" in first["cache"]["reason"]
    second = _fit(_tiny(data), tmp_path / "run2")
    assert second["cache"]["reason"].endswith("train: reused; val: reused")
