"""Reading a user's GeoTIFF onto the workbench's grids (workbench.rasters.open_geotiff), reflectance cubes out to
GeoTIFF and back, and ``workbench invert map --input REFL.tif``."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from geotiff_helpers import origin
from geotiff_helpers import write_geotiff as _write

from workbench.cli import main
from workbench.errors import InputError
from workbench.export import to_geotiff
from workbench.geo import global_grid
from workbench.inversion import global_map
from workbench.inversion.model import OxideInverter
from workbench.rasters import open_geotiff, open_map_file

BANDS = ["R415", "R750", "R950"]
WL = [415.0, 750.0, 950.0]


def _cube(ppd: float = 1.0, seed: int = 0) -> xr.DataArray:
    lat, lon = global_grid(ppd)
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.05, 0.3, (3, lat.size, lon.size)).astype(np.float32)
    data[1, 4, 6] = np.nan
    return xr.DataArray(data, dims=("band", "lat", "lon"), name="reflectance",
                        coords={"band": BANDS, "wavelength": ("band", WL), "fwhm": ("band", [40.0, 10.0, 30.0]),
                                "lat": lat, "lon": lon},
                        attrs={"units": "1", "long_name": "test reflectance", "instrument": "tri_band"})



def test_a_reflectance_cube_round_trips_with_bands_wavelengths_and_units(tmp_path):
    cube = _cube()
    path = to_geotiff(cube, tmp_path / "refl.tif")
    with rasterio.open(path) as src:
        assert src.count == 3 and src.descriptions == tuple(BANDS)
        assert src.tags(3)["wavelength_nm"] == "950.0" and src.tags(1)["fwhm_nm"] == "40.0"
        assert src.tags()["instrument"] == "tri_band" and "wavelength_nm" not in src.tags()
    back = open_geotiff(path)
    assert back.dims == ("band", "lat", "lon") and back.chunks is not None  # lazy, through dask
    assert list(back["band"].values) == BANDS
    np.testing.assert_array_equal(back["wavelength"].values, WL)
    np.testing.assert_array_equal(back["fwhm"].values, [40.0, 10.0, 30.0])
    np.testing.assert_array_equal(back.values, cube.values)  # NaN at the same place
    np.testing.assert_array_equal(back["lat"].values, cube["lat"].values)
    np.testing.assert_array_equal(back["lon"].values, cube["lon"].values)
    assert back.attrs["units"] == "1" and back.attrs["long_name"] == "test reflectance"
    assert back.attrs["instrument"] == "tri_band" and back.attrs["crs"] == "IAU_2015:30100"
    assert back["lat"].attrs["units"] == "degrees_north"


def test_hand_built_file_known_grid_0_360_wrapped_scale_offset_and_nodata(tmp_path):
    # 3 rows x 4 columns of 60 x 90 degrees from (0 E, 90 N): centres lat 60, 0, -60 and lon 45, 135, 225, 315
    raw = np.arange(12, dtype="int16").reshape(1, 3, 4)
    raw[0, 2, 3] = -1  # nodata
    p = _write(tmp_path / "g.tif", raw, nodata=-1, descriptions=["depth"])
    with rasterio.open(p, "r+") as dst:
        dst.scales, dst.offsets = (0.5,), (1.0,)
    da = open_geotiff(p)
    assert da.dims == ("lat", "lon") and da.name == "depth"
    np.testing.assert_array_equal(da["lat"].values, [60.0, 0.0, -60.0])
    np.testing.assert_array_equal(da["lon"].values, [-135.0, -45.0, 45.0, 135.0])  # 225, 315 E -> -135, -45
    want = raw[0].astype(float) * 0.5 + 1.0
    want[2, 3] = np.nan
    want = want[:, [2, 3, 0, 1]]  # the columns of 225 and 315 E first
    np.testing.assert_array_equal(da.values, want)


def test_a_south_up_file_keeps_its_row_order_with_true_latitudes(tmp_path):
    from affine import Affine

    rows = np.arange(3, dtype="float32")[None, :, None] * np.ones((1, 3, 4), "float32")
    p = _write(tmp_path / "s.tif", rows, transform=Affine(90.0, 0.0, -180.0, 0.0, 60.0, -90.0))  # row 0 south
    da = open_geotiff(p)
    np.testing.assert_array_equal(da["lat"].values, [-60.0, 0.0, 60.0])
    np.testing.assert_array_equal(da.sel(lat=-60.0).values, 0.0)  # the first row is the southern one


def test_a_regional_file_across_180_keeps_continuous_longitudes(tmp_path):
    p = _write(tmp_path / "seam.tif", np.arange(12, dtype="float32").reshape(1, 3, 4),
               transform=origin(170, 10, 5, 5))
    da = open_geotiff(p)
    np.testing.assert_array_equal(da["lon"].values, [172.5, 177.5, 182.5, 187.5])  # not split at 180
    np.testing.assert_array_equal(da.values[0], [0, 1, 2, 3])
    east = _write(tmp_path / "east.tif", np.zeros((1, 3, 4), "float32"), transform=origin(200, 10, 5, 5))
    np.testing.assert_array_equal(open_geotiff(east)["lon"].values, [-157.5, -152.5, -147.5, -142.5])


def test_unnamed_bands_need_names_and_bad_names_are_refused(tmp_path):
    p = _write(tmp_path / "u.tif", np.full((3, 3, 4), 0.1, "float32"))
    with pytest.raises(InputError, match=r"3 bands are not all named.*bands= \(--bands\)"):
        open_geotiff(p)
    assert list(open_geotiff(p, bands=BANDS)["band"].values) == BANDS
    with pytest.raises(InputError, match=r"has 3 band\(s\) but bands= \(--bands\) names 2"):
        open_geotiff(p, bands=BANDS[:2])
    with pytest.raises(InputError, match=r"\['R415'\] used more than once"):
        open_geotiff(p, bands=["R415", "R415", "R950"])


def test_crs_missing_earth_or_not_degrees_is_one_clear_error(tmp_path):
    data = np.full((1, 3, 4), 0.1, "float32")
    earth = _write(tmp_path / "earth.tif", data, crs="EPSG:4326")
    with pytest.raises(InputError, match=r"radius 6378.1 km, the Earth's, not the Moon's 1737.4 km.*IAU_2015:30100"):
        open_geotiff(earth)
    assert open_geotiff(earth, crs="IAU_2015:30100").attrs["crs"] == "IAU_2015:30100"
    none = _write(tmp_path / "none.tif", data, crs=None)
    with pytest.raises(InputError, match="has no CRS.*crs= "):
        open_geotiff(none)
    assert open_geotiff(none, crs="IAU_2015:30100").dims == ("lat", "lon")
    with pytest.raises(InputError, match="not one PROJ knows"):
        open_geotiff(none, crs="IAU_2015:99999999")
    metres = _write(tmp_path / "m.tif", data, transform=origin(0, 5000, 1000, 1000))
    with pytest.raises(InputError, match=r"latitudes reach 4500.*not in degrees"):
        open_geotiff(metres)
    with pytest.raises(InputError, match="does not exist"):
        open_geotiff(tmp_path / "nope.tif")


def test_rotated_grids_and_ground_control_points_are_refused(tmp_path):
    from affine import Affine
    from rasterio.control import GroundControlPoint

    data = np.ones((1, 3, 4), "float32")
    rot = _write(tmp_path / "rot.tif", data, transform=Affine(1.0, 0.2, 0.0, 0.1, -1.0, 10.0))
    with pytest.raises(InputError, match=r"rotated or sheared grid \(geotransform terms 0.2, 0.1\).*gdalwarp"):
        open_geotiff(rot)
    gcp = tmp_path / "gcp.tif"
    with rasterio.open(gcp, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32") as dst:
        dst.write(data)
        dst.gcps = ([GroundControlPoint(0, 0, 10.0, 20.0), GroundControlPoint(3, 4, 14.0, 17.0),
                     GroundControlPoint(0, 4, 14.0, 20.0)], rasterio.crs.CRS.from_user_input("IAU_2015:30100"))
    with pytest.raises(InputError, match="placed by 3 ground control points, not by a grid.*gdalwarp -t_srs"):
        open_geotiff(gcp)


def test_a_polar_file_keeps_its_projected_grid(tmp_path):
    p = _write(tmp_path / "south.tif", np.ones((1, 3, 4), "float32"), crs="IAU_2015:30135",
               transform=origin(-3200, 2400, 1600, 1600), descriptions=["elevation"])
    da = open_geotiff(p)
    assert da.dims == ("y", "x") and da.attrs["crs"] == "IAU_2015:30135"
    np.testing.assert_array_equal(da["x"].values, [-2400.0, -800.0, 800.0, 2400.0])
    np.testing.assert_array_equal(da["y"].values, [1600.0, 0.0, -1600.0])
    assert da["x"].attrs["units"] == "m"  # IAU's code recovered from the projection GeoTIFF keeps (above)
    rotated = _write(tmp_path / "rot.tif", np.ones((1, 3, 4), "float32"),
                     crs="+proj=stere +lat_0=-90 +lon_0=10 +R=1737400 +units=m",
                     transform=origin(-3200, 2400, 1600, 1600))
    assert open_geotiff(rotated).attrs["crs"].startswith("PROJCRS")  # like 30135 but turned 10 deg: not it


MOON_CODES = ["30100", "30110", "30115", "30120", "30125", "30130", "30135", "30140", "30145", "30150", "30155",
              "30160", "30165", "30170", "30175", "30180", "30185", "30190"]


@pytest.mark.parametrize("code", MOON_CODES)
def test_every_iau_code_of_the_moons_sphere_reads_back_as_its_code(tmp_path, code):
    """GeoTIFF keeps a projection's parameters, not IAU's code; each of the 18 lunar sphere codes comes back named
    (Mollweide, 30140/30145, is one PROJ proposes no code for: it came back as WKT), and one that is none of them
    (Mollweide about 45 E) stays WKT."""
    grid = origin(0, 90, 90, 60) if code == "30100" else origin(-3200, 2400, 1600, 1600)  # degrees or metres
    p = _write(tmp_path / "m.tif", np.ones((1, 3, 4), "float32"), crs=f"IAU_2015:{code}", transform=grid)
    assert open_geotiff(p).attrs["crs"] == f"IAU_2015:{code}"


def test_a_projection_that_is_no_iau_code_stays_wkt(tmp_path):
    p = _write(tmp_path / "m45.tif", np.ones((1, 3, 4), "float32"), crs="+proj=moll +lon_0=45 +R=1737400 +units=m",
               transform=origin(-3200, 2400, 1600, 1600))
    assert open_geotiff(p).attrs["crs"].startswith("PROJCRS")


def test_maps_of_different_units_come_back_as_a_dataset(tmp_path):
    lat, lon = global_grid(1)
    ds = xr.Dataset({"FeO": (("lat", "lon"), np.full((180, 360), 8.0, "float32"), {"units": "wt%"}),
                     "mg_number": (("lat", "lon"), np.full((180, 360), 60.0, "float32"), {"units": "1"})},
                    coords={"lat": lat, "lon": lon})
    p = to_geotiff(ds, tmp_path / "maps.tif")
    back = open_geotiff(p, as_dataset=True)
    assert list(back.data_vars) == ["FeO", "mg_number"]
    assert back["FeO"].attrs["units"] == "wt%" and back["mg_number"].attrs["units"] == "1"
    assert float(back["mg_number"].mean()) == 60.0 and "units" not in back.attrs
    assert "units" not in open_geotiff(p).attrs  # the bands disagree: no one unit for the cube


def test_export_writes_a_cube_variable_one_band_per_label(tmp_path, capsys):
    cube = _cube()
    cube.to_dataset().to_zarr(tmp_path / "refl.zarr")
    assert main(["export", str(tmp_path / "refl.zarr"), "--out", str(tmp_path / "none.tif")]) == 2
    assert "--var; a (band, lat, lon) cube" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "refl.zarr"), "--var", "reflectance", "--out", str(tmp_path / "r.tif")]) == 0
    assert "3 band(s) (R415, R750, R950)" in capsys.readouterr().out
    np.testing.assert_array_equal(open_geotiff(tmp_path / "r.tif").values, cube.values)
    with pytest.raises(InputError, match="'band' dim without band names"):
        to_geotiff(cube.drop_vars(["band", "wavelength", "fwhm"]), tmp_path / "x.tif")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    m = OxideInverter(BANDS, WL, width=8, depth=1, stem=4, members=2)
    m.mg_number_from = "head"  # untrained: its 'oxides' are no compositions
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    m.save(path)
    return path


def test_invert_map_reads_a_geotiff_like_the_same_zarr_cube(tmp_path, tiny, capsys):
    cube = _cube()
    cube.to_dataset().to_zarr(tmp_path / "refl.zarr")
    # the same cube as another tool writes it: 0...360 longitudes, no band names
    east_first = cube.isel(lon=np.r_[180:360, 0:180]).values
    _write(tmp_path / "plain.tif", east_first, transform=origin(0, 90, 1, 1), nodata=np.nan)
    args = ["--weights", str(tiny), "--scheduler", "threads", "--chunk", "90", "--precision", "float32"]
    assert main(["invert", "map", "--input", str(tmp_path / "refl.zarr"), "--out", str(tmp_path / "z.zarr"),
                 *args]) == 0
    assert main(["invert", "map", "--input", str(tmp_path / "plain.tif"), "--out", str(tmp_path / "t.zarr"),
                 "--bands", ",".join(BANDS), *args]) == 0
    z, t = xr.open_zarr(tmp_path / "z.zarr"), xr.open_zarr(tmp_path / "t.zarr")
    np.testing.assert_array_equal(t["lon"].values, z["lon"].values)
    for v in ("FeO", "FeO_std", "TiO2"):
        np.testing.assert_array_equal(t[v].values, z[v].values)
    assert np.isnan(t["FeO"].values[4, 6]) and np.isfinite(t["FeO"].values).sum() == 180 * 360 - 1
    capsys.readouterr()
    assert main(["invert", "map", "--input", str(tmp_path / "plain.tif"), "--out", str(tmp_path / "u.zarr"),
                 *args]) == 2
    assert "pass bands= (--bands)" in capsys.readouterr().err


@pytest.mark.parametrize("extra, match", [
    (["--bands", "a,b"], "--bands/--crs describe a GeoTIFF's bands and CRS; refl.zarr is read as zarr"),
    (["--crs", "IAU_2015:30100"], "refl.zarr is read as zarr"),
])
def test_geotiff_options_on_a_zarr_input_are_refused(tmp_path, extra, match):
    _cube().to_dataset().to_zarr(tmp_path / "refl.zarr")
    with pytest.raises(InputError, match=match):
        global_map.open_reflectance(tmp_path / "refl.zarr", *([None, extra[1].split(",")] if extra[0] == "--bands"
                                                              else [None, None, extra[1]]))


def test_invert_map_refuses_a_geotiff_that_is_no_geographic_cube(tmp_path, capsys):
    one = to_geotiff(_cube().isel(band=0), tmp_path / "one.tif")
    with pytest.raises(InputError, match="one band: a map, not a reflectance cube.*one band per wavelength"):
        global_map.open_reflectance(one)
    polar = _write(tmp_path / "polar.tif", np.ones((3, 3, 4), "float32"), crs="IAU_2015:30135",
                   transform=origin(-3200, 2400, 1600, 1600), descriptions=BANDS)
    warped = global_map.open_reflectance(polar)  # a projected cube is warped, no longer refused
    assert warped.dims == ("band", "lat", "lon") and warped.attrs["warped_from"] == "IAU_2015:30135"
    with pytest.raises(InputError, match="--variable names a variable of a zarr store"):
        global_map.open_reflectance(one, "reflectance")
    assert main(["invert", "map", "--out", str(tmp_path / "s.zarr"), "--bands", "R415"]) == 2
    assert "without --input the map is of the synthetic Moon" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse's own usage error
        main(["invert", "map", "--out", str(tmp_path / "s.zarr"), "--input", str(one), "--bands", "a,,b"])
    assert exit_.value.code == 2 and "empty band name" in capsys.readouterr().err


@pytest.mark.parametrize("dataset_id, code", [("lola_ldem_4ppd", "IAU_2015:30100"),
                                              ("lola_ldem_south_1600m", "IAU_2015:30135")])
def test_real_lola_geotiffs_open_like_their_manifests(real_dataset, dataset_id, code):
    import workbench as wb

    ref = real_dataset(dataset_id)["elevation"]
    got = open_geotiff(wb.fetch(dataset_id)[0])
    assert got.dims == ref.dims and got.attrs["crs"] == code  # the polar file's bare projection -> IAU's code
    for d in ref.dims:
        np.testing.assert_allclose(got[d].values, ref[d].values, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(got.values, ref.values)


def test_real_south_polar_lola_warped_to_4ppd_agrees_with_the_global_lola_map(real_dataset):
    """The 1600 m south-polar stereographic LOLA DEM warped onto the 4 px/deg grid (averaged: each cell spans
    about 4.7 of its pixels) agrees with the 4 px/deg global LOLA DEM (an independent resampling of the same
    altimetry) to tens of metres over relief of kilometres (measured: RMSE 25 m, median |difference| 12 m at
    75-85 deg S, where the relief's std is 2.2 km; sampled bilinearly instead, 74 m and 35 m)."""
    import workbench as wb
    from workbench.rasters import warp_to_latlon

    glob = real_dataset("lola_ldem_4ppd")["elevation"]
    real_dataset("lola_ldem_south_1600m")
    south = warp_to_latlon(open_geotiff(wb.fetch("lola_ldem_south_1600m")[0]), ppd=4).compute()
    assert float(south.lat[-1]) == -89.875 and south.sizes["lon"] == 1440 and float(south.lat[0]) > -63
    ref = glob.sel(lat=south.lat, lon=south.lon)  # the same cell centres: exact labels, no nearest-neighbour
    band = (south.lat < -75) & (south.lat > -85)
    diff = (south - ref).where(band)
    assert int(diff.notnull().sum()) == 40 * 1440  # the whole band is covered
    assert south.attrs["resampling"] == "average"
    assert float(np.sqrt((diff**2).mean())) < 40.0 and float(abs(diff).median()) < 20.0
    assert float(ref.where(band).std()) > 2000.0  # against kilometres of relief


def test_gdal_virtual_paths_are_left_to_rasterio(tmp_path):
    """A /vsimem/ (or remote) path is no local file: it is opened, not refused as missing."""
    from rasterio.io import MemoryFile

    data = np.full((1, 3, 4), 0.2, "float32")
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=4, height=3, count=1, dtype="float32", crs="IAU_2015:30100",
                      transform=origin(0, 90, 90, 60)) as dst:
            dst.write(data)
        assert float(open_geotiff(mem.name).mean()) == pytest.approx(0.2)
    with pytest.raises(InputError, match="does not exist"):
        open_geotiff(tmp_path / "missing.tif")


