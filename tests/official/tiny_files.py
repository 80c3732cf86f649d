"""The tiny official checkpoint, rebuilt deterministically from a committed manifest, with no ltx-core import.

`manifest.json.gz` holds every tensor name and shape of the files Lightricks' loaders accept (written once by the
parity harness's `make` from ltx-core's own configurators), the single-file header, the upsampler header and the
Gemma config. `write_tiny_official(folder)` fills them with seeded values (the harness's rules: fan-in scaled
matrices, small biases, norm scales near 1, per-channel latent statistics) and writes:

  tiny-ltx-2-dev.safetensors, tiny-ltx-2-distilled.safetensors (the distilled LoRA fused in), the distilled LoRA,
  an IC-LoRA (reference_downscale_factor 1), the x2 spatial upsampler and a gemma-root folder (tiny Gemma 3,
  its config.json, a word-level tokenizer with Gemma's special tokens).

This file runs in both environments: ltx2's (the tests) and the official venv (tests/official/record.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch

MANIFEST = Path(__file__).with_name("manifest.json.gz")
LORA_RANK = 4
LORA_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
                "attn2.to_v", "attn2.to_out.0", "audio_attn1.to_q", "audio_attn1.to_k", "audio_attn1.to_v",
                "audio_attn1.to_out.0", "ff.net.0.proj", "ff.net.2")
GEMMA_SPECIAL = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
WORDS = """a an the robot dances dance in rain while crowd cheers cat dog runs beach sunset city night blurry low
quality still frame frames watermark overlay titles has blurbit distorted ugly bad worst jpeg artifacts glitch noise
grain static shaky camera jitter motion blur overexposed underexposed washed out colors color banding flicker
inconsistent lighting deformed face hands extra limbs missing fingers duplicate text subtitles logo audio sound
music voice silence distortion hum hiss clipping muffled echo of and with on at by for from to is are ,  .""".split()


def _value(name: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """The harness's randomization rules, by tensor name."""
    if name.endswith("mean-of-means"):
        return 0.1 * torch.randn(shape, generator=generator)
    if name.endswith("std-of-means"):
        return 0.5 + torch.rand(shape, generator=generator)
    if "scale_shift_table" in name:
        return 0.1 * torch.randn(shape, generator=generator)
    if len(shape) >= 2:
        fan_in = 1
        for size in shape[1:]:
            fan_in *= size
        return torch.randn(shape, generator=generator) * fan_in**-0.5
    if name.endswith("bias"):
        return 0.02 * torch.randn(shape, generator=generator)
    return 1.0 + 0.1 * torch.randn(shape, generator=generator)


def _tensors(entries: list[list], seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: _value(name, tuple(shape), generator).to(torch.bfloat16) for name, shape in sorted(entries)}


