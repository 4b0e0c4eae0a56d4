"""The synthetic Moon's designed asymmetries are recovered within the module's intervals (slow: builds it)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.analysis import asymmetry as A
from workbench.analysis import spa

pytestmark = pytest.mark.slow

#: SPA ellipse of the synthetic Moon (workbench.synth.moon.SPA): semi-axes (km) N-S and E-W.
_A_KM, _B_KM = 1200.0, 1025.0


@pytest.fixture(scope="module")
def moon():
    import workbench as wb

    return wb.synth.make_moon(seed=0, resolution_ppd=1, cache=False).drop_vars("reflectance")


def test_far_side_highland_mg_number_is_higher(moon):
    hl = A.terrane_masks(moon["terrane"])["feldspathic_highlands"]
    m = A.hemisphere_masks(moon)
    c = A.compare_regions(moon["mg_number"], m["far"] & hl, m["near"] & hl, n_boot=300, n_perm=499)
    assert c["ci95"][0] > 0 and c["p_value"] < 0.01 and c["cles"] > 0.5
    fr = A.fraction_above(moon["mg_number"], 65.0, within=hl, n_boot=200)
    assert float(fr["fraction_ci_low"].sel(region="far")) > float(fr["fraction_ci_high"].sel(region="near"))


def test_spa_interior_feo_is_8_to_12_wt_percent(moon):
    spa_core = A.terrane_masks(moon["terrane"])["south_pole_aitken"]
    st = A.region_statistics(moon["FeO"], {"spa": spa_core}, n_boot=300)
    assert 8.0 <= float(st["mean_ci_low"][0]) and float(st["mean_ci_high"][0]) <= 12.0


def test_spa_ring_and_fe_boundary_radii_cover_the_planted_ellipse(moon):
    res = spa.spa_boundaries(moon, variables={"FeO": 1, "mg_number": 2}, n_boot=30)
    # planted: FeO/core blend centred at 0.575 of the elliptical radius, ring edges at 0.58 and 0.95
    mid = 0.5 * (_A_KM + _B_KM)
    fe = res["FeO"]["sectors"]
    assert float(fe["radius_ci_low"][0]) <= 0.575 * mid <= float(fe["radius_ci_high"][0])
    ring = res["mg_number"]["sectors"]
    for k, frac in enumerate((0.58, 0.95)):
        assert float(ring["radius_ci_low"][k]) <= frac * mid <= float(ring["radius_ci_high"][k])
    levels = res["mg_number"]["change_points"]
    assert float(levels["level_after"][0]) > float(levels["level_before"][0])  # Mg# rises into the ring
    assert np.all(np.isfinite(ring["radius_km"].values))