def _field(lat, lon):
    """A smooth field on the sphere (no seam at ±180°, finite at the poles) to warp and check against."""
    return 10.0 * np.cos(np.radians(lat)) + 5.0 * np.sin(np.radians(lon)) * np.cos(np.radians(lat))


def _polar_cube(tmp_path, n: int = 60, px: float = 4000.0, scale: float = 1.0):
    """A 2-band south-polar stereographic GeoTIFF of ``scale`` x :func:`_field` (band 2 = 2 x band 1), written by
    rasterio: n x n pixels of px metres centred on the pole."""
    import pyproj

    x = (np.arange(n) - n / 2 + 0.5) * px
    lon, lat = pyproj.Transformer.from_crs("IAU_2015:30135", "IAU_2015:30100", always_xy=True).transform(
        *np.meshgrid(x, -x))
    data = scale * np.stack([_field(lat, lon), 2.0 * _field(lat, lon)]).astype("float32")
    data[:, 0, 0] = np.nan  # a nodata corner
    return _write(tmp_path / "polar.tif", data, crs="IAU_2015:30135", transform=origin(x[0] - px / 2, -x[0] + px / 2,
                                                                                          px, px),
                  descriptions=["R415", "R750"], tags=[{"wavelength_nm": "415", "units": "1"},
                                                       {"wavelength_nm": "750", "units": "1"}])


