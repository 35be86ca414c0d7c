"""Tables read from the memory-mapped cache: the same examples and statistics as in memory, index shuffles."""

import numpy as np
import pytest

from kerasopt.data import build_datasets
from kerasopt.data.cache import data_summary
from kerasopt.errors import ConfigError


def write_table(path, n=3000, seed=0, nan_at=None):
    rng = np.random.default_rng(seed)
    colors = np.array(["red", "green", "blue", "teal"])[rng.integers(0, 4, n)]
    x = rng.normal(loc=[3.0, -1.0], scale=[2.0, 0.5], size=(n, 2)).round(4)
    y = rng.integers(0, 3, n)
    rows = [f"{a},{c},{b},{t}" for (a, b), c, t in zip(x, colors, y)]
    if nan_at is not None:
        rows[nan_at] = "nan" + rows[nan_at][rows[nan_at].index(","):]
    path.write_text("a,color,b,label\n" + "\n".join(rows) + "\n")
    return str(path)


def bundles(make_cfg, path, **kw):
    common = dict(source="csv", path=path, label_column="label", categorical_columns=["color"],
                  normalize="standard", batch_size=64, seed=3, **kw)
    return build_datasets(make_cfg(cache=True, **common)), build_datasets(make_cfg(cache=False, **common))


def test_streamed_and_in_memory_give_the_same_examples_and_statistics(tmp_path, make_cfg, collect):
    mem, st = bundles(make_cfg, write_table(tmp_path / "t.csv"))
    assert "features in memory" in mem.spec.extras["table"]
    assert "read from the memory-mapped cache every epoch (data.cache: false)" in st.spec.extras["table"]
    assert st.spec.extras["shuffle"]["by_index"] and st.spec.extras["shuffle"]["buffer"] == 0
    assert mem.spec.input_shape == st.spec.input_shape == (6,)
    assert mem.spec.extras["categories"] == st.spec.extras["categories"]
    # Statistics: float64 sums over the memory-mapped training rows = the tf.data pass over the encoded rows.
    for key in ("mean", "std"):
        np.testing.assert_allclose(st.spec.extras["normalize"][key], mem.spec.extras["normalize"][key],
                                   rtol=1e-6, atol=1e-6)
    xm, ym = collect(mem.val)
    xs, ys = collect(st.val)
    np.testing.assert_allclose(xs, xm, atol=1e-6)
    np.testing.assert_array_equal(ys, ym)
    # Training: every training row once per epoch, normalized alike (only the order differs).
    (tm, _), (ts, _) = collect(mem.train), collect(st.train)
    assert ts.shape == tm.shape == (2400, 6)
    np.testing.assert_allclose(np.sort(ts, axis=0), np.sort(tm, axis=0), atol=1e-6)


def test_each_epoch_has_its_own_order_and_a_resume_replays_it(tmp_path, make_cfg, collect):
    _, st = bundles(make_cfg, write_table(tmp_path / "t.csv"))
    steps = st.steps_per_epoch
    straight = collect(st.train_from_epoch(0).take(3 * steps))[0]
    epochs = [straight[i * 2400:(i + 1) * 2400] for i in range(3)]
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    np.testing.assert_allclose(np.sort(epochs[0], axis=0), np.sort(epochs[2], axis=0), atol=1e-6)
    # What the loop does on --resume at epoch 1, batch 7: start the stream at epoch 1 and skip 7 batches.
    resumed = collect(st.train_from_epoch(1).skip(7).take(steps - 7))[0]
    np.testing.assert_array_equal(resumed, epochs[1][7 * 64:])
    # The same seed gives the same order in a new pipeline (a new process after a kill).
    _, again = bundles(make_cfg, str(tmp_path / "t.csv"))
    np.testing.assert_array_equal(collect(again.train_from_epoch(2).take(steps))[0], epochs[2])


def test_auto_streams_only_what_exceeds_the_budget(tmp_path, make_cfg):
    path = write_table(tmp_path / "t.csv", n=500)
    common = dict(source="csv", path=path, label_column="label", categorical_columns=["color"], seed=1)
    small = build_datasets(make_cfg(cache_budget="1GB", **common))
    assert "features in memory (12.0 KB encoded, ~36.0 KB while building, budget 1.00 GB" in small.spec.extras["table"]
    # 12 KB encoded fits 20 KB, but building in memory holds it three times over: streamed
    big = build_datasets(make_cfg(cache_budget="20KB", **common))
    assert "~36.0 KB in memory while building: more than the budget 20.0 KB" in big.spec.extras["table"]
    assert big.spec.extras["shuffle"]["by_index"]
    line = data_summary(big.spec.extras)
    assert "the 400 training rows shuffled by index" in line and "cache: none" not in line, line


def test_a_nan_cell_is_named_when_streamed_too(tmp_path, make_cfg):
    path = write_table(tmp_path / "t.csv", n=400, nan_at=321)
    for cache in (True, False):
        with pytest.raises(ConfigError) as e:
            build_datasets(make_cfg(source="csv", path=path, label_column="label", categorical_columns=["color"],
                                    cache=cache))
        assert e.value.key == "data" and "has 1 NaN or Inf feature value(s), the first in example 321" in str(e.value)


def test_statistics_are_kept_beside_the_cache_and_keyed_by_the_split(tmp_path, make_cfg, monkeypatch):
    from kerasopt.data import table_stream

    path = write_table(tmp_path / "t.csv", n=600)
    common = dict(source="csv", path=path, label_column="label", categorical_columns=["color"],
                  normalize="standard", cache=False)
    first = build_datasets(make_cfg(seed=3, **common)).spec.extras["normalize"]
    calls = []
    real_update = table_stream.RunningStats.update
    monkeypatch.setattr(table_stream.RunningStats, "update",
                        lambda self, b: calls.append(len(b)) or real_update(self, b))
    again = build_datasets(make_cfg(seed=3, **common)).spec.extras["normalize"]
    assert calls == [] and again == first  # the same training rows: read from stats/<key>.npz, not the rows
    other = build_datasets(make_cfg(seed=4, **common)).spec.extras["normalize"]
    assert sum(calls) == 480 and other["mean"] != first["mean"]  # another split: its 480 rows are read


def test_workers_of_a_sharded_job_read_their_own_rows_in_a_new_order_each_pass(tmp_path, make_cfg):
    """Horovod: each worker streams its shard of the training rows, reshuffled by index every pass."""
    path = write_table(tmp_path / "t.csv", n=500)
    cfg = make_cfg(source="csv", path=path, label_column="label", categorical_columns=["color"], cache=False,
                   batch_size=40, seed=2)
    passes = []
    for rank in (0, 1):
        b = build_datasets(cfg, shard=(rank, 2))
        assert b.spec.extras["shuffle"]["by_index"] and b.spec.extras["shuffle"]["buffer"] == 0
        xs = np.concatenate([x.numpy() for x, _ in b.train.take(20)])  # 20 batches of 20: two passes of 200
        passes.append((xs[:200], xs[200:]))
    rows = lambda a: {tuple(r) for r in np.round(a, 4)}  # noqa: E731
    for first, second in passes:
        assert len(rows(first)) == 200 and rows(first) == rows(second)  # one pass = the worker's 200 rows
        assert not np.array_equal(first, second)  # in another order
    assert not rows(passes[0][0]) & rows(passes[1][0])  # the workers' rows do not overlap
