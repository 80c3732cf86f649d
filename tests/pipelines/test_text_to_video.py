"""LTX2Pipeline and the two seed flows, end to end against the reference pipelines (float32, CPU)."""

import copy

import diffusers
import numpy as np
import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline as ReferenceUpsamplePipeline
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler

from ltx2 import (
    DISTILLED_SIGMA_VALUES,
    STAGE_2_DISTILLED_SIGMA_VALUES,
    FlowMatchEulerDiscreteScheduler,
    LTX2LatentUpsamplePipeline,
    LTX2LatentUpsamplerModel,
    LTX2Pipeline,
    LTX2PipelineOutput,
)
from ltx2.pipelines.two_stage import generate_two_stages
from parity import LEGACY, relative_l2
from pipeline_calls import CALL, make_lora


def reference_call(reference, seed: int, **kwargs):
    options = {**CALL, **kwargs}
    return reference(
        **options, **LEGACY, audio_guidance_scale=options["guidance_scale"],
        generator=torch.Generator().manual_seed(seed), return_dict=False,
    )


def our_call(pipe, seed: int, **kwargs):
    return pipe(**{**CALL, **kwargs}, generator=torch.Generator().manual_seed(seed), return_dict=False)


@pytest.fixture(scope="module")
def pipes(pipeline_folder):
    folder, reference = pipeline_folder
    ours = LTX2Pipeline.from_pretrained(folder)
    ours.set_progress_bar_config(disable=True)
    return ours, reference


def assert_close(ours, reference, tolerance):
    assert ours.shape == reference.shape
    assert relative_l2(ours, reference) <= tolerance


@torch.no_grad()
def test_stage_one_latents_match_reference(pipes):
    ours, reference = pipes
    video, audio = our_call(ours, 0, output_type="latent")
    expected_video, expected_audio = reference_call(reference, 0, output_type="latent")
    assert_close(video, expected_video, 1e-4)
    assert_close(audio, expected_audio, 1e-4)


@torch.no_grad()
def test_every_guidance_keyword_on_ltx_2_0_matches_reference(pipes):
    """LTX-2.0 weights with LTX-2.3's guidance passed in full: CFG, STG (an unperturbed pass on a model without
    perturbed attention, in both), modality isolation, rescale and separate audio scales, in x0 space."""
    ours, reference = pipes
    guidance = dict(guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
                    audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0,
                    audio_guidance_rescale=0.7, spatio_temporal_guidance_blocks=[1], use_cross_timestep=False)
    video, audio = our_call(ours, 5, output_type="latent", **guidance)
    expected_video, expected_audio = reference(**{**CALL, **guidance}, output_type="latent", return_dict=False,
                                               generator=torch.Generator().manual_seed(5))
    assert_close(video, expected_video, 1e-4)
    assert_close(audio, expected_audio, 1e-4)
    plain, _ = our_call(ours, 5, output_type="latent")
    assert relative_l2(plain, video) > 1e-3


@torch.no_grad()
def test_ltx_2_0_defaults_and_an_explicit_zero_audio_scale(pipes):
    ours, reference = pipes
    assert ours.model_version == "2.0"
    defaults = ours.default_call_kwargs()
    steps_and_scales = defaults["num_inference_steps"], defaults["guidance_scale"], defaults["audio_guidance_scale"]
    assert steps_and_scales == (40, 4.0, 4.0)
    assert defaults["stg_scale"] == 0.0 and defaults["use_cross_timestep"] is False
    assert ours.default_call_kwargs(guidance_scale=2.0)["audio_guidance_scale"] == 2.0
    # audio_guidance_rescale=0.0 is zero here; diffusers' `audio_x or x` takes the video value 0.7 instead.
    options = dict(guidance_scale=3.0, guidance_rescale=0.7, audio_guidance_rescale=0.0)
    _, audio = our_call(ours, 6, output_type="latent", **options)
    _, expected_audio = reference(**{**CALL, **LEGACY, **options}, output_type="latent", return_dict=False,
                                  generator=torch.Generator().manual_seed(6), audio_guidance_scale=3.0)
    assert relative_l2(audio, expected_audio) > 1e-4
    _, without_rescale = our_call(ours, 6, output_type="latent", guidance_scale=3.0, guidance_rescale=0.7,
                                  audio_guidance_rescale=1e-30)
    assert_close(audio, without_rescale, 1e-6)


