"""Crater densities per region with exact Poisson intervals, and size-frequency distributions.

Crater catalogues are tables with columns ``lon`` (degrees east), ``lat`` (degrees) and
``diameter_km``. A density is ``N / A`` in craters per 10^6 km^2, where ``A`` is the area of the
region *that the catalogue covers*: the LROC 5-20 km catalogue (Povilaitis et al. 2018) covers only
±60° latitude, so its near-side area is half of the ±60° band, not half the Moon.

Intervals
---------
Counts are treated as Poisson; the exact (Garwood 1936) interval for ``k`` counts at level
``1 - alpha`` is ``[chi2(alpha/2; 2k)/2, chi2(1 - alpha/2; 2k + 2)/2]`` with lower bound 0 for
``k = 0``. Two regions are compared through the rate ratio, whose exact interval and p-value come
from the binomial distribution of ``k_a`` given ``k_a + k_b`` (conditional test; Przyborowski &
Wilenski 1940). Craters cluster (secondary chains, basin ejecta, saturation), so the counts are
over-dispersed and Poisson intervals are a lower bound on the real uncertainty.

References
----------
Garwood, F. (1936), Fiducial limits for the Poisson distribution, Biometrika 28:437-442.
Przyborowski, J. & Wilenski, H. (1940), Homogeneity of results in testing samples from Poisson
series, Biometrika 31:313-323.
Crater Analysis Techniques Working Group (1979), Standard techniques for presentation and analysis
of crater size-frequency data, Icarus 37:467-474 (cumulative plots, sqrt(2) diameter bins).
Head, J. W. et al. (2010), Global distribution of large lunar craters, Science 329:1504-1507.
Povilaitis, R. Z. et al. (2018), Crater density differences: exploring regional resurfacing,
secondary crater populations, and crater saturation equilibrium on the Moon, PSS 162:41-51.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ..errors import InputError
from ..geo import (
    area_weights,
    check_latlon,
    global_template,
    hemisphere_masks,
    is_global_lon,
    wrap_lon_180,
)

__all__ = [
    "CATALOGUE_LAT_COVERAGE",
    "PER_AREA_KM2",
    "poisson_interval",
    "check_crater_table",
    "coverage_mask",
    "crater_density",
    "compare_densities",
    "size_frequency",
    "density_summary",
    "density_table",
]

#: Latitude range (degrees) covered by each known crater catalogue id.
CATALOGUE_LAT_COVERAGE: dict[str, tuple[float, float]] = {
    "craters_head2010": (-90.0, 90.0),
    "craters_lroc_5_20km": (-60.0, 60.0),
}
#: Densities are reported per this area (km^2).
PER_AREA_KM2: float = 1.0e6
_GRID_PPD = 4


def poisson_interval(k, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) confidence interval for a Poisson mean given ``k`` observed counts.

    Examples
    --------
    >>> lo, hi = poisson_interval(0)
    >>> float(lo), round(float(hi), 4)
    (0.0, 3.6889)
    """
    if not (0 < level < 1):
        raise InputError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    k = np.asarray(k, dtype=float)
    if np.any(k < 0) or np.any(k != np.round(k)):
        raise InputError("Poisson counts must be non-negative integers")
    a = 1.0 - level
    lo = np.where(k > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(k, 1)) / 2, 0.0)
    hi = stats.chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return lo, hi


