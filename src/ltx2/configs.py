"""LTX-2.3 component configs, as diffusers' LTX-2.3 folders carry them.

Each dict holds the keys of that component's diffusers `config.json`; build with `from_config`, which
also accepts the keys diffusers stores but LTX-2 never switches on:

    connectors = LTX2TextConnectors.from_config(LTX_2_3_CONNECTORS)

The values are those diffusers' conversion script (`scripts/convert_ltx2_to_diffusers.py --version 2.3`)
writes. LTX-2.3's audio VAE is LTX-2.0's (`AutoencoderKLLTX2Audio()`). The x1.5 spatial and the temporal
upsampler have no diffusers folder; their configs are the original files' headers in diffusers' keys.
"""

from __future__ import annotations

from typing import Any

# LTX2TextConnectors: 3.17B parameters; per-stream projections and gated attention, 8 layers per stream.
LTX_2_3_CONNECTORS: dict[str, Any] = {
    "caption_channels": 3840,
    "text_proj_in_factor": 49,
    "video_connector_num_attention_heads": 32,
    "video_connector_attention_head_dim": 128,
    "video_connector_num_layers": 8,
    "video_connector_num_learnable_registers": 128,
    "video_gated_attn": True,
    "audio_connector_num_attention_heads": 32,
    "audio_connector_attention_head_dim": 64,
    "audio_connector_num_layers": 8,
    "audio_connector_num_learnable_registers": 128,
    "audio_gated_attn": True,
    "connector_rope_base_seq_len": 4096,
    "rope_theta": 10000.0,
    "rope_double_precision": True,
    "causal_temporal_positioning": False,
    "rope_type": "split",
    "per_modality_projections": True,
    "video_hidden_dim": 4096,
    "audio_hidden_dim": 2048,
    "proj_bias": True,
}

# AutoencoderKLLTX2Video: 0.73B parameters; a narrower encoder and a four-block decoder without residual
# upsamplers (x2 spatiotemporal twice, x2 temporal, x2 spatial), zero padding.
LTX_2_3_VIDEO_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": [256, 512, 1024, 1024],
    "down_block_types": ["LTX2VideoDownBlock3D"] * 4,
    "decoder_block_out_channels": [256, 512, 512, 1024],
    "layers_per_block": [4, 6, 4, 2, 2],
    "decoder_layers_per_block": [4, 6, 4, 2, 2],
    "spatio_temporal_scaling": [True, True, True, True],
    "decoder_spatio_temporal_scaling": [True, True, True, True],
    "decoder_inject_noise": [False, False, False, False, False],
    "downsample_type": ["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
    "upsample_type": ["spatiotemporal", "spatiotemporal", "temporal", "spatial"],
    "upsample_residual": [False, False, False, False],
    "upsample_factor": [2, 2, 1, 2],
    "timestep_conditioning": False,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
    "encoder_spatial_padding_mode": "zeros",
    "decoder_spatial_padding_mode": "zeros",
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}

# LTX2VocoderWithBWE: 0.13B parameters; mel -> 16 kHz (snake-beta, anti-aliased) -> 48 kHz.
LTX_2_3_VOCODER: dict[str, Any] = {
    "in_channels": 128,
    "hidden_channels": 1536,
    "out_channels": 2,
    "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
    "upsample_factors": [5, 2, 2, 2, 2, 2],
    "resnet_kernel_sizes": [3, 7, 11],
    "resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "act_fn": "snakebeta",
    "leaky_relu_negative_slope": 0.1,
    "antialias": True,
    "antialias_ratio": 2,
    "antialias_kernel_size": 12,
    "final_act_fn": None,
    "final_bias": False,
    "bwe_in_channels": 128,
    "bwe_hidden_channels": 512,
    "bwe_out_channels": 2,
    "bwe_upsample_kernel_sizes": [12, 11, 4, 4, 4],
    "bwe_upsample_factors": [6, 5, 2, 2, 2],
    "bwe_resnet_kernel_sizes": [3, 7, 11],
    "bwe_resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "bwe_act_fn": "snakebeta",
    "bwe_leaky_relu_negative_slope": 0.1,
    "bwe_antialias": True,
    "bwe_antialias_ratio": 2,
    "bwe_antialias_kernel_size": 12,
    "bwe_final_act_fn": None,
    "bwe_final_bias": False,
    "filter_length": 512,
    "hop_length": 80,
    "window_length": 512,
    "num_mel_channels": 64,
    "input_sampling_rate": 16000,
    "output_sampling_rate": 48000,
}

# LTX2LatentUpsamplerModel, ltx-2.3-spatial-upscaler-x2-1.1: 0.50B parameters; x2 by sub-pixel convolution.
LTX_2_3_LATENT_UPSAMPLER: dict[str, Any] = {
    "in_channels": 128,
    "mid_channels": 1024,
    "num_blocks_per_stage": 4,
    "dims": 3,
    "spatial_upsample": True,
    "temporal_upsample": False,
    "rational_spatial_scale": 2.0,
    "use_rational_resampler": False,
}

# ltx-2.3-spatial-upscaler-x1.5-1.0: 0.55B parameters; x3 sub-pixel, then blurred stride 2.
LTX_2_3_SPATIAL_UPSAMPLER_X1_5: dict[str, Any] = {
    **LTX_2_3_LATENT_UPSAMPLER,
    "rational_spatial_scale": 1.5,
    "use_rational_resampler": True,
}

# ltx-2.3-temporal-upscaler-x2-1.0: 0.13B parameters; latent frames F -> 2F - 1 at the same size.
LTX_2_3_TEMPORAL_UPSAMPLER_X2: dict[str, Any] = {
    **LTX_2_3_LATENT_UPSAMPLER,
    "mid_channels": 512,
    "spatial_upsample": False,
    "temporal_upsample": True,
}
