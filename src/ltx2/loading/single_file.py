"""Lightricks' original single-file checkpoints: the header config, per-component configs, FP8 weights.

The header's `__metadata__["config"]` is a JSON document with a section per network in the official
code's vocabulary ("transformer", "vae", "audio_vae", "vocoder"; the upsampler file's config is flat).
Each `*_config` function below translates one section into the keyword arguments of the ltx2 class.
Where a key is absent the official code's default applies (noted where it differs from the diffusers
folder's value), except for choices the tensors themselves settle (widths, register counts, attention
blocks), which are read from the tensor shapes and names. Keys are renamed by `key_map`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from ..transforms.fp8 import FLOAT8
from .checkpoint import CheckpointError, TensorSource, _first
from .hub import resolve_file
from .key_map import split_single_file

_HF_URL = re.compile(r"^https://huggingface\.co/([^/]+/[^/]+)/(?:blob|resolve)/([^/]+)/(.+)$")
_TRANSFORMER_SAME_NAMES = (
    "in_channels", "out_channels", "num_attention_heads", "attention_head_dim", "cross_attention_dim",
    "caption_channels", "num_layers", "norm_eps", "audio_in_channels", "audio_out_channels",
    "audio_num_attention_heads", "audio_attention_head_dim", "audio_cross_attention_dim",
    "timestep_scale_multiplier", "rope_type",
)
# Later LTX versions switch these on; ltx2 implements the LTX-2.0 networks only.
_LATER_VERSION_FLAGS = ("caption_proj_before_connector", "apply_gated_attention", "cross_attention_adaln",
                        "connector_apply_gated_attention")
_DOWNSAMPLERS = {"compress_space_res": "spatial", "compress_time_res": "temporal", "compress_all_res": "spatiotemporal"}
_UPSAMPLERS = {"compress_space": "spatial", "compress_time": "temporal", "compress_all": "spatiotemporal"}
_AUDIO_DDCONFIG_NAMES = {
    "ch": "base_channels", "out_ch": "output_channels", "ch_mult": "ch_mult", "num_res_blocks": "num_res_blocks",
    "attn_resolutions": "attn_resolutions", "in_channels": "in_channels", "resolution": "resolution",
    "z_channels": "latent_channels", "norm_type": "norm_type", "causality_axis": "causality_axis",
    "dropout": "dropout", "mid_block_add_attention": "mid_block_add_attention", "double_z": "double_z",
}


class MappedSource:
    """A checkpoint seen through the key map: ltx2 keys, original tensors, FP8 weights dequantized to float32."""

    def __init__(self, source: TensorSource, names: dict[str, str], description: str):
        self._source = source
        self._names = names
        self._present = set(source.keys())
        self.description = description

    def keys(self) -> list[str]:
        return list(self._names)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._source.shape(self._names[key])

    def dtype(self, key: str) -> str:
        return self._source.dtype(self._names[key])

    def get_stored(self, key: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tensor as stored (FP8 left as is) and its per-tensor scale as float32, None without one."""
        original = self._names[key]
        scale_key = f"{original}_scale"
        scale = self._source.get(scale_key).to(torch.float32) if scale_key in self._present else None
        return self._source.get(original), scale

    def get(self, key: str) -> torch.Tensor:
        tensor, scale = self.get_stored(key)
        if tensor.dtype in FLOAT8:
            # Scaled FP8 stores weight / scale per tensor; unscaled FP8 is a plain cast.
            tensor = tensor.to(torch.float32)
            if scale is not None:
                tensor = tensor * scale
        return tensor


def open_single_file(path_or_url: str | Path, **download_options: Any) -> TensorSource:
    """Open a local .safetensors file, or download one named as `owner/repo/file.safetensors` or by its Hub URL."""
    path = Path(path_or_url)
    if not path.is_file():
        text = str(path_or_url)
        match = _HF_URL.match(text)
        if match:
            repo_id, revision, filename = match.groups()
            download_options.setdefault("revision", revision)
        else:
            parts = text.split("/")
            if len(parts) < 3 or not text.endswith(".safetensors") or text.startswith((".", "/")):
                raise FileNotFoundError(f"{text}: no such file, and not 'owner/repo/file.safetensors' on the Hub")
            repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
        path = resolve_file(repo_id, filename, **download_options)
    return TensorSource([path], str(path))


