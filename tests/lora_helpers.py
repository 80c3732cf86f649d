"""What the LoRA tests share (test_lora and the transform tests that apply LoRAs): tiny configs, a minimal
pipeline holding a transformer, the reference's pipeline around one, a seeded forward and random LoRAs."""

import torch
from diffusers import LTX2Pipeline
from tiny_transformer import UNEQUAL_WIDTHS

from ltx2 import LoraLoaderMixin

FRAMES, HEIGHT, WIDTH, AUDIO_FRAMES, TEXT_TOKENS = 2, 3, 4, 5, 8

TINY = dict(UNEQUAL_WIDTHS, num_layers=1)  # one block has every kind of layer a LoRA targets


TINY_CONNECTORS = dict(
    caption_channels=TINY["caption_channels"],
    text_proj_in_factor=3,
    video_connector_num_attention_heads=2,
    video_connector_attention_head_dim=12,
    video_connector_num_layers=1,
    video_connector_num_learnable_registers=4,
    audio_connector_num_attention_heads=2,
    audio_connector_attention_head_dim=12,
    audio_connector_num_layers=1,
    audio_connector_num_learnable_registers=4,
    connector_rope_base_seq_len=32,
    rope_type="split",
)


class Pipeline(LoraLoaderMixin):
    def __init__(self, transformer, connectors=None):
        self.transformer = transformer
        self.connectors = connectors


def reference_pipeline(transformer, connectors=None) -> LTX2Pipeline:
    return LTX2Pipeline(
        scheduler=None,
        vae=None,
        audio_vae=None,
        text_encoder=None,
        tokenizer=None,
        connectors=connectors,
        transformer=transformer,
        vocoder=None,
    )


@torch.no_grad()
def run(pipeline, dtype=torch.float32) -> torch.Tensor:
    """Video and audio outputs of the pipeline's transformer, concatenated flat."""
    generator = torch.Generator().manual_seed(1)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(dtype)

    video, audio = pipeline.transformer(
        hidden_states=randn(1, FRAMES * HEIGHT * WIDTH, TINY["in_channels"]),
        audio_hidden_states=randn(1, AUDIO_FRAMES, TINY["audio_in_channels"]),
        encoder_hidden_states=randn(1, TEXT_TOKENS, TINY["caption_channels"]),
        audio_encoder_hidden_states=randn(1, TEXT_TOKENS, TINY["caption_channels"]),
        timestep=torch.tensor([600.0]),
        audio_timestep=torch.tensor([600.0]),
        encoder_attention_mask=torch.ones(1, TEXT_TOKENS),
        audio_encoder_attention_mask=torch.ones(1, TEXT_TOKENS),
        num_frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        fps=24.0,
        audio_num_frames=AUDIO_FRAMES,
        return_dict=False,
    )
    return torch.cat([video.flatten(), audio.flatten()])


def linear_paths(model: torch.nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]


def make_lora(model: torch.nn.Module, seed: int, prefix: str = "transformer", ranks=(4, 3, 2, 3)) -> dict:
    """A diffusers-format LoRA on every Linear of `model`, ranks cycling so the first differs from the commonest."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, path in enumerate(linear_paths(model)):
        linear, rank = model.get_submodule(path), ranks[index % len(ranks)]
        down = torch.randn(rank, linear.in_features, generator=generator) / linear.in_features**0.5
        up = torch.randn(linear.out_features, rank, generator=generator) / rank**0.5
        state[f"{prefix}.{path}.lora_A.weight"] = down
        state[f"{prefix}.{path}.lora_B.weight"] = up * 0.5
    return state
