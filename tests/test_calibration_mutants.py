"""Known-answer tests for cross-calibration, destriping, stripe power and sample-site spectra (mutation
review of ``workbench/calibration.py`` and ``workbench/site_spectra.py``: each test fails on a mutant of the
source that the rest of the suite let through, or showed a defect, since fixed).

Fast and offline: tiny hand-built cubes and tables whose answers are worked out by hand (linear fields,
exact gains and offsets, a single striped column, piecewise-constant residuals); no synthetic Moon, no data
mirror, no network.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from workbench import calibration as cal
from workbench.errors import InputError
from workbench.geo import great_circle_distance
from workbench.site_spectra import site_spectra, spectra_wide


def _cube(values, lon=None, lat=None, bands=("b1",), units="1", wavelength=None) -> xr.DataArray:
    """A (band, lat, lon) cube from a (band, lat, lon) or (lat, lon) array on a 1-degree grid."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 2:
        v = v[None]
    ny, nx = v.shape[1:]
    coords = {"band": list(bands),
              "lat": np.arange(ny, dtype=float)[::-1] if lat is None else np.asarray(lat, dtype=float),
              "lon": np.arange(nx, dtype=float) if lon is None else np.asarray(lon, dtype=float)}
    if wavelength is not None:
        coords["wavelength"] = ("band", list(wavelength))
    return xr.DataArray(v, dims=("band", "lat", "lon"), coords=coords, attrs={"units": units})


def _ramp(ny=12, nx=12) -> np.ndarray:
    """A reference with contrast inside every 3 x 3 block (no two pixels alike): 0.1 + 0.01 i + 0.003 j^1.5."""
    i, j = np.mgrid[0:ny, 0:nx].astype(float)
    return 0.1 + 0.01 * i + 0.003 * j**1.5


# --------------------------------------------------------------------------------------- check_same_grid
def test_units_that_differ_only_by_surrounding_spaces_are_the_same_units():
    t = _cube(np.ones((3, 4)), units="1 ")
    r = _cube(np.ones((3, 4)), units="1")
    a, b = cal.check_same_grid(t, r)
    assert a.sizes == b.sizes == {"band": 1, "lat": 3, "lon": 4}


def test_grids_half_a_percent_apart_in_spacing_are_different_grids():
    """Same first pixel centre, spacing 1.0 vs 1.005 deg: not the same grid (pixel 19 is 0.1 px off)."""
    t = _cube(np.ones((3, 20)), lon=np.arange(20) * 1.0)
    r = _cube(np.ones((3, 20)), lon=np.arange(20) * 1.005)
    with pytest.raises(InputError, match=r"different grids: 'lon' spacing 1 vs 1.005"):
        cal.check_same_grid(t, r)


def test_images_that_share_a_single_column_overlap_on_that_column():
    t = _cube(np.ones((3, 6)), lon=np.arange(0.0, 6.0))  # lon 0..5
    r = _cube(np.ones((3, 6)), lon=np.arange(5.0, 11.0))  # lon 5..10
    a, b = cal.check_same_grid(t, r)
    assert a.lon.values.tolist() == [5.0] and b.lon.values.tolist() == [5.0]


def test_pixel_centres_differing_by_floating_point_noise_are_snapped_together():
    """1e-9 deg on a 1 deg grid is rounding, not a shift: every pixel pairs up (an exact inner join would
    find no common pixel), and the target takes the reference's centres."""
    t = _cube(np.ones((3, 5)))
    r = t.assign_coords(lon=t.lon + 1e-9)
    a, b = cal.check_same_grid(t, r)
    assert a.sizes["lon"] == b.sizes["lon"] == 5
    np.testing.assert_array_equal(a.lon.values, r.lon.values)


def test_check_same_grid_returns_the_reference_in_the_target_dimension_order():
    t = _cube(np.ones((3, 5)))
    r = t.transpose("lon", "band", "lat")
    a, b = cal.check_same_grid(t, r)
    assert a.dims == b.dims == ("band", "lat", "lon")


