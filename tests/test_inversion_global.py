"""Chunked global inversion with dask: equals the in-memory prediction, writes zarr, resumes."""

from __future__ import annotations

import contextlib
import json
import logging

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.inversion import global_map
from workbench.inversion.model import OxideInverter

BANDS = ["R415", "R750", "R950"]


def _globe(ppd=1, seed=0):
    from workbench.geo import global_grid

    lat, lon = global_grid(ppd)
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.05, 0.3, (3, lat.size, lon.size)).astype(np.float32)
    return xr.DataArray(data, dims=("band", "lat", "lon"),
                        coords={"band": BANDS, "wavelength": ("band", [415.0, 750.0, 950.0]), "lat": lat, "lon": lon})


@pytest.fixture(scope="module")
def model():
    m = OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2)
    m.mg_number_from = "head"  # untrained: its 'oxides' are no compositions, so their molar ratio means nothing
    return m


def test_lazy_equals_in_memory_across_chunk_seams(model):
    refl = _globe()
    refl[:, 5, 7] = np.nan
    lazy = global_map.invert_lazy(refl, model, chunk=50, precision="float32")
    assert lazy.FeO.data.numblocks == (4, 8) and lazy.attrs["precision"] == "float32"
    eager = model.predict(refl)
    np.testing.assert_allclose(lazy.FeO.values, eager.FeO.values, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lazy.TiO2_std.values, eager.TiO2_std.values, rtol=1e-4, atol=1e-4)
    assert np.isnan(lazy.FeO.values[5, 7])
    # the per-block Datasets carry each core's coordinates; xarray checks them against the template's
    assert lazy.FeO.attrs["units"] == "wt%" and lazy.mg_number_std.attrs["long_name"] == "mg_number 1-sigma uncertainty"
    xr.testing.assert_identical(lazy.lon, refl.lon)
    xr.testing.assert_identical(lazy.lat, refl.lat)


def test_block_halo_coordinates_wrap_in_longitude_and_repeat_the_poles():
    lon = np.arange(8) * 45.0
    assert list(global_map._halo_coord(lon, (4, 4), 2, "periodic")) == [270, 315, 0, 45, 90, 135, 180, 225,
                                                                         90, 135, 180, 225, 270, 315, 0, 45]
    assert list(global_map._halo_coord(np.arange(6.0), (3, 3), 1, "nearest")) == [0, 0, 1, 2, 3, 2, 3, 4, 5, 5]


@pytest.mark.parametrize("lat_chunks, lon_chunks, depth, lon_boundary", [
    ((5, 8), (6, 6, 4), 3, "periodic"), ((13,), (16,), 2, "nearest"), ((4, 4, 5), (9, 7), 4, "periodic")])
def test_window_cuts_of_a_whole_cube_equal_dask_overlap(lat_chunks, lon_chunks, depth, lon_boundary):
    """A cube in one piece gets each block's halo in one cut; the blocks must be dask's overlap's exactly."""
    import dask.array as da

    cube = np.random.default_rng(3).random((2, 13, 16)).astype(np.float32)
    chunks = ((2,), lat_chunks, lon_chunks)
    ref = da.overlap.overlap(da.from_array(cube, chunks=chunks), depth={0: 0, 1: depth, 2: depth},
                             boundary={0: "none", 1: "nearest", 2: lon_boundary})
    got = global_map._windows(da.from_array(cube, chunks=-1), chunks, depth, {"lat": "nearest", "lon": lon_boundary})
    assert got.chunks == ref.chunks and got.npartitions == len(lat_chunks) * len(lon_chunks)
    np.testing.assert_array_equal(got.compute(), ref.compute())


def test_a_map_computes_and_writes_each_block_in_about_one_task(tmp_path, model):
    """Each block is inverted and its 14 outputs written by one task (plus a few for its coordinates). The
    map used to take about 56 tasks a block (a slice and a store task for each output, ~16 for the halo), and on
    a dask.distributed cluster each costs a few ms of scheduling on the cores the network runs on."""
    from dask.callbacks import Callback

    class Count(Callback):
        n = 0

        def _pretask(self, key, dsk, state):
            self.n += 1

    with Count() as count:
        res = global_map.invert_to_zarr(_globe(), model, tmp_path / "m.zarr", chunk=60, progress=False,
                                        precision="float32", scheduler="threads")
    blocks = res.FeO.shape[0] // 60 * res.FeO.shape[1] // 60
    assert count.n <= 10 * blocks, count.n / blocks


def test_lazy_equals_in_memory_with_context_windows():
    """A wider halo (context windows) is carried across chunk seams and the periodic longitude wrap."""
    refl = _globe()
    m = OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2, context=(5,))
    lazy = global_map.invert_lazy(refl, m, chunk=40, precision="float32")
    eager = m.predict(refl)
    np.testing.assert_allclose(lazy.MgO.values, eager.MgO.values, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lazy.MgO_std.values, eager.MgO_std.values, rtol=1e-4, atol=1e-4)


def test_zarr_resume(tmp_path, model, crash_at_block):
    refl = _globe()
    out = tmp_path / "map.zarr"
    crash_at_block(8)
    with pytest.raises(RuntimeError, match="simulated"):  # threads: the counter lives in this process
        global_map.invert_to_zarr(refl, model, out, chunk=60, progress=False, precision="float32",
                                  scheduler="threads")
    assert not out.exists()
    done = json.loads((tmp_path / "map.zarr.partial" / "progress.json").read_text())["done"]
    assert 0 < len(done) < 3
    crash_at_block(None)
    res = global_map.invert_to_zarr(refl, model, out, chunk=60, progress=False, precision="float32")
    np.testing.assert_allclose(res.FeO.values, model.predict(refl).FeO.values, rtol=1e-4, atol=1e-4)
    assert res.FeO.attrs["units"] == "wt%" and "mg_number_std" in res
    with pytest.raises(InputError, match="exists"):
        global_map.invert_to_zarr(refl, model, out, chunk=60, progress=False)


#: How long a block waits for an event its test needs before it carries on without it: a hang guard, not a
#: timing claim. A map that behaves delivers the event within a few tasks; one that does not never does.
_EVENT_GUARD_S = 60.0


