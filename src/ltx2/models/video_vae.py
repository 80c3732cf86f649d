"""LTX-2's video VAE: a causal 3D conv encoder (32x spatial, 8x temporal, 128 latent channels) and a
non-causal decoder, with overlapping-tile and streamed decoding so that memory is bounded by the tile size.

Video (B, 3, 8k+1, H, W) <-> latents (B, 128, k+1, H/32, W/32). The first frame is encoded on its own
(the temporal downsamplers pad with it), every later latent frame stands for 8 video frames.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel
from .layers import (
    DEFAULT_ARITHMETIC,
    Arithmetic,
    AutoencoderKLOutput,
    DecoderOutput,
    DiagonalGaussianDistribution,
    TimestepEmbedding,
    modulation,
)

SCALING_STRIDES = {"spatial": (1, 2, 2), "temporal": (2, 1, 1), "spatiotemporal": (2, 2, 2)}
PADDING_MODES = ("zeros", "reflect")


# ----------------------------------------------------------------------------------------------------------
# Tensor rearrangements


def patchify(video: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, C*p*p, F, H/p, W/p); channel c*p*p + col*p + row (width offset first)."""
    batch, channels, frames, height, width = video.shape
    patches = video.reshape(batch, channels, frames, height // patch, patch, width // patch, patch)
    return patches.permute(0, 1, 6, 4, 2, 3, 5).flatten(1, 3)


def unpatchify(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of `patchify`: (B, C*p*p, F, h, w) -> (B, C, F, h*p, w*p)."""
    batch, channels, frames, height, width = patches.shape
    channels //= patch * patch
    video = patches.reshape(batch, channels, patch, patch, frames, height, width)  # (B, C, col, row, F, h, w)
    return video.permute(0, 1, 4, 5, 3, 6, 2).reshape(batch, channels, frames, height * patch, width * patch)


def space_to_depth(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, C*st*sh*sw, F/st, H/sh, W/sw); channel c*st*sh*sw + it*sh*sw + ih*sw + iw."""
    st, sh, sw = stride
    x = x.unflatten(4, (-1, sw)).unflatten(3, (-1, sh)).unflatten(2, (-1, st))  # (B, C, F', st, H', sh, W', sw)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).flatten(1, 4)


def depth_to_space(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of `space_to_depth`: (B, C*st*sh*sw, F, H, W) -> (B, C, F*st, H*sh, W*sw)."""
    st, sh, sw = stride
    batch, channels, frames, height, width = x.shape
    channels //= st * sh * sw
    x = x.reshape(batch, channels, st, sh, sw, frames, height, width)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(batch, channels, frames * st, height * sh, width * sw)


def _per_channel(value: torch.Tensor) -> torch.Tensor:
    """(B, 1, C) modulation -> (B, C, 1, 1, 1), to broadcast over a video."""
    return value.transpose(1, 2)[..., None, None]


# ----------------------------------------------------------------------------------------------------------
# Streaming over time


class Stream:
    """How a forward pass meets the time axis, and what it leaves for the next pass over the same video.

    The decoder is local in time: its norms act per position and its convs see one frame either side. A
    video can therefore be decoded a few frames per pass with exactly the result of one pass over all of it,
    if every temporal conv keeps the input frames its next outputs still need, every residual path the frames
    its main path has not caught up with, and every upsampler whether it has cut its leading frames.

    A non-causal conv emits its last frame only once its input has ended. Convs are numbered in the order a
    pass calls them, and those numbered below `complete` have all of their input: they flush. One pass over
    a whole video has `complete` = infinity. A streamed decode keeps it at 0 while frames arrive, then raises
    it by one per extra pass, so that no pass carries more than a few frames (see `streamed_passes`).
    """

    def __init__(self, causal: bool, streamed: bool = False):
        self.causal = causal
        self.complete = 0 if streamed else math.inf
        self.time_scale = 1  # frames per latent frame where the pass is now; upsamplers raise it
        self.convs: dict[nn.Module, tuple[int, int]] = {}  # conv -> (call order, time scale of its input)
        self.state: dict[Any, Any] = {}

    def input_ended(self, conv: nn.Module) -> bool:
        if conv not in self.convs:
            self.convs[conv] = (len(self.convs), self.time_scale)
        return self.convs[conv][0] < self.complete

    def delay(self, key: Any, frames: torch.Tensor, count: int) -> torch.Tensor:
        """Queue `frames` behind those still waiting under `key` and hand back the oldest `count`."""
        waiting = self.state.pop(key, None)
        queue = frames if waiting is None else torch.cat([waiting, frames], dim=2)
        if queue.shape[2] > count:
            self.state[key] = queue[:, :, count:].clone()
        return queue[:, :, :count]

    def drop_leading(self, key: Any, frames: torch.Tensor, count: int) -> torch.Tensor:
        """Cut the first `count` frames of the whole video, in whichever pass they arrive."""
        if count == 0 or frames.shape[2] == 0 or key in self.state:
            return frames
        self.state[key] = True
        return frames[:, :, count:]

    def noise(self, key: Any, like: torch.Tensor) -> torch.Tensor:
        """A (H, W) standard normal draw from the global generator, made once per video under `key`."""
        if key not in self.state:
            self.state[key] = torch.randn(like.shape[-2:], device=like.device, dtype=like.dtype)
        return self.state[key]


def streamed_passes(latents: torch.Tensor, chunk: int, streams: list[Stream]) -> Iterator[torch.Tensor]:
    """The input of each pass of a streamed decode: `chunk` latent frames at a time, then empty passes in
    which the convs of every stream flush in order, as many per pass as release about `chunk` latent frames'
    worth of output (a conv running at s frames per latent frame holds back 1/s of one)."""
    for start in range(0, latents.shape[2], chunk):
        yield latents[:, :, start : start + chunk]
    released = 0.0
    # Any stream that has run knows the decoder's convs (a rank of a distributed decode runs only some streams).
    convs = list(next(stream for stream in streams if stream.convs).convs.values())
    for index, (_, time_scale) in enumerate(convs):
        released += 1 / time_scale
        if released >= chunk or index == len(convs) - 1:
            for stream in streams:
                stream.complete = index + 1
            released = 0.0
            yield latents[:, :, :0]


def _pad(parts: list[torch.Tensor], pad: int, mode: str) -> torch.Tensor:
    """Concatenate `parts` along time into one buffer with `pad` pixels of `mode` padding around H and W."""
    batch, channels, _, height, width = parts[0].shape
    frames = sum(part.shape[2] for part in parts)
    out = parts[0].new_empty(batch, channels, frames, height + 2 * pad, width + 2 * pad)
    start = 0
    for part in parts:
        out[:, :, start : start + part.shape[2], pad : pad + height, pad : pad + width] = part
        start += part.shape[2]
    for offset in range(pad):
        # Rows first, then columns over the full height, so the corners reflect in both directions.
        if mode == "reflect":
            out[..., pad - 1 - offset, :] = out[..., pad + 1 + offset, :]
            out[..., pad + height + offset, :] = out[..., pad + height - 2 - offset, :]
            out[..., pad - 1 - offset] = out[..., pad + 1 + offset]
            out[..., pad + width + offset] = out[..., pad + width - 2 - offset]
        else:
            out[..., pad - 1 - offset, :] = 0
            out[..., pad + height + offset, :] = 0
            out[..., pad - 1 - offset] = 0
            out[..., pad + width + offset] = 0
    return out


# ----------------------------------------------------------------------------------------------------------
# Building blocks


class CausalConv3d(nn.Module):
    """A 3x3x3 conv whose time axis is padded with copies of the edge frames: two of the first frame when
    causal, else one of the first and one of the last. H and W are padded with zeros or by reflection."""

    def __init__(self, in_channels: int, out_channels: int, spatial_padding_mode: str = "zeros"):
        super().__init__()
        self.spatial_padding_mode = spatial_padding_mode
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3)

    def forward(self, x: torch.Tensor, stream: Stream) -> torch.Tensor:
        kernel = self.conv.kernel_size[0]
        ended = stream.input_ended(self)
        held = stream.state.pop(self, None)
        if held is None and x.shape[2] == 0:
            return x.new_empty(x.shape[0], self.conv.out_channels, 0, *x.shape[3:])
        before, after = (kernel - 1, 0) if stream.causal else ((kernel - 1) // 2, (kernel - 1) // 2)
        head = x[:, :, :1].expand(-1, -1, before, -1, -1) if held is None else held
        parts = [head, x]
        if ended:
            final = x[:, :, -1:] if x.shape[2] else head[:, :, -1:]
            parts.append(final.expand(-1, -1, after, -1, -1))
        else:
            # The next pass's first outputs are centred on frames this one cannot finish.
            seen = x if x.shape[2] >= kernel - 1 else torch.cat(parts, dim=2)
            stream.state[self] = seen[:, :, -(kernel - 1) :].clone()
        if sum(part.shape[2] for part in parts) < kernel:
            return x.new_empty(x.shape[0], self.conv.out_channels, 0, *x.shape[3:])
        padded = _pad(parts, self.conv.kernel_size[1] // 2, self.spatial_padding_mode)
        # (Weights stored in another dtype, as layerwise casting keeps them, take the conv's own forward.)
        float32 = padded.dtype == self.conv.weight.dtype == torch.float32
        if padded.device.type == "cpu" and float32 and torch.backends.mkldnn.is_available():
            # PyTorch sends float32 3D convs of one sample with few channels x frames x rows to an im2col
            # kernel that is up to 10x slower than oneDNN, which it uses for larger ones; ask for oneDNN.
            weight, bias = self.conv.weight, self.conv.bias
            return torch.ops.aten.mkldnn_convolution(padded, weight, bias, [0, 0, 0], [1, 1, 1], [1, 1, 1], 1)
        return self.conv(padded)


class ResnetBlock3d(nn.Module):
    """norm -> [scale, shift] -> SiLU -> conv -> [noise], twice, plus the input (1x1-projected if widths differ)."""

    arithmetic: Arithmetic = DEFAULT_ARITHMETIC  # a transform may set another (see layers.Arithmetic)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        eps: float = 1e-6,
        inject_noise: bool = False,
        timestep_conditioning: bool = False,
        spatial_padding_mode: str = "zeros",
    ):
        super().__init__()
        self.conv1 = CausalConv3d(in_channels, out_channels, spatial_padding_mode)
        self.conv2 = CausalConv3d(out_channels, out_channels, spatial_padding_mode)
        self.norm3 = nn.LayerNorm(in_channels, eps=eps) if in_channels != out_channels else None
        self.conv_shortcut = None
        if in_channels != out_channels:
            self.conv_shortcut = nn.Conv3d(in_channels, out_channels, kernel_size=1)
        self.per_channel_scale1 = nn.Parameter(torch.zeros(in_channels, 1, 1)) if inject_noise else None
        self.per_channel_scale2 = nn.Parameter(torch.zeros(in_channels, 1, 1)) if inject_noise else None
        self.scale_shift_table = (
            nn.Parameter(torch.randn(4, in_channels) / in_channels**0.5) if timestep_conditioning else None
        )

    def forward(self, x: torch.Tensor, stream: Stream, embedding: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.arithmetic.channel_rms_norm(x)
        if self.scale_shift_table is not None:
            shift1, scale1, shift2, scale2 = map(_per_channel, modulation(self.scale_shift_table, embedding[:, None]))
            hidden = hidden * (1 + scale1) + shift1
        hidden = self.conv1(F.silu(hidden, inplace=True), stream)
        hidden = self.add_noise(hidden, self.per_channel_scale1, stream, "noise1")
        hidden = self.arithmetic.channel_rms_norm(hidden)
        if self.scale_shift_table is not None:
            hidden = hidden * (1 + scale2) + shift2
        hidden = self.conv2(F.silu(hidden, inplace=True), stream)
        hidden = self.add_noise(hidden, self.per_channel_scale2, stream, "noise2")
        shortcut = stream.delay(self, x, hidden.shape[2])
        if self.conv_shortcut is not None:
            shortcut = self.conv_shortcut(self.norm3(shortcut.movedim(1, -1)).movedim(-1, 1))
        return hidden.add_(shortcut)

    def add_noise(self, x: torch.Tensor, scale: torch.Tensor | None, stream: Stream, name: str) -> torch.Tensor:
        """Add one spatial noise image, scaled per channel, to every frame (drawn once per video)."""
        if scale is None:
            return x
        return x + (stream.noise((self, name), x) * scale)[:, None]  # (C, 1, H, W)


class Downsampler3d(nn.Module):
    """Space-to-depth by `stride`: a conv to out/(st*sh*sw) channels then space-to-depth, plus a residual that
    averages groups of the space-to-depth input channels down to `out_channels`."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: tuple[int, int, int], spatial_padding_mode: str = "zeros"
    ):
        super().__init__()
        self.stride = stride
        volume = math.prod(stride)
        self.group_size = in_channels * volume // out_channels
        self.conv = CausalConv3d(in_channels, out_channels // volume, spatial_padding_mode)

    def forward(self, x: torch.Tensor, stream: Stream) -> torch.Tensor:
        # The leading frames are repeated so that the first frame forms a temporal group of its own.
        x = torch.cat([x[:, :, : self.stride[0] - 1], x], dim=2)
        residual = space_to_depth(x, self.stride).unflatten(1, (-1, self.group_size)).mean(dim=2)
        return space_to_depth(self.conv(x, stream), self.stride).add_(residual)


class Upsampler3d(nn.Module):
    """Depth-to-space by `stride`: conv to C*st*sh*sw/u channels, depth-to-space, drop the first st-1 frames;
    with `residual`, the input's own depth-to-space (tiled over channels) is added."""

    def __init__(
        self,
        in_channels: int,
        stride: tuple[int, int, int],
        residual: bool = False,
        upscale_factor: int = 1,
        spatial_padding_mode: str = "zeros",
    ):
        super().__init__()
        self.stride = stride
        self.residual = residual
        self.conv = CausalConv3d(in_channels, in_channels * math.prod(stride) // upscale_factor, spatial_padding_mode)

    def forward(self, x: torch.Tensor, stream: Stream) -> torch.Tensor:
        hidden = self.conv(x, stream)  # (B, C*V/u, f, H, W)
        if self.residual:
            # Tiling the input's channels before depth-to-space tiles its depth-to-space after it.
            shortcut = stream.delay(self, x, hidden.shape[2])
            hidden.unflatten(1, (-1, x.shape[1])).add_(shortcut.unsqueeze(1))
        hidden = depth_to_space(hidden, self.stride)  # (B, C/u, f*st, H*sh, W*sw)
        stream.time_scale *= self.stride[0]
        return stream.drop_leading((self, "leading"), hidden, self.stride[0] - 1)


class DownBlock3d(nn.Module):
    """Resnets at the input width, then an optional downsampler to `out_channels`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        eps: float,
        downsample_type: str | None,
        spatial_padding_mode: str,
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock3d(in_channels, in_channels, eps, spatial_padding_mode=spatial_padding_mode)
            for _ in range(num_layers)
        )
        self.downsamplers = None
        if downsample_type is not None:
            stride = SCALING_STRIDES[downsample_type]
            self.downsamplers = nn.ModuleList([Downsampler3d(in_channels, out_channels, stride, spatial_padding_mode)])

    def forward(self, x: torch.Tensor, stream: Stream) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x, stream)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x, stream)
        return x


class MidBlock3d(nn.Module):
    """Resnets at one width, optionally conditioned on the (scaled) decode timestep."""

    def __init__(
        self,
        channels: int,
        num_layers: int,
        eps: float,
        inject_noise: bool = False,
        timestep_conditioning: bool = False,
        spatial_padding_mode: str = "zeros",
    ):
        super().__init__()
        self.time_embedder = TimestepEmbedding(channels * 4) if timestep_conditioning else None
        self.resnets = nn.ModuleList(
            ResnetBlock3d(channels, channels, eps, inject_noise, timestep_conditioning, spatial_padding_mode)
            for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, stream: Stream, timestep: torch.Tensor | None = None) -> torch.Tensor:
        embedding = None if self.time_embedder is None else self.time_embedder(timestep, x.dtype)
        for resnet in self.resnets:
            x = resnet(x, stream, embedding)
        return x


class UpBlock3d(nn.Module):
    """[Resnet to the new width] -> optional upsampler -> resnets, optionally timestep-conditioned."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        eps: float,
        upsample_type: str | None,
        inject_noise: bool,
        timestep_conditioning: bool,
        upsample_residual: bool,
        upscale_factor: int,
        spatial_padding_mode: str,
    ):
        super().__init__()
        self.time_embedder = TimestepEmbedding(in_channels * 4) if timestep_conditioning else None
        self.conv_in = None
        if in_channels != out_channels:
            self.conv_in = ResnetBlock3d(in_channels, out_channels, eps, inject_noise, False, spatial_padding_mode)
        self.upsamplers = None
        if upsample_type is not None:
            upsampler = Upsampler3d(
                out_channels * upscale_factor,
                SCALING_STRIDES[upsample_type],
                upsample_residual,
                upscale_factor,
                spatial_padding_mode,
            )
            self.upsamplers = nn.ModuleList([upsampler])
        self.resnets = nn.ModuleList(
            ResnetBlock3d(out_channels, out_channels, eps, inject_noise, timestep_conditioning, spatial_padding_mode)
            for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, stream: Stream, timestep: torch.Tensor | None = None) -> torch.Tensor:
        if self.conv_in is not None:
            x = self.conv_in(x, stream)
        embedding = None if self.time_embedder is None else self.time_embedder(timestep, x.dtype)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, stream)
        for resnet in self.resnets:
            x = resnet(x, stream, embedding)
        return x


# ----------------------------------------------------------------------------------------------------------
# Encoder and decoder


class Encoder3d(nn.Module):
    """Video -> 4x4 patches -> conv_in -> down blocks -> mid block -> norm, SiLU -> conv_out (C+1 channels):
    C means and one log-variance shared by all channels."""

    arithmetic: Arithmetic = DEFAULT_ARITHMETIC  # a transform may set another (see layers.Arithmetic)

    def __init__(
        self,
        in_channels: int,
        latent_channels: int,
        block_out_channels: Sequence[int],
        layers_per_block: Sequence[int],
        downsample_types: Sequence[str | None],
        patch_size: int,
        eps: float,
        spatial_padding_mode: str,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.conv_in = CausalConv3d(in_channels * patch_size**2, latent_channels, spatial_padding_mode)
        widths = [latent_channels, *block_out_channels]
        self.down_blocks = nn.ModuleList(
            DownBlock3d(widths[i], widths[i + 1], layers_per_block[i], eps, downsample_types[i], spatial_padding_mode)
            for i in range(len(block_out_channels))
        )
        self.mid_block = MidBlock3d(widths[-1], layers_per_block[-1], eps, spatial_padding_mode=spatial_padding_mode)
        self.conv_out = CausalConv3d(widths[-1], latent_channels + 1, spatial_padding_mode)
        strides = [SCALING_STRIDES[kind] for kind in downsample_types if kind is not None]
        self.scale = (math.prod(s[0] for s in strides), patch_size * math.prod(s[1] for s in strides))  # (time, space)

    def forward(self, video: torch.Tensor, causal: bool) -> torch.Tensor:
        """(B, 3, F, H, W) -> (B, C+1, (F-1)/8+1, H/32, W/32)."""
        stream = Stream(causal)
        hidden = self.conv_in(patchify(video, self.patch_size), stream)
        for block in self.down_blocks:
            hidden = block(hidden, stream)
        hidden = self.mid_block(hidden, stream)
        return self.conv_out(F.silu(self.arithmetic.channel_rms_norm(hidden), inplace=True), stream)


class Decoder3d(nn.Module):
    """Latents -> conv_in -> mid block -> up blocks -> norm, [scale, shift] -> SiLU -> conv_out -> unpatchify."""

    arithmetic: Arithmetic = DEFAULT_ARITHMETIC  # a transform may set another (see layers.Arithmetic)

    def __init__(
        self,
        latent_channels: int,
        out_channels: int,
        block_out_channels: Sequence[int],
        layers_per_block: Sequence[int],
        upsample_types: Sequence[str | None],
        inject_noise: Sequence[bool],
        upsample_residual: Sequence[bool],
        upsample_factor: Sequence[int],
        timestep_conditioning: bool,
        patch_size: int,
        eps: float,
        spatial_padding_mode: str,
    ):
        """Per-block arguments are in decoding order (the mid block first), widths before the upsampling factor."""
        super().__init__()
        self.patch_size = patch_size
        width = block_out_channels[0]
        self.conv_in = CausalConv3d(latent_channels, width, spatial_padding_mode)
        self.mid_block = MidBlock3d(
            width, layers_per_block[0], eps, inject_noise[0], timestep_conditioning, spatial_padding_mode
        )
        self.up_blocks = nn.ModuleList()
        for i, factor in enumerate(upsample_factor):
            block_in, width = width // factor, block_out_channels[i] // factor
            self.up_blocks.append(
                UpBlock3d(
                    block_in,
                    width,
                    layers_per_block[i + 1],
                    eps,
                    upsample_types[i],
                    inject_noise[i + 1],
                    timestep_conditioning,
                    upsample_residual[i],
                    factor,
                    spatial_padding_mode,
                )
            )
        self.conv_out = CausalConv3d(width, out_channels * patch_size**2, spatial_padding_mode)
        strides = [SCALING_STRIDES[kind] for kind in upsample_types if kind is not None]
        self.scale = (math.prod(s[0] for s in strides), patch_size * math.prod(s[1] for s in strides))  # (time, space)
        self.timestep_scale_multiplier = None
        self.time_embedder = None
        self.scale_shift_table = None
        if timestep_conditioning:
            self.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            self.time_embedder = TimestepEmbedding(width * 2)
            self.scale_shift_table = nn.Parameter(torch.randn(2, width) / width**0.5)

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor | None, stream: Stream) -> torch.Tensor:
        """(B, C, f, h, w) -> (B, 3, frames out, 32h, 32w); with a streamed `stream`, the frames ready so far."""
        stream.time_scale = 1
        if self.timestep_scale_multiplier is not None:
            timestep = timestep * self.timestep_scale_multiplier
        hidden = self.mid_block(self.conv_in(latents, stream), stream, timestep)
        for block in self.up_blocks:
            hidden = block(hidden, stream, timestep)
        hidden = self.arithmetic.channel_rms_norm(hidden)
        if self.scale_shift_table is not None:
            embedding = self.time_embedder(timestep, hidden.dtype)[:, None]
            shift, scale = map(_per_channel, modulation(self.scale_shift_table, embedding))
            hidden = hidden * (1 + scale) + shift
        return unpatchify(self.conv_out(F.silu(hidden, inplace=True), stream), self.patch_size)


# ----------------------------------------------------------------------------------------------------------
# Tiles


def _blend(previous: torch.Tensor, tile: torch.Tensor, extent: int, dim: int) -> None:
    """Cross-fade, in place, the start of `tile` along `dim` from the end of the neighbouring `previous`."""
    extent = min(previous.shape[dim], tile.shape[dim], extent)
    if extent == 0:
        return
    shape = [1] * tile.dim()
    shape[dim] = extent
    weight = (torch.arange(extent, dtype=torch.float64, device=tile.device) / extent).view(shape)
    head = tile.narrow(dim, 0, extent)
    tail = previous.narrow(dim, previous.shape[dim] - extent, extent)
    head.copy_(tail * (1 - weight).to(tile.dtype) + head * weight.to(tile.dtype))


def stitch(
    grid: list[list[torch.Tensor]], overlap: tuple[int, int], stride: tuple[int, int], out: torch.Tensor
) -> None:
    """Join a grid of overlapping tile results into `out` (..., H, W).

    In reading order, each tile is cross-faded over `overlap` with the (already blended) tile above it and
    the one to its left, then cut to `stride` and placed at its grid position; `out` crops the far edges.
    """
    height, width = out.shape[-2:]
    for row, tiles in enumerate(grid):
        for col, tile in enumerate(tiles):
            if row > 0:
                _blend(grid[row - 1][col], tile, overlap[0], dim=-2)
            if col > 0:
                _blend(tiles[col - 1], tile, overlap[1], dim=-1)
            top, left = row * stride[0], col * stride[1]
            kept = tile[..., : min(stride[0], height - top), : min(stride[1], width - left)]
            out[..., top : top + kept.shape[-2], left : left + kept.shape[-1]] = kept


def windows(x: torch.Tensor, tile: tuple[int, int], stride: tuple[int, int]) -> list[list[tuple[slice, slice]]]:
    """The grid of (rows, columns) windows of `tile` size, `stride` apart, covering x's (H, W)."""
    height, width = x.shape[-2:]
    return [
        [(slice(top, top + tile[0]), slice(left, left + tile[1])) for left in range(0, width, stride[1])]
        for top in range(0, height, stride[0])
    ]


def framewise(
    run: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    window: int,
    stride: int,
    out_stride: int,
    overlap: int,
    out_frames: int,
) -> torch.Tensor:
    """Apply `run` to windows of `window` + 1 frames, `stride` apart, and stitch the results in time.

    A window starting at frame i shares its first frame with the one before, so that frame is dropped from
    every result but the first; each result is then cross-faded over `overlap` frames with the previous one
    and cut to `out_stride` frames (the first keeps one more: the video's first frame).
    """
    pieces, previous = [], None
    for start in range(0, x.shape[2], stride):
        result = run(x[:, :, start : start + window + 1])
        if previous is None:
            pieces.append(result[:, :, : out_stride + 1])
        else:
            result = result[:, :, 1:]
            _blend(previous, result, overlap, dim=2)
            pieces.append(result[:, :, :out_stride])
        previous = result
    return torch.cat(pieces, dim=2)[:, :, :out_frames]


# ----------------------------------------------------------------------------------------------------------
# The autoencoder


def _per_block(value: bool | Sequence[bool], count: int) -> tuple[bool, ...]:
    return (value,) * count if isinstance(value, bool) else tuple(value)


class AutoencoderKLLTX2Video(PretrainedModel):
    """LTX-2's video VAE, with the diffusers `AutoencoderKLLTX2Video` config keys and checkpoint layout.

    `enable_tiling()` decodes (and encodes) in overlapping spatial tiles blended into each other, exactly as
    the reference does, and streams each tile through the decoder a few latent frames at a time, which is
    exact; `use_framewise_decoding` / `use_framewise_encoding` add the reference's blended temporal tiles.
    """

    single_file_component = "vae"

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        latent_channels: int = 128,
        block_out_channels: Sequence[int] = (256, 512, 1024, 2048),
        down_block_types: Sequence[str] = ("LTX2VideoDownBlock3D",) * 4,
        decoder_block_out_channels: Sequence[int] = (256, 512, 1024),
        layers_per_block: Sequence[int] = (4, 6, 6, 2, 2),
        decoder_layers_per_block: Sequence[int] = (5, 5, 5, 5),
        spatio_temporal_scaling: bool | Sequence[bool] = (True, True, True, True),
        decoder_spatio_temporal_scaling: bool | Sequence[bool] = (True, True, True),
        decoder_inject_noise: bool | Sequence[bool] = (False, False, False, False),
        downsample_type: Sequence[str] = ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type: Sequence[str] = ("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual: bool | Sequence[bool] = (True, True, True),
        upsample_factor: Sequence[int] = (2, 2, 2),
        timestep_conditioning: bool = False,
        patch_size: int = 4,
        patch_size_t: int = 1,
        resnet_norm_eps: float = 1e-6,
        scaling_factor: float = 1.0,
        encoder_causal: bool = True,
        decoder_causal: bool = False,
        encoder_spatial_padding_mode: str = "zeros",
        decoder_spatial_padding_mode: str = "reflect",
        spatial_compression_ratio: int | None = 32,
        temporal_compression_ratio: int | None = 8,
    ):
        super().__init__()
        encoder_blocks, decoder_blocks = len(layers_per_block) - 1, len(decoder_layers_per_block) - 1
        scaling = _per_block(spatio_temporal_scaling, encoder_blocks)
        decoder_scaling = _per_block(decoder_spatio_temporal_scaling, decoder_blocks)
        inject_noise = _per_block(decoder_inject_noise, decoder_blocks + 1)
        residual = _per_block(upsample_residual, decoder_blocks)
        _check_config(locals())

        downsample_types = [kind if scaled else None for kind, scaled in zip(downsample_type, scaling)]
        self.encoder = Encoder3d(
            in_channels,
            latent_channels,
            block_out_channels,
            layers_per_block,
            downsample_types,
            patch_size,
            resnet_norm_eps,
            encoder_spatial_padding_mode,
        )
        upsample_types = [kind if scaled else None for kind, scaled in zip(upsample_type, decoder_scaling[::-1])]
        self.decoder = Decoder3d(
            latent_channels,
            out_channels,
            tuple(decoder_block_out_channels)[::-1],
            tuple(decoder_layers_per_block)[::-1],
            upsample_types,
            inject_noise[::-1],
            residual[::-1],
            tuple(upsample_factor)[::-1],
            timestep_conditioning,
            patch_size,
            resnet_norm_eps,
            decoder_spatial_padding_mode,
        )
        self.register_buffer("latents_mean", torch.zeros(latent_channels))
        self.register_buffer("latents_std", torch.ones(latent_channels))

        # The config states the ratios (older configs leave them null); they must be what the encoder does.
        time_scale, space_scale = self.encoder.scale
        for name, stated, actual in (
            ("spatial_compression_ratio", spatial_compression_ratio, space_scale),
            ("temporal_compression_ratio", temporal_compression_ratio, time_scale),
        ):
            if stated is not None and stated != actual:
                raise ValueError(f"{name} is {stated} but the encoder's blocks compress by {actual}")
        self.spatial_compression_ratio = spatial_compression_ratio or space_scale
        self.temporal_compression_ratio = temporal_compression_ratio or time_scale

        self.use_slicing = False
        self.use_tiling = False
        self.use_framewise_encoding = False
        self.use_framewise_decoding = False
        self.tile_sample_min_height = 512
        self.tile_sample_min_width = 512
        self.tile_sample_min_num_frames = 16
        self.tile_sample_stride_height = 448
        self.tile_sample_stride_width = 448
        self.tile_sample_stride_num_frames = 8

    # ---- switches

    def enable_tiling(
        self,
        tile_sample_min_height: int | None = None,
        tile_sample_min_width: int | None = None,
        tile_sample_min_num_frames: int | None = None,
        tile_sample_stride_height: int | None = None,
        tile_sample_stride_width: int | None = None,
        tile_sample_stride_num_frames: int | None = None,
    ) -> None:
        """Decode and encode in overlapping tiles of the given size (in video pixels and frames), `stride` apart;
        arguments left None keep their current values (512, 512, 16 frames; strides 448, 448, 8 frames).

        Spatial tiles are blended over (size - stride) pixels. Time is streamed through the decoder
        `tile_sample_min_num_frames` video frames at a time, which needs no blending; set
        `use_framewise_decoding` / `use_framewise_encoding` for blended temporal tiles as in the reference.
        """
        settings = {
            "tile_sample_min_height": (tile_sample_min_height, self.spatial_compression_ratio),
            "tile_sample_min_width": (tile_sample_min_width, self.spatial_compression_ratio),
            "tile_sample_min_num_frames": (tile_sample_min_num_frames, self.temporal_compression_ratio),
            "tile_sample_stride_height": (tile_sample_stride_height, self.spatial_compression_ratio),
            "tile_sample_stride_width": (tile_sample_stride_width, self.spatial_compression_ratio),
            "tile_sample_stride_num_frames": (tile_sample_stride_num_frames, self.temporal_compression_ratio),
        }
        values = {name: getattr(self, name) if value is None else value for name, (value, _) in settings.items()}
        for name, (_, ratio) in settings.items():
            if not isinstance(values[name], int) or values[name] <= 0 or values[name] % ratio:
                raise ValueError(
                    f"{name} must be a positive multiple of the compression ratio {ratio}, got {values[name]!r}"
                )
        for axis in ("height", "width", "num_frames"):
            size, stride = values[f"tile_sample_min_{axis}"], values[f"tile_sample_stride_{axis}"]
            if stride > size:
                raise ValueError(
                    f"tile_sample_stride_{axis} must not exceed tile_sample_min_{axis} ({size}), got {stride}"
                )
        for name, value in values.items():
            setattr(self, name, value)
        self.use_tiling = True

    def disable_tiling(self) -> None:
        self.use_tiling = False

    def enable_slicing(self) -> None:
        """Encode and decode the samples of a batch one at a time."""
        self.use_slicing = True

    def disable_slicing(self) -> None:
        self.use_slicing = False

    # ---- encode

    def encode(
        self, x: torch.Tensor, causal: bool | None = None, return_dict: bool = True
    ) -> AutoencoderKLOutput | tuple[DiagonalGaussianDistribution]:
        """(B, 3, 8k+1, H, W) video in [-1, 1] -> posterior over (B, C, k+1, H/32, W/32) latents.

        The encoder runs causally when `causal` or the config's `encoder_causal` says so.
        """
        self._check_video(x)
        causal = bool(causal) or self.config.encoder_causal
        if self.use_slicing and x.shape[0] > 1:
            moments = torch.cat([self._encode(sample, causal) for sample in x.split(1)])
        else:
            moments = self._encode(x, causal)
        # (B, C+1, ...): C means, then one log-variance shared by all channels.
        means, logvar = moments.split([self.config.latent_channels, 1], dim=1)
        posterior = DiagonalGaussianDistribution(means, logvar.expand_as(means))
        return AutoencoderKLOutput(posterior) if return_dict else (posterior,)

    def _encode(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        temporal = self.temporal_compression_ratio
        if self.use_framewise_encoding and x.shape[2] > self.tile_sample_min_num_frames:
            window, stride = self.tile_sample_min_num_frames, self.tile_sample_stride_num_frames
            run = functools.partial(self._encode_tiles, causal=causal)
            overlap, frames = (window - stride) // temporal, (x.shape[2] - 1) // temporal + 1
            return framewise(run, x, window, stride, stride // temporal, overlap, frames)
        return self._encode_tiles(x, causal)

    def _encode_tiles(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        batch, _, frames, height, width = x.shape
        if not self.use_tiling or (height <= self.tile_sample_min_height and width <= self.tile_sample_min_width):
            return self.encoder(x, causal)
        ratio = self.spatial_compression_ratio
        tile = (self.tile_sample_min_height, self.tile_sample_min_width)
        stride = (self.tile_sample_stride_height, self.tile_sample_stride_width)
        grid = [[self.encoder(x[..., rows, cols], causal) for rows, cols in row] for row in windows(x, tile, stride)]
        time_scale, space_scale = self.encoder.scale
        shape = (batch, self.config.latent_channels + 1, (frames - 1) // time_scale + 1)
        out = x.new_empty(*shape, height // space_scale, width // space_scale)
        overlap = ((tile[0] - stride[0]) // ratio, (tile[1] - stride[1]) // ratio)
        stitch(grid, overlap, (stride[0] // ratio, stride[1] // ratio), out)
        return out

    # ---- decode

    def decode(
        self,
        z: torch.Tensor,
        temb: torch.Tensor | None = None,
        causal: bool | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """(B, C, k+1, h, w) latents -> (B, 3, 8k+1, 32h, 32w) video.

        `temb` is the decode timestep, one per sample (or one for all), required by a timestep-conditioned
        decoder and ignored otherwise. The decoder runs causally when `causal` or `decoder_causal` says so.
        """
        timestep = self._check_latents(z, temb)
        causal = bool(causal) or self.config.decoder_causal
        if self.use_slicing and z.shape[0] > 1:
            steps = [None] * z.shape[0] if timestep is None else timestep.split(1)
            video = torch.cat([self._decode(sample, step, causal) for sample, step in zip(z.split(1), steps)])
        else:
            video = self._decode(z, timestep, causal)
        return DecoderOutput(video) if return_dict else (video,)

    def _decode(self, z: torch.Tensor, timestep: torch.Tensor | None, causal: bool) -> torch.Tensor:
        temporal = self.temporal_compression_ratio
        window, stride = self.tile_sample_min_num_frames, self.tile_sample_stride_num_frames
        if self.use_framewise_decoding and z.shape[2] > window // temporal:
            run = functools.partial(self._decode_tiles, timestep=timestep, causal=causal)
            frames = (z.shape[2] - 1) * self.decoder.scale[0] + 1
            return framewise(run, z, window // temporal, stride // temporal, stride, window - stride, frames)
        return self._decode_tiles(z, timestep, causal)

    def _decode_tiles(self, z: torch.Tensor, timestep: torch.Tensor | None, causal: bool) -> torch.Tensor:
        """Untiled: one pass. Tiled: every spatial tile is streamed through the decoder, and the tiles' outputs
        are stitched one run of frames at a time, so only the output video grows with the video's length."""
        if not self.use_tiling:
            return self.decoder(z, timestep, Stream(causal))
        batch, _, frames, height, width = z.shape
        ratio = self.spatial_compression_ratio
        tile = (self.tile_sample_min_height // ratio, self.tile_sample_min_width // ratio)
        stride = (self.tile_sample_stride_height // ratio, self.tile_sample_stride_width // ratio)
        if height <= tile[0] and width <= tile[1]:
            tile = stride = (height, width)
        grid = windows(z, tile, stride)
        streams = [[Stream(causal, streamed=True) for _ in row] for row in grid]
        overlap = ((tile[0] - stride[0]) * ratio, (tile[1] - stride[1]) * ratio)
        time_scale, space_scale = self.decoder.scale
        shape = (batch, self.config.out_channels, (frames - 1) * time_scale + 1)
        video = z.new_empty(*shape, height * space_scale, width * space_scale)
        chunk = max(1, self.tile_sample_min_num_frames // self.temporal_compression_ratio)
        done = 0
        columns = len(grid[0])
        for latents in streamed_passes(z, chunk, [stream for row in streams for stream in row]):
            jobs = [
                functools.partial(self.decoder, latents[..., rows, cols], timestep, stream)
                for row in zip(grid, streams)
                for (rows, cols), stream in zip(*row)
            ]
            results = self.map_tiles(jobs)
            pieces = [results[start : start + columns] for start in range(0, len(results), columns)]
            count = pieces[0][0].shape[2]
            if count:
                stitch(pieces, overlap, (stride[0] * ratio, stride[1] * ratio), video[:, :, done : done + count])
            done += count
        return video

    def map_tiles(self, jobs: list[Callable[[], torch.Tensor]]) -> list[torch.Tensor]:
        """Run the tiles of one decoding pass, in order. ltx2.transforms.collectives.share_tiles spreads them over ranks."""
        return [job() for job in jobs]

    def forward(
        self,
        sample: torch.Tensor,
        temb: torch.Tensor | None = None,
        sample_posterior: bool = False,
        encoder_causal: bool | None = None,
        decoder_causal: bool | None = None,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Encode then decode: the posterior's mode, or a sample of it with `sample_posterior`."""
        posterior = self.encode(sample, causal=encoder_causal).latent_dist
        latents = posterior.sample(generator) if sample_posterior else posterior.mode()
        video = self.decode(latents, temb, causal=decoder_causal).sample
        return DecoderOutput(video) if return_dict else (video,)

    # ---- input checks

    def _check_video(self, x: torch.Tensor) -> None:
        ratio, temporal = self.spatial_compression_ratio, self.temporal_compression_ratio
        if x.dim() != 5:
            raise ValueError(f"x must be a (batch, channels, frames, height, width) video, got shape {tuple(x.shape)}")
        batch, channels, frames, height, width = x.shape
        if channels != self.config.in_channels:
            raise ValueError(f"x must have in_channels={self.config.in_channels} channels, got {channels}")
        if frames < 1 or (frames - 1) % temporal:
            raise ValueError(f"x must have {temporal}k+1 frames (temporal compression {temporal}), got {frames}")
        for name, size in (("height", height), ("width", width)):
            if size < 1 or size % ratio:
                raise ValueError(f"x {name} must be a positive multiple of the spatial compression {ratio}, got {size}")

    def _check_latents(self, z: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor | None:
        """Validate decode inputs; return the timestep as a (B,) tensor (None without timestep conditioning)."""
        if z.dim() != 5:
            raise ValueError(f"z must be (batch, channels, frames, height, width) latents, got shape {tuple(z.shape)}")
        batch, channels, frames, height, width = z.shape
        if channels != self.config.latent_channels:
            raise ValueError(f"z must have latent_channels={self.config.latent_channels} channels, got {channels}")
        if min(frames, height, width) < 1:
            raise ValueError(f"z must have at least one frame, row and column, got shape {tuple(z.shape)}")
        if self.config.decoder_spatial_padding_mode == "reflect":
            self._check_reflect_sizes(height, width)
        if not self.config.timestep_conditioning:
            return None
        if temb is None:
            raise ValueError("temb (the decode timestep) is required: this decoder has timestep_conditioning=True")
        timestep = torch.as_tensor(temb, device=z.device).flatten()
        if timestep.numel() not in (1, batch):
            raise ValueError(f"temb must hold 1 or batch={batch} timesteps, got {timestep.numel()}")
        return timestep.expand(batch)

    def _check_reflect_sizes(self, height: int, width: int) -> None:
        """Reflect padding needs two rows and columns in every decoded tile."""
        ratio = self.spatial_compression_ratio
        tile = (self.tile_sample_min_height // ratio, self.tile_sample_min_width // ratio)
        split = self.use_tiling and (height > tile[0] or width > tile[1])
        for name, size, stride in (
            ("height", height, self.tile_sample_stride_height // ratio),
            ("width", width, self.tile_sample_stride_width // ratio),
        ):
            smallest = min(size - start for start in range(0, size, stride)) if split else size
            if smallest < 2:
                raise ValueError(
                    f"z {name} {size} leaves a tile of {smallest} latent(s); reflect padding needs at least 2 "
                    f"(choose another latent size or tile stride)"
                )


def _check_config(args: dict[str, Any]) -> None:
    """Raise ValueError for configs the architecture cannot build."""
    encoder_blocks = len(args["layers_per_block"]) - 1
    decoder_blocks = len(args["decoder_layers_per_block"]) - 1
    lengths = {
        "block_out_channels": (args["block_out_channels"], encoder_blocks),
        "down_block_types": (args["down_block_types"], encoder_blocks),
        "downsample_type": (args["downsample_type"], encoder_blocks),
        "spatio_temporal_scaling": (args["scaling"], encoder_blocks),
        "decoder_block_out_channels": (args["decoder_block_out_channels"], decoder_blocks),
        "decoder_spatio_temporal_scaling": (args["decoder_scaling"], decoder_blocks),
        "upsample_type": (args["upsample_type"], decoder_blocks),
        "upsample_residual": (args["residual"], decoder_blocks),
        "upsample_factor": (args["upsample_factor"], decoder_blocks),
        "decoder_inject_noise": (args["inject_noise"], decoder_blocks + 1),
    }
    for name, (value, count) in lengths.items():
        if len(value) != count:
            raise ValueError(f"{name} must have {count} entries (one per block of layers_per_block), got {len(value)}")
    for kind in args["down_block_types"]:
        if kind != "LTX2VideoDownBlock3D":
            raise ValueError(f"down_block_types entries must be 'LTX2VideoDownBlock3D', got {kind!r}")
    for name in ("downsample_type", "upsample_type"):
        for kind in args[name]:
            if kind not in SCALING_STRIDES:
                raise ValueError(f"{name} entries must be one of {sorted(SCALING_STRIDES)}, got {kind!r}")
    for name in ("encoder_spatial_padding_mode", "decoder_spatial_padding_mode"):
        if args[name] not in PADDING_MODES:
            raise ValueError(f"{name} must be one of {PADDING_MODES}, got {args[name]!r}")
    if args["patch_size_t"] != 1:
        raise ValueError(f"patch_size_t must be 1 (the layers are sized for spatial patches), got {args['patch_size_t']}")
    widths = list(args["decoder_block_out_channels"])[::-1]
    width = widths[0]
    for i, factor in enumerate(list(args["upsample_factor"])[::-1]):
        block_in, block_out = width // factor, widths[i] // factor
        # An up block changing width takes `block_in` channels into its first resnet; else its upsampler
        # takes block_out * factor. Either way that must be what the block before it produces.
        expected = block_in if block_in != block_out else block_out * factor
        if expected != width:
            raise ValueError(
                f"decoder_block_out_channels {tuple(args['decoder_block_out_channels'])} with upsample_factor "
                f"{tuple(args['upsample_factor'])}: up block {i} receives {width} channels but is built for {expected}"
            )
        if args["timestep_conditioning"] and block_in != block_out:
            raise ValueError(
                "timestep_conditioning needs up blocks that keep their width (upsample_factor 2 throughout); "
                f"up block {i} goes from {block_in} to {block_out} channels"
            )
        width = block_out
