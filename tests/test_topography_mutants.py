"""Known-answer tests from a mutation review of the topography package (model, tiles, net, train, bench and
the notebook 03 widget's compute functions).

Each test pins a number a user would see (a height, a weight, an RMSE, a slope error, a ratio, a pixel size)
to a value worked out by hand or to an exact invariance, so that a single wrong sign, unit, resolution or
convention in the code makes it fail. Every input is tiny and seeded; nothing is trained beyond a few steps
of a width-4 network on 16-pixel tiles, and the network is replaced by a U-Net whose learned correction
is zeroed (its output is then exactly the coarse-DEM skip, ``Z_SCALE * x[3]``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from workbench.errors import CheckpointError
from workbench.synth.render import render

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _zero_correction_net(width: int = 2):
    """A TopoUNet whose head is zeroed: its output is 16 · channel 3 = the tile's coarse relief in pixels."""
    import torch

    from workbench.topography.net import TopoUNet

    torch.manual_seed(0)
    net = TopoUNet(width=width).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    return net


def _smooth_dem(ny: int, nx: int, ps: float) -> np.ndarray:
    """Gentle bumps on a tilt (metres): slopes under 20°, so a 30° sun casts no shadows."""
    y, x = np.mgrid[0:ny, 0:nx] * ps
    return 300.0 + 0.2 * x - 0.1 * y + 6.0 * np.sin(x / 23.0) * np.cos(y / 31.0)


def _north_up(a: np.ndarray, ps: float) -> xr.DataArray:
    ny, nx = a.shape
    return xr.DataArray(a, dims=("y", "x"), coords={"y": (np.arange(ny)[::-1] + 0.5) * ps,
                                                     "x": (np.arange(nx) + 0.5) * ps})


# ----------------------------------------------------------------------------------- scale recovery, metrics
def test_lowpass_cuts_off_at_the_coarse_dems_nyquist():
    """σ = factor/2 = 4 px for an 8x coarser DEM: a sinusoid of 16 px (the coarse grid's Nyquist period) keeps
    exp(-2π²σ²f²) = exp(-π²/8) = 0.2912 of its amplitude (σ = 8 would keep exp(-π²/2) = 0.0072)."""
    from workbench.topography.model import lowpass

    x = np.arange(128)
    z = np.tile(np.sin(2 * np.pi * x / 16.0), (8, 1))
    out = lowpass(z, 8)
    mid = slice(40, 88)  # far from the reflecting borders
    gain = float((out[4, mid] * z[4, mid]).sum() / (z[4, mid] ** 2).sum())
    assert gain == pytest.approx(math.exp(-math.pi ** 2 / 8), abs=0.01)


def test_fit_fit_blend_and_blend_undo_a_wrong_scale_and_offset_exactly():
    """With a perfect coarse DEM (z_up = z) and relief h = 0.5 z + 7: the low-passes obey lh = 0.5 lz + 7, so the
    fitted scale is exactly 2 and "fit" (2h + mean lz - 2 mean lh) and "fit-blend" (lz + 2(h - lh)) both return
    z. "blend" returns z for h = z + 7 (lz + h - lh), but not for the half-scale h."""
    from workbench.topography.model import scale_recovery

    rng = np.random.default_rng(5)
    z = 50.0 * rng.normal(size=(40, 40)) + np.add.outer(np.arange(40.0), 2 * np.arange(40.0))
    h = 0.5 * z + 7.0
    for method in ("fit", "fit-blend"):
        np.testing.assert_allclose(scale_recovery(h, z, 8, method), z, rtol=0, atol=1e-8)
    np.testing.assert_allclose(scale_recovery(z + 7.0, z, 8, "blend"), z, rtol=0, atol=1e-8)
    assert np.abs(scale_recovery(h, z, 8, "blend") - z).max() > 10.0  # the blend keeps h's half-scale detail


