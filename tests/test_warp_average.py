"""Coarsening a projected map onto latitude/longitude without aliasing (``warp_to_latlon(resampling="average")``,
the default where the grid is at least twice as coarse as the map), rectangular pixels, uneven grids refused, and
projected cubes in zarr/NetCDF files (``dataset_to_latlon``, ``workbench invert map --input CUBE.zarr``,
``asymmetry --input --ppd``, ``export --latlon --resampling``); ``workbench bench rasters``."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from geotiff_helpers import origin, write_geotiff, write_pds3_ldem

from workbench.errors import InputError
from workbench.geo import MOON_RADIUS_M
from workbench.rasters import dataset_to_latlon, open_geotiff, open_map_file, warp_to_latlon

DEG = np.pi * MOON_RADIUS_M / 180.0  # metres per degree on the Moon's sphere


def _equirect(values: np.ndarray, ppd: int, top: float = 30.0, west: float = 10.0) -> xr.DataArray:
    """``values`` (rows north to south) on equirectangular metres (IAU_2015:30110) at ``ppd`` pixels per degree,
    from ``top`` deg N, ``west`` deg E: a grid whose cells lie exactly on the workbench's grid at ``ppd``."""
    ny, nx = values.shape[-2:]
    step = DEG / ppd
    return xr.DataArray(values.astype("float32"), dims=(*("band",) * (values.ndim - 2), "y", "x"),
                        coords={"y": top * DEG - (np.arange(ny) + 0.5) * step,
                                "x": west * DEG + (np.arange(nx) + 0.5) * step},
                        attrs={"crs": "IAU_2015:30110", "units": "m"}, name="h")


def _polar(n: int = 200, dx: float = 1000.0, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    c = (np.arange(n) - (n - 1) / 2) * dx
    return xr.DataArray(rng.normal(0.0, 1.0, (n, n)).astype("float32"), dims=("y", "x"),
                        coords={"y": c[::-1], "x": c}, attrs={"crs": "IAU_2015:30135", "units": "m"}, name="h")


def test_average_of_a_grid_four_times_finer_is_the_mean_of_each_4x4_block():
    """Known answer: equirectangular metres at 32 px/deg onto 8 px/deg. Each cell spans exactly 4 x 4 map pixels,
    its 4 x 4 sub-cell centres are those pixels' centres, so the average is the plain mean of the 16 pixels
    (the valid ones where some are NaN; NaN where all are)."""
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 1.0, (40, 80))
    values[0:4, 0:4] = np.nan  # a whole cell of holes: NaN
    values[4, 4:7] = np.nan  # three holes in a cell: the mean of the other 13
    geo = warp_to_latlon(_equirect(values, 32), ppd=8)
    assert geo.attrs["resampling"] == "average" and geo.shape == (10, 20)
    expected = np.nanmean(values.reshape(10, 4, 20, 4), axis=(1, 3))
    np.testing.assert_allclose(geo.values, expected, rtol=1e-5, atol=1e-6)
    assert np.isnan(geo.values[0, 0]) and np.isfinite(geo.values[1, 1])
    np.testing.assert_allclose(geo.values[1, 1], np.mean(np.delete(values[4:8, 4:8].ravel(), [0, 1, 2])), rtol=1e-5)


def test_average_does_not_alias_a_checkerboard_that_bilinear_sampling_does():
    """A ±1 checkerboard of single pixels coarsened 8 times: the average is 0 everywhere, where sampling one
    pixel per cell (nearest) keeps the board's ±1 as a false pattern."""
    ii, jj = np.indices((80, 160))
    board = np.where((ii + jj) % 2, 1.0, -1.0)
    avg = warp_to_latlon(_equirect(board, 64), ppd=8)
    assert avg.attrs["resampling"] == "average"
    assert float(np.abs(avg).max()) < 1e-6
    nearest = warp_to_latlon(_equirect(board, 64), ppd=8, resampling="nearest")
    assert float(np.abs(nearest).min()) == 1.0  # what averaging removes


@pytest.mark.parametrize("ppd, expected", [(16, "bilinear"), (9, "bilinear"), (8, "average"), (2, "average")])
def test_the_default_resampling_averages_where_the_grid_is_at_least_twice_as_coarse(ppd, expected):
    assert warp_to_latlon(_equirect(np.ones((32, 32)), 16), ppd=ppd).attrs["resampling"] == expected
    for chosen in ("nearest", "bilinear", "average"):  # a named method is kept
        assert warp_to_latlon(_equirect(np.ones((32, 32)), 16), ppd=ppd, resampling=chosen).attrs[
            "resampling"] == chosen


