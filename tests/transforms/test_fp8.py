"""FP8 storage (ltx2.transforms.fp8): layerwise casting as diffusers 0.42.1 does it on every network, FP8 single
files kept in FP8, and LoRA adapters on FP8 weights."""

import pytest
import torch
from diffusers import LTX2VideoTransformer3DModel as ReferenceTransformer
from lora_helpers import TINY as LORA_TINY
from lora_helpers import Pipeline, make_lora, reference_pipeline, run
from network_outputs import OURS, make_inputs, outputs
from original_checkpoint import (
    HEADER_CONFIG,
    REFERENCE_CONFIGS,
    make_reference,
    make_upsampler_reference,
    quantize_fp8,
    write_combined,
    write_single_file,
)
from parity import relative_l2
from safetensors.torch import load_file
from tiny_pipeline import make_text_encoder, make_tokenizer

from ltx2 import LTX2LatentUpsamplerModel, LTX2Pipeline, LTX2VideoTransformer3DModel
from ltx2.transforms.fp8 import CastLayer

NETWORKS = [*OURS, "latent_upsampler"]


def networks(component: str, folder) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(reference, ours) with the same perturbed weights, ours loaded from the reference's save."""
    if component == "latent_upsampler":
        reference, ours_class = make_upsampler_reference(), LTX2LatentUpsamplerModel
    else:
        reference, ours_class = make_reference(component, seed=5), OURS[component]
    reference.save_pretrained(folder)
    return reference.eval(), ours_class.from_pretrained(folder)


def run_network(component: str, model: torch.nn.Module) -> torch.Tensor:
    if component == "latent_upsampler":
        with torch.no_grad():
            return model(torch.randn(1, 4, 2, 4, 6, generator=torch.Generator().manual_seed(3)))
    return outputs(component, model)


def stored_in(model: torch.nn.Module, dtype: torch.dtype) -> set[str]:
    return {key for key, tensor in model.state_dict().items() if tensor.dtype == dtype}


@pytest.mark.parametrize("storage", [torch.float8_e4m3fn, torch.bfloat16], ids=["fp8", "bf16"])
@pytest.mark.parametrize("component", NETWORKS)
def test_layerwise_casting_matches_reference(component, storage, tmp_path):
    reference, ours = networks(component, tmp_path)
    for model in (reference, ours):
        model.enable_layerwise_casting(storage_dtype=storage, compute_dtype=torch.float32)
    # The same tensors are stored narrow (so the same skip rules), and the outputs agree in float32.
    assert stored_in(ours, storage) == stored_in(reference, storage) != set()
    assert ours.dtype == torch.float32
    assert relative_l2(run_network(component, ours), run_network(component, reference)) <= 1e-5


def test_custom_patterns_and_classes_skip_as_reference(tmp_path):
    reference, ours = networks("transformer", tmp_path)
    for model in (reference, ours):
        model.enable_layerwise_casting(
            compute_dtype=torch.float32, skip_modules_pattern=("attn2",), skip_modules_classes=(torch.nn.Embedding,)
        )
    cast = stored_in(ours, torch.float8_e4m3fn)
    assert cast == stored_in(reference, torch.float8_e4m3fn)
    assert not any("attn2" in key or "norm" in key for key in cast)  # the class's own "norm" pattern still holds
    assert "proj_in.weight" in cast  # replaced defaults: proj_in is no longer skipped
    assert relative_l2(run_network("transformer", ours), run_network("transformer", reference)) <= 1e-5


@pytest.mark.parametrize("network", [*OURS.values(), LTX2LatentUpsamplerModel], ids=lambda cls: cls.__name__)
def test_full_size_parameter_bytes_in_fp8(network):
    with torch.device("meta"):
        model = network()
    float32_bytes = 4 * model.num_parameters()
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
    stored = sum(p.numel() * p.element_size() for p in model.parameters())
    assert stored <= 0.30 * float32_bytes
    assert model.dtype == torch.bfloat16


def test_bad_dtypes_raise(tmp_path):
    _, ours = networks("vocoder", tmp_path)
    with pytest.raises(ValueError, match="compute_dtype"):
        ours.enable_layerwise_casting(compute_dtype=torch.float8_e4m3fn)
    with pytest.raises(ValueError, match="storage_dtype"):
        ours.enable_layerwise_casting(storage_dtype=torch.int8)


@pytest.fixture(scope="module")
def fp8_file(tmp_path_factory):
    """An `ltx-2-19b-dev-fp8.safetensors` look-alike: half the block weights scaled FP8, half plain FP8."""
    folder = tmp_path_factory.mktemp("fp8")
    write_combined(folder / "plain.safetensors")
    stored, _ = quantize_fp8(load_file(str(folder / "plain.safetensors")))
    return write_single_file(folder / "ltx-2-19b-dev-fp8.safetensors", stored, HEADER_CONFIG)


