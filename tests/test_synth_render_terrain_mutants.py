"""Known-answer tests for the procedural terrain, the shaded-relief renderer and the virtual instruments
(mutation review of workbench/synth/terrain.py, render.py and instruments.py: each test fails on a mutant of
the source that the rest of the suite let through).

Fast and offline: tiny synthetic DEMs and spectral cubes built in memory, seeded; no data mirror, no network.
Expected values are worked out by hand in the docstrings (Pike 1977 crater shapes, tan(elevation) shadow
lengths, self-affine roughness scaling, the band tables of the instrument papers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.geo import MOON_RADIUS_M
from workbench.photometry import hapke, lunar_lambert
from workbench.synth import terrain
from workbench.synth.instruments import INSTRUMENTS, observe, resample_to_instrument, response_matrix
from workbench.synth.render import cast_shadows, render
from workbench.synth.terrain import fit_sfd_slope, fractal_surface, make_terrain

WL = np.arange(260.0, 2601.0, 20.0)


def _cube(shape=(2, 3), value=0.1, dims=("lat", "lon")):
    return xr.DataArray(np.full((*shape, WL.size), value), dims=(*dims, "wavelength"), coords={"wavelength": WL},
                        attrs={"units": "1"})


def _dev(f, lag):
    return np.sqrt(0.5 * (np.mean((f[:, lag:] - f[:, :-lag]) ** 2) + np.mean((f[lag:] - f[:-lag]) ** 2)))


# ------------------------------------------------------------------------------------------- terrain.py
def test_fractal_roughness_is_set_at_the_rounded_17_m_lag():
    """3 m pixels: the 17 m baseline is round(17/3) = round(5.67) = 6 pixels = 18 m, so the RMS height
    difference at a 6-pixel lag is 1.5 m (18/17)^0.8 = 1.5 * 1.0467883 = 1.5701825 m (floor(17/3) = 5
    pixels would set it at 15 m; (3/17)^0.8 would forget the lag)."""
    f = fractal_surface((64, 64), 3.0, np.random.default_rng(0), hurst=0.8, rms_at_17m=1.5)
    assert _dev(f, 6) == pytest.approx(1.5701825, rel=1e-6)


def test_fractal_lag_is_capped_at_a_quarter_of_the_short_side():
    """0.5 m pixels on a 32 x 40 tile: 17 m is 34 pixels, more than the 32 rows; the lag is capped at
    32 // 4 = 8 pixels (4 m), where the RMS difference is 1.5 (4/17)^0.8 = 0.4713897 m (uncapped, the
    row differences are empty and the surface came out flat)."""
    f = fractal_surface((32, 40), 0.5, np.random.default_rng(1), hurst=0.8, rms_at_17m=1.5)
    assert _dev(f, 8) == pytest.approx(0.4713897, rel=1e-6)


def test_fractal_surface_has_zero_mean():
    """The k = 0 amplitude is zeroed: roughness adds relief, not a datum shift."""
    f = fractal_surface((64, 48), 5.0, np.random.default_rng(2))
    assert abs(f.mean()) < 1e-9 * f.std()


def _population(ny, nx, seed=0):
    # b = 2 binds at D_min: c = 1.54 km^-2, N = 1.54 * A * (0.004^-2 - 0.012^-2) = 85556 A, A in km^2
    return terrain._crater_population(np.random.default_rng(seed), ny, nx, 1.0, 4.0, 12.0, 2.0, 1.0, 100000, 0.5)


def test_crater_centres_scatter_a_tenth_of_the_tile_beyond_each_edge():
    """Centres are uniform on [-0.1 n, 1.1 n) along each axis (edges get cratered too). A 20 x 400 tile of 1 m
    pixels (A = 0.008 km^2) holds about 684 craters: rows in [-2, 22), columns in [-40, 440)."""
    diam, cy, cx, degraded, state = _population(20, 400)
    assert 550 < diam.size < 820
    assert -2.0 <= cy.min() < -1.5 and 21.5 < cy.max() < 22.0
    assert -40.0 <= cx.min() < -30.0 and 430.0 < cx.max() < 440.0


def test_degradation_states_span_0_2_to_1():
    """Degraded craters have d/D = 0.2 (1 - 0.8 s) for a state s uniform in [0.2, 1): down to 0.04 (module
    docstring), never a nearly fresh 0.2."""
    _, _, _, degraded, state = _population(20, 400, seed=1)
    assert 0.4 < degraded.mean() < 0.6
    assert 0.2 <= state.min() < 0.23 and 0.97 < state.max() < 1.0


def test_largest_crater_is_a_fraction_of_the_short_side(monkeypatch):
    """16 x 64 pixels of 2 m, min_crater_px = 3, max_crater_fraction = 0.5: D from 6 m to 0.5 * 16 * 2 = 16 m."""
    seen = []
    real = terrain._crater_population
    monkeypatch.setattr(terrain, "_crater_population", lambda *a: seen.append(a) or real(*a))
    make_terrain((16, 64), 2.0, seed=0, min_crater_px=3.0, max_crater_fraction=0.5)
    d_min, d_max = seen[0][4], seen[0][5]
    assert (d_min, d_max) == (6.0, 16.0)


def test_make_terrain_defaults_are_the_documented_ones(monkeypatch):
    """Docstring defaults: fitted LROC slope b = 0.933, 0.2 of geometric saturation, D from 4 px to 0.6 x the
    short side, 60 % degraded, at most 5000 craters; roughness H = 0.8 and 1.5 m at 17 m."""
    seen = {}
    real_pop, real_fractal = terrain._crater_population, terrain.fractal_surface

    def fractal(shape, pixel_size, rng, hurst, rms_at_17m):
        seen["fractal"] = (hurst, rms_at_17m)
        return real_fractal(shape, pixel_size, rng, hurst=hurst, rms_at_17m=rms_at_17m)

    monkeypatch.setattr(terrain, "fractal_surface", fractal)
    monkeypatch.setattr(terrain, "_crater_population", lambda *a: seen.setdefault("pop", a[3:]) and real_pop(*a))
    z = make_terrain((20, 30), 2.0, seed=0)
    assert seen["fractal"] == (0.8, 1.5)
    assert seen["pop"] == (2.0, 8.0, 0.6 * 20 * 2.0, 0.933, 0.2, 5000, 0.6)
    assert z.attrs["sfd_slope"] == 0.933 and z.attrs["seed"] == 0


def _one_crater(monkeypatch, degraded=False, state=0.5):
    """A 100 x 128 tile of 1 m pixels, no roughness, one crater of D = 40 m (R = 20 px) centred on row 40,
    column 60."""
    def population(rng, ny, nx, *rest):
        return np.array([40.0]), np.array([40.0]), np.array([60.0]), np.array([degraded]), np.array([state])

    monkeypatch.setattr(terrain, "_crater_population", population)
    return make_terrain((100, 128), 1.0, seed=0, roughness_m=0.0).values


def test_fresh_crater_floor_rim_and_far_ejecta_by_hand(monkeypatch):
    """Pike (1977): floor (0.036 - 0.2) D = -6.56 m at the centre (row 40, column 60: rows and columns are not
    swapped), rim crest 0.036 D = 1.44 m at r = R; ejecta at r = 2.5 R (50 px east) 0.036 D 2.5^-3
    ((3 - 2.5)/2)^2 = 1.44 * 0.064 * 0.0625 = 0.00576 m (the crater's window must reach 3 R); 0 beyond 3 R."""
    z = _one_crater(monkeypatch)
    assert z[40, 60] == pytest.approx(-6.56, abs=1e-9)
    assert z[40, 80] == pytest.approx(1.44, abs=1e-9)
    assert z[40, 110] == pytest.approx(0.00576, abs=1e-9)
    assert z[40, 121] == 0.0 and z[0, 0] == 0.0


def test_degraded_crater_floor_by_hand(monkeypatch):
    """State s = 0.2: d/D = 0.2 (1 - 0.16) = 0.168, rim/D = 0.036 (1 - 0.18) = 0.02952, floor -0.13848 D;
    the radial Gaussian smoothing (sigma = 1 + 35 s = 8 samples of 0.01 R, edge value repeated inwards)
    raises the centre of the parabola by d (0.01)^2 sigma^2/2 = 0.168e-4 * 32 = 0.0005376 D. D = 40 m:
    40 (-0.13848 + 0.0005376) = -5.517696 m (discrete kernel: within 2e-5 m)."""
    z = _one_crater(monkeypatch, degraded=True, state=0.2)
    assert z[40, 60] == pytest.approx(-5.517696, abs=2e-3)


def test_terrain_coordinates_are_pixel_centres():
    z = make_terrain((8, 10), 4.0, seed=0)
    np.testing.assert_array_equal(z["x"].values, 4.0 * (np.arange(10) + 0.5))
    np.testing.assert_array_equal(z["y"].values, 4.0 * (np.arange(8)[::-1] + 0.5))


def test_terrain_option_boundaries():
    """max_crater_fraction lies in (0, 1]: 1.0 is allowed; each side of the tile must be >= 8; a NaN pixel
    size is not positive metres."""
    assert make_terrain(16, 2.0, max_crater_fraction=1.0).shape == (16, 16)
    with pytest.raises(InputError, match="too small"):
        make_terrain((8, 4), 1.0)
    with pytest.raises(InputError, match="pixel_size must be positive"):
        make_terrain(16, float("nan"))


def test_hill_estimator_counts_a_crater_exactly_at_d_min():
    """[d_min, d_max): eleven craters with ln(D/5) = 0, 0.1, ..., 1.0 give b = 11 / 5.5 = 2.0."""
    d = 5.0 * np.exp(np.arange(0, 11) / 10.0)
    assert fit_sfd_slope(d, 5.0) == pytest.approx(2.0, rel=1e-12)


def test_truncated_fit_excludes_d_max_and_tends_to_the_hill_estimator():
    """Craters at exactly d_max lie outside [d_min, d_max) and do not change the fit; with d_max far away the
    truncated likelihood's maximum is the untruncated b = 10 / 5.5."""
    d = 5.0 * np.exp(np.arange(1, 11) / 10.0)
    assert fit_sfd_slope(np.r_[d, 20.0, 20.0, 20.0], 5.0, 20.0) == fit_sfd_slope(d, 5.0, 20.0)
    assert fit_sfd_slope(d, 5.0, 1e9) == pytest.approx(10.0 / 5.5, abs=1e-4)
    with pytest.raises(InputError, match="only 9 craters"):
        fit_sfd_slope(d[:9], 5.0)


# -------------------------------------------------------------------------------------------- render.py
def _ramp_expected(slope, az=90.0, el=30.0):
    """Lunar-Lambert I/F of a plane rising east with dz/dx = slope under a sun at (az, el), nadir viewer."""
    n = np.array([-slope, 0.0, 1.0]) / np.sqrt(1.0 + slope**2)
    a, e = np.deg2rad(az), np.deg2rad(el)
    s = np.array([np.sin(a) * np.cos(e), np.cos(a) * np.cos(e), np.sin(e)])
    return float(lunar_lambert(np.degrees(np.arccos(n @ s)), np.degrees(np.arccos(n[2])), 90.0 - el))


def test_geographic_dem_with_ascending_latitude_uses_each_rows_own_cos_lat():
    """Row 0 south (lat ascending): flipped north-up with its latitudes, so each row's pixel width is still
    R (1 deg) cos(its own lat) and the east slope 50 m/deg / that width."""
    lat = np.linspace(40.0, 70.0, 13)
    lon = np.linspace(10.0, 11.0, 21)
    z = 50.0 * (lon[None, :] - 10.0) * np.ones((lat.size, 1))
    dem = xr.DataArray(z, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, attrs={"units": "m"})
    out = render(dem, 90.0, 30.0, shadows=False).values[:, 10]
    slope = 50.0 / (np.deg2rad(1.0) * MOON_RADIUS_M * np.cos(np.deg2rad(lat)))
    np.testing.assert_allclose(out, [_ramp_expected(s) for s in slope], rtol=1e-4)


def test_geographic_dem_reaching_the_pole_renders_finite():
    lat = np.arange(90.0, 79.9, -0.5)
    lon = np.arange(0.0, 5.0, 0.5)
    dem = xr.DataArray(np.zeros((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                       attrs={"units": "m"})
    out = render(dem, 30.0, 20.0).values
    np.testing.assert_allclose(out, lunar_lambert(70.0, 0.0, 70.0), rtol=1e-5)


def test_irregular_or_non_monotonic_coordinates_are_refused():
    z = np.zeros((6, 6))
    x = np.arange(6.0)
    y_irregular = np.array([5.0, 4.0, 3.0, 1.9, 0.8, -0.3])  # steps of 1.0 and 1.1
    with pytest.raises(InputError, match="regularly spaced"):
        render(xr.DataArray(z, dims=("y", "x"), coords={"y": y_irregular, "x": x}), 0.0, 30.0)
    y_back = np.array([5.0, 4.0, 3.0, 4.0, 5.0, 6.0])
    with pytest.raises(InputError, match="strictly monotonic"):
        render(xr.DataArray(z, dims=("y", "x"), coords={"y": y_back, "x": x}), 0.0, 30.0, pixel_size=1.0)
    with pytest.raises(InputError, match="cannot be given for a geographic"):
        render(xr.DataArray(z, dims=("lat", "lon"), coords={"lat": -x, "lon": x}, attrs={"units": "m"}),
               0.0, 30.0, pixel_size=1.0)


def test_rectangular_pixels_keep_dy_and_dx_apart():
    """A plane rising 0.3 m per column: with dx = 1 m (dy = 2 m) its east slope is 0.3, whether the spacing
    comes from pixel_size=(dy, dx), from the coordinates, or x runs west (descending, flipped east-right)."""
    z = 0.3 * np.arange(12.0)[None, :] * np.ones((10, 1))
    expected = _ramp_expected(0.3)
    a = render(z, 90.0, 30.0, pixel_size=(2.0, 1.0), shadows=False)
    np.testing.assert_allclose(a.values, expected, rtol=1e-5)
    assert a.attrs["pixel_size"] == [2.0, 1.0]
    y, x = 2.0 * np.arange(10)[::-1], np.arange(12.0)
    b = render(xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}), 90.0, 30.0, shadows=False)
    np.testing.assert_allclose(b.values, expected, rtol=1e-5)
    west = xr.DataArray(z[:, ::-1], dims=("y", "x"), coords={"y": y, "x": x[::-1]})
    np.testing.assert_allclose(render(west, 90.0, 30.0, shadows=False).values, expected, rtol=1e-5)


def test_pixel_size_from_attrs_when_there_are_no_coordinates():
    z = xr.DataArray(0.6 * np.arange(12.0)[None, :] * np.ones((10, 1)), dims=("y", "x"), attrs={"pixel_size": 2.0})
    np.testing.assert_allclose(render(z, 90.0, 30.0, shadows=False).values, _ramp_expected(0.3), rtol=1e-5)


def test_zero_pixel_size_and_unit_spelling():
    with pytest.raises(InputError, match="pixel_size must be positive"):
        render(np.zeros((8, 8)), 0.0, 30.0, pixel_size=0.0)
    dem = xr.DataArray(np.zeros((8, 8)), dims=("y", "x"), coords={"y": -np.arange(8.0), "x": np.arange(8.0)},
                       attrs={"units": " Metres "})
    np.testing.assert_allclose(render(dem, 0.0, 40.0).values, lunar_lambert(50.0, 0.0, 50.0), rtol=1e-6)


def test_model_alias_and_hapke_default_albedo():
    """'lunar_lambert' is accepted for 'lunar-lambert'; Hapke's default single-scattering albedo is 0.3."""
    flat = np.zeros((6, 6))
    np.testing.assert_array_equal(render(flat, 10.0, 40.0, model="lunar_lambert", pixel_size=1.0).values,
                                  render(flat, 10.0, 40.0, pixel_size=1.0).values)
    np.testing.assert_allclose(render(flat, 10.0, 40.0, model="hapke", pixel_size=1.0).values,
                               hapke(0.3, 50.0, 0.0, 50.0), rtol=1e-6)


def test_a_nan_height_upstream_does_not_erase_a_walls_shadow():
    """Wall of 9.5 m on row 10, sun due north at 45 deg, 1 m pixels: a ground pixel m + 1 rows south of the
    wall is shaded while 9.5 > (m + 1) tan 45, i.e. rows 11-19; a NaN height on row 5, north of the wall,
    casts nothing and must not stop the wall casting."""
    z = np.zeros((40, 20))
    z[10, :] = 9.5
    z[5, 7] = np.nan
    mask = cast_shadows(z, 0.0, 45.0, pixel_size=1.0)
    assert mask[11:20, 7].all() and not mask[20:, 7].any()


@pytest.mark.parametrize("branch", ["rows", "columns"])
def test_shadow_length_on_rectangular_pixels(branch):
    """A 10 m cliff, sun at 45 deg: the shadow reaches 10 m horizontally along the sun's azimuth.
    rows: plateau on rows 0-49 (north), dy = 1 m, dx = 2 m, sun azimuth 30: one row south is
    1/cos 30 = 1.1547 m of path, so rows 50-57 are dark (8 * 1.1547 = 9.24 < 10 < 9 * 1.1547 = 10.39).
    columns: plateau on columns >= 50 (east), dy = 2 m, dx = 1 m, sun azimuth 60: one column west is
    1/sin 60 = 1.1547 m, so columns 42-49 are dark. (Measuring a step in the wrong pixel size gives 1.041 m and
    one pixel more.)"""
    if branch == "rows":
        z = np.zeros((100, 60))
        z[:50] = 10.0
        mask = cast_shadows(z, 30.0, 45.0, pixel_size=(1.0, 2.0))[:, 30]
        assert mask[50:58].all() and not mask[58:].any() and not mask[:50].any()
    else:
        z = np.zeros((60, 100))
        z[:, 50:] = 10.0
        mask = cast_shadows(z, 60.0, 45.0, pixel_size=(2.0, 1.0))[30]
        assert mask[42:50].all() and not mask[:42].any() and not mask[50:].any()


def test_shadows_true_darkens_the_cast_shadow_and_false_does_not():
    """Wall of 9.5 m on row 10, sun due north at 45 deg: rows 11-19 lie in its shadow. Flat ground there has
    i = 45, e = 0, g = 45; with shadows=True it is 0, with shadows=False it keeps its Lunar-Lambert I/F."""
    z = np.zeros((30, 12))
    z[10, :] = 9.5
    lit = lunar_lambert(45.0, 0.0, 45.0)
    on = render(z, 0.0, 45.0, pixel_size=1.0).values
    off = render(z, 0.0, 45.0, pixel_size=1.0, shadows=False).values
    np.testing.assert_array_equal(on[12:20, 3:9], 0.0)
    np.testing.assert_allclose(on[21:, 3:9], lit, rtol=1e-6)
    np.testing.assert_allclose(off[12:20, 3:9], lit, rtol=1e-6)


def test_albedo_of_the_wrong_shape_is_an_input_error():
    with pytest.raises(InputError, match="albedo"):
        render(np.zeros((8, 8)), 0.0, 30.0, pixel_size=1.0, albedo=np.ones((3, 3)))


def test_a_per_column_albedo_stays_on_its_columns_when_x_runs_west():
    """Flat ground, sun at elevation 40 deg: every pixel is its albedo x 0.7088287 (worked out in
    tests/test_render.py). A 1-D albedo broadcasts along the DEM's own columns, as a 2-D one does."""
    x_west = (np.arange(5)[::-1] + 0.5) * 10.0
    dem = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"), coords={"y": -10.0 * np.arange(4), "x": x_west},
                       attrs={"units": "m"})
    albedo = 0.1 + np.arange(5.0) / 40.0
    np.testing.assert_allclose(render(dem, 10.0, 40.0, albedo=albedo).values[0], albedo * 0.7088287, rtol=1e-6)


