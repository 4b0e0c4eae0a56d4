"""Shared input validation: one clear :class:`~workbench.errors.InputError` per class of bad input.

Every check is a pure function that returns its (possibly normalised) input unchanged in content and
raises a :class:`~workbench.errors.WorkbenchError` whose message names the problem **and the fix**.
Modules call these at their entry points so that the same bad input gives the same message everywhere;
``docs/robustness.md`` lists every message (it is generated from ``tests/test_robustness.py``).

The checks never clip or repair data: NaN reflectance is allowed and propagates (NaN in, NaN out),
everything else that is invalid is refused.

Examples
--------
>>> import numpy as np, xarray as xr
>>> da = xr.DataArray(np.full((2, 3, 3), 0.1), dims=("band", "y", "x"),
...                   coords={"wavelength": ("band", [750.0, 950.0])}, attrs={"units": "1"})
>>> check_bands(check_reflectance(da), [750, 950]).sizes["band"]
2
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import CheckpointError, InputError
from .geo import MOON_RADIUS_M, check_latlon
from .io import file_stamp

__all__ = [
    "check_reflectance",
    "check_crs",
    "check_bands",
    "check_latlon",
    "check_site",
    "check_sun",
    "check_matching_grids",
    "check_station_table",
    "read_station_csv",
    "check_station_frame",
    "check_unique_columns",
    "read_csv",
    "STATION_BANDS",
    "check_checkpoint",
    "load_weights",
    "load_npy",
    "open_raster",
    "readable",
    "fingerprint",
]

#: Reflectance columns of a Clementine UVVIS station table (``clementine_sample_stations``).
STATION_BANDS: tuple[str, ...] = ("R415", "R750", "R900", "R950", "R1000")

_LUNAR_CODE = re.compile(r"^IAU_2015:301\d\d$")



def is_whole_number(value: Any) -> bool:
    """True for a Python or NumPy integer that is not a bool (counts, sizes, seeds, offsets).

    Examples
    --------
    >>> is_whole_number(3), is_whole_number(np.int64(3)), is_whole_number(3.0), is_whole_number(True)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

def _values(obj: Any) -> np.ndarray | None:
    """In-memory values of ``obj`` as float, or ``None`` for lazy (dask) data that is not computed here."""
    data = obj.data if isinstance(obj, xr.DataArray) else obj
    if type(data).__module__.startswith("dask"):
        return None
    try:
        return np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            f"reflectance must be numeric, got values of dtype {np.asarray(data).dtype}; "
            "convert it with .astype(float) after removing text values"
        ) from None


#: Largest plausible reflectance (I/F) of lunar soil: sunlit soils stay below ~0.6 even at opposition, so a
#: value above this is percent, DN or radiance, not a fraction (checked where a model's input is read).
REFLECTANCE_MAX = 1.5


def check_reflectance_units(da, name: str = "reflectance") -> None:
    """Refuse a DataArray whose ``units`` attribute says it is not dimensionless reflectance."""
    units = getattr(da, "attrs", {}).get("units")
    if units is None or str(units).strip().lower() in {"1", "", "reflectance", "dimensionless", "i/f", "iof"}:
        return
    if str(units).strip().lower() in {"%", "percent", "pct"}:
        raise InputError(f"{name} has units {units!r}; give it as a fraction: divide by 100 and set "
                         "attrs['units'] = '1'")
    raise InputError(
        f"{name} has units {units!r}; expected dimensionless reflectance (I/F, attrs['units'] = '1'). "
        "Convert radiance or DN to reflectance first"
    )


