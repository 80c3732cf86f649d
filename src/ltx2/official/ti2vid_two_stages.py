"""TI2VidTwoStagesPipeline: a guided stage at half size, then x2 upsampling refined with the distilled LoRA."""

from __future__ import annotations

import sys

from collections.abc import Iterator

import torch

from .base import decoded, guided_contexts, guided_stage, no_quantization, refine_stage, start_call
from .models import OfficialModels, check_loras
from .sampling import Grid
from .types import Audio, ImageConditioningInput, LoraPathStrengthAndSDOps, MultiModalGuiderFactory, \
    MultiModalGuiderParams


class TI2VidTwoStagesPipeline:
    """ltx-pipelines' two-stage pipeline. Stage 1 runs the checkpoint with `loras`; stage 2 adds `distilled_lora`.
    An image at frame 0 replaces the first latent frame, any other is appended as a keyframe."""

    keyframes_only = False  # KeyframeInterpolationPipeline appends every image

    def __init__(self, checkpoint_path: str, distilled_lora: list[LoraPathStrengthAndSDOps],
                 spatial_upsampler_path: str, gemma_root: str, loras: list[LoraPathStrengthAndSDOps],
                 device: torch.device | None = None, quantization: None = None):
        no_quantization(quantization)
        self.distilled_lora = check_loras("distilled_lora", distilled_lora)
        self.models = OfficialModels(checkpoint_path, gemma_root, loras, spatial_upsampler_path, device=device)
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, prompt: str, negative_prompt: str, seed: int, height: int, width: int, num_frames: int,
                 frame_rate: float, num_inference_steps: int,
                 video_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory,
                 audio_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory,
                 images: list[ImageConditioningInput], tiling_config: object | None = None,
                 enhance_prompt: bool = False) -> tuple[Iterator[torch.Tensor], Audio]:
        models = self.models
        generator = start_call(models, seed, height, width, num_frames, frame_rate, images, enhance_prompt,
                               two_stage=True)
        contexts = guided_contexts(models, prompt, negative_prompt, video_guider_params, audio_guider_params)
        models.use_loras(models.loras)
        stage_1 = guided_stage(models, Grid.of(num_frames, height // 2, width // 2, frame_rate), images, generator,
                               contexts, num_inference_steps, self.keyframes_only)
        models.use_loras([*models.loras, *self.distilled_lora])
        try:
            stage_2 = refine_stage(models, Grid.of(num_frames, height, width, frame_rate), images, generator,
                                   contexts, stage_1, self.keyframes_only)
        finally:
            models.use_loras(models.loras)
        return decoded(models, stage_2)


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("ti2vid_two_stages"))


if __name__ == "__main__":
    main()
