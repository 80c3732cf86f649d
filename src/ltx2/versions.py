"""LTX versions, in one table: their names, which one a model's configs describe, the call defaults of each, the
CRF conditioning images are re-compressed at, the distilled sigmas, and the files Lightricks releases beside each.

A diffusers folder carries no version marker: LTX-2.3 shows in its component configs, which switch on what
LTX-2.0 leaves neutral; LTX-2.5 in its transformer's 2.5 keys (a video feed-forward without bias, the keyframe
position embedding) and in its text encoder, Gemma 4. Lightricks' single files name their version in the header
(`model_version`); that is read by `loading.single_file.checkpoint_version`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LTX_2_0 = "2.0"
LTX_2_3 = "2.3"
LTX_2_5 = "2.5"
VERSIONS = (LTX_2_0, LTX_2_3, LTX_2_5)

# Transformer settings (diffusers config keys) that LTX-2.3 turns on and LTX-2.0 leaves neutral.
_LTX_2_3_TRANSFORMER = {"gated_attn": True, "audio_gated_attn": True, "cross_attn_mod": True,
                        "audio_cross_attn_mod": True, "perturbed_attn": True, "use_prompt_embeddings": False}
# ... and those that only LTX-2.5 (diffusers' converter: ff_bias=False, the keyframe embedding) or a 2.5
# variant (use_prompt_adaln_single=False, audio_ff_bias=False) sets.
_LTX_2_5_TRANSFORMER = {"ff_bias": False, "audio_ff_bias": False, "use_keyframes_abs_pos_embedding": True,
                        "use_prompt_adaln_single": False}
# transformers' model types of LTX-2.5's text encoder (Gemma 4), whole or its text part.
GEMMA_4_MODEL_TYPES = ("gemma4_unified", "gemma4", "gemma4_unified_text", "gemma4_text")

# The call defaults diffusers 0.42.1 gives LTX-2.3 and LTX-2.5 (its LTX2Pipeline and LTX2ImageToVideoPipeline have one
# set of signature defaults for both); LTX-2.0 keeps the seed's (40 steps, plain CFG 4.0).
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
CALL_DEFAULTS[LTX_2_5] = dict(CALL_DEFAULTS[LTX_2_3])
# Each audio scale and the video scale it falls back to.
AUDIO_FALLBACKS = {"audio_guidance_scale": "guidance_scale", "audio_stg_scale": "stg_scale",
                   "audio_modality_scale": "modality_scale", "audio_guidance_rescale": "guidance_rescale"}
# (frames, height, width) pixels per latent cell of every LTX-2 video VAE (after the first frame, for frames).
VIDEO_VAE_COMPRESSION = (8, 32, 32)
# H.264 CRF an image-to-video image is re-compressed at (the compression LTX-2.0 and 2.3 were trained on), and
# LTX-2.5's (0.42.1 picks it when the text encoder is a Gemma 4).
DEFAULT_IMAGE_CRF = 33
LTX_2_5_IMAGE_CRF = 18
# The distilled model's 8-step stage-1 schedule, and its last 3 steps, used for stage 2 (the final 0 is implied).
DISTILLED_SIGMA_VALUES = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875]
STAGE_2_DISTILLED_SIGMA_VALUES = [0.909375, 0.725, 0.421875]

# The rest of what a call defaults to per version, as diffusers 0.42.1's 2.5 pipelines resolve it:
# - image_crf: the H.264 CRF image conditions are re-compressed at;
# - num_frames: None means "predicted by the duration head" (LTX-2.5 folders ship one; 0.42.1 falls back to 121
#   when a pipeline has none), clamped to [min_seconds, max_seconds] at the frame rate;
# - sigmas: None means the plain linear schedule linspace(1, 1 / steps, steps), then shifted as the scheduler's
#   config says (the dev configs shift with the token count; the distilled 2.5 config, without dynamic shifting,
#   leaves it linear). Lightricks' distilled 8-step schedule is DISTILLED_SIGMA_VALUES, which
#   0.42.1's LTX2DFRPipeline takes by default (DFR_DEFAULTS, with its size).
INPUT_DEFAULTS: dict[str, dict[str, Any]] = {
    LTX_2_0: dict(image_crf=DEFAULT_IMAGE_CRF, num_frames=121, min_seconds=1.0, max_seconds=20.0, sigmas=None,
                  height=512, width=768, frame_rate=24.0),
    LTX_2_3: dict(image_crf=DEFAULT_IMAGE_CRF, num_frames=121, min_seconds=1.0, max_seconds=20.0, sigmas=None,
                  height=512, width=768, frame_rate=24.0),
    LTX_2_5: dict(image_crf=LTX_2_5_IMAGE_CRF, num_frames=None, min_seconds=1.0, max_seconds=20.0, sigmas=None,
                  height=512, width=768, frame_rate=24.0),
}
# LTX2DFRPipeline's (LTX-2.5 only): the distilled schedule without guidance, at 704 x 1216.
DFR_DEFAULTS = dict(height=704, width=1216, sigmas=DISTILLED_SIGMA_VALUES, frame_rate=24.0, num_frames=None,
                    min_seconds=1.0, max_seconds=20.0, use_cross_timestep=True)


@dataclass(frozen=True)
class Release:
    """The files Lightricks publishes beside an LTX version's dev checkpoint, for the distilled and two-stage flows:
    the Hub repo, the distilled single file, the distilled LoRA, and the latent upsamplers by scale."""

    repo: str
    distilled: str | None  # None: the repo's own transformer is the distilled one (LTX-2.5's diffusers repo)
    distilled_lora: str
    upsamplers: dict[float, str]


RELEASES = {
    LTX_2_0: Release("Lightricks/LTX-2", "ltx-2-19b-distilled.safetensors", "ltx-2-19b-distilled-lora-384.safetensors",
                     {2.0: "ltx-2-spatial-upscaler-x2-1.0.safetensors"}),
    LTX_2_3: Release("Lightricks/LTX-2.3", "ltx-2.3-22b-distilled-1.1.safetensors",
                     "ltx-2.3-22b-distilled-lora-384-1.1.safetensors",
                     {2.0: "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
                      1.5: "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors"}),
    # A diffusers repo: the distilled transformer in transformer/, the x2 upsampler in latent_upsampler/.
    LTX_2_5: Release("Lightricks/LTX-2.5-Diffusers", None, "ltx-2.5-22b-distilled-lora-450-bf16.safetensors",
                     {2.0: "latent_upsampler/"}),
}


def config_version(
    transformer: Mapping[str, Any],
    connectors: Mapping[str, Any] | None = None,
    text_encoder: Mapping[str, Any] | None = None,
) -> str:
    """The LTX version ("2.0", "2.3" or "2.5") that diffusers configs describe: the transformer's, the
    connectors' and the text encoder's config.json (a Gemma 4 text encoder is LTX-2.5's)."""
    if any(transformer.get(key, not value) == value for key, value in _LTX_2_5_TRANSFORMER.items()):
        return LTX_2_5
    if (text_encoder or {}).get("model_type") in GEMMA_4_MODEL_TYPES:
        return LTX_2_5
    later = any(transformer.get(key, not value) == value for key, value in _LTX_2_3_TRANSFORMER.items())
    if later or (connectors or {}).get("per_modality_projections"):
        return LTX_2_3
    return LTX_2_0


def folder_version(folder: str | Path) -> str:
    """The LTX version of a diffusers pipeline folder, from its transformer's, connectors' and text encoder's
    configs."""
    configs = {}
    for name in ("transformer", "connectors", "text_encoder"):
        path = Path(folder) / name / "config.json"
        configs[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return config_version(configs["transformer"], configs["connectors"], configs["text_encoder"])


def call_defaults(version: str) -> dict[str, Any]:
    """A copy of the call defaults for `version`."""
    if version not in CALL_DEFAULTS:
        raise ValueError(f"LTX version {version!r} has no call defaults in ltx2 (it knows {', '.join(VERSIONS)})")
    return {key: list(value) if isinstance(value, list) else value for key, value in CALL_DEFAULTS[version].items()}


def input_defaults(version: str) -> dict[str, Any]:
    """A copy of the non-guidance call defaults for `version` (INPUT_DEFAULTS)."""
    if version not in INPUT_DEFAULTS:
        raise ValueError(f"LTX version {version!r} has no call defaults in ltx2 (it knows {', '.join(VERSIONS)})")
    return dict(INPUT_DEFAULTS[version])


def resolve_call_kwargs(version: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The version's defaults with every non-None value of `given` in their place; then each audio scale still
    None takes its video value (an explicit 0.0 stays 0.0)."""
    resolved = call_defaults(version)
    resolved.update({key: value for key, value in given.items() if value is not None})
    for audio, video in AUDIO_FALLBACKS.items():
        if resolved[audio] is None:
            resolved[audio] = resolved[video]
    return resolved
