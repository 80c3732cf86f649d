"""Helpers for comparing ltx2 against the reference implementation."""
import torch

def relative_l2(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """||ours - reference|| / ||reference||, computed in float64."""
    ours, reference = ours.detach().double(), reference.detach().double()
    return ((ours - reference).norm() / reference.norm()).item()

@torch.no_grad()
def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Add seeded noise to every floating parameter and buffer, so no weight or table is near zero."""
    generator = torch.Generator().manual_seed(seed)
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.is_floating_point():
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
            tensor.add_((noise * scale).to(tensor.dtype))
    return module
