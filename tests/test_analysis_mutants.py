"""Known-answer tests for hemispheric statistics, crater densities and the SPA profiles (mutation review of
workbench.analysis.asymmetry, .craters and .spa: each test fails on a mutant of the source that the rest of
the suite let through).

Fast and offline: tiny synthetic grids, profiles and crater tables built in memory, fixed seeds; no data
mirror, no network, no dataset fetch (the basin list is passed in as a table). Expected values are worked
out by hand in each docstring or comment, not copied from the code's output.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import geo
from workbench.analysis import asymmetry as A
from workbench.analysis import craters as C
from workbench.analysis import spa
from workbench.errors import InputError


def _field(values, ppd: float = 1, name: str = "x", units: str = "m") -> xr.DataArray:
    t = geo.global_template(ppd, name=name)
    return t.copy(data=np.asarray(values, dtype="float64")).assign_attrs(units=units)


def _latlon(ppd: float = 1):
    lat, lon = geo.global_grid(ppd)
    return np.meshgrid(lat, lon, indexing="ij")


def _mask(da: xr.DataArray, values) -> xr.DataArray:
    return xr.zeros_like(da, dtype=bool).copy(data=np.asarray(values, dtype=bool))


# ----------------------------------------------------------------------------------- asymmetry: helpers
def test_block_deg_180_is_allowed_and_gives_four_hemispheric_blocks():
    """block_deg must be in (0, 180]: 180-degree blocks aligned on +90 lat and -180 lon are one row (the
    whole 180 degrees of latitude) of two columns, the western (label 0) and eastern (1) hemispheres."""
    lat, lon = geo.global_grid(1)
    ids = A.block_ids(xr.Dataset(coords={"lat": lat, "lon": lon}), 180.0)
    assert sorted(np.unique(ids).tolist()) == [0, 1]
    assert ids[0, 0] == ids[-1, 0] == 0 and ids[0, -1] == ids[-1, -1] == 1


def test_weighted_quantile_leaves_zero_weight_values_out_and_does_not_refuse_them():
    """Values [1, 100, 3] with weights [1, 0, 1]: the zero-weight 100 is left out (the docstring's way to
    drop a value), leaving {1, 3} with plotting positions 0.25 and 0.75: median 2, maximum (q = 1) 3."""
    assert float(A.weighted_quantile([1.0, 100.0, 3.0], [1.0, 0.0, 1.0], 0.5)) == pytest.approx(2.0)
    assert float(A.weighted_quantile([1.0, 100.0, 3.0], [1.0, 0.0, 1.0], 1.0)) == pytest.approx(3.0)


def test_great_circle_split_puts_cells_exactly_90_degrees_away_on_the_pole_side():
    """'within 90 deg of the pole' is inclusive: with the pole at (0, 0), the equator points at lon +-90
    are exactly 90 deg away and belong to the pole side; lon 180 is on the antipode side."""
    ds = xr.Dataset(coords={"lat": [0.0], "lon": [-90.0, 0.0, 90.0, 180.0]})
    side = A.great_circle_split(ds, 0.0, 0.0)["pole side"].values[0]
    assert side.tolist() == [True, True, True, False]


def test_cover_widens_to_the_estimate_and_out_to_the_bin_edges():
    """_cover: [1, 2] with estimate 3 becomes [1, 3]; with edges 0, 1, 2, 3 the interval [1.5, 2.5] is
    widened out to the edges of the bins holding its ends, [1, 3]."""
    lo, hi = A._cover(1.0, 2.0, 3.0)
    assert (float(lo), float(hi)) == (1.0, 3.0)
    lo, hi = A._cover(1.5, 2.5, 2.0, np.array([0.0, 1.0, 2.0, 3.0]))
    assert (float(lo), float(hi)) == (1.0, 3.0)


def test_discrete_replicate_quantile_is_the_value_where_the_cdf_reaches_q():
    """Two values 0 and 1 with equal area: the CDF reaches exactly 1/2 at 0, so the discrete median is 0."""
    out = A._quantiles_from_hist(np.array([[1.0, 1.0]]), np.array([0.0, 1.0, 1.0]), np.array([0.5]), True)
    assert float(out[0, 0]) == 0.0


def test_continuous_edges_with_a_tied_top_stay_continuous():
    """0...100 (101 distinct values, no ties): the continuous equal-area edges; the top two edges both hit
    the maximum, and the last is nudged up so the edges are not read as the discrete form."""
    edges = A._region_edges(np.arange(101.0), np.ones(101))
    assert edges.size == A._N_HIST_BINS + 1
    assert not A._is_discrete(edges)


def test_region_rng_depends_on_the_region_name_through_its_crc32():
    """The documented stream: default_rng([seed, crc32(name)]); 'near' and 'far' must not share it."""
    near = A.region_rng(0, "near").integers(0, 2**62, 4)
    far = A.region_rng(0, "far").integers(0, 2**62, 4)
    assert not np.array_equal(near, far)
    ref = np.random.default_rng([0, zlib.crc32(b"near")]).integers(0, 2**62, 4)
    assert np.array_equal(near, ref)


# --------------------------------------------------------------------------- asymmetry: region statistics
def test_bootstrap_replicate_mean_is_area_weighted():
    """Pixel bootstrap of the rows at lat 89.5 (value 100, cell area ~ cos 89.5 = 0.0087) and lat 0.5
    (value 0, area ~ 1): the area-weighted mean is 100 * 0.0087 / 1.0087 = 0.87 and every replicate ratio
    estimator stays near it; an unweighted mean of the drawn cells would be ~50."""
    lat2, _ = _latlon(1)
    da = _field(np.where(lat2 > 89, 100.0, 0.0))
    reg = _mask(da, (lat2 == 89.5) | (lat2 == 0.5))
    st = A.region_statistics(da, {"r": reg}, block_deg=None, n_boot=50, quantiles=(0.5,))
    m = 100 * np.cos(np.deg2rad(89.5)) / (np.cos(np.deg2rad(89.5)) + np.cos(np.deg2rad(0.5)))
    assert float(st["mean"][0]) == pytest.approx(m, rel=1e-3)
    assert float(st["mean_ci_high"][0]) < 2.0


def test_five_blocks_get_an_interval_and_four_do_not():
    """MIN_BOOT_UNITS = 5: a region of exactly five 10-degree blocks gets a finite interval without a
    warning; four blocks give NaN with a warning."""
    lat2, lon2 = _latlon(1)
    da = _field(np.random.default_rng(0).normal(size=lat2.shape))
    five = _mask(da, (lat2 > 0) & (lat2 < 10) & (lon2 > 0) & (lon2 < 50))
    four = _mask(da, (lat2 > 0) & (lat2 < 10) & (lon2 > 0) & (lon2 < 40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = A.region_statistics(da, {"five": five}, n_boot=50, quantiles=(0.5,))
    assert int(st["n_units"][0]) == 5 and np.isfinite(float(st["mean_ci_low"][0]))
    with pytest.warns(UserWarning, match="only 4 bootstrap block"):
        st4 = A.region_statistics(da, {"four": four}, n_boot=50, quantiles=(0.5,))
    assert np.isnan(float(st4["mean_ci_low"][0]))


def test_quantiles_0_and_1_are_refused():
    da = _field(np.zeros((180, 360)))
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        A.region_statistics(da, n_boot=50, quantiles=(0.0, 0.5))
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        A.region_statistics(da, n_boot=50, quantiles=(1.0,))


def test_block_permutation_p_value_counts_ties_with_the_observed_difference():
    """Two 10-degree blocks of 1 (region a) and two of 0 (region b) in the same latitude band (equal
    areas): of the C(4, 2) = 6 block labellings, 2 reach |d*| = 1 = |d| (the observed one and its swap),
    so p -> 1/3 (docstring: 2 + 2 blocks give p >= 1/3); counting only |d*| > |d| would give 1/1000."""
    lat2, lon2 = _latlon(1)
    band = (lat2 > 0) & (lat2 < 10)
    da = _field(np.where(lon2 < 20, 1.0, 0.0))
    a = _mask(da, band & (lon2 > 0) & (lon2 < 20))
    b = _mask(da, band & (lon2 > 20) & (lon2 < 40))
    with pytest.warns(UserWarning, match="bootstrap block"):
        c = A.compare_regions(da, a, b, n_boot=50, n_perm=999, seed=0)
    assert c["value"] == 1.0 and c["n_units_a"] == 2 and c["n_units_b"] == 2
    assert c["p_value"] == pytest.approx(1 / 3, abs=0.06)
    assert np.isnan(c["ci95"][0])


def test_block_size_sensitivity_width_ratio_is_nan_without_iid_and_one_for_iid():
    lat2, _ = _latlon(0.5)
    da = _field(np.random.default_rng(1).normal(size=lat2.shape), 0.5)
    near = geo.hemisphere_masks(da)["near"]
    df = A.block_size_sensitivity(da, near, (10.0, 20.0), n_boot=50)
    assert df["width_vs_iid"].isna().all()
    df = A.block_size_sensitivity(da, near, (None, 10.0), n_boot=50)
    assert df["width_vs_iid"].iloc[0] == 1.0 and np.isnan(df["block_deg"].iloc[0])


def test_region_distributions_bin_count_and_edges_are_checked():
    """bins=4 over data 0...3: edges 0, 0.75, 1.5, 2.25, 3 and centres 0.375 ... 2.625."""
    _, lon2 = _latlon(1)
    da = _field(np.floor((lon2 + 180) / 90))  # 0, 1, 2, 3 by quarter of longitude
    d = A.region_distributions(da, bins=4)
    np.testing.assert_allclose(d["value"].values, [0.375, 1.125, 1.875, 2.625])
    with pytest.raises(InputError, match="increasing"):
        A.region_distributions(da, bins=[0.0, 1.0, 1.0, 2.0])
    with pytest.raises(InputError, match="positive whole number"):
        A.region_distributions(da, bins=2.5)


def test_mg_number_refuses_slightly_negative_oxides_and_other_units():
    feo = xr.DataArray([5.0, -0.5], dims="x", attrs={"units": "wt%"})
    mgo = xr.DataArray([5.0, 5.0], dims="x", attrs={"units": "wt%"})
    with pytest.raises(InputError, match="FeO has negative values"):
        A.mg_number(feo, mgo)
    with pytest.raises(InputError, match="wt%"):
        A.mg_number(abs(feo), mgo.assign_attrs(units="ppm"))


def test_fraction_above_within_intersects_each_region():
    """Field = longitude, threshold 45, near side restricted to the north: of the near-north quarter of the
    Moon (columns -89.5 ... 89.5, equal area per column), the 45 columns 45.5 ... 89.5 exceed 45: 0.25."""
    _, lon2 = _latlon(1)
    da = _field(lon2, units="deg")
    m = geo.hemisphere_masks(da)
    fr = A.fraction_above(da, 45.0, {"near": m["near"]}, within=m["north"], n_boot=50)
    assert float(fr["fraction"][0]) == pytest.approx(0.25, abs=1e-9)
    assert float(fr["area_km2"][0]) == pytest.approx(np.pi * geo.MOON_RADIUS_KM**2, rel=1e-3)


def test_a_mask_with_shuffled_longitudes_is_aligned_by_coordinates():
    """A DataArray mask may list the same longitudes in any order: mask 0 < lon < 90 shuffled; the
    area-weighted mean longitude inside it is 45 (columns 0.5 ... 89.5, equal area)."""
    _, lon2 = _latlon(1)
    da = _field(lon2, units="deg")
    mask = _mask(da, (lon2 > 0) & (lon2 < 90))
    perm = np.random.default_rng(3).permutation(360)
    shuffled = mask.isel(lon=perm)
    assert A.area_weighted_mean(da, shuffled) == pytest.approx(45.0, abs=1e-9)


def test_a_mask_half_a_cell_off_or_transposed_is_refused():
    da = _field(np.zeros((180, 360)))
    near = geo.hemisphere_masks(da)["near"]
    with pytest.raises(InputError, match="different grid"):
        A.area_weighted_mean(da, near.assign_coords(lon=near["lon"].values + 0.5))
    with pytest.raises(InputError, match="has shape"):
        A.area_weighted_mean(da, np.ones((360, 180), dtype=bool))


def test_asymmetry_summary_counts_324_blocks_per_hemisphere():
    """10-degree blocks: a hemisphere is 18 x 18 (near/far) or 9 x 36 (north/south) = 324 blocks."""
    lat2, lon2 = _latlon(0.5)
    da = _field(np.where(np.abs(lon2) < 90, 1.0, 0.0) + 0.01 * np.random.default_rng(2).normal(size=lat2.shape), 0.5)
    s = A.asymmetry_summary(da, n_boot=50, n_perm=99)
    assert [s[r]["n_blocks"] for r in ("near", "far", "north", "south")] == [324] * 4
    assert s["near_minus_far"]["value"] == pytest.approx(1.0, abs=0.01)  # near minus far, not far minus near


# ------------------------------------------------------------------------------------------------ craters
def _table(lat, lon, d) -> pd.DataFrame:
    return pd.DataFrame({"lat": np.asarray(lat, float), "lon": np.asarray(lon, float),
                         "diameter_km": np.asarray(d, float)})


def test_zero_diameter_and_non_integer_counts_are_refused():
    with pytest.raises(InputError, match="positive"):
        C.check_crater_table(_table([0], [0], [0.0]))
    with pytest.raises(InputError, match="integers"):
        C.poisson_interval(2.5)


def test_coverage_mask_is_inclusive_and_needs_low_below_high():
    grid = xr.DataArray(np.zeros((3, 2)), dims=("lat", "lon"), coords={"lat": [60.0, 0.0, -60.0], "lon": [0.0, 90.0]})
    assert bool(C.coverage_mask(grid, (-60.0, 60.0)).all())
    with pytest.raises(InputError, match="low < high"):
        C.coverage_mask(grid, (10.0, 10.0))


def test_diameter_cuts_are_inclusive_and_coverage_edge_craters_count():
    """d_min=10, d_max=30 keep craters of exactly 10 and 30 km (docstring: inclusive); a crater at exactly
    lat 60 is inside the coverage (-60, 60)."""
    cr = _table([5, 5, 5, 5, 60], [10, 10, 10, 10, 10], [5, 10, 30, 40, 20])
    st = C.crater_density(cr, lat_range=(-60.0, 60.0), d_min=10.0, d_max=30.0, block_deg=None)
    assert int(st["count"].sel(region="near")) == 3
    assert st.attrs["n_craters"] == 3
    assert (st.attrs["d_min"], st.attrs["d_max"]) == (10.0, 30.0)


def test_compare_densities_wald_interval_with_unequal_areas():
    """k_a = 100 on 1e6 km2 (100 per 1e6) vs k_b = 50 on 2e6 km2 (25): difference 75, Wald SE =
    1e6 sqrt(100/1e12 + 50/4e12) = sqrt(112.5) = 10.607, 95 % interval 75 -+ 1.959964 * 10.607."""
    c = C.compare_densities(100, 1e6, 50, 2e6)
    half = 1.959964 * np.sqrt(112.5)
    assert c["value"] == pytest.approx(75.0)
    assert c["ci95"] == pytest.approx([75 - half, 75 + half], rel=1e-6)


def test_compare_densities_exact_p_value_uses_the_area_share_of_a():
    """3 craters on 3e6 km2 vs 0 on 1e6 km2: under equal densities k_a ~ Binomial(3, 0.75), P(3) = 27/64
    is the largest probability, so the two-sided p-value is 1 (with p0 = 0.25 it would be 1/64)."""
    c = C.compare_densities(3, 3e6, 0, 1e6)
    assert c["p_value"] == pytest.approx(1.0)
    assert c["rate_ratio"] == float("inf") and c["rate_ratio_ci95"][1] == float("inf")  # Clopper-Pearson upper limit 1


def test_compare_densities_without_craters_and_with_zero_area():
    c = C.compare_densities(0, 1e6, 0, 1e6)
    assert c["p_value"] == 1.0 and np.isnan(c["rate_ratio"]) and c["rate_ratio_ci95"] == [0.0, float("inf")]
    with pytest.raises(InputError, match="positive"):
        C.compare_densities(1, 0.0, 1, 1e6)


def test_size_frequency_default_diameters_run_sqrt2_from_smallest_to_largest():
    """Craters of 1 and 4 km: sqrt(2)-spaced diameters 1, 1.41, 2, 2.83, 4 (2 log2(4) + 1 = 5 of them)."""
    sf = C.size_frequency(_table([5, 5], [10, 10], [1.0, 4.0]))
    np.testing.assert_allclose(sf["diameter_km"].values, np.sqrt(2.0) ** np.arange(5))
    assert sf["count"].sel(region="near").values.tolist()[:4] == [2, 1, 1, 1]


def test_size_frequency_counts_craters_exactly_at_the_default_diameters():
    """Craters of 1, 2 and 4 km: default diameters 1, 1.41, 2, 2.83, 4; N(>=D) = 3, 2, 2, 1, 1 (the largest
    crater is >= the largest diameter, which is its own size)."""
    sf = C.size_frequency(_table([5, 5, 5], [10, 10, 10], [1.0, 2.0, 4.0]))
    assert sf["diameter_km"].values[[2, 4]].tolist() == [2.0, 4.0]
    assert sf["count"].sel(region="near").values.tolist() == [3, 2, 2, 1, 1]


def test_density_table_ratio_is_block_width_over_poisson_width():
    ds = xr.Dataset({"count": ("region", [4]), "area_km2": ("region", [1e6]), "density": ("region", [4.0]),
                     "density_ci_low": ("region", [1.0]), "density_ci_high": ("region", [3.0]),
                     "density_block_ci_low": ("region", [0.0]), "density_block_ci_high": ("region", [6.0])},
                    coords={"region": ["near"]})
    assert C.density_table({"cat": ds})["block / Poisson CI width"].iloc[0] == pytest.approx(3.0)


def test_density_summary_block_interval_is_the_block_bootstrap_one():
    rng = np.random.default_rng(0)
    cr = _table(rng.uniform(-80, 80, 300), rng.uniform(-180, 180, 300), rng.uniform(20, 50, 300))
    s = C.density_summary(cr)
    st = C.crater_density(cr)
    near = st.sel(region="near")
    assert s["near"]["ci95_block_bootstrap"] == pytest.approx(
        [float(near["density_block_ci_low"]), float(near["density_block_ci_high"])])
    assert s["near"]["ci95_block_bootstrap"] != pytest.approx(s["near"]["ci95"])
    assert s["near"]["mean"] == s["near"]["density"] == pytest.approx(float(near["density"]))


def test_lroc_catalogue_covers_plus_minus_60_degrees():
    assert C.CATALOGUE_LAT_COVERAGE["craters_lroc_5_20km"] == (-60.0, 60.0)


# ---------------------------------------------------------------------------------------------------- spa
def _profile(y, bin_km: float = 50.0) -> xr.DataArray:
    y = np.asarray(y, dtype=float)
    return xr.DataArray(y, dims="distance_km", coords={"distance_km": (np.arange(y.size) + 0.5) * bin_km})


def test_radial_profile_std_is_the_area_weighted_population_std():
    """+-1 alternating by 1-degree column around the north pole: every ring holds equal areas of +1 and -1,
    so mean 0 and std exactly 1 (no n/(n-1) correction)."""
    _, lon2 = _latlon(1)
    sign = np.where(np.arange(360) % 2 == 0, 1.0, -1.0)[None, :] * np.ones_like(lon2)
    p = spa.radial_profile(_field(sign), 90.0, 0.0, bin_km=100.0, max_km=1000.0)
    np.testing.assert_allclose(p["std"].values, 1.0, rtol=1e-9)


def test_noise_free_step_has_a_one_bin_interval_and_rounding_se():
    """Step between bins 9 and 10 (centres 475 and 525 km): radius 500; noise-free, so the interval is
    500 -+ bin/2 = [475, 525] and the SE is bin/sqrt(12) = 14.43 km."""
    cp = spa.detect_change_points(_profile([0.0] * 10 + [1.0] * 10), 1, n_boot=20)
    assert float(cp["radius_km"][0]) == 500.0
    assert [float(cp["radius_ci_low"][0]), float(cp["radius_ci_high"][0])] == [475.0, 525.0]
    assert float(cp["radius_se_km"][0]) == pytest.approx(50 / np.sqrt(12))


def test_two_breaks_report_the_level_of_each_adjacent_segment():
    """Levels 0, 1, 2 (7 bins each): the first break has 0 inside and 1 outside (not the mean of 1 and 2)."""
    cp = spa.detect_change_points(_profile([0.0] * 7 + [1.0] * 7 + [2.0] * 7), 2, n_boot=20)
    assert cp["level_before"].values.tolist() == [0.0, 1.0]
    assert cp["level_after"].values.tolist() == [1.0, 2.0]


def test_a_profile_too_short_for_the_breaks_is_an_input_error():
    """2 breaks with min_size 3 need (2 + 1) x 3 = 9 bins; 8 are too few."""
    with pytest.raises(InputError, match="too few"):
        spa.detect_change_points(_profile(np.arange(8.0)), 2, n_boot=20)


def test_bad_centres_and_a_single_bin_are_refused():
    da = _field(np.zeros((180, 360)))
    with pytest.raises(InputError):
        spa.radial_profile(da, 100.0, 0.0)
    with pytest.raises(InputError, match="finite"):
        spa.radial_profile(da, float("nan"), 0.0)
    with pytest.raises(InputError, match="bin_km < max_km"):
        spa.radial_profile(da, 0.0, 0.0, bin_km=100.0, max_km=100.0)
    with pytest.raises(InputError, match="positive"):
        spa.circle_path(0.0, 0.0, 0.0)


def test_basin_centre_spa_alias_falls_back_and_skips_missing_ring_diameters():
    basins = pd.DataFrame({"name": ["Imbrium"], "lat": [33.0], "lon": [-17.0],
                           "main_ring_diameter_km": [np.nan], "inner_ring_diameter_km": [680.0]})
    c = spa.basin_centre("SPA", basins=basins)
    assert (c["lat"], c["lon"]) == (-53.0, -169.0)
    imb = spa.basin_centre("imbrium", basins=basins)
    assert "main_ring_diameter_km" not in imb and imb["inner_ring_diameter_km"] == 680.0


def test_boundary_path_interpolates_radii_periodically_in_azimuth():
    """Sector radii 1000 km at azimuth 15 and 2000 km at 345: due north (azimuth 0, the first point) lies
    halfway between them across 360, 1500 km from the centre."""
    path = spa.boundary_path(0.0, 0.0, [15.0, 120.0, 240.0, 345.0], [1000.0, 1000.0, 1000.0, 2000.0])
    first = path.iloc[0]
    assert geo.great_circle_distance(first["lat"], first["lon"], 0.0, 0.0) == pytest.approx(1500.0, rel=1e-6)


def test_spa_boundaries_default_mg_number_has_two_breaks_in_profile_and_sectors():
    """mg_number 0 within 600 km of (0, 0), 1 to 1200 km, 2 beyond: the default variables give it two
    breaks, in the azimuthal profile and in every one of 3 sectors (the fewest allowed), near 600 and 1200 km."""
    lat2, lon2 = _latlon(1)
    d = geo.great_circle_distance(lat2, lon2, 0.0, 0.0)
    ds = xr.Dataset({"mg_number": _field(np.where(d < 600, 0.0, np.where(d < 1200, 1.0, 2.0)), units="1")})
    res = spa.spa_boundaries(ds, {"lat": 0.0, "lon": 0.0}, n_sectors=3, n_boot=20)
    cp, sec = res["mg_number"]["change_points"], res["mg_number"]["sectors"]
    np.testing.assert_allclose(cp["radius_km"].values, [600.0, 1200.0], atol=50.0)
    np.testing.assert_allclose(sec["mean_radius_km"].values, [600.0, 1200.0], atol=50.0)


def test_a_sector_with_too_few_valid_bins_is_skipped_not_segmented():
    """Step at 600 km around (0, 0), six 60-degree sectors, data NaN beyond 200 km in the first sector
    (bearings 0-60): that sector has 4 valid 50-km bins, fewer than (1 + 1) x 3, so its radius is NaN while
    the other five find the step at 600 km."""
    lat2, lon2 = _latlon(1)
    d = geo.great_circle_distance(lat2, lon2, 0.0, 0.0)
    brg = np.rad2deg(np.arctan2(np.sin(np.deg2rad(lon2)) * np.cos(np.deg2rad(lat2)), np.sin(np.deg2rad(lat2))))
    v = np.where(d < 600, 1.0, 0.0)
    v[(brg >= 0) & (brg < 60) & (d >= 200)] = np.nan
    sec = spa.sector_change_points(_field(v, units="1"), 0.0, 0.0, 1, n_sectors=6, max_km=1500.0)
    r = sec["radius_km"].values[:, 0]
    assert np.isnan(r[0]) and np.allclose(r[1:], 600.0, atol=50.0)


def test_a_crater_on_either_coverage_edge_is_counted():
    """lat_range (-60, 60) is inclusive (craters at +-60 are accepted): a crater at lat +60 or -60 on the near
    side belongs to the near region, count 1 either way."""
    for lat in (60.0, -60.0):
        st = C.crater_density(_table([lat], [10.0], [20.0]), lat_range=(-60.0, 60.0), block_deg=None)
        assert int(st["count"].sel(region="near")) == 1, lat



# ------------------------------------------------------------------------------------ round 2: plumbing
def test_terranes_masks_regions_and_split_arguments_are_checked():
    terr = _field(np.zeros((180, 360)), units="1").assign_attrs(flag_values=[1, 2], flag_meanings="a b c")
    with pytest.raises(InputError, match="3 names but flag_values has 2"):
        A.terrane_masks(terr)
    ds = xr.Dataset({"terrane": terr.assign_attrs(flag_meanings="a b")})
    assert set(A.region_masks(ds, terranes=False)) == {"near", "far", "north", "south"}
    assert set(A.region_masks(ds)) == {"near", "far", "north", "south", "a", "b"}
    with pytest.raises(InputError, match="pole_lat"):
        A.great_circle_split(ds, 100.0, 0.0)
    with pytest.raises(InputError, match="no regions"):
        A.region_statistics(terr, {}, n_boot=50)


def test_statistics_outputs_carry_their_units_names_and_block_size():
    """iid bootstrap is recorded as block_deg -1; a fraction is dimensionless and names its variable; a
    density has the inverse units of the variable; an empty region's density is NaN, not 0."""
    lat2, lon2 = _latlon(1)
    da = _field(lon2, units="deg")
    m = geo.hemisphere_masks(da)
    st = A.region_statistics(da, {"near": m["near"]}, block_deg=None, n_boot=50, quantiles=(0.5,))
    assert st.attrs["block_deg"] == -1.0
    fr = A.fraction_above(da, 0.0, {"near": m["near"]}, n_boot=50)
    assert fr.attrs["units"] == "1" and fr.attrs["variable"] == "x" and fr.attrs["threshold"] == 0.0
    empty = _mask(da, np.zeros(da.shape))
    d = A.region_distributions(da, {"near": m["near"], "none": empty}, bins=4)
    assert d.attrs["units"] == "1/deg"
    assert np.isnan(d.sel(region="none").values).all()
    mg = A.mg_number(xr.DataArray([1.0]), xr.DataArray([1.0]))
    assert mg.attrs["valid_range"] == [0.0, 100.0]


