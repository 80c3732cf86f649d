"""LTX-2.5 generation against the reference (diffusers 0.42.1) on a tiny LTX-2.5 folder it wrote: the length
from the duration head, the distilled scheduler's plain linear schedule, the documented distilled call (still
guided by STG, modality and rescale), image-to-video at CRF 18, and decoding through the diffusion decoder."""

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import LTX2VideoDiffusionDecoderModel as ReferenceDecoder
from diffusers.pipelines.ltx2 import LTX2ConditionPipeline as ReferenceCondition
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo
from diffusers.pipelines.ltx2 import LTX2VideoCondition as ReferenceVideoCondition
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline as ReferenceUpsamplePipeline
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline
from diffusers.pipelines.ltx2 import LTX2VideoDiffusionDecodePipeline as ReferenceDecodePipeline
from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead as ReferenceHead
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler

from ltx2 import (
    DISTILLED_SIGMA_VALUES,
    LTX2ConditionPipeline,
    LTX2ImageToVideoPipeline,
    LTX2LatentUpsamplePipeline,
    LTX2LatentUpsamplerModel,
    LTX2Pipeline,
    LTX2VideoCondition,
    LTX2VideoDiffusionDecodePipeline,
    LTX2VideoDiffusionDecoderModel,
)
from parity import perturb_, relative_l2
from test_image_to_video import photo

# Small and short, at 8 fps so that the predicted length (about 1.4 s) is 11 frames; the only other
# non-defaults: few steps, and an STG block that exists in the two-block tiny model.
CALL = dict(prompt="a robot dancing in the rain", negative_prompt="blurry low quality", height=32, width=32,
            frame_rate=8.0, num_inference_steps=3, max_sequence_length=16, spatio_temporal_guidance_blocks=[1])
# The tiny video VAE compresses 8x in space and 2x in time; so does this diffusion decoder (patch 2, then x2 in
# space, then x2 in space and time), with 3x3x3 neighbourhoods that fit the tiny latents.
DECODER = dict(out_channels=3, latent_channels=4, patch_size=2, decoder_head_dim=8, decoder_stage_channels=(16, 8, 8),
               decoder_stage_depths=(1, 1, 1), decoder_stage_kernels=((3, 3, 3), (3, 3, 3)),
               decoder_upsample_strides=((1, 2, 2), (2, 2, 2)), decoder_upsample_channel_reductions=(2, 1),
               decoder_stage5_kernel=(3, 3, 3), decoder_t_emb_dim=16, spatial_compression_ratio=8,
               temporal_compression_ratio=2)
# Sized to the tiny LTX-2.5 connectors' outputs (the transformer's video and audio widths).
HEAD = dict(video_cross_attention_dim=16, audio_cross_attention_dim=8, pooler_hidden_dim=16, num_queries=2,
            num_pooler_heads=2, mlp_hidden_dim=8)
SECONDS = 1.4  # what the head's output bias is set to predict, about


def call(pipe, seed: int, **kwargs):
    return pipe(**{**CALL, **kwargs}, generator=torch.Generator().manual_seed(seed), return_dict=False)


@pytest.fixture(scope="module")
def folder(ltx_2_5_folder, tmp_path_factory):
    """The tiny LTX-2.5 folder with a duration head (listed in model_index.json, as 0.42.1 saves it) and a
    diffusion decoder in diffusion_decoder/ (not listed, as the converter writes it), both perturbed."""
    source, _ = ltx_2_5_folder
    folder = tmp_path_factory.mktemp("tiny-ltx2.5-generation") / "pipeline"
    shutil.copytree(source, folder)
    torch.manual_seed(11)
    head = perturb_(ReferenceHead(**HEAD).eval(), seed=11, scale=0.05)
    with torch.no_grad():  # a prediction inside [min_seconds, max_seconds], so the length is not just clamped
        head.mlp_out.weight.mul_(0.05)
        head.mlp_out.bias.fill_(np.log(SECONDS))
    head.save_pretrained(folder / "duration_head")
    index = json.loads((folder / "model_index.json").read_text())
    index["duration_head"] = ["ltx2", "LTX2DurationHead"]
    (folder / "model_index.json").write_text(json.dumps(index))
    torch.manual_seed(12)
    perturb_(ReferenceDecoder(**DECODER).eval(), seed=12, scale=0.05).save_pretrained(folder / "diffusion_decoder")
    return folder


