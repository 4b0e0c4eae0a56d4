"""Known answers for session 33's warp onto latitude/longitude (workbench.rasters.warp_to_latlon), found by
mutation testing: the edges of the footprint (a half pixel beyond the outer cell centres, for small and big maps),
a pole inside, on the edge of or beside a map, grid edges that fall on cell edges, the default ``ppd`` of coarse
or one-pixel-wide maps, pixels that are nearly square, integer maps, and what ``workbench invert map`` says and
uses when ``--ppd`` is left out. Maps are built by hand in metres; no data files are read."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.geo import MOON_RADIUS_M
from workbench.rasters import warp_to_latlon

DEG = np.pi * MOON_RADIUS_M / 180.0  # metres per degree of IAU_2015:30110 (equirectangular in metres)
SOUTH, NORTH, EQUI = "IAU_2015:30135", "IAU_2015:30130", "IAU_2015:30110"


def _map(x, y, crs, data=None, name="v") -> xr.DataArray:
    """A (y, x) map in metres with cell centres ``x``/``y`` (``y`` descending: north up)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    data = np.ones((y.size, x.size), "float32") if data is None else data
    return xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x}, attrs={"crs": crs, "units": "1"},
                        name=name)


def _centred(n: int, px: float, offset: float = 0.0) -> np.ndarray:
    """``n`` ascending cell centres ``px`` apart, symmetric about ``offset``."""
    return (np.arange(n) - (n - 1) / 2) * px + offset


# Equirectangular metres at 32 px/deg whose cell edges sit 0.4 of a cell off the 32 px/deg grid, warped to 64 px/deg:
# west edge -59.9875 deg, north edge 63.9875 deg; a grid cell whose centre lies in the outer half pixel (between the
# last cell centre and the map's edge) has data and is kept.
@pytest.mark.parametrize("axis, n, first, last", [
    ("x", 40, -59.9921875, -58.7421875),  # east edge -58.7375: the last cell centre -58.7531, the cell -58.7422
    ("x", 4096, -59.9921875, 68.0078125),  # east edge 68.0125; a big map is sampled, once between its centres
    ("y", 40, 63.9921875, 62.7421875),  # south edge 62.7375
    ("y", 4096, 63.9921875, -64.0078125),  # south edge -64.0125
])
def test_the_outer_half_pixel_of_a_map_keeps_its_cells(axis, n, first, last):
    west, north, px = -60 + 0.4 / 32, 64 - 0.4 / 32, DEG / 32
    nx, ny = (n, 2) if axis == "x" else (2, n)
    da = _map((west + (np.arange(nx) + 0.5) / 32) * DEG, (north - (np.arange(ny) + 0.5) / 32) * DEG, EQUI)
    assert np.isclose(float(da.x[1] - da.x[0]), px)
    geo = warp_to_latlon(da, ppd=64)
    coord = geo.lon if axis == "x" else geo.lat
    np.testing.assert_allclose(coord.values[[0, -1]], [first, last], rtol=0, atol=1e-9)
    edge = geo.isel(lon=-1) if axis == "x" else geo.isel(lat=-1)
    assert int(edge.notnull().sum()) >= 1  # that last cell has data: bilinear inside the map's outer half pixel


def test_a_long_strip_beside_the_pole_reaches_as_near_the_pole_as_its_middle():
    """4096 x 2 pixels of 1 km, from 10 to 12 km beside the south pole: nearest to it (10 km, 0.33 deg) halfway
    along, between the points a coarse sampling of the edges would take."""
    geo = warp_to_latlon(_map([10.5e3, 11.5e3], _centred(4096, 1e3)[::-1], SOUTH), ppd=2)
    assert float(geo.lat[-1]) == -89.75  # 89.67 deg S lies in the cell 89.5-90
    assert np.isfinite(geo.sel(lat=-89.25)).any()  # the strip's data at 89-89.5 deg S


@pytest.mark.parametrize("crs, end, pole_row", [(SOUTH, -1, -90 + 1 / 128), (NORTH, 0, 90 - 1 / 128)])
def test_a_pole_at_a_cell_centre_keeps_the_whole_polar_cap(crs, end, pole_row):
    """5 x 5 pixels of 4 km centred on the pole, at 64 px/deg: no cell edge or corner is nearer the pole than 2 km
    (0.066 deg, four rows), so the rows next to the pole and the longitudes round it come from the pole itself."""
    geo = warp_to_latlon(_map(_centred(5, 4e3), _centred(5, 4e3)[::-1], crs), ppd=64)
    assert float(geo.lat[end]) == pole_row
    assert geo.sizes["lon"] == 360 * 64 and float(geo.lon[0]) == -180 + 1 / 128
    assert np.isfinite(geo.isel(lat=end)).all()  # the pole's row, at every longitude
    assert geo.sizes["lat"] == 30  # out to the corners, 14.1 km from the pole: 0.466 deg


