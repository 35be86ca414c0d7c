"""Sparsity, file-size and latency measurements, checked against hand-computed values."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from kerasopt._keras import keras
from kerasopt.compress.measure import file_sizes, latency, layer_sparsity, totals
from kerasopt.compress.pipeline import agreement, score


def test_layer_sparsity_counts_kernel_zeros():
    inp = keras.Input((4,))
    out = keras.layers.Dense(2, name="d")(inp)
    model = keras.Model(inp, out)
    kernel = np.array([[0, 1], [0, 0], [2, 0], [0, 3]], np.float32)  # 5 of 8 zero
    model.get_layer("d").set_weights([kernel, np.array([0.5, 0.0], np.float32)])
    (row,) = layer_sparsity(model)
    assert row == {"layer": "d", "type": "Dense", "params": 10, "nonzero": 4, "kernel_params": 8, "sparsity": 0.625}
    # 10 weights, 4 non-zero (3 kernel + 1 bias): 60% zero overall, 62.5% of the kernel
    assert totals([row]) == {"params": 10, "nonzero": 4, "sparsity": 0.6, "kernel_sparsity": 0.625}


def test_file_sizes_of_file_and_folder(tmp_path):
    data = b"\0" * 10_000 + bytes(range(256)) * 4
    f = tmp_path / "w.bin"
    f.write_bytes(data)
    s = file_sizes(f)
    assert s["raw_bytes"] == len(data)
    assert s["gzip_bytes"] == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert s["gzip_bytes"] < 0.2 * len(data)  # the zeros compress away
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a").write_bytes(data)
    (d / "b").write_bytes(b"xyz")
    assert file_sizes(d)["raw_bytes"] == len(data) + 3


def test_latency_excludes_warmup_on_a_fake_clock():
    # warm-up calls take 1 s each, measured calls 2, 4, 6 ms: the median is 4 ms and warm-up never counts
    durations = iter([1.0, 1.0] + [0.002, 0.004, 0.006])
    now = [0.0]

    def fn():
        now[0] += next(durations)

    stats = latency(fn, warmup=2, repeats=3, clock=lambda: now[0])
    assert stats["median_ms"] == pytest.approx(4.0)
    assert stats["p10_ms"] == pytest.approx(2.4)
    assert stats["p90_ms"] == pytest.approx(5.6)


def test_score_and_agreement_by_head_kind():
    assert score(np.array([[0.9], [0.2], [0.6]]), np.array([1, 0, 0]), "binary") == ("accuracy", pytest.approx(2 / 3))
    assert score(np.array([[1.0], [3.0]]), np.array([2.0, 2.0]), "regression") == ("mae", 1.0)
    a = agreement(np.array([[0.6, 0.4], [0.1, 0.9]]), np.array([[0.4, 0.6], [0.1, 0.9]]), "multiclass")
    assert a == {"max_abs_diff": 0.2, "argmax_agreement": 0.5}
