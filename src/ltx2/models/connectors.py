"""The LTX-2 text connectors: Gemma 3's stacked hidden states -> the video and audio streams' text context.

All 49 hidden states of the text encoder are normalized and projected, then refined by two small
transformers, one per stream. Padding is replaced by learnable registers, so each connector attends over
the full sequence.

LTX-2.0 normalizes each layer over each prompt's valid tokens and projects once to 3840 features
(text_proj_in) shared by both streams. LTX-2.3 (`per_modality_projections`) RMS-normalizes each token's
layers, projects separately to each stream's width (video_text_proj_in, audio_text_proj_in: the caption
projection that LTX-2.0 keeps in the transformer), and gates its attention heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..loading import PretrainedModel
from ..loading.config import require_neutral
from .layers import DEFAULT_ARITHMETIC, Arithmetic, Attention, FeedForward, RMSNorm, Rope, rope_tables


def per_layer_masked_norm(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor, padding_side: str = "left", scale: float = 8.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Normalize each layer of each prompt by the mean and range of its valid tokens; zero the padding.

    The valid tokens are the last (padding_side "left") or first ("right") mask.sum() of each row.
    (B, L, D, layers) hidden states, (B, L) mask -> (B, L, D * layers): scale * (x - mean) / (max - min + eps),
    the statistics taken over the valid tokens and all D features of that layer.
    """
    batch, length, width, _ = hidden_states.shape
    lengths = attention_mask.sum(dim=-1)
    positions = torch.arange(length, device=hidden_states.device)[None]
    if padding_side == "left":
        valid = positions >= length - lengths[:, None]
    else:
        valid = positions < lengths[:, None]
    valid = valid[:, :, None, None]  # (B, L, 1, 1)
    total = hidden_states.masked_fill(~valid, 0.0).sum(dim=(1, 2), keepdim=True)
    mean = total / ((lengths * width).view(batch, 1, 1, 1) + eps)
    low = hidden_states.masked_fill(~valid, float("inf")).amin(dim=(1, 2), keepdim=True)
    high = hidden_states.masked_fill(~valid, float("-inf")).amax(dim=(1, 2), keepdim=True)
    normalized = (hidden_states - mean) / (high - low + eps) * scale
    return normalized.masked_fill(~valid, 0.0).flatten(2).to(hidden_states.dtype)


def per_token_rms_norm(
    hidden_states: torch.Tensor, attention_mask: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """RMS-normalize each token of each layer over its D features; zero the padding.

    (B, L, D, layers) hidden states, (B, L) mask -> (B, L, D * layers), in the input dtype.
    """
    normalized = hidden_states * torch.rsqrt(hidden_states.square().mean(dim=2, keepdim=True) + eps)
    return normalized.flatten(2).masked_fill(~attention_mask.bool()[..., None], 0.0)


class ConnectorBlock(nn.Module):
    """Pre-norm self-attention (with 1D RoPE) and feed-forward."""

    def __init__(self, dim: int, heads: int, head_dim: int, gated: bool, eps: float = 1e-6):
        super().__init__()
        self.norm1 = RMSNorm(dim, eps, elementwise_affine=False)
        self.attn1 = Attention(dim, heads, head_dim, gated=gated)
        self.norm2 = RMSNorm(dim, eps, elementwise_affine=False)
        self.ff = FeedForward(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rope: Rope) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), mask=mask, query_rope=rope)
        return x + self.ff(self.norm2(x))


