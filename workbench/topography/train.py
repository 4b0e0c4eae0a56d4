"""Train the topography U-Net and write ``workbench/weights/topography_unet.{pt,json}``.

Training pairs are (image, coarse DEM) → true relief, rendered with :func:`workbench.synth.render`
(Lunar-Lambert, cast shadows, 1 % noise) at sun elevations drawn log-uniformly in [1°, 60°] and
azimuths uniformly in [0°, 360°), from

* procedural terrains (:func:`workbench.synth.make_terrain`, training seeds < 5000; seeds 5000–9999 are
  the validation set, ≥ 10000 the held-out test set of the benchmark), and
* random crops of the real LOLA north-polar 1600 m DEM and of the LOLA 4 px/deg global DEM
  (|lat| < 60°, treated as a local grid with 7.58 km pixels).

The south-polar LOLA DEM is never read here: it is the held-out real test terrain.

Usage: ``python -m workbench.topography.train --minutes 8 --seed 0``. Training stops after ``--minutes`` of
wall-clock time and the learning rate follows a cosine over that time, so two runs with the same seed differ;
``--steps N`` makes a run reproducible: the cosine runs over N steps and training stops after them
(``--minutes``, when also given, is then only a cap). Every argument and output path is checked before any
work; the weights (``--out``, a ``.pt`` file) and their JSON record (the same name with ``.json``) are
written so that a failure leaves the previous pair in place.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, WorkbenchError
from ..geo import MOON_RADIUS_M
from ..io import atomic_path, json_safe, writable_parent
from ..synth.render import render
from ..synth.terrain import SFD_SLOPE_LROC_5_20KM, make_terrain
from .model import downsample, upsample, weights_paths
from .net import features

FACTOR = 8
TRAIN_SEEDS = range(0, 5000)
VAL_SEED0 = 5000
TEST_SEED0 = 10000
#: pixels along each side of the LOLA north-polar 1600 m DEM (its file is pinned by sha256 in the manifest)
NORTH_DEM_PIXELS = 762
#: rows of the LOLA 4 ppd global DEM (720 x 1440) between which its crops are cut (|lat| < 60 deg)
GLOBAL_CROP_ROWS = (120, 599)


def procedural_tile(seed: int, size: int) -> tuple[np.ndarray, float]:
    """A procedural terrain with randomised parameters (deterministic per seed)."""
    rng = np.random.default_rng(seed + 7_000_000)
    ps = float(np.exp(rng.uniform(np.log(1.0), np.log(20.0))))
    z = make_terrain(
        size, ps, seed=seed,
        sfd_slope=float(rng.uniform(SFD_SLOPE_LROC_5_20KM, 2.2)),
        saturation=float(rng.uniform(0.05, 0.5)),
        degraded_fraction=float(rng.uniform(0.3, 0.9)),
        roughness_m=float(rng.uniform(0.5, 3.0)) * (ps / 5.0) ** 0.2,
        hurst=float(rng.uniform(0.7, 0.95)),
    )
    return z.values, ps


def max_crop_size(north_fraction: float) -> int:
    """Largest tile size (a multiple of :data:`FACTOR`) :func:`real_crops` can cut at ``north_fraction``.

    Parameters
    ----------
    north_fraction
        Fraction of the crops taken from the north-polar DEM (0 to 1); the rest come from the global DEM.

    Returns
    -------
    int
        The size limit of the DEMs that can be read: the north-polar DEM is 762 px across, the |lat| < 60 deg
        band of the global 4 ppd DEM 479 rows.
    """
    limits = []
    if north_fraction > 0:
        limits.append(NORTH_DEM_PIXELS - 1)
    if north_fraction < 1:
        limits.append(GLOBAL_CROP_ROWS[1] - GLOBAL_CROP_ROWS[0] - 1)
    return min(limits) // FACTOR * FACTOR


def real_crops(n: int, size: int, rng: np.random.Generator, north_fraction: float = 0.5
               ) -> list[tuple[np.ndarray, float]]:
    """Random crops of the LOLA north-polar (1600 m) and global 4 ppd DEMs (never the south pole).

    ``north_fraction`` of the crops come from the north-polar DEM (the default alternates the two).
    Each DEM is opened only when a crop needs it (``north_fraction=1`` never reads the global DEM).
    """
    from ..catalog import open_dataset

    sources: dict[bool, tuple[np.ndarray, float, int, int]] = {}

    def source(north: bool) -> tuple[np.ndarray, float, int, int]:
        if north not in sources:
            if north:
                z = open_dataset("lola_ldem_north_1600m")["elevation"].values.astype(np.float64)
                sources[north] = (z, 1600.0, 0, z.shape[0])
            else:
                glob = open_dataset("lola_ldem_4ppd")["elevation"]
                lat = glob["lat"].values
                rows = np.where(np.abs(lat) < 60)[0]
                ps_g = float(np.deg2rad(abs(lat[1] - lat[0])) * MOON_RADIUS_M)
                sources[north] = (glob.values.astype(np.float64), ps_g, rows[0], rows[-1])
            src, _, r0, r1 = sources[north]
            if size >= min(r1 - r0, src.shape[1]):
                raise InputError(f"crops of {size}^2 px do not fit the {'north-polar' if north else 'global'} "
                                 f"DEM ({r1 - r0} x {src.shape[1]} px to crop from); use a smaller size")
        return sources[north]

    out = []
    for k in range(n):
        src, ps, r0, r1 = source((k % 2 == 0) if north_fraction == 0.5 else (rng.random() < north_fraction))
        y = rng.integers(r0, r1 - size)
        x = rng.integers(0, src.shape[1] - size)
        tile = src[y:y + size, x:x + size]
        if not np.all(np.isfinite(tile)):
            continue
        tile = np.rot90(tile, rng.integers(4))
        if rng.random() < 0.5:
            tile = tile[:, ::-1]
        out.append((np.ascontiguousarray(tile), ps))
    return out


def make_pair(z: np.ndarray, ps: float, az: float, el: float, rng: np.random.Generator,
              noise: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image, coarse DEM, features, target) for one terrain and sun; target in pixel units."""
    img = render(z, az, el, pixel_size=ps).values.astype(np.float64)
    med = np.median(img[img > 0]) if np.any(img > 0) else 1.0
    img = np.clip(img + rng.normal(0.0, noise * med, img.shape), 0.0, None)
    coarse = downsample(z, FACTOR)
    z_up = upsample(coarse, z.shape)
    shading = render(z_up, az, el, pixel_size=ps).values
    x = features(img, z_up / ps, shading, az, el)
    target = (z - z_up.mean()) / ps
    return img, coarse, x, target.astype(np.float32)


