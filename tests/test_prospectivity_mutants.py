"""Known answers for prospectivity behaviours that a mutation review found no other test pinning.

Each test is a tiny, seeded case worked out by hand, and each one fails on at least one change to
``workbench/analysis/layers.py``, ``workbench/analysis/prospectivity.py`` or the prospectivity panel
(``workbench/widgets/prospectivity.py``) that the other prospectivity tests let through:

* layers: z-score statistics pooled over every training stack; the layer subset of a normalisation;
  roughness as the window standard deviation, wrapping at the seam; stacked layers under their own
  names, the latitude band's edge kept; craters of exactly the minimum diameter counted;
* network: hidden values never reach the network; the ViT puts each patch token back at its own
  pixels and tells patches apart by position; training masks (1-3 whole layers, half the time random
  patches in every layer); the training loss on the hidden entries only; NaN-free training tiles;
* scoring: the error of each layer is that of the copy that hides it, in its own tile; tiles overlap by
  half with a tapered blend, reach the last rows and columns of a regional grid without wrapping,
  and start at -180 deg on a global grid, whatever its stored longitudes;
* baselines and statistics: NaN pixels left out of the error statistics, training matrix and scores;
  PCA's default rank; the training subsample drawn from every stack; the minimum region size;
* errors: a context rule over topographic layers only names them;
* panel: layers without a checkbox stay in; the score cache per method; the threshold with NaN
  pixels; the minimum region size, ranking and area in the table and readout.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.analysis import prospectivity as P
from workbench.analysis.layers import Normalisation, crater_density, roughness, stack_layers
from workbench.geo import MOON_RADIUS_KM, area_weights, global_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stack(values, layers, lat=None, lon=None) -> xr.DataArray:
    """A ``(layer, lat, lon)`` stack; by default a regional 1 px/deg grid, north-up, east-right."""
    values = np.asarray(values, dtype="float32")
    _, h, w = values.shape
    lat = np.arange(h)[::-1] + 0.5 if lat is None else np.asarray(lat, dtype=float)
    lon = np.arange(w) + 0.5 if lon is None else np.asarray(lon, dtype=float)
    return xr.DataArray(values, dims=("layer", "lat", "lon"),
                        coords={"layer": list(layers), "lat": lat, "lon": lon})


def _identity_norm(layers) -> Normalisation:
    return Normalisation(tuple(layers), (0.0,) * len(layers), (1.0,) * len(layers))


def _model(net, layers, scale, tile=16) -> P.ProspectivityModel:
    """A model around a stub network, with z = the stack's values (mean 0, std 1)."""
    return P.ProspectivityModel(net=net, normalisation=_identity_norm(layers), config={"tile": tile},
                                error_scale=tuple(scale))


# -- layers ------------------------------------------------------------------------------------------------
def test_normalisation_ignores_nan_and_pools_every_stack():
    """Layer a: 1, 3, 2 (and a NaN) in stack A, 2 x 4 in B: pooled mean 2, variance 2/7. Layer b: 0 x 4 in A,
    4 x 4 in B: mean 2, std 2 (B alone or A alone would give other statistics, or a constant layer)."""
    a = _stack([[[1, np.nan], [3, 2]], [[0, 0], [0, 0]]], "ab")
    b = _stack([[[2, 2], [2, 2]], [[4, 4], [4, 4]]], "ab")
    norm = Normalisation.fit([a, b])
    np.testing.assert_allclose(norm.mean, (2.0, 2.0), rtol=1e-12)
    np.testing.assert_allclose(norm.std, (np.sqrt(2 / 7), 2.0), rtol=1e-12)


