"""AutoencoderKLLTX2Video against diffusers 0.42.1: parity, tiling, streaming, full-size layout, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKLLTX2Video as ReferenceVAE
from parity import assert_same_layout, perturb_, relative_l2

from ltx2 import AutoencoderKLLTX2Video
from ltx2.configs import LTX_2_3_VIDEO_VAE

TOLERANCE = 1e-5

# The real structure at tiny width: spatial, temporal, spatiotemporal x2 downsampling, 4x4 patches, causal
# encoder, non-causal decoder with reflect padding, residual x2 upsamplers.
REAL_STRUCTURE = dict(
    latent_channels=8,
    block_out_channels=(8, 16, 16, 32),
    decoder_block_out_channels=(16, 32, 64),
    layers_per_block=(1, 1, 1, 1, 2),
    decoder_layers_per_block=(2, 1, 1, 1),
    spatial_compression_ratio=32,
    temporal_compression_ratio=8,
    decoder_causal=False,
)
# Timestep-conditioned decoder with noise injection in some blocks, one upsampler without its residual.
CONDITIONED = dict(
    REAL_STRUCTURE,
    patch_size=2,
    spatial_compression_ratio=16,
    timestep_conditioning=True,
    decoder_inject_noise=(True, False, True, True),
    upsample_residual=(True, False, True),
)
# Upsampling factor 1 (up blocks that change width through a resnet with a 1x1 shortcut), spatial-only and
# temporal-only upsamplers, a block without upsampler, zero padding in the decoder.
VARIANTS = dict(
    REAL_STRUCTURE,
    decoder_block_out_channels=(8, 16, 32),
    upsample_factor=(1, 1, 1),
    upsample_type=("spatial", "temporal", "spatiotemporal"),
    decoder_spatio_temporal_scaling=(False, True, True),
    decoder_spatial_padding_mode="zeros",
)

# LTX-2.3's structure at tiny width: a narrower last encoder block, four decoder blocks (x2 spatiotemporal,
# spatiotemporal at factor 1, temporal, spatial) without residual upsamplers, zero padding in the decoder.
LTX_2_3_STRUCTURE = dict(
    REAL_STRUCTURE,
    block_out_channels=(8, 16, 32, 32),
    decoder_block_out_channels=(8, 16, 16, 32),
    layers_per_block=(1, 2, 1, 1, 1),
    decoder_layers_per_block=(1, 2, 1, 1, 1),
    decoder_spatio_temporal_scaling=(True, True, True, True),
    decoder_inject_noise=(False,) * 5,
    upsample_type=("spatiotemporal", "spatiotemporal", "temporal", "spatial"),
    upsample_residual=(False,) * 4,
    upsample_factor=(2, 2, 1, 2),
    decoder_spatial_padding_mode="zeros",
)

# LTX-2 19B vae/config.json.
REAL_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=128,
    block_out_channels=(256, 512, 1024, 2048),
    down_block_types=("LTX2VideoDownBlock3D",) * 4,
    decoder_block_out_channels=(256, 512, 1024),
    layers_per_block=(4, 6, 6, 2, 2),
    decoder_layers_per_block=(5, 5, 5, 5),
    spatio_temporal_scaling=(True, True, True, True),
    decoder_spatio_temporal_scaling=(True, True, True),
    decoder_inject_noise=(False, False, False, False),
    downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
    upsample_residual=(True, True, True),
    upsample_factor=(2, 2, 2),
    timestep_conditioning=False,
    patch_size=4,
    patch_size_t=1,
    resnet_norm_eps=1e-6,
    scaling_factor=1.0,
    encoder_causal=True,
    decoder_causal=False,
    encoder_spatial_padding_mode="zeros",
    decoder_spatial_padding_mode="reflect",
    spatial_compression_ratio=32,
    temporal_compression_ratio=8,
)


def load_pair(config: dict, tmp_path) -> tuple[AutoencoderKLLTX2Video, ReferenceVAE]:
    """The reference with perturbed random weights, and ours loaded from its save_pretrained folder."""
    torch.manual_seed(0)
    reference = perturb_(ReferenceVAE(**config)).eval()
    reference.save_pretrained(tmp_path)
    return AutoencoderKLLTX2Video.from_pretrained(tmp_path), reference


def random(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def timestep_for(config: dict, batch: int) -> torch.Tensor | None:
    return torch.tensor([0.05, 0.02][:batch]) if config.get("timestep_conditioning") else None


def decode_seeded(model: torch.nn.Module, latents: torch.Tensor, timestep: torch.Tensor | None, seed: int = 7):
    """Decode with the global generator seeded: noise injection draws from it, in the same order in both."""
    torch.manual_seed(seed)
    return model.decode(latents, timestep).sample


@pytest.mark.parametrize(
    "config", [REAL_STRUCTURE, CONDITIONED, VARIANTS, LTX_2_3_STRUCTURE], ids=["real", "conditioned", "variants", "2.3"]
)
@torch.no_grad()
def test_encode_and_decode_match_reference(config, tmp_path):
    ours, reference = load_pair(config, tmp_path)
    ratio = config["spatial_compression_ratio"]
    video = random(2, 3, 17, 2 * ratio, 3 * ratio)

    posterior, reference_posterior = ours.encode(video).latent_dist, reference.encode(video).latent_dist
    assert posterior.mean.shape == (2, 8, 3, 2, 3)
    assert relative_l2(posterior.mean, reference_posterior.mean) <= TOLERANCE
    assert relative_l2(posterior.mode(), reference_posterior.mode()) <= TOLERANCE
    assert relative_l2(posterior.std, reference_posterior.std) <= TOLERANCE
    sample = posterior.sample(torch.Generator().manual_seed(3))
    assert relative_l2(sample, reference_posterior.sample(torch.Generator().manual_seed(3))) <= TOLERANCE
    (tuple_posterior,) = ours.encode(video, return_dict=False)
    assert torch.equal(tuple_posterior.mean, posterior.mean)

    latents = random(2, 8, 3, 2, 3, seed=2)
    timestep = timestep_for(config, 2)
    decoded = decode_seeded(ours, latents, timestep)
    expected = decode_seeded(reference, latents, timestep)
    assert decoded.shape == expected.shape
    assert relative_l2(decoded, expected) <= TOLERANCE
    torch.manual_seed(7)
    (tuple_decoded,) = ours.decode(latents, timestep, return_dict=False)
    assert torch.equal(tuple_decoded, decoded)

    torch.manual_seed(5)
    round_trip = ours(video, timestep, sample_posterior=True, generator=torch.Generator().manual_seed(4)).sample
    torch.manual_seed(5)
    expected = reference(video, timestep, sample_posterior=True, generator=torch.Generator().manual_seed(4)).sample
    assert relative_l2(round_trip, expected) <= TOLERANCE


@torch.no_grad()
def test_conditioning_and_noise_change_the_output(tmp_path):
    """Guards the parity test above against paths that are silently off."""
    ours, _ = load_pair(CONDITIONED, tmp_path)
    latents, timestep = random(2, 8, 3, 2, 3, seed=2), timestep_for(CONDITIONED, 2)
    decoded = decode_seeded(ours, latents, timestep)
    assert relative_l2(decode_seeded(ours, latents, timestep, seed=8), decoded) > 1e-3
    assert relative_l2(decode_seeded(ours, latents, timestep * 3), decoded) > 1e-3


# 3 x 4 spatial tiles of 3 latents, stride 2, on a 6 x 8 latent; time streamed two latent frames at a time.
TILES = dict(
    tile_sample_min_height=96,
    tile_sample_min_width=96,
    tile_sample_stride_height=64,
    tile_sample_stride_width=64,
    tile_sample_min_num_frames=16,
    tile_sample_stride_num_frames=8,
)


@pytest.mark.parametrize("config", [REAL_STRUCTURE, LTX_2_3_STRUCTURE], ids=["real", "2.3"])
@torch.no_grad()
def test_tiled_decode_matches_reference_tiling(config, tmp_path):
    """At the reference's own tile settings."""
    ours, reference = load_pair(config, tmp_path)
    ours.enable_tiling(**TILES)
    reference.enable_tiling(**TILES)
    latents = random(1, 8, 4, 6, 8)
    assert relative_l2(ours.decode(latents).sample, reference.decode(latents).sample) <= TOLERANCE


