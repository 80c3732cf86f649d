"""What a job is and how it runs: a request's fields become the command line of `ltx2 generate`, checked by the
CLI's own rules; one worker thread runs the queue on the loaded model through the CLI's render and write.

A job's settings (stored as JSON) are the request's, sizes and frame counts resolved; they are turned into
`ltx2 generate` arguments when the job is created (to check them) and again when it runs. An extension's folder
holds a copy of its source video and the clip of its last frames that conditions the start of the new video.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import (
    Launch,
    Loaded,
    Timings,
    UsageError,
    build_parser,
    check_generate_arguments,
    render,
    step_count,
    write,
)
from .store import Job, Store

VIDEO, THUMBNAIL, SPRITESHEET = "video.mp4", "thumbnail.jpg", "spritesheet.jpg"
IMAGE, SOURCE, CONDITION = "input_reference", "source.mp4", "condition.mp4"
# An extension is conditioned on the source's last frames: one latent frame and its 8 pixel frames, at most.
EXTENSION_OVERLAP = 9
SPRITES, SPRITE_COLUMNS, SPRITE_WIDTH = 16, 4, 160
# The command-line option of each request field, to name the field when the CLI's checks reject a value.
FIELDS = {"--prompt": "prompt", "--negative-prompt": "negative_prompt", "--preset": "preset", "--width": "size",
          "--height": "size", "--num-frames": "num_frames", "--fps": "frame_rate", "--seed": "seed",
          "--steps": "num_inference_steps", "--guidance": "guidance_scale", "--image": "input_reference",
          "--condition": "video"}


class ApiError(Exception):
    """A request the API refuses: the HTTP status, the message and the field it names."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


@dataclass
class Served:
    """The model the server has loaded and the settings every job shares."""

    model: str
    model_id: str
    version: str
    preset: str
    dtype: str
    device: str
    flags: list[str]  # the server-wide `ltx2 generate` options (--dtype, --device, --offload, --lora, ...)
    max_queue: int
    max_frames: int
    loaded: Loaded | None = None


def generate_arguments(settings: dict[str, Any], folder: Path, served: Served) -> list[str]:
    """The `ltx2 generate` command line of a job."""
    argv = ["generate", "--model", served.model, "--prompt", settings["prompt"], "--preset", settings["preset"],
            "--num-frames", str(settings["num_frames"]), "--fps", repr(settings["fps"]),
            "--seed", str(settings["seed"]), "--output", str(folder / VIDEO), *served.flags]
    for option, key in (("--width", "width"), ("--height", "height"), ("--steps", "steps"),
                        ("--guidance", "guidance"), ("--negative-prompt", "negative_prompt")):
        if settings.get(key) is not None:
            argv += [option, str(settings[key])]
    if settings.get("image"):
        argv += ["--image", str(folder / IMAGE)]
    if settings.get("overlap"):
        argv += ["--condition", f"{folder / CONDITION}@0"]
    return argv


def settle(settings: dict[str, Any], folder: Path, served: Served, launch: Launch) -> argparse.Namespace:
    """The job's settled `ltx2 generate` arguments; ApiError (400, naming the field) where the CLI refuses them."""
    try:
        args = build_parser().parse_args(generate_arguments(settings, folder, served))
        check_generate_arguments(args, launch)
    except (UsageError, ValueError) as error:
        message = " ".join(str(error).replace(str(folder) + os.sep, "").split())
        option = re.search(r"--[a-z-]+", message)
        for name, field_name in {**FIELDS, "--width": "size width", "--height": "size height"}.items():
            message = re.sub(f"{name}\\b", field_name, message)
        raise ApiError(400, message, FIELDS.get(option.group(0)) if option else None) from None
    if args.num_frames > served.max_frames:
        raise ApiError(400, f"num_frames {args.num_frames}: at most {served.max_frames} frames are served",
                       "num_frames")
    return args


def frames_for(seconds: float, fps: float) -> int:
    """The 8k+1 frame count nearest `seconds` at `fps` (at least 9)."""
    return max(1, round(seconds * fps / 8)) * 8 + 1


def seconds_text(num_frames: int, fps: float) -> str:
    return f"{num_frames / fps:.3g}"


def prepare_extension(source_video: Path, folder: Path, fps: float) -> tuple[int, int]:
    """Copy the source video and write the clip of its last frames; the source's frame count and the clip's."""
    from .. import encode_video

    frames = read_frames(source_video)
    overlap = min(EXTENSION_OVERLAP, (len(frames) - 1) // 8 * 8 + 1)
    shutil.copyfile(source_video, folder / SOURCE)
    encode_video(frames[-overlap:], fps=fps, output_path=folder / CONDITION)
    return len(frames), overlap


def read_frames(path: Path) -> np.ndarray:
    """A video's frames as (F, H, W, 3) uint8."""
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """The audio track as float stereo (2, N) at `sample_rate`."""
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate)
        chunks = [chunk.to_ndarray() for frame in container.decode(audio=0) for chunk in resampler.resample(frame)]
        chunks += [chunk.to_ndarray() for chunk in resampler.resample(None)]
    return np.concatenate(chunks, axis=1)


