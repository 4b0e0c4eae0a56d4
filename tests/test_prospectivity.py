"""Prospectivity: layers, normalisation, network, baselines, candidates, evaluation (fast, seeded)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

from workbench.analysis import prospectivity as P
from workbench.analysis.layers import Normalisation, crater_density, roughness, slope, stack_layers
from workbench.errors import CheckpointError, InputError
from workbench.geo import MOON_RADIUS_KM, MOON_RADIUS_M, area_weights, global_grid
from workbench.synth.deposits import deposit_records

LAYERS = ("TiO2", "FeO", "npfe", "elevation")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_fields(seed: int = 0, ppd: float = 0.5, blob: bool = True) -> xr.Dataset:
    """Smooth random layers on a global grid, with a bright TiO2 blob (the 'deposit') if asked."""
    rng = np.random.default_rng(seed)
    lat, lon = global_grid(ppd)
    ds = xr.Dataset(coords={"lat": lat, "lon": lon})

    def field(scale, off):
        f = gaussian_filter(rng.normal(size=(lat.size, lon.size)), 3, mode=("nearest", "wrap"))
        return (off + scale * f / f.std()).astype("float32")

    ds["TiO2"] = (("lat", "lon"), np.abs(field(1.5, 2.0)), {"units": "wt%"})
    ds["FeO"] = (("lat", "lon"), field(3.0, 10.0), {"units": "wt%"})
    ds["npfe"] = (("lat", "lon"), field(0.05, 0.3), {"units": "wt%"})
    ds["elevation"] = (("lat", "lon"), field(1500.0, 0.0), {"units": "m"})
    truth = np.zeros((lat.size, lon.size), bool)
    if blob:
        yy, xx = np.mgrid[: lat.size, : lon.size]
        truth = (yy - lat.size // 2) ** 2 + (xx - lon.size // 3) ** 2 <= 9
        ds["TiO2"] = ds["TiO2"].where(~truth, ds["TiO2"] + 12.0)
    ds["deposit"] = (("lat", "lon"), truth)
    return ds


def test_normalisation_round_trips():
    st = stack_layers(random_fields(1), LAYERS)
    norm = Normalisation.fit(st)
    z = norm.apply(st)
    assert np.allclose(np.nanmean(z.values, axis=(1, 2)), 0, atol=1e-4)
    assert np.allclose(np.nanstd(z.values, axis=(1, 2)), 1, atol=1e-3)
    back = norm.invert(z)
    np.testing.assert_allclose(back.values, st.values, rtol=1e-4, atol=1e-2)
    assert Normalisation.from_dict(norm.to_dict()) == norm
    with pytest.raises(InputError, match="differ"):
        norm.apply(st.isel(layer=[1, 0, 2, 3]))


def test_constant_layer_is_refused():
    ds = random_fields(0)
    ds["npfe"] = ds["npfe"] * 0 + 0.3
    with pytest.raises(InputError, match="constant"):
        Normalisation.fit(stack_layers(ds, LAYERS))


def test_slope_known_answer_on_sphere():
    lat, lon = global_grid(1)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    # elevation rising 0.1 m per metre northwards -> slope atan(0.1) everywhere
    z = xr.DataArray(0.1 * MOON_RADIUS_M * np.deg2rad(la), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    s = slope(z)
    assert s.attrs["units"] == "deg"
    np.testing.assert_allclose(s.values[5:-5], np.rad2deg(np.arctan(0.1)), rtol=1e-6)
    # eastward ramp along the equator: metric spacing is R cos(lat) dlon -> slope atan(0.05) at lat ~0
    z2 = xr.DataArray(0.05 * MOON_RADIUS_M * np.deg2rad(lo) * np.cos(np.deg2rad(la)),
                      coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    s2 = slope(z2)
    np.testing.assert_allclose(s2.sel(lat=0.5).values[5:-5], np.rad2deg(np.arctan(0.05)), rtol=1e-3)
    # the same 5 % grade at 60.5N, where a degree of longitude is cos(60.5) = 0.49 of an equatorial one: the
    # slope is still atan(0.05) = 2.862 deg (1.41 deg if the east-west spacing were taken as R dlon)
    assert float(s2.sel(lat=60.5, lon=0.5)) == pytest.approx(np.rad2deg(np.arctan(0.05)), rel=1e-3)


def test_crater_density_counts_in_caps():
    tmpl = random_fields(0, ppd=1, blob=False)
    craters = pd.DataFrame({"lat": [0.0, 0.2], "lon": [10.0, 10.2], "diameter_km": [30.0, 5.0]})
    d = crater_density(craters, tmpl, radius_km=100.0)
    cap = 2 * np.pi * MOON_RADIUS_KM**2 * (1 - np.cos(100.0 / MOON_RADIUS_KM))
    assert d.sel(lat=0.5, lon=10.5).item() == pytest.approx(2 / cap, rel=1e-5)
    assert d.sel(lat=40.5, lon=10.5).item() == 0.0
    d20 = crater_density(craters, tmpl, radius_km=100.0, min_diameter_km=20)
    assert d20.sel(lat=0.5, lon=10.5).item() == pytest.approx(1 / cap, rel=1e-5)
    with pytest.raises(InputError, match="diameter_km"):
        crater_density(craters.drop(columns="diameter_km"), tmpl)


def test_stack_layers_derives_and_explains():
    ds = random_fields(0)
    st = stack_layers(ds, ("TiO2", "slope", "roughness"))
    assert st.dims == ("layer", "lat", "lon") and st.attrs["layer_units"] == ["wt%", "deg", "m"]
    assert float(roughness(ds["elevation"]).min()) >= 0
    with pytest.raises(InputError, match="crater table"):
        stack_layers(ds, ("TiO2", "crater_density"))


def test_zscore_baseline_finds_planted_blob():
    ds = random_fields(3)
    st = stack_layers(ds, LAYERS)
    norm = Normalisation.fit(stack_layers(random_fields(4, blob=False), LAYERS))
    s = P.zscore_score(st, norm)
    res = P.evaluate(s, ds["deposit"])
    assert res["auc"] > 0.99
    top = np.unravel_index(np.nanargmax(s.values), s.shape)
    assert ds["deposit"].values[top]


def test_zscore_baseline_sums_absolute_z_scores():
    """Two layers with z = +2 and -2 at a pixel: the score is |2| + |-2| = 4 (a signed sum would give 0)."""
    st = xr.DataArray(np.array([[[2.0]], [[-2.0]]]), dims=("layer", "lat", "lon"),
                      coords={"layer": ["a", "b"], "lat": [0.0], "lon": [0.0]})
    norm = Normalisation(("a", "b"), (0.0, 0.0), (1.0, 1.0))
    assert float(P.zscore_score(st, norm)[0, 0]) == 4.0


def test_pca_and_isolation_forest_rank_blob_high():
    train = [stack_layers(random_fields(5, blob=False), LAYERS)]
    ds = random_fields(6)
    st = stack_layers(ds, LAYERS)
    norm = Normalisation.fit(train)
    assert P.evaluate(P.isolation_forest_score(train, st, norm, max_pixels=5000), ds["deposit"])["auc"] > 0.95
    assert P.evaluate(P.pca_score(train, st, norm), ds["deposit"])["auc"] > 0.9


@pytest.fixture(scope="module")
def tiny_model():
    train = [stack_layers(random_fields(s, blob=False), LAYERS) for s in (7, 8)]
    cfg = {"tile": 16, "patch": 4, "dim": 16, "depth": 1, "heads": 2, "fusion_channels": 8}
    return P.fit(train, config=cfg, steps=5, batch_size=4, seed=0)


def test_model_trains_and_scores(tiny_model):
    assert len(tiny_model.history) == 5 and all(np.isfinite(tiny_model.history))
    assert len(tiny_model.error_scale) == len(LAYERS)
    ds = random_fields(9)
    st = stack_layers(ds, LAYERS)
    st[0, 3, 4] = np.nan
    s = P.anomaly_score(tiny_model, st)
    assert s.dims == ("lat", "lon") and s.shape == st.shape[1:]
    assert np.isnan(s.values[3, 4])
    assert np.isfinite(np.delete(s.values.ravel(), 3 * st.shape[2] + 4)).all()
    assert (s.values[np.isfinite(s.values)] >= 0).all()


def test_network_output_sets_the_layer_errors_and_the_score():
    """A stub network that predicts every hidden layer 0.5 too high: known errors, whatever the data.

    For the copy that hides layer k, rec - x = 0.5 on layer k (mask 1) and 0 elsewhere, so the squared
    error of layer k is 0.5^2 = 0.25 at every pixel; scaled by 1/error_scale[k] = 1/(0.5, 1, 2, 4) that is
    (0.5, 0.25, 0.125, 0.0625), the same in every overlapping tile, and the "sum" score is
    0.5 + 0.25 + 0.125 + 0.0625 = 0.9375. NaN in any layer gives NaN there.
    """
    st = stack_layers(random_fields(9), LAYERS)
    st[0, 3, 4] = np.nan
    model = P.ProspectivityModel(net=lambda x, m: x * (1 - m) + (x + 0.5) * m,
                                 normalisation=Normalisation.fit(st), config={"tile": 16},
                                 error_scale=(0.5, 1.0, 2.0, 4.0))
    err = P.layer_errors(model, st)
    expect = np.broadcast_to(np.array([0.5, 0.25, 0.125, 0.0625])[:, None, None], err.shape).copy()
    expect[:, 3, 4] = np.nan
    # float32: (x + 0.5) - x is 0.5 to within an ulp of x (1e-6 at the TiO2 blob, z ~ 10)
    np.testing.assert_allclose(err.values, expect, rtol=1e-5)
    s = P.anomaly_score(model, st)
    assert np.isnan(s.values[3, 4])
    np.testing.assert_allclose(np.delete(s.values.ravel(), 3 * st.shape[2] + 4), 0.9375, rtol=1e-5)


def test_model_save_load_round_trip(tiny_model, tmp_path):
    st = stack_layers(random_fields(10), LAYERS)
    path = tiny_model.save(tmp_path / "m.pt")
    back = P.ProspectivityModel.load(path)
    assert back.normalisation == tiny_model.normalisation
    np.testing.assert_allclose(P.anomaly_score(back, st).values, P.anomaly_score(tiny_model, st).values,
                               rtol=1e-5)
    with pytest.raises(CheckpointError, match="no such weights file"):
        P.ProspectivityModel.load(tmp_path / "missing.pt")
    with pytest.raises(InputError, match="differ"):
        P.anomaly_score(back, stack_layers(random_fields(10), ("FeO", "TiO2", "npfe", "elevation")))


def test_fit_rejects_bad_config():
    st = stack_layers(random_fields(0), LAYERS)
    with pytest.raises(InputError, match="unknown config"):
        P.fit(st, config={"depht": 2}, steps=1)
    with pytest.raises(InputError, match="multiple"):
        P.fit(st, config={"tile": 18, "patch": 4}, steps=1)


def test_candidate_regions_areas_and_seam():
    lat, lon = global_grid(1)
    s = xr.DataArray(np.zeros((lat.size, lon.size), "float32"), coords={"lat": lat, "lon": lon},
                     dims=("lat", "lon"))
    s[40:43, 100:104] = 5.0          # 12 px, one region
    s[60:62, :2] = 3.0               # straddles the +-180 seam with the next block
    s[60:62, -1:] = 3.0
    tio2 = s * 0 + 7.0
    tab = P.candidate_regions(s, 1.0, tio2=tio2)
    assert len(tab) == 2
    first = tab.iloc[0]
    assert first["mean_score"] == pytest.approx(5.0) and first["n_pixels"] == 12
    assert first["area_km2"] == pytest.approx(float(area_weights(s)[40:43, 100:104].sum()), rel=1e-6)
    assert first["mean_TiO2"] == pytest.approx(7.0)
    seam = tab.iloc[1]
    assert seam["n_pixels"] == 6 and abs(seam["lon"]) > 179.0
    assert (seam["lon_min"], seam["lon_max"]) == (179.5, -178.5)  # across the seam, not the whole globe
    assert first["total_score"] == pytest.approx((5.0 - 1.0) * first["area_km2"], rel=1e-5)
    by_area = P.candidate_regions(s, 1.0, rank_by="area_km2")
    assert by_area.iloc[0]["n_pixels"] == 12 and list(by_area["rank"]) == [1, 2]
    assert len(P.candidate_regions(s, 10.0)) == 0
    with pytest.raises(InputError, match="rank_by"):
        P.candidate_regions(s, 1.0, rank_by="score")


def test_candidate_regions_join_across_the_pole_and_centre_on_it():
    lat, lon = global_grid(1)
    s = xr.DataArray(np.zeros((lat.size, lon.size), "float32"), coords={"lat": lat, "lon": lon},
                     dims=("lat", "lon"))
    s[:10, :] = 2.0  # a cap above 80 deg N
    cap = P.candidate_regions(s, 1.0).iloc[0]
    assert cap["lat"] > 89.9 and cap["n_pixels"] == 3600
    strip = s * 0
    strip[:5, 180] = strip[:5, 0] = 2.0  # a strip through the pole along the 0/180 deg meridian
    tab = P.candidate_regions(strip, 1.0)
    assert len(tab) == 1 and tab.iloc[0]["n_pixels"] == 10


def test_candidates_on_truth_counts_boxes_with_a_deposit_and_crosses_the_seam():
    lat, lon = global_grid(1)  # lat 89.5 ... -89.5 (row i: 89.5 - i), lon -179.5 ... 179.5 (column j: -179.5 + j)
    truth = xr.DataArray(np.zeros((lat.size, lon.size), bool), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    truth[60:62, 0] = True                       # deposit A at lat 29.5 / 28.5, lon -179.5 (just east of the seam)
    truth[40, 180] = True                        # deposit B at (49.5, 0.5), half a globe away from the seam
    s = xr.DataArray(np.zeros(truth.shape, "float32"), coords=truth.coords, dims=truth.dims)
    s[60:62, -1:] = s[60:62, :1] = 3.0           # a region across the seam, over deposit A
    s[40:43, 110:114] = 5.0                      # a region with no deposit in its box
    tab = P.candidate_regions(s, 1.0)
    assert (tab.iloc[1]["lon_min"], tab.iloc[1]["lon_max"]) == (179.5, -179.5)  # across the seam
    hits = P.candidates_on_truth(tab, truth)
    assert hits.tolist() == [False, True] and list(hits.index) == [1, 2] and int(hits.sum()) == 1
    assert P.candidates_on_truth(tab, truth, n=1).tolist() == [False]
    # boxes: on B; across the seam over A; across the seam at B's latitude (read as -180 < lon < 180 it would
    # hold B, but it is only 2 degrees wide); east of A without reaching it
    boxes = pd.DataFrame({"rank": [1, 2, 3, 4], "lat_min": [49.5, 28.5, 49.5, 28.5],
                          "lat_max": [49.5, 29.5, 49.5, 29.5], "lon_min": [0.5, 178.5, 179.5, -178.5],
                          "lon_max": [0.5, -179.5, -179.5, -170.5]})
    assert P.candidates_on_truth(boxes, truth, n=None).tolist() == [True, True, False, False]
    # a truth map stored with longitudes 0-360 and south up gives the same answer
    east = truth.assign_coords(lon=truth.lon % 360).sortby("lon").sortby("lat")
    assert P.candidates_on_truth(boxes, east, n=None).tolist() == [True, True, False, False]
    with pytest.raises(InputError, match="lon_max"):
        P.candidates_on_truth(boxes.drop(columns="lon_max"), truth)
    with pytest.raises(InputError, match="dims"):
        P.candidates_on_truth(boxes, truth.values)


def test_synthetic_case_default_unchanged_and_fainter_deposits():
    import inspect

    from workbench.synth.deposits import plant_deposits

    stack, moon = P.synthetic_case(3, 1)
    default = inspect.signature(plant_deposits).parameters["ilmenite_target"].default
    assert default == (0.05, 0.14)
    stack_d, moon_d = P.synthetic_case(3, 1, ilmenite_target=default)  # the default, given explicitly
    xr.testing.assert_identical(stack, stack_d)
    xr.testing.assert_identical(moon, moon_d)
    stack_f, moon_f = P.synthetic_case(3, 1, ilmenite_target=(0.03, 0.06))
    dep = moon["deposit"].values
    assert dep.any() and (moon_f["deposit"].values == dep).all()  # the same places, fainter
    tio2, tio2_f = moon["TiO2"].values, moon_f["TiO2"].values
    assert np.nanmean(tio2_f[dep]) < np.nanmean(tio2[dep]) - 0.3
    np.testing.assert_array_equal(tio2_f[~dep & (moon["deposit_strength"].values == 0)],
                                  tio2[~dep & (moon["deposit_strength"].values == 0)])
    assert all(0.03 <= d["ilmenite_target"] <= 0.06 for d in deposit_records(moon_f))
    with pytest.raises(InputError, match="ilmenite_target"):
        P.synthetic_case(3, 1, ilmenite_target=(0.2, 0.1))


def test_evaluate_known_answers():
    ds = random_fields(2)
    truth = ds["deposit"]
    perfect = truth.astype("float32")
    res = P.evaluate(perfect, truth)
    assert res["auc"] == pytest.approx(1.0)
    # the deposit covers ~0.28 % of the area: a perfect score puts all of it in the top 1 %, which is then
    # deposit for base_rate / 1 % of its area (to within one pixel, < 1 % of the top area at 0.5 px/deg)
    w = np.broadcast_to(area_weights(truth).values, truth.shape)
    base = float(w[truth.values].sum() / w.sum())
    assert 0.001 < base < 0.01 and res["base_rate"] == pytest.approx(base, rel=1e-9)
    assert res["precision_at_top"] == pytest.approx(base / 0.01, rel=0.01)
    # a top fraction smaller than the deposit's area is all deposit
    assert P.evaluate(perfect, truth, top_fraction=base / 2)["precision_at_top"] == pytest.approx(1.0)
    inverted = P.evaluate(-perfect, truth)
    assert inverted["auc"] == pytest.approx(0.0)
    with pytest.raises(InputError, match="both"):
        P.evaluate(perfect, truth & False)
    # the same truth stored south-up and on 0..360 longitudes is matched by coordinates, not by position
    other = truth.isel(lat=slice(None, None, -1))
    other = other.assign_coords(lon=np.mod(other["lon"].values, 360.0)).sortby("lon")
    assert P.evaluate(perfect, other)["auc"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="does not cover"):
        P.evaluate(perfect, truth.isel(lat=slice(0, 5)))


def test_evaluate_weights_pixels_by_area():
    """AUC with area weights (1 px/deg): score 1 where |lat| >= 60, else 0; deposits where |lat| < 1. Every
    deposit scores 0, so AUC = P(deposit score > background score) + P(tie) / 2 = 0 + (area share of the
    background scoring 0) / 2 = 0.5 * (sin 60 - sin 1) / (1 - sin 1) = 0.4318 (a pixel count gives 0.331:
    the polar rows are as many as the others but cover far less area)."""
    lat, lon = global_grid(1)
    la = np.broadcast_to(lat[:, None], (lat.size, lon.size))
    score = xr.DataArray((np.abs(la) >= 60).astype(float), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    truth = xr.DataArray(np.abs(la) < 1, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"))
    s60, s1 = np.sin(np.deg2rad(60)), np.sin(np.deg2rad(1))
    assert P.evaluate(score, truth)["auc"] == pytest.approx(0.5 * (s60 - s1) / (1 - s1), rel=1e-9)


def test_precision_at_top_takes_the_pixels_that_reach_the_top_fraction():
    """2 x 4 pixels of equal area (latitudes +-0.5), scores 4, 3, 2, 1 then 0 x 4, a deposit only at the top
    pixel. top_fraction 0.2 needs the 2 best pixels (1 pixel is 12.5 % < 20 %, 2 are 25 %): precision 1/2."""
    s = xr.DataArray([[4.0, 3.0, 2.0, 1.0], [0.0] * 4], dims=("lat", "lon"),
                     coords={"lat": [0.5, -0.5], "lon": [0.5, 1.5, 2.5, 3.5]})
    t = xr.DataArray([[True, False, False, False], [False] * 4], coords=s.coords, dims=s.dims)
    res = P.evaluate(s, t, top_fraction=0.2)
    assert res["precision_at_top"] == pytest.approx(0.5, rel=1e-12)
    assert res["base_rate"] == pytest.approx(1 / 8, rel=1e-12)


def test_conv_variant_trains_and_bad_arch_is_refused():
    st = stack_layers(random_fields(11), LAYERS)
    m = P.fit(st, config={"arch": "conv", "tile": 16, "dim": 16, "depth": 1, "fusion_channels": 8},
              steps=2, batch_size=2)
    s = P.anomaly_score(m, st)
    assert s.shape == st.shape[1:] and np.isfinite(s.values).all()
    with pytest.raises(InputError, match="arch"):
        P.fit(st, config={"arch": "mlp"}, steps=1)


def test_stack_band_and_fit_stop():
    ds = random_fields(12)
    st = stack_layers(ds, LAYERS, max_abs_lat=60)
    assert float(abs(st["lat"]).max()) <= 60
    with pytest.raises(InputError, match="max_abs_lat"):
        stack_layers(ds, LAYERS, max_abs_lat=0)
    m = P.fit(st, config={"tile": 16, "dim": 16, "depth": 1, "heads": 2, "fusion_channels": 8}, steps=50,
              batch_size=2, progress=lambda step, n, loss: step < 3)
    assert len(m.history) == 3
    # truth on the full grid is matched to a band-limited score by coordinates: the +12 wt% TiO2 blob lies on
    # the equator, so the z-score map ranks it (almost) perfectly; a positional match would put it elsewhere
    assert P.evaluate(P.zscore_score(st, m.normalisation), ds["deposit"])["auc"] > 0.99


def _errors(values: np.ndarray, layers=("TiO2", "FeO", "npfe", "elevation")) -> xr.DataArray:
    lat, lon = global_grid(values.shape[1] / 180)
    return xr.DataArray(values.astype("float32"), coords={"layer": list(layers), "lat": lat, "lon": lon},
                        dims=("layer", "lat", "lon"))


def test_score_rules_known_answers():
    rng = np.random.default_rng(0)
    train = _errors(rng.gamma(2.0, 0.5, size=(4, 18, 36)) * np.array([1, 2, 1, 4])[:, None, None])
    stats = P.fit_error_stats(train)
    w = np.broadcast_to(area_weights(train.isel(layer=0)).values, (18, 36)).ravel()
    x = train.values.reshape(4, -1)
    np.testing.assert_allclose(stats["mean"], np.average(x, axis=1, weights=w), rtol=1e-6)
    np.testing.assert_allclose(stats["std"], np.sqrt(np.diag(np.cov(x, aweights=w))), rtol=1e-6)
    e = _errors(rng.gamma(2.0, 0.5, size=(4, 18, 36)))
    ev = e.values
    np.testing.assert_allclose(P.score_from_layer_errors(e).values, ev.sum(0), rtol=1e-5)
    # topography is context only: the elevation error does not enter the score
    np.testing.assert_allclose(P.score_from_layer_errors(e, rule="context").values, ev[:3].sum(0), rtol=1e-5)
    np.testing.assert_allclose(P.score_from_layer_errors(e, rule="weighted", stats=stats).values,
                               (ev / stats["std"][:, None, None]).sum(0), rtol=1e-5)
    # Mahalanobis with identity covariance and unit mean: sum of squared excesses above the mean
    ident = {"layers": list(e["layer"].values), "mean": np.ones(4), "std": np.ones(4), "cov": np.eye(4)}
    m = P.score_from_layer_errors(e, rule="mahalanobis", stats=ident).values
    np.testing.assert_allclose(m, (np.maximum(ev - 1, 0) ** 2).sum(0), rtol=1e-5, atol=1e-6)
    cm = P.score_from_layer_errors(e, rule="context_mahalanobis", stats=ident).values
    np.testing.assert_allclose(cm, (np.maximum(ev[:3] - 1, 0) ** 2).sum(0), rtol=1e-5, atol=1e-6)
    # a pixel predicted better than usual in every layer is not anomalous
    low = e.copy()
    low[:, 3, 3] = 0.0
    assert P.score_from_layer_errors(low, rule="mahalanobis", stats=stats).values[3, 3] == 0.0
    # correlated errors (one cause seen in two layers) count less than the same excess in independent ones
    cov = np.eye(4)
    cov[0, 1] = cov[1, 0] = 0.9
    corr = dict(ident, cov=cov)
    both = _errors(np.ones((4, 18, 36)))
    both[:2, 0, 0] = 3.0
    assert (P.score_from_layer_errors(both, rule="mahalanobis", stats=corr).values[0, 0]
            < P.score_from_layer_errors(both, rule="mahalanobis", stats=ident).values[0, 0])


def test_score_rules_refuse_bad_input():
    e = _errors(np.ones((4, 18, 36)))
    with pytest.raises(InputError, match="rule must be one of"):
        P.score_from_layer_errors(e, rule="max")
    with pytest.raises(InputError, match="calibrate_score"):
        P.score_from_layer_errors(e, rule="mahalanobis")
    with pytest.raises(InputError, match="non-topographic"):
        P.score_from_layer_errors(e, layers=["elevation"], rule="context")
    stats = P.fit_error_stats(e.sel(layer=["TiO2", "FeO"]) + _errors(np.random.default_rng(1).random((2, 18, 36)),
                                                                       ("TiO2", "FeO")))
    with pytest.raises(InputError, match="no layers"):
        P.score_from_layer_errors(e, rule="weighted", stats=stats)


def test_calibrated_model_round_trips_rule(tiny_model, tmp_path):
    train = [stack_layers(random_fields(s, blob=False), LAYERS) for s in (7, 8)]
    P.calibrate_score(tiny_model, train, rule="mahalanobis")
    assert tiny_model.error_stats["layers"] == list(LAYERS)
    st = stack_layers(random_fields(13), LAYERS)
    s = P.anomaly_score(tiny_model, st)
    assert s.attrs["method"] == "network (mahalanobis)" and (s.values >= 0).all()
    back = P.ProspectivityModel.load(tiny_model.save(tmp_path / "m.pt"))
    assert back.score_rule == "mahalanobis"
    np.testing.assert_allclose(P.anomaly_score(back, st).values, s.values, rtol=1e-5)
    tiny_model.score_rule = "sum"  # the module fixture is shared


@pytest.mark.slow
def test_fast_bench_reports_disjoint_seed_roles():
    res = P.bench(fast=True)
    train, val, test = (set(res[k]) for k in ("train_seeds", "validation_seeds", "test_seeds"))
    assert train and val and test and not (train & val) and not (train & test) and not (val & test)
    assert set(res["score_rule"].values()) <= set(P.SCORE_RULES)
    base, best = res["deposit_area_fraction"], res["precision_at_1pct_best_possible"]
    assert best == pytest.approx(min(1.0, base / 0.01))
    for m in ("network", "zscore", "isolation_forest", "pca", "conv_autoencoder"):
        # every method finds the planted deposits far better than chance (observed AUC 0.92-0.99, the
        # z-score baseline lowest) and its top 1 % holds more deposit than a random 1 % (the base rate),
        # but never more than all of the deposit area could fill
        assert res["auc"][m] > 0.9, (m, res["auc"][m])
        assert base < res["precision_at_1pct"][m] <= best + 1e-9, (m, res["precision_at_1pct"][m])
        assert set(res["per_seed"][m]) == {str(s) for s in test}
    # the chosen rule is the best on validation, never on the test Moons
    best = max(P.SCORE_RULES, key=lambda r: res["validation_auc"][f"network:{r}"])
    assert res["score_rule"]["network"] == best


def test_training_tiles_wrap_in_longitude_only_on_a_global_grid():
    z = np.broadcast_to(np.arange(40, dtype="float32"), (2, 16, 40)).copy()  # value = column index
    rng = np.random.default_rng(0)
    regional = P._tiles_from(z, 8, 200, rng, periodic=False)
    steps = np.abs(np.diff(regional[:, 0, 0, :], axis=1))
    assert (steps == 1).all()  # consecutive columns: the east and west edges never meet
    wrapped = P._tiles_from(z, 8, 200, rng, periodic=True)
    assert (np.abs(np.diff(wrapped[:, 0, 0, :], axis=1)) == 39).any()  # a global grid's seam is crossed


def test_layers_refuse_km_heights_and_bad_crater_tables():
    lat, lon = global_grid(1)
    z = xr.DataArray(np.zeros((lat.size, lon.size)), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"),
                     attrs={"units": "km"})
    # km heights used to give slopes 1000x too small, labelled deg, and a roughness labelled m
    for f in (slope, roughness):
        with pytest.raises(InputError, match="not metres"):
            f(z)
    tmpl = z.assign_attrs(units="m")
    craters = pd.DataFrame({"lat": [0.0, np.nan], "lon": [10.0, 20.0], "diameter_km": [30.0, 5.0]})
    with pytest.raises(InputError, match="missing"):  # was sklearn's "Input contains NaN"
        crater_density(craters, tmpl)
    swapped = pd.DataFrame({"lat": [120.0], "lon": [10.0], "diameter_km": [30.0]})
    with pytest.raises(InputError, match="swap"):
        crater_density(swapped, tmpl)
