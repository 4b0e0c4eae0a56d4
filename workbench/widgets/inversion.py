"""Notebook 02 panels: oxide maps with uncertainty and error, a live metrics table, the site advisor.

:class:`InversionLab` holds the data (the synthetic Moon seen by a virtual instrument) and caches every
trained or fine-tuned model; the panels hold only their state and call one pure function of it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..inversion import baselines as bl
from ..inversion.advisor import CANDIDATES, site_advisor
from ..inversion.experiment import (
    _pixels,
    _table_to_ds,
    default_site,
    fit_gbm_library,
    library_data,
    library_recipe,
    make_split,
    metrics,
    replay_sources,
)
from ..inversion.model import TARGETS, load_pretrained, site_mask
from . import base

METHODS = ("resnet_finetuned", "resnet_pretrained", "lucey2000", "pls", "random_forest", "gbm", "gbm_library")


def site_options() -> dict[str, tuple[float, float]]:
    """Returned-sample sites (from ``workbench.samples``) plus the advisor's candidate sites, each name once.

    A candidate that is also a sample site (Chang'e-6) has the same name and coordinates in both lists
    (:data:`workbench.inversion.advisor.CANDIDATES`), so it is offered once.
    """
    out: dict[str, tuple[float, float]] = {}
    try:
        from ..samples import sample_sites

        for _, r in sample_sites().iterrows():
            out[str(r["site"])] = (float(r["lat"]), float(r["lon"]))
    except Exception:  # noqa: BLE001 - no catalog: the typed-in Chang'e-6 site still works
        out["Chang'e-6"] = default_site()
    for k, v in CANDIDATES.items():
        out.setdefault(k, v)
    return out


#: methods that use the CNN: only these depend on fine-tuning sites, mode and ensemble size
CNN_METHODS = ("resnet_finetuned", "resnet_pretrained")


def prediction_key(instrument: str, method: str, sites=(), mode: str = "lora", members: int = 4) -> tuple:
    """The cache key of a prediction: only the inputs ``method`` depends on.

    ``(instrument, method)`` for the classical and scikit-learn methods (they ignore sites, fine-tuning mode
    and ensemble size), ``(instrument, method, (), None, members)`` for the pre-trained CNN and
    ``(instrument, method, sorted sites, mode, members)`` for the fine-tuned one.
    """
    if method == "resnet_finetuned":
        return (instrument, method, tuple(sorted(sites)), mode, members)
    if method == "resnet_pretrained":
        return (instrument, method, (), None, members)
    return (instrument, method)


def error_colour_limit(truth: xr.DataArray) -> float:
    """Half-width of the error maps' symmetric colour range for one oxide: the standard deviation of the truth
    over the Moon (2 significant figures).

    A fixed rule that does not depend on the method, so the same colour means the same error for every
    method; an error as large as the oxide's natural spread (no better than guessing its mean) saturates.
    """
    v = np.asarray(truth.values, dtype="float64")
    sd = float(np.nanstd(v[np.isfinite(v)])) if np.isfinite(v).any() else 0.0
    if not sd > 0:
        return 1.0
    return float(f"{sd:.2g}")


class InversionLab:
    """Synthetic-Moon data and a cache of models for the inversion panels.

    Parameters
    ----------
    ppd, snr, seed
        Synthetic Moon resolution, instrument signal-to-noise ratio and seed.
    ft_steps
        Fine-tuning steps per (sites, mode) combination (small in fast mode).
    pretrained
        ``{instrument: OxideInverter}`` to use instead of the committed weights.
    progress
        Called with one line before each fine-tune and each whole-Moon prediction that is not cached yet
        (notebook 02 passes ``print``: those steps take from seconds to minutes).
    """

    say: Callable[[str], None] = staticmethod(lambda line: None)  # replaced by ``progress`` when given

    def __init__(self, ppd: float = 4, snr: float = 100.0, seed: int = 0, ft_steps: int = 150,
                 sklearn_pixels: int = 20_000, pretrained: dict | None = None,
                 progress: Callable[[str], None] | None = None):
        from ..synth import make_moon

        self.pretrained = dict(pretrained or {})
        if progress is not None:
            self.say = progress

        self.moon = make_moon(seed=seed, resolution_ppd=ppd)
        self.truth = self.moon[list(TARGETS)].compute()
        self.snr, self.seed, self.ft_steps, self.sklearn_pixels = snr, seed, ft_steps, sklearn_pixels
        self.sites = site_options()
        self.masks = make_split(self.truth, default_site(), 60.0)
        self._refl: dict = {}
        self._models: dict = {}
        self._preds: dict = {}  # {prediction_key(...): Dataset}, in the order they were computed

    def refl(self, instrument: str) -> xr.DataArray:
        from ..synth import observe

        if instrument not in self._refl:
            self._refl[instrument] = observe(self.moon, instrument, snr=self.snr,
                                             seed=self.seed + 1)["reflectance"].compute()
        return self._refl[instrument]

    def site_mask(self, sites: tuple[str, ...], radius_km: float = 60.0) -> xr.DataArray:
        mask = xr.zeros_like(self.truth["FeO"], dtype=bool)
        for s in sites:
            if s not in self.sites:
                raise InputError(f"unknown site {s!r}; choose from {sorted(self.sites)}")
            mask = mask | site_mask(self.truth, *self.sites[s], radius_km)
        return mask

    def base_model(self, instrument: str):
        """The pre-trained ensemble of ``instrument`` as given or committed, every member (loaded once)."""
        if instrument not in self.pretrained:
            self.pretrained[instrument] = load_pretrained(instrument)
        return self.pretrained[instrument]

    def model(self, instrument: str, sites: tuple[str, ...] = (), mode: str = "lora", members: int = 4):
        """Pre-trained (committed weights) or fine-tuned model, cached by its inputs."""
        # the pre-trained ensemble does not depend on a fine-tuning mode: one entry for all modes
        key = (instrument, tuple(sorted(sites)), mode if sites else None, members)
        if key not in self._models:
            if not sites:
                self._models[key] = self.base_model(instrument).with_members(members)
            else:
                m = copy.deepcopy(self.model(instrument, (), mode, members))
                refl = self.refl(instrument)
                self.say(f"{instrument}: fine-tuning ({mode}, {members} members, {self.ft_steps} steps) at "
                         f"{' + '.join(sites)}…")
                m.fine_tune(refl, self.truth, self.site_mask(sites), mode=mode, steps=self.ft_steps,
                            replay=replay_sources(m, refl, self.truth, self.masks["train"]), seed=self.seed)
                self._models[key] = m
        return self._models[key]

    def predict(self, instrument: str, method: str, sites: tuple[str, ...] = ("Chang'e-6",),
                mode: str = "lora", members: int = 4) -> xr.Dataset:
        """Prediction of ``method`` on the whole Moon (cached)."""
        if method == "resnet_pretrained":
            sites = ()
        elif method == "resnet_finetuned" and not sites:
            raise InputError("resnet_finetuned with no fine-tuning site would be the pre-trained model: tick at "
                             "least one site, or choose resnet_pretrained")
        key = prediction_key(instrument, method, sites, mode, members)
        if key in self._preds:
            return self._preds[key]
        refl = self.refl(instrument)
        net = (self.model(instrument, sites if method == "resnet_finetuned" else (), mode, members)
               if method.startswith("resnet") else None)  # fine-tuned first, if need be (it says so)
        self.say(f"{instrument}: {method} on the whole Moon…")
        if net is not None:
            pred = net.predict(refl, epistemic=True)
        elif method == "lucey2000":
            c = bl.classical_maps(refl)
            pred = xr.Dataset({"FeO": c.FeO_lucey2000, "TiO2": c.TiO2_lucey2000})
        elif method in bl.SKLEARN_KINDS or method == "gbm_library":
            if method == "gbm_library":
                recipe = library_recipe(self.base_model(instrument))  # any ensemble size: the GBM uses no member
                if not recipe:
                    raise InputError("gbm_library needs weights pre-trained with a spectral library; "
                                     "choose gbm or retrain with `python -m workbench.inversion.train --library`")
                m = fit_gbm_library(refl, self.truth, self.masks["train"], library_data(recipe),
                                    self.sklearn_pixels, self.seed)
            else:
                rng = np.random.default_rng(self.seed)
                X, Y = _pixels(refl, self.truth, self.masks["train"], self.sklearn_pixels, rng)
                m = bl.SklearnInverter(method, seed=self.seed, size=60).fit(X, Y, refl["wavelength"].values)
            Xall = refl.transpose("band", "lat", "lon").values.reshape(refl.sizes["band"], -1).T
            pred = _table_to_ds(m.predict(Xall), refl)
            for t in TARGETS:
                pred[t].attrs["units"] = "1" if t == "mg_number" else "wt%"
        else:
            raise InputError(f"unknown method {method!r}; choose one of {METHODS}")
        self._preds[key] = pred
        return pred

    def computed_methods(self, instrument: str, sites, mode: str, members: int) -> list[str]:
        """Methods already computed for these settings."""
        return [m for m in METHODS if prediction_key(instrument, m, sites, mode, members) in self._preds]

    def explored_table(self, instrument: str, sites=()) -> pd.DataFrame:
        """Far-side hold-out RMSE of every prediction computed so far for ``instrument``, one row each.

        A row per method and, where the method depends on them, fine-tuning sites, mode and ensemble size
        (columns ``method``, ``sites``, ``mode``, ``members``; ``–`` where they do not apply), in the order
        they were computed, so the table grows as the panel is explored. All rows are scored on the same
        pixels: the far side less 100 km around ``sites`` and around every row's fine-tuning sites.
        """
        keys = [k for k in self._preds if k[0] == instrument]
        used = set(sites)
        for k in keys:
            used.update(k[2] if len(k) > 2 else ())
        test = self.masks["test"] & ~self.site_mask(tuple(sorted(used)), 100.0) if used else self.masks["test"]
        rows = []
        for k in keys:
            method = k[1]
            ks, kmode, kmembers = (k[2], k[3], k[4]) if len(k) > 2 else ((), None, None)
            met = metrics(self._preds[k], self.truth, test)
            rows.append({"method": method,
                         "sites": " + ".join(ks) if method == "resnet_finetuned" else "–",
                         "mode": kmode if method == "resnet_finetuned" else "–",
                         "members": kmembers if kmembers is not None else "–",
                         **{t: d["rmse"] for t, d in met.items()}})
        cols = ["method", "sites", "mode", "members", *TARGETS]
        return pd.DataFrame(rows, columns=cols)

    def metrics_table(self, instrument: str, methods, sites, mode, members) -> pd.DataFrame:
        """Far-side hold-out RMSE (wt%) per method and target (site pixels excluded)."""
        test = self.masks["test"] & ~self.site_mask(sites, 100.0) if sites else self.masks["test"]
        rows = {}
        for m in methods:
            met = metrics(self.predict(instrument, m, sites, mode, members), self.truth, test)
            rows[m] = {t: d["rmse"] for t, d in met.items()}
        return pd.DataFrame(rows).T.reindex(columns=list(TARGETS))


@dataclass
class InversionState:
    instrument: str = "clementine_uvvis"
    method: str = "resnet_finetuned"
    oxide: str = "FeO"
    layer: str = "value"
    sites: tuple = ("Chang'e-6",)
    members: int = 4
    mode: str = "lora"


def inversion_view(lab: InversionLab, state: InversionState):
    """Pure view: the map of ``state.layer`` for the chosen oxide and method + a metrics table (HTML)."""
    from ..maps import lunar_map

    pred = lab.predict(state.instrument, state.method, tuple(state.sites), state.mode, state.members)
    if state.oxide not in pred:
        raise InputError(f"{state.method} does not estimate {state.oxide}; pick FeO/TiO2 or another method")
    units = "1" if state.oxide == "mg_number" else "wt%"
    name = base.display_name(state.oxide)  # "Mg#" on the map, "mg_number" in the data
    # the method is named in the title only: the colour-bar label stays the same across methods, so switching
    # the method updates the live plot in place (keeping the zoom) instead of drawing a new one
    if state.layer == "value":
        da = pred[state.oxide].assign_attrs(units=units, long_name=name)
        plot = lunar_map(da, centre="far", **base.PANEL_MAP_SIZE, title=f"{name} — {state.method}")
    elif state.layer == "uncertainty":
        if f"{state.oxide}_std" not in pred:
            raise InputError(f"{state.method} gives no uncertainty; choose a resnet method")
        da = pred[f"{state.oxide}_std"].assign_attrs(units=units, long_name=f"{name} 1σ")
        plot = lunar_map(da, centre="far", **base.PANEL_MAP_SIZE, title=f"{name} 1σ — {state.method}")
    elif state.layer == "error":
        da = (pred[state.oxide] - lab.truth[state.oxide]).assign_attrs(
            units=units, long_name=f"{name} error (prediction − truth)")
        m = error_colour_limit(lab.truth[state.oxide])  # the same for every method: errors compare by colour
        plot = lunar_map(da, centre="far", **base.PANEL_MAP_SIZE, diverging=True, clim=(-m, m),
                         title=f"{name} error — {state.method} (colour range ±1σ of the truth)")
    else:
        raise InputError(f"unknown layer {state.layer!r}; use value, uncertainty or error")
    table = lab.explored_table(state.instrument, tuple(state.sites)).rename(columns=base.display_name)
    html = ("<b>Far-side hold-out RMSE</b> of everything computed so far (oxides in wt%; Mg#, molar 0–100, in "
            "Mg# units; 100 km around the fine-tuning sites excluded)<br>"
            # the table scrolls inside the column; without max-width it widened the readout, whose text then ran
            # past the column's edge, cut off; cells do not wrap ("Chang'e-6" broke after its hyphen)
            + f"<div style='overflow-x:auto; max-width:{base.CONTROL_WIDTH}; white-space:nowrap'>"
            + table.round(2).to_html(na_rep="–", border=0, index=False)
            + "</div>")
    return plot, html


class InversionPanel(base.Panel):
    """Instrument, method, fine-tuning sites, ensemble size → oxide / uncertainty / error maps + metrics."""

    State = InversionState
    title = "Oxide inversion (far side held out)"

    def __init__(self, lab: InversionLab, **overrides):
        self.lab = lab
        super().__init__(**overrides)

    def make_controls(self):
        ctrl = {
            "instrument": base.choice("instrument", ["clementine_uvvis", "kaguya_mi"], buttons=False),
            "method": base.choice("method", list(METHODS), buttons=False),
            "oxide": base.choice("oxide", base.display_options(TARGETS), buttons=False),
            "layer": base.choice("layer", ["value", "uncertainty", "error"]),
            "mode": base.choice("fine-tune", ["head", "lora", "full"]),
            "members": base.int_slider("ensemble size", None, 1, 4),
        }
        ctrl["sites"] = site_list(self.lab, "fine-tune sites")
        return ctrl

    def compute(self, state):
        return inversion_view(self.lab, state)


@dataclass
class AdvisorState:
    oxide: str = "FeO"
    radius: float = 0.5
    members: int = 4
    #: sites already sampled: the ensemble is fine-tuned on them (LoRA) and candidates within 100 km are left out;
    #: empty = the situation before any far-side sample (the pre-trained model)
    sampled: tuple = ()


#: Column names the site advisor's table shows (:func:`workbench.inversion.advisor.site_advisor` keeps its own,
#: which the tests and benchmarks read); ``site`` and ``score`` stay as they are.
ADVISOR_DISPLAY_COLUMNS = {
    "lat": "lat (°N)",
    "lon": "lon (°E)",
    "epistemic_std_at_site": "model disagreement at the site (ensemble 1σ)",
    "similar_area_pct": "ground that looks alike (% of the Moon)",
}

#: Rows a site list shows at once: every site up to the far-side candidates that notebook 02's "Try this"
#: names (Tsiolkovskiy, SPA centre), without scrolling.
SITE_LIST_ROWS = 16


def site_list(lab: InversionLab, description: str):
    """A multi-select of the lab's sites, :data:`SITE_LIST_ROWS` high (fewer when there are fewer sites)."""
    import ipywidgets as w

    return w.SelectMultiple(options=list(lab.sites), description=description,
                            rows=min(SITE_LIST_ROWS, len(lab.sites)), style={"description_width": base.LABEL_WIDTH})


def advisor_view(lab: InversionLab, state: AdvisorState, instrument: str = "clementine_uvvis"):
    """Pure view: candidate sites ranked by the uncertainty a new sample there would address.

    Columns as :data:`ADVISOR_DISPLAY_COLUMNS` names them, numbers to 3 decimals.
    """
    sampled = tuple(state.sampled)
    method = "resnet_finetuned" if sampled else "resnet_pretrained"
    pred = lab.predict(instrument, method, sampled, "lora", state.members)
    rank = site_advisor(pred, lab.refl(instrument), target=state.oxide, radius=state.radius,
                        sampled={s: lab.sites[s] for s in sampled})
    return rank.round(3).rename(columns=ADVISOR_DISPLAY_COLUMNS)


class SiteAdvisorPanel(base.Panel):
    """Rank candidate landing sites by expected uncertainty reduction (information density)."""

    State = AdvisorState
    title = "Site advisor"

    def __init__(self, lab: InversionLab, **overrides):
        self.lab = lab
        super().__init__(**overrides)

    def make_controls(self):
        return {"oxide": base.choice("oxide", base.display_options([*TARGETS, "all"]), buttons=False),
                "radius": base.slider("spectral radius", "σ", 0.1, 1.5, 0.05),
                "members": base.int_slider("ensemble size", None, 2, 4),
                "sampled": site_list(self.lab, "already sampled")}

    def compute(self, state):
        return advisor_view(self.lab, state)
