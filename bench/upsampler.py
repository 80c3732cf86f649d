"""One latent-upsampler forward, ltx2 vs diffusers 0.42.1, same weights and input, alternating in one process.

    python bench/upsampler.py                      # CPU: the real 498M model on a (1, 128, 2, 4, 6) latent
    python bench/upsampler.py --shape medium       # CPU: a (1, 128, 3, 8, 12) latent
    python bench/upsampler.py --device cuda --shape stage1   # GPU: bf16, the stage-1 latent (1, 128, 16, 16, 24)

Both models share the same weight tensors (ours is built on the meta device and assigned the reference's),
so memory holds one copy. Prints the median seconds of each and the ratio ours / reference.
"""

from __future__ import annotations

import argparse

import torch
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler

from ltx2 import LTX2LatentUpsamplerModel
from timing import add_run_arguments, compare, run_dtype, twin

SHAPES = {"small": (1, 128, 2, 4, 6), "medium": (1, 128, 3, 8, 12), "stage1": (1, 128, 16, 16, 24)}


def build(device: str, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.nn.Module]:
    with torch.device(device):
        reference = ReferenceUpsampler().eval()
    if dtype != torch.float32:
        reference.to(dtype)
    return twin(LTX2LatentUpsamplerModel, reference), reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=list(SHAPES), default="small")
    add_run_arguments(parser)
    args = parser.parse_args()
    dtype = run_dtype(args)
    torch.manual_seed(0)
    ours, reference = build(args.device, dtype)
    latents = torch.randn(SHAPES[args.shape], device=args.device).to(dtype)
    print(
        f"shape={tuple(latents.shape)} device={args.device} dtype={dtype} threads={torch.get_num_threads()} "
        f"parameters={ours.num_parameters() / 1e6:.1f}M"
    )
    compare(lambda: ours(latents), lambda: reference(latents), args.device, args.repeats)


if __name__ == "__main__":
    main()
