"""Hapke model against values known independently of the code: Chandrasekhar's H-function table and
a radiance factor worked out by hand from the published equations.

References
----------
Chandrasekhar, S. (1960), Radiative Transfer, Dover, Table XI (H-function of isotropic scattering).
Hapke, B. (2002), Icarus 157:523-534, eq. 13 (the H-function approximation, error < 1 %).
Hapke, B. (2012), Theory of Reflectance and Emittance Spectroscopy, 2nd ed.: eq. 6.7a (two-term
Henyey-Greenstein P(g)), eq. 9.22 (shadow-hiding opposition term B(g)), eq. 9.37 (IMSA reflectance).
"""

from __future__ import annotations

import math

import pytest

from workbench import photometry as ph


@pytest.mark.parametrize(("mu", "w", "chandrasekhar"), [
    (1.0, 1.0, 2.9078),  # conservative scattering, normal direction
    (0.5, 1.0, 2.0128),
    (1.0, 0.5, 1.2513),
])
def test_h_function_matches_chandrasekhar_within_the_approximation_error(mu, w, chandrasekhar):
    assert float(ph.hapke_H(mu, w)) == pytest.approx(chandrasekhar, rel=0.01)


def test_h_function_is_hapke_2002_in_closed_form():
    # w = 1: gamma = 0, r0 = 1; at x = 1: H = 1 / (1 - (1 + (1 - 2)/2 ln 2)) = 2 / ln 2 = 2.88539...
    # (Hapke's 1981 form (1 + 2x)/(1 + 2 gamma x) would give 3.0 here)
    assert float(ph.hapke_H(1.0, 1.0)) == pytest.approx(2.0 / math.log(2.0), rel=1e-9)
    assert float(ph.hapke_H(1.0, 1.0)) == pytest.approx(2.8853901, rel=1e-7)
    assert float(ph.hapke_H(0.7, 0.0)) == pytest.approx(1.0)  # no scattering, no multiple scattering


def test_hapke_radiance_factor_worked_by_hand_at_i30_e0_g30():
    """I/F = w/4 mu0/(mu0 + mu) [(1 + B(g)) P(g) + H(mu0) H(mu) - 1] (Hapke 2012, eq. 9.37, as pi r).

    w = 0.75, b = 0.21, c = 0.70, B0 = 1.0, h = 0.07; i = 30 deg, e = 0 deg, g = 30 deg.
    """
    w, b, c, b0, h = 0.75, 0.21, 0.70, 1.0, 0.07
    mu0, mu = math.sqrt(3.0) / 2.0, 1.0  # cos 30 = 0.8660254, cos 0 = 1
    # H-function (Hapke 2002, eq. 13): gamma = sqrt(1 - w) = 0.5, r0 = (1 - gamma)/(1 + gamma) = 1/3,
    # H(x) = 1 / (1 - w x [r0 + (1 - 2 r0 x)/2 ln((1 + x)/x)])
    gamma = 0.5
    r0 = (1 - gamma) / (1 + gamma)
    # H(1) = 1 / (1 - 0.75 (1/3 + (1/3)/2 ln 2)) = 1 / (1 - 0.75 * 0.4488578) = 1 / 0.6633566 = 1.5074848
    h_mu = 1.0 / (1.0 - w * mu * (r0 + (1 - 2 * r0 * mu) / 2 * math.log((1 + mu) / mu)))
    assert h_mu == pytest.approx(1.5074848, rel=1e-7)
    # H(mu0): ln((1 + 0.8660254)/0.8660254) = 0.7676518; 1 - 2/3 mu0 = 0.4226497;
    # 1 - 0.75 * 0.8660254 * (1/3 + 0.4226497/2 * 0.7676518) = 1 - 0.3218739 = 0.6781261 -> 1.4746519
    h_mu0 = 1.0 / (1.0 - w * mu0 * (r0 + (1 - 2 * r0 * mu0) / 2 * math.log((1 + mu0) / mu0)))
    assert h_mu0 == pytest.approx(1.4746519, rel=1e-7)
    # two-term Henyey-Greenstein (Hapke 2012, eq. 6.7a), cos g = 0.8660254, 1 - b^2 = 0.9559:
    # back lobe 0.9559 / (1 - 2b cos g + b^2)^1.5 = 0.9559 / 0.6803693^1.5 = 1.7033166
    # fwd lobe  0.9559 / (1 + 2b cos g + b^2)^1.5 = 0.9559 / 1.4078307^1.5 = 0.5722514
    # P = (1 + c)/2 * 1.7033166 + (1 - c)/2 * 0.5722514 = 1.4478191 + 0.0858377 = 1.5336568
    cg = mu0
    p = (1 + c) / 2 * (1 - b * b) / (1 - 2 * b * cg + b * b) ** 1.5 \
        + (1 - c) / 2 * (1 - b * b) / (1 + 2 * b * cg + b * b) ** 1.5
    assert p == pytest.approx(1.5336568, rel=1e-7)
    # opposition (Hapke 2012, eq. 9.22): B = B0 / (1 + tan(15 deg)/h) = 1 / (1 + 0.2679492/0.07) = 0.2071317
    bg = b0 / (1 + (2 - math.sqrt(3.0)) / h)  # tan 15 deg = 2 - sqrt 3
    assert bg == pytest.approx(0.2071317, rel=1e-6)
    # w/4 mu0/(mu0 + mu) = 0.1875 * 0.8660254/1.8660254 = 0.0870191
    # bracket = 1.2071317 * 1.5336568 + 1.4746519 * 1.5074848 - 1 = 1.8513257 + 2.2230153 - 1 = 3.0743411
    iof = w / 4 * mu0 / (mu0 + mu) * ((1 + bg) * p + h_mu0 * h_mu - 1)
    assert iof == pytest.approx(0.2675263, rel=1e-6)
    assert float(ph.hapke(w, 30.0, 0.0, 30.0, b=b, c=c, B0=b0, h=h)) == pytest.approx(0.2675263, rel=1e-6)


