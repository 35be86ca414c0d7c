"""Parsing a CSV or Parquet file into the table cache's files, in one streaming pass (pyarrow).

:func:`build` reads the file in blocks with pyarrow (a multi-threaded C++ parser) and writes into a
folder (``kerasopt.data.table_cache`` says what each file holds). Memory during the build is one
block (16 MB of text) plus the labels.

Bad input is named as before: a non-numeric cell by file, row, line and column, a short row by its
line, an empty label by its row. pyarrow's own messages carry no row when it parses in parallel, so
on a conversion or parse error the file is scanned once more with Python's ``csv`` module to find
the first bad cell (the error path only).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np

from kerasopt.errors import ConfigError
from kerasopt.io.atomic import staged_folder
from kerasopt.registry import suggest
from kerasopt.usercache import write_json

# Bumped when what the cache holds, or how a file is parsed, changes: older caches are then rebuilt.
FORMAT = 1
BLOCK_BYTES = 16 << 20  # text per parsed block: memory during the build, not a limit on the file


@dataclass(frozen=True)
class TableRequest:
    """Which file, and how to read it: the settings a cache is valid for."""

    path: Path
    kind: Literal["csv", "parquet"]
    label: str
    features: Optional[tuple[str, ...]]  # None: every column but the label
    categorical: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label,
                "features": list(self.features) if self.features is not None else None,
                "categorical": sorted(self.categorical)}


def source_stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}




def build(req: TableRequest, path: Path, folder: Path) -> dict:
    """Parse ``path`` into ``folder`` (written to a temporary sibling, then renamed into place)."""
    t0 = time.perf_counter()
    try:
        with staged_folder(folder) as tmp:
            manifest = _write(req, path, tmp)
            manifest["build_seconds"] = round(time.perf_counter() - t0, 3)
            write_json(tmp / "manifest.json", manifest)
    finally:
        _release_arrow_memory()
    return manifest


def _release_arrow_memory() -> None:
    """Give the parse's freed blocks back to the OS: pyarrow's allocator keeps them for reuse otherwise."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):  # pyarrow < 9 has no release_unused
        pass


def _write(req: TableRequest, path: Path, out: Path) -> dict:
    if req.kind == "csv":
        header = _csv_header(path)
    else:
        header = _parquet_header(path)
    features, categorical = _choose_columns(req, path, header)
    numeric = [f for f in features if f not in categorical]
    cats = [f for f in features if f in categorical]
    values: dict[str, dict[str, int]] = {c: {} for c in cats}
    label_chunks: list = []
    rows = nonfinite = 0
    with open(out / "numeric.f32", "wb") as fnum, open(out / "codes.i32", "wb") as fcat:
        batches = (_csv_batches(req, path, header, numeric, cats) if req.kind == "csv"
                   else _parquet_batches(path, numeric, cats, req.label))
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            if numeric:
                block = np.empty((n, len(numeric)), np.float32)
                for j, name in enumerate(numeric):
                    block[:, j] = _numeric_column(batch.column(name), path, req, name, rows)
                fnum.write(block.tobytes())
                nonfinite += int((~np.isfinite(block)).sum())
            if cats:
                block = np.empty((n, len(cats)), np.int32)
                for j, name in enumerate(cats):
                    block[:, j] = _codes(batch.column(name), values[name])
                fcat.write(block.tobytes())
            label_chunks.append(_label_strings(batch.column(req.label), path, req, rows))
            rows += n
    y, task, class_names = _resolve_labels(label_chunks, path, req, rows)
    np.save(out / "labels.npy", y)
    return {
        "format": FORMAT, "source": {"path": str(path.resolve()), **source_stat(path)}, "settings": req.settings(),
        "rows": rows, "nonfinite": nonfinite, "header": header, "features": features, "numeric": numeric,
        "categorical": cats,
        "values": {c: list(v) for c, v in values.items()}, "task": task, "class_names": class_names,
    }


