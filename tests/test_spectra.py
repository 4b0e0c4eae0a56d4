"""Known-answer and behaviour tests of the Hapke mixing model, and the check against real stations."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.synth import spectra
from workbench.synth.minerals import MINERALS

WL = spectra.WAVELENGTH_NM


def _soil(fractions, mg=60.0, npfe=0.0):
    m = xr.DataArray(np.asarray(fractions, float) / np.sum(fractions), dims="mineral",
                     coords={"mineral": list(MINERALS)})
    return spectra.reflectance_from_modes(m, xr.DataArray(float(mg)), xr.DataArray(float(npfe)))


def test_slab_albedo_limits():
    # no absorption: every photon scattered (w = 1); opaque: only surface reflection Se
    assert spectra._slab_albedo(np.array(0.0), 1.7) == pytest.approx(1.0)
    se = (0.7**2) / (2.7**2) + 0.05
    assert spectra._slab_albedo(np.array(1e6), 1.7) == pytest.approx(se)


def test_pyroxene_band_moves_with_iron():
    def band_min(mg):
        w = spectra.single_scattering_albedo("low_ca_pyroxene", WL, mg)[0]
        sel = (WL > 800) & (WL < 1200)
        return WL[sel][np.argmin(w[sel])]

    assert band_min(85.0) < band_min(30.0)
    assert 880 <= band_min(85.0) <= 960
    hcp = spectra.single_scattering_albedo("high_ca_pyroxene", WL, 60.0)[0]
    sel = (WL > 1700) & (WL < 2500)
    assert 2100 <= WL[sel][np.argmin(hcp[sel])] <= 2400


def test_olivine_and_plagioclase_bands():
    ol = spectra.single_scattering_albedo("olivine", WL, 70.0)[0]
    sel = (WL > 800) & (WL < 1500)
    assert 1000 <= WL[sel][np.argmin(ol[sel])] <= 1120
    pl = spectra.single_scattering_albedo("plagioclase", WL, 70.0)[0]
    sel = (WL > 1000) & (WL < 1500)
    assert 1200 <= WL[sel][np.argmin(pl[sel])] <= 1300


def test_space_weathering_darkens_and_reddens():
    fresh = _soil([0.6, 0.15, 0.1, 0.05, 0.0, 0.1], npfe=0.0)
    mature = _soil([0.6, 0.15, 0.1, 0.05, 0.0, 0.1], npfe=0.4)
    r = lambda s, w: float(s.interp(wavelength=w))  # noqa: E731
    assert r(mature, 750) < 0.8 * r(fresh, 750)
    assert r(mature, 415) / r(mature, 750) < r(fresh, 415) / r(fresh, 750)
    # band depth at 950 nm shrinks with maturity (Fischer & Pieters 1994)
    assert r(mature, 950) / r(mature, 750) > r(fresh, 950) / r(fresh, 750)


def test_ilmenite_darkens_and_flattens():
    low = _soil([0.3, 0.12, 0.3, 0.06, 0.02, 0.2], mg=45, npfe=0.45)
    high = _soil([0.3, 0.12, 0.3, 0.06, 0.16, 0.2], mg=45, npfe=0.45)
    r = lambda s, w: float(s.interp(wavelength=w))  # noqa: E731
    assert r(high, 750) < r(low, 750)
    assert r(high, 415) / r(high, 750) > r(low, 415) / r(low, 750)


def test_nan_in_nan_out_and_bad_wavelength():
    m = xr.DataArray(np.full((2, 6), 1 / 6), dims=("p", "mineral"), coords={"mineral": list(MINERALS)})
    mg = xr.DataArray([60.0, np.nan], dims="p")
    out = spectra.reflectance_from_modes(m, mg, xr.DataArray([0.1, 0.1], dims="p"))
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))
    with pytest.raises(InputError, match="nm"):
        spectra.reflectance_from_modes(m, mg, xr.DataArray([0.1, 0.1], dims="p"), wavelength=[0.4, 0.75])


def test_behaves_like_the_real_clementine_stations(mirror):
    """Lucey (2000) applied to synthetic spectra and to the 36 real stations gives similar errors."""
    import pandas as pd

    from workbench.synth.bench import reality_check
    from workbench.synth.moon import make_moon

    stations = pd.read_csv(mirror / "samples" / "clementine_5band_sample_stations.csv")
    moon = make_moon(seed=0, resolution_ppd=1, geography="procedural", cache=False)
    out = reality_check(moon, stations, n_pixels=3000)
    real, syn = out["real"], out["synthetic"]
    assert real["lucey_feo_rmse"] == pytest.approx(1.24, abs=0.01)  # the published figure on these data
    assert syn["lucey_feo_rmse"] < 2.5 * real["lucey_feo_rmse"]
    assert syn["lucey_tio2_rmse"] < 2.5 * real["lucey_tio2_rmse"]
    for key in ("r750_high_feo_p5_p95", "r750_low_feo_p5_p95", "r415_r750_p5_p95", "r950_r750_p5_p95"):
        np.testing.assert_allclose(syn[key], real[key], rtol=0.2, err_msg=key)
    # same sign of the trends: darker soils have lower R950/R750 (stronger 1 µm band) and are redder
    assert syn["trend_r950_r750_vs_r750"][0] > 0 and syn["trend_r415_r750_vs_r750"][0] > 0


def _soil_raw(mode, mg=70.0, npfe=0.3):  # fractions as given, not normalised
    m = xr.DataArray([mode], dims=("p", "mineral"), coords={"mineral": list(MINERALS)})
    return spectra.reflectance_from_modes(m, xr.DataArray([mg], dims="p"), xr.DataArray([npfe], dims="p"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mode": [1.5, -0.3, 0, 0, -0.2, 0]}, "negative mineral fraction"),  # sums to 1: used to give FeO -0.14 wt%
    ({"mode": [1, 1, 1, 1, 1, 1]}, "sum to 6–6 instead of 1"),
    ({"mode": [0.5, 0.5, 0, 0, 0, 0], "mg": 150.0}, "Mg# outside 0–100"),
    ({"mode": [0.5, 0.5, 0, 0, 0, 0], "npfe": 3.0}, "nanophase iron outside 0–2 wt%"),  # was read as 2 wt%
    ({"mode": [0, 0, 0, 0.95, 0, 0.05], "mg": 0.0}, "more than 50 wt% FeO"),  # fayalite melt: was clamped to 30
])
def test_values_the_tables_would_clamp_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        _soil_raw(**kwargs).compute()


def test_glass_free_iron_rich_soil_is_computed_and_lazy_blocks_are_checked():
    # no glass: its FeO (the crystalline melt, 50+ wt% for olivine at Mg# 30) is never read, so no error
    assert np.isfinite(_soil_raw([0, 0, 0, 1.0, 0, 0], mg=30.0).values).all()
    with pytest.raises(InputError, match="more than 50 wt% FeO"):
        _soil_raw([0, 0, 0, 0.99, 0, 0.01], mg=30.0).compute()
    lazy = xr.DataArray([[0.5, 0.5, 0, 0, 0, 0]] * 4, dims=("p", "mineral"),
                        coords={"mineral": list(MINERALS)}).chunk({"p": 2})
    out = spectra.reflectance_from_modes(lazy, xr.DataArray([70.0, 70, 70, 170], dims="p").chunk({"p": 2}),
                                         xr.DataArray([0.3] * 4, dims="p").chunk({"p": 2}))
    with pytest.raises(InputError, match="Mg# outside"):
        out.compute()


def test_scalar_and_differently_dimensioned_mg_and_npfe_broadcast():
    """A number, a 0-d DataArray or a DataArray on some of the pixel dims gives the same spectra as full
    per-pixel arrays (they used to fail in the kernel)."""
    m = np.array([0.75, 0.09, 0.035, 0.03, 0.005, 0.09])
    mode = xr.DataArray(np.tile(m, (2, 3, 1)), dims=("y", "x", "mineral"), coords={"mineral": list(MINERALS)})
    wl = [415.0, 750.0, 950.0]
    full = spectra.reflectance_from_modes(mode, xr.full_like(mode.isel(mineral=0, drop=True), 70.0),
                                          xr.full_like(mode.isel(mineral=0, drop=True), 0.2), wl)
    for mg, npfe in [(70.0, 0.2), (xr.DataArray(70.0), xr.DataArray(0.2)),
                     (xr.DataArray([70.0, 70.0], dims="y"), xr.DataArray([0.2, 0.2, 0.2], dims="x"))]:
        for md in (mode, mode.chunk({"y": 1})):
            out = spectra.reflectance_from_modes(md, mg, npfe, wl).transpose("y", "x", "wavelength")
            np.testing.assert_array_equal(out.values, full.values)
    # npfe along a dim that mg lacks: each column its own npFe
    out = spectra.reflectance_from_modes(mode, xr.DataArray([70.0, 70.0], dims="y"),
                                         xr.DataArray([0.0, 0.2, 0.4], dims="x"), wl)
    np.testing.assert_array_equal(out.sel(x=1).values, full.sel(x=1).values)
    assert float(out.isel(y=0, x=0, wavelength=1)) > float(out.isel(y=0, x=2, wavelength=1))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: spectra.single_scattering_albedo("olivine", WL, 70.0, npfe=-0.1), "npfe must be >= 0"),
    (lambda: spectra.npfe_absorption(WL, -0.1), "npfe_wt must be >= 0"),
    (lambda: spectra.single_scattering_albedo("glass", WL, 70.0, feo_wt=-2.0), "feo_wt must be >= 0"),
    (lambda: spectra.single_scattering_albedo("low_ca_pyroxene", WL, 120.0), "Mg#\\) outside 0–100"),
    (lambda: spectra.imaginary_index("olivine", WL, -5.0), "Mg#\\) outside 0–100"),
    (lambda: spectra.single_scattering_albedo("olivine", WL, 0.7), "looks like a fraction.*multiply it by 100"),
    (lambda: _soil([0.5, 0.5, 0, 0, 0, 0], mg=0.7), "looks like a fraction"),
])
def test_mg_number_and_npfe_outside_their_ranges_are_refused(call, message):
    """Negative npFe gave albedos outside [0, 1] (w up to 5.9 at npfe = -0.5 wt%, below 0 at -2 wt%) and an
    Mg# outside 0–100 negative FeO; both are refused now, as is an Mg# given as a fraction."""
    with pytest.raises(InputError, match=message):
        call()


