"""Unsupervised prospectivity: a fusion convolution in front of a small masked-autoencoder ViT.

The layers (oxides, Mg#, elevation, slope, crater density, maturity; see
:mod:`workbench.analysis.layers`) are z-scored with a recorded :class:`Normalisation`, then

1. a **multi-source fusion convolution** (3x3 by default) mixes the layers, each given with its own
   visibility mask, into a few fused channels;
2. a small **vision Transformer** encodes non-overlapping patches of a tile and a linear head (plus a
   per-pixel 1x1 path from the fused channels) reconstructs every layer of every pixel. Training is
   masked modelling across sources and space (MAE/SimMIM style): whole layers and random patches are
   hidden (zeroed before the fusion, so nothing leaks) and the loss is the error on what was hidden;
3. the **anomaly score** hides each layer in turn and takes the squared z-errors of its prediction
   from the other layers and the surroundings, each divided by that layer's typical error on the
   training Moons; a **score rule** combines them (:data:`SCORE_RULES`: the sum, the sum with
   topography as context only, each error over its standard deviation, or a one-sided Mahalanobis
   distance, with statistics fitted on the training Moons by :func:`calibrate_score`). Ground whose layers do not
   fit together the way they do elsewhere, given its context, scores high. Tiles overlap by half and
   are blended with a tapered weight.

Baselines (scikit-learn): per-layer ``|z|`` sum, Isolation Forest, PCA reconstruction error, all
per-pixel. Candidate regions are connected components above a threshold, with spherical areas.

References
----------
Dosovitskiy, A. et al. (2021), An image is worth 16x16 words: Transformers for image recognition at
scale, ICLR. He, K. et al. (2022), Masked autoencoders are scalable vision learners, CVPR.
Xie, Z. et al. (2022), SimMIM: a simple framework for masked image modeling, CVPR.
Ore Geology Reviews (2025), doi:10.1016/j.oregeorev.2025.106866 (unsupervised ViT with a fusion
convolution for chromite prospectivity). Liu, F. T., Ting, K. M., Zhou, Z.-H. (2008), Isolation
forest, ICDM.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import CheckpointError, InputError
from ..geo import is_global_lon, north_up_flips, wrap_lon_180
from ..io import sha256_file
from ..validate import is_whole_number
from .layers import DEFAULT_LAYERS, Normalisation, layer_first, stack_layers

__all__ = [
    "DEFAULT_LAYERS",
    "Normalisation",
    "ProspectivityModel",
    "stack_layers",
    "fit",
    "anomaly_score",
    "layer_errors",
    "score_from_layer_errors",
    "fit_error_stats",
    "calibrate_score",
    "SCORE_RULES",
    "TOPOGRAPHIC_LAYERS",
    "zscore_score",
    "isolation_forest_score",
    "pca_score",
    "area_percentile",
    "candidate_regions",
    "candidates_on_truth",
    "evaluate",
    "bench",
]


# --------------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------------
def _check_config(cfg: dict) -> dict:
    """``cfg`` (a full :data:`DEFAULT_CONFIG`-style dict) checked for an architecture that can be built and
    trained; one :class:`InputError` naming the broken constraint and the fix."""
    unknown = set(cfg) - set(DEFAULT_CONFIG)
    if unknown:
        raise InputError(f"unknown config keys {sorted(unknown)}; valid: {sorted(DEFAULT_CONFIG)}")
    missing = set(DEFAULT_CONFIG) - set(cfg)
    if missing:
        raise InputError(f"config lacks keys {sorted(missing)}; give all of {sorted(DEFAULT_CONFIG)}")
    arch = cfg["arch"]
    if arch not in ("vit", "conv"):
        raise InputError(f"arch must be 'vit' or 'conv', got {arch!r}")
    for k in ("tile", "patch", "fusion_channels", "fusion_kernel", "dim", "depth", "heads"):
        v = cfg[k]
        if not is_whole_number(v) or v < 1:
            raise InputError(f"config {k!r} must be an integer >= 1, got {v!r}")
    tile, patch = cfg["tile"], cfg["patch"]
    if tile % patch:  # the training masks hide whole patches of the tile (both architectures)
        raise InputError(f"tile ({tile}) must be a multiple of patch ({patch}); e.g. tile="
                         f"{patch * max(1, tile // patch)}")
    if cfg["fusion_kernel"] % 2 == 0:
        raise InputError(f"fusion_kernel must be odd (1, 3, 5, ...) so the fusion convolution keeps the tile size, "
                         f"got {cfg['fusion_kernel']}")
    if arch == "vit" and cfg["dim"] % cfg["heads"]:
        raise InputError(f"dim ({cfg['dim']}) must be divisible by heads ({cfg['heads']}): each attention head "
                         "gets dim / heads channels; change dim or heads")
    if arch == "conv":
        if tile % 4:
            raise InputError(f"arch 'conv' halves the tile twice and doubles it back: tile must be a multiple of 4, "
                             f"got {tile}")
        if cfg["dim"] < 2:
            raise InputError(f"arch 'conv' needs dim >= 2 (its first encoder stage has dim // 2 channels), got "
                             f"{cfg['dim']}")
    return cfg


def _build_net(n_layers: int, cfg: dict):
    import torch
    from torch import nn

    _check_config(cfg)

    class FusionMAE(nn.Module):
        """Fusion convolution + ViT encoder over patches + linear pixel head, with a per-pixel skip."""

        def __init__(self, n_layers: int, tile: int, patch: int, fusion_channels: int, fusion_kernel: int,
                     dim: int, depth: int, heads: int):
            super().__init__()
            self.n_layers, self.tile, self.patch = n_layers, tile, patch
            self.grid = tile // patch
            # input: z-scored layers with masked entries zeroed, plus one mask channel per layer
            self.fusion = nn.Sequential(
                nn.Conv2d(2 * n_layers, fusion_channels, fusion_kernel, padding=fusion_kernel // 2,
                          padding_mode="replicate"),
                nn.GELU(),
            )
            self.embed = nn.Conv2d(fusion_channels, dim, patch, stride=patch)
            self.pos = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
            nn.init.trunc_normal_(self.pos, std=0.02)
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, patch * patch * n_layers)
            # per-pixel path: cross-layer relations at full resolution
            self.pixel_head = nn.Sequential(
                nn.Conv2d(fusion_channels, 32, 1), nn.GELU(), nn.Conv2d(32, n_layers, 1))

        def forward(self, x, mask):
            """x: (B, C, T, T) z-scores; mask: (B, C, T, T) float, 1 = hidden. Returns (B, C, T, T)."""
            b = x.shape[0]
            p, g = self.patch, self.grid
            h = self.fusion(torch.cat([x * (1.0 - mask), mask], dim=1))
            tok = self.embed(h).flatten(2).transpose(1, 2)  # (B, N, dim)
            tok = self.norm(self.encoder(tok + self.pos))
            out = self.head(tok).view(b, g, g, self.n_layers, p, p).permute(0, 3, 1, 4, 2, 5)
            return out.reshape(b, self.n_layers, g * p, g * p) + self.pixel_head(h)

    class FusionConvAE(nn.Module):
        """Same fusion convolution and masked objective, with a convolutional encoder-decoder."""

        def __init__(self, n_layers: int, tile: int, patch: int, fusion_channels: int, fusion_kernel: int,
                     dim: int, depth: int, heads: int):
            super().__init__()
            self.n_layers = n_layers
            fc = fusion_channels
            self.fusion = nn.Sequential(
                nn.Conv2d(2 * n_layers, fc, fusion_kernel, padding=fusion_kernel // 2, padding_mode="replicate"),
                nn.GELU(),
            )
            enc = [nn.Conv2d(fc, dim // 2, 3, stride=2, padding=1), nn.GELU(),
                   nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1), nn.GELU()]
            for _ in range(depth):
                enc += [nn.Conv2d(dim, dim, 3, padding=1), nn.GELU()]
            self.encoder = nn.Sequential(*enc)
            self.decoder = nn.Sequential(
                nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), nn.GELU(),
                nn.ConvTranspose2d(dim // 2, fc, 2, stride=2), nn.GELU(),
                nn.Conv2d(fc, n_layers, 1))
            self.pixel_head = nn.Sequential(
                nn.Conv2d(fc, 32, 1), nn.GELU(), nn.Conv2d(32, n_layers, 1))

        def forward(self, x, mask):
            h = self.fusion(torch.cat([x * (1.0 - mask), mask], dim=1))
            return self.decoder(self.encoder(h)) + self.pixel_head(h)

    cfg = dict(cfg)
    arch = cfg.pop("arch", "vit")
    if arch == "vit":
        return FusionMAE(n_layers, **cfg)
    if arch == "conv":
        return FusionConvAE(n_layers, **cfg)
    raise InputError(f"arch must be 'vit' or 'conv', got {arch!r}")


DEFAULT_CONFIG: dict = {
    "arch": "vit",
    "tile": 32,
    "patch": 4,
    "fusion_channels": 16,
    "fusion_kernel": 3,
    "dim": 64,
    "depth": 3,
    "heads": 4,
}


def _train_mask(rng: np.random.Generator, b: int, c: int, t: int, p: int, patch_ratio: tuple[float, float]
                ) -> np.ndarray:
    """(b, c, t, t) float masks: 1-3 whole layers hidden per tile, and half the time random patches."""
    g = t // p
    m = np.zeros((b, c, g, g), dtype="float32")
    for i in range(b):
        k = rng.integers(1, min(3, c - 1) + 1) if c > 1 else 1
        m[i, rng.choice(c, size=k, replace=False)] = 1.0
        if rng.random() < 0.5:
            m[i, :, rng.random((g, g)) < rng.uniform(*patch_ratio)] = 1.0
    return m.repeat(p, axis=2).repeat(p, axis=3)


@dataclass
class ProspectivityModel:
    """A trained fusion-conv + masked-autoencoder ViT with its normalisation and training record."""

    net: object
    normalisation: Normalisation
    config: dict
    history: list[float] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    error_scale: tuple[float, ...] = ()
    #: Statistics of the per-layer errors on the training Moons (:func:`calibrate_score`), and the
    #: scoring rule :func:`anomaly_score` uses by default.
    error_stats: dict = field(default_factory=dict)
    score_rule: str = "sum"

    @property
    def layers(self) -> tuple[str, ...]:
        return self.normalisation.layers

    def save(self, path: str | Path) -> Path:
        """Write the weights, config and normalisation to one ``.pt`` file and its record ``<path>.json``.

        Both are written atomically. The JSON record holds the file's sha256, the format, config, layers and
        score rule; :meth:`load` checks the sha256 against it.

        Returns
        -------
        pathlib.Path
            The ``.pt`` path.
        """
        import torch

        from ..io import atomic_path

        path = Path(path)
        state = {
            "format": CHECKPOINT_FORMAT,
            "config": dict(self.config),
            "normalisation": self.normalisation.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "history": [float(v) for v in self.history],
            "error_scale": [float(v) for v in self.error_scale],
            "error_stats": {k: (list(map(str, v)) if k == "layers" else np.asarray(v, "float64").tolist())
                            for k, v in self.error_stats.items()},
            "score_rule": self.score_rule,
            "info": {k: v for k, v in self.info.items() if isinstance(v, int | float | str)},
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        record = {"file": path.name, "sha256": sha256_file(path), "format": CHECKPOINT_FORMAT,
                  "config": state["config"], "layers": list(self.layers), "score_rule": self.score_rule,
                  "info": state["info"]}
        with atomic_path(_record_path(path)) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2, default=float))
        return path

    @classmethod
    def load(cls, path: str | Path, sha256: str | None = None) -> ProspectivityModel:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path
            The ``.pt`` file.
        sha256
            Expected sha256 of the file; by default the one in the record ``<path>.json`` written beside
            it by :meth:`save` (a file without a record is loaded unchecked).

        Raises
        ------
        CheckpointError
            Missing, unsafe or corrupt file; a sha256 that does not match the record; not a prospectivity
            checkpoint; or contents that do not fit together (config, normalisation, error scale, error
            statistics, score rule, weights).
        """
        from ..config import get_device
        from ..validate import load_weights  # torch.load(weights_only=True); unsafe/corrupt -> CheckpointError

        path = Path(path)
        rec_path = _record_path(path)
        if sha256 is None and path.is_file() and rec_path.is_file():
            try:
                sha256 = json.loads(rec_path.read_text())["sha256"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"the record {rec_path} of checkpoint {path} is unreadable ({exc}); save the "
                                      "model again (or delete the record to load the file unchecked)") from None
        if sha256 is not None and path.is_file() and sha256_file(path) != str(sha256):
            raise CheckpointError(f"checkpoint {path} sha256 does not match its record; the file is corrupt or was "
                                  "replaced: save or train the model again")
        state = load_weights(path)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a prospectivity checkpoint; train one with fit()")
        try:
            norm, cfg, scale, stats, rule = _checked_state(state)
        except (InputError, KeyError, TypeError, ValueError) as exc:
            msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            raise CheckpointError(f"checkpoint {path} is inconsistent: {msg}; save or train the model again") from None
        net = _build_net(len(norm.layers), cfg)
        try:
            net.load_state_dict(state["state_dict"])
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not match the architecture: {exc}") from exc
        net.to(get_device()).eval()
        info = state.get("info", {})
        return cls(net, norm, cfg, [float(v) for v in state.get("history", [])],
                   dict(info) if isinstance(info, dict) else {}, scale, stats, rule)


