"""LTX2Pipeline: text -> video with synchronized audio."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import torch

from ..loading.lora import LoraLoaderMixin
from ..models.audio_vae import audio_latent_frames
from ..models.duration_head import frames_for_duration
from ..models.transformer import video_positions
from ..prompt_enhancement import (
    GENERATION_KWARGS,
    MAX_NEW_TOKENS,
    SEED,
    default_system_prompt,
    enhance,
    enhancer_image,
    generation_model,
    processor_for,
)
from ..scheduler import Schedule, calculate_shift
from ..text import PADDING_SIDE, PromptEncoder
from ..versions import (
    DEFAULT_IMAGE_CRF,
    GEMMA_4_MODEL_TYPES,
    LTX_2_5,
    LTX_2_5_IMAGE_CRF,
    config_version,
    resolve_call_kwargs,
)
from .base import Pipeline
from .conditioning import (
    ConditioningInputs,
    ConditioningItem,
    ConditioningStages,
    LatentConditioning,
    condition_latents,
    noised,
)
from .guidance import Guidance, run_guidance_passes
from .images import read_image
from .latents import (
    denormalize_audio_latents,
    denormalize_video_latents,
    normalize_audio_latents,
    normalize_video_latents,
    pack_audio_latents,
    pack_video_latents,
    unpack_audio_latents,
    unpack_video_latents,
    video_latent_statistics,
)
from .parallel import parallelize_pipeline
from .sampling import (
    OUTPUT_TYPES,
    LTX2PipelineOutput,
    decode_noise,
    postprocess_video,
    randn,
    renoise,
)

# The text context is fixed before the loop starts, so only the latents can be changed by a callback.
CALLBACK_TENSORS = ("latents",)
# The length of a call that gives no num_frames, on a pipeline without a duration head (as diffusers 0.42.1).
DEFAULT_NUM_FRAMES = 121
DECODERS = ("vae", "diffusion")


@dataclass(frozen=True)
class Duration:
    """What the duration head chose: the predicted seconds (before clamping) and the frame count generated."""

    seconds: float
    num_frames: int


@dataclass
class Geometry:
    """Latent sizes of one generation: video (frames, height, width) tokens, audio frames, and the frame rate."""

    frames: int
    height: int
    width: int
    audio_frames: int
    fps: float

    @property
    def video_tokens(self) -> int:
        return self.frames * self.height * self.width


@dataclass
class TextContext:
    """The connectors' output for the whole (CFG-batched) call: per-stream text and its mask."""

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