def check_reflectance(da, name: str = "reflectance", allow_nan: bool = True, allow_all_nan: bool = False,
                      max_value: float | None = None):
    """Refuse infinite, negative or entirely missing reflectance (NaN pixels are allowed).

    Parameters
    ----------
    da
        DataArray or array-like of reflectance (dimensionless, ``attrs["units"] == "1"`` when given).
        Dask-backed arrays are not computed (check each block in the blockwise function instead).
    name
        How the array is called in the message.
    allow_nan
        When False, any NaN is refused too.
    allow_all_nan
        When True, an entirely NaN array passes (e.g. one fully masked block of a chunked map).
    max_value
        When given (e.g. :data:`REFLECTANCE_MAX`), values above it are refused as not being a fraction
        (percent, DN or radiance).

    Returns
    -------
    The input, unchanged.

    Raises
    ------
    InputError
        Non-numeric, infinite, negative or all-NaN values, or units other than reflectance.
    """
    if isinstance(da, xr.DataArray):
        check_reflectance_units(da, name)
    arr = _values(da)
    if arr is None:
        return da
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); select a region that contains pixels")
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise InputError(
            f"{name} has {n_inf} infinite value(s); reflectance must be finite. "
            "Mask them as NaN (blank cells in a CSV, da.where(np.isfinite(da)) in xarray) — usually a division by "
            "zero in calibration"
        )
    nan = np.isnan(arr)
    if nan.all() and not allow_all_nan:
        raise InputError(f"{name} is entirely NaN; check the band selection and the region (nothing to invert)")
    if not allow_nan and nan.any():
        raise InputError(
            f"{name} has {int(nan.sum())} NaN value(s) and this step needs complete data; "
            "drop or fill the missing pixels first (e.g. da.dropna or da.fillna)"
        )
    with np.errstate(invalid="ignore"):
        neg = arr < 0
    if neg.any():
        raise InputError(
            f"{name} has {int(neg.sum())} negative value(s) (min {np.nanmin(arr):.4g}); reflectance must be "
            ">= 0. Fix the calibration (dark subtraction) or set invalid pixels to NaN; values are never clipped"
        )
    if max_value is not None:
        with np.errstate(invalid="ignore"):
            high = arr > max_value
        if high.any():
            raise InputError(
                f"{name} has {int(high.sum())} value(s) above {max_value:g} (max {np.nanmax(arr):.4g}); reflectance "
                "is a fraction (lunar soils 0.02–0.6). Percent? divide by 100; DN or radiance? calibrate to I/F first"
            )
    return da


def _crs_of(obj) -> Any:
    crs = obj.attrs.get("crs") if hasattr(obj, "attrs") else None
    if crs is None and hasattr(obj, "rio"):
        try:
            crs = obj.rio.crs
        except Exception:  # noqa: BLE001 - rioxarray raises several kinds for missing metadata
            crs = None
    return crs


def check_crs(obj, expected: str | Sequence[str] | None = None) -> str:
    """Check that ``obj`` carries a lunar CRS (``attrs["crs"]`` or rioxarray's ``rio.crs``).

    Parameters
    ----------
    obj
        DataArray or Dataset.
    expected
        One code or several allowed codes (e.g. ``"IAU_2015:30100"``); None accepts any lunar CRS.

    Returns
    -------
    str
        The CRS as a string (the IAU code when it is one).

    Raises
    ------
    InputError
        When no CRS is attached, when the CRS is not on the Moon (e.g. ``EPSG:4326``), or when it is not
        one of ``expected``.
    """
    crs = _crs_of(obj)
    if crs is None or (isinstance(crs, str) and not crs.strip()):
        raise InputError(
            "input has no CRS (attrs['crs'] is missing); set the lunar CRS, e.g. "
            "ds.attrs['crs'] = 'IAU_2015:30100' for a lat/lon grid or 'IAU_2015:30135' for the south "
            "polar stereographic grid"
        )
    text = str(crs).strip()
    if not _LUNAR_CODE.match(text):
        try:
            import pyproj

            ell = pyproj.CRS.from_user_input(crs).ellipsoid
            radius = ell.semi_major_metre if ell is not None else None
        except Exception:  # noqa: BLE001 - pyproj raises CRSError and others on nonsense
            raise InputError(
                f"CRS {text[:80]!r} is not understood by PROJ; use a lunar code such as 'IAU_2015:30100'"
            ) from None
        if radius is None or abs(radius - MOON_RADIUS_M) > 10_000.0:
            where = f"a body of radius {radius / 1000:.1f} km" if radius else "no ellipsoid"
            raise InputError(
                f"CRS {text[:80]!r} is not a lunar CRS ({where}; the Moon's is {MOON_RADIUS_M / 1000:.1f} "
                "km). Reproject or relabel the data in the Moon's IAU_2015:301xx family, e.g. 'IAU_2015:30100'"
            )
    if expected is not None:
        allowed = [expected] if isinstance(expected, str) else list(expected)
        if text not in allowed:
            raise InputError(
                f"CRS is {text[:80]!r} but this step needs {' or '.join(allowed)}; reproject the input "
                "(e.g. with rioxarray's .rio.reproject) first"
            )
    return text


