"""Reflectance spectra of lunar soils: Hapke single-scattering-albedo mixing of mineral end-members.

Model
-----
1. Every phase has an imaginary refractive index ``k(λ)`` built from documented absorptions:
   a Fe²⁺–O charge-transfer edge in the UV, crystal-field bands of Fe²⁺ whose centres move with the
   Fe/Mg ratio (``PARAMS``), and a weak continuum. Ilmenite is opaque: a fixed single-scattering
   albedo, not a function of Mg# or npFe, that falls linearly with wavelength (0.21 at 415 nm, 0.041 at
   750 nm, about 5× lower) and is held at a floor of 0.02 from ~792 nm on (``PARAMS``).
2. Space weathering: nanophase iron (npFe⁰) adds the absorption coefficient of Hapke (2001),
   ``α_npFe = 36π z φ / λ`` with ``z = n_h³ n_Fe k_Fe / [(n_Fe² − k_Fe² + 2n_h²)² + (2 n_Fe k_Fe)²]``,
   ``φ`` the volume fraction of iron and ``n_Fe + i k_Fe`` the optical constants of iron
   (Lucey & Riner 2011 apply the same expression to whole grains).
3. Single-scattering albedo of a grain of mean optical path ⟨D⟩ (Hapke 2012, eqs. 11.14–11.16,
   internal scattering neglected): ``w = Se + (1 − Se)(1 − Si)Θ/(1 − SiΘ)``, ``Θ = exp(−α⟨D⟩)``,
   ``α = 4πk/λ + α_npFe``, with ``Se = (n − 1)²/(n + 1)² + 0.05`` and ``Si = 1 − 4/(n(n + 1)²)``. The
   published approximation (Hapke 1993; Lucey 1998) has 1.014 in place of 1 in ``Si`` (0.691 against
   0.677 for n = 1.7); the spectral parameters below were set with this form, and the synthetic Moons
   and the committed weights are built on it, so it is kept as it is.
4. Intimate mixture: ``w_mix = Σ f_j w_j`` with cross-section weights ``f_j ∝ M_j/(ρ_j D)``
   (Hapke 2012, eq. 10.2; same grain size for all phases).
5. Radiance factor at the standard geometry with :func:`workbench.photometry.hapke`.

The per-phase albedos are tabulated once on (Mg#, npFe) (glass: on (FeO, npFe)) and interpolated
bilinearly per pixel, which keeps a 4 px/deg globe of 118-channel spectra to seconds.

References
----------
Adams, J. B. (1974), Visible and near-infrared diffuse reflectance spectra of pyroxenes, JGR 79:4829.
Burns, R. G. (1993), Mineralogical Applications of Crystal Field Theory, 2nd ed., Cambridge.
Cloutis, E. A., Gaffey, M. J. (1991), Pyroxene spectroscopy revisited, JGR 96:22809.
Klima, R. L., Pieters, C. M., Dyar, M. D. (2007), Spectroscopy of synthetic Mg-Fe pyroxenes I,
Meteorit. Planet. Sci. 42:235.
Sunshine, J. M., Pieters, C. M. (1998), Determining the composition of olivine from reflectance
spectroscopy, JGR 103:13675.
Adams, J. B., Goullaud, L. H. (1978), Plagioclase feldspars: visible and near infrared diffuse
reflectance spectra as applied to remote sensing, Proc. LPSC 9:2901.
Hapke, B. (1993), Theory of Reflectance and Emittance Spectroscopy, 1st ed., Cambridge.
Hapke, B. (2001), Space weathering from Mercury to the asteroid belt, JGR 106:10039.
Hapke, B. (2012), Theory of Reflectance and Emittance Spectroscopy, 2nd ed., Cambridge.
Lucey, P. G. (1998), Model near-infrared optical constants of olivine and pyroxene as a function of
iron content, JGR 103:1703.
Lucey, P. G., Riner, M. A. (2011), The optical effects of small iron particles that darken but do not
redden: evidence of intense space weathering on Mercury, Icarus 212:451.
Johnson, P. B., Christy, R. W. (1974), Optical constants of transition metals, Phys. Rev. B 9:5056.
Ordal, M. A. et al. (1988), Optical properties of Al, Fe, Ti, Ta, W and Mo at submillimeter
wavelengths, Appl. Opt. 27:1203.
Riner, M. A. et al. (2009), Effects of lunar soil ilmenite on reflectance, Icarus 200 (and LPSC 40).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import xarray as xr
from scipy import sparse

from ..errors import InputError
from ..photometry import STANDARD_GEOMETRY, hapke
from .minerals import DENSITY, MINERALS, _oxides_of, check_mg_number

#: Default wavelength grid (nm): 260–2600 nm every 20 nm (118 channels). Covers the WAC UV bands
#: (321 nm, FWHM 32 nm, whose Gaussian response is negligible below ~270 nm) and both pyroxene bands.
WAVELENGTH_NM: np.ndarray = np.arange(260.0, 2601.0, 20.0)

#: Optical constants of metallic iron (n, k) vs wavelength (nm), coarse tabulation of
#: Johnson & Christy (1974) in the visible and Ordal et al. (1988) in the near infrared.
IRON_NK: tuple[tuple[float, ...], ...] = (
    (250.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 1000.0, 1250.0, 1500.0, 2000.0, 2600.0),
    (1.60, 1.75, 2.20, 2.87, 2.93, 2.90, 2.92, 3.05, 3.20, 3.40, 3.80, 4.40),
    (2.20, 2.35, 2.90, 3.05, 3.30, 3.45, 3.60, 4.00, 4.55, 5.20, 6.50, 8.00),
)

#: Every tunable parameter of the spectral model, with its source. Band centres are given for the
#: Mg end-member and the Fe end-member (nm) and interpolated linearly in Fs (= 1 − Mg#/100);
#: absorption amplitudes ``k`` are per 10 wt% FeO of the phase; widths ``sigma`` in µm⁻¹ (Gaussians
#: in wavenumber, as in the MGM of Sunshine et al. 1990).
#:
#: Calibration: the values marked [fit] were fitted by bounded least squares to the five-band
#: Clementine spectra of the 36 Apollo/Luna stations (Wilcox et al. 2005 compilation), each station
#: modelled as a highland/mare soil mixture with its measured FeO and TiO2 at maturity 0.85; residuals
#: in log R750 and in the four band ratios to R750. Marked [fit ×0.7]: the literature band shapes and
#: relative strengths kept, one common amplitude factor fitted. See
#: :func:`workbench.synth.bench.reality_check` for the resulting synthetic-vs-real comparison.
PARAMS: dict = {
    # grain optical path (µm): lunar soil median grain ~60-80 µm, the optically active fine fraction
    # (<45 µm) dominates (Pieters et al. 1993, JGR 98:20817). [fit]: an effective optical path.
    "grain_size_um": 6.2,
    # real refractive indices (Deer, Howie & Zussman 1992)
    "n": {"plagioclase": 1.57, "low_ca_pyroxene": 1.70, "high_ca_pyroxene": 1.70, "olivine": 1.72,
          "glass": 1.65},
    # Fe2+-O charge transfer edge (UV): k = a * FeO/10 * exp(-(λ-400)/scale); Burns (1993) ch. 4;
    # the fit drove it to ~0 (npFe dominates the UV–VIS slope of soils), so a weak edge is kept
    # (hand-set) for the WAC UV bands.
    "uv_k": 2e-4, "uv_scale_nm": 80.0,
    # continuum (k floor) of the silicates (Lucey 1998) [fit]
    "k0": 1.27e-3,
    # low-Ca pyroxene: Band I 900→930 nm, Band II 1800→2080 nm with Fs (Adams 1974; Klima et al. 2007)
    # [fit ×0.7] for all Fe2+ band amplitudes below
    "lcp_bands": [((900.0, 935.0), 0.075, 1.12e-3), ((1800.0, 2080.0), 0.055, 0.63e-3)],
    # high-Ca pyroxene: Band I 970→1060 nm, Band II 2150→2350 nm (Adams 1974; Cloutis & Gaffey 1991)
    "hcp_bands": [((970.0, 1060.0), 0.085, 0.91e-3), ((2150.0, 2350.0), 0.06, 0.49e-3)],
    # olivine composite band: M1 ~850, M2 ~1050, M1 ~1250 nm, shifting longwards with Fa
    # (Sunshine & Pieters 1998); amplitudes in their relative strengths 0.3:1:0.6.
    "ol_bands": [((845.0, 880.0), 0.07, 0.28e-3), ((1045.0, 1085.0), 0.09, 0.98e-3),
                 ((1210.0, 1310.0), 0.08, 0.6e-3)],
    # plagioclase Fe2+ band at 1250 nm (Adams & Goullaud 1978); per 10 wt% FeO (0.3 wt% in the phase)
    "plag_band": ((1250.0, 1250.0), 0.07, 1.5e-2),
    # agglutinitic / volcanic glass: broad Fe2+ bands near 1000 and 1900 nm (Bell et al. 1976,
    # Proc. LSC 7:2543) and a dark continuum (agglutinates are the darkest soil component,
    # Pieters et al. 1993); glass_k0 [fit].
    "glass_bands": [((1000.0, 1000.0), 0.14, 0.56e-3), ((1900.0, 1900.0), 0.10, 0.28e-3)],
    "glass_k0": 1.06e-3,
    # ilmenite: opaque, much brighter towards the UV (Riner et al. 2009); value at 750 nm and slope per
    # 100 nm towards shorter wavelengths [fit; the slope sits at its upper bound 0.05]. Not flat: the
    # line w = 0.041 + 0.05·(750 − λ)/100 gives 0.29 at 260 nm, 0.21 at 415 nm (5× the 750 nm value) and
    # would turn negative beyond 832 nm; single_scattering_albedo clips it to [0.02, 0.5], so it is the
    # constant floor 0.02 from ~792 nm to 2600 nm (the upper bound never binds above 200 nm).
    "ilmenite_w750": 0.041, "ilmenite_w_slope_per_100nm": 0.05,
    # npFe: host index and densities (soil 3.1, iron 7.87 g/cm^3)
    "npfe_host_n": 1.7, "rho_soil": 3.1, "rho_fe": 7.87,
    # Lunar soils carry both small (<~10 nm, reddening) and larger (Britt–Pieters, >~40 nm,
    # darkening but not reddening) iron particles (Lucey & Riner 2011). This fraction of the iron
    # abundance is taken as large particles, modelled as a grey absorber of coefficient
    # ``large_iron_alpha`` (µm⁻¹ per wt% Fe); both tuned against the Clementine stations.
    "large_iron_fraction": 0.19, "large_iron_alpha": 0.243,
}


def _check_wavelength(wavelength) -> np.ndarray:
    wl = np.asarray(wavelength, dtype=float)
    if wl.ndim != 1 or wl.size < 1 or not np.all(np.isfinite(wl)):
        raise InputError("wavelength must be a 1-D array of finite values in nm")
    if wl.min() < 200 or wl.max() > 3000:
        raise InputError(
            f"wavelength {wl.min():.0f}–{wl.max():.0f} outside the model's 200–3000 nm; give nm, not µm"
        )
    return wl


def _check_non_negative(value, name: str, what: str) -> None:
    """Refuse negative (finite) values of ``value``; NaN passes (NaN in, NaN out)."""
    if value is None:
        return
    v = np.asarray(value, dtype=float)
    with np.errstate(invalid="ignore"):
        neg = v < 0
    if np.any(neg):
        raise InputError(f"{name} must be >= 0 ({what}), got {float(np.min(v[neg])):.4g}")


def _band(wl_nm, centre_nm, sigma_inv_um):
    nu = 1000.0 / wl_nm
    nu0 = 1000.0 / centre_nm
    return np.exp(-0.5 * ((nu - nu0) / sigma_inv_um) ** 2)


def imaginary_index(mineral: str, wavelength, mg_number=70.0, feo_wt=None) -> np.ndarray:
    """Imaginary refractive index ``k(λ)`` of one silicate phase (not ilmenite).

    Parameters
    ----------
    mineral
        One of the silicates in :data:`~workbench.synth.minerals.MINERALS` (or ``"glass"``).
    wavelength
        Wavelengths (nm), shape ``(n,)``.
    mg_number
        Mg# of the mafic silicates (0–100), scalar or array of shape ``(m,)``: sets the FeO content of
        the phase and moves band centres.
    feo_wt
        FeO (wt%) of the glass (``mineral="glass"`` only).

    Returns
    -------
    numpy.ndarray
        ``k`` of shape ``(m, n)`` (``m = 1`` for scalars).
    """
    silicates = tuple(m for m in MINERALS if m != "ilmenite")
    if mineral not in silicates:
        raise InputError(f"imaginary_index has no optical constants for {mineral!r}; choose one of {silicates} "
                         "(ilmenite has no band model: single_scattering_albedo gives its albedo directly)")
    wl = _check_wavelength(wavelength)[None, :]
    check_mg_number(mg_number, "mg_number (Mg#)")
    _check_non_negative(feo_wt, "feo_wt", "FeO of the glass in wt%")
    p = PARAMS
    mg = np.atleast_1d(np.asarray(mg_number, dtype=float))[:, None]
    fs = 1.0 - mg / 100.0
    if mineral == "glass":
        feo = np.atleast_1d(np.asarray(15.0 if feo_wt is None else feo_wt, dtype=float))[:, None]
        bands = p["glass_bands"]
        k = p["glass_k0"] + 0.0 * wl * feo
    else:
        feo = _oxides_of(mineral, mg)["FeO"]
        bands = {"low_ca_pyroxene": p["lcp_bands"], "high_ca_pyroxene": p["hcp_bands"],
                 "olivine": p["ol_bands"], "plagioclase": [p["plag_band"]]}[mineral]
        k = p["k0"] + 0.0 * wl * feo
    scale = feo / 10.0
    k = k + p["uv_k"] * scale * np.exp(-(wl - 400.0) / p["uv_scale_nm"])
    for (c_mg, c_fe), sigma, amp in bands:
        centre = c_mg + (c_fe - c_mg) * fs
        k = k + amp * scale * _band(wl, centre, sigma)
    return k


def iron_optical_constants(wavelength) -> tuple[np.ndarray, np.ndarray]:
    """``(n, k)`` of metallic iron at ``wavelength`` (nm), interpolated from :data:`IRON_NK`."""
    wl = _check_wavelength(wavelength)
    lam, n, k = (np.asarray(v) for v in IRON_NK)
    return np.interp(wl, lam, n), np.interp(wl, lam, k)


def npfe_absorption(wavelength, npfe_wt) -> np.ndarray:
    """Absorption coefficient (µm⁻¹) added by nanophase iron, Hapke (2001) eq. 4 / Lucey & Riner (2011).

    The small-particle share (``1 - PARAMS["large_iron_fraction"]``) follows Hapke's expression; the
    large-particle share is a grey absorber (darkening without reddening, Lucey & Riner 2011).

    Parameters
    ----------
    wavelength
        nm, shape ``(n,)``.
    npfe_wt
        npFe⁰ abundance (wt% of the soil), scalar or shape ``(m,)``.

    Returns
    -------
    numpy.ndarray
        ``α_npFe`` of shape ``(m, n)`` in µm⁻¹.
    """
    wl = _check_wavelength(wavelength)
    _check_non_negative(npfe_wt, "npfe_wt", "nanophase iron abundance in wt% of the soil")
    n_fe, k_fe = iron_optical_constants(wl)
    nh = PARAMS["npfe_host_n"]
    z = nh**3 * n_fe * k_fe / ((n_fe**2 - k_fe**2 + 2 * nh**2) ** 2 + (2 * n_fe * k_fe) ** 2)
    fe = np.atleast_1d(np.asarray(npfe_wt, dtype=float))[:, None]
    small = 1.0 - PARAMS["large_iron_fraction"]
    phi = small * fe / 100.0 * (PARAMS["rho_soil"] / PARAMS["rho_fe"])
    grey = PARAMS["large_iron_fraction"] * fe * PARAMS["large_iron_alpha"]
    return 36.0 * np.pi * z[None, :] * phi / (wl[None, :] / 1000.0) + grey


def _slab_albedo(alpha_um, n):
    """Hapke (2012) equivalent-slab single-scattering albedo for absorption coefficient α (µm⁻¹)."""
    d = PARAMS["grain_size_um"]
    d_eff = 2.0 / 3.0 * (n**2 - (n**2 - 1.0) ** 1.5 / n) * d
    se = ((n - 1.0) ** 2) / ((n + 1.0) ** 2) + 0.05
    si = 1.0 - 4.0 / (n * (n + 1.0) ** 2)
    theta = np.exp(-alpha_um * d_eff)
    return se + (1.0 - se) * (1.0 - si) * theta / (1.0 - si * theta)


def single_scattering_albedo(mineral: str, wavelength, mg_number=70.0, npfe=0.0, feo_wt=None) -> np.ndarray:
    """Single-scattering albedo ``w(λ)`` of one phase; arrays broadcast as ``(m, n_wavelength)``.

    ``mg_number`` (0–100), ``npfe`` (wt%, >= 0) and ``feo_wt`` (wt%, >= 0) are scalars or 1-D arrays of
    equal length ``m``; values outside those ranges (or an Mg# given as a fraction) raise
    :class:`~workbench.errors.InputError`.
    """
    wl = _check_wavelength(wavelength)
    if mineral not in MINERALS:
        raise InputError(f"unknown mineral {mineral!r}; choose one of {list(MINERALS)}")
    check_mg_number(mg_number, "mg_number (Mg#)")
    _check_non_negative(npfe, "npfe", "nanophase iron abundance in wt% of the soil")
    _check_non_negative(feo_wt, "feo_wt", "FeO of the glass in wt%")
    sizes = {name: np.size(v) for name, v in (("mg_number", mg_number), ("npfe", npfe), ("feo_wt", feo_wt))
             if v is not None and np.size(v) != 1}
    if len(set(sizes.values())) > 1:
        raise InputError(f"mg_number, npfe and feo_wt must be scalars or 1-D arrays of one length, got lengths "
                         f"{sizes}; repeat the scalar ones or give arrays of equal length")
    m = max(sizes.values(), default=1)
    if mineral == "ilmenite":
        w = PARAMS["ilmenite_w750"] + PARAMS["ilmenite_w_slope_per_100nm"] * (750.0 - wl) / 100.0
        return np.broadcast_to(np.clip(w, 0.02, 0.5), (m, wl.size)).copy()
    k = imaginary_index(mineral, wl, mg_number, feo_wt)
    alpha = 4.0 * np.pi * k / (wl[None, :] / 1000.0) + npfe_absorption(wl, npfe)
    return _slab_albedo(alpha, PARAMS["n"][mineral])


#: Grids of the end-member tables.
_MG_GRID = np.linspace(0.0, 100.0, 51)
_FEO_GRID = np.linspace(0.0, 50.0, 51)  # glass FeO (wt%); no more nodes than _MG_GRID (tables share a shape)
_NPFE_GRID = np.linspace(0.0, 2.0, 81)


@lru_cache(maxsize=8)
def _tables(wl_key: tuple[float, ...]) -> np.ndarray:
    """w tables, shape (mineral, n_x, n_npfe, n_wl); x = Mg# (glass: FeO wt%)."""
    wl = np.asarray(wl_key)
    out = np.empty((len(MINERALS), _MG_GRID.size, _NPFE_GRID.size, wl.size), dtype="float32")
    mg2, np2 = np.meshgrid(_MG_GRID, _NPFE_GRID, indexing="ij")
    fe2, npg = np.meshgrid(_FEO_GRID, _NPFE_GRID, indexing="ij")
    for j, m in enumerate(MINERALS):
        if m == "glass":
            w = single_scattering_albedo(m, wl, 70.0 + 0 * fe2.ravel(), npg.ravel(), feo_wt=fe2.ravel())
            w = np.concatenate([w.reshape(_FEO_GRID.size, _NPFE_GRID.size, wl.size),
                                np.repeat(w.reshape(_FEO_GRID.size, _NPFE_GRID.size, wl.size)[-1:],
                                          _MG_GRID.size - _FEO_GRID.size, axis=0)], axis=0)
        else:
            w = single_scattering_albedo(m, wl, mg2.ravel(), np2.ravel()).reshape(
                _MG_GRID.size, _NPFE_GRID.size, wl.size)
        out[j] = w
    return out


@lru_cache(maxsize=8)
def _iof_lookup(geometry: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    wgrid = np.linspace(0.0, 1.0, 4001)
    return wgrid, np.asarray(hapke(wgrid, *geometry), dtype="float32")


def _interp_idx(v, grid):
    step = grid[1] - grid[0]
    f = np.clip((v - grid[0]) / step, 0.0, grid.size - 1.000001)
    i0 = np.floor(f).astype(np.int64)
    return i0, (f - i0).astype("float32")


#: Largest nanophase-iron abundance (wt%) of the optical tables; mature lunar soils hold < 1.
NPFE_MAX = float(_NPFE_GRID[-1])


def _check_kernel_inputs(mode: np.ndarray, mg: np.ndarray, npfe: np.ndarray) -> None:
    """Refuse values the optical tables would silently clamp (finite pixels; runs per dask block too)."""
    problems = []
    if np.any(mode < 0):
        problems.append(f"{int(np.sum(np.any(mode < 0, axis=1)))} pixel(s) with a negative mineral fraction "
                        f"(min {mode.min():.3g})")
    total = mode.sum(axis=1)
    if np.any(np.abs(total - 1.0) > 1e-3):
        problems.append(f"mineral fractions summing to {total.min():.4g}–{total.max():.4g} instead of 1 "
                        "(normalise them: mode / mode.sum('mineral'))")
    if np.any((mg < 0) | (mg > 100)):
        problems.append(f"Mg# outside 0–100 ({mg.min():.4g}–{mg.max():.4g}; molar 100·Mg/(Mg+Fe))")
    if np.any((npfe < 0) | (npfe > NPFE_MAX)):
        problems.append(f"nanophase iron outside 0–{NPFE_MAX:g} wt% ({npfe.min():.4g}–{npfe.max():.4g})")
    if problems:
        raise InputError("cannot compute soil spectra from " + "; ".join(problems)
                         + ". Nothing is clipped: fix those inputs")


def _reflectance_kernel(mode, mg, npfe, wl, geometry=STANDARD_GEOMETRY):
    """numpy kernel: mode (..., 6), mg (...), npfe (...) → I/F (..., n_wl). NaN in → NaN out.

    The three inputs broadcast against each other (NumPy rules on the leading dims)."""
    mode, mg, npfe = (np.asarray(x) for x in (mode, mg, npfe))
    shape = np.broadcast_shapes(mode.shape[:-1], mg.shape, npfe.shape)
    mode = np.broadcast_to(mode, shape + mode.shape[-1:]).reshape(-1, len(MINERALS)).astype("float64")
    mg = np.broadcast_to(mg, shape).reshape(-1).astype("float64")
    npfe = np.broadcast_to(npfe, shape).reshape(-1).astype("float64")
    bad = ~(np.isfinite(mg) & np.isfinite(npfe) & np.all(np.isfinite(mode), axis=1))
    _check_kernel_inputs(mode[~bad], mg[~bad], npfe[~bad])
    mg = np.where(bad, 50.0, mg)
    npfe = np.where(bad, 0.0, npfe)
    mode = np.where(bad[:, None], 1.0 / len(MINERALS), mode)
    tab = _tables(tuple(float(x) for x in wl))
    # FeO of the glass = bulk FeO of the crystalline fraction (melted local soil)
    xtal = [j for j, m in enumerate(MINERALS) if m != "glass"]
    feo_x = sum(mode[:, j] * _oxides_of(MINERALS[j], mg)["FeO"] for j in xtal)
    feo_glass = feo_x / np.maximum(mode[:, xtal].sum(axis=1), 1e-6)
    rich = ~bad & (mode[:, MINERALS.index("glass")] > 0) & (feo_glass > _FEO_GRID[-1])  # only where there is glass
    if np.any(rich):
        raise InputError(f"the glass of {int(np.sum(rich))} pixel(s) would hold more than "
                         f"{_FEO_GRID[-1]:g} wt% FeO (the melt of its iron-rich crystalline part), beyond the optical "
                         "tables; raise Mg# or lower the olivine/pyroxene fractions of those pixels")
    i_mg, f_mg = _interp_idx(mg, _MG_GRID)
    i_fe, f_fe = _interp_idx(feo_glass, _FEO_GRID)
    i_np, f_np = _interp_idx(npfe, _NPFE_GRID)
    dens = np.array([DENSITY[m] for m in MINERALS])
    xs = mode / dens[None, :]
    xs = xs / xs.sum(axis=1, keepdims=True)
    # bilinear interpolation of every phase's table and the cross-section-weighted sum, written as one
    # sparse (pixels × table rows) matrix with 24 non-zeros per row times the (rows × wavelength) table
    n_x, n_np = _MG_GRID.size, _NPFE_GRID.size
    cols, vals = [], []
    for j, m in enumerate(MINERALS):
        ix, fx = (i_fe, f_fe) if m == "glass" else (i_mg, f_mg)
        for dx, wx in ((0, 1 - fx), (1, fx)):
            for dn, wn in ((0, 1 - f_np), (1, f_np)):
                cols.append((j * n_x + ix + dx) * n_np + i_np + dn)
                vals.append(xs[:, j] * wx * wn)
    n = mg.size
    mat = sparse.csr_matrix(
        (np.stack(vals, axis=1).ravel().astype("float32"), np.stack(cols, axis=1).ravel(),
         np.arange(0, 24 * n + 1, 24)), shape=(n, tab.shape[0] * n_x * n_np))
    w = mat @ tab.reshape(-1, wl.size)
    wgrid, rgrid = _iof_lookup(tuple(float(g) for g in geometry))
    f = np.clip(w, 0.0, 1.0) * (wgrid.size - 1)
    i0 = np.minimum(f.astype(np.int32), wgrid.size - 2)
    r = (rgrid[i0] + (rgrid[i0 + 1] - rgrid[i0]) * (f - i0)).astype("float32")
    r[bad] = np.nan
    return r.reshape(*shape, wl.size)


def reflectance_from_modes(mode: xr.DataArray, mg_number: xr.DataArray, npfe: xr.DataArray,
                           wavelength=None, geometry=STANDARD_GEOMETRY) -> xr.DataArray:
    """Radiance factor spectra of lunar soils from mineral modes, Mg# and nanophase iron.

    Parameters
    ----------
    mode
        Weight fractions on a ``mineral`` dim (coords :data:`~workbench.synth.minerals.MINERALS`).
    mg_number
        Mg# (0–100) of the mafic silicates (``silicate_mg_number`` of a synthetic Moon): a DataArray
        (broadcast by dimension name against ``mode``'s other dims, so a 0-d one applies to every pixel)
        or a number.
    npfe
        Nanophase iron abundance (wt%, 0–:data:`NPFE_MAX`); mature mare soils ≈ 0.3–0.6, highlands
        ≈ 0.1–0.25. Same forms as ``mg_number``.
    wavelength
        nm; default :data:`WAVELENGTH_NM`.
    geometry
        (i, e, g) in degrees; default the standard (30, 0, 30).

    Returns
    -------
    xarray.DataArray
        I/F with the other dims first (those of ``mode``, ``mg_number`` and ``npfe`` together) and
        ``wavelength`` (nm) last; dask-backed (lazy) when the inputs are. NaN in any input gives NaN out.

    Raises
    ------
    InputError
        Negative or unnormalised modes, an Mg# outside 0–100 (or given as a fraction), npFe outside
        0–:data:`NPFE_MAX` wt%, a glass FeO beyond the optical tables (dask-backed inputs: when computed).
    """
    from .minerals import _check_modes

    _check_modes(mode)
    mg_number, npfe = (v if isinstance(v, xr.DataArray) else xr.DataArray(np.asarray(v, dtype=float))
                       for v in (mg_number, npfe))
    check_mg_number(mg_number, "Mg#")
    wl = _check_wavelength(WAVELENGTH_NM if wavelength is None else wavelength)
    mode = mode.sel(mineral=list(MINERALS))
    out = xr.apply_ufunc(
        _reflectance_kernel, mode, mg_number, npfe,
        input_core_dims=[["mineral"], [], []], output_core_dims=[["wavelength"]],
        kwargs={"wl": wl, "geometry": tuple(geometry)},
        dask="parallelized", output_dtypes=["float32"],
        dask_gufunc_kwargs={"output_sizes": {"wavelength": wl.size}},
    )
    out = out.assign_coords(wavelength=("wavelength", wl, {"units": "nm"}))
    out.name = "reflectance"
    out.attrs.update(units="1", long_name="radiance factor I/F at (i, e, g) = "
                     f"{tuple(geometry)} deg", model="Hapke SSA mixing (workbench.synth.spectra)")
    return out
