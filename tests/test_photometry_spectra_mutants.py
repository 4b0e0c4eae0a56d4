"""Known-answer tests for photometric normalisation and the Hapke mixing spectra (mutation review of
``workbench/photometry.py`` and ``workbench/synth/spectra.py``: each test fails on a mutant of the source that
the rest of the suite let through).

Fast and offline: scalar geometries and spectra of a few wavelengths; no data mirror, no network. Expected
values are worked out by hand from the published equations (Hapke 2012, eqs. 6.7a, 9.22, 9.37; Hapke 2002
H-function; McEwen 1996 L(g)) or, for the tabulated spectra, from the documented construction (bilinear
interpolation of per-phase albedos, cross-section weights M/rho) evaluated with the untabulated functions.
Three tests showed defects found on the way, since fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench import photometry as ph
from workbench.errors import InputError
from workbench.synth import spectra
from workbench.synth.minerals import MINERALS

# Hand-worked Hapke I/F (defaults b = 0.21, c = 0.70, B0 = 1, h = 0.07; see test_photometry_known_answers):
# w = 0.3 at (30, 0, 30) and at (60, 0, 60).
IOF_03_30 = 0.07355787
IOF_03_60 = 0.03826596


def _mode(fractions, dims=()):
    arr = np.asarray(fractions, dtype=float)
    return xr.DataArray(arr, dims=(*dims, "mineral"), coords={"mineral": list(MINERALS)})


# ------------------------------------------------------------------------------------ angles, lit/unlit
@pytest.mark.parametrize(("i", "e", "g"), [(185.0, 0.0, 30.0), (-185.0, 0.0, 30.0), (30.0, 0.0, -1.0),
                                           (30.0, 0.0, 190.0), (30.0, -95.0, 30.0)])
def test_angles_outside_their_ranges_are_refused(i, e, g):
    with pytest.raises(InputError, match="must lie in"):
        ph.check_angles(i, e, g)


def test_angles_on_the_range_bounds_and_negative_magnitudes_pass():
    i, e, g = ph.check_angles([180.0, -30.0, np.nan], [90.0, -10.0, 0.0], [180.0, 0.0, np.nan])
    np.testing.assert_array_equal(i, [180.0, -30.0, np.nan])
    assert e.dtype == np.float64 and g[0] == 180.0


def test_missing_phase_is_unknown_not_shadow_or_a_number():
    # NaN phase: NaN out, whether the pixel is lit or not and whether L is given or McEwen's
    assert np.isnan(ph.lunar_lambert(30.0, 0.0, np.nan, L=0.5))
    assert np.isnan(ph.lunar_lambert(95.0, 0.0, np.nan))
    assert np.isnan(ph.hapke(0.3, 95.0, 0.0, np.nan))


def test_sun_on_the_horizon_is_unlit_for_hapke_exactly():
    # cos 90 deg = 6e-17 in floating point: still unlit, exactly 0 (not 1e-18)
    assert ph.hapke(0.3, 90.0, 0.0, 90.0) == 0.0
    assert ph.hapke(0.3, -90.0, 0.0, 90.0) == 0.0


# ------------------------------------------------------------------------------------ Hapke pieces
def test_h_function_at_grazing_direction_is_one():
    # Chandrasekhar H(0) = 1 for every w (H(mu) = 1 + w mu H(mu) int ...)
    assert float(ph.hapke_H(0.0, 0.5)) == pytest.approx(1.0, abs=1e-7)
    assert float(ph.hapke_H(0.0, 1.0)) == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("w", [-0.1, 1.2])
def test_single_scattering_albedo_outside_0_1_is_refused(w):
    with pytest.raises(InputError, match=r"w must lie in \[0, 1\]"):
        ph.hapke(w, 30.0, 0.0, 30.0)


def test_single_scattering_albedo_bounds_are_accepted():
    out = ph.hapke(np.array([0.0, 1.0]), 30.0, 0.0, 30.0)
    assert out[0] == 0.0 and 0.98 < out[1] < 0.99  # w -> 1 at (30, 0, 30): 0.98605 (worked with the formula)


# ------------------------------------------------------------------------------------ w inversion
def test_w_inversion_defaults_to_the_standard_geometry():
    assert float(ph.hapke_w_from_reflectance(IOF_03_30)) == pytest.approx(0.3, abs=1e-4)


def test_w_inversion_refuses_negative_reflectance():
    with pytest.raises(InputError, match="outside the Hapke model range"):
        ph.hapke_w_from_reflectance(np.array([0.05, -0.01]))


def test_w_inversion_is_accurate_between_coarse_grid_nodes():
    """Promised accuracy 1e-4 in w. Hand-worked I/F at (30, 0, 30) (same formula as IOF_03_30):
    w = 0.3037 -> 0.0746127, w = 0.0123 -> 0.00265408, w = 0.9950 -> I/F computed the same way."""
    w = ph.hapke_w_from_reflectance(np.array([0.07461267, 0.002654076]))
    np.testing.assert_allclose(w, [0.3037, 0.0123], atol=1e-4)
    near_one = float(ph.hapke(0.995, 30.0, 0.0, 30.0))
    assert float(ph.hapke_w_from_reflectance(near_one)) == pytest.approx(0.995, abs=1e-4)


def test_w_inversion_at_an_unlit_geometry_is_not_a_bright_surface():
    with pytest.raises(InputError, match="unlit"):
        ph.hapke_w_from_reflectance(0.0, 95.0, 0.0, 95.0)


# ------------------------------------------------------------------------------------ normalisation factor
def test_lunar_lambert_factor_to_another_geometry_and_the_alias():
    """F = 2 L mu0/(mu0 + mu) + (1 - L) mu0 with McEwen's L: F(30, 0, 30) = 0.9038531, F(60, 0, 60) = 0.5693067
    (test_photometry_known_answers); from (30, 0, 30) to (60, 0, 60): 0.5693067/0.9038531 = 0.6298663."""
    assert float(ph.normalisation_factor(30.0, 0.0, 30.0, to=(60.0, 0.0, 60.0))) == pytest.approx(
        0.6298663, rel=1e-6)
    assert float(ph.normalisation_factor(60.0, 0.0, 60.0, model="lunar_lambert")) == pytest.approx(
        1.5876384, rel=1e-6)


def test_lunar_lambert_factor_with_a_separate_standard_L():
    """L = 0.5 observed, L_standard = 0.2 at the standard geometry:
    F(30, 0, 30; L = 0.2) = 0.4 * 0.4641016 + 0.8 * 0.8660254 = 0.1856406 + 0.6928203 = 0.8784610;
    F(60, 0, 60; L = 0.5) = 1.0 * 0.5/1.5 + 0.5 * 0.5 = 0.5833333; factor 0.8784610/0.5833333 = 1.5059331
    (the observed L at the standard geometry too would give 1.5379103)."""
    f = ph.normalisation_factor(60.0, 0.0, 60.0, L=0.5, L_standard=0.2)
    assert float(f) == pytest.approx(1.5059331, rel=1e-6)


def test_hapke_factor_to_another_geometry():
    # w = 0.3: I/F(60, 0, 60)/I/F(30, 0, 30) = 0.03826596/0.07355787 = 0.5202157
    f = ph.normalisation_factor(30.0, 0.0, 30.0, model="hapke", to=(60.0, 0.0, 60.0))
    assert float(f) == pytest.approx(0.5202157, rel=1e-6)


# ------------------------------------------------------------------------------------ normalise()
def test_lunar_lambert_normalise_to_another_phase_uses_L_at_that_phase():
    """No params: McEwen's L at the target phase. L(40) = 1 - 0.76 + 0.3872 - 0.09344 = 0.53376;
    cos 40 = 0.7660444, mu0/(mu0 + 1) = 0.4337628: F(40, 0, 40) = 1.06752 * 0.4337628 + 0.46624 * 0.7660444
    = 0.4630505 + 0.3571606 = 0.8202111; 0.1 * 0.8202111/0.5693067 = 0.1440719 (L(30) would give 0.1467)."""
    out = ph.normalise(0.1, 60.0, 0.0, 60.0, to=(40.0, 0.0, 40.0))
    assert float(out) == pytest.approx(0.1440719, rel=1e-6)


def test_lunar_lambert_normalise_unlit_pixels_are_nan_array_and_dataarray():
    r = np.array([0.05, 0.1])
    i = np.array([95.0, 60.0])
    out = ph.normalise(r, i, 0.0, i)
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.1587638, rel=1e-6)
    da = xr.DataArray(r, dims="x")
    out = ph.normalise(da, xr.DataArray(i, dims="x"), 0.0, i)
    assert np.isnan(out.values[0]) and out.values[1] == pytest.approx(0.1587638, rel=1e-6)


def test_lunar_lambert_normalise_with_a_labelled_phase_angle_and_default_params():
    # same numbers as test_lunar_lambert_normalisation_with_default_parameters_worked_by_hand: 0.1 -> 0.1587638
    r = xr.DataArray([0.1, 0.1], dims="x")
    out = ph.normalise(r, 60.0, 0.0, xr.DataArray([60.0, 60.0], dims="x"))
    np.testing.assert_allclose(out.values, 0.1587638, rtol=1e-6)


def test_hapke_normalise_to_another_geometry():
    out = ph.normalise(np.array([IOF_03_30]), 30.0, 0.0, 30.0, model="hapke", to=(60.0, 0.0, 60.0))
    assert float(out[0]) == pytest.approx(IOF_03_60, rel=1e-4)
    da = xr.DataArray([IOF_03_30], dims="x")
    out = ph.normalise(da, 30.0, 0.0, 30.0, model="hapke", to=(60.0, 0.0, 60.0))
    assert float(out[0]) == pytest.approx(IOF_03_60, rel=1e-4)


def test_hapke_normalise_accepts_flat_parameters():
    """b = 0.3, c = 0.5, w = 0.3 (same formula as IOF_03_30): I/F(60, 0, 60) = 0.03666225,
    I/F(30, 0, 30) = 0.08036869. Flat params and a fit_hapke-style {"params": ...} agree."""
    for params in ({"b": 0.3, "c": 0.5}, {"params": {"b": 0.3, "c": 0.5}}):
        out = ph.normalise(0.03666225, 60.0, 0.0, 60.0, model="hapke", params=params)
        assert float(out) == pytest.approx(0.08036869, rel=1e-4)


def test_hapke_normalise_unlit_black_pixel_is_nan_not_zero():
    out = ph.normalise(np.array([0.0, IOF_03_30]), np.array([95.0, 30.0]), 0.0, np.array([95.0, 30.0]),
                       model="hapke")
    assert np.isnan(out[0]) and out[1] == pytest.approx(IOF_03_30, rel=1e-4)


def test_hapke_normalise_refuses_more_than_one_percent_in_percent():
    r = np.full(100, 0.07)
    r[:5] = 7.0  # 5 % of the pixels in percent
    with pytest.raises(InputError, match="not percent"):
        ph.normalise(r, 30.0, 0.0, 30.0, model="hapke")


def test_hapke_normalise_pixels_above_the_model_but_below_one_are_nan_and_counted():
    # at (60, 0, 60) w = 1 gives I/F 0.5055: 0.8 is out of the model's range, but not a units error
    r = np.full(100, 0.04)
    r[:5] = 0.8
    out = ph.normalise(xr.DataArray(r, dims="x"), 60.0, 0.0, 60.0, model="hapke")
    assert np.isnan(out.values[:5]).all() and np.isfinite(out.values[5:]).all()
    assert out.attrs["hapke_out_of_range_pixels"] == 5


@pytest.mark.parametrize("model", ["hapke", "lunar-lambert"])
def test_normalise_keeps_name_and_attrs_of_a_dataarray(model):
    da = xr.DataArray([0.05, 0.06], dims="x", name="R750", attrs={"units": "1", "band": "R750"})
    # a labelled incidence of another name: arithmetic with it would drop the reflectance's name
    inc = xr.DataArray([60.0, 60.0], dims="x", name="incidence")
    out = ph.normalise(da, inc, 0.0, 60.0, model=model)
    assert out.name == "R750" and out.attrs["units"] == "1" and out.attrs["band"] == "R750"
    if model == "lunar-lambert":  # factor 1.5876384 from (60, 0, 60) (test_photometry_known_answers)
        np.testing.assert_allclose(out.values, [0.0793819, 0.0952583], rtol=1e-6)
    assert out.attrs["photometry"] == f"{model} normalised to i=30.0, e=0.0, g=30.0 deg"


# ------------------------------------------------------------------------------------ fitting inputs
def _ll_obs(n_pix=12):
    rng = np.random.default_rng(0)
    albedo = rng.uniform(0.08, 0.2, n_pix)
    i = np.repeat(np.array([20.0, 40.0, 60.0])[:, None], n_pix, axis=1)
    e = np.zeros_like(i)
    return ph.lunar_lambert(i, e, i) * albedo[None, :], i, e, i.copy()


def test_fit_lunar_lambert_reports_pixels_observations_and_phase_range():
    r, i, e, g = _ll_obs()
    e[1, 5] = 89.5  # grazing view in one observation: that pixel is left out
    f = ph.fit_lunar_lambert(r, i, e, g, degree=1, phase_degree=0)
    assert (f["n_pixels"], f["n_obs"]) == (11, 3)
    assert f["g_range"] == [20.0, 60.0]


def test_fit_lunar_lambert_needs_ten_pixels_and_a_degree_of_at_least_one():
    r, i, e, g = _ll_obs()
    r[0, :3] = np.nan  # 9 pixels seen in every observation
    with pytest.raises(InputError, match=r"too few pixels valid in every observation \(9\)"):
        ph.fit_lunar_lambert(r, i, e, g, degree=1, phase_degree=0)
    r, i, e, g = _ll_obs(10)
    assert ph.fit_lunar_lambert(r, i, e, g, degree=1, phase_degree=0)["n_pixels"] == 10
    with pytest.raises(InputError, match="degree must be 1..4"):
        ph.fit_lunar_lambert(r, i, e, g, degree=0)


def test_fit_hapke_refuses_first_observation_above_the_model():
    # at (30, 0, 30) no w reaches I/F 0.99 (w = 1 gives 0.98605)
    r = np.full((2, 12), 0.99)
    with pytest.raises(InputError, match="above the Hapke model range"):
        ph.fit_hapke(r, np.array([30.0, 50.0]), 0.0, np.array([30.0, 50.0]))


# ------------------------------------------------------------------------------------ spectra: inputs
@pytest.mark.parametrize("wl", [[150.0, 750.0], [750.0, 3500.0]])
def test_wavelengths_outside_200_3000_nm_are_refused(wl):
    with pytest.raises(InputError, match="outside the model's 200–3000 nm"):
        spectra.iron_optical_constants(wl)


def test_wavelength_bounds_are_accepted_and_must_be_1d():
    n, k = spectra.iron_optical_constants([200.0, 3000.0])
    # beyond the table (250-2600 nm) the end values are held: (1.60, 2.20) and (4.40, 8.00)
    np.testing.assert_allclose(n, [1.60, 4.40])
    np.testing.assert_allclose(k, [2.20, 8.00])
    for bad in ([[400.0, 500.0]], 500.0):
        with pytest.raises(InputError, match="1-D array"):
            spectra.iron_optical_constants(bad)


def test_unknown_mineral_is_refused_by_name():
    with pytest.raises(InputError, match="unknown mineral 'quartz'"):
        spectra.single_scattering_albedo("quartz", [750.0])


def test_negative_glass_feo_is_refused_by_imaginary_index_too():
    with pytest.raises(InputError, match="feo_wt must be >= 0"):
        spectra.imaginary_index("glass", [750.0], feo_wt=-2.0)


def test_imaginary_index_of_ilmenite_or_unknown_mineral_is_an_input_error():
    for mineral in ("ilmenite", "quartz"):
        with pytest.raises(InputError, match=f"no optical constants for '{mineral}'.*olivine"):
            spectra.imaginary_index(mineral, [750.0])


# ------------------------------------------------------------------------------------ spectra: optics
def test_glass_uv_charge_transfer_edge_and_continuum_worked_by_hand():
    """Glass k = glass_k0 + uv_k FeO/10 exp(-(lambda - 400)/80) + bands at 1000 and 1900 nm (PARAMS); at 400
    and 480 nm the bands are exp(-0.5 ((2.5 - 1.0)/0.14)^2) ~ 1e-25 and below: nothing.
    FeO 10 wt%: 1.06e-3 + 2e-4 = 1.26e-3 at 400 nm; 1.06e-3 + 2e-4 e^-1 = 1.1335759e-3 at 480 nm.
    FeO not given: 15 wt% (docstring default), 1.06e-3 + 3e-4 = 1.36e-3 at 400 nm."""
    k = spectra.imaginary_index("glass", [400.0, 480.0], feo_wt=10.0)
    np.testing.assert_allclose(k[0], [1.26e-3, 1.1335759e-3], rtol=1e-6)
    assert float(spectra.imaginary_index("glass", [400.0])[0, 0]) == pytest.approx(1.36e-3, rel=1e-6)


def test_ilmenite_albedo_line_floor_and_shape():
    """w = 0.041 + 0.05 (750 - lambda)/100 clipped to [0.02, 0.5] (PARAMS): 260 nm 0.286, 415 nm 0.2085,
    700 nm 0.066, 800 nm 0.016 -> floor 0.02. One row per Mg# value."""
    w = spectra.single_scattering_albedo("ilmenite", [260.0, 415.0, 700.0, 800.0], [50.0, 60.0, 70.0])
    assert w.shape == (3, 4)
    np.testing.assert_allclose(w[2], [0.286, 0.2085, 0.066, 0.02], rtol=1e-12)


