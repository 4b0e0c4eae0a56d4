"""``workbench invert stations|map ...``: oxide inversion from the command line."""

from __future__ import annotations

import argparse

from ..config import PRECISIONS


def register(sub) -> None:
    p = sub.add_parser("invert", help="invert reflectance to oxide abundances")
    isub = p.add_subparsers(dest="invert_command", metavar="WHAT")
    isub.required = True

    s = isub.add_parser("stations", help="FeO/TiO2 at stations from Clementine 5-band spectra (CSV in/out)")
    s.add_argument("--train", required=True, metavar="TRAIN.csv",
                   help="stations with R415..R1000 and measured FeO_wt_pct, TiO2_wt_pct (and site or lat_deg, "
                        "lon_deg_east_0_360 to tell landing sites apart)")
    s.add_argument("--predict", required=True, metavar="PRED.csv",
                   help="stations with R415..R1000 (and site or lat_deg, lon_deg_east_0_360: a row at a landing "
                        "site with no TRAIN station, or one that cannot be placed, gets wider FeO_std/TiO2_std)")
    s.add_argument("--out", required=True, metavar="OUT.csv",
                   help="all PRED rows and columns, with FeO_pred, TiO2_pred, FeO_std, TiO2_std, FeO_lucey2000, "
                        "TiO2_lucey2000, new_site added (the band columns are the input; site and lat/lon only "
                        "place a row)")
    s.add_argument("--prior", choices=["none", "lucey2000", "synthetic"], default="none",
                   help="prior mean of the GP (default: none, the lowest RMSE when single stations of the 36 "
                        "Clementine stations are left out; with whole landing sites left out, --cv mission, no "
                        "variant beats the published Lucey 2000 constants)")
    s.add_argument("--cv", choices=["station", "mission"], default=None,
                   help="also print leave-one-out cross-validation on TRAIN")
    s.set_defaults(func=_stations, out_kind="file")

    m = isub.add_parser("map", help="global oxide map of the synthetic Moon (or a reflectance zarr or GeoTIFF) to zarr")
    m.add_argument("--out", required=True, metavar="OUT.zarr")
    m.add_argument("--ppd", type=int, default=None,
                   help="pixels per degree of the synthetic Moon (default 4), or of the latitude/longitude grid a "
                        "projected REFL.tif is warped onto (default: the file's own resolution)")
    m.add_argument("--input", default=None, metavar="REFL.zarr|REFL.tif",
                   help="reflectance cube (band, lat, lon) in zarr, or a multiband lunar GeoTIFF (or PDS3 .lbl, "
                        "PDS4 .xml, ISIS3 .cub) in latitude/longitude, or projected (e.g. polar stereographic: then "
                        "warped onto latitude/longitude first, bilinear or averaged onto a coarser --ppd); default: "
                        "the synthetic Moon")
    m.add_argument("--variable", default=None, metavar="NAME",
                   help="reflectance variable in REFL.zarr (default: the one variable with a 'band' dim)")
    m.add_argument("--bands", default=None, type=_names, metavar="B1,B2,...",
                   help="names of REFL.tif's bands in the file's order, when the file does not name them "
                        "(e.g. R415,R750,R900,R950,R1000 for Clementine UVVIS)")
    m.add_argument("--crs", default=None, metavar="CRS",
                   help="REFL.tif's CRS when it has none or a wrong (non-lunar) one, e.g. IAU_2015:30100")
    m.add_argument("--weights", default=None,
                   help="weights .pt (default: the committed weights of the cube's 'instrument' attribute, else "
                        "those whose bands match it; for the synthetic Moon: inversion_clementine_uvvis)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing OUT.zarr")
    m.add_argument("--scheduler", default="local", metavar="local|threads|ADDRESS",
                   help="where dask runs the chunks: 'local' (default) a dask.distributed cluster started in "
                        "this process, with a dashboard; 'threads' dask's threaded scheduler; or the address "
                        "of an existing dask.distributed scheduler (tcp://host:8786)")
    m.add_argument("--chunk", type=int, default=512, help="chunk size in pixels (lat and lon)")
    m.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="network arithmetic (default: WORKBENCH_PRECISION, else auto = bfloat16 where the CPU/GPU "
                        "computes it natively, about 1.7-2.0x faster on the 2-core benchmark machine "
                        "(speedup_vs_float32 in the benchmark); float32 for bit-for-bit reference runs)")
    m.set_defaults(func=_map, out_kind="folder")


def _names(text: str) -> list[str]:
    """``--bands R415,R750`` -> ``["R415", "R750"]`` (spaces around names ignored)."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty band name; give names separated by commas, "
                                         "e.g. R415,R750,R900,R950,R1000")
    return names


def _stations(args) -> int:
    from ..inversion import stations as st
    from ..io import atomic_path

    train = st.read_stations(args.train, require_targets=True)
    pred = st.read_stations(args.predict)
    prior = None
    if args.prior == "lucey2000":
        prior = st.lucey_prior
    elif args.prior == "synthetic":
        from ..inversion.model import synthetic_station_prior

        prior = synthetic_station_prior()
    if args.cv:
        methods = {"gp_prior": lambda: st.StationInverter(prior=prior)} if prior is not None else None
        print(st.cross_validate(train, by=args.cv, methods=methods).round(3).to_string())
        print(f"note: {st.HELD_OUT_CAVEAT}")
    # Only the bands are inputs; every other PRED column (ids, notes, measured values) is carried through
    # untouched so OUT rows can be matched back; predictions replace columns of the same name.
    model = st.StationInverter(prior=prior).fit(train)
    if model.n_skipped:
        print(f"TRAIN: {model.n_used} stations used, {model.n_skipped} skipped (a blank band or oxide)")
    placed = [c for c in st.LOCATION_COLUMNS if c in pred.columns]  # which landing site each row is at
    added = model.predict(pred[[*st.BANDS, *placed]]).drop(columns=[*st.BANDS, *placed])
    n_new = int(added["new_site"].sum())
    if n_new:
        spread = model.between_site_std
        print(f"note: {n_new} PRED row(s) are at landing sites with no TRAIN station (by 'site', else more than "
              f"{st.NEW_SITE_KM:g} km from every TRAIN station, else unplaced; column new_site): "
              + (f"their FeO_std/TiO2_std add the spread between TRAIN's landing sites, {spread[0]:.2f} / "
                 f"{spread[1]:.2f} wt% (leave-one-site-out)" if spread is not None else
                 "TRAIN has fewer than 3 landing sites that can be told apart ('site' or lat_deg/lon_deg_east_0_360 "
                 "columns), so their FeO_std/TiO2_std are the station-level ones and likely too narrow"))
    used = train.dropna(subset=[*st.BANDS, *st.TARGETS.values()])[st.BANDS].drop_duplicates()  # rows fitted
    seen = pred[st.BANDS].dropna().merge(used, how="inner").shape[0]
    if seen:
        print(f"note: {seen} PRED row(s) have the same spectra as TRAIN stations: there the model reproduces the "
              "measured oxides and FeO_std/TiO2_std are not held-out uncertainties (use --cv station for those)")
    out = pred.drop(columns=[c for c in added.columns if c in pred.columns]).join(added)
    with atomic_path(args.out) as tmp:
        out.to_csv(tmp, index=False)
    print(f"wrote {len(out)} rows to {args.out}")
    return 0


def _map(args) -> int:
    from ..inversion.global_map import invert_global_cli

    invert_global_cli(args)
    return 0
