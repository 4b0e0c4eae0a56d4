"""The bad-input catalogue: every class of bad input, the error a user sees, and that it names the fix.

Each :class:`Case` below is one bad input. The test runs it, checks the exception type (always a
:class:`~workbench.errors.WorkbenchError`; CLI cases check exit status 2 and no traceback), checks that
the message names the problem (``match``), and checks that the exact message is the one documented in
``docs/robustness.md``. Regenerate that table after changing a message::

    .venv/bin/python tests/test_robustness.py --write-docs
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so that `python tests/test_robustness.py --write-docs` works
    sys.path.insert(0, str(REPO))

import workbench as wb  # noqa: E402
from workbench import catalog, validate  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402

DOC = REPO / "docs" / "robustness.md"
CLEMENTINE_NM = [415.0, 750.0, 900.0, 950.0, 1000.0]
STATION_COLUMNS = ["R415", "R750", "R900", "R950", "R1000"]


# ------------------------------------------------------------------------------------------ helpers
class CliError(Exception):
    """What a user sees from the CLI: exit status and stderr."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(stderr.strip())
        self.code = code
        self.stderr = stderr


def cli(argv: list[str]) -> None:
    """Run ``workbench ARGV`` in-process; raise :class:`CliError` with its stderr unless it exits 0."""
    from workbench.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    if code != 0:
        raise CliError(code, err.getvalue())


@contextlib.contextmanager
def env(**kv: str | None) -> Iterator[None]:
    """Temporarily set (or, with None, unset) environment variables; the manifest cache is cleared."""
    old = {k: os.environ.get(k) for k in kv}
    try:
        for k, v in kv.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        catalog._manifests.cache_clear()
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        catalog._manifests.cache_clear()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (an ephemeral port); yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


PAYLOAD = b"lat,lon,value\n" + b"".join(f"{i % 90},{i % 180},{i}\n".encode() for i in range(200))


def manifest_dict(dataset_id: str = "robust_table", data: bytes = PAYLOAD, sources: list | None = None) -> dict:
    """A valid table manifest for ``data`` (a small CSV)."""
    return {
        "id": dataset_id, "title": "robustness test table", "description": "a test table", "kind": "table",
        "provider": "tests", "citation": "none", "licence": "CC0", "crs": "IAU_2015:30100", "reader": "csv",
        "variables": {"value": {"units": "1"}},
        "files": [{"name": f"{dataset_id}.csv", "sha256": sha256(data), "size": len(data),
                   "sources": sources or [{"mirror": f"{dataset_id}.csv"}]}],
    }


