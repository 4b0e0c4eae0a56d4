"""The residual CNN wrapper: shapes, validation, NaN handling, fine-tuning modes, checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from workbench.errors import CheckpointError, InputError
from workbench.inversion import experiment as ex
from workbench.inversion.model import TARGETS, WEIGHTS_DIR, OxideInverter, site_mask
from workbench.inversion.resnet import PackedInference, ResidualInversionNet, packed_supported

BANDS = ["R415", "R750", "R950"]
WL = [415.0, 750.0, 950.0]


def _toy(h=24, w=32, seed=0):
    """A toy cube whose 'oxides' are simple functions of band ratios (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    lat = np.linspace(10, -10, h)
    lon = np.linspace(-20, 20, w)
    base = rng.uniform(0.08, 0.25, (h, w))
    ratio = rng.uniform(0.9, 1.2, (h, w))
    refl = xr.DataArray(np.stack([base * 0.6, base, base * ratio]).astype(np.float32), dims=("band", "lat", "lon"),
                        coords={"band": BANDS, "wavelength": ("band", WL), "lat": lat, "lon": lon})
    truth = xr.Dataset({t: (("lat", "lon"), (k + 1) * 10 * (1.2 - ratio) + 5 * base) for k, t in enumerate(TARGETS)},
                       coords={"lat": lat, "lon": lon})
    mgo, feo = truth["MgO"] / 40.304, truth["FeO"] / 71.844
    truth["mg_number"] = 100 * mgo / (mgo + feo)  # molar, as the model derives it from MgO and FeO
    return refl, truth


def _tiny(seed=0):
    return OxideInverter(BANDS, WL, width=16, depth=1, stem=8, members=2, seed=seed)


def test_forward_shapes_and_flops():
    net = ResidualInversionNet(3, 7, width=16, depth=1, stem=8, members=2)
    mean, lv = net(torch.rand(2, 3, 10, 12) + 0.05)
    assert mean.shape == (2, 2, 7, 10, 12) and lv.shape == mean.shape
    assert net(torch.rand(1, 3, 10, 12) + 0.05, pad=False)[0].shape == (2, 1, 7, 8, 10)
    assert net.flops_per_pixel() == 2 * 2 * (9 * 3 * 8 + 8 * 16 + 2 * 16 * 16 + 16 * 14)


def test_context_windows_are_box_means_of_the_replicate_padded_bands():
    """Known answer: each context channel is scipy's box filter (edges 'nearest') of the standardised log bands."""
    from scipy import ndimage

    torch.manual_seed(0)
    net = ResidualInversionNet(3, 7, width=16, depth=1, stem=8, members=2, context=(3, 7))
    assert net.halo == 4 and net.config["context"] == [3, 7]
    with torch.no_grad():
        net.in_mean.copy_(torch.tensor([-2.0, -1.5, -1.8]))
        net.in_std.copy_(torch.tensor([0.5, 0.4, 0.6]))
    x = torch.rand(1, 3, 10, 12, dtype=torch.float64).float() + 0.05
    z = ((torch.log(x[0]) - net.in_mean[:, None, None]) / net.in_std[:, None, None]).numpy()
    got = net.stem_input(x, pad=True)[0].numpy()  # the stem's one-pixel margin kept: 12 x 14
    assert got.shape == (9, 12, 14)
    zp = np.pad(z, ((0, 0), (1, 1), (1, 1)), mode="edge")
    np.testing.assert_allclose(got[:3], zp, atol=1e-6)
    for j, k in enumerate((3, 7)):
        ref = np.stack([ndimage.uniform_filter(np.pad(b, 4, mode="edge"), k, mode="nearest")[3:-3, 3:-3] for b in z])
        np.testing.assert_allclose(got[3 * (j + 1) : 3 * (j + 2)], ref, atol=1e-5)
    # a missing pixel enters as 0 and is left out of its neighbours' window means (normalised convolution)
    x[0, :, 3, 4] = float("nan")
    z[:, 3, 4] = 0.0
    v = np.ones((1, 10, 12))
    v[0, 3, 4] = 0.0
    got = net.stem_input(x, pad=True)[0].numpy()
    np.testing.assert_allclose(got[:3], np.pad(z, ((0, 0), (1, 1), (1, 1)), mode="edge"), atol=1e-6)
    for j, k in enumerate((3, 7)):
        def box(a, k=k):
            return np.stack([ndimage.uniform_filter(np.pad(b, 4, mode="edge"), k, mode="nearest")[3:-3, 3:-3]
                             for b in a])
        np.testing.assert_allclose(got[3 * (j + 1) : 3 * (j + 2)], box(z) / box(v), atol=1e-5)
    x[0, :, 3, 4] = 0.2
    # an unpadded input with the halo gives the interior; the output shrinks by the halo
    assert net(x, pad=False)[0].shape == (2, 1, 7, 2, 4)
    assert net.flops_per_pixel() == 2 * 2 * (9 * 9 * 8 + 8 * 16 + 2 * 16 * 16 + 16 * 14)
    with pytest.raises(ValueError, match="odd sizes"):
        ResidualInversionNet(3, 7, context=(4,))
    assert "context" not in ResidualInversionNet(3, 7, width=8, stem=4, members=1).config  # old configs unchanged


@pytest.mark.skipif(not packed_supported(), reason="this torch build has no oneDNN fused linears")
@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("depth,lora,context", [(2, 0, ()), (1, 2, ()), (3, 0, ()), (2, 0, (5, 9))])
def test_packed_inference_is_the_same_network(depth, lora, context, bf16):
    """The fused inference path (oneDNN kernels; bfloat16: biases folded) computes the training path's function."""
    if bf16 and not packed_supported(bfloat16=True):
        pytest.skip("this CPU has no native bfloat16 in oneDNN")
    torch.manual_seed(depth)
    net = ResidualInversionNet(3, 7, width=32, depth=depth, stem=8, members=3, lora_rank=lora,
                               context=context).eval()
    with torch.no_grad():
        for p in net.parameters():  # non-zero biases and adapters, so folding them is exercised
            p.add_(0.2 * torch.randn_like(p))
    x = torch.rand(1, 3, 9, 13) + 0.05
    dtype = torch.bfloat16 if bf16 else torch.float32
    tol = (0.06 if context else 0.03) if bf16 else 1e-5  # bfloat16 rounding (3x the stem inputs); float32: same
    with torch.no_grad():
        ref, shape = net.forward_flat(x, pad=True)
        got, shape2 = PackedInference(net, 9 * 13, dtype)(x, pad=True)
        mean, std = net.predict_moments(x, pad=True, bfloat16=bf16, packed=PackedInference(net, 9 * 13, dtype))
        mean32, std32 = net.predict_moments(x, pad=True)
    assert got.dtype == dtype and got.shape == ref.shape and shape2 == shape == (1, 9, 13)
    assert (got.float() - ref).abs().max() < tol * ref.abs().max()
    assert (mean - mean32).abs().max() < tol * mean32.abs().max()
    assert (std - std32).abs().max() < tol * std32.abs().max()
    with pytest.raises(ValueError, match="does not match"):
        net.predict_moments(x, bfloat16=not bf16, packed=PackedInference(net, 9 * 13, dtype))


def test_predict_is_the_same_with_and_without_the_fused_kernels(monkeypatch):
    """``predict`` uses PackedInference where oneDNN has it and the training path elsewhere: same numbers."""
    import workbench.inversion.model as model_mod

    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=3, batch=4, patch=8)
    fused = m.predict(refl, epistemic=True)
    monkeypatch.setattr(model_mod, "packed_supported", lambda *a, **k: False)
    plain = m.predict(refl, epistemic=True)
    for v in fused.data_vars:
        np.testing.assert_allclose(fused[v].values, plain[v].values, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("context", [(), (5,)])
def test_predict_arrays_on_a_haloed_block_is_the_interior_of_the_full_prediction(context):
    refl, _ = _toy(h=15, w=18)
    X = refl.values.copy()
    X[:, 0, 5] = np.nan  # a bad pixel in the halo feeds neighbours but is not an output
    X[:, 6, 7] = np.nan
    m = OxideInverter(BANDS, WL, width=16, depth=1, stem=8, members=2, context=context)
    h = m.net.halo
    full = m.predict_arrays(X)
    inner = m.predict_arrays(X, halo=True)
    tiled = m.predict_arrays(X, tile_rows=4)  # row tiles carry the same halo
    assert inner[0].shape == (7, 15 - 2 * h, 18 - 2 * h)
    for a, b, c in zip(full, inner, tiled, strict=True):
        np.testing.assert_allclose(b, a[:, h:-h, h:-h], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)
    assert np.isnan(inner[0][:, 6 - h, 7 - h]).all() and np.isfinite(inner[0][:, 0, 4]).all()
    with pytest.raises(InputError, match=f"at least {2 * h + 1}x{2 * h + 1}"):
        m.predict_arrays(X[:, : 2 * h], halo=True)


def test_fit_learns_and_predict_contract():
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=40, batch=8, patch=8, lr=1e-2)
    refl = refl.copy()
    refl[:, 3, 4] = np.nan
    out = m.predict(refl)
    for t in TARGETS:
        assert out[t].attrs["units"] in ("wt%", "1") and f"{t}_std" in out
    assert np.isnan(out.FeO.values[3, 4]) and np.isnan(out.FeO_std.values[3, 4])
    assert np.isfinite(out.FeO.values).sum() == out.FeO.size - 1
    assert (out.FeO_std.values[np.isfinite(out.FeO_std.values)] > 0).all()
    err = np.nanmean((out.FeO.values - truth.FeO.values) ** 2) ** 0.5
    assert err < truth.FeO.std().item()  # better than predicting the mean


