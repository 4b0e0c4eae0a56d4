"""Known-answer tests from session 32's mutation review of the new-landing-site widening of the station model.

What they guard (each one failed with a mutant that the earlier tests let pass):

- ``inversion.stations.site_groups``: a partly blank ``site`` column falls back to the coordinates; single linkage
  chains stations within 50 km; one row, or a blank coordinate, gives no groups (not an error).
- ``inversion.stations.new_site_rows``: 50 km exactly (``NEW_SITE_KM``) is not new, 60 km is; TRAIN stations
  without coordinates are skipped (one blank does not make every row known; none placed: every row new).
- ``StationInverter``: the between-site spread is ``√max(0, mean r² − mean s²)`` of leave-one-site-out refits
  with the same prior and the station-level std of the inner model; a site that leaves fewer than 5 stations is
  skipped and fewer than 3 refits give None; a refit forgets the old spread; TRAIN rows that were not fitted do
  not place a site; predicting only known-site rows never runs the refits.
- A blank ``site`` column (all NaN, as a CSV with an empty column reads) is no site column: it crashed the
  model and the CLI with pandas' "Can only use .str accessor with string values" (fixed in session 32).
- ``workbench invert stations``: PRED's coordinates reach the model, the note counts only new rows and gives the
  FeO / TiO2 spread in that order.
- Notebook 02's error map names Mg# in its title and colour bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from station_helpers import sites as _sites

from workbench.cli import main
from workbench.inversion import stations as st

KM_PER_DEG = 30.32  # on the Moon's 1737.4 km sphere, along the equator




def _at(lon_km) -> pd.DataFrame:
    """Places on the equator, ``lon_km`` km east of 0 E."""
    return pd.DataFrame({"lat_deg": 0.0, "lon_deg_east_0_360": np.asarray(lon_km, float) / KM_PER_DEG})


# ------------------------------------------------------------------------------------------ where a station is
def test_new_site_km_is_50_km():
    train = _at([0.0, 1.0])
    assert st.new_site_rows(train, _at([46.0, 40.0, 61.0, -60.0])).tolist() == [False, False, True, True]
    assert len(set(st.site_groups(_at([0.0, 45.0])))) == 1 and len(set(st.site_groups(_at([0.0, 60.0])))) == 2


def test_exactly_50_km_away_is_not_a_new_site(monkeypatch):
    import workbench.geo

    monkeypatch.setattr(workbench.geo, "great_circle_distance", lambda *a: np.full((1, 1), st.NEW_SITE_KM))
    assert st.new_site_rows(_at([0.0]), _at([0.0])).tolist() == [False]  # "farther than 50 km" is new
    monkeypatch.setattr(workbench.geo, "great_circle_distance", lambda *a: np.full((1, 1), st.NEW_SITE_KM + 1e-9))
    assert st.new_site_rows(_at([0.0]), _at([0.0])).tolist() == [True]


def test_train_stations_without_coordinates_are_skipped():
    train = _at([0.0, 300.0])
    train.loc[1, "lat_deg"] = np.nan  # one blank: not "every TRAIN station is NaN km away"
    assert st.new_site_rows(train, _at([2.0, 299.0])).tolist() == [False, True]
    train["lat_deg"] = np.nan  # none placed: every row is new (it used to raise on an empty minimum)
    assert st.new_site_rows(train, _at([2.0, 299.0])).tolist() == [True, True]


def test_site_groups_falls_back_to_coordinates_when_a_site_is_blank():
    df = _sites()
    df.loc[[0, 1, 6, 7], "site"] = None  # two blanks at each of two missions: not one "nan" site across both
    g = st.site_groups(df)
    assert len(set(g)) == 4 and all(len(set(g[i * 6:(i + 1) * 6])) == 1 for i in range(4))


def test_site_groups_single_linkage_chains_stations_within_50_km():
    assert len(set(st.site_groups(_at([0.0, 40.0, 80.0])))) == 1  # 80 km end to end, 40 km steps: one site
    assert len(set(st.site_groups(_at([0.0, 40.0, 100.0])))) == 2


def test_site_groups_of_one_row_or_a_blank_coordinate_is_none():
    assert st.site_groups(_at([0.0])) is None
    blank = _at([0.0, 1.0, 300.0])
    blank.loc[2, "lon_deg_east_0_360"] = np.nan
    assert st.site_groups(blank) is None


# ------------------------------------------------------------------------------------- the between-site spread
def test_spread_is_leave_one_site_out_beyond_the_station_level_std():
    """The documented formula, by brute force with the public API, around the Lucey prior."""
    train = _sites()
    model = st.StationInverter(prior=st.lucey_prior).fit(train)
    missions = train["site"].str.split(" - ").str[0]
    r, s = [], []
    for g in missions.unique():
        out = (missions == g).to_numpy()
        inner = st.StationInverter(prior=st.lucey_prior).fit(train[~out])
        # named after a site the inner model has: its station-level std, not widened
        p = inner.predict(train.loc[out, st.BANDS].assign(site=train.loc[~out, "site"].iloc[0]))
        assert not p["new_site"].any()
        r.append(p[["FeO_pred", "TiO2_pred"]].to_numpy() - train.loc[out, ["FeO_wt_pct", "TiO2_wt_pct"]].to_numpy())
        s.append(p[["FeO_std", "TiO2_std"]].to_numpy())
    r, s = np.vstack(r), np.vstack(s)
    expected = np.sqrt(np.maximum(0.0, (r**2).mean(0) - (s**2).mean(0)))
    assert expected[0] > 1.0  # the FeO offsets between sites
    np.testing.assert_allclose(model.between_site_std, expected, rtol=1e-6, atol=1e-9)


def test_spread_needs_three_refits_and_skips_a_site_that_leaves_fewer_than_5():
    df = _sites(offsets=(0.0, 3.0, -3.0))
    assert st.StationInverter().fit(df).between_site_std is not None  # 3 sites: 3 refits of 12 stations
    small = df.iloc[[0, 1, 6, 7, *range(12, 18)]]  # 2 + 2 + 6: leaving out the 6 leaves 4, too few to fit
    assert st.StationInverter().fit(small).between_site_std is None  # 2 refits: not enough


def test_a_refit_forgets_the_old_spread():
    model = st.StationInverter().fit(_sites())
    assert model.between_site_std is not None
    assert model.fit(_sites().iloc[:12]).between_site_std is None  # 2 sites now


def test_train_rows_that_were_not_fitted_do_not_place_a_site():
    train = _sites()
    train.loc[train["site"].str.startswith("Mission 3"), "R750"] = np.nan  # all of mission 3 skipped
    model = st.StationInverter().fit(train)
    assert model.n_skipped == 6
    out = model.predict(train.iloc[[0, 18]].assign(R750=train["R750"].iloc[0]))
    assert out["new_site"].tolist() == [False, True]


def test_known_site_rows_do_not_run_the_leave_one_site_out_refits(monkeypatch):
    model = st.StationInverter().fit(_sites())

    def refits(self):
        raise AssertionError("the between-site spread was computed")

    monkeypatch.setattr(st.StationInverter, "_between_site_spread", refits)
    assert not model.predict(_sites().iloc[[0, 7]])["new_site"].any()  # cross_validate by station does this


def test_a_blank_site_column_is_no_site_column(tmp_path):
    """A CSV's empty 'site' column reads as all-NaN floats: the coordinates place the stations (it raised
    AttributeError, a traceback from the CLI)."""
    train = _sites().assign(site=np.nan)
    model = st.StationInverter().fit(train)
    assert len(set(st.site_groups(train))) == 4 and model.between_site_std is not None
    pred = train.iloc[[0, 7]].assign(lat_deg=[0.0, 60.0])
    assert model.predict(pred)["new_site"].tolist() == [False, True]
    named = pred.assign(site=["Mission 0 - A", "Mission 1 - B"])  # TRAIN names none: the coordinates decide
    assert model.predict(named)["new_site"].tolist() == [False, True]
    t, p, o = tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "o.csv"
    _sites().to_csv(t, index=False)
    pred.assign(site="").to_csv(p, index=False)  # PRED's site column left empty
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 0
    assert pd.read_csv(o)["new_site"].tolist() == [False, True]


# ------------------------------------------------------------------------------------------------------ the CLI
def test_cli_places_pred_rows_by_coordinates_and_counts_only_new_rows(tmp_path, capsys):
    train = _sites()
    t, p, o = tmp_path / "t.csv", tmp_path / "p.csv", tmp_path / "o.csv"
    train.to_csv(t, index=False)
    train.iloc[[0, 7]].drop(columns="site").to_csv(p, index=False)  # at mission 0 and 1, by coordinates
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 0
    assert "landing sites with no TRAIN station" not in capsys.readouterr().out
    assert not pd.read_csv(o)["new_site"].any()
    train.iloc[[0, 7, 8]].assign(site=["Mission 0 - A", "Mission 9 - A", "Mission 9 - B"], notes="mine").to_csv(
        p, index=False)
    assert main(["invert", "stations", "--train", str(t), "--predict", str(p), "--out", str(o)]) == 0
    spread = st.StationInverter().fit(train).between_site_std
    text = capsys.readouterr().out
    assert "note: 2 PRED row(s) are at landing sites" in text
    assert f"{spread[0]:.2f} / {spread[1]:.2f} wt% (leave-one-site-out)" in text
    df = pd.read_csv(o)
    assert df["new_site"].tolist() == [False, True, True]
    assert list(df.columns[:len(train.columns) + 1]) == [*train.columns, "notes"]  # PRED's columns stay in place


# --------------------------------------------------------------------------------------------------- notebook 02
def test_error_map_names_mg_number_as_mg_hash():
    import holoviews as hv
    import xarray as xr

    from workbench.widgets.inversion import InversionState, inversion_view

    lat, lon = np.linspace(-89.5, 89.5, 18), np.linspace(-179.5, 179.5, 36)
    grid = xr.DataArray(np.linspace(40, 80, 18 * 36).reshape(18, 36), coords={"lat": lat, "lon": lon},
                        dims=("lat", "lon"))

    class Lab:
        truth = xr.Dataset({"mg_number": grid})

        def predict(self, *args):
            return xr.Dataset({"mg_number": grid + 1.0})

        def explored_table(self, *args):
            return pd.DataFrame({"method": ["m"], "mg_number": [1.0]})

    plot, html = inversion_view(Lab(), InversionState(method="m", oxide="mg_number", layer="error"))
    el = next(iter(plot.traverse(lambda e: e, [hv.Image]))) if not isinstance(plot, hv.Image) else plot
    assert hv.Store.lookup_options("bokeh", plot, "plot").kwargs["title"].startswith("Mg# error — m")
    assert el.vdims[0].label.startswith("Mg# error") and "<th>Mg#</th>" in html
