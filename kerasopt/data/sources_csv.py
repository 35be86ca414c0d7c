"""CSV and Parquet tables: numeric and one-hot categorical features, one label column.

Both are parsed once by pyarrow into the table cache (``kerasopt.data.table_cache``): a later run
on the unchanged file memory-maps the parsed columns instead of parsing again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasopt.config.data_schema import DataConfig
from kerasopt.data.source_base import SOURCES, SourceData
from kerasopt.data.table_cache import Table, TableRequest, open_table


def _request(data: DataConfig, kind: str) -> TableRequest:
    return TableRequest(
        path=Path(str(data.path)), kind=kind, label=str(data.label_column),  # type: ignore[arg-type]
        features=tuple(data.feature_columns) if data.feature_columns is not None else None,
        categorical=tuple(data.categorical_columns),
    )


def table_source(table: Table, origin: str) -> SourceData:
    """A parsed table as a source: labels now, features once the training split is known (``encode``)."""

    def encode(train_idx: np.ndarray) -> tuple[np.ndarray, dict]:
        # Vocabularies from the training split only: validation must not leak into the encoding.
        numeric, codes = table.numeric, table.codes
        num_at = {n: j for j, n in enumerate(table.numeric_names)}
        cat_at = {n: j for j, n in enumerate(table.categorical_names)}
        width = len(num_at)
        vocab: dict[str, list[str]] = {}
        position: dict[str, np.ndarray] = {}
        for name, j in cat_at.items():
            values = table.values(name)
            seen = np.unique(codes[train_idx, j]) if len(train_idx) else np.zeros(0, np.int32)
            vocab[name] = sorted(values[c] for c in seen)
            # code -> column in the one-hot block, -1 for a value the training split never had
            where = {v: i for i, v in enumerate(vocab[name])}
            position[name] = np.array([where.get(v, -1) for v in values], np.int64)
            width += len(vocab[name])
        # The numeric columns in feature order, read from the row-major matrix in one pass.
        order = [num_at[n] for n in table.features if n in num_at]
        block = numeric if order == list(range(numeric.shape[1])) else numeric[:, order]
        if width == len(order):  # no categorical columns: the block is the features
            return np.array(block, np.float32), {"feature_names": [n for n in table.features if n in num_at],
                                                 "categories": {}}
        x = np.empty((table.rows, width), np.float32)
        names: list[str] = []
        col, b = 0, 0
        for name in table.features:
            if name in num_at:
                x[:, col] = block[:, b]
                names.append(name)
                col, b = col + 1, b + 1
                continue
            k = len(vocab[name])
            pos = position[name][codes[:, cat_at[name]]] if k else np.zeros(table.rows, np.int64)
            x[:, col:col + k] = pos[:, None] == np.arange(k)[None, :]
            names.extend(f"{name}={v}" for v in vocab[name])
            col += k
        return x, {"feature_names": names, "categories": vocab}

    return SourceData(
        y=table.labels, origin=origin, label_key="data.label_column", task=table.task,  # type: ignore[arg-type]
        class_names=table.class_names, encode=encode,
        extras={"label_column": table.manifest["settings"]["label"], "table": table.status},
    )


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
    return table_source(open_table(_request(data, "csv")), str(data.path))


@SOURCES.register("parquet")
def load_parquet(data: DataConfig, seed: int) -> SourceData:
    """A Parquet file, read as ``csv`` is: the same columns, categoricals and label rules.

    Numeric columns (integer, float, boolean, decimal) become float32; string columns
    must be listed in ``categorical_columns``; a missing value is an error naming its row.

    Example:
        >>> # load_parquet(DataConfig(source="parquet", path="t.parquet", label_column="y"), seed=0)
    """
    return table_source(open_table(_request(data, "parquet")), str(data.path))
