"""The `ltx2` command: generate a video with sound, describe a checkpoint, write a tiny smoke-test pipeline.

Exit codes: 0 success, 1 a failure (its cause on one line), 2 bad arguments (the reason on one line),
130 interrupted. The output file appears only once complete.

Under torchrun (`torchrun --nproc-per-node N -m ltx2 generate ...`) the ranks share each generation (see
ltx2.pipelines.parallel); rank 0 alone prints progress and the summary and writes the MP4, and however the run ends, one
rank (the first to fail) prints the one line that says why.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from .pipelines.base import DEFAULT_REPO
from .versions import (
    DEFAULT_IMAGE_CRF,
    DISTILLED_SIGMA_VALUES,
    LTX_2_0,
    RELEASES,
    STAGE_2_DISTILLED_SIGMA_VALUES,
    VERSIONS,
    VIDEO_VAE_COMPRESSION,
    resolve_call_kwargs,
)

PRESETS = ("two-stage", "distilled", "one-stage")
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
TEMPORAL_COMPRESSION = VIDEO_VAE_COMPRESSION[0]  # pixel frames per latent frame (after the first)
DISTILLED_STEPS = len(DISTILLED_SIGMA_VALUES)
# Output (width, height) when not given: the two-stage presets run stage 1 at 1/scale of it.
OUTPUT_SIZES = {"one-stage": (768, 512), 2.0: (1536, 1024), 1.5: (1152, 768)}
# What output sizes must be a multiple of, per upsampler: stage 1 runs at 1/scale of it, on the VAE's 32-pixel
# grid; the x1.5 upsampler also needs even latent sizes at stage 1.
OUTPUT_MULTIPLES = {2.0: 64, 1.5: 96}


class UsageError(Exception):
    """A bad command-line argument: reported on one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass
class Lora:
    path: str
    scale: float


@dataclass
class Media:
    """A --condition or --reference-video: the file, where it goes (pixel frame), its strength; then its frames
    (PIL images, read before any model loads) and the latent frame it was placed at, with its first pixel frame."""

    text: str
    path: str
    frame: int
    strength: float
    frames: list[Any] = field(default_factory=list)
    latent_index: int = 0
    start: int = 0


@dataclass
class Launch:
    """This process's place in a torchrun launch: rank 0 of 1 without torchrun."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> Launch:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]))

    @property
    def where(self) -> str:
        return f" on rank {self.rank}" if self.world > 1 else ""

    def report(self, line: str) -> None:
        """Print how the run ended, unless another rank already has: one line for the whole job."""
        if self.world > 1 and not self._first_to_report():
            return
        # Rank 0's progress bar may be half drawn on the shared terminal: start a line of our own.
        print(f"\n{line}" if self.rank else line, file=sys.stderr, flush=True)

    def _first_to_report(self) -> bool:
        """Count reports in torchrun's key-value store (the one its ranks meet at); the first one prints."""
        import torch.distributed as dist

        try:
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                  timeout=timedelta(seconds=30))
            return store.add(f"ltx2/reports/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", 1) == 1
        except (KeyError, ValueError, RuntimeError):
            return True  # no store to ask: better a line per rank than none


