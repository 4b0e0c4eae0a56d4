"""Planted ground truth for prospectivity: high-Ti pyroclastic / ilmenite-rich deposits.

:func:`plant_deposits` adds irregular patches (a few to hundreds of pixels) to a synthetic Moon: inside
each patch the mineral modes are mixed towards an ilmenite- and glass-enriched assemblage, the oxides
and bulk Mg# are recomputed by stoichiometry (:func:`workbench.synth.minerals.oxides_from_modes`),
maturity is lowered (dark mantling deposits are fine-grained and less weathered) and ``npfe``
follows from FeO and maturity as in :func:`workbench.synth.make_moon`. A boolean ``deposit`` variable
records the truth.

The deposits are a fair test, not a giveaway: a deposit mixes the ground towards an ilmenite fraction
drawn from ``ilmenite_target`` (default 0.05-0.14; at least +0.02 ilmenite where the ground is richer)
while adding 10-30 wt% glass, which dilutes the rest. The target is not reached: the strength is at
most 0.8-1 and the added glass dilutes the ground's own ilmenite, so deposit cores hold about 5-13 wt%
ilmenite and 3-10 wt% TiO2 (median 6-8 wt%), within the range of the high-Ti maria (background mare
TiO2 up to ~9 wt%). Measured on procedural Moons (``make_moon(seed=0, geography="procedural")`` at 1 and
2 px/deg, ``plant_deposits(n=40)`` with seeds 0-4 and 0-1, pixels of strength > 0.9): ilmenite
0.049-0.134 weight fraction (5th percentile to maximum; medians 0.077-0.102), TiO2 3.8-10.0 wt% (5th
percentile to maximum; medians 6.1-7.2 wt%). A patch is round on the sphere: its column radius is
stretched by 1/cos(lat). 70% of the deposits are centred on mare ground and the
others anywhere equatorward of ``max_abs_lat``; the strength tapers at the edges; no topographic layer
changes. A deposit is found by how its layers fit together given its context, not by one layer's extreme.

The planted records are stored in ``attrs["deposits"]`` as a JSON string (so that the Moon can be written
to netCDF or zarr); read them with :func:`deposit_records`.

References
----------
Gaddis, L. R. et al. (2003), Compositional analyses of lunar pyroclastic deposits, Icarus 161:262.
Weitz, C. M. et al. (1998), Pyroclastic deposits on the Moon: orange and black glass beads,
JGR 103:22725. Allen, C. C. et al. (1996), Oxygen extraction from lunar soils and pyroclastic glass,
JGR 101:26085 (ilmenite-rich ground for in-situ resource use).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..errors import InputError

_NEEDED = ("mode", "silicate_mg_number", "maturity", "FeO", "TiO2", "mare")


def deposit_records(moon: xr.Dataset) -> list[dict]:
    """The records of the deposits planted in ``moon`` by :func:`plant_deposits`, oldest first.

    Each record is a dict with ``lat``, ``lon`` (degrees, centre), ``radius_px``, ``ilmenite_target``,
    ``glass_added`` and ``maturity_factor``. ``attrs["deposits"]`` holds them as a JSON string (netCDF and
    zarr store strings, not lists of dicts); a list of dicts (as older versions stored it) is read as
    well. Empty when nothing was planted.

    Examples
    --------
    >>> import xarray as xr
    >>> deposit_records(xr.Dataset(attrs={"deposits": '[{"lat": 1.0, "lon": 2.0}]'}))
    [{'lat': 1.0, 'lon': 2.0}]
    """
    raw = moon.attrs.get("deposits", [])
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise InputError("attrs['deposits'] is not the JSON list plant_deposits writes; drop it (and "
                             "'deposit', 'deposit_strength') to plant afresh") from None
    if not isinstance(raw, list | tuple) or not all(isinstance(r, dict) for r in raw):
        raise InputError(f"attrs['deposits'] should list one dict per deposit, got {type(raw).__name__}; drop it "
                         "(and 'deposit', 'deposit_strength') to plant afresh")
    return [dict(r) for r in raw]


def _deposit_strength(shape, lat, lon, r0, c0, radius_px, rng) -> tuple[np.ndarray, slice, np.ndarray]:
    """Soft, irregular patch of radius ``radius_px`` (rows) centred at (r0, c0); lon wraps.

    The column radius is stretched by 1/cos(lat) so the patch is round on the sphere.
    """
    n_lat, n_lon = shape
    coslat = max(float(np.cos(np.deg2rad(lat[r0]))), 0.2)
    rc = radius_px / coslat
    h = int(np.ceil(radius_px * 1.6)) + 1
    w = int(np.ceil(rc * 1.6)) + 1
    rows = slice(max(0, r0 - h), min(n_lat, r0 + h + 1))
    cols = (c0 + np.arange(-w, w + 1)) % n_lon
    dy = np.arange(rows.start, rows.stop)[:, None] - r0
    dx = np.arange(-w, w + 1)[None, :] * coslat  # k columns are k·cos(lat) rows' length on the sphere
    d = np.hypot(dy, dx)
    ang = np.arctan2(dy, dx)
    # lobate outline: a few random harmonics of the radius
    wob = np.ones_like(ang)
    for k in (2, 3, 5):
        wob += rng.uniform(0.0, 0.12) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    rr = d / (radius_px * wob)
    s = 1.0 / (1.0 + np.exp((rr - 1.0) / 0.12))  # ~1 inside, 0.5 at the outline, ~0 outside
    return s, rows, cols


def _check_range(name: str, value, lo: float, hi: float, what: str) -> None:
    """One InputError unless ``value`` is an ordered ``(low, high)`` pair of finite numbers in [lo, hi]."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (np.isfinite(a) and np.isfinite(b) and lo <= a <= b <= hi):
        raise InputError(f"{name} must be a (low, high) pair with {lo:g} <= low <= high <= {hi:g} ({what}), "
                         f"got {tuple(value)}")


