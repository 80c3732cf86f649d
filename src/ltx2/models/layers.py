"""Blocks shared by the LTX-2 networks: attention, RMSNorm, RoPE, feed-forward, timestep embeddings, AdaLN."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..transforms.attention import attend


def attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Scaled dot-product attention over (B, H, S, D) tensors; `mask` is additive, broadcast to (B, H, Sq, Sk).

    Every attention of every ltx2 network goes through here: the calling model's attention settings pick the
    kernel (see ltx2.transforms.attention and `set_attention_backend`).
    """
    return attend(query, key, value, mask)


class RMSNorm(nn.Module):
    """RMS normalization over the last axis, computed in float32; optional learned per-channel weight."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if elementwise_affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)
        return normed if self.weight is None else normed * self.weight


class Rope(NamedTuple):
    """Rotary tables for (B, H, S, D) queries or keys, and how pairs are formed ("split" or "interleaved")."""

    cos: torch.Tensor
    sin: torch.Tensor
    kind: str


def rope_tables(
    fractions: torch.Tensor,
    dim: int,
    num_heads: int,
    theta: float = 10000.0,
    kind: str = "split",
    double_precision: bool = True,
) -> Rope:
    """Rotary tables for positions given as fractions of their axis' extent.

    fractions: (B, N, P), one value per token and position axis, nominally in [0, 1]. Each axis gets
    dim // (2P) frequencies theta^(k/(n-1)) * pi/2 applied to the position mapped onto [-1, 1];
    angles are ordered frequency-major, axis-minor, and leading unrotated slots pad up to dim / 2.
    """
    batch, tokens, axes = fractions.shape
    count = dim // (2 * axes)
    grid_dtype = torch.float64 if double_precision else torch.float32
    exponents = torch.linspace(0.0, 1.0, count, dtype=grid_dtype, device=fractions.device)
    frequencies = (theta**exponents * (math.pi / 2)).float()
    angles = (fractions.unsqueeze(-1) * 2 - 1) * frequencies  # (B, N, P, count)
    angles = angles.transpose(-1, -2).flatten(2)  # (B, N, count * P)
    cos, sin = angles.cos(), angles.sin()
    if kind == "split":
        padding = dim // 2 - angles.shape[-1]
    elif kind == "interleaved":
        padding = dim % (2 * axes)
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    else:
        raise ValueError(f"rope_type must be 'split' or 'interleaved', got {kind!r}")
    cos = F.pad(cos, (padding, 0), value=1.0)
    sin = F.pad(sin, (padding, 0), value=0.0)

    def per_head(table: torch.Tensor) -> torch.Tensor:
        # (B, N, H * per_head) -> (B, H, N, per_head)
        return table.view(batch, tokens, num_heads, -1).transpose(1, 2)

    return Rope(per_head(cos), per_head(sin), kind)


def apply_rope(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """Rotate (B, H, S, D) `x` by `rope`, in the tables' dtype (float32 as rope_tables makes them)."""
    values = x.to(rope.cos.dtype)
    if rope.kind == "split":
        # Pairs are (x[i], x[i + D/2]).
        first, second = values.chunk(2, dim=-1)
        rotated_first = torch.addcmul(first * rope.cos, second, rope.sin, value=-1)
        rotated_second = torch.addcmul(second * rope.cos, first, rope.sin)
        return torch.cat([rotated_first, rotated_second], dim=-1).to(x.dtype)
    # Pairs are (x[2i], x[2i + 1]).
    even, odd = values.unflatten(-1, (-1, 2)).unbind(-1)
    partner = torch.stack([-odd, even], dim=-1).flatten(-2)
    return torch.addcmul(values * rope.cos, partner, rope.sin).to(x.dtype)


