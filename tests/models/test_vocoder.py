"""LTX2Vocoder and LTX2VocoderWithBWE: parity with diffusers 0.42.1, output length and rate, full-size layout,
bad input."""

import json
import math

import pytest
import torch
from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder as ReferenceVocoder
from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE as ReferenceVocoderWithBWE

from ltx2 import LTX2Pipeline, LTX2Vocoder, LTX2VocoderWithBWE
from ltx2.configs import LTX_2_3_VOCODER
from parity import assert_same_layout, perturb_, relative_l2

# LTX-2.3's generator structure (x5 then five x2) at a small width.
LTX_2_3_STRUCTURE = dict(in_channels=2 * 16, hidden_channels=128, upsample_kernel_sizes=[11, 4, 4, 4, 4, 4],
                         upsample_factors=[5, 2, 2, 2, 2, 2], final_act_fn=None, final_bias=False)
SMALL = dict(in_channels=2 * 8, hidden_channels=32, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2])
CONFIGS = {
    "real-structure": dict(in_channels=2 * 16, hidden_channels=64, upsample_kernel_sizes=[16, 15, 8, 4, 4],
                           upsample_factors=[6, 5, 2, 2, 2]),
    "small-no-bias": dict(SMALL, resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], final_act_fn="clamp",
                          final_bias=False, output_sampling_rate=16000),
    # LTX-2.3's generator: snake-beta, anti-aliased, no final activation or bias.
    "ltx-2.3": dict(LTX_2_3_STRUCTURE, act_fn="snakebeta", antialias=True),
    # Each activation flag on its own; the output activation is anti-aliased snake-beta whatever they say.
    "snakebeta": dict(SMALL, act_fn="snakebeta"),
    "snake": dict(SMALL, act_fn="snake"),
    "snake-antialias-x3-odd-kernel": dict(SMALL, act_fn="snake", antialias=True, antialias_ratio=3,
                                          antialias_kernel_size=9),
}