def read_metadata(source: TensorSource) -> dict[str, Any]:
    """The header's metadata with JSON values parsed (the official files store `config` as a JSON string)."""
    metadata: dict[str, Any] = {}
    for key, value in source.metadata().items():
        try:
            metadata[key] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            metadata[key] = value
    return metadata


def _copy(section: dict[str, Any], names: dict[str, str] | tuple[str, ...]) -> dict[str, Any]:
    pairs = names.items() if isinstance(names, dict) else ((name, name) for name in names)
    return {ours: section[theirs] for theirs, ours in pairs if theirs in section}


def _blocks(entries: list) -> list[tuple[str, dict[str, Any]]]:
    return [(name, {"num_layers": params} if isinstance(params, int) else dict(params)) for name, params in entries]


def check_version(config: dict[str, Any], description: str) -> None:
    """Refuse checkpoints of later LTX versions, whose networks ltx2 does not build."""
    transformer = config.get("transformer", {})
    enabled = [flag for flag in _LATER_VERSION_FLAGS if transformer.get(flag)]
    if enabled or isinstance(config.get("vocoder", {}).get("vocoder"), dict):
        features = ", ".join(enabled) or "vocoder with bandwidth extension"
        raise CheckpointError(f"{description}: a later LTX version than 2.0 ({features}); ltx2 implements LTX-2.0")


def video_scale_factors(vae: dict[str, Any]) -> tuple[int, int, int]:
    """(temporal, spatial, spatial) compression of the video VAE described by a `vae` section."""
    temporal, spatial = 1, vae.get("patch_size", 4)
    for name, _ in _blocks(vae.get("encoder_blocks", [])):
        kind = _DOWNSAMPLERS.get(name, "")
        temporal *= 2 if kind in ("temporal", "spatiotemporal") else 1
        spatial *= 2 if kind in ("spatial", "spatiotemporal") else 1
    return (temporal, spatial, spatial) if vae.get("encoder_blocks") else (8, 32, 32)


def transformer_config(config: dict[str, Any], source: MappedSource) -> dict[str, Any]:
    section = config.get("transformer", {})
    result = _copy(section, _TRANSFORMER_SAME_NAMES)
    if "positional_embedding_theta" in section:
        result["rope_theta"] = section["positional_embedding_theta"]
    if "positional_embedding_max_pos" in section:
        frames, height, width = section["positional_embedding_max_pos"]
        result.update(pos_embed_max_pos=frames, base_height=height, base_width=width)
    if "audio_positional_embedding_max_pos" in section:
        result["audio_pos_embed_max_pos"] = section["audio_positional_embedding_max_pos"][0]
    # Official defaults when absent: float32 RoPE grids and an audio-video timestep multiplier of 1.
    result["rope_double_precision"] = section.get("frequencies_precision") == "float64"
    result["cross_attn_timestep_scale_multiplier"] = section.get("av_ca_timestep_scale_multiplier", 1)
    result["vae_scale_factors"] = video_scale_factors(config.get("vae", {}))
    audio = _audio_sampling(config)
    result.update(_copy(audio, {"sample_rate": "audio_sampling_rate", "mel_hop_length": "audio_hop_length"}))
    return result


def connectors_config(config: dict[str, Any], source: MappedSource) -> dict[str, Any]:
    section = config.get("transformer", {})
    caption_channels = section.get("caption_channels", 3840)
    result: dict[str, Any] = {
        "caption_channels": caption_channels,
        "text_proj_in_factor": source.shape("text_proj_in.weight")[1] // caption_channels,
        "rope_type": section.get("rope_type", "split"),
        "rope_double_precision": section.get("frequencies_precision") == "float64",
        # The official default is [1] when the header names no connector positions.
        "connector_rope_base_seq_len": section.get("connector_positional_embedding_max_pos", [1])[0],
    }
    if "positional_embedding_theta" in section:
        result["rope_theta"] = section["positional_embedding_theta"]
    keys = set(source.keys())
    for stream in ("video", "audio"):
        # The audio connector falls back to the video connector's sizes, as in the official code.
        for field in ("num_attention_heads", "attention_head_dim", "num_layers"):
            fallback = section.get(f"connector_{field}")
            value = section.get(f"audio_connector_{field}", fallback) if stream == "audio" else fallback
            if value is not None:
                result[f"{stream}_connector_{field}"] = value
        registers = f"{stream}_connector.learnable_registers"
        count = source.shape(registers)[0] if registers in keys else None
        result[f"{stream}_connector_num_learnable_registers"] = count
    return result


