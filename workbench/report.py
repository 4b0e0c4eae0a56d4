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


def headline(notebook: str, **figures: Any):
    """Record a notebook's headline figures and return them as a small pandas table for display.

    When ``WORKBENCH_HEADLINE_DIR`` is set (``workbench demo`` sets it) the figures are merged into
    ``<dir>/<notebook>.json``.
    """
    import pandas as pd

    figures = _clean(figures)
    out = os.environ.get(ENV_VAR)
    if out:
        p = Path(out) / f"{notebook}.json"
        old = json.loads(p.read_text()) if p.exists() else {}
        old.update(figures)
        atomic_write_text(p, json.dumps(json_safe(old), indent=2, sort_keys=True, allow_nan=False))
    return pd.DataFrame({"figure": list(figures), "value": [figures[k] for k in figures]}).set_index("figure")
