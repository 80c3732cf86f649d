"""Keeping big models off the accelerator until they run: whole-model and block-by-block offload.

Model offload keeps one component on the execution device at a time. Sequential offload keeps every
weight in (pinned) CPU memory and streams one block at a time: each element of a ModuleList (a
transformer block, a VAE stage) and each remaining leaf layer with weights is a streaming unit whose
tensors are copied to the device right before its forward and dropped right after. The CPU tensors
are never replaced, so nothing is copied back.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


class ModelOffload:
    """One component on `device` at a time; `activate` moves the previous one back to the CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.active: nn.Module | None = None

    def activate(self, module: nn.Module) -> None:
        if module is self.active:
            return
        if self.active is not None:
            self.active.to("cpu")
        module.to(self.device)
        self.active = module

    def release(self) -> None:
        if self.active is not None:
            self.active.to("cpu")
            self.active = None


def _streaming_units(root: nn.Module) -> Iterator[tuple[nn.Module, bool]]:
    """(module, recurse) pairs: ModuleList elements stream whole; other modules stream their own tensors."""
    stack = [root]
    while stack:
        module = stack.pop()
        if isinstance(module, nn.ModuleList):
            yield from ((child, True) for child in module)
            continue
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
            yield module, False
        stack.extend(module.children())


class _Streamer:
    """Forward hooks that put one unit's tensors on the device for the duration of its forward."""

    def __init__(self, module: nn.Module, recurse: bool, device: torch.device):
        self.device = device
        self.slots = []  # (owner module, attribute name, is_parameter, CPU tensor)
        owners = module.modules() if recurse else [module]
        for owner in owners:
            for name, tensor in owner._parameters.items():
                if tensor is not None:
                    self.slots.append((owner, name, True, self._pin(tensor.data)))
            for name, tensor in owner._buffers.items():
                if tensor is not None:
                    self.slots.append((owner, name, False, self._pin(tensor)))
        self.place("cpu")
        self.handles = [module.register_forward_pre_hook(self.before), module.register_forward_hook(self.after)]

    def _pin(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.cpu()
        if self.device.type == "cuda" and torch.cuda.is_available():
            return tensor.pin_memory()
        return tensor

    def place(self, device: torch.device | str) -> None:
        for owner, name, is_parameter, cpu_tensor in self.slots:
            tensor = cpu_tensor if str(device) == "cpu" else cpu_tensor.to(device, non_blocking=True)
            if is_parameter:
                owner._parameters[name] = nn.Parameter(tensor, requires_grad=False)
            else:
                owner._buffers[name] = tensor

    def before(self, module: nn.Module, args: object) -> None:
        self.place(self.device)

    def after(self, module: nn.Module, args: object, output: object) -> None:
        self.place("cpu")

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class SequentialOffload:
    """Streams the weights of every registered module to `device` unit by unit as its forward runs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.streamers: list[_Streamer] = []

    def attach(self, root: nn.Module) -> None:
        root.to("cpu")
        self.streamers.extend(_Streamer(unit, recurse, self.device) for unit, recurse in _streaming_units(root))

    def detach(self) -> None:
        for streamer in self.streamers:
            streamer.remove()
        self.streamers.clear()
