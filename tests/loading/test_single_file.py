"""Lightricks' original single-file checkpoints: every tensor lands where the reference's conversion puts it."""

import json

import pytest
import torch
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline
from models.test_transformer import make_inputs
from original_checkpoint import (
    HEADER_CONFIG,
    REFERENCE_CONFIGS,
    UPSAMPLER_HEADER,
    make_upsampler_reference,
    quantize_fp8,
    reference_from_original,
    write_combined,
    write_single_file,
)
from parity import LEGACY, relative_l2
from safetensors.torch import load_file, save_file
from tiny_pipeline import make_text_encoder, make_tokenizer

from ltx2 import (
    AutoencoderKLLTX2Audio,
    AutoencoderKLLTX2Video,
    LTX2LatentUpsamplePipeline,
    LTX2LatentUpsamplerModel,
    LTX2Pipeline,
    LTX2TextConnectors,
    LTX2VideoTransformer3DModel,
    LTX2Vocoder,
)
from ltx2.loading.checkpoint import CheckpointError
from ltx2.scheduler import LTX2_DISTILLED_SCHEDULER_CONFIG, LTX2_SCHEDULER_CONFIG
from ltx2.text import load_text_encoder

OURS = {
    "transformer": LTX2VideoTransformer3DModel,
    "connectors": LTX2TextConnectors,
    "vae": AutoencoderKLLTX2Video,
    "audio_vae": AutoencoderKLLTX2Audio,
    "vocoder": LTX2Vocoder,
}


@pytest.fixture(scope="module")
def dev_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "ltx-2-19b-dev.safetensors"
    write_combined(path)
    return path


