"""The LTX-2 latent upsampler.

A plain convolutional network on raw (un-normalised) video VAE latents (B, 128, F, H, W): lift to a wide
feature map, refine with residual blocks, upsample by a learned convolution followed by depth-to-space,
refine again, and project back to the latent channels. LTX-2 ships the spatial x2 model (F, H, W) ->
(F, 2H, 2W), whose upsampling runs frame by frame through the rational resampler; the config also selects
temporal upsampling (F -> 2F - 1), both at once, other rational spatial scales, and a per-frame 2-D network.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel

RATIONAL_SCALES = (0.75, 1.5, 2.0, 4.0)  # the scales diffusers' config accepts
GROUP_NORM_GROUPS = 32


def frames_to_batch(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) -> (B*F, C, H, W)"""
    return latents.transpose(1, 2).flatten(0, 1)


def batch_to_frames(images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(B*F, C, H, W) -> (B, C, F, H, W)"""
    return images.unflatten(0, (batch_size, -1)).transpose(1, 2)


def depth_to_space(x: torch.Tensor, factors: tuple[int, ...]) -> torch.Tensor:
    """Move channel sub-blocks into the trailing axes: (N, C*prod(factors), *S) -> (N, C, *(S*factors)).

    Channel c*prod(factors) + (flat index of the offsets) goes to offset i_k along trailing axis k.
    """
    batch_size, _, *sizes = x.shape
    axes = len(factors)
    x = x.reshape(batch_size, -1, *factors, *sizes)  # (N, C, f_1..f_k, s_1..s_k)
    interleaved = [axis for k in range(axes) for axis in (2 + axes + k, 2 + k)]  # s_1, f_1, s_2, f_2, ...
    x = x.permute(0, 1, *interleaved)
    return x.reshape(batch_size, x.shape[1], *(size * factor for size, factor in zip(sizes, factors)))


class ResBlock(nn.Module):
    """Two 3x3(x3) convolutions with group norm; the residual joins before the last SiLU."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv1 = conv(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.GroupNorm(GROUP_NORM_GROUPS, channels)
        self.conv2 = conv(channels, channels, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(GROUP_NORM_GROUPS, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.silu(self.norm1(self.conv1(x)))
        return F.silu(self.norm2(self.conv2(hidden)) + x)


class DepthToSpace(nn.Module):
    def __init__(self, factors: tuple[int, ...]) -> None:
        super().__init__()
        self.factors = factors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(x, self.factors)


class ConvUpsampler(nn.Sequential):
    """Convolution to prod(factors) x the channels, then depth-to-space (checkpoint key `upsampler.0`).

    `factors` are per trailing axis: (2, 2) on frames (N, C, H, W); (2, 1, 1) or (2, 2, 2) on (B, C, F, H, W).
    """

    def __init__(self, channels: int, factors: tuple[int, ...]) -> None:
        conv = nn.Conv2d if len(factors) == 2 else nn.Conv3d
        super().__init__(conv(channels, channels * math.prod(factors), kernel_size=3, padding=1), DepthToSpace(factors))


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling by an integer stride: a depthwise 5x5 binomial blur sampled every `stride`
    pixels. The kernel is a checkpoint buffer; at stride 1 the layer is the identity."""

    def __init__(self, stride: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.stride = stride
        binomial = torch.tensor([math.comb(kernel_size - 1, k) for k in range(kernel_size)], dtype=torch.float32)
        kernel = torch.outer(binomial, binomial)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None])  # (1, 1, k, k)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return images
        channels, kernel_size = images.shape[1], self.kernel.shape[-1]
        weight = self.kernel.to(images.dtype).expand(channels, 1, kernel_size, kernel_size)
        return F.conv2d(images, weight, stride=self.stride, padding=kernel_size // 2, groups=channels)


class SpatialRationalResampler(nn.Module):
    """Scale H and W by num/den on frames (N, C, H, W): upsample by `num` with a learned convolution and
    depth-to-space, then blur-downsample by `den`. For LTX-2's 2.0 the blur is the identity."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        ratio = Fraction(scale).limit_denominator(8)
        self.upscale = ratio.numerator
        self.conv = nn.Conv2d(channels, self.upscale**2 * channels, kernel_size=3, padding=1)
        self.blur_down = BlurDownsample(stride=ratio.denominator)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = depth_to_space(self.conv(images), (self.upscale, self.upscale))  # (N, C, num*H, num*W)
        return self.blur_down(images)


class LTX2LatentUpsamplerModel(PretrainedModel):
    """Upsample raw video VAE latents; the defaults are LTX-2's spatial x2 model (about 498M parameters)."""

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
    ) -> None:
        super().__init__()
        _check_config(mid_channels, dims, spatial_upsample, temporal_upsample, rational_spatial_scale,
                      use_rational_resampler)
        self.in_channels = in_channels
        self.dims = dims
        self.temporal_upsample = temporal_upsample
        conv = nn.Conv2d if dims == 2 else nn.Conv3d

        self.initial_conv = conv(in_channels, mid_channels, kernel_size=3, padding=1)
        self.initial_norm = nn.GroupNorm(GROUP_NORM_GROUPS, mid_channels)
        self.res_blocks = nn.ModuleList([ResBlock(mid_channels, dims) for _ in range(num_blocks_per_stage)])
        if temporal_upsample:
            self.upsampler = ConvUpsampler(mid_channels, (2, 2, 2) if spatial_upsample else (2, 1, 1))
        elif use_rational_resampler:
            self.upsampler = SpatialRationalResampler(mid_channels, rational_spatial_scale)
        else:
            self.upsampler = ConvUpsampler(mid_channels, (2, 2))
        self.post_upsample_res_blocks = nn.ModuleList(
            [ResBlock(mid_channels, dims) for _ in range(num_blocks_per_stage)]
        )
        self.final_conv = conv(mid_channels, in_channels, kernel_size=3, padding=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) -> (B, C, F, 2H, 2W) for LTX-2 (F -> 2F - 1 with temporal upsampling)."""
        self._check_input(hidden_states)
        batch_size = hidden_states.shape[0]
        # The 2-D network sees every frame as an independent image, group norm included.
        x = frames_to_batch(hidden_states) if self.dims == 2 else hidden_states
        x = F.silu(self.initial_norm(self.initial_conv(x)))
        for block in self.res_blocks:
            x = block(x)
        x = self._upsample(x, batch_size)
        for block in self.post_upsample_res_blocks:
            x = block(x)
        x = self.final_conv(x)
        return batch_to_frames(x, batch_size) if self.dims == 2 else x

    def _upsample(self, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        if self.temporal_upsample:
            # Latent frame 0 stands for one video frame and every later one for a group, so doubling F
            # leaves one spare leading frame: 2F - 1.
            return self.upsampler(x)[:, :, 1:]
        if self.dims == 2:
            return self.upsampler(x)
        return batch_to_frames(self.upsampler(frames_to_batch(x)), batch_size)

    def _check_input(self, hidden_states: torch.Tensor) -> None:
        if not isinstance(hidden_states, torch.Tensor) or hidden_states.ndim != 5:
            shape = tuple(hidden_states.shape) if isinstance(hidden_states, torch.Tensor) else type(hidden_states)
            raise ValueError(f"hidden_states must be a 5-D tensor (B, C, F, H, W), got {shape}")
        if hidden_states.shape[1] != self.in_channels:
            raise ValueError(
                f"hidden_states must have in_channels={self.in_channels} channels (dim 1), "
                f"got shape {tuple(hidden_states.shape)}"
            )


def _check_config(
    mid_channels: int, dims: int, spatial_upsample: bool, temporal_upsample: bool, rational_spatial_scale: float,
    use_rational_resampler: bool,
) -> None:
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    if mid_channels % GROUP_NORM_GROUPS != 0:
        raise ValueError(f"mid_channels must be a multiple of {GROUP_NORM_GROUPS} (group norm), got {mid_channels}")
    if not (spatial_upsample or temporal_upsample):
        raise ValueError("spatial_upsample and temporal_upsample are both False; at least one must be True")
    if temporal_upsample and dims == 2:
        raise ValueError("temporal_upsample=True needs dims=3 (the 2-D network works frame by frame)")
    if spatial_upsample and not temporal_upsample and use_rational_resampler and (
        rational_spatial_scale not in RATIONAL_SCALES
    ):
        raise ValueError(f"rational_spatial_scale must be one of {RATIONAL_SCALES}, got {rational_spatial_scale}")
