"""Notebook 03 panel: re-render a terrain under a chosen sun and reconstruct it (up to four ways).

State lives in :class:`TopographyState`; :func:`topography_view` is the one pure function that turns a
state and a :class:`Scene` (true DEM + pixel size) into the panels: rendered image with its shadows,
truth, coarse DEM, SfS, network, network + SfS polish, error maps and an elevation profile along one
row (marked on the image and truth maps), plus a readout of the RMSE of each method.
:class:`TopographyPanel` wires sliders to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..geo import north_up_flips
from ..synth.render import cast_shadows, render
from ..topography.model import downsample, grid_pixel_size, reconstruct, rmse, slope_error_deg, upsample
from ..validate import is_whole_number
from . import base

FACTOR = 8
#: Methods compared by :func:`sun_elevation_table` and, without ``network_sfs``, by :func:`polar_tile_view`.
METHODS = ("upsample", "sfs", "network", "network_sfs")


@dataclass
class TopographyState:
    """Control values of :class:`TopographyPanel` (degrees; profile row as a fraction of the height)."""

    sun_azimuth: float = 135.0
    sun_elevation: float = 10.0
    profile_row: float = 0.5
    run_sfs: bool = True


@dataclass
class Scene:
    """A true DEM (``(y, x)`` metres) with its pixel size, the coarse DEM derived from it.

    The DEM is stored north-up (rows north to south, columns west to east), the order the reconstructions
    read plain arrays in: a DEM given south-up or west-right is flipped by its coordinates, so its sun is not
    mirrored. ``pixel_size`` (metres) may be left out when the DEM has metre ``y``/``x`` coordinates (or
    ``attrs["pixel_size"]``); when given it must agree with them within 1 %.
    """

    dem: xr.DataArray
    pixel_size: float | None = None
    factor: int = FACTOR
    coarse: np.ndarray = field(init=False)

    def __post_init__(self):
        if self.dem.dims != ("y", "x"):
            raise InputError(f"scene DEM must be on (y, x) metres, got {self.dem.dims}")
        self.dem = self.dem.isel(north_up_flips(self.dem, "y", "x"))
        grid = grid_pixel_size(self.dem, "scene DEM")  # from the coordinates; non-square pixels refused
        if self.pixel_size is None:
            if grid is None:
                raise InputError("scene DEM has no y/x coordinates and no attrs['pixel_size']; give pixel_size "
                                 "(metres per pixel)")
            self.pixel_size = grid
        elif (isinstance(self.pixel_size, bool) or not isinstance(self.pixel_size, (int, float, np.number))
              or not np.isfinite(self.pixel_size) or self.pixel_size <= 0):
            raise InputError(f"pixel_size must be a positive number of metres, got {self.pixel_size!r}")
        elif grid is not None and abs(self.pixel_size - grid) > 0.01 * grid:
            raise InputError(f"pixel_size {self.pixel_size:g} m disagrees with the scene DEM's coordinates, which are "
                             f"{grid:g} m apart; leave pixel_size out (it is read from the coordinates) or fix them")
        self.pixel_size = float(self.pixel_size)
        ny, nx = self.dem.shape
        z = self.dem.values[: ny - ny % self.factor, : nx - nx % self.factor]
        self.dem = self.dem.isel(y=slice(0, z.shape[0]), x=slice(0, z.shape[1]))
        self.coarse = downsample(z, self.factor)


@dataclass
class TopographyView:
    """Everything one state produces."""

    image: xr.DataArray
    results: dict
    metrics: dict
    layout: object
    readout: str


def _like(dem: xr.DataArray, values: np.ndarray, name: str, units: str = "m", long_name: str = "") -> xr.DataArray:
    return xr.DataArray(values, coords=dem.coords, dims=dem.dims, name=name,
                        attrs={"units": units, "long_name": long_name or name})


def reconstruct_all(scene: Scene, state: TopographyState) -> tuple[xr.DataArray, dict]:
    """Render the scene under the state's sun and reconstruct it with each method."""
    img = render(scene.dem, state.sun_azimuth, state.sun_elevation, pixel_size=scene.pixel_size)  # north-up
    methods = ["upsample", "network"] + (["sfs"] if state.run_sfs else [])
    out = {m: reconstruct(img.values, scene.coarse, state.sun_azimuth, state.sun_elevation, method=m,
                          pixel_size=scene.pixel_size).values for m in methods}
    if state.run_sfs:  # the network's DEM polished by SfS: same solver, started from the network
        from ..topography.sfs import sfs

        out["network_sfs"] = sfs(img.values, out["network"], scene.pixel_size, state.sun_azimuth,
                                 state.sun_elevation)
    return img, out


