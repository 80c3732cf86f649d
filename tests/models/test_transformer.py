"""LTX2VideoTransformer3DModel: parity with diffusers 0.42.1 (LTX-2.0, every LTX-2.3 flag, LTX-2.5), full-size layouts,
the guidance passes' arguments, LTX2DFRPipeline's calls, input validation."""

import inspect
from types import SimpleNamespace

import pytest
import torch
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer
from diffusers.pipelines.ltx2.pipeline_ltx2_dfr import LTX2DFRPipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_ic_lora import LTX2InContextPipeline
from network_outputs import AUDIO_FRAMES, BATCH, DEFAULTS, FRAMES, HEIGHT, TEXT_TOKENS, TOKENS, WIDTH, make_inputs
from parity import assert_same_layout, perturb_, relative_l2
from tiny_transformer import SWITCHES, UNEQUAL_WIDTHS

from ltx2 import LTX2VideoTransformer3DModel
from ltx2.configs import LTX_2_3_TRANSFORMER, LTX_2_5_TRANSFORMER

# The real model's RoPE (split halves, frequency grid in float64), as the tiny config has it.
SPLIT = UNEQUAL_WIDTHS
# The reference's class default, with a gate timestep scale that differs from the main one.
INTERLEAVED = dict(
    UNEQUAL_WIDTHS,
    rope_type="interleaved",
    rope_double_precision=False,
    cross_attn_timestep_scale_multiplier=1,
    num_attention_heads=3,
    audio_num_attention_heads=3,
    attention_head_dim=12,
    audio_attention_head_dim=6,
    audio_cross_attention_dim=18,
    cross_attention_dim=36,
)
LTX_2_3_FLAGS = {key: value for key, value in LTX_2_3_TRANSFORMER.items() if DEFAULTS[key] != value}
LTX_2_5_FLAGS = {key: value for key, value in LTX_2_5_TRANSFORMER.items() if DEFAULTS[key] != value}
EVERY_FLAG = dict(LTX_2_3_FLAGS, ff_bias=False, audio_ff_bias=False, use_keyframes_abs_pos_embedding=True)
CONFIGS = {
    "split-float64": SPLIT,
    "interleaved-float32": INTERLEAVED,
    "gated_attn": dict(SPLIT, gated_attn=True),
    "audio_gated_attn": dict(SPLIT, audio_gated_attn=True),
    "cross_attn_mod": dict(SPLIT, cross_attn_mod=True),
    "audio_cross_attn_mod": dict(SPLIT, audio_cross_attn_mod=True),
    "cross_attn_mod-without-prompt-adaln": dict(SPLIT, cross_attn_mod=True, use_prompt_adaln_single=False),
    "no-prompt-embeddings": dict(SPLIT, use_prompt_embeddings=False),
    "perturbed_attn": dict(SPLIT, perturbed_attn=True),
    "no-ff-bias": dict(SPLIT, ff_bias=False),
    "no-audio-ff-bias": dict(SPLIT, audio_ff_bias=False),
    "keyframes-embedding": dict(SPLIT, use_keyframes_abs_pos_embedding=True),
    "ltx-2.3": dict(SPLIT, **LTX_2_3_FLAGS),
    "ltx-2.5": dict(SPLIT, **LTX_2_5_FLAGS),
    "ltx-2.5-without-prompt-adaln": dict(SPLIT, **LTX_2_5_FLAGS, use_prompt_adaln_single=False),
    "every-flag": dict(SPLIT, **EVERY_FLAG),
    "every-flag-interleaved": dict(INTERLEAVED, **EVERY_FLAG),
}
FULL_CONFIG = dict(rope_type="split")  # every other reference default is the 19B value


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: a second thread's hand-offs cost more than the work, many times over when other
    processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_pipelines_switch_on_what_the_releases_do():
    """The tiny pipelines and single files of each version (tiny_transformer.SWITCHES) are the release's transformer."""
    assert SWITCHES == {"2.0": {}, "2.3": LTX_2_3_FLAGS, "2.5": LTX_2_5_FLAGS}


@pytest.fixture(scope="module", params=list(CONFIGS))
def models(request, tmp_path_factory):
    torch.manual_seed(0)
    reference = perturb_(ReferenceTransformer(**CONFIGS[request.param])).eval()
    folder = tmp_path_factory.mktemp(request.param)
    reference.save_pretrained(folder)
    return reference, LTX2VideoTransformer3DModel.from_pretrained(folder), folder


