"""Crater densities, Poisson intervals and size-frequency distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import geo
from workbench.analysis import craters as C
from workbench.errors import InputError


def _uniform_craters(n: int, seed: int, lat_max: float = 90.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.uniform(-np.sin(np.deg2rad(lat_max)), np.sin(np.deg2rad(lat_max)), n)
    return pd.DataFrame({"lon": rng.uniform(-180, 180, n), "lat": np.rad2deg(np.arcsin(z)),
                         "diameter_km": 20.0 * rng.pareto(2.0, n) + 20.0})


def test_poisson_interval_known_values():
    lo, hi = C.poisson_interval(0)
    assert float(lo) == 0.0 and float(hi) == pytest.approx(-np.log(0.025), rel=1e-9)  # 3.6889
    lo, hi = C.poisson_interval(10)  # Garwood table: 4.7954, 18.3904
    assert float(lo) == pytest.approx(4.7954, abs=1e-4) and float(hi) == pytest.approx(18.3904, abs=1e-4)
    with pytest.raises(InputError):
        C.poisson_interval(-1)


def test_density_of_uniform_craters_and_areas():
    df = _uniform_craters(4000, seed=0)
    st = C.crater_density(df)
    expected = 4000 / geo.MOON_AREA_KM2 * 1e6
    for r in ("near", "far", "north", "south"):
        s = st.sel(region=r)
        assert float(s["area_km2"]) == pytest.approx(geo.MOON_AREA_KM2 / 2, rel=1e-9)
        assert float(s["density_ci_low"]) < expected < float(s["density_ci_high"])
    assert int(st["count"].sel(region="near") + st["count"].sel(region="far")) == 4000


def test_lat_limited_catalogue_uses_the_covered_area():
    df = _uniform_craters(3000, seed=1, lat_max=60.0)
    st = C.crater_density(df, lat_range=(-60.0, 60.0))
    band = geo.MOON_AREA_KM2 * np.sin(np.deg2rad(60.0))
    assert float(st["area_km2"].sel(region="near")) == pytest.approx(band / 2, rel=1e-9)
    # ... and is the covered area's half, not sin(60) / 2 = 0.433 of the whole sphere
    assert float(st["area_fraction"].sel(region="near")) == pytest.approx(0.5, rel=1e-9)
    expected = 3000 / band * 1e6
    s = st.sel(region="far")
    assert float(s["density_ci_low"]) < expected < float(s["density_ci_high"])
    with pytest.raises(InputError, match="outside the stated coverage"):
        C.crater_density(_uniform_craters(100, seed=2), lat_range=(-60.0, 60.0))


def test_compare_densities_exact_test():
    same = C.compare_densities(100, 1e6, 100, 1e6)
    assert same["p_value"] == pytest.approx(1.0)
    assert same["rate_ratio_ci95"][0] < 1 < same["rate_ratio_ci95"][1]
    diff = C.compare_densities(200, 1e6, 100, 1e6)
    assert diff["p_value"] < 1e-6 and diff["rate_ratio"] == pytest.approx(2.0)
    assert diff["rate_ratio_ci95"][0] > 1.0


def test_size_frequency_is_cumulative_and_nonincreasing():
    df = _uniform_craters(2000, seed=3)
    sfd = C.size_frequency(df)
    n = sfd["count"].values
    assert np.all(np.diff(n, axis=1) <= 0)
    first = sfd["count"].isel(diameter_km=0)
    assert int(first.sel(region="near") + first.sel(region="far")) == 2000


def test_bad_table_is_explained():
    with pytest.raises(InputError, match="lacks columns"):
        C.crater_density(pd.DataFrame({"Lon": [0.0], "Lat": [0.0], "D": [1.0]}))
    with pytest.raises(InputError, match="latitude"):
        C.crater_density(pd.DataFrame({"lon": [0.0], "lat": [95.0], "diameter_km": [1.0]}))


def test_block_interval_sees_clustering_that_poisson_does_not():
    rng = np.random.default_rng(5)
    uni = _uniform_craters(3000, seed=4)
    # clustered: 60 clusters of 50 craters within ~2 degrees of each centre
    centres = _uniform_craters(60, seed=6, lat_max=70.0)
    clus = pd.DataFrame({
        "lon": np.repeat(centres["lon"].values, 50) + rng.normal(0, 2, 3000),
        "lat": np.clip(np.repeat(centres["lat"].values, 50) + rng.normal(0, 2, 3000), -89.9, 89.9),
        "diameter_km": 25.0})
    clus["lon"] = (clus["lon"] + 180) % 360 - 180

    def ratio(df):
        s = C.crater_density(df, n_boot=400).sel(region="near")
        return float((s["density_block_ci_high"] - s["density_block_ci_low"])
                     / (s["density_ci_high"] - s["density_ci_low"]))

    assert 0.6 < ratio(uni) < 1.6
    assert ratio(clus) > 3.0


def test_block_interval_is_the_percentile_interval_of_the_block_replicates():
    """10-degree blocks of the near side (|lon| <= 90: 18 x 18 = 324 whole blocks, numbered north to south and
    west to east). Each replicate draws 324 blocks with replacement (seed 0) and its density is the drawn
    blocks' crater count over their own summed area (a block's area is R^2 * 10 deg * (sin(top) - sin(bottom)));
    the 95 % interval is the replicates' 2.5th and 97.5th percentiles. Rebuilt here from the crater positions
    (a 10-degree block boundary is also a 0.25-degree cell boundary), it equals the function's to rounding;
    dividing by the whole region's area, or taking the 5th and 95th percentiles, would not."""
    df = _uniform_craters(3000, seed=10)
    near = geo.hemisphere_masks(geo.global_template(4))["near"]
    st = C.crater_density(df, regions={"near": near}, block_deg=10.0, n_boot=2000, seed=0).sel(region="near")
    top = 90.0 - 10.0 * np.arange(18)
    row_area = geo.MOON_RADIUS_KM**2 * np.deg2rad(10.0) * (np.sin(np.deg2rad(top)) - np.sin(np.deg2rad(top - 10)))
    area = np.repeat(row_area, 18)  # block (row, column) at index 18 * row + column
    on = df["lon"].abs() <= 90
    row = np.floor((90.0 - df["lat"][on]) / 10.0).astype(int)
    col = np.floor((df["lon"][on] + 90.0) / 10.0).astype(int)
    k = np.bincount(18 * row + col, minlength=324).astype(float)
    assert k.sum() == float(st["count"])
    draws = np.random.default_rng(0).integers(0, 324, size=(2000, 324))
    boot = k[draws].sum(axis=1) / area[draws].sum(axis=1) * 1e6
    lo, hi = np.quantile(boot, [0.025, 0.975])
    assert float(st["density_block_ci_low"]) == pytest.approx(lo, rel=1e-9)
    assert float(st["density_block_ci_high"]) == pytest.approx(hi, rel=1e-9)


