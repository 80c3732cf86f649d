"""The configurations of the released LTX-2 networks, as a diffusers folder's `config.json` holds them.

Every ltx2 network's constructor defaults are LTX-2.0's (the 19B release), so `LTX2VideoTransformer3DModel()` is
that network. Each later release is one read-only dict here, named `LTX_<version>_<COMPONENT>`, with every
constructor key at that release's value (from diffusers' conversion script, `--version 2.3`):

    import torch
    from ltx2 import LTX2VideoTransformer3DModel
    from ltx2.configs import LTX_2_3_TRANSFORMER

    with torch.device("meta"):
        transformer = LTX2VideoTransformer3DModel(**LTX_2_3_TRANSFORMER)  # the 22B release's 18.99B DiT
    smaller = LTX2VideoTransformer3DModel.from_config(dict(LTX_2_3_TRANSFORMER, num_layers=2))

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
