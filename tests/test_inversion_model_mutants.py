"""Known answers for inversion-model behaviours that a mutation review found no other test pinning.

Each test is a tiny, seeded case worked out by hand or by an independent computation, and each one fails on
at least one change to ``workbench/inversion/model.py``, ``resnet.py``, ``baselines.py`` or ``global_map.py``
that the other inversion tests let through:

* training: the input and target statistics are those of the valid training pixels only (mask, zero
  reflectance and NaN truth left out); targets are standardised; a context model trains on a map with a
  hole (empty context windows give 0, not NaN); each source's loss is weighted
  (``library_weight``, ``replay_weight`` shared by the replayed sources); the masked NLL averages the
  masked pixels only; training and inference run the same function;
* the ensemble: mean of the member means, variance = mean variance + member spread, log variance clamped
  as in training, target units and calibration factors, the discrepancy term in quadrature, the molar
  Mg# and its delta-method std (oxides clamped at 0.01 wt%);
  ``with_members`` keeps whole members; row tiles grouped for the stem input give the same map;
* fine-tuning and calibration: repeated pooled fine-tunes multiply the shift factor, the per-target
  discrepancy keeps the largest; LoRA adapters start neutral, cover every trunk layer and merge back;
  ``calibrate`` measures the ensemble's own spread (no discrepancy term) with the normal quantile;
* checkpoints: ``std_scale`` survives save/load and the recorded sha256 is checked;
* baselines: the spectral features (log R and ratios to the 750 nm band), the PLS's 4 components, a
  refit's RMSE, its ``init`` and rows with an unmeasured band;
* global maps: an interrupted run records the caller's chunk rows as done, and a resume after a
  recalibration recomputes every row; a cube's bands are put in the model's order block by block.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from workbench.errors import CheckpointError
from workbench.inversion import baselines as bl
from workbench.inversion import global_map
from workbench.inversion import model as model_mod
from workbench.inversion.model import TARGETS, OxideInverter, site_mask
from workbench.inversion.resnet import ResidualInversionNet, gaussian_nll

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BANDS = ["R415", "R750", "R950"]
WL = [415.0, 750.0, 950.0]
K = len(TARGETS)
Z95_ONE_SIDED = 1.6448536269514722  # the normal's 95th percentile: half-width of the central 90 % interval


def _cube(h=8, w=10, seed=0) -> xr.DataArray:
    """A regional (band, lat, lon) cube, north-up and east-right, reflectance 0.05-0.3."""
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.05, 0.3, (3, h, w)).astype(np.float32)
    return xr.DataArray(data, dims=("band", "lat", "lon"),
                        coords={"band": BANDS, "wavelength": ("band", WL), "lat": np.linspace(10, -10, h),
                                "lon": np.linspace(-20, 20, w)})


def _truth(refl: xr.DataArray, seed=1, offset=10.0) -> xr.Dataset:
    """Oxide maps (wt%) on ``refl``'s grid: ``offset`` plus uniform noise, a different field per target."""
    rng = np.random.default_rng(seed)
    shape = (refl.sizes["lat"], refl.sizes["lon"])
    return xr.Dataset({t: (("lat", "lon"), offset + k + rng.uniform(0, 5, shape)) for k, t in enumerate(TARGETS)},
                      coords={"lat": refl.lat, "lon": refl.lon})


def _model(members=2, context=(), seed=0) -> OxideInverter:
    return OxideInverter(BANDS, WL, width=8, depth=1, stem=4, members=members, seed=seed, context=context)


def _constant(model: OxideInverter, means, log_vars) -> OxideInverter:
    """Make every pixel's output of member ``m`` the standardised mean ``means[m]`` (K,) and log variance
    ``log_vars[m]`` (K,): the head's weights zeroed, its biases set."""
    with torch.no_grad():
        model.net.head.weight.zero_()
        model.net.head.bias[:, 0, :K] = torch.as_tensor(np.asarray(means, np.float32))
        model.net.head.bias[:, 0, K:] = torch.as_tensor(np.asarray(log_vars, np.float32))
    return model


