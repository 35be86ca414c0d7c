"""The table cache: CSV and Parquet parsed once by pyarrow, reused while the file and settings are unchanged."""

import os

import numpy as np
import pytest

from kerasopt.data import build_datasets
from kerasopt.data import table_cache as tc
from kerasopt.data import table_parse as tp
from kerasopt.data.sources import load_source
from kerasopt.errors import ConfigError


def table_text(n: int, seed: int = 0) -> tuple[str, np.ndarray, list[str], np.ndarray]:
    """A CSV of ``n`` rows: two float columns, a category, an integer label; and what it holds."""
    rng = np.random.default_rng(seed)
    nums = rng.normal(size=(n, 2)).round(4)
    colors = [["red", "green", "blue", "teal"][i] for i in rng.integers(0, 4, n)]
    labels = rng.integers(0, 3, n)
    lines = ["a,color,b,label"] + [f"{x:.4f},{c},{z:.4f},{y}" for (x, z), c, y in zip(nums, colors, labels)]
    return "\n".join(lines) + "\n", nums, colors, labels


def test_parsed_columns_equal_the_file(tmp_path, make_cfg):
    text, nums, colors, labels = table_text(300)
    (tmp_path / "t.csv").write_text(text)
    src = load_source(make_cfg(source="csv", path=str(tmp_path / "t.csv"), label_column="label",
                               categorical_columns=["color"]))
    assert src.task == "classification" and src.y.tolist() == labels.tolist()
    train = np.arange(0, 300, 2)
    x, extras = src.encode(train)
    vocab = sorted(set(np.array(colors)[train]))
    assert extras["feature_names"] == ["a", *[f"color={v}" for v in vocab], "b"]
    np.testing.assert_array_equal(x[:, 0], nums[:, 0].astype(np.float32))
    np.testing.assert_array_equal(x[:, -1], nums[:, 1].astype(np.float32))
    onehot = (np.array(colors)[:, None] == np.array(vocab)[None, :]).astype(np.float32)
    np.testing.assert_array_equal(x[:, 1:-1], onehot)


def test_cache_is_reused_then_rebuilt_when_the_file_or_settings_change(tmp_path, make_cfg, monkeypatch):
    path = tmp_path / "t.csv"
    text, *_ = table_text(50)
    path.write_text(text)
    cfg = make_cfg(source="csv", path=str(path), label_column="label", categorical_columns=["color"])
    first = load_source(cfg)
    assert first.extras["table"].startswith("parsed 50 rows") and "no cache yet" in first.extras["table"]

    def no_parse(*a, **k):
        raise AssertionError("parsed again")

    with monkeypatch.context() as m:  # an unchanged file is memory-mapped, not parsed
        m.setattr(tp, "_write", no_parse)
        again = load_source(cfg)
    assert again.extras["table"].startswith("cache reused: 50 rows")
    np.testing.assert_array_equal(again.y, first.y)

    text, *_ = table_text(60, seed=1)
    path.write_text(text)
    changed = load_source(cfg)
    assert "parsed 60 rows" in changed.extras["table"] and "the file changed" in changed.extras["table"]

    other = load_source(make_cfg(source="csv", path=str(path), label_column="label", feature_columns=["a", "b"]))
    assert "the settings changed: features, categorical" in other.extras["table"]
    x, extras = other.encode(np.arange(60))
    assert extras["feature_names"] == ["a", "b"] and x.shape == (60, 2)


def test_an_incomplete_cache_is_rebuilt(tmp_path, make_cfg):
    path = tmp_path / "t.csv"
    path.write_text(table_text(20)[0])
    cfg = make_cfg(source="csv", path=str(path), label_column="label", categorical_columns=["color"])
    load_source(cfg)
    folder = load_source(cfg).extras["table"].rsplit(", ", 1)[1]  # "cache reused: 20 rows, FOLDER"
    (tc.Path(folder) / "labels.npy").unlink()
    assert "the cache was incomplete" in load_source(cfg).extras["table"]


def test_a_bad_cell_in_a_late_block_names_its_row_and_line(tmp_path, make_cfg, monkeypatch):
    monkeypatch.setattr(tp, "BLOCK_BYTES", 4096)  # ~150 rows a block: the bad cell is in block ~30
    text, *_ = table_text(5000)
    lines = text.splitlines()
    cells = lines[4321].split(",")
    cells[2] = "4.2.1"
    lines[4321] = ",".join(cells)
    lines.insert(100, "")  # a blank line: rows skip it, lines count it
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=str(tmp_path / "t.csv"), label_column="label",
                             categorical_columns=["color"]))
    assert e.value.key == "data.path"
    assert "t.csv, row 4321 (line 4323), column 'b': not a number" in str(e.value)
    assert str(e.value).endswith("Received: '4.2.1'")


def test_an_empty_numeric_cell_and_an_empty_label_are_named(tmp_path, make_cfg, monkeypatch):
    monkeypatch.setattr(tp, "BLOCK_BYTES", 2048)
    text, *_ = table_text(800)
    lines = text.splitlines()
    lines[700] = "," + lines[700].split(",", 1)[1]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=str(tmp_path / "e.csv"), label_column="label",
                             categorical_columns=["color"]))
    assert "e.csv, row 700 (line 701), column 'a': not a number" in str(e.value)
    assert str(e.value).endswith("Received: ''")
    lines = text.splitlines()
    lines[650] = lines[650].rsplit(",", 1)[0] + ","
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=str(tmp_path / "l.csv"), label_column="label",
                             categorical_columns=["color"]))
    assert e.value.key == "data.label_column" and "l.csv, line 651: label column 'label' is empty" in str(e.value)


