"""Lunar Workbench: a Jupyter-based research workbench for AI-driven lunar remote sensing.

Quick start
-----------
>>> import workbench as wb
>>> wb.list_datasets()                       # doctest: +SKIP
>>> dem = wb.open_dataset("lola_ldem_4ppd")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from . import config, errors, geo, report  # noqa: E402  (cheap modules)
from .catalog import fetch, list_datasets, open_dataset, open_table  # noqa: E402

_LAZY = {"synth", "samples", "maps", "photometry", "calibration", "inversion", "topography", "analysis",
         "widgets", "catalog", "io", "bench", "export", "rasters"}

__all__ = ["config", "errors", "geo", "report", "fetch", "list_datasets", "open_dataset", "open_table",
           *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"workbench.{name}")
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
