"""Virtual instruments: real band passes, spectral resampling and simulated observations.

Band passes (centre, FWHM in nm)
--------------------------------
* ``clementine_uvvis``: 415 (40), 750 (10), 900 (30), 950 (30), 1000 (30) — Nozette et al. (1994),
  Science 266:1835; McEwen & Robinson (1997), Adv. Space Res. 19:1523.
* ``kaguya_mi``: VIS 415 (20), 750 (12), 900 (21), 950 (30), 1001 (42); NIR 1000 (48), 1050 (65),
  1250 (56), 1550 (56) — Ohtake et al. (2008), Earth Planets Space 60:257, Table 1. The two ~1000 nm
  bands are named ``R1001_vis`` (VIS camera) and ``R1000_nir`` (NIR camera).
* ``lro_wac``: 321 (32), 360 (15), 415 (36), 566 (20), 604 (20), 643 (23), 689 (39) — Robinson et al.
  (2010), Space Sci. Rev. 150:81; Sato et al. (2014), JGR Planets 119:1775.

Band responses are modelled as Gaussians of the given FWHM. :func:`resample_to_instrument` is a
linear map (band × wavelength matrix, the spectrum taken as piecewise linear between grid points)
applied with :func:`xarray.dot`, so it stays lazy on dask-backed cubes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..photometry import is_lit, normalisation_factor
from ..validate import is_whole_number


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "center_nm", "fwhm_nm"])


#: Instrument name → table of bands (``name``, ``center_nm``, ``fwhm_nm``).
INSTRUMENTS: dict[str, pd.DataFrame] = {
    "clementine_uvvis": _table([("R415", 415.0, 40.0), ("R750", 750.0, 10.0), ("R900", 900.0, 30.0),
                                ("R950", 950.0, 30.0), ("R1000", 1000.0, 30.0)]),
    "kaguya_mi": _table([("R415", 415.0, 20.0), ("R750", 750.0, 12.0), ("R900", 900.0, 21.0),
                         ("R950", 950.0, 30.0), ("R1001_vis", 1001.0, 42.0), ("R1000_nir", 1000.0, 48.0),
                         ("R1050", 1050.0, 65.0), ("R1250", 1250.0, 56.0), ("R1550", 1550.0, 56.0)]),
    "lro_wac": _table([("R321", 321.0, 32.0), ("R360", 360.0, 15.0), ("R415", 415.0, 36.0),
                       ("R566", 566.0, 20.0), ("R604", 604.0, 20.0), ("R643", 643.0, 23.0),
                       ("R689", 689.0, 39.0)]),
}

#: Gaussian responses are truncated at this many standard deviations.
RESPONSE_SIGMAS = 3.0


def get_instrument(instrument: str | pd.DataFrame) -> pd.DataFrame:
    """The band table of ``instrument`` (a name in :data:`INSTRUMENTS` or a table with the columns).

    Raises
    ------
    InputError
        Unknown name; a table without the columns ``name``, ``center_nm``, ``fwhm_nm``, without rows,
        with repeated band names, a centre that is not a finite number of nm or a FWHM that is not a
        positive finite number of nm.
    """
    if isinstance(instrument, pd.DataFrame):
        missing = {"name", "center_nm", "fwhm_nm"} - set(instrument.columns)
        if missing:
            raise InputError(f"instrument table lacks columns {sorted(missing)}; need name, center_nm, fwhm_nm")
        table = instrument.reset_index(drop=True)
        if table.empty:
            raise InputError("instrument table has no bands; give one row (name, center_nm, fwhm_nm) per band")
        names = table["name"].astype(str)
        if names.duplicated().any():
            raise InputError(f"instrument table repeats band names {sorted(set(names[names.duplicated()]))}; "
                             "give every band its own name")
        try:
            centre = table["center_nm"].to_numpy(dtype=float)
            fwhm = table["fwhm_nm"].to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise InputError("instrument table columns center_nm and fwhm_nm must be numbers (nm)") from None
        bad_c = ~np.isfinite(centre)
        if bad_c.any():
            raise InputError(f"band centre of {', '.join(names[bad_c])} is not a finite number; give center_nm "
                             "in nm")
        bad_f = ~(np.isfinite(fwhm) & (fwhm > 0))
        if bad_f.any():
            shown = ", ".join(f"{n}: {v:g}" for n, v in zip(names[bad_f], fwhm[bad_f], strict=True))
            raise InputError(f"band FWHM ({shown}) must be a positive number of nm (fwhm_nm)")
        return table
    if instrument not in INSTRUMENTS:
        raise InputError(f"unknown instrument {instrument!r}; choose one of {sorted(INSTRUMENTS)}")
    return INSTRUMENTS[instrument]


def response_matrix(wavelength, instrument: str | pd.DataFrame) -> xr.DataArray:
    """Weights (band, wavelength) such that ``band value = Σ_λ W[b, λ] R(λ)``; rows sum to 1.

    The band integral ``∫ R(λ) S_b(λ) dλ / ∫ S_b`` is evaluated on a 0.5 nm sub-grid with ``R`` linearly
    interpolated between the grid points, which makes the map exact for piecewise-linear spectra and
    valid for bands narrower than the grid step.

    Raises
    ------
    InputError
        When a band's response (± 3σ) is not covered by ``wavelength``.
    """
    wl = np.asarray(wavelength, dtype=float)
    if wl.ndim != 1 or wl.size < 2 or np.any(np.diff(wl) <= 0):
        raise InputError("wavelength must be a strictly increasing 1-D coordinate (nm)")
    bands = get_instrument(instrument)
    sig = bands["fwhm_nm"].to_numpy() / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    lo = bands["center_nm"].to_numpy() - RESPONSE_SIGMAS * sig
    hi = bands["center_nm"].to_numpy() + RESPONSE_SIGMAS * sig
    bad = (lo < wl[0]) | (hi > wl[-1])
    if bad.any():
        names = ", ".join(bands["name"][bad])
        raise InputError(
            f"bands {names} extend beyond the spectral grid {wl[0]:.0f}–{wl[-1]:.0f} nm; "
            + ("wavelengths look like micrometres: multiply them by 1000 (nm are expected)" if wl[-1] < 10 else
               "compute the spectra on a wider wavelength grid (e.g. workbench.synth.spectra.WAVELENGTH_NM)")
        )
    # 0.5 nm integration samples, finer for a band narrower than about 2 nm, so that at least one sample
    # lies within its +-3 sigma (else its response would be all zero and its weights NaN)
    step = min(0.5, float(sig.min()) / 2)
    fine = np.arange(wl[0], wl[-1] + step * 1e-6, step)
    # linear-interpolation matrix (fine × coarse)
    j = np.clip(np.searchsorted(wl, fine, side="right") - 1, 0, wl.size - 2)
    t = (fine - wl[j]) / (wl[j + 1] - wl[j])
    W = np.zeros((len(bands), wl.size))
    for b, (c, s) in enumerate(zip(bands["center_nm"].to_numpy(), sig, strict=True)):
        resp = np.exp(-0.5 * ((fine - c) / s) ** 2)
        resp[np.abs(fine - c) > RESPONSE_SIGMAS * s] = 0.0
        np.add.at(W[b], j, resp * (1 - t))
        np.add.at(W[b], j + 1, resp * t)
        W[b] /= W[b].sum()
    return xr.DataArray(
        W, dims=("band", "wavelength"),
        coords={"band": bands["name"].to_list(), "wavelength": wl,
                "center": ("band", bands["center_nm"].to_numpy(), {"units": "nm"})},
    )


def resample_to_instrument(reflectance: xr.DataArray, instrument: str | pd.DataFrame) -> xr.DataArray:
    """Band-average a spectral cube with an instrument's Gaussian band passes.

    Parameters
    ----------
    reflectance
        DataArray with a ``wavelength`` dim (nm) and any spatial dims (numpy or dask).
    instrument
        Name in :data:`INSTRUMENTS` or a band table.

    Returns
    -------
    xarray.DataArray
        Dims ``("band", *spatial)`` with coords ``band`` (names), ``wavelength`` (centre, nm) and
        ``fwhm`` (nm); attrs kept, ``instrument`` added. Lazy on dask inputs. A NaN at a wavelength that
        some band uses makes the pixel NaN in every band (one matrix product); NaN where no band looks is
        ignored.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> wl = np.arange(300.0, 1200.0, 10.0)
    >>> flat = xr.DataArray(np.full((2, wl.size), 0.1), dims=("x", "wavelength"), coords={"wavelength": wl})
    >>> float(resample_to_instrument(flat, "clementine_uvvis").sel(band="R750")[0])
    0.1
    """
    if "wavelength" not in reflectance.dims:
        raise InputError("reflectance needs a 'wavelength' dimension in nm; band cubes cannot be resampled")
    bands = get_instrument(instrument)
    W = response_matrix(reflectance["wavelength"].values, bands).astype(reflectance.dtype)
    W = W.assign_coords(wavelength=reflectance["wavelength"].values)
    # a NaN at a wavelength no band looks at must not reach the bands (0 · NaN is NaN): zero those
    # wavelengths instead (0 · x and 0 · 0 are both 0, so the bands are bit-for-bit the same otherwise)
    used = xr.DataArray(W.values.any(axis=0), dims="wavelength", coords={"wavelength": W["wavelength"].values})
    if not bool(used.all()):
        reflectance = reflectance.where(used, np.zeros((), reflectance.dtype))
    out = xr.dot(W.drop_vars("center"), reflectance, dim="wavelength")
    spatial = [d for d in reflectance.dims if d != "wavelength"]
    out = out.transpose("band", *spatial)
    out = out.assign_coords(
        band=("band", bands["name"].to_list()),
        wavelength=("band", bands["center_nm"].to_numpy(dtype=float), {"units": "nm"}),
        fwhm=("band", bands["fwhm_nm"].to_numpy(dtype=float), {"units": "nm"}),
    )
    out.attrs = {**reflectance.attrs, "instrument": instrument if isinstance(instrument, str) else "custom"}
    out.attrs.setdefault("units", "1")
    out.name = reflectance.name or "reflectance"
    return out


def _per_band(value, bands: list[str], rng: np.random.Generator, name: str, centre: float) -> np.ndarray:
    """None → centre; scalar σ → centre + N(0, σ) per band; sequence/dict → exact values."""
    if value is None:
        return np.full(len(bands), centre)
    if isinstance(value, dict):
        missing = [b for b in bands if b not in value]
        if missing:
            raise InputError(f"{name} dict lacks bands {missing}")
        return np.array([float(value[b]) for b in bands])
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        if arr < 0 or not np.isfinite(arr):
            raise InputError(f"{name} as a scalar is a standard deviation and must be ≥ 0, got {value}")
        return centre + float(arr) * rng.standard_normal(len(bands))
    if arr.shape != (len(bands),):
        raise InputError(f"{name} needs one value per band ({len(bands)}), got shape {arr.shape}")
    return arr


#: Tolerance (degrees) of the spherical-triangle condition ``|i - e| <= g <= i + e`` in :func:`observe`.
GEOMETRY_TOLERANCE_DEG = 0.01


def _check_geometry(i: xr.DataArray, e: xr.DataArray, g: xr.DataArray, model: str) -> None:
    """Refuse (i, e, g) that no sun–surface–viewer configuration has, and Lunar-Lambert geometry where
    McEwen's L(g) makes a lit pixel's reflectance non-positive (NaN angles are skipped: NaN in, NaN out)."""
    from ..photometry import check_angles, lunar_lambert, mcewen_L

    ii, ee, gg = (np.asarray(a.values, dtype=float) for a in xr.broadcast(i, e, g))
    check_angles(ii, ee, gg)
    with np.errstate(invalid="ignore"):
        known = np.isfinite(ii) & np.isfinite(ee) & np.isfinite(gg)
        tol = GEOMETRY_TOLERANCE_DEG
        impossible = known & ((gg < np.abs(ii - ee) - tol) | (gg > ii + ee + tol))
    if impossible.any():
        k = np.flatnonzero(impossible.ravel())[0]
        raise InputError(
            f"{int(impossible.sum())} pixel(s) have an impossible geometry, e.g. i={ii.ravel()[k]:g}, "
            f"e={ee.ravel()[k]:g}, g={gg.ravel()[k]:g} deg: the phase angle must lie between |i - e| and i + e; "
            "check the angles (degrees) and their order (i, e, g)")
    if model == "lunar-lambert":
        lit = known & is_lit(ii)
        with np.errstate(invalid="ignore"):
            bad = lit & ~(np.asarray(lunar_lambert(ii, ee, gg), dtype=float) > 0)
        if bad.any():
            worst = float(np.max(gg[bad]))
            raise InputError(
                f"the Lunar-Lambert model gives no positive reflectance at {int(bad.sum())} lit pixel(s) "
                f"(phase up to {worst:g} deg, where McEwen's L(g) = {float(mcewen_L(worst)):.3g}): it is not valid "
                "at such high phase angles; use geometry model='hapke' or lower phase angles")


def _hapke_factor(true, i, e, g):
    """Per-pixel Hapke factor f(w, i, e, g) / f(w, 30, 0, 30), ``w`` inverted from ``true`` (I/F at the
    standard geometry); 0 where unlit, NaN where ``true`` or an angle is NaN."""
    from ..photometry import STANDARD_GEOMETRY, hapke, hapke_w_from_reflectance

    true, i, e, g = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (true, i, e, g)))
    w = np.maximum(hapke_w_from_reflectance(true, *STANDARD_GEOMETRY), 1e-6)  # w = 0: the limit of small w
    with np.errstate(invalid="ignore", divide="ignore"):
        return hapke(w, i, e, g) / hapke(w, *STANDARD_GEOMETRY)


def observe(moon: xr.Dataset | xr.DataArray, instrument: str | pd.DataFrame, snr: float | None = None,
            stripes: float = 0.0, gain_error=None, offset_error=None, geometry: dict | None = None,
            seed: int = 0) -> xr.Dataset:
    """Simulate an instrument's image cube of the synthetic Moon, with the injected errors recorded.

    ``observed = ((true · photometric_factor) · stripe_gain + stripe_offset) · gain + offset + noise``

    Parameters
    ----------
    moon
        A :func:`~workbench.synth.make_moon` dataset (or its ``reflectance`` DataArray).
    instrument
        Name in :data:`INSTRUMENTS` or a band table.
    snr
        Signal-to-noise ratio: Gaussian noise with σ = signal / snr per pixel; None → noiseless.
    stripes
        Relative standard deviation of the per-detector (per-column, i.e. per ``lon``) gain; each
        column also gets an additive offset of σ = 0.01 · stripes (reflectance units). 0 → none.
    gain_error
        Per-band multiplicative calibration error: None (exact), a scalar σ (gain = 1 + N(0, σ)), or
        one value per band (sequence or dict by band name) giving the gains themselves.
    offset_error
        Per-band additive error (reflectance units), same conventions (scalar σ, or the offsets).
    geometry
        None for the standard geometry (i=30°, e=0°, g=30°), or ``{"i": ..., "e": ..., "g": ...}``
        (degrees; scalars or DataArrays broadcastable to the map) and optionally ``"model"``
        (``"lunar-lambert"``, default, or ``"hapke"``): reflectance is scaled by
        ``f(i, e, g) / f(30, 0, 30)`` of that photometric model; unlit pixels (i ≥ 90°) are dark (0),
        NaN angles give NaN. With ``"hapke"`` the factor is that of each pixel's and band's own
        single-scattering albedo ``w`` (inverted from its true reflectance at the standard geometry,
        :data:`workbench.photometry.HAPKE_DEFAULTS`), so
        ``workbench.photometry.normalise(observed, i, e, g, model="hapke")`` recovers the true
        reflectance. The angles must form a spherical triangle, ``|i − e| ≤ g ≤ i + e`` (within
        :data:`GEOMETRY_TOLERANCE_DEG`), and with ``"lunar-lambert"`` every lit pixel must keep a positive
        reflectance (McEwen's L(g) turns negative above g ≈ 104°, which can make it negative at high
        phase); otherwise :class:`~workbench.errors.InputError`.
    seed
        Seed of every random draw (a whole number ≥ 0). The noise of a lazy (dask) cube is drawn chunk by
        chunk: the same call on the same input (same chunks) reproduces it exactly, while a loaded or
        re-chunked copy of the input gets another, equally distributed, noise realisation. The per-band
        gain and offset draws come before the stripes in one stream, so switching ``gain_error`` or
        ``offset_error`` on or off changes the stripe pattern of a seed (kept: every recorded experiment
        depends on these draws).

    Returns
    -------
    xarray.Dataset
        ``reflectance`` (band, ...) observed; ``true_reflectance`` (band, ...) at the standard geometry
        without errors; ``stripe_gain``/``stripe_offset`` (band, column); ``gain``/``offset`` (band);
        ``photometric_factor`` when a geometry is given (per band too with ``"hapke"``); attrs
        ``instrument`` (the name, or ``"custom"`` for a band table), ``snr``, ``stripes``, ``seed``.
    """
    refl = moon["reflectance"] if isinstance(moon, xr.Dataset) else moon
    if not is_whole_number(seed) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    if refl.ndim < 2:
        raise InputError(f"observe() needs a map: reflectance with a 'wavelength' dim and at least one spatial "
                         f"dim, got dims {refl.dims}; for a single spectrum use "
                         "resample_to_instrument(spectrum, instrument)")
    true = resample_to_instrument(refl, instrument)
    label = instrument if isinstance(instrument, str) else "custom"
    bands = list(true["band"].values)
    rng = np.random.default_rng([int(seed), 4242])
    gain = _per_band(gain_error, bands, rng, "gain_error", 1.0)
    offset = _per_band(offset_error, bands, rng, "offset_error", 0.0)
    spatial = [d for d in true.dims if d != "band"]
    col = "lon" if "lon" in spatial else spatial[-1]
    n_col = true.sizes[col]
    if stripes < 0 or not np.isfinite(stripes):
        raise InputError(f"stripes is a relative standard deviation and must be ≥ 0, got {stripes}")
    s_gain = 1.0 + stripes * rng.standard_normal((len(bands), n_col))
    s_off = 0.01 * stripes * rng.standard_normal((len(bands), n_col))
    col_coord = {col: true[col].values} if col in true.coords else {}
    stripe_gain = xr.DataArray(s_gain, dims=("band", col), coords={"band": bands, **col_coord},
                               attrs={"units": "1", "long_name": "per-detector gain"})
    stripe_offset = xr.DataArray(s_off, dims=("band", col), coords={"band": bands, **col_coord},
                                 attrs={"units": "1", "long_name": "per-detector offset"})
    gain_da = xr.DataArray(gain, dims="band", coords={"band": bands}, attrs={"units": "1"})
    offset_da = xr.DataArray(offset, dims="band", coords={"band": bands}, attrs={"units": "1"})
    obs = true
    out = {}
    if geometry is not None:
        if not isinstance(geometry, dict) or not {"i", "e", "g"} <= set(geometry):
            raise InputError("geometry must be a dict with keys 'i', 'e', 'g' (degrees) and optional 'model'")
        model = geometry.get("model", "lunar-lambert")
        if model == "lunar_lambert":
            model = "lunar-lambert"
        if model not in ("lunar-lambert", "hapke"):
            raise InputError(f"unknown photometric model {model!r}; use 'lunar-lambert' or 'hapke'")
        angles = [xr.DataArray(geometry[k]) if not isinstance(geometry[k], xr.DataArray) else geometry[k]
                  for k in ("i", "e", "g")]
        _check_geometry(*angles, model)
        if model == "hapke":
            # each pixel's own w, from its band reflectance at the standard geometry, as
            # workbench.photometry.normalise(model="hapke") inverts it: the two close the loop
            factor = xr.apply_ufunc(_hapke_factor, true, *angles, dask="parallelized", output_dtypes=[float])
            factor.attrs = {"units": "1", "long_name": "hapke f(w,i,e,g)/f(w,30,0,30), w of each pixel and band"}
        else:
            def forward(i, e, g):  # f(i,e,g)/f(30,0,30); an unlit pixel (i >= 90) is dark, 0, not NaN
                with np.errstate(divide="ignore"):
                    unknown = np.isnan(np.asarray(i, dtype=float))  # NaN geometry stays NaN
                    return np.where(is_lit(i) | unknown, 1.0 / normalisation_factor(i, e, g, model=model), 0.0)

            factor = xr.apply_ufunc(forward, *angles, dask="allowed")
            factor.attrs = {"units": "1", "long_name": f"{model} f(i,e,g)/f(30,0,30)"}
        obs = obs * factor
        out["photometric_factor"] = factor
    obs = (obs * stripe_gain.astype("float32") + stripe_offset.astype("float32")) * gain_da.astype(
        "float32") + offset_da.astype("float32")
    if snr is not None:
        if not snr > 0:
            raise InputError(f"snr must be positive, got {snr}")
        shape = obs.shape
        if hasattr(obs.data, "chunks"):
            import dask.array as da

            noise = da.random.default_rng(int(seed) + 7).standard_normal(shape, chunks=obs.data.chunks,
                                                                          dtype="float32")
        else:
            noise = np.random.default_rng([int(seed), 7]).standard_normal(shape, dtype="float32")
        obs = obs + obs.copy(data=noise) * (np.abs(obs) / float(snr))
    obs = obs.transpose("band", *spatial).astype("float32")
    obs.attrs = {"units": "1", "long_name": f"simulated {label} reflectance"}
    out.update(reflectance=obs, true_reflectance=true, stripe_gain=stripe_gain, stripe_offset=stripe_offset,
               gain=gain_da, offset=offset_da)
    ds = xr.Dataset(out)
    ds.attrs.update(instrument=label,
                    snr=float(snr) if snr is not None else "none", stripes=float(stripes), seed=int(seed),
                    crs=refl.attrs.get("crs", "IAU_2015:30100"))
    return ds
