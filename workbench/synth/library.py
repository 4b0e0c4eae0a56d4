"""A physics-based spectral library: the synthetic Moon's spectral physics without its geography.

Pre-training an inversion network on a map of one Moon teaches it that Moon's compositions and
nothing else: trained on the near side, it extrapolates badly to far-side rock (Mg-rich norites of the
South Pole–Aitken annulus, the far side's higher-Mg# highlands). :func:`spectral_library` instead draws
compositions from a broad petrological prior and renders them with the same forward model as
:func:`~workbench.synth.make_moon` (:func:`~workbench.synth.minerals.oxides_from_modes`,
:func:`~workbench.synth.spectra.reflectance_from_modes`), laid out as smooth patches on a small
pseudo-map so that a network with spatial context trains on it exactly as on a Moon.

The prior knows rock types, not places: the mineral modes are random mixtures (Dirichlet weights,
concentration 0.2, so most draws lie near one rock type) of the five lunar end-members of
:data:`~workbench.synth.moon.TERRANE_MODES` (feldspathic highland, mare basalt with TiO2 log-uniform
in 0.5–14 wt%, KREEP norite, SPA noritic interior, Mg-pyroxene norite), every mineral perturbed by a
log-normal factor (σ = 0.35); the mafic silicate Mg# is uniform in 30–88 independently of the modes;
optical maturity is ``1 − 0.95·B`` with ``B ~ Beta(1, 4)`` (mostly mature soils, some fresh). No map,
location or far-side truth enters.

References
----------
Lucey, P. G. (2004), Mineral maps of the Moon, GRL 31:L08701 (radiative-transfer spectra of random
mineral mixtures as a basis for inversion).
Jolliff, B. L. et al. (2000), Major lunar crustal terranes, JGR 105:4197–4216 (the end-member rock types).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from ..errors import InputError
from ..validate import is_whole_number
from .minerals import MINERALS, oxides_from_modes

ILMENITE_TIO2_WT = 53.5  # wt% TiO2 in ilmenite


def _prior_cells(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random compositions: modes (n, 6), silicate Mg# (n,), maturity (n,)."""
    from .moon import TERRANE_MODES

    ends = np.array([m for m, _ in TERRANE_MODES.values()], dtype=np.float64)  # (5, 6)
    names = list(TERRANE_MODES)
    ends = np.repeat(ends[None], n, axis=0)
    k_mare = names.index("mare")
    tio2 = np.exp(rng.uniform(np.log(0.5), np.log(14.0), n))
    ends[:, k_mare, MINERALS.index("ilmenite")] = tio2 / ILMENITE_TIO2_WT * 0.85
    ends /= ends.sum(axis=2, keepdims=True)
    w = rng.dirichlet(np.full(len(names), 0.2), size=n)  # (n, 5)
    modes = np.einsum("nk,nkm->nm", w, ends)
    modes *= np.exp(0.35 * rng.standard_normal(modes.shape))
    modes /= modes.sum(axis=1, keepdims=True)
    mg = rng.uniform(30.0, 88.0, n)
    maturity = 1.0 - 0.95 * rng.beta(1.0, 4.0, n)
    return modes, mg, maturity


def spectral_library(shape: tuple[int, int] = (360, 720), cell: int = 8, seed: int = 100) -> xr.Dataset:
    """Physics-based training spectra as a pseudo-map of smooth composition patches.

    Parameters
    ----------
    shape
        ``(rows, cols)`` of the pseudo-map (whole numbers of pixels, at least 2 each); 360 × 720 holds
        about 4 000 independent compositions.
    cell
        Pixels between independent compositions (a whole number >= 1); values are interpolated bilinearly
        in between, so the map also holds their mixtures and the 3×3 context of a network sees smooth
        ground.
    seed
        Random seed, a whole number >= 0.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`~workbench.synth.make_moon` that inversion needs — ``mode``, the six
        oxides (wt%), ``mg_number``, ``silicate_mg_number``, ``maturity``, ``npfe`` and lazy
        ``reflectance`` (lat, lon, wavelength) — on a pseudo lat/lon grid (0.25° pixels, latitude
        descending to 0° in the last row as on every grid here, longitude from 0°; not a place on the
        Moon: ``attrs["geography"] == "library"``).

    Raises
    ------
    InputError
        A shape, cell or seed that is not a whole number in its range.

    Examples
    --------
    >>> lib = spectral_library((16, 24), cell=8, seed=1)
    >>> lib["FeO"].shape, lib.attrs["geography"]
    ((16, 24), 'library')
    """
    if (not isinstance(shape, tuple | list) or len(shape) != 2 or not all(is_whole_number(v) for v in shape)
            or not is_whole_number(cell)):
        raise InputError(f"library shape must be two whole numbers of pixels and cell a whole number of pixels, "
                         f"got shape {shape!r}, cell {cell!r}")
    ny, nx = (int(v) for v in shape)
    if ny < 2 or nx < 2 or int(cell) < 1:
        raise InputError(f"library shape must be at least 2 x 2 pixels and cell >= 1, got {shape}, {cell}")
    if isinstance(seed, bool) or not (is_whole_number(seed) or (isinstance(seed, float) and seed.is_integer())) \
            or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    from .moon import NPFE_PER_FEO, _with_reflectance

    rng = np.random.default_rng([int(seed), 2004])
    gy, gx = ny // cell + 2, nx // cell + 2
    modes, mg, maturity = _prior_cells(gy * gx, rng)
    yy = np.arange(ny) / cell
    xx = np.arange(nx) / cell
    grid = np.meshgrid(yy, xx, indexing="ij")

    def spread(v):
        return ndimage.map_coordinates(v.reshape(gy, gx), grid, order=1, mode="nearest")

    mode_px = np.stack([spread(modes[:, k]) for k in range(len(MINERALS))])
    mode_px /= mode_px.sum(axis=0, keepdims=True)
    lat = 0.25 * np.arange(ny, dtype=np.float64)[::-1]  # row 0 first, descending as on every grid here
    lon = 0.25 * np.arange(nx, dtype=np.float64)
    coords = {"lat": lat, "lon": lon}
    mode = xr.DataArray(mode_px.astype("float32"), dims=("mineral", "lat", "lon"),
                        coords={"mineral": list(MINERALS), **coords},
                        attrs={"units": "1", "long_name": "mineral weight fraction"})
    silicate_mg = xr.DataArray(spread(mg).astype("float32"), dims=("lat", "lon"), coords=coords,
                               attrs={"units": "1", "long_name": "Mg# of the mafic silicates"})
    mat = xr.DataArray(np.clip(spread(maturity), 0.05, 1.0).astype("float32"), dims=("lat", "lon"),
                       coords=coords, attrs={"units": "1", "long_name": "optical maturity (1 = fully mature)"})
    ox = oxides_from_modes(mode, silicate_mg)
    ds = xr.Dataset(coords={**coords, "mineral": list(MINERALS)})
    ds["mode"] = mode
    for name in ("FeO", "TiO2", "Al2O3", "MgO", "CaO", "SiO2", "mg_number"):
        ds[name] = ox[name]
    ds["silicate_mg_number"] = silicate_mg
    ds["maturity"] = mat
    ds["npfe"] = (NPFE_PER_FEO * ox["FeO"] * mat).astype("float32").assign_attrs(
        units="wt%", long_name="nanophase metallic iron (npFe0)")
    ds.attrs.update(geography="library", seed=int(seed), cell=int(cell),
                    title="Lunar Workbench physics-based spectral library")
    return _with_reflectance(ds)
