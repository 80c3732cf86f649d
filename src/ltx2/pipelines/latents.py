"""Latent tensor helpers shared by the pipelines.

The transformer sees tokens; the VAEs see grids. Video latents (B, C, F, H, W) become tokens (B, F*H*W, C)
in (f, h, w) order (larger patches fold their offsets into the features); audio latents (B, C, T, M) become
one token per latent frame, (B, T, C*M) with feature index c*M + m. The pipelines denoise normalised
latents: per video channel, or per packed audio feature, (z - mean) * scaling_factor / std.

Also the two optional post-processing steps of the latent-upsample pipeline: AdaIN against the
pre-upsampling latents and sigmoid tone mapping.
"""

from __future__ import annotations

import torch


def _describe(value: object) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _require_ndim(name: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor {layout}, got {_describe(tensor)}")


def _require_divisible(name: str, size: int, patch_name: str, patch: int) -> None:
    if patch < 1 or size % patch != 0:
        raise ValueError(f"{name}={size} must be a multiple of {patch_name}={patch} (and {patch_name} >= 1)")


def pack_video_latents(latents: torch.Tensor, patch_size: int = 1, patch_size_t: int = 1) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F/pt * H/p * W/p, C*pt*p*p); tokens in (f, h, w) order, features (c, t, y, x)."""
    _require_ndim("latents", latents, 5, "(B, C, F, H, W)")
    batch_size, channels, frames, height, width = latents.shape
    _require_divisible("num_frames (latents dim 2)", frames, "patch_size_t", patch_size_t)
    _require_divisible("height (latents dim 3)", height, "patch_size", patch_size)
    _require_divisible("width (latents dim 4)", width, "patch_size", patch_size)
    grid = (frames // patch_size_t, height // patch_size, width // patch_size)
    latents = latents.reshape(
        batch_size, channels, grid[0], patch_size_t, grid[1], patch_size, grid[2], patch_size
    )
    latents = latents.permute(0, 2, 4, 6, 1, 3, 5, 7)  # (B, F', H', W', C, pt, p, p)
    return latents.reshape(batch_size, grid[0] * grid[1] * grid[2], -1)


def unpack_video_latents(
    latents: torch.Tensor, num_frames: int, height: int, width: int, patch_size: int = 1, patch_size_t: int = 1
) -> torch.Tensor:
    """(B, F*H*W, C*pt*p*p) -> (B, C, F*pt, H*p, W*p); `num_frames`, `height`, `width` count tokens, as in
    diffusers (they are the latent sizes when the patch sizes are 1)."""
    _require_ndim("latents", latents, 3, "(B, tokens, features)")
    batch_size, tokens, features = latents.shape
    if tokens != num_frames * height * width:
        raise ValueError(
            f"latents has {tokens} tokens (dim 1) but num_frames*height*width = "
            f"{num_frames}*{height}*{width} = {num_frames * height * width}"
        )
    _require_divisible("latents features (dim 2)", features, "patch_size_t*patch_size**2",
                       patch_size_t * patch_size**2)
    latents = latents.reshape(batch_size, num_frames, height, width, -1, patch_size_t, patch_size, patch_size)
    latents = latents.permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, C, F, pt, H, p, W, p)
    return latents.reshape(batch_size, -1, num_frames * patch_size_t, height * patch_size, width * patch_size)


def _broadcast_stats(
    latents: torch.Tensor, latents_mean: torch.Tensor, latents_std: torch.Tensor, dim: int, entry: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mean and std per entry of `latents` dim `dim`, shaped to broadcast, on the latents' device and dtype."""
    size = latents.shape[dim]
    shape = [1] * latents.ndim
    shape[dim] = size
    for name, stat in (("latents_mean", latents_mean), ("latents_std", latents_std)):
        if stat.numel() != size:
            raise ValueError(f"{name} must hold one value per {entry} ({size}), got {stat.numel()}")
    return (latents_mean.reshape(shape).to(latents.device, latents.dtype),
            latents_std.reshape(shape).to(latents.device, latents.dtype))


def normalize_video_latents(
    latents: torch.Tensor, latents_mean: torch.Tensor, latents_std: torch.Tensor, scaling_factor: float = 1.0
) -> torch.Tensor:
    """Raw VAE latents (B, C, F, H, W) -> the transformer's space: (z - mean) * scaling_factor / std."""
    _require_ndim("latents", latents, 5, "(B, C, F, H, W)")
    mean, std = _broadcast_stats(latents, latents_mean, latents_std, 1, "latent channel")
    return (latents - mean) * scaling_factor / std


