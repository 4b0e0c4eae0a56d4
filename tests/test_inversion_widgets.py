"""Notebook 02 panels and the site advisor, on a 1 px/deg synthetic Moon with a tiny model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.errors import InputError
from workbench.inversion.advisor import site_advisor
from workbench.inversion.model import OxideInverter


@pytest.fixture(scope="module")
def lab():
    from workbench.widgets.inversion import InversionLab

    lab = InversionLab(ppd=1, ft_steps=3, sklearn_pixels=2000, pretrained={})
    refl = lab.refl("clementine_uvvis")
    m = OxideInverter(list(refl.band.values), refl.wavelength.values, width=8, depth=1, stem=4, members=2)
    m.fit(refl, lab.truth, lab.masks["train"], steps=5, batch=4, patch=8)
    lab.pretrained["clementine_uvvis"] = m
    return lab


def test_site_advisor_ranks(lab):
    pred = lab.predict("clementine_uvvis", "resnet_pretrained", (), "lora", 2)
    table = site_advisor(pred, lab.refl("clementine_uvvis"))
    assert list(table.columns) == ["site", "lat", "lon", "epistemic_std_at_site", "similar_area_pct", "score"]
    assert table["score"].is_monotonic_decreasing and (table["similar_area_pct"] > 0).all()
    with pytest.raises(InputError, match="epistemic"):
        site_advisor(pred[["FeO", "FeO_std"]], lab.refl("clementine_uvvis"))


def test_site_advisor_on_a_0_360_grid_and_with_sampled_sites(lab):
    from workbench.inversion.advisor import CANDIDATES

    refl = lab.refl("clementine_uvvis")
    pred = lab.predict("clementine_uvvis", "resnet_pretrained", (), "lora", 2)
    table = site_advisor(pred, refl)
    # the same Moon stored with longitudes 0-360: the same pixels, so the same ranking and scores
    east = {"lon": (pred.lon % 360)}
    shifted = site_advisor(pred.assign_coords(east).sortby("lon"), refl.assign_coords(east).sortby("lon"))
    np.testing.assert_allclose(shifted.set_index("site").loc[table.site, "score"], table["score"])
    # a sampled site (and any candidate within 100 km of it) is not ranked again
    ce6 = CANDIDATES["Chang'e-6"]
    rank = site_advisor(pred, refl, sampled={"Chang'e-6": ce6})
    assert rank.attrs["excluded"] == ["Chang'e-6"] and len(rank) == len(table) - 1
    assert "Apollo basin" in set(site_advisor(pred, refl, sampled=[ce6], exclude_km=100).site)
    assert "Apollo basin" not in set(site_advisor(pred, refl, sampled=[ce6], exclude_km=300).site)


def test_inversion_panel_updates(lab):
    from workbench.widgets.inversion import InversionPanel, SiteAdvisorPanel

    panel = InversionPanel(lab, members=2, method="resnet_pretrained", sites=("Chang'e-6",))
    assert panel.error is None and "RMSE" in panel.readout.value
    panel.set(layer="error")
    panel.set(method="lucey2000", oxide="MgO")  # Lucey has no MgO: one clear message, last map kept
    assert panel.error and "FeO/TiO2" in panel.error
    panel.set(method="resnet_finetuned", oxide="FeO", layer="uncertainty")
    assert panel.error is None
    panel.set(sites=())  # used to show the pre-trained model under the fine-tuned name
    assert panel.error and "tick at least one site" in panel.error
    panel.set(sites=("Chang'e-6",))
    assert panel.error is None
    assert "resnet_finetuned" in panel.readout.value and "resnet_pretrained" in panel.readout.value
    adv = SiteAdvisorPanel(lab, members=2)
    assert adv.error is None
    ranked = adv.update()
    assert "Chang'e-6" in set(ranked.site)  # before any sample: every candidate
    adv.set(sampled=("Chang'e-6",))  # scored by the model fine-tuned there, the site itself left out
    ranked = adv.update()
    assert adv.error is None and "Chang'e-6" not in set(ranked.site)
    assert ("clementine_uvvis", ("Chang'e-6",), "lora", 2) in lab._models  # the fine-tuned ensemble scored it
    # the advisor's table shows plain-language column names (site_advisor keeps its own for code)
    assert list(ranked.columns) == ["site", "lat (°N)", "lon (°E)", "model disagreement at the site (ensemble 1σ)",
                                    "ground that looks alike (% of the Moon)", "score"]
    # the far-side candidates that "Try this" names are in view without scrolling the site lists
    names = list(lab.sites)
    for ctrl in (panel.controls["sites"], adv.controls["sampled"]):
        assert ctrl.rows > max(names.index("Tsiolkovskiy"), names.index("SPA centre"))
    panel.cleanup()
    adv.cleanup()


def test_methods_without_the_cnn_are_fitted_once_and_the_metrics_table_keeps_every_setting(lab, monkeypatch):
    from workbench.inversion import baselines as bl
    from workbench.widgets.inversion import InversionPanel

    fits = []
    fit = bl.SklearnInverter.fit
    monkeypatch.setattr(bl.SklearnInverter, "fit", lambda self, *a, **k: fits.append(1) or fit(self, *a, **k))
    panel = InversionPanel(lab, method="gbm", members=2, mode="lora", sites=("Chang'e-6",))
    assert panel.error is None and len(fits) == 1
    panel.set(members=1)
    panel.set(mode="head")
    panel.set(method="lucey2000")
    panel.set(method="gbm", members=2, mode="lora")
    assert panel.error is None and len(fits) == 1  # gbm ignores the ensemble size and the fine-tuning mode
    table = lab.explored_table("clementine_uvvis", ("Chang'e-6",))
    assert (table["method"] == "gbm").sum() == 1 and (table["method"] == "lucey2000").sum() == 1
    # the "compare fine-tuning modes" exercise: one row per mode, the earlier rows kept
    n0 = len(table)
    panel.set(method="resnet_finetuned", mode="head", members=1)
    panel.set(mode="lora")
    assert panel.error is None
    table = lab.explored_table("clementine_uvvis", ("Chang'e-6",))
    ft = table[table["method"] == "resnet_finetuned"]
    assert len(table) == n0 + 2 and {"head", "lora"} <= set(ft["mode"])
    assert {"gbm", "lucey2000"} <= set(table["method"]) and table["FeO"].notna().all()
    assert panel.readout.value.count("<tr") == len(table) + 1  # the panel shows every row (and a header)
    panel.cleanup()


def test_error_map_colour_range_is_the_same_for_every_method(lab):
    import holoviews as hv

    from workbench.widgets.inversion import InversionPanel, InversionState, inversion_view

    clims, images = {}, {}
    for method in ("lucey2000", "gbm"):
        plot, _ = inversion_view(lab, InversionState(method=method, layer="error", members=2))
        (img,) = plot.traverse(lambda x: x, [hv.Image])
        clims[method] = img.opts.get().kwargs["clim"]
        images[method] = np.asarray(img.dimension_values(2))
        assert method in img.opts.get().kwargs["title"]
    assert clims["lucey2000"] == clims["gbm"] and clims["gbm"][0] == -clims["gbm"][1] > -50
    ok = np.isfinite(images["gbm"]) & np.isfinite(images["lucey2000"])
    assert np.abs(images["gbm"][ok] - images["lucey2000"][ok]).mean() > 0.1 * clims["gbm"][1]
    panel = InversionPanel(lab, method="lucey2000", layer="error", members=2)
    panel.set(method="gbm")  # the same colour-bar title: the live plot updates in place and keeps the zoom
    assert panel.error is None and panel._live.n_builds == 1
    panel.cleanup()


def test_with_members_subset(lab):
    m = lab.pretrained["clementine_uvvis"]
    one = m.with_members(1)
    refl = lab.refl("clementine_uvvis")
    assert np.isfinite(one.predict(refl).FeO.values).any()
    with pytest.raises(InputError, match="ensemble size"):
        m.with_members(5)


def test_change6_is_one_site_with_the_sample_coordinates():
    from workbench.geo import global_grid, great_circle_distance
    from workbench.inversion.advisor import CANDIDATES
    from workbench.inversion.experiment import CHANGE6, default_site, site_latlon
    from workbench.widgets.inversion import site_options

    # the advisor's candidate, the sample site and the benchmark's fine-tuning site are the same point
    assert CANDIDATES["Chang'e-6"] == default_site("Chang'e-6") == CHANGE6 == site_latlon("Chang'e-6")
    opts = site_options()
    names = list(opts)
    assert len(names) == len(set(names)) and "Chang'e-6" in names
    near = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if float(great_circle_distance(*opts[a], *opts[b])) < 10.0]
    assert not near, f"the same place offered twice: {near}"
    # the candidate's former coordinates (-41.64, -153.99) fall in the same pixel of the benchmark's 4 px/deg
    # grid, so the advisor scores it exactly as before
    lat, lon = global_grid(4)
    for la, lo in ((-41.64, -153.99), CHANGE6):
        assert (int(np.abs(lat - la).argmin()), int(np.abs(lon - lo).argmin())) == (526, 104)


def _stations() -> pd.DataFrame:
    from workbench.inversion import baselines as bl

    r750 = np.array([0.10, 0.12, 0.15])
    r950 = np.array([0.11, 0.13, 0.16])
    r415 = np.array([0.05, 0.07, 0.09])
    return pd.DataFrame({"site": ["a", "b", "c"], "R415": r415, "R750": r750, "R900": r950, "R950": r950,
                         "R1000": r950, "FeO_wt_pct": bl.lucey_feo(r750, r950) + [1.0, -1.0, 2.0],
                         "TiO2_wt_pct": bl.lucey_tio2(r415, r750) + [np.nan, 0.5, -0.5]})


def test_station_baselines_and_rmse_known_answers():
    from workbench.inversion import baselines as bl
    from workbench.inversion.experiment import station_baseline_rmse, station_baselines

    st = _stations()
    table = station_baselines(st)
    assert list(table.columns) == ["site", "FeO_measured", "FeO_lucey2000", "FeO_wilcox2005", "FeO_lawrence2002",
                                   "TiO2_measured", "TiO2_lucey2000", "OMAT"]
    assert table.attrs["units"]["FeO_lucey2000"] == "wt%" and table.attrs["units"]["OMAT"] == "1"
    np.testing.assert_allclose(table["FeO_wilcox2005"], bl.wilcox2005_feo(st.R750, st.R950))
    np.testing.assert_allclose(table["OMAT"], bl.omat_lucey2000(st.R750, st.R950))
    rmse = station_baseline_rmse(table)
    assert list(rmse) == ["FeO_lucey2000", "FeO_wilcox2005", "FeO_lawrence2002", "TiO2_lucey2000"]
    assert rmse["FeO_lucey2000"] == pytest.approx(np.sqrt((1 + 1 + 4) / 3))
    assert rmse["TiO2_lucey2000"] == pytest.approx(0.5)  # the station without a measurement is left out
    with pytest.raises(InputError, match="R415"):
        station_baselines(st.drop(columns="R415"))


def test_notebook_headline_figures():
    from workbench.inversion.experiment import notebook_headline

    targets = ["FeO", "TiO2", "mg_number"]
    table = pd.DataFrame([[0.5, 0.2, 5.0], [0.4, 0.1, 4.0]], index=["resnet_pretrained", "resnet_finetuned"],
                         columns=targets)
    cov = pd.DataFrame({"cov68": [0.7, 0.6, 0.5], "cov95": [0.95123, 0.9, 0.8]}, index=targets)
    check = {"Korolev": pd.Series([0.45, 0.2, 3.0], index=targets),
             "Chang'e-6": pd.Series([0.4, 0.1, 4.0], index=targets)}
    figs = notebook_headline(table, cov, check)
    assert "stations_cv" not in figs  # no station data: no station figures
    assert figs["finetune_feo_gain"] == pytest.approx(0.2) and figs["coverage95_feo"] == 0.951
    assert figs["advisor_best_vs_worst_feo"] == [0.45, 0.4] and figs["advisor_best_vs_worst_mg_number"] == [3.0, 4.0]
    assert figs["farside_feo_rmse"] == {"resnet_pretrained": 0.5, "resnet_finetuned": 0.4}
    cv = pd.DataFrame({"cv": ["leave-one-station-out"] * 2, "FeO_rmse": [0.9814, 1.2391],
                       "TiO2_rmse": [0.8951, 0.9721]}, index=["gp", "lucey2000"])
    figs = notebook_headline(table, cov, check, cv)
    assert figs["stations_cv"] == "leave-one-station-out" and figs["stations_feo_rmse_gp"] == 0.981
    assert figs["stations_tio2_rmse_lucey2000"] == 0.972 and list(figs)[0] == "stations_cv"
    with pytest.raises(InputError, match="resnet_finetuned"):
        notebook_headline(table.drop("resnet_finetuned"), cov, check)
    with pytest.raises(InputError, match="best and the worst"):
        notebook_headline(table, cov, {"Korolev": check["Korolev"]})


@pytest.fixture(scope="module")
def globe():
    """A random 1 px/deg cube and the epistemic prediction of an untrained tiny model (fast, seeded)."""
    import xarray as xr

    from workbench.geo import global_grid

    lat, lon = global_grid(1)
    data = np.random.default_rng(0).uniform(0.05, 0.3, (3, lat.size, lon.size)).astype(np.float32)
    refl = xr.DataArray(data, dims=("band", "lat", "lon"), coords={"band": ["R415", "R750", "R950"],
                        "wavelength": ("band", [415.0, 750.0, 950.0]), "lat": lat, "lon": lon})
    model = OxideInverter(["R415", "R750", "R950"], [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2)
    return model, refl, model.predict(refl, epistemic=True)


@pytest.mark.parametrize("bad", [0.0, np.inf, -0.01])
def test_one_zero_or_infinite_reflectance_pixel_does_not_spoil_every_score(globe, bad):
    """log(0) = -inf in one pixel once made every band's mean -inf, every score NaN and the ranking empty."""
    from workbench.inversion.advisor import CANDIDATES

    _, refl, pred = globe
    clean = site_advisor(pred, refl)
    r = refl.copy()
    r[:, 0, 0] = bad  # a missing pixel stored as 0 (or a bad value): treated as missing
    got = site_advisor(pred, r)
    assert len(got) == len(clean) == len(CANDIDATES) and got["score"].notna().all()
    np.testing.assert_allclose(got.set_index("site").loc[clean.site, "score"], clean["score"], rtol=0.05)
    assert got.attrs["missing"] == [] and got.attrs["outside"] == []


