"""Tests of workbench.topography: tiling, scale recovery, SfS, reconstruct API and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.errors import InputError
from workbench.synth.render import render
from workbench.synth.terrain import make_terrain
from workbench.topography.model import (
    area_downsample,
    downsample,
    lowpass,
    reconstruct,
    rmse,
    scale_recovery,
    upsample,
    weights_paths,
)
from workbench.topography.sfs import sfs
from workbench.topography.tiles import blend_tiles, raised_cosine, tile_starts


def test_tiles_cover_and_blend_seamlessly():
    assert tile_starts(100, 40, 10) == [0, 30, 60]
    w = raised_cosine(40, 10)
    assert w[0] < 0.05 and w[20] == 1.0 and np.all(w > 0)
    rng = np.random.default_rng(0)
    field = rng.normal(size=(90, 130))
    out = blend_tiles(lambda win: field[win], field.shape, tile=32, overlap=8)
    np.testing.assert_allclose(out, field)  # identical tile outputs blend to the input exactly
    ones = blend_tiles(lambda win: np.ones((win[0].stop - win[0].start, win[1].stop - win[1].start)),
                       (70, 70), tile=32, overlap=8)
    np.testing.assert_allclose(ones, 1.0)


def test_upsample_downsample_roundtrip():
    c = np.arange(12.0).reshape(3, 4)
    up = upsample(c, (24, 32))
    assert up.shape == (24, 32)
    np.testing.assert_allclose(downsample(upsample(np.full((4, 4), 7.0), (32, 32)), 8), 7.0)
    # a linear ramp survives up- then down-sampling (away from the borders)
    ramp = np.add.outer(np.arange(8.0), np.arange(8.0)) * 10
    np.testing.assert_allclose(downsample(upsample(ramp, (64, 64)), 8)[2:-2, 2:-2], ramp[2:-2, 2:-2], atol=0.1)


@pytest.mark.parametrize("coarse_shape,shape", [((16, 16), (128, 128)), ((5, 7), (40, 56)), ((20, 30), (77, 115))])
def test_upsample_is_the_cubic_spline_of_map_coordinates(coarse_shape, shape):
    """The matrix-product upsampling equals scipy's 2-D cubic-spline interpolation at the fine pixel centres."""
    from scipy import ndimage

    c = np.random.default_rng(3).normal(size=coarse_shape) * 100
    yy = (np.arange(shape[0]) + 0.5) * coarse_shape[0] / shape[0] - 0.5
    xx = (np.arange(shape[1]) + 0.5) * coarse_shape[1] / shape[1] - 0.5
    ref = ndimage.map_coordinates(c, np.meshgrid(yy, xx, indexing="ij"), order=3, mode="nearest")
    np.testing.assert_allclose(upsample(c, shape), ref, atol=1e-9)


def test_scale_recovery_fit_recovers_scale_and_offset():
    z = make_terrain(128, 5.0, seed=1).values
    z_up = upsample(downsample(z, 8), z.shape)
    h = 0.5 * z - 300.0  # right shape, wrong vertical scale and offset
    fixed = scale_recovery(h, z_up, 8, "fit")
    assert rmse(fixed, z) < 0.25 * rmse(h, z)
    blended = scale_recovery(z, z_up, 8, "blend")  # a perfect network stays (almost) perfect
    assert rmse(blended, z) < 0.5 * rmse(z_up, z)
    assert np.allclose(lowpass(np.ones((16, 16)), 8), 1.0)
    with pytest.raises(InputError):
        scale_recovery(h, z_up, 8, "magic")


def test_backproject_matches_coarse_means_and_never_hurts():
    """Back-projection makes the block means equal the coarse DEM; since the truth has those block means,
    correcting a wrong offset/tilt in the low frequencies brings the result closer to the truth."""
    z = make_terrain(128, 5.0, seed=2).values
    c = downsample(z, 8)
    z_up = upsample(c, z.shape)
    ramp = np.add.outer(np.arange(128.0), np.zeros(128)) * 0.2
    h = z + 40.0 + ramp  # right detail, wrong offset and a spurious tilt
    fixed = scale_recovery(h, z_up, 8, "backproject", coarse=c)
    np.testing.assert_allclose(downsample(fixed, 8), c, atol=0.05 * float(np.std(c)))
    assert rmse(fixed, z) < 0.05 * rmse(h, z)
    assert rmse(scale_recovery(z, z_up, 8, "backproject", coarse=c), z) < 0.2 * rmse(z_up, z)  # perfect stays good
    with pytest.raises(InputError, match="coarse"):
        scale_recovery(h, z_up, 8, "backproject")
    odd = area_downsample(np.ones((50, 50)), (7, 7))  # sizes that do not divide: approximate block means
    np.testing.assert_allclose(odd, 1.0)


def test_sfs_improves_on_bicubic_at_moderate_sun():
    z = make_terrain(48, 5.0, seed=11, sfd_slope=1.8, saturation=0.4).values
    img = render(z, 120.0, 30.0, pixel_size=5.0).values
    z_up = upsample(downsample(z, 8), z.shape)
    z_sfs = sfs(img, z_up, 5.0, 120.0, 30.0, max_iter=40)
    assert rmse(z_sfs, z) < 0.9 * rmse(z_up, z)


def _pair(n=64, ps=5.0):
    z = make_terrain(n, ps, seed=3).values
    return render(z, 45.0, 20.0, pixel_size=ps).values, downsample(z, 8), z


