"""The audio front end: any audio -> the stereo log-mel spectrogram the LTX-2 audio VAE encodes.

LTX-2's definition (as its preprocessing computes it): resample to 16 kHz; for each channel, the magnitude
(power 1) of a centered STFT with a 1024-point periodic Hann window, n_fft 1024 and hop 160 (reflect padding
at the edges); project onto 64 Slaney-scale mel bands between 0 and 8000 Hz, each band a triangle normalized
to unit area (Slaney norm: 2 / band width in Hz); take log(max(mel, 1e-5)). 100 mel frames per second.
"""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 160
MEL_BINS = 64
F_MAX = 8000.0
LOG_FLOOR = 1e-5


def load_audio(source: str | Path | np.ndarray | torch.Tensor, sample_rate: int | None = None) -> tuple[torch.Tensor, int]:
    """(channels, samples) float32 in [-1, 1] and its sample rate, from a file (decoded with PyAV) or a waveform.

    A waveform needs its `sample_rate`; (samples,) is mono, (channels, samples) as given.
    """
    if isinstance(source, (str, Path)):
        try:
            with av.open(str(source)) as container:
                stream = container.streams.audio[0]
                chunks = [frame.to_ndarray() for frame in container.decode(stream)]
                rate, layout_channels = stream.rate, stream.channels
                planar = stream.format.is_planar
        except (av.error.FFmpegError, IndexError, OSError) as error:
            raise ValueError(f"audio {str(source)!r} could not be read as audio ({error})") from None
        if not chunks:
            raise ValueError(f"audio {str(source)!r} holds no samples")
        samples = np.concatenate(chunks, axis=1)
        if not planar:  # interleaved: (1, samples * channels)
            samples = samples.reshape(-1, layout_channels).T
        waveform = torch.from_numpy(_to_float(samples))
        return waveform, rate
    if sample_rate is None or sample_rate <= 0:
        raise ValueError(f"sample_rate must be given (positive) for a waveform, got {sample_rate}")
    waveform = torch.as_tensor(_to_float(np.asarray(source)) if isinstance(source, np.ndarray) else source).float()
    waveform = waveform[None] if waveform.ndim == 1 else waveform
    if waveform.ndim != 2:
        raise ValueError(f"waveform must be (samples,) or (channels, samples), got shape {tuple(waveform.shape)}")
    return waveform, sample_rate


def _to_float(samples: np.ndarray) -> np.ndarray:
    if np.issubdtype(samples.dtype, np.integer):
        return (samples / float(np.iinfo(samples.dtype).max)).astype(np.float32)
    return samples.astype(np.float32)


def resample(waveform: torch.Tensor, from_rate: int, to_rate: int, zero_crossings: int = 6, rolloff: float = 0.99) -> torch.Tensor:
    """Band-limited resampling of (..., samples) with a Hann-windowed sinc, as a polyphase convolution.

    Output sample n sits at time n / to_rate; it is the input weighted by sinc(2 fc (t_n - t_i)) under a Hann
    window spanning `zero_crossings` zero crossings on each side, with fc = rolloff * min(rates) / 2.
    """
    if from_rate == to_rate:
        return waveform
    divisor = math.gcd(from_rate, to_rate)
    step_in, step_out = from_rate // divisor, to_rate // divisor
    cutoff = rolloff * min(step_in, step_out) / 2  # in units of the reduced rates
    half_width = math.ceil(zero_crossings * step_in / (2 * cutoff))
    offsets = torch.arange(-half_width, half_width + step_in, dtype=torch.float64)  # input taps around q * step_in
    phases = torch.arange(step_out, dtype=torch.float64)[:, None] / step_out  # output j of each block, in input blocks
    # Time between output sample (q * step_out + j) and input sample (q * step_in + k), in input-block units.
    distance = phases * step_in - offsets[None]  # (step_out, taps), in input samples
    argument = 2 * cutoff * distance / step_in
    window = torch.where(argument.abs() <= zero_crossings, torch.cos(math.pi * argument / (2 * zero_crossings)) ** 2, 0.0)
    kernel = (2 * cutoff / step_in) * torch.sinc(argument) * window
    shape = waveform.shape
    flat = waveform.reshape(-1, 1, shape[-1]).double()
    padded = F.pad(flat, (half_width, half_width + step_in))
    blocks = F.conv1d(padded, kernel[:, None], stride=step_in)  # (N, step_out, blocks)
    output = blocks.transpose(1, 2).reshape(flat.shape[0], -1)
    length = math.ceil(shape[-1] * step_out / step_in)
    return output[:, :length].reshape(*shape[:-1], length).to(waveform.dtype)


