"""Offline HTML for ``workbench demo``: executed notebooks as self-contained pages, and an index.

Every page works with no network: bokeh/HoloViews JavaScript is embedded in the notebook outputs by
:func:`workbench.maps.setup_notebook` (inline resources), nbconvert's CDN scripts (require.js,
MathJax, mermaid) are left out, live-widget outputs are replaced by a note (their JavaScript would come from a
CDN and they need a kernel anyway), and :func:`remote_references` checks the result: a page that
still loads anything from another host is refused with :class:`OfflineError`.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from typing import Any

from .errors import WorkbenchError
from .io import atomic_write_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    "<div class='wb-widget-note' style='padding:6px 10px;border-left:3px solid #888;color:#555'>"
    "<em>Interactive widget (a panel or a progress bar): it needs a running kernel. Open this notebook in "
    "JupyterLab (<code>make lab</code>) to use it.</em></div>"
)

# <script src=...>, <link href=...>, <img src=...>, <iframe src=...> pointing off the page's host
_TAG_URL = re.compile(
    r"<(script|link|img|iframe|source|audio|video|embed)\b[^>]*?\s(?:src|href)\s*=\s*[\"']?"
    r"((?:https?:)?//[^\"'\s>]+)",
    re.IGNORECASE,
)
# CSS @import / url(...) and bokeh ImportedStyleSheet / resource urls inside embedded JSON
_CSS_URL = re.compile(r"@import\s+(?:url\()?[\"']?((?:https?:)?//[^\"')\s;]+)", re.IGNORECASE)
_JSON_URL = re.compile(r"\\?[\"']url\\?[\"']\s*:\s*\\?[\"']((?:https?:)?//[^\"'\\]+)")


# JupyterLab's nbconvert template without the blocks that load require.js, MathJax, mermaid and the
# ipywidgets manager from CDNs (math in markdown then shows as TeX source; widgets get a note).
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
"""


class OfflineError(WorkbenchError):
    """An exported page would load something from the network."""


def remote_references(page: str) -> list[str]:
    """URLs the page would fetch from another host: script/link/img/iframe sources, CSS imports and
    bokeh stylesheet URLs in embedded document JSON. Plain text and links (``<a href>``) don't count."""
    urls = [m.group(2) for m in _TAG_URL.finditer(page)]
    urls += [m.group(1) for m in _CSS_URL.finditer(page)]
    urls += [m.group(1) for m in _JSON_URL.finditer(page)]
    return sorted(set(urls))


def _replace_widget_outputs(nb) -> int:
    n = 0
    for cell in nb.cells:
        if "outputs" in cell:  # empty display_data (HoloViews' comm markers) cannot be shown in HTML
            cell["outputs"] = [o for o in cell["outputs"] if "data" not in o or o["data"]]
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_MIME in data:
                out["data"] = {"text/html": WIDGET_NOTE}
                n += 1
    return n


def export_html(nb_node, path: str | Path) -> Path:
    """Write an executed notebook to a self-contained HTML page that needs no network.

    Parameters
    ----------
    nb_node
        An executed ``nbformat`` notebook node (not modified).
    path
        Output ``.html`` path (written atomically).

    Raises
    ------
    OfflineError
        If the page would still fetch something from another host (e.g. a notebook that did not call
        ``wb.maps.setup_notebook()`` and so links BokehJS on a CDN).
    """
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb_node)
    nb.metadata.pop("widgets", None)
    _replace_widget_outputs(nb)
    import jinja2

    loader = jinja2.DictLoader({"workbench_offline.html.j2": _OFFLINE_TEMPLATE})
    exporter = HTMLExporter(template_name="lab", extra_loaders=[loader],
                            template_file="workbench_offline.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    remote = remote_references(body)
    if remote:
        raise OfflineError(
            f"{Path(path).name} would load {len(remote)} resource(s) from the network, e.g. {remote[:3]}; "
            "call wb.maps.setup_notebook() at the top of the notebook so bokeh/HoloViews resources are "
            "inline."
        )
    path = Path(path)
    atomic_write_text(path, body)
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v[:6]) + (" …" if len(v) > 6 else "")
    return str(v)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:70rem;
color:#222;padding:0 1rem}
h1{font-weight:600}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.45rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.ok{color:#1a7f37;font-weight:600}.fail{color:#b42318;font-weight:600}
td.figs{font-family:ui-monospace,Menlo,monospace;font-size:.85rem}td.num{text-align:right}
.err{color:#b42318;font-size:.85rem}footer{margin-top:2rem;color:#777;font-size:.85rem}
"""


def write_index(out_dir: str | Path, results: list[dict]) -> Path:
    """Write ``<out_dir>/index.html`` linking each executed notebook's page with its headline figures.

    Parameters
    ----------
    out_dir
        The demo output folder (the notebook pages are expected there).
    results
        One dict per notebook: ``notebook`` (name), ``html`` (page file name, relative to ``out_dir``),
        ``ok`` (bool), ``seconds`` (wall time) and ``figures`` (headline figures); optional ``error``.

    Returns
    -------
    Path of the written ``index.html`` (fully offline: no scripts, no external links).
    """
    out = Path(out_dir)
    rows = []
    for r in results:
        name = html.escape(str(r.get("notebook", "?")))
        page = r.get("html")
        link = f"<a href='{html.escape(str(page))}'>{name}</a>" if page else name
        status = "<span class='ok'>ok</span>" if r.get("ok") else "<span class='fail'>failed</span>"
        figs = r.get("figures") or {}
        fig_html = "<br>".join(f"{html.escape(str(k))} = {html.escape(_fmt(v))}" for k, v in figs.items())
        if r.get("error"):
            fig_html += f"<div class='err'>{html.escape(str(r['error']))}</div>"
        secs = r.get("seconds")
        secs_s = f"{float(secs):.1f}" if isinstance(secs, (int, float)) else ""
        rows.append(f"<tr><td>{link}</td><td>{status}</td><td class='num'>{secs_s}</td>"
                    f"<td class='figs'>{fig_html or '—'}</td></tr>")
    n_ok = sum(bool(r.get("ok")) for r in results)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lunar Workbench — demo report</title>
<style>{_CSS}</style></head>
<body><h1>Lunar Workbench — demo report</h1>
<p>{n_ok} of {len(results)} notebooks ran without error. Each page is self-contained and works offline.</p>
<table><thead><tr><th>notebook</th><th>status</th><th>seconds</th><th>headline figures</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<footer>Generated by <code>workbench demo</code>; figures also in <code>summary.json</code>.</footer>
</body></html>
"""
    path = out / "index.html"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return path
