"""Tests for workbench.maps: HoloViews objects, kdims, units on colour bars, far-side centring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import maps
from workbench.errors import InputError
from workbench.geo import global_grid


def _global(ppd: float = 1.0, name: str = "elevation", units: str | None = "m") -> xr.DataArray:
    lat, lon = global_grid(ppd)
    rng = np.random.default_rng(0)
    attrs = {"long_name": "LOLA elevation"}
    if units is not None:
        attrs["units"] = units
    # value = longitude, so we can check where each longitude lands after rolling
    data = np.broadcast_to(lon, (lat.size, lon.size)) + 0.01 * rng.standard_normal((lat.size, lon.size))
    return xr.DataArray(data.astype("float32"), dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                        name=name, attrs=attrs)


def test_lunar_map_is_image_with_lon_lat_kdims_and_units_on_colorbar():
    import holoviews as hv

    m = maps.lunar_map(_global())
    assert isinstance(m, hv.Image)
    assert [d.name for d in m.kdims] == ["lon", "lat"]
    fig = maps.render_bokeh(m)
    assert fig.right[0].title == "LOLA elevation [m]"
    assert "[m]" in maps.colorbar_label(_global())
    assert (fig.x_range.start, fig.x_range.end) == (-180.0, 180.0)


def test_missing_units_is_refused_with_fix():
    with pytest.raises(InputError, match="attrs\\['units'\\]"):
        maps.lunar_map(_global(units=None))


def test_far_side_centring_puts_180_in_the_middle():
    da = _global(1.0)
    m = maps.lunar_map(da, centre="far")
    lon = m.data["lon"].values
    assert lon.min() > 0 and lon.max() < 360 and np.all(np.diff(lon) > 0)
    mid = lon.size // 2
    assert abs(lon[mid - 1] - 179.5) < 1e-9 and abs(lon[mid] - 180.5) < 1e-9
    # values travel with their longitudes: value == original lon (−180…180)
    vals = m.data["elevation"].values[0] if "elevation" in m.data else m.data[m.vdims[0].name].values[0]
    assert np.allclose(((lon + 180) % 360) - 180, vals, atol=0.1)
    fig = maps.render_bokeh(m)
    assert (fig.x_range.start + fig.x_range.end) / 2 == 180.0


def test_near_side_accepts_0_360_input():
    da = maps.roll_longitude(_global(1.0), "far")
    back = maps.roll_longitude(da, "near")
    assert back["lon"].values[0] == -179.5 and back["lon"].values[-1] == 179.5


def test_rasterize_kicks_in_for_big_arrays_only():
    import holoviews as hv

    small = maps.lunar_map(_global(1.0))
    assert isinstance(small, hv.Image)
    big = _global(1.0)
    assert big.size < maps.RASTERIZE_ABOVE_PIXELS
    lat, lon = global_grid(6)  # 2160 x 1080 = 2.33 Mpix
    bigger = xr.DataArray(np.zeros((lat.size, lon.size), "float32"), dims=("lat", "lon"),
                          coords={"lat": lat, "lon": lon}, name="x", attrs={"units": "1"})
    r = maps.lunar_map(bigger)
    assert isinstance(r, hv.DynamicMap)
    assert isinstance(maps.lunar_map(bigger, rasterize=False), hv.Image)
    assert isinstance(maps.lunar_map(_global(1.0), rasterize=True), hv.DynamicMap)


def test_default_colormaps_are_perceptual():
    assert maps.default_cmap(_global()) == "gouldian"
    wac = _global(name="brightness", units="DN")
    assert maps.default_cmap(wac) == "gray"
    assert maps.default_cmap(_global(name="FeO", units="wt%")) == "cividis"
    # dimensionless quantities are not imagery unless named so
    assert maps.default_cmap(_global(name="mg_number", units="1")) == "cividis"
    assert maps.default_cmap(_global(name="maturity", units="1")) == "cividis"
    i_f = _global(name="x", units="1").assign_attrs(long_name="radiance factor I/F")
    assert maps.default_cmap(i_f) == "gray"


def test_bad_clim_and_dims():
    with pytest.raises(InputError, match="low < high"):
        maps.lunar_map(_global(), clim=(5, 1))
    with pytest.raises(InputError, match="dims"):
        maps.lunar_map(_global().rename(lat="y"))


def test_diverging_colour_range_is_symmetric_about_zero_from_the_larger_end():
    """Default colour range of a diverging map: the 1st and 99th percentiles (-5 and 1 here: 10 % of the cells
    at -5, 80 % at 0, 10 % at 1) widened to be symmetric about 0 by the larger magnitude: (-5, 5), not (-1, 1)."""
    lat, lon = global_grid(1)
    v = np.zeros(lat.size * lon.size)
    v[: v.size // 10], v[-(v.size // 10):] = -5.0, 1.0
    da = xr.DataArray(v.reshape(lat.size, lon.size), dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                      name="residual", attrs={"units": "m"})
    m = maps.lunar_map(da, diverging=True)
    assert m.opts.get("plot").kwargs["clim"] == (-5.0, 5.0)
    assert maps.lunar_map(da).opts.get("plot").kwargs["clim"] == (-5.0, 1.0)


def test_an_equalised_map_spans_the_whole_range_with_eq_hist_colours():
    """Half the cells 0, the rest 1…100 with one cell at 1000: the default range (1st–99th percentile)
    would end near 99 and leave the 1000 outside; equalised, the range is 0…1000 and the colours eq_hist.
    A given ``clim`` is kept."""
    lat, lon = global_grid(1)
    v = np.zeros(lat.size * lon.size)
    v[v.size // 2:] = np.linspace(1.0, 100.0, v.size - v.size // 2)
    v[-1] = 1000.0
    da = xr.DataArray(v.reshape(lat.size, lon.size), dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                      name="score", attrs={"units": "1"})
    kw = maps.lunar_map(da, equalise=True).opts.get("plot").kwargs
    assert kw["clim"] == (0.0, 1000.0) and kw["cnorm"] == "eq_hist"
    kw = maps.lunar_map(da).opts.get("plot").kwargs
    assert kw["clim"][1] < 100.0 and kw["cnorm"] == "linear"
    assert maps.lunar_map(da, clim=(0, 5), equalise=True).opts.get("plot").kwargs["clim"] == (0.0, 5.0)


def test_an_area_equalised_map_colours_by_share_of_area_and_names_values_on_its_bar():
    """The value is the latitude on a global 1 px/deg grid: 50 (1 + sin lat) % of the area lies south of a
    latitude, so the colour bar names the band holding asin(0.8) = 53.1 deg at 90 % and asin(0.98) = 78.5 deg at
    99 % (a pixel count would put 90 % at 72 deg); the image holds the area rank, the hover the value too; NaN
    stays NaN."""
    lat, lon = global_grid(1)
    da = xr.DataArray(np.repeat(lat[:, None], lon.size, axis=1), dims=("lat", "lon"),
                      coords={"lat": lat, "lon": lon}, name="score", attrs={"units": "deg"})
    da[0, 0] = np.nan
    m = maps.lunar_map(da, equalise="area", rasterize=False)
    kw = m.opts.get("plot").kwargs
    assert kw["clim"] == (0.0, 100.0) and kw["cnorm"] == "linear" and "share of area" in kw["clabel"]
    labels = kw["colorbar_opts"]["major_label_overrides"]
    assert sorted(labels) == [0.0, 50.0, 90.0, 99.0]
    assert [labels[p] for p in (0.0, 90.0, 99.0)] == ["-89.5", "53.5", "78.5"]  # 53.13 lies in the 53.5 band
    assert float(labels[50.0]) == pytest.approx(0.0, abs=0.01)  # the equator (one NaN pixel moves it a hair)
    assert [d.name for d in m.vdims] == ["area_rank", "score"]
    rank = m.dimension_values("area_rank", flat=False)
    assert np.isnan(rank).sum() == 1 and np.nanmax(rank) < 100.0 and np.nanmin(rank) > 0.0
    assert [d.name for d in maps.lunar_map(da, equalise="area", rasterize=True)[()].vdims] == ["area_rank"]
    with pytest.raises(InputError, match="clim does not apply to area-equalised colours"):
        maps.lunar_map(da, equalise="area", clim=(0, 1))
    with pytest.raises(InputError, match="equalise must be False, True/'pixels' or 'area', got 'areas'"):
        maps.lunar_map(da, equalise="areas")
    assert maps.lunar_map(da, equalise="pixels").opts.get("plot").kwargs["cnorm"] == "eq_hist"


def test_polar_map_axes_in_km_and_graticule():
    import holoviews as hv

    x = -609_600 + 19_050 * (np.arange(64) + 0.5)  # pixel centres, 19.05 km pixels
    da = xr.DataArray(np.zeros((64, 64), "float32"), dims=("y", "x"), coords={"y": x[::-1], "x": x},
                      name="elevation", attrs={"units": "m", "crs": "IAU_2015:30135"})
    m = maps.polar_map(da)
    assert isinstance(m, hv.Overlay)
    img = m.get(0)
    assert [d.name for d in img.kdims] == ["x", "y"]
    assert img.range("x")[1] == pytest.approx(609.6, abs=1)
    fig = maps.render_bokeh(m)
    assert fig.right[0].title == "elevation [m]"
    # the rings are labelled in degrees (they used to be unlabelled: the map could not be read in latitude)
    labels = [el for el in m if isinstance(el, hv.Labels)][0]
    assert list(labels.dimension_values("latitude")) == ["85°S", "80°S", "75°S", "70°S", "65°S"]


def test_polar_map_labels_the_meridians_where_they_lie():
    """Half-width 609.6 km, labels at 0.9 of it (548.64 km) along the larger axis: on a south-polar map 0° is
    at the top, 90°E on the right, 180° at the bottom and 90°W on the left; 30°E lies where
    y = 548.64 km, x = 548.64 tan 30° = 316.76 km. A north-polar map has 0° at the bottom (Snyder 1987)."""
    import holoviews as hv

    x = -609_600 + 19_050 * (np.arange(64) + 0.5)

    def meridians(crs):
        da = xr.DataArray(np.zeros((64, 64), "float32"), dims=("y", "x"), coords={"y": x[::-1], "x": x},
                          name="elevation", attrs={"units": "m", "crs": crs})
        (lab,) = [el for el in maps.polar_map(da) if isinstance(el, hv.Labels) and "longitude" in el]
        return {t: (round(a, 2), round(b, 2)) for a, b, t in zip(lab.dimension_values("x"), lab.dimension_values("y"),
                                                                  lab.dimension_values("longitude"), strict=True)}

    rmax = x.max() / 1000  # the half-width polar_map takes: the outermost pixel centre, 600.075 km
    d = round(0.9 * rmax, 2)
    south = meridians("IAU_2015:30135")
    assert len(south) == 12 and south["0°"] == (0.0, d) and south["90°E"] == (d, 0.0)
    assert south["180°"] == (0.0, -d) and south["90°W"] == (-d, 0.0)
    assert south["30°E"] == (round(0.9 * rmax * np.tan(np.deg2rad(30)), 2), d)
    assert south["120°W"] == (-d, round(-0.9 * rmax * np.tan(np.deg2rad(30)), 2))
    north = meridians("IAU_2015:30130")
    assert north["0°"] == (0.0, -d) and north["90°E"] == (d, 0.0) and north["30°E"][1] == -d
    # without a CRS the orientation is unknown: no meridian labels
    da = xr.DataArray(np.zeros((4, 4), "float32"), dims=("y", "x"), coords={"y": x[:4], "x": x[:4]},
                      name="elevation", attrs={"units": "m"})
    assert not [el for el in maps.polar_map(da) if isinstance(el, hv.Labels) and "longitude" in el]


def test_site_labels_keep_apart_and_on_the_map():
    """Apollo 12 and 14 lie 6° apart (12 px on a 720 px map): the names would overlap written side by side
    at the same height; Luna 16 and 20 lie 4.3° apart in latitude. On the far-side-centred map Apollo 12 and
    14 sit at 336.6 and 342.5 °E, too near the right edge for a name written to their right."""
    import holoviews as hv

    df = pd.DataFrame({"site": ["Apollo 12", "Apollo 14", "Luna 16", "Luna 20"],
                       "lat": [-3.01, -3.65, -0.51, 3.79], "lon": [-23.42, -17.47, 56.36, 56.62]})

    def boxes(centre):
        ov = maps.sites_overlay(df, centre=centre, label_sites=True)
        (lab,) = [el for el in ov if isinstance(el, hv.Labels)]
        out = []
        for x, y, name, align in zip(*(lab.dimension_values(k) for k in ("lon", "lat", "site", "align")), strict=True):
            w, h = len(name) * 3.0, 5.5  # 6 px a character, 11 px a line, at 2 px per degree
            x0 = x if align == "left" else x - w
            out.append((x0, x0 + w, y - h / 2, y + h / 2))
        return out

    for centre, xlim in (("near", (-180, 180)), ("far", (0, 360))):
        b = boxes(centre)
        assert all(xlim[0] <= x0 and x1 <= xlim[1] for x0, x1, _, _ in b)
        for i in range(len(b)):
            for j in range(i):
                assert not (b[i][0] < b[j][1] and b[j][0] < b[i][1] and b[i][2] < b[j][3] and b[j][2] < b[i][3])
    for bad in (0, -720, float("nan")):
        with pytest.raises(InputError, match="map_width must be the map's width in screen pixels"):
            maps.sites_overlay(df, label_sites=True, map_width=bad)
    # a lone site is written to its right, at its own height, 6.5 px (3.25°) from its centre
    ov = maps.sites_overlay(df.iloc[:1], label_sites=True)
    (lab,) = [el for el in ov if isinstance(el, hv.Labels)]
    assert (lab.dimension_values("lon")[0], lab.dimension_values("lat")[0]) == pytest.approx((-20.17, -3.01))
    assert lab.dimension_values("align")[0] == "left"


def test_polar_map_reads_the_pole_from_the_spatial_ref_coordinate_of_catalogue_data():
    import holoviews as hv
    import rioxarray  # noqa: F401

    from workbench.geo import CRS_NORTH_POLAR, CRS_SOUTH_POLAR

    x = -609_600 + 19_050 * (np.arange(64) + 0.5)

    def ring_labels(crs):
        # as workbench.open_dataset builds a polar raster: rio.write_crs on the Dataset, no attrs["crs"] on the
        # variable (only the Dataset keeps one), so a DataArray taken from it has only the spatial_ref coordinate
        ds = xr.Dataset({"elevation": (("y", "x"), np.zeros((64, 64), "float32"), {"units": "m"})},
                        coords={"y": x[::-1], "x": x})
        ds = ds.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs(crs)
        da = ds["elevation"]
        assert "crs" not in da.attrs and "spatial_ref" in da.coords
        m = maps.polar_map(da)
        labels = [el for el in m if isinstance(el, hv.Labels)][0]
        return list(labels.dimension_values("latitude"))

    assert ring_labels(CRS_SOUTH_POLAR)[:2] == ["85°S", "80°S"]
    assert ring_labels(CRS_NORTH_POLAR)[:2] == ["85°N", "80°N"]
    # only the CF attributes (no WKT): the pole from the standard parallel
    da = xr.DataArray(np.zeros((4, 4), "float32"), dims=("y", "x"), coords={"y": x[:4], "x": x[:4]},
                      attrs={"units": "m"})
    da = da.assign_coords(spatial_ref=xr.DataArray(0, attrs={"grid_mapping_name": "polar_stereographic",
                                                                "standard_parallel": -90.0, "spatial_ref": "x"}))
    assert maps.polar_pole(da) == "S"
    assert maps.polar_pole(da.drop_vars("spatial_ref")) is None


def test_image_map_and_side_by_side_share_axes():
    import holoviews as hv

    y = np.arange(32.0)[::-1] * 10
    tile = xr.DataArray(np.zeros((32, 32), "float32"), dims=("y", "x"), coords={"y": y, "x": y[::-1]},
                        name="height", attrs={"units": "m"})
    assert isinstance(maps.image_map(tile), hv.Image)
    lay = maps.side_by_side(maps.lunar_map(_global()), maps.lunar_map(_global(name="b", units="1")))
    from bokeh.plotting import figure

    figs = list(maps.render_bokeh(lay).select({"type": figure}))
    assert len(figs) == 2 and figs[0].x_range is figs[1].x_range  # linked pan/zoom


def test_sites_overlay_hover_and_wrapping():
    import holoviews as hv
    from bokeh.models import HoverTool

    df = pd.DataFrame({"site": ["Apollo 11", "Chang'e-6"], "lat": [0.67, -41.64], "lon": [23.47, 206.01],
                       "FeO": [15.8, 17.0], "TiO2": [7.5, np.nan]})
    pts = maps.sites_overlay(df)
    assert isinstance(pts, hv.Points)
    assert pts.data["lon"].between(-180, 180).all()
    assert pts.data["lon"].iloc[1] == pytest.approx(206.01 - 360)
    far = maps.sites_overlay(df, centre="far")
    assert far.data["lon"].iloc[1] == pytest.approx(206.01)
    fig = maps.render_bokeh(pts)
    tips = dict(fig.select_one({"type": HoverTool}).tooltips)
    assert tips["site"] == "@site" and "FeO (wt%)" in tips
    with pytest.raises(InputError, match="site"):
        maps.sites_overlay(df.drop(columns="site"))


def test_regional_map_keeps_its_own_extent():
    da = _global(4.0).sel(lat=slice(30, 10), lon=slice(-40, -10))
    fig = maps.render_bokeh(maps.lunar_map(da))
    assert fig.x_range.start == pytest.approx(-40.0) and fig.x_range.end == pytest.approx(-10.0)
    assert fig.y_range.start == pytest.approx(10.0) and fig.y_range.end == pytest.approx(30.0)


def test_a_regional_map_ticks_its_degrees_at_multiples_of_30_15_10_not_50():
    from bokeh.models import AdaptiveTicker

    da = _global(1.0).sel(lat=slice(60, -60), lon=slice(-90, 90))  # notebook 01's region
    fig = maps.render_bokeh(maps.lunar_map(da))
    for axis in (fig.xaxis[0], fig.yaxis[0]):  # Bokeh's default would tick -90..90 every 50 degrees
        assert isinstance(axis.ticker, AdaptiveTicker) and list(axis.ticker.mantissas) == [1.0, 1.5, 3.0]
        assert axis.ticker.base == 10
    # a global axis keeps its fixed 30-degree ticks
    ticks = maps.render_bokeh(maps.lunar_map(_global(1.0))).xaxis[0].ticker.ticks
    assert list(ticks) == [-180.0 + 30 * i for i in range(13)]


def test_sfd_plot_draws_each_region_with_its_band_and_units():
    import holoviews as hv

    d = np.array([20.0, 28.3, 40.0])
    sfd = xr.Dataset(
        {"count": (("region", "diameter_km"), [[5, 2, 0], [9, 4, 1]]),
         "cumulative_density": (("region", "diameter_km"), [[50.0, 20.0, 0.0], [90.0, 40.0, 10.0]],
                                {"units": "1/(1e6 km2)"}),
         "ci_low": (("region", "diameter_km"), [[16.0, 2.4, 0.0], [41.0, 10.9, 0.3]]),
         "ci_high": (("region", "diameter_km"), [[117.0, 72.0, 36.9], [171.0, 102.0, 55.7]])},
        coords={"region": ["near", "far"], "diameter_km": ("diameter_km", d, {"units": "km"})})
    p = maps.sfd_plot(sfd, "test")
    assert isinstance(p, hv.Overlay)
    curves = [el for el in p if isinstance(el, hv.Curve)]
    spreads = [el for el in p if isinstance(el, hv.Spread)]
    assert [c.label for c in curves] == ["near", "far"] and len(spreads) == 2
    assert len(curves[0]) == 2 and len(curves[1]) == 3  # a diameter with no crater is left off the log axes
    assert curves[0].kdims[0].name == "diameter (km)" and curves[0].vdims[0].name == "N(≥D) per 10⁶ km²"
    np.testing.assert_allclose(spreads[0].dimension_values(2), [50.0 - 16.0, 20.0 - 2.4])  # lower error
    maps.render_bokeh(p + maps.sfd_plot(sfd, regions=("far",)))
    with pytest.raises(InputError, match="regions"):
        maps.sfd_plot(sfd, regions=("north",))
    with pytest.raises(InputError, match="size_frequency"):
        maps.sfd_plot(sfd.drop_vars("ci_low"))


def test_a_long_colour_bar_label_is_shortened_at_a_word_and_keeps_its_units():
    """bokeh clips a colour-bar title longer than the bar, and the units went first: 'elevation above the
    1737.4 km sphere [m]' (40 characters) at 32 keeps '[m]' and cuts the name at a word; a short one is kept."""
    da = _global().assign_attrs(long_name="elevation above the 1737.4 km sphere", units="m")
    assert maps.colorbar_label(da, 32) == "elevation above the 1737.4… [m]"
    assert maps.colorbar_label(da, 60) == "elevation above the 1737.4 km sphere [m]"
    short = maps.lunar_map(da, height=210, rasterize=False)  # a 210 px map has room for 21 characters
    assert short.vdims[0].label == "elevation above… [m]"
    assert maps.lunar_map(da, height=400, rasterize=False).vdims[0].label == "elevation above the 1737.4 km sphere [m]"


