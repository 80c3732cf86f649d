"""ltx2.official vs Lightricks' ltx-pipelines 1.0.0, per pipeline, on the tiny official checkpoint (CPU, bf16).

    python bench/official.py --official-python /work/official-venv/bin/python \
        --harness /work/shared/reference/official/official_harness.py [--pipelines distilled two-stage] [--repeats 3]

The same code builds and calls each pipeline on both sides: only the import differs (ltx_pipelines' classes or
ltx2.official's). ltx-pipelines needs transformers 4.57 (ltx2 uses 5.x), so the two sides cannot share a
process: each runs in a subprocess (theirs in its venv), one after the other; each builds its pipelines once,
warms each up with one call, then times `--repeats` calls per pipeline, the pipelines interleaved. Printed: the
median seconds per call and ours / theirs. ltx-pipelines (re)loads the networks from the checkpoint inside every
call (its ModelLedger); ltx2.official loads them once in the constructor; "first" is the constructor plus the
first call, on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests" / "official"
PIPELINES = ("distilled", "one-stage", "two-stage", "keyframe", "ic-lora", "a2vid", "retake", "hq")
PROMPT = "A robot dances in the rain while a crowd cheers"
SIZE = dict(height=128, width=128, num_frames=17, frame_rate=24.0)


def build(name: str, api: dict, paths: dict[str, str]):
    """(pipeline, call) for `name`, written once against ltx-pipelines' API; `api` holds the classes of one side."""
    Params, Lora, Image = api["MultiModalGuiderParams"], api["LoraPathStrengthAndSDOps"], api["ImageConditioningInput"]
    lora = Lora(paths["distilled_lora"], 1.0, api["LTXV_LORA_COMFY_RENAMING_MAP"])
    video, audio = Params(3.0, 1.0, [1], 0.7, 3.0, 0), Params(7.0, 1.0, [1], 0.7, 3.0, 0)
    guided = dict(negative_prompt=api["DEFAULT_NEGATIVE_PROMPT"], num_inference_steps=6, video_guider_params=video)
    if name == "distilled":
        pipe = api["DistilledPipeline"](paths["distilled_checkpoint"], paths["gemma_root"], paths["spatial_upsampler"],
                                        [])
        return pipe, dict(prompt=PROMPT, seed=10, images=[], **SIZE)
    if name == "one-stage":
        pipe = api["TI2VidOneStagePipeline"](paths["checkpoint"], paths["gemma_root"], [])
        return pipe, dict(prompt=PROMPT, seed=10, images=[], audio_guider_params=audio, **guided, **SIZE)
    if name in ("two-stage", "keyframe"):
        kind = api["TI2VidTwoStagesPipeline" if name == "two-stage" else "KeyframeInterpolationPipeline"]
        images = [] if name == "two-stage" else [Image(paths["image"], 0, 1.0, 33), Image(paths["image"], 16, 1.0, 33)]
        pipe = kind(paths["checkpoint"], [lora], paths["spatial_upsampler"], paths["gemma_root"], [])
        return pipe, dict(prompt=PROMPT, seed=10, images=images, audio_guider_params=audio, **guided, **SIZE)
    if name == "ic-lora":
        ic = Lora(paths["ic_lora"], 1.0, api["LTXV_LORA_COMFY_RENAMING_MAP"])
        pipe = api["ICLoraPipeline"](paths["distilled_checkpoint"], paths["spatial_upsampler"], paths["gemma_root"],
                                     [ic])
        return pipe, dict(prompt=PROMPT, seed=10, images=[], video_conditioning=[(paths["video"], 1.0)], **SIZE)
    if name == "a2vid":
        pipe = api["A2VidPipelineTwoStage"](paths["checkpoint"], [lora], paths["spatial_upsampler"],
                                            paths["gemma_root"], [])
        return pipe, dict(prompt=PROMPT, seed=10, images=[], audio_path=paths["audio"], **guided, **SIZE)
    if name == "retake":
        pipe = api["RetakePipeline"](paths["checkpoint"], paths["gemma_root"], [])
        return pipe, dict(video_path=paths["video"], prompt=PROMPT, start_time=0.25, end_time=0.5, seed=10,
                          audio_guider_params=audio, **guided)
    pipe = api["TI2VidTwoStagesHQPipeline"](paths["checkpoint"], [lora], 0.25, 0.5, paths["spatial_upsampler"],
                                            paths["gemma_root"], ())
    return pipe, dict(prompt=PROMPT, seed=10, images=[], **SIZE, **dict(
        guided, video_guider_params=Params(3.0, 0.0, [], 0.45, 3.0, 0)),
        audio_guider_params=Params(7.0, 0.0, [], 1.0, 3.0, 0))