# Per-sample timesteps with a text mask are also every guidance call's base (below).
@pytest.mark.parametrize(
    "per_token, masked", [(False, False), (True, True)], ids=["per-sample-timestep", "per-token-timestep-text-mask"]
)
@torch.no_grad()
def test_forward_matches_reference(models, per_token, masked):
    reference, ours, _ = models
    inputs = make_inputs(dict(reference.config), per_token, masked)
    expected_video, expected_audio = reference(**inputs)
    video, audio = ours(**inputs)
    assert video.shape == expected_video.shape and audio.shape == expected_audio.shape
    assert relative_l2(video, expected_video) <= 1e-5
    assert relative_l2(audio, expected_audio) <= 1e-5


def pipeline_call(reference: ReferenceTransformer, inputs: dict) -> dict:
    """The arguments 0.42.1's LTX2Pipeline passes on its main (conditional) pass: positions as coordinates,
    sigma = timestep, use_cross_timestep (the pipeline's default)."""
    call = {key: value for key, value in inputs.items() if key not in ("num_frames", "height", "width")}
    return dict(
        call,
        video_coords=reference.rope.prepare_video_coords(BATCH, FRAMES, HEIGHT, WIDTH, "cpu", fps=24.0),
        audio_coords=reference.audio_rope.prepare_audio_coords(BATCH, AUDIO_FRAMES, "cpu"),
        audio_timestep=None,
        sigma=inputs["timestep"],
        isolate_modalities=False,
        spatio_temporal_guidance_blocks=None,
        perturbation_mask=None,
        use_cross_timestep=True,
        attention_kwargs=None,
    )


def ic_lora_self_attention_mask() -> torch.Tensor:
    """A video self-attention mask as 0.42.1's IC-LoRA pipeline builds it: 40 noisy tokens, 5 keyframe tokens, two
    reference groups of 7 and 8 tokens whose strengths sit close enough to 1 that the -10000 bias leaves them
    partly open."""
    strengths = [torch.full((1, 7), 0.9997), 1 - torch.rand(1, 8, generator=torch.Generator().manual_seed(3)) * 4e-4]
    mask = LTX2InContextPipeline._build_video_self_attention_mask(40, 45, strengths, torch.device("cpu"))
    return mask.expand(BATCH, -1, -1)


def in_context_call(reference: ReferenceTransformer, inputs: dict) -> dict:
    """The IC-LoRA pipeline's pass: per-token timesteps (0 on the reference tokens), separate sigmas, the mask."""
    call = pipeline_call(reference, inputs)
    conditioned = torch.arange(TOKENS) >= 45
    return dict(
        call,
        timestep=call["sigma"][:, None] * (~conditioned).float(),
        audio_timestep=call["sigma"],
        audio_sigma=call["sigma"],
        video_self_attention_mask=ic_lora_self_attention_mask(),
    )


# name -> (extra arguments on top of the pipeline's main pass, whether the call changes this config's output)
GUIDANCE_CALLS = {
    "pipeline": (lambda reference, call: call, lambda config: True),
    # The STG pass as LTX2Pipeline makes it: blocks given, no perturbation_mask (every sample perturbed).
    "stg": (
        lambda reference, call: dict(call, spatio_temporal_guidance_blocks=[1]),
        lambda config: config.get("perturbed_attn", False),
    ),
    # Per-sample weights: sample 0 fully perturbed in block 0, sample 1 blended in both blocks.
    "stg-per-sample-mask": (
        lambda reference, call: dict(
            call, spatio_temporal_guidance_blocks=[0, 1], perturbation_mask=torch.tensor([0.0, 0.4])
        ),
        lambda config: config.get("perturbed_attn", False),
    ),
    "modality-isolated": (
        lambda reference, call: dict(call, isolate_modalities=True),
        lambda config: True,
    ),
    "own-timestep-cross-modulation": (
        lambda reference, call: dict(
            call, use_cross_timestep=False, audio_timestep=call["sigma"] * 0.5, audio_sigma=call["sigma"] * 0.25
        ),
        lambda config: True,
    ),
    "cross-timestep-separate-sigmas": (
        lambda reference, call: dict(call, audio_sigma=call["sigma"] * 0.5),
        lambda config: True,
    ),
    "ic-lora-self-attention-mask": (
        lambda reference, call: in_context_call(reference, call),
        lambda config: True,
    ),
    "keyframes-mask": (
        lambda reference, call: dict(
            call, video_keyframes_mask=(torch.arange(TOKENS) < HEIGHT * WIDTH).float().expand(BATCH, -1)[..., None]
        ),
        lambda config: config.get("use_keyframes_abs_pos_embedding", False),
    ),
}