def test_back_projection_applies_three_corrections():
    """Coarse DEM: a ±1 checkerboard (its Nyquist pattern); start from 0. The cubic-spline interpolant of (-1)^k has
    B-spline coefficients 3(-1)^k, and its mean over one coarse pixel is 3(0.59896 - 2·0.19792 + 2·0.00260) = 5/8;
    in 2-D, block mean after upsampling keeps (5/8)² = 0.39 of the pattern, so each correction leaves 0.609 of
    the misfit: 0.609³ = 0.226 after the three corrections (0.609 after one), away from the grid's edges."""
    from workbench.topography.model import backproject, downsample

    c = np.where(np.add.outer(np.arange(12), np.arange(12)) % 2 == 0, 1.0, -1.0)
    misfit = np.abs(c - downsample(backproject(np.zeros((96, 96)), c), 8))[3:-3, 3:-3]
    assert (1 - (5 / 8) ** 2) ** 3 == pytest.approx(0.2263, abs=1e-4)
    np.testing.assert_allclose(misfit, 0.2263, atol=0.03)


def test_area_downsample_averages_away_detail_when_the_sizes_do_not_divide():
    """A ±1 checkerboard averages to (almost) 0 over any 7.1 x 7.1 px coarse pixel (|mean| < 1/7.1² = 0.02);
    a point sample of it, without the anti-aliasing, is anything in [-1, 1]."""
    from workbench.topography.model import area_downsample

    cb = np.where(np.add.outer(np.arange(50), np.arange(50)) % 2 == 0, 1.0, -1.0)
    assert np.abs(area_downsample(cb, (7, 7))).max() < 0.05


def test_rmse_is_the_root_mean_square_over_the_finite_pixels():
    """Differences 3, -4, 0 and one NaN: sqrt((9 + 16 + 0) / 3) = 2.8868 (mean |d| would be 2.3333)."""
    from workbench.topography.model import rmse

    assert rmse(np.array([3.0, -4.0, 0.0, np.nan]), np.zeros(4)) == pytest.approx(math.sqrt(25 / 3), rel=1e-12)


def test_slope_uses_both_gradient_components():
    """z = 3 m per row + 4 m per column on 2 m pixels: gradients 1.5 and 2, rising hypot(1.5, 2) = 2.5 m per metre
    along the steepest direction, atan(2.5) = 68.199° (the x gradient alone would give atan 2 = 63.435°)."""
    from workbench.topography.model import slope_deg

    i, j = np.mgrid[0:6, 0:7]
    np.testing.assert_allclose(slope_deg(3.0 * i + 4.0 * j, 2.0), math.degrees(math.atan(2.5)), rtol=0, atol=1e-9)
    assert math.degrees(math.atan(2.5)) == pytest.approx(68.1986, abs=1e-4)


def test_slope_error_is_a_mean_absolute_difference():
    """Truth: slope 0.2 everywhere (11 px, 1 m pixels). Estimate: 0.1 on pixels 0-4, 0.3 on 6-10, and 0.2 at the
    kink (central difference (0.8 - 0.4)/2). Errors: 5 x (atan 0.1 - atan 0.2) = 5 x -5.5993°, 0, and
    5 x (atan 0.3 - atan 0.2) = 5 x 5.3893°; mean |error| = 5 x 10.9887 / 11 = 4.9948° (the signed mean, -0.0955°,
    would hide them)."""
    from workbench.topography.model import slope_error_deg

    i = np.arange(11.0)
    est = np.where(i <= 5, 0.1 * i, 0.5 + 0.3 * (i - 5))
    truth = 0.2 * i
    two_rows = np.vstack([est, est]), np.vstack([truth, truth])  # identical rows: no slope along y
    a1, a2, a3 = (math.degrees(math.atan(s)) for s in (0.1, 0.2, 0.3))
    expected = 5 * ((a2 - a1) + (a3 - a2)) / 11
    assert expected == pytest.approx(4.9948, abs=1e-4)
    assert slope_error_deg(*two_rows, 1.0) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------------------ tiles