#: Format tag of :meth:`ProspectivityModel.save` checkpoints.
CHECKPOINT_FORMAT = "workbench.prospectivity/1"


def _record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _checked_state(state: dict) -> tuple[Normalisation, dict, tuple[float, ...], dict, str]:
    """The parts of a checkpoint dict, checked to fit together; InputError/KeyError/TypeError/ValueError
    otherwise (:meth:`ProspectivityModel.load` turns them into one CheckpointError)."""
    for key in ("config", "normalisation", "state_dict", "error_scale"):
        if key not in state:
            raise InputError(f"it has no {key!r} entry")
    cfg = state["config"]
    if not isinstance(cfg, dict):
        raise InputError(f"its config is a {type(cfg).__name__}, not a dict")
    cfg = _check_config({"arch": "vit", **cfg})  # checkpoints from before the conv variant have no 'arch'
    nd = state["normalisation"]
    if not isinstance(nd, dict) or not {"layers", "mean", "std"} <= set(nd):
        raise InputError("its normalisation lacks layers, mean or std")
    layers = [str(v) for v in nd["layers"]]
    mean = np.asarray(nd["mean"], dtype="float64")
    std = np.asarray(nd["std"], dtype="float64")
    c = len(layers)
    if c < 2 or len(set(layers)) != c:
        raise InputError(f"its normalisation layers {layers} are not 2 or more distinct names")
    if mean.shape != (c,) or std.shape != (c,):
        raise InputError(f"its normalisation has {c} layers but {mean.size} means and {std.size} standard deviations")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise InputError("its normalisation has a non-finite mean or a standard deviation that is not > 0")
    norm = Normalisation(tuple(layers), tuple(float(v) for v in mean), tuple(float(v) for v in std))
    scale = np.asarray(state["error_scale"], dtype="float64")
    if scale.shape != (c,) or not (np.isfinite(scale).all() and (scale > 0).all()):
        raise InputError(f"its error_scale must hold {c} finite values > 0 (one per layer), got {scale.tolist()}")
    stats_in = state.get("error_stats") or {}
    stats: dict = {}
    if stats_in:
        if not isinstance(stats_in, dict) or set(stats_in) != {"layers", "mean", "std", "cov"}:
            raise InputError("its error_stats must have exactly layers, mean, std and cov")
        names = [str(v) for v in stats_in["layers"]]
        k = len(names)
        if not names or len(set(names)) != k or not set(names) <= set(layers):
            raise InputError(f"its error_stats layers {names} are not distinct layers of the model {layers}")
        stats = {"layers": names, **{key: np.asarray(stats_in[key], dtype="float64") for key in ("mean", "std", "cov")}}
        if stats["mean"].shape != (k,) or stats["std"].shape != (k,) or stats["cov"].shape != (k, k):
            raise InputError(f"its error_stats mean/std/cov do not match its {k} layers")
    rule = state.get("score_rule", "sum")
    if rule not in SCORE_RULES:
        raise InputError(f"its score_rule {rule!r} is not one of {SCORE_RULES}")
    if not isinstance(state["state_dict"], dict):
        raise InputError("its state_dict is not a dict of tensors")
    return norm, cfg, tuple(float(v) for v in scale), stats, rule