def load(ours_class, reference_class, folder):
    """Ours (without the diffusion decoder, which the tests that use it load) and the reference, from `folder`."""
    ours = ours_class.from_pretrained(folder, diffusion_decoder=None)
    reference = reference_class.from_pretrained(folder)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    return ours, reference


@pytest.fixture(scope="module")
def pipes(folder):
    ours, reference = load(LTX2Pipeline, ReferencePipeline, folder)
    assert reference.duration_head is not None and ours.duration_head is not None
    return ours, reference


def our_decoder(folder, tiled=False):
    decoder = LTX2VideoDiffusionDecoderModel.from_pretrained(folder / "diffusion_decoder")
    if tiled:
        decoder.enable_tiling(**TILES)
    return decoder


def reference_decoder(folder, vae=None, tiled=False):
    decoder = ReferenceDecoder.from_pretrained(folder / "diffusion_decoder")
    if tiled:
        decoder.enable_tiling(**TILES)
    pipe = ReferenceDecodePipeline(diffusion_decoder=decoder, scheduler=None, vae=vae)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# Tiles of 16 pixels and 6 frames every 8 pixels and 4 frames: a 5 x 4 x 4 latent decodes in several overlapping
# tiles in each direction.
TILES = dict(tile_sample_min_height=16, tile_sample_min_width=16, tile_sample_min_num_frames=6,
             tile_sample_stride_height=8, tile_sample_stride_width=8, tile_sample_stride_num_frames=4)


def test_version_defaults_and_linear_schedule(pipes):
    ours, reference = pipes
    assert ours.model_version == "2.5"
    assert ours.default_call_kwargs() == dict(
        num_inference_steps=30, guidance_scale=3.0, stg_scale=1.0, modality_scale=3.0, guidance_rescale=0.7,
        audio_guidance_scale=7.0, audio_stg_scale=1.0, audio_modality_scale=3.0, audio_guidance_rescale=0.7,
        spatio_temporal_guidance_blocks=[28], use_cross_timestep=True,
    )
    assert ours.default_image_crf == 18
    # No dynamic shifting: the default schedule stays linspace(1, 1/n, n), whatever the token count.
    video_scheduler, _ = ours.set_timesteps(30, None, None, 4096, torch.device("cpu"))
    expected = np.linspace(1.0, 1 / 30, 30)
    assert np.allclose(video_scheduler.sigmas[:-1].numpy(), expected, atol=1e-6)


@torch.no_grad()
def test_predicted_length_matches_reference(pipes):
    """num_frames=None at the 2.5 defaults: the head picks the length from the positive prompt at the playback
    frame rate (11 frames at 8 fps here), the linear schedule, CFG + STG + modality + rescale."""
    ours, reference = pipes
    video, audio = call(ours, 0, output_type="latent")
    expected_video, expected_audio = call(reference, 0, output_type="latent")
    assert video.shape == expected_video.shape and video.shape[2] == 6  # 11 frames at 8 fps
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    embeds = ours.encode_prompt(CALL["prompt"], do_classifier_free_guidance=False, max_sequence_length=16)
    duration = ours.predict_duration(ours.text_context(*embeds, cfg=False), False, 8.0)
    assert duration.num_frames == 11 and abs(duration.seconds - SECONDS) < 0.1


