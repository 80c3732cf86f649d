"""A2VidPipelineTwoStage: video for a given soundtrack. The audio file is encoded by the audio VAE and held fixed
(denoise mask 0) through both stages while the video is generated around it; the input waveform is returned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from ..audio import SAMPLE_RATE, load_audio, log_mel_spectrogram, resample
from ..pipelines.latents import normalize_audio_latents, pack_audio_latents, unpack_audio_latents
from .base import DTYPE, guided_contexts, no_quantization, start_call
from .conditioning import image_conditionings
from .models import OfficialModels, TextEncoding, check_loras
from .sampling import (
    AUDIO_MEL_BINS,
    Contexts,
    Grid,
    decode_video,
    denoise_stage,
    euler_loop,
    guided_denoiser,
    shifted_sigmas,
    simple_denoiser,
    upsample,
)
from .types import STAGE_2_DISTILLED_SIGMA_VALUES, Audio, ImageConditioningInput, LoraPathStrengthAndSDOps, \
    MultiModalGuiderParams, frame_chunks


def read_audio(path: str, start_time: float, max_duration: float | None) -> Audio:
    """The file's audio from `start_time` (seconds), at most `max_duration` seconds of it (all when None)."""
    if not Path(path).is_file():
        raise ValueError(f"audio_path={path!r} is not a file")
    if start_time < 0 or (max_duration is not None and max_duration <= 0):
        raise ValueError(f"audio_start_time={start_time!r} must be >= 0 and audio_max_duration={max_duration!r} > 0")
    waveform, rate = load_audio(path)
    start = round(start_time * rate)
    end = None if max_duration is None else start + round(max_duration * rate)
    waveform = waveform[:, start:end]
    if waveform.shape[-1] == 0:
        raise ValueError(f"audio_path={path!r} has no audio after audio_start_time={start_time}")
    return Audio(waveform.float(), rate)


@torch.no_grad()
def encode_audio(models: OfficialModels, audio: Audio, frames: int) -> torch.Tensor:
    """Stereo log-mel at 16 kHz -> the audio VAE's normalized latents (1, 8, frames, 16) in the model dtype (mono
    is duplicated to stereo); the audio must last at least as long as the video."""
    waveform = audio.waveform if audio.waveform.shape[0] != 1 else audio.waveform.expand(2, -1)
    mel = log_mel_spectrogram(resample(waveform.to(models.device), audio.sampling_rate, SAMPLE_RATE))[None]
    audio_vae = models.audio_vae
    posterior = audio_vae.encode(mel.to(audio_vae.dtype)).latent_dist
    raw = posterior.mode() if hasattr(posterior, "mode") else posterior.mean
    packed = normalize_audio_latents(pack_audio_latents(raw), audio_vae.latents_mean, audio_vae.latents_std)
    latent = unpack_audio_latents(packed, AUDIO_MEL_BINS)[:, :, :frames]
    if latent.shape[2] < frames:
        raise ValueError(f"the audio lasts {audio.waveform.shape[-1] / audio.sampling_rate:.2f} s, shorter than the "
                         f"video ({frames} audio latent frames needed, {latent.shape[2]} available)")
    return latent.to(DTYPE)


class A2VidPipelineTwoStage:
    """ltx-pipelines' audio-to-video pipeline: a guided video stage at half size around the fixed audio, then x2
    upsampling refined with the distilled LoRA. Audio gets no guidance."""

    def __init__(self, checkpoint_path: str, distilled_lora: list[LoraPathStrengthAndSDOps],
                 spatial_upsampler_path: str, gemma_root: str, loras: list[LoraPathStrengthAndSDOps],
                 device: torch.device | None = None, quantization: None = None):
        no_quantization(quantization)
        self.distilled_lora = check_loras("distilled_lora", distilled_lora)
        self.models = OfficialModels(checkpoint_path, gemma_root, loras, spatial_upsampler_path, device=device)
        self.device, self.dtype = self.models.device, torch.bfloat16

    @torch.inference_mode()
    def __call__(self, prompt: str, negative_prompt: str, seed: int, height: int, width: int, num_frames: int,
                 frame_rate: float, num_inference_steps: int, video_guider_params: MultiModalGuiderParams,
                 images: list[ImageConditioningInput], audio_path: str, audio_start_time: float = 0.0,
                 audio_max_duration: float | None = None, tiling_config: object | None = None,
                 enhance_prompt: bool = False) -> tuple[Iterator[torch.Tensor], Audio]:
        models = self.models
        generator = start_call(models, seed, height, width, num_frames, frame_rate, images, enhance_prompt,
                               two_stage=True)
        audio = read_audio(audio_path, audio_start_time, audio_max_duration)
        contexts = guided_contexts(models, prompt, negative_prompt, video_guider_params, MultiModalGuiderParams())
        # The audio guider has no negative text: an unconditional pass reads the positive audio context.
        contexts = Contexts(contexts.positive, contexts.video_guider, contexts.audio_guider,
                            TextEncoding(contexts.negative.video, contexts.positive.audio))
        grid = Grid.of(num_frames, height // 2, width // 2, frame_rate)
        audio_latent = encode_audio(models, audio, grid.audio_frames)
        models.use_loras(models.loras)
        stage_1 = denoise_stage(models, grid, image_conditionings(models, images, grid, DTYPE), generator,
                                shifted_sigmas(num_inference_steps).to(models.device),
                                lambda s, v, a: euler_loop(s, v, a, guided_denoiser(models, contexts)), DTYPE,
                                initial_audio=audio_latent, audio_frozen=True)
        grid = Grid.of(num_frames, height, width, frame_rate)
        sigmas = torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES, dtype=torch.float32, device=models.device)
        models.use_loras([*models.loras, *self.distilled_lora])
        try:
            stage_2 = denoise_stage(models, grid, image_conditionings(models, images, grid, DTYPE), generator, sigmas,
                                    lambda s, v, a: euler_loop(s, v, a, simple_denoiser(models, contexts.positive)),
                                    DTYPE, noise_scale=sigmas[0], initial_video=upsample(models, stage_1.video[:1]),
                                    initial_audio=audio_latent, audio_frozen=True)
        finally:
            models.use_loras(models.loras)
        return frame_chunks(decode_video(models, stage_2.video)), audio


def main() -> None:
    from .cli import run_module

    run_module("a2vid_two_stage")


if __name__ == "__main__":
    main()
