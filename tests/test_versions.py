"""LTX versions from configs and headers, and the call defaults each version gets (diffusers 0.42.1's for 2.3)."""

import inspect

import pytest
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline

from ltx2.versions import (
    DEFAULT_IMAGE_CRF,
    LTX_2_0,
    LTX_2_3,
    call_defaults,
    config_version,
    resolve_call_kwargs,
)

LTX_2_3_TRANSFORMER = dict(gated_attn=True, cross_attn_mod=True, audio_gated_attn=True, audio_cross_attn_mod=True,
                           perturbed_attn=True, use_prompt_embeddings=False)


def test_versions_from_configs():
    assert config_version({}) == LTX_2_0
    assert config_version({"gated_attn": False, "perturbed_attn": False, "use_prompt_embeddings": True}) == LTX_2_0
    assert config_version(LTX_2_3_TRANSFORMER) == LTX_2_3
    assert config_version({"perturbed_attn": True}) == LTX_2_3
    assert config_version({}, {"per_modality_projections": True}) == LTX_2_3
    assert config_version({**LTX_2_3_TRANSFORMER, "ff_bias": False}) == "2.5"


def test_ltx_2_3_defaults_are_diffusers_0_42_1_call_defaults():
    """Every version-dependent default of 2.3 is the reference's own signature default."""
    for reference in (ReferencePipeline, ReferenceImageToVideo):
        signature = inspect.signature(reference.__call__).parameters
        for key, value in call_defaults(LTX_2_3).items():
            assert signature[key].default == value, key
    assert inspect.signature(ReferenceImageToVideo.__call__).parameters["image_crf"].default is None
    assert DEFAULT_IMAGE_CRF == 33  # what the reference resolves None to for a Gemma 3 text encoder


def test_ltx_2_0_keeps_the_seed_defaults():
    defaults = resolve_call_kwargs(LTX_2_0, {})
    assert defaults == dict(
        num_inference_steps=40, guidance_scale=4.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0,
        audio_guidance_scale=4.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0,
        spatio_temporal_guidance_blocks=None, use_cross_timestep=False,
    )


def test_passed_values_override_and_audio_zero_means_zero():
    resolved = resolve_call_kwargs(LTX_2_0, dict(guidance_scale=5.0, stg_scale=1.0, audio_stg_scale=0.0,
                                                 spatio_temporal_guidance_blocks=[3]))
    assert resolved["audio_guidance_scale"] == 5.0  # None follows the video value on 2.0
    assert resolved["stg_scale"] == 1.0 and resolved["audio_stg_scale"] == 0.0  # diffusers' `or` would give 1.0
    resolved = resolve_call_kwargs(LTX_2_3, dict(guidance_scale=1.0, audio_guidance_rescale=0.0))
    assert resolved["audio_guidance_scale"] == 7.0 and resolved["audio_guidance_rescale"] == 0.0
    assert resolve_call_kwargs(LTX_2_3, {})["spatio_temporal_guidance_blocks"] == [28]
    with pytest.raises(ValueError, match="LTX version '2.5' has no call defaults"):
        call_defaults("2.5")
