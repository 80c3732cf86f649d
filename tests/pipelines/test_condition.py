"""LTX2ConditionPipeline and LTX2InContextPipeline against diffusers 0.42.1: keyframes, clips, IC-LoRA references."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2ConditionPipeline as ReferenceCondition
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition as ReferenceVideoCondition
from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2InContextPipeline as ReferenceInContext
from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2ReferenceCondition as ReferenceReference
from safetensors.torch import save_file

from ltx2 import (
    LTX2ConditionPipeline,
    LTX2InContextPipeline,
    LTX2ReferenceCondition,
    LTX2VideoCondition,
)
from ltx2.pipelines.conditioning import ConditioningInputs, latent_attention_strengths, reference_attention_mask
from parity import LEGACY, relative_l2
from pipeline_calls import CALL, LTX_2_3_CALL


def pictures(count: int, seed: int, size=(40, 56)) -> list[PIL.Image.Image]:
    """Random RGB pictures of another size and aspect ratio than the video (so resizing and cropping matter)."""
    rng = np.random.default_rng(seed)
    return [PIL.Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)) for _ in range(count)]


def run(pipe, reference: bool, seed: int = 0, **kwargs):
    """One call with the tests' CALL; the reference pinned to LTX-2.0 guidance."""
    options = {**CALL, **kwargs}
    extra = dict(**LEGACY, audio_guidance_scale=options["guidance_scale"]) if reference else {}
    return pipe(**options, **extra, generator=torch.Generator().manual_seed(seed), return_dict=False)


def assert_parity(ours, reference, ours_inputs: dict, reference_inputs: dict, output_types=("latent", "pt"), **kwargs):
    """Latents within 1e-4 and decoded video/audio within 1e-3 of the reference; returns our last output."""
    for output_type in output_types:
        tolerance = 1e-4 if output_type == "latent" else 1e-3
        video, audio = run(ours, False, output_type=output_type, **ours_inputs, **kwargs)
        expected_video, expected_audio = run(reference, True, output_type=output_type, **reference_inputs, **kwargs)
        assert video.shape == expected_video.shape
        assert relative_l2(video, expected_video) <= tolerance
        assert relative_l2(audio, expected_audio) <= tolerance
    return video


def assert_conditioning_matters(ours, video: torch.Tensor, **kwargs) -> None:
    """The conditioned output differs clearly from the unconditioned one with the same seed."""
    plain, _ = run(ours, False, output_type="pt", **kwargs)
    assert relative_l2(video, plain) > 0.05


