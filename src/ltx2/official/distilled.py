"""DistilledPipeline: a distilled checkpoint, 8 fixed sigmas at half size, then x2 upsampling and 3 more."""

from __future__ import annotations

import sys

from collections.abc import Iterator

import torch

from .base import DTYPE, decoded, no_quantization, refine_stage, start_call
from .conditioning import image_conditionings
from .models import OfficialModels
from .sampling import Contexts, Grid, denoise_stage, euler_loop, simple_denoiser
from .types import DISTILLED_SIGMA_VALUES, Audio, ImageConditioningInput, LoraPathStrengthAndSDOps


class DistilledPipeline:
    """ltx-pipelines' distilled pipeline: one positive pass per step, no negative prompt."""

    def __init__(self, distilled_checkpoint_path: str, gemma_root: str, spatial_upsampler_path: str,
                 loras: list[LoraPathStrengthAndSDOps], device: torch.device | None = None,
                 quantization: None = None):
        no_quantization(quantization)
        self.models = OfficialModels(distilled_checkpoint_path, gemma_root, loras, spatial_upsampler_path,
                                     device=device)
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, prompt: str, seed: int, height: int, width: int, num_frames: int, frame_rate: float,
                 images: list[ImageConditioningInput], tiling_config: object | None = None,
                 enhance_prompt: bool = False) -> tuple[Iterator[torch.Tensor], Audio]:
        models = self.models
        generator = start_call(models, seed, height, width, num_frames, frame_rate, images, enhance_prompt,
                               two_stage=True)
        (positive,) = models.encode_prompts([prompt])
        contexts = Contexts(positive)
        grid = Grid.of(num_frames, height // 2, width // 2, frame_rate)
        sigmas = torch.tensor(DISTILLED_SIGMA_VALUES, dtype=torch.float32, device=models.device)
        stage_1 = denoise_stage(models, grid, image_conditionings(models, images, grid, DTYPE), generator, sigmas,
                                lambda s, v, a: euler_loop(s, v, a, simple_denoiser(models, positive)), DTYPE)
        stage_2 = refine_stage(models, Grid.of(num_frames, height, width, frame_rate), images, generator, contexts,
                               stage_1)
        return decoded(models, stage_2)


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("distilled"))


if __name__ == "__main__":
    main()
