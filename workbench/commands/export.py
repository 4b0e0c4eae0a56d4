"""``workbench export``: maps in a zarr store or NetCDF file to a GeoTIFF with the lunar CRS.

For GIS users: ``workbench invert map --out feo.zarr`` writes zarr, which QGIS does not read;
``workbench export feo.zarr --var FeO --var FeO_std --out feo.tif`` writes those maps as bands of one
GeoTIFF (:func:`workbench.export.to_geotiff`: float32, north up, NaN nodata, units in the band metadata),
atomically. ``--latlon`` warps projected maps (a polar-stereographic GeoTIFF, a PDS3 LOLA LDEM) onto lunar
latitude/longitude first.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="maps in a zarr store or NetCDF file to a GeoTIFF (lunar CRS) for GIS")
    p.add_argument("input", metavar="INPUT",
                   help="a zarr store (folder, e.g. from 'workbench invert map'), a .nc or a .tif file (or a PDS3 "
                        ".lbl, PDS4 .xml or ISIS3 .cub raster)")
    p.add_argument("--out", required=True, metavar="OUT.tif", help="the GeoTIFF to write")
    p.add_argument("--var", action="append", default=None, metavar="NAME",
                   help="a variable to write as a band (repeat for more; default: every numeric 2-D variable); a "
                        "(band, lat, lon) cube such as reflectance becomes one band per label")
    p.add_argument("--latlon", action="store_true",
                   help="warp projected maps (polar stereographic, a LOLA LDEM's simple cylindrical metres) onto "
                        "lunar latitude/longitude first (bilinear, or averaged onto a grid at least twice as "
                        "coarse)")
    p.add_argument("--ppd", type=int, default=None,
                   help="with --latlon: pixels per degree of the latitude/longitude grid (default: the file's own "
                        "resolution)")
    p.add_argument("--resampling", choices=["bilinear", "average", "nearest"], default=None,
                   help="with --latlon: how the warp fills each cell (default: average where the grid is at least "
                        "twice as coarse as the map, else bilinear; nearest for classes and masks)")
    p.set_defaults(func=run)


def run(args) -> int:
    import rasterio

    from ..errors import InputError
    from ..export import to_geotiff
    from ..rasters import dataset_to_latlon, open_map_file

    for flag, value, does in (("--ppd", args.ppd, "sets the grid of"), ("--resampling", args.resampling,
                                                                        "chooses how to warp with")):
        if value is not None and not args.latlon:
            raise InputError(f"{flag} {does} --latlon; add --latlon, or drop {flag}")
    with open_map_file(args.input) as ds:
        grid = dataset_to_latlon(ds, args.ppd, resampling=args.resampling) if args.latlon else ds
        out = to_geotiff(grid, args.out, variables=args.var)
    with rasterio.open(out) as dst:  # a cube variable (reflectance) is one band per label
        names = [str(d) for d in dst.descriptions]
    print(f"wrote {out}: {len(names)} band(s) ({', '.join(names)})")
    return 0