def sample_sun(rng: np.random.Generator, el_max: float = 60.0, el_min: float = 1.0) -> tuple[float, float]:
    """Azimuth uniform in [0, 360), elevation log-uniform in [``el_min``, ``el_max``] degrees."""
    return float(rng.uniform(0, 360)), float(np.exp(rng.uniform(np.log(el_min), np.log(el_max))))


def build_dataset(n_proc: int, n_real: int, size: int, renders: int, seed: int, el_max: float = 60.0,
                  el_min: float = 1.0, north_fraction: float = 0.5):
    rng = np.random.default_rng(seed)
    terrains = [procedural_tile(s, size) for s in TRAIN_SEEDS[:n_proc]]
    terrains += real_crops(n_real, size, rng, north_fraction)
    X, Y = [], []
    for z, ps in terrains:
        for _ in range(renders):
            az, el = sample_sun(rng, el_max, el_min)
            _, _, x, t = make_pair(z, ps, az, el, rng)
            X.append(x)
            Y.append(t[None])
    return np.stack(X), np.stack(Y)


def loss_fn(pred, target, mse_weight: float = 0.0):
    """L1 on relief (pixel units) + L1 on its gradients (slopes) [+ ``mse_weight`` · squared error].

    The squared-error term weights the large misses that dominate an RMSE (used for a final phase).
    """
    import torch

    d = pred - target
    gx = torch.diff(d, dim=-1).abs().mean()
    gy = torch.diff(d, dim=-2).abs().mean()
    loss = d.abs().mean() + 2.0 * (gx + gy)
    if mse_weight:
        loss = loss + mse_weight * (d - d.mean(dim=(-2, -1), keepdim=True)).square().mean()
    return loss


