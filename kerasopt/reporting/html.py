"""Render a :class:`~kerasopt.reporting.document.Document` as one self-contained HTML page.

No external CSS, fonts or scripts; figures are inline ``data:image/png;base64``
images, so the file can be mailed, attached to a ticket or opened offline.
"""

from __future__ import annotations

import base64
import struct
from html import escape

from kerasopt.reporting.document import Code, Document, Figure, Section, Table, Text
from kerasopt.reporting.plots import DPI

_CSS = """
:root { --fg: #1d2430; --muted: #5d6778; --line: #dde2ea; --accent: #1f5fa8; --bg-alt: #f6f8fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); background: #fff; }
main { max-width: 1320px; margin: 0 auto; padding: 18px 22px 48px; }
header h1 { margin: 0 0 2px; font-size: 26px; }
header .sub { color: var(--muted); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
nav { margin: 12px 0 8px; padding: 8px 0; border-bottom: 1px solid var(--line); font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; white-space: nowrap; }
section { margin-top: 26px; }
h2 { font-size: 20px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
p { margin: 6px 0 10px; max-width: 980px; }
p.muted, .caption { color: var(--muted); font-size: 13px; }
.figs { display: flex; flex-wrap: wrap; gap: 14px 22px; align-items: flex-start; }
figure { margin: 4px 0; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 14px; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td:first-child { color: var(--muted); white-space: nowrap; }
table caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 12.5px; padding-top: 4px; }
pre { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 4px; padding: 10px 12px;
      font-size: 12.5px; line-height: 1.4; overflow-x: auto; max-height: 560px; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
"""


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk. Example: ``png_size(data) -> (960, 510)``."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", png[16:24])


def _figure(f: Figure) -> str:
    w, h = png_size(f.png)
    css_w, css_h = round(w * 100 / DPI), round(h * 100 / DPI)  # 150-dpi pixels shown at 100 per inch
    data = base64.b64encode(f.png).decode("ascii")
    cap = f'<figcaption class="caption">{escape(f.caption)}</figcaption>' if f.caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(f.alt)}" width="{css_w}" '
            f'height="{css_h}">{cap}</figure>')


def _table(t: Table) -> str:
    kv = all(not h for h in t.header)
    out = [f'<table class="{"kv" if kv else "grid"}">']
    if t.caption:
        out.append(f"<caption>{escape(t.caption)}</caption>")
    if not kv:
        out.append("<thead><tr>" + "".join(
            f'<th class="{"num" if i and t.align_right else ""}">{escape(h)}</th>' for i, h in enumerate(t.header))
            + "</tr></thead>")
    out.append("<tbody>")
    for row in t.rows:
        out.append("<tr>" + "".join(
            f'<td class="{"num" if i and t.align_right else ""}">{escape(str(c))}</td>' for i, c in enumerate(row))
            + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _code(c: Code) -> str:
    pre = f'<pre><code class="language-{escape(c.lang)}">{escape(c.text)}</code></pre>'
    return f"<details><summary>{escape(c.summary)}</summary>{pre}</details>" if c.summary else pre


def _section(s: Section) -> str:
    parts, figs = [f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>'], []

    def flush() -> None:
        if figs:
            parts.append('<div class="figs">' + "".join(figs) + "</div>")
            figs.clear()

    for b in s.blocks:
        if isinstance(b, Figure):
            figs.append(_figure(b))  # consecutive figures share a row when they fit
            continue
        flush()
        if isinstance(b, Text):
            parts.append(f'<p class="{"muted" if b.muted else ""}">{escape(b.text)}</p>')
        elif isinstance(b, Table):
            parts.append(_table(b))
        elif isinstance(b, Code):
            parts.append(_code(b))
    flush()
    parts.append("</section>")
    return "\n".join(parts)


def render_html(doc: Document) -> str:
    """The whole page as a string.

    Example:
        >>> from kerasopt.reporting.document import Section, Text
        >>> "<h2>Summary</h2>" in render_html(Document("t", "", [Section("Summary", [Text("hi")])]))
        True
    """
    nav = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in doc.sections)
    body = "\n".join(_section(s) for s in doc.sections)
    sub = f'<div class="sub">{escape(doc.subtitle)}</div>' if doc.subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, '
        f'initial-scale=1"><meta name="generator" content="kerasopt"><title>{escape(doc.title)}</title>'
        f"<style>{_CSS}</style></head>\n"
        f"<body><main><header><h1>{escape(doc.title)}</h1>{sub}</header><nav>{nav}</nav>\n{body}\n"
        "</main></body></html>\n"
    )
