"""Known answers for code changed in session 28 that a mutation review found unpinned: each test fails on a
mutant of the source that the rest of the suite let through (log: the review's d-mutants.md).

- ``maps``: a colour-bar label is cut at a word (not mid-word), keeps its length within ``max_chars``, drops
  trailing punctuation before "…", keeps a fitting name whole, and its first letter when the units fill the
  room; the 16-character floor of ``_bar_chars``; ``polar_map``/``image_map`` size their label to the map;
  ``image_map`` switches to km axes (x and y) when |y| or |x| reaches exactly 10 km.
- ``widgets.base``: ``Panel.set`` rolls back a control changed before the one that refused its value; the
  allowed values of a dict choice are its values; a multi-select says "as a tuple"; int/range slider
  tooltips; the wrapping panel layout and scrolling output.
- ``inversion``: ``coverage`` counts |z| exactly 1 and 1.959964 as covered; ``map_difference`` drops an
  inf pixel; ``far_side_experiment`` reads a site at 300 °E as near side.
- ``topography.image_pixel_size``: the 1 % tolerance (inclusive), a given size standing in for unreadable
  attrs, a non-number refused.
- ``invert stations``: a TRAIN row with a blank oxide is not "seen"; duplicate TRAIN spectra count once.
- ``comparison_table``'s p floor at n_perm = 1 and 999; ``hemisphere_mean`` leaves NaN pixels out of the
  weights; ``InversionLab`` wires ``progress`` and says each line before its step.

Two defects this review found, fixed: a colour-bar name whose cut ended exactly at a word dropped that whole
word; a refused ``Panel.set`` left a slider widened to the refused value's range.

Fast and offline: hand-made arrays of a few pixels; the station model, the synthetic Moon and the network
are replaced by stand-ins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.errors import InputError


# ------------------------------------------------------------------------------------------------ maps.py
def _label(name: str, units: str = "m", k: int = 32) -> str:
    from workbench import maps

    return maps.colorbar_label(xr.DataArray([1.0], dims="x", attrs={"long_name": name, "units": units}), k)


def test_colorbar_label_cuts_at_a_word_within_max_chars_and_drops_punctuation():
    # room = 20 − len(" [m]") = 16; the name up to room − 1 = "surface roughne" is cut back to a word
    assert _label("surface roughness index", k=20) == "surface… [m]"
    # no space: 7 letters + "…" + " [m]" = 12 characters, never more than max_chars
    assert _label("abcdefghijk", k=12) == "abcdefg… [m]"
    assert _label("albedo, normalised", k=17) == "albedo… [m]"  # "albedo," loses its comma
    assert _label("abcdef", k=10) == "abcdef [m]"  # exactly room (6): kept whole
    # units longer than max_chars: never cut, and the name keeps its first letter
    assert _label("elevation", "wt% of the whole rock", 5) == "e… [wt% of the whole rock]"


def test_colorbar_label_keeps_a_whole_word_that_fits():
    assert _label("abc def ghi", k=12) == "abc def… [m]"


def _tile(y, x, **attrs) -> xr.DataArray:
    return xr.DataArray(np.zeros((len(y), len(x)), "float32"), dims=("y", "x"), coords={"y": y, "x": x},
                        attrs={"units": "m", **attrs})


def test_small_maps_keep_16_characters_and_polar_and_image_maps_size_their_label():
    from workbench import maps

    long = "elevation above the 1737.4 km sphere"
    assert maps._bar_chars(100) == 16 and maps._bar_chars(210) == 21
    tile = _tile([30.0, 20.0, 10.0], [0.0, 10.0, 20.0], long_name=long)
    assert maps.image_map(tile, size=210, rasterize=False).vdims[0].label == "elevation above… [m]"
    assert maps.image_map(tile, size=100, rasterize=False).vdims[0].label == "elevation… [m]"
    polar = maps.polar_map(tile, size=210, rasterize=False)
    assert "(elevation above… [m])" in repr(polar)


def test_image_map_is_in_km_when_y_reaches_exactly_10_km_below_the_origin():
    from workbench import maps

    tile = _tile([-9980.0, -9990.0, -10000.0], [0.0, 10.0, 20.0])  # |y| reaches 1e4 m; x stays small
    img = maps.image_map(tile, rasterize=False)
    assert img.range("y") == pytest.approx((-10.005, -9.975)) and img.range("x") == pytest.approx((-0.005, 0.025))
    fig = maps.render_bokeh(img)
    assert (fig.xaxis.axis_label, fig.yaxis.axis_label) == ("x (km)", "y (km)")
    assert maps.render_bokeh(maps.image_map(_tile([9990.0, 9980.0], [0.0, 10.0]), rasterize=False)
                             ).yaxis.axis_label == "y (m)"


# ----------------------------------------------------------------------------------------- widgets/base.py
def _panel():
    from test_widgets import MapPanel  # clim: range slider -10000…10000 m; centre: near/far

    return MapPanel()


def test_a_refused_value_rolls_back_the_controls_changed_before_it():
    p = _panel()
    with pytest.raises(InputError, match=r"centre='farside' .*choose from \['near', 'far'\]"):
        p.set(clim=(-1000.0, 1000.0), centre="farside")  # clim is shown first, then centre refuses
    assert p.state.clim == (-3000.0, 3000.0) and p.controls["clim"].value == (-3000.0, 3000.0)
    assert p.output.layout.overflow == "auto" and p.output.layout.max_width == "100%"
    assert p.widget.layout.flex_flow == "row wrap"
    p.cleanup()


def test_a_refused_set_leaves_the_slider_range_as_it_was():
    p = _panel()
    with pytest.raises(InputError):
        p.set(clim=(-20000.0, 20000.0), centre="farside")
    try:
        assert (p.controls["clim"].min, p.controls["clim"].max) == (-10000.0, 10000.0)
    finally:
        p.cleanup()


def test_allowed_values_and_slider_tooltips():
    import ipywidgets as w

    from workbench.widgets import base

    assert base._allowed(base.choice("c", {"near side": "near", "far side": "far"})) == ": choose from ['near', 'far']"
    assert base._allowed(w.SelectMultiple(options=["a", "b"])) == ": choose from ['a', 'b'] (any of them, as a tuple)"
    assert base.int_slider("n", "px", 0, 5).tooltip == "n (px)"
    assert base.range_slider("colour range", "m", 0.0, 1.0, 0.1).tooltip == "colour range (m)"


# ------------------------------------------------------------------------------------------------ inversion
def test_coverage_counts_z_exactly_at_the_interval_edge_as_covered():
    from workbench.inversion.experiment import coverage

    coords = {"lat": [0.0], "lon": [0.0, 1.0, 2.0]}
    truth = xr.Dataset({"FeO": (("lat", "lon"), np.zeros((1, 3)))}, coords=coords)
    pred = xr.Dataset({"FeO": (("lat", "lon"), [[1.0, 1.959964, 3.0]]),
                       "FeO_std": (("lat", "lon"), np.ones((1, 3)))}, coords=coords)
    mask = xr.ones_like(truth.FeO, dtype=bool)
    assert coverage(pred, truth, mask, targets=["FeO"])["FeO"] == pytest.approx({"cov68": 1 / 3, "cov95": 2 / 3})


def test_map_difference_leaves_out_an_infinite_pixel():
    from workbench.inversion.bench import map_difference

    got = map_difference({"FeO": np.array([np.inf, 1.0, -2.0])}, {"FeO": np.zeros(3)})
    assert got == {"FeO": {"rms": round(float(np.sqrt(2.5)), 4), "max_abs": 2.0}}


def test_far_side_experiment_reads_a_site_at_300_east_as_near_side(monkeypatch):
    from workbench.geo import global_grid
    from workbench.inversion import experiment as ex

    def fake_moon(*a, **k):
        lat, lon = global_grid(1)
        truth = xr.Dataset({t: (("lat", "lon"), np.full((lat.size, lon.size), 5.0)) for t in ex.TARGETS},
                           coords={"lat": lat, "lon": lon})
        return None, truth

    monkeypatch.setattr(ex, "observed_moon", fake_moon)
    with pytest.raises(InputError, match=r"\(10, 300\) is not on the far side"):
        ex.far_side_experiment(ppd=1, site=(10.0, 300.0), radius_km=1.0, methods=("lucey2000",), pretrained=object())


# ---------------------------------------------------------------------------------------- topography/model.py
def test_image_pixel_size_tolerance_stand_in_and_non_numbers():
    from workbench.topography.model import image_pixel_size

    img = xr.DataArray(np.zeros((3, 3)), dims=("y", "x"), coords={"y": [200.0, 100.0, 0.0], "x": [0.0, 100.0, 200.0]})
    assert image_pixel_size(img, None) == 100.0
    assert image_pixel_size(img, 101.0) == 101.0  # 1 % off: still the image's own
    with pytest.raises(InputError, match="pixel_size 105 m contradicts the image's own 100 m pixels"):
        image_pixel_size(img, 105.0)
    odd = xr.DataArray(np.zeros((2, 2)), dims=("y", "x"), attrs={"pixel_size": "ten"})
    assert image_pixel_size(odd, 5) == 5.0  # a given size stands in for attrs that cannot be read
    with pytest.raises(InputError, match="pixel_size must be one number of metres per image pixel, got 'abc'"):
        image_pixel_size(None, "abc")


# ---------------------------------------------------------------------------------- workbench invert stations
@pytest.mark.parametrize("case", ["blank_oxide", "duplicate_train"])
def test_seen_in_train_counts_fitted_rows_once(case, monkeypatch, run_cli, tmp_path):
    from workbench.inversion import stations as st

    class Fake:
        def __init__(self, prior=None):
            self.n_used, self.n_skipped = 2, 0

        def fit(self, train):
            return self

        def predict(self, bands):
            return bands.assign(FeO_pred=1.0, new_site=False)

    monkeypatch.setattr(st, "StationInverter", Fake)
    bands = pd.DataFrame(np.full((2, len(st.BANDS)), 0.1) + np.arange(2)[:, None] * 0.01, columns=st.BANDS)
    ox = list(st.TARGETS.values())
    train = bands.assign(**{ox[0]: [5.0, 6.0], ox[1]: [1.0, 2.0]})
    if case == "blank_oxide":
        train.loc[0, ox[0]] = np.nan  # the model skips this station: its spectra were not fitted
    else:
        train = pd.concat([train, train.iloc[[0]]], ignore_index=True)  # two stations, the same spectra
    train.to_csv(tmp_path / "t.csv", index=False)
    bands.iloc[[0]].to_csv(tmp_path / "p.csv", index=False)
    code, out, _ = run_cli(["invert", "stations", "--train", str(tmp_path / "t.csv"), "--predict",
                            str(tmp_path / "p.csv"), "--out", str(tmp_path / "o.csv")])
    assert code == 0
    if case == "blank_oxide":
        assert "same spectra as TRAIN" not in out
    else:
        assert "note: 1 PRED row(s) have the same spectra as TRAIN stations" in out


# ----------------------------------------------------------------------------------- asymmetry / tour widgets
def test_p_floor_at_one_and_999_permutations():
    from workbench.widgets.asymmetry import _p_shown

    assert _p_shown({"p_value": 1.0, "n_perm": 1}) == 1.0  # 2/2: above the floor 1/2
    assert _p_shown({"p_value": 0.5, "n_perm": 1}) == "≤ 0.5"
    assert _p_shown({"p_value": 0.002, "n_perm": 999}) == 0.002  # one step above the floor 0.001
    assert _p_shown({"p_value": 0.001, "n_perm": 999}) == "≤ 0.001"


def test_hemisphere_mean_leaves_nan_pixels_out_of_the_weights():
    from workbench.widgets.tour import hemisphere_mean

    # near side: lon ±45 at lat ±45 (equal areas): (1, NaN, 3, 5) → 3; far side (lon ±135) all 10
    da = xr.DataArray([[1.0, np.nan, 10.0, 10.0], [3.0, 5.0, 10.0, 10.0]], dims=("lat", "lon"),
                      coords={"lat": [45.0, -45.0], "lon": [-45.0, 45.0, 135.0, -135.0]}, attrs={"units": "m"})
    assert hemisphere_mean(da, "near") == pytest.approx(3.0)


def test_inversion_lab_says_each_line_before_its_step(monkeypatch):
    from workbench import synth
    from workbench.geo import global_grid
    from workbench.widgets import inversion as inv

    lat, lon = global_grid(1)
    moon = xr.Dataset({t: (("lat", "lon"), np.full((lat.size, lon.size), 5.0)) for t in inv.TARGETS},
                      coords={"lat": lat, "lon": lon})
    monkeypatch.setattr(synth, "make_moon", lambda seed=0, resolution_ppd=1: moon)
    monkeypatch.setattr(inv, "replay_sources", lambda *a, **k: [])
    log: list[str] = []

    class Net:
        def with_members(self, n):
            return self

        def fine_tune(self, *a, **k):
            log.append("fine_tune")

        def predict(self, refl, epistemic=False):
            log.append("predict")
            return xr.Dataset()

    lab = inv.InversionLab(ppd=1, ft_steps=3, pretrained={"x": Net()}, progress=log.append)
    lab._refl["x"] = xr.DataArray(np.zeros((1, lat.size, lon.size)), dims=("band", "lat", "lon"))
    lab.predict("x", "resnet_finetuned", ("Chang'e-6",), "head", 2)
    assert log == ["x: fine-tuning (head, 2 members, 3 steps) at Chang'e-6…", "fine_tune",
                   "x: resnet_finetuned on the whole Moon…", "predict"]
