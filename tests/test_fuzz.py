"""Property-based fuzzing (hypothesis) of the places untrusted input enters the workbench.

* manifest parsing: any text, any YAML value, any mutation of a shipped manifest → a ``Manifest`` or a
  ``ManifestError``, nothing else; a manifest missing a required field is never accepted;
* station-CSV loading (``workbench.validate.read_station_csv``): any bytes → a checked DataFrame or an
  ``InputError``;
* the CLI (``workbench.cli.main``): any argv → exit status 0/1/2 (or argparse's ``SystemExit(2)``), no
  traceback, no half-written or partial output file.

Examples per test are kept modest (``FUZZ_EXAMPLES``, default 50) so the suite stays fast; set
``WORKBENCH_FUZZ_EXAMPLES=2000`` for a long run. ``pytest --hypothesis-show-statistics`` reports how many
ran.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import string
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from workbench import catalog
from workbench.errors import InputError, ManifestError, WorkbenchError
from workbench.validate import STATION_BANDS, read_station_csv

FUZZ_EXAMPLES = int(os.environ.get("WORKBENCH_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                derandomize=os.environ.get("WORKBENCH_FUZZ_RANDOM", "") == "",
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(catalog.MANIFEST_DIR.glob("*.yaml"))}
REQUIRED = [name for name, f in catalog.Manifest.model_fields.items() if f.is_required()]


# ---------------------------------------------------------------------------------------- manifests
def _parse_ok_or_manifest_error(text: str):
    try:
        m = catalog.parse_manifest(text, origin="fuzz.yaml")
    except ManifestError as exc:
        assert str(exc).startswith("fuzz.yaml"), str(exc)
        return None
    assert isinstance(m, catalog.Manifest)
    return m


@FUZZ
@given(st.text(max_size=400))
def test_manifest_any_text(text: str) -> None:
    _parse_ok_or_manifest_error(text)


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["IAU_2015:30100", "raster", "table", "csv", "geotiff", "a" * 64, "0" * 64, "../x", "/etc/x"]),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.dictionaries(st.sampled_from([*catalog.Manifest.model_fields, "extra", "x"]), yaml_values, max_size=12))
def test_manifest_random_mapping(d: dict) -> None:
    _parse_ok_or_manifest_error(yaml.safe_dump(d))


def _paths(obj, prefix=()):
    """Every key path (tuples of keys/indices) inside a nested dict/list."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _mutate(d: dict, path: tuple, op: str, value) -> dict:
    import copy

    d = copy.deepcopy(d)
    if not path:
        return d
    parent = d
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif op == "extra" and isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    elif op == "retype":
        old = parent[last]
        parent[last] = str(old) if not isinstance(old, str) else [old]
    return d


@st.composite
def mutated_manifests(draw):
    mid = draw(st.sampled_from(sorted(SHIPPED)))
    d = SHIPPED[mid]
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(d))[1:]
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["delete", "replace", "extra", "retype"]))
        d = _mutate(d, path, op, draw(yaml_values))
    return mid, d


@FUZZ
@given(mutated_manifests())
def test_manifest_mutated_shipped(case) -> None:
    _mid, d = case
    m = _parse_ok_or_manifest_error(yaml.safe_dump(d))
    if m is not None:  # whatever was accepted satisfies the schema's invariants
        assert all(k in d for k in REQUIRED)
        assert m.kind == "synthetic" or m.files


@FUZZ
@given(st.sampled_from(sorted(SHIPPED)), st.sampled_from(REQUIRED))
def test_manifest_missing_required_never_accepted(mid: str, field: str) -> None:
    d = dict(SHIPPED[mid])
    d.pop(field)
    with pytest.raises(ManifestError, match=f"field '{field}'"):
        catalog.parse_manifest(yaml.safe_dump(d), origin="fuzz.yaml")


def test_shipped_manifests_parse() -> None:
    """The seeds of the mutation fuzzer are themselves valid."""
    for mid, d in SHIPPED.items():
        assert catalog.parse_manifest(yaml.safe_dump(d)).id == mid


# -------------------------------------------------------------------------------------- station CSV
cell = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=1).map(lambda x: f"{x:.4f}"),
    st.text(alphabet=string.printable, max_size=8),
    st.sampled_from(["", " ", "NA", "n/a", "-", '"', '""', "1e999", "0x10", "1,5", "—"]),
)
header_name = st.one_of(st.sampled_from([*STATION_BANDS, "site", "lat_deg", "lon_deg_east_0_360", "FeO_wt_pct"]),
                        st.text(alphabet=string.printable, max_size=8))


