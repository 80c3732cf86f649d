"""One transformer forward, ltx2 vs diffusers 0.42.1, same weights and inputs, alternating in one process.

    python bench/transformer.py --config medium                       # CPU: full width, 2 layers, 1024 video tokens
    python bench/transformer.py --config medium --version 2.3         # the same with LTX-2.3's flags
    python bench/transformer.py --config medium --version 2.5         # LTX-2.5's, called as LTX2DFRPipeline does
    python bench/transformer.py --device cuda --config full --layers 8 # GPU: bf16, the stage-1 shape, batch 2

With --version 2.3 the text arrives at each stream's width (the connectors project it) and both models are
called as 0.42.1's LTX2Pipeline calls them: sigma = timestep, use_cross_timestep=True. --version 2.5 adds what
LTX2DFRPipeline passes: per-token timesteps (the first latent frame clean, as an image condition holds it) and the
keyframe marker on that frame.

Both models share the same weight tensors (ours is built on the meta device and assigned the reference's),
so memory holds one copy. Prints the median seconds of each and the ratio ours / reference.
"""

from __future__ import annotations

import argparse

import torch
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer

from ltx2 import LTX2VideoTransformer3DModel
from ltx2.configs import LTX_2_3_TRANSFORMER, LTX_2_5_TRANSFORMER
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


def model_config(config_name: str, version: str, layers: int | None) -> dict:
    overrides = SHAPES[config_name][0]
    base = {"2.3": dict(LTX_2_3_TRANSFORMER), "2.5": dict(LTX_2_5_TRANSFORMER)}.get(version, dict(rope_type="split"))
    config = dict(base, **overrides)
    if layers is not None:
        config["num_layers"] = layers
    return config


def make_inputs(config_name: str, settings, device: str, dtype: torch.dtype) -> dict:
    """Seeded forward arguments of the shape `config_name` for a model with config `settings` (text mask all
    ones, as a full-length prompt); LTX-2.3 models are called as 0.42.1's pipeline calls them."""
    _, batch, (frames, height, width), audio_tokens, text_tokens = SHAPES[config_name]
    generator = torch.Generator(device).manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=generator, device=device).to(dtype)

    projected = settings.use_prompt_embeddings
    timestep = torch.full((batch,), 500.0, device=device)
    inputs = dict(
        hidden_states=randn(batch, frames * height * width, settings.in_channels),
        audio_hidden_states=randn(batch, audio_tokens, settings.audio_in_channels),
        encoder_hidden_states=randn(
            batch, text_tokens, settings.caption_channels if projected else settings.cross_attention_dim
        ),
        audio_encoder_hidden_states=randn(
            batch, text_tokens, settings.caption_channels if projected else settings.audio_cross_attention_dim
        ),
        timestep=timestep,
        encoder_attention_mask=torch.ones(batch, text_tokens, device=device),
        audio_encoder_attention_mask=torch.ones(batch, text_tokens, device=device),
        num_frames=frames,
        height=height,
        width=width,
        fps=24.0,
        audio_num_frames=audio_tokens,
        return_dict=False,
    )
    if settings.perturbed_attn:
        inputs.update(sigma=timestep, use_cross_timestep=True)
    if settings.use_keyframes_abs_pos_embedding:
        first_frame = (torch.arange(frames * height * width, device=device) < height * width).float()
        inputs.update(timestep=timestep[:, None] * (1 - first_frame), audio_timestep=timestep, audio_sigma=timestep,
                      video_keyframes_mask=first_frame.expand(batch, -1)[..., None])
    return inputs


def build(config_name: str, version: str, layers: int | None, device: str, dtype: torch.dtype):
    config = model_config(config_name, version, layers)
    with torch.device(device):
        reference = ReferenceTransformer(**config).eval()
    if dtype != torch.float32:
        reference.to(dtype)
    with torch.device("meta"):
        ours = LTX2VideoTransformer3DModel(**config)
    ours.load_state_dict(reference.state_dict(), assign=True)
    ours.eval()
    return ours, reference, make_inputs(config_name, reference.config, device, dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(SHAPES), default="medium")
    parser.add_argument("--layers", type=int, default=None, help="number of blocks (default: the config's)")
    parser.add_argument("--version", choices=["2.0", "2.3", "2.5"], default="2.0", help="the LTX release's flags")
    add_run_arguments(parser)
    args = parser.parse_args()
    dtype = run_dtype(args)
    torch.manual_seed(0)
    ours, reference, inputs = build(args.config, args.version, args.layers, args.device, dtype)
    tokens = inputs["hidden_states"].shape[1]
    print(
        f"version={args.version} config={args.config} layers={len(ours.transformer_blocks)} device={args.device} "
        f"dtype={dtype} "
        f"batch={inputs['hidden_states'].shape[0]} video_tokens={tokens} audio_tokens={inputs['audio_num_frames']} "
        f"text_tokens={inputs['encoder_hidden_states'].shape[1]} threads={torch.get_num_threads()}"
    )
    compare(lambda: ours(**inputs), lambda: reference(**inputs), args.device, args.repeats)


if __name__ == "__main__":
    main()
