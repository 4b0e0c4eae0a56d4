"""Session 30 mutation review: pins what the review of the percentile-of-area threshold, the GeoTIFF export and
``geo.select_box`` found the existing tests let through.

Each test here was written against a mutant of the code as it stood (``git diff 34436e9..``) that the existing
suite did not kill; it fails on that mutant and passes on the real code. The mutant it kills is named in its
docstring (the full table is in the review's log). Small grids and fixed seeds keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

from workbench.errors import InputError
from workbench.geo import CRS_NORTH_POLAR, CRS_SOUTH_POLAR, global_template


# -- analysis.prospectivity: _refuse_inf and area_percentile -------------------------------------------------
def _lat_score(ppd: float = 1.0) -> xr.DataArray:
    t = global_template(ppd).fillna(0.0)
    return t + t["lat"]


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_a_single_infinite_score_of_either_sign_is_refused(bad):
    """Mutants: ``if n_inf:`` -> ``if n_inf > 1:``; ``np.isinf`` -> ``np.isposinf``."""
    from workbench.analysis import prospectivity as P

    s = _lat_score()
    s[10, 20] = bad
    with pytest.raises(InputError, match=r"score has 1 infinite value"):
        P.area_percentile(s, 99.0)
    truth = (s["lat"] > 60).broadcast_like(s)
    with pytest.raises(InputError, match=r"score has 1 infinite value"):
        P.evaluate(s, truth)


def test_area_percentile_takes_both_ends_of_its_range():
    """Mutants: the range check ``0 <= pct <= 100`` made strict at either end."""
    from workbench.analysis import prospectivity as P

    s = _lat_score()
    assert P.area_percentile(s, 0.0) == pytest.approx(float(s.min()))
    assert P.area_percentile(s, 100.0) == pytest.approx(float(s.max()))


# -- export: grid_crs, _step, _bands, to_geotiff ---------------------------------------------------------------
def _feo(ppd: float = 1.0, name: str = "FeO") -> xr.DataArray:
    t = global_template(ppd, name=name)
    rng = np.random.default_rng(30)
    return t.copy(data=rng.uniform(2, 20, t.shape).astype("float32")).assign_attrs(units="wt%")


def _polar(n: int = 6) -> xr.DataArray:
    c = (np.arange(n) - n / 2 + 0.5) * 1000.0
    return xr.DataArray(np.ones((n, n), "float32"), coords={"y": c, "x": c}, dims=("y", "x"))


def test_grid_crs_of_a_lat_lon_map():
    """Mutants: a (lat, lon) map's own ``attrs['crs']`` ignored; ``{lat, lon} <= dims`` made ``==`` (a map with
    a band dimension is still geographic)."""
    from workbench.export import grid_crs

    feo = _feo()
    assert grid_crs(feo.assign_attrs(crs="ESRI:104903")) == "ESRI:104903"
    assert grid_crs(feo.expand_dims(band=[1.0, 2.0]).drop_attrs()) == "IAU_2015:30100"


def test_a_cf_only_grid_mapping_without_crs_text_is_refused(tmp_path):
    """Mutant: ``isinstance(s, str) and s`` -> ``s`` (grid_crs would hand a dict of CF attributes on as the CRS)."""
    from workbench.export import grid_crs, to_geotiff

    da = _polar().assign_coords(spatial_ref=xr.DataArray(0, attrs={
        "crs_wkt": "", "grid_mapping_name": "polar_stereographic", "latitude_of_projection_origin": -90.0}))
    with pytest.raises(InputError, match="carries no CRS"):
        grid_crs(da)
    with pytest.raises(InputError, match="carries no CRS"):
        to_geotiff(da, tmp_path / "p.tif")


@pytest.mark.parametrize("coords, match", [
    (np.array([0.0, 1.0, 2.0, 3.02, 4.02]), "not evenly spaced"),  # one step 2 % long
    (np.zeros(5), "not evenly spaced"),  # a zero step: no pixel size
    (np.array([0.0, 1.0, 2.0, 1.0, 0.0]), "not evenly spaced"),  # up then down: equal |steps|, not a grid
    (np.array([4, 3, 1, 0], dtype=np.uint32), "not evenly spaced"),  # unsigned, descending, uneven
])
def test_irregular_axes_are_refused(tmp_path, coords, match):
    """Mutants in ``_step``: the 1e-3 regularity tolerance loosened to 10 %; ``or d[0] == 0`` dropped; the
    check made on ``|steps|``; the float64 cast before ``np.diff`` dropped (unsigned steps wrap around)."""
    from workbench.export import to_geotiff

    da = _polar(5).isel(x=slice(0, len(coords))).assign_coords(x=coords).assign_attrs(crs=CRS_SOUTH_POLAR)
    with pytest.raises(InputError, match=match):
        to_geotiff(da, tmp_path / "x.tif")
    assert list(tmp_path.iterdir()) == []


def test_default_bands_are_the_numeric_and_boolean_2d_maps_in_order(tmp_path):
    """Mutants: the default selection's dtype filter dropped (a 2-D string map would be taken, then refused)
    or narrowed to ``'iuf'`` (a boolean mask left out)."""
    from workbench.export import to_geotiff

    feo = _feo()
    ds = xr.Dataset({"FeO": feo, "label": feo.astype(str), "mask": feo > 10})
    with rasterio.open(to_geotiff(ds, tmp_path / "d.tif")) as src:
        assert src.descriptions == ("FeO", "mask")
        np.testing.assert_array_equal(src.read(2), (feo > 10).values.astype("float32"))


def test_variables_keep_their_order_and_their_own_crs(tmp_path):
    """Mutants: ``list(variables)`` -> ``sorted(variables)``; the Dataset's ``attrs['crs']`` overriding a
    variable's own."""
    from workbench.export import to_geotiff
    from workbench.maps import polar_pole

    feo = _feo()
    ds = xr.Dataset({"b": feo, "a": feo * 2})
    with rasterio.open(to_geotiff(ds, tmp_path / "o.tif", variables=["b", "a"])) as src:
        assert src.descriptions == ("b", "a")
        np.testing.assert_array_equal(src.read(2), src.read(1) * 2)
    pol = xr.Dataset({"elevation": _polar().assign_attrs(crs=CRS_NORTH_POLAR)}, attrs={"crs": CRS_SOUTH_POLAR})
    p = to_geotiff(pol, tmp_path / "n.tif")
    assert polar_pole(rioxarray.open_rasterio(p).isel(band=0)) == "N"


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_value_that_overflows_float32_is_refused(tmp_path):
    """Mutant: the infinity check made before the float32 cast (1e39 is finite in float64, inf in float32)."""
    from workbench.export import to_geotiff

    feo = _feo().astype("float64")
    feo[5, 5] = 1e39
    with pytest.raises(InputError, match=r"1 infinite value\(s\) \(after the float32 cast\)"):
        to_geotiff(feo, tmp_path / "f.tif")


