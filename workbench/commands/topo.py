"""``workbench topo reconstruct``: a DEM from one image plus a coarse DEM (network, SfS or bicubic).

Inputs are GeoTIFF (read with rioxarray; metre-based projected CRS) or ``.npy`` with ``--pixel-size``
(the image's pixel size in metres; the coarse DEM then covers the same extent with fewer pixels). A GeoTIFF
without a CRS says nothing about the units of its coordinates (degrees? pixels?): it needs ``--pixel-size``
and is then read like a ``.npy``, its coordinates ignored. A ``.npy`` DEM beside a GeoTIFF image is taken
in the image's row and column order.
Output: heights in metres on the image grid, as ``.tif`` or ``.npy`` (by the extension of ``--out``),
written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..config import PRECISIONS
from ..errors import InputError


def register(sub) -> None:
    p = sub.add_parser("topo", help="topography reconstruction from one image and a coarse DEM")
    tsub = p.add_subparsers(dest="topo_command", metavar="ACTION")
    tsub.required = True
    r = tsub.add_parser("reconstruct", help="reconstruct a DEM on the image grid")
    r.add_argument("--image", required=True, help="image (radiance factor): .tif or .npy")
    r.add_argument("--coarse-dem", required=True, help="coarse DEM in metres over the same extent: .tif or .npy")
    r.add_argument("--sun-azimuth", type=float, required=True, help="degrees clockwise from up/north towards the sun")
    r.add_argument("--sun-elevation", type=float, required=True, help="degrees above the horizontal, in (0, 90]")
    r.add_argument("--out", required=True, help="output heights (m): .tif or .npy")
    r.add_argument("--method", choices=("network", "sfs", "upsample", "network_sfs"), default="network",
                   help="network_sfs: the network's DEM refined by shape-from-shading (slower)")
    r.add_argument("--pixel-size", type=float, default=None,
                   help="image pixel size in metres (required for .npy and for GeoTIFFs without a CRS; a "
                        "georeferenced GeoTIFF has its own, and a different value is refused)")
    r.add_argument("--views", type=int, default=None,
                   help="network: average over this many mirrored/rotated views of each tile, 1-8 "
                        "(default 6; more is slower and slightly more accurate)")
    r.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="network arithmetic (default: WORKBENCH_PRECISION or auto = bfloat16 where the CPU/GPU "
                        "runs it natively, else float32)")
    r.set_defaults(func=_reconstruct, out_kind="file")


def _read(path: str, what: str, is_dem: bool) -> xr.DataArray | np.ndarray:
    from ..validate import load_npy

    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file {path} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        arr = load_npy(p, what)  # damaged/pickled .npy -> InputError
        if arr.ndim != 2:
            raise InputError(f"{what} {path} must be a 2-D array, got shape {arr.shape}")
        return arr.astype(np.float64)
    if suffix in (".tif", ".tiff"):
        from ..validate import check_crs, open_raster

        da = open_raster(p, what, masked=True)  # damaged GeoTIFF -> InputError
        if "band" in da.dims:
            if da.sizes["band"] != 1:
                raise InputError(f"{what} {path} has {da.sizes['band']} bands; give a single-band GeoTIFF")
            da = da.isel(band=0, drop=True)
        crs = da.rio.crs
        if crs is not None:
            check_crs(da.assign_attrs(crs=crs.to_string()))  # an Earth/Mars CRS -> InputError
            if crs.is_geographic:
                raise InputError(
                    f"{what} {path} is in geographic degrees; reproject it to a metric projection "
                    "(e.g. polar stereographic) first"
                )
            unit = (crs.linear_units or "metre").lower()
            if unit not in ("metre", "meter", "m", "metres", "meters", "unknown"):
                raise InputError(f"{what} {path} has CRS units {unit!r}; reproject it to metres first")
        if is_dem:
            units = str(da.attrs.get("units", "m")).strip().lower()
            if units not in ("m", "metre", "metres", "meter", "meters"):
                raise InputError(f"{what} {path} has height units {units!r}; convert the heights to metres first")
        da.attrs["units"] = "m" if is_dem else "1"
        keep = {"y": da["y"].values, "x": da["x"].values}
        out = xr.DataArray(np.asarray(da.values, dtype=np.float64), dims=("y", "x"), coords=keep, attrs=da.attrs)
        out.attrs["_crs"] = crs.to_wkt() if crs is not None else None
        return out
    raise InputError(f"{what} {path}: unsupported format {suffix!r}; use a GeoTIFF (.tif) or .npy")


def _reconstruct(args) -> int:
    from ..io import atomic_path
    from ..topography.model import image_pixel_size, reconstruct

    out = Path(args.out)
    if out.suffix.lower() not in (".tif", ".tiff", ".npy"):
        raise InputError(f"--out {args.out}: use a .tif or .npy file name")
    if args.pixel_size is not None and not (np.isfinite(args.pixel_size) and args.pixel_size > 0):
        raise InputError(f"--pixel-size must be a positive number of metres per image pixel, got {args.pixel_size}")
    if args.views is not None and args.method not in ("network", "network_sfs"):
        raise InputError(f"--views averages the network's views; method {args.method!r} has none. Use "
                         "--method network (or network_sfs), or leave --views out")
    if args.precision is not None and args.method not in ("network", "network_sfs"):
        raise InputError(f"--precision sets the network's arithmetic; method {args.method!r} runs no network. Use "
                         "--method network (or network_sfs), or leave --precision out")
    img = _read(args.image, "image", is_dem=False)
    dem = _read(args.coarse_dem, "coarse DEM", is_dem=True)
    for what, path in (("image", args.image), ("coarse DEM", args.coarse_dem)):
        da = img if what == "image" else dem
        if isinstance(da, xr.DataArray) and da.attrs.get("_crs") is None:
            if args.pixel_size is None:
                raise InputError(
                    f"{what} {path} has no CRS, so the units of its coordinates (degrees? pixels?) are unknown: "
                    "give --pixel-size (metres per image pixel; files without a CRS are then matched to the "
                    "image by shape) or a GeoTIFF with a projected CRS in metres"
                )
            if what == "image":  # coordinates of unknown units: read like a .npy
                img = da.values
            else:
                dem = da.values
    if isinstance(img, np.ndarray) and args.pixel_size is None:
        raise InputError("a .npy image needs --pixel-size (metres per image pixel)")
    if isinstance(img, xr.DataArray):  # a georeferenced image: --pixel-size may only repeat its own
        image_pixel_size(img, args.pixel_size, option="--pixel-size")
    crs = img.attrs.pop("_crs", None) if isinstance(img, xr.DataArray) else None
    if isinstance(dem, xr.DataArray):
        dem.attrs.pop("_crs", None)
        if isinstance(img, np.ndarray):
            dem = dem.values  # a .npy image has no extent to compare with: the two are matched by shape only
    # a GeoTIFF image keeps its coordinates (pixel size, output georeferencing) beside a .npy DEM
    views = {} if args.views is None else {"views": args.views}
    z = reconstruct(img, dem, args.sun_azimuth, args.sun_elevation, method=args.method,
                    pixel_size=args.pixel_size, precision=args.precision, **views)
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, z.values.astype(np.float32))
        else:
            import rioxarray  # noqa: F401  (registers the .rio accessor)

            da = z.astype(np.float32)
            da.attrs = {k: v for k, v in z.attrs.items() if isinstance(v, (str, int, float))}
            if crs:
                da = da.rio.write_crs(crs)
            da.rio.to_raster(tmp, driver="GTiff")
    print(f"wrote {out} ({z.attrs['method']}, {z.shape[0]}x{z.shape[1]}, "
          f"heights {float(z.min()):.1f}..{float(z.max()):.1f} m)")
    return 0
