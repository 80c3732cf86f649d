"""Latent packing and normalization: bit-exact against the diffusers 0.42.1 pipeline's static helpers."""

import pytest
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2 import LTX2Pipeline

from ltx2.pipelines.latents import (
    denormalize_audio_latents,
    denormalize_video_latents,
    normalize_audio_latents,
    normalize_video_latents,
    pack_audio_latents,
    pack_video_latents,
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
    unpacked = unpack_audio_latents(restored, 16)
    assert torch.equal(unpacked, LTX2Pipeline._unpack_audio_latents(restored, 7, num_mel_bins=16))
    assert relative_l2(unpacked, latents) <= 1e-6


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pack_video_latents(randn(2, 3, 4, 5)), "latents must be a 5-D tensor"),
        (lambda: pack_video_latents(randn(1, 2, 3, 4, 4), 2, 2), "frames .* multiple of patch_size_t=2"),
        (lambda: pack_video_latents(randn(1, 2, 2, 4, 5), 2), "width .* multiple of patch_size=2"),
        (lambda: unpack_video_latents(randn(1, 12, 4), 2, 2, 2), "12 tokens .* = 8"),
        (lambda: unpack_video_latents(randn(12, 4), 2, 2, 3), "tokens must be a 3-D tensor"),
        (lambda: unpack_video_latents(randn(1, 8, 6), 2, 2, 2, patch_size=2), "features .* multiple"),
        (lambda: normalize_video_latents(randn(1, 4, 2, 2, 2), randn(3), randn(4)), "mean .* channel \\(4\\)"),
        (lambda: denormalize_video_latents(randn(1, 4, 2, 2), randn(4), randn(4)), "latents must be a 5-D"),
        (lambda: pack_audio_latents(randn(1, 8, 16)), "latents must be a 4-D tensor"),
        (lambda: unpack_audio_latents(randn(1, 7, 128), 12), "mel_bins=12"),
        (lambda: unpack_audio_latents(randn(7, 128), 16), "tokens must be a 3-D tensor"),
        (lambda: normalize_audio_latents(randn(1, 7, 128), randn(128), randn(64)), "std .* feature \\(128\\)"),
        (lambda: denormalize_audio_latents(randn(1, 7, 8, 16), randn(128), randn(128)), "tokens must be a 3-D"),
    ],
    ids=[
        "video-pack-ndim",
        "video-pack-frames",
        "video-pack-width",
        "video-unpack-tokens",
        "video-unpack-ndim",
        "video-unpack-features",
        "video-mean-size",
        "video-denorm-ndim",
        "audio-pack-ndim",
        "audio-unpack-mel",
        "audio-unpack-ndim",
        "audio-std-size",
        "audio-denorm-ndim",
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