def _wait_for(cond) -> bool:
    """Poll ``cond()`` until it is true (True) or the hang guard has passed (False)."""
    import time

    deadline = time.monotonic() + _EVENT_GUARD_S
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _recording_block_fn(log, hold=None, crash=None):
    """A ``_block_fn`` that appends ``start ROW`` and ``end ROW`` (ROW: the block's first network-layout row) to
    the file ``log`` as each block starts and ends. One file appended to a line at a time, so its lines are the
    events in the order they happened, whichever thread (or copy of this function: the local cluster's tasks
    may run on copies) ran them; no clock is read. ``hold=(row, until)``: that row's first-column block waits for
    ``until()`` before it ends; ``crash=(row, until)``: that row's first-column block waits for ``until()`` and
    then fails (not with bad data). The waits end at the hang guard whatever ``until()`` says."""
    import os

    real = global_map._block_fn

    def event(kind, row):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # one write() a line: lines never interleave
        try:
            os.write(fd, f"{kind} {row}\n".encode())
        finally:
            os.close(fd)

    def block_fn(m, precision):
        fn = real(m, precision)

        def wrapped(block):
            row, col = (int(block[f"{d}_pos"].values[m.net.halo]) for d in ("lat", "lon"))
            event("start", row)
            if crash is not None and (row, col) == (crash[0], 0):
                _wait_for(crash[1])
                raise RuntimeError("simulated crash")
            out = fn(block)
            if hold is not None and (row, col) == (hold[0], 0):
                _wait_for(hold[1])
            event("end", row)
            return out
        return wrapped

    return block_fn


def _events(log) -> list[tuple[str, int]]:
    """The ``(kind, row)`` events of a :func:`_recording_block_fn` log, in the order they happened."""
    if not log.exists():
        return []
    return [(kind, int(row)) for kind, row in (line.split() for line in log.read_text().splitlines())]


def test_on_a_cluster_the_next_chunk_row_starts_while_a_row_finishes(tmp_path, model, monkeypatch):
    """Rows of three blocks on two threads: computed row by row, one thread idled while the other ran each
    row's third block. On a cluster every row is in flight, so a second-row block starts before the first
    row's last block ends, and the first row still starts first.

    Told by the order of the blocks' start and end events, not by their times: a first-row block is held until
    a second-row block has started, which the other thread does once it has run the row's other two blocks
    only when the next row is already in flight (row by row, the hold runs out at the hang guard and the
    second row starts after the first has ended)."""
    log = tmp_path / "log.txt"
    monkeypatch.setattr(global_map, "_block_fn",
                        _recording_block_fn(log, hold=(0, lambda: ("start", 60) in _events(log))))
    refl = _globe().isel(lon=slice(0, 180))  # 3 chunk rows of 3 blocks
    res = global_map.invert_to_zarr(refl, model, tmp_path / "m.zarr", chunk=60, progress=False,
                                    precision="float32", workers=2)
    events = _events(log)
    assert sorted(events) == sorted((k, r) for k in ("start", "end") for r in (0, 60, 120) for _ in range(3))
    first_row_end = max(n for n, e in enumerate(events) if e == ("end", 0))
    second_row_start = min(n for n, e in enumerate(events) if e == ("start", 60))
    assert second_row_start < first_row_end, events
    assert max(n for n, e in enumerate(events) if e == ("start", 0)) < \
        min(n for n, e in enumerate(events) if e == ("start", 120)), events
    monkeypatch.undo()
    np.testing.assert_allclose(res.FeO.values, model.predict(refl).FeO.values, rtol=1e-4, atol=1e-4)


def test_a_crash_on_the_cluster_keeps_the_finished_rows_for_a_resume(tmp_path, model, monkeypatch):
    """A failure (not bad data) in the last chunk row cancels the rows still in flight and keeps the store
    with the rows that finished; the next run computes only the rest.

    The failing block (the last row's first) fails once the first row is recorded as finished in the store's
    ``progress.json``: an explicit order, not a race between sleeps, so the store it keeps has that row however
    slow the machine (a run that records no row before the end fails at the hang guard and keeps none)."""
    progress = tmp_path / "map.zarr.partial" / "progress.json"

    def first_row_recorded():
        try:
            return 0 in json.loads(progress.read_text())["done"]
        except (OSError, ValueError):  # not written yet
            return False

    log = tmp_path / "crash.txt"
    monkeypatch.setattr(global_map, "_block_fn", _recording_block_fn(log, crash=(120, first_row_recorded)))
    refl = _globe()
    out = tmp_path / "map.zarr"
    with pytest.raises(RuntimeError, match="simulated"):
        global_map.invert_to_zarr(refl, model, out, chunk=60, progress=False, precision="float32")
    assert not out.exists()
    done = json.loads(progress.read_text())["done"]
    assert 0 in done and 2 not in done, (done, _events(log))  # kept: the row finished before the crash
    monkeypatch.undo()  # the recorder below wraps the real block function
    log = tmp_path / "resume.txt"
    monkeypatch.setattr(global_map, "_block_fn", _recording_block_fn(log))
    res = global_map.invert_to_zarr(refl, model, out, chunk=60, progress=False, precision="float32")
    assert sorted({r for k, r in _events(log)}) == sorted({0, 60, 120} - {60 * i for i in done})
    monkeypatch.undo()
    np.testing.assert_allclose(res.FeO.values, model.predict(refl).FeO.values, rtol=1e-4, atol=1e-4)


class _FakeFuture:
    def __init__(self, job, exc=None):
        self.job, self.exc, self.released = job, exc, False

    def result(self):
        if self.exc is not None:
            raise self.exc

    def release(self):
        self.released = True


class _FakeClient:
    """Enough of a ``distributed.Client`` for :func:`global_map._rows_on_cluster`: futures in submission
    order, the row ``fail`` (if any) raising ``exc``, and every cancel recorded."""

    def __init__(self, fail=None, exc=None):
        self.fail, self.exc, self.futures, self.priorities, self.cancelled = fail, exc, [], [], []

    def compute(self, job, optimize_graph=True, priority=0):
        assert optimize_graph is False  # the rows come optimised together (_row_jobs)
        self.priorities.append(priority)
        fut = _FakeFuture(job, self.exc if job == self.fail else None)
        self.futures.append(fut)
        return fut

    def cancel(self, futures):
        self.cancelled.extend(futures)


