"""``workbench asymmetry`` on real data (skips without the mirror) and its error paths."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.commands import asymmetry as cmd


def test_lola_near_far_means_match_published_figures(real_dataset, tmp_path):
    real_dataset("lola_ldem_4ppd")
    res = cmd.compute("lola_ldem_4ppd", "elevation", n_boot=200, n_perm=199)
    assert res["near"]["mean"] / 1000 == pytest.approx(-1.10, abs=0.01)
    assert res["far"]["mean"] / 1000 == pytest.approx(0.61, abs=0.01)
    for r in ("near", "far"):
        lo, hi = res[r]["ci95"]
        assert lo < res[r]["mean"] < hi and res[r]["area_fraction"] == pytest.approx(0.5)
    assert res["near_minus_far"]["ci95"][1] < 0 and res["near_minus_far"]["p_value"] < 0.01
    assert "cohens_d" in res["near_minus_far"] and "p_value" in res["north_minus_south"]


def test_crater_cli_writes_json_and_table(real_dataset, tmp_path, capsys):
    real_dataset("craters_head2010")
    out = tmp_path / "head.json"
    assert main(["asymmetry", "--dataset", "craters_head2010", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (res["near"]["count"], res["far"]["count"]) == (2073, 3112)
    lo, hi = res["far"]["ci95"]
    assert lo < res["far"]["density"] < hi
    assert res["near_minus_far"]["p_value"] < 1e-6
    assert "near_minus_far" in capsys.readouterr().out


def test_lroc_catalogue_uses_its_coverage(real_dataset):
    real_dataset("craters_lroc_5_20km")
    res = cmd.compute("craters_lroc_5_20km")
    assert res["lat_range"] == [-60.0, 60.0]
    # half of the +/-60 deg band: 2 pi R^2 sin(60 deg)
    assert res["near"]["area_km2"] == pytest.approx(1.6425e7, rel=1e-3)


def test_unknown_variable_is_a_clean_error(real_dataset, capsys):
    real_dataset("lola_ldem_4ppd")
    assert main(["asymmetry", "--dataset", "lola_ldem_4ppd", "--variable", "FeO"]) == 2
    assert "choose one of: elevation" in capsys.readouterr().err
