"""LTX versions, in one table: their names, which one a model's configs describe, the call defaults of each, the
CRF conditioning images are re-compressed at, the distilled sigmas, and the files Lightricks releases beside each.

A diffusers folder carries no version marker: LTX-2.3 shows in its component configs, which switch on what
LTX-2.0 leaves neutral. Lightricks' single files name their version in the header (`model_version`); that is
read by `loading.single_file.checkpoint_version`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LTX_2_0 = "2.0"
LTX_2_3 = "2.3"
VERSIONS = (LTX_2_0, LTX_2_3)

# Transformer settings (diffusers config keys) that LTX-2.3 turns on and LTX-2.0 leaves neutral.
_LTX_2_3_TRANSFORMER = {"gated_attn": True, "audio_gated_attn": True, "cross_attn_mod": True,
                        "audio_cross_attn_mod": True, "perturbed_attn": True, "use_prompt_embeddings": False}
# ... and those a later version (2.5) changes as well.
_LATER_TRANSFORMER = {"ff_bias": False, "audio_ff_bias": False, "use_keyframes_abs_pos_embedding": True}

# The call defaults diffusers 0.42.1 gives LTX-2.3; LTX-2.0 keeps the seed's (40 steps, plain CFG 4.0).
# None for an audio scale means "the video value".
CALL_DEFAULTS: dict[str, dict[str, Any]] = {
    LTX_2_0: dict(
        num_inference_steps=40, guidance_scale=4.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0,
        audio_guidance_scale=None, audio_stg_scale=None, audio_modality_scale=None, audio_guidance_rescale=None,
        spatio_temporal_guidance_blocks=None, use_cross_timestep=False,
    ),
    LTX_2_3: dict(
        num_inference_steps=30, guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
        audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0, audio_guidance_rescale=0.7,
        spatio_temporal_guidance_blocks=[28], use_cross_timestep=True,
    ),
}
# Each audio scale and the video scale it falls back to.
AUDIO_FALLBACKS = {"audio_guidance_scale": "guidance_scale", "audio_stg_scale": "stg_scale",
                   "audio_modality_scale": "modality_scale", "audio_guidance_rescale": "guidance_rescale"}
# (frames, height, width) pixels per latent cell of every LTX-2 video VAE (after the first frame, for frames).
VIDEO_VAE_COMPRESSION = (8, 32, 32)
# H.264 CRF an image-to-video image is re-compressed at (the compression LTX-2.0 and 2.3 were trained on).
DEFAULT_IMAGE_CRF = 33
# The distilled model's 8-step stage-1 schedule, and its last 3 steps, used for stage 2 (the final 0 is implied).
DISTILLED_SIGMA_VALUES = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875]
STAGE_2_DISTILLED_SIGMA_VALUES = [0.909375, 0.725, 0.421875]


@dataclass(frozen=True)
class Release:
    """The files Lightricks publishes beside an LTX version's dev checkpoint, for the distilled and two-stage flows:
    the Hub repo, the distilled single file, the distilled LoRA, and the latent upsamplers by scale."""

    repo: str
    distilled: str
    distilled_lora: str
    upsamplers: dict[float, str]


RELEASES = {
    LTX_2_0: Release("Lightricks/LTX-2", "ltx-2-19b-distilled.safetensors", "ltx-2-19b-distilled-lora-384.safetensors",
                     {2.0: "ltx-2-spatial-upscaler-x2-1.0.safetensors"}),
    LTX_2_3: Release("Lightricks/LTX-2.3", "ltx-2.3-22b-distilled-1.1.safetensors",
                     "ltx-2.3-22b-distilled-lora-384-1.1.safetensors",
                     {2.0: "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
                      1.5: "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors"}),
}


def config_version(transformer: Mapping[str, Any], connectors: Mapping[str, Any] | None = None) -> str:
    """The LTX version ("2.0", "2.3", or "2.5" for what is later still) that diffusers configs describe."""
    if any(transformer.get(key, not value) == value for key, value in _LATER_TRANSFORMER.items()):
        return "2.5"
    later = any(transformer.get(key, not value) == value for key, value in _LTX_2_3_TRANSFORMER.items())
    if later or (connectors or {}).get("per_modality_projections"):
        return LTX_2_3
    return LTX_2_0


def folder_version(folder: str | Path) -> str:
    """The LTX version of a diffusers pipeline folder, from its transformer's and connectors' configs."""
    configs = {}
    for name in ("transformer", "connectors"):
        path = Path(folder) / name / "config.json"
        configs[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return config_version(configs["transformer"], configs["connectors"])


def call_defaults(version: str) -> dict[str, Any]:
    """A copy of the call defaults for `version`."""
    if version not in CALL_DEFAULTS:
        raise ValueError(f"LTX version {version!r} has no call defaults in ltx2 (it knows {', '.join(VERSIONS)})")
    return {key: list(value) if isinstance(value, list) else value for key, value in CALL_DEFAULTS[version].items()}


def resolve_call_kwargs(version: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The version's defaults with every non-None value of `given` in their place; then each audio scale still
    None takes its video value (an explicit 0.0 stays 0.0)."""
    resolved = call_defaults(version)
    resolved.update({key: value for key, value in given.items() if value is not None})
    for audio, video in AUDIO_FALLBACKS.items():
        if resolved[audio] is None:
            resolved[audio] = resolved[video]
    return resolved
