"""Mineral modes → oxide weight percentages by stoichiometry.

The synthetic Moon describes every pixel by the weight fractions of six phases (``MINERALS``) and the
Mg# of its mafic silicates. The six major oxides follow from the ideal (lunar-typical) formula of each
phase, so FeO, MgO, TiO2, Al2O3, CaO and SiO2 are mutually consistent and sum close to 100 wt%
(the remainder is Na2O of plagioclase).

Phase formulas (per formula unit; ``x`` = Mg/(Mg+Fe) of the mafic silicates = Mg#/100)
------------------------------------------------------------------------------------
* plagioclase: An95 (0.95 CaAl2Si2O8 + 0.05 NaAlSi3O8) with 0.3 wt% FeO (lunar plagioclase carries
  0.1–0.5 wt% FeO; Papike et al. 1998, Rev. Mineral. 36, ch. 5).
* low-Ca pyroxene: Wo5 orthopyroxene/pigeonite Ca0.1(Mg_x Fe_1-x)1.9 Si2 O6.
* high-Ca pyroxene: Wo40 augite Ca0.8(Mg_x Fe_1-x)1.15 Al0.1 Si1.95 O6 (lunar augites carry a few wt%
  Al2O3; Papike et al. 1998).
* olivine: (Mg_x Fe_1-x)2 SiO4 (same Mg# as the pyroxenes; Fe–Mg partitioning neglected).
* ilmenite: (Fe0.92 Mg0.08)TiO3 (lunar ilmenites carry 1–6 wt% MgO; Papike et al. 1998).
* glass: agglutinitic glass, i.e. melted local soil; its composition is the mass-weighted mean of the
  crystalline phases, so it dilutes no oxide (McKay et al. 1991, Lunar Sourcebook ch. 7).

References
----------
Papike, J. J., Ryder, G., Shearer, C. K. (1998), Lunar samples, Rev. Mineral. 36, 5-1–5-234.
McKay, D. S. et al. (1991), The lunar regolith, in Lunar Sourcebook, Cambridge Univ. Press, 285–356.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

#: Phase names, in the order of the ``mineral`` coordinate.
MINERALS: tuple[str, ...] = (
    "plagioclase",
    "low_ca_pyroxene",
    "high_ca_pyroxene",
    "olivine",
    "ilmenite",
    "glass",
)
#: Oxides reported by :func:`oxides_from_modes`.
OXIDES: tuple[str, ...] = ("FeO", "TiO2", "Al2O3", "MgO", "CaO", "SiO2")
#: Molar masses (g/mol).
MOLAR_MASS: dict[str, float] = {
    "SiO2": 60.084, "TiO2": 79.866, "Al2O3": 101.961, "FeO": 71.844, "MgO": 40.304, "CaO": 56.077,
    "Na2O": 61.979,
}
#: Grain densities (g/cm^3) used to turn weight fractions into the cross-section weights of the
#: spectral mixing model (Deer, Howie & Zussman 1992, typical lunar compositions).
DENSITY: dict[str, float] = {
    "plagioclase": 2.73, "low_ca_pyroxene": 3.4, "high_ca_pyroxene": 3.35, "olivine": 3.5,
    "ilmenite": 4.72, "glass": 3.0,
}


def _formula_moles(mineral: str, x):
    """Moles of each oxide per formula unit of ``mineral`` for Mg fraction ``x`` (array-like)."""
    z = 0.0 * x
    if mineral == "plagioclase":
        an = 0.95
        return {"CaO": an + z, "Na2O": (1 - an) / 2 + z, "Al2O3": an + (1 - an) / 2 + z,
                "SiO2": 2 * an + 3 * (1 - an) + z}
    if mineral == "low_ca_pyroxene":
        return {"CaO": 0.1 + z, "MgO": 1.9 * x, "FeO": 1.9 * (1 - x), "SiO2": 2.0 + z}
    if mineral == "high_ca_pyroxene":
        return {"CaO": 0.8 + z, "MgO": 1.15 * x, "FeO": 1.15 * (1 - x), "Al2O3": 0.05 + z,
                "SiO2": 1.95 + z}
    if mineral == "olivine":
        return {"MgO": 2 * x, "FeO": 2 * (1 - x), "SiO2": 1.0 + z}
    if mineral == "ilmenite":
        return {"FeO": 0.92 + z, "MgO": 0.08 + z, "TiO2": 1.0 + z}
    raise KeyError(mineral)


def check_mg_number(mg_number, name: str = "Mg#") -> None:
    """Refuse an Mg# outside 0–100, or one given as a fraction (every value in (0, 1]); NaN passes.

    Dask-backed values are not computed here (the spectral kernel checks each block it computes).

    Raises
    ------
    InputError
        Naming the range found and the fix.
    """
    data = getattr(mg_number, "data", mg_number)
    if type(data).__module__.startswith("dask"):
        return
    try:
        v = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers (molar 100·Mg/(Mg+Fe) of the mafic silicates, 0–100)") from None
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    shown = f"{lo:.4g}" if lo == hi else f"{lo:.4g}–{hi:.4g}"
    if lo < 0 or hi > 100:
        raise InputError(f"{name} outside 0–100 ({shown}): Mg# is the molar 100·Mg/(Mg+Fe) of the "
                         "mafic silicates; give values in 0–100")
    if 0 < hi <= 1:
        raise InputError(f"{name} {shown} looks like a fraction: Mg# is the molar 100·Mg/(Mg+Fe) "
                         "of the mafic silicates, in 0–100; multiply it by 100")


def mineral_oxides(mineral: str, mg_number) -> dict[str, np.ndarray]:
    """Oxide weight percentages of one crystalline phase at the given Mg# (0–100).

    Raises
    ------
    InputError
        An Mg# outside 0–100 or given as a fraction (:func:`check_mg_number`).

    Examples
    --------
    >>> ox = mineral_oxides("olivine", 100.0)  # forsterite Mg2SiO4
    >>> round(float(ox["MgO"]), 1), round(float(ox["SiO2"]), 1)
    (57.3, 42.7)
    """
    mg = np.asarray(mg_number, dtype=float)
    check_mg_number(mg)
    return _oxides_of(mineral, mg)


def _check_modes(mode: xr.DataArray) -> None:
    if "mineral" not in mode.dims:
        raise InputError("mode needs a 'mineral' dimension with coords " + ", ".join(MINERALS))
    missing = [m for m in MINERALS if m not in list(mode["mineral"].values)]
    if missing:
        raise InputError(f"mode lacks minerals {missing}; provide all of {list(MINERALS)}")
    if isinstance(mode.data, np.ndarray) and mode.size:  # dask-backed modes are checked where computed
        v = mode.data  # no copies: a 16 px/deg Moon's modes are 400 MB
        lowest = np.nanmin(v) if not np.isnan(v).all() else 0.0
        if lowest < 0:
            raise InputError(f"mode has negative mineral fractions (min {lowest:.3g}); fractions are >= 0")
        total = v.sum(axis=mode.get_axis_num("mineral"))  # NaN where a fraction is missing: not judged
        with np.errstate(invalid="ignore"):
            off = np.abs(total - 1.0) > 1e-3
        if np.any(off):
            raise InputError(f"mineral fractions sum to {np.nanmin(total[off]):.4g}–{np.nanmax(total[off]):.4g} "
                             "instead of 1 per pixel; normalise them: mode / mode.sum('mineral')")


def oxides_from_modes(mode: xr.DataArray, mg_number: xr.DataArray) -> xr.Dataset:
    """Bulk oxide weight percentages from mineral weight fractions by stoichiometry.

    Parameters
    ----------
    mode
        Weight fractions on a ``mineral`` dim (coords :data:`MINERALS`), summing to 1 per pixel.
    mg_number
        Mg# (molar 100·Mg/(Mg+Fe)) of the **mafic silicates** (pyroxenes, olivine), 0–100. In a
        :func:`~workbench.synth.moon.make_moon` dataset this is ``silicate_mg_number``.

    Returns
    -------
    xarray.Dataset
        ``FeO, TiO2, Al2O3, MgO, CaO, SiO2`` (wt%), plus ``mg_number``: the bulk molar
        100·MgO/(MgO+FeO) of the result. Works lazily on dask-backed inputs.

    Raises
    ------
    InputError
        If a pixel is entirely glass: glass is modelled as melted local soil (the composition of
        the crystalline part), so a pure-glass pixel has no defined composition. Dask-backed
        input is not computed for this check; such pixels come out as NaN there. Also an Mg# outside
        0–100 or given as a fraction (:func:`check_mg_number`; not computed for dask-backed input).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> m = xr.DataArray(np.eye(6)[0], dims="mineral", coords={"mineral": list(MINERALS)})
    >>> ox = oxides_from_modes(m, xr.DataArray(70.0))
    >>> round(float(ox["Al2O3"]), 1), round(float(ox["CaO"]), 1)
    (35.7, 19.1)
    """
    _check_modes(mode)
    mg = mg_number
    check_mg_number(mg, "mg_number (Mg#)")
    crystalline = [m for m in MINERALS if m != "glass"]
    frac_xtal = sum(mode.sel(mineral=m) for m in crystalline)
    if isinstance(frac_xtal.data, np.ndarray):
        n_glass = int(np.count_nonzero(frac_xtal.data <= 0))
        if n_glass:
            raise InputError(
                f"{n_glass} pixel(s) are 100 % glass: glass takes the composition of the crystalline "
                "minerals around it, so a pure-glass pixel has none; give each pixel some crystalline "
                "fraction (or mask those pixels)")
    out = {}
    for ox in OXIDES:
        acc = 0.0
        for m in crystalline:
            comp = _oxides_of(m, mg)
            if ox in comp:
                acc = acc + mode.sel(mineral=m, drop=True) * comp[ox]
        # glass = melted local soil: same composition as the crystalline part
        val = acc / frac_xtal.drop_vars("mineral", errors="ignore")
        out[ox] = val.astype("float32").assign_attrs(units="wt%", long_name=f"{ox} abundance")
    ds = xr.Dataset(out)
    mgo = ds["MgO"] / MOLAR_MASS["MgO"]
    feo = ds["FeO"] / MOLAR_MASS["FeO"]
    ds["mg_number"] = (100.0 * mgo / (mgo + feo)).astype("float32").assign_attrs(
        units="1", long_name="bulk Mg# (molar 100·MgO/(MgO+FeO))")
    return ds


def mineral_oxides_xr(mineral: str, mg_number):
    """:func:`mineral_oxides` that keeps xarray/dask inputs lazy (formula arithmetic only).

    In-memory Mg# is checked as by :func:`check_mg_number`; dask-backed Mg# is not computed for that."""
    check_mg_number(mg_number)
    return _oxides_of(mineral, mg_number)


def _oxides_of(mineral: str, mg_number):
    """The formula arithmetic of :func:`mineral_oxides_xr`, unchecked (callers have checked Mg#)."""
    x = mg_number / 100.0
    moles = _formula_moles(mineral, x)
    mass = {k: v * MOLAR_MASS[k] for k, v in moles.items()}
    total = sum(mass.values())
    out = {k: 100.0 * v / total for k, v in mass.items()}
    if mineral == "plagioclase":
        out = {k: v * (1 - 0.003) for k, v in out.items()}
        out["FeO"] = 0.3 + 0.0 * x
    return out
