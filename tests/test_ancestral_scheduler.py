"""LTXEulerAncestralRFScheduler against diffusers 0.42.1: schedules, ancestral steps with a seeded generator, configs."""

import diffusers
import pytest
import torch

from ltx2 import DISTILLED_SIGMA_VALUES, LTXEulerAncestralRFScheduler
from ltx2.scheduler import TEMPORAL_ANCESTRAL_ETA, ancestral_tile_seed


def both(**config):
    return LTXEulerAncestralRFScheduler(**config), diffusers.LTXEulerAncestralRFScheduler(**config)


@pytest.mark.parametrize("steps", [1, 4, 8, 30])
def test_default_schedule(steps):
    ours, reference = both(eta=0.5)
    ours.set_timesteps(steps)
    reference.set_timesteps(steps)
    assert torch.equal(ours.sigmas, reference.sigmas) and torch.equal(ours.timesteps, reference.timesteps)
    assert ours.num_inference_steps == reference.num_inference_steps


@pytest.mark.parametrize("as_tensor", [False, True])
def test_explicit_sigmas(as_tensor):
    sigmas = [*DISTILLED_SIGMA_VALUES, 0.0]
    ours, reference = both()
    given = torch.tensor(sigmas, dtype=torch.float64) if as_tensor else sigmas
    ours.set_timesteps(sigmas=given)
    reference.set_timesteps(sigmas=given)
    assert torch.equal(ours.sigmas, reference.sigmas) and torch.equal(ours.timesteps, reference.timesteps)
    ours.set_timesteps(timesteps=sigmas)
    assert torch.equal(ours.sigmas, reference.sigmas)
    with pytest.warns(UserWarning, match="not 0"):
        ours.set_timesteps(sigmas=[1.0, 0.5])
    with pytest.raises(TypeError):
        ours.set_timesteps(sigmas=(1.0, 0.0))


@pytest.mark.parametrize("eta,s_noise,dtype", [
    (TEMPORAL_ANCESTRAL_ETA, 1.0, torch.float32), (1.0, 1.0, torch.float32), (0.0, 1.0, torch.float32),
    (0.5, 0.7, torch.float32), (0.5, 1.0, torch.bfloat16),
])
def test_sampling_loop_matches(eta, s_noise, dtype):
    ours, reference = both(eta=eta, s_noise=s_noise)
    sigmas = [1.0, 0.9, 0.7, 0.4, 0.1, 0.0]
    ours.set_timesteps(sigmas=sigmas)
    reference.set_timesteps(sigmas=sigmas)
    sample = torch.randn(2, 24, 16).to(dtype)
    x_ours, x_ref = sample, sample
    g_ours, g_ref = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for t in reference.timesteps:
        velocity = torch.sin(x_ref.float() * 3).to(dtype)  # any model; the same on both sides
        x_ours = ours.step(velocity, t, x_ours, generator=g_ours).prev_sample
        x_ref = reference.step(velocity, t, x_ref, generator=g_ref).prev_sample
        assert x_ours.dtype == x_ref.dtype and torch.equal(x_ours, x_ref)
    # Past the end, the sample comes back unchanged, as in the reference.
    extra = ours.step(x_ours, reference.timesteps[-1], x_ours, return_dict=False)[0]
    assert torch.equal(extra, x_ours)


def test_begin_index_and_bad_timestep():
    ours, reference = both(eta=0.5)
    for scheduler in (ours, reference):
        scheduler.set_timesteps(sigmas=[1.0, 0.8, 0.5, 0.0])
        scheduler.set_begin_index(1)
    x = torch.randn(1, 8, 4)
    a = ours.step(x, ours.timesteps[1], x, generator=torch.Generator().manual_seed(1)).prev_sample
    b = reference.step(x, reference.timesteps[1], x, generator=torch.Generator().manual_seed(1)).prev_sample
    assert torch.equal(a, b) and ours.step_index == reference.step_index == 2
    with pytest.raises(ValueError, match="integer"):
        ours.step(x, 3, x)
    with pytest.raises(ValueError, match="set_timesteps"):
        LTXEulerAncestralRFScheduler().step(x, 1.0, x)


def test_config_round_trip(tmp_path):
    ours = LTXEulerAncestralRFScheduler(eta=0.5, s_noise=0.9)
    ours.save_pretrained(tmp_path / "ours")
    assert dict(diffusers.LTXEulerAncestralRFScheduler.from_pretrained(tmp_path / "ours").config)["eta"] == 0.5
    diffusers.LTXEulerAncestralRFScheduler(eta=0.25).save_pretrained(tmp_path / "reference")
    loaded = LTXEulerAncestralRFScheduler.from_pretrained(tmp_path / "reference")
    assert isinstance(loaded, LTXEulerAncestralRFScheduler) and loaded.config.eta == 0.25


def test_tile_seed():
    generator = torch.Generator().manual_seed(42)
    assert ancestral_tile_seed(generator, 1, 0) == 1042
    assert ancestral_tile_seed([generator], 2, 3) == 2045
    assert ancestral_tile_seed(None, 1, 1) == 1001