@torch.no_grad()
def test_diffusion_decoding_matches_reference(pipes, folder):
    """The predicted-length latents through the diffusion decoder: with decoder="diffusion" in one call (the
    generator goes on from sampling) against the reference's latents and its decode pipeline with that generator;
    and through LTX2VideoDiffusionDecodePipeline."""
    ours, reference = pipes
    video, _ = call(ours, 0, output_type="latent")
    expected_video, _ = call(reference, 0, output_type="latent")
    generator = torch.Generator().manual_seed(0)
    reference_latents, reference_audio = reference(**CALL, generator=generator, output_type="latent",
                                                   return_dict=False)
    expected_frames = reference_decoder(folder)(reference_latents, generator=generator, output_type="pt",
                                                denormalize=False, return_dict=False)[0]
    waveform = reference.vocoder(reference.audio_vae.decode(reference_audio, return_dict=False)[0])
    with_decoder = LTX2Pipeline.from_pretrained(folder)  # diffusion_decoder/ is loaded with the rest
    with_decoder.set_progress_bar_config(disable=True)
    frames, audio = call(with_decoder, 0, output_type="pt", decoder="diffusion")
    assert frames.shape == expected_frames.shape == (1, 11, 3, 32, 32)
    assert relative_l2(frames, expected_frames) <= 1e-3 and relative_l2(audio, waveform) <= 1e-3

    decode = LTX2VideoDiffusionDecodePipeline(diffusion_decoder=with_decoder.diffusion_decoder,
                                              scheduler=ours.scheduler)
    frames = decode(video, generator=torch.Generator().manual_seed(5), output_type="pt", denormalize=False).frames
    expected = reference_decoder(folder)(expected_video, generator=torch.Generator().manual_seed(5),
                                         output_type="pt", denormalize=False).frames
    assert relative_l2(frames, expected) <= 1e-3


@torch.no_grad()
def test_motion_speed_and_explicit_length_match_reference(pipes):
    ours, reference = pipes
    video, audio = call(ours, 1, output_type="latent", num_frames=5, motion_speed=0.5)
    expected_video, expected_audio = call(reference, 1, output_type="latent", num_frames=5, motion_speed=0.5)
    assert video.shape[2] == 3
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4


@torch.no_grad()
def test_documented_distilled_call_still_guides(pipes):
    """0.42.1's documented LTX-2.5 call (the distilled sigmas, CFG off) runs STG, modality guidance and rescale at
    their defaults; switching those off as the docstring says gives another, unguided result."""
    ours, reference = pipes
    documented = dict(sigmas=DISTILLED_SIGMA_VALUES, num_inference_steps=8, guidance_scale=1.0,
                      audio_guidance_scale=1.0, output_type="latent")
    video, audio = call(ours, 2, **documented)
    expected_video, expected_audio = call(reference, 2, **documented)
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    unguided = dict(stg_scale=0.0, audio_stg_scale=0.0, modality_scale=1.0, audio_modality_scale=1.0,
                    guidance_rescale=0.0, audio_guidance_rescale=0.0)
    plain, _ = call(ours, 2, **documented, **unguided)
    assert relative_l2(plain, video) > 1e-3


@torch.no_grad()
def test_image_to_video_at_crf_18_matches_reference(folder):
    ours, reference = load(LTX2ImageToVideoPipeline, ReferenceImageToVideo, folder)
    assert ours.default_call_kwargs()["image_crf"] == 18
    video, audio = call(ours, 3, image=photo(), output_type="latent")
    expected_video, expected_audio = call(reference, 3, image=photo(), output_type="latent")
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    at_33, _ = call(ours, 3, image=photo(), output_type="latent", image_crf=33)
    assert relative_l2(at_33, video) > 1e-4  # the CRF matters


