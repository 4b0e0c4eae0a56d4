"""The residual inversion network (torch): multiband patch → six oxides and Mg#, with uncertainty.

Architecture (one forward pass computes a whole deep ensemble):

* input: log reflectance of ``n_bands`` bands, standardised with stored statistics;
* **context** (optional): the standardised bands box-averaged over ``context`` windows (e.g. 5×5 and
  11×11 pixels), stacked with the pixel's own bands. Composition varies smoothly across a terrane while
  the detector noise does not, so a wider window measures weak spectral signals (the mafic silicates'
  Mg#, read from small shifts of the 1 µm band) with less noise — a fixed multi-scale input in the spirit
  of pyramid pooling (Zhao et al. 2017), computed from running sums (a summed-area table, Crow 1984);
* **stem**: a 3×3 convolution (spatial context of one pixel each side — it averages noise and sees
  local texture), one per ensemble member, computed as a single convolution;
* **trunk**: ``depth`` residual blocks ``x + W₂·ReLU(W₁·x)`` of 1×1 convolutions (per-pixel, width
  ``width``). The members' 1×1 layers run as one batched matrix multiply (``torch.baddbmm``) so the
  network is compute-bound in large GEMMs and reaches a good fraction of the CPU's matmul peak
  (inference on CPUs goes through :class:`PackedInference`: the same function with fused oneDNN kernels);
* **head**: per output a mean and a log-variance (heteroscedastic Gaussian, Kendall & Gal 2017).

The ``members`` independently initialised members form a deep ensemble (Lakshminarayanan et al. 2017):
predictive mean = mean of member means; variance = mean of member variances + variance of member means.
Optional low-rank adapters (LoRA, Hu et al. 2022) on every trunk layer support few-sample fine-tuning.

References
----------
He, K. et al. (2016). Deep residual learning for image recognition. CVPR.
Lakshminarayanan, B., Pritzel, A., Blundell, C. (2017). Simple and scalable predictive uncertainty
estimation using deep ensembles. NeurIPS.
Kendall, A., Gal, Y. (2017). What uncertainties do we need in Bayesian deep learning? NeurIPS.
Hu, E. J. et al. (2022). LoRA: low-rank adaptation of large language models. ICLR.
Zhao, H. et al. (2017). Pyramid scene parsing network. CVPR.
Crow, F. C. (1984). Summed-area tables for texture mapping. SIGGRAPH '84, 207–212.
Knutsson, H., Westin, C.-F. (1993). Normalized and differential convolution. CVPR, 515–523.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

ARCH = "resnet-ens-v2"


class EnsembleLinear(nn.Module):
    """``members`` independent linear maps applied as one batched matmul, with optional LoRA.

    Input and output shape ``(members, N, features)``.
    """

    def __init__(self, members: int, n_in: int, n_out: int, lora_rank: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(members, 1, n_out))
        bound = 1.0 / math.sqrt(n_in)
        nn.init.uniform_(self.weight, -bound * math.sqrt(3), bound * math.sqrt(3))
        self.lora_rank = 0
        if lora_rank:
            self.add_lora(lora_rank)

    def add_lora(self, rank: int) -> None:
        """Add trainable low-rank adapters ``A·B`` (B zero-initialised, so the output is unchanged)."""
        m, n_in, n_out = self.weight.shape
        self.lora_rank = rank
        self.lora_a = nn.Parameter(torch.randn(m, n_in, rank) / math.sqrt(n_in))
        self.lora_b = nn.Parameter(torch.zeros(m, rank, n_out))

    def effective_weight(self) -> torch.Tensor:
        if self.lora_rank:
            return self.weight + self.lora_a @ self.lora_b
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.effective_weight())


class ResidualInversionNet(nn.Module):
    """Deep-ensemble residual network from ``(B, n_bands, H, W)`` reflectance to ``n_out`` Gaussians.

    ``forward`` returns ``(mean, log_var)`` each ``(members, B, n_out, H, W)`` in *standardised* target
    units; :class:`workbench.inversion.model.OxideInverter` handles scaling and units.
    """

    def __init__(self, n_bands: int, n_out: int = 7, width: int = 96, depth: int = 2, stem: int = 32,
                 members: int = 4, lora_rank: int = 0, context: tuple[int, ...] | list[int] = ()):
        super().__init__()
        context = tuple(int(k) for k in context)
        if any(k < 3 or k % 2 == 0 for k in context):
            raise ValueError(f"context windows must be odd sizes >= 3 (e.g. (5, 11)), got {context}")
        self.config = dict(arch=ARCH, n_bands=n_bands, n_out=n_out, width=width, depth=depth, stem=stem,
                           members=members, lora_rank=lora_rank)
        if context:  # only written when used: older checkpoints' configs stay as they were
            self.config["context"] = list(context)
        self.context = context
        #: pixels of input needed each side of an output pixel: the 3×3 stem's one, plus the widest window's
        self.halo = 1 + max(context, default=1) // 2
        self.members = members
        self.n_out = n_out
        self.register_buffer("in_mean", torch.zeros(n_bands))
        self.register_buffer("in_std", torch.ones(n_bands))
        self.stem = nn.Conv2d(n_bands * (1 + len(context)), members * stem, 3, padding=0)
        self.inp = EnsembleLinear(members, stem, width, lora_rank)
        self.blocks = nn.ModuleList(
            nn.ModuleList([EnsembleLinear(members, width, width, lora_rank),
                           EnsembleLinear(members, width, width, lora_rank)]) for _ in range(depth)
        )
        self.head = EnsembleLinear(members, width, 2 * n_out)
        with torch.no_grad():  # residual branches start small (stable deep residual training)
            for blk in self.blocks:
                blk[1].weight.mul_(0.1)

    def flops_per_pixel(self) -> int:
        """Multiply-adds ×2 per output pixel of one forward pass (all members; the context windows'
        running means, 4 additions per band and window, are left out)."""
        c = self.config
        m, s, w = c["members"], c["stem"], c["width"]
        n_in = c["n_bands"] * (1 + len(self.context))
        return 2 * m * (9 * n_in * s + s * w + 2 * c["depth"] * w * w + w * 2 * c["n_out"])

    def stem_input(self, x: torch.Tensor, pad: bool = True) -> torch.Tensor:
        """Standardised log reflectance (and its context-window means) for the 3×3 stem.

        ``x``: ``(B, n_bands, H, W)``. With ``pad=True`` the edges are replicate-padded by :attr:`halo`
        first; otherwise ``x`` carries that halo. Returns ``(B, n_bands·(1 + len(context)), H' + 2, W' + 2)``
        with ``H' × W'`` the output pixels: the stem's one-pixel margin is kept.

        Missing pixels (NaN, or reflectance ≤ 0) enter as the training mean (0 after standardising) and
        are left out of the context means, which average the valid pixels of each window only
        (normalised convolution, Knutsson & Westin 1993); a window with none gives 0.
        """
        z = (torch.log(x) - self.in_mean[:, None, None]) / self.in_std[:, None, None]
        valid = torch.isfinite(z)
        complete = bool(valid.all())
        if not complete:
            z = torch.where(valid, z, 0.0)
        h = self.halo
        if pad:
            z = F.pad(z, (h, h, h, h), mode="replicate")
        if not self.context:
            return z
        rows, cols = z.shape[-2] - 2 * (h - 1), z.shape[-1] - 2 * (h - 1)
        parts = [z[..., h - 1 : h - 1 + rows, h - 1 : h - 1 + cols]]

        def box_sums(t: torch.Tensor) -> list[torch.Tensor]:
            # summed-area table, separable, in float64 so that differences of large sums keep float32's
            # precision: 4 additions per value whatever the window (4x faster than avg_pool2d at 11x11)
            c_rows = F.pad(t.double().cumsum(-2), (0, 0, 1, 0))
            out = []
            for k in self.context:
                e = h - 1 - k // 2  # margin left after the window's own k // 2
                r = c_rows[..., e + k : e + k + rows, :] - c_rows[..., e : e + rows, :]
                c = F.pad(r.cumsum(-1), (1, 0))
                out.append(c[..., e + k : e + k + cols] - c[..., e : e + cols])
            return out

        sums = box_sums(z)
        if complete:
            counts = [float(k * k) for k in self.context]
        else:
            v = valid.to(z.dtype)
            counts = [n.clamp_min(1.0) for n in box_sums(F.pad(v, (h, h, h, h), mode="replicate") if pad else v)]
        parts += [(sm / n).to(z.dtype) for sm, n in zip(sums, counts, strict=True)]
        return torch.cat(parts, 1)

    def forward_flat(self, x: torch.Tensor, pad: bool = True, dtype: torch.dtype | None = None,
                     prepared: bool = False) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Raw head output ``(members, B·H·W, 2·n_out)`` (pixel-major) and ``(B, H, W)``.

        The per-pixel trunk runs on ``(members, pixels, channels)`` tensors: batched GEMMs with the bias
        add and ReLU done in place and the residual add fused into the GEMM (``baddbmm``), so little
        time goes to memory-bound element-wise passes. ``dtype`` (e.g. ``torch.bfloat16``) runs the trunk
        and head in that type (weights cast per call; GEMMs accumulate in float32 inside oneDNN/cuBLAS);
        the input normalisation and the 3×3 stem stay in float32. ``prepared=True``: ``x`` is already
        :meth:`stem_input`'s output (``pad`` is then ignored) — computed once for many row tiles.
        """
        h = torch.relu_(self.stem(x if prepared else self.stem_input(x, pad)))  # (B, M*S, H, W)
        b, _, hh, ww = h.shape
        m = self.members
        dt = dtype or h.dtype
        # one copy: to pixel-major (members, pixels, channels) and, if asked, to the trunk's dtype
        h = h.reshape(b, m, -1, hh * ww).permute(1, 0, 3, 2).to(dt, memory_format=torch.contiguous_format)
        h = h.reshape(m, b * hh * ww, -1)

        def lin(layer: EnsembleLinear, t: torch.Tensor) -> torch.Tensor:
            return torch.baddbmm(layer.bias.to(dt), t, layer.effective_weight().to(dt))

        h = lin(self.inp, h)
        inplace = not torch.is_grad_enabled()  # inference: update the residual stream in place
        for l1, l2 in self.blocks:
            a = lin(l1, h).relu_()
            if inplace:  # h += a W2 + b2 without copying h into a new output first
                h.baddbmm_(a, l2.effective_weight().to(dt)).add_(l2.bias.to(dt))
            else:
                h = torch.baddbmm(h + l2.bias.to(dt), a, l2.effective_weight().to(dt))  # h + (a W2 + b2)
        out = lin(self.head, h.relu_() if inplace else torch.relu(h))
        return out, (b, hh, ww)

    def forward(self, x: torch.Tensor, pad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: reflectance ``(B, n_bands, H, W)``, finite and > 0.

        With ``pad=True`` edges are replicate-padded so the output is ``H×W``; with ``pad=False`` the
        caller supplies a :attr:`halo`-pixel margin ``h`` and gets ``(H-2h)×(W-2h)``. Returns ``(mean, log_var)``, each
        ``(members, B, n_out, H, W)``.
        """
        out, (b, hh, ww) = self.forward_flat(x, pad)
        out = out.reshape(self.members, b, hh, ww, 2 * self.n_out).permute(0, 1, 4, 2, 3)
        mean, log_var = out[:, :, : self.n_out], out[:, :, self.n_out :]
        return mean, log_var.clamp(-12.0, 8.0)

    @torch.no_grad()
    def predict_moments(self, x: torch.Tensor, pad: bool = True, epistemic: bool = False,
                        bfloat16: bool = False, packed: PackedInference | None = None, prepared: bool = False):
        """Inference path: ensemble mean, total std (and optionally member-mean std) as ``(B, n_out, H, W)``.

        Moments are reduced over members in the pixel-major layout before one final transpose.
        ``bfloat16=True`` runs the trunk and head in bfloat16 (see :meth:`forward_flat`). ``packed`` (a
        :class:`PackedInference` of this network, in the matching type) runs the fused kernels instead;
        the moments are computed in float32. ``prepared``: see :meth:`forward_flat`.
        """
        if packed is not None:
            if (packed.dtype == torch.bfloat16) != bfloat16:
                raise ValueError("the packed plan's type does not match bfloat16=")
            out, (b, hh, ww) = packed(x, pad, prepared)
        else:
            out, (b, hh, ww) = self.forward_flat(x, pad, torch.bfloat16 if bfloat16 else None, prepared)
        out = out.float()
        k = self.n_out
        mean = out[..., :k]
        var = torch.exp(out[..., k:].clamp(-12.0, 8.0))
        mu = mean.mean(0)
        spread = (mean - mu).square_().mean(0)
        std = (var.mean(0) + spread).sqrt_()

        def grid(t):
            return t.reshape(b, hh, ww, k).permute(0, 3, 1, 2)

        if epistemic:
            return grid(mu), grid(std), grid(spread.sqrt())
        return grid(mu), grid(std)

    def add_lora(self, rank: int) -> None:
        """Add LoRA adapters of ``rank`` to the input and trunk layers."""
        for layer in [self.inp, *[lyr for blk in self.blocks for lyr in blk]]:
            layer.add_lora(rank)
        self.config["lora_rank"] = rank

    def merge_lora(self) -> None:
        """Fold the adapters into the weights (same outputs, plain architecture again)."""
        for layer in [self.inp, *[lyr for blk in self.blocks for lyr in blk]]:
            if layer.lora_rank:
                with torch.no_grad():
                    layer.weight.copy_(layer.effective_weight())
                del layer.lora_a, layer.lora_b
                layer.lora_rank = 0
        self.config["lora_rank"] = 0


def packed_supported(device: torch.device | str = "cpu", bfloat16: bool = False) -> bool:
    """Whether :class:`PackedInference` can run here: a CPU, a torch build with oneDNN's fused linear
    operators (``torch.ops.mkldnn._linear_pointwise``) and, for ``bfloat16``, native bf16 in oneDNN."""
    ops = torch.ops.mkldnn
    ok = (torch.device(device).type == "cpu" and torch.backends.mkldnn.is_available()
          and hasattr(ops, "_linear_pointwise") and hasattr(ops, "_reorder_linear_weight"))
    return ok and (not bfloat16 or bool(ops._is_mkldnn_bf16_supported()))


class PackedInference:
    """Inference-only execution of a :class:`ResidualInversionNet` on CPU with fused oneDNN kernels.

    The training path (:meth:`ResidualInversionNet.forward_flat`) runs the members as batched matmuls
    followed by separate bias, ReLU and residual passes over memory. Here every member's layers are
    oneDNN linear primitives with weights reordered once into oneDNN's blocked layout
    (``torch.ops.mkldnn._reorder_linear_weight``: the kernels PyTorch's inductor compiler uses for
    frozen CPU models), bias and ReLU fused into the matmul's epilogue. The residual update differs by
    type, each the faster one measured on an AVX512 CPU:

    * **float32**: ``h += (a·W₂ + b₂)`` as a fused linear and one add (torch's own float32 ``addmm`` is
      2–3x slower than oneDNN at these shapes); the same numbers as the training path to ~1e-6;
    * **bfloat16**: ``h += a·W₂`` in place (``addmm_``), with the branches' output biases ``b₂`` not added
      pass by pass but folded: all of them go into the input layer's bias, so the stream carries
      ``g = h + F`` with ``F`` the sum of the biases still to come, and each branch's first layer subtracts
      it from its own bias (``g·W₁ + (b₁ − F·W₁) = h·W₁ + b₁``); after the last block ``F = 0``.

    Per 8 192-pixel pass on one core (Clementine model, 4 members): float32 62 → 15 ms, bfloat16
    15 → 9 ms. The plan copies the weights: build a new one after the network changes (fine-tuning).
    """

    def __init__(self, net: ResidualInversionNet, pixels: int = 8192, dtype: torch.dtype = torch.float32):
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"PackedInference runs float32 or bfloat16, not {dtype}")
        self.fold = dtype == torch.bfloat16
        if not packed_supported(net.in_mean.device, self.fold):
            raise RuntimeError(f"oneDNN {dtype} linear kernels are not available on this device")
        ops = torch.ops.mkldnn
        self.net, self.dtype, self.members = net, dtype, []

        def pack(w: torch.Tensor) -> torch.Tensor:  # (in, out) -> oneDNN (out, in) blocked layout
            return ops._reorder_linear_weight(w.detach().t().contiguous().to(dtype), pixels)

        with torch.no_grad():
            for i in range(net.members):
                future = sum(l2.bias[i, 0] for _, l2 in net.blocks) if self.fold else 0.0
                inp = (pack(net.inp.effective_weight()[i]), (net.inp.bias[i, 0] + future).to(dtype))
                blocks = []
                for l1, l2 in net.blocks:
                    w1, w2 = l1.effective_weight()[i], l2.effective_weight()[i]
                    if self.fold:  # F before this block; w2 plain for addmm_
                        blocks.append((pack(w1), (l1.bias[i, 0] - future @ w1).to(dtype), w2.detach().to(dtype)))
                        future = future - l2.bias[i, 0]
                    else:
                        blocks.append((pack(w1), l1.bias[i, 0].detach().to(dtype), pack(w2),
                                       l2.bias[i, 0].detach().to(dtype)))
                head = (pack(net.head.effective_weight()[i]), net.head.bias[i, 0].detach().to(dtype))
                self.members.append(dict(inp=inp, blocks=blocks, head=head))

    def __call__(self, x: torch.Tensor, pad: bool = True, prepared: bool = False
                 ) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Raw head output ``(members, B·H·W, 2·n_out)`` in ``dtype``, as :meth:`~ResidualInversionNet.forward_flat`."""
        lin = torch.ops.mkldnn._linear_pointwise
        net = self.net
        z = x if prepared else net.stem_input(x, pad)
        h = torch.relu_(net.stem(z.contiguous(memory_format=torch.channels_last)))  # (B, M*S, H, W), NHWC
        b, ch, hh, ww = h.shape
        s = ch // net.members
        h = h.permute(0, 2, 3, 1).reshape(-1, ch).to(self.dtype)  # (pixels, M*S): at most one copy
        outs = []
        for i, m in enumerate(self.members):
            hi = lin(h[:, i * s : (i + 1) * s], *m["inp"], "none", [], "")
            for blk in m["blocks"]:
                a = lin(hi, blk[0], blk[1], "relu", [], "")
                if self.fold:
                    hi.addmm_(a, blk[2])
                else:
                    hi.add_(lin(a, blk[2], blk[3], "none", [], ""))
            outs.append(lin(hi.relu_(), *m["head"], "none", [], ""))
        return torch.stack(outs), (b, hh, ww)


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor,
                 mask: torch.Tensor | None = None, beta: float = 0.0,
                 target_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood over members, outputs and (masked) pixels.

    ``mean``/``log_var``: (M, B, K, H, W); ``target``: (B, K, H, W); ``mask``: (B, 1, H, W) bool.
    ``beta`` > 0 gives the β-NLL of Seitzer et al. (2022): every pixel's term is weighted by its predicted
    variance to the power β, held constant in the gradient, so that pixels the network calls noisy still
    pull on the mean (β = 1: the mean's gradient is the squared error's; β = 0: the plain NLL).
    ``target_weight`` (K,) weights each output's terms (the mean is still over all of them).

    References
    ----------
    Seitzer, M., Tavakoli, A., Antic, D. and Martius, G. (2022), On the pitfalls of heteroscedastic
    uncertainty estimation with probabilistic neural networks, ICLR 2022.
    """
    nll = 0.5 * (log_var + (target.unsqueeze(0) - mean) ** 2 * torch.exp(-log_var))
    if beta:
        nll = nll * torch.exp(beta * log_var.detach())
    if target_weight is not None:
        nll = nll * target_weight[:, None, None].to(nll.dtype)
    if mask is None:
        return nll.mean()
    w = mask.unsqueeze(0).to(nll.dtype).expand_as(nll)
    return (nll * w).sum() / w.sum().clamp_min(1.0)


def ensemble_moments(mean: torch.Tensor, log_var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive mean and standard deviation of the ensemble mixture (over dim 0)."""
    mu = mean.mean(0)
    var = torch.exp(log_var).mean(0) + mean.var(0, unbiased=False)
    return mu, var.sqrt()