def test_warp_to_latlon_of_a_polar_stereographic_cube_matches_the_field_and_reaches_the_pole(tmp_path):
    from workbench.rasters import warp_to_latlon

    polar = open_geotiff(_polar_cube(tmp_path))  # ±120 km: to 86.04 deg S along the axes, 84.41 at the corners
    geo = warp_to_latlon(polar)
    assert geo.dims == ("band", "lat", "lon") and list(geo.band.values) == ["R415", "R750"]
    assert geo.attrs["ppd"] == 8  # round(pi * 1737.4 km / 180 / 4 km) = round(7.58)
    assert geo.attrs["crs"] == "IAU_2015:30100" and geo.attrs["warped_from"] == "IAU_2015:30135"
    assert geo.attrs["units"] == "1" and list(geo.wavelength.values) == [415.0, 750.0]
    # the workbench's 8 px/deg grid: cell centres at (k + 0.5) / 8, down to the pole, every longitude
    np.testing.assert_allclose(geo.lat.values[-1], -90 + 1 / 16)
    np.testing.assert_allclose(geo.lon.values[[0, -1]], [-180 + 1 / 16, 180 - 1 / 16])
    assert np.all(np.diff(geo.lat.values) < 0) and geo.sizes["lon"] == 360 * 8
    assert float(geo.lat[0]) == -84.4375  # the cell holding the corners' 84.406 deg S, no further
    lon2, lat2 = np.meshgrid(geo.lon.values, geo.lat.values)
    err = geo.sel(band="R415").values - _field(lat2, lon2)
    ok = np.isfinite(err)
    assert np.abs(err[ok]).max() < 0.02  # bilinear on 4 km pixels of a field of 0.9-1.4
    assert ok[lat2 < -86.5].all()  # inside the grid everything is covered, the pole included
    on_axis = np.abs(((lon2 + 45) % 90) - 45) < 5  # within 5 deg of longitude 0, 90, 180 or -90
    assert not ok[(lat2 > -85.8) & on_axis].any()  # beyond the square's sides (86.04 deg S): NaN, not extrapolated
    assert ok[(lat2 < -86.2) | ~on_axis].mean() > 0.5
    np.testing.assert_allclose(geo.sel(band="R750").values[ok], 2 * geo.sel(band="R415").values[ok], rtol=1e-6)


