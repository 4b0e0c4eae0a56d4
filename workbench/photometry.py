"""Photometric models of the lunar surface: Lunar-Lambert (McEwen) and Hapke.

All angles are in degrees: incidence ``i`` (sun from the surface normal), emission ``e`` (viewer from
the normal) and phase ``g`` (sun–surface–viewer). Models return the **radiance factor** I/F (= π·r,
with r the bidirectional reflectance); the standard geometry of the workbench is i = 30°, e = 0°,
g = 30°.

References
----------
McEwen, A. S. (1996), A precise lunar photometric function, LPSC XXVII, 841–842.
McEwen, A. S. (1991), Photometric functions for photoclinometry and other applications, Icarus 92:298.
Hapke, B. (2012), Theory of Reflectance and Emittance Spectroscopy, 2nd ed., Cambridge Univ. Press.
Hapke, B. (2002), Bidirectional reflectance spectroscopy 5. The coherent backscatter opposition effect
and anisotropic scattering, Icarus 157:523–534 (H-function approximation).
Sato, H. et al. (2014), Resolved Hapke parameter maps of the Moon, JGR Planets 119:1775–1805
(typical lunar values used as defaults below).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

#: Standard photometric geometry (i, e, g) in degrees.
STANDARD_GEOMETRY: tuple[float, float, float] = (30.0, 0.0, 30.0)

#: Typical lunar Hapke parameters (after Sato et al. 2014, WAC 643 nm global averages, rounded):
#: b, c (two-term Henyey–Greenstein), B0 and h (shadow-hiding opposition effect).
HAPKE_DEFAULTS: dict[str, float] = {"b": 0.21, "c": 0.70, "B0": 1.0, "h": 0.07}


def _check_angles(i, e, g) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i, e, g = (np.asarray(x, dtype=float) for x in (i, e, g))
    if np.any(np.abs(i[np.isfinite(i)]) > 90) or np.any(np.abs(e[np.isfinite(e)]) > 90):
        raise InputError("incidence and emission angles must lie in [0, 90] degrees")
    if np.any((g[np.isfinite(g)] < 0) | (g[np.isfinite(g)] > 180)):
        raise InputError("phase angle must lie in [0, 180] degrees")
    return i, e, g


def mcewen_L(g):
    """Lunar-Lambert limb-darkening weight L(g) of McEwen (1996), ``g`` in degrees.

    ``L = 1 - 0.019 g + 2.42e-4 g^2 - 1.46e-6 g^3``.
    """
    g = np.asarray(g, dtype=float)
    return 1.0 - 0.019 * g + 2.42e-4 * g**2 - 1.46e-6 * g**3


def lunar_lambert(i, e, g, albedo=1.0, L=None):
    """Lunar-Lambert radiance factor ``A·[2L cos i/(cos i + cos e) + (1 - L) cos i]``.

    Parameters
    ----------
    i, e, g
        Incidence, emission and phase angle (degrees). Points with i >= 90 are unlit and return 0.
    albedo
        Normal albedo ``A`` (scales the result).
    L
        Limb-darkening weight; McEwen's L(g) when None. ``L = 0`` is Lambert, ``L = 1`` Lommel–Seeliger.
    """
    i, e, g = _check_angles(i, e, g)
    L = mcewen_L(g) if L is None else np.asarray(L, dtype=float)
    mu0 = np.cos(np.deg2rad(i))
    mu = np.cos(np.deg2rad(e))
    lit = mu0 > 0
    mu0c = np.where(lit, mu0, 0.0)
    denom = np.where(mu0c + mu > 0, mu0c + mu, 1.0)
    out = albedo * (2.0 * L * mu0c / denom + (1.0 - L) * mu0c)
    return np.where(lit, out, 0.0)


def henyey_greenstein2(g, b: float = HAPKE_DEFAULTS["b"], c: float = HAPKE_DEFAULTS["c"]):
    """Two-term Henyey–Greenstein phase function P(g) (Hapke 2012, eq. 6.7a); c > 0 is back-scattering."""
    cg = np.cos(np.deg2rad(g))
    t1 = (1 - b**2) / (1 - 2 * b * cg + b**2) ** 1.5
    t2 = (1 - b**2) / (1 + 2 * b * cg + b**2) ** 1.5
    return (1 + c) / 2 * t1 + (1 - c) / 2 * t2


def hapke_H(x, w):
    """Chandrasekhar H-function, Hapke's (2002) improved approximation (error < 1%)."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    gamma = np.sqrt(np.clip(1.0 - w, 0.0, 1.0))
    r0 = (1 - gamma) / (1 + gamma)
    xs = np.maximum(x, 1e-9)
    return 1.0 / (1.0 - w * xs * (r0 + (1 - 2 * r0 * xs) / 2 * np.log((1 + xs) / xs)))