def official_api(harness: str) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("official_harness", harness)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.prepare_official()
    from ltx_core.components.guiders import MultiModalGuiderParams
    from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps
    from ltx_pipelines.a2vid_two_stage import A2VidPipelineTwoStage
    from ltx_pipelines.distilled import DistilledPipeline
    from ltx_pipelines.ic_lora import ICLoraPipeline
    from ltx_pipelines.keyframe_interpolation import KeyframeInterpolationPipeline
    from ltx_pipelines.retake import RetakePipeline
    from ltx_pipelines.ti2vid_one_stage import TI2VidOneStagePipeline
    from ltx_pipelines.ti2vid_two_stages import TI2VidTwoStagesPipeline
    from ltx_pipelines.ti2vid_two_stages_hq import TI2VidTwoStagesHQPipeline
    from ltx_pipelines.utils.args import ImageConditioningInput
    from ltx_pipelines.utils.constants import DEFAULT_NEGATIVE_PROMPT

    return dict(locals())


def ours_api() -> dict:
    from ltx2 import official

    return {name: getattr(official, name) for name in official.__all__}


def time_side(api: dict, names: list[str], paths: dict[str, str], repeats: int) -> dict[str, dict[str, float]]:
    import torch

    built, results = {}, {}
    with torch.inference_mode():
        for name in names:
            start = time.perf_counter()
            built[name] = build(name, api, paths)
            pipe, call = built[name]
            list(pipe(**call)[0])
            results[name] = {"first": time.perf_counter() - start, "calls": []}
        for _ in range(repeats):
            for name in names:
                pipe, call = built[name]
                start = time.perf_counter()
                video, _ = pipe(**call)
                list(video)
                results[name]["calls"].append(time.perf_counter() - start)
    return {name: {"first": value["first"], "median": statistics.median(value["calls"])}
            for name, value in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-python", default="/work/official-venv/bin/python")
    parser.add_argument("--harness", default="/work/shared/reference/official/official_harness.py")
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=["ours", "official"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tiny", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    from tiny_files import write_media, write_tiny_official

    if args.side is not None:  # one side, in this process: print its timings as JSON
        paths = json.loads(Path(args.tiny).read_text())
        api = official_api(args.harness) if args.side == "official" else ours_api()
        print("RESULT " + json.dumps(time_side(api, args.pipelines, paths, args.repeats)))
        return
    folder = Path(tempfile.mkdtemp(prefix="ltx2-bench-official-"))
    paths = {**write_tiny_official(folder), **write_media(folder / "media")}
    (folder / "paths.json").write_text(json.dumps(paths))
    sides = {}
    for side, python in (("official", args.official_python), ("ours", sys.executable)):
        command = [python, __file__, "--side", side, "--tiny", str(folder / "paths.json"), "--harness", args.harness,
                   "--repeats", str(args.repeats), "--pipelines", *args.pipelines]
        # ours: this checkout's sources, whatever ltx2 the interpreter has installed
        environment = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")} if side == "ours" else None
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        if result.returncode != 0:
            raise SystemExit(f"the {side} side failed:\n{result.stderr[-3000:]}")
        output = result.stdout
        sides[side] = json.loads(output.split("RESULT ", 1)[1])
    import torch

    print(f"tiny official checkpoint, 128x128x17, 6 steps, bf16, CPU, threads={torch.get_num_threads()}, "
          f"repeats={args.repeats}")
    print(f"{'pipeline':<10} {'ours s':>8} {'theirs s':>9} {'ratio':>6}   {'ours first':>10} {'theirs first':>12}")
    for name in args.pipelines:
        ours, theirs = sides["ours"][name], sides["official"][name]
        print(f"{name:<10} {ours['median']:8.2f} {theirs['median']:9.2f} {ours['median'] / theirs['median']:6.2f}   "
              f"{ours['first']:10.2f} {theirs['first']:12.2f}")


if __name__ == "__main__":
    main()
