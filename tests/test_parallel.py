"""Parallelism (ltx2.transforms.context_parallel, ltx2.pipelines.guidance and .parallel, share_tiles): Ulysses, guidance-pass parallelism and the distributed tiled decode on 2 and 4 gloo ranks that
the test starts, each compared with the same work in this one process.

One spawned job per world size runs every check (spawning is the slow part) and returns its results; the
tests below assert on them. Token counts are chosen so that neither 2 nor 4 ranks divide them (padding).
"""

import math

import pytest
import torch
from parallel_jobs import (
    AUDIO,
    VIDEO,
    decode_tiles,
    generate,
    on_ranks,
    prompt_embeddings,
    rank_job,
    transformer_outputs,
)
from parity import perturb_, relative_l2
from tiny_transformer import TINY

from ltx2 import ContextParallelConfig, LTX2VideoTransformer3DModel
from ltx2.pipelines.guidance import GuidancePass, GuidanceScales, guidance_passes, run_guidance_passes
from ltx2.pipelines.parallel import default_split
from ltx2.transforms.collectives import share_tiles

FLOWS = {
    2: [("text-to-video", (2, 1)), ("image-to-video", (2, 1)), ("two-stage", (2, 1)), ("text-to-video", (1, 2))],
    4: [("text-to-video", (4, 1)), ("image-to-video", (4, 1)), ("two-stage", (4, 1)), ("text-to-video", (2, 2)),
        ("text-to-video", (1, 4))],
}


@pytest.fixture(scope="module")
def four_heads(pipeline_folder, tmp_path_factory):
    """The tiny pipeline with a 4-head transformer (the shared one has 2), so that 4 ranks can share the heads."""
    source, _ = pipeline_folder
    folder = tmp_path_factory.mktemp("four-heads")
    for item in source.iterdir():
        if item.name != "transformer":
            (folder / item.name).symlink_to(item, target_is_directory=item.is_dir())
    config = dict(TINY, num_attention_heads=4, attention_head_dim=4, audio_num_attention_heads=4,
                  audio_attention_head_dim=2)
    torch.manual_seed(0)
    perturb_(LTX2VideoTransformer3DModel(**config).eval(), seed=3, scale=0.05).save_pretrained(folder / "transformer")
    return folder


@pytest.fixture(scope="module")
def prompt(four_heads):
    return prompt_embeddings(four_heads)


@pytest.fixture(scope="module")
def one_process(four_heads, prompt):
    """Everything the ranks do, done here."""
    flows = {flow: generate(four_heads, flow, prompt) for flow in ("text-to-video", "image-to-video", "two-stage")}
    transformer = LTX2VideoTransformer3DModel.from_pretrained(four_heads, subfolder="transformer")
    return {"flows": flows, "transformer": transformer_outputs(transformer), "tiles": decode_tiles(four_heads, False)}


@pytest.fixture(scope="module", params=[2, 4], ids=["2-ranks", "4-ranks"])
def ranks(request, four_heads, pipeline_folder, prompt):
    """(world size, what each rank returned)."""
    world = request.param
    return world, on_ranks(world, rank_job, four_heads, pipeline_folder[0], prompt, FLOWS[world])


