"""``workbench demo`` and ``workbench lab``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys


def register(sub) -> None:
    p = sub.add_parser("demo", help="execute every curated notebook headless and write outputs/demo/")
    p.add_argument("--out", default="outputs/demo", help="output folder (default outputs/demo)")
    p.add_argument("--only", help="run only notebooks whose name contains this text")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="fast", action="store_true", default=None,
                      help="classroom fast mode (smaller grids, fewer epochs)")
    mode.add_argument("--full", dest="fast", action="store_false", help="full-size runs")
    p.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds")
    p.set_defaults(func=_demo, out_kind="folder")

    lab = sub.add_parser("lab", help="start JupyterLab on notebooks/, bound to localhost with a token")
    lab.add_argument("--port", type=_port, default=8888, help="TCP port on 127.0.0.1 (1024-65535)")
    lab.set_defaults(func=_lab)


def _port(text: str) -> int:
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a whole number, got {text!r}") from None
    if not 1024 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1024 and 65535, got {port}")
    return port


def _demo(args) -> int:
    from ..demo import format_table, run_demo

    results = run_demo(args.out, only=args.only, fast=args.fast, timeout=args.timeout)
    print(format_table(results))
    print(f"report: {os.path.join(args.out, 'index.html')}  summary: {os.path.join(args.out, 'summary.json')}")
    if not results:
        print("error: no curated notebooks found in notebooks/", file=sys.stderr)
        return 1
    return 0 if all(r["ok"] for r in results) else 1


def _lab(args) -> int:
    from ..demo import NOTEBOOK_DIR

    token = os.environ.get("WORKBENCH_LAB_TOKEN") or secrets.token_urlsafe(24)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={args.port}",
           f"--notebook-dir={NOTEBOOK_DIR}", f"--IdentityProvider.token={token}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    print(f"JupyterLab on http://127.0.0.1:{args.port}/lab  (token printed once by JupyterLab below)")
    return subprocess.call(cmd)
