"""A tiny transformer the transform tests share: its config (three blocks), fixed inputs, a seeded model and its
flattened output."""

import torch

from ltx2 import LTX2VideoTransformer3DModel

TINY = dict(
    in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
    audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2, audio_attention_head_dim=4,
    audio_cross_attention_dim=8, num_layers=3, caption_channels=8,
)


def inputs(device: str = "cpu") -> dict:
    generator = torch.Generator().manual_seed(0)
    tensors = dict(
        hidden_states=torch.randn(2, 8, 4, generator=generator),
        audio_hidden_states=torch.randn(2, 3, 4, generator=generator),
        encoder_hidden_states=torch.randn(2, 5, 8, generator=generator),
        audio_encoder_hidden_states=torch.randn(2, 5, 8, generator=generator),
        timestep=torch.tensor([500.0, 200.0]),
        encoder_attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]),
    )
    return {key: value.to(device) for key, value in tensors.items()} | dict(
        num_frames=2, height=2, width=2, return_dict=False
    )


def model() -> LTX2VideoTransformer3DModel:
    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(**TINY).eval()


@torch.no_grad()
def forward(transformer: torch.nn.Module) -> torch.Tensor:
    return torch.cat([part.flatten() for part in transformer(**inputs())])
