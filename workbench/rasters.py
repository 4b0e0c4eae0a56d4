"""Your own raster files onto the workbench's grids: :func:`open_geotiff`, the inverse of
:func:`workbench.export.to_geotiff`, and :func:`open_map_file` for any map file a command takes (zarr, NetCDF,
GeoTIFF).

A GeoTIFF in a lunar geographic CRS (any IAU_2015 lunar code, or a WKT whose ellipsoid is the Moon's) becomes a
``(lat, lon)`` map in degrees, longitudes -180...180 west to east (a 0...360 file is wrapped), rows in the
file's order; a multiband file becomes a ``(band, lat, lon)`` cube whose ``band`` coordinate holds the band
names (and ``wavelength``/``fwhm`` in nm where the file records them), the layout
:meth:`workbench.inversion.model.OxideInverter.predict` and ``workbench invert map`` take. A projected lunar
file (polar stereographic) becomes ``(y, x)`` in metres with its CRS in ``attrs["crs"]``; :func:`warp_to_latlon`
resamples such a map onto lunar latitude/longitude. The file's nodata is NaN and its scale/offset are applied;
data are read lazily with dask, in chunks.

References
----------
Archinal, B. A. et al. (2018), Report of the IAU Working Group on Cartographic Coordinates and Rotational
Elements: 2015, Celest. Mech. Dyn. Astr. 130, 22 (the lunar radius 1737.4 km of the IAU_2015 frames).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError
from .geo import MOON_RADIUS_M  # a CRS whose ellipsoid differs from it by more than 1 % is not lunar

__all__ = ["dataset_to_latlon", "open_geotiff", "open_map_file", "warp_to_latlon"]

_CHUNK = 2048

#: File name endings :func:`open_geotiff` reads, through GDAL: GeoTIFF, and the planetary archives' own formats,
#: PDS3 (a ``.lbl`` label, or an ``.img`` with its label attached), PDS4 (an ``.xml`` label), ISIS3 cubes and VICAR.
GEOTIFF_SUFFIXES = (".tif", ".tiff")
PLANETARY_SUFFIXES = (".lbl", ".img", ".xml", ".cub", ".vic")
RASTER_SUFFIXES = GEOTIFF_SUFFIXES + PLANETARY_SUFFIXES
#: How the file types are named in messages that list what a command reads.
RASTER_KINDS = "a GeoTIFF (.tif), or a PDS3 (.lbl/.img), PDS4 (.xml), ISIS3 (.cub) or VICAR (.vic) raster"


def _lunar_crs(crs_text: str, path: Path):
    """The pyproj CRS of ``crs_text``; :class:`InputError` when it is unknown or not the Moon's."""
    import pyproj

    try:
        crs = pyproj.CRS.from_user_input(crs_text)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"{path.name}: CRS {crs_text!r} is not one PROJ knows ({exc}); pass crs= (--crs) with "
                         "an IAU_2015 code, e.g. 'IAU_2015:30100' for lunar latitude/longitude") from None
    a = crs.ellipsoid.semi_major_metre if crs.ellipsoid is not None else float("nan")
    if not abs(a - MOON_RADIUS_M) <= 0.01 * MOON_RADIUS_M:
        body = ", the Earth's" if abs(a - 6378137.0) < 1e4 else ""
        raise InputError(f"{path.name}: its CRS ({crs.name}) is on a body of radius {a / 1e3:.1f} km{body}, not "
                         f"the Moon's {MOON_RADIUS_M / 1e3:.1f} km; if the data are lunar and only the label is wrong, "
                         "pass crs='IAU_2015:30100' (--crs) for latitude/longitude in degrees")
    return crs


@functools.cache
def _moon_codes() -> tuple[str, ...]:
    """The IAU_2015 codes of the Moon's sphere in PROJ's database, 30100 ... 30190 (Mollweide too); read once."""
    import pyproj

    return tuple(f"IAU_2015:{i.code}" for i in pyproj.database.query_crs_info(auth_name="IAU_2015")
                 if len(i.code) == 5 and i.code.startswith("301"))


def _crs_name(crs) -> str:
    """The CRS's authority code, else the IAU_2015 lunar code whose mapping it has (a GeoTIFF keeps a polar
    projection's parameters but not IAU's code; PROJ's own proposal is tried first, then every IAU_2015 code of the
    Moon's sphere, 30100-30190, for projections it proposes none for, such as Mollweide; a candidate is accepted
    only when it maps test points to the same place), else its WKT."""
    import pyproj

    from .geo import CRS_EQUIRECTANGULAR, CRS_GEOGRAPHIC, CRS_NORTH_POLAR, CRS_SOUTH_POLAR

    auth = crs.to_authority()
    if auth:
        return ":".join(auth)
    found = crs.to_authority(auth_name="IAU_2015", min_confidence=25)
    common = [CRS_GEOGRAPHIC, CRS_SOUTH_POLAR, CRS_NORTH_POLAR, CRS_EQUIRECTANGULAR]
    candidates = list(dict.fromkeys(([":".join(found)] if found else []) + common + list(_moon_codes())))
    lon, lat = np.meshgrid([-170.0, -60.0, 0.0, 45.0, 135.0], [-89.0, -70.0, -30.0, 0.0, 30.0, 70.0, 89.0])
    for code in candidates:
        cand = pyproj.CRS(code)
        if cand.is_geographic != crs.is_geographic:
            continue
        try:  # PROJ refuses to relate a sphere it takes for another body (e.g. R = 1738 km) to the Moon's
            here, there = (np.asarray(pyproj.Transformer.from_crs(crs.geodetic_crs, c, always_xy=True)
                                      .transform(lon, lat)) for c in (crs, cand))
        except pyproj.exceptions.ProjError:
            continue
        if np.allclose(here, there, rtol=1e-9, atol=1e-3, equal_nan=True):  # rtol: far points lie at ~1e8 m
            return code
    return crs.to_wkt()


