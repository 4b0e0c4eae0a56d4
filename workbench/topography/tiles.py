"""Overlapping tiles with seamless raised-cosine blending, for running a model over large images.

Each tile's output is multiplied by a separable raised-cosine (Hann-type) window that rises over the
overlap and is flat in the middle; the weighted outputs are summed and divided by the summed weights.
Because the window tapers to (almost) zero at tile borders, seams and edge artefacts of the tiles never
show (Pielawski & Wählby 2020 discuss the same windowed-overlap scheme for CNN inference).

References
----------
Pielawski, N. & Wählby, C. (2020), Introducing Hann windows for reducing edge-effects in patch-based
image segmentation, PLoS ONE 15:e0229839.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError
from ..validate import is_whole_number


def check_tiling(tile: int, overlap: int) -> None:
    """Refuse a tiling that cannot cover an image: ``tile`` must be a whole number >= 1, ``0 <= overlap < tile``.

    Raises
    ------
    InputError
        A non-integer or non-positive tile size, or an overlap outside ``[0, tile - 1]``.
    """
    if not is_whole_number(tile) or tile < 1:
        raise InputError(f"tile size must be a whole number of pixels >= 1, got {tile!r}; e.g. tile=512")
    if not is_whole_number(overlap) or not 0 <= overlap < tile:
        raise InputError(f"overlap must be a whole number of pixels from 0 to {tile - 1} (less than the tile "
                         f"size {tile}), got {overlap!r}; e.g. overlap={min(64, tile // 4)}")


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Start indices covering ``range(n)`` with tiles of ``tile`` pixels overlapping by >= ``overlap``.

    ``tile`` and ``overlap`` are checked by :func:`check_tiling`.
    """
    check_tiling(tile, overlap)
    if tile >= n:
        return [0]
    step = tile - overlap
    starts = list(range(0, n - tile, step)) + [n - tile]
    return sorted(set(starts))


def raised_cosine(n: int, overlap: int, taper_start: bool = True, taper_end: bool = True) -> np.ndarray:
    """1-D window of length ``n``: half-cosine ramps of ``overlap`` pixels, 1 in between.

    Ends that touch the image border are not tapered (``taper_start``/``taper_end`` False).
    """
    w = np.ones(n)
    ov = min(overlap, n // 2)
    if ov > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ov) + 0.5) / ov)
        if taper_start:
            w[:ov] = ramp
        if taper_end:
            w[n - ov:] = ramp[::-1]
    return w


def blend_tiles(
    func: Callable[[tuple[slice, slice]], np.ndarray],
    shape: tuple[int, int],
    tile: int = 512,
    overlap: int = 64,
) -> np.ndarray:
    """Run ``func(window) -> tile output`` over overlapping windows and blend them seamlessly.

    ``func`` receives ``(slice_y, slice_x)`` and returns an array of the window's shape. ``tile`` must be a
    whole number >= 1 and ``0 <= overlap < tile`` (:func:`check_tiling`; :class:`InputError` otherwise).
    """
    check_tiling(tile, overlap)
    ny, nx = shape
    out = np.zeros(shape, dtype=np.float64)
    wsum = np.zeros(shape, dtype=np.float64)
    ys, xs = tile_starts(ny, tile, overlap), tile_starts(nx, tile, overlap)
    for y0 in ys:
        ty = min(tile, ny)
        wy = raised_cosine(ty, overlap, y0 > 0, y0 + ty < ny)
        for x0 in xs:
            tx = min(tile, nx)
            wx = raised_cosine(tx, overlap, x0 > 0, x0 + tx < nx)
            win = (slice(y0, y0 + ty), slice(x0, x0 + tx))
            res = np.asarray(func(win), dtype=np.float64)
            w = wy[:, None] * wx[None, :]
            out[win] += res * w
            wsum[win] += w
    return out / wsum