def video_vae_config(config: dict[str, Any], source: MappedSource) -> dict[str, Any]:
    section = config.get("vae", {})
    result = _copy(section, ("in_channels", "out_channels", "latent_channels", "patch_size", "timestep_conditioning"))
    result.update(_copy(section, {"causal_decoder": "decoder_causal", "encoder_spatial_padding_mode":
                                  "encoder_spatial_padding_mode", "decoder_spatial_padding_mode":
                                  "decoder_spatial_padding_mode"}))
    if "spatial_padding_mode" in section:
        result.setdefault("encoder_spatial_padding_mode", section["spatial_padding_mode"])
        result.setdefault("decoder_spatial_padding_mode", section["spatial_padding_mode"])
    if "timestep_conditioning" not in section:
        result["timestep_conditioning"] = any(key.startswith("decoder.time_embedder.") for key in source.keys())
    if "encoder_blocks" in section:
        result.update(_encoder_layout(_blocks(section["encoder_blocks"]), section.get("latent_channels", 128)))
    if "decoder_blocks" in section:
        result.update(_decoder_layout(_blocks(section["decoder_blocks"]), section.get("decoder_base_channels", 128)))
    temporal, spatial, _ = video_scale_factors(section)
    result.update(temporal_compression_ratio=temporal, spatial_compression_ratio=spatial)
    return result


def _encoder_layout(blocks: list[tuple[str, dict[str, Any]]], width: int) -> dict[str, Any]:
    """The official encoder list (ResNet groups between downsamplers) as diffusers' per-block lists."""
    layers, widths, kinds = [], [], []
    for name, params in blocks:
        if name == "res_x":
            layers.append(params["num_layers"])
        elif name in _DOWNSAMPLERS:
            width *= params.get("multiplier", 2)
            widths.append(width)
            kinds.append(_DOWNSAMPLERS[name])
        else:
            raise CheckpointError(f"video VAE encoder block {name!r} is not an LTX-2.0 block")
    return {"layers_per_block": layers, "block_out_channels": widths, "downsample_type": kinds,
            "down_block_types": ["LTX2VideoDownBlock3D"] * len(widths), "spatio_temporal_scaling": [True] * len(widths)}


def _decoder_layout(blocks: list[tuple[str, dict[str, Any]]], width: int) -> dict[str, Any]:
    """The official decoder list, written in encoder order like diffusers' lists (but upsample_type, which
    diffusers keeps in decoding order)."""
    layers, noise, widths, kinds, residual, factors = [], [], [], [], [], []
    for name, params in blocks:
        if name == "res_x":
            layers.append(params["num_layers"])
            noise.append(params.get("inject_noise", False))
        elif name in _UPSAMPLERS:
            factor = params.get("multiplier", 1)
            width *= factor
            widths.append(width)
            kinds.append(_UPSAMPLERS[name])
            residual.append(params.get("residual", False))
            factors.append(factor)
        else:
            raise CheckpointError(f"video VAE decoder block {name!r} is not an LTX-2.0 block")
    return {"decoder_layers_per_block": layers, "decoder_inject_noise": noise, "decoder_block_out_channels": widths,
            "upsample_type": kinds[::-1], "upsample_residual": residual, "upsample_factor": factors,
            "decoder_spatio_temporal_scaling": [True] * len(widths)}


def _audio_sampling(config: dict[str, Any]) -> dict[str, Any]:
    """Sample rate, hop and causality of the mel front end (the transformer's audio RoPE uses them too)."""
    section = config.get("audio_vae", {})
    result = _copy(section.get("model", {}).get("params", {}), {"sampling_rate": "sample_rate"})
    result.update(_copy(section.get("preprocessing", {}).get("stft", {}),
                        {"hop_length": "mel_hop_length", "causal": "is_causal"}))
    return result