@torch.no_grad()
def test_tiled_encode_matches_reference_tiling(tmp_path):
    ours, reference = load_pair(REAL_STRUCTURE, tmp_path)
    ours.enable_tiling(**TILES)
    reference.enable_tiling(**TILES)
    video = random(1, 3, 9, 192, 256)
    assert relative_l2(ours.encode(video).latent_dist.mean, reference.encode(video).latent_dist.mean) <= TOLERANCE


@pytest.mark.parametrize("config", [REAL_STRUCTURE, CONDITIONED, LTX_2_3_STRUCTURE], ids=["real", "conditioned", "2.3"])
@torch.no_grad()
def test_streamed_decode_equals_single_pass(config, tmp_path):
    """With tiling, time is decoded one latent frame per pass (plus flushing passes): the same sums."""
    ours, _ = load_pair(config, tmp_path)
    latents, timestep = random(2, 8, 6, 2, 3), timestep_for(config, 2)
    single_pass = decode_seeded(ours, latents, timestep)
    ours.enable_tiling(tile_sample_min_num_frames=8, tile_sample_stride_num_frames=8)
    # The same sums over fewer frames per convolution: another GEMM blocking, so float32 rounds differently.
    assert relative_l2(decode_seeded(ours, latents, timestep), single_pass) <= TOLERANCE


