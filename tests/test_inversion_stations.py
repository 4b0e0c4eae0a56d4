"""Station model and the ``workbench invert stations`` CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from station_helpers import sites as _sites
from station_helpers import table as _table

from workbench.cli import main
from workbench.errors import InputError
from workbench.inversion import stations as st


@pytest.fixture(scope="module")
def stations(mirror):
    """The 36 real Clementine sampling-station spectra with measured FeO/TiO2 (needs the mirror)."""
    from workbench.catalog import open_table

    return open_table("clementine_sample_stations")



def test_read_stations_errors(tmp_path, stations):
    with pytest.raises(InputError, match="R950"):
        st.read_stations(stations.drop(columns="R950"))
    with pytest.raises(InputError, match="FeO_wt_pct"):
        st.read_stations(stations.drop(columns="FeO_wt_pct"), require_targets=True)
    bad = stations.copy()
    bad.loc[0, "R750"] = -0.1
    with pytest.raises(InputError, match="negative"):
        st.read_stations(bad)
    with pytest.raises(InputError, match="does not exist"):
        st.read_stations(tmp_path / "nope.csv")


def test_fit_predict_nan_rows(stations):
    pred = stations.copy()
    pred.loc[3, "R415"] = np.nan
    out = st.StationInverter().fit(stations.iloc[::2]).predict(pred)
    for c in ["FeO_pred", "TiO2_pred", "FeO_std", "TiO2_std", "FeO_lucey2000", "TiO2_lucey2000"]:
        assert c in out
    assert np.isnan(out.loc[3, "FeO_pred"]) and np.isfinite(out.loc[2, "FeO_pred"])
    assert (out["FeO_std"].dropna() > 0).all()
    # held-out odd rows: better than a constant predictor
    odd = out.iloc[1::2].drop(index=3)
    err = odd.FeO_pred - odd.FeO_wt_pct
    assert np.sqrt(np.mean(err**2)) < odd.FeO_wt_pct.std()


def test_cli_stations(tmp_path, stations, capsys):
    train, pred, out = tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "o.csv"
    stations.iloc[:24].to_csv(train, index=False)
    extra = stations.iloc[24:].drop(columns=["FeO_wt_pct", "TiO2_wt_pct"]).assign(
        sample_id=[f"s{i}" for i in range(12)], notes="user column")
    extra.to_csv(pred, index=False)
    assert main(["invert", "stations", "--train", str(train), "--predict", str(pred), "--out", str(out)]) == 0
    assert "same spectra as TRAIN" not in capsys.readouterr().out
    df = pd.read_csv(out)
    assert len(df) == 12 and df["FeO_pred"].notna().all()
    # the user's own columns come back unchanged, in their order, before the added ones
    assert list(df.columns[: extra.shape[1]]) == list(extra.columns)
    assert df["sample_id"].tolist() == extra["sample_id"].tolist() and (df["notes"] == "user column").all()
    # running again on OUT as PRED replaces the earlier predictions instead of duplicating columns
    assert main(["invert", "stations", "--train", str(train), "--predict", str(out), "--out", str(out)]) == 0
    again = pd.read_csv(out)
    assert list(again.columns) == list(df.columns) and np.allclose(again["FeO_pred"], df["FeO_pred"])
    assert main(["invert", "stations", "--train", str(pred), "--predict", str(pred), "--out", str(out)]) == 2
    capsys.readouterr()
    assert main(["invert", "stations", "--train", str(train), "--predict", str(train), "--out", str(out)]) == 0
    assert "note: 24 PRED row(s) have the same spectra as TRAIN stations" in capsys.readouterr().out
    # the cross-validation table says which rows cannot be held out on Clementine stations
    assert main(["invert", "stations", "--train", str(train), "--predict", str(pred), "--out", str(out),
                 "--cv", "mission"]) == 0
    text = capsys.readouterr().out
    assert "leave-one-mission-out" in text and "lucey2000's constants" in text and "not fully held out" in text


@pytest.mark.slow
def test_loso_beats_lucey(stations):
    """Leave-one-station-out over the 36 real stations: the GP beats Lucey 2000 for FeO and TiO2."""
    cv = st.cross_validate(stations, by="station")
    assert cv.loc["gp", "FeO_rmse"] < cv.loc["lucey2000", "FeO_rmse"]
    assert cv.loc["gp", "TiO2_rmse"] < cv.loc["lucey2000", "TiO2_rmse"]


def test_cv_scores_only_rows_with_a_measured_oxide(stations):
    """A blank TiO2 is not scored: R² stays finite, coverage counts scored rows only, n per oxide."""
    df = stations.iloc[:20].copy()
    df.loc[[1, 4, 7, 9], "TiO2_wt_pct"] = np.nan
    cv = st.cross_validate(df, by="station", gp_variants=("gp",))
    assert (cv["TiO2_n"] == 16).all() and (cv["FeO_n"] == 20).all()
    assert np.isfinite(cv["TiO2_r2"]).all()
    scored = df["TiO2_wt_pct"].notna().to_numpy()
    assert cv.loc["lucey2000", "TiO2_rmse"] == pytest.approx(float(np.sqrt(np.mean(
        (st.lucey_prior(df[st.BANDS].to_numpy(float))[scored, 1] - df["TiO2_wt_pct"].to_numpy()[scored]) ** 2))))
    # the fraction is over the 16 scored rows: a multiple of 1/16
    assert (cv.loc["gp", "TiO2_cov95"] * 16) == pytest.approx(round(cv.loc["gp", "TiO2_cov95"] * 16))


def test_gp_intervals_widened_by_leave_one_out_never_narrowed(stations):
    m = st.StationInverter(prior=st.lucey_prior).fit(stations)
    assert all(s >= 1.0 for s in m.std_scale) and max(m.std_scale) > 1.0  # TiO2 around Lucey: 1.44
    raw = st.StationInverter(prior=st.lucey_prior).fit(stations)
    raw.std_scale = (1.0, 1.0)
    a, b = m.predict(stations.iloc[:5]), raw.predict(stations.iloc[:5])
    np.testing.assert_allclose(a["TiO2_std"], b["TiO2_std"] * m.std_scale[1])
    np.testing.assert_allclose(a["TiO2_pred"], b["TiO2_pred"])


def test_loo_scale_matches_brute_force_leave_one_out():
    """The closed form (Rasmussen & Williams eq. 5.12) against refitting without each row, kernel fixed."""
    from scipy.stats import norm
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (40, 2))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.2 * rng.standard_t(2, 40)  # heavy tails: intervals too narrow
    gp = GaussianProcessRegressor(RBF(1.0) + WhiteKernel(0.01), optimizer=None).fit(X, y)  # noise too small
    z = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        m, s = GaussianProcessRegressor(gp.kernel_, optimizer=None).fit(X[keep], y[keep]).predict(
            X[i : i + 1], return_std=True)
        z.append(abs(y[i] - m[0]) / s[0])
    k = 39  # conformal rank of 40 rows at 95 %: ceil(41 * 0.95) = 39, one below the largest
    expected = max(1.0, float(np.sort(z)[k - 1]) / float(norm.ppf(0.975)))
    assert expected > 1.0  # the case exercises the widening
    assert st.loo_std_scale(gp) == pytest.approx(expected, rel=1e-6)
    # not the plain 95 % quantile (which under-covers on a few dozen rows), nor the largest residual
    assert expected > max(1.0, float(np.quantile(z, 0.95)) / float(norm.ppf(0.975))) * 1.001
    assert expected < max(z) / float(norm.ppf(0.975))
    # 12 rows cannot promise 95 %: the largest residual is used
    small = GaussianProcessRegressor(gp.kernel_, optimizer=None).fit(X[:12], y[:12])
    K = small.kernel_(X[:12])
    Kinv = np.linalg.inv(K)
    zs = np.abs(Kinv @ small.y_train_) / np.sqrt(np.diag(Kinv))
    assert st.loo_std_scale(small) == pytest.approx(max(1.0, zs.max() / float(norm.ppf(0.975))), rel=1e-9)


def test_synthetic_prior_of_a_station_does_not_depend_on_the_other_rows():
    """Each station is inverted on its own: neither its table neighbours nor the row order change its prior
    (stacked into one image, the network's stem and context windows blended neighbouring rows)."""
    from workbench.inversion.model import synthetic_station_prior

    rng = np.random.default_rng(3)
    X = rng.uniform(0.05, 0.3, (12, 5))
    X[:, 1:] *= np.linspace(1.0, 1.4, 4)  # a rising continuum, like lunar soil
    prior = synthetic_station_prior()
    table = prior(X)
    alone = np.vstack([prior(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(table, alone, atol=1e-3)
    np.testing.assert_allclose(prior(X[::-1])[::-1], table, atol=1e-3)
    X[4] = np.nan  # a blank station is NaN and leaves its neighbours alone
    out = prior(X)
    assert np.isnan(out[4]).all()
    np.testing.assert_allclose(np.delete(out, 4, 0), np.delete(table, 4, 0), atol=1e-3)



def test_a_zero_band_is_no_measurement_and_pred_columns_other_than_bands_are_not_read(tmp_path, capsys):
    train = _table()
    model = st.StationInverter().fit(train)
    pred = train.head(3).copy()
    pred.loc[0, "R900"] = 0.0  # gave FeO 77 wt% when only R750 and R950 were checked for zeros
    out = model.predict(pred)
    assert np.isnan(out.loc[0, ["FeO_pred", "TiO2_pred", "FeO_std", "TiO2_std"]].astype(float)).all()
    assert np.isfinite(out.loc[1:, "FeO_pred"]).all()
    t, p, o = tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "o.csv"
    train.to_csv(t, index=False)
    pred.assign(FeO_wt_pct="see lab report").to_csv(p, index=False)  # not an input of PRED: carried through
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 0
    assert (pd.read_csv(o)["FeO_wt_pct"] == "see lab report").all()
    p.write_text(p.read_text().replace("R1000", "R750", 1))  # a repeated column is named, not renamed R750.1
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 2
    assert "column 'R750' appears more than once" in capsys.readouterr().err
    with pytest.raises(InputError, match="'R750' appears more than once"):
        st.read_stations(train.rename(columns={"R1000": " R750"}))


def test_blank_header_cells_are_not_repeated_columns_and_read_csv_keeps_its_keywords(tmp_path):
    """A spreadsheet's trailing commas leave blank header cells (pandas' 'Unnamed: N'): they are not one column
    given twice. read_csv still takes pandas' keywords and buffers."""
    import io

    from workbench.validate import read_csv

    p = tmp_path / "trail.csv"
    _table(6).to_csv(p, index=False)
    p.write_text("\n".join(line + ",," for line in p.read_text().splitlines()) + "\n")
    assert len(st.read_stations(p)) == 6
    assert read_csv(p, dtype=float, nrows=2).shape[0] == 2
    assert read_csv(io.StringIO("a,b\n1,2\n")).shape == (1, 2)


# ------------------------------------------------------------------ stations at a landing site TRAIN has not seen

def test_site_groups_from_the_site_column_else_from_station_distances():
    df = _sites()
    assert list(st.site_groups(df)) == [f"Mission {k}" for k in range(4) for _ in range(6)]
    by_place = st.site_groups(df.drop(columns="site"))  # 0.1 deg = 3 km apart within a site, 303 km between
    assert len(set(by_place)) == 4 and all(len(set(by_place[i * 6:(i + 1) * 6])) == 1 for i in range(4))
    two = pd.DataFrame({"lat_deg": [0.0, 0.0], "lon_deg_east_0_360": [0.0, st.NEW_SITE_KM / 30.32 * 1.01]})
    assert len(set(st.site_groups(two))) == 2  # 1.01 x 50 km apart (30.32 km per degree): two sites
    assert len(set(st.site_groups(two.assign(lon_deg_east_0_360=[0.0, 1.6])))) == 1  # 48.5 km: one
    assert st.site_groups(df.drop(columns=["site", "lat_deg"])) is None


def test_new_site_rows_by_site_then_distance_else_new():
    train = _sites().iloc[:12]  # missions 0 and 1
    pred = pd.DataFrame({"site": ["Mission 1 - X", "Mission 7 - A", None, None, None],
                         "lat_deg": [50.0, 10.0, 10.0, 40.0, np.nan],
                         "lon_deg_east_0_360": [20.0, 20.0, 21.5, 20.0, np.nan]})
    # a named site decides over coordinates; unnamed rows by distance (1.5 deg x cos 10 = 45 km: near); unplaced: new
    assert st.new_site_rows(train, pred).tolist() == [False, True, False, True, True]
    assert st.new_site_rows(train[st.BANDS], pred).tolist() == [True] * 5  # TRAIN cannot be placed


def test_a_station_at_a_new_site_adds_the_between_site_spread_in_quadrature():
    train = _sites()
    model = st.StationInverter().fit(train)
    spread = model.between_site_std
    assert spread is not None and spread[0] > 1.0 and spread[1] < spread[0]  # the FeO offsets, not TiO2's
    pred = pd.concat([train.iloc[[0, 7]], train.iloc[[0, 7]].assign(site=["Mission 9 - A", "Mission 9 - B"])])
    out = model.predict(pred)
    assert out["new_site"].tolist() == [False, False, True, True]
    known = out.iloc[:2]
    np.testing.assert_allclose(out.iloc[2:]["FeO_std"], np.hypot(known["FeO_std"], spread[0]))
    np.testing.assert_allclose(out.iloc[2:]["TiO2_std"], np.hypot(known["TiO2_std"], spread[1]))
    np.testing.assert_allclose(out.iloc[2:]["FeO_pred"], known["FeO_pred"])  # the mean does not change
    # with no offsets between sites there is (almost) nothing to add; with two sites it cannot be estimated
    assert st.StationInverter().fit(_sites(offsets=(0, 0, 0, 0))).between_site_std[0] < 0.5 * spread[0]
    assert st.StationInverter().fit(train.iloc[:12]).between_site_std is None


def test_cli_says_which_rows_are_at_new_sites(tmp_path, capsys):
    train = _sites()
    t, p, o = tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "o.csv"
    train.to_csv(t, index=False)
    train.iloc[:3].assign(site="Mission 9 - A").to_csv(p, index=False)
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 0
    text = capsys.readouterr().out
    assert "note: 3 PRED row(s) are at landing sites with no TRAIN station" in text and "leave-one-site-out" in text
    assert pd.read_csv(o)["new_site"].all()
    train[st.BANDS + ["FeO_wt_pct", "TiO2_wt_pct"]].iloc[:12].to_csv(t, index=False)  # no site, no place
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 0
    assert "likely too narrow" in capsys.readouterr().out


def test_leaving_out_whole_landing_sites_the_intervals_cover_more(stations):
    """The 36 Clementine stations, each Apollo site left out in turn (the spread estimated again inside each
    fold from the other sites): 95 % intervals held 72 % / 89 % of FeO / TiO2 with the station-level std alone."""
    cv = st.cross_validate(stations, by="mission", gp_variants=("gp",))
    assert cv.loc["gp", "FeO_cov95"] == pytest.approx(31 / 36) and cv.loc["gp", "TiO2_cov95"] == pytest.approx(34 / 36)


def test_mission_grouping_refuses_rows_without_a_site():
    """A blank site was never left out, so never scored, silently; an all-blank column raised AttributeError."""
    df = _sites()
    df.loc[[3, 7], "site"] = np.nan
    with pytest.raises(InputError, match=r"2 row\(s\) have none \(first: row 4\).*--cv station"):
        st.cross_validate(df, by="mission")
    with pytest.raises(InputError, match="needs a 'site' column"):
        st.cross_validate(df.assign(site=np.nan), by="mission")
    assert list(st._groups(_sites().iloc[[0, 6]], "mission")) == ["Mission 0", "Mission 1"]
