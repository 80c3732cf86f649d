"""`ltx2 generate` on a tiny LTX-2.5 folder (`ltx2 make-tiny --version 2.5`): the length predicted by the duration
head, the diffusion decoder, the resolved plan, and what LTX-2.5 cannot do, refused before loading."""

import re

import pytest
from commands import ltx2_command as ltx2
from commands import streams


@pytest.fixture(scope="module")
def tiny_2_5(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-2.5") / "tiny"
    result = ltx2("make-tiny", "--version", "2.5", folder)
    assert result.returncode == 0, result.stderr
    assert "LTX-2.5" in result.stdout
    assert (folder / "duration_head").is_dir() and (folder / "diffusion_decoder").is_dir()
    return folder


def test_default_run_predicts_the_length_and_decodes_by_diffusion(tiny_2_5, tmp_path):
    """No --num-frames, --preset or --decoder: the distilled preset in two stages, the duration head's length
    (about 1.5 s, 9 frames at 8 fps), the diffusion decoder."""
    output = tmp_path / "out.mp4"
    result = ltx2("generate", "--model", tiny_2_5, "--prompt", "a robot dancing in the rain", "--width", 128,
                  "--height", 128, "--fps", 8, "--output", output)
    assert result.returncode == 0, result.stderr
    predicted = re.search(r"predicted length (\d+\.\d+) s: (\d+) frames", result.stdout)
    assert predicted is not None, result.stdout
    assert float(predicted[1]) == pytest.approx(1.5, abs=0.1) and int(predicted[2]) == 9
    width, height, frames, duration, audio, channels = streams(output)
    assert (width, height, frames) == (128, 128, 9) and duration == pytest.approx(9 / 8, abs=1e-3)
    assert channels == 2
    assert "9 frames at 8 fps" in result.stdout and result.stderr.count("it/s]") >= 2


def test_one_stage_with_the_vae_decoder_and_a_given_length(tiny_2_5, tmp_path):
    output = tmp_path / "out.mp4"
    result = ltx2("generate", "--model", tiny_2_5, "--prompt", "a cat", "--preset", "one-stage", "--width", 64,
                  "--height", 64, "--num-frames", 9, "--steps", 2, "--decoder", "vae", "--output", output)
    assert result.returncode == 0, result.stderr
    assert "predicted length" not in result.stdout
    assert streams(output)[:3] == (64, 64, 9)


def test_dry_run_shows_the_resolved_plan(tiny_2_5):
    result = ltx2("generate", "--model", tiny_2_5, "--prompt", "a cat", "--dry-run")
    assert result.returncode == 0, result.stderr
    upsampler = "x2: " + str(tiny_2_5 / "latent_upsampler")
    for line in ("LTX version 2.5", "preset         distilled", "length predicted by the duration head",
                 "1 to 20 s at 24 fps", "decoder        diffusion decoder", upsampler):
        assert line in result.stdout, line
    stage_one = next(line for line in result.stdout.splitlines() if line.strip().startswith("stage 1"))
    # 0.42.1's documented LTX-2.5 distilled call: CFG off, STG, modality and rescale at their defaults.
    for setting in ("num_inference_steps=8", "guidance_scale=1.0", "stg_scale=1.0", "modality_scale=3.0",
                    "guidance_rescale=0.7", "audio_guidance_scale=1.0", "width=768", "height=512"):
        assert setting in stage_one, setting
    result = ltx2("generate", "--model", tiny_2_5, "--prompt", "a cat", "--dry-run", "--preset", "one-stage",
                  "--num-frames", 17, "--decoder", "vae", "--image-crf", 0)
    assert result.returncode == 0, result.stderr
    assert "17 frames" in result.stdout and "decoder        VAE" in result.stdout
    assert "num_inference_steps=30 guidance_scale=3.0 stg_scale=1.0" in result.stdout


@pytest.mark.parametrize("arguments, message", [
    (["--upscale", "1.5"], "--upscale 1.5: LTX-2.5 has no x1.5 latent upsampler"),
    (["--condition", "frame.png"], "--condition: give --num-frames too"),
    (["--num-frames", "10"], "--num-frames 10: must be 8k+1"),
    (["--enhance-prompt"], "--enhance-prompt: LTX-2.5 rewrites prompts with a separate Gemma 4 enhancer"),
])
def test_what_ltx_2_5_cannot_do_exits_2_before_loading(tiny_2_5, tmp_path, arguments, message):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "frame.png")
    result = ltx2("generate", "--model", tiny_2_5, "--prompt", "a cat", "--output", "out.mp4", *arguments,
                  cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ltx2: error: ") and message in lines[0], result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["frame.png"]


def test_diffusion_decoder_on_a_model_without_one_exits_2(tmp_path):
    folder = tmp_path / "tiny-2.0"
    assert ltx2("make-tiny", folder).returncode == 0
    result = ltx2("generate", "--model", folder, "--prompt", "a cat", "--decoder", "diffusion", "--output",
                  tmp_path / "out.mp4")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"ltx2: error: --decoder diffusion: --model {folder} (LTX-2.0) has no diffusion "
                                     "decoder (an LTX-2.5 folder ships one in diffusion_decoder/)")
    assert not (tmp_path / "out.mp4").exists()
