"""Tests for workbench.widgets.base: state object, one compute per change, reset, long tasks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import xarray as xr

from workbench import maps
from workbench.errors import InputError
from workbench.geo import global_grid
from workbench.widgets import base


def _dem() -> xr.DataArray:
    lat, lon = global_grid(1.0)
    data = np.random.default_rng(1).normal(0, 2000, (lat.size, lon.size)).astype("float32")
    return xr.DataArray(data, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="elevation",
                        attrs={"units": "m", "long_name": "elevation"})


DEM = _dem()


@dataclass
class MapState:
    clim: tuple[float, float] = (-3000.0, 3000.0)
    centre: str = "near"


class MapPanel(base.Panel):
    State = MapState
    title = "test map"

    def __init__(self, *a, **k):
        self.seen: list[MapState] = []
        super().__init__(*a, **k)

    def make_controls(self):
        return {"clim": base.range_slider("colour range", "m", -10000, 10000, 100),
                "centre": base.choice("centre", ["near", "far"])}

    def compute(self, state):
        self.seen.append(state)
        return maps.lunar_map(DEM, clim=state.clim, centre=state.centre), f"{state.clim[0]:.0f}"


def test_compute_called_once_per_change_and_reset_restores_state():
    p = MapPanel()
    assert p.n_computes == 1  # initial draw
    assert "m" in p.controls["clim"].description and "(m)" in p.controls["clim"].description
    p.controls["clim"].value = (-2000.0, 2000.0)
    assert p.n_computes == 2 and p.state.clim == (-2000.0, 2000.0)
    p.controls["centre"].value = "far"
    assert p.n_computes == 3 and p.state == MapState((-2000.0, 2000.0), "far")
    assert p.readout.value == "-2000"
    # the live plot got the new element through the pipe
    assert p._pipe.data.range("lon")[0] >= 0
    p.reset_button.click()
    assert p.n_computes == 4
    assert p.state == MapState()
    assert p.controls["clim"].value == (-3000.0, 3000.0) and p.controls["centre"].value == "near"
    assert [s.centre for s in p.seen] == ["near", "near", "far", "near"]
    p.cleanup()


def test_set_updates_controls_and_layout_is_controls_left_output_right():
    p = MapPanel(centre="far")
    assert p.controls["centre"].value == "far"
    p.set(clim=(-100.0, 100.0))
    assert p.controls["clim"].value == (-100.0, 100.0) and p.n_computes == 2
    assert p.widget.children[0] is p.sidebar and p.widget.children[1] is p.output
    assert p.reset_button in p.sidebar.children
    p.cleanup()


def test_the_control_column_holds_its_controls_and_their_readouts_whole():
    """Seen in JupyterLab: the tour's range readout "−5400 – 5700" was cut at the column's edge, because each
    400 px control has 2 px margins in a 400 px column and the slider's track squeezed the readout."""
    p = MapPanel()
    assert p.sidebar.layout.width == p.sidebar.layout.min_width == "calc(400px + 8px)"
    assert p.controls["clim"].layout.width == base.CONTROL_WIDTH == "400px"
    header = p.sidebar.children[0].value
    assert header.startswith("<style>") and base.PANEL_CSS in header  # every panel, with or without its own css
    assert "widget-readout {flex: 0 0 auto; max-width: none}" in base.PANEL_CSS
    p.cleanup()


def test_set_with_a_value_no_control_can_take_is_one_error_and_the_panel_keeps_its_state():
    """A choice the control does not offer, a reversed range and a misspelled setting are each one
    InputError naming the allowed values; the state, controls and map stay, and the next set() works (the
    bad value once stuck in the state and every later set() failed in traitlets until Reset)."""
    p = MapPanel()
    good, n = p._pipe.data, p.n_computes
    for changes, msg in (({"centre": "farside"}, r"centre='farside' is not a value .*choose from \['near', 'far'\]"),
                         ({"clim": (5000.0, -5000.0)}, r"clim=\(5000.0, -5000.0\) .*low <= high"),
                         ({"centr": "far"}, r"no setting 'centr'; settings are \['clim', 'centre'\]")):
        with pytest.raises(InputError, match=msg):
            p.set(**changes)
        assert p.state == MapState() and p.n_computes == n and p._pipe.data is good
        assert p.controls["centre"].value == "near" and p.controls["clim"].value == (-3000.0, 3000.0)
    p.set(centre="far")
    assert p.state.centre == "far" and p.n_computes == n + 1 and p.error is None
    p.cleanup()


