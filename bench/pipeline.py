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
timestep). With --version 2.5 the text flow runs with num_frames=None (the duration head picks the length).

Peak memory (Linux, CPU): before the timed runs, each side loads its pipelines alone in a fresh child process
(--memory-repeats of them per side, alternating), resets the peak resident set size (VmHWM, through
/proc/self/clear_refs) and makes one cold call; the figure is the peak minus the resident size before the call.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
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

SIDES = ("ours", "reference")
COMPONENTS = ("text_encoder", "connectors", "transformer", "vae", "audio_vae", "vocoder")
SIZES = {
    "tiny": dict(overrides={}, call=dict(height=32, width=32, num_frames=9, num_inference_steps=3)),
    "medium": dict(
        overrides=dict(
            TINY=dict(num_attention_heads=8, attention_head_dim=32, cross_attention_dim=256,
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


def flows(folder: Path, flow: str, call: dict, sides: tuple[str, ...] = SIDES) -> list[tuple[str, dict, dict]]:
    """(name, {implementation: pipeline}, {implementation: extra call arguments}) for each case of the flow, with
    the pipelines of `sides` only."""

    def load(ours: type, reference: type) -> dict:
        classes = {"ours": ours, "reference": reference}
        return {side: classes[side].from_pretrained(folder) for side in sides}

    if flow == "text":
        return [("text to video", load(LTX2Pipeline, ReferencePipeline), {"ours": {}, "reference": {}})]
    if flow == "dfr":
        return [("DFR stage 1 (slots)", load(LTX2DFRPipeline, ReferenceDFR), {"ours": {}, "reference": {}})]
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
        ("two keyframes", load(LTX2ConditionPipeline, ReferenceCondition), keyframes),
        ("reference video", load(LTX2InContextPipeline, ReferenceInContext), references),
    ]


def resident_kib() -> dict[str, int]:
    """This process's resident memory now (VmRSS) and at its peak since the last reset (VmHWM), in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def measure_peaks(folder: Path, args: argparse.Namespace, call: dict, legacy: dict) -> None:
    """The child process of --peak-of: load one side's pipelines, then for each case print the KiB by which one
    cold call raises the peak resident memory over the loaded pipeline (Linux: VmHWM reset by clear_refs)."""
    side = args.peak_of
    for _, pipes, inputs in flows(folder, args.flow, call, sides=(side,)):
        pipe = pipes[side]
        pipe.set_progress_bar_config(disable=True)
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = resident_kib()["VmRSS"]
        with torch.inference_mode():
            pipe(**call, **inputs[side], **(legacy if side == "reference" else {}),
                 generator=torch.Generator().manual_seed(0))
        print(resident_kib()["VmHWM"] - before, flush=True)


def peak_increases(folder: Path, argv: list[str], repeats: int) -> dict[str, list[list[int]]]:
    """{side: per case, the peak-memory increase (KiB) of one cold call in each of `repeats` fresh processes},
    the sides alternating."""
    peaks: dict[str, list[list[int]]] = {side: [] for side in SIDES}
    for _ in range(repeats):
        for side in SIDES:
            child = subprocess.run([sys.executable, __file__, *argv, "--peak-of", side, "--folder", str(folder)],
                                   capture_output=True, text=True, check=True)
            peaks[side].append([int(line) for line in child.stdout.split()])
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(SIZES), default="tiny")
    parser.add_argument("--flow", choices=["text", "condition", "dfr"], default="text")
    parser.add_argument("--version", choices=["2.0", "2.3", "2.5"], default="2.0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-repeats", type=int, default=1,
                        help="fresh processes per side measuring one cold call's peak memory (0: none)")
    parser.add_argument("--peak-of", choices=SIDES, help=argparse.SUPPRESS)  # the child process of a measurement
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = SIZES[args.size]
    for constant, values in size["overrides"].items():
        setattr(tiny_pipeline, constant, {**getattr(tiny_pipeline, constant), **values})
    folder = args.folder or Path(tempfile.mkdtemp(prefix="ltx2-bench-"))
    if args.folder is None:
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
        call["spatio_temporal_guidance_blocks"] = [tiny_pipeline.TINY["num_layers"] - 1]
        legacy = {}
    if args.flow == "dfr":  # one unguided pass on the distilled schedule: no negative prompt, steps or guidance
        if args.version != "2.5":
            parser.error("--flow dfr needs --version 2.5 (keyframe slots)")
        call = {key: value for key, value in call.items()
                if key not in ("negative_prompt", "num_inference_steps", "spatio_temporal_guidance_blocks")}
    elif args.version == "2.5" and args.flow == "text":  # the length from the duration head, as LTX-2.5's default call has it
        call["num_frames"] = None
    if args.peak_of:
        measure_peaks(folder, args, call, legacy)
        return
    argv = ["--size", args.size, "--flow", args.flow, "--version", args.version]
    peaks = peak_increases(folder, argv, args.memory_repeats) if args.memory_repeats else None
    shown = {key: call[key] for key in size["call"] if key in call}
    print(f"version={args.version} flow={args.flow} size={args.size} {shown} "
          f"threads={torch.get_num_threads()} repeats={args.repeats}")
    steps = size["call"]["num_inference_steps"] if args.flow != "dfr" else 8
    for index, (case, pipes, inputs) in enumerate(flows(folder, args.flow, call)):
        totals: dict[str, list[float]] = defaultdict(list)
        parts: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in pipes}
        calls: dict[str, list[int]] = {}
        lengths: dict[str, int] = {}  # frames made (the duration head's choice where num_frames is None)
        for repeat in range(args.repeats + 1):
            for name, pipe in pipes.items():
                pipe.set_progress_bar_config(disable=True)
                if name == "ours":
                    pipe.prompt_encoder.clear()  # time a cold prompt; a repeated prompt skips Gemma entirely
                timer = ComponentTimer(pipe)
                start, cpu_start = time.perf_counter(), time.process_time()
                with torch.inference_mode():
                    output = pipe(**call, **inputs[name], **(legacy if name == "reference" else {}),
                                  generator=torch.Generator().manual_seed(0))
                elapsed = time.perf_counter() - start
                lengths[name] = output.frames.shape[1]
                cpu = time.process_time() - cpu_start
                for handle in timer.handles:
                    handle.remove()
                if repeat == 0:
                    continue  # warm-up
                parts[name]["whole call CPU"].append(cpu)
                totals[name].append(elapsed)
                for component in COMPONENTS:
                    parts[name][component].append(timer.seconds[component])
                calls[name] = timer.transformer_rows
        print(f"{case}: frames made {lengths}")
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
        if peaks is not None:
            ours, reference = (statistics.median(run[index] for run in peaks[side]) / 1024 for side in SIDES)
            print(f"{'peak memory':>14} {ours:>8.1f}MiB {reference:>8.1f}MiB {ours / reference:>7.3f}  (resident "
                  f"memory one cold call adds over the loaded pipeline, fresh process per side, median of "
                  f"{args.memory_repeats})")


if __name__ == "__main__":
    main()