def test_no_candidate_that_can_be_scored_is_one_clear_error(globe):
    _, refl, pred = globe
    with pytest.raises(InputError, match=r"no candidate site could be scored \(outside the cube: none; on missing "
                                         r"pixels, NaN or reflectance <= 0 or not finite: Chang'e-6, SPA centre"):
        site_advisor(pred, refl * 0.0)


def test_candidates_outside_a_regional_cube_are_listed_not_scored_from_the_edge(globe):
    from workbench.inversion.advisor import CANDIDATES

    _, refl, pred = globe
    box = {"lat": slice(30, -30), "lon": slice(-60, 60)}
    got = site_advisor(pred.sel(box), refl.sel(box))
    inside = {"Aristarchus plateau", "Mare Crisium", "Mare Tranquillitatis"}
    assert set(got.site) == inside and got["score"].notna().all()
    assert set(got.attrs["outside"]) == set(CANDIDATES) - inside
    # a candidate on the grid's last row is inside: it lies within half a cell of that pixel's centre
    edge = site_advisor(pred.sel(box), refl.sel(box), candidates={"edge": (-29.9, 59.9), "beyond": (-31.6, 0.0)})
    assert list(edge.site) == ["edge"] and edge.attrs["outside"] == ["beyond"]
    with pytest.raises(InputError, match=r"no candidate site could be scored \(outside the cube: beyond;"):
        site_advisor(pred.sel(box), refl.sel(box), candidates={"beyond": (-31.6, 0.0)})