def per_channel_rms_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / sqrt(mean over channels of x^2 + eps), with no weights."""
    if x.device.type == "cpu" and x[:, 0].numel() >= 4096:
        # Summing channel slabs one by one reads memory in order; a reduction over dim 1 is ~10x slower on CPU.
        square_sum = x[:, 0].float().square()
        for channel in x.unbind(1)[1:]:
            square_sum.addcmul_(channel, channel)
        mean_square = square_sum.unsqueeze(1).div_(x.shape[1])
    else:
        mean_square = x.square().mean(dim=1, keepdim=True, dtype=torch.float32)
    return x / mean_square.add_(eps).sqrt_().to(x.dtype)


class Arithmetic:
    """How a network computes the steps that ltx-core computes one op at a time: modulation x * (1 + scale) + shift,
    gated residuals x + update * gate, its RoPE tables and the VAE's per-channel RMS norm. These defaults fuse the
    first two into one op (rounded once in a reduced dtype), keep the tables in float32 and take the norm's mean in
    float32; a transform may give a built network another Arithmetic (ltx2.official rounds as ltx-core does)."""

    def modulate(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(shift, x, 1 + scale)

    def gated_add(self, x: torch.Tensor, update: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(x, update, gate)

    def rope(self, tables: Rope, dtype: torch.dtype) -> Rope:
        """The tables a network computing in `dtype` rotates with."""
        return tables

    def channel_rms_norm(self, x: torch.Tensor) -> torch.Tensor:
        return per_channel_rms_norm(x)


DEFAULT_ARITHMETIC = Arithmetic()


class Perturbation(NamedTuple):
    """Spatio-temporal guidance (STG) on a self-attention: per sample, weight 1 keeps the attention's output,
    0 replaces it by the values (each token sees only itself), and weights between blend the two."""

    weight: torch.Tensor  # (B, 1, 1)
    values_only: bool  # every weight is 0, so the attention itself is not computed


class Attention(nn.Module):
    """Multi-head attention with q/k RMSNorm across all heads and optional separate query/key RoPE.

    `gated` adds per-head output gates 2 * sigmoid(Linear(x)) (LTX-2.3): 1 for zero logits, so a zero-initialised
    gate starts as plain attention.
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        kv_dim: int | None = None,
        bias: bool = True,
        out_bias: bool = True,
        eps: float = 1e-6,
        gated: bool = False,
    ):
        super().__init__()
        inner_dim = heads * dim_head
        kv_dim = kv_dim or query_dim
        self.heads = heads
        # Set by a parallelism transform (ltx2.transforms.context_parallel) to attend across ranks; None attends here.
        self.parallel: Callable[..., torch.Tensor] | None = None
        self.to_q = nn.Linear(query_dim, inner_dim, bias=bias)
        self.to_k = nn.Linear(kv_dim, inner_dim, bias=bias)
        self.to_v = nn.Linear(kv_dim, inner_dim, bias=bias)
        self.norm_q = RMSNorm(inner_dim, eps=eps)
        self.norm_k = RMSNorm(inner_dim, eps=eps)
        # A list so that the checkpoint key reads `to_out.0.weight`, as in the diffusers layout.
        self.to_out = nn.ModuleList([nn.Linear(inner_dim, query_dim, bias=out_bias)])
        self.to_gate_logits = nn.Linear(query_dim, heads) if gated else None

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        query_rope: Rope | None = None,
        key_rope: Rope | None = None,
        perturbation: Perturbation | None = None,
    ) -> torch.Tensor:
        context = x if context is None else context
        value = self.to_v(context)  # (B, Sk, H * D)
        if perturbation is not None and perturbation.values_only:
            out = value
        else:
            out = self._attend(x, context, value, mask, query_rope, key_rope)
            if perturbation is not None:
                out = torch.lerp(value, out, perturbation.weight.to(out.dtype))
        if self.to_gate_logits is not None:
            gates = 2 * torch.sigmoid(self.to_gate_logits(x))  # (B, S, H)
            out = (out.unflatten(-1, (self.heads, -1)) * gates.unsqueeze(-1)).flatten(2)
        return self.to_out[0](out)

    def _attend(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        query_rope: Rope | None,
        key_rope: Rope | None,
    ) -> torch.Tensor:
        # (B, S, H * D) -> (B, H, S, D)
        query = self.norm_q(self.to_q(x)).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        key = self.norm_k(self.to_k(context)).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        value = value.unflatten(-1, (self.heads, -1)).transpose(1, 2)
        if query_rope is not None:
            query = apply_rope(query, query_rope)
            key = apply_rope(key, key_rope if key_rope is not None else query_rope)
        # (B, H, S, D) -> (B, S, H * D)
        out = (attention if self.parallel is None else self.parallel)(query, key, value, mask)
        return out.transpose(1, 2).flatten(2)