def test_average_of_a_polar_map_keeps_a_constant_and_shrinks_noise_as_the_cells_grow():
    """A polar stereographic map: a constant stays itself to float precision at every latitude; unit white noise
    averaged over cells of about n map pixels has a std near 1/sqrt(n), far below bilinear sampling's ~1."""
    flat = _polar().copy(data=np.full((200, 200), 7.0, "float32"))
    geo = warp_to_latlon(flat, ppd=4)
    assert geo.attrs["resampling"] == "average"
    assert np.nanmax(np.abs(geo.values - 7.0)) < 1e-5 and np.isfinite(geo.sel(lat=-89.875)).all()
    noise = _polar()
    avg = warp_to_latlon(noise, ppd=4).sel(lat=slice(-88, -89.9))
    bil = warp_to_latlon(noise, ppd=4, resampling="bilinear").sel(lat=slice(-88, -89.9))
    assert float(avg.std()) < 0.35 < 0.6 < float(bil.std())


def test_average_does_not_depend_on_the_blocks():
    noise = _polar(n=120)
    small = warp_to_latlon(noise, ppd=4, chunk=16)
    assert small.data.numblocks[-1] > 1
    np.testing.assert_array_equal(small.values, warp_to_latlon(noise, ppd=4, chunk=4096).values)


def test_a_coarsening_warp_of_a_huge_lazy_map_reads_bounded_blocks(monkeypatch):
    """A 100 m polar map of 40 000 x 40 000 pixels (6.4 Gpix, never made) onto 4 px/deg: each cell covers 76 x 76
    map pixels at the pole and, with the projection's scale, up to 126 x 124 at its edge (11.6 deg S), so the
    blocks shrink (here to 32 cells a side) and a block reads about 17 Mpix or less (not the whole map, which a
    1024-cell block at the pole would)."""
    import dask.array as dsa

    from workbench import rasters

    n, dx = 40_000, 100.0
    c = (np.arange(n) - (n - 1) / 2) * dx
    big = xr.DataArray(dsa.zeros((n, n), "float32", chunks=4000), dims=("y", "x"), coords={"y": c[::-1], "x": c},
                       attrs={"crs": "IAU_2015:30135"})
    read = []

    def record(window, crs, i0, j0, src_transform, lat, lon, order, sub=None, step=1.0):
        read.append(window.size)
        return np.zeros((lat.size, lon.size), np.float32)

    monkeypatch.setattr(rasters, "_warp_window", record)
    geo = warp_to_latlon(big, ppd=4)
    assert geo.attrs["resampling"] == "average" and max(geo.data.chunks[-1]) == 32
    geo.data.blocks[-1, :3].compute()  # at the pole, every longitude
    geo.data.blocks[0, 5].compute()  # the grid's northern edge, at the map's corner (135 deg W)
    assert len(read) == 4 and 1e6 < max(read) < 1.2 * 4096**2


def _projected_cube(tmp_path, suffix: str) -> str:
    """A (band, y, x) polar cube written by rioxarray (CF grid_mapping), as another tool would write it."""
    import rioxarray  # noqa: F401 - the .rio accessor

    n = 40
    c = (np.arange(n) - (n - 1) / 2) * 2e3
    rng = np.random.default_rng(2)
    cube = xr.DataArray(rng.uniform(0.05, 0.3, (3, n, n)).astype("float32"), dims=("band", "y", "x"),
                        coords={"band": ["R415", "R750", "R950"], "y": c[::-1], "x": c}, name="refl",
                        attrs={"units": "1"})
    cube = cube.rio.write_crs("+proj=stere +lat_0=-90 +lon_0=0 +R=1737400 +units=m")
    path = str(tmp_path / f"cube{suffix}")
    (cube.to_dataset().to_zarr(path) if suffix == ".zarr" else cube.to_dataset().to_netcdf(path))
    return path


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_a_projected_cube_in_zarr_or_netcdf_warps_through_its_cf_grid_mapping(tmp_path, suffix):
    ds = open_map_file(_projected_cube(tmp_path, suffix))
    geo = dataset_to_latlon(ds, 8)
    assert list(geo.data_vars) == ["refl"] and geo["refl"].dims == ("band", "lat", "lon")
    assert geo["refl"].attrs["warped_from"] == "IAU_2015:30135" and geo["refl"].attrs["units"] == "1"
    assert list(geo["refl"].band.values) == ["R415", "R750", "R950"]
    assert float(geo.lat.min()) == -89.9375 and np.isfinite(geo["refl"].sel(lat=-89.9375)).all()


