"""LTX versions: which one a model's configs (or a single file's header) describe, and the call defaults of each.

A diffusers folder carries no version marker: LTX-2.3 shows in its component configs, which switch on what
LTX-2.0 leaves neutral. Lightricks' single files name their version in the header (`model_version`); that is
read by `loading.single_file.checkpoint_version`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LTX_2_0 = "2.0"
LTX_2_3 = "2.3"
LTX_2_5 = "2.5"
VERSIONS = (LTX_2_0, LTX_2_3)
# transformers' model types of LTX-2.5's text encoder (Gemma 4), whole or its text part.
GEMMA_4_MODEL_TYPES = ("gemma4_unified", "gemma4", "gemma4_unified_text", "gemma4_text")

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
# H.264 CRF an image-to-video image is re-compressed at (the compression LTX-2.0 and 2.3 were trained on).
DEFAULT_IMAGE_CRF = 33
LTX_2_5_IMAGE_CRF = 18


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
