"""Classical oxide-inversion baselines and scikit-learn regressors.

Spectral-parameter algorithms for Clementine UVVIS reflectance (415/750/900/950/1000 nm, standard
geometry i=30°, e=0°, g=30°):

* Lucey et al. (2000) FeO and TiO2 and the optical maturity parameter OMAT;
* Wilcox et al. (2005) FeO (mare-optimised, maturity-independent rotation);
* Lawrence et al. (2002) FeO (Clementine recalibrated against Lunar Prospector gamma rays).

Each works on numpy arrays or xarray DataArrays element-wise (NaN in → NaN out; negative, infinite or
percent-scale reflectance raises :class:`~workbench.errors.InputError`). The Lucey forms are *re-fittable*: origin and
coefficients can be fitted to a station table (:func:`fit_lucey_feo`, :func:`fit_lucey_tio2`) because
Kaguya MI or WAC reflectance does not share Clementine's constants.

References
----------
Lucey, P. G., Blewett, D. T., Jolliff, B. L. (2000). Lunar iron and titanium abundance algorithms based
on final processing of Clementine ultraviolet-visible images. JGR 105(E8), 20297-20305.
Lucey, P. G., Blewett, D. T., Taylor, G. J., Hawke, B. R. (2000). Imaging of lunar surface maturity.
JGR 105(E8), 20377-20386.
Wilcox, B. B., Lucey, P. G., Gillis, J. J. (2005). Mapping iron in the lunar mare: an improved approach.
JGR 110, E11001.
Lawrence, D. J. et al. (2002). Iron abundances on the lunar surface as measured by the Lunar Prospector
gamma-ray and neutron spectrometers. JGR 107(E12), 5130. (Form as implemented in GRASS GIS
``i.feotio2``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..validate import REFLECTANCE_MAX, check_reflectance_units
from ..validate import check_reflectance as _check_values

#: Clementine UVVIS band names and centre wavelengths (nm).
CLEMENTINE_BANDS: dict[str, float] = {"R415": 415.0, "R750": 750.0, "R900": 900.0, "R950": 950.0,
                                      "R1000": 1000.0}

#: Published constants.
LUCEY2000_FEO = {"x0": 0.08, "y0": 1.19, "slope": 17.427, "intercept": -7.565}
LUCEY2000_TIO2 = {"x0": 0.0, "y0": 0.42, "a": 3.708, "b": 5.979}
WILCOX2005_THETA = 1.3885  # rad
LAWRENCE2002 = {"x0": 0.04, "y0": 1.22}


def _refuse_invalid(arr: np.ndarray, name: str = "reflectance") -> None:
    """Raise :class:`InputError` for infinite, negative or above-:data:`~workbench.validate.REFLECTANCE_MAX`
    values (percent or DN, not a fraction); NaN passes and propagates, and an empty array is left alone."""
    if np.size(arr):
        _check_values(arr, name=name, allow_all_nan=True, max_value=REFLECTANCE_MAX)


def check_reflectance(*arrays, name: str = "reflectance") -> None:
    """Raise :class:`InputError` for infinite, negative or percent-scale values (above
    :data:`~workbench.validate.REFLECTANCE_MAX`) and non-reflectance ``units``; NaN is allowed and propagates.

    Dask-backed arrays are not computed here; :func:`valid_reflectance` checks them block by block.
    """
    for a in arrays:
        if isinstance(a, xr.DataArray):
            check_reflectance_units(a, name)
        data = a.data if isinstance(a, xr.DataArray) else a
        if not type(data).__module__.startswith("dask"):
            _refuse_invalid(np.asarray(data, dtype=float), name)


def _float_dtype(dtype) -> np.dtype:
    return np.dtype(dtype) if np.issubdtype(dtype, np.floating) else np.dtype(float)


def _valid_block(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block)
    block = block.astype(_float_dtype(block.dtype), copy=False)  # float32 stays float32
    _refuse_invalid(block)
    with np.errstate(invalid="ignore"):
        return np.where(block > 0, block, block.dtype.type(np.nan))


def valid_reflectance(*arrays):
    """The arrays with zero reflectance as NaN (no measurement: it would divide by zero), after refusing
    infinite, negative or percent-scale values (and non-reflectance ``units``) with :class:`InputError`, as the
    residual CNN does.

    NumPy and xarray data are checked now; dask-backed data (e.g. ``observe()``'s cubes) block by block
    when computed, so a negative pixel in a lazy cube is an error too, never a number.
    """
    out = []
    for a in arrays:
        if isinstance(a, xr.DataArray):
            check_reflectance_units(a)
        data = a.data if isinstance(a, xr.DataArray) else a
        if type(data).__module__.startswith("dask"):
            lazy = data.map_blocks(_valid_block, dtype=_float_dtype(data.dtype))
            out.append(a.copy(data=lazy) if isinstance(a, xr.DataArray) else lazy)
        elif isinstance(a, xr.DataArray):
            out.append(a.copy(data=_valid_block(a.values)))
        elif isinstance(a, pd.Series):  # keeps its index, so results still align with other columns
            out.append(pd.Series(_valid_block(a.to_numpy()), index=a.index, name=a.name))
        else:
            v = _valid_block(a)
            out.append(v if v.ndim else float(v))
    return out


def lucey_feo_angle(r750, r950, x0: float = LUCEY2000_FEO["x0"], y0: float = LUCEY2000_FEO["y0"]):
    """Iron spectral angle θFe = −atan[(R950/R750 − y0)/(R750 − x0)] (radians).

    Computed with ``arctan2`` so it stays continuous when R750 approaches ``x0``; for R750 > x0 (all
    sunlit lunar soils with the published origin) it equals the published formula.
    """
    r750, r950 = valid_reflectance(r750, r950)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctan2(-(r950 / r750 - y0), r750 - x0)


def lucey_tio2_angle(r415, r750, x0: float = LUCEY2000_TIO2["x0"], y0: float = LUCEY2000_TIO2["y0"]):
    """Titanium spectral angle θTi = atan[(R415/R750 − y0)/(R750 − x0)] (radians)."""
    r415, r750 = valid_reflectance(r415, r750)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctan2(r415 / r750 - y0, r750 - x0)


def lucey_feo(r750, r950, x0=LUCEY2000_FEO["x0"], y0=LUCEY2000_FEO["y0"],
              slope=LUCEY2000_FEO["slope"], intercept=LUCEY2000_FEO["intercept"]):
    """FeO (wt%) = slope·θFe + intercept; defaults are Lucey et al. (2000) Clementine constants.

    Examples
    --------
    >>> round(float(lucey_feo(0.10, 0.11)), 3)   # theta = -atan((1.1-1.19)/0.02)
    15.999
    """
    return slope * lucey_feo_angle(r750, r950, x0, y0) + intercept


def lucey_tio2(r415, r750, x0=LUCEY2000_TIO2["x0"], y0=LUCEY2000_TIO2["y0"],
               a=LUCEY2000_TIO2["a"], b=LUCEY2000_TIO2["b"]):
    """TiO2 (wt%) = a·θTi^b; defaults are Lucey et al. (2000) Clementine constants.

    The power law is defined for θTi ≥ 0; spectra redder than the origin (θTi < 0, which the algorithm
    reads as no detectable ilmenite) give 0 wt% — the limit of the published curve at θTi = 0.
    """
    th = lucey_tio2_angle(r415, r750, x0, y0)
    with np.errstate(invalid="ignore"):
        return a * np.maximum(th, 0.0) ** b


def omat_lucey2000(r750, r950):
    """Optical maturity OMAT = sqrt[(R750 − 0.08)² + (R950/R750 − 1.19)²] (Lucey et al. 2000b).

    Low OMAT = mature (space-weathered) soil, high = fresh.
    """
    r750, r950 = valid_reflectance(r750, r950)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((r750 - 0.08) ** 2 + (r950 / r750 - 1.19) ** 2)


def wilcox2005_feo(r750, r950, theta: float = WILCOX2005_THETA):
    """FeO (wt%) = −137.97·(R750·sinθ + (R950/R750)·cosθ) + 57.46, θ = 1.3885 rad (Wilcox et al. 2005)."""
    r750, r950 = valid_reflectance(r750, r950)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -137.97 * (r750 * np.sin(theta) + (r950 / r750) * np.cos(theta)) + 57.46


def lawrence2002_feo(r750, r950):
    """FeO (wt%) = 5.7·(−0.147 + 0.372·t − 0.036·t²) + 2.15, t = −(R950/R750 − 1.22)/(R750 − 0.04).

    Lawrence et al. (2002) recalibration of the Clementine iron parameter against Lunar Prospector
    gamma-ray iron (origin x0=0.04, y0=1.22), in the form implemented by GRASS GIS ``i.feotio2``.
    Caution: in this form it reads ~4–6 wt% at mare stations (RMSE 8.4 wt% on the 36 Clementine
    stations), i.e. it is on the coarse gamma-ray footprint scale, not soil FeO; the constants could not
    be checked against the paper here.
    """
    r750, r950 = valid_reflectance(r750, r950)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -(r950 / r750 - LAWRENCE2002["y0"]) / (r750 - LAWRENCE2002["x0"])
    return 5.7 * (-0.147 + 0.372 * t - 0.036 * t**2) + 2.15


# --------------------------------------------------------------------------------------------- fitting


@dataclass
class LuceyFit:
    """Fitted parameters of a Lucey-form algorithm plus the training RMSE (wt%)."""

    oxide: str
    params: dict[str, float]
    train_rmse: float
    n: int

    def predict(self, r_a, r_b):
        """Apply to (R750, R950) for FeO or (R415, R750) for TiO2."""
        f = lucey_feo if self.oxide == "FeO" else lucey_tio2
        return f(r_a, r_b, **self.params)


def _finite_rows(*cols):
    arrs = [np.asarray(c, dtype=float).ravel() for c in cols]
    ok = np.all([np.isfinite(a) for a in arrs], axis=0)
    if ok.sum() < 5:
        raise InputError(f"need at least 5 complete rows to fit an algorithm, got {int(ok.sum())}; "
                         "add stations with reflectance and measured oxides")
    return [a[ok] for a in arrs]


def _measured_rows(ra, rb, y):
    """Rows whose two reflectances are both > 0 (zero is no measurement, as in :func:`valid_reflectance`);
    at least 5 of them, since each form has four parameters."""
    ok = (ra > 0) & (rb > 0)
    if ok.sum() < 5:
        raise InputError(f"need at least 5 rows with both reflectances above zero to fit an algorithm, got "
                         f"{int(ok.sum())} (zero reflectance is no measurement); add measured stations")
    return ra[ok], rb[ok], y[ok]


def fit_lucey_feo(r750, r950, feo, init: dict | None = None) -> LuceyFit:
    """Fit origin (x0, y0), slope and intercept of the Lucey FeO form to measured FeO (wt%).

    Nonlinear least squares (``scipy.optimize.least_squares``) started from the published constants.
    """
    from scipy.optimize import least_squares

    r750, r950, feo = _finite_rows(r750, r950, feo)
    check_reflectance(r750, r950)
    r750, r950, feo = _measured_rows(r750, r950, feo)
    p0 = dict(LUCEY2000_FEO, **(init or {}))

    def resid(p):
        return lucey_feo(r750, r950, *p) - feo

    sol = least_squares(resid, [p0["x0"], p0["y0"], p0["slope"], p0["intercept"]],
                        bounds=([-0.5, 0.5, -200, -200], [0.5, 2.0, 200, 200]))
    params = dict(zip(["x0", "y0", "slope", "intercept"], map(float, sol.x), strict=True))
    return LuceyFit("FeO", params, float(np.sqrt(np.mean(sol.fun**2))), len(feo))


def fit_lucey_tio2(r415, r750, tio2, init: dict | None = None) -> LuceyFit:
    """Fit origin (x0, y0) and power law (a, b) of the Lucey TiO2 form to measured TiO2 (wt%)."""
    from scipy.optimize import least_squares

    r415, r750, tio2 = _finite_rows(r415, r750, tio2)
    check_reflectance(r415, r750)
    r415, r750, tio2 = _measured_rows(r415, r750, tio2)
    p0 = dict(LUCEY2000_TIO2, **(init or {}))

    def resid(p):
        return lucey_tio2(r415, r750, *p) - tio2

    sol = least_squares(resid, [p0["x0"], p0["y0"], p0["a"], p0["b"]],
                        bounds=([-0.3, 0.0, 1e-3, 0.3], [0.3, 1.5, 1e3, 15.0]))
    params = dict(zip(["x0", "y0", "a", "b"], map(float, sol.x), strict=True))
    return LuceyFit("TiO2", params, float(np.sqrt(np.mean(sol.fun**2))), len(tio2))


# ------------------------------------------------------------------------------------ band handling


def band_by_wavelength(refl: xr.DataArray, wavelength_nm: float, tol_nm: float = 20.0) -> xr.DataArray:
    """The band of a ``(band, ...)`` cube nearest to ``wavelength_nm`` (within ``tol_nm``)."""
    if "band" not in refl.dims or "wavelength" not in refl.coords:
        raise InputError("reflectance needs a 'band' dim with a 'wavelength' coord (nm); "
                         "use workbench.synth.resample_to_instrument or set refl.coords['wavelength']")
    wl = np.asarray(refl["wavelength"].values, dtype=float)
    i = int(np.argmin(np.abs(wl - wavelength_nm)))
    if abs(wl[i] - wavelength_nm) > tol_nm:
        raise InputError(f"no band within {tol_nm} nm of {wavelength_nm} nm (bands: {wl.tolist()}); "
                         "this algorithm needs that band — use an instrument that has it or a fitted model")
    return refl.isel(band=i, drop=True)


def classical_maps(refl: xr.DataArray) -> xr.Dataset:
    """All classical algorithms applied to a ``(band, lat, lon)`` Clementine-like cube.

    Returns ``FeO_lucey2000``, ``TiO2_lucey2000``, ``FeO_wilcox2005``, ``FeO_lawrence2002`` (wt%) and
    ``OMAT`` (dimensionless). Bands are matched by wavelength (±20 nm), so Kaguya MI works too (with the
    caveat that the published constants are Clementine's).
    """
    r415, r750, r950 = (band_by_wavelength(refl, w) for w in (415.0, 750.0, 950.0))
    out = xr.Dataset({
        "FeO_lucey2000": lucey_feo(r750, r950),
        "TiO2_lucey2000": lucey_tio2(r415, r750),
        "FeO_wilcox2005": wilcox2005_feo(r750, r950),
        "FeO_lawrence2002": lawrence2002_feo(r750, r950),
        "OMAT": omat_lucey2000(r750, r950),
    })
    for v in out.data_vars:
        out[v].attrs["units"] = "1" if v == "OMAT" else "wt%"
    out.attrs.update({k: v for k, v in refl.attrs.items() if k == "crs"})
    return out


# ----------------------------------------------------------------------------- scikit-learn baselines


def spectral_features(X: np.ndarray, wavelengths) -> np.ndarray:
    """Per-pixel features from ``X`` (n, bands) reflectance: log R and ratios to the band nearest 750 nm.

    Ratios remove most of the albedo/topographic-shading factor; log R keeps brightness (maturity, Ti).
    """
    X = np.asarray(X, dtype=float)
    wl = np.asarray(wavelengths, dtype=float)
    ref = int(np.argmin(np.abs(wl - 750.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.delete(X / X[:, ref : ref + 1], ref, axis=1)
        return np.concatenate([np.log(X), ratios], axis=1)


SKLEARN_KINDS = ("pls", "random_forest", "gbm")


@dataclass
class SklearnInverter:
    """A scikit-learn regressor on :func:`spectral_features`, multi-output (oxides and Mg#).

    ``kind``: ``"pls"`` (standardised partial least squares, 4 components), ``"random_forest"``
    (``size`` trees, min 5 samples per leaf) or ``"gbm"`` (histogram gradient boosting per output,
    ``size`` iterations).
    """

    kind: str = "pls"
    seed: int = 0
    size: int = 100  # trees (random forest) or boosting iterations (gbm)
    model: object = field(default=None, repr=False)
    wavelengths: tuple = ()

    def _make(self, n_features: int):
        from sklearn.cross_decomposition import PLSRegression
        from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
        from sklearn.multioutput import MultiOutputRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.kind == "pls":
            return make_pipeline(StandardScaler(), PLSRegression(n_components=min(4, n_features)))
        if self.kind == "random_forest":
            return RandomForestRegressor(n_estimators=self.size, min_samples_leaf=5, n_jobs=1,
                                         random_state=self.seed)
        if self.kind == "gbm":
            return MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=self.size, random_state=self.seed))
        raise InputError(f"unknown scikit-learn baseline {self.kind!r}; choose one of {SKLEARN_KINDS}")

    @staticmethod
    def _rows(X, wavelengths) -> np.ndarray:
        """``X`` as a float (n, bands) array with one column per wavelength and no negative value.

        Raises :class:`InputError` for another shape or band count, and for negative reflectance (as
        the residual CNN does); NaN passes (those rows come out NaN).
        """
        X = np.asarray(X, dtype=float)
        n_bands = len(wavelengths)
        if X.ndim != 2 or X.shape[1] != n_bands:
            got = f"got {X.shape[1]}" if X.ndim == 2 else f"got shape {X.shape}"
            raise InputError(f"reflectance rows must be (n, {n_bands}): expected {n_bands} bands at "
                             f"{tuple(float(w) for w in wavelengths)} nm, {got}; give one column per band, in "
                             "that order (a single spectrum as X[None, :])")
        _refuse_invalid(X)
        return X

    def fit(self, X: np.ndarray, Y: np.ndarray, wavelengths) -> SklearnInverter:
        """Fit on rows of ``X`` (n, bands) and targets ``Y`` (n, k); rows with NaN are dropped.

        Raises :class:`InputError` when ``X`` has not one column per wavelength or a negative value.
        """
        X = self._rows(X, wavelengths)
        F = spectral_features(X, wavelengths)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim not in (1, 2) or len(Y) != len(F):
            raise InputError(f"targets Y must have one row per reflectance row: X has {len(F)} rows, Y has shape "
                             f"{Y.shape}; give Y as (n,) or (n, k) in the order of X's rows")
        Y = Y.reshape(len(F), -1)
        ok = np.isfinite(F).all(1) & np.isfinite(Y).all(1)
        if not ok.any():
            raise InputError("no row has every band measured (above zero) and every target known; nothing to fit")
        self.wavelengths = tuple(float(w) for w in wavelengths)
        self.model = self._make(F.shape[1]).fit(F[ok], Y[ok])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict (n, k); rows with any NaN (or zero: no measurement) band give NaN.

        Raises :class:`InputError` when ``X`` is not (n, bands) with the fitted model's bands, or has a
        negative value.
        """
        if self.model is None:
            raise InputError("call fit() before predict()")
        X = self._rows(X, self.wavelengths)
        F = spectral_features(X, self.wavelengths)
        ok = np.isfinite(F).all(1)
        out = np.full((len(F), self._n_out()), np.nan)
        if ok.any():
            out[ok] = np.asarray(self.model.predict(F[ok])).reshape(int(ok.sum()), -1)
        return out

    def _n_out(self) -> int:
        m = self.model
        if hasattr(m, "n_outputs_"):
            return int(m.n_outputs_)
        if hasattr(m, "estimators_") and isinstance(m.estimators_, list):
            return len(m.estimators_)
        return int(m[-1].y_loadings_.shape[0])