def test_the_advisor_experiment_on_a_near_side_cube_says_there_is_no_far_side_site(globe):
    """advisor_site_experiment once took the first row of an empty far-side ranking: an IndexError."""
    import types

    from workbench.inversion.experiment import advisor_site_experiment

    model, refl, _ = globe
    near = refl.sel(lat=slice(30, -30), lon=slice(-60, 60))
    exp = types.SimpleNamespace(models={"resnet_pretrained": model}, refl=near)
    with pytest.raises(InputError, match="ranked no far-side candidate"):
        advisor_site_experiment(exp)


def test_lab_says_a_line_before_each_uncached_fine_tune_and_prediction(lab):
    """Notebook 02 passes print: a fine-tune and a whole-Moon prediction each announce themselves once; a
    cached prediction says nothing."""
    lines = []
    lab.say = lines.append
    try:
        lab.predict("clementine_uvvis", "resnet_finetuned", ("Chang'e-6",), "head", 2)
        lab.predict("clementine_uvvis", "resnet_finetuned", ("Chang'e-6",), "head", 2)
    finally:
        del lab.say
    assert lines == ["clementine_uvvis: fine-tuning (head, 2 members, 3 steps) at Chang'e-6…",
                     "clementine_uvvis: resnet_finetuned on the whole Moon…"]


