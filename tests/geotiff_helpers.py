"""GeoTIFFs written with rasterio alone (no workbench code), as another tool would write them, for the tests of
reading them in (``workbench.rasters``)."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import Affine


def origin(west: float, north: float, dx: float, dy: float) -> Affine:
    """North-up pixels of dx by dy from (west, north): ``rasterio.transform.from_origin`` without its deprecated
    ``*``."""
    return Affine(dx, 0.0, west, 0.0, -dy, north)


def write_geotiff(path, data, crs="IAU_2015:30100", transform=None, descriptions=(), tags=(), driver="GTiff",
                  **profile):
    """Write ``data`` (band, row, col) to ``path`` with ``crs`` and ``transform`` (default 90 x 60 degree pixels from
    0 E, 90 N); ``descriptions`` name the bands, ``tags`` are per-band metadata dicts, ``driver`` is GDAL's (another
    format than GeoTIFF: ISIS3, PDS4, VICAR), ``profile`` goes to ``rasterio.open`` (e.g. ``nodata``). Returns
    ``path``."""
    data = np.asarray(data)
    with rasterio.open(path, "w", driver=driver, width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs=crs, transform=transform or origin(0, 90, 90, 60), **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
        for i, t in enumerate(tags, start=1):
            dst.update_tags(i, **t)
    return path


def write_pds3_ldem(folder, data, top_lat: float, west_lon: float, ppd: int, scale: float = 0.5,
                    offset: float = 1737400.0, attached: bool = False):
    """A LOLA-LDEM-like PDS3 product, as the PDS distributes it: int16 ``data`` (rows north to south) in simple
    cylindrical projection about central meridian 180 deg, with the LDEM's SCALING_FACTOR/OFFSET (radius in metres
    = DN x scale + offset). A detached ``LDEM.LBL`` + ``LDEM.IMG`` pair, or one ``LDEM.IMG`` with the label
    attached. Returns the path to open (the label, or the attached image)."""
    from pathlib import Path

    data = np.asarray(data, "<i2")
    lines, samples = data.shape
    km_per_px = np.pi * 1737.4 / 180.0 / ppd

    def label(pointer: str, records: int) -> str:
        return "\r\n".join([
            "PDS_VERSION_ID = PDS3", "RECORD_TYPE = FIXED_LENGTH", f"RECORD_BYTES = {2 * samples}",
            f"FILE_RECORDS = {records}", f"^IMAGE = {pointer}", "OBJECT = IMAGE", f"  LINES = {lines}",
            f"  LINE_SAMPLES = {samples}", "  SAMPLE_TYPE = LSB_INTEGER", "  SAMPLE_BITS = 16", "  UNIT = METER",
            f"  SCALING_FACTOR = {scale}", f"  OFFSET = {offset}", "END_OBJECT = IMAGE",
            "OBJECT = IMAGE_MAP_PROJECTION", '  MAP_PROJECTION_TYPE = "SIMPLE CYLINDRICAL"',
            "  A_AXIS_RADIUS = 1737.4 <KM>", "  B_AXIS_RADIUS = 1737.4 <KM>", "  C_AXIS_RADIUS = 1737.4 <KM>",
            '  POSITIVE_LONGITUDE_DIRECTION = "EAST"', "  CENTER_LATITUDE = 0.0 <DEG>",
            "  CENTER_LONGITUDE = 180.0 <DEG>", "  MAP_PROJECTION_ROTATION = 0.0",
            f"  MAP_RESOLUTION = {ppd} <PIX/DEG>",
            f"  MAP_SCALE = {km_per_px:.6f} <KM/PIXEL>",
            # GDAL (as the LDEM labels): the upper-left corner lies (offset + 0.5) pixels from the projection's
            # origin, west of the central meridian and north of the equator
            f"  LINE_PROJECTION_OFFSET = {top_lat * ppd - 0.5} <PIXEL>",
            f"  SAMPLE_PROJECTION_OFFSET = {(180.0 - west_lon) * ppd - 0.5} <PIXEL>",
            "END_OBJECT = IMAGE_MAP_PROJECTION", "END", ""])

    folder = Path(folder)
    if not attached:
        (folder / "LDEM.LBL").write_text(label('"LDEM.IMG"', lines))
        data.tofile(folder / "LDEM.IMG")
        return folder / "LDEM.LBL"
    head_records = 4  # the attached label padded to whole records
    text = label(f"{head_records + 1}", head_records + lines).encode()
    assert len(text) <= head_records * 2 * samples, "label longer than its records: use more samples"
    (folder / "LDEM.IMG").write_bytes(text.ljust(head_records * 2 * samples, b" ") + data.tobytes())
    return folder / "LDEM.IMG"


def write_pds3_cube(folder, data, centers, widths, unit: str = "NANOMETER", scale: float = 0.001,
                    ppd: int = 4, top_lat: float = 10.0, west_lon: float = -10.0, pixel_unit: str = "REFLECTANCE"):
    """A band-sequential PDS3 cube (``CUBE.LBL`` + ``CUBE.IMG``) as a multispectral mosaic is distributed: int16
    ``data`` (band, row, col) x ``scale``, simple cylindrical about 0 deg E at ``ppd``, with the band centres and
    widths in its ``IMAGE`` object (``BAND_BIN_CENTER``/``BAND_BIN_WIDTH`` in ``unit``) and ``UNIT =
    pixel_unit``. Returns the label's path."""
    from pathlib import Path

    data = np.asarray(data, "<i2")
    bands, lines, samples = data.shape
    km_per_px = np.pi * 1737.4 / 180.0 / ppd

    def listed(vals) -> str:
        return "(" + ", ".join(f"{v:g}" for v in vals) + ")"

    label = "\r\n".join([
        "PDS_VERSION_ID = PDS3", "RECORD_TYPE = FIXED_LENGTH", f"RECORD_BYTES = {2 * samples}",
        f"FILE_RECORDS = {lines * bands}", '^IMAGE = "CUBE.IMG"', "OBJECT = IMAGE", f"  LINES = {lines}",
        f"  LINE_SAMPLES = {samples}", f"  BANDS = {bands}", "  BAND_STORAGE_TYPE = BAND_SEQUENTIAL",
        "  SAMPLE_TYPE = LSB_INTEGER", "  SAMPLE_BITS = 16", f"  UNIT = {pixel_unit}", f"  SCALING_FACTOR = {scale}",
        "  OFFSET = 0.0", f"  BAND_BIN_CENTER = {listed(centers)}", f"  BAND_BIN_WIDTH = {listed(widths)}",
        f"  BAND_BIN_UNIT = {unit}", "END_OBJECT = IMAGE",
        "OBJECT = IMAGE_MAP_PROJECTION", '  MAP_PROJECTION_TYPE = "SIMPLE CYLINDRICAL"',
        "  A_AXIS_RADIUS = 1737.4 <KM>", "  B_AXIS_RADIUS = 1737.4 <KM>", "  C_AXIS_RADIUS = 1737.4 <KM>",
        '  POSITIVE_LONGITUDE_DIRECTION = "EAST"', "  CENTER_LATITUDE = 0.0 <DEG>", "  CENTER_LONGITUDE = 0.0 <DEG>",
        f"  MAP_RESOLUTION = {ppd} <PIX/DEG>", f"  MAP_SCALE = {km_per_px:.6f} <KM/PIXEL>",
        f"  LINE_PROJECTION_OFFSET = {top_lat * ppd - 0.5} <PIXEL>",
        f"  SAMPLE_PROJECTION_OFFSET = {west_lon * ppd - 0.5} <PIXEL>",
        "END_OBJECT = IMAGE_MAP_PROJECTION", "END", ""])
    folder = Path(folder)
    (folder / "CUBE.LBL").write_text(label)
    data.tofile(folder / "CUBE.IMG")
    return folder / "CUBE.LBL"


def add_isis3_bandbin(path, centers, widths, unit: str = "nm"):
    """Give an ISIS3 cube written by GDAL (label padded with NULs to its image's start) a ``BandBin`` group with
    the band centres and widths, as ISIS writes it, in place (the label keeps its length). Returns ``path``."""
    text = open(path, "rb").read()

    def listed(vals) -> str:
        return "(" + ", ".join(f"{v:g}" for v in vals) + f") <{unit}>"

    group = (f"  Group = BandBin\n    Center = {listed(centers)}\n    Width  = {listed(widths)}\n"
             "  End_Group\n\n").encode()
    at, end = text.find(b"  Group = Mapping"), text.find(b"\nEnd\n") + 5
    assert at > 0 and text[end:end + len(group)].strip(b"\x00") == b"", "no GDAL ISIS3 label padded with NULs"
    open(path, "wb").write(text[:at] + group + text[at:end] + text[end + len(group):])
    return path
