"""Known answers for session 33's planetary rasters and lat/lon warp (workbench.rasters), found by a second round of
mutation testing: which PDS3 images count as having their label attached, a detached image beside a PDS4 label, a
truncated multiband cube, the ``chunk`` argument of ``warp_to_latlon``, and which maps ``dataset_to_latlon`` warps.
Files are tiny and written by the tests; no data files are read."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from geotiff_helpers import origin, write_geotiff, write_pds3_ldem

from workbench.errors import InputError
from workbench.rasters import dataset_to_latlon, open_geotiff, open_map_file, warp_to_latlon


@pytest.mark.parametrize("header", ["PDS_VERSION_ID = PDS3", "ODL_VERSION_ID = ODL3", "  PDS_VERSION_ID=PDS3"])
def test_an_image_with_its_label_attached_opens_even_beside_a_label_file(tmp_path, header):
    """A PDS3 .IMG whose label is attached (its first keyword PDS_VERSION_ID or ODL_VERSION_ID, maybe after blanks)
    is opened, not refused for the stale .LBL next to it."""
    dn = np.arange(4 * 200).reshape(4, 200) % 1000
    path = write_pds3_ldem(tmp_path, dn, top_lat=10.0, west_lon=0.0, ppd=4, attached=True)
    path.write_bytes(path.read_bytes().replace(b"PDS_VERSION_ID = PDS3", header.encode(), 1))  # same length
    (tmp_path / "LDEM.LBL").write_text("an old label")
    np.testing.assert_array_equal(open_geotiff(path).values, dn * 0.5 + 1737400.0)


def test_a_detached_image_beside_a_pds4_label_names_that_label(tmp_path):
    write_pds3_ldem(tmp_path, np.zeros((4, 8)), top_lat=10.0, west_lon=0.0, ppd=4)
    (tmp_path / "LDEM.LBL").rename(tmp_path / "LDEM.xml")
    with pytest.raises(InputError, match="LDEM.IMG is a PDS image whose label is a separate file; open the label "
                                         "LDEM.xml instead"):
        open_geotiff(tmp_path / "LDEM.IMG")


def test_a_multiband_cube_missing_two_of_its_three_bands_is_refused(tmp_path):
    """3 bands of 20 x 30 float32 (7200 bytes) after a 720-byte VICAR label: 3120 bytes are left, more than one
    band holds but fewer than three."""
    path = write_geotiff(tmp_path / "c.vic", np.ones((3, 20, 30), "float32"), driver="VICAR",
                         transform=origin(0, 10, 1, 1))
    path.write_bytes(path.read_bytes()[:3120])
    with pytest.raises(InputError, match=r"c.vic: its image data \(c.vic\) are \d+ bytes, fewer than the 7200 its "
                                         r"label describes \(3 band\(s\) of 20 x 30 float32\)"):
        open_geotiff(path, bands=["a", "b", "c"])


def _polar(n: int = 6, crs: str = "IAU_2015:30135", name: str = "v") -> xr.DataArray:
    c = (np.arange(n) - (n - 1) / 2) * 4e3
    return xr.DataArray(np.ones((n, n), "float32"), dims=("y", "x"), coords={"y": c[::-1], "x": c}, name=name,
                        attrs={"crs": crs, "units": "m"})


@pytest.mark.parametrize("chunk", [15, 1, 16.0, True, "64"])
def test_warp_to_latlon_refuses_a_chunk_below_16_or_not_a_whole_number(chunk):
    with pytest.raises(InputError, match=r"chunk must be a whole number of cells >= 16 \(e.g. 1024\), got "):
        warp_to_latlon(_polar(), chunk=chunk)


def test_warp_to_latlon_takes_a_chunk_of_16_or_a_numpy_integer():
    geo = warp_to_latlon(_polar(), ppd=8, chunk=16)
    assert geo.data.chunks[-1][0] == 16 and geo.sizes["lon"] == 360 * 8
    np.testing.assert_array_equal(warp_to_latlon(_polar(), ppd=8, chunk=np.int64(16)).values, geo.values)


def _latlon(name: str = "g") -> xr.DataArray:
    return xr.DataArray(np.ones((2, 4), "float32"), dims=("lat", "lon"), name=name,
                        coords={"lat": [0.25, -0.25], "lon": [-0.75, -0.25, 0.25, 0.75]},
                        attrs={"crs": "IAU_2015:30100"})


def test_dataset_to_latlon_warps_only_projected_maps_with_a_crs_and_keeps_the_dataset_attrs():
    ds = xr.Dataset({"v": _polar(), "w": _polar(name="w").assign_attrs(units="1")}, attrs={"source": "LOLA"})
    geo = dataset_to_latlon(ds, 8)
    assert list(geo.data_vars) == ["v", "w"] and geo.attrs == {"source": "LOLA"}
    assert geo["v"].dims == ("lat", "lon") and geo["v"].attrs["ppd"] == 8 and geo["w"].attrs["units"] == "1"
    bare = xr.Dataset({"v": _polar().assign_attrs(crs=None).drop_attrs()})  # (y, x) without a crs: no map to warp
    assert dataset_to_latlon(bare) is bare


def test_dataset_to_latlon_leaves_a_dataset_that_has_a_lat_lon_map_alone():
    """A lat/lon map beside a projected one: the Dataset is already on the grid and comes back as it is."""
    ds = xr.Dataset({"g": _latlon(), "v": _polar().rename(y="yy", x="xx")})
    assert dataset_to_latlon(ds) is ds
    mixed = xr.Dataset({"g": _latlon()}).assign(v=_polar())
    assert dataset_to_latlon(mixed) is mixed
    with pytest.raises(InputError, match="already in latitude/longitude and keep their grid"):
        dataset_to_latlon(mixed, 4)


def test_dataset_to_latlon_refuses_a_ppd_for_maps_that_are_not_projected():
    ds = xr.Dataset({"t": ("time", np.arange(3.0))})
    assert dataset_to_latlon(ds) is ds
    with pytest.raises(InputError, match=r"this file's maps are not projected \(y, x\) maps and keep their grid"):
        dataset_to_latlon(ds, 4)


def test_open_map_file_names_the_planetary_formats_it_reads(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(InputError, match=r"a.csv: unknown input type; .* or a GeoTIFF \(.tif\), or a PDS3 "
                                         r"\(.lbl/.img\), PDS4 \(.xml\), ISIS3 \(.cub\) or VICAR \(.vic\) raster"):
        open_map_file(tmp_path / "a.csv")



SOUTH, EQUI = "IAU_2015:30135", "IAU_2015:30110"
DEG = np.pi * 1737400.0 / 180.0  # metres per degree of IAU_2015:30110


@pytest.mark.parametrize("side", [1.0, -1.0])
@pytest.mark.parametrize("axis", ["x", "y"])
def test_a_map_beside_the_pole_reaches_as_near_it_as_the_middle_of_its_side(axis, side):
    """One line of three 20 km pixels, 10-30 km from the south pole on any of its four sides, centred on it the other
    way: the point of the map nearest the pole (10 km, 89.67 deg S) is the centre of the middle pixel's side facing
    it, not one of its corners (14.1 km, 89.53 deg S); at 8 px/deg the grid reaches the cell 89.625-89.75 deg S."""
    across, along = np.array([side * 20e3]), np.array([-20e3, 0.0, 20e3])
    x, y = (along, across) if axis == "x" else (across, along[::-1])
    da = xr.DataArray(np.ones((y.size, x.size), "float32"), dims=("y", "x"), coords={"y": y, "x": x},
                      attrs={"crs": SOUTH})
    geo = warp_to_latlon(da, ppd=8)
    assert float(geo.lat[-1]) == -89.6875


@pytest.mark.parametrize("west, px, n, cols", [(-179.95, 359.35 / 719, 719, 720), (-179.0, 1.0, 358, 716)])
def test_a_gap_at_the_antimeridian_narrower_than_two_cells_takes_every_longitude(west, px, n, cols):
    """Equirectangular metres, ``px`` deg pixels from ``west``: a gap of 0.65 deg at ±180 deg (under two cells of
    0.5 deg; 0.6 deg of it east of the map's east edge, 179.4 deg) gives the whole circle of 720 columns; one of
    2 deg keeps the map's own 716."""
    x = (west + (0.5 + np.arange(n)) * px) * DEG
    da = xr.DataArray(np.ones((2, n), "float32"), dims=("y", "x"), attrs={"crs": EQUI},
                      coords={"y": [0.5 * px * DEG, -0.5 * px * DEG], "x": x})
    geo = warp_to_latlon(da, ppd=2)
    assert geo.sizes["lon"] == cols
    if cols == 716:
        assert float(geo.lon[0]) == -178.75 and float(geo.lon[-1]) == 178.75


@pytest.mark.parametrize("ppd, deg", [(1, 40), (16, 8)])
def test_blocks_of_a_coarser_or_finer_grid_each_take_the_whole_of_their_cells(ppd, deg):
    """A ``deg`` x ``deg`` map at 8 px/deg (equirectangular metres, values a + 1000 b by source cell), warped with
    blocks of 16 cells onto 1 px/deg (each cell 8 source pixels wide) or 16 px/deg: every cell is filled, the
    nearest warp takes its source cell's value, and the bilinear warp is the same whatever the blocks."""
    rows = cols = np.arange(8 * deg)
    values = (rows[:, None] + 1000.0 * cols[None, :]).astype("float32")
    half = deg / 2
    da = xr.DataArray(values, dims=("y", "x"), attrs={"crs": EQUI},
                      coords={"y": (half - (rows + 0.5) / 8) * DEG, "x": (-half + (cols + 0.5) / 8) * DEG})
    near = warp_to_latlon(da, ppd=ppd, resampling="nearest", chunk=16)
    assert near.shape == (deg * ppd, deg * ppd) and bool(near.notnull().all())
    lat, lon = near.lat.values, near.lon.values
    src_row = np.floor((half - lat) * 8).astype(int)
    src_col = np.floor((lon + half) * 8).astype(int)
    np.testing.assert_array_equal(near.values, values[np.ix_(src_row, src_col)])
    one = warp_to_latlon(da, ppd=ppd, chunk=4096).values
    np.testing.assert_array_equal(warp_to_latlon(da, ppd=ppd, chunk=16).values, one)


def test_a_coarse_tile_across_the_antimeridian_takes_every_longitude_even_with_its_samples_clear_of_it():
    """Ten 2 deg pixels from 170.5 to 190.5 deg E, equirectangular metres about 180 deg E (IAU_2015:30115): the
    footprint's outline is sampled every 1 deg, at 179.5 and 180.5 deg E, so the gap across ±180 deg (1 deg) is
    wider than two cells at 8 px/deg; it is the gap between 190.5 and 170.5 deg E that is the widest, and the map
    takes every longitude, not -179.5...179.5."""
    x = (-9.5 + 2.0 * np.arange(10) + 1.0) * DEG  # centres 171.5 ... 189.5 deg E
    da = xr.DataArray(np.ones((2, 10), "float32"), dims=("y", "x"), attrs={"crs": "IAU_2015:30115"},
                      coords={"y": [DEG, -DEG], "x": x})
    geo = warp_to_latlon(da, ppd=8)
    assert geo.sizes["lon"] == 2880 and float(geo.lon[0]) == -180 + 1 / 16
    assert bool(geo.sel(lon=179.9375).notnull().all()) and bool(geo.sel(lon=-179.9375).notnull().all())



def test_a_north_polar_map_with_the_pole_on_its_north_edge_takes_every_longitude():
    """5 x 5 pixels of 4 km south of the north pole in y (the pole on the map's top edge, mid-way along it): its
    outline alone spans 90 W ... 90 E through 0, but the pole is on the map, so every longitude is kept."""
    x, y = (np.arange(5) - 2) * 4e3, -(np.arange(5) + 0.5) * 4e3
    da = xr.DataArray(np.ones((5, 5), "float32"), dims=("y", "x"), coords={"y": y, "x": x},
                      attrs={"crs": "IAU_2015:30130"})
    geo = warp_to_latlon(da, ppd=8)
    assert float(geo.lat[0]) == 90 - 1 / 16 and geo.sizes["lon"] == 360 * 8


def test_bilinear_inside_a_lone_valid_pixel_is_its_value_even_where_its_weight_is_a_quarter():
    """One valid source pixel (0.5 deg, value 5) among NaN ones, warped at 20 px/deg: its 10 x 10 cells all take 5,
    the bilinear weight renormalised over the one valid neighbour even near its corners (weight 0.3)."""
    v = np.full((4, 4), np.nan, "float32")
    v[1, 1] = 5.0
    c = (np.arange(4) + 0.5) / 2
    da = xr.DataArray(v, dims=("y", "x"), coords={"y": (2 - c) * DEG, "x": c * DEG}, attrs={"crs": EQUI})
    geo = warp_to_latlon(da, ppd=20)
    np.testing.assert_allclose(geo.sel(lat=slice(1.5, 1.0), lon=slice(0.5, 1.0)).values, 5.0, rtol=1e-6)
    assert int(geo.notnull().sum()) == 100


def test_a_block_of_the_grid_wholly_outside_the_map_is_nan():
    """Blocks of 16 x 16 cells at 128 px/deg whose outline lies two to three source rows (8 px/deg) north of an
    equirectangular map's top edge at 10 deg N (an empty window), or 20 rows north, are NaN, not zeros."""
    import pyproj
    from rasterio.transform import Affine

    from workbench.rasters import _warp_blocks

    for rows in (np.arange(-1328, -1312), np.arange(-1600, -1584)):
        block = _warp_blocks(np.ones((8, 8), np.float32), pyproj.CRS(EQUI),
                             Affine(DEG / 8, 0, 0, 0, -DEG / 8, 10 * DEG), rows, np.arange(0, 16), 128, 1, 16)
        assert block.shape == (16, 16) and bool(np.isnan(block.compute()).all())


def test_blocks_of_a_map_whose_meridians_curve_read_the_whole_window_under_them():
    """Mollweide (IAU_2015:30140), 5 km pixels from 0 to 3000 km east, ±530 km north-south (15.9 deg), in blocks
    of 32 cells at 1 px/deg: a meridian bulges east at the equator, between its ends, so the window of a block from
    16 N to 16 S must come from its east side's every cell edge, not just its corners (60 km further west at 96 deg
    E, more than the half cell and two pixels of padding). Every cell whose centre is on the map has data."""
    import pyproj

    x, y = (np.arange(600) + 0.5) * 5e3, (np.arange(212)[::-1] - 105.5) * 5e3
    da = xr.DataArray(np.ones((212, 600), "float32"), dims=("y", "x"), coords={"y": y, "x": x},
                      attrs={"crs": "IAU_2015:30140"})
    geo = warp_to_latlon(da, ppd=1, resampling="nearest", chunk=32)
    crs = pyproj.CRS("IAU_2015:30140")
    lon, lat = np.meshgrid(geo.lon.values, geo.lat.values)
    sx, sy = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True).transform(lon, lat)
    on_map = (sx > 0) & (sx < 3000e3) & (np.abs(sy) < 530e3)
    assert geo.sizes["lat"] == 32 and on_map.sum() > 2500
    np.testing.assert_array_equal(geo.notnull().values, on_map)