@dataclass
class Timings:
    """Seconds spent per stage, in the order stages first ran; `verbose` prints each stage as it starts."""

    seconds: dict[str, float] = field(default_factory=dict)
    synchronize: Callable[[], None] = lambda: None
    verbose: bool = True

    def note(self, message: str) -> None:
        if self.verbose:
            print(f"ltx2: {message}", file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.note(f"{name}...")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.synchronize()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def wrap(self, target: Any, method: str, name: str) -> None:
        """Time every call of `target.method` (a pipeline stage) as `name`."""
        original = getattr(target, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(target, method, timed)


def _lora(text: str) -> Lora:
    path, _, scale = text.rpartition(":")
    if path and not Path(text).exists():
        try:
            return Lora(path, float(scale))
        except ValueError:
            pass
    return Lora(text, 1.0)


def _media(text: str, with_frame: bool) -> Media:
    """PATH[@FRAME][:STRENGTH] (or PATH[:STRENGTH]); a part that does not parse stays part of the path."""
    path, frame, strength = text, 0, 1.0
    head, _, tail = path.rpartition(":")
    if head and not Path(text).exists():
        try:
            path, strength = head, float(tail)
        except ValueError:
            pass
    head, _, tail = path.rpartition("@")
    if with_frame and head and not Path(path).exists():
        try:
            path, frame = head, int(tail)
        except ValueError:
            pass
    return Media(text, path, frame, strength)


def _parallel_split(text: str) -> dict[str, int]:
    degrees = {"ulysses": 1, "guidance": 1}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in degrees or not value.strip().isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: expected ulysses=N,guidance=M with positive integers")
        degrees[name.strip()] = int(value)
    return degrees


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ltx2", description="LTX-2 video and audio generation.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    generate = commands.add_parser("generate", help="generate an MP4 with picture and sound")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--negative-prompt", default=None)
    generate.add_argument("--image", default=None, help="first frame (image-to-video)")
    generate.add_argument("--condition", type=lambda text: _media(text, True), action="append", default=[],
                          metavar="PATH[@FRAME][:STRENGTH]",
                          help="an image or video placed from pixel frame FRAME (default 0; negative counts from the "
                               "end, -1 is the last) with STRENGTH (default 1); repeatable")
    generate.add_argument("--reference-video", type=lambda text: _media(text, False), action="append", default=[],
                          metavar="PATH[:STRENGTH]", help="a control video for the IC-LoRA given with --lora")
    generate.add_argument("--model", default=None,
                          help=f"pipeline folder, Hub repo, or single .safetensors file (default {DEFAULT_REPO})")
    generate.add_argument("--preset", choices=PRESETS, default="two-stage")
    generate.add_argument("--width", type=int, default=None,
                          help="output width (the two-stage presets run stage 1 at 1/--upscale of it)")
    generate.add_argument("--height", type=int, default=None, help="output height")
    generate.add_argument("--num-frames", type=int, default=121)
    generate.add_argument("--fps", type=float, default=24.0)
    generate.add_argument("--steps", type=int, default=None,
                          help=f"stage-1 steps (default: 40 on LTX-2.0, 30 on LTX-2.3; distilled: {DISTILLED_STEPS}, fixed)")
    generate.add_argument("--guidance", type=float, default=None,
                          help="video classifier-free guidance scale (default: the model's, 4.0 on LTX-2.0, 3.0 on "
                               "LTX-2.3, whose audio keeps 7.0)")
    generate.add_argument("--stg", type=float, default=None,
                          help="spatio-temporal guidance scale of both streams (LTX-2.3; default 1.0 there)")
    generate.add_argument("--upscale", type=float, choices=(2.0, 1.5), default=2.0,
                          help="latent upsampler of the two-stage presets (x1.5: LTX-2.3)")
    generate.add_argument("--image-crf", type=int, default=None,
                          help="H.264 CRF the --image or --condition images are re-compressed at, as in training "
                               f"(default {DEFAULT_IMAGE_CRF}; 0: off)")
    generate.add_argument("--enhance-prompt", action="store_true", help="let Gemma rewrite the prompt first")
    generate.add_argument("--dry-run", action="store_true", help="print the settings the run would use, then exit")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--lora", type=_lora, action="append", default=[], metavar="PATH[:SCALE]")
    generate.add_argument("--offload", choices=("none", "model", "sequential"), default="none")
    generate.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    generate.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    generate.add_argument("--output", default="ltx2-output.mp4")
    generate.add_argument("--parallel", type=_parallel_split, default=None, metavar="ulysses=N,guidance=M",
                          help="under torchrun: Ulysses group size and guidance groups (default: from the world size)")
    generate.add_argument("--audio", default=None, metavar="PATH",
                          help="a soundtrack to make the video for (Lightricks' A2Vid pipeline; needs an original "
                               "single-file --model and --gemma-root)")
    generate.add_argument("--gemma-root", default=None, help="the Gemma 3 folder (with --audio)")

    info = commands.add_parser("info", help="describe a checkpoint: format, components, dtypes, parameters")
    info.add_argument("path")

    tiny = commands.add_parser("make-tiny", help="write a tiny random-weight pipeline for a smoke run")
    tiny.add_argument("folder")
    from .official.commands import add_retake_parser

    add_retake_parser(commands)
    return parser


def check_generate_arguments(args: argparse.Namespace, launch: Launch) -> None:
    """Reject bad arguments before anything is loaded, and settle every setting of the run on `args`: the model's
    LTX version and, from it, each stage's call arguments (`args.stage_one`, `args.stage_two`)."""
    import torch

    if not args.prompt.strip():
        raise UsageError("--prompt: must not be empty")
    _check_paths(args)
    args.version = model_version(args.model or DEFAULT_REPO)
    if args.version not in VERSIONS:
        raise UsageError(f"--model {args.model}: LTX version {args.version}, which ltx2 does not implement")
    if args.stg and args.version == LTX_2_0:
        raise UsageError(f"--stg {args.stg}: LTX-2.0 has no perturbed attention; STG needs an LTX-2.3 model")
    if args.upscale not in RELEASES[args.version].upsamplers:
        raise UsageError(f"--upscale {args.upscale:g}: LTX-{args.version} has no x{args.upscale:g} latent upsampler")
    two_stages = args.preset != "one-stage"
    width, height = OUTPUT_SIZES[args.upscale if two_stages else args.preset]
    args.width, args.height = args.width or width, args.height or height
    multiple = OUTPUT_MULTIPLES[args.upscale] if two_stages else 32
    for name in ("width", "height"):
        value = getattr(args, name)
        if value <= 0 or value % multiple:
            scale = f" with --upscale {args.upscale:g}" if two_stages else ""
            raise UsageError(f"--{name} {value}: must be a positive multiple of {multiple} for --preset "
                             f"{args.preset}{scale}")
    step = TEMPORAL_COMPRESSION
    if args.num_frames < 1 or (args.num_frames - 1) % step:
        raise UsageError(f"--num-frames {args.num_frames}: must be {step}k+1 (1, {step + 1}, {2 * step + 1}, ...)")
    if args.fps <= 0:
        raise UsageError(f"--fps {args.fps}: must be positive")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: must be at least 1")
    if args.preset == "distilled" and args.steps not in (None, DISTILLED_STEPS):
        raise UsageError(f"--steps {args.steps}: the distilled preset runs its fixed {DISTILLED_STEPS}-step schedule")
    if args.guidance is not None and args.guidance < 1:
        raise UsageError(f"--guidance {args.guidance}: must be at least 1 (1 turns guidance off)")
    if args.stg is not None and args.stg < 0:
        raise UsageError(f"--stg {args.stg}: must be at least 0 (0 turns STG off)")
    if args.image_crf is not None and not 0 <= args.image_crf <= 51:
        raise UsageError(f"--image-crf {args.image_crf}: must be in [0, 51] (0: no re-compression)")
    _check_conditions(args, launch)
    args.stage_one, args.stage_two = stage_settings(args)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if launch.world > 1 and args.device.startswith("cuda"):
        if args.device != "cuda":
            raise UsageError(f"--device {args.device}: under torchrun each rank uses cuda:LOCAL_RANK; "
                             "pass --device cuda")
        args.device = f"cuda:{launch.local_rank}"
    if args.parallel is not None and args.parallel["ulysses"] * args.parallel["guidance"] != launch.world:
        raise UsageError(f"--parallel ulysses={args.parallel['ulysses']},guidance={args.parallel['guidance']}: the "
                         f"product must be the number of processes ({launch.world}; launch with torchrun "
                         "--nproc-per-node N)")
    args.dtype = args.dtype or ("bf16" if args.device.startswith("cuda") else "fp32")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UsageError(f"--device {args.device}: not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: CUDA is not available on this machine")
    if args.offload != "none" and device.type == "cpu":
        raise UsageError(f"--offload {args.offload}: offloading moves weights to an accelerator; --device is cpu")


def _check_paths(args: argparse.Namespace) -> None:
    """Every local path named on the command line exists (Hub references are looked up when used)."""
    if args.model and _is_local(args.model) and not Path(args.model).exists():
        raise UsageError(f"--model {args.model}: no such file or folder")
    if args.image is not None:
        _check_image(args.image)
    for lora in args.lora:
        if _is_local(lora.path) and not Path(lora.path).is_file():
            raise UsageError(f"--lora {lora.path}: no such file (nor 'owner/repo/file.safetensors' on the Hub)")
    output = Path(args.output)
    if output.suffix.lower() != ".mp4":
        raise UsageError(f"--output {args.output}: must end in .mp4")
    if not output.parent.is_dir():
        raise UsageError(f"--output {args.output}: folder {output.parent} does not exist")
    if output.is_dir():
        raise UsageError(f"--output {args.output}: is a folder")


def _is_local(text: str) -> bool:
    """Whether a path argument names a local file: it exists, or it cannot be a Hub reference ('owner/repo' or
    'owner/repo/file.safetensors'), or its first folder exists here."""
    path = Path(text)
    hub_like = text.count("/") >= 1 and not path.is_absolute() and not text.startswith((".", "~"))
    return path.exists() or not hub_like or Path(text.split("/")[0]).is_dir()


def model_version(model: str) -> str:
    """The LTX version of --model, from a folder's configs or a file's header; for the Hub, from Lightricks'
    repo names, else from the few small files that tell it (a single file's header alone)."""
    from .loading.checkpoint import TensorSource
    from .loading.hub import download
    from .loading.single_file import checkpoint_version, file_version
    from .versions import folder_version

    path = Path(model)
    if path.is_dir():
        return folder_version(path)
    if path.is_file():
        with TensorSource([path], str(path)) as source:
            return file_version(source)
    repo = "/".join(model.split("/")[:2])
    known = [version for version, release in RELEASES.items() if release.repo == repo]
    if known:
        return known[0]
    if model.endswith(".safetensors"):
        from huggingface_hub import get_safetensors_metadata

        header = get_safetensors_metadata(repo, model.split("/", 2)[2])
        metadata = {key: _json_or_text(value) for key, value in (header.metadata or {}).items()}
        return checkpoint_version(metadata, header.tensors, model)
    return folder_version(download(repo, ["transformer/config.json", "connectors/config.json"]))


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def stage_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The call arguments of stage 1 and stage 2 (None for one stage): the model version's recommended steps and
    guidance with the command line's in their place; the distilled schedules run without guidance."""
    from .pipelines.guidance import GUIDANCE_OFF

    if args.preset == "distilled":
        stage_one = {**resolve_call_kwargs(args.version, GUIDANCE_OFF), "num_inference_steps": DISTILLED_STEPS,
                     "sigmas": DISTILLED_SIGMA_VALUES}
    else:
        given = dict(num_inference_steps=args.steps, guidance_scale=args.guidance, stg_scale=args.stg,
                     audio_stg_scale=args.stg)
        stage_one = resolve_call_kwargs(args.version, given)
    scale = args.upscale if args.preset != "one-stage" else 1
    stage_one.update(width=round(args.width / scale), height=round(args.height / scale))
    if args.preset == "one-stage":
        return stage_one, None
    stage_two = {**resolve_call_kwargs(args.version, GUIDANCE_OFF), "sigmas": STAGE_2_DISTILLED_SIGMA_VALUES,
                 "num_inference_steps": len(STAGE_2_DISTILLED_SIGMA_VALUES),
                 "noise_scale": STAGE_2_DISTILLED_SIGMA_VALUES[0]}
    return stage_one, stage_two


def describe_run(args: argparse.Namespace) -> list[str]:
    """The settings a run uses, as --dry-run prints them."""
    release = RELEASES[args.version]
    model = args.model or (f"{release.repo}/{release.distilled}" if args.preset == "distilled" else DEFAULT_REPO)
    lines = [f"model          {model} (LTX version {args.version})", f"preset         {args.preset}",
             f"output         {args.output}: {args.width}x{args.height}, {args.num_frames} frames at {args.fps:g} fps"]
    lines.append("stage 1        " + _settings(args.stage_one))
    if args.stage_two is not None:
        lines.append(f"upsampling     x{args.upscale:g} ({release.upsamplers[args.upscale]})")
        lines.append("stage 2        " + _settings(args.stage_two))
        if args.preset == "two-stage":
            lines.append(f"distilled LoRA {release.distilled_lora} (stage 2)")
    if args.image is not None:
        crf = DEFAULT_IMAGE_CRF if args.image_crf is None else args.image_crf
        lines.append(f"image          {args.image}" + (f", re-compressed at CRF {crf}" if crf else ""))
    for condition in args.condition:
        lines.append(f"condition      {condition.path}: {len(condition.frames)} frame(s) from frame "
                     f"{condition.start} (latent frame {condition.latent_index}), strength {condition.strength:g}")
    for video in args.reference_video:
        # The pipeline uses at most the video's frames, cut to 8k+1.
        used = (min(len(video.frames), args.num_frames) - 1) // TEMPORAL_COMPRESSION * TEMPORAL_COMPRESSION + 1
        lines.append(f"reference      {video.path}: {used} frames, strength {video.strength:g}, "
                     f"downscaled x{args.reference_downscale_factor} (stage 1)")
    lines += [f"prompt         {'enhanced by Gemma first' if args.enhance_prompt else 'as given'}: {args.prompt!r}",
              f"loras          {', '.join(f'{lora.path}:{lora.scale:g}' for lora in args.lora) or 'none'}",
              f"seed {args.seed}, device {args.device}, dtype {args.dtype}, offload {args.offload}"]
    return lines


def _settings(kwargs: dict[str, Any]) -> str:
    return " ".join(f"{key}={value!r}" for key, value in kwargs.items())


def _check_image(path: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise UsageError(f"--image {path}: no such file")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError) as error:
        raise UsageError(f"--image {path}: not a readable image ({error})") from None


def _check_conditions(args: argparse.Namespace, launch: Launch) -> None:
    """Read every --condition and --reference-video and place the conditions on latent frames (rank 0 says
    where, when that is not the frame asked for)."""
    if args.image is not None and (args.condition or args.reference_video):
        raise UsageError(f"--image {args.image}: not with --condition or --reference-video; "
                         f"use --condition {args.image}@0 for the first frame")
    if args.reference_video and not args.lora:
        raise UsageError("--reference-video: needs the IC-LoRA it controls, given with --lora")
    for media, option in [*((m, "--condition") for m in args.condition), *((m, "--reference-video")
                                                                           for m in args.reference_video)]:
        if not 0 <= media.strength <= 1:
            raise UsageError(f"{option} {media.text}: strength {media.strength:g} must be in [0, 1]")
        media.frames = read_media(media.path, args.num_frames, option)
    for condition in args.condition:
        for note in place_condition(condition, args.num_frames):
            if launch.rank == 0:
                print(f"ltx2: --condition {condition.text}: {note}", file=sys.stderr)
    args.reference_downscale_factor = reference_downscale_factor(args.lora) if args.reference_video else 1


def reference_downscale_factor(loras: list[Lora]) -> int:
    """The factor the IC-LoRAs' metadata gives the reference video's size (1 when none says)."""
    from .loading.lora import open_lora

    factors = set()
    for lora in loras:
        with open_lora(lora.path) as source:
            factor = source.metadata().get("reference_downscale_factor")
        if factor is not None:
            factors.add(max(1, round(float(factor))))
    if len(factors) > 1:
        raise UsageError(f"--lora: the IC-LoRAs ask for different reference downscale factors {sorted(factors)}")
    return factors.pop() if factors else 1


def read_media(path: str, limit: int, option: str) -> list[Any]:
    """An image (one PIL frame) or the first `limit` frames of a video any FFmpeg build reads, as RGB PIL images."""
    import av
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) == 1:
                return [image.convert("RGB")]
    except (UnidentifiedImageError, OSError):
        pass
    try:
        with av.open(path) as container:
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_image())
                if len(frames) == limit:
                    break
    except (av.FFmpegError, IndexError, ValueError) as error:
        raise UsageError(f"{option} {path}: not a readable image or video ({error})") from None
    if not frames:
        raise UsageError(f"{option} {path}: not a readable image or video (no video frames)")
    return frames


