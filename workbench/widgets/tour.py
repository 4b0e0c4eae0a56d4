"""The 00_tour panel: a global map with a colour-range slider, near/far centring and sample sites.

The panel is the smallest complete example of :class:`workbench.widgets.base.Panel`: its whole state
is :class:`TourState`, and :func:`tour_view` is the one pure function that turns a state into a map
and a readout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import maps
from ..errors import InputError
from ..geo import area_weights, hemisphere_masks
from . import base


@dataclass
class TourState:
    """Control values of :class:`TourPanel` (colour range in the map's units)."""

    clim: tuple[float, float] = (-6000.0, 6000.0)
    centre: str = "near"
    show_sites: bool = True


def _sig(x: float, digits: int = 3) -> str:
    """``x`` with at least ``digits`` significant figures and no exponent: -6000 → "-6000", 0.1249 → "0.125"
    (a fixed number of decimals showed reflectance as "0 … 0")."""
    x = float(x)
    if not np.isfinite(x) or x == 0.0:
        return f"{x:g}"
    decimals = max(0, digits - 1 - int(np.floor(np.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def hemisphere_mean(da: xr.DataArray, hemisphere: str) -> float:
    """Area-weighted mean of a global ``(lat, lon)`` map over ``"near"``/``"far"``/``"north"``/``"south"``."""
    masks = hemisphere_masks(da)
    if hemisphere not in masks:
        raise InputError(f"hemisphere {hemisphere!r} is not one of {list(masks)}")
    w = area_weights(da).where(masks[hemisphere] & np.isfinite(da))
    return float((da * w).sum() / w.sum())


def site_table(sites, oxides: tuple[str, ...] = ("TiO2", "FeO", "Al2O3"),
               missing: str = "not reported"):
    """The sample-site table for display: coordinates and soil oxides with their units in the column names.

    Parameters
    ----------
    sites
        :func:`workbench.samples.sample_sites` (columns ``site``, ``lat``, ``lon``, the oxides, ``far_side``).
    oxides
        Oxide columns to show (wt%).
    missing
        Shown where the source gives no value (e.g. Chang'e-6 TiO2): the value was not reported, it is not zero.

    Returns
    -------
    pandas.DataFrame
        Columns ``site``, ``lat (°N)``, ``lon (°E)`` (to 0.01°), ``<oxide> (wt%)`` … and ``far side``; a copy,
        the input is left as it is.
    """
    import pandas as pd

    if not isinstance(sites, pd.DataFrame):
        raise InputError(f"site_table needs a pandas DataFrame, got {type(sites).__name__}; "
                         "use wb.samples.sample_sites()")
    need = ["site", "lat", "lon", *oxides]
    absent = [c for c in need if c not in sites.columns]
    if absent:
        raise InputError(f"site_table: missing columns {absent}; use wb.samples.sample_sites()")
    # coordinates to 0.01° (0.3 km on the Moon, finer than any map here): 5 decimals are noise to a reader
    out = pd.DataFrame({"site": sites["site"], "lat (°N)": sites["lat"].round(2), "lon (°E)": sites["lon"].round(2)})
    for ox in oxides:
        v = sites[ox]
        out[f"{ox} (wt%)"] = v.astype(object).where(v.notna(), missing)
    if "far_side" in sites.columns:
        out["far side"] = sites["far_side"]
    return out


def tour_view(da: xr.DataArray, sites, state: TourState, hemi_means: dict[str, float] | None = None):
    """The map and readout for one state: ``lunar_map`` (+ sites) and an HTML line of figures.

    Parameters
    ----------
    da
        Global ``(lat, lon)`` map with ``units``.
    sites
        Sample-site table for :func:`workbench.maps.sites_overlay`, or ``None``.
    state
        The panel state.
    hemi_means
        Precomputed :func:`hemisphere_mean` for ``near``/``far`` (computed here if ``None``).
    """
    plot = maps.lunar_map(da, clim=state.clim, centre=state.centre, rasterize=False, **base.PANEL_MAP_SIZE,
                          title=f"{da.attrs.get('long_name', da.name)} — {state.centre} side centred")
    if state.show_sites and sites is not None:
        plot = plot * maps.sites_overlay(sites, centre=state.centre)
    lo, hi = state.clim
    v = da.values
    finite = np.isfinite(v)
    frac_out = float(((v < lo) | (v > hi))[finite].mean()) * 100.0
    means = hemi_means or {h: hemisphere_mean(da, h) for h in ("near", "far")}
    units = da.attrs.get("units", "")
    readout = (
        f"<span class='wb-readout'>colour range {_sig(lo)} … {_sig(hi)} {units}; "
        f"{frac_out:.1f}% of pixels outside it<br>"
        f"area-weighted mean: near side {_sig(means['near'])} {units}, far side {_sig(means['far'])} {units}"
        "</span>"
    )
    return plot, readout


class TourPanel(base.Panel):
    """Colour range + near/far centring + sample sites over a global map (default: LOLA elevation)."""

    State = TourState
    title = "Global map"

    def __init__(self, da: xr.DataArray, sites=None, state: TourState | None = None, **overrides):
        self.da = da
        self.sites = sites
        self.hemi_means = {h: hemisphere_mean(da, h) for h in ("near", "far")}
        vmin, vmax = float(np.nanmin(da.values)), float(np.nanmax(da.values))
        step = 10 ** np.floor(np.log10(max(vmax - vmin, 1e-9) / 100))
        self._range = (float(np.floor(vmin / step) * step), float(np.ceil(vmax / step) * step), float(step))
        if state is None and "clim" not in overrides:
            lo, hi = np.nanpercentile(da.values, [1, 99])
            overrides["clim"] = (float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step))
        super().__init__(state, **overrides)

    def make_controls(self):
        lo, hi, step = self._range
        units = self.da.attrs.get("units")
        return {
            "clim": base.range_slider("colour range", units, lo, hi, step),
            "centre": base.choice("centre", {"near side": "near", "far side": "far"}),
            "show_sites": base.checkbox("show sample sites", True),
        }

    def compute(self, state: TourState):
        return tour_view(self.da, self.sites, state, self.hemi_means)
