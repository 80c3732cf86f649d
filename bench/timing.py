"""Shared by the bench scripts: time ours against the reference, alternating runs in one process."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--device, --dtype (bf16 by default on CUDA, else float32) and --repeats."""
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default=None, help="default: bf16 on cuda")
    parser.add_argument("--repeats", type=int, default=5)


def run_dtype(args: argparse.Namespace) -> torch.dtype:
    return getattr(torch, args.dtype or ("bfloat16" if args.device == "cuda" else "float32"))


def timed(run: Callable[[], object], device: str) -> tuple[float, int]:
    """Seconds for one call of `run` under inference mode, and the peak CUDA memory (0 off CUDA)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.inference_mode():
        run()
    if device == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated()
    return time.perf_counter() - start, 0


def compare(ours: Callable[[], object], reference: Callable[[], object], device: str, repeats: int) -> None:
    """Warm both up once, alternate `repeats` times, print each median (and CUDA peak) and the ratio."""
    runs = {"ours": ours, "reference": reference}
    for run in runs.values():
        timed(run, device)
    seconds = {name: [] for name in runs}
    peaks = dict.fromkeys(runs, 0)
    for _ in range(repeats):
        for name, run in runs.items():
            elapsed, peak = timed(run, device)
            seconds[name].append(elapsed)
            peaks[name] = max(peaks[name], peak)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name in runs:
        memory = f"  peak {peaks[name] / 2**30:.2f} GiB" if device == "cuda" else ""
        print(f"{name:>9}: median {medians[name]:.4f} s over {repeats}{memory}")
    print(f"ratio ours/reference: {medians['ours'] / medians['reference']:.3f}")


def twin(ours_class: type, reference: torch.nn.Module, **config: object) -> torch.nn.Module:
    """Our model with the same config, sharing the reference's weight tensors (no second copy in memory)."""
    with torch.device("meta"):
        ours = ours_class(**config)
    ours.load_state_dict(reference.state_dict(), assign=True)
    return ours.eval()