def test_a_cube_with_its_band_dim_last_warps_like_one_with_it_first():
    """(y, x, band) is turned (band, y, x) before it is cut into windows: the bands keep their own maps."""
    c = (np.arange(6) - 2.5) * 4e3
    data = np.stack([np.ones((6, 6)), 2 * np.ones((6, 6)), 3 * np.ones((6, 6))]).astype("float32")
    cube = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": ["a", "b", "c"], "y": c[::-1], "x": c},
                        attrs={"crs": SOUTH})
    first = warp_to_latlon(cube, ppd=8)
    last = warp_to_latlon(cube.transpose("y", "x", "band"), ppd=8)
    assert last.dims == ("band", "lat", "lon") and list(last.band.values) == ["a", "b", "c"]
    np.testing.assert_array_equal(last.values, first.values)
    assert set(np.unique(first.sel(band="b").values[np.isfinite(first.sel(band="b").values)])) == {2.0}


@pytest.mark.parametrize("fmt", ["pds3", "isis3", "vicar"])
def test_a_file_with_its_label_attached_that_lost_its_last_bytes_is_refused(tmp_path, fmt):
    """The label at the start of a PDS3 .IMG, an ISIS3 .cub (64 KiB) or a VICAR file is no image data: such a file
    that lost fewer bytes than its label holds was not refused (ISIS3 read the lost part as zeros, PDS3 failed
    later with rasterio's 'Read failed'). An ISIS3 cube keeps its history after the image: 272 bytes here."""
    if fmt == "pds3":
        path = write_pds3_ldem(tmp_path, np.full((4, 200), 7), top_lat=10.0, west_lon=0.0, ppd=4, attached=True)
        lost, need = 100, 1600
    else:
        path = write_geotiff(tmp_path / ("c.cub" if fmt == "isis3" else "c.vic"), np.ones((3, 20, 30), "float32"),
                             driver=fmt.upper(), transform=origin(0, 10, 1, 1))
        lost, need = 400, 7200
    path.write_bytes(path.read_bytes()[:-lost])
    with pytest.raises(InputError, match=rf"its image data \({path.name}\) are \d+ bytes, fewer than the {need} its "
                                         "label describes"):
        open_geotiff(path, bands=None if fmt == "pds3" else ["a", "b", "c"])


@pytest.mark.parametrize("west_lon, cols", [(170.0, 20), (180.0, 20), (90.0, 180)])
def test_a_tile_that_ends_or_starts_at_180_east_keeps_its_own_longitudes(tmp_path, west_lon, cols):
    """LDEM-like PDS3 tiles about 180 deg E (LOLA's tiles end or start there, e.g. 090_180): the edge on 180 deg E
    is x = 0, which PROJ gives as +180 deg; a tile ending there took the whole circle (720 columns, most NaN)."""
    path = write_pds3_ldem(tmp_path, np.ones((8, cols)), top_lat=10.0, west_lon=west_lon, ppd=2)
    geo = warp_to_latlon(open_geotiff(path))
    assert geo.shape == (8, cols) and int(geo.notnull().sum()) == 8 * cols
    lon = (west_lon + (np.arange(cols) + 0.5) / 2 + 180) % 360 - 180
    np.testing.assert_allclose(geo.lon.values, lon)
