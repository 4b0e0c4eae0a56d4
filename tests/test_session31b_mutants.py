"""Session 31 mutation review, part 2: pins what the review of the code after b29fba9 found the existing tests let
through: ``rasters._crs_name`` (PROJ's proposal, then the package's own lunar codes), ``open_geotiff``'s refusal of
rotated grids and ground control points and its longitude wrapping (``geo.lon_180_order``, shared with
``catalog._raster_to_dataset``), ``rasters.open_map_file``, ``workbench asymmetry --input`` and
``validate.open_raster``'s missing-file check.

Each test here was written against a mutant of the code at d0b8ec8 that the existing suite did not kill; it fails
on that mutant and passes on the real code. The mutant it kills is named in its docstring (the full table is in the
review's log). Small hand-built files and fixed seeds keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from geotiff_helpers import origin as _origin
from geotiff_helpers import write_geotiff as _write
from rasterio.transform import Affine

from workbench.errors import InputError
from workbench.geo import global_template


def _maps() -> xr.Dataset:
    """FeO 10 wt% on the near side (|lon| <= 90), 4 wt% on the far side, at 2 degrees per pixel, and its 1-sigma."""
    t = global_template(0.5, name="FeO")
    feo = (xr.where(np.abs(t["lon"]) <= 90, 10.0, 4.0) + 0.0 * t["lat"]).transpose("lat", "lon").astype("float32")
    feo = feo.rename("FeO").assign_attrs(units="wt%")
    return xr.Dataset({"FeO": feo, "FeO_std": feo * 0 + 1.0})


# -- rasters._crs_name -------------------------------------------------------------------------------------------
def test_a_mercator_geotiff_is_named_by_the_code_proj_proposes(tmp_path):
    """Mutants: PROJ's proposal not asked for (``min_confidence=100``) or left out of the candidates (a GeoTIFF
    keeps IAU_2015:30190's Mercator parameters but not its code, and 30190 is not one of the package's own codes:
    the file's CRS was given as its WKT)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "merc.tif", np.ones((1, 3, 4), "float32"), crs="IAU_2015:30190",
               transform=_origin(0, 300000, 1000, 1000))
    assert open_geotiff(p).attrs["crs"] == "IAU_2015:30190"


@pytest.mark.parametrize("proj, code", [
    ("+proj=longlat +R=1737400 +no_defs", "IAU_2015:30100"),
    ("+proj=stere +lat_0=-90 +lon_0=0 +R=1737400 +units=m +no_defs", "IAU_2015:30135"),
    ("+proj=stere +lat_0=90 +lon_0=0 +R=1737400 +units=m +no_defs", "IAU_2015:30130"),
    ("+proj=eqc +lon_0=0 +R=1737400 +units=m +no_defs", "IAU_2015:30110"),
])
def test_a_bare_lunar_proj_string_is_named_by_the_packages_code(tmp_path, proj, code):
    """Mutants: one of ``CRS_GEOGRAPHIC``, ``CRS_SOUTH_POLAR``, ``CRS_NORTH_POLAR``, ``CRS_EQUIRECTANGULAR`` dropped
    from the candidates (PROJ proposes no code for a bare PROJ string, so only the package's own list names it)."""
    from workbench.rasters import open_geotiff

    geographic = proj.startswith("+proj=longlat")
    p = _write(tmp_path / "b.tif", np.ones((1, 3, 4), "float32"), crs=None,
               transform=None if geographic else _origin(-3200, 2400, 1600, 1600))
    assert open_geotiff(p, crs=proj).attrs["crs"] == code


