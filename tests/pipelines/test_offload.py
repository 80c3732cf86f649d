"""Pipeline offload: one model at a time, and block-by-block streaming through group offloading (whose
mechanics tests/transforms/test_group_offload.py checks), on the CPU."""

import torch
from tiny_transformer import TINY, inputs
from torch import nn

from ltx2 import LTX2VideoTransformer3DModel
from ltx2.pipelines.offload import ModelOffload, SequentialOffload
from ltx2.transforms.group_offload import GroupOffload


def test_sequential_offload_streams_one_block_at_a_time_and_detaches():
    torch.manual_seed(0)
    model = LTX2VideoTransformer3DModel(**TINY).eval()
    with torch.no_grad():
        expected = model(**inputs())
        offload = SequentialOffload(torch.device("cpu"))
        offload.attach(model)
        (group_offload,) = offload.offloads
        blocks = [group for group in group_offload.groups if group.name.startswith("transformer_blocks.")]
        assert [group.name for group in blocks] == ["transformer_blocks.0-0", "transformer_blocks.1-1"]
        actual = model(**inputs())
        assert all(group.onloads == 1 for group in group_offload.groups)
        offload.detach()
        assert GroupOffload.attribute not in model.__dict__
        after = model(**inputs())
    for a, b, c in zip(actual, expected, after):
        assert torch.equal(a, b) and torch.equal(c, b)


def test_model_offload_keeps_one_model_on_the_device():
    first, second = nn.Linear(2, 2), nn.Linear(2, 2)
    moves = []
    for name, module in (("first", first), ("second", second)):
        module.to = lambda device, name=name, module=module: moves.append((name, str(device))) or module
    offload = ModelOffload(torch.device("cuda"))
    offload.activate(first)
    offload.activate(first)
    offload.activate(second)
    offload.release()
    assert moves == [("first", "cuda"), ("first", "cpu"), ("second", "cuda"), ("second", "cpu")]
