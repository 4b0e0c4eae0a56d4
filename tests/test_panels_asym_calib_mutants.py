"""Known-answer tests for the notebook-01 and notebook-04 panel functions (from a mutation review).

Each test pins a figure the panels show (table cells, readout numbers, colour ranges, the regions a
control selects, the arguments handed to the simulator) to a value worked out by hand, so that a
wrong variable, a dropped control or a swapped region cannot pass unnoticed. No data files needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import geo
from workbench.errors import InputError
from workbench.widgets import asymmetry as W
from workbench.widgets import calibration as wc

R_KM = geo.MOON_RADIUS_KM
QUARTER_SPHERE_1E6 = np.pi * R_KM**2 / 1e6  # area of a quarter of the sphere, 10⁶ km²


# ---------------------------------------------------------------------------------------------------
# asymmetry (notebook 04)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sky():
    """2° global grid; x = (1 + sin lat)² so that, by area, u = sin lat is uniform on [-1, 1] in each
    near/far hemisphere: mean x = 4/3, median 1, q05 = 0.1² = 0.01, q95 = 1.9² = 3.61, and x > 2.25
    exactly where lat > 30° (a quarter of each hemisphere's area). Terrane: mare north of the equator."""
    t = geo.global_template(0.5)
    lat2, _ = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    x = (1.0 + np.sin(np.deg2rad(lat2))) ** 2
    terr = xr.DataArray((lat2 > 0).astype("int8"), coords=t.coords, dims=t.dims,
                        attrs={"flag_values": [0, 1], "flag_meanings": "feldspathic_highlands mare"})
    return xr.Dataset({"x": t.copy(data=x).assign_attrs(units="1"),
                       "xw": t.copy(data=x).assign_attrs(units="wt%"), "terrane": terr})


def _cell(ds, lat, lon):
    return {"lat": ds["lat"].sel(lat=lat, method="nearest"), "lon": ds["lon"].sel(lon=lon, method="nearest")}


def test_interval_decimals_of_a_zero_or_missing_width_falls_back_to_two():
    assert W.interval_decimals(0.0) == 2 and W.interval_decimals(float("nan")) == 2
    assert W.interval_decimals(-1.0) == 2


def test_comparison_table_blocks_and_p_value_come_from_their_own_fields():
    r = {"a": "far", "b": "near", "value": 6.38, "ci95": [5.76, 6.93], "p_value": 0.0123456, "cohens_d": 0.8,
         "cles": 0.7, "n_units_a": 162, "n_units_b": 81}
    row = W.comparison_table([r]).iloc[0]
    assert row["blocks a"] == 162 and row["blocks b"] == 81
    assert row["p (block permutation)"] == 0.0123  # three significant digits
    assert row["Cohen's d"] == 0.8 and row["P(a > b)"] == 0.7



def test_a_p_value_at_the_permutation_floor_is_shown_as_a_bound():
    """No permutation reached the difference: p = 1/(499 + 1) = 0.002 is the smallest the test can give, shown
    '≤ 0.002'; one step above it (2/500) is a value; a result without n_perm shows the value."""
    r = {"a": "far", "b": "near", "value": 6.38, "ci95": [5.76, 6.93], "p_value": 0.002, "n_perm": 499,
         "cohens_d": 0.8, "cles": 0.7, "n_units_a": 162, "n_units_b": 81}
    rows = W.comparison_table([r, {**r, "p_value": 0.004}, {k: v for k, v in r.items() if k != "n_perm"}])
    assert rows["p (block permutation)"].tolist() == ["≤ 0.002", 0.004, 0.002]


def test_split_masks_select_the_named_side(sky):
    ns = W.split_masks(sky, W.AsymmetryState(split="north/south"))
    assert list(ns) == ["north", "south"]
    assert bool(ns["north"].sel(**_cell(sky, 59, 0))) and not bool(ns["north"].sel(**_cell(sky, -59, 0)))
    assert bool(ns["south"].sel(**_cell(sky, -59, 0)))
    nf = W.split_masks(sky, W.AsymmetryState())
    assert bool(nf["near"].sel(**_cell(sky, 0, 10))) and bool(nf["far"].sel(**_cell(sky, 0, 170)))
    # pole on the equator at 90°E: (-59°, 91°E) is ~59° from it (pole side) but ~149° from the north pole
    gc = W.split_masks(sky, W.AsymmetryState(split="great circle", pole_lat=0.0, pole_lon=90.0))
    assert list(gc) == ["pole side", "antipode side"]
    assert bool(gc["pole side"].sel(**_cell(sky, -59, 91)))
    assert bool(gc["antipode side"].sel(**_cell(sky, 59, -91)))


def test_table_figures_are_the_hemisphere_statistics_by_hand(sky):
    v = W.asymmetry_view(sky, W.AsymmetryState(variable="x", threshold=2.25, block_deg=30.0), n_boot=50,
                         n_perm=99)
    t = v.table
    # dimensionless ("1"): no unit in the headers
    assert list(t.columns) == ["mean", "mean 95% CI", "median", "q05–q95", "area > 2.25", "area (10⁶ km²)",
                               "blocks"]
    assert list(t.index) == ["near", "far"]
    np.testing.assert_allclose(t["mean"], 4 / 3, rtol=2e-3)
    np.testing.assert_allclose(t["median"], 1.0, atol=0.02)
    for cell in t["q05–q95"]:
        q05, q95 = (float(s) for s in cell.split(" – "))
        assert q05 == pytest.approx(0.01, abs=0.01) and q95 == pytest.approx(3.61, abs=0.05)
    for cell in t["area > 2.25"]:
        assert cell.startswith("0.250 [")
    np.testing.assert_allclose(t["area (10⁶ km²)"], 2 * QUARTER_SPHERE_1E6, rtol=1e-3)
    # 30° blocks: 6 × 6 per hemisphere, in the table and in the comparison
    assert list(t["blocks"]) == [36, 36]
    assert v.comparison["n_units_a"] == 36 and v.comparison["n_units_b"] == 36
    # the map shows both sides
    img = v.map.traverse(lambda e: e, [lambda e: type(e).__name__ == "Image"])[0]
    assert np.isfinite(img.dimension_values(2)).mean() == pytest.approx(1.0)


def test_units_appear_in_the_table_headers(sky):
    v = W.asymmetry_view(sky, W.AsymmetryState(variable="xw", threshold=2.25), n_boot=50, n_perm=99)
    assert {"mean wt%", "median wt%", "q05–q95 wt%"} <= set(v.table.columns)


def test_highlands_only_keeps_the_highland_part_of_each_side(sky):
    v = W.asymmetry_view(sky, W.AsymmetryState(variable="x", threshold=2.25, highlands_only=True,
                                               block_deg=30.0), n_boot=50, n_perm=99)
    # highlands are the southern hemisphere: a quarter sphere on each side, 3 × 6 blocks of 30°
    np.testing.assert_allclose(v.table["area (10⁶ km²)"], QUARTER_SPHERE_1E6, rtol=1e-3)
    assert list(v.table["blocks"]) == [18, 18]
    img = v.map.traverse(lambda e: e, [lambda e: type(e).__name__ == "Image"])[0]
    assert np.isfinite(img.dimension_values(2)).mean() == pytest.approx(0.5)


def test_great_circle_view_uses_the_pole_controls(sky):
    # pole at the north pole: the split is north/south, so by area u = sin lat is uniform on [0, 1] on the
    # pole side (mean (1 + u)² = 7/3) and on [-1, 0] on the antipode side (mean 1/3)
    v = W.asymmetry_view(sky, W.AsymmetryState(variable="x", split="great circle", pole_lat=90.0, pole_lon=0.0,
                                               threshold=2.25, block_deg=30.0), n_boot=50, n_perm=99)
    assert list(v.table.index) == ["pole side", "antipode side"]
    np.testing.assert_allclose(v.table["mean"], [7 / 3, 1 / 3], rtol=5e-3)
    assert [c[:5] for c in v.table["area > 2.25"]] == ["0.500", "0.000"]  # lat > 30°: half the north


def test_readout_reports_the_comparison_figures(sky, monkeypatch):
    fake = {"a": "near", "b": "far", "value": -1.23456, "ci95": (-1.5, -1.0), "p_value": 0.02,
            "cohens_d": -0.7912, "cles": 0.2834, "n_units_a": 324, "n_units_b": 324}
    monkeypatch.setattr(W.A, "compare_regions", lambda *a, **k: dict(fake))
    v = W.asymmetry_view(sky, W.AsymmetryState(variable="xw", threshold=2.25), n_boot=50, n_perm=99)
    # a 0.5-wide interval: three decimals
    assert "<b>near − far</b> = -1.235 wt%, 95% CI [-1.500, -1.000] wt%" in v.readout
    assert "p = 0.02" in v.readout and "smallest possible" not in v.readout
    assert "Cohen's d = -0.79; P(near &gt; far) = 0.28" in v.readout
    fake["p_value"] = 0.01  # 1 / (99 + 1): the smallest a 99-permutation test can give
    assert "smallest possible with 99 permutations" in W.asymmetry_view(
        sky, W.AsymmetryState(variable="xw", threshold=2.25), n_boot=50, n_perm=99).readout


def test_switching_variable_keeps_an_explicit_threshold(monkeypatch):
    # a bare panel (no widgets): only the logic that picks the threshold on a variable switch
    seen = []
    monkeypatch.setattr(W.base.Panel, "set", lambda self, **changes: seen.append(changes))
    p = W.AsymmetryPanel.__new__(W.AsymmetryPanel)
    p._ranges, p._medians = {"x": (0.0, 4.0), "xw": (0.0, 4.0)}, {"x": 1.0, "xw": 1.2345}
    p.state = W.AsymmetryState(variable="x", threshold=1.0)
    p._fit_threshold_slider = lambda variable: None
    p.set(variable="xw", threshold=2.25)
    p.set(variable="xw")
    assert seen == [{"variable": "xw", "threshold": 2.25}, {"variable": "xw", "threshold": 1.234}]


def test_headline_figures_take_each_figure_from_its_own_source():
    stats = xr.Dataset({"mean": ("region", [-1103.5, 606.0]), "mean_ci_low": ("region", [-1219.0, 331.1]),
                        "mean_ci_high": ("region", [-991.9, 856.9])}, coords={"region": ["near", "far"]})
    sens = pd.DataFrame({"block_deg": [5.0, 10.0], "width_vs_iid": [20.0, 37.87]})

    def cp(r):
        return {"change_points": xr.Dataset({"radius_km": ("change", r)}, coords={"change": range(len(r))})}

    def dens(near, far):
        return xr.Dataset({"density": ("region", [near, far])}, coords={"region": ["near", "far"]})

    f = W.headline_figures(stats, {"p_value": 0.0123}, sens, {"value": 6.379546, "ci95": [5.762951, 6.92609]},
                           {"FeO": cp([640.0]), "mg_number": cp([700.0, 1100.0])},
                           {"craters_head2010": dens(1.234, 5.678), "craters_lroc_5_20km": dens(11.04, 22.96)})
    assert f["lola_near_mean_km"] == -1.103 and f["lola_far_mean_km"] == 0.606
    assert f["lola_near_ci95_km"] == [-1.219, -0.992]
    assert f["lola_near_minus_far_p"] == 0.0123
    assert f["synth_far_minus_near_highland_mg"] == 6.38
    assert f["synth_spa_fe_boundary_km"] == 640 and f["synth_spa_mg_ring_km"] == [700, 1100]
    assert (f["head2010_density_near"], f["head2010_density_far"]) == (1.2, 5.7)
    assert (f["lroc_density_near"], f["lroc_density_far"]) == (11.0, 23.0)


# ---------------------------------------------------------------------------------------------------
# calibration (notebook 01)
# ---------------------------------------------------------------------------------------------------
BANDS = ["R415", "R750"]


def _coeffs():
    return xr.Dataset({k: ("band", v) for k, v in {
        "gain": [1.01, 0.98], "gain_low": [1.0, 0.97], "gain_high": [1.02, 0.99],
        "offset": [0.001, 0.0], "offset_low": [0.0, -0.001], "offset_high": [0.002, 0.001],
        "rmse_before": [0.01, 0.02], "rmse_after": [0.001, 0.002]}.items()}, coords={"band": BANDS})


def test_coefficient_table_copies_every_column_from_its_own_field():
    gain = xr.DataArray([1.0, 1.0], dims="band", coords={"band": BANDS})
    off = xr.DataArray([0.0005, 0.0], dims="band", coords={"band": BANDS})
    t = wc.coefficient_table(_coeffs(), gain, off)
    np.testing.assert_allclose(t["gain recovered"], [1.01, 0.98])
    np.testing.assert_allclose(t["offset recovered"], [0.001, 0.0])
    np.testing.assert_allclose(t["offset injected"], [0.0005, 0.0])
    np.testing.assert_allclose(t["offset CI low"], [0.0, -0.001])
    np.testing.assert_allclose(t["offset CI high"], [0.002, 0.001])
    np.testing.assert_allclose(t["RMSE before"], [0.01, 0.02])
    np.testing.assert_allclose(t["RMSE after"], [0.001, 0.002])


def _grid(nlat=18, nlon=36):
    lat = np.linspace(85.0, -85.0, nlat)
    lon = np.linspace(-175.0, 175.0, nlon)
    return lat, lon


def _cube(values_by_band):
    lat, lon = _grid()
    return xr.DataArray(np.stack(values_by_band), dims=("band", "lat", "lon"),
                        coords={"band": BANDS, "lat": lat, "lon": lon})


def _fake_chain(red=0.8):
    rng = np.random.default_rng(1)
    shape = (18, 36)
    ref = _cube([np.full(shape, 0.2), np.full(shape, 0.3)])
    before = [rng.uniform(-0.002, 0.002, shape), rng.uniform(-0.05, 0.05, shape)]
    after = [rng.uniform(-0.01, 0.01, shape), rng.uniform(-0.03, 0.03, shape)]
    gain = xr.DataArray([1.0, 1.0], dims="band", coords={"band": BANDS})
    return {"reference": ref, "observed": ref + _cube(before), "calibrated": ref + _cube(after),
            "coeffs": _coeffs(), "injected_gain": gain, "injected_offset": gain * 0.0,
            "stripe_power_reduction": red}, before, after


def _clim(el):
    import holoviews as hv

    return hv.Store.lookup_options("bokeh", el, "plot").kwargs.get("clim")


def test_calibration_view_maps_the_first_band_with_a_shared_symmetric_colour_range(monkeypatch):
    out, before, after = _fake_chain()
    monkeypatch.setattr(wc, "run_chain", lambda moon, state: out)
    v = wc.calibration_view(xr.Dataset(), wc.CalibrationState())
    np.testing.assert_allclose(v.before.values, before[0])  # R415, the first band: target − reference
    np.testing.assert_allclose(v.after.values, after[0])
    lim = np.percentile(np.abs(after[0]), 99)  # 'after' has the larger residuals here
    maps = [e for e in v.plot if type(e).__name__ == "Image"]
    assert len(maps) == 2
    for m in maps:
        lo, hi = _clim(m)
        assert (lo, hi) == pytest.approx((-lim, lim))
    assert f"±{lim:.3g}" in str(v.plot.traverse(lambda e: e.label + "|" + str(e.opts.get().kwargs.get("title")),
                                                [lambda e: type(e).__name__ == "Overlay"]))
    # gains 1.01 and 0.98 for an injected 1: worst 2 %; only R415's interval [1.00, 1.02] holds 1
    assert "worst gain error: <b>2.00 %</b>" in v.readout
    assert "worst offset error: <b>0.0010</b>" in v.readout
    assert "<b>1 of 2</b>" in v.readout and "stripe power removed: <b>80.0 %</b>" in v.readout
    v2 = wc.calibration_view(xr.Dataset(), wc.CalibrationState(band="R750"))
    np.testing.assert_allclose(v2.before.values, before[1])
    with pytest.raises(InputError, match="not a band"):
        wc.calibration_view(xr.Dataset(), wc.CalibrationState(band="R999"))


def _fake_observe(calls):
    lat, lon = _grid()

    def observe(moon, instrument, snr=None, stripes=0.0, gain_error=None, offset_error=None, geometry=None,
                seed=0):
        calls.append(dict(instrument=instrument, snr=snr, stripes=stripes, gain_error=gain_error,
                          offset_error=offset_error, geometry=geometry, seed=seed))
        true = _cube([np.full((18, 36), 0.2), np.full((18, 36), 0.3)])
        g = xr.DataArray([1.05, 0.97], dims="band", coords={"band": BANDS})
        o = xr.DataArray([0.002, -0.001], dims="band", coords={"band": BANDS})
        pf = xr.full_like(true, 0.5)
        return xr.Dataset({"reflectance": true * pf * g + o, "true_reflectance": true, "gain": g, "offset": o,
                           "photometric_factor": pf})

    return observe


@pytest.fixture
def chain_spy(monkeypatch):
    import workbench.synth as synth

    spy = {"calls": [], "destripe": 0}
    monkeypatch.setattr(synth, "observe", _fake_observe(spy["calls"]))

    def destripe(obs):
        spy["destripe"] += 1
        return {"destriped": obs}

    def reduction(obs, destriped, clean):
        spy["clean"] = clean
        return 0.75

    def nf(i, e, g, model=None):
        spy["nf_args"] = (i, e, g, model)
        return 0.8

    def normalise(da, i, e, g, model=None):
        spy["normalise_args"] = (i, e, g, model)
        return da

    monkeypatch.setattr(wc.cal, "destripe", destripe)
    monkeypatch.setattr(wc.cal, "stripe_power_reduction", reduction)
    monkeypatch.setattr(wc.cal, "fit_cross_calibration", lambda t, r: "coeffs")
    monkeypatch.setattr(wc.cal, "apply_cross_calibration", lambda t, c: t)
    monkeypatch.setattr(wc, "normalisation_factor", nf)
    monkeypatch.setattr(wc, "normalise", normalise)
    return spy


def test_run_chain_passes_the_controls_to_the_simulator(chain_spy):
    st = wc.CalibrationState(instrument="kaguya_mi", gain_error_pct=5.0, offset_error=0.004, stripes_pct=2.0,
                             snr=50.0, phase=30.0, seed=3)
    out = wc.run_chain(xr.Dataset(), st)
    ref, tgt = chain_spy["calls"]
    assert ref["instrument"] == tgt["instrument"] == "kaguya_mi" and ref["snr"] == tgt["snr"] == 50.0
    assert ref["stripes"] == 0.0 and ref["gain_error"] is None and ref["geometry"] is None
    assert ref["seed"] != tgt["seed"] and tgt["seed"] == 3  # independent noise in reference and target
    assert tgt["stripes"] == pytest.approx(0.02) and tgt["gain_error"] == pytest.approx(0.05)
    assert tgt["offset_error"] == pytest.approx(0.004) and tgt["geometry"] is None  # 30° is the standard view
    assert chain_spy["destripe"] == 1 and out["stripe_power_reduction"] == 0.75
    np.testing.assert_allclose(out["injected_offset"], [0.002, -0.001])  # no normalisation at 30°


def test_run_chain_off_standard_phase_uses_a_nadir_hapke_view(chain_spy):
    out = wc.run_chain(xr.Dataset(), wc.CalibrationState(phase=60.0, stripes_pct=0.5))
    tgt = chain_spy["calls"][1]
    assert tgt["geometry"] == {"i": 60.0, "e": 0.0, "g": 60.0, "model": "hapke"}
    assert chain_spy["nf_args"] == chain_spy["normalise_args"] == (60.0, 0.0, 60.0, "hapke")
    # a small stripe σ is still destriped; its truth is the target with photometry, gain and offset only
    assert chain_spy["destripe"] == 1
    np.testing.assert_allclose(chain_spy["clean"].sel(band="R415"), 0.2 * 0.5 * 1.05 + 0.002)
    np.testing.assert_allclose(out["injected_offset"], [0.002 * 0.8, -0.001 * 0.8])


def test_run_chain_without_stripes_skips_destriping(chain_spy):
    out = wc.run_chain(xr.Dataset(), wc.CalibrationState(stripes_pct=0.0))
    assert chain_spy["destripe"] == 0 and np.isnan(out["stripe_power_reduction"])


def test_too_few_permutations_names_the_bound_it_enforces():
    """n_perm below 99 is refused with the bound that is enforced (the message used to ask for 999), and 99 runs."""
    from workbench.analysis import asymmetry as A

    lat = np.arange(-89.0, 90.0, 2.0)
    lon = np.arange(-179.0, 180.0, 2.0)
    da = xr.DataArray(np.random.default_rng(0).normal(size=(lat.size, lon.size)), dims=("lat", "lon"),
                      coords={"lat": lat, "lon": lon}, attrs={"units": "1"})
    north = xr.DataArray(lat > 0, dims="lat", coords={"lat": lat}).broadcast_like(da)
    with pytest.raises(InputError, match=r"n_perm=98 .*use at least 99"):
        A.compare_regions(da, north, ~north, n_boot=50, n_perm=98, seed=0)
    A.compare_regions(da, north, ~north, n_boot=50, n_perm=99, seed=0)
