"""The `ltx2` command: generate a video with sound, describe a checkpoint, write a tiny smoke-test pipeline.

Exit codes: 0 success, 1 a failure (its cause on one line), 2 bad arguments (the reason on one line),
130 interrupted. The output file appears only once complete.

Under torchrun (`torchrun --nproc-per-node N -m ltx2 generate ...`) the ranks share each generation (see
ltx2.pipelines.parallel); rank 0 alone prints progress and the summary and writes the MP4, and however the run ends, one
rank (the first to fail) prints the one line that says why.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
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

from . import cli_dfr, cli_hdr
from .versions import (
    DEFAULT_REPO,
    DEFAULT_IMAGE_CRF,
    DISTILLED_SIGMA_VALUES,
    LTX_2_0,
    LTX_2_5,
    LTX_2_5_IMAGE_CRF,
    RELEASES,
    STAGE_2_DISTILLED_SIGMA_VALUES,
    VERSIONS,
    VIDEO_VAE_COMPRESSION,
    resolve_call_kwargs,
)

PRESETS = ("two-stage", "distilled", "one-stage", "dfr")
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
TEMPORAL_COMPRESSION = VIDEO_VAE_COMPRESSION[0]  # pixel frames per latent frame (after the first)
DISTILLED_STEPS = len(DISTILLED_SIGMA_VALUES)
# Output (width, height) when not given: the two-stage presets run stage 1 at 1/scale of it.
OUTPUT_SIZES = {"one-stage": (768, 512), 2.0: (1536, 1024), 1.5: (1152, 768)}
# What output sizes must be a multiple of, per upsampler: stage 1 runs at 1/scale of it, on the VAE's 32-pixel
# grid; the x1.5 upsampler also needs even latent sizes at stage 1.
OUTPUT_MULTIPLES = {2.0: 64, 1.5: 96}
# The distilled schedules run without guidance (GUIDANCE_OFF), except LTX-2.5's, which diffusers 0.42.1 documents
# with CFG off only: STG, modality guidance and rescale keep their defaults (three passes per step).
DOCUMENTED_DISTILLED_GUIDANCE = {LTX_2_5: dict(guidance_scale=1.0, audio_guidance_scale=1.0)}
# The preset a model runs when --preset is not given: LTX-2.5's folder ships the distilled transformer, whose
# reference recipe (0.42.1's documentation) is distilled in both stages.
DEFAULT_PRESETS = {LTX_2_5: "distilled"}
DECODERS = ("vae", "diffusion")
LENGTH_WHEN_NOT_PREDICTED = 121


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
    generate.add_argument("--text-encoder", default=None, metavar="DIR",
                          help="a local Gemma 3 for the prompt: a pipeline folder (its text_encoder/ and tokenizer/) or "
                               "a Gemma 3 model folder with its tokenizer (default: the model's own; for a single "
                               f"file, {DEFAULT_REPO}'s from the Hub)")
    generate.add_argument("--preset", choices=PRESETS, default=None,
                          help="default: two-stage on LTX-2.0/2.3, distilled on LTX-2.5 (its shipped transformer); "
                               "dfr: LTX-2.5's 1080p recipe (see ltx2.cli_dfr)")
    generate.add_argument("--temporal-refine", type=int, nargs="?", const=1, default=0, metavar="ROUNDS",
                          help="--preset dfr: temporal refine rounds, each doubling frames and frame rate (default 0; "
                               "1 without ROUNDS)")
    generate.add_argument("--hdr", action="store_true",
                          help="make the one --reference-video HDR with the HDR IC-LoRA given with --lora: writes "
                               "--output tone-mapped, OUTPUT.hdr.mp4 (10-bit) and OUTPUT.exr/ (see ltx2.cli_hdr)")
    generate.add_argument("--hdr-transfer", choices=("pq", "hlg"), default="pq", help="--hdr: the 10-bit MP4's curve")
    generate.add_argument("--width", type=int, default=None,
                          help="output width (the two-stage presets run stage 1 at 1/--upscale of it)")
    generate.add_argument("--height", type=int, default=None, help="output height")
    generate.add_argument("--num-frames", type=int, default=None,
                          help="default: predicted from the prompt by LTX-2.5's duration head, else 121")
    generate.add_argument("--decoder", choices=DECODERS, default=None,
                          help="video decoder: the VAE, or LTX-2.5's diffusion decoder (default: diffusion where the "
                               "model has one, as diffusers 0.42.1's LTX-2.5 recipe, else vae)")
    generate.add_argument("--fps", type=float, default=24.0)
    generate.add_argument("--steps", type=int, default=None,
                          help="stage-1 steps (default: 40 on LTX-2.0, 30 on LTX-2.3/2.5; distilled: "
                               f"{DISTILLED_STEPS}, fixed)")
    generate.add_argument("--guidance", type=float, default=None,
                          help="video classifier-free guidance scale (default: the model's, 4.0 on LTX-2.0, 3.0 on "
                               "LTX-2.3, whose audio keeps 7.0)")
    generate.add_argument("--stg", type=float, default=None,
                          help="spatio-temporal guidance scale of both streams (LTX-2.3; default 1.0 there)")
    generate.add_argument("--upscale", type=float, choices=(2.0, 1.5), default=2.0,
                          help="latent upsampler of the two-stage presets (x1.5: LTX-2.3)")
    generate.add_argument("--image-crf", type=int, default=None,
                          help="H.264 CRF the --image or --condition images are re-compressed at, as in training "
                               f"(default {DEFAULT_IMAGE_CRF}, {LTX_2_5_IMAGE_CRF} on LTX-2.5; 0: off)")
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

    serve = commands.add_parser("serve", help="load a model once and serve OpenAI's Videos API and a web page")
    serve.add_argument("--model", required=True, help="pipeline folder, Hub repo, or single .safetensors file")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free one; the start-up line says it)")
    serve.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (default $LTX2_API_KEY)")
    serve.add_argument("--data-dir", default=None,
                       help="job store and outputs (default $XDG_DATA_HOME/ltx2/serve or ~/.local/share/ltx2/serve)")
    serve.add_argument("--preset", choices=PRESETS, default="two-stage", help="the preset of requests that name none")
    serve.add_argument("--max-queue", type=int, default=32, help="queued jobs beyond which creation answers 429")
    serve.add_argument("--max-frames", type=int, default=481, help="the most frames a request may ask for")
    serve.add_argument("--upscale", type=float, choices=(2.0, 1.5), default=2.0,
                       help="latent upsampler of the two-stage presets (x1.5: LTX-2.3)")
    serve.add_argument("--stg", type=float, default=None, help="spatio-temporal guidance scale (LTX-2.3)")
    serve.add_argument("--image-crf", type=int, default=None, help="H.264 CRF input images are re-compressed at")
    serve.add_argument("--lora", type=_lora, action="append", default=[], metavar="PATH[:SCALE]")
    serve.add_argument("--offload", choices=("none", "model", "sequential"), default="none")
    serve.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bf16 on CUDA, fp32 on CPU")
    serve.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    serve.add_argument("--parallel", nargs="?", const="auto", default=None, metavar="ulysses=N,guidance=M",
                       help="under torchrun: every job runs on all ranks (split as given, or as suits the world size)")
    serve.add_argument("--rank-timeout", type=float, default=120.0, metavar="SECONDS",
                       help="with --parallel: the longest a rank waits for another inside a job before the job fails "
                            "(a rank that raised); a rank not done twice this long after rank 0 is lost (no more "
                            "jobs run)")

    info = commands.add_parser("info", help="describe a checkpoint: format, components, dtypes, parameters")
    info.add_argument("path")

    tiny = commands.add_parser("make-tiny", help="write a tiny random-weight pipeline for a smoke run")
    tiny.add_argument("folder")
    tiny.add_argument("--version", choices=VERSIONS, default=LTX_2_0, help="the LTX version it has the structure of")
    tiny.add_argument("--with-loras", action="store_true",
                      help="also write a distilled LoRA (for the two-stage preset) and an IC-LoRA beside it")
    retake = commands.add_parser("retake", help="regenerate a time span of a video (Lightricks' RetakePipeline)")
    retake.add_argument("video")
    retake.add_argument("--start", type=float, required=True, help="seconds")
    retake.add_argument("--end", type=float, required=True, help="seconds")
    retake.add_argument("--prompt", required=True)
    retake.add_argument("--negative-prompt", default=None, help="default: Lightricks' DEFAULT_NEGATIVE_PROMPT")
    retake.add_argument("--model", required=True, help="original single-file checkpoint (.safetensors)")
    retake.add_argument("--gemma-root", required=True)
    retake.add_argument("--steps", type=int, default=None, help="default: 40 on LTX-2.0, 30 on LTX-2.3")
    retake.add_argument("--seed", type=int, default=42)
    retake.add_argument("--distilled", action="store_true", help="a distilled checkpoint: its fixed 8 sigmas")
    retake.add_argument("--output", default="ltx2-retake.mp4")
    return parser


def check_generate_arguments(args: argparse.Namespace, launch: Launch) -> None:
    """Reject bad arguments before anything is loaded, and settle every setting of the run on `args`: the model's
    LTX version and, from it, each stage's call arguments (`args.stage_one`, `args.stage_two`)."""
    import torch

    if not args.prompt.strip():
        raise UsageError("--prompt: must not be empty")
    _check_numbers(args)
    _check_paths(args)
    args.version = model_version(args.model or DEFAULT_REPO)
    if args.version not in RELEASES:
        raise UsageError(f"--model {args.model}: LTX version {args.version}, which ltx2 generate does not run")
    if args.stg and args.version == LTX_2_0:
        raise UsageError(f"--stg {args.stg}: LTX-2.0 has no perturbed attention; STG needs an LTX-2.3 model")
    if args.enhance_prompt and args.version == LTX_2_5:
        raise UsageError("--enhance-prompt: LTX-2.5 rewrites prompts with a separate Gemma 4 enhancer, which ltx2 "
                         "does not run yet")
    if args.hdr:
        cli_hdr.check(args, UsageError)
    args.preset = args.preset or DEFAULT_PRESETS.get(args.version, "two-stage")
    if args.preset == "dfr":
        cli_dfr.check(args, UsageError)
    elif args.temporal_refine:
        raise UsageError(f"--temporal-refine {args.temporal_refine}: only with --preset dfr")
    _check_length_and_decoder(args)
    if args.upscale not in RELEASES[args.version].upsamplers:
        raise UsageError(f"--upscale {args.upscale:g}: LTX-{args.version} has no x{args.upscale:g} latent upsampler")
    two_stages = args.preset != "one-stage"
    width, height = OUTPUT_SIZES[args.upscale if two_stages else args.preset]
    args.width = width if args.width is None else args.width
    args.height = height if args.height is None else args.height
    multiple = OUTPUT_MULTIPLES[args.upscale] if two_stages else 32
    for name in ("width", "height"):
        value = getattr(args, name)
        if value <= 0 or value % multiple:
            scale = f" with --upscale {args.upscale:g}" if two_stages else ""
            raise UsageError(f"--{name} {value}: must be a positive multiple of {multiple} for --preset "
                             f"{args.preset}{scale}")
    if args.preset == "distilled" and args.steps not in (None, DISTILLED_STEPS):
        raise UsageError(f"--steps {args.steps}: the distilled preset runs its fixed {DISTILLED_STEPS}-step schedule")
    _check_conditions(args, launch)
    args.stage_one, args.stage_two = stage_settings(args)
    _check_stg_blocks(args, launch)
    if args.stage_two is not None:
        files = model_files(args)
        if Path(files.model).exists() and not Path(files.upsampler).exists():
            raise UsageError(f"--preset {args.preset}: no latent upsampler beside --model {files.model} "
                             f"({files.upsampler}); use --preset one-stage")
    _check_reference_size(args)
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


