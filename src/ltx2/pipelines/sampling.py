"""The pieces of a sampling loop that every LTX-2 pipeline shares: noise, guidance, output formats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..models.layers import randn
from ..parallel import GuidancePass

OUTPUT_TYPES = ("pil", "np", "pt", "latent")


@dataclass
class LTX2PipelineOutput:
    """frames: video as `output_type` asked (PIL lists, (B, F, H, W, 3) array, (B, F, 3, H, W) tensor, or
    latents); audio: the waveform (B, 2, samples) in [-1, 1], or audio latents for output_type="latent"."""

    frames: Any
    audio: torch.Tensor


Generator = torch.Generator | list[torch.Generator] | None


def renoise(latents: torch.Tensor, noise_scale: float | torch.Tensor, generator: Generator) -> torch.Tensor:
    """Move clean latents back towards noise: noise_scale * noise + (1 - noise_scale) * latents.

    Noise is drawn even for noise_scale 0, so the random stream stays aligned with the reference.
    """
    noise = randn(tuple(latents.shape), generator, latents.device, latents.dtype)
    return noise_scale * noise + (1 - noise_scale) * latents


@dataclass(frozen=True)
class GuidanceScales:
    """One stream's guidance scales; each term is combined in x0 space."""

    cfg: float = 1.0
    stg: float = 0.0
    modality: float = 1.0
    rescale: float = 0.0

    def combine(self, x0: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pass name -> x0 prediction -> the guided x0: cond + (cfg - 1)(cond - uncond) + stg (cond - perturbed)
        + (modality - 1)(cond - isolated), each term only for a pass that ran; then, with rescale > 0, the spread
        pulled back towards cond's."""
        cond = x0["cond"]
        guided = cond
        if "uncond" in x0:
            guided = guided + (self.cfg - 1) * (cond - x0["uncond"])
        if "perturbed" in x0:
            guided = guided + self.stg * (cond - x0["perturbed"])
        if "isolated" in x0:
            guided = guided + (self.modality - 1) * (cond - x0["isolated"])
        if self.rescale > 0:
            # Over-exposure fix: match the guided prediction's standard deviation to the conditional one's.
            dims = list(range(1, cond.ndim))
            rescaled = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
            guided = self.rescale * rescaled + (1 - self.rescale) * guided
        return guided


@dataclass(frozen=True)
class Guidance:
    """A call's guidance: both streams' scales, the STG blocks, and whether cross-attention modulation takes the
    other stream's timestep (LTX-2.3)."""

    video: GuidanceScales
    audio: GuidanceScales
    stg_blocks: tuple[int, ...] = ()
    cross_timestep: bool = False

    @classmethod
    def from_call_kwargs(cls, options: dict[str, Any]) -> Guidance:
        """From resolved call arguments (`LTX2Pipeline.default_call_kwargs`)."""
        video = GuidanceScales(options["guidance_scale"], options["stg_scale"], options["modality_scale"],
                               options["guidance_rescale"])
        audio = GuidanceScales(options["audio_guidance_scale"], options["audio_stg_scale"],
                               options["audio_modality_scale"], options["audio_guidance_rescale"])
        blocks = tuple(options["spatio_temporal_guidance_blocks"] or ())
        return cls(video, audio, blocks, bool(options["use_cross_timestep"]))

    @property
    def cfg(self) -> bool:
        return self.video.cfg > 1 or self.audio.cfg > 1

    def passes(self, batch: int) -> list[GuidancePass]:
        """The transformer passes of one sampling step, for `batch` videos."""
        return guidance_passes(batch, self.cfg, self.video, self.audio, self.stg_blocks)


def guidance_passes(
    batch: int, cfg: bool, video_guidance: GuidanceScales, audio_guidance: GuidanceScales,
    stg_blocks: tuple[int, ...] = (),
) -> list[GuidancePass]:
    """The transformer passes of one sampling step, as diffusers 0.42.1 runs them: a pass runs when either
    stream's scale asks for it. Under CFG the text context is [negative; positive] (B rows each); the unconditional
    and conditional passes run as one batched call when they run on the same ranks."""
    positive = slice(batch, 2 * batch) if cfg else slice(0, batch)
    passes = [GuidancePass("uncond", slice(0, batch))] if cfg else []
    passes.append(GuidancePass("cond", positive))
    if video_guidance.stg > 0 or audio_guidance.stg > 0:
        # Perturbed attention (LTX-2.3) perturbs these blocks' self-attentions; a model without it (LTX-2.0)
        # ignores them, and its STG pass is an unperturbed conditional pass, as in diffusers.
        options = {"spatio_temporal_guidance_blocks": list(stg_blocks)} if stg_blocks else {}
        passes.append(GuidancePass("perturbed", positive, options, call=1))
    if video_guidance.modality > 1 or audio_guidance.modality > 1:
        passes.append(GuidancePass("isolated", positive, {"isolate_modalities": True}, call=2))
    return passes


def decode_noise(
    latents: torch.Tensor,
    decode_timestep: float | list[float],
    decode_noise_scale: float | list[float] | None,
    generator: Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For timestep-conditioned VAEs: blend fresh noise into the latents (by decode_noise_scale, which defaults
    to decode_timestep) and return them with the decode timestep per sample."""
    batch = latents.shape[0]
    noise = randn(tuple(latents.shape), generator, latents.device, latents.dtype)
    timesteps = decode_timestep if isinstance(decode_timestep, list) else [decode_timestep] * batch
    scales = timesteps if decode_noise_scale is None else decode_noise_scale
    scales = scales if isinstance(scales, list) else [scales] * batch
    scale = torch.tensor(scales, device=latents.device, dtype=latents.dtype)[:, None, None, None, None]
    temb = torch.tensor(timesteps, device=latents.device, dtype=latents.dtype)
    return (1 - scale) * latents + scale * noise, temb


def postprocess_video(video: torch.Tensor, output_type: str) -> Any:
    """Decoded (B, 3, F, H, W) in [-1, 1] -> the requested format, values in [0, 1] (uint8-ready for PIL)."""
    frames = (video / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4).float()  # (B, F, 3, H, W)
    if output_type == "pt":
        return frames
    array = frames.permute(0, 1, 3, 4, 2).cpu().numpy()  # (B, F, H, W, 3)
    if output_type == "np":
        return array
    pixels = (array * 255).round().astype(np.uint8)
    return [[PIL.Image.fromarray(frame) for frame in clip] for clip in pixels]