@pytest.fixture(scope="module")
def pipeline_pass(models):
    """The pipeline's main call for this config and our output on it."""
    reference, ours, _ = models
    call = pipeline_call(reference, make_inputs(dict(reference.config), per_token=False, masked=True))
    with torch.no_grad():
        return call, ours(**call)


@pytest.mark.parametrize("name", list(GUIDANCE_CALLS))
@torch.no_grad()
def test_guidance_calls_match_reference(models, pipeline_pass, name):
    """Each guidance pass of 0.42.1's pipelines gives the reference's numbers, and changes the output exactly when
    the model has the feature it exercises (STG without perturbed_attn is the reference's no-op)."""
    reference, ours, _ = models
    make_call, changes_output = GUIDANCE_CALLS[name]
    base, plain = pipeline_pass
    call = make_call(reference, base)
    expected, actual = reference(**call), ours(**call)
    for expected_stream, actual_stream in zip(expected, actual):
        assert relative_l2(actual_stream, expected_stream) <= 1e-5
    if name != "pipeline":
        changed = any(not torch.equal(out, ref) for out, ref in zip(actual, plain))
        assert changed == changes_output(dict(reference.config))


# LTX2DFRPipeline's canvas: the FRAMES x HEIGHT x WIDTH grid, then an anchor keyframe carried from a previous round
# (strength 0.95, not marked) and two generated slots (single pixel frames, marked), each one latent frame of tokens.
FRAME_TOKENS = HEIGHT * WIDTH
ANCHOR_FRAME, SLOT_FRAMES = 9, (4, 13)


def dfr_coords(reference: ReferenceTransformer) -> torch.Tensor:
    """The positions 0.42.1's LTX2DFRPipeline gives that canvas: the grid's, then each appended frame's at its
    pixel frame, one pixel frame long (its own `_prepare_keyframe_coords`)."""
    layout = SimpleNamespace(transformer_spatial_patch_size=1, transformer_temporal_patch_size=1,
                             vae_temporal_compression_ratio=8, vae_spatial_compression_ratio=32)
    appended = [
        LTX2DFRPipeline._prepare_keyframe_coords(layout, 1, HEIGHT, WIDTH, frame, 1, 24.0, torch.device("cpu"))
        for frame in (ANCHOR_FRAME, *SLOT_FRAMES)
    ]
    grid = reference.rope.prepare_video_coords(BATCH, FRAMES, HEIGHT, WIDTH, "cpu", fps=24.0)
    return torch.cat([grid, torch.cat(appended, dim=2).expand(BATCH, -1, -1, -1)], dim=2)


def dfr_call(reference: ReferenceTransformer, keyframes: str, frozen_audio: bool) -> dict:
    """One DFR step's transformer call: per-token timesteps t (1 - strength) (the first frame an image condition at
    strength 1, the anchor at 0.95), sigma the step's scalar, explicit coordinates, the keyframe marker (binary as
    the pipeline makes it, non-binary, or none), audio denoised with video or frozen at timestep and sigma 0."""
    config = {**DEFAULTS, **dict(reference.config)}
    generator = torch.Generator().manual_seed(5)
    tokens = TOKENS + 3 * FRAME_TOKENS
    strength = torch.zeros(tokens)
    strength[:FRAME_TOKENS] = 1.0
    strength[TOKENS : TOKENS + FRAME_TOKENS] = 0.95
    marked = torch.zeros(tokens)
    marked[:FRAME_TOKENS] = marked[TOKENS + FRAME_TOKENS :] = 1.0
    keyframes_mask = {"binary": marked, "none": None,
                      "non-binary": marked * torch.rand(tokens, generator=generator) * 2 - 0.5}[keyframes]
    step = torch.full((BATCH,), 909.375)
    audio_step = torch.zeros(BATCH) if frozen_audio else step
    return dict(
        hidden_states=torch.randn(BATCH, tokens, config["in_channels"], generator=generator),
        audio_hidden_states=torch.randn(BATCH, AUDIO_FRAMES, config["audio_in_channels"], generator=generator),
        encoder_hidden_states=torch.randn(BATCH, TEXT_TOKENS, config["cross_attention_dim"], generator=generator),
        audio_encoder_hidden_states=torch.randn(
            BATCH, TEXT_TOKENS, config["audio_cross_attention_dim"], generator=generator
        ),
        timestep=step[:, None] * (1 - strength),
        video_keyframes_mask=None if keyframes_mask is None else keyframes_mask.expand(BATCH, -1)[..., None],
        video_coords=dfr_coords(reference),
        audio_timestep=audio_step,
        sigma=step,
        audio_sigma=audio_step,
        encoder_attention_mask=torch.ones(BATCH, TEXT_TOKENS),
        audio_encoder_attention_mask=torch.ones(BATCH, TEXT_TOKENS),
        fps=24.0,
        audio_num_frames=AUDIO_FRAMES,
        audio_coords=reference.audio_rope.prepare_audio_coords(BATCH, AUDIO_FRAMES, "cpu"),
        use_cross_timestep=True,
        attention_kwargs=None,
        return_dict=False,
    )


