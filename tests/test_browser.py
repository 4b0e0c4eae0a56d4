"""Real-browser tests: every curated notebook in JupyterLab, driven by Chromium through Playwright.

For each ``notebooks/*.ipynb`` (run on a copy, so the repository is never touched): open it in a
JupyterLab server started here on 127.0.0.1, run all cells, assert there is no error output, find the
bokeh plot and the ipywidgets controls, move a slider and assert the map changed (a screenshot
difference of the plot, plus the panel's readout when it has one). Every request the page makes is
recorded; any to a host that is not local is refused and fails the test (panel/HoloViews load from
CDNs unless told to inline their resources).

Needs Debian's chromium at /usr/bin/chromium (``apt-get install -y chromium``) and Playwright;
skipped with a reason otherwise. Run with ``pytest -m browser tests/test_browser.py``.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    JS_NOTEBOOK_STATE,
    JS_RUN_ALL,
    RequestLog,
    copy_notebooks,
    is_local,
    start_lab,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
RUN_TIMEOUT_S = float(os.environ.get("WORKBENCH_BROWSER_RUN_TIMEOUT", "900"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} missing: install Debian's chromium (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    copy_notebooks(REPO / "notebooks", root)
    server = start_lab(root, work)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _png_stats(png: bytes) -> int:
    """Number of distinct colours in a screenshot (a blank plot has a handful)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    return len(img.getcolors(maxcolors=1 << 20) or [])


def _state(page) -> dict | None:
    return page.evaluate(JS_NOTEBOOK_STATE)


def _wait_idle_kernel(page, timeout_s: float) -> None:
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        s = _state(page)
        if s and s["status"] == "idle":
            return
        time.sleep(0.5)
    raise AssertionError(f"kernel not idle after {timeout_s:.0f} s (state: {_state(page)})")


def _run_all(page, timeout_s: float) -> dict:
    page.evaluate(JS_RUN_ALL)
    t0 = time.monotonic()
    t_end = t0 + timeout_s
    last = None
    retried = False
    while time.monotonic() < t_end:
        s = _state(page)
        last = s
        if s and s["errors"]:
            return s
        if s and s["code"] and s["done"] == s["code"] and s["status"] == "idle":
            return s
        if not retried and time.monotonic() - t0 > 60 and s and s["done"] == 0 and s["status"] == "idle":
            # nothing started (the command can be swallowed while JupyterLab is still settling)
            page.evaluate(JS_RUN_ALL)
            retried = True
        time.sleep(1.0)
    raise AssertionError(f"notebook did not finish within {timeout_s:.0f} s (last state: {last})")


def _scroll(locator) -> None:
    """Scroll an element to the middle of the viewport (works before it has been painted)."""
    locator.evaluate("e => e.scrollIntoView({block: 'center'})")
    time.sleep(0.3)