def _fmt_nm(w: Iterable[float]) -> str:
    return ", ".join(f"{float(x):g}" for x in w) + " nm"


def check_bands(da, expected_wavelengths: Sequence[float], tol_nm: float = 5.0, dim: str = "band"):
    """Check that ``da`` has exactly the expected bands, in the expected order.

    Parameters
    ----------
    da
        DataArray with a ``band`` (or ``dim``) dimension and a ``wavelength`` coordinate in nm on it.
    expected_wavelengths
        Band centres (nm) in the order a model or algorithm expects them.
    tol_nm
        Largest allowed difference between a band centre and the expected one.

    Returns
    -------
    The input, unchanged.

    Raises
    ------
    InputError
        Missing band dimension or wavelength coordinate, wrong band count, same bands in another order,
        or wavelengths that differ by more than ``tol_nm``.
    """
    expected = np.asarray(list(expected_wavelengths), dtype=float)
    if not isinstance(da, xr.DataArray) or dim not in da.dims:
        dims = getattr(da, "dims", None)
        raise InputError(
            f"input needs a {dim!r} dimension with {expected.size} bands ({_fmt_nm(expected)}), got dims "
            f"{tuple(dims) if dims is not None else type(da).__name__}; stack the bands with "
            f"xr.concat(..., dim={dim!r})"
        )
    if "wavelength" not in da.coords or da.coords["wavelength"].dims != (dim,):
        raise InputError(
            f"the {dim!r} dimension has no 'wavelength' coordinate (nm); attach it with "
            f"da.assign_coords(wavelength=({dim!r}, [...])) so bands can be checked"
        )
    got = np.asarray(da.coords["wavelength"].values, dtype=float)
    if got.size != expected.size:
        raise InputError(
            f"wrong band count: expected {expected.size} bands ({_fmt_nm(expected)}), got {got.size} "
            f"({_fmt_nm(got)}); select the expected bands with da.sel({dim}=...) or use a model trained for "
            "this instrument"
        )
    if np.allclose(got, expected, atol=tol_nm):
        return da
    if np.allclose(np.sort(got), np.sort(expected), atol=tol_nm):
        raise InputError(
            f"bands are in the wrong order: expected {_fmt_nm(expected)}, got {_fmt_nm(got)}; reorder them, "
            f"e.g. da.sortby('wavelength') or da.isel({dim}=order)"
        )
    # `not <=`: a NaN wavelength is a mismatch (NaN > tol is False, which used to name no band at all)
    bad = [(float(g), float(e)) for g, e in zip(got, expected, strict=True) if not abs(g - e) <= tol_nm]
    pairs = ", ".join(f"{g:g} nm where {e:g} nm is expected" for g, e in bad)
    raise InputError(
        f"band wavelengths do not match (tolerance {tol_nm:g} nm): {pairs}; use data from the instrument "
        "the model was trained for, or retrain/fine-tune the model on these bands"
    )


def check_sun(sun_azimuth: float, sun_elevation: float) -> tuple[float, float]:
    """Validate sun geometry: finite azimuth (wrapped to [0, 360)) and elevation in (0, 90] degrees.

    Azimuth is clockwise from north/up towards the sun; elevation is above the local horizontal.
    """
    try:
        az, el = float(sun_azimuth), float(sun_elevation)
    except (TypeError, ValueError):
        raise InputError(
            f"sun azimuth/elevation must be numbers of degrees, got {sun_azimuth!r}, {sun_elevation!r}"
        ) from None
    if not np.isfinite(az):
        raise InputError("sun azimuth must be a finite number of degrees (clockwise from north)")
    if not np.isfinite(el) or el <= 0.0 or el > 90.0:
        raise InputError(
            f"sun elevation {el} deg is outside (0, 90]: the sun must be above the horizon; "
            "give the elevation in degrees above the local horizontal"
        )
    return az % 360.0, el


def _extent(da: xr.DataArray, dims: tuple[str, str]) -> tuple[float, float, float, float] | None:
    if not all(d in da.coords for d in dims):
        return None
    out = []
    for d in dims:
        c = np.asarray(da.coords[d].values, dtype=float)
        step = abs(c[1] - c[0]) if c.size > 1 else 0.0
        out += [float(c.min() - step / 2), float(c.max() + step / 2)]
    return tuple(out)  # type: ignore[return-value]


