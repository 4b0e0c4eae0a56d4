"""Topography reconstruction: one image + a coarse DEM → a DEM on the image grid.

Four methods share one entry point, :func:`reconstruct`:

* ``"upsample"`` — bicubic interpolation of the coarse DEM (the baseline every method must beat);
* ``"sfs"`` — shape-from-shading refinement of the upsampled DEM (:mod:`workbench.topography.sfs`);
* ``"network"`` — the U-Net of :mod:`workbench.topography.net` predicts relative relief, and **scale
  recovery** takes the absolute heights and vertical scale from the coarse DEM in the low frequencies;
* ``"network_sfs"`` — the network's DEM polished by the same shape-from-shading, started from it and held
  to it by the ``λ(z − z_0)²`` term instead of to the upsampled coarse DEM (a learned initial DEM, as ASP's
  ``sfs`` is usually run from a stereo or laser DEM; Alexandrov & Beyer 2018). Slower (the cost of SfS),
  and it only helps where pixels are lit: shadows keep the network's heights. In ``workbench bench
  topography`` (six views, 2026-11-22) it beats the network at every sun elevation: on the LOLA
  south-polar tiles RMSE −2 % at 2°, −6 % at 5°, −26 % at 15°, −8 % at 30°; on procedural tiles −0.7 %,
  −0.9 %, −7 %, −10 %.

The network's output is averaged over mirrored/rotated views of each tile (test-time augmentation,
``views``, default :data:`DEFAULT_VIEWS`), with the sun vector turned with the tile.

Scale recovery (:func:`scale_recovery`) comes in several flavours, compared in the benchmark:

* ``"backproject"`` — the network's own heights corrected by iterative back-projection (Irani & Peleg
  1991): ``z ← z + U(c − D(z))`` with ``D`` the block mean onto the coarse grid and ``U`` bicubic
  upsampling, three times, so the result averages back to the coarse DEM ``c`` in every coarse pixel
  (absolute heights and the low-frequency scale come from the coarse DEM, the detail from the network);
* ``"fit"`` — per tile, a scale ``a`` and offset ``b`` fitted by least squares so that the low-pass of
  ``a·h + b`` matches the low-pass of the upsampled coarse DEM; result ``a·h + b``;
* ``"blend"`` — frequency-domain blend: low frequencies from the coarse DEM, high frequencies from the
  network, ``G(z_up) + h − G(h)`` with a Gaussian low-pass ``G`` whose cut-off sits at the coarse DEM's
  Nyquist frequency (σ = factor/2 pixels).

* ``"none"`` — the network's heights as they come (it sees the coarse DEM as an input channel).

``"backproject"`` is the default: it had the lowest RMSE on the validation terrains (procedural seeds
5000+, never used for training or testing) at every sun elevation — 2–4 % below ``"none"`` and 4–9 %
below ``"fit"`` (``python -m workbench.topography.train`` records the comparison with the weights).

References
----------
Alexandrov, O. & Beyer, R. A. (2018), Multiview shape-from-shading for planetary images, Earth and Space
Science 5:652–666.
Irani, M. & Peleg, S. (1991), Improving resolution by image registration, CVGIP: Graphical Models and
Image Processing 53:231–239.
Wang, G., Li, W., Aertsen, M., Deprest, J., Ourselin, S. & Vercauteren, T. (2019), Aleatoric uncertainty
estimation with test-time augmentation for medical image segmentation with convolutional neural networks,
Neurocomputing 338:34–45.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage

from ..config import get_device, inference_precision
from ..errors import CheckpointError, InputError
from ..geo import north_up_flips
from ..io import file_stamp, sha256_file
from ..synth.render import _METRIC_UNITS, check_sun, render
from ..validate import is_whole_number
from .sfs import SFS_OPTIONS, check_sfs_options, sfs
from .tiles import blend_tiles

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_NAME = "topography_unet"
LOW_SUN_WEIGHTS_NAME = "topography_unet_lowsun"
#: sun elevations (deg) up to which the low-sun specialist weights are used (their training range)
LOW_SUN_MAX_DEG = 7.0
METHODS = ("network", "sfs", "upsample", "network_sfs")
SCALE_RECOVERY = ("backproject", "fit", "blend", "fit-blend", "none")
DEFAULT_SCALE_RECOVERY = "backproject"
BACKPROJECT_ITERATIONS = 3
#: test-time views averaged by :func:`network_relief`. Six keep a 1024² tile at 1.4–1.7 s on 2 cores with
#: bfloat16 convolutions (eight: 1.9 s, too close to the 2 s budget). On the validation tiles (stage-6 low-sun
#: weights, ``train.low_sun_validation``) the network/SfS ratio at 2° is 0.6072 / 0.5039 (procedural / LOLA
#: north) with two views in float32, 0.6049 / 0.4993 with four in bfloat16 (0.6045 / 0.4998 in float32),
#: 0.6028 / 0.4969 with six and 0.6010 / 0.4961 with eight; each step is better at 2, 3, 5 and 7° on both sets
DEFAULT_VIEWS = 6


# ----------------------------------------------------------------------------------------- grids
def _cubic_operator(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of 1-D cubic-spline interpolation from ``n_in`` to ``n_out`` pixel centres.

    Column ``j`` is the interpolant of the unit vector ``e_j`` (``ndimage.map_coordinates``, order 3,
    mode ``"nearest"``): the spline prefilter and the tensor-product kernel are both separable, so the 2-D
    interpolation of an array ``C`` is exactly ``A_y @ C @ A_x.T``. Operators up to 32 MB are cached.
    """
    return _cached_cubic_operator(n_out, n_in) if n_out * n_in <= 1 << 22 else _build_cubic_operator(n_out, n_in)


