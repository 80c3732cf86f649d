"""Group offloading (ltx2.transforms.group_offload), checked without a GPU: on the CPU (onload and offload both
"cpu", no stream) for the outputs, on the meta device for where each tensor is while each group runs, and from
files for the disk mode. The side-stream path runs in bench/gpu.py on a GPU."""

import contextlib

import pytest
import torch
from lora_helpers import Pipeline, make_lora
from safetensors.torch import load_file, save_file
from tiny_transformer import forward, inputs, model

from ltx2.transforms.group_offload import GroupOffload

MODES = {
    "block-1": dict(offload_type="block_level", num_blocks_per_group=1),
    "block-2": dict(offload_type="block_level", num_blocks_per_group=2),
    "leaf": dict(offload_type="leaf_level"),
}


def offload_of(transformer: torch.nn.Module) -> GroupOffload:
    return transformer.__dict__[GroupOffload.attribute]


@pytest.mark.parametrize("mode", list(MODES))
def test_cpu_outputs_identical_and_each_group_moved_once_per_forward(mode):
    transformer = model()
    expected = forward(transformer)
    transformer.enable_group_offload("cpu", offload_device="cpu", use_stream=False, **MODES[mode])
    groups = offload_of(transformer).groups
    for calls in (1, 2):
        assert torch.equal(forward(transformer), expected)
        assert [group.onloads for group in groups] == [calls] * len(groups)
        assert all(not group.resident for group in groups)


def test_groups_cover_every_tensor_once():
    transformer = model()
    transformer.enable_group_offload("meta", use_stream=False, **MODES["block-2"])
    groups = offload_of(transformer).groups
    names = [group.name for group in groups]
    assert "transformer_blocks.0-1" in names and "transformer_blocks.2-2" in names and "root" in names
    owners = [owner for group in groups for _, owner in group.owners]
    assert len(owners) == len({id(owner) for owner in owners})
    assert {id(owner) for owner in owners} == {
        id(module) for module in transformer.modules() if any(True for _ in module.parameters(recurse=False))
    }


@pytest.mark.parametrize("mode", ["block-1", "leaf"])
def test_meta_device_tensors_are_on_the_device_exactly_while_their_group_runs(mode):
    transformer = model()
    original = {name: tensor.clone() for name, tensor in transformer.state_dict().items()}
    seen = {}

    def record(name, module, recurse=False):
        def hook(*_):
            seen[name] = {tensor.device.type for tensor in module.parameters(recurse=recurse)}
        return hook

    block, other_block = transformer.transformer_blocks[0], transformer.transformer_blocks[1]
    transformer.enable_group_offload("meta", use_stream=False, **MODES[mode])
    # Forward hooks put first run at the end of each forward, before the offloading hook.
    handles = [
        block.register_forward_hook(record("block tables", block), prepend=True),
        block.attn1.to_q.register_forward_hook(record("to_q", block.attn1.to_q), prepend=True),
        transformer.proj_out.register_forward_hook(record("proj_out", transformer.proj_out), prepend=True),
        block.register_forward_hook(record("other block", other_block, recurse=True), prepend=True),
    ]
    with torch.no_grad():
        video, _ = transformer(**inputs("meta"))
    assert video.is_meta
    assert seen == {"block tables": {"meta"}, "to_q": {"meta"}, "proj_out": {"meta"}, "other block": {"cpu"}}
    for name, tensor in transformer.state_dict().items():
        assert tensor.device.type == "cpu" and torch.equal(tensor, original[name]), name
    for handle in handles:
        handle.remove()


def test_disk_mode_reads_each_group_from_its_file(tmp_path):
    transformer = model()
    expected = forward(transformer)
    transformer.enable_group_offload("cpu", use_stream=False, offload_to_disk_path=tmp_path, **MODES["block-1"])
    groups = offload_of(transformer).groups
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{group.name}.safetensors" for group in groups)
    assert all(tensor.is_meta for tensor in transformer.state_dict().values())  # nothing held in memory
    assert torch.equal(forward(transformer), expected)
    assert all(tensor.is_meta for tensor in transformer.state_dict().values())
    # The block is read from its file at every forward: change the file, and the output follows.
    block_file = tmp_path / "transformer_blocks.1-1.safetensors"
    tensors = load_file(str(block_file))
    key = "transformer_blocks.1.ff.net.2.bias"  # the model's own key names
    tensors[key] = tensors[key] + 1.0
    save_file(tensors, str(block_file))
    changed = forward(transformer)
    assert not torch.equal(changed, expected)
    offload_of(transformer).remove()
    assert not any(tensor.is_meta for tensor in transformer.state_dict().values())
    assert torch.equal(forward(transformer), changed)