def hapke(w, i, e, g, b: float = HAPKE_DEFAULTS["b"], c: float = HAPKE_DEFAULTS["c"],
          B0: float = HAPKE_DEFAULTS["B0"], h: float = HAPKE_DEFAULTS["h"]):
    """Hapke radiance factor I/F for single-scattering albedo ``w`` (IMSA model, no roughness).

    ``I/F = w/4 · μ0/(μ0+μ) · [(1 + B(g)) P(g) + H(μ0) H(μ) − 1]`` with the shadow-hiding opposition
    term ``B(g) = B0 / (1 + tan(g/2)/h)`` (Hapke 2012, eqs. 9.22 and 9.37; macroscopic roughness omitted).

    Parameters
    ----------
    w
        Single-scattering albedo in [0, 1] (array-like; broadcast against the angles).
    i, e, g
        Angles in degrees.
    b, c, B0, h
        Phase-function and opposition parameters.
    """
    i, e, g = _check_angles(i, e, g)
    w = np.asarray(w, dtype=float)
    if np.any((w[np.isfinite(w)] < 0) | (w[np.isfinite(w)] > 1)):
        raise InputError("single-scattering albedo w must lie in [0, 1]")
    mu0 = np.cos(np.deg2rad(i))
    mu = np.cos(np.deg2rad(e))
    lit = mu0 > 0
    mu0c = np.where(lit, mu0, 0.0)
    B = B0 / (1.0 + np.tan(np.deg2rad(g) / 2.0) / h)
    P = henyey_greenstein2(g, b, c)
    denom = np.where(mu0c + mu > 0, mu0c + mu, 1.0)
    out = w / 4.0 * mu0c / denom * ((1.0 + B) * P + hapke_H(mu0c, w) * hapke_H(mu, w) - 1.0)
    return np.where(lit, out, 0.0)


def hapke_w_from_reflectance(iof, i=30.0, e=0.0, g=30.0, **params):
    """Invert :func:`hapke` for the single-scattering albedo, given I/F at one geometry.

    The forward model is monotonic in ``w``, so the inverse is a table look-up on a fine ``w`` grid
    (linear interpolation; accuracy better than 1e-4 in ``w``). Values above the model's maximum raise.
    """
    wgrid = np.linspace(0.0, 1.0, 4001)
    rgrid = hapke(wgrid, i, e, g, **params)
    iof = np.asarray(iof, dtype=float)
    finite = iof[np.isfinite(iof)]
    if finite.size and (finite.min() < 0 or finite.max() > rgrid[-1]):
        raise InputError(
            f"reflectance outside the Hapke model range [0, {rgrid[-1]:.3f}] at this geometry; "
            "check the reflectance units (I/F, not percent)"
        )
    return np.interp(iof, rgrid, wgrid)


def normalisation_factor(i, e, g, model: str = "lunar-lambert", to=STANDARD_GEOMETRY, **params):
    """Factor that takes reflectance observed at (i, e, g) to the standard geometry ``to``.

    For Lunar-Lambert this is ``f(to) / f(i, e, g)``; for Hapke the albedo-dependence is weak and the
    same ratio is taken at ``params['w']`` (default 0.3, a typical lunar single-scattering albedo).
    Unlit pixels (i >= 90) give NaN, never a number.
    """
    if model in ("lunar-lambert", "lunar_lambert"):
        L = params.get("L")
        num = lunar_lambert(*to, L=L if L is None else params.get("L_standard", L))
        den = lunar_lambert(i, e, g, L=L)
    elif model == "hapke":
        w = params.pop("w", 0.3)
        num = hapke(w, *to, **params)
        den = hapke(w, i, e, g, **params)
    else:
        raise InputError(f"unknown photometric model {model!r}; use 'lunar-lambert' or 'hapke'")
    den = np.asarray(den, dtype=float)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