def test_slab_albedo_at_a_finite_absorption_worked_by_hand():
    """Hapke (2012) equivalent slab, eqs. 11.14-11.16: n = 1.7, D = 6.2 um (PARAMS), alpha = 0.1 um^-1.

    <D> = 2/3 [n^2 - (n^2 - 1)^1.5 / n] D = 2/3 (2.89 - 2.5983204/1.7) 6.2 = 2/3 * 1.3615762 * 6.2 = 5.6278484 um;
    Se = (n - 1)^2/(n + 1)^2 + 0.05 = 0.49/7.29 + 0.05 = 0.1172154; Si = 1 - 4/(n (n + 1)^2) = 1 - 0.3227628
    = 0.6772372; Theta = exp(-0.56278484) = 0.5696206;
    w = Se + (1 - Se)(1 - Si) Theta/(1 - Si Theta) = 0.1172154 + 0.8827846 * 0.3227628 * 0.5696206/0.6142321
    = 0.3814512.
    """
    assert float(spectra._slab_albedo(np.array(0.1), 1.7)) == pytest.approx(0.3814512, rel=1e-6)


def test_nanophase_iron_absorption_worked_by_hand_at_500_nm():
    """Hapke (2001) alpha = 36 pi z phi / lambda, z = n_h^3 n k / [(n^2 - k^2 + 2 n_h^2)^2 + (2 n k)^2], plus
    the grey large-particle share (PARAMS): iron at 500 nm n = 2.87, k = 3.05 (Johnson & Christy 1974,
    IRON_NK), host n_h = 1.7, 0.5 wt% npFe.

    z = 4.913 * 2.87 * 3.05 / (4.7144^2 + 17.507^2) = 43.0059455/328.7206164 = 0.1308283;
    phi = (1 - 0.19) * 0.5/100 * 3.1/7.87 = 0.0015953 (volume fraction, soil 3.1 and iron 7.87 g/cm^3);
    small = 36 pi * 0.1308283 * 0.0015953 / 0.5 um = 0.0472092 um^-1; grey = 0.19 * 0.5 * 0.243 = 0.023085;
    alpha = 0.0702942 um^-1.
    """
    assert float(spectra.npfe_absorption([500.0], 0.5)[0, 0]) == pytest.approx(0.0702941, rel=1e-5)