def _tiles_from(z: np.ndarray, tile: int, n: int, rng: np.random.Generator, periodic: bool = True) -> np.ndarray:
    """Random NaN-free tiles (n, C, tile, tile) from a (C, H, W) array; lon wraps when ``periodic`` (a
    global grid), otherwise tiles stay inside it (a regional grid's east and west edges do not meet)."""
    c, h, w = z.shape
    if h < tile or w < tile:
        raise InputError(f"grid {h}x{w} is smaller than the tile size {tile}; use a smaller tile")
    out = np.empty((n, c, tile, tile), dtype="float32")
    k = 0
    tries = 0
    while k < n:
        tries += 1
        if tries > 50 * n:
            raise InputError("could not find NaN-free training tiles; fill or mask NaN gaps first")
        r = rng.integers(0, h - tile + 1)
        q = rng.integers(0, w if periodic else w - tile + 1)
        cols = (q + np.arange(tile)) % w
        t = z[:, r : r + tile][:, :, cols]
        if not np.isfinite(t).all():
            continue
        if rng.random() < 0.5:
            t = t[:, :, ::-1]
        if rng.random() < 0.5:
            t = t[:, ::-1, :]
        out[k] = t
        k += 1
    return out


def fit(
    stacks: xr.DataArray | Sequence[xr.DataArray],
    config: dict | None = None,
    steps: int = 1500,
    batch_size: int = 32,
    lr: float = 2e-3,
    patch_ratio: tuple[float, float] = (0.25, 0.5),
    seed: int = 0,
    max_seconds: float | None = None,
    progress=None,
) -> ProspectivityModel:
    """Train the fusion-conv + masked-autoencoder ViT on random tiles of one or several layer stacks.

    Each training tile hides 1-3 whole layers (and, half the time, also a random 25-50% of the patches
    in every layer); the loss is the mean squared z-error on the hidden entries. The network thus learns
    to predict every layer from the other layers and the spatial context (cross-source masked
    modelling). After training, the per-layer error scale on fresh training tiles is recorded so that
    the anomaly score weighs every layer equally.

    Parameters
    ----------
    stacks
        ``(layer, lat, lon)`` stacks from :func:`stack_layers` (training Moons/regions; no labels). Other
        dim orders and storage layouts are put north-up, east-right, from −180°, like :func:`layer_errors`.
    config
        Architecture overrides of :data:`DEFAULT_CONFIG`: ``arch`` (``"vit"``, the masked-autoencoder
        Transformer, or ``"conv"``, a convolutional encoder-decoder with the same fusion convolution and
        objective, for comparison), tile, patch, fusion_channels, fusion_kernel, dim, depth, heads. All are
        integers >= 1; ``tile`` is a multiple of ``patch`` (and of 4 for ``"conv"``), ``dim`` a multiple
        of ``heads`` (``"vit"``) and ``fusion_kernel`` odd.
    steps, batch_size, lr
        AdamW optimisation with a one-cycle learning-rate schedule (``lr > 0``).
    patch_ratio
        ``(low, high)`` range, within [0, 1], of the fraction of patches hidden in the random-patch masks.
    seed
        Seeds numpy and torch (tile sampling, masks, initialisation).
    max_seconds
        Stop early after this much wall time.
    progress
        Optional callable ``progress(step, steps, loss)``; training stops early when it returns ``False``.

    Returns
    -------
    ProspectivityModel

    Raises
    ------
    InputError
        An invalid architecture (the constraint it breaks is named), training setting or stack.
    """
    import torch

    from ..config import get_device

    cfg = _check_config({**DEFAULT_CONFIG, **(config or {})})
    if steps < 1 or batch_size < 1:
        raise InputError("steps and batch_size must be >= 1")
    if not (np.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a finite learning rate > 0, got {lr}")
    lo, hi = patch_ratio
    if not 0.0 <= lo <= hi <= 1.0:
        raise InputError(f"patch_ratio must be (low, high) fractions with 0 <= low <= high <= 1, got {patch_ratio}")
    stacks = [stacks] if isinstance(stacks, xr.DataArray) else list(stacks)
    if not stacks:
        raise InputError("give at least one training stack")
    stacks = [_network_layout(s)[0] for s in stacks]  # the same tiles whatever the storage order
    norm = Normalisation.fit(stacks)
    zs = [_rolled(norm.apply(s).values, _network_layout(s)[2]) for s in stacks]
    periodic = [is_global_lon(s["lon"].values) for s in stacks]
    c = len(norm.layers)
    if c < 2:
        raise InputError("the network predicts layers from each other: stack at least 2 layers")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = get_device()
    net = _build_net(c, cfg).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    t, p = cfg["tile"], cfg["patch"]
    history: list[float] = []
    t0 = time.perf_counter()
    net.train()
    for _step in range(steps):
        which = rng.integers(0, len(zs), size=batch_size)
        x = np.concatenate([_tiles_from(zs[i], t, 1, rng, periodic[i]) for i in which])
        m = _train_mask(rng, batch_size, c, t, p, patch_ratio)
        xt = torch.from_numpy(x).to(dev)
        mt = torch.from_numpy(m).to(dev)
        rec = net(xt, mt)
        loss = (((rec - xt) ** 2) * mt).sum() / mt.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if progress is not None and progress(len(history), steps, history[-1]) is False:
            break  # the caller asked to stop (e.g. a Stop button)
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    net.eval()
    # per-layer error scale on fresh training tiles (not the score's test data)
    calib = np.concatenate([_tiles_from(zs[i % len(zs)], t, 1, rng, periodic[i % len(zs)]) for i in range(64)])
    err = _layer_errors(net, calib).mean(axis=(0, 2, 3))
    scale = tuple(float(max(v, 1e-6)) for v in err)
    info = {"steps_done": len(history), "train_seconds": round(time.perf_counter() - t0, 2), "seed": seed}
    return ProspectivityModel(net, norm, cfg, history, info, scale)


def _network_layout(stack: xr.DataArray) -> tuple[xr.DataArray, dict[str, slice], int]:
    """``stack`` in the layout the network tiles: dims ``(layer, lat, lon)``, rows north-up, columns east-right.

    Returns the stack so ordered, the :func:`~workbench.geo.north_up_flips` that restore the caller's row and
    column order, and, on a global grid, the column shift that puts the westernmost longitude of −180…180
    first (a 0…360 grid thus tiles like the same grid on −180…180; ``0`` on a regional grid, whose columns
    stay contiguous across the seam). The network is not symmetric under a transpose, a flip or a shift of
    the tiling, so without this the same pixels stored another way would score differently.
    """
    stack = layer_first(stack)
    flips = north_up_flips(stack)
    if flips:
        stack = stack.isel(flips)
    lon = np.asarray(stack["lon"].values, dtype=float)
    shift = int(np.argmin(wrap_lon_180(lon))) if is_global_lon(lon) else 0
    return stack, flips, shift


def _rolled(a: np.ndarray, shift: int) -> np.ndarray:
    """``a`` with its last axis (longitude) rolled so that column ``shift`` comes first."""
    return np.roll(a, -shift, axis=-1) if shift else a


def _layer_errors(net, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Squared z-errors (B, C, T, T): layer k predicted with layer k hidden everywhere in the tile."""
    import torch

    from ..config import get_device

    dev = get_device()
    b, c, t, _ = x.shape
    out = np.empty(x.shape, dtype="float32")
    eye = torch.eye(c, device=dev)[:, :, None, None].expand(c, c, t, t)
    with torch.inference_mode():
        for b0 in range(0, b, batch_size):
            xt = torch.from_numpy(x[b0 : b0 + batch_size]).to(dev)
            n = xt.shape[0]
            xx = xt.repeat_interleave(c, dim=0)  # (n*c, C, T, T): copy k hides layer k
            mm = eye.repeat(n, 1, 1, 1)
            rec = net(xx, mm)
            e = ((rec - xx) ** 2 * mm).sum(1).view(n, c, t, t)
            out[b0 : b0 + n] = e.cpu().numpy()
    return out


def _score_array(model: ProspectivityModel, z: np.ndarray, batch_size: int = 16, periodic: bool = True
                 ) -> np.ndarray:
    """(C, H, W) scaled squared error of each layer predicted from the others and the context; tiles wrap
    in longitude only on a global (``periodic``) grid."""
    t = model.config["tile"]
    c, h, w = z.shape
    if h < t or (not periodic and w < t):
        raise InputError(f"grid {h}x{w} is smaller than the tile size {t}; use a larger region or a smaller tile")
    valid = np.isfinite(z).all(axis=0)
    zf = np.where(np.isfinite(z), z, 0.0).astype("float32")
    stride = t // 2
    rows = list(range(0, h - t + 1, stride))
    if rows[-1] != h - t:
        rows.append(h - t)
    if periodic:
        cols = list(range(0, w, stride))  # lon wraps
    else:
        cols = list(range(0, w - t + 1, stride))
        if cols[-1] != w - t:
            cols.append(w - t)
    # taper tile edges (less context there) in the overlap average
    ramp = np.minimum(np.arange(t) + 0.5, t - np.arange(t) - 0.5) / (t / 2)
    wt = np.outer(ramp, ramp) ** 2
    inv = 1.0 / np.asarray(model.error_scale, dtype="float32")[:, None, None]
    acc = np.zeros((c, h, w), dtype="float64")
    cnt = np.zeros((h, w), dtype="float64")
    pos = [(r, q) for r in rows for q in cols]
    chunk_n = 64
    for b0 in range(0, len(pos), chunk_n):
        chunk = pos[b0 : b0 + chunk_n]
        x = np.stack([zf[:, r : r + t][:, :, (q + np.arange(t)) % w] for r, q in chunk])
        err = _layer_errors(model.net, x, batch_size) * inv
        for (r, q), e in zip(chunk, err, strict=True):
            cc = (q + np.arange(t)) % w
            acc[:, r : r + t, cc] += e * wt
            cnt[r : r + t, cc] += wt
    out = acc / np.maximum(cnt, 1e-12)
    out[:, ~valid] = np.nan
    return out


def _as_score(values: np.ndarray, like: xr.DataArray, name: str, method: str) -> xr.DataArray:
    da = xr.DataArray(values.astype("float32"), coords={"lat": like["lat"], "lon": like["lon"]},
                      dims=("lat", "lon"), name=name)
    da.attrs.update(units="1", method=method, crs=like.attrs.get("crs", "IAU_2015:30100"),
                    long_name=f"anomaly score ({method}); higher is more anomalous")
    return da


def layer_errors(model: ProspectivityModel, stack: xr.DataArray, batch_size: int = 16) -> xr.DataArray:
    """Per-layer network errors ``(layer, lat, lon)``: each layer hidden and predicted from the others.

    Each value is the squared z-error divided by that layer's typical error on the training Moons
    (about 1 on ordinary ground). Tiles overlap by half and are blended with a tapered weight. NaN (or
    ±inf) in any layer gives NaN at that pixel. :func:`anomaly_score` combines the layers' errors with
    a score rule (:func:`score_from_layer_errors`; the default rule ``"sum"`` adds them).

    The stack is tiled north-up, east-right and, on a global grid, from −180° east, whatever its storage:
    a stack stored south-up, west-right, on 0…360° longitudes or with its dims in another order gives the
    same errors at the same coordinates. The result has dims ``(layer, lat, lon)`` and the stack's row
    order, column order and coordinates.

    Parameters
    ----------
    model
        A trained :class:`ProspectivityModel`.
    stack
        Dims ``layer``, ``lat``, ``lon`` (any order), the model's layers in its order.
    batch_size
        Tiles per network call.

    Returns
    -------
    xarray.DataArray
        Scaled squared errors, units ``"1"``.
    """
    canon, flips, shift = _network_layout(stack)
    z = _rolled(model.normalisation.apply(canon).values, shift)
    e = _score_array(model, z, batch_size, is_global_lon(canon["lon"].values)).astype("float32")
    out = xr.DataArray(_rolled(e, -shift), coords=canon.coords, dims=canon.dims, name="layer_error")
    if flips:
        out = out.isel(flips)  # back to the caller's row and column order
    out.attrs.update(units="1", long_name="scaled squared prediction error per layer",
                     crs=stack.attrs.get("crs", "IAU_2015:30100"))
    return out


#: Layers that describe the terrain rather than the composition: with ``rule="context"`` they stay
#: visible to the network as context, but their prediction errors are not scored.
TOPOGRAPHIC_LAYERS: tuple[str, ...] = ("elevation", "slope", "roughness", "crater_density")

#: Ways of combining the per-layer errors into one score (see :func:`score_from_layer_errors`).
SCORE_RULES: tuple[str, ...] = ("sum", "weighted", "mahalanobis", "context", "context_weighted",
                                 "context_mahalanobis")


def fit_error_stats(errors: xr.DataArray | Sequence[xr.DataArray]) -> dict:
    """Statistics of the per-layer errors on training Moons, for the ``weighted`` and ``mahalanobis`` rules.

    Parameters
    ----------
    errors
        One or several :func:`layer_errors` maps ``(layer, lat, lon)`` of the *training* Moons (no
        labels are used; the score must never be calibrated on the Moons it is evaluated on).

    Returns
    -------
    dict
        ``layers`` (names), ``mean`` and ``std`` (per layer) and ``cov`` (layer x layer covariance),
        over the area-weighted finite pixels.
    """
    from ..geo import area_weights

    errors = [errors] if isinstance(errors, xr.DataArray) else list(errors)
    if not errors:
        raise InputError("give the layer errors of at least one training Moon")
    errors = [layer_first(e, "the error map") for e in errors]
    names = [str(v) for v in errors[0]["layer"].values]
    xs, ws = [], []
    for e in errors:
        if [str(v) for v in e["layer"].values] != names:
            raise InputError("all error maps must have the same layers in the same order")
        x = e.values.reshape(len(names), -1).T
        w = np.broadcast_to(area_weights(e.isel(layer=0)).values, e.shape[1:]).ravel()
        ok = np.isfinite(x).all(axis=1)
        xs.append(x[ok].astype("float64"))
        ws.append(w[ok])
    x, w = np.concatenate(xs), np.concatenate(ws)
    if len(x) <= len(names):
        raise InputError("too few finite pixels in the training error maps to fit their statistics")
    mean = np.average(x, axis=0, weights=w)
    cov = np.cov(x, rowvar=False, aweights=w)
    return {"layers": names, "mean": mean, "std": np.sqrt(np.diag(cov)), "cov": cov}


def calibrate_score(model: ProspectivityModel, train: xr.DataArray | Sequence[xr.DataArray],
                    rule: str | None = None, batch_size: int = 16) -> ProspectivityModel:
    """Fit the error statistics of ``model`` on its training stacks (in place) and set its score rule.

    Returns the model, whose :attr:`ProspectivityModel.error_stats` are then saved with it.
    """
    train = [train] if isinstance(train, xr.DataArray) else list(train)
    model.error_stats = fit_error_stats([layer_errors(model, t, batch_size) for t in train])
    if rule is not None:
        _check_rule(rule)
        model.score_rule = rule
    return model


def _check_rule(rule: str) -> None:
    if rule not in SCORE_RULES:
        raise InputError(f"rule must be one of {SCORE_RULES}, got {rule!r}")


def anomaly_score(model: ProspectivityModel, stack: xr.DataArray, batch_size: int = 16,
                  layers: Sequence[str] | None = None, rule: str | None = None) -> xr.DataArray:
    """Network anomaly score on a ``(layer, lat, lon)`` stack.

    For every layer in turn the layer is hidden and predicted from the other layers and the spatial
    context (:func:`layer_errors`, each scaled by its typical error on the training Moons, so about one
    per layer on ordinary ground); the errors are combined by ``rule`` (default: the model's
    :attr:`~ProspectivityModel.score_rule`), see :func:`score_from_layer_errors`. NaN in any layer gives
    NaN score at that pixel.

    ``stack`` has dims ``layer``, ``lat``, ``lon`` in any order and any storage (north- or south-up,
    east- or west-right, −180…180 or 0…360 longitudes): the network always sees it north-up, east-right
    from −180° (:func:`layer_errors`), so the score at a coordinate does not depend on the storage. The
    score has dims ``(lat, lon)`` with the stack's coordinates and row/column order.
    """
    err = layer_errors(model, stack, batch_size)
    return score_from_layer_errors(err, layers, rule=rule or model.score_rule, stats=model.error_stats)


def score_from_layer_errors(err: xr.DataArray, layers: Sequence[str] | None = None, rule: str = "sum",
                            stats: dict | None = None) -> xr.DataArray:
    """Combine :func:`layer_errors` into one network anomaly score.

    Parameters
    ----------
    err
        ``(layer, lat, lon)`` scaled squared errors (:func:`layer_errors`; other dim orders are
        transposed by name).
    layers
        Score only these layers (all by default); the others remain context for the network.
    rule
        ``"sum"``: the sum of the errors (every layer weighs the same on ordinary ground).
        ``"context"``: the sum over the non-topographic layers only (:data:`TOPOGRAPHIC_LAYERS` are
        context: seen by the encoder, not scored). ``"weighted"``: each error divided by its standard
        deviation on the training Moons, so layers whose errors are erratic there (unpredictable
        ground, e.g. crater rims in slope) weigh less. ``"mahalanobis"``: the squared Mahalanobis
        distance of the per-layer error vector from its mean on the training Moons (Mahalanobis 1936),
        which also discounts errors that co-occur in many layers; only excesses above the training
        mean count (a pixel predicted *better* than usual is not anomalous).
        ``"context_weighted"``, ``"context_mahalanobis"``: these two over the non-topographic layers.
    stats
        :func:`fit_error_stats` of the training Moons (needed by ``weighted`` and ``mahalanobis``).

    References
    ----------
    Mahalanobis, P. C. (1936), On the generalised distance in statistics, Proc. Natl. Inst. Sci.
    India 2, 49-55.
    """
    _check_rule(rule)
    err = layer_first(err, "err")
    names = [str(v) for v in err["layer"].values]
    if layers is not None:
        bad = [k for k in layers if k not in names]
        if bad or not len(layers):
            raise InputError(f"choose one or more of the model's layers {names}; got {list(layers)}")
    chosen = list(layers) if layers is not None else names
    if rule.startswith("context"):
        chosen = [k for k in chosen if k not in TOPOGRAPHIC_LAYERS]
        if not chosen:
            raise InputError(f"rule {rule!r} scores only non-topographic layers; none among "
                             f"{list(layers) if layers is not None else names}: choose a rule without context "
                             "or include a non-topographic layer")
    e = err.sel(layer=chosen)
    if rule in ("sum", "context"):
        return _as_score(e.sum("layer", skipna=False).values, err, "anomaly_score", "network")
    if not stats:
        raise InputError(f"rule {rule!r} needs the error statistics of the training Moons: run "
                         "calibrate_score(model, train) (or pass stats=fit_error_stats(train_errors))")
    missing = [k for k in chosen if k not in stats["layers"]]
    if missing:
        raise InputError(f"the error statistics have no layers {missing}; refit them with these layers")
    idx = [list(stats["layers"]).index(k) for k in chosen]
    x = e.values.reshape(len(chosen), -1).T.astype("float64")
    mean = np.asarray(stats["mean"])[idx]
    if rule.endswith("weighted"):
        std = np.maximum(np.asarray(stats["std"])[idx], 1e-12)
        s = (x / std).sum(axis=1)
    else:
        cov = np.asarray(stats["cov"])[np.ix_(idx, idx)]
        d = np.maximum(x - mean, 0.0)
        s = np.einsum("ij,jk,ik->i", d, np.linalg.pinv(cov, hermitian=True), d)
    return _as_score(s.reshape(err.shape[1:]), err, "anomaly_score", f"network ({rule})")


# --------------------------------------------------------------------------------------------------
# baselines (per pixel)
# --------------------------------------------------------------------------------------------------
def _pixels(z: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    x = z.values.reshape(z.shape[0], -1).T
    ok = np.isfinite(x).all(axis=1)
    return x, ok


def zscore_score(stack: xr.DataArray, normalisation: Normalisation) -> xr.DataArray:
    """Baseline: sum over layers of ``|z|`` (z-scores from ``normalisation``).

    ``stack`` has dims ``layer``, ``lat``, ``lon`` in any order; the score has dims ``(lat, lon)``.
    """
    stack = layer_first(stack)
    z = normalisation.apply(stack)
    return _as_score(np.abs(z.values).sum(axis=0), stack, "zscore", "zscore")


def _train_matrix(train: Sequence[xr.DataArray], normalisation: Normalisation, max_pixels: int,
                  seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xs = []
    train = [train] if isinstance(train, xr.DataArray) else list(train)
    if not train:
        raise InputError("give at least one training stack")
    for s in train:
        x, ok = _pixels(normalisation.apply(layer_first(s, "a training stack")))
        xs.append(x[ok])
    x = np.concatenate(xs)
    if len(x) > max_pixels:
        x = x[rng.choice(len(x), max_pixels, replace=False)]
    return x


def isolation_forest_score(train: Sequence[xr.DataArray], stack: xr.DataArray, normalisation: Normalisation,
                           seed: int = 0, max_pixels: int = 200_000) -> xr.DataArray:
    """Baseline: Isolation Forest (Liu et al. 2008) fitted on training pixels; score = ``-score_samples``.

    Stacks have dims ``layer``, ``lat``, ``lon`` in any order; the score has dims ``(lat, lon)``.
    """
    from sklearn.ensemble import IsolationForest

    stack = layer_first(stack)
    xtr = _train_matrix(train, normalisation, max_pixels, seed)
    forest = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1).fit(xtr)
    x, ok = _pixels(normalisation.apply(stack))
    s = np.full(len(x), np.nan)
    s[ok] = -forest.score_samples(x[ok])
    return _as_score(s.reshape(stack.shape[1:]), stack, "isolation_forest", "isolation_forest")


def pca_score(train: Sequence[xr.DataArray], stack: xr.DataArray, normalisation: Normalisation,
              n_components: int | None = None, seed: int = 0, max_pixels: int = 500_000) -> xr.DataArray:
    """Baseline: PCA reconstruction error (sum of squared z residuals) with ``n_components``.

    ``n_components`` must lie in ``[1, C - 1]`` for ``C`` layers (``None``: ``max(1, C // 2)``). Stacks
    have dims ``layer``, ``lat``, ``lon`` in any order; the score has dims ``(lat, lon)``.
    """
    from sklearn.decomposition import PCA

    stack = layer_first(stack)
    xtr = _train_matrix(train, normalisation, max_pixels, seed)
    k = max(1, xtr.shape[1] // 2) if n_components is None else n_components
    if not is_whole_number(k) or not 1 <= k < xtr.shape[1]:
        raise InputError(f"n_components must be an integer in [1, {xtr.shape[1] - 1}] (fewer than the "
                         f"{xtr.shape[1]} layers), got {k!r}")
    pca = PCA(n_components=k, random_state=seed).fit(xtr)
    x, ok = _pixels(normalisation.apply(stack))
    s = np.full(len(x), np.nan)
    rec = pca.inverse_transform(pca.transform(x[ok]))
    s[ok] = ((x[ok] - rec) ** 2).sum(axis=1)
    return _as_score(s.reshape(stack.shape[1:]), stack, "pca", "pca")


# --------------------------------------------------------------------------------------------------
# candidates and evaluation
# --------------------------------------------------------------------------------------------------
def _refuse_inf(s: np.ndarray) -> None:
    """One :class:`InputError` when the score array ``s`` holds ±inf (its ranking is undefined)."""
    n_inf = int(np.isinf(s).sum())
    if n_inf:
        raise InputError(f"score has {n_inf} infinite value(s); the ranking of an infinite score is undefined: "
                         "replace them with a large finite value or NaN (NaN pixels are left out)")


def area_percentile(score: xr.DataArray, pct: float) -> float:
    """The score below which ``pct`` % of the *area* of the finite-score pixels lies.

    On a latitude-longitude grid a pixel near a pole covers ``cos(lat)`` of an equatorial pixel's area,
    so a percentile of pixels over-weights the polar regions: on a global 2 px/deg grid whose score is the
    latitude, the top 1 % of pixels (north of 88.25°) is 0.02 % of the Moon's area. Each pixel is weighted
    here by its spherical area (:func:`workbench.geo.area_weights`), as :func:`evaluate` weights its "top 1 %
    of area", so ``score > area_percentile(score, 99)`` flags about 1 % of the scored area. Weighted
    quantile with the mid-point plotting position (:func:`workbench.analysis.asymmetry.weighted_quantile`;
    Hyndman & Fan 1996, definition 5).

    Parameters
    ----------
    score
        (lat, lon) score; NaN pixels are left out.
    pct
        Percentile of area in [0, 100].

    Returns
    -------
    float
        The threshold, in the score's units.

    Raises
    ------
    InputError
        ``pct`` outside [0, 100], a grid without lat/lon coordinates, a score with ±inf values or no finite
        value.

    Examples
    --------
    >>> import workbench.geo as geo
    >>> lat = geo.global_template(1).fillna(0.0)
    >>> lat = lat + lat["lat"]  # the score is the latitude: 99 % of the area lies south of asin(0.98)
    >>> round(area_percentile(lat, 99.0), 1), round(float(np.degrees(np.arcsin(0.98))), 1)
    (78.5, 78.5)
    """
    from ..geo import area_weights
    from .asymmetry import weighted_quantile

    if not 0.0 <= pct <= 100.0:
        raise InputError(f"pct is a percentile of area and must lie in [0, 100] (99 = the top 1 %), got {pct}")
    s = score.transpose("lat", "lon").values if set(score.dims) == {"lat", "lon"} else score.values
    _refuse_inf(s)
    if not np.isfinite(s).any():
        raise InputError("score has no finite value (all NaN): no threshold to take; check the stack for NaN "
                         "layers or a grid too small for the model's tile")
    w = area_weights(score).transpose("lat", "lon").values
    return float(weighted_quantile(s, w, pct / 100.0))


def candidate_regions(
    score: xr.DataArray,
    threshold: float,
    tio2: xr.DataArray | None = None,
    min_pixels: int = 1,
    rank_by: str = "mean_score",
) -> pd.DataFrame:
    """Connected regions (8-connected, wrapping in longitude and across the poles) where ``score > threshold``.

    Parameters
    ----------
    score
        (lat, lon) anomaly score.
    threshold
        Score threshold (same units as ``score``).
    tio2
        Optional (lat, lon) TiO2 (wt%) for the ``mean_TiO2`` column. It is matched to the grid of ``score``
        by coordinates (nearest within half a pixel), so it may cover a larger grid, use the other
        longitude convention (−180…180 or 0…360) or row order; it must cover every pixel of ``score``.
    min_pixels
        Smaller regions are dropped.
    rank_by
        ``"mean_score"`` (intensity: small, sharp anomalies first), ``"total_score"`` (the area
        integral of the score above the threshold, km2: large coherent anomalies first) or
        ``"area_km2"``.

    Returns
    -------
    pandas.DataFrame
        One row per region, ranked by ``rank_by`` (descending): ``rank``, ``lat``, ``lon``
        (area-weighted centre, degrees), ``area_km2`` (spherical), ``n_pixels``, ``mean_score``,
        ``max_score``, ``total_score``, ``mean_TiO2`` (wt%, NaN without ``tio2``), ``lat_min``,
        ``lat_max``, ``lon_min``, ``lon_max`` (pixel centres, in the grid's longitude convention; ``lon_min >
        lon_max`` when the region crosses the ±180° (or 0/360°) seam). On a global grid regions join across
        the seam and, where the grid reaches a pole, across the pole.
    """
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from ..geo import area_weights, wrap_lon_180, wrap_lon_360

    if score.dims != ("lat", "lon"):
        raise InputError(f"score must have dims ('lat', 'lon'), got {score.dims}")
    if not np.isfinite(threshold):
        raise InputError(f"threshold must be finite, got {threshold}")
    if rank_by not in ("mean_score", "total_score", "area_km2"):
        raise InputError(f"rank_by must be 'mean_score', 'total_score' or 'area_km2', got {rank_by!r}")
    if tio2 is not None:
        _values_on_grid(tio2, score, "tio2")  # refuse a TiO2 map that does not cover the score's grid, always
    s = score.values
    above = np.isfinite(s) & (s > threshold)
    lab, n = ndimage.label(above, structure=np.ones((3, 3), dtype=int))
    cols = [
        "rank", "lat", "lon", "area_km2", "n_pixels", "mean_score", "max_score", "total_score", "mean_TiO2",
        "lat_min", "lat_max", "lon_min", "lon_max",
    ]
    if n == 0:
        return pd.DataFrame(columns=cols)
    lon = score["lon"].values
    lat = score["lat"].values
    if is_global_lon(lon):  # merge across the seam and, on a grid that reaches a pole, across the pole
        a, b = lab[:, 0], lab[:, -1]
        pairs = [(a, b), (a[1:], b[:-1]), (a[:-1], b[1:])]
        dlat = abs(float(np.median(np.diff(lat)))) if lat.size > 1 else 180.0
        half = lon.size // 2
        if lon.size % 2 == 0:
            for row in (0, -1):
                if abs(abs(float(lat[row])) - 90.0) <= dlat:  # the row next to the pole
                    r = lab[row]
                    pairs.append((r, np.roll(r, -half)))  # across the pole: the same latitude, lon + 180
        u = np.concatenate([x[(x > 0) & (y > 0)] for x, y in pairs])
        v = np.concatenate([y[(x > 0) & (y > 0)] for x, y in pairs])
        if u.size:
            g = coo_matrix((np.ones(u.size), (u, v)), shape=(n + 1, n + 1))
            _, comp = connected_components(g, directed=False)
            lab = np.where(lab > 0, comp[lab] + 1, 0)
            _, lab = np.unique(lab, return_inverse=True)
            lab = lab.reshape(s.shape)
            n = int(lab.max())
    w = area_weights(score).values
    lat2 = np.broadcast_to(score["lat"].values[:, None], s.shape)
    lon2 = np.broadcast_to(lon[None, :], s.shape)
    t = _values_on_grid(tio2, score, "tio2") if tio2 is not None else np.full(s.shape, np.nan)
    idx = lab.ravel()
    keep = idx > 0
    frame = pd.DataFrame({
        "label": idx[keep], "w": w.ravel()[keep], "lat": lat2.ravel()[keep], "lon": lon2.ravel()[keep],
        "score": s.ravel()[keep], "tio2": t.ravel()[keep],
    })
    # area-weighted centre as the mean of unit vectors: right across the seam and near the poles
    coslat = np.cos(np.deg2rad(frame["lat"]))
    frame["wx"] = frame["w"] * coslat * np.cos(np.deg2rad(frame["lon"]))
    frame["wy"] = frame["w"] * coslat * np.sin(np.deg2rad(frame["lon"]))
    frame["wlat"] = frame["w"] * np.sin(np.deg2rad(frame["lat"]))
    frame["ws"] = frame["w"] * frame["score"]
    frame["wt"] = frame["w"] * frame["tio2"]
    gb = frame.groupby("label")
    agg = gb.agg(area_km2=("w", "sum"), n_pixels=("w", "size"), wx=("wx", "sum"), wy=("wy", "sum"),
                 wlat=("wlat", "sum"), ws=("ws", "sum"), wt=("wt", "sum"), max_score=("score", "max"),
                 lat_min=("lat", "min"), lat_max=("lat", "max"))
    centre_lon = np.rad2deg(np.arctan2(agg["wy"], agg["wx"]))
    # longitude bounds measured from the centre, so a region across the seam is not the whole globe
    frame["dlon"] = wrap_lon_180(frame["lon"].to_numpy() - centre_lon.reindex(frame["label"]).to_numpy())
    span = frame.groupby("label")["dlon"].agg(["min", "max"])
    wrap = wrap_lon_360 if float(np.nanmax(lon)) > 180.0 else wrap_lon_180
    out = pd.DataFrame({
        "lat": np.rad2deg(np.arctan2(agg["wlat"], np.hypot(agg["wx"], agg["wy"]))),
        "lon": wrap(centre_lon.to_numpy()),
        "area_km2": agg["area_km2"],
        "n_pixels": agg["n_pixels"],
        "mean_score": agg["ws"] / agg["area_km2"],
        "max_score": agg["max_score"].astype(np.float64),  # a float32 score would print as 1791.760010
        "total_score": agg["ws"] - threshold * agg["area_km2"],
        "mean_TiO2": agg["wt"] / agg["area_km2"] if tio2 is not None else np.nan,
        "lat_min": agg["lat_min"], "lat_max": agg["lat_max"],
        "lon_min": wrap((centre_lon + span["min"]).to_numpy()), "lon_max": wrap((centre_lon + span["max"]).to_numpy()),
    })
    out = out[out["n_pixels"] >= min_pixels].sort_values(rank_by, ascending=False, kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out = out.reset_index(drop=True)
    out.attrs["units"] = {"lat": "deg", "lon": "deg", "area_km2": "km2", "mean_TiO2": "wt%"}
    return out[cols]


def candidates_on_truth(table: pd.DataFrame, truth: xr.DataArray, n: int | None = 10) -> pd.Series:
    """Whether each of the ``n`` top-ranked candidate regions has a truth pixel inside its bounding box.

    Parameters
    ----------
    table
        Candidate regions ranked best first, as from :func:`candidate_regions` (columns ``rank``,
        ``lat_min``, ``lat_max``, ``lon_min``, ``lon_max``; ``lon_min > lon_max`` for a region across the
        ±180° (or 0/360°) seam).
    truth
        Boolean (lat, lon) map of the planted deposits (any longitude convention, either row order).
    n
        How many rows from the top of ``table`` to check; None: all of them.

    Returns
    -------
    pandas.Series
        Boolean, one per checked candidate (index ``rank``): True where a truth pixel lies within the
        candidate's latitude and longitude bounds (its box, measured eastwards from ``lon_min`` to
        ``lon_max``, so a box across the seam takes both sides of it). Its ``sum()`` is the number of hits.
    """
    need = ["rank", "lat_min", "lat_max", "lon_min", "lon_max"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(f"table lacks column(s) {missing}; give the output of candidate_regions()")
    if not isinstance(truth, xr.DataArray) or set(truth.dims) != {"lat", "lon"}:
        dims = truth.dims if isinstance(truth, xr.DataArray) else type(truth).__name__
        raise InputError(f"truth must be a boolean DataArray with dims ('lat', 'lon'), got {dims}")
    t = truth.transpose("lat", "lon")
    values = t.values.astype(bool)
    lat = t["lat"].values.astype(float)
    lon = t["lon"].values.astype(float)
    eps = 1e-9  # the bounds are pixel centres: keep the pixels on them
    top = table if n is None else table.head(int(n))
    hits = []
    for _, r in top.iterrows():
        rows = (lat >= r["lat_min"] - eps) & (lat <= r["lat_max"] + eps)
        width = (float(r["lon_max"]) - float(r["lon_min"])) % 360.0
        cols = (lon - float(r["lon_min"]) + eps) % 360.0 <= width + 2 * eps
        hits.append(bool(values[np.ix_(rows, cols)].any()))
    return pd.Series(hits, index=pd.Index(top["rank"].to_numpy(), name="rank"), name="on_truth", dtype=bool)


def _values_on_grid(da: xr.DataArray, score: xr.DataArray, what: str) -> np.ndarray:
    """The values of the (lat, lon) map ``da`` at the pixels of ``score`` (shape of ``score``, (lat, lon)),
    matched by coordinates (nearest within half a pixel), whatever its longitude convention (−180…180 or
    0…360), row or column order, dim order or extent; an :class:`InputError` where it does not cover them."""
    import pandas as pd

    from ..geo import wrap_lon_180, wrap_lon_360

    for d, name in ((da, what), (score, "score")):
        if not isinstance(d, xr.DataArray) or set(d.dims) != {"lat", "lon"}:
            dims = d.dims if isinstance(d, xr.DataArray) else type(d).__name__
            raise InputError(f"{name} must be a DataArray with dims ('lat', 'lon'), got {dims}")
    wrap = wrap_lon_360 if float(np.nanmax(score["lon"].values)) > 180.0 else wrap_lon_180
    steps = [abs(float(np.median(np.diff(score[c].values)))) for c in ("lat", "lon") if score.sizes[c] > 1]
    tol = 0.5 * min(steps) if steps else 1e-6

    def index(src, dst) -> np.ndarray:
        """Position in ``src`` of the nearest value to each of ``dst`` (within ``tol``), -1 where none."""
        u, first = np.unique(np.asarray(src, dtype=float), return_index=True)
        i = pd.Index(u).get_indexer(np.asarray(dst, dtype=float), method="nearest", tolerance=tol)
        return np.where(i >= 0, first[np.maximum(i, 0)], -1)

    d = da.transpose("lat", "lon")
    rows = index(d["lat"].values, score["lat"].values)
    cols = index(wrap(d["lon"].values), wrap(score["lon"].values))
    missing = int(np.sum((rows < 0)[:, None] | (cols < 0)[None, :]))
    if missing:
        raise InputError(f"{what} does not cover {missing} pixel(s) of the score's grid (matched by lat/lon within "
                         f"half a pixel); give {what} on the score's grid or a larger one")
    out = d.values[np.ix_(rows, cols)]
    return out if score.dims == ("lat", "lon") else out.T


def _truth_on_grid(truth: xr.DataArray, score: xr.DataArray) -> xr.DataArray:
    """``truth`` matched pixel by pixel to ``score``'s grid by coordinates (nearest within half a pixel),
    whatever its longitude convention (−180…180 or 0…360) or row order; an error where it does not cover it."""
    values = _values_on_grid(truth, score, "truth").astype(bool)
    return xr.DataArray(values, coords={"lat": score["lat"], "lon": score["lon"]}, dims=score.dims)


def evaluate(score: xr.DataArray, truth: xr.DataArray, top_fraction: float = 0.01) -> dict:
    """Area-weighted ROC AUC and precision in the top ``top_fraction`` of area.

    Pixels are weighted by their spherical area; pixels with NaN score are left out (the evaluated
    area is that of the finite scores); a score of ±inf is refused. ``truth`` may cover a larger grid
    (e.g. the whole Moon when ``score`` was computed on a latitude band), use the other longitude
    convention or row order: it is matched to the grid of ``score`` by coordinates.

    Parameters
    ----------
    score
        (lat, lon) anomaly score, higher is more anomalous.
    truth
        Boolean (lat, lon) deposit map.
    top_fraction
        Fraction of the evaluated area, in (0, 1], whose precision is reported.

    Returns
    -------
    dict
        ``auc`` and ``precision_at_top`` (deposit fraction of the area of the highest-scoring pixels
        that together cover ``top_fraction`` of the evaluated area), and ``base_rate`` (deposit
        fraction of the evaluated area).

    Raises
    ------
    InputError
        ``top_fraction`` out of range; truth that does not cover the score's grid; a score with ±inf
        values or no finite value; or no deposit or no background pixel among the finite scores.
    """
    from sklearn.metrics import roc_auc_score

    from ..geo import area_weights

    if not 0 < top_fraction <= 1:
        raise InputError(f"top_fraction must lie in (0, 1], got {top_fraction}")
    if isinstance(score, xr.DataArray) and set(score.dims) == {"lat", "lon"}:
        score = score.transpose("lat", "lon")
    truth = _truth_on_grid(truth, score)
    s = score.values.ravel()
    y = truth.values.astype(bool).ravel()
    w = area_weights(score).values.ravel()
    _refuse_inf(s)
    ok = np.isfinite(s)
    if not ok.any():
        raise InputError("score has no finite value (all NaN): nothing to evaluate; check the stack for NaN "
                         "layers or a grid too small for the model's tile")
    s, y, w = s[ok], y[ok], w[ok]
    if y.all() or not y.any():
        raise InputError(f"truth needs both deposit and background pixels to compute an AUC; among the {y.size} "
                         f"pixels with a finite score it has {int(y.sum())} deposit and {int((~y).sum())} background")
    auc = float(roc_auc_score(y, s, sample_weight=w))
    order = np.argsort(-s, kind="stable")
    cw = np.cumsum(w[order])
    k = int(np.searchsorted(cw, top_fraction * cw[-1])) + 1
    top = order[:k]
    prec = float(w[top][y[top]].sum() / w[top].sum())
    return {"auc": auc, "precision_at_top": prec, "base_rate": float(w[y].sum() / w.sum())}


# --------------------------------------------------------------------------------------------------
# benchmark
# --------------------------------------------------------------------------------------------------
#: Layers of the benchmark on the procedural synthetic Moon (no crater table there: terrain roughness
#: stands in for crater density).
BENCH_LAYERS: tuple[str, ...] = ("TiO2", "FeO", "mg_number", "elevation", "slope", "roughness", "npfe")


#: Latitude band of the benchmark (the polar caps belong in a polar projection).
BENCH_MAX_ABS_LAT = 70.0


def synthetic_case(seed: int, resolution_ppd: float = 4, n_deposits: int | None = None,
                   layers: Sequence[str] = BENCH_LAYERS, max_abs_lat: float | None = BENCH_MAX_ABS_LAT,
                   ilmenite_target: tuple[float, float] | None = None) -> tuple[xr.DataArray, xr.Dataset]:
    """A procedural synthetic Moon of ``seed`` with planted deposits (same seed) and its layer stack.

    Deposit radii scale with the resolution (1-15 px at 4 px/deg, i.e. about 8-115 km), their number
    with the area in pixels (40 at 4 px/deg), so the physical set-up is the same at every resolution.
    The stack covers ``|lat| <= max_abs_lat``; deposits are planted within 60 degrees of the equator.

    Parameters
    ----------
    seed
        Seed of the Moon (:func:`workbench.synth.make_moon`, procedural geography) and of its deposits.
    resolution_ppd
        Grid resolution (pixels per degree).
    n_deposits
        Number of deposits; None: 40 at 4 px/deg, scaled with the pixel count (at least 5).
    layers
        Layers of the stack (:func:`workbench.analysis.layers.stack_layers`).
    max_abs_lat
        Latitude limit of the stack (degrees); None: the whole Moon.
    ilmenite_target
        ``(low, high)`` ilmenite weight fraction the deposits mix the ground towards at full strength (see
        :func:`workbench.synth.deposits.plant_deposits`); None keeps ``plant_deposits``' default (0.05, 0.14),
        the benchmark's. Lower values plant fainter deposits, e.g. ``(0.03, 0.06)``.

    Returns
    -------
    tuple
        The layer stack (``layer, lat, lon``) and the Moon with its ``deposit`` mask (``attrs["deposits"]``).
    """
    from ..synth import make_moon
    from ..synth.deposits import plant_deposits

    n = n_deposits if n_deposits is not None else max(5, int(round(40 * (resolution_ppd / 4) ** 2)))
    moon = make_moon(seed=seed, resolution_ppd=resolution_ppd, geography="procedural")
    r_hi = max(2.0, 15.0 * resolution_ppd / 4)
    strength = {} if ilmenite_target is None else {"ilmenite_target": tuple(ilmenite_target)}
    moon = plant_deposits(moon.drop_vars("reflectance"), n=n, seed=seed, radius_px=(1.0, r_hi),
                          reflectance=False, **strength)
    return stack_layers(moon, layers, max_abs_lat=max_abs_lat), moon


#: Seeds of the benchmark's Moons: the networks and baselines are fitted on ``train``; the network's
#: scoring rule is chosen on ``validation``; ``test`` is evaluated once with everything fixed.
#: ``continuity`` (seeds 3-4) was the held-out pair of the first version of this benchmark, on which
#: the shortcomings of the summed score were diagnosed; it is still reported, but not as the headline.
BENCH_SEEDS: dict[str, tuple[int, ...]] = {"train": (1, 2), "validation": (5, 6), "test": (7, 8),
                                           "continuity": (3, 4)}
BENCH_SEEDS_FAST: dict[str, tuple[int, ...]] = {"train": (1, 2), "validation": (5,), "test": (7,),
                                                "continuity": ()}


def bench(fast: bool = False) -> dict:
    """Held-out-seed benchmark: train on some Moons, choose the score rule on others, test on new ones.

    1. Every method (network and baselines, normalisation included) is fitted on the training Moons;
       the network's error statistics (:func:`calibrate_score`) too.
    2. For each network, the scoring rule (:data:`SCORE_RULES`) with the highest mean AUC on the
       validation Moons is chosen; the validation table of every rule and baseline is reported.
    3. All methods are evaluated once on the test Moons against the planted deposits: area-weighted
       ROC AUC and the precision in the top 1% of area, averaged over the test seeds (``auc``,
       ``precision_at_1pct``), and likewise on the continuity seeds (``continuity``).

    ``conv_autoencoder`` is the same fusion convolution and objective with a convolutional
    encoder-decoder instead of the ViT (its rule is chosen on validation the same way).
    """
    import torch

    torch.set_num_threads(1)  # the box is shared: one thread is faster than two contending ones
    ppd = 2 if fast else 4
    seeds = BENCH_SEEDS_FAST if fast else BENCH_SEEDS
    steps = 400 if fast else 1200
    t0 = time.perf_counter()
    train = [synthetic_case(s, ppd)[0] for s in seeds["train"]]
    t_data = time.perf_counter() - t0
    nets = {"network": fit(train, steps=steps, seed=0),
            "conv_autoencoder": fit(train, steps=steps, seed=0, config={"arch": "conv"})}
    t1 = time.perf_counter()
    for m in nets.values():
        calibrate_score(m, train)
    t_calib = time.perf_counter() - t1
    baselines = ("zscore", "isolation_forest", "pca")
    t_score = 0.0

    def evaluate_seeds(seed_list, rules_of) -> dict:
        """{method: {seed: metrics}}; ``rules_of(name)`` lists the rules to evaluate for a network."""
        nonlocal t_score
        out: dict[str, dict] = {}
        for s in seed_list:
            stack, moon = synthetic_case(s, ppd)
            truth = moon["deposit"]
            for name, net in nets.items():
                t2 = time.perf_counter()
                err = layer_errors(net, stack)
                t_score += (time.perf_counter() - t2) if name == "network" else 0.0
                for rule in rules_of(name):
                    key = name if rule is None else f"{name}:{rule}"
                    sc = score_from_layer_errors(err, rule=rule or net.score_rule, stats=net.error_stats)
                    out.setdefault(key, {})[str(s)] = evaluate(sc, truth, top_fraction=0.01)
            t2 = time.perf_counter()
            norm = nets["network"].normalisation
            base = {"zscore": zscore_score(stack, norm),
                    "isolation_forest": isolation_forest_score(train, stack, norm, seed=0),
                    "pca": pca_score(train, stack, norm, seed=0)}
            t_score += time.perf_counter() - t2
            for m, sc in base.items():
                out.setdefault(m, {})[str(s)] = evaluate(sc, truth, top_fraction=0.01)
        return out

    def mean_of(per_seed: dict, key: str) -> dict:
        return {m: float(np.mean([v[key] for v in d.values()])) for m, d in per_seed.items()}

    val = evaluate_seeds(seeds["validation"], lambda name: SCORE_RULES)
    val_auc = mean_of(val, "auc")
    chosen = {}
    for name, net in nets.items():
        chosen[name] = max(SCORE_RULES, key=lambda r, n=name: val_auc[f"{n}:{r}"])
        net.score_rule = chosen[name]
    test = evaluate_seeds(seeds["test"], lambda name: (None, "sum"))  # + the first version's rule
    auc, p1 = mean_of(test, "auc"), mean_of(test, "precision_at_top")
    dep_frac = [v["base_rate"] for v in test["zscore"].values()]
    out = {
        "auc": auc,
        "precision_at_1pct": p1,
        "per_seed": test,
        "deposit_area_fraction": float(np.mean(dep_frac)),
        "precision_at_1pct_best_possible": float(min(1.0, np.mean(dep_frac) / 0.01)),
        "train_seeds": list(seeds["train"]),
        "validation_seeds": list(seeds["validation"]),
        "test_seeds": list(seeds["test"]),
        "continuity_seeds": list(seeds["continuity"]),
        "seed_roles": "networks, error statistics and baselines fitted on train_seeds; score rule chosen by "
                      "mean validation AUC on validation_seeds; auc/precision_at_1pct on test_seeds, "
                      "evaluated once; continuity_seeds = the earlier held-out pair (already inspected)",
        "score_rules": list(SCORE_RULES),
        "score_rule": chosen,
        "validation_auc": val_auc,
        "validation_precision_at_1pct": mean_of(val, "precision_at_top"),
        "resolution_ppd": ppd,
        "layers": list(BENCH_LAYERS),
        "max_abs_lat": BENCH_MAX_ABS_LAT,
        "train_steps": nets["network"].info["steps_done"],
        "train_seconds": nets["network"].info["train_seconds"],
        "conv_train_seconds": nets["conv_autoencoder"].info["train_seconds"],
        "calibration_seconds_both_networks": round(t_calib, 2),
        "final_train_loss": float(np.mean(nets["network"].history[-50:])),
        "score_seconds_network_and_baselines": round(t_score, 2),
        "data_seconds": round(t_data, 2),
        "config": nets["network"].config,
        "torch_threads": 1,
        "network_beats_all_baselines_auc": bool(all(auc["network"] > auc[m] for m in baselines)),
        "network_beats_all_baselines_precision": bool(all(p1["network"] > p1[m] for m in baselines)),
    }
    if seeds["continuity"]:
        cont = evaluate_seeds(seeds["continuity"], lambda name: (None, "sum"))
        out["continuity"] = {"auc": mean_of(cont, "auc"), "precision_at_1pct": mean_of(cont, "precision_at_top"),
                             "per_seed": cont}
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    return out