def place_condition(condition: Media, num_frames: int) -> list[str]:
    """The latent frame for a condition at pixel frame `frame`: conditions start where a latent frame starts
    (0, 1, 9, 17, ...); a clip must fit before the end and is cut to 8k+1 frames. Returns notes on both."""
    step = TEMPORAL_COMPRESSION
    if not -num_frames <= condition.frame < num_frames:
        raise UsageError(f"--condition {condition.text}: frame {condition.frame} is outside the video "
                         f"(frames 0 to {num_frames - 1}, or -{num_frames} to -1 from the end)")
    pixel = condition.frame % num_frames
    condition.latent_index = 0 if pixel == 0 else (pixel - 1) // step + 1
    condition.start = start = 0 if pixel == 0 else (condition.latent_index - 1) * step + 1
    used = (len(condition.frames) - 1) // step * step + 1
    if start + used > num_frames:
        raise UsageError(f"--condition {condition.text}: its {used} frames from frame {start} run past the last "
                         f"frame ({num_frames - 1}); start it at frame {num_frames - used} or earlier")
    notes = []
    if pixel != start:
        notes.append(f"placed at frame {start} (latent frame {condition.latent_index}), where the latent frame "
                     f"holding frame {pixel} starts")
    if used != len(condition.frames):
        notes.append(f"using its first {used} of {len(condition.frames)} frames (clips are 8k+1 frames)")
    condition.frames = condition.frames[:used]
    return notes