def test_colorbar_label_of_a_dimensionless_map_shows_no_units_and_gives_their_room_to_the_name():
    da = xr.DataArray([0.1], dims="x", attrs={"long_name": "normalised I/F reflectance at 750 nm", "units": "1"})
    assert maps.colorbar_label(da, 36) == "normalised I/F reflectance at 750 nm"  # not "… [1]"
    assert maps.colorbar_label(da.assign_attrs(units=" 1 "), 27) == "normalised I/F reflectance…"
    assert maps.colorbar_label(da.assign_attrs(units="%"), 36) == "normalised I/F reflectance at… [%]"


def test_image_map_axes_are_in_km_when_the_tile_lies_10_km_or_more_from_the_origin():
    """A 3 x 3 tile at x = 100…120 km (a polar-stereographic crop) is drawn on km axes at 100…120; a 300 m
    tile stays on metre axes."""
    far = xr.DataArray(np.zeros((3, 3), "float32"), dims=("y", "x"),
                       coords={"y": [-5e4, -6e4, -7e4], "x": [1e5, 1.1e5, 1.2e5]}, attrs={"units": "m"})
    img = maps.image_map(far, rasterize=False)
    assert img.kdims[0].name == "x" and img.range("x") == (95.0, 125.0)
    assert maps.render_bokeh(img).xaxis.axis_label == "x (km)"
    near = far.assign_coords(y=[300.0, 200.0, 100.0], x=[0.0, 100.0, 200.0])
    assert maps.render_bokeh(maps.image_map(near, rasterize=False)).xaxis.axis_label == "x (m)"
