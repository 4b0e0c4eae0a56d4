"""The oxide-inversion wrapper: ``fit`` / ``fine_tune`` / ``calibrate`` / ``predict`` / ``save`` / ``load``.

:class:`OxideInverter` wraps :class:`~workbench.inversion.resnet.ResidualInversionNet` with everything a
user needs: band and wavelength checks, target scaling and units, chunked prediction over whole maps
(NaN in → NaN out), deep-ensemble uncertainty with a post-hoc interval calibration, three fine-tuning
modes (head-only refit, low-rank adaptation, full), and checkpoints that record architecture, band list,
wavelengths and sha256 (loaded with ``torch.load(weights_only=True)``). The torch device comes from
:func:`workbench.config.get_device`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ..config import get_device, inference_precision
from ..errors import CheckpointError, InputError
from ..geo import is_global_lon, north_up_flips
from ..io import atomic_path, sha256_file
from ..validate import (
    REFLECTANCE_MAX,
    check_reflectance,
    check_reflectance_units,
    is_whole_number,
    load_weights,
)
from .resnet import ARCH, PackedInference, ResidualInversionNet, gaussian_nll, packed_supported

#: Outputs of the network, in order.
TARGETS: tuple[str, ...] = ("FeO", "TiO2", "Al2O3", "MgO", "CaO", "SiO2", "mg_number")
UNITS = {t: "wt%" for t in TARGETS} | {"mg_number": "1"}
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
WAVELENGTH_TOL_NM = 1.0
#: Pixels per forward pass. Small passes keep every activation (members x pixels x width floats, ~13 MB)
#: in reused heap memory and near the cache: 8k-pixel passes ran 2.0x faster than 64k-pixel passes on
#: one core (160 vs 79 kpix/s; the large passes spent their time in page faults of fresh allocations).
PASS_PIXELS = 8192
#: Pixels whose stem input (normalised bands, context windows: 4 bytes x bands x (1 + windows) each) is
#: computed in one go and shared by the row tiles inside: a 720x720 dask block is one group (31 MB).
STEM_INPUT_PIXELS = 600_000


def training_layout(obj: xr.DataArray | xr.Dataset, flips: dict[str, slice]) -> xr.DataArray | xr.Dataset:
    """``obj`` in the layout the network was trained in: ``(band,) lat, lon`` with latitude descending and
    longitude ascending (``flips`` from :func:`workbench.geo.north_up_flips` of the reflectance cube).

    The learned stem and context windows are not symmetric under a transpose or a flip, so the same pixels
    given as ``(band, lon, lat)`` or south-up would otherwise give a different map.
    """
    obj = obj.isel({d: s for d, s in flips.items() if d in obj.dims})
    if {"lat", "lon"} <= set(obj.dims):
        obj = obj.transpose(*(("band",) if "band" in obj.dims else ()), "lat", "lon", ...)
    return obj


def _require_cube(refl, name: str = "reflectance") -> None:
    """Raise :class:`InputError` unless ``refl`` is an ``xarray.DataArray`` with a ``band`` dim.

    Parameters
    ----------
    refl
        What the caller passed as the reflectance cube.
    name
        What to call it in the message.

    Raises
    ------
    InputError
        For a bare array (numpy, dask, torch, list) or a DataArray without a ``band`` dim.
    """
    if isinstance(refl, xr.DataArray) and "band" in refl.dims:
        return
    kind = type(refl)
    package = "" if kind.__module__ == "builtins" else kind.__module__.split(".")[0] + "."
    got = (f"a DataArray with dims {tuple(map(str, refl.dims))}" if isinstance(refl, xr.DataArray)
           else package + kind.__qualname__)
    raise InputError(f"{name} must be an xarray.DataArray (band, lat, lon) or (band, y, x) with band names and "
                     f"wavelengths (coords 'band' and 'wavelength', nm), got {got}; wrap the array: "
                     "xr.DataArray(arr, dims=('band', 'lat', 'lon'), coords={'band': model.bands, "
                     "'wavelength': ('band', model.wavelengths), ...}), or use "
                     "workbench.synth.resample_to_instrument or observe(...)['reflectance']")


def _require_layers(refl: xr.DataArray, truth, mask) -> None:
    """Raise :class:`InputError` unless ``truth`` (a Dataset) and ``mask`` (a boolean DataArray, or None)
    lie on ``refl``'s spatial grid: same dims and sizes, since they are aligned with it by position.

    Parameters
    ----------
    refl
        The (band, ...) reflectance cube, already checked by :func:`_require_cube`.
    truth, mask
        What the caller passed as the oxide truth and the pixel selection.
    """
    spatial = {d: refl.sizes[d] for d in refl.dims if d != "band"}
    for name, obj, kind in (("truth", truth, xr.Dataset), ("mask", mask, xr.DataArray)):
        if obj is None and name == "mask":
            continue
        if not isinstance(obj, kind):
            what, fix = (("an xarray.Dataset of oxide maps (wt%), one variable per target",
                          "e.g. truth.to_dataset('variable') for a stacked DataArray, or xr.Dataset({'FeO': "
                          "(('lat', 'lon'), values), ...}, coords=...)") if kind is xr.Dataset else
                         ("a boolean xarray.DataArray on the reflectance grid",
                          "e.g. site_mask(refl, lat, lon, radius_km), or xr.DataArray(values, dims=('lat', "
                          "'lon'), coords=...)"))
            raise InputError(f"{name} must be {what}, got {type(obj).__module__.split('.')[0]}."
                             f"{type(obj).__qualname__}; {fix}")
        sizes = {d: obj.sizes.get(d) for d in spatial}
        if sizes != spatial:
            raise InputError(f"{name} has dims {dict(obj.sizes)} but the reflectance's grid is {spatial}; "
                             f"give {name} on the same grid (same dim names and sizes)")


def site_mask(template: xr.DataArray | xr.Dataset, lat: float, lon: float, radius_km: float) -> xr.DataArray:
    """Boolean (lat, lon) mask of the pixels within ``radius_km`` of a site (great-circle distance).

    Raises :class:`InputError` for a latitude outside ±90°, a longitude outside ±360°, or a radius that is
    not a positive number of km.
    """
    from ..geo import great_circle_distance
    from ..validate import check_site

    lat, lon = check_site(lat, lon)
    try:
        radius = float(radius_km) if not isinstance(radius_km, (bool, np.bool_)) else np.nan
    except (TypeError, ValueError):
        radius = np.nan
    if not (np.isfinite(radius) and radius > 0):
        raise InputError(f"radius_km must be a positive number of km, got {radius_km!r}")

    lat2, lon2 = xr.broadcast(template["lat"], template["lon"])
    d = great_circle_distance(lat2, lon2, lat, lon)
    return (d <= radius).transpose("lat", "lon").rename("site_mask")


class OxideInverter:
    """Reflectance cube (band, lat, lon) → oxides (wt%) and Mg# with per-pixel uncertainty.

    Parameters
    ----------
    bands, wavelengths
        Band names and centre wavelengths (nm) the model is built for; inputs must match them.
    width, depth, stem, members, context
        Network size (see :class:`~workbench.inversion.resnet.ResidualInversionNet`); ``members`` is
        the deep-ensemble size, ``context`` the odd window sizes (pixels) of the box-averaged bands fed
        beside each pixel's own (``()``: none, the 3×3 stem only).
    seed
        Seed of the weight initialisation.

    Examples
    --------
    >>> m = OxideInverter(["R415", "R750"], [415.0, 750.0], width=8, depth=1, stem=4, members=2)
    >>> m.net.config["n_bands"], m.targets[0]
    (2, 'FeO')
    """

    def __init__(self, bands: Sequence[str], wavelengths: Sequence[float], targets: Sequence[str] = TARGETS,
                 width: int = 96, depth: int = 2, stem: int = 32, members: int = 4, seed: int = 0,
                 context: Sequence[int] = ()):
        if len(bands) != len(wavelengths):
            raise InputError(f"{len(bands)} band names but {len(wavelengths)} wavelengths; give one each")
        self.bands = [str(b) for b in bands]
        self.wavelengths = [float(w) for w in wavelengths]
        self.targets = [str(t) for t in targets]
        torch.manual_seed(seed)
        self.net = ResidualInversionNet(len(self.bands), len(self.targets), width=width, depth=depth,
                                        stem=stem, members=members, context=tuple(context))
        self.y_mean = np.zeros(len(self.targets), np.float32)
        self.y_std = np.ones(len(self.targets), np.float32)
        self.std_scale = np.ones(len(self.targets), np.float32)
        #: domain-shift ("model discrepancy") std per target, added in quadrature to every prediction's std
        self.discrepancy_std = np.zeros(len(self.targets), np.float32)
        #: domain-shift factor on every target's std (pooled over targets; see fine_tune), 1 = none
        self.shift_scale = 1.0
        #: per-target factor on the std for predictions beyond a fine-tuning site, calibrated on replicate
        #: experiments (``meta["extrapolation"]``, see fine_tune); 1 = none
        self.extrapolation_scale = np.ones(len(self.targets), np.float32)
        #: where the reported Mg# comes from: ``"oxides"`` (molar ratio of the predicted MgO and FeO, std by
        #: the delta method; see :meth:`_derive_mg_number`) or ``"head"`` (the network's own Mg# output;
        #: checkpoints saved before the choice existed)
        self.mg_number_from = "oxides"
        self.meta: dict = {}
        self.device = get_device()

    # ------------------------------------------------------------------------------------ checks
    @property
    def config(self) -> dict:
        return dict(self.net.config, bands=self.bands, wavelengths=self.wavelengths, targets=self.targets)

    def check_input(self, refl: xr.DataArray) -> np.ndarray:
        """Validate a ``(band, lat, lon)`` cube against the model's bands; return float32 numpy.

        Raises :class:`InputError` for missing/extra bands, mismatched wavelengths, units other than
        reflectance, and infinite, negative or implausibly high values (above
        :data:`~workbench.validate.REFLECTANCE_MAX`: percent or DN). NaN pixels pass (they come out NaN).
        """
        _require_cube(refl)
        names = [str(b) for b in refl["band"].values] if "band" in refl.coords else []
        if len(names) != len(self.bands) or set(names) != set(self.bands):
            missing = sorted(set(self.bands) - set(names))
            extra = sorted(set(names) - set(self.bands))
            twice = sorted({b for b in names if names.count(b) > 1})
            repeated = (f", given more than once: {twice} (drop the repeats: "
                        "refl.drop_duplicates('band'))" if twice else "")
            raise InputError(f"band mismatch: model expects {self.bands}; missing {missing}, extra {extra}"
                             f"{repeated}. Select the model's bands (refl.sel(band=model.bands)) or use weights "
                             "trained for this instrument")
        refl = refl.sel(band=self.bands)
        if "wavelength" in refl.coords:
            wl = np.asarray(refl["wavelength"].values, float)
            bad = np.abs(wl - np.asarray(self.wavelengths)) > WAVELENGTH_TOL_NM
            if bad.any():
                raise InputError(f"wavelengths {wl[bad].tolist()} nm do not match the weights' "
                                 f"{np.asarray(self.wavelengths)[bad].tolist()} nm; use weights trained "
                                 "for this instrument (or fine-tune a model on its bands)")
        refl = refl.transpose("band", ...)
        check_reflectance_units(refl)
        # inf is refused, not silently turned into NaN; percent or DN is refused, not inverted. Checked
        # before the float32 cast, which would turn a huge value (1e40) into inf and misname it.
        # A dask-backed cube is computed here (it is inverted in memory) and checked like any other: the
        # checks skip lazy arrays, so checking ``refl`` itself would let a chunked cube through unchecked.
        values = refl.values
        check_reflectance(values, allow_all_nan=True, max_value=REFLECTANCE_MAX)
        arr = np.asarray(values, dtype=np.float32)
        if arr.ndim != 3:
            raise InputError(f"expected (band, lat, lon), got dims {refl.dims}")
        return arr

    def _targets_array(self, truth: xr.Dataset, like: xr.DataArray) -> np.ndarray:
        missing = [t for t in self.targets if t not in truth]
        if missing:
            raise InputError(f"truth is missing {missing}; it needs {self.targets}")
        return np.stack([np.asarray(truth[t].transpose(*like.dims[1:]).values, np.float32)
                         for t in self.targets])

    # ------------------------------------------------------------------------------------ training
    def _prepare(self, refl, truth, mask):
        _require_cube(refl)
        _require_layers(refl, truth, mask)
        flips = north_up_flips(refl)  # reflectance, truth and mask are aligned by position, as given
        refl, truth = training_layout(refl, flips), training_layout(truth, flips)
        mask = None if mask is None else training_layout(mask, flips)
        X = self.check_input(refl)
        Y = self._targets_array(truth, refl.transpose("band", ...))
        M = np.ones(X.shape[1:], bool) if mask is None else np.asarray(mask.transpose(*refl.dims[1:]).values, bool)
        valid = M & np.isfinite(X).all(0) & (X > 0).all(0) & np.isfinite(Y).all(0)
        if valid.sum() == 0:
            raise InputError("no valid training pixels (mask empty or all NaN)")
        return X, Y, valid

    def _set_stats(self, X, Y, valid):
        logx = np.log(X[:, valid])
        self.net.in_mean.copy_(torch.from_numpy(logx.mean(1)))
        self.net.in_std.copy_(torch.from_numpy(logx.std(1) + 1e-6))
        self.y_mean = Y[:, valid].mean(1).astype(np.float32)
        self.y_std = (Y[:, valid].std(1) + 1e-6).astype(np.float32)

    def _sampler(self, X, Y, valid, patch, rng):
        """Random ``patch``×``patch`` targets (+ the network's input halo) centred on valid pixels."""
        H, W = valid.shape
        h = self.net.halo
        rows, cols = np.nonzero(valid)
        Xf = np.where(np.isfinite(X) & (X > 0), X, np.float32(np.nan))  # missing: see stem_input
        Xp = np.pad(Xf, ((0, 0), (h, h), (h, h)), mode="edge")
        Yn = (Y - self.y_mean[:, None, None]) / self.y_std[:, None, None]
        Yn = np.where(valid[None], Yn, 0.0).astype(np.float32)
        p = min(patch, H, W)

        def batch(n):
            k = rng.integers(0, len(rows), n)
            r0 = np.clip(rows[k] - p // 2, 0, H - p)
            c0 = np.clip(cols[k] - p // 2, 0, W - p)
            xb = np.stack([Xp[:, r : r + p + 2 * h, c : c + p + 2 * h] for r, c in zip(r0, c0, strict=True)])
            yb = np.stack([Yn[:, r : r + p, c : c + p] for r, c in zip(r0, c0, strict=True)])
            mb = np.stack([valid[None, r : r + p, c : c + p] for r, c in zip(r0, c0, strict=True)])
            return torch.from_numpy(xb), torch.from_numpy(yb), torch.from_numpy(mb)

        return batch

    def _train(self, params, batches: Sequence[Callable], weights: Sequence[float], steps: int, lr: float,
               progress: Callable[[int, int, float], None] | None = None, weight_decay: float = 0.0,
               beta: float = 0.0, target_weights: Sequence[np.ndarray | None] | None = None) -> list:
        net = self.net.to(self.device)
        net.train()
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
        losses = []
        tw = [None if t is None else torch.as_tensor(t, dtype=torch.float32, device=self.device)
              for t in (target_weights or [None] * len(batches))]
        for step in range(steps):
            loss = 0.0
            for make, w, wt in zip(batches, weights, tw, strict=True):
                xb, yb, mb = (t.to(self.device) for t in make())
                mean, log_var = net(xb, pad=False)
                loss = loss + w * gaussian_nll(mean, log_var, yb, mb, beta=beta, target_weight=wt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, steps, losses[-1])
        net.eval()
        return losses

    def fit(self, refl: xr.DataArray, truth: xr.Dataset, mask: xr.DataArray | None = None, steps: int = 600,
            batch: int = 16, patch: int = 24, lr: float = 3e-3, seed: int = 0,
            library: tuple[xr.DataArray, xr.Dataset] | tuple[xr.DataArray, xr.Dataset, dict] | None = None,
            progress: Callable[[int, int, float], None] | None = None, library_weight: float = 1.0,
            beta_nll: float = 0.0) -> OxideInverter:
        """Pre-train on a reflectance cube with known oxides (e.g. the synthetic Moon's near side).

        ``mask`` (lat, lon) bool selects training pixels; NaN pixels are skipped. Gaussian NLL of every
        ensemble member on random patches; AdamW with a one-cycle schedule. ``library=(refl, truth)``
        adds a second source — e.g. the physics-based spectral library of
        :func:`workbench.synth.library.spectral_library` — from which every step draws an equal batch; an
        optional third element (a dict saying how the library was made) is kept in ``meta["fit"]``.
        ``library_weight`` weights the library's loss against the map's (1: equal). ``beta_nll`` in [0, 1]
        selects the β-NLL loss (:func:`~workbench.inversion.resnet.gaussian_nll`; 0: plain NLL); it is
        recorded in ``meta["fit"]`` and later fine-tunes use it too.
        """
        if not library_weight > 0:
            raise InputError(f"library_weight must be > 0, got {library_weight!r}")
        if not 0.0 <= beta_nll <= 1.0:
            raise InputError(f"beta_nll must be in [0, 1] (0: plain Gaussian NLL, 0.5: Seitzer et al.), "
                             f"got {beta_nll!r}")
        X, Y, valid = self._prepare(refl, truth, mask)
        if library is not None:  # checked before the model changes at all
            lX, lY, lvalid = self._prepare(library[0], library[1], None)
        self._set_stats(X, Y, valid)
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        sampler = self._sampler(X, Y, valid, patch, rng)
        sources = [lambda: sampler(batch)]
        n_lib = 0
        if library is not None:
            lib_sampler = self._sampler(lX, lY, lvalid, patch, rng)
            sources.append(lambda: lib_sampler(batch))
            n_lib = int(lvalid.sum())
        t0 = time.perf_counter()
        losses = self._train(list(self.net.parameters()), sources, [1.0, library_weight][: len(sources)], steps, lr,
                             progress, weight_decay=1e-4, beta=beta_nll)
        self.meta["fit"] = dict(steps=steps, batch=batch, patch=patch, lr=lr, seed=seed, beta_nll=beta_nll,
                                n_pixels=int(valid.sum()), library_pixels=n_lib,
                                final_loss=float(np.mean(losses[-20:])), seconds=round(time.perf_counter() - t0, 1))
        if library is not None and len(library) > 2:
            self.meta["fit"]["library"] = dict(library[2])
        return self

    def fine_tune(self, refl: xr.DataArray, truth: xr.Dataset, mask: xr.DataArray, mode: str = "lora",
                  steps: int = 150, lr: float | None = None, rank: int = 4, replay: tuple | list | None = None,
                  replay_weight: float = 1.0, batch: int = 8, seed: int = 0, discrepancy: bool | str = "pooled",
                  gate: bool = False, extrapolation: bool = True,
                  progress: Callable[[int, int, float], None] | None = None) -> OxideInverter:
        """Adapt to a few sample sites: ``mode`` = ``"head"`` (refit the output layer only), ``"lora"``
        (rank-``rank`` adapters on every trunk layer + head; merged back afterwards) or ``"full"``.

        ``mask`` selects the site pixels (e.g. :func:`site_mask`). ``replay=(refl, truth, mask)`` (or a list
        of such sources, e.g. the near side and the spectral library) mixes patches of the pre-training
        data into every step (total weight ``replay_weight``) so the model does not forget what it knew.
        Standardisation statistics are kept from pre-training.

        ``discrepancy``: the model's error at the new site *before* fine-tuning — an honest held-out error,
        since the site was never seen — sets a domain-shift term (a model-discrepancy term, Kennedy &
        O'Hagan 2001). Fine-tuning removes the error *at* the site, not the shift elsewhere in the new
        region, which the ensemble alone does not see (its intervals were calibrated on the old region).
        With residuals ``r`` and predicted std ``σ`` over the site pixels:

        * ``"pooled"`` (default): every target's std is multiplied by one factor
          ``λ = sqrt(max(1, mean over targets of mean(r²)/mean(σ²)))`` (:attr:`shift_scale`; repeated
          fine-tunes multiply it). One site's per-target errors are noisy; pooling them over the targets
          gave more even coverage on validation Moons (session 10: mean |cov95 − 0.95| 0.124 vs 0.128,
          share of targets in 0.90–0.98 0.21 vs 0.19 over 14 cases — both still far from even);
        * ``"per_target"`` (or ``True``; sessions 6–9): ``σ_d² = max(0, mean(r²) − mean(σ²))`` per target,
          added in quadrature (:attr:`discrepancy_std`; repeated fine-tunes keep the largest);
        * ``False`` or ``"none"``: no term.

        ``extrapolation`` (with ``"pooled"``, the default): when the pre-trained model carries a
        simulation-based calibration of how far such one-site fine-tunes stray elsewhere in the new region
        (``meta["extrapolation"]``, from :func:`workbench.inversion.shift_calibration.extrapolation_scale`
        on validation Moons), its per-target factor (:attr:`extrapolation_scale`) is used *instead of* the
        site's factor λ (still computed and recorded as ``site_factor``). One site cannot show how the rest
        of the region differs; replicate experiments can. Session 11, judged leave-one-Moon-out on 14
        validation cases by rules fixed first: λ alone covered 0.852 on average (mean |cov95 − 0.95|
        0.122), λ × the factor 0.944 (0.054, share in 0.90–0.98 0.39), the factor alone 0.948 (0.038,
        0.58): λ, from one site's few pixels, mostly adds noise.

        With ``gate=True`` each target's loss on the site pixels is weighted by the share of the model's
        squared error there that its own predicted variance does not explain,
        ``w = max(0, mean(r²) − mean(σ²)) / mean(r²)``: a target whose site errors are within the model's
        stated noise teaches nothing about a shift and is left to the replayed data.
        """
        if mode not in ("head", "lora", "full"):
            raise InputError(f"unknown fine-tuning mode {mode!r}; use 'head', 'lora' or 'full'")
        if mask is None:
            raise InputError("fine_tune needs mask, the sample site's pixels (a boolean DataArray on the "
                             "reflectance grid), e.g. site_mask(refl, lat, lon, radius_km)")
        shift = {True: "per_target", False: "none"}.get(discrepancy, discrepancy)
        if shift not in ("pooled", "per_target", "none"):
            raise InputError(f"unknown discrepancy {discrepancy!r}; use 'pooled', 'per_target' or 'none'")
        X, Y, valid = self._prepare(refl, truth, mask)
        sources = [] if replay is None else [replay] if isinstance(replay, tuple) else list(replay)
        replayed = [self._prepare(*src) for src in sources]  # checked before the model changes at all
        site_weight = site_factor = None
        if shift != "none" or gate:
            r2, s2 = self._site_residuals(refl, truth, mask)
            excess = np.maximum(r2 - s2, 0.0)
            if shift == "per_target":
                self.discrepancy_std = np.maximum(self.discrepancy_std, np.sqrt(excess).astype(np.float32))
            elif shift == "pooled" and (s2 > 0).any():
                site_factor = float(np.sqrt(max(1.0, float(np.mean(r2[s2 > 0] / s2[s2 > 0])))))
                if extrapolation and "extrapolation" in self.meta:
                    self.extrapolation_scale = np.asarray(self.meta["extrapolation"]["scale"], np.float32)
                else:
                    self.shift_scale *= site_factor
            if gate:
                site_weight = np.where(r2 > 0, excess / np.where(r2 > 0, r2, 1.0), 0.0).astype(np.float32)
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        size = int(max(3, min(8, math.isqrt(int(valid.sum())) + 2)))
        site_sampler = self._sampler(X, Y, valid, size, rng)
        batches = [lambda: site_sampler(batch)]
        weights = [1.0]
        for rX, rY, rvalid in replayed:
            rs = self._sampler(rX, rY, rvalid, 24, rng)
            batches.append(lambda rs=rs: rs(batch))
            weights.append(replay_weight / len(sources))
        for p in self.net.parameters():
            p.requires_grad_(mode == "full")
        if mode == "lora":
            self.net.add_lora(rank)
        params = list(self.net.head.parameters())
        if mode == "lora":
            params += [p for n, p in self.net.named_parameters() if "lora_" in n]
        elif mode == "full":
            params = list(self.net.parameters())
        for p in params:
            p.requires_grad_(True)
        lr = lr or {"head": 3e-3, "lora": 2e-3, "full": 3e-4}[mode]
        losses = self._train(params, batches, weights, steps, lr, progress,
                             beta=float(self.meta.get("fit", {}).get("beta_nll", 0.0)),
                             target_weights=[site_weight] + [None] * len(sources))
        if mode == "lora":
            self.net.merge_lora()
        for p in self.net.parameters():
            p.requires_grad_(True)
        self.meta.setdefault("fine_tune", []).append(
            dict(mode=mode, steps=steps, lr=lr, rank=rank if mode == "lora" else None,
                 n_pixels=int(valid.sum()), replay=replay is not None, final_loss=float(np.mean(losses[-10:])),
                 site_weight=None if site_weight is None else [round(float(w), 4) for w in site_weight],
                 discrepancy=shift, site_factor=None if site_factor is None else round(site_factor, 4),
                 shift_scale=round(self.shift_scale, 4),
                 extrapolation_scale=[round(float(k), 4) for k in self.extrapolation_scale]))
        return self

    def _site_residuals(self, refl: xr.DataArray, truth: xr.Dataset, mask: xr.DataArray
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Per target, the current model's mean squared error and mean predicted variance on ``mask``."""
        spatial = [d for d in refl.dims if d != "band"]
        rows, cols = np.nonzero(np.asarray(mask.transpose(*spatial).values, bool))
        if rows.size:  # predict only the window around the site (plus the network's context)
            h = self.net.halo + 1
            win = {spatial[0]: slice(max(rows.min() - h, 0), rows.max() + h + 1),
                   spatial[1]: slice(max(cols.min() - h, 0), cols.max() + h + 1)}
            refl, truth, mask = refl.isel(win), truth.isel(win), mask.isel(win)
        pred = self.predict(refl)
        m = np.asarray(mask.transpose(*pred[self.targets[0]].dims).values, bool)
        r2, s2 = np.zeros(len(self.targets)), np.zeros(len(self.targets))
        for k, t in enumerate(self.targets):
            r = (pred[t].values - truth[t].transpose(*pred[t].dims).values)[m]
            s = pred[f"{t}_std"].values[m]
            ok = np.isfinite(r) & np.isfinite(s)
            if ok.any():
                r2[k], s2[k] = float(np.mean(r[ok] ** 2)), float(np.mean(s[ok] ** 2))
        return r2, s2

    # ------------------------------------------------------------------------------------ predict
    def with_members(self, k: int) -> OxideInverter:
        """A copy that uses only the first ``k`` ensemble members (smaller ensemble, faster, less sure)."""
        import copy

        if not 1 <= k <= self.net.members:
            raise InputError(f"ensemble size must be 1..{self.net.members}, got {k}")
        new = copy.deepcopy(self)
        if k == self.net.members:
            return new
        sub = ResidualInversionNet(len(self.bands), len(self.targets), width=self.net.config["width"],
                                   depth=self.net.config["depth"], stem=self.net.config["stem"], members=k,
                                   context=self.net.context)
        state = {}
        stem = self.net.config["stem"]
        for name, v in self.net.state_dict().items():
            if name.startswith("stem."):
                state[name] = v[: k * stem]
            elif name.startswith(("inp.", "blocks.", "head.")):
                state[name] = v[:k]
            else:
                state[name] = v
        sub.load_state_dict(state)
        new.net = sub
        return new

    def std_factor(self) -> np.ndarray:
        """Per-target factor from the ensemble's standardised std to the reported std (before the additive
        ``discrepancy_std``): interval calibration × domain-shift factor × extrapolation factor."""
        return (self.std_scale * self.shift_scale * self.extrapolation_scale).astype(np.float32)

    def _store_tile(self, res: tuple, r0: int, r1: int, mean: np.ndarray, std: np.ndarray,
                    epi: np.ndarray | None) -> None:
        """Write one row tile's standardised moments into the output arrays, in target units."""
        ym, ys = self.y_mean[:, None, None], self.y_std[:, None, None]
        np.multiply(res[0][0].cpu().numpy(), ys, out=mean[:, r0:r1])
        mean[:, r0:r1] += ym
        raw_std, factor = res[1][0].cpu().numpy(), self.std_factor()
        np.multiply(raw_std, ys * factor[:, None, None], out=std[:, r0:r1])
        if epi is not None:
            np.multiply(res[2][0].cpu().numpy(), ys, out=epi[:, r0:r1])
        if self.mg_number_from == "oxides" and {"mg_number", "MgO", "FeO"} <= set(self.targets):
            self._derive_mg_number(raw_std, factor, r0, r1, mean, std, epi)

    def _derive_mg_number(self, raw_std: np.ndarray, factor: np.ndarray, r0: int, r1: int, mean: np.ndarray,
                          std: np.ndarray, epi: np.ndarray | None) -> None:
        """Replace a tile's Mg# by the molar ratio of its predicted MgO and FeO,
        ``Mg# = 100 (MgO/40.304) / (MgO/40.304 + FeO/71.844)`` (the synthetic Moon's own definition), with
        its std propagated from theirs to first order (the delta method; their errors taken as
        independent), before the Mg# row's own calibration factor. Oxide predictions below 0.01 wt% enter
        as 0.01, so Mg# stays within 0-100.

        Chosen on validation Moons (session 11, rule fixed first: 14 one-site fine-tunes on Moons 1, 3-8):
        far-side Mg# RMSE 0.960 of the network's own Mg# head on average, lower in 14 of 14 cases.
        """
        from ..synth.minerals import MOLAR_MASS

        k_mg, k_mgo, k_feo = (self.targets.index(t) for t in ("mg_number", "MgO", "FeO"))
        a = np.maximum(mean[k_mgo, r0:r1], 0.01) / MOLAR_MASS["MgO"]
        b = np.maximum(mean[k_feo, r0:r1], 0.01) / MOLAR_MASS["FeO"]
        total = a + b
        mean[k_mg, r0:r1] = 100.0 * a / total
        d_mgo = 100.0 * b / total**2 / MOLAR_MASS["MgO"]  # ∂Mg#/∂MgO
        d_feo = 100.0 * a / total**2 / MOLAR_MASS["FeO"]  # −∂Mg#/∂FeO
        ys = self.y_std
        s_mgo, s_feo = raw_std[k_mgo] * ys[k_mgo], raw_std[k_feo] * ys[k_feo]
        std[k_mg, r0:r1] = np.hypot(d_mgo * s_mgo, d_feo * s_feo) * factor[k_mg]
        if epi is not None:
            epi[k_mg, r0:r1] = np.hypot(d_mgo * epi[k_mgo, r0:r1], d_feo * epi[k_feo, r0:r1])

    @torch.no_grad()
    def predict_arrays(self, X: np.ndarray, tile_rows: int | None = None, periodic_lon: bool = False,
                       epistemic: bool = False, precision: str = "float32", halo: bool = False
                       ) -> tuple[np.ndarray, ...]:
        """Mean and std (K, H, W) in target units for a validated float32 (band, H, W) array.

        Row tiles (``tile_rows`` rows, default about :data:`PASS_PIXELS` pixels) with the network's
        input halo (``net.halo`` pixels: 1 for the 3×3 stem, more with context windows); edges
        replicate-padded (``periodic_lon`` wraps longitude). ``halo=True``: ``X`` already carries that
        halo ``h`` on every side (a block of ``global_map.invert_lazy``) and the outputs are
        ``(K, H-2h, W-2h)``, without it. Pixels with a NaN or non-positive band come out NaN. With
        ``epistemic=True`` a third array holds the ensemble disagreement (std of the member means), the
        part a new sample can reduce. ``precision`` ``"bfloat16"`` (or ``"auto"``, see
        :func:`workbench.config.inference_precision`) runs the network's matrix products in bfloat16:
        about 1.7-2.0x faster than float32 on the 2-core benchmark machine, which has native bf16 (both
        through the fused kernels of :class:`~workbench.inversion.resnet.PackedInference` on CPUs),
        predictions within about 0.01 wt%
        rms of float32 (``workbench bench inversion`` reports both).
        """
        bf16 = inference_precision(precision, self.device) == "bfloat16"
        net = self.net.to(self.device).eval()
        C, H, W = X.shape
        with np.errstate(invalid="ignore"):
            bad = ~((X > 0) & (X < np.inf)).all(0)  # NaN compares False: catches NaN, inf, zero, negative
        has_bad = bool(bad.any())  # missing pixels go in as NaN: the network's stem_input handles them
        Xf = np.where(bad[None], np.float32(np.nan), X).astype(np.float32) if has_bad else np.asarray(X, np.float32)
        h = net.halo
        if halo:
            if H < 2 * h + 1 or W < 2 * h + 1:
                raise InputError(f"a block with a {h}-pixel halo needs at least {2 * h + 1}x{2 * h + 1} pixels, "
                                 f"got {H}x{W}")
            Xp, H, W, bad = Xf, H - 2 * h, W - 2 * h, bad[h:-h, h:-h]
            has_bad = bool(bad.any())
        elif periodic_lon:
            if W < h:
                raise InputError(f"a periodic map needs at least {h} longitudes, got {W}")
            Xp = np.concatenate([Xf[:, :, -h:], Xf, Xf[:, :, :h]], axis=2)
            Xp = np.pad(Xp, ((0, 0), (h, h), (0, 0)), mode="edge")
        else:
            Xp = np.pad(Xf, ((0, 0), (h, h), (h, h)), mode="edge")
        K = len(self.targets)
        if tile_rows is not None and (not is_whole_number(tile_rows)
                                      or tile_rows < 1):
            raise InputError(f"tile_rows must be a whole number of rows >= 1 (or None for about {PASS_PIXELS} "
                             f"pixels per pass), got {tile_rows!r}")
        tile_rows = int(tile_rows) if tile_rows else max(1, PASS_PIXELS // max(1, W))
        mean = np.empty((K, H, W), np.float32)
        std = np.empty((K, H, W), np.float32)
        epi = np.empty((K, H, W), np.float32) if epistemic else None
        packed = None  # fused oneDNN kernels where the CPU has them (see PackedInference), else forward_flat
        if packed_supported(self.device, bf16):
            try:
                packed = PackedInference(net, tile_rows * W, torch.bfloat16 if bf16 else torch.float32)
            except RuntimeError:  # an optimisation only: a build whose oneDNN refuses the reorder runs unfused
                packed = None
        # the stem's input (normalised bands and context windows) once per group of row tiles: each
        # tile's halo rows would otherwise be normalised and box-averaged again
        group = tile_rows * max(1, STEM_INPUT_PIXELS // max(1, tile_rows * W))
        for g0 in range(0, H, group):
            g1 = min(H, g0 + group)
            xg = torch.from_numpy(np.ascontiguousarray(Xp[None, :, g0 : g1 + 2 * h])).to(self.device)
            zg = net.stem_input(xg, pad=False)  # (1, C, g1 - g0 + 2, W + 2)
            for r0 in range(g0, g1, tile_rows):
                r1 = min(g1, r0 + tile_rows)
                res = net.predict_moments(zg[:, :, r0 - g0 : r1 - g0 + 2], epistemic=epi is not None, bfloat16=bf16,
                                          packed=packed, prepared=True)
                self._store_tile(res, r0, r1, mean, std, epi)
        if np.any(self.discrepancy_std > 0):
            std = np.sqrt(std**2 + self.discrepancy_std[:, None, None] ** 2, dtype=np.float32)
        if has_bad:
            mean[:, bad] = np.nan
            std[:, bad] = np.nan
            if epi is not None:
                epi[:, bad] = np.nan
        return (mean, std) if epi is None else (mean, std, epi)

    def predict(self, refl: xr.DataArray, tile_rows: int | None = None, epistemic: bool = False,
                precision: str = "float32") -> xr.Dataset:
        """Invert a ``(band, lat, lon)`` cube → Dataset of ``<target>`` and ``<target>_std`` on (lat, lon).

        NaN (or zero) reflectance pixels come out NaN; negative reflectance or mismatched bands raise
        :class:`InputError`. ``epistemic=True`` adds ``<target>_epistemic_std`` (ensemble disagreement).
        ``precision``: see :meth:`predict_arrays`.
        """
        _require_cube(refl)
        given = [d for d in refl.dims if d != "band"]
        flips = north_up_flips(refl)
        refl = training_layout(refl, flips)  # answers do not depend on axis order or direction
        X = self.check_input(refl)
        spatial = [d for d in refl.dims if d != "band"]
        periodic = "lon" in refl.coords and is_global_lon(refl["lon"].values)  # a full circle of longitude
        arrays = self.predict_arrays(X, tile_rows, periodic_lon=bool(periodic), epistemic=epistemic,
                                     precision=precision)
        mean, std = arrays[:2]
        coords = {k: v for k, v in refl.coords.items() if "band" not in v.dims}
        out = xr.Dataset(coords=coords, attrs={k: v for k, v in refl.attrs.items() if k == "crs"})
        for k, t in enumerate(self.targets):
            out[t] = xr.DataArray(mean[k], dims=spatial, attrs={"units": UNITS.get(t, "1"),
                                                                   "long_name": f"{t} (residual CNN)"})
            out[f"{t}_std"] = xr.DataArray(std[k], dims=spatial, attrs={
                "units": UNITS.get(t, "1"), "long_name": f"{t} 1-sigma predictive uncertainty (deep ensemble)"})
            if epistemic:
                out[f"{t}_epistemic_std"] = xr.DataArray(arrays[2][k], dims=spatial, attrs={
                    "units": UNITS.get(t, "1"), "long_name": f"{t} ensemble disagreement (1 sigma)"})
        out.attrs["model"] = ARCH
        out.attrs["bands"] = ",".join(self.bands)
        return out.isel(flips).transpose(*given)  # back in the caller's layout

    def calibrate(self, refl: xr.DataArray, truth: xr.Dataset, mask: xr.DataArray | None = None,
                  level: float = 0.95) -> np.ndarray:
        """Scale the predicted std per target so ``level`` intervals cover ``level`` of calibration pixels.

        A post-hoc, split-conformal style recalibration (Kuleshov et al. 2018); use pixels *not* used for
        the held-out evaluation. ``truth`` and ``mask`` are aligned with ``refl`` by position, as in
        :meth:`fit`. Returns the scale factors (also stored and saved).
        """
        if isinstance(level, bool) or not (isinstance(level, (int, float, np.floating)) and 0 < level < 1):
            raise InputError(f"calibrate(level={level!r}): level is the interval's coverage, a number strictly "
                             "between 0 and 1 (0.95 for 95 % intervals)")
        _require_cube(refl)
        _require_layers(refl, truth, mask)
        spatial = [d for d in refl.dims if d != "band"]
        Y = self._targets_array(truth, refl.transpose("band", ...))  # (K, ...) on refl's grid, by position
        M = None if mask is None else np.asarray(mask.transpose(*spatial).values, bool)
        # Predict with unit scale and no domain-shift terms: calibrate the ensemble's own spread (the shift
        # terms apply on top afterwards). Every attribute is put back whatever happens, so a refused or failed
        # calibration leaves the model exactly as it was; only success below stores the new scale.
        saved = self.std_scale, self.discrepancy_std, self.shift_scale, self.extrapolation_scale
        self.std_scale = np.ones(len(self.targets), np.float32)
        self.discrepancy_std, self.shift_scale = np.zeros_like(self.discrepancy_std), 1.0
        self.extrapolation_scale = np.ones_like(self.extrapolation_scale)
        try:
            pred = self.predict(refl)
        finally:
            self.std_scale, self.discrepancy_std, self.shift_scale, self.extrapolation_scale = saved
        zq = interval_z(level)
        scale = []
        for k, t in enumerate(self.targets):
            mean, std = (np.asarray(pred[v].transpose(*spatial).values, float) for v in (t, f"{t}_std"))
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.abs((mean - Y[k]) / std)
            if M is not None:
                z = np.where(M, z, np.nan)
            if not np.isfinite(z).any():
                raise InputError(f"no calibration pixel has a finite {t} truth and prediction (mask empty, or "
                                 "truth all NaN there); calibrate on pixels with known truth")
            q = float(np.nanquantile(z, level))
            scale.append(q / zq if np.isfinite(q) and q > 0 else 1.0)
        self.std_scale = np.asarray(scale, np.float32)
        self.meta["calibration"] = dict(level=level, scale=[float(s) for s in scale])
        return self.std_scale

    # ------------------------------------------------------------------------------------ I/O
    def save(self, path: str | Path, record: dict | None = None) -> str:
        """Save weights + config + band list (atomic); write ``<path>.json`` record; return sha256."""
        path = Path(path)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        blob = {
            "arch": ARCH,
            "config": json.dumps(self.config),
            "state_dict": state,
            "y_mean": torch.from_numpy(self.y_mean),
            "y_std": torch.from_numpy(self.y_std),
            "std_scale": torch.from_numpy(np.asarray(self.std_scale, np.float32)),
            "discrepancy_std": torch.from_numpy(np.asarray(self.discrepancy_std, np.float32)),
            "shift_scale": torch.tensor(float(self.shift_scale)),
            "extrapolation_scale": torch.from_numpy(np.asarray(self.extrapolation_scale, np.float32)),
            "mg_number_from": self.mg_number_from,
            "meta": json.dumps(self.meta, default=float),
        }
        # Both files are written in full under temporary names first and only then renamed into place, one
        # straight after the other: an interruption while writing leaves the old pair intact, never a new
        # checkpoint beside the old record's sha256 (which load() would report as a replaced file). A folder in
        # the way of either is refused before anything is written.
        for target in (path, path.with_suffix(".json")):
            if target.is_dir():
                raise InputError(f"{target} is a folder; give save() a file name whose .pt and .json are free")
        with atomic_path(path) as tmp:
            torch.save(blob, tmp)
            digest = sha256_file(tmp)
            rec = {"file": path.name, "sha256": digest, "arch": ARCH, "config": self.config, "meta": self.meta,
                   **(record or {})}
            with atomic_path(path.with_suffix(".json")) as tmp_rec:
                tmp_rec.write_text(json.dumps(rec, indent=2, default=float))
        return digest

    @classmethod
    def load(cls, path: str | Path, bands: Sequence[str] | None = None, sha256: str | None = None
             ) -> OxideInverter:
        """Load a checkpoint (``weights_only=True``); check its sha256 (when given or recorded beside it)
        and, when ``bands`` is given, that it was trained on exactly those bands."""
        path = Path(path)
        if not path.exists():
            raise CheckpointError(f"checkpoint {path} does not exist; train one with fit() and save()")
        rec_path = path.with_suffix(".json")
        if sha256 is None and rec_path.exists():
            sha256 = json.loads(rec_path.read_text()).get("sha256")
        if sha256 is not None and sha256_file(path) != sha256:
            raise CheckpointError(f"checkpoint {path} sha256 does not match its record; the file is "
                                  "corrupt or was replaced — re-download or retrain it")
        blob = load_weights(path)  # torch.load(weights_only=True); unsafe/corrupt files -> CheckpointError
        if not isinstance(blob, dict) or blob.get("arch") != ARCH:
            got = blob.get("arch") if isinstance(blob, dict) else type(blob).__name__
            raise CheckpointError(f"{path} holds architecture {got!r}, not {ARCH!r}; load it with the "
                                  "code that wrote it or retrain")
        cfg = _checkpoint_config(path, blob)
        if bands is not None and list(bands) != cfg["bands"]:
            raise CheckpointError(f"{path} was trained on bands {cfg['bands']}, not {list(bands)}; "
                                  "use weights for this instrument")
        try:
            m = cls(cfg["bands"], cfg["wavelengths"], cfg["targets"], width=cfg["width"], depth=cfg["depth"],
                    stem=cfg["stem"], members=cfg["members"], context=cfg.get("context", ()))
        except (TypeError, ValueError) as exc:  # InputError included: a checkpoint's config, not the caller's
            raise _not_this_version(path, f"has an unusable config ({exc})") from exc
        _load_state(path, m.net, blob["state_dict"])
        m.y_mean = blob["y_mean"].numpy()
        m.y_std = blob["y_std"].numpy()
        m.std_scale = blob["std_scale"].numpy()
        if "discrepancy_std" in blob:  # checkpoints written before the term existed have none
            m.discrepancy_std = blob["discrepancy_std"].numpy()
        if "shift_scale" in blob:
            m.shift_scale = float(blob["shift_scale"])
        if "extrapolation_scale" in blob:
            m.extrapolation_scale = blob["extrapolation_scale"].numpy()
        m.mg_number_from = str(blob.get("mg_number_from", "head"))  # older checkpoints: the network's head
        m.meta = json.loads(blob["meta"])
        return m


#: Entries of every OxideInverter checkpoint of this version (the later additions are optional).
CHECKPOINT_KEYS = ("config", "state_dict", "y_mean", "y_std", "std_scale", "meta")
#: Keys of a checkpoint's config (``context`` is optional: checkpoints older than context windows have none).
CONFIG_KEYS = ("bands", "wavelengths", "targets", "width", "depth", "stem", "members")


def _not_this_version(path: Path, problem: str) -> CheckpointError:
    """The error for a file that is not an :class:`OxideInverter` checkpoint this code can read."""
    return CheckpointError(f"{path} {problem}: it is not an OxideInverter checkpoint of this version; retrain "
                           "(fit() and save()) or use the committed weights (load_pretrained)")


def _checkpoint_config(path: Path, blob: dict) -> dict:
    """The parsed ``config`` of a checkpoint ``blob`` read from ``path``.

    Parameters
    ----------
    path
        The checkpoint file (named in errors).
    blob
        What ``torch.load`` returned for it.

    Returns
    -------
    dict
        The config, with every key of :data:`CONFIG_KEYS`.

    Raises
    ------
    CheckpointError
        Naming the first missing entry of :data:`CHECKPOINT_KEYS` or the missing config keys, or a config
        that is not a JSON object.
    """
    missing = [k for k in CHECKPOINT_KEYS if k not in blob]
    if missing:
        raise _not_this_version(path, f"has no {', '.join(map(repr, missing))} entry")
    try:
        cfg = json.loads(blob["config"])
    except (TypeError, ValueError) as exc:
        raise _not_this_version(path, f"has a 'config' that is not JSON ({exc})") from exc
    if not isinstance(cfg, dict):
        raise _not_this_version(path, f"has a 'config' that is a {type(cfg).__name__}, not a JSON object")
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise _not_this_version(path, f"has no {', '.join(map(repr, missing))} in its config")
    return cfg


def _load_state(path: Path, net: torch.nn.Module, state) -> None:
    """Load a checkpoint's ``state`` into ``net``; a mismatch is one line naming the first parameter.

    Parameters
    ----------
    path
        The checkpoint file (named in errors).
    net
        The network built from the checkpoint's config.
    state
        The checkpoint's ``state_dict`` entry.

    Raises
    ------
    CheckpointError
        When a parameter is missing, unexpected or of another shape than the config makes it.
    """
    if not isinstance(state, dict):
        raise _not_this_version(path, f"has a 'state_dict' that is a {type(state).__name__}, not a mapping")
    want = net.state_dict()
    wrong = [k for k in want if k in state and tuple(getattr(state[k], "shape", ())) != tuple(want[k].shape)]
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    problem = None
    if wrong:
        k = wrong[0]
        more = f" ({len(wrong) - 1} more parameters differ)" if len(wrong) > 1 else ""
        problem = (f"parameter {k} has shape {tuple(getattr(state[k], 'shape', ()))} in the file where the "
                   f"architecture in its config needs {tuple(want[k].shape)}{more}")
    elif missing:
        problem = f"parameter {missing[0]} is missing" + (f" ({len(missing) - 1} more)" if len(missing) > 1 else "")
    elif unexpected:
        problem = (f"parameter {unexpected[0]} is not in the architecture"
                   + (f" ({len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    if problem is None:
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:  # anything else torch refuses: its first detail line, not its full dump
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
            problem = lines[1] if len(lines) > 1 else lines[0]
    if problem is not None:
        raise CheckpointError(f"{path}: weights do not fit the architecture in its config: {problem}; retrain "
                              "(fit() and save()) or use the committed weights")


def interval_z(level: float) -> float:
    """Half-width in standard deviations of the central ``level`` interval of a normal (0.95 → 1.96)."""
    from scipy.special import erfinv

    return float(np.sqrt(2) * erfinv(level))


def committed_weights(instrument: str) -> Path:
    """Path of the committed pre-trained weights for a virtual instrument."""
    return WEIGHTS_DIR / f"inversion_{instrument}.pt"


def load_pretrained(instrument: str = "kaguya_mi") -> OxideInverter:
    """The committed model pre-trained on the synthetic Moon for ``instrument`` (sha256-checked)."""
    path = committed_weights(instrument)
    if not path.exists():
        raise CheckpointError(f"no committed weights for {instrument!r} at {path}; make them with the committed "
                              f"recipe: `python -m workbench.inversion.train --instrument {instrument} --library "
                              "--library-weight 2 --steps 2400 --context 5 11` (about 15 min on 2 cores)")
    return OxideInverter.load(path)


def synthetic_station_prior() -> Callable[[np.ndarray], np.ndarray]:
    """FeO/TiO2 prior ``f(X (n, 5)) -> (n, 2)`` from the Clementine model pre-trained on the synthetic Moon."""
    model = load_pretrained("clementine_uvvis")
    i_fe, i_ti = model.targets.index("FeO"), model.targets.index("TiO2")

    def prior(X: np.ndarray) -> np.ndarray:
        # Each station is its own uniform (2h+1)² patch, side by side, and the network sees them with
        # halo=True: every station's receptive field is exactly its own patch, as if it stood alone on a
        # uniform plain. Stations stacked into one image would blend through the stem and context windows,
        # making a station's prior depend on its neighbours in the table and on the row order.
        X = np.asarray(X, np.float32)
        b = 2 * model.net.halo + 1
        patches = np.repeat(np.repeat(X.T[:, None, :], b, axis=1), b, axis=2)  # (band, b, n·b)
        mean, _ = model.predict_arrays(patches, halo=True)  # (K, 1, n·b - 2h): station k at column k·b
        return np.c_[mean[i_fe, 0, ::b], mean[i_ti, 0, ::b]]

    return prior
