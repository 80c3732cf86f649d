"""The LTX-2 vocoders: mel spectrogram (B, 2, T, 64) -> stereo waveform.

LTX2Vocoder is HiFi-GAN style: a 1D convolution over the 2 x 64 mel channels, then transposed-convolution
upsamplers, each followed by three parallel dilated residual stacks (kernels 3, 7, 11) whose outputs are
averaged, and a final convolution. LTX-2.0's (x6, x5, x2, x2, x2 to 24 kHz) uses leaky ReLUs and a tanh.
LTX-2.3's (BigVGAN v2 style, x5 then five x2 to 16 kHz) uses snake-beta activations, each evaluated at
twice the sample rate between Kaiser-windowed sinc low-pass filters so that it does not alias.

LTX2VocoderWithBWE (LTX-2.3) extends the bandwidth to 48 kHz: it takes the log-mel spectrogram of the
16 kHz waveform, predicts a residual from it with a second vocoder, and adds it to the waveform resampled
x3 with a Hann-windowed sinc filter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..loading import PretrainedModel

ACTIVATIONS = ("leaky_relu", "snake", "snakebeta")


# ----------------------------------------------------------------------------------------------------------
# Sinc filters and resampling


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """A low-pass FIR filter (kernel_size,) with `cutoff` in cycles per sample, Kaiser-windowed, summing to 1.

    The window's beta follows Kaiser's design rule for a transition band of 4 * half_width.
    """
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    # Taps sit symmetrically about the centre: half-integer offsets for an even length.
    offsets = torch.arange(kernel_size) - half + (0.5 if kernel_size % 2 == 0 else 0.0)
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * offsets)
    return taps / taps.sum()


class SincUpsample(nn.Module):
    """Integer-ratio upsampling: zero-stuffing and low-pass filtering (a transposed conv with `filter`),
    the input's edges replicated by `pad` samples and the result cropped back to ratio x the input length."""

    def __init__(self, ratio: int, taps: torch.Tensor, pad: int, crop: tuple[int, int], persistent: bool = True):
        super().__init__()
        self.ratio, self.pad, self.crop = ratio, pad, crop
        self.register_buffer("filter", taps.view(1, 1, -1), persistent=persistent)

    @classmethod
    def kaiser(cls, ratio: int, kernel_size: int) -> SincUpsample:
        pad = kernel_size // ratio - 1
        crop = (pad * ratio + (kernel_size - ratio) // 2, pad * ratio + (kernel_size - ratio + 1) // 2)
        return cls(ratio, kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size), pad, crop)

    @classmethod
    def hann(cls, ratio: int, zero_crossings: int = 6, rolloff: float = 0.99) -> SincUpsample:
        """Band-limited interpolation with a Hann-windowed sinc over `zero_crossings` input samples each side."""
        width = math.ceil(zero_crossings / rolloff)
        kernel_size = 2 * width * ratio + 1
        # Not in the checkpoint, so built on the CPU even when the model is built on the meta device.
        times = (torch.arange(kernel_size, device="cpu") / ratio - width) * rolloff
        window = torch.cos(times.clamp(-zero_crossings, zero_crossings) * math.pi / (2 * zero_crossings)) ** 2
        taps = torch.sinc(times) * window * rolloff / ratio
        return cls(ratio, taps, width, (2 * width * ratio, kernel_size - ratio), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, C, ratio * L)"""
        channels = x.shape[1]
        # Zero-stuffing keeps 1 sample in `ratio`: the filter's gain makes up for it.
        weight = (self.filter.to(x.device, x.dtype) * self.ratio).expand(channels, -1, -1)
        out = F.conv_transpose1d(replicate_pad(x, self.pad, self.pad), weight, stride=self.ratio, groups=channels)
        return out[..., self.crop[0] : out.shape[-1] - self.crop[1]]


class SincDownsample(nn.Module):
    """Integer-ratio downsampling: a Kaiser-windowed sinc low-pass filter applied with stride `ratio`."""

    def __init__(self, ratio: int, kernel_size: int):
        super().__init__()
        self.ratio = ratio
        self.pad = (kernel_size // 2 - (1 - kernel_size % 2), kernel_size // 2)
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size).view(1, 1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, C, L / ratio)"""
        channels = x.shape[1]
        weight = self.filter.to(x.device, x.dtype).expand(channels, -1, -1)
        return F.conv1d(replicate_pad(x, *self.pad), weight, stride=self.ratio, groups=channels)


