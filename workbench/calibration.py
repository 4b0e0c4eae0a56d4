"""Radiometric calibration of multiband lunar images: cross-sensor calibration and destriping.

Every function takes generic spectral cubes: an :class:`xarray.DataArray` with a ``band`` dimension and
two spatial dimensions (``("lat", "lon")`` for global grids or ``("y", "x")`` for local/polar tiles), in
any order. Coordinates and attrs are kept; reflectance is dimensionless (``attrs["units"] = "1"``).

* **Cross-calibration** (:func:`fit_cross_calibration`, :func:`apply_cross_calibration`): the target
  sensor's per-band gain and offset relative to a reference sensor, ``target = gain · reference +
  offset``, fitted by robust regression over the pixels both sensors see (Theil–Sen by default, Huber
  as an alternative) with confidence intervals, the way Landsat 9 OLI-2 was tied to Landsat 8 OLI over
  their underfly overlap (Gross et al. 2022).
* **Destriping** (:func:`destripe`): per-detector (column) gain and offset estimated by moment matching
  against a running reference of neighbouring columns (Gadallah et al. 2000), with a robust variant
  (median / scaled IQR). :func:`stripe_power` measures the stripe residual against a known truth.

References
----------
Gross, G., Helder, D., Begeman, C., Leigh, L., Kaewmanee, M., Shah, R. (2022), Initial cross-calibration
of Landsat 8 and Landsat 9 using the simultaneous underfly event, Remote Sensing 14(10):2418.
Sen, P. K. (1968), Estimates of the regression coefficient based on Kendall's tau, J. Am. Stat. Assoc.
63:1379–1389.
Theil, H. (1950), A rank-invariant method of linear and polynomial regression analysis, Proc. KNAW 53.
Huber, P. J. (1964), Robust estimation of a location parameter, Ann. Math. Stat. 35:73–101.
Gadallah, F. L., Csillag, F., Smith, E. J. M. (2000), Destriping multisensor imagery with moment
matching, Int. J. Remote Sens. 21(12):2505–2511.
Horn, B. K. P., Woodham, R. J. (1979), Destriping LANDSAT MSS images by histogram modification,
Computer Graphics and Image Processing 10:69–83.
Efron, B., Tibshirani, R. (1993), An Introduction to the Bootstrap, Chapman & Hall (percentile CIs).
Künsch, H. R. (1989), The jackknife and the bootstrap for general stationary observations, Ann. Stat.
17:1217–1241 (block bootstrap).
Lahiri, S. N. (2003), Resampling Methods for Dependent Data, Springer (spatial block bootstrap).
Fuller, W. A. (1987), Measurement Error Models, Wiley (errors-in-variables attenuation, instruments).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import xarray as xr
from scipy import ndimage, stats

from .errors import InputError
from .geo import WARP_HINT, is_global_lon, north_up_flips
from .validate import is_whole_number

#: Pairs of spatial dimension names the calibration functions recognise.
SPATIAL_DIMS: tuple[tuple[str, str], ...] = (("lat", "lon"), ("y", "x"))

#: Default minimum number of pixels valid in both images for a cross-calibration fit.
MIN_PIXELS = 50


# ----------------------------------------------------------------------------------------- helpers
def as_cube(obj: xr.DataArray | xr.Dataset, var: str = "reflectance") -> xr.DataArray:
    """Return the spectral cube of ``obj`` (a DataArray, or ``obj[var]`` of a Dataset), checked.

    Raises
    ------
    InputError
        When there is no ``band`` dimension or no recognised pair of spatial dimensions.
    """
    if isinstance(obj, xr.Dataset):
        if var not in obj:
            raise InputError(
                f"dataset has no variable {var!r} (variables: {', '.join(map(str, obj.data_vars))}); "
                "pass the reflectance DataArray itself or name it with var="
            )
        obj = obj[var]
    if not isinstance(obj, xr.DataArray):
        raise InputError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    spatial_dims(obj)
    if "band" not in obj.dims:
        raise InputError(
            f"reflectance cube needs a 'band' dimension, found dims {obj.dims}; for a single band use "
            "da.expand_dims(band=['R750'])"
        )
    return obj


def spatial_dims(da: xr.DataArray | xr.Dataset) -> tuple[str, str]:
    """The (row, column) spatial dimension names of ``da``: ``("lat", "lon")`` or ``("y", "x")``."""
    for pair in SPATIAL_DIMS:
        if all(d in da.dims for d in pair):
            return pair
    raise InputError(
        f"no spatial dimensions found in dims {tuple(da.dims)}; images must have ('lat', 'lon') or "
        "('y', 'x') dimensions (rename them with da.rename(...))"
    )


def _check_count(name: str, value) -> None:
    """Raise :class:`InputError` unless ``value`` is a positive whole number."""
    if not is_whole_number(value) or value < 1:
        raise InputError(f"{name} must be a positive whole number, got {value!r}")


def _step(c: np.ndarray) -> float:
    return float(np.median(np.diff(c))) if c.size > 1 else 0.0


def check_same_grid(target: xr.DataArray, reference: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Check that two cubes share a band list and a pixel grid; return both cut to their overlap.

    The images may cover different extents of the same grid (same spacing, aligned pixel centres): the
    result is their common part (an inner join on the coordinates).

    Raises
    ------
    InputError
        Mismatched band lists, different spatial dimensions, different pixel spacing or misaligned
        pixel centres, or no overlap at all.
    """
    t_dims, r_dims = spatial_dims(target), spatial_dims(reference)
    if t_dims != r_dims:
        raise InputError(
            f"the images use different spatial dimensions ({t_dims} vs {r_dims}); reproject one onto "
            "the other's grid first"
        )
    tb = [str(b) for b in np.atleast_1d(target["band"].values)]
    rb = [str(b) for b in np.atleast_1d(reference["band"].values)]
    if tb != rb:
        common = [b for b in tb if b in rb]
        raise InputError(
            f"mismatched band lists: target has {tb}, reference has {rb}; select the common bands "
            f"first, e.g. target.sel(band={common}) and reference.sel(band={common})"
        )
    ut, ur = target.attrs.get("units"), reference.attrs.get("units")
    if ut is not None and ur is not None and str(ut).strip() != str(ur).strip():
        raise InputError(
            f"the images are in different units: target {ut!r}, reference {ur!r}; convert one first "
            "(e.g. percent to reflectance: (cube / 100).assign_attrs(units='1'))"
        )
    for d in t_dims:
        if d not in target.coords or d not in reference.coords:
            raise InputError(f"both images need a coordinate for dimension {d!r} to be compared")
        ct = np.asarray(target[d].values, dtype=float)
        cr = np.asarray(reference[d].values, dtype=float)
        if d == "lon" and ((ct.max() > 180.0 and cr.min() < 0.0) or (cr.max() > 180.0 and ct.min() < 0.0)):
            raise InputError(
                "one image's longitudes run 0...360 and the other's -180...180; put both in one convention "
                "first, e.g. reference.assign_coords(lon=workbench.geo.wrap_lon_180(reference.lon)).sortby('lon')"
            )
        # spacings are compared by size: the same grid may be stored south-up or west-right
        st, sr = abs(_step(ct)), abs(_step(cr))
        if ct.size > 1 and cr.size > 1 and not np.isclose(st, sr, rtol=1e-6, atol=0):
            raise InputError(
                f"the images are on different grids: {d!r} spacing {st:g} vs {sr:g}; resample one "
                "onto the other first, e.g. reference.interp_like(target)"
            )
        lo_t, hi_t = np.min(ct), np.max(ct)
        lo_r, hi_r = np.min(cr), np.max(cr)
        if hi_t < lo_r or hi_r < lo_t:
            raise InputError(
                f"the images do not overlap: {d!r} spans [{lo_t:g}, {hi_t:g}] in the target and "
                f"[{lo_r:g}, {hi_r:g}] in the reference; cross-calibration needs common ground"
            )
        tol = 1e-6 * max(abs(st), abs(sr), 1e-12)
        srt = np.sort(cr)
        idx = np.searchsorted(srt, ct)
        left = srt[np.clip(idx - 1, 0, srt.size - 1)]
        right = srt[np.clip(idx, 0, srt.size - 1)]
        nearest = np.where(np.abs(ct - left) <= np.abs(ct - right), left, right)
        match = np.abs(ct - nearest) <= tol
        if not match.any():
            raise InputError(
                f"the images are on different grids: their {d!r} pixel centres are offset from each "
                "other; resample one onto the other first, e.g. reference.interp_like(target)"
            )
        # snap floating-point differences so that the inner join below pairs the same pixels
        snapped = np.where(match, nearest, ct)
        target = target.assign_coords({d: snapped})
    t, r = xr.align(target, reference, join="inner")
    if any(t.sizes[d] == 0 for d in t_dims):
        raise InputError("the images do not overlap on a common pixel; check their coordinates")
    return t, r.transpose(*t.dims)


