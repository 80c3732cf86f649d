"""LTX-2's documented two-stage flow: generate at a reduced size, upsample the latents, then refine them at full
size on the distilled stage-2 schedule (with the distilled LoRA after a dev stage 1)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from .latent_upsample import LTX2LatentUpsamplePipeline
from .text_to_video import LTX2Pipeline

# The distilled schedules are used as given: no resolution-dependent shift, no terminal stretch.
AS_GIVEN = {"use_dynamic_shifting": False, "shift_terminal": None}
DISTILLED_LORA_ADAPTER = "stage_2_distilled"


def generate_two_stages(
    pipe: LTX2Pipeline,
    latent_upsampler: torch.nn.Module | Callable[[], torch.nn.Module],
    stage_one: dict[str, Any],
    stage_two: dict[str, Any],
    common: dict[str, Any],
    *,
    references: dict[str, Any] | None = None,
    stage_one_distilled: bool = False,
    distilled_lora: str | None = None,
    stage_two_adapters: dict[str, float] | None = None,
    place: Callable[[LTX2LatentUpsamplePipeline], Any] | None = None,
    stage: Callable[[str], AbstractContextManager[Any]] = lambda name: nullcontext(),
    output_type: str = "np",
) -> tuple[Any, torch.Tensor]:
    """(frames, waveform) of a two-stage generation with `pipe` (any LTX2Pipeline; its class's conditioning
    arguments go in `common`, which both stages get, and reference videos in `references`, stage 1 only).

    `stage_one` / `stage_two` are each stage's own call arguments (sizes, steps, sigmas, guidance, noise_scale);
    stage 1 returns latents, `latent_upsampler` (a model, or a function loading it, called once stage 1 is done)
    upsamples them, and stage 2 refines them with its sigmas taken as given (so is stage 1 when
    `stage_one_distilled`). Before stage 2 the adapters become `stage_two_adapters` (name -> weight; None: as they
    are; {}: none) plus `distilled_lora`, loaded then at weight 1 when given. `place` puts the upsampling
    pipeline on its device (default: the pipeline's device); `stage(name)` is entered around the "upsampling" and
    the stage-2 LoRA "loading" (e.g. to time them). Nothing of `pipe` but its adapters is changed.
    """
    video_latents, audio_latents = pipe(
        **stage_one, output_type="latent", **common, **(references or {}),
        _schedule_overrides=AS_GIVEN if stage_one_distilled else None,
    )
    with stage("upsampling"):
        model = latent_upsampler if isinstance(latent_upsampler, torch.nn.Module) else latent_upsampler()
        upsample = LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=model)
        place(upsample) if place is not None else upsample.to(pipe.device)
        upsampled = upsample(latents=video_latents, output_type="latent", return_dict=False)[0]
    adapters = None if stage_two_adapters is None else dict(stage_two_adapters)
    if distilled_lora is not None:
        with stage("loading"):
            pipe.load_lora_weights(distilled_lora, adapter_name=DISTILLED_LORA_ADAPTER)
        adapters = {**(adapters or {}), DISTILLED_LORA_ADAPTER: 1.0}
    if adapters:
        pipe.set_adapters(list(adapters), list(adapters.values()))
    elif adapters is not None:
        pipe.disable_lora()
    return pipe(latents=upsampled, audio_latents=audio_latents, output_type=output_type, **stage_two, **common,
                _schedule_overrides=AS_GIVEN)
