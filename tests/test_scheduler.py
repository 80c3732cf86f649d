"""FlowMatchEulerDiscreteScheduler: schedules bit-exact with diffusers 0.42.1, the Euler loop, config round trips."""

import diffusers
import numpy as np
import pytest
import torch
from diffusers.pipelines.ltx2.pipeline_ltx2 import calculate_shift as reference_shift

from ltx2 import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES, FlowMatchEulerDiscreteScheduler
from ltx2.scheduler import calculate_shift
from parity import relative_l2

DEV = dict(
    use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05, base_image_seq_len=1024, max_image_seq_len=4096,
    shift_terminal=0.1,
)
CONFIGS = {"dev": DEV, "default": {}, "static-shift": dict(shift=3.0), "linear": dict(use_dynamic_shifting=True, time_shift_type="linear")}
TOKENS = 6144  # 768x512x121 -> 16 x 16 x 24 latent tokens


def both(config: dict):
    return FlowMatchEulerDiscreteScheduler(**config), diffusers.FlowMatchEulerDiscreteScheduler(**config)


def mu_for(config: dict) -> float:
    scheduler = FlowMatchEulerDiscreteScheduler(**config)
    c = scheduler.config
    return calculate_shift(TOKENS, c.base_image_seq_len, c.max_image_seq_len, c.base_shift, c.max_shift)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("steps", [40, 30, 3, 2])
def test_schedule_bit_exact_with_reference(name, steps):
    config = CONFIGS[name]
    ours, reference = both(config)
    mu = mu_for(config)
    sigmas = np.linspace(1.0, 1 / steps, steps)  # what the LTX-2 pipelines pass
    ours.set_timesteps(sigmas=sigmas, mu=mu)
    reference.set_timesteps(sigmas=sigmas, mu=mu)
    assert torch.equal(ours.sigmas, reference.sigmas) and torch.equal(ours.timesteps, reference.timesteps)
    ours, reference = both(config)
    ours.set_timesteps(steps, mu=mu)
    reference.set_timesteps(steps, mu=mu)
    assert torch.equal(ours.sigmas, reference.sigmas) and torch.equal(ours.timesteps, reference.timesteps)


def test_dev_schedule_values_and_shift():
    assert calculate_shift(TOKENS, 1024, 4096, 0.95, 2.05) == reference_shift(TOKENS, 1024, 4096, 0.95, 2.05)
    assert calculate_shift(TOKENS, 1024, 4096, 0.95, 2.05) == pytest.approx(2.78333, abs=1e-5)
    scheduler = FlowMatchEulerDiscreteScheduler(**DEV)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / 40, 40), mu=mu_for(DEV))
    expected_head = [1.0, 0.997985, 0.99587, 0.993649, 0.991312]
    expected_tail = [0.615389, 0.544788, 0.449136, 0.31222, 0.1, 0.0]
    assert scheduler.sigmas[:5].tolist() == pytest.approx(expected_head, abs=1e-6)
    assert scheduler.sigmas[-6:].tolist() == pytest.approx(expected_tail, abs=1e-6)
    assert torch.equal(scheduler.timesteps, scheduler.sigmas[:-1] * 1000)


@pytest.mark.parametrize("sigmas", [DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES])
def test_distilled_sigmas_used_as_given(sigmas):
    ours = FlowMatchEulerDiscreteScheduler.from_config(
        FlowMatchEulerDiscreteScheduler(**DEV).config, use_dynamic_shifting=False, shift_terminal=None
    )
    reference = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        diffusers.FlowMatchEulerDiscreteScheduler(**DEV).config, use_dynamic_shifting=False, shift_terminal=None
    )
    ours.set_timesteps(sigmas=sigmas)
    reference.set_timesteps(sigmas=sigmas)
    assert torch.equal(ours.sigmas, reference.sigmas)
    assert ours.sigmas[:-1].tolist() == pytest.approx(sigmas) and ours.sigmas[-1] == 0


def test_single_step_dev_schedule_is_finite():
    scheduler = FlowMatchEulerDiscreteScheduler(**DEV)
    scheduler.set_timesteps(sigmas=[1.0], mu=mu_for(DEV))
    assert scheduler.sigmas.tolist() == [1.0, 0.0]


def test_euler_loop_matches_reference():
    ours, reference = both(DEV)
    for scheduler in (ours, reference):
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / 8, 8), mu=mu_for(DEV))
        scheduler.set_begin_index(0)
    generator = torch.Generator().manual_seed(0)
    sample = expected = torch.randn(2, 16, 4, generator=generator)
    for t in ours.timesteps:
        velocity = torch.randn(2, 16, 4, generator=generator)
        sample = ours.step(velocity, t, sample, return_dict=False)[0]
        expected = reference.step(velocity, t, expected).prev_sample
    assert relative_l2(sample, expected) <= 1e-6
    assert ours.step_index == 8


def test_step_without_begin_index_finds_the_timestep():
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=[1.0, 0.5])
    sample = torch.zeros(3)
    out = scheduler.step(torch.ones(3), scheduler.timesteps[0], sample).prev_sample
    assert torch.allclose(out, torch.full((3,), -0.5))


def test_config_round_trip(tmp_path):
    scheduler = FlowMatchEulerDiscreteScheduler(**DEV)
    scheduler.save_pretrained(tmp_path / "scheduler")
    loaded = FlowMatchEulerDiscreteScheduler.from_pretrained(tmp_path, subfolder="scheduler")
    assert dict(loaded.config) == dict(scheduler.config)
    reference = diffusers.FlowMatchEulerDiscreteScheduler(**DEV)
    reference.save_pretrained(tmp_path / "reference")
    from_reference = FlowMatchEulerDiscreteScheduler.from_pretrained(tmp_path / "reference")
    assert from_reference.config.shift_terminal == 0.1 and from_reference.config.use_dynamic_shifting


def test_bad_input_raises():
    scheduler = FlowMatchEulerDiscreteScheduler(**DEV)
    with pytest.raises(ValueError, match="num_inference_steps"):
        scheduler.set_timesteps(0, mu=1.0)
    with pytest.raises(ValueError, match="sigmas"):
        scheduler.set_timesteps(sigmas=[0.5, 0.9], mu=1.0)
    with pytest.raises(ValueError, match="sigmas"):
        scheduler.set_timesteps(sigmas=[1.5, 0.9], mu=1.0)
    with pytest.raises(ValueError, match="mu"):
        scheduler.set_timesteps(4)
    with pytest.raises(ValueError, match="use_karras_sigmas"):
        FlowMatchEulerDiscreteScheduler.from_config({"use_karras_sigmas": True})
    with pytest.raises(ValueError, match="warp_factor"):
        FlowMatchEulerDiscreteScheduler.from_config({"warp_factor": 2})
