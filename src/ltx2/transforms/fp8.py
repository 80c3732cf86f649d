"""Layerwise casting: weights stored in a narrow dtype (FP8), each layer computing in a wider one.

`apply_layerwise_casting` follows diffusers' rules: walking the module tree from the root, a module whose
dotted path matches one of the skip patterns (`re.search`), or whose class is one of the skip classes, is
left alone with everything below it; every other Linear, Conv1d/2d/3d, ConvTranspose1d/2d/3d and Embedding
stores its weight and bias in `storage_dtype`. Tables, norms and other parameters that belong to no such layer
keep their dtype.

Where diffusers moves a layer's weights to the compute dtype before each forward and back after it, a cast
layer here computes `weight.to(compute_dtype)` inside its forward: the stored tensors are never replaced, so
the copy lives only as long as the layer's own computation, torch.compile sees plain tensor code, and group
offloading moves the narrow tensors. Layers whose class overrides its base's forward keep their dtype.

FP8 checkpoints (Lightricks' `*-fp8.safetensors`) may store `weight / scale` with a per-tensor `weight_scale`;
loaded with `keep_fp8=True` such a layer keeps the FP8 tensor and the scale (a non-persistent buffer) and
computes `weight.to(compute_dtype) * weight_scale`, which rounds exactly as the upcast load does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_SKIP_MODULES_PATTERN = ("pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$")
FLOAT8 = (torch.float8_e4m3fn, torch.float8_e5m2)
FLOAT8_NAMES = ("F8_E4M3", "F8_E5M2")  # as safetensors headers name them
SUPPORTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
)
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class CastLayer:
    """Placed in front of a layer's class: weights kept as stored, computed in `compute_dtype`."""

    compute_dtype: torch.dtype

    def compute_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = self.weight.to(self.compute_dtype)
        scale = self._buffers.get("weight_scale")
        if scale is not None:
            # A 0-d float32 scale keeps the product in compute_dtype, rounded once.
            weight = (weight * scale).to(self.compute_dtype)
        bias = getattr(self, "bias", None)
        return weight, None if bias is None else bias.to(self.compute_dtype)


def _linear(layer: Any, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, *layer.compute_weights())


def _conv(layer: Any, x: torch.Tensor) -> torch.Tensor:
    return layer._conv_forward(x, *layer.compute_weights())


