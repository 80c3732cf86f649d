"""LTX2HDRPipeline: an SDR video turned into linear-light HDR by an HDR IC-LoRA (diffusers 0.42.1's HDR path).

The SDR reference video is resized down (aspect kept) and reflect-padded to the size the IC-LoRA sees, encoded and
appended as clean reference tokens, as LTX2InContextPipeline appends references. The model generates in ARRI
LogC3 code values; the decoded video is mapped to scene-linear light by the inverse LogC3 curve and returned as
float32 (B, F, H, W, 3) in [-0.017, ~55] (1.0 = diffuse white; LogC3's toe dips just below 0). There is no audio: the audio stream runs (the
transformer needs it) on noise that is never stepped, and the call returns audio None. Write the result with
`ltx2.hdr` (tone-mapped SDR MP4, 10-bit PQ/HLG MP4, OpenEXR frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from ..hdr import logc3_to_linear
from .condition import as_list
from .conditioning import ConditioningInputs, FrameInput, LTX2ReferenceCondition, condition_frames
from .in_context import LTX2InContextPipeline
from .sampling import LTX2PipelineOutput
from .text_to_video import TextContext


@dataclass
class LTX2HDRReferenceCondition:
    """An SDR reference video for the HDR IC-LoRA: PIL frames, or (F, H, W, 3) uint8 pixels, or frames in [0, 1]
    as a float array (F, H, W, 3) or tensor (F, 3, H, W); `strength` 1 keeps its tokens clean."""

    frames: FrameInput
    strength: float = 1.0


def resize_and_reflect_pad(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, F, h, w) -> (B, C, F, height, width): shrunk (bilinear, aspect kept) only if larger than the target,
    then padded at the bottom and right by reflection (by repetition where the pad is as large as the picture)."""
    batch, channels, frames, source_height, source_width = video.shape
    flat = video.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, source_height, source_width)
    if source_height > height or source_width > width:
        scale = min(height / source_height, width / source_width)
        size = (round(source_height * scale), round(source_width * scale))
        flat = F.interpolate(flat, size=size, mode="bilinear", align_corners=False)
    pad_bottom, pad_right = height - flat.shape[2], width - flat.shape[3]
    if pad_bottom or pad_right:
        mode = "reflect" if pad_bottom < flat.shape[2] and pad_right < flat.shape[3] else "replicate"
        flat = F.pad(flat, (0, pad_right, 0, pad_bottom), mode=mode)
    return flat.reshape(batch, frames, channels, height, width).permute(0, 2, 1, 3, 4)