def _build_cubic_operator(n_out: int, n_in: int) -> np.ndarray:
    coords = ((np.arange(n_out) + 0.5) * n_in / n_out - 0.5)[None]
    eye = np.eye(n_in)
    op = np.stack([ndimage.map_coordinates(eye[j], coords, order=3, mode="nearest") for j in range(n_in)], axis=1)
    op.flags.writeable = False  # may be cached and shared
    return op


_cached_cubic_operator = lru_cache(maxsize=8)(_build_cubic_operator)


def upsample(coarse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic (cubic-spline) upsampling of ``coarse`` onto a finer grid covering the same extent.

    Pixel-area aligned; identical to ``ndimage.map_coordinates(order=3, mode="nearest")`` on the fine
    pixel centres, computed as two matrix products with 1-D operators (:func:`_cubic_operator`), about
    5x faster on a 1024² grid.
    """
    coarse = np.asarray(coarse, dtype=np.float64)
    (cy, cx), (ny, nx) = coarse.shape, shape
    return _cubic_operator(ny, cy) @ coarse @ _cubic_operator(nx, cx).T


def downsample(z: np.ndarray, factor: int) -> np.ndarray:
    """Block mean by an integer ``factor`` (the shape must be divisible)."""
    z = np.asarray(z, dtype=np.float64)
    ny, nx = z.shape
    if ny % factor or nx % factor:
        raise InputError(f"shape {z.shape} is not divisible by the downsampling factor {factor}")
    return z.reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3))


def area_downsample(z: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mean of ``z`` over each pixel of a coarser grid of ``shape`` covering the same extent.

    Exact block means when the sizes divide; otherwise an anti-aliased linear resize approximates them.
    """
    z = np.asarray(z, dtype=np.float64)
    ny, nx = z.shape
    cy, cx = shape
    if ny % cy == 0 and nx % cx == 0 and ny // cy == nx // cx:
        return downsample(z, ny // cy)
    from skimage.transform import resize

    return resize(z, shape, order=1, anti_aliasing=True, mode="edge", preserve_range=True)


def backproject(z: np.ndarray, coarse: np.ndarray, iterations: int = BACKPROJECT_ITERATIONS) -> np.ndarray:
    """Iterative back-projection: correct ``z`` until its coarse-pixel means match ``coarse``."""
    z = np.asarray(z, dtype=np.float64).copy()
    coarse = np.asarray(coarse, dtype=np.float64)
    for _ in range(iterations):
        z += upsample(coarse - area_downsample(z, coarse.shape), z.shape)
    return z


def lowpass(z: np.ndarray, factor: float) -> np.ndarray:
    """Gaussian low-pass with σ = factor/2 pixels: keeps what a DEM ``factor`` times coarser resolves."""
    return ndimage.gaussian_filter(np.asarray(z, dtype=np.float64), sigma=max(factor / 2.0, 0.5), mode="reflect")


def scale_recovery(h: np.ndarray, z_up: np.ndarray, factor: float, method: str = DEFAULT_SCALE_RECOVERY,
                   coarse: np.ndarray | None = None) -> np.ndarray:
    """Put relative relief ``h`` (metres) on the absolute scale of the coarse DEM.

    ``"backproject"``: :func:`backproject` of ``h`` onto ``coarse`` (the coarse DEM itself, required);
    ``"fit"``: ``a·h + b`` with (a, b) least squares between low-passes; ``"blend"``: low frequencies
    from ``z_up``, high from ``h``; ``"fit-blend"``: blend after rescaling ``h`` by the fitted ``a``;
    ``"none"``: ``h`` unchanged (the network's own heights, for comparison).
    """
    if method not in SCALE_RECOVERY:
        raise InputError(f"unknown scale recovery {method!r}; use one of {SCALE_RECOVERY}")
    if method == "none":
        return np.asarray(h, dtype=np.float64)
    if method == "backproject":
        if coarse is None:
            raise InputError("scale recovery 'backproject' needs the coarse DEM: pass coarse=...")
        return backproject(h, coarse)
    lh, lz = lowpass(h, factor), lowpass(z_up, factor)
    if method == "blend":
        return lz + (h - lh)
    dh = lh - lh.mean()
    var = float((dh * dh).sum())
    a = float((dh * (lz - lz.mean())).sum()) / var if var > 0 else 1.0
    a = float(np.clip(a, 0.25, 4.0))  # a wildly wrong scale means no usable low-frequency signal
    if method == "fit":
        return a * h + (lz.mean() - a * lh.mean())
    return lz + a * (h - lh)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square difference (NaN-aware)."""
    return float(np.sqrt(np.nanmean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def slope_deg(z: np.ndarray, pixel_size: float) -> np.ndarray:
    """Slope angle (degrees) by central differences."""
    gy, gx = np.gradient(np.asarray(z, dtype=np.float64), pixel_size)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def slope_error_deg(z: np.ndarray, truth: np.ndarray, pixel_size: float) -> float:
    """Mean absolute slope-angle error (degrees)."""
    return float(np.nanmean(np.abs(slope_deg(z, pixel_size) - slope_deg(truth, pixel_size))))


# ----------------------------------------------------------------------------------------- network
def weights_paths(name: str = WEIGHTS_NAME) -> tuple[Path, Path]:
    """Paths of the committed weights and their JSON record."""
    return WEIGHTS_DIR / f"{name}.pt", WEIGHTS_DIR / f"{name}.json"


def network_weights(sun_elevation: float) -> str | None:
    """Weights for a sun elevation: the low-sun specialist at ≤ :data:`LOW_SUN_MAX_DEG` when committed.

    Returns a path for :func:`load_network`, or None for the general weights. The specialist is the general
    network fine-tuned on sun elevations 1–7° only (its record says how); it was adopted because it
    lowered the validation RMSE at 2° and 5° (see its JSON record).
    """
    pt, _ = weights_paths(LOW_SUN_WEIGHTS_NAME)
    if sun_elevation <= LOW_SUN_MAX_DEG and pt.exists():
        return str(pt)
    return None


def load_network(path: str | None = None):
    """Load the committed U-Net (or the weights at ``path``); checks the sha256 of the record.

    The network is put on :func:`workbench.config.get_device` (``WORKBENCH_DEVICE``, else CUDA when present,
    else CPU). Loads are cached on the resolved path, the modification time and size of the weights and of
    their JSON record, and the device: weights rewritten on disk (e.g. retrained) are read again, never
    served from the cache with the old record. ``load_network.cache_clear()`` empties the cache.

    Returns
    -------
    tuple
        ``(net, record)``: the :class:`~workbench.topography.net.TopoUNet` in eval mode (channels-last
        memory) and the weights' JSON record (``{}`` when there is none).
    """
    pt, js = (Path(path), Path(path).with_suffix(".json")) if path else weights_paths()
    pt, js = pt.resolve(), js.resolve()
    return _load_network(str(pt), str(js), file_stamp(pt), file_stamp(js), str(get_device()))


@lru_cache(maxsize=4)
def _load_network(pt_path: str, js_path: str, pt_key, js_key, device: str):
    """:func:`load_network` for one version of the files (``*_key``) on one device; cached."""
    import torch

    from ..validate import load_weights  # torch.load(weights_only=True); unsafe/corrupt files -> CheckpointError
    from .net import TopoUNet

    pt, js = Path(pt_path), Path(js_path)
    if pt_key is None or not pt.exists():
        raise CheckpointError(
            f"topography weights not found at {pt}; train them with "
            "`python -m workbench.topography.train` or use --method sfs/upsample"
        )
    record = json.loads(js.read_text()) if js.exists() else {}
    digest = sha256_file(pt)
    if record.get("sha256") and record["sha256"] != digest:
        raise CheckpointError(f"sha256 of {pt} does not match its record {js}; retrain or restore the file")
    state = load_weights(pt)
    cfg = state.pop("_config", None)
    if not isinstance(cfg, dict):
        cfg = record.get("config", {"width": 16})
    net = TopoUNet(**{k: int(v) for k, v in cfg.items()})
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{pt} does not fit the TopoUNet architecture ({exc}); retrain the weights") from exc
    net.eval()
    # NHWC convolutions: 1.7x faster on CPU; network_relief sends its inputs to the network's device
    return net.to(torch.device(device)).to(memory_format=torch.channels_last), record


load_network.cache_clear = _load_network.cache_clear  # type: ignore[attr-defined]


def network_relief(image: np.ndarray, z_up: np.ndarray, pixel_size: float, sun_azimuth: float,
                   sun_elevation: float, net=None, tile: int = 1024, overlap: int = 64,
                   views: int = DEFAULT_VIEWS, precision: str | None = None) -> np.ndarray:
    """Relative relief (metres, arbitrary offset) predicted by the network, in blended tiles.

    ``views`` (1–8): the network runs on that many mirrored/rotated copies of each tile
    (:data:`~workbench.topography.net.VIEWS`, with the sun turned with the tile) and the outputs, turned
    back, are averaged — test-time augmentation (e.g. Wang et al. 2019). The cost grows linearly with it.
    ``precision``: ``"float32"``, ``"bfloat16"`` (convolutions under ``torch.autocast``; the coarse-DEM
    skip and the output stay float32) or ``"auto"`` (bfloat16 where the device runs it natively); None
    reads ``WORKBENCH_PRECISION``, default ``"auto"`` (:func:`workbench.config.inference_precision`).
    On the validation tiles bfloat16 moves the network/SfS ratio by less than 0.001 at 4 views.
    """
    import torch

    from .net import VIEWS, features, unview, view_features

    if not is_whole_number(views) or not 1 <= views <= len(VIEWS):
        raise InputError(f"views must be a whole number from 1 to {len(VIEWS)}, got {views!r}")
    if net is None:
        net, _ = load_network(network_weights(sun_elevation))
    shading = render(z_up, sun_azimuth, sun_elevation, pixel_size=pixel_size).values
    z_px = z_up / pixel_size
    device = next(net.parameters()).device
    bf16 = inference_precision(precision, device) == "bfloat16"
    n_in = int(net.config["in_channels"])

    def run(win):
        x = features(image[win], z_px[win], shading[win], sun_azimuth, sun_elevation, n_in)
        x = np.ascontiguousarray(np.moveaxis(x, 0, -1))  # (y, x, channel): the memory of a channels-last tensor
        h = np.zeros(x.shape[:2])
        for turns, mirror in VIEWS[:views]:
            v = torch.from_numpy(view_features(x, turns, mirror, channels_last=True)).permute(2, 0, 1)[None]
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = net(v.to(device, memory_format=torch.channels_last))[0, 0].float().cpu().numpy()
            h += unview(out.astype(np.float64), turns, mirror)
        # tile outputs are relative to their own mean coarse height: restore it before blending
        return h / views + z_px[win].mean()

    return blend_tiles(run, image.shape, tile=tile, overlap=overlap) * pixel_size


# ----------------------------------------------------------------------------------------- API
#: methods that run the network (and take ``scale_method``, ``views``, ``precision``)
NETWORK_METHODS = ("network", "network_sfs")
#: methods that run shape-from-shading (and take the options of :func:`~workbench.topography.sfs.sfs`)
SFS_METHODS = ("sfs", "network_sfs")


def _geographic_crs(da: xr.DataArray) -> str | None:
    """The name of ``da``'s CRS when it is geographic (longitude/latitude in degrees), else None.

    Read where :func:`workbench.maps._crs_sources` looks: ``attrs["crs"]`` and the grid-mapping coordinate
    (``spatial_ref``, which ``da.rio.crs`` reads). A CRS PROJ cannot parse is left to
    :func:`workbench.validate.check_crs`.
    """
    from ..maps import _crs_sources

    sources = _crs_sources(da)
    if not sources:
        return None
    import pyproj

    for src in sources:
        try:
            crs = pyproj.CRS.from_cf(src) if isinstance(src, dict) else pyproj.CRS.from_user_input(src)
        except Exception:  # noqa: BLE001 - pyproj raises CRSError and others on partial or unknown CRSs
            continue
        if crs.is_geographic:
            return "longitude/latitude" + ("" if crs.name in ("", "unknown") else f", {crs.name}")
    return None


def _as_array(obj, name: str) -> tuple[np.ndarray, xr.DataArray | None, dict[str, slice], tuple[str, ...]]:
    """``obj`` as a north-up ``(y, x)`` float array, with the DataArray it came from (north-up), the
    ``isel`` flips applied to it (applying them again restores its order) and its own order of ``y``/``x``.

    Rows north (y descending) and columns east (x ascending) is the order every method assumes; a grid
    stored south-up or west-right is flipped, not misread (its sun would be mirrored).
    """
    if isinstance(obj, xr.DataArray):
        if obj.ndim == 3 and "band" in obj.dims and obj.sizes["band"] == 1:
            obj = obj.isel(band=0, drop=True)
        if obj.ndim != 2:
            raise InputError(f"{name} must be 2-D, got dims {obj.dims}")
        if not {"y", "x"} <= set(obj.dims):
            raise InputError(
                f"{name} has dims {obj.dims}, not (y, x): reconstruction needs a metric grid with square pixels. "
                "Reproject a (lat, lon) grid first (e.g. to polar stereographic with rioxarray), or pass "
                "its .values with pixel_size if row 0 is north and the pixels are square"
            )
        geographic = _geographic_crs(obj)
        if geographic is not None:
            raise InputError(
                f"{name} has a geographic CRS ({geographic}): its y/x are degrees, not metres. Reproject it to "
                "a metric projection first (e.g. polar stereographic IAU_2015:30135 with rioxarray's "
                ".rio.reproject), or pass its .values with pixel_size"
            )
        for dim in ("y", "x"):
            units = obj[dim].attrs.get("units") if dim in obj.coords else None
            if units is not None and str(units).strip().lower() not in _METRIC_UNITS:
                raise InputError(f"{name}'s {dim} coordinate is in {units!r}, not metres; convert it to metres first")
        order = tuple(str(d) for d in obj.dims)
        obj = obj.transpose("y", "x")
        flips = north_up_flips(obj, "y", "x")
        obj = obj.isel(flips)
        return np.asarray(obj.values, dtype=np.float64), obj, flips, order
    arr = np.asarray(obj, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {arr.shape}")
    return arr, None, {}, ("y", "x")


def _extent(da: xr.DataArray) -> tuple[float, float, float, float] | None:
    if "y" in da.coords and "x" in da.coords and da.sizes.get("y", 0) > 1 and da.sizes.get("x", 0) > 1:
        y, x = da["y"].values.astype(float), da["x"].values.astype(float)
        dy, dx = abs(y[1] - y[0]), abs(x[1] - x[0])
        return (min(y) - dy / 2, max(y) + dy / 2, min(x) - dx / 2, max(x) + dx / 2)
    return None


def _square(dy: float, dx: float, name: str) -> float:
    if abs(dy - dx) > 0.01 * max(abs(dy), abs(dx)):
        raise InputError(
            f"{name} pixels are not square ({dy:g} m along y, {dx:g} m along x); resample it to square "
            "pixels first (e.g. rioxarray's reproject with resolution=...)"
        )
    return dy


def grid_pixel_size(da: xr.DataArray, name: str = "image") -> float | None:
    """The square pixel size (metres) of a ``(y, x)`` DataArray, or None when it does not say.

    Taken from the spacing of its ``y``/``x`` coordinates, else from ``attrs["pixel_size"]`` (one value, or
    ``(dy, dx)`` as :func:`workbench.synth.render.render` records it).

    Raises
    ------
    InputError
        When the pixels are not square (the two spacings differ by more than 1 %) or the attribute is not
        one or two numbers.
    """
    if _extent(da) is not None:
        y, x = da["y"].values, da["x"].values
        return _square(abs(float(y[1] - y[0])), abs(float(x[1] - x[0])), name)
    if "pixel_size" in da.attrs:
        try:
            v = np.atleast_1d(np.asarray(da.attrs["pixel_size"], dtype=np.float64)).ravel()
        except (TypeError, ValueError):
            v = np.array([])
        if v.size not in (1, 2):
            raise InputError(f"{name} attrs['pixel_size'] is {da.attrs['pixel_size']!r}; give one number of metres "
                             "per pixel (or pass pixel_size=)")
        return _square(float(v[0]), float(v[-1]), name)
    return None


def _check_options(method: str, scale_method: str | None, views: int | None, precision: str | None,
                   sfs_options: dict) -> None:
    """Refuse options the method does not use, misspelled ones and bad values, before any work."""
    import difflib

    unknown = [k for k in sfs_options if k not in SFS_OPTIONS]
    if unknown:
        names = ("pixel_size", "scale_method", "views", "precision") + SFS_OPTIONS
        hint = difflib.get_close_matches(unknown[0], names, n=1)
        raise InputError(
            f"reconstruct() got an unknown option {unknown[0]!r}"
            + (f"; did you mean {hint[0]!r}?" if hint else ".")
            + " Its options are pixel_size, scale_method, views and precision (network methods) and "
            + ", ".join(SFS_OPTIONS) + " (SfS methods)"
        )
    given = [k for k, v in (("scale_method", scale_method), ("views", views), ("precision", precision))
             if v is not None]
    if method not in NETWORK_METHODS and given:
        raise InputError(f"{', '.join(given)} only affect{'s' if len(given) == 1 else ''} the network, which "
                         f"method {method!r} does not run; use method='network' or 'network_sfs', or leave "
                         f"{'it' if len(given) == 1 else 'them'} out")
    if sfs_options and method not in SFS_METHODS:
        one = len(sfs_options) == 1
        raise InputError(f"{', '.join(sfs_options)} {'is an option' if one else 'are options'} of shape-from-shading, "
                         f"which method {method!r} does not run; use method='sfs' or 'network_sfs', or leave "
                         f"{'it' if one else 'them'} out")
    if scale_method is not None and scale_method not in SCALE_RECOVERY:
        raise InputError(f"unknown scale recovery {scale_method!r}; use one of {SCALE_RECOVERY}")
    if views is not None:
        from .net import VIEWS

        if not is_whole_number(views) or not 1 <= views <= len(VIEWS):
            raise InputError(f"views must be a whole number from 1 to {len(VIEWS)}, got {views!r}")
    if precision is not None and str(precision).strip().lower() != "auto":
        inference_precision(str(precision))  # an unknown name -> InputError naming the choices
    if sfs_options:
        check_sfs_options(**sfs_options)


def image_pixel_size(img: xr.DataArray | None, pixel_size: float | None, option: str = "pixel_size"
                     ) -> float | None:
    """The image's pixel size in metres: ``pixel_size`` where given, else the image's own (:func:`grid_pixel_size`).

    Raises
    ------
    InputError
        When ``pixel_size`` is not one number, or contradicts the image's own pixel size by more than 1 %
        (the output keeps the image's grid, so the heights would be computed for other pixels than the
        georeferencing says). ``option`` names the setting in the message (``"--pixel-size"`` for the CLI).
    """
    own = None
    if img is not None:
        try:
            own = grid_pixel_size(img, "image")
        except InputError:
            if pixel_size is None:
                raise  # a given pixel_size stands in for attrs that cannot be read as one
    if pixel_size is None:
        return own
    try:
        pixel_size = float(pixel_size)
    except (TypeError, ValueError):
        raise InputError(f"{option} must be one number of metres per image pixel, got {pixel_size!r}") from None
    if own is not None and not abs(pixel_size - own) <= 0.01 * own:
        raise InputError(f"{option} {pixel_size:g} m contradicts the image's own {own:g} m pixels (from its y/x "
                         f"coordinates or attrs['pixel_size']); leave {option} out, or resample the image first")
    return pixel_size


def reconstruct(
    image,
    coarse_dem,
    sun_azimuth: float,
    sun_elevation: float,
    method: str = "network",
    pixel_size: float | None = None,
    scale_method: str | None = None,
    views: int | None = None,
    precision: str | None = None,
    **sfs_options,
) -> xr.DataArray:
    """Reconstruct a DEM on the image grid from one image and a coarse DEM of the same extent.

    Parameters
    ----------
    image
        Radiance factor (or any linear brightness) on ``(y, x)``: a DataArray with metre coordinates
        (a projected CRS, if any: a geographic one is refused) or a 2-D ndarray with ``pixel_size`` (row 0
        north/up, columns east/right; a DataArray may be stored south-up, west-right or as ``(x, y)``: it is
        read by its coordinates and returned in its own order). No NaN allowed.
    coarse_dem
        Heights in metres covering the same extent with fewer pixels. A DataArray is read by its
        coordinates like the image; a 2-D ndarray (or a DataArray without ``y``/``x`` coordinates) is taken
        to be in the image's storage order (the order of the image's rows and columns as given, e.g. south-up
        beside a south-up image DataArray).
    sun_azimuth, sun_elevation
        Degrees: azimuth clockwise from up/north towards the sun; elevation in (0, 90].
    method
        ``"network"``, ``"sfs"``, ``"upsample"`` or ``"network_sfs"`` (network, then SfS from it).
    pixel_size
        Image pixel size in metres: needed for an ndarray image, or a DataArray whose coordinates and attrs do
        not say. One that contradicts the image's own (by more than 1 %) is refused: the output keeps the image's
        grid.
    scale_method
        Network methods only: scale recovery of the network output, one of :data:`SCALE_RECOVERY`
        (None: ``"backproject"``).
    views
        Network methods only: mirrored/rotated views of each tile the network's output is averaged over
        (1–8, None: :data:`DEFAULT_VIEWS`; see :func:`network_relief`); the run time grows linearly with it.
    precision
        Network methods only: arithmetic of the network's convolutions, ``"auto"`` (bfloat16 where the
        CPU/GPU runs it natively, else float32), ``"float32"`` or ``"bfloat16"``; None reads
        ``WORKBENCH_PRECISION`` (default ``"auto"``; see :func:`network_relief`).
    **sfs_options
        SfS methods only: ``smoothness``, ``initial_dem_weight`` (finite, >= 0), ``shadow_threshold``
        (in (0, 1)) and ``max_iter`` (whole, >= 1) of :func:`~workbench.topography.sfs.sfs`.

    Returns
    -------
    xarray.DataArray
        ``elevation`` (m) on the image grid, attrs with the method and geometry (for network methods also
        the weights, views, precision and torch ``device``). A DataArray image's coordinates (including a
        ``spatial_ref`` CRS coordinate) and ``attrs["crs"]`` are kept; an ndarray image gets ``y``/``x``
        pixel-centre coordinates in metres (row 0 north).

    Raises
    ------
    InputError
        Bad geometry, grids that do not match, NaN pixels, a geographic CRS, non-square pixels, or options
        that are unknown, out of range or meant for another method — all before any work is done.
    """
    az, el = check_sun(sun_azimuth, sun_elevation)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    _check_options(method, scale_method, views, precision, sfs_options)
    img, img_da, flips, order = _as_array(image, "image")
    dem, dem_da, _, _ = _as_array(coarse_dem, "coarse DEM")
    if img_da is not None and (dem_da is None or not {"y", "x"} <= set(dem_da.coords)):
        # a DEM without coordinates is in the image's storage order: put it north-up with the image
        if dem_da is None and order == ("x", "y"):
            dem = dem.T
        dem = dem[flips.get("y", slice(None)), flips.get("x", slice(None))]
    if not np.all(np.isfinite(img)):
        raise InputError(f"image contains {int((~np.isfinite(img)).sum())} NaN/inf pixels; fill or crop them first")
    if not np.all(np.isfinite(dem)):
        raise InputError("coarse DEM contains NaN/inf; fill its gaps (e.g. interpolate) first")
    if np.any(img < 0):
        raise InputError("image has negative values; give radiance factor or another non-negative brightness")
    if dem_da is not None:
        units = str(dem_da.attrs.get("units", "m")).strip().lower()
        if units not in _METRIC_UNITS:
            raise InputError(
                f"coarse DEM units are {dem_da.attrs.get('units')!r}, not metres; convert to metres first"
            )
    pixel_size = image_pixel_size(img_da, pixel_size)
    if pixel_size is None or not np.isfinite(pixel_size) or pixel_size <= 0:
        raise InputError("image pixel size unknown: give pixel_size (metres per pixel) or metre y/x coordinates")
    ny, nx = img.shape
    cy, cx = dem.shape
    fy, fx = ny / cy, nx / cx
    if cy < 2 or cx < 2:
        raise InputError(f"coarse DEM has shape {dem.shape}; it needs at least 2x2 pixels over the image's extent")
    if fy < 1 or fx < 1:
        raise InputError(
            f"coarse DEM {dem.shape} has more pixels than the image {img.shape}; it must be the coarser of the two "
            "(were the image and the coarse DEM swapped?)"
        )
    if abs(fy - fx) > 0.01 * max(fy, fx):
        raise InputError(
            f"image {img.shape} and coarse DEM {dem.shape} do not cover the same extent with square pixels "
            "(the size ratios differ); crop both to the same area"
        )
    if img_da is not None and dem_da is not None:
        e1, e2 = _extent(img_da), _extent(dem_da)
        if e1 is not None and e2 is not None:
            tol = 0.5 * pixel_size * fy
            if max(abs(a - b) for a, b in zip(e1, e2, strict=True)) > tol:
                raise InputError(
                    f"image extent {np.round(e1, 1).tolist()} and coarse DEM extent {np.round(e2, 1).tolist()} "
                    "differ; crop or reproject them to the same area"
                )
    z_up = upsample(dem, img.shape)
    attrs: dict = {}
    if method == "upsample":
        z = z_up
    elif method == "sfs":
        z = sfs(img, z_up, pixel_size, az, el, **sfs_options)
    else:
        scale_method = DEFAULT_SCALE_RECOVERY if scale_method is None else scale_method
        views = DEFAULT_VIEWS if views is None else views
        net, record = load_network(network_weights(el))
        device = next(net.parameters()).device
        precision = inference_precision(precision, device)
        h = network_relief(img, z_up, pixel_size, az, el, net=net, views=views, precision=precision)
        z = scale_recovery(h, z_up, fy, scale_method, coarse=dem)
        attrs["scale_recovery"] = scale_method
        attrs["views"] = int(views)
        attrs["precision"] = precision
        attrs["device"] = str(device)
        attrs["weights_sha256"] = record.get("sha256", "")
        attrs["weights"] = record.get("name", WEIGHTS_NAME)
        if method == "network_sfs":
            z = sfs(img, z, pixel_size, az, el, **sfs_options)
    attrs.update({"units": "m", "long_name": "reconstructed elevation", "method": method,
                  "sun_azimuth": az, "sun_elevation": el, "pixel_size": float(pixel_size),
                  "coarse_factor": float(fy)})
    if img_da is not None and "y" in img_da.coords and "x" in img_da.coords:
        # the image's coordinates, non-dimension ones too (rioxarray's spatial_ref CRS), with their attrs
        coords = {k: v for k, v in img_da.coords.items() if set(v.dims) <= {"y", "x"}}
        for key in ("crs", "grid_mapping"):
            if key in img_da.attrs:
                attrs[key] = img_da.attrs[key]
        out = xr.DataArray(z, coords=coords, dims=("y", "x"), name="elevation", attrs=attrs)
    else:
        y = xr.Variable("y", (np.arange(ny)[::-1] + 0.5) * pixel_size, attrs={"units": "m"})
        x = xr.Variable("x", (np.arange(nx) + 0.5) * pixel_size, attrs={"units": "m"})
        out = xr.DataArray(z, coords={"y": y, "x": x}, dims=("y", "x"), name="elevation", attrs=attrs)
    if img_da is not None:  # back to the image's own order
        out = out.isel(flips).transpose(*order)
    return out
