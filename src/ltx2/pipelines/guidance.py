"""Guidance, in one place: each stream's scales, the transformer passes one sampling step runs for them, running
those passes (alone or spread over groups of ranks) and combining their predictions.

A pass runs when either stream's scale asks for it, as in diffusers 0.42.1: "uncond" (CFG), "cond", "perturbed"
(STG), "isolated" (modality guidance). Predictions are combined in x0 space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh

from ..transforms.collectives import broadcast_tensors

# The distilled schedules run without guidance: one conditional pass per step.
GUIDANCE_OFF = dict(guidance_scale=1.0, stg_scale=0.0, modality_scale=1.0, guidance_rescale=0.0,
                    audio_guidance_scale=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0, audio_guidance_rescale=0.0)


@dataclass(frozen=True)
class GuidanceScales:
    """One stream's guidance scales; each term is combined in x0 space."""

    cfg: float = 1.0
    stg: float = 0.0
    modality: float = 1.0
    rescale: float = 0.0

    def combine(self, x0: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pass name -> x0 prediction -> the guided x0: cond + (cfg - 1)(cond - uncond) + stg (cond - perturbed)
        + (modality - 1)(cond - isolated), each term only for a pass that ran; then, with rescale > 0, the spread
        pulled back towards cond's."""
        cond = x0["cond"]
        guided = cond
        if "uncond" in x0:
            guided = guided + (self.cfg - 1) * (cond - x0["uncond"])
        if "perturbed" in x0:
            guided = guided + self.stg * (cond - x0["perturbed"])
        if "isolated" in x0:
            guided = guided + (self.modality - 1) * (cond - x0["isolated"])
        if self.rescale > 0:
            # Over-exposure fix: match the guided prediction's standard deviation to the conditional one's.
            dims = list(range(1, cond.ndim))
            rescaled = guided * (cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True))
            guided = self.rescale * rescaled + (1 - self.rescale) * guided
        return guided


@dataclass(frozen=True)
class Guidance:
    """A call's guidance: both streams' scales, the STG blocks, and whether cross-attention modulation takes the
    other stream's timestep (LTX-2.3)."""

    video: GuidanceScales
    audio: GuidanceScales
    stg_blocks: tuple[int, ...] = ()
    cross_timestep: bool = False

    @classmethod
    def from_call_kwargs(cls, options: dict[str, Any]) -> Guidance:
        """From resolved call arguments (`LTX2Pipeline.default_call_kwargs`)."""
        video = GuidanceScales(options["guidance_scale"], options["stg_scale"], options["modality_scale"],
                               options["guidance_rescale"])
        audio = GuidanceScales(options["audio_guidance_scale"], options["audio_stg_scale"],
                               options["audio_modality_scale"], options["audio_guidance_rescale"])
        blocks = tuple(options["spatio_temporal_guidance_blocks"] or ())
        return cls(video, audio, blocks, bool(options["use_cross_timestep"]))

    @property
    def cfg(self) -> bool:
        return self.video.cfg > 1 or self.audio.cfg > 1

    def passes(self, batch: int) -> list[GuidancePass]:
        """The transformer passes of one sampling step, for `batch` videos."""
        return guidance_passes(batch, self.cfg, self.video, self.audio, self.stg_blocks)


def guidance_passes(
    batch: int, cfg: bool, video_guidance: GuidanceScales, audio_guidance: GuidanceScales,
    stg_blocks: tuple[int, ...] = (),
) -> list[GuidancePass]:
    """The transformer passes of one sampling step, as diffusers 0.42.1 runs them: a pass runs when either
    stream's scale asks for it. Under CFG the text context is [negative; positive] (B rows each); the unconditional
    and conditional passes run as one batched call when they run on the same ranks."""
    positive = slice(batch, 2 * batch) if cfg else slice(0, batch)
    passes = [GuidancePass("uncond", slice(0, batch))] if cfg else []
    passes.append(GuidancePass("cond", positive))
    if video_guidance.stg > 0 or audio_guidance.stg > 0:
        # Perturbed attention (LTX-2.3) perturbs these blocks' self-attentions; a model without it (LTX-2.0)
        # ignores them, and its STG pass is an unperturbed conditional pass, as in diffusers.
        options = {"spatio_temporal_guidance_blocks": list(stg_blocks)} if stg_blocks else {}
        passes.append(GuidancePass("perturbed", positive, options, call=1))
    if video_guidance.modality > 1 or audio_guidance.modality > 1:
        passes.append(GuidancePass("isolated", positive, {"isolate_modalities": True}, call=2))
    return passes


@dataclass(frozen=True)
class GuidancePass:
    """One transformer pass of a sampling step: its name, the text-context rows it reads, its forward options.

    Passes with the same `call` number run as one batched transformer call when they run on the same ranks
    (they must share their options).
    """

    name: str
    rows: slice
    options: dict[str, Any] = field(default_factory=dict)
    call: int = 0


class GuidanceGroups:
    """The mesh's guidance dimension: Ulysses group g runs passes g, g + G, g + 2G, ...; each rank then receives
    the other groups' predictions from the rank at its own place in those groups."""

    def __init__(self, mesh: DeviceMesh, device: torch.device):
        self.group = mesh.get_group("guidance")
        self.degree = mesh["guidance"].size()
        self.index = mesh.get_local_rank("guidance")
        self.device = device

    def owner(self, position: int) -> int:
        return position % self.degree


Predict = Callable[[list[slice], dict[str, Any]], tuple[torch.Tensor, ...]]


def run_guidance_passes(
    passes: Sequence[GuidancePass], predict: Predict, groups: GuidanceGroups | None = None
) -> dict[str, tuple[torch.Tensor, ...]]:
    """Every pass's predictions, by name. `predict(rows, options)` runs one batched transformer call over the
    passes reading `rows` (one batch of latents per slice) and returns tensors batched in that order.

    Alone, every pass runs here. With `groups`, each rank runs only its group's passes and the rest arrive.
    """
    here = 0 if groups is None else groups.index
    mine = [item for position, item in enumerate(passes) if groups is None or groups.owner(position) == here]
    results: dict[str, tuple[torch.Tensor, ...]] = {}
    for call in dict.fromkeys(item.call for item in mine):
        together = [item for item in mine if item.call == call]
        outputs = predict([item.rows for item in together], together[0].options)
        sizes = [item.rows.stop - item.rows.start for item in together]
        for item, parts in zip(together, zip(*(output.split(sizes) for output in outputs))):
            results[item.name] = parts
    if groups is not None:
        for position, item in enumerate(passes):
            source = dist.get_global_rank(groups.group, groups.owner(position))
            results[item.name] = tuple(broadcast_tensors(results.get(item.name), source, groups.group, groups.device))
    return {item.name: results[item.name] for item in passes}
