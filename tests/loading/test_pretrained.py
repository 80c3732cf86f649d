"""from_pretrained / save_pretrained: shards, dtypes, strictness and its error messages, round trips."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_transformer import TINY

from ltx2 import CheckpointError, FlowMatchEulerDiscreteScheduler, LTX2VideoTransformer3DModel

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LTX2VideoTransformer3DModel(**TINY)


@pytest.fixture
def saved(model, tmp_path):
    model.save_pretrained(tmp_path)
    return tmp_path


def assert_same_weights(loaded: torch.nn.Module, original: torch.nn.Module) -> None:
    expected = original.state_dict()
    actual = loaded.state_dict()
    assert actual.keys() == expected.keys()
    for key, tensor in expected.items():
        assert torch.equal(actual[key], tensor), key


def test_round_trip_is_bit_exact(model, saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["_class_name"] == "LTX2VideoTransformer3DModel"
    assert config["num_layers"] == 2 and config["rope_type"] == "split"
    loaded = LTX2VideoTransformer3DModel.from_pretrained(saved)
    assert_same_weights(loaded, model)
    assert dict(loaded.config) == dict(LTX2VideoTransformer3DModel.from_config(config).config)
    assert not loaded.training


def test_sharded_checkpoint_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(tmp_path.glob("diffusion_pytorch_model-*-of-*.safetensors"))
    assert len(shards) > 2
    assert not (tmp_path / WEIGHTS).exists()
    index = json.loads((tmp_path / f"{WEIGHTS}.index.json").read_text())
    assert set(index["weight_map"]) == set(model.state_dict())
    assert_same_weights(LTX2VideoTransformer3DModel.from_pretrained(tmp_path), model)


def test_subfolder_and_dtype_cast(model, tmp_path):
    model.save_pretrained(tmp_path / "transformer")
    loaded = LTX2VideoTransformer3DModel.from_pretrained(tmp_path, subfolder="transformer", torch_dtype=torch.bfloat16)
    assert {tensor.dtype for tensor in loaded.state_dict().values()} == {torch.bfloat16}
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor.to(torch.bfloat16)), key


def test_bfloat16_checkpoint_loads_as_float32_by_default(model, tmp_path):
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    loaded = LTX2VideoTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.dtype == torch.float32
    assert_same_weights(loaded.to(torch.bfloat16), model)


def rewrite_weights(folder, edit) -> None:
    tensors = load_file(folder / WEIGHTS)
    edit(tensors)
    save_file(tensors, folder / WEIGHTS)


def test_missing_key_is_named(saved):
    rewrite_weights(saved, lambda tensors: tensors.pop("proj_in.weight"))
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.safetensors.*missing keys: proj_in\.weight"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_unexpected_key_is_named(saved):
    rewrite_weights(saved, lambda tensors: tensors.update({"extra.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected keys: extra\.weight"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_shape_mismatch_is_named(saved):
    rewrite_weights(saved, lambda tensors: tensors.update({"proj_out.bias": torch.zeros(5)}))
    with pytest.raises(CheckpointError, match=r"shape mismatch: proj_out\.bias \(checkpoint \(5,\), model \(4,\)\)"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_truncated_file_is_named(saved):
    path = saved / WEIGHTS
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.safetensors"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_garbage_file_is_named(saved):
    (saved / WEIGHTS).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model\.safetensors: not a readable safetensors"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_missing_shard_is_named(model, tmp_path):
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    victim = sorted(tmp_path.glob("diffusion_pytorch_model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(CheckpointError, match=victim.name):
        LTX2VideoTransformer3DModel.from_pretrained(tmp_path)


def test_index_disagreeing_with_shards_is_named(model, tmp_path):
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    index_path = tmp_path / f"{WEIGHTS}.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["ghost.weight"] = next(iter(index["weight_map"].values()))
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"listed but absent: ghost\.weight"):
        LTX2VideoTransformer3DModel.from_pretrained(tmp_path)


def test_unknown_config_key_is_named(saved):
    config = json.loads((saved / "config.json").read_text())
    config["attention_sink"] = 4
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="attention_sink"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_missing_folder_and_subfolder_are_named(saved):
    with pytest.raises(FileNotFoundError, match="vae"):
        LTX2VideoTransformer3DModel.from_pretrained(saved, subfolder="vae")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        LTX2VideoTransformer3DModel.from_pretrained(saved / "nope" / "deeper")


def test_save_leaves_no_temporary_files(saved):
    assert sorted(path.name for path in saved.iterdir()) == ["config.json", WEIGHTS]


def rewrite_config(folder, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(num_layers="abc"), r"'num_layers' is 'abc' \(str\); expected int"),
        (dict(num_layers=True), r"'num_layers' is True \(bool\); expected int"),
        (dict(norm_eps="1e-6"), r"'norm_eps' is '1e-6' \(str\); expected float"),
        (dict(out_channels=[4]), r"'out_channels' is \[4\] \(list\); expected int \| None"),
        (dict(vae_scale_factors=[8, 32]), r"'vae_scale_factors' is \[8, 32\] \(list\); expected tuple\[int, int, "),
        (dict(gated_attn="yes"), r"'gated_attn' is 'yes' \(str\); expected bool"),
    ],
)
def test_config_value_of_wrong_type_names_file_key_value_and_type(saved, change, expected):
    rewrite_config(saved, **change)
    with pytest.raises(ValueError, match=rf"config\.json: LTX2VideoTransformer3DModel: config key {expected}"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_config_json_numbers_written_without_a_fraction_load(saved, model):
    """JSON writes 10000.0 as 10000 too; float keys take integers, as diffusers' configs hold them."""
    rewrite_config(saved, rope_theta=10000, norm_eps=0)
    assert LTX2VideoTransformer3DModel.from_pretrained(saved).config.rope_theta == 10000


