"""Known answers for the command-line layer that a mutation review found unpinned (``workbench/commands/*.py``
and :mod:`workbench.bench`): each test fails on a mutant of the source that the rest of the suite let through.

- ``lab``/``demo``/``bench``: JupyterLab on 127.0.0.1 with the given or a random token and its exit status; the
  demo runner gets ``--only``/``--timeout``/mode; a benchmark gets ``--fast``, its strict sorted JSON is written
  and the result dict reads benchmark, fast, figures, wall_seconds.
- ``asymmetry``: ``--lat-range`` reaches the crater densities (overriding a catalogue's own coverage, required
  for an unknown table, refused for a grid); ``--seed``/``--n-boot``/``--n-perm``/``--block-deg`` reach the
  grid statistics; only (lat, lon) variables are candidates, several need ``--variable``, a coordinate is
  refused; ``--json`` is written, NaN as null; the table's number format and its crater-vs-grid columns.
- ``data``: ``list`` columns, ``fetch`` prints each path, ``verify ID`` verifies only ID, ``hash`` prints
  sha256, size and name and refuses a folder.
- ``invert stations``: no prior by default, ``--cv`` grouping and the prior's extra method reach the
  cross-validation, the held-out caveat, the skipped-TRAIN-rows and seen-in-TRAIN notes, TRAIN needs oxides.
- ``topo reconstruct``: ``--views``/``--precision`` refused for methods without a network, ``--pixel-size 0``
  and a missing input refused, float32 ``.npy``/``.tiff`` output, a failed write leaves the old output and
  no partial file, DEM units case-insensitive (km refused, image units not checked), a GeoTIFF without CRS
  needs ``--pixel-size``, a geographic CRS is refused.
- Two defects this review found, fixed: a PRED row matching a skipped TRAIN row through a blank band was
  noted as "seen in TRAIN" (pandas merges NaN keys as equal); ``--pixel-size`` silently replaced a
  georeferenced image's own pixel size while the output kept the image's grid (heights for 3 m pixels,
  georeferencing saying 10 m): it is now refused unless it repeats the image's own.

Fast and offline: the notebook runner, JupyterLab, the benchmarks, the catalogue, the asymmetry and crater
statistics, the station model and the DEM reconstruction are replaced by stand-ins that record what they were
given (only the last defect test runs the real, cheap ``upsample`` reconstruction on an 8x8 image).
"""

from __future__ import annotations

import json

import pytest

from workbench.errors import InputError


# --------------------------------------------------------------------------------------------- workbench lab
def test_lab_serves_on_localhost_only_with_the_given_token_and_passes_its_exit_code(monkeypatch, run_cli):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 3)
    monkeypatch.setenv("WORKBENCH_LAB_TOKEN", "s3cret")
    code, out, _ = run_cli(["lab", "--port", "9123"])
    assert code == 3  # JupyterLab's own exit status
    (cmd,) = calls
    assert "--ip=127.0.0.1" in cmd and not any(a.startswith("--ip=0") for a in cmd)
    assert "--no-browser" in cmd and "--port=9123" in cmd
    assert "--IdentityProvider.token=s3cret" in cmd
    import os

    assert ("--allow-root" in cmd) == (hasattr(os, "geteuid") and os.geteuid() == 0)
    assert "http://127.0.0.1:9123/lab" in out


def test_lab_without_a_token_in_the_environment_makes_a_long_random_one(monkeypatch, run_cli):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.delenv("WORKBENCH_LAB_TOKEN", raising=False)
    for _ in range(2):
        assert run_cli(["lab"])[0] == 0
    tokens = [next(a for a in cmd if a.startswith("--IdentityProvider.token=")).split("=", 1)[1] for cmd in calls]
    assert tokens[0] != tokens[1] and min(len(t) for t in tokens) >= 24
    assert all("--port=8888" in cmd for cmd in calls)


# -------------------------------------------------------------------------------------------- workbench demo
def test_demo_passes_only_timeout_and_mode_to_the_runner(monkeypatch, run_cli, tmp_path):
    from workbench import demo

    seen = {}

    def fake_run_demo(out, only=None, fast=None, timeout=None):
        seen.update(out=out, only=only, fast=fast, timeout=timeout)
        return [{"notebook": "01_x", "ok": True, "seconds": 1.0, "error": None}]

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    monkeypatch.setattr(demo, "format_table", lambda results: "TABLE")
    out = str(tmp_path / "d")
    code, stdout, _ = run_cli(["demo", "--out", out, "--only", "01", "--timeout", "42", "--full"])
    assert code == 0 and seen == {"out": out, "only": "01", "fast": False, "timeout": 42}
    assert "TABLE" in stdout
    run_cli(["demo", "--out", out])
    assert seen["timeout"] == 900 and seen["fast"] is None and seen["only"] is None


