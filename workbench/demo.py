"""``workbench demo``: execute every curated notebook headless and write an offline report.

Outputs (under ``outputs/demo`` by default): ``<notebook>.html`` for each notebook, ``summary.json``
(status, wall time and the headline figures each notebook reported through
:func:`workbench.report.headline`) and ``index.html`` linking them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from .catalog import REPO_ROOT
from .errors import InputError
from .io import atomic_write_text
from .report import ENV_VAR

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def curated_notebooks(only: str | None = None) -> list[Path]:
    """The curated notebooks (``notebooks/NN_*.ipynb``), optionally filtered by a substring."""
    nbs = sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in nbs if only is None or only in p.stem]


def execute_notebook(path: Path, timeout: int = 900, env: dict[str, str] | None = None):
    """Execute a notebook with nbclient in its own folder; return (executed node, error or None)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    old_env = dict(os.environ)
    os.environ.update(env or {})
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
        err = None
    except CellExecutionError as exc:
        err = str(exc).strip().splitlines()[-1][:500] if str(exc).strip() else repr(exc)
    except Exception as exc:  # kernel died, timeout, ...
        err = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    return nb, err


def _export_html(nb, path: Path) -> None:
    try:
        from .demo_report import export_html
    except ImportError:  # pragma: no cover - report module not available
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        atomic_write_text(path, body)
        return
    export_html(nb, path)


def run_demo(out_dir: str | Path = "outputs/demo", only: str | None = None, fast: bool | None = None,
             timeout: int = 900) -> list[dict]:
    """Execute the curated notebooks and write HTML pages, ``summary.json`` and ``index.html``.

    An ``only`` that matches no notebook, or a ``timeout`` that is not a positive number of seconds, is an
    :class:`~workbench.errors.InputError` before anything runs (an earlier report in ``out_dir`` is kept).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InputError(f"timeout must be a positive number of seconds per cell, got {timeout!r}")
    notebooks = curated_notebooks(only)
    if not notebooks:
        names = ", ".join(p.stem for p in curated_notebooks()) or f"none in {NOTEBOOK_DIR}"
        raise InputError(f"no curated notebook name contains {only!r}; the notebooks are: {names}")
    out = Path(out_dir)
    if fast is None:
        from .config import fast_mode

        fast_mode()  # a WORKBENCH_FAST the notebooks cannot read fails here, not in every notebook
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="wb-headlines-") as hdir:
        env = {ENV_VAR: hdir}
        if fast is not None:
            env["WORKBENCH_FAST"] = "1" if fast else "0"
        for nb_path in notebooks:
            t0 = time.perf_counter()
            nb, err = execute_notebook(nb_path, timeout=timeout, env=env)
            seconds = time.perf_counter() - t0
            html = out / f"{nb_path.stem}.html"
            try:
                _export_html(nb, html)
            except Exception as exc:  # e.g. demo_report.OfflineError: the page would load from the network
                err = err or f"HTML export failed: {type(exc).__name__}: {exc}"[:500]
                html.unlink(missing_ok=True)  # an older run's page must not pass for this run's
            fig_file = Path(hdir) / f"{nb_path.stem}.json"
            figures = json.loads(fig_file.read_text()) if fig_file.exists() else {}
            results.append({"notebook": nb_path.stem, "ok": err is None, "seconds": round(seconds, 1),
                            "html": html.name if html.exists() else None, "figures": figures, "error": err})
    summary = {r["notebook"]: {k: v for k, v in r.items() if k != "notebook"} for r in results}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True, default=str))
    try:
        from .demo_report import write_index

        write_index(out, results)
    except ImportError:  # pragma: no cover
        pass
    return results


def format_table(results: list[dict]) -> str:
    """A short plain-text table of notebook, status, seconds and headline figures."""
    lines = [f"{'notebook':<22} {'status':<6} {'seconds':>8}  headline figures"]
    for r in results:
        figs = ", ".join(f"{k}={_fmt(v)}" for k, v in list(r["figures"].items())[:4])
        lines.append(f"{r['notebook']:<22} {'ok' if r['ok'] else 'FAIL':<6} {r['seconds']:>8.1f}  {figs}")
        if r["error"]:
            lines.append(f"{'':<22} error: {r['error']}")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in list(v.items())[:3]) + "}"
    return str(v)