def test_file_layout_and_metadata(tmp_path):
    """Mutants: no float32 cast; deflate or tiling dropped; the file-level tags keeping units, long_name, crs
    or private ``_`` attributes; the band's ``long_name`` tag dropped; a Dataset's tags taken from its first
    variable instead of its own attributes."""
    from workbench.export import to_geotiff

    feo = _feo().astype("float64").assign_attrs(long_name="FeO abundance", seed=3, _private="x")
    with rasterio.open(to_geotiff(feo, tmp_path / "a.tif")) as src:
        assert src.dtypes == ("float32",) and src.profile["compress"] == "deflate" and src.profile["tiled"]
        assert src.tags(1) == {"units": "wt%", "long_name": "FeO abundance"}
        tags = src.tags()
        assert tags["seed"] == "3" and not {"units", "long_name", "crs", "_private"} & set(tags)
    ds = xr.Dataset({"FeO": feo}, attrs={"source": "LP GRS", "crs": "IAU_2015:30100"})
    with rasterio.open(to_geotiff(ds, tmp_path / "b.tif")) as src:
        assert src.tags()["source"] == "LP GRS" and "seed" not in src.tags() and "crs" not in src.tags()


def test_a_map_stored_east_to_west_is_written_west_to_east(tmp_path):
    """Mutant: the ``sortby(x)`` after the north-up flip dropped."""
    from workbench.export import to_geotiff

    feo = _feo()
    with rasterio.open(to_geotiff(feo.isel(lon=slice(None, None, -1)), tmp_path / "w.tif")) as src:
        assert src.transform.a == 1.0 and src.transform.c == -180.0
        np.testing.assert_array_equal(src.read(1), feo.values)