# --------------------------------------------------------------------------------------- instruments.py
def test_band_tables_match_the_instrument_papers():
    """FWHMs (nm) of the module docstring: Nozette et al. 1994, Ohtake et al. 2008 Table 1, Robinson et al.
    2010 / Sato et al. 2014."""
    fw = {k: dict(zip(t["name"], t["fwhm_nm"], strict=True)) for k, t in INSTRUMENTS.items()}
    assert fw["clementine_uvvis"] == {"R415": 40, "R750": 10, "R900": 30, "R950": 30, "R1000": 30}
    assert fw["kaguya_mi"] == {"R415": 20, "R750": 12, "R900": 21, "R950": 30, "R1001_vis": 42, "R1000_nir": 48,
                               "R1050": 65, "R1250": 56, "R1550": 56}
    assert fw["lro_wac"] == {"R321": 32, "R360": 15, "R415": 36, "R566": 20, "R604": 20, "R643": 23, "R689": 39}
    assert dict(zip(INSTRUMENTS["kaguya_mi"]["name"], INSTRUMENTS["kaguya_mi"]["center_nm"], strict=True)) == {
        "R415": 415, "R750": 750, "R900": 900, "R950": 950, "R1001_vis": 1001, "R1000_nir": 1000, "R1050": 1050,
        "R1250": 1250, "R1550": 1550}


