"""The official sampling core's pieces on their own: schedule, guider binning, LoRA fusion, per-stream STG, noise."""

from __future__ import annotations

import pytest
import torch

from tiny_files import write_tiny_official

from ltx2.official import MultiModalGuiderFactory, MultiModalGuiderParams
from ltx2.official.models import OfficialModels
from ltx2.official.sampling import LatentState, add_noise, guide, perturbed_streams, shifted_sigmas


def test_constant_shift_schedule():
    """LTX2Scheduler().execute(6) without a latent: the 4096-token shift, stretched to 0.1 (parity notes, sec. 5)."""
    expected = torch.tensor([1.0, 0.9423, 0.861, 0.7379, 0.5294, 0.1, 0.0])
    assert torch.allclose(shifted_sigmas(6), expected, atol=1e-4)
    assert shifted_sigmas(6).dtype == torch.float32
    assert not torch.allclose(shifted_sigmas(6, tokens=12), expected, atol=1e-2)  # HQ: shifted for its tokens


def test_guider_params_binned_by_sigma():
    low, high = MultiModalGuiderParams(cfg_scale=2.0), MultiModalGuiderParams(cfg_scale=5.0)
    factory = MultiModalGuiderFactory.from_dict({0.5: low, 1.0: high})
    assert [factory.params(s).cfg_scale for s in (1.2, 1.0, 0.7, 0.5, 0.1)] == [5.0, 5.0, 5.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="skip_step"):
        MultiModalGuiderParams(skip_step=-1)


def test_guidance_in_the_prediction_dtype_with_a_global_rescale():
    generator = torch.Generator().manual_seed(0)
    cond, uncond, perturbed, isolated = (torch.randn(1, 6, 4, generator=generator).to(torch.bfloat16)
                                         for _ in range(4))
    params = MultiModalGuiderParams(3.0, 1.0, [0], 0.7, 3.0, 0)
    guided = guide(params, cond, uncond, perturbed, isolated)
    raw = cond + 2.0 * (cond - uncond) + 1.0 * (cond - perturbed) + 2.0 * (cond - isolated)
    factor = 0.7 * (cond.std() / raw.std()) + 0.3
    assert guided.dtype == torch.bfloat16 and torch.equal(guided, raw * factor)


def test_noise_on_the_packed_layout_in_the_model_dtype():
    state = LatentState(torch.zeros(1, 12, 128, dtype=torch.bfloat16), torch.ones(1, 12, 1),
                        torch.zeros(1, 12, 128, dtype=torch.bfloat16), torch.zeros(1, 3, 12, 2))
    state.mask[:, :4] = 0.0  # conditioning tokens keep their clean value
    noised = add_noise(state, torch.Generator().manual_seed(10)).latent
    expected = torch.randn(1, 12, 128, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(10))
    assert noised.dtype == torch.bfloat16
    assert torch.equal(noised[:, 4:], expected[:, 4:]) and torch.equal(noised[:, :4], torch.zeros(1, 4, 128))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    paths = write_tiny_official(tmp_path_factory.mktemp("tiny-official-core"))
    return paths, OfficialModels(paths["checkpoint"], paths["gemma_root"], [], device="cpu")


def test_lora_fused_the_official_way_and_undone(models):
    """W + bf16((B * strength) @ A) rounded in bf16, no alpha; a later call without it restores the file's W."""
    from safetensors.torch import load_file

    from ltx2.official import LoraPathStrengthAndSDOps

    paths, official = models
    linear = official.transformer.transformer_blocks[0].attn1.to_q
    original = linear.weight.detach().clone()
    lora = load_file(paths["distilled_lora"])
    down = lora["diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight"]
    up = lora["diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight"]
    official.use_loras([LoraPathStrengthAndSDOps(paths["distilled_lora"], 0.5)])
    assert torch.equal(linear.weight, torch.matmul(up * 0.5, down).to(torch.bfloat16) + original)
    official.use_loras([])
    assert torch.equal(linear.weight, original)


def test_stg_perturbs_each_stream_in_its_own_blocks(models):
    """The audio self-attention is left alone in a block only video STG lists (A2Vid's video-only STG)."""
    from ltx2.models.layers import Perturbation

    _, official = models
    calls = []
    block = official.transformer.transformer_blocks[1]
    with perturbed_streams(official.transformer, [1], []) as union:
        hooks = [attention.register_forward_pre_hook(
            lambda module, args, kwargs, name=name: calls.append((name, kwargs.get("perturbation") is not None)),
            with_kwargs=True) for name, attention in (("video", block.attn1), ("audio", block.audio_attn1))]
        for attention in (block.attn1, block.audio_attn1):
            width = attention.to_q.in_features
            attention(torch.zeros(1, 2, width, dtype=torch.bfloat16),
                      perturbation=Perturbation(torch.zeros(1, 1, 1), values_only=True))
        for hook in hooks:
            hook.remove()
    assert union == [1] and calls == [("video", True), ("audio", False)]
    assert not block.audio_attn1._forward_pre_hooks  # the context leaves no hook behind
