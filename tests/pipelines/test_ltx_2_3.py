"""LTX-2.3 generation end to end against the reference, both at their defaults: CFG, STG through perturbed
attention, modality isolation, rescale, separate audio scales and the cross timestep, combined in x0 space."""

import copy

import diffusers
import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline as ReferenceUpsamplePipeline
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler

from ltx2 import (
    DISTILLED_SIGMA_VALUES,
    STAGE_2_DISTILLED_SIGMA_VALUES,
    FlowMatchEulerDiscreteScheduler,
    LTX2ImageToVideoPipeline,
    LTX2LatentUpsamplePipeline,
    LTX2LatentUpsamplerModel,
    LTX2Pipeline,
)
from ltx2.pipelines.guidance import GUIDANCE_OFF
from parity import perturb_, relative_l2
from pipeline_calls import LTX_2_3_CALL as CALL
from pipeline_calls import make_lora, photo
from tiny_pipeline import UPSAMPLER


def call(pipe, seed: int, **kwargs):
    return pipe(**{**CALL, **kwargs}, generator=torch.Generator().manual_seed(seed), return_dict=False)


@pytest.fixture(scope="module")
def pipes(ltx_2_3_folder):
    folder, reference = ltx_2_3_folder
    ours = LTX2Pipeline.from_pretrained(folder)
    ours.set_progress_bar_config(disable=True)
    return ours, reference


def test_version_and_defaults(pipes):
    ours, _ = pipes
    assert ours.model_version == "2.3"
    defaults = ours.default_call_kwargs()
    assert defaults == dict(
        num_inference_steps=30, guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
        audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0, audio_guidance_rescale=0.7,
        spatio_temporal_guidance_blocks=[28], use_cross_timestep=True,
    )


@torch.no_grad()
@pytest.mark.parametrize(("output_type", "tolerance"), [("latent", 1e-4), ("pt", 1e-3)])
def test_defaults_match_reference(pipes, output_type, tolerance):
    ours, reference = pipes
    video, audio = call(ours, 0, output_type=output_type)
    expected_video, expected_audio = call(reference, 0, output_type=output_type)
    assert video.shape == expected_video.shape and audio.shape == expected_audio.shape
    assert relative_l2(video, expected_video) <= tolerance
    assert relative_l2(audio, expected_audio) <= tolerance


@torch.no_grad()
def test_each_guidance_term_takes_part(pipes):
    """Turning any one term off changes the result, on both sides alike. (The cross timestep matters where the
    streams' timesteps differ: image-to-video, below.)"""
    ours, reference = pipes
    video, _ = call(ours, 1, output_type="latent")
    for off in (dict(stg_scale=0.0, audio_stg_scale=0.0), dict(modality_scale=1.0, audio_modality_scale=1.0),
                dict(guidance_rescale=0.0, audio_guidance_rescale=0.0), dict(spatio_temporal_guidance_blocks=[0])):
        changed, changed_audio = call(ours, 1, output_type="latent", **off)
        expected, expected_audio = call(reference, 1, output_type="latent", **off)
        assert relative_l2(changed, expected) <= 1e-4 and relative_l2(changed_audio, expected_audio) <= 1e-4
        assert relative_l2(changed, video) > 1e-4, off


@torch.no_grad()
def test_image_to_video_at_the_default_crf_matches_reference(ltx_2_3_folder):
    folder, _ = ltx_2_3_folder
    ours = LTX2ImageToVideoPipeline.from_pretrained(folder)
    reference = ReferenceImageToVideo.from_pretrained(folder)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    video, audio = call(ours, 2, image=photo(), output_type="latent")
    expected_video, expected_audio = call(reference, 2, image=photo(), output_type="latent")
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    # The first frame's tokens see timestep 0, so the cross timestep (the other stream's sigma) matters here.
    own_timesteps, _ = call(ours, 2, image=photo(), output_type="latent", use_cross_timestep=False)
    expected, _ = call(reference, 2, image=photo(), output_type="latent", use_cross_timestep=False)
    assert relative_l2(own_timesteps, expected) <= 1e-4 and relative_l2(own_timesteps, video) > 1e-4