def test_warp_to_latlon_of_an_equirectangular_grid_in_metres_is_exact_on_the_matching_grid(tmp_path):
    """Equirectangular metres (IAU_2015:30110) at 8 px/deg lie exactly on the 8 px/deg grid: the warp is the
    identity (values, the cell centres and the extent)."""
    from workbench.geo import MOON_RADIUS_M
    from workbench.rasters import warp_to_latlon

    ppd, deg = 8, np.pi * MOON_RADIUS_M / 180.0
    lat, lon = 30 - (np.arange(40) + 0.5) / ppd, 10 + (np.arange(80) + 0.5) / ppd
    values = _field(*np.meshgrid(lat, lon, indexing="ij"))[None].astype("float32")
    tif = _write(tmp_path / "eq.tif", values, crs="IAU_2015:30110", transform=origin(10 * deg, 30 * deg, deg / ppd,
                                                                                    deg / ppd), descriptions=["FeO"])
    geo = warp_to_latlon(open_geotiff(tif))
    assert geo.dims == ("lat", "lon") and geo.name == "FeO" and geo.attrs["ppd"] == ppd
    np.testing.assert_allclose(geo.lat.values, lat)
    np.testing.assert_allclose(geo.lon.values, lon)
    np.testing.assert_array_equal(geo.values, values[0])
    coarse = warp_to_latlon(open_geotiff(tif), ppd=2, resampling="nearest")
    assert coarse.shape == (10, 20) and float(coarse.lat[0]) == 29.75


