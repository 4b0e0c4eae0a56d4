"""The notebook-04 panel: one compute per change, reset, split masks, SPA profile view."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench import geo
from workbench.widgets import asymmetry as W


@pytest.fixture(scope="module")
def ds():
    t = geo.global_template(0.5)  # 2-degree cells keep the panel tests fast
    lat2, lon2 = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    rng = np.random.default_rng(0)
    mg = 63.0 - 3.0 * np.cos(np.deg2rad(lon2)) + rng.normal(size=lat2.shape)
    feo = 5.0 + 5.0 * (geo.great_circle_distance(lat2, lon2, -53, -169) < 700) + rng.normal(size=lat2.shape) * .3
    terr = xr.DataArray(np.zeros(lat2.shape, "int8"), coords=t.coords, dims=t.dims,
                        attrs={"flag_values": [0, 1], "flag_meanings": "feldspathic_highlands mare"})
    return xr.Dataset({"mg_number": t.copy(data=mg).assign_attrs(units="1"),
                       "FeO": t.copy(data=feo).assign_attrs(units="wt%"), "terrane": terr})


def test_view_recovers_the_planted_near_far_difference(ds):
    v = W.asymmetry_view(ds, W.AsymmetryState(), n_boot=100, n_perm=199)
    # planted -3 cos(lon): near - far = -3 * 2 * (2/pi)
    expected = -12.0 / np.pi
    assert v.comparison["ci95"][0] < expected < v.comparison["ci95"][1]
    assert list(v.table.index) == ["near", "far"] and "p =" in v.readout


def test_split_masks_cover_the_sphere(ds):
    for split in W.SPLITS:
        m = W.split_masks(ds, W.AsymmetryState(split=split, pole_lat=20.0, pole_lon=40.0))
        a, b = m.values()
        assert bool((a ^ b).all())


def test_panel_updates_once_per_change_and_resets(ds):
    p = W.AsymmetryPanel(ds, n_boot=60, n_perm=99)
    n0 = p.n_computes
    p.set(split="north/south")
    p.set(variable="FeO")
    assert p.n_computes == n0 + 2
    assert p.state.threshold == pytest.approx(float(ds["FeO"].median()), abs=1e-3)
    p.reset()
    assert p.state == W.AsymmetryState()
    t = p.controls["threshold"]
    assert t.value == 65.0 and t.min < 65.0 < t.max < 100  # the slider is back on Mg#'s range
    p.cleanup()
    q = W.AsymmetryPanel(ds, n_boot=60, n_perm=99, variable="FeO")  # starts on FeO: FeO's range and median
    t = q.controls["threshold"]
    assert t.max < 20 and t.min < q.state.threshold < t.max
    assert q.state.threshold == pytest.approx(float(ds["FeO"].median()), abs=1e-3)
    q.cleanup()


def test_spa_profile_view_renders(ds):
    import holoviews as hv

    from workbench.analysis import spa

    res = spa.spa_boundaries(ds, variables={"FeO": 1}, max_km=1500.0, n_sectors=6, n_boot=20)
    assert isinstance(W.spa_profile_view(res), hv.Layout)
    assert float(res["FeO"]["change_points"]["radius_km"][0]) == pytest.approx(700.0, abs=60.0)


def test_switching_variable_redraws_colour_bar_distributions_and_slider_units(ds):
    from bokeh.models import ColorBar, Span
    from bokeh.plotting import figure

    p = W.AsymmetryPanel(ds, n_boot=60, n_perm=99)
    p.set(split="north/south")
    spans = [s for f in p._plot_widget._model.select({"type": figure}) for s in f.select({"type": Span})]
    assert [(s.dimension, s.location) for s in spans] == [("width", 0.0)]  # the ±90° lines used to stay
    p.set(variable="FeO")
    bars = [f.select_one({"type": ColorBar}) for f in p._plot_widget._model.select({"type": figure})]
    assert any("FeO" in b.title for b in bars if b is not None)  # used to keep Mg#'s title
    dist = list(p._dist_widget._model.select({"type": figure}))[0]
    assert dist.x_range.end < 40  # FeO's axis, not Mg#'s 34–79
    assert p.controls["threshold"].description.endswith(f"({ds['FeO'].attrs['units']})")
    p.cleanup()
