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


def _in_mirror(dataset_id: str) -> list[Path]:
    """The files of ``dataset_id`` present (whatever their content) in the configured mirror folders."""
    from workbench import config
    from workbench.catalog import get_manifest

    return [cand for f in get_manifest(dataset_id).files for src in f.sources if src.mirror
            for d in config.mirror_dirs() for cand in (d / src.mirror, d / f.name) if cand.is_file()]


def _real_data_available(dataset_id: str) -> tuple[bool, str]:
    """(True, "") when ``dataset_id`` can be fetched; (False, why) when it is simply not there (no mirror copy
    and no network). Anything else fails the test: an unknown id or a bad manifest, a checksum error, or a
    copy in the mirror that fetch refused (the catalog reports a mirror file whose sha256 differs from the
    manifest as unavailable, not as a checksum error)."""
    from workbench.catalog import fetch
    from workbench.errors import DataUnavailableError

    try:
        fetch(dataset_id)
        return True, ""
    except DataUnavailableError as exc:
        held = _in_mirror(dataset_id)
        if held:
            pytest.fail(f"real dataset {dataset_id}: the mirror holds {[str(p) for p in held]} but it was refused "
                        f"(corrupted or stale copy?): {exc}", pytrace=False)
        return False, " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line: pytest -rs


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
            pytest.skip(f"real dataset {dataset_id} unavailable (not in a mirror, no network): {why}")
        import workbench as wb
        from workbench.catalog import get_manifest

        return wb.open_table(dataset_id) if get_manifest(dataset_id).kind == "table" else wb.open_dataset(dataset_id)

    return _open


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one torch thread avoids oversubscription on a shared 2-core machine (use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def crash_at_block(monkeypatch):
    """``crash_at_block(n)``: the global map's ``n``-th block (counted in this process, so with the threaded
    scheduler) raises ``RuntimeError("simulated crash")``; ``crash_at_block(None)`` restores the real blocks."""
    from workbench.inversion import global_map

    real = global_map._block_fn

    def install(n: int | None) -> None:
        if n is None:
            monkeypatch.setattr(global_map, "_block_fn", real)
            return
        calls = {"n": 0}

        def flaky(model, precision):
            fn = real(model, precision)

            def wrapped(block):
                calls["n"] += 1
                if calls["n"] == n:
                    raise RuntimeError("simulated crash")
                return fn(block)
            return wrapped

        monkeypatch.setattr(global_map, "_block_fn", flaky)

    return install


@pytest.fixture
def run_cli(capsys):
    """``run_cli(argv)`` runs ``workbench ARGV`` in-process and gives (exit status, stdout, stderr); an argparse
    usage error gives its exit status too."""
    from workbench.cli import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
