"""Headline figures reported by curated notebooks and collected by ``workbench demo``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .io import atomic_write_text, json_safe

ENV_VAR = "WORKBENCH_HEADLINE_DIR"


def _clean(v: Any) -> Any:
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _rows(name: str, value: Any):
    """(row name, value) pairs of one figure: a dict gives one row per key, ``name · key`` (nested dicts too)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _rows(f"{name} · {k}", v)
    else:
        yield name, value


def headline_table(figures: dict[str, Any]):
    """The figures as a one-column pandas table (index ``figure``, column ``value``) for display.

    The column holds each value as it is (``dtype=object``), so counts show as whole numbers
    (``11``, not ``11.000``) and every float keeps its own rounding instead of the widest one's.
    A figure that is a dict (e.g. an RMSE per method) gets one row per key, named ``figure · key``,
    so that no value is cut off behind pandas' column-width limit.

    Parameters
    ----------
    figures
        Figure name -> value (numbers, strings, lists or dicts).

    Returns
    -------
    pandas.DataFrame
        One row per figure (per key of a dict figure), in the order given.

    Examples
    --------
    >>> headline_table({"n": 3, "rmse": {"gbm": 0.5, "cnn": 0.25}})["value"].tolist()
    [3, 0.5, 0.25]
    """
    import pandas as pd

    rows = [row for name, value in figures.items() for row in _rows(str(name), value)]
    values = pd.Series([v for _, v in rows], index=pd.Index([n for n, _ in rows], name="figure"), dtype=object,
                       name="value")
    return values.to_frame()


def headline(notebook: str, **figures: Any):
    """Record a notebook's headline figures and return them as a small pandas table for display.

    When ``WORKBENCH_HEADLINE_DIR`` is set (``workbench demo`` sets it) the figures are merged into
    ``<dir>/<notebook>.json``; the values written there are the values given (the table only changes
    how they are shown, see :func:`headline_table`).
    """
    figures = _clean(figures)
    out = os.environ.get(ENV_VAR)
    if out:
        p = Path(out) / f"{notebook}.json"
        old = json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}
        old.update(figures)
        atomic_write_text(p, json.dumps(json_safe(old), indent=2, sort_keys=True, allow_nan=False))
    return headline_table(figures)
