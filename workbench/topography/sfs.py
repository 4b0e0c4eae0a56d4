"""Shape-from-shading baseline in the formulation of the Ames Stereo Pipeline ``sfs`` tool.

The DEM ``z`` (metres, on the image grid) minimises

``E(z, A) = Σ_lit (A·R(z) - I)² + μ Σ |∇²z|² + λ Σ (z - z_0)²``

where ``R`` is the Lunar-Lambert reflectance of the DEM under the known sun (McEwen 1991; viewer at
nadir), ``A`` a global albedo/exposure factor fitted jointly, ``I`` the image, ``z_0`` the initial DEM
(the coarse DEM upsampled bicubically) and the sums run over lit pixels only: pixels darker than a shadow
threshold (cast shadows, self-shadowed faces) carry no shading information and are masked, as with
ASP's ``--shadow-threshold``. Heights are optimised in pixel units for conditioning with L-BFGS on
gradients from torch autograd.

References
----------
Alexandrov, O. & Beyer, R. A. (2018), Multiview shape-from-shading for planetary images, Earth and Space
Science 5:652–666 (the ASP ``sfs`` formulation: image misfit + smoothness + initial-DEM constraint).
Horn, B. K. P. (1990), Height and gradient from shading, Int. J. Computer Vision 5:37–75.
McEwen, A. S. (1991), Photometric functions for photoclinometry and other applications, Icarus 92:298.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..photometry import mcewen_L
from ..validate import check_sun, is_whole_number
from .shadows import shadow_mask

__all__ = ["sfs", "lunar_lambert_torch", "check_sfs_options", "SFS_OPTIONS"]

#: the keyword options of :func:`sfs` (and of ``reconstruct(..., method="sfs" or "network_sfs")``)
SFS_OPTIONS = ("smoothness", "initial_dem_weight", "shadow_threshold", "max_iter")


def lunar_lambert_torch(z_px, sun_azimuth: float, sun_elevation: float):
    """Differentiable Lunar-Lambert rendering of heights ``z_px`` (pixel units, torch 2-D tensor).

    Same conventions and formula as :func:`workbench.synth.render.render` without cast shadows.
    """
    import torch

    az, el = np.deg2rad(sun_azimuth), np.deg2rad(sun_elevation)
    s_e, s_n, s_u = np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)
    # central differences inside, one-sided on the edges: np.gradient's rule, as render() uses
    gy, gx = torch.gradient(z_px)
    p = gx  # dz/deast
    q = -gy  # dz/dnorth (row 0 north)
    norm = torch.sqrt(1.0 + p * p + q * q)
    mu0 = torch.clamp((-p * s_e - q * s_n + s_u) / norm, min=0.0)
    mu = 1.0 / norm
    L = float(mcewen_L(90.0 - sun_elevation))
    return 2.0 * L * mu0 / (mu0 + mu) + (1.0 - L) * mu0


def check_sfs_options(smoothness: float = 0.02, initial_dem_weight: float = 1e-3, shadow_threshold: float = 0.05,
                      max_iter: int = 100) -> None:
    """Refuse :func:`sfs` options that would make the optimisation meaningless, before any work.

    Raises
    ------
    InputError
        When a weight (``smoothness``, ``initial_dem_weight``) is not a finite number >= 0 (a negative
        smoothness rewards roughness and diverges; NaN makes every height NaN), ``shadow_threshold`` is
        not strictly between 0 and 1 (a fraction of the lit brightness), or ``max_iter`` is not a whole
        number >= 1.
    """
    def number(v) -> bool:
        return isinstance(v, (int, float, np.number)) and not isinstance(v, bool)

    for name, value in (("smoothness", smoothness), ("initial_dem_weight", initial_dem_weight)):
        if not number(value) or not np.isfinite(value) or value < 0:
            raise InputError(f"SfS option {name} must be a finite number >= 0, got {value!r}; "
                             "leave it out for the default")
    if not number(shadow_threshold) or not 0.0 < shadow_threshold < 1.0:
        raise InputError(f"SfS option shadow_threshold must be a fraction of the lit brightness strictly between "
                         f"0 and 1, got {shadow_threshold!r}; e.g. 0.05 (the default)")
    if not is_whole_number(max_iter) or max_iter < 1:
        raise InputError(f"SfS option max_iter must be a whole number of iterations >= 1, got {max_iter!r}; "
                         "e.g. 100 (the default)")


def sfs(
    image: np.ndarray,
    z_init: np.ndarray,
    pixel_size: float,
    sun_azimuth: float,
    sun_elevation: float,
    *,
    smoothness: float = 0.02,
    initial_dem_weight: float = 1e-3,
    shadow_threshold: float = 0.05,
    max_iter: int = 100,
) -> np.ndarray:
    """Refine ``z_init`` (metres) by shape-from-shading of ``image`` (radiance factor, same grid).

    Parameters
    ----------
    image
        Radiance factor I/F, 2-D, row 0 north; finite and non-negative. NaN pixels are refused, not
        skipped: fill or crop them first (one NaN would otherwise make every height NaN).
    z_init
        Initial DEM in metres on the image grid (the upsampled coarse DEM); same shape, finite.
    pixel_size
        Metres per pixel.
    sun_azimuth, sun_elevation
        Degrees; conventions of :mod:`workbench.synth.render` (elevation in (0, 90]).
    smoothness
        Weight μ of the squared Laplacian (pixel units), relative to the mean image misfit.
    initial_dem_weight
        Weight λ of ``(z - z_init)²`` (pixel units).
    shadow_threshold
        Pixels darker than this fraction of the lit brightness (:func:`~workbench.topography.shadows.lit_level`)
        are masked as shadow.
    max_iter
        L-BFGS iterations.

    Returns
    -------
    numpy.ndarray
        The refined DEM in metres.

    Raises
    ------
    InputError
        On a bad sun, options (:func:`check_sfs_options`), pixel size, non-finite or negative image pixels,
        a non-finite initial DEM, or an image and initial DEM of different shapes.
    """
    import torch

    sun_azimuth, sun_elevation = check_sun(sun_azimuth, sun_elevation)
    check_sfs_options(smoothness, initial_dem_weight, shadow_threshold, max_iter)
    img = np.asarray(image, dtype=np.float64)
    z_init = np.asarray(z_init, dtype=np.float64)
    if img.ndim != 2 or img.shape != z_init.shape:
        raise InputError(f"SfS needs a 2-D image and an initial DEM of the same shape, got {img.shape} and "
                         f"{z_init.shape}; upsample the coarse DEM onto the image grid first")
    try:
        pixel_size = float(pixel_size)
    except (TypeError, ValueError):
        pixel_size = float("nan")
    if not np.isfinite(pixel_size) or pixel_size <= 0:
        raise InputError("SfS pixel_size must be a positive number of metres per pixel")
    if not np.all(np.isfinite(img)):
        raise InputError(f"image contains {int((~np.isfinite(img)).sum())} NaN/inf pixels; SfS does not skip "
                         "them (every height would become NaN): fill or crop them first")
    if np.any(img < 0):
        raise InputError("image has negative values; give radiance factor or another non-negative brightness")
    if not np.all(np.isfinite(z_init)):
        raise InputError(f"initial DEM contains {int((~np.isfinite(z_init)).sum())} NaN/inf heights; fill its "
                         "gaps (e.g. interpolate) first")
    shadowed, med = shadow_mask(img, shadow_threshold)
    mask = ~shadowed
    n_lit = max(int(mask.sum()), 1)
    with torch.no_grad():
        I = torch.as_tensor(img / med, dtype=torch.float64)
        M = torch.as_tensor(mask, dtype=torch.float64)
        z0 = torch.as_tensor(z_init / pixel_size)
        r0 = lunar_lambert_torch(z0, sun_azimuth, sun_elevation)
        denom = float((r0 * M).pow(2).sum())
        a0 = float((r0 * M * I).sum()) / denom if denom > 0 else 1.0
    z = z0.clone().requires_grad_(True)
    log_a = torch.tensor(np.log(max(a0, 1e-6)), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([z, log_a], lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
    lap_k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)[None, None]

    def closure():
        opt.zero_grad()
        r = torch.exp(log_a) * lunar_lambert_torch(z, sun_azimuth, sun_elevation)
        misfit = ((r - I) * M).pow(2).sum() / n_lit
        zz = torch.nn.functional.pad(z[None, None], (1, 1, 1, 1), mode="replicate")
        lap = torch.nn.functional.conv2d(zz, lap_k)[0, 0]
        loss = misfit + smoothness * lap.pow(2).mean() + initial_dem_weight * (z - z0).pow(2).mean()
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    if img.size <= 512 * 512:
        torch.set_num_threads(1)  # small problems: thread overhead dominates on a shared machine
    try:
        opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    return z.detach().numpy() * pixel_size