def random_mel(batch: int, frames: int, bins: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 2, frames, bins, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(CONFIGS))
@torch.no_grad()
def test_forward_matches_reference(name, tmp_path):
    torch.manual_seed(0)
    reference = perturb_(ReferenceVocoder(**CONFIGS[name]).eval(), scale=0.02)
    reference.save_pretrained(tmp_path)
    ours = LTX2Vocoder.from_pretrained(tmp_path)
    mel = random_mel(2, 9, CONFIGS[name]["in_channels"] // 2)
    expected, actual = reference(mel), ours(mel)
    assert actual.shape == expected.shape == (2, 2, 9 * ours.upsample_factor)
    assert relative_l2(actual, expected) <= 1e-5
    assert relative_l2(ours(mel.transpose(2, 3), time_last=True), expected) <= 1e-5


# LTX-2.3's vocoder with bandwidth extension at a small width: 16 kHz x10 per mel frame, spectrogram hops of
# 10 samples, x30 in the BWE generator = x3 (48 kHz) per sample.
BWE = dict(
    in_channels=2 * 8, hidden_channels=32, upsample_kernel_sizes=[11, 4], upsample_factors=[5, 2],
    bwe_in_channels=2 * 8, bwe_hidden_channels=32, bwe_upsample_kernel_sizes=[12, 11], bwe_upsample_factors=[6, 5],
    filter_length=32, hop_length=10, window_length=32, num_mel_channels=8,
)
BWE_CONFIGS = {
    "ltx-2.3": BWE,
    # Vocoder output that is not whole hops (10 samples per frame, hops of 4) is padded before the spectrogram.
    "partial-hop": dict(BWE, hop_length=4, bwe_upsample_kernel_sizes=[8, 7],
                        bwe_upsample_factors=[4, 3]),
    "leaky-relu-generators": dict(BWE, act_fn="leaky_relu", antialias=False, final_act_fn="tanh", final_bias=True,
                                  bwe_act_fn="leaky_relu", bwe_antialias=False),
}


def set_real_bases_(model: torch.nn.Module) -> None:
    """Hann-windowed DFT bases and a positive filterbank, so that the spectrogram is a real one."""
    stft = model.mel_stft.stft_fn
    length = stft.forward_basis.shape[-1]
    frequencies = torch.arange(length // 2 + 1, dtype=torch.float64)[:, None]
    angles = 2 * math.pi * frequencies * torch.arange(length, dtype=torch.float64) / length
    window = torch.hann_window(length, periodic=True, dtype=torch.float64)
    basis = torch.cat([angles.cos() * window, -angles.sin() * window])
    stft.forward_basis.copy_(basis[:, None].float())
    mel_basis = model.mel_stft.mel_basis
    mel_basis.copy_(torch.rand(mel_basis.shape, generator=torch.Generator().manual_seed(2)))


@pytest.mark.parametrize("name", list(BWE_CONFIGS))
@torch.no_grad()
def test_bandwidth_extension_matches_reference(name, tmp_path):
    torch.manual_seed(0)
    reference = perturb_(ReferenceVocoderWithBWE(**BWE_CONFIGS[name]).eval(), scale=0.02)
    set_real_bases_(reference)
    reference.save_pretrained(tmp_path)
    ours = LTX2VocoderWithBWE.from_pretrained(tmp_path)
    # diffusers 0.42.1 reads a `hop_length` attribute it never sets when the output is not whole hops.
    reference.hop_length = reference.config.hop_length
    mel = random_mel(2, 7, 8) * 3
    expected, actual = reference(mel), ours(mel)
    assert actual.shape == expected.shape == (2, 2, 7 * ours.upsample_factor) == (2, 2, 7 * 10 * 3)
    assert relative_l2(actual, expected) <= 1e-5
    assert (actual.abs() < 1).float().mean() > 0.5  # the clamp to [-1, 1] leaves most samples alone


@torch.no_grad()
def test_pipeline_folder_with_the_bwe_vocoder_loads_it(pipeline_folder, tmp_path):
    """A diffusers LTX-2.3 folder names LTX2VocoderWithBWE in model_index.json (library "ltx2")."""
    folder, _ = pipeline_folder
    for item in folder.iterdir():
        if item.name not in ("vocoder", "model_index.json"):
            (tmp_path / item.name).symlink_to(item, target_is_directory=item.is_dir())
    torch.manual_seed(0)
    reference = perturb_(ReferenceVocoderWithBWE(**BWE).eval(), scale=0.02)
    set_real_bases_(reference)
    reference.save_pretrained(tmp_path / "vocoder")
    index = json.loads((folder / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps({**index, "vocoder": ["ltx2", "LTX2VocoderWithBWE"]}))
    vocoder = LTX2Pipeline.from_pretrained(tmp_path).vocoder
    assert isinstance(vocoder, LTX2VocoderWithBWE)
    mel = random_mel(1, 5, 8)
    assert relative_l2(vocoder(mel), reference(mel)) <= 1e-5


def test_built_filters_are_the_reference_filters():
    """The sinc filters a new model builds (the checkpoint's, and the resampler's that it does not hold)."""
    config = dict(BWE, bwe_antialias_ratio=3, bwe_antialias_kernel_size=9)
    ours, reference = LTX2VocoderWithBWE(**config), ReferenceVocoderWithBWE(**config)
    filters = {name: buffer for name, buffer in ours.named_buffers() if name.endswith("filter")}
    reference_filters = {name: buffer for name, buffer in reference.named_buffers() if name.endswith("filter")}
    assert filters.keys() == reference_filters.keys() and "resampler.filter" in filters
    for name, taps in filters.items():
        # Sinc and window arithmetic in another order: a few float32 ulps (2^-23 ~ 1.2e-7 relative) apart, 1.5e-8
        # absolute here; on taps up to ~0.5 an absolute 1e-7 would be under two ulps, so a relative bound stands.
        torch.testing.assert_close(taps, reference_filters[name], rtol=1e-6, atol=1e-7)


def saved_config(model: torch.nn.Module) -> dict:
    return {key: value for key, value in json.loads(model.config_json()).items() if key != "_class_name"}


def test_full_size_layouts_match_reference():
    with torch.device("meta"):
        ours, reference = LTX2Vocoder(), ReferenceVocoder()
        count = assert_same_layout(ours, reference)
        assert 55e6 < count < 57e6
        assert ours.config.output_sampling_rate == 24000 and ours.upsample_factor == 240

        ours, reference = LTX2VocoderWithBWE.from_config(LTX_2_3_VOCODER), ReferenceVocoderWithBWE(**LTX_2_3_VOCODER)
        assert 128.5e6 < assert_same_layout(ours, reference) < 128.6e6
        assert saved_config(ours) == LTX_2_3_VOCODER == saved_config(LTX2VocoderWithBWE())
    assert ours.config.output_sampling_rate == 48000 and ours.upsample_factor == 480
    assert ours.vocoder.config.output_sampling_rate == 16000


def test_bad_input_names_the_rule():
    model = LTX2Vocoder(**CONFIGS["small-no-bias"])
    with pytest.raises(ValueError, match="in_channels=16"):
        model(torch.randn(1, 2, 5, 4))
    with pytest.raises(ValueError, match="4D"):
        model(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="act_fn must be one of"):
        LTX2Vocoder.from_config({"act_fn": "relu"})
    with pytest.raises(ValueError, match="antialias=True needs act_fn 'snake' or 'snakebeta'"):
        LTX2Vocoder.from_config({"antialias": True})
    with pytest.raises(ValueError, match="bwe_upsample_factors gives 240, but bandwidth extension needs 480"):
        LTX2VocoderWithBWE(hop_length=160)
    with pytest.raises(ValueError, match="output_sampling_rate \\(44100\\) must be a multiple"):
        LTX2VocoderWithBWE(output_sampling_rate=44100)