def test_a_write_that_fails_after_the_raster_is_written_leaves_the_old_file(tmp_path, monkeypatch):
    """Mutant: the write made in place, not through ``atomic_path`` (the existing test's failure struck before
    any byte was written, so it could not tell)."""
    from workbench.export import to_geotiff

    out = tmp_path / "f.tif"
    out.write_bytes(b"old")
    real_open = rasterio.open

    def fail_on_update(fp, mode="r", *a, **k):
        if mode == "r+":
            raise OSError("disk full")
        return real_open(fp, mode, *a, **k)

    monkeypatch.setattr(rasterio, "open", fail_on_update)  # the raster is written; its band tags fail
    with pytest.raises(OSError, match="disk full"):
        to_geotiff(_feo(), out)
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.tif"]


def test_cli_exports_a_netcdf_file(tmp_path, capsys):
    """Mutant: ``.nc`` missing from the accepted NetCDF suffixes."""
    from workbench.cli import main

    xr.Dataset({"FeO": _feo()}).to_netcdf(tmp_path / "m.NC")
    assert main(["export", str(tmp_path / "m.NC"), "--out", str(tmp_path / "m.tif")]) == 0
    assert "1 band(s) (FeO)" in capsys.readouterr().out
    with rasterio.open(tmp_path / "m.tif") as src:
        np.testing.assert_array_equal(src.read(1), _feo().values)


def test_cli_says_a_missing_file_does_not_exist(tmp_path, capsys):
    """Mutant: the existence check dropped (a missing .nc was then reported as unreadable)."""
    from workbench.cli import main

    assert main(["export", str(tmp_path / "gone.nc"), "--out", str(tmp_path / "x.tif")]) == 2
    assert "gone.nc does not exist; give a zarr store" in capsys.readouterr().err


# -- geo.select_box and _box_lon_order -------------------------------------------------------------------------
def _cells(ppd: float = 1.0) -> xr.DataArray:
    t = global_template(ppd)
    la, lo = np.meshgrid(t["lat"].values, t["lon"].values, indexing="ij")
    return t.copy(data=la * 1000 + lo)


def test_select_box_edges_are_included_on_both_sides():
    """Mutants: the east edge excluded (``off < span``); the west edge shifted; the 1e-9 tolerances removed
    (bounds typed as 0.05-degree decimals miss cell centres computed one ulp beyond them)."""
    from workbench.geo import select_box

    g = _cells()
    assert select_box(g, lon=(10.5, 12.5))["lon"].values.tolist() == [10.5, 11.5, 12.5]
    assert select_box(g, lat=(10.5, 12.5))["lat"].values.tolist() == [12.5, 11.5, 10.5]
    fine = global_template(10)  # centres such as -179.64999999999998, 89.35000000000001, 31.049999999999997
    assert select_box(fine, lon=(-179.95, -179.65)).sizes["lon"] == 4
    assert select_box(fine, lat=(88.85, 89.35)).sizes["lat"] == 6
    assert select_box(fine, lat=(31.05, 31.55)).sizes["lat"] == 6


def test_select_box_one_longitude_is_one_column_not_the_globe():
    """Mutant: ``west == east`` read as the full circle."""
    from workbench.geo import select_box

    assert select_box(_cells(), lon=(10.5, 10.5))["lon"].values.tolist() == [10.5]