@pytest.mark.parametrize("change, match", [
    (lambda da: da.rename(y="lat", x="lon"), r"needs a projected map with dims \(y, x\).*open_geotiff"),
    (lambda da: da.assign_attrs(crs="IAU_2015:30100"), "already in latitude/longitude"),
])
def test_warp_to_latlon_refuses_what_it_cannot_warp(tmp_path, change, match):
    from workbench.rasters import warp_to_latlon

    with pytest.raises(InputError, match=match):
        warp_to_latlon(change(open_geotiff(_polar_cube(tmp_path, n=8))))


@pytest.mark.parametrize("kwargs, match", [({"resampling": "cubic_nonsense"}, "unknown resampling 'cubic_nonsense'"),
                                           ({"ppd": 0}, "positive whole number"), ({"ppd": 2.5}, "whole number")])
def test_warp_to_latlon_refuses_a_bad_resampling_or_ppd(tmp_path, kwargs, match):
    from workbench.rasters import warp_to_latlon

    with pytest.raises(InputError, match=match):
        warp_to_latlon(open_geotiff(_polar_cube(tmp_path, n=8)), **kwargs)


def test_invert_map_warps_a_polar_geotiff_onto_latitude_longitude_and_says_so(tmp_path, capsys):
    polar = _polar_cube(tmp_path, n=20, px=8000.0, scale=0.1)  # reflectance 0.09-0.3
    tri = open_geotiff(polar).rename(None)
    model = OxideInverter(["R415", "R750"], [415.0, 750.0], width=4, depth=1, stem=4, members=1, context=(3,))
    model.save(tmp_path / "two_band.pt")
    assert tri.dims == ("band", "y", "x")
    assert main(["invert", "map", "--input", str(polar), "--out", str(tmp_path / "o.zarr"), "--ppd", "2",
                 "--weights", str(tmp_path / "two_band.pt"), "--scheduler", "threads"]) == 0
    out = capsys.readouterr().out
    assert "polar.tif is on a projected grid (IAU_2015:30135); warped onto latitude/longitude at 2 px/deg" in out
    res = xr.open_zarr(tmp_path / "o.zarr")
    assert res["FeO"].dims == ("lat", "lon") and res.sizes["lon"] == 720 and float(res.lat[-1]) == -89.75
    assert res.sizes["lat"] == 8  # ±80 km: 86.27 deg S at the corners, so 86.0-90.0 deg S at 2 px/deg
    assert np.isfinite(res["FeO"].sel(lat=-89.75)).all()  # the pole, at every longitude
    assert res["FeO"].sel(lat=-86.75, lon=0.25).isnull()  # beyond the grid's side (87.36 deg S): NaN