def test_a_polar_projection_100_m_off_keeps_its_own_wkt(tmp_path):
    """Mutant: the test points' 1 mm tolerance loosened to 1 km (a stereographic with a 100 m false easting was
    named IAU_2015:30135, whose grid is 100 m away)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "x0.tif", np.ones((1, 3, 4), "float32"),
               crs="+proj=stere +lat_0=-90 +lon_0=0 +k=1 +x_0=100 +y_0=0 +R=1737400 +units=m +no_defs",
               transform=_origin(-3200, 2400, 1600, 1600))
    name = open_geotiff(p).attrs["crs"]
    assert name.startswith("PROJCRS") and '"False easting",100' in name


LOLA_SOUTH_WKT = ('PROJCS["unknown",GEOGCS["unknown",DATUM["unknown",SPHEROID["unknown",1737400,0]],'
                  'PRIMEM["Reference meridian",0],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]]],'
                  'PROJECTION["Polar_Stereographic"],PARAMETER["latitude_of_origin",-90],'
                  'PARAMETER["central_meridian",0],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
                  'UNIT["metre",1],AXIS["Easting",NORTH],AXIS["Northing",NORTH]]')  # the real LOLA polar file's


def test_a_north_polar_file_written_like_lolas_is_named_iau_30130(tmp_path):
    """Mutant: ``CRS_NORTH_POLAR`` dropped from the candidates (PROJ proposes no code for the bare polar
    stereographic GeoTIFF keeps, as in the real LOLA polar files; the real-data test covers only the south)."""
    from workbench.rasters import open_geotiff

    north = LOLA_SOUTH_WKT.replace('"latitude_of_origin",-90', '"latitude_of_origin",90')
    p = _write(tmp_path / "n.tif", np.ones((1, 3, 4), "float32"), crs=north, transform=_origin(-3200, 2400, 1600, 1600))
    assert open_geotiff(p).attrs["crs"] == "IAU_2015:30130"


@pytest.mark.parametrize("proj, name", [
    (LOLA_SOUTH_WKT.replace("1737400,0", "1737400.000001,0"), "IAU_2015:30135"),
    ("+proj=eqc +lon_0=0 +lat_ts=10 +R=1737400 +units=m +no_defs", None),
])
def test_the_test_point_comparison(tmp_path, proj, name):
    """Mutants: the 1 mm tolerance tightened to 1e-12 m (a radius written 1 micrometre off, which moves the test
    points by a fraction of a millimetre, is still IAU's sphere); the test points cut to the meridian 0 (an
    equirectangular map with a standard parallel of 10 degrees, which differs from IAU_2015:30110 only off that
    meridian, was named 30110)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "p.tif", np.ones((1, 3, 4), "float32"), crs=None, transform=_origin(-3200, 2400, 1600, 1600))
    got = open_geotiff(p, crs=proj).attrs["crs"]
    assert got == name if name else got.startswith("PROJCRS")


# -- rasters.open_geotiff: grids latitude/longitude cannot describe -------------------------------------------------
@pytest.mark.parametrize("b, d", [(0.2, 0.0), (0.0, 0.1)])
def test_a_grid_sheared_one_way_is_refused(tmp_path, b, d):
    """Mutants: the check ``tr.b != 0 or tr.d != 0`` made ``and``, or reduced to one of its two terms (a grid
    sheared in x alone or in y alone was read as a regular grid)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "shear.tif", np.ones((1, 3, 4), "float32"), transform=Affine(1.0, b, 0.0, d, -1.0, 10.0))
    with pytest.raises(InputError, match=rf"rotated or sheared grid \(geotransform terms {b:g}, {d:g}\)"):
        open_geotiff(p)


def test_a_rotated_grid_is_refused_with_the_exact_gdalwarp_fix_even_with_crs(tmp_path):
    """Mutants: the command offered names another CRS than IAU_2015:30100 (a user copies it); the refusal skipped
    when ``crs=`` is given (the CRS says nothing about how the grid is turned)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "rot.tif", np.ones((1, 3, 4), "float32"), transform=Affine(1.0, 0.2, 0.0, 0.1, -1.0, 10.0))
    fix = "warp it onto a grid first (gdalwarp -t_srs IAU_2015:30100 rot.tif grid.tif)"
    for kw in ({}, {"crs": "IAU_2015:30100"}):
        with pytest.raises(InputError) as err:
            open_geotiff(p, **kw)
        assert str(err.value).endswith(fix)


