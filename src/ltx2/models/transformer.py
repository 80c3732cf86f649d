"""The LTX-2 audio-video diffusion transformer.

Two token streams, video (B, S, 4096) and audio (B, Sa, 2048), run through 48 blocks side by side. In each
block each stream attends to itself and to its text context, then the streams attend to each other
(audio -> video and video -> audio), then each applies its feed-forward. Everything is modulated by
AdaLN-single from the diffusion timestep; the network predicts the flow-matching velocity of both streams.

LTX-2.3 (`ltx2.configs.LTX_2_3_TRANSFORMER`) keeps this shape and switches on, per config flag:
- `gated_attn` / `audio_gated_attn`: per-head output gates on every attention whose queries are that stream;
- `cross_attn_mod` / `audio_cross_attn_mod`: AdaLN on the text cross-attention as well: three more rows
  (shift, scale, gate) for that stream's queries, and, in both streams as soon as either flag is on, a per-block
  shift and scale of the text context offset by an AdaLN-single of sigma (`prompt_adaln`; without it when
  `use_prompt_adaln_single=False`);
- `use_prompt_embeddings=False`: the text arrives already at each stream's width (the connectors project it);
- `perturbed_attn`: the self-attentions take spatio-temporal guidance (STG) perturbations;
- `ff_bias` / `audio_ff_bias`; `use_keyframes_abs_pos_embedding`: a learned offset added to tokens whose latent
  frame encodes a single pixel frame.

LTX-2.5 (`ltx2.configs.LTX_2_5_TRANSFORMER`) is LTX-2.3 with `ff_bias=False` (the audio feed-forward keeps its
biases) and the keyframe offset; its pipelines pass per-token timesteps, coordinates for appended single-frame
tokens, the keyframe mask and, for frozen audio, audio timestep and sigma 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from ..loading import PretrainedModel
from ..loading.checkpoint import Layout
from .layers import (
    DEFAULT_ARITHMETIC,
    AdaLNSingle,
    Arithmetic,
    Attention,
    FeedForward,
    Perturbation,
    RMSNorm,
    Rope,
    TextProjection,
    additive_self_mask,
    modulation,
    rope_tables,
)

if TYPE_CHECKING:
    from ..transforms.context_parallel import ContextParallelConfig


class ScaleShift(NamedTuple):
    shift: torch.Tensor
    scale: torch.Tensor


class Modulation(NamedTuple):
    shift: torch.Tensor
    scale: torch.Tensor
    gate: torch.Tensor


class CrossModulation(NamedTuple):
    """Per-stream modulation of the audio<->video attentions: the input when this stream is the query of a2v
    (or its key/value source), the input for v2a, and this stream's gate on the attention it receives."""

    a2v_scale: torch.Tensor
    a2v_shift: torch.Tensor
    v2a_scale: torch.Tensor
    v2a_shift: torch.Tensor
    gate: torch.Tensor


class TimestepValues(NamedTuple):
    """AdaLN values of per-sample or per-token timesteps. Per-token timesteps (conditioning) take a few distinct
    values: each is embedded once, and a block gathers a token's rows only when it uses them, so that no
    (B, T, n * dim) tensor lives through the forward."""

    values: torch.Tensor  # (B, 1, n * dim) per sample, or (1, K, n * dim) per distinct timestep
    index: torch.Tensor | None  # (B, T): each token's distinct timestep; None per sample

    def rows(self, table: torch.Tensor, first: int = 0) -> tuple[torch.Tensor, ...]:
        """Rows first, first + 1, ... of the values plus the (n, dim) table: (B, 1 or T, dim) each."""
        dim = table.shape[-1]
        rows = modulation(table, self.values[..., first * dim : (first + table.shape[0]) * dim])
        return rows if self.index is None else tuple(row[0, self.index] for row in rows)


class StreamConditioning(NamedTuple):
    """What the top level hands every block for one stream."""

    timestep: TimestepValues  # 6 or 9 rows: AdaLN for self-attention, feed-forward (and text queries)
    cross_scale_shift: TimestepValues  # 4 rows: AdaLN for the audio<->video attentions
    cross_gate: TimestepValues  # 1 row
    prompt: TimestepValues | None  # 2 rows, per sample: AdaLN of the text context from sigma
    context: torch.Tensor  # (B, L, dim): text at the stream's width
    context_mask: torch.Tensor | None  # (B, 1, 1, L) additive
    self_mask: torch.Tensor | None  # (B, 1, S, S) additive, on the self-attention
    self_rope: Rope
    cross_rope: Rope