# ------------------------------------------------------------------------------------------- workbench bench
def test_bench_passes_fast_and_json_and_writes_sorted_strict_json(monkeypatch, run_cli, tmp_path):
    from workbench import bench

    seen = {}

    def fake(fast=False):
        seen["fast"] = fast
        return {"zeta": float("nan"), "alpha": 1.5}

    monkeypatch.setitem(bench.BENCHMARKS, "synth", "fake_module:fake")
    monkeypatch.setattr(bench, "get_benchmark", lambda name: fake)
    monkeypatch.delenv("WORKBENCH_FAST", raising=False)
    path = tmp_path / "b.json"
    code, out, _ = run_cli(["bench", "synth", "--fast", "--json", str(path)])
    assert code == 0 and seen["fast"] is True
    written = json.loads(path.read_text())
    assert written["zeta"] is None and written["alpha"] == 1.5 and written["benchmark"] == "synth"
    assert written["fast"] is True and written["wall_seconds"] >= 0
    assert list(written) == sorted(written)  # sorted keys
    assert json.loads(out) == written
    run_cli(["bench", "synth"])
    assert seen["fast"] is False


def test_an_unknown_benchmark_is_an_input_error_naming_the_choices():
    from workbench.bench import get_benchmark

    with pytest.raises(InputError, match="unknown benchmark 'nope'; choose one of: calibration, inversion"):
        get_benchmark("nope")


# ----------------------------------------------------------------------------------------- workbench bench
def test_run_benchmark_result_starts_with_name_and_mode_and_ends_with_wall_time(monkeypatch):
    from workbench import bench

    monkeypatch.setattr(bench, "get_benchmark", lambda name: lambda fast: {"b": 2, "a": 1})
    monkeypatch.delenv("WORKBENCH_FAST", raising=False)
    assert list(bench.run_benchmark("synth")) == ["benchmark", "fast", "b", "a", "wall_seconds"]


# ------------------------------------------------------------------------------------- workbench asymmetry
def _grid_result(p_value: float = 0.0004995) -> dict:
    """What ``asymmetry_summary`` returns, in miniature (hand-made numbers)."""
    region = {"mean": -1100.0, "ci95": [-1200.0, -1000.0], "median": -1050.0, "area_fraction": 0.5, "n_blocks": 324}
    diff = {"value": -1710.0, "ci95": [-1900.0, -1500.0], "p_value": p_value, "cohens_d": -0.8}
    return {"variable": "elevation", "units": "m", "method": "grid method",
            **{r: dict(region) for r in ("near", "far", "north", "south")},
            "near_minus_far": dict(diff), "north_minus_south": dict(diff)}


def _crater_result(lat_range) -> dict:
    """What ``density_summary`` returns, in miniature (hand-made numbers)."""
    region = {"count": 12, "density": 2.0, "ci95": [1.0334, 3.4937], "area_km2": 6.0e6, "area_fraction": 0.5,
              "mean": 2.0}
    diff = {"value": 0.25, "ci95": [-1.5, 2.0], "p_value": 0.75, "rate_ratio": 1.125}
    return {"units": "craters per 1e6 km2", "lat_range": list(lat_range), "n_craters": 48, "method": "crater method",
            **{r: dict(region) for r in ("near", "far", "north", "south")},
            "near_minus_far": dict(diff), "north_minus_south": dict(diff)}