def replicate_pad(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Extend (B, C, L) by copies of its first and last samples (faster on CPU than F.pad's "replicate")."""
    return torch.cat([x[..., :1].expand(-1, -1, before), x, x[..., -1:].expand(-1, -1, after)], dim=-1)


# ----------------------------------------------------------------------------------------------------------
# Activations


class SnakeBeta(nn.Module):
    """x + sin(a x)^2 / b per channel, a = exp(alpha), b = exp(beta) (or b = a without `beta`: snake)."""

    def __init__(self, channels: int, use_beta: bool = True):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels)) if use_beta else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, L) -> (B, C, L)"""
        frequency = self.alpha.exp()[:, None]
        amplitude = frequency if self.beta is None else self.beta.exp()[:, None]
        return torch.addcmul(x, torch.sin(x * frequency).square(), 1 / (amplitude + 1e-9))


class AntiAliased(nn.Module):
    """An activation evaluated at `ratio` x the sample rate, between sinc upsampling and downsampling."""

    def __init__(self, act: nn.Module, ratio: int, kernel_size: int):
        super().__init__()
        self.upsample = SincUpsample.kaiser(ratio, kernel_size)
        self.act = act
        self.downsample = SincDownsample(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def activation_factory(
    act_fn: str, negative_slope: float, antialias: bool, ratio: int, kernel_size: int
) -> Callable[[int], nn.Module]:
    """channels -> a new activation module of the kind the config names."""

    def make(channels: int) -> nn.Module:
        if act_fn == "leaky_relu":
            return nn.LeakyReLU(negative_slope)
        act = SnakeBeta(channels, use_beta=act_fn == "snakebeta")
        return AntiAliased(act, ratio, kernel_size) if antialias else act

    return make


# ----------------------------------------------------------------------------------------------------------
# The vocoder


class ResBlock(nn.Module):
    """For each dilation d: x += conv(act(conv_d(act(x)))), "same" padding throughout."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int], activation: Callable[[int], nn.Module]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding="same") for dilation in dilations
        )
        self.acts1 = nn.ModuleList(activation(channels) for _ in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding="same") for _ in dilations)
        self.acts2 = nn.ModuleList(activation(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for act1, dilated, act2, plain in zip(self.acts1, self.convs1, self.acts2, self.convs2):
            x = x + plain(act2(dilated(act1(x))))
        return x


class LTX2Vocoder(PretrainedModel):
    """Mel -> waveform. Defaults are the LTX-2 19B vocoder's; `config.output_sampling_rate` is 24 kHz."""

    single_file_component = "vocoder"
    single_file_versions = ("2.0",)  # LTX-2.3 files hold an LTX2VocoderWithBWE

    def __init__(
        self,
        in_channels: int = 128,
        hidden_channels: int = 1024,
        out_channels: int = 2,
        upsample_kernel_sizes: list[int] = (16, 15, 8, 4, 4),
        upsample_factors: list[int] = (6, 5, 2, 2, 2),
        resnet_kernel_sizes: list[int] = (3, 7, 11),
        resnet_dilations: list[list[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        act_fn: str = "leaky_relu",
        leaky_relu_negative_slope: float = 0.1,
        antialias: bool = False,
        antialias_ratio: int = 2,
        antialias_kernel_size: int = 12,
        final_act_fn: str | None = "tanh",
        final_bias: bool = True,
        output_sampling_rate: int = 24000,
    ):
        super().__init__()
        if len(upsample_kernel_sizes) != len(upsample_factors):
            raise ValueError("upsample_kernel_sizes and upsample_factors must have the same length")
        if len(resnet_kernel_sizes) != len(resnet_dilations):
            raise ValueError("resnet_kernel_sizes and resnet_dilations must have the same length")
        if act_fn not in ACTIVATIONS:
            raise ValueError(f"act_fn must be one of {ACTIVATIONS}, got {act_fn!r}")
        if antialias and act_fn == "leaky_relu":
            raise ValueError("antialias=True needs act_fn 'snake' or 'snakebeta' (no LTX vocoder anti-aliases ReLUs)")
        if final_act_fn not in ("tanh", "clamp", None):
            raise ValueError(f"final_act_fn must be 'tanh', 'clamp' or None, got {final_act_fn!r}")
        activation = activation_factory(
            act_fn, leaky_relu_negative_slope, antialias, antialias_ratio, antialias_kernel_size
        )
        self.conv_in = nn.Conv1d(in_channels, hidden_channels, 7, padding=3)
        self.upsamplers = nn.ModuleList()
        self.resnets = nn.ModuleList()
        channels = hidden_channels
        for factor, kernel_size in zip(upsample_factors, upsample_kernel_sizes):
            # Padding (k - s) / 2 makes each stage multiply the length by exactly its factor.
            padding = (kernel_size - factor) // 2
            self.upsamplers.append(nn.ConvTranspose1d(channels, channels // 2, kernel_size, factor, padding))
            channels //= 2
            self.resnets.extend(
                ResBlock(channels, size, list(dilations), activation)
                for size, dilations in zip(resnet_kernel_sizes, resnet_dilations)
            )
        if act_fn == "leaky_relu":
            # PyTorch's default slope (0.01), as the original model has it.
            self.act_out = nn.LeakyReLU()
        else:
            # Snake-beta and anti-aliased whatever act_fn and antialias say, as in the reference.
            self.act_out = AntiAliased(SnakeBeta(channels), antialias_ratio, antialias_kernel_size)
        self.conv_out = nn.Conv1d(channels, out_channels, 7, padding=3, bias=final_bias)

    @property
    def upsample_factor(self) -> int:
        """Output samples per mel frame."""
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
            if config.act_fn == "leaky_relu":
                # Snake activations live inside the residual stacks; leaky ReLU also precedes each upsampler.
                x = F.leaky_relu(x, config.leaky_relu_negative_slope)
            x = upsampler(x)
            first, *others = self.resnets[stage * per_stage : (stage + 1) * per_stage]
            total = first(x)  # the mean of the parallel stacks, without stacking their outputs
            for stack in others:
                total = total + stack(x)
            x = total / per_stage
        x = self.conv_out(self.act_out(x))
        if config.final_act_fn == "tanh":
            return torch.tanh(x)
        return x.clamp(-1, 1) if config.final_act_fn == "clamp" else x


# ----------------------------------------------------------------------------------------------------------
# Bandwidth extension


class CausalSTFT(nn.Module):
    """Magnitudes of a short-time Fourier transform with windows that end at each hop (left padding only).

    The windowed DFT bases are buffers read from the checkpoint (real parts, then imaginary parts);
    `inverse_basis` is stored there too but not needed to analyse.
    """

    def __init__(self, filter_length: int, hop_length: int, window_length: int):
        super().__init__()
        self.hop_length, self.window_length = hop_length, window_length
        bases = 2 * (filter_length // 2 + 1)
        self.register_buffer("forward_basis", torch.zeros(bases, 1, filter_length))
        self.register_buffer("inverse_basis", torch.zeros(bases, 1, filter_length))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, L) -> (N, filter_length / 2 + 1, L / hop)"""
        padded = F.pad(waveform[:, None], (max(0, self.window_length - self.hop_length), 0))
        spectrum = F.conv1d(padded, self.forward_basis.to(waveform.dtype), stride=self.hop_length)
        real, imaginary = spectrum.chunk(2, dim=1)
        return torch.sqrt(real.square() + imaginary.square())


class MelSTFT(nn.Module):
    """Waveforms -> log mel spectrograms, with the checkpoint's mel filterbank (`mel_basis`)."""

    def __init__(self, filter_length: int, hop_length: int, window_length: int, num_mel_channels: int):
        super().__init__()
        self.stft_fn = CausalSTFT(filter_length, hop_length, window_length)
        self.register_buffer("mel_basis", torch.zeros(num_mel_channels, filter_length // 2 + 1))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, L) -> (N, mels, L / hop)"""
        magnitude = self.stft_fn(waveform)
        return torch.log(torch.matmul(self.mel_basis.to(magnitude.dtype), magnitude).clamp(min=1e-5))


class LTX2VocoderWithBWE(PretrainedModel):
    """Mel -> 16 kHz waveform -> 48 kHz waveform. Defaults are the LTX-2.3 vocoder's.

    `vocoder` and `bwe_generator` are LTX2Vocoders built from the plain and the `bwe_`-prefixed keys.
    """

    single_file_component = "vocoder"
    single_file_versions = ("2.3", "2.5")

    def __init__(
        self,
        in_channels: int = 128,
        hidden_channels: int = 1536,
        out_channels: int = 2,
        upsample_kernel_sizes: list[int] = (11, 4, 4, 4, 4, 4),
        upsample_factors: list[int] = (5, 2, 2, 2, 2, 2),
        resnet_kernel_sizes: list[int] = (3, 7, 11),
        resnet_dilations: list[list[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        act_fn: str = "snakebeta",
        leaky_relu_negative_slope: float = 0.1,
        antialias: bool = True,
        antialias_ratio: int = 2,
        antialias_kernel_size: int = 12,
        final_act_fn: str | None = None,
        final_bias: bool = False,
        bwe_in_channels: int = 128,
        bwe_hidden_channels: int = 512,
        bwe_out_channels: int = 2,
        bwe_upsample_kernel_sizes: list[int] = (12, 11, 4, 4, 4),
        bwe_upsample_factors: list[int] = (6, 5, 2, 2, 2),
        bwe_resnet_kernel_sizes: list[int] = (3, 7, 11),
        bwe_resnet_dilations: list[list[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        bwe_act_fn: str = "snakebeta",
        bwe_leaky_relu_negative_slope: float = 0.1,
        bwe_antialias: bool = True,
        bwe_antialias_ratio: int = 2,
        bwe_antialias_kernel_size: int = 12,
        bwe_final_act_fn: str | None = None,
        bwe_final_bias: bool = False,
        filter_length: int = 512,
        hop_length: int = 80,
        window_length: int = 512,
        num_mel_channels: int = 64,
        input_sampling_rate: int = 16000,
        output_sampling_rate: int = 48000,
    ):
        super().__init__()
        arguments = locals()
        if output_sampling_rate % input_sampling_rate:
            raise ValueError(
                f"output_sampling_rate ({output_sampling_rate}) must be a multiple of "
                f"input_sampling_rate ({input_sampling_rate})"
            )
        ratio = output_sampling_rate // input_sampling_rate
        # The residual and the resampled waveform must line up: one spectrogram frame per hop (windows as
        # long as the DFT), and hop samples in -> ratio * hop samples out.
        for key, value, expected in (
            ("window_length", window_length, filter_length),
            ("bwe_upsample_factors", math.prod(bwe_upsample_factors), hop_length * ratio),
            ("bwe_in_channels", bwe_in_channels, out_channels * num_mel_channels),
            ("bwe_out_channels", bwe_out_channels, out_channels),
        ):
            if value != expected:
                raise ValueError(f"{key} gives {value}, but bandwidth extension needs {expected}")
        generator_keys = LTX2Vocoder.config_keys()
        self.vocoder = LTX2Vocoder(
            **{key: arguments[key] for key in generator_keys if key != "output_sampling_rate"},
            output_sampling_rate=input_sampling_rate,
        )
        self.bwe_generator = LTX2Vocoder(
            **{key: arguments[f"bwe_{key}"] for key in generator_keys if key != "output_sampling_rate"},
            output_sampling_rate=output_sampling_rate,
        )
        self.mel_stft = MelSTFT(filter_length, hop_length, window_length, num_mel_channels)
        self.resampler = SincUpsample.hann(ratio)

    @property
    def upsample_factor(self) -> int:
        """Output samples (at output_sampling_rate) per mel frame."""
        config = self.config
        return self.vocoder.upsample_factor * config.output_sampling_rate // config.input_sampling_rate

    def forward(self, mel_spec: torch.Tensor) -> torch.Tensor:
        """(B, channels, T, mel) mel -> (B, out_channels, T * upsample_factor) in [-1, 1]."""
        config = self.config
        waveform = self.vocoder(mel_spec)  # (B, C, L) at input_sampling_rate
        batch, channels, length = waveform.shape
        # Whole hops only, so that the spectrogram has exactly L / hop frames.
        waveform = F.pad(waveform, (0, -length % config.hop_length))
        mel = self.mel_stft(waveform.flatten(0, 1)).unflatten(0, (batch, channels))  # (B, C, mels, frames)
        extended = self.bwe_generator(mel, time_last=True) + self.resampler(waveform)
        return extended.clamp(-1, 1)[..., : length * config.output_sampling_rate // config.input_sampling_rate]
