"""Tests of the procedural terrain (workbench.synth.terrain)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import InputError
from workbench.synth.terrain import (
    FRESH_DEPTH_RATIO,
    FRESH_RIM_RATIO,
    SFD_SLOPE_HEAD2010_GE20KM,
    SFD_SLOPE_LROC_5_20KM,
    crater_profile,
    fit_catalogue_slopes,
    fit_sfd_slope,
    fractal_surface,
    make_terrain,
)


def test_deterministic_per_seed_and_metadata():
    a = make_terrain((64, 80), 5.0, seed=3)
    b = make_terrain((64, 80), 5.0, seed=3)
    c = make_terrain((64, 80), 5.0, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    assert a.dims == ("y", "x") and a.shape == (64, 80)
    assert a.attrs["units"] == "m" and a.attrs["pixel_size"] == 5.0
    assert a["y"].values[0] > a["y"].values[-1]  # row 0 north
    assert np.all(np.isfinite(a.values))


def test_fresh_crater_profile_pike1977():
    r = np.linspace(0, 3, 3001)
    p = crater_profile(r)
    assert np.isclose(p.max() - p.min(), FRESH_DEPTH_RATIO, atol=1e-3)  # rim crest to floor = 0.2 D
    assert np.isclose(p[np.argmin(np.abs(r - 1))], FRESH_RIM_RATIO, atol=1e-3)
    assert p[-1] == 0.0


def test_single_fresh_crater_depth_diameter():
    assert np.allclose(make_terrain(128, 2.0, seed=0, saturation=0.0, roughness_m=0.0).values, 0.0)
    # one fresh crater of D = 40-40.4 m (20 px) placed by make_terrain itself, wholly inside the tile
    z = make_terrain(128, 2.0, seed=2, saturation=1.0, roughness_m=0.0, max_craters=1, degraded_fraction=0.0,
                     min_crater_px=20, max_crater_fraction=0.05)
    assert z.attrs["n_craters"] == 1
    v = z.values
    floor, rim = np.unravel_index(np.argmin(v), v.shape), np.unravel_index(np.argmax(v), v.shape)
    assert 10 <= min(*floor, 127 - floor[0], 127 - floor[1])  # rim (10 px from the centre) inside
    assert (v.max() - v.min()) / 40.0 == pytest.approx(FRESH_DEPTH_RATIO, abs=0.005)  # Pike 1977 d/D = 0.2
    assert np.hypot(rim[0] - floor[0], rim[1] - floor[1]) == pytest.approx(10.0, abs=1.0)  # rim crest at r = D/2


def test_sfd_slope_fit_recovers_known_slope():
    rng = np.random.default_rng(1)
    b = 1.7
    d = 5.0 * (1 - rng.random(20000)) ** (-1 / b)
    assert abs(fit_sfd_slope(d, 5.0) - b) < 0.05
    dt = d[d < 20.0]
    assert abs(fit_sfd_slope(dt, 5.0, 20.0) - b) < 0.08


@pytest.mark.parametrize("slope", [1.2, 2.0])
def test_crater_sizes_follow_requested_slope(monkeypatch, slope):
    from workbench.synth import terrain

    drawn = []
    real = terrain._crater_population
    monkeypatch.setattr(terrain, "_crater_population", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    z = make_terrain(256, 1.0, seed=0, sfd_slope=slope, saturation=0.5, roughness_m=0.0, max_crater_fraction=0.3)
    diam = drawn[0][0]
    assert z.attrs["n_craters"] == diam.size > 300
    assert fit_sfd_slope(diam, 4.0, 0.3 * 256) == pytest.approx(slope, abs=0.15)


def test_fractal_surface_rms_and_spectrum():
    rng = np.random.default_rng(0)
    f = fractal_surface((256, 256), 17.0, rng, hurst=0.8, rms_at_17m=1.5)
    dev = np.sqrt(0.5 * (np.mean(np.diff(f, axis=0) ** 2) + np.mean(np.diff(f, axis=1) ** 2)))
    assert np.isclose(dev, 1.5, rtol=1e-6)
    dev4 = np.sqrt(np.mean((f[:, 4:] - f[:, :-4]) ** 2))
    assert 4**0.6 < dev4 / dev < 4**1.0  # self-affine growth ~ lag^H


def test_bad_terrain_input():
    with pytest.raises(InputError):
        make_terrain(4, 1.0)
    with pytest.raises(InputError):
        make_terrain(32, -1.0)


@pytest.mark.parametrize(("kw", "match"), [
    ({"saturation": -1.0}, r"saturation must lie in \[0, 1\]"),  # was a numpy ValueError (lam < 0)
    ({"min_crater_px": 0.0}, r"min_crater_px must lie in \(0, inf\)"),  # was ZeroDivisionError
    ({"seed": None}, "seed must be a whole number >= 0"),  # was TypeError
    ({"seed": -1}, "seed must be a whole number >= 0"),  # was a numpy ValueError
    ({"roughness_m": -2.0}, r"roughness_m must lie in \[0, inf\)"),  # was accepted (sign flipped)
    ({"hurst": -0.5}, r"hurst must lie in \(0, 1\]"),  # was accepted
    ({"degraded_fraction": 5.0}, r"degraded_fraction must lie in \[0, 1\]"),  # was accepted
    ({"max_craters": -3}, "max_craters must be a whole number >= 0"),  # was a numpy ValueError
    ({"sfd_slope": float("nan")}, "sfd_slope must lie in"),
])
def test_terrain_options_outside_their_ranges_are_one_input_error(kw, match):
    with pytest.raises(InputError, match=match):
        make_terrain(64, 10.0, **kw)


def test_recorded_slopes_match_the_real_catalogues(mirror):
    if not (mirror / "craters/head2010_craters_ge20km_deepmoon.csv").exists():
        pytest.skip("the data mirror has no crater catalogues")
    fits = fit_catalogue_slopes(mirror)
    assert abs(fits["lroc_5_20km"] - SFD_SLOPE_LROC_5_20KM) < 2e-3
    assert abs(fits["head2010"] - SFD_SLOPE_HEAD2010_GE20KM) < 2e-3


def test_crater_profile_ejecta_and_bowl_known_answers():
    """Pike (1977) fresh crater, d/D = 0.2 and rim/D = 0.036 (module docstring): inside, a parabolic bowl
    rim - depth + depth (r/R)^2, so -0.164 + 0.2 * 0.25 = -0.114 at r/R = 0.5; outside, the ejecta blanket
    rim (r/R)^-3 (McGetchin et al. 1973) tapered by ((3 - r/R)/2)^2: 0.036/3.375 * 0.5625 = 0.006 at
    r/R = 1.5 and 0.036/8 * 0.25 = 0.001125 at r/R = 2 ((r/R)^-2 would give 0.00225 there)."""
    np.testing.assert_allclose(crater_profile(np.array([0.0, 0.5, 1.5, 2.0, 3.0])),
                               [-0.164, -0.114, 0.006, 0.001125, 0.0], rtol=1e-12, atol=1e-15)


def test_crater_count_is_the_saturation_scaled_power_law():
    """Expected crater count N = c A (D_min^-b - D_max^-b), c fixed so that the cumulative density at the
    diameter where the power law comes closest to geometric saturation (D_max for b < 2) is
    ``saturation`` x Gault's (1970) 1.54 D^-2 km^-2: c = s 1.54 D_max^(b - 2).

    256 x 256 px of 1 m (A = 0.065536 km^2), D = 4 m ... 76.8 m, b = 1.2, s = 0.5:
    c = 0.77 * 0.0768^-0.8 = 0.77 * 7.7931139 = 6.0006977; N = 6.0006977 * 0.065536 * (0.004^-1.2 - 0.0768^-1.2)
    = 0.3932617 * (754.27204 - 21.755373) = 288.0708 (binding at D_min instead would give 3063).
    """
    from workbench.synth import terrain

    class Recorder:  # records the Poisson mean, draws no craters
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def poisson(self, lam):
            self.lam = lam
            return 0

        def __getattr__(self, name):
            return getattr(self.rng, name)

    rec = Recorder()
    terrain._crater_population(rec, 256, 256, 1.0, 4.0, 76.8, 1.2, 0.5, 5000, 0.6)
    assert rec.lam == pytest.approx(288.0708, rel=1e-6)


def test_fractal_roughness_is_extrapolated_with_the_hurst_exponent():
    """With pixels larger than 17 m the RMS height difference at one pixel is the 17 m value scaled by
    (L/17 m)^H (self-affine): 34 m pixels, H = 0.8, 1.5 m at 17 m: 1.5 * 2^0.8 = 2.6116517 m."""
    f = fractal_surface((64, 64), 34.0, np.random.default_rng(0), hurst=0.8, rms_at_17m=1.5)
    dev = np.sqrt(0.5 * (np.mean(np.diff(f, axis=0) ** 2) + np.mean(np.diff(f, axis=1) ** 2)))
    assert dev == pytest.approx(1.5 * 2**0.8, rel=1e-9)
    assert dev == pytest.approx(2.6116517, rel=1e-7)


def test_untruncated_sfd_slope_is_the_hill_estimator_by_hand():
    """b = n / sum ln(D/D_min) (Clauset et al. 2009, eq. 3.1): ten craters with ln(D/5 km) = 0.1 ... 1.0
    (sum 5.5) give b = 10/5.5 = 1.8181818; a crater below D_min is left out."""
    d = np.r_[5.0 * np.exp(np.arange(1, 11) / 10.0), 4.0]
    assert fit_sfd_slope(d, 5.0) == pytest.approx(10.0 / 5.5, rel=1e-12)


def test_a_degraded_crater_is_shallower_than_a_fresh_one():
    """A degraded crater of state s in [0.2, 1) has depth/D = 0.2 (1 - 0.8 s) <= 0.168 before its radial
    smoothing, which can only lower the rim-to-floor relief: one such crater of D = 40-40.4 m has
    relief / 40 m <= 0.168 * 40.4/40 = 0.1697, below the fresh 0.2 (Soderblom 1970; Fassett & Thomson 2014)."""
    for seed in range(5):
        z = make_terrain(128, 2.0, seed=seed, saturation=1.0, roughness_m=0.0, max_craters=1, degraded_fraction=1.0,
                         min_crater_px=20, max_crater_fraction=0.05).values
        assert (z.max() - z.min()) / 40.0 < 0.1697, seed
