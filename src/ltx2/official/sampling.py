"""The sampling core of ltx-pipelines 1.0.0, on ltx2's networks, with the official conventions:

- state: each stream is a sequence of tokens (B, T, C) in the model dtype with a float32 denoise mask (B, T, 1)
  (1 = generate, 1 - strength for conditioning tokens), its clean values and its positions;
- noise: one generator per call, drawn in the model dtype on that packed layout, video then audio per stage,
  appended conditioning tokens included, and mixed as noise * (mask * scale) + latent * (1 - mask * scale);
- schedule: LTX2Scheduler's constant shift (the 4096-token anchor) stretched to a terminal 0.1, or the distilled lists;
- transformer: x0 = latent - velocity * (mask * sigma) in float32, rounded to the model dtype; the audio<->video
  modulation takes the other stream's scalar sigma; the video positions are bfloat16 in a bfloat16 run;
- guidance: cond, uncond, STG and isolated passes as separate batch-1 calls, combined and rescaled (one std over the
  whole tensor) in the model dtype; sigma-binned params and skip_step;
- Euler: x0 blended with the clean values by the mask in float32, velocity rounded to the model dtype, the step in
  float32, the latent stored in the model dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import torch

from ..models.audio_vae import audio_latent_frames
from ..models.transformer import video_positions
from ..pipelines.latents import (
    denormalize_audio_latents,
    denormalize_video_latents,
    normalize_video_latents,
    pack_audio_latents,
    pack_video_latents,
    unpack_audio_latents,
    unpack_video_latents,
)
from .models import OfficialModels, TextEncoding
from .types import MultiModalGuiderFactory, MultiModalGuiderParams, as_factory

AUDIO_CHANNELS, AUDIO_MEL_BINS = 8, 16
SHIFT_ANCHORS = (1024, 4096)  # tokens at which the shift is base_shift and max_shift


@dataclass
class LatentState:
    """One stream's tokens during sampling. coords: (B, P, T, 2) [start, end) positions as the transformer takes
    them; attention_mask: (B, T, T) multiplicative self-attention mask, or None."""

    latent: torch.Tensor
    mask: torch.Tensor
    clean: torch.Tensor
    coords: torch.Tensor
    attention_mask: torch.Tensor | None = None


@dataclass(frozen=True)
class Grid:
    """The latent sizes of one stage: video frames, height, width (tokens), audio frames, and the frame rate."""

    frames: int
    height: int
    width: int
    audio_frames: int
    fps: float

    @classmethod
    def of(cls, num_frames: int, height: int, width: int, fps: float) -> Grid:
        """The latent grid of a (num_frames, height, width) video: 8x in time (causal), 32x in space."""
        return cls((num_frames - 1) // 8 + 1, height // 32, width // 32, audio_latent_frames(num_frames, fps), fps)

    @property
    def video_tokens(self) -> int:
        return self.frames * self.height * self.width


# ----------------------------------------------------------------------------------------------------------
# Schedules


def shifted_sigmas(steps: int, tokens: int | None = None, max_shift: float = 2.05, base_shift: float = 0.95,
                   terminal: float = 0.1) -> torch.Tensor:
    """LTX2Scheduler: steps + 1 sigmas from 1 to 0, shifted for `tokens` (4096 when not given, which is what every
    Euler pipeline asks for) and stretched so the last non-zero sigma is `terminal`; float32."""
    tokens = SHIFT_ANCHORS[1] if tokens is None else tokens
    slope = (max_shift - base_shift) / (SHIFT_ANCHORS[1] - SHIFT_ANCHORS[0])
    shift = tokens * slope + base_shift - slope * SHIFT_ANCHORS[0]
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    sigmas = torch.where(sigmas != 0, math.exp(shift) / (math.exp(shift) + (1 / sigmas - 1)), 0)
    nonzero = sigmas != 0
    one_minus = 1.0 - sigmas[nonzero]
    sigmas[nonzero] = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return sigmas.to(torch.float32)


# ----------------------------------------------------------------------------------------------------------
# States


def bf16_video_coords(coords: torch.Tensor, extents: tuple[float, ...]) -> torch.Tensor:
    """bfloat16 video positions rewritten as float32 coordinates whose RoPE fractions (computed by the transformer
    in float32) equal what ltx-core 1.0.0 computes from them in bfloat16: the midpoint, the division by each axis'
    extent and 2f - 1 each rounded to bfloat16 (the high RoPE frequencies make this visible)."""
    rounded = coords.to(torch.bfloat16)
    middle = (rounded[..., 0] + rounded[..., 1]) / 2.0  # (B, P, T) in bf16
    extent = torch.tensor(extents, dtype=torch.float32, device=coords.device).view(1, -1, 1)
    signed = torch.stack([middle[:, axis] / extents[axis] for axis in range(middle.shape[1])], 1) * 2 - 1
    fraction = (signed.float() + 1) / 2 * extent
    return torch.stack([fraction, fraction], -1)


def video_state(models: OfficialModels, grid: Grid, dtype: torch.dtype,
                initial: torch.Tensor | None = None) -> LatentState:
    """Video tokens (B, F*H*W, 128): `initial` (B, 128, F, H, W), normalized, or zeros; all to be generated."""
    device = models.device
    config = models.transformer.config
    if initial is None:
        latent = torch.zeros(1, grid.video_tokens, config.in_channels, device=device, dtype=dtype)
    else:
        latent = pack_video_latents(initial).to(device, dtype)
    coords = video_positions(latent.shape[0], grid.frames, grid.height, grid.width, tuple(config.vae_scale_factors),
                             config.causal_offset, grid.fps, device)
    coords = coords.to(dtype)  # ltx-core keeps the video positions in the model dtype
    mask = torch.ones(latent.shape[0], latent.shape[1], 1, device=device)
    return LatentState(latent, mask, latent.clone(), coords)


def audio_state(models: OfficialModels, grid: Grid, dtype: torch.dtype,
                initial: torch.Tensor | None = None) -> LatentState:
    """Audio tokens (B, T, 8 * 16): `initial` (B, 8, T, 16), normalized, or zeros; positions stay float32."""
    from ..models.transformer import audio_positions

    device = models.device
    config = models.transformer.config
    if initial is None:
        latent = torch.zeros(1, grid.audio_frames, AUDIO_CHANNELS * AUDIO_MEL_BINS, device=device, dtype=dtype)
    else:
        latent = pack_audio_latents(initial).to(device, dtype)
    coords = audio_positions(latent.shape[0], latent.shape[1], config.audio_scale_factor, config.causal_offset,
                             config.audio_hop_length, config.audio_sampling_rate, device)
    mask = torch.ones(latent.shape[0], latent.shape[1], 1, device=device)
    return LatentState(latent, mask, latent.clone(), coords)


def add_noise(state: LatentState, generator: torch.Generator, noise_scale: float | torch.Tensor = 1.0) -> LatentState:
    """GaussianNoiser: noise in the latent's dtype on its packed layout, weighted per token by mask * noise_scale."""
    noise = torch.randn(*state.latent.shape, device=state.latent.device, dtype=state.latent.dtype,
                        generator=generator)
    scaled = state.mask * noise_scale
    return replace(state, latent=(noise * scaled + state.latent * (1 - scaled)).to(state.latent.dtype))