def check_matching_grids(image, coarse_dem, rtol: float = 0.02) -> None:
    """Check that an image and a coarse DEM cover the same ground.

    The coarse DEM may have fewer pixels than the image but must cover the same extent: same aspect ratio
    (within ``rtol``), no more pixels than the image, and — when both carry ``y``/``x`` (or ``lat``/``lon``)
    coordinates — the same bounds within ``rtol`` of the extent.

    Raises
    ------
    InputError
        When either is not 2-D, the DEM is finer than the image, or the shapes or extents disagree.
    """
    shapes = []
    for label, a in (("image", image), ("coarse DEM", coarse_dem)):
        shape = np.shape(a)
        if len(shape) != 2 or min(shape) < 2:
            raise InputError(
                f"{label} must be a 2-D array of at least 2x2 pixels, got shape {shape}; "
                "select one band (e.g. da.isel(band=0)) first"
            )
        shapes.append(shape)
    (iy, ix), (dy, dx) = shapes
    if dy > iy or dx > ix:
        raise InputError(
            f"coarse DEM ({dy}x{dx}) has more pixels than the image ({iy}x{ix}); the DEM must be the coarse "
            "input — swap the arguments or downsample the DEM"
        )
    if abs((iy / ix) / (dy / dx) - 1.0) > rtol:
        raise InputError(
            f"image ({iy}x{ix}) and coarse DEM ({dy}x{dx}) do not have the same aspect ratio, so they cannot "
            "cover the same ground; crop both to the same extent"
        )
    if isinstance(image, xr.DataArray) and isinstance(coarse_dem, xr.DataArray):
        for dims in (("y", "x"), ("lat", "lon")):
            a, b = _extent(image, dims), _extent(coarse_dem, dims)
            if a is None or b is None:
                continue
            span = max(a[1] - a[0], a[3] - a[2])
            if max(abs(p - q) for p, q in zip(a, b, strict=True)) > rtol * span:
                raise InputError(
                    f"image and coarse DEM cover different ground: image {dims} bounds {np.round(a, 3).tolist()}, "
                    f"DEM {np.round(b, 3).tolist()}; crop or reproject them to the same extent"
                )