@pytest.fixture
def fake_catalogue(monkeypatch):
    """Datasets ``grid`` (elevation and FeO on (lat, lon), a per-latitude weight on (lat,)), ``grid1`` (only
    elevation on (lat, lon) besides the weight), and tables ``craters_head2010`` and ``my_table``; the
    statistics are stand-ins that record what they were given."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    from workbench import catalog
    from workbench.analysis import asymmetry, craters

    lat, lon = np.array([-45.0, 45.0]), np.array([-90.0, 90.0])
    two = xr.Dataset({"elevation": (("lat", "lon"), np.zeros((2, 2))), "FeO": (("lat", "lon"), np.ones((2, 2))),
                      "weight": (("lat",), np.ones(2))}, coords={"lat": lat, "lon": lon})
    grids = {"grid": two, "grid1": two.drop_vars("FeO")}
    monkeypatch.setattr(catalog, "get_manifest",
                        lambda i: type("M", (), {"kind": "raster" if i in grids else "table"})())
    monkeypatch.setattr(catalog, "open_dataset", lambda i: grids[i])
    monkeypatch.setattr(catalog, "open_table", lambda i: pd.DataFrame({"lat": [0.0], "lon": [0.0], "diam_km": [30.0]}))
    calls = []

    def grid_summary(da, **kw):
        calls.append(("grid", da.name, kw))
        return _grid_result()

    def crater_summary(table, *, lat_range):
        calls.append(("craters", len(table), lat_range))
        return _crater_result(lat_range)

    monkeypatch.setattr(asymmetry, "asymmetry_summary", grid_summary)
    monkeypatch.setattr(craters, "density_summary", crater_summary)
    return calls


def test_asymmetry_lat_range_reaches_the_crater_density_and_is_required_for_an_unknown_table(fake_catalogue,
                                                                                            run_cli):
    from workbench.commands.asymmetry import compute

    res = compute("craters_head2010", lat_range=(-30.0, 30.0))  # overrides the catalogue's own (-90, 90)
    assert fake_catalogue[-1] == ("craters", 1, (-30.0, 30.0))
    assert res["dataset"] == "craters_head2010" and res["variable"] == "crater density"
    assert res["lat_range"] == [-30.0, 30.0]
    compute("craters_head2010")
    assert fake_catalogue[-1] == ("craters", 1, (-90.0, 90.0))
    compute("my_table", lat_range=[-60.0, 10.0])  # any table is a catalogue once given its coverage
    assert fake_catalogue[-1] == ("craters", 1, (-60.0, 10.0))
    n = len(fake_catalogue)
    with pytest.raises(InputError, match="'my_table' is a table but not a known crater catalogue; pass --lat-range"):
        compute("my_table")
    assert len(fake_catalogue) == n
    code, out, _ = run_cli(["asymmetry", "--dataset", "craters_head2010", "--lat-range", "-20", "40"])
    assert code == 0 and fake_catalogue[-1] == ("craters", 1, (-20.0, 40.0))
    assert out.splitlines()[0] == "craters_head2010  crater density  [craters per 1e6 km2]"


def test_asymmetry_lat_range_is_refused_for_a_grid(fake_catalogue):
    from workbench.commands.asymmetry import compute

    with pytest.raises(InputError, match="--lat-range applies to crater catalogues .*'grid1' is a grid"):
        compute("grid1", lat_range=(-30.0, 30.0))
    assert fake_catalogue == []


def test_asymmetry_chooses_among_lat_lon_variables_only_and_refuses_a_coordinate(fake_catalogue):
    from workbench.commands.asymmetry import compute

    compute("grid1")  # 'weight' on (lat,) alone is no candidate: elevation is the only (lat, lon) variable
    assert fake_catalogue[-1][:2] == ("grid", "elevation")
    with pytest.raises(InputError, match="'grid' has several variables; choose one with --variable from: "
                                         "elevation, FeO$"):
        compute("grid")
    with pytest.raises(InputError, match="'lat' is a coordinate, not a data variable, in 'grid1'; choose one "
                                         "of: elevation$"):
        compute("grid1", "lat")
    compute("grid", "FeO")
    assert [c[1] for c in fake_catalogue] == ["elevation", "FeO"]


def test_asymmetry_cli_passes_seed_and_settings_and_writes_strict_json(fake_catalogue, monkeypatch, run_cli,
                                                                       tmp_path):
    from workbench.analysis import asymmetry

    path = tmp_path / "a.json"
    code, out, _ = run_cli(["asymmetry", "--dataset", "grid", "--variable", "FeO", "--seed", "5", "--n-boot", "11",
                            "--n-perm", "13", "--block-deg", "20", "--json", str(path)])
    assert code == 0
    assert fake_catalogue == [("grid", "FeO", {"block_deg": 20.0, "n_boot": 11, "n_perm": 13, "seed": 5})]
    assert out.rstrip().endswith(f"wrote {path}")
    assert json.loads(path.read_text())["near"]["ci95"] == [-1200.0, -1000.0]

    nan = float("nan")
    monkeypatch.setattr(asymmetry, "asymmetry_summary", lambda da, **kw: {**_grid_result(p_value=nan),
                                                                           "far": {"mean": nan, "ci95": (nan, 1.0)}})
    assert run_cli(["asymmetry", "--dataset", "grid1", "--json", str(path)])[0] == 0

    def no_bare_nan(word):
        raise AssertionError(f"not strict JSON: {word}")

    res = json.loads(path.read_text(), parse_constant=no_bare_nan)
    assert res["near_minus_far"]["p_value"] is None and res["far"] == {"mean": None, "ci95": [None, 1.0]}
    assert res["dataset"] == "grid1"


def test_asymmetry_table_numbers():
    from workbench.commands.asymmetry import _fmt

    # 4 significant digits below 1e-3 and from 1e5 on, else up to 4 decimals without trailing zeros
    assert [_fmt(v) for v in (1.234e-4, 0.0123, 0.5, 2.0, 123456.0, -1710.0, float("nan"), 12, [0.25, 1.0])] == [
        "0.0001234", "0.0123", "0.5", "2", "1.235e+05", "-1710", "nan", "12", "[0.25, 1]"]


def test_asymmetry_table_for_a_crater_catalogue_and_for_a_grid():
    from workbench.commands.asymmetry import format_table

    crater = format_table({"dataset": "craters_x", "variable": "crater density", **_crater_result((-60.0, 60.0))})
    lines = crater.splitlines()
    assert lines[0] == "craters_x  crater density  [craters per 1e6 km2]"
    assert lines[1].split() == ["region", "count", "density", "ci95", "area_km2", "area_fraction"]
    assert lines[2].split() == ["near", "12", "2", "[1.0334,", "3.4937]", "6e+06", "0.5"]
    assert lines[6].split() == ["difference", "value", "ci95", "p_value", "rate_ratio"]
    assert lines[7].split() == ["near_minus_far", "0.25", "[-1.5,", "2]", "0.75", "1.125"]
    assert lines[-1] == "crater method"
    grid = format_table({"dataset": "g", **_grid_result()}).splitlines()
    assert grid[0] == "g  elevation  [m]"
    assert grid[1].split() == ["region", "mean", "ci95", "median", "area_fraction", "n_blocks"]
    assert grid[2].split() == ["near", "-1100", "[-1200,", "-1000]", "-1050", "0.5", "324"]
    assert grid[6].split() == ["difference", "value", "ci95", "p_value", "cohens_d"]
    assert grid[7].split() == ["near_minus_far", "-1710", "[-1900,", "-1500]", "0.0004995", "-0.8"]


# ------------------------------------------------------------------------------------------ workbench data
def test_data_list_prints_kind_crs_cached_and_title_only(monkeypatch, run_cli):
    import pandas as pd

    from workbench import catalog

    table = pd.DataFrame({"kind": ["raster"], "crs": ["IAU_2015:30100"], "cached": [True], "title": ["A grid"],
                          "licence": ["CC0"]}, index=pd.Index(["grid"], name="id"))
    monkeypatch.setattr(catalog, "list_datasets", lambda: table)
    code, out, _ = run_cli(["data", "list"])
    assert code == 0 and out.splitlines()[0].split() == ["kind", "crs", "cached", "title"]
    assert out.splitlines()[2].split() == ["grid", "raster", "IAU_2015:30100", "True", "A", "grid"]
    assert "licence" not in out and "CC0" not in out


def test_data_fetch_prints_each_local_path(monkeypatch, run_cli, tmp_path):
    from workbench import catalog

    paths = [tmp_path / "a.tif", tmp_path / "b.csv"]
    monkeypatch.setattr(catalog, "fetch", lambda i: paths if i == "two_files" else [])
    code, out, _ = run_cli(["data", "fetch", "two_files"])
    assert code == 0 and out.splitlines() == [str(p) for p in paths]


def test_data_verify_id_verifies_only_that_dataset(monkeypatch, run_cli):
    import pandas as pd

    from workbench import catalog

    seen = []

    def verify(dataset_id=None):
        seen.append(dataset_id)
        return pd.DataFrame({"id": ["one"], "file": ["one.csv"], "ok": [True], "error": [""]})

    monkeypatch.setattr(catalog, "verify", verify)
    assert run_cli(["data", "verify", "one"])[0] == 0
    assert run_cli(["data", "verify"])[0] == 0
    assert seen == ["one", None]


def test_data_hash_prints_sha256_size_and_name_and_refuses_a_folder(run_cli, tmp_path):
    f = tmp_path / "abc.txt"
    f.write_bytes(b"abc")  # the FIPS 180-2 example: sha256("abc")
    code, out, _ = run_cli(["data", "hash", str(f)])
    assert code == 0
    assert out == f"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad             3  {f}\n"
    code, out, err = run_cli(["data", "hash", str(tmp_path)])
    assert code == 2 and f"{tmp_path} is a folder; give the files inside it (e.g. {tmp_path}/*)" in err


# --------------------------------------------------------------------------------- workbench invert stations
@pytest.fixture
def fake_stations(monkeypatch, tmp_path):
    """Stand-ins for the station model and its cross-validation that record what they were given; a 2-row
    TRAIN (t.csv) and a 2-row PRED (p.csv) whose first row has TRAIN's first spectrum."""
    import numpy as np
    import pandas as pd

    from workbench.inversion import stations as st

    rec = {"priors": [], "cv": [], "skipped": 0}

    class FakeInverter:
        def __init__(self, prior=None):
            rec["priors"].append(prior)
            self.n_used, self.n_skipped = 2 - rec["skipped"], rec["skipped"]

        def fit(self, train):
            return self

        between_site_std = None

        def predict(self, bands):
            return bands.assign(FeO_pred=1.0, new_site=False)

    def cross_validate(df, by="station", methods=None):
        rec["cv"].append((by, methods))
        return pd.DataFrame({"FeO_rmse": [1.23456]}, index=["gp"])

    monkeypatch.setattr(st, "StationInverter", FakeInverter)
    monkeypatch.setattr(st, "cross_validate", cross_validate)
    bands = pd.DataFrame(np.full((2, 5), 0.1) + np.arange(2)[:, None] * 0.01, columns=st.BANDS)
    bands.assign(FeO_wt_pct=[5.0, 6.0], TiO2_wt_pct=[1.0, 2.0]).to_csv(tmp_path / "t.csv", index=False)
    pred = bands.copy()
    pred.iloc[1] += 0.05
    pred.to_csv(tmp_path / "p.csv", index=False)
    rec["argv"] = ["invert", "stations", "--train", str(tmp_path / "t.csv"), "--predict", str(tmp_path / "p.csv"),
                   "--out", str(tmp_path / "o.csv")]
    return rec


