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

from ..inversion.baselines import lucey_feo, lucey_tio2


def _trend(x, y):
    """Least-squares slope and intercept of y on x."""
    slope, icpt = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return round(float(slope), 3), round(float(icpt), 3)


def reality_check(moon=None, stations=None, n_pixels: int = 8000, seed: int = 0) -> dict:
    """Compare the synthetic Moon's composition–reflectance relation with the real Clementine stations.

    Both sides go through the same Lucey (2000) FeO/TiO2 algorithms: on the 36 Apollo/Luna stations
    (real Clementine spectra vs measured soil chemistry) and on ``n_pixels`` random synthetic pixels
    (synthetic spectra at the Clementine bands vs their known oxides). Also reported: R750 ranges
    (5–95 %) of high-FeO (> 13 wt%) and low-FeO (< 7 wt%) soils, and the least-squares trends of
    R950/R750 and R415/R750 against R750. ``synthetic_matched`` repeats the figures on composition
    analogues of the stations (mean of the 5 synthetic pixels nearest in FeO/TiO2 to each station),
    and ``matched_band_rmse`` is the RMS difference between their spectra and the real ones.

    Parameters
    ----------
    moon
        A :func:`~workbench.synth.moon.make_moon` dataset (default: seed 0, 1 px/deg, auto geography).
    stations
        The station table (default: ``workbench.open_table("clementine_sample_stations")``).
    """
    import pandas as pd

    from .instruments import resample_to_instrument
    from .moon import make_moon

    if moon is None:
        moon = make_moon(seed=0, resolution_ppd=1, cache=False)
    if stations is None:
        from ..catalog import open_table

        stations = open_table("clementine_sample_stations")
    rng = np.random.default_rng(seed)
    n_lat, n_lon = moon.sizes["lat"], moon.sizes["lon"]
    # area-uniform sampling, equatorward of 70° (as the Clementine mosaics used by Lucey 2000)
    lat = np.rad2deg(np.arcsin(rng.uniform(-np.sin(np.deg2rad(70)), np.sin(np.deg2rad(70)), n_pixels)))
    ii = np.clip(np.round((moon["lat"].values[0] - lat) / abs(float(moon["lat"][0] - moon["lat"][1]))), 0,
                 n_lat - 1).astype(int)
    jj = rng.integers(0, n_lon, n_pixels)
    pts = moon[["mode", "silicate_mg_number", "npfe", "FeO", "TiO2"]].isel(
        lat=xr_index(ii), lon=xr_index(jj))
    from .spectra import reflectance_from_modes

    refl = reflectance_from_modes(pts["mode"].load(), pts["silicate_mg_number"].load(), pts["npfe"].load())
    bands = resample_to_instrument(refl, "clementine_uvvis").compute()
    syn = pd.DataFrame({b: bands.sel(band=b).values for b in bands["band"].values})
    syn["FeO"], syn["TiO2"] = pts["FeO"].values, pts["TiO2"].values
    # composition-matched analogues: for every station the mean spectrum of the 5 synthetic pixels
    # closest in (FeO, TiO2), so that trends are compared on the same composition mix
    from scipy.spatial import cKDTree

    tree = cKDTree(np.c_[syn["FeO"], syn["TiO2"]])
    dist, idx = tree.query(np.c_[stations["FeO_wt_pct"], stations["TiO2_wt_pct"]], k=5)
    bnames = list(bands["band"].values)
    matched = pd.DataFrame({b: syn[b].to_numpy()[idx].mean(axis=1) for b in bnames})
    matched["FeO"] = syn["FeO"].to_numpy()[idx].mean(axis=1)
    matched["TiO2"] = syn["TiO2"].to_numpy()[idx].mean(axis=1)
    out = {"matched_band_rmse": {b: round(float(np.sqrt(np.mean((matched[b] - stations[b]) ** 2))), 4)
                                 for b in bnames},
           "matched_composition_distance_wt_pct": round(float(dist.mean()), 3)}
    for label, df, feo, tio2 in (("real", stations, stations["FeO_wt_pct"], stations["TiO2_wt_pct"]),
                                 ("synthetic", syn, syn["FeO"], syn["TiO2"]),
                                 ("synthetic_matched", matched, matched["FeO"], matched["TiO2"])):
        f, t = lucey_feo(df["R750"].to_numpy(), df["R950"].to_numpy()), lucey_tio2(df["R415"].to_numpy(),
                                                                                    df["R750"].to_numpy())
        feo, tio2 = np.asarray(feo, float), np.asarray(tio2, float)
        hi, lo = feo > 13, feo < 7
        r750 = df["R750"].to_numpy()
        out[label] = {
            "n": int(len(df)),
            "lucey_feo_rmse": round(float(np.sqrt(np.mean((f - feo) ** 2))), 3),
            "lucey_tio2_rmse": round(float(np.sqrt(np.mean((t - tio2) ** 2))), 3),
            "lucey_tio2_rmse_mare": round(float(np.sqrt(np.mean((t[hi] - tio2[hi]) ** 2))), 3),
            "r750_high_feo_p5_p95": [round(float(v), 4) for v in np.percentile(r750[hi], [5, 95])],
            "r750_low_feo_p5_p95": [round(float(v), 4) for v in np.percentile(r750[lo], [5, 95])],
            "trend_r950_r750_vs_r750": _trend(r750, df["R950"] / df["R750"]),
            "trend_r415_r750_vs_r750": _trend(r750, df["R415"] / df["R750"]),
            "r415_r750_p5_p95": [round(float(v), 3) for v in np.percentile(df["R415"] / df["R750"], [5, 95])],
            "r950_r750_p5_p95": [round(float(v), 3) for v in np.percentile(df["R950"] / df["R750"], [5, 95])],
        }
    return out


def xr_index(idx):
    """Vectorised (pointwise) indexer along a new ``pixel`` dim."""
    import xarray as xr

    return xr.DataArray(idx, dims="pixel")


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
    out["reality_check"] = reality_check()
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
