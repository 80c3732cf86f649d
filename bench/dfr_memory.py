"""Peak-memory estimate of `ltx2 generate --preset dfr` at a size (default 1920x1088x121), from token counts.

    python bench/dfr_memory.py [--width 1920 --height 1088 --num-frames 121 --temporal-refine 1]

No model is built: the token count of every transformer call is exact (ltx2.dfr_layout, the pipelines' own
positions); memory is the formula below, for bf16 weights and activations and a memory-efficient attention (no
S x S score matrix: SDPA flash / efficient kernels on CUDA, ltx2's chunked attention on CPU).

    peak = transformer weights + text encoder weights (unless offloaded) + rest of the pipeline
           + S_max * 14 * d * 2 bytes

S_max is the largest video token count of one transformer call; 14 d values per token is what a block keeps
alive at its widest (residual, norm, q, k, v, attention out, the 4 d feed-forward hidden in and out), d = 4096.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ltx2.dfr_layout import epilogue_tiles, resolve_canvas, temporal_tile_plan, video_tile_plan  # noqa: E402
from ltx2.models.transformer import video_positions  # noqa: E402
from ltx2.pipelines.conditioning import keyframe_positions  # noqa: E402

TEMPORAL, SPATIAL = 8, 32
D_VIDEO = 4096
BYTES = 2  # bf16
TRANSFORMER_PARAMETERS = 18.99e9  # LTX-2.5 (issue 19's full-size count)
TEXT_ENCODER_PARAMETERS = 12e9  # Gemma 4 12B
REST_GB = 2.5  # video and audio VAEs, upsamplers, vocoder, connectors, duration head (bf16, rounded up)


def activation_gb(tokens: int) -> float:
    return tokens * 14 * D_VIDEO * BYTES / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1088)
    parser.add_argument("--num-frames", type=int, default=121)
    parser.add_argument("--temporal-refine", type=int, default=1)
    args = parser.parse_args()
    canvas, segment, slots = resolve_canvas(args.num_frames, TEMPORAL)
    frames = (canvas - 1) // TEMPORAL + 1
    small = (args.height // (2 * SPATIAL)) * (args.width // (2 * SPATIAL))
    big = (args.height // SPATIAL) * (args.width // SPATIAL)
    calls = {"stage 1": (frames + len(slots)) * small, "stage 2 (grid + slots + reference)":
             (frames + len(slots)) * big + frames * small}
    positions, canvas_frames = slots, canvas
    for round_index in range(1, args.temporal_refine + 1):
        canvas_frames, seams = 2 * (canvas_frames - 1) + 1, [2 * p for p in positions]
        windows = temporal_tile_plan(seams, canvas_frames, 2**round_index, TEMPORAL)
        calls[f"temporal round {round_index} (largest window)"] = max(
            (w.interval.end - w.interval.start + len(w.anchors) + len(w.slots)) * big for w in windows)
        positions = sorted(set(seams) | {s for w in windows for s in w.slots})
    latent = ((canvas_frames - 1) // TEMPORAL + 1, args.height // SPATIAL, args.width // SPATIAL)
    coords = torch.cat([video_positions(1, *latent, (TEMPORAL, SPATIAL, SPATIAL), 1, 24.0)] + [
        keyframe_positions(1, latent[1], latent[2], p, True, (TEMPORAL, SPATIAL, SPATIAL), 24.0, torch.device("cpu"))
        for p in positions], dim=2)
    seams = [p // TEMPORAL for p in positions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiles = epilogue_tiles(latent, 2, seams)
    plan = video_tile_plan(tiles, coords, *latent)
    calls["epilogue, untiled (for comparison)"] = coords.shape[2]
    calls[f"epilogue, largest of {len(tiles)} tiles"] = max(len(tile.keep) for tile in plan)
    print(f"{args.width}x{args.height}x{args.num_frames}: canvas {canvas} frames (segments of {segment}), "
          f"{len(slots)} slots; output {(args.num_frames - 1) * 2**args.temporal_refine + 1} frames")
    for name, tokens in calls.items():
        print(f"  {name:<40} {tokens:>7} tokens  {activation_gb(tokens):6.2f} GB activations")
    run = {k: v for k, v in calls.items() if "untiled" not in k}
    peak_tokens = max(run.values())
    weights = TRANSFORMER_PARAMETERS * BYTES / 1e9
    text = TEXT_ENCODER_PARAMETERS * BYTES / 1e9
    print(f"  weights: transformer {weights:.1f} GB, text encoder {text:.1f} GB, rest ~{REST_GB} GB")
    print(f"  peak, --offload model: {weights + REST_GB + activation_gb(peak_tokens):.1f} GB "
          f"(the transformer's {peak_tokens} tokens)")
    print(f"  peak, everything resident: {weights + text + REST_GB + activation_gb(peak_tokens):.1f} GB")


if __name__ == "__main__":
    main()
