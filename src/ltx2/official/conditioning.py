"""Image conditioning as ltx-pipelines 1.0.0 does it: an image at pixel frame 0 replaces the first latent frame's
tokens; an image at any other frame is appended as keyframe tokens with positions of its own (time shifted by the
frame index, no causal shift). Either keeps its clean value by `strength` (denoise mask 1 - strength)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from ..models.transformer import video_positions
from ..pipelines.images import read_image, recompress
from ..pipelines.latents import normalize_video_latents, pack_video_latents
from .models import OfficialModels
from .sampling import Conditioning, Grid, LatentState
from .types import ImageConditioningInput


def resize_and_crop(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(F, H, W, 3) float -> (1, 3, F, height, width): bilinear resize to cover, then a centre crop."""
    frames = pixels.permute(0, 3, 1, 2)
    scale = max(height / frames.shape[2], width / frames.shape[3])
    size = (math.ceil(frames.shape[2] * scale), math.ceil(frames.shape[3] * scale))
    frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return frames[:, :, top: top + height, left: left + width].permute(1, 0, 2, 3).unsqueeze(0)


def load_image(path: str, height: int, width: int, crf: int, device: torch.device, dtype: torch.dtype
               ) -> torch.Tensor:
    """An image file as (1, 3, 1, height, width) in [-1, 1]: H.264 round trip at `crf`, resized, cropped."""
    pixels = recompress(np.asarray(read_image(path)), crf)
    resized = resize_and_crop(torch.tensor(pixels, dtype=torch.float32, device=device)[None], height, width)
    return (resized / 127.5 - 1.0).to(device=device, dtype=dtype)


@torch.no_grad()
def encode_pixels(models: OfficialModels, pixels: torch.Tensor) -> torch.Tensor:
    """(1, 3, F, H, W) in [-1, 1] -> normalized latents (1, 128, F', H', W') in the model dtype (posterior mode)."""
    posterior = models.vae.encode(pixels.to(models.vae.dtype)).latent_dist
    raw = posterior.mode() if hasattr(posterior, "mode") else posterior.mean
    vae = models.vae
    return normalize_video_latents(raw, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)


def load_video(path: str, height: int, width: int, frame_cap: int, device: torch.device, dtype: torch.dtype
               ) -> torch.Tensor:
    """Up to `frame_cap` frames of a video file as (1, 3, F, height, width) in [-1, 1], each resized and cropped."""
    frames = []
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                frames.append(torch.tensor(frame.to_rgb().to_ndarray(), dtype=torch.float32, device=device))
                if len(frames) == frame_cap:
                    break
    except (OSError, av.error.FFmpegError) as error:
        raise ValueError(f"video {path!r} could not be read as a video ({error})") from None
    if not frames:
        raise ValueError(f"video {path!r} has no video frames")
    pixels = torch.cat([resize_and_crop(frame[None], height, width) for frame in frames], dim=2)
    return (pixels / 127.5 - 1.0).to(device=device, dtype=dtype)


def replace_first_frames(tokens: torch.Tensor, strength: float) -> Conditioning:
    """VideoConditionByLatentIndex at latent frame 0."""

    def apply(state: LatentState, grid: Grid) -> LatentState:
        count = tokens.shape[1]
        latent, clean, mask = state.latent.clone(), state.clean.clone(), state.mask.clone()
        latent[:, :count] = tokens
        clean[:, :count] = tokens
        mask[:, :count] = 1.0 - strength
        return replace(state, latent=latent, clean=clean, mask=mask)

    return apply


def keyframe_coords(latent: torch.Tensor, frame_idx: int, fps: float) -> torch.Tensor:
    """(1, 3, N, 2) positions of appended keyframe tokens: pixel frames offset by frame_idx (causal shift only at
    frame 0), float32, seconds on the time axis."""
    frames, height, width = latent.shape[2:]
    coords = video_positions(1, frames, height, width, (8, 32, 32), 8, 1.0, latent.device).clone()
    if frame_idx == 0:
        coords[:, 0] = video_positions(1, frames, height, width, (8, 32, 32), 1, 1.0, latent.device)[:, 0]
    coords[:, 0] = (coords[:, 0] + frame_idx) / fps
    return coords.float()


def append_tokens(latent: torch.Tensor, coords: torch.Tensor, strength: float) -> Conditioning:
    """VideoConditionByKeyframeIndex: tokens appended with their own positions (the state's positions are promoted
    to float32 by the concatenation, as in ltx-core)."""
    tokens = pack_video_latents(latent)

    def apply(state: LatentState, grid: Grid) -> LatentState:
        mask = torch.full((*tokens.shape[:2], 1), 1.0 - strength, device=tokens.device, dtype=tokens.dtype)
        return LatentState(
            latent=torch.cat([state.latent, tokens.to(state.latent.dtype)], 1),
            mask=torch.cat([state.mask, mask], 1),
            clean=torch.cat([state.clean, tokens.to(state.clean.dtype)], 1),
            coords=torch.cat([state.coords, coords.to(state.coords.device)], 2),
            attention_mask=state.attention_mask,
        )

    return apply


def check_images(images: Sequence[ImageConditioningInput], num_frames: int) -> list[ImageConditioningInput]:
    checked = []
    for image in images or ():
        if not isinstance(image, tuple) or len(image) < 3:
            raise ValueError(f"images: each entry must be ImageConditioningInput(path, frame_idx, strength, crf), "
                             f"got {image!r}")
        image = ImageConditioningInput(*image)
        if not Path(image.path).is_file():
            raise ValueError(f"images: {image.path!r} is not a file")
        if not isinstance(image.frame_idx, int) or not 0 <= image.frame_idx < num_frames:
            raise ValueError(f"images: frame_idx={image.frame_idx!r} of {image.path} must be in [0, {num_frames})")
        if not 0.0 <= float(image.strength) <= 1.0:
            raise ValueError(f"images: strength={image.strength!r} of {image.path} must be in [0, 1]")
        checked.append(image)
    return checked


def image_conditionings(models: OfficialModels, images: Sequence[ImageConditioningInput], grid: Grid,
                        dtype: torch.dtype, keyframes_only: bool = False) -> list[Conditioning]:
    """combined_image_conditionings (frame 0 replaces, others append); with `keyframes_only` every image is
    appended (KeyframeInterpolationPipeline)."""
    conditionings = []
    for image in images or ():
        image = ImageConditioningInput(*image)
        pixels = load_image(image.path, grid.height * 32, grid.width * 32, image.crf, models.device, dtype)
        latent = encode_pixels(models, pixels)
        if image.frame_idx == 0 and not keyframes_only:
            conditionings.append(replace_first_frames(pack_video_latents(latent), image.strength))
        else:
            conditionings.append(append_tokens(latent, keyframe_coords(latent, image.frame_idx, grid.fps),
                                               image.strength))
    return conditionings
