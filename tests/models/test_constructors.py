"""Every ltx2 network (and the scheduler) takes every keyword diffusers 0.42.1's constructor takes, in its order, and
accepts each one diffusers defaults to a flag or None at that default; a feature ltx2 does not implement is refused
by name."""

import inspect

import diffusers
import pytest
from diffusers.pipelines.ltx2 import connectors, latent_upsampler, vocoder

import ltx2

PAIRS = [
    (ltx2.LTX2VideoTransformer3DModel, diffusers.LTX2VideoTransformer3DModel),
    (ltx2.LTX2TextConnectors, connectors.LTX2TextConnectors),
    (ltx2.AutoencoderKLLTX2Video, diffusers.AutoencoderKLLTX2Video),
    (ltx2.AutoencoderKLLTX2Audio, diffusers.AutoencoderKLLTX2Audio),
    (ltx2.LTX2Vocoder, vocoder.LTX2Vocoder),
    (ltx2.LTX2VocoderWithBWE, vocoder.LTX2VocoderWithBWE),
    (ltx2.LTX2LatentUpsamplerModel, latent_upsampler.LTX2LatentUpsamplerModel),
    (ltx2.FlowMatchEulerDiscreteScheduler, diffusers.FlowMatchEulerDiscreteScheduler),
]
# Reference defaults ltx2 replaces with LTX-2's real value (the reference's class default is not the model's).
LTX_VALUES = {"rope_type": "split"}


def _keywords(cls: type) -> dict[str, inspect.Parameter]:
    return {name: parameter for name, parameter in inspect.signature(cls.__init__).parameters.items() if name != "self"}


@pytest.mark.parametrize("ours, reference", PAIRS, ids=[pair[0].__name__ for pair in PAIRS])
def test_constructor_takes_every_reference_keyword(ours, reference):
    theirs = _keywords(reference)
    assert set(theirs) <= set(_keywords(ours))
    assert list(theirs) == [name for name in _keywords(ours) if name in theirs]  # same positional order
    # Each keyword passed directly at the reference's default (in a small instance where sizes matter).
    neutral = {name: LTX_VALUES.get(name, parameter.default) for name, parameter in theirs.items()
               if isinstance(parameter.default, bool) or parameter.default is None}
    for name, value in neutral.items():
        ours.resolve_config({}, **{name: value})


def test_neutral_keywords_are_accepted_directly_and_refused_when_switched_on():
    ltx2.LTX2TextConnectors(
        caption_channels=16, text_proj_in_factor=2, video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=8, video_connector_num_layers=1, audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1, causal_temporal_positioning=False,
    )
    with pytest.raises(ValueError, match="causal_temporal_positioning"):
        ltx2.LTX2TextConnectors(causal_temporal_positioning=True)
    ltx2.FlowMatchEulerDiscreteScheduler(use_karras_sigmas=False, stochastic_sampling=False, invert_sigmas=False)
    with pytest.raises(ValueError, match="stochastic_sampling"):
        ltx2.FlowMatchEulerDiscreteScheduler(stochastic_sampling=True)
