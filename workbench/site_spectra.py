"""Reflectance spectra at returned-sample sites: footprint means and standard deviations.

:func:`site_spectra` averages any ``(band, lat, lon)`` reflectance cube (a real mosaic, a synthetic
Moon observation, a calibrated product) inside a circular footprint of given radius around every site
or sampling station, and returns one tidy table; :func:`spectra_wide` turns it into one row per site
with columns ``R415, R750, ...`` (and ``R415_std, ...``), the layout the inversion models consume.

Footprints use great-circle distances on the lunar sphere (:func:`workbench.geo.great_circle_distance`)
between the site and the pixel centres. A site whose footprint holds no pixel centre (radius smaller
than the pixel) falls back to the pixel containing the site, and says so in the ``footprint`` column.

References
----------
Blewett, D. T., Lucey, P. G., Hawke, B. R., Jolliff, B. L. (1997), Clementine images of the lunar
sample-return stations: refinement of FeO and TiO2 mapping techniques, JGR 102(E7):16319–16325
(station footprints averaged over a few pixels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .errors import InputError
from .geo import MOON_RADIUS_KM, WARP_HINT, check_latlon, great_circle_distance, wrap_lon_180

#: Column names recognised for the site name, latitude and longitude (first match wins).
NAME_COLUMNS = ("site", "name", "station")
LAT_COLUMNS = ("lat", "lat_deg", "latitude")
LON_COLUMNS = ("lon", "lon_deg", "lon_deg_east_0_360", "longitude")


def _pick(df: pd.DataFrame, options: tuple[str, ...], what: str) -> str:
    for c in options:
        if c in df.columns:
            return c
    raise InputError(
        f"sites table has no {what} column (looked for {', '.join(options)}; found "
        f"{', '.join(map(str, df.columns))}); rename the column, e.g. df.rename(columns={{...}})"
    )


def _degrees(sites: pd.DataFrame, col: str, names: np.ndarray, what: str) -> np.ndarray:
    """Column ``col`` of ``sites`` as float degrees; non-numeric or missing values raise naming the column."""
    raw = sites[col].to_numpy(dtype=object)
    vals = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=float)
    blank = pd.isna(raw) | np.array([str(v).strip().lower() in {"", "nan"} for v in raw], dtype=bool)
    text = np.isnan(vals) & ~blank
    if text.any():
        shown = ", ".join(f"{n}: {v!r}" for n, v in zip(names[text][:3], raw[text][:3], strict=True))
        raise InputError(
            f"sites column {col!r} ({what}) holds non-numeric values ({shown}); give signed decimal degrees, "
            "e.g. 3.5 for 3.5N/3.5E and -3.5 for 3.5S/3.5W"
        )
    bad = ~np.isfinite(vals)
    if bad.any():
        raise InputError(
            f"sites column {col!r} ({what}) has {int(bad.sum())} missing, NaN or infinite value(s) (sites "
            f"{', '.join(names[bad][:5])}); fill them in or drop those rows"
        )
    return vals


def _cube(reflectance: xr.DataArray | xr.Dataset) -> xr.DataArray:
    if isinstance(reflectance, xr.Dataset):
        if "reflectance" not in reflectance:
            raise InputError("dataset has no 'reflectance' variable; pass the reflectance DataArray")
        reflectance = reflectance["reflectance"]
    if not isinstance(reflectance, xr.DataArray):
        raise InputError(f"expected an xarray DataArray or Dataset, got {type(reflectance).__name__}")
    if "lat" not in reflectance.dims or "lon" not in reflectance.dims:
        raise InputError(
            f"site spectra need a geographic cube with 'lat' and 'lon' dims, got {reflectance.dims}; {WARP_HINT}"
        )
    if "band" not in reflectance.dims:
        reflectance = reflectance.expand_dims(band=[str(reflectance.name or "value")])
    return reflectance.transpose("band", "lat", "lon")


def site_spectra(reflectance: xr.DataArray | xr.Dataset, sites: pd.DataFrame,
                 radius_km: float) -> pd.DataFrame:
    """Mean and standard deviation of reflectance in a footprint around every site, as a tidy table.

    Parameters
    ----------
    reflectance
        Cube with dims ``band``, ``lat``, ``lon`` (any order; a Dataset's ``reflectance`` is used; a 2-D
        map is treated as one band). ``band`` may carry ``wavelength`` (nm). Regional cubes are fine:
        sites outside their extent get NaN and ``n_pixels = 0``.
    sites
        Table with a name column (``site``/``name``/``station``) and latitude/longitude in degrees
        (``lat``/``lat_deg`` and ``lon``/``lon_deg_east_0_360``; longitudes in −180…180 or 0…360).
        Extra columns (e.g. measured oxides) are carried into :func:`spectra_wide`'s output.
    radius_km
        Footprint radius (km) around each site.

    Returns
    -------
    pandas.DataFrame
        One row per (site, band): ``site``, ``lat``, ``lon`` (−180…180), ``band``, ``wavelength``
        (nm, NaN when unknown), ``mean``, ``std`` (population standard deviation over the footprint,
        reflectance units), ``n_pixels`` (finite pixels used) and ``footprint`` (``"radius"``, or
        ``"nearest"`` when no pixel centre lay within ``radius_km`` and the containing pixel was used,
        or ``"outside"`` when the site is outside the cube). ``df.attrs`` holds ``radius_km`` and units.

    Raises
    ------
    InputError
        Non-positive radius, missing columns, non-numeric or missing (NaN) coordinates, out-of-range
        coordinates (latitude beyond ±90°, longitude beyond ±360°), a cube without lat/lon.
    """
    if not np.isfinite(radius_km) or radius_km <= 0:
        raise InputError(f"radius_km must be a positive number of kilometres, got {radius_km}")
    cube = _cube(reflectance)
    if not isinstance(sites, pd.DataFrame) or sites.empty:
        raise InputError("sites must be a non-empty pandas DataFrame with name, lat and lon columns")
    ncol = _pick(sites, NAME_COLUMNS, "site name")
    latc, lonc = _pick(sites, LAT_COLUMNS, "latitude"), _pick(sites, LON_COLUMNS, "longitude")
    names = sites[ncol].astype(str).to_numpy()
    s_lat = _degrees(sites, latc, names, "latitude")
    s_lon = _degrees(sites, lonc, names, "longitude")
    for col, la, lo in ((latc, s_lat, 0.0), (lonc, 0.0, s_lon)):
        try:
            check_latlon(la, lo)
        except InputError as exc:
            raise InputError(f"sites column {col!r}: {exc}") from None
    s_lon = wrap_lon_180(s_lon)
    lat = np.asarray(cube["lat"].values, dtype=float)
    lon = wrap_lon_180(np.asarray(cube["lon"].values, dtype=float))
    dlat = float(np.median(np.abs(np.diff(lat)))) if lat.size > 1 else 1.0
    dlon = float(np.median(np.abs(np.diff(np.sort(lon))))) if lon.size > 1 else 1.0
    global_lon = lon.size * dlon >= 359.0
    bands = [str(b) for b in cube["band"].values]
    wl = (np.asarray(cube["wavelength"].values, dtype=float) if "wavelength" in cube.coords
          else np.full(len(bands), np.nan))
    half_lat = np.rad2deg(radius_km / MOON_RADIUS_KM) + dlat
    # first pass: the pixel window and footprint mask of every site
    plan = []
    for name, la, lo in zip(sites[ncol].astype(str), s_lat, s_lon, strict=True):
        inside_lat = lat.min() - dlat / 2 <= la <= lat.max() + dlat / 2
        dl = np.abs(wrap_lon_180(lon - lo))
        inside_lon = global_lon or dl.min() <= dlon / 2 + 1e-9
        if not (inside_lat and inside_lon):
            plan.append((name, la, lo, "outside", None, None, None))
            continue
        coslat = max(np.cos(np.deg2rad(min(abs(la) + half_lat, 90.0))), 1e-6)
        half_lon = min(180.0, half_lat / coslat + dlon)
        ii = np.flatnonzero(np.abs(lat - la) <= half_lat)
        jj = np.flatnonzero(dl <= half_lon)
        la2, lo2 = np.meshgrid(lat[ii], lon[jj], indexing="ij")
        mask = great_circle_distance(la, lo, la2, lo2) <= radius_km
        kind = "radius"
        if not mask.any():
            ii = np.array([int(np.argmin(np.abs(lat - la)))])
            jj = np.array([int(np.argmin(dl))])
            mask = np.ones((1, 1), dtype=bool)
            kind = "nearest"
        plan.append((name, la, lo, kind, ii, jj, mask))
    # second pass: read every window at once (one dask computation for lazy cubes)
    windows = [cube.isel(lat=p[4], lon=p[5]).data for p in plan if p[4] is not None]
    if windows and hasattr(windows[0], "dask"):
        import dask

        windows = list(dask.compute(*windows))
    windows = iter(windows)
    rows = []
    for name, la, lo, kind, _ii, _jj, mask in plan:
        means = np.full(len(bands), np.nan)
        stds = np.full(len(bands), np.nan)
        counts = np.zeros(len(bands), dtype=int)
        if mask is not None:
            block = np.asarray(next(windows), dtype=float)[:, mask]
            ok = np.isfinite(block)
            counts = ok.sum(axis=1)
            vals = np.where(ok, block, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(counts > 0, vals.sum(axis=1) / np.maximum(counts, 1), np.nan)
                dev = np.where(ok, block - means[:, None], 0.0)
                stds = np.where(counts > 0, np.sqrt((dev**2).sum(axis=1) / np.maximum(counts, 1)), np.nan)
        for b, band in enumerate(bands):
            rows.append({"site": name, "lat": la, "lon": lo, "band": band, "wavelength": wl[b],
                         "mean": means[b], "std": stds[b], "n_pixels": int(counts[b]), "footprint": kind})
    out = pd.DataFrame(rows)
    out.attrs.update(radius_km=float(radius_km),
                     units={"mean": cube.attrs.get("units", "1"), "std": cube.attrs.get("units", "1"),
                            "wavelength": "nm", "lat": "deg", "lon": "deg", "radius_km": "km"})
    extra = [c for c in sites.columns if c not in (ncol, latc, lonc)]
    out.attrs["site_table"] = sites.assign(**{ncol: sites[ncol].astype(str)}).rename(
        columns={ncol: "site"})[["site", *extra]].to_dict("list")
    return out


def spectra_wide(table: pd.DataFrame, with_std: bool = True, with_sites: bool = True) -> pd.DataFrame:
    """One row per site from a :func:`site_spectra` table: ``site, lat, lon, n_pixels, R415, R750, ...``.

    Parameters
    ----------
    table
        Output of :func:`site_spectra`.
    with_std
        Add ``<band>_std`` columns.
    with_sites
        Join the other columns of the original sites table (e.g. measured FeO, TiO2) by site name.
    """
    need = {"site", "band", "mean", "std", "n_pixels", "lat", "lon"}
    if not need <= set(table.columns):
        raise InputError(f"expected a site_spectra table with columns {sorted(need)}, got {list(table.columns)}")
    order = list(dict.fromkeys(table["band"]))
    sites = list(dict.fromkeys(table["site"]))
    mean = table.pivot_table(index="site", columns="band", values="mean", dropna=False, sort=False)
    out = table.groupby("site", sort=False).agg(lat=("lat", "first"), lon=("lon", "first"),
                                                n_pixels=("n_pixels", "min"),
                                                footprint=("footprint", "first"))
    out = out.join(mean[order])
    if with_std:
        std = table.pivot_table(index="site", columns="band", values="std", dropna=False, sort=False)
        out = out.join(std[order].add_suffix("_std"))
    out = out.loc[sites].reset_index()
    if with_sites and "site_table" in table.attrs:
        extra = pd.DataFrame(table.attrs["site_table"]).drop_duplicates("site")
        extra = extra[[c for c in extra.columns if c not in out.columns or c == "site"]]
        out = out.merge(extra, on="site", how="left")
    out.columns.name = None
    out.attrs.update(table.attrs)
    return out
