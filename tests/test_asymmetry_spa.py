"""SPA radial profiles and change-point detection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import geo
from workbench.analysis import spa
from workbench.errors import InputError


def _disc_field(r0_km: float, centre=(-53.0, -169.0), inside=12.0, outside=5.0, noise=1.0, seed=0):
    t = geo.global_template(2, name="FeO")
    lat2, lon2 = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    d = geo.great_circle_distance(lat2, lon2, *centre)
    rng = np.random.default_rng(seed)
    v = np.where(d < r0_km, inside, outside) + noise * rng.normal(size=d.shape)
    return t.copy(data=v).assign_attrs(units="wt%")


def test_planted_change_point_is_found():
    da = _disc_field(1100.0)
    prof = spa.radial_profile(da, -53.0, -169.0, bin_km=50.0, max_km=2500.0)
    cp = spa.detect_change_points(prof["mean"], 1, n_boot=50, seed=0)
    assert float(cp["radius_km"][0]) == pytest.approx(1100.0, abs=50.0)
    assert float(cp["radius_ci_low"][0]) <= 1100.0 + 25 and float(cp["radius_ci_high"][0]) >= 1100.0 - 25
    assert float(cp["level_before"][0]) == pytest.approx(12.0, abs=0.5)
    assert float(cp["level_after"][0]) == pytest.approx(5.0, abs=0.5)


def test_planted_ring_gives_two_edges():
    t = geo.global_template(2, name="mg_number")
    lat2, lon2 = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    d = geo.great_circle_distance(lat2, lon2, -53.0, -169.0)
    v = np.where((d > 600) & (d < 1200), 80.0, 65.0) + np.random.default_rng(1).normal(size=d.shape)
    prof = spa.radial_profile(t.copy(data=v), -53.0, -169.0, max_km=2500.0)
    cp = spa.detect_change_points(prof["mean"], 2, n_boot=30)
    np.testing.assert_allclose(cp["radius_km"].values, [600.0, 1200.0], atol=50.0)


def test_radial_profile_area_and_units():
    da = _disc_field(500.0, noise=0.0)
    prof = spa.radial_profile(da, -53.0, -169.0, bin_km=100.0, max_km=1000.0)
    assert prof["mean"].attrs["units"] == "wt%"
    # area within 1000 km of the centre on a sphere: 2 pi R^2 (1 - cos(d/R))
    cap = 2 * np.pi * geo.MOON_RADIUS_KM**2 * (1 - np.cos(1000.0 / geo.MOON_RADIUS_KM))
    assert float(prof["area_km2"].sum()) == pytest.approx(cap, rel=0.02)


def test_noise_free_disc_profile_moments_and_edge_known_answers():
    """A disc of 12 inside 500 km and 5 outside, with its edge on a bin edge (50 km bins): every bin holds one
    value, so every bin's area-weighted std sqrt(E[x^2] - mean^2) is 0 (without the - mean^2 it would be the
    mean, 12 or 5), and the one change point lies half-way between the centres of the bins either side of
    the jump, (475 + 525) / 2 = 500 km exactly (the outer bin's centre would say 525). On iid noise of
    sd 2 the sem is std / sqrt(n_cells) in every bin."""
    prof = spa.radial_profile(_disc_field(500.0, noise=0.0), -53.0, -169.0, bin_km=50.0, max_km=1500.0)
    assert float(prof["std"].max()) < 1e-4
    np.testing.assert_allclose(prof["mean"].values, np.where(prof["distance_km"] < 500, 12.0, 5.0), atol=1e-9)
    cp = spa.detect_change_points(prof["mean"], 1, n_boot=20)
    assert float(cp["radius_km"][0]) == 500.0
    noise = _disc_field(500.0, inside=0.0, outside=0.0, noise=2.0)
    pn = spa.radial_profile(noise, -53.0, -169.0, bin_km=100.0, max_km=1000.0)
    assert float(pn["std"].min()) > 1.5
    np.testing.assert_allclose(pn["sem"] * np.sqrt(pn["n_cells"]) / pn["std"], 1.0, rtol=1e-12)


def test_automatic_penalty_is_bic_with_the_noise_variance_from_first_differences():
    """PELT's penalty is 2 sigma^2 ln(n) (BIC) with sigma from the MAD of the first differences over sqrt(2)
    (a difference of two noisy bins has sd sqrt(2) sigma). 200 bins of noise with sd 0.5: the penalty is
    within 20 % of 2 * 0.25 * ln(200) = 2.65 (measured 1.00 of it; 2.00 without the sqrt(2)); no break is
    found, so no bootstrap runs."""
    import xarray as xr

    y = 0.5 * np.random.default_rng(2).normal(size=200)
    p = xr.DataArray(y, dims="distance_km", coords={"distance_km": 25.0 + 50 * np.arange(200)})
    cp = spa.detect_change_points(p, None, n_boot=20)
    assert 0.8 < cp.attrs["penalty"] / (2 * 0.25 * np.log(200)) < 1.2


def test_basin_centre_from_table_and_spa_fallback():
    basins = pd.DataFrame({"name": ["Imbrium"], "lat": [37.0], "lon_360": [341.5]})
    c = spa.basin_centre("imbrium", basins)
    assert c["lon"] == pytest.approx(-18.5) and c["lat"] == 37.0
    s = spa.basin_centre("South Pole-Aitken", basins)
    assert (s["lat"], s["lon"]) == (-53.0, -169.0) and "Garrick-Bethell" in s["source"]
    with pytest.raises(InputError, match="not in the basin list"):
        spa.basin_centre("Atlantis", basins)


def test_basin_centre_offline_falls_back_for_spa_only(monkeypatch):
    from workbench import catalog
    from workbench.errors import DataUnavailableError

    def offline(_id):
        raise DataUnavailableError("no source reachable")

    monkeypatch.setattr(catalog, "open_table", offline)
    s = spa.basin_centre()
    assert (s["lat"], s["lon"]) == (-53.0, -169.0) and "unavailable offline" in s["source"]
    with pytest.raises(DataUnavailableError):
        spa.basin_centre("Imbrium")


def test_circle_path_is_at_the_radius_and_breaks_at_the_dateline():
    p = spa.circle_path(-53.0, -169.0, 1000.0)
    ok = p.dropna()
    d = geo.great_circle_distance(ok["lat"].values, ok["lon"].values, -53.0, -169.0)
    np.testing.assert_allclose(d, 1000.0, rtol=1e-9)
    assert p["lon"].isna().sum() >= 1


def test_too_short_profile_is_explained():
    prof = spa.radial_profile(_disc_field(500.0), -53.0, -169.0, bin_km=200.0, max_km=800.0)
    with pytest.raises(InputError, match="too few"):
        spa.detect_change_points(prof["mean"], 3)


def test_sector_change_points_see_an_elliptical_boundary():
    t = geo.global_template(2, name="FeO")
    lat2, lon2 = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    d = geo.great_circle_distance(lat2, lon2, -53.0, -169.0)
    p1, p2 = np.deg2rad(-53.0), np.deg2rad(lat2)
    dl = np.deg2rad(lon2 + 169.0)
    brg = np.arctan2(np.sin(dl) * np.cos(p2), np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl))
    r_edge = 1.0 / np.sqrt((np.cos(brg) / 1200.0) ** 2 + (np.sin(brg) / 900.0) ** 2)  # N-S 1200, E-W 900 km
    v = np.where(d < r_edge, 10.0, 4.0) + 0.3 * np.random.default_rng(0).normal(size=d.shape)
    s = spa.sector_change_points(t.copy(data=v), -53.0, -169.0, 1, n_sectors=8)
    r = s["radius_km"].sel(change=0)
    assert float(r.sel(azimuth_deg=22.5)) > float(r.sel(azimuth_deg=67.5)) + 100  # N longer than E
    assert float(s["radius_ci_low"][0]) < 1000.0 < float(s["radius_ci_high"][0])
    path = spa.boundary_path(-53.0, -169.0, s["azimuth_deg"], r)
    assert path["lat"].notna().sum() > 300


def test_sector_radii_follow_the_bearing_and_their_t_interval():
    """Edge at 1200 km for bearings 0-90 deg (clockwise from north: the north-east quadrant) and 600 km
    elsewhere, no noise, 4 sectors: the 45-degree sector (not its mirror at 315, nor the south-east one at
    135) finds 1200 and the others 600. Sector radii {1200, 600, 600, 600}: mean 750, sd 300, and the
    interval half-width is t(0.975, 3) * 300 / sqrt(4) + 50 / 2 = 3.1824 * 150 + 25 = 502.4 km."""
    from scipy import stats

    t = geo.global_template(2, name="FeO")
    lat2, lon2 = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    d = geo.great_circle_distance(lat2, lon2, -53.0, -169.0)
    p1, p2 = np.deg2rad(-53.0), np.deg2rad(lat2)
    dl = np.deg2rad(lon2 + 169.0)
    brg = np.rad2deg(np.arctan2(np.sin(dl) * np.cos(p2),
                                np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl))) % 360
    v = np.where(d < np.where(brg < 90, 1200.0, 600.0), 10.0, 4.0)
    s = spa.sector_change_points(t.copy(data=v), -53.0, -169.0, 1, n_sectors=4, max_km=2000.0)
    np.testing.assert_array_equal(s["azimuth_deg"].values, [45.0, 135.0, 225.0, 315.0])
    np.testing.assert_array_equal(s["radius_km"].sel(change=0).values, [1200.0, 600.0, 600.0, 600.0])
    assert float(s["mean_radius_km"][0]) == 750.0 and float(s["sector_sd_km"][0]) == pytest.approx(300.0)
    half = stats.t.ppf(0.975, 3) * 300.0 / 2 + 25.0
    assert half == pytest.approx(502.4, abs=0.05)
    assert float(s["radius_ci_high"][0]) == pytest.approx(750.0 + half, rel=1e-9)
    assert float(s["radius_ci_low"][0]) == pytest.approx(750.0 - half, rel=1e-9)


def test_radial_profile_aligns_its_mask_by_coordinates():
    da = _disc_field(1000.0, noise=0.0)
    mask = ((da["lat"] < -30) & (da["lon"] < 0)).transpose("lat", "lon")
    kw = dict(bin_km=200.0, max_km=2000.0)
    p0 = spa.radial_profile(da, -53.0, -169.0, mask=mask, **kw)
    p1 = spa.radial_profile(da, -53.0, -169.0, mask=mask.isel(lat=slice(None, None, -1)), **kw)
    np.testing.assert_array_equal(p1["n_cells"].values, p0["n_cells"].values)  # south-up: was all 0
    p2 = spa.radial_profile(da, -53.0, -169.0, mask=mask.where(mask), **kw)  # 1.0 / NaN float mask
    np.testing.assert_array_equal(p2["n_cells"].values, p0["n_cells"].values)  # NaN counted as True before
    with pytest.raises(InputError, match="different grid"):
        spa.radial_profile(da, -53.0, -169.0, mask=geo.hemisphere_masks(geo.global_template(1))["near"])


def test_change_point_interval_covers_the_bin_rounding():
    # a boundary half-way through a 50 km bin is found at an edge 25 km away; the interval had zero width
    da = _disc_field(1025.0)
    prof = spa.radial_profile(da, -53.0, -169.0, bin_km=50.0, max_km=2500.0)
    cp = spa.detect_change_points(prof["mean"], 1, n_boot=30, seed=0)
    lo, hi, r = float(cp["radius_ci_low"][0]), float(cp["radius_ci_high"][0]), float(cp["radius_km"][0])
    assert lo <= r <= hi and hi - lo >= 50.0 and lo <= 1025.0 <= hi
    assert float(cp["radius_se_km"][0]) >= 50.0 / np.sqrt(12) - 1e-9
    s = spa.sector_change_points(da, -53.0, -169.0, 1, n_sectors=6)
    assert float(s["radius_ci_high"][0] - s["radius_ci_low"][0]) >= 50.0


def test_change_point_arguments_are_validated():
    prof = spa.radial_profile(_disc_field(1000.0), -53.0, -169.0, bin_km=100.0, max_km=2500.0)["mean"]
    for kw in ({"level": 95}, {"level": 0.0}, {"n_boot": 0}, {"n_boot": 5}, {"n_boot": 50.5}, {"min_size": 0}):
        with pytest.raises(InputError):
            spa.detect_change_points(prof, 1, **{"n_boot": 30, **kw})
    with pytest.raises(InputError, match="n_bkps"):
        spa.detect_change_points(prof, 0)
    da = _disc_field(1000.0)
    with pytest.raises(InputError, match="n_bkps"):
        spa.sector_change_points(da, -53.0, -169.0, 0, n_sectors=6)
    with pytest.raises(InputError, match="level"):
        spa.sector_change_points(da, -53.0, -169.0, 1, n_sectors=6, level=95)


def test_max_km_off_a_bin_edge_is_rounded_up_and_labelled_truly():
    t = geo.global_template(2, name="x").fillna(1.0).assign_attrs(units="1")
    p = spa.radial_profile(t, 0.0, 0.0, bin_km=50.0, max_km=1020.0)
    cap = lambda d: 2 * np.pi * geo.MOON_RADIUS_KM**2 * (1 - np.cos(d / geo.MOON_RADIUS_KM))  # noqa: E731
    assert float(p["distance_km"][-1]) == 1025.0 and p.attrs["max_km"] == 1050.0
    assert float(p["area_km2"][-1]) == pytest.approx(cap(1050.0) - cap(1000.0), rel=0.03)
    assert spa.radial_profile(t, 0.0, 0.0, bin_km=500.0, max_km=1e9).sizes["distance_km"] == 11  # antipode


def test_boundary_table_lists_every_change_point_with_units():
    ds = _disc_field(1100.0).to_dataset()
    res = spa.spa_boundaries(ds, {"lat": -53.0, "lon": -169.0}, variables={"FeO": 1}, max_km=2500.0,
                             n_sectors=6, n_boot=20)
    t = spa.boundary_table(res)
    assert list(t.columns) == ["variable", "boundary", "radius (km)", "sector 95% CI (km)", "level inside",
                               "level outside", "level units"]
    (row,) = t.to_dict("records")
    assert row["variable"] == "FeO" and row["boundary"] == 1 and row["level units"] == "wt%"
    assert row["radius (km)"] == pytest.approx(1100.0, abs=50.0)
    lo, hi = row["sector 95% CI (km)"]
    assert isinstance(lo, int) and lo <= row["radius (km)"] <= hi
    assert row["level inside"] == pytest.approx(12.0, abs=0.5) and row["level outside"] == pytest.approx(5.0, abs=0.5)
    no_sectors = {"FeO": {k: v for k, v in res["FeO"].items() if k != "sectors"}}
    assert spa.boundary_table(no_sectors)["sector 95% CI (km)"].iloc[0] is None