def validate(net, n: int = 24, size: int = 96, seed: int = 1, el_min: float = 1.0, el_max: float = 60.0) -> dict:
    """RMSE (m) on validation procedural tiles for the three scale recoveries and bicubic upsampling.

    Parameters
    ----------
    net
        The network (in eval mode).
    n, size, seed
        Number of tiles (procedural seeds ``VAL_SEED0 + k``), their size in pixels and the seed of the sun
        and noise draws.
    el_min, el_max
        Sun elevations (deg) are drawn log-uniformly between these, as in training (:func:`sample_sun`);
        the defaults are the full training range, 1-60 deg.

    Returns
    -------
    dict
        Mean RMSE (m) per method: ``"upsample"``, ``"raw"`` (the network's own heights) and each scale recovery.
    """
    import torch

    from .model import SCALE_RECOVERY, rmse, scale_recovery

    rng = np.random.default_rng(seed)
    res: dict[str, list] = {"upsample": [], "raw": [], **{m: [] for m in SCALE_RECOVERY if m != "none"}}
    for k in range(n):
        z, ps = procedural_tile(VAL_SEED0 + k, size)
        az, el = sample_sun(rng, el_max, el_min)
        _, coarse, x, _ = make_pair(z, ps, az, el, rng)
        z_up = upsample(coarse, z.shape)
        with torch.inference_mode():
            h = net(torch.from_numpy(x)[None])[0, 0].numpy().astype(np.float64)
        h = (h + z_up.mean() / ps) * ps
        res["upsample"].append(rmse(z_up, z))
        res["raw"].append(rmse(h, z))
        for m in SCALE_RECOVERY:
            if m != "none":  # "none" is "raw"
                res[m].append(rmse(scale_recovery(h, z_up, FACTOR, m, coarse=coarse), z))
    return {k: float(np.mean(v)) for k, v in res.items()}


def low_sun_validation(weights: str | None = None, views: int | None = None,
                       elevations: tuple[float, ...] = (2.0, 3.0, 5.0, 7.0), n: int = 12, size: int = 128) -> dict:
    """Network/SfS RMSE ratios on the validation sets that decide whether new low-sun weights are adopted.

    ``n`` procedural tiles (seeds ``VAL_SEED0 + 100 + k``) and ``n`` crops of the LOLA north-polar DEM
    (``real_crops`` with generator seed 99; that DEM is in the training data, so this set is not clean),
    each rendered at every elevation with seeded azimuths (generator seed 5) and 1 % noise; the network
    (``weights``, default: the weights :func:`~workbench.topography.model.network_weights` picks) with
    the default scale recovery, SfS from the upsampled coarse DEM. Returns ``{"proc": {el: ratio}, "lola_north": ...}``
    with the ratio of mean RMSEs. Needs the LOLA north-polar DEM (mirror or download).
    """
    from .model import (
        DEFAULT_SCALE_RECOVERY,
        DEFAULT_VIEWS,
        load_network,
        network_relief,
        network_weights,
        rmse,
        scale_recovery,
    )
    from .sfs import sfs

    sets = {"proc": [procedural_tile(VAL_SEED0 + 100 + k, size) for k in range(n)],
            "lola_north": real_crops(n, size, np.random.default_rng(99), north_fraction=1.0)}
    out: dict[str, dict[str, float]] = {}
    for name, tiles in sets.items():
        rng = np.random.default_rng(5)
        out[name] = {}
        for el in elevations:
            net = load_network(weights if weights else network_weights(el))[0]
            num, den = [], []
            for z, ps in tiles:
                az = float(rng.uniform(0, 360))
                img, coarse, _, _ = make_pair(z, ps, az, el, rng)
                z_up = upsample(coarse, z.shape)
                h = network_relief(img, z_up, ps, az, el, net=net, views=DEFAULT_VIEWS if views is None else views)
                num.append(rmse(scale_recovery(h, z_up, FACTOR, DEFAULT_SCALE_RECOVERY, coarse=coarse), z))
                den.append(rmse(sfs(img, z_up, ps, az, el), z))
            out[name][f"{el:g}"] = round(float(np.mean(num) / np.mean(den)), 4)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock training time (default 8); with --steps only a cap (default: none)")
    p.add_argument("--steps", type=int, default=None,
                   help="train this many steps, the learning-rate schedule following the step count "
                        "(reproducible: the same --seed gives the same weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-proc", type=int, default=300)
    p.add_argument("--n-real", type=int, default=160)
    p.add_argument("--renders", type=int, default=3)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--width", type=int, default=12)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--el-max", type=float, default=60.0, help="highest training sun elevation (deg)")
    p.add_argument("--el-min", type=float, default=1.0, help="lowest training sun elevation (deg)")
    p.add_argument("--north-fraction", type=float, default=0.5,
                   help="fraction of the real crops taken from the north-polar DEM (the rest: global 4 ppd)")
    p.add_argument("--mse-weight", type=float, default=0.0, help="add this weight x squared error to the loss")
    p.add_argument("--init", default=None, help="start from these weights (.pt) instead of random")
    p.add_argument("--snapshot", default=None, help="also save a float32 snapshot here every 100 steps")
    p.add_argument("--out", default=None, help="weights path, a .pt file (default: the committed location)")
    return p


