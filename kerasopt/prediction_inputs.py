"""What ``kerasopt predict`` reads: image files, CSV or Parquet rows, NPZ arrays and TFRecords, in chunks.

:func:`open_input` picks the reader from ``INPUT`` (a folder or glob of images, a ``.csv``, a
``.parquet``, a ``.npz``, a ``.tfrecord`` file or a glob of them).
Each reader yields :class:`Chunk` objects of raw examples (decoded images, encoded table rows, array
rows), so an input bigger than memory is fine: images go through a ``tf.data`` pipeline, a CSV is
parsed a block at a time by pyarrow, and an NPZ array is read a block of rows at a time from its
zip member. The model-side steps (cast, reshape, resize, normalize) are in :mod:`kerasopt.prediction`.
"""

from __future__ import annotations

import csv
import glob
import logging
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerasopt.errors import ConfigError
from kerasopt.registry import suggest

log = logging.getLogger("kerasopt.predict")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")
CSV_BLOCK_BYTES = 1 << 20  # text per parsed CSV block: the memory a chunk takes, not a limit on the file
NPZ_CHUNK_BYTES = 16 << 20  # array bytes read per NPZ chunk


@dataclass
class Chunk:
    """Raw examples ``x`` (NumPy or a ``tf.Tensor``), their ``ids`` and the carried-through ``extra`` columns."""

    ids: list
    x: Any
    extra: dict[str, list] = field(default_factory=dict)


def open_input(inputs: str | Path, record: dict[str, Any], batch_size: int, on_bad_file: str):
    """The reader of ``inputs`` for a run described by ``record`` (``preprocess.json``).

    Example:
        >>> open_input("missing.csv", {"kind": "table"}, 32, "error")
        Traceback (most recent call last):
        ...
        kerasopt.errors.ConfigError: INPUT not found: missing.csv
    """
    text = str(inputs)
    path = Path(text)
    if not path.exists() and not glob.has_magic(text):
        raise ConfigError(f"INPUT not found: {text}")
    if any(marker in path.name.lower() for marker in TFRECORD_SUFFIXES):
        if not record.get("tfrecord"):
            raise ConfigError(f"{text}: TFRecords need the run's data.features, and this run was trained on "
                              f"{record['source']} data (or by a kerasopt without TFRecord predict: fit it again)")
        return TfRecordRows(text, record["tfrecord"], record.get("image"), batch_size, on_bad_file)
    if path.is_dir() or glob.has_magic(text) or path.suffix.lower() in IMAGE_SUFFIXES:
        if record.get("image") is None:
            raise ConfigError(f"{text}: the run was trained on {record['source']} data, not on image files; "
                              "give a CSV or an NPZ file of its features")
        files, ids = image_files(text)
        return ImageFiles(files, ids, record["image"]["size"], record["image"]["channels"], batch_size, on_bad_file)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = record.get("table")
        if not table:
            raise ConfigError(f"{text}: the run's features have no column names ({record['source']} data); "
                              "give an NPZ file with the examples under 'x'")
        return CsvRows(path, table["columns"], table["categorical"])
    if suffix in (".parquet", ".pq"):
        table = record.get("table")
        if not table:
            raise ConfigError(f"{text}: the run's features have no column names ({record['source']} data); "
                              "give an NPZ file with the examples under 'x'")
        return ParquetRows(path, table["columns"], table["categorical"])
    if suffix == ".npz":
        table = record.get("table") or {}
        if table.get("categorical"):
            raise ConfigError(f"{text}: the run one-hot encodes {', '.join(table['categorical'])}; give its rows "
                              "as a CSV with the columns by name")
        return NpzRows(path, batch_size)
    raise ConfigError(f"cannot tell what {text} holds: INPUT is a folder or glob of images "
                      f"({', '.join(IMAGE_SUFFIXES)}), a .csv, a .parquet or a .npz file")


def image_files(pattern: str) -> tuple[list[str], list[str]]:
    """``(paths, ids)`` of the images in a folder (recursive), a glob or one file; ids are relative paths.

    Example:
        >>> image_files("no/such/*.png")
        Traceback (most recent call last):
        ...
        kerasopt.errors.ConfigError: no image file (.jpg, .jpeg, .png, .bmp, .gif) matches no/such/*.png
    """
    root = Path(pattern)
    if root.is_dir():
        found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                 and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    elif glob.has_magic(pattern):
        found = [Path(p) for p in glob.glob(pattern, recursive=True)
                 if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES]
        # ids relative to the pattern's fixed part: "photos/*/x*.png" -> "cat/x1.png"
        parts = Path(pattern).parts
        depth = next(i for i, part in enumerate(parts) if glob.has_magic(part))
        root = Path(*parts[:depth]) if depth else Path(".")
    else:
        found, root = [root], root.parent
    if not found:
        raise ConfigError(f"no image file ({', '.join(IMAGE_SUFFIXES)}) matches {pattern}")
    found.sort()
    return [str(p) for p in found], [p.relative_to(root).as_posix() for p in found]