def test_two_tiles_cross_fade_with_raised_cosine_weights():
    """20 px wide, tile 12, overlap 4: tiles start at 0 and 8 and overlap on columns 8-11. The first tile's end
    ramp and the second's start ramp are sin²(π(k + ½)/8) and its mirror, which sum to 1, so tiles returning 0
    and 1 blend to 0 on 0-7, [0.0381, 0.3087, 0.6913, 0.9619] on 8-11 and 1 on 12-19 (rows: one untapered tile)."""
    from workbench.topography.tiles import blend_tiles, tile_starts

    assert tile_starts(20, 12, 4) == [0, 8]
    out = blend_tiles(lambda win: np.full((win[0].stop - win[0].start, win[1].stop - win[1].start),
                                          float(win[1].start > 0)), (8, 20), tile=12, overlap=4)
    fade = np.sin(np.pi * (np.arange(4) + 0.5) / 8) ** 2
    np.testing.assert_allclose(fade, [0.0381, 0.3087, 0.6913, 0.9619], atol=1e-4)
    expected = np.r_[np.zeros(8), fade, np.ones(8)]
    np.testing.assert_allclose(out, np.tile(expected, (8, 1)), rtol=0, atol=1e-12)


# -------------------------------------------------------------------------------------- network inputs
def test_a_network_with_no_correction_returns_the_coarse_dem_through_tiles_and_views():
    """The zero-correction network outputs each tile's coarse relief in pixels minus the tile's mean; network_relief
    must add the mean back, average (not sum) the eight views, turn them back and convert to metres: the
    answer is z_up itself, over six overlapping tiles of different mean heights."""
    from workbench.topography.model import network_relief

    net, ps = _zero_correction_net(), 5.0
    z_up = _smooth_dem(40, 52, ps)
    img = render(z_up, 120.0, 30.0, pixel_size=ps).values
    h = network_relief(img, z_up, ps, 120.0, 30.0, net=net, tile=24, overlap=8, views=8, precision="float32")
    np.testing.assert_allclose(h, z_up, rtol=0, atol=2e-3)


