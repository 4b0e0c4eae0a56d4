"""Notebook 04 panel: hemispheric asymmetry of any global variable, with the split drawn on the map.

State lives in :class:`AsymmetryState`; :func:`asymmetry_view` is the one pure function that turns a
state into the map (with the split line and, optionally, the SPA boundaries), the area-weighted
distributions of the two sides, a results table and a readout. :class:`AsymmetryPanel` wires the
controls to it. :func:`spa_profile_view` draws the SPA radial profiles with their change points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .. import maps
from ..analysis import asymmetry as A
from ..analysis import spa as S
from ..errors import InputError
from ..geo import MOON_RADIUS_KM
from . import base

SPLITS = ("near/far", "north/south", "great circle")


def interval_decimals(width: float, digits: int = 3) -> int:
    """Decimals that show a value with a 95 % interval this wide to about ``digits`` significant digits.

    >>> interval_decimals(285.0), interval_decimals(1.16), interval_decimals(0.05)
    (0, 2, 4)
    """
    if not np.isfinite(width) or width <= 0:
        return 2
    return int(max(0, digits - 1 - np.floor(np.log10(width))))




def _p_shown(r: dict) -> float | str:
    """The permutation p-value to three significant digits, or ``"≤ p"`` when no permutation reached the
    observed difference: 1/(n_perm + 1) is then the smallest p the test can give, not an exact value."""
    p = float(r["p_value"])
    n = r.get("n_perm")
    if n is not None and p <= 1.0 / (int(n) + 1) + 1e-12:
        return f"≤ {p:.3g}"
    return float(f"{p:.3g}")


def comparison_table(results: Sequence[dict], units: str | None = None) -> pd.DataFrame:
    """Results of :func:`workbench.analysis.asymmetry.compare_regions` as a rounded table with units.

    Parameters
    ----------
    results
        One dict per comparison (keys ``a``, ``b``, ``value``, ``ci95``, ``p_value``, ``cohens_d``, ``cles``,
        ``n_units_a``, ``n_units_b``, optional ``units``).
    units
        Units of the difference; ``None`` takes the first result's ``units`` (``"1"`` shows none).

    Returns
    -------
    pandas.DataFrame
        One row per comparison: ``a``, ``b``, ``a − b (units)`` and ``95% CI (units)`` (rounded so that
        the interval shows about three significant digits), the block-permutation p-value (``"≤ p"`` at the
        smallest value the permutation count allows), Cohen's d,
        ``P(a > b)`` and the blocks on each side.
    """
    if not results:
        raise InputError("comparison_table needs at least one compare_regions result")
    u = maps.shown_units(results[0].get("units") if units is None else units)
    sfx = f" ({u})" if u else ""
    rows = []
    for r in results:
        lo, hi = r["ci95"]
        d = interval_decimals(hi - lo)
        rows.append({
            "a": r["a"], "b": r["b"],
            f"a − b{sfx}": round(float(r["value"]), d) if d else int(round(float(r["value"]))),
            f"95% CI{sfx}": f"[{lo:.{d}f}, {hi:.{d}f}]",
            "p (block permutation)": _p_shown(r),
            "Cohen's d": round(float(r["cohens_d"]), 2),
            "P(a > b)": round(float(r["cles"]), 2),
            "blocks a": int(r["n_units_a"]), "blocks b": int(r["n_units_b"]),
        })
    return pd.DataFrame(rows)


@dataclass
class AsymmetryState:
    """Control values of :class:`AsymmetryPanel`."""

    variable: str = "mg_number"
    split: str = "near/far"
    pole_lat: float = 0.0  # great-circle split: pole of the circle (deg)
    pole_lon: float = 0.0
    threshold: float = 65.0  # in the variable's units: "fraction of area above"
    highlands_only: bool = False
    block_deg: float = 10.0
    show_spa: bool = True


@dataclass
class AsymmetryView:
    """Everything one state produces."""

    map: object
    distributions: object
    table: pd.DataFrame
    comparison: dict
    readout: str


def split_masks(ds: xr.Dataset | xr.DataArray, state: AsymmetryState) -> dict[str, xr.DataArray]:
    """The two regions of the chosen split (before any highland restriction)."""
    h = A.hemisphere_masks(ds)
    if state.split == "near/far":
        return {"near": h["near"], "far": h["far"]}
    if state.split == "north/south":
        return {"north": h["north"], "south": h["south"]}
    if state.split == "great circle":
        g = A.great_circle_split(ds, state.pole_lat, state.pole_lon)
        return {"pole side": g["pole side"], "antipode side": g["antipode side"]}
    raise InputError(f"unknown split {state.split!r}; choose one of {SPLITS}")


def _split_lines(state: AsymmetryState):
    import holoviews as hv

    style = dict(color="white", line_width=2, line_dash="dashed")
    if state.split == "near/far":
        return hv.VLine(-90.0).opts(**style) * hv.VLine(90.0).opts(**style)
    if state.split == "north/south":
        return hv.HLine(0.0).opts(**style)
    p = S.circle_path(state.pole_lat, state.pole_lon, np.pi / 2 * MOON_RADIUS_KM)
    return hv.Path([p[["lon", "lat"]].values], kdims=["lon", "lat"]).opts(**style)


def _spa_overlay(spa_results: dict | None):
    import holoviews as hv

    if not spa_results:
        return None
    colours = {"FeO": "orange", "mg_number": "magenta", "elevation": "cyan"}
    paths = []
    for name, res in spa_results.items():
        sec = res.get("sectors")
        if sec is None:
            continue
        for k in sec["change"].values:
            p = S.boundary_path(sec.attrs["centre_lat"], sec.attrs["centre_lon"], sec["azimuth_deg"].values,
                                sec["radius_km"].sel(change=k).values)
            paths.append(hv.Path([p[["lon", "lat"]].values], kdims=["lon", "lat"],
                                 label=f"{name} boundary {int(k) + 1}").opts(
                color=colours.get(name, "yellow"), line_width=2))
    return hv.Overlay(paths) if paths else None


def asymmetry_view(
    ds: xr.Dataset,
    state: AsymmetryState,
    *,
    n_boot: int = 300,
    n_perm: int = 499,
    spa_results: dict | None = None,
    display_ppd: float = 2.0,
    seed: int = 0,
) -> AsymmetryView:
    """The pure function behind the panel: statistics, map, distributions and readout for one state.

    Parameters
    ----------
    ds
        Dataset with global (lat, lon) variables (and ``terrane`` for ``highlands_only``).
    state
        The panel state.
    n_boot, n_perm, seed
        Bootstrap replicates, permutations and seed for the intervals and the p-value.
    spa_results
        Output of :func:`workbench.analysis.spa.spa_boundaries` to draw (when ``state.show_spa``).
    display_ppd
        The map is coarsened to at most this resolution for display only (statistics use the full grid).
    """
    import holoviews as hv

    if state.variable not in ds:
        raise InputError(f"variable {state.variable!r} not in the dataset; choose from {list(ds.data_vars)}")
    da = ds[state.variable]
    regions = split_masks(ds, state)
    if state.highlands_only:
        if "terrane" not in ds:
            raise InputError("highlands_only needs a 'terrane' variable (the synthetic Moon has one)")
        hl = A.terrane_masks(ds["terrane"]).get("feldspathic_highlands")
        if hl is None:
            raise InputError("the terrane variable has no 'feldspathic_highlands' class")
        regions = {k: v & hl for k, v in regions.items()}
    (na, ma), (nb, mb) = regions.items()
    st = A.region_statistics(da, regions, block_deg=state.block_deg, n_boot=n_boot, seed=seed,
                             quantiles=(0.05, 0.5, 0.95))
    cmp_ = A.compare_regions(da, ma, mb, block_deg=state.block_deg, n_boot=n_boot, n_perm=n_perm,
                             seed=seed, names=(na, nb))
    fr = A.fraction_above(da, state.threshold, regions, block_deg=state.block_deg, n_boot=n_boot, seed=seed)
    units = maps.shown_units(da.attrs.get("units"))
    table = pd.DataFrame({
        f"mean {units}".strip(): st["mean"].values,
        "mean 95% CI": [f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(st["mean_ci_low"].values,
                                                                   st["mean_ci_high"].values, strict=True)],
        f"median {units}".strip(): st["median"].values,
        f"q05–q95 {units}".strip(): [f"{a:.4g} – {b:.4g}" for a, b in zip(
            st["quantiles"].sel(quantile=0.05).values, st["quantiles"].sel(quantile=0.95).values, strict=True)],
        f"area > {state.threshold:g}": [f"{f:.3f} [{lo:.3f}, {hi:.3f}]" for f, lo, hi in zip(
            fr["fraction"].values, fr["fraction_ci_low"].values, fr["fraction_ci_high"].values, strict=True)],
        "area (10⁶ km²)": st["area_km2"].values / 1e6,
        "blocks": st["n_units"].values,
    }, index=pd.Index([na, nb], name="region"))
    # map (display only: coarsen)
    ppd = 1.0 / float(abs(da["lat"].values[1] - da["lat"].values[0]))
    f = max(1, int(round(ppd / display_ppd)))
    shown = da.coarsen(lat=f, lon=f, boundary="trim").mean() if f > 1 else da
    shown = shown.where(xr.concat([ma, mb], "r").any("r").coarsen(lat=f, lon=f, boundary="trim").max() > 0
                        if f > 1 else (ma | mb))
    shown.attrs = dict(da.attrs)
    shown.name = da.name
    name = base.display_name(state.variable)
    m = maps.lunar_map(shown, rasterize=False, width=560, height=280,
                       title=f"{name} — {na} vs {nb}" + (" (highlands)" if state.highlands_only else ""))
    m = m * _split_lines(state)
    if state.show_spa:
        ov = _spa_overlay(spa_results)
        if ov is not None:
            m = m * ov
    dist = A.region_distributions(da, regions, bins=60)
    curves = [hv.Curve((dist["value"].values, dist.sel(region=r).values), kdims=[f"{name} {units}".strip()],
                       vdims=["area density"], label=r) for r in (na, nb)]
    vlines = [hv.VLine(float(st["mean"].sel(region=r))).opts(line_dash="dotted", color=c)
              for r, c in zip((na, nb), ("#30a2da", "#fc4f30"), strict=True)]
    dists = hv.Overlay(curves + vlines + [hv.VLine(state.threshold).opts(color="black")]).opts(
        title="area-weighted distributions (dotted: means, black: threshold)", frame_width=380,
        frame_height=220, legend_position="top_right")
    p = cmp_["p_value"]
    lo_, hi_ = cmp_["ci95"]
    dec = interval_decimals(hi_ - lo_)
    sfx = f" {units}" if units else ""
    readout = (
        f"<b>{na} − {nb}</b> = {cmp_['value']:.{dec}f}{sfx}, 95% CI [{lo_:.{dec}f}, {hi_:.{dec}f}]{sfx}, "
        f"block-permutation p = {p:.3g}"
        f"{' (the smallest possible with ' + str(n_perm) + ' permutations)' if p <= 1 / (n_perm + 1) + 1e-12 else ''}"
        f"<br>Cohen's d = {cmp_['cohens_d']:.2f}; P({na} &gt; {nb}) = {cmp_['cles']:.2f}"
        f"<br><small>{state.block_deg:g}° blocks, {n_boot} bootstrap replicates, {n_perm} permutations</small>"
    )
    return AsymmetryView(map=m, distributions=dists, table=table, comparison=cmp_, readout=readout)


class AsymmetryPanel(base.Panel):
    """Variable, split and threshold controls; live map, distributions side by side and a results table."""

    State = AsymmetryState
    title = "Hemispheric asymmetry"

    def __init__(self, ds: xr.Dataset, state: AsymmetryState | None = None, *, n_boot: int = 300,
                 n_perm: int = 499, spa_results: dict | None = None, **overrides):
        self.ds = ds
        self.variables = [v for v in ds.data_vars if set(ds[v].dims) == {"lat", "lon"}
                          and ds[v].dtype.kind == "f"]
        self.n_boot, self.n_perm, self.spa_results = n_boot, n_perm, spa_results
        self._ranges = {v: (float(ds[v].quantile(0.001)), float(ds[v].quantile(0.999))) for v in self.variables}
        self._medians = {v: float(ds[v].median()) for v in self.variables}
        self._dist_live: base.LivePlot | None = None
        self._dist_widget = None
        self._table = None
        self.last_view: AsymmetryView | None = None
        if state is None and "threshold" not in overrides and overrides.get("variable") in self._medians:
            # the default threshold (65) is in Mg# units: another variable starts at its own median
            overrides["threshold"] = float(np.round(self._medians[overrides["variable"]], 3))
        super().__init__(state, **overrides)

    def make_controls(self):
        lo, hi = self._ranges.get(self.state.variable, (0.0, 100.0))
        return {
            "variable": base.choice("variable", base.display_options(self.variables), buttons=False),
            "split": base.choice("split", list(SPLITS), buttons=False),
            "pole_lat": base.slider("circle pole lat", "deg", -90, 90, 5),
            "pole_lon": base.slider("circle pole lon", "deg", -180, 180, 5),
            "threshold": base.slider("threshold", self._units(self.state.variable), lo, hi, (hi - lo) / 200),
            "highlands_only": base.checkbox("highlands only"),
            "block_deg": base.choice("block size (deg)", [5.0, 10.0, 15.0, 20.0, 30.0], buttons=False),
            "show_spa": base.checkbox("draw SPA boundaries"),
        }

    def _units(self, variable: str) -> str | None:
        """The units shown beside the threshold: none for a dimensionless "1" (Mg#, a fraction)."""
        return maps.shown_units(self.ds[variable].attrs.get("units")) if variable in self.ds else None

    def _fit_threshold_slider(self, variable: str) -> None:
        """Give the threshold slider ``variable``'s range (0.1–99.9th percentile) and units without
        triggering updates."""
        if variable not in self._ranges:
            return
        lo, hi = self._ranges[variable]
        t = self.controls["threshold"]
        t.description = base._label("threshold", self._units(variable))
        self._busy = True
        try:
            t.min, t.max = min(t.min, lo), max(t.max, hi)
            t.min, t.max, t.step = lo, hi, (hi - lo) / 200
        finally:
            self._busy = False

    def reset(self):
        self._fit_threshold_slider(self._initial.variable)
        super().reset()

    def set(self, **changes):
        if "variable" in changes and changes["variable"] in self._ranges:
            self._fit_threshold_slider(changes["variable"])
            if "threshold" not in changes and changes["variable"] != self.state.variable:
                # a threshold in the old variable's units means nothing: start at the new median
                changes["threshold"] = float(np.round(self._medians[changes["variable"]], 3))
        super().set(**changes)

    def compute(self, state):
        view = asymmetry_view(self.ds, state, n_boot=self.n_boot, n_perm=self.n_perm,
                              spa_results=self.spa_results)
        self.last_view = view
        return view.map, view.readout

    def update(self):
        result = super().update()
        self._show_extras()
        return result

    def cleanup(self):
        if self._dist_live is not None:
            self._dist_live.close()
        super().cleanup()

    def _show_extras(self):
        import ipywidgets as w

        v = self.last_view
        if v is None:
            return
        if self._dist_live is None:
            self._dist_live = base.LivePlot()
            self._table = w.HTML()
            self.output.layout.flex_flow = "row wrap"
        self._dist_live.show(v.distributions)
        self._dist_widget = self._dist_live.widget
        # the map's widget may have been replaced too: always list the current ones
        self.output.children = (self._plot_widget, self._dist_widget, self._table)
        self._dist_live.close_retired()
        self._table.value = v.table.to_html(float_format=lambda x: f"{x:.4g}")


def spa_profile_view(spa_results: dict):
    """Radial profiles of each variable with the change points (lines) and their sector intervals (bands)."""
    import holoviews as hv

    plots = []
    for name, res in spa_results.items():
        prof, cp = res["profile"], res["change_points"]
        units = maps.shown_units(prof.attrs.get("units", ""))
        shown = base.display_name(name)
        ylabel = f"{shown} ({units})" if units else shown
        d = prof["distance_km"].values
        y = prof["mean"].values
        el = hv.Curve((d, y), kdims=["distance from SPA centre (km)"], vdims=[hv.Dimension(name, label=ylabel)],
                      label="profile")
        el = el * hv.Curve((cp["fit"]["distance_km"].values, cp["fit"].values),
                           kdims=el.kdims, vdims=el.vdims, label="step fit").opts(line_dash="dashed")
        sec = res.get("sectors")
        for k in cp["change"].values:
            if sec is not None:
                el = el * hv.VSpan(float(sec["radius_ci_low"][k]), float(sec["radius_ci_high"][k])).opts(
                    alpha=0.2, color="grey")
            el = el * hv.VLine(float(cp["radius_km"][k])).opts(color="red")
        plots.append(el.opts(title=f"{shown}: boundaries at "
                             + ", ".join(f"{r:.0f}" for r in cp["radius_km"].values) + " km",
                             frame_width=300, frame_height=200, show_legend=False))
    return hv.Layout(plots).cols(3)


def headline_figures(
    stats: xr.Dataset,
    near_far: Mapping,
    sensitivity: pd.DataFrame,
    mg_comparison: Mapping,
    spa_results: Mapping[str, Mapping[str, xr.Dataset]],
    densities: Mapping[str, xr.Dataset] | None = None,
) -> dict:
    """The headline figures of notebook 04, rounded for :func:`workbench.report.headline`.

    Parameters
    ----------
    stats
        :func:`workbench.analysis.asymmetry.region_statistics` of LOLA elevation (m; regions ``near``, ``far``).
    near_far
        :func:`workbench.analysis.asymmetry.compare_regions` of LOLA elevation, near − far.
    sensitivity
        :func:`workbench.analysis.asymmetry.block_size_sensitivity` (needs a 10° row).
    mg_comparison
        ``compare_regions`` of the synthetic Moon's Mg#, far − near highlands.
    spa_results
        :func:`workbench.analysis.spa.spa_boundaries` with ``FeO`` and ``mg_number``.
    densities
        ``{"craters_head2010": ..., "craters_lroc_5_20km": ...}`` from
        :func:`workbench.analysis.craters.crater_density`, or None/empty when the catalogues are unavailable.

    Returns
    -------
    dict
        Crater densities (per 10⁶ km², when given), LOLA near/far means and intervals (km), the
        near − far p-value, the 10° block / iid interval-width ratio, the synthetic far − near highland
        Mg# difference with its interval, and the SPA Fe-anomaly and Mg-ring radii (km).
    """
    near, far = stats.sel(region="near"), stats.sel(region="far")
    out: dict = {}
    if densities:
        for key, name in (("head2010", "craters_head2010"), ("lroc", "craters_lroc_5_20km")):
            for r in ("near", "far"):
                out[f"{key}_density_{r}"] = round(float(densities[name]["density"].sel(region=r)), 1)
    ten = sensitivity.loc[sensitivity["block_deg"] == 10.0, "width_vs_iid"]
    if ten.empty:
        raise InputError("the block-size sensitivity table has no 10° row; include 10.0 in its block sizes")

    def km(v) -> float:
        return round(float(v) / 1000, 3)

    out.update(
        lola_near_mean_km=km(near["mean"]),
        lola_near_ci95_km=[km(near["mean_ci_low"]), km(near["mean_ci_high"])],
        lola_far_mean_km=km(far["mean"]),
        lola_far_ci95_km=[km(far["mean_ci_low"]), km(far["mean_ci_high"])],
        lola_near_minus_far_p=near_far["p_value"],
        block_ci_vs_iid_width_10deg=round(float(ten.iloc[0]), 1),
        synth_far_minus_near_highland_mg=round(mg_comparison["value"], 2),
        synth_far_minus_near_highland_mg_ci95=[round(x, 2) for x in mg_comparison["ci95"]],
        synth_spa_fe_boundary_km=round(float(spa_results["FeO"]["change_points"]["radius_km"][0])),
        synth_spa_mg_ring_km=[round(float(x)) for x in spa_results["mg_number"]["change_points"]["radius_km"].values],
    )
    return out
