"""Lightricks' original single-file checkpoints (LTX-2.0, LTX-2.3 and LTX-2.5): every tensor lands where the
reference's conversion puts it."""

import json
from types import SimpleNamespace

import pytest
import torch
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer
from diffusers.pipelines.ltx2 import LTX2Pipeline as ReferencePipeline
from network_outputs import OURS, OURS_2_3, outputs
from original_checkpoint import (
    HEADER_CONFIG,
    VERSIONS,
    LTX_2_3_HEADER,
    LTX_2_3_UPSAMPLERS,
    UPSAMPLER_HEADER,
    make_upsampler_reference,
    quantize_fp8,
    reference_duration_head,
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
    LTX2DurationHead,
    LTX2ImageToVideoPipeline,
    LTX2LatentUpsamplePipeline,
    LTX2LatentUpsamplerModel,
    LTX2Pipeline,
    LTX2TextConnectors,
    LTX2VideoDiffusionDecoderModel,
    LTX2VideoTransformer3DModel,
    LTX2Vocoder,
    LTX2VocoderWithBWE,
)
from ltx2.loading.checkpoint import CheckpointError
from ltx2.loading.describe import _count, describe
from ltx2.scheduler import LTX2_DISTILLED_SCHEDULER_CONFIG, LTX2_SCHEDULER_CONFIG
from ltx2.text import load_text_encoder


@pytest.fixture(scope="module")
def dev_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "ltx-2-19b-dev.safetensors"
    write_combined(path)
    return path


@pytest.fixture(scope="module")
def ltx_2_3_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("single-2.3") / "ltx-2.3-22b-dev.safetensors"
    write_combined(path, version="2.3")
    return path


@pytest.fixture(scope="module")
def ltx_2_5_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("single-2.5") / "ltx-2.5-22b-dev.safetensors"
    write_combined(path, version="2.5")
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


def reference_pipeline(path, text_encoder_folder, version: str = "2.0") -> ReferencePipeline:
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import Gemma3ForConditionalGeneration

    tensors = load_file(str(path))
    return ReferencePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**LTX2_SCHEDULER_CONFIG),
        text_encoder=Gemma3ForConditionalGeneration.from_pretrained(text_encoder_folder).eval(),
        tokenizer=make_tokenizer(),
        **{name: reference_from_original(name, tensors, version) for name in OURS},
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


@pytest.mark.parametrize("version, checkpoint", [("2.0", "dev_file"), ("2.3", "ltx_2_3_file")])
def test_original_lora_file_on_a_single_file_pipeline(request, tmp_path, text_encoder_folder, version, checkpoint):
    """The distilled LoRA's format (original names, `diffusion_model.` prefix) on every Linear of the DiT (LTX-2.3's
    gates and prompt AdaLN too), loaded by the reference through its own LoRA key conversion."""
    checkpoint = request.getfixturevalue(checkpoint)
    tensors = load_file(str(checkpoint))
    generator = torch.Generator().manual_seed(11)
    lora = {}
    for key, value in tensors.items():
        if key.startswith("model.diffusion_model.") and key.endswith(".weight") and value.dim() == 2 \
                and "embeddings_connector" not in key:
            module = "diffusion_model." + key.removeprefix("model.diffusion_model.").removesuffix(".weight")
            lora[f"{module}.lora_A.weight"] = torch.randn(4, value.shape[1], generator=generator) / value.shape[1]
            lora[f"{module}.lora_B.weight"] = torch.randn(value.shape[0], 4, generator=generator) * 0.3
    if version == "2.3":
        assert any("prompt_adaln_single" in key for key in lora) and any("to_gate_logits" in key for key in lora)
    path = tmp_path / "distilled-lora-384.safetensors"
    save_file(lora, str(path))
    ours = LTX2Pipeline.from_single_file(checkpoint, text_encoder=load_text_encoder(text_encoder_folder),
                                         tokenizer=make_tokenizer())
    reference = reference_pipeline(checkpoint, text_encoder_folder, version)
    before = outputs("transformer", ours.transformer, version)
    ours.load_lora_weights(str(path))
    reference.load_lora_weights(str(path))
    expected = outputs("transformer", reference.transformer, version)
    assert relative_l2(expected, before) > 0.05
    assert relative_l2(outputs("transformer", ours.transformer, version), expected) <= 1e-5


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


