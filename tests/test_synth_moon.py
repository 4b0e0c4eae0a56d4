"""Tests of the synthetic Moon (small procedural moons; real geography only with the mirror)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import InputError
from workbench.geo import global_grid
from workbench.synth.minerals import MINERALS, OXIDES, mineral_oxides, oxides_from_modes
from workbench.synth.moon import TERRANES, make_moon


@pytest.fixture(scope="module")
def moon():
    return make_moon(seed=3, resolution_ppd=1, geography="procedural", cache=False)


def _terrane(moon, name):
    return moon["terrane"] == TERRANES.index(name)


def test_schema(moon):
    lat, lon = global_grid(1)
    np.testing.assert_allclose(moon["lat"], lat)
    np.testing.assert_allclose(moon["lon"], lon)
    assert moon.attrs["crs"] == "IAU_2015:30100"
    assert moon.attrs["geography"] == "procedural" and moon.attrs["seed"] == 3
    assert list(moon["mineral"].values) == list(MINERALS)
    for v in ["elevation", "mare", "terrane", "mode", *OXIDES, "mg_number", "npfe", "reflectance"]:
        assert "units" in moon[v].attrs, v
    assert moon["reflectance"].dims == ("lat", "lon", "wavelength")
    wl = moon["wavelength"].values
    assert wl.min() <= 400 and wl.max() >= 1600
    assert moon["reflectance"].chunks is not None  # dask-backed
    assert moon["terrane"].dtype == np.int8
    assert moon["terrane"].attrs["flag_meanings"].split() == list(TERRANES)


def test_modes_and_oxide_sums(moon):
    np.testing.assert_allclose(moon["mode"].sum("mineral"), 1.0, atol=1e-5)
    assert float(moon["mode"].min()) >= 0
    total = sum(moon[o] for o in OXIDES)
    assert 97.0 < float(total.min()) and float(total.max()) < 101.0


def test_published_ranges(moon):
    mare = moon["mare"]
    feo_mare = moon["FeO"].where(mare)
    assert 14.5 < float(feo_mare.quantile(0.05)) and float(feo_mare.quantile(0.95)) < 23.0
    tio2 = moon["TiO2"].where(mare)
    assert float(tio2.quantile(0.02)) >= 0.8 and float(tio2.quantile(0.98)) <= 12.5
    assert float(tio2.max()) > 6.0  # high-Ti basalts exist
    fh = _terrane(moon, "feldspathic_highlands")
    feo_fh = moon["FeO"].where(fh)
    assert 2.5 < float(feo_fh.quantile(0.05)) and float(feo_fh.quantile(0.95)) < 7.0
    spa = moon["FeO"].where(_terrane(moon, "south_pole_aitken"))
    assert 8.0 <= float(spa.median()) <= 12.0
    # far-side highland Mg# above the near side's (Ohtake et al. 2012)
    near = np.abs(moon["lon"]) <= 90
    mg = moon["mg_number"]
    assert float(mg.where(fh & ~near).mean()) > float(mg.where(fh & near).mean()) + 3
    # SPA annulus: Mg-rich low-Ca pyroxene
    ring = _terrane(moon, "spa_mg_pyroxene_annulus")
    assert float(moon["mode"].sel(mineral="low_ca_pyroxene").where(ring).mean()) > float(
        moon["mode"].sel(mineral="low_ca_pyroxene").where(fh).mean())
    assert float(mg.where(ring).mean()) > float(mg.where(fh & near).mean())


def test_terranes_where_they_are(moon):
    t = moon["terrane"]
    assert int(t.sel(lat=-53, lon=-169, method="nearest")) == TERRANES.index("south_pole_aitken")
    assert int(t.sel(lat=10, lon=170, method="nearest")) == TERRANES.index("feldspathic_highlands")
    # Procellarum: either mare or KREEP terrane
    assert int(t.sel(lat=15, lon=-40, method="nearest")) in (TERRANES.index("mare"),
                                                               TERRANES.index("procellarum_kreep"))
    near = np.abs(moon["lon"]) <= 90
    assert float(moon["mare"].where(near).mean()) > 3 * float(moon["mare"].where(~near).mean())


def test_spatially_correlated(moon):
    fh = _terrane(moon, "feldspathic_highlands")
    x = moon["FeO"].where(fh)
    a, b = x.isel(lon=slice(0, -1)).values, x.isel(lon=slice(1, None)).values
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.5


def test_deterministic_and_seeded():
    a = make_moon(seed=1, resolution_ppd=0.5, geography="procedural", cache=False)
    b = make_moon(seed=1, resolution_ppd=0.5, geography="procedural", cache=False)
    c = make_moon(seed=2, resolution_ppd=0.5, geography="procedural", cache=False)
    np.testing.assert_array_equal(a["FeO"].values, b["FeO"].values)
    assert not np.array_equal(a["FeO"].values, c["FeO"].values)


def test_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path))
    a = make_moon(seed=0, resolution_ppd=0.5, geography="procedural")
    assert any(tmp_path.rglob("*.zarr"))
    b = make_moon(seed=0, resolution_ppd=0.5, geography="procedural")
    np.testing.assert_array_equal(a["TiO2"].values, b["TiO2"].values)
    assert b["mare"].dtype == bool
    np.testing.assert_allclose(a["reflectance"].isel(lat=40).values, b["reflectance"].isel(lat=40).values)


def test_bad_input():
    with pytest.raises(InputError, match="geography"):
        make_moon(geography="mars")
    with pytest.raises(InputError, match="resolution_ppd"):
        make_moon(resolution_ppd=-1)
    with pytest.raises(InputError, match="resolution_ppd must be a number .* got '4' of type str"):
        make_moon(resolution_ppd="4", geography="procedural", cache=False)  # was a numpy TypeError
    for seed in (None, True, 1.5, -1):
        with pytest.raises(InputError, match="seed must be a non-negative integer"):
            make_moon(seed=seed, resolution_ppd=1, geography="procedural", cache=False)


def test_stoichiometry_known_answers():
    fo = mineral_oxides("olivine", 100.0)  # forsterite Mg2SiO4: MgO 57.3, SiO2 42.7
    assert fo["MgO"] == pytest.approx(57.30, abs=0.05) and fo["SiO2"] == pytest.approx(42.70, abs=0.05)
    ilm = mineral_oxides("ilmenite", 50.0)
    assert ilm["TiO2"] == pytest.approx(53.5, abs=0.5)
    import xarray as xr

    m = xr.DataArray(np.array([0.5, 0, 0, 0, 0, 0.5]), dims="mineral", coords={"mineral": list(MINERALS)})
    ox = oxides_from_modes(m, xr.DataArray(70.0))  # glass = melted local soil: pure plagioclase
    assert float(ox["Al2O3"]) == pytest.approx(35.7, abs=0.2)


def test_negative_or_unnormalised_modes_are_errors():
    import xarray as xr

    neg = xr.DataArray([1.5, -0.3, 0, 0, -0.2, 0], dims="mineral", coords={"mineral": list(MINERALS)})
    with pytest.raises(InputError, match="negative mineral fractions"):
        oxides_from_modes(neg, xr.DataArray(70.0))  # used to give FeO -0.14, MgO -0.58 wt%
    with pytest.raises(InputError, match="sum to 2.1–2.1 instead of 1"):
        oxides_from_modes(neg.clip(0) + 0.1, xr.DataArray(70.0))


def test_pure_glass_pixel_is_an_error_not_nan():
    import xarray as xr

    m = xr.DataArray(np.array([[0.5, 0, 0, 0, 0, 0.5], [0, 0, 0, 0, 0, 1.0]]), dims=("y", "mineral"),
                     coords={"mineral": list(MINERALS)})
    with pytest.raises(InputError, match="1 pixel.*100 % glass"):
        oxides_from_modes(m, xr.DataArray(70.0))


def test_real_geography(mirror):
    moon = make_moon(seed=0, resolution_ppd=1, geography="real", cache=False)
    assert moon.attrs["geography"] == "real"
    w = np.cos(np.deg2rad(moon["lat"]))
    mare_frac = float(moon["mare"].weighted(w).mean())
    assert 0.10 < mare_frac < 0.25  # mapped: ~16-17 %
    near = np.abs(moon["lon"]) <= 90
    e = moon["elevation"]
    assert float(e.where(near).weighted(w).mean()) < float(e.where(~near).weighted(w).mean())
    # Mare Tranquillitatis / Imbrium are mare, Apollo 16 highlands are not
    assert bool(moon["mare"].sel(lat=8.5, lon=31, method="nearest"))
    assert bool(moon["mare"].sel(lat=33, lon=-16, method="nearest"))
    assert not bool(moon["mare"].sel(lat=-9, lon=15.5, method="nearest"))


def test_auto_moon_built_offline_is_not_kept_once_real_data_is_there(monkeypatch, tmp_path):
    from workbench.errors import DataUnavailableError
    from workbench.synth import moon as M

    def offline():
        raise DataUnavailableError("offline")

    monkeypatch.setattr(M, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(M, "_read_real_sources", offline)
    monkeypatch.setattr(M, "real_geography", lambda ppd, seed: offline())
    assert make_moon(seed=0, resolution_ppd=0.5).attrs["geography"] == "procedural"
    calls = []
    monkeypatch.setattr(M, "_read_real_sources", lambda: calls.append(1))  # the data is reachable now
    monkeypatch.setattr(M, "real_geography", M.procedural_geography)  # stand-in for the real data
    assert make_moon(seed=0, resolution_ppd=0.5).attrs["geography"] == "real" and calls
    assert sorted(p.name.rsplit("_", 1)[1] for p in tmp_path.glob("synthetic_moon_*")) == ["procedural.zarr",
                                                                                        "real.zarr"]


def test_mg_number_outside_0_100_or_as_a_fraction_is_refused():
    """Mg# 150 gave negative FeO; Mg# 0.7 (a fraction) gave an iron-rich rock without a word."""
    import xarray as xr

    with pytest.raises(InputError, match="outside 0–100"):
        mineral_oxides("olivine", 150.0)
    with pytest.raises(InputError, match="looks like a fraction.*multiply it by 100"):
        mineral_oxides("olivine", 0.7)
    m = xr.DataArray(np.array([0.5, 0.2, 0, 0, 0, 0.3]), dims="mineral", coords={"mineral": list(MINERALS)})
    with pytest.raises(InputError, match="outside 0–100"):
        oxides_from_modes(m, xr.DataArray(-10.0))
    with pytest.raises(InputError, match="looks like a fraction"):
        oxides_from_modes(m, xr.DataArray([0.6, 0.7], dims="y"))
    # the end-members and NaN stay accepted: Mg# 0 (fayalite) and 100 (forsterite), NaN in -> NaN out
    assert mineral_oxides("olivine", 0.0)["FeO"] > 70
    assert np.isnan(oxides_from_modes(m, xr.DataArray(np.nan))["FeO"])