# ------------------------------------------------------------------------------------ spectra: tables
WL3 = [750.0, 1050.0, 1900.0]


def _pure(mineral, mg, npfe, wl=WL3):
    frac = [1.0 if m == mineral else 0.0 for m in MINERALS]
    return spectra.reflectance_from_modes(_mode(frac), mg, npfe, wavelength=wl).values


def test_olivine_between_mg_nodes_is_the_bilinear_mean_of_its_neighbours():
    # Mg# grid every 2: Mg# 71 is the mean of the albedos at 70 and 72 (interpolated in w, then Hapke I/F)
    w = spectra.single_scattering_albedo("olivine", WL3, [70.0, 72.0], 0.0).mean(axis=0)
    np.testing.assert_allclose(_pure("olivine", 71.0, 0.0), ph.hapke(w, 30.0, 0.0, 30.0), rtol=2e-5)


def test_the_last_nodes_of_the_tables_are_reached_and_accepted():
    # Mg# 100 and npFe = NPFE_MAX = 2 wt% are valid: the tables' last nodes, not their neighbours
    w = spectra.single_scattering_albedo("low_ca_pyroxene", WL3, 100.0, 2.0)[0]
    np.testing.assert_allclose(_pure("low_ca_pyroxene", 100.0, 2.0), ph.hapke(w, 30.0, 0.0, 30.0), rtol=2e-5)


