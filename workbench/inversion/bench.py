"""``workbench bench inversion``: held-out accuracy, fine-tuning gain, coverage and global-map speed.

Everything is measured in one run: the far-side hold-out experiment (committed pre-trained weights
when present, otherwise a model pre-trained here), the same experiment on a second synthetic Moon that
no choice was made on (``replicate_moon``), the matmul peak of this machine and the 16 px/deg global
map written to zarr through dask.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr


def map_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, dict[str, float | None]]:
    """RMS and largest absolute difference ``a − b`` per target, over the pixels finite in both (wt %).

    How far a map made with faster arithmetic (``a``, e.g. bfloat16) strays from the float32 map (``b``)
    of the same model and input. ``None`` for a target with no pixel finite in both.
    """
    out = {}
    for t in a:
        d = np.asarray(a[t], float) - np.asarray(b[t], float)
        d = d[np.isfinite(d)]
        out[t] = ({"rms": round(float(np.sqrt(np.mean(d ** 2))), 4), "max_abs": round(float(np.abs(d).max()), 4)}
                  if d.size else {"rms": None, "max_abs": None})
    return out


def matmul_gflops_by_backend(n: int = 2048, repeats: int = 10, precision: str = "float32") -> dict[str, float]:
    """Measured GEMM throughput (GFLOP/s) of an ``n``×``n`` product in ``precision``, best of ``repeats``,
    through each backend torch offers on this machine: ``torch.matmul`` and, where present, oneDNN's
    linear with a prepacked weight (the kernels :class:`~workbench.inversion.resnet.PackedInference`
    uses; on the AMD EPYC of these machines 2.3x torch.matmul's float32 rate)."""
    import torch

    from .resnet import packed_supported

    dtype = getattr(torch, precision)
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    runs = {"torch.matmul": lambda: a @ b}
    if packed_supported("cpu", bfloat16=precision == "bfloat16"):
        ops = torch.ops.mkldnn
        wp = ops._reorder_linear_weight(b.t().contiguous(), n)
        runs["onednn_linear"] = lambda: ops._linear_pointwise(a, wp, None, "none", [], "")
    out = {}
    for name, f in runs.items():
        f()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * n**3 / best / 1e9
    return out


def best_gemm_rates(*measurements: dict[str, float]) -> dict[str, float]:
    """Each backend's best GEMM rate over several measurements (e.g. before and after the map runs).

    Other load on a shared machine only slows a GEMM, so the fastest measurement of a backend is the closest
    to its peak; one measurement taken while the machine was busy would understate it.

    Parameters
    ----------
    *measurements
        Dicts of backend name → GFLOP/s, as :func:`matmul_gflops_by_backend` returns.

    Returns
    -------
    dict
        Backend name → the maximum of its rates, in the order the backends were first seen.

    Examples
    --------
    >>> best_gemm_rates({"torch.matmul": 50.0, "onednn_linear": 104.8}, {"torch.matmul": 60.0, "onednn_linear": 99.0})
    {'torch.matmul': 60.0, 'onednn_linear': 104.8}
    """
    best: dict[str, float] = {}
    for rates in measurements:
        for name, rate in rates.items():
            best[name] = max(best.get(name, rate), rate)
    return best


def flop_utilization(model_gflops: float, peak_gflops: float, suffix: str = "") -> dict:
    """The benchmark's ``flop_utilization<suffix>`` entry: the model's rate over the GEMM peak (3 decimals).

    Above 1 the number is kept (never clipped) and a ``flop_utilization<suffix>_note`` says why it cannot be
    right: the GEMM peak was measured while other load slowed the machine.

    Parameters
    ----------
    model_gflops
        The network's achieved rate in the map run (GFLOP/s).
    peak_gflops
        The fastest GEMM backend's rate (GFLOP/s), see :func:`best_gemm_rates`.
    suffix
        Appended to the keys (e.g. ``"_float32"``).

    Returns
    -------
    dict
        ``{"flop_utilization<suffix>": ratio}``, plus the note when the ratio exceeds 1.

    Examples
    --------
    >>> flop_utilization(52.4, 104.8)
    {'flop_utilization': 0.5}
    """
    ratio = round(model_gflops / peak_gflops, 3)
    out: dict = {f"flop_utilization{suffix}": ratio}
    if ratio > 1:
        out[f"flop_utilization{suffix}_note"] = (
            f"above 1: the GEMM peak ({peak_gflops:.1f} GFLOP/s) was measured while the machine was busy with "
            f"other work, so it understates this machine's peak (the model ran at {model_gflops:.1f} GFLOP/s); "
            "re-run the benchmark on an idle machine for a meaningful utilisation")
    return out


def _upsample(refl: xr.DataArray, factor: int) -> xr.DataArray:
    """Nearest-neighbour upsampling of a global (band, lat, lon) grid by an integer factor."""
    from ..geo import global_grid

    ppd = refl.sizes["lon"] / 360.0 * factor
    lat, lon = global_grid(ppd)
    data = np.repeat(np.repeat(refl.values, factor, axis=1), factor, axis=2)
    return xr.DataArray(data, dims=refl.dims, coords={"band": refl["band"], "wavelength": refl["wavelength"],
                                                      "lat": lat, "lon": lon}, attrs=refl.attrs)


def bias_only_gain_ceiling(rmse: dict[str, float], bias: dict[str, float]) -> dict[str, float]:
    """The fractional RMSE cut that removing a model's mean error (and nothing else) would give, per target.

    RMSE² = bias² + σ² over the same pixels, so a perfect offset correction leaves RMSE σ = √(RMSE² − bias²)
    and cuts it by 1 − σ / RMSE: the most a fine-tune that only shifts the predictions can gain.
    """
    return {t: round(1 - float(np.sqrt(max(rmse[t] ** 2 - b**2, 0.0))) / rmse[t], 4) for t, b in bias.items()}


def _ratios(table: dict[str, dict[str, float]]) -> dict:
    """Fine-tuning gain and the fine-tuned CNN's RMSE ratios to Lucey 2000 and the best scikit-learn model."""
    pre, ft = table["resnet_pretrained"], table["resnet_finetuned"]
    sk_best = {t: min(table[k][t] for k in ("pls", "random_forest", "gbm", "gbm_library") if k in table)
               for t in pre}
    return {"finetune_feo_gain": round(1 - ft["FeO"] / pre["FeO"], 4),
            "finetune_gain_by_target": {t: round(1 - ft[t] / pre[t], 4) for t in pre},
            "ratio_to_lucey2000": {t: round(ft[t] / table["lucey2000"][t], 3) for t in ("FeO", "TiO2")},
            "ratio_to_best_sklearn": {t: round(ft[t] / sk_best[t], 3) for t in pre}}


def _mean_coverage(cov: dict, key: str) -> float:
    """The mean over targets of one interval coverage (``"cov95"`` or ``"cov68"``) of
    :func:`~workbench.inversion.experiment.coverage`'s output, to 4 decimals."""
    return round(float(np.mean([c[key] for c in cov.values()])), 4)


def area_weighted_figures(exp) -> dict:
    """The held-out RMSE and 95 % interval coverage of an experiment with each pixel weighted by its area.

    On a lat/lon grid the polar pixels are many and small (at 4 px/deg a third of the far-side test pixels lie
    poleward of 60°, an eighth of the test area), so the pixel averages of ``heldout_rmse`` and
    ``interval_coverage_95`` over-count the poles. These are the same figures over area on the sphere
    (:func:`workbench.geo.area_weights`, ∝ cos lat), from the predictions the experiment already made (no model
    is run).

    Parameters
    ----------
    exp
        A :class:`~workbench.inversion.experiment.Experiment` with ``predictions`` (``resnet_finetuned`` among
        them, with its stds), ``truth`` and the ``test`` mask.

    Returns
    -------
    dict
        ``heldout_rmse_area_weighted`` (method → target → RMSE, 4 decimals, finite ones only, as
        ``heldout_rmse``), ``interval_coverage_95_area_weighted`` (the fine-tuned model's coverage averaged
        over targets, 4 decimals, as ``interval_coverage_95``) and ``interval_coverage_by_target_area_weighted``.
    """
    from .experiment import coverage, metrics
    from .model import TARGETS

    test = exp.masks["test"]
    rmse = {}
    for name, pred in exp.predictions.items():
        met = metrics(pred, exp.truth, test, area_weighted=True)
        rmse[str(name)] = {t: round(float(d["rmse"]), 4) for t, d in met.items() if np.isfinite(d["rmse"])}
    tuned = exp.predictions["resnet_finetuned"]
    cov = coverage(tuned, exp.truth, test, targets=[t for t in TARGETS if t in tuned and f"{t}_std" in tuned],
                   area_weighted=True)
    return {"heldout_rmse_area_weighted": rmse,
            "interval_coverage_95_area_weighted": _mean_coverage(cov, "cov95"),
            "interval_coverage_by_target_area_weighted": cov}


def _interval_factors(pretrained, tuned) -> dict:
    """What widens the fine-tuned model's intervals beyond their near-side calibration, and where it came from."""
    calib = pretrained.meta.get("extrapolation", {})
    scale = np.round(tuned.extrapolation_scale, 4).tolist()
    return {"extrapolation_scale": dict(zip(tuned.targets, scale, strict=True)),
            "site_shift_scale": round(float(tuned.shift_scale), 4),
            "extrapolation_calibration": {k: calib[k] for k in ("moons", "sites", "leave_one_moon_out") if k in calib}}


def _ft_steps(fast: bool) -> int:
    """Fine-tuning steps of every experiment in the benchmark (fewer in fast mode)."""
    return 60 if fast else 150


#: A synthetic Moon kept for testing only: no choice of weights, recipe or fine-tuning was made on it
#: (the choices and the interval calibration use the validation Moons 1 and 3-8,
#: :data:`workbench.inversion.experiment.VALIDATION_MOONS`; the benchmark's main experiment uses seed 0).
REPLICATE_SEED = 2


def replicate_moon(pretrained, fast: bool = False, seed: int = REPLICATE_SEED, geography: str = "auto") -> dict:
    """The far-side experiment on another synthetic Moon (``seed``) with the same committed weights:
    how much the benchmark's ratios owe to one draw of the synthetic Moon. Fine-tuned at Chang'e-6, as
    the main run, replaying what the weights were pre-trained on (Moon 0's near side and the library), as
    the interval calibration on the validation Moons does.

    With ``geography="auto"`` the Moon shares the benchmark Moon's geography (the real LOLA topography,
    mare outline and terranes, when ``make_moon`` finds them): the seed draws the composition fields and
    the small fresh craters anew, not the map. That tests a new draw of the chemistry; ``"procedural"``
    (a made-up map of maria and basins) also tests a geography the weights never saw.
    """
    from .experiment import far_side_experiment, pretraining_sources, rmse_table

    t0 = time.perf_counter()
    replay = list(pretraining_sources(pretrained, "clementine_uvvis", ppd=4).values())
    exp = far_side_experiment("clementine_uvvis", ppd=4, seed=seed, ft_steps=_ft_steps(fast), pretrained=pretrained,
                              sklearn_pixels=10_000 if fast else 40_000,
                              methods=("lucey2000", "pls", "random_forest", "gbm"), replay=replay,
                              geography=geography)
    table = rmse_table(exp)
    cov = exp.coverage["resnet_finetuned"]
    used = str(exp.truth.attrs.get("geography", "unknown"))
    bench_geography = str(replay[0][1].attrs.get("geography", "unknown"))  # Moon 0, which the weights saw
    return {"seed": seed, "heldout_rmse": table, **_ratios(table),
            "interval_coverage_95": _mean_coverage(cov, "cov95"),
            "seconds": round(time.perf_counter() - t0, 1),
            "geography": used,
            "note": _replicate_note(seed, geography, used, bench_geography, library=len(replay) > 1)}


def _replicate_note(seed: int, geography: str, used: str, bench_geography: str, library: bool) -> str:
    """What :func:`replicate_moon`'s Moon shares with the benchmark's (``used`` and ``bench_geography``: the
    geographies the two Moons were built with) and what its fine-tune replays."""
    if used == bench_geography == "real":
        shared = ("It shares the benchmark Moon's geography (the real topography, mare outline and terranes); the "
                  "seed re-draws the composition fields and small craters.")
    elif used == bench_geography:
        shared = (f"Both Moons are {used} (the real LOLA/WAC data were not at hand): each seed draws its own mare "
                  "outline, topography and craters; only the named basins are shared.")
    else:
        shared = f"Its geography ({used}) is not the benchmark Moon's ({bench_geography})."
    replayed = "Moon 0's near side and the spectral library" if library else "Moon 0's near side"
    return (f"make_moon(seed={seed}, geography={geography!r}) observed the same way; the committed weights never "
            f"saw it and no choice was made on it. {shared} The fine-tune replays {replayed}, as the interval "
            "calibration does")


def run(fast: bool = False, map_repeats: int = 2) -> dict:
    from ..config import fast_mode
    from .experiment import (
        advisor_site_experiment,
        bias_table,
        far_side_experiment,
        finetune_modes,
        label_ceiling_experiment,
        rmse_table,
    )
    from .global_map import invert_to_zarr
    from .model import committed_weights, load_pretrained

    fast = fast or fast_mode()
    instrument = "clementine_uvvis"
    pretrained = load_pretrained(instrument) if committed_weights(instrument).exists() else None
    t0 = time.perf_counter()
    exp = far_side_experiment(instrument, ppd=4, steps=100 if fast else 1200, ft_steps=_ft_steps(fast),
                              pretrained=pretrained, sklearn_pixels=10_000 if fast else 40_000)
    experiment_s = time.perf_counter() - t0
    table = rmse_table(exp)
    pre = table["resnet_pretrained"]
    cov = exp.coverage["resnet_finetuned"]
    out: dict = {
        "instrument": instrument,
        "heldout": "synthetic far side (|lon|>90) minus the fine-tuning site; models trained on the near side",
        "heldout_rmse": table,
        # each method's targets only (Lucey 2000 maps FeO and TiO2), as in heldout_rmse
        "heldout_r2": {str(m): {t: round(float(r[(t, "r2")]), 4) for t in pre if np.isfinite(r[(t, "r2")])}
                       for m, r in exp.table.iterrows() if np.isfinite(r[("FeO", "r2")])},
        **_ratios(table),
        "interval_coverage_95": _mean_coverage(cov, "cov95"),
        "interval_coverage_68": _mean_coverage(cov, "cov68"),
        "interval_coverage_by_target": cov,
        # the same held-out figures per unit area rather than per pixel (polar pixels are small), from the same
        # predictions
        **area_weighted_figures(exp),
        "pretrained_weights": "committed" if pretrained is not None else "trained in this run",
        "interval_factors": _interval_factors(exp.models["resnet_pretrained"], exp.models["resnet_finetuned"]),
        "experiment_seconds": round(experiment_s, 1),
    }
    bias = bias_table(exp)
    out["heldout_bias"] = bias
    out["bias_only_gain_ceiling"] = bias_only_gain_ceiling(pre, bias["resnet_pretrained"])
    t0 = time.perf_counter()
    out["finetune_modes_rmse"] = finetune_modes(exp, ft_steps=_ft_steps(fast))
    out["finetune_modes_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    adv = advisor_site_experiment(exp, ft_steps=_ft_steps(fast))
    out["advisor_site"] = {**adv, **_ratios(adv["heldout_rmse"]), "seconds": round(time.perf_counter() - t0, 1),
                           "note": "the same experiment fine-tuned at the far-side site the advisor ranks first "
                                   "(chosen from the pre-trained model's uncertainty, no truth) instead of "
                                   "Chang'e-6; every method scored on the far side minus both sites"}
    t0 = time.perf_counter()
    ceil = label_ceiling_experiment(exp, ft_steps=_ft_steps(fast))
    out["far_side_label_ceiling"] = {
        **ceil, **_ratios(ceil["heldout_rmse"]),
        "seconds": round(time.perf_counter() - t0, 1),
        "note": "upper bound, not a result: the same fine-tune given far-side truth on alternating 8-row stripes "
                "of the far side (instead of one site) and scored on the stripes between them"}
    if pretrained is not None:
        out["replicate_moon"] = replicate_moon(pretrained, fast)
        if out["replicate_moon"]["geography"] != "procedural":  # a map the weights never saw, too
            out["replicate_moon_procedural"] = replicate_moon(pretrained, fast, geography="procedural")
    model = exp.models["resnet_finetuned"]
    from ..config import inference_precision
    from .experiment import coverage, metrics

    precision = inference_precision("auto", model.device)
    if precision != "float32":  # the same held-out evaluation with the faster arithmetic
        pred = model.predict(exp.refl, precision=precision)
        met = metrics(pred, exp.truth, exp.masks["test"])
        cov_p = coverage(pred, exp.truth, exp.masks["test"])
        out[f"heldout_rmse_finetuned_{precision}"] = {t: round(float(met[t]["rmse"]), 4) for t in pre}
        out[f"interval_coverage_95_{precision}"] = _mean_coverage(cov_p, "cov95")
    factor = 1 if fast else 4
    refl = _upsample(exp.refl, factor) if factor > 1 else exp.refl
    npix = refl.sizes["lat"] * refl.sizes["lon"]
    key = f"global_{4 * factor}ppd_seconds"
    runs = {}
    for prec in dict.fromkeys([precision, "float32"]):  # the default arithmetic first, then float32
        before = matmul_gflops_by_backend(precision=prec)
        times = []
        for _ in range(map_repeats):  # best of the repeats: on a shared machine interference only slows
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                res = invert_to_zarr(refl, model, Path(d) / "map.zarr", chunk=720, progress=False, precision=prec,
                                     scheduler="local")
                times.append(time.perf_counter() - t0)
                if len(times) == 1:  # the repeats write the same map: read it back once
                    n_out = len(res.data_vars)
                    sample = {t: res[t].values[::8] for t in model.targets}  # every 8th row, to compare precisions
        # the GEMM peak again after the map: a busy machine slows one measurement, rarely both (each backend's best)
        backends = best_gemm_rates(before, matmul_gflops_by_backend(precision=prec))
        peak = max(backends.values())
        seconds = min(times)
        gflops = model.net.flops_per_pixel() * npix / seconds / 1e9
        runs[prec] = dict(seconds=seconds, peak=peak, gflops=gflops, sample=sample, backends=backends,
                          times=[round(t, 2) for t in times])
    main = runs[precision]
    threads = []  # the same map on dask's threaded scheduler: what the local cluster costs
    for _ in range(map_repeats):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            invert_to_zarr(refl, model, Path(d) / "map.zarr", chunk=720, progress=False, precision=precision,
                           scheduler="threads")
            threads.append(time.perf_counter() - t0)
    out.update({
        "precision": precision,
        "precision_note": ("bfloat16: the trunk's GEMMs and the head in bfloat16 (float32 accumulation), "
                           "stem and moments in float32; chosen automatically where the CPU has native bf16"
                           if precision == "bfloat16" else "float32 throughout"),
        key: round(main["seconds"], 2),
        f"{key}_runs": main["times"],
        "global_map_timing": f"best of {map_repeats} runs (all in *_runs), each a fresh zarr store",
        "global_map_scheduler": ("a dask.distributed cluster started in this process for each run (the default "
                                 "of invert_to_zarr and `workbench invert map`; its start-up is timed); "
                                 f"{key}_threads: the same map on dask's threaded scheduler, measured in this run"),
        f"{key}_threads": round(min(threads), 2),
        f"{key}_threads_runs": [round(t, 2) for t in threads],
        "global_map_pixels": npix,
        "global_map_outputs": n_out,
        "global_map_note": ("reflectance of the 4 px/deg synthetic observation upsampled x4 to the 16 px/deg grid; "
                            "the time is inversion + zarr write of all outputs (means and stds)") if factor > 1 else "",
        "throughput_mpix_per_s": round(npix / main["seconds"] / 1e6, 3),
        "matmul_gflops": round(main["peak"], 1),
        "matmul_gflops_by_backend": {k: round(v, 1) for k, v in main["backends"].items()},
        "matmul_note": ("peak = the fastest GEMM backend measured in this run (n=2048, all cores), each "
                        "backend's best of a measurement before and one after the map runs"),
        "model_gflop_per_pixel": model.net.flops_per_pixel() / 1e9,
        "model_gflops": round(main["gflops"], 1),
        **flop_utilization(main["gflops"], main["peak"]),
    })
    if precision != "float32":
        ref = runs["float32"]
        out.update({
            f"{key}_float32": round(ref["seconds"], 2),
            f"{key}_float32_runs": ref["times"],
            "matmul_gflops_float32": round(ref["peak"], 1),
            "matmul_gflops_by_backend_float32": {k: round(v, 1) for k, v in ref["backends"].items()},
            "model_gflops_float32": round(ref["gflops"], 1),
            **flop_utilization(ref["gflops"], ref["peak"], suffix="_float32"),
            "speedup_vs_float32": round(ref["seconds"] / main["seconds"], 2),
            f"map_{precision}_minus_float32": map_difference(main["sample"], ref["sample"]),
        })
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    if fast:
        out["global_16ppd_seconds"] = None
    return out
