"""Tests for workbench.demo_report: offline HTML export and the demo index page."""

from __future__ import annotations

import nbformat
import pytest

from workbench import demo_report as dr


def _nb(extra_outputs=()):
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell("# Title\nSome text with a [link](https://example.org).")
    c = nbformat.v4.new_code_cell("1 + 1")
    c.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1),
                 nbformat.v4.new_output("display_data", data={
                     dr.WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                     "text/plain": "HBox(...)"}),
                 *extra_outputs]
    nb.cells = [md, c]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


def test_export_html_is_offline_and_replaces_widgets(tmp_path):
    page = dr.export_html(_nb(), tmp_path / "nb.html").read_text()
    assert dr.remote_references(page) == []
    assert "wb-widget-note" in page
    assert "cdnjs.cloudflare.com" not in page  # require.js / MathJax script tags removed
    assert "https://example.org" in page  # ordinary links are fine


def test_export_html_refuses_pages_that_load_from_a_cdn(tmp_path):
    bad = nbformat.v4.new_output("display_data", data={
        "text/html": "<script src='https://cdn.bokeh.org/bokeh/release/bokeh-3.9.2.min.js'></script>"
                     "<div>plot</div>"})
    # the remote script in an output is kept by the template -> caught by the check
    with pytest.raises(dr.OfflineError, match="setup_notebook"):
        dr.export_html(_nb([bad]), tmp_path / "bad.html")
    assert not (tmp_path / "bad.html").exists()


@pytest.mark.parametrize("snippet, hit", [
    ("<link rel='stylesheet' href='https://cdn.holoviz.org/x.css'>", True),
    ('{"type":"object","name":"ImportedStyleSheet","attributes":{"url":"https://cdn.holoviz.org/a.css"}}', True),
    ("<style>@import url(https://fonts.googleapis.com/css);</style>", True),
    ("<img src=//example.org/a.png>", True),
    ("<a href='https://example.org'>docs</a>", False),
    ("<script>var u = 'https://cdn.example.org'; // just a string</script>", False),
])
def test_remote_references(snippet, hit):
    assert bool(dr.remote_references(snippet)) is hit


def test_write_index_links_pages_and_figures(tmp_path):
    results = [
        {"notebook": "00_tour", "html": "00_tour.html", "ok": True, "seconds": 12.34,
         "figures": {"mean_elevation_near_km": -1.103, "n_sample_sites": 11}},
        {"notebook": "01_x", "html": "01_x.html", "ok": False, "seconds": 3.0, "figures": {},
         "error": "ValueError: <boom>"},
    ]
    page = dr.write_index(tmp_path, results).read_text()
    assert "<a href='00_tour.html'>00_tour</a>" in page
    assert "mean_elevation_near_km = -1.103" in page and "12.3" in page
    assert "failed" in page and "&lt;boom&gt;" in page
    assert "1 of 2 notebooks" in page
    assert dr.remote_references(page) == [] and "<script" not in page
