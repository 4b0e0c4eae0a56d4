"""``workbench asymmetry --dataset ID|--input MAPS --variable NAME --json PATH``.

For a gridded dataset (or a map file given with ``--input``: a zarr store such as ``workbench invert map``'s,
NetCDF or GeoTIFF): area-weighted ``mean`` with a block-bootstrap ``ci95`` and ``area_fraction``
for ``near``, ``far``, ``north`` and ``south``, plus ``near_minus_far`` and ``north_minus_south``
(``value``, ``ci95``, ``p_value`` from a block permutation test). For a crater catalogue
(``craters_head2010``, ``craters_lroc_5_20km``): crater densities per 10^6 km^2 with exact Poisson
intervals instead (``--variable``, ``--block-deg``, ``--n-boot``, ``--n-perm`` and ``--seed`` apply to
gridded datasets only and are refused for a catalogue). The result is printed as a table and, with
``--json``, written atomically as strict JSON (NaN, e.g. an interval too few blocks support, is
written as ``null``).
"""

from __future__ import annotations

import json
import math


def register(sub) -> None:
    p = sub.add_parser(
        "asymmetry",
        help="near/far and north/south statistics of a variable (or crater densities) with 95%% intervals",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", metavar="ID",
                     help="dataset id (e.g. lola_ldem_4ppd, synthetic_moon) or crater catalogue id")
    src.add_argument("--input", metavar="MAPS", dest="input_path",
                     help="your own global map file instead: a zarr store (e.g. from 'workbench invert map'), "
                          "a .nc, or a GeoTIFF, PDS3 .lbl, PDS4 .xml, ISIS3 .cub or VICAR raster (a projected "
                          "one, e.g. a LOLA LDEM in simple cylindrical metres, is warped onto latitude/longitude "
                          "first)")
    p.add_argument("--ppd", type=int, default=None,
                   help="with --input: pixels per degree of the latitude/longitude grid a projected map is warped "
                        "onto (default: its own resolution; a coarser grid averages it)")
    p.add_argument("--variable", metavar="NAME",
                   help="variable of a gridded dataset (e.g. elevation, FeO, mg_number); "
                        "default: the dataset's only variable")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the results to PATH (atomic)")
    p.add_argument("--block-deg", type=float, default=None,
                   help="gridded datasets: bootstrap/permutation block size in degrees (default 10)")
    p.add_argument("--n-boot", type=int, default=None, help="gridded datasets: bootstrap replicates (default 1000)")
    p.add_argument("--n-perm", type=int, default=None, help="gridded datasets: permutations (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="gridded datasets: random seed (default 0)")
    p.add_argument("--lat-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="crater catalogues: latitude coverage; default from the catalogue id")
    p.set_defaults(func=_run)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def format_table(result: dict) -> str:
    """Plain-text table of a :func:`compute` result."""
    lines = [f"{result.get('dataset', '')}  {result.get('variable', '')}  [{result.get('units', '')}]"]
    is_crater = "density" in result.get("near", {})
    cols = (["count", "density", "ci95", "area_km2", "area_fraction"] if is_crater
            else ["mean", "ci95", "median", "area_fraction", "n_blocks"])
    rows = [["region", *cols]]
    for r in ("near", "far", "north", "south"):
        rows.append([r, *(_fmt(result[r].get(c, "")) for c in cols)])
    dcols = ["value", "ci95", "p_value"] + (["rate_ratio"] if is_crater else ["cohens_d"])
    rows.append(["difference", *dcols, *[""] * (len(cols) - len(dcols))])
    for d in ("near_minus_far", "north_minus_south"):
        rows.append([d, *(_fmt(result[d].get(c, "")) for c in dcols), *[""] * (len(cols) - len(dcols))])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if result.get("grid"):
        lines.append(f"grid: {result['grid']}")
    lines.append(result.get("method", ""))
    return "\n".join(lines)


def compute(dataset: str | None = None, variable: str | None = None, *, block_deg: float | None = None,
            n_boot: int | None = None, n_perm: int | None = None, seed: int | None = None,
            lat_range: tuple[float, float] | None = None, path: str | None = None, ppd: int | None = None) -> dict:
    """Compute the CLI's result dict (see the module docstring).

    Parameters
    ----------
    dataset
        Dataset id: a gridded dataset or a crater catalogue (table).
    path
        Instead of ``dataset``: a map file (zarr store, NetCDF or GeoTIFF, read by
        :func:`workbench.rasters.open_map_file`) on a global (lat, lon) grid, e.g. ``workbench invert map``'s
        output. Its result's ``dataset`` is the file's name.
    variable
        Data variable of a gridded dataset on (lat, lon); default its only such variable.
    block_deg, n_boot, n_perm, seed
        Gridded datasets only (``None``: 10 degrees, 1000, 2000, 0). Refused for a catalogue.
    lat_range
        Crater catalogues only: latitude coverage; default from the catalogue id.
    ppd
        ``path`` only: pixels per degree of the grid a projected map is warped onto (default its own
        resolution; :func:`workbench.rasters.dataset_to_latlon`).

    Raises
    ------
    InputError
        On an option that does not apply to the dataset's kind, or a ``variable`` that is not a
        data variable of the dataset (e.g. the coordinate ``lat``).
    """
    from ..analysis import craters
    from ..catalog import get_manifest, open_dataset, open_table
    from ..errors import InputError

    if (dataset is None) == (path is None):
        raise InputError("give either a dataset id (--dataset) or a map file (--input), not both or neither")
    if path is not None:
        from pathlib import Path

        from ..rasters import dataset_to_latlon, open_map_file

        if lat_range is not None:
            raise InputError("--lat-range applies to crater catalogues (tables); a map file's coverage comes from "
                             "its own NaN cells. Leave --lat-range out")
        ds, dataset = dataset_to_latlon(open_map_file(path), ppd), Path(path).name
        res = _grid_summary(ds, dataset, variable, block_deg, n_boot, n_perm, seed)
        warped = next((ds[v].attrs for v in ds.data_vars if "warped_from" in ds[v].attrs), None)
        if warped:  # a projected map (e.g. a LOLA LDEM in simple cylindrical metres): say how it was gridded
            res["grid"] = (f"{warped['warped_from']} warped onto latitude/longitude at {warped['ppd']} px/deg "
                           f"({warped['resampling']})")
        return res
    if ppd is not None:
        raise InputError(f"--ppd sets the grid a projected --input map is warped onto; the dataset {dataset!r} "
                         "keeps its own grid (drop --ppd)")
    m = get_manifest(dataset)
    if m.kind == "table":
        given = [flag for flag, v in (("--variable", variable), ("--block-deg", block_deg), ("--n-boot", n_boot),
                                      ("--n-perm", n_perm), ("--seed", seed)) if v is not None]
        if given:
            raise InputError(
                f"{', '.join(given)} apply to gridded datasets; {dataset!r} is a crater catalogue, whose summary "
                "has fixed settings (exact Poisson intervals and a 10 deg block bootstrap, 1000 replicates, seed 0). "
                "Leave them out"
            )
        cov = (tuple(lat_range) if lat_range else craters.CATALOGUE_LAT_COVERAGE.get(dataset))
        if cov is None:
            raise InputError(
                f"{dataset!r} is a table but not a known crater catalogue; pass --lat-range LOW HIGH to "
                f"treat it as one (known: {', '.join(craters.CATALOGUE_LAT_COVERAGE)})"
            )
        res = craters.density_summary(open_table(dataset), lat_range=cov)
        return {"dataset": dataset, "variable": "crater density", **res}
    if lat_range is not None:
        raise InputError(f"--lat-range applies to crater catalogues (tables); {dataset!r} is a grid, whose "
                         "coverage comes from its own NaN cells. Leave --lat-range out")
    return _grid_summary(open_dataset(dataset), dataset, variable, block_deg, n_boot, n_perm, seed)


def _grid_summary(ds, dataset: str, variable: str | None, block_deg: float | None, n_boot: int | None,
                  n_perm: int | None, seed: int | None) -> dict:
    """The gridded part of :func:`compute`: choose the (lat, lon) variable, then ``asymmetry_summary``."""
    from ..analysis import asymmetry
    from ..errors import InputError

    grid_vars = [str(v) for v in ds.data_vars if set(ds[v].dims) == {"lat", "lon"}]
    if not grid_vars:
        raise InputError(f"{dataset!r} has no (lat, lon) variable (it is a polar or projected (y, x) grid, or a "
                         "(band, lat, lon) cube); hemispheric statistics need a global (lat, lon) map such as "
                         "lola_ldem_4ppd or an oxide map from 'workbench invert map'")
    if variable is None:
        if len(grid_vars) != 1:
            raise InputError(f"{dataset!r} has several variables; choose one with --variable from: "
                             f"{', '.join(grid_vars)}")
        variable = grid_vars[0]
    if variable not in ds.data_vars:
        what = "a coordinate, not a data variable," if variable in ds.coords else "not a variable"
        raise InputError(
            f"{variable!r} is {what} in {dataset!r}; choose one of: {', '.join(grid_vars)}"
        )
    da = ds[variable]
    res = asymmetry.asymmetry_summary(da, block_deg=10.0 if block_deg is None else block_deg,
                                      n_boot=1000 if n_boot is None else n_boot,
                                      n_perm=2000 if n_perm is None else n_perm, seed=0 if seed is None else seed)
    return {"dataset": dataset, **res}


def _run(args) -> int:
    from ..io import atomic_write_text, json_safe

    result = compute(args.dataset, args.variable, block_deg=args.block_deg, n_boot=args.n_boot,
                     n_perm=args.n_perm, seed=args.seed, lat_range=args.lat_range, path=args.input_path,
                     ppd=args.ppd)
    print(format_table(result))
    if args.json_path:
        atomic_write_text(args.json_path, json.dumps(json_safe(result), indent=2, allow_nan=False))
        print(f"wrote {args.json_path}")
    return 0
