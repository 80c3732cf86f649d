"""LTX2InContextPipeline: video+audio controlled by reference videos through an IC-LoRA."""

from __future__ import annotations

from typing import Any

import torch

from .condition import LTX2ConditionPipeline, as_list
from .conditioning import ConditioningInputs, LTX2ReferenceCondition, LTX2VideoCondition


class LTX2InContextPipeline(LTX2ConditionPipeline):
    """Text to video+audio with in-context references (a depth, pose, edge or camera-motion video for an
    IC-LoRA loaded with `load_lora_weights`), optionally with frame conditions as LTX2ConditionPipeline.
    Call arguments are diffusers' LTX2InContextPipeline's; defaults as LTX2ConditionPipeline.

    Reference tokens are appended after any keyframe tokens, at the reference video's own positions with height
    and width multiplied by `reference_downscale_factor` (the reference is encoded that many times smaller).
    `conditioning_attention_strength` (and the optional pixel-space `conditioning_attention_mask` (B, 1, F, H, W))
    weight the attention between generated and reference tokens; below 1, references and keyframes stop
    attending to each other. As diffusers 0.42.1, a weight w becomes the attention bias -10000 (1 - w), so
    fractional weights act almost as a cut; Lightricks' ltx-core adds log(w) instead.
    """

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        reference_conditions: LTX2ReferenceCondition | list[LTX2ReferenceCondition] | None = None,
        conditions: LTX2VideoCondition | list[LTX2VideoCondition] | None = None,
        reference_downscale_factor: int = 1,
        conditioning_attention_strength: float = 1.0,
        conditioning_attention_mask: torch.Tensor | None = None,
        *,
        num_frames: int | None = 121,
        noise_scale: float | None = None,
        **kwargs: Any,
    ):
        """Generate video and audio from references and conditions (see LTX2ConditionPipeline.__call__).

        `num_frames` defaults to 121 on every version, as diffusers 0.42.1's LTX2InContextPipeline (which has no
        duration head); pass None to have an LTX-2.5 folder's duration head choose the length."""
        inputs = ConditioningInputs(as_list(conditions), as_list(reference_conditions), reference_downscale_factor,
                                    conditioning_attention_strength, conditioning_attention_mask)
        return self.conditioned_call(inputs, prompt, negative_prompt, noise_scale, {**kwargs, "num_frames": num_frames})