@dataclass
class Model:
    """The pipeline, and how to get the two-stage extras found beside it (fetched only when used)."""

    pipeline: Any
    upsampler: Callable[[], Any]
    distilled_lora: Callable[[], str | None]


def load_model(args: argparse.Namespace, dtype: Any) -> Model:
    """The pipeline for --model, with the latent upsampler and distilled LoRA of its LTX version found beside it."""
    from . import LTX2LatentUpsamplerModel, LTX2Pipeline
    from .loading.hub import resolve_file

    release = RELEASES[args.version]
    upsampler_file = release.upsamplers[args.upscale]
    model = args.model or (f"{release.repo}/{release.distilled}" if args.preset == "distilled" else DEFAULT_REPO)
    path = Path(model)
    if path.is_dir():
        lora = path / release.distilled_lora
        if args.upscale == 2.0:  # a diffusers folder's latent_upsampler/ is the x2 one
            _require_upsampler(args, (path / "latent_upsampler").is_dir(), "a latent_upsampler/ subfolder")
            upsampler = partial(LTX2LatentUpsamplerModel.from_pretrained, path / "latent_upsampler", torch_dtype=dtype)
        else:
            _require_upsampler(args, (path / upsampler_file).is_file(), upsampler_file)
            upsampler = partial(LTX2LatentUpsamplerModel.from_single_file, path / upsampler_file, torch_dtype=dtype)
        return Model(LTX2Pipeline.from_pretrained(path, torch_dtype=dtype), upsampler,
                     lambda: str(lora) if lora.is_file() else None)
    if path.is_file():
        upsampler, lora = path.parent / upsampler_file, path.parent / release.distilled_lora
        _require_upsampler(args, upsampler.is_file(), upsampler_file)
        return Model(LTX2Pipeline.from_single_file(path, torch_dtype=dtype),
                     lambda: LTX2LatentUpsamplerModel.from_single_file(upsampler, torch_dtype=dtype),
                     lambda: str(lora) if lora.is_file() else None)
    repo = "/".join(model.split("/")[:2])
    if model.endswith(".safetensors"):
        return Model(LTX2Pipeline.from_single_file(model, torch_dtype=dtype),
                     lambda: LTX2LatentUpsamplerModel.from_single_file(f"{repo}/{upsampler_file}", torch_dtype=dtype),
                     lambda: str(resolve_file(repo, release.distilled_lora)))
    return Model(LTX2Pipeline.from_pretrained(model, torch_dtype=dtype),
                 lambda: LTX2LatentUpsamplerModel.from_pretrained(model, subfolder="latent_upsampler",
                                                                  torch_dtype=dtype),
                 lambda: str(resolve_file(model, release.distilled_lora)) if model == release.repo else None)


