import numpy as np
import pytest
import xarray as xr

from workbench import geo
from workbench.errors import InputError


def test_global_grid_is_cell_centred_and_north_up():
    lat, lon = geo.global_grid(4)
    assert lat.shape == (720,) and lon.shape == (1440,)
    assert lat[0] == pytest.approx(89.875) and lat[-1] == pytest.approx(-89.875)
    assert lon[0] == pytest.approx(-179.875) and lon[-1] == pytest.approx(179.875)


@pytest.mark.parametrize("ppd", [1, 4, 16])
def test_area_weights_sum_to_lunar_area(ppd):
    da = geo.global_template(ppd)
    w = geo.area_weights(da)
    assert float(w.sum()) == pytest.approx(geo.MOON_AREA_KM2, rel=1e-9)
    assert w.attrs["units"] == "km2"


def test_hemispheres_are_each_half_the_moon():
    da = geo.global_template(2)
    w = geo.area_weights(da)
    masks = geo.hemisphere_masks(da)
    for name in ("near", "far", "north", "south"):
        assert float(w.where(masks[name]).sum()) == pytest.approx(geo.MOON_AREA_KM2 / 2, rel=1e-9)
    assert not bool((masks["near"] & masks["far"]).any())


def test_area_weighted_mean_of_sin_lat_is_zero_and_band_area_matches_formula():
    da = geo.global_template(4)
    w = geo.area_weights(da)
    f = np.sin(np.deg2rad(da["lat"])).broadcast_like(da)
    assert float((f * w).sum() / w.sum()) == pytest.approx(0.0, abs=1e-12)
    # area north of 60N is 2*pi*R^2*(1 - sin 60)
    cap = float(w.where(da["lat"] > 60).sum())
    assert cap == pytest.approx(2 * np.pi * geo.MOON_RADIUS_KM**2 * (1 - np.sin(np.deg2rad(60))), rel=1e-9)


def test_lon_wrapping():
    assert geo.wrap_lon_180(190.0) == pytest.approx(-170.0)
    assert geo.wrap_lon_360(-170.0) == pytest.approx(190.0)
    np.testing.assert_allclose(geo.wrap_lon_180(np.array([0, 180, 359.5, -181])), [0, -180, -0.5, 179])
    # Chang'e-6 at 206.0148 E is on the far side
    assert bool(geo.far_side_mask(np.array([206.0148]))[0])


def test_great_circle_known_answers():
    quarter = np.pi / 2 * geo.MOON_RADIUS_KM
    assert geo.great_circle_distance(0, 0, 0, 90) == pytest.approx(quarter)
    assert geo.great_circle_distance(90, 0, -90, 0) == pytest.approx(2 * quarter)
    assert geo.great_circle_distance(10, 20, 10, 20) == pytest.approx(0.0, abs=1e-9)
    # 1 degree of latitude is R*pi/180 km
    assert geo.great_circle_distance(0, 0, 1, 0) == pytest.approx(geo.MOON_RADIUS_KM * np.pi / 180)


def test_destination_point_inverts_distance():
    lat2, lon2 = geo.destination_point(-53.0, -169.0, 45.0, 800.0)
    assert geo.great_circle_distance(-53.0, -169.0, lat2, lon2) == pytest.approx(800.0, rel=1e-9)


def test_check_latlon_rejects_out_of_range():
    with pytest.raises(InputError, match="latitude out of range"):
        geo.check_latlon([91.0], [0.0])
    with pytest.raises(InputError, match="longitude out of range"):
        geo.check_latlon([0.0], [400.0])
    geo.check_latlon([-90, 90], [-180, 359])


def test_area_weights_needs_latlon():
    with pytest.raises(InputError, match="lat"):
        geo.area_weights(xr.DataArray(np.zeros((2, 2)), dims=("y", "x")))


def test_is_global_lon():
    from workbench.geo import global_grid, is_global_lon

    assert is_global_lon(global_grid(4)[1]) and is_global_lon(np.arange(0.5, 360, 1.0))
    assert not is_global_lon(np.arange(0.5, 20, 1.0)) and not is_global_lon([10.0])
    # one 1-degree column short of the circle (359 x 1 = 359 deg: off by a whole step, more than the half-step
    # tolerance) is not periodic: its east and west edges are a degree apart
    assert not is_global_lon(np.arange(-179.5, 179.5, 1.0))


def test_wrap_lon_360_stays_below_360():
    from workbench.geo import wrap_lon_360

    assert wrap_lon_360(-1e-14) == 0.0 and (wrap_lon_360(np.array([-1e-14, 370.0])) < 360.0).all()