def test_glass_albedo_takes_its_feo_from_the_crystalline_melt():
    """50 wt% plagioclase (0.3 wt% FeO) + 50 wt% glass: the glass holds 0.5 * 0.3/0.5 = 0.3 wt% FeO, between the
    FeO nodes 0 and 1 (weights 0.7, 0.3). Cross sections M/rho (rho 2.73 and 3.0): plagioclase
    3.0/5.73 = 0.5235602, glass 2.73/5.73 = 0.4764398 (Hapke 2012, eq. 10.2)."""
    wl = [750.0, 1000.0]
    wp = spectra.single_scattering_albedo("plagioclase", wl, 70.0)[0]
    wg = spectra.single_scattering_albedo("glass", wl, 70.0, feo_wt=np.array([0.0, 1.0]))
    w = 0.5235602 * wp + 0.4764398 * (0.7 * wg[0] + 0.3 * wg[1])
    frac = [0.5 if m in ("plagioclase", "glass") else 0.0 for m in MINERALS]
    out = spectra.reflectance_from_modes(_mode(frac), 70.0, 0.0, wavelength=wl).values
    np.testing.assert_allclose(out, ph.hapke(w, 30.0, 0.0, 30.0), rtol=2e-5)


def test_lazy_modes_not_summing_to_one_are_refused_when_computed():
    lazy = _mode([[0.55, 0.5, 0, 0, 0, 0]] * 2, dims=("p",)).chunk({"p": 1})
    out = spectra.reflectance_from_modes(lazy, 70.0, 0.3, wavelength=[750.0])
    with pytest.raises(InputError, match="instead of 1"):
        out.compute()