def test_band_narrower_than_the_grid_step_is_centred():
    """A 3 nm band at 750.5 nm on a 10 nm grid: the 0.5 nm integration grid samples the Gaussian
    symmetrically, so a linear spectrum 0.05 + 1e-4 lambda gives exactly 0.05 + 0.07505 = 0.12505."""
    wl = np.arange(700.0, 801.0, 10.0)
    spec = xr.DataArray(0.05 + 1e-4 * wl, dims="wavelength", coords={"wavelength": wl})
    band = pd.DataFrame({"name": ["N"], "center_nm": [750.5], "fwhm_nm": [3.0]})
    assert float(resample_to_instrument(spec, band)[0]) == pytest.approx(0.12505, abs=1e-12)


def test_a_very_narrow_band_is_not_nan():
    """FWHM 0.1 nm (sigma 0.042 nm) at 750.25 nm: no 0.5 nm sub-grid sample lies within 3 sigma. The band
    value of the linear spectrum 0.05 + 1e-4 lambda is still 0.05 + 0.075025 = 0.125025 (the docstring promises
    validity for bands narrower than the grid step), or else the band should be refused with an InputError."""
    wl = np.arange(700.0, 801.0, 10.0)
    spec = xr.DataArray(0.05 + 1e-4 * wl, dims="wavelength", coords={"wavelength": wl})
    band = pd.DataFrame({"name": ["N"], "center_nm": [750.25], "fwhm_nm": [0.1]})
    with np.errstate(invalid="ignore"):
        # within 1e-7: the finer integration samples need not be centred on the band
        assert float(resample_to_instrument(spec, band)[0]) == pytest.approx(0.125025, abs=1e-7)


