"""LTX2DFRPipeline against diffusers 0.42.1's on the tiny LTX-2.5 folder the reference wrote: stage 1 with slots,
stage 2 on upsampled latents with the reference and frozen audio, a tiled epilogue pass, two image conditions."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import LTXEulerAncestralRFScheduler as ReferenceAncestral
from diffusers.pipelines.ltx2 import LTX2DFRPipeline as ReferenceDFR
from diffusers.pipelines.ltx2 import LTX2DFRTemporalRefinePipeline as ReferenceTemporalRefine
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler
from diffusers.pipelines.ltx2 import LTX2VideoCondition as ReferenceCondition

from ltx2 import STAGE_2_DISTILLED_SIGMA_VALUES, LTX2DFRPipeline, LTX2DFRTemporalRefinePipeline, LTX2VideoCondition
from ltx2.dfr_layout import epilogue_tiles
from ltx2.pipelines.dfr import conditioning_fps
from parity import relative_l2

# 11 frames at the tiny VAE's x2 time: a 13-frame canvas (segments of 6, slots at 6 and 12), 4x4 latents.
SHORT = [1.0, 0.725, 0.421875]  # three steps where the schedule is not what a test is about
CALL = dict(prompt="a robot dancing in the rain", height=32, width=32, num_frames=11, frame_rate=8.0,
            max_sequence_length=16)


def photo(height: int, width: int) -> PIL.Image.Image:
    """A smooth picture with some texture, of another size and aspect than the video."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 100 * np.sin(x / 7), 128 + 100 * np.cos(y / 5), (x * y) % 256], axis=-1)
    return PIL.Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def run(pipe, seed: int, **kwargs):
    return pipe(**{**CALL, **kwargs}, generator=torch.Generator().manual_seed(seed), return_dict=False)


@pytest.fixture(scope="module")
def pipes(ltx_2_5_folder):
    folder, _ = ltx_2_5_folder
    ours, reference = LTX2DFRPipeline.from_pretrained(folder), ReferenceDFR.from_pretrained(folder)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    return ours, reference


def assert_latents_match(mine, theirs, bound=1e-4):
    video, audio, keyframes, positions = mine
    assert positions == theirs[3]
    assert video.shape == theirs[0].shape and relative_l2(video, theirs[0]) <= bound
    assert relative_l2(audio, theirs[1]) <= bound
    assert (keyframes is None) == (theirs[2] is None)
    if keyframes is not None:
        assert keyframes.shape == theirs[2].shape and relative_l2(keyframes, theirs[2]) <= bound
    print("relative L2: video", relative_l2(video, theirs[0]), "audio", relative_l2(audio, theirs[1]),
          "keyframes", None if keyframes is None else relative_l2(keyframes, theirs[2]))


def test_stage_1_with_slots(pipes):
    ours, reference = pipes
    mine, theirs = run(ours, 0, output_type="latent"), run(reference, 0, output_type="latent")
    assert theirs[3] == [6, 12] and theirs[0].shape[2] == 7  # the padded canvas: 13 frames
    assert_latents_match(mine, theirs)  # the default 8-step distilled schedule; decoding is checked in stage 2


@pytest.fixture(scope="module")
def stage_1(pipes):
    """The reference's stage-1 latents (canvas, audio, slots, slot positions), 3 steps: the later passes' input."""
    return run(pipes[1], 0, output_type="latent", sigmas=SHORT)


def upsampled(latents):
    """A stand-in for the x2 spatial upsampler (any x2 latents will do: both pipelines get the same)."""
    return torch.nn.functional.interpolate(latents, scale_factor=(1, 2, 2), mode="nearest")


def test_stage_2_with_reference_and_frozen_audio(pipes, stage_1):
    video, audio, keyframes, positions = stage_1
    kwargs = dict(height=64, width=64, latents=upsampled(video), keyframes_latents=upsampled(keyframes),
                  keyframe_positions=positions, reference_latents=video, reference_downscale_factor=2,
                  audio_latents=audio, freeze_audio=True, sigmas=STAGE_2_DISTILLED_SIGMA_VALUES)
    ours, reference = pipes
    mine, theirs = run(ours, 2, output_type="latent", **kwargs), run(reference, 2, output_type="latent", **kwargs)
    assert_latents_match(mine, theirs)
    assert relative_l2(mine[1], audio) < 1e-5  # frozen: the audio comes back as it went in
    frames, waveform = run(ours, 3, output_type="pt", **kwargs)[:2]
    ref_frames, ref_waveform = run(reference, 3, output_type="pt", **kwargs)[:2]
    assert frames.shape == ref_frames.shape == (1, 11, 3, 64, 64)
    assert relative_l2(frames, ref_frames) <= 1e-3 and relative_l2(waveform, ref_waveform) <= 1e-3
    print("decoded relative L2: video", relative_l2(frames, ref_frames), "audio", relative_l2(waveform, ref_waveform))