# ------------------------------------------------------------------------------------------- estimators
def test_theil_iv_skips_pairs_without_separation():
    """y = 2x + 1, ranked by z = 0..7: pairs (x 0, 0), (1, 5), (2, 6), (3, 7). The first pair has dx = 0
    (slope 0/0) and is left out; the other three give slope 2 exactly, offset median(y - 2x) = 1."""
    x = np.array([0.0, 1, 2, 3, 0, 5, 6, 7])
    y = 2 * x + 1
    slope, offset = cal._theil_iv(x, y, np.arange(8.0))
    assert slope == pytest.approx(2.0, abs=1e-12) and offset == pytest.approx(1.0, abs=1e-12)


def test_correlation_range_removes_the_mean_first():
    """White noise on a constant level of 5 is uncorrelated: range 1 (without the mean removed the
    constant dominates every lag and the search limit would come back)."""
    rng = np.random.default_rng(0)
    assert cal.correlation_range(rng.normal(size=(50, 50)) + 5.0) == 1


def test_correlation_range_of_both_axes_is_the_larger_and_limited_to_a_quarter():
    """Stripes constant down each column (40 x 60): along rows they never decorrelate, so the search
    limit, a quarter of 40 = 10, is returned even with max_lag=100; across columns they are white (1).
    axis=None reports the larger of the two."""
    rng = np.random.default_rng(1)
    s = np.tile(rng.normal(size=60), (40, 1)) + 1e-3 * rng.normal(size=(40, 60))
    assert cal.correlation_range(s, axis=1) == 1
    assert cal.correlation_range(s, axis=0, max_lag=100) == 10
    assert cal.correlation_range(s, max_lag=100) == 10


def test_correlation_range_needs_the_autocorrelation_strictly_below_the_threshold():
    """Rows 1, 0, -1, 0, ... (mean 0, variance 1/2): the lag-1 autocorrelation is exactly 0, which is not
    below a threshold of 0; at lag 2 it is -1 (products -1, 0, -1, 0, ...: mean -1/2 over variance 1/2)."""
    col = np.tile([1.0, 0.0, -1.0, 0.0], 4)[:, None]
    assert cal.correlation_range(col, threshold=0.0, axis=0) == 2


def test_bootstrap_tile_is_one_more_than_the_correlation_range():
    """Residuals constant over runs of 3 rows (independent runs, white across columns): autocorrelation
    2/3, 1/3, 0 at lags 1-3, so the range is 3 rows and the tile 4 rows; columns: range 1, tile 2."""
    r = np.repeat(np.random.default_rng(0).normal(size=(40, 200)), 3, axis=0)
    assert cal.correlation_range(r, axis=0) == 3
    assert cal.bootstrap_tiles(r) == (4, 2)


def test_bootstrap_tiles_of_a_trend_are_narrowed_columns_first():
    """A plane correlated along both axes (40 x 40) starts as one whole-image tile; halving the columns
    first on ties: (40, 20) -> (20, 20) -> (20, 10), the first shape with 8 tiles."""
    yy, xx = np.mgrid[0:40, 0:40]
    assert cal.bootstrap_tiles((yy + xx).astype(float)) == (20, 10)


def test_an_explicit_tile_giving_fewer_than_eight_tiles_is_refused():
    ref = _cube(_ramp())
    with pytest.raises(InputError, match="into 4 tiles"):  # 12 x 12 in 6 x 6 tiles
        cal.fit_cross_calibration(2 * ref + 0.1, ref, block=1, tile=6, n_boot=5)


