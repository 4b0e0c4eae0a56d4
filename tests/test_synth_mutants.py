"""Known-answer tests for the synthetic Moon's generation beyond the physics (mutation review).

Each test pins a value or a relation that the documented model fixes and that the rest of the suite let
drift: the random fields and their interpolation, the SPA ellipse, Pike craters, procedural and real
geography, terranes, the per-terrane composition model, stoichiometry, planted deposits, the spectral
library's prior and the Lucey (2000) bench metrics. Expected numbers are worked out from the documented
formulas and constants (the module docstrings, Pike 1977, Lucey et al. 2000), not copied from the code's
output. Random parts are replaced by stub generators or fields where a value must be exact. No data files
are needed: real geography and the Clementine stations are small in-memory stand-ins.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench import geo
from workbench.errors import InputError
from workbench.synth import bench, deposits, library, minerals
from workbench.synth import moon as M
from workbench.synth.minerals import MINERALS

R_KM = 1737.4  # lunar radius of the module (geo.MOON_RADIUS_KM)


def _gc_km(lat1, lon1, lat2, lon2):
    """Great-circle distance (km), spherical law of cosines (independent of geo's haversine)."""
    p1, p2 = np.deg2rad(lat1), np.deg2rad(lat2)
    c = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(np.deg2rad(np.subtract(lon2, lon1)))
    return R_KM * np.arccos(np.clip(c, -1.0, 1.0))


def _destination(lat, lon, bearing_deg, dist_km):
    """Point reached from (lat, lon) after ``dist_km`` along the initial bearing (standard spherical formula)."""
    p1, l1, b, d = np.deg2rad(lat), np.deg2rad(lon), np.deg2rad(bearing_deg), dist_km / R_KM
    p2 = np.arcsin(np.sin(p1) * np.cos(d) + np.cos(p1) * np.sin(d) * np.cos(b))
    l2 = l1 + np.arctan2(np.sin(b) * np.sin(d) * np.cos(p1), np.cos(d) - np.sin(p1) * np.sin(p2))
    return float(np.rad2deg(p2)), float(np.rad2deg(l2))


def _smoothstep(x0, x1, x):
    t = min(max((x - x0) / (x1 - x0), 0.0), 1.0)
    return t * t * (3 - 2 * t)


class _QuantileRng:
    """A stand-in generator: ``uniform(a, b, n)`` returns ``a + q·(b − a)`` with the next q of ``qs``."""

    def __init__(self, qs=(0.5,), poisson=1, random=0.5):
        self.qs, self.i, self.n_poisson, self.u = list(qs), 0, poisson, random

    def _q(self):
        q = self.qs[min(self.i, len(self.qs) - 1)]
        self.i += 1
        return q

    def uniform(self, a=0.0, b=1.0, size=None):
        v = a + self._q() * (b - a)
        return v if size is None else np.full(size, v)

    def poisson(self, lam):
        return self.n_poisson

    def random(self, size=None):
        return self.u if size is None else np.full(size, self.u)


# ------------------------------------------------------------------------------------------------------
# random fields and interpolation
# ------------------------------------------------------------------------------------------------------
def _radial_power(f):
    p = np.abs(np.fft.fft2(f)) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(f.shape[0]), np.fft.fftfreq(f.shape[1]), indexing="ij")
    k = np.hypot(ky, kx).ravel()
    edges = np.linspace(0.02, 0.3, 25)
    idx = np.digitize(k, edges)
    kc = np.array([k[idx == i].mean() for i in range(1, len(edges))])
    pc = np.array([p.ravel()[idx == i].mean() for i in range(1, len(edges))])
    return kc, pc


def test_gaussian_random_field_has_the_documented_power_law_and_cutoff():
    """P(k) ∝ k^-beta (amplitude k^-beta/2), times exp(-(k·corr_px)²) in amplitude (exp(-2(k·c)²) in power)."""
    f = M.gaussian_random_field((256, 256), 3.0, np.random.default_rng(0))
    assert abs(f.mean()) < 1e-9 and f.std() == pytest.approx(1.0, abs=1e-6)
    kc, pc = _radial_power(f)
    slope = np.polyfit(np.log(kc), np.log(pc), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.25)
    g = M.gaussian_random_field((256, 256), 3.0, np.random.default_rng(1), corr_px=6.0)
    kc, pc = _radial_power(g)
    keep = kc < 0.2
    curv = np.polyfit(kc[keep] ** 2, np.log(pc[keep] * kc[keep] ** 3.0), 1)[0]
    assert curv == pytest.approx(-2 * 6.0**2, rel=0.15)  # log P + 3 log k = const − 2 c² k²


def test_interpolation_is_identity_on_its_own_grid_and_a_block_mean_when_halving():
    lat2, lon2 = geo.global_grid(2)
    f = np.random.default_rng(2).standard_normal((lat2.size, lon2.size)).astype("float32")
    np.testing.assert_allclose(M._interp_to_grid(f, 2.0, lat2, lon2), f, atol=1e-5)
    lat1, lon1 = geo.global_grid(1)
    block = f.reshape(180, 2, 360, 2).mean(axis=(1, 3))  # 1 px/deg cell centres sit between 2x2 source cells
    np.testing.assert_allclose(M._interp_to_grid(f, 2.0, lat1, lon1), block, atol=1e-5)


def test_field_at_the_base_resolution_is_the_base_draw_and_has_unit_variance():
    """At 2 px/deg (= _BASE_PPD) a field is the unit-variance base GRF itself (no fine detail added);
    at every resolution it has unit variance."""
    lat2, lon2 = geo.global_grid(2)
    base = M.gaussian_random_field((360, 720), 3.0, np.random.default_rng(7))
    got = M._field(np.random.default_rng(7), lat2, lon2, beta=3.0)
    np.testing.assert_allclose(got, base / base.std(), atol=2e-4)
    lat1, lon1 = geo.global_grid(1)
    assert float(M._field(np.random.default_rng(7), lat1, lon1).std()) == pytest.approx(1.0, abs=1e-4)