@pytest.mark.parametrize("exc", [RuntimeError("simulated"), InputError("bad chunk")])
def test_rows_on_cluster_cancels_the_rows_in_flight_on_a_failure(monkeypatch, exc):
    """The first rows get the highest priority; a failing row cancels every row not yet finished (the failing
    one included, the finished ones not) and re-raises; only bad data (InputError: the store will be removed)
    also waits for the workers to stop running the rows' tasks."""
    import distributed

    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(list(futures)))
    waited = []
    monkeypatch.setattr(global_map, "_wait_for_workers", lambda client, jobs: waited.append(jobs))
    jobs = {0: "row0", 60: "row60", 120: "row120"}
    client = _FakeClient(fail="row60", exc=exc)
    rows = global_map._rows_on_cluster(client, jobs)
    assert next(rows) == 0
    with pytest.raises(type(exc), match=str(exc)):
        next(rows)
    assert client.priorities == [3, 2, 1]
    assert [f.job for f in client.cancelled] == ["row60", "row120"]
    assert client.futures[0].released and not client.futures[1].released
    assert waited == ([["row0", "row60", "row120"]] if isinstance(exc, InputError) else [])
    ok = _FakeClient()
    assert list(global_map._rows_on_cluster(ok, jobs)) == [0, 60, 120] and ok.cancelled == []


def test_bfloat16_map_is_close_to_float32_and_keeps_nan(model):
    """The bfloat16 path (the default where the CPU has native bf16) differs from float32 by rounding only."""
    refl = _globe(seed=3)
    refl[:, 20, 30] = np.nan
    bf = global_map.invert_lazy(refl, model, chunk=60, precision="bfloat16").compute()
    fp = model.predict(refl)
    assert bf.attrs["precision"] == "bfloat16"
    for v in ("FeO", "mg_number", "FeO_std"):
        scale = float(model.y_std[model.targets.index(v.removesuffix("_std"))])  # one std of the target
        err = np.nanmax(np.abs(bf[v].values - fp[v].values))
        assert 0 < err < 0.02 * scale, (v, err, scale)  # rounded (not identical), but only by bf16 rounding
    assert np.isnan(bf.FeO.values[20, 30]) and np.isnan(bf.FeO_std.values[20, 30])
    assert np.isfinite(bf.FeO.values[21]).all()


def test_precision_names(monkeypatch):
    from workbench.config import inference_precision

    assert inference_precision("float32") == "float32" and inference_precision("BFloat16") == "bfloat16"
    assert inference_precision("auto") in ("float32", "bfloat16")
    monkeypatch.setenv("WORKBENCH_PRECISION", "float32")
    assert inference_precision() == "float32"
    with pytest.raises(InputError, match="auto, float32, bfloat16"):
        inference_precision("fp8")


@pytest.mark.parametrize(("value", "message"), [(-0.1, "negative"), (np.inf, "infinite"), (30.0, "Percent"),
                                              (1e40, "above 1.5 .*max 1e\\+40")])
@pytest.mark.parametrize("lazy", [True, False])
def test_bad_values_in_a_chunk_raise(model, value, message, lazy):
    refl = _globe().astype("float64")
    refl[0, 3, 3] = value  # 1e40: finite in float64, inf after a float32 cast; reported as too high
    with pytest.raises(InputError, match=message):
        global_map.invert_lazy(refl.chunk({"lat": 60}) if lazy else refl, model, chunk=60).FeO.compute()


@pytest.mark.slow
def test_cli_invert_map(tmp_path):
    from workbench.cli import main

    clem = ["R415", "R750", "R900", "R950", "R1000"]
    tiny = OxideInverter(clem, [415.0, 750.0, 900.0, 950.0, 1000.0], width=8, depth=1, stem=4, members=2)
    tiny.save(tmp_path / "tiny.pt")
    out = tmp_path / "m.zarr"
    assert main(["invert", "map", "--out", str(out), "--ppd", "1", "--weights", str(tmp_path / "tiny.pt"),
                 "--chunk", "90"]) == 0
    ds = xr.open_zarr(out)
    assert ds.FeO.shape == (180, 360) and "mg_number_std" in ds
    assert main(["invert", "map", "--out", str(out), "--ppd", "1", "--weights", str(tmp_path / "tiny.pt")]) == 2


def test_bad_data_leaves_no_partial_store_and_unwritable_output_fails_first(tmp_path, model):
    refl = _globe()
    refl[0, 100, 3] = -0.1  # in the second chunk row: the first is written before the error
    out = tmp_path / "bad.zarr"
    with pytest.raises(InputError, match="negative"):
        global_map.invert_to_zarr(refl, model, out, chunk=60, progress=False)
    assert not out.exists() and not (tmp_path / "bad.zarr.partial").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="existing file"):
        global_map.invert_to_zarr(_globe(), model, tmp_path / "file" / "m.zarr", chunk=60, progress=False)


