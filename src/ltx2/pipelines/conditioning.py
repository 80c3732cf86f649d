"""Conditioning: pictures and clips that put clean tokens into the video latent state.

Every kind of conditioning (the first frame of image-to-video, keyframes, a clip to continue, an IC-LoRA
reference video) becomes a `ConditioningItem`: encoded latent tokens with a strength, which either replace
tokens of the generated grid (a condition at latent frame 0) or are appended to the sequence with positions of
their own (every other condition, and references). Per token the state carries a conditioning strength m in
[0, 1]: the token starts as m-weighted clean latent plus noise, sees the timestep t (1 - m), and after each
step's guidance its prediction is pulled to the clean value, x0 <- x0 (1 - m) + clean m. Appended tokens are
dropped before decoding.

Follows diffusers 0.42.1 (LTX2ConditionPipeline, LTX2InContextPipeline) where it differs from Lightricks' ltx-core:
the schedule's resolution shift counts appended tokens too, and a fractional reference attention strength is a
-10000 attention bias on (1 - strength) (a near-hard cut) where ltx-core adds log(strength).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from ..models.transformer import video_positions
from .images import recompress
from .latents import normalize_video_latents, pack_video_latents

FrameInput = PIL.Image.Image | list[PIL.Image.Image] | np.ndarray | torch.Tensor


@dataclass
class LTX2VideoCondition:
    """An image or clip placed at latent frame `index` (negative counts from the end; -1 is the last).

    `frames`: a PIL image, a list of them, or an array (F, H, W, 3) / (H, W, 3) or tensor (F, 3, H, W) /
    (3, H, W) with pixel values in [0, 255]. A condition at index 0 replaces the first latent frames (image to
    video, continuing a clip); elsewhere it is appended as keyframe tokens. `strength` 1 keeps it exactly.
    A single image is re-compressed as H.264 at `crf` first (None: the model's default, 33, or 18 with LTX-2.5's
    Gemma 4 text encoder; 0: not at all).
    """

    frames: FrameInput
    index: int = 0
    strength: float = 1.0
    crf: int | None = None


@dataclass
class LTX2ReferenceCondition:
    """A reference (control) video for an IC-LoRA: PIL frames, or an array / tensor of frames in [0, 1].

    Its tokens are appended to the sequence at its own positions; `strength` 1 keeps them clean throughout.
    At most the video's number of frames are used, cut down to 8k+1.
    """

    frames: FrameInput
    strength: float = 1.0


@dataclass
class ConditioningInputs:
    """What one call conditions on, as given: frame conditions, reference videos and the references' options,
    and the image-to-video image as the user gave it (for prompt enhancement)."""

    conditions: list[LTX2VideoCondition] = field(default_factory=list)
    references: list[LTX2ReferenceCondition] = field(default_factory=list)
    reference_downscale_factor: int = 1
    attention_strength: float = 1.0
    attention_mask: torch.Tensor | None = None
    image: Any = None

    def __bool__(self) -> bool:
        return bool(self.conditions or self.references)

    def enhancement_image(self) -> PIL.Image.Image | str | Path | None:
        """The picture prompt enhancement shows Gemma: the image-to-video image, else the first condition given as
        a PIL image or list of them (its first frame), as diffusers 0.42.1 picks it; None for text alone."""
        if self.image is not None:
            return self.image
        for condition in self.conditions:
            frames = condition.frames
            if isinstance(frames, list) and frames and isinstance(frames[0], PIL.Image.Image):
                return frames[0]
            if isinstance(frames, PIL.Image.Image):
                return frames
        return None


@dataclass
class ConditioningItem:
    """Encoded tokens (1 or B, N, C) with a strength: they replace the grid's first N tokens, or, when
    `positions` (1, 3, N, 2) are given, are appended. `attention` (1, N) marks a reference group and holds how
    strongly each of its tokens and the generated tokens attend to each other."""

    tokens: torch.Tensor
    strength: float
    positions: torch.Tensor | None = None
    attention: torch.Tensor | None = None


@dataclass
class LatentConditioning:
    """The per-token conditioning of the video sequence during sampling.

    mask (B, S): conditioning strength per token; clean (B, S, C): the clean values; positions (B, 3, S, 2) when
    tokens were appended (else None: the grid's own); attention_mask (1, S, S) multiplicative, or None.
    """

    mask: torch.Tensor
    clean: torch.Tensor
    positions: torch.Tensor | None
    attention_mask: torch.Tensor | None

    def repeated(self, times: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The mask and positions repeated `times` along the batch (2 for a [negative; positive] batch)."""
        positions = None if self.positions is None else self.positions.repeat(times, 1, 1, 1)
        return self.mask.repeat(times, 1), positions

    def pull_to_clean(self, x0: torch.Tensor) -> torch.Tensor:
        """x0 (1 - m) + clean m per token."""
        mask = self.mask[:, :, None]
        return x0 * (1 - mask) + self.clean * mask


def condition_latents(
    base: torch.Tensor, items: list[ConditioningItem], grid_positions: torch.Tensor
) -> tuple[torch.Tensor, LatentConditioning]:
    """Put the items into `base` (B, S, C) packed latents: the conditioned (not yet noised) sequence and its
    per-token conditioning. `grid_positions` (B, 3, S, 2) are the grid's positions."""
    batch, generated = base.shape[:2]
    latents, mask, clean = base.clone(), base.new_zeros(base.shape[:2]), torch.zeros_like(base)
    appended = [item for item in items if item.positions is not None]
    for item in items:
        if item.positions is None:
            count = item.tokens.shape[1]
            latents[:, :count], clean[:, :count], mask[:, :count] = item.tokens, item.tokens, item.strength
    positions = None
    if appended:
        tokens = torch.cat([item.tokens.expand(batch, -1, -1) for item in appended], dim=1)
        latents, clean = torch.cat([latents, tokens], dim=1), torch.cat([clean, tokens], dim=1)
        strengths = [base.new_full((batch, item.tokens.shape[1]), item.strength) for item in appended]
        mask = torch.cat([mask, *strengths], dim=1)
        extra = torch.cat([item.positions for item in appended], dim=2).expand(batch, -1, -1, -1)
        positions = torch.cat([grid_positions, extra.to(grid_positions)], dim=2)
    groups = [item.attention for item in appended if item.attention is not None]
    attention = reference_attention_mask(latents.shape[1], generated, groups) if groups else None
    return latents, LatentConditioning(mask, clean, positions, attention)


def noised(
    latents: torch.Tensor, conditioning: LatentConditioning | None, noise: torch.Tensor, noise_scale: float
) -> torch.Tensor:
    """Mix noise into the sequence: each token gets noise_scale (1 - m) of noise."""
    scale = noise_scale if conditioning is None else (1 - conditioning.mask[:, :, None]) * noise_scale
    return noise * scale + latents * (1 - scale)


def reference_attention_mask(total: int, generated: int, groups: list[torch.Tensor]) -> torch.Tensor:
    """(1, total, total) multiplicative self-attention mask when reference groups (their (1, N) strengths) sit
    at the end of the sequence: everything before them attends fully among itself; each group attends itself
    fully and the generated tokens (both ways) by its strengths; groups and keyframe tokens do not meet."""
    mask = torch.zeros(1, total, total, device=groups[0].device)
    start = total - sum(group.shape[1] for group in groups)
    mask[:, :start, :start] = 1.0
    for group in groups:
        end = start + group.shape[1]
        mask[:, :generated, start:end] = group[:, None, :]
        mask[:, start:end, :generated] = group[:, :, None]
        mask[:, start:end, start:end] = 1.0
        start = end
    return mask


def keyframe_positions(
    frames: int, height: int, width: int, pixel_frame: int, single_frame: bool, scale_factors: tuple[int, int, int],
    fps: float, device: torch.device,
) -> torch.Tensor:
    """(1, 3, frames * height * width, 2) [start, end) positions of appended keyframe tokens: pixel units, time
    starting at `pixel_frame` (no causal shift) in seconds; a single image spans one pixel frame."""
    grid = torch.meshgrid(*(torch.arange(size, dtype=torch.float32, device=device) for size in (frames, height, width)),
                          indexing="ij")
    starts = torch.stack(grid).flatten(1)  # (3, N)
    scales = torch.tensor(scale_factors, dtype=torch.float32, device=device).view(3, 1, 1)
    bounds = torch.stack([starts, starts + 1], dim=-1) * scales  # (3, N, 2)
    time = bounds[0] + pixel_frame
    if single_frame:
        time = torch.stack([time[:, 0], time[:, 0] + 1], dim=-1)
    return torch.cat([(time / fps)[None], bounds[1:]])[None]


def latent_attention_strengths(mask: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """A pixel-space mask (B, 1, F, H, W) in [0, 1] -> (B, frames * height * width) per latent token: area
    average in space; in time the first frame alone, then the mean of each later group of frames."""
    batch, _, pixel_frames = mask.shape[:3]
    spatial = F.interpolate(mask.flatten(0, 2)[:, None], size=(height, width), mode="area")
    spatial = spatial.view(batch, pixel_frames, height, width)
    latent = spatial[:, :1]
    if pixel_frames > 1 and frames > 1:
        if (pixel_frames - 1) % (frames - 1):
            raise ValueError(f"conditioning_attention_mask has {pixel_frames} frames, which do not group into "
                             f"{frames} latent frames (pixel frames - 1 must be a multiple of {frames - 1})")
        group = (pixel_frames - 1) // (frames - 1)
        rest = spatial[:, 1:].reshape(batch, frames - 1, group, height, width).mean(dim=2)
        latent = torch.cat([latent, rest], dim=1)
    return latent.flatten(1)


def condition_frames(frames: FrameInput, argument: str) -> np.ndarray:
    """A condition's frames -> (F, H, W, 3) array of pixel values in [0, 255] (uint8 kept as uint8)."""
    if isinstance(frames, PIL.Image.Image):
        return np.asarray(frames.convert("RGB"))[None]
    if isinstance(frames, list) and frames and all(isinstance(frame, PIL.Image.Image) for frame in frames):
        return np.stack([np.asarray(frame.convert("RGB")) for frame in frames])
    if isinstance(frames, np.ndarray) and frames.ndim in (3, 4) and frames.shape[-1] == 3:
        return frames if frames.ndim == 4 else frames[None]
    if isinstance(frames, torch.Tensor) and frames.ndim in (3, 4) and frames.shape[-3] == 3:
        frames = frames if frames.ndim == 4 else frames[None]
        return frames.detach().cpu().permute(0, 2, 3, 1).numpy()
    raise ValueError(f"{argument} must be a PIL image, a list of them, an (F, H, W, 3) array or an (F, 3, H, W) "
                     f"tensor, got {_describe(frames)}")


def cover_and_crop(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(F, H, W, 3) pixels in [0, 255] -> (1, 3, F, height, width) in [-1, 1]: bilinear resize so the picture
    covers the target, then a centre crop."""
    source_height, source_width = frames.shape[1:3]
    scale = max(height / source_height, width / source_width)
    size = (math.ceil(source_height * scale), math.ceil(source_width * scale))
    pixels = torch.from_numpy(np.array(frames, dtype=np.float32)).permute(0, 3, 1, 2)
    pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    pixels = pixels[:, :, top : top + height, left : left + width]
    return (pixels / 127.5 - 1.0).permute(1, 0, 2, 3)[None]


def reference_pixels(frames: FrameInput, height: int, width: int) -> torch.Tensor:
    """A reference video -> (1, 3, F, height, width) in [-1, 1]. PIL frames are resized bilinearly to cover the
    target and centre-cropped; arrays and tensors (values in [0, 1], or uint8) are resized by nearest neighbour."""
    if isinstance(frames, PIL.Image.Image):
        frames = [frames]
    if isinstance(frames, list) and frames and all(isinstance(frame, PIL.Image.Image) for frame in frames):
        arrays = [np.asarray(_cover_and_crop_image(frame.convert("RGB"), height, width)) for frame in frames]
        pixels = torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    else:
        array = condition_frames(frames, "reference_conditions[].frames")
        array = array / 255.0 if array.dtype == np.uint8 else array
        pixels = torch.from_numpy(np.ascontiguousarray(array)).float().permute(0, 3, 1, 2)
        pixels = F.interpolate(pixels, size=(height, width))
        if pixels.min() < 0:  # already in [-1, 1]
            return pixels.permute(1, 0, 2, 3)[None]
    return (pixels * 2 - 1).permute(1, 0, 2, 3)[None]


def _cover_and_crop_image(image: PIL.Image.Image, height: int, width: int) -> PIL.Image.Image:
    """PIL bilinear resize to cover (height, width), keeping the aspect ratio, then the centre crop."""
    if width / height > image.width / image.height:
        size = (width, image.height * width // image.width)
    else:
        size = (image.width * height // image.height, height)
    resized = image.resize(size, resample=PIL.Image.BILINEAR)
    left, top = size[0] // 2 - width // 2, size[1] // 2 - height // 2
    return resized.crop((left, top, left + width, top + height))


def _describe(value: object) -> str:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    return type(value).__name__


class ConditioningStages:
    """The pipeline stages that turn ConditioningInputs into items; mixed into LTX2Pipeline, whose components
    (vae, transformer, text_encoder) they use."""

    def check_conditioning(
        self, inputs: ConditioningInputs, height: int, width: int, num_frames: int | None,
        latents: torch.Tensor | None,
    ) -> None:
        """Reject bad conditions before any model runs (with num_frames None, a length still to be predicted,
        the indices are checked once it is known)."""
        spatial, temporal = self.vae_spatial_compression_ratio, self.vae_temporal_compression_ratio
        frames = latents.shape[2] if latents is not None else None
        if latents is None and num_frames is not None:
            frames = (num_frames - 1) // temporal + 1
        for i, condition in enumerate(inputs.conditions):
            name = f"conditions[{i}]"
            if not isinstance(condition, LTX2VideoCondition):
                raise ValueError(f"{name} must be an LTX2VideoCondition, got {type(condition).__name__}")
            if not isinstance(condition.index, int):
                raise ValueError(f"{name}.index={condition.index!r} must be an integer (a latent frame)")
            if frames is not None and not -frames <= condition.index < frames:
                raise ValueError(f"{name}.index={condition.index!r} is outside the video's {frames} latent frames "
                                 f"(valid: {-frames} to {frames - 1})")
            _check_strength(f"{name}.strength", condition.strength)
            array = condition_frames(condition.frames, f"{name}.frames")
            crf = self.default_image_crf if condition.crf is None else condition.crf
            if not isinstance(crf, int) or not 0 <= crf <= 51:
                raise ValueError(f"{name}.crf={condition.crf!r} must be None or an integer in [0, 51]")
            if array.shape[0] == 1 and crf != 0 and array.dtype != np.uint8:
                raise ValueError(f"{name}: re-compressing an image at crf={crf} needs uint8 pixels (a PIL image or "
                                 f"uint8 array), got {array.dtype}; pass crf=0 to skip re-compression")
        factor = inputs.reference_downscale_factor
        if not isinstance(factor, int) or factor < 1 or (height // factor) % spatial or (width // factor) % spatial:
            raise ValueError(f"reference_downscale_factor={factor!r} must be an integer >= 1 leaving the reference at "
                             f"a multiple of {spatial} pixels (height {height}, width {width})")
        for i, reference in enumerate(inputs.references):
            if not isinstance(reference, LTX2ReferenceCondition):
                raise ValueError(f"reference_conditions[{i}] must be an LTX2ReferenceCondition, "
                                 f"got {type(reference).__name__}")
            _check_strength(f"reference_conditions[{i}].strength", reference.strength)
        _check_strength("conditioning_attention_strength", inputs.attention_strength)
        mask = inputs.attention_mask
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.ndim != 5 or mask.shape[1] != 1):
            raise ValueError(f"conditioning_attention_mask must be a (B, 1, F, H, W) tensor, got {_describe(mask)}")

    def condition_items(
        self, inputs: ConditioningInputs, geometry: Any, batch: int, latents: torch.Tensor | None, device: torch.device
    ) -> list[ConditioningItem]:
        """Encode every condition and reference into tokens, in sequence order: replacing conditions, keyframes
        (in the order given), then references. `latents` (stage 2) are not used here."""
        if not inputs:
            return []
        spatial, temporal = self.vae_spatial_compression_ratio, self.vae_temporal_compression_ratio
        height, width = geometry.height * spatial, geometry.width * spatial
        num_frames = (geometry.frames - 1) * temporal + 1
        items = []
        for condition in inputs.conditions:
            index = condition.index % geometry.frames
            start = 0 if index == 0 else (index - 1) * temporal + 1
            pixels = self.condition_pixels(condition, height, width)
            # Clips are cut to the frames left after `start`, on the VAE's 8k+1 grid.
            length = (min(pixels.shape[2], num_frames - start) - 1) // temporal * temporal + 1
            encoded = self.encode_pixels(pixels[:, :, :length], device)
            if encoded.shape[0] not in (1, batch):
                raise ValueError(f"got {encoded.shape[0]} images for a batch of {batch}")
            tokens = pack_video_latents(encoded)
            if index == 0:
                items.append(ConditioningItem(tokens, condition.strength))
                continue
            positions = keyframe_positions(*encoded.shape[2:], start, length == 1, (temporal, spatial, spatial),
                                           geometry.fps, device)
            items.append(ConditioningItem(tokens, condition.strength, positions=positions))
        return items + self.reference_items(inputs, height, width, num_frames, geometry.fps, device)

    def reference_items(
        self, inputs: ConditioningInputs, height: int, width: int, num_frames: int, fps: float, device: torch.device
    ) -> list[ConditioningItem]:
        """One appended item per reference video, at the reference's own grid positions with height and width
        scaled up by the downscale factor; with attention strengths when they are below 1 or masked."""
        factor, config = inputs.reference_downscale_factor, self.transformer.config
        items = []
        for reference in inputs.references:
            pixels = self.reference_video_pixels(reference.frames, height // factor, width // factor, num_frames)
            encoded = self.encode_pixels(pixels, device)
            frames, latent_height, latent_width = encoded.shape[2:]
            positions = video_positions(1, frames, latent_height, latent_width, tuple(config.vae_scale_factors),
                                        config.causal_offset, fps, device)
            positions = positions * torch.tensor([1.0, factor, factor], device=device).view(1, 3, 1, 1)
            attention = None
            if inputs.attention_strength < 1 or inputs.attention_mask is not None:
                attention = torch.ones(1, frames * latent_height * latent_width, device=device)
                if inputs.attention_mask is not None:
                    attention = latent_attention_strengths(inputs.attention_mask.to(device, torch.float32), frames,
                                                           latent_height, latent_width)
                attention = attention * inputs.attention_strength
            items.append(ConditioningItem(pack_video_latents(encoded), reference.strength, positions=positions,
                                          attention=attention))
        return items

    def reference_video_pixels(self, frames: FrameInput, height: int, width: int, num_frames: int) -> torch.Tensor:
        """A reference video -> (1, 3, F, height, width) in [-1, 1]: at most the video's frames, cut to the VAE's
        8k+1 grid (diffusers fails on other counts)."""
        temporal = self.vae_temporal_compression_ratio
        pixels = reference_pixels(frames, height, width)
        return pixels[:, :, : (min(pixels.shape[2], num_frames) - 1) // temporal * temporal + 1]

    def condition_pixels(self, condition: LTX2VideoCondition, height: int, width: int) -> torch.Tensor:
        """A condition's frames -> (1, 3, F, height, width) in [-1, 1]; a single image re-compressed first."""
        frames = condition_frames(condition.frames, "conditions[].frames")
        if frames.shape[0] == 1:
            crf = self.default_image_crf if condition.crf is None else condition.crf
            frames = recompress(frames[0], crf)[None]
        return cover_and_crop(frames, height, width)

    def encode_pixels(self, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
        """(N, 3, F, H, W) pixels -> (N, C, f, h, w) normalized latents (the posterior's mode), float32."""
        vae = self._activate("vae")
        pixels = pixels.to(device, vae.dtype)
        encoded = torch.cat([vae.encode(pixels[i : i + 1]).latent_dist.mode() for i in range(pixels.shape[0])])
        return normalize_video_latents(encoded, vae.latents_mean, vae.latents_std, vae.config.scaling_factor).float()


def _check_strength(name: str, value: object) -> None:
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name}={value!r} must be a number in [0, 1]")
