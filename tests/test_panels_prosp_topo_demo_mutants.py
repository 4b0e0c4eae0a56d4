"""Known answers for the prospectivity panel, the topography panel and ``workbench demo`` (mutation review: each
test fails on a mutant of ``workbench/widgets/prospectivity.py``, ``workbench/widgets/topography.py`` or
``workbench/demo.py`` that the rest of the suite let through).

* prospectivity panel: the threshold percentile's bounds [50, 100); PCA's two-layer minimum and an unknown method
  refused; the score cache; the zoom box (seam test, padding, clamping at the map's edges); the zoom on the
  selected rank, the far-side-centred map for a candidate across ±180° (markers and planted deposits moved with
  it), but not for the whole Moon; the colour range (1st-99.9th percentile); framewise axes; the "no candidate of
  rank" note; the selection kept by a change that changes nothing, a rank given at construction, a rank beyond the
  200 listed, and a rank that does not exist dropped; layer checkboxes only for the state's fields;
* topography panel: the scene's pixel size (1 % tolerance, bool/zero/non-finite refused) and its crop of a
  non-square DEM; the error maps' floor; the pure view with stand-in reconstructions (profile row clipped and
  scaled to the last row, error sign and symmetric colour range, the truth's range on every DEM map, the dark
  share); the sun-elevation table's columns and pixel size; ``polar_tile``'s minimum size; ``polar_tile_view``
  (both sides checked, block-mean coarse DEM, RMSE against the tile, the sun handed on in order);
* demo: ``only`` as a substring; ``execute_notebook`` (environment applied and restored, timeout and folder
  handed on, the last line of a cell error, the type of any other error); ``run_demo`` (timeout validated, fast
  flag, headline figures, rounding, summary, an export failure not hiding the notebook's error); ``format_table``.

Fast and offline: tiny synthetic grids; no network, no data mirror, no notebook executed (the model calls,
``nbclient`` and the notebook runner are replaced by stand-ins where the code would call them).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError

# ------------------------------------------------------------------------------------ prospectivity panel
# Global 0.25 px/deg grid: 45 rows (lat 88, 84, ..., -88), 90 columns (lon -178, -174, ..., 178), 4050 pixels.
# Network errors (rule "sum"), 0 except: W = 4 px of 5 (rows 10-11, lat 48/44; columns 5-6, lon -158/-154);
# E = 1 px of 3 (row 30, lat -32; column 50, lon 22); S = 6 px of 2 across the seam (rows 20-21, lat 8/4;
# columns 88, 89, 0, lon 174, 178, -178). 11 of 4050 pixels are > 0: the 99th percentile is 0 and, ranked by
# mean score, the candidates are W (1), E (2), S (3).


def _prosp_ctx(layers=("TiO2", "FeO"), lon360=False, truth=False, errors=None):
    from workbench.analysis.layers import Normalisation
    from workbench.geo import global_grid
    from workbench.widgets.prospectivity import ProspectivityContext

    lat, lon = global_grid(0.25)
    vals = np.random.default_rng(0).normal(size=(len(layers), lat.size, lon.size)).astype("float32")
    if errors is None:
        errors = np.zeros(vals.shape, "float32")
        errors[0, 10:12, 5:7] = 5.0
        errors[0, 30, 50] = 3.0
        errors[0, 20:22, [88, 89, 0]] = 2.0
    dep = np.zeros((lat.size, lon.size), bool)
    dep[10:12, 5:7] = True  # planted deposits: W's four pixels (lon -158, -154)
    lo = lon
    if lon360:  # the same Moon stored on 0..360 longitudes, sorted ascending
        order = np.argsort(np.mod(lon, 360.0))
        vals, errors, dep, lo = vals[..., order], errors[..., order], dep[:, order], np.mod(lon, 360.0)[order]
    st = xr.DataArray(vals, dims=("layer", "lat", "lon"), coords={"layer": list(layers), "lat": lat, "lon": lo})
    return ProspectivityContext(stack=st, errors=st.copy(data=errors), normalisation=Normalisation.fit(st),
                                train=[st], tio2=st.sel(layer=layers[0], drop=True),
                                truth=st.isel(layer=0, drop=True).copy(data=dep) if truth else None)


def _state(**kw):
    from workbench.widgets.prospectivity import ProspectivityState

    return ProspectivityState(**{"min_pixels": 1, "rank_by": "mean_score", **kw})


def _view(ctx, **kw):
    from workbench.widgets.prospectivity import prospectivity_view

    return prospectivity_view(ctx, _state(**kw))


def _image_opts(view):
    import holoviews as hv

    (img,) = view.map.traverse(lambda x: x, [hv.Image])
    return img, hv.Store.lookup_options("bokeh", img, "plot").kwargs


def _points_lon(view, label=None):
    import holoviews as hv

    pts = [p for p in view.map.traverse(lambda x: x, [hv.Points]) if label is None or p.label == label]
    return [sorted(np.round(p.dimension_values("lon"), 6).tolist()) for p in pts]


def test_threshold_percentile_is_accepted_from_50_up_to_but_not_including_100():
    ctx = _prosp_ctx()
    v = _view(ctx, threshold_pct=50.0)
    assert v.threshold == 0.0 and v.table["n_pixels"].tolist() == [4, 1, 6]
    for bad in (100.0, 49.9):
        with pytest.raises(InputError, match=r"must lie in \[50, 100\)"):
            _view(ctx, threshold_pct=bad)


def test_pca_needs_two_layers_an_unknown_method_is_named_and_scores_are_cached():
    from workbench.widgets.prospectivity import method_score

    ctx = _prosp_ctx()
    with pytest.raises(InputError, match="PCA reconstruction needs at least 2 layers"):
        _view(ctx, method="pca", TiO2=False)
    with pytest.raises(InputError, match=r"unknown method 'kmeans'; choose one of \('network', 'zscore'"):
        method_score(ctx, "kmeans", ["TiO2", "FeO"])
    first = method_score(ctx, "zscore", ["TiO2", "FeO"])
    assert method_score(ctx, "zscore", ["TiO2", "FeO"]) is first  # the second call is served from the cache


def _row(lat_min, lat_max, lon_min, lon_max):
    return pd.Series({"lat": (lat_min + lat_max) / 2, "lon": lon_min, "lat_min": lat_min, "lat_max": lat_max,
                      "lon_min": lon_min, "lon_max": lon_max})


def test_zoom_box_pads_by_4_degrees_and_stays_on_the_map():
    from workbench.widgets.prospectivity import _crosses_seam, _zoom_box

    one_column = _row(10.0, 12.0, 178.0, 178.0)  # one column wide: lon_min == lon_max does not cross the seam
    assert not _crosses_seam(one_column) and _zoom_box(one_column) == ((174.0, 180.0), (6.0, 16.0))
    assert _zoom_box(_row(86.0, 88.0, -178.0, -174.0)) == ((-180.0, -170.0), (82.0, 90.0))
    assert _zoom_box(_row(-88.0, -86.0, 20.0, 30.0)) == ((16.0, 34.0), (-90.0, -82.0))
    # across the seam, on the 0..360 map: 170..358 padded to 166..362, cut at 360; 2..190 to -2..194, cut at 0
    assert _zoom_box(_row(0.0, 2.0, 170.0, -2.0)) == ((166.0, 360.0), (-4.0, 6.0))
    assert _zoom_box(_row(0.0, 2.0, 2.0, -170.0)) == ((0.0, 194.0), (-4.0, 6.0))


def test_view_zooms_on_the_selected_rank_and_moves_to_the_far_side_for_a_seam_candidate():
    import holoviews as hv

    ctx = _prosp_ctx(truth=True)
    whole = _view(ctx)  # the last candidate (S) crosses the seam, but nothing is selected: near-side map
    assert whole.table["n_pixels"].tolist() == [4, 1, 6]
    img, o = _image_opts(whole)
    assert img.range("lon") == (-180.0, 180.0) and (o["xlim"], o["ylim"]) == ((-180.0, 180.0), (-90.0, 90.0))
    assert _points_lon(whole) == [[-156.0, 22.0, 178.0], [-158.0, -158.0, -154.0, -154.0]]
    _, o = _image_opts(_view(ctx, selected=1))  # W: lat 44..48, lon -158..-154, padded by 4 degrees
    assert (o["xlim"], o["ylim"]) == ((-162.0, -150.0), (40.0, 52.0))
    _, o = _image_opts(_view(ctx, selected=2))  # E: one pixel at (-32, 22)
    assert (o["xlim"], o["ylim"]) == ((18.0, 26.0), (-36.0, -28.0))
    far = _view(ctx, selected=3)  # S (the last rank): 174..182 on the far-side-centred 0..360 map
    img, o = _image_opts(far)
    assert img.range("lon") == (0.0, 360.0) and (o["xlim"], o["ylim"]) == ((170.0, 186.0), (0.0, 12.0))
    # the live plot takes the new axis ranges on every update
    assert hv.Store.lookup_options("bokeh", img, "norm").kwargs["framewise"] is True
    # the markers and the planted deposits are moved onto the 0..360 map with it
    assert _points_lon(far) == [[22.0, 178.0, 204.0], [202.0, 202.0, 206.0, 206.0]]
    assert "no candidate of rank" not in far.readout
    gone = _view(ctx, selected=4)
    assert "no candidate of rank 4: showing the whole Moon" in gone.readout
    assert _image_opts(gone)[1]["xlim"] == (-180.0, 180.0)


def test_colours_are_equalised_by_area_over_the_whole_score_range():
    """4039 zeros, six 2s, one 3, four 5s: a linear range to the 99.9th percentile (2.951) would put the four 5s
    outside it; the map's colours are the area rank (0…100 %, about half the network's scores are 0), its colour
    bar names the score at 0, 50, 90 and 99 % of the area, as the slider counts it: 0 (the non-zero scores are
    0.3 % of the area)."""
    v = _view(_prosp_ctx())
    img, o = _image_opts(v)
    assert o["clim"] == (0.0, 100.0) and o["cnorm"] == "linear"
    labels = o["colorbar_opts"]["major_label_overrides"]
    from workbench.analysis.prospectivity import area_percentile

    score = img.data[img.vdims[1].name]  # the hover's score: the colour bar's 99 % is the slider's threshold
    assert labels[0.0] == labels[50.0] == labels[99.0] == f"{area_percentile(score, 99.0):.3g}" == "0"
    assert "equalised by area" in v.readout


def test_the_map_circles_only_the_top_candidates_and_the_selected_one(monkeypatch):
    from workbench.widgets import prospectivity as PW

    full = _view(_prosp_ctx())
    n = len(full.table)
    assert n >= 3 and len(_points_lon(full)[0]) == n and "circles mark" not in full.readout
    monkeypatch.setattr(PW, "MAX_CIRCLES", 1)
    top = _view(_prosp_ctx())
    assert len(_points_lon(top)[0]) == 1 and "(circles mark the top 1; all are in the list)" in top.readout
    zoomed = _view(_prosp_ctx(), selected=3)  # rank 3 is circled as well while it is zoomed on
    assert len(_points_lon(zoomed)[0]) == 2


def test_a_flat_score_has_no_candidate_and_still_draws():
    v = _view(_prosp_ctx(errors=np.zeros((2, 45, 90), "float32")))
    assert len(v.table) == 0 and v.metrics is None and "<b>0</b> candidate regions, 0.0 thousand km²" in v.readout
    o = _image_opts(v)[1]  # one score everywhere: one colour (area rank 50 %), every tick names that score
    assert o["clim"] == (0.0, 100.0) and set(o["colorbar_opts"]["major_label_overrides"].values()) == {"0"}


@pytest.fixture
def panels():
    made = []
    yield made
    for p in made:
        p.cleanup()


def _panel(panels, ctx, **kw):
    from workbench.widgets.prospectivity import ProspectivityPanel

    p = ProspectivityPanel(ctx, **{"min_pixels": 1, "rank_by": "mean_score", **kw})
    panels.append(p)
    return p


def test_panel_keeps_the_selection_through_a_change_that_changes_nothing(panels):
    p = _panel(panels, _prosp_ctx())
    p.controls["selected"].value = 2
    assert p.state.selected == 2
    p.set(method="network", min_pixels=1)  # the values it already has: the ranks stay the same
    assert p.state.selected == 2 and p.controls["selected"].value == 2
    p.set(threshold_pct=98.0)  # a real change renumbers the candidates: back to the whole Moon
    assert p.state.selected == 0 and p.controls["selected"].value == 0


def test_panel_given_a_rank_at_construction_zooms_on_it(panels):
    p = _panel(panels, _prosp_ctx(), selected=2)
    assert p.error is None and p.state.selected == 2 and p.controls["selected"].value == 2
    assert _image_opts(p.view)[1]["ylim"] == (-36.0, -28.0)


def test_panel_offers_a_rank_beyond_the_200_listed_and_drops_one_that_does_not_exist(panels):
    """945 isolated pixels (rows 2, 4, ..., 42; columns 0, 2, ..., 88) scored 1..945, 3105 zeros: the 90th
    percentile of area lies at score 536.3 (a pixel percentile would give 540.1: sorted index 0.9 × 4049), so
    409 candidates (537..945)."""
    e = np.zeros((2, 45, 90), "float32")
    e[0, 2:43:2, 0:89:2] = np.arange(1, 946, dtype="float32").reshape(21, 45)
    p = _panel(panels, _prosp_ctx(errors=e), threshold_pct=90.0)
    assert p.view.threshold == pytest.approx(536.2974, abs=1e-3)
    assert len(p.view.table) == 409 and len(p.controls["selected"].options) == 201  # whole Moon + 200
    p.set(selected=300)
    assert p.state.selected == 300 and p.controls["selected"].value == 300 and p.error is None
    assert len(p.controls["selected"].options) == 202
    p.set(selected=410)
    assert "no candidate of rank 410" in p.readout.value
    assert p.state.selected == 0 and p.controls["selected"].value == 0


def test_panel_has_checkboxes_only_for_the_states_layer_fields(panels):
    p = _panel(panels, _prosp_ctx(layers=("TiO2", "FeO", "MgO")))  # no MgO field: no checkbox, always scored
    assert p.error is None and {"TiO2", "FeO"} <= set(p.controls) and "MgO" not in p.controls


def test_zoom_on_a_stack_stored_on_0_360_longitudes():
    """The same Moon stored on 0..360 longitudes (a convention candidate_regions supports): W lies at 202..206 E,
    i.e. -158..-154, and must be zoomed on the near-side map as on the -180..180 stack."""
    v = _view(_prosp_ctx(lon360=True), selected=1)
    assert v.table["n_pixels"].tolist() == [4, 1, 6]
    img, o = _image_opts(v)
    lo, hi = img.range("lon")
    assert o["xlim"] == pytest.approx((-162.0, -150.0)) or o["xlim"] == pytest.approx((198.0, 210.0))
    assert lo <= o["xlim"][0] < o["xlim"][1] <= hi


def test_threshold_slider_shows_the_threshold_the_map_is_drawn_with(panels):
    p = _panel(panels, _prosp_ctx(), threshold_pct=80.0)
    assert p.error is None and p.state.threshold_pct == 80.0
    assert p.controls["threshold_pct"].value == p.state.threshold_pct
    p = _panel(panels, _prosp_ctx(), min_pixels=60)  # beyond the slider's 1..50: the slider widens, not clamps
    assert p.controls["min_pixels"].value == 60 == p.state.min_pixels
    assert p.controls["min_pixels"].max == 60


def test_show_value_widens_a_range_slider_and_leaves_other_controls_alone():
    import ipywidgets as w

    from workbench.widgets import base

    r = base.range_slider("colour range", "m", -10.0, 10.0, 1.0)
    base.show_value(r, (-20.0, 5.0))
    assert (r.min, r.max, r.value) == (-20.0, 10.0, (-20.0, 5.0))
    c = w.Checkbox(value=False)
    base.show_value(c, True)
    assert c.value is True


# ------------------------------------------------------------------------------------------ topography panel
def _dem(values, px=5.0, coords=True):
    values = np.asarray(values, dtype=float)
    ny, nx = values.shape
    if not coords:
        return xr.DataArray(values, dims=("y", "x"))
    return xr.DataArray(values, dims=("y", "x"), coords={"y": (np.arange(ny) * px)[::-1], "x": np.arange(nx) * px},
                        attrs={"units": "m"})


def test_scene_pixel_size_within_1_percent_and_positive_finite_numbers_only():
    from workbench.widgets.topography import Scene

    dem = _dem(np.zeros((16, 16)))  # coordinates 5 m apart
    assert Scene(dem, 4.96).pixel_size == 4.96  # 0.8 % off
    with pytest.raises(InputError, match="pixel_size 5.06 m disagrees"):
        Scene(dem, 5.06)  # 1.2 % off
    bare = _dem(np.zeros((16, 16)), coords=False)
    assert Scene(bare, 5).pixel_size == 5.0
    for bad in (True, 0.0, -5.0, math.inf, math.nan, "5"):
        with pytest.raises(InputError, match="pixel_size must be a positive number of metres"):
            Scene(bare, bad)


def test_scene_crops_each_side_of_a_non_square_dem_to_whole_coarse_pixels():
    from workbench.widgets.topography import Scene

    s = Scene(_dem(np.arange(20 * 36, dtype=float).reshape(20, 36)))
    assert s.dem.shape == (16, 32) and s.coarse.shape == (2, 4)
    assert s.dem["x"].values[-1] == 155.0 and s.dem["y"].values[0] == 95.0
    assert s.coarse[0, 3] == pytest.approx(36 * 3.5 + 27.5)  # rows 0-7, columns 24-31 of 36 i + j


def _topo_scene():
    """16 × 16 truth 10 i + j m (i rows north to south, j columns), 5 m pixels: range 0..165 m."""
    from workbench.widgets.topography import Scene

    i, j = np.mgrid[0:16, 0:16]
    return Scene(_dem(10.0 * i + j)), (10.0 * i + j).astype(float)


def test_error_maps_keep_a_positive_half_width_for_a_perfect_reconstruction():
    from workbench.widgets.topography import reconstruction_metrics

    scene, truth = _topo_scene()
    metrics, lim = reconstruction_metrics(scene, {"upsample": truth.copy()})
    assert lim == 1e-6 and metrics["upsample"]["rmse_m"] == 0.0


def _topo_view(profile_row):
    """The pure view with stand-in reconstructions: upsample = truth + 2 m, network = truth - 1 m; an image dark
    in its four western columns (25 %)."""
    from workbench.widgets.topography import TopographyState, topography_view

    scene, truth = _topo_scene()
    j = np.arange(16)
    img = scene.dem.copy(data=np.where(np.broadcast_to(j, (16, 16)) < 4, 0.0, 0.5))
    img.attrs = {"units": "1"}
    res = {"upsample": truth + 2.0, "network": truth - 1.0}
    return topography_view(TopographyState(profile_row=profile_row, run_sfs=False), scene, (img, res))


def _titled(view):
    import holoviews as hv

    out = {}
    for im in view.layout.traverse(lambda x: x, [hv.Image]):
        o = hv.Store.lookup_options("bokeh", im, "plot").kwargs
        out[o["title"]] = (o["clim"], im.dimension_values(2))
    return out


def test_topography_view_draws_errors_as_reconstruction_minus_truth_on_one_symmetric_range():
    v = _topo_view(0.5)
    maps = _titled(v)
    clim, err = maps["upsample error (RMSE 2.00 m)"]
    assert clim == (-2.0, 2.0) and np.all(err == 2.0)  # too high by 2 m: a positive error
    clim, err = maps["network error (RMSE 1.00 m)"]
    assert clim == (-2.0, 2.0) and np.all(err == -1.0)
    for title in ("truth (dashed: profile row)", "coarse DEM (8x), bicubic", "network"):
        assert maps[title][0] == (0.0, 165.0), title  # every DEM on the truth's range
    assert "dark (cast + self-shadow): 25 % of the image" in v.readout
    assert "upsample: RMSE 2.00 m, slope error 0.00°<br>network: RMSE 1.00 m" in v.readout


@pytest.mark.parametrize("row", [1.5, -0.5, float("nan")])
def test_topography_profile_row_outside_0_1_is_refused_not_clipped_to_an_edge_row(row):
    from workbench.errors import InputError

    with pytest.raises(InputError, match=r"profile_row is a fraction of the image height in \[0, 1\]"):
        _topo_view(row)


@pytest.mark.parametrize(("row", "index"), [(0.5, 7), (1.0, 15), (0.0, 0)])
def test_topography_profile_row_is_a_fraction_of_the_height(row, index):
    import holoviews as hv

    v = _topo_view(row)
    curves = {c.label: c.dimension_values(1) for c in v.layout.traverse(lambda x: x, [hv.Curve])}
    np.testing.assert_array_equal(curves["truth"], 10.0 * index + np.arange(16))
    np.testing.assert_array_equal(curves["upsample"], 10.0 * index + np.arange(16) + 2.0)
    assert [float(d) for d in v.layout.traverse(lambda x: x.data, [hv.HLine])] == [75.0 - 5.0 * index] * 2


def test_sun_elevation_table_puts_rmse_and_slope_error_in_their_columns(monkeypatch):
    """Truth 10 i + j m on 5 m pixels. Stand-in reconstructions: upsample = truth + 2 m (RMSE 2, slope error 0),
    sfs = truth + 0.5 m per 5 m column eastwards (RMSE 0.5 sqrt(mean(j²))); the pixel size is read from the
    coordinates."""
    import workbench.widgets.topography as T

    calls = []
    _, truth = _topo_scene()
    j = np.arange(16, dtype=float)

    def fake(img, coarse, az, el, method, pixel_size):
        calls.append((az, el, method, pixel_size))
        return xr.DataArray(truth + (2.0 if method == "upsample" else 0.5 * j))

    monkeypatch.setattr(T, "reconstruct", fake)
    t = T.sun_elevation_table(_topo_scene()[0].dem, sun_azimuth=100.0, elevations=(20,), methods=("upsample", "sfs"))
    assert calls == [(100.0, 20.0, "upsample", 5.0), (100.0, 20.0, "sfs", 5.0)]
    assert t.loc[20.0, ("RMSE (m)", "upsample")] == pytest.approx(2.0)
    assert t.loc[20.0, ("slope error (deg)", "upsample")] == pytest.approx(0.0, abs=1e-12)
    assert t.loc[20.0, ("RMSE (m)", "sfs")] == pytest.approx(0.5 * math.sqrt(np.mean(j**2)))
    # gradients (0.2, 2) m/m and (0.3, 2) m/m everywhere: slopes atan(sqrt(4.04)) and atan(sqrt(4.09)), 0.1403° apart
    sfs_slope = math.degrees(math.atan(math.sqrt(4.09)) - math.atan(math.sqrt(4.04)))
    assert t.loc[20.0, ("slope error (deg)", "sfs")] == pytest.approx(sfs_slope, rel=1e-9)
    assert sfs_slope == pytest.approx(0.1403, abs=1e-4)


def test_polar_tile_of_size_zero_or_beyond_the_short_side_is_refused():
    from workbench.widgets.topography import polar_tile

    with pytest.raises(InputError, match="positive multiple of 8"):
        polar_tile(_dem(np.zeros((32, 32)), 1600.0), 0)
    with pytest.raises(InputError, match="a tile of 32 pixels does not fit in the 16 x 64 DEM"):
        polar_tile(_dem(np.zeros((16, 64)), 1600.0), 32)


def test_polar_tile_view_checks_both_sides_and_scores_against_the_tile(monkeypatch):
    """Tile 16 i + j (16 × 16, 1600 m): 8 × 8 block means 59.5, 67.5, 187.5, 195.5; the stand-in reconstruction
    is the tile + 3 m, RMSE 3 m; the truth map spans 0..255 m."""
    import holoviews as hv

    import workbench.widgets.topography as T

    with pytest.raises(InputError, match="sides a multiple of 8"):
        T.polar_tile_view(_dem(np.zeros((16, 12)), 1600.0), 90.0, 10.0)
    seen = []

    def fake(img, coarse, az, el, method):
        seen.append((az, el, method))
        return tile + 3.0

    monkeypatch.setattr(T, "reconstruct", fake)
    i, j = np.mgrid[0:16, 0:16]
    tile = _dem(16.0 * i + j, 1600.0)
    v = T.polar_tile_view(tile, 90.0, 10.0, methods=("upsample",))
    assert seen == [(90.0, 10.0, "upsample")]
    np.testing.assert_array_equal(v.coarse.values, [[59.5, 67.5], [187.5, 195.5]])
    assert v.rmse_m == {"upsample": pytest.approx(3.0)}
    clims = {hv.Store.lookup_options("bokeh", im, "plot").kwargs["title"]: hv.Store.lookup_options(
        "bokeh", im, "plot").kwargs["clim"] for im in v.layout.traverse(lambda x: x, [hv.Image])}
    assert clims["LOLA truth"] == (0.0, 255.0) and clims["upsample: RMSE 3.0 m"] == (0.0, 255.0)


def test_polar_tile_row_offset_moves_towards_minus_y_whatever_the_row_order():
    from workbench.widgets.topography import polar_tile

    dem = _dem(np.zeros((32, 32)), 1600.0)
    north_up = polar_tile(dem, 8, (4, 0))
    south_up = polar_tile(dem.isel(y=slice(None, None, -1)), 8, (4, 0))
    assert float(south_up["y"].max()) == float(north_up["y"].max())  # the same ground, whichever way it is stored


# ------------------------------------------------------------------------------------------------------ demo
def _notebook_dir(tmp_path, monkeypatch):
    from workbench import demo

    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    for name in ("01_beta", "00_alpha", "x_scratch", "1_short"):
        (nbdir / f"{name}.ipynb").write_text("{}")
    monkeypatch.setattr(demo, "NOTEBOOK_DIR", nbdir)
    return nbdir


def test_curated_notebooks_match_only_as_a_substring(tmp_path, monkeypatch):
    from workbench import demo

    _notebook_dir(tmp_path, monkeypatch)
    assert [p.stem for p in demo.curated_notebooks()] == ["00_alpha", "01_beta"]
    assert [p.stem for p in demo.curated_notebooks("beta")] == ["01_beta"]
    with pytest.raises(InputError, match="no curated notebook name contains 'gamma'; the notebooks are: "
                                         "00_alpha, 01_beta"):
        demo.run_demo(tmp_path / "out", only="gamma")


def _fake_client(monkeypatch, exc=None):
    import nbclient

    calls = []

    class Client:
        def __init__(self, nb, timeout, kernel_name, resources):
            calls.append({"timeout": timeout, "kernel": kernel_name, "path": resources["metadata"]["path"]})

        def execute(self):
            calls[-1]["probe"] = os.environ.get("WB_DEMO_PROBE")
            if exc is not None:
                raise exc

    monkeypatch.setattr(nbclient, "NotebookClient", Client)
    return calls


def _tiny_notebook(tmp_path) -> Path:
    import nbformat

    path = tmp_path / "nbs" / "00_tiny.ipynb"
    path.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    return path


def test_execute_notebook_runs_in_its_folder_with_the_env_and_restores_it(tmp_path, monkeypatch):
    from workbench.demo import execute_notebook

    monkeypatch.delenv("WB_DEMO_PROBE", raising=False)
    calls = _fake_client(monkeypatch)
    path = _tiny_notebook(tmp_path)
    nb, err = execute_notebook(path, timeout=7, env={"WB_DEMO_PROBE": "on"})
    assert err is None and nb.cells[0].source == "1"
    assert calls == [{"timeout": 7, "kernel": "python3", "path": str(path.parent), "probe": "on"}]
    assert "WB_DEMO_PROBE" not in os.environ


def test_execute_notebook_reports_the_last_line_of_a_cell_error_and_the_type_of_others(tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    from workbench.demo import execute_notebook

    path = _tiny_notebook(tmp_path)
    _fake_client(monkeypatch, CellExecutionError("Traceback (most recent call last):\n  line 1\nValueError: boom",
                                                 "ValueError", "boom"))
    assert execute_notebook(path)[1] == "ValueError: boom"
    _fake_client(monkeypatch, RuntimeError("Kernel died"))
    assert execute_notebook(path)[1] == "RuntimeError: Kernel died"


@pytest.mark.parametrize("timeout", [0, -1, True, "60"])
def test_run_demo_refuses_a_timeout_that_is_not_a_positive_number(tmp_path, monkeypatch, timeout):
    from workbench import demo

    _notebook_dir(tmp_path, monkeypatch)  # stand-ins: no real notebook may run, whatever the code does

    def must_not_run(*args, **kwargs):
        raise AssertionError("a notebook was started")

    monkeypatch.setattr(demo, "execute_notebook", must_not_run)
    monkeypatch.setattr(demo, "_export_html", must_not_run)
    with pytest.raises(InputError, match="timeout must be a positive number of seconds"):
        demo.run_demo(tmp_path / "out", only="00", timeout=timeout)
    assert not (tmp_path / "out").exists()


def _fake_run(tmp_path, monkeypatch, fast, fail_export=()):
    """Stand-ins: 00_alpha runs (2.345 s) and reports {"auc": 0.91234}; 01_beta fails (0.04 s) with no figures."""
    from workbench import demo
    from workbench.report import ENV_VAR

    _notebook_dir(tmp_path, monkeypatch)
    seen = []

    def execute(path, timeout=900, env=None):
        seen.append((path.stem, timeout, dict(env)))
        if path.stem == "00_alpha":
            (Path(env[ENV_VAR]) / "00_alpha.json").write_text(json.dumps({"auc": 0.91234}))
            return "nb", None
        return "nb", "ValueError: boom"

    def export(nb, path):
        if path.stem in fail_export:
            raise RuntimeError("offline check failed")
        path.write_text("page")

    clock = iter([0.0, 2.345, 10.0, 10.04])
    monkeypatch.setattr(demo, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(demo, "execute_notebook", execute)
    monkeypatch.setattr(demo, "_export_html", export)
    out = tmp_path / "a" / "demo"
    return demo.run_demo(out, only="_", fast=fast, timeout=42), seen, out


def test_run_demo_records_each_notebook_and_writes_the_summary(tmp_path, monkeypatch):
    from workbench.report import ENV_VAR

    results, seen, out = _fake_run(tmp_path, monkeypatch, fast=True)
    assert results == [
        {"notebook": "00_alpha", "ok": True, "seconds": 2.3, "html": "00_alpha.html", "figures": {"auc": 0.91234},
         "error": None},
        {"notebook": "01_beta", "ok": False, "seconds": 0.0, "html": "01_beta.html", "figures": {},
         "error": "ValueError: boom"},
    ]
    assert [(s, t, set(e)) for s, t, e in seen] == [("00_alpha", 42, {ENV_VAR, "WORKBENCH_FAST"}),
                                                    ("01_beta", 42, {ENV_VAR, "WORKBENCH_FAST"})]
    assert seen[0][2]["WORKBENCH_FAST"] == "1"
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {r["notebook"]: {k: v for k, v in r.items() if k != "notebook"} for r in results}
    assert "notebook" not in summary["00_alpha"] and (out / "index.html").exists()


@pytest.mark.parametrize(("fast", "flag"), [(False, "0"), (None, None)])
def test_run_demo_sets_the_fast_flag_only_when_given(tmp_path, monkeypatch, fast, flag):
    _, seen, _ = _fake_run(tmp_path, monkeypatch, fast=fast)
    assert seen[0][2].get("WORKBENCH_FAST") == flag


def test_a_failed_export_does_not_hide_the_notebooks_own_error(tmp_path, monkeypatch):
    results, _, _ = _fake_run(tmp_path, monkeypatch, fast=True, fail_export=("00_alpha", "01_beta"))
    assert results[0]["error"] == "HTML export failed: RuntimeError: offline check failed" and not results[0]["ok"]
    assert results[1]["error"] == "ValueError: boom" and results[1]["html"] is None


def test_format_table_known_answer():
    from workbench.demo import format_table

    results = [
        {"notebook": "00_tour", "ok": True, "seconds": 12.34, "error": None,
         "figures": {"a": 1.234567, "b": 2, "c": {"x": 0.5, "y": 1 / 3, "z": 3, "w": 4}, "d": "s", "e": 9}},
        {"notebook": "01_calibration", "ok": False, "seconds": 3.0, "figures": {}, "error": "ValueError: boom"},
    ]
    assert format_table(results).split("\n") == [
        "notebook" + " " * 15 + "status " + " seconds  headline figures",
        "00_tour" + " " * 16 + "ok     " + "    12.3  a=1.235, b=2, c={x: 0.5, y: 0.3333, z: 3}, d=s",
        "01_calibration" + " " * 9 + "FAIL   " + "     3.0  ",
        " " * 22 + " error: ValueError: boom",
    ]
