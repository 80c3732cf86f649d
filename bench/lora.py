"""Transformer forward with a rank-r LoRA on every Linear: none / unfused / fused, ltx2 vs diffusers 0.42.1 + peft.

    python bench/lora.py --config medium --layers 1 --rank 64     # CPU: full width, 1 block, 1024 video tokens

Both sides get the same weights (separate copies, since fusing writes into them) and the same LoRA; for each
mode the two forwards alternate. Prints the median seconds of each, the ratio ours / reference, and the one-off
seconds of load_lora_weights and fuse_lora.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import LTX2Pipeline
from timing import timed
from transformer import SHAPES, build

from ltx2 import LoraLoaderMixin


class Pipeline(LoraLoaderMixin):
    def __init__(self, transformer):
        self.transformer = transformer


def make_lora(model: torch.nn.Module, rank: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    state = {}
    for path, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=generator) / rank**0.5 * 0.1
            state[f"transformer.{path}.lora_A.weight"] = down.to(module.weight.dtype)
            state[f"transformer.{path}.lora_B.weight"] = up.to(module.weight.dtype)
    return state


def once(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(SHAPES), default="medium")
    parser.add_argument("--layers", type=int, default=1, help="number of blocks")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None, help="default: bf16 on cuda")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))
    torch.manual_seed(0)
    transformer, reference_transformer, inputs = build(args.config, args.layers, args.device, dtype)
    # `build` shares the weight tensors; fusing writes into them, so each side gets its own.
    transformer.load_state_dict({k: v.clone() for k, v in transformer.state_dict().items()}, assign=True)
    ours = Pipeline(transformer)
    reference = LTX2Pipeline(
        scheduler=None, vae=None, audio_vae=None, text_encoder=None, tokenizer=None,
        connectors=None, transformer=reference_transformer, vocoder=None,
    )  # fmt: skip
    lora = make_lora(transformer, args.rank)
    linears = len(lora) // 2
    print(
        f"config={args.config} layers={args.layers} rank={args.rank} on {linears} Linear layers "
        f"device={args.device} dtype={dtype} video_tokens={inputs['hidden_states'].shape[1]} "
        f"threads={torch.get_num_threads()}"
    )

    setup = {
        "unfused": lambda pipeline: pipeline.load_lora_weights(lora),
        "fused": lambda pipeline: pipeline.fuse_lora(),
    }
    for mode in ("none", "unfused", "fused"):
        if mode in setup:
            for name, pipeline in (("ours", ours), ("reference", reference)):
                print(f"  {name} {'load_lora_weights' if mode == 'unfused' else 'fuse_lora'}: "
                      f"{once(lambda: setup[mode](pipeline)):.3f} s")  # fmt: skip
        timed(lambda: ours.transformer(**inputs), args.device)
        timed(lambda: reference.transformer(**inputs), args.device)
        results = {"ours": [], "reference": []}
        for _ in range(args.repeats):
            for name, pipeline in (("ours", ours), ("reference", reference)):
                results[name].append(timed(lambda: pipeline.transformer(**inputs), args.device)[0])
        medians = {name: statistics.median(values) for name, values in results.items()}
        print(
            f"{mode:>8}: ours {medians['ours']:.4f} s  reference {medians['reference']:.4f} s  "
            f"ratio ours/reference {medians['ours'] / medians['reference']:.3f}  (medians of {args.repeats})"
        )


if __name__ == "__main__":
    main()
