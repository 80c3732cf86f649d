"""Command lines onto ltx2.official: `python -m ltx2.official.<module>` with ltx-pipelines' flags, `ltx2 generate
--audio` and `ltx2 retake`. Bad input is a one-line error (exit 2) before any model loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tiny_files import write_media, write_tiny_official

from ltx2.cli import main as ltx2_main
from ltx2.official.cli import LTX_2, LTX_2_3, build_parser, checkpoint_defaults, run_module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tiny-official-cli")
    return {**write_tiny_official(folder), **write_media(folder / "media")}


def test_defaults_follow_the_checkpoint_version(tiny):
    assert checkpoint_defaults(tiny["checkpoint"]) == LTX_2  # model_version 2.0.0
    assert (LTX_2.steps, LTX_2.video.stg_blocks, LTX_2_3.steps, LTX_2_3.video.stg_blocks) == (40, [29], 30, [28])
    args = build_parser("ti2vid_two_stages", LTX_2).parse_args(
        ["--checkpoint-path", "c", "--gemma-root", "g", "--prompt", "p", "--output-path", "o.mp4",
         "--spatial-upsampler-path", "u", "--distilled-lora", "l.safetensors", "0.6", "--lora", "x.safetensors",
         "--image", "i.png", "0", "0.9", "--video-stg-blocks", "3", "4"])
    assert (args.height, args.width, args.num_inference_steps, args.seed) == (1024, 1536, 40, 10)
    assert args.distilled_lora[0].strength == 0.6 and args.lora[0].strength == 1.0
    assert args.images[0].frame_idx == 0 and args.images[0].crf == 33 and args.video_stg_blocks == [3, 4]


@pytest.mark.parametrize("argv, message", [
    (["--distilled-checkpoint-path", "/nope.safetensors"], "--distilled-checkpoint-path /nope.safetensors: no such"),
    (["--quantization", "fp8-cast"], "--quantization"),
    (["--image", "/nope.png", "0", "1.0"], "--image /nope.png: no such file"),
])
def test_module_bad_input_is_one_line_before_loading(tiny, capsys, argv, message):
    base = ["--distilled-checkpoint-path", tiny["distilled_checkpoint"], "--gemma-root", tiny["gemma_root"],
            "--spatial-upsampler-path", tiny["spatial_upsampler"], "--prompt", "a robot", "--output-path", "o.mp4"]
    assert run_module("distilled", base + argv) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_module_writes_the_mp4(tiny, tmp_path):
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "ltx2.official.distilled", "--distilled-checkpoint-path", tiny["distilled_checkpoint"],
         "--gemma-root", tiny["gemma_root"], "--spatial-upsampler-path", tiny["spatial_upsampler"],
         "--prompt", "a robot dances", "--output-path", str(output), "--height", "128", "--width", "128",
         "--num-frames", "9"], capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["generate", "--audio", "/nope.wav", "--prompt", "p", "--model", "{checkpoint}", "--gemma-root", "{gemma_root}"],
     "--audio /nope.wav: no such file"),
    (["generate", "--audio", "{audio}", "--prompt", "p", "--model", "{checkpoint}", "--gemma-root", "{gemma_root}",
      "--preset", "distilled"], "--preset distilled"),
    (["generate", "--audio", "{audio}", "--prompt", "p", "--model", "{checkpoint}"], "--gemma-root None"),
    (["retake", "{video}", "--start", "0.5", "--end", "0.25", "--prompt", "p", "--model", "{checkpoint}",
      "--gemma-root", "{gemma_root}"], "--start 0.5 --end 0.25"),
    (["retake", "/nope.mp4", "--start", "0", "--end", "1", "--prompt", "p", "--model", "{checkpoint}",
      "--gemma-root", "{gemma_root}"], "/nope.mp4: no such file"),
])
def test_ltx2_command_bad_input(tiny, capsys, argv, message):
    assert ltx2_main([part.format(**tiny) for part in argv]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_ltx2_retake_writes_the_mp4(tiny, tmp_path):
    output = tmp_path / "retake.mp4"
    assert ltx2_main(["retake", tiny["video"], "--start", "0.25", "--end", "0.5", "--prompt", "a robot", "--model",
                      tiny["checkpoint"], "--gemma-root", tiny["gemma_root"], "--steps", "2",
                      "--output", str(output)]) == 0
    assert output.stat().st_size > 0
