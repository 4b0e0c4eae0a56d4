"""Known-answer tests of the inversion package's scoring arithmetic: station features and prior, the station
cross-validation's scores and groups, the site advisor's score, far-side interval coverage, the shift
calibration's coverage summary, the far-side split's calibration stripes and the label ceiling's two halves
(tiny hand-built inputs, no network training, no data mirror)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.inversion import baselines as bl
from workbench.inversion import stations as st
from workbench.inversion.shift_calibration import coverage_summary


def test_station_features_use_the_documented_bands():
    """R = (R415, R750, R900, R950, R1000) = (0.08, 0.20, 0.30, 0.25, 0.40):
    log R750 = ln 0.2 = −1.6094, R900/R750 = 0.30/0.20 = 1.5, R1000/R750 = 0.40/0.20 = 2.0 (R950/R750 would be
    1.25); θFe from (R750, R950), θTi from (R415, R750), with Lucey's published origins."""
    X = np.array([[0.08, 0.20, 0.30, 0.25, 0.40]])
    F = st.station_features(X)
    assert F.shape == (1, 5)
    np.testing.assert_allclose(F[0, 2:], [np.log(0.2), 1.5, 2.0], rtol=1e-12)
    assert F[0, 0] == pytest.approx(float(bl.lucey_feo_angle(0.20, 0.25)), rel=1e-12)
    assert F[0, 1] == pytest.approx(float(bl.lucey_tio2_angle(0.08, 0.20)), rel=1e-12)


def test_lucey_prior_reads_r750_r950_for_feo_and_r415_r750_for_tio2():
    """Columns 1/3 (R750/R950) give FeO and 0/1 (R415/R750) give TiO2; R900 and R1000 are set far from R950
    so that reading the wrong column changes the answer."""
    X = np.array([[0.08, 0.12, 0.20, 0.13, 0.30], [0.10, 0.15, 0.05, 0.17, 0.01]])
    P = st.lucey_prior(X)
    np.testing.assert_allclose(P[:, 0], bl.lucey_feo(X[:, 1], X[:, 3]), rtol=1e-12)
    np.testing.assert_allclose(P[:, 1], bl.lucey_tio2(X[:, 0], X[:, 1]), rtol=1e-12)


class _Fixed:
    """A cross-validation method whose predictions are columns of the held-out rows (independent of the fit);
    it records how many rows each fold trained on."""

    trained: list[int] = []

    def fit(self, df):
        _Fixed.trained.append(len(df))
        return self

    def predict(self, df):
        return df.assign(FeO_pred=df["p_fe"], TiO2_pred=df["p_ti"], FeO_std=df["s_fe"], TiO2_std=df["s_ti"])


def _table():
    """Eight stations at four missions, two each; FeO 2..16, TiO2 1..8; fixed predictions and stds."""
    y_fe = np.array([2.0, 4, 6, 8, 10, 12, 14, 16])
    y_ti = np.array([1.0, 2, 3, 4, 5, 6, 7, 8])
    return pd.DataFrame({
        "site": [f"Apollo {m} - {s}" for m in (12, 14, 15, 16) for s in ("A", "B")],
        "R415": np.linspace(0.06, 0.10, 8), "R750": np.linspace(0.10, 0.18, 8),
        "R900": np.linspace(0.11, 0.19, 8), "R950": np.linspace(0.11, 0.20, 8), "R1000": np.linspace(0.12, 0.21, 8),
        "FeO_wt_pct": y_fe, "TiO2_wt_pct": y_ti,
        "p_fe": y_fe + [1, -1, 2, 0, -2, 0, 0, 0], "s_fe": [1, 1, 1.2, 1, 1, 1, 1, 1],
        "p_ti": y_ti + [0.5, 0, 0, 0, 0, 0, 0, -0.5], "s_ti": [0.25, 1, 1, 1, 1, 1, 1, 1],
    })


