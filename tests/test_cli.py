"""The `ltx2` command, run as a user runs it: in a subprocess, on a tiny pipeline and synthetic checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time

import av
import pytest
import torch
from commands import ENV, streams
from commands import ltx2_command as ltx2
from original_checkpoint import (
    HEADER_CONFIG,
    UPSAMPLER_HEADER,
    make_upsampler_reference,
    quantize_fp8,
    write_combined,
    write_single_file,
)
from safetensors.torch import load_file, save_file

from ltx2.loading.describe import describe

SMALL = ["--width", "128", "--height", "128", "--num-frames", "17", "--steps", "2"]


def linked_copy(folder, target):
    """A pipeline folder whose entries link to `folder`'s, so single parts can be replaced cheaply."""
    target.mkdir()
    for item in folder.iterdir():
        (target / item.name).symlink_to(item, target_is_directory=item.is_dir())
    return target


def original_lora(tiny, path, module="attn1.to_q"):
    """A LoRA in the original format (the distilled LoRA's) on one kind of layer of the tiny transformer."""
    transformer = load_file(str(tiny / "transformer" / "diffusion_pytorch_model.safetensors"))
    lora = {}
    for key, value in transformer.items():
        if key.endswith(f"{module}.weight"):
            name = "diffusion_model." + key.removesuffix(".weight")
            lora[f"{name}.lora_A.weight"] = torch.randn(2, value.shape[1])
            lora[f"{name}.lora_B.weight"] = torch.randn(value.shape[0], 2)
    save_file(lora, str(path))
    return path


@pytest.mark.parametrize("preset, width, height, steps", [
    ("one-stage", 160, 96, ["--steps", "2"]), ("two-stage", 128, 192, ["--steps", "2"]), ("distilled", 128, 128, []),
])
def test_generate_writes_video_and_audio(tiny, tmp_path, preset, width, height, steps):
    output = tmp_path / "out.mp4"
    result = ltx2("generate", "--model", tiny, "--prompt", "a robot dancing in the rain", "--preset", preset,
                  "--width", width, "--height", height, "--num-frames", 17, "--fps", 12, *steps,
                  "--seed", 3, "--output", output)
    assert result.returncode == 0, result.stderr
    video_width, video_height, frames, duration, audio, channels = streams(output)
    assert (video_width, video_height, frames) == (width, height, 17)
    assert duration == pytest.approx(17 / 12, abs=1e-3)
    assert audio.sample_rate == 24000 and channels == 2
    with av.open(str(output)) as container:
        audio_seconds = float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
    assert audio_seconds == pytest.approx(17 / 12, abs=0.1)
    # The summary: seconds per stage, peak memory, the output path; a bar for each denoising loop.
    for stage in ("loading", "text encoding", "denoising", "decoding", "writing", "total", "peak memory"):
        assert stage in result.stdout
    assert str(output) in result.stdout
    assert result.stderr.count("it/s]") >= (1 if preset == "one-stage" else 2)
    assert "output is noise" in result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["out.mp4"]
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0600


def test_image_to_video_and_lora(tiny, tmp_path):
    from PIL import Image

    image = tmp_path / "first.png"
    Image.new("RGB", (128, 128), (200, 30, 30)).save(image)
    original_lora(tiny, tmp_path / "style.safetensors")
    output = tmp_path / "i2v.mp4"
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", "--image", image, "--preset", "one-stage",
                  "--lora", f"{tmp_path / 'style.safetensors'}:0.5", *SMALL, "--output", output)
    assert result.returncode == 0, result.stderr
    assert streams(output)[:3] == (128, 128, 17)


@pytest.fixture(scope="module")
def media(tiny, tmp_path_factory):
    """Pictures of another size than the output, a 12-frame clip, and an IC-LoRA whose metadata asks for
    references at half size (and the same LoRA asking for full size)."""
    import numpy as np
    from PIL import Image

    from ltx2 import encode_video

    folder = tmp_path_factory.mktemp("media")
    Image.new("RGB", (160, 120), (200, 30, 30)).save(folder / "first.png")
    Image.new("RGB", (160, 120), (30, 30, 200)).save(folder / "last.jpg")
    clip = (np.random.default_rng(0).random((12, 96, 128, 3)) * 255).astype(np.uint8)
    encode_video(clip, fps=12, output_path=str(folder / "clip.mp4"))
    lora = load_file(str(original_lora(tiny, folder / "ic.safetensors")))
    save_file(lora, str(folder / "ic.safetensors"), metadata={"reference_downscale_factor": "2"})
    save_file(lora, str(folder / "ic_full.safetensors"), metadata={"reference_downscale_factor": "1"})
    return folder