def test_invert_stations_defaults_to_no_prior_and_no_cross_validation(fake_stations, run_cli):
    code, out, _ = run_cli(fake_stations["argv"])
    assert code == 0 and fake_stations["priors"] == [None] and fake_stations["cv"] == []
    assert "TRAIN:" not in out and "HELD_OUT" not in out and "lucey2000's constants" not in out


def test_invert_stations_cv_grouping_prior_and_caveat(fake_stations, run_cli):
    from workbench.inversion import stations as st

    code, out, _ = run_cli([*fake_stations["argv"], "--cv", "mission", "--prior", "lucey2000"])
    assert code == 0
    ((by, methods),) = fake_stations["cv"]
    assert by == "mission" and list(methods) == ["gp_prior"]
    methods["gp_prior"]()  # the extra method is the GP around the prior asked for
    assert fake_stations["priors"][-1] is st.lucey_prior
    assert f"note: {st.HELD_OUT_CAVEAT}\n" in out and "1.235" in out  # the table, rounded to 3 decimals
    code, out, _ = run_cli([*fake_stations["argv"], "--cv", "station"])
    assert code == 0 and fake_stations["cv"][-1] == ("station", None)  # --prior none: the built-in variants only
    assert f"note: {st.HELD_OUT_CAVEAT}" in out


