"""The work of the parallel tests, run on gloo ranks that `on_ranks` starts and, for comparison, in one process.

Spawned ranks import this module (not the test module), so it imports only torch and ltx2 and starts fast; the
pipelines get the prompt as embeddings, computed once, so that no rank loads Gemma (nothing about it is shared).
"""

from __future__ import annotations

import collections
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ltx2 import (
    STAGE_2_DISTILLED_SIGMA_VALUES,
    AutoencoderKLLTX2Video,
    ContextParallelConfig,
    LTX2ImageToVideoPipeline,
    LTX2LatentUpsamplePipeline,
    LTX2LatentUpsamplerModel,
    LTX2Pipeline,
    LTX2VideoTransformer3DModel,
)
from ltx2.transforms import collectives, context_parallel

PROMPT, NEGATIVE_PROMPT = "a robot dancing in the rain", "blurry low quality"
# 24x40 pixels, 5 frames: 3 x 3 x 5 = 45 video tokens, which neither 2 nor 4 ranks divide (padded).
CALL = dict(height=24, width=40, num_frames=5, frame_rate=25.0, num_inference_steps=2, guidance_scale=4.0)
FOUR_PASSES = dict(stg_scale=1.0, spatio_temporal_guidance_blocks=[0], modality_scale=2.0)
# 32-pixel tiles 24 pixels apart: the 3 x 5 latents of CALL decode as two overlapping tiles.
SMALL_TILES = dict(tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=24,
                   tile_sample_stride_width=24)
VIDEO, AUDIO, TEXT = (3, 3, 5), 7, 10  # the transformer probe's latent (frames, height, width), audio and text tokens


def on_ranks(world: int, function: Callable[..., Any], *args: Any) -> list[Any]:
    """Run `function(*args)` on `world` gloo ranks (new processes, one thread each); what each rank returned."""
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(_rank, args=(world, folder, function, args), nprocs=world)
        return [torch.load(Path(folder) / f"rank{rank}.pt", weights_only=False) for rank in range(world)]


def _rank(rank: int, world: int, folder: str, function: Callable[..., Any], args: tuple) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    result = function(*args)
    torch.save(result, Path(folder) / f"rank{rank}.pt")
    dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------
# Pipelines


def prompt_embeddings(folder: Path) -> dict[str, torch.Tensor]:
    """The pipeline's own encoding of PROMPT and NEGATIVE_PROMPT, as the four *_embeds / *_mask arguments."""
    with torch.no_grad():
        embeds = LTX2Pipeline.from_pretrained(folder).encode_prompt(PROMPT, NEGATIVE_PROMPT, max_sequence_length=16)
    names = ("prompt_embeds", "prompt_attention_mask", "negative_prompt_embeds", "negative_prompt_attention_mask")
    return dict(zip(names, embeds))


def generate(
    folder: Path, flow: str, prompt: dict[str, torch.Tensor], split: tuple[int, int] | None = None
) -> dict[str, torch.Tensor]:
    """One pipeline flow on the tiny pipeline in `folder`: here, or shared as (ulysses, guidance) degrees."""
    pipe_class = LTX2ImageToVideoPipeline if flow == "image-to-video" else LTX2Pipeline
    pipe = pipe_class.from_pretrained(folder, text_encoder=None, tokenizer=None)
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling(**SMALL_TILES)
    if split is not None:
        pipe.enable_parallelism(*split)
    seed = torch.Generator().manual_seed
    call = {**CALL, **prompt, "return_dict": False}
    with torch.no_grad():
        if flow == "text-to-video":
            steps: list[torch.Tensor] = []
            video, audio = pipe(**call, **FOUR_PASSES, output_type="pt", generator=seed(0),
                                callback_on_step_end=lambda pipe, i, t, tensors: steps.append(tensors["latents"]) or {})
            return {"latents": steps[-1], "video": video, "audio": audio}
        if flow == "image-to-video":
            image = torch.rand(1, 3, 24, 40, generator=seed(5))
            video, audio = pipe(image=image, image_crf=0, **call, output_type="latent", generator=seed(1))
            return {"latents": video, "audio_latents": audio}
        video, audio = pipe(**call, output_type="latent", generator=seed(2))
        upsampler = LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder="latent_upsampler")
        upsampled = LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=upsampler)(
            latents=video, output_type="latent", return_dict=False
        )[0]
        stage_two = {**call, "height": 48, "width": 80, "num_inference_steps": 3, "guidance_scale": 1.0}
        video, audio = pipe(**stage_two, latents=upsampled, audio_latents=audio, sigmas=STAGE_2_DISTILLED_SIGMA_VALUES,
                            noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0], output_type="latent", generator=seed(3))
        return {"latents": video, "audio_latents": audio}


# ----------------------------------------------------------------------------------------------------------
# The transformer under Ulysses


