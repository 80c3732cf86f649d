"""The LTX-2 text connectors: Gemma 3's stacked hidden states -> the video and audio streams' text context.

All 49 hidden states of the text encoder are normalized per layer over each prompt's valid tokens, projected
to one 3840-wide feature (text_proj_in), and then refined by two small transformers, one per stream. Padding
is replaced by learnable registers, so each connector attends over the full sequence.
"""

from __future__ import annotations

import torch
from torch import nn

from ..loading import PretrainedModel
from .layers import Attention, FeedForward, RMSNorm, Rope, rope_tables


def per_layer_masked_norm(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor, padding_side: str = "left", scale: float = 8.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Normalize each layer of each prompt by the mean and range of its valid tokens; zero the padding.

    (B, L, D, layers) hidden states, (B, L) mask -> (B, L, D * layers): scale * (x - mean) / (max - min + eps),
    the statistics taken over the valid tokens and all D features of that layer.
    """
    batch, length, width, _ = hidden_states.shape
    lengths = attention_mask.sum(dim=-1)
    positions = torch.arange(length, device=hidden_states.device)[None]
    if padding_side == "left":
        valid = positions >= length - lengths[:, None]
    elif padding_side == "right":
        valid = positions < lengths[:, None]
    else:
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    valid = valid[:, :, None, None]  # (B, L, 1, 1)
    total = hidden_states.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True)
    mean = total / ((lengths * width).view(batch, 1, 1, 1) + eps)
    low = hidden_states.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    high = hidden_states.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normalized = (hidden_states - mean) / (high - low + eps) * scale
    return normalized.masked_fill(~valid, 0.0).flatten(2).to(hidden_states.dtype)


class ConnectorBlock(nn.Module):
    """Pre-norm self-attention (with 1D RoPE) and feed-forward."""

    def __init__(self, dim: int, heads: int, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.norm1 = RMSNorm(dim, eps, elementwise_affine=False)
        self.attn1 = Attention(dim, heads, head_dim)
        self.norm2 = RMSNorm(dim, eps, elementwise_affine=False)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rope: Rope) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), mask=mask, query_rope=rope)
        return x + self.ff(self.norm2(x))


class ConnectorTransformer(nn.Module):
    """One stream's connector: registers in place of padding, a few blocks, a final RMSNorm."""

    def __init__(
        self, heads: int, head_dim: int, layers: int, registers: int | None, rope_base_seq_len: int, rope_theta: float,
        rope_double_precision: bool, rope_type: str,
    ):
        super().__init__()
        dim = heads * head_dim
        self.heads = heads
        self.rope_settings = (rope_base_seq_len, rope_theta, rope_type, rope_double_precision)
        self.learnable_registers = nn.Parameter(torch.rand(registers, dim) * 2 - 1) if registers else None
        self.transformer_blocks = nn.ModuleList(ConnectorBlock(dim, heads, head_dim) for _ in range(layers))
        self.norm_out = RMSNorm(dim, elementwise_affine=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) text and (B, 1, 1, L) additive mask -> (B, L, D) and the mask actually used."""
        batch, length, dim = x.shape
        if self.learnable_registers is not None:
            x = self.fill_registers(x, mask.reshape(batch, length) >= -9000.0)
            mask = torch.zeros_like(mask)
        base, theta, kind, double_precision = self.rope_settings
        fractions = (torch.arange(length, dtype=torch.float32, device=x.device) / base).expand(batch, length)
        rope = rope_tables(fractions[..., None], dim, self.heads, theta, kind, double_precision)
        for block in self.transformer_blocks:
            x = block(x, mask, rope)
        return self.norm_out(x), mask

    def fill_registers(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Move each row's valid tokens to the front (in order) and fill the rest with the registers, tiled
        over the sequence by absolute position."""
        batch, length, dim = x.shape
        count = self.learnable_registers.shape[0]
        if length % count:
            raise ValueError(f"text length {length} must be a multiple of the {count} learnable registers")
        order = torch.argsort((~valid).int(), dim=1, stable=True)  # valid positions first, order kept
        front = torch.gather(x, 1, order[..., None].expand(-1, -1, dim))
        filled = torch.arange(length, device=x.device)[None] < valid.sum(dim=1, keepdim=True)
        registers = self.learnable_registers.repeat(length // count, 1).to(x.dtype)
        return torch.where(filled[..., None], front, registers)


class LTX2TextConnectors(PretrainedModel):
    """Text features for both streams from Gemma 3's hidden states. Defaults are the LTX-2 19B values."""

    single_file_component = "connectors"

    neutral_config = {
        "video_gated_attn": False,
        "audio_gated_attn": False,
        "per_modality_projections": False,
        "video_hidden_dim": 4096,
        "audio_hidden_dim": 2048,
        "proj_bias": False,
        "causal_temporal_positioning": False,  # stored by the reference, used by no LTX-2 code path
    }

    def __init__(
        self,
        caption_channels: int = 3840,
        text_proj_in_factor: int = 49,
        video_connector_num_attention_heads: int = 30,
        video_connector_attention_head_dim: int = 128,
        video_connector_num_layers: int = 2,
        video_connector_num_learnable_registers: int | None = 128,
        audio_connector_num_attention_heads: int = 30,
        audio_connector_attention_head_dim: int = 128,
        audio_connector_num_layers: int = 2,
        audio_connector_num_learnable_registers: int | None = 128,
        connector_rope_base_seq_len: int = 4096,
        rope_theta: float = 10000.0,
        rope_double_precision: bool = True,
        rope_type: str = "split",
    ):
        super().__init__()
        rope = (connector_rope_base_seq_len, rope_theta, rope_double_precision, rope_type)
        self.text_proj_in = nn.Linear(caption_channels * text_proj_in_factor, caption_channels, bias=False)
        self.video_connector = ConnectorTransformer(
            video_connector_num_attention_heads, video_connector_attention_head_dim, video_connector_num_layers,
            video_connector_num_learnable_registers, *rope,
        )
        self.audio_connector = ConnectorTransformer(
            audio_connector_num_attention_heads, audio_connector_attention_head_dim, audio_connector_num_layers,
            audio_connector_num_learnable_registers, *rope,
        )

    def forward(
        self,
        text_encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        padding_side: str = "left",
        scale_factor: int = 8,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked hidden states (B, L, D, layers) or flattened (B, L, D * layers), mask (B, L) ->
        (video context (B, L, Dv), audio context (B, L, Da), the mask the transformer should use (B, L))."""
        config = self.config
        if text_encoder_hidden_states.ndim == 3:
            text_encoder_hidden_states = text_encoder_hidden_states.unflatten(2, (config.caption_channels, -1))
        expected = (config.caption_channels, config.text_proj_in_factor)
        if tuple(text_encoder_hidden_states.shape[2:]) != expected:
            raise ValueError(
                f"text_encoder_hidden_states must have {expected[0]} features x {expected[1]} layers per token, "
                f"got shape {tuple(text_encoder_hidden_states.shape)}"
            )
        features = per_layer_masked_norm(text_encoder_hidden_states, attention_mask, padding_side, scale_factor)
        projected = self.text_proj_in(features)
        # (B, L) keep-mask -> (B, 1, 1, L) additive: 0 for valid tokens, the dtype's lowest value for padding.
        additive = (attention_mask.to(torch.int64) - 1).to(projected.dtype)[:, None, None, :]
        additive = additive * torch.finfo(projected.dtype).max
        video, used_mask = self.video_connector(projected, additive)
        audio, _ = self.audio_connector(projected, additive)
        # With registers the connectors attend everywhere, so every token of their output is valid.
        keep = (used_mask < 1e-6).to(torch.int64).reshape(video.shape[0], -1)
        return video * keep[..., None], audio, keep
