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

from ..photometry import mcewen_L
from .shadows import shadow_mask

__all__ = ["sfs", "lunar_lambert_torch"]


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
        Radiance factor I/F; NaN not allowed (checked by the callers).
    z_init
        Initial DEM in metres on the image grid (the upsampled coarse DEM).
    pixel_size
        Metres per pixel.
    sun_azimuth, sun_elevation
        Degrees; conventions of :mod:`workbench.synth.render`.
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
    """
    import torch

    img = np.asarray(image, dtype=np.float64)
    shadowed, med = shadow_mask(img, shadow_threshold)
    mask = ~shadowed
    n_lit = max(int(mask.sum()), 1)
    with torch.no_grad():
        I = torch.as_tensor(img / med, dtype=torch.float64)
        M = torch.as_tensor(mask, dtype=torch.float64)
        z0 = torch.as_tensor(np.asarray(z_init, dtype=np.float64) / pixel_size)
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