def test_a_cf_grid_mapping_on_another_body_is_refused(tmp_path):
    import rioxarray  # noqa: F401

    da = _polar(n=8).rio.write_crs("EPSG:3031")  # Antarctic polar stereographic: the Earth's
    with pytest.raises(InputError, match="radius 6378.1 km, the Earth's, not the Moon's"):
        dataset_to_latlon(da.to_dataset())


def test_ppd_for_maps_with_no_crs_says_so():
    ds = _polar(n=8).drop_attrs().to_dataset()
    assert dataset_to_latlon(ds) is ds
    with pytest.raises(InputError, match=r"\(y, x\) maps with no CRS \(no crs attribute or CF grid_mapping\)"):
        dataset_to_latlon(ds, 4)


def test_invert_map_warps_a_projected_zarr_cube_and_says_so(tmp_path, capsys):
    from workbench.cli import main
    from workbench.inversion.model import OxideInverter

    src = _projected_cube(tmp_path, ".zarr")
    weights = tmp_path / "three_band.pt"
    OxideInverter(["R415", "R750", "R950"], [415.0, 750.0, 950.0], width=4, depth=1, stem=4, members=1,
                  context=(3,)).save(weights)
    assert main(["invert", "map", "--input", src, "--weights", str(weights), "--ppd", "4",
                 "--out", str(tmp_path / "o.zarr"), "--scheduler", "threads"]) == 0
    assert "cube.zarr is on a projected grid (IAU_2015:30135); warped onto latitude/longitude at 4 px/deg" in (
        capsys.readouterr().out)
    res = xr.open_zarr(tmp_path / "o.zarr")
    assert res["FeO"].dims == ("lat", "lon") and res.sizes["lon"] == 1440 and np.isfinite(res["FeO"]).any()


def test_export_latlon_chooses_its_resampling(tmp_path, capsys):
    """``export --latlon``: a class map (three classes) onto a coarser grid keeps whole classes with
    ``--resampling nearest`` and mixes them by default (averaged); ``--resampling`` needs ``--latlon`` and a map
    to warp."""
    from workbench.cli import main

    classes = _polar(n=60, dx=2000.0)
    classes = classes.copy(data=np.floor(np.abs(classes.values)).clip(0, 2).astype("float32")).rename("cls")
    src = write_geotiff(tmp_path / "cls.tif", classes.values[None], crs="IAU_2015:30135", descriptions=["cls"],
                        transform=origin(-60e3, 60e3, 2000.0, 2000.0))
    assert main(["export", str(src), "--latlon", "--ppd", "2", "--resampling", "nearest",
                 "--out", str(tmp_path / "near.tif")]) == 0
    assert main(["export", str(src), "--latlon", "--ppd", "2", "--out", str(tmp_path / "avg.tif")]) == 0
    near, avg = (open_geotiff(tmp_path / f"{n}.tif").values for n in ("near", "avg"))
    assert set(np.unique(near[np.isfinite(near)])) <= {0.0, 1.0, 2.0}
    assert (np.isfinite(avg) & (avg % 1 != 0)).any()  # averaged classes: fractions
    capsys.readouterr()
    assert main(["export", str(src), "--resampling", "nearest", "--out", str(tmp_path / "x.tif")]) == 2
    err = capsys.readouterr().err
    assert "--resampling chooses how to warp with --latlon; add --latlon, or drop --resampling" in err
    geographic = write_geotiff(tmp_path / "g.tif", np.ones((1, 3, 4), "float32"), transform=origin(0, 10, 1, 1))
    assert main(["export", str(geographic), "--latlon", "--resampling", "nearest",
                 "--out", str(tmp_path / "y.tif")]) == 2
    assert ("resampling (--resampling) sets how a projected map is warped onto latitude/longitude; this file's maps "
            "are already in latitude/longitude and keep their grid (drop --resampling)") in capsys.readouterr().err
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "y.tif").exists()