@pytest.mark.parametrize("scheduler", ["threads", "local", "address"])
def test_a_write_still_running_when_a_chunk_fails_lands_before_the_store_is_removed(tmp_path, model, monkeypatch,
                                                                                   scheduler):
    """A failing chunk must not leave a stray ``.partial`` behind: a sibling chunk's write that is still running
    when the error arrives used to recreate the folder after it had been removed. Here the bad chunk is slow
    (0.6 s) and every chunk write takes 0.4 s, so its sibling's writes are in flight when it fails."""
    import time

    import zarr.storage._local as local_store

    real_put, real_block_fn = local_store._put, global_map._block_fn

    def slow_put(path, value, exclusive=False):
        if "/c/" in str(path):  # chunk data, not metadata
            time.sleep(0.4)
        return real_put(path, value, exclusive=exclusive)

    def slow_bad_block_fn(model, precision):
        fn = real_block_fn(model, precision)

        def slow(block):
            if (block.values < 0).any():
                time.sleep(0.6)
            return fn(block)

        return slow

    monkeypatch.setattr(local_store, "_put", slow_put)
    monkeypatch.setattr(global_map, "_block_fn", slow_bad_block_fn)
    refl = _globe()
    refl[0, 10, 350] = -0.1  # the first chunk row's block computed first, beside one good block
    with contextlib.ExitStack() as stack:
        if scheduler == "address":  # an existing cluster (in this process, so that the slow-downs apply there)
            from distributed import LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                                       dashboard_address=None, silence_logs=logging.CRITICAL))
            scheduler = cluster.scheduler_address
        with pytest.raises(InputError, match="negative"):
            global_map.invert_to_zarr(refl, model, tmp_path / "bad.zarr", chunk=60, progress=False,
                                      scheduler=scheduler, precision="float32")
        time.sleep(1.0)  # longer than any write in flight
        assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_maps_of_one_dask_cube_by_two_models_stay_apart_in_one_computation():
    """xarray names map_blocks tasks from the input alone: two models' maps of one dask-backed cube (read from
    zarr, or ``.chunk()``-ed) once shared their task keys, and one computation returned one map for both."""
    import dask

    cube = _globe().chunk({"lat": 60, "lon": 120})
    a, b = (OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2, seed=s) for s in (0, 1))
    fa, fb = (global_map.invert_lazy(cube, m, chunk=60, precision="float32").FeO for m in (a, b))
    both = dask.compute(fa, fb)
    np.testing.assert_array_equal(both[0].values, fa.values)
    np.testing.assert_array_equal(both[1].values, fb.values)
    assert not np.allclose(both[0].values, both[1].values)
    f32, bf16 = (global_map.invert_lazy(cube, a, chunk=60, precision=p).FeO for p in ("float32", "bfloat16"))
    assert float(abs(bf16 - f32).max().compute()) > 0  # one graph, two precisions


def test_the_map_keeps_the_cubes_other_coordinates():
    refl = _globe().assign_coords(spatial_ref=0, x=("lon", np.arange(360) * 1000.0), y=("lat", np.arange(180.0)))
    ds = global_map.invert_lazy(refl, OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4,
                                                    members=2), chunk=60, precision="float32")
    ds = ds.compute()  # each block returns lat and lon only; the others are the cube's own
    assert {"spatial_ref", "x", "y"} <= set(ds.coords)
    np.testing.assert_array_equal(ds["x"].values, refl["x"].values)
    assert ds["x"].dims == ("lon",) and int(ds["spatial_ref"]) == 0


@pytest.mark.parametrize("source", ["in memory", "zarr"])
def test_the_written_map_keeps_the_cubes_other_coordinates(tmp_path, model, source):
    """A cube read from zarr has lazy x/y coordinates; the store is made before any block runs, and once
    wrote them as NaN (only the in-memory coordinates were written when it was made)."""
    refl = _globe().assign_coords(x=("lon", np.arange(360) * 1000.0), y=("lat", np.arange(180.0)), spatial_ref=0)
    if source == "zarr":
        refl.to_dataset(name="reflectance").to_zarr(tmp_path / "cube.zarr")
        refl = global_map.open_reflectance(tmp_path / "cube.zarr")
        assert refl["x"].chunks is not None and refl.chunks is not None  # lazy, read chunk by chunk
    res = global_map.invert_to_zarr(refl, model, tmp_path / "m.zarr", chunk=60, progress=False,
                                    precision="float32", scheduler="threads")
    np.testing.assert_array_equal(res["x"].values, np.arange(360) * 1000.0)
    np.testing.assert_array_equal(res["y"].values, np.arange(180.0))
    assert int(res["spatial_ref"]) == 0


def test_input_cube_is_the_band_variable_and_errors_say_what_to_pass(tmp_path):
    refl = _globe()
    store = tmp_path / "cube.zarr"
    xr.Dataset({"elevation": refl.isel(band=0, drop=True), "reflectance": refl},
               attrs={"instrument": "clementine_uvvis"}).to_zarr(store)
    got = global_map.open_reflectance(store)
    assert got.name == "reflectance" and got.attrs["instrument"] == "clementine_uvvis"
    with pytest.raises(InputError, match="no variable 'R'"):
        global_map.open_reflectance(store, "R")
    two = tmp_path / "two.zarr"
    xr.Dataset({"a": refl, "b": refl}).to_zarr(two)
    with pytest.raises(InputError, match="2 variables with a 'band' dim.*--variable"):
        global_map.open_reflectance(two)
    assert global_map.open_reflectance(two, "b").name == "b"
    with pytest.raises(InputError, match="does not exist"):
        global_map.open_reflectance(tmp_path / "missing.zarr")
    (tmp_path / "junk.zarr").write_text("not a store")
    with pytest.raises(InputError, match="cannot read"):
        global_map.open_reflectance(tmp_path / "junk.zarr")


def test_committed_weights_are_chosen_by_instrument_or_bands():
    from workbench.inversion.model import committed_weights

    if not committed_weights("clementine_uvvis").exists():
        pytest.skip("no committed Clementine weights in this checkout")
    clem = ["R415", "R750", "R900", "R950", "R1000"]
    cube = xr.DataArray(np.zeros((5, 2, 2), "float32"), dims=("band", "lat", "lon"), coords={"band": clem})
    assert global_map.weights_for(cube).bands == clem  # no attribute: matched by band names
    with pytest.raises(InputError, match="no committed weights for instrument 'hubble'.*--weights"):
        global_map.weights_for(cube.assign_attrs(instrument="hubble"))
    with pytest.raises(InputError, match="match no committed weights.*--weights"):
        global_map.weights_for(_globe())


def test_matmul_rate_measured_for_each_available_backend():
    from workbench.inversion.bench import matmul_gflops_by_backend
    from workbench.inversion.resnet import packed_supported

    rates = matmul_gflops_by_backend(n=128, repeats=2)
    assert "torch.matmul" in rates and all(v > 0 for v in rates.values())
    assert ("onednn_linear" in rates) == packed_supported()


