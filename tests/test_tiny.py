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


def test_ltx_2_3_has_its_x1_5_upsampler_beside_it(tmp_path):
    """make-tiny --version 2.3 writes the x1.5 upsampler as Lightricks ships it (an original single file under its
    release name), so that `--upscale 1.5` runs offline."""
    from ltx2 import LTX2LatentUpsamplerModel

    folder = make_tiny_pipeline(tmp_path / "pipeline", seed=0, version="2.3")
    upsampler = LTX2LatentUpsamplerModel.from_single_file(folder / "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors")
    assert upsampler.config.use_rational_resampler and upsampler.config.rational_spatial_scale == 1.5
    with torch.no_grad():
        assert upsampler(torch.randn(1, 8, 2, 4, 6)).shape == (1, 8, 2, 6, 9)


def test_its_gemma_enhances_prompts_with_and_without_an_image(tiny_folder):
    """The tiny Gemma 3 chats in Gemma's layout (turn and image tokens whole, the system prompt in the first user
    turn) and rewrites a prompt, also from a first frame through its vision tower."""
    from PIL import Image

    pipe = LTX2Pipeline.from_pretrained(tiny_folder)
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a cat"}]
    text = pipe.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text == "<start_of_turn>user\nbe brief\n\na cat<end_of_turn>\n<start_of_turn>model\n"
    tokens = pipe.tokenizer.convert_ids_to_tokens(pipe.tokenizer(text).input_ids)
    assert tokens == ["<bos>", "<start_of_turn>", "<unk>", "<unk>", "<unk>", "a", "cat", "<end_of_turn>",
                      "<start_of_turn>", "<unk>"]
    plain = pipe.enhance_prompt("a cat", max_new_tokens=12, seed=1)[0]
    pictured = pipe.enhance_prompt("a cat", max_new_tokens=12, seed=1, image=Image.new("RGB", (40, 24), "red"))[0]
    assert plain and pictured and plain != pictured  # the image took part
