"""Offload mechanics: block-by-block streaming and one-model-at-a-time placement, checked on the CPU.

Streaming to the meta device shows where each tensor is while each unit runs, without a GPU: a unit's
weights must be on the target device exactly during its forward, and back to the same CPU tensors after.
"""

import torch
from torch import nn

from ltx2 import LTX2VideoTransformer3DModel
from ltx2.pipelines.offload import ModelOffload, SequentialOffload

TINY = dict(
    in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
    audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2, audio_attention_head_dim=4,
    audio_cross_attention_dim=8, num_layers=2, caption_channels=8,
)


def inputs():
    generator = torch.Generator().manual_seed(0)
    return dict(
        hidden_states=torch.randn(1, 8, 4, generator=generator), audio_hidden_states=torch.randn(1, 3, 4, generator=generator),
        encoder_hidden_states=torch.randn(1, 5, 8, generator=generator),
        audio_encoder_hidden_states=torch.randn(1, 5, 8, generator=generator), timestep=torch.tensor([500.0]),
        num_frames=2, height=2, width=2, return_dict=False,
    )


def test_sequential_offload_on_cpu_gives_identical_outputs():
    torch.manual_seed(0)
    model = LTX2VideoTransformer3DModel(**TINY).eval()
    with torch.no_grad():
        expected = model(**inputs())
        offload = SequentialOffload(torch.device("cpu"))
        offload.attach(model)
        actual = model(**inputs())
        offload.detach()
    for a, b in zip(actual, expected):
        assert torch.equal(a, b)


def test_sequential_offload_streams_each_block_only_during_its_forward():
    torch.manual_seed(0)
    model = LTX2VideoTransformer3DModel(**TINY).eval()
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen[name] = {tensor.device.type for tensor in module.parameters()}
        return hook

    offload = SequentialOffload(torch.device("meta"))
    offload.attach(model)
    handles = [
        model.transformer_blocks[0].register_forward_hook(record("block"), prepend=True),
        model.proj_out.register_forward_hook(record("proj_out"), prepend=True),
    ]
    with torch.no_grad():
        on_meta = {key: value.to("meta") if torch.is_tensor(value) else value for key, value in inputs().items()}
        video, audio = model(**on_meta)
    assert video.is_meta
    assert seen == {"block": {"meta"}, "proj_out": {"meta"}}
    # Between forwards every weight is the untouched CPU tensor again.
    for name, tensor in model.state_dict().items():
        assert tensor.device.type == "cpu" and torch.equal(tensor, original[name]), name
    # Every tensor belongs to exactly one streaming unit.
    streamed = sum(len(streamer.slots) for streamer in offload.streamers)
    assert streamed == len(list(model.parameters())) + len(list(model.buffers()))
    for handle in handles:
        handle.remove()
    offload.detach()


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