def assert_same_network(ours: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Same tensors under the same names, and the same constructor arguments wherever both have one."""
    ours_state, reference_state = ours.state_dict(), reference.state_dict()
    assert set(ours_state) == set(reference_state)
    assert [key for key in ours_state if not torch.equal(ours_state[key], reference_state[key])] == []

    def plain(value):
        return list(value) if isinstance(value, tuple | list) else value

    differing = {key: (ours.config[key], reference.config[key]) for key in ours.config_keys()
                 if key in reference.config and plain(ours.config[key]) != plain(reference.config[key])}
    assert differing == {}


@torch.no_grad()
def outputs(component: str, model: torch.nn.Module) -> torch.Tensor:
    """One forward pass of each kind of network, on seeded inputs."""
    generator = torch.Generator().manual_seed(3)
    if component == "transformer":
        video, audio = model(**make_inputs(REFERENCE_CONFIGS["transformer"], per_token=False, masked=True))
        return torch.cat([video.flatten(), audio.flatten()])
    if component == "connectors":
        hidden = torch.randn(2, 16, 16, 3, generator=generator)
        mask = torch.ones(2, 16, dtype=torch.long)
        mask[1, :5] = 0
        video, audio, _ = model(hidden, mask)
        return torch.cat([video.flatten(), audio.flatten()])
    if component == "vae":
        return model.decode(torch.randn(1, 4, 2, 2, 2, generator=generator), return_dict=False)[0]
    if component == "audio_vae":
        return model.decode(torch.randn(1, 2, 5, 4, generator=generator), return_dict=False)[0]
    return model(torch.randn(1, 2, 6, 8, generator=generator))


@pytest.mark.parametrize("component", list(OURS))
def test_each_network_matches_the_reference_conversion(dev_file, component):
    reference = reference_from_original(component, load_file(str(dev_file)))
    ours = OURS[component].from_single_file(dev_file)
    assert_same_network(ours, reference)
    assert relative_l2(outputs(component, ours), outputs(component, reference)) <= 1e-5


def test_fp8_weights_are_dequantized_with_and_without_scales(tmp_path):
    plain = tmp_path / "plain.safetensors"
    write_combined(plain)
    stored, meaning = quantize_fp8(load_file(str(plain)))
    assert any(value.dtype == torch.float8_e4m3fn for value in stored.values())
    assert any(key.endswith("weight_scale") for key in stored)
    fp8_file = write_single_file(tmp_path / "ltx-2-19b-dev-fp8.safetensors", stored, HEADER_CONFIG)
    reference = reference_from_original("transformer", meaning)
    ours = LTX2VideoTransformer3DModel.from_single_file(fp8_file)
    assert_same_network(ours, reference)
    assert relative_l2(outputs("transformer", ours), outputs("transformer", reference)) <= 1e-5
    in_bf16 = LTX2VideoTransformer3DModel.from_single_file(fp8_file, torch_dtype=torch.bfloat16)
    key = next(key for key in ours.state_dict() if key.endswith("attn1.to_q.weight"))
    assert in_bf16.state_dict()[key].dtype == torch.bfloat16
    assert torch.equal(in_bf16.state_dict()[key], ours.state_dict()[key].to(torch.bfloat16))


def test_spatial_upsampler_file(tmp_path):
    reference = make_upsampler_reference()
    path = write_single_file(tmp_path / "ltx-2-spatial-upscaler-x2-1.0.safetensors", reference.state_dict(),
                             UPSAMPLER_HEADER)
    ours = LTX2LatentUpsamplerModel.from_single_file(path)
    assert_same_network(ours, reference)
    latents = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert relative_l2(ours(latents), reference(latents)) <= 1e-5


@pytest.fixture(scope="module")
def text_encoder_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma")
    torch.manual_seed(5)
    make_text_encoder().save_pretrained(folder)
    return folder


def reference_pipeline(path, text_encoder_folder) -> ReferencePipeline:
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import Gemma3ForConditionalGeneration

    tensors = load_file(str(path))
    return ReferencePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**LTX2_SCHEDULER_CONFIG),
        text_encoder=Gemma3ForConditionalGeneration.from_pretrained(text_encoder_folder).eval(),
        tokenizer=make_tokenizer(),
        **{name: reference_from_original(name, tensors) for name in OURS},
    )


def test_pipeline_from_single_file_generates_as_the_reference(dev_file, text_encoder_folder):
    ours = LTX2Pipeline.from_single_file(dev_file, text_encoder=load_text_encoder(text_encoder_folder),
                                         tokenizer=make_tokenizer())
    assert dict(ours.scheduler.config, **LTX2_SCHEDULER_CONFIG) == dict(ours.scheduler.config)
    reference = reference_pipeline(dev_file, text_encoder_folder)
    arguments = dict(prompt="a robot dancing in the rain", negative_prompt="blurry", width=64, height=64,
                     num_frames=9, num_inference_steps=2, max_sequence_length=16, output_type="np", return_dict=False)
    video, audio = ours(generator=torch.Generator().manual_seed(0), **arguments)
    expected_video, expected_audio = reference(generator=torch.Generator().manual_seed(0), guidance_scale=4.0,
                                               audio_guidance_scale=4.0, **arguments, **LEGACY)
    assert relative_l2(torch.as_tensor(video), torch.as_tensor(expected_video)) <= 1e-3
    assert relative_l2(audio, expected_audio) <= 1e-3


def test_distilled_file_gets_the_distilled_schedule(dev_file, tmp_path, text_encoder_folder):
    distilled = tmp_path / "ltx-2-19b-distilled.safetensors"
    distilled.symlink_to(dev_file)
    pipe = LTX2Pipeline.from_single_file(distilled, text_encoder=load_text_encoder(text_encoder_folder),
                                         tokenizer=make_tokenizer())
    assert dict(pipe.scheduler.config, **LTX2_DISTILLED_SCHEDULER_CONFIG) == dict(pipe.scheduler.config)


def test_original_lora_file_on_a_single_file_pipeline(dev_file, tmp_path, text_encoder_folder):
    """The distilled LoRA's format (original names, `diffusion_model.` prefix) on every Linear of the DiT."""
    tensors = load_file(str(dev_file))
    generator = torch.Generator().manual_seed(11)
    lora = {}
    for key, value in tensors.items():
        if key.startswith("model.diffusion_model.") and key.endswith(".weight") and value.dim() == 2 \
                and "embeddings_connector" not in key:
            module = "diffusion_model." + key.removeprefix("model.diffusion_model.").removesuffix(".weight")
            lora[f"{module}.lora_A.weight"] = torch.randn(4, value.shape[1], generator=generator) / value.shape[1]
            lora[f"{module}.lora_B.weight"] = torch.randn(value.shape[0], 4, generator=generator) * 0.3
    path = tmp_path / "ltx-2-19b-distilled-lora-384.safetensors"
    save_file(lora, str(path))
    ours = LTX2Pipeline.from_single_file(dev_file, text_encoder=load_text_encoder(text_encoder_folder),
                                         tokenizer=make_tokenizer())
    reference = reference_pipeline(dev_file, text_encoder_folder)
    before = outputs("transformer", ours.transformer)
    ours.load_lora_weights(str(path))
    reference.load_lora_weights(str(path))
    expected = outputs("transformer", reference.transformer)
    assert relative_l2(expected, before) > 0.05
    assert relative_l2(outputs("transformer", ours.transformer), expected) <= 1e-5


def test_upsample_pipeline_from_the_combined_file_and_the_upsampler_file(dev_file, tmp_path):
    with pytest.raises(ValueError, match="latent_upsampler=None: the combined checkpoint holds no upsampler"):
        LTX2LatentUpsamplePipeline.from_single_file(dev_file)
    path = write_single_file(tmp_path / "up.safetensors", make_upsampler_reference().state_dict(), UPSAMPLER_HEADER)
    pipe = LTX2LatentUpsamplePipeline.from_single_file(
        dev_file, latent_upsampler=LTX2LatentUpsamplerModel.from_single_file(path))
    latents = torch.randn(1, 4, 2, 2, 2, generator=torch.Generator().manual_seed(2))
    assert pipe(latents=latents, output_type="latent", return_dict=False)[0].shape == (1, 4, 2, 4, 4)


def test_checkpoint_errors_name_the_file_and_keys(dev_file, tmp_path):
    tensors = load_file(str(dev_file))
    broken = dict(tensors)
    broken.pop("model.diffusion_model.proj_out.weight")
    broken["model.diffusion_model.no_such_layer.weight"] = torch.zeros(2)
    path = write_single_file(tmp_path / "broken.safetensors", broken, HEADER_CONFIG)
    with pytest.raises(CheckpointError, match=r"broken\.safetensors.*missing keys: proj_out\.weight.*no_such_layer"):
        LTX2VideoTransformer3DModel.from_single_file(path)
    stray = write_single_file(tmp_path / "stray.safetensors", {**tensors, "stray.weight": torch.zeros(1)},
                              HEADER_CONFIG)
    with pytest.raises(CheckpointError, match=r"stray\.safetensors: keys under no LTX-2 prefix: stray\.weight"):
        LTX2Vocoder.from_single_file(stray)
    no_vae = write_single_file(tmp_path / "no_vae.safetensors",
                               {key: value for key, value in tensors.items() if not key.startswith("vae.")},
                               HEADER_CONFIG)
    with pytest.raises(CheckpointError, match=r"no_vae\.safetensors: holds no vae weights"):
        AutoencoderKLLTX2Video.from_single_file(no_vae)
    later = write_single_file(tmp_path / "ltx-2.3.safetensors", tensors,
                              {**HEADER_CONFIG, "transformer": {**HEADER_CONFIG["transformer"],
                                                                "caption_proj_before_connector": True}})
    with pytest.raises(CheckpointError, match=r"ltx-2\.3\.safetensors: a later LTX version.*caption_proj_before"):
        LTX2VideoTransformer3DModel.from_single_file(later)
    with pytest.raises(FileNotFoundError, match="not 'owner/repo/file.safetensors'"):
        LTX2Vocoder.from_single_file(tmp_path / "missing.safetensors")


def test_header_config_is_read_not_assumed(dev_file, tmp_path):
    """A changed header value changes the network built (here: float32 RoPE grids, another theta)."""
    tensors = load_file(str(dev_file))
    header = json.loads(json.dumps(HEADER_CONFIG))
    header["transformer"].pop("frequencies_precision")
    header["transformer"]["positional_embedding_theta"] = 500.0
    path = write_single_file(tmp_path / "other.safetensors", tensors, header)
    model = LTX2VideoTransformer3DModel.from_single_file(path)
    assert model.config.rope_double_precision is False and model.config.rope_theta == 500.0