def test_conditions_place_images_and_clips(tiny, media, tmp_path):
    output = tmp_path / "conditioned.mp4"
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", *SMALL,
                  "--condition", media / "first.png", "--condition", f"{media / 'last.jpg'}@-1:0.9",
                  "--condition", f"{media / 'clip.mp4'}@5", "--output", output)
    assert result.returncode == 0, result.stderr
    assert streams(output)[:3] == (128, 128, 17)
    assert "last.jpg@-1:0.9: placed at frame 9 (latent frame 2)" in result.stderr
    assert "clip.mp4@5: placed at frame 1 (latent frame 1)" in result.stderr
    assert "using its first 9 of 12 frames" in result.stderr


def test_reference_video_with_an_ic_lora(tiny, media, tmp_path):
    """Two stages: the reference (at the LoRA's half size) and the IC-LoRA in stage 1 only, the first frame in both."""
    output = tmp_path / "controlled.mp4"
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", *SMALL, "--reference-video",
                  f"{media / 'clip.mp4'}:0.9", "--lora", media / "ic.safetensors", "--condition", media / "first.png",
                  "--output", output)
    assert result.returncode == 0, result.stderr
    assert streams(output)[:3] == (128, 128, 17)


def test_dry_run_lists_conditions_and_references(tiny, media, tmp_path):
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", *SMALL, "--dry-run",
                  "--condition", f"{media / 'last.jpg'}@-1:0.9", "--reference-video", f"{media / 'clip.mp4'}:0.8",
                  "--lora", media / "ic.safetensors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "last.jpg: 1 frame(s) from frame 9 (latent frame 2), strength 0.9" in result.stdout
    assert "clip.mp4: 9 frames, strength 0.8, downscaled x2 (stage 1)" in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arguments, message", [
    (["--condition", "missing.png"], "--condition missing.png: no such file"),
    (["--condition", __file__], "not a readable image or video"),
    (["--condition", "{media}/first.png@9"], "frame 9 is outside the video (frames 0 to 8, or -9 to -1"),
    (["--condition", "{media}/first.png@-10"], "frame -10 is outside the video"),
    (["--condition", "{media}/clip.mp4@-1"], "its 9 frames from frame 1 run past the last frame (8)"),
    (["--condition", "{media}/first.png:1.5"], "strength 1.5 must be in [0, 1]"),
    (["--reference-video", "{media}/clip.mp4"], "--reference-video: needs the IC-LoRA it controls"),
    (["--reference-video", __file__, "--lora", "{media}/ic.safetensors"], "not a readable image or video"),
    (["--image", "{media}/first.png", "--condition", "{media}/last.jpg"], "not with --condition or --reference"),
    (["--reference-video", "{media}/clip.mp4", "--lora", "{media}/ic.safetensors", "--lora",
      "{media}/ic_full.safetensors"], "the IC-LoRAs ask for different reference downscale factors [1, 2]"),
    (["--condition", "{media}/first.png:nan"], "strength nan must be in [0, 1]"),
    (["--preset", "two-stage", "--width", "192", "--reference-video", "{media}/clip.mp4", "--lora",
      "{media}/ic.safetensors"], "--width 192 --height 128: stage 1 runs at 96x64, 1/2 of it, and the IC-LoRA's "
                                 "references are downscaled x2, which must leave a multiple of 32 pixels"),
    (["--preset", "two-stage", "--width", "192", "--reference-video", "{media}/clip.mp4", "--lora",
      "{media}/ic.safetensors", "--dry-run"], "make the stage-1 size a multiple of 64"),
])
def test_bad_conditions_exit_2_before_loading(tiny, media, tmp_path, arguments, message):
    base = ["generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", "--width", "128",
            "--height", "128", "--num-frames", "9", "--output", "out.mp4"]
    result = ltx2(*base, *(argument.format(media=media) for argument in arguments), cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ltx2: error: ") and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arguments, message", [
    (["--width", "100"], "--width 100: must be a positive multiple of 32"),
    (["--preset", "two-stage", "--width", "96"], "--width 96: must be a positive multiple of 64"),
    (["--num-frames", "10"], "--num-frames 10: must be 8k+1"),
    (["--steps", "0"], "--steps 0: must be at least 1"),
    (["--guidance", "0.5"], "--guidance 0.5: must be a finite number, at least 1"),
    (["--prompt", "  "], "--prompt: must not be empty"),
    (["--image", "missing.png"], "--image missing.png: no such file"),
    (["--image", __file__], "not a readable image"),
    (["--output", "out.avi"], "--output out.avi: must end in .mp4"),
    (["--output", "no/such/folder/out.mp4"], "folder no/such/folder does not exist"),
    (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "nonsense"], "--device"),
    (["--offload", "model", "--device", "cpu"], "--offload model: offloading moves weights to an accelerator"),
    (["--preset", "fast"], "argument --preset: invalid choice: 'fast'"),
    (["--steps", "many"], "argument --steps: invalid int value: 'many'"),
    (["--lora", "none.safetensors"], "--lora none.safetensors: no such file"),
    (["--lora", "/no/such/folder/style.safetensors"], "--lora /no/such/folder/style.safetensors: no such file"),
    (["--stg", "1"], "--stg 1.0: LTX-2.0 has no perturbed attention; STG needs an LTX-2.3 model"),
    (["--preset", "two-stage", "--upscale", "1.5"], "--upscale 1.5: LTX-2.0 has no x1.5 latent upsampler"),
    (["--image-crf", "60"], "--image-crf 60: must be in [0, 51]"),
    (["--width", "0"], "--width 0: must be positive"),
    (["--height", "-32"], "--height -32: must be positive"),
    (["--guidance", "inf"], "--guidance inf: must be a finite number, at least 1"),
    (["--guidance", "nan"], "--guidance nan: must be a finite number, at least 1"),
    (["--stg", "nan"], "--stg nan: must be a finite number, at least 0"),
    (["--fps", "nan"], "--fps nan: must be a positive, finite frame rate"),
    (["--fps", "inf"], "--fps inf: must be a positive, finite frame rate"),
    (["--fps", "0"], "--fps 0.0: must be a positive, finite frame rate"),
    (["--seed", "-1"], "--seed -1: must be in [0, 2**64)"),
    (["--lora", "style.safetensors:inf"], "the scale must be a finite number"),
])
def test_bad_arguments_exit_2_with_one_line(tiny, tmp_path, arguments, message):
    base = ["generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", "--width", "128",
            "--height", "128", "--num-frames", "9", "--output", "out.mp4"]
    result = ltx2(*base, *arguments, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ltx2: error: ") and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def own_transformer_config(tiny, target, **changes):
    """A linked copy of the tiny pipeline with a transformer folder of its own (its weights linked) whose config has
    `changes`; returns the copy and the config's path, to rewrite."""
    folder = linked_copy(tiny, target)
    (folder / "transformer").unlink()
    (folder / "transformer").mkdir()
    weights = "diffusion_pytorch_model.safetensors"
    (folder / "transformer" / weights).symlink_to(tiny / "transformer" / weights)
    config = json.loads((tiny / "transformer" / "config.json").read_text())
    (folder / "transformer" / "config.json").write_text(json.dumps({**config, **changes}))
    return folder, folder / "transformer" / "config.json"


def ltx_2_3_flags(tiny, target):
    """A copy of the tiny pipeline whose transformer config carries LTX-2.3's flags: enough for the version."""
    folder = linked_copy(tiny, target)
    (folder / "transformer").unlink()
    (folder / "transformer").mkdir()
    config = json.loads((tiny / "transformer" / "config.json").read_text())
    flags = dict(gated_attn=True, cross_attn_mod=True, perturbed_attn=True, use_prompt_embeddings=False)
    (folder / "transformer" / "config.json").write_text(json.dumps({**config, **flags}))
    return folder


def test_dry_run_prints_the_settings_of_each_version(tiny, tmp_path):
    """Nothing is loaded: the LTX-2.3 folder here has configs but no transformer weights."""
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "LTX version 2.0" in result.stdout and "1536x1024, 121 frames at 24 fps" in result.stdout
    assert "num_inference_steps=40 guidance_scale=4.0 stg_scale=0.0" in result.stdout and "width=768" in result.stdout
    # Exactly the files the run would use: the folder's upsampler; it has no distilled LoRA.
    assert f"upsampling     x2: {tiny / 'latent_upsampler'}" in result.stdout
    assert "distilled LoRA none beside --model: stage 2 runs without it" in result.stdout
    assert "text encoder   the model's" in result.stdout
    later = ltx_2_3_flags(tiny, tmp_path / "ltx-2.3")
    result = ltx2("generate", "--model", later, "--prompt", "a cat", "--dry-run", "--upscale", "1.5", "--guidance", 5)
    assert result.returncode == 2 and "no latent upsampler beside --model" in result.stderr  # no x1.5 file there
    for name in ("ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors", "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"):
        (later / name).write_bytes(b"")  # present is enough: a dry run reads neither
    result = ltx2("generate", "--model", later, "--prompt", "a cat", "--dry-run", "--upscale", "1.5", "--guidance", 5)
    assert result.returncode == 0, result.stderr
    stage_one = next(line for line in result.stdout.splitlines() if "stage 1" in line)
    for setting in ("LTX version 2.3", "1152x768", f"x1.5: {later / 'ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors'}",
                    f"distilled LoRA {later / 'ltx-2.3-22b-distilled-lora-384-1.1.safetensors'}"):
        assert setting in result.stdout
    for setting in ("num_inference_steps=30", "guidance_scale=5.0", "stg_scale=1.0", "modality_scale=3.0",
                    "guidance_rescale=0.7", "audio_guidance_scale=7.0", "spatio_temporal_guidance_blocks=[28]",
                    "use_cross_timestep=True", "width=768", "height=512"):
        assert setting in stage_one
    stage_two = next(line for line in result.stdout.splitlines() if "stage 2" in line)
    assert "guidance_scale=1.0" in stage_two and "audio_stg_scale=0.0" in stage_two
    result = ltx2("generate", "--model", later, "--prompt", "a cat", "--dry-run", "--preset", "distilled", "--stg", 0)
    assert "stg_scale=0.0" in result.stdout and "DISTILLED" not in result.stdout
    assert "num_inference_steps=8" in result.stdout and "audio_guidance_scale=1.0" in result.stdout
    result = ltx2("generate", "--model", later, "--prompt", "a cat", "--dry-run", "--upscale", "1.5",
                  "--width", 1024)
    assert result.returncode == 2 and "--width 1024: must be a positive multiple of 96" in result.stderr
    single = tmp_path / "ltx-2.3-22b-dev.safetensors"
    write_combined(single, version="2.3")
    result = ltx2("generate", "--model", single, "--prompt", "a cat", "--dry-run", "--preset", "one-stage")
    assert result.returncode == 0 and "LTX version 2.3" in result.stdout and "num_inference_steps=30" in result.stdout


def test_two_stage_on_an_ltx_2_3_folder(tmp_path):
    """The LTX-2.3 settings run end to end: stage 1 with CFG, STG, modality isolation and rescale, the x2
    upsampler of the folder, stage 2 with the LTX-2.3 distilled LoRA's file name beside the model."""
    from tiny_pipeline import write_pipeline_folder

    folder = tmp_path / "ltx-2.3"
    write_pipeline_folder(folder, version="2.3")
    original_lora(folder, folder / "ltx-2.3-22b-distilled-lora-384-1.1.safetensors", module="ff.net.2")
    result = ltx2("generate", "--model", folder, "--prompt", "a cat", "--width", 64, "--height", 64,
                  "--num-frames", 9, "--steps", 2, "--output", tmp_path / "out.mp4")
    assert result.returncode == 0, result.stderr
    assert "runs without it" not in result.stderr and result.stderr.count("it/s]") >= 2
    assert streams(tmp_path / "out.mp4")[:3] == (64, 64, 9)


def test_enhanced_prompt_and_image_crf(tmp_path):
    """Gemma rewrites the prompt (the reference-written tiny pipeline's Gemma knows the chat tokens), then the
    image-to-video run re-compresses the image at the CRF given."""
    from PIL import Image
    from tiny_pipeline import make_reference_pipeline

    folder = tmp_path / "chat"
    make_reference_pipeline(chat=True).save_pretrained(folder)
    image = tmp_path / "first.png"
    Image.new("RGB", (40, 56), (200, 30, 30)).save(image)
    result = ltx2("generate", "--model", folder, "--prompt", "a cat", "--preset", "one-stage", "--enhance-prompt",
                  "--image", image, "--image-crf", 20, "--width", 32, "--height", 32, "--num-frames", 9, "--steps", 1,
                  "--output", tmp_path / "out.mp4")
    assert result.returncode == 0, result.stderr
    assert "ltx2: enhanced prompt: " in result.stderr and "prompt enhancement" in result.stdout
    assert streams(tmp_path / "out.mp4")[:3] == (32, 32, 9)


def test_make_tiny_enhances_the_prompt_offline(tiny, tmp_path):
    """`ltx2 make-tiny`'s Gemma 3 chats (its tokenizer has Gemma's chat template and tokens), so --enhance-prompt
    runs offline: the command prints the rewritten prompt and generates from it."""
    output = tmp_path / "out.mp4"
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", "--enhance-prompt",
                  "--width", 64, "--height", 64, "--num-frames", 9, "--steps", 1, "--output", output)
    assert result.returncode == 0, result.stderr
    enhanced = [line for line in result.stderr.splitlines() if line.startswith("ltx2: enhanced prompt: ")]
    assert len(enhanced) == 1 and enhanced[0] != "ltx2: enhanced prompt: a cat", result.stderr
    assert "prompt enhancement" in result.stdout and "torchvision" not in result.stderr
    assert streams(output)[:3] == (64, 64, 9)