class GELUProjection(nn.Module):
    """Linear followed by tanh-approximated GELU."""

    def __init__(self, dim_in: int, dim_out: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """Transformer MLP: dim -> mult * dim (GELU, tanh) -> dim."""

    def __init__(self, dim: int, mult: int = 4, bias: bool = True):
        super().__init__()
        # Index 1 held dropout in the reference; an identity keeps the checkpoint keys net.0.* and net.2.*.
        self.net = nn.ModuleList(
            [GELUProjection(dim, dim * mult, bias), nn.Identity(), nn.Linear(dim * mult, dim, bias=bias)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TextProjection(nn.Module):
    """Projects text-encoder features to a stream's width: Linear -> GELU (tanh) -> Linear."""

    def __init__(self, in_features: int, hidden_size: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden_size)
        self.linear_2 = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """(N,) timesteps -> (N, dim) float32 features [cos(t f_i), sin(t f_i)], f_i = max_period^(-i / (dim/2))."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=timesteps.device)
    frequencies = torch.exp(-math.log(max_period) * steps / half)
    angles = timesteps.float()[:, None] * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class TimestepMLP(nn.Module):
    """Linear -> SiLU -> Linear on the sinusoidal features."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TimestepEmbedding(nn.Module):
    """Timesteps -> 256 sinusoidal features -> MLP to `dim`."""

    def __init__(self, dim: int, frequency_dim: int = 256):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.timestep_embedder = TimestepMLP(frequency_dim, dim)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.timestep_embedder(sinusoidal_embedding(timesteps, self.frequency_dim).to(dtype))


class AdaLNSingle(nn.Module):
    """AdaLN-single: one timestep embedding `e` for the whole network, and `count` modulation vectors from it."""

    def __init__(self, dim: int, count: int):
        super().__init__()
        self.emb = TimestepEmbedding(dim)
        self.linear = nn.Linear(dim, count * dim)

    def forward(self, timesteps: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(N,) timesteps -> modulation (N, count * dim) and the embedding e (N, dim)."""
        embedded = self.emb(timesteps, dtype)
        return self.linear(F.silu(embedded)), embedded


def modulation(table: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Add a learned (n, D) table to a (B, T, n * D) embedding and split it into n tensors of (B, T, D)."""
    values = table + embedding.unflatten(-1, (table.shape[0], -1))
    return values.unbind(dim=2)


class DiagonalGaussianDistribution:
    """A VAE posterior: independent normals with these means and log-variances (clamped to [-30, 20])."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        return self.mean + self.std * randn(tuple(self.mean.shape), generator, self.mean.device, self.mean.dtype)


def randn(
    shape: tuple[int, ...],
    generator: torch.Generator | list[torch.Generator] | None,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Gaussian noise drawn exactly as diffusers draws it, so a seed gives the same noise in both.

    A CPU generator draws on the CPU whatever the target device; a list draws one sample per generator.
    """
    if isinstance(generator, list) and len(generator) == 1:
        generator = generator[0]
    draw_device = device
    if generator is not None:
        generator_device = (generator[0] if isinstance(generator, list) else generator).device
        if generator_device.type == "cpu" and device.type != "cpu":
            draw_device = torch.device("cpu")
    if isinstance(generator, list):
        if len(generator) != shape[0]:
            raise ValueError(f"generator is a list of {len(generator)} generators for a batch of {shape[0]}")
        samples = [torch.randn((1, *shape[1:]), generator=g, device=draw_device, dtype=dtype) for g in generator]
        return torch.cat(samples).to(device)
    return torch.randn(shape, generator=generator, device=draw_device, dtype=dtype).to(device)


@dataclass
class AutoencoderKLOutput:
    latent_dist: DiagonalGaussianDistribution


@dataclass
class DecoderOutput:
    sample: torch.Tensor


def additive_self_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, S, S) multiplicative mask in [0, 1] -> (B, 1, S, S) additive bias (1 - mask) * -10000, for every head."""
    if mask is None:
        return None
    return ((1 - mask.to(dtype)) * -10000.0).unsqueeze(1)
