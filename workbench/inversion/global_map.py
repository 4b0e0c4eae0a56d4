"""Global oxide maps chunk by chunk with dask, written to zarr, resumable, local or on a cluster.

:func:`invert_lazy` builds a lazy ``xarray.Dataset`` of every target and its uncertainty with
``xarray.map_blocks``: each dask chunk of the ``(band, lat, lon)`` reflectance cube is handed to the network with
its halo from the neighbouring chunks (periodic in longitude for global grids; the 3×3 stem and any context
windows need their neighbours, so blocks without a halo would leave seams), and the network returns the chunk's
core. A cube in one piece (in memory, or scattered to a cluster) gives each block its window in one cut; a cube
read chunk by chunk gets its halo from ``dask.array.overlap``. :func:`invert_to_zarr` maps the same blocks with a
function that also writes each core into a zarr store in the same task (one task a block, not a slice and a
store task for each of the 14 variables), with a progress bar; on a cluster every chunk row is in flight at
once (the first rows first). Finished chunk rows are recorded in ``<out>.partial/progress.json`` so an
interrupted run continues where it stopped. The store is renamed to its final name only when complete. The work
runs on a ``dask.distributed`` cluster: by default a local one started for the run in this process
(``scheduler="local"``, with a dashboard), or an existing cluster when ``scheduler`` is its address;
``scheduler="threads"`` uses dask's plain threaded scheduler instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..config import inference_precision
from ..errors import InputError
from ..geo import is_global_lon, north_up_flips
from ..io import replace_path, writable_parent
from ..validate import REFLECTANCE_MAX, check_reflectance, fingerprint, is_whole_number
from .model import UNITS, OxideInverter, training_layout

# zarr 3 warns on every consolidated write that consolidated metadata is not in its v3 spec yet; xarray
# consolidates by default and reads it back, so the warning is noise on the CLI's one-line stderr
warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)


def _block_fn(model: OxideInverter, precision: str):
    """The per-block function of :func:`invert_lazy`'s ``xarray.map_blocks``: a (band, lat, lon) block with
    the network's halo on every side in, the Dataset of every target and its std on the block's core out."""
    import torch

    h = model.net.halo

    def fn(block: xr.DataArray) -> xr.Dataset:
        # the cube is lazy: each chunk is checked as it arrives (inf, negative, percent/DN), never clipped
        check_reflectance(block.values, name="reflectance in a chunk", allow_all_nan=True,
                          max_value=REFLECTANCE_MAX)
        with torch.no_grad():  # passes of ~PASS_PIXELS pixels (see workbench.inversion.model)
            # the block carries the network's halo on every side (the 3x3 stem and any context windows)
            mean, std = model.predict_arrays(np.asarray(block.values, np.float32), precision=precision, halo=True)
        core = block.isel(lat=slice(h, block.sizes["lat"] - h), lon=slice(h, block.sizes["lon"] - h))
        ds = xr.Dataset(coords={"lat": core["lat"].values, "lon": core["lon"].values})
        for k, t in enumerate(model.targets):
            ds[t] = (("lat", "lon"), mean[k])
            ds[f"{t}_std"] = (("lat", "lon"), std[k])
        return ds

    return fn


def _halo_index(n: int, chunks: tuple[int, ...], depth: int, boundary: str) -> list[np.ndarray]:
    """Each block's positions along an axis of ``n`` values with ``depth`` more on either side, as
    ``dask.array.overlap.overlap`` lays out the data: ``boundary`` ``"periodic"`` wraps around, ``"nearest"``
    repeats the edge value."""
    starts = np.concatenate([[0], np.cumsum(chunks)])
    pos = [np.arange(a - depth, b + depth) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    return [np.mod(p, n) if boundary == "periodic" else np.clip(p, 0, n - 1) for p in pos]


def _halo_coord(coord: np.ndarray, chunks: tuple[int, ...], depth: int, boundary: str) -> np.ndarray:
    """``coord`` with each chunk's halo of ``depth`` values (see :func:`_halo_index`)."""
    return coord[np.concatenate(_halo_index(coord.size, chunks, depth, boundary))]


def _as_slice(pos: np.ndarray) -> slice | np.ndarray:
    """``pos`` as a slice when it is a run of consecutive positions (a view, not a copy, of the data)."""
    return slice(int(pos[0]), int(pos[-1]) + 1) if pos.size and (np.diff(pos) == 1).all() else pos