def test_real_wac_polar_mosaic_averaged_onto_4ppd_matches_the_global_wac_mosaic(real_dataset):
    """The LROC WAC 400 m south-polar mosaic onto 4 px/deg (each cell about 19 of its pixels tall), against the
    independent WAC global mosaic (14.2 px/deg) averaged into the same cells, at 72-85 deg S
    (``workbench bench rasters``' figure): averaged, the two correlate at 0.994 (measured; rms 5.9 DN after a
    linear fit); sampled bilinearly, one pixel per cell, at 0.903 (26.7 DN): the aliasing the average removes."""
    from workbench import rasters_bench

    polar = real_dataset("lroc_wac_south_400m")
    real_dataset("lroc_wac_global")
    assert dataset_to_latlon(polar, 4)["brightness"].attrs["warped_from"] == "IAU_2015:30135"  # CF grid_mapping
    corr = rasters_bench._wac_correlation()
    assert corr["average"] > 0.98 and corr["bilinear"] < 0.95


def test_the_rasters_benchmark_reports_throughput_memory_and_real_accuracy(monkeypatch):
    from workbench import bench, rasters_bench

    assert bench.BENCHMARKS["rasters"] == "workbench.rasters_bench:run"
    monkeypatch.setattr(rasters_bench, "_wac_correlation", lambda: {"average": 0.99, "bilinear": 0.9})

    def unavailable():
        raise OSError("lola_ldem_4ppd: not in a mirror, no network")

    monkeypatch.setattr(rasters_bench, "_lola_rmse", unavailable)
    r = rasters_bench.run(fast=True, size=400)
    assert r["map_pixels"] == 160_000 and r["average_resampling"] == "average"
    assert abs(r["average_mean"] - 0.5) < 0.01  # uniform noise, averaged
    assert r["bilinear_mpix_per_s"] > 0 and r["average_source_mpix_per_s"] > 0
    assert 0 < r["bilinear_finite_cells"] < r["bilinear_cells"]  # the grid's corners beyond the map are NaN
    assert r["peak_rss_gb"] >= r["rss_before_gb"] > 0
    assert r["wac_south_4ppd_correlation"] == {"average": 0.99, "bilinear": 0.9}
    assert r["lola_south_4ppd_rmse_m"]["average"] is None
    assert "OSError: lola_ldem_4ppd: not in a mirror" in r["lola_south_4ppd_rmse_m"]["unavailable"]


def test_average_onto_a_single_cell_is_the_mean_of_its_pixels():
    """A grid of one cell (4 x 4 map pixels): the sub-cells come from the grid's spacing, not from neighbours it
    does not have."""
    values = np.arange(16.0).reshape(4, 4)
    geo = warp_to_latlon(_equirect(values, 32), ppd=8)
    assert geo.shape == (1, 1) and geo.attrs["resampling"] == "average"
    assert float(geo[0, 0]) == pytest.approx(values.mean(), rel=1e-6)


def test_errors_that_need_latitude_longitude_name_the_warp():
    """Each step that needs a (lat, lon) grid and gets a projected one names the function that makes one."""
    import pandas as pd

    from workbench.analysis.asymmetry import area_weighted_mean
    from workbench.analysis.layers import roughness
    from workbench.geo import area_weights
    from workbench.site_spectra import site_spectra

    polar = _polar(n=8)
    sites = pd.DataFrame({"site": ["Apollo 11"], "lat": [0.67], "lon": [23.47]})
    calls = [lambda: area_weights(polar), lambda: site_spectra(polar, sites, 5.0),
             lambda: roughness(polar), lambda: area_weighted_mean(polar)]
    for call in calls:
        with pytest.raises(InputError, match=r"onto latitude/longitude first: workbench.rasters.warp_to_latlon\(da\)"):
            call()


@pytest.mark.parametrize("change, match", [
    (lambda da: da.assign_coords(x=np.r_[da.x.values[:5], da.x.values[5:] + 300.0]), "x coordinates are not evenly"),
    (lambda da: da.assign_coords(y=np.r_[da.y.values[::2], da.y.values[1::2]]), "y coordinates are not evenly"),
    (lambda da: da.assign_coords(x=np.zeros(da.sizes["x"])), "x coordinates are not evenly"),
    (lambda da: da.assign_coords(x=np.r_[da.x.values[:-1], np.nan]), "x coordinates are not evenly"),
    (lambda da: da.isel(x=[0], y=[0]), r"1 x 1 pixel\(s\): its pixel size cannot be known"),
])
def test_a_map_off_a_regular_grid_is_refused(change, match):
    """The warp places pixels by their first step: coordinates off an even grid (a stitched or reordered map)
    would be put in the wrong place, silently."""
    with pytest.raises(InputError, match=match):
        warp_to_latlon(change(_polar(n=12)))


