"""The synthetic Moon: geography, terranes, mineral modes, oxides, maturity and reflectance spectra.

:func:`make_moon` builds a global dataset whose every layer is known ground truth:

* **geography** — the real LOLA 4 px/deg topography and a mare mask from the real LROC WAC mosaic
  (brightness + topography) when reachable (catalog, or a ``WORKBENCH_DATA_MIRROR``); otherwise a
  procedural Moon (named basins incl. South Pole–Aitken and the Imbrium/Procellarum lows, a far-side
  highland bulge, craters with Pike (1977) depth/diameter laws, fractal roughness).
* **terranes** (Jolliff et al. 2000) — mare; Procellarum KREEP (non-mare ground around Oceanus
  Procellarum); South Pole–Aitken (ellipse centred 53°S, 169°W, 2400 × 2050 km after Garrick-Bethell &
  Zuber 2009) split into its central compositional anomaly and the Mg-pyroxene annulus of Moriarty &
  Pieters (2018); Feldspathic Highlands elsewhere.
* **mineral modes** per terrane with spatially correlated Gaussian random fields (FFT synthesis),
  **oxides** from stoichiometry (:mod:`workbench.synth.minerals`), **Mg#**, **npFe⁰** maturity, and
  lazily computed **reflectance** spectra (:mod:`workbench.synth.spectra`).

Composition targets (published ranges)
--------------------------------------
mare FeO 15–22 wt%, TiO2 1–12 wt% (Lucey et al. 2000; Giguere et al. 2000); highland FeO 3–6 wt%
(Lawrence et al. 2002); SPA interior FeO 8–12 wt% (Lucey et al. 1998; Jolliff et al. 2000); far-side
highland Mg# above the near side's (Ohtake et al. 2012); SPA Mg-pyroxene annulus (Moriarty &
Pieters 2018); npFe⁰ 0.1–0.6 wt% in mature soils (Morris 1980; Lucey & Riner 2011).

References
----------
Jolliff, B. L. et al. (2000), Major lunar crustal terranes, JGR 105:4197.
Garrick-Bethell, I., Zuber, M. T. (2009), Elliptical structure of the lunar South Pole-Aitken basin,
Icarus 204:399.
Moriarty, D. P., Pieters, C. M. (2018), The character of South Pole-Aitken basin, JGR Planets 123:729.
Ohtake, M. et al. (2012), Asymmetric crustal growth on the Moon indicated by primitive farside
highland materials, Nat. Geosci. 5:384.
Pike, R. J. (1977), Size-dependence in the shape of fresh impact craters on the Moon, in Impact and
Explosion Cratering, 489–509.
Neumann, G. A. et al. (2015), Lunar impact basins revealed by GRAIL, Sci. Adv. 1:e1500852.
Morris, R. V. (1980), Origins and size distribution of metallic iron particles in the lunar regolith,
Proc. LPSC 11:1697.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage

from .. import geo
from ..config import cache_dir, mirror_dirs
from ..errors import DataUnavailableError, InputError, WorkbenchError
from ..io import atomic_path
from ..validate import is_whole_number
from .minerals import MINERALS, oxides_from_modes

log = logging.getLogger(__name__)

#: Bump when the composition/geography model changes (part of the cache key).
MODEL_VERSION = "3"

#: Terrane codes (index = int8 value).
TERRANES: tuple[str, ...] = (
    "feldspathic_highlands",
    "mare",
    "procellarum_kreep",
    "south_pole_aitken",
    "spa_mg_pyroxene_annulus",
)

#: South Pole–Aitken: centre (lat, lon), semi-axes (km) along N–S and E–W (Garrick-Bethell & Zuber 2009).
SPA = {"lat": -53.0, "lon": -169.0, "a_km": 1200.0, "b_km": 1025.0}
#: Procellarum KREEP Terrane: centre and radius (km) of the Th-rich region (Jolliff et al. 2000).
PKT = {"lat": 18.0, "lon": -28.0, "radius_km": 1350.0}

#: Procedural geography: (name, lat, lon, radius km, depth km, mare-filled radius km).
#: Centres/diameters after Neumann et al. (2015) and Wilhelms (1987); depths rounded from LOLA.
BASINS: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("Procellarum", 18.0, -40.0, 1500.0, 1.5, 1250.0),
    ("Imbrium", 32.8, -17.6, 580.0, 3.0, 560.0),
    ("Serenitatis", 26.9, 18.8, 370.0, 2.5, 330.0),
    ("Crisium", 16.8, 59.1, 530.0, 3.5, 270.0),
    ("Tranquillitatis", 8.5, 30.8, 400.0, 1.5, 420.0),
    ("Fecunditatis", -4.6, 52.0, 345.0, 1.5, 300.0),
    ("Nectaris", -15.6, 34.3, 430.0, 3.0, 170.0),
    ("Humorum", -24.0, -39.5, 410.0, 2.5, 200.0),
    ("Nubium", -20.6, -17.3, 345.0, 1.5, 330.0),
    ("Frigoris", 56.0, 0.0, 250.0, 0.8, 230.0),
    ("Orientale", -19.9, -94.7, 465.0, 4.0, 150.0),
    ("Moscoviense", 27.3, 147.9, 320.0, 4.0, 130.0),
    ("Smythii", -1.3, 87.0, 370.0, 3.0, 180.0),
    ("Australe", -38.9, 93.0, 440.0, 2.0, 200.0),
    ("Ingenii", -33.7, 163.5, 280.0, 3.0, 110.0),
    ("Apollo", -36.1, -151.8, 270.0, 3.5, 120.0),
    ("Hertzsprung", 1.4, -128.7, 285.0, 3.5, 0.0),
    ("Korolev", -4.4, -157.4, 220.0, 3.0, 0.0),
)
#: Young (Copernican) craters, fresh and immature: (name, lat, lon, diameter km).
FRESH_CRATERS: tuple[tuple[str, float, float, float], ...] = (
    ("Tycho", -43.3, -11.2, 85.0), ("Copernicus", 9.6, -20.1, 93.0), ("Kepler", 8.1, -38.0, 31.0),
    ("Aristarchus", 23.7, -47.4, 40.0), ("Giordano Bruno", 35.9, 102.8, 22.0),
    ("Jackson", 22.4, -163.1, 71.0), ("Necho", -5.3, 123.1, 30.0), ("Ohm", 18.4, -113.5, 64.0),
    ("Stevinus", -32.5, 54.2, 74.0), ("Thales", 61.8, 50.3, 31.0), ("Proclus", 16.1, 46.8, 28.0),
)
_BASE_PPD = 2  # the correlated fields are drawn on this grid and interpolated. Moons at up to 2 px/deg
#                share the large-scale pattern of every field; above 2 px/deg only the first field drawn
#                from each generator does (see _field), the others differ from one resolution to another.


# --------------------------------------------------------------------------------------------------
# random fields
# --------------------------------------------------------------------------------------------------
def gaussian_random_field(shape: tuple[int, int], beta: float, rng: np.random.Generator,
                          corr_px: float | None = None) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field by FFT synthesis (periodic in both axes).

    Power spectrum ``P(k) ∝ k^-beta`` (fractal; e.g. beta ≈ 3.4 for Hurst 0.7 topography), optionally
    times ``exp(-(k·corr_px)²)`` to suppress scales below ``corr_px`` pixels.
    """
    ny, nx = shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = np.inf
    amp = k ** (-beta / 2.0)
    if corr_px:
        amp = amp * np.exp(-((k * corr_px) ** 2))
    noise = rng.standard_normal((ny, nx))
    f = np.fft.irfft2(np.fft.rfft2(noise) * amp, s=(ny, nx))
    f -= f.mean()
    return f / (f.std() + 1e-12)


