"""Notebook 05 panel: unsupervised prospectivity maps, thresholded candidate regions, click-to-zoom.

:class:`ProspectivityContext` holds everything computed once (the layer stack of the Moon to explore,
the network's per-layer errors, the training stacks for the baselines, the truth when known).
:func:`prospectivity_view` is the one pure function: state → anomaly map (zoomed on the selected
candidate), ranked candidate table and readout. :class:`ProspectivityPanel` wires layer checkboxes, a
method choice, the anomaly-threshold slider and a clickable ranked candidate list to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from .. import maps
from ..analysis import prospectivity as P
from ..analysis.layers import Normalisation
from ..errors import InputError
from . import base

METHODS = ("network", "zscore", "isolation_forest", "pca")
#: the whole-Moon map circles only this many of the top-ranked candidates (all are in the list); more hide
#: the map under them (124 at the default threshold on a 2 px/deg Moon)
MAX_CIRCLES = 20


@dataclass
class ProspectivityState:
    """Control values of :class:`ProspectivityPanel` (one checkbox per layer of the benchmark stack)."""

    method: str = "network"
    #: percentile of area (:func:`workbench.analysis.prospectivity.area_percentile`) of the score above which
    #: ground is a candidate: 99 flags the highest-scoring 1 % of the area shown
    threshold_pct: float = 99.0
    min_pixels: int = 3
    rank_by: str = "total_score"
    selected: int = 0  # rank of the candidate to zoom to; 0 = whole Moon
    TiO2: bool = True
    FeO: bool = True
    mg_number: bool = True
    elevation: bool = True
    slope: bool = True
    roughness: bool = True
    npfe: bool = True
    crater_density: bool = True


@dataclass
class ProspectivityContext:
    """Precomputed inputs of the panel.

    Attributes
    ----------
    stack
        ``(layer, lat, lon)`` stack of the Moon explored (held out from training).
    errors
        :func:`workbench.analysis.prospectivity.layer_errors` of the network on ``stack``.
    normalisation
        The model's normalisation (also used by the baselines).
    train
        Training stacks (the baselines are fitted on them, never on ``stack``).
    tio2
        TiO2 (wt%) for the candidate table.
    truth
        Optional boolean truth (planted deposits) for the readout's AUC / precision.
    score_rule, error_stats
        How the network's per-layer errors become one score (the model's ``score_rule`` and
        ``error_stats``; see :func:`workbench.analysis.prospectivity.score_from_layer_errors`).
    """

    stack: xr.DataArray
    errors: xr.DataArray
    normalisation: Normalisation
    train: list[xr.DataArray]
    tio2: xr.DataArray
    truth: xr.DataArray | None = None
    score_rule: str = "sum"
    error_stats: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def layers(self) -> list[str]:
        return [str(v) for v in self.stack["layer"].values]


@dataclass
class ProspectivityView:
    """What one state produces."""

    map: object
    table: pd.DataFrame
    score: xr.DataArray
    threshold: float
    metrics: dict | None
    readout: str


def selected_layers(ctx: ProspectivityContext, state: ProspectivityState) -> list[str]:
    """The layers of the stack whose checkbox is ticked."""
    return [k for k in ctx.layers if getattr(state, k, True)]


def scored_layers(ctx: ProspectivityContext, method: str, layers: list[str]) -> list[str]:
    """The ticked layers whose values (baselines) or prediction errors (network) enter the score.

    With a ``context…`` score rule the network does not score the topographic layers
    (:data:`~workbench.analysis.prospectivity.TOPOGRAPHIC_LAYERS`): they are context only.
    """
    if method == "network" and ctx.score_rule.startswith("context"):
        return [k for k in layers if k not in P.TOPOGRAPHIC_LAYERS]
    return list(layers)


def method_score(ctx: ProspectivityContext, method: str, layers: list[str]) -> xr.DataArray:
    """Anomaly score of ``method`` on the chosen layers (cached per method and layer set)."""
    key = (method, tuple(layers))
    if key in ctx._cache:
        return ctx._cache[key]
    if method == "network":
        s = P.score_from_layer_errors(ctx.errors, layers, rule=ctx.score_rule, stats=ctx.error_stats)
    else:
        norm = ctx.normalisation.select(layers)
        st = ctx.stack.sel(layer=layers)
        tr = [t.sel(layer=layers) for t in ctx.train]
        if method == "zscore":
            s = P.zscore_score(st, norm)
        elif method == "isolation_forest":
            s = P.isolation_forest_score(tr, st, norm, max_pixels=50_000)
        elif method == "pca":
            if len(layers) < 2:
                raise InputError("PCA reconstruction needs at least 2 layers; tick another layer")
            s = P.pca_score(tr, st, norm)
        else:
            raise InputError(f"unknown method {method!r}; choose one of {METHODS}")
    ctx._cache[key] = s
    return s


def _crosses_seam(row: pd.Series) -> bool:
    """A candidate region that crosses ±180° (``candidate_regions`` gives it ``lon_min > lon_max``)."""
    return bool(row["lon_min"] > row["lon_max"])


def _zoom_box(row: pd.Series, pad_deg: float = 4.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis ranges around a candidate: longitudes −180…180, or 0…360 for one that crosses ±180° (drawn on
    the far-side-centred map, so it is not cut in half)."""
    from ..geo import wrap_lon_360

    lat0, lat1 = row["lat_min"] - pad_deg, row["lat_max"] + pad_deg
    if _crosses_seam(row):
        lon0, lon1 = wrap_lon_360(row["lon_min"]) - pad_deg, wrap_lon_360(row["lon_max"]) + pad_deg
        return (max(lon0, 0.0), min(lon1, 360.0)), (max(lat0, -90.0), min(lat1, 90.0))
    lon0, lon1 = row["lon_min"] - pad_deg, row["lon_max"] + pad_deg
    return (max(lon0, -180.0), min(lon1, 180.0)), (max(lat0, -90.0), min(lat1, 90.0))