def check_crater_table(craters: pd.DataFrame) -> pd.DataFrame:
    """Validate a crater table (``lon``, ``lat``, ``diameter_km``) and wrap longitudes to -180...180."""
    if not isinstance(craters, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of craters, got {type(craters).__name__}")
    missing = [c for c in ("lon", "lat", "diameter_km") if c not in craters.columns]
    if missing:
        raise InputError(
            f"crater table lacks columns {missing}; it needs lon (deg E), lat (deg), diameter_km "
            f"(found {list(craters.columns)}); rename them or open it with workbench.open_table"
        )
    df = craters[["lon", "lat", "diameter_km"]].astype(float)
    if df.isna().any().any():
        raise InputError("crater table has missing lon/lat/diameter values; drop those rows first")
    check_latlon(df["lat"].values, df["lon"].values)
    if (df["diameter_km"] <= 0).any():
        raise InputError("crater diameters must be positive (km)")
    df = df.copy()
    df["lon"] = wrap_lon_180(df["lon"].values)
    return df


def coverage_mask(grid: xr.DataArray, lat_range: tuple[float, float]) -> xr.DataArray:
    """True for cells whose centre lies within ``lat_range`` (the catalogue's coverage)."""
    lo, hi = lat_range
    if not (-90 <= lo < hi <= 90):
        raise InputError(f"lat_range must satisfy -90 <= low < high <= 90, got {lat_range}")
    lat2, _ = xr.broadcast(grid["lat"], grid["lon"])
    return ((lat2 >= lo) & (lat2 <= hi)).transpose("lat", "lon")


def _nearest(coord: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of the 1-D monotonic ``coord`` for each value."""
    asc = coord[0] <= coord[-1]
    c = coord if asc else coord[::-1]
    k = np.clip(np.searchsorted(c, values), 1, c.size - 1)
    k = np.where(np.abs(values - c[k - 1]) <= np.abs(values - c[k]), k - 1, k)
    return k if asc else c.size - 1 - k


def _snap_to_covered_rows(df: pd.DataFrame, grid: xr.DataArray, cov: np.ndarray) -> pd.DataFrame:
    """The craters with each latitude within half a row of the first or last covered row moved onto it.

    A crater on the coverage edge (exactly -60 deg for a +-60 deg catalogue on a 0.25 deg grid) is as near the
    first uncovered row as the last covered one; it lies within the coverage, so it must fall in a covered
    row, whichever way the tie goes. Craters further out (beyond a regional grid) are left where they are.
    """
    glat = np.asarray(grid["lat"].values, dtype=float)
    covered = glat[cov.any(axis=1)]
    half = 0.5 * (_step(glat) or _step(np.asarray(grid["lon"].values, dtype=float)) or 0.0)
    if not covered.size or not half:
        return df
    lat = df["lat"].to_numpy(dtype=float)
    lo, hi = covered.min(), covered.max()
    lat = np.where((lat < lo) & (lat >= lo - half), lo, np.where((lat > hi) & (lat <= hi + half), hi, lat))
    return df.assign(lat=lat)


def _step(coord: np.ndarray) -> float | None:
    """Median spacing of a 1-D regular coordinate (None for a single value)."""
    return float(np.median(np.abs(np.diff(coord)))) if coord.size > 1 else None


def _cells(craters: pd.DataFrame, grid: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid cell (row, column) of each crater centre, and which craters fall on the grid at all.

    The grid's longitudes are unwrapped (a regional grid may cross the ±180° seam, a global one may run
    0...360) and each crater's longitude is taken in the same 360° window, so the convention does not
    matter. Craters more than half a cell beyond a regional grid's edge belong to no cell; a single row
    or column has square cells, as in :func:`workbench.geo.area_weights`.
    """
    glat = np.asarray(grid["lat"].values, dtype=float)
    glon = np.rad2deg(np.unwrap(np.deg2rad(np.asarray(grid["lon"].values, dtype=float))))
    dlat, dlon = _step(glat), _step(glon)
    dlat, dlon = dlat or dlon, dlon or dlat
    if dlat is None:
        raise InputError("the grid has a single cell; counting craters needs at least two rows or columns")
    lat = craters["lat"].values
    on = (lat >= glat.min() - dlat / 2) & (lat <= glat.max() + dlat / 2)
    if is_global_lon(glon):  # a whole circle: the nearest column modulo the grid's width, every crater on it
        step = float(np.median(np.diff(glon)))  # signed: a west-right grid steps west
        j = np.rint((craters["lon"].values - glon[0]) / step).astype(np.int64) % glon.size
        return _nearest(glat, lat), j, on
    west = glon.min() - dlon / 2
    lon = west + (craters["lon"].values - west) % 360.0
    on &= lon <= glon.max() + dlon / 2
    return _nearest(glat, lat), _nearest(glon, lon), on


def _region_mask(name: str, m, grid: xr.DataArray) -> np.ndarray:
    """Boolean (lat, lon) mask of region ``name`` in ``grid``'s row and column order.

    A DataArray is matched to the grid by its coordinates (so a south-up or west-right mask is not read
    upside down); a plain array is taken to be in the grid's order.
    """
    if isinstance(m, xr.DataArray) and {"lat", "lon"} <= set(m.coords):
        try:
            m = m.astype(float).reindex(lat=grid["lat"].values, lon=grid["lon"].values, method="nearest",
                                        tolerance=1e-6)
        except (KeyError, ValueError) as exc:
            raise InputError(f"region {name!r} mask's lat/lon do not match the grid's ({exc}); build it on the "
                             "same grid") from exc
        if bool(m.isnull().any()):
            raise InputError(f"region {name!r} mask is on another lat/lon grid; build it on the grid given "
                             "(default: workbench.geo.global_template(4))")
        return m.transpose("lat", "lon").values.astype(bool)
    mm = np.asarray(m.transpose("lat", "lon").values if isinstance(m, xr.DataArray) else m, bool)
    if mm.shape != (grid.sizes["lat"], grid.sizes["lon"]):
        raise InputError(f"region {name!r} mask has shape {mm.shape}, expected the grid's "
                         f"{(grid.sizes['lat'], grid.sizes['lon'])}")
    return mm


def _prepare(craters, regions, lat_range, d_min, d_max, grid):
    df = check_crater_table(craters)
    if d_min is not None:
        df = df[df["diameter_km"] >= d_min]
    if d_max is not None:
        df = df[df["diameter_km"] <= d_max]
    grid = global_template(_GRID_PPD) if grid is None else grid
    regions = hemisphere_masks(grid) if regions is None else regions
    cov = coverage_mask(grid, lat_range).values
    outside = (df["lat"] < lat_range[0]) | (df["lat"] > lat_range[1])
    if outside.any():
        raise InputError(
            f"{int(outside.sum())} craters lie outside the stated coverage {lat_range} deg latitude; "
            "pass the catalogue's real coverage as lat_range"
        )
    i, j, on = _cells(_snap_to_covered_rows(df, grid, cov), grid)
    df, i, j = df[on], i[on], j[on]  # craters beyond a regional grid's edge are in none of its regions
    w = area_weights(grid).values
    return df, grid, regions, cov, i, j, w


def crater_density(
    craters: pd.DataFrame,
    regions: Mapping[str, xr.DataArray] | None = None,
    *,
    lat_range: tuple[float, float] = (-90.0, 90.0),
    d_min: float | None = None,
    d_max: float | None = None,
    level: float = 0.95,
    grid: xr.DataArray | None = None,
    block_deg: float | None = 10.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> xr.Dataset:
    """Crater counts and densities (per 10^6 km^2) per region with exact Poisson intervals.

    Parameters
    ----------
    craters
        Table with ``lon``, ``lat``, ``diameter_km``.
    regions
        Name -> boolean (lat, lon) mask on ``grid``; default near/far/north/south on a 4 px/deg grid.
        A crater belongs to a region when its centre's grid cell does.
    lat_range
        Latitudes covered by the catalogue (e.g. (-60, 60) for LROC 5-20 km); region areas are
        intersected with it.
    d_min, d_max
        Optional diameter cuts (km, inclusive).
    block_deg, n_boot, seed
        Also give a spatial block-bootstrap interval (``density_block_ci_*``): blocks of
        ``block_deg`` degrees are resampled and the density is sum(count) / sum(area) over the drawn
        blocks. Unlike the Poisson interval it includes the clustering of craters; ``None`` skips it.

    Returns
    -------
    xarray.Dataset
        Dim ``region``: ``count``, ``area_km2``, ``area_fraction`` (of the covered area),
        ``density``, ``density_ci_low``, ``density_ci_high`` (Poisson) and, with ``block_deg``,
        ``density_block_ci_low``/``_high`` (craters per 10^6 km^2).
    """
    df, grid, regions, cov, i, j, w = _prepare(craters, regions, lat_range, d_min, d_max, grid)
    cov_area = float(w[cov].sum())
    counts, areas, block_cis = [], [], []
    if block_deg is not None:
        from .asymmetry import block_ids, enough_units

        bid = block_ids(grid, block_deg)
        rng = np.random.default_rng(seed)
    for name, m in regions.items():
        inside = _region_mask(name, m, grid) & cov
        area = float(w[inside].sum())
        if area <= 0:
            raise InputError(f"region {name!r} does not overlap the catalogue coverage {lat_range}")
        hit = inside[i, j]
        counts.append(int(hit.sum()))
        areas.append(area)
        if block_deg is not None:
            ub, inv = np.unique(bid[inside], return_inverse=True)
            a_b = np.bincount(inv, w[inside], ub.size)
            k_b = np.bincount(np.searchsorted(ub, bid[i[hit], j[hit]]), minlength=ub.size).astype(float)
            draws = rng.integers(0, ub.size, size=(n_boot, ub.size))
            boot = k_b[draws].sum(axis=1) / a_b[draws].sum(axis=1) * PER_AREA_KM2
            a_ = (1 - level) / 2
            block_cis.append(np.quantile(boot, [a_, 1 - a_]) if enough_units(ub.size, f"region {name!r}")
                             else np.array([np.nan, np.nan]))
    counts_a = np.array(counts)
    areas_a = np.array(areas)
    lo, hi = poisson_interval(counts_a, level)
    scale = PER_AREA_KM2 / areas_a
    out = xr.Dataset(
        {
            "count": ("region", counts_a),
            "area_km2": ("region", areas_a),
            "area_fraction": ("region", areas_a / cov_area),
            "density": ("region", counts_a * scale),
            "density_ci_low": ("region", lo * scale),
            "density_ci_high": ("region", hi * scale),
        },
        coords={"region": list(regions)},
    )
    if block_deg is not None:
        out["density_block_ci_low"] = ("region", [c[0] for c in block_cis])
        out["density_block_ci_high"] = ("region", [c[1] for c in block_cis])
    for v in ("density", "density_ci_low", "density_ci_high", "density_block_ci_low", "density_block_ci_high"):
        if v in out:
            out[v].attrs["units"] = "1/(1e6 km2)"
    out["area_km2"].attrs["units"] = "km2"
    out.attrs.update(
        block_deg=-1.0 if block_deg is None else float(block_deg),
        lat_range=list(lat_range), level=level, n_craters=int(len(df)),
        d_min=-1.0 if d_min is None else float(d_min), d_max=-1.0 if d_max is None else float(d_max),
        method="exact Poisson (Garwood) intervals; areas on the sphere within the catalogue coverage",
    )
    return out


def compare_densities(k_a: int, area_a: float, k_b: int, area_b: float, level: float = 0.95) -> dict:
    """Compare two crater densities: difference (Wald CI), rate ratio (exact CI) and exact p-value.

    Under equal densities, ``k_a | k_a + k_b ~ Binomial(k_a + k_b, area_a / (area_a + area_b))``;
    the two-sided binomial test gives the p-value and the Clopper-Pearson interval of the binomial
    proportion ``p`` maps to the rate ratio ``(p / (1 - p)) * area_b / area_a``.
    """
    if min(area_a, area_b) <= 0:
        raise InputError("areas must be positive (km^2)")
    n = int(k_a) + int(k_b)
    da_, db_ = k_a / area_a * PER_AREA_KM2, k_b / area_b * PER_AREA_KM2
    z = stats.norm.ppf(0.5 + level / 2)
    se = PER_AREA_KM2 * np.sqrt(k_a / area_a**2 + k_b / area_b**2)
    out = {"value": float(da_ - db_), "ci95": [float(da_ - db_ - z * se), float(da_ - db_ + z * se)]}
    if n == 0:
        out.update(p_value=1.0, rate_ratio=float("nan"), rate_ratio_ci95=[0.0, float("inf")])
        return out
    p0 = area_a / (area_a + area_b)
    test = stats.binomtest(int(k_a), n, p0)
    ci = test.proportion_ci(confidence_level=level, method="exact")

    def to_ratio(p):
        return float("inf") if p >= 1 else p / (1 - p) * area_b / area_a

    out.update(
        p_value=float(test.pvalue),
        rate_ratio=float(da_ / db_) if k_b > 0 else float("inf"),
        rate_ratio_ci95=[to_ratio(ci.low), to_ratio(ci.high)],
        method="difference: Wald; ratio and p-value: exact conditional binomial",
    )
    return out


def size_frequency(
    craters: pd.DataFrame,
    regions: Mapping[str, xr.DataArray] | None = None,
    *,
    diameters_km=None,
    lat_range: tuple[float, float] = (-90.0, 90.0),
    level: float = 0.95,
    grid: xr.DataArray | None = None,
) -> xr.Dataset:
    """Cumulative size-frequency distribution N(>=D) per 10^6 km^2 per region, with Poisson CIs.

    ``diameters_km`` defaults to sqrt(2)-spaced diameters from the smallest crater up (Crater
    Analysis Techniques Working Group 1979).

    Returns
    -------
    xarray.Dataset
        Dims (``region``, ``diameter_km``): ``count`` (N >= D), ``cumulative_density`` with
        ``ci_low``/``ci_high`` (per 10^6 km^2); ``area_km2`` per region.
    """
    df, grid, regions, cov, i, j, w = _prepare(craters, regions, lat_range, None, None, grid)
    if diameters_km is None:
        dmin = float(df["diameter_km"].min()) if len(df) else 1.0
        dmax = float(df["diameter_km"].max()) if len(df) else 2.0
        # 2 ** (k / 2), not sqrt(2) ** k: even k are then exact powers of two (sqrt(2) ** 2 = 2.0000000000000004
        # would drop a crater of exactly 2 d_min from N(>= 2 d_min))
        diameters_km = dmin * 2.0 ** (0.5 * np.arange(int(np.floor(2 * np.log2(dmax / dmin))) + 1))
    d = np.asarray(diameters_km, dtype=float)
    counts, areas = [], []
    for name, m in regions.items():
        inside = _region_mask(name, m, grid) & cov
        area = float(w[inside].sum())
        if area <= 0:
            raise InputError(f"region {name!r} does not overlap the catalogue coverage {lat_range}")
        dd = np.sort(df["diameter_km"].values[inside[i, j]])
        counts.append(dd.size - np.searchsorted(dd, d, side="left"))
        areas.append(area)
    c = np.array(counts)
    a = np.array(areas)[:, None]
    lo, hi = poisson_interval(c, level)
    out = xr.Dataset(
        {
            "count": (("region", "diameter_km"), c),
            "cumulative_density": (("region", "diameter_km"), c / a * PER_AREA_KM2),
            "ci_low": (("region", "diameter_km"), lo / a * PER_AREA_KM2),
            "ci_high": (("region", "diameter_km"), hi / a * PER_AREA_KM2),
            "area_km2": ("region", a[:, 0]),
        },
        coords={"region": list(regions), "diameter_km": d},
    )
    for v in ("cumulative_density", "ci_low", "ci_high"):
        out[v].attrs["units"] = "1/(1e6 km2)"
    out["diameter_km"].attrs["units"] = "km"
    out.attrs.update(lat_range=list(lat_range), level=level, method="cumulative N(>=D), Garwood intervals")
    return out


def density_summary(
    craters: pd.DataFrame, *, lat_range: tuple[float, float] = (-90.0, 90.0), level: float = 0.95
) -> dict:
    """JSON-ready near/far/north/south densities and the two hemispheric comparisons (for the CLI)."""
    st = crater_density(craters, lat_range=lat_range, level=level)
    out: dict = {
        "units": "craters per 1e6 km2", "lat_range": list(lat_range), "n_craters": st.attrs["n_craters"],
        "method": st.attrs["method"],
    }
    for r in ("near", "far", "north", "south"):
        s = st.sel(region=r)
        out[r] = {
            "count": int(s["count"]), "density": float(s["density"]),
            "ci95": [float(s["density_ci_low"]), float(s["density_ci_high"])],
            "ci95_block_bootstrap": [float(s["density_block_ci_low"]), float(s["density_block_ci_high"])],
            "mean": float(s["density"]),  # the density is this table's "mean" column
            "area_km2": float(s["area_km2"]), "area_fraction": float(s["area_fraction"]),
        }
    for a, b in (("near", "far"), ("north", "south")):
        sa, sb = st.sel(region=a), st.sel(region=b)
        out[f"{a}_minus_{b}"] = compare_densities(int(sa["count"]), float(sa["area_km2"]),
                                                  int(sb["count"]), float(sb["area_km2"]), level)
    return out


def density_table(densities: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    """Crater densities of one or more catalogues side by side, with units and the block/Poisson width ratio.

    Parameters
    ----------
    densities
        Catalogue name -> :func:`crater_density` output (with the block-bootstrap interval, the default).

    Returns
    -------
    pandas.DataFrame
        Index ``(catalogue, region)``; columns ``count``, ``area (km²)``, ``density (per 10⁶ km²)``,
        its Poisson and block-bootstrap 95 % limits (per 10⁶ km²) and ``block / Poisson CI width``: how
        many times wider the block interval is (it includes the clustering of craters, the Poisson one
        does not).
    """
    if not densities:
        raise InputError("density_table needs at least one crater_density result")
    unit = "per 10⁶ km²"
    frames = {}
    for name, ds in densities.items():
        if "density_block_ci_low" not in ds:
            raise InputError(f"{name}: no block-bootstrap interval; run crater_density with block_deg (e.g. 10)")
        poisson = ds["density_ci_high"].values - ds["density_ci_low"].values
        block = ds["density_block_ci_high"].values - ds["density_block_ci_low"].values
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = block / poisson
        frames[name] = pd.DataFrame({
            "count": ds["count"].values,
            "area (km²)": ds["area_km2"].values,
            f"density ({unit})": ds["density"].values,
            f"Poisson 95% low ({unit})": ds["density_ci_low"].values,
            f"Poisson 95% high ({unit})": ds["density_ci_high"].values,
            f"block 95% low ({unit})": ds["density_block_ci_low"].values,
            f"block 95% high ({unit})": ds["density_block_ci_high"].values,
            "block / Poisson CI width": ratio,
        }, index=pd.Index([str(r) for r in ds["region"].values], name="region"))
    return pd.concat(frames, names=["catalogue"])