@pytest.mark.parametrize("source", ["chunked", "in memory"])
@pytest.mark.parametrize("layout", ["lon before lat", "south-up", "west-right"])
def test_map_keeps_the_input_layout_and_matches_predict(model, tmp_path, layout, source):
    refl = _globe()
    r = {"lon before lat": refl.transpose("band", "lon", "lat"), "south-up": refl.isel(lat=slice(None, None, -1)),
         "west-right": refl.isel(lon=slice(None, None, -1))}[layout]
    ref = model.predict(refl, precision="float32")["FeO"]
    # 50 divides neither 180 nor 360: the short last block must stay last in the caller's layout (zarr)
    # threads: the layout is handled before any scheduler sees the blocks (the clusters' own test checks them)
    r = r.chunk({"lat": 45}) if source == "chunked" else r  # dask's overlap, or window cuts of the whole cube
    res = global_map.invert_to_zarr(r, model, tmp_path / "m.zarr", chunk=50, progress=False,
                                    precision="float32", scheduler="threads")
    assert res["FeO"].dims == tuple(d for d in r.dims if d != "band")
    np.testing.assert_array_equal(res["lat"].values, r["lat"].values)
    xr.testing.assert_allclose(res["FeO"].load(), ref.transpose(*res["FeO"].dims).sel(lat=r.lat, lon=r.lon),
                               atol=1e-5)


def test_chunks_thinner_than_the_halo_are_merged_not_a_dask_error(tmp_path):
    wide = OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2, context=(5, 11))
    assert wide.net.halo == 6
    refl = _globe().isel(lat=slice(0, 44), lon=slice(0, 60))  # a region: 48 blocks of 8, not 1035
    ref = wide.predict(refl, precision="float32")["FeO"]
    # 44 = 5 x 8 + 4 and 60 = 2 x 29 + 2: the last lat (chunk 8) or lon (chunk 29) block is thinner than the halo
    for chunk, src in ((8, refl), (29, refl.chunk({"lat": 7, "lon": 13}))):
        got = global_map.invert_lazy(src, wide, chunk=chunk, precision="float32")["FeO"]
        xr.testing.assert_allclose(got.compute(), ref, atol=1e-5)
    assert global_map._spatial_chunks(20, 8, 6) == (8, 12) and global_map._spatial_chunks(20, 8, 3) == (8, 8, 4)
    # merged blocks and a flipped axis still write a regular zarr store
    # threads: tiny blocks are dominated by a distributed cluster's per-task overhead
    res = global_map.invert_to_zarr(refl.isel(lat=slice(None, None, -1)), wide, tmp_path / "m.zarr", chunk=8,
                                    progress=False, precision="float32", scheduler="threads")
    xr.testing.assert_allclose(res["FeO"].load(), ref.isel(lat=slice(None, None, -1)), atol=1e-5)


def test_a_cube_thinner_than_the_context_says_to_use_predict():
    wide = OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2, context=(5, 11))
    with pytest.raises(InputError, match=r"only 4 lat pixels.*model.predict"):
        global_map.invert_lazy(_globe().isel(lat=slice(0, 4)), wide)


def test_maps_on_dask_distributed_clusters_equal_the_threaded_map(tmp_path, model, capsys):
    """The default runs on a local ``dask.distributed`` cluster (dashboard link printed with the progress bar);
    an existing cluster's address sends the work there, here two worker processes, so the network and
    the scattered cube cross process boundaries. Both write the threaded scheduler's map exactly."""
    from distributed import LocalCluster

    refl = _globe(seed=4)
    refl[:, 70, 200] = np.nan
    kw = dict(chunk=60, precision="float32")
    ref = global_map.invert_to_zarr(refl, model, tmp_path / "t.zarr", progress=False, scheduler="threads", **kw)
    local = global_map.invert_to_zarr(refl, model, tmp_path / "l.zarr", **kw)  # default: a local cluster
    assert "dask dashboard: http://127.0.0.1:" in capsys.readouterr().err  # never on the network
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = global_map.invert_to_zarr(refl, model, tmp_path / "r.zarr", progress=False,
                                           scheduler=cluster.scheduler_address, **kw)
    for res in (local, remote):
        for v in ref.data_vars:
            np.testing.assert_array_equal(res[v].values, ref[v].values)
    assert np.isnan(local.FeO.values[70, 200]) and not np.isnan(local.FeO.values[70, 201])


def test_rows_of_a_cube_read_chunk_by_chunk_share_their_halo_tasks_consistently_on_a_cluster(tmp_path, model):
    """Every chunk row goes to the cluster at once, and a chunked cube's rows share the halo tasks of their
    neighbours' chunks: rows optimised one by one fused those differently, and the scheduler warned of one key
    with two different tasks ("Detected different `run_spec`", which can fail or deadlock a computation)."""
    from distributed import LocalCluster

    class Messages(logging.Handler):
        def __init__(self):
            super().__init__()
            self.seen = []

        def emit(self, record):
            self.seen.append(record.getMessage())

    refl = _globe(seed=5).chunk({"lat": 60, "lon": 60})
    kw = dict(chunk=60, progress=False, precision="float32")
    ref = global_map.invert_to_zarr(refl, model, tmp_path / "t.zarr", scheduler="threads", **kw)
    messages = Messages()
    logger = logging.getLogger("distributed.scheduler")
    logger.addHandler(messages)
    try:
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
            res = global_map.invert_to_zarr(refl, model, tmp_path / "c.zarr", scheduler=cluster.scheduler_address,
                                            **kw)
    finally:
        logger.removeHandler(messages)
    assert not [m for m in messages.seen if "run_spec" in m], messages.seen
    for v in ref.data_vars:
        np.testing.assert_array_equal(res[v].values, ref[v].values)


@pytest.mark.parametrize("bad", ["", "  ", 8786])
def test_a_scheduler_that_is_no_address_is_refused(tmp_path, model, bad):
    with pytest.raises(InputError, match="scheduler must be 'local', 'threads' or a dask scheduler address"):
        global_map.invert_to_zarr(_globe(), model, tmp_path / "m.zarr", chunk=60, progress=False, scheduler=bad)
    assert not (tmp_path / "m.zarr.partial").exists()


