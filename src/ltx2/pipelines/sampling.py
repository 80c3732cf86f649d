"""The pieces of a sampling loop that every LTX-2 pipeline shares: noise and output formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..models.layers import randn

OUTPUT_TYPES = ("pil", "np", "pt", "latent")


@dataclass
class LTX2PipelineOutput:
    """frames: video as `output_type` asked (PIL lists, (B, F, H, W, 3) array, (B, F, 3, H, W) tensor, or
    latents); audio: the waveform (B, 2, samples) in [-1, 1], or audio latents for output_type="latent"."""

    frames: Any
    audio: torch.Tensor


Generator = torch.Generator | list[torch.Generator] | None


def renoise(latents: torch.Tensor, noise_scale: float | torch.Tensor, generator: Generator) -> torch.Tensor:
    """Move clean latents back towards noise: noise_scale * noise + (1 - noise_scale) * latents.

    Noise is drawn even for noise_scale 0, so the random stream stays aligned with the reference.
    """
    noise = randn(tuple(latents.shape), generator, latents.device, latents.dtype)
    return noise_scale * noise + (1 - noise_scale) * latents


def decode_noise(
    latents: torch.Tensor,
    decode_timestep: float | list[float],
    decode_noise_scale: float | list[float] | None,
    generator: Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For timestep-conditioned VAEs: blend fresh noise into the latents (by decode_noise_scale, which defaults
    to decode_timestep) and return them with the decode timestep per sample."""
    batch = latents.shape[0]
    noise = randn(tuple(latents.shape), generator, latents.device, latents.dtype)
    timesteps = decode_timestep if isinstance(decode_timestep, list) else [decode_timestep] * batch
    scales = timesteps if decode_noise_scale is None else decode_noise_scale
    scales = scales if isinstance(scales, list) else [scales] * batch
    scale = torch.tensor(scales, device=latents.device, dtype=latents.dtype)[:, None, None, None, None]
    temb = torch.tensor(timesteps, device=latents.device, dtype=latents.dtype)
    return (1 - scale) * latents + scale * noise, temb


def postprocess_video(video: torch.Tensor, output_type: str) -> Any:
    """Decoded (B, 3, F, H, W) in [-1, 1] -> the requested format, values in [0, 1] (uint8-ready for PIL)."""
    frames = (video / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4).float()  # (B, F, 3, H, W)
    if output_type == "pt":
        return frames
    array = frames.permute(0, 1, 3, 4, 2).cpu().numpy()  # (B, F, H, W, 3)
    if output_type == "np":
        return array
    pixels = (array * 255).round().astype(np.uint8)
    return [[PIL.Image.fromarray(frame) for frame in clip] for clip in pixels]