# -- training --------------------------------------------------------------------------------------------------
def test_fit_statistics_are_those_of_the_valid_training_pixels():
    """in_mean/in_std: mean and std (+1e-6) of log R, y_mean/y_std of the truth, over the pixels that are in the
    mask, have every band above zero and every target known: here not the last row (masked out, truth +50 wt%),
    not pixel (0, 0) (R750 = 0: no measurement) and not pixel (1, 1) (FeO unknown)."""
    refl = _cube(8, 10)
    refl.values[1, 0, 0] = 0.0
    truth = _truth(refl)
    truth["FeO"].values[1, 1] = np.nan
    for t in TARGETS:
        truth[t].values[-1] += 50.0
    mask = xr.DataArray(np.broadcast_to(np.arange(8)[:, None] < 7, (8, 10)), dims=("lat", "lon"),
                        coords={"lat": refl.lat, "lon": refl.lon})
    valid = np.ones((8, 10), bool)
    valid[-1] = valid[0, 0] = valid[1, 1] = False
    m = _model().fit(refl, truth, mask, steps=1, batch=2, patch=4)
    logx = np.log(refl.values.astype(float)[:, valid])
    np.testing.assert_allclose(m.net.in_mean.numpy(), logx.mean(1), rtol=1e-5)
    np.testing.assert_allclose(m.net.in_std.numpy(), logx.std(1) + 1e-6, rtol=1e-4)
    y = np.stack([truth[t].values[valid] for t in TARGETS])
    np.testing.assert_allclose(m.y_mean, y.mean(1), rtol=1e-5)
    np.testing.assert_allclose(m.y_std, y.std(1) + 1e-6, rtol=1e-4)


def test_training_targets_are_standardised():
    """Truth alternating between 10 and 20 wt% column by column: mean 15, std 5, so every sampled target is ±1."""
    refl = _cube(8, 8)
    cols = np.broadcast_to(np.arange(8) % 2, (8, 8))
    truth = xr.Dataset({t: (("lat", "lon"), 10.0 + 10.0 * cols) for t in TARGETS},
                       coords={"lat": refl.lat, "lon": refl.lon})
    m = _model()
    X, Y, valid = m._prepare(refl, truth, None)
    m._set_stats(X, Y, valid)
    _, yb, mb = m._sampler(X, Y, valid, 4, np.random.default_rng(0))(3)
    assert yb.shape == (3, K, 4, 4) and bool(mb.all())
    np.testing.assert_allclose(np.abs(yb.numpy()), 1.0, atol=1e-5)


def test_train_weights_each_sources_loss():
    """A second source with weight 0 changes nothing: the same steps with and without it give the same weights."""
    torch.manual_seed(0)
    h = 1

    def source():
        xb, yb = torch.rand(2, 3, 4 + 2 * h, 4 + 2 * h) + 0.05, torch.randn(2, K, 4, 4)
        return lambda: (xb, yb, torch.ones(2, 1, 4, 4, dtype=torch.bool))

    one, two = source(), source()
    a, b = _model(), _model()
    a._train(list(a.net.parameters()), [one], [1.0], steps=3, lr=1e-2)
    b._train(list(b.net.parameters()), [one, two], [1.0, 0.0], steps=3, lr=1e-2)
    start = _model().net.state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in a.net.state_dict().items())  # the steps did train
    for k, v in a.net.state_dict().items():
        torch.testing.assert_close(b.net.state_dict()[k], v, rtol=0, atol=1e-7, msg=k)


def test_library_weight_scales_the_library_loss_not_the_maps():
    """With ``library_weight=1e-6`` the library hardly counts: two fits whose libraries differ only by +100 wt% in
    the truth give nearly the same model (the library as the main source would give two different ones)."""
    refl, lib = _cube(10, 10, seed=0), _cube(10, 10, seed=2)
    truth, lib_truth = _truth(refl), _truth(lib, seed=3)
    fits = [_model().fit(refl, truth, steps=4, batch=2, patch=6, library=(lib, lib_truth + extra), library_weight=1e-6)
            for extra in (0.0, 100.0)]
    a, b = (f.predict(refl) for f in fits)
    assert float(np.abs(a.FeO - b.FeO).max()) < 2e-4 * float(np.abs(a.FeO).max())  # 1e-5 here; swapped: 5e-3


