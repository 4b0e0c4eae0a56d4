"""What the planetary archives' labels say about their data, read by ``workbench.rasters.open_geotiff``: units (a
PDS3 ``UNIT``, GDAL's band unit of GeoTIFF/ISIS3/PDS4), band centres and widths (PDS3 ``BAND_BIN_*``, ISIS3
``BandBin``) and the band names made from them; GDAL's side files; and GDAL band units written by
``workbench.export.to_geotiff``."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from geotiff_helpers import add_isis3_bandbin, origin, write_geotiff, write_pds3_cube, write_pds3_ldem

from workbench.errors import InputError
from workbench.rasters import open_geotiff

CENTRES, WIDTHS = (415.0, 750.0, 950.0), (40.0, 10.0, 30.0)


def _dn(bands: int = 3, lines: int = 8, samples: int = 16) -> np.ndarray:
    return (np.arange(bands * lines * samples).reshape(bands, lines, samples) % 250 + 50).astype("int16")


def test_a_pds3_cube_opens_with_band_names_wavelengths_widths_units_and_scaling(tmp_path):
    cube = open_geotiff(write_pds3_cube(tmp_path, _dn(), CENTRES, WIDTHS))
    assert cube.dims == ("band", "y", "x") and list(cube.band.values) == ["R415", "R750", "R950"]
    np.testing.assert_array_equal(cube.wavelength.values, CENTRES)
    np.testing.assert_array_equal(cube.fwhm.values, WIDTHS)
    assert cube.attrs["units"] == "1"  # UNIT = REFLECTANCE: dimensionless
    np.testing.assert_allclose(cube.values, _dn() * 0.001, rtol=1e-6)


def test_band_centres_in_micrometres_become_nanometres(tmp_path):
    cube = open_geotiff(write_pds3_cube(tmp_path, _dn(), [c / 1e3 for c in CENTRES], [w / 1e3 for w in WIDTHS],
                                        unit="MICROMETER"))
    np.testing.assert_allclose(cube.wavelength.values, CENTRES)
    np.testing.assert_allclose(cube.fwhm.values, WIDTHS)
    assert list(cube.band.values) == ["R415", "R750", "R950"]


def test_given_band_names_win_and_centres_that_round_alike_need_them(tmp_path):
    label = write_pds3_cube(tmp_path, _dn(), (999.6, 1000.4, 1050.0), WIDTHS)  # R1000 twice
    with pytest.raises(InputError, match=r"its 3 bands are not all named.*pass bands= \(--bands\)"):
        open_geotiff(label)
    named = open_geotiff(label, bands=["R1000_vis", "R1000_nir", "R1050"])
    assert list(named.band.values) == ["R1000_vis", "R1000_nir", "R1050"]
    np.testing.assert_allclose(named.wavelength.values, (999.6, 1000.4, 1050.0))


def test_a_label_that_does_not_give_every_band_a_centre_names_none(tmp_path):
    label = write_pds3_cube(tmp_path, _dn(), CENTRES[:2], WIDTHS[:2])  # two centres for three bands
    with pytest.raises(InputError, match="not all named"):
        open_geotiff(label)
    cube = open_geotiff(label, bands=["a", "b", "c"])
    assert "wavelength" not in cube.coords and "fwhm" not in cube.coords


def test_an_isis3_cube_takes_its_bandbin(tmp_path):
    path = write_geotiff(tmp_path / "m.cub", np.full((3, 6, 8), 0.2, "float32"), driver="ISIS3",
                         transform=origin(0, 10, 1, 1))
    cube = open_geotiff(add_isis3_bandbin(path, CENTRES, WIDTHS))
    assert list(cube.band.values) == ["R415", "R750", "R950"] and cube.dims == ("band", "y", "x")  # simple cyl.
    np.testing.assert_array_equal(cube.fwhm.values, WIDTHS)
    um = write_geotiff(tmp_path / "u.cub", np.full((3, 6, 8), 0.2, "float32"), driver="ISIS3",
                       transform=origin(0, 10, 1, 1))
    np.testing.assert_allclose(open_geotiff(add_isis3_bandbin(um, [0.415, 0.75, 0.95], [0.04, 0.01, 0.03],
                                                              unit="micrometers")).wavelength.values, CENTRES)


def test_invert_map_reads_a_pds3_cube_without_band_options(tmp_path, capsys):
    """A projected PDS3 reflectance cube with its band centres in the label goes straight into ``invert map``:
    the bands are named from their centres and match the weights' names and wavelengths."""
    from workbench.cli import main
    from workbench.inversion.model import OxideInverter

    label = write_pds3_cube(tmp_path, _dn(samples=24), CENTRES, WIDTHS)
    weights = tmp_path / "three_band.pt"
    OxideInverter(["R415", "R750", "R950"], list(CENTRES), width=4, depth=1, stem=4, members=1,
                  context=(3,)).save(weights)
    assert main(["invert", "map", "--input", str(label), "--weights", str(weights), "--out", str(tmp_path / "o.zarr"),
                 "--scheduler", "threads"]) == 0
    assert "CUBE.LBL is on a projected grid" in capsys.readouterr().out
    res = xr.open_zarr(tmp_path / "o.zarr")
    assert res["FeO"].dims == ("lat", "lon") and bool(np.isfinite(res["FeO"]).all())


