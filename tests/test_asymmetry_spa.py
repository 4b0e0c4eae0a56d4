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
