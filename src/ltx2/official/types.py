"""The helper types and constants that user code of ltx-pipelines 1.0.0 passes to its pipelines, by the same names.

`MultiModalGuiderParams` / `MultiModalGuiderFactory` hold one stream's guidance (constant, or binned by sigma);
`ImageConditioningInput` places an image at a pixel frame; `LoraPathStrengthAndSDOps` names a LoRA file and its
strength (the key renaming is ltx2's own LoRA key map, so `LTXV_LORA_COMFY_RENAMING_MAP` is only a marker value).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

DEFAULT_IMAGE_CRF = 33
DEFAULT_LORA_STRENGTH = 1.0
DEFAULT_SEED = 10
DISTILLED_SIGMA_VALUES = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0]
STAGE_2_DISTILLED_SIGMA_VALUES = [0.909375, 0.725, 0.421875, 0.0]
DEFAULT_NEGATIVE_PROMPT = (
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)


class KeyRenaming(NamedTuple):
    """A LoRA key renaming, by name. ltx2 maps every LoRA layout through its own key map, so this only records
    which renaming the caller asked for (the ComfyUI one is the only one ltx-pipelines uses)."""

    name: str


LTXV_LORA_COMFY_RENAMING_MAP = KeyRenaming("LTXV_LORA_COMFY_PREFIX_MAP")


class LoraPathStrengthAndSDOps(NamedTuple):
    path: str
    strength: float
    sd_ops: Any = LTXV_LORA_COMFY_RENAMING_MAP


class ImageConditioningInput(NamedTuple):
    """An image file placed at pixel frame `frame_idx` (0: replaces the first latent frame; else appended as a
    keyframe), kept with `strength`, after an H.264 round trip at `crf` (0: none)."""

    path: str
    frame_idx: int
    strength: float
    crf: int = DEFAULT_IMAGE_CRF


@dataclass(frozen=True)
class MultiModalGuiderParams:
    """One stream's guidance: CFG, STG (value pass-through in `stg_blocks`), modality isolation, the rescale
    towards the conditional prediction's std, and `skip_step` (reuse the last prediction on all but every
    (skip_step + 1)-th step)."""

    cfg_scale: float = 1.0
    stg_scale: float = 0.0
    stg_blocks: list[int] | None = field(default_factory=list)
    rescale_scale: float = 0.0
    modality_scale: float = 1.0
    skip_step: int = 0

    def __post_init__(self) -> None:
        for name in ("cfg_scale", "stg_scale", "rescale_scale", "modality_scale"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name}={value!r} must be a finite number")
        if not isinstance(self.skip_step, int) or self.skip_step < 0:
            raise ValueError(f"skip_step={self.skip_step!r} must be an integer >= 0")

    @property
    def uses_cfg(self) -> bool:
        return not math.isclose(self.cfg_scale, 1.0)

    @property
    def uses_stg(self) -> bool:
        return not math.isclose(self.stg_scale, 0.0)

    @property
    def uses_modality(self) -> bool:
        return not math.isclose(self.modality_scale, 1.0)

    def skips(self, step: int) -> bool:
        return self.skip_step > 0 and step % (self.skip_step + 1) != 0


@dataclass(frozen=True)
class MultiModalGuiderFactory:
    """Guider params binned by sigma: a step at sigma uses the entry with the smallest key >= sigma (the largest
    key when sigma is above every key), as ltx-core bins them."""

    negative_context: torch.Tensor | None = None
    _params_by_sigma: tuple[tuple[float, MultiModalGuiderParams], ...] = ()

    @classmethod
    def constant(cls, params: MultiModalGuiderParams, negative_context: torch.Tensor | None = None
                 ) -> MultiModalGuiderFactory:
        return cls(negative_context, ((float("inf"), params),))

    @classmethod
    def from_dict(cls, sigma_to_params: Mapping[float, MultiModalGuiderParams],
                  negative_context: torch.Tensor | None = None) -> MultiModalGuiderFactory:
        if not sigma_to_params:
            raise ValueError("sigma_to_params must be non-empty")
        return cls(negative_context, tuple(sorted(sigma_to_params.items(), key=lambda item: item[0], reverse=True)))

    def params(self, sigma: float | torch.Tensor) -> MultiModalGuiderParams:
        value = float(sigma)
        chosen = self._params_by_sigma[0][1]
        for bound, params in self._params_by_sigma:
            if value <= bound:
                chosen = params
        return chosen


def as_factory(params: MultiModalGuiderParams | MultiModalGuiderFactory) -> MultiModalGuiderFactory:
    if isinstance(params, MultiModalGuiderFactory):
        return params
    if isinstance(params, MultiModalGuiderParams):
        return MultiModalGuiderFactory.constant(params)
    raise ValueError(f"guider params must be MultiModalGuiderParams or MultiModalGuiderFactory, got {type(params)}")


@dataclass
class Audio:
    """A decoded waveform (channels, samples), float32 in [-1, 1], and its sampling rate."""

    waveform: torch.Tensor
    sampling_rate: int


LTX_2_VIDEO_GUIDER_PARAMS = MultiModalGuiderParams(3.0, 1.0, [29], 0.7, 3.0, 0)
LTX_2_AUDIO_GUIDER_PARAMS = MultiModalGuiderParams(7.0, 1.0, [29], 0.7, 3.0, 0)
LTX_2_3_STG_BLOCK = 28


def frame_chunks(frames: torch.Tensor) -> Iterator[torch.Tensor]:
    """The decoded video as ltx-pipelines returns it: an iterator over (F, H, W, 3) uint8 chunks (one here)."""
    yield frames
