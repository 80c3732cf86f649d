"""The tests' one tiny LTX2VideoTransformer3DModel config (TINY) and the variants some tests need, derived from it;
for the transform tests, fixed inputs, a seeded three-block model and its flattened output."""

import torch

from ltx2 import LTX2VideoTransformer3DModel

# The tiny pipeline's transformer (tiny_pipeline: latents of 4 channels, text 16 wide from its Gemma, connectors 16
# and 8 wide); the original single files, the parallel, loading and transform tests build it too.
TINY = dict(
    in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
    audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2, audio_attention_head_dim=4,
    audio_cross_attention_dim=8, num_layers=2, caption_channels=16, rope_type="split", rope_double_precision=True,
)
# For the tests of the network alone (parity, LoRA): every width unlike the others (video 8 in and 32 inside, audio 6
# and 16, text 24), so that a layer built from the wrong width fails by shape; in TINY, as in the real model, the
# video and audio streams take inputs equally wide.
UNEQUAL_WIDTHS = dict(
    TINY, in_channels=8, out_channels=8, attention_head_dim=16, cross_attention_dim=32, audio_in_channels=6,
    audio_out_channels=6, audio_attention_head_dim=8, audio_cross_attention_dim=16, caption_channels=24,
)
# What each release switches on in the transformer: LTX-2.3 gated attention, cross-attention modulation, perturbed
# attention (STG) and the text at each stream's width from the connectors; LTX-2.5 also drops the video feed-forward's
# biases and adds the keyframe position embedding.
LTX_2_3_SWITCHES = dict(gated_attn=True, cross_attn_mod=True, audio_gated_attn=True, audio_cross_attn_mod=True,
                        perturbed_attn=True, use_prompt_embeddings=False)
SWITCHES = {"2.0": {}, "2.3": LTX_2_3_SWITCHES,
            "2.5": dict(LTX_2_3_SWITCHES, ff_bias=False, use_keyframes_abs_pos_embedding=True)}
# Three blocks, so that groups of two blocks (group offload) leave one over.
THREE_BLOCKS = dict(TINY, num_layers=3)


def inputs(device: str = "cpu") -> dict:
    """THREE_BLOCKS's inputs: a batch of two, 2 latent frames of 2x2 tokens, 3 audio frames, 5 text tokens."""
    generator = torch.Generator().manual_seed(0)
    tensors = dict(
        hidden_states=torch.randn(2, 8, TINY["in_channels"], generator=generator),
        audio_hidden_states=torch.randn(2, 3, TINY["audio_in_channels"], generator=generator),
        encoder_hidden_states=torch.randn(2, 5, TINY["caption_channels"], generator=generator),
        audio_encoder_hidden_states=torch.randn(2, 5, TINY["caption_channels"], generator=generator),
        timestep=torch.tensor([500.0, 200.0]),
        encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
    )
    return {key: value.to(device) for key, value in tensors.items()} | dict(
        num_frames=2, height=2, width=2, return_dict=False
    )


def model() -> LTX2VideoTransformer3DModel:
    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(**THREE_BLOCKS).eval()


@torch.no_grad()
def forward(transformer: torch.nn.Module) -> torch.Tensor:
    return torch.cat([part.flatten() for part in transformer(**inputs())])