@torch.no_grad()
def test_two_stage_flow_matches_reference(pipes, ltx_2_3_folder, tmp_path):
    """Stage 1 at the LTX-2.3 defaults, x2 latent upsampling, stage 2 with the distilled LoRA on the distilled
    sigmas without guidance (every guidance term passed off: the 2.3 defaults would keep them on)."""
    ours, reference = pipes
    folder, _ = ltx_2_3_folder
    lora = make_lora(reference.transformer, tmp_path / "lora.safetensors")
    video_latent, audio_latent = call(ours, 3, output_type="latent")
    ref_video_latent, ref_audio_latent = call(reference, 3, output_type="latent")
    upsampled = LTX2LatentUpsamplePipeline(
        vae=ours.vae, latent_upsampler=LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder="latent_upsampler")
    )(latents=video_latent, output_type="latent", return_dict=False)[0]
    ref_upsampled = ReferenceUpsamplePipeline(
        vae=reference.vae, latent_upsampler=ReferenceUpsampler.from_pretrained(folder, subfolder="latent_upsampler")
    )(latents=ref_video_latent, output_type="latent", return_dict=False)[0]
    assert relative_l2(upsampled, ref_upsampled) <= 1e-4

    stage_two, reference_two = without_shifting(ours), without_shifting(reference)
    for pipe in (stage_two, reference_two):
        pipe.load_lora_weights(str(lora), adapter_name="stage_2_distilled")
        pipe.set_adapters("stage_2_distilled", 1.0)
    stage_two_args = dict(num_inference_steps=3, noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0],
                          sigmas=STAGE_2_DISTILLED_SIGMA_VALUES, output_type="pt", **GUIDANCE_OFF)
    try:
        video, audio = call(stage_two, 4, latents=upsampled, audio_latents=audio_latent, **stage_two_args)
        expected_video, expected_audio = call(reference_two, 4, latents=ref_upsampled, audio_latents=ref_audio_latent,
                                              **stage_two_args)
    finally:
        stage_two.unload_lora_weights()
        reference_two.unload_lora_weights()
    assert video.shape == (1, 9, 3, 64, 64)
    assert relative_l2(video, expected_video) <= 1e-3 and relative_l2(audio, expected_audio) <= 1e-3


def without_shifting(pipe):
    """A shallow copy of `pipe` whose scheduler uses the distilled sigmas as given."""
    ours = isinstance(pipe, LTX2Pipeline)
    scheduler = FlowMatchEulerDiscreteScheduler if ours else diffusers.FlowMatchEulerDiscreteScheduler
    copied = copy.copy(pipe)
    copied.scheduler = scheduler.from_config(pipe.scheduler.config, use_dynamic_shifting=False, shift_terminal=None)
    return copied


@torch.no_grad()
def test_distilled_flow_matches_reference(pipes):
    """The distilled schedule (8 sigmas, no shifting) without guidance, as for ltx-2.3-22b-distilled-1.1."""
    ours, reference = map(without_shifting, pipes)
    args = dict(num_inference_steps=8, sigmas=DISTILLED_SIGMA_VALUES, output_type="latent", **GUIDANCE_OFF)
    video, audio = call(ours, 5, **args)
    expected_video, expected_audio = call(reference, 5, **args)
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4


@torch.no_grad()
def test_x1_5_upsampler_two_stage_matches_reference(pipes, tmp_path):
    """LTX-2.3's x1.5 spatial upsampler (rational resampler) between the stages: 4x4 latents become 6x6."""
    ours, reference = pipes
    config = dict(UPSAMPLER, rational_spatial_scale=1.5, use_rational_resampler=True)
    torch.manual_seed(8)
    reference_upsampler = perturb_(ReferenceUpsampler(**config).eval(), seed=8, scale=0.05)
    reference_upsampler.save_pretrained(tmp_path)
    video_latent, audio_latent = call(ours, 6, output_type="latent")
    upsampled = LTX2LatentUpsamplePipeline(vae=ours.vae, latent_upsampler=LTX2LatentUpsamplerModel.from_pretrained(
        tmp_path))(latents=video_latent, output_type="latent", return_dict=False)[0]
    expected = ReferenceUpsamplePipeline(vae=reference.vae, latent_upsampler=reference_upsampler)(
        latents=video_latent, output_type="latent", return_dict=False)[0]
    assert upsampled.shape[-2:] == (6, 6) and relative_l2(upsampled, expected) <= 1e-4
    stage_two = dict(num_inference_steps=3, noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0],
                     sigmas=STAGE_2_DISTILLED_SIGMA_VALUES, output_type="pt", **GUIDANCE_OFF)
    video, audio = call(without_shifting(ours), 7, latents=upsampled, audio_latents=audio_latent, **stage_two)
    expected_video, expected_audio = call(without_shifting(reference), 7, latents=upsampled,
                                          audio_latents=audio_latent, **stage_two)
    assert video.shape == (1, 9, 3, 48, 48)
    assert relative_l2(video, expected_video) <= 1e-3 and relative_l2(audio, expected_audio) <= 1e-3
