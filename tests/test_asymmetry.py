"""Known-answer and behaviour tests for workbench.analysis.asymmetry."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from workbench import geo
from workbench.analysis import asymmetry as A
from workbench.errors import InputError


def _field(values: np.ndarray, ppd: float, name: str = "x", units: str = "m") -> xr.DataArray:
    t = geo.global_template(ppd, name=name)
    return t.copy(data=values.astype("float64")).assign_attrs(units=units)


def _latlon(ppd: float):
    lat, lon = geo.global_grid(ppd)
    return np.meshgrid(lat, lon, indexing="ij")


def test_mean_of_sin_lat_is_zero_and_constant_is_constant():
    lat2, _ = _latlon(2)
    assert A.area_weighted_mean(_field(np.sin(np.deg2rad(lat2)), 2)) == pytest.approx(0.0, abs=1e-12)
    assert A.area_weighted_mean(_field(np.full(lat2.shape, 7.25), 2)) == pytest.approx(7.25, rel=1e-12)
    # a pixel-count mean of sin(lat)^2 would be about 0.5; the area-weighted mean is 1/3
    assert A.area_weighted_mean(_field(np.sin(np.deg2rad(lat2)) ** 2, 2)) == pytest.approx(1 / 3, rel=1e-4)


def test_hemisphere_areas_are_half_the_moon_and_stats_report_them():
    da = _field(np.ones((360, 720)), 2)
    st = A.region_statistics(da, n_boot=100, seed=1)
    for r in ("near", "far", "north", "south"):
        assert float(st["area_km2"].sel(region=r)) == pytest.approx(geo.MOON_AREA_KM2 / 2, rel=1e-9)
        assert float(st["area_fraction"].sel(region=r)) == pytest.approx(0.5, rel=1e-12)
        assert float(st["mean"].sel(region=r)) == pytest.approx(1.0)
    assert st["mean"].attrs["units"] == "m"


def test_weighted_quantile_matches_unweighted_definition():
    x = np.arange(10.0)
    assert A.weighted_quantile(x, np.ones(10), 0.5) == pytest.approx(np.quantile(x, 0.5))
    # doubling a weight equals duplicating the value
    assert A.weighted_quantile([1, 2, 3], [1, 2, 1], 0.5) == pytest.approx(2.0)


def test_median_of_lon_field_is_area_exact():
    _, lon2 = _latlon(1)
    st = A.region_statistics(_field(lon2, 1, units="deg"), n_boot=100, quantiles=(0.25, 0.75))
    assert float(st["median"].sel(region="near")) == pytest.approx(0.0, abs=0.6)
    assert float(st["quantiles"].sel(region="near", quantile=0.25)) == pytest.approx(-45.0, abs=0.6)


def test_block_bootstrap_widens_ci_only_for_correlated_fields():
    rng = np.random.default_rng(0)
    white = rng.normal(size=(180, 360))
    smooth = ndimage.gaussian_filter(white, sigma=6, mode="wrap")
    smooth /= smooth.std()
    near = geo.hemisphere_masks(geo.global_template(1))["near"]
    w_white = A.block_size_sensitivity(_field(white, 1), near, (None, 10.0), n_boot=300)
    w_smooth = A.block_size_sensitivity(_field(smooth, 1), near, (None, 10.0), n_boot=300)
    assert 0.6 < w_white["width_vs_iid"].iloc[1] < 1.6  # no correlation: blocks change little
    assert w_smooth["width_vs_iid"].iloc[1] > 4.0  # correlated: iid CIs are far too narrow


def test_a_region_with_too_few_blocks_gets_a_nan_interval_and_a_warning():
    rng = np.random.default_rng(4)
    da = _field(rng.normal(size=(180, 360)), 1)
    lat2, lon2 = _latlon(1)
    small = xr.zeros_like(da, dtype=bool).copy(data=(lat2 > 1) & (lat2 < 9) & (lon2 > 1) & (lon2 < 9))
    with pytest.warns(UserWarning, match="spans only 1 bootstrap block.*smaller block_deg"):
        st = A.region_statistics(da, {"small": small}, block_deg=10.0, n_boot=100)
    assert int(st["n_units"].item()) == 1 and np.isfinite(st["mean"].item())
    assert np.isnan(st["mean_ci_low"].item()) and np.isnan(st["median_ci_high"].item())
    with pytest.warns(UserWarning, match="spans only 1"):
        cmp = A.compare_regions(da, small, ~small, block_deg=10.0, n_boot=100, n_perm=99)
    assert np.isnan(cmp["ci95"]).all()
    # with 2-degree blocks the same region has 16 blocks and a proper interval
    st2 = A.region_statistics(da, {"small": small}, block_deg=2.0, n_boot=100)
    assert st2["mean_ci_low"].item() < st2["mean"].item() < st2["mean_ci_high"].item()


def test_compare_regions_recovers_planted_difference():
    rng = np.random.default_rng(3)
    noise = ndimage.gaussian_filter(rng.normal(size=(180, 360)), sigma=3, mode="wrap") * 10
    _, lon2 = _latlon(1)
    da = _field(noise + np.where(np.abs(lon2) <= 90, 2.0, 0.0), 1)
    m = geo.hemisphere_masks(da)
    c = A.compare_regions(da, m["near"], m["far"], n_boot=400, n_perm=999, seed=0)
    assert c["ci95"][0] < 2.0 < c["ci95"][1]
    assert c["p_value"] < 0.01
    assert c["cohens_d"] > 0 and c["cles"] > 0.5
    # no planted difference between north and south: the test must not flag one
    c0 = A.compare_regions(_field(noise, 1), m["north"], m["south"], n_boot=200, n_perm=999, seed=0)
    assert c0["ci95"][0] < 0 < c0["ci95"][1] and c0["p_value"] > 0.05


def test_great_circle_split_with_pole_at_origin_is_near_far():
    t = geo.global_template(1)
    s = A.great_circle_split(t, 0.0, 0.0)
    assert bool((s["pole side"] == geo.hemisphere_masks(t)["near"]).all())


def test_fraction_above_known_answer():
    _, lon2 = _latlon(1)
    fr = A.fraction_above(_field(lon2, 1, units="deg"), 45.0, n_boot=100)
    assert float(fr["fraction"].sel(region="near")) == pytest.approx(0.25, abs=1e-9)
    assert float(fr["fraction"].sel(region="north")) == pytest.approx(0.375, abs=1e-9)


def test_fraction_above_leaves_nan_cells_out_and_needs_a_strict_excess():
    """1 north of the equator, 0 south of it, NaN south of 60S, threshold 0.5: the near side's valid area is
    its northern half (area share sin 90 - sin 0 = 1) and its band 60S-0 (sin 60), so the fraction above is
    1 / (1 + sin 60) = 0.5359; counting the NaN cells as 'not above' would give 0.5. A threshold equal to
    the largest value (1 on a 0/1 field) is not exceeded anywhere: fraction 0, not the area share of the 1s."""
    lat2, lon2 = _latlon(1)
    v = np.where(lat2 > 0, 1.0, 0.0)
    v[lat2 < -60] = np.nan
    m = geo.hemisphere_masks(geo.global_template(1))
    fr = A.fraction_above(_field(v, 1, units="1"), 0.5, {"near": m["near"], "south": m["south"]}, n_boot=100)
    assert float(fr["fraction"].sel(region="near")) == pytest.approx(1 / (1 + np.sin(np.deg2rad(60))), rel=1e-9)
    assert float(fr["fraction"].sel(region="south")) == 0.0
    assert float(fr["area_km2"].sel(region="near")) == pytest.approx(
        geo.MOON_AREA_KM2 / 4 * (1 + np.sin(np.deg2rad(60))), rel=1e-9)
    ind = _field(np.where(np.abs(lon2) <= 90, 1.0, 0.0), 1, units="1")
    at_max = A.fraction_above(ind, 1.0, {"near": m["near"]}, n_boot=100)
    assert float(at_max["fraction"].sel(region="near")) == 0.0


def test_region_distributions_are_area_weighted():
    """value = latitude on a 1-degree grid, 10-degree bins, north region: a bin's density is its latitude
    band's share of the hemisphere's area, sin(b) - sin(a), over the 10-degree bin width: 85 -> (1 - sin 80)/10
    = 0.00152, 5 -> sin 10 / 10 = 0.01736, ratio 0.0875 (a cell count would give 1: 10 rows of 360 in each)."""
    lat2, _ = _latlon(1)
    d = A.region_distributions(_field(lat2, 1, units="deg"), bins=np.arange(-90, 91, 10.0)).sel(region="north")
    s10, s80 = np.sin(np.deg2rad(10)), np.sin(np.deg2rad(80))
    assert float(d.sel(value=85.0)) == pytest.approx((1 - s80) / 10, rel=1e-9)
    assert float(d.sel(value=5.0)) == pytest.approx(s10 / 10, rel=1e-9)
    assert float(d.sel(value=85.0) / d.sel(value=5.0)) == pytest.approx(0.0875, abs=1e-4)
    assert float(d.sum()) * 10 == pytest.approx(1.0, rel=1e-12)


def test_terrane_masks_from_cf_flags():
    t = geo.global_template(1)
    codes = xr.zeros_like(t, dtype=int).where(t["lat"] < 0, 1).astype(int)
    codes.attrs.update(flag_values=[0, 1], flag_meanings="south_thing north_thing")
    m = A.terrane_masks(codes)
    assert set(m) == {"south_thing", "north_thing"} and int(m["north_thing"].sum()) == 90 * 360


def test_mg_number_known_answer_and_bad_input():
    feo = xr.DataArray([71.84, 0.0, np.nan], attrs={"units": "wt%"})
    mgo = xr.DataArray([40.30, 10.0, 5.0], attrs={"units": "wt%"})
    mg = A.mg_number(feo, mgo)
    np.testing.assert_allclose(mg.values, [50.0, 100.0, np.nan])
    with pytest.raises(InputError, match="negative"):
        A.mg_number(-feo, mgo)
    with pytest.raises(InputError, match="wt%"):
        A.mg_number(feo.assign_attrs(units="1"), mgo)


def test_bad_inputs_are_explained():
    t = geo.global_template(1).fillna(1.0)
    with pytest.raises(InputError, match="dims"):
        A.region_statistics(t.rename(lat="y"))
    with pytest.raises(InputError, match="no valid"):
        A.region_statistics(t, {"empty": xr.zeros_like(t, dtype=bool)}, n_boot=100)
    with pytest.raises(InputError, match="different grid"):
        A.region_statistics(t, {"x": geo.hemisphere_masks(geo.global_template(2))["near"]}, n_boot=100)
    with pytest.raises(InputError, match="replicates"):
        A.region_statistics(t, n_boot=5)


def test_nan_cells_do_not_count():
    lat2, lon2 = _latlon(1)
    v = np.where(np.abs(lon2) <= 90, 1.0, 3.0)
    v[lat2 > 60] = np.nan
    st = A.region_statistics(_field(v, 1), n_boot=100)
    assert float(st["mean"].sel(region="near")) == pytest.approx(1.0)
    assert float(st["area_fraction"].sel(region="near")) == pytest.approx(0.5)
    assert float(st["area_km2"].sel(region="north")) == pytest.approx(
        geo.MOON_AREA_KM2 / 2 * np.sin(np.deg2rad(60)), rel=1e-9)


def _lognormal(sigma: float = 2.0, seed: int = 0) -> xr.DataArray:
    g = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(180, 360)), 2, mode="wrap")
    return _field(np.exp(sigma * g / g.std()), 1)


def test_quantile_intervals_contain_their_estimate_on_a_skewed_field():
    # global-range bins put most of a lognormal field in one bin: the median CI was [1.62, 1.75] for 0.98
    st = A.region_statistics(_lognormal(), n_boot=100, quantiles=(0.05, 0.5, 0.95))
    assert np.all(st["quantile_ci_low"] <= st["quantiles"]) and np.all(st["quantiles"] <= st["quantile_ci_high"])
    assert np.all(st["median_ci_low"] <= st["median"]) and np.all(st["median"] <= st["median_ci_high"])
    assert np.all(st["mean_ci_low"] <= st["mean"]) and np.all(st["mean"] <= st["mean_ci_high"])
    # the median CI is not absurdly wide either (the near-side median of ~1 is known to about +-20%)
    assert float((st["median_ci_high"] - st["median_ci_low"]).sel(region="near")) < 0.6


def test_one_extreme_pixel_does_not_move_cles_or_other_regions_intervals():
    rng = np.random.default_rng(0)
    _, lon2 = _latlon(1)
    base = np.where(np.abs(lon2) <= 90, 1.0, 0.0) + rng.normal(size=lon2.shape)
    spiked = base.copy()
    spiked[100, 300] = 1e6  # one far-side pixel
    m = geo.hemisphere_masks(_field(base, 1))
    c0 = A.compare_regions(_field(base, 1), m["near"], m["far"], n_boot=100, n_perm=99)
    c1 = A.compare_regions(_field(spiked, 1), m["near"], m["far"], n_boot=100, n_perm=99)
    assert c0["cles"] == pytest.approx(0.764, abs=0.01)
    assert c1["cles"] == pytest.approx(c0["cles"], abs=1e-4)  # was 0.500: every value in one bin
    st = A.region_statistics(_field(spiked, 1), n_boot=100)
    assert np.all(st["median_ci_low"] <= st["median"]) and np.all(st["median"] <= st["median_ci_high"])
    assert float(st["median_ci_high"].sel(region="near")) < 2.0


def test_cles_is_exact_with_ties():
    lat2, lon2 = _latlon(1)
    v = np.where(np.abs(lon2) <= 90, 1.0, 0.0)  # near all 1, far all 0: P(near > far) = 1
    m = geo.hemisphere_masks(_field(v, 1))
    assert A.compare_regions(_field(v, 1), m["near"], m["far"], n_boot=100, n_perm=99)["cles"] == 1.0
    c = A.compare_regions(_field(np.ones_like(v), 1), m["near"], m["far"], n_boot=100, n_perm=99)
    assert c["cles"] == pytest.approx(0.5)  # all ties count half


def test_results_do_not_depend_on_grid_layout_iid_included():
    rng = np.random.default_rng(2)
    da = _field(ndimage.gaussian_filter(rng.normal(size=(180, 360)), 3, mode="wrap"), 1)
    variants = [da.isel(lat=slice(None, None, -1)), da.isel(lon=slice(None, None, -1)), da.T,
                da.assign_coords(lon=geo.wrap_lon_360(da["lon"].values)).sortby("lon")]
    for block in (10.0, None):
        ref = A.region_statistics(da, block_deg=block, n_boot=60, seed=1)
        for d in variants:
            st = A.region_statistics(d, block_deg=block, n_boot=60, seed=1)
            for v in ("mean_ci_low", "mean_ci_high", "median_ci_low", "median_ci_high"):
                np.testing.assert_allclose(st[v].values, ref[v].values, rtol=0, atol=1e-9)


def test_a_mask_in_another_layout_of_the_same_grid_is_aligned():
    da = _lognormal(1.0, seed=3)
    m = geo.hemisphere_masks(da)
    ref = A.compare_regions(da, m["near"], m["far"], n_boot=100, n_perm=99)
    for flip in ({"lat": slice(None, None, -1)}, {"lon": slice(None, None, -1)}):
        c = A.compare_regions(da, m["near"].isel(flip), m["far"].isel(flip), n_boot=100, n_perm=99)
        assert c["value"] == pytest.approx(ref["value"], abs=1e-12)
    m360 = m["near"].assign_coords(lon=geo.wrap_lon_360(m["near"]["lon"].values)).sortby("lon")
    st = A.region_statistics(da, {"near": m360}, n_boot=60)
    assert float(st["mean"][0]) == pytest.approx(A.area_weighted_mean(da, m["near"]), rel=1e-12)


def test_mg_number_refuses_grids_that_do_not_match_exactly():
    t = geo.global_template(1)
    feo = t.copy(data=np.full(t.shape, 10.0)).assign_attrs(units="wt%")
    mgo = t.copy(data=np.full(t.shape, 8.0)).assign_attrs(units="wt%")
    with pytest.raises(InputError, match="wrap"):
        A.mg_number(feo, mgo.assign_coords(lon=geo.wrap_lon_360(mgo["lon"].values)).sortby("lon"))
    with pytest.raises(InputError, match="different grids.*regrid"):
        A.mg_number(feo, mgo.assign_coords(lat=mgo["lat"].values + 1e-9))
    # the same cells in another order are aligned, not dropped
    mg = A.mg_number(feo, mgo.isel(lat=slice(None, None, -1)))
    assert mg.shape == (180, 360) and np.isfinite(mg).all()


def test_block_size_sensitivity_refuses_an_empty_mask():
    da = _field(np.random.default_rng(0).normal(size=(180, 360)), 1)
    with pytest.raises(InputError, match="no valid"):
        A.block_size_sensitivity(da, xr.zeros_like(da, dtype=bool), (None, 10.0), n_boot=100)
    with pytest.raises(InputError, match="no valid"):
        A.block_size_sensitivity(da.where(da["lat"] > 0), geo.hemisphere_masks(da)["south"], (10.0,), n_boot=100)


def test_quantile_intervals_of_discrete_data_are_values_not_bin_spans():
    g = geo.global_template(0.5)
    rng = np.random.default_rng(0)
    ind = g.copy(data=(rng.random(g.shape) < 0.3).astype(float)).assign_attrs(units="1")
    st = A.region_statistics(ind, n_boot=100, seed=0).sel(region="near", quantile=0.5)
    # a 0/1 indicator with 30 % ones: the median is 0 in every replicate; tied edges used to give [0, 1]
    assert float(st["median"]) == 0.0
    assert (float(st["median_ci_low"]), float(st["median_ci_high"])) == (0.0, 0.0)


def test_a_regions_interval_does_not_depend_on_the_other_regions_asked_for():
    rng = np.random.default_rng(3)
    smooth = ndimage.gaussian_filter(rng.normal(size=(90, 180)), sigma=4, mode="wrap")
    da = _field(smooth, 0.5)
    masks = A.region_masks(da, terranes=False)
    both = A.region_statistics(da, {"near": masks["near"], "far": masks["far"]}, n_boot=200, seed=4)
    alone = A.region_statistics(da, {"far": masks["far"]}, n_boot=200, seed=4)
    swapped = A.region_statistics(da, {"far": masks["far"], "near": masks["near"]}, n_boot=200, seed=4)
    for v in ("mean_ci_low", "mean_ci_high", "median_ci_low", "median_ci_high", "quantile_ci_low"):
        assert np.array_equal(both[v].sel(region="far").values, alone[v].sel(region="far").values), v
        assert np.array_equal(both[v].sel(region="near").values, swapped[v].sel(region="near").values), v
    # another seed draws other replicates
    other = A.region_statistics(da, {"far": masks["far"]}, n_boot=200, seed=5)
    assert float(other["mean_ci_low"][0]) != float(alone["mean_ci_low"][0])


def _two_level_field() -> xr.DataArray:
    """2 +- 1 on the near side, 0 +- 1 on the far side, the +-1 alternating by 1-degree column."""
    _, lon2 = _latlon(1)
    sign = np.where(np.arange(360) % 2 == 0, 1.0, -1.0)[None, :]
    return _field(np.where(np.abs(lon2) <= 90, 2.0, 0.0) + sign, 1)


def test_compare_regions_known_answer_p_value_and_effect_size():
    """Every 10-degree block holds 5 columns of +1 and 5 of -1 in each row, so each near block has the area
    mean 2 and each far block 0, and each region has the area-weighted variance E[x^2] - m^2 = 1:
    d = (2 - 0) / sqrt((1 + 1) / 2) = 2.0 (Cohen 1988, pooled SD). Only the one relabelling that swaps the
    two regions reaches |d*| >= 2, so none of 99 permutations does and p = (1 + 0)/(1 + 99) = 0.01
    (Phipson & Smyth 2010); the two-sided p is the same with the regions swapped and d changes sign.
    CLES: near values {1, 3}, far {-1, 1}, equal areas: P(a > b) + P(a = b)/2 = 3/4 + (1/4)/2 = 0.875.
    """
    da = _two_level_field()
    m = geo.hemisphere_masks(da)
    c = A.compare_regions(da, m["near"], m["far"], n_boot=100, n_perm=99, seed=0)
    assert c["value"] == pytest.approx(2.0, abs=1e-12)
    assert c["p_value"] == 0.01
    assert c["cohens_d"] == pytest.approx(2.0, rel=1e-9)
    assert c["cles"] == pytest.approx(0.875, abs=1e-12)
    s = A.compare_regions(da, m["far"], m["near"], n_boot=100, n_perm=99, seed=0)
    assert s["value"] == pytest.approx(-2.0, abs=1e-12)
    assert s["p_value"] == 0.01
    assert s["cohens_d"] == pytest.approx(-2.0, rel=1e-9)


def test_std_and_cohens_d_pool_each_region_s_own_variance():
    """2 +- 1 on the near side and 0 +- 3 on the far side, the sign alternating by 1-degree column (each
    region has as many + as - columns, so its area-weighted variance is exactly E[x^2] - m^2): std 1 and
    3, and Cohen's d = (2 - 0) / sqrt((1 + 9) / 2) = 2 / sqrt(5) = 0.894 (reporting the variance as the
    std would give 9; pooling the near variance twice, d = 2)."""
    _, lon2 = _latlon(1)
    sign = np.where(np.arange(360) % 2 == 0, 1.0, -1.0)[None, :]
    da = _field(np.where(np.abs(lon2) <= 90, 2.0 + sign, 3.0 * sign), 1)
    m = geo.hemisphere_masks(da)
    st = A.region_statistics(da, {"near": m["near"], "far": m["far"]}, n_boot=100)
    assert float(st["std"].sel(region="near")) == pytest.approx(1.0, rel=1e-9)
    assert float(st["std"].sel(region="far")) == pytest.approx(3.0, rel=1e-9)
    c = A.compare_regions(da, m["near"], m["far"], n_boot=100, n_perm=99)
    assert c["value"] == pytest.approx(2.0, abs=1e-12)
    assert c["cohens_d"] == pytest.approx(2 / np.sqrt(5), rel=1e-9)


def test_iid_bootstrap_mean_interval_matches_the_normal_theory_width():
    """For iid N(0, 1) cells (2-degree grid, near side, pixel bootstrap), the 95 % percentile interval of
    the area-weighted mean m = sum(w x)/sum(w) has width ~ 2 * 1.96 * SE with the linearised (delta
    method) SE = sqrt(sum w^2 (x - m)^2) / sum(w) (Efron & Tibshirani 1993, sections 13.3 and 6.5);
    a 90 % interval would be 1.645/1.96 = 0.84 of it.
    """
    rng = np.random.default_rng(0)
    da = _field(rng.normal(size=(90, 180)), 0.5)
    near = geo.hemisphere_masks(da)["near"]
    st = A.region_statistics(da, {"near": near}, block_deg=None, n_boot=2000, seed=0)
    x, w = da.values[near.values], geo.area_weights(da).values[near.values]
    m = np.sum(w * x) / np.sum(w)
    se = np.sqrt(np.sum(w**2 * (x - m) ** 2)) / np.sum(w)
    assert float(st["mean"][0]) == pytest.approx(m, rel=1e-9)
    width = float(st["mean_ci_high"][0] - st["mean_ci_low"][0])
    assert 0.9 < width / (2 * 1.959964 * se) < 1.1


def test_median_interval_is_the_percentile_interval_of_the_replicate_medians():
    """Pixel bootstrap (block_deg=None) of whole numbers 0...1999 drawn at random on the band |lat| < 10 of a
    1-degree grid: 7200 cells and at most 2000 distinct values, so the region gets one histogram bin per
    value and its replicate medians are values, not bin spans. Each replicate draws the band's 7200 cells
    with replacement from the region's own stream (region_rng(seed, name)); its median is the smallest
    value at which the area-weighted CDF of the drawn cells reaches 1/2. The 95 % interval is the 2.5th
    and 97.5th percentiles of the 400 replicate medians (widened only to contain the point median),
    rebuilt here; a 90 % interval, or one read from the lower tail at both ends, would differ."""
    lat2, _ = _latlon(1)
    v = np.random.default_rng(0).integers(0, 2000, lat2.shape).astype(float)
    da = _field(v, 1, units="1")
    band = xr.zeros_like(da, dtype=bool).copy(data=np.abs(lat2) < 10)
    st = A.region_statistics(da, {"band": band}, block_deg=None, n_boot=400, seed=0)
    x, w = v[band.values], geo.area_weights(da).values[band.values]  # north-up, west-east: the units' order
    values, code = np.unique(x, return_inverse=True)
    draws = A.region_rng(0, "band").integers(0, x.size, size=(400, x.size))
    meds = []
    for d in draws:
        h = np.bincount(code, weights=np.bincount(d, minlength=x.size) * w, minlength=values.size)
        meds.append(values[np.argmax(np.cumsum(h) / h.sum() >= 0.5)])
    med = float(st["median"][0])
    lo, hi = min(np.quantile(meds, 0.025), med), max(np.quantile(meds, 0.975), med)
    assert lo < med < hi
    assert float(st["median_ci_low"][0]) == pytest.approx(lo, rel=1e-12)
    assert float(st["median_ci_high"][0]) == pytest.approx(hi, rel=1e-12)


def test_block_ids_are_distinct_whole_blocks_across_the_seam():
    """30° blocks on a global 1° grid: 6 x 12 distinct labels of 900 cells each, none shared between the
    last block of one latitude band and the first of the next (the label is row x blocks-per-row + column)."""
    from workbench.analysis.asymmetry import block_ids
    from workbench.geo import global_grid

    lat, lon = global_grid(1)
    ids = block_ids(xr.Dataset(coords={"lat": lat, "lon": lon}), 30.0)
    labels, counts = np.unique(ids, return_counts=True)
    assert labels.size == 72 and (counts == 900).all()
    assert ids[0, 0] != ids[0, -1] and ids[30, 0] != ids[0, -1]


def test_block_ids_stay_distinct_when_blocks_do_not_divide_the_circle():
    """7-degree blocks on a 1-degree grid: ceil(180/7) = 26 rows of ceil(360/7) = 52 blocks (the last one 3
    degrees wide), 1352 distinct labels; 51 labels per row would give each row's last block the label of
    the next row's first (1327)."""
    from workbench.analysis.asymmetry import block_ids
    from workbench.geo import global_grid

    lat, lon = global_grid(1)
    ids = block_ids(xr.Dataset(coords={"lat": lat, "lon": lon}), 7.0)
    assert np.unique(ids).size == 26 * 52
    assert ids[0, -1] != ids[7, 0]  # lat 89.5, lon 179.5 (row 0, block 51) vs lat 82.5, lon -179.5 (row 1, block 0)