def hz_to_mel(frequencies: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic (27 per factor 6.4) above."""
    linear = frequencies / (200.0 / 3)
    logarithmic = 15.0 + torch.log(frequencies.clamp(min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(frequencies >= 1000.0, logarithmic, linear)


def mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    linear = mels * (200.0 / 3)
    logarithmic = 1000.0 * torch.exp((mels - 15.0) * (math.log(6.4) / 27.0))
    return torch.where(mels >= 15.0, logarithmic, linear)


def mel_filterbank(
    n_fft: int = N_FFT,
    n_mels: int = MEL_BINS,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = 0.0,
    f_max: float = F_MAX,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular Slaney-normalized filters on the Slaney mel scale, float32, computed in
    `dtype` (torchaudio, which Lightricks' ltx-core uses, computes them in float32)."""
    bin_frequencies = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=dtype)
    mel_range = hz_to_mel(torch.tensor([f_min, f_max], dtype=torch.float64))
    edges = mel_to_hz(torch.linspace(float(mel_range[0]), float(mel_range[1]), n_mels + 2, dtype=dtype))
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_frequencies[:, None] - lower) / (center - lower)
    falling = (upper - bin_frequencies[:, None]) / (upper - center)
    triangles = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return (triangles * (2.0 / (upper - lower))).float()


def log_mel_spectrogram(waveform: torch.Tensor, filter_dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(channels, samples) at 16 kHz -> (channels, frames, 64) log-mel, frames = samples // 160 + 1; the mel filters
    computed in `filter_dtype` (see mel_filterbank)."""
    window = torch.hann_window(N_FFT, dtype=torch.float32, device=waveform.device)
    spectrum = torch.stft(
        waveform.float(), N_FFT, HOP_LENGTH, N_FFT, window, center=True, pad_mode="reflect", return_complex=True
    ).abs()  # (channels, n_fft / 2 + 1, frames)
    mel = torch.einsum("cft,fm->ctm", spectrum, mel_filterbank(dtype=filter_dtype).to(waveform.device))
    return torch.log(mel.clamp(min=LOG_FLOOR))


def audio_to_mel(
    source: str | Path | np.ndarray | torch.Tensor, sample_rate: int | None = None, channels: int = 2
) -> torch.Tensor:
    """Any audio -> (1, channels, frames, 64) log-mel at 16 kHz, the audio VAE's input.

    Mono is duplicated to stereo; more channels than `channels` are an error.
    """
    waveform, rate = load_audio(source, sample_rate)
    if waveform.shape[0] == 1 and channels > 1:
        waveform = waveform.expand(channels, -1)
    if waveform.shape[0] != channels:
        raise ValueError(f"audio has {waveform.shape[0]} channels; expected mono or {channels}")
    minimum = N_FFT // 2 + 1  # reflect padding needs more samples than half a window
    waveform = resample(waveform, rate, SAMPLE_RATE)
    if waveform.shape[-1] < minimum:
        raise ValueError(f"audio is too short: {waveform.shape[-1]} samples at 16 kHz, at least {minimum} needed")
    return log_mel_spectrogram(waveform)[None]
