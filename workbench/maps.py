"""Moon-correct map recipes (HoloViews/hvplot with the bokeh backend) that return plot objects.

Every recipe returns a HoloViews object, so maps compose with ``*`` (overlay) and ``+`` (layout):

>>> import workbench as wb                                   # doctest: +SKIP
>>> wb.maps.setup_notebook()                                 # doctest: +SKIP
>>> dem = wb.open_dataset("lola_ldem_4ppd")["elevation"]     # doctest: +SKIP
>>> far = wb.maps.lunar_map(dem, centre="far")                # doctest: +SKIP
>>> far * wb.maps.sites_overlay(wb.samples.sample_sites(), centre="far")  # doctest: +SKIP

Conventions
-----------
* Global grids are ``(lat, lon)`` in degrees, east-positive longitude; ``centre="near"`` shows
  longitudes −180…180 (0° in the middle), ``centre="far"`` rolls them to 0…360 so 180° is in the middle.
* Every colour bar is labelled ``long_name [units]`` from the DataArray's attrs; a DataArray without
  ``attrs["units"]`` is refused (units on every colour bar).
* Colour maps are perceptually uniform: colorcet ``gouldian`` for elevation, ``gray`` for imagery,
  ``cividis`` otherwise, colorcet ``coolwarm`` for signed data (``diverging=True``).
* Rasters bigger than :data:`RASTERIZE_ABOVE_PIXELS` are rasterised by datashader at screen resolution
  (re-aggregated on zoom when a live kernel is attached).

References
----------
Kovesi, P. (2015), Good colour maps: how to design them, arXiv:1509.03700 (colorcet).
Snyder, J. P. (1987), Map Projections — A Working Manual, USGS Prof. Paper 1395, §21 (polar
stereographic: ``r = 2 R tan(π/4 − |φ|/2)`` at true scale at the pole).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr

from .errors import InputError
from .geo import CRS_NORTH_POLAR, CRS_SOUTH_POLAR, MOON_RADIUS_M, wrap_lon_180, wrap_lon_360

#: Above this many pixels a raster is rasterised by datashader instead of sent whole to the browser.
RASTERIZE_ABOVE_PIXELS = 2_000_000

#: Oxide columns shown in the sample-site hover, in this order when present.
OXIDES = ("SiO2", "TiO2", "Al2O3", "FeO", "MgO", "CaO")

#: Units that are imagery whatever the name (detector counts, I/F); dimensionless ("1", "") data are
#: imagery only when their name says so (Mg#, maturity or a score are quantities, not images).
_IMAGERY_UNITS = {"dn", "reflectance", "i/f"}
_IMAGERY_WORDS = ("brightness", "reflectance", "albedo", "radiance", "i/f", "image", "shaded", "shadow")
_ELEVATION_UNITS = {"m", "km", "metre", "metres", "meter", "meters"}

_setup_done = False


def setup_notebook(force: bool = False) -> None:
    """Load the bokeh plotting extension with **inline** resources (no CDN) for this kernel.

    Calls ``hv.extension("bokeh", inline=True)`` *before* importing ``hvplot.xarray`` (HoloViews'
    own inline setting would otherwise win and load BokehJS from a CDN), then ``pn.extension``
    inline. Safe to call more than once.
    """
    global _setup_done
    if _setup_done and not force:
        return
    import holoviews as hv
    import panel as pn

    pn.config.inline = True
    # class-level default too: importing hvplot calls hv.extension() again, which would otherwise
    # re-load Panel's resources from its CDN
    hv.extension.inline = True
    hv.extension("bokeh", inline=True, logo=False)
    import hvplot.pandas  # noqa: F401  (registers .hvplot on DataFrames)
    import hvplot.xarray  # noqa: F401  (registers .hvplot on DataArrays)

    pn.extension(inline=True)
    inline_panel_css()
    _setup_done = True


def inline_panel_css() -> None:
    """Make HoloViews' notebook output carry Panel's CSS inline instead of linking ``cdn.holoviz.org``.

    HoloViews renders plots in the notebook through Panel, whose layout models link four stylesheets
    on Panel's CDN even when ``pn.config.inline`` is set. This wraps HoloViews' two notebook render
    functions so Panel's own ``patch_inline_stylesheets`` replaces those links with the CSS shipped in
    the panel package. Idempotent; does nothing if the HoloViews internals are not where expected.
    """
    try:
        import holoviews.plotting.renderer as hv_renderer
        from bokeh.models import UIElement
        from panel.io.notebook import patch_inline_stylesheets
    except ImportError:  # pragma: no cover - other HoloViews/Panel layout
        return
    if getattr(hv_renderer, "_workbench_inline_css", False):
        return
    if not (hasattr(hv_renderer, "render_model") and hasattr(hv_renderer, "render_mimebundle")):
        return  # pragma: no cover
    orig_model, orig_bundle = hv_renderer.render_model, hv_renderer.render_mimebundle

    def _inline(model) -> None:
        for sub in model.select({"type": UIElement}):
            patch_inline_stylesheets(sub)

    def render_model(model, *args, **kwargs):
        _inline(model)
        return orig_model(model, *args, **kwargs)

    def render_mimebundle(model, *args, **kwargs):
        _inline(model)
        return orig_bundle(model, *args, **kwargs)

    hv_renderer.render_model = render_model
    hv_renderer.render_mimebundle = render_mimebundle
    hv_renderer._workbench_inline_css = True


def _hv():
    import holoviews as hv

    if hv.Store.current_backend != "bokeh" or "bokeh" not in hv.Store.renderers:
        # Outside a notebook (tests, scripts) just load the bokeh backend, no notebook output.
        import holoviews.plotting.bokeh  # noqa: F401

        hv.Store.set_current_backend("bokeh")
    return hv


#: Longest colour-bar label (characters) when the map's height is not known; a longer name is shortened at
#: a word boundary (the full name is the map's title) so that the units always stay visible.
COLORBAR_LABEL_CHARS = 32


def _bar_chars(height: int) -> int:
    """Characters of a colour-bar title that fit along the bar of a map ``height`` pixels tall (bokeh's
    11–12 px italic: about 6 px a character; the bar is the frame's height, ~80 px less than the plot's)."""
    return max(16, int((height - 80) / 6))


def shown_units(units: object) -> str:
    """Units as a reader sees them: ``""`` for a dimensionless quantity (CF's ``"1"``, or ``""``/``None``),
    else the units unchanged.

    >>> shown_units("1"), shown_units("wt%")
    ('', 'wt%')
    """
    return "" if units is None or str(units).strip() in ("", "1") else str(units)


def colorbar_label(da: xr.DataArray, max_chars: int = COLORBAR_LABEL_CHARS) -> str:
    """``"long_name [units]"`` for a DataArray; raises :class:`InputError` if ``units`` is missing.

    A dimensionless quantity (``units`` ``"1"`` or ``""``) shows its name alone: a reflectance or Mg# bar
    reads "I/F reflectance", not "I/F reflectance [1]". A label longer than ``max_chars`` has its name
    shortened at a word boundary with "…" (the units are never cut: bokeh clips a colour-bar title that is
    longer than the bar, and the units went first).
    """
    units = da.attrs.get("units")
    if units is None:
        raise InputError(
            f"DataArray {da.name!r} has no attrs['units']; every map shows units on its colour bar. "
            "Set it, e.g. da.attrs['units'] = 'm' (use '1' for dimensionless reflectance)."
        )
    name = str(da.attrs.get("long_name") or da.attrs.get("standard_name") or da.name or "value")
    unit_part = f" [{shown}]" if (shown := shown_units(units)) else ""
    room = max_chars - len(unit_part)
    if len(name) > room:
        cut = name[: max(room - 1, 1)]
        ends_a_word = name[len(cut)] == " "  # the cut fell on a word's end: keep that word
        head = cut if ends_a_word or " " not in cut.strip() else cut.rsplit(" ", 1)[0]
        name = head.rstrip(" ,;:(-") + "…"
    return f"{name}{unit_part}"


def default_cmap(da: xr.DataArray, diverging: bool = False) -> str:
    """Perceptually uniform default colour map chosen from the data's units/name: ``coolwarm`` for
    differences, ``gouldian`` for elevation, ``gray`` for imagery (DN, I/F, reflectance, or a
    dimensionless quantity named as an image) and ``cividis`` for every other quantity (oxides, Mg#, …)."""
    if diverging:
        return "coolwarm"
    units = str(da.attrs.get("units", "")).strip().lower()
    name = f"{da.name or ''} {da.attrs.get('long_name', '')}".lower()
    if units in _ELEVATION_UNITS and ("elev" in name or "height" in name or "topo" in name):
        return "gouldian"
    if units in _IMAGERY_UNITS or any(w in name for w in _IMAGERY_WORDS):
        return "gray"
    return "cividis"


def _check_2d(da: xr.DataArray, dims: tuple[str, str], func: str) -> xr.DataArray:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{func} needs an xarray.DataArray, got {type(da).__name__}; pick a variable, "
                         "e.g. ds['elevation'].")
    extra = [d for d in da.dims if d not in dims]
    if set(dims) - set(da.dims) or any(da.sizes[d] > 1 for d in extra):
        raise InputError(
            f"{func} needs a 2-D DataArray with dims {dims}, got {dict(da.sizes)}; select one slice first, "
            "e.g. da.isel(band=0) or da.sel(wavelength=750)."
        )
    if extra:
        da = da.squeeze(extra, drop=True)
    return da.transpose(*dims)


def _clim(da: xr.DataArray, clim: tuple[float, float] | None, diverging: bool = False,
          whole: bool = False) -> tuple[float, float]:
    """Colour range: ``clim`` when given, else the 1st–99th percentile (the whole range with ``whole``;
    symmetric about 0 for a diverging map, so that white means zero)."""
    if clim is not None:
        lo, hi = (float(c) for c in clim)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise InputError(f"clim must be two finite numbers (low, high) with low < high, got {clim}")
        return lo, hi
    vals = np.asarray(da.values, dtype="float64")
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return (-1.0, 1.0) if diverging else (0.0, 1.0)
    lo, hi = np.percentile(vals, [1, 99]) if vals.size > 100 and not whole else (vals.min(), vals.max())
    if diverging:
        m = max(abs(float(lo)), abs(float(hi))) or 1.0
        return -m, m
    if lo == hi:
        hi = lo + 1.0
    return float(lo), float(hi)


def _centre_lon(lon, centre: Literal["near", "far"]) -> np.ndarray:
    """Longitudes in the convention of a map centred on the near (−180…180) or far (0…360) side."""
    return wrap_lon_360(np.asarray(lon, dtype="float64")) if centre == "far" else wrap_lon_180(
        np.asarray(lon, dtype="float64"))


def _lon_range(centre: Literal["near", "far"]) -> tuple[float, float]:
    """The longitude axis of a global map centred on the near or far side."""
    return (0.0, 360.0) if centre == "far" else (-180.0, 180.0)


def roll_longitude(da: xr.DataArray, centre: Literal["near", "far"] = "near") -> xr.DataArray:
    """Return ``da`` with longitudes in −180…180 (``"near"``) or 0…360 (``"far"``), sorted ascending."""
    if centre not in ("near", "far"):
        raise InputError(f"centre must be 'near' or 'far', got {centre!r}")
    lon = np.asarray(da["lon"].values, dtype="float64")
    new = _centre_lon(lon, centre)
    if np.array_equal(new, lon) and np.all(np.diff(lon) > 0):
        return da
    out = da.assign_coords(lon=new).sortby("lon")
    out["lon"].attrs.update(da["lon"].attrs)
    return out


def _extent(centres: np.ndarray) -> tuple[float, float]:
    """Edges (min, max) of cell-centred coordinates."""
    c = np.asarray(centres, dtype="float64")
    half = abs(float(c[1] - c[0])) / 2 if c.size > 1 else 0.5
    return float(c.min()) - half, float(c.max()) + half


#: Tick-interval mantissas of a degree axis that is not global: intervals of 1, 1.5 and 3 times a power of ten
#: (…, 1°, 1.5°, 3°, 10°, 15°, 30°), the multiples a reader expects on a globe rather than Bokeh's 2 and 5 (50°).
DEGREE_TICK_MANTISSAS: tuple[float, ...] = (1.0, 1.5, 3.0)


def degree_ticker(desired: int = 7):
    """A Bokeh ticker for a regional degree axis: ticks every 30°, 15°, 10°, 3° … (not 50° or 25°).

    Unlike a fixed list of ticks it adapts when the map is zoomed in a live notebook.

    Parameters
    ----------
    desired
        About how many ticks to show across the visible range.

    Returns
    -------
    bokeh.models.AdaptiveTicker
        With base 10 and mantissas :data:`DEGREE_TICK_MANTISSAS`.
    """
    from bokeh.models import AdaptiveTicker

    return AdaptiveTicker(base=10, mantissas=list(DEGREE_TICK_MANTISSAS), desired_num_ticks=desired,
                          num_minor_ticks=3)


def _should_rasterize(da: xr.DataArray, rasterize: bool | None) -> bool:
    return bool(rasterize) if rasterize is not None else da.size > RASTERIZE_ABOVE_PIXELS


def _finish(img, rasterize: bool, width: int, height: int):
    if not rasterize:
        return img
    from holoviews.operation.datashader import rasterize as ds_rasterize

    return ds_rasterize(img, width=width, height=height, dynamic=True)


def _colour_opts(da: xr.DataArray, cmap, lo: float, hi: float, label: str, title, **extra) -> dict:
    """Options every map shares: colour map and range, a colour bar labelled with units, title, NaN clear."""
    return dict(
        cmap=cmap,
        clim=(lo, hi),
        colorbar=True,
        clabel=label,
        title=title if title is not None else str(da.attrs.get("long_name", da.name or "")),
        clipping_colors={"NaN": "#00000000"},
        **extra,
    )


def lunar_map(
    da: xr.DataArray,
    cmap: str | None = None,
    clim: tuple[float, float] | None = None,
    centre: Literal["near", "far"] = "near",
    title: str | None = None,
    rasterize: bool | None = None,
    width: int = 720,
    height: int = 360,
    diverging: bool = False,
    hover: bool = True,
    equalise: bool | Literal["pixels", "area"] = False,
):
    """A global map of a ``(lat, lon)`` DataArray in degrees, with a labelled colour bar.

    Parameters
    ----------
    da
        2-D DataArray with dims ``lat`` and ``lon`` (degrees), ``attrs["units"]`` required.
    cmap
        Colour map name (HoloViews/colorcet); default chosen by :func:`default_cmap`.
    clim
        Colour range ``(low, high)`` in the data's units; default the 1st–99th percentile.
    centre
        ``"near"`` (longitude 0 in the middle, −180…180) or ``"far"`` (180 in the middle, 0…360).
    title
        Plot title; default the DataArray's ``long_name``.
    rasterize
        ``True``/``False`` to force; ``None`` rasterises with datashader above
        :data:`RASTERIZE_ABOVE_PIXELS` pixels.
    width, height
        Frame size in screen pixels.
    diverging
        Use a diverging colour map (for signed data such as residuals).
    hover
        Show a hover tool with lon, lat and value.
    equalise
        ``True`` or ``"pixels"``: histogram-equalised colours (Bokeh's ``eq_hist``): each colour covers the same
        share of pixels, for heavy-tailed data such as anomaly scores, where a linear range paints nearly
        everything in one colour. The default colour range is then the whole data range; the colour bar and hover
        keep the data's values. ``"area"``: each colour covers the same share of the *area*
        (:func:`workbench.geo.area_rank`; on a latitude-longitude grid a polar pixel is a sliver of an
        equatorial one): the image holds the area rank (0–100 %), the colour bar's ticks are the data's values
        at 0, 50, 90 and 99 % of the area (:data:`AREA_TICKS_PCT`), and the hover shows both (``clim`` does not
        apply).

    Returns
    -------
    holoviews.Image, or a DynamicMap of it when rasterised.
    """
    da = _check_2d(da, ("lat", "lon"), "lunar_map")
    if equalise not in (False, True, "pixels", "area"):
        raise InputError(f"equalise must be False, True/'pixels' or 'area', got {equalise!r}")
    by_area = equalise == "area"
    if by_area and clim is not None:
        raise InputError("clim does not apply to area-equalised colours (equalise='area' spans 0-100 % of the "
                         "area); leave clim out or use equalise=True")
    label = colorbar_label(da, _bar_chars(height))
    da = roll_longitude(da, centre)
    lo, hi = (0.0, 100.0) if by_area else _clim(da, clim, diverging, whole=bool(equalise))
    hv = _hv()
    vname = str(da.name or "value")
    src = da.rename(vname).astype("float32") if da.dtype != "float32" else da.rename(vname)
    vdims = [hv.Dimension(vname, label=label)]
    extra: dict[str, Any] = {}
    if by_area:
        src, vdims, extra = _area_equalised(src, label, _should_rasterize(da, rasterize))
        label = f"{label} (colours by share of area)"
    img = hv.Image(src, kdims=["lon", "lat"], vdims=vdims)
    (x0, x1), (y0, y1) = _extent(da["lon"].values), _extent(da["lat"].values)
    global_x, global_y = x1 - x0 > 359.0, y1 - y0 > 179.0
    xlim = _lon_range(centre) if global_x else (x0, x1)
    ylim = (-90.0, 90.0) if global_y else (y0, y1)
    img = img.opts(**_colour_opts(
        da, cmap or default_cmap(da, diverging), lo, hi, label, title,
        xlabel="longitude (°E)",
        ylabel="latitude (°N)",
        frame_width=width,
        frame_height=height,
        xlim=xlim,
        ylim=ylim,
        xticks=[xlim[0] + 30 * i for i in range(13)] if global_x else degree_ticker(),
        yticks=[-90 + 30 * i for i in range(7)] if global_y else degree_ticker(),
        tools=["hover"] if hover else [],
        active_tools=["wheel_zoom"],
        cnorm="eq_hist" if equalise in (True, "pixels") else "linear",
        **extra,
    ))
    return _finish(img, _should_rasterize(da, rasterize), width, height)


#: Where the colour bar of an area-equalised map (``lunar_map(..., equalise="area")``) names the data's values.
AREA_TICKS_PCT = (0.0, 50.0, 90.0, 99.0)  # 99: the prospectivity slider's default top 1 %


def _area_equalised(src: xr.DataArray, label: str, rasterized: bool) -> tuple[Any, list, dict]:
    """The image data, value dimensions and colour-bar options of an area-equalised map: colours by area rank,
    ticks labelled with the data's values at :data:`AREA_TICKS_PCT` % of the area."""
    from bokeh.models import FixedTicker

    from .analysis.asymmetry import weighted_quantile
    from .geo import area_rank, area_weights

    hv = _hv()
    rank = area_rank(src).astype("float32").rename("area_rank")
    # the values at those shares of the area: the same weighted quantile as the prospectivity slider's threshold
    # (analysis.prospectivity.area_percentile), flat across a run of equal values
    values = weighted_quantile(src.values, area_weights(src).values, np.asarray(AREA_TICKS_PCT) / 100.0)
    ticks = {"ticker": FixedTicker(ticks=list(AREA_TICKS_PCT)),
             "major_label_overrides": {float(p): f"{v:.3g}" for p, v in zip(AREA_TICKS_PCT, values, strict=True)}}
    share = hv.Dimension("area_rank", label=f"{label}: % of area below")
    if rasterized:  # datashader aggregates one value per pixel: the hover shows the rank only
        return rank, [share], {"colorbar_opts": ticks}
    vname = str(src.name) if src.name != "area_rank" else "value"  # a map named area_rank keeps both variables
    data = xr.Dataset({"area_rank": rank, vname: src.rename(vname)})
    return data, [share, hv.Dimension(vname, label=label)], {"colorbar_opts": ticks}


def _crs_sources(da: xr.DataArray) -> list[Any]:
    """Where a DataArray may carry its projection: ``attrs["crs"]`` and the grid-mapping coordinate
    (``spatial_ref`` as rioxarray and :func:`workbench.open_dataset` write it, or the one ``attrs["grid_mapping"]``
    names), each as its ``crs`` / ``crs_wkt`` / ``spatial_ref`` text or its CF attributes."""
    out: list[Any] = [da.attrs.get("crs")]
    names = [str(da.attrs["grid_mapping"])] if "grid_mapping" in da.attrs else []
    names += [str(n) for n, c in da.coords.items() if "crs_wkt" in c.attrs or "spatial_ref" in c.attrs]
    for n in dict.fromkeys(names):
        if n in da.coords:
            a = da.coords[n].attrs
            out += [a.get("crs"), a.get("crs_wkt"), a.get("spatial_ref"), a]
    return [x for x in out if x]


def polar_pole(da: xr.DataArray) -> Literal["N", "S"] | None:
    """The pole of a polar stereographic DataArray, ``"N"`` or ``"S"``, or ``None`` when it carries no CRS.

    Read from ``attrs["crs"]`` (the package's codes :data:`~workbench.geo.CRS_NORTH_POLAR` and
    :data:`~workbench.geo.CRS_SOUTH_POLAR`, IAU_2015:30130 / 30135) or from the ``spatial_ref`` coordinate that
    catalogue data carry: the authority code in its WKT (``AUTHORITY["IAU","30135"]``), else its CF attributes
    (``grid_mapping_name = polar_stereographic`` with ``latitude_of_projection_origin`` or ``standard_parallel``
    of ±90).
    """
    import re

    codes = {CRS_NORTH_POLAR.split(":")[1]: "N", CRS_SOUTH_POLAR.split(":")[1]: "S"}
    for src in _crs_sources(da):
        if isinstance(src, dict):
            if src.get("grid_mapping_name") != "polar_stereographic":
                continue
            for key in ("latitude_of_projection_origin", "standard_parallel"):
                v = np.atleast_1d(np.asarray(src.get(key, np.nan), dtype="float64"))
                if v.size and np.isfinite(v[0]) and abs(v[0]) > 0:
                    return "N" if v[0] > 0 else "S"
            continue
        text = str(src)
        # "IAU_2015:30135", AUTHORITY["IAU","30135"] (WKT1) or ID["IAU",30135] (WKT2): the last one names the CRS
        found = re.findall(r'IAU(?:_2015)?(?::|"\s*,\s*"?)\s*(\d{5})', text)
        for code in reversed(found):
            if code in codes:
                return codes[code]  # type: ignore[return-value]
    return None


def polar_map(
    da: xr.DataArray,
    cmap: str | None = None,
    clim: tuple[float, float] | None = None,
    title: str | None = None,
    rasterize: bool | None = None,
    size: int = 480,
    graticule: bool = True,
):
    """A polar stereographic map of a ``(y, x)`` DataArray in metres, axes in km, with latitude rings.

    Parameters
    ----------
    da
        2-D DataArray with dims ``y`` and ``x`` in metres (``attrs["crs"]`` IAU_2015:30130 north or
        30135 south, or a ``spatial_ref`` coordinate as catalogue data carry; see :func:`polar_pole`),
        ``attrs["units"]`` required.
    graticule
        Overlay latitude circles every 5° (``r = 2 R tan(π/4 − |φ|/2)``, Snyder 1987 eq. 21-4 with
        k0 = 1), labelled (e.g. "85°S" from the CRS; "5° from pole" without one), and
        meridians every 30°.

    Returns
    -------
    holoviews.Image or Overlay (with graticule), or a DynamicMap when rasterised.
    """
    da = _check_2d(da, ("y", "x"), "polar_map")
    label = colorbar_label(da, _bar_chars(size))
    lo, hi = _clim(da, clim)
    hv = _hv()
    vname = str(da.name or "value")
    km = da.assign_coords(x=da["x"] / 1000.0, y=da["y"] / 1000.0).rename(vname).astype("float32")
    img = hv.Image(km, kdims=["x", "y"], vdims=[hv.Dimension(vname, label=label)]).opts(**_colour_opts(
        da, cmap or default_cmap(da), lo, hi, label, title,
        xlabel="x (km)",
        ylabel="y (km)",
        frame_width=size,
        frame_height=size,
        data_aspect=None,
        tools=["hover"],
        active_tools=["wheel_zoom"],
    ))
    out = _finish(img, _should_rasterize(da, rasterize), size, size)
    if not graticule:
        return out
    rmax = float(np.nanmax(np.abs(km["x"].values)))
    pole = polar_pole(da)
    paths, labels = [], []
    for colat in np.arange(5.0, 90.0, 5.0):
        r = 2 * MOON_RADIUS_M / 1000.0 * np.tan(np.deg2rad(colat) / 2)
        if r > rmax * 1.5:
            break
        t = np.linspace(0, 2 * np.pi, 181)
        paths.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        if r * np.sqrt(0.5) < rmax:  # label each visible ring where it crosses the lower-right diagonal
            text = f"{90 - colat:.0f}°{pole}" if pole else f"{colat:.0f}° from pole"
            labels.append((r * np.sqrt(0.5), -r * np.sqrt(0.5), text))
    for lon in np.arange(0.0, 360.0, 30.0):
        t = np.deg2rad(lon)
        paths.append(np.array([[0.0, 0.0], [1.5 * rmax * np.sin(t), 1.5 * rmax * np.cos(t)]]))
    grid = hv.Path(paths, kdims=["x", "y"]).opts(color="white", alpha=0.35, line_width=1)
    rings = hv.Labels(labels, kdims=["x", "y"], vdims=["latitude"]).opts(
        text_color="white", text_font_size="8pt", text_alpha=0.8, text_align="left")
    out = out * grid * rings
    if pole:  # meridians labelled near the frame's edge: which way the near side (0°) lies
        out = out * hv.Labels(_meridian_labels(pole, rmax), kdims=["x", "y"], vdims=["longitude"]).opts(
            text_color="white", text_font_size="8pt", text_alpha=0.8, text_align="center",
            text_baseline="middle")
    return out.opts(xlim=(-rmax, rmax), ylim=(-rmax, rmax))


def _meridian_labels(pole: Literal["N", "S"], rmax: float, inset: float = 0.9) -> list[tuple[float, float, str]]:
    """Labels of the meridians every 30° on a polar stereographic map of half-width ``rmax``, each at
    ``inset`` × ``rmax`` from the centre along the larger axis. Longitude λ lies along
    (sin λ, −cos λ) about the north pole and (sin λ, cos λ) about the south pole (Snyder 1987 eqs. 21-5,
    21-6 with central meridian 0°, as IAU_2015:30130 and 30135 have it): 0° at the bottom of a north-polar
    map, at the top of a south-polar one, 90°E on the right of both."""
    sign = -1.0 if pole == "N" else 1.0
    out = []
    for lon in range(0, 360, 30):
        t = np.deg2rad(lon)
        d = inset * rmax / max(abs(np.sin(t)), abs(np.cos(t)))
        text = f"{lon}°E" if 0 < lon < 180 else f"{360 - lon}°W" if lon > 180 else f"{lon}°"
        out.append((float(d * np.sin(t)), float(sign * d * np.cos(t)), text))
    return out


def image_map(
    da: xr.DataArray,
    cmap: str | None = None,
    clim: tuple[float, float] | None = None,
    title: str | None = None,
    rasterize: bool | None = None,
    size: int = 400,
):
    """A local Cartesian ``(y, x)`` tile (metres, row 0 north) with equal-aspect axes in metres, or in km when
    a coordinate reaches 10 km (polar-stereographic tiles lie ~10⁵ m from the pole: metre ticks ran together)."""
    da = _check_2d(da, ("y", "x"), "image_map")
    label = colorbar_label(da, _bar_chars(size))
    lo, hi = _clim(da, clim)
    hv = _hv()
    vname = str(da.name or "value")
    reach = max(float(np.nanmax(np.abs(da[c].values))) if da[c].size else 0.0 for c in ("x", "y"))
    unit, scale = ("km", 1000.0) if reach >= 1e4 else ("m", 1.0)
    shown = da.assign_coords(x=da["x"] / scale, y=da["y"] / scale) if scale != 1.0 else da
    img = hv.Image(shown.rename(vname).astype("float32"), kdims=["x", "y"],
                   vdims=[hv.Dimension(vname, label=label)]).opts(**_colour_opts(
        da, cmap or default_cmap(da), lo, hi, label, title,
        xlabel=f"x ({unit})",
        ylabel=f"y ({unit})",
        frame_width=size,
        data_aspect=1,
        tools=["hover"],
    ))
    return _finish(img, _should_rasterize(da, rasterize), size, size)


#: text size of site labels, and the estimated width of one of its characters and height of a line (px)
_LABEL_FONT_PT, _LABEL_CHAR_PX, _LABEL_LINE_PX = 8, 6.0, 11.0


def _place_labels(lon, lat, names, xlim: tuple[float, float], px_per_deg: float,
                  marker_px: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Where to write each site's name so that no two names, and no name and marker, overlap.

    Greedy placement (as in cartographic point labelling, e.g. Christensen, Marks & Shieber 1995, ACM
    Trans. Graph. 14, 203–232, whose simplest method this is): site by site, the first of right, above
    right, below right, left, above left, below left whose estimated text box lies on the map and clears
    every marker and every name placed before; the first of them when none does.

    Returns the label anchors (lon, lat; degrees) and each label's ``text_align`` ("left" for a name
    written to the right of its marker).
    """
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    line = _LABEL_LINE_PX / px_per_deg
    gap = (marker_px / 2 + 2.0) / px_per_deg  # from the marker's centre to the text
    r = marker_px / 2 / px_per_deg
    taken = [(x - r, x + r, y - r, y + r) for x, y in zip(lon, lat, strict=True)]  # markers are obstacles too
    xs, ys, align = np.empty(lon.size), np.empty(lon.size), []
    for i, (x, y, name) in enumerate(zip(lon, lat, names, strict=True)):
        w = len(str(name)) * _LABEL_CHAR_PX / px_per_deg
        options = [(side, y + dy) for side in (1, -1) for dy in (0.0, r + line / 2, -(r + line / 2))]
        boxes = [((x + gap, x + gap + w) if side > 0 else (x - gap - w, x - gap)) + (yc - line / 2, yc + line / 2)
                 for side, yc in options]

        others = [t for j, t in enumerate(taken) if j != i]  # all but this site's own marker
        k = next((k for k, b in enumerate(boxes) if _box_fits(b, xlim, others)), 0)
        taken.append(boxes[k])
        xs[i], ys[i] = (x + gap if options[k][0] > 0 else x - gap), options[k][1]
        align.append("left" if options[k][0] > 0 else "right")
    return xs, ys, align


def _box_fits(b: tuple[float, float, float, float], xlim: tuple[float, float], others) -> bool:
    """Whether box ``(x0, x1, y0, y1)`` lies on the map (``xlim``, latitudes ±90) and overlaps none of
    ``others``."""
    on_map = xlim[0] <= b[0] and b[1] <= xlim[1] and -90.0 <= b[2] and b[3] <= 90.0
    return on_map and not any(b[0] < t[1] and t[0] < b[1] and b[2] < t[3] and t[2] < b[3] for t in others)


def sites_overlay(
    df,
    centre: Literal["near", "far"] = "near",
    color: str = "#ff3366",
    size: int = 9,
    label_sites: bool = False,
    map_width: int = 720,
):
    """Sample sites as points with a hover giving the site name and soil oxides (wt%).

    Parameters
    ----------
    df
        pandas DataFrame with columns ``site``, ``lat``, ``lon`` (degrees east, −180…180 or 0…360) and
        any of :data:`OXIDES` (wt%).
    centre
        Longitude convention of the map underneath: ``"near"`` → −180…180, ``"far"`` → 0…360.
    label_sites
        Also draw the site names as text labels, placed so that they do not overlap
        (:func:`_place_labels`).
    map_width
        Frame width of the global map underneath (screen pixels; :func:`lunar_map`'s ``width``): how many
        degrees a label spans, so that labels keep apart and on the map.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InputError(f"sites_overlay needs a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in ("site", "lat", "lon") if c not in df.columns]
    if missing:
        raise InputError(f"sites_overlay: missing columns {missing}; need site, lat, lon (degrees). "
                         "Use wb.samples.sample_sites().")
    if centre not in ("near", "far"):
        raise InputError(f"centre must be 'near' or 'far', got {centre!r}")
    if not (isinstance(map_width, int | float) and np.isfinite(map_width) and map_width > 0):
        raise InputError(f"map_width must be the map's width in screen pixels (> 0), got {map_width!r}")
    hv = _hv()
    d = df.copy()
    d["lon"] = _centre_lon(d["lon"], centre)
    oxides = [c for c in OXIDES if c in d.columns]
    vdims = ["site"] + [hv.Dimension(c, unit="wt%") for c in oxides]
    tooltips = [("site", "@site"), ("lon, lat", "@lon{0.00}°E, @lat{0.00}°N")] + [
        (f"{c} (wt%)", f"@{c}{{0.0}}") for c in oxides
    ]
    from bokeh.models import HoverTool

    pts = hv.Points(d, kdims=["lon", "lat"], vdims=vdims).opts(
        color=color, size=size, line_color="white", line_width=1.5,
        tools=[HoverTool(tooltips=tooltips)],
    )
    if not label_sites:
        return pts
    x, y, align = _place_labels(d["lon"], d["lat"], d["site"], _lon_range(centre), map_width / 360.0, size)
    at = pd.DataFrame({"lon": x, "lat": y, "site": d["site"].to_numpy(), "align": align})
    labels = hv.Labels(at, kdims=["lon", "lat"], vdims=["site", "align"]).opts(
        text_color="white", text_font_size=f"{_LABEL_FONT_PT}pt", text_align=hv.dim("align"),
        text_baseline="middle")
    return pts * labels


def sfd_plot(
    sfd: xr.Dataset,
    title: str | None = None,
    regions: tuple[str, ...] = ("near", "far"),
    width: int = 340,
    height: int = 240,
):
    """Cumulative crater size–frequency curves N(≥D) per region with their Poisson 95 % bands, log–log.

    Parameters
    ----------
    sfd
        :func:`workbench.analysis.craters.size_frequency` output: dims ``region`` and ``diameter_km`` (km),
        ``count``, ``cumulative_density``, ``ci_low``, ``ci_high`` (``attrs["units"]``, e.g. per 10⁶ km²).
    title
        Plot title.
    regions
        Regions drawn, one curve and band each; diameters with no crater are left out (log axes).
    width, height
        Frame size in screen pixels.

    Returns
    -------
    holoviews.Overlay
        A shaded band (``Spread``) and a curve per region; the axes carry the units.
    """
    need = ("count", "cumulative_density", "ci_low", "ci_high")
    if not isinstance(sfd, xr.Dataset) or any(v not in sfd for v in need) or "diameter_km" not in sfd.coords:
        raise InputError(f"sfd_plot needs a size_frequency() Dataset with {need} on diameter_km; "
                         "use workbench.analysis.craters.size_frequency(craters)")
    missing = [r for r in regions if r not in sfd["region"].values]
    if missing:
        raise InputError(f"sfd_plot: regions {missing} not in the table; choose from {list(sfd['region'].values)}")
    hv = _hv()
    units = str(sfd["cumulative_density"].attrs.get("units", ""))
    ylabel = "N(≥D) per 10⁶ km²" if units == "1/(1e6 km2)" else f"N(≥D) ({units or 'unknown units'})"
    xlabel = f"diameter ({sfd['diameter_km'].attrs.get('units', 'km')})"
    x = np.asarray(sfd["diameter_km"].values, dtype="float64")
    elements = []
    for r in regions:
        s = sfd.sel(region=r)
        ok = s["count"].values > 0
        y = s["cumulative_density"].values[ok]
        lo, hi = s["ci_low"].values[ok], s["ci_high"].values[ok]
        elements.append(hv.Spread((x[ok], y, y - lo, hi - y), xlabel, [ylabel, "lo", "hi"]).opts(alpha=0.3))
        elements.append(hv.Curve((x[ok], y), xlabel, ylabel, label=r))
    return hv.Overlay(elements).opts(logx=True, logy=True, title=title or "", frame_width=width,
                                     frame_height=height)


def side_by_side(*maps: Any, cols: int | None = None):
    """Lay maps out side by side with linked panning and zooming (shared axes with equal kdims)."""
    if not maps:
        raise InputError("side_by_side needs at least one map")
    hv = _hv()
    layout = hv.Layout(list(maps)).opts(shared_axes=True)
    return layout.cols(cols or len(maps))


def render_bokeh(obj: Any):
    """Render a HoloViews object to its bokeh model (for tests, export and benchmarks)."""
    hv = _hv()
    return hv.render(obj, backend="bokeh")