def test_float_jitter_in_coordinates_is_accepted():
    da = _polar(n=12)
    jitter = da.assign_coords(x=da.x.values + np.random.default_rng(3).normal(0, 1e-3, 12))  # 1 mm on 1 km pixels
    np.testing.assert_allclose(warp_to_latlon(jitter, ppd=8).values, warp_to_latlon(da, ppd=8).values, atol=1e-3)


def test_rectangular_pixels_warp_exactly():
    """Known answer: equirectangular metres at 16 px/deg across and 8 px/deg down (pixels twice as tall as wide),
    onto 8 px/deg: each cell is two pixels side by side, averaged (the default: the finer axis is twice the grid's),
    and bilinear sampling at the cell centre, between the two pixels, gives the same mean; the grid's edges are
    the map's."""
    rng = np.random.default_rng(4)
    values = rng.normal(0.0, 1.0, (8, 32)).astype("float32")
    da = xr.DataArray(values, dims=("y", "x"), attrs={"crs": "IAU_2015:30110"},
                      coords={"y": 30 * DEG - (np.arange(8) + 0.5) * DEG / 8,
                              "x": 10 * DEG + (np.arange(32) + 0.5) * DEG / 16})
    expected = values.reshape(8, 16, 2).mean(axis=2)
    geo = warp_to_latlon(da)
    assert geo.attrs["ppd"] == 16 and geo.attrs["resampling"] == "bilinear"  # the finer axis' resolution
    avg = warp_to_latlon(da, ppd=8)
    assert avg.attrs["resampling"] == "average" and avg.shape == (8, 16)
    assert float(avg.lat[0]) == 30 - 1 / 16 and float(avg.lon[0]) == 10 + 1 / 16
    np.testing.assert_allclose(avg.values, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(warp_to_latlon(da, ppd=8, resampling="bilinear").values, expected, rtol=1e-5,
                               atol=1e-6)
    assert geo.shape == (16, 32)  # 16 px/deg: each tall pixel over two rows
    np.testing.assert_allclose(warp_to_latlon(da, resampling="nearest").values, np.repeat(values, 2, axis=0))


def test_asymmetry_input_warps_a_projected_map_onto_a_coarser_grid_with_ppd(tmp_path, capsys):
    """``workbench asymmetry --input LDEM.LBL --ppd 1``: a 4 px/deg LDEM averaged onto 1 px/deg (and says so), the
    near side 500 m higher; ``--ppd`` with a dataset id or a latitude/longitude map is refused."""
    import json

    from workbench.cli import main

    lon = 0.125 + np.arange(1440) / 4  # 0...360 deg E, the LDEM's columns
    dn = np.where((lon <= 90) | (lon >= 270), 500, -500)[None, :].repeat(720, axis=0)
    label = write_pds3_ldem(tmp_path, dn, top_lat=90.0, west_lon=0.0, ppd=4)
    assert main(["asymmetry", "--input", str(label), "--ppd", "1", "--n-boot", "50", "--n-perm", "99",
                 "--json", str(tmp_path / "a.json")]) == 0
    assert "grid: IAU_2015:30115 warped onto latitude/longitude at 1 px/deg (average)" in capsys.readouterr().out
    res = json.loads((tmp_path / "a.json").read_text())
    assert res["near_minus_far"]["value"] == pytest.approx(500.0, abs=1.0) and res["units"] == "m"
    assert main(["asymmetry", "--dataset", "synthetic_moon", "--ppd", "1"]) == 2
    assert "--ppd sets the grid a projected --input map is warped onto; the dataset 'synthetic_moon' keeps its own " \
           "grid (drop --ppd)" in capsys.readouterr().err
    geographic = write_geotiff(tmp_path / "g.tif", np.ones((1, 180, 360), "float32"), transform=origin(-180, 90, 1, 1))
    assert main(["asymmetry", "--input", str(geographic), "--ppd", "1"]) == 2
    assert "already in latitude/longitude and keep their grid (drop --ppd)" in capsys.readouterr().err
