"""Benchmark ``synth``: build time of the synthetic Moon (first and cached call) and render speed.

Targets (issue 3): ``make_moon`` at 4 px/deg ≤ 60 s first, ≤ 2 s cached; ``render`` of a 2048 × 2048
DEM with shadows ≤ 2 s (measured when :mod:`workbench.synth.render` exists).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time

import numpy as np


def run(fast: bool = False) -> dict:
    """Time ``make_moon`` in a fresh cache (first call, cached call, Clementine resampling)."""
    from .instruments import resample_to_instrument
    from .moon import make_moon

    ppd = 1 if fast else 4
    out: dict = {"resolution_ppd": ppd}
    old = os.environ.get("WORKBENCH_DATA_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_DATA_DIR"] = tmp
        try:
            t0 = time.perf_counter()
            moon = make_moon(seed=0, resolution_ppd=ppd)
            out["make_moon_first_s"] = round(time.perf_counter() - t0, 3)
            t0 = time.perf_counter()
            moon = make_moon(seed=0, resolution_ppd=ppd)
            out["make_moon_cached_s"] = round(time.perf_counter() - t0, 3)
            out["geography"] = moon.attrs["geography"]
            t0 = time.perf_counter()
            resample_to_instrument(moon["reflectance"], "clementine_uvvis").compute()
            out["clementine_bands_global_s"] = round(time.perf_counter() - t0, 3)
        finally:
            if old is None:
                os.environ.pop("WORKBENCH_DATA_DIR", None)
            else:
                os.environ["WORKBENCH_DATA_DIR"] = old
    out["targets"] = {"make_moon_first_s": 60.0, "make_moon_cached_s": 2.0, "render_2048_s": 2.0}
    if importlib.util.find_spec("workbench.synth.render") is not None:
        from .render import render

        n = 512 if fast else 2048
        rng = np.random.default_rng(0)
        import xarray as xr
        from scipy import ndimage

        z = ndimage.gaussian_filter(rng.standard_normal((n, n)), 8) * 2000.0
        dem = xr.DataArray(z.astype("float32"), dims=("y", "x"),
                           coords={"y": np.arange(n)[::-1] * 100.0, "x": np.arange(n) * 100.0},
                           attrs={"units": "m", "pixel_size": 100.0})
        render(dem, sun_azimuth=135.0, sun_elevation=10.0, pixel_size=100.0)  # warm-up
        t0 = time.perf_counter()
        render(dem, sun_azimuth=135.0, sun_elevation=10.0, pixel_size=100.0)
        out[f"render_{n}_s"] = round(time.perf_counter() - t0, 3)
    return out