def test_beta_nll_known_gradients_and_fit_records_it():
    from workbench.inversion.resnet import gaussian_nll

    torch.manual_seed(0)
    mean = torch.randn(2, 3, 7, 4, 4, requires_grad=True)
    log_var = (torch.randn(2, 3, 7, 4, 4) * 0.8).requires_grad_(True)
    y = torch.randn(3, 7, 4, 4)
    err = mean.detach() - y
    # beta = 0: the Gaussian NLL, d/dmu = (mu - y) / sigma^2 (per element, over the mean's element count)
    gaussian_nll(mean, log_var, y).backward()
    n = mean.numel()
    assert torch.allclose(mean.grad, err * torch.exp(-log_var.detach()) / n, atol=1e-6)
    # beta = 1: the mean's gradient is the squared error's, whatever the predicted variance
    mean.grad = None
    gaussian_nll(mean, log_var, y, beta=1.0).backward()
    assert torch.allclose(mean.grad, err / n, atol=1e-6)
    # the value is the NLL weighted by the (constant) variance^beta
    b = 0.5
    ref = (0.5 * (log_var + err**2 * torch.exp(-log_var)) * torch.exp(b * log_var)).mean()
    assert torch.allclose(gaussian_nll(mean.detach(), log_var.detach(), y, beta=b), ref.detach())
    # ... and the weight is held constant: d/d(log var) = 0.5 (1 - err^2 / sigma^2) sigma^(2 beta), no more
    log_var.grad = None
    gaussian_nll(mean.detach(), log_var, y, beta=b).backward()
    s2 = torch.exp(log_var.detach())
    assert torch.allclose(log_var.grad, 0.5 * (1 - err**2 / s2) * s2**b / n, atol=1e-6)

    refl, truth = _toy(12, 12)
    m = _tiny().fit(refl, truth, steps=3, batch=4, patch=8, beta_nll=0.5)
    assert m.meta["fit"]["beta_nll"] == 0.5
    with pytest.raises(InputError, match="beta_nll"):
        _tiny().fit(refl, truth, steps=1, beta_nll=2.0)


def test_bad_input_errors():
    refl, truth = _toy(8, 8)
    m = _tiny()
    with pytest.raises(InputError, match="missing"):
        m.predict(refl.isel(band=[0, 1]))
    with pytest.raises(InputError, match="extra"):
        extra = xr.concat([refl, refl.isel(band=[0]).assign_coords(band=["R1000"], wavelength=("band", [1000.0]))],
                          "band")
        m.predict(extra)
    with pytest.raises(InputError, match="wavelengths"):
        m.predict(refl.assign_coords(wavelength=("band", [415.0, 760.0, 950.0])))
    neg = refl.copy()
    neg[0, 0, 0] = -0.01
    with pytest.raises(InputError, match="negative"):
        m.predict(neg)
    with pytest.raises(InputError, match="mode"):
        m.fine_tune(refl, truth, site_mask(truth, 0, 0, 500), mode="bogus")
    with pytest.raises(InputError, match="above 1.5.*Percent"):
        m.predict(refl * 100)  # percent, not a fraction
    with pytest.raises(InputError, match="units 'W m-2 sr-1 um-1'"):
        m.predict(refl.assign_attrs(units="W m-2 sr-1 um-1"))
    inf = refl.copy()
    inf[1, 2, 2] = np.inf
    with pytest.raises(InputError, match="infinite"):
        m.predict(inf)
    huge = refl.astype("float64")
    huge[1, 2, 2] = 1e40  # finite in float64, inf after a float32 cast: named for what it is
    with pytest.raises(InputError, match="above 1.5 .*max 1e\\+40"):
        m.predict(huge)
    for rows in (0, -3, 2.5):
        with pytest.raises(InputError, match="tile_rows"):
            m.predict(refl, tile_rows=rows)


@pytest.mark.parametrize("mode", ["head", "lora", "full"])
def test_fine_tune_modes(mode):
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=10, batch=4, patch=8)
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    mask = site_mask(truth, 0.0, 0.0, 300.0)
    assert mask.sum() > 4
    m.fine_tune(refl, truth, mask, mode=mode, steps=5)
    after = m.net.state_dict()
    assert set(after) == set(before)  # LoRA merged back: plain architecture
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("head") for k in changed)
    if mode == "head":
        assert all(k.startswith("head") for k in changed)
    else:
        assert any(k.startswith("blocks") for k in changed)


def test_save_load_roundtrip_and_errors(tmp_path):
    refl, truth = _toy(8, 8)
    m = _tiny().fit(refl, truth, steps=3, batch=2, patch=6)
    digest = m.save(tmp_path / "w.pt")
    assert len(digest) == 64 and (tmp_path / "w.json").exists()
    m2 = OxideInverter.load(tmp_path / "w.pt", bands=BANDS)
    np.testing.assert_allclose(m.predict(refl).FeO.values, m2.predict(refl).FeO.values, rtol=1e-5)
    with pytest.raises(CheckpointError, match="bands"):
        OxideInverter.load(tmp_path / "w.pt", bands=["R415", "R750", "R1000"])
    with pytest.raises(CheckpointError, match="sha256"):
        OxideInverter.load(tmp_path / "w.pt", sha256="0" * 64)
    torch.save({"arch": "unet", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="architecture"):
        OxideInverter.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        OxideInverter.load(tmp_path / "junk.pt")


def test_context_model_trains_fine_tunes_saves_and_subsets(tmp_path):
    """A network with context windows goes through fit, fine_tune, save/load and with_members unchanged."""
    refl, truth = _toy()
    m = OxideInverter(BANDS, WL, width=16, depth=1, stem=8, members=2, context=(5,))
    m.fit(refl, truth, steps=4, batch=2, patch=6).fine_tune(refl, truth, site_mask(truth, 0.0, 0.0, 300.0), steps=2)
    m.save(tmp_path / "c.pt")
    m2 = OxideInverter.load(tmp_path / "c.pt")
    assert m2.net.context == (5,) and m2.net.halo == 3
    np.testing.assert_allclose(m.predict(refl).MgO.values, m2.predict(refl).MgO.values, rtol=1e-5)
    one = m2.with_members(1)
    assert one.net.context == (5,) and np.isfinite(one.predict(refl).FeO.values).all()


def test_gated_fine_tune_weights_targets_by_their_unexplained_site_error():
    """gate=True: each target's site loss is weighted by max(0, mean r² − mean σ²) / mean r²; a zero weight
    removes that target's pull on the network (its gradient vanishes)."""
    from workbench.inversion.resnet import gaussian_nll

    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=5, batch=4, patch=8)
    mask = site_mask(truth, 0.0, 0.0, 300.0)
    shifted = truth.copy()
    shifted["FeO"] = truth["FeO"] + 100.0  # a shift far beyond the model's stated noise, for FeO only
    r2, s2 = m._site_residuals(refl, shifted, mask)
    expected = np.maximum(r2 - s2, 0) / r2
    assert (r2 > 0).all() and expected[0] > 0.5 and expected[0] == expected.max()
    r2c, s2c = m._site_residuals(refl, truth, mask)  # the true site: errors within the (wide) stated noise
    assert (r2c <= s2c).all()
    before = {k: v.clone() for k, v in m.net.state_dict().items()}
    m.fine_tune(refl, truth, mask, mode="full", steps=3, gate=True, discrepancy=False)  # nothing to learn
    assert m.meta["fine_tune"][-1]["site_weight"] == [0.0] * 7
    assert all(torch.equal(before[k], v) for k, v in m.net.state_dict().items())  # nothing moved
    m.fine_tune(refl, shifted, mask, steps=2, gate=True)
    np.testing.assert_allclose(m.meta["fine_tune"][-1]["site_weight"], expected, atol=1e-4)
    mean = torch.zeros(2, 1, 7, 3, 3, requires_grad=True)
    w = torch.tensor([1.0, 0, 1, 1, 1, 1, 0.5])
    gaussian_nll(mean, torch.zeros_like(mean), torch.ones(1, 7, 3, 3), target_weight=w).backward()
    g = mean.grad[0, 0, :, 0, 0]
    assert g[1] == 0 and torch.allclose(g[6], 0.5 * g[0])