def _require_upsampler(args: argparse.Namespace, present: bool, what: str) -> None:
    if args.preset != "one-stage" and not present:
        raise UsageError(f"--preset {args.preset}: no latent upsampler beside --model {args.model} ({what}); "
                         "use --preset one-stage")


def _place(pipeline: Any, args: argparse.Namespace) -> None:
    if args.offload == "model":
        pipeline.enable_model_cpu_offload(device=args.device)
    elif args.offload == "sequential":
        pipeline.enable_sequential_cpu_offload(device=args.device)
    else:
        pipeline.to(args.device)


def _without_shifting(scheduler: Any) -> Any:
    """The distilled schedules are used as given: no resolution-dependent shift, no terminal stretch."""
    from . import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler.from_config(scheduler.config, use_dynamic_shifting=False,
                                                       shift_terminal=None)


def generate(args: argparse.Namespace, launch: Launch) -> dict[str, float]:
    """Run the chosen preset and write args.output (rank 0); returns seconds per stage."""
    import torch

    from . import encode_video

    timings = Timings(verbose=launch.rank == 0)
    if args.device.startswith("cuda"):
        timings.synchronize = torch.cuda.synchronize
    with timings.stage("loading"):
        model = load_model(args, getattr(torch, DTYPES[args.dtype]))
        pipe = _pipeline_class(args)(**model.pipeline.components)
        for index, lora in enumerate(args.lora):
            pipe.load_lora_weights(lora.path, adapter_name=f"user_{index}")
        if args.lora:
            pipe.set_adapters([f"user_{index}" for index in range(len(args.lora))], [lora.scale for lora in args.lora])
        _place(pipe, args)
        if launch.world > 1:
            _share(pipe, args, launch, timings)
    prompt = args.prompt
    if args.enhance_prompt:
        with timings.stage("prompt enhancement"):
            # The picture Gemma sees: the --image, else the first --condition's first frame (as diffusers picks it).
            picture = args.condition[0].frames[0] if args.image is None and args.condition else args.image
            prompt = pipe.enhance_prompt(prompt, seed=args.seed, image=picture)[0]
        if launch.rank == 0:
            print(f"ltx2: enhanced prompt: {prompt}", file=sys.stderr)
    for method, name in (("encode_prompt", "text encoding"), ("denoise", "denoising"), ("decode", "decoding")):
        timings.wrap(pipe, method, name)
    common: dict[str, Any] = dict(prompt=prompt, negative_prompt=args.negative_prompt, num_frames=args.num_frames,
                                  frame_rate=args.fps, generator=torch.Generator().manual_seed(args.seed),
                                  return_dict=False, **_conditions(args))
    references = _references(args)
    if args.stage_two is None:
        video, audio = pipe(**args.stage_one, output_type="np", **common, **references)
    else:
        video, audio = two_stages(pipe, model, args, common, references, timings)
    if launch.rank == 0:
        with timings.stage("writing"):
            encode_video(video[0], fps=args.fps, audio=audio[0].float().cpu(),
                         audio_sample_rate=pipe.vocoder.config.output_sampling_rate, output_path=args.output)
    return timings.seconds


