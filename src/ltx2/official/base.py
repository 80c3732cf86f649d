"""What every official pipeline shares: argument checks, the per-call generator, the stage-1 / stage-2 flows and
the decoded outputs in ltx-pipelines' form (an iterator of uint8 frame chunks, an Audio with .waveform)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .conditioning import check_images, image_conditionings
from .models import OfficialModels
from .sampling import (
    Contexts,
    Grid,
    StageOutput,
    decode_audio,
    decode_video,
    denoise_stage,
    euler_loop,
    guided_denoiser,
    guider_factories,
    shifted_sigmas,
    simple_denoiser,
    upsample,
)
from .types import (
    STAGE_2_DISTILLED_SIGMA_VALUES,
    Audio,
    ImageConditioningInput,
    MultiModalGuiderFactory,
    MultiModalGuiderParams,
    frame_chunks,
)

DTYPE = torch.bfloat16  # ltx-pipelines 1.0.0 runs every pipeline in bfloat16


def check_call(height: int, width: int, num_frames: int, frame_rate: float, seed: int, two_stage: bool) -> None:
    """ltx-pipelines' resolution rule (multiples of 64 for two stages, 32 for one), and the other sizes' rules."""
    divisor = 64 if two_stage else 32
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or value <= 0 or value % divisor:
            raise ValueError(f"{name}={value!r} must be a positive multiple of {divisor} "
                             f"({'two' if two_stage else 'one'}-stage pipelines)")
    if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % 8:
        raise ValueError(f"num_frames={num_frames!r} must be 8k + 1 (1, 9, 17, ..., 121)")
    if not isinstance(frame_rate, (int, float)) or frame_rate <= 0:
        raise ValueError(f"frame_rate={frame_rate!r} must be a positive number")
    if not isinstance(seed, int):
        raise ValueError(f"seed={seed!r} must be an integer")


def no_quantization(quantization: object | None) -> None:
    if quantization is not None:
        raise ValueError(f"quantization={quantization!r}: ltx2.official runs the checkpoint's bf16 weights only "
                         "(ltx2's FP8 path is ltx2.transforms.fp8)")


def start_call(models: OfficialModels, seed: int, height: int, width: int, num_frames: int, frame_rate: float,
               images: list[ImageConditioningInput], enhance_prompt: bool, two_stage: bool) -> torch.Generator:
    """Check a call's arguments up front; the call's one generator, seeded as ltx-pipelines seeds it."""
    check_call(height, width, num_frames, frame_rate, seed, two_stage)
    check_images(images, num_frames)
    if enhance_prompt:
        raise ValueError("enhance_prompt=True: prompt enhancement is not available in ltx2.official; "
                         "use ltx2's LTX2Pipeline(enable_prompt_enhancement=True) or pass an enhanced prompt")
    return torch.Generator(device=models.device).manual_seed(seed)


def guided_stage(models: OfficialModels, grid: Grid, images: list[ImageConditioningInput], generator: torch.Generator,
                 contexts: Contexts, steps: int, keyframes_only: bool = False) -> StageOutput:
    """A guided Euler stage from pure noise on the constant-shift schedule (stage 1, one-stage)."""
    sigmas = shifted_sigmas(steps).to(models.device)
    conditionings = image_conditionings(models, images, grid, DTYPE, keyframes_only)
    return denoise_stage(models, grid, conditionings, generator, sigmas,
                         lambda s, v, a: euler_loop(s, v, a, guided_denoiser(models, contexts)), DTYPE)


def refine_stage(models: OfficialModels, grid: Grid, images: list[ImageConditioningInput],
                 generator: torch.Generator, contexts: Contexts, previous: StageOutput, keyframes_only: bool = False
                 ) -> StageOutput:
    """Stage 2: the stage-1 video upsampled x2, both streams re-noised to the first sigma, a positive pass per step."""
    video = upsample(models, previous.video[:1])
    sigmas = torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES, dtype=torch.float32, device=models.device)
    conditionings = image_conditionings(models, images, grid, DTYPE, keyframes_only)
    return denoise_stage(models, grid, conditionings, generator, sigmas,
                         lambda s, v, a: euler_loop(s, v, a, simple_denoiser(models, contexts.positive)), DTYPE,
                         noise_scale=sigmas[0], initial_video=video, initial_audio=previous.audio)


def guided_contexts(models: OfficialModels, prompt: str, negative_prompt: str,
                    video_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory,
                    audio_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory | None) -> Contexts:
    if not isinstance(prompt, str) or not isinstance(negative_prompt, str):
        raise ValueError("prompt and negative_prompt must be strings")
    positive, negative = models.encode_prompts([prompt, negative_prompt])
    video_guider, audio_guider = guider_factories(video_guider_params, audio_guider_params)
    return Contexts(positive, video_guider, audio_guider, negative)


def decoded(models: OfficialModels, stage: StageOutput) -> tuple[Iterator[torch.Tensor], Audio]:
    frames = decode_video(models, stage.video)
    waveform, rate = decode_audio(models, stage.audio)
    return frame_chunks(frames), Audio(waveform, rate)