def test_unknown_control_field_is_refused():
    class Bad(MapPanel):
        def make_controls(self):
            return {"nope": base.slider("x", "m", 0, 1, 0.1)}

    with pytest.raises(InputError, match="not fields"):
        Bad()


def test_non_holoviews_result_goes_to_output():
    @dataclass
    class S:
        n: int = 1

    class TextPanel(base.Panel):
        State = S

        def make_controls(self):
            return {"n": base.int_slider("n", None, 0, 5)}

        def compute(self, state):
            return f"n={state.n}"

    p = TextPanel()
    assert p._out is not None and p._pipe is None
    p.cleanup()


def test_long_task_stops_cooperatively_without_killing_the_kernel():
    task = base.LongTask("training")
    started = threading.Event()

    def work(n, progress):
        for i in range(n):
            started.set()
            if not progress.callback(i + 1, n, loss=1.0 / (i + 1)):
                return i  # partial result
            time.sleep(0.01)
        return n

    task.start(work, 10_000)
    started.wait(2)
    assert task.running and not task.stop_button.disabled
    task.stop_button.click()
    stopped_at = task.result(timeout=5)
    assert 0 < stopped_at < 10_000
    assert not task.running and "stopped" in task.status.value
    assert task.run(work, 3) == 3 and task.bar.value == 1.0


def test_long_task_stop_click_after_the_end_leaves_the_status_finished():
    # notebook 05: a Stop click the kernel handles only after training ended must not say "stopping…" forever
    task = base.LongTask("training")
    assert task.run(lambda progress: 42) == 42
    assert task.status.value.startswith("done in")
    task.stop_button.click()
    task.request_stop()
    assert task.status.value.startswith("done in") and not task.should_stop()


def test_long_task_stop_during_a_started_task_ends_it_early():
    task = base.LongTask("training")
    steps = []

    def fake_fit(progress, n=100_000):
        for i in range(n):
            steps.append(i)
            if not progress.callback(i + 1, n):
                break
            time.sleep(0.001)
        return len(steps)

    assert task.start(fake_fit) is task  # returns at once: the kernel stays free for the click
    deadline = time.time() + 2
    while not steps and time.time() < deadline:
        time.sleep(0.001)
    task.stop_button.click()
    n = task.result(timeout=5)
    assert 0 < n < 100_000 and "stopped" in task.status.value and not task.running


def test_long_task_check_raises_stop_requested():
    task = base.LongTask()

    def work(progress):
        while True:
            progress.check()
            time.sleep(0.005)

    task.start(work)
    time.sleep(0.05)
    task.request_stop()
    with pytest.raises(base.StopRequested):
        task.result(timeout=5)


def test_bad_control_combination_is_reported_and_the_map_kept():
    p = MapPanel()
    good = p._pipe.data
    p.controls["clim"].value = (500.0, 500.0)  # empty colour range -> InputError inside compute
    assert p.n_computes == 2 and p.error and "low < high" in p.error
    assert "low &lt; high" in p.readout.value
    assert p._pipe.data is good
    p.controls["clim"].value = (0.0, 500.0)
    assert p.error is None and p._pipe.data is not good
    p.cleanup()


def test_an_unexpected_error_in_compute_is_shown_not_raised_and_the_map_kept(caplog):
    class Buggy(MapPanel):
        def compute(self, state):
            if state.centre == "far":
                raise ZeroDivisionError("a bug")
            return super().compute(state)

    p = Buggy()
    good = p._pipe.data
    p.controls["centre"].value = "far"  # must not raise out of the ipywidgets callback
    assert p.error == "ZeroDivisionError: a bug" and "unexpected error" in p.readout.value
    assert p._pipe.data is good and "panel update failed" in caplog.text
    p.controls["centre"].value = "near"
    assert p.error is None
    p.cleanup()