def tensors(value, path=()):
    """(path, tensor) for every tensor in nested dicts, tuples and lists."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from tensors(item, (*path, key))
    elif isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from tensors(item, (*path, index))


def test_every_rank_returns_the_same(ranks):
    _, results = ranks
    first = dict(tensors(results[0]))
    assert len(first) >= 16  # transformer outputs, decoded tiles, every flow's outputs
    for other in results[1:]:
        assert all(torch.equal(first[path], tensor) for path, tensor in tensors(other))


def test_transformer_matches_one_process(ranks, one_process):
    _, results = ranks
    for key in ("joint", "isolated", "masked"):
        for ours, expected in zip(results[0]["transformer"][key], one_process["transformer"][key]):
            assert ours.shape == expected.shape
            assert relative_l2(ours, expected) <= 1e-5
    masked, joint = one_process["transformer"]["masked"][0], one_process["transformer"]["joint"][0]
    assert relative_l2(masked, joint) > 1e-3  # the video self-attention mask changes the video output


def test_collectives_run_and_each_rank_projects_its_share(ranks):
    """Per forward: two all-to-alls per sharded attention (4 per block, 2 with isolated modalities), one gather
    per stream; each attention module projects 1/N of the (padded) tokens, and attends for 1/N of the heads
    over all of them."""
    world, results = ranks
    probe = results[0]["transformer"]
    layers, heads = 2, 4
    assert probe["joint calls"] == {"all_to_all_single": 2 * 4 * layers, "all_gather": 2}
    assert probe["isolated calls"] == {"all_to_all_single": 2 * 2 * layers, "all_gather": 2}
    assert probe["masked calls"] == probe["joint calls"]
    video, audio = math.ceil(math.prod(VIDEO) / world), math.ceil(AUDIO / world)
    assert probe["query tokens"] == {("attn1", video), ("audio_attn1", audio), ("audio_to_video_attn", video),
                                     ("video_to_audio_attn", audio)}
    all_video, all_audio = video * world, audio * world
    assert probe["attended"] == {(heads // world, all_video, all_video), (heads // world, all_audio, all_audio),
                                 (heads // world, all_video, all_audio), (heads // world, all_audio, all_video)}


def test_pipelines_match_one_process(ranks, one_process):
    """Text-to-video with four guidance passes and a tiled decode, image-to-video and the two-stage flow, under
    Ulysses, guidance-pass parallelism and both."""
    world, results = ranks
    for (flow, split), outputs in results[0]["flows"].items():
        for name, value in outputs.items():
            expected = one_process["flows"][flow][name]
            assert value.shape == expected.shape, (flow, split, name)
            tolerance = 1e-3 if name in ("video", "audio") else 1e-4
            assert relative_l2(value, expected) <= tolerance, (flow, split, name)
    assert len(results[0]["flows"]) == len(FLOWS[world])


def test_distributed_tiled_decode_equals_one_process(ranks, one_process):
    _, results = ranks
    for name, expected in one_process["tiles"].items():
        assert results[0]["tiles"][name].shape == expected.shape
        assert relative_l2(results[0]["tiles"][name], expected) <= 1e-6


def test_indivisible_heads_and_group_size_are_refused(ranks):
    world, results = ranks
    expected = ["ulysses_degree=4 but the world has 2 ranks"]
    if world == 4:
        expected = ["num_attention_heads=2 is not divisible by ulysses_degree=4",
                    "ulysses_degree=2 but the world has 4 ranks"]
    messages = results[0]["refusals"]
    assert len(messages) == len(expected)
    assert all(part in message for part, message in zip(expected, messages)), messages


def test_config_and_split_rules():
    with pytest.raises(ValueError, match="ring attention is not implemented"):
        ContextParallelConfig(ring_degree=2)
    with pytest.raises(ValueError, match="ulysses_degree must be an integer >= 2"):
        ContextParallelConfig(ulysses_degree=1)
    with pytest.raises(ValueError, match="ulysses_anything"):
        ContextParallelConfig(ulysses_degree=2, ulysses_anything=True)
    with pytest.raises(RuntimeError, match="init_process_group"):
        ContextParallelConfig(ulysses_degree=2).process_group()
    # Two guidance groups when a step has several passes; Ulysses as far as the heads allow.
    assert default_split(8, 32, guided=True) == (4, 2)
    assert default_split(8, 32, guided=False) == (8, 1)
    assert default_split(6, 32, guided=True) == (1, 6)
    assert default_split(4, 2, guided=False) == (2, 2)


def test_guidance_passes_run_batched_here():
    """Alone, the unconditional and conditional passes run as one batched call, the others separately."""
    scales = GuidanceScales(cfg=4.0, stg=1.0, modality=2.0)
    passes = guidance_passes(2, True, scales, GuidanceScales())
    assert [item.name for item in passes] == ["uncond", "cond", "perturbed", "isolated"]
    calls = []

    def predict(rows, options):
        calls.append((rows, options))
        return (torch.arange(sum(r.stop - r.start for r in rows)),)

    results = run_guidance_passes(passes, predict)
    assert calls == [([slice(0, 2), slice(2, 4)], {}), ([slice(2, 4)], {}),
                     ([slice(2, 4)], {"isolate_modalities": True})]
    assert [tuple(results[name][0].tolist()) for name in ("uncond", "cond", "isolated")] == [(0, 1), (2, 3), (0, 1)]
    assert run_guidance_passes([GuidancePass("cond", slice(0, 1))], predict)["cond"][0].tolist() == [0]


def test_share_tiles_refuses_injected_noise():
    class NoisyVAE:
        class config:  # stands in for a VAE's config
            decoder_inject_noise = (False, True)

    with pytest.raises(ValueError, match="decoder_inject_noise"):
        share_tiles(NoisyVAE())