@pytest.mark.timeout(120)  # a hang guard only (pytest-timeout), not a speed claim: it runs in well under a second
def test_an_unreachable_scheduler_leaves_no_partial_store(tmp_path, model):
    """Regression: ``--scheduler tcp://127.0.0.1:1`` failed only after ``OUT.zarr.partial`` was created; then
    it waited out dask's 30 s connect timeout for a refused port and left an IO-loop thread per call.

    The refusal is reported as a refusal, not as a connect timeout: the timeout is set here far beyond the hang
    guard, so a run that waits one out (once, or three times) fails instead of passing slowly."""
    import threading

    import dask

    out = tmp_path / "m.zarr"
    threads = threading.active_count()
    with dask.config.set({"distributed.comm.timeouts.connect": "1h"}):
        for _ in range(3):
            with pytest.raises(InputError, match=r"cannot reach the dask scheduler at tcp://127\.0\.0\.1:1 "
                                                 r"\(connection refused\).*--scheduler"):
                global_map.invert_to_zarr(_globe(), model, out, chunk=60, progress=False,
                                          scheduler="tcp://127.0.0.1:1")
    assert threading.active_count() == threads
    assert not out.exists() and not (tmp_path / "m.zarr.partial").exists()


@pytest.mark.parametrize("bad", ["thread", "Local", "http://127.0.0.1:8787"])
def test_a_mistyped_scheduler_is_one_clear_error_and_leaves_no_default_client(tmp_path, model, bad):
    """Regression: a failed ``Client("http://…")`` stayed registered as dask's default client, and a later
    ``compute()`` anywhere in the session (the next test file's ``make_moon``) waited on it forever."""
    import dask
    from distributed.client import _get_global_client

    before = dask.config.get("scheduler", None)
    with pytest.raises(InputError, match=r"is no dask scheduler address.*give 'local', 'threads' or an address"):
        global_map.invert_to_zarr(_globe(), model, tmp_path / "m.zarr", chunk=60, progress=False, scheduler=bad)
    assert _get_global_client() is None and dask.config.get("scheduler", None) == before
    assert float(dask.array.ones(4).sum().compute()) == 4.0


def test_maps_leave_no_default_client_behind(tmp_path, model):
    """The map's own clients (local cluster, or an in-process cluster's inproc:// address) are never the
    session's default, so computations after the map run where they ran before."""
    import dask
    from distributed import LocalCluster
    from distributed.client import _get_global_client

    global_map.invert_to_zarr(_globe(), model, tmp_path / "l.zarr", chunk=90, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("inproc://")
        global_map.invert_to_zarr(_globe(), model, tmp_path / "i.zarr", chunk=90, progress=False,
                                  scheduler=cluster.scheduler_address)
        assert _get_global_client() is None
    assert _get_global_client() is None and dask.config.get("scheduler", None) is None


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_whole_number(tmp_path, model, workers):
    with pytest.raises(InputError, match="workers must be a whole number of threads >= 1"):
        global_map.invert_to_zarr(_globe(), model, tmp_path / "m.zarr", chunk=60, progress=False, workers=workers)


def test_a_bad_chunk_on_the_local_cluster_is_one_error_without_a_worker_traceback(tmp_path):
    """The worker's "Compute Failed" log with its traceback used to reach stderr beside the one error line.
    A subprocess: pytest's log capture would hide the log in-process, so this could not fail there."""
    import subprocess
    import sys

    script = f"""
import numpy as np
from workbench.errors import InputError
from workbench.inversion import global_map
from workbench.inversion.model import OxideInverter
from workbench.geo import global_grid
import xarray as xr
lat, lon = global_grid(1)
data = np.random.default_rng(0).uniform(0.05, 0.3, (3, lat.size, lon.size)).astype(np.float32)
data[0, 100, 3] = -0.1
refl = xr.DataArray(data, dims=("band", "lat", "lon"), coords={{"band": {BANDS!r},
                    "wavelength": ("band", [415.0, 750.0, 950.0]), "lat": lat, "lon": lon}})
model = OxideInverter({BANDS!r}, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2)
try:
    global_map.invert_to_zarr(refl, model, {str(tmp_path / "bad.zarr")!r}, chunk=60, progress=False)
except InputError as exc:
    print("InputError:", exc)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "InputError: reflectance in a chunk has 1 negative" in r.stdout, r.stdout + r.stderr
    assert "Compute Failed" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_matmul_peak_is_each_backends_best_before_and_after_the_map():
    from workbench.inversion.bench import best_gemm_rates, flop_utilization

    before = {"torch.matmul": 50.0, "onednn_linear": 104.8}
    after = {"torch.matmul": 60.0, "onednn_linear": 101.0}
    assert best_gemm_rates(before, after) == {"torch.matmul": 60.0, "onednn_linear": 104.8}
    assert best_gemm_rates(before, {"torch.matmul": 40.0}) == before  # a backend measured once keeps its rate
    assert flop_utilization(52.4, 104.8) == {"flop_utilization": 0.5}
    busy = flop_utilization(114.3, 104.8, suffix="_float32")
    assert busy["flop_utilization_float32"] == 1.091  # the number is kept, not clipped
    assert "busy" in busy["flop_utilization_float32_note"] and "idle" in busy["flop_utilization_float32_note"]


@pytest.mark.parametrize("geography,bench_geography", [("auto", "real"), ("procedural", "real"),
                                                       ("auto", "procedural")])
def test_replicate_moon_replays_the_weights_own_moon_and_says_which_geography(monkeypatch, geography,
                                                                             bench_geography):
    """The replicate Moon's fine-tune replays what the weights were pre-trained on (as the interval
    calibration on the validation Moons does), and its note says whether it shares the benchmark's map."""
    import types

    from workbench.inversion import bench, experiment

    moon0 = xr.Dataset(attrs={"geography": bench_geography})  # offline, "auto" builds procedural Moons
    sources = {"near": ("refl0", moon0, "train0"), "library": ("lib_refl", "lib_truth", None)}
    seen = {}

    def fake_experiment(instrument, **kw):
        seen.update(kw)
        used = bench_geography if kw["geography"] == "auto" else kw["geography"]
        row = {"FeO": 0.3, "TiO2": 0.1}
        return types.SimpleNamespace(truth=xr.Dataset(attrs={"geography": used}),
                                     coverage={"resnet_finetuned": {"FeO": {"cov95": 0.9}, "TiO2": {"cov95": 1.0}}},
                                     table=None, rows={"resnet_pretrained": row, "resnet_finetuned": row,
                                                       "lucey2000": row, "gbm": row})

    monkeypatch.setattr(experiment, "far_side_experiment", fake_experiment)
    monkeypatch.setattr(experiment, "pretraining_sources", lambda model, instrument, ppd: sources)
    monkeypatch.setattr(experiment, "rmse_table", lambda exp: exp.rows)
    out = bench.replicate_moon(object(), fast=True, geography=geography)
    assert seen["replay"] == list(sources.values()) and seen["geography"] == geography and seen["seed"] == 2
    assert out["interval_coverage_95"] == 0.95
    assert "replays Moon 0's near side and the spectral library" in out["note"]
    if geography == "procedural":
        assert out["geography"] == "procedural" and "is not the benchmark Moon's (real)" in out["note"]
    elif bench_geography == "real":
        assert out["geography"] == "real" and "shares the benchmark Moon's geography" in out["note"]
    else:  # two procedural Moons share only the named basins
        assert "Both Moons are procedural" in out["note"] and "shares" not in out["note"]


