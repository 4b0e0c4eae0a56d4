"""Session 31 mutation review: pins what the review of GeoTIFF input (``workbench.rasters.open_geotiff``),
reflectance cubes out to GeoTIFF (``export._spectral_bands``) and ``workbench invert map --input REFL.tif``
found the existing tests let through.

Each test here was written against a mutant of the code as it stood at b29fba9 that the existing suite did not
kill; it fails on that mutant and passes on the real code. The mutant it kills is named in its docstring (the
full table is in the review's log). Small hand-built files and fixed seeds keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from geotiff_helpers import origin as _origin
from geotiff_helpers import write_geotiff as _write

from workbench.errors import InputError
from workbench.geo import global_grid

BANDS = ["R415", "R750", "R950"]




def _cube(ppd: float = 1.0, seed: int = 31) -> xr.DataArray:
    lat, lon = global_grid(ppd)
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.05, 0.3, (3, lat.size, lon.size)).astype(np.float32)
    return xr.DataArray(data, dims=("band", "lat", "lon"), name="reflectance",
                        coords={"band": BANDS, "wavelength": ("band", [415.0, 750.0, 950.0]),
                                "fwhm": ("band", [40.0, 10.0, 30.0]), "lat": lat, "lon": lon},
                        attrs={"units": "1", "instrument": "tri_band"})


# -- rasters._lunar_crs ------------------------------------------------------------------------------------------
def test_the_lunar_radius_check_is_one_percent_either_side(tmp_path):
    """Mutants: the 1 % radius tolerance loosened to 50 % (Mercury's 2440.5 km sphere passed as the Moon) or
    tightened to 0.01 % (a 1738 km lunar sphere refused); ``<=`` made ``<`` (exactly 1 % refused)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "m.tif", np.full((1, 3, 4), 0.1, "float32"), crs=None)
    for r in (1738000, 1754774, 1720026):  # 1737.4 km + 0.03 %, + exactly 1 %, - exactly 1 %
        assert open_geotiff(p, crs=f"+proj=longlat +R={r} +no_defs").dims == ("lat", "lon")
    for bad in ("+proj=longlat +R=1754775 +no_defs", "IAU_2015:19900"):  # 1 m beyond 1 %; Mercury
        with pytest.raises(InputError, match=r"not the Moon's 1737.4 km"):
            open_geotiff(p, crs=bad)


def test_a_crs_without_an_ellipsoid_is_refused(tmp_path):
    """Mutant: a CRS with no ellipsoid (an engineering CRS) taken as having the Moon's radius."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "e.tif", np.full((1, 3, 4), 0.1, "float32"), crs=None)
    local = ('ENGCRS["local",EDATUM["d"],CS[Cartesian,2],AXIS["x",east,LENGTHUNIT["metre",1]],'
             'AXIS["y",north,LENGTHUNIT["metre",1]]]')
    with pytest.raises(InputError, match=r"radius nan km, not the Moon's"):
        open_geotiff(p, crs=local)


# -- rasters._crs_name -------------------------------------------------------------------------------------------
def test_a_polar_projection_at_another_scale_is_not_named_iau_30135(tmp_path):
    """Mutants: the test-point comparison's 1 mm tolerance loosened to 1e9 m, or the points compared with the file's
    own CRS instead of the candidate code's (PROJ proposes IAU_2015:30135 for a k=0.9 stereographic, which maps
    every point 10 % nearer the pole: it must keep its own WKT)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "k.tif", np.ones((1, 3, 4), "float32"),
               crs="+proj=stere +lat_0=-90 +lon_0=0 +k=0.9 +x_0=0 +y_0=0 +R=1737400 +units=m +no_defs",
               transform=_origin(-3200, 2400, 1600, 1600))
    name = open_geotiff(p).attrs["crs"]
    assert name.startswith("PROJCRS") and "0.9" in name