def test_compare_regions_reports_each_mean_under_its_own_name_with_units():
    _, lon2 = _latlon(1)
    da = _field(np.where(np.abs(lon2) < 90, 3.0, 1.0), units="wt%")
    m = geo.hemisphere_masks(da)
    c = A.compare_regions(da, m["near"], m["far"], n_boot=50, n_perm=99, names=("near", "far"))
    assert (c["mean_a"], c["mean_b"], c["units"]) == (pytest.approx(3.0), pytest.approx(1.0), "wt%")


def test_crater_block_interval_is_nan_for_a_region_of_one_block():
    """A 10 x 10 degree region is one 10-degree block: too few for a block interval (NaN, with a warning);
    the Poisson interval is still given."""
    grid = geo.global_template(1)
    lat2, lon2 = _latlon(1)
    box = _mask(grid, (lat2 > 0) & (lat2 < 10) & (lon2 > 0) & (lon2 < 10))
    with pytest.warns(UserWarning, match="only 1 bootstrap block"):
        st = C.crater_density(_table([5.0], [5.0], [20.0]), {"box": box}, grid=grid, n_boot=50)
    assert np.isnan(float(st["density_block_ci_low"][0])) and float(st["density_ci_high"][0]) > 0


def test_boundary_table_takes_the_sector_interval_ends_and_1_based_boundaries():
    cp = xr.Dataset({"radius_km": ("change", [600.0]), "level_before": ("change", [1.0], {"units": "wt%"}),
                     "level_after": ("change", [2.0])}, coords={"change": [0]})
    sec = xr.Dataset({"radius_ci_low": ("change", [550.4]), "radius_ci_high": ("change", [649.6]),
                      "mean_radius_km": ("change", [600.0])}, coords={"change": [0]})
    t = spa.boundary_table({"FeO": {"change_points": cp, "sectors": sec}})
    row = t.iloc[0]
    assert row["sector 95% CI (km)"] == (550, 650) and row["boundary"] == 1 and row["level units"] == "wt%"


