"""LTX versions from configs and headers, and the call defaults each version gets (diffusers 0.42.1's for 2.3)."""

import inspect

import pytest
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline

from ltx2.versions import (
    DEFAULT_IMAGE_CRF,
    LTX_2_0,
    LTX_2_3,
    LTX_2_5,
    LTX_2_5_IMAGE_CRF,
    call_defaults,
    folder_version,
    input_defaults,
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
    assert config_version({**LTX_2_3_TRANSFORMER, "ff_bias": False}) == LTX_2_5
    assert config_version({**LTX_2_3_TRANSFORMER, "use_keyframes_abs_pos_embedding": True}) == LTX_2_5
    assert config_version({**LTX_2_3_TRANSFORMER, "use_prompt_adaln_single": False}) == LTX_2_5
    assert config_version(LTX_2_3_TRANSFORMER, {}, {"model_type": "gemma4_unified"}) == LTX_2_5
    assert config_version(LTX_2_3_TRANSFORMER, {}, {"model_type": "gemma3"}) == LTX_2_3


def test_ltx_2_5_folder_version(ltx_2_5_folder):
    assert folder_version(ltx_2_5_folder[0]) == LTX_2_5


def test_ltx_2_5_defaults_are_diffusers_0_42_1_call_defaults():
    """0.42.1 has one set of signature defaults for 2.3 and 2.5; 2.5 differs in the CRF (Gemma 4), num_frames
    (the duration head) and, in LTX2DFRPipeline, the distilled schedule at 704 x 1216."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_dfr import LTX2DFRPipeline
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, LTX2_5_IMAGE_CRF, resolve_default_image_crf

    assert call_defaults(LTX_2_5) == call_defaults(LTX_2_3)
    for reference in (ReferencePipeline, ReferenceImageToVideo):
        signature = inspect.signature(reference.__call__).parameters
        for key, value in call_defaults(LTX_2_5).items():
            assert signature[key].default == value, key
        for key, value in input_defaults(LTX_2_5).items():
            if key in signature and key != "image_crf":
                assert signature[key].default == value, key
    gemma_4 = type("TextEncoder", (), {"config": type("Config", (), {"model_type": "gemma4_unified"})()})()
    assert input_defaults(LTX_2_5)["image_crf"] == LTX_2_5_IMAGE_CRF == LTX2_5_IMAGE_CRF
    assert resolve_default_image_crf(gemma_4) == LTX_2_5_IMAGE_CRF
    assert input_defaults(LTX_2_3)["image_crf"] == DEFAULT_IMAGE_CRF and input_defaults(LTX_2_3)["num_frames"] == 121
    from ltx2.versions import DFR_DEFAULTS

    dfr = inspect.signature(LTX2DFRPipeline.__call__).parameters
    for key, value in DFR_DEFAULTS.items():
        assert dfr[key].default == (list(value) if key == "sigmas" else value), key
    assert list(DFR_DEFAULTS["sigmas"]) == DISTILLED_SIGMA_VALUES


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
    with pytest.raises(ValueError, match="LTX version '2.6' has no call defaults"):
        call_defaults("2.6")
