"""HTML and Markdown rendering of a report document: escaping, tables, inline images, anchors."""

import base64
import re

import pytest

from kerasopt.reporting import plots
from kerasopt.reporting.document import Code, Document, Figure, Section, Table, Text, fmt
from kerasopt.reporting.html import png_size, render_html
from kerasopt.reporting.markdown import render_markdown


@pytest.fixture(scope="module")
def doc():
    png = plots.curves([plots.Line("train", [1, 2], [0.5, 0.25])], title="Loss", ylabel="loss")
    return Document("Report <1>", "runs/x", [
        Section("Summary & more", [Text("a < b"), Table(["", ""], [["key", "v|1"]], align_right=False)]),
        Section("Curves", [Figure("loss", png, "loss per epoch", caption="cap"),
                           Table(["metric", "value"], [["loss", "0.25"]], caption="note")]),
        Section("Configuration", [Code("a: <b>\n", "yaml", summary="config.yaml")]),
    ])


@pytest.mark.parametrize("value, digits, text", [
    (0.98061, 4, "0.9806"), (448.79, 0, "449"), (12345.6, 4, "12,346"), (77466, 4, "77,466"),
    (None, 4, "—"), (float("nan"), 4, "—"), (2e-4, 4, "0.0002"), (3e-5, 4, "3e-05"), (True, 4, "yes"),
])
def test_fmt(value, digits, text):
    assert fmt(value, digits) == text


def test_html_is_self_contained_and_escaped(doc):
    html = render_html(doc)
    assert "<title>Report &lt;1&gt;</title>" in html
    assert "<p class=\"\">a &lt; b</p>" in html and "a < b" not in html
    assert '<a href="#summary-more">Summary &amp; more</a>' in html and '<section id="summary-more">' in html
    assert "&lt;b&gt;" in html and "<details><summary>config.yaml</summary>" in html
    assert not re.search(r"""(src|href)=["'](http|//|file:)""", html)  # nothing fetched from outside
    (data,) = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    png = base64.b64decode(data)
    assert png == doc.figures[0].png
    w, h = png_size(png)
    assert (w, h) == (round(plots.LINE_SIZE[0] * plots.DPI), round(plots.LINE_SIZE[1] * plots.DPI))
    assert f'width="{round(w * 100 / plots.DPI)}"' in html  # shown at 100 CSS px per inch: crisp on HiDPI


def test_markdown_tables_figures_and_code(doc):
    md = render_markdown(doc, "report")
    lines = md.splitlines()
    assert lines[0] == "# Report <1>"
    assert "| key | v\\|1 |" in lines  # a pipe inside a cell does not split it
    assert "| metric | value |" in lines and "| --- | ---: |" in lines
    assert "![loss per epoch](report/loss.png)" in lines
    assert "```yaml" in lines and "<details><summary>config.yaml</summary>" in lines
    assert "[Summary & more](#summary-more)" in md


def test_figures_are_png_of_the_laptop_size():
    png = plots.confusion([[5, 1], [0, 4]], ["cat", "dog"])
    w, h = png_size(png)
    assert 400 <= w * 100 / plots.DPI <= 700 and 300 <= h * 100 / plots.DPI <= 600
    png = plots.throughput([1, 2, 3], [100.0, 400.0, 410.0], [30.0, 3.0, 3.1])
    assert png_size(png)[0] * 100 / plots.DPI <= 1200  # two panels still fit a 1280-pixel screen
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))
