"""HDR video: the LogC3 curve the HDR IC-LoRA predicts in, and writers for linear-light frames.

LTX2HDRPipeline returns scene-linear RGB (Rec.709 primaries, 1.0 = diffuse white, values above 1 are highlights) as
float32 (F, H, W, 3) per video. Three ways to keep it:
- `encode_hdr_tensor_to_mp4`: tone-mapped 8-bit sRGB H.264, as diffusers 0.42.1 writes it (clip, or your tone map).
- `encode_hdr_video`: a 10-bit HDR MP4 (HEVC Main10, yuv420p10le, BT.2020, PQ or HLG) that HDR displays show as HDR.
- `write_exr_sequence`: one OpenEXR file per frame (half or float RGB), the lossless hand-off to grading tools.
Every file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

# ARRI LogC3 at EI 800: linear = (10 ** ((v - D) / C) - B) / A above the cut, (v - F) / E below it.
LOGC3_A, LOGC3_B, LOGC3_C, LOGC3_D, LOGC3_E, LOGC3_F, LOGC3_CUT = (
    5.555556, 0.052272, 0.247190, 0.385537, 5.367655, 0.092809, 0.010591)

# Linear Rec.709 RGB -> linear Rec.2020 RGB (ITU-R BT.2087).
REC709_TO_REC2020 = np.array([[0.6274040, 0.3292820, 0.0433136],
                              [0.0690970, 0.9195400, 0.0113612],
                              [0.0163916, 0.0880132, 0.8955950]], dtype=np.float64)
# PQ (SMPTE ST 2084) and HLG (ARIB STD-B67) constants.
PQ_M1, PQ_M2, PQ_C1, PQ_C2, PQ_C3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
HLG_A, HLG_B, HLG_C = 0.17883277, 0.28466892, 0.55991073
# HLG's reference white (75% signal, ITU-R BT.2408) in scene light of the HLG OETF's [0, 1] range.
HLG_REFERENCE_WHITE = (np.exp((0.75 - HLG_C) / HLG_A) + HLG_B) / 12


def logc3_to_linear(logc: torch.Tensor) -> torch.Tensor:
    """LogC3 code values (clamped to [0, 1]) -> scene-linear light in [-0.017, ~55] (the toe dips below 0)."""
    logc = logc.clamp(0.0, 1.0)
    from_log = (torch.pow(10.0, (logc - LOGC3_D) / LOGC3_C) - LOGC3_B) / LOGC3_A
    from_linear_toe = (logc - LOGC3_F) / LOGC3_E
    return torch.where(logc >= LOGC3_E * LOGC3_CUT + LOGC3_F, from_log, from_linear_toe)


def _linear_frames(frames: Any) -> np.ndarray:
    """(F, H, W, 3) float32 linear light from a tensor or array (a leading batch of one is dropped)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().float().numpy()
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim == 5 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be linear RGB of shape (frames, height, width, 3), got {frames.shape}")
    return frames


@contextmanager
def _atomic(target: Path, suffix: str) -> Iterator[str]:
    """A temporary path next to `target`, renamed onto it when the block completes and removed if it fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".partial{suffix}")
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row / column of an odd-sized frame: 4:2:0 chroma needs even sides."""
    return np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), "edge")


def _srgb_oetf(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1.0 / 2.4) - 0.055)


