"""The LTX-2 audio VAE: stereo log-mel spectrograms (B, 2, T, 64) <-> latents (B, 8, T', 16).

A 2D convolutional autoencoder over (time, mel) that is causal along time: every convolution pads only on
the past side, so the first latent frame sees only the first mel frames. Time and frequency shrink by 4
(two stride-2 stages); T mel frames with T = 4k + 1 give k + 1 latent frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel
from .layers import AutoencoderKLOutput, DecoderOutput, DiagonalGaussianDistribution, attention

LATENT_DOWNSAMPLE_FACTOR = 4
CAUSALITY_AXES = ("none", "width", "height", "width-compatibility")


def audio_latent_frames(
    num_frames: int, frame_rate: float, sample_rate: int = 16000, hop_length: int = 160,
    downsample: int = LATENT_DOWNSAMPLE_FACTOR,
) -> int:
    """Audio latent frames for a clip: its duration times the latent rate (16000 / 160 / 4 = 25 per second).

    121 frames at 24 fps -> 126; at 25 fps -> 121.
    """
    latents_per_second = sample_rate / hop_length / float(downsample)
    return round(num_frames / frame_rate * latents_per_second)


class CausalConv2d(nn.Module):
    """Conv2d padded on the past side of the causal axis and symmetrically on the other (keys `<name>.conv`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, causality_axis: str):
        super().__init__()
        total = kernel_size - 1
        centered = (total // 2, total - total // 2)
        if causality_axis == "height":
            self.padding = (*centered, total, 0)  # (left, right, top, bottom); time is the height axis
        elif causality_axis in ("width", "width-compatibility"):
            self.padding = (total, 0, *centered)
        else:
            self.padding = (*centered, *centered)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class PixelNorm(nn.Module):
    """x / sqrt(mean over channels of x^2 + eps), in the input dtype."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


def _norm(norm_type: str, channels: int) -> nn.Module:
    if norm_type == "pixel":
        return PixelNorm()
    if norm_type == "group":
        return nn.GroupNorm(32, channels, eps=1e-6)
    raise ValueError(f"norm_type must be 'pixel' or 'group', got {norm_type!r}")


class ResnetBlock(nn.Module):
    """norm -> SiLU -> conv, twice, plus the input (through a 1x1 conv when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, norm_type: str, causality_axis: str):
        super().__init__()
        self.norm1 = _norm(norm_type, in_channels)
        self.conv1 = CausalConv2d(in_channels, out_channels, 3, causality_axis)
        self.norm2 = _norm(norm_type, out_channels)
        self.conv2 = CausalConv2d(out_channels, out_channels, 3, causality_axis)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.conv1(F.silu(self.norm1(x)))
        hidden = self.conv2(F.silu(self.norm2(hidden)))
        shortcut = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return shortcut + hidden


class AttnBlock(nn.Module):
    """Single-head self-attention over all (time, mel) positions, with 1x1 convolution projections."""

    def __init__(self, channels: int, norm_type: str):
        super().__init__()
        self.norm = _norm(norm_type, channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x)
        # (B, C, H, W) -> (B, 1, H * W, C)
        query, key, value = (proj(normed).flatten(2).transpose(1, 2)[:, None] for proj in (self.q, self.k, self.v))
        out = attention(query, key, value)[:, 0].transpose(1, 2).reshape(x.shape)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 convolution after padding one extra row/column on the side causality allows."""

    PADDING = {"none": (0, 1, 0, 1), "width": (2, 0, 0, 1), "height": (0, 1, 2, 0), "width-compatibility": (1, 0, 0, 1)}

    def __init__(self, channels: int, causality_axis: str):
        super().__init__()
        self.padding = self.PADDING[causality_axis]
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class Upsample(nn.Module):
    """Nearest x2, a causal 3x3 convolution, then drop the first row/column along a causal axis (T -> 2T - 1)."""

    def __init__(self, channels: int, causality_axis: str):
        super().__init__()
        self.causality_axis = causality_axis
        self.conv = CausalConv2d(channels, channels, 3, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        if self.causality_axis == "height":
            return x[:, :, 1:]
        if self.causality_axis == "width":
            return x[:, :, :, 1:]
        return x


class Stage(nn.Module):
    """One resolution level: resnets (each optionally followed by attention) and an optional resampler."""

    def __init__(self, blocks: list[ResnetBlock], attention: list[AttnBlock], resampler: nn.Module | None, name: str):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attention)
        self.resampler_name = name if resampler is not None else None
        if resampler is not None:
            self.add_module(name, resampler)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, block in enumerate(self.block):
            x = block(x)
            if len(self.attn):
                x = self.attn[index](x)
        return getattr(self, self.resampler_name)(x) if self.resampler_name else x


class MidBlock(nn.Module):
    def __init__(self, channels: int, norm_type: str, causality_axis: str, attention: bool):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, norm_type, causality_axis)
        self.attn_1 = AttnBlock(channels, norm_type) if attention else nn.Identity()
        self.block_2 = ResnetBlock(channels, channels, norm_type, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


def _stage(
    in_channels: int, out_channels: int, count: int, with_attention: bool, norm_type: str, causality_axis: str,
    resampler: nn.Module | None, name: str,
) -> Stage:
    blocks = [ResnetBlock(in_channels if i == 0 else out_channels, out_channels, norm_type, causality_axis)
              for i in range(count)]
    attention = [AttnBlock(out_channels, norm_type) for _ in range(count)] if with_attention else []
    return Stage(blocks, attention, resampler, name)


class Encoder(nn.Module):
    def __init__(
        self, base_channels: int, ch_mult: tuple[int, ...], num_res_blocks: int, attn_resolutions: set[int],
        in_channels: int, resolution: int, z_channels: int, norm_type: str, causality_axis: str, mid_attention: bool,
    ):
        super().__init__()
        self.conv_in = CausalConv2d(in_channels, base_channels, 3, causality_axis)
        self.down = nn.ModuleList()
        channels, size = base_channels, resolution
        for level, multiplier in enumerate(ch_mult):
            last = level == len(ch_mult) - 1
            out_channels = base_channels * multiplier
            downsample = None if last else Downsample(out_channels, causality_axis)
            self.down.append(_stage(channels, out_channels, num_res_blocks, size in attn_resolutions, norm_type,
                                    causality_axis, downsample, "downsample"))
            channels, size = out_channels, size if last else size // 2
        self.mid = MidBlock(channels, norm_type, causality_axis, mid_attention)
        self.norm_out = _norm(norm_type, channels)
        self.conv_out = CausalConv2d(channels, z_channels, 3, causality_axis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for stage in self.down:
            x = stage(x)
        return self.conv_out(F.silu(self.norm_out(self.mid(x))))


class Decoder(nn.Module):
    def __init__(
        self, base_channels: int, ch_mult: tuple[int, ...], num_res_blocks: int, attn_resolutions: set[int],
        out_channels: int, resolution: int, latent_channels: int, norm_type: str, causality_axis: str,
        mid_attention: bool,
    ):
        super().__init__()
        channels = base_channels * ch_mult[-1]
        size = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = CausalConv2d(latent_channels, channels, 3, causality_axis)
        self.mid = MidBlock(channels, norm_type, causality_axis, mid_attention)
        stages = []
        for level in reversed(range(len(ch_mult))):
            stage_channels = base_channels * ch_mult[level]
            upsample = Upsample(stage_channels, causality_axis) if level else None
            stages.append(_stage(channels, stage_channels, num_res_blocks + 1, size in attn_resolutions, norm_type,
                                 causality_axis, upsample, "upsample"))
            channels, size = stage_channels, size * 2 if level else size
        self.up = nn.ModuleList(reversed(stages))  # stored finest level first, as in the checkpoint
        self.norm_out = _norm(norm_type, channels)
        self.conv_out = CausalConv2d(channels, out_channels, 3, causality_axis)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            x = stage(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class AutoencoderKLLTX2Audio(PretrainedModel):
    """The LTX-2 audio VAE. Defaults are the 19B model's; `latents_mean`/`latents_std` normalize packed latents."""

    single_file_component = "audio_vae"

    temporal_compression_ratio = LATENT_DOWNSAMPLE_FACTOR
    mel_compression_ratio = LATENT_DOWNSAMPLE_FACTOR

    def __init__(
        self,
        base_channels: int = 128,
        output_channels: int = 2,
        ch_mult: tuple[int, ...] = (1, 2, 4),
        num_res_blocks: int = 2,
        attn_resolutions: tuple[int, ...] | None = None,
        in_channels: int = 2,
        resolution: int = 256,
        latent_channels: int = 8,
        norm_type: str = "pixel",
        causality_axis: str = "height",
        dropout: float = 0.0,
        mid_block_add_attention: bool = False,
        sample_rate: int = 16000,
        mel_hop_length: int = 160,
        is_causal: bool = True,
        mel_bins: int | None = 64,
        double_z: bool = True,
    ):
        super().__init__()
        if causality_axis not in CAUSALITY_AXES:
            raise ValueError(f"causality_axis must be one of {CAUSALITY_AXES}, got {causality_axis!r}")
        attention = set(attn_resolutions or ())
        shared = (base_channels, tuple(ch_mult), num_res_blocks, attention)
        self.encoder = Encoder(*shared, in_channels, resolution, latent_channels * (2 if double_z else 1), norm_type,
                               causality_axis, mid_block_add_attention)
        self.decoder = Decoder(*shared, output_channels, resolution, latent_channels, norm_type, causality_axis,
                               mid_block_add_attention)
        # Sized by base_channels in the checkpoint; for LTX-2 that equals the 8 x 16 packed latent features.
        self.register_buffer("latents_mean", torch.zeros(base_channels))
        self.register_buffer("latents_std", torch.ones(base_channels))

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple[DiagonalGaussianDistribution]:
        """(B, in_channels, T, mel_bins) log-mel -> posterior over (B, latent_channels, T', mel_bins / 4)."""
        config = self.config
        if x.ndim != 4 or x.shape[1] != config.in_channels:
            raise ValueError(f"mel must be (batch, {config.in_channels}, frames, mel_bins), got {tuple(x.shape)}")
        if config.mel_bins is not None and x.shape[3] != config.mel_bins:
            raise ValueError(f"mel has {x.shape[3]} mel bins but the config says mel_bins={config.mel_bins}")
        posterior = DiagonalGaussianDistribution(*self.encoder(x).chunk(2, dim=1))  # means, then log-variances
        return AutoencoderKLOutput(posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple[torch.Tensor]:
        """(B, latent_channels, T', M') -> mel (B, output_channels, 4 T' - 3, mel_bins), cropped or zero-padded."""
        config = self.config
        if z.ndim != 4 or z.shape[1] != config.latent_channels:
            raise ValueError(f"z must be (batch, {config.latent_channels}, frames, bins), got {tuple(z.shape)}")
        frames = max(z.shape[2] * LATENT_DOWNSAMPLE_FACTOR - (LATENT_DOWNSAMPLE_FACTOR - 1), 1)
        bins = config.mel_bins or z.shape[3]
        mel = self.decoder(z)[:, :, :frames, :bins]
        mel = F.pad(mel, (0, bins - mel.shape[3], 0, frames - mel.shape[2]))
        return DecoderOutput(mel) if return_dict else (mel,)

    def forward(
        self, sample: torch.Tensor, sample_posterior: bool = False, return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        posterior = self.encode(sample).latent_dist
        latents = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(latents, return_dict=return_dict)
