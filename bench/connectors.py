"""The text connectors, ltx2 vs diffusers 0.42.1: full-size LTX2TextConnectors, batch 2 x 1024 tokens.

    python bench/connectors.py               # CPU, float32
    python bench/connectors.py --device cuda # GPU, bf16

Input: 49 stacked Gemma hidden states per token (3840 x 49 features), prompts of different lengths.
Prints the median seconds of each and the ratio ours / reference.
"""

from __future__ import annotations

import argparse

import torch
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors as ReferenceConnectors

from ltx2 import LTX2TextConnectors
from timing import add_run_arguments, compare, run_dtype, twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1024)
    add_run_arguments(parser)
    args = parser.parse_args()
    dtype = run_dtype(args)
    torch.manual_seed(0)
    with torch.device(args.device):
        reference = ReferenceConnectors(rope_type="split").eval().to(dtype)
    ours = twin(LTX2TextConnectors, reference)
    hidden = torch.randn(2, args.tokens, 3840 * 49, device=args.device).to(dtype)
    mask = torch.zeros(2, args.tokens, dtype=torch.int64, device=args.device)
    mask[0, -40:] = 1
    mask[1, -300:] = 1
    print(f"batch=2 tokens={args.tokens} device={args.device} dtype={dtype} threads={torch.get_num_threads()}")
    compare(lambda: ours(hidden, mask), lambda: reference(hidden, mask), args.device, args.repeats)


if __name__ == "__main__":
    main()
