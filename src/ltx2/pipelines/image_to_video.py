"""LTX2ImageToVideoPipeline: an image as the first frame, then text -> video with synchronized audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from .conditioning import ConditioningInputs, ConditioningItem, LatentConditioning, LTX2VideoCondition, noised
from .images import RESAMPLE, read_image, recompress, recompress_image
from .latents import normalize_video_latents, pack_video_latents
from .sampling import Generator, randn
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

        The image is re-compressed as one H.264 frame at `image_crf` (None: the compression the model was trained
        on, 18 with LTX-2.5's Gemma 4 text encoder, 33 otherwise; 0 skips it), then resized bilinearly to the video
        size, as diffusers 0.42.1 does.
        `image`: a path, PIL image, array or tensor, or a list of them (one per prompt). At stage 2 (5D `latents`
        given) the image is not needed: frame 0 of the latents stays as given.
        """
        arguments = self.call_arguments(prompt=prompt, negative_prompt=negative_prompt, **kwargs)
        conditions = []
        if arguments["latents"] is None:
            if image is None:
                raise ValueError("image is required unless latents are given")
            crf = self.default_image_crf if image_crf is None else image_crf
            pixels = load_image(image, arguments["height"], arguments["width"], resample=RESAMPLE, crf=crf)
            # Already pixels in [-1, 1]: condition_pixels below takes them as they are.
            conditions = [LTX2VideoCondition(pixels, index=0, strength=1.0, crf=0)]
        return super().__call__(**arguments, _conditioning=ConditioningInputs(conditions, image=image))

    def default_call_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """LTX2Pipeline's, and the image_crf an image is re-compressed at."""
        image_crf = overrides.pop("image_crf", None)
        crf = self.default_image_crf if image_crf is None else image_crf
        return {**super().default_call_kwargs(**overrides), "image_crf": crf}

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
