"""Pre-train the committed inversion weights: ``python -m workbench.inversion.train --instrument NAME``.

Trains :class:`~workbench.inversion.model.OxideInverter` on the synthetic Moon's **near side**
(``workbench.synth.observe(make_moon(seed), instrument, snr=100, seed=seed+1)``), calibrates its
intervals on a near-side stripe lattice, evaluates on the far side (the hold-out), and writes
``workbench/weights/inversion_<instrument>.pt`` plus a JSON record (command, data, seed, sha256 and the
held-out metrics) next to it. Afterwards the extrapolation factor of one-site fine-tunes is calibrated on
validation Moons (:mod:`workbench.inversion.shift_calibration`) and stored with the weights.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .experiment import Experiment, far_side_experiment, library_recipe, rmse_table
from .model import OxideInverter, committed_weights

#: The record's held-out figures, replaced together by :func:`refresh_heldout_record`.
HELDOUT_KEYS = ("heldout_rmse_wt_pct", "interval_coverage")


def heldout_figures(model: OxideInverter, instrument: str, ppd: float = 4, seed: int = 0, ft_steps: int = 150,
                    progress: Callable[[str], None] | None = None) -> dict:
    """The far-side hold-out figures of a weights record: RMSE per method and target (Mg# in its own units)
    and the 68/95 % interval coverage of the pre-trained and the Chang'e-6 fine-tuned model, for ``model``
    as it is (its Mg# rule and interval factors), on Moon ``seed`` as :func:`far_side_experiment` makes it."""
    return _record_figures(far_side_experiment(instrument, ppd=ppd, seed=seed, ft_steps=ft_steps, pretrained=model,
                                               methods=("lucey2000",), progress=progress))


def _record_figures(exp: Experiment) -> dict:
    """The :data:`HELDOUT_KEYS` of a weights record from a far-side experiment."""
    return dict(zip(HELDOUT_KEYS, (rmse_table(exp), exp.coverage), strict=True))


def refresh_heldout_record(path: str | Path, reason: str, instrument: str | None = None, ppd: float = 4,
                           ft_steps: int = 150, progress: Callable[[str], None] | None = None) -> dict:
    """Re-measure the held-out figures in the JSON record of the weights at ``path`` (the weights file is
    not touched, so its sha256 stands) and keep the figures they replace, with ``reason``, under
    ``heldout_history``: a record's figures must describe the weights as they now predict (e.g. after the
    extrapolation factor was added, which changes every fine-tuned interval). ``instrument``: the one the
    weights read (default: that of their spectral library, else the ``inversion_<instrument>`` file name)."""
    path = Path(path)
    rec_path = path.with_suffix(".json")
    record = json.loads(rec_path.read_text())
    model = OxideInverter.load(path)  # checks the weights against the record's sha256
    instrument = instrument or _instrument_of(model, path)
    new = heldout_figures(model, instrument, ppd=ppd, seed=int(record.get("seed", 0)), ft_steps=ft_steps,
                          progress=progress)
    today = datetime.date.today().isoformat()
    old = {k: record.pop(k) for k in HELDOUT_KEYS if k in record}
    record.pop("heldout_stale", None)  # set by shift_calibration.calibrate_weights: these are the fresh figures
    if old:
        record.setdefault("heldout_history", []).append({**old, "replaced_on": today, "reason": reason})
    record.update(new)
    record["heldout_measured"] = {
        "on": today, "ppd": ppd, "ft_steps": ft_steps,
        "command": shlex.join(["python", "-m", "workbench.inversion.train", "--refresh-record", path.name,
                               "--instrument", instrument, "--ppd", f"{ppd:g}", "--ft-steps", str(ft_steps),
                               "--reason", reason]),
        "how": "far_side_experiment(instrument, ppd, pretrained=these weights, methods=('lucey2000',)): "
               "resnet_finetuned is the default one-site fine-tune at Chang'e-6"}
    from ..io import atomic_write_text

    atomic_write_text(rec_path, json.dumps(record, indent=2, default=float))
    return new


def _instrument_of(model: OxideInverter, path: Path) -> str:
    """The instrument of weights without a stated one: their spectral library's, else their file name's."""
    from ..errors import InputError
    from ..synth.instruments import INSTRUMENTS

    name = (library_recipe(model) or {}).get("instrument") or path.stem.removeprefix("inversion_")
    if name not in INSTRUMENTS:
        raise InputError(f"cannot tell which instrument {path.name} reads (no spectral library recorded, and "
                         f"{name!r} is none of {sorted(INSTRUMENTS)}); pass --instrument")
    return name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instrument", default=None,
                   help="virtual instrument (default: clementine_uvvis; with --refresh-record: the weights' own)")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--ft-steps", type=int, default=150)
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ppd", type=float, default=4)
    p.add_argument("--library", action="store_true",
                   help="also pre-train on the physics-based spectral library (workbench.synth.library)")
    p.add_argument("--library-weight", type=float, default=1.0,
                   help="weight of the library's loss against the near side's (default 1: equal)")
    p.add_argument("--beta-nll", type=float, default=0.0,
                   help="beta-NLL loss (Seitzer et al. 2022): 0 = Gaussian NLL (default), 0.5 = their recommendation")
    p.add_argument("--context", type=int, nargs="*", default=[],
                   help="context windows of the network (odd sizes in pixels, e.g. 5 11; default: none)")
    p.add_argument("--refresh-record", metavar="WEIGHTS.pt", default=None,
                   help="do not train: re-measure the held-out figures in the JSON record of WEIGHTS.pt (a name "
                        "in workbench/weights or a path), keeping the old ones with --reason (about 2 min)")
    p.add_argument("--reason", default=None, help="why the record's figures are re-measured (with --refresh-record)")
    p.add_argument("--skip-extrapolation", action="store_true",
                   help="do not calibrate the extrapolation factor on validation Moons afterwards (about 6 min; "
                        "see workbench.inversion.shift_calibration)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    say = lambda s: print(f"[{time.perf_counter() - t0:6.0f} s] {s}", flush=True)  # noqa: E731
    if args.refresh_record:
        from .model import WEIGHTS_DIR

        if not args.reason:
            p.error("--refresh-record needs --reason (kept beside the figures it replaces)")
        path = Path(args.refresh_record)
        path = path if path.exists() else WEIGHTS_DIR / path
        new = refresh_heldout_record(path, args.reason, args.instrument, ppd=args.ppd, ft_steps=args.ft_steps,
                                     progress=say)
        print(json.dumps(new["heldout_rmse_wt_pct"], indent=1))
        return 0
    args.instrument = args.instrument or "clementine_uvvis"
    exp = far_side_experiment(args.instrument, ppd=args.ppd, seed=args.seed, steps=args.steps,
                              ft_steps=args.ft_steps, members=args.members, methods=("lucey2000",),
                              library=args.library, library_weight=args.library_weight, beta_nll=args.beta_nll,
                              context=tuple(args.context), progress=say)
    model = exp.models["resnet_pretrained"]
    out = args.out or committed_weights(args.instrument)
    record = {
        "command": "python -m workbench.inversion." + "train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": (f"workbench.synth.make_moon(seed={args.seed}, resolution_ppd={args.ppd}) observed with "
                 f"observe(instrument={args.instrument!r}, snr=100, seed={args.seed + 1}); training pixels: "
                 "near side (|lon|<=90) minus a calibration stripe lattice"
                 + ("; plus workbench.synth.library.spectral_library(seed=seed+100) observed the same way "
                    "(physics-based spectra of random lunar rock compositions, no map)" if args.library else "")),
        "seed": args.seed,
        "heldout": "far side (|lon|>90) minus a ring around the Chang'e-6 site",
        **_record_figures(exp),
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    digest = model.save(out, record=record)
    print(exp.table.round(3).to_string())
    if not args.skip_extrapolation:
        from .model import sha256_file
        from .shift_calibration import calibrate_weights

        # the weights' own instrument, grid and fine-tuning steps (a Kaguya or WAC model read with Clementine's
        # bands would fail after all the training)
        entry = calibrate_weights(Path(out), ppd=args.ppd, ft_steps=args.ft_steps, progress=say,
                                  instrument=args.instrument)
        print(f"extrapolation factor {entry['scale']} (leave-one-Moon-out: {entry['leave_one_moon_out']})")
        digest = sha256_file(out)
        # the fine-tuned intervals now carry the factor: the record's coverage must describe them
        refresh_heldout_record(Path(out), "measured before the extrapolation factor was calibrated", args.instrument,
                               ppd=args.ppd, ft_steps=args.ft_steps, progress=say)
    print(f"saved {out} sha256={digest}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