def _choose_columns(req: TableRequest, path: Path, header: list[str]) -> tuple[list[str], set[str]]:
    label = req.label
    if label not in header:
        raise ConfigError(
            f"label column '{label}' is not in {path}. Columns in the file: {', '.join(header)}."
            f"{suggest(label, header)}",
            key="data.label_column",
        )
    features = list(req.features) if req.features is not None else [h for h in header if h != label]
    for name in features:
        if name not in header:
            raise ConfigError(
                f"feature column '{name}' is not in {path}. Columns in the file: {', '.join(header)}."
                f"{suggest(name, header)}",
                key="data.feature_columns",
            )
    if label in features:
        raise ConfigError(f"the label column '{label}' cannot also be a feature", key="data.feature_columns")
    if not features:
        raise ConfigError(f"{path} has no feature columns besides the label '{label}'", key="data.feature_columns")
    for name in req.categorical:
        if name not in features:
            where = "is the label column" if name == label else f"is not a feature column ({', '.join(features)})"
            raise ConfigError(f"categorical column '{name}' {where}", key="data.categorical_columns")
    return features, set(req.categorical)


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
            header = next(csv.reader(f), None)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start})", key="data.path") from None
    except csv.Error as e:
        raise ConfigError(f"{path}: malformed CSV: {e}", key="data.path") from None
    if not header:
        raise ConfigError(f"{path} is empty; expected a header row of column names", key="data.path")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ConfigError(f"{path} repeats column name(s): {', '.join(dupes)}", key="data.path")
    return header


def _csv_batches(req: TableRequest, path: Path, header: list[str], numeric: list[str], cats: list[str]):
    import pyarrow as pa
    from pyarrow import csv as pcsv

    types = {**{n: pa.float32() for n in numeric}, **{c: pa.string() for c in cats}, req.label: pa.string()}
    read = pcsv.ReadOptions(block_size=BLOCK_BYTES, column_names=header, skip_rows=1)
    # Only an empty cell is missing (then named); "NA" or "n/a" in a numeric column is not a number.
    convert = pcsv.ConvertOptions(column_types=types, include_columns=[*numeric, *cats, req.label],
                                  null_values=[""], strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        reader = pcsv.open_csv(path, read_options=read, convert_options=convert)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        _diagnose_csv(path, header, numeric, req.label)  # raises the precise error when it finds one
        raise ConfigError(f"{path}: could not parse: {str(e).strip().splitlines()[0]}", key="data.path") from None


def _diagnose_csv(path: Path, header: list[str], numeric: list[str], label: str) -> None:
    """Scan ``path`` with Python's csv module for the first bad row or cell and raise its ConfigError.

    Rows count data rows (blank lines skipped); lines count lines of the file, as an editor does.
    """
    col = {h: i for i, h in enumerate(header)}
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader, None)
            r = 0
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                r += 1
                line = reader.line_num
                if len(cells) != len(header):
                    raise ConfigError(f"{path}, line {line}: {len(cells)} cells but the header has "
                                      f"{len(header)} columns", key="data.path")
                if not cells[col[label]].strip():
                    raise ConfigError(f"{path}, line {line}: label column '{label}' is empty",
                                      key="data.label_column")
                for name in numeric:
                    cell = cells[col[name]].strip()
                    try:
                        float(cell)
                    except ValueError:
                        raise ConfigError(_not_a_number(path, r, line, name, cell), key="data.path") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start})", key="data.path") from None
    except csv.Error as e:
        raise ConfigError(f"{path}: malformed CSV: {e}", key="data.path") from None


def _not_a_number(path: Path, row: int, line: Optional[int], name: str, cell: str) -> str:
    where = f"row {row} (line {line})" if line is not None else f"row {row}"
    return (f"{path}, {where}, column '{name}': not a number; list the column in data.categorical_columns "
            f"if it holds categories. Received: {cell!r}")


def _line_of(path: Path, row: int) -> Optional[int]:
    """The file line of data row ``row`` (1-based, blank lines skipped), for messages; None if not a CSV."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return None
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader, None)
        r = 0
        for cells in reader:
            if any(c.strip() for c in cells):
                r += 1
                if r == row:
                    return reader.line_num
    return None


def _numeric_column(col, path: Path, req: TableRequest, name: str, rows_before: int) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if col.null_count:
        i = int(pc.index(pc.is_null(col), True).as_py())
        row = rows_before + i + 1
        raise ConfigError(_not_a_number(path, row, _line_of(path, row) if req.kind == "csv" else None, name, ""),
                          key="data.path")
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_boolean(col.type)
            or pa.types.is_decimal(col.type)):
        raise ConfigError(
            f"{path}: column '{name}' holds {col.type}, not numbers; list it in data.categorical_columns "
            f"if it holds categories", key="data.feature_columns")
    return col.cast(pa.float32()).to_numpy(zero_copy_only=False)


def _codes(col, seen: dict[str, int]) -> np.ndarray:
    """Global codes (order of first appearance across blocks) for a string column of one block."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = col.cast(pa.string())
    enc = pc.utf8_trim_whitespace(col.fill_null("")).dictionary_encode()
    local = enc.dictionary.to_pylist()
    remap = np.array([seen.setdefault(v, len(seen)) for v in local], np.int32)
    return remap[enc.indices.to_numpy(zero_copy_only=False)]


