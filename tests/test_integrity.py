"""Integrity of outputs and downloads: atomic writes survive SIGKILL, corrupt caches are fetched again.

Each test kills a real subprocess with SIGKILL in the middle of writing (so no ``finally`` or ``atexit``
can run) and checks that nothing half-written appears under the final name and that what was there
before is intact.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from workbench import catalog
from workbench.errors import InputError
from workbench.io import atomic_path, atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
from test_robustness import PAYLOAD, catalog_env, manifest_dict, serve, write_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _spawn(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _kill_when(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> None:
    """Wait until the child prints ``marker``, then SIGKILL it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if marker in line:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"child never reached {marker!r}: {proc.stderr.read()[-2000:]}")


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


WRITE_FILE = """
    import sys, time
    from workbench.io import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"x" * 1_000_000)
            fh.flush()
            print("half-written", flush=True)
            time.sleep(60)
            fh.write(b"y" * 1_000_000)
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_atomic_file_survives_sigkill(tmp_path: Path, existing: bool) -> None:
    final = tmp_path / "out" / "result.bin"
    if existing:
        final.parent.mkdir()
        final.write_bytes(b"old complete result")
    proc = _spawn(WRITE_FILE, str(final))
    _kill_when(proc, "half-written")
    assert proc.returncode == -signal.SIGKILL
    if existing:
        assert final.read_bytes() == b"old complete result"  # the old output is intact
    else:
        assert not final.exists()  # no half-written file under the final name
    # the killed writer's temporary is hidden (.result.bin.*.part) and never mistaken for the result
    for p in _partials(tmp_path):
        assert p.name.startswith(".result.bin.") and p.stat().st_size == 1_000_000


WRITE_ZARR = """
    import sys, time
    import numpy as np, xarray as xr
    from workbench.io import atomic_path
    ds = xr.Dataset({"v": (("lat", "lon"), np.arange(64 * 128, dtype="f4").reshape(64, 128) + float(sys.argv[2]))})
    with atomic_path(sys.argv[1]) as tmp:
        ds.isel(lat=slice(0, 32)).to_zarr(tmp, mode="w")
        print("half-written", flush=True)
        time.sleep(60)
        ds.isel(lat=slice(32, 64)).to_zarr(tmp, append_dim="lat")
"""


@pytest.mark.slow  # the child imports xarray + zarr: ~3-10 s on 2 busy cores
@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_atomic_zarr_store_survives_sigkill(tmp_path: Path, existing: bool) -> None:
    final = tmp_path / "map.zarr"
    if existing:
        old = xr.Dataset({"v": (("lat", "lon"), np.ones((64, 128), "f4"))})
        with atomic_path(final) as tmp:
            old.to_zarr(tmp)
    proc = _spawn(WRITE_ZARR, str(final), "5")
    _kill_when(proc, "half-written")
    if existing:
        got = xr.open_zarr(final)["v"].values
        assert got.shape == (64, 128) and np.all(got == 1)  # old store whole and readable
    else:
        assert not final.exists()


def test_atomic_path_cleans_up_on_error(tmp_path: Path) -> None:
    final = tmp_path / "r.json"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text('{"half": ')
        raise RuntimeError("crash while writing")
    assert not final.exists() and not list(tmp_path.iterdir())


def test_atomic_write_never_replaces_a_folder(tmp_path: Path) -> None:
    """``--json DIR`` by mistake must not delete DIR (atomic_path used to rmtree it)."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "precious.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="is an existing folder; give a file name"):
        atomic_write_text(folder, "{}")
    assert (folder / "precious.csv").read_text() == "a,b\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_cli_json_into_folder_keeps_folder(tmp_path: Path, monkeypatch) -> None:
    import workbench.bench as bench
    from workbench.cli import main

    monkeypatch.setattr(bench, "get_benchmark", lambda name: lambda fast=False: {"x": 1.0})
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    assert main(["bench", sorted(bench.BENCHMARKS)[0], "--json", str(folder)]) == 2
    assert (folder / "keep.txt").read_text() == "keep"


