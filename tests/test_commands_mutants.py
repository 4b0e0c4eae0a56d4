"""Known answers for the command-line layer that a mutation review found unpinned (``workbench lab``,
``workbench demo``, ``workbench bench`` and :mod:`workbench.bench`): each test fails on a mutant of the source
that the rest of the suite let through.

Fast and offline: the notebook runner, JupyterLab and the benchmarks are replaced by stand-ins that record what
they were given; nothing is executed, served or measured.
"""

from __future__ import annotations

import json

import pytest

from workbench.errors import InputError


# --------------------------------------------------------------------------------------------- workbench lab
def test_lab_serves_on_localhost_only_with_the_given_token_and_passes_its_exit_code(monkeypatch, run_cli):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 3)
    monkeypatch.setenv("WORKBENCH_LAB_TOKEN", "s3cret")
    code, out, _ = run_cli(["lab", "--port", "9123"])
    assert code == 3  # JupyterLab's own exit status
    (cmd,) = calls
    assert "--ip=127.0.0.1" in cmd and not any(a.startswith("--ip=0") for a in cmd)
    assert "--no-browser" in cmd and "--port=9123" in cmd
    assert "--IdentityProvider.token=s3cret" in cmd
    import os

    assert ("--allow-root" in cmd) == (hasattr(os, "geteuid") and os.geteuid() == 0)
    assert "http://127.0.0.1:9123/lab" in out


def test_lab_without_a_token_in_the_environment_makes_a_long_random_one(monkeypatch, run_cli):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.delenv("WORKBENCH_LAB_TOKEN", raising=False)
    for _ in range(2):
        assert run_cli(["lab"])[0] == 0
    tokens = [next(a for a in cmd if a.startswith("--IdentityProvider.token=")).split("=", 1)[1] for cmd in calls]
    assert tokens[0] != tokens[1] and min(len(t) for t in tokens) >= 24
    assert all("--port=8888" in cmd for cmd in calls)


# -------------------------------------------------------------------------------------------- workbench demo
def test_demo_passes_only_timeout_and_mode_to_the_runner(monkeypatch, run_cli, tmp_path):
    from workbench import demo

    seen = {}

    def fake_run_demo(out, only=None, fast=None, timeout=None):
        seen.update(out=out, only=only, fast=fast, timeout=timeout)
        return [{"notebook": "01_x", "ok": True, "seconds": 1.0, "error": None}]

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    monkeypatch.setattr(demo, "format_table", lambda results: "TABLE")
    out = str(tmp_path / "d")
    code, stdout, _ = run_cli(["demo", "--out", out, "--only", "01", "--timeout", "42", "--full"])
    assert code == 0 and seen == {"out": out, "only": "01", "fast": False, "timeout": 42}
    assert "TABLE" in stdout
    run_cli(["demo", "--out", out])
    assert seen["timeout"] == 900 and seen["fast"] is None and seen["only"] is None


# ------------------------------------------------------------------------------------------- workbench bench
def test_bench_passes_fast_and_json_and_writes_sorted_strict_json(monkeypatch, run_cli, tmp_path):
    from workbench import bench

    seen = {}

    def fake(fast=False):
        seen["fast"] = fast
        return {"zeta": float("nan"), "alpha": 1.5}

    monkeypatch.setitem(bench.BENCHMARKS, "synth", "fake_module:fake")
    monkeypatch.setattr(bench, "get_benchmark", lambda name: fake)
    monkeypatch.delenv("WORKBENCH_FAST", raising=False)
    path = tmp_path / "b.json"
    code, out, _ = run_cli(["bench", "synth", "--fast", "--json", str(path)])
    assert code == 0 and seen["fast"] is True
    written = json.loads(path.read_text())
    assert written["zeta"] is None and written["alpha"] == 1.5 and written["benchmark"] == "synth"
    assert written["fast"] is True and written["wall_seconds"] >= 0
    assert list(written) == sorted(written)  # sorted keys
    assert json.loads(out) == written
    run_cli(["bench", "synth"])
    assert seen["fast"] is False


def test_an_unknown_benchmark_is_an_input_error_naming_the_choices():
    from workbench.bench import get_benchmark

    with pytest.raises(InputError, match="unknown benchmark 'nope'; choose one of: calibration, inversion"):
        get_benchmark("nope")
