"""A2VidPipelineTwoStage: video for a given soundtrack. The audio file is encoded by the audio VAE and held fixed
(denoise mask 0) through both stages while the video is generated around it; the input waveform is returned."""

from __future__ import annotations

import sys

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import torch

from ..audio import SAMPLE_RATE, log_mel_spectrogram, resample
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


INTEGER_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0}


def read_audio(path: str, start_time: float = 0.0, max_duration: float | None = None) -> Audio | None:
    """A file's audio as ltx-pipelines decodes it: from the frame holding `start_time` (frames are placed by their
    timestamps, so an encoder's priming samples before 0 are dropped), at most `max_duration` seconds (to the end
    when None); float32 (channels, samples). None when the file has no audio stream."""
    if not Path(path).is_file():
        raise ValueError(f"{path!r} is not a file")
    if start_time < 0 or (max_duration is not None and max_duration <= 0):
        raise ValueError(f"audio start {start_time!r} must be >= 0 and its max duration {max_duration!r} > 0")
    chunks, first_time = [], None
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            rate = stream.rate
            end_time = start_time + max_duration if max_duration else float(stream.duration * stream.time_base)
            container.seek(int(start_time / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                frame_time = float(frame.pts * stream.time_base)
                if frame_time + frame.samples / frame.sample_rate < start_time:
                    continue
                if frame_time > end_time:
                    break
                first_time = frame_time if first_time is None else first_time
                chunks.append(_frame_samples(frame))
    except (OSError, av.error.FFmpegError) as error:
        raise ValueError(f"{path!r} could not be read as audio ({error})") from None
    if not chunks:
        raise ValueError(f"{path!r} has no audio after {start_time} s")
    samples = np.concatenate(chunks, axis=-1)
    skip = round((start_time - first_time) * rate)
    samples = samples[..., skip:] if skip > 0 else samples
    if max_duration is not None:
        samples = samples[..., : round(max_duration * rate)]
    return Audio(torch.from_numpy(samples), rate)


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """(channels, samples) float32 in [-1, 1]."""
    samples = frame.to_ndarray().astype(np.float32)
    kind = frame.format.name.rstrip("p")
    if kind in INTEGER_FULL_SCALE:
        samples = samples / INTEGER_FULL_SCALE[kind]
    if not frame.format.is_planar:
        samples = samples.reshape(-1, len(frame.layout.channels)).T
    return samples


@torch.no_grad()
def encode_audio(models: OfficialModels, audio: Audio, frames: int, pad: bool = False) -> torch.Tensor:
    """Stereo log-mel at 16 kHz -> the audio VAE's normalized latents (1, 8, frames, 16) in the model dtype (mono
    is duplicated to stereo). Audio shorter than the video is an error, or with `pad` zero latents at the end."""
    waveform = audio.waveform if audio.waveform.shape[0] != 1 else audio.waveform.expand(2, -1)
    waveform = resample(waveform.to(models.device), audio.sampling_rate, SAMPLE_RATE)
    # torchaudio's MelSpectrogram, as ltx-core uses it, computes its filters in float32
    mel = log_mel_spectrogram(waveform, filter_dtype=torch.float32)[None]
    audio_vae = models.audio_vae
    posterior = audio_vae.encode(mel.to(audio_vae.dtype)).latent_dist
    raw = posterior.mode() if hasattr(posterior, "mode") else posterior.mean
    packed = normalize_audio_latents(pack_audio_latents(raw), audio_vae.latents_mean, audio_vae.latents_std)
    latent = unpack_audio_latents(packed, AUDIO_MEL_BINS)[:, :, :frames]
    if pad:
        latent = torch.nn.functional.pad(latent, (0, 0, 0, frames - latent.shape[2]))
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
        if audio is None:
            raise ValueError(f"audio_path={audio_path!r} has no audio stream")
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

    sys.exit(run_module("a2vid_two_stage"))


if __name__ == "__main__":
    main()
