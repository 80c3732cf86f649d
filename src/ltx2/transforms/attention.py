"""Attention kernels behind ltx2's one `attention()` (models/layers.py), and how a model picks one.

A model's choice lives in its `AttentionSettings` and is in force while that model's forward runs (a pair of
forward hooks makes it the active settings), so the transformer can run one kernel while the Gemma text encoder
or a second transformer runs another. Names are diffusers' (`set_attention_backend`):

| name                 | kernel                                                                            |
|----------------------|-----------------------------------------------------------------------------------|
| None (the default)   | on CUDA the first of flash, memory-efficient, cuDNN, math that serves the call;   |
|                      | elsewhere torch's own choice                                                      |
| "native"             | `F.scaled_dot_product_attention` with torch's own choice                          |
| "_native_cudnn", "_native_flash", "_native_efficient", "_native_math" | that SDPA kernel first           |
| "flash"              | the flash-attn package's `flash_attn_func` (CUDA, fp16/bf16, no mask)             |

Naming a backend that this machine cannot run (flash-attn not installed, no CUDA device) is a ValueError at
once. A call that the named backend cannot serve (flash with the text mask, for instance) runs on the default
choice instead: with SDPA kernels torch's own checks decide, kernel by kernel, in priority order.

Context parallelism (ltx2.transforms.context_parallel) wraps individual attention modules instead (`Attention.parallel`); its
local work comes back here, so the backend choice holds there too.
"""

from __future__ import annotations

import importlib.util
import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel


# Flash for unmasked calls, memory-efficient for masked ones, cuDNN before the math fallback (torch's own order
# puts math before cuDNN). torch 2.13 itself ranks cuDNN last, so it is not first here until bench/gpu.py's
# attention rows show it faster (and its outputs equal) on the GPU at hand.
_CUDA_ORDER = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH]
_SDPA_KERNELS = {
    "_native_cudnn": SDPBackend.CUDNN_ATTENTION,
    "_native_flash": SDPBackend.FLASH_ATTENTION,
    "_native_efficient": SDPBackend.EFFICIENT_ATTENTION,
    "_native_math": SDPBackend.MATH,
}
_CUDA_ONLY = ("_native_cudnn", "_native_efficient", "flash")
BACKENDS = ("native", *_SDPA_KERNELS, "flash")
_HAS_PRIORITY = "set_priority" in inspect.signature(sdpa_kernel).parameters


@dataclass
class AttentionSettings:
    """How one model's attention calls run: a backend name (None: the default choice)."""

    backend: str | None = None


_DEFAULT = AttentionSettings()
_active = _DEFAULT


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Run one (B, H, S, D) attention with the active model's settings."""
    return run_kernel(_active.backend, query, key, value, mask)


def run_kernel(
    backend: str | None, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """`backend`'s kernel, or the default choice for a call that backend cannot serve."""
    if backend == "flash" and flash_refusal(query, mask) is None:
        from flash_attn import flash_attn_func

        # flash-attn works on (B, S, H, D).
        return flash_attn_func(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)).transpose(1, 2)
    if backend == "native" or not query.is_cuda or not _HAS_PRIORITY:
        first = [_SDPA_KERNELS[backend]] if backend in _SDPA_KERNELS else []
        if not first:
            return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        # Off CUDA only the flash (CPU) and math kernels exist; math serves whatever flash refuses.
        with sdpa_kernel([*first, SDPBackend.MATH]):
            return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    order = _CUDA_ORDER
    if backend in _SDPA_KERNELS:
        order = [_SDPA_KERNELS[backend], *(kernel for kernel in order if kernel != _SDPA_KERNELS[backend])]
    with sdpa_kernel(order, set_priority=True):
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)


def flash_refusal(query: torch.Tensor, mask: torch.Tensor | None) -> str | None:
    """Why flash-attn cannot run this call, or None when it can."""
    if mask is not None:
        return "flash-attn takes no attention mask"
    if not query.is_cuda:
        return "flash-attn runs on CUDA tensors only"
    if query.dtype not in (torch.float16, torch.bfloat16):
        return f"flash-attn runs in float16 or bfloat16, not {query.dtype}"
    if query.shape[-1] > 256:
        return f"flash-attn supports head sizes up to 256, not {query.shape[-1]}"
    return None


def missing(backend: str) -> str | None:
    """Why this machine cannot run `backend` at all, or None when it can."""
    if backend in _CUDA_ONLY and not torch.cuda.is_available():
        return "it needs a CUDA device and torch.cuda.is_available() is False"
    if backend == "_native_cudnn" and not torch.backends.cudnn.is_available():
        return "this torch build has no cuDNN"
    if backend == "flash" and importlib.util.find_spec("flash_attn") is None:
        return "the flash-attn package is not installed (pip install flash-attn)"
    return None


def set_attention_backend(model: nn.Module, backend: str | None) -> None:
    """Run `model`'s attention calls on `backend` (None: the default choice); a ValueError if it cannot run here."""
    if backend is not None:
        backend = backend.lower()
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: ltx2's attention backends are {', '.join(BACKENDS)}")
        reason = missing(backend)
        if reason is not None:
            raise ValueError(f"backend={backend!r} is not available: {reason}")
    attention_settings(model).backend = backend


def attention_settings(model: nn.Module) -> AttentionSettings:
    """`model`'s attention settings, in force during its forward; created (with the hooks) on first use."""
    settings = model.__dict__.get("_attention_settings")
    if settings is None:
        settings = model.__dict__["_attention_settings"] = AttentionSettings()
        previous: list[AttentionSettings] = []

        def enter(module: nn.Module, args: object) -> None:
            global _active
            previous.append(_active)
            _active = settings

        def leave(module: nn.Module, args: object, output: object) -> None:
            global _active
            _active = previous.pop()

        model.register_forward_pre_hook(enter)
        model.register_forward_hook(leave, always_call=True)
    return settings
