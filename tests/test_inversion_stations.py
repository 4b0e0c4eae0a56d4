"""Station model and the ``workbench invert stations`` CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def test_cli_stations(tmp_path, stations):
    train, pred, out = tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "o.csv"
    stations.iloc[:24].to_csv(train, index=False)
    extra = stations.iloc[24:].drop(columns=["FeO_wt_pct", "TiO2_wt_pct"]).assign(
        sample_id=[f"s{i}" for i in range(12)], notes="user column")
    extra.to_csv(pred, index=False)
    assert main(["invert", "stations", "--train", str(train), "--predict", str(pred), "--out", str(out)]) == 0
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


@pytest.mark.slow
def test_loso_beats_lucey(stations):
    """Leave-one-station-out over the 36 real stations: the GP beats Lucey 2000 for FeO and TiO2."""
    cv = st.cross_validate(stations, by="station")
    assert cv.loc["gp", "FeO_rmse"] < cv.loc["lucey2000", "FeO_rmse"]
    assert cv.loc["gp", "TiO2_rmse"] < cv.loc["lucey2000", "TiO2_rmse"]
