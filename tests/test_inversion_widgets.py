"""Notebook 02 panels and the site advisor, on a 1 px/deg synthetic Moon with a tiny model."""

from __future__ import annotations

import numpy as np
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
    ce6 = CANDIDATES["Chang'e-6 (Apollo basin, SPA)"]
    rank = site_advisor(pred, refl, sampled={"Chang'e-6": ce6})
    assert rank.attrs["excluded"] == ["Chang'e-6 (Apollo basin, SPA)"] and len(rank) == len(table) - 1
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
    assert "Chang'e-6 (Apollo basin, SPA)" in set(ranked.site)  # before any sample: every candidate
    adv.set(sampled=("Chang'e-6",))  # scored by the model fine-tuned there, the site itself left out
    ranked = adv.update()
    assert adv.error is None and "Chang'e-6 (Apollo basin, SPA)" not in set(ranked.site)
    assert ("clementine_uvvis", ("Chang'e-6",), "lora", 2) in lab._models  # the fine-tuned ensemble scored it
    panel.cleanup()
    adv.cleanup()


def test_with_members_subset(lab):
    m = lab.pretrained["clementine_uvvis"]
    one = m.with_members(1)
    refl = lab.refl("clementine_uvvis")
    assert np.isfinite(one.predict(refl).FeO.values).any()
    with pytest.raises(InputError, match="ensemble size"):
        m.with_members(5)