def test_select_box_a_half_circle_written_east_to_west_runs_eastwards():
    """Mutant: the reversed-bounds heuristic ``> 180`` made ``>= 180``: ``(180, 0)`` spans exactly 180 degrees
    eastwards (the western hemisphere), so it is not swapped into ``(0, 180)``."""
    from workbench.geo import select_box

    west = select_box(_cells(), lon=(180, 0))
    assert west["lon"].values.tolist() == [-179.5 + k for k in range(180)]


def test_select_box_across_both_seams_keeps_longitudes_continuous():
    """Mutant: the fallback that makes the longitudes continuous (``west + (lon - west) % 360``) dropped, for a
    box that crosses ±180 and 0 (neither wrap makes it increasing): ``(-260, 10)`` is 100 E eastwards to 10 E."""
    from workbench.geo import select_box, wrap_lon_180

    box = select_box(_cells(), lon=(-260, 10))
    lon = box["lon"].values
    assert lon.size == 270 and lon[0] == -259.5 and np.all(np.diff(lon) == 1.0)
    np.testing.assert_array_equal(box.values[0] - 89500.0, wrap_lon_180(lon))  # data moved with the coordinates


def test_select_box_across_the_seam_keeps_the_longitude_attributes():
    """Mutant: the re-assigned ``lon`` coordinate loses its CF attributes (units, standard_name)."""
    from workbench.geo import select_box

    g = _cells()
    assert select_box(g, lon=(170, -170))["lon"].attrs == g["lon"].attrs != {}


def test_select_box_off_the_seam_keeps_the_grids_longitude_convention():
    """Mutant: the seam test ``diff(idx) < 0`` flipped to ``> 0`` (every box then went through the seam branch,
    which put a box of the western hemisphere of a −180…180 grid on 0…360 longitudes)."""
    from workbench.geo import select_box

    assert select_box(_cells(), lon=(200, 220))["lon"].values.tolist() == [-159.5 + k for k in range(20)]


def test_select_box_between_two_columns_is_an_input_error():
    """Mutant: the empty-box check made on latitude only (an empty longitude range came back as a 0-wide map)."""
    from workbench.geo import select_box

    with pytest.raises(InputError, match="holds no cell of this grid"):
        select_box(_cells(), lon=(10.6, 10.9))


# -- calibration._select_region ----------------------------------------------------------------------------------
def test_select_region_passes_open_slices_to_sel():
    """Mutant: the ``start``/``stop is not None`` test dropped (``slice(40, None)`` then reached select_box, which
    wants a pair of numbers)."""
    from workbench.calibration import _select_region

    ds = _cells(0.5).to_dataset(name="elevation")
    sub = _select_region({"lat": slice(40.0, None), "lon": slice(0.0, 30.0)}, ds)
    assert sub.sizes == {"lat": 65, "lon": 15} and float(sub["lat"].max()) == 39.0


def test_select_region_passes_labels_that_are_not_slices_to_sel():
    """Mutant: the ``isinstance(sl, slice)`` test dropped (a list of latitudes has no ``.start``)."""
    from workbench.calibration import _select_region

    ds = _cells(0.5).to_dataset(name="elevation")
    sub = _select_region({"lat": [39.0, 37.0], "lon": slice(0.0, 30.0)}, ds)
    assert sub["lat"].values.tolist() == [39.0, 37.0] and sub.sizes["lon"] == 15


def test_phase_experiment_wants_at_least_4x4_pixels():
    """Mutant: the 4 x 4 minimum made 3 x 3 (the region check runs before any rendering)."""
    from workbench.calibration import phase_angle_experiment

    moon = _cells(1).to_dataset(name="elevation")
    with pytest.raises(InputError, match="fewer than 4x4 pixels"):
        phase_angle_experiment(moon, region={"lat": slice(13.0, 10.0), "lon": slice(10.0, 13.0)})
