"""Maps out of the workbench: tiled, deflate-compressed GeoTIFFs with the lunar CRS, for QGIS, GDAL or ArcGIS.

:func:`to_geotiff` writes a ``(lat, lon)`` map (geographic, IAU_2015:30100) or a ``(y, x)`` polar
stereographic map in metres (the CRS its ``attrs["crs"]`` or ``spatial_ref`` coordinate names; the GeoTIFF
keeps the projection and the lunar sphere, though not IAU's code, which :func:`workbench.rasters.open_geotiff`
recovers) as one float32 band per variable (a ``(band, ...)`` cube: one per band label, with ``wavelength_nm`` and
``fwhm_nm``), north up, NaN as nodata, each band named after its variable with its units in the band's metadata
(GDAL tags ``units`` and ``long_name``). The file is written under a temporary name and renamed, so no
half-written GeoTIFF is ever left. ``workbench export`` does the same from a zarr store (``workbench invert
map``'s output), a NetCDF file or a GeoTIFF.

References
----------
Archinal, B. A. et al. (2018), Report of the IAU Working Group on Cartographic Coordinates and Rotational
Elements: 2015, Celest. Mech. Dyn. Astr. 130, 22 (the IAU_2015 lunar frames; PROJ's IAU_2015 authority).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError
from .geo import CRS_GEOGRAPHIC
from .io import atomic_path

__all__ = ["to_geotiff", "grid_crs", "map_variables"]

#: The relative spread of grid steps accepted as "regular" (a GeoTIFF has one pixel size per axis).
_REGULAR_RTOL = 1e-3


def grid_crs(da: xr.DataArray) -> str:
    """The CRS of a map: for a ``(lat, lon)`` grid its ``attrs["crs"]``, IAU_2015:30100 when it has none; else what
    ``attrs["crs"]`` or the ``spatial_ref`` coordinate says as text (a ``(y, x)`` grid without either cannot be
    placed on the Moon)."""
    if {"lat", "lon"} <= set(da.dims):
        return str(da.attrs.get("crs") or CRS_GEOGRAPHIC)
    from .maps import _crs_sources

    for s in _crs_sources(da):
        if isinstance(s, str) and s:
            return s
    raise InputError(
        f"a map on dims {tuple(da.dims)} carries no CRS (no attrs['crs'] and no spatial_ref coordinate), so it "
        "cannot be placed on the Moon; set da.attrs['crs'] (e.g. 'IAU_2015:30135' for the south-polar "
        "stereographic grids) or give a (lat, lon) map"
    )


def _grid_dims(da: xr.DataArray) -> tuple[str, str]:
    for y, x in (("lat", "lon"), ("y", "x")):
        if set(da.dims) == {y, x}:
            return y, x
    extra = [d for d in da.dims if d not in ("lat", "lon", "y", "x")]
    hint = (f"; choose one value of {', '.join(map(repr, extra))} first, e.g. da.isel({extra[0]}=0) or "
            f"da.sel({extra[0]}=...)") if extra else ""
    raise InputError(f"{da.name or 'the map'} has dims {tuple(da.dims)}; a GeoTIFF band needs exactly (lat, lon) "
                     f"or (y, x){hint}")


def _check_regular(values: np.ndarray, dim: str) -> None:
    if values.size < 2:
        raise InputError(f"the map has {values.size} value(s) along {dim!r}; a GeoTIFF needs at least 2 to know "
                         "its pixel size")
    d = np.diff(values.astype(np.float64))
    if not np.allclose(d, d[0], rtol=_REGULAR_RTOL, atol=0.0) or d[0] == 0:
        raise InputError(f"{dim!r} is not evenly spaced (steps {d.min():.6g}..{d.max():.6g}); a GeoTIFF has one "
                         f"pixel size per axis: interpolate onto a regular grid first (da.interp({dim}=...))")


def map_variables(ds: xr.Dataset) -> list[str]:
    """The variables of ``ds`` that :func:`to_geotiff` writes by default: every numeric (or boolean) 2-D one."""
    return [str(k) for k, v in ds.data_vars.items() if v.ndim == 2 and v.dtype.kind in "biuf"]


def _bands(obj: xr.DataArray | xr.Dataset, variables: Sequence[str] | None) -> list[xr.DataArray]:
    if isinstance(obj, xr.DataArray):
        if variables is not None:
            raise InputError("variables= selects variables of a Dataset; a DataArray is written as one band "
                             "(or one per label of its 'band' dim)")
        return _spectral_bands(obj)
    if variables is None:
        names = map_variables(obj)
        if not names:
            have = ", ".join(map(str, obj.data_vars)) or "none"
            raise InputError(f"the Dataset has no numeric 2-D variable to write (its variables: {have}); name the "
                             "ones to write with variables=[...] (--var; a (band, lat, lon) cube becomes one band "
                             "per label) or select 2-D maps first (e.g. ds.isel(band=0))")
    else:
        names = list(variables)
        missing = [n for n in names if n not in obj.data_vars]
        if missing:
            raise InputError(f"variable(s) {missing} are not in the Dataset; it has "
                             f"{', '.join(map(str, obj.data_vars))}")
        if not names:
            raise InputError("variables=[] selects nothing to write; name at least one variable")
    out = []
    for n in names:
        v = obj[n]
        if v.name is None:
            v = v.rename(n)
        if "crs" not in v.attrs and "crs" in obj.attrs:
            v = v.assign_attrs(crs=obj.attrs["crs"])
        out.extend(_spectral_bands(v))
    return out


def _spectral_bands(v: xr.DataArray) -> list[xr.DataArray]:
    """A map as itself; a ``(band, ...)`` cube (e.g. reflectance) as one map per band, named for its band and
    keeping its ``wavelength``/``fwhm`` (nm) as attributes, which :func:`to_geotiff` stores per band."""
    if "band" not in v.dims:
        return [v]
    if "band" not in v.coords:
        raise InputError(f"{v.name or 'the cube'} has a 'band' dim without band names; label it first, e.g. "
                         "da.assign_coords(band=['R415', 'R750', ...])")
    out = []
    for i in range(v.sizes["band"]):
        b = v.isel(band=i)
        extra = {f"{c}_nm": float(b[c]) for c in ("wavelength", "fwhm") if c in b.coords and b[c].ndim == 0}
        out.append(b.drop_vars("band").rename(str(v["band"].values[i])).assign_attrs(extra))
    return out


def to_geotiff(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike,
               variables: Sequence[str] | None = None) -> Path:
    """Write a map (or several on one grid) as a float32 GeoTIFF with the lunar CRS, north up.

    Parameters
    ----------
    obj
        A ``(lat, lon)`` DataArray in degrees (either longitude convention, rows in either order) or a
        ``(y, x)`` one in metres with a CRS in ``attrs["crs"]`` or a ``spatial_ref`` coordinate; or a Dataset
        whose 2-D variables on one such grid become one band each.
    path
        Output file (``.tif``); missing folders are created, an existing file is replaced.
    variables
        For a Dataset, which variables to write (default: every numeric 2-D one), in band order.

    Returns
    -------
    pathlib.Path
        The written file. Band ``i`` is described by the variable's name; its ``units`` and ``long_name``
        attributes are stored as the band's GDAL metadata, the map's other string/number attributes as the
        file's. NaN cells are nodata (NaN); values are stored as float32 (about 7 significant digits).

    Raises
    ------
    InputError
        A map that is not 2-D on (lat, lon) or (y, x), an unevenly spaced or one-pixel axis, bands on
        different grids, a non-numeric variable, a ``(y, x)`` map without a CRS, an infinite value, an output
        folder that cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib, rasterio
    >>> import workbench.geo as geo
    >>> feo = geo.global_template(1, name="FeO").fillna(8.0).assign_attrs(units="wt%")
    >>> p = to_geotiff(feo, pathlib.Path(tempfile.mkdtemp()) / "FeO.tif")
    >>> with rasterio.open(p) as src:
    ...     print(src.crs, src.bounds.left, src.bounds.top, src.descriptions, src.tags(1)["units"])
    IAU_2015:30100 -180.0 90.0 ('FeO',) wt%
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    bands = _bands(obj, variables)
    first = bands[0]
    ydim, xdim = _grid_dims(first)
    crs = grid_crs(first)
    ys = first[ydim].values
    xs = first[xdim].values
    for b in bands:
        if b.dtype.kind not in "biuf":
            raise InputError(f"{b.name!r} has dtype {b.dtype}; a GeoTIFF band here is numeric (cast it first, e.g. "
                             f"da.astype('float32'))")
        by, bx = _grid_dims(b)
        if (by, bx) != (ydim, xdim) or not (np.array_equal(b[by].values, ys) and np.array_equal(b[bx].values, xs)):
            raise InputError(f"{b.name!r} is not on the grid of {first.name!r}; a GeoTIFF's bands share one grid: "
                             "write them to separate files or interpolate one onto the other (da.interp_like)")
    _check_regular(ys, ydim)
    _check_regular(xs, xdim)
    stacked = []
    for b in bands:
        v = b.transpose(ydim, xdim).astype(np.float32)
        n_inf = int(np.isinf(v.values).sum())
        if n_inf:
            raise InputError(f"{b.name!r} has {n_inf} infinite value(s) (after the float32 cast); a GeoTIFF reader "
                             "would show them as data: replace them with NaN (nodata) or a finite value")
        stacked.append(v)
    cube = xr.concat(stacked, dim="band").assign_coords(band=np.arange(1, len(stacked) + 1))
    cube = cube.sortby(ydim, ascending=False).sortby(xdim)  # north up, west to east
    cube = cube.drop_vars([c for c in cube.coords if c not in (ydim, xdim, "band")])
    cube.attrs = {k: v for k, v in obj.attrs.items()
                  if isinstance(v, (str, int, float)) and k not in ("units", "long_name", "crs", "grid_mapping")
                  and not k.startswith("_")}
    cube = cube.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim).rio.write_crs(crs).rio.write_nodata(np.nan)
    path = Path(path)
    with atomic_path(path) as tmp:
        import rasterio

        from .maps import shown_units

        with warnings.catch_warnings():  # rioxarray's own use of affine's deprecated '*' (not ours)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            cube.rio.to_raster(tmp, driver="GTiff", compress="deflate", tiled=True)

        with rasterio.open(tmp, "r+") as dst:
            for i, b in enumerate(bands, start=1):
                dst.set_band_description(i, str(b.name))
                tags = {k: str(b.attrs[k]) for k in ("units", "long_name", "wavelength_nm", "fwhm_nm")
                        if k in b.attrs}
                if tags:
                    dst.update_tags(i, **tags)
                if shown_units(b.attrs.get("units")):  # GDAL's own band unit, which QGIS shows
                    dst.set_band_unit(i, shown_units(b.attrs["units"]))
    return path
