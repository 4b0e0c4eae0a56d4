"""``workbench export``: maps in a zarr store or NetCDF file to a GeoTIFF with the lunar CRS.

For GIS users: ``workbench invert map --out feo.zarr`` writes zarr, which QGIS does not read;
``workbench export feo.zarr --var FeO --var FeO_std --out feo.tif`` writes those maps as bands of one
GeoTIFF (:func:`workbench.export.to_geotiff`: float32, north up, NaN nodata, units in the band metadata),
atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("export", help="maps in a zarr store or NetCDF file to a GeoTIFF (lunar CRS) for GIS")
    p.add_argument("input", metavar="INPUT", help="a zarr store (folder, e.g. from 'workbench invert map') or .nc")
    p.add_argument("--out", required=True, metavar="OUT.tif", help="the GeoTIFF to write")
    p.add_argument("--var", action="append", default=None, metavar="NAME",
                   help="a variable to write as a band (repeat for more; default: every numeric 2-D variable); a "
                        "(band, lat, lon) cube such as reflectance becomes one band per label")
    p.set_defaults(func=run)


def run(args) -> int:
    import xarray as xr

    from ..errors import InputError
    from ..export import to_geotiff
    from ..io import one_line

    src = Path(args.input)
    if not src.exists():
        raise InputError(f"{src} does not exist; give a zarr store (folder) or a NetCDF (.nc) file")
    is_zarr = src.is_dir() or src.suffix.lower() == ".zarr"
    if not is_zarr and src.suffix.lower() not in (".nc", ".nc4", ".netcdf"):
        raise InputError(f"{src.name}: unknown input type; give a zarr store (folder) or a NetCDF (.nc) file")
    try:
        with warnings.catch_warnings():  # a store written without consolidated metadata reads fine without it
            warnings.filterwarnings("ignore", message=".*consolidated metadata", category=RuntimeWarning)
            ds = xr.open_zarr(src) if is_zarr else xr.open_dataset(src)
    except Exception as e:  # zarr, netCDF4 and h5netcdf each raise their own kinds
        kind = "a zarr store" if is_zarr else "a NetCDF file"
        raise InputError(f"{src} could not be read as {kind} ({type(e).__name__}: {one_line(str(e))}); give the "
                         "store 'workbench invert map' wrote, or a file xarray.open_dataset reads") from e
    with ds:
        out = to_geotiff(ds, args.out, variables=args.var)
    import rasterio

    with rasterio.open(out) as dst:  # a cube variable (reflectance) is one band per label
        names = [str(d) for d in dst.descriptions]
    print(f"wrote {out}: {len(names)} band(s) ({', '.join(names)})")
    return 0