def _check_length_and_decoder(args: argparse.Namespace) -> None:
    """Settle how long the video is (args.num_frames None: predicted after loading) and which decoder runs, from
    the parts the model ships (LTX-2.5's duration head and diffusion decoder)."""
    parts = optional_parts(args.model or DEFAULT_REPO, args.version)
    if args.num_frames is None and "duration_head" not in parts:
        args.num_frames = LENGTH_WHEN_NOT_PREDICTED
    if args.num_frames is None and (args.condition or args.reference_video):
        option = "--condition" if args.condition else "--reference-video"
        raise UsageError(f"{option}: give --num-frames too; the LTX-2.5 duration head would choose the length only "
                         "after loading, and conditions are placed on frames before")
    if args.decoder == "diffusion" and "diffusion_decoder" not in parts:
        raise UsageError(f"--decoder diffusion: --model {args.model or DEFAULT_REPO} (LTX-{args.version}) has no "
                         "diffusion decoder (an LTX-2.5 folder ships one in diffusion_decoder/)")
    args.decoder = args.decoder or ("diffusion" if "diffusion_decoder" in parts else "vae")


def optional_parts(model: str, version: str) -> set[str]:
    """Which of the optional components duration_head and diffusion_decoder --model has: a folder's subfolders
    (or model_index.json entries); a local single file, those it holds (read from its header); a Hub pipeline repo
    or single file, what its LTX version ships (LTX-2.5: both)."""
    from .loading.key_map import OPTIONAL_COMPONENTS, held_components
    from .loading.single_file import open_single_file

    names = set(OPTIONAL_COMPONENTS)
    path = Path(model)
    if model.endswith(".safetensors") and path.is_file():
        with open_single_file(path) as source:
            return names & held_components(source.keys())
    if not path.is_dir():
        return names if version == LTX_2_5 else set()
    index_path = path / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
    return {name for name in names
            if (path / name / "config.json").is_file() or (index.get(name) or [None, None])[1] is not None}


