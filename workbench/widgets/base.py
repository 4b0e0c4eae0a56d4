"""One consistent look for the notebooks' interactive panels (ipywidgets + HoloViews/bokeh).

A panel keeps **all** its control values in one dataclass (``self.state``) and draws its output
with **one pure function** ``compute(state)``. The base class builds the layout (a titled column of
labelled controls with units, a Reset button and a readout on the left, the map on the right),
calls ``compute`` exactly once per control change and pushes the result to the live bokeh plot.

Example
-------
>>> from dataclasses import dataclass
>>> from workbench.widgets import base
>>> @dataclass
... class State:
...     vmin: float = -5000.0
...     vmax: float = 5000.0
>>> class ElevationPanel(base.Panel):
...     State = State
...     title = "LOLA elevation"
...     def make_controls(self):
...         return {"vmin": base.slider("colour min", "m", -10000, 0, 100),
...                 "vmax": base.slider("colour max", "m", 0, 10000, 100)}
...     def compute(self, state):
...         return wb.maps.lunar_map(dem, clim=(state.vmin, state.vmax))   # doctest: +SKIP

How the plot updates
--------------------
``compute`` returns a HoloViews element; the base class feeds it through a
:class:`holoviews.streams.Pipe` into a :class:`holoviews.DynamicMap`, which HoloViews renders once
and afterwards *updates in place* (data source, colour mapper, title). A result whose layout, quantity or
units differ from the plot on screen (see :func:`layout_signature`) gets a new DynamicMap and widget
instead, since HoloViews keeps those from the first draw (:class:`LivePlot`). The DynamicMap is shown as an
ipywidget through ``panel.ipywidget`` (the ``jupyter_bokeh`` BokehModel), so the update travels over
the ordinary Jupyter widget comm — it works in JupyterLab, classic Notebook and VS Code. If
``compute`` returns something that is not a HoloViews object (a pandas table, a matplotlib figure,
text) it is shown in an :class:`ipywidgets.Output` instead.

Long work
---------
:class:`LongTask` shows a progress bar and a Stop button. ``task.start(fn, ...)`` runs
``fn(..., progress=task)`` in a worker thread so the kernel stays responsive and the Stop button can be
clicked; ``fn`` checks ``progress.should_stop()`` (or calls ``progress.check()``, which raises
:class:`StopRequested`, or uses ``progress.callback(step, total, **metrics)``, which returns ``False``
when stopped) — a cooperative stop that never kills the kernel. ``task.result()`` waits for the result.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

import ipywidgets as w
import numpy as np
from traitlets import TraitError

from ..errors import InputError, WorkbenchError

#: Width of the control column and of control labels (CSS); a label longer than its width is cut with "…"
#: and shown whole as the control's tooltip.
CONTROL_WIDTH = "400px"
LABEL_WIDTH = "140px"
#: Size of a global map in a panel: beside the control column it fits a 1268 px notebook (JupyterLab in a
#: 1700 px window with its file browser open); a wider plot moves below the controls.
PANEL_MAP_SIZE = {"width": 620, "height": 310}


#: How a variable is named on plots, controls and tables where its dataset name is not what a reader expects
#: (data keep their names: ``pred["mg_number"]``); units are added separately, except a dimensionless "1".
DISPLAY_NAMES = {"mg_number": "Mg#", "silicate_mg_number": "silicate Mg#", "npfe": "npFe⁰"}


def display_name(variable: str) -> str:
    """The name shown for a dataset variable ("mg_number" → "Mg#"; others unchanged).

    >>> display_name("mg_number"), display_name("FeO")
    ('Mg#', 'FeO')
    """
    return DISPLAY_NAMES.get(variable, variable)


def display_options(variables) -> dict[str, str]:
    """Options of a :func:`choice` that shows each variable's :func:`display_name` and returns its dataset name.

    >>> display_options(["FeO", "mg_number"])
    {'FeO': 'FeO', 'Mg#': 'mg_number'}
    """
    return {display_name(v): v for v in variables}


class StopRequested(WorkbenchError):
    """Raised inside long work when the user pressed Stop (the partial result is discarded)."""


#: CSS every panel sends with its title: a slider's readout as wide as its text (ipywidgets lets the track
#: squeeze it, so a range's "−5400 – 5700" was cut at the column's edge); the track takes what is left.
PANEL_CSS = ".workbench-panel .widget-inline-hbox .widget-readout {flex: 0 0 auto; max-width: none}"


def _label(label: str, units: str | None) -> str:
    return f"{label} ({units})" if units else label


def _style(label: str = "") -> dict[str, Any]:
    return {"style": {"description_width": LABEL_WIDTH}, "layout": w.Layout(width=CONTROL_WIDTH), "tooltip": label}


def slider(label: str, units: str | None, min: float, max: float, step: float,
           value: float | None = None, continuous_update: bool = False, tooltip: str | None = None) -> w.FloatSlider:
    """A labelled float slider ``"label (units)"``; updates on release unless ``continuous_update``.

    ``label (units)`` must fit the label column (about 22 characters); ``tooltip`` (default the label) says more.
    """
    style = _style(_label(label, units))
    if tooltip:
        style["tooltip"] = tooltip
    return w.FloatSlider(min=min, max=max, step=step, value=min if value is None else value,
                         description=_label(label, units), continuous_update=continuous_update,
                         readout_format=".4g", **style)


def show_value(ctrl: w.Widget, value: Any) -> None:
    """Set a control to ``value``, widening a slider's range to include it first: ipywidgets would
    clamp it silently, so the slider would show a value that is not the one the output is drawn with (a
    value the computation refuses then shows with its error)."""
    lo, hi = getattr(ctrl, "min", None), getattr(ctrl, "max", None)
    vals = value if isinstance(value, tuple) else (value,)
    if lo is not None and hi is not None and all(
            isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in vals):
        if min(vals) < lo:
            ctrl.min = min(vals)
        if max(vals) > hi:
            ctrl.max = max(vals)
    ctrl.value = value


def _allowed(ctrl: w.Widget) -> str:
    """``": choose from [...]"`` for a control with options, the range for a slider, else ``""``."""
    labels = getattr(ctrl, "options", None)
    if labels:
        vals = [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in labels]
        return f": choose from {vals}" + (" (any of them, as a tuple)" if isinstance(ctrl, w.SelectMultiple) else "")
    if isinstance(ctrl, w.FloatRangeSlider | w.IntRangeSlider):
        return ": give (low, high) with low <= high"
    return ""


def int_slider(label: str, units: str | None, min: int, max: int, step: int = 1,
               value: int | None = None, continuous_update: bool = False) -> w.IntSlider:
    """A labelled integer slider."""
    return w.IntSlider(min=min, max=max, step=step, value=min if value is None else value,
                       description=_label(label, units), continuous_update=continuous_update,
                       **_style(_label(label, units)))


def range_slider(label: str, units: str | None, min: float, max: float, step: float,
                 value: tuple[float, float] | None = None,
                 continuous_update: bool = False) -> w.FloatRangeSlider:
    """A labelled (low, high) range slider, e.g. a colour range."""
    return w.FloatRangeSlider(min=min, max=max, step=step, value=value or (min, max),
                              description=_label(label, units), continuous_update=continuous_update,
                              readout_format=".4g", **_style(_label(label, units)))


def _buttons_fit(labels: list[str]) -> bool:
    """Whether toggle buttons as wide as the longest label fit beside the label in the control column (about
    7 px a character plus 28 px of padding a button; a fixed 80 px cut "near side" to "near si…")."""
    room = int(CONTROL_WIDTH.removesuffix("px")) - int(LABEL_WIDTH.removesuffix("px"))
    return len(labels) * (7 * max(map(len, labels)) + 28) <= room


def choice(label: str, options: Any, value: Any = None, buttons: bool = True) -> w.ValueWidget:
    """A labelled choice: toggle buttons for a few short options, a dropdown otherwise."""
    opts = list(options.items()) if isinstance(options, dict) else list(options)
    labels = [str(o[0]) if isinstance(o, tuple) else str(o) for o in opts]
    cls = w.ToggleButtons if buttons and len(opts) <= 4 and _buttons_fit(labels) else w.Dropdown
    kw = _style(label)
    if cls is w.ToggleButtons:
        kw["style"] = {"description_width": LABEL_WIDTH, "button_width": f"{7 * max(map(len, labels)) + 28}px"}
    ctrl = cls(options=opts, description=label, **kw)
    if cls is w.ToggleButtons:  # ipywidgets 8 gives its other labelled controls this row layout, not these
        ctrl.add_class("widget-inline-hbox")  # (their label sat on a line of its own above the buttons)
    if value is not None:
        ctrl.value = value
    return ctrl


def checkbox(label: str, value: bool = False) -> w.Checkbox:
    """A labelled checkbox."""
    return w.Checkbox(value=value, description=label, indent=False, layout=w.Layout(width=CONTROL_WIDTH))


class LongTask:
    """A progress bar + Stop button for long work, run in a thread with a cooperative stop flag.

    Parameters
    ----------
    label
        Text shown before the bar.
    """

    def __init__(self, label: str = "progress"):
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description=label,
                                   style={"description_width": LABEL_WIDTH},
                                   layout=w.Layout(width=CONTROL_WIDTH))
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                    layout=w.Layout(width="80px"), disabled=True)
        self.status = w.HTML(value="")
        self.stop_button.on_click(lambda _b: self.request_stop())
        self.widget = w.VBox([w.HBox([self.bar, self.stop_button]), self.status])
        self._stop = threading.Event()
        self._lock = threading.Lock()  # orders a Stop click against the worker's final status line
        self._active = False  # True from start() until the worker has written its final status
        self._future: Future | None = None
        self._thread: threading.Thread | None = None

    # -- used by the work function ------------------------------------------------------------------
    def should_stop(self) -> bool:
        """True once Stop was pressed (or :meth:`request_stop` called)."""
        return self._stop.is_set()

    def check(self) -> None:
        """Raise :class:`StopRequested` if Stop was pressed."""
        if self._stop.is_set():
            raise StopRequested("stopped by the user; the kernel and earlier results are intact")

    def update(self, fraction: float, message: str = "") -> None:
        """Set the bar to ``fraction`` (0–1) and the status line to ``message``."""
        self.bar.value = float(min(max(fraction, 0.0), 1.0))
        if message:
            self.status.value = message

    def callback(self, step: int, total: int, **metrics: float) -> bool:
        """Training-loop callback: shows ``step/total`` and metrics; returns ``False`` once stopped."""
        msg = f"{step}/{total}" + "".join(f" · {k} {v:.4g}" for k, v in metrics.items())
        self.update(step / max(total, 1), msg)
        return not self.should_stop()

    # -- used by the notebook -----------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the running work to stop at its next check.

        A request when nothing runs (e.g. a click that arrives after the work finished) changes nothing:
        the status keeps saying how the work ended.
        """
        with self._lock:
            if not self._active:
                return
            self._stop.set()
            self.status.value = "stopping…"

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> LongTask:
        """Run ``fn(*args, progress=self, **kwargs)`` in a worker thread; returns immediately."""
        if self.running:
            raise InputError("this task is still running; press Stop or wait for task.result() first")
        self._stop.clear()
        self._future = Future()
        self._active = True
        self.stop_button.disabled = False
        self.update(0.0, "running…")
        t0 = time.perf_counter()
        future = self._future

        def finish(message: str, done: bool = False) -> None:
            # under the lock: a Stop click after this point sees the task inactive and leaves the message
            with self._lock:
                if done:
                    self.update(1.0, message)
                else:
                    self.status.value = message
                self._active = False
                self.stop_button.disabled = True

        def target():
            try:
                res = fn(*args, progress=self, **kwargs)
            except StopRequested as exc:
                finish(f"stopped after {time.perf_counter() - t0:.1f} s")
                future.set_exception(exc)
            except BaseException as exc:  # noqa: BLE001 - reported through result()
                finish(f"failed: {type(exc).__name__}: {exc}")
                future.set_exception(exc)
            else:
                if self.should_stop():
                    finish(f"stopped after {time.perf_counter() - t0:.1f} s (partial result)")
                else:
                    finish(f"done in {time.perf_counter() - t0:.1f} s", done=True)
                future.set_result(res)

        self._thread = threading.Thread(target=target, name="workbench-longtask", daemon=True)
        self._thread.start()
        return self

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Start ``fn`` and wait for its result.

        The wait blocks the calling thread: in a notebook the kernel then handles no widget event, so a
        Stop click is only seen after the work ended. For a Stop button that works, call :meth:`start` in
        one cell and :meth:`result` in a later one.
        """
        return self.start(fn, *args, **kwargs).result()

    @property
    def running(self) -> bool:
        """True while the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the work and return its result (re-raises its exception, incl. StopRequested)."""
        if self._future is None:
            raise InputError("nothing was started; call task.start(fn) first")
        return self._future.result(timeout)

    def _ipython_display_(self):  # pragma: no cover - notebook display
        from IPython.display import display

        display(self.widget)


class Panel:
    """Base class for interactive panels: one state dataclass, one pure ``compute(state)``.

    Subclasses set ``State`` (a dataclass type) and ``title``, and implement :meth:`make_controls`
    (``{state_field: widget}``) and :meth:`compute` (state → HoloViews object, or ``(object,
    readout_html)``). Set ``rasterize = True`` to rasterise the live plot with datashader.

    Attributes
    ----------
    state
        The current state (``compute`` receives a copy, so it cannot change the panel).
    n_computes
        How many times ``compute`` has been called (one per change, for tests and benchmarks).
    error
        The message of the :class:`~workbench.errors.WorkbenchError` the last ``compute`` raised
        (shown in red in the readout; the previous map stays), or ``None``.
    last_update_s
        Wall time of the last ``compute`` + plot push, in seconds.
    """

    State: ClassVar[type] = None  # type: ignore[assignment]
    title: ClassVar[str] = ""
    rasterize: ClassVar[bool] = False
    #: CSS rules for this panel's controls where ipywidgets' style traits have no setting (e.g. a Select's font),
    #: scoped by a class the subclass adds to the control; sent once, in the panel's title
    css: ClassVar[str] = ""

    def __init__(self, state: Any = None, **overrides: Any):
        if self.State is None or not dataclasses.is_dataclass(self.State):
            raise InputError(
                f"{type(self).__name__}.State must be a dataclass type holding the control values")
        base = state if state is not None else self.State()
        self.state = dataclasses.replace(base, **overrides) if overrides else base
        self._initial = dataclasses.replace(self.state)
        self.n_computes = 0
        self.error: str | None = None
        self.last_update_s = float("nan")
        self._busy = False
        self.controls: dict[str, w.ValueWidget] = self.make_controls()
        fields = {f.name for f in dataclasses.fields(self.State)}
        unknown = set(self.controls) - fields
        if unknown:
            raise InputError(f"controls {sorted(unknown)} are not fields of {self.State.__name__}; "
                             f"fields are {sorted(fields)}")
        self._sync_controls()
        for name, ctrl in self.controls.items():
            ctrl.observe(self._make_handler(name), names="value")
        self.reset_button = w.Button(description="Reset", icon="undo", tooltip="restore the initial values",
                                     layout=w.Layout(width="100px"))
        self.reset_button.on_click(lambda _b: self.reset())
        self.readout = w.HTML(value="", layout=w.Layout(width=CONTROL_WIDTH, overflow="auto"))  # wide tables scroll
        # a plot wider than the room beside the controls scrolls instead of being cut off
        self.output = w.Box(layout=w.Layout(min_width="300px", max_width="100%", overflow="auto"))
        self._pipe = None
        self._live: LivePlot | None = None
        self._plot_widget = None
        self._out = None
        self.tasks: list[LongTask] = []
        style = f"<style>{self.css}{PANEL_CSS}</style>"
        header = w.HTML(f"{style}<b>{self.title}</b>" if self.title else style)
        # each control is CONTROL_WIDTH wide plus ipywidgets' 2 px margins: a column of exactly CONTROL_WIDTH cut
        # the right end of a slider's readout
        column = f"calc({CONTROL_WIDTH} + 8px)"
        self.sidebar = w.VBox([header, *self.controls.values(), self.reset_button, self.readout],
                              layout=w.Layout(width=column, min_width=column))
        # controls left, plot right; the plot moves below the controls when the notebook is too narrow for both
        self.widget = w.HBox([self.sidebar, self.output],
                             layout=w.Layout(align_items="flex-start", flex_flow="row wrap"))
        self.widget.add_class("workbench-panel")
        self.output.add_class("workbench-panel-output")
        self.readout.add_class("workbench-panel-readout")
        self.update()

    # -- subclass API -------------------------------------------------------------------------------
    def make_controls(self) -> dict[str, w.ValueWidget]:
        """Return ``{state_field: widget}``; use :func:`slider`, :func:`range_slider`, :func:`choice`."""
        raise NotImplementedError

    def compute(self, state: Any) -> Any:
        """Pure function of the state: a HoloViews object, or ``(object, readout_html)``."""
        raise NotImplementedError

    # -- machinery ----------------------------------------------------------------------------------
    def _sync_controls(self) -> None:
        self._busy = True
        try:
            for name, ctrl in self.controls.items():
                value = getattr(self.state, name)
                try:
                    show_value(ctrl, value)
                except TraitError as exc:  # ipywidgets' own validation: a value the control cannot show
                    raise InputError(f"{name}={value!r} is not a value its control can take"
                                     f"{_allowed(ctrl)}; the panel keeps its previous settings") from exc
        finally:
            self._busy = False

    def _make_handler(self, name: str) -> Callable[[dict], None]:
        def handler(change: dict) -> None:
            if self._busy:
                return
            self.set(**{name: change["new"]})

        return handler

    def set(self, **changes: Any) -> None:
        """Change state fields (and their controls) and update the output once.

        Raises
        ------
        InputError
            For a name that is not a state field, or a value its control cannot take (a choice it does not
            offer, a reversed range): the panel keeps its previous state, controls and map.
        """
        fields = [f.name for f in dataclasses.fields(self.State)]
        unknown = [k for k in changes if k not in fields]
        if unknown:
            raise InputError(f"{type(self).__name__} has no setting {unknown[0]!r}; settings are {fields}")
        old = self.state
        ranges = {k: (c.min, c.max) for k, c in self.controls.items() if hasattr(c, "min") and hasattr(c, "max")}
        self.state = dataclasses.replace(old, **changes)
        try:
            self._sync_controls()
        except InputError:
            self.state = old
            self._busy = True
            try:  # show_value may have widened a slider for the refused value: its old value, then its old range
                for k, (lo, hi) in ranges.items():
                    self.controls[k].value = getattr(old, k)
                    self.controls[k].min, self.controls[k].max = lo, hi
            finally:
                self._busy = False
            self._sync_controls()
            raise
        self.update()

    def reset(self) -> None:
        """Restore the initial state and controls, then update once."""
        self.state = dataclasses.replace(self._initial)
        self._sync_controls()
        self.update()

    def update(self) -> Any:
        """Call ``compute(state)`` once and push the result to the output; returns the result."""
        t0 = time.perf_counter()
        self.n_computes += 1
        try:
            result = self.compute(dataclasses.replace(self.state))
            readout = None
            if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
                result, readout = result
            self._show(result)
        except Exception as exc:  # noqa: BLE001 - a callback must never leave the panel silently stale
            # a bad control combination (WorkbenchError, e.g. an empty colour range) is said plainly; anything
            # else is a bug: its type is shown and its traceback goes to the log. The last map stays.
            expected = isinstance(exc, WorkbenchError)
            self.error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            if not expected:
                logging.getLogger(__name__).exception("panel update failed for state %r", self.state)
            note = "" if expected else " (an unexpected error: the map shows the previous settings)"
            self.readout.value = f"<span style='color:#b42318'>{html.escape(self.error + note)}</span>"
            self.last_update_s = time.perf_counter() - t0
            return None
        had_error, self.error = self.error is not None, None
        if readout is not None:
            self.readout.value = readout
        elif had_error:
            self.readout.value = ""
        self.last_update_s = time.perf_counter() - t0
        return result

    def _show(self, result: Any) -> None:
        import holoviews as hv

        if isinstance(result, hv.core.Dimensioned) and not isinstance(result, hv.DynamicMap):
            if self._live is None:
                self._live = LivePlot(rasterize=self.rasterize)
            if self._live.show(result):  # a new widget: the layout changed (or this is the first draw)
                self.dmap = self._live.dmap
                self._plot_widget = self._live.widget
                self.output.children = (self._plot_widget,)
                self._live.close_retired()
            self._pipe = self._live.pipe
            return
        if isinstance(result, hv.DynamicMap):
            raise InputError("compute() returned a DynamicMap; return a plain element instead "
                             "(e.g. lunar_map(..., rasterize=False)) and set rasterize = True on the Panel")
        from IPython.display import display

        if self._out is None:
            self._out = w.Output()
            self.output.children = (self._out,)
        with self._out:
            self._out.clear_output(wait=True)
            display(result)

    def progress(self, label: str = "progress") -> LongTask:
        """Add a progress bar + Stop button under the controls and return it."""
        task = LongTask(label)
        self.tasks.append(task)
        self.sidebar.children = (*self.sidebar.children, task.widget)
        return task

    def cleanup(self) -> None:
        """Stop running tasks, detach observers and close all widgets of this panel."""
        for t in self.tasks:
            t.request_stop()
        for ctrl in self.controls.values():
            ctrl.unobserve_all()
        for wid in [*self.controls.values(), self.reset_button, self.readout, self.sidebar, self.output,
                    self.widget, self._out, *(t.widget for t in self.tasks)]:
            if wid is not None:
                wid.close()
        self.output.children = ()
        if self._live is not None:
            self._live.close()  # the plot's BokehModel, closed so that it cannot be closed twice (see LivePlot)
        self._plot_widget = None
        self._pipe = None
        self._live = None

    def _ipython_display_(self):  # pragma: no cover - notebook display
        from IPython.display import display

        display(self.widget)


def _raster_extent(el) -> tuple:
    """The key-dimension extents of a map element (its axis ranges), rounded for comparison."""
    out = []
    for d in el.kdims:
        try:
            lo, hi = el.range(d)
            out.append(tuple(f"{float(v):.6g}" if isinstance(v, (int, float, np.number)) else str(v)
                             for v in (lo, hi)))
        except Exception:  # noqa: BLE001 - non-numeric or empty dimension
            out.append(None)
    return tuple(out)


def layout_signature(obj: Any, extents: bool = False) -> tuple:
    """What HoloViews fixes at a live plot's first draw and does not update through a stream.

    The nesting and types of the elements (how many plots and overlays), each element's dimensions
    (names, labels, units: the axis and colour-bar titles) and its ``clabel`` option. Two results with
    the same signature can share one live plot; otherwise the plot is drawn anew. ``extents=True`` adds
    the maps' (rasters') axis extents, which :class:`LivePlot` follows without a new plot.
    """
    import holoviews as hv
    from holoviews.core.options import Store
    from holoviews.element.raster import QuadMesh, Raster

    def one(el) -> tuple:
        dims = tuple((d.name, d.label, d.unit) for d in el.dimensions())
        try:
            clabel = Store.lookup_options("bokeh", el, "plot").kwargs.get("clabel")
        except Exception:  # noqa: BLE001 - no bokeh options registered: nothing to compare
            clabel = None
        ext = _raster_extent(el) if extents and isinstance(el, (Raster, QuadMesh)) else ()
        return type(el).__name__, el.group, el.label, dims, clabel, ext

    if isinstance(obj, hv.Element):
        return (one(obj),)
    items = []
    for key, el in obj.items() if hasattr(obj, "items") else []:
        items.append((str(key), layout_signature(el, extents)))
    return (type(obj).__name__, len(items), tuple(items))


class LivePlot:
    """One live HoloViews plot as an ipywidget, updated in place through a :class:`~holoviews.streams.Pipe`.

    HoloViews updates a streamed plot's pixels, colour range and titles, but keeps what it laid out at the
    first draw: the number of plots, colour-bar titles and, unless told ``framewise``, axis ranges.
    :meth:`show` therefore sends a result that fits the current layout (same :func:`layout_signature`)
    and draws a new widget for one that does not. Charts (curves, histograms) take their axis ranges
    from every update; maps take theirs from an update whose extent changed (e.g. a far-side centred
    map), and otherwise keep the reader's zoom.
    """

    def __init__(self, rasterize: bool = False):
        self.rasterize = rasterize
        self.pipe = None
        self.dmap = None
        self.widget: w.Widget | None = None
        self.signature: tuple | None = None
        self.extents: tuple | None = None
        self.n_builds = 0
        self._retired: list[w.Widget] = []

    def show(self, result) -> bool:
        """Show ``result``; True when a new widget was made (the caller puts it on screen)."""
        import holoviews as hv
        from holoviews.element.chart import Chart
        from holoviews.element.raster import QuadMesh, Raster

        def framewise(obj, types):
            return obj.map(lambda el: el.opts(framewise=True, clone=True), types)

        result = framewise(result, [Chart])
        sig, ext = layout_signature(result), layout_signature(result, extents=True)
        if self.pipe is not None and sig == self.signature:
            if ext != self.extents:  # the maps moved: this one update sets their axis ranges
                result = framewise(result, [Raster, QuadMesh])
            self.extents = ext
            self.pipe.send(result)
            return False
        self.pipe = hv.streams.Pipe(data=result)
        dmap = hv.DynamicMap(lambda data: data, streams=[self.pipe])
        if self.rasterize:
            from holoviews.operation.datashader import rasterize

            dmap = rasterize(dmap)
        self.dmap, self.signature, self.extents = dmap, sig, ext
        if self.widget is not None:
            self._retired.append(self.widget)
        self.widget = _to_ipywidget(dmap)
        self.n_builds += 1
        return True

    def close(self) -> None:
        """Close the current widget and any replaced ones."""
        if self.widget is not None:
            self._retired.append(self.widget)
        self.widget = self.pipe = self.dmap = None
        self.close_retired()

    def close_retired(self) -> None:
        """Close the widgets that new plots replaced (call once the new one is on screen): ipywidgets keeps
        every open widget, and with it the plot's data, for the life of the kernel."""
        while self._retired:
            old = self._retired.pop()
            try:
                layout = getattr(old, "layout", None)
                old.close()
                if layout is not None:
                    layout.close()
                doc = getattr(getattr(old, "_model", None), "document", None)
                if doc is not None:  # detach it, else jupyter_bokeh's close() runs again at garbage
                    doc.clear()      # collection and raises KeyError (printed as "Exception ignored")
            except Exception:  # noqa: BLE001 - a widget the front end already dropped
                pass


def _to_ipywidget(obj: Any) -> w.Widget:
    """Wrap a HoloViews object as an ipywidget (jupyter_bokeh BokehModel) with **inline** CSS.

    Like ``panel.ipywidget`` but renders in Panel's inline resource mode and replaces Panel's
    stylesheet links (``cdn.holoviz.org``) by inline copies, so the page makes no CDN request.
    """
    import panel as pn
    from bokeh.document import Document
    from bokeh.models import UIElement
    from jupyter_bokeh.widgets import BokehModel
    from panel.io.notebook import patch_inline_stylesheets
    from panel.io.resources import set_resource_mode

    doc = Document()
    with set_resource_mode("inline"):
        model = pn.panel(obj).get_root(doc=doc)
    for sub in model.select({"type": UIElement}):
        patch_inline_stylesheets(sub)
    return BokehModel(model, combine_events=True)
