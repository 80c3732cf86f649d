"""LTX2ImageToVideoPipeline: an image as the first frame, then text -> video with synchronized audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from .conditioning import (
    ConditioningInputs,
    ConditioningItem,
    LatentConditioning,
    LTX2VideoCondition,
    default_image_crf,
    noised,
    recompress,
)
from .latents import normalize_video_latents, pack_video_latents
from .sampling import Generator, randn
from .text_to_video import Geometry, LTX2Pipeline

ImageInput = str | Path | PIL.Image.Image | np.ndarray | torch.Tensor | list


def load_image(
    image: ImageInput, height: int, width: int, resample: PIL.Image.Resampling = PIL.Image.LANCZOS
) -> torch.Tensor:
    """An image (path, PIL, array or tensor; one or a list) -> (N, 3, height, width) in [-1, 1].

    PIL images are resized with `resample` (diffusers' default Lanczos; its image-to-video pipeline uses
    bilinear); arrays and tensors (values in [0, 1], or uint8) with nearest neighbour, as diffusers does.
    """
    if isinstance(image, list):
        return torch.cat([load_image(item, height, width, resample) for item in image])
    image = open_image(image)
    if isinstance(image, PIL.Image.Image):
        resized = image.convert("RGB").resize((width, height), resample=resample)
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
    return F.interpolate(pixels, size=(height, width)) * 2 - 1


def open_image(image: ImageInput) -> ImageInput:
    """A path read as an RGB PIL image; anything else as it is."""
    if not isinstance(image, (str, Path)):
        return image
    try:
        with PIL.Image.open(image) as opened:
            return opened.convert("RGB")
    except (OSError, ValueError) as error:
        raise ValueError(f"image {str(image)!r} could not be read as an image ({error})") from None


class LTX2ImageToVideoPipeline(LTX2Pipeline):
    """Image (first frame) + text to video+audio: one condition at latent frame 0, kept exactly.

    Takes LTX2Pipeline's arguments plus `image` and `image_crf` (the H.264 CRF the image is re-compressed at
    first, as the model was trained; None: the model's default, 0: none).
    """

    @torch.no_grad()
    def __call__(
        self,
        image: ImageInput | None = None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        *,
        image_crf: int | None = None,
        **kwargs: Any,
    ):
        """Generate video and audio whose first frame is `image` (see LTX2Pipeline.__call__ for the rest).

        `image`: a path, PIL image, array or tensor, or a list of them (one per prompt). At stage 2 (5D `latents`
        given) the image is not needed: frame 0 of the latents stays as given.
        """
        arguments = self.call_arguments(prompt=prompt, negative_prompt=negative_prompt, **kwargs)
        conditions = []
        if arguments["latents"] is None:
            if image is None:
                raise ValueError("image is required unless latents are given")
            pixels = self.first_frame(image, image_crf, arguments["height"], arguments["width"])
            # The frames are already pixels in [-1, 1]; condition_pixels below takes them as they are.
            conditions = [LTX2VideoCondition(pixels, index=0, strength=1.0, crf=0)]
        return super().__call__(**arguments, _conditioning=ConditioningInputs(conditions))

    def first_frame(self, image: ImageInput, crf: int | None, height: int, width: int) -> torch.Tensor:
        """The image(s) re-compressed at `crf` and resized (bilinear): (N, 3, height, width) in [-1, 1]."""
        crf = default_image_crf(self.text_encoder) if crf is None else crf
        if not isinstance(crf, int) or crf < 0:
            raise ValueError(f"image_crf={crf!r} must be None or an integer >= 0")
        if crf != 0:
            images = [open_image(item) for item in (image if isinstance(image, list) else [image])]
            if not all(isinstance(item, PIL.Image.Image) for item in images):
                raise ValueError(f"image_crf={crf}: re-compressing needs PIL images or image files, got "
                                 f"{type(image).__name__}; pass image_crf=0 to use the pixels as they are")
            image = [PIL.Image.fromarray(recompress(np.asarray(item.convert("RGB")), crf)) for item in images]
        return load_image(image, height, width, resample=PIL.Image.BILINEAR)

    def condition_pixels(self, condition: LTX2VideoCondition, height: int, width: int) -> torch.Tensor:
        """The image(s) __call__ loaded, as one-frame clips (N, 3, 1, H, W)."""
        return condition.frames[:, :, None]

    def condition_items(
        self, inputs: ConditioningInputs, geometry: Geometry, batch: int, latents: torch.Tensor | None,
        device: torch.device,
    ) -> list[ConditioningItem]:
        """The encoded image at frame 0; at stage 2 the given latents' first frame, kept as it is."""
        if latents is None:
            return super().condition_items(inputs, geometry, batch, latents, device)
        first = normalize_video_latents(latents[:, :, :1].to(device), self.vae.latents_mean, self.vae.latents_std,
                                        self.vae.config.scaling_factor)
        return [ConditioningItem(pack_video_latents(first).float(), 1.0)]

    def prepare_latents(
        self, batch: int, geometry: Geometry, noise_scale: float, generator: Generator, latents: torch.Tensor | None,
        device: torch.device, items: list[ConditioningItem] = (),
    ) -> tuple[torch.Tensor, LatentConditioning | None]:
        """As LTX2Pipeline's, but the reference draws its noise over the (B, C, F, H, W) grid at stage 2 too."""
        clean, conditioning = self.conditioned_latents(batch, geometry, latents, device, items)
        noise = pack_video_latents(randn(self.grid_shape(clean.shape[0], geometry), generator, device, torch.float32))
        return noised(clean, conditioning, noise, 1.0 if latents is None else noise_scale), conditioning