@torch.no_grad()
def test_decoded_video_and_audio_match_reference(pipes):
    ours, reference = pipes
    video, audio = our_call(ours, 1, output_type="pt", num_videos_per_prompt=2)
    expected_video, expected_audio = reference_call(reference, 1, output_type="pt", num_videos_per_prompt=2)
    assert video.shape == (2, 9, 3, 32, 32)
    assert_close(video, expected_video, 1e-3)
    assert_close(audio, expected_audio, 1e-3)


@torch.no_grad()
def test_output_formats(pipes):
    ours, _ = pipes
    one_step = {**CALL, "num_inference_steps": 1}
    output = ours(**one_step, generator=torch.Generator().manual_seed(0), output_type="np")
    assert isinstance(output, LTX2PipelineOutput)
    assert isinstance(output.frames, np.ndarray) and output.frames.shape == (1, 9, 32, 32, 3)
    assert 0 <= output.frames.min() and output.frames.max() <= 1
    frames = ours(**one_step, generator=torch.Generator().manual_seed(0), output_type="pil").frames
    assert len(frames) == 1 and len(frames[0]) == 9 and frames[0][0].size == (32, 32)
    assert np.abs(np.asarray(frames[0][3]) / 255.0 - output.frames[0, 3]).max() <= 1 / 255 + 1e-6


@torch.no_grad()
def test_two_stage_flow_with_lora_matches_reference(pipes, pipeline_folder, tmp_path):
    """The seed's first sample: stage 1 with CFG, 2x latent upsampling, stage 2 with a LoRA and re-noising."""
    ours, reference = pipes
    folder, _ = pipeline_folder
    lora = make_lora(reference.transformer, tmp_path / "lora.safetensors")
    video_latent, audio_latent = our_call(ours, 2, output_type="latent")
    ref_video_latent, ref_audio_latent = reference_call(reference, 2, output_type="latent")

    upsampler = LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder="latent_upsampler")
    upsampled = LTX2LatentUpsamplePipeline(vae=ours.vae, latent_upsampler=upsampler)(
        latents=video_latent, output_type="latent", return_dict=False
    )[0]
    ref_upsampler = ReferenceUpsampler.from_pretrained(folder, subfolder="latent_upsampler")
    ref_upsampled = ReferenceUpsamplePipeline(vae=reference.vae, latent_upsampler=ref_upsampler)(
        latents=ref_video_latent, output_type="latent", return_dict=False
    )[0]
    assert_close(upsampled, ref_upsampled, 1e-4)

    stage_two = copy.copy(ours)
    stage_two.load_lora_weights(str(lora), adapter_name="stage_2_distilled")
    stage_two.set_adapters("stage_2_distilled", 1.0)
    stage_two.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        ours.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    reference_two = copy.copy(reference)
    reference_two.load_lora_weights(str(lora), adapter_name="stage_2_distilled")
    reference_two.set_adapters("stage_2_distilled", 1.0)
    reference_two.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        reference.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    stage_two_args = dict(
        num_inference_steps=3, noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0], sigmas=STAGE_2_DISTILLED_SIGMA_VALUES,
        guidance_scale=1.0, output_type="pt",
    )
    try:
        video, audio = our_call(stage_two, 3, latents=upsampled, audio_latents=audio_latent, **stage_two_args)
        expected_video, expected_audio = reference_call(
            reference_two, 3, latents=ref_upsampled, audio_latents=ref_audio_latent, **stage_two_args
        )
    finally:
        stage_two.unload_lora_weights()
        reference_two.unload_lora_weights()
    assert video.shape == (1, 9, 3, 64, 64)
    assert_close(video, expected_video, 1e-3)
    assert_close(audio, expected_audio, 1e-3)
    without_lora, _ = our_call(stage_two, 3, latents=upsampled, audio_latents=audio_latent, **stage_two_args)
    assert relative_l2(without_lora, video) > 1e-3  # the LoRA really took part


