"""Footprint spectra at sample sites on small synthetic cubes with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.geo import global_grid
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
