"""Virtual instruments: band tables, linear resampling, simulated observations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.synth.instruments import INSTRUMENTS, observe, resample_to_instrument, response_matrix


def _cube(values, wl):
    return xr.DataArray(values, dims=("lat", "lon", "wavelength"),
                        coords={"lat": [1.0, 0.0], "lon": [0.0, 1.0, 2.0], "wavelength": wl},
                        attrs={"units": "1"})


def test_band_tables():
    assert list(INSTRUMENTS["clementine_uvvis"]["center_nm"]) == [415, 750, 900, 950, 1000]
    kag = INSTRUMENTS["kaguya_mi"]
    assert len(kag) == 9 and kag["name"].is_unique
    assert list(INSTRUMENTS["lro_wac"]["center_nm"]) == [321, 360, 415, 566, 604, 643, 689]


def test_linear_spectrum_known_answer():
    # a linear spectrum is reproduced exactly at every (symmetric) band centre
    wl = np.arange(260.0, 2601.0, 20.0)
    spec = 0.05 + 1e-4 * wl
    cube = _cube(np.broadcast_to(spec, (2, 3, wl.size)).copy(), wl)
    for name in INSTRUMENTS:
        out = resample_to_instrument(cube, name)
        assert out.dims == ("band", "lat", "lon")
        np.testing.assert_allclose(out.isel(lat=0, lon=0), 0.05 + 1e-4 * out["wavelength"], rtol=1e-6)
        assert "fwhm" in out.coords and out["wavelength"].attrs["units"] == "nm"


def test_narrow_band_resolves_feature():
    # a 10 nm wide dip centred on 750 nm shows in the 10 nm Clementine band, much less in a 40 nm band
    wl = np.arange(600.0, 900.0, 1.0)
    spec = 0.2 - 0.1 * np.exp(-0.5 * ((wl - 750) / 4.0) ** 2)
    W = response_matrix(wl, INSTRUMENTS["clementine_uvvis"].iloc[[1]])
    narrow = float((W * spec).sum())
    import pandas as pd

    wide = float((response_matrix(wl, pd.DataFrame({"name": ["w"], "center_nm": [750.0], "fwhm_nm": [40.0]}))
                  * spec).sum())
    assert narrow < wide < 0.2


def test_uncovered_band_raises():
    wl = np.arange(400.0, 1200.0, 10.0)
    with pytest.raises(InputError, match="R321"):
        resample_to_instrument(_cube(np.ones((2, 3, wl.size)), wl), "lro_wac")


def test_dask_lazy():
    wl = np.arange(260.0, 2601.0, 20.0)
    cube = _cube(np.random.default_rng(0).random((2, 3, wl.size)), wl).chunk({"lat": 1})
    out = resample_to_instrument(cube, "kaguya_mi")
    assert out.chunks is not None
    np.testing.assert_allclose(out.compute(), resample_to_instrument(cube.compute(), "kaguya_mi"))


def test_observe_records_truth_and_inverts():
    wl = np.arange(260.0, 2601.0, 20.0)
    cube = _cube(np.full((2, 3, wl.size), 0.1), wl)
    gains = [1.1, 0.9, 1.0, 1.05, 0.95]
    obs = observe(cube, "clementine_uvvis", gain_error=gains, offset_error=[0.01] * 5, stripes=0.02, seed=1)
    for v in ("reflectance", "true_reflectance", "stripe_gain", "stripe_offset", "gain", "offset"):
        assert v in obs
    expected = (obs["true_reflectance"] * obs["stripe_gain"] + obs["stripe_offset"]) * obs["gain"] + obs["offset"]
    np.testing.assert_allclose(obs["reflectance"], expected.transpose(*obs["reflectance"].dims), rtol=1e-5)
    np.testing.assert_allclose(obs["gain"], gains)
    assert obs["stripe_gain"].dims == ("band", "lon")
    # deterministic for a seed
    again = observe(cube, "clementine_uvvis", gain_error=0.05, stripes=0.02, snr=50, seed=3)
    again2 = observe(cube, "clementine_uvvis", gain_error=0.05, stripes=0.02, snr=50, seed=3)
    np.testing.assert_array_equal(again["reflectance"], again2["reflectance"])


def test_observe_noise_level_and_geometry():
    wl = np.arange(260.0, 2601.0, 20.0)
    big = xr.DataArray(np.full((200, 200, wl.size), 0.1), dims=("lat", "lon", "wavelength"),
                       coords={"wavelength": wl})
    obs = observe(big, "clementine_uvvis", snr=50, seed=0)
    rel = (obs["reflectance"] / obs["true_reflectance"] - 1).std()
    assert float(rel) == pytest.approx(1 / 50, rel=0.05)
    from workbench.photometry import lunar_lambert

    geo = observe(big.isel(lat=slice(0, 2), lon=slice(0, 2)), "clementine_uvvis",
                  geometry={"i": 60.0, "e": 0.0, "g": 60.0})
    expected = lunar_lambert(60, 0, 60) / lunar_lambert(30, 0, 30)
    np.testing.assert_allclose(geo["reflectance"] / geo["true_reflectance"], expected, rtol=1e-5)
    dark = observe(big.isel(lat=slice(0, 2), lon=slice(0, 2)), "clementine_uvvis",
                   geometry={"i": 90.0, "e": 0.0, "g": 90.0})  # sun on the horizon: no signal
    assert float(np.abs(dark["reflectance"]).max()) < 1e-9
    with pytest.raises(InputError):
        observe(big, "clementine_uvvis", snr=-1)


def test_nan_where_no_band_looks_is_ignored_and_bad_calls_say_what_to_do():
    from workbench.synth.spectra import WAVELENGTH_NM

    x = np.full((2, WAVELENGTH_NM.size), 0.1, np.float32)
    x[0, -1] = np.nan  # a channel at the end of the grid, outside every Clementine UVVIS band
    da = xr.DataArray(x, dims=("p", "wavelength"), coords={"wavelength": WAVELENGTH_NM}, attrs={"units": "1"})
    np.testing.assert_allclose(resample_to_instrument(da, "clementine_uvvis").values, 0.1, rtol=1e-6)
    with pytest.raises(InputError, match="micrometres: multiply them by 1000"):
        resample_to_instrument(da.assign_coords(wavelength=WAVELENGTH_NM / 1000), "clementine_uvvis")
    with pytest.raises(InputError, match="use resample_to_instrument"):
        observe(da.isel(p=1), "clementine_uvvis")
    for seed in (-1, 1.5):
        with pytest.raises(InputError, match="seed must be a whole number"):
            observe(da, "clementine_uvvis", seed=seed)


@pytest.mark.parametrize("i,e,g", [(70.0, 0.0, 70.0), (80.0, 0.0, 80.0), (20.0, 40.0, 60.0)])
def test_observe_hapke_geometry_is_undone_by_hapke_normalise(i, e, g):
    """observe(model='hapke') uses each pixel's own w, the one normalise(model='hapke') inverts: the round
    trip closes (a fixed w = 0.3 ratio gave 0.232 for a true 0.25)."""
    from workbench.photometry import normalise

    wl = np.arange(260.0, 2601.0, 20.0)
    true = np.array([0.05, 0.25])
    cube = xr.DataArray(np.repeat(true[:, None], wl.size, 1)[None].astype("float32"), dims=("lat", "lon", "wavelength"),
                        coords={"lat": [0.0], "lon": [0.0, 1.0], "wavelength": wl})
    for c in (cube, cube.chunk({"lon": 1})):
        ob = observe(c, "clementine_uvvis", geometry={"i": i, "e": e, "g": g, "model": "hapke"})
        back = normalise(ob["reflectance"].astype("float64").compute(), i, e, g, model="hapke")
        np.testing.assert_allclose(back.transpose("band", "lat", "lon").values,
                                   np.broadcast_to(true, (5, 1, 2)), atol=1e-3)


def test_observe_refuses_impossible_geometry_and_lunar_lambert_beyond_its_range():
    wl = np.arange(260.0, 2601.0, 20.0)
    cube = _cube(np.full((2, 3, wl.size), 0.1), wl)
    with pytest.raises(InputError, match="impossible geometry"):
        observe(cube, "clementine_uvvis", geometry={"i": 10.0, "e": 0.0, "g": 80.0})
    with pytest.raises(InputError, match="impossible geometry"):  # per-pixel angles are checked too
        observe(cube, "clementine_uvvis", geometry={"i": xr.DataArray([30.0, 10.0, 30.0], dims="lon"), "e": 0.0,
                                                      "g": 30.0, "model": "hapke"})
    with pytest.raises(InputError, match="Lunar-Lambert model gives no positive reflectance"):
        observe(cube, "clementine_uvvis", geometry={"i": 80.0, "e": 60.0, "g": 130.0})
    ok = observe(cube, "clementine_uvvis", geometry={"i": 80.0, "e": 60.0, "g": 130.0, "model": "hapke"})
    assert bool((ok["reflectance"] > 0).all())
    # rounding within the tolerance passes; NaN geometry stays NaN out; unlit is dark
    observe(cube, "clementine_uvvis", geometry={"i": 60.0, "e": 0.0, "g": 60.004})
    nan = observe(cube, "clementine_uvvis", geometry={"i": xr.DataArray([np.nan, 95.0, 60.0], dims="lon"),
                                                       "e": 0.0, "g": xr.DataArray([60.0, 95.0, 60.0], dims="lon")})
    r = nan["reflectance"].sel(band="R750").values[0]
    assert np.isnan(r[0]) and r[1] == 0.0 and r[2] > 0


@pytest.mark.parametrize("table,match", [
    ({"name": ["B1"], "center_nm": [750.0], "fwhm_nm": [0.0]}, "band FWHM .* positive"),
    ({"name": ["B1"], "center_nm": [750.0], "fwhm_nm": [-10.0]}, "band FWHM .* positive"),
    ({"name": ["B1"], "center_nm": [750.0], "fwhm_nm": [np.nan]}, "band FWHM .* positive"),
    ({"name": ["B1"], "center_nm": [np.nan], "fwhm_nm": [10.0]}, "band centre of B1 is not a finite number"),
    ({"name": ["B1", "B1"], "center_nm": [750.0, 950.0], "fwhm_nm": [10.0, 10.0]}, "repeats band names"),
    ({"name": [], "center_nm": [], "fwhm_nm": []}, "has no bands"),
])
def test_custom_band_table_is_validated(table, match):
    wl = np.arange(260.0, 2601.0, 20.0)
    with pytest.raises(InputError, match=match):
        resample_to_instrument(_cube(np.full((2, 3, wl.size), 0.1), wl), pd.DataFrame(table))


def test_custom_band_table_is_labelled_custom():
    wl = np.arange(260.0, 2601.0, 20.0)
    ob = observe(_cube(np.full((2, 3, wl.size), 0.1), wl), INSTRUMENTS["lro_wac"].iloc[:2])
    assert ob.attrs["instrument"] == "custom"
    assert ob["reflectance"].attrs["long_name"] == "simulated custom reflectance"


def test_band_value_of_a_parabola_is_the_truncated_gaussian_variance():
    """Band value = sum R S / sum S with a Gaussian S of the band's FWHM, truncated at 3 sigma (module
    docstring). For R = 0.1 + 1e-6 (lambda - c)^2 it is 0.1 + 1e-6 sigma^2 [1 - 6 phi(3)/erf(3/sqrt 2)]:
    FWHM 40 nm, sigma = 40/(2 sqrt(2 ln 2)) = 16.986436 nm, sigma^2 = 288.53901 nm^2, phi(3) = 0.0044318,
    erf(3/sqrt 2) = 0.9973002, factor 0.9733369, variance 280.846 nm^2 (FWHM read as 2 sigma: 389.3;
    cut at 1 sigma: 84.0). The 0.5 nm integration grid and the 1 nm spectral grid add well under 1 nm^2.
    """
    wl = np.arange(600.0, 901.0, 1.0)
    spec = xr.DataArray(0.1 + 1e-6 * (wl - 750.0) ** 2, dims="wavelength", coords={"wavelength": wl})
    band = pd.DataFrame({"name": ["B"], "center_nm": [750.0], "fwhm_nm": [40.0]})
    value = float(resample_to_instrument(spec, band).sel(band="B"))
    assert (value - 0.1) * 1e6 == pytest.approx(280.846, abs=1.0)


def test_stripes_and_calibration_errors_have_the_documented_spread():
    """Per-column stripe gain 1 + N(0, stripes) and offset N(0, 0.01 stripes); per-band gain 1 + N(0, sigma)
    and offset N(0, sigma) for scalar errors (observe's docstring). 4000 columns: the sample standard
    deviations lie within 5 % of 0.1 and 0.001 (their relative error is about 1/sqrt(2 * 4000) = 1.1 %)."""
    wl = np.arange(700.0, 801.0, 5.0)
    cube = xr.DataArray(np.full((1, 4000, wl.size), 0.1), dims=("lat", "lon", "wavelength"),
                        coords={"wavelength": wl})
    band = pd.DataFrame({"name": ["B"], "center_nm": [750.0], "fwhm_nm": [10.0]})
    ob = observe(cube, band, stripes=0.1, seed=0)
    assert float(ob["stripe_gain"].std()) == pytest.approx(0.1, rel=0.05)
    assert float(ob["stripe_gain"].mean()) == pytest.approx(1.0, abs=0.01)
    assert float(ob["stripe_offset"].std()) == pytest.approx(0.001, rel=0.05)
    cal = observe(_cube(np.full((2, 3, 118), 0.1), np.arange(260.0, 2601.0, 20.0)), "kaguya_mi",
                  gain_error=0.05, offset_error=0.01, seed=0)
    assert np.all(np.abs(cal["gain"].values - 1.0) < 5 * 0.05)  # centred on 1, not on 0
    assert np.all(np.abs(cal["offset"].values) < 5 * 0.01)


def test_observe_refuses_a_phase_angle_below_the_difference_of_incidence_and_emission():
    """A spherical triangle needs |i - e| <= g <= i + e: i = 60, e = 0 forces g = 60; g = 30 is impossible."""
    wl = np.arange(260.0, 2601.0, 20.0)
    with pytest.raises(InputError, match="impossible geometry"):
        observe(_cube(np.full((2, 3, wl.size), 0.1), wl), "clementine_uvvis",
                geometry={"i": 60.0, "e": 0.0, "g": 30.0})
