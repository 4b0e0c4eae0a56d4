"""Benchmark ``rasters``: warping projected mosaics onto latitude/longitude (:func:`workbench.rasters.warp_to_latlon`).

Figures, measured in one run on a lazily made south-polar stereographic map at 100 m/px (never held whole):

* ``bilinear_mpix_per_s``: cells of the new grid per second, bilinear, at 64 px/deg;
* ``average_source_mpix_per_s``: map pixels per second averaged onto 16 px/deg (each cell about 19 x 19 of them);
* ``peak_rss_gb`` beside ``map_gb`` (the map's size in memory, were it loaded): the warp reads block by block;
* where the real-data mirror (or a network source) has them, the accuracy of both methods against independent
  products: the LOLA 1600 m south-polar DEM onto 4 px/deg against the 4 px/deg global LOLA DEM (RMSE in m,
  75-85 deg S), and the LROC WAC 400 m south-polar mosaic onto 4 px/deg against the global WAC mosaic averaged
  into the same cells (correlation, 72-85 deg S). ``null`` with a reason where a dataset is unavailable.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import xarray as xr


def _polar_map(n: int, dx: float = 100.0, chunk: int = 2000) -> xr.DataArray:
    """An ``n`` x ``n`` south-polar stereographic map of ``dx`` metre pixels, uniform noise, made lazily."""
    import dask.array as dsa

    c = (np.arange(n) - (n - 1) / 2) * dx
    data = dsa.random.RandomState(0).random_sample((n, n), chunks=chunk).astype("float32")
    return xr.DataArray(data, dims=("y", "x"), coords={"y": c[::-1], "x": c}, name="noise",
                        attrs={"crs": "IAU_2015:30135", "units": "1"})


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def _band_rows(da: xr.DataArray, south: float, north: float) -> np.ndarray:
    return ((da.lat < north) & (da.lat > south)).values


def _lola_rmse() -> dict:
    """RMSE (m) of the south-polar LOLA DEM warped to 4 px/deg against the global 4 px/deg LOLA DEM."""
    from .catalog import open_dataset
    from .rasters import dataset_to_latlon

    glob = open_dataset("lola_ldem_4ppd")["elevation"]
    south = open_dataset("lola_ldem_south_1600m")
    out = {}
    for method in ("average", "bilinear"):
        w = dataset_to_latlon(south, 4, resampling=method)["elevation"].load()
        diff = (w - glob.sel(lat=w.lat, lon=w.lon)).values[_band_rows(w, -85, -75)]
        out[method] = round(float(np.sqrt(np.nanmean(diff**2))), 1)
    return out


def _wac_correlation() -> dict:
    """Correlation of the WAC south-polar mosaic warped to 4 px/deg with the global WAC mosaic's cell means."""
    from .catalog import open_dataset
    from .rasters import dataset_to_latlon

    ppd = 4
    ref = open_dataset("lroc_wac_global")["brightness"].load()
    glat, glon = np.meshgrid(ref.lat.values, ref.lon.values, indexing="ij")
    cell = (np.floor((90 - glat) * ppd) * 360 * ppd + np.floor((glon + 180) % 360 * ppd)).astype(int).ravel()
    n = 180 * ppd * 360 * ppd
    means = (np.bincount(cell, ref.values.ravel(), n) / np.maximum(np.bincount(cell, minlength=n), 1)).reshape(
        180 * ppd, 360 * ppd)
    polar = open_dataset("lroc_wac_south_400m")
    out = {}
    for method in ("average", "bilinear"):
        w = dataset_to_latlon(polar, ppd, resampling=method)["brightness"].load()
        rows = np.floor((90 - w.lat.values) * ppd).astype(int)
        cols = np.floor((w.lon.values + 180) % 360 * ppd).astype(int)
        ok = _band_rows(w, -85, -72)[:, None] & np.isfinite(w.values)
        out[method] = round(float(np.corrcoef(w.values[ok], means[np.ix_(rows, cols)][ok])[0, 1]), 4)
    return out


def _real(fn) -> dict:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a dataset not in a mirror and no network: say why, keep going
        return {"average": None, "bilinear": None, "unavailable": f"{type(exc).__name__}: {exc}"[:300]}


def run(fast: bool = False, size: int | None = None) -> dict:
    """Warp throughput and memory on a lazy 100 m polar map (``size``² pixels; default 4000² fast, 16 000² full),
    and the two methods' accuracy on real polar LOLA and WAC mosaics where available."""
    from .rasters import warp_to_latlon

    n = size or (4000 if fast else 16000)
    big = _polar_map(n)
    rss0 = _rss_gb()
    t0 = time.perf_counter()
    bil = warp_to_latlon(big, ppd=64, resampling="bilinear")
    finite_bil = int(np.isfinite(bil.data).sum().compute())
    t_bil = time.perf_counter() - t0
    t0 = time.perf_counter()
    avg = warp_to_latlon(big, ppd=16)
    mean_avg = float(np.nanmean(avg.data).compute())
    t_avg = time.perf_counter() - t0
    return {
        "map_pixels": n * n,
        "map_gb": round(n * n * 4 / 1e9, 3),
        "bilinear_cells": int(bil.size),
        "bilinear_finite_cells": finite_bil,
        "bilinear_seconds": round(t_bil, 2),
        "bilinear_mpix_per_s": round(bil.size / t_bil / 1e6, 2),
        "average_resampling": avg.attrs["resampling"],
        "average_cells": int(avg.size),
        "average_seconds": round(t_avg, 2),
        "average_source_mpix_per_s": round(n * n / t_avg / 1e6, 2),
        "average_mean": round(mean_avg, 4),  # uniform noise: 0.5
        "rss_before_gb": round(rss0, 3),
        "peak_rss_gb": round(_rss_gb(), 3),
        "lola_south_4ppd_rmse_m": _real(_lola_rmse),
        "wac_south_4ppd_correlation": _real(_wac_correlation),
    }