def prospectivity_view(ctx: ProspectivityContext, state: ProspectivityState, width: int = 640,
                       height: int = 320) -> ProspectivityView:
    """The pure function behind the panel: score, candidates, (zoomed) map and readout for one state."""
    import holoviews as hv

    from ..geo import wrap_lon_180, wrap_lon_360

    layers = selected_layers(ctx, state)
    if not layers:
        raise InputError("no layer ticked; tick at least one layer")
    if not 50.0 <= state.threshold_pct < 100.0:
        raise InputError(f"threshold percentile (of area) must lie in [50, 100), got {state.threshold_pct}")
    score = method_score(ctx, state.method, layers)
    thr = P.area_percentile(score, state.threshold_pct)
    table = P.candidate_regions(score, thr, tio2=ctx.tio2, min_pixels=state.min_pixels, rank_by=state.rank_by)
    sel = int(state.selected)
    # drawn on -180…180 longitudes whatever the stack's convention (a 0…360 stack's candidates at 202 °E
    # are at -158 °E on the map, and one spanning 174…182 °E crosses ±180)
    drawn = table.assign(**{k: wrap_lon_180(table[k].to_numpy()) for k in ("lon", "lon_min", "lon_max")})
    far = 0 < sel <= len(table) and _crosses_seam(drawn.iloc[sel - 1])  # zoom across ±180: far-centred map
    shift = wrap_lon_360 if far else wrap_lon_180
    scored = scored_layers(ctx, state.method, layers)
    context_only = [k for k in layers if k not in scored]
    what = f"{len(scored)} layer{'s' if len(scored) != 1 else ''} scored"
    if context_only:
        what += f"; context only: {', '.join(context_only)}"
    # colours equalised by area (lunar_map's equalise="area"): the scores are heavy-tailed (about half the
    # network's are 0, its maximum ~25x its 99th percentile), so a linear range paints nearly all of the Moon in
    # the darkest colour; equalised, each colour covers the same share of the area, which is what the
    # threshold slider counts (the colour bar's 99 % tick is the slider's default threshold)
    m = maps.lunar_map(score, cmap="inferno", rasterize=False, width=width, height=height, equalise="area",
                       title=f"anomaly score — {state.method} ({what})", centre="far" if far else "near")
    circled = drawn[(drawn["rank"] <= MAX_CIRCLES) | (drawn["rank"] == sel)]
    if len(circled):
        pts = hv.Points(circled.assign(lon=shift(circled["lon"].to_numpy())), kdims=["lon", "lat"],
                        vdims=["rank", "area_km2", "mean_score", "mean_TiO2"])
        m = m * pts.opts(color="cyan", marker="circle", fill_alpha=0.0, size=10, line_width=1.5,
                         tools=["hover"])
    if ctx.truth is not None:
        tp = ctx.truth.values
        la, lo_ = np.meshgrid(ctx.truth["lat"].values, ctx.truth["lon"].values, indexing="ij")
        m = m * hv.Points((shift(lo_[tp]), la[tp]), kdims=["lon", "lat"], label="planted deposits").opts(
            color="lime", size=2, alpha=0.5)
    if 0 < sel <= len(table):
        (x0, x1), (y0, y1) = _zoom_box(drawn.iloc[sel - 1])
    else:
        (x0, x1), (y0, y1) = (-180.0, 180.0), (-90.0, 90.0)
    # framewise: the live plot takes the new axis ranges on every update (zoom in and back out)
    m = m.opts(hv.opts.Image(xlim=(x0, x1), ylim=(y0, y1), framewise=True))
    metrics = P.evaluate(score, ctx.truth) if ctx.truth is not None else None
    area = float(table["area_km2"].sum()) if len(table) else 0.0
    readout = (f"threshold {thr:.3g} (the top {100.0 - state.threshold_pct:.3g}% of the area by score) → "
               f"<b>{len(table)}</b> candidate regions, {area / 1e3:.1f} thousand km²")
    if len(table) > MAX_CIRCLES:
        readout += f" (circles mark the top {MAX_CIRCLES}; all are in the list)"
    readout += "<br>colours are equalised by area: each covers the same share of the Moon, as the slider counts"
    if metrics is not None:
        readout += (f"<br>vs planted deposits: AUC <b>{metrics['auc']:.3f}</b>, precision in top 1% of area "
                    f"<b>{metrics['precision_at_top']:.3f}</b> (deposit area fraction {metrics['base_rate']:.4f})")
    if sel > len(table):
        readout += f"<br><span style='color:#b42318'>no candidate of rank {sel}: showing the whole Moon</span>"
    readout += ("<br><i>select a candidate to zoom on it; changing any other control renumbers the candidates "
                "and zooms back out to the whole Moon</i>")
    return ProspectivityView(map=m, table=table, score=score, threshold=thr, metrics=metrics, readout=readout)