def test_fine_detail_above_the_base_grid_is_high_passed():
    """Above 2 px/deg the added detail keeps only scales finer than the base grid: what the field adds to
    the interpolated base averages out over 8 x 8 pixel (2 degree) blocks."""
    lat4, lon4 = geo.global_grid(4)
    rng = np.random.default_rng(11)
    base = M.gaussian_random_field((360, 720), 3.0, rng)
    base4 = M._interp_to_grid(base, 2.0, lat4, lon4).astype(float)
    got = M._field(np.random.default_rng(11), lat4, lon4, beta=3.0).astype(float)
    a = float((got * base4).sum() / (base4 * base4).sum())
    resid = got - a * base4
    blocks = resid.reshape(90, 8, 180, 8).mean(axis=(1, 3))
    assert blocks.std() < 0.35 * resid.std()


# ------------------------------------------------------------------------------------------------------
# SPA ellipse, Pike craters, crater stamping
# ------------------------------------------------------------------------------------------------------
def test_spa_ellipse_axes_north_south_1200_km_east_west_1025_km():
    """SPA: centre 53°S 169°W, semi-axes 1200 km N-S and 1025 km E-W (Garrick-Bethell & Zuber 2009)."""
    pts = [(_destination(-53.0, -169.0, 0.0, 1200.0), 1.0), (_destination(-53.0, -169.0, 180.0, 600.0), 0.5),
           (_destination(-53.0, -169.0, 90.0, 1025.0), 1.0), (_destination(-53.0, -169.0, 270.0, 512.5), 0.5)]
    d45 = 800.0
    pts.append((_destination(-53.0, -169.0, 45.0, d45),
                d45 * np.sqrt((np.cos(np.pi / 4) / 1200.0) ** 2 + (np.sin(np.pi / 4) / 1025.0) ** 2)))
    lat = np.array([p[0][0] for p in pts])
    lon = np.array([p[0][1] for p in pts])
    np.testing.assert_allclose(M._spa_radius(lat, lon), [p[1] for p in pts], rtol=1e-6)


def test_pike_1977_depth_and_rim_laws():
    """Simple (D < 15 km): depth 0.196 D^1.010, rim 0.036 D^1.014; complex: 1.044 D^0.301, 0.236 D^0.399 (km)."""
    depth, rim = M._pike_crater(np.array([10.0, 12.0, 16.0, 100.0]))
    np.testing.assert_allclose(depth, [2.005654, 2.411177, 2.405141, 4.175423], rtol=1e-5)
    np.testing.assert_allclose(rim, [0.371794, 0.447293, 0.713437, 1.482218], rtol=1e-5)


def test_one_stamped_crater_has_the_documented_size_position_and_profile():
    """One crater (stub generator): u = 0.5 of the truncated power law N(>D) ∝ D^-2 between 100 and 400 km
    gives D = 100·(1 − 0.5·(1 − 1/16))^-1/2 = 137.199 km; lat = asin(−1 + 2·0.75) = 30° (area-uniform),
    lon = 0°, freshness 1. Profile: −depth + (depth + rim)·r² inside, rim·r^-3 out to 3 radii, 0 beyond."""
    lat, lon = geo.global_grid(2)
    elev = np.zeros((lat.size, lon.size), dtype="float64")
    rng = _QuantileRng(qs=(0.75, 0.5, 1.0), random=0.5)
    M._add_craters(elev, lat, lon, rng, n_per_area=1e-9, dmin_km=100.0, dmax_km=400.0)
    d = 100.0 * (1 - 0.5 * (1 - (100.0 / 400.0) ** 2)) ** -0.5
    assert d == pytest.approx(137.199, abs=1e-3)
    depth, rim = 1.044 * d**0.301, 0.236 * d**0.399
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    rr = _gc_km(la, lo, 30.0, 0.0) / (d / 2)
    want = np.where(rr < 1.0, -depth + (depth + rim) * rr**2, rim * np.clip(rr, 1.0, None) ** -3.0)
    want = np.where(rr < 3.0, want, 0.0) * 1000.0
    np.testing.assert_allclose(elev, want, atol=0.05)
    assert elev.min() < -0.9 * depth * 1000.0 and (elev != 0).sum() > 100


# ------------------------------------------------------------------------------------------------------
# procedural geography (random fields, craters and filters replaced where a value must be exact)
# ------------------------------------------------------------------------------------------------------
def _deterministic_geography(monkeypatch, shore=0.0, crater_m=0.0, ppd=1):
    vals = iter([shore, 0.0])
    monkeypatch.setattr(M, "_field", lambda rng, lat, lon, **kw: np.full((lat.size, lon.size), next(vals), "float32"))

    def craters(elev, *a, **kw):
        elev += crater_m
        return elev

    monkeypatch.setattr(M, "_add_craters", craters)
    monkeypatch.setattr(M, "ndimage", types.SimpleNamespace(gaussian_filter=lambda a, *args, **kw: a))
    return M.procedural_geography(ppd, seed=0)


def test_procedural_mare_surface_is_lowered_300_m_and_craters_damped_to_a_quarter(monkeypatch):
    plain = _deterministic_geography(monkeypatch)
    mare = plain["mare"].values
    assert 0.05 < mare.mean() < 0.3
    no_mare = _deterministic_geography(monkeypatch, shore=100.0)  # shoreline noise far above 1: no mare
    assert not no_mare["mare"].values.any()
    diff = plain["elevation"].values.astype(float) - no_mare["elevation"].values
    np.testing.assert_allclose(diff[mare], -300.0, atol=0.01)
    np.testing.assert_allclose(diff[~mare], 0.0, atol=0.01)
    cratered = _deterministic_geography(monkeypatch, crater_m=1000.0)
    add = cratered["elevation"].values.astype(float) - plain["elevation"].values
    np.testing.assert_allclose(add[mare], 250.0, atol=0.01)
    np.testing.assert_allclose(add[~mare], 1000.0, atol=0.01)
    wide = _deterministic_geography(monkeypatch, shore=-4.0)["mare"]  # a -4 sigma shoreline: Frigoris spreads
    polar = np.abs(wide["lat"].values) >= 65.0
    assert wide.values[(np.abs(wide["lat"].values) > 60.0) & ~polar].any() and not wide.values[polar].any()


