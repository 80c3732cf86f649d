"""Where things sit on a DFR canvas: the keyframe segment grid, the temporal-refine windows, the spatial epilogue's
tiles and the token plan a tiled transformer call walks. Pure arithmetic on sizes; no model is involved.

Vocabulary. A *segment* is a run of pixel frames that ends on a keyframe; the canvas holds whole segments, so a
request of N frames is padded up to N' = 1 + k * segment. Frame 0 is never a keyframe (the causal VAE encodes it
alone); the last frame always is. A *seam* is a segment edge on the latent grid. Tiles along time cut on seams (both
neighbours reproduce the same keyframe there, so the later tile's run-up is thrown away); tiles along height and
width overlap and fade into each other with weights that sum to one.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import torch

# Segment lengths a canvas may use, in latent frames (24 and 32 pixel frames at the x8 VAE); the least padding wins.
SEGMENT_LATENT_CANDIDATES = (3, 4)
# Latent cells shared by neighbouring epilogue tiles along height and width.
EPILOGUE_SPATIAL_OVERLAP = 12


class DimensionInterval(NamedTuple):
    """A tile's half-open [start, end) along one axis, and how many cells at each end it shares with a neighbour."""

    start: int
    end: int
    left_ramp: int
    right_ramp: int


class LTX2DFRTemporalTile(NamedTuple):
    """A temporal-refine window: its latent interval, its inclusive pixel bounds, the keyframes it inherits
    (`anchors`) and the mid-segment frames it invents (`slots`)."""

    interval: DimensionInterval
    pixel_start: int
    pixel_end: int
    anchors: tuple[int, ...]
    slots: tuple[int, ...]


class LTX2DFREpilogueTile(NamedTuple):
    """An epilogue tile: latent slices per axis and its (F, H, W) blend window (the windows of all tiles sum to one)."""

    frames: slice
    heights: slice
    widths: slice
    blend_weight: torch.Tensor


class LTX2DFRTokenPlan(NamedTuple):
    """A tile's share of a packed token sequence: token indices (grid tokens first), one blend weight per token, and
    the tokens' positions relative to the tile's first grid token."""

    keep: torch.Tensor
    weights: torch.Tensor
    coords: torch.Tensor


def _padding(frames: int, segment: int) -> int:
    return -frames % segment


def choose_segment_length(content_frames: int, temporal_compression_ratio: int = 8) -> int:
    """The segment length (pixel frames) that pads `content_frames` (= num_frames - 1) least; a tie takes the longer."""
    candidates = [latent * temporal_compression_ratio for latent in SEGMENT_LATENT_CANDIDATES]
    return min(candidates, key=lambda segment: (_padding(content_frames, segment), -segment))


def resolve_canvas(num_frames: int, temporal_compression_ratio: int = 8) -> tuple[int, int, list[int]]:
    """(padded frame count, segment length, keyframe positions S, 2S, ..., N' - 1) for a request of `num_frames`."""
    content = num_frames - 1
    if content % temporal_compression_ratio:
        raise ValueError(
            f"`num_frames` must satisfy (num_frames - 1) % {temporal_compression_ratio} == 0, got {num_frames}"
        )
    if content < temporal_compression_ratio:
        raise ValueError(f"The DFR canvas needs at least {temporal_compression_ratio + 1} pixel frames, got {num_frames}")
    segment = choose_segment_length(content, temporal_compression_ratio)
    padded = content + _padding(content, segment)
    return padded + 1, segment, list(range(segment, padded + 1, segment))


def pixel_to_latent_index(pixel_frame: int, temporal_compression_ratio: int = 8) -> int:
    """The latent frame of a pixel frame on a latent border (a multiple of the compression ratio)."""
    if pixel_frame < 0:
        raise ValueError(f"`pixel_frame` must be >= 0, got {pixel_frame}")
    if pixel_frame % temporal_compression_ratio:
        raise ValueError(f"Pixel frame {pixel_frame} is not on the x{temporal_compression_ratio} latent border")
    return pixel_frame // temporal_compression_ratio


def split_canvas_at_seams(seams: Sequence[int], num_tiles: int, overlap: int, dim_size: int) -> list[DimensionInterval]:
    """Cut an axis of `dim_size` cells on segment edges `seams` (0, ..., dim_size - 1) into at most `num_tiles` tiles.

    Segments are dealt out evenly, the leading tiles taking the leftovers. Every tile after the first begins `overlap`
    cells before the cell after its first seam: that run-up is context only and is reported as `left_ramp`.
    """
    seams = [int(seam) for seam in seams]
    if overlap < 0:
        raise ValueError(f"`overlap` must be >= 0, got {overlap}")
    if len(seams) < 2 or seams[0] != 0:
        raise ValueError(f"`seams` must start at 0 and hold at least one segment, got {seams}")
    if any(b <= a for a, b in itertools.pairwise(seams)):
        raise ValueError(f"`seams` must be strictly increasing, got {seams}")
    if seams[-1] != dim_size - 1:
        raise ValueError(f"`seams` must end at the last cell ({dim_size - 1}), got {seams[-1]}")
    if num_tiles < 1:
        raise ValueError(f"`num_tiles` must be >= 1, got {num_tiles}")

    num_segments = len(seams) - 1
    num_tiles = min(num_tiles, num_segments)
    per_tile, extra = divmod(num_segments, num_tiles)
    intervals = []
    first_seam = 0
    for index in range(num_tiles):
        last_seam = first_seam + per_tile + (index < extra)
        owned_from = seams[first_seam] + 1  # the cell after the seam the previous tile keeps
        start = 0 if index == 0 else max(0, owned_from - overlap)
        intervals.append(DimensionInterval(start, seams[last_seam] + 1, owned_from - start if index else 0, 0))
        first_seam = last_seam
    return intervals