def test_area_weights_of_a_seam_crossing_or_single_row_grid():
    ref = float(geo.area_weights(geo.global_template(4)).sel(lat=0.125, method="nearest").isel(lon=0))
    seam = xr.DataArray(np.zeros((2, 2)), dims=("lat", "lon"),
                        coords={"lat": [0.375, 0.125], "lon": [179.875, -179.875]})
    # the step across the seam used to be taken as 359.75 deg (82 696 km2 a cell)
    assert float(geo.area_weights(seam).sel(lat=0.125).isel(lon=0)) == pytest.approx(ref, rel=1e-9)
    row = xr.DataArray(np.zeros((1, 3)), dims=("lat", "lon"), coords={"lat": [0.125], "lon": [0.125, 0.375, 0.625]})
    # one latitude used to mean a 1-degree-tall cell (4x too large)
    assert float(geo.area_weights(row).isel(lat=0, lon=0)) == pytest.approx(ref, rel=1e-9)
    with pytest.raises(InputError, match="two latitudes or two longitudes"):
        geo.area_weights(row.isel(lon=[0]))


def test_destination_point_known_answers():
    # bearing is clockwise from north (90 = east): a quarter great circle east from (0, 0) ends at (0, 90E)
    quarter = np.pi / 2 * geo.MOON_RADIUS_KM
    lat2, lon2 = geo.destination_point(0.0, 0.0, 90.0, quarter)
    assert float(lat2) == pytest.approx(0.0, abs=1e-9) and float(lon2) == pytest.approx(90.0, abs=1e-9)
    # and 270 (west) ends at 90W
    lat2, lon2 = geo.destination_point(0.0, 0.0, 270.0, quarter)
    assert float(lat2) == pytest.approx(0.0, abs=1e-9) and float(lon2) == pytest.approx(-90.0, abs=1e-9)


