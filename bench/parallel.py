"""One CFG sampling step (two transformer passes) on 1 and N ranks: time, peak memory and bytes sent per rank.

    python bench/parallel.py --ranks 1 2 4                       # CPU: gloo ranks started here, --config small
    torchrun --nproc-per-node 8 bench/parallel.py --device cuda --config full --layers 8   # NCCL, one world

On CPU each (world size, split) runs in its own spawned group, one thread per rank (a rank stands for one
device; more ranks than cores oversubscribe them); under torchrun the script measures the world it was started
in. Each split is timed: Ulysses over all ranks, and two guidance groups of N/2-way Ulysses. Per rank: the
median step, the peak memory above the loaded model (CUDA: allocated; CPU: resident set), the bytes it sends
per step and, on gloo (whose collectives return when done), the share of the step spent inside collectives
(waiting for a slower peer included).

At N = 1 the step runs through the same code as every LTX2Pipeline step (ltx2.pipelines.guidance.run_guidance_passes,
attention modules with `parallel` unset); it is timed against the direct batched transformer call that the
sampling loop made before guidance passes existed, alternating.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.device_mesh import init_device_mesh

from ltx2 import ContextParallelConfig, LTX2VideoTransformer3DModel
from ltx2.pipelines.guidance import GuidanceGroups, GuidanceScales, guidance_passes, run_guidance_passes

CONFIGS = {
    # name: (model overrides, latent (frames, height, width), audio tokens, text tokens)
    "small": (dict(num_attention_heads=8, attention_head_dim=64, cross_attention_dim=512, audio_num_attention_heads=8,
                   audio_attention_head_dim=32, audio_cross_attention_dim=256, caption_channels=256, num_layers=4),
              (8, 16, 16), 52, 128),
    # The 19B model on the 768x512x121 stage-1 step.
    "full": (dict(), (16, 16, 24), 126, 1024),
}


class Traffic:
    """Wraps the collectives the parallel transforms use: bytes this rank sends, and seconds spent inside them."""

    def __init__(self) -> None:
        self.bytes = 0
        self.seconds = 0.0
        self.originals = {name: getattr(dist, name) for name in ("all_to_all_single", "all_gather", "broadcast")}

    def install(self) -> None:
        for name, function in self.originals.items():
            setattr(dist, name, self._counted(name, function))

    def uninstall(self) -> None:
        for name, function in self.originals.items():
            setattr(dist, name, function)

    def _counted(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, group: Any = None, **kwargs: Any) -> Any:
            size = dist.get_world_size(group)
            if name == "all_to_all_single":  # the (N-1)/N of the input that leaves this rank
                sent = args[1].numel() * args[1].element_size() * (size - 1) // size
            elif name == "all_gather":  # this rank's shard, once to each peer
                sent = args[1].numel() * args[1].element_size() * (size - 1)
            else:  # the payload, once from its source
                sent = args[0].numel() * args[0].element_size() if dist.get_rank() == args[1] else 0
            start = time.perf_counter()
            result = function(*args, group=group, **kwargs)
            self.seconds += time.perf_counter() - start
            self.bytes += sent
            return result
        return run


def build(config_name: str, layers: int | None, device: torch.device, dtype: torch.dtype):
    overrides, (frames, height, width), audio_tokens, text_tokens = CONFIGS[config_name]
    config = dict(overrides, rope_type="split")
    if layers is not None:
        config["num_layers"] = layers
    torch.manual_seed(0)  # every rank builds the same weights
    with torch.device(device):
        model = LTX2VideoTransformer3DModel(**config).to(dtype).eval()
    generator = torch.Generator(device).manual_seed(1)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device).to(dtype)

    channels = model.config.caption_channels
    latents = randn(1, frames * height * width, model.config.in_channels)
    audio = randn(1, audio_tokens, model.config.audio_in_channels)
    text, audio_text = randn(2, text_tokens, channels), randn(2, text_tokens, channels)  # [negative; positive]
    mask = torch.ones(2, text_tokens, device=device)

    def predict(rows: list[slice], options: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        copies = len(rows)
        return model(
            hidden_states=torch.cat([latents] * copies), audio_hidden_states=torch.cat([audio] * copies),
            encoder_hidden_states=torch.cat([text[r] for r in rows]),
            audio_encoder_hidden_states=torch.cat([audio_text[r] for r in rows]),
            timestep=torch.full((copies,), 500.0, device=device),
            encoder_attention_mask=torch.cat([mask[r] for r in rows]),
            audio_encoder_attention_mask=torch.cat([mask[r] for r in rows]), num_frames=frames, height=height,
            width=width, fps=24.0, audio_num_frames=audio_tokens, return_dict=False, **options,
        )

    def direct() -> tuple[torch.Tensor, torch.Tensor]:
        return model(
            hidden_states=torch.cat([latents, latents]), audio_hidden_states=torch.cat([audio, audio]),
            encoder_hidden_states=text, audio_encoder_hidden_states=audio_text, timestep=torch.full((2,), 500.0,
            device=device), encoder_attention_mask=mask, audio_encoder_attention_mask=mask, num_frames=frames,
            height=height, width=width, fps=24.0, audio_num_frames=audio_tokens, return_dict=False,
        )

    shape = f"{frames * height * width} video / {audio_tokens} audio / {text_tokens} text tokens"
    return model, predict, direct, shape


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(run: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.inference_mode():
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def splits(world: int) -> list[tuple[int, int]]:
    """(ulysses, guidance) degrees to time: Ulysses over all ranks, and two guidance groups."""
    return [(world, 1)] + ([(world // 2, 2)] if world % 2 == 0 else [])


def measure(args: argparse.Namespace, device: torch.device, ulysses: int, guidance: int) -> list[str]:
    """Time one split of this world; rank 0 returns the report lines (every rank's figures)."""
    world = dist.get_world_size()
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    passes = guidance_passes(1, True, GuidanceScales(cfg=4.0), GuidanceScales(cfg=4.0))
    model, predict, direct, shape = build(args.config, args.layers, device, dtype)
    mesh = init_device_mesh(device.type, (guidance, ulysses), mesh_dim_names=("guidance", "ulysses"))
    if ulysses > 1:
        model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=ulysses, mesh=mesh))
    groups = GuidanceGroups(mesh, device) if guidance > 1 else None

    def step() -> Any:
        return run_guidance_passes(passes, predict, groups)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated() if device.type == "cuda" else resident_bytes()
    timed(step, device)  # warm-up
    traffic = Traffic()
    traffic.install()
    seconds = [timed(step, device) for _ in range(args.repeats)]
    traffic.uninstall()
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - baseline
    median = statistics.median(seconds)
    figures = [median, peak / 2**30, traffic.bytes / args.repeats / 2**20, traffic.seconds / args.repeats / median]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, figures)
    lines = [f"{shape}, N={world} ulysses={ulysses} guidance={guidance}:"]
    comm = "" if device.type == "cuda" else ", in collectives {3:.1%}"
    for index, values in enumerate(gathered):
        lines.append(f"  rank {index}: step {{0:.3f}} s, peak +{{1:.2f}} GiB, sent {{2:.1f}} MiB{comm}".format(*values))
    if world == 1:
        alternating = [(timed(step, device), timed(direct, device)) for _ in range(args.repeats)]
        ours, plain = (statistics.median(values) for values in zip(*alternating))
        lines.append(f"  alternating: via run_guidance_passes {ours:.3f} s, direct batched call {plain:.3f} s, "
                     f"ratio {ours / plain:.3f}")
    return lines


def spawned(rank: int, world: int, folder: str, args: argparse.Namespace, split: tuple[int, int]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    lines = measure(args, torch.device("cpu"), *split)
    if rank == 0:
        print("\n".join(lines), flush=True)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(CONFIGS), default="small")
    parser.add_argument("--layers", type=int, default=None, help="number of blocks (default: the config's)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4], help="world sizes to spawn (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None, help="default: bf16 on cuda")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"config={args.config} layers={args.layers or 'default'} device={args.device} cores={os.cpu_count()} "
          f"torch={torch.__version__}", flush=True)
    if "WORLD_SIZE" in os.environ:  # under torchrun: measure this world
        local_rank = int(os.environ["LOCAL_RANK"])
        device = torch.device("cuda", local_rank) if args.device == "cuda" else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        for split in splits(dist.get_world_size()):
            lines = measure(args, device, *split)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if dist.get_rank() == 0:
                print("\n".join(lines), flush=True)
        dist.destroy_process_group()
        return
    for world in args.ranks:
        for split in splits(world):  # a fresh group of processes each, so that peak memory is this split's
            with tempfile.TemporaryDirectory() as folder:
                mp.spawn(spawned, args=(world, folder, args, split), nprocs=world)


if __name__ == "__main__":
    main()