def test_boundary_path_needs_three_radii_and_a_profile_must_be_1d():
    with pytest.raises(InputError, match="at least 3"):
        spa.boundary_path(0.0, 0.0, [0.0, 90.0, 180.0], [1000.0, 1000.0, np.nan])
    with pytest.raises(InputError, match="1-D"):
        spa.detect_change_points(xr.DataArray(np.zeros((10, 2)), dims=("distance_km", "y")), n_boot=20)


def test_sector_mean_and_median_radius_differ_for_a_lopsided_boundary():
    """Three 120-degree sectors around (0, 0): the step lies at 800 km in the first (bearings 0-120) and at
    400 km in the other two, so the sector radii are ~800, 400, 400: mean ~533 km, median ~400 km."""
    lat2, lon2 = _latlon(1)
    d = geo.great_circle_distance(lat2, lon2, 0.0, 0.0)
    brg = np.rad2deg(np.arctan2(np.sin(np.deg2rad(lon2)) * np.cos(np.deg2rad(lat2)), np.sin(np.deg2rad(lat2)))) % 360
    v = np.where(d < np.where(brg < 120, 800.0, 400.0), 1.0, 0.0)
    sec = spa.sector_change_points(_field(v, units="1"), 0.0, 0.0, 1, n_sectors=3, max_km=1500.0)
    np.testing.assert_allclose(sec["radius_km"].values[:, 0], [800.0, 400.0, 400.0], atol=50.0)
    assert float(sec["median_radius_km"][0]) == pytest.approx(400.0, abs=50.0)
    assert float(sec["mean_radius_km"][0]) == pytest.approx(1600.0 / 3, abs=50.0)