def test_area_weights_of_a_non_square_global_grid_sum_to_lunar_area():
    # 0.5 deg in latitude x 1 deg in longitude: each cell is R^2 * dlon * (sin top - sin bottom), which
    # sums to 4 pi R^2 only when the longitude step (not the latitude step) is used for dlon
    lat = np.arange(89.75, -90.0, -0.5)
    lon = np.arange(-179.5, 180.0, 1.0)
    da = xr.DataArray(np.zeros((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    w = geo.area_weights(da)
    assert float(w.sum()) == pytest.approx(geo.MOON_AREA_KM2, rel=1e-9)
    # the cell centred on 0.25N spans 0...0.5N: R^2 * (pi/180) * (sin 0.5 deg - sin 0) = 459.747 km2
    cell = geo.MOON_RADIUS_KM**2 * np.deg2rad(1.0) * np.sin(np.deg2rad(0.5))
    assert float(w.sel(lat=0.25).isel(lon=0)) == pytest.approx(cell, rel=1e-9)
    assert cell == pytest.approx(459.747, abs=1e-3)


def test_near_side_includes_the_limb_meridians():
    """The near side is ``|lon| <= 90``: the ±90° limb meridians belong to it, in either longitude convention."""
    from workbench.geo import near_side_mask

    lon = np.array([90.0, -90.0, 90.5, -90.5, 270.0, 269.5, 0.0, 180.0])
    assert near_side_mask(lon).tolist() == [True, True, False, False, True, False, True, False]


@pytest.mark.parametrize("ppd", [0.33, 0.001, float("nan"), float("inf"), -1, 0, "4", None, True])
def test_global_grid_refuses_resolutions_that_do_not_tile_the_globe(ppd):
    # 0.33 ppd used to give 59 rows of 3.03 deg: 178.8 deg, neither global nor centred; NaN/inf/"4" tracebacks
    with pytest.raises(InputError, match="resolution_ppd"):
        geo.global_grid(ppd)


@pytest.mark.parametrize("ppd", [1 / 3, 0.5, 2, 128, np.float32(0.25), np.int64(4)])
def test_global_grid_of_any_whole_tiling_spans_the_globe_centred(ppd):
    lat, lon = geo.global_grid(ppd)
    d = 180.0 / lat.size
    assert lon.size == 2 * lat.size and lat.size == round(180 * float(ppd))
    np.testing.assert_allclose([lat[0], lat[-1], lon[0], lon[-1]],
                               [90 - d / 2, -90 + d / 2, -180 + d / 2, 180 - d / 2], atol=1e-9)


def test_global_grid_accepts_the_resolutions_its_message_suggests():
    with pytest.raises(InputError) as info:
        geo.global_grid(0.33)
    suggested = [float(w.rstrip(".,")) for w in str(info.value).split("e.g. ")[1].split(" or ")]
    assert [geo.global_grid(r)[0].size for r in suggested] == [59, 60]
    assert geo.global_grid(0.333333)[0].size == 60  # 1/3 as printed to 6 figures


# -- select_box: a lat/lon box whatever the grid's row order and longitude convention ---------------------
def _lonlat_grid(ppd=1.0):
    from workbench.geo import global_template

    t = global_template(ppd)
    la, lo = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    return t.copy(data=la * 1000 + lo)  # each cell's value names its cell


def test_select_box_is_order_and_convention_free():
    from workbench.geo import select_box

    g = _lonlat_grid()
    a = select_box(g, lat=(-60, 60), lon=(-90, 90))
    assert a.sizes == {"lat": 120, "lon": 180} and a.equals(select_box(g, lat=(60, -60), lon=(-90, 90)))
    south_up = select_box(g.isel(lat=slice(None, None, -1)), lat=(-60, 60), lon=(-90, 90))
    assert south_up["lat"].values[0] < 0 and south_up.sortby("lat", ascending=False).equals(a)  # own row order
    assert select_box(g, lon=(30, 0)).sizes["lon"] == 30  # written east to west: read as 0..30
    assert select_box(g, lon=(-120, 120)).sizes["lon"] == 240  # wider than a hemisphere: west first
    assert select_box(g, lon=(-180, 180)).equals(g)  # the whole circle, in the grid's order
    assert select_box(g, lat=(10, 10.5)).sizes["lat"] == 1  # edges included: the cell centred at 10.5


def test_select_box_crosses_the_seam_with_continuous_longitudes():
    from workbench.geo import select_box, wrap_lon_180, wrap_lon_360

    g = _lonlat_grid()
    far = select_box(g, lat=(-10, 10), lon=(170, -170))
    assert far["lon"].values.tolist() == [170.5 + k for k in range(20)]  # 170.5..189.5, west to east
    want = far["lat"].values[:, None] * 1000 + wrap_lon_180(far["lon"].values)[None, :]
    np.testing.assert_array_equal(far.values, want)  # the data moved with their longitudes
    g360 = g.assign_coords(lon=wrap_lon_360(g["lon"].values)).sortby("lon")
    near = select_box(g360, lon=(-10, 10))  # on a 0..360 grid, in the other convention, across 0
    assert near["lon"].values.tolist() == [-9.5 + k for k in range(20)]
    assert select_box(g360, lon=(350, 10)).equals(near)
    sub = select_box(g360, lon=(20, 40))
    assert sub["lon"].values.tolist() == [20.5 + k for k in range(20)]
    ds = xr.Dataset({"v": g.expand_dims(band=[1, 2])})
    assert select_box(ds, lon=(170, -170))["v"].dims == ("band", "lat", "lon")


def test_select_box_bad_input_names_the_fix():
    from workbench.errors import InputError
    from workbench.geo import select_box

    g = _lonlat_grid()
    with pytest.raises(InputError, match=r"latitude out of range: found 95"):
        select_box(g, lat=(0, 95))
    with pytest.raises(InputError, match=r"longitude out of range"):
        select_box(g, lon=(0, 400))
    for bad in ((1, 2, 3), 5.0, (0, float("nan")), ("a", 3)):
        with pytest.raises(InputError, match=r"must be a pair of numbers"):
            select_box(g, lat=bad)
    with pytest.raises(InputError, match=r"holds no cell of this grid \(lat -89.5…89.5, lon -179.5…179.5, 1° cells\)"):
        select_box(g, lat=(10.6, 10.9))
    with pytest.raises(InputError, match=r"needs 'lat' and 'lon' dimensions"):
        select_box(g.rename(lat="y", lon="x"), lat=(0, 1))


def test_area_rank_known_answers_ties_and_nan():
    """Latitude as the value: the rank of the band at latitude phi is 50 (1 + sin phi) % to within half a band;
    equal values share one mid-point rank; NaN pixels are left out and stay NaN; the ranks of a global grid
    average 50 % by area."""
    from workbench.geo import area_rank, area_weights, global_template

    t = global_template(2).fillna(0.0)
    lat = t + t["lat"]
    r = area_rank(lat)
    want = 50.0 * (1 + np.sin(np.radians(lat["lat"].values)))
    np.testing.assert_allclose(r.isel(lon=0).values, want, atol=0.05)
    w = area_weights(lat)
    assert float((r * w).sum() / w.sum()) == pytest.approx(50.0, abs=1e-9)
    half = xr.where(lat["lat"] > 0, 1.0, 0.0).broadcast_like(lat).where(lat["lon"] < 170)  # ties, and NaN
    rh = area_rank(half)
    assert np.isnan(rh.values).sum() == int(np.isnan(half.values).sum()) > 0
    assert set(np.unique(rh.values[np.isfinite(rh.values)]).round(9)) == {25.0, 75.0}
    assert r.attrs["units"] == "%"
    with pytest.raises(InputError, match=r"area_rank needs a \(lat, lon\) map"):
        area_rank(lat.expand_dims(band=[1]))