def reconstruction_metrics(scene: Scene, results: dict) -> tuple[dict, float]:
    """RMSE (m) and slope error (deg) of each reconstruction against the scene's truth, and the half-width (m)
    of the error maps' common colour range (the largest 99th-percentile |error| of the methods shown).

    They depend on the sun and the methods, not on the profile row: the panel keeps them with the
    reconstructions, so moving the row only redraws the profile.
    """
    truth = scene.dem.values
    metrics = {m: {"rmse_m": rmse(z, truth), "slope_error_deg": slope_error_deg(z, truth, scene.pixel_size)}
               for m, z in results.items()}
    # one error scale for every method shown, so no map saturates while another looks better than it is
    err_lim = max(1e-6, max(float(np.nanpercentile(np.abs(z - truth), 99)) for z in results.values()))
    return metrics, err_lim


def topography_view(state: TopographyState, scene: Scene,
                    reconstructions: tuple[xr.DataArray, dict] | None = None,
                    scores: tuple[dict, float] | None = None) -> TopographyView:
    """The pure update of the panel: image, truth, coarse, reconstructions, errors, profile, readout.

    ``reconstructions`` is :func:`reconstruct_all`'s answer for this state and ``scores``
    :func:`reconstruction_metrics`'s answer for those reconstructions, when already at hand (the panel keeps
    both while only the profile row moves); None computes them. The profile row is marked by a dashed line
    on the image and truth maps.
    """
    import holoviews as hv

    from .. import maps

    if not 0.0 <= state.profile_row <= 1.0:  # a fraction of the height: refused, not clipped to an edge row
        raise InputError(f"profile_row is a fraction of the image height in [0, 1] (0 top, 1 bottom), got "
                         f"{state.profile_row}")
    img, res = reconstruct_all(scene, state) if reconstructions is None else reconstructions
    truth = scene.dem.values
    metrics, err_lim = reconstruction_metrics(scene, res) if scores is None else scores
    lo, hi = float(np.nanmin(truth)), float(np.nanmax(truth))
    row = int(state.profile_row * (truth.shape[0] - 1))
    image = maps.image_map(img, cmap="gray", title=f"image (sun {state.sun_azimuth:.0f}°, "
                                                  f"{state.sun_elevation:.1f}°)", size=260)
    # the profile row, marked on the image and the truth (after a map call: it loads the plotting backend)
    mark = hv.HLine(float(scene.dem["y"].values[row])).opts(color="#ff3366", line_dash="dashed", line_width=1.5)
    tiles = [image * mark,
             maps.image_map(_like(scene.dem, truth, "elevation", long_name="truth"), clim=(lo, hi),
                            title="truth (dashed: profile row)", size=260) * mark,
             maps.image_map(_like(scene.dem, upsample(scene.coarse, truth.shape), "elevation"), clim=(lo, hi),
                            title=f"coarse DEM ({scene.factor}x), bicubic", size=260)]
    for m in ("sfs", "network", "network_sfs"):
        if m in res:
            tiles.append(maps.image_map(_like(scene.dem, res[m], "elevation"), clim=(lo, hi), title=m, size=260))
    for m in ("upsample", "sfs", "network", "network_sfs"):
        if m in res:
            tiles.append(maps.image_map(_like(scene.dem, res[m] - truth, "error"), cmap="coolwarm",
                                        clim=(-err_lim, err_lim),
                                        title=f"{m} error (RMSE {metrics[m]['rmse_m']:.2f} m)", size=260))
    x = scene.dem["x"].values
    curves = [hv.Curve((x, truth[row]), "x", "elevation", label="truth").opts(color="black", line_width=2)]
    colours = {"upsample": "#999999", "sfs": "#e66101", "network": "#1f78b4", "network_sfs": "#33a02c"}
    for m, z in res.items():
        curves.append(hv.Curve((x, z[row]), "x", "elevation", label=m).opts(color=colours[m]))
    prof = hv.Overlay(curves).opts(title=f"profile along row {row}", width=520, height=260,
                                   xlabel="x (m)", ylabel="elevation (m)", legend_position="bottom_right")
    layout = hv.Layout(tiles + [prof]).cols(4)
    readout = "<br>".join(f"{m}: RMSE {v['rmse_m']:.2f} m, slope error {v['slope_error_deg']:.2f}°"
                          for m, v in metrics.items())
    dark = float((img.values == 0).mean())  # cast shadows and faces turned from the sun alike
    readout += f"<br>dark (cast + self-shadow): {100 * dark:.0f} % of the image"
    return TopographyView(img, res, metrics, layout, readout)