def by_elimination(batches, total: int, bad) -> Iterator[tuple[list[int], Any]]:
    """``(indices, x)`` per batch of ``(index, x)`` elements from a dataset whose failing elements
    ``ignore_errors`` dropped; ``bad(k)`` is called for each dropped index, in order.

    Example:
        >>> seen = []
        >>> [kept for kept, _ in by_elimination([(np.array([0, 2]), "x"), (np.array([3]), "y")], 5, seen.append)]
        [[0, 2], [3]]
        >>> seen
        [1, 4]
    """
    k = 0
    for index, x in batches:
        kept = []
        for i in np.asarray(index):
            while k < i:
                bad(k)
                k += 1
            kept.append(k)
            k += 1
        yield kept, x
    for j in range(k, total):
        bad(j)


class ImageFiles:
    """Decoded uint8 images at the run's size, a batch at a time; files that do not decode are found
    by elimination (``ignore_errors`` drops exactly those), then skipped or reported by ``on_bad_file``."""

    what = "image"

    def __init__(self, files: list[str], ids: list[str], size: list[int], channels: int, batch_size: int,
                 on_bad_file: str) -> None:
        self.files, self.ids, self.size, self.channels = files, ids, list(size), int(channels)
        self.batch_size, self.on_bad_file = batch_size, on_bad_file
        self.total = len(files)
        self.columns: list[str] = []
        self.skipped: list[tuple[str, str]] = []

    def _bad(self, k: int) -> None:
        from kerasopt.data.filecheck import file_reason

        reason = file_reason(self.files[k], self.channels)
        if self.on_bad_file == "error":
            raise ConfigError(f"cannot decode image file {self.files[k]}: {reason}. Fix or remove it, or pass "
                              "--on-bad-file skip to leave it out")
        log.warning(f"skipped image file {self.files[k]}: {reason}")
        self.skipped.append((self.ids[k], reason))

    def __iter__(self) -> Iterator[Chunk]:
        from kerasopt._keras import tf
        from kerasopt.data.sources_files import decode_image

        size, channels = self.size, self.channels

        def load(k, path: tf.Tensor):
            return k, decode_image(tf.io.read_file(path), size, channels)

        files = tf.data.Dataset.from_tensor_slices(self.files)
        ds = tf.data.Dataset.zip((tf.data.Dataset.range(self.total), files)).map(
            load, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.ignore_errors().batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        for kept, images in by_elimination(ds, self.total, self._bad):
            yield Chunk([self.ids[k] for k in kept], images)


class TfRecordRows:
    """``tf.train.Example`` records parsed with the run's input features (the label may be absent).

    Ids are ``file:record``. An image that does not decode is found by elimination, as for files.
    """

    what = "record"

    def __init__(self, pattern: str, spec: dict[str, Any], image: dict[str, Any] | None, batch_size: int,
                 on_bad_file: str) -> None:
        from kerasopt._keras import tf

        self.files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not self.files:
            raise ConfigError(f"no TFRecord files match {pattern}")
        self.inputs = [n for n in spec["features"] if n != spec["label_key"]]
        self.features, self.image = spec["features"], image
        self.batch_size, self.on_bad_file = batch_size, on_bad_file
        self.columns: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        try:
            self.counts = [sum(1 for _ in tf.data.TFRecordDataset(f)) for f in self.files]
        except tf.errors.OpError as e:
            raise ConfigError(f"cannot read TFRecords {pattern}: {e.message.splitlines()[0]}") from None
        self.total = int(sum(self.counts))
        self.ids = [f"{f}:{i}" for f, n in zip(self.files, self.counts) for i in range(n)]

    def _parse_spec(self):
        from kerasopt._keras import tf

        out = {}
        for name in self.inputs:
            f = self.features[name]
            out[name] = (tf.io.FixedLenFeature([], tf.string) if f["dtype"] == "image" else
                         tf.io.FixedLenFeature(f["shape"], tf.float32 if f["dtype"] == "float32" else tf.int64))
        return out

    def _bad(self, k: int) -> None:
        reason = "does not parse with the run's data.features, or its image does not decode"
        if self.on_bad_file == "error":
            raise ConfigError(f"cannot use TFRecord {self.ids[k]}: {reason}. Fix or remove it, or pass "
                              "--on-bad-file skip to leave it out")
        log.warning(f"skipped TFRecord {self.ids[k]}: {reason}")
        self.skipped.append((self.ids[k], reason))

    def __iter__(self) -> Iterator[Chunk]:
        from kerasopt._keras import tf
        from kerasopt.data.sources_files import decode_image

        spec, inputs, image = self._parse_spec(), self.inputs, self.image
        tokens = len(inputs) == 1 and self.features[inputs[0]]["dtype"] == "int64"

        def parse(k, serialized):
            ex = tf.io.parse_single_example(serialized, spec)
            if image is not None:
                return k, decode_image(ex[inputs[0]], image["size"], image["channels"])
            if tokens:
                return k, tf.cast(ex[inputs[0]], tf.int32)
            return k, tf.concat([tf.reshape(tf.cast(ex[n], tf.float32), [-1]) for n in inputs], 0)

        records = tf.data.TFRecordDataset(self.files)
        ds = tf.data.Dataset.zip((tf.data.Dataset.range(self.total), records)).map(
            parse, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.ignore_errors().batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        for kept, x in by_elimination(ds, self.total, self._bad):
            yield Chunk([self.ids[k] for k in kept], x)


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
            header = [h.strip() for h in next(csv.reader(f), [])]
    except (UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{path}: cannot read the header row: {e}") from None
    if not header:
        raise ConfigError(f"{path} is empty; expected a header row of column names")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ConfigError(f"{path} repeats column name(s): {', '.join(dupes)}")
    return header


def _count_lines(path: Path) -> int:
    """Data rows, counted as newlines (a progress total: a quoted newline makes it an overestimate)."""
    n, last = 0, b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 24):
            n, last = n + block.count(b"\n"), block[-1:]
    return max(0, n + (last != b"\n") - 1)


class CsvRows:
    """The rows of a CSV encoded as training encoded them: ``columns`` in order, numbers as float32, each
    ``categorical`` column one-hot over its vocabulary; the file's other columns are carried through."""

    what = "row"

    def __init__(self, path: Path, columns: list[str], categorical: dict[str, list[str]]) -> None:
        self._setup(path, _csv_header(path), columns, categorical)
        self.total = _count_lines(path)

    def _setup(self, path: Path, header: list[str], columns: list[str], categorical: dict[str, list[str]]) -> None:
        for name in columns:
            if name not in header:
                raise ConfigError(f"{path} has no column '{name}', one of the run's feature columns "
                                  f"({', '.join(columns)}). Columns in the file: {', '.join(header)}."
                                  f"{suggest(name, header)}")
        self.path, self.header, self.features, self.categorical = path, header, list(columns), categorical
        self.columns = [h for h in header if h not in columns]  # carried through as text
        self.width = sum(len(categorical[c]) if c in categorical else 1 for c in columns)
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[Chunk]:
        import pyarrow as pa
        from pyarrow import csv as pcsv

        numeric = [c for c in self.features if c not in self.categorical]
        types = {**{c: pa.float32() for c in numeric}, **{c: pa.string() for c in self.header if c not in numeric}}
        read = pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES, column_names=self.header, skip_rows=1)
        convert = pcsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=False,
                                      quoted_strings_can_be_null=False)
        start = 0
        try:
            reader = pcsv.open_csv(self.path, read_options=read, convert_options=convert)
            for batch in reader:
                if batch.num_rows:
                    x = self._encode(batch, start)
                    extra = {c: batch.column(c).to_pylist() for c in self.columns}
                    yield Chunk(list(range(start, start + batch.num_rows)), x, extra)
                    start += batch.num_rows
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            raise ConfigError(f"{self.path}: cannot parse the rows after row {start}: "
                              f"{str(e).strip().splitlines()[0]}") from None

    def _encode(self, batch, start: int) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        out = np.zeros((batch.num_rows, self.width), np.float32)
        col = 0
        for name in self.features:
            values = batch.column(name)
            if name in self.categorical:
                vocab = self.categorical[name]
                # the same cleaning as training's parse: surrounding spaces trimmed, a missing cell is ""
                clean = pc.utf8_trim_whitespace(values.fill_null(""))
                where = pc.index_in(clean, value_set=pa.array(vocab, pa.string())).fill_null(-1)
                where = where.to_numpy(zero_copy_only=False).astype(np.int64)
                rows = np.flatnonzero(where >= 0)  # an unseen value stays all zeros, as in training
                out[rows, col + where[rows]] = 1.0
                col += len(vocab)
                continue
            x = values.to_numpy(zero_copy_only=False).astype(np.float32)
            bad = ~np.isfinite(x)
            if bad.any():
                row = start + int(np.flatnonzero(bad)[0])
                cell = "" if values.is_null()[row - start].as_py() else str(x[row - start])
                raise ConfigError(f"{self.path}, id {row}, column '{name}': the run's numeric feature needs a "
                                  f"finite number. Received: {cell!r}")
            out[:, col] = x
            col += 1
        return out


