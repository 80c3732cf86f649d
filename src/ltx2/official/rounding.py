"""ltx-core 1.0.0's rounding inside the transformer, the text connectors and the video VAE, as a transform on built
ltx2 networks.

ltx2's networks fuse some steps and compute others in float32 (diffusers' numbers). ltx-core computes the same
formulas in the model dtype one op at a time, and in bfloat16 each op rounds on its own:

- modulation `x * (1 + scale) + shift` and gated residuals `x + update * gate`: the product, then the sum;
- RoPE: the cos / sin tables cast to the model dtype and the rotation done in it (`x * cos`, then the fused
  multiply-add of the partner);
- q / k RMSNorm: `torch.nn.RMSNorm`, whose weight is applied inside the one rounded op;
- the VAE's PixelNorm `x / sqrt(mean(x ** 2) + eps)`: square, mean and root each rounded.

With these a bfloat16 transformer call equals ltx-core's bit for bit (every block, STG and isolated passes too), where
the fused ops leave ~5e-3 per call, which guidance and a sampling loop multiply; so do the text contexts and the video
VAE's encodings and decoded frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.layers import Arithmetic, RMSNorm, Rope


class StepwiseArithmetic(Arithmetic):
    """Each product and sum rounded to the tensors' dtype; RoPE tables in the model dtype."""

    def modulate(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return x * (1 + scale) + shift

    def gated_add(self, x: torch.Tensor, update: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return x + update * gate

    def rope(self, tables: Rope, dtype: torch.dtype) -> Rope:
        return Rope(tables.cos.to(dtype), tables.sin.to(dtype), tables.kind)

    def channel_rms_norm(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class FusedWeightRMSNorm(RMSNorm):
    """RMSNorm with the weight applied inside torch's rms_norm (one rounding), as torch.nn.RMSNorm does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), weight=self.weight, eps=self.eps)


STEPWISE = StepwiseArithmetic()


def round_as_ltx_core(network: nn.Module) -> nn.Module:
    """Make a built network (the transformer, the connectors, the video VAE) round as ltx-core 1.0.0 does, in place:
    every module with an `arithmetic` takes the stepwise one, every RMSNorm applies its weight inside rms_norm."""
    for module in network.modules():
        if isinstance(getattr(module, "arithmetic", None), Arithmetic):
            module.arithmetic = STEPWISE
        if type(module) is RMSNorm:
            module.__class__ = FusedWeightRMSNorm
    return network