# ---- LTX-2.3 (ltx-2.3-22b-dev.safetensors and the like)


@pytest.mark.parametrize("version", ["2.3", "2.5"])
@pytest.mark.parametrize("component", list(OURS_2_3))
def test_each_later_network_matches_the_reference_conversion(request, version, component):
    """LTX-2.3's networks, and LTX-2.5's (the same but the transformer's 2.5 switches, read from its tensors)."""
    path = request.getfixturevalue({"2.3": "ltx_2_3_file", "2.5": "ltx_2_5_file"}[version])
    reference = reference_from_original(component, load_file(str(path)), version=version)
    ours = OURS_2_3[component].from_single_file(path)
    assert_same_network(ours, reference)
    assert relative_l2(outputs(component, ours, version), outputs(component, reference, version)) <= 1e-5


def test_ltx_2_3_header_is_read(ltx_2_3_file):
    """The version and LTX-2.3's flags come from the header: gated attention, cross-attention modulation, the
    caption projections in the connectors, the vocoder's two generators with the mel front end between them."""
    transformer = LTX2VideoTransformer3DModel.from_single_file(ltx_2_3_file).config
    assert transformer.gated_attn and transformer.audio_cross_attn_mod and transformer.perturbed_attn
    assert not transformer.use_prompt_embeddings
    connectors = LTX2TextConnectors.from_single_file(ltx_2_3_file).config
    assert connectors.per_modality_projections and connectors.proj_bias and connectors.video_gated_attn
    vocoder = LTX2VocoderWithBWE.from_single_file(ltx_2_3_file).config
    bwe = LTX_2_3_HEADER["vocoder"]["bwe"]
    assert (vocoder.filter_length, vocoder.hop_length, vocoder.num_mel_channels) == (bwe["n_fft"], 10, 8)
    assert (vocoder.act_fn, vocoder.antialias, vocoder.final_act_fn, vocoder.bwe_final_act_fn) == \
        ("snakebeta", True, None, None)
    assert vocoder.output_sampling_rate == 48000
    with pytest.raises(CheckpointError, match=r"ltx-2\.3-22b-dev\.safetensors: an LTX-2\.3 file; LTX2Vocoder is "
                                              r"the vocoder of LTX-2\.0 files"):
        LTX2Vocoder.from_single_file(ltx_2_3_file)
    with pytest.raises(CheckpointError, match=r"an LTX-2\.0 file; LTX2VocoderWithBWE is the vocoder of LTX-2\.3"):
        LTX2VocoderWithBWE.from_single_file(write_single_file(
            ltx_2_3_file.parent / "ltx-2-19b-dev.safetensors", {"vocoder.conv_pre.weight": torch.zeros(1)},
            HEADER_CONFIG))


def test_ltx_2_3_fp8_file_loads_upcast_and_kept_in_fp8(ltx_2_3_file, tmp_path):
    """Scaled and plain FP8 weights in the transformer's and the connectors' blocks."""
    blocks = ("model.diffusion_model.transformer_blocks.",
              "model.diffusion_model.video_embeddings_connector.transformer_1d_blocks.")
    stored, meaning = quantize_fp8(load_file(str(ltx_2_3_file)), blocks)
    path = write_single_file(tmp_path / "ltx-2.3-22b-dev-fp8.safetensors", stored, LTX_2_3_HEADER,
                             model_version="2.3.0")
    for component in ("transformer", "connectors"):
        reference = reference_from_original(component, meaning, version="2.3")
        ours = OURS_2_3[component].from_single_file(path)
        assert_same_network(ours, reference)
        assert relative_l2(outputs(component, ours, "2.3"), outputs(component, reference, "2.3")) <= 1e-5
        kept = OURS_2_3[component].from_single_file(path, keep_fp8=True)
        kept_fp8 = {key for key, value in kept.state_dict().items() if value.dtype == torch.float8_e4m3fn}
        assert kept_fp8 and all(key.startswith(("transformer_blocks.", "video_connector.")) for key in kept_fp8)
        assert torch.equal(outputs(component, kept, "2.3"), outputs(component, ours, "2.3"))