def _band_labels(path: Path, count: int, descriptions: Sequence[str | None],
                 bands: Sequence[str] | None, wavelengths: np.ndarray | None = None) -> list[str]:
    """The bands' names: ``bands``, else the file's descriptions, else (bands with centres in the label but no
    names) ``R<nm>`` after their centres, as the workbench's instruments name theirs (``R415``, ``R750``, ...)."""
    if bands is None and count > 1 and any(not d for d in descriptions) and wavelengths is not None:
        named = [f"R{round(float(w))}" for w in wavelengths]
        if len(set(named)) == count:
            descriptions = named
    if bands is not None:
        labels = [str(b) for b in bands]
        if len(labels) != count:
            raise InputError(f"{path.name} has {count} band(s) but bands= (--bands) names {len(labels)} "
                             f"({', '.join(labels)}); name each band of the file, in the file's order")
    else:
        if count > 1 and any(not d for d in descriptions):
            raise InputError(f"{path.name}: its {count} bands are not all named (descriptions: {list(descriptions)}); "
                             "pass bands= (--bands) with one name per band in the file's order, e.g. "
                             "R415,R750,R900,R950,R1000 for Clementine UVVIS")
        labels = [str(d) if d else path.stem for d in descriptions]
    twice = sorted({b for b in labels if labels.count(b) > 1})
    if twice:
        raise InputError(f"{path.name}: band name(s) {twice} used more than once; give each band its own name "
                         "(bands=, --bands)")
    return labels


def _band_numbers(tags: list[dict], key: str) -> np.ndarray | None:
    """Per-band numbers recorded as GDAL band metadata ``key`` (all bands, or None)."""
    try:
        vals = [float(t[key]) for t in tags]
    except (KeyError, ValueError):
        return None
    return np.asarray(vals)


#: Units as the planetary labels spell them (PDS3 ``UNIT``, GDAL's band unit of ISIS3/PDS4), in CF/UDUNITS form.
_LABEL_UNITS = {"meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
                "km": "km", "m": "m", "degree": "degree", "degrees": "degree", "deg": "degree", "kelvin": "K",
                "k": "K", "reflectance": "1", "i/f": "1", "radiance factor": "1"}


def _label(src) -> dict:
    """The label GDAL parsed from a PDS3, ISIS3 or VICAR file (its ``json:`` metadata domain), or ``{}``."""
    import json

    for ns in src.tag_namespaces():
        if ns.startswith("json:"):
            try:  # one JSON text, which rasterio splits as KEY:VALUE at its first colon
                label = json.loads(":".join(next(iter(src.tags(ns=ns).items()))))
            except (StopIteration, ValueError):
                return {}
            return label if isinstance(label, dict) else {}
    return {}


def _band_units(src, tags: list[dict], label: dict) -> list[str | None]:
    """Each band's units: its ``units`` metadata (as :func:`workbench.export.to_geotiff` writes them), else GDAL's
    band unit (GeoTIFF, ISIS3, PDS4), else a PDS3 label's ``IMAGE`` ``UNIT``; label spellings such as ``METER``
    become ``m``. None where the file says nothing (or ``N/A``). ``label``: :func:`_label`'s."""
    image = label.get("IMAGE")
    pds3 = image.get("UNIT") if isinstance(image, dict) else None
    found = []
    for t, unit in zip(tags, src.units, strict=True):
        if t.get("units"):
            found.append(t["units"])
            continue
        text = str(unit or pds3 or "").strip().strip('"')
        found.append(None if text.upper() in ("", "N/A", "NONE", "UNK") else _LABEL_UNITS.get(text.lower(), text))
    return found


#: Wavelength units of planetary labels (PDS3 ``BAND_BIN_UNIT``, ISIS3 ``BandBin`` units) in nanometres.
_NM_PER = {"NANOMETER": 1.0, "NANOMETERS": 1.0, "NM": 1.0, "MICROMETER": 1e3, "MICROMETERS": 1e3, "MICRON": 1e3,
           "MICRONS": 1e3, "UM": 1e3}


def _label_band_bins(label: dict, count: int) -> dict[str, list[float]]:
    """Band centres and widths in nm from a PDS3 label's ``BAND_BIN_CENTER``/``BAND_BIN_WIDTH`` (``IMAGE``
    object) or an ISIS3 cube's ``BandBin`` ``Center``/``Width``, as ``{"wavelength_nm": [...], "fwhm_nm":
    [...]}`` (only what the label gives for every band; widths only beside centres). Values in micrometres are
    converted: by their unit, or, with none the table knows, when every centre is below 10 (widths follow their
    centres). ``label``: :func:`_label`'s, for a file of ``count`` bands."""
    image = label.get("IMAGE") if isinstance(label.get("IMAGE"), dict) else {}
    isis = label.get("IsisCube", {}).get("BandBin", {}) if isinstance(label.get("IsisCube"), dict) else {}
    found, scale = {}, None
    for key, pds3, cube in (("wavelength_nm", "BAND_BIN_CENTER", "Center"), ("fwhm_nm", "BAND_BIN_WIDTH", "Width")):
        raw = image.get(pds3, isis.get(cube) if isinstance(isis, dict) else None)
        if isinstance(raw, dict):  # a value with its unit: {"value": [...], "unit": "nm"}
            raw, unit = raw.get("value"), str(raw.get("unit", ""))
        else:
            unit = str(image.get("BAND_BIN_UNIT", ""))
        raw = raw if isinstance(raw, list) else [raw]
        try:
            vals = [float(v["value"] if isinstance(v, dict) else v) for v in raw]
        except (TypeError, ValueError, KeyError):
            continue
        if len(vals) != count or not all(np.isfinite(vals)) or (key == "fwhm_nm" and scale is None):
            continue  # (widths only beside centres)
        known = _NM_PER.get(unit.strip().strip("<>").upper())
        # a unit the table knows; else the centres' scale (all below 10: micrometres), which widths follow
        scale = known or (scale if scale is not None else 1e3 if max(vals) < 10 else 1.0)
        found[key] = [v * scale for v in vals]
    return found


