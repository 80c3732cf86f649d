"""Latent layouts shared by the pipelines: the VAEs' tensors <-> the transformer's token sequences.

Video latents (B, C, F, H, W) become tokens in (frame, height, width) raster order, one token per
(patch_t, patch, patch) block with features (C, patch_t, patch, patch). Audio latents (B, C, T, M) become
one token per latent frame with features (C, M). Normalization uses the VAEs' per-channel statistics:
video per channel of the 5D tensor, audio per feature of the packed tokens.
"""

from __future__ import annotations

import torch


def pack_video_latents(latents: torch.Tensor, patch_size: int = 1, patch_size_t: int = 1) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F/pt * H/p * W/p, C * pt * p * p)."""
    batch, channels, frames, height, width = latents.shape
    blocks = latents.reshape(
        batch, channels, frames // patch_size_t, patch_size_t, height // patch_size, patch_size,
        width // patch_size, patch_size,
    )
    # (B, C, F', pt, H', p, W', p) -> (B, F', H', W', C, pt, p, p)
    return blocks.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(batch, -1, channels * patch_size_t * patch_size**2)


def unpack_video_latents(
    tokens: torch.Tensor, frames: int, height: int, width: int, patch_size: int = 1, patch_size_t: int = 1
) -> torch.Tensor:
    """(B, S, C * pt * p * p) with S = frames * height * width (in patches) -> (B, C, F, H, W)."""
    batch = tokens.shape[0]
    blocks = tokens.reshape(batch, frames, height, width, -1, patch_size_t, patch_size, patch_size)
    # (B, F', H', W', C, pt, p, p) -> (B, C, F', pt, H', p, W', p)
    blocks = blocks.permute(0, 4, 1, 5, 2, 6, 3, 7)
    return blocks.reshape(batch, -1, frames * patch_size_t, height * patch_size, width * patch_size)


def pack_audio_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, T, M) -> (B, T, C * M)."""
    return latents.transpose(1, 2).flatten(2)


def unpack_audio_latents(tokens: torch.Tensor, mel_bins: int) -> torch.Tensor:
    """(B, T, C * M) -> (B, C, T, M)."""
    return tokens.unflatten(2, (-1, mel_bins)).transpose(1, 2)


def _channel_stats(stats: torch.Tensor, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return stats.view(shape).to(like.device, like.dtype)


def normalize_video_latents(
    latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, scaling_factor: float = 1.0
) -> torch.Tensor:
    """Raw VAE latents (B, C, F, H, W) -> the transformer's space: (z - mean) * scaling / std per channel."""
    shape = (1, -1, 1, 1, 1)
    return (latents - _channel_stats(mean, latents, shape)) * scaling_factor / _channel_stats(std, latents, shape)


def denormalize_video_latents(
    latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, scaling_factor: float = 1.0
) -> torch.Tensor:
    """The inverse of normalize_video_latents."""
    shape = (1, -1, 1, 1, 1)
    return latents * _channel_stats(std, latents, shape) / scaling_factor + _channel_stats(mean, latents, shape)


def normalize_audio_latents(tokens: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Packed audio tokens (B, T, C * M) -> normalized per feature."""
    return (tokens - _channel_stats(mean, tokens, (-1,))) / _channel_stats(std, tokens, (-1,))


def denormalize_audio_latents(tokens: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The inverse of normalize_audio_latents."""
    return tokens * _channel_stats(std, tokens, (-1,)) + _channel_stats(mean, tokens, (-1,))
