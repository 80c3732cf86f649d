"""LTX2LatentUpsamplerModel: parity with diffusers 0.42.1 for each upsampling mode, full-size layout."""

import pytest
import torch
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler
from diffusers.pipelines.ltx2.pipeline_ltx2_latent_upsample import LTX2LatentUpsamplePipeline as ReferencePipeline

from ltx2 import LTX2LatentUpsamplerModel
from ltx2.models.upsampler import adain_filter_latent, tone_map_latents
from parity import perturb_, relative_l2

TINY = dict(in_channels=8, mid_channels=32, num_blocks_per_stage=2)
CONFIGS = {
    "real-structure": dict(TINY),  # dims 3, spatial x2 through the rational resampler
    "rational-1.5": dict(TINY, rational_spatial_scale=1.5),
    "rational-0.75": dict(TINY, rational_spatial_scale=0.75),
    "pixel-shuffle": dict(TINY, use_rational_resampler=False),
    "per-frame-2d": dict(TINY, dims=2, use_rational_resampler=False),
    "temporal": dict(TINY, spatial_upsample=False, temporal_upsample=True),
    "spatiotemporal": dict(TINY, temporal_upsample=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
@torch.no_grad()
def test_forward_matches_reference(name, tmp_path):
    torch.manual_seed(0)
    reference = perturb_(ReferenceUpsampler(**CONFIGS[name]).eval())
    reference.save_pretrained(tmp_path)
    ours = LTX2LatentUpsamplerModel.from_pretrained(tmp_path)
    latents = torch.randn(2, 8, 3, 8, 12, generator=torch.Generator().manual_seed(1))
    expected = reference(latents)
    actual = ours(latents)
    assert actual.shape == expected.shape
    assert relative_l2(actual, expected) <= 1e-5


def test_real_structure_doubles_height_and_width():
    torch.manual_seed(0)
    model = LTX2LatentUpsamplerModel(**TINY).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 8, 3, 4, 6)).shape == (1, 8, 3, 8, 12)


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours, reference = LTX2LatentUpsamplerModel(), ReferenceUpsampler()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert ours.num_parameters() == sum(p.numel() for p in reference.parameters())
    assert 497e6 < ours.num_parameters() < 499e6


def test_latent_filters_match_reference():
    generator = torch.Generator().manual_seed(2)
    latents, reference_latents = torch.randn(2, 4, 3, 6, 6, generator=generator), torch.randn(2, 4, 3, 3, 3, generator=generator)
    pipeline = ReferencePipeline.__new__(ReferencePipeline)
    expected = pipeline.adain_filter_latent(latents, reference_latents, 0.7)
    assert relative_l2(adain_filter_latent(latents, reference_latents, 0.7), expected) <= 1e-6
    assert torch.equal(tone_map_latents(latents * 3, 0.6), pipeline.tone_map_latents(latents * 3, 0.6))


def test_bad_input_names_argument():
    model = LTX2LatentUpsamplerModel(**TINY)
    with pytest.raises(ValueError, match="hidden_states"):
        model(torch.randn(1, 5, 2, 4, 4))
    with pytest.raises(ValueError, match="hidden_states"):
        model(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="rational_spatial_scale"):
        LTX2LatentUpsamplerModel(**TINY, rational_spatial_scale=3.0)