class LTX2Pipeline(LoraLoaderMixin, ConditioningStages, Pipeline):
    """Text to video+audio with LTX-2. Components and call arguments follow diffusers' LTX2Pipeline."""

    # processor: Gemma's chat and image processor, optional (prompt enhancement builds one from the tokenizer).
    # duration_head (LTX-2.5): picks the length when num_frames is None. diffusion_decoder (LTX-2.5): the
    # decoder="diffusion" path; a folder's diffusion_decoder/ subfolder is loaded with the rest.
    component_names = ("scheduler", "vae", "audio_vae", "text_encoder", "tokenizer", "connectors", "transformer",
                       "vocoder", "processor", "duration_head", "diffusion_decoder")
    offload_sequence = ("text_encoder", "connectors", "duration_head", "transformer", "vae", "diffusion_decoder",
                        "audio_vae", "vocoder")
    # A pipeline without sound (HDR) runs the audio stream on noise it never steps: the transformer needs it.
    steps_audio: ClassVar[bool] = True

    def __init__(self, **components: Any):
        super().__init__(**components)
        self.prompt_encoder = PromptEncoder()
        self._guidance_groups = None  # set by enable_parallelism

    def enable_parallelism(self, ulysses_degree: int | None = None, guidance_degree: int = 1) -> None:
        """Share each generation among the ranks of torch.distributed (see ltx2.pipelines.parallel): the transformer's
        tokens over groups of `ulysses_degree` ranks (default: world size / guidance_degree), the guidance passes
        of each step over `guidance_degree` such groups, and the tiles of a tiled VAE decode over all ranks.

        Call on every rank after init_process_group and after placing the pipeline on its device; every rank
        then runs each call with the same arguments and returns the same result.
        """
        self._guidance_groups = parallelize_pipeline(self, ulysses_degree, guidance_degree)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int = 512,
        width: int = 768,
        num_frames: int | None = None,
        min_seconds: float = 1.0,
        max_seconds: float = 20.0,
        frame_rate: float = 24.0,
        motion_speed: float = 1.0,
        num_inference_steps: int | None = None,
        sigmas: list[float] | None = None,
        timesteps: list[float] | None = None,
        guidance_scale: float | None = None,
        stg_scale: float | None = None,
        modality_scale: float | None = None,
        guidance_rescale: float | None = None,
        audio_guidance_scale: float | None = None,
        audio_stg_scale: float | None = None,
        audio_modality_scale: float | None = None,
        audio_guidance_rescale: float | None = None,
        spatio_temporal_guidance_blocks: list[int] | None = None,
        noise_scale: float = 0.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        audio_latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        decode_timestep: float | list[float] = 0.0,
        decode_noise_scale: float | list[float] | None = None,
        use_cross_timestep: bool | None = None,
        system_prompt: str | None = None,
        enable_prompt_enhancement: bool = False,
        prompt_max_new_tokens: int | None = None,
        prompt_enhancement_kwargs: dict[str, Any] | None = None,
        prompt_enhancement_seed: int = SEED,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (the reference's signature)
        max_sequence_length: int = 1024,
        decoder: str = "vae",
        *,
        _conditioning: ConditioningInputs | None = None,
        _schedule_overrides: dict[str, Any] | None = None,
        _text_context: TextContext | None = None,
    ) -> LTX2PipelineOutput | tuple[Any, torch.Tensor]:
        """Generate video and audio. Arguments are diffusers' LTX2Pipeline's, plus `decoder`.

        Steps and guidance left at None take the defaults of the model's LTX version (`default_call_kwargs()`):
        LTX-2.0 keeps 40 steps and plain CFG 4.0 on both streams; LTX-2.3 and LTX-2.5 get diffusers 0.42.1's 30 steps,
        CFG 3, STG 1 on block 28, modality 3, rescale 0.7, audio CFG 7, cross timestep. An audio scale left at None
        takes its video value on LTX-2.0 (the 2.3/2.5 default there); an explicit 0.0 means zero, where diffusers'
        `audio_x or x` would silently take the video value instead.

        LTX-2.5's distilled transformer is documented (diffusers 0.42.1) with `sigmas=DISTILLED_SIGMA_VALUES,
        guidance_scale=1.0, audio_guidance_scale=1.0`: that call still runs STG, modality guidance and rescale at
        their defaults (three transformer passes a step), as 0.42.1 does. For a truly unguided call (one pass a step)
        also pass `stg_scale=0.0, audio_stg_scale=0.0, modality_scale=1.0, audio_modality_scale=1.0,
        guidance_rescale=0.0, audio_guidance_rescale=0.0`. Without `sigmas`, LTX-2.5's scheduler (no dynamic
        shifting) runs the plain linear schedule linspace(1, 1/steps, steps), as 0.42.1 does.

        `num_frames=None` lets the duration head (LTX-2.5 folders) choose the length from the positive prompt at the
        playback `frame_rate`, within [min_seconds, max_seconds], on the 8k+1 grid (`predict_duration`); without
        a head it is 121. One prompt only, then (a list of several is a ValueError, as in 0.42.1). `motion_speed`
        below 1 slows the motion: positions run at frame_rate / motion_speed while the audio follows frame_rate.

        `decoder="diffusion"` decodes the video through the `diffusion_decoder` component (LTX-2.5) instead of the
        VAE, drawing its noise from `generator` after sampling: the same as `output_type="latent"` followed by
        `LTX2VideoDiffusionDecodePipeline(...)(latents, generator=generator, denormalize=False)` with that
        generator. With `enable_prompt_enhancement`, Gemma first rewrites each prompt (see `enhance_prompt`). Pass
        `output_type="latent"` to get (video latents (B, 128, F, H, W), audio latents (B, 8, T, 16)), both
        denormalized, ready to be upsampled and fed back as `latents=` / `audio_latents=`.
        `_conditioning` is how the conditioned pipelines (image to video, conditions, references) pass their
        inputs in; `_schedule_overrides` replaces scheduler config values for this call only (the distilled stages
        take their sigmas as given: use_dynamic_shifting=False, shift_terminal=None); `_text_context` is the
        connectors' output given in place of the text encoder and connectors ([negative; positive] under CFG). None
        of the three is one of diffusers' arguments.
        """
        inputs = _conditioning or ConditioningInputs()
        options = self.default_call_kwargs(
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, stg_scale=stg_scale,
            modality_scale=modality_scale, guidance_rescale=guidance_rescale, audio_guidance_scale=audio_guidance_scale,
            audio_stg_scale=audio_stg_scale, audio_modality_scale=audio_modality_scale,
            audio_guidance_rescale=audio_guidance_rescale, use_cross_timestep=use_cross_timestep,
            spatio_temporal_guidance_blocks=spatio_temporal_guidance_blocks,
        )
        guidance = Guidance.from_call_kwargs(options)
        predict_length = num_frames is None and self.duration_head is not None
        if num_frames is None and not predict_length:
            num_frames = DEFAULT_NUM_FRAMES
        self.check_inputs(
            prompt, height, width, num_frames, frame_rate, options["num_inference_steps"], sigmas, output_type, latents,
            audio_latents, prompt_embeds, prompt_attention_mask, negative_prompt_embeds,
            negative_prompt_attention_mask, callback_on_step_end_tensor_inputs, max_sequence_length, guidance,
            options["spatio_temporal_guidance_blocks"], prompt_max_new_tokens, prompt_enhancement_kwargs,
        )
        self.check_length_and_decoder(prompt, prompt_embeds, num_frames, min_seconds, max_seconds, motion_speed,
                                      decoder, output_type)
        self.check_conditioning(inputs, height, width, num_frames, latents)
        device = self.device
        if enable_prompt_enhancement and prompt is not None:
            prompt = self.enhance_prompt(prompt, system_prompt, prompt_max_new_tokens, prompt_enhancement_seed,
                                         generator, prompt_enhancement_kwargs, image=inputs.enhancement_image())
        context = _text_context or self.text_context(*self.encode_prompt(
            prompt, negative_prompt, guidance.cfg, num_videos_per_prompt, prompt_embeds, negative_prompt_embeds,
            prompt_attention_mask, negative_prompt_attention_mask, max_sequence_length, device,
        ), cfg=guidance.cfg)
        batch = context.video.shape[0] // (2 if guidance.cfg else 1)
        if predict_length:
            num_frames = self.predict_duration(context, guidance.cfg, frame_rate, min_seconds, max_seconds).num_frames
            self.check_conditioning(inputs, height, width, num_frames, latents)
        geometry = self.geometry(height, width, num_frames, frame_rate, latents, audio_latents, motion_speed)
        items = self.condition_items(inputs, geometry, batch, latents, device)
        video, conditioning = self.prepare_latents(batch, geometry, noise_scale, generator, latents, device, items)
        audio = self.prepare_audio_latents(batch, geometry, noise_scale, generator, audio_latents, device)
        schedule = self.schedule(options["num_inference_steps"], sigmas, timesteps, video.shape[1], device,
                                 _schedule_overrides or {})
        video, audio = self.denoise(
            video, audio, context, geometry, schedule, guidance, callback_on_step_end,
            callback_on_step_end_tensor_inputs, conditioning,
        )
        frames, waveform = self.decode(video, audio, geometry, output_type, decode_timestep, decode_noise_scale,
                                       generator, decoder)
        self._release()
        return LTX2PipelineOutput(frames=frames, audio=waveform) if return_dict else (frames, waveform)

    @classmethod
    def call_arguments(cls, **given: Any) -> dict[str, Any]:
        """LTX2Pipeline's call arguments: those given, the others at their defaults (pipelines that add inputs
        pass the rest through with this)."""
        bound = inspect.signature(LTX2Pipeline.__call__).bind(None, **given)
        bound.apply_defaults()
        return {name: value for name, value in bound.arguments.items() if name not in ("self", "_conditioning")}

    @property
    def model_version(self) -> str:
        """The LTX version of this pipeline's networks ("2.0", "2.3" or "2.5"), read from the component configs (a
        Gemma 4 text encoder is LTX-2.5's)."""
        transformer = self.transformer.config if self.transformer is not None else {}
        connectors = self.connectors.config if self.connectors is not None else {}
        text_config = getattr(self.text_encoder, "config", None)
        text_encoder = {"model_type": getattr(text_config, "model_type", None)}
        return config_version(transformer, connectors, text_encoder)

    def default_call_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The steps and guidance a call uses for this pipeline's LTX version, with `overrides` (call arguments;
        None ones ignored) in their place: what `__call__` resolves its None arguments to."""
        return resolve_call_kwargs(self.model_version, overrides)

    @property
    def default_image_crf(self) -> int:
        """The H.264 CRF images are re-compressed at when none is given: 18 with a Gemma 4 text encoder (LTX-2.5),
        33 otherwise, as diffusers 0.42.1 picks it; without a text encoder, by the model version."""
        if self.text_encoder is None:
            return LTX_2_5_IMAGE_CRF if self.model_version == LTX_2_5 else DEFAULT_IMAGE_CRF
        model_type = getattr(self.text_encoder.config, "model_type", None)
        return LTX_2_5_IMAGE_CRF if model_type in GEMMA_4_MODEL_TYPES else DEFAULT_IMAGE_CRF

    def predict_duration(
        self, context: TextContext, cfg: bool, frame_rate: float, min_seconds: float = 1.0, max_seconds: float = 20.0
    ) -> Duration:
        """The duration head's length for the call's first positive prompt: its seconds and the frame count on the
        VAE's 8k+1 grid within [min_seconds, max_seconds] at `frame_rate` (the rule of diffusers 0.42.1)."""
        video, audio = context.video, context.audio
        if cfg:  # the connectors ran on [negative; positive]
            video, audio = video.chunk(2)[1], audio.chunk(2)[1]
        head = self._activate("duration_head")
        seconds = head(video[:1], audio[:1]).item()
        frames = frames_for_duration(seconds, frame_rate, self.vae_temporal_compression_ratio, min_seconds,
                                     max_seconds)
        return Duration(seconds, frames)

    def enhance_prompt(
        self,
        prompt: str | list[str],
        system_prompt: str | None = None,
        max_new_tokens: int | None = None,
        seed: int = SEED,
        generator: torch.Generator | list[torch.Generator] | None = None,
        generation_kwargs: dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        image: PIL.Image.Image | str | Path | None = None,
    ) -> list[str]:
        """Each prompt rewritten by the text encoder (Gemma 3), with the system prompt for text-to-video, or for
        image-to-video when `image` (the first frame) is given, as diffusers 0.42.1 does for LTX-2.0/2.3.

        system_prompt None takes the one diffusers ships (its T2V/I2V_DEFAULT_SYSTEM_PROMPT; diffusers itself
        requires one). Gemma runs where it lives unless `device` is given. Sampling uses `seed`, or the generator's
        initial seed when a generator is given, as diffusers does, in a forked random stream; decoding defaults to
        temperature 0.7 sampling, up to 512 new tokens. Each prompt of a list is rewritten on its own. The LM head
        (tied to the token embeddings) and, for an image, the vision tower are put together for this call only.
        """
        if generator is not None:
            seed = (generator[0] if isinstance(generator, list) else generator).initial_seed()
        if image is not None:
            image = enhancer_image(read_image(image) if isinstance(image, (str, Path)) else image)
        text_encoder = self._activate("text_encoder")
        if getattr(text_encoder.config, "model_type", None) in GEMMA_4_MODEL_TYPES:
            raise ValueError("prompt enhancement: LTX-2.5 rewrites prompts with a separate Gemma 4 enhancer "
                             "(diffusers' optional prompt_enhancer), which ltx2 does not run yet")
        run_on = torch.device(device) if device is not None else self._text_encoder_device(text_encoder)
        model = generation_model(text_encoder, vision=image is not None, device=run_on)
        processor = processor_for(self.processor, self.tokenizer, model)
        system_prompt = default_system_prompt(image is not None) if system_prompt is None else system_prompt
        kwargs = dict(GENERATION_KWARGS if generation_kwargs is None else generation_kwargs)
        prompts = [prompt] if isinstance(prompt, str) else prompt
        return [enhance(model, processor, text, system_prompt, image, max_new_tokens or MAX_NEW_TOKENS, seed, kwargs,
                        run_on) for text in prompts]

    # Stages, in the order __call__ runs them.

    def check_inputs(
        self,
        prompt: str | list[str] | None,
        height: int,
        width: int,
        num_frames: int,
        frame_rate: float,
        num_inference_steps: int,
        sigmas: list[float] | None,
        output_type: str,
        latents: torch.Tensor | None,
        audio_latents: torch.Tensor | None,
        prompt_embeds: torch.Tensor | None,
        prompt_attention_mask: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        negative_prompt_attention_mask: torch.Tensor | None,
        callback_tensor_inputs: list[str],
        max_sequence_length: int,
        guidance: Guidance,
        stg_blocks: list[int] | None,
        prompt_max_new_tokens: int | None = None,
        prompt_enhancement_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Reject bad arguments before any model runs, naming the argument, its value and the rule."""
        spatial, temporal = self.vae_spatial_compression_ratio, self.vae_temporal_compression_ratio
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of prompt and prompt_embeds")
        if prompt is not None and not isinstance(prompt, (str, list)):
            raise ValueError(f"prompt must be a str or a list of str, got {type(prompt).__name__}")
        if isinstance(prompt, list) and not prompt:
            raise ValueError("prompt is an empty list")
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or value <= 0 or value % spatial:
                raise ValueError(f"{name} must be a positive multiple of {spatial}, got {value}")
        # None: predicted by the duration head (checked by check_length_and_decoder).
        if num_frames is not None and (not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % temporal):
            raise ValueError(f"num_frames must be {temporal}k+1 (1, {temporal + 1}, {2 * temporal + 1}, ...), got {num_frames}")
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps}")
        if sigmas is not None and len(sigmas) < 1:
            raise ValueError("sigmas is empty")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        channels = self.transformer.config.in_channels
        if latents is not None and (latents.ndim != 5 or latents.shape[1] != channels):
            raise ValueError(
                f"latents must be video latents (batch, {channels}, frames, height, width), got {tuple(latents.shape)}"
            )
        audio_shape = (self.audio_vae.config.latent_channels, self.audio_latent_mel_bins)
        if audio_latents is not None and (audio_latents.ndim != 4 or tuple(audio_latents.shape[1::2]) != audio_shape):
            raise ValueError(
                f"audio_latents must be audio latents (batch, {audio_shape[0]}, frames, {audio_shape[1]}), "
                f"got {tuple(audio_latents.shape)}"
            )
        for embeds, mask, name in (
            (prompt_embeds, prompt_attention_mask, "prompt"),
            (negative_prompt_embeds, negative_prompt_attention_mask, "negative_prompt"),
        ):
            if embeds is not None and mask is None:
                raise ValueError(f"{name}_embeds needs {name}_attention_mask")
        if prompt_embeds is not None and negative_prompt_embeds is not None:
            if prompt_embeds.shape != negative_prompt_embeds.shape:
                raise ValueError(
                    f"negative_prompt_embeds has shape {tuple(negative_prompt_embeds.shape)}, "
                    f"prompt_embeds {tuple(prompt_embeds.shape)}: they must match"
                )
        unknown = set(callback_tensor_inputs) - set(CALLBACK_TENSORS)
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs {sorted(unknown)} not in {CALLBACK_TENSORS}")
        if (guidance.video.stg > 0 or guidance.audio.stg > 0) and not stg_blocks:
            raise ValueError("stg_scale > 0 needs spatio_temporal_guidance_blocks (the blocks to perturb)")
        if stg_blocks and not all(isinstance(block, int) and block >= 0 for block in stg_blocks):
            raise ValueError(f"spatio_temporal_guidance_blocks must be block indices (ints >= 0), got {stg_blocks}")
        tokens = prompt_max_new_tokens
        if tokens is not None and (not isinstance(tokens, int) or tokens < 1):
            raise ValueError(f"prompt_max_new_tokens must be an integer >= 1, got {tokens}")
        if prompt_enhancement_kwargs is not None and not isinstance(prompt_enhancement_kwargs, dict):
            kind = type(prompt_enhancement_kwargs).__name__
            raise ValueError(f"prompt_enhancement_kwargs must be a dict, got {kind}")
        registers = self.connectors.config.video_connector_num_learnable_registers
        length = max_sequence_length if prompt_embeds is None else prompt_embeds.shape[1]
        if length < 1 or (registers and length % registers):
            raise ValueError(
                f"max_sequence_length must be a positive multiple of the connectors' {registers} registers, got {length}"
            )

    def check_length_and_decoder(
        self,
        prompt: str | list[str] | None,
        prompt_embeds: torch.Tensor | None,
        num_frames: int | None,
        min_seconds: float,
        max_seconds: float,
        motion_speed: float,
        decoder: str,
        output_type: str,
    ) -> None:
        """The arguments of LTX-2.5's predicted length and diffusion decoding (num_frames None: predicted)."""
        if not min_seconds < max_seconds:
            raise ValueError(f"min_seconds ({min_seconds}) must be less than max_seconds ({max_seconds})")
        if min_seconds < 0:
            raise ValueError(f"min_seconds must be at least 0, got {min_seconds}")
        if not motion_speed > 0:
            raise ValueError(f"motion_speed must be positive, got {motion_speed}")
        prompts = len(prompt) if isinstance(prompt, list) else 1 if prompt is not None else len(prompt_embeds)
        if num_frames is None and prompts > 1:
            raise ValueError(
                f"num_frames=None asks the duration head for the length, but {prompts} prompts were given: one "
                "length cannot serve prompts of different natural lengths; call once per prompt or pass num_frames"
            )
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        if decoder == "diffusion" and output_type != "latent" and self.diffusion_decoder is None:
            raise ValueError("decoder='diffusion' needs the diffusion_decoder component (LTX-2.5 folders ship it in "
                             "diffusion_decoder/); this pipeline has none")

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        max_sequence_length: int = 1024,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask).

        Embeddings are the text encoder's stacked hidden states, left-padded: (B, L, 3840 * 49) from Gemma 3, (B, L,
        hidden * (layers + 1)) from LTX-2.5's Gemma 4 (see ltx2.text); the negative prompt defaults to "".
        Precomputed embeddings are used as given (left-padded, as ltx2 and diffusers 0.42.1 make them).
        """
        device = device or self.device
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if prompt_embeds is None:
            prompt_embeds, prompt_attention_mask = self._hidden_states(
                prompts, num_videos_per_prompt, max_sequence_length, device, dtype
            )
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            batch = len(prompts) if prompts is not None else prompt_embeds.shape[0]
            negatives = [negative_prompt or ""] * batch if not isinstance(negative_prompt, list) else negative_prompt
            if len(negatives) != batch:
                raise ValueError(f"negative_prompt has {len(negatives)} entries but prompt has {batch}: they must match")
            negative_prompt_embeds, negative_prompt_attention_mask = self._hidden_states(
                negatives, num_videos_per_prompt, max_sequence_length, device, dtype
            )
        return prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask

    def _hidden_states(
        self, prompts: list[str], copies: int, max_sequence_length: int, device: torch.device,
        dtype: torch.dtype | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        text_encoder = self._activate("text_encoder")
        run_on = self._text_encoder_device(text_encoder)
        embeds, mask = self.prompt_encoder.encode(self.tokenizer, text_encoder, prompts, max_sequence_length, run_on)
        embeds = embeds.repeat_interleave(copies, dim=0).to(device, dtype or embeds.dtype)
        return embeds, mask.repeat_interleave(copies, dim=0).to(device)

    def _text_encoder_device(self, text_encoder: torch.nn.Module) -> torch.device:
        """Gemma runs where it lives, unless weights are streamed to the execution device."""
        return self.device if self._offload is not None else next(text_encoder.parameters()).device

    @property
    def vae_spatial_compression_ratio(self) -> int:
        return self.vae.spatial_compression_ratio if self.vae is not None else 32

    @property
    def vae_temporal_compression_ratio(self) -> int:
        return self.vae.temporal_compression_ratio if self.vae is not None else 8

    @property
    def audio_latent_mel_bins(self) -> int:
        return self.audio_vae.config.mel_bins // self.audio_vae.mel_compression_ratio

    def text_context(
        self,
        prompt_embeds: torch.Tensor,
        prompt_attention_mask: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        negative_prompt_attention_mask: torch.Tensor | None,
        cfg: bool,
    ) -> TextContext:
        """Run the connectors once on the whole batch: [negative; positive] under CFG."""
        if cfg:
            prompt_embeds = torch.cat([negative_prompt_embeds, prompt_embeds])
            prompt_attention_mask = torch.cat([negative_prompt_attention_mask, prompt_attention_mask])
        connectors = self._activate("connectors")
        # Prompts are always padded on the left (ltx2.text.tokenize), whatever the tokenizer's own setting.
        video, audio, mask = connectors(prompt_embeds, prompt_attention_mask, padding_side=PADDING_SIDE)
        return TextContext(video, audio, mask)

    def geometry(
        self,
        height: int,
        width: int,
        num_frames: int,
        frame_rate: float,
        latents: torch.Tensor | None,
        audio_latents: torch.Tensor | None,
        motion_speed: float = 1.0,
    ) -> Geometry:
        """Latent sizes from the request, or from the latents passed in (stage 2). Positions run at
        frame_rate / motion_speed; the audio lasts num_frames / frame_rate seconds."""
        if latents is not None:
            frames, latent_height, latent_width = latents.shape[2:]
        else:
            frames = (num_frames - 1) // self.vae_temporal_compression_ratio + 1
            latent_height = height // self.vae_spatial_compression_ratio
            latent_width = width // self.vae_spatial_compression_ratio
        if audio_latents is not None:
            audio_frames = audio_latents.shape[2]
        else:
            config = self.audio_vae.config
            audio_frames = audio_latent_frames(
                num_frames, frame_rate, config.sample_rate, config.mel_hop_length,
                self.audio_vae.temporal_compression_ratio,
            )
        return Geometry(frames, latent_height, latent_width, audio_frames, frame_rate / motion_speed)

    def prepare_latents(
        self,
        batch: int,
        geometry: Geometry,
        noise_scale: float,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
        device: torch.device,
        items: list[ConditioningItem] = (),
    ) -> tuple[torch.Tensor, LatentConditioning | None]:
        """Packed (B, S, C) float32 video latents, fresh noise or the given latents re-noised by noise_scale,
        with the conditioning items put in; and their per-token conditioning (None without items).

        As the reference draws them: fresh noise over the (B, C, F, H, W) grid, re-noising noise as tokens.
        """
        clean, conditioning = self.conditioned_latents(batch, geometry, latents, device, items)
        if latents is None:
            grid_noise = randn(self.grid_shape(batch, geometry), generator, device, torch.float32)
            noise, noise_scale = pack_video_latents(grid_noise), 1.0
        else:
            noise = randn(tuple(clean.shape), generator, device, torch.float32)
        return noised(clean, conditioning, noise, noise_scale), conditioning

    def grid_shape(self, batch: int, geometry: Geometry) -> tuple[int, int, int, int, int]:
        """(B, C, F, H, W) of the generated video latents."""
        return batch, self.transformer.config.in_channels, geometry.frames, geometry.height, geometry.width

    def conditioned_latents(
        self, batch: int, geometry: Geometry, latents: torch.Tensor | None, device: torch.device,
        items: list[ConditioningItem],
    ) -> tuple[torch.Tensor, LatentConditioning | None]:
        """The given latents normalized (or zeros) and packed, with the items put in; not yet noised."""
        if latents is None:
            base = torch.zeros(batch, geometry.video_tokens, self.transformer.config.in_channels, device=device)
        else:
            normalized = normalize_video_latents(latents.to(device), self.vae.latents_mean, self.vae.latents_std,
                                                 self.vae.config.scaling_factor)
            base = pack_video_latents(normalized).float()
        if not items:
            return base, None
        config = self.transformer.config
        positions = video_positions(base.shape[0], geometry.frames, geometry.height, geometry.width,
                                    tuple(config.vae_scale_factors), config.causal_offset, geometry.fps, device)
        return condition_latents(base, list(items), positions)

    def prepare_audio_latents(
        self,
        batch: int,
        geometry: Geometry,
        noise_scale: float,
        generator: torch.Generator | list[torch.Generator] | None,
        audio_latents: torch.Tensor | None,
        device: torch.device,
    ) -> torch.Tensor:
        """Packed (B, T, C*M) float32 audio latents, drawn after the video noise as the reference does."""
        if audio_latents is not None:
            packed = normalize_audio_latents(pack_audio_latents(audio_latents), self.audio_vae.latents_mean,
                                             self.audio_vae.latents_std)
            return renoise(packed, noise_scale, generator).to(device, torch.float32)
        shape = (batch, self.audio_vae.config.latent_channels, geometry.audio_frames, self.audio_latent_mel_bins)
        return pack_audio_latents(randn(shape, generator, device, torch.float32))

    def schedule(
        self,
        num_inference_steps: int,
        sigmas: list[float] | None,
        timesteps: list[float] | None,
        video_tokens: int,
        device: torch.device,
        overrides: dict[str, Any],
    ) -> Schedule:
        """This call's schedule (shifted for `video_tokens`, appended tokens included), which steps both streams;
        the scheduler itself is left as it is."""
        if sigmas is None and timesteps is None:
            sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
        config = self.scheduler.config
        mu = calculate_shift(video_tokens, config.base_image_seq_len, config.max_image_seq_len,
                             config.base_shift, config.max_shift)
        return self.scheduler.schedule(len(sigmas) if sigmas is not None else len(timesteps), device=device,
                                       sigmas=sigmas, timesteps=timesteps, mu=mu, **overrides)

    def denoise(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        context: TextContext,
        geometry: Geometry,
        schedule: Schedule,
        guidance: Guidance,
        callback: Callable[..., dict[str, Any]] | None,
        callback_tensor_inputs: list[str],
        conditioning: LatentConditioning | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The sampling loop. Guidance is combined in x0 space. With `conditioning`, each video token sees the
        timestep t (1 - m) and its guided x0 is pulled to the clean value by its strength m."""
        transformer = self._activate("transformer")
        passes = guidance.passes(video.shape[0])

        def predict(latents: torch.Tensor, audio_latents: torch.Tensor, t: torch.Tensor, rows: list[slice],
                    options: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
            """Velocities, as float32, of one batched call over the passes reading the text-context `rows`."""
            copies = len(rows)
            video_in, audio_in = torch.cat([latents] * copies), torch.cat([audio_latents] * copies)
            text, audio_text, mask = (
                torch.cat([part[r] for r in rows]) for part in (context.video, context.audio, context.mask)
            )
            timestep = t.expand(video_in.shape[0])
            video_timestep = timestep
            if conditioning is not None:
                token_mask, positions = conditioning.repeated(copies)
                video_timestep = timestep[:, None] * (1 - token_mask)
                if positions is not None:
                    options = {**options, "video_coords": positions}
                if conditioning.attention_mask is not None:
                    mask_all = conditioning.attention_mask.expand(video_in.shape[0], -1, -1)
                    options = {**options, "video_self_attention_mask": mask_all}
            velocity, audio_velocity = transformer(
                hidden_states=video_in.to(text.dtype), audio_hidden_states=audio_in.to(text.dtype),
                encoder_hidden_states=text, audio_encoder_hidden_states=audio_text, timestep=video_timestep,
                audio_timestep=timestep, encoder_attention_mask=mask, audio_encoder_attention_mask=mask,
                num_frames=geometry.frames, height=geometry.height, width=geometry.width, fps=geometry.fps,
                audio_num_frames=geometry.audio_frames, sigma=timestep, use_cross_timestep=guidance.cross_timestep,
                return_dict=False, **options,
            )
            return velocity.float(), audio_velocity.float()

        timesteps = schedule.timesteps
        with self.progress_bar(total=len(timesteps)) as progress:
            for i, t in enumerate(timesteps):
                sigma = schedule.sigmas[i]
                predictions = run_guidance_passes(passes, functools.partial(predict, video, audio, t),
                                                  self._guidance_groups)
                # x0 = x - sigma * v for every prediction; the guided x0 is turned back into a velocity.
                guided = guidance.video.combine({name: video - sigma * v for name, (v, _) in predictions.items()})
                audio_guided = guidance.audio.combine(
                    {name: audio - sigma * v for name, (_, v) in predictions.items()}
                )
                if conditioning is not None:
                    guided = conditioning.pull_to_clean(guided)
                video = schedule.step(i, (video - guided) / sigma, video)
                if self.steps_audio:
                    audio = schedule.step(i, (audio - audio_guided) / sigma, audio)
                if callback is not None:
                    outputs = callback(self, i, t, {"latents": video} if callback_tensor_inputs else {})
                    video = outputs.pop("latents", video)
                progress.update()
        return video, audio

    def decode(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        geometry: Geometry,
        output_type: str,
        decode_timestep: float | list[float],
        decode_noise_scale: float | list[float] | None,
        generator: torch.Generator | list[torch.Generator] | None,
        decoder: str = "vae",
    ) -> tuple[Any, torch.Tensor]:
        """Drop appended tokens, unpack, denormalize, and decode to frames (through the VAE, or the diffusion
        decoder for decoder="diffusion") and a waveform; or return the latents."""
        video = video[:, : geometry.video_tokens]
        video = unpack_video_latents(video, geometry.frames, geometry.height, geometry.width)
        audio = unpack_audio_latents(
            denormalize_audio_latents(audio, self.audio_vae.latents_mean, self.audio_vae.latents_std),
            self.audio_latent_mel_bins,
        )
        mean, std, scaling = video_latent_statistics(self.vae, self.diffusion_decoder)
        if output_type == "latent":
            return denormalize_video_latents(video, mean, std, scaling), audio
        pixels = self.decode_pixels(video, (mean, std, scaling), decoder, decode_timestep, decode_noise_scale,
                                    generator)
        frames = postprocess_video(pixels, output_type)
        audio_vae = self._activate("audio_vae")
        mel = audio_vae.decode(audio.to(audio_vae.dtype), return_dict=False)[0]
        return frames, self._activate("vocoder")(mel)

    def decode_pixels(
        self, video: torch.Tensor, statistics: tuple[torch.Tensor, torch.Tensor, float], decoder: str,
        decode_timestep: float | list[float], decode_noise_scale: float | list[float] | None, generator: Any,
    ) -> torch.Tensor:
        """Normalized video latents (B, C, F, H, W) -> pixels (B, 3, F', H', W') in [-1, 1], through the VAE (with
        its decode noise where it is timestep-conditioned) or, for decoder="diffusion", the diffusion decoder."""
        if decoder == "diffusion":
            diffusion_decoder = self._activate("diffusion_decoder")
            video = denormalize_video_latents(video, *statistics).to(diffusion_decoder.dtype)
            return diffusion_decoder.decode(video, generator=generator, return_dict=False)[0]
        vae = self._activate("vae")
        temb = None
        if vae.config.timestep_conditioning:
            video, temb = decode_noise(video, decode_timestep, decode_noise_scale, generator)
        video = denormalize_video_latents(video, *statistics).to(vae.dtype)
        return vae.decode(video, temb, return_dict=False)[0]