def test_diverging_maps_are_centred_on_zero():
    skewed = DEM.copy(data=np.linspace(-0.4, 6.2, DEM.size).reshape(DEM.shape)).assign_attrs(units="wt%")
    lo, hi = maps._clim(skewed, None, diverging=True)
    assert lo == -hi and hi > 6.0
    assert maps._clim(skewed, None)[0] < 0 < maps._clim(skewed, None)[1]


@pytest.mark.slow
def test_widgets_benchmark_measures_a_live_update_in_a_kernel():
    from workbench.widgets import bench

    r = bench.run(fast=True)
    assert r["map_shape"] == [720, 1440]
    assert r["patch_messages_per_update"] > 0 and r["patch_bytes_per_update"] > 0
    assert 0 < r["update_latency_ms_p50"] <= r["update_latency_ms_p95"] <= r["update_latency_ms_max"]


def _live_figures(p):
    from bokeh.plotting import figure

    return list(p._plot_widget._model.select({"type": figure}))


@dataclass
class ShapeState:
    what: str = "elevation"
    n: int = 2


class ShapePanel(base.Panel):
    """A result whose colour-bar quantity and number of plots follow the state."""

    State = ShapeState

    def make_controls(self):
        return {"what": base.choice("what", ["elevation", "albedo"]), "n": base.int_slider("plots", None, 1, 3)}

    def compute(self, state):
        import holoviews as hv

        da = DEM.rename(state.what).assign_attrs(units="m" if state.what == "elevation" else "1",
                                                 long_name=state.what)
        return hv.Layout([maps.lunar_map(da, clim=(-3000.0, 3000.0)) for _ in range(state.n)])


def test_live_plot_follows_a_new_quantity_a_new_layout_and_a_new_axis_range():
    from bokeh.models import ColorBar

    p = ShapePanel()
    assert len(_live_figures(p)) == 2
    # the colour bar used to keep the first quantity's title and units ("elevation [m]")
    p.controls["what"].value = "albedo"
    titles = {f.select_one({"type": ColorBar}).title for f in _live_figures(p)}
    assert titles == {"albedo"} and p.error is None
    # one plot fewer used to fail inside HoloViews (logged only) and leave the old maps on screen
    p.controls["n"].value = 1
    assert len(_live_figures(p)) == 1 and p.error is None
    p.cleanup()
    # the far-side view used to keep the near side's -180..180 axis: half the map blank
    q = MapPanel()
    q.controls["centre"].value = "far"
    f = _live_figures(q)[0]
    assert (f.x_range.start, f.x_range.end) == (0, 360)
    builds = q._live.n_builds
    q.controls["clim"].value = (-1000.0, 1000.0)  # a new colour range alone streams into the same plot
    assert q._live.n_builds == builds
    q.cleanup()


def test_replaced_plots_are_closed_so_toggling_does_not_grow_the_widget_registry():
    import gc

    import ipywidgets.widgets.widget as ww

    p = ShapePanel()
    p.controls["n"].value = 1
    gc.collect()
    before = len(ww._instances)
    for n in (2, 1, 2, 1, 2, 1):  # each change of plot count draws a new plot
        p.controls["n"].value = n
    gc.collect()
    assert p._live.n_builds == 8 and p.error is None
    # every replaced BokehModel (and its Layout) used to stay open with its data: +2 widgets a redraw
    assert len(ww._instances) == before
    p.cleanup()


def test_headline_table_shows_counts_as_whole_numbers(tmp_path, monkeypatch):
    import json

    from workbench import report

    monkeypatch.setenv(report.ENV_VAR, str(tmp_path))
    t = report.headline("99_table", n_sites=11, resolution_ppd=2, mean_km=-1.103, ci_km=[-1.2, -1.0])
    text = t.to_string()
    assert "11.000" not in text and "2.0000" not in text and "-1.103" in text
    assert t.loc["n_sites", "value"] == 11 and isinstance(t.loc["n_sites", "value"], int)
    # the JSON keeps the values as they were given
    assert json.loads((tmp_path / "99_table.json").read_text()) == {
        "n_sites": 11, "resolution_ppd": 2, "mean_km": -1.103, "ci_km": [-1.2, -1.0]}