def _check_numbers(args: argparse.Namespace) -> None:
    """Every number on the command line is finite and in its range (argparse has checked the types)."""
    for name in ("width", "height"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"--{name} {value}: must be positive")
    step = TEMPORAL_COMPRESSION
    if args.num_frames is not None and (args.num_frames < 1 or (args.num_frames - 1) % step):
        raise UsageError(f"--num-frames {args.num_frames}: must be {step}k+1 (1, {step + 1}, {2 * step + 1}, ...)")
    if not math.isfinite(args.fps) or args.fps <= 0:
        raise UsageError(f"--fps {args.fps}: must be a positive, finite frame rate")
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: must be at least 1")
    if args.guidance is not None and not (math.isfinite(args.guidance) and args.guidance >= 1):
        raise UsageError(f"--guidance {args.guidance}: must be a finite number, at least 1 (1 turns guidance off)")
    if args.stg is not None and not (math.isfinite(args.stg) and args.stg >= 0):
        raise UsageError(f"--stg {args.stg}: must be a finite number, at least 0 (0 turns STG off)")
    if args.image_crf is not None and not 0 <= args.image_crf <= 51:
        raise UsageError(f"--image-crf {args.image_crf}: must be in [0, 51] (0: no re-compression)")
    if not 0 <= args.seed < 2**64:
        raise UsageError(f"--seed {args.seed}: must be in [0, 2**64)")
    for lora in args.lora:
        if not math.isfinite(lora.scale):
            raise UsageError(f"--lora {lora.path}:{lora.scale}: the scale must be a finite number")
    for media, option in [*((m, "--condition") for m in args.condition),
                          *((m, "--reference-video") for m in args.reference_video)]:
        if not 0 <= media.strength <= 1:  # NaN fails this too
            raise UsageError(f"{option} {media.text}: strength {media.strength:g} must be in [0, 1]")


