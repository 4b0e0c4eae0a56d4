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
import sys
import time

from .experiment import far_side_experiment, rmse_table
from .model import committed_weights


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instrument", default="clementine_uvvis")
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
    p.add_argument("--skip-extrapolation", action="store_true",
                   help="do not calibrate the extrapolation factor on validation Moons afterwards (about 6 min; "
                        "see workbench.inversion.shift_calibration)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    exp = far_side_experiment(args.instrument, ppd=args.ppd, seed=args.seed, steps=args.steps,
                              ft_steps=args.ft_steps, members=args.members, methods=("lucey2000",),
                              library=args.library, library_weight=args.library_weight, beta_nll=args.beta_nll,
                              context=tuple(args.context),
                              progress=lambda s: print(f"[{time.perf_counter() - t0:6.0f} s] {s}", flush=True))
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
        "heldout_rmse_wt_pct": rmse_table(exp),
        "interval_coverage": exp.coverage,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    digest = model.save(out, record=record)
    print(exp.table.round(3).to_string())
    if not args.skip_extrapolation:
        from pathlib import Path

        from .model import sha256_file
        from .shift_calibration import calibrate_weights

        entry = calibrate_weights(Path(out), progress=lambda s: print(f"[{time.perf_counter() - t0:6.0f} s] {s}"))
        print(f"extrapolation factor {entry['scale']} (leave-one-Moon-out: {entry['leave_one_moon_out']})")
        digest = sha256_file(out)
    print(f"saved {out} sha256={digest}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
