"""LTX2Vocoder: parity with diffusers 0.42.1, output length and rate, full-size layout, bad input."""

import pytest
import torch
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder as ReferenceVocoder

from ltx2 import LTX2Vocoder
from parity import assert_same_layout, perturb_, relative_l2

CONFIGS = {
    "real-structure": dict(in_channels=2 * 16, hidden_channels=64, upsample_kernel_sizes=[16, 15, 8, 4, 4],
                           upsample_factors=[6, 5, 2, 2, 2]),
    "small-no-bias": dict(in_channels=2 * 8, hidden_channels=32, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2],
                          resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], final_act_fn="clamp",
                          final_bias=False, output_sampling_rate=16000),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@torch.no_grad()
def test_forward_matches_reference(name, tmp_path):
    torch.manual_seed(0)
    reference = perturb_(ReferenceVocoder(**CONFIGS[name]).eval(), scale=0.02)
    reference.save_pretrained(tmp_path)
    ours = LTX2Vocoder.from_pretrained(tmp_path)
    bins = CONFIGS[name]["in_channels"] // 2
    mel = torch.randn(2, 2, 9, bins, generator=torch.Generator().manual_seed(1))
    expected, actual = reference(mel), ours(mel)
    assert actual.shape == expected.shape == (2, 2, 9 * ours.upsample_factor)
    assert relative_l2(actual, expected) <= 1e-5
    assert relative_l2(ours(mel.transpose(2, 3), time_last=True), expected) <= 1e-5


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours, reference = LTX2Vocoder(), ReferenceVocoder()
    count = assert_same_layout(ours, reference)
    assert 55e6 < count < 57e6
    assert ours.config.output_sampling_rate == 24000 and ours.upsample_factor == 240


def test_bad_input_names_the_rule():
    model = LTX2Vocoder(**CONFIGS["small-no-bias"])
    with pytest.raises(ValueError, match="in_channels=16"):
        model(torch.randn(1, 2, 5, 4))
    with pytest.raises(ValueError, match="4D"):
        model(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="act_fn"):
        LTX2Vocoder.from_config({"act_fn": "snake"})
