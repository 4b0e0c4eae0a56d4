"""Planted deposits on a small synthetic Moon: consistent stoichiometry, real but not trivial signal."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import InputError


@pytest.fixture(scope="module")
def moon():
    from workbench.synth import make_moon

    return make_moon(seed=0, resolution_ppd=1, geography="procedural", cache=False).drop_vars("reflectance")


@pytest.fixture(scope="module")
def planted(moon):
    from workbench.synth.deposits import plant_deposits

    return plant_deposits(moon, n=12, seed=3, radius_px=(1, 4), reflectance=False)


def test_deposits_are_stoichiometric(planted):
    from workbench.synth.minerals import oxides_from_modes

    dep = planted["deposit"].values
    assert dep.any() and dep.mean() < 0.05
    np.testing.assert_allclose(planted["mode"].sum("mineral").values, 1.0, atol=1e-5)
    ox = oxides_from_modes(planted["mode"], planted["silicate_mg_number"])
    for name in ("TiO2", "FeO", "MgO"):
        np.testing.assert_allclose(planted[name].values, ox[name].values, rtol=1e-4)
    assert len(planted.attrs["deposits"]) == 12


def test_deposits_raise_ilmenite_and_lower_maturity(moon, planted):
    dep = planted["deposit"].values
    ilm_new = planted["mode"].sel(mineral="ilmenite").values[dep]
    ilm_old = moon["mode"].sel(mineral="ilmenite").values[dep]
    assert (ilm_new > ilm_old).all()
    assert (planted["maturity"].values[dep] < moon["maturity"].values[dep]).all()
    # outside the patches nothing changes
    far = planted["deposit_strength"].values == 0.0
    np.testing.assert_allclose(planted["TiO2"].values[far], moon["TiO2"].values[far], rtol=1e-5)


def test_deposit_tio2_overlaps_high_ti_mare(planted):
    dep = planted["deposit"].values
    mare = planted["mare"].values & ~dep
    # not separable by TiO2 alone: some mare ground is richer than the median deposit
    assert np.percentile(planted["TiO2"].values[mare], 99) > np.median(planted["TiO2"].values[dep])


def test_plant_deposits_is_seeded_and_checks_input(moon):
    from workbench.synth.deposits import plant_deposits

    a = plant_deposits(moon, n=5, seed=1, reflectance=False)
    b = plant_deposits(moon, n=5, seed=1, reflectance=False)
    assert (a["deposit"].values == b["deposit"].values).all()
    with pytest.raises(InputError, match="make_moon"):
        plant_deposits(moon.drop_vars("mode"), n=3)
    with pytest.raises(InputError, match="radius_px"):
        plant_deposits(moon, n=3, radius_px=(5, 1))