def test_spectra_carry_units():
    out = spectra.reflectance_from_modes(_mode([1.0, 0, 0, 0, 0, 0]), 70.0, 0.0, wavelength=[750.0])
    assert out.attrs["units"] == "1" and out["wavelength"].attrs["units"] == "nm"
    assert out.name == "reflectance"


# ------------------------------------------------------------------------------------ round 2
def test_hapke_out_of_range_count_is_of_lit_pixels_only():
    # an unlit pixel (i = 95) is NaN but is not "out of the model's range": the count is of lit pixels
    r = xr.DataArray([0.05, IOF_03_30], dims="x")
    i = xr.DataArray([95.0, 30.0], dims="x")
    out = ph.normalise(r, i, 0.0, 30.0, model="hapke")
    assert np.isnan(out.values[0]) and out.values[1] == pytest.approx(IOF_03_30, rel=1e-4)
    assert out.attrs["hapke_out_of_range_pixels"] == 0


def test_fit_takes_one_angle_per_observation_and_drops_pixels_without_phase():
    r, i, e, g = _ll_obs()
    f = ph.fit_lunar_lambert(r, i[:, 0], 0.0, g[:, 0], degree=1, phase_degree=0)  # 1-D over obs
    assert (f["n_pixels"], f["n_obs"], f["g_range"]) == (12, 3, [20.0, 60.0])
    g[2, 4] = np.nan  # pixel 4 has no phase angle in the last observation
    assert ph.fit_lunar_lambert(r, i, e, g, degree=1, phase_degree=0)["n_pixels"] == 11


