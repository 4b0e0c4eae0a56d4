"""Footprint spectra at sample sites on small synthetic cubes with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.geo import global_grid, great_circle_distance
from workbench.site_spectra import site_spectra, spectra_wide


def cube(ppd=2):
    lat, lon = global_grid(ppd)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    data = np.stack([0.1 + 0.001 * la, 0.2 + 0.0005 * lo])
    return xr.DataArray(data, dims=("band", "lat", "lon"),
                        coords={"band": ["R750", "R950"], "lat": lat, "lon": lon,
                                "wavelength": ("band", [750.0, 950.0])}, attrs={"units": "1"})


SITES = pd.DataFrame({"site": ["A", "B", "C"], "lat": [0.25, -30.25, 60.0], "lon": [10.25, 200.0, -45.0],
                      "FeO": [15.0, 5.0, np.nan]})


def test_footprint_means_known_answer():
    t = site_spectra(cube(), SITES, radius_km=40.0)
    assert list(t.columns[:9]) == ["site", "lat", "lon", "band", "wavelength", "mean", "std", "n_pixels",
                                   "footprint"]
    a = t[(t.site == "A") & (t.band == "R750")].iloc[0]
    # linear field, symmetric footprint centred on a pixel centre: the mean is the centre value
    assert a["mean"] == pytest.approx(0.1 + 0.001 * 0.25, abs=1e-6)
    assert a["n_pixels"] > 1 and a["std"] > 0 and a["footprint"] == "radius"
    b = t[(t.site == "B") & (t.band == "R950")].iloc[0]
    assert b["lon"] == pytest.approx(-160.0)  # 0..360 input wrapped
    assert b["mean"] == pytest.approx(0.2 + 0.0005 * -160.0, abs=2e-4)


def test_footprint_holds_every_pixel_within_the_radius_at_any_latitude():
    """The footprint is every pixel centre within radius_km (great circle) of the site. 150 km on a 4 px/deg
    grid: the pixel window must reach rad2deg(150 / 1737.4) = 4.95 deg in latitude and that over cos(lat)
    in longitude (2.9 times as far at 70N), or part of the disc is cut off. n_pixels equals a brute-force
    count over the whole globe: 1225 at the equator, 3641 at 70N (pixels 0.34 times as wide there)."""
    lat, lon = global_grid(4)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ones = xr.DataArray(np.ones_like(la), dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="x",
                        attrs={"units": "1"})
    sites = pd.DataFrame({"site": ["eq", "hi"], "lat": [0.125, 70.125], "lon": [10.125, 10.125]})
    t = site_spectra(ones, sites, radius_km=150.0).set_index("site")
    for s, expected in (("eq", 1225), ("hi", 3641)):
        brute = int((great_circle_distance(sites.set_index("site").loc[s, "lat"], 10.125, la, lo) <= 150.0).sum())
        assert brute == expected
        assert t.loc[s, "n_pixels"] == brute and t.loc[s, "footprint"] == "radius"


def test_footprint_std_is_the_population_standard_deviation():
    """35 km around a pixel centre on a 1 px/deg grid holds the pixel and its 4 edge neighbours (30.3 km
    away; the diagonal ones are 42.9 km away). Values 1 (centre, north, south) and 0 (east, west): mean 0.6,
    population std sqrt(0.6 * 0.4) = 0.490 (the sample std, over n - 1, would be 0.548)."""
    v = np.full((5, 5), 7.0)
    v[1:4, 2] = 1.0
    v[2, 1] = v[2, 3] = 0.0
    c = xr.DataArray(v[None], dims=("band", "lat", "lon"),
                     coords={"band": ["R750"], "lat": np.arange(2.5, -2.0, -1.0), "lon": np.arange(8.5, 13.0)},
                     attrs={"units": "1"})
    r = site_spectra(c, pd.DataFrame({"site": ["s"], "lat": [0.5], "lon": [10.5]}), radius_km=35.0).iloc[0]
    assert r["n_pixels"] == 5 and r["footprint"] == "radius"
    assert r["mean"] == pytest.approx(0.6, abs=1e-12)
    assert r["std"] == pytest.approx(np.sqrt(0.24), abs=1e-12)


def test_small_radius_falls_back_to_containing_pixel_and_says_so():
    t = site_spectra(cube(), SITES, radius_km=1.0)
    assert set(t.footprint) <= {"nearest", "radius"}
    assert (t.n_pixels == 1).all()


def test_nan_pixels_are_excluded_and_outside_sites_are_nan():
    c = cube().where(lambda d: d.lat < 50)  # north of 50 is missing
    t = site_spectra(c, SITES, 40.0)
    assert t[t.site == "C"]["n_pixels"].eq(0).all() and t[t.site == "C"]["mean"].isna().all()
    regional = cube().sel(lat=slice(10, -10), lon=slice(0, 20))
    t = site_spectra(regional, SITES, 40.0)
    assert (t[t.site == "B"].footprint == "outside").all()
    assert (t[t.site == "A"].n_pixels > 0).all()


def test_wide_table_for_the_inversion():
    w = spectra_wide(site_spectra(cube(), SITES, 40.0))
    assert list(w.site) == ["A", "B", "C"]
    for col in ("R750", "R950", "R750_std", "n_pixels", "FeO"):
        assert col in w.columns
    assert w.loc[0, "FeO"] == 15.0


def test_bad_input():
    with pytest.raises(InputError, match="radius_km"):
        site_spectra(cube(), SITES, 0)
    with pytest.raises(InputError, match="latitude"):
        site_spectra(cube(), SITES.rename(columns={"lat": "phi"}), 10)
    with pytest.raises(InputError, match="lat"):
        site_spectra(cube().rename(lat="y", lon="x"), SITES, 10)


@pytest.mark.parametrize(("lat", "lon", "match"), [
    (1.0, np.nan, r"column 'lon' \(longitude\) has 1 missing, NaN"),
    (np.nan, 1.0, r"column 'lat' \(latitude\) has 1 missing, NaN"),
    (1.0, 725.0, r"column 'lon': longitude out of range: found 725"),
    (95.0, 1.0, r"column 'lat': latitude out of range: found 95"),
    ("3.5N", 1.0, r"column 'lat' \(latitude\) holds non-numeric values \(A: '3.5N'\).*decimal degrees"),
])
def test_bad_coordinates_name_the_column(lat, lon, match):
    sites = pd.DataFrame({"site": ["A"], "lat": [lat], "lon": [lon]}, index=[7])
    with pytest.raises(InputError, match=match):
        site_spectra(cube(), sites, 40.0)
