"""`ltx2 generate --preset dfr` on the tiny LTX-2.5 folder: a valid MP4 through every stage, the dry-run plan, and
one line with exit code 2 for what the recipe cannot do."""

import shutil

import av
import numpy as np
import PIL.Image
import pytest
import torch
from commands import ltx2_command as ltx2
from safetensors.torch import load_file, save_file

PROMPT = ["--prompt", "a robot dancing in the rain"]


def video_stream(path):
    """(width, height, frames, audio channels or None) of an MP4."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        channels = container.streams.audio[0].channels if container.streams.audio else None
        return video.width, video.height, sum(1 for _ in container.decode(video=0)), channels


def ic_lora(folder, path):
    """A random LoRA in the original format on the tiny transformer's video self-attention queries."""
    lora = {}
    for key, value in load_file(str(folder / "transformer" / "diffusion_pytorch_model.safetensors")).items():
        if key.endswith("attn1.to_q.weight"):
            name = "diffusion_model." + key.removesuffix(".weight")
            lora[f"{name}.lora_A.weight"] = torch.randn(2, value.shape[1])
            lora[f"{name}.lora_B.weight"] = torch.randn(value.shape[0], 2)
    save_file(lora, str(path))
    return path


@pytest.fixture(scope="module")
def folder(ltx_2_5_folder):
    return ltx_2_5_folder[0]


def test_dfr_with_temporal_refine_writes_a_video(folder, tmp_path):
    output = tmp_path / "dfr.mp4"
    result = ltx2("generate", "--model", folder, "--preset", "dfr", "--width", "64", "--height", "64",
                  "--num-frames", "17", "--fps", "8", "--temporal-refine", *PROMPT, "--output", output, timeout=600)
    assert result.returncode == 0, result.stderr
    # The tiny VAE is x2 in time: 17 frames are a 17-frame canvas; one round makes 33 frames at 16 fps.
    assert video_stream(output) == (64, 64, 33, 2)
    for stage in ("stage 1", "upsampling", "stage 2", "temporal 1", "epilogue", "decoding"):
        assert f"  {stage}" in result.stdout
    assert "33 frames at 16 fps" in result.stdout