def test_calibrate_sets_coverage():
    """Every target gets its own scale: each one's 95 % intervals cover 93-97 % of the calibration pixels
    (one shared factor gave 0.91-0.97 across targets)."""
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=8, batch=4, patch=8)
    m.calibrate(refl, truth, level=0.95)
    pred = m.predict(refl)
    for t in TARGETS:
        z = np.abs(pred[t] - truth[t]) / pred[f"{t}_std"]
        assert 0.93 <= float((z <= 1.959964).mean()) <= 0.97, t


def test_calibrate_keeps_unit_scale_where_the_predictions_are_exact():
    """Truth equal to the predicted means makes every |z| zero: scaling the std by that 0 quantile would give
    zero-width intervals, so such a target keeps scale 1.0 (the ensemble's own spread); a target with real
    errors beside it is still scaled."""
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=8, batch=4, patch=8)
    pred = m.predict(refl)
    exact = truth.copy()
    for t in TARGETS[:-1]:
        exact[t] = (truth[t].dims, pred[t].transpose(*truth[t].dims).values)
    scale = m.calibrate(refl, exact)
    np.testing.assert_array_equal(scale[:-1], 1.0)
    assert scale[-1] != 1.0 and np.isfinite(scale[-1]) and scale[-1] > 0
    np.testing.assert_array_equal(m.predict(refl)[f"{TARGETS[0]}_std"], pred[f"{TARGETS[0]}_std"])


def test_calibrate_uses_only_the_pixels_of_its_mask():
    """Truth outside the mask must not matter: calibrating on mask M equals calibrating on truth known only
    inside M, and shifting the truth outside M by +100 wt% changes nothing."""
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=8, batch=4, patch=8)
    M = xr.DataArray(np.arange(truth.sizes["lat"]) % 3 == 0, dims="lat",
                     coords={"lat": truth.lat}).broadcast_like(truth.FeO)
    scale = m.calibrate(refl, truth, mask=M).copy()
    np.testing.assert_allclose(m.calibrate(refl, truth.where(M)), scale, rtol=1e-6)
    np.testing.assert_allclose(m.calibrate(refl, truth.where(M, truth + 100.0), mask=M), scale, rtol=1e-6)
    assert not np.allclose(m.calibrate(refl, truth), scale)  # other pixels do give another scale


def test_make_split_keeps_training_off_every_held_out_pixel():
    """The far-side hold-out's roles: training and interval calibration share no pixel with each other or with
    the fine-tuning site and the test set, and together they are exactly the near side; the test set is the
    far side minus the site and its 40 km ring."""
    from workbench.geo import global_grid, hemisphere_masks

    lat, lon = global_grid(2)
    truth = xr.Dataset({"FeO": (("lat", "lon"), np.zeros((lat.size, lon.size)))}, coords={"lat": lat, "lon": lon})
    m = ex.make_split(truth, ex.CHANGE6)
    hem = hemisphere_masks(truth)
    near, far = hem["near"].transpose("lat", "lon").values, hem["far"].transpose("lat", "lon").values
    train, calib, site, test = (m[k].transpose("lat", "lon").values for k in ("train", "calib", "site", "test"))
    assert train.any() and calib.any() and site.any() and test.any()
    assert not (train & (calib | site | test)).any()
    assert not (calib & (site | test)).any() and not (site & test).any()
    assert np.array_equal(train | calib, near) and not (site & ~far).any() and not (test & ~far).any()
    ring = site_mask(truth, *ex.CHANGE6, 100.0).values
    assert np.array_equal(test, far & ~ring)


def test_site_discrepancy_widens_intervals_and_survives_save(tmp_path):
    """A site whose truth is shifted by +3 wt% (a new terrane the model never saw) sets a per-target discrepancy
    std of about 3 (later stds include it in quadrature) or, pooled, one factor on every std; checkpoints keep both."""
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=10, batch=4, patch=8)
    m.calibrate(refl, truth, level=0.95)
    mask = site_mask(truth, 0.0, 0.0, 300.0)
    before = m.predict(refl)
    shifted = truth + 3.0 * mask  # the far side: same spectra, other composition
    r2, s2 = m._site_residuals(refl, shifted, mask)
    d = np.sqrt(np.maximum(r2 - s2, 0.0))  # the per-target term fine_tune sets
    resid = (before.FeO - shifted.FeO).values[mask.values]
    expect = np.sqrt(max(np.mean(resid**2) - np.mean(before.FeO_std.values[mask.values] ** 2), 0.0))
    assert d[0] == pytest.approx(expect, rel=1e-4) and d[0] > 2.0
    import copy

    pooled = copy.deepcopy(m)
    m.fine_tune(refl, shifted, mask, mode="head", steps=2, discrepancy="per_target")
    np.testing.assert_allclose(m.discrepancy_std, d, rtol=1e-5)
    assert m.shift_scale == 1.0
    after = m.predict(refl)
    assert float(after.FeO_std.min()) >= d[0] * (1 - 1e-5)
    m.save(tmp_path / "w.pt")
    np.testing.assert_allclose(OxideInverter.load(tmp_path / "w.pt").discrepancy_std, d, rtol=1e-6)
    # the default pools the shift over targets: one factor sqrt(max(1, mean_t mean(r²)/mean(σ²))) on every std
    r2, s2 = pooled._site_residuals(refl, shifted, mask)
    lam = np.sqrt(max(1.0, np.mean(r2 / s2)))
    assert lam > 1.5
    pooled.fine_tune(refl, shifted, mask, mode="head", steps=2)
    assert pooled.shift_scale == pytest.approx(lam, rel=1e-6) and not pooled.discrepancy_std.any()
    widened = pooled.predict(refl)
    pooled.shift_scale = 1.0
    np.testing.assert_allclose(widened.MgO_std.values, lam * pooled.predict(refl).MgO_std.values, rtol=1e-5)
    pooled.shift_scale = lam
    pooled.save(tmp_path / "p.pt")
    assert OxideInverter.load(tmp_path / "p.pt").shift_scale == pytest.approx(lam, rel=1e-6)
    no = _tiny().fit(refl, truth, steps=2, batch=2, patch=6)
    no.fine_tune(refl, shifted, mask, mode="head", steps=1, discrepancy=False)
    assert not no.discrepancy_std.any() and no.shift_scale == 1.0
    with pytest.raises(InputError, match="unknown discrepancy"):
        no.fine_tune(refl, shifted, mask, steps=1, discrepancy="global")


def test_extrapolation_scale_known_answers():
    """κ puts ``level`` of the truth inside the intervals on average over cases, each case weighted equally."""
    from workbench.inversion.shift_calibration import case_coverage, extrapolation_scale

    rng = np.random.default_rng(0)
    sd = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 3.0])  # the true spread of z per target
    cases = [{"z": {t: np.abs(rng.normal(0, sd[k], 40_000)).astype(np.float32) for k, t in enumerate(TARGETS)}}
             for _ in range(3)]
    k = extrapolation_scale(cases)
    np.testing.assert_allclose(k, sd, rtol=0.03)  # |z| ~ |N(0, s²)|: the 95 % quantile is 1.96 s
    np.testing.assert_allclose(case_coverage(cases, k).mean(0), 0.95, atol=2e-3)
    np.testing.assert_allclose(case_coverage(cases).mean(0)[:2], [0.95, 0.673], atol=0.01)  # 2Φ(1.96/2) − 1
    one = extrapolation_scale(cases, per_target=False)
    assert np.ptp(one) == 0 and 0.95 == pytest.approx(case_coverage(cases, one).mean(), abs=2e-3)
    # equal case weights: a small case with large errors is not outvoted by a big case with small ones
    big, small = np.full(1000, 1.0, np.float32), np.full(10, 3.0, np.float32)
    two = [{"z": {"FeO": big}}, {"z": {"FeO": small}}]
    kk = extrapolation_scale(two, targets=["FeO"])[0]
    assert 3.0 / 1.959964 <= kk <= 3.0 / 1.959964 * 1.0001  # pixel weights would give 1 / 1.96
    assert case_coverage(two, [kk], targets=["FeO"]).tolist() == [[1.0], [1.0]]


