"""Writing generated video and audio to an MP4 (H.264 yuv420p + AAC stereo) with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import PIL.Image
import torch

from .files import atomic_write


def video_frames(video: Any) -> np.ndarray:
    """Any frame format the pipelines return -> (F, H, W, 3): floats in [0, 1] or uint8 pixels, not yet
    converted (see `frame_uint8`).

    Tensors may be (F, H, W, 3) or (F, 3, H, W); a list of PIL images is stacked.
    """
    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError("video is an empty list of frames")
        if all(isinstance(frame, PIL.Image.Image) for frame in video):
            video = np.stack([np.asarray(frame.convert("RGB")) for frame in video])
        else:
            video = np.stack([np.asarray(frame) for frame in video])
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu()
        if video.ndim == 4 and video.shape[1] == 3 and video.shape[-1] != 3:
            video = video.permute(0, 2, 3, 1)
        video = video.float().numpy() if video.is_floating_point() else video.numpy()
    if not isinstance(video, np.ndarray):
        raise ValueError(f"video must be frames as an array, tensor or list of PIL images, got {type(video).__name__}")
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] == 0:
        raise ValueError(f"video must have shape (frames, height, width, 3), got {video.shape}")
    return video


def frame_uint8(frame: np.ndarray) -> np.ndarray:
    """One (H, W, 3) frame as uint8 pixels: floats are clipped to [0, 1], scaled and rounded. Done a frame at a
    time: on CPU, float temporaries the size of the whole video cost about as much as the H.264 encoder."""
    if frame.dtype == np.uint8:
        return frame
    return (np.clip(frame, 0.0, 1.0) * 255).round().astype(np.uint8)


def _stereo_int16(audio: Any) -> np.ndarray:
    """A waveform (N,), (1, N), (2, N), (N, 1) or (N, 2) in [-1, 1] -> (N, 2) int16 (mono is duplicated)."""
    samples = audio.detach().float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if samples.ndim == 1 or (samples.ndim == 2 and 1 in samples.shape):
        samples = np.repeat(samples.reshape(-1, 1), 2, axis=1)
    elif samples.ndim == 2 and samples.shape[0] == 2 and samples.shape[1] != 2:
        samples = samples.T
    if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
        raise ValueError(f"audio must be a mono or stereo waveform such as (2, samples), got shape {np.shape(audio)}")
    if samples.dtype == np.int16:
        return samples
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def _write(path: str, frames: np.ndarray, fps: float, audio: np.ndarray | None, sample_rate: int | None) -> None:
    with av.open(path, mode="w") as container:
        video_stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        # yuv420p needs even sizes: repeat the last row / column when a side is odd.
        height, width = frames.shape[1] + frames.shape[1] % 2, frames.shape[2] + frames.shape[2] % 2
        padding = ((0, height - frames.shape[1]), (0, width - frames.shape[2]), (0, 0))
        video_stream.width, video_stream.height, video_stream.pix_fmt = width, height, "yuv420p"
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.codec_context.layout = "stereo"
            audio_stream.codec_context.time_base = Fraction(1, sample_rate)
        for frame in frames:
            pixels = np.pad(frame_uint8(frame), padding, "edge")
            container.mux(video_stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video_stream.encode())
        if audio_stream is not None:
            interleaved = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="s16", layout="stereo")
            interleaved.sample_rate = sample_rate
            resampler = av.AudioResampler(format=audio_stream.codec_context.format or "fltp", layout="stereo",
                                          rate=sample_rate)
            for chunk in resampler.resample(interleaved):
                container.mux(audio_stream.encode(chunk))
            container.mux(audio_stream.encode())


def encode_video(
    video: Any,
    fps: float,
    audio: Any = None,
    audio_sample_rate: int | None = None,
    output_path: str | Path | None = None,
    video_chunks_number: int = 1,
) -> None:
    """Write `video` (and optionally `audio`) to an MP4 at `output_path`.

    video: (F, H, W, 3) floats in [0, 1] or uint8, (F, 3, H, W) tensors, or PIL images; audio: a waveform as
    (2, N), (N, 2) or mono, in [-1, 1], at `audio_sample_rate`. The file appears only when complete: it is
    written under a temporary name in the same folder and renamed. `video_chunks_number` is accepted for
    compatibility; frames are always encoded one at a time.
    """
    if isinstance(audio, (str, os.PathLike)) and output_path is None:
        # diffusers' newer order, encode_video(video, fps, output_path), for a video without sound
        audio, output_path = None, audio
    if output_path is None:
        raise ValueError("output_path is required")
    if not fps or fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if video_chunks_number < 1:
        raise ValueError(f"video_chunks_number must be >= 1, got {video_chunks_number}")
    if audio is not None and (audio_sample_rate is None or audio_sample_rate <= 0):
        raise ValueError(f"audio_sample_rate must be a positive rate when audio is given, got {audio_sample_rate}")
    frames = video_frames(video)
    samples = _stereo_int16(audio) if audio is not None else None
    target = Path(output_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda temporary: _write(temporary, frames, fps, samples, audio_sample_rate),
                 suffix=".partial.mp4")
