"""The networks of an official pipeline, loaded by ltx2 from the files ltx-pipelines takes, and the ways ltx-core
1.0.0 prepares them that differ from diffusers':

- STG perturbs the listed blocks' self-attentions (value pass-through) for every checkpoint, LTX-2.0 included;
- a LoRA is fused into the weights, its delta (B * strength) @ A computed in the LoRA file's dtype, cast to the
  model dtype, added to the weight and rounded there, with no alpha / rank scaling;
- the transformer, connectors and video VAE round as ltx-core does, op by op (`rounding`);
- the Gemma root's own config.json is read (ltx-core hard-codes the 12B architecture).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..loading.config import Config
from ..loading.lora import open_lora, plan_adapter
from ..loading.single_file import component_source, open_single_file
from ..models.upsampler import LTX2LatentUpsamplerModel
from ..pipelines.text_to_video import LTX2Pipeline
from ..text import PromptEncoder, load_text_encoder
from .rounding import round_as_ltx_core
from .types import LoraPathStrengthAndSDOps

MAX_TEXT_TOKENS = 1024


@dataclass
class TextEncoding:
    """One prompt's text context per stream, (1, L, width) each."""

    video: torch.Tensor
    audio: torch.Tensor


def _check_file(name: str, path: str | Path | None, folder: bool = False) -> Path:
    if path is None:
        raise ValueError(f"{name}=None: a path is required")
    resolved = Path(path).expanduser()
    if not (resolved.is_dir() if folder else resolved.is_file()):
        kind = "folder" if folder else "file"
        raise ValueError(f"{name}={str(path)!r}: no such {kind}")
    return resolved


def check_loras(name: str, loras: Sequence[LoraPathStrengthAndSDOps]) -> list[LoraPathStrengthAndSDOps]:
    """(path, strength[, sd_ops]) entries, checked: the file exists and the strength is a number."""
    checked = []
    for entry in loras or ():
        if not isinstance(entry, tuple) or len(entry) < 2:
            raise ValueError(f"{name}: each LoRA must be (path, strength, sd_ops), got {entry!r}")
        path, strength = entry[0], entry[1]
        _check_file(f"{name} path", path)
        if not isinstance(strength, (int, float)):
            raise ValueError(f"{name}: strength {strength!r} of {path} must be a number")
        checked.append(LoraPathStrengthAndSDOps(str(path), float(strength), *entry[2:3]))
    return checked


class OfficialModels:
    """What ltx-pipelines' ModelLedger hands out, as ltx2 networks: the networks of one checkpoint in one dtype,
    the Gemma text encoder of a gemma root, an optional spatial upsampler, and the transformer's LoRA fusion."""

    def __init__(self, checkpoint_path: str, gemma_root: str, loras: Sequence[LoraPathStrengthAndSDOps] = (),
                 spatial_upsampler_path: str | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.bfloat16):
        self.checkpoint_path = _check_file("checkpoint_path", checkpoint_path)
        root = _check_file("gemma_root", gemma_root, folder=True)
        if not (root / "config.json").is_file():
            raise ValueError(f"gemma_root={str(gemma_root)!r} has no config.json (the Gemma 3 config is read from it)")
        self.loras = check_loras("loras", loras)
        upsampler_file = _check_file("spatial_upsampler_path", spatial_upsampler_path) if spatial_upsampler_path \
            else None
        self.device = torch.device(device) if device is not None else _default_device()
        self.dtype = dtype
        from transformers import AutoTokenizer

        text_encoder = load_text_encoder(root, dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(root))
        pipe = LTX2Pipeline.from_single_file(self.checkpoint_path, torch_dtype=dtype, text_encoder=text_encoder,
                                             tokenizer=tokenizer)
        self.transformer, self.connectors, self.vae = pipe.transformer, pipe.connectors, pipe.vae
        self.audio_vae, self.vocoder, self.text_encoder, self.tokenizer = (
            pipe.audio_vae, pipe.vocoder, pipe.text_encoder, pipe.tokenizer)
        # ltx-core 1.0.0 perturbs the STG blocks' self-attentions whatever the checkpoint's version.
        self.transformer.config = Config({**self.transformer.config, "perturbed_attn": True})
        for network in (self.transformer, self.connectors, self.vae):
            round_as_ltx_core(network)
        self.upsampler = (LTX2LatentUpsamplerModel.from_single_file(upsampler_file, torch_dtype=dtype)
                          if upsampler_file is not None else None)
        for network in self.networks():
            network.to(self.device).eval()
        self.prompt_encoder = PromptEncoder(cache_size=0)
        self._fused: dict[str, list[LoraPathStrengthAndSDOps]] = {}
        self._modified: set[str] = set()
        self.use_loras(self.loras)

    def networks(self) -> list[nn.Module]:
        return [network for network in (self.transformer, self.connectors, self.vae, self.audio_vae, self.vocoder,
                                        self.text_encoder, self.upsampler) if network is not None]

    @property
    def model_version(self) -> str:
        return "2.3" if self.transformer.config.get("cross_attn_mod") or self.transformer.config.get("gated_attn") \
            else "2.0"

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> list[TextEncoding]:
        """Each prompt through Gemma and the connectors on its own (batch 1), as ltx-pipelines encodes them."""
        results = []
        for prompt in prompts:
            embeds, mask = self.prompt_encoder.encode(self.tokenizer, self.text_encoder, [prompt], MAX_TEXT_TOKENS,
                                                      self.device)
            video, audio, _ = self.connectors(embeds.to(self.device), mask.to(self.device), padding_side="left")
            results.append(TextEncoding(video, audio))
        return results

    @torch.no_grad()
    def use_loras(self, loras: Sequence[LoraPathStrengthAndSDOps]) -> None:
        """Set the transformer's weights to the checkpoint's with `loras` fused the official way. Weights an earlier
        call changed and these LoRAs leave alone are read back from the checkpoint."""
        products: dict[str, list[torch.Tensor]] = {}
        for path, strength, *_ in check_loras("loras", loras):
            with open_lora(path) as source:
                for module in plan_adapter(source, {"transformer": self.transformer}):
                    down, up = source.get(module.down_key), source.get(module.up_key)
                    products.setdefault(module.path, []).append(torch.matmul(up * strength, down).to(self.dtype))
        deltas = {path: parts[0] if len(parts) == 1 else torch.stack(parts).sum(0) for path, parts in products.items()}
        with open_single_file(self.checkpoint_path) as source:
            mapped = component_source(source, "transformer")
            for path in sorted(self._modified | set(deltas)):
                weight = mapped.get(f"{path}.weight").to(self.dtype)
                linear = self.transformer.get_submodule(path)
                fused = deltas[path].add_(weight) if path in deltas else weight
                linear.weight.data.copy_(fused.to(linear.weight.device))
        self._modified = set(deltas)


def _default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
