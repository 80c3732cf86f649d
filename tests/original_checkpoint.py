"""Synthetic checkpoints in Lightricks' original single-file layout, at tiny sizes, from reference models.

The reference (diffusers 0.42.1) networks are built with random weights; their state dicts are renamed
back to the original key names and written with a header config in the official (ltx-core's) vocabulary,
for LTX-2.0 (`ltx-2-19b-dev.safetensors`), LTX-2.3 (`ltx-2.3-22b-dev.safetensors`) and LTX-2.5 (the combined layout
diffusers' converter reads with `--version 2.5`, with a duration head under `duration_head.` and optionally a
diffusion decoder as the VAE's decoder). Loading such a file
through the reference's own conversion must give back the same networks, which is what the tests check
against ltx2's key map. The reference's conversion is diffusers 0.42.1's single-file functions where they
exist, and the rename tables of diffusers' `scripts/convert_ltx2_to_diffusers.py` (not in the wheel; HEAD,
with LTX-2.3) where they do not, copied below as data.
"""

import json
import re
from pathlib import Path

import torch
from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
from diffusers.loaders.single_file_utils import (
    convert_ltx2_audio_vae_to_diffusers,
    convert_ltx2_transformer_to_diffusers,
    convert_ltx2_vae_to_diffusers,
)
from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
from parity import perturb_
from safetensors.torch import save_file
from tiny_pipeline import AUDIO_VAE, CONNECTORS, DURATION_HEAD, UPSAMPLER, VOCODER
from tiny_transformer import SWITCHES, TINY

# The real VAE's block structure (4 down, 3 up blocks, patch 4: x32 spatial, x8 temporal) at tiny widths;
# the reference's single-file conversion only handles that structure.
VIDEO_VAE = dict(
    latent_channels=4, block_out_channels=(8, 16, 32, 64), decoder_block_out_channels=(8, 16, 32),
    layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1), timestep_conditioning=False,
    decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8,
)
REFERENCE_CONFIGS = {
    "transformer": TINY,
    "connectors": {**CONNECTORS, "rope_double_precision": True},
    "vae": VIDEO_VAE,
    "audio_vae": AUDIO_VAE,
    "vocoder": VOCODER,
}
REFERENCE_CLASSES = {
    "transformer": LTX2VideoTransformer3DModel,
    "connectors": LTX2TextConnectors,
    "vae": AutoencoderKLLTX2Video,
    "audio_vae": AutoencoderKLLTX2Audio,
    "vocoder": LTX2Vocoder,
}

# LTX-2.3 at tiny widths: every LTX-2.3 flag of the transformer and connectors (text at each stream's width),
# the four-block decoder without residual upsamplers (x2 spatiotemporal, x1 spatiotemporal, x2 temporal, x2
# spatial in decoding order), the vocoder with bandwidth extension (16 kHz x10 per mel frame, hops of 10
# samples, x30 in the extension = 48 kHz).
LTX_2_3_CONFIGS = {
    "transformer": {**TINY, **SWITCHES["2.3"]},
    "connectors": {**CONNECTORS, "rope_double_precision": True, "audio_connector_attention_head_dim": 4,
                   "per_modality_projections": True, "video_hidden_dim": 16, "audio_hidden_dim": 8,
                   "proj_bias": True, "video_gated_attn": True, "audio_gated_attn": True},
    "vae": {**VIDEO_VAE, "block_out_channels": (8, 16, 32, 32), "decoder_block_out_channels": (8, 16, 16, 32),
            "decoder_layers_per_block": (1, 1, 1, 1, 1), "decoder_spatio_temporal_scaling": (True,) * 4,
            "decoder_inject_noise": (False,) * 5, "upsample_type": ("spatiotemporal", "spatiotemporal", "temporal",
                                                                    "spatial"),
            "upsample_residual": (False,) * 4, "upsample_factor": (2, 2, 1, 2),
            "decoder_spatial_padding_mode": "zeros"},
    "audio_vae": AUDIO_VAE,
    "vocoder": dict(
        in_channels=2 * 8, hidden_channels=32, upsample_kernel_sizes=[11, 4], upsample_factors=[5, 2],
        resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], bwe_in_channels=2 * 8, bwe_hidden_channels=32,
        bwe_upsample_kernel_sizes=[12, 11], bwe_upsample_factors=[6, 5], bwe_resnet_kernel_sizes=[3],
        bwe_resnet_dilations=[[1, 3, 5]], filter_length=32, hop_length=10, window_length=32, num_mel_channels=8,
    ),
}
LTX_2_3_CLASSES = {**REFERENCE_CLASSES, "vocoder": LTX2VocoderWithBWE}

