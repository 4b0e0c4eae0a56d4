"""The conda environment.yml lists the same dependencies as pyproject.toml; setup pins CPU torch."""

import re
from pathlib import Path

import tomllib
import yaml

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
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    out = {}
    for d in env["dependencies"]:
        if isinstance(d, str) and _name(d) not in {"python", "pip"}:
            out[_name(d)] = d
    return out


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    py, conda = _pyproject_deps(), _conda_deps()
    assert set(py) == set(conda), (
        f"only in pyproject: {sorted(set(py) - set(conda))}; only in environment.yml: {sorted(set(conda) - set(py))}"
    )


def test_lower_bounds_agree():
    py, conda = _pyproject_deps(), _conda_deps()
    for name, req in py.items():
        lo_py = re.search(r">=\s*([\w.]+)", req)
        lo_conda = re.search(r">=\s*([\w.]+)", conda[name])
        assert (lo_py and lo_py.group(1)) == (lo_conda and lo_conda.group(1)), name


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
