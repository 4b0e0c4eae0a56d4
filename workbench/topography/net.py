"""A small U-Net from (image, sun geometry, upsampled coarse DEM) to relative relief.

Input channels (all built by :func:`features`):

0. image / median lit brightness (removes albedo and exposure; :func:`~workbench.topography.shadows.lit_level`);
1. shadow mask (image below 5 % of the median lit brightness; :func:`~workbench.topography.shadows.shadow_mask`);
2. rendering of the upsampled coarse DEM under the same sun, normalised the same way — the network sees
   where the image departs from what the coarse DEM predicts;
3. upsampled coarse DEM in pixel units (minus its mean, / 16);
4–6. the unit sun vector (east, north, up), constant over the tile;
7–8. shadow geometry: for a shadowed pixel, how far the sun's ray has dropped (pixel units, distance ×
   tan(elevation)) since it grazed the last lit pixel towards the sun (the caster), and how far it drops
   from there to the shadow's far end. A cast shadow bounds the terrain beneath the ray; these two numbers
   hand the network that bound, which a small convolutional receptive field cannot measure over the
   tens of pixels a 2° shadow spans (:func:`~workbench.topography.shadows.shadow_runs`). Weights trained
   with 7 inputs still load and get channels 0–6 only.

The output is relative relief in pixel units (heights / pixel size), defined up to an offset: absolute
heights and the vertical scale are recovered from the coarse DEM afterwards
(:func:`workbench.topography.model.scale_recovery`). Working in pixel units makes the network
independent of the ground sampling distance (slopes, not metres, are what shading measures).

References
----------
Ronneberger, O., Fischer, P. & Brox, T. (2015), U-Net: convolutional networks for biomedical image
segmentation, MICCAI, LNCS 9351:234–241.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .shadows import lit_level, shadow_mask, shadow_runs

N_INPUTS = 9
Z_SCALE = 16.0


def features(image: np.ndarray, z_up_px: np.ndarray, shading_up: np.ndarray,
             sun_azimuth: float, sun_elevation: float, n_inputs: int = N_INPUTS) -> np.ndarray:
    """Stack the network inputs (float32, ``(n_inputs, ny, nx)``, 7 or 9); see the module docstring."""
    img = np.asarray(image, dtype=np.float64)
    shadowed, med = shadow_mask(img)
    sh = np.asarray(shading_up, dtype=np.float64)
    med_s = lit_level(sh)
    az, el = np.deg2rad(sun_azimuth), np.deg2rad(sun_elevation)
    sun = (np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el))
    z = np.asarray(z_up_px, dtype=np.float64)
    out = np.empty((n_inputs,) + img.shape, dtype=np.float32)
    out[0] = np.clip(img / med, 0.0, 5.0)
    out[1] = shadowed
    out[2] = np.clip(sh / med_s, 0.0, 5.0)
    out[3] = (z - z.mean()) / Z_SCALE
    for k in range(3):
        out[4 + k] = sun[k]
    if n_inputs > 7:
        to_caster, to_end = shadow_runs(out[1] > 0.5, sun_azimuth)
        drop = np.tan(el)
        out[7] = np.clip(to_caster * drop, 0.0, 20.0)
        out[8] = np.clip(to_end * drop, 0.0, 20.0)
    return out


#: dihedral views of a tile for test-time averaging, as (quarter turns, east-west mirror), in order of use:
#: the 180° turn first (most different shadows for the fewest views), then the mirrors, then the quarter turns
VIEWS = ((0, False), (2, False), (0, True), (2, True), (1, False), (3, False), (1, True), (3, True))


def view_features(x: np.ndarray, turns: int, mirror: bool, channels_last: bool = False) -> np.ndarray:
    """The inputs of a mirrored (east-west) then rotated (``np.rot90``, ``turns`` times) tile.

    Every map channel is mirrored/rotated with the tile; the sun vector (channels 4–5, east and north) is
    transformed with it — mirroring flips east, a quarter turn maps (east, north) to (−north, east) —
    so the view is a tile the network could have been trained on (the training's mirror augmentation
    does the same). ``x`` is ``(channel, y, x)``, or ``(y, x, channel)`` with ``channels_last`` (the
    layout of a channels-last tensor: a view is then one copy of whole pixels, 5x faster on a 1024² tile).
    """
    c, sp = (-1, (0, 1)) if channels_last else (0, (1, 2))
    v = np.rot90(np.flip(x, sp[1]) if mirror else x, turns, axes=sp).copy()
    xc, vc = np.moveaxis(x, c, 0), np.moveaxis(v, c, 0)  # channel-first views of the same memory
    e, n = float(xc[4, 0, 0]) * (-1 if mirror else 1), float(xc[5, 0, 0])
    for _ in range(turns % 4):
        e, n = -n, e
    vc[4], vc[5] = e, n
    return v


def unview(h: np.ndarray, turns: int, mirror: bool) -> np.ndarray:
    """Undo :func:`view_features` on a 2-D output."""
    h = np.rot90(h, -turns)
    return h[:, ::-1] if mirror else h


def replicate_pad(x: torch.Tensor, p: int = 1) -> torch.Tensor:
    """Pad the last two dimensions by ``p`` pixels repeating the edge values, keeping the memory format.

    The same values as ``F.pad(x, (p, p, p, p), mode="replicate")``, written into a tensor of ``x``'s
    layout: torch's replication pad returns a contiguous (NCHW) tensor that the next channels-last
    convolution converts back, and in bfloat16 that pair of copies cost more than the convolutions
    themselves (a 1024² U-Net view: 0.30 s with it, 0.14 s with this).
    """
    if p == 0:
        return x
    n, c, h, w = x.shape
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    fmt = torch.channels_last if cl else torch.contiguous_format
    out = torch.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype, device=x.device, memory_format=fmt)
    out[:, :, p:-p, p:-p] = x
    out[:, :, :p, p:-p] = x[:, :, :1]
    out[:, :, -p:, p:-p] = x[:, :, -1:]
    out[:, :, :, :p] = out[:, :, :, p:p + 1]
    out[:, :, :, -p:] = out[:, :, :, -p - 1:-p]
    return out


class ReplicateConv2d(nn.Conv2d):
    """``nn.Conv2d(..., padding=k // 2, padding_mode="replicate")`` (same parameters and state dict) whose
    padding is done by :func:`replicate_pad`."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__(cin, cout, kernel, padding=kernel // 2, padding_mode="replicate")

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return nn.functional.conv2d(replicate_pad(x, self.padding[0]), weight, bias, self.stride, 0,
                                    self.dilation, self.groups)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(ReplicateConv2d(cin, cout), nn.GELU(), ReplicateConv2d(cout, cout), nn.GELU())


class TopoUNet(nn.Module):
    """Three-level U-Net (widths ``w, 2w, 4w, 8w``) with a residual head on the coarse-DEM channel.

    The output is ``Z_SCALE · x[3] + correction``: the network starts from the upsampled coarse relief
    and learns the high-resolution correction. Input sizes need not be multiples of 8 (padded inside).
    """

    def __init__(self, width: int = 16, in_channels: int = N_INPUTS):
        super().__init__()
        w = width
        self.config = {"width": width, "in_channels": in_channels}
        self.enc1 = _block(in_channels, w)
        self.enc2 = _block(w, 2 * w)
        self.enc3 = _block(2 * w, 4 * w)
        self.mid = _block(4 * w, 8 * w)
        self.up3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2)
        self.dec3 = _block(8 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = _block(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = _block(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ny, nx = x.shape[-2:]
        py, px = (-ny) % 8, (-nx) % 8
        if py or px:
            x = nn.functional.pad(x, (0, px, 0, py), mode="replicate")
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        m = self.mid(self.pool(e3))
        d3 = self.dec3(torch.cat([self.up3(m), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        out = Z_SCALE * x[:, 3:4] + self.head(d1)
        return out[..., :ny, :nx]
