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


def test_inversion_panel_updates(lab):
    from workbench.widgets.inversion import InversionPanel, SiteAdvisorPanel

    panel = InversionPanel(lab, members=2, method="resnet_pretrained", sites=("Chang'e-6",))
    assert panel.error is None and "RMSE" in panel.readout.value
    panel.set(layer="error")
    panel.set(method="lucey2000", oxide="MgO")  # Lucey has no MgO: one clear message, last map kept
    assert panel.error and "FeO/TiO2" in panel.error
    panel.set(method="resnet_finetuned", oxide="FeO", layer="uncertainty")
    assert panel.error is None
    assert "resnet_finetuned" in panel.readout.value and "resnet_pretrained" in panel.readout.value
    adv = SiteAdvisorPanel(lab, members=2)
    assert adv.error is None
    panel.cleanup()
    adv.cleanup()


def test_with_members_subset(lab):
    m = lab.pretrained["clementine_uvvis"]
    one = m.with_members(1)
    refl = lab.refl("clementine_uvvis")
    assert np.isfinite(one.predict(refl).FeO.values).any()
    with pytest.raises(InputError, match="ensemble size"):
        m.with_members(5)