@st.composite
def station_csv_bytes(draw):
    cols = draw(st.lists(header_name, min_size=0, max_size=9))
    if draw(st.booleans()):  # half the time start from a complete header
        cols = [*STATION_BANDS, *cols]
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    nl = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(cols) + 2), max_size=6))
    text = nl.join(sep.join(r) for r in [cols, *rows])
    data = text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text.encode("latin-1", "replace")
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))
    return data


@FUZZ
@given(station_csv_bytes())
def test_station_csv_fuzz(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "stations.csv"
        p.write_bytes(data)
        try:
            df = read_station_csv(p)
        except InputError as exc:
            assert str(p) in str(exc)
            return
        assert isinstance(df, pd.DataFrame) and len(df) > 0
        for c in STATION_BANDS:
            assert df[c].dtype == float


@FUZZ
@given(station_csv_bytes(), st.booleans())
def test_inversion_read_stations_fuzz(data: bytes, require_targets: bool) -> None:
    """The inversion's own station reader (``workbench invert stations``) fails only with InputError."""
    stations = pytest.importorskip("workbench.inversion.stations")
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "stations.csv"
        p.write_bytes(data)
        try:
            df = stations.read_stations(p, require_targets=require_targets)
        except InputError:
            return
        for c in STATION_BANDS:
            assert df[c].dtype.kind == "f" or df[c].dtype.kind == "i"


@FUZZ
@given(station_csv_bytes())
def test_catalog_open_table_fuzz(data: bytes) -> None:
    """A table dataset whose (hash-verified) CSV is malformed opens or fails with a WorkbenchError."""
    import hashlib
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from test_robustness import catalog_env, manifest_dict, write_manifest

    assume(len(data) > 0)  # the schema refuses size 0
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        (tmp / "mirror").mkdir()
        (tmp / "mirror" / "fuzz_table.csv").write_bytes(data)
        m = manifest_dict("fuzz_table", data=data)
        assert m["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
        write_manifest(tmp / "manifests", m)
        with catalog_env(tmp, mirror=tmp / "mirror"):
            try:
                df = catalog.open_table("fuzz_table")
            except WorkbenchError:
                return
        assert isinstance(df, pd.DataFrame)


def test_station_csv_real_file(mirror) -> None:
    df = read_station_csv(mirror / "samples" / "clementine_5band_sample_stations.csv")
    assert len(df) == 36 and df["R750"].between(0, 1).all()


# --------------------------------------------------------------------------------------------- CLI
def _vocabulary() -> list[str]:
    """Every subcommand, option string and choice of the real parser."""
    import argparse

    from workbench.cli import build_parser

    words: set[str] = set()

    def walk(p: argparse.ArgumentParser) -> None:
        for a in p._actions:
            words.update(a.option_strings)
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    words.add(name)
                    walk(sp)
            elif a.choices:
                words.update(map(str, a.choices))

    walk(build_parser())
    return sorted(words)


VOCAB = _vocabulary()


def _leaf_parsers() -> list[tuple[list[str], list]]:
    """(subcommand path, actions) of every leaf parser, to build mostly well-formed command lines."""
    import argparse

    from workbench.cli import build_parser

    out = []

    def walk(p: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.append((path, [a for a in p._actions if not isinstance(a, argparse._HelpAction)]))
        for a in subs:
            for name, sp in a.choices.items():
                walk(sp, [*path, name])

    walk(build_parser(), [])
    return out


LEAVES = _leaf_parsers()
#: Input files the sandbox provides: good and damaged images, DEMs and station tables.
INPUT_FILES = ["img.npy", "dem.npy", "bad.npy", "bad.tif", "img3d.npy", "train.csv", "garbage.csv"]
IDS = ["lola_ldem_4ppd", "sample_sites", "lunar_basins", "craters_head2010", "nope", "LOLA", "../x"]
NUMBERS = ["0", "-1", "1", "3", "2.5", "nan", "inf", "-inf", "1e9", "x", ""]


@st.composite
def argvs(draw):
    vocab = st.sampled_from(VOCAB)
    token = st.one_of(vocab, vocab, vocab, st.sampled_from(IDS), st.sampled_from(NUMBERS),
                      st.sampled_from(["out.json", "sub/out.json", "existing_dir", "existing.txt",
                                       "existing.txt/x.json", "-", "--", "-h", "out.npy", "out.tif", "out.csv"]),
                      st.sampled_from(INPUT_FILES),
                      st.text(max_size=10))
    if draw(st.booleans()):  # token soup
        head = draw(st.lists(vocab, min_size=0, max_size=2))
        return head + draw(st.lists(token, max_size=8))
    path, actions = draw(st.sampled_from(LEAVES))  # a real subcommand with plausible arguments
    argv = list(path)
    for a in actions:
        if a.option_strings and not a.required and draw(st.booleans()):
            continue
        n = {None: 1, "?": draw(st.integers(0, 1)), "*": draw(st.integers(0, 2)), "+": draw(st.integers(1, 2))}.get(
            a.nargs, a.nargs if isinstance(a.nargs, int) else 1)
        if a.choices and draw(st.booleans()):
            value = st.sampled_from(list(map(str, a.choices)))
        elif a.dest in ("id", "dataset") and draw(st.booleans()):
            value = st.sampled_from(IDS)
        elif a.type in (int, float) and draw(st.booleans()):
            value = st.sampled_from(NUMBERS)
        else:
            value = token
        vals = [draw(value) for _ in range(n)]
        argv += ([draw(st.sampled_from(a.option_strings))] if a.option_strings else []) + vals
    return argv


@pytest.fixture
def cli_sandbox(monkeypatch):
    """Keep CLI fuzzing fast and local: heavy back ends replaced, argument handling and writing kept."""
    import subprocess

    import workbench.analysis.asymmetry as asym
    import workbench.bench as bench
    import workbench.demo as demo

    real_get, real_summary, real_verify = bench.get_benchmark, asym.asymmetry_summary, catalog.verify
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, *a, **k: calls.append(cmd) or 0)
    monkeypatch.setattr(demo, "run_demo", lambda out_dir="outputs/demo", only=None, fast=None, timeout=900: [])
    monkeypatch.setattr(bench, "get_benchmark",  # check the name only; never import or run a benchmark
                        lambda name: (name in bench.BENCHMARKS or real_get(name)) and (lambda fast=False: {"x": 1.0}))

    def small_summary(da, *, block_deg=10.0, n_boot=1000, n_perm=2000, seed=0, **kw):
        k = max(1, da.sizes["lat"] // 45)  # 4 px/deg → 1 px/deg, and few replicates
        da = da.coarsen(lat=k, lon=k, boundary="trim").mean().assign_attrs(da.attrs)
        return real_summary(da, block_deg=block_deg, n_boot=min(n_boot, 20), n_perm=min(n_perm, 20), seed=seed, **kw)

    monkeypatch.setattr(asym, "asymmetry_summary", small_summary)
    monkeypatch.setattr(catalog, "verify", lambda dataset_id=None: real_verify(dataset_id or "sample_sites"))
    try:  # the global inversion is minutes of work: argument handling only (its own tests run it)
        import workbench.commands.invert as invert_cmd

        monkeypatch.setattr(invert_cmd, "_map", lambda args: 0)
    except ImportError:
        pass
    return calls


def _input_files(root: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(root / "img.npy", 0.1 + 0.05 * rng.random((32, 32)))
    np.save(root / "dem.npy", 100 * rng.random((8, 8)))
    np.save(root / "img3d.npy", rng.random((2, 8, 8)))
    (root / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    (root / "bad.tif").write_text("not a tiff")
    bands = "R415,R750,R900,R950,R1000,FeO_wt_pct,TiO2_wt_pct"
    rows = [",".join(f"{v:.4f}" for v in [*(0.05 + 0.1 * rng.random(5)), 5 + 10 * rng.random(), 3 * rng.random()])
            for _ in range(8)]
    (root / "train.csv").write_text("\n".join([bands, *rows]) + "\n")
    (root / "garbage.csv").write_bytes(b"R415,R750\n\xff\xfe,\x00\n1,2,3,4\n")


def _listing(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@FUZZ
@given(argv=argvs())
def test_cli_random_argv(cli_sandbox, argv: list[str]) -> None:
    from workbench.cli import main

    assume(not any(a in ("-h", "--help") for a in argv[:1]))  # help is fine but dull
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        (root / "existing_dir").mkdir()
        (root / "existing_dir" / "keep.txt").write_text("keep")
        (root / "existing.txt").write_text("keep")
        _input_files(root)
        before = _listing(root)
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(argv))
                except SystemExit as exc:  # argparse: usage errors (2) and --help (0)
                    code = exc.code
        except WorkbenchError as exc:  # pragma: no cover - main must catch these itself
            pytest.fail(f"main({argv!r}) let a WorkbenchError escape: {exc}")
        finally:
            os.chdir(cwd)
        text = out.getvalue() + err.getvalue()
        event(f"exit {code}" + (" (argparse)" if "usage:" in err.getvalue() else ""))
        assert code in (0, 1, 2), f"main({argv!r}) returned {code!r}\n{text[-2000:]}"
        assert "Traceback" not in text, f"main({argv!r}) printed a traceback\n{text[-2000:]}"
        if code == 2 and err.getvalue():
            assert "error" in err.getvalue().lower()
        after = _listing(root)
        leftovers = [p for p in after if Path(p).name.endswith(".part") or "/.download" in p]
        assert not leftovers, f"main({argv!r}) left partial files {leftovers}"
        for p, content in before.items():  # nothing that was there is lost; only a named output may change
            assert p in after, f"main({argv!r}) removed {p}"
            if after[p] != content:
                assert p in argv and code == 0, f"main({argv!r}) changed {p} (exit {code})"
                json.loads(after[p])  # replaced whole, never half-written
        for p in set(after) - set(before):  # new outputs are complete
            if p.endswith(".json") and after[p] is not None:
                assert code == 0, f"main({argv!r}) failed (exit {code}) but wrote {p}"
                json.loads(after[p])


def _run_cli_in(root: Path, argv: list[str]) -> tuple[int, str]:
    from workbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(cwd)
    text = out.getvalue() + err.getvalue()
    assert code in (0, 1, 2), f"main({argv!r}) returned {code!r}\n{text[-2000:]}"
    assert "Traceback" not in text, f"main({argv!r}) printed a traceback\n{text[-2000:]}"
    return code, text


OUTS = ["out.npy", "out.tif", "out.csv", "out.txt", "existing_dir", "existing.txt/x.npy", "sub/out.npy"]


@FUZZ
@given(image=st.sampled_from([*INPUT_FILES, "missing.npy"]), dem=st.sampled_from([*INPUT_FILES, "missing.npy"]),
       az=st.sampled_from(NUMBERS), el=st.sampled_from([*NUMBERS, "30", "90", "0.5"]), out=st.sampled_from(OUTS),
       method=st.sampled_from(["upsample", "sfs", "network"]), pixel=st.sampled_from([None, *NUMBERS]))
def test_cli_topo_reconstruct_inputs(cli_sandbox, image, dem, az, el, out, method, pixel) -> None:
    """``workbench topo reconstruct`` with good and damaged files and numbers: exit 0/2, whole outputs."""
    pytest.importorskip("workbench.commands.topo")
    argv = ["topo", "reconstruct", "--image", image, "--coarse-dem", dem, f"--sun-azimuth={az}",
            f"--sun-elevation={el}", "--out", out, "--method", method]
    argv += [] if pixel is None else [f"--pixel-size={pixel}"]
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        (root / "existing_dir").mkdir()
        (root / "existing.txt").write_text("keep")
        _input_files(root)
        before = _listing(root)
        code, text = _run_cli_in(root, argv)
        event(f"exit {code}")
        after = _listing(root)
        assert not [p for p in after if p.endswith(".part")]
        assert all(after.get(p) == c for p, c in before.items()), "an input changed"
        new = set(after) - set(before)
        if code == 0:
            assert out in new
            if out.endswith(".npy"):
                import numpy as np

                z = np.load(root / out)
                assert z.shape == np.load(root / image).shape and np.isfinite(z).all()
        else:
            assert not new - {"sub"}, f"failed run left {new}"


@settings(FUZZ, max_examples=max(10, FUZZ_EXAMPLES // 4))  # each successful run trains a GP (~1 s)
@given(train=st.sampled_from([*INPUT_FILES, "missing.csv"]), pred=st.sampled_from([*INPUT_FILES, "missing.csv"]),
       out=st.sampled_from(OUTS), prior=st.sampled_from(["none", "lucey2000"]))
def test_cli_invert_stations_inputs(cli_sandbox, train, pred, out, prior) -> None:
    """``workbench invert stations`` with good and damaged tables: exit 0/2, whole outputs."""
    pytest.importorskip("workbench.commands.invert")
    argv = ["invert", "stations", "--train", train, "--predict", pred, "--out", out, "--prior", prior]
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        (root / "existing_dir").mkdir()
        (root / "existing.txt").write_text("keep")
        _input_files(root)
        before = _listing(root)
        code, text = _run_cli_in(root, argv)
        event(f"exit {code}")
        after = _listing(root)
        assert not [p for p in after if p.endswith(".part")]
        assert all(after.get(p) == c for p, c in before.items()), "an input changed"
        if code == 0:
            df = pd.read_csv(root / out)
            assert {"FeO_pred", "TiO2_pred"} <= set(df.columns) and len(df) == 8
        else:
            assert not set(after) - set(before) - {"sub"}


def test_cli_vocabulary_covers_commands() -> None:
    """The fuzzer knows every registered subcommand (so new commands are fuzzed automatically)."""
    from workbench.cli import COMMANDS

    assert {"data", "demo", "lab", "bench"} <= set(VOCAB)
    assert len(COMMANDS) >= 4
