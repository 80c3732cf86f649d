"""The LTX-2 audio-video diffusion transformer.

Two token streams, video (B, S, 4096) and audio (B, Sa, 2048), run through 48 blocks side by side. In each
block each stream attends to itself and to its text context, then the streams attend to each other
(audio -> video and video -> audio), then each applies its feed-forward. Everything is modulated by
AdaLN-single from the diffusion timestep; the network predicts the flow-matching velocity of both streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from ..loading import PretrainedModel
from .layers import AdaLNSingle, Attention, FeedForward, RMSNorm, Rope, TextProjection, modulation, rope_tables

if TYPE_CHECKING:
    from ..parallel import ContextParallelConfig


class Modulation(NamedTuple):
    shift: torch.Tensor
    scale: torch.Tensor
    gate: torch.Tensor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, 1 + self.scale)


class CrossModulation(NamedTuple):
    """Per-stream modulation of the audio<->video attentions: the input when this stream is the query of a2v
    (or its key/value source), the input for v2a, and this stream's gate on the attention it receives."""

    a2v_scale: torch.Tensor
    a2v_shift: torch.Tensor
    v2a_scale: torch.Tensor
    v2a_shift: torch.Tensor
    gate: torch.Tensor

    def a2v(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.a2v_shift, x, 1 + self.a2v_scale)

    def v2a(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.v2a_shift, x, 1 + self.v2a_scale)