def test_tiled_epilogue(pipes, stage_1):
    video, audio, keyframes, positions = stage_1
    latents = upsampled(video)
    with pytest.warns(UserWarning, match="clamping the overlap to 6"):  # 8 latent cells cannot hold 12 of overlap
        tiles = epilogue_tiles(tuple(latents.shape[2:]), 2, [p // 2 for p in positions])
    assert len(tiles) == 8  # two in time (cut on the seam), two in height and width
    kwargs = dict(height=64, width=64, latents=latents, generate_slots=False, video_tiles=tiles,
                  guidance_keyframe_latents=upsampled(keyframes), guidance_keyframe_positions=positions,
                  audio_latents=audio, freeze_audio=True, sigmas=[0.421875])
    ours, reference = pipes
    mine, theirs = run(ours, 4, output_type="latent", **kwargs), run(reference, 4, output_type="latent", **kwargs)
    assert mine[3] == positions
    assert_latents_match(mine, theirs)
    untiled = run(ours, 4, output_type="latent", **{**kwargs, "video_tiles": None})
    assert relative_l2(untiled[0], mine[0]) > 1e-4  # the tiles really ran on their own


def test_conditioning_fps_snaps_above_30():
    assert [conditioning_fps(rate) for rate in (24.0, 30.0, 30.5, 48.0, 120.0)] == [24.0, 30.0, 60.0, 60.0, 60.0]


def test_two_image_conditions(pipes):
    conditions_ours = [LTX2VideoCondition(photo(40, 48), index=0), LTX2VideoCondition(photo(48, 40), index=2,
                                                                                      strength=0.8)]
    conditions_reference = [ReferenceCondition(frames=c.frames, index=c.index, strength=c.strength)
                            for c in conditions_ours]
    ours, reference = pipes
    # At 48 fps the positions run at 60 fps (conditioning fps snapping), the audio at 48.
    mine = run(ours, 5, output_type="latent", conditions=conditions_ours, sigmas=SHORT, frame_rate=48.0)
    theirs = run(reference, 5, output_type="latent", conditions=conditions_reference, sigmas=SHORT, frame_rate=48.0)
    assert_latents_match(mine, theirs)


def test_temporal_refine_round(ltx_2_5_folder, pipes, stage_1):
    folder, _ = ltx_2_5_folder
    ours = LTX2DFRTemporalRefinePipeline.from_pretrained(folder)
    reference_dfr = pipes[1]
    reference = ReferenceTemporalRefine(
        scheduler=ReferenceAncestral(eta=0.5), temporal_latent_upsampler=ReferenceUpsampler.from_pretrained(
            folder / "temporal_latent_upsampler"),
        **{name: getattr(reference_dfr, name) for name in ("vae", "audio_vae", "text_encoder", "tokenizer",
                                                          "connectors", "transformer", "vocoder")})
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    video, audio, keyframes, positions = stage_1
    kwargs = dict(latents=video, keyframes_latents=keyframes, keyframe_positions=positions, audio_latents=audio,
                  num_frames=13)
    mine, theirs = run(ours, 6, output_type="latent", **kwargs), run(reference, 6, output_type="latent", **kwargs)
    assert theirs[0].shape[2] == 13 and theirs[3] == [6, 12, 18, 24]  # 25 frames; new slots mid-segment
    assert_latents_match(mine, theirs)
    frames = run(ours, 7, output_type="pt", sigmas=[0.909375, 0.421875], **kwargs)[0]
    ref_frames = run(reference, 7, output_type="pt", sigmas=[0.909375, 0.421875], **kwargs)[0]
    assert frames.shape == ref_frames.shape and relative_l2(frames, ref_frames) <= 1e-3
    print("decoded relative L2: video", relative_l2(frames, ref_frames))
    with pytest.raises(ValueError, match="LTXEulerAncestralRFScheduler"):
        LTX2DFRTemporalRefinePipeline(**{**ours.components, "scheduler": pipes[0].scheduler})(
            prompt="x", max_sequence_length=16, height=32, width=32, **kwargs)


def test_diffusion_decoder_delivers_what_the_decode_pipeline_gives(pipes, stage_1):
    """decoder="diffusion" in the last DFR step is LTX2VideoDiffusionDecodePipeline on the raw canvas."""
    from ltx2 import LTX2VideoDiffusionDecodePipeline, LTX2VideoDiffusionDecoderModel
    from ltx2.pipelines.latents import normalize_audio_latents, pack_audio_latents

    torch.manual_seed(5)  # the tiny VAE's layout: 4 channels, x8 in space, x2 in time
    decoder = LTX2VideoDiffusionDecoderModel(
        out_channels=3, latent_channels=4, patch_size=2, decoder_head_dim=8, decoder_stage_channels=(16, 8, 8),
        decoder_stage_depths=(1, 1, 1), decoder_stage_kernels=((3, 3, 3), (3, 3, 3)),
        decoder_upsample_strides=((1, 2, 2), (2, 2, 2)), decoder_upsample_channel_reductions=(2, 1),
        decoder_stage5_kernel=(3, 3, 3), decoder_t_emb_dim=16, spatial_compression_ratio=8,
        temporal_compression_ratio=2).eval()
    ours = LTX2DFRPipeline(**{**pipes[0].components, "diffusion_decoder": decoder})
    video, audio = stage_1[0], stage_1[1]
    packed = normalize_audio_latents(pack_audio_latents(audio), ours.audio_vae.latents_mean, ours.audio_vae.latents_std)
    delivered = ours.deliver(ours.normalized(video, ours.device), packed, None, None, 1.0, "pt", 0.0, None,
                             torch.Generator().manual_seed(3), torch.float32, "diffusion").frames
    decode = LTX2VideoDiffusionDecodePipeline(vae=ours.vae, diffusion_decoder=decoder)
    expected = decode(video, generator=torch.Generator().manual_seed(3), output_type="pt", denormalize=False,
                      return_dict=False)[0]
    assert delivered.shape == expected.shape and relative_l2(delivered, expected) <= 1e-5