def test_ppd_is_refused_where_the_input_keeps_its_own_grid(tmp_path, capsys):
    geographic = to_geotiff(_cube(), tmp_path / "geo.tif")
    with pytest.raises(InputError, match="geo.tif is already in latitude/longitude and keeps its grid"):
        global_map.open_reflectance(geographic, ppd=2)
    _cube().to_dataset().to_zarr(tmp_path / "refl.zarr")
    assert main(["invert", "map", "--input", str(tmp_path / "refl.zarr"), "--out", str(tmp_path / "o.zarr"),
                 "--ppd", "2"]) == 2
    err = capsys.readouterr().err
    assert "refl.zarr is a zarr cube on latitude/longitude and keeps its own grid (drop --ppd)" in err


@pytest.mark.parametrize("attached", [False, True], ids=["label+image", "attached label"])
def test_a_pds3_ldem_opens_with_its_scaling_and_warps_exactly_onto_the_grid(tmp_path, attached):
    """A LOLA-LDEM-like PDS3 product (simple cylindrical about 180 deg, radius = DN x 0.5 + 1737400 m, MAP_SCALE
    rounded as the PDS labels round it) opens through its label and lies exactly on the 4 px/deg grid."""
    from geotiff_helpers import write_pds3_ldem

    from workbench.rasters import warp_to_latlon

    dn = (np.arange(20 * 200) % 3000 - 1500).reshape(20, 200)
    path = write_pds3_ldem(tmp_path, dn, top_lat=30.0, west_lon=10.0, ppd=4, attached=attached)
    da = open_geotiff(path)
    assert da.dims == ("y", "x") and da.attrs["crs"] == "IAU_2015:30115"  # equirectangular, clon = 180
    assert "DATA_SET_ID" not in da.attrs  # GDAL's empty PDS keywords are dropped
    np.testing.assert_array_equal(da.values, dn * 0.5 + 1737400.0)  # SCALING_FACTOR and OFFSET applied
    geo = warp_to_latlon(da)
    assert geo.shape == (20, 200) and geo.attrs["ppd"] == 4  # no sliver row or column from the rounded scale
    np.testing.assert_allclose(geo.lat.values, 30 - (np.arange(20) + 0.5) / 4)
    np.testing.assert_allclose(geo.lon.values, 10 + (np.arange(200) + 0.5) / 4)
    np.testing.assert_allclose(geo.values, dn * 0.5 + 1737400.0, rtol=0, atol=0.01)


def test_a_pds3_image_with_a_separate_label_names_the_label_to_open(tmp_path):
    from geotiff_helpers import write_pds3_ldem

    write_pds3_ldem(tmp_path, np.zeros((4, 8)), top_lat=10.0, west_lon=0.0, ppd=4)
    with pytest.raises(InputError, match="LDEM.IMG is a PDS image whose label is a separate file; open the "
                                         "label LDEM.LBL instead"):
        open_geotiff(tmp_path / "LDEM.IMG")
    (tmp_path / "LDEM.LBL").unlink()  # no label beside it: GDAL's own "not recognized", as one InputError
    with pytest.raises(InputError, match=r"raster .*LDEM.IMG is not a readable raster \(PDS3, PDS4, ISIS3, VICAR\)"):
        open_geotiff(tmp_path / "LDEM.IMG")


@pytest.mark.parametrize("driver, suffix", [("ISIS3", ".cub"), ("PDS4", ".xml"), ("VICAR", ".vic")])
def test_isis3_pds4_and_vicar_cubes_open_and_invert_map_reads_them_on_the_lat_lon_grid(tmp_path, driver, suffix):
    """A 3-band cube on the 1 px/deg grid written by GDAL as ISIS3, PDS4 or VICAR (which store it as
    equirectangular metres) opens, bands named with bands= (these formats keep no band names), and comes back
    onto the same latitude/longitude grid, values unchanged and its NaN cell NaN; open_map_file takes a map."""
    cube = _cube()
    src = _write(tmp_path / f"refl{suffix}", cube.values, driver=driver, transform=origin(-180.0, 90.0, 1.0, 1.0))
    got = open_geotiff(src, bands=BANDS)
    assert got.dims == ("band", "y", "x") and got.attrs["crs"] == "IAU_2015:30110"  # equirectangular metres
    refl = global_map.open_reflectance(src, bands=BANDS)  # warped back, at the file's own 1 px/deg
    assert refl.dims == ("band", "lat", "lon") and list(refl.band.values) == BANDS and refl.attrs["ppd"] == 1
    np.testing.assert_allclose(refl.lat.values, cube.lat.values)
    np.testing.assert_allclose(refl.lon.values, cube.lon.values)
    assert np.isnan(refl.sel(band="R750").values[4, 6])
    near = np.zeros(cube.shape[1:], bool)
    near[3:6, 5:8] = True  # the NaN cell and its 8 neighbours
    np.testing.assert_allclose(refl.values[:, ~near], cube.values[:, ~near], rtol=1e-6)
    one = _write(tmp_path / f"feo{suffix}", cube.values[:1], driver=driver, transform=origin(-180.0, 90.0, 1.0, 1.0))
    assert list(open_map_file(one).data_vars) == ["feo"]  # a one-band map: named after its file