def test_repeated_wavelengths_are_refused():
    with pytest.raises(InputError, match="strictly increasing"):
        response_matrix([700.0, 750.0, 750.0, 800.0], "clementine_uvvis")


def test_bands_lead_whatever_the_input_dim_order():
    cube = _cube((2, 3), dims=("y", "x")).transpose("y", "wavelength", "x")
    assert resample_to_instrument(cube, "clementine_uvvis").dims == ("band", "y", "x")


def test_calibration_error_conventions():
    """Scalar 0 is an exact calibration; a dict maps by band name whatever its order; a dict lacking bands
    or a sequence of the wrong length is refused."""
    cube = _cube()
    ob = observe(cube, "clementine_uvvis", gain_error=0.0, offset_error=0.0)
    np.testing.assert_array_equal(ob["gain"].values, 1.0)
    np.testing.assert_array_equal(ob["offset"].values, 0.0)
    gains = {"R1000": 1.5, "R950": 1.4, "R900": 1.3, "R750": 1.2, "R415": 1.1}
    ob = observe(cube, "clementine_uvvis", gain_error=gains)
    np.testing.assert_array_equal(ob["gain"].sel(band=["R415", "R750", "R1000"]).values, [1.1, 1.2, 1.5])
    with pytest.raises(InputError, match="lacks bands"):
        observe(cube, "clementine_uvvis", gain_error={"R415": 1.0})
    with pytest.raises(InputError, match="one value per band"):
        observe(cube, "clementine_uvvis", offset_error=[0.0, 0.0])
    with pytest.raises(InputError, match="standard deviation"):
        observe(cube, "clementine_uvvis", gain_error=float("nan"))