def test_invert_stations_notes_skipped_train_rows_and_pred_rows_seen_in_train(fake_stations, run_cli):
    fake_stations["skipped"] = 1
    code, out, _ = run_cli(fake_stations["argv"])
    assert code == 0
    assert "TRAIN: 1 stations used, 1 skipped (a blank band or oxide)" in out
    assert "note: 1 PRED row(s) have the same spectra as TRAIN stations" in out
    assert "(use --cv station for those)" in out and out.rstrip().endswith("o.csv")


def test_invert_stations_train_needs_the_measured_oxides(fake_stations, run_cli, tmp_path):
    import pandas as pd

    pd.read_csv(tmp_path / "t.csv").drop(columns="TiO2_wt_pct").to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run_cli(fake_stations["argv"])
    assert code == 2 and "training table is missing ['TiO2_wt_pct']" in err
    assert fake_stations["priors"] == [] and not (tmp_path / "o.csv").exists()


# -------------------------------------------------------------------------------- workbench topo reconstruct
def _topo_argv(tmp_path, *extra, image="img.npy", dem="dem.npy", out="z.npy", pixel="5"):
    return ["topo", "reconstruct", "--image", str(tmp_path / image), "--coarse-dem", str(tmp_path / dem),
            "--sun-azimuth", "100", "--sun-elevation", "30", "--out", str(tmp_path / out),
            *([f"--pixel-size={pixel}"] if pixel else []), *extra]