def test_regional_and_0_360_grids_and_flipped_masks_count_the_right_craters():
    df = _uniform_craters(2500, seed=1)
    g = geo.global_template(4)
    ref = C.crater_density(df, block_deg=None)
    # a 0...360 grid: negative-longitude craters used to snap to column 0 (near/far 1866/634)
    g360 = g.assign_coords(lon=geo.wrap_lon_360(g.lon.values)).sortby("lon")
    on360 = C.crater_density(df, grid=g360, block_deg=None)
    np.testing.assert_array_equal(on360["count"].values, ref["count"].values)
    # masks of a south-up grid used to be read by position: north and south swapped
    flipped = C.crater_density(df, regions=geo.hemisphere_masks(g.isel(lat=slice(None, None, -1))), block_deg=None)
    np.testing.assert_array_equal(flipped.sel(region=["north", "south"])["count"].values,
                                  ref.sel(region=["north", "south"])["count"].values)
    # a regional grid: craters beyond its edge used to be piled onto the edge cells (2500 counted)
    box = g.sel(lat=slice(30, -30), lon=slice(-30, 30))
    inside = int(((df.lat.abs() <= 30) & (df.lon.abs() <= 30)).sum())
    got = C.crater_density(df, regions={"box": xr.ones_like(box, dtype=bool)}, grid=box, block_deg=None)
    assert int(got["count"].sel(region="box")) == inside
    # a mask on another grid is refused rather than misread
    with pytest.raises(InputError, match="another lat/lon grid"):
        C.crater_density(df, regions={"x": xr.ones_like(geo.global_template(2), dtype=bool)}, block_deg=None)


def test_single_row_and_seam_crossing_regional_grids_count_the_right_craters():
    df = pd.DataFrame({"lon": [0.0, 175.0, -175.0, 178.0, 90.0], "lat": [0.0, 0.1, -0.2, 6.0, 0.0],
                       "diameter_km": [10.0] * 5})
    row = xr.DataArray(np.ones((1, 36), bool), dims=("lat", "lon"),
                       coords={"lat": [0.0], "lon": np.arange(-175.0, 180.0, 10.0)})
    got = C.crater_density(df, regions={"row": row}, grid=row.astype(float), block_deg=None)
    assert int(got["count"].sel(region="row")) == 4  # all but the crater at 6°N (cells 10° tall)
    # a regional grid written across the seam (170.5 ... 179.5, -179.5 ... -170.5)
    lon = np.r_[np.arange(170.5, 180.0), np.arange(-179.5, -170.0)]
    box = xr.DataArray(np.ones((10, 20), bool), dims=("lat", "lon"),
                       coords={"lat": np.arange(4.5, -5.0, -1.0), "lon": lon})
    got = C.crater_density(df, regions={"box": box}, grid=box.astype(float), block_deg=None)
    assert int(got["count"].sel(region="box")) == 2  # 175 and -175; lon 0 used to be put at -179.5