@pytest.mark.parametrize("name", list(LTX_2_3_UPSAMPLERS))
def test_ltx_2_3_upsampler_files(tmp_path, name):
    config, header = LTX_2_3_UPSAMPLERS[name]
    reference = make_upsampler_reference(config)
    path = write_single_file(tmp_path / f"ltx-2.3-{name}.safetensors", reference.state_dict(), header,
                             model_version="2.3.0")
    ours = LTX2LatentUpsamplerModel.from_single_file(path)
    assert_same_network(ours, reference)
    assert describe(path)[0].endswith("LTX-2 latent upsampler (original single file), model_version 2.3.0")
    latents = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = reference(latents)
        assert ours(latents).shape == expected.shape
        assert relative_l2(ours(latents), expected) <= 1e-5


def test_ltx_2_3_pipeline_from_single_file_generates_as_the_reference(ltx_2_3_file, text_encoder_folder):
    """At LTX-2.3's call defaults (CFG, STG, modality isolation, rescale, cross timesteps), the STG block moved to
    one the two-block tiny transformer has; the reference gets the same values."""
    ours = LTX2Pipeline.from_single_file(ltx_2_3_file, text_encoder=load_text_encoder(text_encoder_folder),
                                         tokenizer=make_tokenizer())
    assert isinstance(ours.vocoder, LTX2VocoderWithBWE) and ours.model_version == "2.3"
    reference = reference_pipeline(ltx_2_3_file, text_encoder_folder, "2.3")
    arguments = dict(prompt="a robot dancing in the rain", negative_prompt="blurry", width=64, height=64,
                     num_frames=9, max_sequence_length=16, output_type="np", return_dict=False)
    guidance = ours.default_call_kwargs(num_inference_steps=2, spatio_temporal_guidance_blocks=[1])
    assert guidance["stg_scale"] > 0 and guidance["modality_scale"] > 1 and guidance["use_cross_timestep"]
    video, audio = ours(generator=torch.Generator().manual_seed(0), num_inference_steps=2,
                        spatio_temporal_guidance_blocks=[1], **arguments)
    expected_video, expected_audio = reference(generator=torch.Generator().manual_seed(0), **arguments, **guidance)
    assert audio.shape == expected_audio.shape and audio.shape[-1] % 3 == 0  # 48 kHz: 3 samples per 16 kHz one
    assert relative_l2(torch.as_tensor(video), torch.as_tensor(expected_video)) <= 1e-3
    assert relative_l2(audio, expected_audio) <= 1e-3


def test_ltx_2_3_image_to_video_and_upsample_pipelines(ltx_2_3_file, tmp_path):
    """The image-to-video pipeline takes the same networks; the upsample pipeline takes the file's LTX-2.3 VAE and
    an upsampler file, and upsamples x1.5 as the reference does with the same networks."""
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline as ReferenceUpsamplePipeline

    image_to_video = LTX2ImageToVideoPipeline.from_single_file(ltx_2_3_file, text_encoder=object(), tokenizer=object())
    assert isinstance(image_to_video.vocoder, LTX2VocoderWithBWE)
    assert image_to_video.connectors.config.per_modality_projections
    config, header = LTX_2_3_UPSAMPLERS["spatial-x1.5"]
    upsampler = write_single_file(tmp_path / "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors",
                                  make_upsampler_reference(config).state_dict(), header, model_version="2.3.0")
    ours = LTX2LatentUpsamplePipeline.from_single_file(
        ltx_2_3_file, latent_upsampler=LTX2LatentUpsamplerModel.from_single_file(upsampler))
    reference = ReferenceUpsamplePipeline(vae=reference_from_original("vae", load_file(str(ltx_2_3_file)), "2.3"),
                                          latent_upsampler=make_upsampler_reference(config))
    latents = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    upsampled = ours(latents=latents, output_type="latent", return_dict=False)[0]
    assert upsampled.shape == (1, 4, 2, 6, 6)
    expected = reference(latents=latents, output_type="latent", return_dict=False)[0]
    assert relative_l2(upsampled, expected) <= 1e-5