class ParquetRows(CsvRows):
    """The rows of a Parquet file, encoded as :class:`CsvRows` encodes a CSV's (columns matched by name)."""

    def __init__(self, path: Path, columns: list[str], categorical: dict[str, list[str]]) -> None:
        from kerasopt.data.table_parse import parquet_file

        self.file = parquet_file(path)
        self._setup(path, list(self.file.schema_arrow.names), columns, categorical)
        self.total = int(self.file.metadata.num_rows)

    def __iter__(self) -> Iterator[Chunk]:
        import pyarrow as pa

        start = 0
        for batch in self.file.iter_batches(batch_size=65536):
            if not batch.num_rows:
                continue
            for name in self.categorical:  # dictionary or other string-like columns, as text
                i = batch.schema.get_field_index(name)
                if not pa.types.is_string(batch.schema.field(i).type):
                    batch = batch.set_column(i, name, batch.column(i).cast(pa.string()))
            x = self._encode(batch, start)
            extra = {c: [None if v is None else str(v) for v in batch.column(c).to_pylist()] for c in self.columns}
            yield Chunk(list(range(start, start + batch.num_rows)), x, extra)
            start += batch.num_rows


class NpzRows:
    """The rows of array ``x`` (or the only array) of an ``.npz`` file, read ``NPZ_CHUNK_BYTES`` at a time."""

    what = "row"

    def __init__(self, path: Path, batch_size: int) -> None:
        self.path, self.columns, self.skipped = path, [], []
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                if "x" not in members and len(members) != 1:
                    raise ConfigError(f"{path} has no array 'x' and more than one array ({', '.join(members)}); "
                                      "predict reads 'x', or a file with a single array")
                self.member = "x" if "x" in members else members[0]
                with zf.open(self.member + ".npy") as f:
                    self.shape, self.fortran, self.dtype = _npy_header(f)
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise ConfigError(f"cannot read {path} as a NumPy .npz file: {e}") from None
        if not self.shape or self.dtype.hasobject:
            raise ConfigError(f"{path}: array '{self.member}' must be numbers with one example per row. "
                              f"Received: shape={self.shape}, dtype={self.dtype}")
        self.total = int(self.shape[0])
        row_bytes = max(1, math.prod(self.shape[1:]) * self.dtype.itemsize)
        self.rows_per_chunk = max(batch_size, NPZ_CHUNK_BYTES // row_bytes)

    def __iter__(self) -> Iterator[Chunk]:
        rest = self.shape[1:]
        if self.fortran:  # column-major: the rows are not contiguous; load the array whole
            with np.load(self.path, allow_pickle=False) as arrays:
                x = arrays[self.member]
            for s in range(0, len(x), self.rows_per_chunk):
                part = np.ascontiguousarray(x[s:s + self.rows_per_chunk])
                yield Chunk(list(range(s, s + len(part))), part)
            return
        row_bytes = math.prod(rest) * self.dtype.itemsize
        with zipfile.ZipFile(self.path) as zf, zf.open(self.member + ".npy") as f:
            _npy_header(f)
            for s in range(0, self.total, self.rows_per_chunk):
                n = min(self.rows_per_chunk, self.total - s)
                data = f.read(n * row_bytes)
                if len(data) != n * row_bytes:
                    raise ConfigError(f"{self.path}: array '{self.member}' is truncated after row {s}")
                yield Chunk(list(range(s, s + n)), np.frombuffer(data, self.dtype).reshape(n, *rest))


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``f``, which is left at the data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)