def test_missing_geometry_is_nan_not_shadow_and_percent_is_refused():
    import numpy as np

    from workbench.errors import InputError

    # NaN incidence used to give 0, as if the pixel were in shadow
    assert np.isnan(ph.lunar_lambert(float("nan"), 0.0, 30.0))
    assert np.isnan(ph.hapke(0.3, 30.0, float("nan"), 30.0))
    out = ph.lunar_lambert([30.0, float("nan"), 95.0], 0.0, 30.0)
    assert out[0] > 0 and np.isnan(out[1]) and out[2] == 0.0  # lit, unknown, below the horizon
    # reflectance in percent used to turn into NaN without a word
    with pytest.raises(InputError, match="not percent"):
        ph.normalise(np.array([0.05, 0.1, 5.0, 10.0]), 30.0, 0.0, 30.0, model="hapke")
    import xarray as xr

    r = xr.DataArray([0.05, -0.001, 0.1], dims="x")  # noise below 0 is NaN, and counted
    n = ph.normalise(r, 30.0, 0.0, 30.0, model="hapke")
    assert np.isnan(n.values[1]) and np.isfinite(n.values[[0, 2]]).all()
    assert n.attrs["hapke_out_of_range_pixels"] == 1
    hot = np.full(400, 0.12)
    hot[7] = 1.7  # one cosmic ray among 400 pixels is a NaN, not a units error
    out = ph.normalise(hot, 30.0, 0.0, 30.0, model="hapke")
    assert np.isnan(out[7]) and np.isfinite(np.delete(out, 7)).all()