@torch.no_grad()
def test_library_two_stage_flow_matches_reference(pipes, pipeline_folder, tmp_path):
    """generate_two_stages (what `ltx2 generate` runs) against the reference's two-stage flow driven by hand, one
    generator through both stages; the pipeline's scheduler is left as it was (schedules are per call)."""
    ours, reference = pipes
    folder, _ = pipeline_folder
    lora = make_lora(reference.transformer, tmp_path / "lora.safetensors")
    stage_two = dict(num_inference_steps=3, noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0],
                     sigmas=STAGE_2_DISTILLED_SIGMA_VALUES, guidance_scale=1.0)
    common = {key: CALL[key] for key in ("prompt", "negative_prompt", "num_frames", "frame_rate", "max_sequence_length")}
    stage_one = {key: CALL[key] for key in ("height", "width", "num_inference_steps", "guidance_scale")}
    scheduler_state = (ours.scheduler.timesteps, dict(ours.scheduler.config))
    upsampler = LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder="latent_upsampler")
    try:
        video, audio = generate_two_stages(
            ours, upsampler, stage_one, stage_two,
            {**common, "generator": torch.Generator().manual_seed(5), "return_dict": False},
            distilled_lora=str(lora), output_type="pt",
        )
    finally:
        ours.unload_lora_weights()
    assert ours.scheduler.timesteps is scheduler_state[0] and dict(ours.scheduler.config) == scheduler_state[1]

    generator = torch.Generator().manual_seed(5)
    latents, audio_latents = reference(**CALL, **LEGACY, audio_guidance_scale=4.0, output_type="latent",
                                       generator=generator, return_dict=False)
    ref_upsampler = ReferenceUpsampler.from_pretrained(folder, subfolder="latent_upsampler")
    upsampled = ReferenceUpsamplePipeline(vae=reference.vae, latent_upsampler=ref_upsampler)(
        latents=latents, output_type="latent", return_dict=False
    )[0]
    reference_two = copy.copy(reference)
    reference_two.load_lora_weights(str(lora), adapter_name="stage_2_distilled")
    reference_two.set_adapters("stage_2_distilled", 1.0)
    reference_two.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        reference.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    try:
        expected_video, expected_audio = reference_two(
            **{**CALL, **stage_two}, **LEGACY, audio_guidance_scale=1.0, latents=upsampled,
            audio_latents=audio_latents, output_type="pt", generator=generator, return_dict=False,
        )
    finally:
        reference_two.unload_lora_weights()
    assert video.shape == (1, 9, 3, 64, 64)
    assert_close(video, expected_video, 1e-3)
    assert_close(audio, expected_audio, 1e-3)


@torch.no_grad()
def test_distilled_flow_matches_reference(pipes):
    """The seed's second sample: distilled sigmas without shifting at stage 1, no CFG."""
    ours, reference = pipes
    distilled = copy.copy(ours)
    distilled.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        ours.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    reference_distilled = copy.copy(reference)
    reference_distilled.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        reference.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    args = dict(num_inference_steps=8, sigmas=DISTILLED_SIGMA_VALUES, guidance_scale=1.0, output_type="latent")
    video, audio = our_call(distilled, 4, **args)
    expected_video, expected_audio = reference_call(reference_distilled, 4, **args)
    assert_close(video, expected_video, 1e-4)
    assert_close(audio, expected_audio, 1e-4)


