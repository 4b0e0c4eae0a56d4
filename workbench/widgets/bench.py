"""``workbench bench widgets``: slider-to-map latency of a live panel, measured in a real kernel.

What is timed
-------------
A fresh IPython kernel (``jupyter_client``) builds a :class:`workbench.widgets.tour.TourPanel` over a
1440 × 720 global map (the real LOLA 4 px/deg DEM when the catalogue can open it, else a seeded
synthetic map of the same size — the result says which). The benchmark then plays the browser: it
sends the ipywidgets ``comm_msg`` a slider sends when it is released (``method: update``, new
``value``) on the shell channel and stops the clock when the kernel has published the bokeh
``PATCH-DOC`` messages of the map's ``BokehModel`` on iopub and gone idle. That is the whole
kernel-side round trip of a control change — comm decode, ``compute(state)``, HoloViews update, bokeh
serialisation and transport to the client — everything except BokehJS painting the canvas (which the
browser test checks separately).

Figures: ``update_latency_ms_p50`` / ``_p95`` for colour-range changes (target p95 ≤ 200 ms),
``centre_toggle_ms_p50`` for the near/far switch, ``patch_bytes_per_update``.
"""

from __future__ import annotations

import json
import os
import queue
import time

import numpy as np

_SETUP = r"""
import json, os, time
import numpy as np
import workbench as wb
from workbench.widgets.tour import TourPanel
wb.maps.setup_notebook()
source = "lola_ldem_4ppd"
try:
    dem = wb.open_dataset("lola_ldem_4ppd")["elevation"]
except Exception as exc:  # no mirror / network: same-size seeded synthetic map
    import xarray as xr
    source = f"synthetic 1440x720 (catalogue unavailable: {type(exc).__name__})"
    lat, lon = wb.geo.global_grid(4)
    rng = np.random.default_rng(0)
    dem = xr.DataArray(rng.normal(0, 2000, (lat.size, lon.size)).astype("float32"), dims=("lat", "lon"),
                       coords={"lat": lat, "lon": lon}, name="elevation",
                       attrs={"units": "m", "long_name": "synthetic elevation"})
assert dem.shape == (720, 1440), dem.shape
panel = TourPanel(dem, wb.samples.sample_sites())
print("WBINFO" + json.dumps({"clim": panel.controls["clim"].model_id,
                             "centre": panel.controls["centre"].model_id,
                             "plot": panel._plot_widget.model_id, "source": source,
                             "shape": list(dem.shape), "range": panel._range}))
"""


def _drain(kc, msg_id: str, plot_comm: str, timeout: float = 30.0) -> tuple[int, int]:
    """Read iopub until the kernel is idle for ``msg_id``; return (plot patch messages, buffer bytes)."""
    n_patch = 0
    nbytes = 0
    t_end = time.monotonic() + timeout
    while True:
        left = t_end - time.monotonic()
        if left <= 0:
            raise TimeoutError("kernel did not go idle after a control change")
        try:
            msg = kc.get_iopub_msg(timeout=left)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        mt = msg["msg_type"]
        if mt == "comm_msg" and msg["content"].get("comm_id") == plot_comm:
            n_patch += 1
            nbytes += sum(len(b) for b in msg.get("buffers") or [])
        elif mt == "error":
            raise RuntimeError("kernel error: " + "\n".join(msg["content"].get("traceback", []))[-2000:])
        elif mt == "status" and msg["content"]["execution_state"] == "idle":
            return n_patch, nbytes


def _execute(kc, code: str, timeout: float = 300.0) -> str:
    msg_id = kc.execute(code)
    out = []
    t_end = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(t_end - time.monotonic(), 0.1))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise RuntimeError("kernel error: " + "\n".join(msg["content"]["traceback"])[-3000:])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def _comm_update(kc, comm_id: str, state: dict) -> str:
    """Send what the ipywidgets front end sends when a control changes; return the message id."""
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id,
                                      "data": {"method": "update", "state": state, "buffer_paths": []}})
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def run(fast: bool = False) -> dict:
    """Time colour-range changes (and near/far toggles) of a 1440 × 720 live map in a real kernel."""
    from jupyter_client.manager import start_new_kernel

    n = 12 if fast else 40
    env = dict(os.environ)
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        t0 = time.perf_counter()
        out = _execute(kc, _SETUP)
        setup_s = time.perf_counter() - t0
        info = json.loads(next(line for line in out.splitlines() if line.startswith("WBINFO"))[6:])
        lo, hi, step = info["range"]
        rng = np.random.default_rng(0)
        # warm-up (first update compiles code paths)
        for v in [(-4000.0, 4000.0), (-3000.0, 3000.0)]:
            _drain(kc, _comm_update(kc, info["clim"], {"value": list(v)}), info["plot"])
        lat_ms, patches, nbytes = [], [], []
        for _ in range(n):
            a = float(np.round(rng.uniform(lo, 0) / step) * step)
            b = float(np.round(rng.uniform(step, hi) / step) * step)
            t = time.perf_counter()
            mid = _comm_update(kc, info["clim"], {"value": [a, b]})
            k, nb = _drain(kc, mid, info["plot"])
            lat_ms.append((time.perf_counter() - t) * 1000.0)
            patches.append(k)
            nbytes.append(nb)
        if min(patches) == 0:
            raise RuntimeError("a control change produced no map update message; the panel is not live")
        toggle_ms = []
        for i in range(4 if fast else 10):
            t = time.perf_counter()
            k, _ = _drain(kc, _comm_update(kc, info["centre"], {"index": (i + 1) % 2}), info["plot"])
            toggle_ms.append((time.perf_counter() - t) * 1000.0)
            if k == 0:
                raise RuntimeError("near/far toggle produced no map update message")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {
        "map_shape": info["shape"],
        "map_source": info["source"],
        "n_updates": n,
        "update_latency_ms_p50": round(float(np.percentile(lat_ms, 50)), 1),
        "update_latency_ms_p95": round(float(np.percentile(lat_ms, 95)), 1),
        "update_latency_ms_max": round(float(np.max(lat_ms)), 1),
        "target_p95_ms": 200.0,
        "centre_toggle_ms_p50": round(float(np.percentile(toggle_ms, 50)), 1),
        "patch_messages_per_update": int(np.median(patches)),
        "patch_bytes_per_update": int(np.median(nbytes)),
        "kernel_setup_seconds": round(setup_s, 2),
        "measures": "comm_msg from client -> compute -> HoloViews/bokeh patch on iopub -> kernel idle",
    }