def test_block_bootstrap_resamples_whole_column_strips_when_residuals_are_striped():
    """Column offsets in the target (whole-column residual stripes) on a 12 x 16 image: the tile is the
    whole 12-row column by 2 columns (8 tiles), and the replicates are draws of those 2-column strips, rebuilt
    here from the reported tile shape with the same generator (seed 0): tile id = column // 2."""
    rng = np.random.default_rng(3)
    ref = _cube(_ramp(12, 16) + 0.002 * rng.normal(size=(12, 16)))
    stripes = 0.004 * rng.normal(size=16)
    tgt = ref * 0.97 - 0.003 + xr.DataArray(stripes, dims="lon")
    c = cal.fit_cross_calibration(tgt, ref, block=1, n_boot=30, confidence=0.8, seed=0, min_pixels=10)
    assert c["bootstrap_tile"].values.tolist() == [[12, 2]]
    X = ref.values[0]
    x, y, z = X.ravel(), tgt.values[0].ravel(), cal._neighbour_instrument(X).ravel()
    cols = np.arange(x.size) % 16
    members = [np.flatnonzero(cols // 2 == k) for k in range(8)]
    draw = np.random.default_rng(0)
    boots = np.array([cal._theil_iv(x[idx], y[idx], z[idx]) for idx in
                      (np.concatenate([members[k] for k in draw.integers(0, 8, 8)]) for _ in range(30))])
    assert float(c["gain_low"][0]) == pytest.approx(np.quantile(boots[:, 0], 0.1), rel=1e-12)
    assert float(c["gain_high"][0]) == pytest.approx(np.quantile(boots[:, 0], 0.9), rel=1e-12)


def test_sen_offset_interval_is_the_union_over_the_slope_interval_and_the_default_for_theil_sen():
    """ci='sen' (the default of method='theil-sen'): slope interval from scipy's theilslopes; offset
    interval = [min, max] of the median-residual intervals at the low, central and high slopes."""
    rng = np.random.default_rng(2)
    ref = _cube(_ramp() + 0.005 * rng.normal(size=(12, 12)))
    tgt = ref * 0.97 - 0.003 + 0.003 * rng.normal(size=(1, 12, 12))
    c = cal.fit_cross_calibration(tgt, ref, method="theil-sen", block=1, min_pixels=10)
    assert c.attrs["ci"] == "sen"
    x, y = ref.values[0].ravel(), tgt.values[0].ravel()
    res = stats.theilslopes(y, x, alpha=0.05, method="joint")
    assert float(c["gain_low"][0]) == pytest.approx(res.low_slope, rel=1e-12)
    assert float(c["gain_high"][0]) == pytest.approx(res.high_slope, rel=1e-12)
    cis = [cal._median_ci(y - s * x, 0.05) for s in (res.low_slope, res.slope, res.high_slope)]
    lo, hi = min(v[0] for v in cis), max(v[1] for v in cis)
    assert (lo, hi) != cis[1]  # the union is wider than the interval at the central slope
    assert float(c["offset_low"][0]) == pytest.approx(lo, abs=1e-15)
    assert float(c["offset_high"][0]) == pytest.approx(hi, abs=1e-15)


# --------------------------------------------------------------------------------- fit_cross_calibration
@pytest.mark.parametrize("confidence", [0.0, 1.0])
def test_confidence_of_zero_or_one_is_refused(confidence):
    ref = _cube(_ramp())
    with pytest.raises(InputError, match=r"confidence must lie in \(0, 1\)"):
        cal.fit_cross_calibration(ref, ref, confidence=confidence)


def test_an_overlap_smaller_than_one_block_is_refused_as_such():
    ref = _cube(_ramp(2, 2))
    with pytest.raises(InputError, match=r"overlap \(2x2 pixels\) is smaller than one 3x3 block"):
        cal.fit_cross_calibration(ref, ref, block=3, min_pixels=1)


def test_min_pixels_is_the_exact_threshold():
    ref = _cube(_ramp())  # 144 pixels
    tgt = 2 * ref + 0.1
    kw = dict(method="theil-sen", block=1)
    assert int(cal.fit_cross_calibration(tgt, ref, min_pixels=144, **kw)["n_pixels"][0]) == 144
    with pytest.raises(InputError, match="144 common finite pixels, need at least 145"):
        cal.fit_cross_calibration(tgt, ref, min_pixels=145, **kw)


def test_constant_reference_and_anticorrelated_images_are_refused():
    ref = _cube(_ramp())
    with pytest.raises(InputError, match="constant over the overlap"):
        cal.fit_cross_calibration(ref, ref * 0 + 0.2, block=1)
    with pytest.raises(InputError, match=r"fitted gain for band .*b1.* is -1;.*same ground"):
        cal.fit_cross_calibration(0.5 - ref, ref, block=1)


def test_fit_errors_name_the_band_plainly():
    ref = _cube(_ramp())
    with pytest.raises(InputError, match=r"fitted gain for band 'b1' is"):
        cal.fit_cross_calibration(0.5 - ref, ref, block=1)
    with pytest.raises(InputError, match=r"fit band 'b1': 144 common"):
        cal.fit_cross_calibration(ref, ref, block=1, min_pixels=145)


def test_residual_summaries_known_answer_with_one_outlier():
    """target = 2 reference + 0.1 exactly, except one pixel 1.0 too bright: the robust fit is gain 2, offset
    0.1; after the fit every residual (y - 0.1)/2 - x is 0 but the outlier's, 0.5, so over 144 pixels
    rmse_after = 0.5/12 and bias_after = 0.5/144 (the median would be 0); before, y - x = x + 0.1 (+1)."""
    x = _ramp()
    y = 2 * x + 0.1
    y[4, 7] += 1.0
    c = cal.fit_cross_calibration(_cube(y), _cube(x), method="theil-sen", block=1, min_pixels=10)
    assert float(c["gain"][0]) == pytest.approx(2.0, abs=1e-12)
    assert float(c["offset"][0]) == pytest.approx(0.1, abs=1e-12)
    assert float(c["rmse_after"][0]) == pytest.approx(0.5 / 12, rel=1e-9)
    assert float(c["bias_after"][0]) == pytest.approx(0.5 / 144, rel=1e-9)
    assert float(c["bias_before"][0]) == pytest.approx(x.mean() + 0.1 + 1 / 144, rel=1e-12)
    d = x + 0.1
    d[4, 7] += 1.0
    assert float(c["rmse_before"][0]) == pytest.approx(np.sqrt(np.mean(d**2)), rel=1e-12)


def test_block_fit_counts_blocks_but_summarises_full_resolution_pixels():
    """block=3 on 12 x 12: 16 block means are fitted (n_pixels = 16), while rmse/bias are over the 144
    full-resolution pixels: rmse_before = sqrt(mean((x + 0.1)^2)) over pixels, not over block means."""
    x = _ramp()
    c = cal.fit_cross_calibration(_cube(2 * x + 0.1), _cube(x), method="theil-sen", block=3, min_pixels=10)
    assert int(c["n_pixels"][0]) == 16
    assert float(c["gain"][0]) == pytest.approx(2.0, abs=1e-12)
    assert float(c["rmse_before"][0]) == pytest.approx(np.sqrt(np.mean((x + 0.1) ** 2)), rel=1e-12)
    blocks = x.reshape(4, 3, 4, 3).mean(axis=(1, 3))
    assert abs(np.sqrt(np.mean((x + 0.1) ** 2)) - np.sqrt(np.mean((blocks + 0.1) ** 2))) > 1e-4
    assert float(c["rmse_after"][0]) == pytest.approx(0.0, abs=1e-12)


def test_coefficients_carry_units_wavelengths_and_settings():
    """In percent images the gain is dimensionless ('1') and the offset is in percent; the band's
    wavelength coordinate and the seed are kept."""
    x = _ramp() * 100
    ref = _cube(x, units="%", wavelength=[750.0])
    c = cal.fit_cross_calibration(2 * ref + 1.0, ref, method="theil-sen", block=1, min_pixels=10, seed=7)
    assert c["gain"].attrs["units"] == c["gain_low"].attrs["units"] == c["gain_high"].attrs["units"] == "1"
    assert c["offset"].attrs["units"] == "%" and c["rmse_after"].attrs["units"] == "%"
    assert c["wavelength"].values.tolist() == [750.0]
    assert c.attrs["seed"] == 7 and c.attrs["block"] == 1 and c.attrs["method"] == "theil-sen"


# -------------------------------------------------------------------------------- apply and residuals
def _coeffs():
    return xr.Dataset({"gain": ("band", [2.0, 4.0]), "offset": ("band", [0.1, -0.2])},
                      coords={"band": ["b1", "b2"]})


def test_apply_inverts_the_model_band_by_band_label():
    """(target - offset)/gain, matched by band name: an image stored b2, b1 gets b2's gain 4 and offset
    -0.2 on its first band: (1.0 + 0.2)/4 = 0.3; b1: (1.0 - 0.1)/2 = 0.45."""
    img = _cube(np.ones((2, 2, 3)), bands=("b2", "b1"))
    out = cal.apply_cross_calibration(img, _coeffs())
    np.testing.assert_allclose(out.sel(band="b2").values, 0.3, rtol=1e-12)
    np.testing.assert_allclose(out.sel(band="b1").values, 0.45, rtol=1e-12)
    assert out.dims == img.dims


def test_apply_with_other_bands_is_an_input_error():
    with pytest.raises(InputError, match="mismatched band lists"):
        cal.apply_cross_calibration(_cube(np.ones((2, 2, 3)), bands=("b1", "b3")), _coeffs())


def test_residuals_are_target_minus_reference():
    r = cal.residuals(_cube(np.full((2, 3), 0.3)), _cube(np.full((2, 3), 0.1)))
    np.testing.assert_allclose(r.values, 0.2, rtol=1e-12)
    assert r.name == "residual"


# ----------------------------------------------------------------------------------------- destriping
def _striped_scene(ny=27, nx=31, j=15, g=1.1, o=0.01):
    """Every column the same along-track profile (9 x 0.1, 9 x 0.2, 9 x 0.3 interleaved); column j with
    gain g and offset o."""
    v = np.tile([0.1, 0.2, 0.3], ny // 3)
    truth = np.tile(v[:, None], (1, nx))
    obs = truth.copy()
    obs[:, j] = g * obs[:, j] + o
    dims = ("band", "y", "x")
    coords = {"band": ["b1"], "y": np.arange(ny) * 10.0, "x": np.arange(nx) * 10.0}
    return (xr.DataArray(obs[None], dims=dims, coords=coords, attrs={"units": "1"}),
            xr.DataArray(truth[None], dims=dims, coords=coords, attrs={"units": "1"}))


def test_robust_moments_recover_a_single_striped_column_exactly_and_ignore_a_spike():
    """Robust moment matching: median and IQR of every column are affine in its gain and offset, and the
    running medians of the column statistics are the unstriped values, so the striped column gets
    g = 1.1, o = 0.01 exactly and every other column g = 1, o = 0. A single 5.0 spike in column 5 moves
    neither its median nor its quartiles (9 x 0.3 -> 8 x 0.3 + 5.0), so column 5 is left as it is."""
    obs, truth = _striped_scene()
    obs[0, 2, 5] = 5.0  # a 0.3 pixel turned into a spike
    d = cal.destripe(obs, method="moments", window=11, robust=True)
    gain, off = d["stripe_gain"].values[0], d["stripe_offset"].values[0]
    assert gain[15] == pytest.approx(1.1, rel=1e-12) and off[15] == pytest.approx(0.01, abs=1e-12)
    np.testing.assert_allclose(np.delete(gain, 15), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.delete(off, 15), 0.0, rtol=0, atol=1e-12)
    expected = truth.values[0].copy()
    expected[2, 5] = 5.0
    np.testing.assert_allclose(d["destriped"].values[0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["neighbour", "moments"])
def test_destriped_image_is_obs_minus_offset_over_gain(method):
    """The documented correction: destriped = (obs - stripe_offset) / stripe_gain, column by column, with
    gain and offset stripes together (the neighbour method's offset is in observed units: G * b)."""
    rng = np.random.default_rng(4)
    ny, nx = 40, 48
    scene = 0.1 + 0.05 * np.sin(np.linspace(0, 5, ny))[:, None] + 0.002 * rng.normal(size=(ny, nx))
    obs = scene * (1 + 0.03 * rng.normal(size=nx)) + 0.003 * rng.normal(size=nx)
    img = xr.DataArray(obs[None], dims=("band", "y", "x"), coords={"band": ["b1"]}, attrs={"units": "1"})
    d = cal.destripe(img, method=method, window=15)
    g, o = d["stripe_gain"].values[0], d["stripe_offset"].values[0]
    assert np.abs(g - 1).max() > 0.01 and np.abs(o).max() > 1e-4  # both corrections are in play
    np.testing.assert_allclose(d["destriped"].values[0], (obs - o) / g, rtol=1e-10, atol=1e-13)


def test_destripe_refuses_a_two_column_window_and_two_rows():
    obs, _ = _striped_scene()
    with pytest.raises(InputError, match="window must be at least 3 columns, got 2"):
        cal.destripe(obs, window=2)
    with pytest.raises(InputError, match="need at least 3 pixels along 'y'"):
        cal.destripe(obs.isel(y=slice(0, 2)))


def test_stripe_power_is_the_band_mean_of_the_column_profile_variance():
    """image = truth + a column offset profile per band: 0, 0.02 alternating (variance 1e-4) and 0, 0.04
    (4e-4): the stripe power is their mean, 2.5e-4."""
    truth = _cube(np.full((2, 6, 8), 0.2), bands=("b1", "b2"))
    prof = np.array([np.tile([0.0, 0.02], 4), np.tile([0.0, 0.04], 4)])
    img = truth + xr.DataArray(prof, dims=("band", "lon"), coords={"band": ["b1", "b2"]})
    assert cal.stripe_power(img, truth) == pytest.approx(2.5e-4, rel=1e-9)


def test_stripe_power_reduction_refuses_an_image_without_stripes():
    truth = _cube(np.full((6, 8), 0.2))
    with pytest.raises(InputError, match="no stripe power"):
        cal.stripe_power_reduction(truth, truth, truth)


def test_stripe_power_without_truth_uses_the_given_median_window():
    """A 10-column bump of 0.01 in 64 columns: a 31-column running median stays at the base level, so the
    high-passed profile is the bump itself (variance 0.01^2 p (1 - p), p = 10/64); a 3-column median
    follows the bump's edges, leaving nothing."""
    v = np.full((5, 64), 0.2)
    v[:, 27:37] += 0.01
    img = _cube(v)
    p = 10 / 64
    assert cal.stripe_power(img, window=31) == pytest.approx(1e-4 * p * (1 - p), rel=1e-9)
    assert cal.stripe_power(img, window=3) == pytest.approx(0.0, abs=1e-20)


# --------------------------------------------------------------------------------- geometry, experiment
def test_grazing_sun_is_unlit():
    """A flat surface with the sun 90 deg from the zenith: i = 90 deg exactly, unlit (NaN), e = 0."""
    dem = xr.DataArray(np.zeros((5, 5)), dims=("lat", "lon"),
                       coords={"lat": np.linspace(1, -1, 5), "lon": np.linspace(-1, 1, 5)})
    geo = cal.local_geometry(dem, phase=90.0)
    assert np.isnan(geo["i"].values).all() and np.allclose(geo["e"].values, 0.0)


def test_phase_experiment_refuses_a_region_below_four_by_four_before_any_work():
    lat, lon = np.arange(19.5, 9.0, -1.0), np.arange(0.5, 11.0)  # 11 x 11, 1 deg
    moon = xr.Dataset(coords={"lat": lat, "lon": lon})
    with pytest.raises(InputError, match="fewer than 4x4"):
        cal.phase_angle_experiment(moon, phases=(15.0,), region={"lat": slice(12.0, 10.0),
                                                                  "lon": slice(0.0, 10.0)})


# ---------------------------------------------------------------------------------- median interval
def test_median_interval_is_mirror_symmetric():
    """A distribution-free median interval is (X(r), X(n - r + 1)): the interval of -r is minus the
    interval of r. For 0..99 at 95 %: r = floor(50 - 9.8) = 40 (1-based), i.e. (39, 60) as values."""
    r = np.arange(100.0)
    lo, hi = cal._median_ci(r, 0.05)
    nlo, nhi = cal._median_ci(-r, 0.05)
    assert (lo, hi) == (-nhi, -nlo)


# ----------------------------------------------------------------------------------------- site spectra
def _site_cube(nlat=20, nlon=20, lat0=9.5, lon0=0.5, name=None, bands=("R750",), wavelength=(750.0,)):
    """A 1 deg cube, value = lon + 1000 * band index; lat from lat0 southwards, lon from lon0 eastwards."""
    lat = lat0 - np.arange(nlat)
    lon = lon0 + np.arange(nlon)
    data = np.stack([np.tile(lon, (nlat, 1)) + 1000.0 * k for k in range(len(bands))])
    coords = {"band": list(bands), "lat": lat, "lon": lon}
    if wavelength is not None:
        coords["wavelength"] = ("band", list(wavelength))
    return xr.DataArray(data, dims=("band", "lat", "lon"), coords=coords, attrs={"units": "1"}, name=name)


def _one(lat, lon, name="s"):
    return pd.DataFrame({"site": [name], "lat": [lat], "lon": [lon]})


def test_bad_radius_and_empty_or_blank_sites_are_input_errors():
    c = _site_cube()
    with pytest.raises(InputError, match="radius_km must be a positive number"):
        site_spectra(c, _one(0.0, 5.0), np.inf)
    with pytest.raises(InputError, match="non-empty pandas DataFrame"):
        site_spectra(c, _one(0.0, 5.0).iloc[:0], 10.0)
    with pytest.raises(InputError, match=r"column 'lat' \(latitude\) has 1 missing"):  # blank, not text
        site_spectra(c, pd.DataFrame({"site": ["s"], "lat": [" "], "lon": [5.0]}), 10.0)


def test_a_site_beyond_the_edge_pixel_is_outside_the_regional_cube():
    """The cube's pixels span lat -10..10 and lon 0..20 (1 deg, centres at half degrees): a site 0.3 deg
    beyond an edge is outside (within the old one-pixel margin it would take the edge pixel)."""
    c = _site_cube()
    for la, lo in ((10.3, 5.0), (-10.3, 5.0), (5.0, 20.3), (5.0, -0.3)):
        r = site_spectra(c, _one(la, lo), 10.0).iloc[0]
        assert r["footprint"] == "outside" and r["n_pixels"] == 0 and np.isnan(r["mean"])
    inner = site_spectra(c, _one(9.9, 19.9), 1.0).iloc[0]  # inside the corner pixel: its value
    assert inner["footprint"] == "nearest" and inner["mean"] == 19.5


def test_a_footprint_over_the_pole_holds_every_pixel_within_the_radius():
    """500 km from 80N (16.5 deg of arc) reaches over the pole into every longitude: n_pixels equals a
    brute-force count (a longitude window sized at the site's own latitude would cut it)."""
    lat = np.arange(89.5, 50.0, -1.0)
    lon = np.arange(-179.5, 180.0, 1.0)
    ones = xr.DataArray(np.ones((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                        name="x")
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    brute = int((great_circle_distance(80.0, 10.0, la, lo) <= 500.0).sum())
    r = site_spectra(ones, _one(80.0, 10.0), 500.0).iloc[0]
    assert r["n_pixels"] == brute and brute > 3000


def test_nearest_pixel_is_found_across_the_dateline():
    """Pixel centres at whole degrees -180..179 and 1N, 0, 1S (value lon + 1000 lat): a site at (0.1N,
    179.9E) lies 0.1 deg from the -180 centre (the same meridian as +180) and 0.9 deg from 179, and nearest
    the equator row; with a 1 km radius it takes the (0, -180) pixel."""
    lon = np.arange(-180.0, 180.0)
    lat = np.array([1.0, 0.0, -1.0])
    c = xr.DataArray((lon[None, :] + 1000.0 * lat[:, None])[None], dims=("band", "lat", "lon"),
                     coords={"band": ["R750"], "lat": lat, "lon": lon})
    r = site_spectra(c, _one(0.1, 179.9), 1.0).iloc[0]
    assert r["footprint"] == "nearest" and r["mean"] == -180.0


def test_std_ignores_nan_pixels_in_the_footprint():
    """35 km around (4.5N, 5.5E) holds the pixel and its 4 edge neighbours (values 4.5, 5.5, 5.5, 5.5,
    6.5 by longitude); with the east one NaN: 4 pixels, mean 5.25, population std sqrt(0.1875)."""
    c = _site_cube()
    c[0, 5, 6] = np.nan  # lat 4.5, lon 6.5
    r = site_spectra(c, _one(4.5, 5.5), 35.0).iloc[0]
    assert r["n_pixels"] == 4
    assert r["mean"] == pytest.approx(5.25, abs=1e-12)
    assert r["std"] == pytest.approx(np.sqrt(0.1875), abs=1e-12)


def test_table_attrs_and_unknown_wavelength():
    c = _site_cube(wavelength=None, name="refl")
    c.attrs["units"] = "%"
    t = site_spectra(c, _one(4.5, 5.5), 35.0)
    assert t.attrs["radius_km"] == 35.0
    assert t.attrs["units"]["mean"] == "%" and t.attrs["units"]["std"] == "%"
    assert np.isnan(t["wavelength"]).all()
    m = site_spectra(c.isel(band=0, drop=True).drop_vars([]), _one(4.5, 5.5), 35.0)
    assert m["band"].tolist() == ["refl"]  # a 2-D map is one band named after the array


def test_name_column_first_match_wins():
    sites = pd.DataFrame({"name": ["n1"], "site": ["s1"], "lat": [4.5], "lon": [5.5]})
    assert site_spectra(_site_cube(), sites, 35.0)["site"].tolist() == ["s1"]


def test_wide_table_keeps_site_and_band_order_and_takes_the_fewest_pixels():
    """Sites in the table's order (Z before A), bands in the cube's order (R950 before R750), and a site's
    n_pixels is its smallest count over bands (a NaN in one band leaves 4 of 5)."""
    c = _site_cube(bands=("R950", "R750"), wavelength=(950.0, 750.0))
    c[0, 5, 6] = np.nan  # R950 only
    sites = pd.DataFrame({"site": ["Z", "A"], "lat": [4.5, -4.5], "lon": [5.5, 12.5], "FeO": [9.0, 3.0]})
    w = spectra_wide(site_spectra(c, sites, 35.0))
    assert w["site"].tolist() == ["Z", "A"]
    assert [k for k in w.columns if k.startswith("R")] == ["R950", "R750", "R950_std", "R750_std"]
    assert w["n_pixels"].tolist() == [4, 5]
    assert w["FeO"].tolist() == [9.0, 3.0]


def test_wide_table_of_a_repeated_site_row_has_one_row_and_a_bad_table_is_refused():
    sites = pd.DataFrame({"site": ["A", "A"], "lat": [4.5, 4.5], "lon": [5.5, 5.5], "FeO": [9.0, 9.0]})
    w = spectra_wide(site_spectra(_site_cube(), sites, 35.0))
    assert len(w) == 1 and w.loc[0, "FeO"] == 9.0
    with pytest.raises(InputError, match="expected a site_spectra table"):
        spectra_wide(pd.DataFrame({"site": ["A"], "mean": [1.0]}))


# ------------------------------------------------------------------------------ neighbour reference at edges
def test_neighbour_reference_leaves_the_column_itself_out_at_the_edges():
    """Columns 1, 2, 4, 8 (half = 1): the edge columns' references are their single inner neighbour (2 and 4),
    not a mirrored window that counts the column itself; a periodic grid wraps (column 0 sees 2 and 8)."""
    c = np.array([[1.0, 2.0, 4.0, 8.0]])
    np.testing.assert_allclose(cal._neighbour_mean(c, 1), [[2.0, 2.5, 5.0, 4.0]])
    np.testing.assert_allclose(cal._neighbour_mean(c, 1, periodic=True), [[5.0, 2.5, 5.0, 2.5]])


def test_destriping_a_global_grid_wraps_round_the_dateline():
    """A scene 0.2 (1 + 0.1 sin lon) on a global 10-degree grid, with a 5 % stripe in the first column
    (-175 E): across the dateline the scene is smooth, so with the columns wrapping round the first column's
    gain is found as well as one in the middle; a one-sided reference would see the scene's slope."""
    lon = np.arange(-175.0, 180.0, 10.0)
    lat = np.arange(45.0, -50.0, -10.0)
    scene = 0.2 * (1 + 0.1 * np.sin(np.deg2rad(lon)))[None, :] * np.ones((lat.size, 1))
    gain = np.ones(lon.size)
    gain[0] = gain[18] = 1.05
    img = xr.DataArray(scene * gain, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    g = cal.destripe(img, window=9, half_width=1)["stripe_gain"].values
    assert abs(g[0] / g[18] - 1) < 0.001
    regional = cal.destripe(img.isel(lon=slice(0, 30)), window=9, half_width=1)["stripe_gain"].values
    assert abs(regional[0] / regional[18] - 1) > 0.005  # the same columns, not closing the circle