def test_warp_to_latlon_keeps_holes_as_holes_and_takes_a_bare_dataarray():
    """A projected DataArray built by hand (no rioxarray imported by the caller) with NaN holes: the bilinear warp
    is NaN exactly where the nearest-neighbour warp is (holes neither filled nor grown), and 1.0 elsewhere."""
    from workbench.rasters import warp_to_latlon

    v = np.ones((40, 40), "float32")
    v[20, 20] = np.nan
    v[5:8, 30:33] = np.nan
    polar = xr.DataArray(v, dims=("y", "x"), attrs={"crs": "IAU_2015:30135", "units": "1"},
                         coords={"y": 4e4 - 2e3 * np.arange(40) - 1e3, "x": 2e3 * np.arange(40) - 4e4 + 1e3})
    bilinear, nearest = warp_to_latlon(polar), warp_to_latlon(polar, resampling="nearest")
    np.testing.assert_array_equal(np.isnan(bilinear.values), np.isnan(nearest.values))
    inside = np.isfinite(warp_to_latlon(polar.fillna(1.0), resampling="nearest").values)
    assert (inside & np.isnan(nearest.values)).sum() > 100  # the holes are there (at 38 px/deg, 2 km pixels)
    np.testing.assert_array_equal(bilinear.values[np.isfinite(bilinear.values)], 1.0)


