"""Prompt enhancement against the reference on a tiny Gemma 3: the same rewritten prompt for the same seed, the
parts generation needs held only while enhancing."""

import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2ImageToVideoPipeline as ReferenceImageToVideo
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline
from diffusers.pipelines.ltx2.utils import I2V_DEFAULT_SYSTEM_PROMPT, T2V_DEFAULT_SYSTEM_PROMPT
from transformers import Gemma3TextModel

from ltx2 import LTX2ImageToVideoPipeline, LTX2Pipeline
from ltx2.prompt_enhancement import clean_response, default_system_prompt, generation_model
from parity import LEGACY, perturb_, relative_l2
from pipeline_calls import photo
from tiny_pipeline import make_reference_pipeline

CALL = dict(prompt="a robot dancing in the rain", negative_prompt="blurry", height=32, width=32, num_frames=9,
            frame_rate=25.0, num_inference_steps=2, guidance_scale=4.0, max_sequence_length=16)
ENHANCE = dict(enable_prompt_enhancement=True, system_prompt="You are a robot", prompt_max_new_tokens=12)


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory):
    """(folder, reference): a tiny pipeline whose Gemma knows the chat tokens, with a processor, written by the
    reference. The text encoder's token embeddings are kept small so sampling spreads over many words."""
    folder = tmp_path_factory.mktemp("tiny-ltx2-chat")
    reference = make_reference_pipeline(chat=True)
    torch.manual_seed(0)
    reference.text_encoder = perturb_(type(reference.text_encoder)(reference.text_encoder.config).eval(), 3, 0.05)
    reference.save_pretrained(folder)
    reference.set_progress_bar_config(disable=True)
    return folder, reference


@pytest.fixture(scope="module")
def ours(chat_folder):
    folder, _ = chat_folder
    pipe = LTX2Pipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_enhanced_prompt_matches_reference(chat_folder, ours):
    _, reference = chat_folder
    outputs = set()
    for seed in (10, 3, 4):
        expected = reference.enhance_prompt("a robot dancing in the rain", "You are a robot", 16, seed=seed)
        actual = ours.enhance_prompt("a robot dancing in the rain", "You are a robot", 16, seed=seed)
        assert actual == expected and actual[0]
        outputs.add(actual[0])
    assert len(outputs) == 3  # sampled: each seed its own text
    with_generator = ours.enhance_prompt("a cat", "You are a robot", 16, generator=torch.Generator().manual_seed(3))
    assert with_generator == reference.enhance_prompt("a cat", "You are a robot", 16, seed=3)  # its initial seed
    # ltx2 defaults to the system prompt diffusers ships (diffusers itself requires one for LTX-2.0/2.3).
    assert default_system_prompt(False) == T2V_DEFAULT_SYSTEM_PROMPT
    assert default_system_prompt(True) == I2V_DEFAULT_SYSTEM_PROMPT
    assert ours.enhance_prompt("a cat", None, 8) == reference.enhance_prompt("a cat", T2V_DEFAULT_SYSTEM_PROMPT, 8)
    assert ours.enhance_prompt(["a cat", "a dog"], "You are", 8) == [
        *reference.enhance_prompt("a cat", "You are", 8), *reference.enhance_prompt("a dog", "You are", 8)]


def test_image_to_video_enhancement_matches_reference(chat_folder, ours):
    """The first frame goes through the vision tower, which is loaded from the text encoder's folder for it."""
    _, reference = chat_folder
    expected = reference.enhance_prompt("a robot", "You are", 16, seed=5, image=photo())
    assert ours.enhance_prompt("a robot", "You are", 16, seed=5, image=photo()) == expected
    assert ours.enhance_prompt("a robot", "You are", 16, seed=5) != expected  # the image took part
    with pytest.raises(ValueError, match="needs a PIL image"):
        ours.enhance_prompt("a robot", "You are", 16, image=torch.rand(3, 8, 8))


