"""Lunar geometry: radius, global grids, spherical area weights, hemisphere masks, distances.

Conventions used everywhere in the workbench
--------------------------------------------
* Longitude is east-positive. Grids use -180...180 (``wrap_lon_180``); tables may use 0...360
  (``wrap_lon_360``).
* Global grids are cell-centred, ``lat`` descending from north to south (row 0 is north), ``lon``
  ascending from west to east.
* Near side: ``|lon| <= 90``; far side: the rest.

References
----------
Archinal, B. A. et al. (2018), Report of the IAU Working Group on Cartographic Coordinates and
Rotational Elements: 2015, Celest. Mech. Dyn. Astron. 130:22 (mean lunar radius 1737.4 km).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import xarray as xr

from .errors import InputError

#: Mean lunar radius (m), IAU 2015 / LOLA reference sphere.
MOON_RADIUS_M: float = 1_737_400.0
#: Mean lunar radius (km).
MOON_RADIUS_KM: float = MOON_RADIUS_M / 1000.0
#: Total lunar surface area (km^2) of the reference sphere.
MOON_AREA_KM2: float = 4.0 * np.pi * MOON_RADIUS_KM**2

#: PROJ codes of the lunar CRS family (IAU 2015, body 301).
CRS_GEOGRAPHIC = "IAU_2015:30100"
CRS_EQUIRECTANGULAR = "IAU_2015:30110"
CRS_NORTH_POLAR = "IAU_2015:30130"
CRS_SOUTH_POLAR = "IAU_2015:30135"
#: The fix named by every error that needs a latitude/longitude grid and got a projected one.
WARP_HINT = ("warp a projected (y, x) map in metres, such as a polar-stereographic one, onto latitude/longitude "
             "first: workbench.rasters.warp_to_latlon(da)")


def wrap_lon_180(lon):
    """Wrap longitudes (degrees east) into [-180, 180).

    Examples
    --------
    >>> float(wrap_lon_180(190.0))
    -170.0
    """
    return (np.asarray(lon, dtype=float) + 180.0) % 360.0 - 180.0 if np.ndim(lon) else (
        (float(lon) + 180.0) % 360.0 - 180.0
    )


def lon_180_order(lon, span: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Longitudes and column order that put a 0...360 grid on -180...180, west to east, or ``None`` to keep the
    grid as it is.

    Only a grid that is global (``span``, the grid's east minus west edge, a full 360 degrees) or lies wholly east
    of 180 degrees is wrapped; one already on -180...180 is kept, and so is a regional grid across 180 degrees
    (e.g. 170...190 E), whose longitudes stay continuous rather than split into two pieces.

    Examples
    --------
    >>> lon, order = lon_180_order(np.array([45.0, 135.0, 225.0, 315.0]), 360.0)
    >>> lon.tolist(), order.tolist()
    ([-135.0, -45.0, 45.0, 135.0], [2, 3, 0, 1])
    >>> lon_180_order(np.array([175.0, 185.0]), 20.0) is None
    True
    """
    lon = np.asarray(lon, dtype=float)
    if not (lon.max() > 180.0 and (span >= 360.0 - 1e-6 or lon.min() > 180.0)):
        return None
    wrapped = wrap_lon_180(lon)
    order = np.argsort(wrapped, kind="stable")
    return wrapped[order], order


def is_global_lon(lon) -> bool:
    """True when the longitudes (degrees, evenly spaced) close a full circle, so the grid's east and west
    edges are neighbours (periodic in longitude)."""
    lon = np.asarray(lon, dtype=float)
    if lon.size < 2:
        return False
    d = float(np.median(np.diff(lon)))
    return abs(lon.size * abs(d) - 360.0) < 0.5 * abs(d)


