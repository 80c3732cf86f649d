"""encode_video: MP4 streams, accepted formats, atomic writes, bad input."""

from fractions import Fraction

import av
import numpy as np
import PIL.Image
import pytest
import torch

import ltx2.export
from ltx2 import encode_video

FRAMES, HEIGHT, WIDTH, FPS, RATE = 9, 32, 48, 24, 24000


def probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        info = dict(frames=len(frames), size=(video.width, video.height), fps=video.average_rate, first=frames[0])
        if audio is not None:
            container.seek(0)
            samples = sum(frame.samples for frame in container.decode(audio=0))
            info.update(audio_rate=audio.rate, audio_channels=audio.channels, audio_samples=samples)
    return info


def test_video_and_audio_streams(tmp_path):
    video = np.random.default_rng(0).random((FRAMES, HEIGHT, WIDTH, 3), dtype=np.float32)
    audio = torch.sin(torch.linspace(0, 2000, RATE // 2))[None].repeat(2, 1) * 0.5  # 0.5 s of stereo
    path = tmp_path / "out.mp4"
    encode_video(video, fps=FPS, audio=audio, audio_sample_rate=RATE, output_path=str(path))
    info = probe(path)
    assert info["frames"] == FRAMES and info["size"] == (WIDTH, HEIGHT) and info["fps"] == Fraction(FPS)
    assert info["audio_rate"] == RATE and info["audio_channels"] == 2
    # AAC adds at most one frame of priming / padding.
    assert abs(info["audio_samples"] - RATE // 2) <= 2048
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize(
    "make",
    [
        lambda pixels: pixels,  # uint8 (F, H, W, 3)
        lambda pixels: pixels / 255.0,  # float [0, 1]
        lambda pixels: torch.from_numpy(pixels),  # uint8 tensor
        lambda pixels: torch.from_numpy(pixels).permute(0, 3, 1, 2) / 255.0,  # pipeline "pt" frames
        lambda pixels: [PIL.Image.fromarray(frame) for frame in pixels],  # pipeline "pil" frames
    ],
    ids=["uint8", "float", "tensor", "tensor-channels-first", "pil"],
)
def test_accepted_frame_formats(tmp_path, make):
    pixels = np.full((FRAMES, HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    pixels[:, :, : WIDTH // 2, 0] = 250
    path = tmp_path / "formats.mp4"
    encode_video(make(pixels), FPS, output_path=path)
    info = probe(path)
    assert info["frames"] == FRAMES and info["size"] == (WIDTH, HEIGHT)
    assert abs(int(info["first"][HEIGHT // 2, 4, 0]) - 250) < 12 and abs(int(info["first"][HEIGHT // 2, -4, 0]) - 128) < 12


def test_mono_audio_and_the_newer_positional_path(tmp_path):
    path = tmp_path / "mono.mp4"
    encode_video(np.zeros((3, 16, 16, 3), np.uint8), 8, audio=np.zeros(8000, np.float32), audio_sample_rate=16000,
                 output_path=path)
    assert probe(path)["audio_channels"] == 2
    encode_video(np.zeros((3, 16, 16, 3), np.uint8), 8, str(tmp_path / "silent.mp4"))
    assert "audio_rate" not in probe(tmp_path / "silent.mp4")


def test_odd_sizes_are_padded(tmp_path):
    path = tmp_path / "odd.mp4"
    encode_video(np.zeros((2, 15, 17, 3), np.uint8), 8, output_path=path)
    assert probe(path)["size"] == (18, 16)


def test_failure_leaves_no_file(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ltx2.export, "_write", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        encode_video(np.zeros((2, 16, 16, 3), np.uint8), 8, output_path=tmp_path / "never.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(video=np.zeros((0, 16, 16, 3), np.uint8)), "video"),
        (dict(video=np.zeros((2, 16, 16), np.uint8)), "video"),
        (dict(video=[]), "video"),
        (dict(fps=0), "fps"),
        (dict(audio=np.zeros(100, np.float32)), "audio_sample_rate"),
        (dict(audio=np.zeros((3, 100), np.float32), audio_sample_rate=8000), "audio"),
        (dict(output_path=None), "output_path"),
    ],
)
def test_bad_input_names_argument(tmp_path, kwargs, message):
    arguments = dict(video=np.zeros((2, 16, 16, 3), np.uint8), fps=8, output_path=tmp_path / "x.mp4", **{})
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        encode_video(**arguments)
    assert not (tmp_path / "x.mp4").exists()
