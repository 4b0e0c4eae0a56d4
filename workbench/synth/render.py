"""Shaded-relief renderer: photometric shading of a DEM with cast shadows, viewer at nadir.

Conventions (used everywhere in the workbench): row 0 is north/up, columns increase east/right, the sun
azimuth is in degrees clockwise from up/north towards the sun, the sun elevation is in degrees above the
local horizontal. The viewer looks straight down (emission angle = local slope angle), so the phase
angle is ``90° - elevation`` everywhere.

Three DEM flavours are accepted:

* local Cartesian tiles, dims ``(y, x)`` in metres (pixel size from the coordinates or
  ``attrs["pixel_size"]``) — polar stereographic DEMs (the LOLA polar products) are treated the same way;
* geographic grids, dims ``(lat, lon)`` in degrees; spacing is converted to metres on the lunar sphere
  (``cos(lat)`` for longitude), so the pixel width varies from row to row;
* a plain 2-D ndarray together with ``pixel_size`` (metres).

Cast shadows come from a vectorised horizon sweep: the grid is traversed one row (or column) at a time
along the sun's direction and the highest upstream "effective horizon" ``max(z(q) - tan(el)·|p-q|)`` is
carried forward with linear interpolation between neighbouring cells. A pixel is in shadow when that
horizon lies above it. This is the classic line-sweep horizon algorithm (e.g. Dozier, Bruno & Downey 1981;
Cabral, Max & Springmeyer 1987), written so that each step is one numpy operation over a whole row.

Accuracy: against a brute-force ray march (bilinear heights every 0.25 pixel), 0–2 % of the pixels of a
rough tile (LOLA south-polar 1600 m or procedural terrain, sun 2–5°) differ, the same level as an exact
running-maximum horizon on a grid rotated into the sun (tried, not adopted: its bilinear resampling lowers
the casters as much). The interpolation does diffuse the carried horizon sideways when the sun is off the
grid axes and diagonals, so an isolated narrow caster throws a shadow that is too short: a 20 m,
5-pixel pillar under a 10° sun from azimuth 33° shades 80 pixels instead of 113. Mind this for boulders.

References
----------
Dozier, J., Bruno, J. & Downey, P. (1981), A faster solution to the horizon problem, Computers &
Geosciences 7:145–151.
McEwen, A. S. (1991), Photometric functions for photoclinometry and other applications, Icarus 92:298.
Horn, B. K. P. (1981), Hill shading and the reflectance map, Proc. IEEE 69:14–47.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError
from ..geo import MOON_RADIUS_M
from ..photometry import hapke, lunar_lambert
from ..validate import check_sun

_METRIC_UNITS = {"m", "metre", "metres", "meter", "meters"}

__all__ = ["render", "cast_shadows", "surface_normals", "check_sun", "DemGrid", "dem_grid"]


@dataclass
class DemGrid:
    """A DEM reduced to what the renderer needs: heights (row 0 north) and pixel spacing in metres.

    ``dx`` has shape ``(ny, 1)`` (it varies with latitude on geographic grids), ``dy`` is a scalar.
    ``flip_y``/``flip_x`` record whether the input had to be flipped to put north up / east right.
    """

    z: np.ndarray
    dy: float
    dx: np.ndarray
    flip_y: bool = False
    flip_x: bool = False

    def restore(self, a: np.ndarray) -> np.ndarray:
        """Undo the flips applied on input so that ``a`` lines up with the original array."""
        if self.flip_y:
            a = a[::-1]
        if self.flip_x:
            a = a[:, ::-1]
        return a


def _check_units(da: xr.DataArray) -> None:
    units = str(da.attrs.get("units", "m")).strip().lower()
    if units not in _METRIC_UNITS:
        raise InputError(
            f"DEM units are {da.attrs.get('units')!r}, not metres; convert the heights to metres "
            "(e.g. multiply km by 1000) and set attrs['units'] = 'm'"
        )


def _steps(coord: np.ndarray, name: str) -> np.ndarray:
    """Steps between neighbouring coordinate values; longitude steps modulo 360° (into [-180, 180)), so
    that a grid crossing the ±180° seam is as regular as any other (as :func:`workbench.geo.north_up_flips`)."""
    d = np.diff(np.asarray(coord, dtype=float))
    if name == "lon":
        d = (d + 180.0) % 360.0 - 180.0
    if d.size == 0 or not np.all(np.isfinite(d)) or np.any(d == 0) or np.any(np.sign(d) != np.sign(d[0])):
        raise InputError(f"coordinate {name!r} must be finite, strictly monotonic and have >= 2 points")
    return d


def _spacing(coord: np.ndarray, name: str) -> float:
    """The regular (signed) step of ``coord``; longitudes may cross the ±180° seam."""
    d = _steps(coord, name)
    if not np.allclose(d, d[0], rtol=1e-3):
        raise InputError(f"coordinate {name!r} must be regularly spaced (resample the DEM first)")
    return float(d[0])


def dem_grid(dem, pixel_size: float | tuple[float, float] | None = None) -> DemGrid:
    """Reduce a DEM (DataArray on (y, x)/(lat, lon), or ndarray + ``pixel_size``) to a :class:`DemGrid`.

    ``pixel_size`` (metres, scalar or ``(dy, dx)``) overrides the pixel spacing of a (y, x) DataArray's
    coordinates, not their direction: ``y`` ascending (row 0 south) or ``x`` descending is flipped to
    north-up / east-right either way. Longitudes of a (lat, lon) DEM may cross the ±180° seam.
    """
    if isinstance(dem, xr.DataArray):
        _check_units(dem)
        if dem.ndim != 2:
            raise InputError(f"DEM must be 2-D, got dims {dem.dims}; select one band/time first")
        dims = tuple(dem.dims)
        z = np.asarray(dem.values, dtype=np.float64)
        if dims == ("lat", "lon"):
            if pixel_size is not None:
                raise InputError("pixel_size cannot be given for a geographic (lat, lon) DEM")
            lat = np.asarray(dem["lat"].values, dtype=float)
            dlat = _spacing(lat, "lat")
            dlon = _spacing(dem["lon"].values, "lon")
            flip_y, flip_x = dlat > 0, dlon < 0
            if flip_y:
                z, lat = z[::-1], lat[::-1]
            if flip_x:
                z = z[:, ::-1]
            dy = np.deg2rad(abs(dlat)) * MOON_RADIUS_M
            dx = np.deg2rad(abs(dlon)) * MOON_RADIUS_M * np.cos(np.deg2rad(lat))
            dx = np.maximum(dx, 1e-3 * dy)[:, None]
            return DemGrid(z, dy, dx, flip_y, flip_x)
        if dims != ("y", "x"):
            raise InputError(
                f"DEM dims {dims} not understood; use ('y', 'x') in metres or ('lat', 'lon') in degrees"
            )
        flip_y = flip_x = False
        if "y" in dem.coords and "x" in dem.coords and dem.sizes["y"] > 1 and dem.sizes["x"] > 1:
            # the coordinates say which way is north/east even when pixel_size= gives the spacing
            if pixel_size is None:
                sy, sx = _spacing(dem["y"].values, "y"), _spacing(dem["x"].values, "x")
                pixel_size = (abs(sy), abs(sx))
            else:
                sy, sx = _steps(dem["y"].values, "y")[0], _steps(dem["x"].values, "x")[0]
            flip_y, flip_x = sy > 0, sx < 0
        elif pixel_size is None:
            if "pixel_size" in dem.attrs:
                pixel_size = dem.attrs["pixel_size"]
            else:
                raise InputError("DEM has no y/x coordinates and no attrs['pixel_size']; give pixel_size=")
        if flip_y:
            z = z[::-1]
        if flip_x:
            z = z[:, ::-1]
    else:
        z = np.asarray(dem, dtype=np.float64)
        if z.ndim != 2:
            raise InputError(f"DEM array must be 2-D, got shape {z.shape}")
        if pixel_size is None:
            raise InputError("a plain array DEM needs pixel_size= (metres per pixel)")
        flip_y = flip_x = False
    ps = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,))
    if not np.all(np.isfinite(ps)) or np.any(ps <= 0):
        raise InputError(f"pixel_size must be positive metres, got {pixel_size!r}")
    return DemGrid(z, float(ps[0]), np.full((z.shape[0], 1), float(ps[1])), flip_y, flip_x)


def surface_normals(grid: DemGrid) -> tuple[np.ndarray, np.ndarray]:
    """Height gradients ``(dz/d_east, dz/d_north)`` (dimensionless), central differences inside."""
    z = grid.z
    gy, gx = np.gradient(z)  # per pixel: gy along +row (south), gx along +col (east)
    return gx / grid.dx, -gy / grid.dy


def _sweep(z: np.ndarray, lateral: np.ndarray, step_len: np.ndarray, tan_el: float) -> np.ndarray:
    """Horizon sweep along axis 0 (the sun lies before row 0); ``lateral`` = column shift per step.

    ``lateral`` and ``step_len`` broadcast to ``z.shape``. The carried horizon is padded with a very low
    value on both sides, so rays entering from outside the grid cast nothing. Where ``|lateral| > 1``
    somewhere (a geographic grid whose pixels narrow towards a pole, sun near north or south) each step
    is split into ``ceil(max |lateral|)`` sub-steps over heights interpolated linearly along axis 0, so
    the ray never jumps over a column.
    """
    K, J = z.shape
    n_sub = int(np.ceil(float(np.max(np.abs(lateral))) - 1e-9)) if np.size(lateral) else 1
    if n_sub > 1 and K > 1:
        t = np.arange((K - 1) * n_sub + 1) / n_sub  # sub-step positions along axis 0
        k0 = np.minimum(np.floor(t).astype(np.intp), K - 2)
        w = (t - k0)[:, None]
        zi = z[k0] * (1.0 - w) + z[k0 + 1] * w  # NaN next to a sub-step stays NaN: it casts nothing
        kr = np.minimum(np.ceil(t - 1e-9).astype(np.intp), K - 1)  # the step each sub-step belongs to
        lat_b, step_b = np.broadcast_to(lateral, (K, J)), np.broadcast_to(step_len, (K, J))
        return _sweep(zi, lat_b[kr] / n_sub, step_b[kr] / n_sub, tan_el)[::n_sub]
    low = -1e300
    shadow = np.zeros((K, J), dtype=bool)
    pos = np.arange(J, dtype=float) - np.broadcast_to(lateral, (K, J)) + 1.0  # index into padded row
    pos = np.clip(pos, 0.0, J + 1.0)
    j0 = np.minimum(np.floor(pos).astype(np.intp), J)
    f = pos - j0
    drop = np.broadcast_to(step_len * tan_el, (K, J))
    zf = np.where(np.isnan(z), low, z)  # NaN heights cast no shadow
    prev = np.full(J + 2, low)
    horizon = np.full(J, low)
    constant = np.ndim(lateral) == 0 or np.all(lateral == np.ravel(lateral)[0])
    for k in range(1, K):
        np.maximum(horizon, zf[k - 1], out=prev[1:-1])
        r = k if not constant else 1
        a = prev[j0[r]]
        horizon = a + f[r] * (prev[j0[r] + 1] - a) - drop[k]
        np.greater(horizon, z[k], out=shadow[k])
    return shadow


def _cast_shadows_grid(grid: DemGrid, az: float, el: float) -> np.ndarray:
    z = grid.z
    ny, nx = z.shape
    tan_el = np.tan(np.deg2rad(el))
    if el >= 90.0 - 1e-9:
        return np.zeros(z.shape, dtype=bool)
    s_e, s_n = np.sin(np.deg2rad(az)), np.cos(np.deg2rad(az))
    dx = np.broadcast_to(grid.dx, (ny, nx))
    dy = grid.dy
    # light travels from the sun along -s: per metre it moves d_row = +s_n/dy rows, d_col = -s_e/dx cols
    d_row = s_n / dy
    d_col = -s_e / dx
    # march along the axis the ray crosses fastest everywhere (smallest largest sideways shift per step);
    # _sweep sub-steps where that shift still exceeds one pixel
    with np.errstate(divide="ignore", invalid="ignore"):
        worst_row = float(np.max(np.abs(d_col))) / abs(d_row) if d_row != 0 else np.inf
        worst_col = abs(d_row) / float(np.min(np.abs(d_col))) if np.all(d_col != 0) else np.inf
    if worst_row <= worst_col:
        lateral = d_col / abs(d_row)  # columns per row step
        step = np.hypot(dy, lateral * dx)
        if d_row >= 0:
            return _sweep(z, lateral, step, tan_el)
        return _sweep(z[::-1], lateral[::-1], step[::-1], tan_el)[::-1]
    # step along columns; lateral = rows per column step
    lateral = d_row / np.abs(d_col)
    step = np.hypot(dx, lateral * dy)
    zt, lt, st = z.T, lateral.T, step.T
    if np.all(d_col >= 0):
        return _sweep(zt, lt, st, tan_el).T
    return _sweep(zt[::-1], lt[::-1], st[::-1], tan_el)[::-1].T


def cast_shadows(dem, sun_azimuth: float, sun_elevation: float, pixel_size=None) -> xr.DataArray | np.ndarray:
    """Boolean mask of cast shadows (True = a point of terrain towards the sun blocks the sun).

    Self-shadowing (faces turned away from the sun) is not included; see :func:`render`.
    Returns a DataArray when ``dem`` is one, else an ndarray.
    """
    az, el = check_sun(sun_azimuth, sun_elevation)
    grid = dem_grid(dem, pixel_size)
    mask = grid.restore(_cast_shadows_grid(grid, az, el))
    if isinstance(dem, xr.DataArray):
        return xr.DataArray(mask, coords=dem.coords, dims=dem.dims, name="cast_shadow",
                            attrs={"units": "1", "sun_azimuth": az, "sun_elevation": el})
    return mask


def render(
    dem,
    sun_azimuth: float,
    sun_elevation: float,
    model: str = "lunar-lambert",
    pixel_size: float | tuple[float, float] | None = None,
    albedo: float | np.ndarray | None = None,
    shadows: bool = True,
) -> xr.DataArray:
    """Render a DEM as a nadir image (radiance factor I/F) under a given sun, with cast shadows.

    Parameters
    ----------
    dem
        Heights in metres: DataArray on ``(y, x)`` (local or polar stereographic, metres), on
        ``(lat, lon)`` (degrees, lunar sphere), or a 2-D ndarray with ``pixel_size``.
    sun_azimuth
        Degrees clockwise from north/up towards the sun.
    sun_elevation
        Degrees above the horizontal, in (0, 90]; otherwise :class:`~workbench.errors.InputError`.
    model
        ``"lunar-lambert"`` (McEwen 1991, ``albedo`` = normal albedo A, default 1) or ``"hapke"``
        (``albedo`` = single-scattering albedo w, default 0.3, other parameters from
        :data:`workbench.photometry.HAPKE_DEFAULTS`).
    pixel_size
        Metres per pixel (scalar or ``(dy, dx)``); required for ndarrays; overrides the spacing of (y, x)
        coords (their direction still decides which way is north and east).
    albedo
        Scalar or array broadcastable to the DEM.
    shadows
        Cast shadows by a horizon sweep (pixels in shadow are 0). Self-shadowed faces (i >= 90°) are 0
        either way.

    Returns
    -------
    xarray.DataArray
        Radiance factor (``units = "1"``) on the DEM's grid; NaN wherever the DEM (or its gradient) is
        NaN. Attributes record the geometry (sun azimuth/elevation, phase angle, model, pixel size).

    Examples
    --------
    >>> import numpy as np
    >>> img = render(np.zeros((4, 4)), 135.0, 30.0, pixel_size=1.0)
    >>> round(float(img[1, 1]), 4)  # flat ground: i = 60 deg, e = 0, g = 60 deg
    0.5693
    """
    az, el = check_sun(sun_azimuth, sun_elevation)
    if model in ("lunar_lambert", "lunar-lambert"):
        model = "lunar-lambert"
    elif model != "hapke":
        raise InputError(f"unknown photometric model {model!r}; use 'lunar-lambert' or 'hapke'")
    grid = dem_grid(dem, pixel_size)
    p, q = surface_normals(grid)  # dz/de, dz/dn
    s_e = np.sin(np.deg2rad(az)) * np.cos(np.deg2rad(el))
    s_n = np.cos(np.deg2rad(az)) * np.cos(np.deg2rad(el))
    s_u = np.sin(np.deg2rad(el))
    norm = np.sqrt(1.0 + p * p + q * q)
    cos_i = (-p * s_e - q * s_n + s_u) / norm
    cos_e = 1.0 / norm
    valid = np.isfinite(cos_i) & np.isfinite(grid.z)
    i_deg = np.degrees(np.arccos(np.clip(np.where(valid, cos_i, 1.0), 0.0, 1.0)))
    e_deg = np.degrees(np.arccos(np.clip(np.where(valid, cos_e, 1.0), 0.0, 1.0)))
    g = 90.0 - el
    if albedo is not None:
        alb = albedo
        if np.ndim(albedo) >= 1:  # a map or a per-column/row profile: on the DEM's own grid, flipped with it
            try:
                alb = grid.restore(np.broadcast_to(np.asarray(albedo, dtype=float), grid.z.shape))
            except ValueError:
                raise InputError(f"albedo of shape {np.shape(albedo)} does not broadcast to the DEM's "
                                 f"{grid.z.shape}; give one number, a map of the DEM's shape or a profile "
                                 "along its last dimension") from None
    if model == "lunar-lambert":
        out = lunar_lambert(i_deg, e_deg, g, albedo=1.0 if albedo is None else alb)
    else:
        out = hapke(0.3 if albedo is None else alb, i_deg, e_deg, g)
    out = np.where(cos_i > 0, out, 0.0)
    if shadows:
        out = np.where(_cast_shadows_grid(grid, az, el), 0.0, out)
    out = np.where(valid, out, np.nan)
    out = grid.restore(out)
    attrs = {
        "units": "1",
        "long_name": "radiance factor I/F",
        "sun_azimuth": az,
        "sun_elevation": el,
        "phase_angle": g,
        "emission": "nadir viewer (e = local slope)",
        "photometric_model": model,
        "shadows": bool(shadows),
        "pixel_size": float(grid.dy) if np.allclose(grid.dx, grid.dy) else [float(grid.dy), float(np.mean(grid.dx))],
    }
    if isinstance(dem, xr.DataArray):
        attrs = {k: v for k, v in dem.attrs.items() if k not in ("units", "long_name")} | attrs
        return xr.DataArray(out.astype(np.float32), coords=dem.coords, dims=dem.dims, name="radiance_factor",
                            attrs=attrs)
    return xr.DataArray(out.astype(np.float32), dims=("y", "x"), name="radiance_factor", attrs=attrs)


class _CallableModule(types.ModuleType):
    """``workbench.synth.render`` is both this module and the function :func:`render`.

    Importing the submodule makes Python bind ``workbench.synth.render`` to the *module*, which would
    shadow the lazily exported function of the same name; making the module callable keeps
    ``from workbench.synth import render; render(dem, az, el)`` working either way.
    """

    def __call__(self, *args, **kwargs):
        return render(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