def test_craters_at_the_seam_stay_on_a_float32_global_grid():
    lon = (-180 + 0.1 * (np.arange(3600) + 0.5)).astype("float32")
    g = xr.DataArray(np.zeros((2, 3600), "float32"), dims=("lat", "lon"),
                     coords={"lat": np.array([0.5, -0.5], "float32"), "lon": lon})
    df = pd.DataFrame({"lon": [-180.0, 180.0, 179.99, -179.99], "lat": [0.0] * 4, "diameter_km": [10.0] * 4})
    got = C.crater_density(df, regions={"all": xr.ones_like(g, dtype=bool)}, grid=g, block_deg=None)
    assert int(got["count"].sel(region="all")) == 4  # the -180 craters fell off the rounded grid edge


def test_compare_densities_wald_interval_of_the_difference():
    # densities 200 and 100 per 1e6 km2 on 1e6 km2 each; Poisson variance of k/A is k/A^2, so
    # SE = 1e6 * sqrt(200/1e12 + 100/1e12) = sqrt(300) = 17.3205 and the 95 % Wald interval is
    # 100 -+ 1.959964 * 17.3205 = [66.0524, 133.9476]
    out = C.compare_densities(200, 1e6, 100, 1e6)
    assert out["value"] == pytest.approx(100.0, rel=1e-12)
    half = 1.959963985 * np.sqrt(300.0)
    assert out["ci95"] == pytest.approx([100.0 - half, 100.0 + half], rel=1e-9)
    assert out["ci95"] == pytest.approx([66.0524, 133.9476], abs=1e-4)


def test_compare_densities_unequal_areas_exact_ratio_interval_and_p_value():
    """100 craters on 1e6 km2 vs 100 on 2e6 km2: densities 100 and 50, rate ratio 2.

    Conditional on n = 200, k_a ~ Binomial(200, p0) with p0 = A_a/(A_a + A_b) = 1/3 under equal densities.
    Clopper-Pearson bounds of p: Beta(0.025; 100, 101) = 0.4286584, Beta(0.975; 101, 100) = 0.5713416;
    ratio = p/(1 - p) * A_b/A_a = 2p/(1 - p): [1.5005330, 2.6657195]. The two-sided exact p-value sums
    the binomial probabilities no larger than P(k_a = 100): 1.2625e-6 (p0 = 0.5 would give 1.0).
    """
    from scipy import stats

    out = C.compare_densities(100, 1e6, 100, 2e6)
    assert out["value"] == pytest.approx(50.0, rel=1e-12)
    assert out["rate_ratio"] == pytest.approx(2.0, rel=1e-12)
    lo, hi = stats.beta.ppf(0.025, 100, 101), stats.beta.ppf(0.975, 101, 100)
    assert out["rate_ratio_ci95"] == pytest.approx([2 * lo / (1 - lo), 2 * hi / (1 - hi)], rel=1e-9)
    assert out["rate_ratio_ci95"] == pytest.approx([1.5005330, 2.6657195], abs=1e-6)
    pmf = stats.binom.pmf(np.arange(201), 200, 1.0 / 3.0)
    p = pmf[pmf <= pmf[100] * (1 + 1e-7)].sum()
    assert out["p_value"] == pytest.approx(p, rel=1e-9)
    assert out["p_value"] == pytest.approx(1.2625e-6, rel=1e-4)


def test_size_frequency_density_at_the_smallest_diameter_is_per_million_km2():
    # at the smallest crater every crater counts: near + far = 2000 craters on two hemispheres of
    # 2 pi R^2 = 1.8966e7 km2 each, so N(>= D_min) per 1e6 km2 = count / (2 pi R^2) * 1e6
    df = _uniform_craters(2000, seed=3)
    sfd = C.size_frequency(df).isel(diameter_km=0)
    half = geo.MOON_AREA_KM2 / 2
    for r in ("near", "far", "north", "south"):
        s = sfd.sel(region=r)
        assert float(s["cumulative_density"]) == pytest.approx(int(s["count"]) / half * 1e6, rel=1e-9)
    total = float(sfd["cumulative_density"].sel(region="near") + sfd["cumulative_density"].sel(region="far"))
    assert total == pytest.approx(2000 / half * 1e6, rel=1e-9)  # = 105.45 per 1e6 km2
