"""One generation shared by several processes over torch.distributed (NCCL on GPUs, gloo on CPUs; torchrun).

`LTX2Pipeline.enable_parallelism(ulysses_degree, guidance_degree)` applies three transforms over a (guidance,
ulysses) device mesh, ranks g * U .. g * U + U - 1 forming Ulysses group g; every rank runs the same pipeline call
on the same inputs and returns the same result:
- context parallelism (Ulysses, `ltx2.transforms.context_parallel`) on the transformer;
- guidance-pass parallelism (`ltx2.pipelines.guidance`): the passes of one sampling step on different groups;
- the distributed tiled VAE decode (`ltx2.transforms.collectives.share_tiles`).
"""

from __future__ import annotations

import math
from typing import Any

import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

from ..transforms.collectives import share_tiles
from ..transforms.context_parallel import ContextParallelConfig, remove_context_parallel
from .guidance import GuidanceGroups


def parallelize_pipeline(pipe: Any, ulysses_degree: int | None, guidance_degree: int) -> GuidanceGroups | None:
    """Apply the three transforms to `pipe` over a (guidance, ulysses) mesh of the whole world; returns the
    guidance groups for its sampling loop (None with one group)."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch.distributed is not initialized: call torch.distributed.init_process_group() "
                           "first (torchrun sets up its environment)")
    world = dist.get_world_size()
    if not isinstance(guidance_degree, int) or guidance_degree < 1 or world % guidance_degree:
        raise ValueError(f"guidance_degree must be a positive divisor of the world size {world}, "
                         f"got {guidance_degree!r}")
    ulysses_degree = world // guidance_degree if ulysses_degree is None else ulysses_degree
    if ulysses_degree * guidance_degree != world:
        raise ValueError(f"ulysses_degree x guidance_degree = {ulysses_degree} x {guidance_degree} must equal the "
                         f"world size {world}")
    mesh = init_device_mesh(pipe.device.type, (guidance_degree, ulysses_degree),
                            mesh_dim_names=("guidance", "ulysses"))
    if ulysses_degree > 1:
        pipe.transformer.enable_parallelism(config=ContextParallelConfig(ulysses_degree=ulysses_degree, mesh=mesh))
    if pipe.vae is not None and world > 1:
        share_tiles(pipe.vae)
    return GuidanceGroups(mesh, pipe.device) if guidance_degree > 1 else None


def unparallelize_pipeline(pipe: Any) -> tuple[int, int]:
    """Undo parallelize_pipeline, so that `pipe` holds no process group any more (and can be shared again over a new
    one); the (ulysses, guidance) degrees it was shared with."""
    config = getattr(pipe.transformer, "_parallel_config", None)
    degrees = (1 if config is None else config.ulysses_degree,
               1 if pipe._guidance_groups is None else pipe._guidance_groups.degree)
    if config is not None:
        remove_context_parallel(pipe.transformer)
    if pipe.vae is not None:
        pipe.vae.__dict__.pop("map_tiles", None)  # the class's own, one-process decode
    pipe._guidance_groups = None
    return degrees


def default_split(world: int, heads: int, guided: bool) -> tuple[int, int]:
    """(ulysses, guidance) degrees for `world` ranks: two guidance groups when the step has several passes
    (they need no communication inside a pass), Ulysses over the rest as far as the head count allows."""
    guidance = 2 if guided and world % 2 == 0 else 1
    ulysses = math.gcd(world // guidance, heads)
    return ulysses, world // ulysses
