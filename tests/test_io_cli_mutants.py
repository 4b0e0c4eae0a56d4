"""Known-answer tests for input validation, atomic output, settings, the command line, reports and the widget
base (mutation review: each test fails on a mutant of the source that the rest of the suite let through).

Fast and offline: tiny in-memory inputs under ``tmp_path``; no data mirror, no network, no dataset fetch
(the catalogue and the heavy model functions are replaced by stand-ins where a command would call them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import validate
from workbench.errors import CheckpointError, InputError


def _da(values, **attrs) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=float), dims=("x",), attrs=attrs)


# ------------------------------------------------------------------------------------------- validate.py
def test_empty_reflectance_is_called_empty_not_all_nan():
    with pytest.raises(InputError, match=r"reflectance is empty \(shape \(0, 3\)\)"):
        validate.check_reflectance(np.zeros((0, 3)))


def test_negative_infinity_is_refused_as_infinite_not_as_negative():
    with pytest.raises(InputError, match=r"has 1 infinite value\(s\)"):
        validate.check_reflectance(np.array([0.1, -np.inf, 0.2]))


def test_an_entirely_nan_block_passes_when_allowed_and_is_returned_unchanged():
    block = np.full((2, 3), np.nan)
    assert validate.check_reflectance(block, allow_all_nan=True) is block
    with pytest.raises(InputError, match="entirely NaN"):
        validate.check_reflectance(block)


def test_zero_reflectance_is_valid_and_max_value_is_inclusive():
    zero = np.array([0.0, 0.1])  # reflectance must be >= 0: a black pixel is valid
    assert validate.check_reflectance(zero) is zero
    at_max = np.array([0.2, 1.5])  # refused are values *above* max_value
    assert validate.check_reflectance(at_max, max_value=1.5) is at_max
    with pytest.raises(InputError, match=r"1 value\(s\) above 1.5"):
        validate.check_reflectance(np.array([0.2, 1.5001]), max_value=1.5)


def test_max_value_refuses_percent_reflectance_whatever_the_bound():
    with pytest.raises(InputError, match=r"1 value\(s\) above 2"):
        validate.check_reflectance(np.array([0.2, 12.0]), max_value=2.0)


def test_units_are_compared_case_insensitively():
    assert validate.check_reflectance(_da([0.1], units="Reflectance")) is not None
    assert validate.check_reflectance(_da([0.1], units="IOF")) is not None


def test_a_blank_crs_string_is_a_missing_crs():
    with pytest.raises(InputError, match=r"input has no CRS"):
        validate.check_crs(_da([1.0], crs="   "))


def _bands(wavelengths) -> xr.DataArray:
    return xr.DataArray(np.full((len(wavelengths), 2), 0.1), dims=("band", "x"),
                        coords={"wavelength": ("band", [float(w) for w in wavelengths])})


def test_check_bands_uses_the_given_tolerance():
    da = _bands([758.0, 942.0])  # 8 nm off each
    assert validate.check_bands(da, [750, 950], tol_nm=10.0) is da
    with pytest.raises(InputError, match=r"tolerance 5 nm.*758 nm where 750 nm is expected"):
        validate.check_bands(da, [750, 950])
    with pytest.raises(InputError, match=r"tolerance 1 nm\): 753 nm where 750 nm is expected"):
        validate.check_bands(_bands([753.0, 950.0]), [750, 950], tol_nm=1.0)


def test_a_wavelength_coordinate_on_another_dimension_is_not_the_band_wavelengths():
    da = xr.DataArray(np.full((2, 3), 0.1), dims=("band", "x"), coords={"wavelength": ("x", [750.0, 900.0, 950.0])})
    with pytest.raises(InputError, match=r"the 'band' dimension has no 'wavelength' coordinate"):
        validate.check_bands(da, [750, 950])


def test_sun_azimuth_must_be_finite():
    for az in (float("inf"), float("nan")):
        with pytest.raises(InputError, match="sun azimuth must be a finite number"):
            validate.check_sun(az, 30.0)
    assert validate.check_sun(720.0 + 45.0, 30.0) == (45.0, 30.0)


def _latlon_grid(n: int, lat0: float = 0.0, lon0: float = 0.0, span: float = 8.0) -> xr.DataArray:
    step = span / n
    lat = lat0 + span - (np.arange(n) + 0.5) * step
    lon = lon0 + (np.arange(n) + 0.5) * step
    return xr.DataArray(np.zeros((n, n)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})


def test_matching_grids_compares_lat_lon_extents_too():
    validate.check_matching_grids(_latlon_grid(16), _latlon_grid(4))  # same ground
    with pytest.raises(InputError, match=r"cover different ground: image \('lat', 'lon'\) bounds"):
        validate.check_matching_grids(_latlon_grid(16), _latlon_grid(4, lon0=2.0))


def test_a_whitespace_cell_in_a_numeric_column_is_a_blank_not_an_error():
    out = validate.check_station_table(pd.DataFrame({"R750": ["0.1", "  ", "0.2"]}), ["R750"])
    assert out["R750"].dtype == float
    np.testing.assert_array_equal(out["R750"].to_numpy(), [0.1, np.nan, 0.2])


def test_a_site_must_be_finite():
    with pytest.raises(InputError, match=r"a site needs finite latitude and longitude, got \(nan, 10.0\)"):
        validate.check_site(float("nan"), 10.0)
    assert validate.check_site("-41.6", 206) == (-41.6, 206.0)


def test_station_frame_strips_column_names_and_range_checks_plain_lat_lon_columns():
    out = validate.check_station_frame(pd.DataFrame({" R750 ": [0.1, 0.2], "lat": [10.0, -20.0]}), ["R750"])
    assert list(out.columns) == ["R750", "lat"]
    for col in ("lat", "lat_deg"):
        with pytest.raises(InputError, match=r"latitude out of range: found 95"):
            validate.check_station_frame(pd.DataFrame({"R750": [0.1, 0.2], col: [10.0, 95.0]}), ["R750"])
    with pytest.raises(InputError, match=r"longitude out of range"):
        validate.check_station_frame(pd.DataFrame({"R750": [0.1], "lat": [10.0], "lon": [400.0]}), ["R750"])


def test_a_repeated_column_is_refused_naming_it():
    with pytest.raises(InputError, match=r"x.csv: column 'a' appears more than once"):
        validate.check_unique_columns(["a", "b", "a"], "x.csv")
    validate.check_unique_columns(["a", "b", "c"], "x.csv")
    with pytest.raises(InputError, match=r"column 'R750' appears more than once"):  # the same after stripping
        validate.check_station_frame(pd.DataFrame([[0.1, 0.2]], columns=["R750", "R750 "]), ["R750"])


def test_a_checkpoint_with_another_band_count_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match=r"trained on bands 415, 750, 900, 950 nm but the data has 415, 750"):
        validate.check_checkpoint({"wavelengths": [415, 750, 900, 950]}, wavelengths=[415, 750, 900, 950, 1000])


def test_a_pickled_object_npy_is_refused_not_loaded(tmp_path):
    p = tmp_path / "objects.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"image .*objects.npy is not a readable .npy array"):
        validate.load_npy(p, "image")


def test_store_files_lists_path_size_and_mtime_in_ns(tmp_path):
    import os

    (tmp_path / "sub").mkdir()
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "sub" / "b").write_bytes(b"x")
    os.utime(tmp_path / "a", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    os.utime(tmp_path / "sub" / "b", ns=(1_700_000_000_000_000_001, 1_700_000_000_000_000_001))
    assert validate.store_files(tmp_path) == [("a", 3, 1_600_000_000_123_456_789),
                                              (os.path.join("sub", "b"), 1, 1_700_000_000_000_000_001)]


# ------------------------------------------------------------------------------------------------- io.py
def test_writable_parent_leaves_no_probe_file_behind(tmp_path):
    from workbench.io import writable_parent

    assert writable_parent(tmp_path / "out" / "a.json") == tmp_path / "out" / "a.json"
    assert list((tmp_path / "out").iterdir()) == []
    writable_parent(tmp_path / "new" / "b.json", create=False)  # checks only: makes no folder, leaves nothing
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]


def test_writable_parent_checks_the_kind_of_output(tmp_path):
    from workbench.io import writable_parent

    afile = tmp_path / "important.txt"
    afile.write_text("keep")
    for create in (True, False):
        with pytest.raises(InputError, match=r"important.txt is an existing file; this output is a folder"):
            writable_parent(afile, create=create, kind="folder")
        with pytest.raises(InputError, match=r"is a folder; give a file name for this output"):
            writable_parent(tmp_path, create=create, kind="file")
    assert writable_parent(tmp_path / "store.zarr", kind="folder") == tmp_path / "store.zarr"
    assert afile.read_text() == "keep"


def test_atomic_path_writes_beside_the_final_name_and_cleans_up_on_error(tmp_path):
    from workbench.io import atomic_path

    final = tmp_path / "result.csv"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(final) as tmp:
        assert tmp != final and tmp.parent == final.parent
        tmp.write_text("half a fi")
        assert final.read_text() == "old"  # the final name is untouched while the block writes
        raise RuntimeError("disk full")
    assert final.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]  # no temporary left
    with atomic_path(final) as tmp:
        tmp.write_text("new")
        assert final.read_text() == "old"
    assert final.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]


def test_replacing_a_folder_leaves_no_old_copy_beside_it(tmp_path):
    from workbench.io import replace_path

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "v").write_text("old")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "v").write_text("new")
    assert replace_path(tmp_path / "new", tmp_path / "store") == tmp_path / "store"
    assert (tmp_path / "store" / "v").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_json_safe_turns_tuples_into_lists_and_every_non_finite_float_into_none():
    from workbench.io import json_safe

    got = json_safe({"ci95": (1.0, float("nan")), "hi": float("inf"), "lo": -float("inf"), 3: np.float32(2.5)})
    assert got == {"ci95": [1.0, None], "hi": None, "lo": None, "3": 2.5}
    assert json.dumps(got, allow_nan=False)


# --------------------------------------------------------------------------------------------- config.py
@pytest.mark.parametrize("value, fast", [("on", True), (" 1 ", True), ("YES", True), ("off", False),
                                         (" 0 ", False), ("No", False), ("", False)])
def test_workbench_fast_words(monkeypatch, value, fast):
    from workbench import config

    monkeypatch.setenv("WORKBENCH_FAST", value)
    assert config.fast_mode() is fast


def test_mirror_dirs_split_on_pathsep_and_skip_blank_entries(monkeypatch, tmp_path):
    import os

    from workbench import config

    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", os.pathsep.join([str(tmp_path / "a"), "", " ", str(tmp_path / "b")]))
    assert config.mirror_dirs() == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("WORKBENCH_DATA_DIR", "rel/cache")
    monkeypatch.chdir(tmp_path)
    assert config.data_dir() == tmp_path.resolve() / "rel" / "cache"


def test_an_explicit_device_or_precision_wins_over_the_environment(monkeypatch):
    from workbench import config

    monkeypatch.setenv("WORKBENCH_DEVICE", "garbage")
    assert config.get_device("cpu").type == "cpu"
    assert config.get_device(" CPU ").type == "cpu"  # names are case-insensitive
    monkeypatch.setenv("WORKBENCH_PRECISION", "bfloat16")
    assert config.inference_precision("float32") == "float32"
    assert config.inference_precision() == "bfloat16"


def test_auto_precision_asks_about_the_device_it_is_given(monkeypatch):
    import torch

    from workbench import config

    seen = []
    monkeypatch.setattr(config, "bfloat16_is_fast", lambda device: seen.append(device) or device.type == "meta")
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    assert config.inference_precision("auto", device=torch.device("meta")) == "bfloat16"
    assert seen == [torch.device("meta")]


# ------------------------------------------------------------------------------------------ cli.py, commands
def _raising(exc: BaseException):
    def func(args):
        raise exc

    return func


def test_interrupt_exits_130_and_os_errors_exit_2_in_one_line(monkeypatch, run_cli):
    from workbench.commands import data

    monkeypatch.setattr(data, "_list", _raising(KeyboardInterrupt()))
    assert run_cli(["data", "list"]) == (130, "", "interrupted\n")
    monkeypatch.setattr(data, "_list", _raising(PermissionError(13, "Permission denied", "/ro/out.json")))
    code, _, err = run_cli(["data", "list"])
    assert code == 2 and err.startswith("error: [Errno 13] Permission denied") and "Traceback" not in err


def _verify_table(ok: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"d{i}" for i in range(len(ok))], "file": [f"f{i}.csv" for i in range(len(ok))],
                         "ok": ok, "error": ["" if v else "sha256 mismatch" for v in ok]})


def test_data_verify_exit_status_and_counts(monkeypatch, run_cli):
    from workbench import catalog

    monkeypatch.setattr(catalog, "verify", lambda dataset_id=None: _verify_table([True, False, True]))
    code, out, _ = run_cli(["data", "verify"])
    assert code == 1 and out.strip().endswith("2 verified, 1 failed")
    assert out.count("FAIL d1") == 1 and out.count("ok   d0") == 1
    monkeypatch.setattr(catalog, "verify", lambda dataset_id=None: _verify_table([True, True]))
    code, out, _ = run_cli(["data", "verify"])
    assert code == 0 and out.strip().endswith("2 verified, 0 failed")


def test_verbose_logging_is_undone_after_the_command(monkeypatch, run_cli):
    import logging

    from workbench.commands import data

    log = logging.getLogger("workbench")
    handlers, level = list(log.handlers), log.level
    seen = []
    monkeypatch.setattr(data, "_list", lambda args: seen.append(log.getEffectiveLevel()) or 0)
    assert run_cli(["--verbose", "data", "list"])[0] == 0
    assert seen == [logging.INFO]
    assert log.handlers == handlers and log.level == level


@pytest.mark.parametrize("port", ["1024", "65535"])
def test_lab_port_bounds_are_inclusive(port):
    from workbench.commands.demo import _port

    assert _port(port) == int(port)


@pytest.mark.parametrize("ok, code", [([True, True], 0), ([True, False], 1), ([], 1)])
def test_demo_exit_status(monkeypatch, run_cli, tmp_path, ok, code):
    from workbench import demo

    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: [{"notebook": f"n{i}", "ok": v} for i, v in enumerate(ok)])
    monkeypatch.setattr(demo, "format_table", lambda results: "table")
    assert run_cli(["demo", "--out", str(tmp_path / "demo")])[0] == code


def test_demo_fast_flag_is_unset_unless_given(monkeypatch, run_cli, tmp_path):
    from workbench import demo

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda out, only=None, fast=None, timeout=900: seen.append(fast) or [])
    monkeypatch.setattr(demo, "format_table", lambda results: "")
    for flags in ([], ["--fast"], ["--full"]):
        run_cli(["demo", "--out", str(tmp_path / "d"), *flags])
    assert seen == [None, True, False]  # None: WORKBENCH_FAST decides


def _fake_grid(monkeypatch, kind: str = "raster"):
    from workbench import catalog
    from workbench.analysis import asymmetry

    lat = np.arange(-85.0, 90.0, 10.0)
    lon = np.arange(-175.0, 180.0, 10.0)
    ds = xr.Dataset({"elevation": (("lat", "lon"), np.zeros((lat.size, lon.size)))}, coords={"lat": lat, "lon": lon})
    monkeypatch.setattr(catalog, "get_manifest", lambda *a, **k: type("M", (), {"kind": kind})())
    monkeypatch.setattr(catalog, "open_dataset", lambda *a, **k: ds)
    calls = []
    monkeypatch.setattr(asymmetry, "asymmetry_summary", lambda da, **kw: calls.append((da.name, kw)) or {"n": 1})
    return calls


def test_asymmetry_defaults_and_options_reach_the_statistics(monkeypatch):
    from workbench.commands.asymmetry import compute

    calls = _fake_grid(monkeypatch)
    assert compute("grid") == {"dataset": "grid", "n": 1}
    compute("grid", "elevation", block_deg=15.0, n_boot=10, n_perm=20, seed=7)
    assert calls == [("elevation", {"block_deg": 10.0, "n_boot": 1000, "n_perm": 2000, "seed": 0}),
                     ("elevation", {"block_deg": 15.0, "n_boot": 10, "n_perm": 20, "seed": 7})]


@pytest.mark.parametrize("option, flag", [({"seed": 3}, "--seed"), ({"n_perm": 5}, "--n-perm"),
                                          ({"block_deg": 5.0}, "--block-deg"), ({"variable": "x"}, "--variable")])
def test_asymmetry_refuses_grid_options_for_a_crater_catalogue(monkeypatch, option, flag):
    from workbench.commands.asymmetry import compute

    _fake_grid(monkeypatch, kind="table")
    with pytest.raises(InputError, match=rf"^{flag} apply to gridded datasets"):
        compute("craters_head2010", **option)


def test_invert_stations_uses_the_prior_asked_for(monkeypatch, tmp_path, run_cli):
    from workbench.inversion import model
    from workbench.inversion import stations as st

    priors = []

    class FakeInverter:
        n_used, n_skipped = 2, 0

        def __init__(self, prior=None):
            priors.append(prior)

        def fit(self, train):
            return self

        def predict(self, bands):
            return bands.assign(FeO_pred=1.0, new_site=False)

    def synthetic():
        return "synthetic prior"

    monkeypatch.setattr(st, "StationInverter", FakeInverter)
    monkeypatch.setattr(model, "synthetic_station_prior", synthetic)
    bands = pd.DataFrame(np.full((2, 5), 0.1) + np.arange(2)[:, None] * 0.01, columns=st.BANDS)
    bands.assign(FeO_wt_pct=[5.0, 6.0], TiO2_wt_pct=[1.0, 2.0]).to_csv(tmp_path / "t.csv", index=False)
    (bands + 0.05).assign(site=["a", "b"], FeO_pred="old").to_csv(tmp_path / "p.csv", index=False)
    argv = ["invert", "stations", "--train", str(tmp_path / "t.csv"), "--predict", str(tmp_path / "p.csv"),
            "--out", str(tmp_path / "o.csv")]
    for prior in ("none", "lucey2000", "synthetic"):
        assert run_cli([*argv, "--prior", prior])[0] == 0
    assert priors == [None, st.lucey_prior, "synthetic prior"]
    out = pd.read_csv(tmp_path / "o.csv")
    assert list(out.columns) == [*st.BANDS, "site", "FeO_pred", "new_site"] and out["FeO_pred"].tolist() == [1.0, 1.0]


def _topo(tmp_path, *extra, image="img.npy", dem="dem.npy", az="100", el="30", pixel="5"):
    return ["topo", "reconstruct", "--image", str(tmp_path / image), "--coarse-dem", str(tmp_path / dem),
            "--sun-azimuth", az, "--sun-elevation", el, "--out", str(tmp_path / "z.npy"),
            *([f"--pixel-size={pixel}"] if pixel else []), *extra]


@pytest.fixture
def fake_reconstruct(monkeypatch, tmp_path):
    """``reconstruct`` replaced by a stand-in that records its arguments; tiny .npy inputs in ``tmp_path``."""
    from workbench.topography import model

    calls = []

    def fake(image, coarse_dem, sun_azimuth, sun_elevation, **kw):
        calls.append({"image": image, "dem": coarse_dem, "az": sun_azimuth, "el": sun_elevation, **kw})
        return xr.DataArray(np.zeros(np.shape(image)), dims=("y", "x"), attrs={"method": kw["method"]})

    monkeypatch.setattr(model, "reconstruct", fake)
    np.save(tmp_path / "img.npy", np.full((8, 8), 0.1))
    np.save(tmp_path / "dem.npy", np.zeros((2, 2)))
    return calls


def test_topo_passes_sun_views_and_precision_to_the_reconstruction(fake_reconstruct, tmp_path, run_cli):
    code, out, err = run_cli(_topo(tmp_path, "--views", "3", "--precision", "float32"))
    assert code == 0, err
    (call,) = fake_reconstruct
    assert (call["az"], call["el"], call["views"], call["precision"], call["pixel_size"]) == (100.0, 30.0, 3, "float32",
                                                                                             5.0)
    assert call["method"] == "network" and np.load(tmp_path / "z.npy").shape == (8, 8)


def test_topo_refuses_an_infinite_pixel_size(fake_reconstruct, tmp_path, run_cli):
    code, _, err = run_cli(_topo(tmp_path, pixel="inf"))
    assert code == 2 and "--pixel-size must be a positive number of metres per image pixel, got inf" in err
    assert fake_reconstruct == []


def test_topo_refuses_a_3d_npy_image_naming_the_file(fake_reconstruct, tmp_path, run_cli):
    np.save(tmp_path / "cube.npy", np.zeros((3, 8, 8)))
    code, _, err = run_cli(_topo(tmp_path, image="cube.npy"))
    assert code == 2 and "image" in err and "cube.npy must be a 2-D array, got shape (3, 8, 8)" in err


def test_topo_npy_image_needs_a_pixel_size(fake_reconstruct, tmp_path, run_cli):
    code, _, err = run_cli(_topo(tmp_path, pixel=None))
    assert code == 2 and "a .npy image needs --pixel-size" in err and fake_reconstruct == []


def _geotiff(path, bands: int, units: str | None = None):
    import rioxarray  # noqa: F401  (registers .rio)

    da = xr.DataArray(np.full((bands, 8, 8), 0.1, dtype="float32"), dims=("band", "y", "x"),
                      coords={"band": np.arange(1, bands + 1), "y": np.arange(8.0)[::-1], "x": np.arange(8.0)},
                      attrs={"units": units} if units else {})
    da.rio.to_raster(path)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rioxarray's own Affine use
def test_topo_refuses_a_multiband_image_and_a_dem_in_km(fake_reconstruct, tmp_path, run_cli):
    _geotiff(tmp_path / "rgb.tif", bands=3)
    code, _, err = run_cli(_topo(tmp_path, image="rgb.tif"))
    assert code == 2 and "rgb.tif has 3 bands; give a single-band GeoTIFF" in err
    _geotiff(tmp_path / "dem_km.tif", bands=1, units="km")
    code, _, err = run_cli(_topo(tmp_path, dem="dem_km.tif"))
    assert code == 2 and "dem_km.tif has height units 'km'; convert the heights to metres" in err
    assert fake_reconstruct == []


# ------------------------------------------------------------------------------------ report, demo_report
def test_headline_merges_figures_into_the_notebook_file(monkeypatch, tmp_path):
    from workbench import report

    monkeypatch.setenv("WORKBENCH_HEADLINE_DIR", str(tmp_path))
    report.headline("01_nb", rmse=1.5, n=3)
    table = report.headline("01_nb", n=4, r2=np.float64(0.25))
    assert json.loads((tmp_path / "01_nb.json").read_text()) == {"rmse": 1.5, "n": 4, "r2": 0.25}
    assert list(table.index) == ["n", "r2"] and table.loc["n", "value"] == 4


def test_headline_table_keeps_counts_whole_among_plain_numbers():
    from workbench.report import headline_table

    table = headline_table({"n_sites": 11, "rmse_wt_pct": 1.25})
    assert isinstance(table.loc["n_sites", "value"], int) and table.loc["rmse_wt_pct", "value"] == 1.25
    assert "11.0" not in table.to_string()


def test_export_html_leaves_out_the_widget_state(tmp_path):
    import nbformat

    from workbench import demo_report as dr

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t")]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {"big": "data"}},
                                                                            "version_major": 2}}
    page = dr.export_html(nb, tmp_path / "nb.html").read_text()
    assert "widget-state" not in page and "widgets" in nb.metadata  # the notebook given is not modified


def test_empty_outputs_are_dropped_and_widget_outputs_replaced_before_export():
    import nbformat

    from workbench import demo_report as dr

    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell("plot()")
    c.outputs = [nbformat.v4.new_output("display_data", data={}),  # HoloViews' comm marker: nothing to show
                 nbformat.v4.new_output("display_data", data={dr.WIDGET_MIME: {"model_id": "m"}, "text/plain": "w"}),
                 nbformat.v4.new_output("stream", text="log\n"),
                 nbformat.v4.new_output("execute_result", data={"text/plain": "'kept'"}, execution_count=1)]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), c]
    assert dr._replace_widget_outputs(nb) == 1
    outs = nb.cells[1].outputs
    assert [o["output_type"] for o in outs] == ["display_data", "stream", "execute_result"]
    assert outs[0]["data"] == {"text/html": dr.WIDGET_NOTE} and outs[2]["data"] == {"text/plain": "'kept'"}


def test_write_index_escapes_names_and_makes_its_folder(tmp_path):
    from workbench import demo_report as dr

    results = [{"notebook": "<b>x</b>", "html": "x.html", "ok": True, "seconds": 1,
                "figures": {"a<b": "<i>"}}]
    page = dr.write_index(tmp_path / "new" / "demo", results).read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "a&lt;b = &lt;i&gt;" in page and "1 of 1 notebooks" in page


# ---------------------------------------------------------------------------------------- widgets/base.py
@dataclass
class _Count:
    n: int = 2
    word: str = "a"


def _text_panel():
    from workbench.errors import WorkbenchError
    from workbench.widgets import base

    class TextPanel(base.Panel):
        State = _Count

        def make_controls(self):
            return {"n": base.int_slider("n", None, 0, 9), "word": base.choice("word", ["a", "b"])}

        def compute(self, state):
            if state.n == 0:
                raise WorkbenchError("n must be positive")
            state.word = "changed by compute"  # a compute that (wrongly) edits its argument
            return f"n={state.n}", f"<b>{state.n}</b>"

    return TextPanel


def test_compute_gets_a_copy_errors_clear_and_reset_restores_the_overrides():
    panel = _text_panel()(n=5, word="b")
    assert panel.state == _Count(5, "b")  # compute's edit of its copy does not reach the panel
    panel.controls["n"].value = 0
    assert panel.error == "n must be positive" and "n must be positive" in panel.readout.value
    panel.set(n=3)
    assert panel.error is None and panel.readout.value == "<b>3</b>"
    panel.controls["word"].value = "a"
    panel.reset()
    assert panel.state == _Count(5, "b") and panel.controls["n"].value == 5 and panel.controls["word"].value == "b"
    panel.cleanup()


def test_error_readout_is_cleared_when_a_result_has_no_readout():
    from workbench.errors import WorkbenchError
    from workbench.widgets import base

    class Plain(base.Panel):
        State = _Count

        def make_controls(self):
            return {"n": base.int_slider("n", None, 0, 9)}

        def compute(self, state):
            if state.n == 0:
                raise WorkbenchError("n must be positive")
            return f"n={state.n}"

    panel = Plain()
    panel.set(n=0)
    assert "n must be positive" in panel.readout.value
    panel.set(n=1)
    assert panel.error is None and panel.readout.value == ""
    panel.cleanup()


def test_control_factories_defaults():
    from workbench.widgets import base

    assert base.slider("x", "m", -5.0, 5.0, 1.0).value == -5.0
    assert base.slider("x", "m", -5.0, 5.0, 1.0, value=2.0).value == 2.0
    assert base.int_slider("k", None, 3, 9).value == 3
    assert type(base.choice("c", ["a", "b", "c", "d"])).__name__ == "ToggleButtons"
    assert type(base.choice("c", ["a", "b", "c", "d", "e"])).__name__ == "Dropdown"
    assert type(base.choice("c", ["a", "b"], buttons=False)).__name__ == "Dropdown"
    # buttons as wide as the longest label, or a dropdown when they would not fit beside the label
    near = base.choice("centre", {"near side": "near", "far side": "far"})
    assert type(near).__name__ == "ToggleButtons" and near.style.button_width == f"{7 * 9 + 28}px"
    assert type(base.choice("layer", ["value", "uncertainty", "error"])).__name__ == "Dropdown"
    assert near.tooltip == "centre" and base.slider("x", "m", 0.0, 1.0, 0.1).tooltip == "x (m)"


def test_long_task_callback_stop_and_double_start():
    import threading

    from workbench.widgets import base

    task = base.LongTask("fit")
    release = threading.Event()
    seen = []

    def work(progress):
        seen.append(progress.callback(3, 10, loss=0.5))
        release.wait(10)
        seen.append(progress.callback(4, 10, loss=0.25))
        return "partial"

    task.start(work)
    with pytest.raises(InputError, match="this task is still running"):
        task.start(work)
    while not seen:
        release.wait(0.01)
    assert task.status.value == "3/10 · loss 0.5" and task.bar.value == pytest.approx(0.3)
    task.request_stop()
    release.set()
    assert task.result(10) == "partial"
    assert seen == [True, False]  # the callback says to stop once Stop was pressed
    assert task.status.value.startswith("stopped after") and task.status.value.endswith("s (partial result)")


# ----------------------------------------------------------------------------- real bugs (fixed with these tests)
def test_a_nan_wavelength_is_named_in_the_message():
    da = _bands([750.0, float("nan")])
    with pytest.raises(InputError, match=r"nan nm where 950 nm is expected"):
        validate.check_bands(da, [750, 950])


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="needs the C locale of Linux")
def test_atomic_write_text_writes_utf8_whatever_the_locale(tmp_path):
    import os
    import subprocess
    import sys

    import workbench

    root = os.path.dirname(os.path.dirname(workbench.__file__))
    code = ("import sys; from workbench.io import atomic_write_text; "
            "atomic_write_text(sys.argv[1], 'Lunar Workbench \\u2014 demo report')")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONPATH": root}
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "index.html")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-300:]
    assert (tmp_path / "index.html").read_bytes() == "Lunar Workbench \u2014 demo report".encode()