class TopographyPanel(base.Panel):
    """Sliders for the sun; each change re-renders the terrain and re-runs the reconstructions (the last
    eight sun settings are kept, so the profile row and a return to an earlier sun are immediate)."""

    State = TopographyState
    title = "Topography from one image + a coarse DEM"

    def __init__(self, scene: Scene, state: TopographyState | None = None, **overrides):
        self.scene = scene
        # sun and SfS switch -> (reconstruct_all, reconstruction_metrics)
        self._recon: dict[tuple, tuple[tuple[xr.DataArray, dict], tuple[dict, float]]] = {}
        super().__init__(state, **overrides)

    def make_controls(self):
        return {
            "sun_azimuth": base.slider("sun azimuth", "deg", 0.0, 360.0, 5.0),
            "sun_elevation": base.slider("sun elevation", "deg", 1.0, 60.0, 0.5),
            "profile_row": base.slider("profile row", "fraction", 0.0, 1.0, 0.01),
            "run_sfs": base.checkbox("run shape-from-shading (slower)", True),
        }

    def compute(self, state):
        key = (state.sun_azimuth, state.sun_elevation, state.run_sfs)
        if key not in self._recon:  # moving only the profile row re-slices: no reconstruction, no metrics
            if len(self._recon) >= 8:
                self._recon.pop(next(iter(self._recon)))
            recon = reconstruct_all(self.scene, state)
            self._recon[key] = (recon, reconstruction_metrics(self.scene, recon[1]))
        recon, scores = self._recon[key]
        view = topography_view(state, self.scene, recon, scores)
        return view.layout, view.readout


def sun_elevation_table(
    dem: xr.DataArray,
    pixel_size: float | None = None,
    sun_azimuth: float = 135.0,
    elevations: Sequence[float] = (2.0, 5.0, 15.0, 30.0),
    methods: Sequence[str] = METHODS,
    factor: int = FACTOR,
) -> pd.DataFrame:
    """How each reconstruction method degrades as the sun goes down, on one terrain.

    The terrain is rendered at each sun elevation and reconstructed from the image and its
    ``factor``-times coarser DEM by every method.

    Parameters
    ----------
    dem
        True DEM on ``(y, x)`` metres (put north-up and cropped to a multiple of ``factor``, as in
        :class:`Scene`: the table does not depend on the order the rows are stored in).
    pixel_size
        Metres per pixel; None reads it from the coordinates (given, it must agree with them; see :class:`Scene`).
    sun_azimuth
        Degrees clockwise from north towards the sun.
    elevations
        Sun elevations (degrees).
    methods
        Any of :data:`METHODS` (see :func:`workbench.topography.model.reconstruct`).
    factor
        How much coarser the coarse DEM is.

    Returns
    -------
    pandas.DataFrame
        Index ``sun elevation (deg)``; columns ``(quantity, method)``: ``RMSE (m)`` and
        ``slope error (deg)`` per method, and ``("cast shadow (%)", "")``, the share of the image in
        cast shadow (:func:`~workbench.synth.render.cast_shadows`; faces merely turned from the sun not
        counted; the same for every method).
    """
    scene = Scene(dem, pixel_size, factor)
    truth = scene.dem.values
    rmse_, slope, shadow = {}, {}, {}
    for el in elevations:
        el = float(el)
        img = render(scene.dem, sun_azimuth, el, pixel_size=scene.pixel_size).values  # north-up, as the scene
        shadow[el] = 100.0 * float(np.asarray(cast_shadows(scene.dem, sun_azimuth, el, scene.pixel_size)).mean())
        for m in methods:
            z = reconstruct(img, scene.coarse, sun_azimuth, el, method=m, pixel_size=scene.pixel_size).values
            rmse_[(el, m)] = rmse(z, truth)
            slope[(el, m)] = slope_error_deg(z, truth, scene.pixel_size)
    index = pd.Index([float(e) for e in elevations], name="sun elevation (deg)")
    cols: dict[tuple[str, str], list[float]] = {}
    for name, vals in (("RMSE (m)", rmse_), ("slope error (deg)", slope)):
        for m in methods:
            cols[(name, m)] = [vals[(e, m)] for e in index]
    cols[("cast shadow (%)", "")] = [shadow[e] for e in index]
    out = pd.DataFrame(cols, index=index)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["quantity", "method"])
    return out


