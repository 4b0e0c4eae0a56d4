"""Atomic output: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
import uuid
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
        replace_path(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def replace_path(new: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Put ``new`` (a file or a folder) under the name ``final``, replacing what is there, never half of it.

    A file replaces a file with one :func:`os.replace`. A folder cannot be renamed over a non-empty folder,
    so an existing folder ``final`` is first renamed aside to a hidden ``.NAME.*.old`` beside it, ``new``
    is renamed onto ``final``, and only then is the old folder deleted. Whatever interrupts this (an
    exception, Ctrl-C), ``final`` holds either the whole old or the whole new content: an error before
    ``new`` is in place renames the old folder back; an interruption while the old folder is being
    deleted leaves the new one in place and at most a hidden ``.NAME.*.old`` folder, which can be deleted.

    Parameters
    ----------
    new
        The complete new content, in the same folder (file system) as ``final``; it is moved, not copied.
    final
        The name it gets.

    Returns
    -------
    Path
        ``final``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "store").mkdir(); _ = (d / "store" / "v").write_text("old")
    >>> (d / "new").mkdir(); _ = (d / "new" / "v").write_text("new")
    >>> (replace_path(d / "new", d / "store") / "v").read_text()
    'new'
    """
    new, final = Path(new), Path(final)
    if not (final.is_dir() and not final.is_symlink()):
        os.replace(new, final)  # a file (or nothing) under the final name: one atomic rename
        return final
    if not new.is_dir():  # never delete a folder for a file
        raise InputError(f"{final} is an existing folder; give a file name for this output instead")
    aside = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(final, aside)  # the old content, whole, under a hidden name
    try:
        os.replace(new, final)
    except BaseException:
        os.replace(aside, final)  # the new content is not in place: put the old back
        raise
    shutil.rmtree(aside, ignore_errors=True)  # interrupted here: ``final`` is already the whole new content
    return final


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")  # whatever the locale: pages declare charset utf-8
    return Path(path)


def one_line(text: str) -> str:
    """A multi-line message as one line: its lines stripped (and of a leading ``"- "``) and joined with
    ``"; "`` (with a space after a line ending in ``":"``).

    Examples
    --------
    >>> one_line("x could not be fetched:\\n  - mirror: not set\\n  - wheel: offline\\nSet a mirror.")
    'x could not be fetched: mirror: not set; wheel: offline; Set a mirror.'
    """
    out = ""
    for line in text.splitlines():
        part = line.strip().removeprefix("- ")
        if part:
            out += part if not out else (" " if out.endswith(":") else "; ") + part
    return out


def file_stamp(path: str | os.PathLike) -> tuple[int, int] | None:
    """Modification time and size of a file: what tells a rewritten file from the old one.

    Parameters
    ----------
    path
        The file (a symbolic link is followed).

    Returns
    -------
    tuple of int, or None
        ``(mtime_ns, size)``: modification time in nanoseconds and size in bytes, from one
        :func:`os.stat`; ``None`` when the file cannot be stat'ed (missing, or removed meanwhile).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.txt").write_text("hello")
    >>> file_stamp(d / "a.txt")[1], file_stamp(d / "missing.txt")
    (5, None)
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


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