def test_ltx_2_3_single_file_saved_as_a_pipeline_folder(ltx_2_3_file, text_encoder_folder, tmp_path):
    """model_index.json files the vocoder with bandwidth extension under "ltx2", as diffusers' LTX-2.3 folders do;
    the folder loads back, in ltx2 and in the reference."""
    from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE as ReferenceVocoderWithBWE

    ours = LTX2Pipeline.from_single_file(ltx_2_3_file, text_encoder=load_text_encoder(text_encoder_folder),
                                         tokenizer=make_tokenizer())
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["vocoder"] == ["ltx2", "LTX2VocoderWithBWE"]
    reloaded = LTX2Pipeline.from_pretrained(tmp_path)
    assert_same_network(reloaded.vocoder, ours.vocoder)
    assert_same_network(reloaded.transformer, ours.transformer)
    assert_same_network(ours.vocoder, ReferenceVocoderWithBWE.from_pretrained(tmp_path / "vocoder"))


def test_checkpoints_mixing_versions_are_refused(dev_file, ltx_2_3_file, tmp_path):
    old, new = load_file(str(dev_file)), load_file(str(ltx_2_3_file))
    # LTX-2.3's header and tensors, but LTX-2.0's text projection.
    mixed = {key: value for key, value in new.items() if not key.startswith("text_embedding_projection.")}
    mixed.update({key: value for key, value in old.items() if key.startswith("text_embedding_projection.")})
    path = write_single_file(tmp_path / "mixed.safetensors", mixed, LTX_2_3_HEADER, model_version="2.3.0")
    with pytest.raises(CheckpointError, match=r"mixed\.safetensors: mixes LTX versions: model_version '2\.3\.0' "
                                              r"\(LTX-2\.3\).*keys text_embedding_projection\.aggregate_embed\.\* "
                                              r"\(LTX-2\.0\)"):
        LTX2TextConnectors.from_single_file(path)
    with pytest.raises(CheckpointError, match=r"mixed\.safetensors: mixes LTX versions"):
        LTX2Pipeline.from_single_file(path, text_encoder=object(), tokenizer=object())
    # LTX-2.0's file with LTX-2.3's model_version; LTX-2.0's header with LTX-2.3's vocoder.
    renamed = write_single_file(tmp_path / "renamed.safetensors", old, HEADER_CONFIG, model_version="2.3.0")
    with pytest.raises(CheckpointError, match=r"renamed\.safetensors: mixes LTX versions: model_version '2\.3\.0' "
                                              r"\(LTX-2\.3\); header transformer without LTX-2\.3's flags "
                                              r"\(LTX-2\.0\); flat header vocoder \(LTX-2\.0\); keys "
                                              r".*model\.diffusion_model\.caption_projection\.\*"):
        LTX2VideoTransformer3DModel.from_single_file(renamed)
    vocoder = {key: value for key, value in old.items() if not key.startswith("vocoder.")}
    vocoder.update({key: value for key, value in new.items() if key.startswith("vocoder.")})
    path = write_single_file(tmp_path / "vocoder.safetensors", vocoder, HEADER_CONFIG)
    expected = r"vocoder\.safetensors: mixes LTX versions: .*keys vocoder\.bwe_generator\.\*, vocoder\.mel_stft\.\*"
    with pytest.raises(CheckpointError, match=expected):
        AutoencoderKLLTX2Video.from_single_file(path)