# ----------------------------------------------------------------------------------------------------------
# Denoising


@dataclass
class Contexts:
    """Positive text per stream and the guiders (with their negative text) of a guided loop."""

    positive: TextEncoding
    video_guider: MultiModalGuiderFactory | None = None
    audio_guider: MultiModalGuiderFactory | None = None
    negative: TextEncoding | None = None


@contextlib.contextmanager
def perturbed_streams(transformer: torch.nn.Module, video_blocks: list[int] | None, audio_blocks: list[int] | None
                      ) -> Iterator[list[int]]:
    """STG on each stream's own blocks: the transformer perturbs both streams in the blocks it is given (their union
    here); in a block only one stream lists, the other stream's self-attention gets no perturbation."""
    handles = []
    blocks = transformer.transformer_blocks
    video_blocks = range(len(blocks)) if video_blocks is None else video_blocks
    audio_blocks = range(len(blocks)) if audio_blocks is None else audio_blocks
    union = sorted(set(video_blocks) | set(audio_blocks))
    for index in (index for index in union if 0 <= index < len(blocks)):
        for attention, listed in ((blocks[index].attn1, video_blocks), (blocks[index].audio_attn1, audio_blocks)):
            if index not in listed:
                handles.append(attention.register_forward_pre_hook(_unperturbed, with_kwargs=True))
    try:
        yield union
    finally:
        for handle in handles:
            handle.remove()


