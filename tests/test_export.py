"""GeoTIFF export (workbench.export.to_geotiff and ``workbench export``): what a GIS reads back."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

from workbench.cli import main
from workbench.errors import InputError
from workbench.export import to_geotiff
from workbench.geo import CRS_SOUTH_POLAR, global_template
from workbench.maps import polar_pole


def _feo(ppd: float = 1.0) -> xr.DataArray:
    t = global_template(ppd, name="FeO")
    rng = np.random.default_rng(0)
    v = rng.uniform(2, 20, t.shape).astype("float32")
    v[3, 5] = np.nan
    return t.copy(data=v).assign_attrs(units="wt%", long_name="FeO abundance", seed=0)


def _read(path):
    with rasterio.open(path) as src:
        return src.read(), src.crs, src.transform, src.nodata, src.descriptions, [src.tags(i + 1)
                                                                                   for i in range(src.count)]


def test_geographic_map_round_trips_north_up_with_crs_units_and_nodata(tmp_path):
    feo = _feo()
    # stored south-up on 0..360 longitudes: the file is still north up, west to east
    flipped = feo.isel(lat=slice(None, None, -1)).assign_coords(lon=np.mod(feo["lon"].values, 360.0)).sortby("lon")
    for i, da in enumerate((feo, flipped, feo.transpose("lon", "lat"))):
        arr, crs, tr, nodata, desc, tags = _read(to_geotiff(da, tmp_path / f"f{i}.tif"))
        assert str(crs) == "IAU_2015:30100" and desc == ("FeO",) and tags[0]["units"] == "wt%"
        assert tr.a == 1.0 and tr.e == -1.0 and tr.f == 90.0  # 1 deg pixels, top edge at 90 N
        assert np.isnan(nodata)
        want = da.transpose("lat", "lon").sortby("lat", ascending=False).sortby("lon").values
        np.testing.assert_array_equal(arr[0], want)  # NaN stays NaN at the same place
    assert _read(tmp_path / "f1.tif")[2].c == 0.0  # the 0..360 map starts at 0 E
    arr0 = _read(tmp_path / "f0.tif")[0][0]
    assert np.isnan(arr0[3, 5]) and np.isfinite(arr0).sum() == arr0.size - 1
    assert _read(tmp_path / "f0.tif")[2].c == -180.0


def test_rioxarray_reads_back_the_same_coordinates(tmp_path):
    feo = _feo(2)
    back = rioxarray.open_rasterio(to_geotiff(feo, tmp_path / "f.tif")).squeeze("band", drop=True)
    np.testing.assert_allclose(back["y"].values, feo["lat"].values)
    np.testing.assert_allclose(back["x"].values, feo["lon"].values)
    np.testing.assert_array_equal(back.values, feo.values)


def test_dataset_bands_polar_crs_and_selection(tmp_path):
    y = np.arange(-5, 5) * 1600.0 + 800.0
    x = np.arange(-4, 4) * 1600.0 + 800.0
    ds = xr.Dataset({"elevation": (("y", "x"), np.ones((10, 8), "float32"), {"units": "m"}),
                     "slope": (("y", "x"), np.full((10, 8), 2.0), {"units": "deg"}),
                     "profile": (("x",), np.zeros(8))},
                    coords={"y": y, "x": x}, attrs={"crs": CRS_SOUTH_POLAR})
    arr, crs, tr, _, desc, tags = _read(to_geotiff(ds, tmp_path / "p.tif"))
    # GeoTIFF keeps the projection, not IAU's code: the lunar sphere's south-polar stereographic, which the
    # package's own maps read back as south-polar
    assert "South Polar" in crs.to_wkt() and "1737400" in crs.to_wkt() and 'latitude_of_origin",-90' in crs.to_wkt()
    assert polar_pole(rioxarray.open_rasterio(tmp_path / "p.tif").isel(band=0)) == "S"
    assert desc == ("elevation", "slope") and arr.shape == (2, 10, 8)
    assert [t["units"] for t in tags] == ["m", "deg"] and tr.a == 1600.0 and tr.e == -1600.0
    assert tr.f == pytest.approx(y.max() + 800.0)
    arr, *_, desc, _ = _read(to_geotiff(ds, tmp_path / "s.tif", variables=["slope"]))
    assert desc == ("slope",) and np.all(arr == 2.0)


@pytest.mark.parametrize("make, match", [
    (lambda f: f.expand_dims(time=[1, 2]), r"dims \('time', 'lat', 'lon'\).*da\.isel\(time=0\)"),
    (lambda f: f.isel(lon=[0, 1, 2, 5, 6]), "'lon' is not evenly spaced"),
    (lambda f: f.isel(lat=[0]), "1 value\\(s\\) along 'lat'"),
    (lambda f: f.where(f["lat"] < 80, np.inf), "infinite value"),
    (lambda f: f.rename(lat="y", lon="x").drop_attrs(), "carries no CRS"),
    (lambda f: f.astype(str), "dtype <U"),
    (lambda f: xr.Dataset({"FeO": f, "elev": f.rename(lat="y", lon="x")}), "'elev' is not on the grid of 'FeO'"),
])
def test_bad_maps_are_refused_with_the_fix(tmp_path, make, match):
    with pytest.raises(InputError, match=match):
        to_geotiff(make(_feo()), tmp_path / "bad.tif")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary


def test_bad_variable_choices(tmp_path):
    feo = _feo()
    with pytest.raises(InputError, match=r"\['nope'\] are not in the Dataset; it has FeO"):
        to_geotiff(feo.to_dataset(), tmp_path / "a.tif", variables=["nope"])
    with pytest.raises(InputError, match="selects nothing"):
        to_geotiff(feo.to_dataset(), tmp_path / "a.tif", variables=[])
    with pytest.raises(InputError, match="a DataArray is written as one band"):
        to_geotiff(feo, tmp_path / "a.tif", variables=["FeO"])
    with pytest.raises(InputError, match="no numeric 2-D variable"):
        to_geotiff(feo.expand_dims(band=[1.0]).to_dataset(), tmp_path / "a.tif")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "f.tif"
    out.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(rasterio, "open", boom)  # fails as the raster is opened (test_session30_mutants fails later)
    with pytest.raises(OSError, match="disk full"):
        to_geotiff(_feo(), out)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.tif"]


def test_cli_exports_a_zarr_store_and_explains_bad_input(tmp_path, capsys):
    ds = xr.Dataset({"FeO": _feo(), "FeO_std": _feo() * 0.1})
    ds["FeO_std"].attrs["units"] = "wt%"
    ds.to_zarr(tmp_path / "m.zarr")
    assert main(["export", str(tmp_path / "m.zarr"), "--var", "FeO_std", "--out", str(tmp_path / "m.tif")]) == 0
    assert "1 band(s) (FeO_std)" in capsys.readouterr().out
    arr, crs, *_, desc, tags = _read(tmp_path / "m.tif")
    assert desc == ("FeO_std",) and tags[0]["units"] == "wt%"
    np.testing.assert_allclose(arr[0], (_feo() * 0.1).values, rtol=1e-6)
    assert main(["export", str(tmp_path / "m.zarr"), "--out", str(tmp_path / "all.tif")]) == 0
    assert _read(tmp_path / "all.tif")[4] == ("FeO", "FeO_std")
    assert main(["export", str(tmp_path / "m.zarr"), "--var", "TiO2", "--out", str(tmp_path / "x.tif")]) == 2
    assert "['TiO2'] are not in the Dataset; it has FeO, FeO_std" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    assert main(["export", str(tmp_path / "junk"), "--out", str(tmp_path / "x.tif")]) == 2
    assert "could not be read as a zarr store" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "x.tif")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "a.csv").write_text("x\n1\n")
    assert main(["export", str(tmp_path / "a.csv"), "--out", str(tmp_path / "x.tif")]) == 2
    assert "unknown input type" in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists()