@pytest.mark.parametrize("model_version, message", [
    ("banana", "model_version 'banana' is not a version number"),
    ("2.6.0", r"model_version '2\.6\.0' is not one ltx2 loads \(LTX-2\.0, LTX-2\.3, LTX-2\.5 files\)"),
    ("3.0", r"model_version '3\.0' is not one ltx2 loads"),
])
def test_unknown_model_versions_are_refused(ltx_2_3_file, tmp_path, model_version, message):
    path = write_single_file(tmp_path / "odd.safetensors", load_file(str(ltx_2_3_file)), LTX_2_3_HEADER,
                             model_version=model_version)
    with pytest.raises(CheckpointError, match=rf"odd\.safetensors: {message}"):
        AutoencoderKLLTX2Audio.from_single_file(path)


def test_ltx_2_3_release_tags_and_missing_sections(ltx_2_3_file, tmp_path):
    tensors = load_file(str(ltx_2_3_file))
    tagged = write_single_file(tmp_path / "rc.safetensors", tensors, LTX_2_3_HEADER, model_version="2.3.0-rc2")
    assert isinstance(LTX2Pipeline.from_single_file(tagged, text_encoder=object(), tokenizer=object()).vocoder,
                      LTX2VocoderWithBWE)
    # Without a section the official defaults would build LTX-2.0's network: the section is required.
    for section, network in (("transformer", LTX2VideoTransformer3DModel), ("vocoder", LTX2VocoderWithBWE)):
        header = {key: value for key, value in LTX_2_3_HEADER.items() if key != section}
        path = write_single_file(tmp_path / f"no-{section}.safetensors", tensors, header, model_version="2.3.0")
        with pytest.raises(CheckpointError, match=rf"no-{section}\.safetensors: an LTX-2\.3 file whose header "
                                                  rf"config has no '{section}' section"):
            network.from_single_file(path)
    no_bwe = {**LTX_2_3_HEADER, "vocoder": {"vocoder": LTX_2_3_HEADER["vocoder"]["vocoder"]}}
    path = write_single_file(tmp_path / "no-bwe.safetensors", tensors, no_bwe, model_version="2.3.0")
    with pytest.raises(CheckpointError, match=r"no-bwe\.safetensors: an LTX-2\.3 file whose header config has no "
                                              r"'vocoder\.bwe' section"):
        LTX2VocoderWithBWE.from_single_file(path)
    no_vocoder = write_single_file(tmp_path / "no-vocoder-weights.safetensors",
                                   {key: value for key, value in tensors.items() if not key.startswith("vocoder.")},
                                   LTX_2_3_HEADER, model_version="2.3.0")
    with pytest.raises(CheckpointError, match=r"no-vocoder-weights\.safetensors: holds no vocoder weights"):
        LTX2VocoderWithBWE.from_single_file(no_vocoder)


def test_info_names_the_ltx_2_3_version_and_networks(ltx_2_3_file, tmp_path):
    references = {name: reference_from_original(name, load_file(str(ltx_2_3_file)), version="2.3")
                  for name in OURS_2_3}
    lines = describe(ltx_2_3_file)
    assert lines[0].endswith("LTX-2 single-file checkpoint (original layout), LTX version 2.3 (model_version 2.3.0)")
    for name, reference in references.items():
        count = sum(tensor.numel() for tensor in reference.state_dict().values())  # buffers stored in the file too
        assert f"  {name:<12} {OURS_2_3[name].__name__:<28} {_count(count)} parameters, float32" in lines
    stored, _ = quantize_fp8(load_file(str(ltx_2_3_file)))
    fp8 = write_single_file(tmp_path / "ltx-2.3-22b-dev-fp8.safetensors", stored, LTX_2_3_HEADER, model_version="2.3.0")
    transformer = next(line for line in describe(fp8) if line.startswith("  transformer"))
    scales = sum(key.endswith(".weight_scale") for key in stored)
    assert "float8_e4m3fn x" in transformer and "float32 x" in transformer
    assert transformer.endswith(f"FP8 with {scales} weight scales")
    mixed = write_single_file(tmp_path / "mixed.safetensors", load_file(str(ltx_2_3_file)), HEADER_CONFIG,
                              model_version="2.0.0")
    assert "not loadable by ltx2: mixes LTX versions: model_version '2.0.0' (LTX-2.0)" in describe(mixed)[0]