def write_image_atomic(image: Any, path: Path) -> None:
    """Save a PIL image under a temporary name beside `path`, then rename it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    try:
        image.save(temporary, quality=90)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_previews(frames: np.ndarray, folder: Path) -> None:
    """The thumbnail (the first frame) and the spritesheet (up to 16 frames spread over the video, 4 a row), from
    (F, H, W, 3) frames, floats or uint8: only the frames shown are converted."""
    from PIL import Image

    from ..export import frame_uint8

    write_image_atomic(Image.fromarray(frame_uint8(frames[0])), folder / THUMBNAIL)
    picks = np.linspace(0, len(frames) - 1, min(SPRITES, len(frames))).round().astype(int)
    height, width = frames.shape[1:3]
    sprite = (SPRITE_WIDTH, max(1, round(height * SPRITE_WIDTH / width)))
    rows = math.ceil(len(picks) / SPRITE_COLUMNS)
    sheet = Image.new("RGB", (sprite[0] * min(SPRITE_COLUMNS, len(picks)), sprite[1] * rows))
    for place, index in enumerate(picks):
        tile = Image.fromarray(frame_uint8(frames[index])).resize(sprite, Image.Resampling.BILINEAR)
        sheet.paste(tile, ((place % SPRITE_COLUMNS) * sprite[0], (place // SPRITE_COLUMNS) * sprite[1]))
    write_image_atomic(sheet, folder / SPRITESHEET)


class Cancelled(Exception):
    """The job was deleted, or the server is stopping, while it ran."""


Render = Callable[[argparse.Namespace, Callable[..., dict[str, Any]]], tuple[Any, Any]]


@dataclass
class Worker:
    """Runs the queue, oldest first, one job at a time, on the loaded model."""

    store: Store
    served: Served
    render: Render
    launch: Launch = field(default_factory=Launch)
    wake: threading.Event = field(default_factory=threading.Event)
    cancelled: set[str] = field(default_factory=set)
    running: str | None = None
    stopping: bool = False
    unavailable: Callable[[], str | None] = lambda: None  # why no job can run (a --parallel rank is lost)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.loop, name="ltx2-worker", daemon=True)
        thread.start()
        return thread

    def loop(self) -> None:
        while not self.stopping:
            job = self.store.start_next()
            if job is None:
                self.wake.wait(1.0)
                self.wake.clear()
                continue
            self.running = job.id
            try:
                self.run(job)
            finally:
                self.running = None
                self.cancelled.discard(job.id)

    def cancel(self, job_id: str) -> None:
        self.cancelled.add(job_id)

    def run(self, job: Job) -> None:
        folder = self.store.folder(job.id)
        start = time.perf_counter()
        error = None
        try:
            args = settle(job.settings, folder, self.served, self.launch)
            video, audio = self.render(args, self._progress(job.id, step_count(args)))
            self._save(job, args, video, audio)
        except Cancelled:
            if self.stopping and job.id not in self.cancelled:
                self.store.requeue(job.id)
                return
        except ApiError as failure:
            error = {"code": "invalid_request", "message": failure.message}
        except Exception as failure:  # the job fails, the server goes on
            message = " ".join(str(failure).split())
            error = {"code": "generation_failed", "message": f"{type(failure).__name__}: {message}"}
        if job.id in self.cancelled or not self.store.finish(job.id, error):
            shutil.rmtree(folder, ignore_errors=True)  # deleted while it ran
            return
        outcome = f"failed: {error['message']}" if error else "completed"
        print(f"ltx2 serve: {job.id} {outcome} ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    def _progress(self, job_id: str, total: int) -> Callable[..., dict[str, Any]]:
        done = [0, -1]

        def callback(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if job_id in self.cancelled or self.stopping:
                raise Cancelled(job_id)
            done[0] += 1
            progress = min(99, 100 * done[0] // total)  # 100 once the files are written
            if progress != done[1]:
                done[1] = progress
                self.store.set_progress(job_id, progress)
            return {}

        return callback

    def _save(self, job: Job, args: argparse.Namespace, video: Any, audio: Any) -> None:
        """The MP4 (the source and the new frames, for an extension), then the previews; each written atomically,
        all before the job is marked completed."""
        from ..export import encode_video, frame_uint8, video_frames

        folder = self.store.folder(job.id)
        frames = video_frames(video[0])
        overlap = job.settings.get("overlap")
        if overlap:
            waveform = np.asarray(audio[0].float().cpu())
            sample_rate = self.served.loaded.pipeline.vocoder.config.output_sampling_rate
            source = read_frames(folder / SOURCE)
            source_audio = read_audio(folder / SOURCE, sample_rate)
            waveform = waveform if waveform.ndim == 2 else np.stack([waveform, waveform])
            per_frame = sample_rate / args.fps
            waveform = np.concatenate([source_audio[:, : round(len(source) * per_frame)],
                                       waveform[:, round(overlap * per_frame):]], axis=1)
            frames = np.concatenate([source, [frame_uint8(frame) for frame in frames[overlap:]]])
            encode_video(frames, fps=args.fps, audio=waveform, audio_sample_rate=sample_rate,
                         output_path=folder / VIDEO)
        else:
            write(self.served.loaded, args, video, audio)
        write_previews(frames, folder)


def render_here(loaded: Loaded) -> Render:
    """Render in this process, as `ltx2 generate` does."""

    def run(args: argparse.Namespace, callback: Callable[..., dict[str, Any]]) -> tuple[Any, Any]:
        return render(loaded, args, Timings(verbose=False), callback)

    return run