def test_fp8_single_file_kept_in_fp8_equals_the_upcast_load(fp8_file, tmp_path):
    upcast = LTX2VideoTransformer3DModel.from_single_file(fp8_file, torch_dtype=torch.bfloat16)
    kept = LTX2VideoTransformer3DModel.from_single_file(fp8_file, torch_dtype=torch.bfloat16, keep_fp8=True)
    fp8_keys = stored_in(kept, torch.float8_e4m3fn)
    assert fp8_keys and all(key.startswith("transformer_blocks.") for key in fp8_keys)
    assert sum(isinstance(layer, CastLayer) and "weight_scale" in layer._buffers for layer in kept.modules()) > 0
    assert stored_in(kept, torch.bfloat16) == set(kept.state_dict()) - fp8_keys
    assert kept.dtype == torch.bfloat16

    def run_bf16(model):
        inputs = make_inputs(REFERENCE_CONFIGS["transformer"], per_token=False, masked=True, dtype=torch.bfloat16)
        with torch.no_grad():
            return torch.cat([part.flatten() for part in model(**inputs)])

    # The scale multiplies in float32 and rounds once, as the upcast does: identical outputs.
    assert torch.equal(run_bf16(kept), run_bf16(upcast))
    # Saving writes the scaled weights dequantized (a diffusers folder holds no scales); it loads back the same.
    kept.save_pretrained(tmp_path)
    assert torch.equal(run_bf16(LTX2VideoTransformer3DModel.from_pretrained(tmp_path, torch_dtype=torch.bfloat16)),
                       run_bf16(upcast))


def test_pipeline_from_an_fp8_file_kept_in_fp8_generates_as_the_upcast_one(fp8_file, recwarn):
    text_encoder = make_text_encoder().to(torch.bfloat16)

    def load(**options):
        return LTX2Pipeline.from_single_file(fp8_file, torch_dtype=torch.bfloat16, text_encoder=text_encoder,
                                             tokenizer=make_tokenizer(), **options)

    kept, upcast = load(keep_fp8=True), load()
    assert not [warning for warning in recwarn if "keep_fp8" in str(warning.message)]
    assert stored_in(kept.transformer, torch.float8_e4m3fn)
    assert not stored_in(kept.vae, torch.float8_e4m3fn)  # the file's other networks are bf16
    arguments = dict(prompt="a robot", width=64, height=64, num_frames=9, num_inference_steps=2,
                     max_sequence_length=16, output_type="latent", return_dict=False)
    for pipeline in (kept, upcast):
        pipeline.set_progress_bar_config(disable=True)
    video, audio = kept(generator=torch.Generator().manual_seed(0), **arguments)
    expected_video, expected_audio = upcast(generator=torch.Generator().manual_seed(0), **arguments)
    assert torch.equal(video, expected_video) and torch.equal(audio, expected_audio)


def test_keep_fp8_on_a_file_without_fp8_warns(tmp_path):
    _, ours = networks("vocoder", tmp_path)
    with pytest.warns(UserWarning, match="holds no FP8 weights"):
        type(ours).from_pretrained(tmp_path, keep_fp8=True)


@pytest.fixture
def lora_folder(tmp_path):
    torch.manual_seed(0)
    ReferenceTransformer(**LORA_TINY).save_pretrained(tmp_path)
    return tmp_path


def test_unfused_lora_on_fp8_weights_matches_reference(lora_folder):
    ours = Pipeline(LTX2VideoTransformer3DModel.from_pretrained(lora_folder))
    reference = reference_pipeline(ReferenceTransformer.from_pretrained(lora_folder).eval())
    lora = make_lora(ours.transformer, seed=4)
    for pipeline in (ours, reference):
        pipeline.load_lora_weights(dict(lora), adapter_name="fast")
        pipeline.transformer.enable_layerwise_casting(compute_dtype=torch.float32)
    factor = ours.transformer.transformer_blocks[0].attn1.to_q.lora_A_0
    assert factor.dtype == torch.float32  # factors stay in the compute dtype
    assert relative_l2(run(ours), run(reference)) <= 1e-5


def test_lora_loaded_after_fp8_and_fused_requantizes_with_a_warning(lora_folder):
    ours = Pipeline(LTX2VideoTransformer3DModel.from_pretrained(lora_folder))
    ours.transformer.enable_layerwise_casting(compute_dtype=torch.float32)
    stored = {key: tensor.clone() for key, tensor in ours.transformer.state_dict().items()}
    ours.load_lora_weights(make_lora(ours.transformer, seed=4), adapter_name="fast")
    assert ours.transformer.transformer_blocks[0].attn1.to_q.lora_A_0.dtype == torch.float32
    unfused = run(ours)
    with pytest.warns(UserWarning, match="re-quantized to FP8"):
        ours.fuse_lora()
    assert ours.transformer.transformer_blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    assert 0 < relative_l2(run(ours), unfused) <= 0.1  # FP8 rounding of the sum, nothing more
    ours.unfuse_lora()
    for key, tensor in ours.transformer.state_dict().items():
        assert torch.equal(tensor.float(), stored[key].float()), key
    assert torch.equal(run(ours), unfused)
