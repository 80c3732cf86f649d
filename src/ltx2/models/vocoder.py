"""The LTX-2 vocoder: stereo mel spectrograms (B, 2, T, 64) -> waveforms (B, 2, 240 T) at 24 kHz.

HiFi-GAN style: a 1D convolution over the 2 x 64 mel channels, then five transposed-convolution upsamplers
(x6, x5, x2, x2, x2), each followed by three parallel dilated residual stacks (kernels 3, 7, 11) whose outputs
are averaged, and a final convolution to the output channels with tanh.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel


class ResBlock(nn.Module):
    """For each dilation d: x += conv(leaky(conv_d(leaky(x)))), "same" padding throughout."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int], negative_slope: float):
        super().__init__()
        self.negative_slope = negative_slope
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding="same") for dilation in dilations
        )
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding="same") for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            hidden = dilated(F.leaky_relu(x, self.negative_slope))
            x = x + plain(F.leaky_relu(hidden, self.negative_slope))
        return x


class LTX2Vocoder(PretrainedModel):
    """Mel -> waveform. Defaults are the LTX-2 19B vocoder's; `config.output_sampling_rate` is 24 kHz."""

    single_file_component = "vocoder"

    neutral_config = {"act_fn": "leaky_relu", "antialias": False, "antialias_ratio": 2, "antialias_kernel_size": 12}

    def __init__(
        self,
        in_channels: int = 128,
        hidden_channels: int = 1024,
        out_channels: int = 2,
        upsample_kernel_sizes: list[int] = (16, 15, 8, 4, 4),
        upsample_factors: list[int] = (6, 5, 2, 2, 2),
        resnet_kernel_sizes: list[int] = (3, 7, 11),
        resnet_dilations: list[list[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        leaky_relu_negative_slope: float = 0.1,
        final_act_fn: str | None = "tanh",
        final_bias: bool = True,
        output_sampling_rate: int = 24000,
    ):
        super().__init__()
        if len(upsample_kernel_sizes) != len(upsample_factors):
            raise ValueError("upsample_kernel_sizes and upsample_factors must have the same length")
        if len(resnet_kernel_sizes) != len(resnet_dilations):
            raise ValueError("resnet_kernel_sizes and resnet_dilations must have the same length")
        if final_act_fn not in ("tanh", "clamp", None):
            raise ValueError(f"final_act_fn must be 'tanh', 'clamp' or None, got {final_act_fn!r}")
        self.conv_in = nn.Conv1d(in_channels, hidden_channels, 7, padding=3)
        self.upsamplers = nn.ModuleList()
        self.resnets = nn.ModuleList()
        channels = hidden_channels
        for factor, kernel_size in zip(upsample_factors, upsample_kernel_sizes):
            # Padding (k - s) / 2 makes each stage multiply the length by exactly its factor.
            self.upsamplers.append(
                nn.ConvTranspose1d(channels, channels // 2, kernel_size, stride=factor, padding=(kernel_size - factor) // 2)
            )
            channels //= 2
            self.resnets.extend(
                ResBlock(channels, size, list(dilations), leaky_relu_negative_slope)
                for size, dilations in zip(resnet_kernel_sizes, resnet_dilations)
            )
        self.conv_out = nn.Conv1d(channels, out_channels, 7, padding=3, bias=final_bias)

    @property
    def upsample_factor(self) -> int:
        return math.prod(self.config.upsample_factors)

    def forward(self, hidden_states: torch.Tensor, time_last: bool = False) -> torch.Tensor:
        """(B, channels, T, mel) mel (or (B, channels, mel, T) with time_last) -> (B, out_channels, T * upsample)."""
        config = self.config
        if hidden_states.ndim != 4:
            raise ValueError(f"mel must be 4D (batch, channels, frames, mel_bins), got {tuple(hidden_states.shape)}")
        mel = hidden_states if time_last else hidden_states.transpose(2, 3)
        if mel.shape[1] * mel.shape[2] != config.in_channels:
            raise ValueError(
                f"mel has {mel.shape[1]} channels x {mel.shape[2]} mel bins = {mel.shape[1] * mel.shape[2]}, "
                f"but the vocoder takes in_channels={config.in_channels}"
            )
        x = self.conv_in(mel.flatten(1, 2))  # (B, channels * mel, T) -> (B, hidden, T)
        per_stage = len(config.resnet_kernel_sizes)
        for stage, upsampler in enumerate(self.upsamplers):
            x = upsampler(F.leaky_relu(x, config.leaky_relu_negative_slope))
            stacks = self.resnets[stage * per_stage : (stage + 1) * per_stage]
            x = torch.stack([stack(x) for stack in stacks]).mean(dim=0)
        # The last activation uses PyTorch's default slope (0.01), as the original model does.
        x = self.conv_out(F.leaky_relu(x))
        if config.final_act_fn == "tanh":
            return torch.tanh(x)
        return x.clamp(-1, 1) if config.final_act_fn == "clamp" else x
