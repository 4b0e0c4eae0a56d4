"""Tests of the notebook 03 panel (workbench.widgets.topography)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.synth.terrain import make_terrain
from workbench.topography.model import weights_paths

pytestmark = pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
#: the panel tests build the whole panel (holoviews, bokeh, torch): several seconds on a shared 2-core machine
slow = pytest.mark.slow


@slow
def test_topography_view_is_a_pure_function_of_the_state():
    from workbench.widgets.topography import Scene, TopographyState, topography_view

    scene = Scene(make_terrain(52, 5.0, seed=10_001), 5.0)
    assert scene.dem.shape == (48, 48) and scene.coarse.shape == (6, 6)  # cropped to a multiple of 8
    state = TopographyState(sun_azimuth=200.0, sun_elevation=20.0, run_sfs=False)
    a = topography_view(state, scene)
    b = topography_view(state, scene)
    assert set(a.results) == {"upsample", "network"}
    np.testing.assert_allclose(a.results["network"], b.results["network"])
    assert "RMSE" in a.readout and "dark (cast + self-shadow)" in a.readout
    assert a.image.attrs["sun_elevation"] == 20.0
    c = topography_view(TopographyState(sun_azimuth=200.0, sun_elevation=20.0, run_sfs=True), scene)
    assert set(c.results) == {"upsample", "network", "sfs", "network_sfs"} and "network_sfs" in c.readout


@slow
def test_panel_updates_once_per_change():
    from workbench.widgets.topography import Scene, TopographyPanel, TopographyState

    panel = TopographyPanel(Scene(make_terrain(48, 5.0, seed=10_002), 5.0), TopographyState(run_sfs=False))
    n = panel.n_computes
    panel.controls["sun_elevation"].value = 5.0
    assert panel.n_computes == n + 1 and panel.error is None
    panel.cleanup()


@slow
def test_profile_row_reslices_and_sfs_switch_redraws():
    from bokeh.plotting import figure

    from workbench.widgets import topography as T

    panel = T.TopographyPanel(T.Scene(make_terrain(48, 5.0, seed=10_002), 5.0), T.TopographyState(run_sfs=True))
    calls = []
    real = T.reconstruct_all
    T.reconstruct_all = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        panel.controls["profile_row"].value = 0.3  # used to re-render and re-run every method (4 s a move)
        assert calls == [] and panel.error is None
        panel.controls["run_sfs"].value = False
        assert calls == [1]
    finally:
        T.reconstruct_all = real
    # with SfS off there are 7 plots, not 11: the live widget is redrawn instead of failing inside HoloViews
    assert len(list(panel._plot_widget._model.select({"type": figure}))) == 7 and panel.error is None
    panel.cleanup()


@slow
def test_profile_row_is_marked_on_the_maps_and_moving_it_recomputes_no_metric():
    import holoviews as hv

    from workbench.widgets import topography as T

    scene = T.Scene(make_terrain(48, 5.0, seed=10_003), 5.0)
    panel = T.TopographyPanel(scene, T.TopographyState(run_sfs=False, profile_row=0.25))

    def marks():
        lines = panel._pipe.data.traverse(lambda el: el, [hv.HLine])
        return [float(el.data) for el in lines]

    assert marks() == [float(scene.dem["y"].values[int(0.25 * 47)])] * 2  # on the image and the truth
    calls = []
    real = T.reconstruction_metrics
    T.reconstruction_metrics = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        panel.controls["profile_row"].value = 0.75  # only the profile is redrawn
        assert calls == [] and panel.error is None
        assert marks() == [float(scene.dem["y"].values[int(0.75 * 47)])] * 2
        panel.controls["sun_elevation"].value = 20.0  # a new sun: new reconstructions, scored once
        assert calls == [1] and panel.error is None
    finally:
        T.reconstruction_metrics = real
    panel.cleanup()


def _polar(n: int = 100):
    import xarray as xr

    c = (np.arange(n) - n / 2 + 0.5) * 1600.0
    z = np.add.outer(np.linspace(0, 500, n), np.linspace(0, 300, n))
    return xr.DataArray(z.astype("float32"), dims=("y", "x"), coords={"y": c[::-1], "x": c}, name="elevation",
                        attrs={"units": "m", "crs": "IAU_2015:30135"})


def test_polar_tile_stays_inside_the_dem_or_names_the_range():
    from workbench.errors import InputError
    from workbench.widgets.topography import polar_tile

    dem = _polar(100)
    t = polar_tile(dem, 32, 10)
    assert t.shape == (32, 32) and t.dtype == np.float64 and t.attrs["units"] == "m"
    assert float(t["y"][0]) == float(dem["y"][50 - 16 + 10]) and float(t["x"][0]) == float(dem["x"][44])
    assert polar_tile(dem, 32, 34).shape == polar_tile(dem, 32, -34).shape == (32, 32)  # the two ends
    assert float(polar_tile(dem, 32, (0, -34))["x"][0]) == float(dem["x"][0])
    with pytest.raises(InputError, match="from -34 to 34"):
        polar_tile(dem, 32, 35)  # used to fail inside xarray's coarsen on a 13-row tile
    with pytest.raises(InputError, match="multiple of 8"):
        polar_tile(dem, 30)
    with pytest.raises(InputError, match="does not fit"):
        polar_tile(dem, 104)
    with pytest.raises(InputError, match="whole number"):
        polar_tile(dem, 32, 2.5)


@slow
def test_polar_tile_view_scores_each_method_against_the_tile():
    import holoviews as hv

    from workbench.widgets.topography import polar_tile, polar_tile_view

    tile = polar_tile(_polar(64), 32, 0)
    v = polar_tile_view(tile, 60.0, 20.0, methods=("upsample",))
    assert set(v.results) == {"upsample"} and v.coarse.shape == (4, 4) and v.coarse.attrs["units"] == "m"
    relief = float(tile.max() - tile.min())
    assert 0 < v.rmse_m["upsample"] < 0.1 * relief  # a plane is rebuilt closely from its block means
    assert v.rmse_m["upsample"] == pytest.approx(float(np.sqrt(((v.results["upsample"] - tile) ** 2).mean())))
    assert isinstance(v.layout, hv.Layout) and len(v.layout) == 3


@slow
def test_sun_elevation_table_keeps_every_quantity_with_units():
    from workbench.widgets.topography import sun_elevation_table

    dem = make_terrain(48, 5.0, seed=10_003)
    t = sun_elevation_table(dem, 5.0, elevations=(5.0, 30.0), methods=("upsample", "sfs"))
    assert t.index.name == "sun elevation (deg)" and list(t.index) == [5.0, 30.0]
    assert list(t.columns) == [("RMSE (m)", "upsample"), ("RMSE (m)", "sfs"), ("slope error (deg)", "upsample"),
                               ("slope error (deg)", "sfs"), ("cast shadow (%)", "")]
    assert t.loc[5.0, ("cast shadow (%)", "")] > t.loc[30.0, ("cast shadow (%)", "")]  # low sun, long shadows
    assert t.loc[5.0, ("RMSE (m)", "upsample")] == pytest.approx(t.loc[30.0, ("RMSE (m)", "upsample")])


# ------------------------------------------------------------------ review of the topography package (2026-11)
def test_sun_elevation_table_does_not_depend_on_the_row_order():
    """A DEM stored south-up (y ascending) was passed on as a plain array read north-up: the sun was
    mirrored (SfS RMSE 3.47 m instead of 1.48 m)."""
    import pandas as pd

    from workbench.widgets.topography import sun_elevation_table

    dem = make_terrain(48, 5.0, seed=10_042, sfd_slope=1.6, saturation=0.3)
    kw = dict(sun_azimuth=135.0, elevations=(10.0,), methods=("upsample", "sfs"))
    north = sun_elevation_table(dem, 5.0, **kw)
    south = sun_elevation_table(dem.isel(y=slice(None, None, -1)), 5.0, **kw)
    pd.testing.assert_frame_equal(south, north, rtol=1e-6)


def test_scene_pixel_size_comes_from_the_coordinates_and_must_agree_with_them():
    """Coordinates 5 m apart with pixel_size=10 used to run silently with 10 m (slope errors halved)."""
    import xarray as xr

    from workbench.errors import InputError
    from workbench.widgets.topography import Scene

    dem = make_terrain(48, 5.0, seed=10_042)  # coordinates 5 m apart
    with pytest.raises(InputError, match="pixel_size 10 m disagrees with the scene DEM's coordinates, which are 5 m"):
        Scene(dem, 10.0)
    assert Scene(dem).pixel_size == 5.0 and Scene(dem, 5.02).pixel_size == 5.02  # within 1 %
    bare = xr.DataArray(dem.values, dims=("y", "x"))  # no coordinates: the given pixel size is all there is
    assert Scene(bare, 5.0).pixel_size == 5.0
    with pytest.raises(InputError, match="give pixel_size"):
        Scene(bare)


def test_table_counts_cast_shadows_and_the_panel_calls_dark_pixels_dark():
    """The table's "shadowed (%)" counted every black pixel (cast and self shadow) as cast shadow."""
    from workbench.synth.render import cast_shadows, render
    from workbench.widgets.topography import sun_elevation_table

    dem = make_terrain(48, 5.0, seed=10_042, sfd_slope=1.6, saturation=0.3)
    t = sun_elevation_table(dem, 5.0, elevations=(5.0,), methods=("upsample",))
    cast = 100.0 * float(cast_shadows(dem, 135.0, 5.0).mean())
    dark = 100.0 * float((render(dem, 135.0, 5.0).values == 0).mean())
    assert cast < dark  # faces turned from the sun are dark without a caster
    assert t.loc[5.0, ("cast shadow (%)", "")] == pytest.approx(cast)