@torch.no_grad()
def test_first_and_last_frame_conditions_with_a_predicted_length_match_reference(folder):
    """The last frame's index (-1) is resolved on the predicted length; both images at CRF 18."""
    ours, reference = load(LTX2ConditionPipeline, ReferenceCondition, folder)
    first, last = photo(), photo(40, 36)
    video, audio = call(ours, 9, conditions=[LTX2VideoCondition(first, 0), LTX2VideoCondition(last, -1)],
                        output_type="latent")
    expected_video, expected_audio = call(
        reference, 9, conditions=[ReferenceVideoCondition(first, 0), ReferenceVideoCondition(last, -1)],
        output_type="latent",
    )
    assert video.shape == expected_video.shape and video.shape[2] == 6
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4


@torch.no_grad()
@pytest.mark.parametrize("statistics", ["vae", "own"])
@pytest.mark.parametrize("tiled", [False, True])
def test_decode_pipeline_matches_reference(pipes, folder, statistics, tiled):
    ours, reference = pipes
    latents = torch.randn(2, 4, 5, 4, 4, generator=torch.Generator().manual_seed(6))
    decoder = our_decoder(folder, tiled)
    vae = {"vae": ours.vae, "own": None}[statistics]
    pipe = LTX2VideoDiffusionDecodePipeline(diffusion_decoder=decoder, scheduler=ours.scheduler, vae=vae)
    frames = pipe(latents, generator=torch.Generator().manual_seed(7), output_type="pt", return_dict=False)[0]
    reference_pipe = reference_decoder(folder, {"vae": reference.vae, "own": None}[statistics], tiled)
    expected = reference_pipe(latents, generator=torch.Generator().manual_seed(7), output_type="pt",
                              return_dict=False)[0]
    assert frames.shape == expected.shape == (2, 9, 3, 32, 32)
    assert relative_l2(frames, expected) <= 1e-3


@torch.no_grad()
def test_own_and_vae_statistics_differ(pipes, folder):
    """The perturbed decoder carries statistics of its own, so the two decode tests above test different things."""
    ours, _ = pipes
    assert relative_l2(our_decoder(folder).latents_std, ours.vae.latents_std) > 1e-2


@torch.no_grad()
def test_upsampling_on_ltx_2_5_matches_reference(pipes, folder):
    ours, reference = pipes
    video, _ = call(ours, 4, output_type="latent", num_frames=5)
    upsampled = LTX2LatentUpsamplePipeline(
        vae=ours.vae, latent_upsampler=LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder="latent_upsampler")
    )(latents=video, output_type="latent", return_dict=False)[0]
    expected = ReferenceUpsamplePipeline(
        vae=reference.vae, latent_upsampler=ReferenceUpsampler.from_pretrained(folder, subfolder="latent_upsampler")
    )(latents=video, output_type="latent", return_dict=False)[0]
    assert upsampled.shape[-2:] == (8, 8) and relative_l2(upsampled, expected) <= 1e-4


def test_predicted_length_rules(pipes):
    ours, _ = pipes
    with pytest.raises(ValueError, match="2 prompts"):
        ours(prompt=["a cat", "a dog"], height=32, width=32, num_inference_steps=1, output_type="latent")
    with pytest.raises(ValueError, match="min_seconds"):
        ours(prompt="a cat", height=32, width=32, min_seconds=3.0, max_seconds=2.0, output_type="latent")
    with pytest.raises(ValueError, match="decoder"):
        ours(prompt="a cat", height=32, width=32, num_frames=5, decoder="conv")


@torch.no_grad()
def test_without_a_head_the_length_is_121(pipes):
    ours, _ = pipes
    headless = LTX2Pipeline(**{**ours.components, "duration_head": None})
    headless.set_progress_bar_config(disable=True)
    video, _ = call(headless, 8, output_type="latent", num_inference_steps=1, height=8 * 2, width=8 * 2)
    assert video.shape[2] == 61  # 121 frames at 2x temporal compression
    with pytest.raises(ValueError, match="diffusion_decoder"):
        call(ours, 0, num_frames=5, decoder="diffusion")
