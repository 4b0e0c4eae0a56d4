"""Bad input to the asymmetry and SPA analyses gets one clear InputError (fast, no data)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from workbench import catalog, geo
from workbench.analysis import asymmetry as A
from workbench.analysis import spa
from workbench.errors import InputError


def _noise(seed: int = 0) -> xr.DataArray:
    t = geo.global_template(1, name="x")
    return t.copy(data=np.random.default_rng(seed).normal(size=t.shape)).assign_attrs(units="m")


def test_out_of_range_or_swapped_coordinates_are_named():
    da = _noise()
    with pytest.raises(InputError, match="latitude out of range.*swap"):
        A.region_statistics(da.assign_coords(lat=da["lat"].values + 5), n_boot=100)
    with pytest.raises(InputError, match="latitude out of range"):
        A.region_statistics(da.rename(lat="lon", lon="lat"), n_boot=100)
    with pytest.raises(InputError, match="swap"):
        spa.radial_profile(da, -169.0, -53.0)  # (lon, lat) passed as (lat, lon)
    with pytest.raises(InputError, match="swap"):
        spa.sector_change_points(da, -169.0, -53.0, 1)


def test_asymmetry_summary_on_other_dims_is_an_input_error():
    with pytest.raises(InputError, match="dims"):
        A.asymmetry_summary(_noise().rename(lat="y", lon="x"), n_boot=100, n_perm=99)


def test_minor_bad_arguments():
    da = _noise()
    with pytest.raises(InputError, match="threshold"):
        A.fraction_above(da, np.nan, n_boot=100)
    with pytest.raises(InputError, match="constant"):
        A.region_distributions(xr.ones_like(da))
    with pytest.raises(InputError, match="bins"):
        A.region_distributions(da, bins=0)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        A.weighted_quantile([1, 2, 3], [1, 1, 1], 1.5)
    for w in ([1, -1, 1], [1, np.nan, 1], [1, np.inf, 1]):
        with pytest.raises(InputError, match="non-negative"):
            A.weighted_quantile([1, 2, 3], w, 0.5)
    with pytest.raises(InputError, match="whole number"):
        A.region_statistics(da, n_boot=50.5)


def test_cli_refuses_a_coordinate_as_variable(monkeypatch, capsys):
    from workbench.cli import main

    ds = _noise().to_dataset(name="elevation")
    monkeypatch.setattr(catalog, "get_manifest", lambda i: SimpleNamespace(kind="grid"))
    monkeypatch.setattr(catalog, "open_dataset", lambda i: ds)
    assert main(["asymmetry", "--dataset", "fake_grid", "--variable", "lat"]) == 2
    err = capsys.readouterr().err
    assert "coordinate" in err and "choose one of: elevation" in err


def test_cli_refuses_grid_options_for_a_crater_catalogue(monkeypatch, capsys):
    from workbench.cli import main

    monkeypatch.setattr(catalog, "get_manifest", lambda i: SimpleNamespace(kind="table"))
    assert main(["asymmetry", "--dataset", "craters_head2010", "--n-boot", "50"]) == 2
    assert "--n-boot apply to gridded datasets" in capsys.readouterr().err


def test_cli_json_is_strict_with_null_for_nan(monkeypatch, tmp_path):
    from workbench.cli import main
    from workbench.commands import asymmetry as cmd

    row = {"mean": 1.0, "ci95": [float("nan"), float("nan")], "median": np.float64(1.0), "area_fraction": 0.5,
           "n_blocks": np.int64(2)}
    res = {"dataset": "d", "variable": "x", "units": "m", "method": "m",
           **{r: dict(row) for r in ("near", "far", "north", "south")},
           **{d: {"value": 0.0, "ci95": [float("nan"), 1.0], "p_value": 0.5, "cohens_d": float("inf")}
              for d in ("near_minus_far", "north_minus_south")}}
    monkeypatch.setattr(cmd, "compute", lambda *a, **k: res)
    out = tmp_path / "r.json"
    assert main(["asymmetry", "--dataset", "d", "--json", str(out)]) == 0

    def refuse(c):
        raise ValueError(f"non-standard JSON constant {c}")

    got = json.loads(out.read_text(), parse_constant=refuse)
    assert got["near"]["ci95"] == [None, None] and got["near_minus_far"]["cohens_d"] is None
    assert got["near"]["n_blocks"] == 2