def test_stripes_run_along_the_last_dim_and_bad_levels_are_refused():
    ob = observe(_cube((2, 3), dims=("y", "x")), "clementine_uvvis", stripes=0.01)
    assert ob["stripe_gain"].dims == ("band", "x")
    with pytest.raises(InputError, match="stripes"):
        observe(_cube(), "clementine_uvvis", stripes=-0.1)
    with pytest.raises(InputError, match="snr must be positive"):
        observe(_cube(), "clementine_uvvis", snr=0.0)


def test_the_seed_drives_the_calibration_and_stripe_draws():
    a = observe(_cube(), "clementine_uvvis", stripes=0.05, gain_error=0.05, seed=1)
    b = observe(_cube(), "clementine_uvvis", stripes=0.05, gain_error=0.05, seed=2)
    assert not np.allclose(a["gain"].values, b["gain"].values)
    assert not np.allclose(a["stripe_gain"].values, b["stripe_gain"].values)


def test_noise_is_relative_to_the_observed_signal():
    """sigma = signal / snr of the observed (geometry-scaled) signal: at i = 60 deg the relative scatter about
    true x photometric factor is 1/20 (noise on the standard-geometry signal would give 1/(20 * 0.57))."""
    cube = _cube((100, 100))
    ob = observe(cube, "clementine_uvvis", snr=20.0, geometry={"i": 60.0, "e": 0.0, "g": 60.0})
    rel = ob["reflectance"] / (ob["true_reflectance"] * ob["photometric_factor"]) - 1.0
    assert float(rel.std()) == pytest.approx(0.05, rel=0.03)


