"""Reading and writing safetensors weights: single files, shards with an index, strict key checks."""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..files import atomic_write, write_text_atomic

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
_SHOWN_KEYS = 5


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not match the model it is loaded into."""


def _first(keys: set[str] | list[str]) -> str:
    ordered = sorted(keys)
    shown = ", ".join(ordered[:_SHOWN_KEYS])
    more = f" (+{len(ordered) - _SHOWN_KEYS} more)" if len(ordered) > _SHOWN_KEYS else ""
    return shown + more


class TensorSource:
    """Lazy access to every tensor of a checkpoint made of one or more memory-mapped safetensors files."""

    def __init__(self, files: list[Path], description: str):
        self.description = description
        self._stack = ExitStack()
        self._handles = {}
        self._owner: dict[str, object] = {}
        for path in files:
            try:
                handle = self._stack.enter_context(safe_open(str(path), framework="pt", device="cpu"))
            except FileNotFoundError:
                self.close()
                raise CheckpointError(f"{path}: weights file not found") from None
            except Exception as error:
                self.close()
                raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
            self._handles[path] = handle
            for key in handle.keys():
                self._owner[key] = path

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> TensorSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def keys(self) -> list[str]:
        return list(self._owner)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._handles[self._owner[key]].get_slice(key).get_shape())

    def dtype(self, key: str) -> str:
        """The stored dtype as safetensors names it ("BF16", "F8_E4M3", ...), without reading the tensor."""
        return self._handles[self._owner[key]].get_slice(key).get_dtype()

    def metadata(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for handle in self._handles.values():
            merged.update(handle.metadata() or {})
        return merged

    def get(self, key: str) -> torch.Tensor:
        path = self._owner[key]
        try:
            return self._handles[path].get_tensor(key)
        except Exception as error:
            raise CheckpointError(f"{path}: tensor {key!r} could not be read ({error})") from None

    def get_stored(self, key: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tensor as stored and its scale: a diffusers-layout file holds no scales."""
        return self.get(key), None


def open_weights(folder: Path) -> TensorSource:
    """Open the diffusers-layout weights in `folder`: one file, or shards listed by an index."""
    index_path = folder / INDEX_NAME
    if index_path.is_file():
        try:
            weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise CheckpointError(f"{index_path}: not a valid shard index ({error})") from None
        files = [folder / name for name in dict.fromkeys(weight_map.values())]
        source = TensorSource(files, str(index_path))
        listed, present = set(weight_map), set(source.keys())
        if listed != present:
            source.close()
            raise CheckpointError(
                f"{index_path}: the index and its shards disagree; listed but absent: {_first(listed - present) or '-'}"
                f"; present but unlisted: {_first(present - listed) or '-'}"
            )
        return source
    single = folder / WEIGHTS_NAME
    if not single.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME} or {INDEX_NAME} found")
    return TensorSource([single], str(single))


def check_keys(model: torch.nn.Module, source: TensorSource) -> None:
    """Raise CheckpointError unless `source` holds exactly the model's keys with the model's shapes."""
    expected = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}
    provided = set(source.keys())
    missing, unexpected = set(expected) - provided, provided - set(expected)
    problems = []
    if missing:
        problems.append(f"missing keys: {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_first(unexpected)}")
    mismatched = [
        f"{key} (checkpoint {source.shape(key)}, model {shape})"
        for key, shape in sorted(expected.items())
        if key in provided and source.shape(key) != shape
    ]
    if mismatched:
        problems.append(f"shape mismatch: {', '.join(mismatched[:_SHOWN_KEYS])}")
    if problems:
        raise CheckpointError(f"{source.description} does not match {type(model).__name__}: " + "; ".join(problems))


class Layout(NamedTuple):
    """What a config implies about its checkpoint, worked out without building the model."""

    blocks: dict[str, tuple[str, int]]  # key prefix of repeated blocks -> (config key, how many)
    shapes: dict[str, tuple[int, ...]]  # tensor key -> shape


def check_layout(layout: Layout, source: TensorSource, origin: str) -> None:
    """Raise CheckpointError where the checkpoint's header disagrees with the block counts and shapes a config
    implies: read from the header only, so a wrong count fails before a single block is built."""
    keys = source.keys()
    problems = []
    for prefix, (config_key, count) in layout.blocks.items():
        pattern = re.compile(rf"{re.escape(prefix)}\.(\d+)\.")
        indices = sorted({int(match.group(1)) for key in keys if (match := pattern.match(key))})
        if len(indices) != count or (indices and indices[-1] != count - 1):  # sorted and distinct: 0 .. count-1
            held = f"{prefix}.{indices[0]} to {prefix}.{indices[-1]} ({len(indices)} blocks)" if indices else "none"
            problems.append(f"{config_key}={count}, but the weights hold {held}")
    present = set(keys)
    for key, shape in layout.shapes.items():
        if key in present and source.shape(key) != shape:
            problems.append(f"{key} (checkpoint {source.shape(key)}, config {shape})")
    if problems:
        raise CheckpointError(f"{origin} does not match {source.description}: " + "; ".join(problems))


def _set_tensor(model: torch.nn.Module, key: str, tensor: torch.Tensor) -> None:
    module_path, _, name = key.rpartition(".")
    module = model.get_submodule(module_path)
    if name in module._parameters:
        module._parameters[name] = torch.nn.Parameter(tensor, requires_grad=False)
    else:
        module._buffers[name] = tensor


def fill_from(
    model: torch.nn.Module,
    source: TensorSource,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
    skip: Container[str] = (),
) -> None:
    """Replace every tensor of `model` (typically built on the meta device) with the checkpoint's, one at a time;
    keys in `skip` are left for the caller."""
    check_keys(model, source)
    for key in source.keys():
        if key in skip:
            continue
        tensor = source.get(key)
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        if device is not None:
            tensor = tensor.to(device)
        _set_tensor(model, key, tensor)


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    text = size.strip().upper()
    for unit, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def _shards(state: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for key, tensor in state.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and used + size > max_bytes:
            shards.append({})
            used = 0
        shards[-1][key] = tensor
        used += size
    return shards


def save_weights(state: dict[str, torch.Tensor], folder: Path, max_shard_size: int | str) -> None:
    """Write `state` as one safetensors file, or as numbered shards plus an index when it exceeds the size."""
    state = {key: tensor.detach().contiguous().cpu() for key, tensor in state.items()}
    shards = _shards(state, _parse_size(max_shard_size))
    for stale in [folder / WEIGHTS_NAME, folder / INDEX_NAME, *folder.glob("diffusion_pytorch_model-*.safetensors")]:
        stale.unlink(missing_ok=True)
    if len(shards) == 1:
        atomic_write(folder / WEIGHTS_NAME, lambda name: save_file(shards[0], name, metadata={"format": "pt"}))
        return
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        name = f"diffusion_pytorch_model-{number:05d}-of-{len(shards):05d}.safetensors"
        atomic_write(folder / name, lambda path, shard=shard: save_file(shard, path, metadata={"format": "pt"}))
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    index = json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n"
    write_text_atomic(folder / INDEX_NAME, index)


def iter_meta_tensors(model: torch.nn.Module) -> Iterator[str]:
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:
            yield name
