"""The conda environment.yml lists the same dependencies as pyproject.toml; setup pins CPU torch."""

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
#: PyPI name -> conda-forge name where they differ
CONDA_NAME = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_deps() -> dict[str, str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {CONDA_NAME.get(_name(r), _name(r)): r for r in reqs}


def _conda_deps() -> dict[str, str]:
    """conda match specs by name, plus PEP 508 requirements of the ``pip:`` subsection (options such as ``-e .``
    left out), the latter keyed by their conda name."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    out = {}
    for d in env["dependencies"]:
        if isinstance(d, str) and _name(d) not in {"python", "pip"}:
            out[_name(d)] = d
        elif isinstance(d, dict):
            for r in d.get("pip", []):
                if not r.lstrip().startswith("-"):
                    out[CONDA_NAME.get(_name(r), _name(r))] = "pip:" + r
    return out


def _conda_specifier(spec: str) -> SpecifierSet:
    """The version constraint of a conda match spec (``pkg>=1,<2``, ``pkg >=1``, ``pkg=1.2``, ``pkg 1.2.*``) or
    of a ``pip:`` entry as a PEP 440 specifier set; forms it cannot translate (build strings, ``|``) fail."""
    if spec.startswith("pip:"):
        return Requirement(spec[4:]).specifier
    m = re.fullmatch(r"\s*[A-Za-z0-9_.\-]+\s*(.*?)\s*", spec)
    clauses = [c for c in re.sub(r"\s*([<>=!~,])\s*", r"\1", m.group(1)).split(",") if c]
    out = []
    for c in clauses:
        parsed = re.fullmatch(r"(==|!=|>=|<=|~=|>|<|=)?([^\s=<>!~|]+)", c)
        assert parsed, f"cannot translate the conda spec {spec!r} (clause {c!r})"
        op, ver = parsed.groups()
        if op in (None, "="):  # conda: `=1.2` and a bare `1.2` / `1.2.*` mean 1.2.*
            op, ver = "==", ver if ver.endswith(".*") else ver.rstrip("*").rstrip(".") + ".*"
        out.append(op + ver)
    return SpecifierSet(",".join(out))


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py, conda = _pyproject_deps(), _conda_deps()
    assert set(py) == set(conda), (
        f"only in pyproject: {sorted(set(py) - set(conda))}; only in environment.yml: {sorted(set(conda) - set(py))}"
    )


def test_conda_spec_translation():
    assert _conda_specifier("ipykernel>=6.25,<7") == SpecifierSet("<7,>=6.25")
    assert _conda_specifier("numpy >=1.26, <3") == SpecifierSet(">=1.26,<3")
    assert _conda_specifier("zarr=2.16") == _conda_specifier("zarr 2.16.*") == SpecifierSet("==2.16.*")
    assert _conda_specifier("pip:dask[array]>=2024.1") == SpecifierSet(">=2024.1")
    assert _conda_specifier("psutil") == SpecifierSet()
    for bad in ("numpy 1.26 py310_0", "numpy >=1.26|<1.20"):
        try:
            _conda_specifier(bad)
        except AssertionError:
            continue
        raise AssertionError(f"{bad!r} was translated")


def test_version_specifiers_agree():
    """Every bound (lower and upper, e.g. ipykernel's ``<7``), compared as PEP 440 specifier sets."""
    py, conda = _pyproject_deps(), _conda_deps()
    for name, req in py.items():
        want, got = Requirement(req).specifier, _conda_specifier(conda[name])
        assert want == got, f"{name}: pyproject {str(want)!r} vs environment.yml {str(got)!r}"


def test_setup_path_pins_cpu_torch_and_metadata_stays_loose():
    from packaging.requirements import Requirement

    reqs = [Requirement(line) for line in (REPO / "constraints.txt").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]

    def pin(platform: str, machine: str) -> str:
        env = {"sys_platform": platform, "platform_machine": machine}
        hits = [str(r.specifier) for r in reqs if r.name == "torch" and (r.marker is None or r.marker.evaluate(env))]
        assert len(hits) == 1, (platform, machine, hits)
        return hits[0]

    # PyPI's Linux x86-64 wheel is the CUDA build: the setup path asks for the +cpu one there
    assert pin("linux", "x86_64") == "==2.13.0+cpu"
    assert pin("darwin", "arm64") == pin("win32", "AMD64") == "==2.13.0"
    assert "-c $(CONSTRAINTS)" in (REPO / "Makefile").read_text()
    torch_req = _pyproject_deps()["pytorch"]
    assert "==" not in torch_req and ">=" in torch_req


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert re.search(r"^make test\b", ci, flags=re.M)
