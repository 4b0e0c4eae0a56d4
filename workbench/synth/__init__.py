"""The synthetic Moon: terrain, minerals, spectra, virtual instruments and a shaded-relief renderer.

Names are imported lazily so that ``import workbench.synth`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "make_moon": "workbench.synth.moon",
    "INSTRUMENTS": "workbench.synth.instruments",
    "observe": "workbench.synth.instruments",
    "resample_to_instrument": "workbench.synth.instruments",
    "render": "workbench.synth.render",
    "make_terrain": "workbench.synth.terrain",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench.synth' has no attribute {name!r}")
