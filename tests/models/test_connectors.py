"""LTX2TextConnectors: parity with diffusers 0.42.1 (LTX-2.0 with and without registers, each LTX-2.3 flag, all of
LTX-2.3, LTX-2.5's on a tiny Gemma 4's hidden states), full-size layouts, bad input."""

import json

import pytest
import torch
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors as ReferenceConnectors

from ltx2 import LTX2TextConnectors
from ltx2.configs import LTX_2_3_CONNECTORS
from parity import assert_same_layout, perturb_, relative_l2

TINY = dict(
    caption_channels=16, text_proj_in_factor=3, video_connector_num_attention_heads=2,
    video_connector_attention_head_dim=8, video_connector_num_layers=2, audio_connector_num_attention_heads=4,
    audio_connector_attention_head_dim=4, audio_connector_num_layers=1, connector_rope_base_seq_len=32,
)
CONFIGS = {
    "registers-split-float64": dict(
        TINY, video_connector_num_learnable_registers=8, audio_connector_num_learnable_registers=4,
        rope_type="split", rope_double_precision=True,
    ),
    "no-registers-interleaved": dict(
        TINY, video_connector_num_learnable_registers=None, audio_connector_num_learnable_registers=None,
        rope_type="interleaved", rope_double_precision=False,
    ),
}
# LTX-2.3's flags one at a time on the LTX-2.0 path, then per-modality projections, then all of them (registers
# and split RoPE as in LTX-2.3; its per-stream widths differ from caption_channels, as 4096 and 2048 from 3840).
LTX_2_0 = CONFIGS["registers-split-float64"]
PER_MODALITY = dict(
    TINY, video_connector_num_attention_heads=4, audio_connector_num_attention_heads=2,
    audio_connector_attention_head_dim=4, per_modality_projections=True, video_hidden_dim=32, audio_hidden_dim=8,
)
CONFIGS.update({
    "video-gated-attn": dict(LTX_2_0, video_gated_attn=True),
    "audio-gated-attn": dict(LTX_2_0, audio_gated_attn=True),
    "proj-bias": dict(LTX_2_0, proj_bias=True),
    "per-modality-projections": dict(
        PER_MODALITY, video_connector_num_learnable_registers=None, audio_connector_num_learnable_registers=None,
    ),
    "ltx-2.3": dict(
        PER_MODALITY, video_connector_num_learnable_registers=8, audio_connector_num_learnable_registers=4,
        video_gated_attn=True, audio_gated_attn=True, proj_bias=True, rope_type="split", rope_double_precision=True,
    ),
})
LENGTH = 16


def inputs(batch_valid_lengths, padding_side="left"):
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(len(batch_valid_lengths), LENGTH, 16, 3, generator=generator) * 3
    mask = torch.zeros(len(batch_valid_lengths), LENGTH, dtype=torch.int64)
    for row, valid in enumerate(batch_valid_lengths):
        if padding_side == "left":
            mask[row, LENGTH - valid :] = 1
        else:
            mask[row, :valid] = 1
    return hidden, mask


@pytest.fixture(scope="module", params=list(CONFIGS))
def connectors(request, tmp_path_factory):
    torch.manual_seed(0)
    reference = perturb_(ReferenceConnectors(**CONFIGS[request.param]).eval())
    folder = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(folder)
    return reference, LTX2TextConnectors.from_pretrained(folder)


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("flattened", [False, True])
@torch.no_grad()
def test_forward_matches_reference(connectors, padding_side, flattened):
    reference, ours = connectors
    hidden, mask = inputs([16, 9, 3, 1], padding_side)
    if flattened:
        hidden = hidden.flatten(2)
    expected = reference(hidden, mask, padding_side=padding_side)
    actual = ours(hidden, mask, padding_side=padding_side)
    assert relative_l2(actual[0], expected[0]) <= 1e-5
    assert relative_l2(actual[1], expected[1]) <= 1e-5
    assert torch.equal(actual[2], expected[2])


@torch.no_grad()
def test_ltx_2_5_connectors_on_gemma_4_hidden_states(ltx_2_5_folder):
    """LTX-2.5's connectors (2.3's layout sized from Gemma 4: its width, its layers + 1) loaded from the folder the
    reference wrote, on the tiny Gemma 4's real hidden states of prompts of different lengths."""
    folder, reference = ltx_2_5_folder
    ours = LTX2TextConnectors.from_pretrained(folder, subfolder="connectors")
    gemma = reference.text_encoder.config.text_config
    assert ours.config.caption_channels == gemma.hidden_size
    assert ours.config.text_proj_in_factor == gemma.num_hidden_layers + 1
    embeds, mask, _, _ = reference.encode_prompt(["a cat", "a robot dancing in the rain", "static"], None, False,
                                                 max_sequence_length=16)
    expected = reference.connectors(embeds, mask, padding_side="left")
    actual = ours(embeds, mask, padding_side="left")
    for ours_tensor, reference_tensor in zip(actual[:2], expected[:2]):
        assert relative_l2(ours_tensor, reference_tensor) <= 1e-5
    assert torch.equal(actual[2], expected[2].to(actual[2].dtype))


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours, reference = LTX2TextConnectors(), ReferenceConnectors(rope_type="split")
        assert 1.43e9 < assert_same_layout(ours, reference) < 1.44e9
        ours, reference = LTX2TextConnectors.from_config(LTX_2_3_CONNECTORS), ReferenceConnectors(**LTX_2_3_CONNECTORS)
        assert 3.172e9 < assert_same_layout(ours, reference) < 3.173e9
    config = {key: value for key, value in json.loads(ours.config_json()).items() if key != "_class_name"}
    assert config == dict(LTX_2_3_CONNECTORS)


def test_bad_input_names_the_rule():
    torch.manual_seed(0)
    model = LTX2TextConnectors(**CONFIGS["registers-split-float64"])
    hidden, mask = inputs([4, 4])
    with pytest.raises(ValueError, match="multiple of the 8 learnable registers"):
        model(hidden[:, :12], mask[:, :12])
    with pytest.raises(ValueError, match="text_encoder_hidden_states"):
        model(hidden[..., :2], mask)
    with pytest.raises(ValueError, match="padding_side"):
        model(hidden, mask, padding_side="middle")
    with pytest.raises(ValueError, match="video_hidden_dim=16 must equal the video connector's width .* = 32"):
        LTX2TextConnectors(**dict(CONFIGS["ltx-2.3"], video_hidden_dim=16))
    with pytest.raises(ValueError, match="caption_channels=16 must equal the video connector's width .* = 32"):
        LTX2TextConnectors(**dict(PER_MODALITY, per_modality_projections=False))