def _row_label(r: pd.Series) -> str:
    """One candidate in the list, in at most 58 characters (the column's width at 11 px monospace):
    ``#  1  +9.9°N  -20.6°E   31917 km² score 441   TiO2 12.3%`` (TiO2 in wt%), its spaces no-break spaces so
    that the browser keeps the columns aligned (an option's text collapses runs of plain spaces)."""
    text = (f"#{int(r['rank']):>3} {r['lat']:+5.1f}°N{r['lon']:+7.1f}°E {r['area_km2']:>7.0f} km² "
            f"score {r['mean_score']:<5.3g} TiO2 {r['mean_TiO2']:4.1f}%")
    return text.replace(" ", "\u00a0")


class ProspectivityPanel(base.Panel):
    """Layer checkboxes, method, anomaly-threshold slider; live map and a clickable ranked candidate list."""

    State = ProspectivityState
    title = "Unsupervised prospectivity"
    # the candidate list's columns line up in a fixed-width font (a Select's style has no font setting)
    css = ".workbench-candidates select {font-family: monospace; font-size: 11px}"

    def __init__(self, ctx: ProspectivityContext, state: ProspectivityState | None = None, **overrides):
        self.ctx = ctx
        self.view: ProspectivityView | None = None
        super().__init__(state, **overrides)

    def make_controls(self):
        import ipywidgets as w

        ctrls = {
            "method": base.choice("method", METHODS),
            # the range prospectivity_view accepts, [50, 100): a state of 80 must not show as 90
            "threshold_pct": base.slider("area percentile", "%", 50.0, 99.9, 0.1, 99.0),
            "min_pixels": base.int_slider("min region size", "px", 1, 50, 1, 3),
            "rank_by": base.choice("rank by", {"area × score": "total_score", "mean score": "mean_score",
                                               "area": "area_km2"}),
        }
        for k in self.ctx.layers:
            if k in ProspectivityState.__dataclass_fields__:
                ctrls[k] = base.checkbox(f"layer: {base.display_name(k)}", True)
        # the ranked candidate table: selecting a row zooms the map (0 = whole Moon). It spans the column with no
        # label beside it and a smaller font: beside a label a row was cut after its area and score
        ctrls["selected"] = w.Select(options=[("whole Moon", 0)], value=0, rows=10, tooltip="candidates",
                                     layout=w.Layout(width=base.CONTROL_WIDTH))
        ctrls["selected"].add_class("workbench-candidates")  # monospace, 11 px: see css
        return ctrls

    def compute(self, state: ProspectivityState):
        self.view = prospectivity_view(self.ctx, state)
        return self.view.map, self.view.readout

    def set(self, **changes) -> None:
        """Change state fields; a change of anything but the selection clears the selection (back to the whole
        Moon), since the candidates are ranked anew and a rank would then name a different region."""
        if "selected" not in changes and any(getattr(self.state, k) != v for k, v in changes.items()):
            changes["selected"] = 0
        super().set(**changes)

    def _sync_controls(self) -> None:
        """Set the controls from the state; a selected rank the candidate list does not offer (yet) is left to
        :meth:`update`, which resets it, instead of raising a TraitError from the list widget."""
        sel = self.controls.get("selected")
        if sel is None or self.state.selected in [v for _, v in sel.options]:
            return super()._sync_controls()
        self._busy = True
        try:
            for name, ctrl in self.controls.items():
                if name != "selected":
                    base.show_value(ctrl, getattr(self.state, name))
        finally:
            self._busy = False

    def update(self):
        res = super().update()
        if self.view is not None and "selected" in self.controls:
            sel = self.controls["selected"]
            table = self.view.table
            rows = table.head(200)
            if 200 < self.state.selected <= len(table):  # a rank chosen beyond the list's length stays offered
                rows = pd.concat([rows, table.iloc[[self.state.selected - 1]]])
            opts = [("whole Moon", 0)] + [(_row_label(r), int(r["rank"])) for _, r in rows.iterrows()]
            offered = {v for _, v in opts}
            if self.state.selected not in offered:
                # the selected candidate no longer exists (e.g. a higher threshold left fewer): back to the whole
                # Moon in the state too, so the next change does not push a rank the list cannot show
                self.state = dataclasses.replace(self.state, selected=0)
            if list(sel.options) != opts or sel.value != self.state.selected:
                self._busy = True
                try:
                    if list(sel.options) != opts:
                        sel.options = opts
                    sel.value = self.state.selected
                finally:
                    self._busy = False
        return res
