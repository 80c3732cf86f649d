"""LTX2LatentUpsamplerModel and the upsample filters: parity with diffusers 0.42.1, full-size layout, bad input."""

import pytest
import torch
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler
from diffusers.pipelines.ltx2.pipeline_ltx2_latent_upsample import LTX2LatentUpsamplePipeline as ReferencePipeline

from ltx2 import LTX2LatentUpsamplerModel
from ltx2.configs import LTX_2_3_LATENT_UPSAMPLER, LTX_2_3_SPATIAL_UPSAMPLER_X1_5, LTX_2_3_TEMPORAL_UPSAMPLER_X2
from ltx2.models.upsampler import adain_filter_latent, tone_map_latents
from parity import assert_same_layout, perturb_, relative_l2

TINY = dict(in_channels=16, mid_channels=64, num_blocks_per_stage=2)
CONFIGS = {
    # LTX-2's structure: 3-D network, per-frame spatial x2 through the rational resampler (blur is identity).
    "3d-spatial-rational-x2": dict(TINY),
    # Stride-2 blur after a x3 depth-to-space: the (perturbed) kernel buffer is used.
    "3d-spatial-rational-x1.5": dict(TINY, rational_spatial_scale=1.5),
    "3d-spatial-rational-x0.75": dict(TINY, rational_spatial_scale=0.75, num_blocks_per_stage=1),
    "3d-spatial-rational-x4": dict(TINY, rational_spatial_scale=4.0, num_blocks_per_stage=1),
    "3d-spatial-pixel-shuffle": dict(TINY, use_rational_resampler=False),
    "3d-temporal": dict(TINY, spatial_upsample=False, temporal_upsample=True),
    "3d-spatiotemporal": dict(TINY, temporal_upsample=True, num_blocks_per_stage=1),
    "2d-spatial-rational-x2": dict(TINY, dims=2),
    "2d-spatial-pixel-shuffle": dict(TINY, dims=2, use_rational_resampler=False),
}
BATCH, FRAMES, HEIGHT, WIDTH = 2, 3, 4, 5


@pytest.fixture(scope="module", params=list(CONFIGS))
def models(request, tmp_path_factory):
    torch.manual_seed(0)
    reference = perturb_(ReferenceUpsampler(**CONFIGS[request.param])).eval()
    folder = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(folder)
    return reference, LTX2LatentUpsamplerModel.from_pretrained(folder)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def random_latents(in_channels: int) -> torch.Tensor:
    return randn(BATCH, in_channels, FRAMES, HEIGHT, WIDTH, seed=1) * 2 + 0.5


@torch.no_grad()
def test_forward_matches_reference(models):
    reference, ours = models
    latents = random_latents(reference.config.in_channels)
    expected = reference(latents)
    actual = ours(latents)
    assert actual.shape == expected.shape
    assert relative_l2(actual, expected) <= 1e-5


@torch.no_grad()
def test_real_structure_doubles_height_and_width():
    model = LTX2LatentUpsamplerModel(**CONFIGS["3d-spatial-rational-x2"]).eval()
    assert model(random_latents(16)).shape == (BATCH, 16, FRAMES, 2 * HEIGHT, 2 * WIDTH)


def test_blur_kernel_buffer_is_the_normalised_binomial():
    ours = LTX2LatentUpsamplerModel(**TINY).state_dict()["upsampler.blur_down.kernel"]
    expected = ReferenceUpsampler(**TINY).state_dict()["upsampler.blur_down.kernel"]
    assert ours.shape == (1, 1, 5, 5)
    assert torch.equal(ours, expected)


@torch.no_grad()
def test_saved_folder_loads_in_reference(tmp_path):
    torch.manual_seed(0)
    ours = perturb_(LTX2LatentUpsamplerModel(**CONFIGS["3d-spatial-rational-x1.5"])).eval()
    ours.save_pretrained(tmp_path)
    reference = ReferenceUpsampler.from_pretrained(tmp_path).eval()
    latents = random_latents(16)
    assert relative_l2(ours(latents), reference(latents)) <= 1e-5


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours = LTX2LatentUpsamplerModel()
        reference = ReferenceUpsampler()
    count = assert_same_layout(ours, reference)
    assert "upsampler.blur_down.kernel" in dict(ours.named_buffers())
    assert round(count / 1e6, 1) == 497.9
    reference_config = {key: value for key, value in reference.config.items() if not key.startswith("_")}
    assert dict(ours.config) == reference_config


