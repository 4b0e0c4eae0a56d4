"""Layer stacking for prospectivity: oxides, Mg#, elevation, slope, crater density, maturity.

Every layer is a (lat, lon) :class:`xarray.DataArray` on one global (or regional) grid. The stack is a
``(layer, lat, lon)`` float32 array; :class:`Normalisation` records the per-layer z-score statistics so
a trained model carries the exact transform it was trained with.

References
----------
Horn, B. K. P. (1981), Hill shading and the reflectance map, Proc. IEEE 69(1):14-47 (finite-difference
slope). Head, J. W. et al. (2010), Global distribution of large lunar craters, Science 329:1504.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..geo import MOON_RADIUS_KM, MOON_RADIUS_M, WARP_HINT, is_global_lon
from ..synth.render import _METRIC_UNITS

#: Units of the layers the stack knows how to take or derive.
LAYER_UNITS: dict[str, str] = {
    "TiO2": "wt%",
    "FeO": "wt%",
    "MgO": "wt%",
    "Al2O3": "wt%",
    "CaO": "wt%",
    "SiO2": "wt%",
    "mg_number": "1",
    "elevation": "m",
    "slope": "deg",
    "crater_density": "km-2",
    "roughness": "m",
    "npfe": "1",
}

#: Default layers: composition (TiO2, FeO, Mg#), topography (elevation, slope), crater density, maturity.
DEFAULT_LAYERS: tuple[str, ...] = ("TiO2", "FeO", "mg_number", "elevation", "slope", "crater_density", "npfe")


def _check_grid(da: xr.DataArray, name: str) -> None:
    if da.dims != ("lat", "lon"):
        raise InputError(
            f"{name} must have dims ('lat', 'lon'), got {da.dims}; transpose it, or {WARP_HINT}"
        )


def _check_metres(elevation: xr.DataArray) -> None:
    """Refuse heights whose ``units`` attr says they are not metres (no ``units``: metres assumed)."""
    units = elevation.attrs.get("units")
    if units is not None and str(units).strip().lower() not in _METRIC_UNITS:
        raise InputError(f"elevation units are {units!r}, not metres; convert the heights to metres first "
                         "(e.g. (elevation * 1000).assign_attrs(units='m') for km)")


def slope(elevation: xr.DataArray, radius_m: float = MOON_RADIUS_M) -> xr.DataArray:
    """Surface slope (degrees) of a (lat, lon) elevation grid on the lunar sphere.

    Central differences along latitude (metric spacing ``R dlat``) and longitude (``R cos(lat) dlon``),
    periodic in longitude for global grids, one-sided at the grid edges.

    Parameters
    ----------
    elevation
        Heights (m) above the reference sphere, dims ``(lat, lon)`` in degrees.
    radius_m
        Sphere radius (m).

    Returns
    -------
    xarray.DataArray
        Slope in degrees, same grid; NaN where the elevation or a neighbour is NaN.

    References
    ----------
    Horn (1981), Proc. IEEE 69(1):14-47.
    """
    _check_grid(elevation, "elevation")
    _check_metres(elevation)
    z = elevation.values.astype("float64")
    lat = np.deg2rad(elevation["lat"].values.astype("float64"))
    lon = np.deg2rad(elevation["lon"].values.astype("float64"))
    if lat.size < 2 or lon.size < 2:
        raise InputError("slope needs at least 2 latitudes and 2 longitudes")
    dz_dlat = np.gradient(z, lat, axis=0)
    if is_global_lon(elevation["lon"].values):
        dlon = float(np.median(np.diff(lon)))
        dz_dlon = (np.roll(z, -1, axis=1) - np.roll(z, 1, axis=1)) / (2.0 * dlon)
    else:
        dz_dlon = np.gradient(z, lon, axis=1)
    coslat = np.clip(np.cos(lat), 1e-6, None)[:, None]
    gx = dz_dlon / (radius_m * coslat)
    gy = dz_dlat / radius_m
    out = np.rad2deg(np.arctan(np.hypot(gx, gy)))
    da = xr.DataArray(out.astype("float32"), coords=elevation.coords, dims=elevation.dims, name="slope")
    da.attrs.update(elevation.attrs)
    da.attrs.update(units="deg", long_name="surface slope on the sphere")
    return da


def crater_density(
    craters: pd.DataFrame,
    template: xr.DataArray | xr.Dataset,
    radius_km: float = 150.0,
    min_diameter_km: float = 0.0,
) -> xr.DataArray:
    """Crater density (craters per km^2) within ``radius_km`` of every grid cell centre.

    Counts craters whose centres lie within a great-circle distance ``radius_km`` of each cell centre
    (haversine ball tree) and divides by the area of that spherical cap.

    Parameters
    ----------
    craters
        Table with columns ``lat``, ``lon`` (degrees, east-positive, any wrap) and ``diameter_km``.
    template
        Anything with ``lat``/``lon`` coordinates defining the output grid.
    radius_km
        Counting radius (km).
    min_diameter_km
        Only craters at least this large are counted.

    Returns
    -------
    xarray.DataArray
        (lat, lon) density in ``km-2``.
    """
    from sklearn.neighbors import BallTree

    from .craters import check_crater_table

    craters = check_crater_table(craters)  # columns, NaN, lat/lon ranges, positive diameters
    if radius_km <= 0:
        raise InputError(f"radius_km must be positive, got {radius_km}")
    sel = craters[craters["diameter_km"] >= min_diameter_km]
    lat = template["lat"].values.astype(float)
    lon = template["lon"].values.astype(float)
    cap_km2 = 2.0 * np.pi * MOON_RADIUS_KM**2 * (1.0 - np.cos(radius_km / MOON_RADIUS_KM))
    if len(sel) == 0:
        counts = np.zeros((lat.size, lon.size))
    else:
        pts = np.deg2rad(np.c_[sel["lat"].to_numpy(float), sel["lon"].to_numpy(float)])
        tree = BallTree(pts, metric="haversine")
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        q = np.deg2rad(np.c_[la.ravel(), lo.ravel()])
        counts = tree.query_radius(q, r=radius_km / MOON_RADIUS_KM, count_only=True).reshape(la.shape)
    da = xr.DataArray(
        (counts / cap_km2).astype("float32"),
        coords={"lat": template["lat"], "lon": template["lon"]},
        dims=("lat", "lon"),
        name="crater_density",
    )
    da.attrs.update(
        units="km-2",
        long_name=f"density of craters >= {min_diameter_km:g} km within {radius_km:g} km",
    )
    return da


def roughness(elevation: xr.DataArray, window_px: int = 5) -> xr.DataArray:
    """Terrain roughness (m): local standard deviation of elevation in a ``window_px`` square window.

    A terrain-only proxy for cratering when no crater table is at hand (heavily cratered ground is
    rough at the scale of its craters). Periodic in longitude for global grids.
    """
    from scipy.ndimage import uniform_filter

    _check_grid(elevation, "elevation")
    _check_metres(elevation)
    if window_px < 2:
        raise InputError(f"window_px must be >= 2, got {window_px}")
    z = elevation.values.astype("float64")
    mode = ("nearest", "wrap") if is_global_lon(elevation["lon"].values) else "nearest"
    m1 = uniform_filter(z, window_px, mode=mode)
    m2 = uniform_filter(z * z, window_px, mode=mode)
    out = np.sqrt(np.clip(m2 - m1 * m1, 0.0, None))
    da = xr.DataArray(out.astype("float32"), coords=elevation.coords, dims=elevation.dims, name="roughness")
    da.attrs.update(units="m", long_name=f"elevation std in {window_px}x{window_px} px window")
    return da


def stack_layers(
    ds: xr.Dataset,
    layers: Sequence[str] = DEFAULT_LAYERS,
    craters: pd.DataFrame | None = None,
    crater_radius_km: float = 150.0,
    max_abs_lat: float | None = None,
) -> xr.DataArray:
    """Stack named layers of ``ds`` into one ``(layer, lat, lon)`` float32 array.

    Layers present in ``ds`` are taken as they are; ``slope`` and ``roughness`` are derived from
    ``elevation``; ``crater_density`` comes from ``ds["crater_density"]`` or from the ``craters`` table.

    Parameters
    ----------
    ds
        Dataset on a (lat, lon) grid (e.g. ``workbench.synth.make_moon()`` or oxide maps merged with
        a DEM).
    layers
        Layer names (see :data:`LAYER_UNITS`).
    craters
        Crater table (``lat``, ``lon``, ``diameter_km``) for ``crater_density`` when ``ds`` lacks it.
    crater_radius_km
        Counting radius of the crater density.
    max_abs_lat
        Keep only rows with ``|lat| <= max_abs_lat`` (degrees). Near the poles a latitude-longitude grid
        is so distorted (cells shrink to slivers, slopes come from neighbours a few hundred metres
        apart) that polar caps belong in a polar projection; 70 is a common cut.

    Returns
    -------
    xarray.DataArray
        dims ``(layer, lat, lon)``, coordinate ``layer`` and ``attrs["layer_units"]`` (list of units).
    """
    if len(layers) == 0:
        raise InputError("no layers selected; pick at least one of " + ", ".join(LAYER_UNITS))
    if len(set(layers)) != len(layers):
        raise InputError(f"duplicate layer names in {list(layers)}")
    out = []
    units = []
    for name in layers:
        if name in ds.data_vars:
            da = ds[name]
        elif name == "slope" and "elevation" in ds:
            da = slope(ds["elevation"])
        elif name == "roughness" and "elevation" in ds:
            da = roughness(ds["elevation"])
        elif name == "crater_density" and craters is not None:
            da = crater_density(craters, ds, radius_km=crater_radius_km)
        else:
            hint = " (pass a crater table via craters=...)" if name == "crater_density" else ""
            raise InputError(
                f"layer {name!r} is neither a variable of the dataset nor derivable from it{hint}; "
                f"dataset variables: {sorted(ds.data_vars)}"
            )
        _check_grid(da, name)
        out.append(da.astype("float32").drop_vars([c for c in da.coords if c not in ("lat", "lon")]))
        units.append(str(da.attrs.get("units", LAYER_UNITS.get(name, "?"))))
    stack = xr.concat(out, dim=pd.Index(list(layers), name="layer"), coords="minimal", compat="override")
    stack = stack.transpose("layer", "lat", "lon")
    if max_abs_lat is not None:
        if not 0 < max_abs_lat <= 90:
            raise InputError(f"max_abs_lat must lie in (0, 90] degrees, got {max_abs_lat}")
        stack = stack.isel(lat=np.flatnonzero(np.abs(stack["lat"].values) <= max_abs_lat))
    stack.name = "layers"
    stack.attrs = {"layer_units": units, "crs": ds.attrs.get("crs", "IAU_2015:30100")}
    return stack


STACK_DIMS: tuple[str, str, str] = ("layer", "lat", "lon")


def layer_first(stack: xr.DataArray, what: str = "stack") -> xr.DataArray:
    """``stack`` transposed by name to :data:`STACK_DIMS` ``(layer, lat, lon)`` (unchanged when it already is).

    Raises
    ------
    InputError
        When its dims are not ``layer``, ``lat`` and ``lon`` (in any order).
    """
    if not isinstance(stack, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray with dims {STACK_DIMS} (from stack_layers()), "
                         f"got {type(stack).__name__}")
    if set(stack.dims) != set(STACK_DIMS) or stack.ndim != 3:
        raise InputError(f"{what} has dims {stack.dims}; expected the dims {STACK_DIMS} (any order) of a "
                         "stack_layers() stack: stack the layers with stack_layers() or rename the dims")
    return stack if stack.dims == STACK_DIMS else stack.transpose(*STACK_DIMS)


@dataclass(frozen=True)
class Normalisation:
    """Per-layer z-score normalisation ``z = (x - mean) / std``, recorded with a model.

    Attributes
    ----------
    layers
        Layer names, in stack order.
    mean, std
        Per-layer statistics (layer units).
    """

    layers: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, stacks: xr.DataArray | Sequence[xr.DataArray]) -> Normalisation:
        """Fit mean and standard deviation of each layer over one or several stacks (NaN ignored).

        Parameters
        ----------
        stacks
            One or several stacks with a ``layer`` dim (``(layer, lat, lon)`` from :func:`stack_layers`; the
            ``layer`` dim is found by name in any position), all with the same layers in the same order.

        Returns
        -------
        Normalisation

        Raises
        ------
        InputError
            A stack without a ``layer`` dim, stacks with different layers, a layer holding ±inf, or a
            layer that is constant or all-NaN (its z-score is undefined).
        """
        stacks = [stacks] if isinstance(stacks, xr.DataArray) else list(stacks)
        if not stacks:
            raise InputError("Normalisation.fit needs at least one stack")
        for s in stacks:
            if not isinstance(s, xr.DataArray) or "layer" not in s.dims:
                dims = s.dims if isinstance(s, xr.DataArray) else type(s).__name__
                raise InputError(f"Normalisation.fit needs stacks with a 'layer' dim, e.g. {STACK_DIMS} from "
                                 f"stack_layers(); got {dims}")
        stacks = [s.transpose("layer", ...) for s in stacks]  # statistics per layer, whatever the dim order
        layers = tuple(str(v) for v in stacks[0]["layer"].values)
        for s in stacks[1:]:
            if tuple(str(v) for v in s["layer"].values) != layers:
                raise InputError("all stacks must have the same layers in the same order")
        flat = np.concatenate([s.values.reshape(len(layers), -1) for s in stacks], axis=1).astype("float64")
        inf = [layer for layer, row in zip(layers, flat, strict=True) if np.isinf(row).any()]
        if inf:
            raise InputError(f"layers {inf} hold non-finite values (+inf or -inf); mark them missing with "
                             "stack.where(np.isfinite(stack)) (NaN is ignored) or fix the source layer")
        mean = np.nanmean(flat, axis=1)
        std = np.nanstd(flat, axis=1)
        bad = [layer for layer, s in zip(layers, std, strict=True) if not np.isfinite(s) or s <= 0]
        if bad:
            raise InputError(f"layers {bad} are constant or all-NaN; drop them from the stack")
        return cls(layers, tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def _vec(self, stack: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
        if "layer" not in stack.dims:
            raise InputError(f"the stack has dims {stack.dims}, no 'layer' dim; give a (layer, lat, lon) "
                             "stack from stack_layers()")
        got = tuple(str(v) for v in stack["layer"].values)
        if got != self.layers:
            raise InputError(
                f"stack layers {list(got)} differ from the model's {list(self.layers)}; stack the same "
                "layers in the same order"
            )
        # broadcast by the dim's name, so a stack in any dim order gets each layer's own statistics
        return (xr.DataArray(np.asarray(self.mean), dims="layer"), xr.DataArray(np.asarray(self.std), dims="layer"))

    def apply(self, stack: xr.DataArray) -> xr.DataArray:
        """Standardise a stack to z-scores (units ``"1"``); the layers are matched by the ``layer`` dim, and
        the result keeps the stack's dim order."""
        m, s = self._vec(stack)
        out = ((stack - m) / s).astype("float32")
        out.attrs = {**stack.attrs, "units": "1", "normalisation": "z-score"}
        return out

    def invert(self, z: xr.DataArray) -> xr.DataArray:
        """Undo :meth:`apply`."""
        m, s = self._vec(z)
        out = (z * s + m).astype("float32")
        out.attrs = {k: v for k, v in z.attrs.items() if k not in ("units", "normalisation")}
        return out

    def select(self, layers: Sequence[str]) -> Normalisation:
        """The normalisation of a subset of the layers (in the given order)."""
        bad = [k for k in layers if k not in self.layers]
        if bad or not len(layers):
            raise InputError(f"choose one or more of {list(self.layers)}; got {list(layers)}")
        idx = [self.layers.index(k) for k in layers]
        return Normalisation(tuple(layers), tuple(self.mean[i] for i in idx), tuple(self.std[i] for i in idx))

    def to_dict(self) -> dict:
        """JSON/torch-safe dictionary."""
        return {"layers": list(self.layers), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(d["layers"]), tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))
