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


#: cos(i) at or below this is unlit (cos 90° is 6e-17 in floating point, not 0).
UNLIT_MU0 = 1e-12


def is_lit(i):
    """True where incidence ``i`` (degrees) puts the sun above the local horizon (cos i > :data:`UNLIT_MU0`)."""
    return np.cos(np.deg2rad(np.asarray(i, dtype=float))) > UNLIT_MU0


def check_angles(i, e, g) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check photometric angles (degrees) and return them as float arrays.

    Incidence must lie in [0, 180] degrees (i >= 90: the sun is below the local horizon, unlit), emission
    in [0, 90] (a surface facing away from the viewer is not observed) and phase in [0, 180]. Of incidence
    and emission only the magnitude is checked (a negative value within those bounds passes). NaN angles
    are allowed (NaN in, NaN out). Only each angle's range is checked, not whether the three are a
    possible sun–surface–viewer geometry.

    Parameters
    ----------
    i, e, g
        Incidence, emission and phase angles in degrees: scalars or arrays (not broadcast against each
        other).

    Returns
    -------
    tuple of numpy.ndarray
        ``(i, e, g)`` as float arrays, values unchanged.

    Raises
    ------
    InputError
        A finite incidence or emission whose absolute value exceeds 180 or 90 degrees, or a finite phase
        outside [0, 180] degrees.

    Examples
    --------
    >>> i, e, g = check_angles(30, 0, 30)
    >>> float(i), e.dtype.name
    (30.0, 'float64')
    """
    i, e, g = (np.asarray(x, dtype=float) for x in (i, e, g))
    if np.any(np.abs(i[np.isfinite(i)]) > 180):
        raise InputError("incidence angles must lie in [0, 180] degrees (i >= 90: unlit)")
    if np.any(np.abs(e[np.isfinite(e)]) > 90):
        raise InputError("emission angles must lie in [0, 90] degrees; a surface facing away from the viewer "
                         "is not observed (set those pixels to NaN)")
    if np.any((g[np.isfinite(g)] < 0) | (g[np.isfinite(g)] > 180)):
        raise InputError("phase angle must lie in [0, 180] degrees")
    return i, e, g


def _unlit_zero(out, lit, mu0, mu, g):
    """``out`` where lit, 0 where the sun is below the horizon, NaN where an angle is missing (NaN): a
    pixel without geometry is unknown, not in shadow."""
    missing = np.isnan(mu0) | np.isnan(mu) | np.isnan(g)
    return np.where(missing, np.nan, np.where(lit, out, 0.0))


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
    i, e, g = check_angles(i, e, g)
    L = mcewen_L(g) if L is None else np.asarray(L, dtype=float)
    mu0 = np.cos(np.deg2rad(i))
    mu = np.cos(np.deg2rad(e))
    lit = mu0 > UNLIT_MU0
    mu0c = np.where(lit, mu0, 0.0)
    denom = np.where(mu0c + mu > 0, mu0c + mu, 1.0)
    out = albedo * (2.0 * L * mu0c / denom + (1.0 - L) * mu0c)
    return _unlit_zero(out, lit, mu0, mu, g)


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
    i, e, g = check_angles(i, e, g)
    w = np.asarray(w, dtype=float)
    if np.any((w[np.isfinite(w)] < 0) | (w[np.isfinite(w)] > 1)):
        raise InputError("single-scattering albedo w must lie in [0, 1]")
    mu0 = np.cos(np.deg2rad(i))
    mu = np.cos(np.deg2rad(e))
    lit = mu0 > UNLIT_MU0
    mu0c = np.where(lit, mu0, 0.0)
    B = B0 / (1.0 + np.tan(np.deg2rad(g) / 2.0) / h)
    P = henyey_greenstein2(g, b, c)
    denom = np.where(mu0c + mu > 0, mu0c + mu, 1.0)
    out = w / 4.0 * mu0c / denom * ((1.0 + B) * P + hapke_H(mu0c, w) * hapke_H(mu, w) - 1.0)
    return _unlit_zero(out, lit, mu0, mu, g)


def hapke_w_from_reflectance(iof, i=30.0, e=0.0, g=30.0, **params):
    """Invert :func:`hapke` for the single-scattering albedo, given I/F at one geometry.

    The forward model is monotonic in ``w``, so the inverse is a table look-up on a fine ``w`` grid
    (linear interpolation; accuracy better than 1e-4 in ``w``). Values above the model's maximum raise.
    """
    if any(np.ndim(a) for a in (i, e, g)):
        raise InputError(f"hapke_w_from_reflectance inverts at one geometry: i, e and g must be single angles, got "
                         f"shapes {np.shape(i)}, {np.shape(e)}, {np.shape(g)}; call it once per geometry")
    wgrid = np.linspace(0.0, 1.0, 4001)
    rgrid = hapke(wgrid, i, e, g, **params)
    if not rgrid[-1] > 0:
        raise InputError(f"the geometry i={i}, e={e}, g={g} deg is unlit: I/F is 0 (or NaN) for every albedo, so "
                         "the albedo cannot be recovered; give a sunlit geometry (i < 90 deg)")
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


# ============================================================================ photometric fitting
# Added with the calibration issue: fit Lunar-Lambert L(g) or Hapke parameters from observations of
# the same ground at several geometries, and normalise reflectance to the standard geometry.


def _obs_arrays(reflectance, i, e, g, max_pixels: int, seed: int):
    """Flatten multi-geometry observations to (n_obs, n_pixels) arrays, valid lit pixels only.

    ``reflectance`` has an ``obs`` dimension (or axis 0 of an array); ``i``, ``e``, ``g`` broadcast to
    it. Pixels must be valid (finite, lit, e < 90) in every observation. A seeded subsample of at most
    ``max_pixels`` pixels is returned.
    """
    import xarray as xr

    if isinstance(reflectance, xr.DataArray):
        if "obs" not in reflectance.dims:
            raise InputError(
                "multi-geometry observations need an 'obs' dimension (one entry per observation); "
                "stack them with xarray.concat(list_of_images, dim='obs')"
            )
        i, e, g = (xr.DataArray(x) if not isinstance(x, xr.DataArray) and np.ndim(x) == 0 else x
                   for x in (i, e, g))
        R, i, e, g = xr.broadcast(reflectance, *(
            x if isinstance(x, xr.DataArray)
            else xr.DataArray(np.asarray(x, float), dims=("obs",)) if np.ndim(x) == 1  # one angle per observation
            else reflectance.copy(data=np.broadcast_to(np.asarray(x, float), reflectance.shape))  # per pixel
            for x in (i, e, g)))
        order = ["obs"] + [d for d in R.dims if d != "obs"]
        R, i, e, g = (np.asarray(x.transpose(*order).values, dtype=float) for x in (R, i, e, g))
    else:
        R = np.asarray(reflectance, dtype=float)
        i, e, g = (np.broadcast_to(np.asarray(x, float).reshape(
            np.shape(x) + (1,) * (R.ndim - np.ndim(x))) if np.ndim(x) == 1 else np.asarray(x, float),
            R.shape) for x in (i, e, g))
    n_obs = R.shape[0]
    R, i, e, g = (x.reshape(n_obs, -1) for x in (R, i, e, g))
    check_angles(i, e, g)
    ok = np.all(np.isfinite(R) & np.isfinite(i) & np.isfinite(e) & np.isfinite(g)
                & (i < 89.0) & (e < 89.0), axis=0)
    if n_obs < 2:
        raise InputError(f"photometric fitting needs at least 2 observations of the ground, got {n_obs}")
    if ok.sum() < 10:
        raise InputError(
            f"too few pixels valid in every observation ({int(ok.sum())}); photometric fitting needs "
            "at least 10 lit pixels seen in all observations"
        )
    idx = np.flatnonzero(ok)
    if idx.size > max_pixels:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_pixels, replace=False))
    return R[:, idx], i[:, idx], e[:, idx], g[:, idx]


def lunar_lambert_L(g, coeffs) -> np.ndarray:
    """Polynomial limb-darkening weight ``L(g) = 1 + Σ_k c_k g^k`` (k = 1..len(coeffs)), g in degrees.

    McEwen's :func:`mcewen_L` is the case ``coeffs = (-0.019, 2.42e-4, -1.46e-6)``.
    """
    g = np.asarray(g, dtype=float)
    return 1.0 + sum(c * g ** (k + 1) for k, c in enumerate(coeffs))


def _ll_shape(i, e, L):
    mu0 = np.cos(np.deg2rad(i))
    mu = np.cos(np.deg2rad(e))
    return 2.0 * L * mu0 / (mu0 + mu) + (1.0 - L) * mu0


def lunar_lambert_phase(g, phase_coeffs, g_ref: float = STANDARD_GEOMETRY[2]) -> np.ndarray:
    """Phase function ``f(g) = exp(Σ_k b_k (g − g_ref)^k)`` (k = 1..), equal to 1 at ``g_ref``.

    McEwen's (1991) empirical lunar phase functions are exponentials of polynomials in the phase angle;
    referring it to the standard phase makes the fitted normal albedo the albedo at g = 30°.
    """
    g = np.asarray(g, dtype=float) - g_ref
    # start from zeros of g's shape: no coefficients give ones of that shape, not the scalar 1
    return np.exp(sum((c * g ** (k + 1) for k, c in enumerate(phase_coeffs)), np.zeros_like(g)))


def fit_lunar_lambert(reflectance, i, e, g, degree: int = 3, phase_degree: int = 2,
                      max_pixels: int = 2000, seed: int = 0) -> dict:
    """Fit Lunar-Lambert ``L(g)`` and a phase function ``f(g)`` to multi-geometry views of one ground.

    Model (McEwen 1991): ``R_pk = A_p · f(g) · [2 L(g) μ0/(μ0 + μ) + (1 − L(g)) μ0]`` with a free
    albedo ``A_p`` per pixel, ``L(g) = 1 + c1 g + ... + c_degree g^degree`` (L(0) = 1 as in McEwen
    1996) and ``f(g) = exp(Σ b_k (g − 30)^k)`` (:func:`lunar_lambert_phase`, f(30°) = 1). The albedos
    are solved in closed form for each trial parameter vector (variable projection) and the
    coefficients by :func:`scipy.optimize.least_squares` (soft-L1 loss), starting from McEwen's L and
    a flat f.

    Parameters
    ----------
    reflectance
        I/F with an ``obs`` dimension (DataArray) or axis 0 (array); one band (loop over bands).
    i, e, g
        Angles (degrees) broadcastable to ``reflectance``: per observation (1-D over ``obs``) or per
        pixel. ``L`` and ``f`` separate only where the mix of (μ0, μ) varies between pixels at the same
        phase (topography, off-nadir views); on flat ground at nadir only their product is known and
        ``L`` stays near its starting value.
    degree, phase_degree
        Polynomial degrees of L(g) (1–4) and of log f(g) (0–3).

    Returns
    -------
    dict
        ``model="lunar-lambert"``, ``coeffs`` (L), ``phase_coeffs`` (f), ``g_range`` (phase angles
        fitted), ``rms`` (relative residual), ``n_pixels``, ``n_obs``.

    References
    ----------
    McEwen (1991, 1996).
    """
    from scipy.optimize import least_squares

    if not 1 <= degree <= 4 or not 0 <= phase_degree <= 3:
        raise InputError(f"degree must be 1..4 and phase_degree 0..3, got {degree}, {phase_degree}")
    R, i, e, g = _obs_arrays(reflectance, i, e, g, max_pixels, seed)
    scale = np.array([1e-2, 1e-4, 1e-6, 1e-8][:degree] + [1e-2, 1e-4, 1e-6][:phase_degree])
    init = np.array([-0.019, 2.42e-4, -1.46e-6, 0.0][:degree] + [0.0] * phase_degree) / scale

    def model(p):
        q = p * scale
        return lunar_lambert_phase(g, q[degree:]) * _ll_shape(i, e, lunar_lambert_L(g, q[:degree]))

    def resid(p):
        F = model(p)
        A = np.sum(R * F, axis=0) / np.maximum(np.sum(F * F, axis=0), 1e-12)
        return ((R - A * F) / np.mean(R)).ravel()

    sol = least_squares(resid, init, loss="soft_l1", f_scale=0.02)
    q = (sol.x * scale).tolist()
    return {"model": "lunar-lambert", "coeffs": q[:degree], "phase_coeffs": q[degree:],
            "g_range": [float(np.min(g)), float(np.max(g))],
            "rms": float(np.sqrt(np.mean(resid(sol.x) ** 2))), "n_pixels": int(R.shape[1]),
            "n_obs": int(R.shape[0])}


#: Hapke parameters that :func:`fit_hapke` may fit, with their bounds.
HAPKE_BOUNDS: dict[str, tuple[float, float]] = {"b": (0.0, 0.95), "c": (-1.0, 1.0), "B0": (0.0, 3.0),
                                               "h": (0.005, 0.5)}


def fit_hapke(reflectance, i, e, g, fit: tuple[str, ...] = ("b", "c"), fixed: dict | None = None,
              max_pixels: int = 300, seed: int = 0) -> dict:
    """Fit Hapke phase-function/opposition parameters and per-pixel ``w`` to multi-geometry data.

    Every pixel gets its own single-scattering albedo ``w_p``; the parameters in ``fit`` (any of
    ``b``, ``c``, ``B0``, ``h``) are shared. All are found together by
    :func:`scipy.optimize.least_squares` (trust-region reflective, bounds, a sparse Jacobian), starting
    from :data:`HAPKE_DEFAULTS` and ``w`` inverted from the first observation.

    Parameters
    ----------
    reflectance, i, e, g
        As in :func:`fit_lunar_lambert` (I/F with an ``obs`` dimension; angles in degrees).
    fit
        Names of the shared parameters to fit; the others stay at ``fixed`` or the defaults.
    fixed
        Values for parameters not fitted.
    max_pixels
        Pixels used (seeded subsample); each adds one unknown.

    Returns
    -------
    dict
        ``model="hapke"``, ``params`` (b, c, B0, h), ``fitted`` (names), ``rms`` (relative residual),
        ``w_median``, ``n_pixels``, ``n_obs``.

    References
    ----------
    Hapke (2012); Sato et al. (2014).
    """
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix

    unknown = [p for p in fit if p not in HAPKE_BOUNDS]
    if unknown:
        raise InputError(f"unknown Hapke parameter(s) {unknown}; choose from {sorted(HAPKE_BOUNDS)}")
    base = {**HAPKE_DEFAULTS, **(fixed or {})}
    R, i, e, g = _obs_arrays(reflectance, i, e, g, max_pixels, seed)
    n_obs, n_pix = R.shape
    top = np.nanmax(hapke(1.0, i[0], e[0], g[0], **base))
    if np.nanmax(R[0]) >= top:
        raise InputError("reflectance above the Hapke model range; check units (I/F, not percent)")
    w0 = np.nan_to_num(_invert_w(R[0], i[0], e[0], g[0], base), nan=0.3)
    p0 = np.array([base[p] for p in fit] + list(w0))
    lo = np.array([HAPKE_BOUNDS[p][0] for p in fit] + [1e-4] * n_pix)
    hi = np.array([HAPKE_BOUNDS[p][1] for p in fit] + [1.0] * n_pix)
    p0 = np.clip(p0, lo + 1e-6, hi - 1e-6)
    nf = len(fit)
    norm = np.mean(R)

    def resid(p):
        par = {**base, **dict(zip(fit, p[:nf], strict=True))}
        return ((hapke(p[nf:][None, :], i, e, g, **par) - R) / norm).ravel()

    sp = lil_matrix((n_obs * n_pix, nf + n_pix), dtype=int)
    sp[:, :nf] = 1
    rows = np.arange(n_obs * n_pix)
    sp[rows, nf + rows % n_pix] = 1
    sol = least_squares(resid, p0, bounds=(lo, hi), jac_sparsity=sp, x_scale="jac")
    params = {**base, **{k: float(v) for k, v in zip(fit, sol.x[:nf], strict=True)}}
    return {"model": "hapke", "params": params, "fitted": list(fit),
            "rms": float(np.sqrt(np.mean(sol.fun**2))), "w_median": float(np.median(sol.x[nf:])),
            "n_pixels": int(n_pix), "n_obs": int(n_obs)}


def _invert_w(iof, i, e, g, params: dict, n_iter: int = 40) -> np.ndarray:
    """Per-pixel inverse of :func:`hapke` in ``w`` for per-pixel geometry (vectorised bisection).

    NaN where the pixel is unlit or its I/F lies outside the model range at its geometry.
    """
    iof, i, e, g = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (iof, i, e, g)))
    lo = np.zeros(iof.shape)
    hi = np.ones(iof.shape)
    top = hapke(1.0, i, e, g, **params)
    valid = np.isfinite(iof) & (top > 0) & (iof >= 0) & (iof <= top)
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        f = hapke(mid, i, e, g, **params)
        up = f < iof
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return np.where(valid, 0.5 * (lo + hi), np.nan)


def _check_hapke_range(iof, i, e, g, params: dict) -> int:
    """Number of lit pixels whose finite I/F lies outside the Hapke model's range at their geometry
    (noise below 0 or above ``w = 1`` at a grazing sun, a hot pixel); raise :class:`InputError` when more
    than 1 % of them exceed both 1 and that maximum, which no surface reaches: reflectance in percent,
    most often."""
    iof, i, e, g = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (iof, i, e, g)))
    lit = np.cos(np.deg2rad(i)) > UNLIT_MU0
    top = hapke(1.0, i, e, g, **params)
    with np.errstate(invalid="ignore"):
        seen = lit & np.isfinite(iof) & np.isfinite(top)
        out = seen & ((iof < 0) | (iof > top))
        huge = out & (iof > np.maximum(top, 1.0))
    if huge.sum() > 0.01 * seen.sum():
        raise InputError(
            f"{int(huge.sum())} of {int(seen.sum())} lit pixels have I/F up to {float(np.nanmax(iof[huge])):.4g}, "
            f"above what any surface reflects at their geometry (at most {float(np.nanmax(top[huge])):.3g}); "
            "give I/F, not percent (divide by 100), and set bad pixels to NaN"
        )
    return int(out.sum())


def normalise(reflectance, i, e, g, model: str = "lunar-lambert", params: dict | None = None,
              to: tuple[float, float, float] = STANDARD_GEOMETRY):
    """Normalise I/F observed at (i, e, g) to the standard geometry ``to`` (default i=30°, e=0°, g=30°).

    * ``"lunar-lambert"``: ``R · F(to)/F(i, e, g)`` with ``F = f(g)·[2Lμ0/(μ0+μ) + (1−L)μ0]``,
      ``L(g)`` and ``f(g)`` from ``params`` (a :func:`fit_lunar_lambert` result). With no params,
      McEwen's ``L(g)`` and a flat ``f``: only the limb darkening is corrected, not the phase darkening.
    * ``"hapke"``: invert ``w`` per pixel at its own geometry with ``params["params"]`` (a
      :func:`fit_hapke` result; defaults otherwise) and evaluate Hapke at ``to`` — exact for the model,
      including its albedo dependence.

    ``reflectance`` may be a DataArray (returned as a DataArray with the same coords and attrs plus
    ``attrs["photometry"]``) or an array; angles broadcast against it. Unlit pixels, and pixels with a
    NaN reflectance or angle, become NaN. With ``"hapke"``, so do lit pixels whose I/F the model cannot
    reach at their geometry (noise below 0 or above ``w = 1``, a hot pixel; a DataArray counts them in
    ``attrs["hapke_out_of_range_pixels"]``); more than 1 % of lit pixels above both 1 and the model's
    maximum (reflectance in percent, most often) raises :class:`InputError`.
    """
    import xarray as xr

    is_da = isinstance(reflectance, xr.DataArray)
    R = reflectance
    params = params or {}
    if model in ("lunar-lambert", "lunar_lambert"):
        ii, ee, gg = (x if isinstance(x, xr.DataArray) else np.asarray(x, float) for x in (i, e, g))
        check_angles(np.asarray(ii), np.asarray(ee), np.asarray(gg))
        if "coeffs" in params:
            L_obs = lunar_lambert_L(gg, params["coeffs"])
            L_std = lunar_lambert_L(to[2], params["coeffs"])
        else:
            L_obs, L_std = mcewen_L(gg), mcewen_L(to[2])
        pc = params.get("phase_coeffs", [])
        f_obs = lunar_lambert_phase(gg, pc)
        if isinstance(gg, xr.DataArray):  # keep the labels so that xarray broadcasts by name
            L_obs, f_obs = gg.copy(data=np.asarray(L_obs)), gg.copy(data=np.asarray(f_obs))
        num = lunar_lambert(*to, L=L_std) * lunar_lambert_phase(to[2], pc)
        den = _ll_shape(ii, ee, L_obs) * f_obs
        lit = is_lit(ii)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = R * num / den
        out = out.where(lit) if is_da else np.where(lit, out, np.nan)
    elif model == "hapke":
        par = {**HAPKE_DEFAULTS, **params.get("params", {k: v for k, v in params.items()
                                                          if k in HAPKE_DEFAULTS})}
        if is_da:  # labelled angles broadcast by name, plain arrays by NumPy's rules against R's own dims
            Rb, ib, eb, gb = xr.broadcast(R, *(x if isinstance(x, xr.DataArray)
                                               else R.copy(data=np.broadcast_to(np.asarray(x, float), R.shape))
                                               for x in (i, e, g)))
            w = _invert_w(Rb.values, ib.values, eb.values, gb.values, par)
            n_out = _check_hapke_range(Rb.values, ib.values, eb.values, gb.values, par)
            out = Rb.copy(data=np.where(np.isfinite(w), hapke(np.nan_to_num(w), *to, **par), np.nan))
            out = out.transpose(*R.dims)
        else:
            w = _invert_w(R, i, e, g, par)
            n_out = _check_hapke_range(R, i, e, g, par)
            out = np.where(np.isfinite(w), hapke(np.nan_to_num(w), *to, **par), np.nan)
    else:
        raise InputError(f"unknown photometric model {model!r}; use 'lunar-lambert' or 'hapke'")
    if is_da:
        out.attrs = dict(reflectance.attrs)
        out.attrs["photometry"] = f"{model} normalised to i={to[0]}, e={to[1]}, g={to[2]} deg"
        if model == "hapke":
            out.attrs["hapke_out_of_range_pixels"] = n_out
        out.name = reflectance.name
    return out
