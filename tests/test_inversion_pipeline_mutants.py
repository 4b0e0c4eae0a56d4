"""Known-answer tests of the inversion pipeline's scoring and bookkeeping (mutation review of experiment.py,
stations.py, shift_calibration.py, advisor.py and bench.py): which pixels and rows each figure is computed on,
with what weights, thresholds and ratios. Tiny hand-built inputs and stand-ins for the networks: no training,
no data mirror, no network."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.geo import global_grid
from workbench.inversion import experiment as ex
from workbench.inversion import stations as st
from workbench.inversion.model import TARGETS, site_mask

ZQ95 = 1.959963984540054  # the central 95 % normal quantile, Φ⁻¹(0.975)


# --------------------------------------------------------------------------------------------------
# stations.py
# --------------------------------------------------------------------------------------------------
def _station_table(n: int = 12, seed: int = 0) -> pd.DataFrame:
    """Plausible soil spectra (a rising continuum, every band > 0) with placeholder oxides."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.06, 0.2, (n, 1)) * np.array([0.7, 1.0, 1.06, 1.08, 1.12]) * rng.uniform(0.97, 1.03, (n, 5))
    return pd.DataFrame(X, columns=st.BANDS).assign(FeO_wt_pct=5.0, TiO2_wt_pct=1.0)


def _affine_prior(X):
    """A prior mean that is an exact function of the bands: FeO = 10 + 20·R750, TiO2 = 2 + 5·R415, rounded to
    multiples of 1/1024 so that adding a few wt% to it and taking it off again is exact in floating point."""
    X = np.asarray(X, float)
    return np.round(np.c_[10 + 20 * X[:, 1], 2 + 5 * X[:, 0]] * 1024) / 1024