def dfr_tile(call: dict) -> dict:
    """The same step on one video tile, as the pipeline runs tiled canvases: a subset of the tokens (the last two
    grid frames and the slots) with their timesteps, marker and coordinates; audio whole."""
    slots = torch.arange(TOKENS + FRAME_TOKENS, TOKENS + 3 * FRAME_TOKENS)
    keep = torch.cat([torch.arange(FRAME_TOKENS, TOKENS), slots])
    return dict(call, hidden_states=call["hidden_states"][:, keep], timestep=call["timestep"][:, keep],
                video_keyframes_mask=call["video_keyframes_mask"][:, keep],
                video_coords=call["video_coords"][:, :, keep])


@pytest.mark.parametrize("models", ["ltx-2.5", "ltx-2.5-without-prompt-adaln"], indirect=True)
@pytest.mark.parametrize(
    "keyframes, frozen_audio, tiled",
    [("binary", False, False), ("non-binary", True, False), ("none", True, False), ("binary", True, True)],
    ids=["keyframes-audio-denoised", "non-binary-keyframes-frozen-audio", "no-keyframes-mask", "tile"],
)
@torch.no_grad()
def test_dfr_calls_match_reference(models, keyframes, frozen_audio, tiled):
    """The transformer as 0.42.1's LTX2DFRPipeline calls it on LTX-2.5 (with and without the prompt AdaLN)."""
    reference, ours, _ = models
    call = dfr_call(reference, keyframes, frozen_audio)
    call = dfr_tile(call) if tiled else call
    expected, actual = reference(**call), ours(**call)
    for expected_stream, actual_stream in zip(expected, actual):
        assert relative_l2(actual_stream, expected_stream) <= 1e-5
    if keyframes != "none":  # the marker is a learned offset on the marked tokens: it changes the output
        unmarked = ours(**dict(call, video_keyframes_mask=None))
        assert not torch.equal(unmarked[0], actual[0])


@pytest.mark.parametrize("models", ["every-flag"], indirect=True)
@torch.no_grad()
def test_unit_lora_scale_in_attention_kwargs_changes_nothing(models, pipeline_pass):
    _, ours, _ = models
    call, plain = pipeline_pass
    for out, expected in zip(ours(**dict(call, attention_kwargs={"scale": 1.0})), plain):
        assert torch.equal(out, expected)


@pytest.mark.parametrize("models", ["split-float64", "interleaved-float32"], indirect=True)
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


@pytest.mark.parametrize("models", ["split-float64", "interleaved-float32", "every-flag"], indirect=True)
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


def test_full_size_ltx_2_3_layout_matches_reference():
    with torch.device("meta"):
        ours = LTX2VideoTransformer3DModel(**LTX_2_3_TRANSFORMER)
        reference = ReferenceTransformer(**LTX_2_3_TRANSFORMER)
    count = assert_same_layout(ours, reference)
    assert 18.988e9 < count < 18.990e9


def test_full_size_ltx_2_5_layout_matches_reference():
    with torch.device("meta"):
        ours = LTX2VideoTransformer3DModel(**LTX_2_5_TRANSFORMER)
        reference = ReferenceTransformer(**LTX_2_5_TRANSFORMER)
    count = assert_same_layout(ours, reference)
    assert count == 18_987_859_200  # 2.3's less 48 video feed-forward biases (20480 each), plus the 4096 marker
    keys = ours.state_dict()
    assert "keyframes_abs_pos_embedding" in keys and "transformer_blocks.0.ff.net.2.bias" not in keys