def test_normalisation_select_takes_each_layers_own_statistics():
    """select(["c", "a"]) keeps c's and a's mean and std, in that order (not the first two layers')."""
    norm = Normalisation(("a", "b", "c"), (1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    assert norm.select(["c", "a"]) == Normalisation(("c", "a"), (3.0, 1.0), (6.0, 4.0))


def test_roughness_is_the_window_std_and_wraps_across_the_seam():
    """Columns alternating +100 / -100 m on a global 1 px/deg grid (360 columns: the pattern closes across the
    seam). Every 5-column window holds three of one sign and two of the other: mean +-20 m, mean square 1e4 m^2,
    std sqrt(1e4 - 400) = 97.98 m at every pixel, the seam columns included (clamped edges would give 80 m
    there; the variance would be 9600)."""
    lat, lon = global_grid(1)
    z = np.broadcast_to(np.where(np.arange(lon.size) % 2 == 0, 100.0, -100.0), (lat.size, lon.size))
    elev = xr.DataArray(z.copy(), coords={"lat": lat, "lon": lon}, dims=("lat", "lon"), attrs={"units": "m"})
    np.testing.assert_allclose(roughness(elev).values, np.sqrt(1e4 - 400), rtol=1e-5)


def test_stack_layers_keeps_each_layer_under_its_name_and_the_band_edge():
    """Layers come out in the order asked, each with its own values and units (npfe has no units attr: its
    default "1"), and max_abs_lat=70 keeps the rows at exactly +-70 deg."""
    lat, lon = np.array([80.0, 70.0, 0.0, -70.0, -80.0]), np.array([0.5, 1.5, 2.5])
    ds = xr.Dataset(coords={"lat": lat, "lon": lon})
    ds["TiO2"] = (("lat", "lon"), np.full((5, 3), 5.0, "float32"), {"units": "wt%"})
    ds["FeO"] = (("lat", "lon"), np.full((5, 3), 15.0, "float32"), {"units": "wt%"})
    ds["npfe"] = (("lat", "lon"), np.full((5, 3), 0.3, "float32"))
    st = stack_layers(ds, ("TiO2", "FeO", "npfe"), max_abs_lat=70)
    assert list(st["layer"].values) == ["TiO2", "FeO", "npfe"]
    assert st["lat"].values.tolist() == [70.0, 0.0, -70.0]
    assert st.attrs["layer_units"] == ["wt%", "wt%", "1"]
    for name, value in (("TiO2", 5.0), ("FeO", 15.0), ("npfe", 0.3)):
        np.testing.assert_allclose(st.sel(layer=name).values, value, rtol=1e-6)


def test_crater_density_counts_a_crater_of_exactly_the_minimum_diameter():
    """Craters "at least" min_diameter_km large count: one 20 km crater at min_diameter_km=20 in a 100 km cap."""
    tmpl = xr.Dataset(coords={"lat": [0.5, 40.5], "lon": [10.5, 11.5]})
    craters = pd.DataFrame({"lat": [0.0], "lon": [10.0], "diameter_km": [20.0]})
    d = crater_density(craters, tmpl, radius_km=100.0, min_diameter_km=20.0)
    cap = 2 * np.pi * MOON_RADIUS_KM**2 * (1 - np.cos(100.0 / MOON_RADIUS_KM))
    assert d.sel(lat=0.5, lon=10.5).item() == pytest.approx(1 / cap, rel=1e-5)


# -- network -----------------------------------------------------------------------------------------------
SMALL = {**P.DEFAULT_CONFIG, "tile": 8, "patch": 4, "fusion_channels": 4, "dim": 8, "depth": 1, "heads": 2}


@pytest.mark.parametrize("arch", ["vit", "conv"])
def test_network_never_sees_the_hidden_values(arch):
    """Hidden entries are zeroed before the fusion: other values under the mask (all of layer 0, one patch of
    layer 1) give exactly the same output; other visible values do not."""
    import torch

    torch.manual_seed(0)
    net = P._build_net(3, {**SMALL, "arch": arch}).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 8, 8, generator=g)
    mask = torch.zeros_like(x)
    mask[:, 0] = 1.0
    mask[:, 1, :4, :4] = 1.0
    other = torch.where(mask > 0, 10.0 * torch.randn(2, 3, 8, 8, generator=g), x)
    with torch.no_grad():
        out = net(x, mask)
        assert torch.equal(net(other, mask), out)
        assert not torch.equal(net(x + (1.0 - mask), mask), out)


def test_vit_puts_each_patch_token_back_at_its_own_pixels():
    """Tokens are the patches in row-major order, and the head's outputs (layer, row, column within the
    patch) go back to that patch's pixels. With a stub embedding that writes the patch's grid row and column
    into its token, and a head that turns them into the pixel's row (layer 0) and column (layer 1), the
    reconstruction of pixel (r, c) is (r, c)."""
    import torch
    from torch import nn

    p, g, dim = 2, 4, 4
    net = P._build_net(2, {**SMALL, "tile": p * g, "patch": p, "dim": dim, "heads": 1}).eval()

    class GridTokens(nn.Module):
        def forward(self, h):
            tok = torch.zeros(h.shape[0], dim, g, g)
            tok[:, 0] = torch.arange(g, dtype=h.dtype)[:, None]  # patch row
            tok[:, 1] = torch.arange(g, dtype=h.dtype)[None, :]  # patch column
            return tok

    net.embed, net.encoder, net.norm = GridTokens(), nn.Identity(), nn.Identity()
    weight, bias = torch.zeros(2 * p * p, dim), torch.zeros(2 * p * p)
    for layer, i, j in itertools.product(range(2), range(p), range(p)):
        f = (layer * p + i) * p + j
        weight[f, layer] = p  # pixel row = p * patch row + i (layer 0); column likewise (layer 1)
        bias[f] = i if layer == 0 else j
    with torch.no_grad():
        net.pos.zero_()
        net.head.weight.copy_(weight)
        net.head.bias.copy_(bias)
        net.pixel_head[-1].weight.zero_()
        net.pixel_head[-1].bias.zero_()
        out = net(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))[0]
    rows = torch.arange(8.0)[:, None].expand(8, 8)
    assert torch.equal(out[0], rows) and torch.equal(out[1], rows.T)


