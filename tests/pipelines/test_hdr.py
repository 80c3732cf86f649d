"""LTX2HDRPipeline against diffusers 0.42.1's on the tiny LTX-2.5 folder: the SDR reference shrunk and
reflect-padded, appended as clean tokens; linear-light float32 output through the inverse LogC3; no audio."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRPipeline as ReferenceHDR
from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRReferenceCondition as ReferenceCondition

from ltx2 import LTX2HDRPipeline, LTX2HDRReferenceCondition
from parity import relative_l2

CALL = dict(prompt="a city street at night", height=32, width=32, num_frames=9, frame_rate=8.0,
            num_inference_steps=3, max_sequence_length=16)


def sdr_video(frames=9, height=40, width=48):
    """Moving smooth colour fields, larger than the video and of another aspect (shrunk, then padded)."""
    y, x = np.mgrid[0:height, 0:width]
    return [PIL.Image.fromarray(np.stack([128 + 100 * np.sin((x + 3 * t) / 6), 128 + 90 * np.cos((y - t) / 5),
                                          (x * y + 20 * t) % 256], -1).astype(np.uint8)) for t in range(frames)]


@pytest.fixture(scope="module")
def pipes(ltx_2_5_folder):
    folder, _ = ltx_2_5_folder
    ours, reference = LTX2HDRPipeline.from_pretrained(folder), ReferenceHDR.from_pretrained(folder)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    return ours, reference


def run(pipe, condition, seed, **kwargs):
    video = sdr_video()
    return pipe(**{**CALL, **kwargs}, reference_conditions=[condition(frames=video, strength=1.0)],
                generator=torch.Generator().manual_seed(seed), return_dict=False)


def test_linear_output_matches(pipes):
    ours, reference = pipes
    frames, audio = run(ours, LTX2HDRReferenceCondition, 0)
    ref_frames, ref_audio = run(reference, ReferenceCondition, 0)
    assert audio is None and ref_audio is None
    assert frames.dtype == torch.float32 and frames.shape == ref_frames.shape == (1, 9, 32, 32, 3)
    assert frames.min() >= -0.0173 and frames.max() > 1  # LogC3's toe dips just below 0; highlights above white
    assert relative_l2(frames, ref_frames) <= 1e-3
    print("linear output relative L2", relative_l2(frames, ref_frames))


def test_latents_and_downscaled_reference_match(pipes):
    ours, reference = pipes
    kwargs = dict(output_type="latent", reference_downscale_factor=2, height=64, width=64)
    mine, theirs = run(ours, LTX2HDRReferenceCondition, 1, **kwargs)[0], run(reference, ReferenceCondition, 1,
                                                                               **kwargs)[0]
    assert mine.shape == theirs.shape and relative_l2(mine, theirs) <= 1e-4
    print("latents relative L2", relative_l2(mine, theirs))