class ConnectorTransformer(nn.Module):
    """One stream's connector: registers in place of padding, a few blocks, a final RMSNorm."""

    arithmetic: Arithmetic = DEFAULT_ARITHMETIC  # a transform may set another (see layers.Arithmetic)

    def __init__(
        self, heads: int, head_dim: int, layers: int, registers: int | None, rope_base_seq_len: int, rope_theta: float,
        rope_double_precision: bool, rope_type: str, gated: bool,
    ):
        super().__init__()
        dim = heads * head_dim
        self.heads = heads
        self.rope_settings = (rope_base_seq_len, rope_theta, rope_type, rope_double_precision)
        self.learnable_registers = nn.Parameter(torch.rand(registers, dim) * 2 - 1) if registers else None
        self.transformer_blocks = nn.ModuleList(ConnectorBlock(dim, heads, head_dim, gated) for _ in range(layers))
        self.norm_out = RMSNorm(dim, elementwise_affine=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) text and (B, 1, 1, L) additive mask -> (B, L, D) and the mask actually used."""
        batch, length, dim = x.shape
        if self.learnable_registers is not None:
            x = self.fill_registers(x, mask.reshape(batch, length) >= -9000.0)
            mask = torch.zeros_like(mask)
        base, theta, kind, double_precision = self.rope_settings
        fractions = (torch.arange(length, dtype=torch.float32, device=x.device) / base).expand(batch, length)
        tables = rope_tables(fractions[..., None], dim, self.heads, theta, kind, double_precision)
        rope = self.arithmetic.rope(tables, x.dtype)
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
    """Text features for both streams from Gemma 3's hidden states. Defaults are the LTX-2 19B values;
    `ltx2.configs.LTX_2_3_CONNECTORS` holds LTX-2.3's."""

    single_file_component = "connectors"

    def __init__(
        self,
        caption_channels: int = 3840,
        text_proj_in_factor: int = 49,
        video_connector_num_attention_heads: int = 30,
        video_connector_attention_head_dim: int = 128,
        video_connector_num_layers: int = 2,
        video_connector_num_learnable_registers: int | None = 128,
        video_gated_attn: bool = False,
        audio_connector_num_attention_heads: int = 30,
        audio_connector_attention_head_dim: int = 128,
        audio_connector_num_layers: int = 2,
        audio_connector_num_learnable_registers: int | None = 128,
        audio_gated_attn: bool = False,
        connector_rope_base_seq_len: int = 4096,
        rope_theta: float = 10000.0,
        rope_double_precision: bool = True,
        causal_temporal_positioning: bool = False,
        rope_type: str = "split",
        per_modality_projections: bool = False,
        video_hidden_dim: int = 4096,
        audio_hidden_dim: int = 2048,
        proj_bias: bool = False,
    ):
        super().__init__()
        # Stored by the reference's configs, read by no LTX-2 code path.
        require_neutral(type(self).__name__, causal_temporal_positioning=(causal_temporal_positioning, False))
        video_width = video_connector_num_attention_heads * video_connector_attention_head_dim
        audio_width = audio_connector_num_attention_heads * audio_connector_attention_head_dim
        features = caption_channels * text_proj_in_factor
        if per_modality_projections:
            _check_width("video_hidden_dim", video_hidden_dim, "video", video_width)
            _check_width("audio_hidden_dim", audio_hidden_dim, "audio", audio_width)
            self.video_text_proj_in = nn.Linear(features, video_hidden_dim, bias=proj_bias)
            self.audio_text_proj_in = nn.Linear(features, audio_hidden_dim, bias=proj_bias)
        else:
            _check_width("caption_channels", caption_channels, "video", video_width)
            _check_width("caption_channels", caption_channels, "audio", audio_width)
            self.text_proj_in = nn.Linear(features, caption_channels, bias=proj_bias)
        rope = (connector_rope_base_seq_len, rope_theta, rope_double_precision, rope_type)
        self.video_connector = ConnectorTransformer(
            video_connector_num_attention_heads, video_connector_attention_head_dim, video_connector_num_layers,
            video_connector_num_learnable_registers, *rope, video_gated_attn,
        )
        self.audio_connector = ConnectorTransformer(
            audio_connector_num_attention_heads, audio_connector_attention_head_dim, audio_connector_num_layers,
            audio_connector_num_learnable_registers, *rope, audio_gated_attn,
        )

    def forward(
        self,
        text_encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        padding_side: str = "left",
        scale_factor: int = 8,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stacked hidden states (B, L, D, layers) or flattened (B, L, D * layers), mask (B, L) ->
        (video context (B, L, Dv), audio context (B, L, Da), the mask the transformer should use (B, L)).

        `padding_side` and `scale_factor` serve LTX-2.0's normalization; LTX-2.3's reads the mask alone.
        """
        config = self.config
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if text_encoder_hidden_states.ndim == 3:
            text_encoder_hidden_states = text_encoder_hidden_states.unflatten(2, (config.caption_channels, -1))
        expected = (config.caption_channels, config.text_proj_in_factor)
        if tuple(text_encoder_hidden_states.shape[2:]) != expected:
            raise ValueError(
                f"text_encoder_hidden_states must have {expected[0]} features x {expected[1]} layers per token, "
                f"got shape {tuple(text_encoder_hidden_states.shape)}"
            )
        if config.per_modality_projections:
            features = per_token_rms_norm(text_encoder_hidden_states, attention_mask)
            # Each stream's projection sees the features scaled by sqrt(its width / caption_channels).
            video_text = self.video_text_proj_in(features * math.sqrt(config.video_hidden_dim / expected[0]))
            audio_text = self.audio_text_proj_in(features * math.sqrt(config.audio_hidden_dim / expected[0]))
        else:
            features = per_layer_masked_norm(text_encoder_hidden_states, attention_mask, padding_side, scale_factor)
            video_text = audio_text = self.text_proj_in(features)
        # (B, L) keep-mask -> (B, 1, 1, L) additive: 0 for valid tokens, the dtype's lowest value for padding.
        additive = (attention_mask.to(torch.int64) - 1).to(video_text.dtype)[:, None, None, :]
        additive = additive * torch.finfo(video_text.dtype).max
        video, used_mask = self.video_connector(video_text, additive)
        audio, _ = self.audio_connector(audio_text, additive)
        # With registers the connectors attend everywhere, so every token of their output is valid.
        keep = (used_mask < 1e-6).to(torch.int64).reshape(video.shape[0], -1)
        return video * keep[..., None], audio, keep


def _check_width(key: str, value: int, stream: str, width: int) -> None:
    if value != width:
        raise ValueError(
            f"{key}={value} must equal the {stream} connector's width (attention heads x head dim = {width})"
        )
