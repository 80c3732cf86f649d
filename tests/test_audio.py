"""The audio front end: resampling, the Slaney mel filterbank, log-mel spectrograms, loading, bad input."""

import math

import av
import numpy as np
import pytest
import torch

from ltx2.audio import audio_to_mel, load_audio, log_mel_spectrogram, mel_filterbank, resample
from ltx2.models.audio_vae import audio_latent_frames


def sine(frequency: float, rate: int, seconds: float = 1.0) -> torch.Tensor:
    return torch.sin(2 * math.pi * frequency * torch.arange(int(rate * seconds)) / rate)


def numpy_slaney_filterbank(n_fft=1024, n_mels=64, rate=16000, f_min=0.0, f_max=8000.0):
    """The Slaney filterbank written directly from its definition, independently of ltx2."""
    def to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f >= 1000, 15 + np.log(np.maximum(f, 1e-10) / 1000) * 27 / np.log(6.4), 3 * f / 200)

    def to_hz(m):
        return np.where(m >= 15, 1000 * np.exp((m - 15) * np.log(6.4) / 27), 200 * m / 3)

    freqs = np.linspace(0, rate // 2, n_fft // 2 + 1)
    points = to_hz(np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2))
    bank = np.zeros((len(freqs), n_mels))
    for band in range(n_mels):
        low, mid, high = points[band : band + 3]
        up = (freqs - low) / (mid - low)
        down = (high - freqs) / (high - mid)
        bank[:, band] = np.maximum(0, np.minimum(up, down)) * 2 / (high - low)
    return bank


def test_filterbank_matches_direct_formula():
    np.testing.assert_allclose(mel_filterbank().double().numpy(), numpy_slaney_filterbank(), rtol=1e-5, atol=1e-9)


def test_one_kilohertz_lands_in_its_mel_band():
    mel = log_mel_spectrogram(sine(1000.0, 16000)[None])
    assert mel.shape == (1, 16000 // 160 + 1, 64)
    centers = mel_filterbank().argmax(dim=0).float() * 16000 / 1024  # each band's peak frequency
    expected_band = int((centers - 1000).abs().argmin())
    assert int(mel[0, 50].argmax()) == expected_band


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 8000])
def test_resampling_keeps_a_tone_at_its_frequency(rate):
    out = resample(sine(1000.0, rate), rate, 16000)
    assert abs(out.shape[-1] - 16000) <= 1
    spectrum = torch.fft.rfft(out[1000:15000] * torch.hann_window(14000, dtype=out.dtype))
    assert abs(float(spectrum.abs().argmax()) * 16000 / 14000 - 1000.0) < 2
    assert abs(float(out[1000:15000].abs().max()) - 1.0) < 0.02  # unit gain in the passband


def test_mono_is_duplicated_and_files_load(tmp_path):
    mono = sine(440.0, 24000, 0.5) * 0.5
    mel = audio_to_mel(mono, sample_rate=24000)
    assert mel.shape == (1, 2, 51, 64) and torch.equal(mel[0, 0], mel[0, 1])
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=24000, layout="stereo")
        frame = av.AudioFrame.from_ndarray((np.stack([mono.numpy()] * 2).T.reshape(1, -1) * 32767).astype(np.int16),
                                           format="s16", layout="stereo")
        frame.sample_rate = 24000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    waveform, rate = load_audio(path)
    assert rate == 24000 and waveform.shape == (2, 12000)
    assert (waveform - mono).abs().max() < 2 / 32767  # the same tone, through 16-bit PCM
    assert torch.equal(audio_to_mel(path), audio_to_mel(waveform, sample_rate=24000))


def test_latent_length_helper():
    assert audio_latent_frames(121, 24.0) == 126
    assert audio_latent_frames(121, 25.0) == 121
    assert audio_latent_frames(97, 24.0) == 101


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: audio_to_mel(torch.zeros(3, 16000), sample_rate=16000), "channels"),
        (lambda: audio_to_mel(torch.zeros(2, 100), sample_rate=16000), "too short"),
        (lambda: audio_to_mel(torch.zeros(2, 0), sample_rate=16000), "too short"),
        (lambda: audio_to_mel(torch.zeros(2, 16000)), "sample_rate"),
        (lambda: audio_to_mel("/no/such/file.wav"), "could not be read"),
    ],
)
def test_bad_input_names_the_rule(call, message):
    with pytest.raises(ValueError, match=message):
        call()