def _flat_scene(n: int = 16, px: float = 10.0):
    import xarray as xr

    from workbench.widgets.topography import Scene

    c = np.arange(n) * px
    dem = xr.DataArray(np.zeros((n, n)), dims=("y", "x"), coords={"y": c[::-1], "x": c}, attrs={"units": "m"})
    return Scene(dem, px)


def test_reconstruction_metrics_score_each_method_against_the_truth():
    """Worked by hand on a flat 16 × 16 truth at 10 m: a +2 m offset has RMSE 2 m and no slope error; a
    plane rising 0.1 m per metre eastwards has slope error atan(0.1) = 5.7106° everywhere and RMSE
    sqrt(mean((j · 1 m)²)) over columns j = 0..15; the colour half-width is the larger 99th-percentile |error|."""
    from workbench.widgets.topography import reconstruction_metrics

    scene = _flat_scene()
    j = np.arange(16, dtype=float)
    tilt = np.broadcast_to(j, (16, 16)).copy()  # 0.1 m/m × 10 m per column
    metrics, lim = reconstruction_metrics(scene, {"offset": np.full((16, 16), 2.0), "tilt": tilt})
    ramp = np.arange(256.0).reshape(16, 16)  # errors 0..255 m: the 99th percentile interpolates to 252.45 m
    assert reconstruction_metrics(scene, {"offset": np.full((16, 16), 2.0), "ramp": ramp})[1] == pytest.approx(252.45)
    assert metrics["offset"]["rmse_m"] == pytest.approx(2.0)
    assert metrics["offset"]["slope_error_deg"] == pytest.approx(0.0, abs=1e-12)
    assert metrics["tilt"]["rmse_m"] == pytest.approx(np.sqrt(np.mean(j**2)))  # 8.80 m
    assert metrics["tilt"]["slope_error_deg"] == pytest.approx(5.710593, abs=1e-5)
    assert lim == pytest.approx(15.0)  # the 99th percentile of 16 copies of 0..15 m falls among the 15s


