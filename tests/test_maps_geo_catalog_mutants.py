"""Known-answer tests for the map recipes, lunar geometry and the data catalogue (mutation review: each test
fails on a mutant of ``workbench/maps.py``, ``workbench/geo.py`` or ``workbench/catalog.py`` that the rest of
the suite let through; three showed defects found on the way, since fixed).

Fast and offline: tiny synthetic grids, manifests built in memory, files under ``tmp_path`` and a fake mirror
folder; no data mirror, no network (``pooch.retrieve`` and ``pip download`` are never reached or are replaced).
Expected values are worked out by hand in the comments (R = 1737.4 km, R^2 = 3 018 558.76 km^2).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import catalog, geo, maps
from workbench.errors import ChecksumError, DatasetNotFoundError, DataUnavailableError, InputError, ManifestError

R_KM = 1737.4
GOOD = b"a,b\n1,2\n"


# ----------------------------------------------------------------------------------------------- geo.py
def test_wrap_lon_180_of_a_scalar_is_half_open_at_plus_180():
    # [-180, 180): 180 E and 540 E are the antimeridian, written -180 like the array path does
    assert geo.wrap_lon_180(180.0) == -180.0 and geo.wrap_lon_180(540.0) == -180.0
    assert geo.wrap_lon_180(-180.0) == -180.0 and geo.wrap_lon_180(179.5) == 179.5


def test_a_descending_global_longitude_vector_is_still_periodic():
    lon = np.arange(179.5, -180.0, -1.0)  # 360 one-degree columns, west-going
    assert lon.size == 360 and geo.is_global_lon(lon)


def test_north_up_flips_rows_south_up_and_takes_longitude_steps_modulo_360():
    da = xr.DataArray(np.arange(4.0).reshape(2, 2), dims=("lat", "lon"),
                      coords={"lat": [-1.0, 1.0], "lon": [179.0, -179.0]})  # east across the seam: ascending
    flips = geo.north_up_flips(da)
    assert flips == {"lat": slice(None, None, -1)}
    up = da.isel(flips)
    assert up["lat"].values.tolist() == [1.0, -1.0] and up.values.tolist() == [[2.0, 3.0], [0.0, 1.0]]
    assert geo.north_up_flips(up) == {}
    west = da.assign_coords(lat=[1.0, -1.0], lon=[-179.0, 179.0])  # a 2 deg step west across the seam
    assert geo.north_up_flips(west) == {"lon": slice(None, None, -1)}


@pytest.mark.parametrize(("lat", "lon", "what"), [([-91.0], [0.0], "latitude"), ([90.1], [0.0], "latitude"),
                                                   ([0.0], [-400.0], "longitude")])
def test_check_latlon_refuses_values_out_of_range_on_either_side(lat, lon, what):
    with pytest.raises(InputError, match=f"{what} out of range"):
        geo.check_latlon(lat, lon)


def test_cell_area_infers_the_cell_size_from_descending_latitudes():
    # 1-degree rows centred on 0.5N and 0.5S: R^2 * (pi/180) * (sin 1 deg - sin 0) = 919.45 km2 each
    cell = 3_018_558.76 * 0.017453293 * 0.017452406
    got = geo.cell_area_km2(np.array([0.5, -0.5]))
    np.testing.assert_allclose(got, [cell, cell], rtol=1e-6)
    assert cell == pytest.approx(919.45, abs=0.01)
    with pytest.raises(InputError, match="needs resolution_ppd"):
        geo.cell_area_km2(np.array([10.0]))


def test_cells_centred_on_the_poles_are_clipped_to_half_cells_not_zero():
    # node-registered 1-degree rows: the cell on 90N spans 89.5..90N only,
    # R^2 * (pi/180) * (1 - sin 89.5 deg) = 52 683.6 * 3.8077e-5 = 2.006 km2 (unclipped: sin 90.5 = sin 89.5 -> 0)
    got = geo.cell_area_km2(np.array([90.0, 0.0, -90.0]), resolution_ppd=1.0)
    half_cap = 3_018_558.76 * 0.017453293 * (1 - 0.99996192)
    assert got[0] == pytest.approx(half_cap, rel=1e-4) and got[2] == pytest.approx(half_cap, rel=1e-4)
    assert got[0] == pytest.approx(2.006, abs=1e-3)


def test_area_weights_of_a_single_column_grid_use_square_cells():
    # one longitude: the cell width is taken equal to the 0.25 deg row spacing,
    # R^2 * (0.25 pi/180) * (sin 0.25 deg - sin 0) = 3 018 558.76 * 0.0043633 * 0.0043633 = 57.47 km2
    col = xr.DataArray(np.zeros((2, 1)), dims=("lat", "lon"), coords={"lat": [0.375, 0.125], "lon": [10.0]})
    w = geo.area_weights(col)
    assert w.dims == ("lat", "lon") and w.attrs["units"] == "km2"
    assert float(w.sel(lat=0.125).item()) == pytest.approx(3_018_558.76 * 0.0043633231 * 0.0043633093, rel=1e-6)


def test_hemisphere_masks_of_a_0_360_grid():
    da = xr.DataArray(np.zeros((2, 4)), dims=("lat", "lon"),
                      coords={"lat": [45.0, -45.0], "lon": [45.0, 135.0, 225.0, 315.0]})
    m = geo.hemisphere_masks(da)
    assert m["near"].isel(lat=0).values.tolist() == [True, False, False, True]  # 315 E is 45 W
    assert m["far"].isel(lat=1).values.tolist() == [False, True, True, False]


def test_the_equator_belongs_to_the_north():
    lat = xr.DataArray([10.0, 0.0, -10.0], dims="lat")
    assert geo.north_mask(lat).values.tolist() == [True, True, False]
    assert geo.south_mask(lat).values.tolist() == [False, False, True]


def test_great_circle_between_points_at_different_latitudes():
    # (60N, 0) and (0, 90E): unit vectors (0.5, 0, 0.866) and (0, 1, 0) are orthogonal -> a quarter circle
    assert geo.great_circle_distance(60.0, 0.0, 0.0, 90.0) == pytest.approx(np.pi / 2 * R_KM, rel=1e-12)
    # (30N, 0) and (60N, 90E): cos c = cos30 cos60 cos90 + sin30 sin60 = 0.4330127 -> c = 64.3411 deg
    # = 64.3411 x 30.32334 km/deg = 1951.04 km
    assert geo.great_circle_distance(30.0, 0.0, 60.0, 90.0) == pytest.approx(1951.04, abs=0.01)


def test_antipodal_distances_are_half_the_circumference_never_nan():
    lat = np.linspace(-89.0, 89.0, 1001)
    d = geo.great_circle_distance(lat, 0.0, -lat, 180.0)  # haversine's a rounds to 1 + 2.2e-16 for some
    assert np.isfinite(d).all()
    np.testing.assert_allclose(d, np.pi * R_KM, rtol=1e-7)


def test_destination_point_wraps_across_the_antimeridian():
    # 20 deg of arc east along the equator from 170E ends at 190E = 170W
    lat, lon = geo.destination_point(0.0, 170.0, 90.0, np.deg2rad(20.0) * R_KM)
    assert float(lat) == pytest.approx(0.0, abs=1e-9) and float(lon) == pytest.approx(-170.0, abs=1e-9)
    # bearing 0 is north, 180 south: 10 deg of arc from (0, 0) along the meridian
    arc = np.deg2rad(10.0) * R_KM
    assert np.allclose(geo.destination_point(0.0, 0.0, 0.0, arc), (10.0, 0.0), atol=1e-9)
    assert np.allclose(geo.destination_point(0.0, 0.0, 180.0, arc), (-10.0, 0.0), atol=1e-9)


def test_annotate_latlon_keeps_a_crs_already_there():
    da = xr.DataArray([1.0], dims="lat", coords={"lat": [0.0]}, attrs={"crs": geo.CRS_EQUIRECTANGULAR})
    out = geo.annotate_latlon(da)
    assert out.attrs["crs"] == "IAU_2015:30110" and out["lat"].attrs["units"] == "degrees_north"
    assert geo.annotate_latlon(da.drop_attrs())["lat"].attrs and geo.annotate_latlon(
        xr.DataArray([1.0], dims="lat", coords={"lat": [0.0]})).attrs["crs"] == "IAU_2015:30100"


def test_check_latlon_refuses_an_infinite_latitude():
    with pytest.raises(InputError, match="latitude out of range"):
        geo.check_latlon([np.inf], [0.0])


def test_north_and_south_masks_accept_a_list_like_the_side_masks():
    assert geo.near_side_mask([10.0, 120.0]).tolist() == [True, False]
    assert np.asarray(geo.north_mask([10.0, -10.0])).tolist() == [True, False]


# ---------------------------------------------------------------------------------------------- maps.py
def _grid(values, lat, lon, name="x", **attrs) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype="float64").reshape(len(lat), len(lon)), dims=("lat", "lon"),
                        coords={"lat": lat, "lon": lon}, name=name, attrs={"units": "m", **attrs})


def _plot_opts(obj) -> dict:
    return obj.opts.get("plot").kwargs


def _global1(**attrs) -> xr.DataArray:
    lat, lon = geo.global_grid(1)
    return _grid(np.zeros(lat.size * lon.size), lat, lon, **attrs)


def test_colour_bar_label_falls_back_to_standard_name_and_accepts_empty_units():
    da = _grid([1.0], [0.5], [0.5], name="v", standard_name="surface_albedo")
    assert maps.colorbar_label(da) == "surface_albedo [m]"
    assert maps.colorbar_label(da.assign_attrs(long_name="Albedo")) == "Albedo [m]"
    assert maps.colorbar_label(da.assign_attrs(units="")) == "surface_albedo"  # '' is a unit (none): no error


def test_default_cmap_reads_units_case_and_space_insensitively():
    assert maps.default_cmap(_grid([1.0], [0.5], [0.5], name="x", units="DN")) == "gray"
    assert maps.default_cmap(_grid([1.0], [0.5], [0.5], name="elevation", units=" KM")) == "gouldian"


def test_a_dataset_is_refused_with_a_hint_to_pick_a_variable():
    ds = _grid([1.0], [0.5], [0.5]).to_dataset()
    with pytest.raises(InputError, match=r"lunar_map needs an xarray.DataArray, got Dataset.*ds\['elevation'\]"):
        maps.lunar_map(ds)


def test_a_singleton_extra_dimension_is_squeezed_not_refused():
    da = _grid(np.arange(4.0), [1.0, 0.0], [0.0, 1.0]).expand_dims(band=[750.0])
    m = maps.lunar_map(da)
    assert [d.name for d in m.kdims] == ["lon", "lat"] and m.data["x"].shape == (2, 2)


@pytest.mark.parametrize("clim", [(float("nan"), 1.0), (0.0, float("inf")), (2.0, 2.0)])
def test_clim_must_be_finite_and_strictly_increasing(clim):
    with pytest.raises(InputError, match="low < high"):
        maps.lunar_map(_grid([0.0, 1.0], [0.5], [0.5, 1.5]), clim=clim)


def test_default_colour_range_known_answers():
    lat, lon = np.arange(9.5, -0.5, -1.0), np.arange(0.5, 20.0, 1.0)  # 10 x 20 = 200 cells, values 0..199
    big = _grid(np.arange(200.0), lat, lon)
    # more than 100 values: 1st/99th percentiles (linear): 0.01 * 199 = 1.99 and 0.99 * 199 = 197.01
    assert _plot_opts(maps.lunar_map(big))["clim"] == pytest.approx((1.99, 197.01))
    small = _grid([0.0, 1.0, 2.0, np.nan, 3.0, np.nan], [0.5, -0.5], [0.5, 1.5, 2.5])
    assert _plot_opts(maps.lunar_map(small))["clim"] == (0.0, 3.0)  # 100 or fewer: min and max, NaN ignored
    flat = _grid([7.0] * 4, [0.5, -0.5], [0.5, 1.5])
    assert _plot_opts(maps.lunar_map(flat))["clim"] == (7.0, 8.0)  # a constant field gets a unit range
    assert _plot_opts(maps.lunar_map(flat * 0, diverging=True))["clim"] == (-1.0, 1.0)
    assert _plot_opts(maps.lunar_map(flat * np.nan))["clim"] == (0.0, 1.0)  # nothing finite to scale to


def test_all_nan_diverging_colour_range_is_symmetric():
    nan = _grid([np.nan] * 4, [0.5, -0.5], [0.5, 1.5])
    lo, hi = _plot_opts(maps.lunar_map(nan, diverging=True))["clim"]
    assert lo == -hi


def test_roll_longitude_sorts_an_unsorted_grid_and_keeps_lon_attrs():
    da = _grid([[1.0, 2.0, 3.0]], [0.0], [10.0, 0.0, -10.0])
    near = maps.roll_longitude(da, "near")
    assert near["lon"].values.tolist() == [-10.0, 0.0, 10.0] and near.values.tolist() == [[3.0, 2.0, 1.0]]
    g = geo.annotate_latlon(_grid([[1.0, 2.0]], [0.0], [-90.0, 90.0]))
    far = maps.roll_longitude(g, "far")
    assert far["lon"].values.tolist() == [90.0, 270.0] and far["lon"].attrs["units"] == "degrees_east"


def test_two_by_two_regional_map_extent_is_half_a_cell_beyond_the_centres():
    da = _grid(np.arange(4.0), [20.125, 19.875], [10.0, 10.25])
    o = _plot_opts(maps.lunar_map(da))
    assert o["xlim"] == pytest.approx((9.875, 10.375)) and o["ylim"] == pytest.approx((19.75, 20.25))
    # a regional map's axes get the adaptive degree ticker (30/15/10/3°…), not the global map's fixed 30° list
    for t in (o["xticks"], o["yticks"]):
        assert type(t).__name__ == "AdaptiveTicker" and list(t.mantissas) == [1.0, 1.5, 3.0]


def test_global_map_ticks_every_30_degrees_in_either_centring():
    o = _plot_opts(maps.lunar_map(_global1()))
    assert o["xticks"] == [-180.0 + 30 * i for i in range(13)] and o["yticks"] == list(range(-90, 91, 30))
    assert _plot_opts(maps.lunar_map(_global1(), centre="far"))["xticks"] == [30.0 * i for i in range(13)]


def test_rasterise_only_above_the_threshold():
    at = xr.DataArray(np.broadcast_to(np.float32(0), (1000, 2000)), dims=("lat", "lon"))
    assert at.size == maps.RASTERIZE_ABOVE_PIXELS and maps._should_rasterize(at, None) is False
    above = xr.DataArray(np.broadcast_to(np.float32(0), (1000, 2001)), dims=("lat", "lon"))
    assert maps._should_rasterize(above, None) is True and maps._should_rasterize(above, False) is False


def test_hover_title_and_transparent_nan_options():
    da = _grid(np.arange(4.0), [0.5, -0.5], [0.5, 1.5], name="feo", long_name="FeO abundance")
    o = _plot_opts(maps.lunar_map(da, hover=False))
    assert o["tools"] == [] and o["title"] == "FeO abundance" and o["clipping_colors"] == {"NaN": "#00000000"}
    o = _plot_opts(maps.lunar_map(da, title="mine"))
    assert o["tools"] == ["hover"] and o["title"] == "mine"


def _polar(n=64, **attrs):
    x = -609_600 + 19_050 * (np.arange(n) + 0.5)
    return xr.DataArray(np.linspace(-50, 50, n * n).reshape(n, n).astype("float32"), dims=("y", "x"),
                        coords={"y": x[::-1], "x": x}, name="elevation", attrs={"units": "m", **attrs})


def test_polar_graticule_ring_radii_and_meridians():
    import holoviews as hv

    m = maps.polar_map(_polar(crs=geo.CRS_SOUTH_POLAR))
    (path,) = [el for el in m if isinstance(el, hv.Path)]
    paths = path.split()
    # rings r = 2R tan(colat/2) up to 1.5 x 609.6 km: colat 5..25 (30 deg gives 931.1 km > 914.4), then
    # 12 meridians every 30 deg
    assert len(paths) == 5 + 12
    radii = [float(np.hypot(p.dimension_values("x"), p.dimension_values("y")).max()) for p in paths[:5]]
    # 2 x 1737.4 x tan(2.5 deg) = 3474.8 x 0.0436609 = 151.71; tan(7.5 deg) = 0.1316525 -> 457.46
    assert radii[0] == pytest.approx(151.71, abs=0.02) and radii[2] == pytest.approx(457.46, abs=0.02)
    img = m.get(0)
    assert img.range("y") == pytest.approx((-609.6, 609.6), abs=1e-3)  # metres shown as km on both axes


def test_polar_map_without_crs_labels_rings_from_the_pole_and_honours_clim():
    import holoviews as hv

    m = maps.polar_map(_polar(), clim=(-100.0, 100.0))
    (labels,) = [el for el in m if isinstance(el, hv.Labels)]
    assert list(labels.dimension_values("latitude"))[:2] == ["5° from pole", "10° from pole"]
    assert _plot_opts(m.get(0))["clim"] == (-100.0, 100.0)


def test_polar_pole_from_a_grid_mapping_named_coordinate_and_cf_attributes():
    base = _polar(n=4)
    cf = {"grid_mapping_name": "polar_stereographic", "latitude_of_projection_origin": 90.0}
    da = base.assign_coords(stereo=xr.DataArray(0, attrs=cf)).assign_attrs(grid_mapping="stereo")
    assert maps.polar_pole(da) == "N"  # found through attrs["grid_mapping"] (no WKT attribute at all)
    south = base.assign_coords(stereo=xr.DataArray(0, attrs={**cf, "latitude_of_projection_origin": -90.0}))
    assert maps.polar_pole(south.assign_attrs(grid_mapping="stereo")) == "S"
    tm = {"grid_mapping_name": "transverse_mercator", "latitude_of_projection_origin": 45.0}
    other = base.assign_coords(stereo=xr.DataArray(0, attrs=tm)).assign_attrs(grid_mapping="stereo")
    assert maps.polar_pole(other) is None  # not a polar projection: no pole, whatever its origin


def test_sites_overlay_refuses_an_unknown_centre_and_labels_sites():
    import holoviews as hv

    df = pd.DataFrame({"site": ["Apollo 11", "Luna 16"], "lat": [0.67, -0.68], "lon": [23.47, 56.30]})
    with pytest.raises(InputError, match="centre must be 'near' or 'far'"):
        maps.sites_overlay(df, centre="middle")
    ov = maps.sites_overlay(df, label_sites=True)
    assert isinstance(ov, hv.Overlay)
    (labels,) = [el for el in ov if isinstance(el, hv.Labels)]
    assert list(labels.dimension_values("site")) == ["Apollo 11", "Luna 16"]


def _sfd(units="1/(1e6 km2)"):
    return xr.Dataset(
        {"count": (("region", "diameter_km"), [[5, 2]]),
         "cumulative_density": (("region", "diameter_km"), [[50.0, 20.0]], {"units": units}),
         "ci_low": (("region", "diameter_km"), [[16.0, 2.4]]),
         "ci_high": (("region", "diameter_km"), [[117.0, 72.0]])},
        coords={"region": ["near"], "diameter_km": [20.0, 40.0]})


def test_sfd_plot_upper_band_units_and_log_axes():
    import holoviews as hv

    p = maps.sfd_plot(_sfd(), regions=("near",))
    (spread,) = [el for el in p if isinstance(el, hv.Spread)]
    np.testing.assert_allclose(spread.dimension_values(3), [117.0 - 50.0, 72.0 - 20.0])  # upper error hi - y
    o = _plot_opts(p)
    assert o["logx"] is True and o["logy"] is True
    (curve,) = [el for el in maps.sfd_plot(_sfd("1/km2"), regions=("near",)) if isinstance(el, hv.Curve)]
    assert curve.vdims[0].name == "N(≥D) (1/km2)" and curve.kdims[0].name == "diameter (km)"


def test_side_by_side_puts_every_map_in_one_row_by_default():
    from bokeh.models import GridPlot

    m = maps.lunar_map(_grid(np.arange(4.0), [0.5, -0.5], [0.5, 1.5]))
    grid = maps.render_bokeh(maps.side_by_side(m, m, m)).select_one({"type": GridPlot})
    assert sorted((r, c) for _, r, c in grid.children) == [(0, 0), (0, 1), (0, 2)]


# ------------------------------------------------------------------------------------------- catalog.py
def _mdict(sources, **extra) -> dict:
    d = {"id": "tiny", "title": "t", "description": "d", "kind": "table", "provider": "p", "citation": "c",
         "licence": "l", "crs": "IAU_2015:30100", "reader": "csv",
         "files": [{"name": "f.csv", "sha256": hashlib.sha256(GOOD).hexdigest(), "size": len(GOOD),
                    "sources": sources}]}
    return {**d, **extra}


def _manifest(sources, **extra) -> catalog.Manifest:
    return catalog.Manifest.model_validate(_mdict(sources, **extra))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"sources": [{}]}, "files.0.sources.0", "exactly one of mirror/repo/wheel/url"),
    ({"sources": [{"url": "ftp://example.invalid/f.csv"}]}, "files.0.sources.0", "url must be http"),
    ({"sources": [{"repo": "../outside.csv"}]}, "files.0.sources.0", "relative and stay inside"),
    ({"sources": [{"repo": "/etc/passwd"}]}, "files.0.sources.0", "relative and stay inside"),
    ({"name": "sub\\f.csv"}, "files.0.name", "plain name"),
    ({"size": 0}, "files.0.size", "greater than 0"),
    ({"sources": []}, "files.0.sources", "at least 1"),
])
def test_file_entries_and_sources_are_validated(change, field, message):
    d = _mdict([{"mirror": "f.csv"}])
    d["files"][0].update(change)
    import yaml

    with pytest.raises(ManifestError, match=rf"x.yaml: invalid manifest: field '{field}'.*{message}"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="x.yaml")


@pytest.mark.parametrize(("extra", "message"), [
    ({"reader": "image", "kind": "raster", "grid": {"bounds": [0.0, -90.0, 360.0]}}, "grid.bounds"),
    ({"reader": "sqlite"}, "needs 'table'"),
])
def test_reader_specific_fields_are_required(extra, message):
    with pytest.raises(ValueError, match=message):
        _manifest([{"mirror": "f.csv"}], **extra)


def test_manifest_text_must_be_a_mapping_and_its_id_the_file_name(tmp_path):
    import yaml

    with pytest.raises(ManifestError, match="m.yaml: a manifest must be a YAML mapping, got list"):
        catalog.parse_manifest("- a\n- b\n", origin="m.yaml")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(_mdict([{"mirror": "f.csv"}])))
    with pytest.raises(ManifestError, match="field 'id' is 'tiny' but the file is named 'other'"):
        catalog.load_manifest(tmp_path / "other.yaml")


def test_blank_entries_of_workbench_manifests_do_not_mean_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text("id: broken\n")  # would fail the schema if it were read
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_MANIFESTS", f"{os.pathsep} {os.pathsep}")
    assert catalog.manifest_dirs() == [catalog.MANIFEST_DIR]
    assert "broken" not in catalog.manifests()


def test_mirror_lookup_falls_back_to_the_plain_name_and_to_later_mirror_folders(tmp_path, cache, monkeypatch):
    first, second = tmp_path / "m1", tmp_path / "m2"
    first.mkdir()
    second.mkdir()
    (second / "f.csv").write_bytes(GOOD)  # flat copy, not under the manifest's sub/ path
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", f"{first}{os.pathsep}{second}")
    m = _manifest([{"mirror": "sub/f.csv"}])
    assert catalog.fetch_file(m, m.files[0]) == second / "f.csv"


def test_list_datasets_and_verify_cover_every_manifest(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(GOOD)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    synth = catalog.Manifest.model_validate({**_mdict([]), "id": "synth", "kind": "synthetic",
                                             "reader": "synthetic", "files": []})
    both = {"tiny": _manifest([{"mirror": "f.csv"}]), "synth": synth}
    monkeypatch.setattr(catalog, "manifests", lambda: both)
    table = catalog.list_datasets()
    assert table.loc["tiny", "cached"] and table.loc["synth", "cached"]  # a mirror copy counts as local
    rows = catalog.verify()
    assert rows[["id", "file", "ok"]].values.tolist() == [["tiny", "f.csv", True]]
    assert rows["path"].tolist() == [str(tmp_path / "mirror" / "f.csv")] and rows["error"].tolist() == [""]


def test_verify_reports_a_bad_mirror_copy_as_a_failed_row_not_an_exception(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(b"a,b\n1,3\n")
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    m = _manifest([{"mirror": "f.csv"}])
    monkeypatch.setattr(catalog, "get_manifest", lambda i: m)
    (row,) = catalog.verify("tiny").itertuples()
    assert not row.ok and row.path == "" and "is present but has sha256" in row.error and "\n" not in row.error


def test_pip_error_is_the_last_error_line():
    assert catalog._pip_error("Looking in indexes\nERROR: first\nmore\nERROR: No matching distribution\n") == \
        "No matching distribution"
    assert catalog._pip_error("just a line\nlast line\n") == "last line"
    assert catalog._pip_error("") == "no output"


def test_repo_source_is_used_only_when_its_hash_matches(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(catalog, "REPO_ROOT", tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.csv").write_bytes(b"a,b\n1,3\n")  # same size, other content
    m = _manifest([{"repo": "data/f.csv"}])
    with pytest.raises(ChecksumError, match="no source gave a file with the expected sha256"):
        catalog.fetch_file(m, m.files[0])
    (tmp_path / "data" / "f.csv").write_bytes(GOOD)
    assert catalog.fetch_file(m, m.files[0]) == tmp_path / "data" / "f.csv"


def test_a_failed_download_falls_through_to_the_next_source(tmp_path, cache, monkeypatch):
    import pooch

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(pooch, "retrieve", offline)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(GOOD)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    m = _manifest([{"url": "https://example.invalid/f.csv"}, {"mirror": "f.csv"}])
    assert catalog.fetch_file(m, m.files[0]) == tmp_path / "mirror" / "f.csv"
    with pytest.raises(DataUnavailableError, match="download of https://example.invalid/f.csv failed: offline"):
        catalog.fetch_file(m2 := _manifest([{"url": "https://example.invalid/f.csv"}]), m2.files[0])


def test_unavailable_note_forgets_the_reason_once_the_dataset_is_available(tmp_path, cache, monkeypatch):
    m = _manifest([{"mirror": "f.csv"}])
    monkeypatch.setattr(catalog, "get_manifest", lambda i: m)
    assert catalog.available("tiny") is False
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(GOOD)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    assert catalog.available("tiny") is True
    assert catalog.unavailable_note("tiny") == "tiny: available now (re-run this section)"


def test_offset_alone_is_applied():
    out = catalog._apply_scale(np.array([[10, 0]], dtype=np.int16), catalog.Variable(units="m", offset=-100.0))
    np.testing.assert_array_equal(out, [[-90.0, -100.0]])


def _raster(crs="IAU_2015:30100"):
    return _manifest([{"mirror": "f.tif"}], kind="raster", reader="geotiff", crs=crs,
                     variables={"v": {"units": "DN"}})


def test_a_raster_wholly_east_of_180_is_given_negative_longitudes():
    # two columns over 200..280 E: centres 220 and 260 E = 140 W and 100 W, order kept; rows north first
    ds = catalog._raster_to_dataset(np.array([[1, 2], [3, 4]], dtype="uint8"), _raster(), (200.0, -10.0, 280.0, 10.0))
    np.testing.assert_allclose(ds["lon"], [-140.0, -100.0])
    assert ds["v"].values.tolist() == [[1.0, 2.0], [3.0, 4.0]] and ds["lat"].values.tolist() == [5.0, -5.0]


def test_a_regional_raster_across_180_keeps_contiguous_0_360_longitudes():
    # 90..270 E in 4 columns: 112.5, 157.5, 202.5, 247.5 -- wrapping only part would split the tile in two
    ds = catalog._raster_to_dataset(np.arange(4, dtype="uint8").reshape(1, 4), _raster(), (90.0, -10.0, 270.0, 10.0))
    np.testing.assert_allclose(ds["lon"], [112.5, 157.5, 202.5, 247.5])
    assert ds["v"].values.tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_polar_raster_rows_run_north_to_south_in_metres():
    ds = catalog._raster_to_dataset(np.array([[1, 2], [3, 4]], dtype="uint8"), _raster("IAU_2015:30135"),
                                    (-100.0, -100.0, 100.0, 100.0))
    assert ds["v"].dims == ("y", "x")
    assert ds["y"].values.tolist() == [50.0, -50.0] and ds["x"].values.tolist() == [-50.0, 50.0]
    assert ds["x"].attrs["units"] == "m" and ds.attrs["pixel_size"] == 100.0 and ds.attrs["crs"] == "IAU_2015:30135"


def test_table_reader_drops_and_renames_columns_and_keeps_band_metadata(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_bytes(b",name,junk,R750\n0,X,1,0.2\n")  # a saved pandas index: an 'Unnamed: 0' column
    m = _manifest([{"mirror": "f.csv"}], drop_columns=["junk"], columns={"name": "site"},
                  bands=[{"name": "R750", "center_nm": 750.0, "fwhm_nm": 10.0}])
    df = catalog._read_table(m, csv)
    assert list(df.columns) == ["site", "R750"]
    assert df.attrs["bands"] == [{"name": "R750", "center_nm": 750.0, "fwhm_nm": 10.0}]


def test_lon_from_lon_360_keeps_eastern_longitudes_positive(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_bytes(b"name,lon_360\nA,10.0\nB,180.0\nC,359.5\n")
    df = catalog._read_table(_manifest([{"mirror": "f.csv"}]), csv)
    assert df["lon"].tolist() == [10.0, -180.0, -0.5]


def test_manifest_crs_must_be_a_lunar_iau_code():
    with pytest.raises(ValueError, match="crs"):
        _manifest([{"mirror": "f.csv"}], crs="EPSG:4326")
    assert _manifest([{"mirror": "f.csv"}], crs="IAU_2015:30135").crs == "IAU_2015:30135"


def test_open_table_refuses_a_raster_dataset(monkeypatch):
    monkeypatch.setattr(catalog, "get_manifest", lambda i: _raster())
    with pytest.raises(DatasetNotFoundError, match="'tiny' is a raster dataset; open it with workbench.open_dataset"):
        catalog.open_table("tiny")
