"""Latent packing and normalization: bit-exact with the reference pipeline's static helpers."""

import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2Pipeline as Reference

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


@pytest.mark.parametrize("patch_size, patch_size_t", [(1, 1), (2, 1), (2, 2)])
def test_video_packing_matches_reference_and_round_trips(patch_size, patch_size_t):
    latents = torch.randn(2, 3, 4, 6, 8)
    packed = pack_video_latents(latents, patch_size, patch_size_t)
    assert torch.equal(packed, Reference._pack_latents(latents, patch_size, patch_size_t))
    sizes = (4 // patch_size_t, 6 // patch_size, 8 // patch_size)
    assert torch.equal(unpack_video_latents(packed, *sizes, patch_size, patch_size_t), latents)


def test_audio_packing_matches_reference_and_round_trips():
    latents = torch.randn(2, 8, 5, 16)
    packed = pack_audio_latents(latents)
    assert torch.equal(packed, Reference._pack_audio_latents(latents))
    assert torch.equal(unpack_audio_latents(packed, 16), Reference._unpack_audio_latents(packed, 5, 16))
    assert torch.equal(unpack_audio_latents(packed, 16), latents)


def test_normalization_matches_reference():
    mean, std = torch.randn(3), torch.rand(3) + 0.5
    latents = torch.randn(2, 3, 4, 6, 8)
    normalized = normalize_video_latents(latents, mean, std, 0.7)
    assert torch.equal(normalized, Reference._normalize_latents(latents, mean, std, 0.7))
    assert torch.equal(denormalize_video_latents(normalized, mean, std, 0.7),
                       Reference._denormalize_latents(normalized, mean, std, 0.7))
    tokens, audio_mean, audio_std = torch.randn(2, 5, 12), torch.randn(12), torch.rand(12) + 0.5
    assert torch.equal(normalize_audio_latents(tokens, audio_mean, audio_std),
                       Reference._normalize_audio_latents(tokens, audio_mean, audio_std))
    assert torch.equal(denormalize_audio_latents(tokens, audio_mean, audio_std),
                       Reference._denormalize_audio_latents(tokens, audio_mean, audio_std))
