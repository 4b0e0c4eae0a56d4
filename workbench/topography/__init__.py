"""Topography reconstruction from one image plus a coarse DEM: SfS baseline and a U-Net with scale recovery.

>>> from workbench.topography import reconstruct   # doctest: +SKIP
>>> dem = reconstruct(image, coarse_dem, sun_azimuth=135, sun_elevation=5, method="network")  # doctest: +SKIP

Names are imported lazily so that ``import workbench.topography`` stays cheap (no torch).
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "reconstruct": "workbench.topography.model",
    "scale_recovery": "workbench.topography.model",
    "upsample": "workbench.topography.model",
    "downsample": "workbench.topography.model",
    "load_network": "workbench.topography.model",
    "sfs": "workbench.topography.sfs",
    "blend_tiles": "workbench.topography.tiles",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