class StreamConditioning(NamedTuple):
    """What the top level hands every block for one stream."""

    timestep: torch.Tensor  # (B, T, 6 * dim): AdaLN for self-attention and feed-forward
    cross_scale_shift: torch.Tensor  # (B, T, 4 * dim): AdaLN for the audio<->video attentions
    cross_gate: torch.Tensor  # (B, T, dim)
    context: torch.Tensor  # (B, L, dim): projected text
    context_mask: torch.Tensor | None  # (B, 1, 1, L) additive
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
    def build(cls, dim: int, heads: int, head_dim: int, context_dim: int, eps: float) -> StreamModules:
        return cls(
            RMSNorm(dim, eps, elementwise_affine=False),
            Attention(dim, heads, head_dim),
            RMSNorm(dim, eps, elementwise_affine=False),
            Attention(dim, heads, head_dim, kv_dim=context_dim),
            RMSNorm(dim, eps, elementwise_affine=False),
            FeedForward(dim),
        )

    def attend(self, x: torch.Tensor, table: torch.Tensor, cond: StreamConditioning) -> tuple[torch.Tensor, Modulation]:
        """Self-attention then text cross-attention; returns the stream and the feed-forward's modulation."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = modulation(table, cond.timestep)
        attn_in = Modulation(shift_msa, scale_msa, gate_msa).apply(self.norm1(x))
        x = torch.addcmul(x, self.attn1(attn_in, query_rope=cond.self_rope), gate_msa)
        x = x + self.attn2(self.norm2(x), context=cond.context, mask=cond.context_mask)
        return x, Modulation(shift_mlp, scale_mlp, gate_mlp)

    def feed_forward(self, x: torch.Tensor, mlp: Modulation) -> torch.Tensor:
        return torch.addcmul(x, self.ff(mlp.apply(self.norm3(x))), mlp.gate)


class LTX2VideoTransformerBlock(nn.Module):
    """One dual-stream block. Audio modules carry an `audio_` prefix, as in the checkpoint layout."""

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
    ):
        super().__init__()
        self.norm1, self.attn1, self.norm2, self.attn2, self.norm3, self.ff = StreamModules.build(
            dim, heads, head_dim, context_dim, eps
        )
        self.audio_norm1, self.audio_attn1, self.audio_norm2, self.audio_attn2, self.audio_norm3, self.audio_ff = (
            StreamModules.build(audio_dim, audio_heads, audio_head_dim, audio_context_dim, eps)
        )
        # Both audio<->video attentions work at the audio stream's width and head layout.
        self.audio_to_video_norm = RMSNorm(dim, eps, elementwise_affine=False)
        self.audio_to_video_attn = Attention(dim, audio_heads, audio_head_dim, kv_dim=audio_dim)
        self.video_to_audio_norm = RMSNorm(audio_dim, eps, elementwise_affine=False)
        self.video_to_audio_attn = Attention(audio_dim, audio_heads, audio_head_dim, kv_dim=dim)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)
        self.audio_scale_shift_table = nn.Parameter(torch.randn(6, audio_dim) / audio_dim**0.5)
        self.video_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.randn(5, dim))
        self.audio_a2v_cross_attn_scale_shift_table = nn.Parameter(torch.randn(5, audio_dim))

    def forward(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        video_cond: StreamConditioning,
        audio_cond: StreamConditioning,
        cross_modal: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        video_stream = StreamModules(self.norm1, self.attn1, self.norm2, self.attn2, self.norm3, self.ff)
        audio_stream = StreamModules(
            self.audio_norm1, self.audio_attn1, self.audio_norm2, self.audio_attn2, self.audio_norm3, self.audio_ff
        )
        video, video_mlp = video_stream.attend(video, self.scale_shift_table, video_cond)
        audio, audio_mlp = audio_stream.attend(audio, self.audio_scale_shift_table, audio_cond)

        if cross_modal:
            video_mod = self._cross_modulation(self.video_a2v_cross_attn_scale_shift_table, video_cond)
            audio_mod = self._cross_modulation(self.audio_a2v_cross_attn_scale_shift_table, audio_cond)
            # Both directions read the streams as they were before either residual is added.
            video_normed, audio_normed = self.audio_to_video_norm(video), self.video_to_audio_norm(audio)
            audio_to_video = self.audio_to_video_attn(
                video_mod.a2v(video_normed),
                context=audio_mod.a2v(audio_normed),
                query_rope=video_cond.cross_rope,
                key_rope=audio_cond.cross_rope,
            )
            video_to_audio = self.video_to_audio_attn(
                audio_mod.v2a(audio_normed),
                context=video_mod.v2a(video_normed),
                query_rope=audio_cond.cross_rope,
                key_rope=video_cond.cross_rope,
            )
            video = torch.addcmul(video, video_mod.gate, audio_to_video)
            audio = torch.addcmul(audio, audio_mod.gate, video_to_audio)

        return video_stream.feed_forward(video, video_mlp), audio_stream.feed_forward(audio, audio_mlp)

    @staticmethod
    def _cross_modulation(table: torch.Tensor, cond: StreamConditioning) -> CrossModulation:
        a2v_scale, a2v_shift, v2a_scale, v2a_shift = modulation(table[:4], cond.cross_scale_shift)
        (gate,) = modulation(table[4:], cond.cross_gate)
        return CrossModulation(a2v_scale, a2v_shift, v2a_scale, v2a_shift, gate)


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
    """The LTX-2 audio-video DiT. Defaults are the 19B model's configuration."""

    single_file_component = "transformer"
    _repeated_blocks = ("LTX2VideoTransformerBlock",)
    _skip_layerwise_casting_patterns = ("norm",)

    neutral_config = {
        "gated_attn": False,
        "cross_attn_mod": False,
        "audio_gated_attn": False,
        "audio_cross_attn_mod": False,
        "use_prompt_embeddings": True,
        "perturbed_attn": False,
        "ff_bias": True,
        "audio_ff_bias": True,
        "use_prompt_adaln_single": True,
        "use_keyframes_abs_pos_embedding": False,
    }

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
        if rope_type not in ("split", "interleaved"):
            raise ValueError(f"rope_type must be 'split' or 'interleaved', got {rope_type!r}")
        if num_attention_heads != audio_num_attention_heads:
            raise ValueError(
                f"num_attention_heads ({num_attention_heads}) must equal audio_num_attention_heads "
                f"({audio_num_attention_heads}): the audio<->video RoPE is laid out per head"
            )
        dim = num_attention_heads * attention_head_dim
        audio_dim = audio_num_attention_heads * audio_attention_head_dim
        self.proj_in = nn.Linear(in_channels, dim)
        self.audio_proj_in = nn.Linear(audio_in_channels, audio_dim)
        self.caption_projection = TextProjection(caption_channels, dim)
        self.audio_caption_projection = TextProjection(caption_channels, audio_dim)

        self.time_embed = AdaLNSingle(dim, 6)
        self.audio_time_embed = AdaLNSingle(audio_dim, 6)
        self.av_cross_attn_video_scale_shift = AdaLNSingle(dim, 4)
        self.av_cross_attn_audio_scale_shift = AdaLNSingle(audio_dim, 4)
        self.av_cross_attn_video_a2v_gate = AdaLNSingle(dim, 1)
        self.av_cross_attn_audio_v2a_gate = AdaLNSingle(audio_dim, 1)

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
            )
            for _ in range(num_layers)
        )

        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.audio_scale_shift_table = nn.Parameter(torch.randn(2, audio_dim) / audio_dim**0.5)
        self.norm_out = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_channels or in_channels)
        self.audio_norm_out = nn.LayerNorm(audio_dim, eps=1e-6, elementwise_affine=False)
        self.audio_proj_out = nn.Linear(audio_dim, audio_out_channels or audio_in_channels)

    def forward(
        self,
        hidden_states: torch.Tensor,
        audio_hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        audio_encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        audio_timestep: torch.Tensor | None = None,
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
        return_dict: bool = True,
    ) -> AudioVisualModelOutput | tuple[torch.Tensor, torch.Tensor]:
        """Predict the velocity of both streams.

        hidden_states (B, S, in_channels) video tokens in (frame, height, width) raster order;
        audio_hidden_states (B, Sa, audio_in_channels); encoder_hidden_states / audio_encoder_hidden_states
        (B, L, caption_channels); timestep (B,) or per video token (B, S), already scaled by 1000;
        audio_timestep (B,) defaults to timestep; masks (B, L) with 1 for valid text tokens. Positions come
        from num_frames/height/width (latent sizes)/fps and audio_num_frames, or from video_coords
        (B, 3, S, 2) and audio_coords (B, 1, Sa, 2). `isolate_modalities` skips the audio<->video attention.
        """
        config = self.config
        audio_timestep = timestep if audio_timestep is None else audio_timestep
        video_coords, audio_coords = self._check_inputs(
            hidden_states,
            audio_hidden_states,
            encoder_hidden_states,
            audio_encoder_hidden_states,
            timestep,
            num_frames,
            height,
            width,
            fps,
            audio_num_frames,
            video_coords,
            audio_coords,
        )
        video_rope, video_cross_rope, audio_rope, audio_cross_rope = self.rotary_tables(video_coords, audio_coords)

        video = self.proj_in(hidden_states)
        audio = self.audio_proj_in(audio_hidden_states)
        batch = video.shape[0]
        gate_ratio = config.cross_attn_timestep_scale_multiplier / config.timestep_scale_multiplier

        def embed(adaln: AdaLNSingle, timesteps: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
            # (B,) or (B, T) timesteps -> (B, 1 or T, n * dim) modulation and (B, 1 or T, dim) embedding
            values, embedded = adaln(timesteps.flatten(), dtype)
            return values.view(batch, -1, values.shape[-1]), embedded.view(batch, -1, embedded.shape[-1])

        video_timestep, video_embedded = embed(self.time_embed, timestep, video.dtype)
        audio_timestep_mod, audio_embedded = embed(self.audio_time_embed, audio_timestep, audio.dtype)
        video_cond = StreamConditioning(
            timestep=video_timestep,
            cross_scale_shift=embed(self.av_cross_attn_video_scale_shift, timestep, video.dtype)[0],
            cross_gate=embed(self.av_cross_attn_video_a2v_gate, timestep * gate_ratio, video.dtype)[0],
            context=self.caption_projection(encoder_hidden_states),
            context_mask=_additive_mask(encoder_attention_mask, video.dtype),
            self_rope=video_rope,
            cross_rope=video_cross_rope,
        )
        audio_cond = StreamConditioning(
            timestep=audio_timestep_mod,
            cross_scale_shift=embed(self.av_cross_attn_audio_scale_shift, audio_timestep, audio.dtype)[0],
            cross_gate=embed(self.av_cross_attn_audio_v2a_gate, audio_timestep * gate_ratio, audio.dtype)[0],
            context=self.audio_caption_projection(audio_encoder_hidden_states),
            context_mask=_additive_mask(audio_encoder_attention_mask, audio.dtype),
            self_rope=audio_rope,
            cross_rope=audio_cross_rope,
        )

        for block in self.transformer_blocks:
            video, audio = block(video, audio, video_cond, audio_cond, cross_modal=not isolate_modalities)

        video_out = self._output(video, video_embedded, self.scale_shift_table, self.norm_out, self.proj_out)
        audio_out = self._output(
            audio, audio_embedded, self.audio_scale_shift_table, self.audio_norm_out, self.audio_proj_out
        )
        if not return_dict:
            return video_out, audio_out
        return AudioVisualModelOutput(sample=video_out, audio_sample=audio_out)

    def enable_parallelism(self, *, config: ContextParallelConfig) -> None:
        """Context parallelism, as in diffusers: the video and audio tokens are shared by `config.ulysses_degree`
        ranks (Ulysses, see ltx2.parallel). Call on every rank, after torch.distributed.init_process_group."""
        from ..parallel import apply_context_parallel

        apply_context_parallel(self, config)

    @staticmethod
    def _output(
        x: torch.Tensor, embedded: torch.Tensor, table: torch.Tensor, norm: nn.Module, proj: nn.Linear
    ) -> torch.Tensor:
        """Final AdaLN from the timestep embedding (a learned shift and scale around it), then the projection."""
        shift, scale = (table + embedded.unsqueeze(2)).unbind(dim=2)
        return proj(torch.addcmul(shift, norm(x), 1 + scale))

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

    def _check_inputs(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        audio_text: torch.Tensor,
        timestep: torch.Tensor,
        num_frames: int | None,
        height: int | None,
        width: int | None,
        fps: float,
        audio_num_frames: int | None,
        video_coords: torch.Tensor | None,
        audio_coords: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate shapes up front and return the video and audio coordinates to use."""
        config = self.config
        for name, tensor, channels in (
            ("hidden_states", video, config.in_channels),
            ("audio_hidden_states", audio, config.audio_in_channels),
            ("encoder_hidden_states", text, config.caption_channels),
            ("audio_encoder_hidden_states", audio_text, config.caption_channels),
        ):
            if tensor.ndim != 3 or tensor.shape[-1] != channels:
                raise ValueError(f"{name} must have shape (batch, tokens, {channels}), got {tuple(tensor.shape)}")
        batch, tokens = video.shape[:2]
        if timestep.shape not in ((batch,), (batch, tokens)):
            raise ValueError(f"timestep must have shape ({batch},) or ({batch}, {tokens}), got {tuple(timestep.shape)}")
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


def _additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, L) keep-mask (1 = attend) -> (B, 1, 1, L) additive bias, -10000 on masked keys."""
    if mask is None:
        return None
    if mask.ndim == 2:
        mask = (1 - mask.to(dtype)) * -10000.0
        return mask[:, None, None, :]
    return mask.to(dtype).view(mask.shape[0], 1, 1, -1)


def _require_supported(**settings: tuple[Any, Any]) -> None:
    for name, (value, supported) in settings.items():
        if value != supported:
            raise ValueError(f"{name}={value!r} is not supported by LTX2VideoTransformer3DModel (only {supported!r})")
