"""The LTX-2.5 duration head: how long the shot a caption describes runs, from the text connectors' outputs.

Each stream (video, audio; either alone or both, of any lengths) is projected to a shared width and tagged with a
learned modality vector; a few learned queries cross-attend to all tokens, and an MLP turns the pooled queries into
log-seconds. `frames_for_duration` is the rule that turns those seconds into a frame count on the VAE's grid.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel
from ..versions import LTX_2_5
from .layers import attention


def frames_for_duration(
    seconds: float,
    frame_rate: float,
    temporal_compression_ratio: int,
    min_seconds: float = 1.0,
    max_seconds: float = 20.0,
) -> int:
    """The frame count diffusers' LTX-2.5 pipelines generate for a predicted duration of `seconds`.

    The duration is clamped to [min_seconds, max_seconds] in frames (Python's round, so halves go to even), then
    floored onto the causal grid k * temporal_compression_ratio + 1. Flooring can undershoot the minimum: then the
    next grid point up is taken, or, when it overshoots the maximum too (the bounds hold no grid point), whichever
    of the two neighbours is nearer the clamped count (the lower one on a tie), with a warning.
    """
    ratio = temporal_compression_ratio
    min_frames = max(1, round(min_seconds * frame_rate))  # at least one frame keeps the grid arithmetic positive
    max_frames = round(max_seconds * frame_rate)
    clamped = max(min_frames, min(round(seconds * frame_rate), max_frames))
    frames = (clamped - 1) // ratio * ratio + 1
    if frames < min_frames:
        above = frames + ratio
        if above > max_frames:
            if abs(above - clamped) < abs(frames - clamped):
                frames = above
            warnings.warn(
                f"duration bounds [{min_seconds:.2f}s, {max_seconds:.2f}s] at {frame_rate:.2f} fps contain no frame "
                f"count k * {ratio} + 1; using the nearest, {frames} frames ({frames / frame_rate:.2f}s)",
                stacklevel=2,
            )
        else:
            frames = above
    if not min_seconds <= seconds <= max_seconds:
        warnings.warn(
            f"predicted duration {seconds:.2f}s lies outside [{min_seconds:.2f}s, {max_seconds:.2f}s]; using "
            f"{frames} frames ({frames / frame_rate:.2f}s at {frame_rate:.2f} fps)",
            stacklevel=2,
        )
    return frames


class AttentionPooler(nn.Module):
    """`num_queries` learned queries attending, unmasked, to every token: (B, S, D) -> (B, num_queries, D).

    No mask is needed: the connectors replace padding by learned registers, so every token they emit is valid.
    """

    def __init__(self, hidden_dim: int, num_queries: int, num_heads: int):
        super().__init__()
        self.heads = num_heads
        self.query_tokens = nn.Parameter(torch.zeros(num_queries, hidden_dim))
        self.to_q = nn.Linear(hidden_dim, hidden_dim)
        self.to_k = nn.Linear(hidden_dim, hidden_dim)
        self.to_v = nn.Linear(hidden_dim, hidden_dim)
        self.to_out = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        def heads(x: torch.Tensor) -> torch.Tensor:  # (B, S, H * D) -> (B, H, S, D)
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        queries = self.to_q(self.query_tokens).expand(tokens.shape[0], -1, -1)
        pooled = attention(heads(queries), heads(self.to_k(tokens)), heads(self.to_v(tokens)))
        return self.to_out(pooled.transpose(1, 2).flatten(2))


class LTX2DurationHead(PretrainedModel):
    """Predicted seconds (B,) from the video and/or audio connector outputs. Defaults are LTX-2.5's (1.9M)."""

    single_file_component = "duration_head"
    single_file_versions = (LTX_2_5,)

    def __init__(
        self,
        video_cross_attention_dim: int = 4096,
        audio_cross_attention_dim: int = 2048,
        pooler_hidden_dim: int = 256,
        num_queries: int = 1,
        num_pooler_heads: int = 4,
        mlp_hidden_dim: int = 256,
    ):
        super().__init__()
        if pooler_hidden_dim % num_pooler_heads != 0:
            raise ValueError(
                f"pooler_hidden_dim={pooler_hidden_dim} must be a multiple of num_pooler_heads={num_pooler_heads}"
            )
        self.video_input_proj = nn.Linear(video_cross_attention_dim, pooler_hidden_dim)
        self.video_modality_emb = nn.Parameter(torch.zeros(pooler_hidden_dim))
        self.audio_input_proj = nn.Linear(audio_cross_attention_dim, pooler_hidden_dim)
        self.audio_modality_emb = nn.Parameter(torch.zeros(pooler_hidden_dim))
        self.attention_pooler = AttentionPooler(pooler_hidden_dim, num_queries, num_pooler_heads)
        self.mlp_hidden = nn.Linear(pooler_hidden_dim * num_queries, mlp_hidden_dim)
        self.mlp_out = nn.Linear(mlp_hidden_dim, 1)

    def forward(
        self, video_tokens: torch.Tensor | None = None, audio_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """video_tokens (B, Sv, video_cross_attention_dim), audio_tokens (B, Sa, audio_cross_attention_dim)."""
        streams = [
            (name, tokens, projection, tag)
            for name, tokens, projection, tag in (
                ("video_tokens", video_tokens, self.video_input_proj, self.video_modality_emb),
                ("audio_tokens", audio_tokens, self.audio_input_proj, self.audio_modality_emb),
            )
            if tokens is not None
        ]
        if not streams:
            raise ValueError("LTX2DurationHead needs video_tokens, audio_tokens or both; both are None")
        for name, tokens, projection, _ in streams:
            if not isinstance(tokens, torch.Tensor) or tokens.ndim != 3 or tokens.shape[-1] != projection.in_features:
                shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
                raise ValueError(f"{name} must be (batch, tokens, {projection.in_features}), got {shape}")
        batches = {tokens.shape[0] for _, tokens, _, _ in streams}
        if len(batches) > 1:
            raise ValueError(f"video_tokens and audio_tokens must have the same batch size, got {sorted(batches)}")
        # The connectors may run in another dtype (an fp32 text path feeding a bf16 head).
        tokens = torch.cat([projection(tokens.to(self.dtype)) + tag for _, tokens, projection, tag in streams], dim=1)
        pooled = self.attention_pooler(tokens).flatten(1)  # (B, num_queries * pooler_hidden_dim)
        # Trained in log-seconds, with the tanh GELU (exact GELU gives other numbers).
        log_seconds = self.mlp_out(F.gelu(self.mlp_hidden(pooled), approximate="tanh")).squeeze(-1)
        return log_seconds.exp()

    def predict_num_frames(
        self,
        video_tokens: torch.Tensor | None = None,
        audio_tokens: torch.Tensor | None = None,
        *,
        frame_rate: float,
        temporal_compression_ratio: int,
        min_seconds: float = 1.0,
        max_seconds: float = 20.0,
    ) -> int:
        """One prompt's frame count: its predicted seconds through `frames_for_duration`."""
        seconds = self(video_tokens, audio_tokens)
        if seconds.numel() != 1:
            raise ValueError(
                f"predict_num_frames takes the tokens of one prompt, got a batch of {seconds.numel()}: one frame "
                "count cannot serve prompts of different natural lengths"
            )
        return frames_for_duration(seconds.item(), frame_rate, temporal_compression_ratio, min_seconds, max_seconds)