def _conv_transpose(layer: Any, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
    weight, bias = layer.compute_weights()
    dims = weight.dim() - 2
    output_padding = layer._output_padding(
        x, output_size, layer.stride, layer.padding, layer.kernel_size, dims, layer.dilation
    )
    return _TRANSPOSED[dims](x, weight, bias, layer.stride, layer.padding, output_padding, layer.groups, layer.dilation)


def _embedding(layer: Any, x: torch.Tensor) -> torch.Tensor:
    weight, _ = layer.compute_weights()
    return F.embedding(x, weight, layer.padding_idx, layer.max_norm, layer.norm_type, layer.scale_grad_by_freq)


# Transposed convolutions first: they are _ConvNd too.
_FORWARDS = (
    (nn.Linear, _linear),
    (nn.modules.conv._ConvTransposeNd, _conv_transpose),
    (nn.modules.conv._ConvNd, _conv),
    (nn.Embedding, _embedding),
)
_STANDARD_FORWARDS = {layer.forward for layer in SUPPORTED_LAYERS}
_CAST_CLASSES: dict[type, type] = {}


def castable(module: nn.Module) -> bool:
    """A supported layer that computes with its torch class's forward (so a cast forward can stand in for it)."""
    return isinstance(module, CastLayer) or (
        isinstance(module, SUPPORTED_LAYERS) and type(module).forward in _STANDARD_FORWARDS
    )


def make_cast(layer: nn.Module, compute_dtype: torch.dtype) -> None:
    """Have `layer` compute in `compute_dtype` from whatever dtype its tensors are stored in."""
    cls = type(layer)
    if not isinstance(layer, CastLayer):
        if cls not in _CAST_CLASSES:
            forward = next(forward for base, forward in _FORWARDS if isinstance(layer, base))
            _CAST_CLASSES[cls] = type(f"Cast{cls.__name__}", (CastLayer, cls), {"forward": forward})
        layer.__class__ = _CAST_CLASSES[cls]
    layer.compute_dtype = compute_dtype


def store(layer: nn.Module, storage_dtype: torch.dtype) -> None:
    """Keep `layer`'s weight and bias in `storage_dtype` (a scaled FP8 weight is first dequantized)."""
    scale = layer._buffers.pop("weight_scale", None)
    with torch.no_grad():
        for name, parameter in layer._parameters.items():
            if parameter is None:
                continue
            value = parameter.data
            if name == "weight" and scale is not None:
                value = value.float() * scale
            parameter.data = value.to(storage_dtype)


def check_dtypes(storage_dtype: torch.dtype, compute_dtype: torch.dtype) -> None:
    if not isinstance(storage_dtype, torch.dtype) or not storage_dtype.is_floating_point:
        raise ValueError(f"storage_dtype={storage_dtype!r}: must be a floating-point torch.dtype")
    if not isinstance(compute_dtype, torch.dtype) or not compute_dtype.is_floating_point or compute_dtype in FLOAT8:
        raise ValueError(f"compute_dtype={compute_dtype!r}: must be float32, bfloat16 or float16")


def apply_layerwise_casting(
    module: nn.Module,
    storage_dtype: torch.dtype,
    compute_dtype: torch.dtype,
    skip_modules_pattern: str | Iterable[str] | None = "auto",
    skip_modules_classes: tuple[type[nn.Module], ...] | None = None,
) -> None:
    """Store the supported layers of `module` in `storage_dtype`, computing in `compute_dtype` (module docstring).

    `skip_modules_pattern="auto"` is DEFAULT_SKIP_MODULES_PATTERN; None skips nothing by name.
    """
    check_dtypes(storage_dtype, compute_dtype)
    if skip_modules_pattern == "auto":
        skip_modules_pattern = DEFAULT_SKIP_MODULES_PATTERN
    patterns = [skip_modules_pattern] if isinstance(skip_modules_pattern, str) else list(skip_modules_pattern or ())
    classes = tuple(skip_modules_classes or ())

    def visit(child: nn.Module, path: str) -> None:
        if isinstance(child, classes) or any(re.search(pattern, path) for pattern in patterns):
            return
        if isinstance(child, SUPPORTED_LAYERS):
            if castable(child):
                store(child, storage_dtype)
                make_cast(child, compute_dtype)
            return
        for name, grandchild in child.named_children():
            visit(grandchild, f"{path}.{name}" if path else name)

    visit(module, "")


def compute_dtype(module: nn.Module) -> torch.dtype | None:
    """The compute dtype of the first cast layer in `module`, or None without layerwise casting."""
    for layer in module.modules():
        if isinstance(layer, CastLayer):
            return layer.compute_dtype
    return None


# ----------------------------------------------------------------------------------------------------------
# FP8 checkpoints kept as stored, and weights written back into FP8 storage.


def stored_float8_weights(model: nn.Module, source: Any) -> list[str]:
    """The keys of `source` that are FP8 weights of castable layers of `model` (the ones `keep_fp8` keeps)."""
    modules = dict(model.named_modules())
    kept = []
    for key in source.keys():
        path, _, name = key.rpartition(".")
        if name == "weight" and source.dtype(key) in FLOAT8_NAMES and path in modules and castable(modules[path]):
            kept.append(key)
    return kept


def keep_stored_weight(
    model: nn.Module, key: str, source: Any, compute: torch.dtype, device: torch.device | str | None
) -> None:
    """Put the FP8 weight `key` of `source` into `model` as stored, with its scale, and cast its layer."""
    layer = model.get_submodule(key.rpartition(".")[0])
    weight, scale = source.get_stored(key)
    layer._parameters["weight"] = nn.Parameter(weight.to(device), requires_grad=False)
    if scale is not None:
        layer.register_buffer("weight_scale", scale.to(device=device, dtype=torch.float32), persistent=False)
    make_cast(layer, compute)


def dequantized_weight(layer: nn.Module) -> torch.Tensor:
    """`layer`'s weight in float32 as its forward uses it (scale applied)."""
    weight = layer.weight.detach().float()
    scale = layer._buffers.get("weight_scale")
    return weight if scale is None else weight * scale


def quantized_like(layer: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """A float32 `weight` rounded into `layer`'s storage: its dtype, its scale, clamped to the FP8 range."""
    dtype = layer.weight.dtype
    scale = layer._buffers.get("weight_scale")
    if scale is not None:
        weight = weight / scale
    if dtype in FLOAT8:
        limit = torch.finfo(dtype).max
        weight = weight.clamp(-limit, limit)
    return weight.to(dtype)


def portable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with every scaled FP8 weight dequantized to its layer's compute dtype (a file holds no
    scales), everything else as stored."""
    state = model.state_dict()
    for path, layer in model.named_modules():
        if isinstance(layer, CastLayer) and "weight_scale" in layer._buffers:
            state[f"{path}.weight" if path else "weight"] = dequantized_weight(layer).to(layer.compute_dtype)
    return state