def _pipeline_class(args: argparse.Namespace) -> type:
    from . import LTX2ConditionPipeline, LTX2ImageToVideoPipeline, LTX2InContextPipeline, LTX2Pipeline

    if args.reference_video:
        return LTX2InContextPipeline
    if args.condition:
        return LTX2ConditionPipeline
    return LTX2ImageToVideoPipeline if args.image is not None else LTX2Pipeline


def _conditions(args: argparse.Namespace) -> dict[str, Any]:
    """The conditioning arguments of every stage: the first-frame image or the frame conditions."""
    from . import LTX2VideoCondition

    if args.image is not None:
        return {"image": args.image, "image_crf": args.image_crf}
    if not args.condition:
        return {}
    frames = [condition.frames[0] if len(condition.frames) == 1 else condition.frames for condition in args.condition]
    return {"conditions": [LTX2VideoCondition(picture, condition.latent_index, condition.strength, args.image_crf)
                           for picture, condition in zip(frames, args.condition)]}


def _references(args: argparse.Namespace) -> dict[str, Any]:
    """The reference videos (stage 1 only), at the downscale factor the IC-LoRAs ask for."""
    from . import LTX2ReferenceCondition

    if not args.reference_video:
        return {}
    return {"reference_conditions": [LTX2ReferenceCondition(video.frames, video.strength)
                                     for video in args.reference_video],
            "reference_downscale_factor": args.reference_downscale_factor}


