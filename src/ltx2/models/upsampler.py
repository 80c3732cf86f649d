"""The LTX-2 latent upsampler: raw video VAE latents (B, 128, F, H, W) -> (B, 128, F, 2H, 2W).

A convolutional network at 1024 channels: a stem, residual blocks, a sub-pixel upsampling layer (per frame
for spatial scaling), more residual blocks, and a projection back to the latent channels. Non-integer
spatial scales upsample by the numerator and then blur-and-stride down by the denominator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel

# Spatial scale -> (upsampling factor, downsampling stride).
RATIONAL_SCALES = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}


def _conv(dims: int, in_channels: int, out_channels: int) -> nn.Module:
    return (nn.Conv2d if dims == 2 else nn.Conv3d)(in_channels, out_channels, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """conv -> GroupNorm -> SiLU -> conv -> GroupNorm, added to the input, then SiLU."""

    def __init__(self, channels: int, dims: int):
        super().__init__()
        self.conv1 = _conv(dims, channels, channels)
        self.norm1 = nn.GroupNorm(32, channels)
        self.conv2 = _conv(dims, channels, channels)
        self.norm2 = nn.GroupNorm(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.silu(self.norm1(self.conv1(x)))
        return F.silu(self.norm2(self.conv2(hidden)) + x)


def depth_to_space(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Sub-pixel shuffle over the len(factors) axes after the channels; any further axes are left alone.

    (B, C * f1 * ... * fn, d1, ..., dn, ...) -> (B, C, d1 * f1, ..., dn * fn, ...); the channel c * prod(f) + offset
    moves to that offset within its block.
    """
    count = len(factors)
    batch, sizes, rest = x.shape[0], x.shape[2 : 2 + count], x.shape[2 + count :]
    x = x.reshape(batch, -1, *factors, *sizes, *rest)  # (B, C, f1..fn, d1..dn, ...)
    # Interleave each size with its factor: (B, C, d1, f1, ..., dn, fn, ...).
    interleaved = [index for axis in range(count) for index in (2 + count + axis, 2 + axis)]
    x = x.permute([0, 1, *interleaved, *range(2 + 2 * count, x.ndim)])
    return x.reshape(batch, x.shape[1], *(size * factor for size, factor in zip(sizes, factors)), *rest)


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling of (N, C, H, W) by an integer stride with a normalized binomial kernel."""

    def __init__(self, stride: int, kernel_size: int = 5):
        super().__init__()
        self.stride = stride
        taps = torch.tensor([math.comb(kernel_size - 1, k) for k in range(kernel_size)], dtype=torch.float32)
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None])  # (1, 1, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        channels, size = x.shape[1], self.kernel.shape[-1]
        weight = self.kernel.to(x.dtype).expand(channels, 1, size, size)
        return F.conv2d(x, weight, stride=self.stride, padding=size // 2, groups=channels)


class RationalResampler(nn.Module):
    """Per-frame spatial scaling by num/den: sub-pixel upsampling by num, blurred striding by den."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        if scale not in RATIONAL_SCALES:
            raise ValueError(f"rational_spatial_scale must be one of {sorted(RATIONAL_SCALES)}, got {scale}")
        self.factor, stride = RATIONAL_SCALES[scale]
        self.conv = nn.Conv2d(channels, self.factor**2 * channels, kernel_size=3, padding=1)
        self.blur_down = BlurDownsample(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur_down(depth_to_space(self.conv(x), (self.factor, self.factor)))


class SubPixelUpsampler(nn.Sequential):
    """conv to `prod(factors)` times the channels, then depth-to-space (checkpoint keys `upsampler.0.*`)."""

    def __init__(self, channels: int, factors: tuple[int, ...]):
        conv = (nn.Conv2d if len(factors) == 2 else nn.Conv3d)(channels, math.prod(factors) * channels, 3, padding=1)
        super().__init__(conv)
        self.factors = factors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(self[0](x), self.factors)


class LTX2LatentUpsamplerModel(PretrainedModel):
    """Spatial (and optionally temporal) latent upsampler. Defaults are the LTX-2 spatial x2 model's."""

    single_file_component = "latent_upsampler"

    def __init__(
        self,
        in_channels: int = 128,
        mid_channels: int = 1024,
        num_blocks_per_stage: int = 4,
        dims: int = 3,
        spatial_upsample: bool = True,
        temporal_upsample: bool = False,
        rational_spatial_scale: float = 2.0,
        use_rational_resampler: bool = True,
    ):
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        if mid_channels % 32 != 0:
            raise ValueError(f"mid_channels must be a multiple of 32 (the group-norm groups), got {mid_channels}")
        if not (spatial_upsample or temporal_upsample):
            raise ValueError("at least one of spatial_upsample and temporal_upsample must be True")
        if temporal_upsample and dims == 2:
            raise ValueError("temporal_upsample needs dims=3")
        self.initial_conv = _conv(dims, in_channels, mid_channels)
        self.initial_norm = nn.GroupNorm(32, mid_channels)
        self.res_blocks = nn.ModuleList(ResBlock(mid_channels, dims) for _ in range(num_blocks_per_stage))
        if spatial_upsample and temporal_upsample:
            self.upsampler = SubPixelUpsampler(mid_channels, (2, 2, 2))
        elif temporal_upsample:
            self.upsampler = SubPixelUpsampler(mid_channels, (2,))
        elif use_rational_resampler:
            self.upsampler = RationalResampler(mid_channels, rational_spatial_scale)
        else:
            self.upsampler = SubPixelUpsampler(mid_channels, (2, 2))
        self.post_upsample_res_blocks = nn.ModuleList(ResBlock(mid_channels, dims) for _ in range(num_blocks_per_stage))
        self.final_conv = _conv(dims, mid_channels, in_channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) raw latents -> upsampled raw latents."""
        config = self.config
        if (
            not isinstance(hidden_states, torch.Tensor)
            or hidden_states.ndim != 5
            or hidden_states.shape[1] != config.in_channels
        ):
            raise ValueError(
                f"hidden_states must be latents (batch, {config.in_channels}, frames, height, width), "
                f"got {_describe(hidden_states)}"
            )
        batch = hidden_states.shape[0]
        per_frame = config.dims == 2
        x = frames_as_batch(hidden_states) if per_frame else hidden_states
        x = F.silu(self.initial_norm(self.initial_conv(x)))
        for block in self.res_blocks:
            x = block(x)
        if config.temporal_upsample:
            # Time doubles as 2F - 1: the first output frame, which precedes the causal first frame, is dropped.
            x = self.upsampler(x)[:, :, 1:]
        elif per_frame:
            x = self.upsampler(x)
        else:
            x = batch_as_frames(self.upsampler(frames_as_batch(x)), batch)
        for block in self.post_upsample_res_blocks:
            x = block(x)
        x = self.final_conv(x)
        return batch_as_frames(x, batch) if per_frame else x


def frames_as_batch(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) -> (B * F, C, H, W)"""
    return x.transpose(1, 2).flatten(0, 1)


def batch_as_frames(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B * F, C, H, W) -> (B, C, F, H, W)"""
    return x.unflatten(0, (batch, -1)).transpose(1, 2)


def _describe(value: object) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def adain_filter_latent(latents: torch.Tensor, reference_latents: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Match each (sample, channel) of `latents` to the mean and std of `reference_latents`, then blend by `factor`.

    Statistics are over all dims after the channels (unbiased std); the two tensors may differ in those sizes.
    """
    if not isinstance(latents, torch.Tensor) or latents.ndim < 3:
        raise ValueError(f"latents must be a tensor (batch, channels, ...) with >= 3 dims, got {_describe(latents)}")
    if not isinstance(reference_latents, torch.Tensor) or (
        reference_latents.ndim != latents.ndim or reference_latents.shape[:2] != latents.shape[:2]
    ):
        raise ValueError(
            f"reference_latents must have the ndim, batch and channels of latents {tuple(latents.shape)}, "
            f"got {_describe(reference_latents)}"
        )
    dims = tuple(range(2, latents.ndim))
    std, mean = torch.std_mean(latents, dim=dims, keepdim=True)
    reference_std, reference_mean = torch.std_mean(reference_latents, dim=dims, keepdim=True)
    matched = ((latents - mean) / std * reference_std + reference_mean).to(latents.dtype)
    return torch.lerp(latents, matched, factor)


def tone_map_latents(latents: torch.Tensor, compression: float) -> torch.Tensor:
    """Softly compress large latent values: x * (1 - 0.8 s sigmoid(4 s (|x| - 1))) with s = 0.75 * compression."""
    if not 0.0 <= compression <= 1.0:
        raise ValueError(f"compression must be in [0, 1], got {compression}")
    strength = 0.75 * compression
    return latents * (1 - 0.8 * strength * torch.sigmoid(4 * strength * (latents.abs() - 1)))