# ---- LTX-2.5 (the combined layout of diffusers' converter, --version 2.5)


def test_ltx_2_5_file_version_and_pipeline(ltx_2_5_file, tmp_path):
    """model_version 2.5 (or 2.4, LTX-2.5's internal number) and the tensors agree; the duration head's keys are
    grouped (not "unknown"), the pipeline loads the other networks, and LTX-2.3-layout keys are LTX-2.5's too."""
    from ltx2.loading.key_map import split_single_file
    from ltx2.loading.single_file import checkpoint_version, file_version, open_single_file

    with open_single_file(ltx_2_5_file) as source:
        assert file_version(source) == "2.5"
        groups = split_single_file(source.keys())
    assert "attention_pooler.to_k.weight" in groups["duration_head"] and not groups["unknown"]
    pipe = LTX2Pipeline.from_single_file(ltx_2_5_file, text_encoder=object(), tokenizer=object())
    assert pipe.model_version == "2.5" and isinstance(pipe.vocoder, LTX2VocoderWithBWE)
    assert isinstance(pipe.duration_head, LTX2DurationHead) and pipe.diffusion_decoder is None
    assert pipe.transformer.config.ff_bias is False and pipe.transformer.config.use_keyframes_abs_pos_embedding
    tensors = load_file(str(ltx_2_5_file))
    internal = write_single_file(tmp_path / "internal.safetensors", tensors, LTX_2_3_HEADER, model_version="2.4.0")
    assert LTX2VideoTransformer3DModel.from_single_file(internal).config.ff_bias is False
    # Without model_version: the keyframe marker, or a video feed-forward without biases, settles 2.5.
    assert checkpoint_version({"config": LTX_2_3_HEADER}, tensors, "file") == "2.5"
    no_marker = [key for key in tensors if "keyframes_abs_pos_embedding" not in key and "duration_head" not in key]
    assert checkpoint_version({"config": LTX_2_3_HEADER}, no_marker, "file") == "2.5"
    assert describe(ltx_2_5_file)[0].endswith("LTX version 2.5 (model_version 2.5.0)")
    # A transformer without the prompt AdaLN (use_prompt_adaln_single=False): the tensors say so.
    no_adaln = {key: value for key, value in tensors.items() if "prompt_adaln_single" not in key}
    path = write_single_file(tmp_path / "no-adaln.safetensors", no_adaln, LTX_2_3_HEADER, model_version="2.5.0")
    transformer = LTX2VideoTransformer3DModel.from_single_file(path)
    assert transformer.config.use_prompt_adaln_single is False and transformer.prompt_adaln is None
    reference = ReferenceTransformer(**{**VERSIONS["2.5"][0]["transformer"], "use_prompt_adaln_single": False})
    reference.load_state_dict(transformer.state_dict(), strict=True)
    # Its text encoder is a fine-tuned Gemma 4, which neither the file nor Lightricks/LTX-2 holds: refused up front.
    with pytest.raises(ValueError, match=r"tokenizer=None: .*ltx-2\.5-22b-dev\.safetensors is an LTX-2\.5 file"):
        LTX2Pipeline.from_single_file(ltx_2_5_file, text_encoder=object())