def _image_offset(label: dict) -> int:
    """Bytes before the image data in their file, as the label GDAL read gives them: a PDS3 ``^IMAGE`` pointer
    (records or ``<BYTES>``), an ISIS3 cube's ``StartByte`` or a VICAR label's ``LBLSIZE`` (and binary header
    lines); 0 where the label says none. ``label``: :func:`_label`'s."""
    try:
        if "IsisCube" in label:
            return int(label["IsisCube"]["Core"]["StartByte"]) - 1
        if "LBLSIZE" in label:
            return int(label["LBLSIZE"]) + int(label.get("NLB", 0)) * int(label.get("RECSIZE", 0))
        ptr = label.get("^IMAGE")  # n (records), n <BYTES>, a file name, or (file name, one of those)
        ptr = ptr[-1] if isinstance(ptr, list) else ptr
        if isinstance(ptr, dict):
            return int(ptr["value"]) - 1
        text = str(ptr).replace(" ", "").upper()
        if text.endswith("<BYTES>"):
            return int(text[:-7]) - 1
        return (int(text) - 1) * int(label["RECORD_BYTES"]) if text.isdigit() else 0
    except (ValueError, TypeError, KeyError, AttributeError):
        return 0


def _check_not_truncated(path: Path, src, label: dict) -> None:
    """A PDS/ISIS/VICAR raster whose image data are shorter than its label says (an interrupted download) is
    refused: GDAL would read the missing part as zeros (or fail on the first read of it)."""
    need = src.count * src.height * src.width * np.dtype(src.dtypes[0]).itemsize
    files = [Path(f) for f in src.files if Path(f).is_file()
             and not f.lower().endswith((".aux.xml", ".ovr", ".msk"))]  # GDAL's side files (statistics, overviews)
    others = [f for f in files if f.resolve() != path.resolve()]  # a detached label's image; else the file itself
    data = max(others or files, key=lambda f: f.stat().st_size)
    size = data.stat().st_size - _image_offset(label)  # an attached label (or a header) is no image data
    if size < need:
        raise InputError(f"{path.name}: its image data ({data.name}) are {size} bytes, fewer than the {need} its "
                         f"label describes ({src.count} band(s) of {src.height} x {src.width} {src.dtypes[0]}): the "
                         "file is truncated (an interrupted download?); fetch it again")


def _refuse_detached_image(path: Path) -> None:
    """A PDS3 ``.img`` whose label is a separate file is raw bytes to GDAL: name the label to open instead."""
    if path.suffix.lower() != ".img" or not path.is_file():
        return
    with open(path, "rb") as f:
        attached = f.read(64).lstrip().upper().startswith((b"PDS_VERSION_ID", b"ODL_VERSION_ID"))
    labels = [p for p in path.parent.glob(f"{path.stem}.*") if p.suffix.lower() in (".lbl", ".xml")]
    if not attached and labels:
        raise InputError(f"{path.name} is a PDS image whose label is a separate file; open the label "
                         f"{labels[0].name} instead (it names the image, its size, scaling and map projection)")


