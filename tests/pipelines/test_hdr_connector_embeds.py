"""LTX2HDRPipeline with precomputed connector embeddings (no text encoding) against diffusers 0.42.1's, and a
pipeline that keeps nothing of the call."""

import numpy as np
import PIL.Image
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRPipeline as ReferenceHDR
from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRReferenceCondition as ReferenceCondition

from ltx2 import LTX2HDRPipeline, LTX2HDRReferenceCondition
from parity import relative_l2


def test_connector_embeds_match_and_leave_nothing_behind(ltx_2_5_folder):
    folder, _ = ltx_2_5_folder
    ours, reference = LTX2HDRPipeline.from_pretrained(folder), ReferenceHDR.from_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    video = torch.randn(1, 6, ours.transformer.config.cross_attention_dim, generator=generator)
    audio = torch.randn(1, 6, ours.transformer.config.audio_cross_attention_dim, generator=generator)
    pixels = (np.random.default_rng(0).random((9, 40, 48, 3)) * 255).astype(np.uint8)
    frames = [PIL.Image.fromarray(frame) for frame in pixels]
    outputs = []
    for pipe, condition in ((ours, LTX2HDRReferenceCondition), (reference, ReferenceCondition)):
        pipe.set_progress_bar_config(disable=True)
        before = set(vars(pipe))
        outputs.append(pipe(connector_video_embeds=video, connector_audio_embeds=audio, height=32, width=32,
                            num_frames=9, frame_rate=8.0, num_inference_steps=2, output_type="latent",
                            reference_conditions=[condition(frames=frames)],
                            generator=torch.Generator().manual_seed(1), return_dict=False)[0])
        if pipe is ours:
            assert set(vars(pipe)) == before
    assert outputs[0].shape == outputs[1].shape and relative_l2(*outputs) <= 1e-4
