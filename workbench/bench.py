"""Benchmark suite: ``workbench bench NAME [--json PATH] [--fast]``.

Each benchmark is a function ``run(fast: bool = False) -> dict`` returning JSON-serialisable figures,
measured in one run (ratios against e.g. the machine's matmul peak are taken in the same process).
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from .errors import InputError
from .io import atomic_write_text, json_safe

#: name -> "module:function"; each module adds its own line.
BENCHMARKS: dict[str, str] = {
    "widgets": "workbench.widgets.bench:run",
    "inversion": "workbench.inversion.bench:run",
    "synth": "workbench.synth.bench:run",
    "topography": "workbench.topography.bench:run",
    "calibration": "workbench.calibration:bench",
    "prospectivity": "workbench.analysis.prospectivity:bench",
    "rasters": "workbench.rasters_bench:run",
}


def get_benchmark(name: str) -> Callable[..., dict]:
    """Resolve a benchmark by name, with a helpful error for unknown names."""
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}")
    mod, func = BENCHMARKS[name].split(":")
    return getattr(importlib.import_module(mod), func)


def run_benchmark(name: str, json_path: str | Path | None = None, fast: bool = False) -> dict:
    """Run one benchmark, add wall time and write the JSON atomically when ``json_path`` is given.

    ``fast`` (or ``WORKBENCH_FAST=1``, :func:`workbench.config.fast_mode`) runs the smaller problem sizes;
    the result records which (``"fast": true|false``).
    """
    from .config import fast_mode

    fast = bool(fast or fast_mode())
    t0 = time.perf_counter()
    result = get_benchmark(name)(fast=fast)
    result = {"benchmark": name, "fast": fast, **result, "wall_seconds": round(time.perf_counter() - t0, 3)}
    if json_path:
        atomic_write_text(json_path, to_json(result))
    return result


def to_json(result: dict) -> str:
    """A benchmark's figures as strict JSON (a NaN or infinite figure is null: a bare NaN is no JSON)."""
    return json.dumps(json_safe(result), indent=2, sort_keys=True, default=float, allow_nan=False)
