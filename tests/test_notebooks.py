"""Every curated notebook executes headless in fast mode and reports its headline figures.

This is `workbench demo --fast` per notebook (the real-browser tests in test_browser.py additionally
drive the notebooks in JupyterLab).
"""

from __future__ import annotations

import json

import pytest

from workbench.demo import curated_notebooks, run_demo

NOTEBOOKS = [p.stem for p in curated_notebooks()]


def test_there_are_curated_notebooks():
    assert "00_tour" in NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_headless_and_reports(name, tmp_path):
    results = run_demo(tmp_path, only=name, fast=True, timeout=600)
    (r,) = [x for x in results if x["notebook"] == name]
    assert r["ok"], f"{name} failed: {r['error']}"
    assert r["figures"], f"{name} reported no headline figures (call wb.report.headline at the end)"
    html = (tmp_path / f"{name}.html").read_text()
    assert "Traceback" not in html
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary[name]["ok"]


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for p in curated_notebooks():
        nb = nbformat.read(p, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{p.name}: cells {dirty} have outputs; strip them before committing"