def _interp_to_grid(field: np.ndarray, src_ppd: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a global cell-centred field to (lat, lon), periodic in longitude.

    Known flaw, kept: ``mode="grid-wrap"`` makes it periodic in latitude as well, so a target row
    poleward of the first (last) source row centre is interpolated towards the *opposite* pole's row,
    not across its own pole: upsampling 2× (the 2 px/deg base fields to 4 px/deg, LOLA 4 px/deg to
    8 px/deg) the northernmost row takes 25% of the southernmost source row (and vice versa). Only the
    outermost target rows of each pole are affected; their values are a mix of the two poles. Wrapping
    across the pole instead (the same latitude at longitude + 180°) would change every variable of the
    default Moon above 2 px/deg (the fields are renormalised after interpolation), so it is not done
    (that needs a new :data:`MODEL_VERSION` and new weights, figures and README numbers).
    """
    rows = (90.0 - lat) * src_ppd - 0.5
    cols = (lon + 180.0) * src_ppd - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(field, [rr, cc], order=1, mode="grid-wrap").astype("float32")


def _field(rng: np.random.Generator, lat, lon, beta=3.0, corr_deg=None, fine=0.25) -> np.ndarray:
    """Correlated field on the target grid: large scales from the base grid plus fine detail.

    Which fields share their large-scale pattern across resolutions: the base field is drawn first,
    from ``rng``, on the fixed 2 px/deg grid, and above :data:`_BASE_PPD` the fine detail is drawn next
    from the *same* generator, with as many values as the target grid has pixels. So at up to 2 px/deg
    every field of a seed is the same whatever the resolution; above it only the first field drawn from a
    generator shares the pattern (the mare shoreline noise of :func:`procedural_geography`, the
    ``plag`` field of ``_composition``), while every later one (procedural roughness; ``mafic_split``,
    ``olivine``, ``glass``, ``mg``, ``tio2``, ``maturity``, ``mare_plag``) and the craters drawn after
    them are other realisations at each resolution: between 2 and 4 px/deg, block-averaged, silicate Mg#
    correlates 0.90 (highlands alone 0.71) and maturity −0.13. Kept as it is: a separate generator per
    field would change the default Moon.
    The detail is high-passed with ``gaussian_filter(mode="wrap")``, which also wraps across the poles
    (rows near the north pole mix with rows near the south pole), as :func:`_interp_to_grid` does.
    """
    nb = (180 * _BASE_PPD, 360 * _BASE_PPD)
    base = gaussian_random_field(nb, beta, rng, corr_deg * _BASE_PPD if corr_deg else None)
    out = _interp_to_grid(base, _BASE_PPD, lat, lon)
    ppd = 1.0 / abs(lat[0] - lat[1])
    if ppd > _BASE_PPD and fine > 0:
        detail = gaussian_random_field((lat.size, lon.size), beta, rng)
        # keep only scales finer than the base grid
        detail -= ndimage.gaussian_filter(detail, ppd / _BASE_PPD, mode="wrap")
        detail /= detail.std() + 1e-12
        out = out + fine * detail.astype("float32")
    return (out / out.std()).astype("float32")


# --------------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------------
def _dist_km(lat2d, lon2d, lat0, lon0):
    return geo.great_circle_distance(lat2d, lon2d, lat0, lon0, radius=geo.MOON_RADIUS_KM)


def _spa_radius(lat2d, lon2d) -> np.ndarray:
    """Normalised elliptical radius of SPA (1 on the rim), axes along N–S (a) and E–W (b)."""
    la0, lo0 = np.deg2rad(SPA["lat"]), np.deg2rad(SPA["lon"])
    la, lo = np.deg2rad(lat2d), np.deg2rad(lon2d)
    d = _dist_km(lat2d, lon2d, SPA["lat"], SPA["lon"])
    # initial bearing from the centre to each point
    y = np.sin(lo - lo0) * np.cos(la)
    x = np.cos(la0) * np.sin(la) - np.sin(la0) * np.cos(la) * np.cos(lo - lo0)
    brg = np.arctan2(y, x)
    return d * np.sqrt((np.cos(brg) / SPA["a_km"]) ** 2 + (np.sin(brg) / SPA["b_km"]) ** 2)


def _pike_crater(d_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and rim height (km) of fresh lunar craters, Pike (1977) power laws."""
    d_km = np.asarray(d_km, dtype=float)
    simple = d_km < 15.0
    depth = np.where(simple, 0.196 * d_km**1.010, 1.044 * d_km**0.301)
    rim = np.where(simple, 0.036 * d_km**1.014, 0.236 * d_km**0.399)
    return depth, rim


def _add_craters(elev_m, lat, lon, rng, n_per_area, dmin_km, dmax_km, slope=2.0, degradation=None):
    """Stamp craters (cumulative SFD ``N(>D) ∝ D^-slope``) onto ``elev_m`` in place."""
    area = geo.MOON_AREA_KM2
    n = rng.poisson(n_per_area * area)
    u = rng.random(n)
    d = dmin_km * (1 - u * (1 - (dmin_km / dmax_km) ** slope)) ** (-1.0 / slope)
    clat = np.rad2deg(np.arcsin(rng.uniform(-1, 1, n)))
    clon = rng.uniform(-180, 180, n)
    depth, rim = _pike_crater(d)
    fresh = rng.uniform(0.3, 1.0, n) if degradation is None else degradation(n)
    ppd = 1.0 / abs(lat[0] - lat[1])
    for k in np.argsort(-d):  # big first, small on top
        r_km = d[k] / 2
        r_deg = np.rad2deg(3.0 * r_km / geo.MOON_RADIUS_KM)
        i0 = max(0, int((90 - clat[k] - r_deg) * ppd))
        i1 = min(lat.size, int((90 - clat[k] + r_deg) * ppd) + 1)
        if i1 <= i0:
            continue
        coslat = max(np.cos(np.deg2rad(min(abs(clat[k]) + r_deg, 89.9))), 1e-3)
        half = r_deg / coslat
        if half >= 180:
            cols = np.arange(lon.size)
        else:
            c0 = int(np.floor((clon[k] - half + 180) * ppd))
            c1 = int(np.ceil((clon[k] + half + 180) * ppd)) + 1
            cols = np.arange(c0, c1) % lon.size
        sub_lat, sub_lon = np.meshgrid(lat[i0:i1], lon[cols], indexing="ij")
        rr = _dist_km(sub_lat, sub_lon, clat[k], clon[k]) / r_km
        # bowl from -depth (floor) to +rim (crest): rim-to-floor depth + rim, deeper than Pike's
        # rim-crest depth (kept: changing it changes the procedural Moon's elevation; see the docstring)
        h = np.where(rr < 1.0, -depth[k] + (depth[k] + rim[k]) * rr**2,
                     rim[k] * np.clip(rr, 1.0, None) ** -3.0)
        h = np.where(rr < 3.0, h, 0.0) * fresh[k] * 1000.0
        elev_m[i0:i1, cols] += h.astype(elev_m.dtype)
    return elev_m


# --------------------------------------------------------------------------------------------------
# geography
# --------------------------------------------------------------------------------------------------
def procedural_geography(resolution_ppd: float = 4, seed: int = 0) -> xr.Dataset:
    """A procedural Moon: ``elevation`` (m) and ``mare`` (bool), no data files needed.

    Large-scale shape: far-side highland bulge and near-side low, named basins (``BASINS``) with raised
    rims, the South Pole–Aitken depression; then fractal roughness (GRF, beta 3.4) and craters ≥ 20 km
    (cumulative slope 2, ~5 000 on the sphere as in Head et al. 2010, fewer on the maria) with Pike (1977)
    depth/diameter laws. Maria fill the listed basins below an irregular (noise-perturbed) shoreline.

    Known flaws, kept because the default Moon depends on them: the crater bowl runs from ``-depth`` at
    the centre to ``+rim`` at the rim crest, so the rim-to-floor depth is Pike's depth *plus* the rim
    height (Pike's depth is measured from the rim crest; :func:`workbench.synth.terrain.crater_profile`
    gets it right), i.e. 1.18× too deep for simple craters and 1.3–1.4× for the 20–300 km complex
    craters stamped here; and the two smoothing filters of the elevation wrap in latitude
    (``mode="wrap"``), so the 3 rows nearest each pole are smoothed with the rows nearest the other
    pole. Both touch only ``elevation`` (the mare mask is drawn before them).
    """
    lat, lon = geo.global_grid(resolution_ppd)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    rng = np.random.default_rng([seed, 101])
    # crustal dichotomy: far side ~ +1.9 km above near side (LOLA: −1.10 vs +0.61 km means)
    d_far = _dist_km(la, lo, 5.0, -160.0)
    elev = 4200.0 * np.exp(-((d_far / 2300.0) ** 2)) - 1500.0
    # SPA: 6 km deep elliptical depression with a rim
    rs = _spa_radius(la, lo)
    elev += -6000.0 * np.clip(1 - rs**2, 0, None) ** 0.7 + 1500.0 * np.exp(-(((rs - 1.05) / 0.15) ** 2))
    mare_r = np.zeros_like(elev)  # normalised distance to the nearest mare-fill centre
    mare_r[:] = np.inf
    for _name, blat, blon, r_km, depth_km, mare_km in BASINS:
        r = _dist_km(la, lo, blat, blon) / r_km
        elev += 1000.0 * depth_km * (-np.clip(1 - r**2, 0, None) + 0.25 * np.exp(-(((r - 1.0) / 0.12) ** 2)))
        if mare_km > 0:
            mare_r = np.minimum(mare_r, _dist_km(la, lo, blat, blon) / mare_km)
    shore = _field(rng, lat, lon, beta=3.0, corr_deg=None)
    mare = (mare_r + 0.12 * shore) < 1.0
    mare &= np.abs(la) < 65.0
    elev += 800.0 * _field(rng, lat, lon, beta=3.4)
    # young mare surfaces are smooth and lightly cratered: flatten before cratering. mode="wrap" wraps
    # latitude too (pole rows mix with the other pole's): a known flaw, kept (see the docstring)
    smooth = ndimage.gaussian_filter(elev, 2.0 * resolution_ppd, mode="wrap")
    elev = np.where(mare, smooth - 300.0, elev).astype("float32")
    elev = ndimage.gaussian_filter(elev, 0.7, mode="wrap")
    craters = np.zeros_like(elev)
    # craters smaller than ~2 pixels are not resolved: start the population there (same SFD)
    dmin = max(20.0, 2.0 * np.pi * geo.MOON_RADIUS_KM / 180.0 / resolution_ppd)
    _add_craters(craters, lat, lon, rng, n_per_area=5000 / geo.MOON_AREA_KM2 * (20.0 / dmin) ** 2,
                 dmin_km=dmin, dmax_km=300.0)
    craters_mare_scale = np.where(mare, 0.25, 1.0)
    elev = (elev + craters * craters_mare_scale).astype("float32")
    return xr.Dataset(
        {"elevation": (("lat", "lon"), elev, {"units": "m", "long_name": "elevation above 1737.4 km"}),
         "mare": (("lat", "lon"), mare, {"units": "1", "long_name": "mare basalt"})},
        coords={"lat": lat, "lon": lon},
    )


_LOLA_FILE = "topography/lola_ldem_4ppd_global_lunar_toolkit.tif"
_WAC_FILE = "imagery/lroc_wac_global_5120x2560_lunar_toolkit.jpg"


def _read_real_sources() -> tuple[xr.DataArray, xr.DataArray, str]:
    """LOLA elevation (m) and WAC brightness (DN) on their native global grids, plus a source label."""
    try:
        from ..catalog import open_dataset  # the lead's catalogue, when present

        elev = open_dataset("lola_ldem_4ppd")["elevation"]
        wac = open_dataset("lroc_wac_global")["brightness"]
        return elev.load(), wac.load(), "catalog"
    except (ImportError, AttributeError):
        pass
    except WorkbenchError as err:
        log.info("catalog could not provide LOLA/WAC (%s); trying mirrors", err)
    for d in mirror_dirs():
        f_lola, f_wac = Path(d) / _LOLA_FILE, Path(d) / _WAC_FILE
        if f_lola.exists() and f_wac.exists():
            import rioxarray
            from PIL import Image

            da = rioxarray.open_rasterio(f_lola, masked=True).squeeze("band", drop=True)
            elev = xr.DataArray(np.asarray(da.values, dtype="float32"), dims=("lat", "lon"),
                                coords={"lat": da["y"].values, "lon": da["x"].values})
            Image.MAX_IMAGE_PIXELS = None
            img = np.asarray(Image.open(f_wac).convert("L"))
            la, lo = geo.global_grid(img.shape[1] / 360.0)
            wac = xr.DataArray(img, dims=("lat", "lon"), coords={"lat": la, "lon": lo})
            return elev, wac, "mirror"
    raise DataUnavailableError(
        "real LOLA/WAC geography unavailable: neither workbench.open_dataset nor a mirror "
        f"(WORKBENCH_DATA_MIRROR containing {_LOLA_FILE}) could provide it; use geography='procedural'"
    )


def real_geography(resolution_ppd: float = 4, seed: int = 0) -> xr.Dataset:
    """Real LOLA elevation and a WAC-brightness + topography mare mask on the target grid.

    Mare mask: WAC morphologic-mosaic brightness smoothed over ~0.3° below 48 DN (dark maria; the
    threshold gives ≈ 17% of the surface as mare, close to the mapped 16–17%, Head 1976), on ground
    below +1 km, equatorward of 70° (polar shadows are dark but not mare), cleaned by a morphological
    opening/closing. Above 4 px/deg the LOLA 4 px/deg grid is interpolated and fractal roughness is
    added at the unresolved scales (seeded). Known flaw, kept: the interpolation and the smoothing
    filters wrap in latitude (see :func:`_interp_to_grid`), so above 4 px/deg the outermost rows at each
    pole take part of the other pole's elevation (at 8 px/deg the northernmost row is 0.75 × the
    northernmost LOLA row + 0.25 × the southernmost one).

    Raises
    ------
    DataUnavailableError
        When no catalog or mirror provides the files.
    """
    elev_src, wac_src, _source = _read_real_sources()
    lat, lon = geo.global_grid(resolution_ppd)
    e = np.asarray(elev_src.values, dtype="float32")
    if np.isnan(e).any():
        e = np.where(np.isnan(e), np.nanmean(e), e)
    src_ppd = elev_src.sizes["lon"] / 360.0
    elev = _interp_to_grid(e, src_ppd, lat, lon)
    if resolution_ppd > src_ppd:
        rng = np.random.default_rng([seed, 202])
        detail = gaussian_random_field((lat.size, lon.size), 3.4, rng)
        detail -= ndimage.gaussian_filter(detail, resolution_ppd / src_ppd, mode="wrap")
        elev = elev + (150.0 * detail / (detail.std() + 1e-12)).astype("float32")
    wac = np.asarray(wac_src.values, dtype="float32")
    wac_ppd = wac_src.sizes["lon"] / 360.0
    wac_s = ndimage.gaussian_filter(wac, max(0.3 * wac_ppd, 0.5 * wac_ppd / resolution_ppd), mode="wrap")
    bright = _interp_to_grid(wac_s, wac_ppd, lat, lon)
    la = np.broadcast_to(lat[:, None], bright.shape)
    mare = (bright < 48.0) & (elev < 1000.0) & (np.abs(la) < 70.0)
    k = max(1, int(round(0.5 * resolution_ppd)))
    mare = ndimage.binary_opening(mare, iterations=k)
    mare = ndimage.binary_closing(mare, iterations=k) & (np.abs(la) < 70.0)
    return xr.Dataset(
        {"elevation": (("lat", "lon"), elev.astype("float32"),
                       {"units": "m", "long_name": "elevation above 1737.4 km", "source": "LRO LOLA LDEM"}),
         "mare": (("lat", "lon"), mare, {"units": "1", "long_name": "mare basalt",
                                         "source": "LROC WAC brightness < 48 DN and LOLA < +1 km"})},
        coords={"lat": lat, "lon": lon},
    )


# --------------------------------------------------------------------------------------------------
# terranes and composition
# --------------------------------------------------------------------------------------------------
#: Mean modes (weight fractions, order of MINERALS) and silicate Mg# per terrane. Sources: highland
#: soils are noritic anorthosite (~80% plagioclase; Warren 1990, Am. Mineral. 75:46); mare soils ~30%
#: plagioclase, augite-rich pyroxene, olivine, ilmenite set by TiO2 (BVSP 1981); PKT non-mare ground is
#: KREEP-rich norite (Jolliff et al. 2000); SPA interior is noritic with high-Ca pyroxene and the
#: annulus Mg-rich low-Ca pyroxene (Moriarty & Pieters 2018). Glass is agglutinate (McKay et al. 1991).
TERRANE_MODES: dict[str, tuple[tuple[float, ...], float]] = {
    "feldspathic_highlands": ((0.75, 0.09, 0.035, 0.03, 0.005, 0.09), 66.0),
    "mare": ((0.29, 0.12, 0.30, 0.06, 0.04, 0.19), 45.0),
    "procellarum_kreep": ((0.55, 0.20, 0.08, 0.03, 0.015, 0.125), 58.0),
    "south_pole_aitken": ((0.46, 0.17, 0.17, 0.025, 0.01, 0.165), 60.0),
    "spa_mg_pyroxene_annulus": ((0.58, 0.22, 0.04, 0.02, 0.005, 0.135), 75.0),
}


def _terranes(lat2d, lon2d, mare) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Terrane codes and smooth membership weights (for composition blending)."""
    rs = _spa_radius(lat2d, lon2d)
    d_pkt = _dist_km(lat2d, lon2d, PKT["lat"], PKT["lon"]) / PKT["radius_km"]

    def smoothstep(x0, x1, x):
        t = np.clip((x - x0) / (x1 - x0), 0, 1)
        return t * t * (3 - 2 * t)

    w_spa_core = 1 - smoothstep(0.5, 0.65, rs)
    w_ring = smoothstep(0.5, 0.65, rs) * (1 - smoothstep(0.85, 1.05, rs))
    w_pkt = (1 - smoothstep(0.85, 1.05, d_pkt)) * (1 - w_spa_core - w_ring)
    w_fh = np.clip(1 - w_spa_core - w_ring - w_pkt, 0, 1)
    code = np.zeros(lat2d.shape, dtype="int8")
    code[d_pkt < 1.0] = TERRANES.index("procellarum_kreep")
    code[(rs >= 0.58) & (rs < 0.95)] = TERRANES.index("spa_mg_pyroxene_annulus")
    code[rs < 0.58] = TERRANES.index("south_pole_aitken")
    code[mare] = TERRANES.index("mare")
    weights = {"feldspathic_highlands": w_fh, "procellarum_kreep": w_pkt,
               "south_pole_aitken": w_spa_core, "spa_mg_pyroxene_annulus": w_ring}
    return code, weights


def _composition(lat, lon, mare, seed):
    """Terrane codes, modes (6, lat, lon), silicate Mg# and maturity (0–1) from terranes and GRFs."""
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    code, weights = _terranes(la, lo, mare)
    rng = np.random.default_rng([seed, 303])
    f = {name: _field(rng, lat, lon, beta=3.0) for name in
         ("plag", "mafic_split", "olivine", "glass", "mg", "tio2", "maturity", "mare_plag")}
    names = list(TERRANES)
    modes = np.zeros((len(MINERALS),) + la.shape, dtype="float32")
    mg = np.zeros(la.shape, dtype="float32")
    for t, w in weights.items():
        m, mgt = TERRANE_MODES[t]
        modes += np.asarray(m, dtype="float32")[:, None, None] * w[None]
        mg += mgt * w
    # highlands: plagioclase-rich far side (FHT-An core) vs slightly more mafic near side;
    # far-side Mg# higher (Ohtake et al. 2012): cos(lon) = +1 at the sub-Earth point
    near = np.cos(np.deg2rad(lo)).astype("float32")
    w_fh = weights["feldspathic_highlands"]
    plag_shift = w_fh * (-0.04 * near + 0.03 * f["plag"])
    mg += w_fh * (-4.0 * near) + 3.0 * f["mg"]
    # mare: TiO2 log-normal around 3 wt% (1–12 wt%), more high-Ti near Tranquillitatis / W Procellarum
    tio2 = np.exp(np.log(3.0) + 0.55 * f["tio2"]
                  + 0.8 * np.exp(-((_dist_km(la, lo, 8.5, 30.8) / 500.0) ** 2))
                  + 0.5 * np.exp(-((_dist_km(la, lo, 0.0, -55.0) / 700.0) ** 2)))
    tio2 = np.clip(tio2, 1.0, 12.0).astype("float32")
    m_mare, mg_mare = TERRANE_MODES["mare"]
    mare_modes = np.asarray(m_mare, dtype="float32")[:, None, None] * np.ones_like(mg)[None]
    mare_modes[0] += 0.04 * f["mare_plag"]
    # ilmenite is 53.5 wt% TiO2; the 0.85 roughly offsets the oxides being those of the crystalline part only
    # (glass is melted local soil and dilutes no oxide), so mare TiO2 lands a few % above the target field
    mare_modes[4] = tio2 / 53.5 * 0.85
    modes = np.where(mare[None], mare_modes, modes)
    mg = np.where(mare, mg_mare + 4.0 * f["mg"] - 1.5 * np.log(tio2 / 3.0), mg)
    # correlated perturbations inside every unit
    modes[0] += np.where(mare, 0.0, plag_shift)
    mafic = modes[1] + modes[2]
    split = 0.08 * f["mafic_split"]
    modes[1] += split * mafic
    modes[2] -= split * mafic
    modes[3] *= np.exp(0.4 * f["olivine"])
    modes[5] *= np.exp(0.25 * f["glass"])
    modes = np.clip(modes, 0.0, None)
    modes /= modes.sum(axis=0, keepdims=True)
    mg = np.clip(mg, 20.0, 90.0)
    # maturity: mostly mature; fresh Copernican craters (and their rays) immature
    maturity = np.clip(0.85 + 0.08 * f["maturity"], 0.4, 1.0)
    for _n, clat, clon, dkm in FRESH_CRATERS:
        r = _dist_km(la, lo, clat, clon) / (dkm / 2)
        maturity = maturity * (1 - 0.7 * np.exp(-((r / 1.5) ** 2)) - 0.15 * np.exp(-r / 8.0))
    n_small = 120
    rlat = np.rad2deg(np.arcsin(rng.uniform(-1, 1, n_small)))
    rlon = rng.uniform(-180, 180, n_small)
    rd = rng.uniform(5, 30, n_small)
    fresh = np.zeros_like(mg)
    for a, b, dk in zip(rlat, rlon, rd, strict=True):
        rows = np.nonzero(np.abs(lat - a) < 5)[0]
        if rows.size == 0:
            continue
        sl = slice(rows[0], rows[-1] + 1)
        box = np.abs(((lo[sl] - b + 180) % 360) - 180) < 5 / max(np.cos(np.deg2rad(a)), 0.1)
        r = _dist_km(la[sl][box], lo[sl][box], a, b) / (dk / 2)
        sub = fresh[sl]
        sub[box] = np.maximum(sub[box], np.exp(-((r / 1.5) ** 2)))
    maturity = np.clip(maturity * (1 - 0.6 * fresh), 0.05, 1.0).astype("float32")
    _ = names
    return code, modes.astype("float32"), mg.astype("float32"), maturity


#: npFe⁰ (wt%) of a fully mature soil per wt% FeO: mature mare soils (FeO ~18) carry ≈ 0.5 wt%,
#: mature highland soils (FeO ~5) ≈ 0.15 wt% (Morris 1980: Is/FeO ≈ 60–80 at maturity; Lucey &
#: Riner 2011; Taylor et al. 2001, JGR 106:27985). Value fitted with the spectral parameters against the
#: Clementine stations (see workbench.synth.spectra.PARAMS): mature mare ≈ 0.65, highlands ≈ 0.18 wt%.
NPFE_PER_FEO = 0.043


# --------------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------------
def _cache_path(seed: int, ppd: float, geography: str) -> Path:
    return cache_dir() / f"synthetic_moon_v{MODEL_VERSION}_seed{seed}_ppd{ppd:g}_{geography}.zarr"


def _resolve_auto(seed: int, ppd: float) -> str:
    """``"real"`` when a cached real Moon exists or LOLA and WAC can be read now, else ``"procedural"``.

    Only for the cache key: without caching, :func:`_build` resolves ``"auto"`` itself with one read."""
    if _cache_path(seed, ppd, "real").exists():
        return "real"
    try:
        _read_real_sources()
    except WorkbenchError as err:
        log.info("real geography unavailable (%s); using the procedural Moon", err)
        return "procedural"
    return "real"


def _build(seed: int, ppd: float, geography: str) -> xr.Dataset:
    used = geography
    if geography == "procedural":
        geo_ds = procedural_geography(ppd, seed)
    elif geography == "real":
        geo_ds = real_geography(ppd, seed)
    else:  # auto
        try:
            geo_ds = real_geography(ppd, seed)
            used = "real"
        except WorkbenchError as err:
            log.info("real geography unavailable (%s); using the procedural Moon", err)
            geo_ds = procedural_geography(ppd, seed)
            used = "procedural"
    lat, lon = geo_ds["lat"].values, geo_ds["lon"].values
    mare = geo_ds["mare"].values.astype(bool)
    code, modes, mg, maturity = _composition(lat, lon, mare, seed)
    mode = xr.DataArray(modes, dims=("mineral", "lat", "lon"),
                        coords={"mineral": list(MINERALS), "lat": lat, "lon": lon},
                        attrs={"units": "1", "long_name": "mineral weight fraction"})
    silicate_mg = xr.DataArray(mg, dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                               attrs={"units": "1", "long_name": "Mg# of the mafic silicates"})
    ox = oxides_from_modes(mode, silicate_mg)
    npfe = (NPFE_PER_FEO * ox["FeO"] * maturity).astype("float32")
    ds = xr.Dataset(coords={"lat": lat, "lon": lon, "mineral": list(MINERALS)})
    ds["elevation"] = geo_ds["elevation"]
    ds["mare"] = geo_ds["mare"]
    ds["terrane"] = xr.DataArray(code, dims=("lat", "lon"), attrs={
        "units": "1", "long_name": "crustal terrane (Jolliff et al. 2000)",
        "flag_values": np.arange(len(TERRANES), dtype="int8"), "flag_meanings": " ".join(TERRANES)})
    ds["mode"] = mode
    for name in ("FeO", "TiO2", "Al2O3", "MgO", "CaO", "SiO2"):
        ds[name] = ox[name]
    ds["mg_number"] = ox["mg_number"]
    ds["silicate_mg_number"] = silicate_mg
    ds["maturity"] = xr.DataArray(maturity, dims=("lat", "lon"), attrs={
        "units": "1", "long_name": "optical maturity (1 = fully mature)"})
    ds["npfe"] = npfe.assign_attrs(units="wt%", long_name="nanophase metallic iron (npFe0)")
    ds.attrs.update(crs=geo.CRS_GEOGRAPHIC, seed=int(seed), resolution_ppd=float(ppd), geography=used,
                    model_version=MODEL_VERSION, title="Lunar Workbench synthetic Moon")
    return geo.annotate_latlon(ds)


def _with_reflectance(ds: xr.Dataset) -> xr.Dataset:
    from .spectra import WAVELENGTH_NM, reflectance_from_modes

    rows = max(1, int(2**17 // ds.sizes["lon"]))
    base = ds[["mode", "silicate_mg_number", "npfe"]].chunk({"lat": rows, "lon": -1, "mineral": -1})
    refl = reflectance_from_modes(base["mode"], base["silicate_mg_number"], base["npfe"], WAVELENGTH_NM)
    ds = ds.copy()
    ds["reflectance"] = refl.transpose("lat", "lon", "wavelength")
    return ds


def make_moon(seed: int = 0, resolution_ppd: float = 4, geography: str = "auto",
              cache: bool = True) -> xr.Dataset:
    """The synthetic Moon: a global dataset of known ground truth.

    Parameters
    ----------
    seed
        Random seed of every procedural component (deterministic for a seed), a whole number >= 0.
    resolution_ppd
        Pixels per degree, a number in (0, 64] (4 → 720 × 1440; 16 → 2880 × 5760).
    geography
        ``"real"`` (LOLA + WAC mare mask; raises :class:`~workbench.errors.DataUnavailableError` when
        unreachable), ``"procedural"`` (no data needed) or ``"auto"`` (real when reachable).
    cache
        Store/reuse the composition layers under ``workbench.config.cache_dir()`` (zarr). The cache key
        holds seed, resolution, the geography used (``"auto"`` resolved first) and :data:`MODEL_VERSION`.

    Returns
    -------
    xarray.Dataset
        On ``(lat, lon)`` from :func:`workbench.geo.global_grid`: ``elevation`` (m), ``mare`` (bool),
        ``terrane`` (int8, ``flag_meanings``), ``mode`` (mineral, lat, lon), ``FeO, TiO2, Al2O3, MgO,
        CaO, SiO2`` (wt%), ``mg_number`` (bulk molar 100·Mg/(Mg+Fe)), ``silicate_mg_number`` (Mg# of
        the mafic silicates, the input of :func:`~workbench.synth.minerals.oxides_from_modes` and
        :func:`~workbench.synth.spectra.reflectance_from_modes`), ``maturity``, ``npfe`` (wt%) and
        ``reflectance`` (lat, lon, wavelength): dask-backed radiance factor at i=30°, e=0°, g=30°,
        computed lazily chunk by chunk.

    Examples
    --------
    >>> moon = make_moon(seed=0, resolution_ppd=1, geography="procedural", cache=False)
    >>> moon["FeO"].dims, moon["reflectance"].dims
    (('lat', 'lon'), ('lat', 'lon', 'wavelength'))
    """
    if geography not in ("auto", "real", "procedural"):
        raise InputError(f"geography must be 'auto', 'real' or 'procedural', got {geography!r}")
    if isinstance(resolution_ppd, bool) or not isinstance(resolution_ppd, int | float | np.integer | np.floating):
        raise InputError(f"resolution_ppd must be a number of pixels per degree in (0, 64] (e.g. 4), got "
                         f"{resolution_ppd!r} of type {type(resolution_ppd).__name__}")
    if not np.isfinite(resolution_ppd) or resolution_ppd <= 0 or resolution_ppd > 64:
        raise InputError(f"resolution_ppd must be in (0, 64] pixels per degree, got {resolution_ppd}")
    if isinstance(seed, bool) or not (is_whole_number(seed) or (isinstance(seed, float | np.floating)
                                                                 and float(seed).is_integer())) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if geography == "auto" and cache:  # cached under what it resolves to, not kept for good when built offline
        geography = _resolve_auto(seed, resolution_ppd)
    if not cache:
        return _with_reflectance(_build(seed, resolution_ppd, geography))
    path = _cache_path(seed, resolution_ppd, geography)
    if not path.exists():
        ds = _build(seed, resolution_ppd, geography)
        rows = max(1, int(2**20 // ds.sizes["lon"]))
        enc_ds = ds.chunk({"lat": rows})
        for v in enc_ds.variables.values():
            v.encoding.pop("chunks", None)
        try:
            with atomic_path(path) as tmp:
                enc_ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        except OSError as err:  # read-only cache: still return the dataset
            log.warning("could not cache the synthetic Moon at %s: %s", path, err)
            return _with_reflectance(ds)
    ds = xr.open_zarr(path, consolidated=True)
    if ds.sizes["lat"] * ds.sizes["lon"] <= 4_000_000:
        ds = ds.load()
    ds["mare"] = ds["mare"].astype(bool)
    ds["terrane"] = ds["terrane"].astype("int8")
    return _with_reflectance(ds)