def test_leave_one_moon_out_scores_each_moon_with_the_others_factor():
    from workbench.inversion.shift_calibration import case_coverage, extrapolation_scale, leave_one_moon_out

    rng = np.random.default_rng(1)
    cases = [{"moon": m, "z": {t: np.abs(rng.normal(0, 1 + m, 5000)).astype(np.float32) for t in TARGETS}}
             for m in (1, 2, 3)]
    cov = leave_one_moon_out(cases)
    for row, m in zip(cov, (1, 2, 3), strict=True):
        rest = [c for c in cases if c["moon"] != m]
        np.testing.assert_array_equal(row, case_coverage([cases[m - 1]], extrapolation_scale(rest))[0])
    assert cov[0].mean() > 0.95 > cov[2].mean()  # the calmest Moon over-covers, the wildest under-covers
    with pytest.raises(ValueError, match="two Moons"):
        leave_one_moon_out(cases[:1])


def test_calibrate_weights_stores_the_factor_and_keeps_the_record(tmp_path):
    """End to end on 1 px/deg Moons with a tiny model: the factor lands in the checkpoint's meta, the JSON
    record keeps its earlier keys with the new sha256, and a fine-tune of the reloaded model applies it."""
    from workbench.inversion.experiment import far_side_experiment
    from workbench.inversion.shift_calibration import calibrate_weights

    exp = far_side_experiment(ppd=1, steps=4, ft_steps=2, members=2, methods=("lucey2000",), library=True)
    path = tmp_path / "w.pt"
    exp.models["resnet_pretrained"].save(path, record={"command": "test", "note": "kept"})
    entry = calibrate_weights(path, moon_seeds=(1, 3), sites=("Chang'e-6",), ppd=1, ft_steps=2)
    rec = json.loads(path.with_suffix(".json").read_text())
    assert rec["note"] == "kept" and rec["meta"]["extrapolation"] == entry and entry["cases"] == 2
    assert len(entry["scale"]) == len(TARGETS) and all(k > 0 for k in entry["scale"])
    m = OxideInverter.load(path)  # checks the new sha256 against the record
    assert m.meta["extrapolation"]["scale"] == entry["scale"]
    site = exp.masks["site"]
    m.fine_tune(exp.refl, exp.truth, site, steps=1)
    np.testing.assert_allclose(m.extrapolation_scale, entry["scale"], rtol=1e-6)


def test_refresh_heldout_record_remeasures_and_keeps_the_old_figures(tmp_path):
    """A weights record's held-out figures are re-measured for the weights as they now predict; the weights
    file (and so its sha256) is untouched and the replaced figures stay in the record with the reason."""
    from workbench.inversion.experiment import far_side_experiment
    from workbench.inversion.model import sha256_file
    from workbench.inversion.train import main as train_main

    exp = far_side_experiment(ppd=1, steps=4, ft_steps=2, members=2, methods=("lucey2000",), library=True)
    path = tmp_path / "w.pt"
    stale = {"resnet_pretrained": {"FeO": 99.0}}
    exp.models["resnet_pretrained"].save(path, record={"seed": 0, "note": "kept", "heldout_rmse_wt_pct": stale,
                                                       "interval_coverage": {"x": 1}})
    digest = sha256_file(path)
    assert train_main(["--refresh-record", str(path), "--reason", "test", "--ppd", "1", "--ft-steps", "2"]) == 0
    rec = json.loads(path.with_suffix(".json").read_text())
    assert sha256_file(path) == digest == rec["sha256"] and rec["note"] == "kept"
    assert rec["heldout_history"] == [{"heldout_rmse_wt_pct": stale, "interval_coverage": {"x": 1},
                                       "replaced_on": rec["heldout_measured"]["on"], "reason": "test"}]
    # the pre-trained figures are those of the experiment's own model on the same Moon and pixels
    assert rec["heldout_rmse_wt_pct"]["resnet_pretrained"] == pytest.approx(
        {t: round(float(v), 4) for t, v in exp.table.loc["resnet_pretrained"].xs("rmse", level=1).items()}, abs=1e-4)
    assert set(rec["interval_coverage"]) == {"resnet_pretrained", "resnet_finetuned"}
    OxideInverter.load(path)  # still loads against its record
    with pytest.raises(SystemExit):  # a reason is required
        train_main(["--refresh-record", str(path), "--ppd", "1"])


def test_weights_instrument_comes_from_the_library_or_the_file_name():
    import types
    from pathlib import Path

    from workbench.inversion.train import _instrument_of

    lib = types.SimpleNamespace(meta={"fit": {"library": {"instrument": "kaguya_mi"}}})
    bare = types.SimpleNamespace(meta={"fit": {}})  # trained without --library: no library recorded
    assert _instrument_of(lib, Path("x.pt")) == "kaguya_mi"
    assert _instrument_of(bare, Path("inversion_lro_wac.pt")) == "lro_wac"
    with pytest.raises(InputError, match="pass --instrument"):
        _instrument_of(bare, Path("x.pt"))


def test_mg_number_is_the_molar_ratio_of_the_predicted_oxides_with_a_delta_method_std(tmp_path):
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=6, batch=4, patch=8)
    m.calibrate(refl, truth)
    assert m.mg_number_from == "oxides"
    p = m.predict(refl, epistemic=True)
    a, b = p.MgO.values / 40.304, p.FeO.values / 71.844  # hand-computed: molar Mg#
    np.testing.assert_allclose(p.mg_number.values, 100 * a / (a + b), rtol=1e-5)
    m.mg_number_from = "head"
    h = m.predict(refl, epistemic=True)
    assert not np.allclose(h.mg_number.values, p.mg_number.values)  # the network's own output differs
    np.testing.assert_array_equal(h.MgO_std.values, p.MgO_std.values)  # the other targets are untouched
    # std: first-order propagation of the MgO and FeO stds (before their calibration factors), then Mg#'s own
    k = m.std_factor()
    s_mgo = h.MgO_std.values / k[TARGETS.index("MgO")]
    s_feo = h.FeO_std.values / k[TARGETS.index("FeO")]
    g = 100 / (a + b) ** 2
    expect = np.hypot(g * b / 40.304 * s_mgo, g * a / 71.844 * s_feo) * k[TARGETS.index("mg_number")]
    np.testing.assert_allclose(p.mg_number_std.values, expect, rtol=1e-4)
    e = np.hypot(g * b / 40.304 * p.MgO_epistemic_std.values, g * a / 71.844 * p.FeO_epistemic_std.values)
    np.testing.assert_allclose(p.mg_number_epistemic_std.values, e, rtol=1e-4)
    m.save(tmp_path / "h.pt")
    assert OxideInverter.load(tmp_path / "h.pt").mg_number_from == "head"
    m.mg_number_from = "oxides"
    m.save(tmp_path / "o.pt")
    assert OxideInverter.load(tmp_path / "o.pt").mg_number_from == "oxides"
    blob = torch.load(tmp_path / "o.pt", weights_only=True)
    del blob["mg_number_from"]  # a checkpoint from before the choice existed keeps the network's Mg#
    torch.save(blob, tmp_path / "old.pt")
    assert OxideInverter.load(tmp_path / "old.pt").mg_number_from == "head"


def test_fine_tune_applies_the_extrapolation_factor_of_the_pretrained_model(tmp_path):
    """A pre-trained model carrying ``meta["extrapolation"]`` hands its factor to every pooled fine-tune, in place
    of the site's own factor (not to ``extrapolation=False`` or other discrepancy forms); calibration ignores it;
    checkpoints keep it."""
    import copy

    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=6, batch=4, patch=8)
    m.calibrate(refl, truth, level=0.95)
    kappa = [2.0, 1.0, 0.5, 1.0, 1.0, 1.5, 3.0]
    m.meta["extrapolation"] = {"scale": kappa}
    mask = site_mask(truth, 0.0, 0.0, 300.0)
    shifted = truth + 3.0 * mask  # a site the model gets wrong: its own factor λ would be > 1
    plain, scaled, other, site = (copy.deepcopy(m) for _ in range(4))
    plain.fine_tune(refl, shifted, mask, mode="head", steps=2, discrepancy="none")
    scaled.fine_tune(refl, shifted, mask, mode="head", steps=2)
    other.fine_tune(refl, shifted, mask, mode="head", steps=2, discrepancy="per_target")
    site.fine_tune(refl, shifted, mask, mode="head", steps=2, extrapolation=False)
    assert (plain.extrapolation_scale == 1).all() and (other.extrapolation_scale == 1).all()
    assert (site.extrapolation_scale == 1).all() and site.shift_scale > 1.5  # the site's own factor
    np.testing.assert_allclose(scaled.extrapolation_scale, kappa)
    assert scaled.shift_scale == 1.0  # replaced, not multiplied; the site's factor is still recorded
    assert scaled.meta["fine_tune"][-1]["site_factor"] == pytest.approx(site.shift_scale, rel=1e-3)
    a, b = plain.predict(refl), scaled.predict(refl)
    for k, t in enumerate(TARGETS):
        np.testing.assert_allclose(b[f"{t}_std"].values, kappa[k] * a[f"{t}_std"].values, rtol=1e-5)
        np.testing.assert_allclose(b[t].values, a[t].values, rtol=1e-6)  # means untouched
    # calibration measures the ensemble's own spread, as without the factor, and leaves the factor in place
    np.testing.assert_allclose(scaled.calibrate(refl, truth), copy.deepcopy(plain).calibrate(refl, truth), rtol=1e-6)
    np.testing.assert_allclose(scaled.extrapolation_scale, kappa)
    scaled.save(tmp_path / "k.pt")
    np.testing.assert_allclose(OxideInverter.load(tmp_path / "k.pt").extrapolation_scale, kappa)