def test_a_resume_after_the_input_store_was_rewritten_in_place_recomputes_every_row(tmp_path, model, crash_at_block):
    """An input zarr edited in place (a region write: new chunk files, the store's top folder untouched) keeps
    its dask graph name; the resume once took the rows written before the edit from the old data."""
    import time

    refl = _globe().isel(lat=slice(60, 80), lon=slice(100, 140))  # 20 x 40: two chunk rows of 10
    store = tmp_path / "cube.zarr"
    refl.to_dataset(name="reflectance").chunk({"lat": 10}).to_zarr(store)
    out = tmp_path / "map.zarr"
    crash_at_block(5)  # the first block of the second chunk row (one thread: row by row)
    with pytest.raises(RuntimeError, match="simulated"):
        global_map.invert_to_zarr(global_map.open_reflectance(store), model, out, chunk=10, progress=False,
                                  precision="float32", scheduler="threads", workers=1)
    assert json.loads((tmp_path / "map.zarr.partial" / "progress.json").read_text())["done"] == [0]
    crash_at_block(None)
    time.sleep(0.01)
    # the cube is recalibrated in place, every row
    (refl.to_dataset(name="reflectance") * 0.8).drop_vars(["band", "wavelength", "lat", "lon"]).to_zarr(
        store, region={"lat": slice(0, 20)})
    fixed = global_map.open_reflectance(store)
    res = global_map.invert_to_zarr(fixed, model, out, chunk=10, progress=False, precision="float32",
                                    scheduler="threads")
    np.testing.assert_allclose(res.FeO.values, model.predict(fixed.compute(), precision="float32").FeO.values,
                               rtol=1e-5, atol=1e-5)


def test_the_fingerprint_of_a_store_cube_follows_its_chunk_files(tmp_path):
    import time

    from workbench.validate import fingerprint

    refl = _globe().isel(lat=slice(0, 20), lon=slice(0, 20))
    refl.to_dataset(name="reflectance").chunk({"lat": 10}).to_zarr(tmp_path / "c.zarr")
    a = global_map.open_reflectance(tmp_path / "c.zarr")
    before, derived = fingerprint(a), fingerprint(a * 1.0)
    assert before == fingerprint(global_map.open_reflectance(tmp_path / "c.zarr"))  # unchanged: resumable
    time.sleep(0.01)  # past the file system's timestamp granularity
    (refl.to_dataset(name="reflectance").isel(lat=slice(10, 20)) * 0.5).drop_vars(
        ["band", "wavelength", "lat", "lon"]).to_zarr(tmp_path / "c.zarr", region={"lat": slice(10, 20)})
    b = global_map.open_reflectance(tmp_path / "c.zarr")
    assert a.data.name == b.data.name  # dask's key alone cannot tell them apart
    assert fingerprint(b) != before and fingerprint(b * 1.0) != derived
    assert fingerprint(_globe()) == fingerprint(_globe())  # in-memory cubes: keyed by their values, as before


@pytest.mark.parametrize("dims, fix", [(("band", "y", "x"), "warp it onto latitude/longitude first.*warp_to_latlon"),
                                       (("band", "time", "lat", "lon"), r"select one time step first \(e.g. "
                                                                       r"refl.isel\(time=0\)\)")])
@pytest.mark.parametrize("how", ["lazy", "zarr"])
def test_a_cube_not_on_band_lat_lon_is_one_clear_error(tmp_path, model, dims, fix, how):
    refl = _globe().isel(lat=slice(0, 20), lon=slice(0, 20))
    if "time" in dims:
        refl = refl.expand_dims(time=[0]).transpose(*dims)
    else:
        refl = refl.rename(lat="y", lon="x")
    with pytest.raises(InputError, match=r"needs a \(band, lat, lon\) cube, got dims .*: " + fix):
        if how == "lazy":
            global_map.invert_lazy(refl, model, chunk=10)
        else:
            global_map.invert_to_zarr(refl, model, tmp_path / "m.zarr", chunk=10, progress=False, scheduler="threads")
    assert not (tmp_path / "m.zarr.partial").exists()


