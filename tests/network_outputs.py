"""Seeded inputs and outputs of the networks, shared by the model, single-file and FP8 tests."""

import inspect

import torch
from original_checkpoint import VERSIONS

from ltx2 import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    LTX2TextConnectors,
    LTX2VideoTransformer3DModel,
    LTX2Vocoder,
    LTX2VocoderWithBWE,
)

DEFAULTS = {
    key: parameter.default
    for key, parameter in inspect.signature(LTX2VideoTransformer3DModel.__init__).parameters.items()
    if key != "self"
}
FRAMES, HEIGHT, WIDTH, AUDIO_FRAMES, TEXT_TOKENS, BATCH = 3, 4, 5, 7, 10, 2
TOKENS = FRAMES * HEIGHT * WIDTH


def make_inputs(config: dict, per_token: bool, masked: bool, dtype=torch.float32) -> dict:
    """One forward's arguments; the text is at caption width, or at each stream's width without prompt embeddings."""
    config = {**DEFAULTS, **config}
    generator = torch.Generator().manual_seed(1)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(dtype)

    timestep = torch.rand(BATCH, generator=generator) * 1000
    mask = torch.ones(BATCH, TEXT_TOKENS)
    if masked:
        mask[0, :4] = 0
        mask[1, :1] = 0
    projected = config["use_prompt_embeddings"]
    text_width = config["caption_channels"] if projected else config["cross_attention_dim"]
    audio_text_width = config["caption_channels"] if projected else config["audio_cross_attention_dim"]
    return dict(
        hidden_states=randn(BATCH, TOKENS, config["in_channels"]),
        audio_hidden_states=randn(BATCH, AUDIO_FRAMES, config["audio_in_channels"]),
        encoder_hidden_states=randn(BATCH, TEXT_TOKENS, text_width),
        audio_encoder_hidden_states=randn(BATCH, TEXT_TOKENS, audio_text_width),
        timestep=torch.rand(BATCH, TOKENS, generator=generator) * 1000 if per_token else timestep,
        audio_timestep=timestep,
        sigma=timestep,
        encoder_attention_mask=mask,
        audio_encoder_attention_mask=mask,
        num_frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        fps=24.0,
        audio_num_frames=AUDIO_FRAMES,
        return_dict=False,
    )


OURS = {
    "transformer": LTX2VideoTransformer3DModel,
    "connectors": LTX2TextConnectors,
    "vae": AutoencoderKLLTX2Video,
    "audio_vae": AutoencoderKLLTX2Audio,
    "vocoder": LTX2Vocoder,
}


OURS_2_3 = {**OURS, "vocoder": LTX2VocoderWithBWE}


@torch.no_grad()
def outputs(component: str, model: torch.nn.Module, version: str = "2.0") -> torch.Tensor:
    """One forward pass of each kind of network, on seeded inputs."""
    generator = torch.Generator().manual_seed(3)
    if component == "transformer":
        video, audio = model(**make_inputs(VERSIONS[version][0]["transformer"], per_token=False, masked=True))
        return torch.cat([video.flatten(), audio.flatten()])
    if component == "connectors":
        hidden = torch.randn(2, 16, 16, 3, generator=generator)
        mask = torch.ones(2, 16, dtype=torch.long)
        mask[1, :5] = 0
        video, audio, _ = model(hidden, mask)
        return torch.cat([video.flatten(), audio.flatten()])
    if component == "vae":
        return model.decode(torch.randn(1, 4, 2, 2, 2, generator=generator), return_dict=False)[0]
    if component == "audio_vae":
        return model.decode(torch.randn(1, 2, 5, 4, generator=generator), return_dict=False)[0]
    return model(torch.randn(1, 2, 6, 8, generator=generator))
