"""Notebook 01 panel: inject calibration errors into a virtual instrument and watch them be removed.

State lives in :class:`CalibrationState`; :func:`calibration_view` is the one pure function that turns
a state into everything shown: residual maps (target − reference) before and after the calibration
chain (destripe → photometric normalisation → cross-calibration), their histograms, and a table of
recovered versus injected gains and offsets with confidence intervals. :class:`CalibrationPanel` wires
the controls to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .. import calibration as cal
from ..errors import InputError
from ..photometry import normalisation_factor, normalise
from . import base

INSTRUMENTS = ("clementine_uvvis", "kaguya_mi", "lro_wac")


@dataclass
class CalibrationState:
    """Control values of :class:`CalibrationPanel`."""

    instrument: str = "clementine_uvvis"
    gain_error_pct: float = 5.0  # σ of the injected per-band gain error (%)
    offset_error: float = 0.005  # σ of the injected per-band offset (reflectance)
    stripes_pct: float = 2.0  # σ of the per-detector gain stripes (%)
    snr: float = 100.0
    phase: float = 30.0  # phase angle of the target view (deg; nadir camera, i = g)
    band: str = ""  # band shown in the maps ("" → the first)
    seed: int = 0


@dataclass
class CalibrationView:
    """Everything one state produces."""

    table: pd.DataFrame
    before: xr.DataArray
    after: xr.DataArray
    stripe_power_reduction: float
    plot: object
    readout: str


def run_chain(moon: xr.Dataset, state: CalibrationState) -> dict:
    """Observe the reference and the erroneous target, then destripe, normalise and cross-calibrate.

    The reference is an error-free view at the standard geometry (same SNR). The target carries
    per-band gain/offset errors, per-detector stripes and, at ``phase`` ≠ 30°, the Hapke photometric
    factor of a nadir view with i = g = phase (each pixel's own w); it is normalised with the same Hapke
    model, w inverted per pixel (:func:`workbench.photometry.normalise`), before the cross-calibration.
    The gain/offset errors act after the photometry, so the non-linear normalisation bends them a little:
    the fitted gain then differs from the injected one by a few tenths of a percent at phase 60°, and the
    offset is compared with the injected one times the model's mean factor.
    """
    from ..synth import observe

    if state.instrument not in INSTRUMENTS:
        raise InputError(f"unknown instrument {state.instrument!r}; choose one of {INSTRUMENTS}")
    if not 0 <= state.phase < 85:
        raise InputError(f"phase must lie in [0, 85) degrees for a lit nadir view, got {state.phase}")
    ref = observe(moon, state.instrument, snr=state.snr, seed=state.seed + 1000)["reflectance"]
    geometry = None
    if abs(state.phase - 30.0) > 1e-9:
        geometry = {"i": state.phase, "e": 0.0, "g": state.phase, "model": "hapke"}
    tgt = observe(moon, state.instrument, snr=state.snr, stripes=state.stripes_pct / 100.0,
                  gain_error=state.gain_error_pct / 100.0 or None, offset_error=state.offset_error or None,
                  geometry=geometry, seed=state.seed)
    ref = ref.astype("float64").compute()
    obs = tgt["reflectance"].astype("float64").compute()
    true = tgt["true_reflectance"].astype("float64").compute()
    if state.stripes_pct > 0:
        d = cal.destripe(obs)
        destriped = d["destriped"]
        # the stripe truth: the target without stripes (gain/offset errors and photometry included)
        factor = 1.0 if geometry is None else tgt["photometric_factor"].astype("float64").compute()
        clean = (true * factor) * tgt["gain"] + tgt["offset"]
        reduction = cal.stripe_power_reduction(obs, destriped, clean)
    else:
        destriped, reduction = obs, float("nan")
    nf = 1.0
    if geometry is not None:
        nf = float(normalisation_factor(state.phase, 0.0, state.phase, model="hapke"))
        # invert each pixel's Hapke w at its geometry, as the synthetic observation applied it
        destriped = normalise(destriped, state.phase, 0.0, state.phase, model="hapke")
    coeffs = cal.fit_cross_calibration(destriped, ref)
    calibrated = cal.apply_cross_calibration(destriped, coeffs)
    return {"reference": ref, "observed": obs, "calibrated": calibrated, "coeffs": coeffs,
            # normalisation scales an additive offset: compare with the offset as it reaches the fit
            "injected_gain": tgt["gain"], "injected_offset": tgt["offset"] * nf,
            "stripe_power_reduction": reduction}


#: Column of :func:`coefficient_table` saying whether the gain interval holds the injected gain.
GAIN_COVERED = "gain truth inside 95 % CI"
#: Column of :func:`coefficient_table` saying whether the offset interval holds the injected offset.
OFFSET_COVERED = "offset truth inside 95 % CI"


def _inside(truth: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[str]:
    """``"yes"`` where ``low <= truth <= high``, else ``"no"`` (also where any of them is NaN)."""
    with np.errstate(invalid="ignore"):
        ok = (low <= truth) & (truth <= high)
    return ["yes" if v else "no" for v in ok]


def coefficient_table(coeffs: xr.Dataset, gain: xr.DataArray, offset: xr.DataArray) -> pd.DataFrame:
    """Recovered vs injected gain and offset per band, with the confidence intervals.

    Parameters
    ----------
    coeffs
        :func:`workbench.calibration.fit_cross_calibration` output (``gain``, ``gain_low``, ``gain_high``,
        ``offset``, ``offset_low``, ``offset_high``, ``rmse_before``, ``rmse_after`` on ``band``).
    gain, offset
        The injected per-band gain (1) and offset (reflectance), on ``band``.

    Returns
    -------
    pandas.DataFrame
        One row per band. :data:`GAIN_COVERED` and :data:`OFFSET_COVERED` say (``"yes"``/``"no"``)
        whether each 95 % interval holds the injected value. The intervals come from the
        cross-calibration fit alone: they do not include what destriping or photometric
        normalisation left behind, so after those steps a "no" is expected more often than 1 in 20.
        Gains and offsets are dimensionless (reflectance), the gain error is in %.
    """
    bands = [str(b) for b in coeffs["band"].values]
    g_true, o_true = gain.sel(band=bands).values, offset.sel(band=bands).values
    g_lo, g_hi = coeffs["gain_low"].values, coeffs["gain_high"].values
    o_lo, o_hi = coeffs["offset_low"].values, coeffs["offset_high"].values
    return pd.DataFrame({
        "band": bands,
        "gain injected": g_true,
        "gain recovered": coeffs["gain"].values,
        "gain CI low": g_lo,
        "gain CI high": g_hi,
        GAIN_COVERED: _inside(g_true, g_lo, g_hi),
        "gain error (%)": 100 * (coeffs["gain"].values / g_true - 1),
        "offset injected": o_true,
        "offset recovered": coeffs["offset"].values,
        "offset CI low": o_lo,
        "offset CI high": o_hi,
        OFFSET_COVERED: _inside(o_true, o_lo, o_hi),
        "RMSE before": coeffs["rmse_before"].values,
        "RMSE after": coeffs["rmse_after"].values,
    }).set_index("band")


def calibration_view(moon: xr.Dataset, state: CalibrationState) -> CalibrationView:
    """The pure function behind the panel: run the chain and draw maps, histograms and the table."""
    import holoviews as hv

    from .. import maps

    out = run_chain(moon, state)
    table = coefficient_table(out["coeffs"], out["injected_gain"], out["injected_offset"])
    band = state.band or str(out["observed"]["band"].values[0])
    if band not in table.index:
        raise InputError(f"band {band!r} is not a band of {state.instrument}; choose one of {list(table.index)}")
    before = (out["observed"] - out["reference"]).sel(band=band, drop=True)
    after = (out["calibrated"] - out["reference"]).sel(band=band, drop=True)
    for da, name in ((before, "before"), (after, "after")):
        da.attrs = {"units": "1", "long_name": f"{band} target − reference, {name} calibration"}
    # one colour/histogram range for both (the larger 99th-percentile |residual|); what lies beyond is counted
    lim = max(float(np.nanpercentile(np.abs(d.values), 99)) for d in (before, after)) or 0.01
    kw = dict(clim=(-lim, lim), diverging=True, width=460, height=240)
    m_before = maps.lunar_map(before.assign_attrs(before.attrs), **kw)
    m_after = maps.lunar_map(after, **kw)
    edges = np.linspace(-lim, lim, 61)
    vb, va = (d.values[np.isfinite(d.values)] for d in (before, after))
    hb, _ = np.histogram(vb, edges)
    ha, _ = np.histogram(va, edges)
    beyond = 100.0 * (np.sum(np.abs(vb) > lim) + np.sum(np.abs(va) > lim)) / max(1, vb.size + va.size)
    hist = (hv.Histogram((edges, hb), kdims=["residual (reflectance)"], vdims=["pixels"], label="before")
            .opts(alpha=0.5, color="#d95f02")
            * hv.Histogram((edges, ha), kdims=["residual (reflectance)"], vdims=["pixels"], label="after")
            .opts(alpha=0.5, color="#1b9e77")).opts(width=460, height=240, title="residual histograms",
                                                     legend_position="top_right")
    hist = hist.opts(title=f"residual histograms ({beyond:.1f} % of pixels beyond ±{lim:.3g}, not shown)")
    plot = (m_before + m_after + hist).cols(2)
    worst = float(np.abs(table["gain error (%)"]).max())
    red = out["stripe_power_reduction"]
    n_in = int((table[GAIN_COVERED] == "yes").sum())
    readout = (f"<b>{state.instrument}</b>, SNR {state.snr:g}, phase {state.phase:g}°<br>"
               f"worst gain error: <b>{worst:.2f} %</b>; worst offset error: "
               f"<b>{float(np.abs(table['offset recovered'] - table['offset injected']).max()):.4f}</b><br>"
               f"stripe power removed: <b>{'n/a' if np.isnan(red) else f'{100 * red:.1f} %'}</b><br>"
               f"gain 95 % intervals holding the injected gain: <b>{n_in} of {len(table)}</b> "
               "<small>(they include cross-calibration noise only, not destriping or photometric-normalisation "
               "residuals)</small><br>"
               + table[["gain injected", "gain recovered", "gain CI low", "gain CI high", GAIN_COVERED]]
               .to_html(float_format=lambda v: f"{v:.4f}"))
    return CalibrationView(table=table, before=before, after=after, stripe_power_reduction=red,
                           plot=plot, readout=readout)


class CalibrationPanel(base.Panel):
    """Instrument, injected errors, SNR and viewing geometry; live residual maps, histograms, table."""

    State = CalibrationState
    title = "Calibration: inject errors, recover them"

    def __init__(self, moon: xr.Dataset, state: CalibrationState | None = None, **overrides):
        # the synthetic Moon's spectra are lazy: compute them once, not on every slider move
        self.moon = moon.assign(reflectance=moon["reflectance"].compute())
        self.last_view: CalibrationView | None = None
        super().__init__(state, **overrides)

    def make_controls(self):
        return {
            "instrument": base.choice("instrument", list(INSTRUMENTS), buttons=False),
            "gain_error_pct": base.slider("gain error σ", "%", 0.0, 20.0, 0.5),
            "offset_error": base.slider("offset σ", "reflectance", 0.0, 0.02, 0.001,
                                        tooltip="offset error σ, in reflectance units (added to every pixel)"),
            "stripes_pct": base.slider("stripe gain σ", "%", 0.0, 10.0, 0.5),
            "snr": base.slider("SNR", None, 10.0, 500.0, 10.0),
            "phase": base.slider("phase angle", "deg", 5.0, 80.0, 5.0,
                                 tooltip="phase angle g of the observation (incidence i = g, emission e = 0)"),
            "seed": base.int_slider("seed", None, 0, 20),
        }

    def compute(self, state):
        view = calibration_view(self.moon, state)
        self.last_view = view
        return view.plot, view.readout
