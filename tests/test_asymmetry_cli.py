"""``workbench asymmetry`` on real data (skips without the mirror) and its error paths."""

from __future__ import annotations

import json
import math

import pytest
import xarray as xr

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


def _halves(ppd: float = 1.0):
    """FeO 10 wt% on the near side (|lon| <= 90), 4 wt% on the far side, 6 wt% where lat > 60 (a cap)."""
    import numpy as np

    from workbench.geo import global_template

    t = global_template(ppd, name="FeO")
    near = np.abs(t["lon"]) <= 90
    feo = xr.where(near, 10.0, 4.0).where(t["lat"] <= 60, 6.0).transpose("lat", "lon").astype("float32")
    return feo.rename("FeO").assign_attrs(units="wt%")


def test_input_map_files_give_the_known_near_far_answer_in_every_format(tmp_path, capsys):
    from workbench.export import to_geotiff

    feo = _halves()
    ds = xr.Dataset({"FeO": feo, "FeO_std": feo * 0 + 1.0})
    ds.to_zarr(tmp_path / "maps.zarr")
    ds.to_netcdf(tmp_path / "maps.nc")
    to_geotiff(ds, tmp_path / "maps.tif")
    results = []
    for name in ("maps.zarr", "maps.nc", "maps.tif"):
        res = cmd.compute(variable="FeO", path=str(tmp_path / name), n_boot=50, n_perm=99)
        assert res["dataset"] == name and res["units"] == "wt%"
        cap = (1 - math.sin(math.radians(60))) / 2  # the share of a half-sphere north of 60 deg
        assert res["far"]["mean"] == pytest.approx(4.0 * (1 - cap) + 6.0 * cap, abs=1e-3)
        assert res["near"]["mean"] == pytest.approx(10.0 * (1 - cap) + 6.0 * cap, abs=1e-3)
        assert res["near_minus_far"]["value"] == pytest.approx(6.0 * (1 - cap), abs=1e-3)
        results.append({k: res[k] for k in ("near", "far", "near_minus_far")})
    assert results[0] == results[1] == results[2]  # zarr, NetCDF and GeoTIFF hold the same map
    out = tmp_path / "a.json"
    assert main(["asymmetry", "--input", str(tmp_path / "maps.tif"), "--variable", "FeO", "--n-boot", "50",
                 "--n-perm", "99", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["near_minus_far"] == results[0]["near_minus_far"]
    assert "maps.tif  FeO  [wt%]" in capsys.readouterr().out


def test_input_map_file_errors_name_the_fix(tmp_path, capsys):
    from workbench.errors import InputError

    _halves().to_dataset().to_zarr(tmp_path / "m.zarr")
    with pytest.raises(InputError, match="either a dataset id.*or a map file"):
        cmd.compute("lola_ldem_4ppd", path=str(tmp_path / "m.zarr"))
    with pytest.raises(InputError, match="either a dataset id"):
        cmd.compute()
    with pytest.raises(InputError, match="--lat-range applies to crater catalogues.*map file"):
        cmd.compute(path=str(tmp_path / "m.zarr"), lat_range=(-60, 60))
    cube = _halves().expand_dims(band=["R415", "R750"]).rename("reflectance").to_dataset()
    cube.to_zarr(tmp_path / "cube.zarr")
    with pytest.raises(InputError, match=r"no \(lat, lon\) variable.*\(band, lat, lon\) cube"):
        cmd.compute(path=str(tmp_path / "cube.zarr"))
    assert main(["asymmetry", "--input", str(tmp_path / "none.zarr")]) == 2
    assert "does not exist; give a zarr store (folder), a NetCDF (.nc) file or a GeoTIFF" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one source only
        main(["asymmetry", "--dataset", "lola_ldem_4ppd", "--input", str(tmp_path / "m.zarr")])


def test_real_lola_through_a_geotiff_gives_the_dataset_result(real_dataset, tmp_path):
    from workbench.export import to_geotiff

    dem = real_dataset("lola_ldem_4ppd")["elevation"]
    to_geotiff(dem, tmp_path / "lola.tif")
    a = cmd.compute("lola_ldem_4ppd", "elevation", n_boot=100, n_perm=99)
    b = cmd.compute(path=str(tmp_path / "lola.tif"), n_boot=100, n_perm=99)
    for k in ("near", "far", "north", "south", "near_minus_far", "north_minus_south"):
        for stat, value in a[k].items():
            assert b[k][stat] == pytest.approx(value, rel=1e-6), (k, stat)