def transformer_inputs(config: Any) -> dict[str, Any]:
    """Batch 2 with per-token timesteps and a text mask; VIDEO and AUDIO token counts."""
    generator = torch.Generator().manual_seed(1)
    tokens = VIDEO[0] * VIDEO[1] * VIDEO[2]
    mask = torch.ones(2, TEXT)
    mask[0, :4] = 0
    return dict(
        hidden_states=torch.randn(2, tokens, config.in_channels, generator=generator),
        audio_hidden_states=torch.randn(2, AUDIO, config.audio_in_channels, generator=generator),
        encoder_hidden_states=torch.randn(2, TEXT, config.caption_channels, generator=generator),
        audio_encoder_hidden_states=torch.randn(2, TEXT, config.caption_channels, generator=generator),
        timestep=torch.rand(2, tokens, generator=generator) * 1000, audio_timestep=torch.rand(2, generator=generator),
        encoder_attention_mask=mask, audio_encoder_attention_mask=mask, num_frames=VIDEO[0], height=VIDEO[1],
        width=VIDEO[2], fps=24.0, return_dict=False,
    )


def self_attention_mask() -> torch.Tensor:
    """A (2, S, S) video self-attention mask in [0, 1], a third of it zero (as reference-video strengths)."""
    tokens = VIDEO[0] * VIDEO[1] * VIDEO[2]
    mask = torch.rand(2, tokens, tokens, generator=torch.Generator().manual_seed(2))
    return torch.where(mask < 0.3, 0.0, mask)


def transformer_outputs(model: LTX2VideoTransformer3DModel) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    inputs = transformer_inputs(model.config)
    with torch.no_grad():
        return {"joint": model(**inputs), "isolated": model(**inputs, isolate_modalities=True),
                "masked": model(**inputs, video_self_attention_mask=self_attention_mask())}


def probe_transformer(folder: Path) -> dict[str, Any]:
    """The transformer over all ranks (Ulysses): its outputs, and per forward the collectives it ran, the query
    tokens each sharded attention module projected, and the (heads, query, key tokens) each attention saw."""
    model = LTX2VideoTransformer3DModel.from_pretrained(folder, subfolder="transformer")
    model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=dist.get_world_size()))
    calls: collections.Counter = collections.Counter()
    query_tokens, attended = set(), set()
    originals = {name: getattr(dist, name) for name in ("all_to_all_single", "all_gather")}
    attention = context_parallel.attention

    def counted(name: str) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return originals[name](*args, **kwargs)
        return run

    def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: Any) -> torch.Tensor:
        attended.add((query.shape[1], query.shape[2], key.shape[2]))
        return attention(query, key, value, mask)

    for block in model.transformer_blocks:
        for name in context_parallel.SHARDED_ATTENTIONS:
            getattr(block, name).register_forward_pre_hook(
                lambda module, args, name=name: query_tokens.add((name, args[0].shape[1]))
            )
    for name in originals:
        setattr(dist, name, counted(name))
    context_parallel.attention = attend
    try:
        outputs = {}
        for key, options in (("joint", {}), ("isolated", dict(isolate_modalities=True)),
                             ("masked", dict(video_self_attention_mask=self_attention_mask()))):
            calls.clear()
            with torch.no_grad():
                outputs[key] = model(**transformer_inputs(model.config), **options)
            outputs[f"{key} calls"] = dict(calls)
    finally:
        for name, function in originals.items():
            setattr(dist, name, function)
        context_parallel.attention = attention
    return {**outputs, "query tokens": query_tokens, "attended": attended}


def refusals(two_head_folder: Path) -> list[str]:
    """The errors for 2 heads over 4 ranks (on 4 ranks), and for a Ulysses degree that is not the world size."""
    messages = []
    for degree in (4, 2) if dist.get_world_size() == 4 else (4,):
        model = LTX2VideoTransformer3DModel.from_pretrained(two_head_folder, subfolder="transformer")
        try:
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=degree))
        except ValueError as error:
            messages.append(str(error))
    return messages


# ----------------------------------------------------------------------------------------------------------
# The tiled VAE decode


def tile_latents() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {"overlapping": torch.randn(1, 4, 3, 8, 12, generator=generator),
            "two tiles": torch.randn(1, 4, 2, 4, 8, generator=generator)}


def decode_tiles(folder: Path, shared: bool) -> dict[str, torch.Tensor]:
    """Tiled decodes: 32-pixel tiles 24 apart (12 tiles) and 32 apart (two tiles: fewer than the ranks)."""
    vae = AutoencoderKLLTX2Video.from_pretrained(folder, subfolder="vae")
    if shared:
        collectives.share_tiles(vae)
    decoded = {}
    for (name, latents), stride in zip(tile_latents().items(), (24, 32)):
        vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=stride,
                          tile_sample_stride_width=stride)
        with torch.no_grad():
            decoded[name] = vae.decode(latents).sample
    return decoded


# ----------------------------------------------------------------------------------------------------------
# One job per world size: everything a spawned group of ranks checks


def rank_job(
    folder: Path, two_head_folder: Path, prompt: dict[str, torch.Tensor], flows: list[tuple[str, tuple[int, int]]]
) -> dict[str, Any]:
    return {
        "transformer": probe_transformer(folder),
        "refusals": refusals(two_head_folder),
        "tiles": decode_tiles(folder, shared=True),
        "flows": {(flow, split): generate(folder, flow, prompt, split) for flow, split in flows},
    }