def test_mg_number_is_shown_as_mg_hash_on_the_controls_maps_and_table(lab):
    """The data keep ``mg_number``; a reader sees "Mg#": the oxide dropdowns, the map's title and colour bar, the
    readout's table."""
    import holoviews as hv

    from workbench.widgets.inversion import InversionPanel, InversionState, SiteAdvisorPanel, inversion_view

    for layer, title in (("value", "Mg# — resnet_pretrained"), ("uncertainty", "Mg# 1σ — resnet_pretrained")):
        plot, html = inversion_view(lab, InversionState(method="resnet_pretrained", oxide="mg_number", layer=layer,
                                                        members=2))
        el = next(iter(plot.traverse(lambda e: e, [hv.Image]))) if not isinstance(plot, hv.Image) else plot
        assert hv.Store.lookup_options("bokeh", plot, "plot").kwargs["title"] == title
        assert el.vdims[0].label.startswith("Mg#") and "mg_number" not in html and "<th>Mg#</th>" in html
        # the wide table scrolls inside the control column instead of widening the readout (its text was cut off)
        assert "<div style='overflow-x:auto; max-width:400px; white-space:nowrap'><table" in html
    panel = InversionPanel(lab, members=2, method="resnet_pretrained", oxide="mg_number")
    adv = SiteAdvisorPanel(lab, members=2)
    try:
        assert panel.error is None and panel.controls["oxide"].label == "Mg#"
        assert ("Mg#", "mg_number") in adv.controls["oxide"].options and ("all", "all") in adv.controls["oxide"].options
    finally:
        panel.cleanup()
        adv.cleanup()
