"""The notebook-01 panel: state → one pure view; coefficient table; bad state."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.widgets import calibration as wc


def test_coefficient_table_known_answer():
    bands = ["R415", "R750"]
    coeffs = xr.Dataset({k: ("band", v) for k, v in {
        "gain": [1.01, 0.98], "gain_low": [1.0, 0.97], "gain_high": [1.02, 0.99],
        "offset": [0.001, 0.0], "offset_low": [0.0, -0.001], "offset_high": [0.002, 0.001],
        "rmse_before": [0.01, 0.02], "rmse_after": [0.001, 0.002]}.items()}, coords={"band": bands})
    gain = xr.DataArray([1.0, 1.0], dims="band", coords={"band": bands})
    t = wc.coefficient_table(coeffs, gain, gain * 0)
    assert list(t.index) == bands
    np.testing.assert_allclose(t["gain error (%)"], [1.0, -2.0])
    # each interval says whether it holds the injected value (1.0 is on R415's edge, outside R750's)
    assert list(t[wc.GAIN_COVERED]) == ["yes", "no"]
    assert list(t[wc.OFFSET_COVERED]) == ["yes", "yes"]


def test_coverage_column_says_no_for_a_missing_interval():
    bands = ["R415"]
    nan = float("nan")
    coeffs = xr.Dataset({k: ("band", [v]) for k, v in {
        "gain": 1.0, "gain_low": nan, "gain_high": nan, "offset": 0.0, "offset_low": -0.01,
        "offset_high": 0.01, "rmse_before": 0.01, "rmse_after": 0.001}.items()}, coords={"band": bands})
    one = xr.DataArray([1.0], dims="band", coords={"band": bands})
    t = wc.coefficient_table(coeffs, one, one * 0.02)
    assert t.loc["R415", wc.GAIN_COVERED] == "no" and t.loc["R415", wc.OFFSET_COVERED] == "no"


def test_bad_state_raises():
    with pytest.raises(InputError, match="unknown instrument"):
        wc.run_chain(xr.Dataset(), wc.CalibrationState(instrument="hubble"))
    with pytest.raises(InputError, match="phase"):
        wc.run_chain(xr.Dataset(), wc.CalibrationState(phase=95.0))


@pytest.mark.slow
def test_panel_recovers_injected_gains_on_the_synthetic_moon():
    import workbench.synth as synth

    moon = synth.make_moon(seed=0, resolution_ppd=1).sel(lat=slice(60, -60), lon=slice(-90, 90))
    panel = wc.CalibrationPanel(moon, wc.CalibrationState(stripes_pct=0.0, phase=30.0, snr=100.0))
    view = panel.last_view
    assert np.abs(view.table["gain error (%)"]).max() < 1.0
    assert (view.table["RMSE after"] < view.table["RMSE before"]).all()
    n_in = int((view.table[wc.GAIN_COVERED] == "yes").sum())
    assert f"{n_in} of {len(view.table)}" in view.readout and "cross-calibration noise only" in view.readout
    panel.set(phase=60.0, stripes_pct=2.0)
    assert panel.last_view is not view and np.isfinite(panel.last_view.stripe_power_reduction)
