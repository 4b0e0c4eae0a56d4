"""Procedural lunar terrain: cratered surfaces on fractal roughness, on a local (y, x) grid in metres.

Ingredients, each from the literature:

* **Crater size–frequency distribution**: cumulative ``N(>D) ∝ D^-b``. The default slope ``b`` is the
  maximum-likelihood fit (truncated Pareto) to the real LROC 5–20 km catalogue of Povilaitis et al.
  (2018), :data:`SFD_SLOPE_LROC_5_20KM`; the Head et al. (2010) ≥ 20 km catalogue gives
  :data:`SFD_SLOPE_HEAD2010_GE20KM`. :func:`fit_sfd_slope` reproduces both from the CSV files.
  The crater density at the smallest diameter is a fraction of geometric saturation,
  ``N_gs(>D) = 1.54 D^-2`` km⁻² (Gault 1970).
* **Fresh simple craters** (Pike 1977): depth/diameter ≈ 0.2, rim height ≈ 0.036 D, parabolic bowl;
  ejecta blanket thickness falling off as ``(r/R)^-3`` (McGetchin, Settle & Head 1973).
* **Degraded craters**: shallower (depth/diameter down to ~0.04) with lowered rims and smoothed profiles,
  mimicking diffusive degradation (Soderblom 1970; Fassett & Thomson 2014).
* **Fractal roughness**: a Gaussian random field with a power-law spectrum ``P(k) ∝ k^-(2H+2)``, Hurst
  exponent ``H ≈ 0.8`` and RMS deviation ≈ 1.5 m at a 17 m baseline (≈ 5° RMS slope), typical LOLA
  values (Rosenburg et al. 2011).

References
----------
Head, J. W. et al. (2010), Global distribution of large lunar craters, Science 329:1504–1507.
Povilaitis, R. Z. et al. (2018), Crater density differences: exploring regional resurfacing, secondary
crater populations, and crater saturation equilibrium on the Moon, Planet. Space Sci. 162:41–51.
Pike, R. J. (1977), Size-dependence in the shape of fresh impact craters on the Moon, in Impact and
Explosion Cratering, 489–509.
Gault, D. E. (1970), Saturation and equilibrium conditions for impact cratering on the lunar surface,
Radio Science 5:273–291.
McGetchin, T. R., Settle, M. & Head, J. W. (1973), Radial thickness variation in impact crater ejecta,
EPSL 20:226–236.
Fassett, C. I. & Thomson, B. J. (2014), Crater degradation on the lunar maria, JGR Planets 119:2255.
Rosenburg, M. A. et al. (2011), Global surface slopes and roughness of the Moon from LOLA, JGR 116:E02001.
Clauset, A., Shalizi, C. R. & Newman, M. E. J. (2009), Power-law distributions in empirical data,
SIAM Review 51:661–703 (maximum-likelihood slope).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage, optimize

from ..errors import InputError
from ..validate import is_whole_number

#: Cumulative SFD slope b (N(>D) ∝ D^-b), truncated-Pareto MLE on the LROC 5–20 km catalogue
#: (Povilaitis et al. 2018; 19 335 craters). Measured with :func:`fit_sfd_slope` on
#: ``craters/povilaitis2018_lroc_craters_5to20km_deepmoon.csv``.
SFD_SLOPE_LROC_5_20KM: float = 0.933
#: Same, Pareto MLE on the Head et al. (2010) catalogue for D ≥ 20 km (5 185 craters).
SFD_SLOPE_HEAD2010_GE20KM: float = 1.436

#: Fresh simple craters (Pike 1977): depth/diameter and rim-height/diameter.
FRESH_DEPTH_RATIO: float = 0.2
FRESH_RIM_RATIO: float = 0.036

_CATALOGUES = {
    "head2010": ("craters/head2010_craters_ge20km_deepmoon.csv", "Diam_km", 20.0, None),
    "lroc_5_20km": ("craters/povilaitis2018_lroc_craters_5to20km_deepmoon.csv", "Diameter (km)", 5.0, 20.0),
}


def fit_sfd_slope(diameters_km, d_min: float, d_max: float | None = None) -> float:
    """Maximum-likelihood cumulative power-law slope ``b`` of crater diameters in ``[d_min, d_max)``.

    Untruncated: ``b = n / Σ ln(D/d_min)`` (Clauset et al. 2009). With ``d_max`` the truncated-Pareto
    likelihood is maximised numerically.
    """
    d = np.asarray(diameters_km, dtype=float)
    d = d[np.isfinite(d) & (d >= d_min) & ((d < d_max) if d_max else True)]
    if d.size < 10:
        raise InputError(f"only {d.size} craters in the diameter range; need at least 10 to fit a slope")
    if d_max is None:
        return float(d.size / np.log(d / d_min).sum())
    sl = np.log(d).sum()

    def nll(b):
        return -(d.size * np.log(b) - (b + 1) * sl - d.size * np.log(d_min**-b - d_max**-b))

    return float(optimize.minimize_scalar(nll, bounds=(0.05, 8.0), method="bounded").x)


def fit_catalogue_slopes(data_root: str | Path | None = None) -> dict[str, float]:
    """Fit :func:`fit_sfd_slope` to the real catalogues under ``data_root`` (default: the data mirror)."""
    import pandas as pd

    if data_root is None:
        from ..config import mirror_dirs

        roots = [p for p in mirror_dirs() if (p / _CATALOGUES["head2010"][0]).exists()]
        if not roots:
            raise InputError("no crater catalogues found; set WORKBENCH_DATA_MIRROR to the data mirror")
        data_root = roots[0]
    out = {}
    for key, (rel, col, lo, hi) in _CATALOGUES.items():
        out[key] = fit_sfd_slope(pd.read_csv(Path(data_root) / rel)[col].to_numpy(), lo, hi)
    return out


def crater_profile(r_over_R: np.ndarray, depth_ratio: float = FRESH_DEPTH_RATIO,
                   rim_ratio: float = FRESH_RIM_RATIO) -> np.ndarray:
    """Height / diameter of a simple crater at normalised radius ``r/R`` (0 at the centre).

    Parabolic bowl from the floor (``rim - depth``) to the rim crest (``rim``) at ``r = R``, then an
    ejecta blanket ``rim · (r/R)^-3``, tapered to zero at ``r = 3R`` so that craters stay local.
    """
    x = np.asarray(r_over_R, dtype=float)
    inside = (rim_ratio - depth_ratio) + depth_ratio * x**2
    xo = np.maximum(x, 1.0)
    taper = np.clip((3.0 - xo) / 2.0, 0.0, 1.0) ** 2
    outside = rim_ratio * xo**-3 * taper
    return np.where(x < 1.0, inside, outside)


def fractal_surface(shape: tuple[int, int], pixel_size: float, rng: np.random.Generator,
                    hurst: float = 0.8, rms_at_17m: float = 1.5) -> np.ndarray:
    """Gaussian random field with power spectrum ``∝ k^-(2H+2)`` (self-affine, Hurst ``H``).

    Scaled so that the RMS height difference at a 17 m baseline (or at one pixel, extrapolated with
    ``(L/17 m)^H``, when pixels are larger) equals ``rms_at_17m`` metres.
    """
    ny, nx = shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    amp = k ** (-(hurst + 1.0))
    amp[0, 0] = 0.0
    noise = rng.standard_normal((ny, nx))
    f = np.fft.irfft2(np.fft.rfft2(noise) * amp, s=(ny, nx))
    lag = max(1, int(round(17.0 / pixel_size)))
    lag = min(lag, max(1, min(ny, nx) // 4))
    dev = np.sqrt(0.5 * (np.mean((f[:, lag:] - f[:, :-lag]) ** 2) + np.mean((f[lag:] - f[:-lag]) ** 2)))
    target = rms_at_17m * (lag * pixel_size / 17.0) ** hurst
    return f * (target / dev if dev > 0 else 0.0)


def _crater_population(rng: np.random.Generator, ny: int, nx: int, pixel_size: float, d_min: float,
                       d_max: float, sfd_slope: float, saturation: float, max_craters: int,
                       degraded_fraction: float) -> tuple[np.ndarray, ...]:
    """Diameters (m), centres (pixels), degraded flags and degradation states of a tile's craters.

    Density ``N(>D) = c D^-b`` capped at ``saturation`` × Gault's (1970) geometric saturation
    ``1.54 D^-2 km^-2`` wherever it binds in ``[d_min, d_max]`` (at ``d_max`` when ``b < 2``, at ``d_min``
    when ``b > 2``); diameters from the truncated Pareto law by inverse CDF.
    """
    area_km2 = ny * nx * (pixel_size / 1000.0) ** 2
    d_bind = d_max if sfd_slope < 2.0 else d_min
    c = saturation * 1.54 * (d_bind / 1000.0) ** -2 * (d_bind / 1000.0) ** sfd_slope
    n_mean = c * area_km2 * ((d_min / 1000.0) ** -sfd_slope - (d_max / 1000.0) ** -sfd_slope)
    n = int(min(rng.poisson(n_mean), max_craters))
    u = rng.random(n)
    diam = d_min * (1.0 - u * (1.0 - (d_max / d_min) ** -sfd_slope)) ** (-1.0 / sfd_slope)
    # centres may lie a little outside the tile so that edges are cratered too
    cy = rng.uniform(-0.1 * ny, 1.1 * ny, n)
    cx = rng.uniform(-0.1 * nx, 1.1 * nx, n)
    degraded = rng.random(n) < degraded_fraction
    state = rng.uniform(0.2, 1.0, n)  # degradation state of the degraded ones
    return diam, cy, cx, degraded, state


#: Allowed ranges of make_terrain's options: (low, high, low included, high included, what it is).
_TERRAIN_RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "sfd_slope": (0.0, np.inf, False, False, "a cumulative SFD slope b of N(>D) ~ D^-b"),
    "saturation": (0.0, 1.0, True, True, "a fraction of geometric saturation"),
    "min_crater_px": (0.0, np.inf, False, False, "the smallest crater diameter in pixels"),
    "max_crater_fraction": (0.0, 1.0, False, True, "the largest crater diameter as a fraction of the short side"),
    "degraded_fraction": (0.0, 1.0, True, True, "the fraction of craters that are degraded"),
    "hurst": (0.0, 1.0, False, True, "a Hurst exponent"),
    "roughness_m": (0.0, np.inf, True, False, "an RMS height deviation in metres"),
}


def _check_terrain_options(seed, **options) -> None:
    """One :class:`InputError` for the first option of :func:`make_terrain` outside its range."""
    if not is_whole_number(seed) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    max_craters = options.pop("max_craters")
    if not is_whole_number(max_craters) or max_craters < 0:
        raise InputError(f"max_craters must be a whole number >= 0, got {max_craters!r}")
    for name, value in options.items():
        lo, hi, lo_in, hi_in, what = _TERRAIN_RANGES[name]
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = np.nan
        ok = np.isfinite(v) and (v >= lo if lo_in else v > lo) and (v <= hi if hi_in else v < hi)
        if not ok:
            interval = f"{'[' if lo_in else '('}{lo:g}, {hi:g}{']' if hi_in else ')'}"
            raise InputError(f"{name} must lie in {interval} ({what}), got {value!r}")


def make_terrain(
    shape: tuple[int, int] | int,
    pixel_size: float,
    seed: int = 0,
    *,
    sfd_slope: float = SFD_SLOPE_LROC_5_20KM,
    saturation: float = 0.2,
    min_crater_px: float = 4.0,
    max_crater_fraction: float = 0.6,
    degraded_fraction: float = 0.6,
    hurst: float = 0.8,
    roughness_m: float = 1.5,
    max_craters: int = 5000,
) -> xr.DataArray:
    """A procedural lunar DEM: craters (fresh and degraded) on fractal roughness.

    Parameters
    ----------
    shape
        ``(ny, nx)`` or an int for a square tile.
    pixel_size
        Metres per pixel.
    seed
        Random seed, a whole number >= 0; the result is deterministic for a given seed and parameters.
    sfd_slope
        Cumulative SFD slope ``b`` > 0; default fitted to the LROC 5–20 km catalogue.
    saturation
        Crater density as a fraction (0–1) of geometric saturation (Gault 1970), applied where the power law
        comes closest to saturation (the largest diameter for ``b < 2``). The catalogue slopes are
        shallower than the equilibrium slope of sub-km craters (b ≈ 2); pass ``sfd_slope=2.0`` for a
        denser small-crater population.
    min_crater_px, max_crater_fraction
        Diameter range: from ``min_crater_px`` (> 0) pixels to ``max_crater_fraction`` (in (0, 1]) × the
        tile's short side.
    degraded_fraction
        Fraction (0–1) of craters that are degraded (shallower, smoothed, lower rims). Crater profiles
        are added to the surface, so a fresh crater on a degraded one keeps its own depth and rim relative
        to the degraded floor; nothing is overwritten.
    hurst, roughness_m
        Fractal background: Hurst exponent in (0, 1] and RMS deviation (m, >= 0) at a 17 m baseline.
    max_craters
        Upper bound on the number of craters, a whole number >= 0 (keeps very large grids fast).

    Returns
    -------
    xarray.DataArray
        ``elevation`` on ``(y, x)`` metres (``y`` descending: row 0 north), ``units = "m"``, with
        ``attrs["pixel_size"]``, the seed, the SFD slope and the crater count.

    Raises
    ------
    InputError
        A tile smaller than 8 × 8, a pixel size that is not positive, or an option outside the range
        given above (one message naming the option and its allowed range).
    """
    if np.isscalar(shape):
        shape = (int(shape), int(shape))
    ny, nx = (int(s) for s in shape)
    if ny < 8 or nx < 8:
        raise InputError(f"terrain shape {shape} too small; use at least 8 x 8 pixels")
    if not np.isfinite(pixel_size) or pixel_size <= 0:
        raise InputError(f"pixel_size must be positive metres, got {pixel_size!r}")
    _check_terrain_options(seed, sfd_slope=sfd_slope, saturation=saturation, min_crater_px=min_crater_px,
                           max_crater_fraction=max_crater_fraction, degraded_fraction=degraded_fraction,
                           hurst=hurst, roughness_m=roughness_m, max_craters=max_craters)
    rng = np.random.default_rng(seed)
    z = fractal_surface((ny, nx), pixel_size, rng, hurst=hurst, rms_at_17m=roughness_m)

    d_min = min_crater_px * pixel_size
    d_max = max(d_min * 1.01, max_crater_fraction * min(ny, nx) * pixel_size)
    diam, cy, cx, degraded, state = _crater_population(rng, ny, nx, pixel_size, d_min, d_max, sfd_slope,
                                                       saturation, max_craters, degraded_fraction)
    n = diam.size
    order = np.argsort(~degraded, kind="stable")  # degraded first (the profiles are summed: order is bookkeeping)
    rgrid = np.linspace(0.0, 3.0, 301)
    fresh = crater_profile(rgrid)
    for idx in order:
        R = 0.5 * diam[idx] / pixel_size  # radius in pixels
        w = int(np.ceil(3.0 * R)) + 1
        y0, y1 = int(max(0, np.floor(cy[idx] - w))), int(min(ny, np.ceil(cy[idx] + w) + 1))
        x0, x1 = int(max(0, np.floor(cx[idx] - w))), int(min(nx, np.ceil(cx[idx] + w) + 1))
        if y0 >= y1 or x0 >= x1:
            continue
        if degraded[idx]:
            # shallower bowl, lower rim, radially smoothed profile (a stand-in for diffusive degradation)
            s = state[idx]
            prof = crater_profile(rgrid, FRESH_DEPTH_RATIO * (1.0 - 0.8 * s), FRESH_RIM_RATIO * (1.0 - 0.9 * s))
            prof = ndimage.gaussian_filter1d(prof, sigma=1.0 + 35.0 * s, mode="nearest")
        else:
            prof = fresh
        yy, xx = np.ogrid[y0:y1, x0:x1]
        r = np.sqrt((yy - cy[idx]) ** 2 + (xx - cx[idx]) ** 2) / R
        z[y0:y1, x0:x1] += diam[idx] * np.interp(r, rgrid, prof, right=0.0)
    y = (np.arange(ny)[::-1] + 0.5) * pixel_size
    x = (np.arange(nx) + 0.5) * pixel_size
    return xr.DataArray(
        z.astype(np.float64),
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name="elevation",
        attrs={
            "units": "m",
            "long_name": "procedural lunar elevation",
            "pixel_size": float(pixel_size),
            "seed": int(seed),
            "sfd_slope": float(sfd_slope),
            "n_craters": int(n),
            "source": "workbench.synth.make_terrain (Pike 1977 craters, fitted SFD, fractal roughness)",
        },
    )