def test_ltx_2_5_files_with_older_headers_or_keys_are_refused(ltx_2_5_file, dev_file, tmp_path):
    tensors = load_file(str(ltx_2_5_file))
    header_2_3 = write_single_file(tmp_path / "header-2.3.safetensors", tensors, LTX_2_3_HEADER,
                                   model_version="2.3.0")
    with pytest.raises(CheckpointError, match=r"header-2\.3\.safetensors: mixes LTX versions: model_version '2\.3\.0' "
                                              r"\(LTX-2\.3\).*keys duration_head\.\*, "
                                              r"model\.diffusion_model\.keyframes_abs_pos_embedding\* \(LTX-2\.5\); "
                                              r"a video feed-forward without biases \(LTX-2\.5\)"):
        LTX2VideoTransformer3DModel.from_single_file(header_2_3)
    header_2_0 = write_single_file(tmp_path / "header-2.0.safetensors", tensors, HEADER_CONFIG)
    with pytest.raises(CheckpointError, match=r"header-2\.0\.safetensors: mixes LTX versions: header transformer "
                                              r"without LTX-2\.3's flags \(LTX-2\.0\).*\(LTX-2\.5\)"):
        LTX2TextConnectors.from_single_file(header_2_0)
    mixed = dict(tensors)
    mixed.update({key: value for key, value in load_file(str(dev_file)).items()
                  if key.startswith("model.diffusion_model.caption_projection.")})
    path = write_single_file(tmp_path / "mixed-2.5.safetensors", mixed, LTX_2_3_HEADER, model_version="2.5.0")
    with pytest.raises(CheckpointError, match=r"mixed-2\.5\.safetensors: mixes LTX versions: model_version '2\.5\.0' "
                                              r"\(LTX-2\.5\).*keys model\.diffusion_model\.caption_projection\.\* "
                                              r"\(LTX-2\.0\)"):
        LTX2Pipeline.from_single_file(path, text_encoder=object(), tokenizer=object())


