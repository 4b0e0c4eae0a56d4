"""Shadows in an image: the lit brightness level, the shadow mask, and shadow lengths along the sun.

Shared by the network's inputs (:mod:`workbench.topography.net`) and shape-from-shading
(:mod:`workbench.topography.sfs`), so both mask the same pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: a pixel darker than this fraction of the lit level (:func:`lit_level`) counts as shadowed
SHADOW_FRACTION = 0.05


def _runs_left(r: np.ndarray) -> np.ndarray:
    """Per row, how many consecutive True pixels end at each pixel (0 where False)."""
    j = np.arange(r.shape[1], dtype=np.int32)[None, :]
    last = np.maximum.accumulate(np.where(r, -1, j), axis=1)
    return np.where(r, j - last, 0).astype(np.float32)


def shadow_runs(mask: np.ndarray, sun_azimuth: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances (pixels) along the sun direction from each shadowed pixel to the shadow's ends.

    Returns ``(to_caster, to_end)``: steps towards the sun to the last shadowed pixel before the caster
    (1 next to the caster) and steps away from the sun to the shadow's far end (1 at the far end); both
    0 on lit pixels. The mask is rotated so that the sun lies along -x, runs are counted along rows,
    and the result is rotated back (nearest neighbour, then bilinear).

    Parameters
    ----------
    mask
        Boolean shadow mask, row 0 north/up.
    sun_azimuth
        Degrees clockwise from up towards the sun (the renderer's convention).
    """
    m = np.asarray(mask, dtype=np.float32)
    ny, nx = m.shape
    ang = float(sun_azimuth) + 90.0  # sun towards the west (270 deg) needs no rotation
    r = ndimage.rotate(m, ang, reshape=True, order=0, mode="constant", cval=0.0) > 0.5
    out = []
    for a in (_runs_left(r), _runs_left(r[:, ::-1])[:, ::-1]):
        b = ndimage.rotate(a, -ang, reshape=True, order=1, mode="constant", cval=0.0)
        y0, x0 = (b.shape[0] - ny) // 2, (b.shape[1] - nx) // 2
        out.append(b[y0:y0 + ny, x0:x0 + nx] * m)
    return out[0], out[1]


def lit_level(image: np.ndarray, fraction: float = SHADOW_FRACTION, iterations: int = 50) -> float:
    """Median brightness of the lit pixels: the median of the pixels brighter than ``fraction`` × itself.

    The largest fixed point of ``m ← median(image ≥ fraction·m)``, reached from above: starting at the
    99th percentile of the positive pixels, each update lowers the threshold and the median until they
    agree. Shadows are not exactly zero in an image with noise, and at a 2° sun, where half the tile or
    more is in shadow, the plain median of the positive pixels lands in the noise (0.1–0.2 of the lit
    level), which both saturates the normalised image and marks shadowed pixels as lit; the noise has its
    own, lower fixed point, which the descent from above never reaches.
    Returns 1.0 for an image with no positive pixel.
    """
    v = np.asarray(image, dtype=np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 1.0
    med = float(np.quantile(v, 0.99))
    for _ in range(iterations):
        new = float(np.median(v[v >= fraction * med]))
        if new == med:
            break
        med = new
    return med if med > 0 else 1.0


def shadow_mask(image: np.ndarray, fraction: float = SHADOW_FRACTION) -> tuple[np.ndarray, float]:
    """``(shadowed, level)``: pixels darker than ``fraction`` × the lit level, and that level (:func:`lit_level`)."""
    img = np.asarray(image, dtype=np.float64)
    level = lit_level(img, fraction)
    return img < fraction * level, level