# -- rasters._band_labels and _band_numbers ------------------------------------------------------------------------
def test_a_multiband_file_with_some_bands_unnamed_needs_bands(tmp_path):
    """Mutant: ``any(not d ...)`` -> ``all(not d ...)`` (a file naming 2 of its 3 bands got the file's stem for
    the third)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "part.tif", np.full((3, 3, 4), 0.1, "float32"), descriptions=["R415", "R750"])
    with pytest.raises(InputError, match=r"its 3 bands are not all named \(descriptions: \['R415', 'R750', None\]\)"):
        open_geotiff(p)


def test_an_unnamed_single_band_is_named_for_its_file(tmp_path):
    """Mutant: the file-stem fallback dropped (the map was named ``'None'``)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "albedo.tif", np.full((1, 3, 4), 0.1, "float32"))
    assert open_geotiff(p).name == "albedo"
    assert list(open_geotiff(p, as_dataset=True).data_vars) == ["albedo"]


def test_more_band_names_than_bands_is_the_clear_error(tmp_path):
    """Mutant: the length check ``!=`` made ``<`` (four names for three bands reached xarray's own error)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "u.tif", np.full((3, 3, 4), 0.1, "float32"))
    with pytest.raises(InputError, match=r"has 3 band\(s\) but bands= \(--bands\) names 4 \(R415, R750, R950, R1000\)"):
        open_geotiff(p, bands=[*BANDS, "R1000"])


def test_band_names_given_as_numbers_become_text_labels(tmp_path):
    """Mutant: ``bands=`` taken as given, not ``str()``-converted (numbers became the band labels)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "n.tif", np.full((3, 3, 4), 0.1, "float32"))
    assert open_geotiff(p, bands=[415, 750, 950])["band"].values.tolist() == ["415", "750", "950"]


def test_wavelengths_are_a_coordinate_only_when_every_band_has_a_number(tmp_path):
    """Mutants: ``ValueError`` not caught (a tag such as ``wavelength_nm=unknown`` crashed the read); a band
    without the tag read as NaN instead of no coordinate."""
    from workbench.rasters import open_geotiff

    data = np.full((3, 3, 4), 0.1, "float32")
    odd = _write(tmp_path / "odd.tif", data, descriptions=BANDS,
                 tags=[{"wavelength_nm": "415"}, {"wavelength_nm": "unknown"}, {"wavelength_nm": "950"}])
    assert "wavelength" not in open_geotiff(odd).coords
    some = _write(tmp_path / "some.tif", data, descriptions=BANDS,
                  tags=[{"wavelength_nm": "415", "fwhm_nm": "40"}, {"wavelength_nm": "750"}, {"wavelength_nm": "950"}])
    da = open_geotiff(some)
    assert "fwhm" not in da.coords and da["wavelength"].values.tolist() == [415.0, 750.0, 950.0]


# -- rasters.open_geotiff ------------------------------------------------------------------------------------------
def test_latitudes_beyond_the_pole_by_half_a_pixel_are_refused_and_rounding_is_not(tmp_path):
    """Mutants: the ±90° limit's 1e-6° slack widened to 1° (a grid whose first row is centred at 90.5° N was read);
    the slack removed (a pole-centred grid whose geotransform carries 4e-7° of rounding was refused)."""
    from workbench.rasters import open_geotiff

    beyond = _write(tmp_path / "b.tif", np.ones((1, 3, 4), "float32"), transform=_origin(0, 91, 1, 1))
    with pytest.raises(InputError, match=r"latitudes reach 90.5°, beyond ±90°"):
        open_geotiff(beyond)
    poles = _write(tmp_path / "p.tif", np.ones((1, 181, 2), "float32"), transform=_origin(0, 90.5 + 4e-7, 1, 1))
    lat = open_geotiff(poles)["lat"].values
    assert lat.size == 181 and lat[0] == pytest.approx(90.0 + 4e-7, abs=1e-12) and lat[90] == pytest.approx(4e-7)