def _window(cube: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One block with its halo cut from a whole (band, lat, lon) cube."""
    return cube[:, _as_slice(rows)][:, :, _as_slice(cols)]


def _windows(src: da.Array, chunks: tuple[tuple[int, ...], ...], depth: int, boundary: dict) -> da.Array:
    """A single-chunk (band, lat, lon) cube as blocks of ``chunks`` with their halo, one task a block.

    The same blocks as ``dask.array.overlap.overlap`` of the cube rechunked to ``chunks``, in one window cut
    each from the whole cube instead of about 16 rechunk, slice and concatenate tasks a block (each costs a
    dask.distributed cluster a few ms of scheduling on the cores the network runs on)."""
    from dask.highlevelgraph import HighLevelGraph

    src_key = src.__dask_keys__()[0][0][0]
    rows, cols = (_halo_index(src.shape[i], chunks[i], depth, boundary[d]) for i, d in ((1, "lat"), (2, "lon")))
    name = "halo-windows-" + dask.base.tokenize(src.name, chunks, depth, boundary)
    # dask's plain (function, arguments...) task tuples, which every dask since 2024.1 reads
    dsk = {(name, 0, i, j): (_window, src_key, r, c) for i, r in enumerate(rows) for j, c in enumerate(cols)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[src])
    return da.Array(graph, name, chunks=(chunks[0], tuple(map(len, rows)), tuple(map(len, cols))), dtype=src.dtype)


def _spatial_chunks(n: int, chunk: int, halo: int) -> tuple[int, ...]:
    """``chunk``-sized blocks over ``n`` pixels, a last block thinner than the network's halo merged into the
    one before (dask's overlap needs each block at least as wide as the overlap it lends its neighbours).
    Every block boundary stays a multiple of ``chunk``, so blocks write whole zarr chunks of that size."""
    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])
    if len(sizes) > 1 and sizes[-1] < halo:
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes)


@dataclass(frozen=True)
class _Blocks:
    """A cube laid out for the network, block by block: what :func:`invert_lazy` maps and
    :func:`invert_to_zarr` writes.

    ``halo`` is the (band, lat, lon) cube in the network's layout (north up, longitude increasing) as dask
    blocks that each carry the network's halo, with the halo'd coordinates and the network-layout positions
    ``lat_pos``/``lon_pos``; ``template`` the map in that layout; ``fn`` the network on one block;
    ``flips`` and ``dims`` give the caller's layout back; ``coords`` are the cube's other coordinates;
    ``depth`` is the halo's width in pixels.
    """

    halo: xr.DataArray
    template: xr.Dataset
    fn: Callable[[xr.DataArray], xr.Dataset]
    flips: dict
    dims: tuple[str, ...]
    coords: dict
    depth: int


def _blocks(refl: xr.DataArray, model: OxideInverter, chunk: int, precision: str | None) -> _Blocks:
    """Check ``refl`` against ``model`` and lay it out block by block (see :class:`_Blocks`)."""
    if "band" not in refl.dims:
        raise InputError("reflectance needs a 'band' dim (band, lat, lon)")
    dims = tuple(map(str, refl.dims))
    if set(dims) != {"band", "lat", "lon"}:
        extra = [d for d in dims if d not in ("band", "lat", "lon")]
        if not {"lat", "lon"} <= set(dims):
            fix = ("warp it onto latitude/longitude first (workbench.rasters.warp_to_latlon(refl) for a projected "
                   "cube with attrs['crs'], as open_geotiff gives; dims 'lat' and 'lon', in degrees)")
        else:
            pick = ", ".join(f"{d}=0" for d in extra)
            fix = f"select one {' and one '.join(extra)} step first (e.g. refl.isel({pick}))"
        raise InputError(f"the global map needs a (band, lat, lon) cube, got dims {dims}: {fix}")
    if not isinstance(chunk, (int, np.integer)) or chunk < 8:
        raise InputError(f"chunk must be a whole number of pixels >= 8 (e.g. 128 or 512), got {chunk!r}")
    if chunk < model.net.halo:
        raise InputError(f"chunk ({chunk} pixels) is narrower than the network's halo of {model.net.halo} pixels "
                         "(the context it reads around each pixel, which each block borrows from its neighbours); "
                         f"give chunk >= {max(8, model.net.halo)}")
    given = tuple(d for d in refl.dims if d != "band")
    flips = north_up_flips(refl)
    refl = training_layout(refl, flips).transpose("band", "lat", "lon")  # the network's layout
    model.check_input(refl.isel(lat=slice(0, 1), lon=slice(0, 1)))  # bands and wavelengths
    if list(map(str, refl["band"].values)) != list(model.bands):
        refl = refl.sel(band=model.bands)
    h = model.net.halo
    thin = {d: refl.sizes[d] for d in ("lat", "lon") if refl.sizes[d] < h}
    if thin:
        across = " and ".join(f"{n} {d}" for d, n in thin.items())
        raise InputError(f"the cube has only {across} pixels, fewer than the network's {h}-pixel context; "
                         "invert such a small region in memory with model.predict(refl)")
    # blocks counted from the caller's first row/column (reversed here for a flipped axis), so that in the
    # returned layout every block but the last is ``chunk`` wide: zarr's regular chunks
    chunks = (refl.sizes["band"], *(_spatial_chunks(refl.sizes[d], chunk, h)[::-1 if d in flips else 1]
                                    for d in ("lat", "lon")))
    chunks = da.core.normalize_chunks(chunks, refl.shape)
    # each block is cast to float32 after its check, so a huge float64 value (1e40) is reported as
    # too high rather than as the inf a cast would make of it
    precision = inference_precision(precision, model.device)
    # each block with its halo from its neighbours (periodic in longitude on a global grid)
    boundary = {"lat": "nearest", "lon": "periodic" if is_global_lon(refl["lon"].values) else "nearest"}
    if isinstance(refl.data, da.Array) and refl.data.npartitions > 1:  # read chunk by chunk: dask's overlap
        arr = da.overlap.overlap(refl.data.rechunk(chunks), depth={0: 0, 1: h, 2: h},
                                 boundary={0: "none", 1: boundary["lat"], 2: boundary["lon"]})
    else:  # one piece (in memory, or one scattered or delayed array): each block's window cut from it
        src = refl.data if isinstance(refl.data, da.Array) else \
            da.from_array(np.asarray(refl.values), chunks=-1, name=False)  # no content hash for a name
        arr = _windows(src, chunks, h, boundary)
    coords = {}
    for i, d in ((1, "lat"), (2, "lon")):
        pos = _halo_coord(np.arange(refl.sizes[d]), chunks[i], h, boundary[d])  # each block's positions
        coords[d], coords[f"{d}_pos"] = refl[d].values[pos], (d, pos)
    halo = xr.DataArray(arr, dims=("band", "lat", "lon"), coords=coords)
    cell = da.empty((refl.sizes["lat"], refl.sizes["lon"]), chunks=chunks[1:], dtype=np.float32)
    template = xr.Dataset(coords={"lat": refl["lat"].variable, "lon": refl["lon"].variable},
                          attrs={"crs": refl.attrs.get("crs", "IAU_2015:30100"), "bands": ",".join(model.bands),
                                 "precision": precision})
    for t in model.targets:
        template[t] = (("lat", "lon"), cell, {"units": UNITS.get(t, "1")})
        template[f"{t}_std"] = (("lat", "lon"), cell, {"units": UNITS.get(t, "1"),
                                                       "long_name": f"{t} 1-sigma uncertainty"})
    # the cube's other coordinates on lat or lon (and scalar ones), as the map had them before; loaded (they
    # are small), so that the store gets them when it is made (xr.open_zarr gives a cube lazy x/y coordinates)
    other = {c: refl[c].variable.compute() for c in refl.coords if c not in ("lat", "lon")
             and (set(refl[c].dims) <= {"lat"} or set(refl[c].dims) <= {"lon"})}
    return _Blocks(halo, template, _block_fn(model, precision), flips, given, other, h)


def _map_blocks(fn: Callable, blocks: _Blocks, template: xr.Dataset) -> xr.Dataset:
    """``xarray.map_blocks`` of ``fn`` over the halo'd blocks, ``fn``'s token in the task names: xarray names
    the tasks from the input alone, and two models' (or precisions', or stores') maps of one cube must differ."""
    return xr.map_blocks(fn, blocks.halo.assign_coords(block_fn=dask.base.tokenize(fn)), template=template)


def invert_lazy(refl: xr.DataArray, model: OxideInverter, chunk: int = 512,
                precision: str | None = None) -> xr.Dataset:
    """Lazy Dataset of ``<target>`` and ``<target>_std`` (lat, lon) for a (band, lat, lon) cube.

    ``precision``: ``"float32"``, ``"bfloat16"`` or ``"auto"`` (default: ``WORKBENCH_PRECISION``, else
    ``"auto"`` = bfloat16 where the device computes it natively; see
    :func:`workbench.config.inference_precision`). The precision used is stored in ``attrs``.

    Raises :class:`InputError` for a cube whose dims are not exactly (band, lat, lon) (warp it onto
    latitude/longitude with :func:`workbench.rasters.warp_to_latlon`, or select one time step) and for a
    ``chunk`` below 8 pixels or narrower than the network's halo (``model.net.halo``).
    """
    b = _blocks(refl, model, chunk, precision)
    # xarray.map_blocks over the cube with each block's halo attached; each block's function returns its core,
    # so the map has the cube's own chunks
    ds = _map_blocks(b.fn, b, b.template).assign_coords(b.coords)
    return ds.isel(b.flips).transpose(*b.dims)  # back in the caller's layout


def _block_writer(fn: Callable[[xr.DataArray], xr.Dataset], store: str, blocks: _Blocks):
    """A block function for ``xarray.map_blocks`` that runs ``fn`` on a halo'd block and writes every variable
    of its core into the zarr ``store`` (made beforehand, in the caller's layout) in the same task; it returns
    only a (lat, lon) mark of the core. One task computes and writes a block, instead of a map task plus a
    slice and a store task for each of the 14 variables."""
    import zarr

    sizes = {d: blocks.template.sizes[d] for d in ("lat", "lon")}
    flips, dims, h = blocks.flips, blocks.dims, blocks.depth

    def write(block: xr.DataArray) -> xr.Dataset:
        ds = fn(block)
        region = {}
        for d in ("lat", "lon"):
            pos = block[f"{d}_pos"].values[h:block.sizes[d] - h]  # the core's positions in the network's layout
            a, b = int(pos[0]), int(pos[-1]) + 1
            region[d] = slice(sizes[d] - b, sizes[d] - a) if d in flips else slice(a, b)
        out = ds.isel(flips).transpose(*dims)
        group = zarr.open_group(store, mode="r+")
        for v in out.data_vars:
            group[v][tuple(region[d] for d in out[v].dims)] = out[v].values
        return xr.Dataset({"written": (("lat", "lon"), np.ones((ds.sizes["lat"], ds.sizes["lon"]), bool))},
                          coords=ds.coords)

    return write


def _writes(blocks: _Blocks, store: Path) -> da.Array:
    """The dask array (network layout) whose blocks, computed, invert the cube and write the map into ``store``."""
    cell = next(iter(blocks.template.data_vars.values())).data
    mark = xr.Dataset({"written": (("lat", "lon"), da.empty(cell.shape, chunks=cell.chunks, dtype=bool))},
                      coords=blocks.template.coords)
    return _map_blocks(_block_writer(blocks.fn, str(store), blocks), blocks, mark)["written"].data


def map_encoding(ds: xr.Dataset, level: int = 1) -> dict:
    """zarr encoding of the map's variables: zstd at ``level`` (1: the fastest).

    Measured on the 16 px/deg map (14 float32 outputs, 929 MB): zarr's default (zstd level 3) writes
    352 MB in 3.3 s on 2 cores, level 1 writes 465 MB in 1.7 s, Blosc-LZ4 505 MB in 1.5 s.
    """
    import zarr

    if int(zarr.__version__.split(".")[0]) >= 3:
        from zarr.codecs import ZstdCodec

        return {v: {"compressors": (ZstdCodec(level=level),)} for v in ds.data_vars}
    from numcodecs import Zstd

    return {v: {"compressor": Zstd(level=level)} for v in ds.data_vars}


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def invert_to_zarr(refl: xr.DataArray, model: OxideInverter, out: str | os.PathLike, chunk: int = 512,
                   scheduler: str | None = "local", progress: bool = True, workers: int = 2,
                   overwrite: bool = False, precision: str | None = None) -> xr.Dataset:
    """Invert ``refl`` chunk by chunk and write ``out`` (zarr); resumes an interrupted run.

    Parameters
    ----------
    refl
        ``(band, lat, lon)`` reflectance (numpy- or dask-backed) with the model's bands.
    model
        A fitted :class:`OxideInverter`.
    out
        Final zarr path; work happens in ``<out>.partial`` and is renamed on completion.
    scheduler
        ``"local"`` (default): a ``dask.distributed`` cluster started for this run inside this process (one
        worker of ``workers`` threads; in-process, so the scattered cube is not copied to worker processes,
        while the network, 0.75 MB pickled, travels with each chunk row's tasks), its dashboard link printed
        when ``progress``;
        the address of an existing ``dask.distributed`` scheduler (``tcp://host:8786``): the work runs
        there (the workers must reach any files the cube is read from); ``"threads"`` or None: dask's
        threaded scheduler without ``distributed`` (``workers`` threads).
    workers
        Threads of the local cluster or of the threaded scheduler (a whole number >= 1); torch uses one
        thread in each when ``workers > 1``, and every core when ``workers == 1``.
    overwrite
        Replace an existing complete store at ``out``.
    precision
        Network arithmetic, see :func:`invert_lazy` (bfloat16 by default where native: about 1.7–2.0x
        faster on the 2-core benchmark machine, ``speedup_vs_float32`` in the benchmark; means within
        ~0.01 wt% rms of float32).

    Returns
    -------
    xarray.Dataset
        The store opened lazily.

    Raises
    ------
    InputError
        Before any chunk runs: a cube whose dims are not exactly (band, lat, lon) (warp it with
        :func:`workbench.rasters.warp_to_latlon`, or select one time step), ``chunk`` below 8 or narrower than
        the network's halo, bands or wavelengths that are not the model's, an existing ``out``. During the run:
        bad values in a chunk (nothing is kept).

    Notes
    -----
    A resume is taken only for the same cube, model and precision (:func:`workbench.validate.fingerprint`);
    a cube read from a local zarr store is also keyed by its chunk files' sizes and mtimes, so rewriting the
    store in place (a region write) recomputes every row instead of mixing old and new data.
    """
    out = writable_parent(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is an existing file; a zarr store is a folder: remove or rename the file, or "
                         "give another path")
    if out.exists() and not overwrite:
        raise InputError(f"{out} exists; pass overwrite=True (CLI: --overwrite) to recompute")
    blocks = _blocks(refl, model, chunk, precision)  # checks the cube and the model before anything starts
    # the map's variables and coordinates in the caller's layout, to make the store from (nothing computed)
    ds = blocks.template.assign_coords(blocks.coords).isel(blocks.flips).transpose(*blocks.dims)
    for v in ds.variables.values():  # the input's storage encoding (e.g. zarr v2 Blosc codecs) is not ours
        v.encoding = {}
    key = fingerprint(refl, model.net.state_dict(), model.y_mean, model.y_std, model.std_scale,
                      model.discrepancy_std, model.shift_scale, model.extrapolation_scale,
                      model.mg_number_from, ds.attrs["precision"])  # same run?
    # connected before any .partial store is made or replaced: an unreachable scheduler leaves nothing
    # behind (and an interrupted run's store stays resumable)
    bad_data: list[Path] = []  # a store to remove once no task of this run can still write into it
    try:
        with _cluster_client(scheduler, workers, progress) as client:
            if client is not None and not isinstance(refl.data, da.Array):
                # an in-memory cube is scattered to the cluster once, not embedded in every chunk row's task
                # graph (a 16 px/deg cube is 330 MB; hash=False: no 0.4 s content hash for its key); the
                # blocks are the same, so the map is too
                data = np.asarray(refl.values)
                cube = client.scatter(data, hash=False)
                blocks = _blocks(refl.copy(data=da.from_delayed(cube, data.shape, dtype=data.dtype)), model, chunk,
                                 precision)
            return _write_store(ds, blocks, model, out, key, chunk, client, progress, workers, bad_data.append)
    finally:
        # after the exit above: the thread pool or the local cluster has finished the tasks still running when
        # a chunk failed, and a connected cluster's workers have finished this run's (_rows_on_cluster waits for
        # them, up to 60 s), so none writes after the removal
        for path in bad_data:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _cluster_client(scheduler: str | None, workers: int, progress: bool):
    """The ``dask.distributed`` client :func:`invert_to_zarr` computes with, current only inside the block,
    closed (and a local cluster shut down, after its running tasks) on exit; None for dask's threaded
    scheduler, which then runs on a pool of ``workers`` threads of its own, shut down the same way."""
    if not is_whole_number(workers) or workers < 1:
        raise InputError(f"workers must be a whole number of threads >= 1, got {workers!r}")
    if scheduler is None or scheduler == "threads":
        from concurrent.futures import ThreadPoolExecutor

        # this run's own pool, shut down on exit once its running tasks are done (dask's shared pools are not)
        with ThreadPoolExecutor(workers) as pool, dask.config.set(scheduler="threads", pool=pool):
            yield None
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise InputError(f"scheduler must be 'local', 'threads' or a dask scheduler address such as "
                         f"tcp://host:8786, got {scheduler!r}")
    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            import logging

            from distributed import Client, LocalCluster

            # processes=False: torch releases the GIL in its kernels, so threads in this process use both
            # cores and the scattered cube is not copied to worker processes. The dashboards listen on this
            # machine only (dask's default is every interface). Logs below CRITICAL are silenced: a failing
            # chunk's error reaches the caller as its exception, not also as a worker traceback on stderr
            cluster = stack.enter_context(LocalCluster(
                n_workers=1, threads_per_worker=workers, processes=False, dashboard_address="127.0.0.1:0",
                worker_dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL))
            client = stack.enter_context(Client(cluster, set_as_default=False))
            if progress:
                # the link dask formats names the in-process scheduler's network address, not where the
                # dashboard listens
                port = client.scheduler_info()["services"]["dashboard"]
                print(f"dask dashboard: http://127.0.0.1:{port}/status", file=sys.stderr)
        else:
            client = _connect(scheduler)
            stack.callback(client.close)
        stack.enter_context(client.as_current())  # this map's computations only, not the session's default
        yield client


def _connect(scheduler: str):
    """A ``dask.distributed`` client of the scheduler at ``scheduler``.

    A TCP address is probed first, so that a refused port or an unknown host is reported at once rather
    than after dask's connect timeout (and without the threads a failed ``Client`` leaves behind).

    Parameters
    ----------
    scheduler
        The scheduler's address (``tcp://host:8786``).

    Returns
    -------
    distributed.Client
        The connected client (the caller closes it).

    Raises
    ------
    InputError
        When ``scheduler`` is no dask address, or the scheduler cannot be reached (refused, unknown host,
        or nothing answering within dask's connect timeout, ``distributed.comm.timeouts.connect``).
    """
    import socket

    from distributed import Client
    from distributed.comm.addressing import get_address_host_port

    fix = ("check the address and that `dask scheduler` is running there, or leave out --scheduler to run on a "
           "local cluster")
    scheme = scheduler.partition("://")[0] if "://" in scheduler else "tcp"
    if scheme != "inproc":  # an in-process cluster's own address has no host and port
        try:
            host, port = get_address_host_port(scheduler)
        except ValueError as exc:  # no port, or a scheme dask does not speak (http://, a dashboard URL)
            raise InputError(f"scheduler {scheduler!r} is no dask scheduler address ({exc}): give 'local', "
                             "'threads' or an address such as tcp://host:8786") from exc
    if scheme in ("tcp", "tls", "ws", "wss"):
        try:
            socket.create_connection((host, port), timeout=1.0).close()
        except (ConnectionRefusedError, socket.gaierror) as exc:
            why = "connection refused" if isinstance(exc, ConnectionRefusedError) else "unknown host"
            raise InputError(f"cannot reach the dask scheduler at {scheduler} ({why}); {fix}") from exc
        except OSError:  # slow or silent: dask's connect timeout decides; say so rather than wait mutely
            wait = dask.config.get("distributed.comm.timeouts.connect")
            print(f"the dask scheduler at {scheduler} did not answer within 1 s; waiting up to {wait} "
                  "(distributed.comm.timeouts.connect) before giving up", file=sys.stderr)
    try:
        # not the session's default client: a Client that fails to connect stays registered as the default
        # otherwise, and every later dask computation in the process waits on it forever
        return Client(scheduler, set_as_default=False)
    except (OSError, ValueError) as exc:  # timed out
        raise InputError(f"cannot reach the dask scheduler at {scheduler} ({exc}); {fix}") from exc


def _running_of(keys: list, dask_worker=None) -> int:
    """How many of ``keys`` a worker is still running (cancelled ones included: they run on to their end)."""
    keys = set(keys)
    return sum(1 for k, ts in dask_worker.state.tasks.items()
               if k in keys and ts.state in ("executing", "long-running", "cancelled"))


def _wait_for_workers(client, jobs: list, timeout: float = 60.0) -> None:
    """Return once no worker of ``client``'s cluster still runs a task of ``jobs`` (at most ``timeout`` s): a
    connected cluster's workers run their tasks on after a failed computation and after the client has gone."""
    keys = [k for job in jobs for k in job.__dask_graph__()]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(client.run(_running_of, keys).values()):
        time.sleep(0.05)


def _row_jobs(rows: dict[int, da.Array]) -> dict[int, da.Array]:
    """The chunk rows ``rows`` optimised together, once, each with its own tasks only.

    Together: rows share tasks (a cube read chunk by chunk lends each row's neighbours its halo), and rows
    optimised one by one fuse those shared tasks differently, which a cluster given every row at once sees as
    one key with two different tasks (dask's "Detected different `run_spec`" warning, dask/dask#9888). Once:
    the keys are the (fused) tasks the workers run, which a failure waits for."""
    from dask.core import flatten
    from dask.optimization import cull

    out = {}
    for i, arr in zip(rows, dask.optimize(*rows.values()), strict=True):
        dsk, _ = cull(dict(arr.__dask_graph__()), list(flatten(arr.__dask_keys__())))
        out[i] = da.Array(dsk, arr.name, arr.chunks, dtype=arr.dtype)
    return out


def _rows_on_cluster(client, jobs: dict[int, da.Array]):
    """Compute every chunk row of ``jobs`` (row → optimised dask collection) on ``client``'s cluster at once,
    the first rows first (dask priorities), yielding each row as it completes.

    All rows are in flight together, so the workers go on to the next row's blocks while a row's last blocks
    finish, instead of idling at each row's end. On a failure the other rows are cancelled; on bad data
    (:class:`InputError`, after which the store is removed) this waits until no worker still runs one of their
    tasks (see :func:`_wait_for_workers`) before re-raising.
    """
    from distributed import as_completed

    futures = {client.compute(job, optimize_graph=False, priority=len(jobs) - n): i
               for n, (i, job) in enumerate(jobs.items())}
    try:
        for fut in as_completed(futures):
            fut.result()
            i = futures.pop(fut)  # a finished row's result (its "written" marks) leaves the worker's memory
            fut.release()
            yield i
    except BaseException as exc:
        client.cancel(list(futures))
        if isinstance(exc, InputError):  # bad data: the store is removed, so no task may still write into it
            _wait_for_workers(client, list(jobs.values()))
        raise


def _rows_threaded(jobs: dict[int, da.Array]):
    """Compute the chunk rows of ``jobs`` (row → optimised dask collection) one after another on the current
    (threaded) scheduler, yielding each row once all its tasks have run."""
    for i, job in jobs.items():
        dask.compute(job, optimize_graph=False)
        yield i


def _write_store(ds: xr.Dataset, blocks: _Blocks, model: OxideInverter, out: Path, key: str, chunk: int, client,
                 progress: bool, workers: int, on_bad_data: Callable[[Path], object]) -> xr.Dataset:
    """Compute the map's chunk rows into ``<out>.partial`` (resuming the rows it records; on a cluster all rows
    in flight at once, see :func:`_rows_on_cluster`), then rename it ``out``: the body of :func:`invert_to_zarr`
    after its checks.

    ``ds`` is the map's (lazy, never computed) layout the store is made from, ``blocks`` the cube it is computed
    from, one task a block (:func:`_writes`); ``key`` is the run's fingerprint, ``client`` a connected
    ``dask.distributed`` client or None (dask's threaded scheduler, set up by :func:`_cluster_client`);
    ``on_bad_data`` is given the ``.partial`` store when a chunk's data are bad, for the caller to remove once no
    task can write into it any more; the other
    arguments are :func:`invert_to_zarr`'s.
    """
    part = out.with_name(out.name + ".partial")
    log_path = part / "progress.json"
    lat_chunks = ds[model.targets[0]].chunksizes["lat"]  # by name: the map keeps the input's layout
    done: set[int] = set()
    if part.exists() and log_path.exists():
        rec = json.loads(log_path.read_text())
        if rec.get("chunks") == list(map(int, lat_chunks)) and rec.get("bands") == model.bands and \
                rec.get("fingerprint") == key:  # never resume another input's or model's chunks
            done = set(rec["done"])
        else:
            shutil.rmtree(part)
    if not done:
        if part.exists():
            shutil.rmtree(part)
        # zarr chunks of ``chunk`` pixels: a merged last block (see _spatial_chunks) spans two of them and is
        # the only block writing them, so the write is safe although dask's and zarr's chunks differ there
        enc = {v: dict(e, chunks=tuple(min(chunk, ds.sizes[d]) for d in ds[v].dims))
               for v, e in map_encoding(ds).items()}
        ds.to_zarr(part, compute=False, mode="w", encoding=enc, safe_chunks=False)

    def save_log():
        tmp = log_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"chunks": list(map(int, lat_chunks)), "bands": model.bands,
                                   "fingerprint": key, "done": sorted(done)}))
        os.replace(tmp, log_path)

    todo = [i for i in range(len(lat_chunks)) if i not in done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(lat_chunks), initial=len(done), desc="oxide map (chunk rows)", disable=not progress)
    t0 = time.perf_counter()
    try:
        threads = 1 if workers > 1 else (os.cpu_count() or 1)
        with _torch_threads(threads):  # dask's scheduler: set by _cluster_client
            writes = _writes(blocks, part)
            rows = writes.numblocks[0]
            # the caller's chunk row i: the network's row counted from the other end when lat is flipped
            jobs = _row_jobs({i: writes.blocks[rows - 1 - i if "lat" in blocks.flips else i] for i in todo})
            # closed on the way out, whatever leaves the loop: a cluster's rows still in flight are cancelled
            with contextlib.closing(_rows_on_cluster(client, jobs) if client is not None
                                    else _rows_threaded(jobs)) as finished:
                for i in finished:
                    done.add(i)
                    save_log()
                    bar.update(1)
    except InputError:
        # bad data (negative, inf, percent in a chunk): a resume would fail the same way, so nothing is kept;
        # the caller removes the store once the scheduler is closed (a sibling task may still be running;
        # _rows_on_cluster has waited for a cluster's workers)
        on_bad_data(part)
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - t0
    log_path.unlink()
    replace_path(part, out)  # the old store is set aside until the new one is in place
    res = xr.open_zarr(out)
    res.attrs["seconds"] = elapsed
    return res