def test_cross_validate_scores_rmse_r2_coverage_and_mission_groups_by_hand():
    """FeO errors (1, −1, 2, 0, −2, 0, 0, 0): Σe² = 10, RMSE = √(10/8) = 1.1180; y = 2..16, mean 9,
    Σ(y − ȳ)² = 2·(49 + 25 + 9 + 1) = 168, R² = 1 − 10/168 = 0.94048. |z| = |e|/std = (1, 1, 1.667, 0, 2, 0, 0, 0):
    68 % holds z ≤ 1 (all but 1.667 and 2 → 6/8 = 0.75), 95 % holds z ≤ 1.96 (all but the 2 → 7/8 = 0.875;
    a 1.645 cut would give 0.75). TiO2 errors (0.5, 0, …, −0.5): RMSE = √(0.5/8) = 0.25, Σ(y − ȳ)² = 42,
    R² = 1 − 0.5/42 = 0.98810; z = (2, 0, …, 0.5): cov68 = 7/8, cov95 = 7/8.

    Groups: sites 'Apollo 12 - A', 'Apollo 12 - B', … (four missions, two stations each): leaving out one
    mission trains on the other 6 stations, 4 folds; grouping by the station part ('A'/'B') would train on 4,
    2 folds."""
    _Fixed.trained = []
    cv = st.cross_validate(_table(), by="mission", methods={"fixed": _Fixed}, gp_variants=())
    assert _Fixed.trained == [6, 6, 6, 6]
    r = cv.loc["fixed"]
    assert r["cv"] == "leave-one-mission-out"
    assert r["FeO_n"] == 8 and r["TiO2_n"] == 8
    assert r["FeO_rmse"] == pytest.approx(np.sqrt(10 / 8), rel=1e-12)
    assert r["FeO_r2"] == pytest.approx(1 - 10 / 168, rel=1e-12)
    assert (r["FeO_cov68"], r["FeO_cov95"]) == (0.75, 0.875)
    assert r["TiO2_rmse"] == pytest.approx(0.25, rel=1e-12)
    assert r["TiO2_r2"] == pytest.approx(1 - 0.5 / 42, rel=1e-12)
    assert (r["TiO2_cov68"], r["TiO2_cov95"]) == (0.875, 0.875)


def test_coverage_summary_known_answer():
    """cov (cases × targets) = [[0.90, 1.00], [0.95, 0.85]], level 0.95, band [0.90, 0.98]:
    mean 3.70/4 = 0.925; mean |cov − 0.95| = (0.05 + 0.05 + 0 + 0.10)/4 = 0.05 (the signed mean would be
    −0.025); in band 0.90 and 0.95 but not 1.00 or 0.85 → 0.5; by target (column means) 0.925 and 0.925
    (row means would be 0.95 and 0.90)."""
    cov = np.array([[0.90, 1.00], [0.95, 0.85]])
    s = coverage_summary(cov, targets=("FeO", "TiO2"), level=0.95)
    assert s == {"mean_coverage": 0.925, "mean_abs_deviation": 0.05, "share_in_band": 0.5,
                 "by_target": {"FeO": 0.925, "TiO2": 0.925}}


def _advisor_inputs():
    """One row of four equal-area pixels (lat 0, lon 0/10/20/30), two bands with log reflectance (0, 0, 1, 1) and
    (0, 1, 0, 1): standardised (mean 0.5, std 0.5) Z = (−1, −1, 1, 1) and (−1, 1, −1, 1)."""
    import xarray as xr

    logs = np.array([[[0.0, 0, 1, 1]], [[0.0, 1, 0, 1]]])
    coords = {"lat": [0.0], "lon": [0.0, 10.0, 20.0, 30.0]}
    refl = xr.DataArray(0.1 * np.exp(logs), dims=("band", "lat", "lon"), coords={"band": ["b1", "b2"], **coords})
    pred = xr.Dataset({"FeO_epistemic_std": (("lat", "lon"), [[1.0, 2, 3, 4]]),
                       "TiO2_epistemic_std": (("lat", "lon"), [[2.0, 2, 2, 2]])}, coords=coords)
    return pred, refl


def test_site_advisor_score_is_area_weighted_uncertainty_within_an_rms_spectral_radius():
    """Candidate at pixel 0, Z0 = (−1, −1): RMS distances over the 2 bands are 0, √(4/2) = 1.414, 1.414 and
    √(8/2) = 2, so radius 1.5 takes pixels 0–2 (a root-sum distance, 0, 2, 2, 2.83, would take pixel 0 only).
    Equal weights 1/4: similar area 75 %; FeO score = (1 + 2 + 3)/4 · 1000 = 1500. target='all' divides each
    std by its mean (2.5 and 2): e = (1.4, 1.8, 2.2, 2.6), score (1.4 + 1.8 + 2.2)/4 · 1000 = 1350 (unnormalised
    sums 3 + 4 + 5 would give 3000)."""
    from workbench.inversion.advisor import site_advisor

    pred, refl = _advisor_inputs()
    cand = {"here": (0.0, 0.0)}
    r = site_advisor(pred, refl, candidates=cand, target="FeO", radius=1.5).iloc[0]
    assert r["similar_area_pct"] == pytest.approx(75.0, rel=1e-9)
    assert r["score"] == pytest.approx(1500.0, rel=1e-9)
    assert r["epistemic_std_at_site"] == 1.0
    a = site_advisor(pred, refl, candidates=cand, target="all", radius=1.5).iloc[0]
    assert a["score"] == pytest.approx(1350.0, rel=1e-9)
    assert a["epistemic_std_at_site"] == pytest.approx(1.4, rel=1e-9)


