"""LTX2LatentUpsamplerModel: parity with diffusers 0.42.1 for every config path, full-size layout, bad input."""

import pytest
import torch
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler

from ltx2 import LTX2LatentUpsamplerModel
from parity import perturb_, relative_l2

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


def random_latents(in_channels: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, in_channels, FRAMES, HEIGHT, WIDTH, generator=generator) * 2 + 0.5


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
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert ours_state.keys() == reference_state.keys()
    assert {key: tensor.shape for key, tensor in ours_state.items()} == {
        key: tensor.shape for key, tensor in reference_state.items()
    }
    assert "upsampler.blur_down.kernel" in dict(ours.named_buffers())
    count = ours.num_parameters()
    assert count == sum(parameter.numel() for parameter in reference.parameters())
    assert round(count / 1e6, 1) == 497.9
    reference_config = {key: value for key, value in reference.config.items() if not key.startswith("_")}
    assert dict(ours.config) == reference_config


@pytest.mark.parametrize(
    ("latents", "match"),
    [
        (torch.zeros(1, 16, 4, 5), "hidden_states must be a 5-D tensor"),
        (torch.zeros(1, 8, 2, 4, 5), "in_channels=16"),
        ([[0.0]], "hidden_states must be a 5-D tensor"),
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
        (dict(spatial_upsample=False), "at least one must be True"),
        (dict(dims=2, temporal_upsample=True), "temporal_upsample=True needs dims=3"),
        (dict(rational_spatial_scale=3.0), "rational_spatial_scale must be one of"),
    ],
    ids=["dims", "mid-channels", "no-upsampling", "2d-temporal", "unsupported-scale"],
)
def test_bad_config_raises(overrides, match):
    with pytest.raises(ValueError, match=match):
        LTX2LatentUpsamplerModel(**dict(TINY, **overrides))
