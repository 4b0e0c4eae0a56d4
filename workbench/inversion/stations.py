"""FeO and TiO2 at sampling stations from Clementine 5-band spectra (``workbench invert stations``).

The station model is Gaussian-process regression on physics-motivated spectral features — the Lucey
et al. (2000) iron and titanium angles, log R750 and the 900/750 and 1000/750 ratios — with an RBF +
linear + white-noise kernel (hyper-parameters by marginal likelihood). A *prior mean* can be supplied:
the published Lucey 2000 algorithm or a model pre-trained on the synthetic Moon's Clementine spectra; the
GP then learns the residual from the training stations (a Bayesian fine-tune). Which variant is best is
decided by leave-one-out cross-validation (:func:`cross_validate`), never on the training fit.

References
----------
Rasmussen, C. E., Williams, C. K. I. (2006). Gaussian Processes for Machine Learning. MIT Press.
Lucey, P. G., Blewett, D. T., Jolliff, B. L. (2000). JGR 105(E8), 20297-20305.
Wilcox, B. B., Lucey, P. G., Gillis, J. J. (2005). JGR 110, E11001 (the 36-station compilation).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..validate import REFLECTANCE_MAX, check_station_frame, check_unique_columns, read_csv
from ..validate import check_reflectance as check_finite_reflectance
from .baselines import (
    CLEMENTINE_BANDS,
    fit_lucey_feo,
    fit_lucey_tio2,
    lucey_feo,
    lucey_feo_angle,
    lucey_tio2,
    lucey_tio2_angle,
    valid_reflectance,
)

BANDS = list(CLEMENTINE_BANDS)
TARGETS = {"FeO": "FeO_wt_pct", "TiO2": "TiO2_wt_pct"}
#: A station farther than this from every TRAIN station is at another landing site (the sampling stations of
#: one Apollo mission lie within about 10 km of each other).
NEW_SITE_KM = 50.0
#: The columns that place a station: the landing site ("Apollo 17 - S2") or its coordinates.
LOCATION_COLUMNS = ("site", "lat_deg", "lon_deg_east_0_360")


def read_stations(src: str | Path | pd.DataFrame, require_targets: bool = False) -> pd.DataFrame:
    """Read and validate a station table (CSV path or DataFrame).

    Needs columns ``R415, R750, R900, R950, R1000`` (reflectance as a fraction, 0 ≤ R ≤
    :data:`~workbench.validate.REFLECTANCE_MAX`, NaN allowed) and, when ``require_targets``, ``FeO_wt_pct`` and
    ``TiO2_wt_pct`` (wt%, 0–100, blank for unknown). Column names are stripped of spaces; ``lat_deg`` /
    ``lon_deg_east_0_360`` are range-checked when present. Other columns are kept but not used.
    """
    if isinstance(src, pd.DataFrame):
        df, origin = src, "station table"
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise InputError(f"station table {path} does not exist; give a CSV with columns {BANDS}")
        df, origin = read_csv(path), str(path)  # pandas parse errors become one InputError naming the file
    else:
        raise InputError(f"station table must be a CSV path or a pandas DataFrame, got {type(src).__name__}")
    df = df.rename(columns=lambda c: str(c).strip())
    check_unique_columns(list(df.columns), origin)
    missing = [b for b in BANDS if b not in df.columns]
    if missing:
        raise InputError(f"{origin} is missing band column(s) {missing}; it needs {BANDS} "
                         "(Clementine UVVIS reflectance at 415/750/900/950/1000 nm)")
    # measured oxides are inputs of TRAIN only: in PRED they are other columns, carried through unread
    targets = [c for c in TARGETS.values() if c in df.columns] if require_targets else []
    if require_targets and len(targets) < len(TARGETS):
        miss = [c for c in TARGETS.values() if c not in df.columns]
        raise InputError(f"training table is missing {miss}; TRAIN needs measured FeO_wt_pct and "
                         "TiO2_wt_pct (wt%) on every row")
    df = check_station_frame(df, BANDS, numeric=[*BANDS, *targets], origin=origin)  # numbers, lat/lon
    check_finite_reflectance(df[BANDS].to_numpy(float), name=f"{origin}: station reflectance",
                             max_value=REFLECTANCE_MAX)  # inf, negative, all-NaN, percent
    if require_targets:
        Y = df[targets].to_numpy(float)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(Y) | (Y < 0) | (Y > 100)
        if bad.any():
            i, j = (int(k[0]) for k in np.nonzero(bad))
            raise InputError(f"{origin}: {int(bad.sum())} measured oxide value(s) outside 0–100 wt%, first "
                             f"{targets[j]} = {Y[i, j]:g} in row {i + 1}; give wt% (blank for unknown)")
    return df


def station_features(X: np.ndarray) -> np.ndarray:
    """Features (n, 5): θFe, θTi (Lucey 2000 origins), log R750, R900/R750, R1000/R750; NaN for a station with a
    blank or zero band."""
    # zero is no measurement (as in the classical algorithms): NaN, so the station is skipped, not inverted
    r415, r750, r900, r950, r1000 = valid_reflectance(*np.asarray(X, dtype=float).T)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.c_[lucey_feo_angle(r750, r950), lucey_tio2_angle(r415, r750), np.log(r750),
                     r900 / r750, r1000 / r750]


def lucey_prior(X: np.ndarray) -> np.ndarray:
    """Published Lucey 2000 FeO and TiO2 (n, 2) as a prior mean."""
    X = np.asarray(X, dtype=float)
    return np.c_[lucey_feo(X[:, 1], X[:, 3]), lucey_tio2(X[:, 0], X[:, 1])]


def loo_std_scale(gp, level: float = 0.95) -> float:
    """Factor (>= 1) on a fitted GP's predictive std so that its ``level`` intervals cover the closed-form
    leave-one-out residuals of its own training rows, with the finite-sample (conformal) rank.

    With ``K`` the fitted kernel matrix (noise included) and ``α = K⁻¹y``, the LOO residual of row ``i`` is
    ``α_i/[K⁻¹]_ii`` and its LOO variance ``1/[K⁻¹]_ii`` (Rasmussen & Williams 2006, eq. 5.12). Of the
    ``n`` standardised residuals ``|z|`` the ``⌈(n + 1)·level⌉``-th smallest is taken, the rank that makes a
    new exchangeable row fall inside with probability ≥ ``level`` (Vovk et al. 2005; the jackknife form of
    Barber et al. 2021), instead of the plain ``level`` quantile, which under-covers on a few dozen rows.
    With fewer than ``level/(1 − level)`` rows (19 at 95 %) that rank exceeds ``n`` and the largest residual is
    used: no finite interval can then promise ``level``. The factor is ``max(1, |z|_(k)/z_level)``: intervals
    are widened where held-out rows fall outside them, never narrowed. The hyper-parameters were fitted on
    all rows, so this is still slightly optimistic (on the 36 Clementine stations the 95 % intervals held
    89 % / 94 % of FeO / TiO2 in leave-one-station-out cross-validation, against 86 % / 89 % with the plain
    quantile).

    References
    ----------
    Rasmussen, C. E. & Williams, C. K. I. (2006), Gaussian Processes for Machine Learning, MIT Press, §5.4.2.
    Vovk, V., Gammerman, A. & Shafer, G. (2005), Algorithmic Learning in a Random World, Springer.
    Barber, R. F., Candès, E. J., Ramdas, A. & Tibshirani, R. J. (2021), Predictive inference with the
    jackknife+, Ann. Statist. 49(1), 486-507.
    """
    from scipy.stats import norm

    K = gp.kernel_(gp.X_train_)
    Kinv = np.linalg.inv(K)  # a few dozen stations: the explicit inverse is fine
    d = np.diag(Kinv)
    z = np.sort(np.abs((Kinv @ gp.y_train_) / d * np.sqrt(d)))  # residual / LOO std (normalised units cancel)
    k = min(len(z), int(np.ceil((len(z) + 1) * level - 1e-9)))  # conformal rank, capped at the largest
    return max(1.0, float(z[k - 1]) / float(norm.ppf(0.5 + level / 2)))


def _missions(df: pd.DataFrame) -> pd.Series | None:
    """The landing site of each row from a ``site`` column ("Apollo 17 - S2" → "Apollo 17"; NaN where blank), or
    None without one (an all-blank column, as a CSV's empty column reads, is none: NaN floats have no ``.str``)."""
    if "site" not in df.columns or df["site"].isna().all():
        return None
    site = df["site"].where(df["site"].notna())
    return site.astype(str).str.split(" - ").str[0].where(site.notna())


def _lat_lon(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Station latitudes and longitudes (degrees, NaN where blank), or None without both columns."""
    if not {"lat_deg", "lon_deg_east_0_360"} <= set(df.columns):
        return None
    return df["lat_deg"].to_numpy(float), df["lon_deg_east_0_360"].to_numpy(float)


def site_groups(df: pd.DataFrame) -> np.ndarray | None:
    """One landing-site label per station: the mission of a ``site`` column, else clusters of stations within
    :data:`NEW_SITE_KM` of each other (single linkage on great-circle distance) from ``lat_deg`` /
    ``lon_deg_east_0_360``; None when a row has neither."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    from ..geo import great_circle_distance

    missions = _missions(df)
    if missions is not None and missions.notna().all():
        return missions.to_numpy(str)
    coords = _lat_lon(df)
    if coords is None or not np.isfinite(np.c_[coords]).all() or len(df) < 2:
        return None
    lat, lon = coords
    d = great_circle_distance(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    labels = fcluster(linkage(squareform(d, checks=False), method="single"), NEW_SITE_KM, criterion="distance")
    return np.array([f"site {k}" for k in labels])


def new_site_rows(train: pd.DataFrame, pred: pd.DataFrame) -> np.ndarray:
    """Whether each PRED row is at a landing site with no TRAIN station: by the ``site`` column's mission where
    both tables name one, else farther than :data:`NEW_SITE_KM` from every TRAIN station, else (a row that
    cannot be placed) True."""
    from ..geo import great_circle_distance

    new = np.ones(len(pred), bool)
    placed = np.zeros(len(pred), bool)
    m_tr, m_pr = _missions(train), _missions(pred)
    if m_tr is not None and m_pr is not None:
        named = m_pr.notna().to_numpy()
        new[named] = ~m_pr[named].isin(set(m_tr.dropna())).to_numpy()
        placed |= named
    c_tr, c_pr = _lat_lon(train), _lat_lon(pred)
    if c_tr is not None and c_pr is not None:
        ok_tr = np.isfinite(c_tr[0]) & np.isfinite(c_tr[1])
        rows = ~placed & np.isfinite(c_pr[0]) & np.isfinite(c_pr[1])
        if ok_tr.any() and rows.any():
            d = great_circle_distance(c_pr[0][rows, None], c_pr[1][rows, None],
                                      c_tr[0][None, ok_tr], c_tr[1][None, ok_tr])
            new[rows] = d.min(1) > NEW_SITE_KM
    return new


@dataclass
class StationInverter:
    """GP regression of FeO and TiO2 (wt%) on :func:`station_features`, optionally around a prior mean.

    Parameters
    ----------
    prior : callable or None
        ``prior(X) -> (n, 2)`` FeO/TiO2 mean function (e.g. :func:`lucey_prior` or a synthetic-Moon
        pre-trained model); ``None`` for a zero-mean GP on the features.
    seed : int
        Seed of the kernel hyper-parameter optimiser restarts.
    """

    prior: Callable[[np.ndarray], np.ndarray] | None = None
    seed: int = 0
    models: list = field(default_factory=list, repr=False)
    scale: tuple = ()
    #: per oxide, the factor on the GP's predictive std from its leave-one-out residuals (see :func:`loo_std_scale`)
    std_scale: tuple = (1.0, 1.0)
    #: the TRAIN rows used (bands, oxides and the ``site`` / ``lat_deg`` / ``lon_deg_east_0_360`` columns present)
    train: pd.DataFrame | None = field(default=None, repr=False)
    _spread: tuple | None = field(default=None, init=False, repr=False)
    _spread_done: bool = field(default=False, init=False, repr=False)

    def _prior_mean(self, X: np.ndarray) -> np.ndarray:
        """The prior's (n, 2) FeO/TiO2 mean (zeros without a prior), checked for shape and finite values
        where the bands are complete."""
        if self.prior is None:
            return np.zeros((len(X), 2))
        base = np.asarray(self.prior(X), dtype=float)
        if base.shape != (len(X), 2):
            raise InputError(f"the prior returned shape {base.shape}; it must map X (n, 5) to FeO, TiO2 of "
                             f"shape (n, 2) = {(len(X), 2)}")
        with np.errstate(invalid="ignore"):
            complete = (X > 0).all(1) & np.isfinite(X).all(1)  # zero reflectance is no measurement
        if not np.isfinite(base[complete]).all():
            raise InputError("the prior returned NaN or inf for stations with complete bands; it must give a "
                             "finite FeO and TiO2 mean for every such station")
        return base

    def fit(self, df: pd.DataFrame) -> StationInverter:
        """Fit on the rows of ``df`` with complete bands and targets."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, DotProduct, WhiteKernel
        from sklearn.gaussian_process.kernels import ConstantKernel as C

        df = read_stations(df, require_targets=True)
        X = df[BANDS].to_numpy(float)
        Y = df[list(TARGETS.values())].to_numpy(float)
        F = station_features(X)
        ok = np.isfinite(F).all(1) & np.isfinite(Y).all(1)
        if ok.sum() < 5:
            raise InputError(f"TRAIN has {int(ok.sum())} complete rows; at least 5 stations are needed")
        F, Y, X = F[ok], Y[ok], X[ok]
        #: rows of TRAIN used (complete bands and targets) and rows skipped (a blank band or oxide)
        self.n_used, self.n_skipped = int(ok.sum()), int((~ok).sum())
        mu, sd = F.mean(0), F.std(0)
        sd[sd == 0] = 1.0
        self.scale = (mu, sd)
        base = self._prior_mean(X)
        self.models = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # hyper-parameter bound warnings on tiny tables
            for j in range(2):
                k = (C(1.0) * RBF(np.full(F.shape[1], 3.0), (0.1, 100.0)) + WhiteKernel(0.5)
                     + C(0.1) * DotProduct(1.0))
                gp = GaussianProcessRegressor(k, normalize_y=True, random_state=self.seed)
                self.models.append(gp.fit((F - mu) / sd, Y[:, j] - base[:, j]))
        self.std_scale = tuple(loo_std_scale(gp) for gp in self.models)
        self.train = df[ok].reset_index(drop=True)
        self._spread, self._spread_done = None, False
        return self

    @property
    def between_site_std(self) -> tuple[float, float] | None:
        """Per oxide, the std (wt%) that a station at a landing site with no TRAIN station adds to the GP's in
        quadrature; None when TRAIN has fewer than 3 landing sites or a row that cannot be placed.

        Each landing site of TRAIN (:func:`site_groups`) is left out in turn and predicted by the same model
        fitted to the other sites (hyper-parameters too); the spread is ``√max(0, mean r² − mean s²)`` over the
        left-out stations' residuals ``r`` and stds ``s``: what the errors at an unseen site hold beyond what
        the station-level std expects. The stations of one site share its soil, its sampling and its
        Clementine pixels, so a GP fitted to some of them explains the others better than a new site: leaving
        out whole Apollo sites, the station-level std's 95 % intervals held 72 % / 89 % of FeO / TiO2, with
        this term 86 % / 94 % (the term estimated again inside each fold from the 4 other sites). Computed on
        first use (it refits the model once per site) and kept.
        """
        if not self._spread_done:
            self._spread, self._spread_done = self._between_site_spread(), True
        return self._spread

    def _between_site_spread(self) -> tuple[float, float] | None:
        train = self.train
        groups = site_groups(train) if train is not None else None
        if groups is None or len(set(groups)) < 3:
            return None
        res, std = [], []
        for g in pd.unique(groups):
            out = groups == g
            if (~out).sum() < 5:  # too few stations left to fit
                continue
            inner = StationInverter(prior=self.prior, seed=self.seed).fit(train[~out])
            inner._spread_done = True  # the station-level std alone: what the spread is measured against
            p = inner.predict(train.loc[out, BANDS])
            res.append(p[["FeO_pred", "TiO2_pred"]].to_numpy(float)
                       - train.loc[out, list(TARGETS.values())].to_numpy(float))
            std.append(p[["FeO_std", "TiO2_std"]].to_numpy(float))
        if len(res) < 3:
            return None
        r, sd = np.vstack(res), np.vstack(std)
        return tuple(float(v) for v in np.sqrt(np.maximum(0.0, np.nanmean(r**2, 0) - np.nanmean(sd**2, 0))))

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with ``FeO_pred, TiO2_pred, FeO_std, TiO2_std, FeO_lucey2000, TiO2_lucey2000, new_site`` added.

        ``*_std`` is the GP predictive standard deviation (wt%, includes the fitted noise); for a row at a
        landing site with no TRAIN station (``new_site``, see :func:`new_site_rows`: from ``df``'s ``site`` or
        ``lat_deg`` / ``lon_deg_east_0_360``; a row with neither counts as new) it adds
        :attr:`between_site_std` in quadrature. Rows with a NaN band give NaN predictions.
        """
        if not self.models:
            raise InputError("call fit(TRAIN) before predict()")
        df = read_stations(df)
        X = df[BANDS].to_numpy(float)
        F = station_features(X)
        ok = np.isfinite(F).all(1)
        mu, sd = self.scale
        out = df.copy()
        luc = lucey_prior(X)
        base = self._prior_mean(X)
        new = new_site_rows(self.train, df)
        for j, ox in enumerate(TARGETS):
            m = np.full(len(X), np.nan)
            s = np.full(len(X), np.nan)
            if ok.any():
                pm, ps = self.models[j].predict((F[ok] - mu) / sd, return_std=True)
                m[ok], s[ok] = pm + base[ok, j], ps * self.std_scale[j]
            if new.any() and self.between_site_std is not None:
                s[new] = np.hypot(s[new], self.between_site_std[j])
            out[f"{ox}_pred"], out[f"{ox}_std"] = m, s
        out["FeO_lucey2000"], out["TiO2_lucey2000"] = luc[:, 0], luc[:, 1]
        out["new_site"] = new
        return out


def _groups(df: pd.DataFrame, by: str) -> np.ndarray:
    if by == "station":
        return np.arange(len(df))
    if by == "mission":
        missions = _missions(df)
        if missions is None:
            raise InputError("grouping by mission needs a 'site' column like 'Apollo 17 - S2'")
        blank = np.flatnonzero(missions.isna().to_numpy())
        if blank.size:  # such rows were never left out, so never scored, and nothing said so
            raise InputError(f"grouping by mission needs a site on every row; {blank.size} row(s) have none "
                             f"(first: row {blank[0] + 1}); fill in their 'site' or use --cv station")
        return missions.to_numpy(str)
    raise InputError(f"unknown grouping {by!r}; use 'station' or 'mission'")


#: What the station cross-validation cannot hold out (printed under ``workbench invert stations --cv``).
HELD_OUT_CAVEAT = ("lucey2000's constants (and the prior mean of gp_lucey_prior or --prior lucey2000) were fitted by "
                   "Lucey et al. (2000) to Clementine stations like these, so on them those rows are not fully held "
                   "out; every GP variant's angle features also use Lucey's published origins")


def cross_validate(df: pd.DataFrame, by: str = "station",
                   methods: dict[str, Callable[[], object]] | None = None,
                   gp_variants: tuple[str, ...] = ("gp", "gp_lucey_prior")) -> pd.DataFrame:
    """Leave-one-group-out RMSE (wt%) of FeO and TiO2 for each method, plus 68/95% interval coverage.

    ``by="station"`` leaves out one sampling station at a time (the 36-station benchmark);
    ``by="mission"`` leaves out a whole landing site (all Apollo 17 stations at once), a much harder
    extrapolation test. Methods: ``lucey2000`` (published constants; note they were calibrated on these
    very stations, so they are not held out), ``lucey_refit`` (origin and coefficients refitted in
    each fold), ``gp`` (the station model) and ``gp_lucey_prior`` (GP around the Lucey 2000 mean, whose
    published constants make it, like ``lucey2000``, not fully held out on the Clementine stations; every
    GP variant's angle features also use Lucey's published origins, see :data:`HELD_OUT_CAVEAT`);
    extra ``methods`` map a name to a factory of objects with ``fit``/``predict`` like
    :class:`StationInverter`; ``gp_variants`` selects which built-in GP variants run.
    """
    df = read_stations(df, require_targets=True).reset_index(drop=True)
    Y = df[list(TARGETS.values())].to_numpy(float)
    X = df[BANDS].to_numpy(float)
    g = _groups(df, by)
    builtin = {"gp": lambda: StationInverter(), "gp_lucey_prior": lambda: StationInverter(prior=lucey_prior)}
    unknown = sorted(set(gp_variants) - set(builtin))
    if unknown:
        raise InputError(f"unknown GP variant(s) {unknown}; choose from {sorted(builtin)} "
                         "(or pass your own under methods=)")
    factories: dict[str, Callable[[], object]] = {
        **{k: v for k, v in builtin.items() if k in gp_variants}, **(methods or {}),
    }
    preds = {k: np.full_like(Y, np.nan) for k in ["lucey2000", "lucey_refit", *factories]}
    stds = {k: np.full_like(Y, np.nan) for k in factories}
    preds["lucey2000"] = lucey_prior(X)
    for grp in pd.unique(g):
        te = g == grp
        tr = ~te
        ff = fit_lucey_feo(X[tr, 1], X[tr, 3], Y[tr, 0])
        ft = fit_lucey_tio2(X[tr, 0], X[tr, 1], Y[tr, 1])
        preds["lucey_refit"][te] = np.c_[ff.predict(X[te, 1], X[te, 3]), ft.predict(X[te, 0], X[te, 1])]
        for name, make in factories.items():
            p = make().fit(df[tr]).predict(df[te])
            preds[name][te] = p[["FeO_pred", "TiO2_pred"]].to_numpy(float)
            stds[name][te] = p[["FeO_std", "TiO2_std"]].to_numpy(float)
    rows = []
    for name, P in preds.items():
        row = {"method": name, "cv": f"leave-one-{by}-out", "n": len(df)}
        for j, ox in enumerate(TARGETS):
            scored = np.isfinite(Y[:, j]) & np.isfinite(P[:, j])  # a blank oxide or band is not scored
            err, y = P[scored, j] - Y[scored, j], Y[scored, j]
            row[f"{ox}_n"] = int(scored.sum())
            row[f"{ox}_rmse"] = float(np.sqrt(np.mean(err**2)))
            row[f"{ox}_r2"] = float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2))
            if name in stds:
                z = np.abs(err) / stds[name][scored, j]
                row[f"{ox}_cov68"] = float(np.mean(z <= 1.0))
                row[f"{ox}_cov95"] = float(np.mean(z <= 1.96))
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")