#: Pixels per degree of ``workbench invert map``'s synthetic Moon when ``--ppd`` is not given.
SYNTHETIC_MAP_PPD = 4

#: Instruments with committed pre-trained weights, tried in this order when a cube names none.
COMMITTED_INSTRUMENTS = ("clementine_uvvis", "kaguya_mi")


def open_reflectance(path: str | Path, variable: str | None = None, bands: list[str] | None = None,
                     crs: str | None = None, ppd: int | None = None) -> xr.DataArray:
    """The ``(band, lat, lon)`` reflectance variable of a zarr store (``variable``, else the one with a
    ``band`` dim; the store's ``instrument`` attribute is copied onto it when the variable has none), or of a
    multiband lunar GeoTIFF (:func:`workbench.rasters.open_geotiff`; ``bands`` names its bands in order when
    the file does not, ``crs`` replaces a missing or mislabelled CRS). A GeoTIFF on a projected grid (polar
    stereographic, equirectangular in metres), or a zarr cube on one (``(band, y, x)`` with a ``crs`` attribute or
    a CF ``grid_mapping``), is warped onto latitude/longitude at ``ppd`` pixels per degree (default its own
    resolution; :func:`workbench.rasters.warp_to_latlon`: bilinear, or averaged onto a grid at least twice as
    coarse); ``ppd`` is refused for a cube already on latitude/longitude, which keeps its grid."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input {path} does not exist; give a zarr store with a (band, lat, lon) reflectance "
                         "variable (e.g. observe(make_moon(), 'kaguya_mi').to_zarr(PATH)) or a multiband GeoTIFF")
    from ..rasters import RASTER_SUFFIXES, dataset_to_latlon

    if path.suffix.lower() in RASTER_SUFFIXES:
        return _geotiff_reflectance(path, variable, bands, crs, ppd)
    if bands is not None or crs is not None:
        raise InputError(f"--bands/--crs describe a GeoTIFF's bands and CRS; {path.name} is read as zarr, whose "
                         "cube carries its own band coordinate (drop --bands/--crs, or give a .tif)")
    try:
        ds = xr.open_zarr(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one message naming the file
        raise InputError(f"cannot read {path} as zarr ({type(exc).__name__}: {exc}); give a zarr store "
                         "written by xarray's to_zarr") from exc
    cubes = [str(k) for k, v in ds.data_vars.items() if "band" in v.dims]
    if variable is not None and variable not in ds.data_vars:
        raise InputError(f"{path} has no variable {variable!r}; its variables: {list(map(str, ds.data_vars))}")
    if variable is None:
        if len(cubes) != 1:
            raise InputError(f"{path} has {len(cubes)} variables with a 'band' dim ({cubes or 'none'}; all "
                             f"variables: {list(map(str, ds.data_vars))}); name the reflectance with --variable")
        variable = cubes[0]
    if ppd is not None and not {"y", "x"} <= set(ds[variable].dims):
        raise _ppd_refused(f"{path.name} is a zarr cube on latitude/longitude and keeps its own grid")
    refl = dataset_to_latlon(ds, ppd, names=[variable])[variable]  # a projected (band, y, x) cube: warped
    if "instrument" not in refl.attrs and "instrument" in ds.attrs:
        refl = refl.assign_attrs(instrument=ds.attrs["instrument"])
    return refl


def _ppd_refused(why: str) -> InputError:
    """The one error for ``--ppd`` given with an input that keeps its own grid (``why``)."""
    return InputError(f"--ppd sets the grid of the synthetic Moon or of a projected cube warped to "
                      f"latitude/longitude; {why} (drop --ppd)")


def _geotiff_reflectance(path: Path, variable: str | None, bands: list[str] | None,
                         crs: str | None, ppd: int | None = None) -> xr.DataArray:
    from ..rasters import open_geotiff, warp_to_latlon

    if variable is not None:
        raise InputError(f"--variable names a variable of a zarr store; {path.name} is a GeoTIFF whose bands "
                         "are the cube (name them with --bands if the file does not)")
    refl = open_geotiff(path, bands=bands, crs=crs)
    if "band" not in refl.dims:
        raise InputError(f"{path.name} has one band: a map, not a reflectance cube; 'invert map' needs a "
                         "multiband GeoTIFF, one band per wavelength the weights were trained on")
    if refl.dims == ("band", "y", "x"):
        return warp_to_latlon(refl, ppd)
    if ppd is not None:
        raise _ppd_refused(f"{path.name} is already in latitude/longitude and keeps its grid")
    return refl


def _band_names(refl: xr.DataArray) -> list[str]:
    """The cube's band names, sorted (order-free comparison with a model's bands)."""
    return sorted(str(b) for b in refl["band"].values) if "band" in refl.coords else []


def weights_for(refl: xr.DataArray) -> OxideInverter:
    """Committed weights for a cube: those of its ``instrument`` attribute, else the first committed
    instrument whose band names are the cube's. One clear error when neither applies."""
    from .model import committed_weights, load_pretrained

    names = _band_names(refl)
    inst = refl.attrs.get("instrument")
    if inst:
        if not committed_weights(str(inst)).exists():
            raise InputError(f"no committed weights for instrument {inst!r} (committed: "
                             f"{', '.join(COMMITTED_INSTRUMENTS)}); pass --weights PATH.pt trained for its bands")
        return load_pretrained(str(inst))
    tried = {}
    for cand in COMMITTED_INSTRUMENTS:
        if committed_weights(cand).exists():
            model = load_pretrained(cand)
            if sorted(model.bands) == names:
                return model
            tried[cand] = model.bands
    raise InputError(f"the cube's bands {names} match no committed weights ({tried}) and it has no "
                     "'instrument' attribute; pass --weights PATH.pt trained for these bands")