def _lora(targets: list[list], seed: int, scale: float) -> dict[str, torch.Tensor]:
    """ComfyUI-style LoRA factors (diffusion_model.<path>.lora_A/B.weight) for the listed (path, shape) Linears."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for path, (out_features, in_features) in sorted(targets):
        tensors[f"diffusion_model.{path}.lora_A.weight"] = (
            torch.randn(LORA_RANK, in_features, generator=generator) * in_features**-0.5)
        tensors[f"diffusion_model.{path}.lora_B.weight"] = (
            scale * torch.randn(out_features, LORA_RANK, generator=generator) * LORA_RANK**-0.5)
    return {key: value.to(torch.bfloat16) for key, value in tensors.items()}


def write_tokenizer(folder: Path) -> None:
    """A lowercase word-level tokenizer that prepends <bos> (as Gemma's does), with the special tokens
    Gemma3Processor needs; loadable by AutoTokenizer under transformers 4.57 and 5.x."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocabulary = ["<pad>", "<eos>", "<bos>", "<unk>", *GEMMA_SPECIAL.values(), *dict.fromkeys(WORDS)]
    ids = {token: index for index, token in enumerate(vocabulary)}
    tokenizer = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
              "pad_token": "<pad>", "unk_token": "<unk>", "model_max_length": 1024, "padding_side": "left",
              "extra_special_tokens": GEMMA_SPECIAL, **GEMMA_SPECIAL}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def write_tiny_official(folder: str | Path, seed: int = 0) -> dict[str, str]:
    """Write the tiny official files to `folder` (about 90 MB, a few seconds) and return their paths by role."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(gzip.decompress(MANIFEST.read_bytes()))
    metadata = {"config": json.dumps(manifest["header"]), "model_version": "2.0.0"}
    tensors = _tensors(manifest["checkpoint"], seed)
    linears = [[key[len("model.diffusion_model."):-len(".weight")], shape] for key, shape in manifest["checkpoint"]
               if key.startswith("model.diffusion_model.transformer_blocks.") and key.endswith(".weight")
               and key.split(".")[4:-1] and ".".join(key.split(".")[4:-1]) in LORA_TARGETS]
    distilled_lora = _lora(linears, seed + 11, 0.5)
    paths = {name: folder / file for name, file in (
        ("checkpoint", "tiny-ltx-2-dev.safetensors"), ("distilled_checkpoint", "tiny-ltx-2-distilled.safetensors"),
        ("distilled_lora", "tiny-ltx-2-distilled-lora.safetensors"), ("ic_lora", "tiny-ic-lora.safetensors"),
        ("spatial_upsampler", "tiny-ltx-2-spatial-upscaler-x2.safetensors"), ("gemma_root", "gemma-root"))}
    save_file(tensors, str(paths["checkpoint"]), metadata=metadata)
    distilled = dict(tensors)
    for path, _ in linears:
        down = distilled_lora[f"diffusion_model.{path}.lora_A.weight"].float()
        up = distilled_lora[f"diffusion_model.{path}.lora_B.weight"].float()
        key = f"model.diffusion_model.{path}.weight"
        distilled[key] = (distilled[key].float() + up @ down).to(torch.bfloat16)
    save_file(distilled, str(paths["distilled_checkpoint"]), metadata=metadata)
    save_file(distilled_lora, str(paths["distilled_lora"]))
    save_file(_lora(linears, seed + 13, 0.3), str(paths["ic_lora"]), metadata={"reference_downscale_factor": "1"})
    save_file(_tensors(manifest["upsampler"], seed + 17), str(paths["spatial_upsampler"]),
              metadata={"config": json.dumps(manifest["upsampler_header"])})
    root = paths["gemma_root"]
    root.mkdir(exist_ok=True)
    save_file(_tensors(manifest["gemma"], seed + 7), str(root / "model.safetensors"), metadata={"format": "pt"})
    (root / "config.json").write_text(json.dumps(manifest["gemma_config"], indent=1))
    (root / "preprocessor_config.json").write_text(json.dumps(manifest["preprocessor_config"], indent=1))
    (root / "tokenizer.model").write_bytes(b"")  # ltx-pipelines only uses it to find the folder
    write_tokenizer(root)
    return {name: str(path) for name, path in paths.items()}


def write_media(folder: str | Path) -> dict[str, str]:
    """The conditioning inputs the recordings used: a 128x128 gradient PNG, 2 s of stereo tones (440 / 660 Hz) at
    16 kHz as a WAV, and the committed 17-frame MP4 with audio (media/video.mp4, written by ltx-pipelines)."""
    import shutil

    import av
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:128, 0:128]
    Image.fromarray(np.stack([x * 2, y * 2, (x + y)], -1).astype(np.uint8)).save(folder / "image.png")
    t = np.arange(32000) / 16000
    wave = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]) * 0.3
    with av.open(str(folder / "audio.wav"), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="stereo")
        frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16).T.reshape(1, -1), format="s16",
                                           layout="stereo")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    shutil.copy(Path(__file__).with_name("media") / "video.mp4", folder / "video.mp4")
    return {name: str(folder / file) for name, file in
            (("image", "image.png"), ("audio", "audio.wav"), ("video", "video.mp4"))}
