"""The synthetic Moon: terrain, minerals, spectra, virtual instruments and a shaded-relief renderer.

Names are imported lazily so that ``import workbench.synth`` stays cheap.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    "deposit_records": "workbench.synth.deposits",
    "make_moon": "workbench.synth.moon",
    "INSTRUMENTS": "workbench.synth.instruments",
    "observe": "workbench.synth.instruments",
    "resample_to_instrument": "workbench.synth.instruments",
    "render": "workbench.synth.render",
    "make_terrain": "workbench.synth.terrain",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
