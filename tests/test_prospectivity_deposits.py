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
    from workbench.synth.deposits import deposit_records

    assert len(deposit_records(planted)) == 12


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


def test_planting_twice_keeps_the_first_set(moon, planted):
    from workbench.synth.deposits import deposit_records, plant_deposits

    again = plant_deposits(planted, n=5, seed=4, radius_px=(1, 4), reflectance=False)
    first = planted["deposit"].values
    assert first.any() and again["deposit"].values[first].all()  # the first set stays in the truth
    assert again["deposit"].sum() > planted["deposit"].sum()
    np.testing.assert_array_equal(again["deposit_strength"].values,
                                  np.maximum(planted["deposit_strength"].values,
                                             plant_deposits(moon, n=5, seed=4, radius_px=(1, 4),
                                                            reflectance=False)["deposit_strength"].values))
    assert deposit_records(again)[:12] == deposit_records(planted) and len(deposit_records(again)) == 17
    assert again.attrs["deposit_seeds"] == [3, 4] and again.attrs["deposit_seed"] == 4
    assert "deposit_seeds" not in planted.attrs  # a single plant is as before


@pytest.mark.parametrize(("kw", "match"), [
    ({"maturity_factor": (-1.0, -0.5)}, "maturity_factor must be a"),
    ({"maturity_factor": (0.5, 1.5)}, "maturity_factor must be a"),
    ({"ilmenite_target": (0.3, 0.1)}, "ilmenite_target must be a .*low <= high"),
    ({"glass_added": (-0.5, -0.4)}, "glass_added must be a"),
    ({"ilmenite_target": (0.6, 0.7), "glass_added": (0.5, 0.6)}, "must stay below 1"),
    ({"radius_px": (5, 1)}, "radius_px"),
])
def test_plant_deposits_refuses_bad_ranges(moon, kw, match):
    from workbench.synth.deposits import plant_deposits

    with pytest.raises(InputError, match=match):
        plant_deposits(moon, n=3, reflectance=False, **kw)


def test_planted_moon_writes_to_netcdf_and_keeps_its_records(moon, planted, tmp_path):
    """attrs["deposits"] was a list of dicts, which to_netcdf refuses; it is a JSON string now."""
    import xarray as xr

    from workbench.synth.deposits import deposit_records, plant_deposits

    path = tmp_path / "planted.nc"
    planted[["deposit", "deposit_strength", "TiO2"]].to_netcdf(path)
    back = xr.load_dataset(path)
    assert deposit_records(back) == deposit_records(planted)
    assert set(deposit_records(back)[0]) == {"lat", "lon", "radius_px", "ilmenite_target", "glass_added",
                                             "maturity_factor"}
    # a Moon planted by an older version (a list of dicts) is read and planted into as before
    old = planted.assign_attrs(deposits=deposit_records(planted))
    assert deposit_records(old) == deposit_records(planted)
    again = plant_deposits(old, n=2, seed=5, radius_px=(1, 2), reflectance=False)
    assert len(deposit_records(again)) == 14
    with pytest.raises(InputError, match="JSON list"):
        deposit_records(moon.assign_attrs(deposits="not json"))
