"""Collectives the parallel transforms share: tensors broadcast with their shapes, and a VAE's tiled decode spread
over ranks (each tile decoded once, every rank receiving all of them)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
_HEADER = 32


def broadcast_tensors(
    tensors: Sequence[torch.Tensor] | None, source: int, group: dist.ProcessGroup, device: torch.device
) -> list[torch.Tensor]:
    """`tensors` of the global rank `source` (one dtype), on every rank of `group`; the others pass None.

    A fixed-size header (dtype, count, shapes) goes first, so receivers need not know what is coming.
    """
    if dist.get_rank() == source:
        fields = [_DTYPES.index(tensors[0].dtype), len(tensors)]
        for tensor in tensors:
            fields += [tensor.ndim, *tensor.shape]
        header = torch.tensor(fields + [0] * (_HEADER - len(fields)), dtype=torch.int64, device=device)
        dist.broadcast(header, source, group=group)
        dist.broadcast(torch.cat([tensor.reshape(-1) for tensor in tensors]), source, group=group)
        return list(tensors)
    header = torch.empty(_HEADER, dtype=torch.int64, device=device)
    dist.broadcast(header, source, group=group)
    dtype_index, count, *fields = header.tolist()
    shapes = []
    for _ in range(count):
        ndim, fields = fields[0], fields[1:]
        shapes.append(fields[:ndim])
        fields = fields[ndim:]
    payload = torch.empty(sum(math.prod(shape) for shape in shapes), dtype=_DTYPES[dtype_index], device=device)
    dist.broadcast(payload, source, group=group)
    return [part.view(shape) for part, shape in zip(payload.split([math.prod(s) for s in shapes]), shapes)]


class SharedTiles:
    """A VAE's `map_tiles` that decodes tile k on group rank k mod N and shares the results with every rank."""

    def __init__(self, group: dist.ProcessGroup):
        self.group = group

    def __call__(self, jobs: Sequence[Callable[[], torch.Tensor]]) -> list[torch.Tensor]:
        degree, rank = dist.get_world_size(self.group), dist.get_rank(self.group)
        owned = {index: job() for index, job in enumerate(jobs) if index % degree == rank}
        if not owned:
            # More ranks than tiles: decode one anyway, so that this rank's streamed passes end with everyone's
            # (a stream that has run tells how many flushing passes the decoder needs).
            owned_result = jobs[rank % len(jobs)]()
        else:
            owned_result = next(iter(owned.values()))
        results = []
        for index in range(len(jobs)):
            source = dist.get_global_rank(self.group, index % degree)
            mine = [owned[index]] if index in owned else None
            results.append(broadcast_tensors(mine, source, self.group, owned_result.device)[0])
        return results


def share_tiles(vae: Any, group: dist.ProcessGroup | None = None) -> None:
    """Spread the tiled decode of `vae` (AutoencoderKLLTX2Video) over `group` (default: the world).

    Tiles are blended exactly as one process blends them, so the decoded video is the same. Decoders that
    inject noise draw it per tile from the global generator, which ranks cannot share: they are refused.
    """
    inject_noise = vae.config.decoder_inject_noise
    if inject_noise if isinstance(inject_noise, bool) else any(inject_noise):
        raise ValueError("decoder_inject_noise: a decoder that injects noise draws it per tile in tile order; a "
                         "distributed decode cannot reproduce that")
    vae.map_tiles = SharedTiles(dist.group.WORLD if group is None else group)