def test_config_keys_are_the_reference_keys():
    reference_keys = set(inspect.signature(ReferenceTransformer.__init__).parameters) - {"self"}
    assert set(LTX2VideoTransformer3DModel.config_keys()) == reference_keys
    assert set(LTX_2_3_TRANSFORMER) == set(LTX_2_5_TRANSFORMER) == reference_keys


def test_forward_takes_the_reference_keywords():
    reference = set(inspect.signature(ReferenceTransformer.forward).parameters)
    assert set(inspect.signature(LTX2VideoTransformer3DModel.forward).parameters) == reference


def test_unknown_config_key_is_named():
    with torch.device("meta"), pytest.raises(ValueError, match="not_a_key"):
        LTX2VideoTransformer3DModel.from_config({**SPLIT, "not_a_key": 1})


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(rope_type="rotary"), "rope_type"),
        (dict(audio_num_attention_heads=4, audio_attention_head_dim=4), "num_attention_heads"),
        (dict(audio_cross_attention_dim=32), "audio_cross_attention_dim"),
        (dict(cross_attention_dim=64), r"cross_attention_dim \(64\).*use_prompt_embeddings"),
        (dict(cross_attention_dim=64, use_prompt_embeddings=False, cross_attn_mod=True), "cross_attention_dim"),
        (dict(qk_norm="rms_norm"), "qk_norm"),
    ],
)
def test_flag_combinations_the_reference_cannot_run_are_named(change, message):
    with torch.device("meta"), pytest.raises(ValueError, match=message):
        LTX2VideoTransformer3DModel(**{**SPLIT, **change})


def test_text_at_stream_width_with_other_cross_attention_width_runs():
    """Without prompt embeddings or cross-attention AdaLN the text may have its own width, as in the reference."""
    config = dict(SPLIT, use_prompt_embeddings=False, cross_attention_dim=20)
    reference = perturb_(ReferenceTransformer(**config)).eval()
    ours = LTX2VideoTransformer3DModel(**config)
    ours.load_state_dict(reference.state_dict())
    inputs = make_inputs(config, per_token=False, masked=True)
    with torch.no_grad():
        for expected, actual in zip(reference(**inputs), ours(**inputs)):
            assert relative_l2(actual, expected) <= 1e-5


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(hidden_states=torch.randn(BATCH, TOKENS, 5)), "hidden_states"),
        (dict(audio_hidden_states=torch.randn(BATCH, AUDIO_FRAMES, 5)), "audio_hidden_states"),
        (dict(encoder_hidden_states=torch.randn(BATCH, TEXT_TOKENS, 5)), "encoder_hidden_states"),
        (dict(num_frames=FRAMES + 1), "num_frames x height x width"),
        (dict(audio_num_frames=AUDIO_FRAMES + 1), "audio_num_frames"),
        (dict(timestep=torch.ones(BATCH, 3)), "timestep"),
        (dict(audio_timestep=torch.ones(BATCH, 3)), "audio_timestep"),
        (dict(sigma=torch.ones(BATCH, 3)), "sigma"),
        (dict(audio_sigma=torch.ones(3)), "audio_sigma"),
        (dict(sigma=None, use_cross_timestep=True), "sigma is required with use_cross_timestep"),
        (dict(perturbation_mask=torch.ones(BATCH, 2)), "perturbation_mask"),
        (dict(video_self_attention_mask=torch.ones(BATCH, TOKENS, TOKENS - 1)), "video_self_attention_mask"),
        (dict(video_keyframes_mask=torch.ones(BATCH, TOKENS)), "video_keyframes_mask"),
        (dict(attention_kwargs={"scale": 0.5}), "set_adapters"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(change, message):
    model = LTX2VideoTransformer3DModel(**SPLIT)
    inputs = {**make_inputs(SPLIT, per_token=False, masked=False), **change}
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_prompt_adaln_model_requires_sigma():
    model = LTX2VideoTransformer3DModel(**CONFIGS["ltx-2.3"])
    inputs = dict(make_inputs(CONFIGS["ltx-2.3"], per_token=False, masked=False), sigma=None)
    with pytest.raises(ValueError, match=r"sigma is required with a model with cross_attn_mod"):
        model(**inputs)