def test_sfs_renderer_equals_render_on_a_tilted_plane_edges_included():
    import torch

    from workbench.topography.sfs import lunar_lambert_torch

    yy, xx = np.mgrid[0:10, 0:20]
    z = 0.3 * xx - 0.2 * yy  # a tilted plane, 1 m pixels
    a = lunar_lambert_torch(torch.tensor(z, dtype=torch.float64), 120.0, 30.0).numpy()
    b = render(z, 120.0, 30.0, pixel_size=1.0, shadows=False).values
    np.testing.assert_allclose(a, b, atol=1e-6)  # the same slope on the edge pixels as inside


def test_reconstruct_reads_a_south_up_grid_by_its_coordinates():
    img, coarse, z = _pair(48)
    ps = 5.0
    y, x = (np.arange(48)[::-1] + 0.5) * ps, (np.arange(48) + 0.5) * ps
    yc, xc = (np.arange(6)[::-1] + 0.5) * ps * 8, (np.arange(6) + 0.5) * ps * 8
    north = xr.DataArray(img, coords={"y": y, "x": x}, dims=("y", "x"))
    dem = xr.DataArray(coarse, coords={"y": yc, "x": xc}, dims=("y", "x"), attrs={"units": "m"})
    kw = dict(sun_azimuth=45.0, sun_elevation=20.0, method="sfs", max_iter=20)
    ref = reconstruct(north, dem, **kw)
    flipped = reconstruct(north.isel(y=slice(None, None, -1)), dem.isel(y=slice(None, None, -1)), **kw)
    assert (flipped["y"].values == y[::-1]).all()  # returned in the input's own order
    np.testing.assert_allclose(flipped.sel(y=y).values, ref.values, atol=1e-6)


def test_reconstruct_upsample_and_metadata():
    img, coarse, _ = _pair()
    out = reconstruct(img, coarse, 45.0, 20.0, method="upsample", pixel_size=5.0)
    assert out.shape == img.shape and out.attrs["units"] == "m" and out.attrs["method"] == "upsample"
    assert out.attrs["pixel_size"] == 5.0 and out.attrs["coarse_factor"] == 8.0
    # the result is exactly the cubic-spline upsampling of the coarse DEM (upsample itself is checked against
    # ndimage.map_coordinates above), row 0 north, on metre pixel centres
    np.testing.assert_allclose(out.values, upsample(coarse, img.shape), rtol=0, atol=1e-9)
    np.testing.assert_allclose(out["y"].values, (np.arange(64)[::-1] + 0.5) * 5.0)
    np.testing.assert_allclose(out["x"].values, (np.arange(64) + 0.5) * 5.0)


@pytest.mark.parametrize("el", [0.0, -1.0, 91.0])
def test_bad_sun_elevation(el):
    img, coarse, _ = _pair()
    with pytest.raises(InputError, match="elevation"):
        reconstruct(img, coarse, 45.0, el, method="upsample", pixel_size=5.0)


def test_bad_inputs_each_get_one_clear_error():
    img, coarse, _ = _pair()
    with pytest.raises(InputError, match="same extent"):
        reconstruct(img, coarse[:, :5], 45.0, 20.0, method="upsample", pixel_size=5.0)
    bad = img.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        reconstruct(bad, coarse, 45.0, 20.0, method="upsample", pixel_size=5.0)
    km = xr.DataArray(coarse / 1000, dims=("y", "x"), attrs={"units": "km"})
    with pytest.raises(InputError, match="metres"):
        reconstruct(img, km, 45.0, 20.0, method="upsample", pixel_size=5.0)
    with pytest.raises(InputError, match="pixel size"):
        reconstruct(img, coarse, 45.0, 20.0, method="upsample")
    # DataArrays whose coordinates cover different areas
    y = (np.arange(64)[::-1] + 0.5) * 5.0
    x = (np.arange(64) + 0.5) * 5.0
    a = xr.DataArray(img, dims=("y", "x"), coords={"y": y, "x": x})
    c = xr.DataArray(coarse, dims=("y", "x"), coords={"y": y[4::8] + 1000.0, "x": x[4::8]}, attrs={"units": "m"})
    with pytest.raises(InputError, match="extent"):
        reconstruct(a, c, 45.0, 20.0, method="upsample")


@pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
def test_network_reconstruction_runs_and_beats_nothing_silly():
    img, coarse, z = _pair(96, 4.0)
    out = reconstruct(img, coarse, 45.0, 20.0, method="network", pixel_size=4.0)
    assert out.shape == img.shape and np.all(np.isfinite(out.values))
    z_up = upsample(coarse, z.shape)
    # the network's DEM is 0.25 of the upsampling's RMSE on this tile (committed weights); the relief flipped
    # (2 z_up - h) gives 1.76, so a bound of 0.5 catches a wrong sign or scale of the relief
    assert rmse(out.values, z) < 0.5 * rmse(z_up, z)


def test_low_sun_weights_are_used_only_at_low_sun(tmp_path, monkeypatch):
    import workbench.topography.model as tm

    monkeypatch.setattr(tm, "WEIGHTS_DIR", tmp_path)
    assert tm.network_weights(2.0) is None  # no specialist there: the general weights
    pt = tmp_path / f"{tm.LOW_SUN_WEIGHTS_NAME}.pt"
    pt.write_bytes(b"")
    assert tm.network_weights(2.0) == str(pt) and tm.network_weights(tm.LOW_SUN_MAX_DEG) == str(pt)
    assert tm.network_weights(tm.LOW_SUN_MAX_DEG + 0.1) is None and tm.network_weights(30.0) is None


