"""Hemispheric asymmetry: area-weighted regional statistics with honest, spatially aware uncertainty.

Everything here works on a global ``(lat, lon)`` grid (``workbench`` conventions: cell-centred, lat
descending, lon -180...180). Each cell carries its exact spherical area
(:func:`workbench.geo.area_weights`), so a region's *mean* is the area-weighted mean and its
*quantiles* are quantiles of the area distribution ("half the near side's area lies below the
median"), not of the pixel count, which would over-weight the poles of an equirectangular grid.

Uncertainty respects spatial autocorrelation
--------------------------------------------
Neighbouring pixels are not independent samples of a hemisphere: a mare basin is hundreds of pixels
that tell one story. Treating pixels as iid gives confidence intervals that are far too narrow. We use
a **spatial block bootstrap** (Künsch 1989; Lahiri 2003, ch. 2): the grid is cut into blocks of
``block_deg`` x ``block_deg`` degrees (10° by default, about 300 km at the equator), each region is
the set of its blocks (a block straddling a region boundary contributes only its part inside the
region), and a bootstrap replicate draws as many blocks as the region has, with replacement. A
replicate's mean is the ratio estimator ``sum(area * value) / sum(area)`` over the drawn blocks, so
every statistic stays area weighted (small polar blocks count for little). Quantiles come from the
summed, area-weighted histograms of the drawn blocks; each region has its own 2048 equal-area bins
(edges at the region's weighted quantiles), so a skewed variable or one extreme pixel elsewhere on
the grid cannot coarsen them. A quantile interval is widened outward to the edges of the bins that
hold its ends (the method's resolution) and, like every interval here, always contains its own
point estimate.

*Choice of block size.* The block must be larger than the distance over which the field stays
correlated, or the bootstrap still treats dependent data as independent; it must be small enough
that a hemisphere still holds enough blocks for a stable percentile interval. The interval width
grows with block size and levels off once blocks exceed the correlation length (Lahiri 2003, §7);
:func:`block_size_sensitivity` measures that curve. For LOLA elevation on the near side (4 px/deg,
300 replicates, seed 0) the 95% CI of the mean is about 7 m wide for iid pixels, 120 m for 5°
blocks, 230 m for 10°, 320 m for 15°, 350 m for 20° and 530 m for 30° blocks: the growth slows
but never stops, because lunar topography is correlated on basin scales (the largest basins span
tens of degrees). 10° blocks (about 300 km, larger than most basins; 324 blocks per hemisphere) are
the default as a compromise, giving intervals ~35x wider than the naive iid ones; expect them to be
somewhat optimistic for fields dominated by the largest basins and check the sensitivity table.
``block_deg=None`` gives the naive iid pixel bootstrap for comparison.

*Limits, measured.* With a complete map the area-weighted mean is exact; the interval describes
how the statistic would vary for another realisation of a spatially correlated process, and blocks
can only capture correlation up to their own size. On the synthetic Moon (``make_moon``, 2 px/deg,
seeds 0-9) the far-minus-near highland silicate Mg# contrast varies between seeds with SD 2.6 Mg#
units, while the 10° block 95% interval has a mean half-width of only 0.57 (and 1.1, 1.6, 2.2 for
20°, 30°, 45° blocks on seed 0): its random composition fields have power at hemispheric scales,
which no block bootstrap of one map can see. The p-values and intervals are therefore conditional on
dependence being shorter than the block size.

Differences between regions are tested by **permuting block labels, not pixels**: the region label of
each whole block (or block part) is shuffled, which keeps the within-block dependence under the null
hypothesis (a block permutation test in the sense of Good 2005, §9). Effect sizes are Cohen's d with
area-weighted variances and the common-language effect size ``P(X_a > X_b)`` (McGraw & Wong 1992).

References
----------
Künsch, H. R. (1989), The jackknife and the bootstrap for general stationary observations,
Ann. Stat. 17:1217-1241.
Lahiri, S. N. (2003), Resampling Methods for Dependent Data, Springer.
Good, P. (2005), Permutation, Parametric and Bootstrap Tests of Hypotheses, 3rd ed., Springer.
McGraw, K. O. & Wong, S. P. (1992), A common language effect size statistic, Psychol. Bull.
111:361-365.
Efron, B. & Tibshirani, R. (1993), An Introduction to the Bootstrap, Chapman & Hall (percentile
intervals).
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from ..errors import InputError
from ..geo import WARP_HINT, area_weights, check_latlon, great_circle_distance, hemisphere_masks, wrap_lon_180
from ..validate import is_whole_number

__all__ = [
    "DEFAULT_BLOCK_DEG",
    "DEFAULT_QUANTILES",
    "block_ids",
    "weighted_quantile",
    "area_weighted_mean",
    "great_circle_split",
    "terrane_masks",
    "region_masks",
    "region_rng",
    "region_statistics",
    "compare_regions",
    "block_size_sensitivity",
    "region_distributions",
    "mg_number",
    "fraction_above",
    "asymmetry_summary",
]

#: Default bootstrap block edge (degrees); see the module docstring for the choice.
DEFAULT_BLOCK_DEG: float = 10.0
#: Quantiles reported by :func:`region_statistics`.
DEFAULT_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)
_N_HIST_BINS = 2048
_FLOATS_PER_CHUNK = 4_000_000


# ----------------------------------------------------------------------------------------------
# input checks and small helpers
# ----------------------------------------------------------------------------------------------
def _check_grid(da: xr.DataArray, what: str = "asymmetry statistics") -> xr.DataArray:
    """``da`` transposed to ``(lat, lon)``, or one :class:`InputError` saying what is wrong with it."""
    if not isinstance(da, xr.DataArray):
        raise InputError(
            f"expected an xarray.DataArray on (lat, lon), got {type(da).__name__}; pick one variable, "
            "e.g. ds['elevation']"
        )
    if "lat" not in da.dims or "lon" not in da.dims:
        raise InputError(
            f"{what} need a grid with dims ('lat', 'lon'), got dims {da.dims}; a grid in degrees under other "
            f"names: rename its dims (e.g. da.rename(y='lat', x='lon')); else {WARP_HINT}"
        )
    extra = [d for d in da.dims if d not in ("lat", "lon")]
    if extra:
        raise InputError(
            f"the variable has extra dimensions {extra}; select one slice first, e.g. da.isel({extra[0]}=0)"
        )
    check_latlon(da["lat"].values, da["lon"].values)
    return da.transpose("lat", "lon")


def _match(src, dst) -> np.ndarray | None:
    """Index ``idx`` with ``src[idx] == dst`` to within a thousandth of a cell, or None if the values differ.

    The two coordinate vectors may list the same values in any order (south-up, west-right grids).
    """
    src, dst = np.asarray(src, dtype=float).ravel(), np.asarray(dst, dtype=float).ravel()
    if src.shape != dst.shape:
        return None
    step = float(np.median(np.abs(np.diff(np.sort(dst))))) if dst.size > 1 else 1.0
    tol = 1e-3 * step if step > 0 else 1e-9
    o_src, o_dst = np.argsort(src, kind="stable"), np.argsort(dst, kind="stable")
    if not np.all(np.abs(src[o_src] - dst[o_dst]) <= tol):
        return None
    idx = np.empty(dst.size, dtype=np.intp)
    idx[o_dst] = o_src
    return idx


def _as_mask(mask, da: xr.DataArray, name: str) -> np.ndarray:
    """A boolean numpy mask in the ``(lat, lon)`` layout of ``da``.

    A DataArray mask is aligned by its coordinates, so it may be south-up, west-right, transposed or
    on 0...360 longitudes; it must hold the same cells as ``da``. A numpy mask is taken as already in
    ``da``'s layout. NaN (or 0) in a float mask means outside.
    """
    if isinstance(mask, xr.DataArray):
        if set(mask.dims) != {"lat", "lon"}:
            raise InputError(f"mask {name!r} must have dims ('lat', 'lon'), got {mask.dims}")
        m = mask.transpose("lat", "lon")
        il = _match(m["lat"].values, da["lat"].values)
        jl = _match(wrap_lon_180(m["lon"].values), wrap_lon_180(da["lon"].values))
        if il is None or jl is None:
            raise InputError(
                f"mask {name!r} is on a different grid from the data (its lat/lon cells differ, not just their "
                "order); build it from the same dataset (e.g. region_masks(da)) or use "
                "mask.interp_like(da, method='nearest')"
            )
        m = np.asarray(m.values)[np.ix_(il, jl)]
    else:
        m = np.asarray(mask)
        if m.shape != da.shape:
            raise InputError(f"mask {name!r} has shape {m.shape} but the data has shape {da.shape}")
    if m.dtype != bool:
        if not np.all(np.isin(m[np.isfinite(m)] if m.dtype.kind == "f" else m, [0, 1])):
            raise InputError(f"mask {name!r} must be boolean (True inside the region)")
        m = np.nan_to_num(m.astype(float)).astype(bool)
    return m


def block_ids(da: xr.DataArray | xr.Dataset, block_deg: float | None = DEFAULT_BLOCK_DEG) -> np.ndarray:
    """Integer block label of every (lat, lon) cell for ``block_deg`` x ``block_deg`` blocks.

    Blocks are aligned on -180° longitude and +90° latitude, so for any ``block_deg`` dividing 90
    the near/far (±90°) and north/south (0°) boundaries fall on block edges. ``block_deg=None``
    labels every cell separately (the iid pixel bootstrap), numbered north to south and west to
    east (longitudes wrapped to -180...180) whatever the grid's layout, so results do not depend on it.
    """
    lat = np.asarray(da["lat"].values, dtype=float)
    lon = np.asarray(da["lon"].values, dtype=float)
    if block_deg is None:
        i = np.empty(lat.size, dtype=np.int64)
        i[np.argsort(-lat, kind="stable")] = np.arange(lat.size)
        j = np.empty(lon.size, dtype=np.int64)
        j[np.argsort(wrap_lon_180(lon), kind="stable")] = np.arange(lon.size)
        return i[:, None] * lon.size + j[None, :]
    if not (0 < block_deg <= 180):
        raise InputError(f"block_deg must be in (0, 180] degrees, got {block_deg}")
    i = np.floor((90.0 - lat) / block_deg).astype(int)
    j = np.floor(((lon + 180.0) % 360.0) / block_deg).astype(int)
    n_j = int(np.ceil(360.0 / block_deg))
    return i[:, None] * n_j + j[None, :]


def weighted_quantile(values, weights, q) -> np.ndarray:
    """Quantiles of ``values`` under ``weights`` (NaN values ignored).

    Uses the mid-point plotting position ``(cumsum(w) - w/2) / sum(w)`` with linear interpolation,
    which reduces to the usual ``(i + 0.5)/n`` definition for equal weights (Hyndman & Fan 1996,
    definition 5). Cells with zero weight or a NaN value are ignored; NaN when none is left.

    Raises
    ------
    InputError
        If any ``q`` is outside [0, 1] (or NaN), or a weight is negative or not finite.

    Examples
    --------
    >>> float(weighted_quantile([1, 2, 3], [1, 1, 1], 0.5))
    2.0
    """
    qa = np.asarray(q, dtype=float)
    if not np.all((qa >= 0) & (qa <= 1)):
        raise InputError(f"quantiles q must lie in [0, 1] (0.5 is the median), got {q}")
    x = np.asarray(values, dtype=float).ravel()
    w = np.broadcast_to(np.asarray(weights, dtype=float), np.shape(values)).ravel()
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise InputError(
            f"weights must be finite and non-negative (areas, counts); {int(bad.sum())} of {w.size} are not "
            f"(first: {w[bad][0]:.4g}); give a zero weight to leave a value out"
        )
    ok = np.isfinite(x) & (w > 0)
    if not ok.any():
        return np.full(np.shape(q), np.nan)
    x, w = x[ok], w[ok]
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(qa, cdf, x)


def area_weighted_mean(da: xr.DataArray, mask=None) -> float:
    """Spherical-area-weighted mean of ``da`` (optionally inside ``mask``), NaN cells ignored.

    Examples
    --------
    >>> import workbench.geo as geo
    >>> t = geo.global_template(1).fillna(3.0)
    >>> round(area_weighted_mean(t), 12)
    3.0
    """
    da = _check_grid(da)
    w = area_weights(da).values
    x = da.values.astype(float)
    ok = np.isfinite(x)
    if mask is not None:
        ok &= _as_mask(mask, da, "mask")
    if not ok.any():
        raise InputError("no valid (finite) cells inside the mask; check the mask and the data's NaNs")
    return float(np.sum(w[ok] * x[ok]) / np.sum(w[ok]))


# ----------------------------------------------------------------------------------------------
# regions
# ----------------------------------------------------------------------------------------------
def great_circle_split(
    da: xr.DataArray | xr.Dataset, pole_lat: float, pole_lon: float
) -> dict[str, xr.DataArray]:
    """Split the sphere by the great circle whose pole is (``pole_lat``, ``pole_lon``).

    Returns masks ``"pole side"`` (within 90° of the pole) and ``"antipode side"``. With the pole at
    (0, 0) this is exactly near/far (up to cells on the boundary).
    """
    if not (-90 <= pole_lat <= 90):
        raise InputError(f"pole_lat must be in [-90, 90] degrees, got {pole_lat}")
    lat2, lon2 = xr.broadcast(da["lat"], da["lon"])
    ang = great_circle_distance(lat2, lon2, pole_lat, pole_lon, radius=np.degrees(1.0))
    side = (ang <= 90.0).transpose("lat", "lon")
    return {"pole side": side, "antipode side": ~side}


def terrane_masks(terrane: xr.DataArray) -> dict[str, xr.DataArray]:
    """Boolean masks named after a CF flag variable's ``flag_meanings`` (one per ``flag_values``)."""
    vals = terrane.attrs.get("flag_values")
    names = terrane.attrs.get("flag_meanings")
    if vals is None or names is None:
        raise InputError(
            "the terrane variable needs CF attrs 'flag_values' and 'flag_meanings' (space-separated names)"
        )
    names = names.split() if isinstance(names, str) else list(names)
    vals = list(np.atleast_1d(vals))
    if len(names) != len(vals):
        raise InputError(f"flag_meanings has {len(names)} names but flag_values has {len(vals)} values")
    return {str(n): (terrane == v).transpose("lat", "lon") for n, v in zip(names, vals, strict=True)}