def open_geotiff(path: str | os.PathLike, bands: Sequence[str] | None = None, crs: str | None = None,
                 as_dataset: bool = False) -> xr.DataArray | xr.Dataset:
    """Open a GeoTIFF of the Moon as a map (one band) or a ``(band, lat, lon)`` cube on the workbench's grid.

    The planetary archives' own formats open the same way, through GDAL: PDS3 (the ``.lbl`` label, or an
    ``.img`` with its label attached), PDS4 (the ``.xml`` label), ISIS3 ``.cub`` and VICAR. Their scaling
    (e.g. a LOLA LDEM's ``SCALING_FACTOR``/``OFFSET``) is applied as the label gives it, and so are its units
    (a PDS3 ``UNIT = METER`` becomes ``"m"``, ``REFLECTANCE`` ``"1"``) and its band centres and widths (PDS3
    ``BAND_BIN_CENTER``/``BAND_BIN_WIDTH``, ISIS3 ``BandBin``): a multiband file without band names then has
    its bands named ``R<nm>`` after their centres (``R415``, ``R750``, ...), as the workbench's instruments do.

    Parameters
    ----------
    path
        A GeoTIFF (e.g. one written by :func:`workbench.export.to_geotiff`, or a reflectance mosaic), or a PDS3,
        PDS4, ISIS3 or VICAR raster.
    bands
        Names of the file's bands in order (e.g. ``["R415", "R750", "R900", "R950", "R1000"]``), for a file
        whose bands carry no descriptions; they replace the file's own names.
    crs
        The CRS to use instead of the file's (for a file with none, or one mislabelled with an Earth CRS).
    as_dataset
        Return a Dataset with one variable per band, each with its own ``units``/``long_name`` and the file's
        ``crs`` (for a file of different maps, such as ``workbench export``'s FeO, FeO_std, ... bands) instead
        of one array.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Dask-backed. ``(lat, lon)`` or ``(band, lat, lon)`` for a geographic file (``lat``/``lon`` pixel
        centres in degrees, longitudes -180...180 increasing), ``(y, x)`` or ``(band, y, x)`` in metres for a
        projected one; ``attrs["crs"]`` the CRS, ``attrs["units"]`` the bands' common units (their ``units``
        metadata, else GDAL's band unit, else a PDS3 label's ``UNIT``),
        ``wavelength``/``fwhm`` band coordinates (nm) when every band records ``wavelength_nm``/``fwhm_nm``.
        Nodata cells are NaN; the file's scale and offset are applied.

    Raises
    ------
    InputError
        A missing or unreadable file, no CRS, a CRS that is not lunar, a file placed by ground control points
        or on a rotated grid, unnamed bands of a multiband file without ``bands=``, a ``bands=`` list of the
        wrong length or with repeats, latitudes beyond ±90°.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import workbench.geo as geo
    >>> from workbench.export import to_geotiff
    >>> feo = geo.global_template(1, name="FeO").fillna(8.0).assign_attrs(units="wt%")
    >>> back = open_geotiff(to_geotiff(feo, pathlib.Path(tempfile.mkdtemp()) / "FeO.tif"))
    >>> back.dims, back.attrs["units"], float(back.lon[0]), float(back.lat[0])
    (('lat', 'lon'), 'wt%', -179.5, 89.5)
    """
    import rasterio

    from .geo import annotate_latlon, lon_180_order
    from .validate import open_raster, readable

    path = Path(path)
    kind = "raster" if path.suffix.lower() in PLANETARY_SUFFIXES else "GeoTIFF"
    _refuse_detached_image(path)
    with warnings.catch_warnings():  # rioxarray's own use of affine's deprecated '*' (not ours)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        da = open_raster(path, what=kind, mask_and_scale=True, chunks={"band": -1, "y": _CHUNK, "x": _CHUNK},
                         kind="GeoTIFF" if kind == "GeoTIFF" else "raster (PDS3, PDS4, ISIS3, VICAR)")
    with readable(path, kind), rasterio.open(path) as src:
        descriptions = list(src.descriptions)
        tags = [src.tags(i) for i in range(1, src.count + 1)]
        label = _label(src)  # a PDS3/ISIS3/VICAR label, parsed once
        for t, unit in zip(tags, _band_units(src, tags, label), strict=True):
            t.pop("units", None)
            t.update({"units": unit} if unit else {})
        for key, vals in _label_band_bins(label, src.count).items():  # a PDS3/ISIS3 label's band centres and widths
            if not all(key in t for t in tags):
                for t, v in zip(tags, vals, strict=True):
                    t[key] = str(v)
        file_crs = src.crs.to_string() if src.crs else None
        # a PDS3 label gives every keyword GDAL knows, most of them empty
        file_tags = {k: v for k, v in src.tags().items() if k != "AREA_OR_POINT" and v != ""}
        if kind == "raster":  # raw image data: GDAL reads what a truncated file lacks as zeros, silently
            _check_not_truncated(path, src, label)
        tr, gcps = src.transform, src.gcps[0]
    warp = f"warp it onto a grid first (gdalwarp -t_srs IAU_2015:30100 {path.name} grid.tif)"
    if gcps:
        raise InputError(f"{path.name} is placed by {len(gcps)} ground control points, not by a grid; {warp}")
    if tr.b != 0 or tr.d != 0:
        raise InputError(f"{path.name} is on a rotated or sheared grid (geotransform terms {tr.b:g}, {tr.d:g}), "
                         f"which latitude/longitude coordinates cannot describe; {warp}")
    if crs is None and not file_crs:
        raise InputError(f"{path.name} has no CRS, so it cannot be placed on the Moon; pass crs= (--crs), e.g. "
                         "'IAU_2015:30100' for latitude/longitude in degrees or 'IAU_2015:30135' for the "
                         "south-polar stereographic grid")
    pcrs = _lunar_crs(crs or file_crs, path)
    labels = _band_labels(path, da.sizes["band"], descriptions, bands, _band_numbers(tags, "wavelength_nm"))
    da = da.assign_coords(band=labels).drop_vars("spatial_ref", errors="ignore")
    da.attrs = {}  # rioxarray's (AREA_OR_POINT, a tuple of band descriptions); ours are set below
    for key, coord in (("wavelength_nm", "wavelength"), ("fwhm_nm", "fwhm")):
        vals = _band_numbers(tags, key)
        if vals is not None:
            da = da.assign_coords({coord: ("band", vals)})
    attrs = {**file_tags, "crs": _crs_name(pcrs), "source": str(path)}  # file metadata (e.g. instrument)
    for key in ("units", "long_name"):  # the bands' own metadata, where they all agree
        vals = {t.get(key) for t in tags}
        if len(vals) == 1 and None not in vals:
            attrs[key] = vals.pop()
    if pcrs.is_geographic:
        lat = np.asarray(da["y"].values, float)
        if np.abs(lat).max() > 90.0 + 1e-6:
            raise InputError(f"{path.name}: latitudes reach {np.abs(lat).max():.6g}°, beyond ±90°; the file's "
                             "geotransform is not in degrees (pass the right crs=, --crs)")
        da = da.rename(y="lat", x="lon").assign_coords(lat=lat)
        wrapped = lon_180_order(da["lon"].values, abs(tr.a) * da.sizes["lon"])  # 0...360 file: from -180
        if wrapped is not None:
            da = da.isel(lon=wrapped[1]).assign_coords(lon=wrapped[0])
        da = annotate_latlon(da)
    else:
        da["x"].attrs.update(units="m", standard_name="projection_x_coordinate")
        da["y"].attrs.update(units="m", standard_name="projection_y_coordinate")
    if as_dataset:
        per_band = [{k: t[k] for k in ("units", "long_name") if k in t} for t in tags]
        maps = {lab: da.sel(band=lab, drop=True).drop_vars(["wavelength", "fwhm"], errors="ignore")
                .assign_attrs({**a, "crs": attrs["crs"]}) for lab, a in zip(labels, per_band, strict=True)}
        return xr.Dataset(maps, attrs={k: v for k, v in attrs.items() if k not in ("units", "long_name")})
    if da.sizes["band"] == 1:
        da = da.isel(band=0, drop=True)
        for c in ("wavelength", "fwhm"):
            da = da.drop_vars(c, errors="ignore")
    da.attrs = attrs
    return da.rename(labels[0] if "band" not in da.dims else path.stem)


def _latlon_extent(crs, x: np.ndarray, y: np.ndarray, step: tuple[float, float],
                   ppd: int) -> tuple[float, float, float, float]:
    """(south, north, west, east) in degrees of the cells centred at ``x``/``y`` (metres in ``crs``; ``step`` the
    cells' width and height).

    Latitudes from the footprint's outline (every edge cell's edges and centre), widened to a pole that lies
    inside. Longitudes: the outline's, unless the footprint wraps around: a pole inside, or a longitude gap that
    is not the one across ±180° (the map crosses the antimeridian, e.g. a global simple-cylindrical LOLA LDEM
    about 180° E), or one narrower than two cells at ``ppd`` (a whole circle), give -180...180. An edge on
    ±180° belongs to the map's side of it (a tile ending at 180° E keeps its own longitudes).
    """
    import pyproj

    ex = np.sort(np.concatenate([x - step[0] / 2, x, x + step[0] / 2]))
    ey = np.sort(np.concatenate([y - step[1] / 2, y, y + step[1] / 2]))
    bx = np.concatenate([ex, ex, np.full(ey.size, ex[0]), np.full(ey.size, ex[-1])])
    by = np.concatenate([np.full(ex.size, ey[0]), np.full(ex.size, ey[-1]), ey, ey])
    lon, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(bx, by)
    ok = np.isfinite(lon) & np.isfinite(lat)
    south, north = float(lat[ok].min()), float(lat[ok].max())
    west, east = -180.0, 180.0
    # in [-180, 180) and in (-180, 180]: an edge on ±180° (a tile ending or starting there) is on the map's side
    for lons in (np.where(lon[ok] >= 180.0, lon[ok] - 360.0, lon[ok]), np.where(lon[ok] <= -180.0, lon[ok] + 360.0,
                                                                                   lon[ok])):
        lons = np.unique(lons)
        gaps = np.diff(np.concatenate([lons, [lons[0] + 360.0]]))  # the last is the one across ±180°
        widest = int(np.argmax(gaps))
        if widest == gaps.size - 1 and gaps[widest] > 2.0 / ppd:
            west, east = float(lons[0]), float(lons[-1])
            break
    from_geo = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    for pole in (-90.0, 90.0):
        px, py = from_geo.transform(0.0, pole)
        if np.isfinite(px) and ex[0] <= px <= ex[-1] and ey[0] <= py <= ey[-1]:
            south, north, west, east = min(south, pole), max(north, pole), -180.0, 180.0
    return south, north, west, east


