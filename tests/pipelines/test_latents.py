"""Latent helpers: bit-exact against the diffusers 0.42.1 pipelines' static methods; AdaIN and tone mapping."""

import pytest
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2 import LTX2Pipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_latent_upsample import LTX2LatentUpsamplePipeline

from ltx2.pipelines.latents import (
    adain_filter_latent,
    denormalize_audio_latents,
    denormalize_video_latents,
    normalize_audio_latents,
    normalize_video_latents,
    pack_audio_latents,
    pack_video_latents,
    tone_map_latents,
    unpack_audio_latents,
    unpack_video_latents,
)
from parity import relative_l2


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("patch_size", "patch_size_t"), [(1, 1), (2, 1), (2, 2), (1, 3)])
def test_video_pack_and_unpack_match_reference_bit_exactly(patch_size, patch_size_t):
    latents = randn(2, 5, 6, 4, 6)  # F=6, H=4, W=6 divide by every patch size used
    packed = pack_video_latents(latents, patch_size, patch_size_t)
    assert torch.equal(packed, LTX2Pipeline._pack_latents(latents, patch_size, patch_size_t))
    grid = (6 // patch_size_t, 4 // patch_size, 6 // patch_size)
    assert packed.shape == (2, grid[0] * grid[1] * grid[2], 5 * patch_size_t * patch_size**2)
    unpacked = unpack_video_latents(packed, *grid, patch_size, patch_size_t)
    assert torch.equal(unpacked, LTX2Pipeline._unpack_latents(packed, *grid, patch_size, patch_size_t))
    assert torch.equal(unpacked, latents)


def test_video_tokens_are_frame_row_column_ordered_with_channel_features():
    latents = randn(1, 3, 2, 3, 4)
    packed = pack_video_latents(latents)
    assert torch.equal(packed[0, (1 * 3 + 2) * 4 + 3], latents[0, :, 1, 2, 3])


@pytest.mark.parametrize("scaling_factor", [1.0, 1.3])
def test_video_normalisation_matches_reference_bit_exactly(scaling_factor):
    latents, mean, std = randn(2, 6, 3, 4, 5), randn(6, seed=1), randn(6, seed=2).abs() + 0.5
    normalized = normalize_video_latents(latents, mean, std, scaling_factor)
    assert torch.equal(normalized, LTX2Pipeline._normalize_latents(latents, mean, std, scaling_factor))
    restored = denormalize_video_latents(normalized, mean, std, scaling_factor)
    assert torch.equal(restored, LTX2Pipeline._denormalize_latents(normalized, mean, std, scaling_factor))
    assert relative_l2(restored, latents) <= 1e-6


def test_video_normalisation_follows_the_latents_dtype():
    latents = randn(1, 4, 2, 2, 2).to(torch.bfloat16)
    normalized = normalize_video_latents(latents, randn(4, seed=1).double(), torch.full((4,), 2.0, dtype=torch.float64))
    assert normalized.dtype == torch.bfloat16
    expected = LTX2Pipeline._normalize_latents(latents, randn(4, seed=1).double(), torch.full((4,), 2.0).double())
    assert torch.equal(normalized, expected)


def test_audio_pack_unpack_and_normalisation_match_reference_bit_exactly():
    latents = randn(2, 8, 7, 16)  # (B, C, T, M) as LTX-2: 8 channels x 16 latent mel bins
    packed = pack_audio_latents(latents)
    assert torch.equal(packed, LTX2Pipeline._pack_audio_latents(latents))
    assert packed.shape == (2, 7, 128)
    assert torch.equal(packed[1, 3, 5 * 16 + 9], latents[1, 5, 3, 9])
    mean, std = randn(128, seed=1), randn(128, seed=2).abs() + 0.5
    normalized = normalize_audio_latents(packed, mean, std)
    assert torch.equal(normalized, LTX2Pipeline._normalize_audio_latents(packed, mean, std))
    restored = denormalize_audio_latents(normalized, mean, std)
    assert torch.equal(restored, LTX2Pipeline._denormalize_audio_latents(normalized, mean, std))
    unpacked = unpack_audio_latents(restored, 7, 16)
    assert torch.equal(unpacked, LTX2Pipeline._unpack_audio_latents(restored, 7, num_mel_bins=16))
    assert relative_l2(unpacked, latents) <= 1e-6


@pytest.mark.parametrize("factor", [0.0, 0.4, 1.0])
def test_adain_matches_reference(factor):
    upsampled = randn(2, 4, 3, 8, 10) * 3 + 1
    reference_latents = randn(2, 4, 3, 4, 5, seed=1) * 0.7 - 0.2
    expected = LTX2LatentUpsamplePipeline.adain_filter_latent(None, upsampled, reference_latents, factor)
    actual = adain_filter_latent(upsampled, reference_latents, factor)
    assert relative_l2(actual, expected) <= 1e-6
    if factor == 1.0:
        std, mean = torch.std_mean(actual[1, 2])
        reference_std, reference_mean = torch.std_mean(reference_latents[1, 2])
        assert torch.allclose(std, reference_std, atol=1e-5) and torch.allclose(mean, reference_mean, atol=1e-5)


@pytest.mark.parametrize("compression", [0.0, 0.3, 1.0])
def test_tone_map_matches_reference_bit_exactly(compression):
    latents = randn(2, 4, 3, 4, 5) * 3
    expected = LTX2LatentUpsamplePipeline.tone_map_latents(None, latents, compression)
    assert torch.equal(tone_map_latents(latents, compression), expected)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pack_video_latents(randn(2, 3, 4, 5)), "latents must be a 5-D tensor"),
        (lambda: pack_video_latents(randn(1, 2, 3, 4, 4), 2, 2), "num_frames .* multiple of patch_size_t=2"),
        (lambda: pack_video_latents(randn(1, 2, 2, 4, 5), 2), "width .* multiple of patch_size=2"),
        (lambda: unpack_video_latents(randn(1, 12, 4), 2, 2, 2), "12 tokens .* = 8"),
        (lambda: unpack_video_latents(randn(1, 8, 6), 2, 2, 2, patch_size=2), "features .* multiple"),
        (lambda: normalize_video_latents(randn(1, 4, 2, 2, 2), randn(3), randn(4)), "latents_mean .* \\(4\\)"),
        (lambda: denormalize_video_latents(randn(1, 4, 2, 2), randn(4), randn(4)), "latents must be a 5-D"),
        (lambda: pack_audio_latents(randn(1, 8, 16)), "latents must be a 4-D tensor"),
        (lambda: unpack_audio_latents(randn(1, 7, 128), 6, 16), "latent_length=6"),
        (lambda: unpack_audio_latents(randn(1, 7, 128), 7, 12), "num_mel_bins=12"),
        (lambda: normalize_audio_latents(randn(1, 7, 128), randn(128), randn(64)), "latents_std .* \\(128\\)"),
        (lambda: adain_filter_latent(randn(2, 4, 8), randn(2, 3, 4)), "reference_latents must share"),
        (lambda: adain_filter_latent(randn(2, 4), randn(2, 4)), "at least 3 dims"),
        (lambda: tone_map_latents(randn(2, 4), 1.5), "compression must be in \\[0, 1\\], got 1.5"),
    ],
    ids=[
        "video-pack-ndim", "video-pack-frames", "video-pack-width", "video-unpack-tokens", "video-unpack-features",
        "video-mean-size", "video-denorm-ndim", "audio-pack-ndim", "audio-unpack-length", "audio-unpack-mel",
        "audio-std-size", "adain-mismatch", "adain-ndim", "tone-map-range",
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