# The LTX-2.3 upsamplers; their sizes agree with the published bf16 files (2 bytes per parameter plus a header of
# under 8 kB: 995,743,560, 1,090,125,794 and 261,944,000 bytes).
@pytest.mark.parametrize(
    ("config", "millions"),
    [
        (LTX_2_3_LATENT_UPSAMPLER, 497.9),
        (LTX_2_3_SPATIAL_UPSAMPLER_X1_5, 545.1),
        (LTX_2_3_TEMPORAL_UPSAMPLER_X2, 131.0),
    ],
    ids=["spatial-x2-1.1", "spatial-x1.5", "temporal-x2"],
)
def test_full_size_ltx_2_3_layouts_match_reference(config, millions):
    with torch.device("meta"):
        ours, reference = LTX2LatentUpsamplerModel(**config), ReferenceUpsampler(**config)
    assert round(assert_same_layout(ours, reference) / 1e6, 1) == millions
    assert dict(ours.config) == config


@pytest.mark.parametrize(
    ("latents", "match"),
    [
        (torch.zeros(1, 16, 4, 5), "hidden_states must be latents"),
        (torch.zeros(1, 8, 2, 4, 5), "hidden_states must be latents \\(batch, 16,"),
        ([[0.0]], "hidden_states must be latents"),
    ],
    ids=["4-d", "wrong-channels", "not-a-tensor"],
)
def test_bad_input_raises(latents, match):
    model = LTX2LatentUpsamplerModel(**TINY)
    with pytest.raises(ValueError, match=match):
        model(latents)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(dims=1), "dims must be 2 or 3"),
        (dict(mid_channels=48), "mid_channels must be a multiple of 32"),
        (dict(spatial_upsample=False), "at least one of spatial_upsample and temporal_upsample"),
        (dict(dims=2, temporal_upsample=True), "temporal_upsample needs dims=3"),
        (dict(rational_spatial_scale=3.0), "rational_spatial_scale must be one of"),
    ],
    ids=["dims", "mid-channels", "no-upsampling", "2d-temporal", "unsupported-scale"],
)
def test_bad_config_raises(overrides, match):
    with pytest.raises(ValueError, match=match):
        LTX2LatentUpsamplerModel(**dict(TINY, **overrides))


@pytest.mark.parametrize("factor", [0.0, 0.4, 1.0])
def test_adain_matches_reference(factor):
    upsampled = randn(2, 4, 3, 8, 10) * 3 + 1
    reference_latents = randn(2, 4, 3, 4, 5, seed=1) * 0.7 - 0.2
    expected = ReferencePipeline.adain_filter_latent(None, upsampled, reference_latents, factor)
    actual = adain_filter_latent(upsampled, reference_latents, factor)
    assert relative_l2(actual, expected) <= 1e-6
    if factor == 1.0:
        std, mean = torch.std_mean(actual[1, 2])
        reference_std, reference_mean = torch.std_mean(reference_latents[1, 2])
        assert torch.allclose(std, reference_std, atol=1e-5) and torch.allclose(mean, reference_mean, atol=1e-5)


@pytest.mark.parametrize("compression", [0.0, 0.3, 1.0])
def test_tone_map_matches_reference_bit_exactly(compression):
    latents = randn(2, 4, 3, 4, 5) * 3
    expected = ReferencePipeline.tone_map_latents(None, latents, compression)
    assert torch.equal(tone_map_latents(latents, compression), expected)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: adain_filter_latent(randn(2, 4, 8), randn(2, 3, 4)), "reference_latents must have the ndim"),
        (lambda: adain_filter_latent(randn(2, 4, 3, 8), randn(2, 4, 8)), "reference_latents must have the ndim"),
        (lambda: adain_filter_latent(randn(2, 4), randn(2, 4)), "latents must be a tensor .* >= 3 dims"),
        (lambda: tone_map_latents(randn(2, 4), 1.5), "compression must be in \\[0, 1\\], got 1.5"),
    ],
    ids=["adain-channels", "adain-ndim", "adain-2d", "tone-map-range"],
)
def test_bad_filter_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