def test_ground_control_points_are_counted(tmp_path):
    """Mutant: ``src.gcps[1]`` (the points' CRS) taken for the points: its three PROJ parameters passed for the
    three points the suite's file has; four points must read four."""
    from rasterio.control import GroundControlPoint

    from workbench.rasters import open_geotiff

    p = tmp_path / "gcp4.tif"
    with rasterio.open(p, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32") as dst:
        dst.write(np.ones((1, 3, 4), "float32"))
        dst.gcps = ([GroundControlPoint(r, c, 10.0 + c, 20.0 - r) for r, c in ((0, 0), (0, 4), (3, 0), (3, 4))],
                    rasterio.crs.CRS.from_user_input("IAU_2015:30100"))
    with pytest.raises(InputError, match=r"gcp4.tif is placed by 4 ground control points, not by a grid"):
        open_geotiff(p)


# -- rasters.open_geotiff and geo.lon_180_order: longitudes -------------------------------------------------------
def test_a_global_0_360_file_written_east_to_west_is_wrapped(tmp_path):
    """Mutant: the grid's span taken as ``tr.a * width`` without ``abs`` (a file whose columns run east to west has
    a negative pixel width: its 0...360 longitudes were not put on -180...180)."""
    from workbench.rasters import open_geotiff

    cols = np.arange(4, dtype="float32")[None, None, :] * np.ones((1, 3, 4), "float32")
    p = _write(tmp_path / "ew.tif", cols, transform=Affine(-90.0, 0.0, 360.0, 0.0, -60.0, 90.0))
    da = open_geotiff(p)  # columns centred at 315, 225, 135, 45 E
    np.testing.assert_array_equal(da["lon"].values, [-135.0, -45.0, 45.0, 135.0])
    np.testing.assert_array_equal(da.values[0], [1.0, 0.0, 3.0, 2.0])


def test_lon_180_order_edges():
    """Mutants: ``lon.max() > 180`` made ``>=`` (a global grid with a column centred on 180 E was wrapped); the
    global-span tolerance removed (a 360-degree grid whose edges carry rounding was kept on 0...360) or widened to
    a degree (a 359.5-degree regional grid was wrapped); ``lon.min() > 180`` made ``>=`` (a regional grid starting
    on 180 E moved to -180)."""
    from workbench.geo import lon_180_order

    assert lon_180_order(np.arange(-179.0, 181.0), 360.0) is None  # centres -179...180: already -180...180
    lon, order = lon_180_order(np.arange(0.5, 360.0), 360.0 - 1e-9)
    assert lon[0] == -179.5 and lon[-1] == 179.5 and order[0] == 180
    assert lon_180_order(np.arange(0.25, 359.5, 0.5), 359.5) is None
    assert lon_180_order(np.array([180.0, 185.0, 190.0]), 15.0) is None


def test_a_catalogue_raster_across_180_of_a_few_columns_is_not_wrapped():
    """Also pins (the suite kills it too) ``lon_180_order`` given the span ``right + left`` (a 170...190 E tile, whose
    edges add up to 360, was taken for a global grid and split at 180)."""
    from workbench import catalog

    m = catalog.Manifest.model_validate({
        "id": "seam", "title": "t", "description": "d", "kind": "raster", "provider": "p", "citation": "c",
        "licence": "l", "crs": "IAU_2015:30100", "reader": "geotiff", "variables": {"v": {"units": "DN"}},
        "files": [{"name": "f.tif", "sha256": "0" * 64, "size": 1, "sources": [{"mirror": "f.tif"}]}]})
    ds = catalog._raster_to_dataset(np.arange(4, dtype="uint8").reshape(1, 4), m, (170.0, -10.0, 190.0, 10.0))
    np.testing.assert_allclose(ds["lon"], [172.5, 177.5, 182.5, 187.5])
    assert ds["v"].values.tolist() == [[0.0, 1.0, 2.0, 3.0]]
    # and a global 0...360 raster moves its data with its longitudes (mutant: ``data[:, order]`` dropped)
    ds = catalog._raster_to_dataset(np.arange(4, dtype="uint8").reshape(1, 4), m, (0.0, -90.0, 360.0, 90.0))
    np.testing.assert_allclose(ds["lon"], [-135.0, -45.0, 45.0, 135.0])
    assert ds["v"].values.tolist() == [[2.0, 3.0, 0.0, 1.0]]


def test_dataset_variables_carry_the_crs_given_for_a_file_without_one(tmp_path):
    """Mutant: each variable of ``as_dataset=True`` given the file's own CRS text instead of the CRS used (a file
    without a CRS read with ``crs=`` had variables with ``crs=None``)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "n.tif", np.full((2, 3, 4), 8.0, "float32"), crs=None, descriptions=["FeO", "TiO2"])
    ds = open_geotiff(p, crs="+proj=longlat +R=1737400 +no_defs", as_dataset=True)
    assert ds["FeO"].attrs["crs"] == ds["TiO2"].attrs["crs"] == "IAU_2015:30100"


# -- rasters.open_map_file -----------------------------------------------------------------------------------------
def test_map_files_by_suffix_whatever_the_case(tmp_path):
    """Mutants: the suffix not lower-cased (``MAPS.TIF``, ``maps.NC`` refused as unknown); ``.nc4`` missing from
    ``NETCDF_SUFFIXES``; ``src.is_file()`` dropped (a zarr store in a folder named ``maps.tif`` read as a GeoTIFF)."""
    from workbench.export import to_geotiff
    from workbench.rasters import open_map_file

    ds = _maps()
    to_geotiff(ds, tmp_path / "MAPS.TIF")
    ds.to_netcdf(tmp_path / "maps.NC")
    ds.to_netcdf(tmp_path / "maps.nc4")
    ds.to_zarr(tmp_path / "store.tif")
    for name in ("MAPS.TIF", "maps.NC", "maps.nc4", "store.tif"):
        got = open_map_file(tmp_path / name)
        assert list(got.data_vars) == ["FeO", "FeO_std"], name
        np.testing.assert_array_equal(got["FeO"].values, ds["FeO"].values)


def test_map_file_errors_say_what_to_give(tmp_path):
    """Mutants: a ``.zarr`` that is a file (not a folder) called an unknown type instead of an unreadable zarr
    store; only ``OSError`` turned into the clear error; the unknown-type message without the GeoTIFF option."""
    from workbench.rasters import open_map_file

    (tmp_path / "x.zarr").write_text("not a store")
    with pytest.raises(InputError, match=r"x.zarr could not be read as a zarr store \(.*'workbench invert map'"):
        open_map_file(tmp_path / "x.zarr")
    (tmp_path / "bad.nc").write_text("not netcdf")
    with pytest.raises(InputError, match=r"bad.nc could not be read as a NetCDF file"):
        open_map_file(tmp_path / "bad.nc")
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(InputError, match=r"a.csv: unknown input type; give a zarr store \(folder\), a NetCDF \(.nc\) "
                                         r"file or a GeoTIFF \(.tif\)"):
        open_map_file(tmp_path / "a.csv")


# -- workbench asymmetry --input -----------------------------------------------------------------------------------
def test_asymmetry_input_passes_every_setting_to_the_statistics(tmp_path, monkeypatch):
    """Mutants: ``seed``, ``block_deg``, ``n_boot`` or ``n_perm`` not passed on for a map file (``--input``), so
    the defaults were used instead."""
    from workbench.analysis import asymmetry
    from workbench.commands.asymmetry import compute

    _maps().to_zarr(tmp_path / "m.zarr")
    calls = []
    monkeypatch.setattr(asymmetry, "asymmetry_summary", lambda da, **kw: calls.append((da.name, kw)) or {"n": 1})
    res = compute(path=str(tmp_path / "m.zarr"), variable="FeO_std", block_deg=15.0, n_boot=10, n_perm=20, seed=7)
    assert res == {"dataset": "m.zarr", "n": 1}
    compute(variable="FeO", path=str(tmp_path / "m.zarr"))
    assert calls == [("FeO_std", {"block_deg": 15.0, "n_boot": 10, "n_perm": 20, "seed": 7}),
                     ("FeO", {"block_deg": 10.0, "n_boot": 1000, "n_perm": 2000, "seed": 0})]


def test_asymmetry_without_a_source_is_argparses_usage_error(capsys):
    """Mutant: the ``--dataset``/``--input`` group not required (no source reached ``compute``'s own error, not the
    usage line naming both options)."""
    from workbench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["asymmetry", "--variable", "FeO"])
    assert exit_.value.code == 2
    assert "one of the arguments --dataset --input is required" in capsys.readouterr().err


# -- validate.open_raster ------------------------------------------------------------------------------------------
def test_gdal_zip_paths_file_urls_and_open_files_are_left_to_rasterio(tmp_path):
    """Mutants: only ``/vsimem`` taken as virtual (a ``/vsizip/`` path into a real zip was refused as missing);
    ``://`` not taken as virtual (a ``file://`` URL was refused); a file object checked as the path ``''``."""
    import zipfile

    from workbench.validate import open_raster

    tif = _write(tmp_path / "a.tif", np.full((1, 3, 4), 0.25, "float32"))
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.write(tif, "a.tif")
    for src in (f"/vsizip/{tmp_path / 'a.zip'}/a.tif", tif.as_uri()):
        assert float(open_raster(src).mean()) == 0.25, src
    with open(tif, "rb") as f:
        assert float(open_raster(f).mean()) == 0.25
    with pytest.raises(InputError, match=r"raster file C:/nowhere/a.tif does not exist"):
        open_raster("C:/nowhere/a.tif")