def test_the_unet_takes_tiles_whose_sides_are_not_multiples_of_8():
    """A 21 x 30 tile is padded to 24 x 32 inside the U-Net and cropped back; the zero-correction network returns
    16 · channel 3 exactly."""
    import torch

    net = _zero_correction_net()
    x = torch.randn(1, 9, 21, 30, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = net(x)
    assert out.shape == (1, 1, 21, 30)
    torch.testing.assert_close(out, 16.0 * x[:, 3:4], rtol=0, atol=1e-6)


def test_the_network_sees_no_departure_when_the_image_is_the_coarse_dems_rendering(monkeypatch):
    """Channel 2 is the coarse DEM rendered under the same sun and pixel size: for an image that *is* that
    rendering it equals channel 0. The sun channels for azimuth 90° (east), elevation 30° are
    (cos 30°, 0, sin 30°) = (0.8660, 0, 0.5)."""
    import workbench.topography.net as tn
    from workbench.topography.model import network_relief

    seen = []
    real = tn.features
    monkeypatch.setattr(tn, "features", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    ps = 5.0
    z_up = _smooth_dem(32, 32, ps)
    img = render(z_up, 90.0, 30.0, pixel_size=ps).values
    network_relief(img, z_up, ps, 90.0, 30.0, net=_zero_correction_net(), views=1, precision="float32")
    (x,) = seen
    assert np.ptp(x[0]) > 0.1  # the image has relief shading to compare
    np.testing.assert_allclose(x[2], x[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(x[4:7, 0, 0], [math.cos(math.radians(30)), 0.0, 0.5], atol=1e-6)


def test_features_do_not_depend_on_the_exposure():
    """Brightness channels are divided by their own lit level: an image 3.7x brighter (another exposure or albedo)
    gives the same network inputs; the coarse rendering's normalisation does not follow the image's."""
    from workbench.synth.terrain import make_terrain
    from workbench.topography.net import features

    z = make_terrain(48, 5.0, seed=7).values
    img = render(z, 200.0, 10.0, pixel_size=5.0).values
    shading = render(z + 0.5 * np.arange(48.0), 200.0, 10.0, pixel_size=5.0).values
    a = features(img, z / 5.0, shading, 200.0, 10.0)
    b = features(3.7 * img, z / 5.0, shading, 200.0, 10.0)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


def test_shadow_channels_are_run_lengths_times_the_tangent_of_the_sun():
    """A 4-pixel shadow with the sun in the west (270°) at 30°: steps to the caster 1, 2, 3, 4 going east and to the
    far end 4, 3, 2, 1; the ray drops tan 30° = 0.57735 px per step, so channel 7 is [0.5774, 1.1547, 1.7321,
    2.3094] and channel 8 the reverse."""
    from workbench.topography.net import features

    img = np.ones((11, 11))
    img[5, 3:7] = 0.0
    x = features(img, np.zeros((11, 11)), img, 270.0, 30.0)
    t = math.tan(math.radians(30))
    np.testing.assert_allclose(x[7, 5, 3:7], t * np.array([1, 2, 3, 4]), atol=1e-5)
    np.testing.assert_allclose(x[8, 5, 3:7], t * np.array([4, 3, 2, 1]), atol=1e-5)
    assert x[7].sum() == pytest.approx(10 * t, abs=1e-4) and x[8].sum() == pytest.approx(10 * t, abs=1e-4)


# ------------------------------------------------------------------------------------------ reconstruct
def test_reconstruct_uses_the_requested_scale_recovery(monkeypatch):
    """With the zero-correction network the relief h is exactly z_up, so scale_method="none" returns the bicubic
    upsampling (back-projection, the default, would move it towards the block means)."""
    import workbench.topography.model as tm

    net = _zero_correction_net()
    monkeypatch.setattr(tm, "load_network", lambda path=None: (net, {"name": "zero", "sha256": ""}))
    coarse = np.random.default_rng(2).normal(300.0, 40.0, (4, 4))
    z_up = tm.upsample(coarse, (32, 32))
    img = render(z_up, 45.0, 30.0, pixel_size=5.0).values
    kw = dict(method="network", pixel_size=5.0, views=1, precision="float32")
    none = tm.reconstruct(img, coarse, 45.0, 30.0, scale_method="none", **kw)
    assert none.attrs["scale_recovery"] == "none"
    np.testing.assert_allclose(none.values, z_up, rtol=0, atol=2e-3)
    back = tm.reconstruct(img, coarse, 45.0, 30.0, **kw)
    assert back.attrs["scale_recovery"] == "backproject" and np.abs(back.values - z_up).max() > 1.0


def test_an_x_y_image_reads_an_ndarray_dem_in_its_own_storage_order():
    """A (x, y) image DataArray with a plain-array DEM stored the same way (x first) is the (y, x) problem
    transposed: the answer is the (y, x) answer, transposed."""
    from workbench.topography.model import reconstruct

    coarse = np.random.default_rng(3).normal(100.0, 20.0, (4, 4))
    img = _north_up(np.random.default_rng(4).uniform(0.1, 0.3, (32, 32)), 5.0)
    ref = reconstruct(img, coarse, 45.0, 20.0, method="upsample")
    out = reconstruct(img.T, coarse.T, 45.0, 20.0, method="upsample")
    assert out.dims == ("x", "y")
    np.testing.assert_allclose(out.T.values, ref.values, rtol=0, atol=1e-9)


def test_weights_whose_sha256_disagrees_with_their_record_are_refused(tmp_path):
    """The record's sha256 guards against weights rewritten (or swapped) beside an old record."""
    import json

    import torch

    from workbench.io import sha256_file
    from workbench.topography.model import load_network

    net = _zero_correction_net()
    pt, js = tmp_path / "w.pt", tmp_path / "w.json"
    torch.save({"_config": net.config, **net.state_dict()}, pt)
    load_network.cache_clear()
    try:
        js.write_text(json.dumps({"sha256": "0" * 64}))
        with pytest.raises(CheckpointError, match="does not match its record"):
            load_network(str(pt))
        js.write_text(json.dumps({"sha256": sha256_file(pt), "name": "w"}))
        _, record = load_network(str(pt))
        assert record["name"] == "w"
    finally:
        load_network.cache_clear()


# ------------------------------------------------------------------------------------------------ training
def test_training_pairs_are_in_pixel_units():
    """Heights and pixel size scaled together (2.5 z on 2.5x larger pixels) are the same slopes, image and
    shadows: the network's inputs and its target (relief / pixel size) must not change."""
    from workbench.synth.terrain import make_terrain
    from workbench.topography.train import make_pair

    z = make_terrain(32, 4.0, seed=3).values
    _, ca, xa, ta = make_pair(z, 4.0, 100.0, 20.0, np.random.default_rng(1))
    _, cb, xb, tb = make_pair(2.5 * z, 10.0, 100.0, 20.0, np.random.default_rng(1))
    np.testing.assert_allclose(cb, 2.5 * ca, rtol=1e-12)
    np.testing.assert_allclose(xb, xa, rtol=0, atol=1e-5)
    np.testing.assert_allclose(tb, ta, rtol=0, atol=1e-4)


def test_sun_elevations_are_drawn_log_uniformly():
    """Log-uniform on [1°, 60°]: half the draws fall below the geometric mean √60 = 7.746° (a uniform draw would
    put 6.746/59 = 11 % there); azimuths cover the whole circle."""
    from workbench.topography.train import sample_sun

    rng = np.random.default_rng(0)
    az, el = np.array([sample_sun(rng) for _ in range(4000)]).T
    assert el.min() >= 1.0 and el.max() <= 60.0
    assert (el < math.sqrt(60.0)).mean() == pytest.approx(0.5, abs=0.03)
    assert az.min() < 5.0 and az.max() > 355.0


def test_global_dem_crops_are_in_metres_and_stay_within_60_degrees(monkeypatch):
    """A 4 px/deg global grid (0.25° rows) has pixels of 1737.4 km x π/720 = 7580.84 m, and every crop must come
    from the rows with |lat| < 60° (here the DEM's values are the latitudes, so a crop shows where it came from)."""
    import workbench.catalog
    from workbench.topography.train import real_crops

    lat = 89.875 - 0.25 * np.arange(720)
    glob = xr.Dataset({"elevation": (("lat", "lon"), np.repeat(lat[:, None], 64, axis=1))},
                      coords={"lat": lat, "lon": 0.125 + 0.25 * np.arange(64)})
    monkeypatch.setattr(workbench.catalog, "open_dataset", lambda name, **kw: glob)
    crops = real_crops(40, 16, np.random.default_rng(0), north_fraction=0.0)
    assert len(crops) == 40
    assert all(ps == pytest.approx(1737400.0 * math.pi / 720, rel=1e-9) for _, ps in crops)
    assert 1737400.0 * math.pi / 720 == pytest.approx(7580.84, abs=0.01)
    assert max(float(np.abs(t).max()) for t, _ in crops) < 60.0


def test_training_mirrors_turn_the_sun_with_the_tile(tmp_path, monkeypatch):
    """The training's flips must be views the network could see: an east-west mirror negates the sun's east
    component, a north-south mirror its north component. Every training batch sample must equal a dataset sample,
    or its view_features mirror (0 turns) or mirror + half turn (= north-south flip)."""
    import workbench.topography.train as T
    from workbench.topography.net import TopoUNet, view_features

    monkeypatch.setattr(T, "validate", lambda net, **kw: {"upsample": 1.0, "raw": 1.0})
    data, batches = [], []
    real_build, real_forward = T.build_dataset, TopoUNet.forward
    monkeypatch.setattr(T, "build_dataset", lambda *a, **k: data.append(real_build(*a, **k)) or data[-1])

    def spy(self, x):
        if self.training:
            batches.append(x.detach().numpy().copy())
        return real_forward(self, x)

    monkeypatch.setattr(TopoUNet, "forward", spy)
    args = ["--n-proc", "2", "--n-real", "0", "--renders", "2", "--size", "16", "--batch", "2", "--width", "4",
            "--threads", "1", "--steps", "12", "--out", str(tmp_path / "w.pt")]
    assert T.main(args) == 0
    X = data[0][0]
    kinds = {"same": [x for x in X], "east-west": [view_features(x, 0, True) for x in X],
             "north-south": [view_features(x, 2, True) for x in X]}
    seen = set()
    for xb in (s for b in batches for s in b):
        match = [k for k, cands in kinds.items() if any(np.array_equal(xb, c) for c in cands)]
        assert match, "a training sample is no view of the dataset (sun not turned with the flip)"
        seen.update(match)
    assert seen == set(kinds)  # both mirrors were exercised


# ------------------------------------------------------------------------------------------------ benchmark
def test_bench_scores_the_network_after_scale_recovery_and_divides_by_sfs(monkeypatch):
    """Flat 100 m tile. A fake network returns truth + a ±2 m checkerboard + 5 m (block means off by exactly 5),
    a fake SfS adds 1 m to its start. Back-projection removes the 5 m: network RMSE 2, raw ("none")
    sqrt(4 + 25) = 5.3852, SfS 1, network + SfS sqrt((3² + 1²)/2) = 2.2361, upsampling 0; network / SfS = 2."""
    import workbench.topography.model as tm
    import workbench.topography.sfs as ts
    from workbench.topography.bench import ELEVATIONS, evaluate

    z = np.full((16, 16), 100.0)
    cb = 2.0 * np.where(np.add.outer(np.arange(16), np.arange(16)) % 2 == 0, 1.0, -1.0)
    monkeypatch.setattr(tm, "network_relief", lambda img, z_up, ps, az, el, **kw: z + cb + 5.0)
    monkeypatch.setattr(ts, "sfs", lambda img, z0, ps, az, el, **kw: z0 + 1.0)
    ev = evaluate([(z, 5.0)], seed=0)
    keys = [f"{e:g}" for e in ELEVATIONS]
    expected = {"network": 2.0, "sfs": 1.0, "upsample": 0.0, "network_sfs": round(math.sqrt(5.0), 4)}
    for m, v in expected.items():
        assert ev["rmse"][m] == {k: pytest.approx(v, abs=1e-4) for k in keys}, m
    assert ev["scale_recovery"]["none"] == {k: pytest.approx(round(math.sqrt(29.0), 4), abs=1e-4) for k in keys}
    assert ev["ratio"] == {k: pytest.approx(2.0, rel=1e-9) for k in keys}
    assert ev["single_view"] == {k: pytest.approx(2.0, abs=1e-4) for k in keys}


def test_the_low_sun_target_includes_the_5_degree_sun():
    """"network ≤ 0.6 SfS at sun ≤ 5°" must look at 2° and 5°: a ratio of 0.65 at 5° fails it."""
    from workbench.topography.bench import _targets

    keys = ("2", "5", "15", "30")
    rmse_m = {m: {k: 1.0 for k in keys} for m in ("network", "sfs", "network_sfs")}
    rmse_m["upsample"] = {k: 2.0 for k in keys}
    res = _targets(rmse_m, {}, {"2": 0.5, "5": 0.65, "15": 0.4, "30": 0.4})
    assert res["network_le_0.6_sfs_at_le_5deg"] is False
    assert _targets(rmse_m, {}, {"2": 0.5, "5": 0.6, "15": 0.9, "30": 0.9})["network_le_0.6_sfs_at_le_5deg"] is True


# ------------------------------------------------------------------------------------------------ widget
def _scene(values: np.ndarray, ps: float = 5.0, factor: int = 8):
    from workbench.widgets.topography import Scene

    return Scene(_north_up(values, ps), None, factor)


def test_the_widgets_network_sfs_polishes_the_network_dem_under_the_states_sun(monkeypatch):
    """reconstruct_all: each method gets the state's sun and the scene's pixel size, and "network_sfs" is SfS
    started from the network's DEM (a fake SfS that adds 0.5 m shows where it started)."""
    import workbench.topography.sfs as ts
    import workbench.widgets.topography as W

    calls = []
    code = {"upsample": 1.0, "network": 2.0, "sfs": 3.0}

    def fake(img, coarse, az, el, method, pixel_size):
        calls.append((az, el, method, pixel_size))
        return xr.DataArray(np.full(img.shape, code[method]))

    monkeypatch.setattr(W, "reconstruct", fake)
    monkeypatch.setattr(ts, "sfs", lambda img, z0, ps, az, el, **kw: np.asarray(z0) + 0.5)
    scene = _scene(_smooth_dem(16, 16, 5.0))
    img, out = W.reconstruct_all(scene, W.TopographyState(sun_azimuth=200.0, sun_elevation=12.0, run_sfs=True))
    assert img.attrs["sun_elevation"] == 12.0
    assert sorted(calls) == sorted((200.0, 12.0, m, 5.0) for m in code)
    np.testing.assert_array_equal(out["network_sfs"], np.full((16, 16), 2.5))


def test_the_widgets_metrics_use_the_scene_pixel_size():
    """Truth flat; a plane rising 0.5 m per 5 m pixel (0.1 x) has slope atan 0.1 = 5.7106° everywhere, and RMSE
    0.25 sqrt(mean((2i + 1)²), i < 16) = 0.25 sqrt(5456 / 16) = 4.6165 m."""
    from workbench.widgets.topography import reconstruction_metrics

    scene = _scene(np.zeros((16, 16)))
    plane = np.tile(0.1 * (np.arange(16) + 0.5) * 5.0, (16, 1))
    metrics, _ = reconstruction_metrics(scene, {"plane": plane})
    assert metrics["plane"]["slope_error_deg"] == pytest.approx(5.7106, abs=1e-4)
    assert metrics["plane"]["rmse_m"] == pytest.approx(0.25 * math.sqrt(5456 / 16), rel=1e-12)
    assert 0.25 * math.sqrt(5456 / 16) == pytest.approx(4.6165, abs=1e-4)


def test_the_sun_elevation_table_renders_the_image_on_the_coarse_dems_grid(monkeypatch):
    """A flat 32 x 32 DEM with one compact hill (radius 5 px) centred 8 px from the north-west corner, sun from
    the south-east at 45° (its 4 px shadow falls further north-west): every pixel the hill darkens or brightens
    lies in the north-west quadrant of the image handed to the reconstruction, where the coarse DEM's highest
    block is too."""
    import workbench.widgets.topography as W

    seen = []

    def fake(img, coarse, az, el, method, pixel_size):
        seen.append((img, coarse))
        return xr.DataArray(np.zeros(img.shape))

    monkeypatch.setattr(W, "reconstruct", fake)
    r2 = np.add.outer((np.arange(32) - 8.0) ** 2, (np.arange(32) - 8.0) ** 2)
    dem = _north_up(100.0 + 20.0 * np.clip(1 - r2 / 25.0, 0, None) ** 2, 5.0)
    W.sun_elevation_table(dem, sun_azimuth=135.0, elevations=(45.0,), methods=("upsample",))
    ((img, coarse),) = seen
    flat = float(np.median(img))
    rows, cols = np.nonzero(np.abs(img - flat) > 1e-6 * flat)
    assert rows.size > 20 and rows.max() < 16 and cols.max() < 16
    assert np.unravel_index(np.argmax(coarse), coarse.shape) == (1, 1)


def test_a_scene_averages_blocks_of_its_own_factor():
    """Values 16 i + j on a 16 x 16 grid, factor 4: the first block's mean is 16 x 1.5 + 1.5 = 25.5, the last
    16 x 13.5 + 13.5 = 229.5."""
    i, j = np.mgrid[0:16, 0:16]
    scene = _scene((16 * i + j).astype(float), factor=4)
    assert scene.coarse.shape == (4, 4)
    assert scene.coarse[0, 0] == 25.5 and scene.coarse[3, 3] == 229.5