@pytest.mark.skipif(not weights_paths("topography_unet_lowsun")[0].exists(), reason="no low-sun weights committed")
def test_committed_low_sun_weights_are_used_at_low_sun():
    z = make_terrain(64, 5.0, seed=3).values
    coarse = downsample(z, 8)
    names = {}
    for el in (3.0, 20.0):
        img = render(z, 45.0, el, pixel_size=5.0).values
        out = reconstruct(img, coarse, 45.0, el, method="network", pixel_size=5.0)
        assert np.all(np.isfinite(out.values))
        names[el] = out.attrs["weights"]
    assert names == {3.0: "topography_unet_lowsun", 20.0: "topography_unet"}


def test_ratio_ci_brackets_the_ratio_and_narrows_with_more_tiles():
    from workbench.topography.bench import ratio_ci

    rng = np.random.default_rng(0)
    few, many = rng.normal(1.0, 0.3, 8).clip(0.1), rng.normal(1.0, 0.3, 200).clip(0.1)
    lo8, hi8 = ratio_ci(0.6 * few, few * rng.uniform(0.8, 1.2, 8))
    lo, hi = ratio_ci(0.6 * many, many * rng.uniform(0.8, 1.2, 200))
    assert lo < 0.6 < hi and lo8 < 0.6 < hi8 and (hi - lo) < (hi8 - lo8)


@pytest.mark.parametrize(("az", "axis", "caster_side"), [(270, 1, 0), (90, 1, 1), (0, 0, 0), (180, 0, 1)])
def test_shadow_runs_count_from_the_caster(az, axis, caster_side):
    from workbench.topography.shadows import shadow_runs

    m = np.zeros((11, 11), bool)
    if axis == 1:
        m[5, 3:7] = True
    else:
        m[3:7, 5] = True
    to_caster, to_end = shadow_runs(m, az)
    line = (to_caster[5, 3:7], to_end[5, 3:7]) if axis == 1 else (to_caster[3:7, 5], to_end[3:7, 5])
    near_sun = [1, 2, 3, 4] if caster_side == 0 else [4, 3, 2, 1]  # the caster sits on the sun's side
    np.testing.assert_allclose(line[0], near_sun, atol=1e-6)
    np.testing.assert_allclose(line[1], near_sun[::-1], atol=1e-6)
    assert to_caster[~m].max() == 0 and to_end[~m].max() == 0


def test_shadow_runs_measure_a_cast_shadow_behind_a_wall():
    """A 10 m wall under a 10 deg sun from the west casts a 10/tan(10 deg) = 56.7 m shadow eastwards."""
    from workbench.topography.shadows import shadow_runs

    z = np.zeros((40, 120))
    z[:, 20] = 10.0
    img = render(z, 270.0, 10.0, pixel_size=1.0).values
    shadow = img < 0.05 * np.median(img[img > 0])
    to_caster, to_end = shadow_runs(shadow, 270.0)
    length = (to_caster + to_end - 1)[20, 21:30].max()
    assert abs(length - 10.0 / np.tan(np.deg2rad(10.0))) <= 2.0


def test_lit_level_ignores_the_noise_in_large_shadows():
    """2° sun over rough terrain: ~70 % in shadow, 1 % noise; the shadow mask must still find the shadows.

    The plain median of the positive pixels lands in the shadows' noise (the bug this guards against);
    ``lit_level`` must stay within a few per cent of the noise-free lit median, and the features' shadow
    mask must flag (almost) every pixel the renderer shaded.
    """
    from workbench.topography.net import features
    from workbench.topography.shadows import lit_level

    z = make_terrain(96, 5.0, seed=3).values
    clean = render(z, 40.0, 2.0, pixel_size=5.0).values
    truth = float(np.median(clean[clean > 0]))
    dark = clean == 0
    assert dark.mean() > 0.5
    img = np.clip(clean + np.random.default_rng(0).normal(0.0, 0.01 * truth, clean.shape), 0.0, None)
    assert np.median(img[img > 0]) < 0.5 * truth  # the naive estimate fails here
    assert lit_level(img) == pytest.approx(truth, rel=0.05)
    x = features(img, np.zeros_like(z), clean, 40.0, 2.0)
    assert (x[1][dark] > 0.5).mean() > 0.99
    assert (x[1][~dark] > 0.5).mean() < 0.05
    assert lit_level(np.zeros((4, 4))) == 1.0


@pytest.mark.parametrize(("turns", "mirror"), [(1, False), (2, False), (3, True), (0, True)])
def test_a_view_of_the_features_is_the_features_of_the_turned_scene(turns, mirror):
    """Turning the tile and the sun together: the map channels and the sun vector must agree with
    features computed from the turned image, DEM and azimuth (the renderer's convention), and
    ``unview`` must undo the turn."""
    from workbench.topography.net import features, unview, view_features

    z = make_terrain(48, 5.0, seed=4).values
    az, el = 37.0, 12.0
    img = render(z, az, el, pixel_size=5.0).values
    x = features(img, z / 5.0, img, az, el)

    def turn(a):
        return np.rot90(a[:, ::-1] if mirror else a, turns)

    az_v = ((-az if mirror else az) - 90.0 * turns) % 360.0
    zt = np.ascontiguousarray(turn(z))
    img_t = render(zt, az_v, el, pixel_size=5.0).values
    np.testing.assert_allclose(img_t, turn(img), atol=1e-12)  # the turned sun casts the turned image
    expected = features(img_t, zt / 5.0, img_t, az_v, el)
    got = view_features(x, turns, mirror)
    hwc = view_features(np.moveaxis(x, 0, -1), turns, mirror, channels_last=True)  # the (y, x, channel) layout
    np.testing.assert_array_equal(np.moveaxis(hwc, -1, 0), got)
    np.testing.assert_allclose(got[:7], expected[:7], atol=1e-6)
    assert np.abs(got[7:] - expected[7:]).mean() < 0.05  # shadow lengths: resampled along another grid
    np.testing.assert_array_equal(unview(got[0], turns, mirror), x[0])


@pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
def test_more_views_average_the_network_and_bad_counts_are_refused(tmp_path):
    from workbench.cli import main

    img, coarse, z = _pair(64, 4.0)
    one = reconstruct(img, coarse, 45.0, 20.0, method="network", pixel_size=4.0, views=1)
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "dem.npy", coarse)
    assert main(["topo", "reconstruct", "--image", str(tmp_path / "img.npy"), "--coarse-dem", str(tmp_path / "dem.npy"),
                 "--sun-azimuth", "45", "--sun-elevation", "20", "--pixel-size", "4", "--views", "1",
                 "--out", str(tmp_path / "z.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), one.values, rtol=1e-5, atol=1e-3)
    two = reconstruct(img, coarse, 45.0, 20.0, method="network", pixel_size=4.0, views=2)
    assert one.attrs["views"] == 1 and two.attrs["views"] == 2
    z_up = upsample(coarse, z.shape)
    assert 0 < rmse(one.values, two.values) < rmse(one.values, z_up)
    # both well below the upsampling's error (0.27 and 0.26 of it; 1.79 and 1.80 with the relief flipped)
    assert rmse(one.values, z) < 0.5 * rmse(z_up, z) and rmse(two.values, z) < 0.5 * rmse(z_up, z)
    for bad in (0, 9, 1.5, True):
        with pytest.raises(InputError, match="views must be a whole number from 1 to 8"):
            reconstruct(img, coarse, 45.0, 20.0, method="network", pixel_size=4.0, views=bad)


def test_replicate_pad_matches_torch_in_both_memory_formats():
    import torch

    from workbench.topography.net import ReplicateConv2d, replicate_pad

    x = torch.randn(2, 5, 7, 9, generator=torch.Generator().manual_seed(0))
    for p in (0, 1, 2):
        ref = torch.nn.functional.pad(x, (p, p, p, p), mode="replicate")
        assert torch.equal(replicate_pad(x, p), ref)
        cl = replicate_pad(x.contiguous(memory_format=torch.channels_last), p)
        assert torch.equal(cl, ref) and cl.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    ours, theirs = ReplicateConv2d(5, 3), torch.nn.Conv2d(5, 3, 3, padding=1, padding_mode="replicate")
    theirs.load_state_dict(ours.state_dict())
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = ours(xa), theirs(xb)
    torch.testing.assert_close(ya, yb)
    ya.square().sum().backward()
    yb.square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)  # trainable: the same gradients through the padding
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)


@pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
def test_bfloat16_network_stays_close_to_float32_and_bad_precision_is_refused(tmp_path):
    from workbench.cli import main

    img, coarse, z = _pair(64, 4.0)
    f32 = reconstruct(img, coarse, 45.0, 3.0, method="network", pixel_size=4.0, views=1, precision="float32")
    bf16 = reconstruct(img, coarse, 45.0, 3.0, method="network", pixel_size=4.0, views=1, precision="bfloat16")
    assert f32.attrs["precision"] == "float32" and bf16.attrs["precision"] == "bfloat16"
    # bfloat16 keeps ~3 significant digits: a small change next to the network's error, but a change
    assert 0 < rmse(f32.values, bf16.values) < 0.1 * rmse(f32.values, z)
    # an image lit at the 3 deg it is reconstructed for (the committed low-sun weights): 0.45 of the
    # upsampling's RMSE in float32 (1.81 with the relief flipped)
    lit3 = render(z, 45.0, 3.0, pixel_size=4.0).values
    low = reconstruct(lit3, coarse, 45.0, 3.0, method="network", pixel_size=4.0, views=1, precision="float32")
    assert rmse(low.values, z) < 0.75 * rmse(upsample(coarse, z.shape), z)
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "dem.npy", coarse)
    args = ["topo", "reconstruct", "--image", str(tmp_path / "img.npy"), "--coarse-dem", str(tmp_path / "dem.npy"),
            "--sun-azimuth", "45", "--sun-elevation", "3", "--pixel-size", "4", "--views", "1",
            "--out", str(tmp_path / "z.npy")]
    assert main(args + ["--precision", "float32"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), f32.values, rtol=1e-5, atol=1e-3)
    with pytest.raises(InputError, match="unknown precision 'half'"):
        reconstruct(img, coarse, 45.0, 3.0, method="network", pixel_size=4.0, precision="half")


@pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
def test_network_sfs_starts_from_the_network():
    img, coarse, z = _pair(96, 4.0)
    net = reconstruct(img, coarse, 45.0, 20.0, method="network", pixel_size=4.0)
    both = reconstruct(img, coarse, 45.0, 20.0, method="network_sfs", pixel_size=4.0, max_iter=5)
    assert both.attrs["method"] == "network_sfs" and np.all(np.isfinite(both.values))
    change = rmse(both.values, net.values)
    z_up = upsample(coarse, z.shape)
    # a polish of the network's DEM: 0.006 of its distance from the upsampled DEM (0.38 with the relief flipped)
    assert 0 < change < 0.1 * rmse(z_up, net.values)
    assert rmse(both.values, z) < 0.5 * rmse(z_up, z)  # 0.25 (1.60 with the relief flipped)