def test_experiment_fine_tunes_replay_what_it_was_given(monkeypatch):
    """``replay=`` (e.g. the weights' own pre-training Moon, as the interval calibration replays) is what the
    experiment's fine-tune and every later fine-tune of it (modes, label ceiling) replay; the experiment's
    own fine-tune is reused only for the same mode, steps and seed."""
    from workbench.inversion import experiment as ex

    exp = ex.far_side_experiment(ppd=1, steps=2, ft_steps=2, members=2, sklearn_pixels=200, methods=("lucey2000",))
    assert {k: exp.finetune[k] for k in ("mode", "steps", "seed")} == {"mode": "lora", "steps": 2, "seed": 0}
    refl1, truth1 = ex.observed_moon(1, ppd=1)
    other = [(refl1, truth1, ex.make_split(truth1, ex.CHANGE6)["train"])]
    pre = exp.models["resnet_pretrained"]
    exp2 = ex.far_side_experiment(ppd=1, ft_steps=2, sklearn_pixels=200, methods=("lucey2000",), pretrained=pre,
                                  replay=other)
    t1, t2 = ex.rmse_table(exp), ex.rmse_table(exp2)
    assert t2["resnet_pretrained"] == t1["resnet_pretrained"]  # the same model ...
    assert t2["resnet_finetuned"] != t1["resnet_finetuned"]  # ... fine-tuned with another replay
    one = ex.far_side_experiment(ppd=1, ft_steps=2, sklearn_pixels=200, methods=("lucey2000",), pretrained=pre,
                                 replay=other[0])  # one source as fine_tune takes it
    assert one.finetune["replay"] == other and ex.rmse_table(one)["resnet_finetuned"] == t2["resnet_finetuned"]

    seen = []

    def spy(model, refl, truth, site, **kw):
        seen.append((kw["steps"], kw["seed"], kw["replay"]))
        return model

    monkeypatch.setattr(ex, "fine_tuned", spy)
    assert ex.finetune_modes(exp2, ("lora",), ft_steps=2)["lora"] == t2["resnet_finetuned"]
    assert seen == []  # the reported fine-tune (same mode, steps and seed) is reused, not redone
    ex.finetune_modes(exp2, ("lora", "head"), ft_steps=3)  # other steps: the lora fine-tune is not reused
    ex.finetune_modes(exp2, ("lora",), ft_steps=2, seed=1)  # nor with another seed
    ex.label_ceiling_experiment(exp2, ft_steps=2)
    assert [(n, sd) for n, sd, _ in seen] == [(3, 0), (3, 0), (2, 1), (2, 0)]
    assert all(r is exp2.finetune["replay"] for *_, r in seen)
    none = ex.far_side_experiment(ppd=1, ft_steps=2, sklearn_pixels=200, methods=("lucey2000",), pretrained=pre,
                                  replay=[])
    assert none.finetune["replay"] is None and seen[-1][2] is None  # nothing replayed, recorded as nothing


def test_far_side_experiment_with_library_runs_every_method():
    """The whole hold-out experiment on a 1 px/deg Moon (a few steps): one table, every method scored on
    the same far-side pixels; the library-trained GBM appears; intervals include the site discrepancy."""
    from workbench.inversion.experiment import far_side_experiment, rmse_table

    exp = far_side_experiment(ppd=1, steps=4, ft_steps=2, members=2, sklearn_pixels=400,
                              methods=("lucey2000", "gbm"), library=True)
    table = rmse_table(exp)
    assert {"lucey2000", "gbm", "gbm_library", "resnet_pretrained", "resnet_finetuned"} <= set(table)
    assert set(table["resnet_finetuned"]) == set(TARGETS) and set(table["lucey2000"]) == {"FeO", "TiO2"}
    assert all(np.isfinite(v) and v > 0 for row in table.values() for v in row.values())
    tuned = exp.models["resnet_finetuned"]
    assert tuned.meta["fit"]["library"]["instrument"] == "clementine_uvvis"
    assert tuned.discrepancy_std.shape == (len(TARGETS),)
    assert not (exp.masks["site"] & exp.masks["test"]).any()  # the fine-tuning site is never scored

    from workbench.inversion.experiment import bias_table, finetune_modes, finetune_validation

    val = finetune_validation(exp.models["resnet_pretrained"], ppd=1, sites=("Chang'e-6",), ft_steps=2,
                              variants={"lora_lib": dict(mode="lora", replay=("library",))})
    assert set(val["Chang'e-6"]) == {"pretrained", "lora_lib"}  # another Moon: not the experiment's numbers
    assert val["Chang'e-6"]["pretrained"] != table["resnet_pretrained"]
    assert all(np.isfinite(v) for row in val["Chang'e-6"].values() for v in row.values())

    modes = finetune_modes(exp, ("head", "lora"), ft_steps=2)
    assert modes["lora"] == table["resnet_finetuned"]  # the experiment's own fine-tune, reused
    assert set(modes["head"]) == set(TARGETS) and modes["head"] != modes["lora"]
    bias = bias_table(exp)
    m = exp.masks["test"].values
    err = exp.predictions["gbm"]["MgO"].values[m] - exp.truth["MgO"].values[m]
    assert bias["gbm"]["MgO"] == pytest.approx(np.mean(err), abs=1e-4)
    assert all(abs(b) <= table[name][t] + 1e-4 for name, row in bias.items() for t, b in row.items())  # |bias| ≤ RMSE

    from workbench.inversion.advisor import CANDIDATES
    from workbench.inversion.experiment import advisor_site_experiment

    adv = advisor_site_experiment(exp, ft_steps=2)
    assert adv["site"] == adv["ranking"][0] and abs(adv["lon"]) > 90  # a far-side candidate, ranked first
    assert (adv["lat"], adv["lon"]) == CANDIDATES[adv["site"]]
    assert 0 < adv["test_pixels"] < int(exp.masks["test"].sum()) and adv["site_pixels"] > 0
    assert set(adv["heldout_rmse"]) == set(table)
    # the pre-trained model is the same, only the pixels it is scored on changed
    assert adv["heldout_rmse"]["resnet_pretrained"] != table["resnet_pretrained"]

    from workbench.inversion.experiment import label_ceiling_experiment

    ceil = label_ceiling_experiment(exp, ft_steps=2)
    n_test = int(exp.masks["test"].sum())
    assert ceil["site_pixels"] > 0 and ceil["test_pixels"] > 0
    assert ceil["site_pixels"] + ceil["test_pixels"] == n_test  # two halves of the far side, disjoint
    assert set(ceil["heldout_rmse"]) == set(table)
    assert ceil["heldout_rmse"]["resnet_finetuned"] != table["resnet_finetuned"]


@pytest.mark.parametrize("path", sorted(WEIGHTS_DIR.glob("inversion_*.pt")), ids=lambda p: p.stem)
def test_committed_inversion_weights_match_their_instrument(path):
    """Every committed checkpoint loads (sha256 checked against its record) and carries its instrument's bands."""
    from workbench.synth.instruments import INSTRUMENTS

    instrument = path.stem.removeprefix("inversion_")
    table = INSTRUMENTS[instrument]
    model = OxideInverter.load(path, bands=table["name"].tolist())
    np.testing.assert_allclose(model.wavelengths, table["center_nm"].to_numpy(float))
    record = json.loads(path.with_suffix(".json").read_text())
    assert instrument in record["command"] and "heldout_rmse_wt_pct" in record


@pytest.mark.parametrize("discrepancy", [0.0, 0.5])
def test_epistemic_std_is_the_member_spread_in_every_row_tile(discrepancy):
    """Regression: the ensemble-disagreement output was once filled for the last row tile only (and only
    with a discrepancy term), leaving uninitialised memory elsewhere for the site advisor to rank."""
    refl, _ = _toy(h=12, w=10)
    m = _tiny()
    m.mg_number_from = "head"  # an untrained network's raw outputs, Mg# included (the derived Mg#: test above)
    m.discrepancy_std[:] = discrepancy
    X = refl.values.astype(np.float32)
    mean, std, epi = m.predict_arrays(X, tile_rows=3, epistemic=True)
    with torch.no_grad():  # the member means, computed directly in one pass
        Xp = torch.from_numpy(np.pad(X, ((0, 0), (1, 1), (1, 1)), mode="edge"))[None]
        member_means, _ = m.net(Xp, pad=False)
    expected = member_means[:, 0].std(0, unbiased=False).numpy() * m.y_std[:, None, None]
    np.testing.assert_allclose(epi, expected, rtol=1e-4, atol=1e-6)
    assert np.all(std >= epi - 1e-6)  # total spread includes the disagreement