def _check_paths(args: argparse.Namespace) -> None:
    """Every local path named on the command line exists (Hub references are looked up when used)."""
    if args.model and _is_local(args.model) and not Path(args.model).exists():
        raise UsageError(f"--model {args.model}: no such file or folder")
    if args.text_encoder is not None:
        model, tokenizer = _text_encoder_folders(Path(args.text_encoder))
        if not (model / "config.json").is_file():
            raise UsageError(f"--text-encoder {args.text_encoder}: no Gemma 3 here (neither text_encoder/config.json "
                             "nor config.json)")
        if not any((tokenizer / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
            raise UsageError(f"--text-encoder {args.text_encoder}: no tokenizer in {tokenizer} (tokenizer.json or "
                             "tokenizer.model)")
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

    if args.preset == "dfr":
        return args.stage_one, args.stage_two
    if args.hdr:
        return cli_hdr.settings(args), None
    distilled_guidance = DOCUMENTED_DISTILLED_GUIDANCE.get(args.version, GUIDANCE_OFF)
    if args.preset == "distilled":
        stage_one = {**resolve_call_kwargs(args.version, distilled_guidance),
                     "num_inference_steps": DISTILLED_STEPS, "sigmas": DISTILLED_SIGMA_VALUES}
    else:
        given = dict(num_inference_steps=args.steps, guidance_scale=args.guidance, stg_scale=args.stg,
                     audio_stg_scale=args.stg)
        stage_one = resolve_call_kwargs(args.version, given)
    scale = args.upscale if args.preset != "one-stage" else 1
    stage_one.update(width=round(args.width / scale), height=round(args.height / scale))
    if args.preset == "one-stage":
        return stage_one, None
    stage_two = {**resolve_call_kwargs(args.version, distilled_guidance), "sigmas": STAGE_2_DISTILLED_SIGMA_VALUES,
                 "num_inference_steps": len(STAGE_2_DISTILLED_SIGMA_VALUES),
                 "noise_scale": STAGE_2_DISTILLED_SIGMA_VALUES[0]}
    return stage_one, stage_two


def describe_run(args: argparse.Namespace) -> list[str]:
    """The settings a run uses, as --dry-run prints them."""
    files = model_files(args)
    frames = f"{args.num_frames} frames" if args.num_frames is not None else "length predicted by the duration head"
    lines = [f"model          {files.model} (LTX version {args.version})", f"preset         {args.preset}",
             f"output         {args.output}: {args.width}x{args.height}, {frames} at {args.fps:g} fps"]
    if args.num_frames is None:
        lines.append(f"length         predicted from the prompt (1 to 20 s at {args.fps:g} fps, on the 8k+1 frame "
                     "grid), printed when known")
    if args.preset == "dfr":
        lines += cli_dfr.describe(args)
    elif args.hdr:
        lines += cli_hdr.describe(args)
    else:
        lines.append("stage 1        " + _settings(args.stage_one))
    if args.stage_two is not None and args.preset != "dfr":
        lines.append(f"upsampling     x{args.upscale:g}: {files.upsampler}")
        lines.append("stage 2        " + _settings(args.stage_two))
        if args.preset == "two-stage":
            lines.append(f"distilled LoRA {files.distilled_lora or 'none beside --model: stage 2 runs without it'}")
    single = files.model.endswith(".safetensors") and not Path(files.model).is_dir()
    default_text = f"{DEFAULT_REPO}'s, from the Hub" if single else "the model's"
    lines.append(f"text encoder   {args.text_encoder or default_text}")
    lines.append("decoder        " + ("diffusion decoder (diffusion_decoder/), its noise from the seed"
                                      if args.decoder == "diffusion" else "VAE"))
    if args.image is not None:
        default_crf = LTX_2_5_IMAGE_CRF if args.version == LTX_2_5 else DEFAULT_IMAGE_CRF
        crf = default_crf if args.image_crf is None else args.image_crf
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
        media.frames = read_media(media.path, args.num_frames, option)
    for condition in args.condition:
        for note in place_condition(condition, args.num_frames):
            if launch.rank == 0:
                print(f"ltx2: --condition {condition.text}: {note}", file=sys.stderr)
    placed: list[tuple[Media, range]] = []
    for condition in args.condition:
        span = (len(condition.frames) - 1) // TEMPORAL_COMPRESSION + 1  # latent frames its 8k+1 frames fill
        frames = range(condition.latent_index, condition.latent_index + span)
        for other, other_frames in placed:
            shared = range(max(frames.start, other_frames.start), min(frames.stop, other_frames.stop))
            if shared and launch.rank == 0:
                print(f"ltx2: --condition {condition.text}: overlaps --condition {other.text} on latent frame(s) "
                      f"{shared.start}-{shared.stop - 1}: both condition them", file=sys.stderr)
        placed.append((condition, frames))
    args.reference_downscale_factor = reference_downscale_factor(args.lora) if args.reference_video else 1


def _check_stg_blocks(args: argparse.Namespace, launch: Launch) -> None:
    """STG perturbs given transformer blocks: a model without any of them would run STG as a silent no-op. An
    explicit --stg is then an error; the version's default STG gets a note."""
    blocks = args.stage_one.get("spatio_temporal_guidance_blocks") or []
    if not blocks or not args.stage_one.get("stg_scale"):
        return
    layers = _transformer_layers(args.model) if args.model else None
    if layers is None or any(block < layers for block in blocks):
        return
    if args.stg:
        raise UsageError(f"--stg {args.stg:g}: the model's transformer has {layers} blocks, none of them STG's "
                         f"block {', '.join(map(str, blocks))}; STG would change nothing (pass --stg 0)")
    if launch.rank == 0:
        print(f"ltx2: note: the model's transformer has {layers} blocks, none of them STG's block "
              f"{', '.join(map(str, blocks))}: its STG pass is an unperturbed conditional pass", file=sys.stderr)


def _transformer_layers(model: str) -> int | None:
    """The block count of a local model's transformer, from its config or its header (None when not local)."""
    from .loading.checkpoint import TensorSource
    from .loading.single_file import read_metadata

    path = Path(model)
    if path.is_dir():
        config = path / "transformer" / "config.json"
        return json.loads(config.read_text(encoding="utf-8")).get("num_layers") if config.is_file() else None
    if path.is_file():
        with TensorSource([path], str(path)) as source:
            section = read_metadata(source).get("config", {})
        return section.get("transformer", {}).get("num_layers") if isinstance(section, dict) else None
    return None


def _check_reference_size(args: argparse.Namespace) -> None:
    """The IC-LoRA's downscale factor must leave stage 1's size on the VAE's grid (the pipeline's rule, checked here
    before anything loads, in the terms of the size asked for)."""
    factor, spatial = args.reference_downscale_factor, VIDEO_VAE_COMPRESSION[1]
    width, height = args.stage_one["width"], args.stage_one["height"]
    if (width // factor) % spatial == 0 and (height // factor) % spatial == 0:
        return
    stage = f"stage 1 runs at {width}x{height}, 1/{args.upscale:g} of it, and " if args.stage_two is not None else ""
    raise UsageError(f"--width {args.width} --height {args.height}: {stage}the IC-LoRA's references are downscaled "
                     f"x{factor}, which must leave a multiple of {spatial} pixels; make the "
                     f"{'stage-1 ' if stage else ''}size a multiple of {spatial * factor}")


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


@dataclass(frozen=True)
class ModelFiles:
    """What a run reads: the pipeline (folder, single file or Hub name), the latent upsampler (a diffusers folder or
    a single file, local or on the Hub) and the distilled LoRA (None: there is none)."""

    model: str
    upsampler: str
    distilled_lora: str | None


def model_files(args: argparse.Namespace) -> ModelFiles:
    """The files of --model's LTX version a run with these arguments uses: those found beside a local model, those
    of Lightricks' release on the Hub."""
    release = RELEASES[args.version]
    upsampler_file = release.upsamplers[args.upscale]
    model = args.model or (f"{release.repo}/{release.distilled}" if args.preset == "distilled" else DEFAULT_REPO)
    path = Path(model)
    if path.exists():
        beside = path if path.is_dir() else path.parent
        # A diffusers folder's latent_upsampler/ is the x2 one.
        upsampler = path / "latent_upsampler" if path.is_dir() and args.upscale == 2.0 else beside / upsampler_file
        lora = beside / release.distilled_lora
        return ModelFiles(model, str(upsampler), str(lora) if lora.is_file() else None)
    repo = "/".join(model.split("/")[:2])
    upsampler = f"{repo}/latent_upsampler" if args.upscale == 2.0 and not model.endswith(".safetensors") else \
        f"{repo}/{upsampler_file}"
    lora = f"{repo}/{release.distilled_lora}" if repo == release.repo or model.endswith(".safetensors") else None
    return ModelFiles(model, upsampler, lora)


def load_model(args: argparse.Namespace, dtype: Any) -> Model:
    """The pipeline for --model, with the latent upsampler and distilled LoRA of its LTX version (`model_files`)."""
    from . import LTX2LatentUpsamplerModel, LTX2Pipeline
    from .loading.hub import resolve_file

    files = model_files(args)
    text = _text_encoder(args.text_encoder, dtype) if args.text_encoder is not None else {}
    single = files.model.endswith(".safetensors") and not Path(files.model).is_dir()
    load = LTX2Pipeline.from_single_file if single else LTX2Pipeline.from_pretrained
    # The optional parts the run does not use are not loaded.
    unused = {name: None for name, used in (("duration_head", args.num_frames is None),
                                            ("diffusion_decoder", args.decoder == "diffusion")) if not used}
    pipeline = load(files.model, torch_dtype=dtype, **text, **unused)
    if files.upsampler.endswith(".safetensors"):
        upsampler = partial(LTX2LatentUpsamplerModel.from_single_file, files.upsampler, torch_dtype=dtype)
    elif Path(files.upsampler).is_dir():
        upsampler = partial(LTX2LatentUpsamplerModel.from_pretrained, files.upsampler, torch_dtype=dtype)
    else:
        upsampler = partial(LTX2LatentUpsamplerModel.from_pretrained, files.upsampler.rpartition("/")[0],
                            subfolder="latent_upsampler", torch_dtype=dtype)
    lora = files.distilled_lora
    if lora is None or Path(lora).is_file():
        return Model(pipeline, upsampler, lambda: lora)
    return Model(pipeline, upsampler, lambda: str(resolve_file(*lora.rsplit("/", 1))))


def _text_encoder_folders(folder: Path) -> tuple[Path, Path]:
    """(Gemma's folder, its tokenizer's folder) in a --text-encoder folder: a pipeline folder's text_encoder/ and
    tokenizer/, or a Gemma 3 model folder holding both."""
    if (folder / "text_encoder" / "config.json").is_file():
        return folder / "text_encoder", folder / "tokenizer"
    return folder, folder


def _text_encoder(folder: str, dtype: Any) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from .text import load_text_encoder

    model, tokenizer = _text_encoder_folders(Path(folder))
    return {"text_encoder": load_text_encoder(model, dtype), "tokenizer": AutoTokenizer.from_pretrained(tokenizer)}


def _place(pipeline: Any, args: argparse.Namespace) -> None:
    if args.offload == "model":
        pipeline.enable_model_cpu_offload(device=args.device)
    elif args.offload == "sequential":
        pipeline.enable_sequential_cpu_offload(device=args.device)
    else:
        pipeline.to(args.device)


@dataclass
class Loaded:
    """A model loaded once for many generations: the pipeline (LoRAs applied, placed, shared among the ranks) and
    its two-stage extras."""

    pipeline: Any
    model: Model
    launch: Launch

    @functools.cached_property
    def upsampler(self) -> Any:
        return self.model.upsampler()

    @functools.cached_property
    def distilled_lora(self) -> str | None:
        return self.model.distilled_lora()


def load(args: argparse.Namespace, launch: Launch, timings: Timings) -> Loaded:
    """Load --model with the --lora adapters on --device (--offload), shared among the ranks under torchrun."""
    import torch

    with timings.stage("loading"):
        model = load_model(args, getattr(torch, DTYPES[args.dtype]))
        pipe = model.pipeline
        pipe.get_list_adapters()  # makes the LoRA state here, on the loaded pipeline, so every run's view shares it
        for index, lora in enumerate(args.lora):
            pipe.load_lora_weights(lora.path, adapter_name=f"user_{index}")
        _place(pipe, args)
        if launch.world > 1:
            _share(pipe, args, launch, timings)
    return Loaded(pipe, model, launch)


def render(
    loaded: Loaded, args: argparse.Namespace, timings: Timings, callback: Callable[..., dict[str, Any]] | None = None,
) -> tuple[Any, Any]:
    """One generation of the settled `args` on a loaded model: (video frames, audio waveform). `callback` is called
    after every sampling step of every stage (as callback_on_step_end)."""
    import torch

    # This run's view of the loaded pipeline, as the pipeline class its inputs need: the same components, LoRA and
    # placement state; what the run changes on it (schedulers, timing wrappers) stays in the view.
    pipe = copy.copy(loaded.pipeline)
    pipe.__class__ = _pipeline_class(args)
    if pipe.get_list_adapters():
        # Each run starts with the user's adapters alone: an earlier run's stage 2 may have changed them.
        pipe.set_adapters([f"user_{index}" for index in range(len(args.lora))], [lora.scale for lora in args.lora])
        pipe.enable_lora()
    prompt = args.prompt
    if args.enhance_prompt:
        with timings.stage("prompt enhancement"):
            # The picture Gemma sees: the --image, else the first --condition's first frame (as diffusers picks it).
            picture = args.condition[0].frames[0] if args.image is None and args.condition else args.image
            prompt = pipe.enhance_prompt(prompt, seed=args.seed, image=picture)[0]
        if loaded.launch.rank == 0:
            print(f"ltx2: enhanced prompt: {prompt}", file=sys.stderr)
    for method, name in (("encode_prompt", "text encoding"), ("denoise", "denoising"), ("decode", "decoding")):
        timings.wrap(pipe, method, name)
    if args.num_frames is None:
        _announce_duration(pipe, args, loaded.launch)
    common: dict[str, Any] = dict(prompt=prompt, negative_prompt=args.negative_prompt, num_frames=args.num_frames,
                                  frame_rate=args.fps, generator=torch.Generator().manual_seed(args.seed),
                                  decoder=args.decoder, return_dict=False, callback_on_step_end=callback,
                                  **_conditions(args))
    references = _references(args)
    if args.hdr:  # the HDR outputs (tone-mapped, 10-bit, EXR) are written by cli_hdr itself
        cli_hdr.run(pipe, args, common, timings, write=loaded.launch.rank == 0)
        return None, None
    if args.preset == "dfr":
        args.temporal_upsampler = cli_dfr.temporal_upsampler_loader(args.model, getattr(torch, DTYPES[args.dtype]))
        return cli_dfr.run(pipe, loaded.upsampler, args, common, timings)
    if args.stage_two is None:
        return pipe(**args.stage_one, output_type="np", **common, **references)
    return two_stages(pipe, loaded, args, common, references, timings)


def write(loaded: Loaded, args: argparse.Namespace, video: Any, audio: Any) -> None:
    """Write the MP4 with sound to args.output (atomically)."""
    from . import encode_video

    encode_video(video[0], fps=args.fps, audio=audio[0].float().cpu(),
                 audio_sample_rate=loaded.pipeline.vocoder.config.output_sampling_rate, output_path=args.output)


def step_count(args: argparse.Namespace) -> int:
    """The sampling steps of a run, over its stages."""
    return sum(len(stage["sigmas"]) if stage.get("sigmas") is not None else stage["num_inference_steps"]
               for stage in (args.stage_one, args.stage_two) if stage is not None)


def generate(args: argparse.Namespace, launch: Launch) -> dict[str, float]:
    """Run the chosen preset and write args.output (rank 0); returns seconds per stage."""
    import torch

    timings = Timings(verbose=launch.rank == 0)
    if args.device.startswith("cuda"):
        timings.synchronize = torch.cuda.synchronize
    loaded = load(args, launch, timings)
    video, audio = render(loaded, args, timings)
    if video is None:
        return timings.seconds
    if launch.rank == 0:
        with timings.stage("writing"):
            write(loaded, args, video, audio)
    return timings.seconds


def _announce_duration(pipe: Any, args: argparse.Namespace, launch: Launch) -> None:
    """Print the length the duration head predicts (rank 0) and keep it in args.num_frames."""
    predict = pipe.predict_duration

    def announced(*arguments: Any, **options: Any) -> Any:
        duration = predict(*arguments, **options)
        args.num_frames = duration.num_frames
        if launch.rank == 0:
            print(f"ltx2: predicted length {duration.seconds:.2f} s: {duration.num_frames} frames "
                  f"({duration.num_frames / args.fps:.2f} s at {args.fps:g} fps)", flush=True)
        return duration

    pipe.predict_duration = announced


def _pipeline_class(args: argparse.Namespace) -> type:
    from . import (
        LTX2ConditionPipeline,
        LTX2DFRPipeline,
        LTX2HDRPipeline,
        LTX2ImageToVideoPipeline,
        LTX2InContextPipeline,
        LTX2Pipeline,
    )

    if args.preset == "dfr":
        return LTX2DFRPipeline
    if args.hdr:
        return LTX2HDRPipeline
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
    pipe: Any, loaded: Loaded, args: argparse.Namespace, common: dict[str, Any], references: dict[str, Any],
    timings: Timings,
) -> Any:
    """The library's two-stage flow (ltx2.pipelines.two_stage) for --preset: frame conditions apply to both stages;
    references and their IC-LoRAs to stage 1 only, as in Lightricks' IC-LoRA pipeline, so that stage 2 runs without
    the user's LoRAs then."""
    from .pipelines.two_stage import DISTILLED_LORA_ADAPTER, generate_two_stages

    adapters = None
    if args.lora:
        adapters = {} if references else {f"user_{index}": lora.scale for index, lora in enumerate(args.lora)}
    distilled = None
    if args.preset == "two-stage":
        with timings.stage("loading"):
            path = loaded.distilled_lora
        if path is None:
            timings.note("no distilled LoRA beside --model; stage 2 runs without it")
        elif any(DISTILLED_LORA_ADAPTER in names for names in pipe.get_list_adapters().values()):
            adapters = {**(adapters or {}), DISTILLED_LORA_ADAPTER: 1.0}  # loaded by an earlier run
        else:
            distilled = path
    return generate_two_stages(
        pipe, lambda: loaded.upsampler, args.stage_one, args.stage_two, common, references=references,
        stage_one_distilled=args.preset == "distilled", distilled_lora=distilled, stage_two_adapters=adapters,
        place=partial(_place, args=args), stage=timings.stage,
    )


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
    from .tiny import IC_LORA_FILE, make_tiny_pipeline

    folder = make_tiny_pipeline(args.folder, version=args.version, with_loras=args.with_loras)
    print(f"ltx2: wrote a tiny random-weight LTX-{args.version} pipeline to {folder} (for a smoke run; its output is "
          "noise)")
    length = "" if args.version == LTX_2_5 else "--num-frames 25 "  # LTX-2.5's duration head predicts it
    print(f"  try: ltx2 generate --model {folder} --prompt \"a robot dancing in the rain\" --width 512 --height 384 "
          f"{length}--steps 4 --output smoke.mp4")
    if args.with_loras:
        print(f"  and: ltx2 generate --model {folder} --prompt \"a robot\" --width 512 --height 384 --num-frames 25 "
              f"--steps 4 --reference-video smoke.mp4 --lora {Path(folder) / IC_LORA_FILE} --output controlled.mp4")


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def _interrupt_once(signum: int, frame: Any) -> NoReturn:
    # Under torchrun a Ctrl-C reaches each rank twice (from the terminal, then forwarded by torchrun): the first
    # stops the run, a second must not break off the report of the first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def main(argv: list[str] | None = None) -> int:
    launch = Launch.from_environment()
    if launch.world == 1:
        # Under torchrun SIGTERM keeps its default action, which ends a rank even while it waits in a collective:
        # that is how torchrun stops the other ranks once one has failed.
        signal.signal(signal.SIGTERM, _terminate)
    else:
        signal.signal(signal.SIGINT, _interrupt_once)
    try:
        return _run(argv, launch)
    except KeyboardInterrupt:
        # Also when the interrupt lands while a failure is being reported: under torchrun a rank waiting in a
        # collective sees its interrupted peer leave (an error) before its own Ctrl-C is handled.
        launch.report("ltx2: interrupted; no output written")
        return 130


def _run(argv: list[str] | None, launch: Launch) -> int:
    """Run the command; the exit status for a bad argument (2), a failure (1) or success (0), with one line."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            run_generate(args, launch)
        elif args.command == "serve":
            from .serve.server import run_serve

            run_serve(args, launch)
        elif launch.rank == 0:  # under torchrun only generate is shared; the others run once
            from .official.commands import run_retake

            {"info": run_info, "make-tiny": run_make_tiny, "retake": run_retake}[args.command](args)
    except UsageError as error:
        launch.report(f"ltx2: error: {_one_line(error)}")
        return 2
    except Exception as error:
        from .loading.checkpoint import CheckpointError, ConfigMismatchError

        # A bad config (wrong types, or block counts and widths its weights do not have) is bad input, like a bad
        # argument; a checkpoint that cannot be read is a failure.
        if isinstance(error, ValueError) and (not isinstance(error, CheckpointError)
                                              or isinstance(error, ConfigMismatchError)):
            launch.report(f"ltx2: error{launch.where}: {_one_line(error)}")
            return 2
        launch.report(f"ltx2: failed{launch.where}: {type(error).__name__}: {_one_line(error)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
