"""ltx2.official against Lightricks' own pipelines (ltx-pipelines 1.0.0) on a tiny official checkpoint.

The official packages are a test-only reference in their own venv (they need transformers 4.57 and a CPU-only
torchaudio, see shared/reference/official/parity-notes.md):

    python3 -m venv $VENV
    $VENV/bin/pip install torch==2.13.0 && $VENV/bin/pip install ltx-core==1.0.0 ltx-pipelines==1.0.0
    $VENV/bin/pip install transformers==4.57.6 && rm $VENV/lib/python3.11/site-packages/torchaudio/lib/*.so

Recorded outputs (`recordings/<pipeline>.npz`: every 4th frame / row / column of the uint8 frames, the waveform,
the final latents) were made by `record.py run <pipeline>` on the checkpoint `tiny_files.write_tiny_official`
rebuilds here from a seed, so the recorded comparison runs without the venv. With the venv present
(LTX2_OFFICIAL_PYTHON, default /work/official-venv/bin/python) the live test runs the official pipeline again and
compares the whole frames. Bounds (relative L2, bf16 on CPU, the issue's): distilled and IC-LoRA 2e-2, guided 5e-2,
for the frames and the waveform of every pipeline, and every output is > 0.3 away from the same pipeline run with
another seed. Each test prints its distances (run with -s). Measured on the 2-core CPU machine: 0 for the frames and
the waveform of all eight pipelines, recorded and live (bit for bit, since ltx2.official rounds as ltx-core does, see
ltx2/official/rounding.py); another seed 0.51-0.58 (frames) and 0.48-1.11 (waveform). Before that rounding, frames /
waveform were 6.6e-3-6.9e-3 / 2.2e-2-2.4e-2 for distilled, two-stage, keyframe, IC-LoRA and HQ, 1.3e-2 / 7.3e-2
for one-stage, 1.4e-2 / 3.5e-2 for retake, 6.9e-3 / 0 for A2Vid (which returns the input audio).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_files import write_media, write_tiny_official

HERE = Path(__file__).parent
RECORDINGS = HERE / "recordings"
OFFICIAL_PYTHON = Path(os.environ.get("LTX2_OFFICIAL_PYTHON", "/work/official-venv/bin/python"))
HARNESS = Path(os.environ.get("LTX2_OFFICIAL_HARNESS", "/work/shared/reference/official/official_harness.py"))
PROMPT = "A robot dances in the rain while a crowd cheers"
SIZE = dict(height=128, width=128, num_frames=17, frame_rate=24.0)
SEED, OTHER_SEED = 10, 11
PIPELINES = ["distilled", "one-stage", "two-stage", "keyframe", "ic-lora", "a2vid", "retake", "hq"]
# The bound on frames and waveform alike: 2e-2 for the unguided (distilled) pipelines, 5e-2 for guided ones.
BOUNDS = {name: 2e-2 if name in ("distilled", "ic-lora") else 5e-2 for name in PIPELINES}


def report(label: str, distances: dict[str, float], record_property) -> None:
    """Print the distances and record them as the test's properties."""
    print(f"{label}: " + ", ".join(f"{key} {value:.2e}" for key, value in distances.items()))
    for key, value in distances.items():
        record_property(f"{label.replace(' ', '_')}_{key}", value)


def check_bound(name: str, distances: dict[str, float], record_property) -> None:
    """Report the distances, then hold them to the pipeline's bound."""
    report(name, distances, record_property)
    assert max(distances.values()) <= BOUNDS[name], (name, distances, BOUNDS[name])


def relative_l2(ours: np.ndarray, theirs: np.ndarray) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


