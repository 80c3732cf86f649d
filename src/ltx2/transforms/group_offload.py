"""Group offloading: weights live off the accelerator and each group of layers is copied in just before it runs.

Groups (`offload_type`):
- "block_level": every nn.ModuleList / nn.Sequential reached from the root outside another group is cut into
  groups of `num_blocks_per_group` consecutive children (the 48 transformer blocks, the VAE's up blocks, Gemma's
  layers); every other module holding tensors of its own is a group of just those tensors (proj_in, the AdaLN
  linears, the root's tables). diffusers' block level looks only at the root's children and keeps the rest in
  one group; for the transformer both give the same blocks.
- "leaf_level": every module holding tensors of its own is a group of those tensors.

A group's tensors are copied to `onload_device` by a forward pre-hook of its first module and put back by a
forward hook of its last. Offloaded tensors are the model's own tensors: pinned CPU memory when copies go to
CUDA (pinned once, in place, so no second copy of the weights exists), or files: with `offload_to_disk_path`
each group is written once to `<path>/<group>.safetensors` and read back from the file at every onload, the
model holding meta tensors in between. Tensors added later (LoRA factors) move with their layer.

With a CUDA onload device and `use_stream`, copies run on a side stream: when a group starts, the group that
followed it last time is copied while it computes. Events order everything and the CPU never waits: a copy
starts after the compute work queued before it (its memory was allocated on the compute stream, where the
previous group's memory was freed), and a group's kernels wait for its copy. At most two groups (the running
one and the next) are on the device beside the small per-layer groups in use.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ..files import atomic_write

OFFLOAD_TYPES = ("block_level", "leaf_level")


@dataclass(eq=False)
class Group:
    """Tensors that move together: those of `owners`, the modules of `members` that hold tensors of their own."""

    name: str
    members: list[nn.Module]
    owners: list[tuple[str, nn.Module]] = field(default_factory=list)  # (path, module) of every tensor holder
    resident: list[tuple[nn.Module, str, torch.Tensor]] = field(default_factory=list)  # offloaded tensors, by slot
    ready: torch.cuda.Event | None = None
    file: Path | None = None
    onloads: int = 0  # how many times this group was copied in


def find_groups(root: nn.Module, offload_type: str, num_blocks_per_group: int | None) -> list[Group]:
    groups: list[Group] = []

    def owns_tensors(module: nn.Module) -> bool:
        return any(t is not None for t in (*module._parameters.values(), *module._buffers.values()))

    def visit(module: nn.Module, path: str) -> None:
        prefix = f"{path}." if path else ""
        if offload_type == "block_level" and isinstance(module, (nn.ModuleList, nn.Sequential)):
            children = list(module.named_children())
            for start in range(0, len(children), num_blocks_per_group):
                chunk = children[start : start + num_blocks_per_group]
                name = f"{prefix}{chunk[0][0]}-{chunk[-1][0]}"
                group = Group(name, [child for _, child in chunk])
                group.owners = [
                    (f"{prefix}{child_name}.{sub}".rstrip("."), sub_module)
                    for child_name, child in chunk
                    for sub, sub_module in child.named_modules()
                    if owns_tensors(sub_module)
                ]
                groups.append(group)
            return
        if owns_tensors(module):
            groups.append(Group(path or "root", [module], owners=[(path, module)]))
        for name, child in module.named_children():
            visit(child, f"{prefix}{name}")

    visit(root, "")
    return groups


def _tensors(owner: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The module's own tensors: each parameter's data and each buffer."""
    parameters = [(name, p.data) for name, p in owner._parameters.items() if p is not None]
    return parameters + [(name, b) for name, b in owner._buffers.items() if b is not None]


def _place(owner: nn.Module, name: str, tensor: torch.Tensor) -> None:
    if name in owner._parameters:
        owner._parameters[name] = nn.Parameter(tensor, requires_grad=False)
    else:
        owner._buffers[name] = tensor


