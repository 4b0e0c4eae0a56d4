"""Known answers for code changed in session 29 that a mutation review found unpinned: each test fails on a
mutant of the source that the rest of the suite let through (log: the review's m-mutants.md).

- ``maps._place_labels``: on a 720 px map (2 px a degree) with 9 px markers a name is written 3.25° (6.5 px)
  from its marker's centre, a line is 5.5° high and a character 3° wide; a name that would cover another
  site's marker goes above right (5° up), not below and not across the marker; one whose only obstacle is a
  far-off marker stays at its own height; a name too long for every side falls back to the right; a name
  written left clears an obstacle along its whole width; a site within a line of ±90° is labelled inside the
  map; the labels are drawn at 8 pt (the size the 6 px / 11 px estimates are for) and each with its own
  alignment.
- ``maps._box_fits``: a box touching the map's edge lies on the map, and boxes that only touch do not
  overlap.
- ``widgets.prospectivity``: 20 circles at most (21 candidates: the top 20 circled and the readout says
  so; exactly 20: all circled and nothing said), the selected one circled besides.
- ``widgets.asymmetry``: ``display_name`` for silicate Mg# and npFe⁰; the map title, the distribution
  axis and the SPA profile title use the display name; the variable dropdown offers display names for the
  dataset names; the threshold slider shows no "(1)" for a dimensionless variable.

Fast and offline: a few hand-placed sites, a 4-degree Moon with hand-planted scores, a two-variable
4-degree dataset and a hand-made SPA profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import maps

# ------------------------------------------------------------------------------------------------ maps.py
# 720 px over 360° = 2 px/deg; 9 px marker: r = 2.25°, gap = (4.5 + 2) px = 3.25°, line 11 px = 5.5°;
# "above" is y + r + line/2 = y + 5°, "below" y − 5°; a character is 6 px = 3°
_NEAR = (-180.0, 180.0)


def _place(lon, lat, names, xlim=_NEAR):
    x, y, align = maps._place_labels(lon, lat, names, xlim, 2.0, 9)
    return [(round(float(a), 6), round(float(b), 6), c) for a, b, c in zip(x, y, align, strict=True)]


def test_a_name_that_would_cover_a_neighbours_marker_goes_above_right():
    """A at (0, 0), B 5° east: A's name to the right spans x 3.25…6.25, y ±2.75 and covers B's marker
    (x 2.75…7.25, y ±2.25); above right (y 2.25…7.75) only touches it. B's own name fits on its right."""
    assert _place([0.0, 5.0], [0.0, 0.0], ["A", "B"]) == [(3.25, 5.0, "left"), (8.25, 0.0, "left")]


def test_a_far_off_marker_does_not_move_a_name():
    assert _place([0.0, 100.0], [0.0, 0.0], ["A", "B"]) == [(3.25, 0.0, "left"), (103.25, 0.0, "left")]


def test_a_name_that_fits_nowhere_is_written_to_the_right():
    # 10 characters = 30°: off a 40°-wide map on either side, above or below
    assert _place([0.0], [0.0], ["ABCDEFGHIJ"], xlim=(-20.0, 20.0)) == [(3.25, 0.0, "left")]


def test_a_name_written_left_clears_an_obstacle_along_its_whole_width():
    """8 characters (24°) at 178 °E: no room on the right (181.25 > 180); on the left it spans
    150.75…174.75 and covers C's marker at 153 (150.75…155.25) with its far end: above left."""
    assert _place([178.0, 153.0], [0.0, 0.0], ["ABCDEFGH", "C"])[0] == (174.75, 5.0, "right")


@pytest.mark.parametrize(("lat", "at"), [(88.0, 83.0), (-88.0, -83.0)])
def test_a_name_near_a_pole_is_moved_onto_the_map(lat, at):
    # at 88°N the name's line would reach 90.75°, and above it further: below right (80.25…85.75) fits
    assert _place([0.0], [lat], ["A"]) == [(3.25, at, "left")]


def test_a_box_on_the_edge_is_on_the_map_and_touching_boxes_do_not_overlap():
    assert maps._box_fits((-180.0, -170.0, 0.0, 5.5), _NEAR, [])
    assert maps._box_fits((170.0, 180.0, 84.5, 90.0), _NEAR, [])
    assert maps._box_fits((0.0, 10.0, -90.0, -84.5), _NEAR, [])
    assert not maps._box_fits((175.0, 180.5, 0.0, 5.5), _NEAR, [])
    assert maps._box_fits((0.0, 1.0, 0.0, 1.0), _NEAR, [(1.0, 2.0, 0.0, 1.0), (0.0, 1.0, 1.0, 2.0)])
    assert not maps._box_fits((0.0, 1.0, 0.0, 1.0), _NEAR, [(0.5, 2.0, 0.5, 2.0)])


def test_site_labels_are_8pt_and_aligned_each_its_own_way():
    """Apollo 12 has room on its right (its name aligned left); a site at 175 °E has not (4 characters = 12°
    from 178.25 would end at 190.25 °E): its name is written left, aligned right."""
    import holoviews as hv

    df = pd.DataFrame({"site": ["Apollo 12", "Edge"], "lat": [-3.01, 0.0], "lon": [-23.42, 175.0]})
    ov = maps.sites_overlay(df, label_sites=True)
    (lab,) = [el for el in ov if isinstance(el, hv.Labels)]
    assert list(lab.dimension_values("align")) == ["left", "right"]
    style = hv.Store.lookup_options("bokeh", lab, "style").kwargs
    assert style["text_font_size"] == "8pt"
    assert isinstance(style["text_align"], hv.dim) and style["text_align"].apply(lab).tolist() == ["left", "right"]


