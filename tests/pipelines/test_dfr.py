"""LTX2DFRPipeline against diffusers 0.42.1's on the tiny LTX-2.5 folder the reference wrote: stage 1 with slots,
stage 2 on upsampled latents with the reference and frozen audio, a tiled epilogue pass, two image conditions."""

import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2DFRPipeline as ReferenceDFR

from ltx2 import LTX2DFRPipeline
from ltx2.dfr_layout import epilogue_tiles
from parity import relative_l2

# 11 frames at the tiny VAE's x2 time: a 13-frame canvas (segments of 6, slots at 6 and 12), 4x4 latents.
CALL = dict(prompt="a robot dancing in the rain", height=32, width=32, num_frames=11, frame_rate=8.0,
            max_sequence_length=16)


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


def test_stage_1_with_slots(pipes):
    ours, reference = pipes
    mine, theirs = run(ours, 0, output_type="latent"), run(reference, 0, output_type="latent")
    assert theirs[3] == [6, 12] and theirs[0].shape[2] == 7  # the padded canvas: 13 frames
    assert_latents_match(mine, theirs)
    video, audio = run(ours, 1, output_type="np")[:2]
    ref_video, ref_audio = run(reference, 1, output_type="np")[:2]
    assert video.shape == ref_video.shape == (1, 11, 32, 32, 3)
    assert relative_l2(torch.from_numpy(video), torch.from_numpy(ref_video)) <= 1e-3
    assert relative_l2(audio, ref_audio) <= 1e-3
