"""Prospectivity inputs: storage layout, coordinate matching, checkpoints, architecture checks, messages.

Small seeded cases: each pins one behaviour that used to be wrong (layout-dependent scores, TiO2 read by
position, unchecked checkpoints, raw torch errors for bad architectures, misleading messages).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from test_prospectivity import LAYERS, random_fields

from workbench.analysis import prospectivity as P
from workbench.analysis.layers import Normalisation, stack_layers
from workbench.errors import CheckpointError, InputError
from workbench.geo import global_grid, wrap_lon_180

CFG = {"tile": 16, "patch": 4, "dim": 16, "depth": 1, "heads": 2, "fusion_channels": 8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    train = [stack_layers(random_fields(s, blob=False), LAYERS) for s in (7, 8)]
    return P.fit(train, config=CFG, steps=5, batch_size=4, seed=0)


@pytest.fixture(scope="module")
def case():
    ds = random_fields(9)
    return ds, stack_layers(ds, LAYERS)


def _to_180(da: xr.DataArray) -> xr.DataArray:
    """``da`` on −180…180 longitudes, north-up, east-right (to compare maps stored in other layouts)."""
    return da.assign_coords(lon=wrap_lon_180(da["lon"].values)).sortby("lon").sortby("lat", ascending=False)


# -- storage layout -----------------------------------------------------------------------------------
def test_network_score_does_not_depend_on_storage_layout(model, case):
    _, st = case
    ref = P.anomaly_score(model, st)
    south_up = st.isel(lat=slice(None, None, -1))
    west_right = st.isel(lon=slice(None, None, -1))
    lon360 = st.assign_coords(lon=np.mod(st["lon"].values, 360.0)).sortby("lon")
    for name, other in (("south-up", south_up), ("west-right", west_right), ("0-360", lon360),
                        ("(layer, lon, lat)", st.transpose("layer", "lon", "lat")),
                        ("(lat, lon, layer)", st.transpose("lat", "lon", "layer"))):
        s = P.anomaly_score(model, other)
        assert s.dims == ("lat", "lon"), name
        np.testing.assert_allclose(_to_180(s).values, ref.values, rtol=1e-5, atol=1e-5, err_msg=name)
    # the answer comes back in the caller's row order and coordinates
    err = P.layer_errors(model, south_up)
    assert err.dims == ("layer", "lat", "lon")
    np.testing.assert_array_equal(err["lat"].values, south_up["lat"].values)
    np.testing.assert_allclose(err.isel(lat=slice(None, None, -1)).values, P.layer_errors(model, st).values,
                               rtol=1e-5, atol=1e-5)
    # a regional grid across the seam: 0..360 and -180..180 longitudes tile the same columns
    reg = lon360.isel(lon=slice(150, 210))
    reg180 = reg.assign_coords(lon=wrap_lon_180(reg["lon"].values))
    np.testing.assert_allclose(P.anomaly_score(model, reg).values, P.anomaly_score(model, reg180).values,
                               rtol=1e-6)


def test_fit_does_not_depend_on_storage_layout(case):
    _, st = case
    a = P.fit(st, config=CFG, steps=2, batch_size=2, seed=4)
    b = P.fit(st.isel(lat=slice(None, None, -1)).transpose("lat", "lon", "layer"), config=CFG, steps=2,
              batch_size=2, seed=4)
    assert a.history == b.history and a.error_scale == b.error_scale


def test_stacks_in_other_dim_orders_are_transposed_by_name(case):
    _, st = case
    norm = Normalisation.fit(st)
    for dims in (("lat", "lon", "layer"), ("layer", "lon", "lat")):
        other = st.transpose(*dims)
        got = Normalisation.fit(other)
        assert got.layers == norm.layers
        np.testing.assert_allclose(got.mean, norm.mean, rtol=1e-9)
        np.testing.assert_allclose(got.std, norm.std, rtol=1e-9)
        np.testing.assert_allclose(P.zscore_score(other, norm).values, P.zscore_score(st, norm).values, rtol=1e-6)
        np.testing.assert_allclose(P.pca_score([other], other, norm).values, P.pca_score([st], st, norm).values,
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="'layer' dim"):
        Normalisation.fit(st.isel(layer=0))
    with pytest.raises(InputError, match=r"expected the dims \('layer', 'lat', 'lon'\)"):
        P.zscore_score(st.rename(lat="y"), norm)


# -- candidate table: TiO2 matched by coordinates -----------------------------------------------------
def test_candidate_tio2_is_matched_by_coordinates(case):
    ds, st = case
    norm = Normalisation.fit(st)
    s = P.zscore_score(st, norm)
    thr = float(np.nanpercentile(s, 99.5))
    tio2 = ds["TiO2"]
    ref = P.candidate_regions(s, thr, tio2=tio2)["mean_TiO2"].to_numpy()
    assert ref[0] > 10  # the +12 wt% blob ranks first
    south_up = tio2.isel(lat=slice(None, None, -1))
    lon360 = tio2.assign_coords(lon=np.mod(tio2["lon"].values, 360.0)).sortby("lon")
    for other in (south_up, lon360, tio2.transpose("lon", "lat")):
        np.testing.assert_allclose(P.candidate_regions(s, thr, tio2=other)["mean_TiO2"].to_numpy(), ref, rtol=1e-6)
    band = P.zscore_score(st.isel(lat=slice(20, 70)), norm)  # a band-limited score, TiO2 of the whole Moon
    tab = P.candidate_regions(band, thr, tio2=tio2)
    assert tab["mean_TiO2"].iloc[0] == pytest.approx(ref[0], rel=1e-6)
    with pytest.raises(InputError, match="tio2 does not cover"):
        P.candidate_regions(s, thr, tio2=tio2.isel(lat=slice(20, 70)))


# -- checkpoints --------------------------------------------------------------------------------------
def test_checkpoint_has_a_sha256_record_that_load_checks(model, tmp_path, case):
    _, st = case
    path = model.save(tmp_path / "m.pt")
    rec = json.loads(path.with_suffix(".json").read_text())
    assert rec["file"] == "m.pt" and len(rec["sha256"]) == 64 and rec["layers"] == list(LAYERS)
    back = P.ProspectivityModel.load(path)
    np.testing.assert_allclose(P.anomaly_score(back, st).values, P.anomaly_score(model, st).values, rtol=1e-5)
    # the file replaced after saving (heads changed: same tensor shapes, silently different scores before)
    state = torch.load(path, weights_only=True)
    state["config"]["heads"] = 4
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        P.ProspectivityModel.load(path)
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="record .* unreadable"):
        P.ProspectivityModel.load(path)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda s: s["config"].pop("heads"), "config lacks keys"),
    (lambda s: s["config"].update(foo=1), "unknown config keys"),
    (lambda s: s.update(error_scale=s["error_scale"][:3]), "error_scale must hold 4"),
    (lambda s: s.pop("error_scale"), "no 'error_scale'"),
    (lambda s: s["normalisation"].update(std=[0.0, 1.0, 1.0, 1.0]), "standard deviation"),
    (lambda s: s["normalisation"].update(mean=s["normalisation"]["mean"][:3]), "4 layers but 3 means"),
    (lambda s: s.update(score_rule="max"), "score_rule"),
    (lambda s: s.pop("state_dict"), "no 'state_dict'"),
])
def test_inconsistent_checkpoint_is_one_checkpoint_error(model, tmp_path, edit, match):
    path = model.save(tmp_path / "m.pt")
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)
    path.with_suffix(".json").unlink()  # no record: the contents themselves are checked
    with pytest.raises(CheckpointError, match=match):
        P.ProspectivityModel.load(path)


def test_checkpoint_from_before_the_conv_variant_still_loads(model, tmp_path, case):
    _, st = case
    path = model.save(tmp_path / "m.pt")
    state = torch.load(path, weights_only=True)
    state["config"].pop("arch")  # older checkpoints had no 'arch': they are ViTs
    torch.save(state, path)
    path.with_suffix(".json").unlink()
    back = P.ProspectivityModel.load(path)
    np.testing.assert_allclose(P.anomaly_score(back, st).values, P.anomaly_score(model, st).values, rtol=1e-5)


# -- architecture settings ----------------------------------------------------------------------------
@pytest.mark.parametrize(("cfg", "match"), [
    ({"arch": "conv", "tile": 18, "patch": 2}, "multiple of 4"),
    ({"heads": 3}, r"dim \(16\) must be divisible by heads \(3\)"),
    ({"fusion_kernel": 2}, "fusion_kernel must be odd"),
    ({"patch": 0}, "'patch' must be an integer >= 1"),
    ({"dim": 16.0}, "'dim' must be an integer"),
])
def test_bad_architecture_is_refused_with_the_constraint(case, cfg, match):
    _, st = case
    with pytest.raises(InputError, match=match):
        P.fit(st, config={**CFG, **cfg}, steps=1, batch_size=1)


def test_bad_training_settings_are_refused(case):
    _, st = case
    with pytest.raises(InputError, match="lr must be"):
        P.fit(st, config=CFG, steps=1, batch_size=1, lr=0.0)
    with pytest.raises(InputError, match="patch_ratio"):
        P.fit(st, config=CFG, steps=1, batch_size=1, patch_ratio=(0.9, 1.5))


# -- messages -----------------------------------------------------------------------------------------
def test_messages_name_the_actual_problem(case):
    ds, st = case
    bad = ds.copy()
    bad["TiO2"] = bad["TiO2"].where(bad["lat"] != bad["lat"][5], np.inf)
    with pytest.raises(InputError, match="non-finite values"):
        Normalisation.fit(stack_layers(bad, LAYERS))
    norm = Normalisation.fit(st)
    s = P.zscore_score(st, norm)
    truth = ds["deposit"]
    with pytest.raises(InputError, match="no finite value"):
        P.evaluate(s * np.nan, truth)
    with pytest.raises(InputError, match="infinite"):
        P.evaluate(s.where(~truth, np.inf), truth)
    with pytest.raises(InputError, match="both deposit and background"):
        P.evaluate(s, truth | True)
    # NaN pixels are left out (documented): the base rate is that of the finite area
    part = P.evaluate(s.where(abs(s["lat"]) < 30), truth)
    assert part["auc"] > 0.99 and part["base_rate"] > P.evaluate(s, truth)["base_rate"]
    with pytest.raises(InputError, match="n_components"):
        P.pca_score([st], st, norm, n_components=0)


# -- notebook 05's candidate hits across the seam (P.candidates_on_truth, once the notebook's hits()) ---------
def test_candidate_hits_count_a_candidate_across_the_seam():
    lat, lon = global_grid(1)
    dep = xr.DataArray(np.zeros((lat.size, lon.size), bool), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    dep[60:62, :2] = True
    dep[60:62, -1:] = True  # one deposit straddling +-180
    dep[40:42, 100:102] = True
    table = P.candidate_regions(dep.astype("float32"), 0.5)
    assert len(table) == 2 and (table["lon_min"] > table["lon_max"]).sum() == 1
    assert int(P.candidates_on_truth(table, dep).sum()) == 2
    assert int(P.candidates_on_truth(table, dep & False).sum()) == 0


# -- the candidate threshold is a percentile of area, not of pixels -------------------------------------
def test_area_percentile_weights_pixels_by_area():
    from workbench.geo import global_template

    t = global_template(2).fillna(0.0)
    lat = t + t["lat"]  # score = latitude: the area south of phi is (1 + sin phi) / 2 of the Moon
    for pct in (50.0, 90.0, 99.0):
        want = np.degrees(np.arcsin(2 * pct / 100 - 1))
        assert P.area_percentile(lat, pct) == pytest.approx(want, abs=0.3)
    # a pixel percentile would put the 99th at 88 deg (the polar rows count as much as the equatorial ones)
    assert float(np.nanpercentile(lat.values, 99.0)) > 88.0
    # storage order and NaN pixels do not move it: NaN is left out, as in evaluate
    assert P.area_percentile(lat.transpose("lon", "lat"), 99.0) == pytest.approx(P.area_percentile(lat, 99.0))
    assert P.area_percentile(lat.isel(lat=slice(None, None, -1)), 90.0) == pytest.approx(
        P.area_percentile(lat, 90.0))
    south_nan = lat.where(lat["lat"] > 0)
    assert P.area_percentile(south_nan, 50.0) == pytest.approx(30.0, abs=0.3)  # half the north's area: sin = 0.5


def test_area_percentile_bad_input():
    from workbench.geo import global_template

    t = global_template(1).fillna(1.0)
    for bad in (-1.0, 100.5, float("nan")):
        with pytest.raises(InputError, match=r"percentile of area and must lie in \[0, 100\]"):
            P.area_percentile(t, bad)
    with pytest.raises(InputError, match="infinite"):
        P.area_percentile(t.where(t["lat"] < 80, np.inf), 99.0)
    with pytest.raises(InputError, match="no finite value"):
        P.area_percentile(t * np.nan, 99.0)