@pytest.mark.parametrize("source", ["chunked", "in memory"])
def test_a_chunk_narrower_than_the_networks_halo_is_refused_naming_both(model, source):
    wide = OxideInverter(BANDS, [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2, context=(21,))
    assert wide.net.halo == 11
    refl = _globe().isel(lat=slice(0, 30), lon=slice(0, 60))
    refl = refl.chunk({"lat": 15, "lon": 30}) if source == "chunked" else refl
    with pytest.raises(InputError, match=r"chunk \(8 pixels\) is narrower than the network's halo of 11 pixels.*"
                                         r"chunk >= 11"):
        global_map.invert_lazy(refl, wide, chunk=8, precision="float32")
    global_map.invert_lazy(refl, wide, chunk=11, precision="float32").FeO.compute()  # the fix works


def _cli_args(tmp_path, weights, **kw):
    import argparse

    return argparse.Namespace(**{"input": None, "weights": str(weights), "ppd": 1, "chunk": 90, "out": str(tmp_path /
                              "m.zarr"), "scheduler": "threads", "precision": "float32", "overwrite": False, **kw})


@pytest.mark.parametrize("instrument", ["lro_wac", "kaguya_mi", "clementine_uvvis"])
def test_the_synthetic_map_observes_the_instrument_with_the_weights_bands(tmp_path, monkeypatch, instrument):
    """7-band WAC weights once made the synthetic Moon be observed by Kaguya MI (chosen by the band count)."""
    import workbench.synth as synth
    from workbench.synth.instruments import INSTRUMENTS

    table = INSTRUMENTS[instrument]
    OxideInverter(list(table["name"]), list(table["center_nm"]), width=8, depth=1, stem=4, members=2).save(
        tmp_path / "w.pt")
    seen = {}
    monkeypatch.setattr(synth, "make_moon", lambda resolution_ppd: "moon")

    def observe(moon, inst, snr, seed):
        seen["instrument"] = inst
        return {"reflectance": xr.DataArray(np.zeros((1, 1, 1)))}

    monkeypatch.setattr(synth, "observe", observe)
    monkeypatch.setattr(global_map, "invert_to_zarr", lambda *a, **k: xr.Dataset(attrs={"seconds": 0.0}))
    global_map.invert_global_cli(_cli_args(tmp_path, tmp_path / "w.pt"))
    assert seen["instrument"] == instrument


def test_synthetic_map_weights_of_no_instruments_bands_are_one_clear_error(tmp_path, model):
    model.save(tmp_path / "w.pt")  # R415, R750, R950: no virtual instrument has exactly these bands
    with pytest.raises(InputError, match=r"bands \['R415', 'R750', 'R950'\] are those of no virtual instrument"):
        global_map.invert_global_cli(_cli_args(tmp_path, tmp_path / "w.pt"))
    assert not (tmp_path / "m.zarr").exists()


def test_the_bfloat16_speedup_stated_is_the_measured_one():
    import argparse

    from workbench.commands import invert

    parser = argparse.ArgumentParser()
    invert.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["invert"]
    m = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices["map"]
    text = next(a.help for a in m._actions if "--precision" in a.option_strings)
    for doc in (text, global_map.invert_to_zarr.__doc__):
        assert "2.5x" not in doc and "1.7" in doc and "2.0x" in doc and "speedup_vs_float32" in doc


def test_area_weighted_benchmark_figures_reuse_the_predictions_with_known_answers():
    """Rows at 75, 45 and 15 deg N (30-deg cells) cover areas in the ratio 1 - sin 60 : sin 60 - sin 30 : sin 30."""
    import types

    from workbench.inversion.bench import area_weighted_figures

    lat, lon = np.array([75.0, 45.0, 15.0]), np.array([150.0, 170.0])
    w = np.array([1 - np.sin(np.pi / 3), np.sin(np.pi / 3) - 0.5, 0.5])
    y = np.arange(6.0).reshape(3, 2)
    truth = xr.Dataset({t: (("lat", "lon"), y) for t in ("FeO", "TiO2")}, coords={"lat": lat, "lon": lon})
    err = np.repeat([[3.0], [2.0], [1.0]], 2, axis=1)
    tuned = xr.Dataset({"FeO": (("lat", "lon"), y + err), "FeO_std": (("lat", "lon"), np.full((3, 2), 1.4)),
                        "TiO2": (("lat", "lon"), y - err), "TiO2_std": (("lat", "lon"), np.full((3, 2), 0.9))},
                       coords={"lat": lat, "lon": lon})
    lucey = tuned[["FeO"]].isel(lat=slice(None, None, -1))  # south-up: paired with the truth by latitude
    exp = types.SimpleNamespace(truth=truth, predictions={"resnet_finetuned": tuned, "lucey2000": lucey},
                                masks={"test": xr.DataArray(np.ones((3, 2), bool), coords=truth.coords)})
    fig = area_weighted_figures(exp)
    rmse = round(float(np.sqrt(np.sum(w * [9.0, 4.0, 1.0]) / w.sum())), 4)
    assert fig["heldout_rmse_area_weighted"] == {"resnet_finetuned": {"FeO": rmse, "TiO2": rmse},
                                                 "lucey2000": {"FeO": rmse}}
    assert rmse != round(float(np.sqrt(14 / 3)), 4)  # the pixel average
    # |z| <= 1.96: FeO (std 1.4) the two lower rows, TiO2 (std 0.9) the lowest row
    assert fig["interval_coverage_by_target_area_weighted"]["FeO"]["cov95"] == pytest.approx(w[1:].sum() / w.sum())
    assert fig["interval_coverage_95_area_weighted"] == round((w[1:].sum() + w[2]) / w.sum() / 2, 4)


def test_a_silent_scheduler_is_announced_before_dask_waits_for_it(monkeypatch, capsys):
    """A scheduler address where nothing answers (no refusal) leaves the wait to dask's connect timeout: the user
    is told what is being waited for and for how long, instead of a silent pause, and a failure is an InputError."""
    import socket

    import dask
    import distributed

    def silent(*args, **kwargs):
        raise TimeoutError("timed out")

    def no_client(*args, **kwargs):
        raise OSError("Timed out trying to connect to tcp://192.0.2.1:8786 after 7 s")

    monkeypatch.setattr(socket, "create_connection", silent)
    monkeypatch.setattr(distributed, "Client", no_client)
    with dask.config.set({"distributed.comm.timeouts.connect": "7s"}), \
            pytest.raises(InputError, match=r"cannot reach the dask scheduler at tcp://192\.0\.2\.1:8786"):
        global_map._connect("tcp://192.0.2.1:8786")
    err = capsys.readouterr().err
    assert "did not answer within 1 s; waiting up to 7s" in err and "tcp://192.0.2.1:8786" in err