@pytest.mark.parametrize("west", [0.0, -1e3])  # the pole on the map's west edge, or in its outer half pixel
def test_a_pole_on_the_edge_or_in_the_outer_half_pixel_of_a_map_is_inside_it(west):
    """Cells 4 km wide from x = ``west``: the pole (x = 0, y = 0 between two rows' edges) is inside the map but no
    cell edge or corner is there, so only the pole's own test takes the grid to the pole."""
    x = west + (np.arange(5) + 0.5) * 4e3
    geo = warp_to_latlon(_map(x, _centred(5, 4e3)[::-1], SOUTH), ppd=64)
    assert float(geo.lat[-1]) == -90 + 1 / 128 and geo.sizes["lon"] == 360 * 64
    assert np.isfinite(geo.isel(lat=-1)).sum() > 0.4 * 360 * 64  # the map's side of the pole has data there


def test_a_map_beside_the_pole_keeps_its_own_footprint():
    """5 x 5 pixels of 4 km, 200 km from the south pole along the meridian 0: its x range holds the pole's x = 0,
    its y range does not, so it is not widened to the pole or to all longitudes."""
    geo = warp_to_latlon(_map(_centred(5, 4e3), _centred(5, 4e3, 200e3)[::-1], SOUTH), ppd=8)
    assert geo.shape == (6, 50)
    np.testing.assert_allclose(geo.lat.values[[0, -1]], [-83.0625, -83.6875])
    np.testing.assert_allclose(geo.lon.values[[0, -1]], [-3.0625, 3.0625])


def test_a_map_on_the_grid_takes_exactly_its_cells_when_rounding_puts_an_edge_past_a_cell_edge():
    """4 x 4 cells of 0.5 deg from (5 N, 7.5 W) in metres: back in degrees its west edge is -15.000000000000002
    cells and its east edge -10.999999999999998, a rounding that once took a column of NaN on each side."""
    lat, lon = 5 - (np.arange(4) + 0.5) / 2, -7.5 + (np.arange(4) + 0.5) / 2
    values = np.arange(16, dtype="float32").reshape(4, 4)
    geo = warp_to_latlon(_map(lon * DEG, lat * DEG, EQUI, values), ppd=2, resampling="nearest")
    assert geo.shape == (4, 4)
    np.testing.assert_allclose(geo.lat.values, lat)
    np.testing.assert_allclose(geo.lon.values, lon)
    np.testing.assert_array_equal(geo.values, values)


def test_the_default_ppd_of_a_coarse_map_is_one_not_zero():
    """100 km pixels: pi R / 180 / 100 km = 0.30 px/deg rounds to 0; the grid is 1 px/deg."""
    geo = warp_to_latlon(_map(_centred(6, 100e3), _centred(6, 100e3)[::-1], SOUTH))
    assert geo.attrs["ppd"] == 1 and geo.shape == (14, 360)


@pytest.mark.parametrize("keep", [{"x": [1]}, {"y": [1]}])
def test_a_map_one_pixel_wide_or_tall_takes_its_pixel_size_from_the_other_axis(keep):
    c = _centred(4, 4e3)
    geo = warp_to_latlon(_map(c, c[::-1], SOUTH).isel(keep))
    assert geo.attrs["ppd"] == 8 and geo.sizes["lon"] == 360 * 8  # round(pi * 1737.4 km / 180 / 4 km) = round(7.58)


def test_pixels_a_thousandth_off_square_are_placed_by_their_own_width_and_height():
    """4004 m by 4000 m pixels (refused until session 34, which warps rectangular pixels): the nearest warp puts in
    each cell the pixel its centre falls in, found with each side's own size."""
    import pyproj

    c = _centred(8, 4e3)
    data = np.arange(64, dtype="float32").reshape(8, 8)
    geo = warp_to_latlon(_map(c * 1.001, c[::-1], SOUTH, data), ppd=8, resampling="nearest")
    lon, lat = np.meshgrid(geo.lon.values, geo.lat.values)
    x, y = pyproj.Transformer.from_crs("IAU_2015:30100", SOUTH, always_xy=True).transform(lon, lat)
    col, row = np.floor((x + 4 * 4004.0) / 4004.0), np.floor((4 * 4000.0 - y) / 4000.0)
    on = (col >= 0) & (col < 8) & (row >= 0) & (row < 8)
    expected = np.where(on, data[row.clip(0, 7).astype(int), col.clip(0, 7).astype(int)], np.nan)
    np.testing.assert_array_equal(geo.values, expected)


@pytest.mark.parametrize("ppd, ok", [(np.int64(8), True), (True, False)])
def test_ppd_may_be_a_numpy_integer_but_not_a_bool(ppd, ok):
    c = _centred(4, 4e3)
    if ok:
        assert warp_to_latlon(_map(c, c[::-1], SOUTH), ppd=ppd).attrs["ppd"] == 8
    else:
        with pytest.raises(InputError, match="ppd must be a positive whole number.*got True"):
            warp_to_latlon(_map(c, c[::-1], SOUTH), ppd=ppd)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "bool"])
