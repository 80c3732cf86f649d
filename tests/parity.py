"""Helpers for comparing ltx2 against the reference implementation."""

import torch

# Pin the reference to LTX-2.0 semantics (its newer defaults are LTX-2.3's).
LEGACY = dict(
    stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0, audio_stg_scale=0.0, audio_modality_scale=1.0,
    audio_guidance_rescale=0.0, spatio_temporal_guidance_blocks=None, use_cross_timestep=False,
)


def relative_l2(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """||ours - reference|| / ||reference||, computed in float64."""
    ours, reference = ours.detach().double(), reference.detach().double()
    return ((ours - reference).norm() / reference.norm()).item()


@torch.no_grad()
def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Add seeded noise to every floating tensor of the state dict, so no weight or table is near zero.

    Non-persistent buffers (constants such as RoPE frequencies) are left alone: a checkpoint does not hold them.
    """
    generator = torch.Generator().manual_seed(seed)
    for tensor in module.state_dict(keep_vars=True).values():
        if tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
            tensor.add_((noise * scale).to(tensor.dtype))
    return module


def assert_same_layout(ours: torch.nn.Module, reference: torch.nn.Module) -> int:
    """Same state-dict keys with the same shapes, and the same parameter count; returns that count."""
    ours_shapes = {key: tuple(value.shape) for key, value in ours.state_dict().items()}
    reference_shapes = {key: tuple(value.shape) for key, value in reference.state_dict().items()}
    assert ours_shapes == reference_shapes
    count = sum(parameter.numel() for parameter in ours.parameters())
    assert count == sum(parameter.numel() for parameter in reference.parameters())
    return count