# ------------------------------------------------------------------------------------ the catalogue
@pytest.mark.parametrize("damage", ["truncate", "flip-byte", "empty"])
def test_corrupt_cache_is_detected_and_fetched_again(tmp_path: Path, damage: str) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "robust_table.csv").write_bytes(PAYLOAD)
    with serve(tmp_path / "www") as url:
        m = manifest_dict(sources=[{"url": f"{url}/robust_table.csv"}])
        write_manifest(tmp_path / "manifests", m)
        with catalog_env(tmp_path):
            (cached,) = catalog.fetch("robust_table")
            assert cached.read_bytes() == PAYLOAD
            data = bytearray(PAYLOAD)
            if damage == "truncate":
                data = data[: len(data) // 3]
            elif damage == "flip-byte":
                data[100] ^= 0x01
            else:
                data = bytearray()
            cached.write_bytes(bytes(data))
            st = cached.stat()
            os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write
            (again,) = catalog.fetch("robust_table")
            assert again == cached and again.read_bytes() == PAYLOAD  # fetched again, verified
            aside = list(cached.parent.glob("robust_table.csv.corrupt-*"))
            assert len(aside) == 1 and aside[0].read_bytes() == bytes(data)  # kept for inspection, never used
            assert catalog.open_table("robust_table")["value"].sum() == sum(range(200))


def test_corrupt_mirror_copy_is_never_used(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    bad = PAYLOAD.replace(b"7", b"8")
    (tmp_path / "mirror" / "robust_table.csv").write_bytes(bad)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "robust_table.csv").write_bytes(PAYLOAD)
    with serve(tmp_path / "www") as url:
        m = manifest_dict(sources=[{"mirror": "robust_table.csv"}, {"url": f"{url}/robust_table.csv"}])
        write_manifest(tmp_path / "manifests", m)
        with catalog_env(tmp_path, mirror=tmp_path / "mirror"):
            (p,) = catalog.fetch("robust_table")
    assert p.read_bytes() == PAYLOAD and p.parent != tmp_path / "mirror"
    assert (tmp_path / "mirror" / "robust_table.csv").read_bytes() == bad  # the read-only mirror is untouched


FETCH = """
    import sys
    from workbench import catalog
    print("fetching", flush=True)
    catalog.fetch("robust_table")
"""


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """Sends half of the payload, then stalls (the client is killed meanwhile)."""

    started = threading.Event()

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        self.wfile.flush()
        type(self).started.set()
        time.sleep(20)

    def log_message(self, *args):
        pass


def test_download_killed_midway_leaves_no_cache_file(tmp_path: Path) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/robust_table.csv"
    try:
        m = manifest_dict(sources=[{"url": url}])
        write_manifest(tmp_path / "manifests", m)
        with catalog_env(tmp_path):
            _SlowHandler.started.clear()
            proc = _spawn(FETCH)
            assert _SlowHandler.started.wait(60), proc.stderr.read()[-2000:]
            time.sleep(0.2)  # the client has half the bytes
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            cache = tmp_path / "cache" / "robust_table"
            assert not (cache / "robust_table.csv").exists()
            assert not (cache / ".download" / "robust_table.csv").exists()  # pooch writes to a temp name
    finally:
        srv.shutdown()
        srv.server_close()
    # the next run downloads again and gets the whole, verified file
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "robust_table.csv").write_bytes(PAYLOAD)
    with serve(tmp_path / "www") as url2:
        write_manifest(tmp_path / "manifests", manifest_dict(sources=[{"url": f"{url2}/robust_table.csv"}]))
        with catalog_env(tmp_path):
            (p,) = catalog.fetch("robust_table")
    assert p.read_bytes() == PAYLOAD


