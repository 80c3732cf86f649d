"""LTX2LatentUpsamplePipeline: 2x spatial upsampling of video latents between stage 1 and stage 2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from .base import Pipeline
from .image_to_video import load_image
from .latents import denormalize_video_latents, unpack_video_latents
from .sampling import OUTPUT_TYPES, decode_noise, postprocess_video
from ..models.upsampler import adain_filter_latent, tone_map_latents


@dataclass
class LTX2LatentUpsampleOutput:
    """frames: the upsampled video latents (output_type="latent") or the decoded frames."""

    frames: Any


class LTX2LatentUpsamplePipeline(Pipeline):
    """Upsamples raw (denormalized) video latents 2x in height and width; optionally decodes them."""

    component_names = ("vae", "latent_upsampler")
    offload_sequence = ("vae", "latent_upsampler")

    @torch.no_grad()
    def __call__(
        self,
        video: list[PIL.Image.Image] | np.ndarray | torch.Tensor | None = None,
        height: int = 512,
        width: int = 768,
        num_frames: int = 121,
        spatial_patch_size: int = 1,
        temporal_patch_size: int = 1,
        latents: torch.Tensor | None = None,
        latents_normalized: bool = False,
        decode_timestep: float | list[float] = 0.0,
        decode_noise_scale: float | list[float] | None = None,
        adain_factor: float = 0.0,
        tone_map_compression_ratio: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> LTX2LatentUpsampleOutput | tuple[Any]:
        """Upsample `latents` (B, C, F, H, W), or packed (B, S, C) with num_frames/height/width, or a `video` that
        is encoded first. Returns the upsampled raw latents for output_type="latent", else decoded frames."""
        self.check_inputs(video, height, width, latents, tone_map_compression_ratio, output_type)
        device = self.device
        if video is not None:
            latents = self.encode_video(video, height, width, generator, device)
        elif latents.ndim == 3:
            spatial = self.vae.spatial_compression_ratio
            frames = (num_frames - 1) // self.vae.temporal_compression_ratio + 1
            latents = unpack_video_latents(latents, frames, height // spatial, width // spatial,
                                           spatial_patch_size, temporal_patch_size)
        mean, std, scaling = self.vae.latents_mean, self.vae.latents_std, self.vae.config.scaling_factor
        if video is None and latents_normalized:
            latents = denormalize_video_latents(latents, mean, std, scaling)
        upsampler = self._activate("latent_upsampler")
        source = latents.to(device, upsampler.dtype)
        upsampled = upsampler(source)
        if adain_factor > 0:
            upsampled = adain_filter_latent(upsampled, source, adain_factor)
        if tone_map_compression_ratio > 0:
            upsampled = tone_map_latents(upsampled, tone_map_compression_ratio)
        frames = upsampled if output_type == "latent" else self.decode(upsampled, decode_timestep, decode_noise_scale,
                                                                       generator, output_type)
        self._release()
        return LTX2LatentUpsampleOutput(frames) if return_dict else (frames,)

    def check_inputs(
        self, video: Any, height: int, width: int, latents: torch.Tensor | None, tone_map_compression_ratio: float,
        output_type: str,
    ) -> None:
        spatial = self.vae.spatial_compression_ratio
        for name, value in (("height", height), ("width", width)):
            if value <= 0 or value % spatial:
                raise ValueError(f"{name} must be a positive multiple of {spatial}, got {value}")
        if (video is None) == (latents is None):
            raise ValueError("pass exactly one of video and latents")
        if latents is not None and latents.ndim not in (3, 5):
            raise ValueError(f"latents must be (B, C, F, H, W) or packed (B, S, C), got {tuple(latents.shape)}")
        if not 0 <= tone_map_compression_ratio <= 1:
            raise ValueError(f"tone_map_compression_ratio must be in [0, 1], got {tone_map_compression_ratio}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")

    def encode_video(
        self, video: Any, height: int, width: int, generator: torch.Generator | list[torch.Generator] | None,
        device: torch.device,
    ) -> torch.Tensor:
        """One video (frames as PIL images, (F, H, W, 3) array or (F, 3, H, W) tensor) -> sampled raw latents.

        Frame counts that are not 8k+1 are cut down to the nearest one below, as the reference does.
        """
        temporal = self.vae.temporal_compression_ratio
        frames = load_image(list(video) if isinstance(video, (list, np.ndarray)) else video, height, width)
        frames = frames[: (frames.shape[0] - 1) // temporal * temporal + 1]
        vae = self._activate("vae")
        pixels = frames.permute(1, 0, 2, 3)[None].to(device, vae.dtype)  # (F, 3, H, W) -> (1, 3, F, H, W)
        return vae.encode(pixels).latent_dist.sample(generator)

    def decode(
        self, latents: torch.Tensor, decode_timestep: float | list[float], decode_noise_scale: float | list[float] | None,
        generator: torch.Generator | list[torch.Generator] | None, output_type: str,
    ) -> Any:
        vae = self._activate("vae")
        temb = None
        if vae.config.timestep_conditioning:
            latents, temb = decode_noise(latents, decode_timestep, decode_noise_scale, generator)
        return postprocess_video(vae.decode(latents.to(vae.dtype), temb, return_dict=False)[0], output_type)