def test_fit_lunar_lambert_is_robust_to_a_few_outliers():
    """L(g) = 1 - 0.01 g (degree 1, exact), pixels at varied (i, e) at each phase so that L is separable from
    the albedo; 2 of 60 pixels 3x too bright in one view (a cosmic ray). The soft-L1 loss keeps c1 near -0.01."""
    rng = np.random.default_rng(1)
    n = 60
    g = np.repeat(np.array([20.0, 40.0, 60.0])[:, None], n, axis=1)
    i = rng.uniform(0.0, 60.0, (3, n))
    e = rng.uniform(0.0, 60.0, (3, n))
    mu0, mu = np.cos(np.deg2rad(i)), np.cos(np.deg2rad(e))
    lg = 1.0 - 0.01 * g
    r = rng.uniform(0.08, 0.2, n)[None, :] * (2 * lg * mu0 / (mu0 + mu) + (1 - lg) * mu0)
    r[1, :2] *= 3.0
    f = ph.fit_lunar_lambert(r, i, e, g, degree=1, phase_degree=0)
    assert f["coeffs"][0] == pytest.approx(-0.01, abs=3e-4)


def test_pyroxene_band_i_centres_move_with_fs_as_documented():
    """Band I centre (PARAMS): low-Ca pyroxene 900 -> 935 nm, high-Ca 970 -> 1060 nm with Fs = 1 - Mg#/100; a
    Gaussian in wavenumber peaks at its centre wavelength, the Band II wing and UV edge are negligible there."""
    wl = np.arange(850.0, 1201.0, 1.0)
    peak = {(m, mg): wl[np.argmax(spectra.imaginary_index(m, wl, mg)[0])]
            for m in ("low_ca_pyroxene", "high_ca_pyroxene") for mg in (0.0, 50.0)}
    assert peak[("low_ca_pyroxene", 0.0)] == 935.0 and peak[("high_ca_pyroxene", 0.0)] == 1060.0
    assert peak[("low_ca_pyroxene", 50.0)] in (917.0, 918.0) and peak[("high_ca_pyroxene", 50.0)] == 1015.0