def check_args(args: argparse.Namespace) -> tuple[Path, Path]:
    """Check every training argument and output path before any work is done.

    Parameters
    ----------
    args
        The parsed command line of :func:`main`.

    Returns
    -------
    tuple of Path
        The weights file and its JSON record (the same name with ``.json``).

    Raises
    ------
    InputError
        The first bad argument, with the range it must lie in; an output that cannot be written.
    """
    pt, js = weights_paths() if args.out is None else (Path(args.out), Path(args.out).with_suffix(".json"))
    if pt.suffix != ".pt":
        raise InputError(f"--out {args.out}: the weights file name must end in .pt (the record is written "
                         "beside it with .json); e.g. --out weights.pt")
    for path in (pt, js) + ((Path(args.snapshot),) if args.snapshot else ()):
        writable_parent(path, create=False, kind="file")  # makes no folder: a bad argument leaves none behind

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise InputError(message)

    def finite(v: float) -> bool:
        return math.isfinite(v)

    need(args.minutes is None or (finite(args.minutes) and args.minutes > 0),
         f"--minutes {args.minutes}: give a positive training time in minutes")
    need(args.steps is None or args.steps >= 1, f"--steps {args.steps}: give a number of training steps >= 1")
    need(args.n_proc >= 0, f"--n-proc {args.n_proc}: give a number of procedural terrains >= 0")
    need(args.n_proc <= len(TRAIN_SEEDS),
         f"--n-proc {args.n_proc}: only {len(TRAIN_SEEDS)} procedural training seeds exist "
         f"({TRAIN_SEEDS[0]}..{TRAIN_SEEDS[-1]}; seeds from {VAL_SEED0} are the validation set); "
         f"use --n-proc {len(TRAIN_SEEDS)} or fewer")
    need(args.n_real >= 0, f"--n-real {args.n_real}: give a number of real DEM crops >= 0")
    need(args.n_proc + args.n_real >= 1, "no training terrains: give --n-proc or --n-real above 0")
    need(args.renders >= 1, f"--renders {args.renders}: give a number of renders per terrain >= 1")
    need(args.size >= FACTOR and args.size % FACTOR == 0,
         f"--size {args.size}: give a positive multiple of {FACTOR} (the coarse DEM is the tile block-averaged "
         f"{FACTOR}x), e.g. 96")
    need(0 <= args.north_fraction <= 1,
         f"--north-fraction {args.north_fraction}: give a fraction from 0 to 1")
    if args.n_real > 0:
        limit = max_crop_size(args.north_fraction)
        need(args.size <= limit,
             f"--size {args.size} does not fit the real DEM crops: at most {limit} with --north-fraction "
             f"{args.north_fraction:g} (north-polar DEM {NORTH_DEM_PIXELS} px, global DEM "
             f"{GLOBAL_CROP_ROWS[1] - GLOBAL_CROP_ROWS[0]} rows at |lat| < 60); use a smaller --size, "
             "--north-fraction 1 (north-polar crops only) or --n-real 0")
    need(finite(args.el_min) and args.el_min > 0,
         f"--el-min {args.el_min}: the lowest sun elevation must be above 0 deg (e.g. 1)")
    need(finite(args.el_max) and args.el_min <= args.el_max <= 90,
         f"--el-max {args.el_max}: the highest sun elevation must be from --el-min ({args.el_min:g}) to 90 deg")
    need(args.width >= 1, f"--width {args.width}: give a network width >= 1")
    need(args.batch >= 1, f"--batch {args.batch}: give a batch size >= 1")
    need(args.threads >= 1, f"--threads {args.threads}: give a number of threads >= 1")
    need(finite(args.lr) and args.lr > 0, f"--lr {args.lr}: give a positive learning rate, e.g. 2e-3")
    need(finite(args.mse_weight) and args.mse_weight >= 0,
         f"--mse-weight {args.mse_weight}: give a weight >= 0")
    return pt, js


