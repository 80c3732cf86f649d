"""ltx2.tiny: the random-weight smoke-run pipeline writes, loads offline and generates finite video and audio."""

import json
import os

import numpy as np
import pytest
import torch

from ltx2 import LTX2Pipeline
from ltx2.models.audio_vae import LATENT_DOWNSAMPLE_FACTOR
from ltx2.tiny import is_tiny_pipeline, make_tiny_pipeline


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return make_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipeline", seed=0)


def test_generates_video_and_audio(tiny_folder):
    pipe = LTX2Pipeline.from_pretrained(tiny_folder)
    pipe.set_progress_bar_config(disable=True)
    width, height, num_frames, frame_rate = 128, 96, 17, 24.0
    out = pipe(
        prompt="A robot dancing in the rain, zebra!", width=width, height=height, num_frames=num_frames,
        frame_rate=frame_rate, num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0),
    )
    video, audio = out.frames, out.audio
    assert video.shape == (1, num_frames, height, width, 3)
    assert np.isfinite(video).all() and video.min() >= 0 and video.max() <= 1
    assert video.std() > 0.05  # noise, not a blank clip

    vocoder = pipe.vocoder.config
    hop = pipe.vocoder.upsample_factor  # output samples per mel frame
    audio_vae = pipe.audio_vae.config
    assert hop * audio_vae.sample_rate == audio_vae.mel_hop_length * vocoder.output_sampling_rate
    assert audio.shape[:2] == (1, vocoder.out_channels)
    # Audio latent frames are the clip's duration rounded to whole latents (half a latent off at most), and the
    # causal audio VAE decodes k latents to 4k - 3 mel frames: 3 more mel frames short.
    tolerance = (LATENT_DOWNSAMPLE_FACTOR / 2 + LATENT_DOWNSAMPLE_FACTOR - 1) * hop
    assert abs(audio.shape[2] - num_frames / frame_rate * vocoder.output_sampling_rate) <= tolerance
    assert torch.isfinite(audio).all() and audio.abs().max() > 0


def test_marks_the_folder(tiny_folder, tmp_path):
    assert is_tiny_pipeline(tiny_folder)
    assert json.loads((tiny_folder / "model_index.json").read_text())["_ltx2_tiny_random"] is True
    assert "RANDOM weights" in (tiny_folder / "README.txt").read_text()
    assert not is_tiny_pipeline(tmp_path)


def test_rewrites_a_tiny_pipeline(tiny_folder):
    assert make_tiny_pipeline(tiny_folder, seed=0) == tiny_folder
    assert is_tiny_pipeline(tiny_folder)


def test_refuses_an_unrelated_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        make_tiny_pipeline(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_files_honour_the_umask(tmp_path):
    """Written files get open()'s permissions (0666 less the umask), as a user expects, not a temp file's 0600."""
    previous = os.umask(0o027)
    try:
        folder = make_tiny_pipeline(tmp_path / "pipeline", seed=0)
    finally:
        os.umask(previous)
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert files and {path.stat().st_mode & 0o777 for path in files} == {0o640}