class LTX2HDRPipeline(LTX2InContextPipeline):
    """SDR reference video -> linear HDR video with an HDR IC-LoRA (load it with `load_lora_weights`).

    Arguments and defaults are diffusers 0.42.1's LTX2HDRPipeline's: 8 steps, no guidance, `output_type="pt"`;
    frames come back as float32 linear light (B, F, H, W, 3) for "pt" and "np" ("pil" is not an HDR format and is
    answered as "np", as in 0.42.1), raw latents for "latent"; audio is None. Video guidance (CFG, STG, modality,
    rescale) works as in LTX2Pipeline; audio guidance is off. Precomputed `connector_video_embeds` /
    `connector_audio_embeds` stand in for the text encoder and connectors (all tokens attended); under CFG
    (guidance_scale > 1) they hold the negative rows first, then the positive ones.
    """

    steps_audio = False

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        reference_conditions: LTX2HDRReferenceCondition | list[LTX2HDRReferenceCondition] | None = None,
        reference_downscale_factor: int = 1,
        height: int = 512,
        width: int = 768,
        num_frames: int = 121,
        frame_rate: float = 24.0,
        num_inference_steps: int = 8,
        sigmas: list[float] | None = None,
        timesteps: list[float] | None = None,
        guidance_scale: float = 1.0,
        stg_scale: float = 0.0,
        modality_scale: float = 1.0,
        guidance_rescale: float = 0.0,
        spatio_temporal_guidance_blocks: list[int] | None = None,
        noise_scale: float | None = None,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        connector_video_embeds: torch.Tensor | None = None,
        connector_audio_embeds: torch.Tensor | None = None,
        decode_timestep: float | list[float] = 0.0,
        decode_noise_scale: float | list[float] | None = None,
        use_cross_timestep: bool = False,
        output_type: str = "pt",
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (the reference's signature)
        max_sequence_length: int = 1024,
    ) -> LTX2PipelineOutput | tuple:
        """Generate linear HDR video from the reference SDR video(s); returns (frames, None)."""
        references = []
        for i, reference in enumerate(as_list(reference_conditions)):
            if not isinstance(reference, LTX2HDRReferenceCondition):
                raise ValueError(f"reference_conditions[{i}] must be an LTX2HDRReferenceCondition, "
                                 f"got {type(reference).__name__}")
            references.append(LTX2ReferenceCondition(reference.frames, reference.strength))
        for name, value in (("height", height), ("width", width)):
            if value % 32:
                raise ValueError(f"{name} must be a multiple of 32, got {value}")
        if (connector_video_embeds is None) != (connector_audio_embeds is None):
            raise ValueError("pass both connector_video_embeds and connector_audio_embeds, or neither")
        output_type = "np" if output_type == "pil" else output_type
        context = self.given_text_context(connector_video_embeds, connector_audio_embeds)
        if context is not None and prompt is None and prompt_embeds is None:
            rows = context.video.shape[0]  # the prompts are not encoded: the connector embeddings stand in
            prompt = [""] * (rows // 2 if guidance_scale > 1 else rows)
        inputs = ConditioningInputs([], references, reference_downscale_factor)
        arguments = dict(
            num_frames=num_frames, height=height, width=width, frame_rate=frame_rate,
            num_inference_steps=num_inference_steps, sigmas=sigmas, timesteps=timesteps, guidance_scale=guidance_scale,
            stg_scale=stg_scale, modality_scale=modality_scale, guidance_rescale=guidance_rescale,
            audio_guidance_scale=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0,
            spatio_temporal_guidance_blocks=spatio_temporal_guidance_blocks,
            num_videos_per_prompt=num_videos_per_prompt, generator=generator, latents=latents,
            prompt_embeds=prompt_embeds, prompt_attention_mask=prompt_attention_mask,
            negative_prompt_embeds=negative_prompt_embeds, negative_prompt_attention_mask=negative_prompt_attention_mask,
            decode_timestep=decode_timestep, decode_noise_scale=decode_noise_scale,
            use_cross_timestep=use_cross_timestep, output_type=output_type, return_dict=False,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length, _text_context=context,
        )
        frames, _ = self.conditioned_call(inputs, prompt, negative_prompt, noise_scale, arguments)
        return LTX2PipelineOutput(frames=frames, audio=None) if return_dict else (frames, None)

    def given_text_context(self, video: torch.Tensor | None, audio: torch.Tensor | None) -> TextContext | None:
        """Precomputed connector embeddings as the call's text context (every token attended), or None."""
        if video is None:
            return None
        mask = torch.ones(video.shape[:2], device=self.device, dtype=torch.long)
        dtype = self.transformer.dtype
        return TextContext(video.to(self.device, dtype), audio.to(self.device, dtype), mask)

    def reference_video_pixels(self, frames: FrameInput, height: int, width: int, num_frames: int) -> torch.Tensor:
        """The SDR reference -> (1, 3, F, height, width) in [-1, 1]: sides first cut down to the VAE's multiple
        (bilinear), then shrunk and reflect-padded to the target; at most num_frames frames (no 8k+1 cut)."""
        spatial = self.vae_spatial_compression_ratio
        if isinstance(frames, PIL.Image.Image):
            frames = [frames]
        if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
            frames = [PIL.Image.fromarray(frame) for frame in (frames if frames.ndim == 4 else frames[None])]
        if isinstance(frames, list) and frames and all(isinstance(frame, PIL.Image.Image) for frame in frames):
            size = (frames[0].width - frames[0].width % spatial, frames[0].height - frames[0].height % spatial)
            images = [frame.convert("RGB") for frame in frames]
            images = [image.resize(size, resample=PIL.Image.BILINEAR) if image.size != size else image
                      for image in images]
            pixels = torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) / 255.0 for image in images]))
            pixels = pixels.permute(0, 3, 1, 2)
        else:
            array = condition_frames(frames, "reference_conditions[].frames")
            pixels = torch.from_numpy(np.ascontiguousarray(array)).float().permute(0, 3, 1, 2)
            size = (pixels.shape[2] - pixels.shape[2] % spatial, pixels.shape[3] - pixels.shape[3] % spatial)
            if size != tuple(pixels.shape[2:]):
                pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
        video = (pixels * 2 - 1).permute(1, 0, 2, 3)[None]
        return resize_and_reflect_pad(video, height, width)[:, :, :num_frames]

    def decode(self, video: torch.Tensor, audio: torch.Tensor, geometry: Any, output_type: str, *args: Any,
               **kwargs: Any) -> tuple[Any, None]:
        """Latents -> linear light (B, F, H, W, 3) float32 through the VAE and the inverse LogC3 (raw latents for
        output_type="latent"); no audio."""
        if output_type == "latent":
            return super().decode(video, audio, geometry, output_type, *args, **kwargs)[0], None
        frames, _ = super().decode(video, audio, geometry, "pt", *args, **kwargs)  # (B, F, 3, H, W) in [0, 1]
        linear = logc3_to_linear(frames.float()).permute(0, 1, 3, 4, 2).contiguous()
        return (linear if output_type == "pt" else linear.cpu().numpy()), None
