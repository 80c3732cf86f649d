"""AutoencoderKLLTX2Audio: parity with diffusers 0.42.1 (encode mean, decode), full-size layout, bad input."""

import pytest
import torch
from diffusers import AutoencoderKLLTX2Audio as ReferenceAudioVAE

from ltx2 import AutoencoderKLLTX2Audio
from parity import assert_same_layout, perturb_, relative_l2

CONFIGS = {
    # The real structure at small width: ch_mult (1, 2, 4), causal along time, pixel norm.
    "real-structure": dict(base_channels=16, ch_mult=(1, 2, 4), num_res_blocks=2, latent_channels=4, mel_bins=16,
                           resolution=16),
    # Group norm, non-causal, attention in the middle and at one resolution.
    "group-attention": dict(base_channels=32, ch_mult=(1, 2), num_res_blocks=1, latent_channels=2, mel_bins=8,
                            resolution=8, norm_type="group", causality_axis="none", attn_resolutions=(4,),
                            mid_block_add_attention=True),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def models(request, tmp_path_factory):
    torch.manual_seed(0)
    reference = perturb_(ReferenceAudioVAE(**CONFIGS[request.param]).eval())
    folder = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(folder)
    return reference, AutoencoderKLLTX2Audio.from_pretrained(folder), CONFIGS[request.param]


@torch.no_grad()
def test_encode_and_decode_match_reference(models):
    reference, ours, config = models
    generator = torch.Generator().manual_seed(1)
    mel = torch.randn(2, 2, 17, config["mel_bins"], generator=generator)
    expected = reference.encode(mel).latent_dist
    actual = ours.encode(mel).latent_dist
    assert relative_l2(actual.mean, expected.mean) <= 1e-5
    assert relative_l2(actual.std, expected.std) <= 1e-5
    latents = torch.randn_like(expected.mean)
    decoded, expected_decoded = ours.decode(latents).sample, reference.decode(latents).sample
    assert decoded.shape == expected_decoded.shape
    assert relative_l2(decoded, expected_decoded) <= 1e-5
    sample = ours.encode(mel).latent_dist.sample(torch.Generator().manual_seed(3))
    assert torch.allclose(sample, expected.sample(torch.Generator().manual_seed(3)), atol=1e-5)


def test_latent_and_output_shapes():
    torch.manual_seed(0)
    model = AutoencoderKLLTX2Audio(**CONFIGS["real-structure"]).eval()
    with torch.no_grad():
        latents = model.encode(torch.randn(1, 2, 21, 16)).latent_dist.mode()
        assert latents.shape == (1, 4, 6, 4)  # 4k + 1 mel frames -> k + 1 latent frames, 16 bins -> 4
        assert model.decode(latents).sample.shape == (1, 2, 21, 16)
    assert model.temporal_compression_ratio == model.mel_compression_ratio == 4


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours, reference = AutoencoderKLLTX2Audio(), ReferenceAudioVAE()
    count = assert_same_layout(ours, reference)
    assert 53e6 < count < 54e6


def test_bad_input_names_the_rule():
    model = AutoencoderKLLTX2Audio(**CONFIGS["real-structure"])
    with pytest.raises(ValueError, match="mel bins"):
        model.encode(torch.randn(1, 2, 9, 8))
    with pytest.raises(ValueError, match="mel must be"):
        model.encode(torch.randn(1, 1, 9, 16))
    with pytest.raises(ValueError, match="z must be"):
        model.decode(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="causality_axis"):
        AutoencoderKLLTX2Audio(causality_axis="diagonal")