class GroupOffload:
    """The hooks and state of group offloading on one model (see the module docstring); `remove()` undoes it."""

    attribute = "_ltx2_group_offload"

    def __init__(
        self,
        model: nn.Module,
        onload_device: torch.device,
        offload_device: torch.device,
        offload_type: str,
        num_blocks_per_group: int | None,
        use_stream: bool,
        low_cpu_mem_usage: bool,
        offload_to_disk_path: str | Path | None,
    ):
        self.model = model
        self.device = onload_device
        self.offload_device = offload_device
        self.stream = torch.cuda.Stream(onload_device) if use_stream and onload_device.type == "cuda" else None
        self.pin = onload_device.type == "cuda" and offload_device.type == "cpu" and not low_cpu_mem_usage
        self.folder = Path(offload_to_disk_path) if offload_to_disk_path is not None else None
        self.groups = find_groups(model, offload_type, num_blocks_per_group)
        self.following: dict[Group, Group] = {}  # the group that ran after each one last time
        self.previous: Group | None = None
        self.seen: set[Group] = set()  # the groups that ran in the current pass
        self.handles = []
        if self.folder is not None:
            # Every file is written before any tensor is dropped, so a failed write loses nothing.
            for group in self.groups:
                self._write(group)
        for group in self.groups:
            self._store(group)
            first, last = group.members[0], group.members[-1]
            self.handles.append(first.register_forward_pre_hook(self._hook(self._enter, group)))
            self.handles.append(last.register_forward_hook(self._hook(self._leave, group), always_call=True))
        model.__dict__[self.attribute] = self

    @staticmethod
    def _hook(method, group: Group):
        return torch.compiler.disable(lambda module, *args: method(group))

    # -- where offloaded tensors live -----------------------------------------------------------------------

    def _write(self, group: Group) -> None:
        group.file = self.folder / f"{group.name}.safetensors"
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {self._key(path, name): tensor.to("cpu").contiguous()
                   for path, owner in group.owners for name, tensor in _tensors(owner)}
        atomic_write(group.file, lambda temporary: save_file(tensors, temporary))

    def _store(self, group: Group) -> None:
        """Leave the group's tensors in their offloaded home: pinned memory, the offload device, or its file
        (the model then holds meta tensors)."""
        with torch.no_grad():
            for _, owner in group.owners:
                for name, tensor in _tensors(owner):
                    home = torch.empty_like(tensor, device="meta") if group.file else self._offloaded(tensor)
                    _place(owner, name, home)

    def _offloaded(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.pin and not tensor.is_pinned():
            return torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True).copy_(tensor)
        return tensor.to(self.offload_device)

    @staticmethod
    def _key(path: str, name: str) -> str:
        return f"{path}.{name}" if path else name

    # -- moving groups ----------------------------------------------------------------------------------------

    def onload(self, group: Group) -> None:
        """Copy the group's tensors to the device (on the side stream when there is one); no-op if there."""
        if group.resident:
            return
        group.onloads += 1
        copies = []
        reading = safe_open(str(group.file), framework="pt", device="cpu") if group.file is not None else nullcontext()
        with reading as file, torch.no_grad():
            for path, owner in group.owners:
                for name, tensor in _tensors(owner):
                    if tensor.is_meta and group.file is not None:
                        source = file.get_tensor(self._key(path, name))
                    else:
                        source = tensor if tensor.device.type != "cpu" else self._offloaded(tensor)
                        if source is not tensor:  # a tensor added since (a LoRA factor): pinned in place once
                            _place(owner, name, source)
                    group.resident.append((owner, name, tensor if tensor.is_meta else source))
                    # Allocated on the compute stream, so the memory is free for everything queued there.
                    target = torch.empty_like(source, device=self.device)
                    copies.append((target, source))
                    _place(owner, name, target)
            if self.stream is None:
                for target, source in copies:
                    target.copy_(source, non_blocking=source.is_pinned())
                return
            allocated = torch.cuda.current_stream(self.device).record_event()
            with torch.cuda.stream(self.stream):
                self.stream.wait_event(allocated)
                for target, source in copies:
                    target.copy_(source, non_blocking=True)
                group.ready = self.stream.record_event()

    def offload(self, group: Group) -> None:
        """Put the offloaded tensors back; the device copies are freed once the compute stream is done with them."""
        if group.ready is not None:
            torch.cuda.current_stream(self.device).wait_event(group.ready)
            group.ready = None
        for owner, name, tensor in group.resident:
            _place(owner, name, tensor)
        group.resident = []

    def _enter(self, group: Group) -> None:
        self.onload(group)
        if group.ready is not None:
            torch.cuda.current_stream(self.device).wait_event(group.ready)
            group.ready = None
        # Learn the order: a group seen again starts a new pass, and no link is made across passes.
        if group in self.seen:
            self.seen = set()
        elif self.previous is not None:
            self.following[self.previous] = group
        self.seen.add(group)
        self.previous = group
        following = self.following.get(group)
        if self.stream is not None and following is not None:
            self.onload(following)

    def _leave(self, group: Group) -> None:
        self.offload(group)
        if group.members[0] is self.model:
            # The model's forward is over: drop whatever was copied in for a group that did not run.
            for other in self.groups:
                self.offload(other)

    def remove(self) -> None:
        """Remove the hooks and leave every tensor on the offload device (read back from the files if on disk)."""
        for handle in self.handles:
            handle.remove()
        for group in self.groups:
            self.offload(group)
            if group.file is None:
                continue
            with safe_open(str(group.file), framework="pt", device="cpu") as file:
                for path, owner in group.owners:
                    for name, tensor in _tensors(owner):
                        if tensor.is_meta:
                            _place(owner, name, file.get_tensor(self._key(path, name)).to(self.offload_device))
        self.model.__dict__.pop(self.attribute, None)


def apply_group_offload(
    model: nn.Module,
    onload_device: torch.device | str,
    offload_device: torch.device | str = "cpu",
    offload_type: str = "block_level",
    num_blocks_per_group: int | None = None,
    use_stream: bool = True,
    record_stream: bool = False,
    low_cpu_mem_usage: bool = False,
    offload_to_disk_path: str | Path | None = None,
) -> GroupOffload:
    """Offload `model`'s weights group by group (module docstring), replacing any group offloading it had.

    `use_stream` takes effect when the onload device is CUDA. `record_stream` is accepted as in diffusers; the
    copies here are ordered by events, so nothing needs recording. `low_cpu_mem_usage` leaves CPU tensors
    unpinned (no pinned copy is made; each copy is then staged by the driver and not overlapped).
    """
    if offload_type not in OFFLOAD_TYPES:
        raise ValueError(f"offload_type={offload_type!r}: must be one of {', '.join(OFFLOAD_TYPES)}")
    if offload_type == "block_level" and (not isinstance(num_blocks_per_group, int) or num_blocks_per_group < 1):
        raise ValueError(
            f"num_blocks_per_group={num_blocks_per_group!r}: offload_type='block_level' needs a positive number"
        )
    if record_stream and not use_stream:
        raise ValueError("record_stream=True needs use_stream=True")
    existing = model.__dict__.get(GroupOffload.attribute)
    if existing is not None:
        existing.remove()
    return GroupOffload(
        model,
        torch.device(onload_device),
        torch.device(offload_device),
        offload_type,
        num_blocks_per_group,
        use_stream,
        low_cpu_mem_usage,
        offload_to_disk_path,
    )