def north_up_flips(obj, row: str = "lat", col: str = "lon") -> dict[str, slice]:
    """``isel`` indexers that put ``obj``'s rows north-up (``row`` descending) and columns east-right
    (``col`` ascending), the order the models were trained in; empty when it already is.

    Applying the same indexers again restores the original order. Longitude steps (``col == "lon"``)
    are taken modulo 360°, so a grid that runs east across the ±180° seam counts as ascending.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([[0, 1], [2, 3]], dims=("lat", "lon"), coords={"lat": [-1, 1], "lon": [179, -179]})
    >>> north_up_flips(da)
    {'lat': slice(None, None, -1)}
    """
    flips: dict[str, slice] = {}
    if row in obj.dims and obj.sizes[row] > 1 and row in obj.coords:
        v = np.asarray(obj[row].values, dtype=float)
        if v[1] > v[0]:
            flips[row] = slice(None, None, -1)
    if col in obj.dims and obj.sizes[col] > 1 and col in obj.coords:
        v = np.asarray(obj[col].values, dtype=float)
        step = v[1] - v[0]
        if col == "lon":
            step = (step + 180.0) % 360.0 - 180.0
        if step < 0:
            flips[col] = slice(None, None, -1)
    return flips


def wrap_lon_360(lon):
    """Wrap longitudes (degrees east) into [0, 360).

    Examples
    --------
    >>> float(wrap_lon_360(-170.0))
    190.0
    """
    out = np.mod(np.asarray(lon, dtype=float), 360.0)
    out = np.where(out >= 360.0, 0.0, out)  # a tiny negative longitude rounds up to 360.0 in floating point
    return out if np.ndim(lon) else float(out)


def check_latlon(lat, lon) -> None:
    """Raise :class:`InputError` if any latitude is outside [-90, 90] or longitude outside [-360, 360]."""
    lat_a = np.abs(np.asarray(lat, dtype=float))
    lon_a = np.abs(np.asarray(lon, dtype=float))
    lat_a, lon_a = lat_a[~np.isnan(lat_a)], lon_a[~np.isnan(lon_a)]  # NaN means missing; +-inf is out of range
    if np.any(lat_a > 90.0):
        raise InputError(
            f"latitude out of range: found {lat_a.max():.3f}; latitudes must lie in "
            "[-90, 90] degrees. Did you swap latitude and longitude?"
        )
    if np.any(lon_a > 360.0):
        raise InputError(
            f"longitude out of range: found {lon_a.max():.3f}; longitudes must lie in "
            "[-180, 180] or [0, 360] degrees east."
        )