def test_dry_run_shows_the_plan(folder):
    result = ltx2("generate", "--model", folder, "--preset", "dfr", "--num-frames", "81", "--temporal-refine", "2",
                  *PROMPT, "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1920x1088" in out and "960x544" in out
    assert "81 frames padded to 97 (16 frames of padding): segments of 32, slots at frames 32, 64, 96" in out
    assert "round 2:" in out and "385 frames" in out and "96 fps" in out
    assert "tiles of the 49x34x60 latent grid" in out
    assert "321 frames at 96 fps" in out


@pytest.mark.parametrize("arguments,message", [
    (["--preset", "dfr", "--decoder", "diffusion"], "--decoder diffusion: --model"),  # no diffusion_decoder/ here
    (["--preset", "dfr", "--steps", "4"], "--steps: not with --preset dfr"),
    (["--preset", "dfr", "--width", "1000"], "--width 1000: must be a positive multiple of 64"),
    (["--preset", "dfr", "--temporal-refine", "-1"], "--temporal-refine -1"),
    (["--temporal-refine"], "--temporal-refine 1: only with --preset dfr"),
])
def test_impossible_combinations_exit_2(folder, arguments, message):
    result = ltx2("generate", "--model", folder, "--num-frames", "17", *PROMPT, *arguments, "--dry-run")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def with_decoder(folder, tmp_path_factory):
    """The tiny LTX-2.5 folder with a diffusion decoder (the tiny VAE's layout) in diffusion_decoder/."""
    from ltx2 import LTX2VideoDiffusionDecoderModel

    copy = tmp_path_factory.mktemp("dfr-decoder") / "pipeline"
    shutil.copytree(folder, copy)
    torch.manual_seed(5)
    LTX2VideoDiffusionDecoderModel(
        out_channels=3, latent_channels=4, patch_size=2, decoder_head_dim=8, decoder_stage_channels=(16, 8, 8),
        decoder_stage_depths=(1, 1, 1), decoder_stage_kernels=((3, 3, 3), (3, 3, 3)),
        decoder_upsample_strides=((1, 2, 2), (2, 2, 2)), decoder_upsample_channel_reductions=(2, 1),
        decoder_stage5_kernel=(3, 3, 3), decoder_t_emb_dim=16, spatial_compression_ratio=8,
        temporal_compression_ratio=2).save_pretrained(copy / "diffusion_decoder")
    return copy


def test_dfr_with_an_image_and_the_diffusion_decoder(with_decoder, tmp_path):
    """--image is a condition at frame 0 of every pass; --decoder diffusion decodes the trimmed canvas."""
    image = tmp_path / "first.png"
    y, x = np.mgrid[0:48, 0:80]
    PIL.Image.fromarray(np.stack([x * 3, y * 5, (x * y) % 256], -1).astype(np.uint8)).save(image)
    arguments = ["generate", "--model", with_decoder, "--preset", "dfr", "--width", "64", "--height", "64",
                 "--num-frames", "9", "--fps", "8", "--image", image, "--decoder", "diffusion", *PROMPT]
    plan = ltx2(*arguments, "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "decoding       diffusion decoder, 9 frames at 8 fps" in plan.stdout
    assert f"image          {image}, re-compressed at CRF 18" in plan.stdout
    output = tmp_path / "image.mp4"
    result = ltx2(*arguments, "--output", output, timeout=600)
    assert result.returncode == 0, result.stderr
    assert video_stream(output) == (64, 64, 9, 2)


def test_reference_video_is_not_part_of_the_recipe(folder, sdr_clip, tmp_path):
    lora = ic_lora(folder, tmp_path / "ic-lora.safetensors")
    result = ltx2("generate", "--model", folder, "--preset", "dfr", "--num-frames", "9", "--reference-video",
                  sdr_clip, "--lora", lora, *PROMPT, "--dry-run")
    assert result.returncode == 2 and "--reference-video: not with --preset dfr" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dfr_needs_an_ltx_2_5_model(pipeline_folder):
    result = ltx2("generate", "--model", pipeline_folder[0], "--preset", "dfr", *PROMPT, "--dry-run")
    assert result.returncode == 2 and "needs an LTX-2.5 model" in result.stderr


@pytest.fixture(scope="module")
def sdr_clip(tmp_path_factory):
    """A 9-frame SDR clip, 48x40 (shrunk and padded to the 32x32 video)."""
    from ltx2 import encode_video

    y, x = np.mgrid[0:40, 0:48]
    frames = np.stack([np.stack([128 + 100 * np.sin((x + 3 * t) / 6), 128 + 90 * np.cos((y - t) / 5),
                                 (x * y + 20 * t) % 256], -1) for t in range(9)]).astype(np.uint8)
    path = tmp_path_factory.mktemp("hdr") / "sdr.mp4"
    encode_video(frames, fps=8, output_path=path)
    return path


def test_hdr_writes_tone_mapped_ten_bit_and_exr(folder, sdr_clip, tmp_path):
    lora = ic_lora(folder, tmp_path / "hdr-ic-lora.safetensors")
    output = tmp_path / "hdr.mp4"
    result = ltx2("generate", "--model", folder, "--hdr", "--reference-video", sdr_clip, "--lora", lora,
                  "--width", "32", "--height", "32", "--fps", "8", *PROMPT, "--output", output)
    assert result.returncode == 0, result.stderr
    assert video_stream(output) == (32, 32, 9, None)
    with av.open(str(tmp_path / "hdr.hdr.mp4")) as container:
        context = container.streams.video[0].codec_context
        assert (context.pix_fmt, context.color_trc) == ("yuv420p10le", 16)
    assert len(list((tmp_path / "hdr.exr").glob("frame_*.exr"))) == 9
    assert "  hdr pass" in result.stdout


def test_hdr_needs_one_reference_video(folder, sdr_clip, tmp_path):
    result = ltx2("generate", "--model", folder, "--hdr", *PROMPT, "--dry-run")
    assert result.returncode == 2 and "exactly one --reference-video" in result.stderr
    result = ltx2("generate", "--model", folder, "--hdr", "--reference-video", sdr_clip, "--preset", "dfr", *PROMPT,
                  "--dry-run")
    assert result.returncode == 2 and "--preset dfr: not with --hdr" in result.stderr