def test_a_context_model_trains_on_a_map_with_a_hole():
    """A 3x3 block of missing pixels: the centre's 3x3 context window holds no valid pixel and gives 0, not 0/0.
    The hole's own outputs are left out of the loss, but a NaN there would still make the loss (and the weights)
    NaN."""
    refl = _cube(8, 8)
    refl.values[:, 3:6, 3:6] = np.nan
    m = _model(context=(3,)).fit(refl, _truth(refl), steps=2, batch=2, patch=8)
    assert np.isfinite(m.meta["fit"]["final_loss"])
    assert all(bool(torch.isfinite(v).all()) for v in m.net.state_dict().values())
    fe = m.predict(refl).FeO.values
    assert np.isnan(fe[3:6, 3:6]).all() and np.isfinite(fe).sum() == 64 - 9


def test_masked_nll_averages_the_masked_pixels_only():
    """Mean 0, log variance 0: each term is err²/2; targets 1 on the 4 masked pixels and 3 elsewhere give 0.5
    (with the unmasked pixels' 4.5 the mean over all 9 would be 24.5/9 = 2.72)."""
    mean = torch.zeros(2, 1, 1, 3, 3)
    target = torch.full((1, 1, 3, 3), 3.0)
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    mask[..., :2, :2] = True
    target[mask] = 1.0
    assert float(gaussian_nll(mean, torch.zeros_like(mean), target, mask)) == pytest.approx(0.5)


