"""The `ltx2` command's entry points onto the official pipelines: `ltx2 generate --audio PATH` (audio-to-video,
A2VidPipelineTwoStage) and `ltx2 retake VIDEO --start S --end E --prompt ...` (RetakePipeline). Both take an
original single-file checkpoint (--model FILE.safetensors) and a Gemma folder (--gemma-root); A2Vid finds the x2
spatial upsampler and the distilled LoRA beside the checkpoint, by their release names or, failing those, as the
folder's only `*spatial-upscaler-x2*` / `*distilled-lora*` .safetensors file. Every check runs before any model
loads; a failed one is a ValueError the command prints as one line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli import checkpoint_defaults, write_output
from .types import DEFAULT_NEGATIVE_PROMPT, ImageConditioningInput, LoraPathStrengthAndSDOps


def _model_file(args: argparse.Namespace, command: str) -> Path:
    if args.model is None or not args.model.endswith(".safetensors") or not Path(args.model).is_file():
        raise ValueError(f"--model {args.model}: {command} runs Lightricks' pipelines, which take a local original "
                         "single-file checkpoint (.safetensors)")
    if args.gemma_root is None or not (Path(args.gemma_root) / "config.json").is_file():
        raise ValueError(f"--gemma-root {args.gemma_root}: {command} needs the Gemma 3 folder (with config.json)")
    return Path(args.model)


def _beside(model: Path, release_name: str, pattern: str, what: str) -> str:
    if (model.parent / release_name).is_file():
        return str(model.parent / release_name)
    found = sorted(model.parent.glob(f"*{pattern}*.safetensors"))
    if len(found) != 1:
        raise ValueError(f"--model {model}: {what} not found beside it ({release_name}, or one *{pattern}* file; "
                         f"{len(found)} found)")
    return str(found[0])


def _output(path: str) -> None:
    output = Path(path)
    if output.suffix.lower() != ".mp4" or not output.parent.is_dir():
        raise ValueError(f"--output {path}: must be an .mp4 file in an existing folder")


def _loras(args: argparse.Namespace) -> list[LoraPathStrengthAndSDOps]:
    loras = []
    for lora in args.lora:
        if not Path(lora.path).is_file():
            raise ValueError(f"--lora {lora.path}: no such file")
        loras.append(LoraPathStrengthAndSDOps(lora.path, lora.scale))
    return loras


def run_audio_to_video(args: argparse.Namespace, releases: dict[str, Any], sizes: tuple[int, int]) -> dict[str, Any]:
    """`ltx2 generate --audio PATH`: the official audio-to-video pipeline; returns what was written."""
    from .a2vid_two_stage import A2VidPipelineTwoStage, read_audio
    from .base import check_call

    model = _model_file(args, "--audio")
    if not Path(args.audio).is_file():
        raise ValueError(f"--audio {args.audio}: no such file")
    for option, value, default in (("--preset", args.preset, "two-stage"), ("--offload", args.offload, "none"),
                                   ("--upscale", args.upscale, 2.0)):
        if value != default:
            raise ValueError(f"{option} {value}: --audio runs Lightricks' two-stage A2Vid pipeline ({option} "
                             f"{default} only)")
    if args.condition or args.reference_video or args.parallel or args.enhance_prompt:
        raise ValueError("--audio takes --image but not --condition, --reference-video, --parallel or "
                         "--enhance-prompt")
    _output(args.output)
    width, height = args.width or sizes[0], args.height or sizes[1]
    check_call(height, width, args.num_frames, args.fps, args.seed, two_stage=True)
    try:
        if read_audio(args.audio) is None:
            raise ValueError("no audio stream")
    except ValueError as error:
        raise ValueError(f"--audio {args.audio}: not readable as audio ({error})") from None
    defaults = checkpoint_defaults(str(model))
    version = "2.3" if defaults.steps == 30 else "2.0"
    release = releases[version]
    upsampler = _beside(model, release.upsamplers[2.0], "spatial-upscaler-x2", "the x2 spatial upsampler")
    distilled_lora = _beside(model, release.distilled_lora, "distilled-lora", "the distilled LoRA")
    images = [] if args.image is None else [ImageConditioningInput(args.image, 0, 1.0, 33 if args.image_crf is None
                                                                   else args.image_crf)]
    loras = _loras(args)
    video_guider = defaults.video if args.guidance is None else type(defaults.video)(
        args.guidance, defaults.video.stg_scale, defaults.video.stg_blocks, defaults.video.rescale_scale,
        defaults.video.modality_scale, defaults.video.skip_step)
    pipe = A2VidPipelineTwoStage(str(model), [LoraPathStrengthAndSDOps(distilled_lora, 1.0)], upsampler,
                                 args.gemma_root, loras)
    video, audio = pipe(args.prompt, args.negative_prompt or DEFAULT_NEGATIVE_PROMPT, args.seed, height, width,
                        args.num_frames, args.fps, args.steps or defaults.steps, video_guider, images, args.audio)
    write_output(args.output, video, audio, args.fps)
    return {"output": args.output, "width": width, "height": height}


def run_retake(args: argparse.Namespace) -> None:
    from .retake import RetakePipeline, video_metadata


    model = _model_file(args, "retake")
    if not Path(args.video).is_file():
        raise ValueError(f"{args.video}: no such file")
    if not 0 <= args.start < args.end:
        raise ValueError(f"--start {args.start} --end {args.end}: need 0 <= start < end")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps {args.steps}: must be at least 1")
    _output(args.output)
    fps, frames, width, height = video_metadata(args.video)
    if (frames - 1) % 8 or width % 32 or height % 32:
        raise ValueError(f"{args.video}: {frames} frames of {width}x{height}; retake needs 8k + 1 frames and sizes "
                         "that are multiples of 32")
    if args.start >= frames / fps:
        raise ValueError(f"--start {args.start}: the video lasts {frames / fps:.2f} s")
    pipe = RetakePipeline(str(model), args.gemma_root, [])
    steps = args.steps or checkpoint_defaults(str(model)).steps
    video, audio = pipe(args.video, args.prompt, args.start, args.end, args.seed,
                        negative_prompt=DEFAULT_NEGATIVE_PROMPT if args.negative_prompt is None else args.negative_prompt,
                        num_inference_steps=steps, distilled=args.distilled)
    write_output(args.output, video, audio, fps)
    print(f"ltx2: wrote {args.output} ({width}x{height}, {frames} frames at {fps:g} fps; {args.start:g}-{args.end:g} s "
          "regenerated)")
