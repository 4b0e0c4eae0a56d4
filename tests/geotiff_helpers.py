"""GeoTIFFs written with rasterio alone (no workbench code), as another tool would write them, for the tests of
reading them in (``workbench.rasters``)."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import Affine


def origin(west: float, north: float, dx: float, dy: float) -> Affine:
    """North-up pixels of dx by dy from (west, north): ``rasterio.transform.from_origin`` without its deprecated
    ``*``."""
    return Affine(dx, 0.0, west, 0.0, -dy, north)


def write_geotiff(path, data, crs="IAU_2015:30100", transform=None, descriptions=(), tags=(), **profile):
    """Write ``data`` (band, row, col) to ``path`` with ``crs`` and ``transform`` (default 90 x 60 degree pixels from
    0 E, 90 N); ``descriptions`` name the bands, ``tags`` are per-band metadata dicts, ``profile`` goes to
    ``rasterio.open`` (e.g. ``nodata``). Returns ``path``."""
    data = np.asarray(data)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform or origin(0, 90, 90, 60), **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
        for i, t in enumerate(tags, start=1):
            dst.update_tags(i, **t)
    return path
