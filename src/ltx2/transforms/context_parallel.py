"""Context parallelism (Ulysses), diffusers' API: `transformer.enable_parallelism(config=ContextParallelConfig(
ulysses_degree=N))`.

The video and audio tokens are cut into N contiguous shards, the last one padded (pads are masked as keys and cut
from the output). Each rank projects, modulates and feeds forward its own tokens; around each self- and
audio<->video attention one all-to-all trades token shards for head groups, so that the attention sees every token
for H/N heads, and a second trades back. Text cross-attention needs nothing: its keys (the prompt) are on every
rank. RoPE tables and per-token timesteps come from the sharded positions and timesteps; a video self-attention
mask (IC-LoRA attention strengths) goes whole to the video self-attention.

A transform: it plugs into the attention layer (`Attention.parallel`) and the model's forward hooks, and knows
the transformer only through its public methods (`token_coordinates`) and its block list.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.device_mesh import DeviceMesh

from ..models.layers import additive_self_mask, attention

# The transformer block's attentions whose queries are sharded tokens, and the stream their keys come from.
# The text cross-attentions (attn2, audio_attn2) are absent: their keys are the prompt, on every rank.
SHARDED_ATTENTIONS = {
    "attn1": "video",
    "audio_attn1": "audio",
    "audio_to_video_attn": "audio",
    "video_to_audio_attn": "video",
}


@dataclass
class ContextParallelConfig:
    """Context-parallel settings, with diffusers' fields. ltx2 implements Ulysses: `ulysses_degree` ranks share
    each token sequence. Ring attention (`ring_degree`, `ring_anything`, `rotate_method`, `convert_to_fp32`) is
    not implemented, and `ulysses_anything` is not needed for token counts (they are padded) while head counts
    must divide by `ulysses_degree`. `mesh` is a DeviceMesh with a "ulysses" dimension; without it the whole
    world forms one group."""

    ring_degree: int | None = None
    ulysses_degree: int | None = None
    convert_to_fp32: bool = True
    rotate_method: str = "allgather"
    mesh: DeviceMesh | None = None
    ulysses_anything: bool = False
    ring_anything: bool = False

    def __post_init__(self) -> None:
        self.ring_degree = 1 if self.ring_degree is None else self.ring_degree
        self.ulysses_degree = 1 if self.ulysses_degree is None else self.ulysses_degree
        if self.ring_degree != 1 or self.ring_anything:
            raise ValueError(f"ring_degree={self.ring_degree}: ring attention is not implemented in ltx2; "
                             "use ulysses_degree")
        if not isinstance(self.ulysses_degree, int) or self.ulysses_degree < 2:
            raise ValueError(f"ulysses_degree must be an integer >= 2, got {self.ulysses_degree!r}")
        if self.ulysses_anything:
            raise ValueError("ulysses_anything=True is not supported: ltx2 pads token counts itself, and head "
                             "counts must be divisible by ulysses_degree")

    def process_group(self) -> dist.ProcessGroup:
        """This rank's Ulysses group: the mesh's "ulysses" dimension, or the whole world."""
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialized: call torch.distributed.init_process_group() "
                               "first (torchrun sets up its environment)")
        group = self.mesh.get_group("ulysses") if self.mesh is not None else dist.group.WORLD
        size = dist.get_world_size(group)
        if size != self.ulysses_degree:
            where = "the mesh's ulysses dimension" if self.mesh is not None else "the world"
            raise ValueError(f"ulysses_degree={self.ulysses_degree} but {where} has {size} ranks; pass a mesh with "
                             "a 'ulysses' dimension of that size (or use LTX2Pipeline.enable_parallelism)")
        return group


class TokenShards:
    """How the transformer's token sequences are split over `group`, installed as forward hooks.

    Before a forward the inputs are validated whole, padded to a multiple of the group size and cut to this
    rank's shard; after it the outputs are gathered and the padding cut. `lengths` holds the real token count
    of each stream for the forward in progress: the attentions mask the padded keys from it.
    """

    def __init__(self, group: dist.ProcessGroup):
        self.group = group
        self.degree = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.lengths: dict[str, int] = {}
        self.video_self_mask: torch.Tensor | None = None  # the forward's video_self_attention_mask, padded
        self.video_self_bias: torch.Tensor | None = None  # its additive form with the key padding, made once

    def padded(self, length: int) -> int:
        """`length` tokens rounded up to a multiple of the group size."""
        return -(-length // self.degree) * self.degree

    def split(self, x: torch.Tensor, dim: int, length: int) -> torch.Tensor:
        """This rank's shard of `x` along `dim`, after zero padding to a multiple of the group size."""
        shard = self.padded(length) // self.degree
        padding = shard * self.degree - length
        if padding:
            shape = list(x.shape)
            shape[dim] = padding
            x = torch.cat([x, x.new_zeros(shape)], dim=dim)
        return x.narrow(dim, self.rank * shard, shard)

    def gather(self, x: torch.Tensor, dim: int, length: int) -> torch.Tensor:
        """Every rank's shard joined along `dim`, padding cut."""
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(self.degree)]
        dist.all_gather(parts, x, group=self.group)
        return torch.cat(parts, dim=dim).narrow(dim, 0, length)

    def pad_square(self, mask: torch.Tensor, length: int) -> torch.Tensor:
        """(B, S, S) multiplicative mask -> (B, S', S') with S' the padded token count, padded with ones."""
        padding = self.padded(length) - length
        return F.pad(mask, (0, padding, 0, padding), value=1.0) if padding else mask

    def key_padding_mask(self, stream: str, keys: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
        """Additive (1, 1, 1, keys) mask hiding the padded tokens of `stream`; None when it has none."""
        length = self.lengths[stream]
        if length == keys:
            return None
        mask = torch.zeros(1, 1, 1, keys, dtype=dtype, device=device)
        mask[..., length:] = -math.inf
        return mask

    def before_forward(self, model: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """Forward pre-hook: validate and place the whole inputs, then hand the forward this rank's shards (the
        positions as coordinates, so that RoPE tables are built for these tokens only)."""
        bound = inspect.signature(model.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        inputs = bound.arguments
        video, audio = inputs["hidden_states"], inputs["audio_hidden_states"]
        audio_timestep = inputs["timestep"] if inputs["audio_timestep"] is None else inputs["audio_timestep"]
        video_coords, audio_coords = model.token_coordinates(
            video, audio, inputs["encoder_hidden_states"], inputs["audio_encoder_hidden_states"], inputs["timestep"],
            audio_timestep, inputs["num_frames"], inputs["height"], inputs["width"], inputs["fps"],
            inputs["audio_num_frames"], inputs["video_coords"], inputs["audio_coords"],
        )
        self.lengths = {"video": video.shape[1], "audio": audio.shape[1]}
        # After its all-to-all the video self-attention sees every token, so it takes the whole mask, which the
        # model (seeing only this rank's tokens) must not check: padded tokens attend everywhere and are hidden
        # as keys by key_padding_mask.
        mask = inputs["video_self_attention_mask"]
        self.video_self_mask = None if mask is None else self.pad_square(mask, self.lengths["video"])
        self.video_self_bias = None
        sharded = {
            "hidden_states": self.split(video, 1, self.lengths["video"]),
            "audio_hidden_states": self.split(audio, 1, self.lengths["audio"]),
            "video_coords": self.split(video_coords, 2, self.lengths["video"]),  # (B, 3, S, 2)
            "audio_coords": self.split(audio_coords, 2, self.lengths["audio"]),  # (B, 1, Sa, 2)
            "num_frames": None, "height": None, "width": None, "audio_num_frames": None,
            "video_self_attention_mask": None,
        }
        for name, stream in (("timestep", "video"), ("audio_timestep", "audio")):
            if inputs[name] is not None and inputs[name].ndim == 2:  # one timestep per token
                sharded[name] = self.split(inputs[name], 1, self.lengths[stream])
        if inputs["video_keyframes_mask"] is not None:  # (B, S, 1)
            sharded["video_keyframes_mask"] = self.split(inputs["video_keyframes_mask"], 1, self.lengths["video"])
        return (), {**inputs, **sharded}

    def after_forward(self, model: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        """Forward hook: every rank returns the whole output (and the forward's masks are let go)."""
        self.video_self_mask = self.video_self_bias = None
        as_tuple = isinstance(output, tuple)
        video, audio = output if as_tuple else (output.sample, output.audio_sample)
        video, audio = self.gather(video, 1, self.lengths["video"]), self.gather(audio, 1, self.lengths["audio"])
        return (video, audio) if as_tuple else replace(output, sample=video, audio_sample=audio)


def _all_to_all(rows: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """Row j goes to group rank j; row j of the result came from group rank j."""
    received = torch.empty_like(rows)
    dist.all_to_all_single(received, rows, group=group)
    return received


class UlyssesAttention:
    """Attention between token shards: all-to-all to (all tokens, H/N heads), attend, all-to-all back."""

    def __init__(self, shards: TokenShards, key_stream: str, video_self_attention: bool = False):
        self.shards = shards
        self.key_stream = key_stream
        self.video_self_attention = video_self_attention  # takes the forward's video_self_attention_mask

    def __call__(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        if mask is not None:
            raise NotImplementedError("an attention mask on token-sharded attention is not supported")
        n, group = self.shards.degree, self.shards.group
        batch, heads, query_tokens, head_dim = query.shape
        key_tokens = key.shape[2]

        def by_head_group(x: torch.Tensor) -> torch.Tensor:
            # (B, H, S, D) -> (n, B * H/n * S * D): row j holds the heads that group rank j attends for.
            return x.unflatten(1, (n, heads // n)).transpose(0, 1).reshape(n, -1)

        def all_tokens(rows: torch.Tensor, tokens: int) -> torch.Tensor:
            # (n, B * H/n * S * D), row j from group rank j -> (B, H/n, n * S, D) in token order
            return rows.view(n, batch, heads // n, tokens, head_dim).permute(1, 2, 0, 3, 4).flatten(2, 3)

        received = _all_to_all(torch.cat([by_head_group(x) for x in (query, key, value)], dim=1), group)
        query_part, key_part, value_part = received.split([query.numel() // n, key.numel() // n, key.numel() // n], 1)
        keys = all_tokens(key_part, key_tokens)
        padding = self.shards.key_padding_mask(self.key_stream, keys.shape[2], query.dtype, query.device)
        if self.video_self_attention and self.shards.video_self_mask is not None:
            shards = self.shards
            if shards.video_self_bias is None:  # once per forward: every block's self-attention takes the same
                bias = additive_self_mask(shards.video_self_mask, query.dtype)  # (B, 1, S', S')
                shards.video_self_bias = bias if padding is None else bias + padding
            padding = shards.video_self_bias
        out = attention(all_tokens(query_part, query_tokens), keys, all_tokens(value_part, key_tokens), padding)
        # (B, H/n, n * Sq, D) -> (n, B, H/n, Sq, D): row j holds group rank j's queries, sent back to it.
        out = _all_to_all(out.unflatten(2, (n, query_tokens)).permute(2, 0, 1, 3, 4).contiguous(), group)
        # Row j now holds head group j of this rank's queries.
        return out.transpose(0, 1).reshape(batch, heads, query_tokens, head_dim)


def apply_context_parallel(transformer: Any, config: ContextParallelConfig) -> None:
    """Shard the transformer's video and audio tokens over the config's Ulysses group (see the module doc)."""
    if getattr(transformer, "_parallel_config", None) is not None:
        raise RuntimeError("parallelism is already enabled on this transformer")
    group = config.process_group()
    for name in ("num_attention_heads", "audio_num_attention_heads"):
        heads = getattr(transformer.config, name)
        if heads % config.ulysses_degree:
            raise ValueError(f"{name}={heads} is not divisible by ulysses_degree={config.ulysses_degree}: "
                             "Ulysses gives each rank an equal share of the heads")
    shards = TokenShards(group)
    for block in transformer.transformer_blocks:
        for name, key_stream in SHARDED_ATTENTIONS.items():
            getattr(block, name).parallel = UlyssesAttention(shards, key_stream, name == "attn1")
    transformer._parallel_hooks = (transformer.register_forward_pre_hook(shards.before_forward, with_kwargs=True),
                                   transformer.register_forward_hook(shards.after_forward, with_kwargs=True))
    transformer._parallel_config = config


def remove_context_parallel(transformer: Any) -> None:
    """Undo apply_context_parallel (its process group is gone), so that it can be applied again."""
    for block in transformer.transformer_blocks:
        for name in SHARDED_ATTENTIONS:
            getattr(block, name).parallel = None
    for hook in transformer._parallel_hooks:
        hook.remove()
    transformer._parallel_config = transformer._parallel_hooks = None
