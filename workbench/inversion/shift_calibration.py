"""Simulation-based calibration of how far a one-site fine-tune strays elsewhere in a new region.

Fine-tuning at one far-side site (Chang'e-6) fixes the model *there*; the rest of the far side still
differs in ways one site cannot show, and intervals calibrated on the near side under-cover it. The
same experiment repeated on other synthetic Moons (:data:`~workbench.inversion.experiment.VALIDATION_MOONS`,
never the benchmark's; with the real LOLA/WAC data at hand they share its geography and differ in their
composition draws) shows how far
such extrapolations stray relative to the model's stated std; a
per-target factor that makes 95 % intervals cover 95 % on average over those experiments is stored with
the pre-trained weights (``meta["extrapolation"]``) and applied by every default fine-tune, in place of the
factor estimated from the one site's own errors (see :meth:`OxideInverter.fine_tune`).

Run ``python -m workbench.inversion.shift_calibration --instrument clementine_uvvis`` to (re)compute it
for committed weights (about 6 min on 2 cores); it then re-measures the held-out figures of the weights'
JSON record (about 2 min more, :func:`workbench.inversion.train.refresh_heldout_record`), which the factor
changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from .experiment import (
    VALIDATION_MOONS,
    abs_z,
    fine_tuned,
    make_split,
    model_instrument,
    observed_moon,
    pretraining_sources,
    site_latlon,
)
from .model import TARGETS, OxideInverter, committed_weights, interval_z

#: Fine-tuning sites of the calibration experiments (the benchmark's and the advisor's usual choice).
SITES = ("Chang'e-6", "Korolev")


def far_side_z(pretrained: OxideInverter, moon_seeds: tuple[int, ...] = VALIDATION_MOONS,
               sites: tuple[str, ...] = SITES, instrument: str | None = None,
               ppd: float = 4, snr: float = 100.0, ft_steps: int = 150, seed: int = 0, pretrain_seed: int = 0,
               progress: Callable[[str], None] | None = None) -> list[dict]:
    """Standardised far-side errors of the default fine-tune, one case per validation Moon and site.

    For each Moon in ``moon_seeds`` (never the benchmark's) and each site, ``pretrained`` is fine-tuned
    as :func:`far_side_experiment` does given ``replay=pretraining_sources(pretrained)`` (``fine_tune``
    defaults, replaying the model's own pre-training data; the benchmark's replicate Moon does so) but
    without any domain-shift term (``discrepancy="none"``: the std is the ensemble's, calibrated on the
    near side), and ``|z| = |prediction − truth| / std`` (:func:`~workbench.inversion.experiment.abs_z`: ∞
    where a zero std misses) is kept for every far-side test pixel where it is not NaN. These are the
    calibration data of :func:`extrapolation_scale`, whose factor then replaces the site's own.

    ``instrument``: the virtual instrument the Moons are observed with (default: that of the model's spectral
    library, else the instrument whose band names are the model's, :func:`model_instrument`).

    Returns
    -------
    list of dict
        ``{"moon": seed, "site": name, "z": {target: float32 array of |z|}}``.
    """
    say = progress or (lambda s: None)
    instrument = instrument or model_instrument(pretrained)
    sources = pretraining_sources(pretrained, instrument, ppd, snr, pretrain_seed)
    cases = []
    for moon in moon_seeds:
        refl, truth = observed_moon(moon, instrument, ppd, snr)
        for site in sites:
            say(f"Moon {moon}, {site}")
            masks = make_split(truth, site_latlon(site))
            tuned = fine_tuned(pretrained, refl, truth, masks["site"], steps=ft_steps, seed=seed,
                               replay=list(sources.values()), discrepancy="none")
            pred = tuned.predict(refl)
            m = masks["test"].values
            z = {t: abs_z(pred[t].values, truth[t].values, pred[f"{t}_std"].values)[m] for t in pretrained.targets}
            z = {t: a[~np.isnan(a)].astype(np.float32) for t, a in z.items()}
            cases.append({"moon": int(moon), "site": str(site), "z": z})
    return cases


def extrapolation_scale(cases: list[dict], targets=TARGETS, level: float = 0.95, per_target: bool = True
                        ) -> np.ndarray:
    """Factor on the std per target so that ``level`` intervals cover ``level`` of the truth, on average
    over the ``cases`` of :func:`far_side_z` (each case weighted equally, whatever its pixel count).

    A simulation-based calibration of the domain-shift term: one fine-tuning site cannot show how the
    rest of a new region differs from it, but replicate experiments on other synthetic Moons show how
    far such extrapolations stray, relative to the model's stated std (in the spirit of split-conformal
    calibration, with whole experiments as the exchangeable units and average coverage as the criterion;
    Vovk et al. 2005, Angelopoulos & Bates 2023).
    ``per_target=False`` gives one factor for all targets (the mean over cases *and* targets).
    """
    zq = interval_z(level)
    groups = [list(targets)] if not per_target else [[t] for t in targets]
    scale = np.ones(len(targets))
    for group in groups:
        zs = [np.sort(c["z"][t]) for c in cases for t in group if c["z"][t].size]
        if not zs:
            continue

        def cover(k: float, zs: list = zs) -> float:
            return float(np.mean([np.searchsorted(z, zq * k, side="right") / z.size for z in zs]))

        lo, hi = 1e-3, 1e3
        for _ in range(80):  # bisection in log space on a non-decreasing step function
            mid = float(np.sqrt(lo * hi))
            lo, hi = (mid, hi) if cover(mid) < level else (lo, mid)
        for t in group:
            scale[list(targets).index(t)] = hi
    return scale


def case_coverage(cases: list[dict], scale: np.ndarray | None = None, targets=TARGETS, level: float = 0.95
                  ) -> np.ndarray:
    """Coverage of ``level`` intervals per case and target (cases × targets), with the std times ``scale``."""
    zq = interval_z(level)
    k = np.ones(len(targets)) if scale is None else np.asarray(scale, float)
    return np.array([[float(np.mean(c["z"][t] <= zq * k[j])) for j, t in enumerate(targets)] for c in cases])


def leave_one_moon_out(cases: list[dict], targets=TARGETS, level: float = 0.95, per_target: bool = True
                       ) -> np.ndarray:
    """Coverage (cases × targets) of each Moon's cases with the factor estimated on the *other* Moons'
    cases: an honest estimate of how well :func:`extrapolation_scale` holds on a Moon it never saw."""
    moons = sorted({c["moon"] for c in cases})
    if len(moons) < 2:
        raise ValueError("leave-one-Moon-out needs cases from at least two Moons")
    rows = []
    for moon in moons:
        rest = [c for c in cases if c["moon"] != moon]
        scale = extrapolation_scale(rest, targets, level, per_target)
        rows.append(case_coverage([c for c in cases if c["moon"] == moon], scale, targets, level))
    return np.vstack(rows)


def coverage_summary(cov: np.ndarray, targets=TARGETS, level: float = 0.95,
                     band: tuple[float, float] = (0.90, 0.98)) -> dict:
    """Mean coverage, mean |coverage − level| and the share of case-targets inside ``band``."""
    return {"mean_coverage": round(float(cov.mean()), 4),
            "mean_abs_deviation": round(float(np.mean(np.abs(cov - level))), 4),
            "share_in_band": round(float(np.mean((cov >= band[0]) & (cov <= band[1]))), 4),
            "by_target": dict(zip(targets, np.round(cov.mean(0), 4).tolist(), strict=True))}


#: Why a weights record's held-out figures are re-measured after :func:`calibrate_weights` re-saved them.
STALE_REASON = "measured before the extrapolation factor was calibrated"


def _check_moons(moon_seeds) -> tuple[int, ...]:
    """``moon_seeds`` as a tuple, refused unless it names at least two different Moons (the leave-one-Moon-out
    check of :func:`calibrate_weights` scores each Moon with the factor of the others)."""
    moons = tuple(moon_seeds)
    if len(set(moons)) < 2:
        raise InputError(f"the extrapolation calibration needs at least two different validation Moons (each is "
                         f"scored with the factor of the others), got {list(moons)}; give e.g. --moons 1 3 "
                         f"(default: {' '.join(map(str, VALIDATION_MOONS))})")
    return moons


def calibrate_weights(path: Path, moon_seeds: tuple[int, ...] = VALIDATION_MOONS, sites: tuple[str, ...] = SITES,
                      ppd: float = 4, ft_steps: int = 150, progress: Callable[[str], None] | None = None,
                      instrument: str | None = None) -> dict:
    """Compute the extrapolation factor of the weights at ``path``, store it in their ``meta`` and re-save
    them (atomically, new sha256, the JSON record kept and extended). Returns the ``extrapolation`` entry.

    Parameters
    ----------
    path
        The weights (``.pt``; their JSON record beside them).
    moon_seeds
        Validation Moons of :func:`far_side_z`: at least two different ones (checked before any fine-tune).
    sites
        Fine-tuning sites of :func:`far_side_z`.
    ppd, ft_steps
        Grid resolution of the Moons and fine-tuning steps of each case.
    progress
        Called with a line of progress per case.
    instrument
        The virtual instrument the weights read (default: their spectral library's, else the instrument whose
        bands they have, see :func:`workbench.inversion.experiment.model_instrument`).

    Notes
    -----
    The factor widens every fine-tuned interval, so the held-out figures in the record no longer describe the
    weights: the record marks them ``heldout_stale`` until
    :func:`workbench.inversion.train.refresh_heldout_record` re-measures them (:func:`main` does).
    """
    moon_seeds = _check_moons(moon_seeds)
    t0 = time.perf_counter()
    model = OxideInverter.load(path)
    instrument = instrument or model_instrument(model)
    cases = far_side_z(model, moon_seeds, sites, instrument=instrument, ppd=ppd, ft_steps=ft_steps,
                       progress=progress)
    scale = extrapolation_scale(cases, model.targets)
    entry = {
        "scale": [round(float(k), 4) for k in scale], "level": 0.95,
        "method": ("per-target factor on the std so that 95 % intervals cover 95 % of far-side truth on average "
                   "over one-site fine-tunes on other synthetic Moons (workbench.inversion.shift_calibration)"),
        "moons": list(moon_seeds), "sites": list(sites), "cases": len(cases), "ppd": ppd, "ft_steps": ft_steps,
        "leave_one_moon_out": coverage_summary(leave_one_moon_out(cases, model.targets), model.targets),
        "without_factor": coverage_summary(case_coverage(cases, None, model.targets), model.targets),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    model.meta["extrapolation"] = entry
    rec_path = path.with_suffix(".json")
    record = json.loads(rec_path.read_text()) if rec_path.exists() else {}
    for key in ("file", "sha256", "arch", "config", "meta"):
        record.pop(key, None)
    record["extrapolation_command"] = "python -m workbench.inversion.shift_calibration --weights " + path.name
    from .train import HELDOUT_KEYS

    if any(k in record for k in HELDOUT_KEYS):  # they describe the weights without the factor
        record["heldout_stale"] = (f"{', '.join(k for k in HELDOUT_KEYS if k in record)} {STALE_REASON}; "
                                   "re-measure with python -m workbench.inversion.train --refresh-record "
                                   f"{path.name} --reason '{STALE_REASON}'")
    model.save(path, record=record)
    return entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instrument", default=None,
                   help="the instrument the weights read, and whose committed weights are calibrated without "
                        "--weights (default: clementine_uvvis; with --weights: their spectral library's, else the "
                        "instrument with their bands)")
    p.add_argument("--weights", default=None, help="another checkpoint instead of the committed one")
    p.add_argument("--moons", type=int, nargs="*", default=list(VALIDATION_MOONS),
                   help="validation Moons (at least two)")
    p.add_argument("--ppd", type=float, default=4, help="pixels per degree of the Moons (default 4)")
    p.add_argument("--ft-steps", type=int, default=150, help="fine-tuning steps of each case (default 150)")
    p.add_argument("--skip-record", action="store_true",
                   help="do not re-measure the held-out figures of the weights' JSON record afterwards (about "
                        "2 min; they are then marked heldout_stale)")
    args = p.parse_args(argv)
    moons = _check_moons(args.moons)
    t0 = time.perf_counter()
    path = Path(args.weights) if args.weights else committed_weights(args.instrument or "clementine_uvvis")
    if args.weights and not path.is_absolute() and not path.exists():
        path = committed_weights(args.instrument or "clementine_uvvis").with_name(args.weights)
    say = lambda s: print(f"[{time.perf_counter() - t0:6.0f} s] {s}", flush=True)  # noqa: E731
    # the weights' instrument, known before the fine-tunes (the same one observes the record's re-measurement)
    instrument = args.instrument or model_instrument(OxideInverter.load(path))
    entry = calibrate_weights(path, moons, ppd=args.ppd, ft_steps=args.ft_steps, progress=say, instrument=instrument)
    print(json.dumps(entry, indent=1))
    if not args.skip_record and path.with_suffix(".json").exists():
        from .train import refresh_heldout_record

        # the factor widens every fine-tuned interval: the record's figures must describe the weights as saved
        refresh_heldout_record(path, STALE_REASON, instrument, ppd=args.ppd, ft_steps=args.ft_steps, progress=say)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