@torch.no_grad()
def test_framewise_encode_matches_reference(tmp_path):
    # diffusers 0.42.1 switches temporal encode tiling with `use_framewise_decoding`; we call it directly.
    ours, reference = load_pair(REAL_STRUCTURE, tmp_path)
    ours.use_framewise_encoding = True
    video = random(1, 3, 33, 64, 64)
    expected = reference._temporal_tiled_encode(video)[:, :8]
    assert relative_l2(ours.encode(video).latent_dist.mean, expected) <= TOLERANCE


@torch.no_grad()
def test_framewise_decode_is_exact_for_a_frame_local_decoder(tmp_path):
    """With every conv's outer temporal taps zeroed, each latent frame decodes on its own, so blended temporal
    windows must reproduce the untiled decode exactly if, and only if, they are aligned."""
    torch.manual_seed(0)
    reference = perturb_(ReferenceVAE(**REAL_STRUCTURE)).eval()
    for name, parameter in reference.decoder.named_parameters():
        if parameter.dim() == 5 and parameter.shape[2] == 3:
            parameter[:, :, 0] = 0
            parameter[:, :, 2] = 0
    reference.save_pretrained(tmp_path)
    ours = AutoencoderKLLTX2Video.from_pretrained(tmp_path)
    latents = random(1, 8, 6, 2, 2)
    untiled = ours.decode(latents).sample
    ours.use_framewise_decoding = reference.use_framewise_decoding = True
    assert relative_l2(ours.decode(latents).sample, untiled) <= TOLERANCE
    # diffusers 0.42.1 drops the last instead of the first frame of each later window: its frames slip by one
    # at the first window boundary, which is why our framewise decode is not compared with it.
    assert relative_l2(reference.decode(latents).sample, untiled) > 0.1


@torch.no_grad()
def test_tiled_decode_stays_near_untiled(tmp_path):
    """At the default 512 px tiles (16 latents, stride 14) on a 24 x 24 latent, random weights: the tiled
    decode differs from the untiled one by 0.285 (relative L2) for ours and the reference alike. Random
    decoders have receptive fields far wider than the 2-latent overlap, so this only bounds the seams."""
    ours, reference = load_pair(REAL_STRUCTURE, tmp_path)
    latents = random(1, 8, 2, 24, 24)
    untiled = ours.decode(latents).sample
    ours.enable_tiling()
    reference.enable_tiling()
    tiled = ours.decode(latents).sample
    assert relative_l2(tiled, reference.decode(latents).sample) <= TOLERANCE
    assert relative_l2(tiled, untiled) <= 0.3


@torch.no_grad()
def test_slicing_matches_batched():
    # Without noise injection, which draws once per decode call and so once per slice.
    torch.manual_seed(0)
    ours = perturb_(AutoencoderKLLTX2Video(**dict(CONDITIONED, decoder_inject_noise=False))).eval()
    video, latents, timestep = random(2, 3, 9, 32, 32), random(2, 8, 2, 2, 2), timestep_for(CONDITIONED, 2)
    batched_mean, batched = ours.encode(video).latent_dist.mean, ours.decode(latents, timestep).sample
    ours.enable_slicing()
    # Batch 1 and batch 2 GEMMs block (and so round) differently: 1.17e-6 was seen on one machine, so the bound is
    # the float32 one of every reordered computation here, not a machine's observed rounding.
    assert relative_l2(ours.encode(video).latent_dist.mean, batched_mean) <= TOLERANCE
    assert relative_l2(ours.decode(latents, timestep).sample, batched) <= TOLERANCE


@torch.no_grad()
def test_save_and_load_round_trip(tmp_path):
    ours, _ = load_pair(CONDITIONED, tmp_path / "reference")
    ours.save_pretrained(tmp_path / "ours", max_shard_size=20_000)
    loaded = AutoencoderKLLTX2Video.from_pretrained(tmp_path / "ours")
    assert loaded.config_json() == ours.config_json()
    assert loaded.state_dict().keys() == ours.state_dict().keys()
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in ours.state_dict().items())