def test_answer_does_not_depend_on_axis_order_or_direction():
    """The network's stem and context windows are not flip/transpose symmetric: every layout of the same
    pixels is fed in the training layout (north-up, east-right, lat before lon) and returned as given."""
    refl, truth = _toy(16, 20)
    m = OxideInverter(BANDS, WL, width=8, depth=1, stem=4, members=2, context=(5,))
    ref = m.predict(refl)
    layouts = {"lon before lat": refl.transpose("band", "lon", "lat"),
               "south-up": refl.isel(lat=slice(None, None, -1)),
               "west-right": refl.isel(lon=slice(None, None, -1))}
    for name, r in layouts.items():
        p = m.predict(r)
        assert p["FeO"].dims == tuple(d for d in r.dims if d != "band"), name
        np.testing.assert_array_equal(p["lat"].values, r["lat"].values)
        xr.testing.assert_allclose(p["FeO"], ref["FeO"].transpose(*p["FeO"].dims).sel(lat=r.lat, lon=r.lon),
                                   atol=1e-6)
    # training on a south-up copy (truth and mask flipped alike) gives the same model
    a = _tiny().fit(refl, truth, steps=3, batch=2, patch=8)
    flip = {"lat": slice(None, None, -1)}
    b = _tiny().fit(refl.isel(flip), truth.isel(flip), steps=3, batch=2, patch=8)
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k


def test_a_numpy_cube_is_refused_with_one_message_saying_what_to_pass():
    """Regression: predict/fit/fine_tune on a bare numpy array raised ``AttributeError: ... no attribute 'dims'``."""
    refl, truth = _toy(8, 8)
    m = _tiny()
    arr = refl.values
    want = r"xarray\.DataArray.*\(band, lat, lon\).*band names.*wavelength.*got numpy\.ndarray"
    with pytest.raises(InputError, match=want):
        m.predict(arr)
    with pytest.raises(InputError, match=want):
        m.fit(arr, truth, steps=1)
    with pytest.raises(InputError, match=want):
        m.fine_tune(arr, truth, site_mask(truth, 0, 0, 500), steps=1)
    with pytest.raises(InputError, match=want):  # a replayed source is a cube too
        m.fine_tune(refl, truth, site_mask(truth, 0, 0, 500), steps=1, replay=(arr, truth, None))


def test_truth_and_mask_must_be_xarray_on_the_cube_grid():
    """Regression: a numpy site mask raised a raw AttributeError inside fine_tune."""
    refl, truth = _toy(8, 8)
    m = _tiny()
    mask = site_mask(truth, 0, 0, 500)
    with pytest.raises(InputError, match=r"mask must be a boolean xarray\.DataArray.*got numpy\.ndarray.*site_mask"):
        m.fine_tune(refl, truth, mask.values, steps=1)
    with pytest.raises(InputError, match=r"mask has dims .*reflectance's grid"):
        m.fine_tune(refl, truth, mask.isel(lat=slice(0, 4)), steps=1)
    with pytest.raises(InputError, match=r"truth must be an xarray\.Dataset.*got xarray\.DataArray"):
        m.fit(refl, truth.to_array(), steps=1)


def test_a_band_given_twice_is_named():
    """Regression: six bands with R415 twice said ``missing [], extra []``."""
    refl, _ = _toy(6, 6)
    m = _tiny()
    twice = xr.concat([refl, refl.isel(band=[0])], "band")
    with pytest.raises(InputError, match=r"given more than once: \['R415'\].*drop_duplicates"):
        m.predict(twice)
    swapped = xr.concat([refl.isel(band=[0, 1]), refl.isel(band=[0])], "band")  # R950 replaced by R415
    with pytest.raises(InputError, match=r"missing \['R950'\].*given more than once: \['R415'\]"):
        m.predict(swapped)


def _saved(tmp_path, edit):
    """A tiny model saved, its checkpoint blob edited by ``edit`` and written back (no sha256 record)."""
    path = tmp_path / "w.pt"
    _tiny().save(path)
    path.with_suffix(".json").unlink()
    blob = torch.load(path, weights_only=True)
    edit(blob)
    torch.save(blob, path)
    return path


def test_a_wrong_shape_checkpoint_error_is_one_line(tmp_path):
    """Regression: the error embedded PyTorch's many-line 'size mismatch' dump."""
    wide = OxideInverter(BANDS, WL, width=24, depth=1, stem=8, members=2).net.state_dict()
    path = _saved(tmp_path, lambda b: b.update(state_dict=wide))
    with pytest.raises(CheckpointError) as info:
        OxideInverter.load(path)
    msg = str(info.value)
    assert "\n" not in msg and "Error(s) in loading" not in msg
    assert "inp.weight" in msg and "(2, 8, 24)" in msg and "(2, 8, 16)" in msg and "retrain" in msg
    path = _saved(tmp_path, lambda b: b["state_dict"].pop("head.bias"))
    with pytest.raises(CheckpointError, match="head.bias") as info:
        OxideInverter.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key", ["config", "members", "bands"])
def test_a_checkpoint_without_its_config_is_not_this_version(tmp_path, key):
    """Regression: a checkpoint missing ``config`` or a config key raised a raw ``KeyError``."""
    def edit(blob):
        if key == "config":
            del blob["config"]
        else:
            cfg = json.loads(blob["config"])
            del cfg[key]
            blob["config"] = json.dumps(cfg)

    path = _saved(tmp_path, edit)
    with pytest.raises(CheckpointError, match=rf"'{key}'.*not an OxideInverter checkpoint of this version.*"
                                              "retrain.*committed weights"):
        OxideInverter.load(path)


@pytest.mark.parametrize("kind", ["pls", "random_forest", "gbm"])
def test_sklearn_predict_refuses_negative_and_wrong_band_count_and_keeps_nan(kind):
    """Regression: a negative reflectance row came back NaN and a wrong band count gave sklearn's raw
    ``ValueError: X has 7 features, but StandardScaler is expecting 9``."""
    from workbench.inversion.baselines import SklearnInverter

    rng = np.random.default_rng(0)
    X = rng.uniform(0.05, 0.3, (60, 5))
    sk = SklearnInverter(kind, size=5).fit(X, rng.normal(size=(60, 2)), [415, 750, 900, 950, 1000])
    with pytest.raises(InputError, match="negative"):
        sk.predict(np.array([[0.1, -0.1, 0.1, 0.1, 0.1]]))
    with pytest.raises(InputError, match=r"expected 5 bands.*\(415\.0, .*1000\.0\).*got 4"):
        sk.predict(X[:, :4])
    with pytest.raises(InputError, match=r"\(n, 5\).*got shape \(5,\)"):
        sk.predict(X[0])
    got = sk.predict(np.array([[np.nan, 0.1, 0.1, 0.1, 0.1], [0.0, 0.1, 0.1, 0.1, 0.1], X[0]]))
    assert np.isnan(got[:2]).all() and np.isfinite(got[2]).all()  # NaN (and zero: no measurement) → NaN
    with pytest.raises(InputError, match=r"expected 5 bands.*got 4"):
        SklearnInverter(kind, size=5).fit(X[:, :4], rng.normal(size=(60, 2)), [415, 750, 900, 950, 1000])


def test_calibrate_and_fine_tune_check_their_inputs_and_align_truth_by_position():
    """calibrate() aligns truth with the cube by position, like fit(): a truth grid with other coordinate
    labels used to calibrate on no pixel at all (scale 1.0, silently); a missing target, an empty
    calibration set, a chunked cube with bad values and a missing fine-tuning mask each get one error."""
    refl, truth = _toy()
    m = _tiny().fit(refl, truth, steps=8, batch=4, patch=8)
    scale = m.calibrate(refl, truth).copy()
    shifted = truth.assign_coords(lat=truth.lat + 0.37, lon=truth.lon + 0.37)  # same pixels, other labels
    np.testing.assert_allclose(m.calibrate(refl, shifted), scale, rtol=1e-6)
    assert not np.allclose(scale, 1.0)
    with pytest.raises(InputError, match="missing"):
        m.calibrate(refl, truth.drop_vars("TiO2"))
    with pytest.raises(InputError, match="no calibration pixel"):
        m.calibrate(refl, truth, mask=xr.zeros_like(truth.FeO, dtype=bool))
    for level in (0.0, 1.0, 95, True):
        with pytest.raises(InputError, match="strictly between 0 and 1"):
            m.calibrate(refl, truth, level=level)
    m.predict = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("worker lost"))  # a failure mid-way
    with pytest.raises(RuntimeError, match="worker lost"):
        m.calibrate(refl, truth)
    np.testing.assert_array_equal(m.std_scale, scale)  # a failed calibration leaves the model as it was
    del m.predict
    with pytest.raises(InputError, match="needs mask"):
        m.fine_tune(refl, truth, None)
    bad = refl.copy()
    bad[0, 1, 1] = -0.05
    with pytest.raises(InputError, match="negative"):
        m.predict(bad.chunk({"lat": 4}))  # a dask-backed cube is checked like an in-memory one
    bad[0, 1, 1] = 50.0
    with pytest.raises(InputError, match="above 1.5"):
        m.predict(bad.chunk({"lat": 4}))