def test_a_hand_built_files_metadata(tmp_path):
    """Mutants: no ``units`` attribute read as ``units=None`` (``None not in vals`` dropped); the file's
    ``AREA_OR_POINT`` kept as an attribute; ``source`` dropped; the ``spatial_ref`` coordinate kept."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "h.tif", np.full((3, 3, 4), 0.1, "float32"), descriptions=BANDS)
    with rasterio.open(p, "r+") as dst:
        dst.update_tags(mission="LRO")
    da = open_geotiff(p)
    assert da.attrs == {"mission": "LRO", "crs": "IAU_2015:30100", "source": str(p)}
    assert set(da.coords) == {"band", "lat", "lon"}


def test_a_polar_file_has_metre_axes_both_ways(tmp_path):
    """Mutant: the ``y`` axis's ``units``/``standard_name`` dropped (only ``x`` was checked)."""
    from workbench.rasters import open_geotiff

    p = _write(tmp_path / "s.tif", np.ones((1, 3, 4), "float32"), crs="IAU_2015:30135",
               transform=_origin(-3200, 2400, 1600, 1600))
    da = open_geotiff(p)
    for ax in ("x", "y"):
        assert da[ax].attrs == {"units": "m", "standard_name": f"projection_{ax}_coordinate"}


def test_a_cube_as_a_dataset_keeps_each_bands_metadata_and_no_band_coordinates(tmp_path):
    """Mutants (``as_dataset=True``): a variable's ``long_name`` dropped; the bands' common ``units``/``long_name``
    also kept on the Dataset; rioxarray's own attributes (``AREA_OR_POINT``, a tuple of descriptions) left on the
    variables."""
    from workbench.export import to_geotiff
    from workbench.rasters import open_geotiff

    cube = _cube().assign_attrs(long_name="reflectance")
    ds = open_geotiff(to_geotiff(cube, tmp_path / "c.tif"), as_dataset=True)
    assert list(ds.data_vars) == BANDS and set(ds.coords) == {"lat", "lon"}
    assert not {"units", "long_name"} & set(ds.attrs) and ds.attrs["instrument"] == "tri_band"
    for b in BANDS:
        attrs = ds[b].attrs
        assert attrs["units"] == "1" and attrs["long_name"] == "reflectance" and "AREA_OR_POINT" not in attrs
    np.testing.assert_array_equal(ds["R750"].values, cube.sel(band="R750").values)


def test_a_one_band_cube_reads_back_as_a_map_named_for_its_band(tmp_path):
    """Mutant: a multiband cube named for its first band instead of its file (and a one-band file is a map named
    for its band, without a scalar ``wavelength``)."""
    from workbench.export import to_geotiff
    from workbench.rasters import open_geotiff

    one = open_geotiff(to_geotiff(_cube().isel(band=[1]), tmp_path / "one.tif"))
    assert one.dims == ("lat", "lon") and one.name == "R750" and set(one.coords) == {"lat", "lon"}
    assert open_geotiff(to_geotiff(_cube(), tmp_path / "refl3.tif")).name == "refl3"


# -- export._spectral_bands ------------------------------------------------------------------------------------------
def test_a_cube_with_a_per_row_wavelength_is_written_without_wavelength_tags(tmp_path):
    """Mutant: the ``ndim == 0`` guard dropped (a wavelength that varies along ``lat``, as a pushbroom's smile
    makes it, is not one number per band: ``float()`` of it failed)."""
    from workbench.export import to_geotiff

    cube = _cube(2)
    smile = 415.0 + 0.01 * np.arange(3)[:, None] * np.ones(cube.sizes["lat"])
    cube = cube.drop_vars("wavelength").assign_coords(wavelength=(("band", "lat"), smile))
    with rasterio.open(to_geotiff(cube, tmp_path / "s.tif")) as src:
        assert src.descriptions == tuple(BANDS)
        assert src.tags(2) == {"units": "1", "fwhm_nm": "10.0"}