def region_masks(obj: xr.DataArray | xr.Dataset, terranes: bool = True) -> dict[str, xr.DataArray]:
    """``near``, ``far``, ``north``, ``south`` masks, plus the terranes of a Dataset with ``terrane``."""
    masks = dict(hemisphere_masks(obj))
    if terranes and isinstance(obj, xr.Dataset) and "terrane" in obj:
        masks.update(terrane_masks(obj["terrane"]))
    return masks


# ----------------------------------------------------------------------------------------------
# resampling core
# ----------------------------------------------------------------------------------------------
@dataclass
class _Units:
    """Per-unit (block or block part) sums of one region, with area-weighted histograms."""

    sw: np.ndarray  # area per unit (km^2)
    swx: np.ndarray  # sum of area * value
    swxx: np.ndarray  # sum of area * value^2
    hist: np.ndarray | sparse.csr_matrix | None  # (n_units, n_bins) area per value bin
    edges: np.ndarray
    discrete: bool = False  # one bin per distinct value (edges = the values): quantiles are values

    @property
    def n(self) -> int:
        return self.sw.size


def _prepare(da: xr.DataArray, block_deg: float | None):
    da = _check_grid(da)
    x = da.values.astype(float)
    w = area_weights(da).values
    ids = block_ids(da, block_deg)
    return da, x, w, ids