def test_warp_to_latlon_works_in_a_fresh_process_that_never_imported_rioxarray():
    """The .rio accessor exists only once rioxarray is imported; a map built by hand used to fail with
    AttributeError: 'DataArray' object has no attribute 'rio'."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, xarray as xr; from workbench.rasters import warp_to_latlon; "
            "assert 'rioxarray' not in sys.modules; "
            "da = xr.DataArray(np.ones((4, 4), 'float32'), dims=('y', 'x'), attrs={'crs': 'IAU_2015:30135'}, "
            "coords={'y': 3e3 - 2e3 * np.arange(4), 'x': 2e3 * np.arange(4) - 3e3}); "
            "print(warp_to_latlon(da).dims)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "('lat', 'lon')"


def test_a_global_ldem_about_180_east_and_a_tile_across_the_antimeridian_keep_every_cell(tmp_path):
    """A global simple-cylindrical LDEM about 180 deg E (x = 0 is the antimeridian, inside the map) warps onto the
    full -180...180 grid, all 720 columns, values rolled by half a turn; a 20 x 20 deg tile from 170 to 190 deg E
    keeps its cells on both sides of ±180 deg (the first cut lost the -179.75 column)."""
    from geotiff_helpers import write_pds3_ldem

    from workbench.rasters import warp_to_latlon

    dn = np.random.default_rng(0).integers(-3000, 3000, (360, 720)).astype("int16")
    (tmp_path / "g").mkdir()
    geo = warp_to_latlon(open_geotiff(write_pds3_ldem(tmp_path / "g", dn, top_lat=90.0, west_lon=0.0, ppd=2)))
    assert geo.shape == (360, 720) and float(geo.lon[0]) == -179.75
    np.testing.assert_array_equal(geo.values, np.roll(dn * 0.5 + 1737400.0, 360, axis=1))
    (tmp_path / "t").mkdir()
    tile = warp_to_latlon(open_geotiff(write_pds3_ldem(tmp_path / "t", dn[:40, :40], top_lat=10.0, west_lon=170.0,
                                                       ppd=2)))
    assert int(tile.notnull().sum()) == 40 * 40
    assert float(tile.sel(lat=9.75, lon=179.75)) == dn[0, 19] * 0.5 + 1737400.0
    assert float(tile.sel(lat=9.75, lon=-179.75)) == dn[0, 20] * 0.5 + 1737400.0


def test_asymmetry_of_a_pds3_ldem_warps_it_and_says_so(tmp_path, capsys):
    """``workbench asymmetry --input LDEM.LBL``: near side 500 m higher than the far side (DN ±500 x 0.5 m)."""
    from geotiff_helpers import write_pds3_ldem

    lon = 0.25 + np.arange(720) / 2  # 0...360 deg E, the LDEM's columns
    dn = np.where((lon <= 90) | (lon >= 270), 500, -500)[None, :].repeat(360, axis=0)
    label = write_pds3_ldem(tmp_path, dn, top_lat=90.0, west_lon=0.0, ppd=2)
    assert main(["asymmetry", "--input", str(label), "--n-boot", "50", "--n-perm", "99",
                 "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "grid: IAU_2015:30115 warped onto latitude/longitude at 2 px/deg (bilinear)" in out
    import json

    res = json.loads((tmp_path / "a.json").read_text())
    assert res["near_minus_far"]["value"] == pytest.approx(500.0, abs=1.0)
    assert res["north_minus_south"]["value"] == pytest.approx(0.0, abs=1e-6)


def test_warp_to_latlon_is_lazy_block_by_block_and_its_blocks_do_not_change_the_result(tmp_path):
    """Each block of the lat/lon grid reads only the source window under it: a 1.6 Gpix dask map (6.4 GB as
    float32, never made) warps lazily and one block computes from its window; and small blocks give exactly what
    one block gives (each cell is mapped on its own)."""
    import dask.array as dsa

    from workbench.rasters import warp_to_latlon

    polar = open_geotiff(_polar_cube(tmp_path))
    one, many = warp_to_latlon(polar, chunk=4096), warp_to_latlon(polar, chunk=16)
    assert many.data.numblocks[-2:] == (int(np.ceil(one.sizes["lat"] / 16)), int(np.ceil(one.sizes["lon"] / 16)))
    np.testing.assert_array_equal(many.values, one.values)
    n, px = 40_000, 50.0  # ±1000 km around the south pole at 50 m
    c = (np.arange(n) - n / 2 + 0.5) * px
    loaded = set()

    def load(block, block_info=None):  # a chunk of the map, read from "disk": recorded
        loaded.add(tuple(block_info[None]["chunk-location"]))
        return np.ones(block.shape, np.float32)

    chunks = dsa.zeros((n, n), dtype=np.float32, chunks=4096).map_blocks(load, dtype=np.float32)
    big = xr.DataArray(chunks, dims=("y", "x"), coords={"y": c[::-1], "x": c},
                       attrs={"crs": "IAU_2015:30135", "units": "1"})
    geo = warp_to_latlon(big, ppd=16, chunk=256)
    assert geo.chunks is not None and geo.sizes["lon"] == 360 * 16 and not loaded  # nothing read yet
    corner = geo.isel(lat=slice(-256, None), lon=slice(0, 256))  # blocks next to the pole
    np.testing.assert_array_equal(corner.values, 1.0)
    assert 0 < len(loaded) <= 12  # the 4096^2 chunks under their windows, of the map's 100


def test_a_truncated_pds3_image_is_refused_not_read_as_zeros(tmp_path):
    """GDAL reads the part of a raw .IMG that an interrupted download lost as zeros (a LOLA LDEM's would then
    show 1737.4 km, the offset, with no error); the label says how many bytes there must be."""
    from geotiff_helpers import write_pds3_ldem

    label = write_pds3_ldem(tmp_path, np.ones((20, 40)), top_lat=10.0, west_lon=0.0, ppd=4)
    image = tmp_path / "LDEM.IMG"
    image.write_bytes(image.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"LDEM.LBL: its image data \(LDEM.IMG\) are 1500 bytes, fewer than the "
                                         r"1600 its label describes \(1 band\(s\) of 20 x 40 int16\): the file is "
                                         "truncated"):
        open_geotiff(label)


def test_warp_to_latlon_takes_a_map_stored_south_up_or_east_to_west_like_one_north_up(tmp_path):
    from workbench.rasters import warp_to_latlon

    polar = open_geotiff(_polar_cube(tmp_path, n=20)).sel(band="R415", drop=True)
    north_up = warp_to_latlon(polar).values
    np.testing.assert_array_equal(warp_to_latlon(polar.isel(y=slice(None, None, -1))).values, north_up)
    np.testing.assert_array_equal(warp_to_latlon(polar.isel(x=slice(None, None, -1))).values, north_up)


def test_export_latlon_turns_a_polar_geotiff_into_a_lat_lon_geotiff(tmp_path, capsys):
    polar = _polar_cube(tmp_path)
    out = tmp_path / "geo.tif"
    assert main(["export", str(polar), "--latlon", "--ppd", "4", "--out", str(out)]) == 0
    assert "2 band(s) (R415, R750)" in capsys.readouterr().out
    geo = open_geotiff(out)
    assert geo.dims == ("band", "lat", "lon") and geo.attrs["crs"] == "IAU_2015:30100"
    assert float(geo.lat[-1]) == -89.875 and geo.sizes["lon"] == 1440
    lon2, lat2 = np.meshgrid(geo.lon.values, geo.lat.values)
    err = (geo.sel(band="R415").values - _field(lat2, lon2))[lat2 < -86.5]
    assert np.isfinite(err).all() and np.abs(err).max() < 0.02
    assert main(["export", str(polar), "--ppd", "4", "--out", str(tmp_path / "x.tif")]) == 2
    assert "--ppd sets the grid of --latlon" in capsys.readouterr().err
    geographic = to_geotiff(_cube(), tmp_path / "g.tif")
    assert main(["export", str(geographic), "--latlon", "--ppd", "4", "--out", str(tmp_path / "y.tif")]) == 2
    assert "already in latitude/longitude and keep their grid" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "y.tif").exists()
