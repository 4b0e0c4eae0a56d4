"""Run-time settings chosen in one place: data/cache directories, fast mode, torch device."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def fast_mode() -> bool:
    """True when ``WORKBENCH_FAST`` is set to 1/true/yes: smaller grids and fewer epochs for classrooms."""
    return os.environ.get("WORKBENCH_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def data_dir() -> Path:
    """Download cache: ``WORKBENCH_DATA_DIR`` or the user cache dir (``pooch.os_cache``)."""
    env = os.environ.get("WORKBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("lunar-workbench"))


def cache_dir() -> Path:
    """Cache of computed products (synthetic Moon, trained models): ``<data_dir>/computed``."""
    return data_dir() / "computed"


def mirror_dirs() -> list[Path]:
    """Local mirror folders from ``WORKBENCH_DATA_MIRROR`` (``os.pathsep``-separated), searched first."""
    env = os.environ.get("WORKBENCH_DATA_MIRROR", "")
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]


@lru_cache(maxsize=1)
def get_device(prefer: str | None = None):
    """The torch device used by every model: ``WORKBENCH_DEVICE`` or CUDA when present, else CPU."""
    import torch

    name = prefer or os.environ.get("WORKBENCH_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
