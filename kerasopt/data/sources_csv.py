"""CSV and Parquet tables: numeric and one-hot categorical features, one label column.

Both are parsed once by pyarrow into the table cache (``kerasopt.data.table_cache``): a later run
on the unchanged file memory-maps the parsed columns instead of parsing again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasopt.config.data_schema import DataConfig
from kerasopt.data.cache import budget_bytes, human_bytes
from kerasopt.data.source_base import SOURCES, SourceData, Stream
from kerasopt.data.table_cache import Table, TableRequest, open_table
from kerasopt.data.table_stream import TableEncoder, check_finite, table_stream


def _request(data: DataConfig, kind: str) -> TableRequest:
    return TableRequest(
        path=Path(str(data.path)), kind=kind, label=str(data.label_column),  # type: ignore[arg-type]
        features=tuple(data.feature_columns) if data.feature_columns is not None else None,
        categorical=tuple(data.categorical_columns),
    )


# Copies of the encoded matrix alive at once when an in-memory table's datasets are built (measured
# at 10M rows x 30 columns: 4.3 GB above the import for 1.2 GB encoded, before the NaN check was chunked).
IN_MEMORY_COPIES = 3


def table_source(table: Table, origin: str, data: DataConfig, seed: int) -> SourceData:
    """A parsed table as a source: labels now, features once the training split is known (``encode``).

    The features are encoded into memory when they fit the cache budget (``data.cache: auto``, or
    ``true``); otherwise (or with ``data.cache: false`` or ``disk``) training reads them from the
    memory-mapped cache, a chunk at a time, with the rows shuffled by index each epoch.
    """

    def encode(train_idx: np.ndarray) -> tuple[np.ndarray | Stream, dict]:
        # Vocabularies from the training split only: validation must not leak into the encoding.
        vocab: dict[str, list[str]] = {}
        position: dict[str, np.ndarray] = {}
        seen = _codes_seen(table, train_idx)
        for j, name in enumerate(table.categorical_names):
            values = table.values(name)
            vocab[name] = sorted(values[c] for c in seen[j])
            # code -> column in the one-hot block, -1 for a value the training split never had
            where = {v: i for i, v in enumerate(vocab[name])}
            position[name] = np.array([where.get(v, -1) for v in values], np.int64)
        names = [n for f in table.features for n in ([f] if f not in vocab else [f"{f}={v}" for v in vocab[f]])]
        more = {"feature_names": names, "categories": vocab}
        encoder = TableEncoder(table, vocab, position)
        need = table.rows * encoder.width * 4
        stream, why = _streamed(data, need)
        more["table"] = f"{table.status}; {why}"
        if not stream:
            return _in_memory(table, encoder), more
        check_finite(table, min(table.rows, data.max_examples or table.rows), origin)
        labels = table.labels.astype(np.int32 if table.task == "classification" else np.float32)
        return table_stream(table, encoder, labels, seed), more

    return SourceData(
        y=table.labels, origin=origin, label_key="data.label_column", task=table.task,  # type: ignore[arg-type]
        class_names=table.class_names, encode=encode,
        extras={"label_column": table.manifest["settings"]["label"], "table": table.status},
    )


def _streamed(data: DataConfig, need: int) -> tuple[bool, str]:
    """Whether to read the features from the memory-mapped cache, and the reason to print.

    In memory, the encoded matrix is held about three times over while the datasets are built (the
    matrix, the training split's rows, and the tensor they become), so that peak is what must fit.
    """
    if data.cache is True:
        return False, f"features in memory ({human_bytes(need)}; data.cache: true)"
    if data.cache is False or data.cache == "disk":
        return True, f"features read from the memory-mapped cache every epoch (data.cache: {str(data.cache).lower()})"
    budget, source = budget_bytes(data.cache_budget)
    peak = need * IN_MEMORY_COPIES
    if peak <= budget:
        return False, (f"features in memory ({human_bytes(need)} encoded, ~{human_bytes(peak)} while building, "
                       f"budget {human_bytes(budget)}, {source})")
    return True, (f"features read from the memory-mapped cache every epoch ({human_bytes(need)} encoded, "
                  f"~{human_bytes(peak)} in memory while building: more than the budget {human_bytes(budget)}, "
                  f"{source})")


def _codes_seen(table: Table, train_idx: np.ndarray) -> list[np.ndarray]:
    """Per categorical column, the codes that occur in the training rows (read a block at a time)."""
    seen = [np.zeros(0, np.int32) for _ in table.categorical_names]
    if not seen:
        return seen
    rows = np.sort(np.asarray(train_idx, np.int64))
    for start in range(0, len(rows), 262144):
        block = table.codes.take(rows[start:start + 262144])
        seen = [np.union1d(s, block[:, j]) for j, s in enumerate(seen)]
    return seen


def _in_memory(table: Table, encoder: TableEncoder) -> np.ndarray:
    """The whole feature matrix; the numeric columns read from the row-major matrix in one pass."""
    if all(kind == "num" for kind, *_ in encoder.layout):
        order = [j for _, j, *_ in encoder.layout]
        columns = None if order == list(range(table.numeric.shape[1])) else order
        out = np.empty((table.rows, len(order)), np.float32)
        for start, block in table.numeric.scan(columns=columns):
            out[start:start + len(block)] = block
        return out
    out = np.empty((table.rows, encoder.width), np.float32)
    for start in range(0, table.rows, 262144):
        rows = np.arange(start, min(table.rows, start + 262144))
        out[start:start + len(rows)] = encoder(rows)
    return out


@SOURCES.register("csv")
def load_csv(data: DataConfig, seed: int) -> SourceData:
    """One example per row: ``label_column`` is the label, the rest (or ``feature_columns``) are features.

    Numeric columns become float32; ``categorical_columns`` are one-hot encoded
    with the categories seen in the training split (an unseen category in
    validation is all zeros). Integer labels are class indices, other numbers
    regression targets, strings class names (sorted).

    Example:
        >>> # species.csv: "length,color,species\\n1.5,red,cat\\n..."
        >>> # load_csv(DataConfig(source="csv", path="species.csv", label_column="species",
        >>> #                     categorical_columns=["color"]), seed=0)
    """
    return table_source(open_table(_request(data, "csv")), str(data.path), data, seed)


@SOURCES.register("parquet")
def load_parquet(data: DataConfig, seed: int) -> SourceData:
    """A Parquet file, read as ``csv`` is: the same columns, categoricals and label rules.

    Numeric columns (integer, float, boolean, decimal) become float32; string columns
    must be listed in ``categorical_columns``; a missing value is an error naming its row.

    Example:
        >>> # load_parquet(DataConfig(source="parquet", path="t.parquet", label_column="y"), seed=0)
    """
    return table_source(open_table(_request(data, "parquet")), str(data.path), data, seed)