def test_with_fp8_storage_and_lora():
    pipeline = Pipeline(model())
    pipeline.transformer.enable_layerwise_casting(compute_dtype=torch.float32)
    pipeline.load_lora_weights(make_lora(pipeline.transformer, seed=2), adapter_name="a")
    expected = forward(pipeline.transformer)
    pipeline.transformer.enable_group_offload("cpu", use_stream=False, **MODES["block-1"])
    assert torch.equal(forward(pipeline.transformer), expected)
    # An adapter loaded while offloaded moves with its layer as well.
    pipeline.load_lora_weights(make_lora(pipeline.transformer, seed=3), adapter_name="b")
    pipeline.set_adapters(["a", "b"])
    with_both = forward(pipeline.transformer)
    offload_of(pipeline.transformer).remove()
    assert torch.equal(forward(pipeline.transformer), with_both)
    assert not torch.equal(with_both, expected)


def test_enabling_again_replaces_the_previous_offload():
    transformer = model()
    expected = forward(transformer)
    transformer.enable_group_offload("cpu", use_stream=False, **MODES["leaf"])
    transformer.enable_group_offload("cpu", use_stream=False, **MODES["block-2"])
    assert torch.equal(forward(transformer), expected)
    assert [group.onloads for group in offload_of(transformer).groups] == [1] * len(offload_of(transformer).groups)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(offload_type="layer"), "offload_type"),
        (dict(offload_type="block_level"), "num_blocks_per_group"),
        (dict(offload_type="block_level", num_blocks_per_group=0), "num_blocks_per_group"),
        (dict(offload_type="leaf_level", use_stream=False, record_stream=True), "record_stream"),
    ],
)
def test_bad_arguments_raise(arguments, message):
    with pytest.raises(ValueError, match=message):
        model().enable_group_offload("cpu", **arguments)


class FakeStream:
    """Stands in for a CUDA stream: logs the events it records and waits for (CPU builds have no CUDA events)."""

    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def record_event(self):
        event = len(self.log)
        self.log.append((self.name, "record", event))
        return event

    def wait_event(self, event) -> None:
        self.log.append((self.name, "wait", event))


def test_side_stream_prefetches_the_next_group_and_orders_by_events(monkeypatch):
    """The stream logic without a GPU: the next block is copied on the side stream while one runs, each copy
    waits for the compute work queued before it, and each block waits for its copy before running."""
    log = []
    compute, side = FakeStream("compute", log), FakeStream("side", log)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: compute)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    transformer = model()
    expected = forward(transformer)
    transformer.enable_group_offload("cpu", use_stream=False, **MODES["block-1"])
    offload = offload_of(transformer)
    offload.stream = side
    blocks = [group for group in offload.groups if group.name.startswith("transformer_blocks.")]
    resident_while_running = []
    for index, block in enumerate(transformer.transformer_blocks):
        def mark(*_, index=index):
            log.append(("compute", "block", index))
            resident_while_running.append(sum(1 for group in blocks if group.resident))
        block.register_forward_pre_hook(mark)
    for _ in range(2):
        log.clear()
        assert torch.equal(forward(transformer), expected)
    assert all(not group.resident for group in offload.groups)
    assert [group.onloads for group in offload.groups] == [2] * len(offload.groups)
    # In the second forward the order is known: while block i runs, block i + 1 is already on its way.
    assert resident_while_running[len(blocks):] == [2, 2, 1]
    for index in range(len(blocks)):
        start = log.index(("compute", "block", index))
        last_wait = [entry for entry in log[:start] if entry[:2] == ("compute", "wait")][-1]
        # The block's kernels wait for the event its copy recorded, and that copy waited for the compute stream.
        recorded_at = log.index(("side", "record", last_wait[2]))
        assert log[recorded_at - 1][:2] == ("side", "wait")
        assert log[recorded_at - 2][:2] == ("compute", "record")