def encode_hdr_tensor_to_mp4(
    frames: torch.Tensor | np.ndarray,
    output_mp4: str | Path,
    frame_rate: float,
    tone_mapping_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    tone_map_in_rgb: bool = True,
    crf: int = 18,
) -> None:
    """Tone-map linear frames (F, H, W, 3) to an 8-bit sRGB H.264 MP4, as diffusers 0.42.1 does.

    `tone_mapping_fn` takes one linear (H, W, 3) float32 frame (RGB, or BGR with `tone_map_in_rgb=False`, the order
    OpenCV's tone mappers use) and returns linear values in [0, 1]; the default clips at 1. The result is clipped to
    [0, 1], sRGB-encoded and rounded to 8 bits. Unlike 0.42.1, odd sizes are padded by one edge row/column.
    """
    if not frame_rate or frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive, got {frame_rate}")
    frames = _linear_frames(frames)
    tone_map = tone_mapping_fn or (lambda linear: np.clip(linear, 0.0, 1.0))
    target = Path(output_mp4)
    with _atomic(target, target.suffix or ".mp4") as temporary, av.open(temporary, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(frame_rate).limit_denominator(1000))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "movflags": "+faststart"}
        stream.height, stream.width = frames.shape[1] + frames.shape[1] % 2, frames.shape[2] + frames.shape[2] % 2
        for frame in frames:
            mapped = np.clip(tone_map(frame if tone_map_in_rgb else frame[..., ::-1]), 0.0, 1.0)
            pixels = (_srgb_oetf(mapped) * 255.0 + 0.5).astype(np.uint8)
            image = av.VideoFrame.from_ndarray(_even(pixels), format="rgb24" if tone_map_in_rgb else "bgr24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())


def linear_to_hdr_signal(frames: np.ndarray, transfer: str, reference_white_nits: float = 203.0) -> np.ndarray:
    """Linear Rec.709 light (1.0 = diffuse white) -> non-linear BT.2020 R'G'B' in [0, 1] for PQ or HLG.

    PQ: diffuse white is shown at `reference_white_nits` (BT.2408's 203 by default), up to PQ's 10000 nits.
    HLG: diffuse white lands at 75% signal (BT.2408); light above ~3.8x white clips.
    """
    rec2020 = np.clip(frames.astype(np.float64) @ REC709_TO_REC2020.T, 0.0, None)
    if transfer == "pq":
        y = np.clip(rec2020 * (reference_white_nits / 10000.0), 0.0, 1.0) ** PQ_M1
        return ((PQ_C1 + PQ_C2 * y) / (1 + PQ_C3 * y)) ** PQ_M2
    if transfer == "hlg":
        e = np.clip(rec2020 * HLG_REFERENCE_WHITE, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_part = HLG_A * np.log(np.maximum(12 * e - HLG_B, 1e-12)) + HLG_C
        return np.where(e <= 1 / 12, np.sqrt(3 * e), log_part)
    raise ValueError(f"transfer must be 'pq' or 'hlg', got {transfer!r}")


def _yuv420p10(signal: np.ndarray) -> np.ndarray:
    """Non-linear BT.2020 R'G'B' (H, W, 3) in [0, 1] -> limited-range 10-bit Y'CbCr 4:2:0, planes stacked as PyAV's
    yuv420p10le frames take them: (H * 3 / 2, W) uint16."""
    kr, kb = 0.2627, 0.0593  # BT.2020 non-constant luminance
    r, g, b = signal[..., 0], signal[..., 1], signal[..., 2]
    luma = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - luma) / (2 * (1 - kb)), (r - luma) / (2 * (1 - kr))
    height, width = luma.shape

    def subsampled(chroma: np.ndarray) -> np.ndarray:  # the mean of each 2x2 block, as swscale's default siting
        return chroma.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    def code(values: np.ndarray, offset: float, scale: float) -> np.ndarray:
        return np.clip(np.round(offset + scale * values), 0, 1023).astype(np.uint16)

    y = code(luma, 64, 876)
    u, v = code(subsampled(cb), 512, 896), code(subsampled(cr), 512, 896)
    return np.concatenate([y, u.reshape(height // 4, width), v.reshape(height // 4, width)])


def encode_hdr_video(
    frames: torch.Tensor | np.ndarray,
    output_path: str | Path,
    frame_rate: float,
    transfer: str = "pq",
    reference_white_nits: float = 203.0,
    crf: int = 18,
    codec: str | None = None,
) -> None:
    """Write linear frames (F, H, W, 3) as a 10-bit HDR MP4: yuv420p10le, BT.2020 primaries and matrix, limited
    range, PQ (HDR10 without mastering metadata) or HLG transfer. The codec is HEVC Main10 (libx265) by default, or
    H.264 High 10 (libx264) when asked or when a side is under 64 pixels (x265 corrupts memory on pictures smaller
    than its 64-pixel coding unit). Sides are padded to a multiple of 4 by repeating the edge."""
    if transfer not in ("pq", "hlg"):
        raise ValueError(f"transfer must be 'pq' or 'hlg', got {transfer!r}")
    if not frame_rate or frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive, got {frame_rate}")
    frames = _linear_frames(frames)
    height, width = -(-frames.shape[1] // 4) * 4, -(-frames.shape[2] // 4) * 4
    codec = codec or ("libx265" if min(height, width) >= 64 else "libx264")
    if codec not in ("libx265", "libx264"):
        raise ValueError(f"codec must be 'libx265' or 'libx264', got {codec!r}")
    trc = "smpte2084" if transfer == "pq" else "arib-std-b67"
    target = Path(output_path)
    with _atomic(target, target.suffix or ".mp4") as temporary, av.open(temporary, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(frame_rate).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        options = {"crf": str(crf)}
        if codec == "libx265":
            options["x265-params"] = f"log-level=error:colorprim=bt2020:transfer={trc}:colormatrix=bt2020nc:range=limited"
            stream.codec_context.codec_tag = "hvc1"  # the tag Apple players need to open HEVC in MP4
        stream.options = options
        context = stream.codec_context
        context.color_primaries, context.colorspace = 9, 9  # BT.2020, BT.2020 non-constant
        context.color_trc = 16 if transfer == "pq" else 18  # SMPTE ST 2084, ARIB STD-B67
        context.color_range = 1  # limited ("tv")
        for frame in frames:
            padded = np.pad(frame, ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0)), "edge")
            signal = linear_to_hdr_signal(padded, transfer, reference_white_nits)
            image = av.VideoFrame.from_ndarray(_yuv420p10(signal), format="yuv420p10le")
            image.color_primaries, image.colorspace, image.color_trc, image.color_range = (
                context.color_primaries, context.colorspace, context.color_trc, context.color_range)
            container.mux(stream.encode(image))
        container.mux(stream.encode())


def _exr_attribute(name: str, kind: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _exr_bytes(frame: np.ndarray, half: bool, compression: str) -> bytes:
    """One scanline OpenEXR image (channels B, G, R; NO or ZIP compression) from linear (H, W, 3)."""
    height, width = frame.shape[:2]
    pixel_type, dtype = (1, np.dtype("<f2")) if half else (2, np.dtype("<f4"))
    channels = b"".join(name.encode() + b"\0" + struct.pack("<iB3xii", pixel_type, 0, 1, 1) for name in "BGR") + b"\0"
    box = struct.pack("<iiii", 0, 0, width - 1, height - 1)
    compression_code, lines_per_chunk = {"none": (0, 1), "zip": (3, 16)}[compression]
    header = b"".join([
        b"\x76\x2f\x31\x01", struct.pack("<i", 2),
        _exr_attribute("channels", "chlist", channels),
        _exr_attribute("compression", "compression", bytes([compression_code])),
        _exr_attribute("dataWindow", "box2i", box),
        _exr_attribute("displayWindow", "box2i", box),
        _exr_attribute("lineOrder", "lineOrder", b"\0"),
        _exr_attribute("pixelAspectRatio", "float", struct.pack("<f", 1.0)),
        _exr_attribute("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0)),
        _exr_attribute("screenWindowWidth", "float", struct.pack("<f", 1.0)),
        b"\0",
    ])
    # Per scanline, each channel's row in channel order (B, G, R).
    planar = np.ascontiguousarray(frame[..., ::-1].astype(dtype).transpose(0, 2, 1))  # (H, 3, W)
    chunks = []
    for top in range(0, height, lines_per_chunk):
        data = planar[top: top + lines_per_chunk].tobytes()
        if compression == "zip":
            # EXR's ZIP: bytes split into even/odd halves, then delta-coded (mod 256), then zlib.
            raw = np.frombuffer(data, dtype=np.uint8)
            split = np.concatenate([raw[0::2], raw[1::2]])
            predicted = np.empty_like(split)
            predicted[0] = split[0]
            predicted[1:] = (np.diff(split.astype(np.int16)) + 128) & 0xFF
            packed = zlib.compress(predicted.tobytes(), 6)
            data = packed if len(packed) < len(data) else data
        chunks.append(struct.pack("<ii", top, len(data)) + data)
    offsets, position = [], len(header) + 8 * len(chunks)
    for chunk in chunks:
        offsets.append(position)
        position += len(chunk)
    return header + struct.pack(f"<{len(offsets)}Q", *offsets) + b"".join(chunks)


def write_exr_sequence(
    frames: torch.Tensor | np.ndarray,
    output_dir: str | Path,
    name_pattern: str = "frame_{:05d}.exr",
    half: bool = True,
    compression: str = "zip",
) -> list[Path]:
    """Write linear frames (F, H, W, 3) as OpenEXR files `output_dir/name_pattern.format(index)`, RGB in half
    (default) or full float, ZIP or no compression; returns the paths. Written by ltx2 itself (the format is small),
    so no OpenEXR dependency is needed."""
    if compression not in ("none", "zip"):
        raise ValueError(f"compression must be 'none' or 'zip', got {compression!r}")
    frames = _linear_frames(frames)
    folder = Path(output_dir)
    paths = []
    for index, frame in enumerate(frames):
        path = folder / name_pattern.format(index)
        with _atomic(path, ".exr") as temporary:
            Path(temporary).write_bytes(_exr_bytes(frame, half, compression))
        paths.append(path)
    return paths
