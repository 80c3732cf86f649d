"""ltx2.dfr_layout equals diffusers 0.42.1's dfr_layout on every size we throw at it (values, tensors, errors)."""

import itertools
import warnings

import pytest
import torch
from diffusers.pipelines.ltx2 import dfr_layout as reference
from diffusers.pipelines.ltx2.utils import trim_canvas as reference_trim

from ltx2 import dfr_layout as ours


def outcome(function, *args):
    """The result, or the ValueError's type and message, so that both sides can be compared as values."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args)
    except ValueError as error:
        return ("ValueError", str(error).split(",")[0])


def same_tiles(mine: list, theirs: list) -> None:
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        assert tuple(a[:3]) == tuple(b[:3])
        assert a.blend_weight.dtype == b.blend_weight.dtype and torch.equal(a.blend_weight, b.blend_weight)


def test_constants():
    assert ours.SEGMENT_LATENT_CANDIDATES == reference.SEGMENT_LATENT_CANDIDATES
    assert ours.EPILOGUE_SPATIAL_OVERLAP == reference.EPILOGUE_SPATIAL_OVERLAP


@pytest.mark.parametrize("ratio", [4, 8])
def test_canvas_over_every_frame_count(ratio):
    for num_frames in range(-8, 1100):
        assert outcome(ours.resolve_canvas, num_frames, ratio) == outcome(reference.resolve_canvas, num_frames, ratio)
    for content in range(0, 1100):
        assert ours.choose_segment_length(content, ratio) == reference.choose_segment_length(content, ratio)
    for pixel in range(-3, 200):
        assert outcome(ours.pixel_to_latent_index, pixel, ratio) == outcome(reference.pixel_to_latent_index, pixel, ratio)


def test_canvas_examples():
    assert ours.resolve_canvas(121) == (121, 24, [24, 48, 72, 96, 120])
    assert ours.resolve_canvas(81) == (97, 32, [32, 64, 96])


def test_split_at_seams_and_by_count():
    seam_sets = [[0, 3, 6, 9, 12], [0, 4, 8, 12, 15], [0, 3], [0, 2, 5], [1, 3], [0, 3, 3], [0, 4, 2, 8]]
    for seams, tiles, overlap in itertools.product(seam_sets, range(-1, 7), range(-1, 6)):
        for dim in (seams[-1] + 1, seams[-1] + 2):
            assert outcome(ours.split_canvas_at_seams, seams, tiles, overlap, dim) == outcome(
                reference.split_canvas_at_seams, seams, tiles, overlap, dim)
    for dim, tiles, overlap in itertools.product(range(1, 80), range(1, 5), (0, 1, 3, 12)):
        assert outcome(ours.split_by_count, dim, tiles, overlap) == outcome(reference.split_by_count, dim, tiles, overlap)


def test_masks():
    for length in range(1, 30):
        for left, right in itertools.product(range(0, min(length, 13) + 1), repeat=2):
            assert torch.equal(ours.trapezoidal_mask_1d(length, left, right), reference.trapezoidal_mask_1d(length, left, right))
        for left in range(length + 1):
            assert torch.equal(ours.rectangular_mask_1d(length, left), reference.rectangular_mask_1d(length, left))


def test_temporal_tile_plan_over_canvases():
    for num_frames, ratio in itertools.product(range(9, 500, 8), (8,)):
        canvas, _, positions = reference.resolve_canvas(num_frames, ratio)
        for tiles in (1, 2, 3, 4, 8, 64):
            assert ours.temporal_tile_plan(positions, canvas, tiles, ratio) == reference.temporal_tile_plan(
                positions, canvas, tiles, ratio)
        # A refine round's finer grid: the previous round's seams plus the slots between them.
        finer = sorted(set(positions) | {p - 8 * (p // 16 % 2 + 1) for p in positions if p > 16})
        for tiles in (1, 2, 4):
            assert outcome(ours.temporal_tile_plan, finer, canvas, tiles, ratio) == outcome(
                reference.temporal_tile_plan, finer, canvas, tiles, ratio)
    assert outcome(ours.temporal_tile_plan, [12], 25, 2, 8) == outcome(reference.temporal_tile_plan, [12], 25, 2, 8)


def test_epilogue_tiles_over_shapes():
    frame_counts = [1, 2, 3, 4, 5, 7, 10, 13, 16, 25, 31]
    sides = [1, 2, 3, 13, 14, 15, 25, 26, 27, 68]
    widths = itertools.cycle([27, 1, 14, 68, 2, 26, 13])
    for frames, height in itertools.product(frame_counts, sides):
        width = next(widths)
        for frame_tiles in (1, 2, 3, 4):
            for seams in ([], [3, 6, 9, 12], [4, 8], [2], [0, frames - 1], list(range(3, frames, 3))):
                mine = outcome(ours.epilogue_tiles, (frames, height, width), frame_tiles, seams)
                theirs = outcome(reference.epilogue_tiles, (frames, height, width), frame_tiles, seams)
                if isinstance(theirs, tuple):
                    assert mine == theirs
                else:
                    same_tiles(mine, theirs)


def test_epilogue_warns():
    with pytest.warns(UserWarning, match="too short"):
        ours.epilogue_tiles((4, 1, 40), 1, [])
    with pytest.warns(UserWarning, match="clamping"):
        ours.epilogue_tiles((4, 13, 40), 1, [])
    with pytest.warns(UserWarning, match="not interior"):
        ours.epilogue_tiles((4, 40, 40), 2, [0, 3])


def pixel_coords(frames: int, height: int, width: int, extra: torch.Tensor) -> torch.Tensor:
    """(2, 3, tokens, 2) [start, end) RoPE intervals for a latent grid (x8 time, x32 space) followed by `extra`."""
    f, h, w = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    starts = torch.stack([(f * 8 - 7).clamp(min=0), h * 32, w * 32]).flatten(1).float()
    ends = torch.stack([f * 8 + 1, h * 32 + 32, w * 32 + 32]).flatten(1).float()
    grid = torch.stack([starts, ends], dim=-1)
    coords = torch.cat([grid, extra], dim=1)
    return torch.stack([coords, coords + 0.5 * torch.rand(()).round()])


@pytest.mark.parametrize("frames,height,width,frame_tiles,seams", [
    (16, 26, 30, 2, [3, 6, 9, 12, 15]), (16, 14, 28, 4, [3, 6, 9, 12, 15]), (7, 14, 27, 1, []), (5, 26, 13, 3, [4]),
    (13, 2, 30, 2, [4, 8, 12]), (4, 27, 27, 2, []),
])
def test_video_tile_plan(frames, height, width, frame_tiles, seams):
    generator = torch.Generator().manual_seed(frames * height * width)
    count = 40
    # Appended tokens: single-frame keyframes on seams, slots mid-segment, reference tokens spanning the picture.
    t0 = torch.randint(0, (frames - 1) * 8 + 1, (count,), generator=generator).float()
    h0 = torch.randint(0, height, (count,), generator=generator).float() * 32
    w0 = torch.randint(0, width, (count,), generator=generator).float() * 32
    extra = torch.stack([torch.stack([t0, t0 + 1]), torch.stack([h0, h0 + 32]), torch.stack([w0, w0 + 32])], dim=1)
    extra = extra.permute(1, 2, 0)  # (3, count, 2)
    coords = pixel_coords(frames, height, width, extra)
    tiles = reference.epilogue_tiles((frames, height, width), frame_tiles, seams)
    mine = ours.video_tile_plan(tiles, coords, frames, height, width)
    theirs = reference.video_tile_plan(tiles, coords, frames, height, width)
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype and torch.equal(x, y)


def test_video_tile_plan_orphan_token():
    extra = torch.tensor([[[0.0, 1.0]], [[0.0, 32.0]], [[4000.0, 4032.0]]])
    coords = pixel_coords(4, 30, 30, extra)
    tiles = ours.epilogue_tiles((4, 30, 30), 1, [])
    with pytest.raises(ValueError, match=r"\[0\]"):
        ours.video_tile_plan(tiles, coords, 4, 30, 30)
    with pytest.raises(ValueError, match=r"\[0\]"):
        reference.video_tile_plan(tiles, coords, 4, 30, 30)


def test_trim_canvas():
    latents = torch.randn(1, 2, 16, 3, 3)
    for num_frames in range(1, 130, 8):
        assert torch.equal(ours.trim_canvas(latents, num_frames, 8), reference_trim(latents, num_frames, 8))