def _drag(page, handle, dx: float) -> None:
    _scroll(handle)
    box = handle.bounding_box()
    assert box, "slider handle has no bounding box (not visible)"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x + dx * k / 10, y)
    page.mouse.up()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_and_its_map_responds_in_jupyterlab(lab, browser, notebook, tmp_path):
    log = RequestLog()
    sockets: list[str] = []
    context = browser.new_context(viewport={"width": 1700, "height": 1100})
    context.route("**/*", log.route)
    page = context.new_page()
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        t0 = time.monotonic()
        page.goto(lab.url(notebook), wait_until="domcontentloaded", timeout=180_000)
        _wait_idle_kernel(page, 240)
        state = _run_all(page, RUN_TIMEOUT_S)
        run_s = time.monotonic() - t0
        assert not state["errors"], f"{notebook}: error output after run-all: {state['errors']}"

        # the bokeh plot: a canvas in an output area (Playwright's CSS engine pierces shadow DOM)
        canvases = page.locator(".jp-OutputArea-output canvas")
        canvases.first.wait_for(state="attached", timeout=60_000)
        assert canvases.count() > 0, f"{notebook}: no bokeh plot found"

        # the ipywidgets controls: prefer a workbench Panel, else any slider
        panel = page.locator(".workbench-panel")
        scope = panel.first if panel.count() else page
        sliders = scope.locator(".widget-slider")
        assert sliders.count() > 0, (f"{notebook}: no ipywidgets slider found; every curated notebook "
                                     "offers one (issue 8)")
        if panel.count():
            plot = panel.first.locator(".workbench-panel-output")
            readout = panel.first.locator(".workbench-panel-readout")
        else:
            plot = page.locator(".jp-Cell", has=sliders.first).locator(".jp-Cell-outputArea").first
            readout = None
        _scroll(plot)
        plot.locator("canvas").first.wait_for(state="visible", timeout=60_000)
        time.sleep(1.0)  # let BokehJS paint
        before_png = plot.screenshot()
        (tmp_path / "before.png").write_bytes(before_png)
        assert _png_stats(before_png) > 30, f"{notebook}: the plot looks blank"
        # every control's label and readout shows whole (the tour's "−5400 – 5700" and 01's "phase angle (i = g,
        # e = 0) (deg)" were once cut at their box's edge)
        cut = scope.locator(".widget-label, .widget-readout").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)")
        assert not cut, f"{notebook}: control labels or readouts cut at their box's edge: {cut}"
        before_text = readout.inner_text() if readout is not None else None

        # move sliders one at a time (some only matter in some modes) until the map changes
        changed_png = changed_text = False
        after_png = before_png
        moved = []
        for i in range(min(sliders.count(), 4)):
            slider = sliders.nth(i)
            label = slider.locator(".widget-label").first.inner_text()
            value_before = slider.locator(".widget-readout").first.inner_text()
            _drag(page, slider.locator(".noUi-handle").first, 25)
            if slider.locator(".widget-readout").first.inner_text() == value_before:
                _drag(page, slider.locator(".noUi-handle").first, -50)  # it sat at its maximum
            t_move = time.monotonic()
            while time.monotonic() - t_move < 180:  # fine-tuning a new ensemble size: ~10 s idle, over 60 s loaded
                time.sleep(0.5)
                _scroll(plot)
                after_png = plot.screenshot()
                changed_png = after_png != before_png
                changed_text = readout is not None and readout.inner_text() != before_text
                if changed_png:
                    break
            moved.append(f"{label}: {value_before} -> {slider.locator('.widget-readout').first.inner_text()}")
            if changed_png:
                break
        (tmp_path / "after.png").write_bytes(after_png)
        assert changed_png, (f"{notebook}: the map did not change after moving the sliders {moved} "
                             f"(screenshots in {tmp_path})")
        state = _state(page)
        assert not state["errors"], f"{notebook}: error output after moving the slider: {state['errors']}"
        print(f"{notebook}: run-all {run_s:.1f} s; moved {moved[-1]}: map changed in "
              f"{time.monotonic() - t_move:.1f} s, readout changed: {changed_text}; {len(log.urls)} requests")
    finally:
        context.close()
        lab.shutdown_kernels()
    assert log.urls, "no requests were recorded"
    assert not log.blocked, f"{notebook}: the page tried to reach non-local hosts: {sorted(set(log.blocked))}"
    bad_ws = [u for u in sockets if not is_local(u.replace("ws://", "http://").replace("wss://", "https://"))]
    assert not bad_ws, f"{notebook}: non-local websockets: {bad_ws}"


@pytest.mark.slow
def test_exported_tour_page_renders_offline(browser, tmp_path):
    """The demo report page of 00_tour shows its bokeh maps with every non-local request refused."""
    from workbench.demo import execute_notebook
    from workbench.demo_report import export_html

    nb_path = REPO / "notebooks" / "00_tour.ipynb"
    if not nb_path.exists():
        pytest.skip("notebooks/00_tour.ipynb not present")
    nb, err = execute_notebook(nb_path, timeout=900, env={"WORKBENCH_FAST": "1"})
    assert err is None, err
    page_path = export_html(nb, tmp_path / "00_tour.html")
    log = RequestLog()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", log.route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
    page.locator("canvas").first.wait_for(state="visible", timeout=60_000)
    time.sleep(1.0)
    assert page.locator("canvas").count() >= 4  # four maps
    png = page.locator("canvas").first.screenshot()
    assert _png_stats(png) > 30, "the first exported map looks blank"
    context.close()
    assert not log.blocked, f"exported page tried to reach non-local hosts: {sorted(set(log.blocked))}"
    assert not errors, f"JavaScript errors on the exported page: {errors[:3]}"
