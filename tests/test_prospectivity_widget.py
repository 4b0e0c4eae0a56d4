"""Notebook 05 panel: pure view function and the panel wiring (tiny random Moon, tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

from workbench.analysis import prospectivity as P
from workbench.analysis.layers import stack_layers
from workbench.geo import global_grid

LAYERS = ("TiO2", "FeO", "npfe", "elevation")


def _moon(seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    lat, lon = global_grid(0.5)
    ds = xr.Dataset(coords={"lat": lat, "lon": lon})
    for name, off, sc in (("TiO2", 2.0, 1.0), ("FeO", 10.0, 3.0), ("npfe", 0.3, 0.05), ("elevation", 0.0, 1e3)):
        f = gaussian_filter(rng.normal(size=(lat.size, lon.size)), 3, mode=("nearest", "wrap"))
        ds[name] = (("lat", "lon"), (off + sc * f / f.std()).astype("float32"), {"units": "1"})
    truth = np.zeros((lat.size, lon.size), bool)
    truth[40:44, 100:104] = True
    ds["TiO2"] = ds["TiO2"].where(~truth, ds["TiO2"] + 10)
    ds["deposit"] = (("lat", "lon"), truth)
    return ds


@pytest.fixture(scope="module")
def ctx():
    import torch

    from workbench.widgets.prospectivity import ProspectivityContext

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    train = [stack_layers(_moon(s), LAYERS) for s in (1, 2)]
    model = P.fit(train, config={"tile": 16, "dim": 16, "depth": 1, "heads": 2, "fusion_channels": 8},
                  steps=3, batch_size=4)
    ds = _moon(3)
    st = stack_layers(ds, LAYERS)
    c = ProspectivityContext(stack=st, errors=P.layer_errors(model, st), normalisation=model.normalisation,
                             train=train, tio2=ds["TiO2"], truth=ds["deposit"])
    yield c
    torch.set_num_threads(n)


def test_view_is_pure_and_finds_candidates(ctx):
    from workbench.widgets.prospectivity import ProspectivityState, prospectivity_view

    st = ProspectivityState(method="zscore", threshold_pct=99.5)
    v1 = prospectivity_view(ctx, st)
    v2 = prospectivity_view(ctx, st)
    assert len(v1.table) >= 1 and v1.table.equals(v2.table)
    assert 0.99 < v1.metrics["auc"] <= 1.0
    # the strongest candidate is the planted blob (TiO2 + 10 wt%)
    top = v1.table.iloc[0]
    assert 3 < top["lat"] < 9 and 20 < top["lon"] < 28 and top["mean_TiO2"] > 8
    # unticking TiO2 removes the signal from the z-score map
    v3 = prospectivity_view(ctx, ProspectivityState(method="zscore", threshold_pct=99.5, TiO2=False))
    assert v3.metrics["auc"] < v1.metrics["auc"]


def test_view_zooms_on_selected_candidate(ctx):
    from workbench.widgets.prospectivity import ProspectivityState, prospectivity_view

    v = prospectivity_view(ctx, ProspectivityState(method="pca", selected=1))
    import holoviews as hv

    img = v.map.get(0) if isinstance(v.map, hv.Overlay) else v.map
    xlim = hv.Store.lookup_options("bokeh", img, "plot").kwargs["xlim"]
    assert xlim[1] - xlim[0] < 60


def test_panel_updates_once_and_reports_bad_state(ctx):
    from workbench.widgets.prospectivity import ProspectivityPanel

    p = ProspectivityPanel(ctx, method="network")
    n = p.n_computes
    p.controls["threshold_pct"].value = 98.0
    assert p.n_computes == n + 1 and p.error is None
    opts = p.controls["selected"].options
    assert len(opts) == len(p.view.table) + 1
    p.controls["selected"].value = opts[1][1]
    assert p.state.selected == 1 and p.error is None
    for k in LAYERS:
        p.controls[k].value = False
    assert p.error is not None and "tick" in p.error
    p.reset()
    assert p.error is None and p.state.threshold_pct == 99.0
    p.cleanup()


def test_zoom_box_of_a_candidate_across_the_seam_is_not_cut_in_half():
    import pandas as pd

    from workbench.widgets.prospectivity import _crosses_seam, _zoom_box

    row = pd.Series({"lat": 10.0, "lon": 179.5, "lat_min": 8.0, "lat_max": 12.0, "lon_min": 176.0, "lon_max": -177.0})
    assert _crosses_seam(row)
    (x0, x1), (y0, y1) = _zoom_box(row)
    assert (x0, x1) == (172.0, 187.0) and (y0, y1) == (4.0, 16.0)  # on the far-centred 0..360 map
    plain = row.copy()
    plain[["lon", "lon_min", "lon_max"]] = [20.0, 18.0, 22.0]
    assert not _crosses_seam(plain) and _zoom_box(plain)[0] == (14.0, 26.0)


def test_selection_that_no_longer_exists_goes_back_to_the_whole_moon(ctx):
    from workbench.widgets.prospectivity import ProspectivityPanel

    p = ProspectivityPanel(ctx, method="zscore", threshold_pct=95.0, min_pixels=1)
    n = len(p.view.table)
    assert n > 10
    p.controls["selected"].value = n  # the last candidate
    assert p.state.selected == n
    p.controls["threshold_pct"].value = 99.9  # far fewer candidates: rank n is gone
    assert len(p.view.table) < n and p.state.selected == 0 and p.controls["selected"].value == 0
    # every later change still updates the panel (it used to raise TraitError and freeze)
    for k, v in (("threshold_pct", 97.0), ("method", "pca"), ("min_pixels", 2)):
        c = p.n_computes
        p.controls[k].value = v
        assert p.n_computes == c + 1 and p.error is None and getattr(p.state, k) == v
    p.controls["selected"].value = 1
    assert p.state.selected == 1 and p.error is None
    for k in LAYERS:  # a bad state is still reported in the readout
        p.controls[k].value = False
    assert p.error is not None and "tick" in p.error
    p.cleanup()


def test_selection_is_cleared_when_the_candidates_are_ranked_anew(ctx):
    from workbench.widgets.prospectivity import ProspectivityPanel

    p = ProspectivityPanel(ctx, method="zscore", threshold_pct=99.0, min_pixels=1)
    assert len(p.view.table) >= 2
    p.controls["selected"].value = 2
    assert p.state.selected == 2
    # a lower threshold keeps a rank 2, but it is another region: the selection must not follow the number
    for k, v in (("threshold_pct", 97.0), ("method", "pca"), ("rank_by", "area_km2"), ("npfe", False)):
        p.controls["selected"].value = 2
        p.controls[k].value = v
        assert len(p.view.table) >= 2 and p.error is None
        assert p.state.selected == 0 and p.controls["selected"].value == 0, k
    assert "whole Moon" in p.readout.value
    p.cleanup()


def test_map_title_counts_the_scored_layers_and_names_the_context_only_ones(ctx):
    import dataclasses

    import holoviews as hv

    from workbench.widgets.prospectivity import ProspectivityState, prospectivity_view

    def title(c, method):
        v = prospectivity_view(c, ProspectivityState(method=method))
        (img,) = v.map.traverse(lambda x: x, [hv.Image])
        return hv.Store.lookup_options("bokeh", img, "plot").kwargs["title"]

    context = dataclasses.replace(ctx, score_rule="context_mahalanobis", error_stats=P.fit_error_stats(ctx.errors),
                                  _cache={})
    assert "(3 layers scored; context only: elevation)" in title(context, "network")
    assert "(4 layers scored)" in title(context, "zscore")  # the baselines score every ticked layer
    assert "(4 layers scored)" in title(ctx, "network")  # rule "sum": every layer is scored


def test_view_threshold_is_a_percentile_of_area(ctx):
    from workbench.widgets.prospectivity import ProspectivityState, prospectivity_view

    v = prospectivity_view(ctx, ProspectivityState(method="zscore", threshold_pct=97.0))
    assert v.threshold == pytest.approx(P.area_percentile(v.score, 97.0))
    assert v.threshold != pytest.approx(float(np.nanpercentile(v.score.values, 97.0)), rel=1e-6)
    assert "the top 3% of the area by score" in v.readout


def test_layer_checkboxes_show_display_names(ctx):
    from workbench.widgets.prospectivity import ProspectivityPanel

    p = ProspectivityPanel(ctx, method="network")
    try:
        assert p.controls["npfe"].description == "layer: npFe⁰" and p.controls["TiO2"].description == "layer: TiO2"
        # the candidate list spans the column (no label beside it) in a fixed-width font set by the panel's CSS,
        # which a Select's style traits cannot (its style has description_width only)
        sel = p.controls["selected"]
        assert sel.description == "" and "workbench-candidates" in sel._dom_classes
        header = p.sidebar.children[0].value
        assert header.startswith("<style>.workbench-candidates select {font-family: monospace") and "<b>" in header
    finally:
        p.cleanup()


def test_candidate_rows_fit_the_column_and_keep_their_columns_aligned():
    """A row beside a 140 px label was cut after its score (seen in JupyterLab); the list now spans the column at
    11 px, so a row has at most 58 characters, and no-break spaces keep the columns aligned (an option's text
    collapses runs of plain spaces)."""
    import pandas as pd

    from workbench.widgets.prospectivity import _row_label

    rows = [_row_label(pd.Series(r)) for r in (
        {"rank": 1, "lat": 9.9, "lon": -20.6, "area_km2": 31917.0, "mean_score": 441.0, "mean_TiO2": 12.3},
        {"rank": 200, "lat": -69.95, "lon": -179.95, "area_km2": 1234567.0, "mean_score": 0.00123, "mean_TiO2": 0.4})]
    assert rows[0] == "#  1  +9.9°N  -20.6°E   31917 km² score 441   TiO2 12.3%".replace(" ", "\u00a0")
    assert all(len(r) <= 58 and " " not in r for r in rows)
    assert len({r.index("°E") for r in rows}) == 1 and len({r.index("km²") for r in rows}) == 1