def _init_state(path: str, width: int, in_channels: int) -> dict:
    """The float32 state of the ``--init`` weights, checked against ``--width`` (new inputs padded with zeros)."""
    import torch

    from .model import load_network

    init_net, _ = load_network(path)  # missing, corrupted, sha256 mismatch -> CheckpointError
    cfg = init_net.config
    if int(cfg["width"]) != width or int(cfg["in_channels"]) > in_channels:
        raise InputError(f"--init {path} holds a network of width {cfg['width']} with {cfg['in_channels']} inputs, "
                         f"which does not fit --width {width} ({in_channels} inputs); pass --width {cfg['width']}")
    state = {k: v.float().cpu() for k, v in init_net.state_dict().items()}  # the loader may put it on a GPU
    w = state["enc1.0.weight"]
    if w.shape[1] < in_channels:  # older weights with fewer inputs: new inputs start at zero
        pad = torch.zeros((w.shape[0], in_channels - w.shape[1]) + tuple(w.shape[2:]))
        state["enc1.0.weight"] = torch.cat([w, pad], 1)
    return state


def write_pair(pt: Path, js: Path, data: bytes, text: str) -> None:
    """Write weights ``data`` to ``pt`` and the record ``text`` to ``js`` so that a failure keeps the old pair.

    Both go to temporary files first; the weights are renamed over the old ones, then the record. If the
    record cannot be renamed, the old weights are put back (or the new ones removed where there were none):
    :func:`~workbench.topography.model.load_network` never finds new weights beside an old record.

    Parameters
    ----------
    pt, js
        The weights file and its JSON record.
    data, text
        The serialised weights and the record.
    """
    old = pt.read_bytes() if pt.is_file() else None
    replaced = False
    try:
        with atomic_path(js) as tmp_js:
            tmp_js.write_text(text)
            with atomic_path(pt) as tmp_pt:
                tmp_pt.write_bytes(data)
            replaced = True
    except BaseException:
        if replaced:
            if old is None:
                pt.unlink(missing_ok=True)
            else:
                with atomic_path(pt) as tmp:
                    tmp.write_bytes(old)
        raise