def test_missing_subcommand_and_prompt_exit_2(tmp_path):
    assert ltx2().returncode == 2
    result = ltx2("generate", "--model", tmp_path)
    assert result.returncode == 2 and "the following arguments are required: --prompt" in result.stderr


def test_two_stage_loads_the_distilled_lora_beside_the_model(tiny, tmp_path):
    model = linked_copy(tiny, tmp_path / "with-lora")
    original_lora(tiny, model / "ltx-2-19b-distilled-lora-384.safetensors", module="ff.net.2")
    result = ltx2("generate", "--model", model, "--prompt", "a cat", *SMALL, "--output", tmp_path / "out.mp4")
    assert result.returncode == 0, result.stderr
    assert "runs without it" not in result.stderr


def test_two_stage_without_upsampler_exits_2(tmp_path, tiny):
    result = ltx2("generate", "--model", tmp_path / "missing-model.safetensors", "--prompt", "a cat")
    assert result.returncode == 2 and "missing-model.safetensors: no such file or folder" in result.stderr
    folder = tmp_path / "no-upsampler"
    folder.mkdir()
    (folder / "model_index.json").write_text((tiny / "model_index.json").read_text())
    result = ltx2("generate", "--model", folder, "--prompt", "a cat", "--width", "128", "--height", "128",
                  "--num-frames", "9")
    assert result.returncode == 2 and "no latent upsampler beside --model" in result.stderr