def test_cli_npy_and_tif(tmp_path):
    from workbench.cli import main

    img, coarse, _ = _pair()
    np.save(tmp_path / "img.npy", img)
    np.save(tmp_path / "dem.npy", coarse)
    args = ["topo", "reconstruct", "--image", str(tmp_path / "img.npy"), "--coarse-dem", str(tmp_path / "dem.npy"),
            "--sun-azimuth", "45", "--sun-elevation", "20", "--method", "upsample", "--pixel-size", "5"]
    assert main(args + ["--out", str(tmp_path / "z.npy")]) == 0
    z = np.load(tmp_path / "z.npy")
    assert z.shape == img.shape
    assert main(args + ["--out", str(tmp_path / "z.tif")]) == 0
    import rioxarray

    t = rioxarray.open_rasterio(tmp_path / "z.tif")
    np.testing.assert_allclose(t.values[0], z, rtol=1e-5)
    # bad input: exit code 2, no output left behind
    assert main(args[:-2] + ["--out", str(tmp_path / "bad.npy")]) == 2  # .npy without --pixel-size
    assert main(["topo", "reconstruct", "--image", str(tmp_path / "img.npy"), "--coarse-dem",
                 str(tmp_path / "dem.npy"), "--sun-azimuth", "45", "--sun-elevation", "0", "--method",
                 "upsample", "--pixel-size", "5", "--out", str(tmp_path / "bad.npy")]) == 2
    assert not (tmp_path / "bad.npy").exists()


def test_cli_rejects_geographic_geotiff(tmp_path):
    import rioxarray  # noqa: F401

    from workbench.cli import main

    img, coarse, _ = _pair()
    lat = np.linspace(10, 9, 64)
    lon = np.linspace(20, 21, 64)
    da = xr.DataArray(img.astype("float32"), dims=("y", "x"), coords={"y": lat, "x": lon}).rio.write_crs("EPSG:4326")
    da.rio.to_raster(tmp_path / "img.tif")
    np.save(tmp_path / "dem.npy", coarse)
    rc = main(["topo", "reconstruct", "--image", str(tmp_path / "img.tif"), "--coarse-dem", str(tmp_path / "dem.npy"),
               "--sun-azimuth", "45", "--sun-elevation", "20", "--method", "upsample", "--pixel-size", "5",
               "--out", str(tmp_path / "z.npy")])
    assert rc == 2 and not (tmp_path / "z.npy").exists()


@pytest.mark.slow
@pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
def test_benchmark_keys(mirror):
    from workbench.topography.bench import run

    res = run(fast=True)
    for key in ("rmse_m", "rmse_m_lola_south"):
        assert set(res[key]) == {"network", "sfs", "upsample", "network_sfs"}
        for m in res[key]:
            assert set(res[key][m]) == {"2", "5", "15", "30"}
            assert all(np.isfinite(v) and v > 0 for v in res[key][m].values())
    assert res["seconds_1024"] > 0 and "slope_error_deg" in res
    lo, hi = res["targets_lola_south"]["network_over_sfs_ci95"]["2"]
    assert lo <= res["targets_lola_south"]["network_over_sfs"]["2"] <= hi


def test_benchmark_tiles_are_held_out_from_training_and_validation(monkeypatch):
    """The benchmark's procedural tiles come from seeds TEST_SEED0 + k, never a training or validation seed."""
    import workbench.topography.bench as B
    from workbench.topography.train import TEST_SEED0, TRAIN_SEEDS, VAL_SEED0

    seeds = []

    class Stop(Exception):
        pass

    def spy(seed, size):
        seeds.append(seed)
        return np.zeros((size, size)), 5.0

    def stop(n, size):  # the procedural tiles are all drawn by now: skip the LOLA tiles and the evaluation
        raise Stop

    monkeypatch.setattr(B, "procedural_tile", spy)
    monkeypatch.setattr(B, "_south_tiles", stop)
    for fast, n in ((True, 3), (False, 8)):
        seeds.clear()
        with pytest.raises(Stop):
            B.run(fast=fast)
        assert seeds == [TEST_SEED0 + k for k in range(n)]
        assert not set(seeds) & set(TRAIN_SEEDS)
    # training seeds < VAL_SEED0 <= validation seeds < TEST_SEED0 <= test seeds (validation: test_topography_train)
    assert max(TRAIN_SEEDS) < VAL_SEED0 < TEST_SEED0