def test_a_station_prior_is_the_mean_the_gp_adds_its_fitted_residual_to():
    """Measured = prior + (3, 1) wt% on every training station: the residual the GP learns is the constant
    (3, 1), which a GP with normalised targets predicts exactly, so a new station gets prior + (3, 1)
    (fitting measured + prior would predict 2·prior + 3 + prior; forgetting the prior would give 3 and 1).
    FeO's residual is fitted perfectly (every leave-one-out residual 0), so its std factor is exactly 1."""
    train = _station_table(12)
    X = train[st.BANDS].to_numpy()
    train = train.assign(FeO_wt_pct=_affine_prior(X)[:, 0] + 3.0, TiO2_wt_pct=_affine_prior(X)[:, 1] + 1.0)
    model = st.StationInverter(prior=_affine_prior).fit(train)
    new = _station_table(4, seed=1)[st.BANDS]
    out = model.predict(new)
    want = _affine_prior(new.to_numpy())
    np.testing.assert_allclose(out["FeO_pred"], want[:, 0] + 3.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(out["TiO2_pred"], want[:, 1] + 1.0, rtol=0, atol=1e-9)
    assert model.std_scale == (1.0, 1.0)


def test_each_oxide_gets_its_own_leave_one_out_std_factor():
    """FeO = the prior exactly (leave-one-out residuals 0: factor exactly 1); TiO2 = the prior plus one 30 wt%
    outlier among 12 stations, which its own leave-one-out intervals cannot hold (factor > 1). Sharing FeO's
    factor would leave TiO2's intervals at 1."""
    train = _station_table(12)
    P = _affine_prior(train[st.BANDS].to_numpy())
    ti = P[:, 1].copy()
    ti[5] += 30.0
    model = st.StationInverter(prior=_affine_prior).fit(train.assign(FeO_wt_pct=P[:, 0], TiO2_wt_pct=ti))
    assert model.std_scale[0] == 1.0
    assert model.std_scale[1] > 1.2
    assert model.std_scale[1] == pytest.approx(st.loo_std_scale(model.models[1]), rel=1e-12)


def test_a_prior_may_be_nan_for_a_station_with_a_zero_band():
    """A zero band is no measurement: the prior need not be finite there (the station is skipped, NaN), only
    for stations whose bands are all measured."""
    def prior(X):
        X = np.asarray(X, float)
        return np.where((X > 0).all(1)[:, None], _affine_prior(X), np.nan)

    train = _station_table(12)
    P = _affine_prior(train[st.BANDS].to_numpy())
    model = st.StationInverter(prior=prior).fit(train.assign(FeO_wt_pct=P[:, 0], TiO2_wt_pct=P[:, 1]))
    new = train[st.BANDS].head(3).copy()
    new.loc[0, "R900"] = 0.0
    out = model.predict(new)
    assert np.isnan(out.loc[0, "FeO_pred"]) and np.isfinite(out.loc[1:, "FeO_pred"]).all()


def test_a_feature_constant_over_the_training_stations_is_not_divided_by_zero():
    """R900 = R750 on every station: the R900/R750 feature is exactly 1 everywhere, has zero spread, is left
    unscaled (std taken as 1) and the model still fits and predicts finite values (no 0/0)."""
    train = _station_table(12)
    train["R900"] = train["R750"]
    P = _affine_prior(train[st.BANDS].to_numpy())
    out = st.StationInverter().fit(train.assign(FeO_wt_pct=P[:, 0], TiO2_wt_pct=P[:, 1])).predict(train.head(3))
    assert np.isfinite(out[["FeO_pred", "TiO2_pred", "FeO_std", "TiO2_std"]].to_numpy(float)).all()


def test_fit_needs_five_complete_stations():
    """TRAIN needs at least 5 complete stations: 4 are refused."""
    with pytest.raises(InputError, match="4 complete rows; at least 5"):
        st.StationInverter().fit(_station_table(4))


class _FixedCV:
    """A cross-validation method whose predictions are columns of the held-out rows."""

    def fit(self, df):
        return self

    def predict(self, df):
        return df.assign(FeO_pred=df["p_fe"], TiO2_pred=df["p_ti"], FeO_std=1.0, TiO2_std=1.0)


def _cv_table() -> pd.DataFrame:
    """Eight stations at four missions (two each)."""
    t = _station_table(8)
    return t.assign(site=[f"Apollo {m} - {s}" for m in (12, 14, 15, 16) for s in ("A", "B")])


def test_cross_validated_r2_is_over_the_scored_stations_only():
    """TiO2 y = 1..8 and predictions y + (0.5, 0, …, 0, NaN): the last station is not scored, so R² is over
    y = 1..7, mean 4, Σ(y − ȳ)² = 28, Σe² = 0.25: R² = 1 − 0.25/28 (centring on the mean 4.5 of all eight
    stations would give Σ(y − 4.5)² = 29.75); RMSE = √(0.25/7)."""
    y = np.arange(1.0, 9.0)
    p = y + [0.5, 0, 0, 0, 0, 0, 0, np.nan]
    t = _cv_table().assign(TiO2_wt_pct=y, p_ti=p, FeO_wt_pct=y, p_fe=y)
    r = st.cross_validate(t, by="station", methods={"fixed": _FixedCV}, gp_variants=()).loc["fixed"]
    assert r["TiO2_n"] == 7
    assert r["TiO2_r2"] == pytest.approx(1 - 0.25 / 28, rel=1e-12)
    assert r["TiO2_rmse"] == pytest.approx(np.sqrt(0.25 / 7), rel=1e-12)


def test_refitted_lucey_is_trained_without_the_held_out_mission_and_reads_its_bands(monkeypatch):
    """Stand-ins for the Lucey refits record the oxides they are fitted on and predict FeO = 10·R950 (from
    (R750, R950)) and TiO2 = 10·R415 (from (R415, R750)); the measured oxides are exactly those, so the
    refit's RMSE is 0 for both. Leaving out one mission (two stations) fits on the other six, which never
    include a held-out station's oxide."""
    fits = {"FeO": [], "TiO2": []}

    def fake(name, col):
        def fit(a, b, y):
            fits[name].append(np.asarray(y, float).copy())
            return types.SimpleNamespace(predict=lambda a, b: 10.0 * np.asarray([a, b][col], float))
        return fit

    monkeypatch.setattr(st, "fit_lucey_feo", fake("FeO", 1))
    monkeypatch.setattr(st, "fit_lucey_tio2", fake("TiO2", 0))
    t = _cv_table()
    t = t.assign(FeO_wt_pct=10 * t["R950"] + 0.0, TiO2_wt_pct=10 * t["R415"] + 0.0)
    cv = st.cross_validate(t, by="mission", gp_variants=())
    assert cv.loc["lucey_refit", "FeO_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert cv.loc["lucey_refit", "TiO2_rmse"] == pytest.approx(0.0, abs=1e-12)
    for ox, col in (("FeO", "FeO_wt_pct"), ("TiO2", "TiO2_wt_pct")):
        assert [len(y) for y in fits[ox]] == [6, 6, 6, 6]
        for k, y in enumerate(fits[ox]):
            held = t[col].to_numpy()[2 * k : 2 * k + 2]
            assert not np.isin(held, y).any()


# --------------------------------------------------------------------------------------------------
# experiment.py: metrics, pixels, the far-side experiment, the advisor experiment and validation
# --------------------------------------------------------------------------------------------------
def _grid(values, lat=(1.5, 0.5), lon=(0.5, 1.5, 2.5)):
    return xr.DataArray(np.asarray(values, float), dims=("lat", "lon"), coords={"lat": list(lat), "lon": list(lon)})


def test_metrics_leave_out_pixels_without_truth_and_score_every_target_present():
    """Truth (1, 2, 3 / 4, NaN, 6), prediction truth + 2 everywhere (5 + 2 where the truth is missing): the
    missing-truth pixel is left out, RMSE = 2 over the other five. A prediction with TiO2 but no FeO is
    scored for TiO2 (a target missing from the prediction is skipped, not the end of the list)."""
    y = _grid([[1, 2, 3], [4, np.nan, 6]])
    truth = xr.Dataset({"FeO": y, "TiO2": y})
    pred = xr.Dataset({"FeO": y.fillna(5.0) + 2.0})
    mask = _grid(np.ones((2, 3))).astype(bool)
    assert ex.metrics(pred, truth, mask, targets=("FeO",))["FeO"]["rmse"] == 2.0
    only_ti = xr.Dataset({"TiO2": y.fillna(5.0) + 2.0})
    assert set(ex.metrics(only_ti, truth, mask, targets=("FeO", "TiO2"))) == {"TiO2"}


def test_training_pixels_have_finite_bands_and_truth():
    """Of six masked pixels one has a NaN band and another a NaN truth: four are drawn."""
    refl = xr.DataArray(np.full((2, 2, 3), 0.1), dims=("band", "lat", "lon"))
    refl[0, 0, 0] = np.nan
    truth = xr.Dataset({t: (("lat", "lon"), np.full((2, 3), 5.0)) for t in TARGETS})
    truth["MgO"][1, 2] = np.nan
    mask = xr.DataArray(np.ones((2, 3), bool), dims=("lat", "lon"))
    X, Y = ex._pixels(refl, truth, mask, None, np.random.default_rng(0))
    assert X.shape == (4, 2) and Y.shape == (4, len(TARGETS)) and np.isfinite(Y).all()


class _FakeSklearn:
    """Stands in for SklearnInverter: records what it is fitted on; predicts every target as band 0."""

    fitted: list = []

    def __init__(self, kind, seed=0, size=60):
        self.kind = kind

    def fit(self, X, Y, wl):
        _FakeSklearn.fitted.append((self.kind, np.asarray(X).copy()))
        return self

    def predict(self, X):
        return np.repeat(np.asarray(X, float)[:, :1], len(TARGETS), axis=1)


def _cube(values: float = 0.1, ppd: float = 1):
    lat, lon = global_grid(ppd)
    wl = [415.0, 750.0, 900.0, 950.0, 1000.0]
    return xr.DataArray(np.full((5, lat.size, lon.size), values), dims=("band", "lat", "lon"),
                        coords={"band": ["R415", "R750", "R900", "R950", "R1000"], "wavelength": ("band", wl),
                                "lat": lat, "lon": lon})


def _truth_like(refl):
    """Truth varying with latitude (so that R² is defined): 5 + lat/100 for every target."""
    base = 5.0 + refl["lat"] / 100.0 + 0.0 * refl["lon"]
    return xr.Dataset({t: base.transpose("lat", "lon") for t in TARGETS})


def test_gbm_library_draws_the_library_share_of_its_pixels_from_the_library(monkeypatch):
    """n_pixels = 10 and library_share = 0.3: round(3.0) = 3 library pixels (reflectance 0.5) and 7 map
    pixels (0.1)."""
    monkeypatch.setattr(ex.bl, "SklearnInverter", _FakeSklearn)
    _FakeSklearn.fitted = []
    refl = _cube(0.1)
    truth = _truth_like(refl)
    lib = (_cube(0.5).isel(lat=slice(0, 4), lon=slice(0, 4)), truth.isel(lat=slice(0, 4), lon=slice(0, 4)))
    mask = xr.ones_like(truth["FeO"], dtype=bool)
    ex.fit_gbm_library(refl, truth, mask, lib, n_pixels=10, library_share=0.3)
    (kind, X), = _FakeSklearn.fitted
    assert kind == "gbm" and X.shape == (10, 5)
    assert (np.isclose(X[:, 0], 0.5).sum(), np.isclose(X[:, 0], 0.1).sum()) == (3, 7)


def _errors(truth, near, far_test, ring):
    """A prediction of ``truth`` erring by ``near`` on the near side, ``far_test`` on the far side outside
    100 km of Chang'e-6 and ``ring`` within it."""
    lon = truth["lon"] + 0.0 * truth["lat"]
    in_ring = site_mask(truth, *ex.CHANGE6, 100.0)
    err = xr.where(abs(lon) <= 90, near, xr.where(in_ring, ring, far_test)).transpose("lat", "lon")
    return err


class _FakeCNN:
    """A 'model' whose prediction is the truth plus a fixed error map, with a fixed std."""

    def __init__(self, truth, err, std, meta=None):
        self.truth, self.err, self.std, self.meta = truth, err, std, meta or {}

    def predict(self, refl, **kw):
        out = self.truth + self.err
        for t in TARGETS:
            out[f"{t}_std"] = xr.full_like(self.truth[t], self.std)
        return out


def test_far_side_experiment_scores_every_method_on_the_far_side_test_pixels(monkeypatch):
    """A 1 px/deg Moon with stand-ins for every model: the pre-trained CNN errs by 1 wt% on the far-side test
    pixels, by 50 within 100 km of Chang'e-6 (the site and its ring) and by 7 on the near side; the fine-tuned
    one by 2, 50 and 7. Scored on the test pixels only: RMSE 1 and 2. With std 1.5 the pre-trained z = 0.67
    (68 % and 95 % intervals hold every pixel), the fine-tuned z = 1.33 (95 % only). The gbm_library fit gets
    the library share w/(1 + w) = 3/4 of its pixels for library weight 3, and the scikit-learn predictions are
    laid back on the (lat, lon) grid pixel by pixel."""
    refl = _cube(0.1)
    pattern = 0.05 + 0.1 * ((refl["lat"] + 90) / 180) + 0.05 * ((refl["lon"] + 180) / 360)  # a map to lay back
    refl[0] = pattern.transpose("lat", "lon").values
    truth = _truth_like(refl)
    recipe = {"seed": 7, "instrument": "clementine_uvvis", "snr": 100.0, "observe_seed": 8, "weight": 3.0}
    pre = _FakeCNN(truth, _errors(truth, 7.0, 1.0, 50.0), 1.5, meta={"fit": {"library": recipe}})
    tuned = _FakeCNN(truth, _errors(truth, 7.0, 2.0, 50.0), 1.5)
    lib = (_cube(0.5).isel(lat=slice(0, 8), lon=slice(0, 8)), truth.isel(lat=slice(0, 8), lon=slice(0, 8)))
    shares = []
    real_gbm_library = ex.fit_gbm_library

    def gbm_library(*a, **kw):
        shares.append(kw["library_share"])
        return real_gbm_library(*a, **kw)

    monkeypatch.setattr(ex, "observed_moon", lambda *a, **k: (refl, truth))
    monkeypatch.setattr(ex, "library_data", lambda recipe: lib)
    monkeypatch.setattr(ex, "fit_gbm_library", gbm_library)
    monkeypatch.setattr(ex, "fine_tuned", lambda model, *a, **k: tuned)
    monkeypatch.setattr(ex.bl, "SklearnInverter", _FakeSklearn)
    exp = ex.far_side_experiment(ppd=1, pretrained=pre, methods=("gbm",), sklearn_pixels=40)
    assert shares == [0.75]
    rmse = ex.rmse_table(exp)
    assert rmse["resnet_pretrained"] == {t: 1.0 for t in TARGETS}
    assert rmse["resnet_finetuned"] == {t: 2.0 for t in TARGETS}
    assert exp.coverage["resnet_pretrained"]["FeO"] == {"cov68": 1.0, "cov95": 1.0}
    assert exp.coverage["resnet_finetuned"]["FeO"] == {"cov68": 0.0, "cov95": 1.0}
    np.testing.assert_array_equal(exp.predictions["gbm"]["FeO"].values, refl[0].values)


def _advisor_world():
    """A 1 px/deg Moon, its Chang'e-6 split and Korolev's (lat, lon)."""
    refl = _cube(0.1)
    truth = _truth_like(refl)
    masks = ex.make_split(truth, ex.CHANGE6)
    from workbench.inversion.advisor import CANDIDATES

    kor = CANDIDATES["Korolev"]
    return refl, truth, masks, kor


def test_advisor_experiment_fine_tunes_at_the_first_far_side_candidate_and_scores_outside_both_sites(monkeypatch):
    """The advisor ranks a near-side site first, then Korolev, then SPA centre: the experiment fine-tunes at
    Korolev (the first far-side one) on Korolev's site pixels, and scores on the experiment's test pixels minus
    Korolev's 100 km ring, i.e. the far side outside 100 km of Chang'e-6 and of Korolev. The stand-in
    prediction errs by 1 there and by 50 within 100 km of either site: held-out RMSE 1. Its std 0.6 gives
    z = 1.67: outside the 68 % intervals, inside the 95 % ones (interval_coverage_95 = 1)."""
    from workbench.inversion import advisor

    refl, truth, masks, kor = _advisor_world()
    rank = pd.DataFrame({"site": ["Mare Crisium", "Korolev", "SPA centre"], "lat": [17.0, kor[0], -53.0],
                         "lon": [59.1, kor[1], -169.0], "score": [3.0, 2.0, 1.0]})
    monkeypatch.setattr(advisor, "site_advisor", lambda pred, refl, target="FeO": rank)
    near_kor = site_mask(truth, *kor, 100.0)
    near_ce6 = site_mask(truth, *ex.CHANGE6, 100.0)
    err = xr.where(near_kor | near_ce6, 50.0, 1.0)
    seen = []

    def refit(exp, site_px, ft_mode, ft_steps, seed):
        seen.append(site_px)
        return {"resnet_finetuned": _FakeCNN(truth, err, 0.6).predict(refl)}

    monkeypatch.setattr(ex, "_refit_predictions", refit)
    exp = types.SimpleNamespace(models={"resnet_pretrained": _FakeCNN(truth, 0.0, 1.0)}, refl=refl, truth=truth,
                                masks=masks)
    r = ex.advisor_site_experiment(exp, ft_steps=1)
    assert r["site"] == "Korolev" and (r["lat"], r["lon"]) == kor
    far = (abs(truth["lon"] + 0 * truth["lat"]) > 90).transpose("lat", "lon")
    want_site = site_mask(truth, *kor, 60.0) & far
    np.testing.assert_array_equal(seen[0].transpose("lat", "lon").values, want_site.values)
    assert r["site_pixels"] == int(want_site.sum()) > 0
    assert r["test_pixels"] == int((far & ~near_kor & ~near_ce6).sum())
    assert r["heldout_rmse"]["resnet_finetuned"] == {t: 1.0 for t in TARGETS}
    assert r["interval_coverage_95"] == 1.0


def test_finetune_validation_scores_the_far_side_test_pixels_and_replays_what_each_variant_names(monkeypatch):
    """On a stand-in validation Moon the pre-trained model errs by 1 on the far-side test pixels and by 50
    within 100 km of the site; the variant's fine-tune by 2 and 50: RMSE 1 and 2 (scoring the site would give
    50). A variant replaying ('library',) replays only the library source."""
    refl = _cube(0.1)
    truth = _truth_like(refl)
    sources = {"near": ("near-source",), "library": ("library-source",)}
    replays = []

    def tune(model, refl, truth, site, **kw):
        replays.append(kw["replay"])
        return _FakeCNN(truth, _errors(truth, 7.0, 2.0, 50.0), 1.0)

    monkeypatch.setattr(ex, "observed_moon", lambda *a, **k: (refl, truth))
    monkeypatch.setattr(ex, "pretraining_sources", lambda *a, **k: sources)
    monkeypatch.setattr(ex, "fine_tuned", tune)
    pre = _FakeCNN(truth, _errors(truth, 7.0, 1.0, 50.0), 1.0)
    out = ex.finetune_validation(pre, sites=("Chang'e-6",), variants={"v": dict(mode="lora", replay=("library",))})
    assert out["Chang'e-6"]["pretrained"] == {t: 1.0 for t in TARGETS}
    assert out["Chang'e-6"]["v"] == {t: 2.0 for t in TARGETS}
    assert replays == [[("library-source",)]]


def test_rmse_tables_keep_only_finite_figures():
    """A method whose TiO2 cannot be scored (all NaN) reports FeO only, in the experiment's table and in the
    area-weighted benchmark figures."""
    from workbench.inversion.bench import area_weighted_figures

    table = pd.DataFrame({("FeO", "rmse"): [1.23456], ("TiO2", "rmse"): [np.nan]}, index=["m"])
    assert ex.rmse_table(types.SimpleNamespace(table=table)) == {"m": {"FeO": 1.2346}}
    y = _grid([[1, 2, 3], [4, 5, 6]], lat=(45.0, 15.0))
    truth = xr.Dataset({"FeO": y, "TiO2": y})
    tuned = xr.Dataset({"FeO": y + 1, "FeO_std": y * 0 + 2, "TiO2": y * np.nan, "TiO2_std": y * 0 + 1})
    exp = types.SimpleNamespace(truth=truth, predictions={"resnet_finetuned": tuned},
                                masks={"test": _grid(np.ones((2, 3)), lat=(45.0, 15.0)).astype(bool)})
    with np.errstate(invalid="ignore", divide="ignore"):  # TiO2: means over no pixel
        fig = area_weighted_figures(exp)
    assert fig["heldout_rmse_area_weighted"] == {"resnet_finetuned": {"FeO": 1.0}}


# --------------------------------------------------------------------------------------------------
# shift_calibration.py
# --------------------------------------------------------------------------------------------------
def test_extrapolation_factor_is_the_smallest_that_reaches_the_level():
    """|z| = 1, 2, …, 20 in one case: a factor k covers #{z ≤ 1.96·k}/20, which first reaches 0.95 (19 of 20)
    at k = 19/1.96 (asking for more than 0.95 would need all 20: k = 20/1.96)."""
    from workbench.inversion.shift_calibration import extrapolation_scale

    cases = [{"z": {"FeO": np.arange(1.0, 21.0)}}]
    k = extrapolation_scale(cases, targets=["FeO"])[0]
    assert k == pytest.approx(19 / ZQ95, rel=1e-9)


def test_case_coverage_counts_the_interval_edge_as_covered():
    """|z| exactly on the 95 % edge (1.96 × 2 with factor 2) lies inside the closed interval, as in
    experiment.coverage: coverage 1, not 0."""
    from workbench.inversion.model import interval_z
    from workbench.inversion.shift_calibration import case_coverage

    edge = np.array([interval_z(0.95) * 2.0])
    assert case_coverage([{"z": {"FeO": edge}}], [2.0], targets=["FeO"]).tolist() == [[1.0]]


def _far_side_tune(std: float, first_test_std: float):
    """A fine-tune stand-in erring by −3 wt% on the far-side test pixels and +50 elsewhere, with ``std``
    everywhere except ``first_test_std`` on the first test pixel's FeO: (refl, truth, tuned, pred, test)."""
    refl = _cube(0.1)
    truth = _truth_like(refl)
    tuned = _FakeCNN(truth, _errors(truth, 50.0, -3.0, 50.0), std)
    pred = tuned.predict(refl)
    test = ex.make_split(truth, ex.CHANGE6)["test"]
    i, j = np.argwhere(test.values)[0]
    pred["FeO_std"][i, j] = first_test_std
    tuned.predict = lambda refl, **kw: pred
    return refl, truth, tuned, pred, test


def test_far_side_z_is_the_standardised_test_pixel_error_without_the_discrepancy_term(monkeypatch):
    """A fine-tune stand-in errs by −3 wt% on the far-side test pixels (std 1.5: |z| = 2), by +50 within
    100 km of Chang'e-6 and on the near side, and has a NaN std on one test pixel: every |z| kept is 2, one per
    test pixel with a finite std; the fine-tune is asked for no discrepancy term and replays the model's own
    pre-training sources."""
    from workbench.inversion import shift_calibration as sc

    refl, truth, tuned, pred, test = _far_side_tune(1.5, np.nan)
    calls = []

    def fine_tuned(model, refl, truth, site, **kw):
        calls.append(kw)
        return tuned

    monkeypatch.setattr(sc, "pretraining_sources", lambda *a, **k: {"near": "N", "library": "L"})
    monkeypatch.setattr(sc, "observed_moon", lambda *a, **k: (refl, truth))
    monkeypatch.setattr(sc, "fine_tuned", fine_tuned)
    model = types.SimpleNamespace(targets=("FeO", "TiO2"))
    cases = sc.far_side_z(model, moon_seeds=(1,), sites=("Chang'e-6",), instrument="clementine_uvvis", ppd=1)
    n = int(test.sum())
    assert [(c["moon"], c["site"]) for c in cases] == [(1, "Chang'e-6")]
    z = cases[0]["z"]
    assert z["FeO"].size == n - 1 and z["TiO2"].size == n
    np.testing.assert_allclose(z["FeO"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(z["TiO2"], 2.0, rtol=1e-6)
    assert calls[0]["discrepancy"] == "none" and calls[0]["replay"] == ["N", "L"]


def test_calibration_needs_two_different_moons():
    from workbench.inversion.shift_calibration import _check_moons

    with pytest.raises(InputError, match="at least two different validation Moons"):
        _check_moons((1, 1))
    assert _check_moons([1, 3]) == (1, 3)


def test_calibrate_weights_reports_the_coverage_without_and_with_the_factor(tmp_path, monkeypatch):
    """Two Moons, |z| = (1, 2, 3, 4) per target in each: the factor is 4/1.96 (all four needed for 95 %,
    2.0408); without it the 95 % intervals (|z| ≤ 1.96) hold 1 of 4 = 0.25 in every case, with it (each Moon
    scored with the other's factor, the same here) all of them."""
    from workbench.inversion import shift_calibration as sc

    saved = {}
    model = types.SimpleNamespace(targets=("FeO", "TiO2"), meta={},
                                  save=lambda path, record=None: saved.update(record=record))
    monkeypatch.setattr(sc.OxideInverter, "load", staticmethod(lambda path: model))
    z = np.array([1.0, 2.0, 3.0, 4.0])
    cases = [{"moon": m, "site": "Chang'e-6", "z": {"FeO": z, "TiO2": z}} for m in (1, 3)]
    monkeypatch.setattr(sc, "far_side_z", lambda *a, **k: cases)
    entry = sc.calibrate_weights(tmp_path / "w.pt", moon_seeds=(1, 3), instrument="clementine_uvvis")
    assert entry["scale"] == [round(4 / ZQ95, 4)] * 2 and entry["cases"] == 2
    assert entry["without_factor"]["mean_coverage"] == 0.25
    assert entry["leave_one_moon_out"]["mean_coverage"] == 1.0
    assert model.meta["extrapolation"] is entry


# --------------------------------------------------------------------------------------------------
# advisor.py
# --------------------------------------------------------------------------------------------------
def _advisor_grid():
    """Two rows (lat 1, 0) × four columns (lon 0, 10, 20, 30): cells of 1° in latitude and 10° in longitude;
    two bands, uniform-ish reflectance, unit uncertainty."""
    coords = {"lat": [1.0, 0.0], "lon": [0.0, 10.0, 20.0, 30.0]}
    vals = 0.1 + 0.01 * np.arange(16.0).reshape(2, 2, 4)
    refl = xr.DataArray(vals, dims=("band", "lat", "lon"), coords={"band": ["b1", "b2"], **coords})
    pred = xr.Dataset({"FeO_epistemic_std": (("lat", "lon"), np.ones((2, 4)))}, coords=coords)
    return pred, refl


def test_advisor_cells_are_measured_per_axis_and_a_candidate_beyond_one_cell_is_outside():
    """Latitude cells of 1°, longitude cells of 10°: (0, 5) lies 5° (half a longitude cell) from its nearest
    pixel and is inside; (2.5, 0) lies 1.5 latitude cells beyond the top row and (0, 42) 1.2 longitude cells
    beyond the last column: both outside."""
    from workbench.inversion.advisor import site_advisor

    pred, refl = _advisor_grid()
    got = site_advisor(pred, refl, candidates={"in": (0.0, 5.0), "north": (2.5, 0.0), "east": (0.0, 42.0)})
    assert list(got.site) == ["in"]
    assert got.attrs["outside"] == ["north", "east"]


def test_advisor_candidate_on_a_pixel_missing_one_band_is_not_scored():
    from workbench.inversion.advisor import site_advisor

    pred, refl = _advisor_grid()
    refl = refl.copy()
    refl[1, 1, 0] = np.nan  # band b2 missing at (0, 0)
    got = site_advisor(pred, refl, candidates={"gap": (0.0, 0.0), "ok": (0.0, 30.0)})
    assert list(got.site) == ["ok"] and got.attrs["missing"] == ["gap"]


def test_advisor_leaves_out_candidates_within_exclude_km_of_a_sampled_site():
    """A sampled site 2.5° of latitude (75.8 km on the Moon) from 'near' and about 30° (910 km) from 'far':
    with exclude_km = 100 the first is left out (it would be kept with 50 km), the second kept."""
    from workbench.geo import great_circle_distance
    from workbench.inversion.advisor import site_advisor

    pred, refl = _advisor_grid()
    assert 75 < float(great_circle_distance(0.0, 0.0, 2.5, 0.0)) < 76
    got = site_advisor(pred, refl, candidates={"near": (0.0, 0.0), "far": (0.0, 30.0)},
                       sampled={"visited": (2.5, 0.0)}, exclude_km=100.0)
    assert list(got.site) == ["far"] and got.attrs["excluded"] == ["near"]


# --------------------------------------------------------------------------------------------------
# bench.py
# --------------------------------------------------------------------------------------------------
def test_benchmark_ratios_known_answers():
    """Pre-trained FeO 2.0, TiO2 1.0; fine-tuned 1.5, 0.8: gains 1 − 1.5/2 = 0.25 and 1 − 0.8/1 = 0.2.
    Lucey 2000 3.0 and 2.0: ratios 0.5 and 0.4. Best scikit-learn model per target (pls 2.5/1.6, gbm 3.0/0.9,
    gbm_library 1.0/1.2): FeO 1.0 (gbm_library), TiO2 0.9 (gbm): ratios 1.5 and 0.889."""
    from workbench.inversion.bench import _ratios

    table = {"resnet_pretrained": {"FeO": 2.0, "TiO2": 1.0}, "resnet_finetuned": {"FeO": 1.5, "TiO2": 0.8},
             "lucey2000": {"FeO": 3.0, "TiO2": 2.0}, "pls": {"FeO": 2.5, "TiO2": 1.6},
             "gbm": {"FeO": 3.0, "TiO2": 0.9}, "gbm_library": {"FeO": 1.0, "TiO2": 1.2}}
    assert _ratios(table) == {"finetune_feo_gain": 0.25, "finetune_gain_by_target": {"FeO": 0.25, "TiO2": 0.2},
                              "ratio_to_lucey2000": {"FeO": 0.5, "TiO2": 0.4},
                              "ratio_to_best_sklearn": {"FeO": 1.5, "TiO2": 0.889}}


def test_flop_utilization_of_exactly_one_needs_no_note():
    from workbench.inversion.bench import flop_utilization

    assert flop_utilization(100.0, 100.0) == {"flop_utilization": 1.0}


def test_mean_coverage_is_the_mean_over_targets():
    """cov95 of three targets 0.9, 0.92, 1.0: mean 0.94 (the median would be 0.92)."""
    from workbench.inversion.bench import _mean_coverage

    cov = {"FeO": {"cov95": 0.9}, "TiO2": {"cov95": 0.92}, "MgO": {"cov95": 1.0}}
    assert _mean_coverage(cov, "cov95") == 0.94


def test_upsample_repeats_each_pixel_on_the_finer_global_grid():
    """A 1 px/deg global cube upsampled ×2 lies on the 2 px/deg grid, each pixel a 2×2 block of its value."""
    from workbench.inversion.bench import _upsample

    refl = _cube(0.1)
    refl[0] = np.arange(refl.sizes["lat"] * refl.sizes["lon"], dtype=float).reshape(refl.shape[1:])
    up = _upsample(refl, 2)
    lat, lon = global_grid(2)
    np.testing.assert_array_equal(up["lat"].values, lat)
    np.testing.assert_array_equal(up["lon"].values, lon)
    np.testing.assert_array_equal(up.values[0, 2 * 7 : 2 * 7 + 2, 2 * 11 : 2 * 11 + 2], refl.values[0, 7, 11])
    np.testing.assert_array_equal(up.values[:, ::2, ::2], refl.values)


def test_bias_only_gain_ceiling_removes_the_offset_in_quadrature():
    """RMSE 5 with mean error −3 leaves σ = 4 once the offset is removed: a cut of 0.2; no offset, no cut."""
    from workbench.inversion.bench import bias_only_gain_ceiling

    assert bias_only_gain_ceiling({"FeO": 5.0, "TiO2": 2.0}, {"FeO": -3.0, "TiO2": 0.0}) == {"FeO": 0.2, "TiO2": 0.0}


def test_a_zero_std_is_a_zero_width_interval_in_far_side_z_and_coverage(monkeypatch):
    """abs_z: |2 − 1| / 0.5 = 2; a zero std misses (∞) unless the prediction is exact (0); NaN stays NaN.
    far_side_z keeps the ∞ (the old code dropped it, so a zero-std miss raised the coverage), and coverage
    counts it as a miss: FeO on test pixels with error 3, std 2 (|z| = 1.5) except one pixel of std 0 →
    cov95 = (n−1)/n."""
    from workbench.inversion import shift_calibration as sc

    got = ex.abs_z(np.array([2.0, 2.0, 1.0, np.nan]), np.array([1.0, 1.0, 1.0, 1.0]), np.array([0.5, 0.0, 0.0, 1.0]))
    assert got[:3].tolist() == [2.0, np.inf, 0.0] and np.isnan(got[3])

    refl, truth, tuned, pred, test = _far_side_tune(2.0, 0.0)
    monkeypatch.setattr(sc, "pretraining_sources", lambda *a, **k: {})
    monkeypatch.setattr(sc, "observed_moon", lambda *a, **k: (refl, truth))
    monkeypatch.setattr(sc, "fine_tuned", lambda *a, **k: tuned)
    model = types.SimpleNamespace(targets=("FeO",))
    z = sc.far_side_z(model, moon_seeds=(1,), sites=("Chang'e-6",), instrument="clementine_uvvis", ppd=1)[0]["z"]
    n = int(test.sum())
    assert z["FeO"].size == n and np.isinf(z["FeO"]).sum() == 1
    assert sc.case_coverage([{"z": z}], [1.0], targets=["FeO"])[0, 0] == pytest.approx((n - 1) / n)
    cov = ex.coverage(pred, truth, test, targets=["FeO"])["FeO"]
    assert cov["cov95"] == pytest.approx((n - 1) / n) and cov["cov68"] == pytest.approx(0.0)


def test_map_difference_is_rms_and_max_over_pixels_finite_in_both():
    """a − b = (3, −4, NaN-in-b, NaN-in-a): RMS √((9 + 16)/2) = 3.5355, max |·| 4; a target with no pixel
    finite in both gives None (not NaN, which strict JSON refuses)."""
    from workbench.inversion.bench import map_difference

    a = {"FeO": np.array([4.0, 1.0, 2.0, np.nan]), "TiO2": np.array([np.nan, 1.0])}
    b = {"FeO": np.array([1.0, 5.0, np.nan, 3.0]), "TiO2": np.array([1.0, np.nan])}
    got = map_difference(a, b)
    assert got == {"FeO": {"rms": 3.5355, "max_abs": 4.0}, "TiO2": {"rms": None, "max_abs": None}}


def test_advisor_experiment_reads_candidate_longitudes_on_0_to_360(monkeypatch):
    """A candidate at 300 °E is at −60°, on the near side: the experiment passes over it (|300| > 90 once made
    it a far-side site) and fine-tunes at Korolev, given as 360 + its longitude."""
    from workbench.inversion import advisor

    refl, truth, masks, kor = _advisor_world()
    rank = pd.DataFrame({"site": ["Near 300E", "Korolev"], "lat": [10.0, kor[0]], "lon": [300.0, 360.0 + kor[1]],
                         "score": [3.0, 2.0]})
    monkeypatch.setattr(advisor, "site_advisor", lambda pred, refl, target="FeO": rank)
    monkeypatch.setattr(ex, "_refit_predictions", lambda exp, *a: {"resnet_finetuned": _FakeCNN(truth, 1.0, 1.0)
                                                                   .predict(refl)})
    exp = types.SimpleNamespace(models={"resnet_pretrained": _FakeCNN(truth, 0.0, 1.0)}, refl=refl, truth=truth,
                                masks=masks)
    r = ex.advisor_site_experiment(exp, ft_steps=1)
    assert r["site"] == "Korolev" and r["ranking"] == ["Korolev"] and r["site_pixels"] > 0