@pytest.fixture
def topo_calls(monkeypatch, tmp_path):
    """``reconstruct`` replaced by a stand-in that records its arguments and returns float64 heights 0..15 m
    on the image grid; a 4x4 .npy image and a 2x2 .npy DEM in ``tmp_path``."""
    import numpy as np
    import xarray as xr

    from workbench.topography import model

    calls = []

    def fake(image, coarse_dem, sun_azimuth, sun_elevation, **kw):
        calls.append({"image": image, "dem": coarse_dem, **kw})
        z = np.arange(np.size(image), dtype=np.float64).reshape(np.shape(image)) + 0.1
        return xr.DataArray(z, dims=("y", "x"), attrs={"method": kw["method"], "units": "m"})

    monkeypatch.setattr(model, "reconstruct", fake)
    np.save(tmp_path / "img.npy", np.full((4, 4), 0.1))
    np.save(tmp_path / "dem.npy", np.zeros((2, 2)))
    return calls


def _tif(path, units: str | None = None, crs: str | None = None):
    import numpy as np
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    da = xr.DataArray(np.full((1, 4, 4), 0.1, dtype="float32"), dims=("band", "y", "x"),
                      coords={"band": [1], "y": np.arange(4.0)[::-1], "x": np.arange(4.0)},
                      attrs={"units": units} if units else {})
    (da.rio.write_crs(crs) if crs else da).rio.to_raster(path)


@pytest.mark.parametrize("method", ["sfs", "upsample"])
def test_topo_refuses_views_and_precision_for_methods_without_a_network(topo_calls, tmp_path, run_cli, method):
    code, _, err = run_cli(_topo_argv(tmp_path, "--method", method, "--views", "3"))
    assert code == 2 and f"--views averages the network's views; method {method!r} has none" in err
    code, _, err = run_cli(_topo_argv(tmp_path, "--method", method, "--precision", "float32"))
    assert code == 2 and f"--precision sets the network's arithmetic; method {method!r} runs no network" in err
    assert topo_calls == []
    assert run_cli(_topo_argv(tmp_path, "--method", "network_sfs", "--views", "2", "--precision", "float32"))[0] == 0
    assert (topo_calls[0]["views"], topo_calls[0]["precision"]) == (2, "float32")


def test_topo_refuses_a_zero_pixel_size_and_a_missing_input(topo_calls, tmp_path, run_cli):
    code, _, err = run_cli(_topo_argv(tmp_path, pixel="0"))
    assert code == 2 and "--pixel-size must be a positive number of metres per image pixel, got 0.0" in err
    code, _, err = run_cli(_topo_argv(tmp_path, image="scan.png"))  # missing, and of no known format
    assert code == 2 and f"image file {tmp_path / 'scan.png'} does not exist" in err
    assert topo_calls == []


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rioxarray's own Affine use
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the stand-in has no grid
def test_topo_writes_float32_npy_and_accepts_tiff(topo_calls, tmp_path, run_cli):
    import numpy as np
    import rioxarray

    code, out, _ = run_cli(_topo_argv(tmp_path))
    assert code == 0 and "(network, 4x4, heights 0.1..15.1 m)" in out
    z = np.load(tmp_path / "z.npy")
    assert z.dtype == np.float32 and z[3, 3] == np.float32(15.1)
    code, out, err = run_cli(_topo_argv(tmp_path, out="z.tiff"))
    assert code == 0, err
    da = rioxarray.open_rasterio(tmp_path / "z.tiff")
    assert da.dtype == np.float32 and da.shape == (1, 4, 4) and float(da[0, 3, 3]) == pytest.approx(15.1, abs=1e-5)


