"""Prompt encoding: LTX-2's tokenization with the real Gemma 3 tokenizer, hidden-state stacking, the cache."""

import copy

import torch
from transformers import Gemma3TextModel

from ltx2 import LTX2Pipeline
from ltx2.text import PromptEncoder, load_text_encoder, tokenize
from parity import relative_l2


def test_real_gemma_tokenizer_gives_ltx2_layout(gemma_tokenizer):
    ids, mask = tokenize(gemma_tokenizer, ["  A beautiful sunset over the ocean  ", "a cat"], 32)
    assert ids.shape == mask.shape == (2, 32)
    bos, pad = gemma_tokenizer.bos_token_id, gemma_tokenizer.pad_token_id
    assert (bos, pad) == (2, 0)
    lengths = mask.sum(dim=1).tolist()
    for row, length in enumerate(lengths):
        assert mask[row, : 32 - length].sum() == 0 and mask[row, 32 - length :].all()  # left padding
        assert ids[row, 32 - length] == bos  # BOS starts every prompt
        assert (ids[row, : 32 - length] == pad).all()
    stripped, _ = tokenize(gemma_tokenizer, ["A beautiful sunset over the ocean"], 32)
    assert torch.equal(stripped[0], ids[0])  # surrounding whitespace is stripped
    assert lengths[1] < lengths[0] <= 12
    truncated, truncated_mask = tokenize(gemma_tokenizer, ["word " * 100], 16)
    assert truncated_mask.all() and truncated[0, 0] == bos


def test_tokenize_leaves_the_tokenizer_as_it_was(gemma_tokenizer):
    """Left padding whatever the tokenizer's own padding_side, and that setting is not changed."""
    tokenizer = copy.deepcopy(gemma_tokenizer)
    tokenizer.padding_side = "right"
    ids, mask = tokenize(tokenizer, ["a cat"], 16)
    assert tokenizer.padding_side == "right"
    expected = gemma_tokenizer(["a cat"], padding="max_length", max_length=16, padding_side="left", return_tensors="pt")
    assert torch.equal(ids, expected.input_ids) and torch.equal(mask, expected.attention_mask)
    assert mask[0, 0] == 0  # padded, on the left


def test_prompt_embeddings_match_reference(pipeline_folder):
    folder, reference = pipeline_folder
    ours = LTX2Pipeline.from_pretrained(folder)
    expected = reference.encode_prompt(["a cat", " a robot dancing "], ["blurry", ""], True, 2, max_sequence_length=16)
    actual = ours.encode_prompt(["a cat", " a robot dancing "], ["blurry", ""], True, 2, max_sequence_length=16)
    for ours_tensor, reference_tensor in zip(actual, expected):
        if ours_tensor.is_floating_point():
            assert ours_tensor.shape == reference_tensor.shape == (4, 16, 16 * 3)
            assert relative_l2(ours_tensor, reference_tensor) <= 1e-6
    # The reference tiles masks where it interleaves embeddings; with equal masks per prompt the two agree.
    assert actual[1].shape == (4, 16)


def test_text_encoder_loads_without_the_vision_tower(pipeline_folder):
    folder, reference = pipeline_folder
    encoder = load_text_encoder(folder / "text_encoder")
    assert isinstance(encoder, Gemma3TextModel)
    language_model = reference.text_encoder.model.language_model
    assert sum(p.numel() for p in encoder.parameters()) == sum(p.numel() for p in language_model.parameters())


def test_cache_serves_repeated_prompts(pipeline_folder):
    folder, reference = pipeline_folder
    encoder = PromptEncoder(cache_size=2)
    calls = []
    handle = reference.text_encoder.model.language_model.register_forward_hook(lambda *args: calls.append(1))
    try:
        first, _ = encoder.encode(reference.tokenizer, reference.text_encoder, ["a cat", "a dog"], 16, torch.device("cpu"))
        again, _ = encoder.encode(reference.tokenizer, reference.text_encoder, ["a dog", "a cat"], 16, torch.device("cpu"))
        encoder.encode(reference.tokenizer, reference.text_encoder, ["the rain"], 16, torch.device("cpu"))
        encoder.encode(reference.tokenizer, reference.text_encoder, ["a cat"], 16, torch.device("cpu"))  # still cached
        encoder.encode(reference.tokenizer, reference.text_encoder, ["a dog"], 16, torch.device("cpu"))  # evicted
    finally:
        handle.remove()
    assert torch.equal(first[0], again[1]) and torch.equal(first[1], again[0])
    assert len(calls) == 3  # the first batch, "the rain", and "a dog" again: least recently used, so evicted