@pytest.fixture(scope="module")
def tiny_official(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tiny-official")
    return {**write_tiny_official(folder), **write_media(folder / "media")}


def guiders():
    from ltx2.official import MultiModalGuiderParams

    # ltx-pipelines' LTX-2 defaults with the STG block moved into the 2-layer model
    return dict(video_guider_params=MultiModalGuiderParams(3.0, 1.0, [1], 0.7, 3.0, 0),
                audio_guider_params=MultiModalGuiderParams(7.0, 1.0, [1], 0.7, 3.0, 0))


def run_ours(name: str, paths: dict[str, str], seeds: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Our pipeline `name`, built once, run with each seed: (frames (F, H, W, 3) uint8, waveform) per seed."""
    from ltx2 import official

    lora = official.LoraPathStrengthAndSDOps(paths["distilled_lora"], 1.0, official.LTXV_LORA_COMFY_RENAMING_MAP)
    if name == "distilled":
        pipe = official.DistilledPipeline(paths["distilled_checkpoint"], paths["gemma_root"],
                                          paths["spatial_upsampler"], [])
        call = lambda seed: pipe(PROMPT, seed, images=[], **SIZE)  # noqa: E731
    elif name == "one-stage":
        pipe = official.TI2VidOneStagePipeline(paths["checkpoint"], paths["gemma_root"], [])
        call = lambda seed: pipe(PROMPT, official.DEFAULT_NEGATIVE_PROMPT, seed, num_inference_steps=6,  # noqa: E731
                                 images=[], **guiders(), **SIZE)
    elif name in ("two-stage", "keyframe"):
        kind = official.TI2VidTwoStagesPipeline if name == "two-stage" else official.KeyframeInterpolationPipeline
        pipe = kind(paths["checkpoint"], [lora], paths["spatial_upsampler"], paths["gemma_root"], [])
        images = [] if name == "two-stage" else [official.ImageConditioningInput(paths["image"], frame, 1.0, 33)
                                                 for frame in (0, 16)]
        call = lambda seed: pipe(PROMPT, official.DEFAULT_NEGATIVE_PROMPT, seed, num_inference_steps=6,  # noqa: E731
                                 images=images, **guiders(), **SIZE)
    elif name == "a2vid":
        pipe = official.A2VidPipelineTwoStage(paths["checkpoint"], [lora], paths["spatial_upsampler"],
                                              paths["gemma_root"], [])
        call = lambda seed: pipe(PROMPT, official.DEFAULT_NEGATIVE_PROMPT, seed, num_inference_steps=6,  # noqa: E731
                                 video_guider_params=guiders()["video_guider_params"], images=[],
                                 audio_path=paths["audio"], **SIZE)
    elif name == "hq":
        pipe = official.TI2VidTwoStagesHQPipeline(paths["checkpoint"], [lora], 0.25, 0.5, paths["spatial_upsampler"],
                                                  paths["gemma_root"], ())
        hq = dict(video_guider_params=official.MultiModalGuiderParams(3.0, 0.0, [], 0.45, 3.0, 0),
                  audio_guider_params=official.MultiModalGuiderParams(7.0, 0.0, [], 1.0, 3.0, 0))
        call = lambda seed: pipe(PROMPT, official.DEFAULT_NEGATIVE_PROMPT, seed, num_inference_steps=6,  # noqa: E731
                                 images=[], **hq, **SIZE)
    elif name == "retake":
        pipe = official.RetakePipeline(paths["checkpoint"], paths["gemma_root"], [])
        call = lambda seed: pipe(paths["video"], PROMPT, 0.25, 0.5, seed,  # noqa: E731
                                 negative_prompt=official.DEFAULT_NEGATIVE_PROMPT, num_inference_steps=6, **guiders())
    elif name == "ic-lora":
        ic_lora = official.LoraPathStrengthAndSDOps(paths["ic_lora"], 1.0, official.LTXV_LORA_COMFY_RENAMING_MAP)
        pipe = official.ICLoraPipeline(paths["distilled_checkpoint"], paths["spatial_upsampler"], paths["gemma_root"],
                                       [ic_lora])
        call = lambda seed: pipe(PROMPT, seed, images=[], video_conditioning=[(paths["video"], 1.0)],  # noqa: E731
                                 **SIZE)
    else:
        raise ValueError(name)
    outputs = []
    for seed in seeds:
        video, audio = call(seed)
        outputs.append((torch.cat(list(video)).numpy(), audio.waveform.numpy()))
    return outputs


@pytest.mark.parametrize("name", PIPELINES)
def test_matches_recorded_official_output(name, tiny_official, record_property):
    """Same seed: frames (every 4th frame, row, column) and waveform within the bound of ltx-pipelines' recorded
    output; another seed: both > 0.3 away from it."""
    recorded = np.load(RECORDINGS / f"{name}.npz")
    (frames, waveform), (other_frames, other_waveform) = run_ours(name, tiny_official, [SEED, OTHER_SEED])
    check_bound(name, {"frames": relative_l2(frames[::4, ::4, ::4], recorded["frames"]),
                       "waveform": relative_l2(waveform, recorded["waveform"])}, record_property)
    other = {"frames": relative_l2(other_frames[::4, ::4, ::4], recorded["frames"])}
    if name != "a2vid":  # A2Vid returns the input audio, whatever the seed
        other["waveform"] = relative_l2(other_waveform, recorded["waveform"])
    report(f"{name} other seed", other, record_property)
    assert min(other.values()) > 0.3, other


@pytest.mark.parametrize("name", PIPELINES)
def test_matches_live_official_pipeline(name, tiny_official, tmp_path, record_property):
    """The official pipeline run now (its own venv) on the same files: whole frames and waveform within the bound,
    and bit-identical to the recording (the recordings are current)."""
    if not OFFICIAL_PYTHON.is_file() or not HARNESS.is_file():
        pytest.skip(f"the official reference venv ({OFFICIAL_PYTHON}) or harness ({HARNESS}) is absent; "
                    "the recorded-output test covers this pipeline")
    folder = Path(tiny_official["checkpoint"]).parent
    (folder / "paths.json").write_text(json.dumps({key: value for key, value in tiny_official.items()
                                                   if key not in ("image", "audio", "video")}))
    out = tmp_path / f"{name}.npz"
    subprocess.run([str(OFFICIAL_PYTHON), str(HERE / "record.py"), "run", name, "--harness", str(HARNESS),
                    "--tiny", str(folder), "--out", str(out), "--seed", str(SEED), "--full"],
                   check=True, capture_output=True, timeout=600)
    live, recorded = np.load(out), np.load(RECORDINGS / f"{name}.npz")
    assert np.array_equal(live["frames"][::4, ::4, ::4], recorded["frames"])
    ((frames, waveform),) = run_ours(name, tiny_official, [SEED])
    check_bound(name, {"frames": relative_l2(frames, live["frames"]), "waveform": relative_l2(waveform, live["waveform"])},
                record_property)