def _share(pipe: Any, args: argparse.Namespace, launch: Launch, timings: Timings) -> None:
    """Share the generation among the torchrun ranks, split as --parallel says or as suits the world size."""
    from .pipelines.guidance import Guidance
    from .pipelines.parallel import default_split

    if args.parallel is not None:
        ulysses, guidance = args.parallel["ulysses"], args.parallel["guidance"]
    else:
        guided = len(Guidance.from_call_kwargs(args.stage_one).passes(1)) > 1
        ulysses, guidance = default_split(launch.world, pipe.transformer.config.num_attention_heads, guided)
    timings.note(f"{launch.world} ranks: --parallel ulysses={ulysses},guidance={guidance}")
    if launch.rank != 0:
        pipe.set_progress_bar_config(disable=True)
    pipe.enable_parallelism(ulysses, guidance)


def two_stages(
    pipe: Any, model: Model, args: argparse.Namespace, common: dict[str, Any], references: dict[str, Any],
    timings: Timings,
) -> Any:
    """Stage 1 at 1/--upscale of the size, latent upsampling, stage 2 on the distilled schedule (with the
    distilled LoRA after a dev stage 1), as in LTX-2's documented two-stage flow. Frame conditions apply to both
    stages; references and their IC-LoRAs to stage 1 only, as in Lightricks' IC-LoRA pipeline."""
    from . import LTX2LatentUpsamplePipeline

    if args.preset == "distilled":
        pipe.scheduler = _without_shifting(pipe.scheduler)
    video_latents, audio_latents = pipe(**args.stage_one, output_type="latent", **common, **references)
    with timings.stage("upsampling"):
        upsample = LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=model.upsampler())
        _place(upsample, args)
        upsampled = upsample(latents=video_latents, output_type="latent", return_dict=False)[0]
    # With references, the user's LoRAs are IC-LoRAs: stage 2 runs without them.
    adapters = {} if references else {f"user_{index}": lora.scale for index, lora in enumerate(args.lora)}
    if args.preset == "two-stage":
        with timings.stage("loading"):
            distilled = model.distilled_lora()
            if distilled is None:
                timings.note("no distilled LoRA beside --model; stage 2 runs without it")
            else:
                pipe.load_lora_weights(distilled, adapter_name="stage_2_distilled")
                adapters["stage_2_distilled"] = 1.0
    if adapters:
        pipe.set_adapters(list(adapters), list(adapters.values()))
    elif args.lora:
        pipe.disable_lora()
    pipe.scheduler = _without_shifting(pipe.scheduler)
    return pipe(latents=upsampled, audio_latents=audio_latents, output_type="np", **args.stage_two, **common)


