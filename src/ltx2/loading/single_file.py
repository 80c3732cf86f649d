"""Lightricks' original single-file checkpoints: the version, the header config, per-component configs, FP8 weights.

The header's `__metadata__["config"]` is a JSON document with a section per network in the official
code's (ltx-core's) vocabulary ("transformer", "vae", "audio_vae", "vocoder"; an upsampler file's config is flat);
since LTX-2.3 the header also names the `model_version` ("2.3.0"; LTX-2.5's files name "2.4" or "2.5", the
internal and the product number). LTX-2.5's sections are LTX-2.3's; its transformer's 2.5 switches (the video
feed-forward without biases, the keyframe marker) are read from the tensors. Each `*_config` function below
translates one section into the keyword arguments of the ltx2 class. Where a key is absent the official code's
default applies (noted where it differs from the diffusers folder's value), except for choices the tensors settle
(widths, register counts, attention blocks, projection biases), which are read from the tensor shapes and names,
and for what only the version settles, which takes diffusers' value for that version. Keys are renamed by `key_map`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch

from ..configs import LTX_2_5_DIFFUSION_DECODER, LTX_2_5_DURATION_HEAD
from ..transforms.fp8 import FLOAT8, FLOAT8_NAMES
from ..versions import LTX_2_0, LTX_2_3, LTX_2_5, VERSIONS, VIDEO_VAE_COMPRESSION
from .checkpoint import CheckpointError, TensorSource, _first
from .hub import resolve_file
from .key_map import MARKED_VERSIONS, Piece, split_single_file, version_keys, without_video_ff_bias

# Versions that share LTX-2.3's header sections and tensor layout (per-stream text projections, the BWE vocoder).
_LTX_2_3_LAYOUT = (LTX_2_3, LTX_2_5)

_HF_URL = re.compile(r"^https://huggingface\.co/([^/]+/[^/]+)/(?:blob|resolve)/([^/]+)/(.+)$")
_TRANSFORMER_SAME_NAMES = (
    "in_channels", "out_channels", "num_attention_heads", "attention_head_dim", "cross_attention_dim",
    "caption_channels", "num_layers", "norm_eps", "audio_in_channels", "audio_out_channels",
    "audio_num_attention_heads", "audio_attention_head_dim", "audio_cross_attention_dim",
    "timestep_scale_multiplier", "rope_type",
)
# The header transformer flags LTX-2.3 switches on (LTX-2.0 files leave them out).
_LTX_2_3_FLAGS = ("caption_proj_before_connector", "apply_gated_attention", "cross_attention_adaln",
                  "connector_apply_gated_attention")
# Each flag and the ltx2 transformer keys it sets (both streams, as in ltx-core).
_TRANSFORMER_FLAGS = {"apply_gated_attention": ("gated_attn", "audio_gated_attn"),
                      "cross_attention_adaln": ("cross_attn_mod", "audio_cross_attn_mod")}
_VERSION_NUMBER = re.compile(r"(\d+)\.(\d+)")
_GENERATOR_NAMES = {
    "upsample_initial_channel": "hidden_channels", "upsample_kernel_sizes": "upsample_kernel_sizes",
    "upsample_rates": "upsample_factors", "resblock_kernel_sizes": "resnet_kernel_sizes",
    "resblock_dilation_sizes": "resnet_dilations", "output_sampling_rate": "output_sampling_rate",
    "use_bias_at_final": "final_bias",
}
_DOWNSAMPLERS = {"compress_space_res": "spatial", "compress_time_res": "temporal", "compress_all_res": "spatiotemporal"}
_UPSAMPLERS = {"compress_space": "spatial", "compress_time": "temporal", "compress_all": "spatiotemporal"}
# The diffusion decoder's settings that no tensor shape shows.
_DIFFUSION_DECODER_SETTINGS = (
    "patch_size", "scaling_factor", "decoder_stage_kernels", "decoder_upsample_strides", "decoder_stage5_kernel",
    "decoder_timestep_scale_multiplier", "decoder_model_output_type", "decoder_num_inference_steps",
    "spatial_compression_ratio", "temporal_compression_ratio",
)
_AUDIO_DDCONFIG_NAMES = {
    "ch": "base_channels", "out_ch": "output_channels", "ch_mult": "ch_mult", "num_res_blocks": "num_res_blocks",
    "attn_resolutions": "attn_resolutions", "in_channels": "in_channels", "resolution": "resolution",
    "z_channels": "latent_channels", "norm_type": "norm_type", "causality_axis": "causality_axis",
    "dropout": "dropout", "mid_block_add_attention": "mid_block_add_attention", "double_z": "double_z",
}


class MappedSource:
    """A checkpoint seen through the key map: ltx2 keys, original tensors, FP8 weights dequantized to float32.

    A `Piece` (a third of a fused projection, a Linear with its gate folded in) is made when read; its stored dtype
    is the original's, but float32 where a gate scales FP8 weights (which then no longer are FP8)."""

    def __init__(self, source: TensorSource, names: dict[str, str | Piece], description: str):
        self._source = source
        self._names = names
        self._present = set(source.keys())
        self.description = description

    def keys(self) -> list[str]:
        return list(self._names)

    def shape(self, key: str) -> tuple[int, ...]:
        name = self._names[key]
        if isinstance(name, Piece):
            rows, *rest = self._source.shape(name.original)
            if rows % name.parts:
                raise CheckpointError(f"{self.description}: {name.original} fuses {name.parts} projections, but its "
                                      f"{rows} rows do not split into {name.parts} equal parts")
            return (rows // name.parts, *rest)
        return self._source.shape(name)

    def dtype(self, key: str) -> str:
        name = self._names[key]
        stored = self._source.dtype(name.original if isinstance(name, Piece) else name)
        return "F32" if isinstance(name, Piece) and name.gate and stored in FLOAT8_NAMES else stored

    def get_stored(self, key: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tensor as stored (FP8 left as is) and its per-tensor scale as float32, None without one."""
        name = self._names[key]
        if not isinstance(name, Piece):
            return self._stored(name)
        if name.gate:
            return self.get(key), None
        tensor, scale = self._stored(name.original)
        return tensor.chunk(name.parts)[name.index], scale  # a per-tensor scale holds for each part

    def get(self, key: str) -> torch.Tensor:
        name = self._names[key]
        if not (isinstance(name, Piece) and name.gate):
            return _dequantize(*self.get_stored(key))
        # As diffusers' converter folds a gate: rows scaled in float32, then back to the stored dtype.
        stored, scale = self._stored(name.original)
        weight = _dequantize(stored, scale).to(torch.float32)
        gate = self._source.get(name.gate).to(torch.float32)
        folded = (gate[:, None] if weight.ndim == 2 else gate) * weight
        return (folded if stored.dtype in FLOAT8 else folded.to(stored.dtype)).chunk(name.parts)[name.index]

    def _stored(self, original: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        scale_key = f"{original}_scale"
        scale = self._source.get(scale_key).to(torch.float32) if scale_key in self._present else None
        return self._source.get(original), scale


def _dequantize(tensor: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
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


def header_config(metadata: Mapping[str, Any], description: str) -> dict[str, Any]:
    """The header's config document (empty when the header has none)."""
    config = metadata.get("config", {})
    if not isinstance(config, dict):
        raise CheckpointError(f"{description}: the header's 'config' is not a JSON object")
    return config


def file_version(source: TensorSource) -> str:
    """The LTX version ("2.0", "2.3" or "2.5") of an opened original single file (see `checkpoint_version`)."""
    return checkpoint_version(read_metadata(source), source.keys(), source.description)


def checkpoint_version(metadata: Mapping[str, Any], keys: Iterable[str], description: str) -> str:
    """The LTX version ("2.0", "2.3" or "2.5") of an original single file from its header (`metadata` as
    `read_metadata` gives it, and its tensor names): what `model_version` names, else the oldest version that the
    header config (LTX-2.3's transformer flags, its vocoder's generator sections) and the tensors (VERSION_KEYS, the
    video feed-forward's biases) allow, else 2.0. Everything must allow one version: CheckpointError names what
    disagrees."""
    evidence: list[tuple[str, tuple[str, ...]]] = []  # (what the file holds, the versions it allows)
    named = metadata.get("model_version")
    if named is not None:
        evidence.append((f"model_version {str(named)!r}", (_named_version(str(named), description),)))
    config = header_config(metadata, description)
    transformer, vocoder = config.get("transformer"), config.get("vocoder")
    if isinstance(transformer, dict) and transformer:
        flags = [flag for flag in _LTX_2_3_FLAGS if transformer.get(flag)]
        what = f"with {', '.join(flags)}" if flags else "without LTX-2.3's flags"
        evidence.append((f"header transformer {what}", _LTX_2_3_LAYOUT if flags else (LTX_2_0,)))
    if isinstance(vocoder, dict) and vocoder:
        nested = any(isinstance(vocoder.get(part), dict) for part in ("vocoder", "bwe"))
        what = "header vocoder in vocoder and bwe sections" if nested else "flat header vocoder"
        evidence.append((what, _LTX_2_3_LAYOUT if nested else (LTX_2_0,)))
    keys = list(keys)
    for version, found in version_keys(keys).items():
        if found:
            evidence.append((f"keys {_first(found)}", MARKED_VERSIONS[version]))
    if without_video_ff_bias(keys):
        evidence.append(("a video feed-forward without biases", (LTX_2_5,)))
    allowed = [version for version in VERSIONS if all(version in versions for _, versions in evidence)]
    if not allowed:
        found = "; ".join(f"{what} (LTX-{' or '.join(versions)})" for what, versions in evidence)
        raise CheckpointError(f"{description}: mixes LTX versions: {found}")
    return allowed[0]


def _named_version(named: str, description: str) -> str:
    """ltx-core's reading of `model_version`: below 2.3 is LTX-2.0, 2.4 (LTX-2.5's internal number) and 2.5 are
    LTX-2.5; release tags may follow the number."""
    match = _VERSION_NUMBER.match(named.strip())
    if not match:
        raise CheckpointError(f"{description}: model_version {named!r} is not a version number")
    major, minor = int(match[1]), int(match[2])
    if major == 2 and minor <= 5:
        return LTX_2_5 if minor >= 4 else LTX_2_3 if minor == 3 else LTX_2_0
    loaded = ", LTX-".join(VERSIONS)
    raise CheckpointError(f"{description}: model_version {named!r} is not one ltx2 loads (LTX-{loaded} files)")


def video_scale_factors(vae: dict[str, Any]) -> tuple[int, int, int]:
    """(temporal, spatial, spatial) compression of the video VAE described by a `vae` section."""
    temporal, spatial = 1, vae.get("patch_size", 4)
    for name, _ in _blocks(vae.get("encoder_blocks", [])):
        kind = _DOWNSAMPLERS.get(name, "")
        temporal *= 2 if kind in ("temporal", "spatiotemporal") else 1
        spatial *= 2 if kind in ("spatial", "spatiotemporal") else 1
    return (temporal, spatial, spatial) if vae.get("encoder_blocks") else VIDEO_VAE_COMPRESSION


def transformer_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
    section = config.get("transformer", {})
    result = _copy(section, _TRANSFORMER_SAME_NAMES)
    for flag, keys in _TRANSFORMER_FLAGS.items():
        result.update(dict.fromkeys(keys, bool(section.get(flag, False))))
    # LTX-2.3 projects the captions in the connectors; the STG pass perturbs its self-attentions (diffusers'
    # LTX-2.3 and 2.5 configs; LTX-2.0's leaves them unperturbed).
    result["use_prompt_embeddings"] = not section.get("caption_proj_before_connector", False)
    result["perturbed_attn"] = version in _LTX_2_3_LAYOUT
    # LTX-2.5's switches, as the tensors settle them: feed-forward biases, the keyframe marker, the prompt AdaLN.
    keys = set(source.keys())
    result["ff_bias"] = "transformer_blocks.0.ff.net.0.proj.bias" in keys
    result["audio_ff_bias"] = "transformer_blocks.0.audio_ff.net.0.proj.bias" in keys
    result["use_keyframes_abs_pos_embedding"] = "keyframes_abs_pos_embedding" in keys
    if section.get("cross_attention_adaln"):
        result["use_prompt_adaln_single"] = "prompt_adaln.linear.weight" in keys
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


def connectors_config(
    config: dict[str, Any], source: MappedSource, version: str, text_width: int | None = None
) -> dict[str, Any]:
    section = config.get("transformer", {})
    keys = set(source.keys())
    # LTX-2.3 and 2.5 project the text features once per stream (biased Linears to each stream's width).
    per_stream = version in _LTX_2_3_LAYOUT
    projections = ("video_text_proj_in", "audio_text_proj_in") if per_stream else ("text_proj_in",)
    caption_channels = _caption_channels(section, source, version, projections[0], text_width)
    result: dict[str, Any] = {
        "caption_channels": caption_channels,
        "text_proj_in_factor": source.shape(f"{projections[0]}.weight")[1] // caption_channels,
        "per_modality_projections": per_stream,
        "proj_bias": f"{projections[0]}.bias" in keys,
        "rope_type": section.get("rope_type", "split"),
        "rope_double_precision": section.get("frequencies_precision") == "float64",
        # The official default is [1] when the header names no connector positions.
        "connector_rope_base_seq_len": section.get("connector_positional_embedding_max_pos", [1])[0],
    }
    if per_stream:
        result.update(video_hidden_dim=source.shape("video_text_proj_in.weight")[0],
                      audio_hidden_dim=source.shape("audio_text_proj_in.weight")[0])
    if "positional_embedding_theta" in section:
        result["rope_theta"] = section["positional_embedding_theta"]
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
        result[f"{stream}_gated_attn"] = bool(section.get("connector_apply_gated_attention", False))
    return result


def _caption_channels(
    section: dict[str, Any], source: MappedSource, version: str, projection: str, text_width: int | None
) -> int:
    """The text encoder's width, whose every hidden state (layers + 1 of them) the connectors' projection reads.

    LTX-2.0's projection maps the features to that width, which its shape shows. LTX-2.3's and 2.5's map them to
    each stream's width: their input (width x hidden states) does not show the split, so it is the header's
    `caption_channels`, else that of the text encoder it is loaded with (`text_width`), else LTX-2.3's Gemma 3 12B
    (3840); LTX-2.5's text encoder, a Gemma 4, has no fixed width, so there one of the first two must say it."""
    features = source.shape(f"{projection}.weight")[1]
    if projection == "text_proj_in":
        return source.shape(f"{projection}.weight")[0]
    width, origin = section.get("caption_channels"), "the header's transformer caption_channels"
    if width is None:
        width, origin = text_width, "the text encoder's hidden_size"
    if width is None and version == LTX_2_5:
        raise CheckpointError(
            f"{source.description}: the header names no transformer caption_channels, and the {features} text "
            f"features of {projection}.weight do not show the text encoder's width (LTX-2.5's is a Gemma 4 of any "
            "size); load the file with LTX2Pipeline.from_single_file(..., text_encoder=...), which reads it there"
        )
    if width is None:
        width, origin = 3840, "LTX-2.3's text encoder, Gemma 3 12B"
    if not isinstance(width, int) or width <= 0 or features % width:
        raise CheckpointError(f"{source.description}: caption_channels {width!r} ({origin}) does not divide the "
                              f"{features} text features of {projection}.weight")
    return width


def video_vae_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
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


def audio_vae_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
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


def vocoder_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
    """LTX-2.0's vocoder (one flat generator section), or LTX-2.3's with bandwidth extension: a `vocoder` and a
    `bwe` generator section, the latter also naming the mel front end between the two and the sample rates."""
    section = config.get("vocoder", {})
    if version == LTX_2_0:
        return {**_generator_config(section, "1", source.description), "in_channels": source.shape("conv_in.weight")[1]}
    result: dict[str, Any] = {}
    for prefix, name, module in (("", "vocoder", "vocoder"), ("bwe_", "bwe", "bwe_generator")):
        generator = _generator_config(section[name], "AMP1", source.description)
        generator.pop("output_sampling_rate", None)  # the BWE model's own input and output rates stand instead
        # diffusers 0.42.1's LTX-2.3 conversion ends neither generator with an activation, where ltx-core bounds
        # the 16 kHz waveform (tanh, or clamp as LTX-2.3's header asks) before the extension: we follow diffusers.
        generator.update(final_act_fn=None, in_channels=source.shape(f"{module}.conv_in.weight")[1])
        result.update({prefix + key: value for key, value in generator.items()})
    bwe = section["bwe"]
    result.update(_copy(bwe, {"n_fft": "filter_length", "hop_length": "hop_length", "num_mels": "num_mel_channels",
                              "input_sampling_rate": "input_sampling_rate",
                              "output_sampling_rate": "output_sampling_rate"}))
    if "n_fft" in bwe:
        result["window_length"] = bwe["n_fft"]  # ltx-core's STFT windows span n_fft; `win_size` is not read
    return result


def _generator_config(section: dict[str, Any], resblock: str, description: str) -> dict[str, Any]:
    """One vocoder generator: LTX-2.0's (resblock "1": leaky ReLU) or LTX-2.3's (resblock "AMP1": snake or
    snake-beta activations, anti-aliased at 2x with 12 taps, ltx-core's fixed choice and LTX2Vocoder's default)."""
    found = section.get("resblock", "1")  # ltx-core's default
    if found != resblock:
        raise CheckpointError(f"{description}: vocoder resblock {found!r}, where this LTX version's vocoder has "
                              f"{resblock!r}")
    result = _copy(section, _GENERATOR_NAMES)
    result["out_channels"] = 2 if section.get("stereo", True) else 1
    if resblock == "AMP1":
        result.update(act_fn=section.get("activation", "snake"), antialias=True)
    if not section.get("apply_final_activation", True):
        result["final_act_fn"] = None
    else:
        result["final_act_fn"] = "tanh" if section.get("use_tanh_at_final", True) else "clamp"
    return result


def upsampler_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
    """An upsampler file's flat config (spatial x2, x1.5 rational, temporal x2); widths and depth follow from its
    tensors, and so does the resampler's kind where the header does not name it."""
    keys = source.keys()
    result = {
        "in_channels": source.shape("initial_conv.weight")[1],
        "mid_channels": source.shape("initial_conv.weight")[0],
        "num_blocks_per_stage": len({key.split(".")[1] for key in keys if key.startswith("res_blocks.")}),
        "use_rational_resampler": "upsampler.blur_down.kernel" in keys,
    }
    result.update(_copy(config, {"dims": "dims", "spatial_upsample": "spatial_upsample", "temporal_upsample":
                                 "temporal_upsample", "spatial_scale": "rational_spatial_scale",
                                 "rational_resampler": "use_rational_resampler"}))
    return result


def duration_head_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
    """LTX-2.5's duration head: its widths from the tensors; the header describes none of it, and the pooler's head
    count, which no shape shows, is the one it was trained with (diffusers' converter fixes it the same way)."""
    return {
        "video_cross_attention_dim": source.shape("video_input_proj.weight")[1],
        "audio_cross_attention_dim": source.shape("audio_input_proj.weight")[1],
        "pooler_hidden_dim": source.shape("attention_pooler.to_q.weight")[1],
        "num_queries": source.shape("attention_pooler.query_tokens")[0],
        "mlp_hidden_dim": source.shape("mlp_hidden.weight")[0],
        "num_pooler_heads": LTX_2_5_DURATION_HEAD["num_pooler_heads"],
    }


def diffusion_decoder_config(config: dict[str, Any], source: MappedSource, version: str) -> dict[str, Any]:
    """LTX-2.5's diffusion decoder: widths, depths, head size and channel reductions from the tensors; the kernels,
    strides and sampling settings, which no shape shows, from the header's `vae` section where it names them (under
    the diffusers names), else LTX-2.5's (diffusers' converter builds every file with those)."""
    keys = source.keys()
    stages = sorted({int(key.split(".")[2]) for key in keys if key.startswith("decoder.det_stages.")})
    widths = [source.shape(f"decoder.det_stages.{stage}.0.norm1.weight")[0] for stage in stages]
    widths.append(source.shape("decoder.conv_in_x_t.weight")[0])
    depths = [len({key.split(".")[3] for key in keys if key.startswith(f"decoder.det_stages.{stage}.")})
              for stage in stages]
    depths.append(len({key.split(".")[2] for key in keys if key.startswith("decoder.diff_blocks.")}))
    section = config.get("vae", {})
    result = {name: _tuples(section.get(name, LTX_2_5_DIFFUSION_DECODER[name])) for name in _DIFFUSION_DECODER_SETTINGS}
    result.update(
        latent_channels=source.shape("decoder.conv_in.weight")[1],
        out_channels=source.shape("decoder.conv_out.weight")[0] // result["patch_size"] ** 2,
        decoder_head_dim=source.shape("decoder.det_stages.0.0.attn.norm_q.weight")[0],
        decoder_stage_channels=tuple(widths),
        decoder_stage_depths=tuple(depths),
        decoder_upsample_channel_reductions=tuple(wide // narrow for wide, narrow in pairwise(widths)),
        decoder_t_emb_dim=source.shape("decoder.shared_adaln.proj.weight")[1],
    )
    return result


def _tuples(value: Any) -> Any:
    """JSON's nested lists as the nested tuples of the constructor's defaults."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list | tuple) else value


# The header sections each network of an LTX-2.3 file is read from.
_LTX_2_3_SECTIONS = {"transformer": ("transformer",), "connectors": ("transformer",), "vae": ("vae",),
                     "audio_vae": ("audio_vae",), "vocoder": ("vocoder", "vocoder.vocoder", "vocoder.bwe")}
CONFIG_BUILDERS = {
    "transformer": transformer_config,
    "connectors": connectors_config,
    "vae": video_vae_config,
    "audio_vae": audio_vae_config,
    "vocoder": vocoder_config,
    "latent_upsampler": upsampler_config,
    "duration_head": duration_head_config,
    "diffusion_decoder": diffusion_decoder_config,
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
        if component == "vae" and groups["diffusion_decoder"]:
            raise CheckpointError(f"{source.description}: its VAE decoder (vae.decoder.*) is LTX-2.5's diffusion "
                                  "decoder, so it holds no conv VAE; LTX2VideoDiffusionDecoderModel loads it")
    if not names:
        raise CheckpointError(f"{source.description}: holds no {component} weights")
    return MappedSource(source, names, f"{source.description} ({component})")


def component_config(
    source: TensorSource, component: str, network: str, versions: tuple[str, ...], text_width: int | None = None
) -> tuple[dict[str, Any], MappedSource]:
    """The constructor arguments of `network`, the `component` of an original checkpoint, and its tensors; the
    file must be of one of `versions` (LTX-2.3 replaced the vocoder). LTX-2.5's files are read as LTX-2.3's.
    `text_width`: the hidden size of the text encoder the connectors will read, where the caller knows it."""
    metadata = read_metadata(source)
    config = header_config(metadata, source.description)
    version = checkpoint_version(metadata, source.keys(), source.description)
    if version not in versions:
        raise CheckpointError(f"{source.description}: an LTX-{version} file; {network} is the {component} of "
                              f"LTX-{' and LTX-'.join(versions)} files")
    # Where a section is absent the official defaults apply, and they build LTX-2.0's networks.
    for section in _LTX_2_3_SECTIONS.get(component, ()) if version in _LTX_2_3_LAYOUT else ():
        value: Any = config
        for part in section.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, dict):
            raise CheckpointError(f"{source.description}: an LTX-{version} file whose header config has no "
                                  f"{section!r} section ({network} is read from it)")
    mapped = component_source(source, component)
    if component == "connectors":
        return connectors_config(config, mapped, version, text_width), mapped
    return CONFIG_BUILDERS[component](config, mapped, version), mapped
