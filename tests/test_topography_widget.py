"""Tests of the notebook 03 panel (workbench.widgets.topography)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.synth.terrain import make_terrain
from workbench.topography.model import weights_paths

pytestmark = [
    pytest.mark.slow,  # imports holoviews, bokeh and torch: several seconds on a shared 2-core machine
    pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet"),
]


def test_topography_view_is_a_pure_function_of_the_state():
    from workbench.widgets.topography import Scene, TopographyState, topography_view

    scene = Scene(make_terrain(52, 5.0, seed=10_001), 5.0)
    assert scene.dem.shape == (48, 48) and scene.coarse.shape == (6, 6)  # cropped to a multiple of 8
    state = TopographyState(sun_azimuth=200.0, sun_elevation=20.0, run_sfs=False)
    a = topography_view(state, scene)
    b = topography_view(state, scene)
    assert set(a.results) == {"upsample", "network"}
    np.testing.assert_allclose(a.results["network"], b.results["network"])
    assert "RMSE" in a.readout and "shadowed" in a.readout
    assert a.image.attrs["sun_elevation"] == 20.0
    c = topography_view(TopographyState(sun_azimuth=200.0, sun_elevation=20.0, run_sfs=True), scene)
    assert set(c.results) == {"upsample", "network", "sfs", "network_sfs"} and "network_sfs" in c.readout


def test_panel_updates_once_per_change():
    from workbench.widgets.topography import Scene, TopographyPanel, TopographyState

    panel = TopographyPanel(Scene(make_terrain(48, 5.0, seed=10_002), 5.0), TopographyState(run_sfs=False))
    n = panel.n_computes
    panel.controls["sun_elevation"].value = 5.0
    assert panel.n_computes == n + 1 and panel.error is None
    panel.cleanup()


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