def _unperturbed(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, {**kwargs, "perturbation": None}


def predict_x0(models: OfficialModels, video: LatentState, audio: LatentState, text: TextEncoding,
               sigma: torch.Tensor, stg_blocks: tuple[list[int] | None, list[int] | None] | None = None,
               isolate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One transformer call (batch 1); the denoised tokens of both streams in the model dtype. `stg_blocks`:
    (video blocks, audio blocks) whose self-attentions pass their values through."""
    if stg_blocks is not None:
        with perturbed_streams(models.transformer, *stg_blocks) as union:
            return _predict_x0(models, video, audio, text, sigma, union, isolate)
    return _predict_x0(models, video, audio, text, sigma, None, isolate)


def _predict_x0(models: OfficialModels, video: LatentState, audio: LatentState, text: TextEncoding,
                sigma: torch.Tensor, stg_blocks: list[int] | None, isolate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    video_t, audio_t = video.mask * sigma, audio.mask * sigma  # (B, T, 1) float32
    config = models.transformer.config
    video_coords = video.coords
    if video_coords.dtype != torch.float32:  # RoPE arithmetic in that dtype
        video_coords = bf16_video_coords(video_coords, (config.pos_embed_max_pos, config.base_height,
                                                        config.base_width))
    scaled_sigma = (sigma * 1000).reshape(1).expand(video.latent.shape[0])
    velocity, audio_velocity = models.transformer(
        hidden_states=video.latent, audio_hidden_states=audio.latent, encoder_hidden_states=text.video,
        audio_encoder_hidden_states=text.audio, timestep=(video_t * 1000)[..., 0],
        audio_timestep=(audio_t * 1000)[..., 0], sigma=scaled_sigma, audio_sigma=scaled_sigma,
        video_coords=video_coords, audio_coords=audio.coords, use_cross_timestep=True, isolate_modalities=isolate,
        spatio_temporal_guidance_blocks=stg_blocks, video_self_attention_mask=video.attention_mask,
        return_dict=False,
    )
    return _to_x0(video.latent, velocity, video_t), _to_x0(audio.latent, audio_velocity, audio_t)


def _to_x0(latent: torch.Tensor, velocity: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    return (latent.float() - velocity.float() * timesteps.float()).to(latent.dtype)


def guide(params: MultiModalGuiderParams, cond: torch.Tensor, uncond: torch.Tensor | float,
          perturbed: torch.Tensor | float, isolated: torch.Tensor | float) -> torch.Tensor:
    """MultiModalGuider.calculate, in the predictions' dtype; a pass that did not run counts as 0."""
    guided = (cond + (params.cfg_scale - 1) * (cond - uncond) + params.stg_scale * (cond - perturbed)
              + (params.modality_scale - 1) * (cond - isolated))
    if params.rescale_scale != 0:
        factor = cond.std() / guided.std()
        factor = params.rescale_scale * factor + (1 - params.rescale_scale)
        guided = guided * factor
    return guided


def stg_blocks_of(video: MultiModalGuiderParams, audio: MultiModalGuiderParams
                  ) -> tuple[list[int], list[int]] | None:
    """The (video, audio) blocks of the STG pass (None: every block, as in ltx-core); a stream whose STG scale is 0
    is not perturbed. None: no STG pass."""
    if not (video.uses_stg or audio.uses_stg):
        return None
    return (video.stg_blocks if video.uses_stg else [], audio.stg_blocks if audio.uses_stg else [])


DenoiseFn = Callable[[LatentState, LatentState, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def simple_denoiser(models: OfficialModels, text: TextEncoding) -> DenoiseFn:
    """One positive pass per step (distilled models, stage 2)."""

    def denoise(video: LatentState, audio: LatentState, sigmas: torch.Tensor, step: int):
        return predict_x0(models, video, audio, text, sigmas[step])

    return denoise


def guided_denoiser(models: OfficialModels, contexts: Contexts) -> DenoiseFn:
    """The guided passes of each step, with the params binned by that step's sigma and skip_step honoured."""
    last: list[torch.Tensor | None] = [None, None]

    def denoise(video: LatentState, audio: LatentState, sigmas: torch.Tensor, step: int):
        sigma = sigmas[step]
        video_params = contexts.video_guider.params(float(sigma))
        audio_params = (contexts.audio_guider or contexts.video_guider).params(float(sigma))
        skip_video, skip_audio = video_params.skips(step), audio_params.skips(step)
        if skip_video and skip_audio:
            return last[0], last[1]
        cond = predict_x0(models, video, audio, contexts.positive, sigma)
        uncond = perturbed = isolated = (0.0, 0.0)
        if video_params.uses_cfg or audio_params.uses_cfg:
            if contexts.negative is None:
                raise ValueError("CFG needs a negative prompt: negative context is missing")
            uncond = predict_x0(models, video, audio, contexts.negative, sigma)
        blocks = stg_blocks_of(video_params, audio_params)
        if blocks is not None:
            perturbed = predict_x0(models, video, audio, contexts.positive, sigma, stg_blocks=blocks)
        if video_params.uses_modality or audio_params.uses_modality:
            isolated = predict_x0(models, video, audio, contexts.positive, sigma, isolate=True)
        video_x0 = last[0] if skip_video else guide(video_params, cond[0], uncond[0], perturbed[0], isolated[0])
        audio_x0 = last[1] if skip_audio else guide(audio_params, cond[1], uncond[1], perturbed[1], isolated[1])
        last[:] = [video_x0, audio_x0]
        return video_x0, audio_x0

    return denoise


def blend_clean(x0: torch.Tensor, state: LatentState) -> torch.Tensor:
    """Conditioning tokens keep their clean values by (1 - mask); computed in float32."""
    return (x0 * state.mask + state.clean.float() * (1 - state.mask)).to(x0.dtype)


def euler_step(sample: torch.Tensor, x0: torch.Tensor, sigmas: torch.Tensor, step: int) -> torch.Tensor:
    sigma, sigma_next = sigmas[step], sigmas[step + 1]
    velocity = ((sample.float() - x0.float()) / sigma.float().item()).to(sample.dtype)
    return (sample.float() + velocity.float() * (sigma_next - sigma)).to(sample.dtype)


def euler_loop(sigmas: torch.Tensor, video: LatentState, audio: LatentState,
               denoise: DenoiseFn) -> tuple[LatentState, LatentState]:
    for step in range(len(sigmas) - 1):
        video_x0, audio_x0 = denoise(video, audio, sigmas, step)
        video_x0, audio_x0 = blend_clean(video_x0, video), blend_clean(audio_x0, audio)
        video = replace(video, latent=euler_step(video.latent, video_x0, sigmas, step))
        audio = replace(audio, latent=euler_step(audio.latent, audio_x0, sigmas, step))
    return video, audio


Conditioning = Callable[[LatentState, Grid], LatentState]
Loop = Callable[[torch.Tensor, LatentState, LatentState], tuple[LatentState, LatentState]]


@dataclass
class StageOutput:
    """A stage's result: video (B, 128, F, H, W) and audio (B, 8, T, 16) latents, normalized, in the model dtype."""

    video: torch.Tensor
    audio: torch.Tensor


def denoise_stage(models: OfficialModels, grid: Grid, conditionings: list[Conditioning], generator: torch.Generator,
                  sigmas: torch.Tensor, loop: Loop, dtype: torch.dtype, noise_scale: float | torch.Tensor = 1.0,
                  initial_video: torch.Tensor | None = None, initial_audio: torch.Tensor | None = None,
                  audio_frozen: bool = False, audio_conditionings: list[Conditioning] = ()) -> StageOutput:
    """denoise_audio_video: build both states, condition and noise video then audio, sample, drop appended tokens.
    `audio_frozen` keeps the audio as given (its noise is still drawn, with scale 0, as the official code does)."""
    video = video_state(models, grid, dtype, initial_video)
    for condition in conditionings:
        video = condition(video, grid)
    video = add_noise(video, generator, noise_scale)
    audio = audio_state(models, grid, dtype, initial_audio)
    for condition in audio_conditionings:
        audio = condition(audio, grid)
    audio = add_noise(audio, generator, 0.0 if audio_frozen else noise_scale)
    if audio_frozen:
        audio = replace(audio, mask=torch.zeros_like(audio.mask))
    video, audio = loop(sigmas, video, audio)
    tokens = video.latent[:, : grid.video_tokens]
    return StageOutput(unpack_video_latents(tokens, grid.frames, grid.height, grid.width),
                       unpack_audio_latents(audio.latent, AUDIO_MEL_BINS))


# ----------------------------------------------------------------------------------------------------------
# Latent upsampling and decoding


def _video_stats(models: OfficialModels) -> tuple[torch.Tensor, torch.Tensor, float]:
    vae = models.vae
    return vae.latents_mean, vae.latents_std, vae.config.scaling_factor


@torch.no_grad()
def upsample(models: OfficialModels, latent: torch.Tensor) -> torch.Tensor:
    """upsample_video: un-normalize with the VAE's statistics, upsample x2, normalize again."""
    if models.upsampler is None:
        raise ValueError("this pipeline needs spatial_upsampler_path")
    raw = denormalize_video_latents(latent, *_video_stats(models))
    return normalize_video_latents(models.upsampler(raw), *_video_stats(models))


@torch.no_grad()
def decode_video(models: OfficialModels, latent: torch.Tensor) -> torch.Tensor:
    """(F, H, W, 3) uint8 frames, converted as ltx-core does (truncated, in the decoder's dtype)."""
    raw = denormalize_video_latents(latent, *_video_stats(models)).to(models.vae.dtype)
    frames = models.vae.decode(raw, None, return_dict=False)[0]
    frames = (((frames + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0).to(torch.uint8)
    return frames[0].permute(1, 2, 3, 0)


@torch.no_grad()
def decode_audio(models: OfficialModels, latent: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(channels, samples) float32 waveform and its sampling rate."""
    audio_vae = models.audio_vae
    packed = denormalize_audio_latents(pack_audio_latents(latent), audio_vae.latents_mean, audio_vae.latents_std)
    mel = audio_vae.decode(unpack_audio_latents(packed, AUDIO_MEL_BINS).to(audio_vae.dtype), return_dict=False)[0]
    waveform = models.vocoder(mel)
    return waveform[0].float(), int(models.vocoder.config.output_sampling_rate)


def guider_factories(video_params: MultiModalGuiderParams | MultiModalGuiderFactory,
                     audio_params: MultiModalGuiderParams | MultiModalGuiderFactory | None
                     ) -> tuple[MultiModalGuiderFactory, MultiModalGuiderFactory | None]:
    return as_factory(video_params), None if audio_params is None else as_factory(audio_params)
