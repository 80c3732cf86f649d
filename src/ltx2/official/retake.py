"""RetakePipeline: regenerate the [start_time, end_time) span of an existing clip. The clip's video and audio are
encoded; tokens whose time span overlaps the window are noised and regenerated (denoise mask 1), the others are
kept (mask 0), in one stage at the clip's own size and frame rate."""

from __future__ import annotations

import sys

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import torch

from .a2vid_two_stage import encode_audio, read_audio
from .base import DTYPE, decoded, no_quantization
from .conditioning import encode_pixels, load_video
from .models import OfficialModels
from .sampling import (
    Conditioning,
    Contexts,
    Grid,
    LatentState,
    denoise_stage,
    euler_loop,
    guided_denoiser,
    shifted_sigmas,
    simple_denoiser,
)
from .types import (
    DISTILLED_SIGMA_VALUES,
    LTX_2_3_STG_BLOCK,
    LTX_2_AUDIO_GUIDER_PARAMS,
    LTX_2_VIDEO_GUIDER_PARAMS,
    Audio,
    LoraPathStrengthAndSDOps,
    MultiModalGuiderFactory,
    MultiModalGuiderParams,
    as_factory,
)


def video_metadata(path: str) -> tuple[float, int, int, int]:
    """(fps, frames, width, height) of a video file's first video stream (frames counted when not stored)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            return float(stream.average_rate), frames, stream.codec_context.width, stream.codec_context.height
    except (OSError, IndexError, av.error.FFmpegError) as error:
        raise ValueError(f"video_path={path!r} could not be read as a video ({error})") from None


def time_window(start_time: float, end_time: float) -> Conditioning:
    """TemporalRegionMask: mask 1 for tokens whose [start, end) seconds overlap [start_time, end_time), else 0
    (video tokens by their causal pixel-frame span; the positions here are exact, not the bf16 ones)."""

    def apply(state: LatentState, grid: Grid) -> LatentState:
        bounds = state.coords[0, 0].float()  # (N, 2) seconds
        if state.coords.shape[1] == 3:
            bounds = _exact_video_seconds(grid, state.coords.device)
        inside = (bounds[:, 1] > start_time) & (bounds[:, 0] < end_time)
        return replace(state, mask=inside.to(state.mask.dtype).view(1, -1, 1).expand_as(state.mask).clone())

    return apply


def _exact_video_seconds(grid: Grid, device: torch.device) -> torch.Tensor:
    from ..models.transformer import video_positions

    return video_positions(1, grid.frames, grid.height, grid.width, (8, 32, 32), 1, grid.fps, device)[0, 0]


def default_guiders(models: OfficialModels) -> tuple[MultiModalGuiderParams, MultiModalGuiderParams]:
    """ltx-pipelines' defaults for the checkpoint's version (LTX-2.3 moves STG to block 28)."""
    if models.model_version == "2.3":
        return (replace(LTX_2_VIDEO_GUIDER_PARAMS, stg_blocks=[LTX_2_3_STG_BLOCK]),
                replace(LTX_2_AUDIO_GUIDER_PARAMS, stg_blocks=[LTX_2_3_STG_BLOCK]))
    return LTX_2_VIDEO_GUIDER_PARAMS, LTX_2_AUDIO_GUIDER_PARAMS


class RetakePipeline:
    """ltx-pipelines' retake: the full model with guidance, or a distilled checkpoint with `distilled=True`."""

    def __init__(self, checkpoint_path: str, gemma_root: str, loras: list[LoraPathStrengthAndSDOps],
                 device: torch.device | None = None, quantization: None = None):
        no_quantization(quantization)
        self.models = OfficialModels(checkpoint_path, gemma_root, loras, device=device)
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, video_path: str, prompt: str, start_time: float, end_time: float, seed: int, *,
                 negative_prompt: str = "", num_inference_steps: int = 40,
                 video_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory | None = None,
                 audio_guider_params: MultiModalGuiderParams | MultiModalGuiderFactory | None = None,
                 regenerate_video: bool = True, regenerate_audio: bool = True, enhance_prompt: bool = False,
                 distilled: bool = False, tiling_config: object | None = None
                 ) -> tuple[Iterator[torch.Tensor], Audio]:
        models = self.models
        if not Path(video_path).is_file():
            raise ValueError(f"video_path={video_path!r} is not a file")
        if not start_time < end_time:
            raise ValueError(f"start_time ({start_time}) must be less than end_time ({end_time})")
        if enhance_prompt:
            raise ValueError("enhance_prompt=True: prompt enhancement is not available in ltx2.official")
        fps, frames, width, height = video_metadata(video_path)
        if (frames - 1) % 8 or width % 32 or height % 32:
            raise ValueError(f"{video_path}: {frames} frames of {width}x{height}; retake needs 8k + 1 frames and "
                             "sizes that are multiples of 32")
        seed = int(torch.randint(0, 2**31, (1,), device=models.device).item()) if seed < 0 else seed
        generator = torch.Generator(device=models.device).manual_seed(seed)
        grid = Grid.of(frames, height, width, fps)
        video_latent = encode_pixels(models, load_video(video_path, height, width, frames, models.device, DTYPE))
        video_window = time_window(start_time, end_time) if regenerate_video else time_window(0.0, 0.0)
        audio_latent, audio_window = self._source_audio(video_path, grid, start_time, end_time, regenerate_audio)
        texts = models.encode_prompts([prompt] if distilled else [prompt, negative_prompt])
        if distilled:
            sigmas = torch.tensor(DISTILLED_SIGMA_VALUES, dtype=torch.float32, device=models.device)
            denoiser = simple_denoiser(models, texts[0])
        else:
            sigmas = shifted_sigmas(num_inference_steps).to(models.device)
            defaults = default_guiders(models)
            contexts = Contexts(texts[0], as_factory(video_guider_params or defaults[0]),
                                as_factory(audio_guider_params or defaults[1]), texts[1])
            denoiser = guided_denoiser(models, contexts)
        stage = denoise_stage(models, grid, [video_window], generator, sigmas,
                              lambda s, v, a: euler_loop(s, v, a, denoiser), DTYPE, initial_video=video_latent,
                              initial_audio=audio_latent, audio_conditionings=audio_window)
        return decoded(models, stage)

    def _source_audio(self, path: str, grid: Grid, start_time: float, end_time: float, regenerate: bool
                      ) -> tuple[torch.Tensor | None, list[Conditioning]]:
        """The clip's audio as latents (trimmed or zero-padded to the video's length) and its window; a clip without
        audio gets its whole soundtrack generated."""
        audio = read_audio(path)
        if audio is None:
            return None, []
        # ltx-pipelines hands the waveform to the audio VAE in the model dtype
        audio = Audio(audio.waveform.to(DTYPE).float(), audio.sampling_rate)
        latent = encode_audio(self.models, audio, grid.audio_frames, pad=True)
        return latent, [time_window(start_time, end_time) if regenerate else time_window(0.0, 0.0)]


def main() -> None:
    from .cli import run_module

    sys.exit(run_module("retake"))


if __name__ == "__main__":
    main()