def test_a_map_of_classes_or_a_mask_warps_with_nearest_to_floats_with_nan_outside(dtype):
    """GDAL cannot put NaN in an integer raster: an integer or boolean map was a rasterio ValueError
    ('dst_nodata must be in valid range for destination dtype')."""
    c = _centred(6, 4e3)
    classes = (np.arange(36).reshape(6, 6) % 2).astype(dtype)
    geo = warp_to_latlon(_map(c, c[::-1], SOUTH, classes), ppd=8, resampling="nearest")
    assert geo.dtype == np.float32
    assert set(np.unique(geo.values[np.isfinite(geo.values)])) == {0.0, 1.0}
    assert geo.isnull().any()  # outside the square


def test_the_grid_has_only_latitude_and_longitude_with_their_cf_attributes():
    c = _centred(4, 4e3)
    geo = warp_to_latlon(_map(c, c[::-1], SOUTH))
    assert set(geo.coords) == {"lat", "lon"}  # no rioxarray spatial_ref left behind
    assert geo.lat.attrs["units"] == "degrees_north" and geo.lon.attrs["units"] == "degrees_east"


def _tiny_weights(path, bands, centres):
    from workbench.inversion.model import OxideInverter

    OxideInverter(list(bands), [float(c) for c in centres], width=4, depth=1, stem=4, members=1,
                  context=(3,)).save(path)
    return str(path)


def test_invert_map_says_the_warped_grids_size_and_resampling(tmp_path, monkeypatch, capsys):
    from geotiff_helpers import origin, write_geotiff

    from workbench.cli import main
    from workbench.inversion import global_map

    c = _centred(6, 4e3)
    tif = write_geotiff(tmp_path / "polar.tif", np.full((2, 6, 6), 0.1, "float32"), crs=SOUTH,
                        transform=origin(c[0] - 2e3, -c[0] + 2e3, 4e3, 4e3), descriptions=["R415", "R750"])
    seen = {}

    def invert_to_zarr(refl, *args, **kwargs):
        seen["refl"] = refl
        return xr.Dataset(attrs={"seconds": 0.0})

    monkeypatch.setattr(global_map, "invert_to_zarr", invert_to_zarr)
    assert main(["invert", "map", "--input", str(tif), "--out", str(tmp_path / "o.zarr"), "--weights",
                 _tiny_weights(tmp_path / "w.pt", ["R415", "R750"], [415, 750])]) == 0
    assert seen["refl"].shape == (2, 5, 2880)  # ±12 km: to 89.44 deg S at the corners, at 8 px/deg
    assert ("note: polar.tif is on a projected grid (IAU_2015:30135); warped onto latitude/longitude at 8 px/deg "
            "(5 x 2880 pixels, bilinear) before inverting") in capsys.readouterr().out


@pytest.mark.parametrize("ppd, moon_ppd", [(None, 4), (2, 2)])
def test_the_synthetic_map_is_4_px_per_degree_unless_ppd_is_given(tmp_path, monkeypatch, ppd, moon_ppd):
    import argparse

    import workbench.synth as synth
    from workbench.cli import build_parser
    from workbench.inversion import global_map
    from workbench.synth.instruments import INSTRUMENTS

    assert build_parser().parse_args(["invert", "map", "--out", "o.zarr"]).ppd is None
    table = INSTRUMENTS["clementine_uvvis"]
    weights = _tiny_weights(tmp_path / "w.pt", table["name"], table["center_nm"])
    seen = []
    monkeypatch.setattr(synth, "make_moon", lambda resolution_ppd: seen.append(resolution_ppd) or "moon")
    monkeypatch.setattr(synth, "observe", lambda *a, **k: {"reflectance": xr.DataArray(np.zeros((1, 1, 1)))})
    monkeypatch.setattr(global_map, "invert_to_zarr", lambda *a, **k: xr.Dataset(attrs={"seconds": 0.0}))
    global_map.invert_global_cli(argparse.Namespace(input=None, weights=weights, ppd=ppd, chunk=90, out=str(
        tmp_path / "m.zarr"), scheduler="threads", precision="float32", overwrite=False))
    assert seen == [moon_ppd]


def test_shown_units_hides_only_the_dimensionless_ones():
    from workbench.maps import shown_units

    assert [shown_units(u) for u in (None, "", " ", "1", " 1 ")] == [""] * 5
    assert shown_units("wt%") == "wt%" and shown_units("None") == "None"
    assert shown_units(100) == "100"  # a number read from a file's attributes is shown as text


def test_a_panel_without_a_title_still_sends_the_panel_css():
    import dataclasses

    from workbench.widgets import base

    @dataclasses.dataclass
    class PickState:
        n: str = "a"

    class Untitled(base.Panel):
        State = PickState
        css = ".x {color: red}"

        def make_controls(self):
            return {"n": base.choice("n", ["a", "b"])}

        def compute(self, state):
            raise InputError("nothing to draw")  # shown in the readout: no plot is needed to build the panel

    p = Untitled()
    try:
        assert p.sidebar.children[0].value == f"<style>.x {{color: red}}{base.PANEL_CSS}</style>"
        assert p.error == "nothing to draw"
    finally:
        p.cleanup()
