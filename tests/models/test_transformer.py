"""LTX2VideoTransformer3DModel: parity with diffusers 0.42.1, full-size layout, input validation."""

import inspect

import pytest
import torch
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer
from parity import assert_same_layout, perturb_, relative_l2

from ltx2 import LTX2VideoTransformer3DModel

TINY = dict(
    in_channels=8,
    out_channels=8,
    num_attention_heads=2,
    attention_head_dim=16,
    cross_attention_dim=32,
    audio_in_channels=6,
    audio_out_channels=6,
    audio_num_attention_heads=2,
    audio_attention_head_dim=8,
    audio_cross_attention_dim=16,
    num_layers=2,
    caption_channels=24,
)
CONFIGS = {
    # The real model's RoPE: split halves, frequency grid in float64.
    "split-float64": dict(TINY, rope_type="split", rope_double_precision=True),
    # The reference's class default, with a gate timestep scale that differs from the main one.
    "interleaved-float32": dict(
        TINY,
        rope_type="interleaved",
        rope_double_precision=False,
        cross_attn_timestep_scale_multiplier=1,
        num_attention_heads=3,
        audio_num_attention_heads=3,
        attention_head_dim=12,
        audio_attention_head_dim=6,
        audio_cross_attention_dim=18,
        cross_attention_dim=36,
    ),
}
FRAMES, HEIGHT, WIDTH, AUDIO_FRAMES, TEXT_TOKENS, BATCH = 3, 4, 5, 7, 10, 2
FULL_CONFIG = dict(rope_type="split")  # every other reference default is the 19B value


@pytest.fixture(scope="module", params=list(CONFIGS))
def models(request, tmp_path_factory):
    torch.manual_seed(0)
    reference = perturb_(ReferenceTransformer(**CONFIGS[request.param])).eval()
    folder = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(folder)
    return reference, LTX2VideoTransformer3DModel.from_pretrained(folder), folder


def make_inputs(config: dict, per_token: bool, masked: bool, dtype=torch.float32) -> dict:
    generator = torch.Generator().manual_seed(1)
    tokens = FRAMES * HEIGHT * WIDTH

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(dtype)

    timestep = torch.rand(BATCH, generator=generator) * 1000
    mask = torch.ones(BATCH, TEXT_TOKENS)
    if masked:
        mask[0, :4] = 0
        mask[1, :1] = 0
    return dict(
        hidden_states=randn(BATCH, tokens, config["in_channels"]),
        audio_hidden_states=randn(BATCH, AUDIO_FRAMES, config["audio_in_channels"]),
        encoder_hidden_states=randn(BATCH, TEXT_TOKENS, config["caption_channels"]),
        audio_encoder_hidden_states=randn(BATCH, TEXT_TOKENS, config["caption_channels"]),
        timestep=torch.rand(BATCH, tokens, generator=generator) * 1000 if per_token else timestep,
        audio_timestep=timestep,
        encoder_attention_mask=mask,
        audio_encoder_attention_mask=mask,
        num_frames=FRAMES,
        height=HEIGHT,
        width=WIDTH,
        fps=24.0,
        audio_num_frames=AUDIO_FRAMES,
        return_dict=False,
    )


@pytest.mark.parametrize("per_token", [False, True], ids=["per-sample-timestep", "per-token-timestep"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "text-mask"])
@torch.no_grad()
def test_forward_matches_reference(models, per_token, masked):
    reference, ours, _ = models
    inputs = make_inputs(dict(reference.config), per_token, masked)
    expected_video, expected_audio = reference(**inputs)
    video, audio = ours(**inputs)
    assert video.shape == expected_video.shape and audio.shape == expected_audio.shape
    assert relative_l2(video, expected_video) <= 1e-5
    assert relative_l2(audio, expected_audio) <= 1e-5


@torch.no_grad()
def test_precomputed_coords_and_isolated_modalities_match_reference(models):
    reference, ours, _ = models
    inputs = make_inputs(dict(reference.config), per_token=False, masked=True)
    batch = inputs["hidden_states"].shape[0]
    video_coords = reference.rope.prepare_video_coords(batch, FRAMES, HEIGHT, WIDTH, "cpu", fps=25.0)
    audio_coords = reference.audio_rope.prepare_audio_coords(batch, AUDIO_FRAMES, "cpu")
    for key in ("num_frames", "height", "width", "fps", "audio_num_frames"):
        inputs.pop(key)
    inputs.update(video_coords=video_coords, audio_coords=audio_coords, isolate_modalities=True)
    for expected, actual in zip(reference(**inputs), ours(**inputs)):
        assert relative_l2(actual, expected) <= 1e-5


@torch.no_grad()
def test_bfloat16_close_to_reference(models):
    reference, _, folder = models
    ours = LTX2VideoTransformer3DModel.from_pretrained(folder, torch_dtype=torch.bfloat16)
    assert ours.dtype == torch.bfloat16
    inputs = make_inputs(dict(reference.config), per_token=True, masked=True, dtype=torch.bfloat16)
    reference_bf16 = ReferenceTransformer.from_pretrained(folder, torch_dtype=torch.bfloat16)
    for expected, actual in zip(reference_bf16(**inputs), ours(**inputs)):
        assert actual.dtype == torch.bfloat16
        assert relative_l2(actual, expected) <= 2e-2


def test_reference_loads_our_save(models, tmp_path):
    reference, ours, _ = models
    ours.save_pretrained(tmp_path)
    reloaded = ReferenceTransformer.from_pretrained(tmp_path)
    expected = reference.state_dict()
    for key, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, expected[key]), key


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours = LTX2VideoTransformer3DModel()
        reference = ReferenceTransformer(**FULL_CONFIG)
    count = assert_same_layout(ours, reference)
    assert 18.87e9 < count < 18.88e9


def test_config_keys_are_the_reference_keys():
    reference_keys = set(inspect.signature(ReferenceTransformer.__init__).parameters) - {"self"}
    ours = set(LTX2VideoTransformer3DModel.config_keys())
    assert ours | set(LTX2VideoTransformer3DModel.neutral_config) == reference_keys


def test_neutral_config_keys_accepted_only_at_neutral_values():
    tiny = CONFIGS["split-float64"]
    with torch.device("meta"):
        LTX2VideoTransformer3DModel.from_config({**tiny, "gated_attn": False, "_diffusers_version": "0.42.1"})
        with pytest.raises(ValueError, match="gated_attn"):
            LTX2VideoTransformer3DModel.from_config({**tiny, "gated_attn": True})
        with pytest.raises(ValueError, match="not_a_key"):
            LTX2VideoTransformer3DModel.from_config({**tiny, "not_a_key": 1})


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(hidden_states=torch.randn(BATCH, FRAMES * HEIGHT * WIDTH, 5)), "hidden_states"),
        (dict(audio_hidden_states=torch.randn(BATCH, AUDIO_FRAMES, 5)), "audio_hidden_states"),
        (dict(encoder_hidden_states=torch.randn(BATCH, TEXT_TOKENS, 5)), "encoder_hidden_states"),
        (dict(num_frames=FRAMES + 1), "num_frames x height x width"),
        (dict(audio_num_frames=AUDIO_FRAMES + 1), "audio_num_frames"),
        (dict(timestep=torch.ones(BATCH, 3)), "timestep"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(change, message):
    model = LTX2VideoTransformer3DModel(**CONFIGS["split-float64"])
    inputs = {**make_inputs(CONFIGS["split-float64"], per_token=False, masked=False), **change}
    with pytest.raises(ValueError, match=message):
        model(**inputs)