def test_lunar_lambert_with_mcewen_L_worked_by_hand():
    """I/F = A [2 L(g) mu0/(mu0 + mu) + (1 - L(g)) mu0], L(g) = 1 - 0.019 g + 2.42e-4 g^2 - 1.46e-6 g^3.

    McEwen (1996) lunar L(g) polynomial, as in USGS ISIS ``LunarLambertMcEwen`` (M1 = -0.019,
    M2 = 0.000242, M3 = -0.00000146); i, e, g in degrees, A = 1.
    """
    # L(60) = 1 - 1.14 + 0.8712 - 0.31536 = 0.41584; i = 60, e = 0: mu0 = 0.5, mu = 1
    # I/F = 2 * 0.41584 * 0.5/1.5 + 0.58416 * 0.5 = 0.2772267 + 0.29208 = 0.5693067
    assert float(ph.mcewen_L(60.0)) == pytest.approx(0.41584, rel=1e-12)
    assert float(ph.lunar_lambert(60.0, 0.0, 60.0)) == pytest.approx(0.5693067, rel=1e-6)
    # L(30) = 1 - 0.57 + 0.2178 - 0.03942 = 0.60838; mu0 = cos 30 = 0.8660254, mu = 1
    # I/F = 1.21676 * 0.8660254/1.8660254 + 0.39162 * 0.8660254 = 0.5647001 + 0.3391529 = 0.9038531
    assert float(ph.mcewen_L(30.0)) == pytest.approx(0.60838, rel=1e-12)
    assert float(ph.lunar_lambert(30.0, 0.0, 30.0)) == pytest.approx(0.9038531, rel=1e-6)


def test_lunar_lambert_normalisation_with_default_parameters_worked_by_hand():
    """normalise(R, i, e, g) = R F(30, 0, 30) / F(i, e, g), F = f(g) [2 L mu0/(mu0 + mu) + (1 - L) mu0] with a
    flat f and McEwen's L(g) = 1 - 0.019 g + 2.42e-4 g^2 - 1.46e-6 g^3 (McEwen 1996; module docstring).

    F(60, 0, 60): L(60) = 1 - 1.14 + 0.8712 - 0.31536 = 0.41584; mu0 = 0.5, mu = 1:
      2 * 0.41584 * 0.5/1.5 + 0.58416 * 0.5 = 0.2772267 + 0.29208 = 0.5693067
    F(30, 0, 30): L(30) = 1 - 0.57 + 0.2178 - 0.03942 = 0.60838; mu0 = cos 30 = 0.8660254, mu = 1,
      mu0/(mu0 + mu) = 2 sqrt 3 - 3 = 0.4641016:
      2 * 0.60838 * 0.4641016 + 0.39162 * 0.8660254 = 0.5647003 + 0.3391529 = 0.9038531
    R = 0.1: 0.1 * 0.9038531 / 0.5693067 = 0.1 * 1.5876384 = 0.1587638
    (L(g) of the observed and standard phase swapped would give 0.1 * 0.8918814 / 0.6013967 = 0.1483017.)
    """
    assert float(ph.normalise(0.1, 60.0, 0.0, 60.0, model="lunar-lambert")) == pytest.approx(0.1587638, rel=1e-6)
    assert float(ph.normalise(0.1, 60.0, 0.0, 60.0)) == pytest.approx(0.1587638, rel=1e-6)  # the default model
    assert float(ph.normalisation_factor(60.0, 0.0, 60.0)) == pytest.approx(1.5876384, rel=1e-6)
    assert float(ph.normalise(0.1, 30.0, 0.0, 30.0)) == pytest.approx(0.1, rel=1e-12)  # already standard