def test_mineral_order_of_the_mode_does_not_matter():
    frac = dict(zip(MINERALS, [0.5, 0.2, 0.1, 0.1, 0.05, 0.05], strict=True))
    rev = list(MINERALS)[::-1]
    a = spectra.reflectance_from_modes(_mode(list(frac.values())), 70.0, 0.3, wavelength=WL3)
    b = spectra.reflectance_from_modes(xr.DataArray([frac[m] for m in rev], dims="mineral",
                                                    coords={"mineral": rev}), 70.0, 0.3, wavelength=WL3)
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize(("mode", "mg", "npfe", "message"), [
    ([1.3, -0.3, 0, 0, 0, 0], 70.0, 0.3, "negative mineral fraction"),
    ([0.5, 0.5, 0, 0, 0, 0], -5.0, 0.3, "Mg# outside 0–100"),
    ([0.5, 0.5, 0, 0, 0, 0], 70.0, -0.1, "nanophase iron outside 0–2 wt%"),
])
def test_lazy_inputs_the_tables_would_clamp_are_refused_when_computed(mode, mg, npfe, message):
    lazy = _mode([mode] * 2, dims=("p",)).chunk({"p": 1})
    mg = xr.DataArray([mg, mg], dims="p").chunk({"p": 1})
    out = spectra.reflectance_from_modes(lazy, mg, xr.DataArray([npfe, npfe], dims="p"), wavelength=[750.0])
    with pytest.raises(InputError, match=message):
        out.compute()


