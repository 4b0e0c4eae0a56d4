"""``workbench bench NAME [--json PATH] [--fast]``."""

from __future__ import annotations


def register(sub) -> None:
    from ..bench import BENCHMARKS

    p = sub.add_parser("bench", help="run a benchmark and write its figures as JSON")
    p.add_argument("name", choices=sorted(BENCHMARKS) or None, help="benchmark to run")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the figures to PATH")
    p.add_argument("--fast", action="store_true", help="smaller problem sizes (fast mode)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..bench import run_benchmark, to_json

    print(to_json(run_benchmark(args.name, json_path=args.json_path, fast=args.fast)))
    return 0