def test_geometry_tolerance_and_model_alias():
    """g may exceed i + e by at most 0.01 deg; 'lunar_lambert' is the same model as 'lunar-lambert'."""
    with pytest.raises(InputError, match="impossible geometry"):
        observe(_cube(), "clementine_uvvis", geometry={"i": 60.0, "e": 0.0, "g": 60.05})
    a = observe(_cube(), "clementine_uvvis", geometry={"i": 60.0, "e": 0.0, "g": 60.0, "model": "lunar_lambert"})
    np.testing.assert_allclose(a["photometric_factor"].values,
                               lunar_lambert(60.0, 0.0, 60.0) / lunar_lambert(30.0, 0.0, 30.0), rtol=1e-12)


def test_geometry_dict_and_model_are_validated():
    with pytest.raises(InputError, match="keys 'i', 'e', 'g'"):
        observe(_cube(), "clementine_uvvis", geometry={"i": 30.0, "e": 0.0})
    with pytest.raises(InputError, match="unknown photometric model 'phong'"):
        observe(_cube(), "clementine_uvvis", geometry={"i": 30.0, "e": 0.0, "g": 30.0, "model": "phong"})


def test_black_pixels_stay_black_under_hapke_geometry():
    ob = observe(_cube(value=0.0), "clementine_uvvis", geometry={"i": 60.0, "e": 0.0, "g": 60.0, "model": "hapke"})
    np.testing.assert_array_equal(ob["reflectance"].values, 0.0)
