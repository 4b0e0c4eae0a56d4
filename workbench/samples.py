"""Returned-sample sites (Apollo, Luna, Chang'e) and their soil chemistry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .catalog import open_table

OXIDES = ["SiO2", "TiO2", "Al2O3", "FeO", "MgO", "CaO"]
#: Molar masses (g/mol) used for Mg#.
MOLAR_MASS = {"MgO": 40.304, "FeO": 71.844}


def mg_number(mgo, feo):
    """Mg# = 100 · molar MgO / (MgO + FeO), with MgO and FeO in wt%. NaN where either is missing."""
    mg = np.asarray(mgo, dtype=float) / MOLAR_MASS["MgO"]
    fe = np.asarray(feo, dtype=float) / MOLAR_MASS["FeO"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * mg / (mg + fe)


def sample_sites() -> pd.DataFrame:
    """The returned-sample landing sites with soil oxides (wt%) and a citation on every row.

    Columns: ``site, mission_type, lat, lon (-180..180), SiO2, TiO2, Al2O3, FeO, MgO, CaO, mg_number,
    far_side, citation, coord_citation``. Unknown values are NaN; ``mg_number`` is computed from MgO and
    FeO where both are known and no published value is given.
    """
    df = open_table("sample_sites").copy()
    computed = mg_number(df["MgO"], df["FeO"])
    df["mg_number"] = df["mg_number"].where(df["mg_number"].notna(), np.round(computed, 1))
    df["far_side"] = df["lon"].abs() > 90.0
    return df
