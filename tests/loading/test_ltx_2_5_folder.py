"""from_pretrained on the LTX-2.5 folder the reference writes: components filed under the library "ltx2", Gemma 4,
the 2.5 transformer and connectors, the distilled scheduler config as it is, the x2 spatial and temporal latent
upsamplers from their subfolders; with or without its duration head."""

import json
import shutil

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler as ReferenceScheduler
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel as ReferenceUpsampler
from parity import relative_l2

from ltx2 import FlowMatchEulerDiscreteScheduler, LTX2LatentUpsamplerModel, LTX2Pipeline
from ltx2.loading.describe import describe


def test_pipeline_loads_every_component(ltx_2_5_folder):
    folder, reference = ltx_2_5_folder
    index = json.loads((folder / "model_index.json").read_text())
    assert index["connectors"] == ["ltx2", "LTX2TextConnectors"] and index["vocoder"][0] == "ltx2"
    assert index["duration_head"] == ["ltx2", "LTX2DurationHead"]
    ours = LTX2Pipeline.from_pretrained(folder)
    assert ours.model_version == "2.5"
    for name in ("transformer", "connectors", "vae", "audio_vae", "vocoder"):
        expected = getattr(reference, name).state_dict()
        actual = getattr(ours, name).state_dict()
        assert set(actual) == set(expected), name
        assert all(torch.equal(actual[key], expected[key]) for key in expected), name
    assert ours.transformer.config.ff_bias is False and ours.transformer.config.use_keyframes_abs_pos_embedding
    assert "LTX version 2.5" in describe(folder)[0]


def test_folder_without_its_duration_head_loads(ltx_2_5_folder, tmp_path):
    folder, _ = ltx_2_5_folder
    copy = shutil.copytree(folder, tmp_path / "no-duration-head", ignore=shutil.ignore_patterns("duration_head"))
    index = json.loads((copy / "model_index.json").read_text())
    (copy / "model_index.json").write_text(json.dumps({**index, "duration_head": [None, None]}))
    ours = LTX2Pipeline.from_pretrained(copy)
    assert ours.model_version == "2.5" and ours.transformer is not None and ours.text_encoder is not None


def test_distilled_scheduler_config_loads_as_is(ltx_2_5_folder):
    """No dynamic shifting and no terminal stretch: the plain linear schedule stays linear, as in the reference."""
    folder, _ = ltx_2_5_folder
    ours = FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler")
    reference = ReferenceScheduler.from_pretrained(folder, subfolder="scheduler")
    assert ours.config.use_dynamic_shifting is False and ours.config.shift_terminal is None
    sigmas = np.linspace(1.0, 1 / 8, 8)
    ours.set_timesteps(sigmas=sigmas)
    reference.set_timesteps(sigmas=sigmas)
    assert torch.equal(ours.sigmas, reference.sigmas) and torch.equal(ours.timesteps, reference.timesteps)
    assert torch.allclose(ours.sigmas[:-1].double(), torch.from_numpy(sigmas))


@torch.no_grad()
def test_spatial_and_temporal_upsamplers_load_from_their_subfolders(ltx_2_5_folder):
    folder, _ = ltx_2_5_folder
    latents = torch.randn(1, 4, 3, 4, 6, generator=torch.Generator().manual_seed(2))
    shapes = {"latent_upsampler": (1, 4, 3, 8, 12), "temporal_latent_upsampler": (1, 4, 5, 4, 6)}
    for subfolder, shape in shapes.items():
        ours = LTX2LatentUpsamplerModel.from_pretrained(folder, subfolder=subfolder)
        reference = ReferenceUpsampler.from_pretrained(folder, subfolder=subfolder).eval()
        expected, actual = reference(latents), ours(latents)
        assert actual.shape == expected.shape == shape
        assert relative_l2(actual, expected) <= 1e-5