def test_reconstruct_refuses_grids_it_would_misread_and_keeps_the_callers_layout():
    img, coarse, _ = _pair()
    y = (np.arange(64)[::-1] + 0.5) * 5.0
    x = (np.arange(64) + 0.5) * 5.0
    dem = xr.DataArray(coarse, dims=("y", "x"), coords={"y": y[4::8], "x": x[4::8]}, attrs={"units": "m"})
    # a (lat, lon) grid used to be read as row 0 north whatever its order, and lost its coordinates
    latlon = xr.DataArray(img, dims=("lat", "lon"), coords={"lat": np.linspace(1, -1, 64), "lon": np.arange(64.0)})
    with pytest.raises(InputError, match=r"not \(y, x\)"):
        reconstruct(latlon, coarse, 45.0, 20.0, method="upsample", pixel_size=5.0)
    # non-square pixels used to run with the y spacing alone
    wide = xr.DataArray(img, dims=("y", "x"), coords={"y": y, "x": x * 2})
    with pytest.raises(InputError, match="not square"):
        reconstruct(wide, dem.assign_coords(x=dem.x * 2), 45.0, 20.0, method="upsample")
    # coordinates in km used to give a pixel size of 0.005 "m"
    km = xr.DataArray(img, dims=("y", "x"), coords={"y": ("y", y / 1000, {"units": "km"}), "x": x / 1000})
    with pytest.raises(InputError, match="'km', not metres"):
        reconstruct(km, coarse, 45.0, 20.0, method="upsample")
    # a 1-pixel DEM, or image and DEM swapped, are named as such (not "crop both to the same area")
    with pytest.raises(InputError, match="at least 2x2"):
        reconstruct(img, coarse[:1, :1], 45.0, 20.0, method="upsample", pixel_size=5.0)
    with pytest.raises(InputError, match="swapped"):
        reconstruct(coarse - coarse.min() + 1.0, img, 45.0, 20.0, method="upsample", pixel_size=5.0)
    # a transposed (x, y) image comes back as (x, y), equal to the (y, x) answer
    a = xr.DataArray(img, dims=("y", "x"), coords={"y": y, "x": x})
    ref = reconstruct(a, dem, 45.0, 20.0, method="upsample")
    out = reconstruct(a.T, dem, 45.0, 20.0, method="upsample")
    assert out.dims == ("x", "y")
    np.testing.assert_array_equal(out.T.values, ref.values)


def test_cli_keeps_a_geotiff_images_georeferencing_beside_a_npy_dem(tmp_path):
    import rioxarray  # noqa: F401

    from workbench.cli import main

    img, coarse, _ = _pair()
    y = 1000.0 + (np.arange(64)[::-1] + 0.5) * 5.0
    x = (np.arange(64) + 0.5) * 5.0
    da = xr.DataArray(img.astype("float32"), dims=("y", "x"), coords={"y": y, "x": x})
    da.rio.write_crs("+proj=stere +lat_0=-90 +lon_0=0 +R=1737400 +units=m", inplace=True)
    da.rio.to_raster(tmp_path / "img.tif")
    np.save(tmp_path / "dem.npy", coarse)
    out = tmp_path / "out.tif"
    # used to fail with "image pixel size unknown", and with --pixel-size to write no CRS at y = 0..320
    assert main(["topo", "reconstruct", "--image", str(tmp_path / "img.tif"), "--coarse-dem",
                 str(tmp_path / "dem.npy"), "--sun-azimuth", "45", "--sun-elevation", "20", "--method", "upsample",
                 "--out", str(out)]) == 0
    back = rioxarray.open_rasterio(out)
    assert back.rio.crs is not None
    np.testing.assert_allclose(back["y"].values, y)


def test_slope_deg_uses_the_pixel_size():
    from workbench.topography.model import slope_deg

    # z = 0.1 x (m) sampled on 5 m pixels rises 0.5 m per pixel: dz/dx = 0.5 m / 5 m = 0.1, so the
    # slope is atan(0.1) = 5.7106 deg everywhere (central and one-sided differences are exact on a plane)
    x = np.arange(20) * 5.0
    z = np.tile(0.1 * x, (12, 1))
    s = slope_deg(z, 5.0)
    np.testing.assert_allclose(s, np.degrees(np.arctan(0.1)), rtol=0, atol=1e-9)
    assert float(s[6, 10]) == pytest.approx(5.7106, abs=1e-4)


# ------------------------------------------------------------------ review of the topography package (2026-11)
def _grid(a: np.ndarray, ps: float = 5.0, units: str | None = None) -> xr.DataArray:
    """``a`` on north-up metre coordinates of pixel size ``ps`` (optionally with units on y/x)."""
    ny, nx = a.shape
    attrs = {} if units is None else {"units": units}
    y = xr.Variable("y", (np.arange(ny)[::-1] + 0.5) * ps, attrs=attrs)
    x = xr.Variable("x", (np.arange(nx) + 0.5) * ps, attrs=attrs)
    return xr.DataArray(a, dims=("y", "x"), coords={"y": y, "x": x})


def test_reconstruct_refuses_a_geographic_crs():
    """A (y, x) grid in a longitude/latitude CRS used to be read as metres (pixel size 0.0078 "m")."""
    pytest.importorskip("rioxarray")
    img, coarse, _ = _pair(32)
    deg = xr.DataArray(img, dims=("y", "x"), coords={"y": 10 - (np.arange(32) + 0.5) / 128,
                                                     "x": 20 + (np.arange(32) + 0.5) / 128})
    for geo in (deg.rio.write_crs("+proj=longlat +R=1737400 +no_defs"),  # rioxarray's spatial_ref coordinate
                deg.assign_attrs(crs="IAU_2015:30100")):  # the package's attrs["crs"]
        with pytest.raises(InputError, match="geographic CRS.*degrees, not metres.*[Rr]eproject"):
            reconstruct(geo, coarse, 45.0, 20.0, method="upsample")
    ok = reconstruct(_grid(img).assign_attrs(crs="IAU_2015:30135"), coarse, 45.0, 20.0, method="upsample")
    assert ok.attrs["pixel_size"] == 5.0  # a projected (polar stereographic) CRS is fine


