"""TI2VidOneStagePipeline: text (and images) to video+audio at the target size in one guided stage."""

from __future__ import annotations

import sys

from collections.abc import Iterator

import torch

from .base import decoded, guided_contexts, guided_stage, no_quantization, start_call
from .models import OfficialModels
from .sampling import Grid
from .types import Audio, ImageConditioningInput, LoraPathStrengthAndSDOps, MultiModalGuiderFactory, \
    MultiModalGuiderParams


class TI2VidOneStagePipeline:
    """ltx-pipelines' one-stage pipeline: the full (non-distilled) model, CFG / STG / modality guidance."""

    def __init__(self, checkpoint_path: str, gemma_root: str, loras: list[LoraPathStrengthAndSDOps],
                 device: torch.device | None = None, quantization: None = None):
        no_quantization(quantization)
        self.models = OfficialModels(checkpoint_path, gemma_root, loras, device=device)
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, prompt: str, negative_prompt: str, seed: int, height: int, width: int, num_frames: int,
                 frame_rate: float, num_inference_steps: int,
                 video_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory,
                 audio_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory,
                 images: list[ImageConditioningInput], enhance_prompt: bool = False
                 ) -> tuple[Iterator[torch.Tensor], Audio]:
        generator = start_call(self.models, seed, height, width, num_frames, frame_rate, images, enhance_prompt,
                               two_stage=False)
        contexts = guided_contexts(self.models, prompt, negative_prompt, video_guider_params, audio_guider_params)
        grid = Grid.of(num_frames, height, width, frame_rate)
        stage = guided_stage(self.models, grid, images, generator, contexts, num_inference_steps)
        return decoded(self.models, stage)


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("ti2vid_one_stage"))


if __name__ == "__main__":
    main()