def test_hapke_inversion_and_normalisation_give_back_hand_worked_values():
    """Inverse of the Hapke model at hand-worked points (Hapke 2012, eqs. 6.7a, 9.22, 9.37; Hapke 2002
    H-function; b = 0.21, c = 0.70, B0 = 1, h = 0.07).

    * I/F = 0.2675263 at (30, 0, 30) is w = 0.75 (worked out in
      ``test_hapke_radiance_factor_worked_by_hand_at_i30_e0_g30``); the look-up promises 1e-4 in w.
    * w = 0.3: gamma = sqrt(0.7) = 0.8366600, r0 = 0.0889332; H(1) = 1.1263277, H(cos 30) = 1.1204051,
      H(0.5) = 1.0969822. At (30, 0, 30): P = 1.5336568, B = 0.2071317, bracket
      1.2071317 * 1.5336568 + 1.1204051 * 1.1263277 - 1 = 2.1132690, I/F = 0.075 * 0.4641016 * 2.1132690
      = 0.07355787. At (60, 0, 60): cos g = 0.5, lobes 0.9559/0.8341^1.5 = 1.2548311 and
      0.9559/1.2541^1.5 = 0.6806349, P = 0.85 * 1.2548311 + 0.15 * 0.6806349 = 1.1687017,
      B = 1/(1 + tan 30/0.07) = 0.1081331, bracket 1.1081331 * 1.1687017 + 1.0969822 * 1.1263277 - 1
      = 1.5306384, I/F = 0.075 * (0.5/1.5) * 1.5306384 = 0.03826596.
    * So the Hapke normalisation factor at w = 0.3 (the documented default) from (60, 0, 60) is
      0.07355787 / 0.03826596 = 1.9222794, and normalise(model="hapke") takes 0.03826596 observed at
      (60, 0, 60) to 0.07355787. (At w = 0.6 the factor would be 1.8567536.)
    """
    w = ph.hapke_w_from_reflectance(0.2675263, 30.0, 0.0, 30.0, b=0.21, c=0.70, B0=1.0, h=0.07)
    assert float(w) == pytest.approx(0.75, abs=1e-4)
    assert float(ph.hapke(0.3, 60.0, 0.0, 60.0)) == pytest.approx(0.03826596, rel=1e-6)
    assert float(ph.normalisation_factor(60.0, 0.0, 60.0, model="hapke")) == pytest.approx(1.9222794, rel=1e-6)
    assert float(ph.normalise(0.03826596, 60.0, 0.0, 60.0, model="hapke")) == pytest.approx(0.07355787, rel=1e-4)


def test_lunar_lambert_normalisation_with_fitted_parameters_worked_by_hand():
    """normalise(R, i, e, g, params) = R F(to) / F(i, e, g), F = f(g) [2 L mu0/(mu0 + mu) + (1 - L) mu0], with
    the fitted L(g) = 1 + c1 g and f(g) = exp(b1 (g - 30)) of a :func:`fit_lunar_lambert` result
    (McEwen 1991; module docstring). Here c1 = -0.01, b1 = -0.02:

    F(60, 0, 60): L = 0.4, f = exp(-0.6) = 0.5488116; 0.5488116 * (2 * 0.4 * 0.5/1.5 + 0.6 * 0.5)
      = 0.5488116 * 0.5666667 = 0.3109933
    F(30, 0, 30): L = 0.7, f = 1; 2 * 0.7 * 0.4641016 + 0.3 * 0.8660254 = 0.6497423 + 0.2598076 = 0.9095499
    F(40, 0, 40): L = 0.6, f = exp(-0.2) = 0.8187308; mu0 = cos 40 = 0.7660444, mu0/(mu0 + 1) = 0.4337628;
      0.8187308 * (1.2 * 0.4337628 + 0.4 * 0.7660444) = 0.8187308 * 0.8269332 = 0.6770356
    R = 0.1 at (60, 0, 60): to (30, 0, 30) 0.1 * 0.9095499 / 0.3109933 = 0.2924661; to (40, 0, 40)
    0.1 * 0.6770356 / 0.3109933 = 0.2177011. (McEwen's L at the standard phase instead of the fitted one
    gives 0.2906343; the phase function left out at ``to`` gives 0.2659007.)
    A quadratic log f, b = (-0.02, 1e-4): f(60) = exp(-0.6 + 0.09) = 0.6004956, F(60, 0, 60) = 0.6004956 *
    0.5666667 = 0.3402808, so 0.1 * 0.9095499 / 0.3402808 = 0.2672939 (f in g + 30 instead of g - 30 gives
    0.1864846; a linear log f cannot tell them apart).
    """
    fit = {"coeffs": [-0.01], "phase_coeffs": [-0.02]}
    assert float(ph.normalise(0.1, 60.0, 0.0, 60.0, params=fit)) == pytest.approx(0.2924661, rel=1e-6)
    assert float(ph.normalise(0.1, 60.0, 0.0, 60.0, params=fit, to=(40.0, 0.0, 40.0))) == pytest.approx(
        0.2177011, rel=1e-6)
    fit2 = {"coeffs": [-0.01], "phase_coeffs": [-0.02, 1e-4]}
    assert float(ph.normalise(0.1, 60.0, 0.0, 60.0, params=fit2)) == pytest.approx(0.2672939, rel=1e-6)
