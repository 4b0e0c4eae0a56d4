"""The physics-based spectral library: same forward model as the Moon, broad compositions, no geography."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import InputError
from workbench.synth.library import spectral_library
from workbench.synth.minerals import OXIDES


def test_library_is_deterministic_and_physical():
    a = spectral_library((48, 64), cell=8, seed=3)
    b = spectral_library((48, 64), cell=8, seed=3)
    np.testing.assert_array_equal(a["FeO"].values, b["FeO"].values)
    assert not np.array_equal(a["FeO"].values, spectral_library((48, 64), cell=8, seed=4)["FeO"].values)
    np.testing.assert_allclose(a["mode"].sum("mineral").values, 1.0, atol=1e-5)
    total = sum(a[o] for o in OXIDES).values
    assert (total > 95).all() and (total <= 100.5).all()  # the six major oxides of lunar soils
    refl = a["reflectance"].compute()
    assert refl.dims == ("lat", "lon", "wavelength") and np.isfinite(refl.values).all()
    assert 0.02 < float(refl.min()) and float(refl.max()) < 0.6
    assert a.attrs["geography"] == "library" and a["FeO"].attrs["units"] == "wt%"


def test_library_spans_far_side_rock_types():
    """The prior reaches Mg-rich norite (Mg# > 75) and ferroan / high-Ti mare, which a near-side map lacks."""
    lib = spectral_library((120, 240), cell=8, seed=0)
    assert float(lib["mg_number"].quantile(0.99)) > 75
    assert float(lib["FeO"].quantile(0.99)) > 15 and float(lib["FeO"].quantile(0.01)) < 5
    assert float(lib["TiO2"].max()) > 5


def test_bad_library_shape():
    with pytest.raises(InputError, match="shape"):
        spectral_library((1, 10))


@pytest.mark.parametrize(("kw", "match"), [
    ({"cell": 2.5}, "cell a whole number"),  # was a TypeError deep in scipy
    ({"seed": 1.7}, "seed must be a whole number >= 0"),  # was silently seed 1
    ({"seed": -1}, "seed must be a whole number >= 0"),  # was a numpy ValueError
    ({"shape": (16.5, 24)}, "shape must be two whole numbers"),
])
def test_bad_library_options_are_one_input_error(kw, match):
    with pytest.raises(InputError, match=match):
        spectral_library(**{"shape": (16, 24), **kw})


def test_library_grid_is_already_in_the_training_layout():
    """The models put other layouts north-up before training; the library must not be flipped, or its patch
    draws (and the committed weights' recipe) would change."""
    from workbench.geo import north_up_flips
    from workbench.synth.library import spectral_library

    lib = spectral_library((16, 24), cell=8, seed=1)
    assert north_up_flips(lib) == {} and float(lib["lat"][-1]) == 0.0
