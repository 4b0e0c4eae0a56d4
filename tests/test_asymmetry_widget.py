"""The notebook-04 panel: one compute per change, reset, split masks, SPA profile view."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench import geo
from workbench.errors import InputError
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


def test_comparison_table_rounds_to_the_interval_and_carries_units():
    r = {"a": "near", "b": "far", "value": -1709.473992, "ci95": [-1994.925126, -1393.701217], "p_value": 0.002,
         "cohens_d": -0.792884, "cles": 0.280734, "n_units_a": 324, "n_units_b": 324, "units": "m"}
    mg = {**r, "a": "far", "b": "near", "value": 6.379546, "ci95": [5.762951, 6.92609], "units": "1"}
    t = W.comparison_table([r])
    assert list(t.columns[:4]) == ["a", "b", "a − b (m)", "95% CI (m)"]
    row = t.iloc[0]
    assert row["a − b (m)"] == -1709 and row["95% CI (m)"] == "[-1995, -1394]"
    assert row["Cohen's d"] == -0.79 and row["P(a > b)"] == 0.28 and row["blocks a"] == 324
    m = W.comparison_table([mg]).iloc[0]  # dimensionless: no unit; a ~1-wide interval: two decimals
    assert m["a − b"] == 6.38 and m["95% CI"] == "[5.76, 6.93]"
    assert "a − b (Mg#)" in W.comparison_table([mg], units="Mg#").columns
    with pytest.raises(InputError):
        W.comparison_table([])


def test_readout_has_one_precision_and_no_stray_space(ds):
    import re

    v = W.asymmetry_view(ds, W.AsymmetryState(), n_boot=100, n_perm=99)
    head = v.readout.split("<br>")[0]
    assert " ," not in head  # Mg# is dimensionless: the value used to be followed by "  ,"
    numbers = re.findall(r"-?\d+\.\d+", head.split("block-permutation")[0])
    assert len(numbers) == 3 and len({len(n.split(".")[1]) for n in numbers}) == 1  # value and CI alike
    e = W.asymmetry_view(ds.assign(FeO=ds["FeO"].assign_attrs(units="wt%")), W.AsymmetryState(variable="FeO",
                         threshold=6.0), n_boot=100, n_perm=99)
    assert re.search(r"= -?\d+(\.\d+)? wt%, 95% CI \[.*\] wt%", e.readout)


def test_spa_profile_axis_says_mg_number(ds):
    from workbench.analysis import spa

    res = spa.spa_boundaries(ds, variables={"mg_number": 1, "FeO": 1}, max_km=1500.0, n_sectors=6, n_boot=20)
    labels = [el.get(0).vdims[0].label for el in W.spa_profile_view(res)]
    assert labels == ["Mg#", "FeO (wt%)"]  # it used to read "mg_number (1)"


def test_headline_figures_and_density_table():
    import pandas as pd

    from workbench.analysis import craters

    stats = xr.Dataset({"mean": ("region", [-1103.5, 606.0]), "mean_ci_low": ("region", [-1219.0, 331.1]),
                        "mean_ci_high": ("region", [-991.9, 856.9])}, coords={"region": ["near", "far"]})
    sens = pd.DataFrame({"block_deg": [np.nan, 10.0], "width_vs_iid": [1.0, 37.87]})
    cp = lambda r: {"change_points": xr.Dataset({"radius_km": ("change", r)}, coords={"change": range(len(r))})}  # noqa: E731
    spa_res = {"FeO": cp([650.0]), "mg_number": cp([650.0, 1100.0])}
    mg = {"value": 6.379546, "ci95": [5.762951, 6.92609]}
    rng = np.random.default_rng(0)
    cat = pd.DataFrame({"lon": rng.uniform(-180, 180, 400), "lat": np.degrees(np.arcsin(rng.uniform(-1, 1, 400))),
                        "diameter_km": rng.uniform(20, 60, 400)})
    dens = {n: craters.crater_density(c, lat_range=craters.CATALOGUE_LAT_COVERAGE[n], n_boot=200)
            for n, c in (("craters_head2010", cat), ("craters_lroc_5_20km", cat[cat["lat"].abs() <= 60]))}
    f = W.headline_figures(stats, {"p_value": 0.002}, sens, mg, spa_res, dens)
    assert f["lola_near_mean_km"] == -1.103 and f["lola_far_ci95_km"] == [0.331, 0.857]
    assert f["block_ci_vs_iid_width_10deg"] == 37.9 and f["synth_far_minus_near_highland_mg_ci95"] == [5.76, 6.93]
    assert f["synth_spa_fe_boundary_km"] == 650 and f["synth_spa_mg_ring_km"] == [650, 1100]
    assert f["head2010_density_near"] == round(float(dens["craters_head2010"]["density"].sel(region="near")), 1)
    assert "head2010_density_near" not in W.headline_figures(stats, {"p_value": 0.002}, sens, mg, spa_res, {})
    with pytest.raises(InputError, match="10°"):
        W.headline_figures(stats, {"p_value": 0.002}, sens.iloc[:1], mg, spa_res)
    t = craters.density_table(dens)
    assert t.index.names == ["catalogue", "region"] and len(t) == 8
    assert "density (per 10⁶ km²)" in t.columns
    d = dens["craters_head2010"].sel(region="near")
    expected = float((d["density_block_ci_high"] - d["density_block_ci_low"])
                     / (d["density_ci_high"] - d["density_ci_low"]))
    assert t.loc[("craters_head2010", "near"), "block / Poisson CI width"] == pytest.approx(expected)
