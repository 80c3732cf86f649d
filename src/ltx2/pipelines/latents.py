"""Latent layouts shared by the pipelines: the VAEs' tensors <-> the transformer's token sequences.

Video latents (B, C, F, H, W) become tokens in (frame, height, width) raster order, one token per
(patch_t, patch, patch) block with features (C, patch_t, patch, patch). Audio latents (B, C, T, M) become
one token per latent frame with features (C, M). Normalization uses the VAEs' per-channel statistics:
video per channel of the 5D tensor, audio per feature of the packed tokens.
"""

from __future__ import annotations

import torch


def _describe(value: object) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _require_ndim(name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor {layout}, got {_describe(tensor)}")


def _require_multiple(name: str, size: int, of_name: str, of: int) -> None:
    if of < 1 or size % of != 0:
        raise ValueError(f"{name}={size} must be a multiple of {of_name}={of} (and {of_name} >= 1)")


def pack_video_latents(latents: torch.Tensor, patch_size: int = 1, patch_size_t: int = 1) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F/pt * H/p * W/p, C * pt * p * p)."""
    _require_ndim("latents", latents, 5, "(B, C, F, H, W)")
    batch, channels, frames, height, width = latents.shape
    _require_multiple("frames (latents dim 2)", frames, "patch_size_t", patch_size_t)
    _require_multiple("height (latents dim 3)", height, "patch_size", patch_size)
    _require_multiple("width (latents dim 4)", width, "patch_size", patch_size)
    blocks = latents.reshape(
        batch,
        channels,
        frames // patch_size_t,
        patch_size_t,
        height // patch_size,
        patch_size,
        width // patch_size,
        patch_size,
    )
    # (B, C, F', pt, H', p, W', p) -> (B, F', H', W', C, pt, p, p)
    return blocks.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(batch, -1, channels * patch_size_t * patch_size**2)


def unpack_video_latents(
    tokens: torch.Tensor, frames: int, height: int, width: int, patch_size: int = 1, patch_size_t: int = 1
) -> torch.Tensor:
    """(B, S, C * pt * p * p) with S = frames * height * width (in patches) -> (B, C, F, H, W)."""
    _require_ndim("tokens", tokens, 3, "(B, S, features)")
    batch, count, features = tokens.shape
    if count != frames * height * width:
        raise ValueError(
            f"tokens has {count} tokens (dim 1) but frames * height * width = {frames} * {height} * {width} = "
            f"{frames * height * width}"
        )
    _require_multiple("tokens features (dim 2)", features, "patch_size_t * patch_size**2", patch_size_t * patch_size**2)
    blocks = tokens.reshape(batch, frames, height, width, -1, patch_size_t, patch_size, patch_size)
    # (B, F', H', W', C, pt, p, p) -> (B, C, F', pt, H', p, W', p)
    blocks = blocks.permute(0, 4, 1, 5, 2, 6, 3, 7)
    return blocks.reshape(batch, -1, frames * patch_size_t, height * patch_size, width * patch_size)


def pack_audio_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, T, M) -> (B, T, C * M)."""
    _require_ndim("latents", latents, 4, "(B, C, T, M)")
    return latents.transpose(1, 2).flatten(2)


def unpack_audio_latents(tokens: torch.Tensor, mel_bins: int) -> torch.Tensor:
    """(B, T, C * M) -> (B, C, T, M)."""
    _require_ndim("tokens", tokens, 3, "(B, T, C * M)")
    _require_multiple("tokens features (dim 2)", tokens.shape[2], "mel_bins", mel_bins)
    return tokens.unflatten(2, (-1, mel_bins)).transpose(1, 2)


def _stats(
    latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, dim: int, entry: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mean and std per entry of `latents` dim `dim`, shaped to broadcast, on the latents' device and dtype."""
    size = latents.shape[dim]
    shape = [1] * latents.ndim
    shape[dim] = size
    for name, stat in (("mean", mean), ("std", std)):
        if not isinstance(stat, torch.Tensor) or stat.numel() != size:
            raise ValueError(f"{name} must hold one value per {entry} ({size}), got {_describe(stat)}")
    return mean.reshape(shape).to(latents.device, latents.dtype), std.reshape(shape).to(latents.device, latents.dtype)


def _video_stats(latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _require_ndim("latents", latents, 5, "(B, C, F, H, W)")
    return _stats(latents, mean, std, 1, "latent channel")


def _audio_stats(tokens: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _require_ndim("tokens", tokens, 3, "(B, T, C * M) (packed audio)")
    return _stats(tokens, mean, std, 2, "packed audio feature")


def normalize_video_latents(
    latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, scaling_factor: float = 1.0
) -> torch.Tensor:
    """Raw VAE latents (B, C, F, H, W) -> the transformer's space: (z - mean) * scaling / std per channel."""
    channel_mean, channel_std = _video_stats(latents, mean, std)
    return (latents - channel_mean) * scaling_factor / channel_std


def denormalize_video_latents(
    latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, scaling_factor: float = 1.0
) -> torch.Tensor:
    """The inverse of normalize_video_latents."""
    channel_mean, channel_std = _video_stats(latents, mean, std)
    return latents * channel_std / scaling_factor + channel_mean


def normalize_audio_latents(tokens: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Packed audio tokens (B, T, C * M) -> normalized per feature."""
    feature_mean, feature_std = _audio_stats(tokens, mean, std)
    return (tokens - feature_mean) / feature_std


def denormalize_audio_latents(tokens: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """The inverse of normalize_audio_latents."""
    feature_mean, feature_std = _audio_stats(tokens, mean, std)
    return tokens * feature_std + feature_mean


def video_latent_statistics(*sources: torch.nn.Module | None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(latents_mean, latents_std, scaling_factor) of the first of `sources` (a video VAE, then LTX-2.5's diffusion
    decoder, which carries the same statistics) that is not None."""
    source = next(source for source in sources if source is not None)
    return source.latents_mean, source.latents_std, source.config.scaling_factor