# -- inversion.global_map.open_reflectance and 'workbench invert map --input REFL.tif' ---------------------------
@pytest.mark.parametrize("name", ["refl.TIF", "refl.tiff"])
def test_upper_case_and_four_letter_geotiff_suffixes_are_read_as_geotiff(tmp_path, name):
    """Mutants: the suffix compared without ``.lower()`` (``.TIF`` read as zarr); ``.tiff`` missing from
    ``GEOTIFF_SUFFIXES``."""
    from workbench.inversion import global_map

    p = _write(tmp_path / name, np.full((3, 3, 4), 0.1, "float32"), descriptions=BANDS)
    refl = global_map.open_reflectance(p)
    assert refl.dims == ("band", "lat", "lon") and refl["band"].values.tolist() == BANDS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from workbench.inversion.model import OxideInverter

    m = OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2)
    m.mg_number_from = "head"  # untrained: its 'oxides' are no compositions
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    m.save(path)
    return path


def test_invert_map_passes_crs_on_for_a_geotiff_without_one(tmp_path, tiny, capsys):
    """Mutants: ``--crs`` not passed from the command line to ``open_reflectance``, or not on from
    ``open_reflectance`` to ``open_geotiff`` (a file with no CRS was refused although ``--crs`` gave one)."""
    from workbench.cli import main
    from workbench.inversion import global_map

    cube = _cube(seed=7)
    p = _write(tmp_path / "nocrs.tif", cube.values, crs=None, transform=_origin(-180, 90, 1, 1))
    assert global_map.open_reflectance(p, bands=BANDS, crs="IAU_2015:30100").attrs["crs"] == "IAU_2015:30100"
    args = ["--weights", str(tiny), "--scheduler", "threads", "--chunk", "90", "--precision", "float32"]
    assert main(["invert", "map", "--input", str(p), "--bands", ",".join(BANDS), "--crs", "IAU_2015:30100",
                 "--out", str(tmp_path / "m.zarr"), *args]) == 0, capsys.readouterr().err
    assert np.isfinite(xr.open_zarr(tmp_path / "m.zarr")["FeO"].values).all()


def test_crs_without_input_is_refused(tmp_path, capsys):
    """Mutant: the synthetic-Moon refusal tested on ``--bands`` only (``--crs`` alone was ignored)."""
    from workbench.cli import main

    assert main(["invert", "map", "--out", str(tmp_path / "s.zarr"), "--ppd", "1", "--crs", "IAU_2015:30100"]) == 2
    assert "--bands/--crs describe a GeoTIFF given with --input" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()


# -- commands.invert._names ---------------------------------------------------------------------------------------
def test_band_names_are_split_on_commas_and_stripped():
    """Mutant: the names not stripped (``--bands "R415, R750"`` gave a band named ``' R750'``)."""
    from workbench.commands.invert import _names

    assert _names(" R415 , R750,R950 ") == BANDS


# -- defect found by the review: as_dataset variables' CRS ---------------------------------------------------------
def test_as_dataset_variables_carry_the_files_crs(tmp_path):
    """Defect (not a mutant): with ``as_dataset=True`` each variable of a geographic file carried
    ``annotate_latlon``'s default ``crs='IAU_2015:30100'`` whatever the file's CRS, and ``to_geotiff(ds)`` wrote
    that (a variable's own CRS beats the Dataset's); a polar file's variables carried none, so one of them alone
    could not be written."""
    from workbench.export import to_geotiff
    from workbench.maps import polar_pole
    from workbench.rasters import open_geotiff

    data = np.full((2, 3, 4), 8.0, "float32")
    g = _write(tmp_path / "g.tif", data, crs="ESRI:104903", descriptions=["FeO", "TiO2"])
    ds = open_geotiff(g, as_dataset=True)
    assert ds.attrs["crs"] == ds["FeO"].attrs["crs"] == ds["TiO2"].attrs["crs"] == "ESRI:104903"
    assert open_geotiff(to_geotiff(ds, tmp_path / "g2.tif")).attrs["crs"] == "ESRI:104903"
    s = _write(tmp_path / "s.tif", data, crs="IAU_2015:30135", transform=_origin(-3200, 2400, 1600, 1600),
               descriptions=["FeO", "TiO2"])
    feo = open_geotiff(s, as_dataset=True)["FeO"]
    assert feo.attrs["crs"] == "IAU_2015:30135"
    assert polar_pole(open_geotiff(to_geotiff(feo, tmp_path / "s2.tif"))) == "S"
