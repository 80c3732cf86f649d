"""Regional compilation (ltx2.transforms.regional_compile): one graph for every block and every token count.

Graphs and recompiles are decided by torch.compile's front end (dynamo) whatever backend follows, so the tests
use backend="eager": dynamo's graphs run as traced, without code generation (inductor on these two CPU cores
takes minutes even for the tiny model; bench/gpu.py compiles the real block with inductor).
"""

import pytest
import torch
from parity import relative_l2
from tiny_transformer import TINY, model

from ltx2 import LTX2Vocoder


def inputs(frames: int, audio_frames: int, text: int, batch: int = 2) -> dict:
    """The tiny transformer's inputs for `frames` latent frames of 2x2 tokens (stage 1 and stage 2 differ so)."""
    generator = torch.Generator().manual_seed(frames)
    mask = torch.ones(batch, text)
    mask[0, :2] = 0
    return dict(
        hidden_states=torch.randn(batch, frames * 4, TINY["in_channels"], generator=generator),
        audio_hidden_states=torch.randn(batch, audio_frames, TINY["audio_in_channels"], generator=generator),
        encoder_hidden_states=torch.randn(batch, text, TINY["caption_channels"], generator=generator),
        audio_encoder_hidden_states=torch.randn(batch, text, TINY["caption_channels"], generator=generator),
        timestep=torch.rand(batch, generator=generator) * 1000,
        encoder_attention_mask=mask,
        audio_encoder_attention_mask=mask,
        num_frames=frames,
        height=2,
        width=2,
        return_dict=False,
    )


SHAPES = [(2, 5, 6), (3, 7, 6), (5, 9, 11)]  # (frames, audio frames, text tokens): three "stages"


@torch.no_grad()
def run(transformer, shape, batch=2) -> torch.Tensor:
    return torch.cat([part.flatten() for part in transformer(**inputs(*shape, batch=batch))])


@pytest.fixture
def counters():
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield torch._dynamo.utils.counters
    torch._dynamo.reset()


def test_one_graph_for_all_blocks_and_token_counts(counters):
    transformer = model()
    expected = [run(transformer, shape) for shape in SHAPES]
    transformer.compile_repeated_blocks(backend="eager")
    assert relative_l2(run(transformer, SHAPES[0]), expected[0]) <= 1e-5
    assert counters["stats"]["unique_graphs"] == 1  # traced once for the three blocks
    for shape, reference in zip(SHAPES[1:], expected[1:]):
        assert relative_l2(run(transformer, shape), reference) <= 1e-5
    assert counters["stats"]["unique_graphs"] == 1  # no recompile for other token counts
    assert not counters["graph_break"]
    # A batch of one is specialized by torch (sizes 0 and 1 always are): one more graph, then reused.
    single = model()
    expected_single = [run(single, shape, batch=1) for shape in SHAPES[:2]]
    transformer.compile_repeated_blocks(backend="eager")
    for shape, reference in zip(SHAPES[:2], expected_single):
        assert relative_l2(run(transformer, shape, batch=1), reference) <= 1e-5
    assert counters["stats"]["unique_graphs"] == 2


def test_with_block_offload_and_fp8(counters):
    transformer = model()
    transformer.enable_layerwise_casting(compute_dtype=torch.float32)
    expected = [run(transformer, shape) for shape in SHAPES[:2]]
    transformer.enable_group_offload("cpu", use_stream=False, offload_type="block_level", num_blocks_per_group=1)
    transformer.compile_repeated_blocks(backend="eager")
    for shape, reference in zip(SHAPES[:2], expected):
        assert relative_l2(run(transformer, shape), reference) <= 1e-5
    assert counters["stats"]["unique_graphs"] == 1


def test_a_network_without_repeated_blocks_says_so():
    with torch.device("meta"):
        vocoder = LTX2Vocoder()
    with pytest.raises(ValueError, match="no repeated blocks"):
        vocoder.compile_repeated_blocks()
