"""One transformer forward, ltx2 vs diffusers 0.42.1, same weights and inputs, alternating in one process.

    python bench/transformer.py --config medium                       # CPU: full width, 2 layers, 1024 video tokens
    python bench/transformer.py --device cuda --config full --layers 8 # GPU: bf16, the stage-1 shape, batch 2

Both models share the same weight tensors (ours is built on the meta device and assigned the reference's),
so memory holds one copy. Prints the median seconds of each and the ratio ours / reference.
"""

from __future__ import annotations

import argparse

import torch
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer

from ltx2 import LTX2VideoTransformer3DModel
from timing import add_run_arguments, compare, run_dtype

SHAPES = {
    # name: (model overrides, batch, latent (frames, height, width), audio tokens, text tokens)
    "tiny": (
        dict(
            num_attention_heads=4,
            attention_head_dim=32,
            cross_attention_dim=128,
            audio_num_attention_heads=4,
            audio_attention_head_dim=16,
            audio_cross_attention_dim=64,
            caption_channels=64,
            num_layers=2,
        ),
        1,
        (4, 8, 8),
        26,
        128,
    ),
    "medium": (dict(num_layers=2), 1, (4, 16, 16), 26, 256),
    "full": (dict(), 2, (16, 16, 24), 126, 1024),
}


def model_config(config_name: str, layers: int | None) -> dict:
    config = dict(SHAPES[config_name][0], rope_type="split")
    if layers is not None:
        config["num_layers"] = layers
    return config


def make_inputs(config_name: str, caption_channels: int, device: str, dtype: torch.dtype) -> dict:
    """Seeded forward arguments of the shape `config_name` (text mask all ones, as a full-length prompt)."""
    overrides, batch, (frames, height, width), audio_tokens, text_tokens = SHAPES[config_name]
    generator = torch.Generator(device).manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, device=device).to(dtype)

    return dict(
        hidden_states=randn(batch, frames * height * width, overrides.get("in_channels", 128)),
        audio_hidden_states=randn(batch, audio_tokens, 128),
        encoder_hidden_states=randn(batch, text_tokens, caption_channels),
        audio_encoder_hidden_states=randn(batch, text_tokens, caption_channels),
        timestep=torch.full((batch,), 500.0, device=device),
        encoder_attention_mask=torch.ones(batch, text_tokens, device=device),
        audio_encoder_attention_mask=torch.ones(batch, text_tokens, device=device),
        num_frames=frames,
        height=height,
        width=width,
        fps=24.0,
        audio_num_frames=audio_tokens,
        return_dict=False,
    )


def build(config_name: str, layers: int | None, device: str, dtype: torch.dtype):
    config = model_config(config_name, layers)
    with torch.device(device):
        reference = ReferenceTransformer(**config).eval()
    if dtype != torch.float32:
        reference.to(dtype)
    with torch.device("meta"):
        ours = LTX2VideoTransformer3DModel(**config)
    ours.load_state_dict(reference.state_dict(), assign=True)
    ours.eval()
    return ours, reference, make_inputs(config_name, reference.config.caption_channels, device, dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(SHAPES), default="medium")
    parser.add_argument("--layers", type=int, default=None, help="number of blocks (default: the config's)")
    add_run_arguments(parser)
    args = parser.parse_args()
    dtype = run_dtype(args)
    torch.manual_seed(0)
    ours, reference, inputs = build(args.config, args.layers, args.device, dtype)
    tokens = inputs["hidden_states"].shape[1]
    print(
        f"config={args.config} layers={len(ours.transformer_blocks)} device={args.device} dtype={dtype} "
        f"batch={inputs['hidden_states'].shape[0]} video_tokens={tokens} audio_tokens={inputs['audio_num_frames']} "
        f"text_tokens={inputs['encoder_hidden_states'].shape[1]} threads={torch.get_num_threads()}"
    )
    compare(lambda: ours(**inputs), lambda: reference(**inputs), args.device, args.repeats)


if __name__ == "__main__":
    main()