def check_station_table(
    df: pd.DataFrame,
    required: Sequence[str],
    numeric: Sequence[str] | None = None,
    origin: str = "station table",
) -> pd.DataFrame:
    """Check a station/sample table: required columns present and numeric columns really numeric.

    Parameters
    ----------
    df
        The table (e.g. read from a station CSV).
    required
        Columns that must be present.
    numeric
        Columns that must hold numbers (blank cells, read as NaN, are allowed); defaults to ``required``.
    origin
        Name of the file or table, used in messages.

    Returns
    -------
    pandas.DataFrame
        A copy whose numeric columns are float.

    Raises
    ------
    InputError
        Missing columns (listed), or a non-numeric cell (column, row and value named).
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{origin}: expected a table (pandas DataFrame), got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            f"{origin}: missing column(s) {', '.join(map(repr, missing))}; the table has "
            f"{', '.join(map(repr, map(str, df.columns))) or 'no columns'}. Rename or add the columns "
            "(names are case-sensitive)"
        )
    if len(df) == 0:
        raise InputError(f"{origin}: the table has no rows")
    out = df.copy()
    for col in (required if numeric is None else numeric):
        if col not in out.columns:
            continue
        vals = pd.to_numeric(out[col], errors="coerce")
        bad = vals.isna() & out[col].notna() & (out[col].astype(str).str.strip() != "")
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            raise InputError(
                f"{origin}: column {col!r} has {int(bad.sum())} non-numeric value(s), first {out[col].iloc[i]!r} "
                f"in row {i + 1}; use numbers (blank for missing)"
            )
        out[col] = vals.astype(float)
    return out


def read_csv(path, **kwargs) -> pd.DataFrame:
    """:func:`pandas.read_csv` whose failures are one :class:`InputError` naming the file and the fix.

    Missing file, a folder, an empty file, unparseable or non-UTF-8 text all become ``InputError``.
    """
    origin = str(path)
    try:
        df = pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise InputError(f"{origin}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{origin} is a folder; give the CSV file itself") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{origin}: the file is empty; it needs a header row and one row per station") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{origin}: not a readable CSV ({first}); save it as UTF-8 comma-separated text with one header row"
        ) from None
    if "index_col" not in kwargs and not isinstance(df.index, pd.RangeIndex):
        # pandas turns the leading fields into an index when the first data row is longer than the header
        raise InputError(f"{origin}: the first data row has more fields than the header ({len(df.columns)} "
                         "columns); remove the extra commas or add the missing column names")
    if "names" not in kwargs:
        # pandas renames a repeated header cell ("R750", "R750" -> "R750", "R750.1") and would use the first
        # silently; blank header cells (a spreadsheet's trailing commas) become "Unnamed: N" and are left alone
        cols = [str(c) for c in df.columns]
        for c in cols:
            base, dot, n = c.rpartition(".")
            if dot and n.isdigit() and base in cols and not base.startswith("Unnamed: "):
                raise InputError(f"{origin}: column {base!r} appears more than once in the header; keep one and "
                                 "rename or delete the others")
    if "sep" not in kwargs and "delimiter" not in kwargs and df.shape[1] == 1:
        name = str(df.columns[0])
        for sep, what in ((";", "semicolon"), ("\t", "tab")):
            if sep in name:
                raise InputError(f"{origin}: the header looks {what}-separated ({name[:60]!r}); save the file as "
                                 "comma-separated text")
    return df


def check_site(lat: Any, lon: Any) -> tuple[float, float]:
    """A site's ``(lat, lon)`` in degrees as floats, after refusing non-numbers, NaN and values out of range.

    Examples
    --------
    >>> check_site(-41.6, 206.0)
    (-41.6, 206.0)
    """
    try:
        pair = float(lat), float(lon)
    except (TypeError, ValueError):
        raise InputError(f"a site needs numeric latitude and longitude in degrees, got ({lat!r}, {lon!r})") from None
    if not np.isfinite(pair).all():
        raise InputError(f"a site needs finite latitude and longitude, got {pair}")
    check_latlon(*pair)
    return pair


def check_unique_columns(names: Sequence[str], origin: str) -> None:
    """Raise :class:`InputError` naming the first column that appears more than once in ``names``."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{origin}: column {name!r} appears more than once (after stripping spaces); keep one "
                             "and rename or delete the others")
        seen.add(name)


