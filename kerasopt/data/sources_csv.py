"""CSV files: numeric and one-hot categorical features, one label column (no pandas)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from kerasopt.config.data_schema import DataConfig
from kerasopt.data.source_base import SOURCES, SourceData
from kerasopt.errors import ConfigError
from kerasopt.registry import suggest


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(file line, cells)`` rows; blank lines are skipped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
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
    for line, cells in rows:
        if len(cells) != len(header):
            raise ConfigError(
                f"{path}, line {line}: {len(cells)} cells but the header has {len(header)} columns", key="data.path"
            )
    return header, rows


def _check_columns(path: Path, header: list[str], names: list[str], key: str, what: str) -> None:
    for name in names:
        if name not in header:
            raise ConfigError(
                f"{what} '{name}' is not in {path}. Columns in the file: {', '.join(header)}.{suggest(name, header)}",
                key=key,
            )


def _parse_labels(path: Path, column: str, cells: list[str], lines: list[int]):
    """Integers -> classes, other numbers -> regression, anything else -> sorted class names."""
    for line, cell in zip(lines, cells, strict=True):
        if not cell:
            raise ConfigError(f"{path}, line {line}: label column '{column}' is empty", key="data.label_column")
    try:
        return np.array([int(c) for c in cells], np.int64), "classification", None
    except ValueError:
        pass
    try:
        return np.array([float(c) for c in cells], np.float32), "regression", None
    except ValueError:
        numbers = [_is_number(c) for c in cells]
        if sum(numbers) * 2 >= len(cells):
            # Mostly numbers: a typo, not class names (which would silently turn regression into classes).
            r = numbers.index(False)
            raise ConfigError(
                f"{path}, row {r + 1} (line {lines[r]}), column '{column}': not a number, although "
                f"{sum(numbers)} of {len(cells)} labels are numbers. Received: {cells[r]!r}",
                key="data.label_column",
            ) from None
        names = sorted(set(cells))
        lookup = {n: i for i, n in enumerate(names)}
        return np.array([lookup[c] for c in cells], np.int64), "classification", names


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
    path = Path(str(data.path))
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise ConfigError(f"CSV file {what}: {path}", key="data.path")
    header, rows = _read_rows(path)
    label = str(data.label_column)
    if label not in header:
        raise ConfigError(
            f"label column '{label}' is not in {path}. Columns in the file: {', '.join(header)}."
            f"{suggest(label, header)}",
            key="data.label_column",
        )
    features = list(data.feature_columns) if data.feature_columns is not None else [h for h in header if h != label]
    _check_columns(path, header, features, "data.feature_columns", "feature column")
    if label in features:
        raise ConfigError(f"the label column '{label}' cannot also be a feature", key="data.feature_columns")
    if not features:
        raise ConfigError(f"{path} has no feature columns besides the label '{label}'", key="data.feature_columns")
    for name in data.categorical_columns:
        if name not in features:
            where = "is the label column" if name == label else f"is not a feature column ({', '.join(features)})"
            raise ConfigError(f"categorical column '{name}' {where}", key="data.categorical_columns")
    categorical = set(data.categorical_columns)
    lines = [line for line, _ in rows]
    col = {h: i for i, h in enumerate(header)}

    numeric: dict[str, np.ndarray] = {}
    for name in features:
        if name in categorical:
            continue
        values = np.empty(len(rows), np.float32)
        for r, (line, cells) in enumerate(rows):
            cell = cells[col[name]].strip()
            try:
                values[r] = float(cell)
            except ValueError:
                raise ConfigError(
                    f"{path}, row {r + 1} (line {line}), column '{name}': not a number; list the column in "
                    f"data.categorical_columns if it holds categories. Received: {cell!r}",
                    key="data.path",
                ) from None
        numeric[name] = values
    cats = {name: np.array([cells[col[name]].strip() for _, cells in rows], dtype=object) for name in categorical}
    y, task, class_names = _parse_labels(path, label, [cells[col[label]].strip() for _, cells in rows], lines)

    def encode(train_idx: np.ndarray) -> tuple[np.ndarray, dict]:
        # Vocabularies from the training split only: validation must not leak into the encoding.
        blocks, names, vocab = [], [], {}
        for name in features:
            if name in numeric:
                blocks.append(numeric[name][:, None])
                names.append(name)
                continue
            values = cats[name]
            vocab[name] = sorted(set(values[train_idx].tolist()))
            blocks.append((values[:, None] == np.array(vocab[name], dtype=object)[None, :]).astype(np.float32))
            names.extend(f"{name}={v}" for v in vocab[name])
        x = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(y), 0), np.float32)
        return x.astype(np.float32), {"feature_names": names, "categories": vocab}

    return SourceData(
        y=y, origin=str(path), label_key="data.label_column", task=task, class_names=class_names, encode=encode,
        extras={"label_column": label},
    )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
