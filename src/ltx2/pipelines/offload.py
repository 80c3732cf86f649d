"""Keeping big models off the accelerator until they run: whole-model and block-by-block offload.

Model offload keeps one component on the execution device at a time. Sequential offload keeps every
weight in pinned CPU memory and streams one block at a time: each element of a ModuleList (a
transformer block, a VAE stage) and each remaining layer with weights is copied to the device right
before its forward and dropped right after. The CPU tensors are never replaced, so nothing is copied back.
"""

from __future__ import annotations

import torch
from torch import nn

from ..transforms.group_offload import GroupOffload, apply_group_offload


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


class SequentialOffload:
    """Group offloading (ltx2.transforms.group_offload) of every registered module: block level, one block per
    group, weights in pinned CPU memory, the next block copied on a side CUDA stream while one computes."""

    def __init__(self, device: torch.device):
        self.device = device
        self.offloads: list[GroupOffload] = []

    def attach(self, root: nn.Module) -> None:
        self.offloads.append(apply_group_offload(root, self.device, offload_type="block_level", num_blocks_per_group=1))

    def detach(self) -> None:
        for offload in self.offloads:
            offload.remove()
        self.offloads.clear()