def test_headline_table_gives_each_key_of_a_dict_figure_its_own_row(tmp_path, monkeypatch):
    import json

    from workbench import report

    monkeypatch.setenv(report.ENV_VAR, str(tmp_path))
    rmse = {"lucey2000": 1.449, "gradient_boosting_library": 0.444, "resnet_finetuned": 0.2301}
    t = report.headline("99_dicts", n=2, farside_feo_rmse=rmse, pair=[0.251, 0.23], empty={})
    assert list(t.index) == ["n", *(f"farside_feo_rmse · {k}" for k in rmse), "pair", "empty"]
    assert t.loc["farside_feo_rmse · resnet_finetuned", "value"] == 0.2301
    assert "..." not in t.to_string()  # a dict in one cell was cut off at pandas' column width
    # the JSON keeps the dict as one figure
    assert json.loads((tmp_path / "99_dicts.json").read_text())["farside_feo_rmse"] == rmse


def test_site_table_labels_oxides_in_wt_percent_and_says_not_reported():
    import pandas as pd

    from workbench.widgets.tour import site_table

    sites = pd.DataFrame({"site": ["Apollo 11", "Chang'e-6"], "lat": [0.67, -41.64], "lon": [23.47, -153.99],
                          "TiO2": [7.8, np.nan], "FeO": [15.3, 17.0], "Al2O3": [13.6, 14.0],
                          "far_side": [False, True]})
    t = site_table(sites)
    assert list(t.columns) == ["site", "lat (°N)", "lon (°E)", "TiO2 (wt%)", "FeO (wt%)", "Al2O3 (wt%)", "far side"]
    assert t.loc[1, "TiO2 (wt%)"] == "not reported" and t.loc[0, "TiO2 (wt%)"] == 7.8
    assert np.isnan(sites.loc[1, "TiO2"])  # the input is left as it is
    with pytest.raises(InputError, match="missing columns"):
        site_table(sites.drop(columns="FeO"))
    # coordinates to 0.01°: the sample table's 0.67408, 23.47297 show as 0.67, 23.47
    precise = sites.assign(lat=[0.67408, -41.6385], lon=[23.47297, -153.9852])
    t = site_table(precise)
    assert t["lat (°N)"].tolist() == [0.67, -41.64] and t["lon (°E)"].tolist() == [23.47, -153.99]


def test_tour_readout_shows_significant_figures_on_reflectance_data():
    from workbench.widgets.tour import TourState, tour_view

    lat, lon = global_grid(1.0)
    refl = 0.1 + 0.05 * np.random.default_rng(3).random((lat.size, lon.size))
    da = xr.DataArray(refl.astype("float32"), dims=("lat", "lon"), coords={"lat": lat, "lon": lon},
                      name="reflectance", attrs={"units": "1", "long_name": "reflectance at 750 nm"})
    _, readout = tour_view(da, None, TourState(clim=(0.11, 0.14), show_sites=False))
    assert "colour range 0.110 … 0.140 1" in readout and "range 0 … 0 " not in readout
    assert "near side 0.125 1" in readout  # the mean of U(0.1, 0.15), not "0"
    _, readout = tour_view(DEM, None, TourState(clim=(-6000.0, 6000.0), show_sites=False))
    assert "colour range -6000 … 6000 m" in readout


def test_hemisphere_mean_names_the_hemispheres_on_a_typo():
    from workbench.widgets.tour import hemisphere_mean

    with pytest.raises(InputError, match=r"hemisphere 'nearside' is not one of \['near', 'far', 'north', 'south'\]"):
        hemisphere_mean(DEM, "nearside")


def test_toggle_buttons_sit_beside_their_label_like_the_other_controls():
    """ipywidgets 8 gives a Dropdown or slider the row layout (label left, control right) but not ToggleButtons,
    whose label then sat on a line of its own (seen in JupyterLab); choice() adds the row class to them only."""
    from workbench.widgets import base

    buttons = base.choice("fine-tune", ["head", "lora", "full"])
    menu = base.choice("method", ["a rather long option name", "another long option name"])
    assert type(buttons).__name__ == "ToggleButtons" and "widget-inline-hbox" in buttons._dom_classes
    assert type(menu).__name__ == "Dropdown" and "widget-inline-hbox" not in menu._dom_classes