def test_topo_a_failed_write_leaves_the_old_output_and_no_partial_file(topo_calls, tmp_path, run_cli, monkeypatch):
    import numpy as np

    (tmp_path / "z.npy").write_bytes(b"old result")

    def disk_full(f, arr):
        f.write(b"\x93NUMPY half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    code, _, err = run_cli(_topo_argv(tmp_path))
    assert code == 2 and "No space left on device" in err
    assert (tmp_path / "z.npy").read_bytes() == b"old result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dem.npy", "img.npy", "z.npy"]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rioxarray's own Affine use
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_topo_geotiff_units_and_crs(topo_calls, tmp_path, run_cli):
    import numpy as np

    _tif(tmp_path / "img.tif", units="1")  # radiance factor: only a DEM's units must be metres
    for units in ("M", " Metres "):  # compared stripped and case-insensitively
        _tif(tmp_path / "dem.tif", units=units)
        code, _, err = run_cli(_topo_argv(tmp_path, image="img.tif", dem="dem.tif"))
        assert code == 0, err
    assert all(isinstance(c["image"], np.ndarray) and isinstance(c["dem"], np.ndarray) for c in topo_calls)
    _tif(tmp_path / "dem.tif", units="km")
    code, _, err = run_cli(_topo_argv(tmp_path, dem="dem.tif"))
    assert code == 2 and "has height units 'km'; convert the heights to metres first" in err
    code, _, err = run_cli(_topo_argv(tmp_path, image="img.tif", pixel=None))  # no CRS, no --pixel-size
    assert code == 2 and f"image {tmp_path / 'img.tif'} has no CRS, so the units of its coordinates" in err
    _tif(tmp_path / "geo.tif", crs="IAU_2015:30100")  # the Moon's lat/lon: degrees, not metres
    code, _, err = run_cli(_topo_argv(tmp_path, image="geo.tif"))
    assert code == 2 and f"image {tmp_path / 'geo.tif'} is in geographic degrees; reproject it" in err
    assert len(topo_calls) == 2


# ------------------------------------------------------------------------------------- defects found, fixed
def test_invert_stations_does_not_count_blank_spectra_as_seen_in_train(fake_stations, run_cli, tmp_path):
    import pandas as pd

    train = pd.read_csv(tmp_path / "t.csv")
    train.loc[0, "R415"] = float("nan")  # a blank band: the model skips this station
    train.to_csv(tmp_path / "t.csv", index=False)
    train.drop(columns=["FeO_wt_pct", "TiO2_wt_pct"]).iloc[[0]].to_csv(tmp_path / "p.csv", index=False)
    fake_stations["skipped"] = 1
    code, out, _ = run_cli(fake_stations["argv"])
    assert code == 0 and "TRAIN: 1 stations used, 1 skipped" in out
    assert "same spectra as TRAIN stations" not in out


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # rioxarray's own Affine use
def test_topo_pixel_size_contradicting_a_georeferenced_image_is_refused(tmp_path, run_cli):
    import numpy as np
    import rioxarray
    import xarray as xr

    img = xr.DataArray(np.full((1, 8, 8), 0.1, dtype="float32"), dims=("band", "y", "x"),
                       coords={"band": [1], "y": 1000.0 - 10.0 * np.arange(8) - 5.0, "x": 10.0 * np.arange(8) + 5.0})
    img.rio.write_crs("IAU_2015:30135").rio.to_raster(tmp_path / "ps.tif")  # south polar stereographic, 10 m pixels
    np.save(tmp_path / "dem.npy", np.zeros((2, 2)))
    code, _, err = run_cli(_topo_argv(tmp_path, "--method", "upsample", image="ps.tif", out="z.tif", pixel="3"))
    assert code == 2 and "--pixel-size 3 m contradicts the image's own 10 m pixels" in err
    assert not (tmp_path / "z.tif").exists()
    code, _, _ = run_cli(_topo_argv(tmp_path, "--method", "upsample", image="ps.tif", out="z.tif", pixel="10"))
    z = rioxarray.open_rasterio(tmp_path / "z.tif")  # repeating the image's own pixel size is accepted
    assert code == 0 and z.rio.resolution()[0] == pytest.approx(10.0) == float(z.attrs["pixel_size"])
