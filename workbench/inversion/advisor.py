"""Site advisor: rank candidate landing sites by how much a sample there would reduce model uncertainty.

A returned sample teaches the model about the spectra that look like its site. The score of a
candidate is the *information density* criterion of active learning (Settles & Craven 2008): the
model's epistemic uncertainty (deep-ensemble disagreement) summed over all map pixels that are
spectrally similar to the candidate (within ``radius`` in standardised log-reflectance space), area
weighted — i.e. the expected amount of uncertain ground a sample there would inform. It is a
ranking heuristic, not a guarantee; notebook 02 checks it by actually fine-tuning on the top and the
bottom candidates.

References
----------
Settles, B., Craven, M. (2008). An analysis of active learning strategies for sequence labeling tasks.
EMNLP. (information density)
Lakshminarayanan, B. et al. (2017). Deep ensembles. NeurIPS.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..validate import check_site

#: Candidate sites (lat, lon; degrees) — named far- and near-side features and the sampled sites. A sampled
#: site keeps the name and coordinates it has in :func:`workbench.samples.sample_sites` (Chang'e-6 landed in
#: the Apollo basin, inside South Pole–Aitken), so that the panels offer it once.
CANDIDATES: dict[str, tuple[float, float]] = {
    "Chang'e-6": (-41.6385, -153.9852),
    "SPA centre": (-53.0, -169.0),
    "Tsiolkovskiy": (-20.4, 129.1),
    "Mare Moscoviense": (27.3, 147.9),
    "Korolev": (-4.4, -157.4),
    "Hertzsprung": (2.6, -129.2),
    "Mare Ingenii": (-33.7, 163.5),
    "Apollo basin": (-36.1, -151.8),
    "Aristarchus plateau": (24.0, -49.0),
    "Mare Crisium": (17.0, 59.1),
    "Mare Tranquillitatis": (8.5, 31.4),
    "Feldspathic highlands (far side)": (15.0, 175.0),
}


def site_advisor(pred: xr.Dataset, refl: xr.DataArray, candidates: dict[str, tuple[float, float]] | None = None,
                 target: str = "FeO", radius: float = 0.5,
                 sampled: Mapping[str, tuple[float, float]] | Iterable[tuple[float, float]] | None = None,
                 exclude_km: float = 100.0) -> pd.DataFrame:
    """Rank ``candidates`` by the uncertainty a sample there would address.

    Parameters
    ----------
    pred
        Output of ``OxideInverter.predict(refl, epistemic=True)``.
    refl
        The ``(band, lat, lon)`` reflectance the prediction came from.
    target
        Oxide whose uncertainty is scored (``"all"`` sums the standardised uncertainty of all targets).
    radius
        Spectral-similarity radius (RMS over bands of standardised log reflectance).
    sampled
        Sites already sampled (name -> (lat, lon), or (lat, lon) pairs): candidates within ``exclude_km`` of
        one are left out of the ranking (listed in ``attrs["excluded"]``). Score with the model fine-tuned
        on those samples, so that what they taught it is counted.
    exclude_km
        Great-circle distance within which a candidate counts as already sampled.

    Returns
    -------
    pandas.DataFrame
        ``site, lat, lon, epistemic_std_at_site, similar_area_pct, score`` sorted by ``score``
        (higher = a sample there is expected to reduce more uncertainty). Candidates are matched to the
        nearest grid pixel, longitudes modulo 360° (a 0–360° grid works). A candidate farther than one grid
        cell (in latitude or longitude) from its nearest pixel lies outside a regional cube: it is not
        scored (its edge pixel is not its ground) and is listed in ``attrs["outside"]``. A candidate on a
        missing pixel (NaN, or a reflectance that is zero, negative or not finite) is not scored either and
        is listed in ``attrs["missing"]``; ``attrs["excluded"]`` lists those near ``sampled`` sites.

    Raises
    ------
    InputError
        No ``_epistemic_std`` in ``pred``, an unknown ``target``, a candidate or sampled site out of range,
        or no candidate could be scored (all outside the cube or on missing pixels).

    Notes
    -----
    Reflectance that is zero, negative or not finite has no logarithm: such pixels are treated as missing
    (NaN) in the spectral similarity, not clipped, so one bad pixel does not spoil every score.
    """
    from ..geo import area_weights, great_circle_distance

    cands = candidates or CANDIDATES
    names = [t for t in (pred.data_vars) if t.endswith("_epistemic_std")]
    if not names:
        raise InputError("pred has no '<oxide>_epistemic_std'; call model.predict(refl, epistemic=True)")
    if target == "all":
        epi = sum(pred[n] / float(pred[n].mean()) for n in names)
    else:
        if f"{target}_epistemic_std" not in pred:
            raise InputError(f"unknown target {target!r}; use one of {[n[:-14] for n in names]} or 'all'")
        epi = pred[f"{target}_epistemic_std"]
    R = refl.transpose("band", "lat", "lon").values.astype(np.float64)
    with np.errstate(invalid="ignore"):  # NaN compares False: stays NaN
        Z = np.log(np.where(np.isfinite(R) & (R > 0), R, np.nan))  # no log of 0, < 0 or inf: missing, not -inf
    with warnings.catch_warnings():  # a band without one valid pixel: NaN, and no candidate scored (see below)
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(Z, axis=(1, 2), keepdims=True)
        sd = np.nanstd(Z, axis=(1, 2), keepdims=True)
    Z = (Z - mu) / sd
    w = np.asarray(area_weights(pred).transpose("lat", "lon").values, float)
    w = w / np.nansum(w)
    e = np.nan_to_num(epi.transpose("lat", "lon").values)
    done = [check_site(*ll) for ll in (sampled.values() if isinstance(sampled, Mapping) else sampled or [])]
    lats, lons = np.asarray(pred["lat"].values, float), np.asarray(pred["lon"].values, float)
    # one grid cell, the farthest a candidate inside the cube lies from its nearest pixel's centre (half a cell)
    # with room to spare; a single row or column borrows the other axis's step
    steps = [float(np.median(np.abs(np.diff(v)))) if v.size > 1 else np.nan for v in (lats, lons)]
    cell_lat = steps[0] if np.isfinite(steps[0]) else steps[1]
    cell_lon = steps[1] if np.isfinite(steps[1]) else steps[0]
    rows, excluded, outside, missing = [], [], [], []
    for name, site in cands.items():
        try:
            lat, lon = check_site(*site)
        except InputError as exc:
            raise InputError(f"candidate {name!r}: {exc}") from None
        if any(float(great_circle_distance(lat, lon, *ll)) <= exclude_km for ll in done):
            excluded.append(name)
            continue
        dlon = np.abs((lons - lon + 180.0) % 360.0 - 180.0)
        i, j = int(np.abs(lats - lat).argmin()), int(dlon.argmin())
        if abs(lats[i] - lat) > cell_lat or dlon[j] > cell_lon:  # beyond the cube's edge
            outside.append(name)
            continue
        z0 = Z[:, i, j][:, None, None]
        if not np.isfinite(z0).all():
            missing.append(name)
            continue
        with warnings.catch_warnings():  # a missing pixel (NaN in every band) has no distance: NaN, not similar
            warnings.simplefilter("ignore", RuntimeWarning)
            d = np.sqrt(np.nanmean((Z - z0) ** 2, axis=0))
        sim = np.isfinite(d) & (d <= radius)
        rows.append({"site": name, "lat": lat, "lon": lon, "epistemic_std_at_site": float(e[i, j]),
                     "similar_area_pct": float(100 * w[sim].sum()),
                     "score": float((w * e)[sim].sum() * 1000)})
    if not rows and len(excluded) < len(cands):
        listed = lambda sites: ", ".join(sites) or "none"  # noqa: E731
        raise InputError(f"no candidate site could be scored (outside the cube: {listed(outside)}; on missing pixels, "
                         f"NaN or reflectance <= 0 or not finite: {listed(missing)}; near sampled sites: "
                         f"{listed(excluded)}); give candidates inside the cube's lat/lon range, on valid pixels")
    out = pd.DataFrame(rows, columns=["site", "lat", "lon", "epistemic_std_at_site", "similar_area_pct", "score"])
    out = out.sort_values("score", ascending=False).reset_index(drop=True)
    out.attrs.update(excluded=excluded, outside=outside, missing=missing)
    return out
