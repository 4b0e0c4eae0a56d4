"""Shared fixtures: an isolated data cache per session, and the real-data mirror (skips when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SHARED = REPO.parent / "shared" / "data"

# Use the team/CI mirror beside the checkout when it exists and nothing else was configured.
if not os.environ.get("WORKBENCH_DATA_MIRROR") and _SHARED.is_dir():
    os.environ["WORKBENCH_DATA_MIRROR"] = str(_SHARED)
os.environ.setdefault("MPLBACKEND", "Agg")


def _real_data_available(dataset_id: str) -> tuple[bool, str]:
    from workbench.catalog import fetch
    from workbench.errors import WorkbenchError

    try:
        fetch(dataset_id)
        return True, ""
    except WorkbenchError as exc:
        return False, str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def mirror() -> Path | None:
    """The real-data mirror folder; skips the test when no mirror is configured."""
    dirs = [p for p in os.environ.get("WORKBENCH_DATA_MIRROR", "").split(os.pathsep) if p]
    if not dirs or not Path(dirs[0]).is_dir():
        pytest.skip("needs the real-data mirror: set WORKBENCH_DATA_MIRROR to a copy of shared/data")
    return Path(dirs[0])


@pytest.fixture
def real_dataset():
    """Return a function that opens a real dataset or skips the test with the reason it is unavailable."""

    def _open(dataset_id: str):
        ok, why = _real_data_available(dataset_id)
        if not ok:
            pytest.skip(f"real dataset {dataset_id} unavailable (no mirror, no network): {why}")
        import workbench as wb
        from workbench.catalog import get_manifest

        return wb.open_table(dataset_id) if get_manifest(dataset_id).kind == "table" else wb.open_dataset(dataset_id)

    return _open
