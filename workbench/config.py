"""Run-time settings chosen in one place: data/cache directories, fast mode, torch device and precision."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def fast_mode() -> bool:
    """True when ``WORKBENCH_FAST`` is set to 1/true/yes/on: smaller grids and fewer epochs for classrooms.

    0/false/no/off or unset is full mode; any other value raises :class:`~workbench.errors.InputError`
    (a typo would otherwise run the long version in class).
    """
    value = os.environ.get("WORKBENCH_FAST", "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"", "0", "false", "no", "off"}:
        return False
    from .errors import InputError

    raise InputError(f"WORKBENCH_FAST={os.environ['WORKBENCH_FAST']!r} is not understood; use 1 (fast mode) or 0")


def data_dir() -> Path:
    """Download cache: ``WORKBENCH_DATA_DIR`` or the user cache dir (``pooch.os_cache``).

    Give ``WORKBENCH_DATA_DIR`` as an absolute path: a relative one is resolved against the current
    folder of the process reading it (so a notebook kernel started elsewhere would use another cache).
    The returned path is always absolute.
    """
    env = os.environ.get("WORKBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    import pooch

    return Path(pooch.os_cache("lunar-workbench"))


def cache_dir() -> Path:
    """Cache of computed products (synthetic Moon, trained models): ``<data_dir>/computed``."""
    return data_dir() / "computed"


def mirror_dirs() -> list[Path]:
    """Local mirror folders from ``WORKBENCH_DATA_MIRROR`` (``os.pathsep``-separated), searched first.

    Give absolute paths: a relative one is resolved against the current folder of the process reading
    it (a notebook kernel runs in the notebook's folder). The returned paths are always absolute.
    """
    env = os.environ.get("WORKBENCH_DATA_MIRROR", "")
    return [Path(p).expanduser().resolve() for p in env.split(os.pathsep) if p.strip()]


def get_device(prefer: str | None = None):
    """The torch device used by every model: ``WORKBENCH_DEVICE`` or CUDA when present, else CPU.

    A device that torch does not know, or CUDA/MPS where there is none, raises
    :class:`~workbench.errors.InputError` naming the variable.
    """
    name = (prefer or os.environ.get("WORKBENCH_DEVICE") or "").strip()
    return _device(name)


@lru_cache(maxsize=8)
def _device(name: str):
    import torch

    from .errors import InputError

    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name.lower())
    except RuntimeError:
        raise InputError(f"WORKBENCH_DEVICE={name!r} is not a torch device; use cpu, cuda or cuda:N, "
                         "or unset it") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"WORKBENCH_DEVICE={name!r} but this torch build or machine has no CUDA GPU; use cpu "
                         "or unset it")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"WORKBENCH_DEVICE={name!r} but MPS is not available here; use cpu or unset it")
    return dev


PRECISIONS = ("auto", "float32", "bfloat16")


def bfloat16_is_fast(device) -> bool:
    """True when ``device`` runs bfloat16 matrix products natively (CUDA with bf16, or a CPU with
    AVX512-BF16/AMX as reported by oneDNN)."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def inference_precision(precision: str | None = None, device=None) -> str:
    """Resolve an inference precision: ``precision`` or ``WORKBENCH_PRECISION`` (default ``"auto"``).

    ``"auto"`` is ``"bfloat16"`` where :func:`bfloat16_is_fast` holds for ``device`` (default
    :func:`get_device`), else ``"float32"``. Unknown names raise :class:`~workbench.errors.InputError`
    naming the choices.
    """
    name = (precision or os.environ.get("WORKBENCH_PRECISION") or "auto").strip().lower()
    if name not in PRECISIONS:
        from .errors import InputError

        raise InputError(f"unknown precision {name!r}: use one of {', '.join(PRECISIONS)} "
                         "(argument or WORKBENCH_PRECISION)")
    if name == "auto":
        return "bfloat16" if bfloat16_is_fast(device if device is not None else get_device()) else "float32"
    return name
