"""A whole text-to-video+audio call, ltx2 vs diffusers 0.42.1, on the same pipeline folder, alternating.

    python bench/pipeline.py --size tiny     # the tests' tiny pipeline (milliseconds per component)
    python bench/pipeline.py --size medium   # wider components, 128x192 pixels, 25 frames, 10 steps
    python bench/pipeline.py --version 2.3   # LTX-2.3's switches on; both sides at their LTX-2.3 defaults
    python bench/pipeline.py --version 2.5   # LTX-2.5's networks (Gemma 4, the 2.5 transformer) and its
                                             # distilled scheduler (a linear schedule); both at their defaults
    python bench/pipeline.py --version 2.5 --flow dfr  # one LTX2DFRPipeline pass (slots, 8 distilled steps)
    python bench/pipeline.py --flow condition  # LTX2ConditionPipeline with two keyframes (first and last
                                               # frame), then LTX2InContextPipeline with a reference video

Reports the median seconds of the whole call (wall and CPU) and of each component (summed over its calls) for
both, and the ratios, and how the guidance passes ran: transformer calls per step and the rows each carried.
With --version 2.0 the reference is pinned to LTX-2.0 guidance (ltx2's defaults there); with 2.3 both run their
defaults (CFG 3, STG on the model's last block, modality isolation 3, rescale 0.7, audio CFG 7, cross
timestep). Peak memory is reported on CUDA only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import tiny_pipeline  # noqa: E402
from diffusers.pipelines.ltx2 import LTX2DFRPipeline as ReferenceDFR  # noqa: E402
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline  # noqa: E402
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2ConditionPipeline as ReferenceCondition  # noqa: E402
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition as ReferenceVideoCondition  # noqa: E402
from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2InContextPipeline as ReferenceInContext  # noqa: E402
from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2ReferenceCondition as ReferenceReference  # noqa: E402

from ltx2 import (  # noqa: E402
    LTX2ConditionPipeline,
    LTX2DFRPipeline,
    LTX2InContextPipeline,
    LTX2Pipeline,
    LTX2ReferenceCondition,
    LTX2VideoCondition,
)

COMPONENTS = ("text_encoder", "connectors", "transformer", "vae", "audio_vae", "vocoder")
SIZES = {
    "tiny": dict(overrides={}, call=dict(height=32, width=32, num_frames=9, num_inference_steps=3)),
    "medium": dict(
        overrides=dict(
            TRANSFORMER=dict(num_attention_heads=8, attention_head_dim=32, cross_attention_dim=256,
                             audio_num_attention_heads=8, audio_attention_head_dim=16, audio_cross_attention_dim=128,
                             num_layers=4),
            # An encoder that can encode at this latent width (the condition flow encodes; (64, 128) cannot).
            VIDEO_VAE=dict(block_out_channels=(16, 64), decoder_block_out_channels=(64, 128)),
        ),
        call=dict(height=128, width=192, num_frames=25, num_inference_steps=10),
    ),
}


class ComponentTimer:
    """Accumulates wall time spent inside each component's top-level module calls."""

    def __init__(self, pipe: object):
        self.seconds: dict[str, float] = defaultdict(float)
        self.transformer_rows: list[int] = []  # the batch rows of each transformer call
        self.handles = [pipe.transformer.register_forward_pre_hook(self._count, with_kwargs=True)]
        for name in COMPONENTS:
            module = getattr(pipe, name)
            # VAEs are driven through encode/decode, so time their encoder and decoder submodules.
            targets = [module.decoder] if name in ("vae", "audio_vae") else [module]
            targets += [module.encoder] if name == "vae" else []
            for target in targets:
                self.handles.append(target.register_forward_pre_hook(self._start(name)))
                self.handles.append(target.register_forward_hook(self._stop(name)))
        self.started: dict[str, float] = {}

    def _count(self, module, args, kwargs):
        self.transformer_rows.append((args[0] if args else kwargs["hidden_states"]).shape[0])

    def _start(self, name: str):
        def hook(*_):
            self.started[name] = time.perf_counter()
        return hook

    def _stop(self, name: str):
        def hook(*_):
            self.seconds[name] += time.perf_counter() - self.started.pop(name)
        return hook


