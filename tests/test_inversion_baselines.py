"""Known-answer tests of the classical oxide algorithms and the scikit-learn baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.inversion import baselines as bl


@pytest.fixture(scope="module")
def stations(mirror):
    """The 36 real Clementine sampling-station spectra with measured FeO/TiO2 (needs the mirror)."""
    from workbench.catalog import open_table

    return open_table("clementine_sample_stations")


# A hand-computed point: R415=0.06, R750=0.10, R950=0.11 (R950/R750 = 1.1)
R415, R750, R950 = 0.06, 0.10, 0.11


def test_lucey2000_feo_known_answer():
    theta = math.atan((1.19 - 1.1) / (0.10 - 0.08))  # = atan(4.5)
    assert bl.lucey_feo(R750, R950) == pytest.approx(17.427 * theta - 7.565, abs=1e-9)
    assert bl.lucey_feo(R750, R950) == pytest.approx(15.9985, abs=1e-3)


def test_lucey2000_tio2_known_answer():
    theta = math.atan((0.6 - 0.42) / 0.10)  # = atan(1.8)
    assert bl.lucey_tio2(R415, R750) == pytest.approx(3.708 * theta**5.979, rel=1e-9)
    assert bl.lucey_tio2(R415, R750) == pytest.approx(5.3640, abs=1e-3)


def test_omat_wilcox_lawrence_known_answers():
    assert bl.omat_lucey2000(R750, R950) == pytest.approx(math.hypot(0.02, 0.09), rel=1e-9)
    wil = -137.97 * (0.10 * math.sin(1.3885) + 1.1 * math.cos(1.3885)) + 57.46
    assert bl.wilcox2005_feo(R750, R950) == pytest.approx(wil, rel=1e-9)
    assert bl.wilcox2005_feo(R750, R950) == pytest.approx(16.378, abs=1e-3)
    t = (1.22 - 1.1) / (0.10 - 0.04)  # = 2
    assert bl.lawrence2002_feo(R750, R950) == pytest.approx(5.7 * (-0.147 + 0.372 * t - 0.036 * t * t) + 2.15)
    assert bl.lawrence2002_feo(R750, R950) == pytest.approx(4.7321, abs=1e-4)


def test_lucey_on_real_stations(stations):
    """The published algorithm reproduces the documented ~1.24 / 0.97 wt% RMSE on the 36 stations."""
    feo = bl.lucey_feo(stations.R750.values, stations.R950.values)
    tio2 = bl.lucey_tio2(stations.R415.values, stations.R750.values)
    assert np.sqrt(np.mean((feo - stations.FeO_wt_pct) ** 2)) == pytest.approx(1.24, abs=0.01)
    assert np.sqrt(np.mean((tio2 - stations.TiO2_wt_pct) ** 2)) == pytest.approx(0.97, abs=0.01)


def test_nan_propagates_and_negative_raises():
    r750 = np.array([0.1, np.nan])
    out = bl.lucey_feo(r750, np.array([0.11, 0.11]))
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(InputError, match="negative"):
        bl.lucey_feo(np.array([0.1, -0.01]), np.array([0.11, 0.11]))


def test_refit_recovers_known_constants():
    rng = np.random.default_rng(0)
    r750 = rng.uniform(0.08, 0.25, 200)
    r950 = r750 * rng.uniform(1.0, 1.2, 200)
    r415 = r750 * rng.uniform(0.5, 0.7, 200)
    truth_fe = dict(x0=0.05, y0=1.25, slope=15.0, intercept=-5.0)
    fe = bl.lucey_feo(r750, r950, **truth_fe)
    fit = bl.fit_lucey_feo(r750, r950, fe)
    assert fit.train_rmse < 1e-4
    for k, v in truth_fe.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-3, abs=1e-4)
    truth_ti = dict(x0=0.0, y0=0.45, a=4.0, b=5.0)
    ti = bl.lucey_tio2(r415, r750, **truth_ti)
    fit = bl.fit_lucey_tio2(r415, r750, ti)
    assert fit.train_rmse < 1e-3
    assert fit.params["b"] == pytest.approx(5.0, rel=1e-2)


def test_classical_maps_on_cube():
    wl = [415.0, 750.0, 900.0, 950.0, 1000.0]
    vals = np.array([R415, R750, 0.105, R950, 0.112])[:, None, None] * np.ones((5, 2, 3))
    cube = xr.DataArray(vals, dims=("band", "lat", "lon"),
                        coords={"band": list(bl.CLEMENTINE_BANDS), "wavelength": ("band", wl)})
    ds = bl.classical_maps(cube)
    assert ds.FeO_lucey2000.attrs["units"] == "wt%"
    np.testing.assert_allclose(ds.FeO_lucey2000.values, 15.9985, atol=1e-3)
    with pytest.raises(InputError, match="950"):
        bl.classical_maps(cube.isel(band=[0, 1, 2]))


def _cube_with(value, band="R750"):
    wl = [415.0, 750.0, 900.0, 950.0, 1000.0]
    vals = np.array([R415, R750, 0.105, R950, 0.112])[:, None, None] * np.ones((5, 4, 6))
    cube = xr.DataArray(vals, dims=("band", "lat", "lon"),
                        coords={"band": list(bl.CLEMENTINE_BANDS), "wavelength": ("band", wl)})
    cube.loc[{"band": band}] = xr.where((cube.lat == 1) & (cube.lon == 2), value, cube.sel(band=band))
    return cube.assign_coords(lat=np.arange(4), lon=np.arange(6))


def test_zero_reflectance_is_no_measurement_and_lazy_negative_is_refused():
    ds = bl.classical_maps(_cube_with(0.0))  # R750 = 0 used to give FeO -34.9, TiO2 55.2, Wilcox -inf
    for v in ds.data_vars:
        assert np.isnan(ds[v].values[1, 2]) and np.isfinite(ds[v].values[0, 0]), v
    assert math.isnan(bl.lucey_feo(0.0, 0.11)) and math.isnan(bl.omat_lucey2000(0.1, 0.0))  # no ZeroDivisionError
    lazy = bl.classical_maps(_cube_with(-0.05).chunk({"lat": 2}))  # observe() returns dask cubes
    for v in lazy.data_vars:
        with pytest.raises(InputError, match="negative"):
            lazy[v].compute()
    xr.testing.assert_allclose(bl.classical_maps(_cube_with(0.0).chunk({"lat": 2})).compute(), ds)
    import pandas as pd

    r750 = pd.Series([R750, 0.0, R750], index=[7, 8, 9])  # station tables: the index stays, for alignment
    feo = bl.lucey_feo(r750, pd.Series([R950] * 3, index=[7, 8, 9]))
    assert isinstance(feo, pd.Series) and list(feo.index) == [7, 8, 9] and np.isnan(feo[8])


@pytest.mark.parametrize("kind", bl.SKLEARN_KINDS)
def test_sklearn_baselines_learn_a_simple_law(kind):
    rng = np.random.default_rng(1)
    X = rng.uniform(0.05, 0.3, (400, 5))
    Y = np.c_[20 * X[:, 3] / X[:, 1], 5 * np.log(X[:, 0])]
    m = bl.SklearnInverter(kind, size=30).fit(X[:300], Y[:300], [415, 750, 900, 950, 1000])
    P = m.predict(np.r_[X[300:], np.full((1, 5), np.nan)])
    assert P.shape == (101, 2) and np.isnan(P[-1]).all()
    r2 = 1 - np.sum((P[:-1] - Y[300:]) ** 2, 0) / np.sum((Y[300:] - Y[300:].mean(0)) ** 2, 0)
    assert (r2 > 0.6).all()  # piecewise-constant forests are the weakest here


def test_refit_predict_reproduces_the_training_oxides_and_the_fitted_origin():
    """A noise-free refit must give back the generating origin under its own name and predict with it.

    The synthetic TiO2 is the Lucey (2000) form with origin (x0, y0) = (0, 0.45), a = 4, b = 5 (all
    R415/R750 = 0.5...0.7 > y0, so theta > 0 and the power law is defined); FeO with (0.05, 1.25, 15, -5).
    The published constants would predict up to 3.6 wt% TiO2 / 33 wt% FeO away from these values.
    """
    rng = np.random.default_rng(0)
    r750 = rng.uniform(0.08, 0.25, 200)
    r950 = r750 * rng.uniform(1.0, 1.2, 200)
    r415 = r750 * rng.uniform(0.5, 0.7, 200)
    ti = bl.lucey_tio2(r415, r750, x0=0.0, y0=0.45, a=4.0, b=5.0)
    fit = bl.fit_lucey_tio2(r415, r750, ti)
    assert fit.params["x0"] == pytest.approx(0.0, abs=1e-4)
    assert fit.params["y0"] == pytest.approx(0.45, abs=1e-4)
    np.testing.assert_allclose(fit.predict(r415, r750), ti, rtol=0, atol=1e-3)
    fe = bl.lucey_feo(r750, r950, x0=0.05, y0=1.25, slope=15.0, intercept=-5.0)
    fit = bl.fit_lucey_feo(r750, r950, fe)
    np.testing.assert_allclose(fit.predict(r750, r950), fe, rtol=0, atol=1e-3)


def test_lucey_tio2_is_zero_for_spectra_redder_than_the_origin():
    # R415/R750 = 0.03/0.10 = 0.3 < y0 = 0.42: theta_Ti = atan2(0.3 - 0.42, 0.10 - 0) = -0.876 rad < 0,
    # which Lucey et al. (2000) read as no detectable ilmenite: 0 wt% (|theta| would give 3.708*0.876^5.979
    # = 1.68 wt%).
    assert float(bl.lucey_tio2(0.03, 0.10)) == 0.0
    assert float(bl.lucey_tio2_angle(0.03, 0.10)) == pytest.approx(-math.atan(1.2), rel=1e-12)


def test_infinite_and_percent_reflectance_are_refused_not_turned_into_numbers():
    """inf gave FeO −7.565 and TiO2 0, and a cube in percent gave FeO −7.3 and Wilcox −1190 wt%."""
    with pytest.raises(InputError, match="infinite"):
        bl.lucey_feo(np.array([np.inf]), np.array([0.1]))
    with pytest.raises(InputError, match="infinite"):
        bl.lucey_tio2(np.array([0.05]), np.array([np.inf]))
    with pytest.raises(InputError, match="above 1.5"):
        bl.classical_maps(_cube_with(R750) * 100)
    with pytest.raises(InputError, match="units '%'"):
        bl.classical_maps(_cube_with(R750).assign_attrs(units="%"))
    with pytest.raises(InputError, match="above 1.5"):
        bl.classical_maps(_cube_with(50.0).chunk({"lat": 2})).compute()  # lazily, block by block


def test_refits_count_the_measured_rows_and_sklearn_targets_must_match_the_rows():
    zeros = np.zeros(8)
    with pytest.raises(InputError, match="at least 5 rows.*got 0"):
        bl.fit_lucey_feo(zeros, zeros, np.full(8, 10.0))
    r = np.r_[0.1, 0.12, np.zeros(6)]
    with pytest.raises(InputError, match="got 2"):
        bl.fit_lucey_tio2(r, r, np.full(8, 1.0))
    X = np.random.default_rng(0).uniform(0.05, 0.3, (10, 5))
    wl = list(bl.CLEMENTINE_BANDS.values())
    with pytest.raises(InputError, match="X has 10 rows, Y has shape \\(20,\\)"):
        bl.SklearnInverter("pls").fit(X, np.ones(20), wl)
    with pytest.raises(InputError, match="nothing to fit"):
        bl.SklearnInverter("pls").fit(X, np.full(10, np.nan), wl)


def test_lucey_tio2_with_a_refitted_origin_known_answer():
    """theta_Ti = atan[(R415/R750 - y0)/(R750 - x0)] (Lucey et al. 2000) with a refitted origin x0 = 0.02
    (Kaguya MI or WAC constants differ from Clementine's x0 = 0, which hides the sign of x0):
    R415 = 0.06, R750 = 0.10, y0 = 0.42: atan(0.18/0.08) = atan(2.25) = 1.1525720 rad,
    TiO2 = 3.708 * 1.1525720^5.979 = 8.6667 wt% (R750 + x0 would give atan(1.5) = 0.9827937 rad, 3.41 wt%).
    """
    assert float(bl.lucey_tio2_angle(R415, R750, x0=0.02)) == pytest.approx(math.atan(2.25), rel=1e-12)
    assert float(bl.lucey_tio2(R415, R750, x0=0.02)) == pytest.approx(8.66669, abs=1e-4)
    fit = bl.LuceyFit("TiO2", {"x0": 0.02, "y0": 0.42, "a": 3.708, "b": 5.979}, 0.0, 5)
    assert float(fit.predict(R415, R750)) == pytest.approx(8.66669, abs=1e-4)


def test_classical_maps_give_every_algorithm_its_own_bands():
    """Each map of classical_maps at the hand-computed point R415 = 0.06, R750 = 0.10, R950 = 0.11
    (see the known-answer tests above): Lucey FeO 15.9985, Lucey TiO2 3.708 * atan(1.8)^5.979 = 5.3640,
    Wilcox 16.3780, Lawrence 4.7321 wt%, OMAT = hypot(0.02, 0.09) = 0.0921954 (R750 and R950 swapped:
    hypot(0.03, 0.1/0.11 - 1.19) = 0.2825)."""
    wl = [415.0, 750.0, 900.0, 950.0, 1000.0]
    vals = np.array([R415, R750, 0.105, R950, 0.112])[:, None, None] * np.ones((5, 1, 2))
    cube = xr.DataArray(vals, dims=("band", "lat", "lon"),
                        coords={"band": list(bl.CLEMENTINE_BANDS), "wavelength": ("band", wl)})
    ds = bl.classical_maps(cube)
    expected = {"FeO_lucey2000": 15.9985, "TiO2_lucey2000": 5.3640, "FeO_wilcox2005": 16.3780,
                "FeO_lawrence2002": 4.7321, "OMAT": 0.0921954}
    for name, value in expected.items():
        np.testing.assert_allclose(ds[name].values, value, atol=1e-4, err_msg=name)
