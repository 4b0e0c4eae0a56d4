"""South Pole-Aitken basin: radial profiles from the basin centre and change-point boundaries.

The SPA impact excavated deep, magnesian material: remote sensing shows a central Fe-rich, high-Ca
pyroxene zone, an annulus dominated by Mg-rich (low-Ca) pyroxene, and feldspathic highlands outside
(Moriarty & Pieters 2018). Those zones are concentric, so area-weighted **radial profiles** of FeO,
Mg# and elevation against great-circle distance from the centre show them as steps; the steps'
positions are found by **change-point detection**: the piecewise-constant least-squares fit with
``k`` breaks (exact dynamic programming, Bellman 1961, via the ``ruptures`` package; Truong et al.
2020), or with the number of breaks chosen by a penalised cost (PELT, Killick et al. 2012).

A change-point's uncertainty comes from a moving-block residual bootstrap of the profile (Künsch
1989): the fitted steps plus resampled blocks of residuals are re-segmented and the spread of the
re-detected radii gives a standard error and a percentile interval. ``radius_km`` of a break is the
edge between the last bin of one segment and the first of the next, so it is only resolved to a bin:
a boundary anywhere within half a bin of that edge gives the same profile break. Every radius
interval is therefore widened by ``bin_km / 2`` on each side (and made to contain ``radius_km``), and
the standard error includes the rounding variance ``bin_km**2 / 12``; a noise-free profile gets an
interval one bin wide, never of zero width.

The basin centre is read from the basin list (``workbench.open_table("lunar_basins")``) when it has
the basin; the bundled list (Neumann et al. 2015 via moonpies) does not include SPA, so
:func:`basin_centre` then falls back to the centre of the best-fit ellipse of Garrick-Bethell &
Zuber (2009): 53° S, 191° E (-169°), semi-axes ~1200 x 1000 km, and says so in ``source``.

References
----------
Garrick-Bethell, I. & Zuber, M. T. (2009), Elliptical structure of the lunar South Pole-Aitken
basin, Icarus 204:399-408.
Moriarty, D. P. & Pieters, C. M. (2018), The character of South Pole-Aitken basin: patterns of
surface and subsurface composition, JGR Planets 123:729-747.
Truong, C., Oudre, L. & Vayatis, N. (2020), Selective review of offline change point detection
methods, Signal Processing 167:107299.
Killick, R., Fearnhead, P. & Eckley, I. A. (2012), Optimal detection of changepoints with a linear
computational cost, JASA 107:1590-1598.
Künsch, H. R. (1989), The jackknife and the bootstrap for general stationary observations,
Ann. Stat. 17:1217-1241.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..geo import MOON_RADIUS_KM, area_weights, check_latlon, destination_point, great_circle_distance, wrap_lon_180
from ..validate import is_whole_number
from .asymmetry import _as_mask, _check_grid

__all__ = [
    "SPA_GARRICK_BETHELL_2009",
    "basin_centre",
    "radial_profile",
    "detect_change_points",
    "sector_change_points",
    "circle_path",
    "boundary_path",
    "spa_boundaries",
    "boundary_table",
]

#: SPA best-fit ellipse (Garrick-Bethell & Zuber 2009): centre and semi-axes (km).
SPA_GARRICK_BETHELL_2009: dict = {
    "name": "South Pole-Aitken",
    "lat": -53.0,
    "lon": -169.0,
    "semi_major_km": 1200.0,
    "semi_minor_km": 1000.0,
    "source": "Garrick-Bethell & Zuber (2009), Icarus 204:399 (best-fit ellipse centre)",
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def basin_centre(name: str = "South Pole-Aitken", basins: pd.DataFrame | None = None) -> dict:
    """Centre (lat, lon in -180...180) of a basin from the basin list, with its source.

    Parameters
    ----------
    name
        Basin name; matched ignoring case, spaces and punctuation.
    basins
        Table with ``name``, ``lat`` and ``lon`` (or ``lon_360``); default
        ``workbench.open_table("lunar_basins")``.
    """
    is_spa = _key(name) in {_key("South Pole-Aitken"), "spa"}
    if basins is None:
        from ..catalog import open_table
        from ..errors import DataUnavailableError

        try:
            basins = open_table("lunar_basins")
        except DataUnavailableError:
            if not is_spa:
                raise
            # offline with no mirror: SPA still has its published centre, so the analysis can go on
            return {**SPA_GARRICK_BETHELL_2009,
                    "source": SPA_GARRICK_BETHELL_2009["source"] + " (basin list unavailable offline)"}
    lon_col = "lon" if "lon" in basins.columns else "lon_360"
    if "name" not in basins.columns or "lat" not in basins.columns or lon_col not in basins.columns:
        raise InputError(f"basin table needs columns name, lat, lon; found {list(basins.columns)}")
    hit = basins[[_key(str(n)) == _key(name) for n in basins["name"]]]
    if len(hit):
        row = hit.iloc[0]
        out = {"name": str(row["name"]), "lat": float(row["lat"]), "lon": float(wrap_lon_180(row[lon_col])),
               "source": "basin list (workbench.open_table('lunar_basins'))"}
        for k in ("main_ring_diameter_km", "inner_ring_diameter_km"):
            if k in row and pd.notna(row[k]):
                out[k] = float(row[k])
        return out
    if is_spa:
        return dict(SPA_GARRICK_BETHELL_2009)
    raise InputError(
        f"basin {name!r} is not in the basin list; choose one of: {', '.join(map(str, basins['name']))}"
    )


def _check_centre(centre_lat, centre_lon) -> None:
    if np.ndim(centre_lat) or np.ndim(centre_lon) or not (np.isfinite(centre_lat) and np.isfinite(centre_lon)):
        raise InputError(f"the centre must be two finite numbers (lat, lon) in degrees, got ({centre_lat!r}, "
                         f"{centre_lon!r})")
    check_latlon(centre_lat, centre_lon)


def _distance_edges(bin_km, max_km) -> np.ndarray:
    """Bin edges 0, bin_km, ... up to ``max_km`` rounded up to a whole bin (at most the antipode)."""
    if not (np.ndim(bin_km) == 0 and np.ndim(max_km) == 0 and np.isfinite(bin_km) and np.isfinite(max_km)
            and 0 < bin_km < max_km):
        raise InputError(f"need finite 0 < bin_km < max_km (km), got bin_km={bin_km}, max_km={max_km}")
    n_max = int(np.ceil(np.pi * MOON_RADIUS_KM / bin_km))  # no distance on the Moon is larger
    nb = min(int(np.ceil(max_km / bin_km - 1e-9)), n_max)
    return np.arange(nb + 1) * float(bin_km)


def _check_int(name: str, value, low: int, hint: str) -> None:
    if not is_whole_number(value) or value < low:
        raise InputError(f"{name} must be a whole number >= {low}, got {value!r}; {hint}")


def _check_level(level) -> None:
    if not (np.ndim(level) == 0 and 0 < level < 1):
        raise InputError(f"confidence level must be in (0, 1), e.g. 0.95; got {level}")


#: Fewest bootstrap replicates :func:`detect_change_points` accepts (use >= 200 for a 95% interval).
MIN_CP_BOOT = 20


def radial_profile(
    da: xr.DataArray,
    centre_lat: float,
    centre_lon: float,
    *,
    bin_km: float = 50.0,
    max_km: float = 3000.0,
    mask=None,
) -> xr.Dataset:
    """Area-weighted radial profile of a global (lat, lon) variable around a centre.

    Parameters
    ----------
    da
        Global variable on (lat, lon).
    centre_lat, centre_lon
        Centre (degrees).
    bin_km, max_km
        Width and outer edge of the great-circle distance bins (km). A ``max_km`` that is not a
        multiple of ``bin_km`` is rounded **up** to the next bin edge (so every bin is a full ring and
        its label is its true centre); distances beyond the antipode (pi R) are dropped.
        ``attrs["max_km"]`` holds the edge used.
    mask
        Optional boolean (lat, lon) mask of cells to use (e.g. highlands only). A DataArray mask is
        aligned to ``da`` by its coordinates (any row/column order, 0...360 or -180...180 longitudes);
        NaN counts as outside. A mask on another grid raises :class:`InputError`.

    Returns
    -------
    xarray.Dataset
        Dim ``distance_km`` (bin centres): ``mean`` (area-weighted), ``std``, ``sem`` (std over the
        square root of the number of cells, a lower bound: cells are correlated), ``area_km2``,
        ``n_cells``; ``attrs`` hold the centre, the variable's units, ``bin_km`` and ``max_km``.

    Raises
    ------
    InputError
        If ``da`` is not on (lat, lon) or has latitudes outside [-90, 90], the centre is out of range
        (e.g. latitude and longitude swapped), the bins are not ``0 < bin_km < max_km``, or the mask
        is on another grid or not boolean.
    """
    da = _check_grid(da, "radial profiles")
    _check_centre(centre_lat, centre_lon)
    edges = _distance_edges(bin_km, max_km)
    lat2, lon2 = np.meshgrid(da["lat"].values, da["lon"].values, indexing="ij")
    dist = great_circle_distance(lat2, lon2, centre_lat, centre_lon)
    x = da.values.astype(float)
    w = area_weights(da).values
    ok = np.isfinite(x) & (dist < edges[-1])
    if mask is not None:
        ok &= _as_mask(mask, da, "mask")
    nb = edges.size - 1
    b = np.clip(np.digitize(dist[ok], edges) - 1, 0, nb - 1)
    sw = np.bincount(b, w[ok], nb)
    swx = np.bincount(b, w[ok] * x[ok], nb)
    swxx = np.bincount(b, w[ok] * x[ok] ** 2, nb)
    n = np.bincount(b, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = swx / sw
        std = np.sqrt(np.maximum(swxx / sw - mean**2, 0.0))
        sem = std / np.sqrt(n)
    units = da.attrs.get("units", "")
    out = xr.Dataset(
        {"mean": ("distance_km", mean), "std": ("distance_km", std), "sem": ("distance_km", sem),
         "area_km2": ("distance_km", sw), "n_cells": ("distance_km", n)},
        coords={"distance_km": 0.5 * (edges[1:] + edges[:-1])},
    )
    for v in ("mean", "std", "sem"):
        out[v].attrs["units"] = units
    out["distance_km"].attrs["units"] = "km"
    out.attrs.update(variable=str(da.name), units=units, centre_lat=float(centre_lat),
                     centre_lon=float(centre_lon), bin_km=float(bin_km), max_km=float(edges[-1]))
    return out


def _segment(signal: np.ndarray, n_bkps: int | None, min_size: int, pen: float | None) -> list[int]:
    import ruptures as rpt

    sig = signal.reshape(-1, 1)
    if n_bkps is None:
        algo = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(sig)
        return algo.predict(pen=pen)[:-1]
    algo = rpt.Dynp(model="l2", min_size=min_size, jump=1).fit(sig)
    return algo.predict(n_bkps=n_bkps)[:-1]


def detect_change_points(
    profile: xr.DataArray,
    n_bkps: int | None = 1,
    *,
    min_size: int = 3,
    pen: float | None = None,
    n_boot: int = 200,
    block_len: int = 3,
    level: float = 0.95,
    seed: int = 0,
) -> xr.Dataset:
    """Change points of a 1-D profile by piecewise-constant least squares, with bootstrap uncertainty.

    Parameters
    ----------
    profile
        1-D DataArray along ``distance_km`` (e.g. ``radial_profile(...)["mean"]``); NaN bins dropped.
    n_bkps
        Number of breaks (exact dynamic programming). ``None`` chooses it with PELT and penalty
        ``pen`` (default ``2 * sigma^2 * log(n)``, with sigma from the median absolute deviation of
        first differences; a BIC-type penalty).
    min_size
        Minimum segment length (bins).
    n_boot, block_len, level, seed
        Moving-block residual bootstrap: replicates (whole number >= :data:`MIN_CP_BOOT`; 200 or more
        for a stable 95% interval), residual block length (bins), interval level in (0, 1), random seed.

    Returns
    -------
    xarray.Dataset
        Dim ``change``: ``radius_km``, ``radius_se_km``, ``radius_ci_low``/``radius_ci_high``,
        ``level_before``, ``level_after`` (segment means either side, units of the profile).
        ``attrs["bin_km"]`` is the profile's bin width (the spacing of its coordinate).

    Notes
    -----
    A break is only located to a bin edge, so ``radius_ci_low``/``radius_ci_high`` are the
    bootstrap percentile interval (extended to contain ``radius_km``) widened by ``bin_km / 2`` on
    each side, and ``radius_se_km`` is ``sqrt(sd_boot**2 + bin_km**2 / 12)`` (bootstrap spread plus
    the variance of rounding to a bin edge).

    Raises
    ------
    InputError
        On a profile that is not 1-D or too short, ``n_bkps < 1``, ``min_size < 1``, ``block_len < 1``,
        ``n_boot`` below :data:`MIN_CP_BOOT` or not whole, or ``level`` outside (0, 1).
    """
    if profile.ndim != 1:
        raise InputError(f"detect_change_points needs a 1-D profile, got dims {profile.dims}")
    if n_bkps is not None:
        _check_int("n_bkps", n_bkps, 1, "use None to choose the number of breaks automatically")
    _check_int("min_size", min_size, 1, "it is the shortest segment in bins, e.g. 3")
    _check_int("block_len", block_len, 1, "it is the residual block length in bins, e.g. 3")
    _check_int("n_boot", n_boot, MIN_CP_BOOT, "too few replicates for a percentile interval; use >= 200")
    _check_level(level)
    dim = profile.dims[0]
    r_all = np.asarray(profile[dim].values, dtype=float)
    bin_w = float(np.median(np.abs(np.diff(r_all)))) if r_all.size > 1 else 0.0
    p = profile.dropna(dim)
    y = p.values.astype(float)
    r = p[dim].values.astype(float)
    n = y.size
    need = (1 if n_bkps is None else n_bkps + 1) * min_size
    if n < max(need, 2 * min_size):
        raise InputError(
            f"profile has {n} valid bins, too few for {n_bkps} change points with min_size={min_size}; "
            "use a smaller bin width or a larger max distance"
        )
    sigma = 1.4826 * np.median(np.abs(np.diff(y) - np.median(np.diff(y)))) / np.sqrt(2.0)
    if pen is None:
        pen = 2.0 * max(sigma, 1e-12 * max(1.0, np.abs(y).max())) ** 2 * np.log(n)
    bk = _segment(y, n_bkps, min_size, pen)

    def edges_of(bks):
        return np.array([0.5 * (r[b - 1] + r[b]) for b in bks])

    def fit_of(bks):
        f = np.empty(n)
        for s, e in zip([0, *bks], [*bks, n], strict=True):
            f[s:e] = y[s:e].mean()
        return f

    fit = fit_of(bk)
    radii = edges_of(bk)
    k = len(bk)
    boot = np.full((n_boot, k), np.nan)
    if k:
        rng = np.random.default_rng(seed)
        resid = y - fit
        L = max(1, min(block_len, n))
        for t in range(n_boot):
            starts = rng.integers(0, n - L + 1, size=int(np.ceil(n / L)))
            e = np.concatenate([resid[s : s + L] for s in starts])[:n]
            bk_t = _segment(fit + e, k if n_bkps is not None else None, min_size, pen)
            if len(bk_t) == k:
                boot[t] = edges_of(bk_t)
            elif len(bk_t) > 0:  # PELT found a different number: match each break to the nearest
                et = edges_of(bk_t)
                boot[t] = et[np.abs(et[None, :] - radii[:, None]).argmin(axis=1)]
    a = (1 - level) / 2
    segs = [0, *bk, n]
    units = profile.attrs.get("units", "")
    if k:
        found = np.isfinite(boot).any(axis=0)
        b_ok = np.where(found[None, :], boot, radii[None, :])  # a break never re-found: its own radius
        se = np.sqrt(np.nanvar(b_ok, axis=0) + bin_w**2 / 12.0)
        ci_lo = np.minimum(np.nanquantile(b_ok, a, axis=0), radii) - bin_w / 2
        ci_hi = np.maximum(np.nanquantile(b_ok, 1 - a, axis=0), radii) + bin_w / 2
    else:
        se = ci_lo = ci_hi = np.array([])
    out = xr.Dataset(
        {
            "radius_km": ("change", radii),
            "radius_se_km": ("change", se),
            "radius_ci_low": ("change", ci_lo),
            "radius_ci_high": ("change", ci_hi),
            "level_before": ("change", [y[segs[i] : segs[i + 1]].mean() for i in range(k)]),
            "level_after": ("change", [y[segs[i + 1] : segs[i + 2]].mean() for i in range(k)]),
        },
        coords={"change": np.arange(k)},
    )
    for v in ("radius_km", "radius_se_km", "radius_ci_low", "radius_ci_high"):
        out[v].attrs["units"] = "km"
    out["level_before"].attrs["units"] = units
    out["level_after"].attrs["units"] = units
    out["fit"] = xr.DataArray(fit, dims=(dim,), coords={dim: r}, attrs={"units": units})
    out.attrs.update(method=f"piecewise-constant least squares ({'PELT' if n_bkps is None else 'Dynp'}, "
                     f"ruptures), moving-block residual bootstrap ({n_boot}, block {block_len} bins)",
                     penalty=float(pen), level=level, bin_km=bin_w,
                     variable=str(profile.attrs.get("variable", p.name)))
    return out


def sector_change_points(
    da: xr.DataArray,
    centre_lat: float,
    centre_lon: float,
    n_bkps: int = 1,
    *,
    n_sectors: int = 12,
    bin_km: float = 50.0,
    max_km: float = 2000.0,
    min_size: int = 3,
    level: float = 0.95,
) -> xr.Dataset:
    """Change-point radii in azimuthal sectors around the centre, and their spread.

    A basin is not a circle (SPA is elliptical, Garrick-Bethell & Zuber 2009), so a single radius
    hides real azimuthal variation that the residual bootstrap of one azimuthally averaged profile
    cannot see. Here the profile is computed separately in ``n_sectors`` equal azimuth sectors
    (bearing clockwise from north), change points are found in each, and the spread of the
    per-sector radii gives the boundary's shape and an interval for its mean radius
    (``radius_ci_*``: Student-t interval of the sector mean, widened by ``bin_km / 2`` on each side
    because every sector radius is rounded to a bin edge; sectors are treated as independent, which
    neighbouring sectors are not quite). ``max_km`` is rounded up to a whole bin as in
    :func:`radial_profile`.

    Raises
    ------
    InputError
        On a bad grid or centre (see :func:`radial_profile`), ``n_bkps``/``min_size`` < 1,
        ``n_sectors`` < 3, ``level`` outside (0, 1), or fewer than 3 usable sectors.

    Returns
    -------
    xarray.Dataset
        ``radius_km`` (sector, change) with coords ``azimuth_deg`` (sector centres); per change:
        ``mean_radius_km``, ``sector_sd_km``, ``radius_ci_low``/``radius_ci_high``.
    """
    from scipy import stats

    _check_int("n_bkps", n_bkps, 1, "the number of breaks per sector, e.g. 1")
    _check_int("min_size", min_size, 1, "it is the shortest segment in bins, e.g. 3")
    _check_int("n_sectors", n_sectors, 3, "e.g. 12")
    _check_level(level)
    da = _check_grid(da, "sector change points")
    _check_centre(centre_lat, centre_lon)
    edges = _distance_edges(bin_km, max_km)
    lat2, lon2 = np.meshgrid(da["lat"].values, da["lon"].values, indexing="ij")
    p1, p2 = np.deg2rad(centre_lat), np.deg2rad(lat2)
    dl = np.deg2rad(lon2 - centre_lon)
    brg = np.rad2deg(np.arctan2(np.sin(dl) * np.cos(p2),
                                np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl))) % 360.0
    width = 360.0 / n_sectors
    sector = np.floor(brg / width).astype(int) % n_sectors
    radii = np.full((n_sectors, n_bkps), np.nan)
    dist = great_circle_distance(lat2, lon2, centre_lat, centre_lon)
    x = da.values.astype(float)
    w = area_weights(da).values
    nb = edges.size - 1
    r = 0.5 * (edges[1:] + edges[:-1])
    ok_all = np.isfinite(x) & (dist < edges[-1])
    b_all = np.clip(np.digitize(dist, edges) - 1, 0, nb - 1)
    idx = sector * nb + b_all
    sw = np.bincount(idx[ok_all], w[ok_all], n_sectors * nb).reshape(n_sectors, nb)
    swx = np.bincount(idx[ok_all], (w * x)[ok_all], n_sectors * nb).reshape(n_sectors, nb)
    for k in range(n_sectors):
        good = sw[k] > 0
        if good.sum() < (n_bkps + 1) * min_size:
            continue
        y, rk = swx[k, good] / sw[k, good], r[good]
        bk = _segment(y, n_bkps, min_size, None)
        radii[k] = [0.5 * (rk[b - 1] + rk[b]) for b in bk]
    ok = np.isfinite(radii[:, 0])
    if ok.sum() < 3:
        raise InputError("fewer than 3 sectors had enough valid bins; use fewer sectors or a larger max_km")
    mean = np.nanmean(radii, axis=0)
    sd = np.nanstd(radii, axis=0, ddof=1)
    t = stats.t.ppf(0.5 + level / 2, ok.sum() - 1)
    half = t * sd / np.sqrt(ok.sum()) + 0.5 * float(bin_km)
    out = xr.Dataset(
        {
            "radius_km": (("azimuth_deg", "change"), radii),
            "mean_radius_km": ("change", mean),
            "median_radius_km": ("change", np.nanmedian(radii, axis=0)),
            "sector_sd_km": ("change", sd),
            "radius_ci_low": ("change", mean - half),
            "radius_ci_high": ("change", mean + half),
        },
        coords={"azimuth_deg": (np.arange(n_sectors) + 0.5) * width, "change": np.arange(n_bkps)},
    )
    for v in out.data_vars:
        out[v].attrs["units"] = "km"
    out["azimuth_deg"].attrs["units"] = "deg"
    out.attrs.update(centre_lat=float(centre_lat), centre_lon=float(centre_lon), n_sectors=n_sectors,
                     level=level, variable=str(da.name), bin_km=float(bin_km), max_km=float(edges[-1]),
                     method="per-sector piecewise-constant least squares (Dynp, ruptures); t interval")
    return out


def boundary_path(centre_lat: float, centre_lon: float, azimuth_deg, radius_km) -> pd.DataFrame:
    """Closed boundary through per-sector radii (linear in azimuth), NaN-broken at ±180° longitude."""
    az = np.asarray(azimuth_deg, dtype=float)
    r = np.asarray(radius_km, dtype=float)
    ok = np.isfinite(r)
    if ok.sum() < 3:
        raise InputError("need at least 3 finite sector radii to draw a boundary")
    az, r = az[ok], r[ok]
    fine = np.linspace(0.0, 360.0, 361)
    rf = np.interp(fine, az, r, period=360.0)
    lat, lon = destination_point(centre_lat, centre_lon, fine, rf)
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    jumps = np.nonzero(np.abs(np.diff(lon)) > 180.0)[0]
    return pd.DataFrame({"lon": np.insert(lon, jumps + 1, np.nan), "lat": np.insert(lat, jumps + 1, np.nan)})


def circle_path(centre_lat: float, centre_lon: float, radius_km: float, n: int = 361) -> pd.DataFrame:
    """Points (``lon``, ``lat``) of a small circle on the Moon, with NaN rows where it crosses ±180°.

    Suitable for drawing with ``holoviews.Path`` on a -180...180 map.
    """
    if radius_km <= 0:
        raise InputError(f"radius_km must be positive, got {radius_km}")
    az = np.linspace(0.0, 360.0, n)
    lat, lon = destination_point(centre_lat, centre_lon, az, radius_km)
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    jumps = np.nonzero(np.abs(np.diff(lon)) > 180.0)[0]
    lat = np.insert(lat, jumps + 1, np.nan)
    lon = np.insert(lon, jumps + 1, np.nan)
    return pd.DataFrame({"lon": lon, "lat": lat})


def spa_boundaries(
    ds: xr.Dataset,
    centre: dict | None = None,
    *,
    variables: dict[str, int | None] | None = None,
    bin_km: float = 50.0,
    max_km: float = 2000.0,
    n_sectors: int = 12,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, xr.Dataset]]:
    """Radial profiles and change points of several variables around the SPA centre.

    Parameters
    ----------
    ds
        Dataset with global (lat, lon) variables (e.g. ``FeO``, ``mg_number``, ``elevation``).
    centre
        ``{"lat": ..., "lon": ...}``; default :func:`basin_centre` ("South Pole-Aitken").
    variables
        Name -> number of breaks. Default: FeO 1 (the Fe-anomaly boundary), mg_number 2 (inner and
        outer edge of the Mg-pyroxene ring), elevation 1 (the basin wall), for those in ``ds``.
    n_sectors
        Azimuth sectors for :func:`sector_change_points` (0 to skip).

    Returns
    -------
    dict
        Name -> ``{"profile": ..., "change_points": ..., "sectors": ...}`` (Datasets from
        :func:`radial_profile`, :func:`detect_change_points`, :func:`sector_change_points`).
    """
    c = basin_centre() if centre is None else centre
    variables = variables or {k: v for k, v in {"FeO": 1, "mg_number": 2, "elevation": 1}.items() if k in ds}
    if not variables:
        raise InputError("none of the requested variables is in the dataset; pass variables={name: n_bkps}")
    out = {}
    for name, nb in variables.items():
        if name not in ds:
            raise InputError(f"variable {name!r} not in the dataset; available: {list(ds.data_vars)}")
        prof = radial_profile(ds[name], c["lat"], c["lon"], bin_km=bin_km, max_km=max_km)
        cp = detect_change_points(prof["mean"].assign_attrs(variable=name, units=prof.attrs["units"]),
                                  nb, n_boot=n_boot, seed=seed)
        res = {"profile": prof, "change_points": cp}
        if n_sectors:
            res["sectors"] = sector_change_points(ds[name], c["lat"], c["lon"], nb or 1, n_sectors=n_sectors,
                                                  bin_km=bin_km, max_km=max_km)
        out[name] = res
    return out


def boundary_table(results: dict[str, dict[str, xr.Dataset]]) -> pd.DataFrame:
    """One row per change point of :func:`spa_boundaries`: radius, sector interval and the levels either side.

    Parameters
    ----------
    results
        Output of :func:`spa_boundaries` (name -> ``{"change_points": ..., "sectors": ...}``; without
        ``sectors`` the sector interval is left empty).

    Returns
    -------
    pandas.DataFrame
        Columns ``variable``, ``boundary`` (1 = innermost), ``radius (km)``, ``sector 95% CI (km)``
        (whole km, ``(low, high)``), ``level inside`` and ``level outside`` (segment means either side,
        in ``level units``, the variable's units; ``"1"`` is dimensionless).
    """
    rows = []
    for name, res in results.items():
        cp = res["change_points"]
        sec = res.get("sectors")
        units = str(cp["level_before"].attrs.get("units", ""))
        for k in cp["change"].values:
            ci = None
            if sec is not None and k in sec["change"].values:
                ci = (round(float(sec["radius_ci_low"].sel(change=k))),
                      round(float(sec["radius_ci_high"].sel(change=k))))
            rows.append({"variable": name, "boundary": int(k) + 1,
                         "radius (km)": float(cp["radius_km"].sel(change=k)),
                         "sector 95% CI (km)": ci,
                         "level inside": float(cp["level_before"].sel(change=k)),
                         "level outside": float(cp["level_after"].sel(change=k)),
                         "level units": units})
    return pd.DataFrame(rows, columns=["variable", "boundary", "radius (km)", "sector 95% CI (km)",
                                       "level inside", "level outside", "level units"])