def test_negative_nanophase_iron_is_refused():
    with pytest.raises(InputError, match="nanophase iron outside 0–2 wt%"):
        spectra.reflectance_from_modes(_mode([0.5, 0.5, 0, 0, 0, 0]), 70.0, -0.1, wavelength=[750.0])


def test_default_wavelength_grid_is_260_to_2600_nm_every_20():
    wl = spectra.WAVELENGTH_NM
    assert wl.size == 118 and wl[0] == 260.0 and wl[-1] == 2600.0 and np.all(np.diff(wl) == 20.0)


# ------------------------------------------------------------------------------------ round 3
def test_w_inversion_uses_the_given_hapke_parameters():
    # b = 0.3, c = 0.5: w = 0.3 gives I/F 0.08036869 at (30, 0, 30) (see test_hapke_normalise_accepts_flat_parameters)
    assert float(ph.hapke_w_from_reflectance(0.08036869, b=0.3, c=0.5)) == pytest.approx(0.3, abs=1e-4)


def test_a_sun_just_above_the_horizon_is_lit():
    # cos 89.99 deg = 1.745e-4 > UNLIT_MU0 = 1e-12: a grazing sun still lights the ground
    assert ph.is_lit(89.99) and not ph.is_lit(90.0)
    assert ph.lunar_lambert(89.99, 0.0, 89.99) > 0.0 and ph.hapke(0.3, 89.99, 0.0, 89.99) > 0.0


def _hapke_obs(w, **params):
    ang = np.repeat(np.array([20.0, 40.0, 60.0])[:, None], w.size, axis=1)
    return ph.hapke(w[None, :], ang, 0.0, ang, **params), ang


def test_fit_hapke_keeps_fixed_parameters_and_recovers_bright_albedos():
    w = np.linspace(0.55, 0.85, 12)  # median 0.70: above 0.5
    r, ang = _hapke_obs(w, h=0.1)
    f = ph.fit_hapke(r, ang, 0.0, ang, fit=("b",), fixed={"h": 0.1})
    assert f["params"]["h"] == 0.1 and f["params"]["c"] == 0.70 and f["fitted"] == ["b"]
    assert f["params"]["b"] == pytest.approx(0.21, abs=1e-3)
    assert f["w_median"] == pytest.approx(0.70, abs=1e-3)
    assert (f["n_pixels"], f["n_obs"]) == (12, 3) and f["rms"] < 1e-5


def test_fit_hapke_rms_is_relative_to_the_mean_reflectance():
    # 2 % multiplicative noise: the relative rms residual is of that order (a few 1e-3 to 2e-2), whatever the
    # absolute reflectance level (here about 0.1)
    w = np.linspace(0.3, 0.6, 12)
    r, ang = _hapke_obs(w)
    r = r * (1.0 + 0.02 * np.random.default_rng(3).standard_normal(r.shape))
    f = ph.fit_hapke(r, ang, 0.0, ang, fit=("b",))
    assert 0.004 < f["rms"] < 0.03


def test_nan_nanophase_iron_is_nan_out_not_an_error():
    w = spectra.single_scattering_albedo("olivine", [750.0, 1050.0], 70.0, npfe=np.nan)
    assert w.shape == (1, 2) and np.isnan(w).all()
    a = spectra.npfe_absorption([500.0], [np.nan, 0.5])
    assert np.isnan(a[0, 0]) and a[1, 0] == pytest.approx(0.0702941, rel=1e-5)


def test_array_arguments_of_unequal_length_or_an_array_geometry_are_input_errors():
    with pytest.raises(InputError, match=r"one length, got lengths \{'mg_number': 2, 'npfe': 3\}"):
        spectra.single_scattering_albedo("olivine", [750.0, 1000.0], mg_number=[60.0, 80.0], npfe=[0.0, 0.1, 0.2])
    w = spectra.single_scattering_albedo("olivine", [750.0, 1000.0], mg_number=[60.0, 80.0], npfe=0.1)
    assert w.shape == (2, 2)
    with pytest.raises(InputError, match="one geometry"):
        ph.hapke_w_from_reflectance(0.1, [30.0, 40.0], 0.0, 30.0)
