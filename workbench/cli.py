"""The ``workbench`` command line (also ``python -m workbench``).

Subcommands live in modules listed in :data:`COMMANDS`; each has ``register(subparsers)`` which adds
its parser and sets ``func`` (called with the parsed namespace, returning an exit code).
User errors (:class:`~workbench.errors.WorkbenchError`) are printed on one line without a traceback,
exit code 2; ``workbench --verbose ...`` prints them in full (several lines, with e.g. pip's own output).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator

from .errors import WorkbenchError
from .io import one_line, writable_parent

#: Modules that add subcommands; each module adds its own line.
COMMANDS: list[str] = [
    "workbench.commands.data",
    "workbench.commands.demo",
    "workbench.commands.bench",
    "workbench.commands.invert",
    "workbench.commands.asymmetry",
    "workbench.commands.topo",
    "workbench.commands.export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="Lunar Workbench: AI-driven lunar remote sensing in Jupyter."
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print errors in full (several lines, with the output of pip) instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMANDS:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Parameters
    ----------
    argv
        The arguments, without the program name.

    Returns
    -------
    int
        0 on success, 2 for a user error (printed as ``error: <one line>``), 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    with _verbose_logging(verbose):
        return _run(args, verbose)


@contextlib.contextmanager
def _verbose_logging(verbose: bool) -> Iterator[None]:
    """With ``verbose``, show the workbench's INFO log (e.g. the full output of a failed ``pip download``)
    on stderr for the duration of the command."""
    if not verbose:
        yield
        return
    log = logging.getLogger("workbench")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _run(args: argparse.Namespace, verbose: bool) -> int:
    try:
        # every command's output (--out, --json) is checked before the work starts, not after it
        for path, kind in ((getattr(args, "out", None), getattr(args, "out_kind", None)),
                           (getattr(args, "json_path", None), "file")):
            if path:  # makes no folder: a bad argument leaves none behind
                writable_parent(path, create=False, kind=kind)
        return int(args.func(args) or 0)
    except (WorkbenchError, OSError) as exc:  # OSError: permissions, disk full, ... are reported, not traced
        print(f"error: {exc if verbose else one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