class StreamModules(NamedTuple):
    """One stream's half of a block: self-attention, text cross-attention and feed-forward, with their norms."""

    norm1: RMSNorm
    attn1: Attention
    norm2: RMSNorm
    attn2: Attention
    norm3: RMSNorm
    ff: FeedForward

    @classmethod
    def build(
        cls, dim: int, heads: int, head_dim: int, context_dim: int, eps: float, gated: bool, ff_bias: bool
    ) -> StreamModules:
        return cls(
            RMSNorm(dim, eps, elementwise_affine=False),
            Attention(dim, heads, head_dim, gated=gated),
            RMSNorm(dim, eps, elementwise_affine=False),
            Attention(dim, heads, head_dim, kv_dim=context_dim, gated=gated),
            RMSNorm(dim, eps, elementwise_affine=False),
            FeedForward(dim, bias=ff_bias),
        )

    def attend(
        self,
        x: torch.Tensor,
        table: torch.Tensor,
        prompt_table: torch.Tensor | None,
        cond: StreamConditioning,
        perturbation: Perturbation | None,
        ops: Arithmetic,
    ) -> torch.Tensor:
        """Self-attention then text cross-attention."""
        attn = Modulation(*cond.timestep.rows(table[:3]))
        out = self.attn1(
            ops.modulate(self.norm1(x), attn.shift, attn.scale),
            mask=cond.self_mask,
            query_rope=cond.self_rope,
            perturbation=perturbation,
        )
        x = ops.gated_add(x, out, attn.gate)
        context = cond.context
        if prompt_table is not None:
            # Without the prompt AdaLN (use_prompt_adaln_single=False) the block's table alone shifts and scales.
            prompt = prompt_table.unbind(0) if cond.prompt is None else cond.prompt.rows(prompt_table)
            context = ops.modulate(context, *ScaleShift(*prompt))
        if table.shape[0] == 6:
            return x + self.attn2(self.norm2(x), context=context, mask=cond.context_mask)
        text = Modulation(*cond.timestep.rows(table[6:], first=6))
        out = self.attn2(ops.modulate(self.norm2(x), text.shift, text.scale), context=context, mask=cond.context_mask)
        return ops.gated_add(x, out, text.gate)

    def feed_forward(
        self, x: torch.Tensor, table: torch.Tensor, cond: StreamConditioning, ops: Arithmetic
    ) -> torch.Tensor:
        mlp = Modulation(*cond.timestep.rows(table[3:6], first=3))
        return ops.gated_add(x, self.ff(ops.modulate(self.norm3(x), mlp.shift, mlp.scale)), mlp.gate)