def audio_vae_config(config: dict[str, Any], source: MappedSource) -> dict[str, Any]:
    section = config.get("audio_vae", {})
    ddconfig = section.get("model", {}).get("params", {}).get("ddconfig", {})
    result = {**_copy(ddconfig, _AUDIO_DDCONFIG_NAMES), **_audio_sampling(config)}
    mel_bins = (ddconfig.get("mel_bins") or section.get("preprocessing", {}).get("mel", {}).get("n_mel_channels")
                or section.get("variables", {}).get("mel_bins"))
    if mel_bins:
        result["mel_bins"] = mel_bins
    keys = source.keys()
    result.setdefault("mid_block_add_attention", any(".mid.attn_1." in key for key in keys))
    if not any(".attn." in key for key in keys):
        result["attn_resolutions"] = None
    return result


def vocoder_config(config: dict[str, Any], source: MappedSource) -> dict[str, Any]:
    section = config.get("vocoder", {})
    if section.get("resblock", "1") != "1":
        raise CheckpointError(f"vocoder resblock {section['resblock']!r} is not the LTX-2.0 vocoder's ('1')")
    result = _copy(section, {"upsample_initial_channel": "hidden_channels", "upsample_kernel_sizes":
                             "upsample_kernel_sizes", "upsample_rates": "upsample_factors", "resblock_kernel_sizes":
                             "resnet_kernel_sizes", "resblock_dilation_sizes": "resnet_dilations",
                             "output_sampling_rate": "output_sampling_rate", "use_bias_at_final": "final_bias"})
    result["in_channels"] = source.shape("conv_in.weight")[1]
    result["out_channels"] = 2 if section.get("stereo", True) else 1
    if not section.get("apply_final_activation", True):
        result["final_act_fn"] = None
    else:
        result["final_act_fn"] = "tanh" if section.get("use_tanh_at_final", True) else "clamp"
    return result


def upsampler_config(config: dict[str, Any], source: MappedSource) -> dict[str, Any]:
    """The upsampler file's flat config; widths, depth and resampler kind also follow from its tensors."""
    keys = source.keys()
    result = {
        "in_channels": source.shape("initial_conv.weight")[1],
        "mid_channels": source.shape("initial_conv.weight")[0],
        "num_blocks_per_stage": len({key.split(".")[1] for key in keys if key.startswith("res_blocks.")}),
        "use_rational_resampler": "upsampler.blur_down.kernel" in keys,
    }
    result.update(_copy(config, {"dims": "dims", "spatial_upsample": "spatial_upsample", "temporal_upsample":
                                 "temporal_upsample", "spatial_scale": "rational_spatial_scale"}))
    return result


CONFIG_BUILDERS = {
    "transformer": transformer_config,
    "connectors": connectors_config,
    "vae": video_vae_config,
    "audio_vae": audio_vae_config,
    "vocoder": vocoder_config,
    "latent_upsampler": upsampler_config,
}


def component_source(source: TensorSource, component: str) -> MappedSource:
    """The tensors of one component of an original checkpoint, under ltx2 names."""
    if component == "latent_upsampler":
        names = {key: key for key in source.keys()}
    else:
        groups = split_single_file(source.keys())
        names = groups[component]
        if groups["unknown"]:
            raise CheckpointError(f"{source.description}: keys under no LTX-2 prefix: {_first(groups['unknown'])}")
    if not names:
        raise CheckpointError(f"{source.description}: holds no {component} weights")
    return MappedSource(source, names, f"{source.description} ({component})")


def component_config(source: TensorSource, component: str) -> tuple[dict[str, Any], MappedSource]:
    """The ltx2 constructor arguments of one component of an original checkpoint, and its tensors."""
    config = read_metadata(source).get("config", {})
    if not isinstance(config, dict):
        raise CheckpointError(f"{source.description}: the header's 'config' is not a JSON object")
    check_version(config, source.description)
    mapped = component_source(source, component)
    return CONFIG_BUILDERS[component](config, mapped), mapped