def make_ic_lora(transformer: torch.nn.Module, path) -> str:
    """A random rank-4 LoRA on the blocks' attention and feed-forward layers, in the original LTX-2 key format
    (`diffusion_model.` prefix), as Lightricks publishes its IC-LoRAs."""
    generator = torch.Generator().manual_seed(13)
    tensors = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.startswith("transformer_blocks."):
            tensors[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(4, module.in_features, generator=generator)
            tensors[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(module.out_features, 4, generator=generator)
    save_file({key: value * 0.1 for key, value in tensors.items()}, str(path))
    return str(path)


@pytest.fixture(scope="module")
def condition_pipes(pipeline_folder):
    folder, _ = pipeline_folder
    ours, reference = LTX2ConditionPipeline.from_pretrained(folder), ReferenceCondition.from_pretrained(folder)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    return ours, reference


@pytest.fixture(scope="module")
def in_context_pipes(pipeline_folder, tmp_path_factory):
    """Both in-context pipelines with the same tiny random IC-LoRA (original key format) loaded."""
    folder, _ = pipeline_folder
    ours, reference = LTX2InContextPipeline.from_pretrained(folder), ReferenceInContext.from_pretrained(folder)
    lora = make_ic_lora(ours.transformer, tmp_path_factory.mktemp("ic") / "ic.safetensors")
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
        pipe.load_lora_weights(lora, adapter_name="ic_lora")
    return ours, reference


@torch.no_grad()
def test_first_and_last_frame_with_cfg_match_reference(condition_pipes):
    ours, reference = condition_pipes
    first, last = pictures(2, seed=0)
    video = assert_parity(
        ours, reference,
        dict(conditions=[LTX2VideoCondition(first, index=0), LTX2VideoCondition(last, index=-1)]),
        dict(conditions=[ReferenceVideoCondition(first, index=0), ReferenceVideoCondition(last, index=-1)]),
    )
    assert CALL["guidance_scale"] > 1 and video.shape == (1, 9, 3, 32, 32)
    assert_conditioning_matters(ours, video)


@torch.no_grad()
def test_clip_at_a_middle_index_matches_reference(condition_pipes):
    """A 5-frame clip (uint8 array) from latent frame 2, at strength 0.8: appended keyframe tokens."""
    ours, reference = condition_pipes
    clip = np.stack([np.asarray(picture) for picture in pictures(5, seed=1)])
    video = assert_parity(
        ours, reference, dict(conditions=LTX2VideoCondition(clip, index=2, strength=0.8)),
        dict(conditions=ReferenceVideoCondition(clip, index=2, strength=0.8)),
    )
    assert_conditioning_matters(ours, video)


@torch.no_grad()
def test_continuing_a_clip_and_stage_two_match_reference(condition_pipes):
    """A clip replacing the first latent frames at strength 0.7, then given latents re-noised with a keyframe."""
    ours, reference = condition_pipes
    clip = torch.from_numpy(np.stack([np.asarray(picture) for picture in pictures(3, seed=2)])).permute(0, 3, 1, 2)
    assert_parity(ours, reference, dict(conditions=[LTX2VideoCondition(clip.float(), 0, 0.7)]),
                  dict(conditions=[ReferenceVideoCondition(clip.float(), 0, 0.7)]), output_types=("latent",))
    latents = torch.randn(1, 4, 5, 4, 4, generator=torch.Generator().manual_seed(3))
    (last,) = pictures(1, seed=4)
    assert_parity(ours, reference, dict(conditions=[LTX2VideoCondition(last, -1, 0.5)]),
                  dict(conditions=[ReferenceVideoCondition(last, -1, 0.5)]), output_types=("latent",),
                  latents=latents, noise_scale=0.7, sigmas=[0.7, 0.4, 0.1], guidance_scale=1.0)


@torch.no_grad()
def test_ic_lora_with_a_reference_video_matches_reference(in_context_pipes):
    ours, reference = in_context_pipes
    frames = pictures(9, seed=5)
    video = assert_parity(ours, reference, dict(reference_conditions=[LTX2ReferenceCondition(frames)]),
                          dict(reference_conditions=[ReferenceReference(frames)]))
    assert_conditioning_matters(ours, video)


@torch.no_grad()
def test_references_downscaled_and_with_frame_conditions_match_reference(in_context_pipes):
    """A half-size reference (array in [0, 1]) at strength 0.6, a first frame and a keyframe together."""
    ours, reference = in_context_pipes
    frames = np.random.default_rng(6).random((9, 24, 20, 3)).astype(np.float32)
    first, middle = pictures(2, seed=7)
    assert_parity(
        ours, reference,
        dict(reference_conditions=LTX2ReferenceCondition(frames, 0.6), reference_downscale_factor=2,
             conditions=[LTX2VideoCondition(first, 0), LTX2VideoCondition(middle, 3)]),
        dict(reference_conditions=ReferenceReference(frames, 0.6), reference_downscale_factor=2,
             conditions=[ReferenceVideoCondition(first, 0), ReferenceVideoCondition(middle, 3)]),
        output_types=("latent",),
    )


@torch.no_grad()
def test_reference_attention_strength_and_mask_match_reference(in_context_pipes):
    ours, reference = in_context_pipes
    frames = pictures(9, seed=8)
    mask = torch.rand(1, 1, 9, 32, 32, generator=torch.Generator().manual_seed(9))
    for options in (dict(conditioning_attention_strength=0.5), dict(conditioning_attention_mask=mask)):
        assert_parity(ours, reference, dict(reference_conditions=[LTX2ReferenceCondition(frames)], **options),
                      dict(reference_conditions=[ReferenceReference(frames)], **options), output_types=("latent",))


def test_attention_mask_and_strengths_match_reference():
    """The self-attention mask over generated, keyframe and two reference groups, and the pixel mask's
    reduction to latent tokens, against the reference's own builders."""
    groups = [torch.rand(1, 6, generator=torch.Generator().manual_seed(10)), torch.rand(1, 4)]
    expected = ReferenceInContext._build_video_self_attention_mask(12, 15, groups, torch.device("cpu"))
    assert torch.equal(reference_attention_mask(25, 12, groups), expected)
    pixels = torch.rand(2, 1, 9, 32, 48)
    expected = ReferenceInContext._downsample_mask_to_latent(pixels, 5, 4, 6)
    assert torch.allclose(latent_attention_strengths(pixels, 5, 4, 6), expected)


@torch.no_grad()
def test_ltx_2_3_conditions_and_references_at_its_defaults_match_reference(ltx_2_3_folder, tmp_path):
    """On LTX-2.3 both sides at their defaults (CFG, STG, modality isolation, rescale, cross timestep): a first and
    a last frame on the condition pipeline, then a first frame with a reference video under an IC-LoRA."""
    folder, _ = ltx_2_3_folder
    first, last = pictures(2, seed=14)
    frames = pictures(9, seed=15)
    cases = [
        (LTX2ConditionPipeline, ReferenceCondition,
         dict(conditions=[LTX2VideoCondition(first, 0), LTX2VideoCondition(last, -1)]),
         dict(conditions=[ReferenceVideoCondition(first, 0), ReferenceVideoCondition(last, -1)])),
        (LTX2InContextPipeline, ReferenceInContext,
         dict(conditions=[LTX2VideoCondition(first, 0)], reference_conditions=[LTX2ReferenceCondition(frames)]),
         dict(conditions=[ReferenceVideoCondition(first, 0)], reference_conditions=[ReferenceReference(frames)])),
    ]
    for ours_class, reference_class, ours_inputs, reference_inputs in cases:
        ours, reference = ours_class.from_pretrained(folder), reference_class.from_pretrained(folder)
        if ours_class is LTX2InContextPipeline:
            lora = make_ic_lora(ours.transformer, tmp_path / "ic.safetensors")
            for pipe in (ours, reference):
                pipe.load_lora_weights(lora, adapter_name="ic_lora")
        outputs = []
        for pipe, inputs in ((ours, ours_inputs), (reference, reference_inputs)):
            pipe.set_progress_bar_config(disable=True)
            outputs.append(pipe(**LTX_2_3_CALL, **inputs, output_type="latent", return_dict=False,
                                generator=torch.Generator().manual_seed(0)))
        (video, audio), (expected_video, expected_audio) = outputs
        assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4


def test_prompt_enhancement_sees_the_first_picture_condition():
    """As diffusers 0.42.1 picks it: the image-to-video image, else the first condition given as PIL image(s)."""
    first, second = pictures(2, seed=16)
    clip = np.zeros((9, 8, 8, 3), np.uint8)
    conditions = [LTX2VideoCondition(clip), LTX2VideoCondition([first, second], 2), LTX2VideoCondition(second, -1)]
    assert ConditioningInputs(conditions).enhancement_image() is first
    assert ConditioningInputs(conditions[:1]).enhancement_image() is None
    assert ConditioningInputs(conditions, image="first.png").enhancement_image() == "first.png"


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(conditions=[LTX2VideoCondition(np.zeros((8, 8, 3), np.uint8), index=5)]), "index"),
        (dict(conditions=[LTX2VideoCondition(np.zeros((8, 8, 3), np.uint8), index=-6)]), "index"),
        (dict(conditions=[LTX2VideoCondition(np.zeros((8, 8, 3), np.uint8), strength=1.5)]), "strength"),
        (dict(conditions=[LTX2VideoCondition(np.zeros((8, 8, 3), np.float32))]), "crf"),
        (dict(conditions=[LTX2VideoCondition("frame.png")]), "frames"),
        (dict(conditions=["frame.png"]), "LTX2VideoCondition"),
    ],
)
def test_bad_conditions_fail_before_any_model_runs(condition_pipes, change, message):
    ours, _ = condition_pipes
    calls = []
    handle = ours.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises(ValueError, match=message):
            run(ours, False, **change)
    finally:
        handle.remove()
    assert not calls


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(reference_downscale_factor=3), "reference_downscale_factor"),
        (dict(conditioning_attention_strength=-0.1), "conditioning_attention_strength"),
        (dict(conditioning_attention_mask=torch.ones(1, 9, 32, 32)), "conditioning_attention_mask"),
        (dict(reference_conditions=[np.zeros((9, 8, 8, 3))]), "LTX2ReferenceCondition"),
    ],
)
def test_bad_reference_options_fail(in_context_pipes, change, message):
    ours, _ = in_context_pipes
    options = {"reference_conditions": [LTX2ReferenceCondition(pictures(9, seed=12))], **change}
    with pytest.raises(ValueError, match=message):
        run(ours, False, **options)