def read_station_csv(path, required: Sequence[str] = STATION_BANDS, numeric: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """Read a station CSV (one header row, comma-separated) and check it with :func:`check_station_table`.

    Parameters
    ----------
    path
        CSV file, e.g. ``clementine_5band_sample_stations.csv`` (columns ``R415 ... R1000``; optional
        ``lat_deg``, ``lon_deg_east_0_360``, ``FeO_wt_pct``, ``TiO2_wt_pct``).
    required, numeric
        As in :func:`check_station_table`. Latitude/longitude columns, when present, are range-checked.

    Raises
    ------
    InputError
        Unreadable file, not a CSV, missing columns, non-numeric values, coordinates out of range.
    """
    return check_station_frame(read_csv(path), required, numeric, origin=str(path))


def check_station_frame(df: pd.DataFrame, required: Sequence[str] = STATION_BANDS,
                        numeric: Sequence[str] | None = None, origin: str = "station table") -> pd.DataFrame:
    """:func:`check_station_table` on a copy with stripped column names, plus range checks of the
    latitude/longitude columns when present (``lat_deg``, ``lon_deg_east_0_360``, ``lat``, ``lon``)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{origin}: expected a table (pandas DataFrame or CSV path), got {type(df).__name__}")
    df = df.rename(columns=lambda c: str(c).strip())
    check_unique_columns(list(df.columns), origin)
    coords = [c for c in ("lat_deg", "lon_deg_east_0_360", "lat", "lon") if c in df.columns]
    out = check_station_table(df, required, numeric=[*(required if numeric is None else numeric), *coords],
                              origin=origin)
    lat = out[[c for c in coords if c.startswith("lat")]].to_numpy(dtype=float)
    lon = out[[c for c in coords if c.startswith("lon")]].to_numpy(dtype=float)
    try:
        check_latlon(lat, lon)
    except InputError as exc:
        raise InputError(f"{origin}: {exc}") from None
    return out


def check_checkpoint(meta: Mapping[str, Any], architecture: Mapping[str, Any] | None = None,
                     wavelengths: Sequence[float] | None = None, tol_nm: float = 5.0,
                     origin: str = "checkpoint") -> None:
    """Check a checkpoint's stored metadata against the model it is loaded into.

    Parameters
    ----------
    meta
        The checkpoint's record: ``architecture`` (a mapping of hyper-parameters, e.g. ``{"name":
        "rescnn", "blocks": 6, "channels": 64}``) and ``wavelengths`` (nm).
    architecture
        The hyper-parameters of the receiving model; every key must match.
    wavelengths
        The receiving model's band centres (nm).

    Raises
    ------
    CheckpointError
        When a hyper-parameter or the band set differs, naming both values.
    """
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"{origin}: has no metadata record; it was not saved by workbench save()")
    if architecture is not None:
        stored = meta.get("architecture")
        if not isinstance(stored, Mapping):
            raise CheckpointError(f"{origin}: no 'architecture' record; re-save it with the workbench save()")
        diff = {k: (stored.get(k), v) for k, v in architecture.items() if stored.get(k) != v}
        if diff:
            txt = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(
                f"{origin} is from another architecture ({txt}); build the model with the checkpoint's "
                "configuration (load() does this) or retrain"
            )
    if wavelengths is not None:
        stored_wl = meta.get("wavelengths")
        if stored_wl is None:
            raise CheckpointError(f"{origin}: no band list ('wavelengths') stored; re-save it with save()")
        a = np.asarray(stored_wl, dtype=float)
        b = np.asarray(list(wavelengths), dtype=float)
        if a.shape != b.shape or not np.allclose(a, b, atol=tol_nm):
            raise CheckpointError(
                f"{origin} was trained on bands {_fmt_nm(a)} but the data has {_fmt_nm(b)}; use a checkpoint "
                "for this instrument or fine-tune on these bands"
            )


def load_weights(path, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` whose failures are one :class:`CheckpointError`.

    Only tensors, numbers, strings and plain containers are accepted: a file that holds other Python
    objects (which would run code when unpickled) is refused, never loaded with ``weights_only=False``.
    A truncated or corrupted file gets a message saying so.

    Raises
    ------
    CheckpointError
        Missing, unsafe (pickled objects), truncated or corrupted file.
    """
    import torch

    origin = str(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{origin}: no such weights file; train the model or give the right path") from None
    except IsADirectoryError:
        raise CheckpointError(f"{origin} is a folder; give the .pt weights file") from None
    except Exception as exc:
        if type(exc).__name__ != "UnpicklingError":  # not a refused object: a damaged file
            first = str(exc).strip().splitlines()[0].split(". ")[0][:160] if str(exc).strip() else ""
            detail = f" ({first})" if isinstance(exc, RuntimeError) and first else ""  # others: 'pop from ...'
            raise CheckpointError(
                f"{origin} is not a torch weights file, or it is truncated or corrupted{detail}; "
                "re-download it or retrain the model"
            ) from None
        lines = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "global" in ln]
        if not lines:  # not a pickle of objects at all: garbage or another format
            raise CheckpointError(
                f"{origin} is not a torch weights file, or it is truncated or corrupted; "
                "re-download it or retrain the model"
            ) from None
        first = lines[0][:160]
        raise CheckpointError(
            f"{origin} is not a plain weights file: it holds Python objects that could run code when loaded "
            f"({first}); it was refused. Use weights saved by the workbench (tensors and plain values only)"
        ) from None


def load_npy(path, what: str = "array") -> np.ndarray:
    """``numpy.load(path, allow_pickle=False)`` whose failures are one :class:`InputError`.

    A truncated or damaged ``.npy``, a pickled object array, or a file that is not ``.npy`` at all is
    refused with a message naming the file and the fix.
    """
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{what} file {path} does not exist") from None
    except (ValueError, OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{what} {path} is not a readable .npy array ({first}); save it with numpy.save(path, array) "
            "as a plain numeric array"
        ) from None


def open_raster(path, what: str = "raster", kind: str = "GeoTIFF", **kwargs):
    """``rioxarray.open_rasterio(path)`` whose failures are one :class:`InputError` (damaged/not a raster):
    "``what`` PATH is not a readable ``kind``"."""
    import rioxarray

    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
    virtual = text.startswith("/vsi") or "://" in text  # GDAL's in-memory/remote paths: rasterio opens them
    if text and not virtual and not os.path.exists(text):  # rasterio would say "not recognized"
        raise InputError(f"{what} file {path} does not exist")
    try:
        return rioxarray.open_rasterio(path, **kwargs)
    except FileNotFoundError:
        raise InputError(f"{what} file {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - rasterio raises RasterioIOError, CPLE_* and others
        if type(exc).__module__.split(".")[0] not in {"rasterio", "rioxarray"} and not isinstance(exc, OSError):
            raise
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} {path} is not a readable {kind} ({first}); check the file or re-export it") from None