def test_plagioclase_and_its_mixture_with_ilmenite_worked_by_hand():
    """At 2000 nm plagioclase (n = 1.57, 0.3 wt% FeO) absorbs through the continuum k0 = 1.27e-3 and the far
    wing of its 1250 nm band, a Gaussian in wavenumber (PARAMS): 1.5e-2 * 0.03 * exp(-0.5 ((0.5 - 0.8)/0.07)^2)
    = 4.62e-8, so k = 1.2700462e-3 and alpha = 4 pi k / lambda = 4 pi 1.2700462e-3 / 2.0 um = 0.0079799 um^-1.
    Slab (Hapke 2012, eqs. 11.14-11.16): <D> = 2/3 (2.4649 - 1.7730132/1.57) 6.2 = 5.5204479 um,
    Se = 0.57^2/2.57^2 + 0.05 = 0.0991908, Si = 1 - 0.3857395 = 0.6142605, Theta = exp(-0.0440528)
    = 0.9569034, w = 0.0991908 + 0.9008092 * 0.3857395 * 0.9569034/0.4122120 = 0.9058208 (k in 1/nm instead of
    1/um would leave w = 0.9999).
    Ilmenite: 0.041 + 0.05 (750 - 2000)/100 < 0, held at the floor w = 0.02.
    Intimate mixture (Hapke 2012, eq. 10.2): 50/50 by weight, cross sections M/rho: plagioclase
    (0.5/2.73)/(0.5/2.73 + 0.5/4.72) = 0.6335570, w = 0.6335570 * 0.9058208 + 0.3664430 * 0.02 = 0.5812180.
    The radiance factor is the Hapke I/F of that w at the requested geometry.
    """
    from workbench.photometry import hapke

    assert float(spectra.single_scattering_albedo("plagioclase", [2000.0], 70.0)[0, 0]) == pytest.approx(
        0.9058208, rel=1e-6)
    pure = xr.DataArray([1.0, 0, 0, 0, 0, 0], dims="mineral", coords={"mineral": list(MINERALS)})
    r = spectra.reflectance_from_modes(pure, 70.0, 0.0, wavelength=[2000.0], geometry=(60.0, 0.0, 60.0))
    assert float(r[0]) == pytest.approx(float(hapke(0.9058208, 60.0, 0.0, 60.0)), rel=1e-5)
    mix = xr.DataArray([0.5, 0, 0, 0, 0.5, 0], dims="mineral", coords={"mineral": list(MINERALS)})
    r = spectra.reflectance_from_modes(mix, 70.0, 0.0, wavelength=[2000.0])
    assert float(r[0]) == pytest.approx(float(hapke(0.5812180, 30.0, 0.0, 30.0)), rel=1e-5)


def test_glass_takes_the_iron_of_the_crystalline_part_not_of_the_whole_soil():
    """Agglutinitic glass is melted local soil: its FeO is the mass-weighted FeO of the crystalline phases
    divided by their total fraction (module docstring of minerals). 60 % fayalite (Fe2SiO4: 2 * 71.844 /
    (2 * 71.844 + 60.084) = 70.5 wt% FeO) + 40 % glass: the glass holds 0.6 * 70.5 / 0.6 = 70.5 wt% FeO, beyond
    the 50 wt% optical tables, so it is refused (0.6 * 70.5 = 42.3 wt%, undivided, would pass). With 30 %
    plagioclase (0.3 wt%) + 30 % fayalite + 40 % glass it is (0.09 + 21.15)/0.6 = 35.4 wt%: computed."""
    with pytest.raises(InputError, match="more than 50 wt% FeO"):
        _soil_raw([0, 0, 0, 0.6, 0, 0.4], mg=0.0).compute()
    assert np.isfinite(_soil_raw([0.3, 0, 0, 0.3, 0, 0.4], mg=0.0).values).all()
