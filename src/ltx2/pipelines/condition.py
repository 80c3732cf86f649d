"""LTX2ConditionPipeline: video+audio steered by images and clips placed at latent frames."""

from __future__ import annotations

from typing import Any

import torch

from .conditioning import ConditioningInputs, ConditioningItem, LatentConditioning, LTX2VideoCondition, noised
from .sampling import Generator, randn
from .text_to_video import Geometry, LTX2Pipeline


class LTX2ConditionPipeline(LTX2Pipeline):
    """Text to video+audio with frame conditions: a first and a last frame, keyframes in between, a clip to
    continue (`LTX2VideoCondition`). Call arguments are diffusers' LTX2ConditionPipeline's.

    Defaults are LTX2Pipeline's, which follow the model version (LTX-2.0: 40 steps, plain CFG 4.0); diffusers
    0.42.1 defaults this pipeline to LTX-2.3's guidance. A condition whose index lies outside the video is an
    error here, where diffusers skips it with a warning.
    """

    @torch.no_grad()
    def __call__(
        self,
        conditions: LTX2VideoCondition | list[LTX2VideoCondition] | None = None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        *,
        noise_scale: float | None = None,
        **kwargs: Any,
    ):
        """Generate video and audio through `conditions` (see LTX2Pipeline.__call__ for the other arguments).

        `noise_scale` is how much noise the initial latents get, given or not (default: the first sigma, or 1).
        """
        return self.conditioned_call(ConditioningInputs(as_list(conditions)), prompt, negative_prompt, noise_scale,
                                     kwargs)

    def conditioned_call(
        self, inputs: ConditioningInputs, prompt: Any, negative_prompt: Any, noise_scale: float | None,
        kwargs: dict[str, Any],
    ) -> Any:
        """LTX2Pipeline's call with these conditioning inputs and noise_scale resolved (the first sigma, or 1)."""
        arguments = self.call_arguments(prompt=prompt, negative_prompt=negative_prompt, **kwargs)
        if noise_scale is None:
            noise_scale = arguments["sigmas"][0] if arguments["sigmas"] is not None else 1.0
        return super().__call__(**{**arguments, "noise_scale": noise_scale}, _conditioning=inputs)

    def prepare_latents(
        self, batch: int, geometry: Geometry, noise_scale: float, generator: Generator, latents: torch.Tensor | None,
        device: torch.device, items: list[ConditioningItem] = (),
    ) -> tuple[torch.Tensor, LatentConditioning | None]:
        """As LTX2Pipeline's, but as the reference: noise drawn in token layout over the whole sequence (appended
        tokens included) and scaled by noise_scale whether latents are given or not."""
        clean, conditioning = self.conditioned_latents(batch, geometry, latents, device, items)
        noise = randn(tuple(clean.shape), generator, device, torch.float32)
        return noised(clean, conditioning, noise, noise_scale), conditioning

    def prepare_audio_latents(
        self, batch: int, geometry: Geometry, noise_scale: float, generator: Generator,
        audio_latents: torch.Tensor | None, device: torch.device,
    ) -> torch.Tensor:
        """As LTX2Pipeline's, but fresh noise is drawn in token layout (B, T, C * M), as the reference."""
        if audio_latents is not None:
            return super().prepare_audio_latents(batch, geometry, noise_scale, generator, audio_latents, device)
        features = self.audio_vae.config.latent_channels * self.audio_latent_mel_bins
        return randn((batch, geometry.audio_frames, features), generator, device, torch.float32)


def as_list(value: Any) -> list:
    """None -> [], one item -> [item], a list as it is."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