# ------------------------------------------------------------------------------------ prospectivity widget
def _ctx(n: int):
    """n single-pixel candidates on a 4-degree Moon (45 x 90), scores 1…n, 4 pixels apart; all else 0."""
    from workbench.analysis.layers import Normalisation
    from workbench.geo import global_grid
    from workbench.widgets.prospectivity import ProspectivityContext

    lat, lon = global_grid(0.25)
    vals = np.random.default_rng(0).normal(size=(2, lat.size, lon.size)).astype("float32")
    err = np.zeros(vals.shape, "float32")
    for i in range(n):
        err[0, 2 + 4 * (i // 7), 2 + 4 * (i % 7)] = 1.0 + i
    st = xr.DataArray(vals, dims=("layer", "lat", "lon"), coords={"layer": ["TiO2", "FeO"], "lat": lat, "lon": lon})
    return ProspectivityContext(stack=st, errors=st.copy(data=err), normalisation=Normalisation.fit(st),
                                train=[st], tio2=st.sel(layer="TiO2", drop=True))


def _circles(ctx, **kw):
    import holoviews as hv

    from workbench.widgets.prospectivity import ProspectivityState, prospectivity_view

    v = prospectivity_view(ctx, ProspectivityState(min_pixels=1, rank_by="mean_score", **kw))
    (pts,) = v.map.traverse(lambda x: x, [hv.Points])
    return len(v.table), sorted(int(r) for r in pts.dimension_values("rank")), v.readout


def test_the_map_circles_the_top_20_of_21_candidates_and_says_so():
    n, ranks, readout = _circles(_ctx(21))
    assert n == 21 and ranks == list(range(1, 21))
    assert "(circles mark the top 20; all are in the list)" in readout
    n, ranks, _ = _circles(_ctx(21), selected=21)  # the candidate zoomed on is circled as well
    assert ranks == list(range(1, 22))


def test_twenty_candidates_are_all_circled_and_nothing_is_said():
    n, ranks, readout = _circles(_ctx(20))
    assert n == 20 and ranks == list(range(1, 21)) and "circles mark" not in readout


# ---------------------------------------------------------------------------------------- asymmetry widget
@pytest.fixture(scope="module")
def ds():
    from workbench import geo

    t = geo.global_template(0.25)
    lat2, lon2 = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    rng = np.random.default_rng(1)
    mg = 63.0 - 3.0 * np.cos(np.deg2rad(lon2)) + rng.normal(size=lat2.shape)
    feo = 8.0 + rng.normal(size=lat2.shape)
    return xr.Dataset({"mg_number": t.copy(data=mg).assign_attrs(units="1"),
                       "FeO": t.copy(data=feo).assign_attrs(units="wt%")})


def test_display_names_of_silicate_mg_number_and_npfe():
    from workbench.widgets.base import display_name

    assert display_name("silicate_mg_number") == "silicate Mg#"
    assert display_name("npfe") == "npFe⁰"
    assert display_name("TiO2") == "TiO2"


def test_map_title_and_distribution_axis_say_mg_number(ds):
    import holoviews as hv

    from workbench.widgets import asymmetry as W

    v = W.asymmetry_view(ds, W.AsymmetryState(), n_boot=50, n_perm=99)
    (img,) = v.map.traverse(lambda x: x, [hv.Image])
    assert hv.Store.lookup_options("bokeh", img, "plot").kwargs["title"] == "Mg# — near vs far"
    curves = v.distributions.traverse(lambda x: x, [hv.Curve])
    assert [c.kdims[0].name for c in curves] == ["Mg#", "Mg#"]  # dimensionless: no unit after it


def test_the_dropdown_offers_display_names_and_the_slider_no_unit_one(ds):
    from workbench.widgets import asymmetry as W

    p = W.AsymmetryPanel(ds, n_boot=50, n_perm=99)
    try:
        assert dict(p.controls["variable"].options) == {"Mg#": "mg_number", "FeO": "FeO"}
        assert p.controls["variable"].value == "mg_number"
        assert p.controls["threshold"].description == "threshold"  # not "threshold (1)"
        assert p._units("mg_number") == "" and p._units("FeO") == "wt%"
    finally:
        p.cleanup()


def test_spa_profile_title_uses_the_display_name():
    import holoviews as hv

    from workbench.widgets import asymmetry as W

    d = xr.DataArray([100.0, 500.0, 900.0, 1300.0], dims="distance_km")
    prof = xr.Dataset({"mean": ("distance_km", [60.0, 60.5, 62.0, 61.8])}, coords={"distance_km": d},
                      attrs={"units": "1"})
    cp = xr.Dataset({"radius_km": ("change", [700.0]), "fit": ("distance_km", [60.2, 60.2, 61.9, 61.9])},
                    coords={"change": [0], "distance_km": d})
    (el,) = list(W.spa_profile_view({"mg_number": {"profile": prof, "change_points": cp}}))
    assert hv.Store.lookup_options("bokeh", el, "plot").kwargs["title"] == "Mg#: boundaries at 700 km"