def _label_strings(col, path: Path, req: TableRequest, rows_before: int):
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        if col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            return col  # a typed Parquet label column
        col = col.cast(pa.string())
    col = pc.utf8_trim_whitespace(col.fill_null(""))
    empty = pc.equal(col, "")
    if pc.any(empty).as_py():
        row = rows_before + int(pc.index(empty, True).as_py()) + 1
        line = _line_of(path, row) if req.kind == "csv" else None
        where = f"line {line}" if line is not None else f"row {row}"
        raise ConfigError(f"{path}, {where}: label column '{req.label}' is empty", key="data.label_column")
    return col


def _resolve_labels(chunks: list, path: Path, req: TableRequest, rows: int):
    """Integers -> classes, other numbers -> regression, anything else -> sorted class names."""
    import pyarrow as pa

    if not rows:
        return np.zeros(0, np.int64), "classification", None
    if all(pa.types.is_integer(c.type) for c in chunks):
        return np.concatenate([c.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int64), \
            "classification", None
    if all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in chunks):
        return np.concatenate([c.cast(pa.float32()).to_numpy(zero_copy_only=False) for c in chunks]), \
            "regression", None
    strings = pa.chunked_array([c.cast(pa.string()) for c in chunks])
    for target, task in ((pa.int64(), "classification"), (pa.float64(), "regression")):
        try:
            y = strings.cast(target).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return (y.astype(np.int64), task, None) if task == "classification" else (y.astype(np.float32), task, None)
    # Class names, unless most labels are numbers: then it is a typo, not a class (which would silently
    # turn a regression into classes).
    numbers = _is_number_mask(strings)
    if int(numbers.sum()) * 2 >= rows:
        r = int(np.argmin(numbers)) + 1
        cell = strings[r - 1].as_py()
        line = _line_of(path, r) if req.kind == "csv" else None
        where = f"row {r} (line {line})" if line is not None else f"row {r}"
        raise ConfigError(
            f"{path}, {where}, column '{req.label}': not a number, although {int(numbers.sum())} of {rows} "
            f"labels are numbers. Received: {cell!r}",
            key="data.label_column",
        )
    enc = strings.combine_chunks().dictionary_encode()
    local = enc.dictionary.to_pylist()
    names = sorted(local)
    lookup = {n: i for i, n in enumerate(names)}
    order = np.array([lookup[v] for v in local], np.int64)
    return order[enc.indices.to_numpy(zero_copy_only=False)], "classification", names


def _is_number_mask(strings) -> np.ndarray:
    import pyarrow.compute as pc

    # Arrow's float parser accepts what Python's float() does for plain decimal numbers.
    ok = pc.match_substring_regex(strings, r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan)$",
                                  ignore_case=True)
    return np.asarray(ok.to_numpy(zero_copy_only=False), bool)


# -- Parquet ---------------------------------------------------------------------------------------


def parquet_file(path: Path):
    """``pyarrow.parquet.ParquetFile`` of ``path``, read without pre-buffering; ConfigError if it is not Parquet."""
    try:
        import pyarrow.parquet as pq

        # pre_buffer=False: with it, iter_batches kept every row group it had read (10M rows: 1.8 GB)
        return pq.ParquetFile(path, pre_buffer=False)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        raise ConfigError(f"{path} is not a Parquet file ({str(e).strip().splitlines()[0]})", key="data.path") \
            from None


def _parquet_header(path: Path) -> list[str]:
    return list(parquet_file(path).schema_arrow.names)


def _parquet_batches(path: Path, numeric: list[str], cats: list[str], label: str):
    pf = parquet_file(path)
    yield from pf.iter_batches(batch_size=65536, columns=[*numeric, *cats, label])