HEADER_CONFIG = {
    "transformer": {
        # The sizes, by the names diffusers gives them too.
        **{key: TINY[key] for key in ("num_attention_heads", "attention_head_dim", "in_channels", "out_channels",
                                      "num_layers", "cross_attention_dim", "caption_channels",
                                      "audio_num_attention_heads", "audio_attention_head_dim", "audio_in_channels",
                                      "audio_out_channels", "audio_cross_attention_dim", "rope_type")},
        "positional_embedding_theta": 10000.0,
        "positional_embedding_max_pos": [20, 2048, 2048], "audio_positional_embedding_max_pos": [20],
        "timestep_scale_multiplier": 1000, "av_ca_timestep_scale_multiplier": 1000,
        "frequencies_precision": "float64", "norm_eps": 1e-6, "use_middle_indices_grid": True,
        "activation_fn": "gelu-approximate", "qk_norm": "rms_norm", "standardization_norm": "rms_norm",
        "connector_num_attention_heads": 2, "connector_attention_head_dim": 8, "connector_num_layers": 1,
        "connector_positional_embedding_max_pos": [32],
        # Values ltx-core's configurator requires (the files state them; ltx2's networks are built this way).
        "dropout": 0.0, "attention_bias": True, "num_vector_embeds": None, "num_embeds_ada_norm": 1000,
        "use_linear_projection": False, "only_cross_attention": False, "cross_attention_norm": True,
        "double_self_attention": False, "upcast_attention": False, "positional_embedding_type": "rope",
        "use_audio_video_cross_attention": True, "share_ff": False, "av_cross_ada_norm": True,
        "norm_elementwise_affine": False,
    },
    "vae": {
        "_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3,
        "latent_channels": 4, "decoder_base_channels": 4, "patch_size": 4, "norm_layer": "pixel_norm",
        "latent_log_var": "uniform", "causal_decoder": False, "timestep_conditioning": False,
        "encoder_spatial_padding_mode": "zeros", "decoder_spatial_padding_mode": "reflect",
        "encoder_blocks": [
            ["res_x", {"num_layers": 1}], ["compress_space_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_time_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_all_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_all_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}],
        ],
        "decoder_blocks": [
            ["res_x", {"num_layers": 1, "inject_noise": False}], ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 1, "inject_noise": False}], ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 1, "inject_noise": False}], ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 1, "inject_noise": False}],
        ],
    },
    "audio_vae": {
        "model": {"params": {"sampling_rate": 16000, "ddconfig": {
            "ch": 4, "out_ch": 2, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "in_channels": 2,
            "resolution": 32, "z_channels": 2, "double_z": True, "norm_type": "pixel", "causality_axis": "height",
            "dropout": 0.0, "mid_block_add_attention": False, "mel_bins": 8,
        }}},
        "preprocessing": {"stft": {"hop_length": 160, "causal": True}, "mel": {"n_mel_channels": 8}},
    },
    "vocoder": {
        "resblock": "1", "stereo": True, "upsample_initial_channel": 32, "upsample_rates": [2, 2],
        "upsample_kernel_sizes": [4, 4], "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
        "output_sampling_rate": 16000,
    },
}
# ltx-core reads the LTX-2.3 networks from these header keys: LTX-2.3's transformer flags (the four caption keys
# select its per-stream text projections), connector sizes per stream, the two vocoder generators' sections.
LTX_2_3_HEADER = {
    "transformer": {
        **HEADER_CONFIG["transformer"], "audio_connector_num_attention_heads": 2,
        "audio_connector_attention_head_dim": 4, "connector_num_learnable_registers": 8,
        "apply_gated_attention": True, "cross_attention_adaln": True, "connector_apply_gated_attention": True,
        "caption_proj_before_connector": True, "caption_projection_first_linear": False,
        "caption_proj_input_norm": False, "caption_projection_second_linear": False,
    },
    "vae": {
        **{key: value for key, value in HEADER_CONFIG["vae"].items() if not key.endswith("_spatial_padding_mode")},
        "spatial_padding_mode": "zeros",  # ltx-core 1.0.0 reads this one key for both halves
        "encoder_blocks": [
            ["res_x", {"num_layers": 1}], ["compress_space_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_time_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_all_res", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_all_res", {"multiplier": 1}],
            ["res_x", {"num_layers": 1}],
        ],
        "decoder_blocks": [
            ["res_x", {"num_layers": 1}], ["compress_space", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_time", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}], ["compress_all", {"multiplier": 1}],
            ["res_x", {"num_layers": 1}], ["compress_all", {"multiplier": 2}],
            ["res_x", {"num_layers": 1}],
        ],
    },
    "audio_vae": HEADER_CONFIG["audio_vae"],
    "vocoder": {
        "vocoder": {
            "upsample_initial_channel": 32, "resblock": "AMP1", "upsample_rates": [5, 2],
            "upsample_kernel_sizes": [11, 4], "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
            "stereo": True, "use_tanh_at_final": False, "activation": "snakebeta", "use_bias_at_final": False,
        },
        "bwe": {
            "upsample_initial_channel": 32, "resblock": "AMP1", "upsample_rates": [6, 5],
            "upsample_kernel_sizes": [12, 11], "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
            "stereo": True, "use_tanh_at_final": False, "activation": "snakebeta", "use_bias_at_final": False,
            "apply_final_activation": False, "input_sampling_rate": 16000, "output_sampling_rate": 48000,
            "hop_length": 10, "n_fft": 32, "win_size": 32, "num_mels": 8,
        },
    },
}
# LTX-2.5: LTX-2.3's networks and header but the transformer's video feed-forward without biases and the keyframe
# marker (diffusers' converter, --version 2.5); the file names model_version "2.5.0".
LTX_2_5_CONFIGS = {**LTX_2_3_CONFIGS, "transformer": {**TINY, **SWITCHES["2.5"]}}
# Per version: the reference networks' configs and classes, the header, the model_version the header names.
VERSIONS = {
    "2.0": (REFERENCE_CONFIGS, REFERENCE_CLASSES, HEADER_CONFIG, "2.0.0"),
    "2.3": (LTX_2_3_CONFIGS, LTX_2_3_CLASSES, LTX_2_3_HEADER, "2.3.0"),
    "2.5": (LTX_2_5_CONFIGS, LTX_2_3_CLASSES, LTX_2_3_HEADER, "2.5.0"),
}
UPSAMPLER_HEADER = {
    "in_channels": 4, "mid_channels": 32, "num_blocks_per_stage": 1, "dims": 3, "spatial_upsample": True,
    "temporal_upsample": False, "spatial_scale": 2.0, "rational_resampler": True,
}
# LTX-2.3's upsampler files (ltx-2.3-spatial-upscaler-x2-1.1, -x1.5-1.0, ltx-2.3-temporal-upscaler-x2-1.0) at tiny
# width: (the reference's config, the file's header).
LTX_2_3_UPSAMPLERS = {
    "spatial-x2-1.1": ({**UPSAMPLER, "use_rational_resampler": False},
                       {**UPSAMPLER_HEADER, "rational_resampler": False}),
    "spatial-x1.5": ({**UPSAMPLER, "rational_spatial_scale": 1.5},
                     {**UPSAMPLER_HEADER, "spatial_scale": 1.5}),
    "temporal-x2": ({**UPSAMPLER, "spatial_upsample": False, "temporal_upsample": True,
                     "use_rational_resampler": False},
                    {**UPSAMPLER_HEADER, "spatial_upsample": False, "temporal_upsample": True,
                     "rational_resampler": False}),
}

# diffusers layout -> original names, the inverse of the published renames (longest names first).
_TRANSFORMER_TO_ORIGINAL = (
    ("audio_proj_in", "audio_patchify_proj"),
    ("proj_in", "patchify_proj"),
    ("av_cross_attn_video_scale_shift", "av_ca_video_scale_shift_adaln_single"),
    ("av_cross_attn_video_a2v_gate", "av_ca_a2v_gate_adaln_single"),
    ("av_cross_attn_audio_scale_shift", "av_ca_audio_scale_shift_adaln_single"),
    ("av_cross_attn_audio_v2a_gate", "av_ca_v2a_gate_adaln_single"),
    ("video_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_video"),
    ("audio_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_audio"),
    ("norm_q", "q_norm"),
    ("norm_k", "k_norm"),
    ("prompt_adaln.", "prompt_adaln_single."),  # LTX-2.3's (audio_)prompt_adaln
)
_CONNECTORS_TO_ORIGINAL = (
    ("video_connector", "video_embeddings_connector"),
    ("audio_connector", "audio_embeddings_connector"),
    ("transformer_blocks", "transformer_1d_blocks"),
    ("norm_q", "q_norm"),
    ("norm_k", "k_norm"),
)
# The reference's conversion script (scripts/convert_ltx2_to_diffusers.py, not shipped in the wheel) renames
# connectors and vocoder with these tables, per version; the wheel's single-file loader has no function for them.
REFERENCE_CONNECTOR_RENAMES = {
    "2.0": {"video_embeddings_connector": "video_connector", "audio_embeddings_connector": "audio_connector",
            "transformer_1d_blocks": "transformer_blocks", "text_embedding_projection.aggregate_embed": "text_proj_in",
            "q_norm": "norm_q", "k_norm": "norm_k"},
    "2.3": {"video_embeddings_connector": "video_connector", "audio_embeddings_connector": "audio_connector",
            "transformer_1d_blocks": "transformer_blocks",
            "text_embedding_projection.audio_aggregate_embed": "audio_text_proj_in",
            "text_embedding_projection.video_aggregate_embed": "video_text_proj_in",
            "q_norm": "norm_q", "k_norm": "norm_k"},
}
REFERENCE_CONNECTOR_RENAMES["2.5"] = REFERENCE_CONNECTOR_RENAMES["2.3"]
# LTX-2.3's vocoder table leaves `ups` to a rule of its own: `.ups.` -> `.upsamplers.` in weights and biases.
REFERENCE_VOCODER_RENAMES = {
    "2.0": {"ups": "upsamplers", "resblocks": "resnets", "conv_pre": "conv_in", "conv_post": "conv_out"},
    "2.3": {"resblocks": "resnets", "conv_pre": "conv_in", "conv_post": "conv_out", "act_post": "act_out",
            "downsample.lowpass": "downsample"},
}
REFERENCE_VOCODER_RENAMES["2.5"] = REFERENCE_VOCODER_RENAMES["2.3"]
LTX_2_3_LAYOUT = ("2.3", "2.5")
# What the script's LTX-2.3 tables add to the 0.42.1 single-file functions' (applied after them, as in the script).
REFERENCE_2_3_TRANSFORMER_RENAMES = {"audio_prompt_adaln_single": "audio_prompt_adaln",
                                     "prompt_adaln_single": "prompt_adaln"}
REFERENCE_2_3_VAE_RENAMES = {"up_blocks.7": "up_blocks.3.upsamplers.0", "up_blocks.8": "up_blocks.3"}


def _replace(name: str, pairs) -> str:
    for old, new in pairs:
        name = name.replace(old, new)
    return name


def _transformer_original(key: str) -> str:
    for ours, theirs in (("audio_time_embed.", "audio_adaln_single."), ("time_embed.", "adaln_single.")):
        if key.startswith(ours):
            key = theirs + key.removeprefix(ours)
            break
    return "model.diffusion_model." + _replace(key, _TRANSFORMER_TO_ORIGINAL)


def _video_vae_original(key: str) -> str:
    rules = (
        (r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", lambda m: f"encoder.down_blocks.{2 * int(m[1]) + 1}."),
        (r"^encoder\.down_blocks\.(\d+)\.", lambda m: f"encoder.down_blocks.{2 * int(m[1])}."),
        (r"^encoder\.mid_block\.", lambda m: "encoder.down_blocks.8."),
        (r"^decoder\.mid_block\.", lambda m: "decoder.up_blocks.0."),
        (r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f"decoder.up_blocks.{2 * int(m[1]) + 1}."),
        (r"^decoder\.up_blocks\.(\d+)\.", lambda m: f"decoder.up_blocks.{2 * int(m[1]) + 2}."),
    )
    for pattern, replacement in rules:
        key, count = re.subn(pattern, replacement, key)
        if count:
            break
    key = key.replace("resnets.", "res_blocks.")
    return "vae." + _statistics_original(key)


def _statistics_original(key: str) -> str:
    return {"latents_mean": "per_channel_statistics.mean-of-means",
            "latents_std": "per_channel_statistics.std-of-means"}.get(key, key)


def _vocoder_original(key: str, version: str) -> str:
    """LTX-2.0: `upsamplers.0.weight` -> `ups.0.weight`; LTX-2.3 as well under `vocoder.` / `bwe_generator.`, its
    anti-aliasing downsamplers one level deeper (`.downsample.filter` -> `.downsample.lowpass.filter`)."""
    generator, _, path = key.partition(".") if version in LTX_2_3_LAYOUT else ("", "", key)
    if generator == "mel_stft":
        return f"vocoder.{key}"
    leading = {"upsamplers": "ups", "resnets": "resblocks", "conv_in": "conv_pre", "conv_out": "conv_post",
               "act_out": "act_post"}
    first, _, rest = path.partition(".")
    path = f"{leading.get(first, first)}.{rest}".replace(".downsample.", ".downsample.lowpass.")
    return "vocoder." + (f"{generator}.{path}" if generator else path)


def to_original(component: str, state: dict[str, torch.Tensor], version: str = "2.0") -> dict[str, torch.Tensor]:
    """A reference network's state dict under the original single-file key names of LTX `version`."""
    if component == "transformer":
        return {_transformer_original(key): value for key, value in state.items()}
    if component == "connectors":
        projections = {"text_proj_in.": "text_embedding_projection.aggregate_embed.",
                       "video_text_proj_in.": "text_embedding_projection.video_aggregate_embed.",
                       "audio_text_proj_in.": "text_embedding_projection.audio_aggregate_embed."}
        original = {}
        for key, value in state.items():
            projection = next((name for name in projections if key.startswith(name)), None)
            if projection:
                original[projections[projection] + key.removeprefix(projection)] = value
            else:
                original["model.diffusion_model." + _replace(key, _CONNECTORS_TO_ORIGINAL)] = value
        return original
    if component == "vae":
        original = {_video_vae_original(key): value for key, value in state.items()}
        channels = state["latents_mean"].shape[0]
        original["vae.per_channel_statistics.channel"] = torch.arange(channels, dtype=torch.float32)
        original["vae.per_channel_statistics.mean-of-stds"] = torch.ones(channels)
        return original
    if component == "audio_vae":
        return {"audio_vae." + _statistics_original(key): value for key, value in state.items()}
    if component == "vocoder":
        return {_vocoder_original(key, version): value for key, value in state.items()}
    raise ValueError(component)


def make_reference(component: str, seed: int, version: str = "2.0") -> torch.nn.Module:
    configs, classes, _, _ = VERSIONS[version]
    torch.manual_seed(seed)
    model = perturb_(classes[component](**configs[component]).eval(), seed=seed, scale=0.05)
    if component in ("vae", "audio_vae"):
        model.latents_std.abs_().add_(0.5)
    return model


def make_upsampler_reference(config: dict = UPSAMPLER) -> LTX2LatentUpsamplerModel:
    torch.manual_seed(7)
    return perturb_(LTX2LatentUpsamplerModel(**config).eval(), seed=7, scale=0.05)


def write_single_file(path: Path, tensors: dict[str, torch.Tensor], config: dict, **metadata: str) -> Path:
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path),
              metadata={"config": json.dumps(config), **metadata})
    return path


def write_combined(path: Path, seed: int = 0, version: str = "2.0", diffusion_decoder: bool = False,
                   gated: bool = False) -> dict[str, torch.nn.Module]:
    """An `ltx-2-19b-dev.safetensors` (or `ltx-2.3-22b-dev.safetensors`, or an LTX-2.5 file with its duration head)
    look-alike; returns the reference networks it was made from. LTX-2.5 with `diffusion_decoder`: the VAE's decoder
    is a diffusion decoder (`gated`: with a distilled file's gates), so the file holds no conv VAE."""
    configs, _, header, model_version = VERSIONS[version]
    references = {name: make_reference(name, seed + index, version) for index, name in enumerate(configs)}
    tensors: dict[str, torch.Tensor] = {}
    for name, model in references.items():
        tensors.update(to_original(name, model.state_dict(), version))
    if version == "2.5":
        references["duration_head"] = make_duration_head(seed + len(configs))
        tensors.update(duration_head_original(references["duration_head"].state_dict()))
    if diffusion_decoder:
        decoder = make_diffusion_decoder(seed + len(configs) + 1)
        vae = {key: tensors.pop(key) for key in [key for key in tensors if key.startswith("vae.")]}
        tensors.update(diffusion_vae_original(decoder.state_dict(), vae, gated, seed))
        header = {**header, "vae": DIFFUSION_VAE_HEADER}
        references["diffusion_decoder"] = reference_diffusion_decoder(tensors)
        del references["vae"]
    write_single_file(path, tensors, header, model_version=model_version)
    return references


def make_duration_head(seed: int) -> torch.nn.Module:
    from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead

    torch.manual_seed(seed)
    return perturb_(LTX2DurationHead(**DURATION_HEAD).eval(), seed=seed, scale=0.05)


def duration_head_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference duration head's state dict as the original file holds it: under `duration_head.`, the pooler's
    q/k/v fused into `cross_attn.in_proj_*` and its output projection as `cross_attn.out_proj`."""
    state = dict(state)
    pooler = "attention_pooler."
    for leaf in ("weight", "bias"):
        fused = [state.pop(f"{pooler}to_{name}.{leaf}") for name in ("q", "k", "v")]
        state[f"{pooler}cross_attn.in_proj_{leaf}"] = torch.cat(fused)
        state[f"{pooler}cross_attn.out_proj.{leaf}"] = state.pop(f"{pooler}to_out.{leaf}")
    return {f"duration_head.{key}": value for key, value in state.items()}


# LTX-2.5's diffusion decoder at tiny widths (latents of the tiny VAE's 4 channels), the real strides; small kernels,
# which the header's `vae` section names (no shape shows them). In the original file it replaces the conv decoder
# under `vae.decoder.`, beside the conv encoder (diffusers' converter, --diffusion_vae).
DIFFUSION_DECODER = dict(
    latent_channels=4, decoder_head_dim=8, decoder_stage_channels=(64, 32, 16, 16, 8),
    decoder_stage_depths=(1, 2, 1, 1, 2), decoder_stage_kernels=((3, 1, 1), (3, 3, 3), (3, 3, 3), (3, 5, 5)),
    decoder_stage5_kernel=(5, 7, 7), decoder_t_emb_dim=16,
)
DIFFUSION_VAE_HEADER = {**LTX_2_3_HEADER["vae"], "decoder_stage_kernels": DIFFUSION_DECODER["decoder_stage_kernels"],
                        "decoder_stage5_kernel": DIFFUSION_DECODER["decoder_stage5_kernel"]}
# The converter's facts (scripts/convert_ltx2_to_diffusers.py, LTX-2.5), as data: original -> diffusers renames of the
# decoder half, and each gated parameter (renamed) -> its gate beside it in the same block.
REFERENCE_DIFFUSION_DECODER_RENAMES = {
    "t_embedder.mlp.0.": "t_embedder.timestep_embedder.linear_1.",
    "t_embedder.mlp.2.": "t_embedder.timestep_embedder.linear_2.",
    ".attn.proj.": ".attn.to_out.0.", ".attn.q_norm.": ".attn.norm_q.", ".attn.k_norm.": ".attn.norm_k.",
}
REFERENCE_DIFFUSION_DECODER_GATES = {
    ".attn.to_out.0.weight": ".gate_msa", ".attn.to_out.0.bias": ".gate_msa", ".mlp.w_down.weight": ".gate_mlp",
    ".context_proj.weight": ".gate_ctx", ".context_proj.bias": ".gate_ctx",
}


def make_diffusion_decoder(seed: int) -> torch.nn.Module:
    from diffusers import LTX2VideoDiffusionDecoderModel

    torch.manual_seed(seed)
    model = perturb_(LTX2VideoDiffusionDecoderModel(**DIFFUSION_DECODER).eval(), seed=seed, scale=0.05)
    model.latents_std.abs_().add_(0.5)
    return model


def diffusion_vae_original(decoder_state: dict[str, torch.Tensor], encoder_original: dict[str, torch.Tensor],
                           gated: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A diffusion VAE as the original file holds it: the conv encoder's `vae.encoder.*` (`encoder_original`, in the
    original layout), the statistics, and the reference decoder under `vae.decoder.` with each attention's q/k/v fused
    in `qkv` and the original names. `gated`: a distilled file's static gates beside the Linears they gate (whose
    stored weights are then whatever they are: the reference conversion folds the gates in) and a preview head."""
    inverse = {new: old for old, new in REFERENCE_DIFFUSION_DECODER_RENAMES.items()}
    original = {key: value for key, value in encoder_original.items() if key.startswith("vae.encoder.")}
    channels = decoder_state["latents_mean"].shape[0]
    original.update({"vae.per_channel_statistics.mean-of-means": decoder_state["latents_mean"],
                     "vae.per_channel_statistics.std-of-means": decoder_state["latents_std"],
                     "vae.per_channel_statistics.channel": torch.arange(channels, dtype=torch.float32),
                     "vae.per_channel_statistics.mean-of-stds": torch.ones(channels)})
    generator = torch.Generator().manual_seed(seed)
    for key, value in decoder_state.items():
        if not key.startswith("decoder.") or ".attn.to_k." in key or ".attn.to_v." in key:
            continue
        if ".attn.to_q." in key:
            fused = torch.cat([decoder_state[key.replace(".to_q.", f".to_{name}.")] for name in "qkv"])
            key, value = key.replace(".to_q.", ".qkv."), fused
        name = _replace(key, inverse.items())
        original["vae." + name] = value
        leaf = next((leaf for leaf in REFERENCE_DIFFUSION_DECODER_GATES if key.endswith(leaf)), None)
        if gated and leaf:
            gate = f"vae.{key.removesuffix(leaf)}{REFERENCE_DIFFUSION_DECODER_GATES[leaf]}"
            original.setdefault(gate, torch.rand(value.shape[0], generator=generator) + 0.5)
    if gated:
        original["vae.decoder.coarse_head.weight"] = torch.randn(3, 8, generator=generator)
    return original


def reference_diffusion_decoder(tensors: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The reference decoder loaded strictly from a file's `vae.` tensors by the converter's rules: the decoder half
    renamed, gates folded into what they gate (float32, back to the stored dtype), fused q/k/v split in three, the
    preview heads and the encoder dropped, the statistics renamed."""
    from diffusers import LTX2VideoDiffusionDecoderModel

    decoder = {key.removeprefix("vae.decoder."): value for key, value in tensors.items()
               if key.startswith("vae.decoder.")}
    gates = {key: value for key, value in decoder.items() if key.endswith((".gate_msa", ".gate_mlp", ".gate_ctx"))}
    state = {_statistics_original_inverse(key.removeprefix("vae.")): value for key, value in tensors.items()
             if key.startswith("vae.per_channel_statistics.") and key.endswith(("-of-means",))}
    for key, value in decoder.items():
        if key.startswith("coarse_") or ".coarse_" in key or key in gates:
            continue
        name = _replace(key, REFERENCE_DIFFUSION_DECODER_RENAMES.items())
        leaf = next((leaf for leaf in REFERENCE_DIFFUSION_DECODER_GATES if name.endswith(leaf)), None)
        gate = gates.get(name.removesuffix(leaf) + REFERENCE_DIFFUSION_DECODER_GATES[leaf]) if leaf else None
        if gate is not None:
            value = ((gate[:, None] if value.ndim == 2 else gate).float() * value.float()).to(value.dtype)
        if ".qkv." in name:
            for part, target in zip(value.chunk(3), "qkv"):
                state["decoder." + name.replace(".qkv.", f".to_{target}.")] = part
            continue
        state["decoder." + name] = value
    model = LTX2VideoDiffusionDecoderModel(**DIFFUSION_DECODER)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _statistics_original_inverse(key: str) -> str:
    return {"per_channel_statistics.mean-of-means": "latents_mean",
            "per_channel_statistics.std-of-means": "latents_std"}[key]


def reference_duration_head(tensors: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The reference duration head from a file's `duration_head.` tensors by the converter's rules: the fused
    in_proj split in three (q, k, v), out_proj renamed to_out, the widths read from shapes, four pooler heads."""
    from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead

    state = {key.removeprefix("duration_head."): value for key, value in tensors.items()
             if key.startswith("duration_head.")}
    pooler = "attention_pooler."
    for leaf in ("weight", "bias"):
        for part, name in zip(state.pop(f"{pooler}cross_attn.in_proj_{leaf}").chunk(3), "qkv"):
            state[f"{pooler}to_{name}.{leaf}"] = part
        state[f"{pooler}to_out.{leaf}"] = state.pop(f"{pooler}cross_attn.out_proj.{leaf}")
    model = LTX2DurationHead(
        video_cross_attention_dim=state["video_input_proj.weight"].shape[1],
        audio_cross_attention_dim=state["audio_input_proj.weight"].shape[1],
        pooler_hidden_dim=state[f"{pooler}to_q.weight"].shape[1], num_queries=state[f"{pooler}query_tokens"].shape[0],
        mlp_hidden_dim=state["mlp_hidden.weight"].shape[0], num_pooler_heads=4,
    )
    model.load_state_dict(state, strict=True)
    return model.eval()


def quantize_fp8(
    tensors: dict[str, torch.Tensor], blocks: tuple[str, ...] = ("model.diffusion_model.transformer_blocks.",)
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(fp8 file tensors, the float32 weights they stand for): the Linear weights under `blocks` in float8_e4m3fn,
    every other one with a per-tensor `weight_scale` and an `input_scale`, the rest cast without a scale."""
    stored, meaning = dict(tensors), dict(tensors)
    quantized = [key for key, value in tensors.items()
                 if key.startswith(blocks) and key.endswith(".weight") and value.dim() == 2]
    for index, key in enumerate(quantized):
        weight = tensors[key]
        if index % 2:
            fp8 = weight.to(torch.float8_e4m3fn)
            meaning[key] = fp8.to(torch.float32)
        else:
            scale = weight.abs().amax() / 448.0
            fp8 = (weight / scale).to(torch.float8_e4m3fn)
            stored[key.removesuffix("weight") + "weight_scale"] = scale.reshape(())
            stored[key.removesuffix("weight") + "input_scale"] = torch.ones(())
            meaning[key] = fp8.to(torch.float32) * scale
        stored[key] = fp8
    return stored, meaning


def reference_from_original(component: str, tensors: dict[str, torch.Tensor], version: str = "2.0") -> torch.nn.Module:
    """The reference network loaded strictly from original-layout tensors through the reference's conversion."""
    configs, classes, _, _ = VERSIONS[version]
    prefixes = {"transformer": "model.diffusion_model.", "vae": "vae.", "audio_vae": "audio_vae."}
    if component == "connectors":
        state = {}
        for key, value in tensors.items():
            name = key.removeprefix("model.diffusion_model.")
            if name.startswith(("video_embeddings_connector", "audio_embeddings_connector", "text_embedding")):
                state[_replace(name, REFERENCE_CONNECTOR_RENAMES[version].items())] = value
    elif component == "vocoder":
        state = {_replace(key.removeprefix("vocoder."), REFERENCE_VOCODER_RENAMES[version].items()): value
                 for key, value in tensors.items() if key.startswith("vocoder.")}
        if version in LTX_2_3_LAYOUT:
            state = {key.replace(".ups.", ".upsamplers.") if key.endswith((".weight", ".bias")) else key: value
                     for key, value in state.items()}
    else:
        state = {key: value for key, value in tensors.items() if key.startswith(prefixes[component])}
        convert = {"transformer": convert_ltx2_transformer_to_diffusers, "vae": convert_ltx2_vae_to_diffusers,
                   "audio_vae": convert_ltx2_audio_vae_to_diffusers}[component]
        state = convert(state)
        extra = {"transformer": REFERENCE_2_3_TRANSFORMER_RENAMES, "vae": REFERENCE_2_3_VAE_RENAMES}.get(component)
        if version in LTX_2_3_LAYOUT and extra:
            state = {_replace(key, extra.items()): value for key, value in state.items()}
    model = classes[component](**configs[component])
    model.load_state_dict(state, strict=True)
    return model.eval()