class LTX2VideoTransformerBlock(nn.Module):
    """One dual-stream block. Audio modules carry an `audio_` prefix, as in the checkpoint layout.

    `cross_adaln` gives a stream's AdaLN table three more rows, for its text queries; with either stream's
    flag on, both streams get a per-block (shift, scale) table for their text context.
    """

    arithmetic: Arithmetic = DEFAULT_ARITHMETIC  # a transform may set another (see layers.Arithmetic)

    def __init__(
        self,
        dim: int,
        heads: int,
        head_dim: int,
        context_dim: int,
        audio_dim: int,
        audio_heads: int,
        audio_head_dim: int,
        audio_context_dim: int,
        eps: float,
        gated: bool = False,
        cross_adaln: bool = False,
        audio_gated: bool = False,
        audio_cross_adaln: bool = False,
        ff_bias: bool = True,
        audio_ff_bias: bool = True,
    ):
        super().__init__()
        self.norm1, self.attn1, self.norm2, self.attn2, self.norm3, self.ff = StreamModules.build(
            dim, heads, head_dim, context_dim, eps, gated, ff_bias
        )
        self.audio_norm1, self.audio_attn1, self.audio_norm2, self.audio_attn2, self.audio_norm3, self.audio_ff = (
            StreamModules.build(
                audio_dim, audio_heads, audio_head_dim, audio_context_dim, eps, audio_gated, audio_ff_bias
            )
        )
        # Both audio<->video attentions work at the audio stream's width and head layout; each is gated by
        # the flag of the stream that sends the queries.
        self.audio_to_video_norm = RMSNorm(dim, eps, elementwise_affine=False)
        self.audio_to_video_attn = Attention(dim, audio_heads, audio_head_dim, kv_dim=audio_dim, gated=gated)
        self.video_to_audio_norm = RMSNorm(audio_dim, eps, elementwise_affine=False)
        self.video_to_audio_attn = Attention(audio_dim, audio_heads, audio_head_dim, kv_dim=dim, gated=audio_gated)
        self.scale_shift_table = nn.Parameter(torch.randn(9 if cross_adaln else 6, dim) / dim**0.5)
        self.audio_scale_shift_table = nn.Parameter(
            torch.randn(9 if audio_cross_adaln else 6, audio_dim) / audio_dim**0.5
        )
        self.prompt_scale_shift_table = self.audio_prompt_scale_shift_table = None
        if cross_adaln or audio_cross_adaln:
            self.prompt_scale_shift_table = nn.Parameter(torch.randn(2, dim))
            self.audio_prompt_scale_shift_table = nn.Parameter(torch.randn(2, audio_dim))
        self.video_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.randn(5, dim))
        self.audio_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.randn(5, audio_dim))

    def forward(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        video_cond: StreamConditioning,
        audio_cond: StreamConditioning,
        cross_modal: bool = True,
        perturbation: Perturbation | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        video_stream = StreamModules(self.norm1, self.attn1, self.norm2, self.attn2, self.norm3, self.ff)
        audio_stream = StreamModules(
            self.audio_norm1, self.audio_attn1, self.audio_norm2, self.audio_attn2, self.audio_norm3, self.audio_ff
        )
        ops = self.arithmetic
        video = video_stream.attend(
            video, self.scale_shift_table, self.prompt_scale_shift_table, video_cond, perturbation, ops
        )
        audio = audio_stream.attend(
            audio, self.audio_scale_shift_table, self.audio_prompt_scale_shift_table, audio_cond, perturbation, ops
        )

        if cross_modal:
            video_mod = self._cross_modulation(self.video_a2v_cross_attn_scale_shift_table, video_cond)
            audio_mod = self._cross_modulation(self.audio_a2v_cross_attn_scale_shift_table, audio_cond)
            # Both directions read the streams as they were before either residual is added.
            video_normed, audio_normed = self.audio_to_video_norm(video), self.video_to_audio_norm(audio)
            audio_to_video = self.audio_to_video_attn(
                ops.modulate(video_normed, video_mod.a2v_shift, video_mod.a2v_scale),
                context=ops.modulate(audio_normed, audio_mod.a2v_shift, audio_mod.a2v_scale),
                query_rope=video_cond.cross_rope,
                key_rope=audio_cond.cross_rope,
            )
            video_to_audio = self.video_to_audio_attn(
                ops.modulate(audio_normed, audio_mod.v2a_shift, audio_mod.v2a_scale),
                context=ops.modulate(video_normed, video_mod.v2a_shift, video_mod.v2a_scale),
                query_rope=audio_cond.cross_rope,
                key_rope=video_cond.cross_rope,
            )
            video = ops.gated_add(video, audio_to_video, video_mod.gate)
            audio = ops.gated_add(audio, video_to_audio, audio_mod.gate)

        return (
            video_stream.feed_forward(video, self.scale_shift_table, video_cond, ops),
            audio_stream.feed_forward(audio, self.audio_scale_shift_table, audio_cond, ops),
        )

    @staticmethod
    def _cross_modulation(table: torch.Tensor, cond: StreamConditioning) -> CrossModulation:
        a2v_scale, a2v_shift, v2a_scale, v2a_shift = cond.cross_scale_shift.rows(table[:4])
        (gate,) = cond.cross_gate.rows(table[4:])
        return CrossModulation(a2v_scale, a2v_shift, v2a_scale, v2a_shift, gate)


class StreamEmbedders(NamedTuple):
    """One stream's top-level modules that turn its timesteps and text into the blocks' StreamConditioning."""

    time_embed: AdaLNSingle
    cross_scale_shift: AdaLNSingle
    cross_gate: AdaLNSingle
    prompt_adaln: AdaLNSingle | None
    caption_projection: TextProjection | None

    def condition(
        self,
        timestep: torch.Tensor,
        cross_timestep: torch.Tensor,
        gate_ratio: float,
        sigma: torch.Tensor | None,
        dtype: torch.dtype,
        context: torch.Tensor,
        context_mask: torch.Tensor | None,
        self_mask: torch.Tensor | None,
        ropes: tuple[Rope, Rope],
    ) -> tuple[StreamConditioning, torch.Tensor]:
        """The blocks' conditioning, and the timestep embedding (B, 1 or T, dim) for the output layer."""

        def embed(adaln: AdaLNSingle, timesteps: torch.Tensor) -> tuple[TimestepValues, torch.Tensor]:
            # (B,) or (B, T) timesteps -> their modulation values and the (B, 1 or T, dim) embedding
            if timesteps.ndim == 1:
                values, embedded = adaln(timesteps, dtype)
                return TimestepValues(values[:, None], None), embedded[:, None]
            distinct, index = torch.unique(timesteps, return_inverse=True)
            values, embedded = adaln(distinct, dtype)
            return TimestepValues(values[None], index), embedded[index]

        values, embedded = embed(self.time_embed, timestep)
        conditioning = StreamConditioning(
            timestep=values,
            cross_scale_shift=embed(self.cross_scale_shift, cross_timestep)[0],
            cross_gate=embed(self.cross_gate, cross_timestep * gate_ratio)[0],
            prompt=None if self.prompt_adaln is None else embed(self.prompt_adaln, sigma)[0],
            context=context if self.caption_projection is None else self.caption_projection(context),
            context_mask=context_mask,
            self_mask=self_mask,
            self_rope=ropes[0],
            cross_rope=ropes[1],
        )
        return conditioning, embedded


@dataclass
class AudioVisualModelOutput:
    sample: torch.Tensor
    audio_sample: torch.Tensor


def video_positions(
    batch_size: int,
    num_frames: int,
    height: int,
    width: int,
    scale_factors: tuple[int, int, int],
    causal_offset: int,
    fps: float,
    device: torch.device | None = None,
) -> torch.Tensor:
    """[start, end) of every latent token in seconds (time) and pixels (height, width): (B, 3, F*H*W, 2).

    The causal VAE encodes the first pixel frame alone, so time is shifted back by one latent stride
    (less `causal_offset`) and clamped at zero.
    """
    grid = torch.meshgrid(
        *(torch.arange(size, dtype=torch.float32, device=device) for size in (num_frames, height, width)), indexing="ij"
    )
    starts = torch.stack(grid).flatten(1)  # (3, F*H*W)
    bounds = torch.stack([starts, starts + 1], dim=-1)  # (3, N, 2) in latent units
    scales = torch.tensor(scale_factors, dtype=torch.float32, device=device).view(3, 1, 1)
    pixels = bounds * scales
    seconds = (pixels[0] + causal_offset - scale_factors[0]).clamp(min=0) / fps
    coords = torch.cat([seconds[None], pixels[1:]])
    return coords.unsqueeze(0).expand(batch_size, -1, -1, -1)


def audio_positions(
    batch_size: int,
    num_frames: int,
    scale_factor: int,
    causal_offset: int,
    hop_length: int,
    sampling_rate: int,
    device: torch.device | None = None,
) -> torch.Tensor:
    """[start, end) of every audio latent frame in seconds, with the same causal shift as video: (B, 1, N, 2)."""
    starts = torch.arange(num_frames, dtype=torch.float32, device=device)
    mel_frames = torch.stack([starts, starts + 1], dim=-1) * scale_factor
    seconds = (mel_frames + causal_offset - scale_factor).clamp(min=0) * hop_length / sampling_rate
    return seconds[None, None].expand(batch_size, -1, -1, -1)


def position_fractions(coords: torch.Tensor, extents: tuple[float, ...]) -> torch.Tensor:
    """(B, P, N, 2) [start, end) coordinates -> (B, N, P) midpoints as fractions of each axis' extent."""
    midpoints = coords.mean(dim=-1) if coords.ndim == 4 else coords
    extent = torch.tensor(extents, dtype=midpoints.dtype, device=midpoints.device)
    return midpoints.transpose(1, 2) / extent


class LTX2VideoTransformer3DModel(PretrainedModel):
    """The LTX-2 audio-video DiT. Defaults are the 19B LTX-2.0 model's configuration; LTX-2.3's is
    `ltx2.configs.LTX_2_3_TRANSFORMER`."""

    single_file_component = "transformer"
    _repeated_blocks = ("LTX2VideoTransformerBlock",)
    _skip_layerwise_casting_patterns = ("norm",)
    arithmetic: Arithmetic = DEFAULT_ARITHMETIC  # a transform may set another (see layers.Arithmetic)

    def __init__(
        self,
        in_channels: int = 128,
        out_channels: int | None = 128,
        patch_size: int = 1,
        patch_size_t: int = 1,
        num_attention_heads: int = 32,
        attention_head_dim: int = 128,
        cross_attention_dim: int = 4096,
        vae_scale_factors: tuple[int, int, int] = (8, 32, 32),
        pos_embed_max_pos: int = 20,
        base_height: int = 2048,
        base_width: int = 2048,
        gated_attn: bool = False,
        cross_attn_mod: bool = False,
        audio_in_channels: int = 128,
        audio_out_channels: int | None = 128,
        audio_patch_size: int = 1,
        audio_patch_size_t: int = 1,
        audio_num_attention_heads: int = 32,
        audio_attention_head_dim: int = 64,
        audio_cross_attention_dim: int = 2048,
        audio_scale_factor: int = 4,
        audio_pos_embed_max_pos: int = 20,
        audio_sampling_rate: int = 16000,
        audio_hop_length: int = 160,
        audio_gated_attn: bool = False,
        audio_cross_attn_mod: bool = False,
        num_layers: int = 48,
        activation_fn: str = "gelu-approximate",
        qk_norm: str = "rms_norm_across_heads",
        norm_elementwise_affine: bool = False,
        norm_eps: float = 1e-6,
        caption_channels: int = 3840,
        attention_bias: bool = True,
        attention_out_bias: bool = True,
        rope_theta: float = 10000.0,
        rope_double_precision: bool = True,
        causal_offset: int = 1,
        timestep_scale_multiplier: int = 1000,
        cross_attn_timestep_scale_multiplier: int = 1000,
        rope_type: str = "split",
        use_prompt_embeddings: bool = True,
        perturbed_attn: bool = False,
        ff_bias: bool = True,
        audio_ff_bias: bool = True,
        use_prompt_adaln_single: bool = True,
        use_keyframes_abs_pos_embedding: bool = False,
    ):
        super().__init__()
        _require_supported(
            patch_size=(patch_size, 1),
            patch_size_t=(patch_size_t, 1),
            audio_patch_size=(audio_patch_size, 1),
            audio_patch_size_t=(audio_patch_size_t, 1),
            activation_fn=(activation_fn, "gelu-approximate"),
            qk_norm=(qk_norm, "rms_norm_across_heads"),
            norm_elementwise_affine=(norm_elementwise_affine, False),
            attention_bias=(attention_bias, True),
            attention_out_bias=(attention_out_bias, True),
        )
        dim = num_attention_heads * attention_head_dim
        audio_dim = audio_num_attention_heads * audio_attention_head_dim
        _check_widths(
            rope_type,
            num_attention_heads,
            audio_num_attention_heads,
            dim,
            audio_dim,
            cross_attention_dim,
            audio_cross_attention_dim,
            use_prompt_embeddings or cross_attn_mod or audio_cross_attn_mod,
        )
        self.proj_in = nn.Linear(in_channels, dim)
        self.audio_proj_in = nn.Linear(audio_in_channels, audio_dim)
        if use_keyframes_abs_pos_embedding:
            self.keyframes_abs_pos_embedding = nn.Parameter(torch.zeros(1, dim))
        self.caption_projection = self.audio_caption_projection = None
        if use_prompt_embeddings:
            self.caption_projection = TextProjection(caption_channels, dim)
            self.audio_caption_projection = TextProjection(caption_channels, audio_dim)

        self.time_embed = AdaLNSingle(dim, 9 if cross_attn_mod else 6)
        self.audio_time_embed = AdaLNSingle(audio_dim, 9 if audio_cross_attn_mod else 6)
        self.av_cross_attn_video_scale_shift = AdaLNSingle(dim, 4)
        self.av_cross_attn_audio_scale_shift = AdaLNSingle(audio_dim, 4)
        self.av_cross_attn_video_a2v_gate = AdaLNSingle(dim, 1)
        self.av_cross_attn_audio_v2a_gate = AdaLNSingle(audio_dim, 1)
        self.prompt_adaln = self.audio_prompt_adaln = None
        if (cross_attn_mod or audio_cross_attn_mod) and use_prompt_adaln_single:
            self.prompt_adaln = AdaLNSingle(dim, 2)
            self.audio_prompt_adaln = AdaLNSingle(audio_dim, 2)

        self.transformer_blocks = nn.ModuleList(
            LTX2VideoTransformerBlock(
                dim,
                num_attention_heads,
                attention_head_dim,
                cross_attention_dim,
                audio_dim,
                audio_num_attention_heads,
                audio_attention_head_dim,
                audio_cross_attention_dim,
                norm_eps,
                gated_attn,
                cross_attn_mod,
                audio_gated_attn,
                audio_cross_attn_mod,
                ff_bias,
                audio_ff_bias,
            )
            for _ in range(num_layers)
        )

        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.audio_scale_shift_table = nn.Parameter(torch.randn(2, audio_dim) / audio_dim**0.5)
        self.norm_out = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_channels or in_channels)
        self.audio_norm_out = nn.LayerNorm(audio_dim, eps=1e-6, elementwise_affine=False)
        self.audio_proj_out = nn.Linear(audio_dim, audio_out_channels or audio_in_channels)

    @classmethod
    def config_layout(cls, config: dict[str, Any]) -> Layout:
        """The block count and the main widths: a checkpoint's header must agree before the model is built."""
        dim = config["num_attention_heads"] * config["attention_head_dim"]
        audio_dim = config["audio_num_attention_heads"] * config["audio_attention_head_dim"]
        rows, audio_rows = (9 if config[flag] else 6 for flag in ("cross_attn_mod", "audio_cross_attn_mod"))
        return Layout(
            blocks={"transformer_blocks": ("num_layers", config["num_layers"])},
            shapes={
                "proj_in.weight": (dim, config["in_channels"]),
                "audio_proj_in.weight": (audio_dim, config["audio_in_channels"]),
                "time_embed.linear.weight": (rows * dim, dim),
                "audio_time_embed.linear.weight": (audio_rows * audio_dim, audio_dim),
                "transformer_blocks.0.attn2.to_k.weight": (dim, config["cross_attention_dim"]),
                "transformer_blocks.0.audio_attn2.to_k.weight": (audio_dim, config["audio_cross_attention_dim"]),
            },
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        audio_hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        audio_encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        audio_timestep: torch.Tensor | None = None,
        sigma: torch.Tensor | None = None,
        audio_sigma: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        audio_encoder_attention_mask: torch.Tensor | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: float = 24.0,
        audio_num_frames: int | None = None,
        video_coords: torch.Tensor | None = None,
        audio_coords: torch.Tensor | None = None,
        isolate_modalities: bool = False,
        spatio_temporal_guidance_blocks: list[int] | None = None,
        perturbation_mask: torch.Tensor | None = None,
        use_cross_timestep: bool = False,
        attention_kwargs: dict[str, Any] | None = None,
        video_self_attention_mask: torch.Tensor | None = None,
        video_keyframes_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> AudioVisualModelOutput | tuple[torch.Tensor, torch.Tensor]:
        """Predict the velocity of both streams.

        hidden_states (B, S, in_channels): video tokens in (frame, height, width) raster order.
        audio_hidden_states (B, Sa, audio_in_channels).
        encoder_hidden_states / audio_encoder_hidden_states (B, L, caption_channels), or with
            use_prompt_embeddings=False already at (B, L, cross_attention_dim) / (B, L, audio_cross_attention_dim).
        timestep (B,) or per video token (B, S), already scaled by timestep_scale_multiplier; audio_timestep
            (B,) or (B, Sa) defaults to timestep.
        sigma (B,): the noise level, scaled like timestep; drives the prompt AdaLN (cross_attn_mod models need it)
            and, with use_cross_timestep, the other stream's audio<->video modulation. audio_sigma defaults to sigma.
        encoder_attention_mask / audio_encoder_attention_mask (B, L): 1 for text tokens to attend, 0 to mask.
        num_frames, height, width (latent sizes), fps and audio_num_frames give the positions, unless
            video_coords (B, 3, S, 2) and audio_coords (B, 1, Sa, 2) do.
        isolate_modalities: skip the audio<->video attentions in every block (modality guidance).
        spatio_temporal_guidance_blocks: indices of the blocks whose video and audio self-attentions STG perturbs;
            only models built with perturbed_attn perturb anything, and indices past the last block are ignored.
        perturbation_mask (B,) or (B, 1, 1): per sample, 0 perturbs (the self-attention outputs its values),
            1 leaves it, values between blend; without it every sample is perturbed.
        use_cross_timestep: modulate video's audio<->video attentions from audio_sigma and audio's from sigma
            (LTX-2.3) instead of from each stream's own timestep (LTX-2.0).
        attention_kwargs: None, {} or {"scale": 1.0}; ltx2 has no attention processors, and a LoRA's strength
            is set with the pipeline's set_adapters(names, adapter_weights), so anything else raises.
        video_self_attention_mask (B, S, S): multiplicative, in [0, 1], on the video self-attention of every block
            (row = query token, column = key token), added to the logits as (1 - mask) * -10000 in the input's
            dtype: 1 attends, 0 masks, and a fraction m scales a weight by exp(-10000 (1 - m)), so anything below
            ~0.999 is all but masked (0.42.1's rule; Lightricks' ltx-core adds log(m), equal only at 0 and 1).
            Audio is never masked; an STG-perturbed sample's self-attention outputs its values, mask or not.
        video_keyframes_mask (B, S, 1): tokens where it is > 0 get keyframes_abs_pos_embedding added after
            proj_in; ignored unless the model has use_keyframes_abs_pos_embedding.
        """
        config = self.config
        audio_timestep = timestep if audio_timestep is None else audio_timestep
        audio_sigma = sigma if audio_sigma is None else audio_sigma
        video_coords, audio_coords = self.token_coordinates(
            hidden_states, audio_hidden_states, encoder_hidden_states, audio_encoder_hidden_states, timestep,
            audio_timestep, num_frames, height, width, fps, audio_num_frames, video_coords, audio_coords
        )  # fmt: skip
        self._check_guidance_inputs(
            hidden_states.shape[:2], sigma, audio_sigma, use_cross_timestep, perturbation_mask,
            video_self_attention_mask, video_keyframes_mask, attention_kwargs
        )  # fmt: skip
        video_rope, video_cross_rope, audio_rope, audio_cross_rope = (
            self.arithmetic.rope(tables, hidden_states.dtype)
            for tables in self.rotary_tables(video_coords, audio_coords)
        )

        video = self.proj_in(hidden_states)
        if config.use_keyframes_abs_pos_embedding and video_keyframes_mask is not None:
            video = video + (video_keyframes_mask > 0).to(video.dtype) * self.keyframes_abs_pos_embedding
        audio = self.audio_proj_in(audio_hidden_states)
        gate_ratio = config.cross_attn_timestep_scale_multiplier / config.timestep_scale_multiplier
        video_cross_t, audio_cross_t = (audio_sigma, sigma) if use_cross_timestep else (timestep, audio_timestep)
        video_embedders, audio_embedders = self.embedders()
        video_cond, video_embedded = video_embedders.condition(
            timestep, video_cross_t, gate_ratio, sigma, video.dtype, encoder_hidden_states,
            _additive_mask(encoder_attention_mask, video.dtype),
            additive_self_mask(video_self_attention_mask, video.dtype), (video_rope, video_cross_rope)
        )  # fmt: skip
        audio_cond, audio_embedded = audio_embedders.condition(
            audio_timestep, audio_cross_t, gate_ratio, audio_sigma, audio.dtype, audio_encoder_hidden_states,
            _additive_mask(audio_encoder_attention_mask, audio.dtype), None, (audio_rope, audio_cross_rope)
        )  # fmt: skip

        stg_blocks = set(spatio_temporal_guidance_blocks or ()) if config.perturbed_attn else set()
        perturbation = _perturbation(perturbation_mask, video) if stg_blocks else None
        for index, block in enumerate(self.transformer_blocks):
            block_perturbation = perturbation if index in stg_blocks else None
            video, audio = block(video, audio, video_cond, audio_cond, not isolate_modalities, block_perturbation)

        video_out = self._output(video, video_embedded, self.scale_shift_table, self.norm_out, self.proj_out)
        audio_out = self._output(
            audio, audio_embedded, self.audio_scale_shift_table, self.audio_norm_out, self.audio_proj_out
        )
        if not return_dict:
            return video_out, audio_out
        return AudioVisualModelOutput(sample=video_out, audio_sample=audio_out)

    def embedders(self) -> tuple[StreamEmbedders, StreamEmbedders]:
        """The video and the audio stream's top-level conditioning modules."""
        return (
            StreamEmbedders(
                self.time_embed,
                self.av_cross_attn_video_scale_shift,
                self.av_cross_attn_video_a2v_gate,
                self.prompt_adaln,
                self.caption_projection,
            ),
            StreamEmbedders(
                self.audio_time_embed,
                self.av_cross_attn_audio_scale_shift,
                self.av_cross_attn_audio_v2a_gate,
                self.audio_prompt_adaln,
                self.audio_caption_projection,
            ),
        )

    def enable_parallelism(self, *, config: ContextParallelConfig) -> None:
        """Context parallelism, as in diffusers: the video and audio tokens are shared by `config.ulysses_degree`
        ranks (Ulysses, see ltx2.transforms.context_parallel). Call on every rank, after
        torch.distributed.init_process_group."""
        from ..transforms.context_parallel import apply_context_parallel

        apply_context_parallel(self, config)

    def _output(
        self, x: torch.Tensor, embedded: torch.Tensor, table: torch.Tensor, norm: nn.Module, proj: nn.Linear
    ) -> torch.Tensor:
        """Final AdaLN from the timestep embedding (a learned shift and scale around it), then the projection."""
        shift, scale = (table + embedded.unsqueeze(2)).unbind(dim=2)
        return proj(self.arithmetic.modulate(norm(x), shift, scale))

    def rotary_tables(self, video_coords: torch.Tensor, audio_coords: torch.Tensor) -> tuple[Rope, Rope, Rope, Rope]:
        """Self-attention RoPE for each stream, and the time-only RoPE both streams use across modalities."""
        config = self.config
        dim = config.num_attention_heads * config.attention_head_dim
        audio_dim = config.audio_num_attention_heads * config.audio_attention_head_dim
        cross_extent = max(config.pos_embed_max_pos, config.audio_pos_embed_max_pos)

        def tables(coords: torch.Tensor, extents: tuple[float, ...], width: int, heads: int) -> Rope:
            return rope_tables(
                position_fractions(coords, extents),
                width,
                heads,
                config.rope_theta,
                config.rope_type,
                config.rope_double_precision,
            )

        video_extents = (config.pos_embed_max_pos, config.base_height, config.base_width)
        return (
            tables(video_coords, video_extents, dim, config.num_attention_heads),
            tables(video_coords[:, :1], (cross_extent,), config.audio_cross_attention_dim, config.num_attention_heads),
            tables(audio_coords, (config.audio_pos_embed_max_pos,), audio_dim, config.audio_num_attention_heads),
            tables(
                audio_coords[:, :1], (cross_extent,), config.audio_cross_attention_dim, config.audio_num_attention_heads
            ),
        )

    def token_coordinates(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        audio_text: torch.Tensor,
        timestep: torch.Tensor,
        audio_timestep: torch.Tensor,
        num_frames: int | None,
        height: int | None,
        width: int | None,
        fps: float,
        audio_num_frames: int | None,
        video_coords: torch.Tensor | None,
        audio_coords: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate the stream inputs' shapes up front and return the video and audio coordinates to use (a
        context-parallel transform calls this on the whole inputs before sharding them)."""
        config = self.config
        projected = config.use_prompt_embeddings
        for name, tensor, channels in (
            ("hidden_states", video, config.in_channels),
            ("audio_hidden_states", audio, config.audio_in_channels),
            ("encoder_hidden_states", text, config.caption_channels if projected else config.cross_attention_dim),
            (
                "audio_encoder_hidden_states",
                audio_text,
                config.caption_channels if projected else config.audio_cross_attention_dim,
            ),
        ):
            if tensor.ndim != 3 or tensor.shape[-1] != channels:
                raise ValueError(f"{name} must have shape (batch, tokens, {channels}), got {tuple(tensor.shape)}")
        batch = video.shape[0]
        for name, steps, tokens in (
            ("timestep", timestep, video.shape[1]),
            ("audio_timestep", audio_timestep, audio.shape[1]),
        ):
            if steps.shape not in ((batch,), (batch, tokens)):
                raise ValueError(f"{name} must have shape ({batch},) or ({batch}, {tokens}), got {tuple(steps.shape)}")
        tokens = video.shape[1]
        if video_coords is None:
            if None in (num_frames, height, width):
                raise ValueError("num_frames, height and width are required when video_coords is not given")
            if num_frames * height * width != tokens:
                raise ValueError(
                    f"hidden_states has {tokens} tokens but num_frames x height x width = "
                    f"{num_frames} x {height} x {width} = {num_frames * height * width}"
                )
            video_coords = video_positions(
                batch,
                num_frames,
                height,
                width,
                tuple(config.vae_scale_factors),
                config.causal_offset,
                fps,
                video.device,
            )
        if audio_coords is None:
            if audio_num_frames is None:
                audio_num_frames = audio.shape[1]
            if audio_num_frames != audio.shape[1]:
                raise ValueError(
                    f"audio_hidden_states has {audio.shape[1]} tokens but audio_num_frames = {audio_num_frames}"
                )
            audio_coords = audio_positions(
                batch,
                audio_num_frames,
                config.audio_scale_factor,
                config.causal_offset,
                config.audio_hop_length,
                config.audio_sampling_rate,
                audio.device,
            )
        return video_coords, audio_coords

    def _check_guidance_inputs(
        self,
        video_shape: torch.Size,
        sigma: torch.Tensor | None,
        audio_sigma: torch.Tensor | None,
        use_cross_timestep: bool,
        perturbation_mask: torch.Tensor | None,
        video_self_attention_mask: torch.Tensor | None,
        video_keyframes_mask: torch.Tensor | None,
        attention_kwargs: dict[str, Any] | None,
    ) -> None:
        """Validate the arguments of the LTX-2.3 features and of the guidance passes."""
        batch, tokens = video_shape
        if sigma is None and (use_cross_timestep or self.prompt_adaln is not None):
            reason = "use_cross_timestep=True" if use_cross_timestep else "a model with cross_attn_mod (prompt AdaLN)"
            raise ValueError(f"sigma is required with {reason}: pass the ({batch},) timestep (scaled like timestep)")
        for name, value, shapes in (
            ("sigma", sigma, [(batch,)]),
            ("audio_sigma", audio_sigma, [(batch,)]),
            ("perturbation_mask", perturbation_mask, [(batch,), (batch, 1, 1)]),
            ("video_self_attention_mask", video_self_attention_mask, [(batch, tokens, tokens)]),
            ("video_keyframes_mask", video_keyframes_mask, [(batch, tokens, 1)]),
        ):
            if value is not None and tuple(value.shape) not in shapes:
                expected = " or ".join(str(shape) for shape in shapes)
                raise ValueError(f"{name} must have shape {expected}, got {tuple(value.shape)}")
        if attention_kwargs and attention_kwargs != {"scale": 1.0}:
            raise ValueError(
                f"attention_kwargs={attention_kwargs!r}: ltx2 has no attention processors to pass them to; "
                "set a LoRA's strength with the pipeline's set_adapters(names, adapter_weights=...)"
            )


def _additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, L) keep-mask (1 = attend) -> (B, 1, 1, L) additive bias, -10000 on masked keys."""
    if mask is None:
        return None
    if mask.ndim == 2:
        mask = (1 - mask.to(dtype)) * -10000.0
        return mask[:, None, None, :]
    return mask.to(dtype).view(mask.shape[0], 1, 1, -1)


def _perturbation(mask: torch.Tensor | None, video: torch.Tensor) -> Perturbation:
    """STG weights per sample from perturbation_mask ((B,) or (B, 1, 1)); none given perturbs every sample."""
    batch = video.shape[0]
    weight = torch.zeros(batch, device=video.device) if mask is None else mask
    weight = weight.reshape(batch, 1, 1)
    return Perturbation(weight, values_only=bool((weight == 0).all()))


def _check_widths(
    rope_type: str,
    heads: int,
    audio_heads: int,
    dim: int,
    audio_dim: int,
    cross_attention_dim: int,
    audio_cross_attention_dim: int,
    context_at_stream_width: bool,
) -> None:
    """The widths the reference needs to agree for a forward to run, checked when the model is built."""
    if rope_type not in ("split", "interleaved"):
        raise ValueError(f"rope_type must be 'split' or 'interleaved', got {rope_type!r}")
    if heads != audio_heads:
        raise ValueError(
            f"num_attention_heads ({heads}) must equal audio_num_attention_heads ({audio_heads}): "
            "the audio<->video RoPE is laid out per head"
        )
    if audio_cross_attention_dim != audio_dim:
        raise ValueError(
            f"audio_cross_attention_dim ({audio_cross_attention_dim}) must equal audio_num_attention_heads * "
            f"audio_attention_head_dim ({audio_dim}): the audio<->video attentions and their RoPE work at that width"
        )
    if context_at_stream_width and cross_attention_dim != dim:
        raise ValueError(
            f"cross_attention_dim ({cross_attention_dim}) must equal num_attention_heads * attention_head_dim "
            f"({dim}) when use_prompt_embeddings, cross_attn_mod or audio_cross_attn_mod is on: the text context "
            "is projected or modulated at the video stream's width"
        )


def _require_supported(**settings: tuple[Any, Any]) -> None:
    for name, (value, supported) in settings.items():
        if value != supported:
            raise ValueError(f"{name}={value!r} is not supported by LTX2VideoTransformer3DModel (only {supported!r})")