def _peak_memory(device: str) -> str:
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    text = f"{rss:.2f} GiB RAM"
    if device.startswith("cuda"):
        text = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU, " + text
    return text


def run_generate(args: argparse.Namespace, launch: Launch) -> None:
    if args.audio is not None:
        from .official.commands import run_audio_to_video

        written = run_audio_to_video(args, RELEASES, OUTPUT_SIZES[2.0])
        print(f"ltx2: wrote {written['output']} ({written['width']}x{written['height']}, {args.num_frames} frames at "
              f"{args.fps:g} fps, for {args.audio})")
        return
    check_generate_arguments(args, launch)
    if args.dry_run:
        if launch.rank == 0:
            print("ltx2: dry run; the settings below, nothing loaded or written")
            print("\n".join(f"  {line}" for line in describe_run(args)))
        return
    from .tiny import is_tiny_pipeline

    if args.model and is_tiny_pipeline(args.model) and launch.rank == 0:
        print("ltx2: --model is a tiny random-weight pipeline (ltx2 make-tiny): the output is noise", file=sys.stderr)
    start = time.perf_counter()
    if launch.world > 1:
        _join(args, launch)
    seconds = generate(args, launch)
    if launch.world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    if launch.rank != 0:
        return
    print(f"ltx2: wrote {args.output} ({args.width}x{args.height}, {args.num_frames} frames at {args.fps:g} fps, "
          f"{args.num_frames / args.fps:.2f} s)")
    for name, value in seconds.items():
        print(f"  {name:<14} {value:8.2f} s")
    print(f"  {'total':<14} {time.perf_counter() - start:8.2f} s")
    print(f"  peak memory    {_peak_memory(args.device)}{' (rank 0)' if launch.world > 1 else ''}")


def _join(args: argparse.Namespace, launch: Launch) -> None:
    """Join torchrun's process group: NCCL between GPUs, gloo between CPUs."""
    import torch
    import torch.distributed as dist

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")


def run_info(args: argparse.Namespace) -> None:
    from .loading.describe import describe

    if not Path(args.path).exists():
        raise UsageError(f"{args.path}: no such file or folder")
    print("\n".join(describe(args.path)))


def run_make_tiny(args: argparse.Namespace) -> None:
    from .tiny import make_tiny_pipeline

    folder = make_tiny_pipeline(args.folder)
    print(f"ltx2: wrote a tiny random-weight pipeline to {folder} (for a smoke run; its output is noise)")
    print(f"  try: ltx2 generate --model {folder} --prompt \"a robot dancing in the rain\" --width 512 --height 384 "
          "--num-frames 25 --steps 4 --output smoke.mp4")


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    launch = Launch.from_environment()
    if launch.world == 1:
        # Under torchrun SIGTERM keeps its default action, which ends a rank even while it waits in a collective:
        # that is how torchrun stops the other ranks once one has failed.
        signal.signal(signal.SIGTERM, _terminate)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            run_generate(args, launch)
        elif launch.rank == 0:  # under torchrun only generate is shared; the others run once
            from .official.commands import run_retake

            {"info": run_info, "make-tiny": run_make_tiny, "retake": run_retake}[args.command](args)
    except UsageError as error:
        launch.report(f"ltx2: error: {_one_line(error)}")
        return 2
    except KeyboardInterrupt:
        launch.report("ltx2: interrupted; no output written")
        return 130
    except Exception as error:
        from .loading.checkpoint import CheckpointError

        if isinstance(error, ValueError) and not isinstance(error, CheckpointError):
            launch.report(f"ltx2: error{launch.where}: {_one_line(error)}")
            return 2
        launch.report(f"ltx2: failed{launch.where}: {type(error).__name__}: {_one_line(error)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
