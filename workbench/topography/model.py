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

from ..config import inference_precision
from ..errors import CheckpointError, InputError
from ..geo import north_up_flips
from ..io import sha256_file
from ..synth.render import _METRIC_UNITS, check_sun, render
from ..validate import is_whole_number
from .sfs import sfs
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


@lru_cache(maxsize=4)
def load_network(path: str | None = None):
    """Load the committed U-Net (or the weights at ``path``); checks the sha256 of the record."""
    import torch

    from ..validate import load_weights  # torch.load(weights_only=True); unsafe/corrupt files -> CheckpointError
    from .net import TopoUNet

    pt, js = (Path(path), Path(path).with_suffix(".json")) if path else weights_paths()
    if not pt.exists():
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
    return net.to(memory_format=torch.channels_last), record  # NHWC convolutions: 1.7x faster on CPU


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
def _north_up(da: xr.DataArray) -> xr.DataArray:
    """``da`` with rows north (y descending) and columns east (x ascending), the order every method
    assumes; a grid stored south-up or west-right is flipped, not misread (its sun would be mirrored)."""
    return da.isel(north_up_flips(da, "y", "x"))


def _as_array(obj, name: str) -> tuple[np.ndarray, xr.DataArray | None]:
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
        for dim in ("y", "x"):
            units = obj[dim].attrs.get("units")
            if units is not None and str(units).strip().lower() not in _METRIC_UNITS:
                raise InputError(f"{name}'s {dim} coordinate is in {units!r}, not metres; convert it to metres first")
        obj = _north_up(obj.transpose("y", "x"))
        return np.asarray(obj.values, dtype=np.float64), obj
    arr = np.asarray(obj, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {arr.shape}")
    return arr, None


def _extent(da: xr.DataArray) -> tuple[float, float, float, float] | None:
    if "y" in da.coords and "x" in da.coords and da.sizes.get("y", 0) > 1 and da.sizes.get("x", 0) > 1:
        y, x = da["y"].values.astype(float), da["x"].values.astype(float)
        dy, dx = abs(y[1] - y[0]), abs(x[1] - x[0])
        return (min(y) - dy / 2, max(y) + dy / 2, min(x) - dx / 2, max(x) + dx / 2)
    return None


def reconstruct(
    image,
    coarse_dem,
    sun_azimuth: float,
    sun_elevation: float,
    method: str = "network",
    pixel_size: float | None = None,
    scale_method: str = DEFAULT_SCALE_RECOVERY,
    views: int = DEFAULT_VIEWS,
    precision: str | None = None,
    **sfs_options,
) -> xr.DataArray:
    """Reconstruct a DEM on the image grid from one image and a coarse DEM of the same extent.

    Parameters
    ----------
    image
        Radiance factor (or any linear brightness) on ``(y, x)``: a DataArray with metre coordinates
        or a 2-D ndarray with ``pixel_size`` (row 0 north/up, columns east/right; a DataArray may be stored
        south-up or west-right: it is read by its coordinates and returned in its own order). No NaN allowed.
    coarse_dem
        Heights in metres covering the same extent with fewer pixels (DataArray or ndarray).
    sun_azimuth, sun_elevation
        Degrees: azimuth clockwise from up/north towards the sun; elevation in (0, 90].
    method
        ``"network"``, ``"sfs"``, ``"upsample"`` or ``"network_sfs"`` (network, then SfS from it).
    pixel_size
        Image pixel size in metres (overrides / replaces the image coordinates).
    scale_method
        Scale recovery of the network output: one of :data:`SCALE_RECOVERY` (default ``"backproject"``).
    views
        Mirrored/rotated views of each tile the network's output is averaged over (1–8; see
        :func:`network_relief`); the network's run time grows linearly with it.
    precision
        Arithmetic of the network's convolutions: ``"auto"`` (bfloat16 where the CPU/GPU runs it natively,
        else float32), ``"float32"`` or ``"bfloat16"``; None reads ``WORKBENCH_PRECISION`` (default
        ``"auto"``; see :func:`network_relief`).

    Returns
    -------
    xarray.DataArray
        ``elevation`` (m) on the image grid, attrs with the method and geometry.
    """
    az, el = check_sun(sun_azimuth, sun_elevation)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    img, img_da = _as_array(image, "image")
    dem, dem_da = _as_array(coarse_dem, "coarse DEM")
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
    if pixel_size is None and img_da is not None:
        ext = _extent(img_da)
        if ext is not None:
            dy = abs(float(img_da["y"].values[1] - img_da["y"].values[0]))
            dx = abs(float(img_da["x"].values[1] - img_da["x"].values[0]))
            if abs(dy - dx) > 0.01 * max(dy, dx):
                raise InputError(
                    f"image pixels are not square ({dy:g} m along y, {dx:g} m along x); resample it to square "
                    "pixels first (e.g. rioxarray's reproject with resolution=...)"
                )
            pixel_size = dy
        elif "pixel_size" in img_da.attrs:
            pixel_size = float(np.atleast_1d(img_da.attrs["pixel_size"])[0])
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
        net, record = load_network(network_weights(el))
        precision = inference_precision(precision, next(net.parameters()).device)
        h = network_relief(img, z_up, pixel_size, az, el, net=net, views=views, precision=precision)
        z = scale_recovery(h, z_up, fy, scale_method, coarse=dem)
        attrs["scale_recovery"] = scale_method
        attrs["views"] = int(views)
        attrs["precision"] = precision
        attrs["weights_sha256"] = record.get("sha256", "")
        attrs["weights"] = record.get("name", WEIGHTS_NAME)
        if method == "network_sfs":
            z = sfs(img, z, pixel_size, az, el, **sfs_options)
    attrs.update({"units": "m", "long_name": "reconstructed elevation", "method": method,
                  "sun_azimuth": az, "sun_elevation": el, "pixel_size": float(pixel_size),
                  "coarse_factor": float(fy)})
    if img_da is not None and "y" in img_da.coords and "x" in img_da.coords:
        out = xr.DataArray(z, coords={k: img_da.coords[k] for k in ("y", "x")}, dims=("y", "x"),
                           name="elevation", attrs=attrs)
        if isinstance(image, xr.DataArray) and {"y", "x"} <= set(image.dims):  # back to the image's own order
            out = out.sel(y=image["y"].values, x=image["x"].values).transpose(*image.dims)
        return out
    y = (np.arange(ny)[::-1] + 0.5) * pixel_size
    x = (np.arange(nx) + 0.5) * pixel_size
    return xr.DataArray(z, coords={"y": y, "x": x}, dims=("y", "x"), name="elevation", attrs=attrs)