@pytest.fixture
def no_construction(monkeypatch):
    """Fail the test if the transformer's constructor runs: these checks must come before any module is built."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was constructed before the config was checked against the weights")

    monkeypatch.setattr(LTX2VideoTransformer3DModel, "__init__", refuse)


@pytest.mark.parametrize(
    "change, expected",
    [
        (dict(num_layers=1_000_000_000), r"num_layers=1000000000, but the weights hold transformer_blocks\.0 to "
                                         r"transformer_blocks\.1 \(2 blocks\)"),
        (dict(num_layers=1), r"num_layers=1, but the weights hold transformer_blocks\.0 to transformer_blocks\.1"),
        (dict(attention_head_dim=16), r"proj_in\.weight \(checkpoint \(16, 4\), config \(32, 4\)\)"),
        (dict(in_channels=6, out_channels=6), r"proj_in\.weight \(checkpoint \(16, 4\), config \(16, 6\)\)"),
        (dict(cross_attn_mod=True), r"time_embed\.linear\.weight \(checkpoint \(96, 16\), config \(144, 16\)\)"),
    ],
)
def test_config_disagreeing_with_weights_is_found_from_the_header_before_building(
    saved, no_construction, change, expected
):
    rewrite_config(saved, **change)
    with pytest.raises(CheckpointError, match=rf"config\.json does not match .*{WEIGHTS}: .*{expected}"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_config_flag_without_its_weights_names_the_missing_keys(saved):
    rewrite_config(saved, gated_attn=True)
    with pytest.raises(CheckpointError, match=r"missing keys: transformer_blocks\.0\.attn1\.to_gate_logits\.bias"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_constructor_rule_broken_by_config_names_the_file(saved):
    rewrite_config(saved, rope_type="rotary")
    with pytest.raises(ValueError, match=r"config\.json: rope_type must be 'split' or 'interleaved'"):
        LTX2VideoTransformer3DModel.from_pretrained(saved)


def test_scheduler_config_of_wrong_type_names_the_file(tmp_path):
    FlowMatchEulerDiscreteScheduler().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "scheduler_config.json").read_text())
    (tmp_path / "scheduler_config.json").write_text(json.dumps({**config, "shift": "high"}))
    with pytest.raises(ValueError, match=r"scheduler_config\.json: .*'shift' is 'high' \(str\); expected float"):
        FlowMatchEulerDiscreteScheduler.from_pretrained(tmp_path)