def global_grid(resolution_ppd: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred global latitude (descending) and longitude (ascending) vectors.

    Parameters
    ----------
    resolution_ppd
        Pixels per degree.

    Returns
    -------
    lat, lon
        1-D arrays of length ``180*ppd`` and ``360*ppd``.

    Raises
    ------
    InputError
        If ``resolution_ppd`` is not a finite positive number, or ``180*ppd`` is not a whole number
        (then no grid of whole cells spans the globe, e.g. 0.33 ppd).
    """
    if isinstance(resolution_ppd, bool) or not isinstance(resolution_ppd, numbers.Real):
        raise InputError(f"resolution_ppd must be a number (pixels per degree), got {resolution_ppd!r} "
                         f"({type(resolution_ppd).__name__}); e.g. 4 or 0.5")
    ppd = float(resolution_ppd)
    if not math.isfinite(ppd) or ppd <= 0:
        raise InputError(f"resolution_ppd must be a finite positive number (pixels per degree), got {ppd}; "
                         "e.g. 4 or 0.5")
    rows = 180 * ppd
    n_lat = round(rows)
    if n_lat < 1 or abs(rows - n_lat) > 1e-5 * max(1.0, rows):  # a rounded 1/3 (0.333333) still means 60 rows
        below = max(math.floor(rows), 1)
        above = max(math.ceil(rows), below + 1)
        raise InputError(
            f"resolution_ppd {ppd:g} does not divide the globe into whole cells (180 x {ppd:g} = {rows:g} "
            f"rows); use a resolution for which 180 x ppd is a whole number, e.g. {below / 180:.8g} or "
            f"{above / 180:.8g}"
        )
    n_lon = 2 * n_lat
    d = 180.0 / n_lat
    lat = 90.0 - d / 2 - d * np.arange(n_lat)
    lon = -180.0 + d / 2 + d * np.arange(n_lon)
    return lat, lon


def global_template(resolution_ppd: float, name: str = "template") -> xr.DataArray:
    """An all-NaN global DataArray (lat, lon) with the lunar geographic CRS in attrs."""
    lat, lon = global_grid(resolution_ppd)
    da = xr.DataArray(
        np.full((lat.size, lon.size), np.nan, dtype="float32"),
        coords={"lat": lat, "lon": lon},
        dims=("lat", "lon"),
        name=name,
    )
    return annotate_latlon(da)


def annotate_latlon(obj):
    """Attach CF attributes to ``lat``/``lon`` coords and the lunar CRS to ``attrs['crs']``."""
    obj = obj.copy()
    if "lat" in obj.coords:
        obj["lat"].attrs.update(units="degrees_north", standard_name="latitude", long_name="latitude")
    if "lon" in obj.coords:
        obj["lon"].attrs.update(units="degrees_east", standard_name="longitude", long_name="longitude")
    obj.attrs.setdefault("crs", CRS_GEOGRAPHIC)
    return obj


def cell_area_km2(lat, resolution_ppd: float | None = None, dlon_deg: float | None = None):
    """Area (km^2) of grid cells centred at ``lat`` on the lunar sphere.

    The area of a cell spanning ``[lat-d/2, lat+d/2]`` and ``dlon`` is
    ``R^2 * dlon_rad * (sin(lat+d/2) - sin(lat-d/2))``.

    Parameters
    ----------
    lat
        Cell-centre latitudes (degrees).
    resolution_ppd
        Pixels per degree (sets both the latitude and longitude extent of a cell).
    dlon_deg
        Longitude extent (degrees); defaults to ``1/resolution_ppd``.
    """
    lat = np.asarray(lat, dtype=float)
    if resolution_ppd is None:
        if lat.size < 2:
            raise InputError("cell_area_km2 needs resolution_ppd when lat has fewer than 2 values")
        resolution_ppd = 1.0 / float(np.median(np.abs(np.diff(lat))))
    d = 1.0 / resolution_ppd
    dlon = np.deg2rad(d if dlon_deg is None else dlon_deg)
    top = np.deg2rad(np.clip(lat + d / 2, -90, 90))
    bot = np.deg2rad(np.clip(lat - d / 2, -90, 90))
    return MOON_RADIUS_KM**2 * dlon * (np.sin(top) - np.sin(bot))


def area_weights(da: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """Spherical area weights (km^2 per cell) broadcast to the (lat, lon) grid of ``da``.

    Weights are exact cell areas, so ``area_weights(da).sum()`` equals the lunar surface area for a
    global grid (to floating-point precision).
    """
    if "lat" not in da.coords or "lon" not in da.coords:
        raise InputError(
            f"area_weights needs 'lat' and 'lon' coordinates (degrees); {WARP_HINT}"
        )
    lat = da["lat"].values
    lon = da["lon"].values
    if lat.size < 2 and lon.size < 2:
        raise InputError("area_weights needs at least two latitudes or two longitudes to know the cell size; "
                         "pass a grid of 2 or more cells")
    # longitude steps modulo 360 deg, so a grid that crosses the +-180 seam keeps its real step
    dlon = float(np.median(np.abs((np.diff(lon) + 180.0) % 360.0 - 180.0))) if lon.size > 1 else None
    dlat = float(np.median(np.abs(np.diff(lat)))) if lat.size > 1 else dlon  # one row: square cells
    ppd_lat = 1.0 / dlat
    dlon = dlat if dlon is None else dlon
    w = cell_area_km2(lat, resolution_ppd=ppd_lat, dlon_deg=dlon)
    out = xr.DataArray(w, coords={"lat": da["lat"]}, dims=("lat",)).broadcast_like(da["lon"])
    out = out.transpose("lat", "lon")
    out.name = "cell_area"
    out.attrs["units"] = "km2"
    return out


def area_rank(da: xr.DataArray) -> xr.DataArray:
    """Each pixel's area rank: the percentage of the finite pixels' *area* whose value is lower, plus half the area
    of the pixels sharing its value (the mid-point plotting position of Hyndman & Fan 1996, definition 5, weighted
    by :func:`area_weights`).

    The pixels with ``area_rank(da) > p`` cover about ``100 - p`` % of the area: the ranks are the percentiles of
    :func:`workbench.analysis.prospectivity.area_percentile` turned round, and what an area-equalised colour scale
    shows. NaN and ±inf pixels are left out and come back NaN.

    Examples
    --------
    >>> lat = global_template(1).fillna(0.0)
    >>> r = area_rank(lat + lat["lat"])  # the value is the latitude: 50 (1 + sin(lat)) % of the area lies south
    >>> round(float(r.sel(lat=30.5).mean()), 1), round(float(50 * (1 + np.sin(np.radians(30.5)))), 1)
    (75.4, 75.4)
    """
    if set(da.dims) != {"lat", "lon"}:
        raise InputError(f"area_rank needs a (lat, lon) map, got dims {tuple(da.dims)}")
    w = area_weights(da).transpose(*da.dims).values.ravel()
    v = np.asarray(da.values, dtype="float64").ravel()
    ok = np.isfinite(v)
    out = np.full(v.shape, np.nan)
    if ok.any():
        uniq, inv = np.unique(v[ok], return_inverse=True)
        group = np.bincount(inv, weights=w[ok], minlength=uniq.size)  # the area of each distinct value
        below = np.concatenate([[0.0], np.cumsum(group)[:-1]])
        out[ok] = 100.0 * (below + group / 2.0)[inv] / group.sum()
    return da.copy(data=out.reshape(da.shape)).assign_attrs(units="%", long_name="share of the area below")


def near_side_mask(lon) -> np.ndarray | xr.DataArray:
    """True where ``|lon| <= 90`` (the Earth-facing hemisphere)."""
    return np.abs(wrap_lon_180(lon)) <= 90.0 if not isinstance(lon, xr.DataArray) else (
        abs(xr.apply_ufunc(wrap_lon_180, lon)) <= 90.0
    )


def far_side_mask(lon):
    """True where ``|lon| > 90``."""
    return ~near_side_mask(lon)


def _lat_values(lat):
    """A DataArray as it is, anything else (a list, a scalar) as a float numpy array."""
    return lat if isinstance(lat, xr.DataArray) else np.asarray(lat, dtype=float)


def north_mask(lat):
    """True where ``lat >= 0`` (a DataArray stays one; a list becomes a numpy array); False where NaN."""
    return _lat_values(lat) >= 0.0


def south_mask(lat):
    """True where ``lat < 0``; False where NaN."""
    return _lat_values(lat) < 0.0


def hemisphere_masks(da: xr.DataArray | xr.Dataset) -> dict[str, xr.DataArray]:
    """Boolean (lat, lon) masks named ``near``, ``far``, ``north`` and ``south`` on the grid of ``da``."""
    lat2, lon2 = xr.broadcast(da["lat"], da["lon"])
    return {
        "near": near_side_mask(lon2).transpose("lat", "lon"),
        "far": far_side_mask(lon2).transpose("lat", "lon"),
        "north": north_mask(lat2).transpose("lat", "lon"),
        "south": south_mask(lat2).transpose("lat", "lon"),
    }


def great_circle_distance(lat1, lon1, lat2, lon2, radius: float = MOON_RADIUS_KM):
    """Great-circle distance on the lunar sphere (haversine formula), in the units of ``radius``.

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Degrees; broadcastable arrays.
    radius
        Sphere radius; the default gives kilometres.

    References
    ----------
    Sinnott, R. W. (1984), Virtues of the haversine, Sky and Telescope 68(2):159.
    """
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    dphi = p2 - p1
    dlmb = np.deg2rad(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2.0 * radius * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def destination_point(lat, lon, bearing_deg, distance, radius: float = MOON_RADIUS_KM):
    """Point reached from (lat, lon) after ``distance`` along initial ``bearing_deg`` (clockwise from north)."""
    p1, l1 = np.deg2rad(lat), np.deg2rad(lon)
    th = np.deg2rad(bearing_deg)
    d = np.asarray(distance, dtype=float) / radius
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(th))
    l2 = l1 + np.arctan2(np.sin(th) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return np.rad2deg(p2), wrap_lon_180(np.rad2deg(l2))


def _box_lon_order(lon: np.ndarray, west: float, east: float) -> np.ndarray:
    """Indices of the longitudes inside the box from ``west`` eastwards to ``east``, west to east."""
    span = (east - west) % 360.0 or (360.0 if east != west else 0.0)
    off = (lon - west) % 360.0
    inside = np.flatnonzero(off <= span + 1e-9)
    return inside[np.argsort(off[inside], kind="stable")]


def select_box(obj: xr.DataArray | xr.Dataset, lat: tuple[float, float] | None = None,
               lon: tuple[float, float] | None = None) -> xr.DataArray | xr.Dataset:
    """The cells of a ``(lat, lon)`` grid inside a latitude-longitude box, whatever the grid's conventions.

    ``obj.sel(lat=slice(a, b))`` depends on the grid's row order (``slice(-60, 60)`` on a grid stored
    north to south selects nothing) and ``sel(lon=slice(170, -170))`` cannot cross the ±180° seam. Here the
    latitude bounds may come in either order, the longitudes in either convention (−180…180 or 0…360,
    whatever the grid uses), and a box may cross the seam.

    Parameters
    ----------
    obj
        Anything with ``lat`` and ``lon`` dimensions (degrees); other dimensions are kept.
    lat
        ``(a, b)``: the latitudes between a and b, edges included, in either order; ``None`` keeps all.
    lon
        ``(west, east)``: the box runs eastwards from ``west`` to ``east`` (``(170, -170)`` is the 20° across
        ±180°). Written the other way round, with an eastward span over 180° (``(30, 0)``), it is read as
        ``(0, 30)``: a box wider than a hemisphere is given west first (``(-120, 120)``). ``None`` keeps all.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        The cells inside, rows and columns in the grid's own order (columns of a grid stored east to west come
        west to east); a box across the grid's longitude seam comes west to east with its longitudes made
        continuous (0…360 for a box across ±180°, so that maps and ``sel`` work on it; −180…180 for one across 0°
        on a 0…360 grid).

    Raises
    ------
    InputError
        No ``lat``/``lon`` dimension, bounds outside [−90, 90] / [−360, 360] or not a pair of numbers, or a box
        that holds no cell of the grid (the message gives the grid's extent).

    Examples
    --------
    >>> g = global_template(1)
    >>> box = select_box(g, lat=(-60, 60), lon=(170, -170))  # either order; across the seam
    >>> box.sizes["lat"], box.sizes["lon"], float(box["lon"][0]), float(box["lon"][-1])
    (120, 20, 170.5, 189.5)
    """
    if "lat" not in obj.dims or "lon" not in obj.dims:
        raise InputError(f"select_box needs 'lat' and 'lon' dimensions (degrees); got {tuple(obj.dims)}: polar "
                         "(y, x) grids are cut with .sel(x=slice(...), y=slice(...)) in metres")
    for name, pair in (("lat", lat), ("lon", lon)):
        if pair is not None and (np.ndim(pair) != 1 or len(pair) != 2 or not all(
                isinstance(v, numbers.Real) and np.isfinite(v) for v in pair)):
            raise InputError(f"{name} must be a pair of numbers (a, b) in degrees, got {pair!r}")
    out = obj
    if lat is not None:
        check_latlon(lat, 0.0)
        lo, hi = sorted(map(float, lat))
        la = obj["lat"].values
        out = out.isel(lat=np.flatnonzero((la >= lo - 1e-9) & (la <= hi + 1e-9)))
    if lon is not None:
        check_latlon(0.0, lon)
        west, east = (float(v) for v in lon)
        if west > east and (east - west) % 360.0 > 180.0:  # written east to west, not across the seam
            west, east = east, west
        lo_ = obj["lon"].values
        idx = _box_lon_order(lo_, west, east)
        if idx.size and np.any(np.diff(idx) < 0):  # across the grid's seam: west to east, continuous values
            vals = lo_[idx]
            for wrap in (wrap_lon_360, wrap_lon_180):
                if np.all(np.diff(wrap(vals)) > 0):
                    vals = wrap(vals)
                    break
            else:
                vals = west + (vals - west) % 360.0
            out = out.isel(lon=idx).assign_coords(lon=("lon", vals, obj["lon"].attrs))
        else:
            out = out.isel(lon=np.sort(idx))
    if out.sizes["lat"] == 0 or out.sizes["lon"] == 0:
        la, lo_ = obj["lat"].values, obj["lon"].values
        raise InputError(
            f"the box lat={lat}, lon={lon} holds no cell of this grid (lat {la.min():g}…{la.max():g}, lon "
            f"{lo_.min():g}…{lo_.max():g}, {abs(float(np.median(np.diff(lo_)))) if lo_.size > 1 else 0:g}° cells); "
            "widen the box or check that it lies on the grid"
        )
    return out
