"""LTX2LatentUpsamplePipeline with each LTX-2.3 upsampler on an LTX-2.3-structure video VAE, against diffusers
0.42.1's pipeline: the spatial x2 (sub-pixel), the spatial x1.5 (rational) and the temporal x2 upsampler."""

import pytest
import torch
from diffusers import AutoencoderKLLTX2Video as ReferenceVAE
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline as ReferencePipeline
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler

from ltx2 import AutoencoderKLLTX2Video, LTX2LatentUpsamplePipeline, LTX2LatentUpsamplerModel
from ltx2.configs import LTX_2_3_LATENT_UPSAMPLER, LTX_2_3_SPATIAL_UPSAMPLER_X1_5, LTX_2_3_TEMPORAL_UPSAMPLER_X2
from parity import perturb_, relative_l2

# LTX-2.3's VAE blocks at tiny width, 16 latent channels.
VAE = dict(
    latent_channels=16, block_out_channels=(8, 16, 16, 16), decoder_block_out_channels=(8, 16, 16, 32),
    layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
    decoder_spatio_temporal_scaling=(True,) * 4, decoder_inject_noise=(False,) * 5,
    upsample_type=("spatiotemporal", "spatiotemporal", "temporal", "spatial"), upsample_residual=(False,) * 4,
    upsample_factor=(2, 2, 1, 2), decoder_spatial_padding_mode="zeros", spatial_compression_ratio=32,
    temporal_compression_ratio=8,
)
SMALL = dict(in_channels=16, mid_channels=32, num_blocks_per_stage=1)
# name: (the LTX-2.3 config at a small width, upsampled latents and decoded frames of a (1, 16, 3, 2, 4) latent)
UPSAMPLERS = {
    "spatial-x2": ({**LTX_2_3_LATENT_UPSAMPLER, **SMALL}, (1, 16, 3, 4, 8), (1, 17, 3, 128, 256)),
    "spatial-x1.5": ({**LTX_2_3_SPATIAL_UPSAMPLER_X1_5, **SMALL}, (1, 16, 3, 3, 6), (1, 17, 3, 96, 192)),
    "temporal-x2": ({**LTX_2_3_TEMPORAL_UPSAMPLER_X2, **SMALL}, (1, 16, 5, 2, 4), (1, 33, 3, 64, 128)),
}


def load_pair(ours_class: type, reference: torch.nn.Module, folder):
    """Our model loaded from the perturbed reference's save_pretrained folder."""
    perturb_(reference.eval())
    reference.save_pretrained(folder)
    return ours_class.from_pretrained(folder)


@pytest.fixture(scope="module")
def vaes(tmp_path_factory):
    torch.manual_seed(0)
    reference = ReferenceVAE(**VAE)
    return load_pair(AutoencoderKLLTX2Video, reference, tmp_path_factory.mktemp("vae")), reference


@pytest.mark.parametrize("name", list(UPSAMPLERS))
@torch.no_grad()
def test_pipeline_matches_reference(vaes, name, tmp_path):
    config, latent_shape, frames_shape = UPSAMPLERS[name]
    torch.manual_seed(0)
    reference_upsampler = ReferenceUpsampler(**config)
    upsampler = load_pair(LTX2LatentUpsamplerModel, reference_upsampler, tmp_path)
    ours = LTX2LatentUpsamplePipeline(vae=vaes[0], latent_upsampler=upsampler)
    reference = ReferencePipeline(vae=vaes[1], latent_upsampler=reference_upsampler)
    latents = torch.randn(1, 16, 3, 2, 4, generator=torch.Generator().manual_seed(1))
    for output_type, shape, tolerance in (("latent", latent_shape, 1e-5), ("pt", frames_shape, 1e-4)):
        (actual,) = ours(latents=latents, output_type=output_type, return_dict=False)
        (expected,) = reference(latents=latents, output_type=output_type, return_dict=False)
        assert actual.shape == expected.shape == shape
        assert relative_l2(actual, expected) <= tolerance
