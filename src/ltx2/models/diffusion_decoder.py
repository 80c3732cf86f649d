"""The LTX-2.5 diffusion video decoder: video latents (B, 128, F, H, W) -> pixels (B, 3, 8(F-1)+1, 32H, 32W).

Four deterministic stages of neighborhood-attention blocks, each followed by a pixel-shuffle upsampler, turn the
latents into a context volume at the stage-5 token grid. Stage 5 denoises patchified pixels from Gaussian noise,
conditioned on that context through AdaLN scale/shift; LTX-2.5 ships it as one x0 step, so one pass over pure
noise is the decode. Every tensor between the input and output is channels-last, (B, T, H, W, C).

Neighborhood attention lets each token attend to a fixed kernel-sized window around it, shifted inward at the
grid's borders so that it always holds the full kernel (NATTEN's definition). It runs on ltx2's one `attention()`,
block by block with a small mask, so no score matrix larger than one block's ever exists.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel
from ..versions import LTX_2_5
from .layers import DecoderOutput, RMSNorm, TimestepEmbedding, attention, randn
from .video_vae import _blend

Grid = tuple[int, int, int]

# Tokens per SwiGLU pass: its three hidden-width intermediates for a whole video would dominate decode memory.
MLP_TOKENS_PER_PASS = 16384
# Query block of the neighborhood attention, (frames, rows, columns): small enough that the key box around it
# (block + kernel - 1 per axis) holds few keys outside the windows, large enough to keep the kernels busy.
QUERY_BLOCK = (1, 4, 8)
# Key elements gathered per attention call (64 MiB in float32), which bounds its working memory.
KEY_ELEMENTS_PER_CALL = 1 << 24


# -- neighborhood attention --------------------------------------------------------------------------------


def window_starts(length: int, kernel: int, device: torch.device) -> torch.Tensor:
    """First key of each query's window along an axis: centred, shifted inward at the borders."""
    return (torch.arange(length, device=device) - kernel // 2).clamp(0, length - kernel)


def axis_blocks(
    length: int, kernel: int, block: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query blocks along an axis and the key box around each.

    Blocks hold min(block, length) queries (the last one shifted back to fit); a box holds the
    min(block + kernel - 1, length) keys that contain all of its block's windows. Returns the first query of each
    block (N,), the first key of each box (N,) and which box keys each query sees (N, block, box).
    """
    block, box = min(block, length), min(block + kernel - 1, length)
    query_starts = torch.arange(0, length, block, device=device).clamp(max=length - block)
    starts = window_starts(length, kernel, device)
    box_starts = starts[query_starts].clamp(max=length - box)
    first_visible = starts[query_starts[:, None] + torch.arange(block, device=device)][:, :, None]
    keys = (box_starts[:, None] + torch.arange(box, device=device))[:, None, :]
    return query_starts, box_starts, (keys >= first_visible) & (keys < first_visible + kernel)


def neighborhood_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, kernel: Grid, out: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, T, H, W, heads, D) queries, keys and values -> (B, T, H, W, heads, D) attention over each query's window.

    Queries go in blocks of QUERY_BLOCK; each block attends to the box of keys around it, masked to each query's
    own window. Frame and row blocks are a loop; the column blocks of a row are the `heads` axis of one attention
    call (batch and heads are its batch), which lays every gathered box out contiguously. `out` may be `query`
    itself (each row of queries is read before its results are written), which saves a query-sized buffer.
    """
    batch, *grid, heads, dim = query.shape
    device = query.device
    (t_queries, t_boxes, t_visible), (h_queries, h_boxes, h_visible), (w_queries, w_boxes, w_visible) = (
        axis_blocks(length, size, block, device) for length, size, block in zip(grid, kernel, QUERY_BLOCK)
    )
    (block_t, box_t), (block_h, box_h), (block_w, box_w) = (v.shape[1:] for v in (t_visible, h_visible, w_visible))
    w_query_index = w_queries[:, None] + torch.arange(block_w, device=device)  # (N, block_w)
    w_key_index = w_boxes[:, None] + torch.arange(box_w, device=device)  # (N, box_w)
    columns_per_call = max(1, KEY_ELEMENTS_PER_CALL // (box_t * box_h * box_w * batch * heads * dim))

    out = torch.empty_like(query) if out is None else out
    # (B, T, H, W, heads, D) -> (B * heads, W, T, H, D), a block's tokens ordered (w, t, h). Keys and values are
    # read by several blocks, so they are rearranged once (one at a time: a caller's temporary goes at once);
    # each query once, row by row.
    key = key.permute(0, 4, 3, 1, 2, 5).reshape(batch * heads, grid[2], *grid[:2], dim)
    value = value.permute(0, 4, 3, 1, 2, 5).reshape(batch * heads, grid[2], *grid[:2], dim)
    # Interior blocks share their window pattern: build each (frame pattern, row pattern) mask once.
    _, t_pattern = torch.unique(t_visible.flatten(1), dim=0, return_inverse=True)
    _, h_pattern = torch.unique(h_visible.flatten(1), dim=0, return_inverse=True)
    masks: dict[tuple[int, int], torch.Tensor] = {}

    def window_mask(t_block: int, h_block: int) -> torch.Tensor:
        """Additive (1, N, queries, keys) mask of every column block of this frame and row block."""
        pattern = (int(t_pattern[t_block]), int(h_pattern[h_block]))
        if pattern not in masks:
            if masks and next(iter(masks))[0] != pattern[0]:
                masks.clear()  # frame blocks come in order: patterns of earlier frames are done
            visible = (
                w_visible[:, :, None, None, :, None, None]
                & t_visible[t_block][None, None, :, None, None, :, None]
                & h_visible[h_block][None, None, None, :, None, None, :]
            )  # (N, w, t, h, box_w, box_t, box_h)
            mask = torch.zeros(visible.shape, dtype=query.dtype, device=device).masked_fill_(~visible, -math.inf)
            masks[pattern] = mask.reshape(1, len(w_visible), block_w * block_t * block_h, -1)
        return masks[pattern]

    # The last block of an axis is shifted back to fit: its first `overlap` queries are the previous block's last.
    overlap = int(w_queries[-2] + block_w - w_queries[-1]) if len(w_queries) > 1 else 0
    for t_block, t0, t_box, t_skip in loop_order(t_queries, t_boxes, block_t):
        for h_block, h0, h_box, h_skip in loop_order(h_queries, h_boxes, block_h):
            # Contiguous copies of these frames and rows, so that gathering column blocks copies whole (t, h, D).
            # (A copy even where a view would do: `out` may be `query`.)
            query_rows = query.new_empty(batch * heads, grid[2], block_t, block_h, dim)
            query_rows.view(batch, heads, grid[2], block_t, block_h, dim).copy_(
                query[:, t0 : t0 + block_t, h0 : h0 + block_h].permute(0, 4, 3, 1, 2, 5)
            )
            key_rows, value_rows = (x[:, :, t_box : t_box + box_t, h_box : h_box + box_h].contiguous()
                                    for x in (key, value))
            mask = window_mask(t_block, h_block)
            for first in range(0, len(w_query_index), columns_per_call):
                columns = slice(first, first + columns_per_call)
                queries, keys = w_query_index[columns], w_key_index[columns]
                count = len(queries)
                # (B * heads, N, w, t, h, D) -> (B * heads, N, w * t * h, D)
                attended = attention(
                    query_rows.index_select(1, queries.flatten()).view(batch * heads, count, -1, dim),
                    key_rows.index_select(1, keys.flatten()).view(batch * heads, count, -1, dim),
                    value_rows.index_select(1, keys.flatten()).view(batch * heads, count, -1, dim),
                    mask[:, columns],
                ).view(batch * heads, count * block_w, block_t, block_h, dim)
                start = int(queries[0, 0])
                if first + count == len(w_query_index) and overlap:
                    attended = torch.cat([attended[:, :-block_w], attended[:, overlap - block_w :]], dim=1)
                    start += overlap if count == 1 else 0
                # (B * heads, w, t, h, D) -> (B, t, h, w, heads, D)
                attended = attended.view(batch, heads, -1, block_t, block_h, dim).permute(0, 3, 4, 2, 1, 5)
                columns = slice(start, start + attended.shape[3])
                out[:, t0 + t_skip : t0 + block_t, h0 + h_skip : h0 + block_h, columns] = attended[:, t_skip:, h_skip:]
    return out


def loop_order(query_starts: torch.Tensor, box_starts: torch.Tensor, block: int) -> list[tuple[int, int, int, int]]:
    """(block index, first query, first key, leading queries not to write) for the blocks of a looped axis.

    The shifted last block goes first and writes only its own queries, so that with `out` being `query` no
    block reads a query that another has overwritten."""
    blocks = list(zip(range(len(query_starts)), query_starts.tolist(), box_starts.tolist()))
    if len(blocks) == 1:
        return [(*blocks[0], 0)]
    last = blocks[-1]
    shared = blocks[-2][1] + block - last[1]
    return [(*last, shared)] + [(*entry, 0) for entry in blocks[:-1]]


def rotate_grid(x: torch.Tensor, axis_dims: Grid, base: float = 10000.0) -> torch.Tensor:
    """3-D RoPE on (B, T, H, W, heads, D): the head's channels split into (time, rows, columns) chunks, each
    rotated in interleaved pairs by its axis index, in float32. Only offsets within a window matter, so the
    positions are the grid's own indices."""
    rotated, offset = torch.empty_like(x), 0
    for axis, size in enumerate(axis_dims):
        length = x.shape[1 + axis]
        inverse = (1.0 / base ** (torch.arange(0, size, 2, dtype=torch.float64, device=x.device) / size)).float()
        angles = torch.arange(length, dtype=torch.float32, device=x.device)[:, None] * inverse  # (length, size / 2)
        shape = [1, 1, 1, 1, 1, size // 2]
        shape[1 + axis] = length
        cos, sin = angles.cos().view(shape), angles.sin().view(shape)
        even, odd = x[..., offset : offset + size].float().unflatten(-1, (-1, 2)).unbind(-1)
        pairs = rotated[..., offset : offset + size].unflatten(-1, (-1, 2))
        pairs[..., 0] = even * cos - odd * sin
        pairs[..., 1] = even * sin + odd * cos
        offset += size
    return rotated


def rope_axis_dims(head_dim: int) -> Grid:
    """About a quarter of the head to time and the rest shared by rows and columns, every chunk of whole pairs."""
    if head_dim % 8 != 0:
        raise ValueError(f"decoder_head_dim must be a multiple of 8, got {head_dim}")
    time = head_dim // 8 * 2
    space = (head_dim - time) // 2
    if space % 2:
        time -= 2
        space = (head_dim - time) // 2
    return time, space, space


# -- blocks --------------------------------------------------------------------------------------------------


class NeighborhoodAttention(nn.Module):
    """Multi-head attention of each token over its `kernel` window, per-head q/k RMSNorm and 3-D RoPE."""

    def __init__(self, dim: int, kernel: Grid, head_dim: int):
        super().__init__()
        self.heads = dim // head_dim
        self.kernel = tuple(kernel)
        self.axis_dims = rope_axis_dims(head_dim)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(head_dim)
        self.norm_k = RMSNorm(head_dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])  # key `to_out.0.*`, as in the diffusers layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heads = (*x.shape[:-1], self.heads, -1)  # (B, T, H, W, C) -> (B, T, H, W, heads, D)
        query = rotate_grid(self.norm_q(self.to_q(x).view(heads)), self.axis_dims)
        # Keys and values are passed as temporaries and the output overwrites the queries: at large grids these
        # (B, T, H, W, C) tensors are most of the memory.
        out = neighborhood_attention(
            query,
            rotate_grid(self.norm_k(self.to_k(x).view(heads)), self.axis_dims),
            self.to_v(x).view(heads),
            self.kernel,
            out=query,
        )
        return self.to_out[0](out.flatten(-2))


class SwiGLU(nn.Module):
    """w_down(silu(w_gate(x)) * w_up(x)), MLP_TOKENS_PER_PASS tokens at a time (it is per token)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = (int(dim * mlp_ratio) + 15) // 16 * 16
        self.w_up = nn.Linear(dim, hidden, bias=False)
        self.w_gate = nn.Linear(dim, hidden, bias=False)
        self.w_down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(x.shape[0], -1, x.shape[-1])
        out = torch.empty_like(tokens)
        for start in range(0, tokens.shape[1], MLP_TOKENS_PER_PASS):
            part = tokens[:, start : start + MLP_TOKENS_PER_PASS]
            out[:, start : start + MLP_TOKENS_PER_PASS] = self.w_down(F.silu(self.w_gate(part)) * self.w_up(part))
        return out.view(x.shape)


class NeighborhoodBlock(nn.Module):
    """Pre-norm neighborhood attention and SwiGLU, each added to the stream (stages 1-4)."""

    def __init__(self, dim: int, kernel: Grid, head_dim: int):
        super().__init__()
        self.norm1 = RMSNorm(dim)
        self.attn = NeighborhoodAttention(dim, kernel, head_dim)
        self.norm2 = RMSNorm(dim)
        self.mlp = SwiGLU(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DiffusionBlock(nn.Module):
    """Stage 5: the context added to the stream, then attention and SwiGLU on scale/shift-modulated norms.

    The shared modulation has seven chunks (scale, shift, gate for attention and MLP, and a context gate), as
    trained; the gates are folded into the following weights by the converter, so the residuals are ungated.
    """

    def __init__(self, dim: int, kernel: Grid, context_channels: int, head_dim: int):
        super().__init__()
        self.context_proj = nn.Linear(context_channels, dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(7, dim))
        self.norm1 = RMSNorm(dim)
        self.attn = NeighborhoodAttention(dim, kernel, head_dim)
        self.norm2 = RMSNorm(dim)
        self.mlp = SwiGLU(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, adaln: torch.Tensor) -> torch.Tensor:
        # (B, 7 * C) -> seven (B, 1, 1, 1, C)
        values = (self.scale_shift_table + adaln.unflatten(-1, (7, -1)))[:, :, None, None, None]
        scale_attn, shift_attn, _, scale_mlp, shift_mlp, _, _ = values.unbind(1)
        x = x + self.context_proj(context)
        x = x + self.attn(self.norm1(x) * (1 + scale_attn) + shift_attn)
        return x + self.mlp(self.norm2(x) * (1 + scale_mlp) + shift_mlp)


class SharedModulation(nn.Module):
    """The timestep embedding -> the seven stage-5 modulation vectors (B, 7 * C), shared by every block."""

    def __init__(self, embedding_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(embedding_dim, 7 * dim)

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        return self.proj(F.silu(embedded))


class PixelShuffleUpsampler(nn.Module):
    """Linear to prod(stride) * C / reduction channels, then depth-to-space on (T, H, W), channels-last.

    A temporal stride of 2 doubles the first latent frame too; that duplicate is dropped to keep the causal
    1 + 8k frame mapping, except in temporal tiles that do not start the video.
    """

    def __init__(self, channels: int, stride: Grid, reduction: int):
        super().__init__()
        self.stride = tuple(stride)
        self.out_channels = channels // reduction
        self.proj = nn.Linear(channels, math.prod(self.stride) * self.out_channels)

    def forward(self, x: torch.Tensor, drop_leading_frame: bool = True) -> torch.Tensor:
        batch, frames, height, width, _ = x.shape
        stride_t, stride_h, stride_w = self.stride
        x = self.proj(x).view(batch, frames, height, width, self.out_channels, stride_t, stride_h, stride_w)
        x = x.permute(0, 1, 5, 2, 6, 3, 7, 4)  # (B, T, st, H, sh, W, sw, C)
        x = x.reshape(batch, frames * stride_t, height * stride_h, width * stride_w, self.out_channels)
        return x[:, 1:] if stride_t == 2 and drop_leading_frame else x


def patchify(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F, H/p, W/p, C * p * p), channels ordered (c, column offset, row offset)."""
    batch, channels, frames, height, width = pixels.shape
    x = pixels.view(batch, channels, frames, height // patch, patch, width // patch, patch)
    return x.permute(0, 2, 3, 5, 1, 6, 4).reshape(batch, frames, height // patch, width // patch, -1)


def unpatchify(tokens: torch.Tensor, patch: int) -> torch.Tensor:
    """The inverse of `patchify`: (B, F, h, w, C * p * p) -> (B, C, F, h * p, w * p)."""
    batch, frames, height, width, _ = tokens.shape
    x = tokens.view(batch, frames, height, width, -1, patch, patch)  # (..., C, column offset, row offset)
    return x.permute(0, 4, 1, 2, 6, 3, 5).reshape(batch, -1, frames, height * patch, width * patch)


# -- the decoder ---------------------------------------------------------------------------------------------


class DiffusionDecoder(nn.Module):
    """Stages 1-4 (latents -> context) and the stage-5 denoiser (noise + context -> pixels)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch_size: int,
        head_dim: int,
        stage_channels: tuple[int, ...],
        stage_depths: tuple[int, ...],
        stage_kernels: tuple[Grid, ...],
        upsample_strides: tuple[Grid, ...],
        upsample_channel_reductions: tuple[int, ...],
        stage5_kernel: Grid,
        t_emb_dim: int,
        temporal_compression_ratio: int,
        timestep_scale_multiplier: float,
        model_output_type: str,
        default_num_inference_steps: int,
    ):
        super().__init__()
        if model_output_type not in ("x0", "v"):
            raise ValueError(f"decoder_model_output_type must be 'x0' or 'v', got {model_output_type!r}")
        stages = len(upsample_strides)
        if not len(stage_channels) == len(stage_depths) == stages + 1 or not (
            len(stage_kernels) == len(upsample_channel_reductions) == stages
        ):
            raise ValueError(
                f"decoder_stage_channels and decoder_stage_depths need one entry per stage ({stages} upsampling "
                f"stages plus stage 5), decoder_stage_kernels and decoder_upsample_channel_reductions one per "
                f"upsampling stage; got {len(stage_channels)}, {len(stage_depths)}, {len(stage_kernels)} and "
                f"{len(upsample_channel_reductions)}"
            )
        for stage, reduction in enumerate(upsample_channel_reductions):
            if stage_channels[stage + 1] != stage_channels[stage] // reduction:
                raise ValueError(
                    f"decoder_stage_channels[{stage + 1}] must be decoder_stage_channels[{stage}] // "
                    f"decoder_upsample_channel_reductions[{stage}] = {stage_channels[stage] // reduction}, "
                    f"got {stage_channels[stage + 1]}"
                )
        rope_axis_dims(head_dim)
        uneven = [width for width in stage_channels if width % head_dim]
        if uneven:
            raise ValueError(f"decoder_stage_channels must be multiples of decoder_head_dim={head_dim}, got {uneven}")
        self.patch_size = patch_size
        self.out_channels = out_channels
        self.temporal_compression_ratio = temporal_compression_ratio
        self.timestep_scale_multiplier = timestep_scale_multiplier
        self.model_output_type = model_output_type
        self.default_num_inference_steps = default_num_inference_steps
        self.stage_kernels = tuple(tuple(kernel) for kernel in (*stage_kernels, stage5_kernel))
        # Windows shift inward at the grid's end, so the last latent frame is repeated through stages 1-4 and its
        # copies ("ghost frames") cropped off the context: the frames kept see centred windows.
        self.ghost_latent_frames = stage_kernels[0][0] // 2 * 2

        self.conv_in = nn.Linear(in_channels, stage_channels[0])
        self.det_stages = nn.ModuleList(
            nn.ModuleList(NeighborhoodBlock(channels, kernel, head_dim) for _ in range(depth))
            for channels, depth, kernel in zip(stage_channels, stage_depths, stage_kernels)
        )
        self.upsamples = nn.ModuleList(
            PixelShuffleUpsampler(channels, stride, reduction)
            for channels, stride, reduction in zip(stage_channels, upsample_strides, upsample_channel_reductions)
        )
        self.t_embedder = TimestepEmbedding(t_emb_dim)
        width, pixel_channels = stage_channels[-1], out_channels * patch_size**2
        self.conv_in_x_t = nn.Linear(pixel_channels, width)
        self.shared_adaln = SharedModulation(t_emb_dim, width)
        self.diff_blocks = nn.ModuleList(
            DiffusionBlock(width, stage5_kernel, width, head_dim) for _ in range(stage_depths[-1])
        )
        self.norm_out = RMSNorm(width)
        self.conv_out = nn.Linear(width, pixel_channels)

    def stage_grids(self, frames: int, height: int, width: int) -> list[Grid]:
        """The token grid of each of the five stages for a latent of (frames, height, width), untiled."""
        grids = [(frames + self.ghost_latent_frames, height, width)]
        for upsample in self.upsamples:
            (t, h, w), (st, sh, sw) = grids[-1], upsample.stride
            grids.append((t * st - (st == 2), h * sh, w * sw))
        t, h, w = grids[-1]
        grids[-1] = (t - self.ghost_latent_frames * self.temporal_compression_ratio, h, w)
        return grids

    def features(self, latents: torch.Tensor) -> torch.Tensor:
        """Stages 1-3: (B, C, F, H, W) latents (plus ghost frames) -> the stage-4 input, channels-last."""
        ghosts = latents[:, :, -1:].expand(-1, -1, self.ghost_latent_frames, -1, -1)
        x = self.conv_in(torch.cat([latents, ghosts], dim=2).permute(0, 2, 3, 4, 1))
        for blocks, upsample in zip(self.det_stages[:-1], self.upsamples[:-1]):
            for block in blocks:
                x = block(x)
            x = upsample(x)
        return x

    def context(self, features: torch.Tensor, first_tile: bool = True, last_tile: bool = True) -> torch.Tensor:
        """Stage 4: features -> the stage-5 context (B, T, H, W, C). A temporal tile that does not start the video
        keeps the upsampler's leading frame; only the one that ends it holds ghost frames to crop."""
        for block in self.det_stages[-1]:
            features = block(features)
        context = self.upsamples[-1](features, drop_leading_frame=first_tile)
        if last_tile and self.ghost_latent_frames:
            context = context[:, : -self.ghost_latent_frames * self.temporal_compression_ratio]
        return context

    def predict(self, context: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """One stage-5 pass: the model's output (x0 or velocity) for pixels `noisy` (B, C, F, H, W) at `sigma` (B,)."""
        embedded = self.t_embedder(self.timestep_scale_multiplier * sigma, context.dtype)
        adaln = self.shared_adaln(embedded)
        x = self.conv_in_x_t(patchify(noisy, self.patch_size))
        for block in self.diff_blocks:
            x = block(x, context, adaln)
        return unpatchify(self.conv_out(self.norm_out(x)), self.patch_size)

    def denoise(self, context: torch.Tensor, noisy: torch.Tensor, steps: int) -> torch.Tensor:
        """Euler steps from sigma 1 down to 0 at sigmas 1, (n-1)/n, ..., 1/n; one x0 step is its prediction."""
        batch = context.shape[0]
        sigmas = torch.linspace(1.0, 1.0 / steps, steps, device=context.device, dtype=torch.float32)
        if steps == 1 and self.model_output_type == "x0":
            return self.predict(context, noisy, sigmas[:1].expand(batch))
        for index in range(steps):
            sigma = sigmas[index].expand(batch)
            following = sigmas[index + 1] if index + 1 < steps else torch.zeros_like(sigma)
            output, current = self.predict(context, noisy, sigma).float(), noisy.float()
            broadcast = (-1, *[1] * (noisy.ndim - 1))
            if self.model_output_type == "x0":
                output = (current - output) / sigma.view(broadcast)  # the velocity
            noisy = (current - (sigma - following).view(broadcast) * output).to(noisy.dtype)
        return noisy


class LTX2VideoDiffusionDecoderModel(PretrainedModel):
    """The LTX-2.5 diffusion video decoder (0.417B; these defaults are LTX-2.5's). Decodes the video VAE's latent
    space, denormalized (the pipeline applies `latents_mean` / `latents_std`, which it carries as buffers); it has
    no encoder. Decoding draws noise: pass `generator` for reproducible output.

    `enable_tiling()` runs stage 4 and stage 5 on overlapping tiles blended linearly (stages 1-3 always see the
    whole latent). A one-step x0 decode draws each tile's noise in tile order; more steps draw the whole
    canvas first and give each tile its part, so overlapping tiles start from the same noise.
    """

    single_file_component = "diffusion_decoder"
    single_file_versions = (LTX_2_5,)
    _repeated_blocks = ("NeighborhoodBlock", "DiffusionBlock")

    def __init__(
        self,
        out_channels: int = 3,
        latent_channels: int = 128,
        patch_size: int = 4,
        scaling_factor: float = 1.0,
        decoder_head_dim: int = 64,
        decoder_stage_channels: tuple[int, ...] = (2048, 1024, 512, 512, 256),
        decoder_stage_depths: tuple[int, ...] = (4, 6, 4, 2, 8),
        decoder_stage_kernels: tuple[tuple[int, int, int], ...] = ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5)),
        decoder_upsample_strides: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 2, 2)),
        decoder_upsample_channel_reductions: tuple[int, ...] = (2, 2, 1, 2),
        decoder_stage5_kernel: tuple[int, int, int] = (11, 11, 11),
        decoder_t_emb_dim: int = 384,
        decoder_timestep_scale_multiplier: float = 1000.0,
        decoder_model_output_type: str = "x0",
        decoder_num_inference_steps: int = 1,
        spatial_compression_ratio: int = 32,
        temporal_compression_ratio: int = 8,
    ):
        super().__init__()
        self.decoder = DiffusionDecoder(
            latent_channels, out_channels, patch_size, decoder_head_dim, decoder_stage_channels, decoder_stage_depths,
            decoder_stage_kernels, decoder_upsample_strides, decoder_upsample_channel_reductions,
            decoder_stage5_kernel, decoder_t_emb_dim, temporal_compression_ratio, decoder_timestep_scale_multiplier,
            decoder_model_output_type, decoder_num_inference_steps,
        )
        self.spatial_compression_ratio = spatial_compression_ratio
        self.temporal_compression_ratio = temporal_compression_ratio
        self.register_buffer("latents_mean", torch.zeros(latent_channels))
        self.register_buffer("latents_std", torch.ones(latent_channels))
        self.use_tiling = False
        # Tile sizes and strides in decoded frames and pixels (the reference's defaults).
        self.tile_sample_min_height = self.tile_sample_min_width = 768
        self.tile_sample_min_num_frames = 80
        self.tile_sample_stride_height = self.tile_sample_stride_width = 704
        self.tile_sample_stride_num_frames = 56

    def enable_tiling(
        self,
        tile_sample_min_height: int | None = None,
        tile_sample_min_width: int | None = None,
        tile_sample_min_num_frames: int | None = None,
        tile_sample_stride_height: int | None = None,
        tile_sample_stride_width: int | None = None,
        tile_sample_stride_num_frames: int | None = None,
    ) -> None:
        """Decode stages 4 and 5 in tiles of these sizes (decoded pixels and frames; multiples of 8 pixels and 2
        frames), `stride` apart; consecutive tiles blend over the difference. None keeps the current value."""
        self.use_tiling = True
        self.tile_sample_min_height = tile_sample_min_height or self.tile_sample_min_height
        self.tile_sample_min_width = tile_sample_min_width or self.tile_sample_min_width
        self.tile_sample_min_num_frames = tile_sample_min_num_frames or self.tile_sample_min_num_frames
        self.tile_sample_stride_height = tile_sample_stride_height or self.tile_sample_stride_height
        self.tile_sample_stride_width = tile_sample_stride_width or self.tile_sample_stride_width
        self.tile_sample_stride_num_frames = tile_sample_stride_num_frames or self.tile_sample_stride_num_frames

    def disable_tiling(self) -> None:
        self.use_tiling = False

    def decode(
        self,
        z: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Denormalized latents (B, latent_channels, F, H, W) -> video (B, out_channels, 8(F-1)+1, 32H, 32W)."""
        return self(z, generator=generator, num_inference_steps=num_inference_steps, return_dict=return_dict)

    def forward(
        self,
        z: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        steps = num_inference_steps or self.decoder.default_num_inference_steps
        self._check_latents(z, steps)
        tiled = self.use_tiling and (
            z.shape[2] > self.tile_sample_min_num_frames // self.temporal_compression_ratio
            or z.shape[3] > self.tile_sample_min_height // self.spatial_compression_ratio
            or z.shape[4] > self.tile_sample_min_width // self.spatial_compression_ratio
        )
        video = self._decode_tiles(z, generator, steps) if tiled else self._decode(z, generator, steps)
        return DecoderOutput(sample=video) if return_dict else (video,)

    def _decode(self, z: torch.Tensor, generator, steps: int) -> torch.Tensor:
        decoder = self.decoder
        context = decoder.context(decoder.features(z))
        frames, height, width = context.shape[1:4]
        shape = (z.shape[0], decoder.out_channels, frames, height * decoder.patch_size, width * decoder.patch_size)
        return decoder.denoise(context, randn(shape, generator, z.device, z.dtype), steps)

    def _decode_tiles(self, z: torch.Tensor, generator, steps: int) -> torch.Tensor:
        """Stages 1-3 whole; stages 4-5 on overlapping tiles of the stage-4 grid, blended in pixels."""
        decoder = self.decoder
        batch, patch = z.shape[0], decoder.patch_size
        last_stride = decoder.upsamples[-1].stride
        # Pixels (frames) per stage-4 cell, and tile sizes and strides in cells.
        scale = (last_stride[0], last_stride[1] * patch, last_stride[2] * patch)
        tile = (self.tile_sample_min_num_frames, self.tile_sample_min_height, self.tile_sample_min_width)
        stride = (self.tile_sample_stride_num_frames, self.tile_sample_stride_height, self.tile_sample_stride_width)
        tile = [size // cell for size, cell in zip(tile, scale)]
        stride = [size // cell for size, cell in zip(stride, scale)]
        # A tile must hold the stage-4 kernel, and after upsampling the stage-5 kernel.
        smallest = [max(kernel_4, -(-kernel_5 // step)) for kernel_4, kernel_5, step in
                    zip(decoder.stage_kernels[-2], decoder.stage_kernels[-1], last_stride)]
        features = decoder.features(z)
        ghosts = decoder.ghost_latent_frames * math.prod(up.stride[0] for up in decoder.upsamples[:-1])
        grid = (features.shape[1] - ghosts, *features.shape[2:4])
        spans = [tile_spans(*axis) for axis in zip(grid, tile, stride, smallest)]
        overlap = [(size - step) * cell for size, step, cell in zip(tile, stride, scale)]
        pixel_stride = [step * cell for step, cell in zip(stride, scale)]
        one_pass = steps == 1 and decoder.model_output_type == "x0"
        leading = int(scale[0] == 2)  # the causal first frame: one pixel frame for the first cell
        canvas = None
        if not one_pass:  # multi-step: every tile takes its part of one noise canvas
            canvas_shape = (batch, decoder.out_channels, grid[0] * scale[0] - leading, grid[1] * scale[1],
                            grid[2] * scale[2])
            canvas = randn(canvas_shape, generator, z.device, z.dtype)

        groups = []
        for t0, t1 in spans[0]:
            first, last = t0 == 0, t1 == grid[0]
            rows = []
            for h0, h1 in spans[1]:
                row = []
                for w0, w1 in spans[2]:
                    context = decoder.context(features[:, t0 : features.shape[1] if last else t1, h0:h1, w0:w1],
                                              first_tile=first, last_tile=last)
                    shape = (batch, decoder.out_channels, context.shape[1], context.shape[2] * patch,
                             context.shape[3] * patch)
                    if one_pass:
                        noisy = randn(shape, generator, z.device, z.dtype)
                    else:
                        start = (t0 * scale[0] - (leading if not first else 0), h0 * scale[1], w0 * scale[2])
                        noisy = canvas[:, :, start[0] : start[0] + shape[2], start[1] : start[1] + shape[3],
                                       start[2] : start[2] + shape[4]]
                    row.append(decoder.denoise(context, noisy, steps))
                rows.append(row)
            groups.append(join(rows, overlap[1:], pixel_stride[1:]))
        # The first group's first cell decodes to one frame only (the causal mapping).
        return join_frames(groups, overlap[0], [pixel_stride[0] - leading] + [pixel_stride[0]] * (len(groups) - 1))

    def _check_latents(self, z: torch.Tensor, steps: int) -> None:
        channels = self.decoder.conv_in.in_features
        if not isinstance(z, torch.Tensor) or z.ndim != 5 or z.shape[1] != channels:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must be latents (batch, {channels}, frames, height, width), got {shape}")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {steps!r}")
        for stage, (grid, kernel) in enumerate(zip(self.decoder.stage_grids(*z.shape[2:]), self.decoder.stage_kernels)):
            if any(size < window for size, window in zip(grid, kernel)):
                raise ValueError(
                    f"z of shape {tuple(z.shape)} is too small for this decoder: stage {stage + 1} works on a "
                    f"(frames, height, width) grid of {grid}, smaller than its neighborhood kernel {kernel}"
                )


def join(rows: list[list[torch.Tensor]], overlap: list[int], stride: list[int]) -> torch.Tensor:
    """Blend a grid of (B, C, F, h, w) tiles in reading order, each over `overlap` with the (already blended) tile
    above and the one to its left, and join them; every tile but the last of a row or column is cut to `stride`
    (the last one keeps its extent: it may have taken in a remnant)."""
    joined_rows = []
    for i, row in enumerate(rows):
        kept = []
        for j, tile in enumerate(row):
            if i > 0:
                _blend(rows[i - 1][j], tile, overlap[0], dim=3)
            if j > 0:
                _blend(row[j - 1], tile, overlap[1], dim=4)
            height = stride[0] if i < len(rows) - 1 else tile.shape[3]
            width = stride[1] if j < len(row) - 1 else tile.shape[4]
            kept.append(tile[:, :, :, :height, :width])
        joined_rows.append(torch.cat(kept, dim=4))
    return torch.cat(joined_rows, dim=3)


def join_frames(groups: list[torch.Tensor], overlap: int, strides: list[int]) -> torch.Tensor:
    """Blend consecutive (B, C, F, H, W) frame groups over `overlap` frames and join them, each but the last cut to
    its stride."""
    kept = []
    for index, group in enumerate(groups):
        if index > 0:
            _blend(groups[index - 1], group, overlap, dim=2)
        kept.append(group[:, :, : strides[index]] if index < len(groups) - 1 else group)
    return torch.cat(kept, dim=2)


def tile_spans(length: int, tile: int, stride: int, smallest: int) -> list[tuple[int, int]]:
    """[start, end) tiles `stride` apart covering [0, length); a last remnant under `smallest` (too small for the
    kernels) joins the tile before it."""
    if length <= tile:
        return [(0, length)]
    starts = list(range(0, length, stride))
    while len(starts) > 1 and length - starts[-1] < smallest:
        starts.pop()
    return [(start, min(start + tile, length)) for start in starts[:-1]] + [(starts[-1], length)]