def main(argv: list[str] | None = None) -> int:
    """Train the network (``python -m workbench.topography.train --help``); 2 with one ``error:`` line on bad input."""
    args = _parser().parse_args(argv)
    try:
        return _train(args, argv)
    except (WorkbenchError, OSError) as exc:  # bad input, file-system problems: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace, argv: list[str] | None) -> int:
    import torch

    from .net import N_INPUTS, TopoUNet

    pt, js = check_args(args)
    minutes = args.minutes if args.minutes is not None or args.steps else 8.0  # None: no time cap
    torch.manual_seed(args.seed)
    init_state = _init_state(args.init, args.width, N_INPUTS) if args.init else None  # before the data
    torch.set_num_threads(args.threads)
    t0 = time.time()
    X, Y = build_dataset(args.n_proc, args.n_real, args.size, args.renders, args.seed, args.el_max,
                         args.el_min, args.north_fraction)
    t_data = time.time() - t0
    print(f"dataset {X.shape} in {t_data:.0f} s", flush=True)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    net = TopoUNet(width=args.width)
    if init_state is not None:
        net.load_state_dict(init_state)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = math.inf if minutes is None else minutes * 60.0
    rng = np.random.default_rng(args.seed + 1)
    step, t1, losses = 0, time.time(), []
    while (args.steps is None or step < args.steps) and time.time() - t1 < budget:
        frac = step / args.steps if args.steps else (time.time() - t1) / budget
        for gparam in opt.param_groups:
            gparam["lr"] = args.lr * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        idx = torch.from_numpy(rng.integers(0, len(Xt), args.batch))
        xb, yb = Xt[idx], Yt[idx]
        k = int(rng.integers(4))  # rot90 augmentation needs the sun vector rotated too: use flips only
        if k == 1:  # east-west mirror: sun east component flips
            xb, yb = xb.flip(-1), yb.flip(-1)
            xb[:, 4] = -xb[:, 4]
        elif k == 2:  # north-south mirror: sun north component flips
            xb, yb = xb.flip(-2), yb.flip(-2)
            xb[:, 5] = -xb[:, 5]
        loss = loss_fn(net(xb), yb, args.mse_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(losses[-50:]):.4f} {time.time() - t1:.0f} s", flush=True)
        if args.snapshot and step % 100 == 0:
            with atomic_path(args.snapshot) as tmp:
                torch.save({"_config": net.config, **net.state_dict()}, tmp)
    capped = args.steps is not None and step < args.steps
    if capped:
        print(f"warning: the --minutes cap stopped training after {step} of {args.steps} steps; "
              "these weights are not reproducible", flush=True)
    net.eval()
    val = validate(net, el_min=args.el_min, el_max=args.el_max)
    print("validation", val, flush=True)
    state = {"_config": net.config, **{k: v.detach().to(torch.float16) for k, v in net.state_dict().items()}}
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    seeds = TRAIN_SEEDS[:args.n_proc]
    record = {
        "name": pt.stem,
        "command": "python -m workbench.topography.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed,
        "config": net.config,
        "data": {
            "procedural": (f"make_terrain seeds {seeds[0]}..{seeds[-1]}" if len(seeds) else "none")
                          + f", {args.size}^2, pixel 1-20 m, randomised SFD slope/density/roughness",
            "real": f"{args.n_real} random {args.size}^2 crops of lola_ldem_north_1600m (fraction "
                    f"{args.north_fraction:g}) and lola_ldem_4ppd (|lat| < 60); south-polar DEM excluded "
                    "(held-out test)",
            "renders_per_terrain": args.renders,
            "sun": f"azimuth U(0, 360), elevation log-uniform in [{args.el_min:g}, {args.el_max:g}] deg; "
                   "Lunar-Lambert, cast shadows, 1% noise",
            "coarse_factor": FACTOR,
            "n_samples": int(len(X)),
        },
        "training": {"steps": step, "max_steps": args.steps, "init": args.init, "batch": args.batch, "lr": args.lr,
                     "minutes": minutes,
                     "schedule": "cosine over " + ("--steps" if args.steps else "--minutes (wall clock)")
                                 + (", stopped early by the --minutes cap" if capped else ""),
                     "loss": "L1 + 2 L1(gradient)"
                     + (f" + {args.mse_weight} MSE (offset-free)" if args.mse_weight else ""),
                     "final_loss": float(np.mean(losses[-50:])) if losses else None,
                     "dataset_seconds": round(t_data, 1), "threads": args.threads,
                     "weights_dtype": "float16"},
        "metrics": {"validation_rmse_m (procedural seeds 5000+, 96^2, mean over 24 tiles)": val,
                    "validation_sun_elevation_deg": [args.el_min, args.el_max]},
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    write_pair(pt, js, data, json.dumps(json_safe(record), indent=2))
    print(json.dumps(record["metrics"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