def polar_tile(dem: xr.DataArray, size: int, offset: int | tuple[int, int] = 40, factor: int = FACTOR) -> xr.DataArray:
    """A ``size`` × ``size`` tile of a polar ``(y, x)`` DEM, ``offset`` pixels from the grid centre (the pole).

    Parameters
    ----------
    dem
        Polar stereographic DEM on ``(y, x)`` metres (e.g. ``lola_ldem_south_1600m``), pole at the centre.
    size
        Tile size in pixels, a positive multiple of ``factor``.
    offset
        Shift of the tile from the centred position, in pixels: one number moves it along the diagonal
        (rows and columns alike), ``(rows, columns)`` moves it freely. Rows count down (towards −y),
        columns right (+x).
    factor
        The coarse DEM is ``factor`` times coarser; the tile must hold whole coarse pixels.

    Returns
    -------
    xarray.DataArray
        The tile as float64, coordinates and attrs kept.

    Raises
    ------
    InputError
        If ``size`` is not a positive multiple of ``factor`` or larger than the DEM, or if the tile would
        leave the DEM; the message gives the allowed offsets (e.g. −349…349 for a 64-pixel tile of the
        762-pixel LOLA 1600 m south-polar DEM).
    """
    if dem.dims != ("y", "x"):
        raise InputError(f"polar_tile needs a (y, x) DEM in metres, got dims {dem.dims}")
    dem = dem.isel(north_up_flips(dem, "y", "x"))  # rows towards -y, columns towards +x, however it is stored
    ny, nx = dem.sizes["y"], dem.sizes["x"]
    if not is_whole_number(size) or size < factor or size % factor:
        raise InputError(f"tile size must be a positive multiple of {factor} pixels, got {size!r}; e.g. 64")
    if size > min(ny, nx):
        raise InputError(f"a tile of {size} pixels does not fit in the {ny} x {nx} DEM; use a smaller size")
    dy, dx = (offset, offset) if np.ndim(offset) == 0 else tuple(offset)
    starts = []
    for name, n, d in (("row", ny, dy), ("column", nx, dx)):
        if not is_whole_number(d):
            raise InputError(f"the {name} offset must be a whole number of pixels, got {d!r}")
        lo, hi = -(n // 2 - size // 2), n - size - (n // 2 - size // 2)
        if not lo <= d <= hi:
            raise InputError(f"{name} offset {d} puts the {size}-pixel tile outside the {n}-pixel DEM; "
                             f"choose an offset from {lo} to {hi} pixels (or a smaller tile)")
        starts.append(n // 2 - size // 2 + int(d))
    (r0, c0) = starts
    return dem.isel(y=slice(r0, r0 + size), x=slice(c0, c0 + size)).astype("float64")


@dataclass
class PolarTileView:
    """What :func:`polar_tile_view` produces for one tile and sun."""

    image: xr.DataArray
    coarse: xr.DataArray
    results: dict[str, xr.DataArray]
    rmse_m: dict[str, float]
    layout: object


def polar_tile_view(
    tile: xr.DataArray,
    sun_azimuth: float,
    sun_elevation: float,
    methods: Sequence[str] = ("upsample", "sfs", "network"),
    factor: int = FACTOR,
    size: int = 240,
) -> PolarTileView:
    """Render a real DEM tile under a low sun, reconstruct it from the image and its coarse DEM, and draw it.

    Parameters
    ----------
    tile
        DEM tile on ``(y, x)`` metres (e.g. from :func:`polar_tile`), sides a multiple of ``factor``.
    sun_azimuth, sun_elevation
        Degrees (azimuth clockwise from up/north towards the sun).
    methods
        Methods of :func:`workbench.topography.model.reconstruct` to run.
    factor
        The coarse DEM is the tile averaged over ``factor`` × ``factor`` blocks (same extent).
    size
        Width of each map in screen pixels.

    Returns
    -------
    PolarTileView
        The image, the coarse DEM, each method's DEM, its RMSE against the tile (m) and a layout: image,
        truth and each reconstruction on the truth's colour range.
    """
    from .. import maps

    if tile.dims != ("y", "x") or tile.sizes["y"] % factor or tile.sizes["x"] % factor:
        raise InputError(f"the tile must be on (y, x) with sides a multiple of {factor}, got {dict(tile.sizes)}; "
                         "use polar_tile()")
    img = render(tile, sun_azimuth, sun_elevation)
    coarse = tile.coarsen(y=factor, x=factor).mean()  # same extent, fewer pixels (coords = block centres)
    coarse.attrs["units"] = "m"
    results = {m: reconstruct(img, coarse, sun_azimuth, sun_elevation, method=m) for m in methods}
    scores = {m: rmse(z.values, tile.values) for m, z in results.items()}
    lo, hi = float(tile.min()), float(tile.max())
    layout = maps.side_by_side(
        maps.image_map(img, cmap="gray", title=f"image, sun {sun_azimuth:.0f}°/{sun_elevation:.0f}°", size=size),
        maps.image_map(tile.rename("elevation"), clim=(lo, hi), title="LOLA truth", size=size),
        *[maps.image_map(z, clim=(lo, hi), title=f"{m}: RMSE {scores[m]:.1f} m", size=size)
          for m, z in results.items()], cols=3)  # three a row fit a notebook; five ran off the page
    return PolarTileView(image=img, coarse=coarse, results=results, rmse_m=scores, layout=layout)