def denormalize_video_latents(
    latents: torch.Tensor, latents_mean: torch.Tensor, latents_std: torch.Tensor, scaling_factor: float = 1.0
) -> torch.Tensor:
    """The inverse of `normalize_video_latents`: z * std / scaling_factor + mean."""
    _require_ndim("latents", latents, 5, "(B, C, F, H, W)")
    mean, std = _broadcast_stats(latents, latents_mean, latents_std, 1, "latent channel")
    return latents * std / scaling_factor + mean


def pack_audio_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, T, M) -> (B, T, C*M): one token per latent frame, feature index c*M + m."""
    _require_ndim("latents", latents, 4, "(B, C, T, M)")
    return latents.transpose(1, 2).flatten(2, 3)


def unpack_audio_latents(latents: torch.Tensor, latent_length: int, num_mel_bins: int) -> torch.Tensor:
    """(B, T, C*M) -> (B, C, T, M), the inverse of `pack_audio_latents`."""
    _require_ndim("latents", latents, 3, "(B, T, C*M)")
    if latents.shape[1] != latent_length:
        raise ValueError(f"latents has {latents.shape[1]} tokens (dim 1) but latent_length={latent_length}")
    _require_divisible("latents features (dim 2)", latents.shape[2], "num_mel_bins", num_mel_bins)
    return latents.unflatten(2, (-1, num_mel_bins)).transpose(1, 2)


def normalize_audio_latents(
    latents: torch.Tensor, latents_mean: torch.Tensor, latents_std: torch.Tensor
) -> torch.Tensor:
    """Packed audio tokens (B, T, C*M) -> the transformer's space: (z - mean) / std per feature."""
    _require_ndim("latents", latents, 3, "(B, T, C*M) (packed audio)")
    mean, std = _broadcast_stats(latents, latents_mean, latents_std, 2, "packed audio feature")
    return (latents - mean) / std


def denormalize_audio_latents(
    latents: torch.Tensor, latents_mean: torch.Tensor, latents_std: torch.Tensor
) -> torch.Tensor:
    """The inverse of `normalize_audio_latents`: z * std + mean."""
    _require_ndim("latents", latents, 3, "(B, T, C*M) (packed audio)")
    mean, std = _broadcast_stats(latents, latents_mean, latents_std, 2, "packed audio feature")
    return latents * std + mean


def adain_filter_latent(latents: torch.Tensor, reference_latents: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Match each (sample, channel) of `latents` to the mean and unbiased std of `reference_latents` over all
    remaining dims, then blend: factor 0 keeps `latents`, 1 gives the matched result."""
    if not isinstance(latents, torch.Tensor) or latents.ndim < 3:
        raise ValueError(f"latents must be a tensor (B, C, ...) with at least 3 dims, got {_describe(latents)}")
    if not isinstance(reference_latents, torch.Tensor) or reference_latents.shape[:2] != latents.shape[:2]:
        raise ValueError(
            f"reference_latents must share batch and channels (dims 0-1) with latents {tuple(latents.shape)}, "
            f"got {_describe(reference_latents)}"
        )
    reference_std, reference_mean = torch.std_mean(
        reference_latents, dim=tuple(range(2, reference_latents.ndim)), keepdim=True
    )
    std, mean = torch.std_mean(latents, dim=tuple(range(2, latents.ndim)), keepdim=True)
    matched = ((latents - mean) / std * reference_std + reference_mean).to(latents.dtype)
    return torch.lerp(latents, matched, factor)


def tone_map_latents(latents: torch.Tensor, compression: float) -> torch.Tensor:
    """Soft-compress large latent values: x * (1 - 0.8 s sigmoid(4 s (|x| - 1))) with s = 0.75 * compression.

    compression 0 is the identity; at 1 values far above 1 in magnitude shrink towards 0.4 x.
    """
    if not 0.0 <= compression <= 1.0:
        raise ValueError(f"compression must be in [0, 1], got {compression}")
    strength = 0.75 * compression
    scales = 1.0 - 0.8 * strength * torch.sigmoid(4.0 * strength * (latents.abs() - 1.0))
    return latents * scales