def test_null_compression_ratios_are_read_from_the_blocks(tmp_path):
    # diffusers writes null when the ratios were not given, and would then infer 16x temporal compression.
    config = {key: value for key, value in REAL_STRUCTURE.items() if not key.endswith("compression_ratio")}
    ours, _ = load_pair(config, tmp_path)
    assert (ours.spatial_compression_ratio, ours.temporal_compression_ratio) == (32, 8)


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours = AutoencoderKLLTX2Video()
        reference = ReferenceVAE(**REAL_CONFIG)
    count = assert_same_layout(ours, reference)
    assert 1.22e9 < count < 1.23e9
    assert dict(ours.config) == REAL_CONFIG
    assert (ours.spatial_compression_ratio, ours.temporal_compression_ratio) == (32, 8)


def test_full_size_ltx_2_3_layout_matches_reference():
    with torch.device("meta"):
        ours = AutoencoderKLLTX2Video.from_config(LTX_2_3_VIDEO_VAE)
        reference = ReferenceVAE(**LTX_2_3_VIDEO_VAE)
    assert 0.726e9 < assert_same_layout(ours, reference) < 0.727e9
    assert json.loads(ours.config_json()) == {"_class_name": "AutoencoderKLLTX2Video", **LTX_2_3_VIDEO_VAE}
    assert (ours.spatial_compression_ratio, ours.temporal_compression_ratio) == (32, 8)


@pytest.fixture(scope="module")
def tiny() -> AutoencoderKLLTX2Video:
    return AutoencoderKLLTX2Video(**CONDITIONED).eval()


@pytest.mark.parametrize(
    "shape, pattern",
    [
        ((1, 3, 16, 32, 32), "8k\\+1 frames .* got 16"),
        ((1, 3, 9, 40, 32), "height must be a positive multiple of the spatial compression 16, got 40"),
        ((1, 3, 9, 32, 24), "width must be a positive multiple of the spatial compression 16, got 24"),
        ((1, 4, 9, 32, 32), "in_channels=3 channels, got 4"),
        ((3, 9, 32, 32), "got shape \\(3, 9, 32, 32\\)"),
    ],
)
def test_encode_rejects_bad_video(tiny, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        tiny.encode(torch.zeros(shape))


@pytest.mark.parametrize(
    "shape, temb, pattern",
    [
        ((1, 4, 2, 2, 2), [0.0], "latent_channels=8 channels, got 4"),
        ((1, 8, 2, 2), [0.0], "got shape \\(1, 8, 2, 2\\)"),
        ((1, 8, 2, 1, 2), [0.0], "height 1 leaves a tile of 1 latent"),
        ((1, 8, 2, 2, 2), None, "temb .* is required"),
        ((2, 8, 2, 2, 2), [0.0, 0.1, 0.2], "1 or batch=2 timesteps, got 3"),
    ],
)
def test_decode_rejects_bad_latents(tiny, shape, temb, pattern):
    with pytest.raises(ValueError, match=pattern):
        tiny.decode(torch.zeros(shape), None if temb is None else torch.tensor(temb))


@pytest.mark.parametrize(
    "settings, pattern",
    [
        (dict(tile_sample_min_height=100), "tile_sample_min_height must be a positive multiple of .* 16, got 100"),
        (dict(tile_sample_stride_num_frames=4), "tile_sample_stride_num_frames must be .* 8, got 4"),
        (dict(tile_sample_stride_width=640), "tile_sample_stride_width must not exceed tile_sample_min_width"),
    ],
)
def test_enable_tiling_rejects_bad_settings(tiny, settings, pattern):
    with pytest.raises(ValueError, match=pattern):
        tiny.enable_tiling(**settings)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        (dict(block_out_channels=(8, 16, 32)), "block_out_channels must have 4 entries"),
        (dict(downsample_type=("spatial", "conv", "spatial", "spatial")), "downsample_type entries must be one of"),
        (dict(decoder_spatial_padding_mode="circular"), "decoder_spatial_padding_mode must be one of"),
        (dict(patch_size_t=2), "patch_size_t must be 1"),
        (dict(upsample_factor=(1, 1, 1), timestep_conditioning=True), "timestep_conditioning needs up blocks"),
        (dict(decoder_block_out_channels=(16, 16, 32)), "up block 2 receives 8 channels but is built for 4"),
        (dict(spatial_compression_ratio=16), "spatial_compression_ratio is 16 but the encoder's blocks compress by 32"),
    ],
)
def test_constructor_rejects_unbuildable_configs(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        AutoencoderKLLTX2Video(**dict(REAL_STRUCTURE, **overrides))
