"""`python -m ltx2.official.<module>`: ltx-pipelines' command lines (module names, flags and defaults) on
ltx2.official. Defaults follow the checkpoint's version as ltx-pipelines reads it (the header's model_version:
"2.3..." takes LTX-2.3's 30 steps and STG block 28, anything else LTX-2.0's 40 steps and block 29); the HQ pipeline
takes its own HQ defaults. Bad arguments are one-line errors before any model loads."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .types import (
    DEFAULT_IMAGE_CRF,
    DEFAULT_LORA_STRENGTH,
    DEFAULT_NEGATIVE_PROMPT,
    LTX_2_3_STG_BLOCK,
    LTX_2_AUDIO_GUIDER_PARAMS,
    LTX_2_VIDEO_GUIDER_PARAMS,
    LTXV_LORA_COMFY_RENAMING_MAP,
    ImageConditioningInput,
    LoraPathStrengthAndSDOps,
    MultiModalGuiderParams,
)


@dataclass(frozen=True)
class Defaults:
    seed: int = 10
    height: int = 512
    width: int = 768
    num_frames: int = 121
    frame_rate: float = 24.0
    steps: int = 40
    video: MultiModalGuiderParams = LTX_2_VIDEO_GUIDER_PARAMS
    audio: MultiModalGuiderParams = LTX_2_AUDIO_GUIDER_PARAMS
    lora_strengths: tuple[float, float] = field(default=(0.25, 0.5))


LTX_2 = Defaults()
LTX_2_3 = replace(LTX_2, steps=30, video=replace(LTX_2.video, stg_blocks=[LTX_2_3_STG_BLOCK]),
                  audio=replace(LTX_2.audio, stg_blocks=[LTX_2_3_STG_BLOCK]))
HQ = replace(LTX_2, steps=15, height=544, width=960,
             video=MultiModalGuiderParams(3.0, 0.0, [], 0.45, 3.0, 0),
             audio=MultiModalGuiderParams(7.0, 0.0, [], 1.0, 3.0, 0))


def checkpoint_defaults(path: str | None) -> Defaults:
    """LTX-2.3's defaults for a file whose header says model_version 2.3..., else LTX-2.0's."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as handle:
            version = (handle.metadata() or {}).get("model_version", "")
    except Exception:  # noqa: BLE001 (unreadable: the constructor names the file)
        return LTX_2
    return LTX_2_3 if version.startswith("2.3") else LTX_2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _lora(values: list[str]) -> LoraPathStrengthAndSDOps:
    if not 1 <= len(values) <= 2:
        raise argparse.ArgumentTypeError(f"takes PATH [STRENGTH], got {len(values)} values")
    strength = float(values[1]) if len(values) == 2 else DEFAULT_LORA_STRENGTH
    return LoraPathStrengthAndSDOps(str(Path(values[0]).expanduser().resolve()), strength,
                                    LTXV_LORA_COMFY_RENAMING_MAP)


def _image(values: list[str]) -> ImageConditioningInput:
    if len(values) not in (3, 4):
        raise argparse.ArgumentTypeError(f"takes PATH FRAME_IDX STRENGTH [CRF], got {len(values)} values")
    crf = int(values[3]) if len(values) == 4 else DEFAULT_IMAGE_CRF
    return ImageConditioningInput(str(Path(values[0]).expanduser().resolve()), int(values[1]), float(values[2]), crf)


class _Collect(argparse.Action):
    """Repeatable multi-value options, each occurrence converted by `convert`."""

    def __init__(self, *args: Any, convert: Any = None, **kwargs: Any):
        self.convert = convert
        super().__init__(*args, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        try:
            item = self.convert(values)
        except (argparse.ArgumentTypeError, ValueError) as error:
            parser.error(f"{option_string}: {error}")
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), item])


def _video_conditioning(values: list[str]) -> tuple[str, float]:
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"takes PATH STRENGTH, got {len(values)} values")
    return str(Path(values[0]).expanduser().resolve()), float(values[1])