def test_cli_refuses_a_geotiff_without_crs_unless_given_the_pixel_size(tmp_path):
    """Degree coordinates in a GeoTIFF with no CRS used to be taken as metres (exit status 0)."""
    pytest.importorskip("rioxarray")
    from workbench.cli import main

    img, coarse, _ = _pair(32)
    lat, lon = 10 - (np.arange(32) + 0.5) / 128, 20 + (np.arange(32) + 0.5) / 128
    xr.DataArray(img.astype("float32"), dims=("y", "x"), coords={"y": lat, "x": lon}).rio.to_raster(tmp_path / "i.tif")
    np.save(tmp_path / "dem.npy", coarse)
    args = ["topo", "reconstruct", "--image", str(tmp_path / "i.tif"), "--coarse-dem", str(tmp_path / "dem.npy"),
            "--sun-azimuth", "45", "--sun-elevation", "20", "--method", "upsample", "--out", str(tmp_path / "z.npy")]
    assert main(args) == 2 and not (tmp_path / "z.npy").exists()
    assert main(args + ["--pixel-size", "5"]) == 0  # then read like a .npy: matched by shape
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), upsample(coarse, img.shape), rtol=1e-5, atol=1e-3)


def test_a_south_up_image_with_an_array_dem_in_the_same_order_is_registered():
    """The image DataArray was flipped north-up, the ndarray DEM beside it was not (RMSE 7.7 m, not 2.2)."""
    img, coarse, _ = _pair(48)
    north = reconstruct(_grid(img), coarse, 45.0, 20.0, method="upsample")
    south = reconstruct(_grid(img)[::-1], coarse[::-1], 45.0, 20.0, method="upsample")
    np.testing.assert_allclose(south.values[::-1], north.values, atol=1e-9)
    bare = xr.DataArray(coarse[::-1], dims=("y", "x"), attrs={"units": "m"})  # no coordinates: the same rule
    np.testing.assert_allclose(reconstruct(_grid(img)[::-1], bare, 45.0, 20.0, method="upsample").values,
                               south.values, atol=1e-9)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"method": "sfs", "smoothness": -1.0}, "smoothness must be a finite number >= 0"),
    ({"method": "sfs", "initial_dem_weight": float("nan")}, "initial_dem_weight must be a finite number >= 0"),
    ({"method": "sfs", "max_iter": -5}, "max_iter must be a whole number of iterations >= 1"),
    ({"method": "sfs", "shadow_threshold": 2.0}, "strictly between 0 and 1"),
    ({"method": "sfs", "smoothnes": 0.1}, "unknown option 'smoothnes'; did you mean 'smoothness'"),
    ({"method": "upsample", "smoothness": 1e9}, "smoothness is an option of shape-from-shading"),
    ({"method": "sfs", "views": 2}, "views only affects the network"),
    ({"method": "sfs", "scale_method": "bogus"}, "scale_method only affects the network"),
    ({"method": "network", "scale_method": "backprojection"}, "unknown scale recovery 'backprojection'"),
    ({"method": "network", "views": 9}, "views must be a whole number from 1 to 8"),
    ({"method": "network_sfs", "max_iter": 0}, "max_iter must be a whole number"),
])
def test_reconstruct_options_are_checked_before_any_work(kwargs, words, monkeypatch):
    import workbench.topography.model as tm

    def refuse(*args, **kw):
        raise AssertionError("the network was loaded before the bad option was caught")

    monkeypatch.setattr(tm, "load_network", refuse)
    monkeypatch.setattr(tm, "sfs", refuse)
    img, coarse, _ = _pair(32)
    with pytest.raises(InputError, match=words):
        reconstruct(img, coarse, 45.0, 20.0, pixel_size=5.0, **kwargs)


def test_sfs_refuses_nan_pixels_a_sun_below_the_horizon_and_mismatched_grids():
    """16 NaN pixels used to make every height NaN; a sun at -10 degrees was used as given."""
    img, coarse, _ = _pair(32)
    z_up = upsample(coarse, img.shape)
    bad = img.copy()
    bad[10:14, 10:14] = np.nan
    with pytest.raises(InputError, match="16 NaN/inf pixels"):
        sfs(bad, z_up, 5.0, 45.0, 20.0, max_iter=2)
    with pytest.raises(InputError, match="outside \\(0, 90\\]"):
        sfs(img, z_up, 5.0, 45.0, -10.0, max_iter=2)
    with pytest.raises(InputError, match="same shape"):
        sfs(img, z_up[:, :-1], 5.0, 45.0, 20.0, max_iter=2)
    hole = z_up.copy()
    hole[0, 0] = np.nan
    with pytest.raises(InputError, match="initial DEM contains 1 NaN"):
        sfs(img, hole, 5.0, 45.0, 20.0, max_iter=2)
    with pytest.raises(InputError, match="smoothness"):
        sfs(img, z_up, 5.0, 45.0, 20.0, smoothness=-1.0)
    assert np.all(np.isfinite(sfs(img, z_up, 5.0, 45.0, 20.0, max_iter=2)))


@pytest.mark.skipif(not weights_paths()[0].exists(), reason="topography weights not trained yet")
def test_the_network_runs_on_the_configured_device(monkeypatch):
    """WORKBENCH_DEVICE was ignored: the network always stayed on the CPU, and the output did not say where."""
    from workbench.topography.model import load_network

    monkeypatch.setenv("WORKBENCH_DEVICE", "meta")  # a device every torch build has, to tell it from the CPU
    net, _ = load_network()
    assert next(net.parameters()).device.type == "meta"
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    img, coarse, _ = _pair(32)
    out = reconstruct(img, coarse, 45.0, 20.0, method="network", pixel_size=5.0, views=1)
    assert out.attrs["device"] == "cpu"