@pytest.mark.parametrize("gated", [False, True], ids=["dev", "distilled-gates"])
def test_ltx_2_5_duration_head_and_diffusion_decoder_load_as_the_converter_converts(tmp_path, gated):
    """A combined LTX-2.5 file whose VAE decoder is the diffusion decoder (diffusers' converter, --diffusion_vae):
    the duration head's fused pooler projections and the decoder's fused q/k/v are split, a distilled file's gates
    folded into the Linears they gate, its preview head and the conv encoder left out; the converter's rules give
    the same tensors, and both networks compute what the reference does. The pipeline has both, and no conv VAE."""
    from ltx2.cli import optional_parts

    path = tmp_path / "ltx-2.5-22b-distilled.safetensors"
    references = write_combined(path, version="2.5", diffusion_decoder=True, gated=gated)
    tensors = load_file(str(path))
    head, decoder = LTX2DurationHead.from_single_file(path), LTX2VideoDiffusionDecoderModel.from_single_file(path)
    assert_same_network(head, reference_duration_head(tensors))
    assert_same_network(head, references["duration_head"])
    assert_same_network(decoder, references["diffusion_decoder"])
    assert decoder.config.decoder_stage_kernels == ((3, 1, 1), (3, 3, 3), (3, 3, 3), (3, 5, 5))  # from the header
    video, audio = torch.randn(2, 5, 16), torch.randn(2, 3, 8)
    latents = torch.randn(1, 4, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert relative_l2(head(video, audio), references["duration_head"](video, audio)) <= 1e-5
        ours = decoder.decode(latents, generator=torch.Generator().manual_seed(7)).sample
        expected = references["diffusion_decoder"].decode(latents, generator=torch.Generator().manual_seed(7)).sample
    assert relative_l2(ours, expected) <= 1e-5
    pipe = LTX2Pipeline.from_single_file(path, text_encoder=object(), tokenizer=object())
    assert isinstance(pipe.diffusion_decoder, LTX2VideoDiffusionDecoderModel) and pipe.vae is None
    assert isinstance(pipe.duration_head, LTX2DurationHead)
    assert optional_parts(str(path), "2.5") == {"duration_head", "diffusion_decoder"}
    assert any("diffusion_decoder" in line and "LTX2VideoDiffusionDecoderModel" in line for line in describe(path))


def test_ltx_2_5_fused_and_diffusion_vae_errors_name_the_file_and_keys(ltx_2_5_file, ltx_2_3_file, tmp_path):
    tensors = load_file(str(ltx_2_5_file))
    tensors["duration_head.attention_pooler.cross_attn.in_proj_weight"] = torch.randn(47, 16)  # not three 16-rows
    path = write_single_file(tmp_path / "bad-head.safetensors", tensors, LTX_2_3_HEADER, model_version="2.5.0")
    with pytest.raises(CheckpointError, match=r"bad-head\.safetensors \(duration_head\): duration_head\."
                                              r"attention_pooler\.cross_attn\.in_proj_weight fuses 3 projections, "
                                              r"but its 47 rows"):
        LTX2DurationHead.from_single_file(path)
    diffusion = tmp_path / "diffusion.safetensors"
    write_combined(diffusion, version="2.5", diffusion_decoder=True)
    tensors = load_file(str(diffusion))
    del tensors["vae.decoder.diff_blocks.1.attn.qkv.bias"]
    path = write_single_file(tmp_path / "no-qkv-bias.safetensors", tensors, {"vae": {}}, model_version="2.5.0")
    with pytest.raises(CheckpointError, match=r"no-qkv-bias\.safetensors \(diffusion_decoder\) does not match "
                                              r".*missing keys: decoder\.diff_blocks\.1\.attn\.to_k\.bias, "
                                              r"decoder\.diff_blocks\.1\.attn\.to_q\.bias"):
        LTX2VideoDiffusionDecoderModel.from_single_file(path)
    with pytest.raises(CheckpointError, match=r"diffusion\.safetensors: its VAE decoder \(vae\.decoder\.\*\) is "
                                              r"LTX-2\.5's diffusion decoder"):
        AutoencoderKLLTX2Video.from_single_file(diffusion)
    with pytest.raises(CheckpointError, match=r"ltx-2\.3-22b-dev\.safetensors: an LTX-2\.3 file; LTX2DurationHead is"):
        LTX2DurationHead.from_single_file(ltx_2_3_file)


def test_connectors_caption_channels_when_the_header_does_not_name_it(dev_file, ltx_2_5_file, tmp_path):
    """LTX-2.0's caption projection maps to the text width, which its shape shows. LTX-2.3's and 2.5's per-stream
    projections read width x hidden states, which does not show the split: the header's caption_channels, else the
    width of the text encoder the pipeline is given; LTX-2.5's Gemma 4 has no fixed width, so a lone connectors
    load is refused, naming the file."""
    def without_caption_channels(path, header, name, **metadata):
        transformer = {key: value for key, value in header["transformer"].items() if key != "caption_channels"}
        return write_single_file(tmp_path / name, load_file(str(path)), {**header, "transformer": transformer},
                                 **metadata)

    plain = without_caption_channels(dev_file, HEADER_CONFIG, "ltx-2-no-caption.safetensors")
    assert_same_network(LTX2TextConnectors.from_single_file(plain),
                        reference_from_original("connectors", load_file(str(dev_file))))
    path = without_caption_channels(ltx_2_5_file, LTX_2_3_HEADER, "ltx-2.5-no-caption.safetensors",
                                    model_version="2.5.0")
    with pytest.raises(CheckpointError, match=r"ltx-2\.5-no-caption\.safetensors \(connectors\): the header names no "
                                              r"transformer caption_channels, and the 48 text features"):
        LTX2TextConnectors.from_single_file(path)
    gemma_4 = SimpleNamespace(config=SimpleNamespace(text_config=SimpleNamespace(hidden_size=16)))
    pipe = LTX2Pipeline.from_single_file(path, text_encoder=gemma_4, tokenizer=object())
    reference = reference_from_original("connectors", load_file(str(ltx_2_5_file)), version="2.5")
    assert_same_network(pipe.connectors, reference)
    bad = {**LTX_2_3_HEADER, "transformer": {**LTX_2_3_HEADER["transformer"], "caption_channels": 5}}
    path = write_single_file(tmp_path / "bad-caption.safetensors", load_file(str(ltx_2_5_file)), bad,
                             model_version="2.5.0")
    with pytest.raises(CheckpointError, match=r"bad-caption\.safetensors \(connectors\): caption_channels 5 \(the "
                                              r"header's transformer caption_channels\) does not divide the 48"):
        LTX2TextConnectors.from_single_file(path)