def test_panel_recomputes_for_a_new_sun_or_sfs_switch_only_and_keeps_eight(monkeypatch):
    """The panel's cache key is the sun (azimuth, elevation) and the SfS switch, not the profile row; it keeps
    the last eight settings, so a ninth drops the oldest (the compute is called directly: no plot is drawn)."""
    from types import SimpleNamespace

    from workbench.widgets import topography as T

    calls = []
    monkeypatch.setattr(T, "reconstruct_all", lambda scene, st: calls.append(
        (st.sun_azimuth, st.sun_elevation, st.run_sfs)) or (None, {}))
    monkeypatch.setattr(T, "reconstruction_metrics", lambda scene, res: ({}, 1.0))
    monkeypatch.setattr(T, "topography_view", lambda st, scene, recon, scores: SimpleNamespace(
        layout=("layout", st.profile_row), readout="r"))
    panel = T.TopographyPanel.__new__(T.TopographyPanel)  # compute alone, without widgets
    panel.scene, panel._recon = _flat_scene(), {}
    S = T.TopographyState
    assert panel.compute(S(135.0, 10.0, 0.5, True)) == (("layout", 0.5), "r")
    panel.compute(S(135.0, 10.0, 0.9, True))  # the profile row alone: cached
    assert calls == [(135.0, 10.0, True)]
    for st in (S(140.0, 10.0), S(135.0, 11.0), S(135.0, 10.0, run_sfs=False)):
        panel.compute(st)
    assert calls[1:] == [(140.0, 10.0, True), (135.0, 11.0, True), (135.0, 10.0, False)]
    for el in range(20, 24):  # 4 + 4 = 8 kept; the first is still there
        panel.compute(S(135.0, float(el)))
    panel.compute(S(135.0, 10.0, 0.1, True))
    assert len(calls) == 8 and len(panel._recon) == 8
    panel.compute(S(135.0, 30.0))  # a ninth setting drops the oldest (135, 10, SfS on)
    panel.compute(S(135.0, 10.0, 0.2, True))
    assert len(calls) == 10 and calls[-1] == (135.0, 10.0, True) and len(panel._recon) == 8
