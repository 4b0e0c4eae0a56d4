"""Oxide inversion: classical baselines, a residual deep-ensemble CNN with fine-tuning, global maps.

* :mod:`~workbench.inversion.baselines` — Lucey 2000 FeO/TiO2/OMAT, Wilcox 2005, Lawrence 2002,
  re-fittable Lucey forms, scikit-learn PLS / random forest / gradient boosting;
* :mod:`~workbench.inversion.model` — :class:`OxideInverter` (``fit``, ``fine_tune``, ``calibrate``,
  ``predict``, ``save``/``load``) around :mod:`~workbench.inversion.resnet`;
* :mod:`~workbench.inversion.stations` — the real 36-station model and cross-validation;
* :mod:`~workbench.inversion.experiment` — the synthetic far-side hold-out;
* :mod:`~workbench.inversion.global_map` — chunked dask → zarr maps; :mod:`~workbench.inversion.advisor`.

Names are imported lazily so that ``import workbench.inversion`` does not import torch.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "OxideInverter": "workbench.inversion.model",
    "load_pretrained": "workbench.inversion.model",
    "site_mask": "workbench.inversion.model",
    "TARGETS": "workbench.inversion.model",
    "StationInverter": "workbench.inversion.stations",
    "far_side_experiment": "workbench.inversion.experiment",
    "invert_to_zarr": "workbench.inversion.global_map",
    "site_advisor": "workbench.inversion.advisor",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