def write_manifest(folder: Path, d: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{d['id']}.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def catalog_env(tmp: Path, mirror: Path | None = None) -> contextlib.AbstractContextManager:
    return env(WORKBENCH_MANIFESTS=str(tmp / "manifests"), WORKBENCH_DATA_DIR=str(tmp / "cache"),
               WORKBENCH_DATA_MIRROR=str(mirror) if mirror else None, NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost")


def cube(wavelengths=CLEMENTINE_NM, value: float = 0.12, shape=(4, 5), dims=("lat", "lon")) -> xr.DataArray:
    rng = np.random.default_rng(0)
    data = value + 0.01 * rng.random((len(wavelengths), *shape))
    coords = {"band": [f"R{w:g}" for w in wavelengths], "wavelength": ("band", list(map(float, wavelengths)))}
    if dims == ("lat", "lon"):
        coords |= {"lat": np.linspace(10, 5, shape[0]), "lon": np.linspace(20, 25, shape[1])}
    return xr.DataArray(data, dims=("band", *dims), coords=coords, attrs={"units": "1", "crs": "IAU_2015:30100"})


def with_value(da: xr.DataArray, value: float) -> xr.DataArray:
    out = da.copy()
    out[1, 1, 2] = value
    return out


def station_csv(tmp: Path, df: pd.DataFrame) -> pd.DataFrame:
    p = tmp / "stations.csv"
    df.to_csv(p, index=False)
    return pd.read_csv(p)


def stations(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(0.05 + 0.1 * rng.random((n, 5)), columns=STATION_COLUMNS)
    df.insert(0, "site", [f"S{i}" for i in range(n)])
    return df


def dem(n: int = 32, pixel: float = 100.0) -> xr.DataArray:
    rng = np.random.default_rng(2)
    z = np.cumsum(rng.normal(size=(n, n)), axis=0) * 5
    c = (np.arange(n) + 0.5) * pixel
    return xr.DataArray(z, dims=("y", "x"), coords={"y": c[::-1], "x": c}, attrs={"units": "m"})


def image(n: int = 32) -> xr.DataArray:
    """A positive image (radiance factor) on the grid of ``dem(n)``."""
    d = dem(n)
    return (0.1 + 0.01 * (d - d.min()) / float(d.max() - d.min())).assign_attrs(units="1")


def coarsen(da: xr.DataArray, k: int = 4) -> xr.DataArray:
    return da.coarsen(y=k, x=k).mean().assign_attrs(da.attrs)


# ------------------------------------------------------------------------------------ the catalogue
@dataclass(frozen=True)
class Case:
    cls: str  #: class of bad input (the table groups rows by it)
    what: str  #: this particular bad input
    run: Callable[[Path], Any]  #: triggers it, given a fresh temporary folder
    error: type[BaseException]  #: the exception a user gets
    match: str  #: regex the message must match: it names the problem (and usually the fix)
    code: int | None = None  #: CLI exit status, for CLI cases


def _bad_manifest(tmp: Path, mutate: Callable[[dict], None], text: str | None = None) -> None:
    d = manifest_dict()
    mutate(d)
    catalog.parse_manifest(text if text is not None else yaml.safe_dump(d), origin="robust_table.yaml")


def _fetch_with(tmp: Path, manifest: dict, mirror: Path | None = None) -> None:
    write_manifest(tmp / "manifests", manifest)
    with catalog_env(tmp, mirror):
        catalog.fetch(manifest["id"])


def _truncated_download(tmp: Path) -> None:
    (tmp / "www").mkdir()
    (tmp / "www" / "robust_table.csv").write_bytes(PAYLOAD[: len(PAYLOAD) // 2])  # connection dropped half-way
    with serve(tmp / "www") as url:
        _fetch_with(tmp, manifest_dict(sources=[{"url": f"{url}/robust_table.csv"}]))


def _tampered_download(tmp: Path) -> None:
    (tmp / "www").mkdir()
    bad = PAYLOAD.replace(b"1", b"7")  # same size, different bytes
    (tmp / "www" / "robust_table.csv").write_bytes(bad)
    with serve(tmp / "www") as url:
        _fetch_with(tmp, manifest_dict(sources=[{"url": f"{url}/robust_table.csv"}]))


def _truncated_mirror(tmp: Path) -> None:
    (tmp / "mirror").mkdir()
    (tmp / "mirror" / "robust_table.csv").write_bytes(PAYLOAD[:100])
    _fetch_with(tmp, manifest_dict(), mirror=tmp / "mirror")


def _wrong_format(tmp: Path, reader: str) -> None:
    """A hash-verified file that is not what the manifest's reader expects."""
    data = b"not a raster at all\n" * 10
    (tmp / "mirror").mkdir()
    (tmp / "mirror" / "wrong_format.bin").write_bytes(data)
    m = manifest_dict("wrong_format", data=data, sources=[{"mirror": "wrong_format.bin"}])
    m.update(kind="raster", reader=reader, variables={"elevation": {"units": "m"}})
    if reader == "image":
        m["grid"] = {"bounds": [-180.0, -90.0, 180.0, 90.0]}
    write_manifest(tmp / "manifests", m)
    with catalog_env(tmp, mirror=tmp / "mirror"):
        wb.open_dataset("wrong_format")


def _outside_manifest(tmp: Path, mutate: Callable[[dict], None]) -> None:
    d = manifest_dict("outside_set")
    mutate(d)
    (tmp / "manifests").mkdir(parents=True)
    (tmp / "manifests" / "outside_set.yaml").write_text(yaml.safe_dump(d))
    with catalog_env(tmp):
        catalog.get_manifest("lola_ldem_4ppd")


def _lucey(da: xr.DataArray):
    from workbench.inversion.baselines import classical_maps

    return classical_maps(da)


def _render(el: float) -> None:
    from workbench.synth.render import render

    render(dem(), sun_azimuth=135.0, sun_elevation=el)


def _set_crs(da: xr.DataArray, crs: str | None) -> xr.DataArray:
    out = da.copy()
    out.attrs = {k: v for k, v in da.attrs.items() if k != "crs"}
    if crs is not None:
        out.attrs["crs"] = crs
    return out


def _other_arch_checkpoint(tmp: Path) -> Path:
    import torch

    p = tmp / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), p)
    return p


class _RunsCode:
    """Pickles to a call of os.system: what a malicious checkpoint holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_checkpoint(tmp: Path) -> Path:
    import torch

    p = tmp / "evil.pt"
    torch.save({"enc1.0.weight": _RunsCode(tmp / "pwned")}, p)
    return p


def _truncated_checkpoint(tmp: Path) -> Path:
    p = _other_arch_checkpoint(tmp)
    p.write_bytes(p.read_bytes()[:200])
    return p


def _topo_load(path: Path) -> None:
    load_network = pytest.importorskip("workbench.topography.model").load_network
    load_network.cache_clear()
    try:
        load_network(str(path))
    finally:
        assert not (path.parent / "pwned").exists(), "a checkpoint ran code while loading"


def _prospectivity_load(path: Path) -> None:
    pytest.importorskip("workbench.analysis.prospectivity").ProspectivityModel.load(path)


def _reconstruct(image, coarse, el: float = 20.0) -> None:
    reconstruct = pytest.importorskip("workbench.topography.model").reconstruct
    reconstruct(image, coarse, sun_azimuth=90.0, sun_elevation=el, method="upsample")


def _reconstruct_with(method: str = "sfs", **options) -> None:
    reconstruct = pytest.importorskip("workbench.topography.model").reconstruct
    reconstruct(image(32), coarsen(dem(32)), sun_azimuth=90.0, sun_elevation=20.0, method=method, **options)


def _sfs(el: float = 20.0, nan: bool = False) -> None:
    sfs = pytest.importorskip("workbench.topography.sfs").sfs
    img = image(32).values.copy()
    if nan:
        img[10:14, 10:14] = np.nan
    sfs(img, dem(32).values, 100.0, 90.0, el, max_iter=2)


def _topo_scene(pixel_size: float) -> None:
    Scene = pytest.importorskip("workbench.widgets.topography").Scene
    Scene(dem(32, pixel=5.0), pixel_size)


def _nocrs_geotiff_cli(tmp: Path) -> None:
    pytest.importorskip("rioxarray")
    rng = np.random.default_rng(0)
    for name, n in (("img", 32), ("dem", 8)):
        deg = 10 - (np.arange(n) + 0.5) / (4 * n)  # degrees, but nothing in the file says so
        da = xr.DataArray(0.1 + rng.random((n, n)), dims=("y", "x"), coords={"y": deg, "x": deg[::-1] + 10})
        da.rio.to_raster(tmp / f"{name}.tif")
    cli(["topo", "reconstruct", "--image", str(tmp / "img.tif"), "--coarse-dem", str(tmp / "dem.tif"),
         "--sun-azimuth", "90", "--sun-elevation", "20", "--out", str(tmp / "out.npy"), "--method", "upsample"])


def _read_stations(tmp: Path, df: pd.DataFrame | None = None, text: str | None = None, train: bool = False):
    read_stations = pytest.importorskip("workbench.inversion.stations").read_stations
    p = tmp / "stations.csv"
    if text is not None:
        p.write_text(text)
    else:
        df.to_csv(p, index=False)
    return read_stations(p, require_targets=train)


def _inverter():
    """A small untrained residual-CNN oxide inverter for the Clementine bands."""
    model = pytest.importorskip("workbench.inversion.model")
    return model.OxideInverter([f"R{w:g}" for w in CLEMENTINE_NM], CLEMENTINE_NM, width=8, depth=1, stem=4,
                               members=2)


def _fine_tune_numpy_mask() -> None:
    refl = cube(shape=(6, 6))
    truth = xr.Dataset({t: (("lat", "lon"), np.full((6, 6), 5.0)) for t in _inverter().targets},
                       coords={"lat": refl["lat"], "lon": refl["lon"]})
    _inverter().fine_tune(refl, truth, np.ones((6, 6), bool), steps=1)


def _weighted_quantile(values, weights, q) -> None:
    from workbench.analysis.asymmetry import weighted_quantile

    weighted_quantile(values, weights, q)


def _topo_train_args(argv: list[str]) -> None:
    from workbench.topography import train

    train.check_args(train._parser().parse_args(argv))


def _soil_spectrum(fractions, npfe: float = 0.3) -> None:
    from workbench.synth.minerals import MINERALS
    from workbench.synth.spectra import reflectance_from_modes

    mode = xr.DataArray([fractions], dims=("p", "mineral"), coords={"mineral": list(MINERALS)}).chunk()
    reflectance_from_modes(mode, xr.DataArray([70.0], dims="p"), xr.DataArray([npfe], dims="p")).compute()


def _pure_glass_oxides() -> None:
    from workbench.synth.minerals import MINERALS, oxides_from_modes

    mode = xr.DataArray([float(m == "glass") for m in MINERALS], dims="mineral", coords={"mineral": list(MINERALS)})
    oxides_from_modes(mode, xr.DataArray(70.0))


def _mineral_oxides(mineral: str, mg: float) -> None:
    from workbench.synth.minerals import mineral_oxides

    mineral_oxides(mineral, mg)


def _observe_with(instrument, geometry: dict | None = None) -> None:
    from workbench.synth import observe
    from workbench.synth.spectra import WAVELENGTH_NM

    wl = np.asarray(WAVELENGTH_NM, dtype=float)
    refl = xr.DataArray(np.full((wl.size, 3, 4), 0.12), dims=("wavelength", "lat", "lon"),
                        coords={"wavelength": wl, "lat": [1.0, 0.0, -1.0], "lon": [0.0, 1.0, 2.0, 3.0]},
                        attrs={"units": "1"})
    observe(refl, instrument, geometry=geometry)


def _thin_map() -> None:
    model = pytest.importorskip("workbench.inversion.model")
    from workbench.inversion.global_map import invert_lazy

    wide = model.OxideInverter([f"R{w:g}" for w in CLEMENTINE_NM], CLEMENTINE_NM, width=8, depth=1, stem=4,
                               members=2, context=(5, 11))
    invert_lazy(cube(), wide)


def _projected_map() -> None:
    pytest.importorskip("workbench.inversion.model")
    from workbench.inversion.global_map import invert_lazy

    invert_lazy(cube().rename(lat="y", lon="x"), _inverter())


def _far_side_methods(methods: tuple[str, ...]) -> None:
    pytest.importorskip("workbench.inversion.model")
    from workbench.inversion.experiment import far_side_experiment

    far_side_experiment(ppd=1, methods=methods)


def _unreachable_scheduler_map(t: Path, scheduler: str = "tcp://127.0.0.1:1") -> None:
    cli(["invert", "map", "--ppd", "1", "--out", str(t / "m.zarr"), "--weights", str(_saved_inverter(t)),
         "--scheduler", scheduler])


def _map_with_scheduler(t: Path, scheduler: str) -> None:
    pytest.importorskip("workbench.inversion.model")
    from workbench.inversion.global_map import invert_to_zarr

    invert_to_zarr(cube(), _inverter(), t / "m.zarr", chunk=8, progress=False, scheduler=scheduler)


def _text_file(p: Path) -> Path:
    p.write_text("these are not weights\n")
    return p


def _saved_inverter(tmp: Path) -> Path:
    p = tmp / "clementine.pt"
    _inverter().save(p)
    return p


def _inverter_load(tmp: Path, bands=None, path: Path | None = None) -> None:
    model = pytest.importorskip("workbench.inversion.model")
    if path is None:
        path = tmp / "clementine.pt"
        _inverter().save(path)
    model.OxideInverter.load(path, bands=bands)


def _topo_cli(tmp: Path, image: str = "img.npy", dem_file: str = "dem.npy", el: str = "20", px: str = "5",
              extra: tuple[str, ...] | list[str] = ()) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp / "img.npy", 0.1 + 0.05 * rng.random((32, 32)))
    np.save(tmp / "dem.npy", 100 * rng.random((8, 8)))
    (tmp / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    (tmp / "bad.tif").write_text("not a tiff")
    cli(["topo", "reconstruct", "--image", str(tmp / image), "--coarse-dem", str(tmp / dem_file),
         "--sun-azimuth", "90", f"--sun-elevation={el}", "--out", str(tmp / "out.npy"), "--method", "upsample",
         f"--pixel-size={px}", *extra])


def _earth_geotiff_cli(tmp: Path) -> None:
    pytest.importorskip("rioxarray")
    rng = np.random.default_rng(0)
    for name, n, px in (("img", 32, 100.0), ("dem", 8, 400.0)):
        c = (np.arange(n) + 0.5) * px
        da = xr.DataArray(0.1 + rng.random((n, n)), dims=("y", "x"), coords={"y": c[::-1], "x": c})
        da.rio.write_crs("EPSG:3857").rio.to_raster(tmp / f"{name}.tif")
    cli(["topo", "reconstruct", "--image", str(tmp / "img.tif"), "--coarse-dem", str(tmp / "dem.tif"),
         "--sun-azimuth", "90", "--sun-elevation", "20", "--out", str(tmp / "out.npy"), "--method", "upsample"])


def _tif_map_cli(tmp: Path, crs: str | None = "IAU_2015:30100", names=tuple(f"R{w:g}" for w in CLEMENTINE_NM),
                 n_bands: int = 5, extra: tuple[str, ...] | list[str] = ()) -> None:
    """``workbench invert map --input`` a 5-band GeoTIFF written by rasterio alone, as another tool would."""
    import rasterio
    from rasterio.transform import from_origin

    p = tmp / "refl.tif"
    with rasterio.open(p, "w", driver="GTiff", width=8, height=6, count=n_bands, dtype="float32", crs=crs,
                       transform=from_origin(10, 20, 1, 1)) as dst:
        dst.write(np.full((n_bands, 6, 8), 0.12, "float32"))
        for i, name in enumerate(names[:n_bands], start=1):
            dst.set_band_description(i, name)
    cli(["invert", "map", "--input", str(p), "--out", str(tmp / "m.zarr"), *extra])


def _detached_pds3_image(tmp: Path, cut: int = 0) -> Path:
    from geotiff_helpers import write_pds3_ldem

    write_pds3_ldem(tmp, np.zeros((4, 8)), top_lat=10.0, west_lon=0.0, ppd=4)
    image = tmp / "LDEM.IMG"
    image.write_bytes(image.read_bytes()[:-cut or None])
    return image


def _earth_netcdf(tmp: Path) -> Path:
    """A (y, x) map in NetCDF whose CF grid_mapping is the Earth's (Antarctic polar stereographic)."""
    import rioxarray  # noqa: F401 - the .rio accessor

    c = (np.arange(6) - 2.5) * 1e3
    da = xr.DataArray(np.ones((6, 6), "float32"), dims=("y", "x"), coords={"y": c[::-1], "x": c}, name="h")
    da.rio.write_crs("EPSG:3031").to_dataset().to_netcdf(tmp / "earth.nc")
    return tmp / "earth.nc"


def _uneven_netcdf(tmp: Path) -> Path:
    """A south-polar (y, x) map in NetCDF whose x coordinates jump by 300 m half way (two maps stitched)."""
    c = (np.arange(8) - 3.5) * 1e3
    x = np.r_[c[:4], c[4:] + 300.0]
    da = xr.DataArray(np.ones((8, 8), "float32"), dims=("y", "x"), coords={"y": c[::-1], "x": x}, name="h",
                      attrs={"crs": "IAU_2015:30135"})
    da.to_dataset().to_netcdf(tmp / "uneven.nc")
    return tmp / "uneven.nc"


def _two_cube_zarr(tmp: Path) -> Path:
    c = cube()
    xr.Dataset({"reflectance": c, "reflectance_raw": c}).to_zarr(tmp / "two.zarr")
    return tmp / "two.zarr"


def _invert_cli(tmp: Path) -> None:
    stations().to_csv(tmp / "train.csv", index=False)
    cli(["invert", "stations", "--train", str(tmp / "train.csv"), "--predict", str(tmp / "train.csv"),
         "--out", str(tmp / "out.csv")])


CASES: list[Case] = [
    # -- bands ------------------------------------------------------------------------------------
    Case("wrong band count", "4 of the 5 Clementine bands given to a 5-band model",
         lambda t: validate.check_bands(cube(CLEMENTINE_NM[:4]), CLEMENTINE_NM), wb.errors.InputError,
         r"wrong band count.*expected 5 bands.*got 4"),
    Case("wrong band count", "Lucey 2000 on LRO WAC bands (no 750 or 950 nm band)",
         lambda t: _lucey(cube([321, 360, 415, 566, 604, 643, 689])), wb.errors.InputError,
         r"no band within 20.0 nm of 750.0 nm"),
    Case("wrong band order", "Clementine bands reversed",
         lambda t: validate.check_bands(cube(CLEMENTINE_NM[::-1]), CLEMENTINE_NM), wb.errors.InputError,
         r"wrong order.*sortby"),
    Case("wrong wavelengths", "Kaguya MI 1050 nm where the model expects 1000 nm",
         lambda t: validate.check_bands(cube([415, 750, 900, 950, 1050]), CLEMENTINE_NM), wb.errors.InputError,
         r"do not match.*1050 nm where 1000 nm is expected"),
    Case("wrong band count", "residual CNN (OxideInverter.predict) given 4 of its 5 bands",
         lambda t: _inverter().predict(cube(CLEMENTINE_NM[:4])), wb.errors.InputError,
         r"band mismatch.*missing \['R1000'\]"),
    Case("wrong band count", "residual CNN given LRO WAC bands",
         lambda t: _inverter().predict(cube([321, 360, 415, 566, 604, 643, 689])), wb.errors.InputError,
         r"band mismatch"),
    Case("wrong wavelengths", "residual CNN: band named R1000 but centred at 1050 nm",
         lambda t: _inverter().predict(cube([415, 750, 900, 950, 1050]).assign_coords(
             band=[f"R{w:g}" for w in CLEMENTINE_NM])), wb.errors.InputError, r"\[1050.0\] nm do not match"),
    Case("NaN/inf/negative reflectance", "residual CNN given an infinite pixel",
         lambda t: _inverter().predict(with_value(cube(), np.inf)), wb.errors.InputError, r"infinite value"),
    Case("NaN/inf/negative reflectance", "residual CNN given a float64 pixel of 1e40 (inf once cast to float32)",
         lambda t: _inverter().predict(with_value(cube().astype("float64"), 1e40)), wb.errors.InputError,
         r"1 value\(s\) above 1.5 \(max 1e\+40\)"),
    Case("NaN/inf/negative reflectance", "residual CNN given a negative pixel",
         lambda t: _inverter().predict(with_value(cube(), -0.01)), wb.errors.InputError, r"negative value"),
    Case("NaN/inf/negative reflectance", "photometric (Hapke) normalisation of reflectance in percent",
         lambda t: wb.photometry.normalise(np.array([5.0, 10.0]), 30.0, 0.0, 30.0, model="hapke"),
         wb.errors.InputError, r"not percent"),
    Case("NaN/inf/negative reflectance", "residual CNN given reflectance in percent (12 instead of 0.12)",
         lambda t: _inverter().predict(cube() * 100), wb.errors.InputError, r"above 1.5 .*Percent\? divide by 100"),
    Case("NaN/inf/negative reflectance", "residual CNN given radiance (W m-2 sr-1 um-1)",
         lambda t: _inverter().predict(cube().assign_attrs(units="W m-2 sr-1 um-1")), wb.errors.InputError,
         r"units 'W m-2 sr-1 um-1'; expected dimensionless reflectance"),
    Case("CLI usage", "residual CNN `predict(..., tile_rows=0)`",
         lambda t: _inverter().predict(cube(), tile_rows=0), wb.errors.InputError,
         r"tile_rows must be a whole number of rows >= 1"),
    Case("wrong band count", "residual CNN given a bare numpy array instead of a band cube",
         lambda t: _inverter().predict(cube().values), wb.errors.InputError,
         r"must be an xarray\.DataArray .*got numpy\.ndarray"),
    Case("wrong band count", "residual CNN given R415 twice (six bands)",
         lambda t: _inverter().predict(xr.concat([cube(), cube().isel(band=[0])], "band")), wb.errors.InputError,
         r"given more than once: \['R415'\]"),
    Case("CLI usage", "residual CNN fine-tuned with a numpy site mask",
         lambda t: _fine_tune_numpy_mask(), wb.errors.InputError, r"mask must be a boolean xarray\.DataArray"),
    Case("CLI usage", "area-weighted quantile with a negative weight",
         lambda t: _weighted_quantile([1.0, 2.0, 3.0], [1.0, -1.0, 1.0], 0.5),
         wb.errors.InputError, r"finite and non-negative"),
    Case("CLI usage", "`python -m workbench.topography.train --size 30` (not a multiple of 8)",
         lambda t: _topo_train_args(["--size", "30"]), wb.errors.InputError,
         r"--size 30: give a positive multiple of 8"),
    Case("CLI usage", "blended tiles with a negative overlap",
         lambda t: wb.topography.blend_tiles(lambda w: np.zeros((1, 1)), (10, 10), tile=4, overlap=-1),
         wb.errors.InputError, r"overlap must be a whole number of pixels from 0 to 3"),
    Case("wrong wavelengths", "band dim without a wavelength coordinate",
         lambda t: validate.check_bands(cube().drop_vars("wavelength"), CLEMENTINE_NM), wb.errors.InputError,
         r"no 'wavelength' coordinate"),
    Case("wrong band count", "a single 2-D image instead of a band cube",
         lambda t: validate.check_bands(cube().isel(band=0), CLEMENTINE_NM), wb.errors.InputError,
         r"needs a 'band' dimension"),
    Case("mismatched band lists", "cross-calibration of images with different bands",
         lambda t: wb.calibration.check_same_grid(cube(), cube([415, 750, 900, 950])), wb.errors.InputError,
         r"mismatched band lists"),
    # -- CRS ----------------------------------------------------------------------------------------
    Case("missing CRS", "a grid with no attrs['crs']",
         lambda t: validate.check_crs(_set_crs(cube(), None)), wb.errors.InputError, r"no CRS.*IAU_2015:30100"),
    Case("non-lunar CRS", "an Earth CRS (EPSG:4326)",
         lambda t: validate.check_crs(_set_crs(cube(), "EPSG:4326")), wb.errors.InputError,
         r"not a lunar CRS.*6378"),
    Case("non-lunar CRS", "a Mars CRS (IAU_2015:49900)",
         lambda t: validate.check_crs(_set_crs(cube(), "IAU_2015:49900")), wb.errors.InputError,
         r"not a lunar CRS.*3396"),
    Case("non-lunar CRS", "a CRS string PROJ does not know",
         lambda t: validate.check_crs(_set_crs(cube(), "moon-ish")), wb.errors.InputError, r"not understood by PROJ"),
    Case("non-lunar CRS", "polar stereographic data where a lat/lon grid is needed",
         lambda t: validate.check_crs(_set_crs(cube(), "IAU_2015:30135"), expected="IAU_2015:30100"),
         wb.errors.InputError, r"needs IAU_2015:30100"),
    Case("non-lunar CRS", "`workbench topo reconstruct` on GeoTIFFs in Web Mercator (EPSG:3857) (CLI)",
         _earth_geotiff_cli, CliError, r"'EPSG:3857' is not a lunar CRS", code=2),
    Case("non-lunar CRS", "a manifest declaring an Earth CRS",
         lambda t: _bad_manifest(t, lambda d: d.update(crs="EPSG:4326")), wb.errors.ManifestError, r"field 'crs'"),
    # -- reflectance --------------------------------------------------------------------------------
    Case("NaN/inf/negative reflectance", "a negative reflectance pixel",
         lambda t: validate.check_reflectance(with_value(cube(), -0.02)), wb.errors.InputError,
         r"1 negative value.*never clipped"),
    Case("NaN/inf/negative reflectance", "a negative pixel given to Lucey 2000",
         lambda t: _lucey(with_value(cube(), -0.02)), wb.errors.InputError, r"negative value"),
    Case("NaN/inf/negative reflectance", "an infinite reflectance pixel",
         lambda t: validate.check_reflectance(with_value(cube(), np.inf)), wb.errors.InputError,
         r"1 infinite value"),
    Case("NaN/inf/negative reflectance", "an all-NaN cube",
         lambda t: validate.check_reflectance(cube() * np.nan), wb.errors.InputError, r"entirely NaN"),
    Case("NaN/inf/negative reflectance", "a NaN pixel where complete data is required",
         lambda t: validate.check_reflectance(with_value(cube(), np.nan), allow_nan=False), wb.errors.InputError,
         r"1 NaN value"),
    Case("NaN/inf/negative reflectance", "radiance (W m-2 sr-1 um-1) instead of reflectance",
         lambda t: validate.check_reflectance(cube().assign_attrs(units="W m-2 sr-1 um-1")), wb.errors.InputError,
         r"units 'W m-2 sr-1 um-1'.*reflectance"),
    Case("NaN/inf/negative reflectance", "text values in a reflectance array",
         lambda t: validate.check_reflectance(np.array(["0.1", "bright"], dtype=object)), wb.errors.InputError,
         r"must be numeric"),
    # -- lat/lon ------------------------------------------------------------------------------------
    Case("lat/lon out of range", "latitude 95°",
         lambda t: validate.check_latlon(95.0, 10.0), wb.errors.InputError, r"latitude out of range.*95"),
    Case("lat/lon out of range", "longitude 400°",
         lambda t: validate.check_latlon(10.0, 400.0), wb.errors.InputError, r"longitude out of range.*400"),
    Case("lat/lon out of range", "latitude and longitude swapped (lat 120, lon 45)",
         lambda t: wb.geo.check_latlon([120.0], [45.0]), wb.errors.InputError, r"swap latitude and longitude"),
    # -- catalogue ----------------------------------------------------------------------------------
    Case("unknown dataset id", "a typo in the id",
         lambda t: wb.open_dataset("lola_ldem_4pd"), wb.errors.DatasetNotFoundError,
         r"unknown dataset id 'lola_ldem_4pd'.*Did you mean: lola_ldem_4ppd"),
    Case("unknown dataset id", "an id nothing resembles",
         lambda t: wb.open_table("zzzz"), wb.errors.DatasetNotFoundError, r"workbench data list"),
    Case("unknown dataset id", "`workbench data fetch` with a typo (CLI)",
         lambda t: cli(["data", "fetch", "lroc_wac_globl"]), CliError, r"^error: unknown dataset id", code=2),
    Case("unknown dataset id", "a table id opened as a raster",
         lambda t: wb.open_table("lola_ldem_4ppd"), wb.errors.DatasetNotFoundError, r"open it with"),
    Case("truncated or corrupted download", "HTTP download cut off half-way",
         _truncated_download, wb.errors.ChecksumError, r"no source gave a file with the expected sha256"),
    Case("truncated or corrupted download", "WORKBENCH_DATA_MIRROR names a folder that does not exist",
         lambda t: _fetch_with(t, manifest_dict(), mirror=t / "no_such_folder"), wb.errors.DataUnavailableError,
         r"WORKBENCH_DATA_MIRROR names .*no_such_folder, which does not exist"),
    Case("truncated or corrupted download", "truncated copy in the mirror",
         _truncated_mirror, wb.errors.ChecksumError, r"is present but has sha256.*replace it with a good copy"),
    Case("sha256 mismatch", "downloaded file of the right size with different bytes",
         _tampered_download, wb.errors.ChecksumError, r"does not match the manifest.*moved aside"),
    Case("truncated or corrupted download", "a verified file that is not a GeoTIFF (manifest reader 'geotiff')",
         lambda t: _wrong_format(t, "geotiff"), wb.errors.InputError, r"cannot be read.*fix the manifest's 'reader'"),
    Case("truncated or corrupted download", "a verified file that is not an image (manifest reader 'image')",
         lambda t: _wrong_format(t, "image"), wb.errors.InputError, r"cannot identify image file"),
    Case("sha256 mismatch", "`workbench data hash` on a missing file (CLI)",
         lambda t: cli(["data", "hash", str(t / "nope.tif")]), CliError, r"no such file", code=2),
    # -- manifests ----------------------------------------------------------------------------------
    Case("manifest: missing field", "no 'licence'",
         lambda t: _bad_manifest(t, lambda d: d.pop("licence")), wb.errors.ManifestError,
         r"field 'licence': Field required"),
    Case("manifest: extra field", "unknown field 'licensee'",
         lambda t: _bad_manifest(t, lambda d: d.update(licensee="x")), wb.errors.ManifestError,
         r"field 'licensee': Extra inputs are not permitted"),
    Case("manifest: mistyped field", "size as text",
         lambda t: _bad_manifest(t, lambda d: d["files"][0].update(size="big")), wb.errors.ManifestError,
         r"field 'files.0.size'"),
    Case("manifest: mistyped field", "sha256 not 64 hex digits",
         lambda t: _bad_manifest(t, lambda d: d["files"][0].update(sha256="abc")), wb.errors.ManifestError,
         r"field 'files.0.sha256'"),
    Case("manifest: mistyped field", "unknown kind",
         lambda t: _bad_manifest(t, lambda d: d.update(kind="movie")), wb.errors.ManifestError, r"field 'kind'"),
    Case("manifest: mistyped field", "not YAML",
         lambda t: _bad_manifest(t, lambda d: None, text="id: [unclosed"), wb.errors.ManifestError,
         r"not valid YAML"),
    Case("manifest: mistyped field", "a YAML list instead of a mapping",
         lambda t: _bad_manifest(t, lambda d: None, text="- a\n- b\n"), wb.errors.ManifestError,
         r"must be a YAML mapping, got list"),
    Case("manifest: unsafe source", "a source path escaping its folder (../)",
         lambda t: _bad_manifest(t, lambda d: d["files"][0].update(sources=[{"repo": "../../etc/passwd"}])),
         wb.errors.ManifestError, r"stay inside their folder"),
    Case("manifest: unsafe source", "a file:// URL",
         lambda t: _bad_manifest(t, lambda d: d["files"][0].update(sources=[{"url": "file:///etc/passwd"}])),
         wb.errors.ManifestError, r"url must be http\(s\)"),
    Case("manifest: unsafe source", "a python object tag (!!python/object)",
         lambda t: _bad_manifest(t, lambda d: None, text="id: !!python/object/apply:os.system ['true']\n"),
         wb.errors.ManifestError, r"not valid YAML"),
    Case("manifest: from outside the repo", "WORKBENCH_MANIFESTS file missing 'files'",
         lambda t: _outside_manifest(t, lambda d: d.pop("files")), wb.errors.ManifestError,
         r"outside_set.yaml: invalid manifest.*needs at least one entry in 'files'"),
    Case("manifest: from outside the repo", "WORKBENCH_MANIFESTS file whose id differs from its name",
         lambda t: _outside_manifest(t, lambda d: d.update(id="other_name")), wb.errors.ManifestError,
         r"field 'id' is 'other_name' but the file is named 'outside_set'"),
    # -- checkpoints --------------------------------------------------------------------------------
    Case("checkpoint mismatch", "checkpoint from another architecture",
         lambda t: validate.check_checkpoint({"architecture": {"name": "rescnn", "blocks": 6, "channels": 64},
                                              "wavelengths": CLEMENTINE_NM},
                                             architecture={"name": "rescnn", "blocks": 4, "channels": 64}),
         wb.errors.CheckpointError, r"another architecture \(blocks: checkpoint 6 vs model 4\)"),
    Case("checkpoint mismatch", "checkpoint for another band set",
         lambda t: validate.check_checkpoint({"architecture": {}, "wavelengths": CLEMENTINE_NM},
                                             wavelengths=[321, 360, 415, 566, 604, 643, 689]),
         wb.errors.CheckpointError, r"trained on bands 415, 750, 900, 950, 1000 nm but the data has 321"),
    Case("checkpoint mismatch", "residual CNN checkpoint for Clementine loaded for LRO WAC bands",
         lambda t: _inverter_load(t, bands=["R321", "R360", "R415", "R566", "R604", "R643", "R689"]),
         wb.errors.CheckpointError, r"was trained on bands \['R415'.*not \['R321'"),
    Case("checkpoint mismatch", "a plain state dict of another network given to OxideInverter.load",
         lambda t: _inverter_load(t, path=_other_arch_checkpoint(t)), wb.errors.CheckpointError,
         r"holds architecture"),
    Case("checkpoint: unsafe or corrupt", "a text file given as --weights to OxideInverter.load",
         lambda t: _inverter_load(t, path=_text_file(t / "weights.pt")),
         wb.errors.CheckpointError, r"is not a torch weights file, or it is truncated or corrupted"),
    Case("checkpoint mismatch", "topography weights from another network (load_network)",
         lambda t: _topo_load(_other_arch_checkpoint(t)), wb.errors.CheckpointError,
         r"does not fit the TopoUNet architecture"),
    Case("checkpoint: unsafe or corrupt", "a checkpoint holding a pickled os.system call (topography)",
         lambda t: _topo_load(_malicious_checkpoint(t)), wb.errors.CheckpointError,
         r"not a plain weights file.*posix.system.*refused"),
    Case("checkpoint: unsafe or corrupt", "a truncated .pt file (topography)",
         lambda t: _topo_load(_truncated_checkpoint(t)), wb.errors.CheckpointError,
         r"truncated or corrupted \(PytorchStreamReader failed"),
    Case("checkpoint: unsafe or corrupt", "a pickled os.system call given to ProspectivityModel.load",
         lambda t: _prospectivity_load(_malicious_checkpoint(t)), wb.errors.CheckpointError,
         r"not a plain weights file"),
    Case("checkpoint mismatch", "a topography checkpoint given to ProspectivityModel.load",
         lambda t: _prospectivity_load(_other_arch_checkpoint(t)), wb.errors.CheckpointError,
         r"not a prospectivity checkpoint"),
    # -- image vs coarse DEM ------------------------------------------------------------------------
    Case("image and coarse DEM do not match", "coarse DEM of another aspect ratio",
         lambda t: validate.check_matching_grids(dem(32), dem(16).isel(x=slice(0, 10))), wb.errors.InputError,
         r"same aspect ratio"),
    Case("image and coarse DEM do not match", "coarse DEM covering other ground",
         lambda t: validate.check_matching_grids(dem(32), coarsen(dem(32)).assign_coords(x=lambda d: d.x + 5000)),
         wb.errors.InputError, r"cover different ground"),
    Case("image and coarse DEM do not match", "DEM finer than the image (arguments swapped)",
         lambda t: validate.check_matching_grids(coarsen(dem(32)), dem(32)), wb.errors.InputError,
         r"more pixels than the image.*swap"),
    Case("image and coarse DEM do not match", "topography: DEM of another aspect ratio (reconstruct)",
         lambda t: _reconstruct(image(32), coarsen(dem(32)).isel(x=slice(0, 5))), wb.errors.InputError,
         r"do not cover the same extent"),
    Case("image and coarse DEM do not match", "topography: DEM shifted by 5 km (reconstruct)",
         lambda t: _reconstruct(image(32), coarsen(dem(32)).assign_coords(x=lambda d: d.x + 5000)),
         wb.errors.InputError, r"extent.*differ"),
    Case("image and coarse DEM do not match", "topography: NaN hole in the coarse DEM (reconstruct)",
         lambda t: _reconstruct(image(32), coarsen(dem(32)).where(lambda d: d.x > 500)), wb.errors.InputError,
         r"coarse DEM contains NaN"),
    Case("image and coarse DEM do not match", "topography: image on a (lat, lon) grid (reconstruct)",
         lambda t: _reconstruct(image(32).rename(y="lat", x="lon"), coarsen(dem(32))), wb.errors.InputError,
         r"not \(y, x\).*Reproject"),
    Case("image and coarse DEM do not match", "topography: image with non-square pixels (reconstruct)",
         lambda t: _reconstruct(image(32).assign_coords(x=lambda d: d.x * 2),
                                coarsen(dem(32)).assign_coords(x=lambda d: d.x * 2)), wb.errors.InputError,
         r"pixels are not square"),
    Case("image and coarse DEM do not match", "topography: image and DEM swapped (reconstruct)",
         lambda t: _reconstruct(coarsen(image(32)), dem(32) - float(dem(32).min()) + 1.0), wb.errors.InputError,
         r"more pixels than the image.*swapped"),
    Case("image and coarse DEM do not match", "topography: image in a geographic (lon/lat) CRS (reconstruct)",
         lambda t: _reconstruct(image(32).assign_attrs(crs="IAU_2015:30100"), coarsen(dem(32))), wb.errors.InputError,
         r"geographic CRS.*degrees, not metres.*[Rr]eproject"),
    Case("image and coarse DEM do not match", "topography: image with attrs pixel_size (5, 10) m (reconstruct)",
         lambda t: _reconstruct(image(32).drop_vars(["y", "x"]).assign_attrs(pixel_size=(5.0, 10.0)),
                                coarsen(dem(32)).values), wb.errors.InputError,
         r"pixels are not square \(5 m along y, 10 m along x\)"),
    Case("image and coarse DEM do not match", "notebook 03 `Scene` given pixel_size 10 m on coordinates 5 m apart",
         lambda t: _topo_scene(10.0), wb.errors.InputError, r"pixel_size 10 m disagrees with .* 5 m apart"),
    Case("image and coarse DEM do not match", "topography `reconstruct(image on 100 m coordinates, pixel_size=10)`",
         lambda t: _reconstruct_with("upsample", pixel_size=10.0), wb.errors.InputError,
         r"pixel_size 10 m contradicts the image's own 100 m pixels.*leave pixel_size out"),
    Case("NaN/inf/negative reflectance", "topography shape-from-shading (`sfs`) of an image with 16 NaN pixels",
         lambda t: _sfs(nan=True), wb.errors.InputError, r"16 NaN/inf pixels.*fill or crop them"),
    Case("CLI usage", "topography `reconstruct(..., method=\"sfs\", smoothness=-1)`",
         lambda t: _reconstruct_with(smoothness=-1.0), wb.errors.InputError,
         r"smoothness must be a finite number >= 0"),
    Case("CLI usage", "topography `reconstruct(..., smoothnes=0.1)` (a misspelled option)",
         lambda t: _reconstruct_with(smoothnes=0.1), wb.errors.InputError,
         r"unknown option 'smoothnes'; did you mean 'smoothness'"),
    Case("CLI usage", "topography `reconstruct(..., method=\"upsample\", max_iter=5)` (an SfS option)",
         lambda t: _reconstruct_with("upsample", max_iter=5), wb.errors.InputError,
         r"max_iter is an option of shape-from-shading.*method 'upsample' does not run"),
    Case("CLI usage", "topography `reconstruct(..., scale_method=\"backprojection\")`, refused before the network runs",
         lambda t: _reconstruct_with("network", scale_method="backprojection"), wb.errors.InputError,
         r"unknown scale recovery 'backprojection'"),
    Case("image and coarse DEM do not match", "a 3-D image",
         lambda t: validate.check_matching_grids(np.zeros((3, 8, 8)), np.zeros((2, 2))), wb.errors.InputError,
         r"must be a 2-D array"),
    Case("image and coarse DEM do not match", "cross-calibration images that do not overlap",
         lambda t: wb.calibration.check_same_grid(cube(), cube().assign_coords(lon=lambda d: d.lon + 100)),
         wb.errors.InputError, r"do not overlap"),
    Case("image and coarse DEM do not match", "cross-calibration images in different units (% vs I/F)",
         lambda t: wb.calibration.check_same_grid((cube() * 100).assign_attrs(units="%"), cube()),
         wb.errors.InputError, r"different units.*convert one first"),
    Case("image and coarse DEM do not match", "cross-calibration images in 0...360 and -180...180 longitudes",
         lambda t: wb.calibration.check_same_grid(cube().assign_coords(lon=lambda d: d.lon + 200),
                                                  cube().assign_coords(lon=lambda d: d.lon - 180)),
         wb.errors.InputError, r"0...360 and the other's -180...180"),
    Case("NaN/inf/negative reflectance", "destriping a difference image (mostly below zero)",
         lambda t: wb.calibration.destripe(cube() - 0.5), wb.errors.InputError, r"above zero.*difference"),
    # -- sun ----------------------------------------------------------------------------------------
    Case("sun elevation <= 0 or > 90", "sun elevation 0° (render)",
         lambda t: _render(0.0), wb.errors.InputError, r"sun elevation 0.0 deg is outside \(0, 90\]"),
    Case("sun elevation <= 0 or > 90", "sun elevation 0° (topography reconstruct)",
         lambda t: _reconstruct(image(32), coarsen(dem(32)), el=0.0), wb.errors.InputError, r"outside \(0, 90\]"),
    Case("sun elevation <= 0 or > 90", "sun elevation 90.5° (topography reconstruct)",
         lambda t: _reconstruct(image(32), coarsen(dem(32)), el=90.5), wb.errors.InputError, r"90.5 deg"),
    Case("sun elevation <= 0 or > 90", "sun elevation -10° (topography shape-from-shading `sfs`)",
         lambda t: _sfs(el=-10.0), wb.errors.InputError, r"sun elevation -10.0 deg is outside \(0, 90\]"),
    Case("sun elevation <= 0 or > 90", "sun elevation -5°",
         lambda t: validate.check_sun(90.0, -5.0), wb.errors.InputError, r"outside \(0, 90\]"),
    Case("sun elevation <= 0 or > 90", "sun elevation 95° (render)",
         lambda t: _render(95.0), wb.errors.InputError, r"sun elevation 95.0 deg"),
    Case("sun elevation <= 0 or > 90", "sun elevation NaN",
         lambda t: validate.check_sun(90.0, float("nan")), wb.errors.InputError, r"sun elevation nan"),
    Case("sun elevation <= 0 or > 90", "sun azimuth given as text",
         lambda t: validate.check_sun("north", 30.0), wb.errors.InputError, r"must be numbers of degrees"),
    Case("DEM units", "DEM heights in km",
         lambda t: wb.synth.render.render(dem().assign_attrs(units="km"), 90.0, 30.0), wb.errors.InputError,
         r"not metres"),
    Case("mineral modes", "soil spectra (reflectance_from_modes) with a negative mineral fraction",
         lambda t: _soil_spectrum([1.5, -0.3, 0, 0, -0.2, 0]), wb.errors.InputError,
         r"1 pixel\(s\) with a negative mineral fraction.*Nothing is clipped"),
    Case("mineral modes", "soil spectra with 3 wt% nanophase iron (beyond the optical tables)",
         lambda t: _soil_spectrum([0.5, 0.5, 0, 0, 0, 0], npfe=3.0), wb.errors.InputError,
         r"nanophase iron outside 0–2 wt%"),
    Case("mineral modes", "synthetic-Moon stoichiometry (oxides_from_modes) for a pixel that is 100 % glass",
         lambda t: _pure_glass_oxides(), wb.errors.InputError, r"1 pixel\(s\) are 100 % glass.*crystalline fraction"),
    Case("mineral modes", "Mg# given as a fraction (0.7 instead of 70)",
         lambda t: _mineral_oxides("olivine", 0.7), wb.errors.InputError, r"looks like a fraction.*multiply it by 100"),
    Case("mineral modes", "Mg# above 100",
         lambda t: _mineral_oxides("olivine", 120.0), wb.errors.InputError, r"outside 0–100"),
    # -- virtual instruments ------------------------------------------------------------------------
    Case("virtual instrument", "a band table with a FWHM of 0 nm",
         lambda t: _observe_with(pd.DataFrame({"name": ["R750"], "center_nm": [750.0], "fwhm_nm": [0.0]})),
         wb.errors.InputError, r"must be a positive number of nm"),
    Case("virtual instrument", "a band table naming one band twice",
         lambda t: _observe_with(pd.DataFrame({"name": ["R750", "R750"], "center_nm": [750.0, 950.0],
                                               "fwhm_nm": [30.0, 30.0]})),
         wb.errors.InputError, r"repeats band names \['R750'\]"),
    Case("virtual instrument", "an impossible geometry (i=10, e=0, g=80 deg)",
         lambda t: _observe_with("clementine_uvvis", geometry={"i": 10.0, "e": 0.0, "g": 80.0}),
         wb.errors.InputError, r"impossible geometry.*between \|i - e\| and i \+ e"),
    # -- station CSV --------------------------------------------------------------------------------
    Case("station CSV", "missing column R950",
         lambda t: validate.check_station_table(station_csv(t, stations().drop(columns="R950")), STATION_COLUMNS,
                                                origin="stations.csv"),
         wb.errors.InputError, r"missing column\(s\) 'R950'"),
    Case("station CSV", "lower-case column names",
         lambda t: validate.check_station_table(station_csv(t, stations().rename(columns=str.lower)),
                                                STATION_COLUMNS, origin="stations.csv"),
         wb.errors.InputError, r"missing column\(s\) 'R415', 'R750'"),
    Case("station CSV", "a non-numeric value in R750 (letter O for zero)",
         lambda t: validate.check_station_table(
             station_csv(t, stations().astype({"R750": object})
                         .assign(R750=lambda d: d.R750.where(d.index != 2, "0.O9"))),
             STATION_COLUMNS, origin="stations.csv"),
         wb.errors.InputError, r"column 'R750' has 1 non-numeric value\(s\), first '0.O9' in row 3"),
    Case("station CSV", "inversion read_stations: missing R950",
         lambda t: _read_stations(t, stations().drop(columns="R950")), wb.errors.InputError,
         r"missing band column\(s\) \['R950'\]"),
    Case("station CSV", "inversion read_stations: TRAIN without FeO_wt_pct/TiO2_wt_pct",
         lambda t: _read_stations(t, stations(), train=True), wb.errors.InputError, r"TRAIN needs measured FeO"),
    Case("station CSV", "inversion read_stations: text in R415",
         lambda t: _read_stations(t, stations().astype({"R415": object}).assign(R415="bright")), wb.errors.InputError,
         r"column 'R415' has 6 non-numeric value\(s\), first 'bright' in row 1"),
    Case("station CSV", "inversion read_stations: reflectance in percent",
         lambda t: _read_stations(t, stations().assign(R750=lambda d: d.R750 * 100)), wb.errors.InputError,
         r"above 1.5 .*Percent\? divide by 100"),
    Case("station CSV", "inversion read_stations: TRAIN with text in FeO_wt_pct",
         lambda t: _read_stations(t, stations().assign(FeO_wt_pct="abc", TiO2_wt_pct=1.0), train=True),
         wb.errors.InputError, r"column 'FeO_wt_pct' has 6 non-numeric value\(s\)"),
    Case("station CSV", "inversion read_stations: TRAIN with FeO_wt_pct = 150",
         lambda t: _read_stations(t, stations().assign(FeO_wt_pct=150.0, TiO2_wt_pct=1.0), train=True),
         wb.errors.InputError, r"outside 0–100 wt%, first FeO_wt_pct = 150 in row 1"),
    Case("station CSV", "inversion read_stations: lat_deg = 200",
         lambda t: _read_stations(t, stations().assign(lat_deg=200.0)), wb.errors.InputError,
         r"latitude out of range: found 200"),
    Case("station CSV", "inversion read_stations: first data row longer than the header",
         lambda t: _read_stations(t, text="R415,R750,R900,R950,R1000\n0.1,0.1,0.1,0.1,0.1,7,8\n"),
         wb.errors.InputError, r"first data row has more fields than the header"),
    Case("station CSV", "inversion read_stations: semicolon-separated file",
         lambda t: _read_stations(t, text="R415;R750;R900;R950;R1000\n0.1;0.1;0.1;0.1;0.1\n"),
         wb.errors.InputError, r"header looks semicolon-separated"),
    Case("station CSV", "inversion read_stations: R900 = 1e999 (infinite)",
         lambda t: _read_stations(t, stations().assign(R900=np.inf)), wb.errors.InputError, r"infinite value"),
    Case("station CSV", "inversion read_stations: negative R750",
         lambda t: _read_stations(t, stations().assign(R750=-0.1)), wb.errors.InputError, r"negative value"),
    Case("station CSV", "inversion read_stations: ragged rows (not a CSV table)",
         lambda t: _read_stations(t, text="R415,R750,R900,R950,R1000\n0.1\n0.1,0.1,0.1,0.1,0.1,0.1,0.1\n"),
         wb.errors.InputError, r"not a readable CSV"),
    Case("station CSV", "inversion read_stations: empty file",
         lambda t: _read_stations(t, text=""), wb.errors.InputError, r"the file is empty"),
    Case("station CSV", "inversion cross_validate by mission: a row with a blank site",
         lambda t: pytest.importorskip("workbench.inversion.stations").cross_validate(
             stations().assign(site=["A - 1", "A - 2", None, "B - 1", "C - 1", "C - 2"], FeO_wt_pct=5.0,
                               TiO2_wt_pct=1.0), by="mission"),
         wb.errors.InputError, r"1 row\(s\) have none \(first: row 3\); fill in their 'site' or use --cv station"),
    Case("station CSV", "a header-only CSV (no rows)",
         lambda t: validate.check_station_table(station_csv(t, stations().iloc[:0]), STATION_COLUMNS,
                                                origin="stations.csv"),
         wb.errors.InputError, r"no rows"),
    Case("image and coarse DEM do not match", "`workbench topo reconstruct` with a damaged .npy DEM (CLI)",
         lambda t: _topo_cli(t, dem_file="bad.npy"), CliError, r"is not a readable .npy array", code=2),
    Case("image and coarse DEM do not match", "`workbench topo reconstruct` with a text file named .tif (CLI)",
         lambda t: _topo_cli(t, image="bad.tif"), CliError, r"is not a readable GeoTIFF", code=2),
    Case("CLI usage", "`workbench topo reconstruct --method upsample --views 4` (CLI)",
         lambda t: _topo_cli(t, extra=["--views", "4"]), CliError, r"--views averages the network's views",
         code=2),
    Case("CLI usage", "`workbench topo reconstruct --method upsample --precision float32` (CLI)",
         lambda t: _topo_cli(t, extra=["--precision", "float32"]), CliError,
         r"--precision sets the network's arithmetic", code=2),
    Case("CLI usage", "`workbench export` a map with a time dim left (time, lat, lon) to a GeoTIFF",
         lambda t: wb.export.to_geotiff(cube().isel(band=0).expand_dims(time=[1, 2]), t / "c.tif"),
         wb.errors.InputError, r"dims \('time', 'lat', 'lon'\).*da\.isel\(time=0\)"),
    Case("wrong band count", "`workbench export` of a (band, lat, lon) cube without band names",
         lambda t: wb.export.to_geotiff(cube().drop_vars(["band", "wavelength"]), t / "c.tif"),
         wb.errors.InputError, r"'band' dim without band names.*assign_coords\(band="),
    Case("missing CRS", "`workbench invert map --input` a GeoTIFF labelled with the Earth's EPSG:4326 (CLI)",
         lambda t: _tif_map_cli(t, crs="EPSG:4326"), CliError,
         r"radius 6378.1 km, the Earth's, not the Moon's 1737.4 km.*--crs", code=2),
    Case("missing CRS", "`workbench invert map --input` a GeoTIFF with no CRS (CLI)",
         lambda t: _tif_map_cli(t, crs=None), CliError, r"has no CRS.*--crs.*IAU_2015:30100", code=2),
    Case("wrong band count", "`workbench invert map --input` a GeoTIFF whose bands have no names (CLI)",
         lambda t: _tif_map_cli(t, names=()), CliError,
         r"5 bands are not all named.*--bands.*R415,R750,R900,R950,R1000", code=2),
    Case("wrong band count", "`workbench invert map --input REFL.tif --bands` naming 2 of its 5 bands (CLI)",
         lambda t: _tif_map_cli(t, names=(), extra=["--bands", "R415,R750"]), CliError,
         r"has 5 band\(s\) but bands= \(--bands\) names 2", code=2),
    Case("wrong band count", "`workbench invert map --input` a one-band GeoTIFF (a map, not a cube) (CLI)",
         lambda t: _tif_map_cli(t, n_bands=1), CliError, r"one band: a map, not a reflectance cube", code=2),
    Case("CLI usage", "`workbench asymmetry --input LDEM.IMG`: a PDS3 image whose label is a separate file (CLI)",
         lambda t: cli(["asymmetry", "--input", str(_detached_pds3_image(t))]), CliError,
         r"LDEM.IMG is a PDS image whose label is a separate file; open the label LDEM.LBL instead", code=2),
    Case("corrupted download", "`workbench asymmetry --input LDEM.LBL`: LDEM.IMG lost 40 of its 64 bytes (CLI)",
         lambda t: cli(["asymmetry", "--input", str(_detached_pds3_image(t, cut=40).with_suffix(".LBL"))]),
         CliError, r"its image data \(LDEM.IMG\) are 24 bytes, fewer than the 64 .*truncated.*fetch it again", code=2),
    Case("CLI usage", "`workbench invert map --input REFL.zarr --variable reflectance --ppd 8`: a zarr cube keeps "
         "its own grid (CLI)",
         lambda t: cli(["invert", "map", "--input", str(_two_cube_zarr(t)), "--variable", "reflectance",
                        "--ppd", "8", "--out", str(t / "m.zarr")]), CliError,
         r"--ppd sets the grid of the synthetic Moon or of a projected cube.*two.zarr is a zarr cube on "
         r"latitude/longitude.*drop --ppd", code=2),
    Case("non-lunar CRS", "`workbench asymmetry --input MAP.nc`: a projected map whose CF grid_mapping is the Earth's "
         "(CLI)", lambda t: cli(["asymmetry", "--input", str(_earth_netcdf(t))]), CliError,
         r"h: its CRS \(.*\) is on a body of radius 6378.1 km, the Earth's, not the Moon's", code=2),
    Case("irregular grid", "`workbench asymmetry --input MAP.nc`: a projected map whose x coordinates are not "
         "evenly spaced (two maps stitched) (CLI)", lambda t: cli(["asymmetry", "--input", str(_uneven_netcdf(t))]),
         CliError, r"x coordinates are not evenly spaced \(steps from 1000 to 1300 m\)", code=2),
    Case("CLI usage", "`workbench export MAP --resampling nearest` without `--latlon` (CLI)",
         lambda t: cli(["export", str(_earth_netcdf(t)), "--resampling", "nearest", "--out", str(t / "x.tif")]),
         CliError, r"--resampling chooses how to warp with --latlon; add --latlon, or drop --resampling", code=2),
    Case("CLI usage", "`workbench invert map --input REFL.zarr --bands ...`: GeoTIFF options on zarr (CLI)",
         lambda t: cli(["invert", "map", "--input", str(_two_cube_zarr(t)), "--bands", "R415",
                        "--out", str(t / "m.zarr")]), CliError,
         r"--bands/--crs describe a GeoTIFF's bands and CRS; two.zarr is read as zarr", code=2),
    Case("missing CRS", "`workbench export` of a (y, x) map with no CRS",
         lambda t: wb.export.to_geotiff(cube(dims=("y", "x")).isel(band=0).drop_attrs(), t / "c.tif"),
         wb.errors.InputError, r"carries no CRS.*IAU_2015:30135"),
    Case("CLI usage", "`workbench export` of a folder that is not a zarr store (CLI)",
         lambda t: (t / "empty.zarr").mkdir() or cli(["export", str(t / "empty.zarr"), "--out", str(t / "o.tif")]),
         CliError, r"could not be read as a zarr store", code=2),
    Case("missing CRS", "`workbench topo reconstruct` on GeoTIFFs with no CRS (degree coordinates) (CLI)",
         _nocrs_geotiff_cli, CliError, r"has no CRS.*give --pixel-size", code=2),
    Case("CLI usage", "`workbench asymmetry --input` a (band, lat, lon) reflectance cube, not a map (CLI)",
         lambda t: cli(["asymmetry", "--input", str(_two_cube_zarr(t))]), CliError,
         r"no \(lat, lon\) variable.*\(band, lat, lon\) cube.*oxide map from 'workbench invert map'", code=2),
    Case("CLI usage", "`workbench asymmetry --input MAPS --lat-range -60 60` (CLI)",
         lambda t: cli(["asymmetry", "--input", str(_two_cube_zarr(t)), "--lat-range", "-60", "60"]), CliError,
         r"--lat-range applies to crater catalogues.*map file's coverage", code=2),
    Case("CLI usage", "`workbench asymmetry --dataset lola_ldem_4ppd --lat-range -60 60` (CLI)",
         lambda t: cli(["asymmetry", "--dataset", "lola_ldem_4ppd", "--lat-range", "-60", "60"]), CliError,
         r"--lat-range applies to crater catalogues", code=2),
    Case("CLI usage", "`workbench topo reconstruct --pixel-size=0` (CLI)",
         lambda t: _topo_cli(t, px="0"), CliError, r"--pixel-size must be a positive number of metres", code=2),
    Case("CLI usage", "`workbench demo --only` naming no notebook (CLI)",
         lambda t: cli(["demo", "--only", "no_such_notebook", "--out", str(t / "demo")]), CliError,
         r"no curated notebook name contains 'no_such_notebook'; the notebooks are: 00_tour", code=2),
    Case("CLI usage", "`workbench data hash` given a folder (CLI)",
         lambda t: cli(["data", "hash", str(t)]), CliError, r"is a folder; give the files inside it", code=2),
    Case("sun elevation <= 0 or > 90", "`workbench topo reconstruct --sun-elevation=-1` (CLI)",
         lambda t: _topo_cli(t, el="-1"), CliError, r"sun elevation -1.0 deg is outside", code=2),
    Case("CLI usage", "`workbench invert map --chunk 0` (CLI)",
         lambda t: cli(["invert", "map", "--ppd", "1", "--chunk", "0", "--out", str(t / "m.zarr"), "--weights",
                        str(_saved_inverter(t))]), CliError,
         r"chunk must be a whole number of pixels >= 8", code=2),
    Case("CLI usage", "`workbench invert map --scheduler tcp://127.0.0.1:1`: no dask scheduler there (CLI)",
         lambda t: _unreachable_scheduler_map(t), CliError,
         r"cannot reach the dask scheduler at tcp://127\.0\.0\.1:.*\(connection refused\).*or leave out "
         r"--scheduler", code=2),
    Case("CLI usage", "`workbench invert map --scheduler thread`: a typo, no address (CLI)",
         lambda t: _unreachable_scheduler_map(t, "thread"), CliError,
         r"scheduler 'thread' is no dask scheduler address.*give 'local', 'threads' or an address", code=2),
    Case("CLI usage", "chunked global map with an empty `scheduler` (neither local, threads nor an address)",
         lambda t: _map_with_scheduler(t, ""), wb.errors.InputError,
         r"scheduler must be 'local', 'threads' or a dask scheduler address such as tcp://host:8786"),
    Case("CLI usage", "chunked global map (`invert_lazy`) of a 4 x 5 pixel cube, thinner than the 6-pixel context",
         lambda t: _thin_map(), wb.errors.InputError,
         r"only 4 lat and 5 lon pixels.*model.predict\(refl\)"),
    Case("CLI usage", "global map of a projected (band, y, x) cube",
         lambda t: _projected_map(), wb.errors.InputError,
         r"needs a \(band, lat, lon\) cube.*warp it onto latitude/longitude first.*warp_to_latlon"),
    Case("CLI usage", "far-side experiment with a misspelled method name",
         lambda t: _far_side_methods(("lucey", "random-forest")), wb.errors.InputError,
         r"unknown method\(s\) \['lucey', 'random-forest'\].*choose from"),
    Case("CLI usage", "unknown inference precision (`WORKBENCH_PRECISION=fp8` or `precision=\"fp8\"`)",
         lambda t: wb.config.inference_precision("fp8"), wb.errors.InputError,
         r"unknown precision 'fp8': use one of auto, float32, bfloat16"),
    Case("station CSV", "`workbench invert stations` with a TRAIN lacking measured oxides (CLI)",
         _invert_cli, CliError, r"TRAIN needs measured FeO_wt_pct", code=2),
    Case("CLI usage", "`workbench invert stations --out` inside a path that is a file (CLI)",
         lambda t: (t / "afile").write_text("x") and cli(
             ["invert", "stations", "--train", "t.csv", "--predict", "p.csv", "--out", str(t / "afile" / "o.csv")]),
         CliError, r"cannot write .*part of its folder path is an existing file", code=2),
    Case("CLI usage", "`workbench invert map --input` with two (band, lat, lon) variables (CLI)",
         lambda t: cli(["invert", "map", "--input", str(_two_cube_zarr(t)), "--out", str(t / "m.zarr")]), CliError,
         r"2 variables with a 'band' dim .*name the reflectance with --variable", code=2),
    # -- CLI ----------------------------------------------------------------------------------------
    Case("CLI usage", "unknown subcommand",
         lambda t: cli(["frobnicate"]), CliError, r"invalid choice: 'frobnicate'", code=2),
    Case("CLI usage", "missing required argument",
         lambda t: cli(["data", "fetch"]), CliError, r"the following arguments are required: id", code=2),
    Case("CLI usage", "non-integer port for `workbench lab`",
         lambda t: cli(["lab", "--port", "eighty"]), CliError, r"port must be a whole number, got 'eighty'", code=2),
    Case("CLI usage", "port out of range for `workbench lab`",
         lambda t: cli(["lab", "--port", "-1"]), CliError, r"port must be between 1024 and 65535, got -1", code=2),
]


# --------------------------------------------------------------------------------------- the checks
def normalise(msg: str, tmp: Path | None = None) -> str:
    """Make a message reproducible for the docs: temporary folders, ports and timestamps replaced."""
    if tmp is not None:
        msg = msg.replace(str(tmp), "<tmp>")
    msg = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", msg)
    msg = re.sub(r"\.(rejected|corrupt)-\d+(?:-[0-9a-f]{8})?", r".\1-<time>", msg)
    msg = re.sub(r"\(choose from [^)]*\)", "(choose from <the registered commands>)", msg)
    msg = re.sub(r"(/tmp|/var/folders)/[^\s:,;'\"]*?pytest[^\s:,;'\"]*", "<tmp>", msg)
    return msg.strip()


def trigger(case: Case, tmp: Path) -> tuple[BaseException, str]:
    """Run a case; return the exception and its normalised message (fails if nothing is raised)."""
    try:
        case.run(tmp)
    except case.error as exc:  # noqa: PERF203
        return exc, normalise(str(exc), tmp)
    raise AssertionError(f"{case.cls} / {case.what}: no {case.error.__name__} was raised")


def doc_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


@pytest.mark.parametrize("case", CASES, ids=[f"{c.cls}: {c.what}" for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    exc, msg = trigger(case, tmp_path)
    if case.error is CliError:
        assert exc.code == case.code, exc.stderr
        assert "Traceback" not in exc.stderr
    else:
        assert isinstance(exc, WorkbenchError), f"{type(exc).__name__} is not a WorkbenchError"
        assert exc.__traceback__ is not None
    assert re.search(case.match, msg, flags=re.S), f"message does not name the problem: {msg!r}"
    assert 20 < len(msg) < 1500
    doc = DOC.read_text() if DOC.exists() else ""
    assert doc_cell(msg) in doc, (
        f"docs/robustness.md does not show this message; regenerate it with "
        f"`.venv/bin/python tests/test_robustness.py --write-docs`:\n{msg}"
    )


def test_nan_reflectance_propagates() -> None:
    """NaN in, NaN out: a NaN pixel is not an error, it stays NaN and its neighbours are untouched."""
    da = with_value(cube(), np.nan)
    assert validate.check_reflectance(da) is da
    out = _lucey(da)
    assert np.isnan(out.FeO_lucey2000.values[1, 2])
    assert np.isfinite(out.FeO_lucey2000.values).sum() == out.FeO_lucey2000.size - 1


def test_band_order_is_matched_by_name() -> None:
    """The residual CNN matches bands by name: a cube in another band order gives the same result."""
    m = _inverter()
    a, b = m.predict(cube()), m.predict(cube().isel(band=slice(None, None, -1)))
    np.testing.assert_allclose(a.FeO.values, b.FeO.values)
    nan = m.predict(with_value(cube(), np.nan))  # NaN in, NaN out; the other pixels unchanged
    assert np.isnan(nan.FeO.values[1, 2]) and np.isfinite(nan.FeO.values).sum() == nan.FeO.size - 1


def test_valid_inputs_pass(tmp_path: Path) -> None:
    """The checks accept good input (so that the errors above are not raised by everything)."""
    da = cube()
    assert validate.check_bands(validate.check_reflectance(da), CLEMENTINE_NM) is da
    assert validate.check_crs(da, expected="IAU_2015:30100") == "IAU_2015:30100"
    assert validate.check_sun(-30.0, 90.0) == (330.0, 90.0)
    validate.check_matching_grids(dem(32), coarsen(dem(32)))
    df = validate.check_station_table(station_csv(tmp_path, stations()), STATION_COLUMNS)
    assert df["R750"].dtype == float
    validate.check_checkpoint({"architecture": {"blocks": 6}, "wavelengths": CLEMENTINE_NM},
                              architecture={"blocks": 6}, wavelengths=CLEMENTINE_NM)
    catalog.parse_manifest(yaml.safe_dump(manifest_dict()))


@pytest.mark.parametrize("fail_at", ["deleting the old folder", "renaming the new folder in"])
def test_replacing_a_folder_output_keeps_old_or_new_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          fail_at: str) -> None:
    """An interruption while a folder output (a zarr store) replaces the old one leaves the final path with
    the whole old or the whole new content: the old folder used to be deleted before the new was in place."""
    import shutil

    from workbench import io as wio

    final = tmp_path / "store.zarr"
    final.mkdir()
    for i in range(5):
        (final / f"old{i}").write_text("old")
    real_rmtree, real_replace = shutil.rmtree, os.replace

    def rmtree_interrupted(path, *args, **kwargs):  # Ctrl-C after the first file is gone
        if not Path(path).name.endswith(".part"):  # not the clean-up of the temporary
            next(p for p in Path(path).iterdir()).unlink()
            raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    def replace_fails_for_the_new_folder(src, dst):
        if Path(dst) == final and Path(src).name != final.name and not Path(src).name.endswith(".old"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    if fail_at == "deleting the old folder":
        monkeypatch.setattr(wio.shutil, "rmtree", rmtree_interrupted)
    else:
        monkeypatch.setattr(wio.os, "replace", replace_fails_for_the_new_folder)
    with pytest.raises((KeyboardInterrupt, OSError)), wio.atomic_path(final) as tmp:
        tmp.mkdir()
        for i in range(3):
            (tmp / f"new{i}").write_text("new")
    monkeypatch.undo()
    names = sorted(p.name for p in final.iterdir())
    assert names in (sorted(f"old{i}" for i in range(5)), sorted(f"new{i}" for i in range(3))), names
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p != final)
    assert all(n.startswith(".store.zarr.") and n.endswith(".old") for n in leftovers), leftovers


def test_catalogue_covers_issue_classes() -> None:
    """Every class of bad input the issue names has at least one row."""
    classes = {c.cls for c in CASES}
    for need in ["wrong band count", "wrong band order", "wrong wavelengths", "missing CRS", "non-lunar CRS",
                 "NaN/inf/negative reflectance", "lat/lon out of range", "unknown dataset id",
                 "truncated or corrupted download", "sha256 mismatch", "manifest: missing field",
                 "manifest: extra field", "manifest: mistyped field", "checkpoint mismatch",
                 "image and coarse DEM do not match", "sun elevation <= 0 or > 90", "station CSV",
                 "checkpoint: unsafe or corrupt"]:
        assert need in classes, need


# ------------------------------------------------------------------------------------ docs generator
def render_table() -> str:
    import tempfile

    rows = []
    for case in CASES:
        with tempfile.TemporaryDirectory(prefix="robust-pytest-") as td:
            try:
                exc, msg = trigger(case, Path(td))
            except pytest.skip.Exception as why:  # a module that has not landed yet
                print(f"skipped: {case.what}: {why}", file=sys.stderr)
                continue
        kind = f"exit {case.code}, stderr" if case.error is CliError else type(exc).__name__
        rows.append(f"| {doc_cell(case.cls)} | {doc_cell(case.what)} | {kind} | {doc_cell(msg)} |")
    return "\n".join(["| class | bad input | what the user gets | exact message |", "|---|---|---|---|", *rows])


def write_docs() -> None:
    text = DOC.read_text()
    start, end = "<!-- table:start -->", "<!-- table:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{start}\n{render_table()}\n{end}{tail}")
    print(f"wrote {len(CASES)} rows to {DOC}")


if __name__ == "__main__":
    if "--write-docs" in sys.argv:
        write_docs()
    else:
        print(render_table())
