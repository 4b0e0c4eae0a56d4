"""Session 31 mutation review (c): pins what the review of area-equalised colours (``workbench.geo.area_rank``,
``lunar_map(equalise="area")`` with ``maps._area_equalised`` and ``AREA_TICKS_PCT``, and the prospectivity
widget's map) found the existing tests let through.

Each test here was written against a mutant of the code as it stood at 11c3564 that the existing suite did not
kill; it fails on that mutant and passes on the real code. The mutant it kills is named in its docstring (the
full table is in the review's log). Small hand-built grids and fixed seeds keep the file fast.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from workbench import maps
from workbench.geo import area_rank, global_grid


def _latitude_map(ppd: float = 1.0, name: str = "score") -> xr.DataArray:
    """The value is the latitude: 50 (1 + sin lat) % of the area lies south of it."""
    lat, lon = global_grid(ppd)
    return xr.DataArray(np.repeat(lat[:, None], lon.size, axis=1), dims=("lat", "lon"),
                        coords={"lat": lat, "lon": lon}, name=name, attrs={"units": "deg"})


# -- geo.area_rank -----------------------------------------------------------------------------------------------
def test_area_rank_leaves_infinite_values_out_like_nan():
    """Mutant: ``np.isfinite(v)`` -> ``~np.isnan(v)`` (an infinite score was ranked, near 100 %, and its area
    counted in everyone's share; the ranks are of the *finite* pixels, as the slider's weighted quantile)."""
    rng = np.random.default_rng(31)
    da = _latitude_map() * 0 + rng.uniform(0, 1, (180, 360))
    bad = da.copy()
    bad[3, 5], bad[100, 7] = np.inf, -np.inf
    r, rb = area_rank(da), area_rank(bad)
    assert np.isnan(rb.values[3, 5]) and np.isnan(rb.values[100, 7]) and np.isnan(rb.values).sum() == 2
    keep = np.isfinite(bad.values)
    # the two pixels left out move the others' ranks by at most their own tiny share of the area
    np.testing.assert_allclose(rb.values[keep], r.values[keep], atol=0.01)


def test_area_rank_of_a_lon_lat_array_is_the_transposed_rank():
    """Mutant: the area weights not transposed to the input's dimension order (a ``(lon, lat)`` array got the
    weights of the wrong pixels: its ranks were no longer 50 (1 + sin lat))."""
    da = _latitude_map(2.0)
    r = area_rank(da.transpose("lon", "lat"))
    assert r.dims == ("lon", "lat")
    np.testing.assert_allclose(r.transpose("lat", "lon").values, area_rank(da).values, atol=1e-9)
    want = 50.0 * (1 + np.sin(np.radians(da["lat"].values)))
    np.testing.assert_allclose(r.isel(lon=0).values, want, atol=0.05)


# -- maps._area_equalised ----------------------------------------------------------------------------------------
def test_the_colour_bar_ticks_sit_where_the_labels_are():
    """Mutant: the FixedTicker's ticks not ``AREA_TICKS_PCT`` (ticks at 0/25/50/75/100 %: the bar showed 25, 75
    and 100 as plain percentages and hid the labelled 90 and 99 %)."""
    kw = maps.lunar_map(_latitude_map(), equalise="area", rasterize=False).opts.get("plot").kwargs
    bar = kw["colorbar_opts"]
    assert list(bar["ticker"].ticks) == [0.0, 50.0, 90.0, 99.0] == list(maps.AREA_TICKS_PCT)
    assert sorted(bar["major_label_overrides"]) == list(bar["ticker"].ticks)


def test_a_rasterised_area_map_images_the_area_rank_not_the_values():
    """Mutant: the rasterised branch returns the data instead of the rank (the image showed latitudes -89.5…89.5
    against a 0…100 % colour range). Datashader averages the rank over screen pixels: 0…100 %, monotone in
    latitude."""
    img = maps.lunar_map(_latitude_map(), equalise="area", rasterize=True, width=90, height=45)[()]
    rank = img.dimension_values("area_rank", flat=False)
    assert np.nanmin(rank) >= 0.0 and np.nanmax(rank) <= 100.0
    assert np.nanmax(rank) > 95.0 and np.nanmin(rank) < 5.0
    col = rank[:, rank.shape[1] // 2]
    assert np.all(np.diff(col[np.isfinite(col)]) * np.sign(col[-1] - col[0]) > 0)


def test_the_hover_names_the_rank_as_a_share_of_the_area():
    """Mutant: the rank's hover label was the data's own label (``score [deg]``), so the hover showed two values
    under one name, the rank's percentage looking like a score."""
    m = maps.lunar_map(_latitude_map(), equalise="area", rasterize=False)
    assert [d.label for d in m.vdims] == ["score [deg]: % of area below", "score [deg]"]


def test_a_map_named_area_rank_still_colours_by_its_rank():
    """Defect at 11c3564: a DataArray named ``area_rank`` (say, a rank map) put its own values under the rank's
    name, so the image coloured latitudes -89.5…89.5 against the 0…100 % colour range; now the value is renamed
    ``value`` in the image, the rank kept."""
    m = maps.lunar_map(_latitude_map(name="area_rank"), equalise="area", rasterize=False)
    assert [d.name for d in m.vdims] == ["area_rank", "value"]
    rank = m.dimension_values("area_rank", flat=False)
    assert 0.0 < np.nanmin(rank) < 1.0 and 99.0 < np.nanmax(rank) < 100.0
    assert np.nanmin(m.dimension_values("value")) == -89.5