def test_vit_tells_patches_apart_by_their_position():
    """On a constant input every patch token is the same, so only the position embedding can make the
    patches' reconstructions differ; without it the output would repeat with the patch period."""
    import torch

    torch.manual_seed(0)
    net = P._build_net(2, SMALL).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
    assert float((out[..., :4, :4] - out[..., :4, 4:]).abs().max()) > 1e-4


@pytest.mark.parametrize(("c", "hidden"), [(2, {1}), (3, {1, 2}), (4, {1, 2, 3})])
def test_training_masks_hide_one_to_three_layers_and_half_the_time_patches_in_every_layer(c, hidden):
    """400 masks: constant over each 2 x 2 patch; 1 to min(3, c - 1) whole layers hidden (never all c, so
    something is left to predict from); the random patches, in about half the tiles, are the same in every
    layer that is not hidden whole."""
    b, t, p = 400, 8, 2
    m = P._train_mask(np.random.default_rng(0), b, c, t, p, (0.25, 0.5))
    assert m.shape == (b, c, t, t)
    blocks = m.reshape(b, c, t // p, p, t // p, p)
    assert (blocks == blocks[:, :, :, :1, :, :1]).all()
    whole = m.reshape(b, c, -1).all(axis=2)
    assert set(whole.sum(axis=1).tolist()) == hidden
    patched = np.zeros(b, bool)
    for i in range(b):
        visible = m[i, ~whole[i]]
        assert (visible == visible[0]).all()
        patched[i] = visible.any()
    assert 0.4 < patched.mean() < 0.6


def test_training_loss_is_the_error_on_the_hidden_entries_only(monkeypatch):
    """z = +-1 everywhere (two layers of 0/1 stripes). A stub network returns the visible entries unchanged
    and a learnt constant w (0 at first) where hidden, so the first loss, the mean of (0 - (+-1))^2 over the
    hidden entries, is exactly 1 (over all entries it would be the hidden fraction, < 1). With a tiny lr, w
    stays ~0 and the per-layer error scale on fresh tiles is ~(1, 1)."""
    import torch
    from torch import nn

    class Stub(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x, m):
            return x * (1 - m) + self.w * m

    monkeypatch.setattr(P, "_build_net", lambda c, cfg: Stub())
    i, j = np.mgrid[:16, :16]
    st = _stack([(i + j) % 2, i % 2], "ab")
    model = P.fit(st, config={"tile": 8, "patch": 4}, steps=2, batch_size=4, lr=1e-6, seed=0)
    assert model.history[0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(model.error_scale, (1.0, 1.0), rtol=1e-3)


def test_training_tiles_skip_nan_gaps():
    """One layer is NaN over the eastern half: every tile drawn (regional or wrapping) is NaN-free."""
    z = np.ones((2, 8, 40), "float32")
    z[1, :, 20:] = np.nan
    for periodic in (False, True):
        assert np.isfinite(P._tiles_from(z, 8, 50, np.random.default_rng(0), periodic)).all()


# -- per-layer errors --------------------------------------------------------------------------------------
def test_layer_errors_come_from_the_copy_that_hides_each_layer_in_its_own_tile():
    """A stub that predicts 0 where hidden and is 0.5 off on the visible layers: the error of layer k is
    z_k^2 / error_scale[k] at every pixel, whatever the tile (distinct random values everywhere, 60 tiles, 16
    per batch); errors on the layers left visible do not count."""
    lat, lon = global_grid(0.25)
    z = np.random.default_rng(0).normal(size=(3, lat.size, lon.size))
    st = _stack(z, "abc", lat, lon)
    model = _model(lambda x, m: (x + 0.5) * (1 - m), "abc", (1.0, 2.0, 4.0))
    err = P.layer_errors(model, st)
    expect = st.values.astype("float64") ** 2 / np.array([1.0, 2.0, 4.0])[:, None, None]
    np.testing.assert_allclose(err.values, expect, rtol=1e-5, atol=1e-7)


def _first_column(x, m):
    """Stub: every hidden pixel predicted as the value in its tile's first column (same row)."""
    return x * (1 - m) + m * x[..., :1]


def test_regional_tiles_reach_the_last_rows_and_do_not_wrap():
    """Regional 20 x 16 grid, tile 16: one column of tiles (q = 0; wrapping would add q = 8 across the east and
    west edges), rows 0 and 4 (the last rows need the tile at h - t). Each tile predicts pixel (r, j) from
    column 0, so the error of z = j (layer a) is j^2 and of z = 2 j - r (layer b, scale 2) is 4 j^2 / 2."""
    i, j = np.mgrid[:20, :16].astype("float64")
    st = _stack([j, 2 * j - i], "ab")
    err = P.layer_errors(_model(_first_column, "ab", (1.0, 2.0)), st).values
    np.testing.assert_allclose(err[0], j**2, rtol=1e-6)
    np.testing.assert_allclose(err[1], 2 * j**2, rtol=1e-6)


def test_tiles_overlap_by_half_with_a_tapered_blend_and_cover_the_east_edge():
    """Regional 16 x 36 grid, tile 16, z = column index j: tiles start at columns 0, 8, 16 and 20 (= w - t), and
    each predicts its pixels from its own first column, error (j - q)^2. Column 8 is inside tile 0 (64) and the
    west edge of tile 8 (0): the taper takes it almost wholly from tile 0. Column 12 lies in tiles 0 (144) and
    8 (16): a blend strictly between. Columns 32-35 only in tile 20: (j - 20)^2."""
    j = np.broadcast_to(np.arange(36.0), (16, 36))
    err = P.layer_errors(_model(_first_column, "ab", (1.0, 1.0)), _stack([j, j], "ab")).values[0]
    assert 0.95 * 64 < err[8, 8] <= 64
    assert 1.05 * 16 < err[8, 12] < 0.95 * 144
    np.testing.assert_allclose(err[:, 32:], np.broadcast_to([144.0, 169.0, 196.0, 225.0], (16, 4)), rtol=1e-6)


def test_global_grid_is_tiled_from_minus_180_whatever_its_stored_longitudes():
    """Global 0.25 px/deg grid (90 columns of 4 deg, centres -178 ... 178), tile 16: the tiles start at columns
    0, 8, ..., 88 from -180 deg. Layer a is zero in those columns (a = (j % 8) (1 + r / 45)), so with a stub
    that predicts from each tile's first column its error is a^2 at every pixel, whatever the blend. The same
    grid stored from -90 to 270 deg gives the same errors (layer b is random) at the same coordinates."""
    from workbench.geo import wrap_lon_180

    lat, lon = global_grid(0.25)
    r, j = np.mgrid[: lat.size, : lon.size].astype("float64")
    a = (j % 8) * (1 + r / 45)
    st = _stack([a, np.random.default_rng(1).normal(size=a.shape)], "ab", lat, lon)
    model = _model(_first_column, "ab", (1.0, 1.0))
    ref = P.layer_errors(model, st)
    np.testing.assert_allclose(ref.values[0], a**2, rtol=1e-6)
    other = st.roll(lon=-22, roll_coords=True)
    other = other.assign_coords(lon=np.where(other["lon"] < -90, other["lon"] + 360.0, other["lon"]))
    assert other["lon"].values[0] == -90.0 and (np.diff(other["lon"].values) > 0).all()
    got = P.layer_errors(model, other)
    np.testing.assert_array_equal(got["lon"].values, other["lon"].values)
    got = got.assign_coords(lon=wrap_lon_180(got["lon"].values)).sortby("lon")
    np.testing.assert_allclose(got.values, ref.values, rtol=1e-6)


def test_error_statistics_leave_out_pixels_with_a_nan_layer():
    """2 x 4 equal-area pixels; the last is NaN in layer a only, so it is left out: a = 1..7 gives mean 4 and
    variance 28 / 6; b = 2 at those pixels gives mean 2, variance 0 (its 9 at the NaN pixel does not count)."""
    e = _stack([[[1, 2, 3, 4], [5, 6, 7, np.nan]], [[2, 2, 2, 2], [2, 2, 2, 9]]], "ab", lat=[0.5, -0.5])
    stats = P.fit_error_stats(e)
    np.testing.assert_allclose(stats["mean"], [4.0, 2.0], rtol=1e-9)
    np.testing.assert_allclose(stats["cov"], [[28 / 6, 0.0], [0.0, 0.0]], rtol=1e-9, atol=1e-12)


# -- baselines ---------------------------------------------------------------------------------------------
_CORNERS = np.array(list(itertools.product([-10, 10], [-10, 10], [-1, 1], [-0.1, 0.1])), dtype=float).T  # (4, 16)


def test_pca_baseline_known_residuals_default_rank_and_nan_pixels():
    """Training pixels: the 16 corners of a box with half-widths 10, 10, 1, 0.1 (mean 0; principal axes the
    layer axes). The default rank is C // 2 = 2 (the a-b plane), so the score is the squared distance off that
    plane: (0, 0, 3, 4) -> 9 + 16 = 25 (rank 3 would give 16), (5, -5, 0, 0) -> 0. A pixel with a NaN layer
    scores NaN; a NaN pixel in the training stack is left out (the same answer)."""
    norm = _identity_norm("abcd")
    train = _stack(_CORNERS.reshape(4, 4, 4), "abcd")
    gap = _stack(np.concatenate([_CORNERS, [[np.nan], [0], [0], [0]]], axis=1)[:, None, :], "abcd")
    stack = _stack(np.array([[0, 5, np.nan], [0, -5, 0], [3, 0, 0], [4, 0, 0]])[:, None, :], "abcd")
    for tr in (train, gap):
        s = P.pca_score([tr], stack, norm).values[0]
        np.testing.assert_allclose(s[:2], [25.0, 0.0], rtol=1e-5, atol=1e-4)
        assert np.isnan(s[2])


def test_isolation_forest_scores_nan_pixels_nan_and_outliers_high():
    """Trained on 200 standard-normal pixels: a pixel far outside them scores above one at their centre, and
    a pixel with a NaN layer scores NaN."""
    train = _stack(np.random.default_rng(0).normal(size=(4, 10, 20)), "abcd")
    stack = _stack(np.array([[0, 50, np.nan], [0, 50, 0], [0, 5, 0], [0, 1, 0]])[:, None, :], "abcd")
    s = P.isolation_forest_score([train], stack, _identity_norm("abcd")).values[0]
    assert np.isfinite(s[:2]).all() and s[1] > s[0] and np.isnan(s[2])


def test_training_pixels_are_subsampled_from_every_stack():
    """max_pixels below the pixel count draws a random subset of all the training stacks' pixels (16 of 32
    here: some from A, all 0, and some from B, all 1), not the first pixels (A's only)."""
    a, b = _stack(np.zeros((2, 4, 4)), "ab"), _stack(np.ones((2, 4, 4)), "ab")
    x = P._train_matrix([a, b], _identity_norm("ab"), max_pixels=16, seed=0)
    assert x.shape == (16, 2) and 0 < x[:, 0].sum() < 16


def test_candidate_regions_keep_regions_of_exactly_min_pixels():
    """Regions of 3 and 2 pixels: min_pixels=3 keeps the first only ("smaller regions are dropped")."""
    s = np.zeros((10, 10), "float32")
    s[2, 2:5] = 2.0
    s[7, 6:8] = 3.0
    score = xr.DataArray(s, dims=("lat", "lon"), coords={"lat": np.arange(10)[::-1] + 0.5, "lon": np.arange(10) + 0.5})
    assert P.candidate_regions(score, 1.0, min_pixels=3)["n_pixels"].tolist() == [3]
    assert sorted(P.candidate_regions(score, 1.0, min_pixels=2)["n_pixels"].tolist()) == [2, 3]


# -- the panel ---------------------------------------------------------------------------------------------
def _panel_context():
    """Global 0.5 px/deg stack of TiO2, FeO and MgO (no checkbox for MgO), with network errors (rule "sum")
    that are 0 except: region A, 2 px of 10 in MgO; region B, 12 px of 5 in TiO2; and one NaN pixel."""
    from workbench.widgets.prospectivity import ProspectivityContext

    lat, lon = global_grid(0.5)
    layers = ("TiO2", "FeO", "MgO")
    st = _stack(np.random.default_rng(0).normal(size=(3, lat.size, lon.size)), layers, lat, lon)
    e = np.zeros(st.shape, "float32")
    e[2, 44:46, 40] = 10.0
    e[0, 44:47, 100:104] = 5.0
    e[:, 10, 10] = np.nan
    return ProspectivityContext(stack=st, errors=st.copy(data=e), normalisation=Normalisation.fit(st), train=[st],
                                tio2=st.sel(layer="TiO2", drop=True))


def test_panel_keeps_layers_without_a_checkbox_and_caches_per_method():
    """MgO has no checkbox: it stays in whatever is ticked. The cached score of one method is never served for
    another method on the same layers."""
    from workbench.widgets.prospectivity import ProspectivityState, method_score, selected_layers

    ctx = _panel_context()
    assert selected_layers(ctx, ProspectivityState()) == ["TiO2", "FeO", "MgO"]
    assert selected_layers(ctx, ProspectivityState(FeO=False)) == ["TiO2", "MgO"]
    layers = ["TiO2", "FeO", "MgO"]
    method_score(ctx, "zscore", layers)
    np.testing.assert_allclose(method_score(ctx, "pca", layers).values,
                               P.pca_score([ctx.stack], ctx.stack, ctx.normalisation).values, rtol=1e-6)


def test_panel_table_follows_min_size_and_ranking_with_nan_pixels():
    """Scores: A (2 px of 10), B (12 px of 5), 0 elsewhere, one NaN pixel. The 99th percentile of the finite
    scores is 0 (14 of 16199 are above), so A and B are the candidates; min_pixels=3 drops A; rank_by orders
    them (by area: B first, though A's mean score is higher); the readout gives their total area."""
    from workbench.widgets.prospectivity import ProspectivityState, prospectivity_view

    ctx = _panel_context()
    v = prospectivity_view(ctx, ProspectivityState(method="network", min_pixels=3))
    assert v.threshold == 0.0 and v.table["n_pixels"].tolist() == [12]
    by_area = prospectivity_view(ctx, ProspectivityState(method="network", min_pixels=1, rank_by="area_km2"))
    assert by_area.table["n_pixels"].tolist() == [12, 2]
    area = float(area_weights(ctx.errors.isel(layer=0)).values[np.nan_to_num(v.score.values) > 0].sum())
    assert f"{area / 1e3:.1f} thousand km²" in by_area.readout


def test_context_rule_on_topographic_layers_only_names_the_layers():
    """A context rule given only topographic layers (``layers=None``) is one InputError naming them, not a
    TypeError from formatting the message."""
    from workbench.errors import InputError

    e = _stack(np.ones((2, 2, 3)), ["elevation", "slope"])
    with pytest.raises(InputError, match=r"none among \['elevation', 'slope'\]"):
        P.score_from_layer_errors(e, rule="context")