def build_parser(module: str, defaults: Defaults) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"python -m ltx2.official.{module}", description=f"ltx-pipelines' {module}, on ltx2")
    distilled = module in ("distilled", "ic_lora")
    parser.add_argument("--distilled-checkpoint-path" if distilled else "--checkpoint-path", required=True)
    parser.add_argument("--gemma-root", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--output-path", required=True)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    two_stage = module != "ti2vid_one_stage"
    scale = 2 if two_stage else 1
    parser.add_argument("--height", type=int, default=defaults.height * scale)
    parser.add_argument("--width", type=int, default=defaults.width * scale)
    parser.add_argument("--num-frames", type=int, default=defaults.num_frames)
    parser.add_argument("--frame-rate", type=float, default=defaults.frame_rate)
    parser.add_argument("--num-inference-steps", type=int, default=defaults.steps)
    parser.add_argument("--image", action=_Collect, convert=_image, nargs="+", default=[], dest="images",
                        metavar="PATH FRAME_IDX STRENGTH [CRF]")
    parser.add_argument("--lora", action=_Collect, convert=_lora, nargs="+", default=[], metavar="PATH [STRENGTH]")
    parser.add_argument("--enhance-prompt", action="store_true")
    parser.add_argument("--quantization", nargs="+", default=None, help="not supported by ltx2.official")
    if two_stage:
        parser.add_argument("--spatial-upsampler-path", required=True)
    if two_stage and not distilled:
        parser.add_argument("--distilled-lora", action=_Collect, convert=_lora, nargs="+", required=True,
                            metavar="PATH [STRENGTH]")
    if not distilled:
        parser.add_argument("--negative-prompt", default=DEFAULT_NEGATIVE_PROMPT)
        for stream, guider, modality in (("video", defaults.video, "a2v"), ("audio", defaults.audio, "v2a")):
            parser.add_argument(f"--{stream}-cfg-guidance-scale", type=float, default=guider.cfg_scale)
            parser.add_argument(f"--{stream}-stg-guidance-scale", type=float, default=guider.stg_scale)
            parser.add_argument(f"--{stream}-rescale-scale", type=float, default=guider.rescale_scale)
            parser.add_argument(f"--{stream}-stg-blocks", type=int, nargs="*", default=guider.stg_blocks)
            parser.add_argument(f"--{modality}-guidance-scale", type=float, default=guider.modality_scale)
            parser.add_argument(f"--{stream}-skip-step", type=int, default=guider.skip_step)
    if module == "ti2vid_two_stages_hq":
        parser.add_argument("--distilled-lora-strength-stage-1", type=float, default=defaults.lora_strengths[0])
        parser.add_argument("--distilled-lora-strength-stage-2", type=float, default=defaults.lora_strengths[1])
    if module == "ic_lora":
        parser.add_argument("--video-conditioning", action=_Collect, convert=_video_conditioning, nargs="+",
                            default=[], metavar="PATH STRENGTH")
        parser.add_argument("--conditioning-attention-strength", type=float, default=1.0)
        parser.add_argument("--skip-stage-2", action="store_true")
    if module == "a2vid_two_stage":
        parser.add_argument("--audio-path", required=True)
        parser.add_argument("--audio-start-time", type=float, default=0.0)
        parser.add_argument("--audio-max-duration", type=float, default=None)
    return parser


def build_retake_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ltx2.official.retake", description="regenerate a time span of a video")
    for flag in ("--video-path", "--prompt", "--output-path", "--checkpoint-path", "--gemma-root"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--start-time", type=float, required=True)
    parser.add_argument("--end-time", type=float, required=True)
    parser.add_argument("--seed", type=int, default=42, help="-1: a random seed")
    parser.add_argument("--loras", nargs="*", default=[], help="LoRA files, each at strength 1")
    parser.add_argument("--quantization", nargs="+", default=None, help="not supported by ltx2.official")
    return parser


def guider_params(args: argparse.Namespace, stream: str) -> MultiModalGuiderParams:
    modality = "a2v" if stream == "video" else "v2a"
    values = vars(args)
    return MultiModalGuiderParams(
        cfg_scale=values[f"{stream}_cfg_guidance_scale"], stg_scale=values[f"{stream}_stg_guidance_scale"],
        stg_blocks=values[f"{stream}_stg_blocks"], rescale_scale=values[f"{stream}_rescale_scale"],
        modality_scale=values[f"{modality}_guidance_scale"], skip_step=values[f"{stream}_skip_step"])


def check_files(args: argparse.Namespace) -> None:
    """Every input path named on the command line exists, before anything loads."""
    values = vars(args)
    for flag in ("checkpoint_path", "distilled_checkpoint_path", "spatial_upsampler_path", "audio_path",
                 "video_path"):
        if values.get(flag) is not None and not Path(values[flag]).is_file():
            raise ValueError(f"--{flag.replace('_', '-')} {values[flag]}: no such file")
    if not Path(args.gemma_root).is_dir():
        raise ValueError(f"--gemma-root {args.gemma_root}: no such folder")
    for option, key in (("--lora", "lora"), ("--distilled-lora", "distilled_lora"), ("--image", "images")):
        entries = values.get(key) or []
        for entry in entries:
            if not Path(entry.path).is_file():
                raise ValueError(f"{option} {entry.path}: no such file")
    for path in values.get("loras") or []:
        if not Path(path).is_file():
            raise ValueError(f"--loras {path}: no such file")
    for path, _ in values.get("video_conditioning") or []:
        if not Path(path).is_file():
            raise ValueError(f"--video-conditioning {path}: no such file")


def pipeline_and_call(module: str, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from . import (
        A2VidPipelineTwoStage,
        DistilledPipeline,
        ICLoraPipeline,
        KeyframeInterpolationPipeline,
        RetakePipeline,
        TI2VidOneStagePipeline,
        TI2VidTwoStagesHQPipeline,
        TI2VidTwoStagesPipeline,
    )

    if module == "retake":
        loras = [LoraPathStrengthAndSDOps(path, 1.0, LTXV_LORA_COMFY_RENAMING_MAP) for path in args.loras]
        pipe = RetakePipeline(args.checkpoint_path, args.gemma_root, loras)
        return pipe, dict(video_path=args.video_path, prompt=args.prompt, start_time=args.start_time,
                          end_time=args.end_time, seed=args.seed)
    common = dict(prompt=args.prompt, seed=args.seed, height=args.height, width=args.width,
                  num_frames=args.num_frames, frame_rate=args.frame_rate, images=args.images,
                  enhance_prompt=args.enhance_prompt)
    if module == "distilled":
        return DistilledPipeline(args.distilled_checkpoint_path, args.gemma_root, args.spatial_upsampler_path,
                                 args.lora), common
    if module == "ic_lora":
        pipe = ICLoraPipeline(args.distilled_checkpoint_path, args.spatial_upsampler_path, args.gemma_root,
                              args.lora)
        return pipe, dict(common, video_conditioning=args.video_conditioning, skip_stage_2=args.skip_stage_2,
                          conditioning_attention_strength=args.conditioning_attention_strength)
    guided = dict(common, negative_prompt=args.negative_prompt, num_inference_steps=args.num_inference_steps,
                  video_guider_params=guider_params(args, "video"))
    if module == "a2vid_two_stage":
        pipe = A2VidPipelineTwoStage(args.checkpoint_path, args.distilled_lora, args.spatial_upsampler_path,
                                     args.gemma_root, args.lora)
        return pipe, dict(guided, audio_path=args.audio_path, audio_start_time=args.audio_start_time,
                          audio_max_duration=args.audio_max_duration)
    guided["audio_guider_params"] = guider_params(args, "audio")
    if module == "ti2vid_one_stage":
        return TI2VidOneStagePipeline(args.checkpoint_path, args.gemma_root, args.lora), guided
    if module == "ti2vid_two_stages_hq":
        return TI2VidTwoStagesHQPipeline(
            args.checkpoint_path, args.distilled_lora, args.distilled_lora_strength_stage_1,
            args.distilled_lora_strength_stage_2, args.spatial_upsampler_path, args.gemma_root, args.lora), guided
    kind = KeyframeInterpolationPipeline if module == "keyframe_interpolation" else TI2VidTwoStagesPipeline
    return kind(args.checkpoint_path, args.distilled_lora, args.spatial_upsampler_path, args.gemma_root,
                args.lora), guided


AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


def write_output(path: str, video: Any, audio: Any, fps: float) -> None:
    """The MP4 (written under a temporary name, then renamed); audio at a rate AAC cannot store (a tiny random
    vocoder's) is resampled to 16 kHz first."""
    import torch

    from ..audio import resample
    from ..export import encode_video

    frames = torch.cat(list(video))
    waveform, rate = audio.waveform, audio.sampling_rate
    if rate not in AAC_RATES:
        waveform, rate = resample(waveform.float(), rate, 16000), 16000
    encode_video(frames, fps, waveform, rate, output_path=path)


def run_module(module: str, argv: list[str] | None = None) -> int:
    """Parse ltx-pipelines' flags for `module`, check them, run the pipeline and write the MP4; the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if module == "retake":
        parser = build_retake_parser()
    else:
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--checkpoint-path", "--distilled-checkpoint-path", dest="checkpoint")
        known, _ = pre.parse_known_args(argv)
        defaults = HQ if module == "ti2vid_two_stages_hq" else checkpoint_defaults(known.checkpoint)
        parser = build_parser(module, defaults)
    args = parser.parse_args(argv)
    try:
        if args.quantization is not None:
            raise ValueError("--quantization: ltx2.official runs the checkpoint's bf16 weights only")
        check_files(args)
        pipe, call = pipeline_and_call(module, args)
        video, audio = pipe(**call)
        fps = args.frame_rate if module != "retake" else _video_fps(args.video_path)
        write_output(args.output_path, video, audio, fps)
    except ValueError as error:
        print(f"{parser.prog}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    print(json.dumps({"output_path": args.output_path}))
    return 0


def _video_fps(path: str) -> float:
    from .retake import video_metadata

    return video_metadata(path)[0]