def test_failing_run_exits_1_and_leaves_no_output(tiny, tmp_path):
    broken = linked_copy(tiny, tmp_path / "broken")
    (broken / "transformer").unlink()
    (broken / "transformer").mkdir()
    (broken / "transformer" / "config.json").write_text((tiny / "transformer" / "config.json").read_text())
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    output = tmp_path / "out.mp4"
    result = ltx2("generate", "--model", broken, "--prompt", "a cat", "--preset", "one-stage", *SMALL,
                  "--output", output)
    assert result.returncode == 1
    assert "ltx2: failed: CheckpointError:" in result.stderr and "diffusion_pytorch_model.safetensors" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()


def test_interrupted_run_exits_130_and_leaves_no_output(tiny, tmp_path):
    output = tmp_path / "out.mp4"
    process = subprocess.Popen(
        [sys.executable, "-m", "ltx2.cli", "generate", "--model", str(tiny), "--prompt", "a cat", "--preset",
         "one-stage", "--width", "256", "--height", "256", "--num-frames", "49", "--steps", "100000",
         "--output", str(output)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    seen = ""
    deadline = time.monotonic() + 120
    while "denoising" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, seen + rest
    assert "interrupted; no output written" in rest
    assert list(tmp_path.iterdir()) == []


def test_make_tiny_2_3_with_loras_runs_every_flow(tmp_path):
    """`make-tiny --version 2.3 --with-loras`: an LTX-2.3 pipeline (STG, the 48 kHz vocoder) whose two-stage preset
    finds its distilled LoRA, and an IC-LoRA that a reference video drives; files honour the umask."""
    folder = tmp_path / "tiny-2.3"
    result = ltx2("make-tiny", folder, "--version", "2.3", "--with-loras")
    assert result.returncode == 0, result.stderr
    assert "LTX-2.3 pipeline" in result.stdout and "tiny-ic-lora.safetensors" in result.stdout
    info = ltx2("info", folder).stdout
    assert "LTX version 2.3" in info and "LTX2VocoderWithBWE" in info
    output = tmp_path / "out.mp4"
    result = ltx2("generate", "--model", folder, "--prompt", "a cat", *SMALL, "--output", output)
    assert result.returncode == 0, result.stderr
    assert "runs without it" not in result.stderr and "none of them STG's block 28" in result.stderr
    assert streams(output)[4].sample_rate == 48000
    controlled = tmp_path / "controlled.mp4"
    result = ltx2("generate", "--model", folder, "--prompt", "a cat", *SMALL, "--reference-video", output, "--lora",
                  folder / "tiny-ic-lora.safetensors", "--output", controlled, "--dry-run")
    assert result.returncode == 0 and "downscaled x2 (stage 1)" in result.stdout, result.stderr
    assert ltx2("make-tiny", tmp_path / "other", "--version", "1.0").returncode == 2


def test_single_file_with_a_local_text_encoder(pipeline_folder, tmp_path):
    """--text-encoder DIR: a single file runs offline with the Gemma of a local pipeline folder (without it, the
    single file would need Lightricks/LTX-2's from the Hub); a folder without a Gemma is refused up front."""
    folder, _ = pipeline_folder
    single = tmp_path / "ltx-2-19b-dev.safetensors"
    write_combined(single)
    output = tmp_path / "out.mp4"
    common = ["generate", "--model", single, "--prompt", "a cat", "--preset", "one-stage", "--width", "64",
              "--height", "64", "--num-frames", "9", "--steps", "2", "--output", output]
    result = ltx2(*common, "--text-encoder", folder)
    assert result.returncode == 0, result.stderr
    assert streams(output)[:3] == (64, 64, 9)
    result = ltx2(*common, "--text-encoder", tmp_path)
    assert result.returncode == 2 and f"--text-encoder {tmp_path}: no Gemma 3 here" in result.stderr


def test_stg_without_its_block_and_overlapping_conditions(tiny, media, tmp_path):
    """An explicit --stg on a model without the STG block is an error; overlapping conditions get a note."""
    later = ltx_2_3_flags(tiny, tmp_path / "ltx-2.3")
    result = ltx2("generate", "--model", later, "--prompt", "a cat", "--preset", "one-stage", "--stg", "2",
                  "--dry-run")
    assert result.returncode == 2 and "--stg 2: the model's transformer has 2 blocks, none of them STG's block 28" \
        in result.stderr
    result = ltx2("generate", "--model", tiny, "--prompt", "a cat", "--preset", "one-stage", *SMALL, "--dry-run",
                  "--condition", f"{media / 'clip.mp4'}@0", "--condition", f"{media / 'last.jpg'}@5")
    assert result.returncode == 0, result.stderr
    assert "last.jpg@5: overlaps --condition" in result.stderr and "latent frame(s) 1-1" in result.stderr


def test_bad_configs_exit_2_naming_the_file_and_info_flags_them(tiny, tmp_path):
    """Invalid JSON names its file; a config whose block count its weights do not have is exit 2 (like a wrong
    type), and `ltx2 info` flags it."""
    broken, config_path = own_transformer_config(tiny, tmp_path / "broken", num_layers=3)
    config = json.loads((tiny / "transformer" / "config.json").read_text())
    info = ltx2("info", broken)
    assert info.returncode == 0 and "bad config:" in info.stdout and "num_layers=3, but the weights hold" in info.stdout
    run = ["generate", "--model", broken, "--prompt", "a cat", "--preset", "one-stage", *SMALL,
           "--output", tmp_path / "out.mp4"]
    result = ltx2(*run)
    assert result.returncode == 2 and "num_layers=3, but the weights hold" in result.stderr, result.stderr
    config_path.write_text(json.dumps({**config, "num_layers": "two"}))
    assert ltx2(*run).returncode == 2
    config_path.write_text("{not json")
    for result in (ltx2(*run), ltx2("info", broken)):
        assert result.returncode == 2 and "transformer/config.json: not valid JSON" in result.stderr, result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_interrupt_while_importing_exits_130_with_one_line(tiny, tmp_path, monkeypatch, capsys):
    """Ctrl-C while the command still imports torch (the slow part of starting): exit 130, one line, no output."""
    import builtins

    from ltx2.cli import main

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "torch":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    handler = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(builtins, "__import__", interrupted)
    try:
        code = main(["generate", "--model", str(tiny), "--prompt", "a cat", "--output", str(tmp_path / "out.mp4")])
    finally:
        monkeypatch.undo()
        signal.signal(signal.SIGTERM, handler)
    assert code == 130
    assert capsys.readouterr().err.splitlines() == ["ltx2: interrupted; no output written"]
    assert list(tmp_path.iterdir()) == []


def test_the_command_imports_no_torch_before_it_runs():
    """What runs before main() (the ltx2 package, the command's module) is light, so that Ctrl-C and bad
    arguments are answered at once; torch is imported inside main(), where an interrupt is handled."""
    import subprocess as run

    probe = "import sys, ltx2.cli; print(sorted(m for m in ('torch', 'numpy', 'av', 'PIL') if m in sys.modules))"
    result = run.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    dev = folder / "ltx-2-19b-dev.safetensors"
    write_combined(dev)
    stored, _ = quantize_fp8(load_file(str(dev)))
    fp8 = write_single_file(folder / "ltx-2-19b-dev-fp8.safetensors", stored, HEADER_CONFIG, model_version="2.0.0")
    upsampler = write_single_file(folder / "ltx-2-spatial-upscaler-x2-1.0.safetensors",
                                  make_upsampler_reference().state_dict(), UPSAMPLER_HEADER)
    lora = folder / "ltx-2-19b-distilled-lora-384.safetensors"
    save_file({"diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 16),
               "diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.zeros(16, 4),
               "diffusion_model.patchify_proj.lora_A.weight": torch.zeros(4, 4),
               "diffusion_model.patchify_proj.lora_B.weight": torch.zeros(16, 4)}, str(lora))
    return {"dev": dev, "fp8": fp8, "upsampler": upsampler, "lora": lora}


@pytest.mark.parametrize("name, expected", [
    ("dev", ["LTX-2 single-file checkpoint (original layout), LTX version 2.0 (model_version 2.0.0)", "transformer",
             "connectors", "vae", "audio_vae", "vocoder      LTX2Vocoder", "float32"]),
    ("fp8", ["LTX version 2.0 (model_version 2.0.0)", "float8_e4m3fn", "FP8 with"]),
    ("upsampler", ["LTX-2 latent upsampler", "float32", '"mid_channels": 32']),
    ("lora", ["LoRA, original (diffusion_model.*) key names, rank 4", "transformer  2 adapted layers"]),
])
def test_info_describes_each_file(synthetic_files, name, expected):
    result = ltx2("info", synthetic_files[name])
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout, result.stdout


def test_info_on_folders_and_bad_paths(tiny, tmp_path):
    result = ltx2("info", tiny)
    assert result.returncode == 0
    assert "diffusers pipeline folder (LTX2Pipeline), LTX version 2.0" in result.stdout
    assert "not a model" in result.stdout
    assert "LTX2VideoTransformer3DModel" in result.stdout and "latent_upsampler" in result.stdout
    later, _ = own_transformer_config(tiny, tmp_path / "later", gated_attn=True)
    config = json.loads((tiny / "transformer" / "config.json").read_text())
    result = ltx2("info", later)
    assert result.returncode == 0 and "diffusers pipeline folder (LTX2Pipeline), LTX version 2.3" in result.stdout
    (later / "transformer" / "config.json").write_text(json.dumps({**config, "ff_bias": False}))
    result = ltx2("info", later)
    assert "LTX version 2.5" in result.stdout and "later than" not in result.stdout
    ltx_2_3 = linked_copy(tiny, tmp_path / "ltx-2.3")
    (ltx_2_3 / "connectors").unlink()
    (ltx_2_3 / "connectors").mkdir()
    config = json.loads((tiny / "connectors" / "config.json").read_text())
    (ltx_2_3 / "connectors" / "config.json").write_text(json.dumps({**config, "per_modality_projections": True}))
    assert "LTX version 2.3" in describe(ltx_2_3)[0]
    assert ltx2("info", tmp_path / "nothing").returncode == 2
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    result = ltx2("info", tmp_path / "junk.safetensors")
    assert result.returncode == 1 and "junk.safetensors: not a readable safetensors file" in result.stderr
