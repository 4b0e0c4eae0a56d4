"""Known answers for session 34's rasters work, found by mutation testing: the average resampling of
``warp_to_latlon`` (cells that span unequal numbers of map pixels along latitude and longitude, fractional spans,
the corners of a polar map, the block-size floor, an explicit ``"average"`` onto a finer grid), units read from
labels (spellings, quotes, ``N/A``), GDAL's overview and mask side files, projected maps placed by a CF
``grid_mapping`` (``crs_wkt`` or ``spatial_ref`` alone; nothing of the old projection left on the warped map),
``dataset_to_latlon``'s ``names`` and its refusals, ``open_reflectance`` on a zarr store holding several cubes, and
``workbench export``'s ``--ppd``/``--resampling`` checks. Maps are tiny, seeded and written by the tests."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from geotiff_helpers import origin, write_geotiff, write_pds3_ldem

from workbench.errors import InputError
from workbench.geo import MOON_RADIUS_M
from workbench.rasters import dataset_to_latlon, open_geotiff, warp_to_latlon

DEG = np.pi * MOON_RADIUS_M / 180.0  # metres per degree on the Moon's sphere
SOUTH_POLAR = "IAU_2015:30135"


def _polar(n: int = 40, dx: float = 2000.0, seed: int = 0, name: str = "h") -> xr.DataArray:
    """Unit white noise on a south polar stereographic grid of ``n`` x ``n`` pixels of ``dx`` metres."""
    rng = np.random.default_rng(seed)
    c = (np.arange(n) - (n - 1) / 2) * dx
    return xr.DataArray(rng.normal(0.0, 1.0, (n, n)).astype("float32"), dims=("y", "x"),
                        coords={"y": c[::-1], "x": c}, attrs={"crs": SOUTH_POLAR}, name=name)


def _equirect(values: np.ndarray, ppd: int, top: float = 30.0, west: float = 10.0) -> xr.DataArray:
    """``values`` on equirectangular metres (IAU_2015:30110) at ``ppd`` pixels per degree from ``top``, ``west``."""
    ny, nx = values.shape[-2:]
    step = DEG / ppd
    return xr.DataArray(values.astype("float32"), dims=("y", "x"),
                        coords={"y": top * DEG - (np.arange(ny) + 0.5) * step,
                                "x": west * DEG + (np.arange(nx) + 0.5) * step},
                        attrs={"crs": "IAU_2015:30110"}, name="h")


# --- average resampling ---------------------------------------------------------------------------------------


def test_average_of_cells_four_pixels_tall_and_two_wide_is_the_mean_of_each_4x2_block():
    """Equirectangular with its true scale at 60 deg: a degree of longitude is half as many metres as one of
    latitude, so at 8 px/deg each cell spans 4 map pixels along latitude and 2 along longitude, its sub-cell
    centres are those 8 pixels' centres and the average is their plain mean (latitude and longitude sub-cells
    not swapped)."""
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 1.0, (40, 40))
    step = DEG / 32
    da = xr.DataArray(values.astype("float32"), dims=("y", "x"),
                      coords={"y": 20.0 * DEG - (np.arange(40) + 0.5) * step,
                              "x": 5.0 * DEG + (np.arange(40) + 0.5) * step},
                      attrs={"crs": "+proj=eqc +lat_ts=60 +lon_0=0 +R=1737400 +units=m +no_defs"}, name="h")
    geo = warp_to_latlon(da, ppd=8)
    assert geo.attrs["resampling"] == "average" and geo.shape == (10, 20)
    assert float(geo.lat[0]) == 19.9375 and float(geo.lon[0]) == 10.0625
    np.testing.assert_allclose(geo.values, values.reshape(10, 4, 20, 2).mean(axis=(1, 3)), atol=1e-6)


def test_a_grid_exactly_half_the_maps_resolution_is_averaged():
    """The default's boundary: a map at exactly 16 px/deg (from 0 deg E, where its pixel size comes back exact)
    onto 8 px/deg averages; onto 9 it samples bilinearly."""
    flat = _equirect(np.ones((32, 32)), 16, west=0.0)
    assert warp_to_latlon(flat, ppd=8).attrs["resampling"] == "average"
    assert warp_to_latlon(flat, ppd=9).attrs["resampling"] == "bilinear"


def test_sub_cells_round_a_fractional_span_up():
    """A map at 26 px/deg onto 8 px/deg: each cell spans 3.25 map pixels each way, so it takes 4 x 4 sub-cells
    (rounded up: at least one sample per map pixel), 3 x 3 for a map at exactly 24 px/deg."""
    import pyproj

    from workbench.rasters import _sub_cells

    crs = pyproj.CRS.from_user_input("IAU_2015:30110")
    rows, cols = np.arange(-240, -230), np.arange(80, 100)
    for own, k in ((26, 4), (24, 3)):
        dx = DEG / own
        x, y = 10.0 * DEG + (np.arange(40) + 0.5) * dx, 30.0 * DEG - (np.arange(40) + 0.5) * dx
        sub = _sub_cells(crs, x, y, dx, dx, rows, cols, 8)
        assert sub.shape == (2, rows.size) and (sub == k).all(), (own, sub)


def test_a_row_whose_cell_centres_lie_in_the_maps_outer_half_pixel_is_averaged():
    """A map whose top edge is 0.01 deg above the top cells' centres (its first pixel centre 0.0056 deg below
    them): those centres lie on the map (within half a pixel of its first pixel centre), so the row takes 4 x 4
    sub-cells like the rest, not the single sample of a row off the map."""
    import pyproj

    from workbench.rasters import _sub_cells

    crs = pyproj.CRS.from_user_input("IAU_2015:30110")
    dx = DEG / 32
    x, y = 10.0 * DEG + (np.arange(40) + 0.5) * dx, (29.9375 + 0.01) * DEG - (np.arange(40) + 0.5) * dx
    rows, cols = np.arange(-240, -230), np.arange(80, 90)  # cell centres from 29.9375 N, 10.0625 E
    sub = _sub_cells(crs, x, y, dx, dx, rows, cols, 8)
    assert (sub == 4).all(), sub


def test_rows_with_different_sub_cells_in_one_block_are_each_averaged_with_their_own():
    """A block whose rows take (1, 1), (2, 2), (3, 1) and (3, 2) sub-cells (rows sharing only one of the two counts)
    is the same as each row averaged on its own."""
    import pyproj
    from rasterio.transform import Affine

    from workbench.rasters import _warp_window

    values = np.random.default_rng(6).normal(0.0, 1.0, (40, 40)).astype("float32")
    dx = DEG / 32
    crs = pyproj.CRS.from_user_input("IAU_2015:30110")
    transform = Affine(dx, 0.0, 10.0 * DEG, 0.0, -dx, 30.0 * DEG)
    lat, lon = 30.0 - (np.arange(4) + 0.5) / 8, 10.0 + (np.arange(6) + 0.5) / 8
    sub = np.array([[1, 2, 3, 3], [1, 2, 1, 2]])
    block = _warp_window(values, crs, 0, 0, transform, lat, lon, 1, sub)
    rows = [_warp_window(values, crs, 0, 0, transform, lat[i:i + 1], lon, 1, sub[:, i:i + 1]) for i in range(4)]
    np.testing.assert_array_equal(block, np.concatenate(rows))
    assert block.shape == (4, 6) and np.isfinite(block).all()
    assert not np.allclose(block[2], block[3])  # (3, 1) and (3, 2) differ


def test_the_corners_of_a_polar_map_are_averaged_too():
    """A square polar map covers every longitude only near the pole; further out (about 86.7 deg S to 85.3 deg S
    here) only its corners lie under a row of the grid. Those rows are averaged as well: unit white noise over
    cells of about 8 map pixels keeps a std near 1/sqrt(8) there (sampling one point per cell keeps about 0.7)."""
    noise = _polar(n=200, dx=1000.0, seed=4)
    ring = warp_to_latlon(noise, ppd=4).sel(lat=slice(-85.4, -86.6))
    assert ring.sizes["lat"] == 4 and int(np.isfinite(ring).sum()) > 1000
    bil = warp_to_latlon(noise, ppd=4, resampling="bilinear").sel(lat=slice(-85.4, -86.6))
    assert float(ring.std()) < 0.45 and float(bil.std()) > 0.6


def test_an_explicit_average_onto_a_finer_grid_is_the_bilinear_warp():
    """Where no source cell centre falls in a cell (the grid finer than the map), ``"average"`` takes the bilinear
    value, not the nearest."""
    values = np.random.default_rng(5).normal(0.0, 1.0, (12, 16))
    avg = warp_to_latlon(_equirect(values, 8), ppd=32, resampling="average")
    bil = warp_to_latlon(_equirect(values, 8), ppd=32, resampling="bilinear")
    assert avg.attrs["resampling"] == "average"
    np.testing.assert_allclose(avg.values, bil.values, atol=1e-6)
    assert not np.allclose(avg.values, warp_to_latlon(_equirect(values, 8), ppd=32, resampling="nearest").values)


def test_a_coarsening_warp_keeps_blocks_of_at_least_16_cells():
    """A 10 m equirectangular map onto 4 px/deg: a cell covers about 758 x 758 map pixels, so the ~17 Mpix budget
    would allow blocks of only 5 cells; they stay at 16 a side."""
    import dask.array as dsa

    n, dx = 20_000, 10.0
    c = (np.arange(n) - (n - 1) / 2) * dx
    big = xr.DataArray(dsa.zeros((n, n), "float32", chunks=5000), dims=("y", "x"), coords={"y": c[::-1], "x": c},
                       attrs={"crs": "IAU_2015:30110"})
    geo = warp_to_latlon(big, ppd=4)
    assert geo.attrs["resampling"] == "average" and max(geo.data.chunks[-1]) == 16


# --- units and side files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit, expected", [("DEGREE", "degree"), ("Kelvin", "K"), ('"METER"', "m"),
                                            ("N/A", None), ("n/a", None), ("none", None)])
def test_gdal_band_unit_spellings_and_no_unit_markers(tmp_path, unit, expected):
    path = write_geotiff(tmp_path / "u.tif", np.ones((1, 3, 4), "float32"), transform=origin(0, 10, 1, 1))
    with rasterio.open(path, "r+") as dst:
        dst.units = (unit,)
    assert open_geotiff(path).attrs.get("units") == expected


def test_bands_with_no_units_have_no_units_attribute_in_a_map_files_dataset(tmp_path):
    from workbench.rasters import open_map_file

    path = write_geotiff(tmp_path / "two.tif", np.ones((2, 3, 4), "float32"), transform=origin(0, 10, 1, 1),
                         descriptions=["a", "b"])
    with open_map_file(path) as ds:
        assert list(ds.data_vars) == ["a", "b"] and all("units" not in ds[v].attrs for v in ds.data_vars)


def test_a_pds3_label_whose_unit_is_n_a_gives_no_units(tmp_path):
    path = write_pds3_ldem(tmp_path, np.zeros((4, 8)), 10, 0, 4)
    path.write_text(path.read_text().replace("UNIT = METER", 'UNIT = "N/A"'))
    assert "units" not in open_geotiff(path).attrs


@pytest.mark.parametrize("ext", [".ovr", ".msk"])
def test_gdal_overview_and_mask_side_files_are_not_taken_for_image_data(tmp_path, ext):
    """An external overview (NAME.ovr, half the size) or mask (NAME.msk) beside an attached-label PDS3 image is
    listed among its files by GDAL; it is smaller than the image, yet the image is not refused as truncated."""
    path = write_pds3_ldem(tmp_path, np.zeros((20, 200)), 10, 0, 4, attached=True)
    write_geotiff(tmp_path / f"{path.name}{ext}", np.zeros((1, 10, 100), "uint8"), transform=origin(0, 10, 0.5, 0.5))
    with rasterio.open(path) as src:
        assert any(f.endswith(ext) for f in src.files)
    assert open_geotiff(path).shape == (20, 200)


# --- CF grid_mapping and dataset_to_latlon ----------------------------------------------------------------------


def _cf_dataset(keys: tuple[str, ...]) -> xr.Dataset:
    """A polar (y, x) map whose CRS is only in a CF grid_mapping variable, under the attribute names ``keys``."""
    import pyproj

    wkt = pyproj.CRS.from_user_input(SOUTH_POLAR).to_wkt()
    h = _polar(n=20).drop_attrs()
    ds = h.assign_attrs(grid_mapping="crs").to_dataset()
    return ds.assign_coords(crs=((), 0, dict.fromkeys(keys, wkt)))


@pytest.mark.parametrize("keys", [("crs_wkt",), ("spatial_ref",)])
def test_a_cf_grid_mapping_with_crs_wkt_or_spatial_ref_alone_places_the_map(keys):
    geo = dataset_to_latlon(_cf_dataset(keys), 8)
    assert geo["h"].dims == ("lat", "lon") and geo["h"].attrs["warped_from"] == SOUTH_POLAR


def test_nothing_of_the_old_projection_is_left_on_a_warped_map():
    """rioxarray's scalar ``spatial_ref`` coordinate and the ``grid_mapping`` attribute naming it describe the
    polar grid; on the latitude/longitude map they would mislabel it, so both are gone."""
    geo = dataset_to_latlon(_cf_dataset(("crs_wkt", "spatial_ref")), 8)
    assert "crs" not in geo.coords and "grid_mapping" not in geo["h"].attrs
    assert geo["h"].attrs["crs"] != SOUTH_POLAR and geo["h"].attrs["warped_from"] == SOUTH_POLAR


def test_names_limits_dataset_to_latlon_to_those_variables():
    """A projected map next to a latitude/longitude one: named alone, it is warped (the other is not looked at)."""
    proj = _polar(n=20)
    latlon = xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"), coords={"lat": [-80.5, -81.5, -82.5],
                                                                        "lon": [0.5, 1.5, 2.5, 3.5]})
    ds = xr.Dataset({"h": proj, "mask": latlon})
    assert dataset_to_latlon(ds) is ds
    geo = dataset_to_latlon(ds, 8, names=["h"])
    assert list(geo.data_vars) == ["h"] and geo["h"].dims == ("lat", "lon")


def test_a_band_lat_lon_cube_counts_as_a_latitude_longitude_map():
    cube = xr.DataArray(np.zeros((2, 3, 4)), dims=("band", "lat", "lon"),
                        coords={"lat": [-80.5, -81.5, -82.5], "lon": [0.5, 1.5, 2.5, 3.5]})
    ds = xr.Dataset({"refl": cube, "h": _polar(n=20)})
    assert dataset_to_latlon(ds) is ds  # already on latitude/longitude: nothing warped
    with pytest.raises(InputError, match="are already in latitude/longitude and keep their grid"):
        dataset_to_latlon(ds[["refl"]], 8)


def test_ppd_and_resampling_both_given_for_nothing_to_warp_names_ppd():
    ds = xr.Dataset({"m": xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"))})
    with pytest.raises(InputError, match=r"^ppd \(--ppd\) sets how .* \(drop --ppd\)$"):
        dataset_to_latlon(ds, 8, resampling="nearest")


# --- open_reflectance on a zarr store ---------------------------------------------------------------------------


def _mixed_zarr(tmp_path) -> str:
    """A zarr store with a projected (band, y, x) cube ``proj`` and a (band, lat, lon) cube ``geo``."""
    proj = _polar(n=20)
    cube = xr.concat([proj, proj * 0.5], dim="band").assign_coords(band=["R415", "R750"]).rename("proj")
    geo = xr.DataArray(np.full((2, 3, 4), 0.1), dims=("band", "lat", "lon"),
                       coords={"band": ["R415", "R750"], "lat": [-80.5, -81.5, -82.5], "lon": [0.5, 1.5, 2.5, 3.5]})
    path = str(tmp_path / "mixed.zarr")
    xr.Dataset({"proj": cube, "geo": geo}).to_zarr(path)
    return path


def test_open_reflectance_warps_the_named_projected_cube_beside_a_lat_lon_one(tmp_path):
    from workbench.inversion.global_map import open_reflectance

    refl = open_reflectance(_mixed_zarr(tmp_path), variable="proj", ppd=4)
    assert refl.dims == ("band", "lat", "lon") and refl.attrs["warped_from"] == SOUTH_POLAR


@pytest.mark.parametrize("ppd", [None, 4])
def test_open_reflectance_names_a_variable_the_store_lacks(tmp_path, ppd):
    from workbench.inversion.global_map import open_reflectance

    with pytest.raises(InputError, match=r"mixed.zarr has no variable 'nope'; its variables: \['geo', 'proj'\]"):
        open_reflectance(_mixed_zarr(tmp_path), variable="nope", ppd=ppd)


def test_open_reflectance_refuses_ppd_for_the_named_lat_lon_cube_beside_a_projected_one(tmp_path):
    from workbench.inversion.global_map import open_reflectance

    with pytest.raises(InputError, match=r"--ppd sets the grid of .*mixed.zarr is a zarr cube on latitude/longitude"):
        open_reflectance(_mixed_zarr(tmp_path), variable="geo", ppd=4)


# --- workbench export -------------------------------------------------------------------------------------------


def _polar_tif(tmp_path):
    return write_geotiff(tmp_path / "p.tif", _polar(n=30).values[None], crs=SOUTH_POLAR,
                         transform=origin(-30e3, 30e3, 2000.0, 2000.0))


def test_export_refuses_ppd_zero_without_latlon(tmp_path, capsys):
    from workbench.cli import main

    assert main(["export", str(_polar_tif(tmp_path)), "--ppd", "0", "--out", str(tmp_path / "x.tif")]) == 2
    assert "--ppd sets the grid of --latlon" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()


def test_export_takes_resampling_average(tmp_path):
    from workbench.cli import main

    assert main(["export", str(_polar_tif(tmp_path)), "--latlon", "--ppd", "2", "--resampling", "average",
                 "--out", str(tmp_path / "a.tif")]) == 0
    assert np.isfinite(open_geotiff(tmp_path / "a.tif").values).any()


def test_the_default_average_threshold_tolerates_a_rounded_map_scale():
    """A map at 16 px/deg whose pixel size comes out a hair coarser (a label's rounded map scale, or float
    rounding: 16 - 3e-13 px/deg at 20 deg E) is still averaged onto 8 px/deg, as at 10 deg E."""
    for west in (10.0, 20.0):
        assert warp_to_latlon(_equirect(np.ones((32, 32)), 16, west=west), ppd=8).attrs["resampling"] == "average"
    rounded = _equirect(np.ones((32, 32)), 16)
    rounded = rounded.assign_coords(x=rounded.x.values[0] + np.arange(32) * (DEG / 16) * 1.0004,
                                    y=rounded.y.values[0] - np.arange(32) * (DEG / 16) * 1.0004)
    assert warp_to_latlon(rounded, ppd=8).attrs["resampling"] == "average"  # 0.04 % coarser than 16 px/deg
    assert warp_to_latlon(rounded, ppd=9).attrs["resampling"] == "bilinear"


def test_ppd_on_a_zarr_store_without_a_cube_says_it_has_no_cube(tmp_path):
    from workbench.inversion.global_map import open_reflectance

    xr.Dataset({"h": (("lat", "lon"), np.zeros((3, 4)))}).to_zarr(tmp_path / "n.zarr")
    with pytest.raises(InputError, match=r"has 0 variables with a 'band' dim"):
        open_reflectance(tmp_path / "n.zarr", ppd=4)
