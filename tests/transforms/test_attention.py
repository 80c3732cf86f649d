"""Attention backends (ltx2.transforms.attention): the default kernel, named backends, clean fallback for calls a
backend cannot serve, clear errors for backends this machine cannot run, and per-model scope."""

import importlib.machinery
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from parity import relative_l2
from tiny_transformer import THREE_BLOCKS, forward, inputs, model

from ltx2.models.layers import attention
from ltx2.transforms import attention as backends


def test_default_on_cpu_is_torch_sdpa():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, 3, 7, 8, generator=generator) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 7)
    mask[0, ..., :2] = -10000.0
    assert torch.equal(attention(query, key, value, mask), F.scaled_dot_product_attention(query, key, value, mask))


@pytest.mark.parametrize("backend", ["native", "_native_flash", "_native_math"])
def test_backends_available_on_cpu_give_the_same_outputs(backend):
    transformer = model()
    expected = forward(transformer)
    transformer.set_attention_backend(backend)
    assert relative_l2(forward(transformer), expected) <= 1e-5
    transformer.reset_attention_backend()
    assert torch.equal(forward(transformer), expected)


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="_native_cudnn"):
        model().set_attention_backend("sage")


@pytest.mark.parametrize("backend", ["_native_cudnn", "_native_efficient", "flash"])
def test_backend_needing_cuda_is_a_clear_error_without_it(backend, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=f"backend='{backend}' is not available: it needs a CUDA device"):
        model().set_attention_backend(backend)


def test_flash_without_the_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="flash-attn package is not installed"):
        model().set_attention_backend("flash")


@pytest.fixture
def fake_flash_attn(monkeypatch):
    """A stand-in flash-attn package (CPU, (B, S, H, D) layout like the real one) that counts its calls."""
    calls = []

    def flash_attn_func(query, key, value):
        calls.append(query.shape)
        return F.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (query, key, value))).transpose(1, 2)

    module = types.ModuleType("flash_attn")
    module.flash_attn_func = flash_attn_func
    module.__spec__ = importlib.machinery.ModuleSpec("flash_attn", None)
    monkeypatch.setitem(sys.modules, "flash_attn", module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # The stand-in runs on the CPU; the real rules (CUDA, fp16/bf16) are checked in test_flash_refuses.
    monkeypatch.setattr(backends, "flash_refusal", lambda query, mask: "masked" if mask is not None else None)
    return calls


def test_calls_a_backend_cannot_serve_fall_back(fake_flash_attn):
    transformer = model()
    expected = forward(transformer)
    transformer.set_attention_backend("flash")
    assert relative_l2(forward(transformer), expected) <= 1e-5
    # Per block: both self-attentions, both cross-modal attentions and the audio text attention (the inputs
    # give no audio text mask); the video text attention, masked, fell back to the default kernel.
    assert len(fake_flash_attn) == 5 * THREE_BLOCKS["num_layers"]


def test_flash_refuses():
    query = torch.randn(1, 2, 3, 8)
    assert "mask" in backends.flash_refusal(query, torch.zeros(1, 1, 1, 3))
    assert "CUDA" in backends.flash_refusal(query, None)


def test_the_choice_holds_only_during_its_model_forward(fake_flash_attn):
    flashing, plain = model(), model()
    flashing.set_attention_backend("flash")
    forward(plain)
    assert fake_flash_attn == []
    forward(flashing)
    assert backends._active is backends._DEFAULT
    calls = len(fake_flash_attn)
    with pytest.raises(ValueError, match="hidden_states"):
        flashing(**{**inputs(), "hidden_states": torch.randn(2, 8, 3)})
    assert backends._active is backends._DEFAULT  # restored after a failed forward too
    forward(plain)
    assert len(fake_flash_attn) == calls
