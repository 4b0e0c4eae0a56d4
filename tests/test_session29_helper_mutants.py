"""Known answers for code changed in session 29 that a mutation review found unpinned: each test fails on a
mutant of the source that the rest of the suite let through (log: the review's m2-mutants.md).

- ``maps``: a map that is global in one direction only keeps the fixed 30° list on that axis and gets the
  adaptive degree ticker on the other (the two conditions are not swapped); the ticker asks for about 7
  ticks (180° / 30° = 6 intervals) with 3 minor intervals (10° between 30° ticks).
- ``report.headline_table``: a nested dict gives one row per leaf, ``a · b · c``; a one-key dict is split
  too; an empty dict inside a dict stays one row; a figure or key that is not a string is named by its text.
- ``widgets.inversion``: both site lists show ``min(SITE_LIST_ROWS, number of sites)`` rows (16 of 22, 3 of
  3, 16 of 16 and of 17); ``advisor_view`` renames every column :data:`ADVISOR_DISPLAY_COLUMNS` names and
  rounds to 3 decimals.
- ``widgets.tour.site_table``: rounding the coordinates leaves the caller's table as it is.

Fast and offline: hand-made grids of a few pixels; the inversion lab and ``site_advisor`` are stand-ins.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import geo, maps


# ------------------------------------------------------------------------------------------------ maps.py
def _opts(lat, lon) -> dict:
    data = np.arange(len(lat) * len(lon), dtype="float64").reshape(len(lat), len(lon))
    da = xr.DataArray(data, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="x", attrs={"units": "m"})
    return maps.lunar_map(da, rasterize=False).opts.get("plot").kwargs


def test_a_band_of_latitude_round_the_whole_moon_keeps_30_degree_longitudes_and_adapts_latitudes():
    lat, lon = geo.global_grid(1)
    o = _opts([0.5, -0.5], lon)  # 360 columns: -180..180 is global; 2 rows: -1..1 is not
    assert o["xticks"] == [-180.0 + 30 * i for i in range(13)]
    assert type(o["yticks"]).__name__ == "AdaptiveTicker"


def test_a_strip_from_pole_to_pole_keeps_30_degree_latitudes_and_adapts_longitudes():
    lat, lon = geo.global_grid(1)
    o = _opts(lat, [0.5, 1.5])  # 180 rows: -90..90 is global; 2 columns: 0..2 is not
    assert o["yticks"] == [-90, -60, -30, 0, 30, 60, 90]
    assert type(o["xticks"]).__name__ == "AdaptiveTicker"


def test_the_degree_ticker_asks_for_7_ticks_with_10_degree_minor_ticks_between_30_degree_ones():
    t = maps.degree_ticker()
    # notebook 01's 180-degree region: 6 intervals of 30 degrees = 7 ticks; 30 / 3 = 10-degree minor ticks
    assert t.desired_num_ticks == 7 and t.num_minor_ticks == 3
    assert maps.degree_ticker(4).desired_num_ticks == 4


# ---------------------------------------------------------------------------------------------- report.py
def _rows(figures) -> list:
    from workbench.report import headline_table

    t = headline_table(figures)
    return list(zip(t.index, t["value"], strict=True))


def test_a_nested_dict_gives_one_row_per_leaf_named_along_its_path():
    rmse = {"FeO": {"gbm": 0.5, "cnn": 0.25}, "TiO2": 1.0}
    assert _rows({"n": 3, "rmse": rmse}) == [
        ("n", 3), ("rmse · FeO · gbm", 0.5), ("rmse · FeO · cnn", 0.25), ("rmse · TiO2", 1.0)]


def test_a_one_key_dict_is_split_and_an_empty_dict_inside_one_stays_a_row():
    assert _rows({"rmse": {"gbm": 0.5}}) == [("rmse · gbm", 0.5)]
    assert _rows({"a": {"b": {}, "c": 2}}) == [("a · b", {}), ("a · c", 2)]


def test_figures_and_keys_that_are_not_strings_are_named_by_their_text():
    assert _rows({1: 2, "by_ppd": {4: 0.5}}) == [("1", 2), ("by_ppd · 4", 0.5)]


# ------------------------------------------------------------------------------------ widgets/inversion.py
def _site_rows(n: int) -> tuple[int, int]:
    from workbench.widgets import inversion as inv

    lab = types.SimpleNamespace(sites={f"S{i}": (0.0, float(i)) for i in range(n)})
    rows = []
    for cls, key in ((inv.InversionPanel, "sites"), (inv.SiteAdvisorPanel, "sampled")):
        panel = cls.__new__(cls)  # no __init__: nothing is computed, only the controls are made
        panel.lab = lab
        ctrl = panel.make_controls()[key]
        assert list(ctrl.options) == list(lab.sites)
        rows.append(ctrl.rows)
    return tuple(rows)


@pytest.mark.parametrize(("n", "rows"), [(22, 16), (17, 16), (16, 16), (3, 3), (1, 1)])
def test_both_site_lists_show_at_most_16_rows_and_no_empty_ones(n, rows):
    from workbench.widgets.inversion import SITE_LIST_ROWS

    assert SITE_LIST_ROWS == 16
    assert _site_rows(n) == (rows, rows)


def test_the_advisor_table_shows_display_names_to_3_decimals(monkeypatch):
    from workbench.widgets import inversion as inv

    lab = types.SimpleNamespace(sites={"A": (1.0, 2.0)}, predict=lambda *a: "PRED", refl=lambda instrument: "R")
    rank = pd.DataFrame({"site": ["x"], "lat": [1.23456], "lon": [-2.34567], "epistemic_std_at_site": [0.45678],
                         "similar_area_pct": [12.34567], "score": [0.98765]})
    monkeypatch.setattr(inv, "site_advisor", lambda pred, refl, **kw: rank)
    out = inv.advisor_view(lab, inv.AdvisorState(members=2))
    assert list(out.columns) == ["site", "lat (°N)", "lon (°E)", "model disagreement at the site (ensemble 1σ)",
                                 "ground that looks alike (% of the Moon)", "score"]
    assert out.iloc[0].tolist() == ["x", 1.235, -2.346, 0.457, 12.346, 0.988]


# ----------------------------------------------------------------------------------------- widgets/tour.py
def test_site_table_rounds_a_copy_and_leaves_the_callers_coordinates_as_they_are():
    from workbench.widgets.tour import site_table

    sites = pd.DataFrame({"site": ["Luna 24"], "lat": [12.71428], "lon": [62.21286], "TiO2": [1.0], "FeO": [20.0],
                          "Al2O3": [12.0], "far_side": [False]})
    t = site_table(sites)
    assert t["lat (°N)"].tolist() == [12.71] and t["lon (°E)"].tolist() == [62.21]
    assert sites["lat"].tolist() == [12.71428] and sites["lon"].tolist() == [62.21286]
