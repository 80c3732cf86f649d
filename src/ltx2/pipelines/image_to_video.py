"""LTX2ImageToVideoPipeline: an image as the first frame, then text -> video with synchronized audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from ..versions import DEFAULT_IMAGE_CRF
from .images import RESAMPLE, read_image, recompress, recompress_image
from .latents import normalize_video_latents, pack_video_latents
from .sampling import randn
from .text_to_video import Geometry, LTX2Pipeline

ImageInput = str | Path | PIL.Image.Image | np.ndarray | torch.Tensor | list


def load_image(
    image: ImageInput, height: int, width: int, resample: int = PIL.Image.LANCZOS, crf: int = 0
) -> torch.Tensor:
    """An image (path, PIL, array or tensor; one or a list) -> (N, 3, height, width) in [-1, 1].

    With `crf` > 0 each image first goes through one H.264 frame at that CRF (arrays and tensors rounded to 8 bits
    for it). PIL images are then resized with `resample`; arrays and tensors (values in [0, 1], or uint8) with
    nearest neighbour, as diffusers' image processor does.
    """
    if isinstance(image, list):
        return torch.cat([load_image(item, height, width, resample, crf) for item in image])
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if isinstance(image, PIL.Image.Image):
        resized = recompress_image(image.convert("RGB"), crf).resize((width, height), resample=resample)
        pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        return pixels * 2 - 1
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(image / 255.0 if image.dtype == np.uint8 else image)
        image = image.permute(2, 0, 1) if image.ndim == 3 and image.shape[-1] in (1, 3) else image
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a path, PIL image, array or tensor, got {type(image).__name__}")
    pixels = image.float()
    pixels = pixels[None] if pixels.ndim == 3 else pixels
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise ValueError(f"image must have 3 channels as (3, H, W), (H, W, 3) or (N, 3, H, W), got {tuple(image.shape)}")
    if crf:
        eight_bit = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        pixels = torch.from_numpy(np.stack([recompress(frame, crf) for frame in eight_bit]) / 255.0).float()
        pixels = pixels.permute(0, 3, 1, 2)
    return F.interpolate(pixels, size=(height, width)) * 2 - 1


class LTX2ImageToVideoPipeline(LTX2Pipeline):
    """Image (first frame) + text to video+audio. Takes LTX2Pipeline's arguments plus `image`."""

    def __call__(
        self,
        image: ImageInput | None = None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        image_crf: int | None = None,
        **kwargs: Any,
    ):
        """Generate video and audio whose first frame is `image` (see LTX2Pipeline.__call__ for the rest).

        The image is re-compressed as one H.264 frame at `image_crf` (None: 33, the compression LTX-2.0 and 2.3
        were trained on; 0 skips it), then resized bilinearly to the video size, as diffusers 0.42.1 does.
        At stage 2 (5D `latents` given) the image is not needed: frame 0 of the latents stays as given.
        """
        self._image_input = image
        if kwargs.get("latents") is None:
            if image is None:
                raise ValueError("image is required unless latents are given")
            height, width = kwargs.get("height", 512), kwargs.get("width", 768)
            crf = DEFAULT_IMAGE_CRF if image_crf is None else image_crf
            image = load_image(image, height, width, resample=RESAMPLE, crf=crf)
        self._image = image
        try:
            return super().__call__(prompt, negative_prompt, **kwargs)
        finally:
            self._image = self._image_input = None

    def default_call_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """LTX2Pipeline's, and the image_crf an image is re-compressed at."""
        image_crf = overrides.pop("image_crf", None)
        crf = DEFAULT_IMAGE_CRF if image_crf is None else image_crf
        return {**super().default_call_kwargs(**overrides), "image_crf": crf}

    def enhancement_image(self) -> ImageInput | None:
        """The first frame, which image-to-video prompt enhancement shows Gemma."""
        return self._image_input

    def prepare_latents(
        self,
        batch: int,
        geometry: Geometry,
        noise_scale: float,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed video latents whose first latent frame is the encoded image (or the given latents' first frame),
        and the mask (B, S) of those first-frame tokens."""
        shape = (batch, self.transformer.config.in_channels, geometry.frames, geometry.height, geometry.width)
        mask = torch.zeros((shape[0], 1, *shape[2:]), device=device)
        mask[:, :, 0] = 1.0
        tokens_mask = pack_video_latents(mask).squeeze(-1)  # (B, S)
        mean, std, scaling = self.vae.latents_mean, self.vae.latents_std, self.vae.config.scaling_factor
        if latents is not None:
            latents = normalize_video_latents(latents.to(device), mean, std, scaling)
            noise = randn(tuple(latents.shape), generator, device, latents.dtype)
            scale = noise_scale * (1 - mask)
            return pack_video_latents(scale * noise + (1 - scale) * latents).to(torch.float32), tokens_mask
        first_frames = self.encode_image(self._image, batch, generator, device)
        first_frames = normalize_video_latents(first_frames, mean, std, scaling).repeat(1, 1, geometry.frames, 1, 1)
        noise = randn(shape, generator, device, torch.float32)
        return pack_video_latents(first_frames * mask + noise * (1 - mask)), tokens_mask

    def encode_image(
        self, image: torch.Tensor, batch: int, generator: torch.Generator | list[torch.Generator] | None,
        device: torch.device,
    ) -> torch.Tensor:
        """(N, 3, H, W) images -> (batch, C, 1, h, w) latents (posterior mode), one image per prompt or one for all."""
        if image.shape[0] not in (1, batch):
            raise ValueError(f"got {image.shape[0]} images for a batch of {batch}")
        vae = self._activate("vae")
        pixels = image.to(device, vae.dtype).expand(batch, -1, -1, -1)
        return torch.cat([vae.encode(pixels[i : i + 1, :, None]).latent_dist.mode() for i in range(batch)]).float()
