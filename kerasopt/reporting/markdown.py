"""Render a :class:`~kerasopt.reporting.document.Document` as GitHub-flavoured Markdown.

Figures are referenced as ``<figures_dir>/<name>.png``; the caller writes the
PNGs there (``RUN_DIR/report/``), so the file reads well on GitHub, in VS Code
and in JupyterLab.
"""

from __future__ import annotations

from kerasopt.reporting.document import Code, Document, Figure, Section, Table, Text


def _text(text: str) -> str:
    """Plain text that Markdown must not read as emphasis (``val_raw_*``) or HTML."""
    return str(text).replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;")


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> str:
    header = [h or ("item" if i == 0 else "value") for i, h in enumerate(t.header)]
    align = ["---"] + [("---:" if t.align_right else "---") for _ in header[1:]]
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    if t.caption:
        lines += ["", f"*{_text(t.caption)}*"]
    return "\n".join(lines)


def _code(c: Code) -> str:
    fence = "```" if "```" not in c.text else "~~~~"
    block = f"{fence}{c.lang}\n{c.text.rstrip()}\n{fence}"
    if c.summary:  # GitHub and most viewers fold <details>; a blank line lets the fence render inside
        return f"<details><summary>{c.summary}</summary>\n\n{block}\n\n</details>"
    return block


def _section(s: Section, figures_dir: str) -> str:
    out = [f"## {s.title}"]
    for b in s.blocks:
        if isinstance(b, Text):
            out.append(f"*{_text(b.text)}*" if b.muted else _text(b.text))
        elif isinstance(b, Table):
            out.append(_table(b))
        elif isinstance(b, Code):
            out.append(_code(b))
        elif isinstance(b, Figure):
            out.append(f"![{b.alt}]({figures_dir}/{b.name}.png)" + (f"\n\n*{b.caption}*" if b.caption else ""))
    return "\n\n".join(out)


def render_markdown(doc: Document, figures_dir: str = "report") -> str:
    """The document as Markdown text.

    Example:
        >>> render_markdown(Document("Run", "runs/x", [Section("Summary", [Text("ok")])])).splitlines()[0]
        '# Run'
    """
    head = [f"# {doc.title}"]
    if doc.subtitle:
        head.append(f"`{doc.subtitle}`")
    head.append(" · ".join(f"[{s.title}](#{s.anchor})" for s in doc.sections))
    return "\n\n".join(head + [_section(s, figures_dir) for s in doc.sections]) + "\n"
