import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_cpu():
    """Parity tests compare float32 results; keep torch's default dtype and a fixed seed per test."""
    torch.manual_seed(0)
    yield