def test_training_forward_is_the_inference_forward():
    """The residual trunk gives the same outputs with gradients on (training) as in inference (in place)."""
    torch.manual_seed(0)
    net = ResidualInversionNet(3, K, width=8, depth=2, stem=4, members=2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.rand(1, 3, 6, 7) + 0.05
    train_mean, train_lv = net(x)
    with torch.no_grad():
        inf_mean, inf_lv = net(x)
    torch.testing.assert_close(train_mean.detach(), inf_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(train_lv.detach(), inf_lv, rtol=1e-5, atol=1e-6)


# -- the ensemble ----------------------------------------------------------------------------------------------
def test_ensemble_moments_units_factors_and_discrepancy_known_answers():
    """Three members with standardised means 0, 1, 2 and log variances 0, ln 2, ln 3 (TiO2: mean 1 and log variance
    10 in every member, clamped to 8 as in training): mean 1, variance 2 + 2/3 (TiO2: e^8). With y_mean 10 + k,
    y_std 2, factor 1.5 x 1.2 (Al2O3 x 2) and a 3 wt% discrepancy on MgO (in quadrature): mean 12 + k, std
    2 sqrt(8/3) 1.8 = 5.8788 (TiO2 2 e^4 1.8, Al2O3 11.7576, MgO sqrt(5.8788² + 9)), epistemic 2 sqrt(2/3). A pixel
    with one band NaN and one with a band at zero come out NaN in every output."""
    m = _model(members=3)
    means = np.tile(np.array([0.0, 1.0, 2.0])[:, None], (1, K))
    log_vars = np.tile(np.log([1.0, 2.0, 3.0])[:, None], (1, K))
    means[:, 1], log_vars[:, 1] = 1.0, 10.0
    _constant(m, means, log_vars)
    m.mg_number_from = "head"
    m.y_mean = (10.0 + np.arange(K)).astype(np.float32)
    m.y_std = np.full(K, 2.0, np.float32)
    m.std_scale = np.full(K, 1.5, np.float32)
    m.shift_scale = 1.2
    m.extrapolation_scale = np.ones(K, np.float32)
    m.extrapolation_scale[2] = 2.0
    m.discrepancy_std = np.zeros(K, np.float32)
    m.discrepancy_std[3] = 3.0
    X = _cube(5, 6).values.copy()
    X[1, 2, 3] = np.nan
    X[0, 4, 1] = 0.0
    mean, std, epi = m.predict_arrays(X, epistemic=True)
    bad = np.zeros((5, 6), bool)
    bad[2, 3] = bad[4, 1] = True
    for a in (mean, std, epi):
        assert np.isnan(a[:, bad]).all() and np.isfinite(a[:, ~bad]).all()
    f = 1.5 * 1.2
    want_std = np.full(K, 2 * math.sqrt(8 / 3) * f)
    want_std[1] = 2 * math.exp(4) * f
    want_std[2] *= 2
    want_std[3] = math.hypot(want_std[3], 3.0)
    want_epi = np.full(K, 2 * math.sqrt(2 / 3))
    want_epi[1] = 0.0
    n = int((~bad).sum())
    np.testing.assert_allclose(mean[:, ~bad], np.repeat((12.0 + np.arange(K))[:, None], n, 1), rtol=1e-6)
    np.testing.assert_allclose(std[:, ~bad], np.repeat(want_std[:, None], n, 1), rtol=1e-5)
    np.testing.assert_allclose(epi[:, ~bad], np.repeat(want_epi[:, None], n, 1), rtol=1e-5, atol=1e-6)


def test_mg_number_from_the_oxides_known_answers():
    """MgO 8 ± 0.5 and FeO 10 ± 1 wt% (one member): Mg# = 100 a/(a + b), a = 8/40.304, b = 10/71.844, i.e. 58.7806,
    std hypot(100 b/(a+b)²/40.304 · 0.5, 100 a/(a+b)²/71.844 · 1) × Mg#'s own factor 2 (MgO's factor 3 not
    applied); MgO predicted at -1 wt% enters as 0.01 wt%: Mg# = 100 (0.01/40.304)/(0.01/40.304 + b) = 0.177938."""
    i_mg, i_mgo, i_feo = (TARGETS.index(t) for t in ("mg_number", "MgO", "FeO"))
    m = _model(members=1)
    m.std_scale = np.ones(K, np.float32)
    m.std_scale[i_mg], m.std_scale[i_mgo] = 2.0, 3.0
    X = _cube(3, 4).values
    for mgo, want in ((8.0, 58.78060), (-1.0, 0.177938)):
        means, log_vars = np.zeros((1, K)), np.zeros((1, K))
        means[0, i_mgo], means[0, i_feo] = mgo, 10.0
        log_vars[0, i_mgo] = math.log(0.25)
        _constant(m, means, log_vars)
        mean, std = m.predict_arrays(X)
        a, b = max(mgo, 0.01) / 40.304, 10.0 / 71.844
        assert 100 * a / (a + b) == pytest.approx(want, rel=1e-5)
        np.testing.assert_allclose(mean[i_mg], want, rtol=1e-5)
        g = 100 / (a + b) ** 2
        np.testing.assert_allclose(std[i_mg], 2 * math.hypot(g * b / 40.304 * 0.5, g * a / 71.844 * 1.0), rtol=1e-5)
        np.testing.assert_allclose(std[i_mgo], 3 * 0.5, rtol=1e-6)


def test_with_members_keeps_the_first_members_whole():
    """``with_members(2)`` of three members predicts the mixture of members 0 and 1 of the full network (stem,
    trunk and head of the same members), computed here from the full network's per-member outputs."""
    m = _model(members=3)
    m.mg_number_from = "head"
    m.y_mean = np.linspace(1.0, 7.0, K).astype(np.float32)
    m.y_std = np.linspace(0.5, 2.0, K).astype(np.float32)
    X = _cube(6, 7).values
    with torch.no_grad():
        mu, lv = m.net(torch.from_numpy(np.pad(X, ((0, 0), (1, 1), (1, 1)), mode="edge"))[None], pad=False)
    mu, var = mu[:2, 0].double(), torch.exp(lv[:2, 0].double())
    want_mean = m.y_mean[:, None, None] + m.y_std[:, None, None] * mu.mean(0).numpy()
    want_std = m.y_std[:, None, None] * np.sqrt((var.mean(0) + mu.var(0, unbiased=False)).numpy())
    mean, std = m.with_members(2).predict_arrays(X)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, want_std, rtol=1e-5, atol=1e-6)


def test_row_tiles_grouped_for_the_stem_input_give_the_same_map(monkeypatch):
    """The stem input computed per group of row tiles (one 2-row tile a group here) gives the one-group map."""
    m = _model(context=(3,))
    X = _cube(9, 7).values
    ref = m.predict_arrays(X)
    monkeypatch.setattr(model_mod, "STEM_INPUT_PIXELS", 1)
    for a, b in zip(m.predict_arrays(X, tile_rows=2), ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# -- fine-tuning and calibration -------------------------------------------------------------------------------
def _site():
    refl = _cube(10, 12)
    truth = _truth(refl)
    return refl, truth, site_mask(truth, 0.0, 0.0, 150.0)


def _site_moments(model, refl, truth, mask):
    """Per target, mean squared error and mean predicted variance on the site, from the whole map's prediction."""
    pred = model.predict(refl)
    m = mask.values
    r2 = np.array([np.mean((pred[t].values - truth[t].values)[m] ** 2) for t in TARGETS])
    s2 = np.array([np.mean(pred[f"{t}_std"].values[m] ** 2) for t in TARGETS])
    return r2, s2


def test_repeated_pooled_fine_tunes_multiply_the_shift_factor():
    """A model already widened by 2 and a site it gets wrong (truth ~10-20 wt%, untrained predictions ~0):
    the new factor is 2 λ, λ = sqrt(max(1, mean over targets of mean(r²)/mean(σ²))) from the site's prediction."""
    refl, truth, mask = _site()
    assert 4 <= int(mask.sum()) < mask.size // 2
    m = _model()
    m.shift_scale = 2.0
    r2, s2 = _site_moments(m, refl, truth, mask)
    lam = math.sqrt(max(1.0, float(np.mean(r2 / s2))))
    assert lam > 2.0
    m.fine_tune(refl, truth, mask, mode="head", steps=1)
    assert m.shift_scale == pytest.approx(2.0 * lam, rel=1e-5)


def test_per_target_discrepancy_keeps_the_largest():
    """An FeO discrepancy of 1000 wt% already there stays (the site's FeO errors are far within it); the others
    become sqrt(max(0, mean(r²) − mean(σ²))) of the site."""
    refl, truth, mask = _site()
    m = _model()
    m.discrepancy_std[0] = 1000.0
    r2, s2 = _site_moments(m, refl, truth, mask)
    m.fine_tune(refl, truth, mask, mode="head", steps=1, discrepancy="per_target")
    want = np.sqrt(np.maximum(r2 - s2, 0.0))
    assert want[0] == 0.0 and (want[1:6] > 1.0).all()
    assert m.discrepancy_std[0] == 1000.0
    np.testing.assert_allclose(m.discrepancy_std[1:], want[1:], rtol=1e-4)


def test_replay_weight_is_shared_by_the_replayed_sources(monkeypatch):
    """Two replayed sources with ``replay_weight=0.6`` weigh 0.3 each beside the site's 1."""
    refl, truth, mask = _site()
    m = _model()
    seen = {}

    def train(params, batches, weights, steps, lr, progress=None, **kw):
        seen["weights"] = list(weights)
        return [0.0]

    monkeypatch.setattr(m, "_train", train)
    m.fine_tune(refl, truth, mask, mode="head", steps=1, discrepancy="none", replay_weight=0.6,
                replay=[(refl, truth, None), (refl, truth, None)])
    assert seen["weights"] == pytest.approx([1.0, 0.3, 0.3])


def test_lora_adapters_start_neutral_cover_every_trunk_layer_and_merge_back():
    """``add_lora``: outputs unchanged (B = 0), adapters on the input layer and both layers of each block;
    trained adapters change the outputs, and ``merge_lora`` folds them into the weights (same outputs)."""
    torch.manual_seed(0)
    net = ResidualInversionNet(3, K, width=8, depth=2, stem=4, members=2).eval()
    x = torch.rand(1, 3, 5, 6) + 0.05
    with torch.no_grad():
        before = net(x)[0]
        net.add_lora(2)
        torch.testing.assert_close(net(x)[0], before)
        names = [n for n, _ in net.named_parameters() if "lora_b" in n]
        assert sorted(names) == sorted(["inp.lora_b"] + [f"blocks.{i}.{j}.lora_b" for i in range(2) for j in range(2)])
        for n, p in net.named_parameters():
            if "lora_b" in n:
                p.copy_(0.5 * torch.randn_like(p))
        adapted = net(x)[0]
        assert (adapted - before).abs().max() > 1e-3
        net.merge_lora()
        assert not [n for n, _ in net.named_parameters() if "lora_" in n]
        torch.testing.assert_close(net(x)[0], adapted, rtol=1e-5, atol=1e-5)


def test_calibrate_measures_the_ensembles_own_spread_with_the_normal_quantile():
    """One member, standardised mean 0 and variance 1, y_std 2: every pixel predicts y_mean ± 2. Truth
    y_mean + 2 u, u = 0.1, 0.2, ..., 2.0 over the 20 pixels: the 90 % quantile of |z| = u is 1.8 + 0.1 (1.9 − 1.8)
    = 1.81 (linear interpolation at 0.9 × 19 = 17.1), so the scale is 1.81 / 1.6448536 = 1.10040 for every target,
    whatever discrepancy, shift and extrapolation terms the model carries (they apply on top)."""
    m = _constant(_model(members=1), np.zeros((1, K)), np.zeros((1, K)))
    m.mg_number_from = "head"
    m.y_mean = np.full(K, 5.0, np.float32)
    m.y_std = np.full(K, 2.0, np.float32)
    m.discrepancy_std = np.full(K, 5.0, np.float32)
    m.shift_scale = 3.0
    m.extrapolation_scale = np.full(K, 2.0, np.float32)
    refl = _cube(4, 5)
    u = (np.arange(1, 21) / 10.0).reshape(4, 5)
    truth = xr.Dataset({t: (("lat", "lon"), 5.0 + 2.0 * u) for t in TARGETS}, coords={"lat": refl.lat, "lon": refl.lon})
    scale = m.calibrate(refl, truth, level=0.9)
    np.testing.assert_allclose(scale, 1.81 / Z95_ONE_SIDED, rtol=1e-5)
    assert 1.81 / Z95_ONE_SIDED == pytest.approx(1.10040, abs=1e-5)
    assert m.shift_scale == 3.0 and (m.discrepancy_std == 5.0).all()


# -- checkpoints -----------------------------------------------------------------------------------------------
def test_load_restores_the_interval_scale_and_checks_the_recorded_sha256(tmp_path):
    """A calibrated model's ``std_scale`` comes back from its checkpoint (same stds); a checkpoint replaced beside
    its record (another model's file under its name) is refused by the record's sha256, not loaded."""
    m = _model()
    m.std_scale = np.linspace(0.5, 2.0, K).astype(np.float32)
    m.save(tmp_path / "a.pt")
    back = OxideInverter.load(tmp_path / "a.pt")
    np.testing.assert_array_equal(back.std_scale, m.std_scale)
    refl = _cube(4, 5)
    np.testing.assert_allclose(back.predict(refl).CaO_std.values, m.predict(refl).CaO_std.values, rtol=1e-6)
    _model(seed=1).save(tmp_path / "b.pt")
    (tmp_path / "a.pt").write_bytes((tmp_path / "b.pt").read_bytes())
    with pytest.raises(CheckpointError, match="sha256"):
        OxideInverter.load(tmp_path / "a.pt")


# -- baselines -------------------------------------------------------------------------------------------------
def test_spectral_features_are_log_reflectance_and_ratios_to_the_750nm_band():
    """R = 0.1, 0.2, 0.4 at 415, 760, 950 nm (760 nm is the band nearest 750): log 0.1, log 0.2, log 0.4, then
    0.1/0.2 = 0.5 and 0.4/0.2 = 2 (the reference band's own ratio, 1, left out)."""
    got = bl.spectral_features(np.array([[0.1, 0.2, 0.4]]), [415.0, 760.0, 950.0])
    np.testing.assert_allclose(got, [[math.log(0.1), math.log(0.2), math.log(0.4), 0.5, 2.0]], rtol=1e-12)


def test_pls_baseline_has_four_components():
    """The documented standardised PLS keeps 4 components (for 9 features from 5 bands)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0.05, 0.3, (40, 5))
    sk = bl.SklearnInverter("pls").fit(X, rng.normal(size=(40, 2)), [415, 750, 900, 950, 1000])
    assert sk.model[-1].n_components == 4


def test_refit_rmse_and_rows_with_an_unmeasured_band():
    """FeO from the Lucey form with origin (0.05, 1.25), slope 15, intercept −5, plus ±0.5 wt% alternating noise,
    and one row with R950 = 0 (no measurement: left out, n = 29). ``train_rmse`` is the root mean square of the
    fit's own residuals, recomputed here from its predictions."""
    rng = np.random.default_rng(0)
    r750 = rng.uniform(0.08, 0.25, 30)
    r950 = r750 * rng.uniform(1.0, 1.2, 30)
    feo = bl.lucey_feo(r750, r950, x0=0.05, y0=1.25, slope=15.0, intercept=-5.0) + 0.5 * (-1.0) ** np.arange(30)
    r950[7] = 0.0
    fit = bl.fit_lucey_feo(r750, r950, feo)
    keep = np.arange(30) != 7
    assert fit.n == 29
    resid = fit.predict(r750[keep], r950[keep]) - feo[keep]
    assert fit.train_rmse == pytest.approx(float(np.sqrt(np.mean(resid**2))), rel=1e-9)
    assert 0.3 < fit.train_rmse < 0.6


def test_refit_starts_from_init():
    """Six rows of one spectrum (R750 0.1, R950 0.11) cannot pin four constants: a start that already fits them,
    origin (0.02, 1.3), slope 20, intercept −10 (FeO = 20 atan(0.2/0.08) − 10 = 13.8058 wt%), is kept as it is
    (the published start ends on another of the equally good solutions)."""
    init = dict(x0=0.02, y0=1.3, slope=20.0, intercept=-10.0)
    feo = np.full(6, 20.0 * math.atan(2.5) - 10.0)
    assert feo[0] == pytest.approx(13.8058, abs=1e-4)
    fit = bl.fit_lucey_feo(np.full(6, 0.1), np.full(6, 0.11), feo, init=init)
    assert fit.params == pytest.approx(init, abs=1e-9) and fit.train_rmse < 1e-9


# -- global maps -----------------------------------------------------------------------------------------------
def test_a_resume_after_a_recalibration_recomputes_every_row(tmp_path, crash_at_block):
    """A south-up cube (the caller's first chunk row is the network's last) whose run stops after one chunk row:
    the row recorded as done is the caller's first, and that is the row in the store. The model is then
    recalibrated (std_scale x 3): the resumed map's stds are all the recalibrated model's, none left from before."""
    m = _model()
    refl = _cube(20, 16).isel(lat=slice(None, None, -1))
    out = tmp_path / "map.zarr"
    crash_at_block(3)  # the first block of the second chunk row (2 blocks a row, one thread)
    with pytest.raises(RuntimeError, match="simulated"):
        global_map.invert_to_zarr(refl, m, out, chunk=8, progress=False, precision="float32", scheduler="threads",
                                  workers=1)
    part = tmp_path / "map.zarr.partial"
    assert json.loads((part / "progress.json").read_text())["done"] == [0]
    written = np.isfinite(xr.open_zarr(part).FeO.values).all(1)
    assert written[:8].all() and not written[8:].any()
    crash_at_block(None)
    m.std_scale = np.full(K, 3.0, np.float32)
    res = global_map.invert_to_zarr(refl, m, out, chunk=8, progress=False, precision="float32", scheduler="threads")
    np.testing.assert_allclose(res.FeO_std.values, m.predict(refl).FeO_std.values, rtol=1e-5)


def test_invert_lazy_puts_the_bands_in_the_models_order():
    """A cube with its bands reversed (wavelengths alike) is put in the model's order block by block too: its lazy
    map equals the in-memory map of the ordered cube."""
    m = _model()
    refl = _cube(16, 20)
    ref = m.predict(refl)
    got = global_map.invert_lazy(refl.isel(band=[2, 1, 0]), m, chunk=8, precision="float32").compute()
    for v in ("FeO", "FeO_std", "mg_number"):
        np.testing.assert_allclose(got[v].values, ref[v].values, rtol=1e-5, atol=1e-5, err_msg=v)
