"""``workbench data list | fetch ID | verify [ID] | hash FILE...``."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("data", help="list, fetch, verify and hash datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    dsub.add_parser("list", help="list every dataset in the catalogue").set_defaults(func=_list)
    f = dsub.add_parser("fetch", help="fetch and verify one dataset's files")
    f.add_argument("id")
    f.set_defaults(func=_fetch)
    v = dsub.add_parser("verify", help="fetch and verify one or all datasets against their sha256")
    v.add_argument("id", nargs="?")
    v.set_defaults(func=_verify)
    h = dsub.add_parser("hash", help="print sha256 and size of files (for writing manifests)")
    h.add_argument("files", nargs="+")
    h.set_defaults(func=_hash)


def _list(args) -> int:
    from ..catalog import list_datasets

    df = list_datasets()
    print(df[["kind", "crs", "cached", "title"]].to_string())
    return 0


def _fetch(args) -> int:
    from ..catalog import fetch

    for p in fetch(args.id):
        print(p)
    return 0


def _verify(args) -> int:
    from ..catalog import verify

    df = verify(args.id)
    for r in df.itertuples():
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.id:<28} {r.file:<55} {r.error}")
    n_bad = int((~df["ok"]).sum()) if len(df) else 0
    print(f"{len(df) - n_bad} verified, {n_bad} failed")
    return 1 if n_bad else 0


def _hash(args) -> int:
    from pathlib import Path

    from ..catalog import sha256_file
    from ..errors import InputError

    for f in args.files:
        p = Path(f)
        if p.is_dir():
            raise InputError(f"{f} is a folder; give the files inside it (e.g. {f}/*)")
        if not p.is_file():
            raise InputError(f"{f}: no such file")
        print(f"{sha256_file(p)}  {p.stat().st_size:>12}  {f}")
    return 0
