"""LTX2DFRPipeline: one pass of LTX-2.5's Diffusion Fidelity Rendering (DFR), the 1080p recipe's building block.

A pass denoises one packed token sequence, laid out [base | keyframes | slots | reference]:
- base: the video's latent grid on a canvas padded to whole keyframe segments (`dfr_layout.resolve_canvas`);
- keyframes: frame conditions away from frame 0 and pinned guidance keyframes, each a clean target at its pixel
  frame (a condition at frame 0 replaces the grid's first tokens instead);
- slots: one generated single-pixel-frame latent per segment end, marked for the transformer's keyframe embedding
  (as is the grid's first latent frame, which the causal VAE also encodes from one pixel frame);
- reference: a clean IC-LoRA reference video (the previous stage's output), its positions scaled to this size.
Each token carries a conditioning strength m: it starts as m * clean + (1 - m) * (noise_scale noise + (1 -
noise_scale) latents), sees the timestep sigma (1 - m), and its x0 prediction (taken at its own sigma) is pulled to
the clean target by m. The noise is drawn once over the whole packed sequence.

The recipe composes passes: stage 1 at half size with slots, `LTX2LatentUpsamplePipeline` x2, stage 2 at full size
on the upsampled latents and slots with stage 1's latents as reference and its audio frozen, then the temporal
refine rounds (`LTX2DFRTemporalRefinePipeline`) and a spatially tiled epilogue pass (`video_tiles`) with the last
keyframes pinned. The transformer runs with the distilled schedule and no guidance: one call per step (per tile).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..dfr_layout import LTX2DFREpilogueTile, resolve_canvas, trim_canvas, video_tile_plan
from ..models.audio_vae import audio_latent_frames
from ..models.layers import randn
from ..models.transformer import video_positions
from ..scheduler import LTXEulerAncestralRFScheduler
from ..versions import DISTILLED_SIGMA_VALUES
from .conditioning import LTX2VideoCondition, keyframe_positions
from .latents import (
    denormalize_audio_latents,
    denormalize_video_latents,
    normalize_audio_latents,
    normalize_video_latents,
    pack_audio_latents,
    pack_video_latents,
    unpack_audio_latents,
    unpack_video_latents,
)
from .sampling import OUTPUT_TYPES, postprocess_video
from .text_to_video import DEFAULT_NUM_FRAMES, LTX2Pipeline, TextContext

# Strength of the keyframes pinned in the epilogue (they are settled content, held exactly).
EPILOGUE_KEYFRAME_STRENGTH = 1.0
# The transformer's positions run at the playback rate up to 30 fps and at 60 above (only muxing sees the rest).
SNAP_CONDITIONING_FPS_ABOVE = 30.0
MAX_CONDITIONING_FPS = 60.0


def conditioning_fps(frame_rate: float) -> float:
    return MAX_CONDITIONING_FPS if frame_rate > SNAP_CONDITIONING_FPS_ABOVE else frame_rate


@dataclass
class LTX2DFRPipelineOutput:
    """frames: video (as `output_type`; for "latent", the padded canvas's raw latents (B, C, F, H, W)); audio: the
    waveform, or raw audio latents; keyframes: raw slot (or pinned keyframe) latents (B, C, K, H, W) for the next
    pass, with their pixel frames `keyframe_positions` (both None unless output_type="latent")."""

    frames: Any
    audio: torch.Tensor
    keyframes: torch.Tensor | None = None
    keyframe_positions: list[int] | None = None


@dataclass
class PackedSequence:
    """The video sequence of one pass (float32): latents (B, S, C), clean targets (B, S, C), conditioning strength
    and keyframe marker (B, S, 1), positions (B, 3, S, 2), and where the slots are."""

    latents: torch.Tensor
    clean: torch.Tensor
    mask: torch.Tensor
    keyframes_mask: torch.Tensor
    coords: torch.Tensor
    slots: slice | None

    def append(self, tokens: torch.Tensor, coords: torch.Tensor, seed: torch.Tensor | None, strength: float,
               marked: bool) -> None:
        """Append `tokens` (B, N, C) as clean targets at `strength` (or, with `seed`, generated tokens starting from
        it), at positions `coords` (1 or B, 3, N, 2)."""
        batch, count = self.latents.shape[0], tokens.shape[1]
        self.latents = torch.cat([self.latents, torch.zeros_like(tokens) if seed is None else seed], dim=1)
        self.clean = torch.cat([self.clean, tokens if seed is None else torch.zeros_like(tokens)], dim=1)
        self.mask = torch.cat([self.mask, self.mask.new_full((batch, count, 1), float(strength))], dim=1)
        self.keyframes_mask = torch.cat([self.keyframes_mask, self.mask.new_full((batch, count, 1), float(marked))], 1)
        self.coords = torch.cat([self.coords, coords.to(self.coords).expand(batch, -1, -1, -1)], dim=2)


class LTX2DFRPipeline(LTX2Pipeline):
    """One DFR denoising pass (LTX-2.5), with diffusers 0.42.1's components, arguments, defaults and outputs.

    Needs a transformer with the keyframe embedding (`use_keyframes_abs_pos_embedding`) to generate slots. Without
    `num_frames` the duration head picks the length (121 without one). `output_type="latent"` returns the padded
    canvas and the slots for the next pass; any other output is trimmed to `num_frames` and decoded.
    """

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        conditions: LTX2VideoCondition | list[LTX2VideoCondition] | None = None,
        height: int = 704,
        width: int = 1216,
        num_frames: int | None = None,
        frame_rate: float = 24.0,
        min_seconds: float = 1.0,
        max_seconds: float = 20.0,
        latents: torch.Tensor | None = None,
        audio_latents: torch.Tensor | None = None,
        keyframes_latents: torch.Tensor | None = None,
        keyframe_positions: list[int] | None = None,
        reference_latents: torch.Tensor | None = None,
        reference_downscale_factor: int = 2,
        guidance_keyframe_latents: torch.Tensor | None = None,
        guidance_keyframe_positions: list[int] | None = None,
        guidance_keyframe_strength: float = EPILOGUE_KEYFRAME_STRENGTH,
        generate_slots: bool = True,
        sigmas: list[float] = DISTILLED_SIGMA_VALUES,
        noise_scale: float | None = None,
        freeze_audio: bool = False,
        video_tiles: list[LTX2DFREpilogueTile] | None = None,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        decode_timestep: float | list[float] = 0.0,
        decode_noise_scale: float | list[float] | None = None,
        use_cross_timestep: bool = True,
        system_prompt: str | None = None,
        enable_prompt_enhancement: bool = False,
        prompt_max_new_tokens: int | None = None,
        prompt_enhancement_kwargs: dict[str, Any] | None = None,
        prompt_enhancement_seed: int = 10,
        output_type: str = "pil",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (the reference's signature)
        max_sequence_length: int = 1024,
    ) -> LTX2DFRPipelineOutput | tuple:
        """Run one pass at `height` x `width` (this pass's size, not the recipe's output size).

        `latents` / `audio_latents` / `keyframes_latents` / `reference_latents` / `guidance_keyframe_latents` are raw
        (denormalized) latents, as a previous pass or the upsampler returns them. `keyframe_positions` are the slots'
        pixel frames (default: the canvas's segment ends); `video_tiles` (`dfr_layout.epilogue_tiles`) runs each step
        tile by tile and blends the predictions. `conditions` index latent frames: index 0 replaces the first frame,
        others are appended as keyframes. Returns (frames, audio, keyframes, keyframe_positions).
        """
        conditions = [conditions] if isinstance(conditions, LTX2VideoCondition) else list(conditions or [])
        self.check_dfr_inputs(prompt, prompt_embeds, prompt_attention_mask, height, width, num_frames, frame_rate,
                              min_seconds, max_seconds, latents, keyframes_latents, guidance_keyframe_latents,
                              guidance_keyframe_positions, generate_slots, sigmas, output_type, conditions)
        device = self.device
        noise_scale = sigmas[0] if noise_scale is None else noise_scale
        if enable_prompt_enhancement and prompt is not None:
            image = next((c.frames if not isinstance(c.frames, list) else c.frames[0] for c in conditions
                          if _is_picture(c.frames)), None)
            prompt = self.enhance_prompt(prompt, system_prompt, prompt_max_new_tokens, prompt_enhancement_seed,
                                         generator, prompt_enhancement_kwargs, image=image)
        embeds = self.encode_prompt(prompt, None, False, num_videos_per_prompt, prompt_embeds, None,
                                    prompt_attention_mask, None, max_sequence_length, device)
        context = self.text_context(*embeds, cfg=False)
        if num_frames is None:
            num_frames = (DEFAULT_NUM_FRAMES if self.duration_head is None else
                          self.predict_duration(context, False, frame_rate, min_seconds, max_seconds).num_frames)
        canvas_frames, _, segment_ends = resolve_canvas(num_frames, self.vae_temporal_compression_ratio)
        slot_positions = (list(keyframe_positions or segment_ends)) if generate_slots else None
        fps = conditioning_fps(frame_rate)
        batch = embeds[0].shape[0]
        pinned = [(position, self.normalized(guidance_keyframe_latents[:, :, i : i + 1], device),
                   guidance_keyframe_strength) for i, position in enumerate(guidance_keyframe_positions or [])]
        sequence = self.prepare_sequence(
            batch, height, width, canvas_frames, fps, noise_scale,
            self.encode_conditions(conditions, height, width, canvas_frames, device), pinned, slot_positions,
            self.normalized(keyframes_latents, device), self.normalized(reference_latents, device),
            reference_downscale_factor, self.normalized(latents, device), generator, device,
        )
        grid = (self.latent_frames(canvas_frames), height // self.vae_spatial_compression_ratio,
                width // self.vae_spatial_compression_ratio)
        plan = None if video_tiles is None else video_tile_plan(video_tiles, sequence.coords, *grid)
        audio_frames = audio_latent_frames(canvas_frames, frame_rate, self.audio_vae.config.sample_rate,
                                           self.audio_vae.config.mel_hop_length, self.audio_vae.temporal_compression_ratio)
        audio = self.prepare_dfr_audio(batch, audio_frames, audio_latents, 0.0 if freeze_audio else noise_scale,
                                       generator, device)
        video, audio = self.denoise_sequence(sequence, audio, context, sigmas, fps, freeze_audio, plan, generator,
                                             use_cross_timestep, attention_kwargs, callback_on_step_end,
                                             callback_on_step_end_tensor_inputs)
        output = self.finish(video, audio, sequence, grid, slot_positions, pinned, num_frames, frame_rate, output_type,
                             decode_timestep, decode_noise_scale, generator, context.video.dtype)
        self._release()
        return output if return_dict else (output.frames, output.audio, output.keyframes, output.keyframe_positions)

    def latent_frames(self, pixel_frames: int) -> int:
        return (pixel_frames - 1) // self.vae_temporal_compression_ratio + 1

    def check_dfr_inputs(
        self, prompt: Any, prompt_embeds: torch.Tensor | None, prompt_attention_mask: torch.Tensor | None, height: int,
        width: int, num_frames: int | None, frame_rate: float, min_seconds: float, max_seconds: float,
        latents: torch.Tensor | None, keyframes_latents: torch.Tensor | None,
        guidance_keyframe_latents: torch.Tensor | None, guidance_keyframe_positions: list[int] | None,
        generate_slots: bool, sigmas: list[float], output_type: str, conditions: list[LTX2VideoCondition],
    ) -> None:
        """Reject bad arguments before any model runs, naming the argument, its value and the rule."""
        spatial, temporal = self.vae_spatial_compression_ratio, self.vae_temporal_compression_ratio
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of prompt and prompt_embeds")
        if prompt_embeds is not None and prompt_attention_mask is None:
            raise ValueError("prompt_embeds needs prompt_attention_mask")
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or value <= 0 or value % spatial:
                raise ValueError(f"{name} must be a positive multiple of {spatial}, got {value}")
        if num_frames is not None and (not isinstance(num_frames, int) or num_frames < temporal + 1
                                       or (num_frames - 1) % temporal):
            raise ValueError(f"num_frames must be {temporal}k+1 with k >= 1 (the DFR canvas needs at least one "
                             f"segment), got {num_frames}")
        self.check_length_and_decoder(prompt, prompt_embeds, num_frames, min_seconds, max_seconds, 1.0, "vae",
                                      output_type)
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        if not sigmas:
            raise ValueError("sigmas is empty")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if generate_slots and not self.transformer.config.use_keyframes_abs_pos_embedding:
            raise ValueError("generate_slots=True needs a transformer with use_keyframes_abs_pos_embedding (LTX-2.5): "
                             "without the learned keyframe marker it cannot tell slot tokens from the video")
        for name, value in (("latents", latents), ("keyframes_latents", keyframes_latents),
                            ("guidance_keyframe_latents", guidance_keyframe_latents)):
            if value is not None and value.ndim != 5:
                raise ValueError(f"{name} must be raw 5-D latents (batch, channels, frames, height, width), "
                                 f"got shape {tuple(value.shape)}")
        if keyframes_latents is not None and not generate_slots:
            raise ValueError("keyframes_latents seeds generated slots: set generate_slots=True or leave it out")
        if guidance_keyframe_latents is not None and guidance_keyframe_positions is None:
            raise ValueError("guidance_keyframe_latents needs guidance_keyframe_positions (their pixel frames)")
        for i, condition in enumerate(conditions):
            if not isinstance(condition, LTX2VideoCondition):
                raise ValueError(f"conditions[{i}] must be an LTX2VideoCondition, got {type(condition).__name__}")

    def prepare_sequence(
        self, batch: int, height: int, width: int, canvas_frames: int, fps: float, noise_scale: float,
        conditions: list[tuple[int, torch.Tensor, float, bool]], pinned: list[tuple[int, torch.Tensor, float]],
        slot_positions: list[int] | None, slot_seeds: torch.Tensor | None, reference: torch.Tensor | None,
        reference_downscale_factor: int, latents: torch.Tensor | None, generator: Any, device: torch.device,
    ) -> PackedSequence:
        """The noised packed sequence [base | keyframes | slots | reference] and its per-token conditioning.

        Every latent here is normalized: `conditions` as `encode_conditions` returns them (placed by pixel frame; 0
        replaces the first frame), `pinned` keyframes (pixel frame, (B, C, 1, h, w), strength), the slots' starting
        content `slot_seeds` (B, C, K, h, w), the `reference` video and the base `latents`."""
        spatial, temporal = self.vae_spatial_compression_ratio, self.vae_temporal_compression_ratio
        frames, latent_height, latent_width = self.latent_frames(canvas_frames), height // spatial, width // spatial
        channels = self.transformer.config.in_channels
        base = (torch.zeros(batch, frames * latent_height * latent_width, channels, device=device) if latents is None
                else pack_video_latents(latents))
        config = self.transformer.config
        coords = video_positions(batch, frames, latent_height, latent_width, tuple(config.vae_scale_factors),
                                 config.causal_offset, fps, device)
        zeros = base.new_zeros((*base.shape[:2], 1))
        keyframes_mask = zeros.clone()
        keyframes_mask[:, : latent_height * latent_width] = 1.0  # the causal first latent frame is one pixel frame
        sequence = PackedSequence(base, torch.zeros_like(base), zeros, keyframes_mask, coords, None)
        scales = (temporal, spatial, spatial)
        for pixel_frame, encoded, strength, single in conditions:
            tokens = pack_video_latents(encoded).expand(batch, -1, -1)
            if pixel_frame == 0:  # replaces the first frame's targets; the noisy tokens keep the base latents
                sequence.mask[:, : tokens.shape[1]] = strength
                sequence.clean[:, : tokens.shape[1]] = tokens
                continue
            positions = keyframe_positions(*encoded.shape[2:], pixel_frame, single, scales, fps, device)
            sequence.append(tokens, positions, None, strength, marked=False)
        for pixel_frame, latent, strength in pinned:
            positions = keyframe_positions(*latent.shape[2:], pixel_frame, True, scales, fps, device)
            sequence.append(pack_video_latents(latent), positions, None, strength, marked=False)
        if slot_positions:
            seeds = (torch.zeros(batch, len(slot_positions) * latent_height * latent_width, channels, device=device)
                     if slot_seeds is None else pack_video_latents(slot_seeds))
            positions = torch.cat([keyframe_positions(1, latent_height, latent_width, position, True, scales, fps,
                                                      device) for position in slot_positions], dim=2)
            start = sequence.latents.shape[1]
            sequence.append(seeds, positions, seeds, 0.0, marked=True)
            sequence.slots = slice(start, sequence.latents.shape[1])
        if reference is not None:
            positions = video_positions(1, *reference.shape[2:], tuple(config.vae_scale_factors), config.causal_offset,
                                        fps, device)
            positions = positions * torch.tensor([1.0, reference_downscale_factor, reference_downscale_factor],
                                                 device=device).view(1, 3, 1, 1)
            sequence.append(pack_video_latents(reference).expand(batch, -1, -1), positions, None, 1.0, marked=False)
        noise = randn(tuple(sequence.latents.shape), generator, device, torch.float32)
        noisy = noise * noise_scale + sequence.latents * (1 - noise_scale)
        sequence.latents = sequence.clean * sequence.mask + noisy * (1 - sequence.mask)
        return sequence

    def normalized(self, latents: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
        """Raw video latents -> the transformer's normalized float32 latents (None stays None)."""
        if latents is None:
            return None
        vae = self.vae
        return normalize_video_latents(latents.to(device).float(), vae.latents_mean, vae.latents_std,
                                       vae.config.scaling_factor)

    def encode_conditions(
        self, conditions: list[LTX2VideoCondition], height: int, width: int, num_frames: int, device: torch.device
    ) -> list[tuple[int, torch.Tensor, float, bool]]:
        """(pixel frame, normalized latents (1, C, f, h, w), strength, single pixel frame) per condition; a condition
        index past the video's latent frames is skipped, as in 0.42.1."""
        temporal, frames = self.vae_temporal_compression_ratio, self.latent_frames(num_frames)
        encoded = []
        for condition in conditions:
            index = condition.index % frames if condition.index < 0 else condition.index
            if index >= frames:
                continue
            pixel_frame = 0 if index == 0 else (index - 1) * temporal + 1
            pixels = self.condition_pixels(condition, height, width)
            length = (min(pixels.shape[2], num_frames - max(pixel_frame, 0)) - 1) // temporal * temporal + 1
            latent = self.encode_pixels(pixels[:, :, :length], device)
            encoded.append((pixel_frame, latent, condition.strength, length == 1))
        return encoded

    def prepare_dfr_audio(
        self, batch: int, audio_frames: int, audio_latents: torch.Tensor | None, noise_scale: float, generator: Any,
        device: torch.device,
    ) -> torch.Tensor:
        """Packed (B, T, C*M) audio: fresh noise drawn in the packed shape, or the given raw latents normalized and
        re-noised by noise_scale (0 keeps them as they are, the noise still drawn)."""
        audio_vae = self.audio_vae
        if audio_latents is None:
            shape = (batch, audio_frames, audio_vae.config.latent_channels * self.audio_latent_mel_bins)
            return randn(shape, generator, device, torch.float32)
        packed = normalize_audio_latents(pack_audio_latents(audio_latents.to(device)), audio_vae.latents_mean,
                                         audio_vae.latents_std)
        noise = randn(tuple(packed.shape), generator, packed.device, packed.dtype)
        return (noise_scale * noise + (1 - noise_scale) * packed).float()

    def sampler(self, sigmas: list[float], generator: Any, device: torch.device) -> tuple[torch.Tensor, Any, Any]:
        """(timesteps to walk, the video stream's step, the audio stream's step) for this pass's `sigmas`, each step
        (index, t, velocity, sample) -> sample. The Euler scheduler's schedule is made per call and appends the final
        0; an ancestral scheduler (copied, so the pipeline's is left as it is) is given the 0 and its last timestep
        is not walked; the video draws its noise from `generator`, the audio (never, in the recipe: it is frozen
        there) from the global stream, as 0.42.1's."""
        sigmas = [float(sigma) for sigma in sigmas]
        if isinstance(self.scheduler, LTXEulerAncestralRFScheduler):
            video, audio = copy.deepcopy(self.scheduler), copy.deepcopy(self.scheduler)
            for scheduler in (video, audio):
                scheduler.set_timesteps(sigmas=sigmas if sigmas[-1] == 0.0 else [*sigmas, 0.0], device=device)
            return (video.timesteps[:-1], video.sigmas,
                    lambda i, t, v, x: video.step(v, t, x, generator=generator, return_dict=False)[0],
                    lambda i, t, v, x: audio.step(v, t, x, return_dict=False)[0])
        schedule = self.scheduler.schedule(sigmas=sigmas, device=device)

        def euler(i: int, t: torch.Tensor, velocity: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
            return schedule.step(i, velocity, sample)

        return schedule.timesteps, schedule.sigmas, euler, euler

    def denoise_sequence(
        self, sequence: PackedSequence, audio: torch.Tensor, context: TextContext, sigmas: list[float], fps: float,
        freeze_audio: bool, plan: list | None, generator: Any, use_cross_timestep: bool,
        attention_kwargs: dict[str, Any] | None, callback: Callable[..., dict[str, Any]] | None,
        callback_tensor_inputs: list[str], progress: Any = None, step_offset: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The sampling loop over `sigmas`: one transformer call per step (per tile with a `plan`), x0 taken at each
        token's own sigma and pulled to the clean targets, then the scheduler's step from the blended x0. Frozen
        audio stays at timestep 0 and is not stepped (video still attends to it)."""
        transformer = self._activate("transformer")
        device, latents, batch = audio.device, sequence.latents, audio.shape[0]
        timesteps, schedule_sigmas, step_video, step_audio = self.sampler(sigmas, generator, device)
        ancestral = isinstance(self.scheduler, LTXEulerAncestralRFScheduler) and self.scheduler.config.eta > 0
        mask, clean = sequence.mask, sequence.clean
        total = self.scheduler.config.num_train_timesteps
        bar = progress if progress is not None else self.progress_bar(total=len(timesteps))
        for i, t in enumerate(timesteps):
            scalar = t.expand(batch)
            video_t = scalar[:, None] * (1 - mask[..., 0])  # (B, S)
            audio_t = torch.zeros(batch, device=device, dtype=t.dtype) if freeze_audio else scalar
            shared = dict(
                audio_hidden_states=audio.to(context.video.dtype), encoder_hidden_states=context.video,
                audio_encoder_hidden_states=context.audio, audio_timestep=audio_t, sigma=scalar, audio_sigma=audio_t,
                encoder_attention_mask=context.mask, audio_encoder_attention_mask=context.mask, fps=fps,
                audio_num_frames=audio.shape[1], use_cross_timestep=use_cross_timestep,
                attention_kwargs=attention_kwargs, return_dict=False,
            )
            if plan is None:
                velocity, audio_velocity = transformer(
                    hidden_states=latents.to(context.video.dtype), timestep=video_t,
                    video_keyframes_mask=sequence.keyframes_mask, video_coords=sequence.coords, **shared)
            else:
                velocity, audio_velocity = self.tiled_prediction(transformer, plan, latents, video_t, sequence,
                                                                 context.video.dtype, shared)
            x0 = latents.float() - velocity.float() * (video_t / total)[..., None]
            x0 = x0 * (1 - mask) + clean.float() * mask
            sigma = schedule_sigmas[i]
            latents = step_video(i, t, (latents.float() - x0) / sigma, latents)
            if ancestral:  # the ancestral step renoises every token: pull the conditioned ones back to their targets
                latents = (latents.float() * (1 - mask) + clean.float() * mask).to(latents.dtype)
            if not freeze_audio:
                audio_x0 = audio.float() - audio_velocity.float() * sigma
                audio = step_audio(i, t, (audio.float() - audio_x0) / sigma, audio)
            if callback is not None:
                latents = callback(self, step_offset + i, t, {"latents": latents} if callback_tensor_inputs else {}).pop(
                    "latents", latents)
            bar.update()
        if progress is None:
            bar.close()
        return latents, audio

    @staticmethod
    def tiled_prediction(
        transformer: torch.nn.Module, plan: list, latents: torch.Tensor, video_t: torch.Tensor,
        sequence: PackedSequence, dtype: torch.dtype, shared: dict[str, Any],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One transformer call per tile on its tokens; the velocities blended by the tiles' weights (they sum to one
        per token), the audio velocities averaged over the tiles."""
        velocity = torch.zeros_like(latents, dtype=torch.float32)
        audio_velocity = None
        for tile in plan:
            tile_velocity, tile_audio = transformer(
                hidden_states=latents[:, tile.keep].to(dtype), timestep=video_t[:, tile.keep],
                video_keyframes_mask=sequence.keyframes_mask[:, tile.keep], video_coords=tile.coords, **shared)
            velocity.index_add_(1, tile.keep, tile_velocity.float() * tile.weights.float().view(1, -1, 1))
            share = tile_audio.float() / len(plan)
            audio_velocity = share if audio_velocity is None else audio_velocity + share
        return velocity.to(latents.dtype), audio_velocity

    def finish(
        self, video: torch.Tensor, audio: torch.Tensor, sequence: PackedSequence, grid: tuple[int, int, int],
        slot_positions: list[int] | None, pinned: list, num_frames: int, frame_rate: float, output_type: str,
        decode_timestep: float | list[float], decode_noise_scale: float | list[float] | None, generator: Any,
        dtype: torch.dtype,
    ) -> LTX2DFRPipelineOutput:
        """Split the sequence into the canvas and the slots (or, without slots, the pinned keyframes), then deliver
        them, a decoded canvas trimmed to `num_frames`."""
        frames, height, width = grid
        canvas = unpack_video_latents(video[:, : frames * height * width], frames, height, width)
        keyframes, positions = None, slot_positions
        if sequence.slots is not None and slot_positions:
            keyframes = unpack_video_latents(video[:, sequence.slots], len(slot_positions), height, width)
        elif pinned:  # the epilogue: hand back the keyframes it was given
            keyframes = torch.cat([latent for _, latent, _ in pinned], dim=2)
            positions = [position for position, _, _ in pinned]
        canvas = canvas if output_type == "latent" else trim_canvas(canvas, num_frames, self.vae_temporal_compression_ratio)
        return self.deliver(canvas, audio, keyframes, positions, num_frames / frame_rate, output_type, decode_timestep,
                            decode_noise_scale, generator, dtype)

    def deliver(
        self, canvas: torch.Tensor, audio: torch.Tensor, keyframes: torch.Tensor | None, positions: list[int] | None,
        seconds: float, output_type: str, decode_timestep: float | list[float],
        decode_noise_scale: float | list[float] | None, generator: Any, dtype: torch.dtype, decoder: str = "vae",
    ) -> LTX2DFRPipelineOutput:
        """Normalized canvas (B, C, F, H, W), packed audio and keyframes -> raw latents (output_type="latent"), or
        the canvas decoded (through the VAE, or the diffusion decoder for decoder="diffusion") and the waveform cut
        to `seconds` (then no keyframes: decoding ends the recipe)."""
        vae, audio_vae = self.vae, self.audio_vae
        raw_audio = unpack_audio_latents(
            denormalize_audio_latents(audio, audio_vae.latents_mean, audio_vae.latents_std), self.audio_latent_mel_bins)
        stats = (vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        if output_type == "latent":
            raw_keyframes = None if keyframes is None else denormalize_video_latents(keyframes, *stats)
            return LTX2DFRPipelineOutput(denormalize_video_latents(canvas, *stats), raw_audio, raw_keyframes, positions)
        pixels = self.decode_pixels(canvas.to(dtype), stats, decoder, decode_timestep, decode_noise_scale, generator)
        audio_vae = self._activate("audio_vae")
        waveform = self._activate("vocoder")(audio_vae.decode(raw_audio.to(audio_vae.dtype), return_dict=False)[0])
        samples = round(seconds * self.vocoder.config.output_sampling_rate)
        return LTX2DFRPipelineOutput(postprocess_video(pixels, output_type), waveform[..., :samples])

def _is_picture(frames: Any) -> bool:
    import PIL.Image

    return isinstance(frames, PIL.Image.Image) or (isinstance(frames, list) and bool(frames)
                                                   and isinstance(frames[0], PIL.Image.Image))