def plant_deposits(
    moon: xr.Dataset,
    n: int = 40,
    seed: int = 0,
    radius_px: tuple[float, float] = (1.0, 15.0),
    ilmenite_target: tuple[float, float] = (0.05, 0.14),
    glass_added: tuple[float, float] = (0.10, 0.30),
    maturity_factor: tuple[float, float] = (0.5, 0.8),
    mare_fraction: float = 0.7,
    max_abs_lat: float = 60.0,
    reflectance: bool = True,
) -> xr.Dataset:
    """Plant ``n`` high-Ti pyroclastic / ilmenite-rich deposits into a synthetic Moon.

    Parameters
    ----------
    moon
        A dataset from :func:`workbench.synth.make_moon` (needs ``mode``, ``silicate_mg_number``,
        ``maturity``, ``FeO``, ``TiO2``, ``mare``).
    n
        Number of deposits.
    seed
        Random seed (placement, sizes, strengths, outlines).
    radius_px
        Range of deposit radii in pixels (log-uniform), along latitude.
    ilmenite_target
        ``(low, high)`` range of the ilmenite weight fraction a deposit mixes the ground towards at full
        strength (at least +0.02 where the ground is already richer, e.g. high-Ti mare); fractions in
        [0, 1]. The added glass dilutes the ground, so the result stays below the target (see the
        module notes for measured figures).
    glass_added
        ``(low, high)`` range of the glass weight fraction added at full strength (other minerals are
        scaled down to keep the modes summing to 1); fractions in [0, 1], with
        ``max(ilmenite_target[1], 0.02) + glass_added[1] < 1`` so that some of the ground's own minerals
        remain.
    maturity_factor
        ``(low, high)`` range of the factor applied to maturity at full strength, within [0, 1]: a
        deposit lowers maturity (1 leaves it unchanged, 0 makes the ground fully immature).
    mare_fraction
        Fraction of deposits centred on mare pixels (the rest anywhere with ``|lat| <= max_abs_lat``).
    max_abs_lat
        Latitude limit (degrees) of deposit centres.
    reflectance
        Recompute the (lazy) ``reflectance`` spectra from the new modes when the moon has them.

    Returns
    -------
    xarray.Dataset
        A copy of ``moon`` with updated ``mode``, oxides, ``mg_number``, ``maturity``, ``npfe`` (and
        ``reflectance``), a boolean ``deposit`` (strength > 0.5), the float ``deposit_strength`` (0-1)
        and ``attrs["deposits"]`` (a JSON string of one record per deposit: centre lat/lon, radius and
        the drawn strengths; read it with :func:`deposit_records`), ``attrs["deposit_seed"]``.

        Planting into a Moon that already has deposits adds to them: the new deposits act on the
        already enriched ground, ``deposit_strength`` is the per-pixel maximum of the old and new
        strengths (so ``deposit`` keeps the first set), ``attrs["deposits"]`` lists the old records and
        then the new ones, ``attrs["deposit_seed"]`` is the latest seed and ``attrs["deposit_seeds"]``
        lists the seeds of every call.

    Raises
    ------
    InputError
        Not a synthetic Moon; ``n < 0``; a range that is not an ordered ``(low, high)`` pair within its
        bounds; ``mare_fraction`` outside [0, 1]; no pixel within ``max_abs_lat``.
    """
    from .minerals import MINERALS, oxides_from_modes
    from .moon import NPFE_PER_FEO

    missing = [v for v in _NEEDED if v not in moon]
    if missing:
        raise InputError(
            f"plant_deposits needs a synthetic Moon from workbench.synth.make_moon(); missing {missing}"
        )
    if n < 0:
        raise InputError(f"n must be >= 0, got {n}")
    lo_r, hi_r = radius_px
    if not 0 < lo_r <= hi_r:
        raise InputError(f"radius_px must be (min, max) with 0 < min <= max, got {radius_px}")
    if not 0.0 <= mare_fraction <= 1.0:
        raise InputError(f"mare_fraction must lie in [0, 1], got {mare_fraction}")
    _check_range("ilmenite_target", ilmenite_target, 0.0, 1.0, "an ilmenite weight fraction")
    _check_range("glass_added", glass_added, 0.0, 1.0, "a glass weight fraction")
    _check_range("maturity_factor", maturity_factor, 0.0, 1.0, "a factor that lowers maturity (1: unchanged)")
    if max(ilmenite_target[1], 0.02) + glass_added[1] >= 1.0:
        raise InputError(f"ilmenite_target high ({ilmenite_target[1]}) plus glass_added high ({glass_added[1]}) "
                         "must stay below 1 (weight fractions of the same ground); lower one of them")
    rng = np.random.default_rng([seed, 707])
    lat = moon["lat"].values
    lon = moon["lon"].values
    shape = (lat.size, lon.size)
    mare = moon["mare"].values.astype(bool)
    band = (np.abs(lat) <= max_abs_lat)[:, None] & np.ones(shape, bool)
    pool_mare = np.flatnonzero(band & mare)
    pool_any = np.flatnonzero(band)
    if pool_any.size == 0:
        raise InputError(f"no pixels with |lat| <= {max_abs_lat}; raise max_abs_lat")

    names = list(moon["mineral"].values)
    mode = moon["mode"].transpose("mineral", "lat", "lon").values.astype("float64")
    ilm0 = mode[names.index("ilmenite")]
    strength = np.zeros(shape, dtype="float32")
    d_ilm = np.zeros(shape, dtype="float32")
    d_gl = np.zeros(shape, dtype="float32")
    f_mat = np.ones(shape, dtype="float32")
    records = []
    for _ in range(n):
        pool = pool_mare if (rng.random() < mare_fraction and pool_mare.size) else pool_any
        idx = int(pool[rng.integers(pool.size)])
        r0, c0 = divmod(idx, lon.size)
        rad = float(np.exp(rng.uniform(np.log(lo_r), np.log(hi_r))))
        s, rows, cols = _deposit_strength(shape, lat, lon, r0, c0, rad, rng)
        s = s * rng.uniform(0.8, 1.0)  # not every deposit is equally concentrated
        a_ilm = rng.uniform(*ilmenite_target)
        a_gl = rng.uniform(*glass_added)
        a_mat = rng.uniform(*maturity_factor)
        ix = np.ix_(np.arange(rows.start, rows.stop), cols)
        cur = strength[ix]
        take = s > cur  # overlapping deposits: the stronger one wins per pixel
        strength[ix] = np.where(take, s, cur)
        gain = np.maximum(a_ilm - ilm0[ix], 0.02)
        d_ilm[ix] = np.where(take, s * gain, d_ilm[ix])
        d_gl[ix] = np.where(take, s * a_gl, d_gl[ix])
        f_mat[ix] = np.where(take, 1.0 - s * (1.0 - a_mat), f_mat[ix])
        records.append({"lat": float(lat[r0]), "lon": float(lon[c0]), "radius_px": rad,
                        "ilmenite_target": a_ilm, "glass_added": a_gl, "maturity_factor": a_mat})

    out = moon.copy()
    i_ilm, i_gl = names.index("ilmenite"), names.index("glass")
    add = np.zeros_like(mode)
    add[i_ilm] = d_ilm
    add[i_gl] = d_gl
    rest = 1.0 - d_ilm - d_gl
    new = mode * rest[None] + add
    new /= new.sum(axis=0, keepdims=True)
    mode_da = xr.DataArray(new.astype("float32"), dims=("mineral", "lat", "lon"),
                           coords={"mineral": names, "lat": moon["lat"], "lon": moon["lon"]},
                           attrs=moon["mode"].attrs)
    ox = oxides_from_modes(mode_da.sel(mineral=list(MINERALS)), moon["silicate_mg_number"])
    out["mode"] = mode_da
    for name in ox.data_vars:
        if name in out:
            out[name] = ox[name].assign_attrs(moon[name].attrs).astype("float32")
    maturity = (moon["maturity"] * f_mat).astype("float32").assign_attrs(moon["maturity"].attrs)
    out["maturity"] = maturity
    out["npfe"] = (NPFE_PER_FEO * out["FeO"] * maturity).astype("float32").assign_attrs(
        units="wt%", long_name="nanophase metallic iron (npFe0)")
    if reflectance and "reflectance" in moon:
        from .spectra import reflectance_from_modes

        rows_per = max(1, int(2**17 // moon.sizes["lon"]))
        base = out[["mode", "silicate_mg_number", "npfe"]].chunk({"lat": rows_per, "lon": -1, "mineral": -1})
        refl = reflectance_from_modes(base["mode"], base["silicate_mg_number"], base["npfe"],
                                      moon["wavelength"].values)
        out["reflectance"] = refl.transpose("lat", "lon", "wavelength").assign_attrs(moon["reflectance"].attrs)
    planted = _planted_before(moon)
    if planted is not None:  # a second set adds to the first: the truth keeps both
        strength = np.maximum(planted, strength)
        records = [*deposit_records(moon), *records]
        seeds = moon.attrs.get("deposit_seeds", [moon.attrs["deposit_seed"]] if "deposit_seed" in moon.attrs else [])
        out.attrs["deposit_seeds"] = [*(int(v) for v in seeds), int(seed)]
    out["deposit_strength"] = xr.DataArray(strength, dims=("lat", "lon"), attrs={
        "units": "1", "long_name": "planted deposit strength (0 background, 1 full)"})
    out["deposit"] = (out["deposit_strength"] > 0.5).assign_attrs(
        units="1", long_name="planted high-Ti pyroclastic / ilmenite-rich deposit (truth)")
    out.attrs["deposits"] = json.dumps(records)  # a string: netCDF cannot store a list of dicts
    out.attrs["deposit_seed"] = int(seed)
    return out


def _planted_before(moon: xr.Dataset) -> np.ndarray | None:
    """The (lat, lon) float32 strength of deposits already planted in ``moon`` (``None`` when there are none):
    its ``deposit_strength``, or its boolean ``deposit`` as strength 1 where that is all it has."""
    if "deposit_strength" in moon:
        prev = moon["deposit_strength"]
    elif "deposit" in moon:
        prev = moon["deposit"].astype("float32")
    else:
        return None
    if set(prev.dims) != {"lat", "lon"}:
        raise InputError(f"the Moon's existing deposit truth has dims {prev.dims}, not ('lat', 'lon'); drop "
                         "'deposit' and 'deposit_strength' to plant afresh")
    return np.nan_to_num(prev.transpose("lat", "lon").values.astype("float32"), nan=0.0)