def test_procedural_far_side_bulge_and_spa_depression(monkeypatch):
    """Far-side bulge 4200·exp(−(d/2300 km)²) − 1500 m centred 5°N 160°W; SPA 6 km deep at its centre."""
    g = _deterministic_geography(monkeypatch)
    e = g["elevation"]

    def bulge(la, lo):
        return 4200.0 * np.exp(-((_gc_km(la, lo, 5.0, -160.0) / 2300.0) ** 2)) - 1500.0

    p = e.sel(lat=5.0, lon=-160.0, method="nearest")
    assert float(p) == pytest.approx(bulge(float(p["lat"]), float(p["lon"])), abs=5.0)
    q = e.sel(lat=-53.0, lon=-169.0, method="nearest")
    assert float(q) == pytest.approx(bulge(float(q["lat"]), float(q["lon"])) - 6000.0, abs=15.0)
    w = np.cos(np.deg2rad(g["lat"]))
    near = np.abs(g["lon"]) <= 90
    assert float(e.where(~near).weighted(w).mean() - e.where(near).weighted(w).mean()) > 1000.0


def test_procedural_geography_follows_its_seed():
    a = M.procedural_geography(1, seed=1)
    b = M.procedural_geography(1, seed=2)
    assert not np.array_equal(a["elevation"].values, b["elevation"].values)
    assert not np.array_equal(a["mare"].values, b["mare"].values)


# ------------------------------------------------------------------------------------------------------
# real geography from small in-memory LOLA / WAC stand-ins
# ------------------------------------------------------------------------------------------------------
def test_real_geography_mare_mask_needs_dark_low_ground_equatorward_of_70(monkeypatch):
    """Mare: WAC < 48 DN and LOLA < +1 km and |lat| < 70°."""
    lat1, lon1 = geo.global_grid(1)
    lat2, lon2 = geo.global_grid(2)
    elev = np.zeros((lat1.size, lon1.size), "float32")
    wac = np.full((lat2.size, lon2.size), 100.0, "float32")

    def box(a, b, c, d, la, lo):
        return ((la[:, None] > a) & (la[:, None] < b)) & ((lo[None] > c) & (lo[None] < d))

    for (a, b, c, d), z in (((0, 20, 0, 20), -2000.0), ((0, 20, 100, 120), 2000.0), ((72, 88, -60, -20), -2000.0)):
        wac[box(a, b, c, d, lat2, lon2)] = 20.0
        elev[box(a, b, c, d, lat1, lon1)] = z
    src = (xr.DataArray(elev, dims=("lat", "lon"), coords={"lat": lat1, "lon": lon1}),
           xr.DataArray(wac, dims=("lat", "lon"), coords={"lat": lat2, "lon": lon2}), "test")
    monkeypatch.setattr(M, "_read_real_sources", lambda: src)
    g = M.real_geography(1, seed=0)
    np.testing.assert_allclose(g["elevation"].values, elev, atol=1e-3)  # same grid: the LOLA values themselves
    m = g["mare"]
    assert bool(m.sel(lat=10.5, lon=10.5)) and bool(m.sel(lat=4.5, lon=4.5))
    assert not bool(m.sel(lat=10.5, lon=110.5))  # dark but high
    assert not bool(m.sel(lat=80.5, lon=-40.5))  # dark and low, but polar
    assert not bool(m.sel(lat=10.5, lon=60.5))  # bright
    assert int(m.sum()) == pytest.approx(20 * 20, abs=40)


