"""LTX2DFRTemporalRefinePipeline: one temporal refine round of LTX-2.5's DFR recipe.

A round doubles the frame rate: the canvas of N frames becomes 2 (N - 1) + 1 by the x2 temporal latent upsampler,
every keyframe moves to twice its frame, and the canvas is cut into 2^round windows on those keyframes
(`dfr_layout.temporal_tile_plan`). Each window is denoised on its own, with its inherited keyframes pinned at
strength 0.95, new slots generated midway between them (seeded from the interpolated latents), the stage-1 audio of
its playback window frozen, and an ancestral Euler step (eta 0.5) whose noise comes from the window's own seed
(`scheduler.ancestral_tile_seed`). The windows are stitched by dropping each later one's run-up; the keyframes of
the round (the inherited ones and the new slots) are handed on for the next round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..dfr_layout import temporal_tile_plan
from ..scheduler import TEMPORAL_ANCESTRAL_ETA, LTXEulerAncestralRFScheduler, ancestral_tile_seed
from ..versions import DISTILLED_SIGMA_VALUES
from .conditioning import LTX2VideoCondition
from .dfr import LTX2DFRPipeline, LTX2DFRPipelineOutput, conditioning_fps
from .latents import denormalize_video_latents, normalize_audio_latents, pack_audio_latents, unpack_video_latents

# The last four steps of the distilled schedule: a round starts from interpolated, mostly settled latents.
TEMPORAL_ROUND_DISTILLED_SIGMA_VALUES = DISTILLED_SIGMA_VALUES[4:]
# Inherited keyframes are held almost exactly: the round may still refine them a little.
ANCHOR_KEYFRAME_STRENGTH = 0.95


def audio_window(
    audio: torch.Tensor, pixel_start: int, tile_frames: int, playback_fps: float, source_seconds: float, fps: float,
    latents_per_second: float,
) -> torch.Tensor:
    """The packed stage-1 audio (B, T, C*M) of a window's playback time, [pixel_start, pixel_start + tile_frames) at
    `playback_fps` out of `source_seconds`, linearly resampled to the window's audio length at `fps`."""
    source = audio.shape[1]
    count = round(tile_frames / fps * latents_per_second)
    start = pixel_start / playback_fps / source_seconds * source
    span = tile_frames / playback_fps / source_seconds * source
    where = (start + span / count * torch.arange(count, device=audio.device, dtype=torch.float32)).clamp(0, source - 1)
    low = where.floor().long()
    high = (low + 1).clamp(max=source - 1)
    weight = (where - low).to(audio.dtype).view(1, -1, 1)
    return audio[:, low] * (1 - weight) + audio[:, high] * weight