def test_far_side_coverage_counts_68_and_95_percent_intervals_by_hand():
    """|error|/std over five pixels = (0.5, 1.0, 1.8, 2.5, err/0 = inf): the 68 % interval (z ≤ 1) holds 2 of 5 =
    0.4; the 95 % one (z ≤ 1.96) holds 3 of 5 = 0.6 (a 1.645 cut would give 0.4); the zero std is a miss, not
    missing (dropping it would give 3/4)."""
    import xarray as xr

    from workbench.inversion.experiment import coverage

    coords = {"lat": [0.0], "lon": [0.0, 10.0, 20.0, 30.0, 40.0]}
    da = lambda v: xr.DataArray([v], dims=("lat", "lon"), coords=coords)  # noqa: E731
    truth = xr.Dataset({"FeO": da([10.0, 10, 10, 10, 10])})
    pred = xr.Dataset({"FeO": da([10.5, 9.0, 11.8, 7.5, 10.1]), "FeO_std": da([1.0, 1, 1, 1, 0])})
    c = coverage(pred, truth, da([True] * 5), targets=("FeO",))["FeO"]
    assert c == {"cov68": pytest.approx(0.4), "cov95": pytest.approx(0.6)}


def test_row_stripes_and_the_calibration_lattice_of_make_split_by_hand():
    """``_row_stripes(·, 8)`` on 20 rows: row i lies in stripe i // 8 = (0 ×8, 1 ×8, 2 ×4) (i % 8 would restart
    at every 8th row; (i + 1) // 8 would put row 7 in stripe 1). ``make_split``'s calibration lattice is every 5th
    8-row stripe of the near side: on the 1-ppd grid (180 rows) the near-side pixels of rows 0–7, 40–47, 80–87,
    120–127 and 160–167, 40 rows (4-row stripes would give rows 0–3, 20–23, …; i % 8 rows 0, 5, 8, 13, …)."""
    import xarray as xr

    from workbench.geo import global_grid, hemisphere_masks
    from workbench.inversion import experiment as ex

    rows20 = xr.Dataset(coords={"lat": np.arange(20.0)})
    assert ex._row_stripes(rows20, 8).values.tolist() == [0] * 8 + [1] * 8 + [2] * 4
    lat, lon = global_grid(1)
    truth = xr.Dataset({"FeO": (("lat", "lon"), np.zeros((lat.size, lon.size)))}, coords={"lat": lat, "lon": lon})
    calib = ex.make_split(truth, ex.CHANGE6)["calib"].values
    near = hemisphere_masks(truth)["near"].transpose("lat", "lon").values
    expected = [r for s in range(0, 180, 40) for r in range(s, s + 8)]
    assert np.flatnonzero(calib.any(axis=1)).tolist() == expected
    np.testing.assert_array_equal(calib[expected], near[expected])


def test_label_ceiling_fine_tunes_on_even_stripes_and_scores_the_odd_ones(monkeypatch):
    """Six rows × two columns, all in the test mask but (row 0, column 1); ``stripe_rows=2``: stripes
    (0, 0, 1, 1, 2, 2), so the fine-tune gets the even stripes, rows 0, 1, 4, 5 (8 − 1 = 7 pixels), and the
    other half, rows 2 and 3 (4 pixels), is scored. The stub prediction errs by ±1 on rows 2–3 and by +5 on
    the fine-tuning rows: held-out RMSE √(4·1/4) = 1.0 (scoring the labelled half would give 5.0 and 7 pixels;
    7 + 4 = 11 = the whole test mask)."""
    import types

    import xarray as xr

    from workbench.inversion import experiment as ex

    coords = {"lat": np.arange(5.0, -1.0, -1.0), "lon": [0.0, 1.0]}
    truth = xr.Dataset({"FeO": (("lat", "lon"), np.arange(10.0, 22.0).reshape(6, 2))}, coords=coords)
    err = np.array([[5.0, 5], [5, 5], [1, -1], [-1, 1], [5, 5], [5, 5]])
    test = xr.DataArray(np.ones((6, 2), bool), dims=("lat", "lon"), coords=coords)
    test[0, 1] = False
    seen = []

    def refit(exp, site_px, ft_mode, ft_steps, seed):
        seen.append(site_px.values.copy())
        return {"resnet_finetuned": truth + err}

    monkeypatch.setattr(ex, "_refit_predictions", refit)
    exp = types.SimpleNamespace(truth=truth, masks={"test": test})
    r = ex.label_ceiling_experiment(exp, ft_steps=1, stripe_rows=2)
    assert (r["site_pixels"], r["test_pixels"]) == (7, 4)
    assert np.flatnonzero(seen[0].any(axis=1)).tolist() == [0, 1, 4, 5] and seen[0].sum() == 7
    assert r["heldout_rmse"] == {"resnet_finetuned": {"FeO": 1.0}}