def test_a_save_that_fails_half_way_leaves_the_old_checkpoint_and_record_a_matching_pair(tmp_path):
    """The record is written before either file is renamed into place: a failure while writing it used to
    leave the new weights beside the old record, whose sha256 load() then refused as a replaced file."""
    refl, truth = _toy(8, 8)
    m = _tiny().fit(refl, truth, steps=3, batch=2, patch=6)
    m.save(tmp_path / "w.pt")
    before = m.predict(refl).FeO.values
    m.fit(refl, truth, steps=2, batch=2, patch=6)
    with pytest.raises(TypeError):
        m.save(tmp_path / "w.pt", record={"note": object()})  # not JSON: the record cannot be written
    kept = OxideInverter.load(tmp_path / "w.pt")  # checks the .pt against the record's sha256
    np.testing.assert_array_equal(kept.predict(refl).FeO.values, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.pt"]


def test_sites_out_of_range_are_refused_not_wrapped():
    """site_mask(lat=120) selected pixels around 60°N, 180°; the advisor snapped such candidates to a row."""
    from workbench.inversion.advisor import site_advisor
    from workbench.inversion.experiment import site_latlon

    refl, truth = _toy(8, 8)
    with pytest.raises(InputError, match="latitude out of range"):
        site_mask(truth, 120.0, 0.0, 100.0)
    for radius in (0, -5.0, float("nan")):
        with pytest.raises(InputError, match="radius_km"):
            site_mask(truth, 0.0, 0.0, radius)
    with pytest.raises(InputError, match="finite"):
        site_latlon((float("nan"), 10.0))
    with pytest.raises(InputError, match="longitude out of range"):
        site_latlon((10.0, 400.0))
    pred = _tiny().predict(refl, epistemic=True)
    with pytest.raises(InputError, match="candidate 'x'.*latitude"):
        site_advisor(pred, refl, candidates={"x": (95.0, 0.0)})


def test_save_refuses_a_folder_in_the_way_before_writing_and_calibrate_failure_keeps_the_scale(tmp_path):
    refl, truth = _toy(8, 8)
    m = _tiny().fit(refl, truth, steps=3, batch=2, patch=6)
    (tmp_path / "w.pt").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        m.save(tmp_path / "w.pt")
    assert not (tmp_path / "w.json").exists()  # the record is not written beside no checkpoint
    scale = m.calibrate(refl, truth).copy()
    with pytest.raises(InputError, match="no calibration pixel"):
        m.calibrate(refl, truth, mask=xr.zeros_like(truth.FeO, dtype=bool))
    np.testing.assert_array_equal(m.std_scale, scale)
    assert site_mask(truth, 0.0, 0.0, np.array(500.0)).any()  # a 0-d array is a number
    with pytest.raises(InputError, match="radius_km"):
        site_mask(truth, 0.0, 0.0, True)


def _grid_truth(values=None):
    lat, lon = np.array([1.5, 0.5, -0.5]), np.array([0.5, 1.5, 2.5, 3.5])
    y = np.arange(12.0).reshape(3, 4) if values is None else values
    return xr.Dataset({"FeO": (("lat", "lon"), y)}, coords={"lat": lat, "lon": lon})


@pytest.mark.parametrize("layout", ["south-up", "west-right", "lon before lat"])
def test_metrics_coverage_and_bias_pair_prediction_and_truth_by_coordinates(layout):
    """A prediction in another layout than the truth (model.predict keeps the cube's) once gave RMSE 6.5 for
    the same values: the arrays were paired by position."""
    import types

    from workbench.inversion.experiment import bias_table, coverage, metrics

    truth = _grid_truth()
    pred = truth.assign(FeO_std=(("lat", "lon"), np.ones((3, 4))))
    mask = xr.DataArray(np.ones((3, 4), bool), coords=truth.coords).where(truth.lon < 3, False)
    moved = {"south-up": lambda o: o.isel(lat=slice(None, None, -1)),
             "west-right": lambda o: o.isel(lon=slice(None, None, -1)),
             "lon before lat": lambda o: o.transpose("lon", "lat")}[layout]
    assert metrics(moved(pred), truth, moved(mask), targets=("FeO",)) == {"FeO": {"rmse": 0.0, "r2": 1.0}}
    assert coverage(moved(pred), truth, moved(mask), targets=("FeO",)) == {"FeO": {"cov68": 1.0, "cov95": 1.0}}
    exp = types.SimpleNamespace(truth=truth, masks={"test": moved(mask)}, predictions={"gbm": moved(pred)})
    assert bias_table(exp, ("gbm",)) == {"gbm": {"FeO": 0.0}}
    # only the masked pixels count, wherever they sit in the prediction's layout
    off = pred.assign(FeO=pred.FeO + xr.where(truth.lon > 3, 100.0, 0.0))
    assert metrics(moved(off), truth, mask, targets=("FeO",))["FeO"]["rmse"] == 0.0


def test_metrics_on_another_grid_than_the_truth_is_one_clear_error():
    from workbench.inversion.experiment import coverage, metrics

    truth = _grid_truth()
    mask = xr.DataArray(np.ones((3, 4), bool), coords=truth.coords)
    shifted = truth.assign_coords(lon=truth.lon + 360.0).assign(FeO_std=truth.FeO * 0 + 1)  # a 0-360 grid
    with pytest.raises(InputError, match="the prediction is on another lon grid than the truth"):
        metrics(shifted, truth, mask, targets=("FeO",))
    with pytest.raises(InputError, match="the mask is on another lat grid than the truth"):
        coverage(truth.assign(FeO_std=truth.FeO * 0 + 1), truth, mask.isel(lat=slice(0, 2)), targets=("FeO",))


def test_area_weighted_metrics_coverage_and_bias_known_answers():
    """Rows at 75, 45 and 15 deg (30-deg cells) weigh 1 - sin 60 : sin 60 - sin 30 : sin 30 (cell areas)."""
    import types

    from workbench.inversion.experiment import bias_table, coverage, metrics

    lat, lon = np.array([75.0, 45.0, 15.0]), np.array([10.0, 40.0])
    w = np.array([1 - np.sin(np.pi / 3), np.sin(np.pi / 3) - 0.5, 0.5])
    y = np.repeat([[10.0], [20.0], [40.0]], 2, axis=1)
    e = np.repeat([[3.0], [2.0], [1.0]], 2, axis=1)
    truth = xr.Dataset({"FeO": (("lat", "lon"), y)}, coords={"lat": lat, "lon": lon})
    pred = xr.Dataset({"FeO": (("lat", "lon"), y + e), "FeO_std": (("lat", "lon"), np.full((3, 2), 1.4))},
                      coords={"lat": lat, "lon": lon})
    mask = xr.DataArray(np.ones((3, 2), bool), coords=truth.coords)
    got = metrics(pred, truth, mask, targets=("FeO",), area_weighted=True)["FeO"]
    ybar = np.sum(w * [10.0, 20.0, 40.0]) / w.sum()
    assert got["rmse"] == pytest.approx(np.sqrt(np.sum(w * [9.0, 4.0, 1.0]) / w.sum()))
    sst = np.sum(w * (np.array([10.0, 20.0, 40.0]) - ybar) ** 2)
    assert got["r2"] == pytest.approx(1 - np.sum(w * [9.0, 4.0, 1.0]) / sst)
    assert metrics(pred, truth, mask, targets=("FeO",))["FeO"]["rmse"] == pytest.approx(np.sqrt(14 / 3))  # per pixel
    cov = coverage(pred, truth, mask, targets=("FeO",), area_weighted=True)["FeO"]  # |z| = 2.14, 1.43, 0.71
    assert cov == pytest.approx({"cov68": w[2] / w.sum(), "cov95": w[1:].sum() / w.sum()})
    exp = types.SimpleNamespace(truth=truth, masks={"test": mask}, predictions={"gbm": pred})
    assert bias_table(exp, ("gbm",), area_weighted=True)["gbm"]["FeO"] == round(np.sum(w * [3, 2, 1]) / w.sum(), 4)
    assert bias_table(exp, ("gbm",))["gbm"]["FeO"] == 2.0
    with_nan = pred.assign(FeO=pred.FeO.where(truth.lat < 70))  # NaN in: the pixel is left out of both sums
    assert metrics(with_nan, truth, mask, targets=("FeO",), area_weighted=True)["FeO"]["rmse"] == pytest.approx(
        np.sqrt(np.sum(w[1:] * [4.0, 1.0]) / w[1:].sum()))


def _fake_moon(seed=0, instrument="clementine_uvvis", ppd=1, snr=100.0, geography="auto"):
    """A stand-in for observed_moon: a 1 px/deg grid of constant reflectance and truth (no synthesis)."""
    from workbench.geo import global_grid

    lat, lon = global_grid(1)
    refl = xr.DataArray(np.full((3, lat.size, lon.size), 0.1, np.float32), dims=("band", "lat", "lon"),
                        coords={"band": BANDS, "wavelength": ("band", WL), "lat": lat, "lon": lon})
    truth = xr.Dataset({t: (("lat", "lon"), np.full((lat.size, lon.size), 5.0)) for t in TARGETS},
                       coords={"lat": lat, "lon": lon})
    return refl, truth


def test_far_side_experiment_refuses_unknown_methods_before_any_work(monkeypatch):
    from workbench.inversion import experiment as ex

    def no_moon(*a, **k):
        raise AssertionError("the Moon was built before the methods were checked")

    monkeypatch.setattr(ex, "observed_moon", no_moon)
    with pytest.raises(InputError, match=r"unknown method\(s\) \['lucey', 'random-forest'\] in methods; choose from "
                                         r"\['lucey2000', 'lucey_refit', 'pls', 'random_forest', 'gbm'\]"):
        ex.far_side_experiment(ppd=1, methods=("lucey", "random-forest"))


@pytest.mark.parametrize("site, radius_km, message", [
    ("Mare Crisium", 60.0, r"site 'Mare Crisium' \(17, 59.1\) is not on the far side \(\|lon\| > 90\)"),
    ((-20.0, 130.2), 1.0, r"no far-side pixel of the 1 px/deg grid lies within radius_km=1 km of site "
                          r"\(-20.0, 130.2\).*larger radius_km or a finer ppd")])
def test_far_side_experiment_without_site_pixels_says_why_before_fitting(monkeypatch, site, radius_km, message):
    """A near-side site once failed ~47 s later, after every baseline, with 'no valid training pixels'."""
    from workbench.inversion import experiment as ex

    monkeypatch.setattr(ex, "observed_moon", _fake_moon)

    def no_fit(*a, **k):
        raise AssertionError("a model was fitted before the site was checked")

    monkeypatch.setattr(ex.bl, "classical_maps", no_fit)
    monkeypatch.setattr(ex, "fine_tuned", no_fit)
    with pytest.raises(InputError, match=message):
        ex.far_side_experiment(ppd=1, ft_steps=1, site=site, radius_km=radius_km, methods=("lucey2000",),
                               pretrained=_tiny())


def _instrument_model(instrument):
    from workbench.synth.instruments import INSTRUMENTS

    table = INSTRUMENTS[instrument]
    return OxideInverter(list(table["name"]), list(table["center_nm"]), width=8, depth=1, stem=4, members=2)


def _fake_cases(moons, targets=TARGETS):
    rng = np.random.default_rng(0)
    return [{"moon": int(m), "site": "Chang'e-6", "z": {t: np.abs(rng.normal(0, 1 + m, 300)).astype(np.float32)
                                                         for t in targets}} for m in moons]


@pytest.mark.parametrize("instrument", ["lro_wac", "kaguya_mi"])
def test_calibration_observes_the_moons_with_the_instrument_of_the_weights(tmp_path, monkeypatch, instrument):
    """Weights without a spectral library (Kaguya, WAC) were calibrated on Clementine observations: a band
    mismatch after the whole training run."""
    from workbench.inversion import shift_calibration as sc

    seen = []

    def observed(seed, inst, ppd, snr):
        seen.append(inst)
        raise RuntimeError("stop after the instrument was chosen")

    monkeypatch.setattr(sc, "observed_moon", observed)
    monkeypatch.setattr(sc, "pretraining_sources", lambda model, inst, *a: seen.append(inst) or {})
    with pytest.raises(RuntimeError, match="stop"):
        sc.far_side_z(_instrument_model(instrument), moon_seeds=(1,), sites=("Chang'e-6",), ppd=1, ft_steps=1)
    assert seen == [instrument, instrument]
    # calibrate_weights and train's calibration pass the instrument (and the run's grid and steps) through
    calls = []
    monkeypatch.setattr(sc, "far_side_z", lambda model, moons, sites, **kw: calls.append(kw) or _fake_cases(moons))
    _instrument_model(instrument).save(tmp_path / "custom.pt")
    sc.calibrate_weights(tmp_path / "custom.pt", moon_seeds=(1, 3), sites=("Chang'e-6",), ppd=1, ft_steps=1)
    assert calls[-1]["instrument"] == instrument and (calls[-1]["ppd"], calls[-1]["ft_steps"]) == (1, 1)


def test_train_calibrates_the_new_weights_for_their_instrument_grid_and_steps(tmp_path, monkeypatch):
    import types

    import pandas as pd

    from workbench.inversion import shift_calibration as sc
    from workbench.inversion import train

    model = _instrument_model("lro_wac")
    exp = types.SimpleNamespace(models={"resnet_pretrained": model}, table=pd.DataFrame({"x": [1.0]}))
    monkeypatch.setattr(train, "far_side_experiment", lambda *a, **k: exp)
    monkeypatch.setattr(train, "_record_figures", lambda exp: {})
    monkeypatch.setattr(train, "refresh_heldout_record", lambda *a, **k: {})
    seen = {}
    monkeypatch.setattr(sc, "calibrate_weights", lambda path, **kw: seen.update(kw) or {"scale": [1.0],
                                                                                       "leave_one_moon_out": {}})
    assert train.main(["--instrument", "lro_wac", "--ppd", "1", "--ft-steps", "3", "--out",
                       str(tmp_path / "wac.pt")]) == 0
    assert (seen["instrument"], seen["ppd"], seen["ft_steps"]) == ("lro_wac", 1, 3)


def test_shift_calibration_main_remeasures_the_records_held_out_figures(tmp_path, monkeypatch):
    """Re-saving the weights with the factor left the record's figures describing the weights without it."""
    from workbench.inversion import shift_calibration as sc
    from workbench.inversion import train

    path = tmp_path / "w.pt"
    stale = {"resnet_finetuned": {"FeO": 9.0}}
    _instrument_model("clementine_uvvis").save(path, record={"seed": 0, "heldout_rmse_wt_pct": stale,
                                                             "interval_coverage": {"x": 1}})
    monkeypatch.setattr(sc, "far_side_z", lambda model, moons, sites, **kw: _fake_cases(moons))
    sc.calibrate_weights(path, moon_seeds=(1, 3), sites=("Chang'e-6",))  # the API alone: figures marked stale
    rec = json.loads(path.with_suffix(".json").read_text())
    assert rec["heldout_rmse_wt_pct"] == stale and "before the extrapolation factor" in rec["heldout_stale"]
    fresh = {"heldout_rmse_wt_pct": {"resnet_finetuned": {"FeO": 1.0}}, "interval_coverage": {"y": 2}}
    seen = {}
    monkeypatch.setattr(train, "heldout_figures", lambda model, inst, **kw: seen.update(kw, instrument=inst) or fresh)
    assert sc.main(["--weights", str(path), "--moons", "1", "3"]) == 0
    rec = json.loads(path.with_suffix(".json").read_text())
    assert rec["heldout_rmse_wt_pct"] == fresh["heldout_rmse_wt_pct"] and "heldout_stale" not in rec
    assert rec["heldout_history"][-1]["heldout_rmse_wt_pct"] == stale
    assert "extrapolation factor" in rec["heldout_history"][-1]["reason"] and seen["instrument"] == "clementine_uvvis"
    OxideInverter.load(path)  # the record still matches the weights


def test_shift_calibration_with_one_moon_is_refused_before_any_fine_tune(tmp_path, monkeypatch):
    from workbench.inversion import shift_calibration as sc

    def no_work(*a, **k):
        raise AssertionError("fine-tuned before the Moons were checked")

    monkeypatch.setattr(sc, "far_side_z", no_work)
    _instrument_model("clementine_uvvis").save(tmp_path / "w.pt")
    with pytest.raises(InputError, match=r"at least two different validation Moons.*got \[1\].*--moons 1 3"):
        sc.calibrate_weights(tmp_path / "w.pt", moon_seeds=(1,))
    with pytest.raises(InputError, match=r"got \[4, 4\]"):
        sc.main(["--weights", str(tmp_path / "w.pt"), "--moons", "4", "4"])