def flows(folder: Path, flow: str, call: dict) -> list[tuple[str, dict, dict]]:
    """(name, {implementation: pipeline}, {implementation: extra call arguments}) for each case of the flow."""
    if flow == "text":
        pipes = {"ours": LTX2Pipeline.from_pretrained(folder), "reference": ReferencePipeline.from_pretrained(folder)}
        return [("text to video", pipes, {"ours": {}, "reference": {}})]
    if flow == "dfr":
        pipes = {"ours": LTX2DFRPipeline.from_pretrained(folder), "reference": ReferenceDFR.from_pretrained(folder)}
        return [("DFR stage 1 (slots)", pipes, {"ours": {}, "reference": {}})]
    rng = np.random.default_rng(0)
    height, width, frames = call["height"], call["width"], call["num_frames"]
    first, last = (PIL.Image.fromarray((rng.random((height + 16, width + 24, 3)) * 255).astype(np.uint8))
                   for _ in range(2))
    video = [PIL.Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)) for _ in range(frames)]
    keyframes = {"ours": dict(conditions=[LTX2VideoCondition(first, 0), LTX2VideoCondition(last, -1)]),
                 "reference": dict(conditions=[ReferenceVideoCondition(first, 0), ReferenceVideoCondition(last, -1)])}
    references = {"ours": dict(reference_conditions=[LTX2ReferenceCondition(video)]),
                  "reference": dict(reference_conditions=[ReferenceReference(video)])}
    return [
        ("two keyframes", {"ours": LTX2ConditionPipeline.from_pretrained(folder),
                           "reference": ReferenceCondition.from_pretrained(folder)}, keyframes),
        ("reference video", {"ours": LTX2InContextPipeline.from_pretrained(folder),
                             "reference": ReferenceInContext.from_pretrained(folder)}, references),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(SIZES), default="tiny")
    parser.add_argument("--flow", choices=["text", "condition", "dfr"], default="text")
    parser.add_argument("--version", choices=["2.0", "2.3", "2.5"], default="2.0")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = SIZES[args.size]
    for constant, values in size["overrides"].items():
        setattr(tiny_pipeline, constant, {**getattr(tiny_pipeline, constant), **values})
    folder = Path(tempfile.mkdtemp(prefix="ltx2-bench-"))
    # LTX-2.5 ships the distilled scheduler (no dynamic shifting, no terminal stretch).
    scheduler = dict(use_dynamic_shifting=False, shift_terminal=None) if args.version == "2.5" else None
    tiny_pipeline.write_pipeline_folder(folder, scheduler_config=scheduler, version=args.version)
    call = dict(prompt="a robot dancing in the rain", negative_prompt="blurry", frame_rate=25.0,
                max_sequence_length=16, output_type="pt", **size["call"])
    if args.version == "2.0":
        call["guidance_scale"] = 4.0
        legacy = dict(stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0, audio_guidance_scale=4.0,
                      audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0,
                      spatio_temporal_guidance_blocks=None, use_cross_timestep=False)
    else:  # both at their defaults, with an STG block the small model has (the default, 28, is past its last)
        call["spatio_temporal_guidance_blocks"] = [tiny_pipeline.TRANSFORMER["num_layers"] - 1]
        legacy = {}
    if args.flow == "dfr":  # one unguided pass on the distilled schedule: no negative prompt, steps or guidance
        if args.version != "2.5":
            parser.error("--flow dfr needs --version 2.5 (keyframe slots)")
        call = {key: value for key, value in call.items()
                if key not in ("negative_prompt", "num_inference_steps", "spatio_temporal_guidance_blocks")}
    print(f"version={args.version} flow={args.flow} size={args.size} {size['call']} "
          f"threads={torch.get_num_threads()} repeats={args.repeats}")
    steps = size["call"]["num_inference_steps"] if args.flow != "dfr" else 8
    for case, pipes, inputs in flows(folder, args.flow, call):
        totals: dict[str, list[float]] = defaultdict(list)
        parts: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in pipes}
        calls: dict[str, list[int]] = {}
        for repeat in range(args.repeats + 1):
            for name, pipe in pipes.items():
                pipe.set_progress_bar_config(disable=True)
                if name == "ours":
                    pipe.prompt_encoder.clear()  # time a cold prompt; a repeated prompt skips Gemma entirely
                timer = ComponentTimer(pipe)
                start, cpu_start = time.perf_counter(), time.process_time()
                with torch.inference_mode():
                    pipe(**call, **inputs[name], **(legacy if name == "reference" else {}),
                         generator=torch.Generator().manual_seed(0))
                elapsed = time.perf_counter() - start
                parts[name]["whole call CPU"].append(time.process_time() - cpu_start)
                for handle in timer.handles:
                    handle.remove()
                if repeat == 0:
                    continue  # warm-up
                totals[name].append(elapsed)
                for component in COMPONENTS:
                    parts[name][component].append(timer.seconds[component])
                calls[name] = timer.transformer_rows
        print(f"{case}:")
        for name, rows in calls.items():
            print(f"{name:>9}: {len(rows) // steps} transformer calls per step, rows per call "
                  f"{rows[: len(rows) // steps]}")
        print(f"{'':>14} {'ours':>10} {'reference':>10} {'ratio':>7}")
        # CPU time of the whole call (this process, all threads) is the steadier figure on a shared machine.
        for component in (*COMPONENTS, "whole call", "whole call CPU"):
            ours = statistics.median(totals["ours"] if component == "whole call" else parts["ours"][component])
            reference = statistics.median(
                totals["reference"] if component == "whole call" else parts["reference"][component]
            )
            print(f"{component:>14} {ours:>9.4f}s {reference:>9.4f}s {ours / reference:>7.3f}")


if __name__ == "__main__":
    main()