class LTX2DFRTemporalRefinePipeline(LTX2DFRPipeline):
    """One DFR temporal refine round (LTX-2.5), with diffusers 0.42.1's components, arguments and outputs.

    Its scheduler must be `LTXEulerAncestralRFScheduler` with eta > 0; `from_pretrained` builds one with eta 0.5
    when none is passed (a folder's own scheduler is the flow-match one the other passes use, with which 0.42.1's
    `from_pretrained` gives a pipeline that refuses to run). Needs the `temporal_latent_upsampler` component
    (a folder's temporal_latent_upsampler/).
    """

    component_names = LTX2DFRPipeline.component_names + ("temporal_latent_upsampler",)
    offload_sequence = ("text_encoder", "connectors", "transformer", "temporal_latent_upsampler", "vae", "audio_vae",
                        "vocoder")

    @classmethod
    def from_pretrained(cls, path_or_repo_id: Any, torch_dtype: torch.dtype | None = None, **components: Any):
        components.setdefault("scheduler", LTXEulerAncestralRFScheduler(eta=TEMPORAL_ANCESTRAL_ETA))
        return super().from_pretrained(path_or_repo_id, torch_dtype, **components)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        latents: torch.Tensor | None = None,
        keyframes_latents: torch.Tensor | None = None,
        keyframe_positions: list[int] | None = None,
        audio_latents: torch.Tensor | None = None,
        conditions: LTX2VideoCondition | list[LTX2VideoCondition] | None = None,
        height: int = 704,
        width: int = 1216,
        num_frames: int = 121,
        frame_rate: float = 24.0,
        source_seconds: float | None = None,
        condition_num_frames: int | None = None,
        round_index: int = 1,
        sigmas: list[float] = TEMPORAL_ROUND_DISTILLED_SIGMA_VALUES,
        noise_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        decode_timestep: float | list[float] = 0.0,
        decode_noise_scale: float | list[float] | None = None,
        use_cross_timestep: bool = True,
        output_type: str = "pil",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (the reference's signature)
        max_sequence_length: int = 1024,
    ) -> LTX2DFRPipelineOutput | tuple:
        """Refine a previous pass's canvas (`latents`, raw, `num_frames` frames untrimmed, at `frame_rate`) with its
        `keyframes_latents` at `keyframe_positions` and its raw `audio_latents` into a canvas of 2 (num_frames - 1)
        + 1 frames at twice the rate. Later rounds pass `round_index` (2, 3, ...), the stage-1 `source_seconds` and
        the request's `condition_num_frames` (the frame count `conditions` index). The output keeps the whole
        canvas, decoded or not; keyframes and their positions come back with output_type="latent"."""
        conditions = [conditions] if isinstance(conditions, LTX2VideoCondition) else list(conditions or [])
        self.check_round_inputs(latents, keyframes_latents, keyframe_positions, audio_latents, round_index)
        self.check_dfr_inputs(prompt, prompt_embeds, prompt_attention_mask, height, width, num_frames, frame_rate, 1.0,
                              20.0, latents, keyframes_latents, None, None, True, sigmas, output_type, conditions)
        device = self.device
        embeds = self.encode_prompt(prompt, None, False, 1, prompt_embeds, None, prompt_attention_mask, None,
                                    max_sequence_length, device)
        context = self.text_context(*embeds, cfg=False)
        temporal = self.vae_temporal_compression_ratio
        video = self.upsampled_in_time(self.normalized(latents, device))
        carried = self.normalized(keyframes_latents, device)
        audio_vae = self.audio_vae
        audio = normalize_audio_latents(pack_audio_latents(audio_latents.to(device, torch.float32)),
                                        audio_vae.latents_mean, audio_vae.latents_std)
        canvas_frames, playback_fps = 2 * (num_frames - 1) + 1, 2 * frame_rate
        fps = conditioning_fps(playback_fps)
        seams = [2 * position for position in keyframe_positions]
        tiles = temporal_tile_plan(seams, canvas_frames, 2**round_index, temporal)
        encoded = self.encode_conditions(conditions, height, width, condition_num_frames or num_frames, device)
        latents_per_second = (audio_vae.config.sample_rate / audio_vae.config.mel_hop_length
                              / audio_vae.temporal_compression_ratio)
        source_seconds = num_frames / frame_rate if source_seconds is None else source_seconds
        batch, scale = embeds[0].shape[0], 2**round_index
        height_cells, width_cells = height // self.vae_spatial_compression_ratio, width // self.vae_spatial_compression_ratio
        pieces, keyframes = [], dict(zip(seams, carried.split(1, dim=2)))
        with self.progress_bar(total=len(sigmas) * len(tiles)) as bar:
            for index, tile in enumerate(tiles):
                window = video[:, :, tile.interval.start : tile.interval.end]
                tile_frames = (window.shape[2] - 1) * temporal + 1
                shift = tile.pixel_start
                tile_conditions = [(pixel * scale - shift, latent, strength, single)
                                   for pixel, latent, strength, single in encoded
                                   if tile.pixel_start <= pixel * scale <= tile.pixel_end]
                pinned = [(p - shift, keyframes[p], ANCHOR_KEYFRAME_STRENGTH) for p in tile.anchors]
                slots = [p - shift for p in tile.slots]
                # Each new slot starts from the interpolated latent frame nearest to it.
                seeds = [window[:, :, min(round(p / temporal), window.shape[2] - 1)][:, :, None] for p in slots]
                sequence = self.prepare_sequence(
                    batch, height, width, tile_frames, fps, noise_scale if noise_scale is not None else sigmas[0],
                    tile_conditions, pinned, slots or None, torch.cat(seeds, dim=2) if seeds else None, None, 1,
                    window, generator, device,
                )
                tile_audio = audio_window(audio, tile.pixel_start, tile_frames, playback_fps, source_seconds, fps,
                                          latents_per_second)
                ancestral = torch.Generator(device=device).manual_seed(ancestral_tile_seed(generator, round_index, index))
                denoised, _ = self.denoise_sequence(
                    sequence, tile_audio, context, sigmas, fps, True, None, ancestral, use_cross_timestep,
                    attention_kwargs, callback_on_step_end, callback_on_step_end_tensor_inputs, bar,
                    index * len(sigmas),
                )
                frames = window.shape[2]
                grid = unpack_video_latents(denoised[:, : frames * height_cells * width_cells], frames, height_cells,
                                            width_cells)
                pieces.append(grid[:, :, tile.interval.left_ramp :])
                if sequence.slots is not None:
                    new = unpack_video_latents(denoised[:, sequence.slots], len(slots), height_cells, width_cells)
                    for position, latent in zip(tile.slots, new.split(1, dim=2)):
                        keyframes.setdefault(position, latent)  # a slot two windows invent is kept from the first
        canvas = torch.cat(pieces, dim=2)
        positions = sorted(keyframes)
        output = self.deliver(canvas, audio, torch.cat([keyframes[p] for p in positions], dim=2), positions,
                              canvas_frames / playback_fps, output_type, decode_timestep, decode_noise_scale,
                              generator, context.video.dtype)
        self._release()
        return output if return_dict else (output.frames, output.audio, output.keyframes, output.keyframe_positions)

    def check_round_inputs(
        self, latents: torch.Tensor | None, keyframes_latents: torch.Tensor | None, keyframe_positions: list[int] | None,
        audio_latents: torch.Tensor | None, round_index: int,
    ) -> None:
        """What a round needs besides a DFR pass's arguments: the previous pass's outputs, the temporal upsampler
        and an ancestral scheduler."""
        if latents is None or keyframes_latents is None or keyframe_positions is None or audio_latents is None:
            raise ValueError("latents, keyframes_latents, keyframe_positions and audio_latents are required: the "
                             "previous DFR pass's outputs (output_type='latent')")
        if self.temporal_latent_upsampler is None:
            raise ValueError("LTX2DFRTemporalRefinePipeline needs the temporal_latent_upsampler component")
        if not isinstance(round_index, int) or round_index < 1:
            raise ValueError(f"round_index must be an integer >= 1, got {round_index!r}")
        if not isinstance(self.scheduler, LTXEulerAncestralRFScheduler) or not self.scheduler.config.eta > 0:
            raise ValueError(f"a temporal refine round needs LTXEulerAncestralRFScheduler(eta={TEMPORAL_ANCESTRAL_ETA}), "
                             f"got {self.scheduler!r}: a deterministic step would quietly lose the round's detail")

    def upsampled_in_time(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalized latents through the x2 temporal upsampler (which works on raw latents), normalized again."""
        upsampler = self._activate("temporal_latent_upsampler")
        vae = self.vae
        stats = (vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        raw = denormalize_video_latents(latents, *stats)
        return self.normalized(upsampler(raw.to(upsampler.dtype)), latents.device)