def invert_global_cli(args) -> None:
    """Implementation of ``workbench invert map``."""
    from .model import load_pretrained

    if args.input:
        refl = open_reflectance(args.input, getattr(args, "variable", None), getattr(args, "bands", None),
                                getattr(args, "crs", None), getattr(args, "ppd", None))
        if "warped_from" in refl.attrs:
            print(f"note: {Path(args.input).name} is on a projected grid ({refl.attrs['warped_from']}); warped "
                  f"onto latitude/longitude at {refl.attrs['ppd']} px/deg "
                  f"({refl.sizes['lat']} x {refl.sizes['lon']} pixels, {refl.attrs['resampling']}) before inverting")
        model = OxideInverter.load(args.weights) if args.weights else weights_for(refl)
        if _band_names(refl) != sorted(model.bands):
            which = args.weights or f"committed for instrument {refl.attrs.get('instrument')!r}"
            raise InputError(f"the weights ({which}) expect bands {model.bands}, {args.input} has "
                             f"{_band_names(refl)}; pass --weights trained for these bands")
    else:
        if getattr(args, "bands", None) is not None or getattr(args, "crs", None) is not None:
            raise InputError("--bands/--crs describe a GeoTIFF given with --input; without --input the map is of "
                             "the synthetic Moon (drop them, or add --input REFL.tif)")
        from ..synth import make_moon, observe
        from .experiment import model_instrument

        model = OxideInverter.load(args.weights) if args.weights else load_pretrained("clementine_uvvis")
        inst = model_instrument(model)  # the instrument with the weights' bands (InputError when none has them)
        # computed here: the synthetic Moon is in memory anyway, and an in-memory cube is sent to the
        # cluster once instead of with every chunk row's graph
        ppd = SYNTHETIC_MAP_PPD if getattr(args, "ppd", None) is None else args.ppd
        refl = observe(make_moon(resolution_ppd=ppd), inst, snr=100, seed=1)["reflectance"].compute()
    res = invert_to_zarr(refl, model, args.out, chunk=args.chunk, scheduler=args.scheduler,
                         precision=getattr(args, "precision", None), overwrite=getattr(args, "overwrite", False))
    print(f"wrote {args.out}: {list(res.data_vars)} in {res.attrs['seconds']:.1f} s "
          f"({res.attrs.get('precision', 'float32')})")
