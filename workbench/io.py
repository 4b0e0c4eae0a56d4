"""Atomic output: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


def writable_parent(path: str | os.PathLike, create: bool = True, kind: str | None = None) -> Path:
    """Create ``path``'s folder if needed and check that files can be made in it, before any work is done.

    Raises :class:`InputError` naming the output and the reason (a file where a folder should be, no
    permission, a read-only or special file system) instead of an ``OSError`` about a temporary name.
    With ``create=False`` nothing is made: the nearest existing folder on the path is checked instead
    (a command checks its outputs this way before it validates the rest of its arguments). ``kind``
    ``"file"`` refuses a path that names an existing folder or ends in a separator, ``"folder"`` one
    that names an existing file.
    """
    text = os.fspath(path)
    final = Path(path)
    if kind == "file" and (text.endswith(("/", os.sep)) or final.is_dir()):
        raise InputError(f"{text} is a folder; give a file name for this output (e.g. {final / 'out'}...)")
    if kind == "folder" and final.exists() and not final.is_dir():
        raise InputError(f"{text} is an existing file; this output is a folder: give a folder path")
    if not create:
        base = final.parent
        while not base.exists() and base != base.parent:
            base = base.parent
        if not base.is_dir():
            raise InputError(f"cannot write {final}: part of its folder path is an existing file ({base}); "
                             "choose another path")
        final = base / final.name
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"cannot write {final}: part of its folder path is an existing file; "
                         "choose another path") from None
    except OSError as exc:
        raise InputError(f"cannot write {final}: cannot create its folder ({exc.strerror or exc}); "
                         "choose a writable folder") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".probe", dir=final.parent)
    except OSError as exc:
        raise InputError(f"cannot write {final}: its folder {final.parent} does not accept new files "
                         f"({exc.strerror or exc}); choose a writable folder") from None
    os.close(fd)
    os.unlink(probe)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and directories (e.g. zarr stores). On error the temporary is removed, so no
    half-written output is ever left under the final name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    final = writable_parent(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # callers create it (file or directory)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary output {tmp}")
        if final.is_dir() and not final.is_symlink() and not tmp.is_dir():  # never delete a folder for a file
            raise InputError(f"{final} is an existing folder; give a file name for this output instead")
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_safe(v):
    """``v`` with NaN and infinities as ``None`` and numpy scalars/arrays as Python values (strict JSON:
    ``json.dumps(json_safe(v), allow_nan=False)``)."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):  # numpy scalar or array
        return json_safe(v.tolist())
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v