# ------------------------------------------------------------------------------------------------------
# terranes
# ------------------------------------------------------------------------------------------------------
def test_terrane_codes_and_weights_at_known_distances():
    """SPA core rs < 0.58, annulus 0.58 ≤ rs < 0.95, PKT within 1350 km of 18°N 28°W; mare overrides all.
    Weights: core 1 − S(0.5, 0.65, rs), ring S(0.5, 0.65, rs)·(1 − S(0.85, 1.05, rs)), PKT 1 − S(0.85, 1.05, d)
    with S the smoothstep t²(3 − 2t)."""
    T = M.TERRANES
    rs_list = [0.3, 0.6, 0.9, 1.0, 1.2]
    spa_pts = [_destination(-53.0, -169.0, 0.0, r * 1200.0) for r in rs_list]
    pkt_pts = [_destination(18.0, -28.0, 180.0, f * 1350.0) for f in (0.95, 1.1)]
    pts = [*spa_pts, *pkt_pts, spa_pts[0]]
    lat = np.array([p[0] for p in pts])[None]
    lon = np.array([p[1] for p in pts])[None]
    mare = np.zeros(lat.shape, bool)
    mare[0, -1] = True
    code, w = M._terranes(lat, lon, mare)
    fh, pk, core, ring, mr = (T.index(n) for n in ("feldspathic_highlands", "procellarum_kreep", "south_pole_aitken",
                                                     "spa_mg_pyroxene_annulus", "mare"))
    assert code[0].tolist() == [core, ring, ring, fh, fh, pk, fh, mr]
    want_core = [1 - _smoothstep(0.5, 0.65, r) for r in rs_list]
    want_ring = [_smoothstep(0.5, 0.65, r) * (1 - _smoothstep(0.85, 1.05, r)) for r in rs_list]
    np.testing.assert_allclose(w["south_pole_aitken"][0, :5], want_core, atol=1e-6)
    np.testing.assert_allclose(w["spa_mg_pyroxene_annulus"][0, :5], want_ring, atol=1e-6)
    np.testing.assert_allclose(want_ring[1:4], [20 / 27, 0.84375, 0.15625], atol=1e-6)  # by hand
    np.testing.assert_allclose(w["procellarum_kreep"][0, 5:7], [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(w["feldspathic_highlands"][0, 3], 0.84375, atol=1e-6)
    total = sum(w.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


# ------------------------------------------------------------------------------------------------------
# composition model (fields replaced by constants, fresh craters removed)
# ------------------------------------------------------------------------------------------------------
_FIELD_ORDER = ("plag", "mafic_split", "olivine", "glass", "mg", "tio2", "maturity", "mare_plag")
_SPA_RING_LAT = -53.0 + np.rad2deg(0.8 * 1200.0 / R_KM)  # due north of the SPA centre at rs = 0.8


def _composition(monkeypatch, craters=(), **fields):
    vals = iter([fields.get(n, 0.0) for n in _FIELD_ORDER])
    monkeypatch.setattr(M, "_field", lambda rng, lat, lon, **kw: np.full((lat.size, lon.size), next(vals), "float32"))
    monkeypatch.setattr(M, "FRESH_CRATERS", craters)
    lat = np.array([30.0, 8.5, -53.0, _SPA_RING_LAT])
    lon = np.array([150.0, 30.0, 30.8, -169.0])
    mare = np.zeros((4, 4), bool)
    mare[1, 2] = True  # Mare Tranquillitatis (8.5°N, 30.8°E)
    code, modes, mg, mat = M._composition(lat, lon, mare, seed=0)
    pick = {"far_hl": (0, 0), "near_hl": (0, 1), "mare": (1, 2), "spa": (2, 3), "ring": (3, 3)}
    return {k: (modes[:, i, j].astype(float), float(mg[i, j]), float(mat[i, j]), int(code[i, j]))
            for k, (i, j) in pick.items()}


def _perturbed(m, plag_add=0.0, split=0.0, olivine=0.0, glass=0.0):
    m = np.array(m, dtype=float)
    m[0] += plag_add
    mafic = m[1] + m[2]
    m[1] += 0.08 * split * mafic
    m[2] -= 0.08 * split * mafic
    m[3] *= np.exp(0.4 * olivine)
    m[5] *= np.exp(0.25 * glass)
    return m / m.sum()


def test_composition_model_known_answers(monkeypatch):
    """Per-terrane mean modes and Mg#, the near/far highland shift (cos lon = +1 at the sub-Earth point:
    plagioclase −0.04·cos lon, Mg# −4·cos lon), the mare TiO2 law (3 wt%·exp(0.55 f + 0.8 near
    Tranquillitatis), ilmenite = TiO2/53.5·0.85, Mg# 45 + 4 f − 1.5 ln(TiO2/3)) and the correlated
    perturbations (mafic split ±0.08 f, olivine ·exp(0.4 f), glass ·exp(0.25 f)), with constant fields."""
    f = dict(plag=0.5, mafic_split=1.0, olivine=-1.0, glass=0.4, mg=2.0, tio2=0.2, maturity=2.5, mare_plag=-1.0)
    got = _composition(monkeypatch, **f)
    c150, c30 = np.cos(np.deg2rad(150.0)), np.cos(np.deg2rad(30.0))
    fh = (0.75, 0.09, 0.035, 0.03, 0.005, 0.09)
    pert = dict(split=1.0, olivine=-1.0, glass=0.4)
    np.testing.assert_allclose(got["far_hl"][0], _perturbed(fh, -0.04 * c150 + 0.03 * 0.5, **pert), atol=2e-6)
    np.testing.assert_allclose(got["near_hl"][0], _perturbed(fh, -0.04 * c30 + 0.03 * 0.5, **pert), atol=2e-6)
    assert got["far_hl"][1] == pytest.approx(66.0 - 4.0 * c150 + 3.0 * 2.0, abs=1e-4)  # 75.464
    assert got["near_hl"][1] == pytest.approx(66.0 - 4.0 * c30 + 3.0 * 2.0, abs=1e-4)  # 68.536
    tio2 = 3.0 * np.exp(0.55 * 0.2 + 0.8)  # at the centre of the Tranquillitatis high-Ti bump
    mare = (0.29 + 0.04 * -1.0, 0.12, 0.30, 0.06, tio2 / 53.5 * 0.85, 0.19)
    np.testing.assert_allclose(got["mare"][0], _perturbed(mare, **pert), atol=2e-6)
    assert got["mare"][1] == pytest.approx(45.0 + 4.0 * 2.0 - 1.5 * np.log(tio2 / 3.0), abs=1e-4)  # 51.635
    np.testing.assert_allclose(got["spa"][0], _perturbed((0.46, 0.17, 0.17, 0.025, 0.01, 0.165), **pert), atol=2e-6)
    assert got["spa"][1] == pytest.approx(66.0, abs=1e-4)
    np.testing.assert_allclose(got["ring"][0], _perturbed((0.58, 0.22, 0.04, 0.02, 0.005, 0.135), **pert), atol=2e-6)
    assert got["ring"][1] == pytest.approx(81.0, abs=1e-4)
    T = M.TERRANES
    assert [got[k][3] for k in ("far_hl", "mare", "spa", "ring")] == [
        T.index("feldspathic_highlands"), T.index("mare"), T.index("south_pole_aitken"),
        T.index("spa_mg_pyroxene_annulus")]
    assert got["far_hl"][2] == pytest.approx(1.0, abs=1e-6)  # 0.85 + 0.08·2.5 = 1.05, clipped to 1


def test_composition_clips_tio2_mg_and_maturity_at_their_documented_bounds(monkeypatch):
    """TiO2 1–12 wt%, Mg# 20–90, maturity 0.4–1 before fresh craters."""
    got = _composition(monkeypatch, mg=8.0, tio2=2.0, maturity=-10.0)
    assert got["far_hl"][1] == pytest.approx(90.0) and got["ring"][1] == pytest.approx(90.0)
    ilm = got["mare"][0][4]
    mare = np.array([0.29, 0.12, 0.30, 0.06, 12.0 / 53.5 * 0.85, 0.19])
    assert ilm == pytest.approx((mare / mare.sum())[4], abs=2e-6)
    assert got["mare"][1] == pytest.approx(45.0 + 32.0 - 1.5 * np.log(4.0), abs=1e-4)
    assert got["far_hl"][2] == pytest.approx(0.4, abs=1e-6)


def test_fresh_crater_lowers_maturity_by_the_documented_profile(monkeypatch):
    """Maturity ·(1 − 0.7·exp(−(r/1.5)²) − 0.15·exp(−r/8)), r in crater radii (D/2)."""
    crater = (("X", 30.0, 150.0, 100.0),)
    got = _composition(monkeypatch, craters=crater)  # fields 0: maturity 0.85 before the crater
    assert got["far_hl"][2] == pytest.approx(0.85 * 0.15, abs=1e-5)
    got = _composition(monkeypatch, craters=crater, maturity=2.5)  # 0.85 + 0.08·2.5 clipped to 1 before the crater
    assert got["far_hl"][2] == pytest.approx(1.0 * 0.15, abs=1e-5)
    vals = iter([0.0] * 8)
    monkeypatch.setattr(M, "_field", lambda rng, lat, lon, **kw: np.full((lat.size, lon.size), next(vals), "float32"))
    lat = np.array([30.0 + np.rad2deg(75.0 / R_KM), 30.0 + np.rad2deg(400.0 / R_KM), 30.0])
    _, _, _, mat = M._composition(lat, np.array([150.0, 10.0]), np.zeros((3, 2), bool), seed=0)
    for r, got_m in ((1.5, mat[0, 0]), (8.0, mat[1, 0])):
        assert float(got_m) == pytest.approx(0.85 * (1 - 0.7 * np.exp(-((r / 1.5) ** 2)) - 0.15 * np.exp(-r / 8.0)),
                                             abs=1e-4)


def test_composition_follows_its_seed():
    lat, lon = geo.global_grid(0.5)
    mare = np.zeros((lat.size, lon.size), bool)
    a = M._composition(lat, lon, mare, seed=1)
    b = M._composition(lat, lon, mare, seed=2)
    assert not np.allclose(a[1], b[1]) and not np.allclose(a[2], b[2])


# ------------------------------------------------------------------------------------------------------
# make_moon: derived layers and cache key
# ------------------------------------------------------------------------------------------------------
def test_moon_npfe_and_bulk_mg_number_follow_their_definitions():
    """npFe⁰ = 0.043·FeO·maturity (wt%); mg_number = molar 100·MgO/(MgO + FeO), MgO 40.304, FeO 71.844 g/mol."""
    moon = M.make_moon(seed=0, resolution_ppd=0.5, geography="procedural", cache=False)
    np.testing.assert_allclose(moon["npfe"], 0.043 * moon["FeO"] * moon["maturity"], rtol=1e-5)
    mgo, feo = moon["MgO"] / 40.304, moon["FeO"] / 71.844
    np.testing.assert_allclose(moon["mg_number"], 100 * mgo / (mgo + feo), rtol=1e-5)
    assert float(np.abs(moon["mg_number"] - moon["silicate_mg_number"]).max()) > 1.0


def test_cache_key_holds_seed_resolution_geography_and_model_version():
    paths = {M._cache_path(s, p, g) for s in (0, 1) for p in (1, 4) for g in ("real", "procedural")}
    assert len(paths) == 8
    assert all(f"_v{M.MODEL_VERSION}_" in p.name for p in paths)


# ------------------------------------------------------------------------------------------------------
# minerals: stoichiometry known answers
# ------------------------------------------------------------------------------------------------------
#: Oxide wt% of each phase at Mg# 70, from the module's formula units and molar masses (worked by hand):
#: plagioclase An95 (0.95 CaAl2Si2O8 + 0.05 NaAlSi3O8) scaled by 0.997 plus 0.3 wt% FeO.
_PHASES = {
    "plagioclase": {"CaO": 19.1464, "Na2O": 0.5569, "Al2O3": 35.7287, "SiO2": 44.2681, "FeO": 0.3},
    "low_ca_pyroxene": {"CaO": 2.5451, "MgO": 24.3290, "FeO": 18.5862, "SiO2": 54.5397},
    "high_ca_pyroxene": {"CaO": 19.9959, "MgO": 14.4614, "FeO": 11.0478, "Al2O3": 2.2723, "SiO2": 52.2227},
    "olivine": {"MgO": 35.3508, "FeO": 27.0063, "SiO2": 37.6428},
    "ilmenite": {"FeO": 44.3045, "MgO": 2.1613, "TiO2": 53.5342},
}


@pytest.mark.parametrize("phase", list(_PHASES))
def test_phase_oxides_at_mg70(phase):
    got = minerals.mineral_oxides(phase, 70.0)
    want = _PHASES[phase]
    assert set(got) == set(want) | ({"FeO"} if phase == "plagioclase" else set())
    for ox, v in want.items():
        assert float(got[ox]) == pytest.approx(v, abs=2e-4), ox


def test_rock_oxides_are_the_crystalline_mass_balance_and_bulk_mg_number_is_molar():
    w = {"plagioclase": 0.4, "low_ca_pyroxene": 0.2, "high_ca_pyroxene": 0.1, "olivine": 0.1, "ilmenite": 0.1,
         "glass": 0.1}
    m = xr.DataArray([w[n] for n in MINERALS], dims="mineral", coords={"mineral": list(MINERALS)})
    ox = minerals.oxides_from_modes(m, xr.DataArray(70.0))
    for name in minerals.OXIDES:
        want = sum(w[p] * _PHASES[p].get(name, 0.0) for p in _PHASES) / 0.9  # glass = melted crystalline part
        assert float(ox[name]) == pytest.approx(want, abs=5e-4), name
    mgo, feo = float(ox["MgO"]) / 40.304, float(ox["FeO"]) / 71.844
    assert float(ox["mg_number"]) == pytest.approx(100 * mgo / (mgo + feo), abs=1e-3)
    pyx = xr.DataArray([0, 0.5, 0.2, 0.3, 0, 0], dims="mineral", coords={"mineral": list(MINERALS)})
    assert float(minerals.oxides_from_modes(pyx, xr.DataArray(70.0))["mg_number"]) == pytest.approx(70.0, abs=1e-3)


def test_mode_sum_tolerance_and_a_whole_fraction_mg_number_are_refused():
    m = xr.DataArray([0.5, 0.2, 0, 0, 0.01, 0.3], dims="mineral", coords={"mineral": list(MINERALS)})  # sums 1.01
    with pytest.raises(InputError, match="instead of 1"):
        minerals.oxides_from_modes(m, xr.DataArray(70.0))
    with pytest.raises(InputError, match="looks like a fraction"):
        minerals.mineral_oxides("olivine", 1.0)  # every value in (0, 1]: a fraction


# ------------------------------------------------------------------------------------------------------
# planted deposits
# ------------------------------------------------------------------------------------------------------
def test_deposit_strength_is_a_logistic_profile_in_a_window_stretched_by_1_over_cos_lat():
    """With no wobble (stub draws 0): s = 1/(1 + exp((d/r − 1)/0.12)) along the rows; the window spans
    ceil(1.6 r) + 1 rows and ceil(1.6 r / cos lat) + 1 columns each side, and the patch is east-west symmetric."""
    lat, lon = geo.global_grid(1)
    r0, c0, rad = 29, 100, 4.0  # lat 60.5°
    s, rows, cols = deposits._deposit_strength((180, 360), lat, lon, r0, c0, rad, _QuantileRng(qs=(0.0,)))
    cl = np.cos(np.deg2rad(60.5))
    h, w = int(np.ceil(1.6 * rad)) + 1, int(np.ceil(1.6 * rad / cl)) + 1
    assert (h, w) == (8, 14)
    assert s.shape == (2 * h + 1, 2 * w + 1) and (rows.start, rows.stop) == (r0 - h, r0 + h + 1)
    np.testing.assert_array_equal(cols, np.arange(c0 - w, c0 + w + 1))

    def logistic(d):
        return 1.0 / (1.0 + np.exp((d / rad - 1.0) / 0.12))

    assert s[h, w] == pytest.approx(logistic(0.0), abs=1e-9)  # 0.99976
    assert s[h + 4, w] == pytest.approx(0.5, abs=1e-9)
    assert s[h - 5, w] == pytest.approx(logistic(5.0), abs=1e-9)  # 0.1107
    np.testing.assert_allclose(s, s[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(s, s[::-1, :], atol=1e-12)


def test_deposit_patch_is_round_on_the_sphere():
    """A column offset of k pixels is k·cos(lat) row pixels on the sphere: the 0.5 outline lies r/cos(lat)
    columns from the centre (the window, ceil(1.6 r / cos lat) + 1 columns, is sized for that)."""
    lat, lon = geo.global_grid(1)
    r0, c0, rad = 29, 100, 4.0  # lat 60.5°: outline at 4/cos(60.5°) = 8.12 columns
    s, _, _ = deposits._deposit_strength((180, 360), lat, lon, r0, c0, rad, _QuantileRng(qs=(0.0,)))
    h, w = 8, 14
    cl = np.cos(np.deg2rad(60.5))
    for k in (2, 8, 12):
        assert s[h, w + k] == pytest.approx(1.0 / (1.0 + np.exp((k * cl / rad - 1.0) / 0.12)), abs=1e-9)


def _toy_moon(mare_pixels=None, band=30.0):
    lat, lon = geo.global_grid(1)
    m0 = np.array([0.6, 0.1, 0.1, 0.05, 0.02, 0.13])
    mode = xr.DataArray(np.broadcast_to(m0[:, None, None], (6, 180, 360)).astype("float32"),
                        dims=("mineral", "lat", "lon"), coords={"mineral": list(MINERALS), "lat": lat, "lon": lon})
    mg = xr.DataArray(np.full((180, 360), 70.0, "float32"), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    ox = minerals.oxides_from_modes(mode, mg)
    if mare_pixels is None:
        mare = np.abs(lat)[:, None] < band
        mare = np.broadcast_to(mare, (180, 360)).copy()
    else:
        mare = np.zeros((180, 360), bool)
        for i, j in mare_pixels:
            mare[i, j] = True
    ds = xr.Dataset({"mode": mode, "silicate_mg_number": mg,
                     "maturity": (("lat", "lon"), np.full((180, 360), 0.9, "float32")),
                     "mare": (("lat", "lon"), mare)})
    for n in minerals.OXIDES:
        ds[n] = ox[n]
    ds["mg_number"] = ox["mg_number"]
    return ds, m0


def test_one_planted_deposit_mixes_ground_and_maturity_by_the_documented_recipe():
    """At strength s: ilmenite +s·max(target − ground, 0.02), glass +s·glass_added, the ground scaled by
    1 − both; maturity ·(1 − s·(1 − factor)); npFe⁰ = 0.043·FeO·maturity; deposit = s > 0.5."""
    moon, m0 = _toy_moon(mare_pixels=[(79, 200)])  # lat 10.5, lon 20.5
    out = deposits.plant_deposits(moon, n=1, seed=0, radius_px=(3.0, 3.0), mare_fraction=1.0, reflectance=False)
    (rec,) = deposits.deposit_records(out)
    assert (rec["lat"], rec["lon"]) == (10.5, 20.5)
    s = out["deposit_strength"].values.astype(float)
    assert np.unravel_index(np.argmax(s), s.shape) == (79, 200) and 0.79 < s.max() <= 1.0
    d_ilm = s * max(rec["ilmenite_target"] - m0[4], 0.02)
    d_gl = s * rec["glass_added"]
    want = m0[:, None, None] * (1 - d_ilm - d_gl)[None]
    want[4] += d_ilm
    want[5] += d_gl
    np.testing.assert_allclose(out["mode"].values, want, atol=2e-6)
    mat = 0.9 * (1 - s * (1 - rec["maturity_factor"]))
    np.testing.assert_allclose(out["maturity"].values, mat, atol=2e-6)
    ox = minerals.oxides_from_modes(out["mode"], moon["silicate_mg_number"])
    np.testing.assert_allclose(out["TiO2"].values, ox["TiO2"].values, rtol=1e-5)
    np.testing.assert_allclose(out["npfe"].values, 0.043 * ox["FeO"].values * mat, rtol=1e-4)
    np.testing.assert_array_equal(out["deposit"].values, s > 0.5)
    assert 0 < out["deposit"].values.sum() < (s > 0.1).sum()


def test_overlapping_deposits_keep_the_stronger_and_centres_follow_the_pools():
    moon, _ = _toy_moon(mare_pixels=[(79, 200)])
    kw = dict(seed=2, radius_px=(1.0, 6.0), mare_fraction=1.0, reflectance=False)
    one = deposits.plant_deposits(moon, n=1, **kw)["deposit_strength"].values
    two = deposits.plant_deposits(moon, n=3, **kw)
    assert (two["deposit_strength"].values >= one).all()
    assert all((r["lat"], r["lon"]) == (10.5, 20.5) for r in deposits.deposit_records(two))
    anywhere = deposits.plant_deposits(moon, n=20, seed=1, radius_px=(1.0, 2.0), mare_fraction=0.0,
                                      max_abs_lat=10.0, reflectance=False)
    recs = deposits.deposit_records(anywhere)
    assert all(abs(r["lat"]) <= 10.0 for r in recs) and any((r["lat"], r["lon"]) != (10.5, 20.5) for r in recs)


def test_deposit_radii_are_log_uniform():
    moon, _ = _toy_moon()
    recs = deposits.deposit_records(deposits.plant_deposits(moon, n=200, seed=0, radius_px=(1.0, 16.0),
                                                            reflectance=False))
    r = np.array([x["radius_px"] for x in recs])
    assert r.min() >= 1.0 and r.max() <= 16.0
    assert 3.0 < np.median(r) < 5.5  # log-uniform median sqrt(1·16) = 4; a uniform one would be 8.5


def test_ilmenite_plus_glass_of_exactly_one_is_refused():
    moon, _ = _toy_moon()
    with pytest.raises(InputError, match="must stay below 1"):
        deposits.plant_deposits(moon, n=1, ilmenite_target=(0.5, 0.5), glass_added=(0.5, 0.5), reflectance=False)


# ------------------------------------------------------------------------------------------------------
# spectral library prior and layout
# ------------------------------------------------------------------------------------------------------
class _PriorRng(_QuantileRng):
    """Stub for _prior_cells: row 0 pure highland, row 1 half highland half mare; plagioclase +1σ."""

    def __init__(self):
        super().__init__(qs=(0.5, 0.5))
        self.calls = {}

    def dirichlet(self, alpha, size=None):
        self.calls["dirichlet"] = np.asarray(alpha, float)
        return np.array([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])

    def standard_normal(self, shape):
        z = np.zeros(shape)
        z[:, 0] = 1.0
        return z

    def beta(self, a, b, size=None):
        self.calls["beta"] = (a, b)
        return np.full(size, 0.2)


def test_library_prior_known_answers():
    """Mare TiO2 log-uniform 0.5–14 (midpoint sqrt(7) wt%) → ilmenite TiO2/53.5·0.85, each end-member
    normalised, Dirichlet concentration 0.2, log-normal factor σ = 0.35, Mg# uniform 30–88,
    maturity 1 − 0.95·B with B ~ Beta(1, 4)."""
    rng = _PriorRng()
    modes, mg, mat = library._prior_cells(2, rng)
    fh = np.array([0.75, 0.09, 0.035, 0.03, 0.005, 0.09])
    mare = np.array([0.29, 0.12, 0.30, 0.06, np.sqrt(7.0) / 53.5 * 0.85, 0.19])
    mare /= mare.sum()
    for row, mix in ((0, fh), (1, 0.5 * fh + 0.5 * mare)):
        want = mix * np.array([np.exp(0.35), 1, 1, 1, 1, 1])
        np.testing.assert_allclose(modes[row], want / want.sum(), rtol=1e-9)
    np.testing.assert_allclose(mg, 59.0)
    np.testing.assert_allclose(mat, 1 - 0.95 * 0.2)
    np.testing.assert_allclose(rng.calls["dirichlet"], [0.2] * 5)
    assert rng.calls["beta"] == (1.0, 4.0)


def test_library_prior_statistics():
    modes, mg, mat = library._prior_cells(20000, np.random.default_rng(0))
    np.testing.assert_allclose(modes.sum(axis=1), 1.0, atol=1e-12)
    assert mg.min() >= 30.0 and mg.max() <= 88.0 and mg.max() > 87.5
    assert mat.mean() == pytest.approx(0.81, abs=0.005)  # E[1 − 0.95·Beta(1, 4)] = 1 − 0.95/5


def test_library_pixels_hold_the_cells_at_knots_and_bilinear_mixtures_between(monkeypatch):
    def cells(n, rng):
        fh = np.array([0.75, 0.09, 0.035, 0.03, 0.005, 0.09])
        return np.tile(fh, (n, 1)), 30.0 + 2.0 * np.arange(n), 0.2 + 0.7 * np.arange(n) / n

    monkeypatch.setattr(library, "_prior_cells", cells)
    lib = library.spectral_library((16, 24), cell=8, seed=0)
    gx = 24 // 8 + 2  # cells per row of the cell grid
    _, mg, mat = cells(4 * gx, None)
    for i, j in ((0, 0), (0, 1), (1, 2), (1, 0)):
        assert float(lib["silicate_mg_number"][8 * i, 8 * j]) == pytest.approx(mg[i * gx + j], abs=1e-4)
        assert float(lib["maturity"][8 * i, 8 * j]) == pytest.approx(mat[i * gx + j], abs=1e-6)
    mid = 0.25 * (mat[0] + mat[1] + mat[gx] + mat[gx + 1])
    assert float(lib["maturity"][4, 4]) == pytest.approx(mid, abs=1e-6)
    np.testing.assert_allclose(lib["npfe"], 0.043 * lib["FeO"] * lib["maturity"], rtol=1e-5)


# ------------------------------------------------------------------------------------------------------
# bench metrics: Lucey (2000) and the reality check on in-memory stand-ins
# ------------------------------------------------------------------------------------------------------
def test_lucey2000_known_answers():
    """θFe = −atan((R950/R750 − 1.19)/(R750 − 0.08)), FeO = 17.427 θ − 7.565; θTi = atan((R415/R750 − 0.42)/R750),
    TiO2 = 3.708 θ^5.979 (0 for θ < 0)."""
    from workbench.inversion.baselines import lucey_feo, lucey_tio2  # what the reality check uses

    r415, r750, r950 = np.array([0.108, 0.108, 0.054]), np.array([0.18, 0.18, 0.18]), np.array([0.1962, 0.2142, 0.1962])
    feo, tio2 = lucey_feo(r750, r950), lucey_tio2(r415, r750)
    np.testing.assert_allclose(feo, [6.122134, -7.565, 6.122134], atol=1e-5)  # θ = π/4, 0, π/4
    np.testing.assert_allclose(tio2, [0.874746, 0.874746, 0.0], atol=1e-5)  # θ = π/4, π/4, < 0


def test_trend_is_slope_then_intercept_of_y_on_x():
    assert bench._trend([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]) == (2.0, 1.0)


def _lucey(r415, r750, r950):
    th_fe = -np.arctan((r950 / r750 - 1.19) / (r750 - 0.08))
    th_ti = np.arctan((r415 / r750 - 0.42) / r750)
    return 17.427 * th_fe - 7.565, 3.708 * np.maximum(th_ti, 0) ** 5.979


def test_reality_check_figures_on_known_inputs():
    from workbench.synth.instruments import resample_to_instrument
    from workbench.synth.spectra import reflectance_from_modes

    lat, lon = geo.global_grid(1)
    comp = {"A": (np.array([0.3, 0.12, 0.28, 0.05, 0.1, 0.15]), 45.0, 0.5),  # high-Ti mare, north of 60°
            "B": (np.array([0.75, 0.09, 0.035, 0.03, 0.005, 0.09]), 66.0, 0.15)}  # highland elsewhere
    north = np.broadcast_to((lat > 60)[:, None], (180, 360))
    mode = np.where(north[None], comp["A"][0][:, None, None], comp["B"][0][:, None, None])
    mg = np.where(north, comp["A"][1], comp["B"][1])
    npfe = np.where(north, comp["A"][2], comp["B"][2])
    c = {"lat": lat, "lon": lon}
    moon = xr.Dataset({"mode": (("mineral", "lat", "lon"), mode.astype("float32")),
                       "silicate_mg_number": (("lat", "lon"), mg.astype("float32")),
                       "npfe": (("lat", "lon"), npfe.astype("float32"))}, coords={**c, "mineral": list(MINERALS)})
    ox = minerals.oxides_from_modes(moon["mode"], moon["silicate_mg_number"])
    moon["FeO"], moon["TiO2"] = ox["FeO"], ox["TiO2"]
    bands, feo, tio2 = {}, {}, {}
    for k, (m, g, n) in comp.items():
        md = xr.DataArray(m.astype("float32"), dims="mineral", coords={"mineral": list(MINERALS)})
        refl = reflectance_from_modes(md.expand_dims(p=1), xr.DataArray([g], dims="p"), xr.DataArray([n], dims="p"))
        b = resample_to_instrument(refl, "clementine_uvvis").compute()
        bands[k] = {str(name): float(b.sel(band=name)[0]) for name in b["band"].values}
        o = minerals.oxides_from_modes(md, xr.DataArray(float(np.float32(g))))
        feo[k], tio2[k] = float(np.float32(o["FeO"])), float(np.float32(o["TiO2"]))
    assert feo["A"] > 13 and feo["B"] + 3 < 13 and 7 < feo["B"] + 3 and feo["B"] < 7
    rows = [dict(bands["A"], FeO_wt_pct=feo["A"], TiO2_wt_pct=tio2["A"]),
            dict(bands["B"], FeO_wt_pct=feo["B"], TiO2_wt_pct=tio2["B"]),
            dict({b: 1.1 * v for b, v in bands["B"].items()}, FeO_wt_pct=feo["B"] + 3.0, TiO2_wt_pct=tio2["B"] + 4.0)]
    st = pd.DataFrame(rows)
    out = bench.reality_check(moon, st, n_pixels=4000, seed=0)

    assert out["matched_composition_distance_wt_pct"] == pytest.approx(5.0 / 3.0, abs=2e-3)  # 0, 0 and 3-4-5
    for b in bands["B"]:
        assert out["matched_band_rmse"][b] == pytest.approx(np.sqrt((0.1 * bands["B"][b]) ** 2 / 3), abs=1e-4)
    f, t = _lucey(st["R415"].to_numpy(), st["R750"].to_numpy(), st["R950"].to_numpy())
    real = out["real"]
    assert real["n"] == 3
    assert real["lucey_feo_rmse"] == pytest.approx(np.sqrt(np.mean((f - st["FeO_wt_pct"]) ** 2)), abs=1e-3)
    assert real["lucey_tio2_rmse"] == pytest.approx(np.sqrt(np.mean((t - st["TiO2_wt_pct"]) ** 2)), abs=1e-3)
    assert real["lucey_tio2_rmse_mare"] == pytest.approx(abs(t[0] - tio2["A"]), abs=1e-3)  # FeO > 13: station A
    assert real["r750_low_feo_p5_p95"] == [round(bands["B"]["R750"], 4)] * 2  # FeO < 7: station B only
    assert real["r750_high_feo_p5_p95"] == [round(bands["A"]["R750"], 4)] * 2
    r750 = st["R750"].to_numpy()
    for key, y in (("trend_r415_r750_vs_r750", st["R415"] / st["R750"]),
                   ("trend_r950_r750_vs_r750", st["R950"] / st["R750"])):
        slope, icpt = np.polyfit(r750, y.to_numpy(), 1)
        assert real[key] == (round(float(slope), 3), round(float(icpt), 3))
    syn = out["synthetic"]
    assert syn["n"] == 4000
    # area-uniform sampling within ±70°: (sin 70° − sin 60°)/(2 sin 70°) = 3.9 % of the pixels are A, so the
    # 5th and 95th percentiles of every band ratio are B's (uniform-in-latitude sampling would give 7.1 %)
    ratio_b = round(bands["B"]["R415"] / bands["B"]["R750"], 3)
    assert syn["r415_r750_p5_p95"] == [ratio_b, ratio_b]
    fb, _ = _lucey(bands["B"]["R415"], bands["B"]["R750"], bands["B"]["R950"])
    fa, _ = _lucey(bands["A"]["R415"], bands["A"]["R750"], bands["A"]["R950"])
    frac_a = (syn["lucey_feo_rmse"] ** 2 - (fb - feo["B"]) ** 2) / ((fa - feo["A"]) ** 2 - (fb - feo["B"]) ** 2)
    assert 0.025 < frac_a < 0.055  # rmse² = f_A·err_A² + (1 − f_A)·err_B², f_A ≈ 0.039
