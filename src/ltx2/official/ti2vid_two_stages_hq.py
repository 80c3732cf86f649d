"""TI2VidTwoStagesHQPipeline: the two-stage flow on the res_2s sampler, the distilled LoRA at one strength in stage 1
and another in stage 2, and a stage-1 schedule shifted for the stage-1 latent's token count."""

from __future__ import annotations

import sys

from collections.abc import Iterator

import torch

from .base import DTYPE, decoded, guided_contexts, no_quantization, start_call
from .conditioning import image_conditionings
from .models import OfficialModels, check_loras
from .res2s import res2s_loop
from .sampling import Grid, denoise_stage, guided_denoiser, shifted_sigmas, simple_denoiser, upsample
from .types import STAGE_2_DISTILLED_SIGMA_VALUES, Audio, ImageConditioningInput, LoraPathStrengthAndSDOps, \
    MultiModalGuiderParams


class TI2VidTwoStagesHQPipeline:
    """ltx-pipelines' HQ pipeline. `distilled_lora[0]` is fused at `distilled_lora_strength_stage_1` with `loras`
    for stage 1 and at `distilled_lora_strength_stage_2` for stage 2."""

    def __init__(self, checkpoint_path: str, distilled_lora: list[LoraPathStrengthAndSDOps],
                 distilled_lora_strength_stage_1: float, distilled_lora_strength_stage_2: float,
                 spatial_upsampler_path: str, gemma_root: str, loras: tuple[LoraPathStrengthAndSDOps, ...],
                 device: torch.device | None = None, quantization: None = None):
        no_quantization(quantization)
        distilled = check_loras("distilled_lora", distilled_lora)
        if not distilled:
            raise ValueError("distilled_lora: the HQ pipeline needs the distilled LoRA (one entry)")
        path, _, *rest = distilled[0]
        self.stage_loras = [LoraPathStrengthAndSDOps(path, float(strength), *rest)
                            for strength in (distilled_lora_strength_stage_1, distilled_lora_strength_stage_2)]
        self.models = OfficialModels(checkpoint_path, gemma_root, [*check_loras("loras", loras), self.stage_loras[0]],
                                     spatial_upsampler_path, device=device)
        self.user_loras = self.models.loras[:-1]
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, prompt: str, negative_prompt: str, seed: int, height: int, width: int, num_frames: int,
                 frame_rate: float, num_inference_steps: int, video_guider_params: MultiModalGuiderParams,
                 audio_guider_params: MultiModalGuiderParams, images: list[ImageConditioningInput],
                 tiling_config: object | None = None, enhance_prompt: bool = False
                 ) -> tuple[Iterator[torch.Tensor], Audio]:
        models = self.models
        generator = start_call(models, seed, height, width, num_frames, frame_rate, images, enhance_prompt,
                               two_stage=True)
        contexts = guided_contexts(models, prompt, negative_prompt, video_guider_params, audio_guider_params)
        grid = Grid.of(num_frames, height // 2, width // 2, frame_rate)
        sigmas = shifted_sigmas(num_inference_steps, tokens=grid.video_tokens).to(models.device)
        models.use_loras([*self.user_loras, self.stage_loras[0]])
        stage_1 = denoise_stage(models, grid, image_conditionings(models, images, grid, DTYPE), generator, sigmas,
                                lambda s, v, a: res2s_loop(s, v, a, guided_denoiser(models, contexts), DTYPE), DTYPE)
        grid = Grid.of(num_frames, height, width, frame_rate)
        sigmas = torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES, dtype=torch.float32, device=models.device)
        models.use_loras([*self.user_loras, self.stage_loras[1]])
        try:
            stage_2 = denoise_stage(
                models, grid, image_conditionings(models, images, grid, DTYPE), generator, sigmas,
                lambda s, v, a: res2s_loop(s, v, a, simple_denoiser(models, contexts.positive), DTYPE), DTYPE,
                noise_scale=sigmas[0], initial_video=upsample(models, stage_1.video[:1]), initial_audio=stage_1.audio)
        finally:
            models.use_loras(models.loras)
        return decoded(models, stage_2)


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("ti2vid_two_stages_hq"))


if __name__ == "__main__":
    main()