@torch.no_grad()
def test_pipelines_with_enhancement_match_reference(chat_folder, ours):
    folder, reference = chat_folder
    generator = dict(generator=torch.Generator().manual_seed(7), return_dict=False, output_type="latent")
    video, audio = ours(**CALL, **ENHANCE, **generator)
    expected_video, expected_audio = reference(**CALL, **ENHANCE, **LEGACY, audio_guidance_scale=4.0,
                                               generator=torch.Generator().manual_seed(7), return_dict=False,
                                               output_type="latent")
    assert relative_l2(video, expected_video) <= 1e-4 and relative_l2(audio, expected_audio) <= 1e-4
    plain, _ = ours(**CALL, **{**generator, "generator": torch.Generator().manual_seed(7)})
    assert relative_l2(plain, video) > 1e-3  # the enhanced prompt was used

    ours_i2v = LTX2ImageToVideoPipeline.from_pretrained(folder)
    reference_i2v = ReferenceImageToVideo.from_pretrained(folder)
    for pipe in (ours_i2v, reference_i2v):
        pipe.set_progress_bar_config(disable=True)
    generator["generator"] = torch.Generator().manual_seed(8)
    video, _ = ours_i2v(image=photo(), **CALL, **ENHANCE, **generator)
    expected_video, _ = reference_i2v(image=photo(), **CALL, **ENHANCE, **LEGACY, audio_guidance_scale=4.0,
                                      generator=torch.Generator().manual_seed(8), return_dict=False,
                                      output_type="latent")
    assert relative_l2(video, expected_video) <= 1e-4


def test_generation_parts_are_held_only_while_enhancing(chat_folder, ours):
    """Without enhancement the text encoder is Gemma's language model alone: no LM head, no vision tower."""
    folder, _ = chat_folder
    assert isinstance(ours.text_encoder, Gemma3TextModel) and not hasattr(ours.text_encoder, "lm_head")
    model = generation_model(ours.text_encoder, vision=False)
    assert model.lm_head.weight is ours.text_encoder.embed_tokens.weight  # tied: no copy
    assert model.model.vision_tower is None and model.model.language_model is ours.text_encoder
    attributes = dict(vars(ours))
    parameters = sum(p.numel() for _, module in ours._modules() for p in module.parameters())
    ours.enhance_prompt("a cat", "You are", 4, image=photo())
    names = {name for name, _ in ours.text_encoder.named_modules()}
    assert not any("lm_head" in name or "vision" in name for name in names)
    # The pipeline keeps nothing of the call: the same attributes, holding the same objects and parameters.
    assert vars(ours).keys() == attributes.keys() and all(vars(ours)[key] is value for key, value in attributes.items())
    assert sum(p.numel() for _, module in ours._modules() for p in module.parameters()) == parameters


def test_clean_response():
    typographic = "\u201c \u2014 Style: a \u2018cat\u2019 \u2013 sits\u00a0here"
    assert clean_response(typographic) == "Style: a 'cat' - sits here"
    assert clean_response("123 ...") == "123 ..."


def test_reference_requires_a_system_prompt(chat_folder):
    """Documents the difference: diffusers 0.42.1 refuses enhancement without a system prompt for LTX-2.0/2.3."""
    _, reference = chat_folder
    with pytest.raises(ValueError, match="system_prompt"):
        reference(**{**CALL, **ENHANCE, "system_prompt": None}, output_type="latent")
    assert ReferencePipeline is type(reference)


def test_missing_vision_weights_are_named(chat_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    from ltx2 import CheckpointError
    from ltx2.text import load_text_encoder

    folder, _ = chat_folder
    (tmp_path / "config.json").write_text((folder / "text_encoder" / "config.json").read_text())
    weights = load_file(folder / "text_encoder" / "model.safetensors")
    save_file({key: value for key, value in weights.items() if ".encoder." not in key}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="no weights for the vision tower .*encoder.layers.0"):
        generation_model(load_text_encoder(tmp_path), vision=True)
    generation_model(load_text_encoder(tmp_path), vision=False)  # text-only enhancement does not need them
