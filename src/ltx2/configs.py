"""The configurations of the released LTX-2 networks, as a diffusers folder's `config.json` holds them.

Every ltx2 network's constructor defaults are LTX-2.0's (the 19B release), so `LTX2VideoTransformer3DModel()` is
that network. Each later release's component is one read-only dict here, named `LTX_<version>_<COMPONENT>`, with
every config key at that release's value (from diffusers' conversion script, `--version 2.3`):

    import torch
    from ltx2 import LTX2VideoTransformer3DModel, LTX2TextConnectors
    from ltx2.configs import LTX_2_3_CONNECTORS, LTX_2_3_TRANSFORMER

    with torch.device("meta"):
        transformer = LTX2VideoTransformer3DModel(**LTX_2_3_TRANSFORMER)  # the 22B release's 18.99B DiT
    smaller = LTX2VideoTransformer3DModel.from_config(dict(LTX_2_3_TRANSFORMER, num_layers=2))
    connectors = LTX2TextConnectors.from_config(LTX_2_3_CONNECTORS)

`from_config` also accepts the keys diffusers stores but LTX-2 never switches on (the non-transformer dicts hold
some). LTX-2.3's audio VAE is LTX-2.0's (`AutoencoderKLLTX2Audio()`). The x1.5 spatial and the temporal upsampler
have no diffusers folder; their configs are the original files' headers in diffusers' keys.

Loading a folder or a single file reads its own config; these dicts are for building, checking and testing.
"""

from __future__ import annotations

from types import MappingProxyType

LTX_2_3_TRANSFORMER = MappingProxyType(
    {
        "in_channels": 128,
        "out_channels": 128,
        "patch_size": 1,
        "patch_size_t": 1,
        "num_attention_heads": 32,
        "attention_head_dim": 128,
        "cross_attention_dim": 4096,
        "vae_scale_factors": (8, 32, 32),
        "pos_embed_max_pos": 20,
        "base_height": 2048,
        "base_width": 2048,
        "gated_attn": True,
        "cross_attn_mod": True,
        "audio_in_channels": 128,
        "audio_out_channels": 128,
        "audio_patch_size": 1,
        "audio_patch_size_t": 1,
        "audio_num_attention_heads": 32,
        "audio_attention_head_dim": 64,
        "audio_cross_attention_dim": 2048,
        "audio_scale_factor": 4,
        "audio_pos_embed_max_pos": 20,
        "audio_sampling_rate": 16000,
        "audio_hop_length": 160,
        "audio_gated_attn": True,
        "audio_cross_attn_mod": True,
        "num_layers": 48,
        "activation_fn": "gelu-approximate",
        "qk_norm": "rms_norm_across_heads",
        "norm_elementwise_affine": False,
        "norm_eps": 1e-6,
        "caption_channels": 3840,
        "attention_bias": True,
        "attention_out_bias": True,
        "rope_theta": 10000.0,
        "rope_double_precision": True,
        "causal_offset": 1,
        "timestep_scale_multiplier": 1000,
        "cross_attn_timestep_scale_multiplier": 1000,
        "rope_type": "split",
        "use_prompt_embeddings": False,
        "perturbed_attn": True,
        "ff_bias": True,
        "audio_ff_bias": True,
        "use_prompt_adaln_single": True,
        "use_keyframes_abs_pos_embedding": False,
    }
)

# LTX2TextConnectors: 3.17B parameters; per-stream projections and gated attention, 8 layers per stream.
LTX_2_3_CONNECTORS = MappingProxyType(
    {
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
)

# AutoencoderKLLTX2Video: 0.73B parameters; a narrower encoder and a four-block decoder without residual
# upsamplers (x2 spatiotemporal twice, x2 temporal, x2 spatial), zero padding.
LTX_2_3_VIDEO_VAE = MappingProxyType(
    {
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
)

# LTX2VocoderWithBWE: 0.13B parameters; mel -> 16 kHz (snake-beta, anti-aliased) -> 48 kHz.
LTX_2_3_VOCODER = MappingProxyType(
    {
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
)

# LTX2LatentUpsamplerModel, ltx-2.3-spatial-upscaler-x2-1.1: 0.50B parameters; x2 by sub-pixel convolution.
LTX_2_3_LATENT_UPSAMPLER = MappingProxyType(
    {
        "in_channels": 128,
        "mid_channels": 1024,
        "num_blocks_per_stage": 4,
        "dims": 3,
        "spatial_upsample": True,
        "temporal_upsample": False,
        "rational_spatial_scale": 2.0,
        "use_rational_resampler": False,
    }
)

# ltx-2.3-spatial-upscaler-x1.5-1.0: 0.55B parameters; x3 sub-pixel, then blurred stride 2.
LTX_2_3_SPATIAL_UPSAMPLER_X1_5 = MappingProxyType(
    {
        **LTX_2_3_LATENT_UPSAMPLER,
        "rational_spatial_scale": 1.5,
        "use_rational_resampler": True,
    }
)

# ltx-2.3-temporal-upscaler-x2-1.0: 0.13B parameters; latent frames F -> 2F - 1 at the same size.
LTX_2_3_TEMPORAL_UPSAMPLER_X2 = MappingProxyType(
    {
        **LTX_2_3_LATENT_UPSAMPLER,
        "mid_channels": 512,
        "spatial_upsample": False,
        "temporal_upsample": True,
    }
)

# LTX2DurationHead, LTX-2.5: 1.9M parameters; the converter reads the widths from the weights (the connectors'
# 4096 and 2048) and fixes the pooler's heads at 4. These are also the constructor's defaults.
LTX_2_5_DURATION_HEAD = MappingProxyType(
    {
        "video_cross_attention_dim": 4096,
        "audio_cross_attention_dim": 2048,
        "pooler_hidden_dim": 256,
        "num_queries": 1,
        "num_pooler_heads": 4,
        "mlp_hidden_dim": 256,
    }
)

# LTX2VideoDiffusionDecoderModel, LTX-2.5: 0.417B parameters; four neighborhood-attention stages upsampling the
# latents (x2 spatial, x2 temporal, x2 both twice) and eight stage-5 blocks denoising 4x4 pixel patches in one
# x0 step. These are also the constructor's defaults.
LTX_2_5_DIFFUSION_DECODER = MappingProxyType(
    {
        "out_channels": 3,
        "latent_channels": 128,
        "patch_size": 4,
        "scaling_factor": 1.0,
        "decoder_head_dim": 64,
        "decoder_stage_channels": (2048, 1024, 512, 512, 256),
        "decoder_stage_depths": (4, 6, 4, 2, 8),
        "decoder_stage_kernels": ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5)),
        "decoder_upsample_strides": ((1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 2, 2)),
        "decoder_upsample_channel_reductions": (2, 2, 1, 2),
        "decoder_stage5_kernel": (11, 11, 11),
        "decoder_t_emb_dim": 384,
        "decoder_timestep_scale_multiplier": 1000.0,
        "decoder_model_output_type": "x0",
        "decoder_num_inference_steps": 1,
        "spatial_compression_ratio": 32,
        "temporal_compression_ratio": 8,
    }
)
