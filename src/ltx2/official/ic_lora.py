"""ICLoraPipeline: the distilled two-stage flow with IC-LoRAs in stage 1, conditioned on reference (control) videos
whose tokens are appended to the sequence (kept clean by their strength); stage 2 runs without the LoRAs."""

from __future__ import annotations

import sys

from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open

from ..models.transformer import video_positions
from .base import DTYPE, decoded, no_quantization, refine_stage, start_call
from .conditioning import append_tokens, encode_pixels, image_conditionings, load_video
from .models import OfficialModels, check_loras
from .sampling import Contexts, Grid, denoise_stage, euler_loop, simple_denoiser
from .types import DISTILLED_SIGMA_VALUES, Audio, ImageConditioningInput, LoraPathStrengthAndSDOps


def reference_downscale_factor(loras: list[LoraPathStrengthAndSDOps]) -> int:
    """The LoRAs' `reference_downscale_factor` metadata (1 when absent); differing factors are an error."""
    factor = 1
    for lora in loras:
        with safe_open(lora.path, framework="pt") as handle:
            value = int((handle.metadata() or {}).get("reference_downscale_factor", 1))
        if value != 1 and factor not in (1, value):
            raise ValueError(f"loras: {lora.path} has reference_downscale_factor {value}, another LoRA {factor}; "
                             "LoRAs with different reference scales cannot be combined")
        factor = value if value != 1 else factor
    return factor


def reference_coords(latent: torch.Tensor, downscale: int, fps: float) -> torch.Tensor:
    """VideoConditionByReferenceLatent's positions: the reference's own grid (causal time shift), its spatial axes
    scaled by the downscale factor into the target's pixel space; float32."""
    frames, height, width = latent.shape[2:]
    coords = video_positions(1, frames, height, width, (8, 32, 32), 1, fps, latent.device).clone().float()
    coords[:, 1:] *= downscale
    return coords


class ICLoraPipeline:
    """ltx-pipelines' IC-LoRA pipeline on a distilled checkpoint; `loras` are the IC-LoRAs (stage 1 only)."""

    def __init__(self, distilled_checkpoint_path: str, spatial_upsampler_path: str, gemma_root: str,
                 loras: list[LoraPathStrengthAndSDOps], device: torch.device | None = None,
                 quantization: None = None):
        no_quantization(quantization)
        loras = check_loras("loras", loras)
        self.reference_downscale_factor = reference_downscale_factor(loras)
        self.models = OfficialModels(distilled_checkpoint_path, gemma_root, loras, spatial_upsampler_path,
                                     device=device)
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, prompt: str, seed: int, height: int, width: int, num_frames: int, frame_rate: float,
                 images: list[ImageConditioningInput], video_conditioning: list[tuple[str, float]],
                 enhance_prompt: bool = False, tiling_config: object | None = None,
                 conditioning_attention_strength: float = 1.0, skip_stage_2: bool = False,
                 conditioning_attention_mask: torch.Tensor | None = None) -> tuple[Iterator[torch.Tensor], Audio]:
        models = self.models
        generator = start_call(models, seed, height, width, num_frames, frame_rate, images, enhance_prompt,
                               two_stage=True)
        if conditioning_attention_strength != 1.0 or conditioning_attention_mask is not None:
            raise ValueError("conditioning_attention_strength / conditioning_attention_mask: ltx2.official supports "
                             "full-strength reference attention only (1.0, no mask)")
        scale = self.reference_downscale_factor
        if (height // 2) % scale or (width // 2) % scale:
            raise ValueError(f"height={height}, width={width}: half of each must be divisible by the LoRAs' "
                             f"reference_downscale_factor {scale}")
        for entry in video_conditioning:
            if not isinstance(entry, tuple) or len(entry) != 2 or not Path(entry[0]).is_file():
                raise ValueError(f"video_conditioning: each entry must be (path of a video, strength), got {entry!r}")
        (positive,) = models.encode_prompts([prompt])
        grid = Grid.of(num_frames, height // 2, width // 2, frame_rate)
        conditionings = image_conditionings(models, images, grid, DTYPE)
        for path, strength in video_conditioning:
            pixels = load_video(path, height // 2 // scale, width // 2 // scale, num_frames, models.device, DTYPE)
            latent = encode_pixels(models, pixels)
            conditionings.append(append_tokens(latent, reference_coords(latent, scale, frame_rate), strength))
        sigmas = torch.tensor(DISTILLED_SIGMA_VALUES, dtype=torch.float32, device=models.device)
        models.use_loras(models.loras)
        stage_1 = denoise_stage(models, grid, conditionings, generator, sigmas,
                                lambda s, v, a: euler_loop(s, v, a, simple_denoiser(models, positive)), DTYPE)
        if skip_stage_2:
            return decoded(models, stage_1)
        models.use_loras([])
        try:
            stage_2 = refine_stage(models, Grid.of(num_frames, height, width, frame_rate), images, generator,
                                   Contexts(positive), stage_1)
        finally:
            models.use_loras(models.loras)
        return decoded(models, stage_2)


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("ic_lora"))


if __name__ == "__main__":
    main()
