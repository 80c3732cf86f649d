"""Conditioning images prepared as LTX-2 expects them: compressed like its training frames, resized as diffusers does.

LTX-2.0 and LTX-2.3 were trained on H.264-compressed frames, so Lightricks' pipelines and diffusers 0.42.1 pass a
conditioning image through one H.264 frame (CRF 33) before the VAE encodes it; `image_crf=0` skips that.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import PIL.Image

# diffusers 0.42.1 resizes conditioning images bilinearly (its image-to-video and condition pipelines).
RESAMPLE = PIL.Image.BILINEAR


def read_image(path: str | Path) -> PIL.Image.Image:
    """An image file as RGB; a clear error when it cannot be read."""
    try:
        with PIL.Image.open(path) as opened:
            return opened.convert("RGB")
    except (OSError, ValueError) as error:
        raise ValueError(f"image {str(path)!r} could not be read as an image ({error})") from None


def recompress(pixels: np.ndarray, crf: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the same image after one H.264 frame at `crf` (libx264, yuv420p), decoded back.

    crf 0 returns the pixels unchanged, whatever they are. 4:2:0 chroma needs even sizes, so an odd last row or
    column is dropped, as Lightricks' code does.
    """
    if not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ValueError(f"image_crf must be an integer in [0, 51] (0: no re-compression), got {crf!r}")
    if crf == 0:
        return pixels
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"recompress needs (H, W, 3) uint8 RGB pixels, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[0] // 2 * 2, pixels.shape[1] // 2 * 2
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(crf), "preset": "veryfast"})
        stream.height, stream.width = height, width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels[:height, :width]), format="rgb24")
        container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = next(container.decode(video=0))
        return decoded.to_ndarray(format="rgb24")


def recompress_image(image: PIL.Image.Image, crf: int) -> PIL.Image.Image:
    """`recompress` for a PIL image (converted to RGB)."""
    if crf == 0:
        return image
    return PIL.Image.fromarray(recompress(np.asarray(image.convert("RGB")), crf))