def test_units_come_from_a_pds3_label_and_from_gdal_band_units(tmp_path):
    ldem = open_geotiff(write_pds3_ldem(tmp_path, np.zeros((20, 40)), 10, 170, 4))
    assert ldem.attrs["units"] == "m"  # the label's UNIT = METER
    for driver, ext in (("GTiff", "tif"), ("ISIS3", "cub"), ("PDS4", "xml")):
        path = tmp_path / f"u.{ext}"
        with rasterio.open(path, "w", driver=driver, width=4, height=3, count=1, dtype="float32",
                           crs="IAU_2015:30100", transform=origin(0, 10, 1, 1)) as dst:
            dst.write(np.ones((1, 3, 4), "float32"))
            dst.units = ("kilometer",)
        assert open_geotiff(path).attrs["units"] == "km", driver
    tagged = write_geotiff(tmp_path / "t.tif", np.ones((1, 3, 4), "float32"), tags=[{"units": "wt%"}])
    with rasterio.open(tagged, "r+") as dst:
        dst.units = ("meter",)
    assert open_geotiff(tagged).attrs["units"] == "wt%"  # the workbench's own metadata first
    bare = write_geotiff(tmp_path / "b.tif", np.ones((1, 3, 4), "float32"))
    assert "units" not in open_geotiff(bare).attrs


PAM = ('<PAMDataset><PAMRasterBand band="1"><Metadata><MDI key="STATISTICS_MEAN">0</MDI></Metadata>'
       '</PAMRasterBand></PAMDataset>')


@pytest.mark.parametrize("kind", ["pds3", "isis3"])
def test_a_gdal_statistics_side_file_is_not_taken_for_truncated_image_data(tmp_path, kind):
    """GDAL (QGIS, gdalinfo -stats) leaves NAME.aux.xml beside a file it has read; GDAL then lists it among the
    file's parts. It is not image data: the file opens (it was refused as truncated)."""
    if kind == "pds3":
        path = write_pds3_ldem(tmp_path, np.zeros((20, 200)), 10, 0, 4, attached=True)  # LDEM.IMG, label inside
    else:
        path = write_geotiff(tmp_path / "m.cub", np.ones((1, 30, 40), "float32"), driver="ISIS3",
                             transform=origin(0, 10, 1, 1))
    (tmp_path / f"{path.name}.aux.xml").write_text(PAM)
    with rasterio.open(path) as src:
        assert any(f.endswith(".aux.xml") for f in src.files)
    assert open_geotiff(path).shape[-2:] == ((20, 200) if kind == "pds3" else (30, 40))


def test_to_geotiff_writes_gdal_band_units_too(tmp_path):
    """QGIS and gdalinfo show GDAL's band unit, not the workbench's ``units`` tag: both are written (a
    dimensionless map, units "1", gets no GDAL unit)."""
    import workbench.geo as geo
    from workbench.export import to_geotiff

    feo = geo.global_template(1, name="FeO").fillna(8.0).assign_attrs(units="wt%")
    ratio = geo.global_template(1, name="mg_number").fillna(0.6).assign_attrs(units="1")
    path = to_geotiff(xr.Dataset({"FeO": feo, "mg_number": ratio}), tmp_path / "m.tif")
    with rasterio.open(path) as src:
        assert src.units == ("wt%", "") or src.units == ("wt%", None)
        assert src.tags(1)["units"] == "wt%" and src.tags(2)["units"] == "1"


def test_narrow_widths_in_nanometres_without_a_unit_are_not_taken_for_micrometres(tmp_path):
    """Widths below 10 nm with no unit follow their centres (in nm), not the centres' below-10 rule."""
    cube = open_geotiff(write_pds3_cube(tmp_path, _dn(), CENTRES, (5.0, 8.0, 9.0), unit="N/A"))
    np.testing.assert_allclose(cube.wavelength.values, CENTRES)
    np.testing.assert_allclose(cube.fwhm.values, (5.0, 8.0, 9.0))
    um = open_geotiff(write_pds3_cube(tmp_path, _dn(), (0.415, 0.75, 0.95), (0.005, 0.008, 0.009), unit="N/A"))
    np.testing.assert_allclose(um.wavelength.values, CENTRES)
    np.testing.assert_allclose(um.fwhm.values, (5.0, 8.0, 9.0))