#: Resampling methods of :func:`warp_to_latlon`: the spline order of :func:`scipy.ndimage.map_coordinates`
#: (``"average"`` averages bilinear samples over each cell).
RESAMPLING_ORDERS = {"nearest": 0, "bilinear": 1, "average": 1}
#: Source pixels a block of the warp reads at most (about): blocks of a coarsening warp have fewer cells.
_BLOCK_SOURCE_PIXELS = 4096 ** 2


def _sampler(window: np.ndarray, crs, i0: int, j0: int, src_transform, order: int):
    """A function ``(lat, lon) -> values`` sampling a source window whose first cell is row ``i0``, column ``j0``
    of the map at points in degrees (arrays of any one shape): each point is mapped exactly into the map's
    projection (pyproj) and interpolated there (bilinear over the valid neighbours, or nearest). A point whose
    nearest source cell is NaN, or that falls outside the map, is NaN. Values ``(band, *shape)``, float32."""
    import pyproj
    from scipy.ndimage import map_coordinates

    to_src = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    src = np.asarray(window, dtype=np.float32).reshape(-1, *window.shape[-2:])
    h, w = src.shape[-2:]
    # per band: the values with NaN as 0, and the NaN mask and valid weights (None for a band with no NaN, which
    # needs no hole or weight lookups, and no copies: the memory a block takes is about its window's)
    lookups = []
    for band in src:
        valid = np.isfinite(band)
        lookups.append((band, None, None) if valid.all() else
                       (np.where(valid, band, 0.0), (~valid).astype(np.float32), valid.astype(np.float32)))

    def sample(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        sx, sy = to_src.transform(lon, lat)
        col = (sx - src_transform.c) / src_transform.a - 0.5 - j0  # fractional index into the window, centres whole
        row = (sy - src_transform.f) / src_transform.e - 0.5 - i0
        inside = (np.isfinite(col) & np.isfinite(row) & (col > -0.5) & (col < w - 0.5) & (row > -0.5)
                  & (row < h - 0.5))
        at = np.stack([np.where(inside, row, 0.0), np.where(inside, col, 0.0)])
        out = np.full((src.shape[0], *np.shape(lat)), np.nan, np.float32)
        for k, (filled, holes, weights) in enumerate(lookups):
            value = map_coordinates(filled, at, order=order, mode="nearest")
            if holes is None:
                out[k] = np.where(inside, value, np.nan)
                continue
            hole = map_coordinates(holes, at, order=0, mode="nearest") > 0.5
            if order:  # bilinear weights renormalised over the valid neighbours
                weight = map_coordinates(weights, at, order=order, mode="nearest")
                value = value / np.where(weight > 0, weight, 1.0)
            out[k] = np.where(inside & ~hole, value, np.nan)
        return out

    return sample


def _warp_window(window: np.ndarray, crs, i0: int, j0: int, src_transform, lat: np.ndarray, lon: np.ndarray,
                 order: int, sub: np.ndarray | None = None, step: float = 1.0) -> np.ndarray:
    """One block of the lat/lon grid (cell centres ``lat`` x ``lon``, cells ``step`` degrees wide) sampled from a
    source window (see :func:`_sampler`). With ``sub`` (``(2, lat.size)``: sub-cells per cell along latitude and
    longitude, row by row) each cell of a row is the mean of the valid bilinear samples at the centres of its
    ``k_lat`` x ``k_lon`` sub-cells (the average over the cell of the map's bilinear surface), NaN where every
    sample is NaN."""
    sample = _sampler(window, crs, i0, j0, src_transform, order)
    if sub is None:
        out = sample(*np.meshgrid(lat, lon, indexing="ij"))
        return out.reshape(*window.shape[:-2], lat.size, lon.size)
    out = np.empty((int(np.prod(window.shape[:-2], dtype=int)), lat.size, lon.size), np.float32)
    for k_lat, k_lon in np.unique(sub.T, axis=0):  # rows that share their sub-cells, together
        rows = np.flatnonzero((sub[0] == k_lat) & (sub[1] == k_lon))
        du = ((np.arange(k_lon) + 0.5) / k_lon - 0.5) * step  # sub-cell centres, as offsets from the cell's
        total, count = 0.0, 0
        for dv in ((np.arange(k_lat) + 0.5) / k_lat - 0.5) * step:  # one row of sub-cells at a time
            glat = np.broadcast_to((lat[rows] - dv)[None, :, None], (k_lon, rows.size, lon.size))
            glon = np.broadcast_to(lon[None, None, :] + du[:, None, None], glat.shape)
            vals = sample(glat, glon)
            ok = np.isfinite(vals)
            total = total + np.where(ok, vals, 0.0).sum(axis=1, dtype=np.float64)
            count = count + ok.sum(axis=1)
        out[:, rows] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out.reshape(*window.shape[:-2], lat.size, lon.size)


def _sub_cells(crs, x: np.ndarray, y: np.ndarray, dx: float, dy: float, rows: np.ndarray, cols: np.ndarray,
               ppd: int) -> np.ndarray:
    """Sub-cells per cell for an averaging warp, ``(2, rows.size)``: for each row of the grid, the most map
    pixels one of its cells spans along latitude and along longitude, over up to 200 of its cells (evenly
    spread) whose centre lies on the map, rounded up (1 where none does). Row by row, from the whole row, so the
    result does not depend on the blocks, and a polar map's rows near the pole take few sub-cells."""
    import pyproj

    to_src = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    c = cols[np.unique(np.linspace(0, cols.size - 1, min(cols.size, 200)).astype(int))]
    lat, lon = np.meshgrid(-(rows + 0.5) / ppd, (c + 0.5) / ppd, indexing="ij")
    cx, cy = to_src.transform(lon, lat)
    on_map = ((cx >= x.min() - dx / 2) & (cx <= x.max() + dx / 2) & (cy >= y.min() - dy / 2)
              & (cy <= y.max() + dy / 2))
    spans = []
    for dlat, dlon in ((0.5 / ppd, 0.0), (0.0, 0.5 / ppd)):
        ax, ay = to_src.transform(lon - dlon, np.clip(lat - dlat, -90.0, 90.0))
        bx, by = to_src.transform(lon + dlon, np.clip(lat + dlat, -90.0, 90.0))
        span = np.where(on_map, np.hypot((bx - ax) / dx, (by - ay) / dy), 0.0)
        spans.append(np.maximum(1, np.ceil(np.nanmax(np.nan_to_num(span, nan=0.0), axis=1) - 1e-6)).astype(int))
    return np.stack(spans)


def _warp_blocks(data, crs, src_transform, rows: np.ndarray, cols: np.ndarray, ppd: int, order: int, chunk: int,
                 sub: np.ndarray | None = None):
    """The lat/lon grid's cells ``rows`` x ``cols`` (global-grid indices at ``ppd``) as a dask array of
    ``chunk``-square blocks, each sampled (or, with ``sub``, averaged) from just the source window its outline
    (every cell edge, mapped into the source projection) covers, padded by two pixels for the interpolation
    kernel."""
    import dask
    import dask.array as dsa
    import pyproj

    to_src = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    lead, (ny, nx) = tuple(data.shape[:-2]), data.shape[-2:]
    pad = 2
    a, left, e, top = src_transform.a, src_transform.c, src_transform.e, src_transform.f
    grid = []
    for r0 in range(0, rows.size, chunk):
        r1 = min(r0 + chunk, rows.size)
        line = []
        for c0 in range(0, cols.size, chunk):
            c1 = min(c0 + chunk, cols.size)
            shape = (*lead, r1 - r0, c1 - c0)
            lat_e, lon_e = -(rows[r0] + np.arange(r1 - r0 + 1)) / ppd, (cols[c0] + np.arange(c1 - c0 + 1)) / ppd
            olon = np.concatenate([lon_e, lon_e, np.full(lat_e.size, lon_e[0]), np.full(lat_e.size, lon_e[-1])])
            olat = np.concatenate([np.full(lon_e.size, lat_e[0]), np.full(lon_e.size, lat_e[-1]), lat_e, lat_e])
            sx, sy = to_src.transform(olon, olat)
            ok = np.isfinite(sx) & np.isfinite(sy)
            j, i = (sx[ok] - left) / a, (sy[ok] - top) / e  # fractional source columns and rows (edges whole)
            if ok.any():
                i0, i1 = max(0, int(np.floor(i.min())) - pad), min(ny, int(np.ceil(i.max())) + pad)
                j0, j1 = max(0, int(np.floor(j.min())) - pad), min(nx, int(np.ceil(j.max())) + pad)
            if not ok.any() or i0 >= i1 or j0 >= j1:  # the block lies outside the map
                line.append(dsa.full(shape, np.nan, dtype=np.float32))
                continue
            lat_c, lon_c = -(rows[r0:r1] + 0.5) / ppd, (cols[c0:c1] + 0.5) / ppd
            task = dask.delayed(_warp_window, pure=True)(data[..., i0:i1, j0:j1], crs, i0, j0, src_transform,
                                                         lat_c, lon_c, order, None if sub is None else sub[:, r0:r1],
                                                         1.0 / ppd)
            line.append(dsa.from_delayed(task, shape, dtype=np.float32))
        grid.append(line)
    return dsa.block(grid)


def warp_to_latlon(da: xr.DataArray, ppd: int | None = None, resampling: str | None = None,
                   chunk: int = 1024) -> xr.DataArray:
    """Resample a projected map or cube (``(y, x)`` or ``(band, y, x)`` in metres, as :func:`open_geotiff` gives
    for a polar-stereographic or equirectangular-in-metres file) onto lunar latitude/longitude.

    The grid is the workbench's global grid at ``ppd`` pixels per degree (cell centres at ``(k + 0.5) / ppd``
    degrees, latitude descending, longitude -180...180 ascending) cut to the map's footprint; a map that holds a
    pole keeps every longitude up to that pole. Each cell centre is mapped exactly into the map's projection
    (pyproj) and interpolated there (:func:`scipy.ndimage.map_coordinates`), lazily, block by block with dask:
    each ``chunk``-square block of the new grid reads only the part of the map under it, so a mosaic larger than
    memory warps as it is computed (e.g. by ``workbench invert map``, chunk by chunk), and the result does not
    depend on the blocks. A grid at least twice as coarse as the map averages it by default (each cell the mean
    of the map over it), so coarsening a mosaic does not alias.

    Parameters
    ----------
    da
        Projected map with ``attrs["crs"]`` (an IAU_2015 code or WKT of a lunar projection) and ``x``/``y`` cell
        centres in metres on an even grid (either order; pixels square or not).
    ppd
        Pixels per degree of the new grid; default the file's own resolution, ``round(πR / 180 / pixel size)``
        with the pixel's shorter side (at least 1): a degree of latitude holds as many pixels as before.
    resampling
        ``"bilinear"`` (for continuous quantities such as reflectance or elevation; weights renormalised over the
        valid neighbours), ``"average"`` (the mean over each cell of the map's bilinear surface, sampled at the
        centres of k x k' sub-cells, k and k' the most map pixels a cell of that row spans along latitude and
        longitude, rounded up: on a grid 4 times coarser than an aligned map, the mean of each cell's 4 x 4
        pixels; a cell no larger than a pixel keeps its bilinear value) or ``"nearest"`` (for classes and masks).
        Default: ``"average"`` where ``ppd`` is at most half the map's own resolution (to 0.1 %), else
        ``"bilinear"``.
    chunk
        Cells per side of the dask blocks of the result (at least 16; fewer where each cell covers so many source
        cells that a block would read more than about 17 Mpix of the map).

    Returns
    -------
    xarray.DataArray
        ``(lat, lon)`` or ``(band, lat, lon)`` with the input's band coordinates and attributes; ``attrs["crs"]``
        the geographic CRS of the same body, ``attrs["warped_from"]`` the old CRS, ``attrs["resampling"]`` and
        ``attrs["ppd"]``. Cells outside the map, and cells whose nearest source cell is NaN, are NaN (the same
        cells as the ``"nearest"`` warp's): holes are neither filled nor grown. With ``"average"``, a cell is NaN
        only where every sample in it is (the mean is over the valid part of the cell).

    Raises
    ------
    InputError
        A map that is already geographic or has no ``crs``, coordinates that are not evenly spaced (or a single
        pixel), an unknown ``resampling``, a ``ppd`` that is not a positive whole number, or a ``chunk`` below
        16.

    References
    ----------
    Snyder, J. P. (1987), Map Projections — A Working Manual, USGS Professional Paper 1395 (the projections).

    Examples
    --------
    >>> import numpy as np
    >>> polar = xr.DataArray(np.ones((40, 40), "float32"), dims=("y", "x"), attrs={"crs": "IAU_2015:30135",
    ...                      "units": "1"}, coords={"y": 4e4 - 2e3 * np.arange(40) - 1e3,
    ...                      "x": 2e3 * np.arange(40) - 4e4 + 1e3})
    >>> geo = warp_to_latlon(polar)
    >>> geo.dims, geo.attrs["crs"], float(geo.lat.min()) < -89.9, float(geo.lon.max()) > 179.9
    (('lat', 'lon'), 'IAU_2015:30100', True, True)
    """
    import pyproj
    from rasterio.transform import Affine

    from .geo import annotate_latlon

    if "crs" not in da.attrs or not {"y", "x"} <= set(da.dims):
        raise InputError(f"warp_to_latlon needs a projected map with dims (y, x) in metres and attrs['crs'], got "
                         f"dims {da.dims} and attrs {sorted(da.attrs)}; open the file with "
                         "workbench.rasters.open_geotiff")
    crs = pyproj.CRS.from_user_input(da.attrs["crs"])
    if crs.is_geographic:
        raise InputError(f"the map is already in latitude/longitude ({da.attrs['crs']}); nothing to warp")
    x, y = (np.asarray(da[d].values, float) for d in ("x", "y"))
    if x.size < 2 and y.size < 2:
        raise InputError(f"the map is {y.size} x {x.size} pixel(s): its pixel size cannot be known from its "
                         "coordinates; give a map at least 2 pixels wide or tall")
    for name, v in (("x", x), ("y", y)):
        step = (v[-1] - v[0]) / (v.size - 1) if v.size > 1 else np.nan  # from the whole axis
        off_grid = np.abs(v - (v[0] + step * np.arange(v.size))).max() if step else np.inf
        if v.size > 1 and not off_grid <= 0.01 * abs(step):  # NaN coordinates fail too
            d = np.diff(v)
            raise InputError(f"the map's {name} coordinates are not evenly spaced (steps from {np.nanmin(d):g} to "
                             f"{np.nanmax(d):g} m{', and NaN' if np.isnan(v).any() else ''}): warp_to_latlon takes a "
                             "regular grid (a map opened with open_geotiff, or an xarray map cut with isel(..., step) "
                             "of one step)")
    dx = abs(x[1] - x[0]) if x.size > 1 else abs(y[1] - y[0])  # the pixel's width and height: first steps
    dy = abs(y[1] - y[0]) if y.size > 1 else dx
    if resampling is not None and resampling not in RESAMPLING_ORDERS:
        raise InputError(f"unknown resampling {resampling!r}; use 'bilinear' or 'average' (continuous maps) or "
                         "'nearest' (classes, masks)")
    own_ppd = np.pi * crs.ellipsoid.semi_major_metre / 180.0 / min(dx, dy)  # map pixels per degree, finer axis
    if ppd is None:
        ppd = max(1, round(own_ppd))
    if isinstance(ppd, bool) or not isinstance(ppd, (int, np.integer)) or ppd < 1:
        raise InputError(f"ppd must be a positive whole number of pixels per degree, got {ppd!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 16:
        raise InputError(f"chunk must be a whole number of cells >= 16 (e.g. 1024), got {chunk!r}")
    if resampling is None:
        # at most half its resolution, to 0.1 %: labels round their map scale (a LOLA LDEM's to 5 digits)
        resampling = "average" if 2 * ppd <= own_ppd * 1.001 else "bilinear"
    south, north, west, east = _latlon_extent(crs, x, y, (dx, dy), ppd)
    # a footprint edge within 1 % of a pixel of a cell edge takes no extra cell: labels round their scale (a LOLA
    # LDEM's MAP_SCALE has 5 digits, its corner is then 0.004 px off) and a sliver cell would be all NaN
    tol = 0.01
    rows = np.arange(np.floor(-north * ppd + tol), np.ceil(-south * ppd - tol))  # whole cells of the global grid
    cols = np.arange(np.floor(west * ppd + tol), np.ceil(east * ppd - tol))
    rows, cols = rows[(rows >= -90 * ppd) & (rows < 90 * ppd)], cols[(cols >= -180 * ppd) & (cols < 180 * ppd)]
    if y.size > 1 and y[1] > y[0]:  # south up: the rows turned north up, as the transform below describes them
        da, y = da.isel(y=slice(None, None, -1)), y[::-1]
    if x.size > 1 and x[1] < x[0]:
        da, x = da.isel(x=slice(None, None, -1)), x[::-1]
    src_transform = Affine(dx, 0.0, x[0] - dx / 2, 0.0, -dy, y[0] + dy / 2)
    lead = [d for d in da.dims if d not in ("y", "x")]
    src = da.transpose(*lead, "y", "x")
    spans = _sub_cells(crs, x, y, dx, dy, rows, cols, int(ppd))  # map pixels a cell spans, row by row
    chunk = min(int(chunk), max(16, int(np.sqrt(_BLOCK_SOURCE_PIXELS / (spans[0] * spans[1]).max()))))
    sub = spans if resampling == "average" else None
    data = _warp_blocks(src.data, crs, src_transform, rows, cols, int(ppd), RESAMPLING_ORDERS[resampling], chunk,
                        sub)
    coords = {k: v for k, v in src.coords.items() if set(v.dims) <= set(lead)}
    out = xr.DataArray(data, dims=(*lead, "lat", "lon"), coords={**coords, "lat": -(rows + 0.5) / ppd,
                                                                  "lon": (cols + 0.5) / ppd})
    geo_name = _crs_name(crs.geodetic_crs)
    out.attrs = {**da.attrs, "crs": geo_name, "warped_from": da.attrs["crs"], "resampling": resampling,
                 "ppd": int(ppd)}
    return annotate_latlon(out).rename(da.name)


def _grid_mapping(da: xr.DataArray):
    """The name of ``da``'s CF ``grid_mapping`` variable (decoded into its encoding, or still in its attrs)."""
    return da.encoding.get("grid_mapping", da.attrs.get("grid_mapping"))


def _map_crs(ds: xr.Dataset, name) -> str | None:
    """The CRS of variable ``name``: its ``crs`` attribute (as :func:`open_geotiff` sets it), else the CF
    ``grid_mapping`` variable's ``crs_wkt`` or ``spatial_ref`` (as rioxarray and GDAL write NetCDF and zarr),
    which must be the Moon's (:class:`InputError` otherwise), named by its IAU_2015 code where it has one."""
    if ds[name].attrs.get("crs"):
        return str(ds[name].attrs["crs"])
    mapping = _grid_mapping(ds[name])
    if mapping in ds.variables:
        text = next((str(ds[mapping].attrs[k]) for k in ("crs_wkt", "spatial_ref") if ds[mapping].attrs.get(k)),
                    None)
        return _crs_name(_lunar_crs(text, Path(str(name)))) if text else None
    return None


def dataset_to_latlon(ds: xr.Dataset, ppd: int | None = None, names: Sequence[str] | None = None,
                      resampling: str | None = None) -> xr.Dataset:
    """A map file's Dataset with its projected maps and cubes (``(y, x)`` or ``(band, y, x)``, with a ``crs``
    attribute or a CF ``grid_mapping``) warped onto latitude/longitude (:func:`warp_to_latlon` with
    ``resampling``, at ``ppd`` or the file's own resolution); a Dataset that already has a latitude/longitude map,
    or no projected one, comes back unchanged. The warped maps carry ``crs``, ``warped_from``, ``resampling`` and
    ``ppd`` in their attrs. ``names`` limits both to those variables (default: all).

    Raises
    ------
    InputError
        ``ppd`` or ``resampling`` given for a Dataset with nothing to warp (it would be ignored), a CF
        ``grid_mapping`` that is not the Moon's, or one of :func:`warp_to_latlon`'s errors.
    """
    names = list(ds.data_vars) if names is None else list(names)
    has_latlon = any({"lat", "lon"} <= set(ds[v].dims) for v in names)
    crs = {v: _map_crs(ds, v) for v in names if {"y", "x"} <= set(ds[v].dims) and ds[v].ndim <= 3}
    projected = [v for v, c in crs.items() if c]
    if has_latlon or not projected:
        given = [f for f, v in (("ppd", ppd), ("resampling", resampling)) if v is not None]
        if given:
            why = ("already in latitude/longitude" if has_latlon else "(y, x) maps with no CRS (no crs attribute or "
                   "CF grid_mapping) to place them on the Moon" if crs else "not projected (y, x) maps")
            flag = f"{given[0]} (--{given[0]})"
            raise InputError(f"{flag} sets how a projected map is warped onto latitude/longitude; this file's maps "
                             f"are {why} and keep their grid (drop --{given[0]})")
        return ds
    maps = {}
    for v in projected:
        mapping = _grid_mapping(ds[v])
        da = ds[v].assign_attrs(crs=crs[v]).drop_vars([mapping] if mapping in ds[v].coords else [])
        da.attrs.pop("grid_mapping", None)
        maps[v] = warp_to_latlon(da, ppd, resampling)
    return xr.Dataset(maps, attrs=ds.attrs)


#: File name endings read as NetCDF by :func:`open_map_file` (a folder or ``.zarr`` is zarr).
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")


def open_map_file(path: str | os.PathLike) -> xr.Dataset:
    """Open a map file as a Dataset: a zarr store (a folder, e.g. ``workbench invert map``'s output), a NetCDF
    file, or a GeoTIFF, PDS3, PDS4, ISIS3 or VICAR raster (:func:`open_geotiff` with ``as_dataset=True``: one
    variable per band).

    Raises
    ------
    InputError
        A missing file, an unknown file type, or a file its reader cannot read, each naming what to give.
    """
    from .io import one_line

    src = Path(path)
    if not src.exists():
        raise InputError(f"{src} does not exist; give a zarr store (folder), a NetCDF (.nc) file or {RASTER_KINDS}")
    suffix = src.suffix.lower()
    if suffix in RASTER_SUFFIXES and src.is_file():
        return open_geotiff(src, as_dataset=True)
    is_zarr = src.is_dir() or suffix == ".zarr"
    if not is_zarr and suffix not in NETCDF_SUFFIXES:
        raise InputError(f"{src.name}: unknown input type; give a zarr store (folder), a NetCDF (.nc) file or "
                         f"{RASTER_KINDS}")
    try:
        with warnings.catch_warnings():  # a store written without consolidated metadata reads fine without it
            warnings.filterwarnings("ignore", message=".*consolidated metadata", category=RuntimeWarning)
            return xr.open_zarr(src) if is_zarr else xr.open_dataset(src)
    except Exception as e:  # zarr, netCDF4 and h5netcdf each raise their own kinds
        kind = "a zarr store" if is_zarr else "a NetCDF file"
        raise InputError(f"{src} could not be read as {kind} ({type(e).__name__}: {one_line(str(e))}); give the "
                         "store 'workbench invert map' wrote, or a file xarray.open_dataset reads") from e