def test_reconstruct_keeps_the_images_crs_and_coordinate_attrs():
    """The output lost the image's spatial_ref (CRS) coordinate and the units of its y/x coordinates."""
    pytest.importorskip("rioxarray")
    img, coarse, _ = _pair(32)
    crs = "+proj=stere +lat_0=-90 +lon_0=0 +R=1737400 +units=m +no_defs"
    da = _grid(img, units="m").rio.write_crs(crs).assign_attrs(crs="IAU_2015:30135")
    out = reconstruct(da, coarse, 45.0, 20.0, method="upsample")
    assert "spatial_ref" in out.coords and out.rio.crs is not None and out.rio.crs == da.rio.crs
    assert out.attrs["crs"] == "IAU_2015:30135" and out["y"].attrs["units"] == "m" and out["x"].attrs["units"] == "m"
    south = reconstruct(da[::-1], coarse[::-1], 45.0, 20.0, method="upsample")  # the CRS survives the flips too
    assert south.rio.crs == da.rio.crs and (south["y"].values == da["y"].values[::-1]).all()
    arr = reconstruct(img, coarse, 45.0, 20.0, method="upsample", pixel_size=5.0)
    assert arr["y"].attrs["units"] == "m" and arr["x"].attrs["units"] == "m"


@pytest.mark.skipif(not weights_paths("topography_unet_lowsun")[0].exists(), reason="no low-sun weights committed")
def test_load_network_reads_weights_rewritten_on_disk(tmp_path):
    """The cache was keyed on the path alone: retrained weights at the same path were never read."""
    import json
    import os
    import shutil

    from workbench.topography.model import load_network

    pt, js = tmp_path / "w.pt", tmp_path / "w.json"
    for name, stamp in (("topography_unet", 1_700_000_000), ("topography_unet_lowsun", 1_700_000_100)):
        src_pt, src_js = weights_paths(name)
        shutil.copy(src_pt, pt)
        shutil.copy(src_js, js)
        for p in (pt, js):
            os.utime(p, ns=(stamp * 10**9, stamp * 10**9))  # distinct times even on a coarse-clock file system
        net, record = load_network(str(pt))
        assert record["sha256"] == json.loads(src_js.read_text())["sha256"]
    first, _ = load_network(str(pt))
    assert first is net  # an unchanged file is served from the cache


def test_a_two_value_pixel_size_attr_must_be_square():
    """attrs['pixel_size'] = (5, 10) (as render records non-square pixels) used to run with 5 m."""
    z = make_terrain(32, 5.0, seed=1).values
    coarse = downsample(z, 8)
    wide = render(z, 135.0, 10.0, pixel_size=(5.0, 10.0))
    assert "y" not in wide.coords  # the pixel size is in the attribute only
    with pytest.raises(InputError, match=r"pixels are not square \(5 m along y, 10 m along x\)"):
        reconstruct(wide, coarse, 135.0, 10.0, method="upsample")
    square = render(z, 135.0, 10.0, pixel_size=(5.0, 5.0))
    assert reconstruct(square, coarse, 135.0, 10.0, method="upsample").attrs["pixel_size"] == 5.0


def test_lit_level_is_the_largest_fixed_point_reached_from_above():
    """80 % of the pixels in shadow with a small positive noise level (0.02) and 201 lit pixels evenly
    spread over 0.5 ... 1.5 (median 1.0). Starting from the 99th percentile, pixels >= 0.05 x level are the
    lit ones, whose median is 1.0, and 0.05 x 1.0 keeps them: the level is 1.0 and the shadow mask is the
    799 dark pixels. (Started from the plain median, 0.02, the iteration stays in the noise.)"""
    from workbench.topography.shadows import lit_level, shadow_mask

    img = np.r_[np.full(799, 0.02), np.linspace(0.5, 1.5, 201)]
    img = np.random.default_rng(0).permutation(img).reshape(25, 40)
    assert lit_level(img) == pytest.approx(1.0, rel=1e-12)
    shadowed, level = shadow_mask(img)
    assert level == pytest.approx(1.0, rel=1e-12) and int(shadowed.sum()) == 799
    assert np.all(img[shadowed] == 0.02)


def test_sfs_leaves_a_dem_alone_whose_only_misfit_lies_in_shadow():
    """The ASP-style SfS energy sums the image misfit over lit pixels only (Alexandrov & Beyer 2018, the
    ``--shadow-threshold`` mask). Flat ground whose lit pixels all have one brightness (so the fitted albedo
    matches them exactly) and a 6 x 6 block of shadow (I = 0): every term of the energy is zero at the initial
    DEM (lit misfit 0, Laplacian 0, z = z_init), so its gradient is zero and SfS returns the DEM unchanged.
    Were the dark pixels fitted too, their misfit of 1 (in lit-level units) would dent the ground."""
    z_init = np.full((24, 24), 5.0)  # metres, 2 m pixels
    img = np.full((24, 24), 0.5)
    img[9:15, 9:15] = 0.0
    z = sfs(img, z_init, 2.0, 135.0, 30.0, max_iter=20)
    np.testing.assert_allclose(z, z_init, rtol=0, atol=1e-9)