# ------------------------------------------------------------------------------ cross-calibration
def _theil_sen(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    """Theil–Sen slope/intercept with Sen's distribution-free slope CI (scipy.stats.theilslopes)."""
    res = stats.theilslopes(y, x, alpha=alpha, method="joint")  # intercept = median(y - slope x)
    return float(res.slope), float(res.intercept), float(res.low_slope), float(res.high_slope)


def _huber(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import HuberRegressor

    # scale to O(1) so that Huber's epsilon and the L2 penalty act the same for any units
    sx, sy = np.std(x) or 1.0, np.std(y) or 1.0
    mx, my = np.mean(x), np.mean(y)
    reg = HuberRegressor(epsilon=1.35, alpha=0.0, max_iter=200).fit(((x - mx) / sx)[:, None], (y - my) / sy)
    slope = float(reg.coef_[0]) * sy / sx
    intercept = my + sy * float(reg.intercept_) - slope * mx
    return slope, float(intercept)


def _median_ci(r: np.ndarray, alpha: float) -> tuple[float, float]:
    """Distribution-free CI of a median from order statistics (binomial/normal approximation)."""
    n = r.size
    z = stats.norm.ppf(1 - alpha / 2)
    rs = np.sort(r)
    # 1-based ranks floor(n/2 - z sqrt(n)/2) and ceil(1 + n/2 + z sqrt(n)/2) (Conover 1999, sec. 3.2);
    # as 0-based indices both are one less, so the interval is symmetric in rank
    lo = int(np.clip(np.floor(n / 2 - z * np.sqrt(n) / 2) - 1, 0, n - 1))
    hi = int(np.clip(np.ceil(n / 2 + z * np.sqrt(n) / 2), 0, n - 1))
    return float(rs[lo]), float(rs[hi])


def _neighbour_instrument(a: np.ndarray) -> np.ndarray:
    """Mean of the 8 neighbours of every pixel of a 2-D image (itself excluded, NaN-aware)."""
    ok = np.isfinite(a)
    k = np.ones((3, 3))
    k[1, 1] = 0.0
    # zero padding: at the edges only the real neighbours count ('nearest' would bring the pixel's own
    # value, and its noise, back into its instrument)
    s = ndimage.convolve(np.where(ok, a, 0.0), k, mode="constant", cval=0.0)
    n = ndimage.convolve(ok.astype(float), k, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan)


def _theil_iv(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Theil's split-pair slope with the pairs ranked by an instrument ``z``; offset = median residual.

    The points are sorted by ``z`` and the k-th of the lower half is paired with the k-th of the upper
    half (Theil's 1950 abbreviated method); the slope is the median of the pair slopes. Ranking by the
    noisy ``x`` itself (or using all pairs, as Theil–Sen does) pushes the reference noise outward in
    the selected pairs and attenuates the slope by about σ²/var(x) (errors-in-variables); an
    instrument independent of that noise does not, and with symmetric noise the median pair slope is
    then unbiased wherever the pair's true separation exceeds the noise.
    """
    o = np.argsort(z, kind="stable")
    xs, ys = x[o], y[o]
    m = xs.size // 2
    dx = xs[xs.size - m:] - xs[:m]
    dy = ys[xs.size - m:] - ys[:m]
    good = dx != 0
    slope = float(np.median(dy[good] / dx[good]))
    return slope, float(np.median(y - slope * x))


def correlation_range(resid: np.ndarray, threshold: float = 0.1, max_lag: int = 32,
                      axis: int | None = None) -> int:
    """Smallest lag (pixels) at which the residual autocorrelation falls below ``threshold``.

    The autocorrelation of the mean-removed residual image (NaN → 0) is computed along ``axis`` (None:
    both, returning the larger range) for lags 1 … ``max_lag``, limited to a quarter of the image; if
    it never falls that low the search limit is returned. 1 means uncorrelated neighbours.
    """
    r = np.where(np.isfinite(resid), resid - np.nanmean(resid), 0.0)
    var = float(np.mean(r * r))
    if var <= 0:
        return 1
    out = 1
    for ax in (0, 1) if axis is None else (axis,):
        n = r.shape[ax]
        lag_max = max(1, min(max_lag, n // 4))
        lag = lag_max
        for k in range(1, lag_max + 1):
            a = np.take(r, range(0, n - k), axis=ax)
            b = np.take(r, range(k, n), axis=ax)
            if float(np.mean(a * b)) / var < threshold:
                lag = k
                break
        out = max(out, lag)
    return out


#: Fewest tiles the spatial block bootstrap of a calibration fit resamples (see :func:`bootstrap_tiles`).
MIN_BOOT_TILES = 8


def bootstrap_tiles(resid: np.ndarray, threshold: float = 0.1, max_lag: int = 32) -> tuple[int, int]:
    """Tile shape (rows, columns) for the spatial block bootstrap of a residual image.

    Per axis: one more than the autocorrelation range (:func:`correlation_range`), at least 2 and at
    most a quarter of that side; where the autocorrelation never falls below ``threshold`` within the
    search (e.g. residual stripes that run the whole length of a column) the tile spans the whole axis,
    so that the bootstrap resamples strips. At least :data:`MIN_BOOT_TILES` tiles are kept: where the
    residuals stay correlated along both axes (a smooth leftover trend) whole-axis tiles would make the
    image one tile and every replicate the data itself (a zero-width interval), so the tiles are then
    narrowed, columns first; such intervals are still optimistic, as any bootstrap of one trend.
    """
    shape = []
    for ax in (0, 1):
        n = resid.shape[ax]
        lag_max = max(1, min(max_lag, n // 4))
        L = correlation_range(resid, threshold, max_lag, axis=ax)
        if L >= lag_max and lag_max > 1:
            shape.append(n)
        else:
            shape.append(int(np.clip(L + 1, 2, max(2, n // 4))))
    (ny, nx), (th, tw) = resid.shape, shape
    while -(-ny // th) * -(-nx // tw) < MIN_BOOT_TILES and max(th, tw) > 1:
        if tw > 1 and (tw / nx >= th / ny or th == 1):
            tw = max(1, tw // 2)
        else:
            th = max(1, th // 2)
    return th, tw


def _block_bootstrap_iv(X: np.ndarray, Y: np.ndarray, Z: np.ndarray, ok: np.ndarray, alpha: float,
                        n_boot: int, tile: int | None, rng) -> tuple[float, ...]:
    """IV Theil fit with a spatial (tile) block bootstrap of its percentile intervals (one band).

    The 2-D grid is cut into tiles; each replicate draws as many tiles as there are, with
    replacement, and refits on their pixels, so residuals correlated within a tile stay together
    (Künsch 1989; Lahiri 2003). ``tile=None`` takes the tile shape from the residuals
    (:func:`bootstrap_tiles`), an integer gives square tiles. Returns gain, offset, the gain and
    offset intervals and the tile shape used.
    """
    x, y, z = X[ok], Y[ok], Z[ok]
    g, o = _theil_iv(x, y, z)
    if tile is None:
        th, tw = bootstrap_tiles(np.where(ok, Y - g * X - o, np.nan))
    else:
        th = tw = int(tile)
        n_tiles = -(-X.shape[0] // th) * -(-X.shape[1] // tw)
        if n_tiles < MIN_BOOT_TILES:
            raise InputError(
                f"tile={tile} cuts the {X.shape[0]}x{X.shape[1]} (block-mean) grid into {n_tiles} tiles; the "
                f"bootstrap needs at least {MIN_BOOT_TILES} to give an interval: use a smaller tile or tile=None"
            )
    rows, cols = np.nonzero(ok)
    ntx = -(-X.shape[1] // tw)
    tid = (rows // th) * ntx + cols // tw
    order = np.argsort(tid, kind="stable")
    uniq, starts, counts = np.unique(tid[order], return_index=True, return_counts=True)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, uniq.size, uniq.size)
        c = counts[pick]
        first = np.cumsum(c) - c  # where each drawn tile starts in the replicate
        idx = order[np.repeat(starts[pick] - first, c) + np.arange(int(c.sum()))]
        if idx.size < 10:
            continue
        boots.append(_theil_iv(x[idx], y[idx], z[idx]))
    b = np.asarray(boots)
    g_lo, g_hi = np.quantile(b[:, 0], [alpha / 2, 1 - alpha / 2])
    o_lo, o_hi = np.quantile(b[:, 1], [alpha / 2, 1 - alpha / 2])
    return g, o, float(g_lo), float(g_hi), float(o_lo), float(o_hi), (th, tw)


def _fit_band(x, y, method, ci, alpha, n_boot, rng):
    if method == "theil-sen":
        slope, intercept, s_lo, s_hi = _theil_sen(x, y, alpha)
    else:
        slope, intercept = _huber(x, y)
        s_lo = s_hi = np.nan
    if ci == "bootstrap":
        boots = np.empty((n_boot, 2))
        n = x.size
        for k in range(n_boot):
            j = rng.integers(0, n, n)
            if method == "theil-sen":
                r = stats.theilslopes(y[j], x[j], method="joint")
                boots[k] = r.slope, r.intercept
            else:
                boots[k] = _huber(x[j], y[j])
        s_lo, s_hi = np.quantile(boots[:, 0], [alpha / 2, 1 - alpha / 2])
        o_lo, o_hi = np.quantile(boots[:, 1], [alpha / 2, 1 - alpha / 2])
    else:  # "sen": slope CI from Sen (1968); intercept CI = union of residual-median CIs over it
        if method != "theil-sen":
            raise InputError("ci='sen' needs method='theil-sen'; use ci='bootstrap' with method='huber'")
        lows, highs = [], []
        for s in (s_lo, slope, s_hi):
            lo, hi = _median_ci(y - s * x, alpha)
            lows.append(lo)
            highs.append(hi)
        o_lo, o_hi = min(lows), max(highs)
    return slope, intercept, float(s_lo), float(s_hi), float(o_lo), float(o_hi)


def fit_cross_calibration(
    target: xr.DataArray | xr.Dataset,
    reference: xr.DataArray | xr.Dataset,
    method: Literal["theil-iv", "theil-sen", "huber"] = "theil-iv",
    ci: Literal["block-bootstrap", "sen", "bootstrap"] | None = None,
    confidence: float = 0.95,
    max_pixels: int = 2000,
    block: int = 3,
    n_boot: int = 200,
    tile: int | None = None,
    min_pixels: int = MIN_PIXELS,
    seed: int = 0,
) -> xr.Dataset:
    """Fit the target sensor's per-band gain and offset against a reference sensor.

    The model is ``target = gain · reference + offset`` per band, over the pixels valid (finite) in
    both images; :func:`apply_cross_calibration` inverts it.

    The default estimator (``"theil-iv"``) is Theil's split-pair slope with the pairs ranked by an
    *instrument*, the mean of each pixel's 8 neighbours in the reference: its noise is independent of
    the pixel's own, so the slope is free of the errors-in-variables attenuation (≈ σ²/var) that noise
    in the reference gives Theil–Sen and least squares (0.6 % at SNR 100 with ``block=1``, 0.1 % with
    ``block=3`` on the synthetic Moon, several times the Sen interval's half-width, which is why those
    intervals missed the truth). It needs a scene that is smooth over a pixel (neighbours share its
    ground) and noise that is not spatially correlated. Its intervals come from a spatial block
    bootstrap (``ci="block-bootstrap"``): tiles of (block-mean) pixels are resampled with replacement
    and the fit repeated ``n_boot`` times; by default each tile side is one more than the residuals'
    autocorrelation range along that axis (the first lag at which it falls below 0.1), or the whole
    axis where it never does (:func:`bootstrap_tiles`), so that spatially correlated residuals are
    resampled together. It uses every pixel
    (O(n log n) per replicate). ``"theil-sen"`` and ``"huber"`` subsample pixels to ``max_pixels`` per
    band (Theil–Sen costs O(n²)); the subsample is seeded.

    Parameters
    ----------
    target, reference
        Spectral cubes (``band`` + two spatial dims) on the same grid with the same band list; they
        may cover different extents, only the overlap is used. A Dataset's ``reflectance`` is used.
    method
        ``"theil-iv"`` (default, above), ``"theil-sen"`` (median of all pairwise slopes; breakdown
        point 29 %) or ``"huber"`` (:class:`sklearn.linear_model.HuberRegressor`, ε = 1.35).
    ci
        None: the method's own (``"block-bootstrap"`` for ``"theil-iv"``, ``"sen"`` for
        ``"theil-sen"``, ``"bootstrap"`` for ``"huber"``). ``"block-bootstrap"`` (``"theil-iv"``
        only): spatial block bootstrap percentile intervals, see above. ``"sen"``: Sen's (1968)
        distribution-free slope interval (:func:`scipy.stats.theilslopes`; it assumes independent
        pixels and no reference noise), and for the offset the union of the order-statistic
        intervals of the median residual over that slope interval (conservative).
        ``"bootstrap"``: percentile intervals from ``n_boot`` pair resamples.
    confidence
        Two-sided confidence level of the intervals.
    tile
        Side of square bootstrap tiles in (block-mean) pixels; None chooses the shape from the
        residuals (reported as ``bootstrap_tile``).
    max_pixels, n_boot, seed
        Subsample size (pixels per band; not used by ``"theil-iv"``), bootstrap replicates, seed. The bootstrap refits
        ``n_boot`` times per band (seconds per band at 2000 pixels); ``ci="sen"`` costs one fit.
    block
        Fit on means of ``block × block`` pixel blocks (blocks with any NaN are dropped). Averaging is
        linear, so the gain/offset relation is unchanged, but the noise in the *reference* falls by
        ``block`` and with it the errors-in-variables attenuation of the slope, ``1/(1 + σ²/var)``,
        which would otherwise bias the gain low at moderate SNR.
    min_pixels
        Fewer valid common pixels than this raises :class:`InputError`.

    Returns
    -------
    xarray.Dataset
        Per band: ``gain``, ``gain_low``, ``gain_high``, ``offset``, ``offset_low``, ``offset_high``
        (reflectance units), ``n_pixels`` (valid common pixels, or ``block × block`` blocks when
        ``block > 1``), and the residual summaries
        ``rmse_before`` / ``rmse_after`` and ``bias_before`` / ``bias_after`` of ``target − reference``
        before and after applying the fit (over all common valid full-resolution pixels).

    Raises
    ------
    InputError
        Mismatched band lists, different grids, no overlap, too few valid pixels, bad options.

    References
    ----------
    Theil (1950); Sen (1968); Huber (1964); Efron & Tibshirani (1993); Gross et al. (2022).
    """
    if method not in ("theil-iv", "theil-sen", "huber"):
        raise InputError(f"unknown method {method!r}; use 'theil-iv', 'theil-sen' or 'huber'")
    if ci is None:
        ci = {"theil-iv": "block-bootstrap", "theil-sen": "sen", "huber": "bootstrap"}[method]
    if ci not in ("block-bootstrap", "sen", "bootstrap"):
        raise InputError(f"unknown ci {ci!r}; use 'block-bootstrap', 'sen' or 'bootstrap'")
    if (method == "theil-iv") != (ci == "block-bootstrap"):
        raise InputError(f"ci={ci!r} does not go with method={method!r}: use method='theil-iv' with "
                         "ci='block-bootstrap', or 'theil-sen'/'huber' with ci='sen'/'bootstrap'")
    for name, v in (("n_boot", n_boot), ("max_pixels", max_pixels), ("block", block)):
        _check_count(name, v)
    if tile is not None:
        _check_count("tile", tile)
    if not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence}")
    t, r = check_same_grid(as_cube(target), as_cube(reference))
    alpha = 1.0 - confidence
    rng = np.random.default_rng(seed)
    bands = [str(b) for b in t["band"].values]  # plain str: messages print 'b1', not np.str_('b1')
    # one layout for every fit (band, rows north-up, columns east-right), so that blocks, tiles and
    # subsamples, and with them the result, do not depend on how the images are stored
    row, col = spatial_dims(t)
    t = t.transpose("band", row, col, ...)
    flips = north_up_flips(t, row, col)  # the aligned pair shares its coordinates, and so these flips
    t, r = t.isel(flips), r.transpose(*t.dims).isel(flips)
    if block > 1:
        sd = spatial_dims(t)
        if any(t.sizes[d] < block for d in sd):
            raise InputError(f"the overlap ({t.sizes[sd[0]]}x{t.sizes[sd[1]]} pixels) is smaller than "
                             f"one {block}x{block} block; use block=1")
        win = {d: block for d in sd}
        tb = t.coarsen(win, boundary="trim").reduce(np.mean).values
        rb = r.coarsen(win, boundary="trim").reduce(np.mean).values
    else:
        tb, rb = t.values, r.values
    tv, rv = (tb, rb) if block == 1 else (t.values, r.values)  # full resolution, read once (dask)
    cols = {k: [] for k in ("gain", "gain_low", "gain_high", "offset", "offset_low", "offset_high",
                            "n_pixels", "rmse_before", "rmse_after", "bias_before", "bias_after")}
    tiles = []
    for b in range(len(bands)):
        X2 = np.asarray(rb[b], dtype=float)
        Y2 = np.asarray(tb[b], dtype=float)
        x, y = X2.ravel(), Y2.ravel()
        ok = np.isfinite(x) & np.isfinite(y)
        n = int(ok.sum())
        if n < min_pixels:
            raise InputError(
                f"too few valid pixels to fit band {bands[b]!r}: {n} common finite "
                f"{'blocks' if block > 1 else 'pixels'}, need at least {min_pixels}; use images with "
                "more overlap or fewer NaNs (or a smaller block / lower min_pixels)"
            )
        x, y = x[ok], y[ok]
        if np.ptp(x) <= 0:
            raise InputError(
                f"reference band {bands[b]!r} is constant over the overlap; a gain cannot be fitted "
                "without contrast - use a larger or more varied overlap"
            )
        if method == "theil-iv":
            Z2 = _neighbour_instrument(X2)
            ok2 = np.isfinite(X2) & np.isfinite(Y2) & np.isfinite(Z2)
            g, o, g_lo, g_hi, o_lo, o_hi, used = _block_bootstrap_iv(X2, Y2, Z2, ok2, alpha, n_boot,
                                                                     tile, rng)
            tiles.append(used)
        else:
            sel = rng.choice(n, max_pixels, replace=False) if n > max_pixels else slice(None)
            g, o, g_lo, g_hi, o_lo, o_hi = _fit_band(x[sel], y[sel], method, ci, alpha, n_boot, rng)
        if not np.isfinite(g) or g <= 0:
            raise InputError(
                f"fitted gain for band {bands[b]!r} is {g:.4g}; the images do not look like the same "
                "ground - check the co-registration"
            )
        xf = np.asarray(rv[b], dtype=float).ravel()
        yf = np.asarray(tv[b], dtype=float).ravel()
        okf = np.isfinite(xf) & np.isfinite(yf)
        x, y = xf[okf], yf[okf]
        after = (y - o) / g - x
        cols["gain"].append(g)
        cols["gain_low"].append(g_lo)
        cols["gain_high"].append(g_hi)
        cols["offset"].append(o)
        cols["offset_low"].append(o_lo)
        cols["offset_high"].append(o_hi)
        cols["n_pixels"].append(n)
        cols["rmse_before"].append(float(np.sqrt(np.mean((y - x) ** 2))))
        cols["rmse_after"].append(float(np.sqrt(np.mean(after**2))))
        cols["bias_before"].append(float(np.mean(y - x)))
        cols["bias_after"].append(float(np.mean(after)))
    coords = {"band": t["band"]}
    for c in ("wavelength", "fwhm"):
        if c in t.coords and t[c].dims == ("band",):
            coords[c] = t[c]
    units = {"gain": "1", "gain_low": "1", "gain_high": "1", "n_pixels": "1"}
    ds = xr.Dataset(
        {
            k: xr.DataArray(np.asarray(v), dims=("band",),
                            attrs={"units": units.get(k, t.attrs.get("units", "1"))})
            for k, v in cols.items()
        },
        coords=coords,
    )
    ds.attrs.update(
        model="target = gain * reference + offset",
        method=method,
        ci=ci,
        confidence=confidence,
        max_pixels=max_pixels,
        block=block,
        seed=seed,
    )
    if tiles:
        ds["bootstrap_tile"] = xr.DataArray(np.asarray(tiles), dims=("band", "tile_axis"), attrs={
            "units": "pixel", "long_name": "block-bootstrap tile shape (rows, columns; block means)"})
    return ds


def apply_cross_calibration(target: xr.DataArray | xr.Dataset, coeffs: xr.Dataset) -> xr.DataArray:
    """Bring ``target`` onto the reference scale: ``(target − offset) / gain`` per band.

    ``coeffs`` is the output of :func:`fit_cross_calibration`; its band list must match. NaN stays NaN.
    """
    t = as_cube(target)
    tb = [str(b) for b in np.atleast_1d(t["band"].values)]
    cb = [str(b) for b in np.atleast_1d(coeffs["band"].values)]
    if sorted(tb) != sorted(cb):
        raise InputError(
            f"mismatched band lists: image has {tb}, coefficients have {cb}; fit the coefficients on "
            "the same bands"
        )
    extra = [c for c in ("wavelength", "fwhm") if c in coeffs.coords]
    g = coeffs["gain"].drop_vars(extra).sel(band=t["band"].values)
    o = coeffs["offset"].drop_vars(extra).sel(band=t["band"].values)
    out = (t - o) / g
    out = out.transpose(*t.dims)
    out.attrs = dict(t.attrs)
    out.attrs["cross_calibration"] = coeffs.attrs.get("model", "target = gain * reference + offset")
    out.name = t.name
    return out


def residuals(target: xr.DataArray | xr.Dataset, reference: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """``target − reference`` over the common pixels of two cubes on the same grid (same checks)."""
    t, r = check_same_grid(as_cube(target), as_cube(reference))
    out = t - r
    out.name = "residual"
    out.attrs = {"units": t.attrs.get("units", "1"), "long_name": "target minus reference"}
    return out


# --------------------------------------------------------------------------------------- destriping
def _column_stats(v: np.ndarray, robust: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-column location and scale of a (rows, cols) array, NaN-aware."""
    if robust:
        q25, q50, q75 = np.nanpercentile(v, [25, 50, 75], axis=0)
        return q50, (q75 - q25) / 1.349
    return np.nanmean(v, axis=0), np.nanstd(v, axis=0)


def _running(profile: np.ndarray, window: int, robust: bool, periodic: bool = False) -> np.ndarray:
    """Running median/mean of a column profile (NaN-aware; reflected at the edges, or wrapped round when
    ``periodic``: a global longitude grid)."""
    if window >= profile.size:
        fill = np.nanmedian(profile) if robust else np.nanmean(profile)
        return np.full_like(profile, fill)
    p = profile.copy()
    bad = ~np.isfinite(p)
    if bad.all():
        return p
    if bad.any():
        p[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), p[~bad],
                           period=p.size if periodic else None)
    mode = "wrap" if periodic else "reflect"
    if robust:
        return ndimage.median_filter(p, size=window, mode=mode)
    return ndimage.uniform_filter1d(p, size=window, mode=mode)


def _neighbour_mean(c: np.ndarray, half: int, periodic: bool = False) -> np.ndarray:
    """Row-wise mean of the ``half`` columns either side of each column (itself excluded), NaN-aware.

    ``periodic``: the first and last columns are neighbours (a global longitude grid); otherwise an edge
    column has only the neighbours on its inner side (zero padding: 'reflect' would count the column's own
    value, and its stripe, in its reference)."""
    ok = np.isfinite(c)
    v = np.where(ok, c, 0.0)
    size = 2 * half + 1
    mode = "wrap" if periodic else "constant"
    s = ndimage.uniform_filter1d(v, size=size, axis=1, mode=mode) * size - v
    n = ndimage.uniform_filter1d(ok.astype(float), size=size, axis=1, mode=mode) * size - ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0.5, s / n, np.nan)


def _destripe_neighbour(v: np.ndarray, half: int, window: int, n_iter: int,
                        offsets: bool = True, periodic: bool = False) -> tuple[np.ndarray, ...]:
    """Column gains and offsets from row-wise comparisons with neighbouring columns (one band).

    Each iteration: the reference is the mean of the ``half`` columns either side; the column gain is
    the median over rows of ``c_j / ref_j`` and (second pass) the column offset the median of
    ``c_j − ref_j``; only their column-to-column part (minus a running median over ``window``) is
    removed. The neighbours' own stripes leak into the reference, so the estimate is iterated: the
    residual shrinks by the neighbour averaging at each pass, while medians over whole columns keep
    the scene's contribution small.
    """
    G = np.ones(v.shape[1])
    O = np.zeros(v.shape[1])
    c = v.copy()
    for _ in range(n_iter):
        ref = _neighbour_mean(c, half, periodic)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an unmeasured column: NaN, handled below
            ratio = np.where((ref > 0) & (c > 0), c / ref, np.nan)
            a = np.nanmedian(ratio, axis=0) if np.isfinite(ratio).any() else np.ones(c.shape[1])
        a = np.where(np.isfinite(a) & (a > 0), a, np.nan)
        a = a / _running(a, window, False, periodic)
        a = np.where(np.isfinite(a) & (a > 0), a, 1.0)
        c = c / a
        G = G * a
    if offsets:
        for _ in range(n_iter):
            ref = _neighbour_mean(c, half, periodic)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                d = c - ref
                b = np.nanmedian(d, axis=0) if np.isfinite(d).any() else np.zeros(c.shape[1])
            b = np.where(np.isfinite(b), b, np.nan)
            b = b - _running(b, window, False, periodic)
            b = np.where(np.isfinite(b), b, 0.0)
            c = c - b
            O = O + G * b
    return c, G, O


def destripe(
    image: xr.DataArray | xr.Dataset,
    along: str | None = None,
    method: Literal["neighbour", "moments"] = "neighbour",
    window: int | None = None,
    half_width: int = 3,
    n_iter: int = 4,
    robust: bool = True,
) -> xr.Dataset:
    """Remove per-column (per-detector) gain and offset stripes: ``obs_j = g_j · scene_j + o_j``.

    Two estimators of the column gain ``g_j`` and offset ``o_j``:

    ``"neighbour"`` (default)
        A column-wise filter: each column is compared, row by row, with the mean of its
        ``half_width`` neighbours on either side (which share its scene but average its stripe away).
        The median over rows of ``column / reference`` is its relative gain, then (second pass) the
        median of ``column − reference`` its relative offset; only their column-to-column part
        (minus a running mean over ``window`` columns) is removed. Because the neighbours' own
        stripes leak into the reference, each pass is repeated ``n_iter`` times (the leak shrinks by
        the neighbour averaging each time). Pairing the rows and taking medians over whole columns
        cancels most of the scene, so it works on strongly structured images.
    ``"moments"``
        Local moment matching (Gadallah et al. 2000): column location ``m_j`` and scale ``s_j`` along
        the track against their running median over ``window`` columns, ``ĝ_j = s_j / s̄_j``,
        ``ô_j = m_j − ĝ_j m̄_j``. Fast and classical, but the scene's own column-to-column variation in
        ``s_j`` leaks into ``ĝ_j``, so it needs long, statistically homogeneous tracks.

    The corrected image is ``(obs − ô_j) / ĝ_j``. A stripe pattern that varies slowly across columns
    cannot be told from the scene by either method and is left in place. Columns along a global
    longitude grid close the circle: there the neighbours and running windows wrap round ±180°; elsewhere
    an edge column is compared with its inner neighbours only.

    Parameters
    ----------
    image
        Spectral cube (``band`` + two spatial dims) or a single 2-D image.
    along
        Along-track dimension (the one a detector sweeps). Default: the row dimension (``lat``/``y``),
        so stripes run along columns.
    method
        ``"neighbour"`` or ``"moments"`` (see above).
    window
        Running-median width in columns (the scale above which column variation counts as scene).
        None (default): an eighth of the number of columns, clipped to 31…81 (odd). Stripe power at
        column scales above the window is left in place, so narrow images need a narrower window:
        on the notebook's 180-column region at 1 px/deg (2 % stripes, SNR 100) a fixed 81 removed
        84 % of the stripe power and 31 removes 89.5 %; on 720- and 1440-column globes 81 is best
        (93.5 % / 94.2 % vs 93.1 % / 93.6 % with 31).
    half_width
        Neighbours each side in the ``"neighbour"`` reference.
    n_iter
        Iterations of each ``"neighbour"`` pass. With the defaults (window 81 there, 3, 4) 93–94 % of
        the stripe power of the synthetic Moon at 2 and 4 px/deg with 2 % gain stripes at SNR 100 is
        removed (more iterations or wider neighbourhoods do worse: the scene leaks in).
    robust
        ``"moments"`` only: median and IQR/1.349 instead of mean and standard deviation.

    Returns
    -------
    xarray.Dataset
        ``destriped`` (same shape, attrs and coords as the input), and per band and column the
        estimated ``stripe_gain`` and ``stripe_offset`` (NaN for a column without a valid pixel).

    References
    ----------
    Gadallah et al. (2000); Horn & Woodham (1979).
    """
    if isinstance(image, xr.Dataset):
        if "reflectance" not in image:
            raise InputError("destripe needs a DataArray or a Dataset with a 'reflectance' variable")
        image = image["reflectance"]
    da = image
    rows, cols = spatial_dims(da)
    along = along or rows
    if along not in (rows, cols):
        raise InputError(f"along must be one of the spatial dimensions {(rows, cols)}, got {along!r}")
    if method not in ("neighbour", "moments"):
        raise InputError(f"unknown destriping method {method!r}; use 'neighbour' or 'moments'")
    across = cols if along == rows else rows
    if window is None:
        window = int(np.clip(da.sizes[across] // 8, 31, 81)) | 1
    for name, v in (("window", window), ("half_width", half_width), ("n_iter", n_iter)):
        _check_count(name, v)
    if window < 3:
        raise InputError(f"window must be at least 3 columns, got {window}")
    if da.sizes[along] < 3:
        raise InputError(f"need at least 3 pixels along {along!r} to estimate column statistics")
    extra = [d for d in da.dims if d not in (along, across)]
    # columns across a global longitude grid close the circle: the edge columns' neighbours wrap round
    periodic = across == "lon" and "lon" in da.coords and is_global_lon(da["lon"].values)
    stacked = da.transpose(*extra, along, across)
    vals = np.asarray(stacked.values, dtype=float)
    flat = vals.reshape(-1, vals.shape[-2], vals.shape[-1])
    out = np.empty_like(flat)
    gains = np.empty((flat.shape[0], flat.shape[-1]))
    offsets = np.empty_like(gains)
    if method == "neighbour":
        finite = np.isfinite(flat)
        if not finite.any():
            raise InputError("the image has no finite pixel; there is nothing to destripe")
        positive = float((flat[finite] > 0).mean())
        if positive < 0.2:
            raise InputError(
                f"only {100 * positive:.0f} % of the finite pixels are above zero; the 'neighbour' method "
                "removes multiplicative stripes from a positive signal (reflectance or DN), not from a "
                "difference or offset image: destripe the image itself, or use method='moments'"
            )
    for k in range(flat.shape[0]):
        if method == "neighbour":
            out[k], gains[k], offsets[k] = _destripe_neighbour(flat[k], half_width, window, n_iter,
                                                               periodic=periodic)
        else:
            m, s = _column_stats(flat[k], robust)
            m_ref, s_ref = _running(m, window, robust, periodic), _running(s, window, robust, periodic)
            with np.errstate(invalid="ignore", divide="ignore"):
                g = np.where(s_ref > 0, s / s_ref, 1.0)
                g = np.where(np.isfinite(g) & (g > 0), g, 1.0)
            o = np.where(np.isfinite(m), m - g * m_ref, 0.0)
            gains[k], offsets[k] = g, o
            out[k] = (flat[k] - o) / g
        empty = ~np.isfinite(flat[k]).any(axis=0)  # a column never measured has no gain or offset
        gains[k][empty] = np.nan
        offsets[k][empty] = np.nan
    corrected = stacked.copy(data=out.reshape(vals.shape)).transpose(*da.dims)
    corrected.attrs = dict(da.attrs)
    corrected.name = da.name
    shape = [stacked.sizes[d] for d in extra] + [stacked.sizes[across]]
    coords = {d: stacked[d] for d in (*extra, across) if d in stacked.coords}
    for c in ("wavelength", "fwhm"):
        if c in da.coords and set(da[c].dims) <= set(extra):
            coords[c] = da[c]
    dims = (*extra, across)
    ds = xr.Dataset(
        {
            "destriped": corrected,
            "stripe_gain": xr.DataArray(gains.reshape(shape), dims=dims, attrs={"units": "1"}),
            "stripe_offset": xr.DataArray(offsets.reshape(shape), dims=dims,
                                          attrs={"units": da.attrs.get("units", "1")}),
        },
        coords=coords,
    )
    ds.attrs.update(method=method, window=window, half_width=half_width, n_iter=n_iter,
                    robust=int(robust), along=along)
    return ds


def stripe_profile(image: xr.DataArray, truth: xr.DataArray | None = None, along: str | None = None,
                   window: int = 31) -> xr.DataArray:
    """Column profile of the stripe residual: the along-track mean of ``image − truth`` per column.

    With no truth (real data), the column-mean profile of the image minus its running median over
    ``window`` columns (a high-pass estimate of the stripes).
    """
    rows, cols = spatial_dims(image)
    along = along or rows
    err = image - truth if truth is not None else image
    prof = err.mean(along, skipna=True)
    across = cols if along == rows else rows
    if truth is None:
        prof = prof.compute()  # a profile per band: small, and the median filter needs it whole
        prof = prof - xr.apply_ufunc(
            lambda p: ndimage.median_filter(p, size=window, mode="reflect"), prof,
            input_core_dims=[[across]], output_core_dims=[[across]], vectorize=True,
        )
    prof.attrs = {"units": image.attrs.get("units", "1"), "long_name": "stripe residual"}
    return prof


def stripe_power(image: xr.DataArray, truth: xr.DataArray | None = None, along: str | None = None,
                 window: int = 31) -> float:
    """Stripe power: variance across columns of :func:`stripe_profile`, averaged over bands.

    The column profile's mean is removed first, so a uniform bias is not counted as striping. With a
    ``truth`` image free of stripes, the residual against it; otherwise a high-pass estimate.
    """
    rows, cols = spatial_dims(image)
    across = cols if (along or rows) == rows else rows
    prof = stripe_profile(image, truth, along, window)
    return float(prof.var(across, skipna=True).mean())


def stripe_power_reduction(observed: xr.DataArray, corrected: xr.DataArray, truth: xr.DataArray,
                           along: str | None = None) -> float:
    """Fraction of the stripe power removed: ``1 − P(corrected) / P(observed)`` against ``truth``."""
    p0 = stripe_power(observed, truth, along)
    if p0 <= 0:
        raise InputError("the observed image has no stripe power against the truth; nothing to remove")
    return 1.0 - stripe_power(corrected, truth, along) / p0


# ----------------------------------------------------------------------- experiments and benchmark
def local_geometry(elevation: xr.DataArray, phase: float, sun_azimuth: float = 90.0) -> dict:
    """Per-pixel (i, e) for a nadir-looking camera and the sun at ``phase`` degrees from nadir.

    Surface normals come from the elevation gradient (m over the cell size of a ``(lat, lon)`` grid on
    the lunar sphere); the sun lies ``phase`` degrees from the zenith towards ``sun_azimuth`` (degrees
    clockwise from north). Returns ``{"i", "e", "g"}`` DataArrays/float in degrees, as
    :func:`workbench.synth.observe` takes them; ``i`` is NaN on self-shadowed slopes (i ≥ 90°).
    """
    from .geo import MOON_RADIUS_M

    if set(elevation.dims) != {"lat", "lon"} or min(elevation.shape) < 2:
        raise InputError(f"local_geometry needs a (lat, lon) elevation grid of at least 2x2 cells, got dims "
                         f"{elevation.dims} and shape {elevation.shape}; {WARP_HINT}")
    elevation = elevation.transpose("lat", "lon")
    lat = np.deg2rad(elevation["lat"].values)
    # signed spacings: rows may run north to south (the convention) or south to north, columns either way
    dlat = np.deg2rad(float(np.median(np.diff(elevation["lat"].values))))
    dlon = np.deg2rad(float(np.median(np.diff(elevation["lon"].values))))
    z = np.asarray(elevation.values, dtype=float)
    dz_dn = np.gradient(z, axis=0) / (MOON_RADIUS_M * dlat)
    dz_de = np.gradient(z, axis=1) / (MOON_RADIUS_M * dlon * np.maximum(np.cos(lat), 1e-3))[:, None]
    n = np.stack([-dz_de, -dz_dn, np.ones_like(z)])
    n /= np.linalg.norm(n, axis=0)
    gr, az = np.deg2rad(phase), np.deg2rad(sun_azimuth)
    s = np.array([np.sin(gr) * np.sin(az), np.sin(gr) * np.cos(az), np.cos(gr)])
    i = np.rad2deg(np.arccos(np.clip(np.tensordot(s, n, axes=1), -1, 1)))
    e = np.rad2deg(np.arccos(np.clip(n[2], -1, 1)))
    i = np.where(i < 90.0, i, np.nan)  # slopes facing away from the sun are unlit: NaN, not clipped
    wrap = elevation.copy
    return {"i": wrap(data=i).assign_attrs(units="deg"), "e": wrap(data=e).assign_attrs(units="deg"),
            "g": float(phase)}


def _select_region(region: dict, ds: xr.Dataset) -> xr.Dataset:
    """``ds`` cut to ``region``: its ``lat``/``lon`` slices through :func:`workbench.geo.select_box` (bounds in
    either order, either longitude convention, across the ±180° seam: ``slice(40, 10)`` selects 10–40° on a
    south-up grid too, and ``slice(30, 0)`` is 0–30°), any other dimension through ``sel``."""
    from .geo import select_box

    box = {d: (sl.start, sl.stop) for d, sl in region.items()
           if d in ("lat", "lon") and isinstance(sl, slice) and sl.start is not None and sl.stop is not None}
    rest = {d: v for d, v in region.items() if d not in box}
    return select_box(ds, **box).sel(rest) if box else ds.sel(rest)


def phase_angle_experiment(moon: xr.Dataset, phases=(15.0, 30.0, 45.0, 60.0, 75.0),
                           region: dict | None = None, instrument: str = "clementine_uvvis",
                           snr: float | None = 100.0, truth_model: str = "hapke", seed: int = 0) -> dict:
    """How much Lucey FeO changes when one scene is seen at several phase angles, before and after
    photometric normalisation.

    The region of ``moon`` (a :func:`workbench.synth.make_moon` dataset) is observed by ``instrument``
    at each phase (nadir camera, sun in the east, local slopes from the elevation) with the synthetic
    Moon's ``truth_model`` photometry; Hapke (``b``, ``c`` and per-pixel ``w``) and Lunar-Lambert
    (``L(g)`` and ``f(g)``) models are fitted per band to the stack of observations and used to
    normalise every observation to i=30°, e=0°, g=30°. Lucey et al. (2000) FeO is computed from each
    (:func:`workbench.inversion.baselines.lucey_feo`).

    Returns
    -------
    dict
        ``feo_spread_before``/``feo_spread_after``/``feo_spread_after_lunar_lambert``: median over
        pixels of the per-pixel range (max − min over phase angles) of FeO (wt%); ``feo_by_phase``:
        per-phase scene-median FeO for each case; ``feo_true_median`` (FeO from the noiseless standard-
        geometry spectra); the fitted ``hapke`` and ``lunar_lambert`` parameters per band; and
        ``observations`` (the stacked observed cube, obs × band × lat × lon) for plotting.
    """
    from . import photometry as ph
    from .inversion.baselines import band_by_wavelength, lucey_feo
    from .synth import observe

    region = region or {"lat": slice(40.0, 10.0), "lon": slice(0.0, 30.0)}
    sub = _select_region(region, moon)
    if sub.sizes.get("lat", 0) < 4 or sub.sizes.get("lon", 0) < 4:
        raise InputError(f"region {region} selects fewer than 4x4 pixels of the moon; enlarge it")
    obs, geoms = [], []
    for k, p in enumerate(phases):
        geo = local_geometry(sub["elevation"], p)
        geo["model"] = truth_model
        o = observe(sub, instrument, snr=snr, geometry=geo, seed=seed + k)
        obs.append(o["reflectance"].astype("float64").compute())
        geoms.append(geo)
        if k == 0:
            true_std = o["true_reflectance"].astype("float64").compute()
    stack = xr.concat(obs, dim="obs").assign_coords(obs=list(phases))
    I = xr.concat([gm["i"] for gm in geoms], dim="obs").assign_coords(obs=list(phases))
    E = xr.concat([gm["e"] for gm in geoms], dim="obs").assign_coords(obs=list(phases))
    G = xr.DataArray(np.asarray(phases, dtype=float), dims="obs", coords={"obs": list(phases)})
    hap, ll = {}, {}
    norm_h, norm_l = [], []
    for b in stack["band"].values:
        R = stack.sel(band=b, drop=True)
        keep = [c for c in R.coords if c not in R.dims]
        R = R.drop_vars(keep)
        fh = ph.fit_hapke(R, I, E, G, max_pixels=300, seed=seed)
        fl = ph.fit_lunar_lambert(R, I, E, G, max_pixels=2000, seed=seed)
        hap[str(b)], ll[str(b)] = fh, fl
        norm_h.append(ph.normalise(R, I, E, G, "hapke", fh))
        norm_l.append(ph.normalise(R, I, E, G, "lunar-lambert", fl))
    band_coords = {c: stack[c] for c in ("band", "wavelength", "fwhm") if c in stack.coords}
    nh = xr.concat(norm_h, dim="band").assign_coords(band_coords).transpose(*stack.dims)
    nl = xr.concat(norm_l, dim="band").assign_coords(band_coords).transpose(*stack.dims)

    def feo(cube):
        with np.errstate(invalid="ignore"):
            return lucey_feo(band_by_wavelength(cube, 750.0), band_by_wavelength(cube, 950.0))

    out = {}
    f_true = feo(true_std)
    for name, cube in (("before", stack), ("after", nh), ("after_lunar_lambert", nl)):
        f = feo(cube)
        rng_ = (f.max("obs") - f.min("obs")).values
        out[f"feo_spread_{name}"] = float(np.nanmedian(rng_))
        out[f"feo_by_phase_{name}"] = [float(v) for v in f.median(["lat", "lon"]).values]
        out[f"feo_rmse_{name}"] = float(np.sqrt(np.nanmean((f - f_true).values ** 2)))
    out.update(phases=list(map(float, phases)), feo_true_median=float(f_true.median()),
               hapke=hap, lunar_lambert=ll, observations=stack, normalised=nh, true=true_std)
    return out


def interval_coverage(n_rep: int = 12, resolution_ppd: int = 1, snr: float = 100.0,
                      confidence: float = 0.95, seed: int = 0, **fit_kw) -> dict:
    """Coverage of the cross-calibration gain intervals over independent repetitions.

    Each repetition draws a new synthetic Moon (``make_moon`` seed), new noise for both sensors and
    new injected per-band gains (σ = 5 %) and offsets (σ = 0.005), fits
    :func:`fit_cross_calibration` (``fit_kw`` passed on) and counts the bands whose interval holds the
    injected gain. Returns ``gain_ci_coverage`` (fraction), ``gain_ci_trials`` (band-fits),
    ``gain_ci_nominal`` and the mean interval half-width ``gain_ci_halfwidth_pct`` (% of the gain).
    """
    from .synth import make_moon, observe

    hits, width = [], []
    for k in range(n_rep):
        moon = make_moon(seed=seed + k, resolution_ppd=resolution_ppd)
        ref = observe(moon, "clementine_uvvis", snr=snr, seed=1000 + 2 * k)["reflectance"].compute()
        tgt = observe(moon, "clementine_uvvis", snr=snr, gain_error=0.05, offset_error=0.005,
                      seed=1001 + 2 * k)
        c = fit_cross_calibration(tgt["reflectance"].compute(), ref, confidence=confidence, seed=k,
                                  **fit_kw)
        g = tgt["gain"].values
        hits.extend((c["gain_low"].values <= g) & (g <= c["gain_high"].values))
        width.extend((c["gain_high"].values - c["gain_low"].values) / 2 / g * 100)
    return {"gain_ci_coverage": float(np.mean(hits)), "gain_ci_trials": len(hits),
            "gain_ci_nominal": confidence, "gain_ci_trials_ppd": resolution_ppd,
            "gain_ci_halfwidth_pct": float(np.mean(width))}


def bench(fast: bool = False) -> dict:
    """``workbench bench calibration``: cross-calibration, destriping and photometric normalisation on
    the synthetic Moon with known injected errors (seeded).

    * gains/offsets: Clementine-like sensor with per-band gain errors (σ = 5 %) and offsets
      (σ = 0.005) fitted against an error-free reference, both at SNR 100;
    * interval coverage: :func:`interval_coverage` (12 repetitions × 5 bands at 1 px/deg; 6 in fast);
    * stripes: 2 % per-detector gain stripes (and 0.02 % offsets) at SNR 100;
    * FeO spread: :func:`phase_angle_experiment` at phases 15–75°.
    """
    import time

    from .synth import make_moon, observe

    ppd = 2 if fast else 4
    t0 = time.perf_counter()
    moon = make_moon(seed=0, resolution_ppd=ppd)
    res: dict = {"resolution_ppd": ppd, "snr": 100}
    ref = observe(moon, "clementine_uvvis", snr=100, seed=2)["reflectance"].compute()
    tgt = observe(moon, "clementine_uvvis", snr=100, gain_error=0.05, offset_error=0.005, seed=3)
    t1 = time.perf_counter()
    c = fit_cross_calibration(tgt["reflectance"].compute(), ref)
    res["cross_calibration_seconds"] = round(time.perf_counter() - t1, 3)
    res["gain_error_pct"] = float(np.abs(c["gain"].values / tgt["gain"].values - 1).max() * 100)
    res["offset_error"] = float(np.abs(c["offset"].values - tgt["offset"].values).max())
    res["gain_ci_coverage_headline"] = float(np.mean((c["gain_low"].values <= tgt["gain"].values)
                                                     & (tgt["gain"].values <= c["gain_high"].values)))
    res["bootstrap_tile"] = c["bootstrap_tile"].values.tolist()
    t1 = time.perf_counter()
    res.update(interval_coverage(n_rep=6 if fast else 12, resolution_ppd=1))
    res["coverage_seconds"] = round(time.perf_counter() - t1, 3)
    res["rmse_before"] = float(c["rmse_before"].max())
    res["rmse_after"] = float(c["rmse_after"].max())
    st = observe(moon, "clementine_uvvis", snr=100, stripes=0.02, seed=1).compute()
    t1 = time.perf_counter()
    d = destripe(st["reflectance"])
    res["destripe_seconds"] = round(time.perf_counter() - t1, 3)
    res["stripe_power_reduction"] = stripe_power_reduction(st["reflectance"], d["destriped"],
                                                           st["true_reflectance"])
    res["stripe_power_reduction_moments"] = stripe_power_reduction(
        st["reflectance"], destripe(st["reflectance"], method="moments")["destriped"],
        st["true_reflectance"])
    t1 = time.perf_counter()
    ex = phase_angle_experiment(moon)
    res["phase_experiment_seconds"] = round(time.perf_counter() - t1, 3)
    for k in ("feo_spread_before", "feo_spread_after", "feo_spread_after_lunar_lambert",
              "feo_rmse_before", "feo_rmse_after", "feo_rmse_after_lunar_lambert"):
        res[k] = ex[k]
    res["phases"] = ex["phases"]
    res["total_seconds"] = round(time.perf_counter() - t0, 3)
    return res
