"""LTX2DurationHead and the frame-count rule: parity with diffusers 0.42.1, full-size layout, loading, bad input."""

import json
import warnings

import pytest
import torch
from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead as ReferenceHead

from ltx2 import LTX2DurationHead
from ltx2.configs import LTX_2_5_DURATION_HEAD
from ltx2.models.duration_head import frames_for_duration
from ltx2.pipelines.base import _load_component
from parity import assert_same_layout, perturb_, relative_l2

TINY = dict(video_cross_attention_dim=24, audio_cross_attention_dim=12, pooler_hidden_dim=16, num_queries=2,
            num_pooler_heads=4, mlp_hidden_dim=8)


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    torch.manual_seed(0)
    reference = perturb_(ReferenceHead(**TINY), scale=0.3).eval()
    folder = tmp_path_factory.mktemp("duration-head")
    reference.save_pretrained(folder)
    return reference, LTX2DurationHead.from_pretrained(folder)


def tokens(batch: int, length: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, length, width, generator=torch.Generator().manual_seed(seed))


STREAMS = {
    "video": lambda: (tokens(2, 7, 24, 1), None),
    "audio": lambda: (None, tokens(2, 5, 12, 2)),
    "both-unequal-lengths": lambda: (tokens(2, 7, 24, 1), tokens(2, 3, 12, 2)),
}


@pytest.mark.parametrize("streams", list(STREAMS))
@torch.no_grad()
def test_seconds_match_reference(heads, streams):
    reference, ours = heads
    video, audio = STREAMS[streams]()
    expected = reference(video, audio)
    actual = ours(video_tokens=video, audio_tokens=audio)
    assert actual.shape == expected.shape == (2,)
    assert relative_l2(actual, expected) <= 1e-5


@torch.no_grad()
def test_predict_num_frames_matches_reference(heads):
    reference, ours = heads
    video, audio = tokens(1, 7, 24, 3), tokens(1, 4, 12, 4)
    for frame_rate, ratio in ((24.0, 8), (25.0, 8), (8.0, 4)):
        arguments = dict(frame_rate=frame_rate, temporal_compression_ratio=ratio, min_seconds=0.1, max_seconds=30.0)
        assert ours.predict_num_frames(video, audio, **arguments) == reference.predict_num_frames(
            video, audio, **arguments
        )


# (seconds, frame rate, ratio, min seconds, max seconds): in range, both clamps, Python's round-half-to-even
# (24.5 -> 24, 25.5 -> 26), on and just off the grid, flooring below the minimum (snapped up), windows without a
# grid point (nearest neighbour, ties down), a minimum under one frame, fractional frame rates.
RULE_CASES = [
    (5.0, 24.0, 8, 1.0, 20.0), (5.04, 24.0, 8, 1.0, 20.0), (0.2, 24.0, 8, 1.0, 20.0), (40.0, 24.0, 8, 1.0, 20.0),
    (24.5 / 24, 24.0, 8, 0.5, 20.0), (25.5 / 24, 24.0, 8, 0.5, 20.0), (1.0, 24.0, 8, 1.0, 20.0),
    (3.0 + 1 / 24, 24.0, 8, 1.0, 20.0), (1.0, 24.0, 8, 1.0, 1.02), (1.01, 24.0, 8, 1.0, 1.02),
    (1.0, 24.0, 8, 1.0, 1.2), (0.9, 25.0, 8, 0.9, 1.1), (1.0, 30.0, 8, 1.0, 1.1), (0.0, 24.0, 8, 0.0, 0.01),
    (0.001, 24.0, 8, 0.001, 5.0), (7.3, 23.976, 8, 1.0, 20.0), (2.2, 29.97, 4, 2.1, 2.2), (12.0, 60.0, 8, 1.0, 20.0),
    (3.3, 8.0, 4, 1.0, 20.0), (0.5, 24.0, 1, 0.1, 1.0), (0.75, 24.0, 8, 0.7, 0.8), (0.7, 16.0, 8, 0.6, 0.75),
    (2.0, 24.0, 8, 2.0, 2.3), (19.99, 24.0, 8, 1.0, 20.0), (20.0, 24.0, 8, 1.0, 20.0),
]


def reference_rule(seconds, frame_rate, ratio, min_seconds, max_seconds) -> int:
    head = ReferenceHead(**TINY)
    head.forward = lambda video, audio: torch.tensor([seconds], dtype=torch.float64)
    return head.predict_num_frames(
        None, None, frame_rate=frame_rate, temporal_compression_ratio=ratio, min_seconds=min_seconds,
        max_seconds=max_seconds,
    )


@pytest.mark.parametrize("case", RULE_CASES, ids=[f"{s}s@{f}fps/{r}[{a},{b}]" for s, f, r, a, b in RULE_CASES])
def test_frame_rule_matches_reference_exactly(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert frames_for_duration(*case) == reference_rule(*case)


def test_frame_rule_warns_when_bounds_hold_no_grid_point():
    with pytest.warns(UserWarning, match="contain no frame count k \\* 8 \\+ 1; using the nearest, 25 frames"):
        assert frames_for_duration(1.0, 24.0, 8, 1.0, 1.02) == 25
    with pytest.warns(UserWarning, match="predicted duration 40.00s lies outside"):
        assert frames_for_duration(40.0, 24.0, 8) == 473


def test_full_size_layout_matches_reference():
    with torch.device("meta"):
        ours, reference = LTX2DurationHead(**LTX_2_5_DURATION_HEAD), ReferenceHead(**LTX_2_5_DURATION_HEAD)
    assert assert_same_layout(ours, reference) == 1_903_361
    reference_config = {key: value for key, value in reference.config.items() if not key.startswith("_")}
    assert dict(ours.config) == reference_config == dict(LTX_2_5_DURATION_HEAD)


@torch.no_grad()
def test_loads_as_pipeline_component_under_library_ltx2(heads, tmp_path):
    reference, _ = heads
    reference.save_pretrained(tmp_path / "duration_head")
    (tmp_path / "model_index.json").write_text(json.dumps({"duration_head": ["ltx2", "LTX2DurationHead"]}))
    entry = json.loads((tmp_path / "model_index.json").read_text())["duration_head"]
    loaded = _load_component(tmp_path, "duration_head", entry[1], torch.float32)
    video = tokens(2, 7, 24, 5)
    assert isinstance(loaded, LTX2DurationHead)
    assert relative_l2(loaded(video), reference(video)) <= 1e-5


@pytest.mark.parametrize(
    ("video", "audio", "match"),
    [
        (None, None, "needs video_tokens, audio_tokens or both"),
        (torch.zeros(1, 3, 5), None, "video_tokens must be \\(batch, tokens, 24\\), got \\(1, 3, 5\\)"),
        (None, torch.zeros(3, 12), "audio_tokens must be \\(batch, tokens, 12\\)"),
        (torch.zeros(1, 3, 24), torch.zeros(2, 3, 12), "the same batch size, got \\[1, 2\\]"),
    ],
    ids=["none", "video-width", "audio-2d", "batches"],
)
def test_bad_input_raises(video, audio, match):
    with pytest.raises(ValueError, match=match):
        LTX2DurationHead(**TINY)(video, audio)


def test_predict_num_frames_takes_one_prompt():
    with pytest.raises(ValueError, match="one prompt, got a batch of 2"):
        LTX2DurationHead(**TINY).predict_num_frames(
            tokens(2, 3, 24, 0), frame_rate=24.0, temporal_compression_ratio=8
        )