def _units(x, w, ids, sel, edges, with_hist: bool = True) -> _Units:
    ok = sel & np.isfinite(x)
    xs, ws, bs = x[ok], w[ok], ids[ok]
    # block ids are small non-negative integers: relabel the occupied ones 0..n-1 without sorting
    present = np.bincount(bs, minlength=int(ids.max()) + 1) > 0
    lookup = np.cumsum(present) - 1
    inv = lookup[bs]
    n = int(present.sum())
    sw = np.bincount(inv, ws, n)
    swx = np.bincount(inv, ws * xs, n)
    swxx = np.bincount(inv, ws * xs * xs, n)
    nb = edges.size - 1
    hist = None
    if with_hist:
        b = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, nb - 1)
        if n * nb <= _FLOATS_PER_CHUNK:
            hist = np.bincount(inv * nb + b, ws, n * nb).reshape(n, nb)
        else:
            hist = sparse.csr_matrix((ws, (inv, b)), shape=(n, nb))
    return _Units(sw, swx, swxx, hist, edges, _is_discrete(edges))


def _is_discrete(edges: np.ndarray) -> bool:
    """True for :func:`_region_edges` of a region with few distinct values (its last edge repeated)."""
    return edges.size > 1 and edges[-1] == edges[-2]


def _region_edges(xs: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """Equal-area histogram edges of one region: its weighted quantiles at ``j / _N_HIST_BINS``.

    Bins follow the region's own distribution, so skew or an extreme value elsewhere on the grid does
    not make them coarse (the bins of a global min-max range can put a whole region in one bin). A region
    with at most ``_N_HIST_BINS`` distinct values, each on two cells or more on average (integers, 0/1
    indicators), gets one bin per value
    instead, its last edge repeated (:func:`_is_discrete`): tied values would otherwise give empty
    zero-width bins and a bin spanning the gap to the next value, read as if values lay inside it.
    """
    values = np.unique(xs)
    if 1 < values.size <= _N_HIST_BINS and values.size < xs.size / 2:  # few values, many ties
        return np.r_[values, values[-1]]
    edges = weighted_quantile(xs, ws, np.linspace(0.0, 1.0, _N_HIST_BINS + 1))
    edges = np.maximum.accumulate(edges)
    if edges[-1] == edges[-2]:  # keep the continuous form distinguishable from the discrete one (and a
        edges[-1] = np.nextafter(edges[-1], np.inf)  # constant region's range non-empty)
    return edges


def _cover(lo, hi, est, edges: np.ndarray | None = None):
    """Interval ``[lo, hi]`` widened to contain ``est`` and, with ``edges``, out to the bin edges holding its ends.

    Percentile intervals of a skewed bootstrap distribution can miss their own estimate; histogram
    quantiles are only resolved to a bin. NaN ends (too few blocks) stay NaN.
    """
    lo, hi = np.minimum(lo, est), np.maximum(hi, est)
    if edges is not None:
        nb = edges.size - 1
        ok = np.isfinite(lo) & np.isfinite(hi)
        jl = np.clip(np.searchsorted(edges, np.where(ok, lo, edges[0]), side="right") - 1, 0, nb - 1)
        jh = np.clip(np.searchsorted(edges, np.where(ok, hi, edges[-1]), side="left"), 1, nb)
        lo = np.where(ok, np.minimum(lo, edges[jl]), lo)
        hi = np.where(ok, np.maximum(hi, edges[jh]), hi)
    return lo, hi


def _count_chunks(rng: np.random.Generator, n_units: int, n_boot: int) -> Iterator[np.ndarray]:
    """Bootstrap multiplicities (how often each unit is drawn), ``(chunk, n_units)`` float arrays."""
    chunk = max(1, _FLOATS_PER_CHUNK // max(n_units, 1))
    done = 0
    while done < n_boot:
        k = min(chunk, n_boot - done)
        draws = rng.integers(0, n_units, size=(k, n_units))
        flat = draws + (np.arange(k, dtype=np.int64) * n_units)[:, None]
        counts = np.bincount(flat.ravel(), minlength=k * n_units).reshape(k, n_units).astype(float)
        done += k
        yield counts


def _quantiles_from_hist(h: np.ndarray, edges: np.ndarray, q: np.ndarray, discrete: bool = False) -> np.ndarray:
    """Quantiles (columns) of each row's binned area distribution by linear interpolation in bins
    (``discrete``: the value of the bin that holds the quantile)."""
    cdf = np.cumsum(h, axis=1)
    tot = cdf[:, -1:]
    cdf = cdf / np.where(tot > 0, tot, np.nan)
    out = np.empty((h.shape[0], q.size))
    for k, qq in enumerate(q):
        j = np.argmax(cdf >= qq - 1e-12, axis=1)
        prev = np.where(j > 0, cdf[np.arange(cdf.shape[0]), j - 1], 0.0)
        cur = cdf[np.arange(cdf.shape[0]), j]
        frac = np.where(cur > prev, (qq - prev) / np.where(cur > prev, cur - prev, 1.0), 0.5)
        out[:, k] = edges[j] if discrete else edges[j] + np.clip(frac, 0, 1) * (edges[j + 1] - edges[j])
    return out


def _bootstrap(u: _Units, rng, n_boot: int, q: np.ndarray | None):
    means = np.empty(n_boot)
    quants = np.empty((n_boot, 0 if q is None else q.size))
    i = 0
    for c in _count_chunks(rng, u.n, n_boot):
        k = c.shape[0]
        means[i : i + k] = (c @ u.swx) / (c @ u.sw)
        if q is not None:
            quants[i : i + k] = _quantiles_from_hist(np.asarray((u.hist.T @ c.T).T), u.edges, q, u.discrete)
        i += k
    return means, quants


#: Fewest resampling units (blocks) a block-bootstrap interval is given for. With fewer, every replicate is
#: nearly the data itself and the percentile interval collapses (a region inside one block gets [m, m]):
#: the interval is NaN instead, with a warning naming the fix.
MIN_BOOT_UNITS = 5


def enough_units(n_units: int, what: str) -> bool:
    """False (with a warning) when ``n_units`` bootstrap blocks are too few for an interval."""
    if n_units >= MIN_BOOT_UNITS:
        return True
    warnings.warn(f"{what} spans only {n_units} bootstrap block(s) (fewer than {MIN_BOOT_UNITS}), too few for "
                  "an honest interval: it is reported as NaN. Use a smaller block_deg or a larger region",
                  stacklevel=3)
    return False


def _pct_ci(samples: np.ndarray, level: float, n_units: int | None = None, what: str = "the region"
            ) -> tuple[float, float]:
    if n_units is not None and not enough_units(n_units, what):
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(samples, [a, 1.0 - a])
    return float(lo), float(hi)


def _check_level(level: float, n_boot: int) -> None:
    if not (0 < level < 1):
        raise InputError(f"confidence level must be in (0, 1), e.g. 0.95; got {level}")
    if not is_whole_number(n_boot):
        raise InputError(f"n_boot must be a whole number of replicates, e.g. 1000; got {n_boot!r}")
    if n_boot < 50:
        raise InputError(f"n_boot={n_boot} is too few replicates for a percentile interval; use >= 200")


# ----------------------------------------------------------------------------------------------
# public statistics
# ----------------------------------------------------------------------------------------------
def region_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream of region ``name`` under ``seed``: the same whichever regions come with it.

    The region's name enters the seed through its CRC-32, which is stable across Python runs (unlike
    ``hash``).

    Examples
    --------
    >>> bool(region_rng(0, "near").integers(100) == region_rng(0, "near").integers(100))
    True
    """
    return np.random.default_rng([int(seed), zlib.crc32(str(name).encode("utf-8"))])


def region_statistics(
    da: xr.DataArray,
    regions: Mapping[str, object] | None = None,
    *,
    block_deg: float | None = DEFAULT_BLOCK_DEG,
    n_boot: int = 1000,
    level: float = 0.95,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    seed: int = 0,
) -> xr.Dataset:
    """Area-weighted mean, median and quantiles of ``da`` per region with block-bootstrap intervals.

    Parameters
    ----------
    da
        Global (lat, lon) variable; NaN cells are excluded (their area does not count).
    regions
        Name -> boolean (lat, lon) mask. Default: ``near``, ``far``, ``north``, ``south``.
    block_deg
        Bootstrap block edge in degrees (module docstring); ``None`` for the iid pixel bootstrap.
    n_boot, level, seed
        Number of bootstrap replicates, interval level, random seed.
    quantiles
        Quantiles to report (0.5 is always included as ``median``).

    Returns
    -------
    xarray.Dataset
        Dims ``region`` (and ``quantile``): ``mean``, ``mean_ci_low``/``mean_ci_high``, ``median``,
        ``median_ci_low``/``median_ci_high``, ``std`` (area weighted), ``quantiles``,
        ``quantile_ci_low``/``quantile_ci_high``, ``area_km2`` (valid area), ``area_fraction``
        (of the valid global area), ``n_units`` (bootstrap blocks). ``attrs`` record the units,
        method, block size, replicate count and seed.

    Notes
    -----
    Point quantiles are exact area-weighted quantiles (:func:`weighted_quantile`). Bootstrap
    replicate quantiles are read from per-block histograms on the region's own 2048 equal-area bins;
    each quantile interval is the percentile interval widened to contain the point estimate and out to
    the edges of the bins holding its ends. Mean intervals are widened to contain the mean (they
    practically always do). Each region draws from its own random stream, seeded by ``seed`` and
    the region's name (:func:`region_rng`), so its intervals do not depend on which other regions are
    asked for or in what order.
    """
    _check_level(level, n_boot)
    da, x, w, ids = _prepare(da, block_deg)
    regions = hemisphere_masks(da) if regions is None else regions
    if not regions:
        raise InputError("no regions given; pass a dict name -> boolean mask")
    q = np.unique(np.r_[np.asarray(quantiles, dtype=float), 0.5])
    if not np.all((q > 0) & (q < 1)):
        raise InputError(f"quantiles must lie strictly between 0 and 1, got {quantiles}")
    total_area = float(w[np.isfinite(x)].sum())
    rows = []
    for name, mask in regions.items():
        rng = region_rng(seed, name)
        sel = _as_mask(mask, da, name)
        ok = sel & np.isfinite(x)
        if not ok.any():
            raise InputError(
                f"region {name!r} contains no valid (finite) cells of {da.name!r}; check the mask or "
                "the data coverage"
            )
        edges = _region_edges(x[ok], w[ok])
        u = _units(x, w, ids, sel, edges)
        mean = u.swx.sum() / u.sw.sum()
        var = max(u.swxx.sum() / u.sw.sum() - mean**2, 0.0)
        pq = weighted_quantile(x[ok], w[ok], q)
        bm, bq = _bootstrap(u, rng, n_boot, q)
        a = (1 - level) / 2
        if enough_units(u.n, f"region {name!r}"):
            mean_ci = tuple(float(v) for v in _cover(*_pct_ci(bm, level), mean))
            qlo, qhi = _cover(np.nanquantile(bq, a, axis=0), np.nanquantile(bq, 1 - a, axis=0), pq,
                              None if u.discrete else edges)  # discrete replicates are exact values
        else:
            mean_ci, qlo, qhi = (np.nan, np.nan), np.full(q.size, np.nan), np.full(q.size, np.nan)
        im = int(np.argmin(np.abs(q - 0.5)))
        rows.append(
            dict(
                mean=mean, mean_ci=mean_ci, median=pq[im], median_ci=(qlo[im], qhi[im]),
                std=np.sqrt(var), quantiles=pq, qlo=qlo, qhi=qhi, area=u.sw.sum(),
                frac=u.sw.sum() / total_area, n_units=u.n,
            )
        )
    names = list(regions)
    units = da.attrs.get("units", "")
    out = xr.Dataset(
        {
            "mean": ("region", [r["mean"] for r in rows]),
            "mean_ci_low": ("region", [r["mean_ci"][0] for r in rows]),
            "mean_ci_high": ("region", [r["mean_ci"][1] for r in rows]),
            "median": ("region", [r["median"] for r in rows]),
            "median_ci_low": ("region", [r["median_ci"][0] for r in rows]),
            "median_ci_high": ("region", [r["median_ci"][1] for r in rows]),
            "std": ("region", [r["std"] for r in rows]),
            "quantiles": (("region", "quantile"), np.array([r["quantiles"] for r in rows])),
            "quantile_ci_low": (("region", "quantile"), np.array([r["qlo"] for r in rows])),
            "quantile_ci_high": (("region", "quantile"), np.array([r["qhi"] for r in rows])),
            "area_km2": ("region", [r["area"] for r in rows]),
            "area_fraction": ("region", [r["frac"] for r in rows]),
            "n_units": ("region", [r["n_units"] for r in rows]),
        },
        coords={"region": names, "quantile": q},
    )
    for v in ("mean", "mean_ci_low", "mean_ci_high", "median", "median_ci_low", "median_ci_high", "std",
              "quantiles", "quantile_ci_low", "quantile_ci_high"):
        out[v].attrs["units"] = units
    out["area_km2"].attrs["units"] = "km2"
    out["area_fraction"].attrs["units"] = "1"
    out.attrs.update(
        variable=str(da.name), units=units, level=level, n_boot=n_boot, seed=seed,
        block_deg=-1.0 if block_deg is None else float(block_deg),
        method=(
            "area-weighted statistics; percentile intervals from a spatial block bootstrap "
            f"({'iid pixels' if block_deg is None else f'{block_deg} deg blocks'}, {n_boot} replicates)"
        ),
    )
    return out


def _weighted_cles(xa: np.ndarray, wa: np.ndarray, xb: np.ndarray, wb: np.ndarray) -> float:
    """Exact area-weighted ``P(X_a > X_b) + P(X_a = X_b) / 2`` (one sort of ``b``, no binning)."""
    order = np.argsort(xb, kind="stable")
    xb, cw = xb[order], np.r_[0.0, np.cumsum(wb[order])]
    below = cw[np.searchsorted(xb, xa, side="left")]
    upto = cw[np.searchsorted(xb, xa, side="right")]
    return float(np.sum(wa * (0.5 * (below + upto))) / (wa.sum() * cw[-1]))


def compare_regions(
    da: xr.DataArray,
    mask_a,
    mask_b,
    *,
    block_deg: float | None = DEFAULT_BLOCK_DEG,
    n_boot: int = 1000,
    n_perm: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    names: tuple[str, str] = ("a", "b"),
) -> dict:
    """Difference of area-weighted means between two regions, with CI, permutation p-value and effect sizes.

    * ``value``: mean(a) - mean(b).
    * ``ci95`` (at ``level``): percentile interval from a block bootstrap stratified by region (blocks
      of each region resampled independently).
    * ``p_value``: two-sided block permutation test. Units are blocks (or the parts of a block inside
      each region); their region labels are shuffled ``n_perm`` times, keeping each region's number of
      units, and the statistic is recomputed as a difference of area-weighted means.
      ``p = (1 + #{|d*| >= |d|}) / (1 + n_perm)`` (Phipson & Smyth 2010), so it is never 0. With few
      units the test stays valid but weak: only ``C(n_a + n_b, n_a)`` labellings exist, so ``p`` cannot
      fall much below their inverse (2 + 2 blocks: 6 labellings, ``p >= 1/3`` for a two-sided
      difference); the interval is NaN below :data:`MIN_BOOT_UNITS` blocks per region.
    * ``cohens_d``: difference over the pooled area-weighted standard deviation.
    * ``cles``: area-weighted probability that a random point of ``a`` exceeds one of ``b`` (ties count
      half), computed exactly from the cell values.

    The interval is widened, if need be, to contain ``value``.

    References
    ----------
    Phipson, B. & Smyth, G. K. (2010), Permutation p-values should never be zero, Stat. Appl. Genet.
    Mol. Biol. 9(1):39.
    """
    _check_level(level, n_boot)
    if not is_whole_number(n_perm):
        raise InputError(f"n_perm must be a whole number of permutations, e.g. 1999; got {n_perm!r}")
    if n_perm < 99:
        raise InputError(f"n_perm={n_perm} is too few permutations: the smallest p-value is 1/(n_perm + 1); use at "
                         "least 99, and 999 or more to resolve p-values near 0.01")
    da, x, w, ids = _prepare(da, block_deg)
    sa, sb = _as_mask(mask_a, da, names[0]), _as_mask(mask_b, da, names[1])
    oka, okb = sa & np.isfinite(x), sb & np.isfinite(x)
    for nm, ok in zip(names, (oka, okb), strict=True):
        if not ok.any():
            raise InputError(f"region {nm!r} contains no valid cells; check the mask or data coverage")
    edges = np.array([0.0, 1.0])  # no histograms needed: the CLES is exact
    ua, ub = _units(x, w, ids, sa, edges, with_hist=False), _units(x, w, ids, sb, edges, with_hist=False)
    ma, mb = ua.swx.sum() / ua.sw.sum(), ub.swx.sum() / ub.sw.sum()
    va = max(ua.swxx.sum() / ua.sw.sum() - ma**2, 0.0)
    vb = max(ub.swxx.sum() / ub.sw.sum() - mb**2, 0.0)
    diff = ma - mb
    rng = np.random.default_rng(seed)
    bma, _ = _bootstrap(ua, rng, n_boot, None)
    bmb, _ = _bootstrap(ub, rng, n_boot, None)
    # block permutation test
    sw = np.r_[ua.sw, ub.sw]
    swx = np.r_[ua.swx, ub.swx]
    lab = np.r_[np.ones(ua.n), np.zeros(ub.n)]
    chunk = max(1, _FLOATS_PER_CHUNK // sw.size)
    exceed, done = 0, 0
    while done < n_perm:
        k = min(chunk, n_perm - done)
        L = rng.permuted(np.broadcast_to(lab, (k, lab.size)), axis=1)
        d = (L @ swx) / (L @ sw) - ((1 - L) @ swx) / ((1 - L) @ sw)
        exceed += int(np.sum(np.abs(d) >= abs(diff) - 1e-12 * max(1.0, abs(diff))))
        done += k
    pooled = np.sqrt((va + vb) / 2.0)
    return {
        "a": names[0],
        "b": names[1],
        "value": float(diff),
        "ci95": [float(v) for v in _cover(*_pct_ci(bma - bmb, level, min(ua.n, ub.n),
                                                      f"region {names[0]!r} or {names[1]!r}"), diff)],
        "p_value": float((1 + exceed) / (1 + n_perm)),
        "n_perm": int(n_perm),
        "cohens_d": float(diff / pooled) if pooled > 0 else float("nan"),
        "cles": _weighted_cles(x[oka], w[oka], x[okb], w[okb]),
        "mean_a": float(ma),
        "mean_b": float(mb),
        "n_units_a": int(ua.n),
        "n_units_b": int(ub.n),
        "units": da.attrs.get("units", ""),
        "level": level,
        "method": (
            f"block bootstrap ({n_boot}) and block-label permutation test ({n_perm}); blocks "
            f"{'iid pixels' if block_deg is None else f'{block_deg} deg'}"
        ),
    }


def block_size_sensitivity(
    da: xr.DataArray,
    mask,
    block_sizes: tuple[float | None, ...] = (None, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0),
    *,
    n_boot: int = 400,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Width of the bootstrap CI of a region's area-weighted mean as a function of block size.

    The width grows while blocks are smaller than the field's correlation length and levels off
    beyond it (Lahiri 2003, §7); the level-off point justifies the chosen block size. ``None`` is
    the iid pixel bootstrap.

    Returns
    -------
    pandas.DataFrame
        Columns ``block_deg`` (NaN for iid), ``n_units``, ``ci_low``, ``ci_high``, ``ci_width`` and
            ``width_vs_iid`` (ratio to the iid width when ``None`` is among the sizes).

    Raises
    ------
    InputError
        If the mask holds no valid (finite) cells, or on a bad level, replicate count or block size.
    """
    _check_level(level, n_boot)
    da, x, w, _ = _prepare(da, None)
    sel = _as_mask(mask, da, "mask")
    if not (sel & np.isfinite(x)).any():
        raise InputError(
            f"the mask contains no valid (finite) cells of {da.name!r}; check the mask or the data coverage"
        )
    edges = np.array([0.0, 1.0])  # means only: no histograms
    rows = []
    for b in block_sizes:
        u = _units(x, w, block_ids(da, b), sel, edges, with_hist=False)
        bm, _ = _bootstrap(u, np.random.default_rng(seed), n_boot, None)
        lo, hi = _pct_ci(bm, level, u.n, f"the mask at {b} deg blocks")
        rows.append({"block_deg": np.nan if b is None else float(b), "n_units": u.n, "ci_low": lo,
                     "ci_high": hi, "ci_width": hi - lo})
    df = pd.DataFrame(rows)
    iid = df.loc[df["block_deg"].isna(), "ci_width"]
    df["width_vs_iid"] = df["ci_width"] / float(iid.iloc[0]) if len(iid) else np.nan
    df.attrs["units"] = da.attrs.get("units", "")
    return df


def region_distributions(
    da: xr.DataArray, regions: Mapping[str, object] | None = None, bins: int | np.ndarray = 60
) -> xr.DataArray:
    """Area-weighted probability density of ``da`` in each region (dims ``region``, ``value``).

    Each region's density integrates to 1 over the value axis (units: 1 / units of ``da``).

    Parameters
    ----------
    da
        Global (lat, lon) variable.
    regions
        Name -> boolean (lat, lon) mask. Default: ``near``, ``far``, ``north``, ``south``.
    bins
        Number of equal bins over the data's range (>= 1), or increasing bin edges.

    Raises
    ------
    InputError
        If ``da`` has no finite values, is constant (no range to bin: pass explicit edges), or
        ``bins`` is not a positive count or increasing edges.
    """
    da = _check_grid(da)
    regions = hemisphere_masks(da) if regions is None else regions
    x = da.values.astype(float)
    w = area_weights(da).values
    fin = np.isfinite(x)
    if not fin.any():
        raise InputError(f"{da.name!r} has no finite values")
    if np.isscalar(bins):
        if isinstance(bins, bool) or not float(bins).is_integer() or bins < 1:
            raise InputError(f"bins must be a positive whole number of bins or an array of edges, got {bins!r}")
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
        if not hi > lo:
            raise InputError(
                f"{da.name!r} is constant ({lo:g}); there is no range to bin: pass explicit edges, "
                f"e.g. bins=[{lo - 1:g}, {lo + 1:g}]"
            )
        edges = np.linspace(lo, hi, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=float).ravel()
        if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise InputError(f"bin edges must be at least two finite, increasing values, got {bins!r}")
    dens = []
    for name, m in regions.items():
        ok = _as_mask(m, da, name) & fin
        h, _ = np.histogram(x[ok], bins=edges, weights=w[ok], density=True) if ok.any() else (
            np.full(edges.size - 1, np.nan), None)
        dens.append(h)
    centres = 0.5 * (edges[1:] + edges[:-1])
    out = xr.DataArray(np.array(dens), dims=("region", "value"),
                       coords={"region": list(regions), "value": centres}, name="density")
    units = da.attrs.get("units", "")
    out["value"].attrs["units"] = units
    out.attrs.update(units=f"1/{units}" if units else "1", long_name=f"area-weighted density of {da.name}")
    return out


# ----------------------------------------------------------------------------------------------
# chemistry
# ----------------------------------------------------------------------------------------------
#: Molar masses (g/mol) of MgO and FeO.
M_MGO: float = 40.30
M_FEO: float = 71.84


def _align_exact(feo, mgo):
    """FeO and MgO on exactly the same coordinates (MgO reordered to FeO's order if need be)."""
    if not (isinstance(feo, xr.DataArray) and isinstance(mgo, xr.DataArray)):
        return feo, mgo
    try:
        return xr.align(feo, mgo, join="exact")
    except ValueError:
        pass
    shared = [d for d in feo.dims if d in mgo.dims and d in feo.indexes and d in mgo.indexes]
    same = all(np.array_equal(np.sort(feo[d].values), np.sort(mgo[d].values)) for d in shared)
    if same:
        try:
            return xr.align(feo, mgo.sel({d: feo[d].values for d in shared}), join="exact")
        except (ValueError, KeyError):
            pass
    differ = [d for d in shared if not np.array_equal(feo[d].values, mgo[d].values)] or shared
    hint = "regrid one onto the other (e.g. mgo.interp_like(feo))"
    if "lon" in differ and np.array_equal(np.sort(wrap_lon_180(feo["lon"].values)),
                                          np.sort(wrap_lon_180(mgo["lon"].values))):
        hint = ("their longitudes use different conventions (-180...180 vs 0...360): wrap one, e.g. "
                "mgo.assign_coords(lon=workbench.geo.wrap_lon_180(mgo['lon'])).sortby('lon')")
    raise InputError(f"FeO and MgO are on different grids (their {differ} coordinates do not match exactly); {hint}")


def mg_number(feo: xr.DataArray, mgo: xr.DataArray) -> xr.DataArray:
    """Mg# = 100 * (MgO/40.30) / (MgO/40.30 + FeO/71.84), molar, from oxide wt%.

    NaN in either input gives NaN; negative oxides raise :class:`InputError`; where both are 0 the
    result is NaN (undefined). The two maps must hold the same cells: they are aligned exactly by
    their coordinates (the same values in another order, e.g. south-up, are reordered), and any other
    difference raises :class:`InputError` instead of silently dropping the cells that do not match.

    Examples
    --------
    >>> import xarray as xr
    >>> round(float(mg_number(xr.DataArray(71.84), xr.DataArray(40.30))), 6)
    50.0
    """
    feo, mgo = _align_exact(feo, mgo)
    for nm, v in (("FeO", feo), ("MgO", mgo)):
        units = getattr(v, "attrs", {}).get("units")
        if units not in (None, "wt%"):
            raise InputError(f"{nm} must be in wt% (attrs['units']='wt%'), got units {units!r}")
        if bool((v < 0).any()):
            raise InputError(
                f"{nm} has negative values (min {float(v.min()):.3g} wt%); fix the inversion first"
            )
    mg = mgo / M_MGO
    fe = feo / M_FEO
    tot = mg + fe
    out = 100.0 * mg / tot.where(tot > 0)
    out.name = "mg_number"
    out.attrs = {"units": "1", "long_name": "Mg# = 100 Mg/(Mg+Fe), molar",
                 "valid_range": [0.0, 100.0]}
    return out


def fraction_above(
    da: xr.DataArray,
    threshold: float,
    regions: Mapping[str, object] | None = None,
    *,
    within=None,
    block_deg: float | None = DEFAULT_BLOCK_DEG,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> xr.Dataset:
    """Fraction of each region's (valid) area where ``da > threshold``, with block-bootstrap CIs.

    ``within`` (e.g. a highland mask) restricts every region first: "fraction of the far-side
    highland area with Mg# > 75". The fraction is the area-weighted mean of the indicator, so it has
    the same estimator and intervals as :func:`region_statistics` (``mean`` is the fraction).

    Raises
    ------
    InputError
        If ``threshold`` is not a finite number (a NaN threshold would make every fraction 0).
    """
    da = _check_grid(da)
    if isinstance(threshold, bool) or np.ndim(threshold) != 0 or not np.isfinite(threshold):
        raise InputError(f"threshold must be a finite number in the units of {da.name!r}, got {threshold!r}")
    regions = hemisphere_masks(da) if regions is None else regions
    ind = (da > threshold).astype(float).where(np.isfinite(da))
    ind.name = f"{da.name}>{threshold}"
    ind.attrs["units"] = "1"
    if within is not None:
        w_m = _as_mask(within, da, "within")
        regions = {k: _as_mask(m, da, k) & w_m for k, m in regions.items()}
    st = region_statistics(ind, regions, block_deg=block_deg, n_boot=n_boot, level=level,
                           quantiles=(0.5,), seed=seed)
    out = st[["mean", "mean_ci_low", "mean_ci_high", "area_km2", "n_units"]].rename(
        mean="fraction", mean_ci_low="fraction_ci_low", mean_ci_high="fraction_ci_high")
    out.attrs.update(st.attrs, threshold=float(threshold), variable=str(da.name))
    return out


# ----------------------------------------------------------------------------------------------
# the CLI's summary
# ----------------------------------------------------------------------------------------------
def asymmetry_summary(
    da: xr.DataArray,
    *,
    block_deg: float | None = DEFAULT_BLOCK_DEG,
    n_boot: int = 1000,
    n_perm: int = 2000,
    seed: int = 0,
) -> dict:
    """Near/far/north/south statistics and the two hemispheric differences as a JSON-ready dict.

    Keys ``near``, ``far``, ``north``, ``south`` (each with ``mean``, ``ci95``, ``median``,
    ``median_ci95``, ``std``, ``area_km2``, ``area_fraction``) and ``near_minus_far``,
    ``north_minus_south`` (each with ``value``, ``ci95``, ``p_value``, ``cohens_d``, ``cles``).

    Raises
    ------
    InputError
        If ``da`` is not a DataArray on (lat, lon) with valid latitudes and longitudes, or on bad
        ``block_deg``, ``n_boot`` or ``n_perm``.
    """
    da = _check_grid(da)
    masks = hemisphere_masks(da)
    st = region_statistics(da, masks, block_deg=block_deg, n_boot=n_boot, seed=seed)
    out: dict = {
        "variable": str(da.name), "units": da.attrs.get("units", ""),
        "block_deg": block_deg, "n_boot": n_boot, "n_perm": n_perm, "seed": seed,
        "method": st.attrs["method"],
    }
    for r in ("near", "far", "north", "south"):
        s = st.sel(region=r)
        out[r] = {
            "mean": float(s["mean"]), "ci95": [float(s["mean_ci_low"]), float(s["mean_ci_high"])],
            "median": float(s["median"]),
            "median_ci95": [float(s["median_ci_low"]), float(s["median_ci_high"])],
            "std": float(s["std"]), "area_km2": float(s["area_km2"]),
            "area_fraction": float(s["area_fraction"]), "n_blocks": int(s["n_units"]),
        }
    for a, b in (("near", "far"), ("north", "south")):
        c = compare_regions(da, masks[a], masks[b], block_deg=block_deg, n_boot=n_boot, n_perm=n_perm,
                            seed=seed, names=(a, b))
        out[f"{a}_minus_{b}"] = {k: c[k] for k in ("value", "ci95", "p_value", "cohens_d", "cles")}
    return out