@contextlib.contextmanager
def readable(path, what: str = "file"):
    """Turn a reader's ``OSError`` (rasterio's RasterioIOError, PIL's UnidentifiedImageError, ...) into
    one :class:`InputError` naming the file: for files that exist and passed their hash but cannot be read."""
    try:
        yield
    except (OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{what}: {path} cannot be read ({first}); the file does not match its declared format — "
            "fix the manifest's 'reader' or the file"
        ) from None


def _zarr_array_folders(obj: xr.DataArray | xr.Dataset) -> list[str]:
    """The local folders of the zarr arrays a dask-backed xarray object reads, found in its dask graphs.

    Each array xarray opened from a zarr store (``xr.open_zarr``) sits in the graph as an indexing adapter
    around xarray's zarr wrapper; its folder is the store's root plus the array's path. Remote stores (no
    local root) and objects without dask data give none.
    """
    from pathlib import Path

    import dask

    folders: set[str] = set()
    for var in (obj.variables.values() if isinstance(obj, xr.Dataset) else [obj.variable]):
        if not dask.is_dask_collection(var.data):
            continue
        for value in dict(var.data.__dask_graph__()).values():
            o = getattr(value, "value", value) if type(value).__name__ == "DataNode" else value
            for _ in range(16):  # adapters wrap one another through .array
                if o is None or hasattr(o, "get_array"):
                    break
                o = getattr(o, "array", None)
            if o is None or not hasattr(o, "get_array"):
                continue
            try:
                arr = o.get_array()
                root = getattr(arr.store, "root", None) or getattr(arr.store, "path", None)
            except Exception:  # noqa: BLE001 - not a zarr wrapper after all: nothing to digest
                continue
            if root is not None and Path(str(root)).is_dir():
                folders.add(str(Path(str(root)) / str(getattr(arr, "path", "") or "")))
    return sorted(folders)


def store_files(folder: str | Any) -> list[tuple[str, int, int]]:
    """``(relative path, size in bytes, mtime in ns)`` of every file under ``folder``, sorted.

    A digest of a zarr array's chunk files that changes when any chunk is rewritten in place (a region
    write changes the files of a sub-folder, not the mtime of the store's top folder).
    """
    import os

    out = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            full = os.path.join(dirpath, f)
            stamp = file_stamp(full)
            if stamp is not None:  # a file removed while walking is no file of the store
                mtime_ns, size = stamp
                out.append((os.path.relpath(full, folder), size, mtime_ns))
    return sorted(out)


def fingerprint(*objs: Any) -> str:
    """A deterministic content key of inputs (arrays, DataArrays, torch state dicts, plain values).

    Used to check that a partial output belongs to the same inputs before resuming it. numpy data is
    hashed; dask-backed data is keyed by its graph name (deterministic for the same recipe; an object dask
    cannot tokenize deterministically gives a random key, so the run recomputes rather than mixing). The
    graph name of a cube read from a zarr store names the store's path and the mtime of its top folder
    only, which an in-place region write does not change: an xarray object that reads local zarr arrays
    is also keyed by the relative path, size and mtime (ns) of every file of those arrays
    (:func:`store_files`), so rewriting any chunk changes the key.
    """
    import hashlib

    from dask.base import tokenize

    def plain(o: Any) -> Any:
        if hasattr(o, "detach") and hasattr(o, "cpu"):  # torch tensor
            return o.detach().cpu().numpy()
        if isinstance(o, Mapping):
            return {str(k): plain(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [plain(v) for v in o]
        if isinstance(o, (xr.DataArray, xr.Dataset)):
            folders = _zarr_array_folders(o)
            if folders:  # read from zarr files: their content, as files, is part of the key
                return [o, [(f, store_files(f)) for f in folders]]
        return o

    h = hashlib.sha256()
    for o in objs:
        h.update(tokenize(plain(o)).encode())
    return h.hexdigest()[:32]
