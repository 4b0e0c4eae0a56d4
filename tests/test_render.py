"""Known-answer tests of the shaded-relief renderer (workbench.synth.render)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.geo import MOON_RADIUS_M
from workbench.photometry import hapke, lunar_lambert
from workbench.synth.render import cast_shadows, render


def _sun(az, el):
    a, e = np.deg2rad(az), np.deg2rad(el)
    return np.array([np.sin(a) * np.cos(e), np.cos(a) * np.cos(e), np.sin(e)])


@pytest.mark.parametrize("az,el,slope", [(90, 30, 0.3), (200, 15, -0.2), (45, 60, 0.5)])
def test_tilted_plane_matches_analytic_incidence(az, el, slope):
    n, ps = 32, 2.0
    x = np.arange(n) * ps
    y = np.arange(n)[::-1] * ps
    z = slope * x[None, :] + 0.1 * y[:, None]  # dz/deast = slope, dz/dnorth = 0.1
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}, attrs={"units": "m"})
    normal = np.array([-slope, -0.1, 1.0]) / np.sqrt(1 + slope**2 + 0.01)
    i = np.degrees(np.arccos(normal @ _sun(az, el)))
    e = np.degrees(np.arccos(normal[2]))
    expected = lunar_lambert(i, e, 90 - el)
    out = render(dem, az, el, shadows=False)
    assert out.attrs["units"] == "1"
    np.testing.assert_allclose(out.values, expected, rtol=1e-5)


def test_sphere_shading_is_analytic():
    n, ps, R = 201, 1.0, 80.0
    c = (np.arange(n) - n // 2) * ps
    xx, yy = np.meshgrid(c, -c)
    r2 = xx**2 + yy**2
    z = np.sqrt(np.clip(R**2 - r2, 0, None))
    az, el = 135.0, 50.0
    out = render(z, az, el, pixel_size=ps, shadows=True).values
    inner = r2 < (0.6 * R) ** 2
    normal = np.stack([xx, yy, z]) / R  # outward normal of the sphere (east, north, up)
    cos_i = np.tensordot(_sun(az, el), normal, axes=1)
    i = np.degrees(np.arccos(np.clip(cos_i, 0, 1)))
    e = np.degrees(np.arccos(np.clip(z / R, 0, 1)))
    expected = lunar_lambert(i, e, 90 - el)
    np.testing.assert_allclose(out[inner], expected[inner], atol=5e-3)
    # the brightest point faces the sun: offset from the centre towards the sun azimuth
    iy, ix = np.unravel_index(np.argmax(np.where(inner, out, 0)), out.shape)
    assert c[ix] > 0 and -c[iy] < 0  # azimuth 135: towards east and south


@pytest.mark.parametrize("az", [0, 90, 180, 270, 30, 300])
@pytest.mark.parametrize("el", [5.0, 20.0, 45.0])
def test_step_shadow_length(az, el):
    h, ps, n = 10.0, 1.0, 400
    c = np.arange(n) - n / 2
    xx, yy = np.meshgrid(c, -c)
    a = np.deg2rad(az)
    along = xx * np.sin(a) + yy * np.cos(a)  # distance towards the sun
    z = np.where(along > 0, h, 0.0)  # a cliff: the plateau lies towards the sun
    mask = cast_shadows(z, az, el, pixel_size=ps)
    expected = h / np.tan(np.deg2rad(el))
    # every pixel down-sun of the cliff within h/tan(el) (less 2 px of discretisation) is dark ...
    near_line = np.abs(xx * np.cos(a) - yy * np.sin(a)) < n / 4
    inside = near_line & (along <= 0) & (along > -(expected - 2 * ps))
    assert inside.sum() > 0 and mask[inside].all()
    # ... and nothing beyond the tip of the shadow (plus 2 px), nor on the plateau, is shadowed
    assert not np.any(mask & near_line & (along < -(expected + 2 * ps)))
    assert not np.any(mask & (along > 0))


def test_flat_ground_and_hapke():
    out = render(np.zeros((8, 8)), 10.0, 40.0, pixel_size=5.0)
    np.testing.assert_allclose(out.values, lunar_lambert(50.0, 0.0, 50.0), rtol=1e-6)
    outh = render(np.zeros((8, 8)), 10.0, 40.0, model="hapke", albedo=0.25, pixel_size=5.0)
    np.testing.assert_allclose(outh.values, hapke(0.25, 50.0, 0.0, 50.0), rtol=1e-6)


@pytest.mark.parametrize("el", [0.0, -5.0, 90.5, np.nan])
def test_bad_sun_elevation(el):
    with pytest.raises(InputError, match="elevation"):
        render(np.zeros((8, 8)), 0.0, el, pixel_size=1.0)


def test_bad_inputs():
    with pytest.raises(InputError, match="pixel_size"):
        render(np.zeros((8, 8)), 0.0, 30.0)
    km = xr.DataArray(np.zeros((8, 8)), dims=("y", "x"), coords={"y": np.arange(8.0), "x": np.arange(8.0)},
                      attrs={"units": "km"})
    with pytest.raises(InputError, match="metres"):
        render(km, 0.0, 30.0)
    with pytest.raises(InputError, match="model"):
        render(np.zeros((8, 8)), 0.0, 30.0, pixel_size=1.0, model="phong")


def test_nan_in_nan_out():
    z = np.zeros((20, 20))
    z[10, 10] = np.nan
    out = render(z, 45.0, 30.0, pixel_size=1.0).values
    assert np.isnan(out[10, 10])
    assert np.isfinite(out[0, 0]) and np.isfinite(out[19, 19])


def test_geographic_dem_uses_lunar_radius_and_coslat():
    lat = np.linspace(60.5, 59.5, 21)
    lon = np.linspace(10.0, 11.0, 41)
    k = 50.0  # m per degree of longitude
    z = k * (lon[None, :] - 10.0) * np.ones((lat.size, 1))
    dem = xr.DataArray(z, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, attrs={"units": "m"})
    out = render(dem, 90.0, 30.0, shadows=False)
    slope = k / (np.deg2rad(1.0) * MOON_RADIUS_M * np.cos(np.deg2rad(lat)))  # dz/deast per row
    normal_e = -slope / np.sqrt(1 + slope**2)
    cos_i = normal_e * np.cos(np.deg2rad(30)) + np.sin(np.deg2rad(30)) / np.sqrt(1 + slope**2)
    i = np.degrees(np.arccos(cos_i))
    e = np.degrees(np.arctan(slope))
    expected = lunar_lambert(i, e, 60.0)
    np.testing.assert_allclose(out.values[:, 20], expected, rtol=1e-4)


def test_flipped_coordinates_are_handled():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 40)).cumsum(0).cumsum(1)
    y, x = np.arange(30)[::-1] * 2.0, np.arange(40) * 2.0
    a = render(xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}), 70.0, 10.0)
    b = render(xr.DataArray(z[::-1], dims=("y", "x"), coords={"y": y[::-1], "x": x}), 70.0, 10.0)
    np.testing.assert_allclose(a.values, b.values[::-1])


@pytest.mark.parametrize("az", [170.0, 150.0])
def test_shadows_on_a_wide_geographic_grid_do_not_depend_on_its_extent(az):
    """Pixels narrow towards the pole, so no one sweep axis keeps the ray within a pixel per step; the
    shadows of the 0-40 deg N rows must not change when the grid also reaches 85 deg N (sun in the south:
    nothing north of 40 deg can shadow them)."""
    from scipy import ndimage

    d = 0.25
    lat = np.arange(85 - d / 2, 0, -d)
    lon = np.arange(0, 20, d) + d / 2
    z = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(lat.size, lon.size)), 1.5) * 3e4
    dem = xr.DataArray(z, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"), attrs={"units": "m"})
    full = cast_shadows(dem, az, 3.0).values
    sub = cast_shadows(dem.sel(lat=slice(40, 0)), az, 3.0).values
    assert 0.2 < sub.mean() < 0.9
    # the two grids march along different axes, so near-threshold pixels may differ (2 % here); before
    # sub-stepping, 23 % (sun at 170 deg) and 5 % (150 deg) of the pixels differed
    assert np.mean(full[-sub.shape[0]:] != sub) < 0.03


def test_pixel_size_keeps_the_direction_of_ascending_y():
    """pixel_size= overrides the spacing only: a y-ascending DEM (row 0 south) is still put north-up, so
    a wall under a northern sun shades the ground south of it with or without pixel_size."""
    n = 40
    z = np.zeros((n, n))
    z[20, :] = 100.0  # east-west wall
    y_up = (np.arange(n) + 0.5) * 10.0  # ascending: row 0 is the southern edge
    x = (np.arange(n) + 0.5) * 10.0
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y_up, "x": x}, attrs={"units": "m"})
    a = cast_shadows(dem, 0.0, 45.0)
    b = cast_shadows(dem, 0.0, 45.0, pixel_size=10.0)
    np.testing.assert_array_equal(b.values, a.values)
    assert a.y.values[a.values[:, 5]].max() < y_up[20]  # south of the wall
    # and the shading of a slope (rises to the north, sun in the east) does not depend on pixel_size either
    ramp = dem.copy(data=np.repeat(np.arange(n)[:, None] * 3.0, n, 1))
    np.testing.assert_array_equal(render(ramp, 60.0, 30.0, pixel_size=10.0).values,
                                  render(ramp, 60.0, 30.0).values)


def test_geographic_dem_across_the_seam_is_regular():
    """Longitudes running east across ±180° are regular steps modulo 360°: same image as off the seam."""
    lat = np.arange(9.75, -10, -0.5)
    lon_seam = np.r_[np.arange(170.25, 180, 0.5), np.arange(-179.75, -170, 0.5)]
    z = np.random.default_rng(0).normal(0.0, 3000.0, (lat.size, lon_seam.size))
    seam = xr.DataArray(z, dims=("lat", "lon"), coords={"lat": lat, "lon": lon_seam}, attrs={"units": "m"})
    plain = seam.assign_coords(lon=np.arange(lon_seam.size) * 0.5 + 10.25)
    np.testing.assert_array_equal(render(seam, 70.0, 20.0).values, render(plain, 70.0, 20.0).values)
    np.testing.assert_array_equal(render(seam[:, ::-1], 70.0, 20.0).values[:, ::-1],
                                  render(plain, 70.0, 20.0).values)


def test_albedo_map_stays_on_its_pixels_when_the_dem_is_south_up_and_west_right():
    """A 2-D albedo is given in the DEM's own row/column order. Flat ground under a sun at elevation 40 deg:
    i = 50, e = 0, g = 50 everywhere; McEwen's L(50) = 1 - 0.95 + 0.605 - 0.1825 = 0.4725, mu0 = cos 50 =
    0.6427876, so F = 2 * 0.4725 * 0.6427876/1.6427876 + 0.5275 * 0.6427876 = 0.3697583 + 0.3390705 =
    0.7088287 and every pixel is its own albedo times 0.7088287 (a flipped albedo would land on the wrong
    rows and columns)."""
    y_up = (np.arange(4) + 0.5) * 10.0  # ascending: row 0 is the southern edge
    x_west = (np.arange(5)[::-1] + 0.5) * 10.0  # descending: column 0 is the eastern edge
    dem = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"), coords={"y": y_up, "x": x_west}, attrs={"units": "m"})
    albedo = 0.1 + np.arange(20.0).reshape(4, 5) / 40.0
    out = render(dem, 10.0, 40.0, albedo=albedo)
    np.testing.assert_allclose(out.values, albedo * 0.7088287, rtol=1e-6)
