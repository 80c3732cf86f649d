"""LTX2VideoDiffusionDecodePipeline: video latents to pixels through LTX-2.5's diffusion decoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .base import Pipeline
from .latents import denormalize_video_latents, video_latent_statistics
from .sampling import OUTPUT_TYPES, Generator, postprocess_video


@dataclass
class LTX2VideoDecodeOutput:
    """frames: the decoded video as `output_type` asked (PIL lists, (B, F, H, W, 3) array, (B, F, 3, H, W) tensor)."""

    frames: Any


class LTX2VideoDiffusionDecodePipeline(Pipeline):
    """Decode video latents (B, 128, F, H, W) with the diffusion decoder: a small diffusion model that draws noise
    and denoises pixels from the latents, so decoding takes a generator. Components as diffusers 0.42.1's.

    The decoder runs its own step schedule (linspace(1, 1/n, n) over its `decoder_num_inference_steps`); the
    `scheduler` component is accepted for compatibility and not used. `vae` is optional: when given, its latent
    statistics denormalize the latents, otherwise the decoder's own (the same values in a 2.5 folder). Tiling is
    the decoder's: `pipe.diffusion_decoder.enable_tiling(...)`.
    """

    component_names = ("diffusion_decoder", "scheduler", "vae")
    offload_sequence = ("diffusion_decoder",)

    @torch.no_grad()
    def __call__(
        self,
        latents: torch.Tensor,
        generator: Generator = None,
        output_type: str = "pil",
        return_dict: bool = True,
        denormalize: bool = True,
    ) -> LTX2VideoDecodeOutput | tuple[Any]:
        """Decode `latents` (B, C, F, H, W). `denormalize=True` applies the latent statistics first: pass False for
        latents an LTX-2 pipeline returned with output_type="latent", which are already denormalized.
        output_type "latent" returns the (denormalized) latents undecoded."""
        self.check_inputs(latents, output_type)
        decoder = self._activate("diffusion_decoder")
        latents = latents.to(self.device)
        if denormalize:
            latents = denormalize_video_latents(latents, *video_latent_statistics(self.vae, self.diffusion_decoder))
        if output_type == "latent":
            frames = latents
        else:
            pixels = decoder.decode(latents.to(decoder.dtype), generator=generator, return_dict=False)[0]
            frames = postprocess_video(pixels, output_type)
        self._release()
        return LTX2VideoDecodeOutput(frames) if return_dict else (frames,)

    def check_inputs(self, latents: torch.Tensor, output_type: str) -> None:
        if self.diffusion_decoder is None:
            raise ValueError("LTX2VideoDiffusionDecodePipeline needs its diffusion_decoder component; it is None")
        channels = self.diffusion_decoder.config.latent_channels
        if not isinstance(latents, torch.Tensor) or latents.ndim != 5 or latents.shape[1] != channels:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise ValueError(f"latents must be video latents (batch, {channels}, frames, height, width), got {shape}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
