"""Record Lightricks' own pipelines (ltx-pipelines 1.0.0) on the tiny official checkpoint. Runs in the official venv.

  python tests/official/record.py manifest --harness H           writes manifest.json.gz (from ltx-core's builders)
  python tests/official/record.py run NAME --tiny DIR --out F.npz [--seed S]   one pipeline's final frames + waveform

H is official_harness.py (shared/reference/official/). The venv is built as the parity notes say (test_official.py's
docstring has the commands). Nothing here is imported by ltx2 or by the tests.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_files import MANIFEST, write_media, write_tiny_official  # noqa: E402

PROMPT = "A robot dances in the rain while a crowd cheers"
SIZE = dict(height=128, width=128, num_frames=17, frame_rate=24.0)


def harness(path: str):
    spec = importlib.util.spec_from_file_location("official_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest(h) -> None:
    """Every tensor name and shape ltx-core's builders expect, and the headers / Gemma config to go with them."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from ltx_core.model.upsampler import LatentUpsamplerConfigurator
    from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX

    h.prepare_official()
    state = h.combined_state(h.build_official_networks(0))
    upsampler = LatentUpsamplerConfigurator.from_config(h.UPSAMPLER).state_dict()
    config = Gemma3Config.from_dict(GEMMA3_CONFIG_FOR_LTX.to_dict())
    gemma = Gemma3ForConditionalGeneration(config).state_dict()
    renames = {"model.language_model.": "language_model.model.", "model.vision_tower.": "vision_tower.",
               "model.multi_modal_projector.": "multi_modal_projector."}
    gemma_entries = []
    for key, value in gemma.items():
        for old, new in renames.items():
            if key.startswith(old):
                gemma_entries.append([new + key[len(old):], list(value.shape)])
    image = h.GEMMA_VISION["image_size"]
    data = {
        "header": h.HEADER, "upsampler_header": h.UPSAMPLER, "gemma_config": config.to_dict(),
        "checkpoint": [[key, list(value.shape)] for key, value in state.items() if value.is_floating_point()],
        "upsampler": [[key, list(value.shape)] for key, value in upsampler.items() if value.is_floating_point()],
        "gemma": gemma_entries,
        "preprocessor_config": {
            "image_processor_type": "Gemma3ImageProcessor", "do_resize": True, "do_rescale": True,
            "do_normalize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
            "size": {"height": image, "width": image}, "resample": 2, "rescale_factor": 1 / 255,
            "processor_class": "Gemma3Processor"},
    }
    MANIFEST.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))
    print(MANIFEST, MANIFEST.stat().st_size, "bytes")


def run(h, name: str, tiny: Path, out: Path, seed: int, steps: int, whole: bool = False) -> None:
    """One official pipeline end to end. Kept (a few KB): every 4th frame, row and column of the uint8 frames, the
    waveform, the final video (and audio) latents and the first stage's video latent."""
    h.prepare_official()
    paths = json.loads((tiny / "paths.json").read_text()) if (tiny / "paths.json").exists() else None
    if paths is None:
        paths = write_tiny_official(tiny)
        (tiny / "paths.json").write_text(json.dumps(paths))
    media = write_media(tiny / "media")
    recorder_out = tiny / f"{name}-{seed}-recorder.npz"
    h.run_official(name, paths, recorder_out, seed=seed, steps=steps, media=media, prompt=PROMPT)
    full = np.load(recorder_out)
    stages = sorted(int(key.split("/")[1]) for key in full.files if key.startswith("stage_video/"))
    kept = {"frames": full["frames"] if whole else full["frames"][::4, ::4, ::4], "waveform": full["waveform"]}
    if stages:
        kept.update(video=full[f"stage_video/{stages[-1]}"], video_stage1=full["stage_video/0"])
    if stages and f"stage_audio/{stages[-1]}" in full.files:
        kept["audio"] = full[f"stage_audio/{stages[-1]}"]
    np.savez_compressed(out, **kept)
    print(out, out.stat().st_size, "bytes", {key: value.shape for key, value in kept.items()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["manifest", "run"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--harness", required=True)
    parser.add_argument("--tiny", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--full", action="store_true", help="keep every frame (live comparisons)")
    args = parser.parse_args()
    h = harness(args.harness)
    torch.set_num_threads(1)
    with torch.inference_mode():
        if args.command == "manifest":
            manifest(h)
        else:
            run(h, args.name, args.tiny, args.out, args.seed, args.steps, args.full)


if __name__ == "__main__":
    main()