# ------------------------------------------------------------------------------------------- load
def run_limited(argv: list[str], limit_bytes: int, timeout: float, env: dict | None = None) -> dict:
    """Run ``argv`` under ``RLIMIT_AS = limit_bytes``; sample the whole process tree's RSS.

    Returns exit status, wall time, the peak summed RSS of the process and its children (sampled every
    0.1 s with psutil) and the kernel's ``ru_maxrss`` of the main process (exact, from ``wait4``).
    """
    import resource

    import psutil

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    t0 = time.monotonic()
    proc = subprocess.Popen(argv, preexec_fn=limit, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd=REPO)
    ps = psutil.Process(proc.pid)
    peak, out_lines = 0, []
    reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)
    reader.start()
    status, usage = None, None
    while status is None:
        try:
            total = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
            peak = max(peak, total)
        except psutil.Error:
            pass
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = st, ru
            break
        if time.monotonic() - t0 > timeout:
            os.kill(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(5)
    return {"returncode": proc.returncode, "wall_s": round(time.monotonic() - t0, 1),
            "peak_tree_rss_mb": round(peak / 2**20, 1), "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
            "limit_mb": limit_bytes // 2**20, "output_tail": "".join(out_lines)[-3000:]}


def test_run_limited_enforces_the_limit() -> None:
    """The harness really limits memory: allocating 600 MB under a 400 MB address-space limit fails."""
    code = "import numpy as np; a = np.ones(600 * 2**20 // 8); print(a.sum())"
    r = run_limited([sys.executable, "-c", code], 400 * 2**20, timeout=60)
    assert r["returncode"] != 0 and "MemoryError" in r["output_tail"]
    r = run_limited([sys.executable, "-c", "import numpy as np; print(np.ones(2**24).sum())"], 2**30, timeout=60)
    assert r["returncode"] == 0 and r["maxrss_mb"] > 100  # 128 MB array + interpreter


# ------------------------------------------------------------------ resumable global inversion (zarr)
GLOBAL_SETUP = """
import numpy as np, xarray as xr
from workbench.inversion import global_map as gm
from workbench.inversion.model import OxideInverter

WL = [415.0, 750.0, 900.0, 950.0, 1000.0]
NLAT, NLON, CHUNK = 128, 64, 16


def make_refl():
    rng = np.random.default_rng(7)
    lat = 90 - (np.arange(NLAT) + 0.5) * 180 / NLAT
    lon = -180 + (np.arange(NLON) + 0.5) * 360 / NLON
    data = (0.05 + 0.2 * rng.random((5, NLAT, NLON))).astype("f4")
    data[:, 40:44, 10:20] = np.nan  # a masked patch: NaN in, NaN out
    return xr.DataArray(data, dims=("band", "lat", "lon"), attrs={"units": "1", "crs": "IAU_2015:30100"},
                        coords={"band": [f"R{w:g}" for w in WL], "wavelength": ("band", WL), "lat": lat, "lon": lon})


def make_model(seed=0):
    return OxideInverter([f"R{w:g}" for w in WL], WL, width=8, depth=1, stem=4, members=2, seed=seed)


def slow_blocks(delay):
    orig = gm._block_fn

    def wrapped(model, precision):
        f = orig(model, precision)

        def g(block):
            import time
            time.sleep(delay)
            return f(block)
        return g
    gm._block_fn = wrapped
"""

GLOBAL_CHILD = GLOBAL_SETUP + """
import sys
slow_blocks(0.15)
print("start", flush=True)
gm.invert_to_zarr(make_refl(), make_model(int(sys.argv[2])), sys.argv[1], chunk=CHUNK, progress=False, workers=1)
print("finished", flush=True)
"""


def _global_ns() -> dict:
    pytest.importorskip("workbench.inversion.global_map")
    ns: dict = {}
    exec(compile(GLOBAL_SETUP, "<global setup>", "exec"), ns)  # noqa: S102 - our own test source
    return ns


def _kill_after_rows(proc: subprocess.Popen, progress: Path, rows: int, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if progress.exists():
            try:
                done = json.loads(progress.read_text())["done"]
            except (ValueError, KeyError):
                done = []
            if len(done) >= rows:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                return done
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no progress within the time limit")


@pytest.mark.slow  # two processes importing torch + dask, plus the runs: ~10-20 s on 2 busy cores
def test_global_inversion_resumes_after_sigkill(tmp_path: Path, monkeypatch) -> None:
    ns = _global_ns()
    gm = ns["gm"]
    out = tmp_path / "oxides.zarr"
    progress = tmp_path / "oxides.zarr.partial" / "progress.json"
    proc = _spawn(GLOBAL_CHILD, str(out), "0")
    done_before = _kill_after_rows(proc, progress, rows=2)
    n_rows = ns["NLAT"] // ns["CHUNK"]
    assert proc.returncode == -signal.SIGKILL and 2 <= len(done_before) < n_rows
    assert not out.exists()  # nothing under the final name while unfinished

    calls = []
    orig = gm._block_fn

    def counting(model, precision):
        f = orig(model, precision)

        def g(block):
            calls.append(block.shape)
            return f(block)
        return g

    monkeypatch.setattr(gm, "_block_fn", counting)
    res = gm.invert_to_zarr(ns["make_refl"](), ns["make_model"](0), out, chunk=ns["CHUNK"], progress=False)
    lon_blocks = ns["NLON"] // ns["CHUNK"]
    rows_after = json.loads(progress.read_text())["done"] if progress.exists() else None
    assert rows_after is None and not (tmp_path / "oxides.zarr.partial").exists()
    recomputed_rows = len(calls) / lon_blocks
    assert recomputed_rows <= n_rows - len(done_before), (recomputed_rows, done_before)  # resumed, not restarted

    clean = gm.invert_to_zarr(ns["make_refl"](), ns["make_model"](0), tmp_path / "clean.zarr", chunk=ns["CHUNK"],
                              progress=False)
    for v in clean.data_vars:
        np.testing.assert_allclose(res[v].values, clean[v].values, rtol=1e-5, atol=1e-5, err_msg=v)
    assert np.isnan(res["FeO"].values[41, 15]) and np.isfinite(res["FeO"].values[0]).all()


@pytest.mark.slow
def test_global_inversion_does_not_resume_with_other_weights(tmp_path: Path) -> None:
    """A rerun with different weights (same bands and grid) must not reuse the killed run's chunks."""
    ns = _global_ns()
    gm = ns["gm"]
    out = tmp_path / "oxides.zarr"
    proc = _spawn(GLOBAL_CHILD, str(out), "0")  # weights from seed 0
    _kill_after_rows(proc, tmp_path / "oxides.zarr.partial" / "progress.json", rows=2)
    res = gm.invert_to_zarr(ns["make_refl"](), ns["make_model"](1), out, chunk=ns["CHUNK"], progress=False)
    clean = gm.invert_to_zarr(ns["make_refl"](), ns["make_model"](1), tmp_path / "clean.zarr", chunk=ns["CHUNK"],
                              progress=False)
    np.testing.assert_allclose(res["FeO"].values, clean["FeO"].values, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # 16 px/deg: ~17 Mpix through the residual CNN; minutes to tens of minutes on 2 cores
def test_global_inversion_16ppd_under_4gb(tmp_path: Path, capsys) -> None:
    """``workbench invert map --ppd 16`` completes under a 4 GiB address-space limit; peak RSS reported.

    ``WORKBENCH_LOAD_PPD`` / ``WORKBENCH_LOAD_CHUNK`` change the size and chunking; the committed Clementine
    weights are used when present, otherwise an untrained network of the same architecture (memory and
    time do not depend on the weights' values).
    """
    pytest.importorskip("workbench.inversion.global_map")
    from workbench.inversion.model import OxideInverter, committed_weights

    ppd = os.environ.get("WORKBENCH_LOAD_PPD", "16")
    chunk = os.environ.get("WORKBENCH_LOAD_CHUNK", "128")
    weights = committed_weights("clementine_uvvis")
    if not weights.exists():
        weights = tmp_path / "untrained_clementine.pt"
        wl = [415.0, 750.0, 900.0, 950.0, 1000.0]
        OxideInverter([f"R{w:g}" for w in wl], wl).save(weights)
    # the synthetic Moon is data preparation: build (and cache) it first, outside the limit, and report it
    make = f"from workbench.synth import make_moon; make_moon(resolution_ppd={ppd})"
    build = run_limited([sys.executable, "-c", make], 64 * 2**30, timeout=3600)
    assert build["returncode"] == 0, build["output_tail"]
    out = tmp_path / f"oxides_{ppd}ppd.zarr"
    argv = [sys.executable, "-m", "workbench", "invert", "map", "--ppd", ppd, "--chunk", chunk, "--out", str(out),
            "--weights", str(weights)]
    r = run_limited(argv, 4 * 2**30, timeout=3600)
    with capsys.disabled():
        print(f"\nsynthetic Moon {ppd} px/deg (cached after the first build): {build['wall_s']} s, peak RSS "
              f"{build['peak_tree_rss_mb']} MB (no limit)")
        print(f"global inversion {ppd} px/deg, chunk {chunk}: exit {r['returncode']}, {r['wall_s']} s, "
              f"peak RSS {r['peak_tree_rss_mb']} MB (kernel maxrss {r['maxrss_mb']} MB) under a 4096 MB limit")
    assert r["returncode"] == 0, r["output_tail"]
    assert r["peak_tree_rss_mb"] < 4096
    res = xr.open_zarr(out)
    assert res.sizes == {"lat": 180 * int(ppd), "lon": 360 * int(ppd)}
    assert np.isfinite(res["FeO"].isel(lat=slice(0, 64)).values).mean() > 0.5