def test_a_mistyped_number_among_numeric_labels_is_named(tmp_path, make_cfg, monkeypatch):
    monkeypatch.setattr(tp, "BLOCK_BYTES", 2048)
    rows = ["x,y"] + [f"{i},{i * 0.5}" for i in range(400)]
    rows[333] = "332,1.5x"
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="csv", path=str(tmp_path / "r.csv"), label_column="y"))
    assert "r.csv, row 333 (line 334), column 'y': not a number, although 399 of 400" in str(e.value)


def test_parquet_gives_the_same_batches_as_csv(tmp_path, make_cfg, collect):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    text, nums, colors, labels = table_text(400, seed=3)
    (tmp_path / "t.csv").write_text(text)
    pq.write_table(pa.table({"a": nums[:, 0], "color": colors, "b": nums[:, 1].astype(np.float32),
                             "label": labels.astype(np.int64)}), tmp_path / "t.parquet", row_group_size=64)
    common = dict(label_column="label", categorical_columns=["color"], normalize="standard", batch_size=32, seed=5)
    from_csv = build_datasets(make_cfg(source="csv", path=str(tmp_path / "t.csv"), **common))
    from_pq = build_datasets(make_cfg(source="parquet", path=str(tmp_path / "t.parquet"), **common))
    assert from_pq.spec.extras["categories"] == from_csv.spec.extras["categories"]
    assert from_pq.spec.num_train == from_csv.spec.num_train == 320
    for a, b in ((from_csv.train, from_pq.train), (from_csv.val, from_pq.val)):
        xa, ya = collect(a)
        xb, yb = collect(b)
        np.testing.assert_allclose(xa, xb, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(ya, yb)


def test_parquet_errors_name_the_column_or_row(tmp_path, make_cfg):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "kind": ["x", "y", "x"], "label": [0, 1, 0]}),
                   tmp_path / "s.parquet")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="parquet", path=str(tmp_path / "s.parquet"), label_column="label"))
    assert e.value.key == "data.feature_columns" and "column 'kind' holds string" in str(e.value)
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "label": [0, 1, 0]}), tmp_path / "n.parquet")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="parquet", path=str(tmp_path / "n.parquet"), label_column="label"))
    assert "n.parquet, row 2, column 'a': not a number" in str(e.value)
    (tmp_path / "bad.parquet").write_text("a,label\n1,0\n")
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="parquet", path=str(tmp_path / "bad.parquet"), label_column="label"))
    assert e.value.key == "data.path" and "bad.parquet is not a Parquet file" in str(e.value)


def test_an_unwritable_cache_folder_still_trains(tmp_path, make_cfg, monkeypatch):
    (tmp_path / "a-file").write_text("")  # a folder under a file cannot be made, even by root
    monkeypatch.setenv("KERASOPT_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    (tmp_path / "t.csv").write_text(table_text(30)[0])
    src = load_source(make_cfg(source="csv", path=str(tmp_path / "t.csv"), label_column="label",
                               categorical_columns=["color"]))
    assert "the cache folder is not writable" in src.extras["table"] and len(src.y) == 30


def test_two_processes_opening_a_new_table_parse_it_once(tmp_path):
    """The ranks of a Horovod job open the table together: one parses, the others wait and reuse it."""
    import subprocess
    import sys

    (tmp_path / "t.csv").write_text(table_text(20000)[0])
    code = ("import sys; from pathlib import Path; from kerasopt.data.table_cache import TableRequest, open_table; "
            "t = open_table(TableRequest(Path(sys.argv[1]), 'csv', 'label', None, ('color',))); "
            "print(t.status.split(':')[0].split(' ')[0], t.rows, float(t.numeric[:, 0].sum()))")
    env = {**os.environ, "KERASOPT_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "t.csv")], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    words = sorted(out.split()[0] for out, _ in outs)
    assert words == ["cache", "cache", "parsed"]
    assert len({tuple(out.split()[1:]) for out, _ in outs}) == 1  # the same rows and values in every process


def _rss_file_mb() -> float:
    """The file-backed part of this process's resident memory (pages of mapped files), in MiB."""
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no RssFile in /proc/self/status")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")
def test_mapped_reads_equal_numpy_and_leave_the_file_unmapped(tmp_path):
    """take/scan return what NumPy indexing returns, and the pages they read do not stay in this process's RSS."""
    rows, cols = 400_000, 40  # 64 MB: a random gather of 8,192 rows touches most of its pages
    data = np.random.default_rng(0).normal(size=(rows, cols)).astype(np.float32)
    data.tofile(tmp_path / "m.f32")
    m = tc.MappedMatrix(tmp_path / "m.f32", np.float32, rows, cols)
    idx = np.random.default_rng(1).integers(0, rows, 8192)  # unsorted, with repeats
    base = _rss_file_mb()
    np.testing.assert_array_equal(m.take(idx), data[idx])
    for start, block in m.scan(10, rows - 5, columns=[3, 0]):
        np.testing.assert_array_equal(block, data[start:start + len(block)][:, [3, 0]])
    bounded = _rss_file_mb() - base
    assert bounded < 12, f"{bounded:.1f} MiB of the file left mapped"
    np.testing.assert_array_equal(m[idx], data[idx])  # plain indexing leaves the touched pages mapped
    assert _rss_file_mb() - base > 40
    assert m.take(np.array([5])).tolist() == data[[5]].tolist() and m.take(np.zeros(0, int)).shape == (0, cols)
    empty = tc.MappedMatrix(tmp_path / "none", np.float32, 0, 3)
    assert empty.take(np.zeros(0, int)).shape == (0, 3) and list(empty.scan()) == []
