"""The ``workbench`` command line (also ``python -m workbench``).

Subcommands live in modules listed in :data:`COMMANDS`; each has ``register(subparsers)`` which adds
its parser and sets ``func`` (called with the parsed namespace, returning an exit code).
User errors (:class:`~workbench.errors.WorkbenchError`) are printed without a traceback, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import WorkbenchError
from .io import writable_parent

#: Modules that add subcommands; each module adds its own line.
COMMANDS: list[str] = [
    "workbench.commands.data",
    "workbench.commands.demo",
    "workbench.commands.bench",
    "workbench.commands.invert",
    "workbench.commands.asymmetry",
    "workbench.commands.topo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="Lunar Workbench: AI-driven lunar remote sensing in Jupyter."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMANDS:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # every command's output (--out, --json) is checked before the work starts, not after it
        for path, kind in ((getattr(args, "out", None), getattr(args, "out_kind", None)),
                           (getattr(args, "json_path", None), "file")):
            if path:  # makes no folder: a bad argument leaves none behind
                writable_parent(path, create=False, kind=kind)
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # file-system problems (permissions, disk full, ...) are reported, not traced
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
