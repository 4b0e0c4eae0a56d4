"""Known-answer tests for the inversion, tour and benchmark panels' pure functions (mutation review).

Everything runs on tiny hand-made grids with the heavy parts (training, plotting, the kernel) replaced by
fakes, so no data mirror, network or model weights are needed.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.geo import global_grid
from workbench.inversion.model import TARGETS
from workbench.widgets import inversion as inv
from workbench.widgets import tour

CLEM = "clementine_uvvis"
# 10-degree cells: centres at ±5, ±15, ... (lat) and -175 ... 175 (lon); 1° on the Moon is ~30.3 km
LAT, LON = global_grid(0.1)
# every site lies 2.5° of longitude (~75 km, between 60 and 100 km) from one far-side cell centre
SITES = {"A": (5.0, 177.5), "B": (-5.0, -172.5), "C": (15.0, 147.5)}
HOT = {"A": (5.0, 175.0), "B": (-5.0, -175.0), "C": (15.0, 145.0)}  # the cell centre next to each site


def _grid(value) -> xr.DataArray:
    return xr.DataArray(np.full((LAT.size, LON.size), value, dtype="float64"), dims=("lat", "lon"),
                        coords={"lat": LAT, "lon": LON})


def _truth() -> xr.Dataset:
    return xr.Dataset({t: _grid(10.0 + i) for i, t in enumerate(TARGETS)})


def _pred(err: float, hot: float = 100.0) -> xr.Dataset:
    """Truth + ``err`` everywhere, + ``hot`` at the cell next to every site, with a constant 0.5 std."""
    out = {}
    for i, t in enumerate(TARGETS):
        da = _grid(10.0 + i + err)
        for la, lo in HOT.values():
            da.loc[{"lat": la, "lon": lo}] = 10.0 + i + hot
        out[t] = da
        out[f"{t}_std"] = _grid(0.5)
    return xr.Dataset(out)


def _lab() -> inv.InversionLab:
    lab = inv.InversionLab.__new__(inv.InversionLab)
    lab.pretrained, lab.truth, lab.sites = {}, _truth(), dict(SITES)
    lab.snr, lab.seed, lab.ft_steps, lab.sklearn_pixels = 100.0, 0, 1, 500
    lon2 = xr.broadcast(lab.truth["FeO"].lat, lab.truth["FeO"].lon)[1].transpose("lat", "lon")
    far = (np.abs(lon2) > 90)
    lab.masks = {"test": far, "train": ~far}
    lab._refl, lab._models, lab._preds = {}, {}, {}
    return lab


# ------------------------------------------------------------------ prediction keys and caching


def test_prediction_key_keeps_exactly_the_inputs_each_method_depends_on():
    # the fine-tuned CNN: instrument, sorted sites, mode and ensemble size
    assert inv.prediction_key("kaguya_mi", "resnet_finetuned", ("B", "A"), "head", 2) == (
        "kaguya_mi", "resnet_finetuned", ("A", "B"), "head", 2)
    # the pre-trained CNN: no sites, no mode, but the ensemble size
    assert inv.prediction_key("kaguya_mi", "resnet_pretrained", ("A",), "full", 3) == (
        "kaguya_mi", "resnet_pretrained", (), None, 3)
    assert inv.prediction_key("kaguya_mi", "gbm", ("A",), "full", 3) == ("kaguya_mi", "gbm")


def test_predict_passes_sites_mode_and_members_to_the_model_and_caches_by_sorted_sites(monkeypatch):
    lab = _lab()
    lab._refl = {"kaguya_mi": _grid(0.1)}
    calls = []

    def model(instrument, sites=(), mode="lora", members=4):
        calls.append((instrument, tuple(sites), mode, members))
        return types.SimpleNamespace(predict=lambda refl, epistemic: _pred(float(len(calls))))

    monkeypatch.setattr(lab, "model", model)
    p1 = lab.predict("kaguya_mi", "resnet_finetuned", ("B", "A"), "head", 2)
    assert calls == [("kaguya_mi", ("B", "A"), "head", 2)]
    assert lab.predict("kaguya_mi", "resnet_finetuned", ("A", "B"), "head", 2) is p1 and len(calls) == 1
    lab.predict("kaguya_mi", "resnet_finetuned", ("A", "B"), "full", 2)
    lab.predict("kaguya_mi", "resnet_finetuned", ("A", "B"), "full", 3)
    assert calls[1:] == [("kaguya_mi", ("A", "B"), "full", 2), ("kaguya_mi", ("A", "B"), "full", 3)]
    # the pre-trained CNN ignores sites and mode but not the ensemble size
    lab.predict("kaguya_mi", "resnet_pretrained", ("A",), "head", 1)
    lab.predict("kaguya_mi", "resnet_pretrained", (), "full", 1)
    assert calls[3:] == [("kaguya_mi", (), "head", 1)]
    lab.predict("kaguya_mi", "resnet_pretrained", (), "full", 2)
    assert calls[4:] == [("kaguya_mi", (), "full", 2)]
    assert lab.computed_methods("kaguya_mi", ("B", "A"), "head", 2) == ["resnet_finetuned", "resnet_pretrained"]
    assert lab.computed_methods("kaguya_mi", ("A",), "lora", 3) == []


def test_lucey_prediction_keeps_feo_and_tio2_apart(monkeypatch):
    lab = _lab()
    lab._refl = {CLEM: _grid(0.1)}
    maps = types.SimpleNamespace(FeO_lucey2000=_grid(7.0), TiO2_lucey2000=_grid(3.0))
    monkeypatch.setattr(inv.bl, "classical_maps", lambda refl: maps)
    pred = lab.predict(CLEM, "lucey2000")
    assert float(pred["FeO"].mean()) == 7.0 and float(pred["TiO2"].mean()) == 3.0


def test_model_cache_one_pretrained_ensemble_per_size_for_every_mode(monkeypatch):
    lab = _lab()
    loads = []

    class Fake:
        def __init__(self, members=4):
            self.members = members

        def with_members(self, n):
            return Fake(n)

    monkeypatch.setattr(inv, "load_pretrained", lambda instrument: loads.append(instrument) or Fake())
    a = lab.model(CLEM, (), "lora", 2)
    assert lab.model(CLEM, (), "head", 2) is a and a.members == 2
    assert lab.model(CLEM, (), "lora", 3).members == 3 and lab.model(CLEM, (), "lora", 2) is a


def test_sklearn_method_is_fitted_once_by_name_with_units_on_every_target(monkeypatch):
    lab = _lab()
    refl = xr.concat([_grid(0.1), _grid(0.2), _grid(0.3)], "band").assign_coords(
        band=["R415", "R750", "R950"], wavelength=("band", [415.0, 750.0, 950.0]))
    lab._refl = {"kaguya_mi": refl}
    made = []

    class Fake:
        def __init__(self, kind, seed, size):
            made.append(kind)

        def fit(self, X, Y, wavelengths):
            assert X.shape[1] == 3 and Y.shape[1] == len(TARGETS)
            return self

        def predict(self, X):
            return np.tile(np.arange(len(TARGETS), dtype=float), (len(X), 1))

    monkeypatch.setattr(inv.bl, "SklearnInverter", Fake)
    pred = lab.predict("kaguya_mi", "pls", ("A",), "head", 2)
    assert lab.predict("kaguya_mi", "pls", ("B",), "full", 1) is pred and made == ["pls"]
    assert [float(pred[t].mean()) for t in TARGETS] == list(range(len(TARGETS)))
    assert {t: pred[t].attrs["units"] for t in TARGETS} == {**{t: "wt%" for t in TARGETS[:-1]}, "mg_number": "1"}


def test_gbm_library_does_not_depend_on_the_ensemble_size_of_the_weights(monkeypatch):
    """Weights with 2 members (``train --members 2``) used to raise 'ensemble size must be 1..2, got 4' for the
    GBM baseline, which read the library recipe from a 4-member copy of the ensemble it never uses."""
    from workbench.inversion.model import OxideInverter

    lab = _lab()
    refl = xr.concat([_grid(0.1), _grid(0.2), _grid(0.3)], "band").assign_coords(
        band=["R415", "R750", "R950"], wavelength=("band", [415.0, 750.0, 950.0]))
    lab._refl = {CLEM: refl}
    two = OxideInverter(["R415", "R750", "R950"], [415.0, 750.0, 950.0], width=8, depth=1, stem=4, members=2)
    two.meta.setdefault("fit", {})["library"] = {"recipe": 1}
    lab.pretrained[CLEM] = two
    fitted = types.SimpleNamespace(predict=lambda X: np.zeros((len(X), len(TARGETS))))
    monkeypatch.setattr(inv, "library_data", lambda recipe: recipe)
    monkeypatch.setattr(inv, "fit_gbm_library", lambda *a: fitted)
    pred = lab.predict(CLEM, "gbm_library", (), "lora", 2)  # the gbm never uses the CNN ensemble
    assert float(pred["FeO"].mean()) == 0.0


# ------------------------------------------------------------------ error colour limit


def test_error_colour_limit_is_the_truths_standard_deviation_to_two_figures():
    # values 0, 0, 0, 4 (and a NaN): mean 1, variance (1 + 1 + 1 + 9) / 4 = 3, sd = 1.732... -> 1.7
    da = xr.DataArray([0.0, 0.0, 0.0, 4.0, np.nan])
    assert inv.error_colour_limit(da) == 1.7
    assert inv.error_colour_limit(xr.DataArray([5.0, 5.0, np.nan])) == 1.0  # no spread: a unit range


# ------------------------------------------------------------------ the explored and metrics tables


def _explored_lab() -> inv.InversionLab:
    lab = _lab()
    lab._preds = {
        (CLEM, "gbm"): _pred(1.0),
        (CLEM, "resnet_finetuned", ("A", "B"), "head", 2): _pred(2.0),
        ("kaguya_mi", "lucey2000"): _pred(9.0)[["FeO", "TiO2"]],
        (CLEM, "resnet_pretrained", (), None, 3): _pred(3.0),
    }
    return lab


def test_explored_table_rows_columns_and_rmse_with_every_site_excluded():
    table = _explored_lab().explored_table(CLEM, ("C",))
    # one row per computed prediction of this instrument, in the order they were computed
    assert list(table.columns) == ["method", "sites", "mode", "members", *TARGETS]
    assert table[["method", "sites", "mode", "members"]].values.tolist() == [
        ["gbm", "–", "–", "–"],
        ["resnet_finetuned", "A + B", "head", 2],
        ["resnet_pretrained", "–", "–", 3]]
    # the cells within 100 km of A, B (a row's sites) and C (the panel's sites) are left out: the error is
    # the constant offset of each prediction, as if the 100-wt% outliers were not there
    np.testing.assert_allclose(table[list(TARGETS)].to_numpy(float), [[1.0] * 7, [2.0] * 7, [3.0] * 7])


def test_metrics_table_excludes_100_km_around_the_sites():
    lab = _explored_lab()
    table = lab.metrics_table(CLEM, ["gbm"], ("A", "B", "C"), "lora", 2)
    assert list(table.index) == ["gbm"] and list(table.columns) == list(TARGETS)
    np.testing.assert_allclose(table.loc["gbm"].to_numpy(float), 1.0)


# ------------------------------------------------------------------ views


pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # R² of a constant truth


@pytest.fixture
def captured_maps(monkeypatch):
    import workbench.maps

    got = []
    monkeypatch.setattr(workbench.maps, "lunar_map", lambda da, **kw: got.append((da, kw)) or object())
    return got


def test_inversion_view_layers_units_sign_and_table(captured_maps):
    lab = _explored_lab()
    lab.truth["FeO"] = lab.truth["FeO"] + xr.DataArray([0.0] * (LAT.size - 1) + [4.0], dims="lat")
    state = inv.InversionState(method="gbm", oxide="mg_number", layer="value", sites=("C",), members=3)
    _, html = inv.inversion_view(lab, state)
    da, _ = captured_maps[-1]
    assert da.attrs["units"] == "1" and float(da.sel(lat=-85, lon=-5)) == 10.0 + 6 + 1.0
    # the table is scored without the cells around the panel's site C: gbm's FeO RMSE is exactly 1
    assert "<td>1.0</td>" in html and "<td>2.0</td>" in html
    inv.inversion_view(lab, inv.InversionState(method="resnet_pretrained", layer="uncertainty", members=3,
                                               sites=("C",)))
    da, _ = captured_maps[-1]
    assert da.attrs["units"] == "wt%" and float(da.mean()) == 0.5
    inv.inversion_view(lab, inv.InversionState(method="gbm", layer="error", members=3, sites=("C",)))
    da, kw = captured_maps[-1]
    # prediction − truth: 11 - 10 = +1 in an ordinary row, 11 - 14 = -3 in the last one
    assert float(da.sel(lat=85, lon=5)) == 1.0 and float(da.sel(lat=-85, lon=-5)) == -3.0
    assert da.attrs["units"] == "wt%" and kw["diverging"] is True
    # truth: 17 rows of 10 and one of 14 (18 rows): sd = 4 * sqrt(17) / 18 = 0.916... -> 0.92
    assert kw["clim"] == (-0.92, 0.92)


def test_advisor_view_scores_the_model_fine_tuned_on_the_sampled_sites(monkeypatch):
    lab = _lab()
    lab._refl = {CLEM: _grid(0.1)}
    preds, ranks = [], []
    monkeypatch.setattr(lab, "predict", lambda *a: preds.append(a) or "PRED")
    monkeypatch.setattr(inv, "site_advisor", lambda pred, refl, **kw: ranks.append((pred, kw))
                        or pd.DataFrame({"site": ["x"], "score": [0.123456]}))
    out = inv.advisor_view(lab, inv.AdvisorState(oxide="TiO2", radius=0.8, members=3, sampled=("A",)))
    assert preds == [(CLEM, "resnet_finetuned", ("A",), "lora", 3)]
    assert ranks == [("PRED", {"target": "TiO2", "radius": 0.8, "sampled": {"A": SITES["A"]}})]
    assert out["score"].tolist() == [0.123]
    inv.advisor_view(lab, inv.AdvisorState(members=2))
    assert preds[-1] == (CLEM, "resnet_pretrained", (), "lora", 2) and ranks[-1][1]["sampled"] == {}


def test_site_options_offer_every_advisor_candidate():
    from workbench.inversion.advisor import CANDIDATES

    opts = inv.site_options()
    assert all(opts[k] == v for k, v in CANDIDATES.items())


# ------------------------------------------------------------------ tour


def _global(values) -> xr.DataArray:
    lat, lon = global_grid(1)
    return xr.DataArray(np.asarray(values, dtype="float64").reshape(lat.size, lon.size), dims=("lat", "lon"),
                        coords={"lat": lat, "lon": lon}, attrs={"units": "m"})


def test_sig_keeps_three_significant_figures():
    assert tour._sig(12.345) == "12.3" and tour._sig(0.1249) == "0.125" and tour._sig(-6000) == "-6000"


def test_hemisphere_mean_is_area_weighted():
    lat, lon = global_grid(1)
    band = np.broadcast_to((np.abs(lat) < 30)[:, None], (lat.size, lon.size))
    # |lat| < 30° is sin(30°) = half of the sphere's area (one third of the rows)
    assert tour.hemisphere_mean(_global(band), "near") == pytest.approx(0.5)


def test_tour_readout_fraction_outside_and_hemisphere_means(monkeypatch):
    import workbench.maps

    overlays = []
    monkeypatch.setattr(workbench.maps, "lunar_map", lambda da, **kw: "MAP")
    monkeypatch.setattr(workbench.maps, "sites_overlay", lambda s, **kw: overlays.append(s) or "SITES")
    lat, lon = global_grid(1)
    v = np.tile(np.array([-1.0, -1.0, 0.5, 0.5, 0.5, 0.5, 2.0, 2.0, np.nan]), lat.size * lon.size // 9)
    da = _global(v)
    plot, readout = tour.tour_view(da, "sites", tour.TourState(clim=(0.0, 1.0), show_sites=False),
                                   {"near": 7.0, "far": 8.0})
    # 2 below, 2 above and 4 inside of every 8 finite pixels (the NaN is not a pixel outside)
    assert plot == "MAP" and not overlays and "50.0% of pixels outside it" in readout
    assert "near side 7.00 m, far side 8.00 m" in readout
    near_far = _global(np.where(np.abs(((lon + 180) % 360) - 180) <= 90, 1.0, 3.0)[None, :].repeat(lat.size, 0))
    _, readout = tour.tour_view(near_far, None, tour.TourState(show_sites=False))
    assert "near side 1.00 m, far side 3.00 m" in readout


def test_tour_panel_slider_range_and_default_colour_range(monkeypatch):
    got = {}
    monkeypatch.setattr(tour.base.Panel, "__init__", lambda self, state=None, **kw: got.update(kw))
    lat, lon = global_grid(1)
    da = _global(np.linspace(-5.0, 995.0, lat.size * lon.size))
    panel = tour.TourPanel(da)
    # span 1000 -> step 10; range floored/ceiled to the step; default colour range: 1st-99th percentile
    # (5 and 985) rounded outwards to the step
    assert panel._range == (-10.0, 1000.0, 10.0)
    assert got["clim"] == (0.0, 990.0)


# ------------------------------------------------------------------ bench


class _FakeKernel:
    """Just enough of a jupyter_client kernel client for :mod:`workbench.widgets.bench`."""

    def __init__(self, delays=()):
        import queue

        self.q, self.delays, self.clock, self.n = queue.Queue(), list(delays), [0.0], 0
        self.session = types.SimpleNamespace(msg=self._msg)
        self.shell_channel = types.SimpleNamespace(send=self._send)

    def _msg(self, kind, content):
        self.n += 1
        return {"header": {"msg_id": f"m{self.n}"}, "content": content}

    def _send(self, msg):
        mid = msg["header"]["msg_id"]
        self.clock[0] += self.delays.pop(0) if self.delays else 0.0
        self.put(mid, "comm_msg", {"comm_id": "plot"}, [b"abcd"])
        self.put(mid, "status", {"execution_state": "idle"})

    def put(self, parent, kind, content, buffers=None):
        self.q.put({"parent_header": {"msg_id": parent}, "msg_type": kind, "content": content,
                    "buffers": buffers or []})

    def get_iopub_msg(self, timeout=None):
        return self.q.get(timeout=1)

    def execute(self, code):
        import json

        info = {"clim": "clim", "centre": "centre", "plot": "plot", "source": "fake", "shape": [720, 1440],
                "range": [-100.0, 100.0, 10.0]}
        self.put("x", "stream", {"text": "WBINFO" + json.dumps(info) + "\n"})
        self.put("x", "status", {"execution_state": "idle"})
        return "x"

    def stop_channels(self):
        pass


def test_drain_counts_only_the_plots_messages_for_this_request():
    from workbench.widgets import bench

    kc = _FakeKernel()
    kc.put("other", "comm_msg", {"comm_id": "plot"}, [b"zzzzzz"])
    kc.put("other", "status", {"execution_state": "idle"})
    kc.put("me", "comm_msg", {"comm_id": "slider"}, [b"zzzzzz"])
    kc.put("me", "comm_msg", {"comm_id": "plot"}, [b"abc", b"de"])
    kc.put("me", "status", {"execution_state": "idle"})
    assert bench._drain(kc, "me", "plot") == (1, 5)


def test_bench_percentiles_of_the_measured_latencies(monkeypatch):
    import jupyter_client.manager

    from workbench.widgets import bench

    # 2 warm-up updates, 12 timed ones of 10, 20, ..., 120 ms, 4 near/far toggles
    kc = _FakeKernel([0.0, 0.0, *[0.01 * i for i in range(1, 13)], 0.005, 0.005, 0.005, 0.005])
    km = types.SimpleNamespace(shutdown_kernel=lambda now: None)
    monkeypatch.setattr(jupyter_client.manager, "start_new_kernel", lambda **kw: (km, kc))
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: kc.clock[0],
                                                             monotonic=__import__("time").monotonic))
    out = bench.run(fast=True)
    # linear-interpolated percentiles of 10..120 ms: p50 = 65, p95 = 10 + 0.95 * 110 = 114.5
    assert out["n_updates"] == 12 and out["update_latency_ms_p50"] == pytest.approx(65.0)
    assert out["update_latency_ms_p95"] == pytest.approx(114.5, abs=0.051)
    assert out["update_latency_ms_max"] == pytest.approx(120.0) and out["centre_toggle_ms_p50"] == pytest.approx(5.0)
    assert out["patch_bytes_per_update"] == 4 and out["patch_messages_per_update"] == 1