def temporal_tile_plan(
    seam_positions: Sequence[int], num_frames: int, num_tiles: int, temporal_compression_ratio: int = 8
) -> list[LTX2DFRTemporalTile]:
    """Windows for one temporal-refine round over a canvas of `num_frames` with keyframes at `seam_positions`.

    The run-up of a later window is one segment plus the shared seam cell; each window's slots are the midpoints
    between its start and each keyframe after it.
    """
    ratio = temporal_compression_ratio
    seams = [0] + [pixel_to_latent_index(position, ratio) for position in seam_positions]
    latent_frames = (num_frames - 1) // ratio + 1
    tiles = []
    for interval in split_canvas_at_seams(seams, num_tiles, seams[1] + 1, latent_frames):
        first, last = interval.start * ratio, (interval.end - 1) * ratio
        anchors = tuple(p for p in seam_positions if first <= p <= last)
        edges = [first] + [p for p in seam_positions if first < p <= last]
        slots = tuple((a + b) // 2 for a, b in itertools.pairwise(edges))
        tiles.append(LTX2DFRTemporalTile(interval, first, last, anchors, slots))
    return tiles


def split_by_count(dim_size: int, num_tiles: int, overlap: int) -> list[DimensionInterval]:
    """`num_tiles` near-equal tiles covering [0, dim_size), neighbours sharing exactly `overlap` cells (the leading
    tiles one cell longer when the sizes do not divide)."""
    if num_tiles == 1:
        return [DimensionInterval(0, dim_size, 0, 0)]
    size, extra = divmod(dim_size + overlap * (num_tiles - 1), num_tiles)
    if size <= overlap:
        raise ValueError(
            f"Tile size {size} is not larger than the overlap {overlap} for dim_size={dim_size}, num_tiles={num_tiles}"
        )
    intervals = []
    for index in range(num_tiles):
        start = index * (size - overlap) + min(index, extra)
        end = start + size + (index < extra)
        intervals.append(
            DimensionInterval(start, end, overlap if index else 0, overlap if index < num_tiles - 1 else 0)
        )
    return intervals


def trapezoidal_mask_1d(length: int, left_ramp: int, right_ramp: int) -> torch.Tensor:
    """Ones, rising as i / (k + 1), i = 1..k over the first `left_ramp` cells and falling likewise over the last
    `right_ramp`: two tiles sharing k cells then weigh each of them to exactly one."""
    weight = torch.ones(length)
    if left_ramp:
        weight[:left_ramp] *= torch.linspace(0.0, 1.0, left_ramp + 2)[1:-1]
    if right_ramp:
        weight[-right_ramp:] *= torch.linspace(1.0, 0.0, right_ramp + 2)[1:-1]
    return weight


def rectangular_mask_1d(length: int, left_ramp: int) -> torch.Tensor:
    """Ones with the first `left_ramp` cells (a run-up onto a seam the previous tile keeps) at zero."""
    weight = torch.ones(length)
    weight[:left_ramp] = 0.0
    return weight


def _epilogue_axis(dim_size: int, num_tiles: int, overlap: int, axis: str) -> tuple[int, int]:
    """(tiles, overlap) an axis can hold: too short for its tiles runs untiled; too short for its overlap clamps it."""
    if num_tiles > 1 and dim_size < num_tiles:
        warnings.warn(f"Spatial epilogue: latent {axis} is {dim_size} cells, too short for {num_tiles} tiles; "
                      "running this axis untiled.", stacklevel=3)
        return 1, 0
    if num_tiles > 1 and overlap > dim_size - num_tiles:
        warnings.warn(f"Spatial epilogue: latent {axis} is {dim_size} cells, so an overlap of {overlap} leaves no room "
                      f"for {num_tiles} tiles; clamping the overlap to {dim_size - num_tiles}.", stacklevel=3)
        return num_tiles, dim_size - num_tiles
    return num_tiles, overlap


def epilogue_tiles(
    latent_shape: tuple[int, int, int], frame_tiles: int, frame_seams: Sequence[int]
) -> list[LTX2DFREpilogueTile]:
    """The spatial epilogue's tiles over a (frames, height, width) latent grid, frames outermost.

    Height and width are cut in two with EPILOGUE_SPATIAL_OVERLAP cells faded across. Time is cut into `frame_tiles`
    on the interior cells of `frame_seams` (latent keyframe cells), each later tile reaching back one segment plus the
    seam cell and dropping that run-up; without an interior seam the time tiles are faded like the others.
    """
    frames, height, width = latent_shape
    frame_overlap = frame_seams[0] + 1 if frame_tiles > 1 and frame_seams else 0
    frame_tiles, frame_overlap = _epilogue_axis(frames, frame_tiles, frame_overlap, "frames")
    height_tiles, height_overlap = _epilogue_axis(height, 2, EPILOGUE_SPATIAL_OVERLAP, "height")
    width_tiles, width_overlap = _epilogue_axis(width, 2, EPILOGUE_SPATIAL_OVERLAP, "width")

    interior = sorted({cell for cell in frame_seams if 0 < cell < frames - 1})
    cut_on_seams = frame_tiles > 1 and bool(interior)
    if cut_on_seams:
        frame_intervals = split_canvas_at_seams([0, *interior, frames - 1], frame_tiles, frame_overlap, frames)
    else:
        if frame_seams and frame_tiles > 1:
            warnings.warn(f"Spatial epilogue: seams {list(frame_seams)} are not interior to {frames} latent frames; "
                          "blending the temporal tiles instead of cutting them.", stacklevel=2)
        frame_intervals = split_by_count(frames, frame_tiles, frame_overlap)

    def window(interval: DimensionInterval) -> torch.Tensor:
        return trapezoidal_mask_1d(interval.end - interval.start, interval.left_ramp, interval.right_ramp)

    tiles = []
    for f, h, w in itertools.product(
        frame_intervals, split_by_count(height, height_tiles, height_overlap), split_by_count(width, width_tiles, width_overlap)
    ):
        frame_weight = rectangular_mask_1d(f.end - f.start, f.left_ramp) if cut_on_seams else window(f)
        weight = frame_weight[:, None, None] * window(h)[None, :, None] * window(w)[None, None, :]
        tiles.append(LTX2DFREpilogueTile(slice(f.start, f.end), slice(h.start, h.end), slice(w.start, w.end), weight))
    return tiles


def video_tile_plan(
    tiles: list[LTX2DFREpilogueTile],
    video_coords: torch.Tensor,
    latent_num_frames: int,
    latent_height: int,
    latent_width: int,
) -> list[LTX2DFRTokenPlan]:
    """The tokens each tile processes in a tiled transformer call over a packed sequence with coordinates
    `video_coords` (B, 3, tokens, 2: start and end of each token's RoPE interval per axis), grid tokens first.

    A tile takes its window's grid tokens and every appended (keyframe, slot, reference) token whose interval overlaps
    the window on all three axes in some batch item. Grid tokens carry the tile's blend window, an appended token kept
    by n tiles carries 1/n; positions are shifted so the tile's first grid token starts at 0.
    """
    frame_tokens = latent_height * latent_width
    num_grid = latent_num_frames * frame_tokens
    device = video_coords.device
    appended = video_coords[:, :, num_grid:, :]  # (B, 3, M, 2)

    grid_tokens, origins, claims = [], [], []
    for tile in tiles:
        f, h, w = (torch.arange(s.start, s.stop, device=device) for s in (tile.frames, tile.heights, tile.widths))
        indices = (f[:, None, None] * frame_tokens + h[None, :, None] * latent_width + w[None, None, :]).flatten()
        window = video_coords[:, :, indices, :]
        low, high = window[..., 0].amin(dim=2), window[..., 1].amax(dim=2)  # (B, 3)
        inside = (appended[..., 0] < high[..., None]) & (appended[..., 1] > low[..., None])  # (B, 3, M)
        grid_tokens.append(indices)
        origins.append(low)
        claims.append(inside.all(dim=1).any(dim=0))

    claimants = torch.stack(claims).sum(dim=0)
    if not bool((claimants > 0).all()):
        orphans = (claimants == 0).nonzero().flatten().tolist()
        raise ValueError(f"Conditioning tokens {orphans} fall outside every tile, so no tile would denoise them: their "
                         "RoPE positions lie off the canvas the tiling covers.")

    plan = []
    for tile, indices, low, claim in zip(tiles, grid_tokens, origins, claims):
        keep = torch.cat([indices, num_grid + claim.nonzero().flatten()])
        share = 1.0 / claimants[claim].to(device=device, dtype=tile.blend_weight.dtype)
        weights = torch.cat([tile.blend_weight.flatten().to(device), share])
        plan.append(LTX2DFRTokenPlan(keep, weights, video_coords[:, :, keep, :] - low[..., None, None]))
    return plan


def trim_canvas(latents: torch.Tensor, num_frames: int, temporal_compression_ratio: int) -> torch.Tensor:
    """Drop a padded canvas's tail latent frames (B, C, F, H, W) beyond those covering `num_frames` pixel frames."""
    return latents[:, :, : (num_frames - 1) // temporal_compression_ratio + 1]
