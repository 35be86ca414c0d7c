"""A report as plain data: sections of text, tables, code and figures.

The builders (:mod:`.report`, :mod:`.compare`) fill a :class:`Document`; the
renderers (:mod:`.html`, :mod:`.markdown`) turn the same document into a
self-contained HTML page or a Markdown file with PNGs beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union


@dataclass
class Text:
    """A paragraph; ``muted`` renders it as a small grey note."""

    text: str
    muted: bool = False


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    align_right: bool = True  # numeric columns (all but the first) right-aligned


@dataclass
class Code:
    text: str
    lang: str = ""
    summary: str = ""  # when set, the block is folded under this line


@dataclass
class Figure:
    """A PNG; ``name`` is its file stem in ``report/`` for Markdown."""

    name: str
    png: bytes
    alt: str
    caption: str = ""


Block = Union[Text, Table, Code, Figure]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(b for b in blocks if b is not None)
        return self


@dataclass
class Document:
    """Example: ``Document("digits_cnn", "runs/digits_cnn", [Section("Summary", [Text("...")])])``."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def fmt(v: object, digits: int = 4) -> str:
    """Numbers for tables: 4 significant decimals, thousands separators, '—' for missing.

    Example:
        >>> fmt(0.123456), fmt(1234.5), fmt(None), fmt(float("nan")), fmt(3e-05)
        ('0.1235', '1,234', '—', '—', '3e-05')
    """
    if v is None or v == "":
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:  # NaN
            return "—"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.{digits}f}"
    return str(v)
